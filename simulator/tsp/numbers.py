"""How TSP instruments print values: ``format.asciiprecision`` digits in %e style.

2600B reference manual: ``format.asciiprecision`` default 6 prints 4.07205e-05;
the 707B's default is 10. ``print`` separates values with a TAB; ``printbuffer`` and ``printnumber``
with a comma and a space. Booleans print as true/false, nil as nil.
"""

from __future__ import annotations

import math


def tsp_number(value: float, precision: int) -> str:
    """Format a number as the instrument prints it (``%.{precision-1}e``)."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{max(precision, 1) - 1}e}"


def tsp_value(value: object, precision: int) -> str:
    """Format any printable value."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return tsp_number(value, precision)
    return str(value)
