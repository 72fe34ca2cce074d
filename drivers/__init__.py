"""rramlab.drivers: strict pymeasure-based instrument drivers (and the station that wires them).

Drivers here: :class:`Keithley2636B` (two :class:`SMUChannel`\\ s) and :class:`Keithley707B`; shared TSP
helpers in :mod:`rramlab.drivers.tsp`; exception types in :mod:`rramlab.drivers.errors`.
"""

from .errors import DriverError, InstrumentError, ReplyError, ShutdownError
from .keithley707b import Keithley707B
from .keithley2636b import Keithley2636B, SMUChannel

__all__ = [
    "DriverError",
    "InstrumentError",
    "Keithley2636B",
    "Keithley707B",
    "ReplyError",
    "SMUChannel",
    "ShutdownError",
]
