"""Which cells a recipe step acts on: "all", a list of [row, col], ranges, or the first N cells.

Every bound is checked before any index list is built (a range like "0-100000000" is refused from its
two numbers), and messages name at most a few offending values.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .base import Cell, ParameterError
from .params import is_int, short

_RANGE = re.compile(r"^\s*(\d{1,9})\s*(?:-\s*(\d{1,9}))?\s*$")
MAX_SPEC_TEXT = 1000           # characters of a range string such as "0-3,5,7-9"
FEW = 3                        # offending values named in a message


def _few(values: list[Any]) -> str:
    """At most FEW values (strings as they are, others shortened), then how many more."""
    shown = ", ".join(v if isinstance(v, str) else short(v, 20) for v in values[:FEW])
    return shown + (f" and {len(values) - FEW} more" if len(values) > FEW else "")


def _spans(spec: Any, n: int, what: str) -> list[tuple[int, int]]:
    """``spec`` as inclusive index spans (first, last), each checked against 0..n-1 before anything expands."""
    if is_int(spec):
        spans = [(int(spec), int(spec))]
    elif isinstance(spec, str):
        if len(spec) > MAX_SPEC_TEXT:
            raise ParameterError(f"cells.{what}: range text of {len(spec)} characters; at most {MAX_SPEC_TEXT}")
        spans = []
        for part in spec.split(","):
            m = _RANGE.match(part)
            if not m:
                within = f" in {short(spec)}" if "," in spec else ""
                raise ParameterError(f"cells.{what}: cannot read {short(part.strip())}{within}; use e.g. '0-3' or "
                                     "'0,2,5'")
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
            if a > b:
                raise ParameterError(f"cells.{what}: range {a}-{b} runs backwards; write {b}-{a}")
            spans.append((a, b))
    elif isinstance(spec, list):
        if len(spec) > n:
            raise ParameterError(f"cells.{what}: {len(spec)} indices listed, the array has only {n}")
        bad = [x for x in spec if not is_int(x)]
        if bad:
            raise ParameterError(f"cells.{what}: indices must be integers, got {_few([short(x, 20) for x in bad])}")
        spans = [(int(x), int(x)) for x in spec]
    else:
        raise ParameterError(f"cells.{what}: expected an index, a range string like '0-3' or a list of "
                             f"indices, got {short(spec)}")
    outside = [f"{a}-{b}" if a != b else a for a, b in spans if a < 0 or b >= n]
    if outside:
        raise ParameterError(f"cells.{what}: {_few(outside)} outside 0..{n - 1}")
    return spans


def _indices(spec: Any, n: int, what: str) -> list[int]:
    spans = _spans(spec, n, what)
    if sum(b - a + 1 for a, b in spans) > n:
        raise ParameterError(f"cells.{what}: {short(spec)} selects an index more than once")
    items = [i for a, b in spans for i in range(a, b + 1)]
    if not items:
        raise ParameterError(f"cells.{what}: no index selected (empty list)")
    twice = [i for i, k in Counter(items).items() if k > 1]
    if twice:
        raise ParameterError(f"cells.{what}: index {_few(twice)} selected more than once")
    return items


def parse_cells(spec: Any, rows: int, cols: int) -> list[Cell]:
    """Cells (row, col), 0-based, row-major, no duplicates."""
    if spec == "all":
        return [(r, c) for r in range(rows) for c in range(cols)]
    if isinstance(spec, dict):
        extra = sorted(set(spec) - {"rows", "cols", "first"})
        if extra:
            raise ParameterError(f"cells: unknown key(s) {_few([short(k, 20) for k in extra])}; allowed: rows, cols, "
                                 "first")
        if "first" in spec:
            if len(spec) > 1:
                raise ParameterError("cells: 'first' cannot be combined with 'rows' or 'cols'")
            n = spec["first"]
            if not is_int(n) or not 1 <= n <= rows * cols:
                raise ParameterError(f"cells.first must be an integer within [1, {rows * cols}], got {short(n)}")
            return [(k // cols, k % cols) for k in range(n)]
        rr = _indices(spec.get("rows", f"0-{rows - 1}"), rows, "rows")
        cc = _indices(spec.get("cols", f"0-{cols - 1}"), cols, "cols")
        return [(r, c) for r in rr for c in cc]
    if isinstance(spec, list):
        return _cell_list(spec, rows, cols)
    raise ParameterError(f"cells: expected 'all', a list of [row, col], {{ rows = ..., cols = ... }} or "
                         f"{{ first = N }}, got {short(spec)}")


def _cell_list(spec: list[Any], rows: int, cols: int) -> list[Cell]:
    if not spec:
        raise ParameterError("cells: no cell selected (empty list)")
    if len(spec) > rows * cols:
        raise ParameterError(f"cells: {len(spec)} cells listed, the {rows}x{cols} array has only {rows * cols}")
    for item in spec:
        if not (isinstance(item, list) and len(item) == 2 and all(is_int(x) for x in item)):
            raise ParameterError(f"cells: each cell is [row, col], got {short(item)}")
    outside = [f"[{r}, {c}]" for r, c in spec if not (0 <= r < rows and 0 <= c < cols)]
    if outside:
        raise ParameterError(f"cells: {_few(outside)} outside the {rows}x{cols} array")
    cells = [(int(r), int(c)) for r, c in spec]
    twice = [f"[{r}, {c}]" for (r, c), k in Counter(cells).items() if k > 1]
    if twice:
        raise ParameterError(f"cells: {_few(twice)} listed more than once")
    return cells
