"""rramlab.drivers: strict pymeasure-based instrument drivers, their roles, and the station that wires them.

Roles (:mod:`.roles`): what a station needs from an SMU channel, a switch matrix, a clock, a wafer prober
and every instrument. Drivers are found by name (:func:`.registry.driver_class`, the ``rramlab.drivers`` entry-point
group): Keithley 2636B (:mod:`.keithley2636b`), 2450 (:mod:`.keithley2450`), 707B (:mod:`.keithley707b`),
Keysight B2900 (:mod:`.keysight_b2900`), B2200A (:mod:`.keysight_b2200a`), E5250A (:mod:`.keysight_e5250a`),
MPI SENTIO probers (:mod:`.mpi_sentio`).
Shared helpers: :mod:`.tsp`, :mod:`.scpi`; exception types in :mod:`.errors`; the array model and router in
:mod:`.array_wiring`; the station in :mod:`.station`.
"""

from .errors import DriverError, InstrumentError, ReplyError, ShutdownError
from .keithley707b import Keithley707B
from .keithley2450 import Keithley2450
from .keithley2636b import Keithley2636B, SMUChannel
from .keysight_b2200a import KeysightB2200A
from .keysight_b2900 import KeysightB2900
from .keysight_e5250a import KeysightE5250A
from .mpi_sentio import MpiSentio
from .registry import driver_class, driver_names
from .roles import Crosspoint

__all__ = [
    "Crosspoint",
    "DriverError",
    "InstrumentError",
    "Keithley2450",
    "Keithley2636B",
    "Keithley707B",
    "KeysightB2200A",
    "KeysightB2900",
    "KeysightE5250A",
    "MpiSentio",
    "ReplyError",
    "SMUChannel",
    "ShutdownError",
    "driver_class",
    "driver_names",
]
