"""Every protocol by name."""

from __future__ import annotations

from .base import Protocol
from .endurance import Endurance
from .forming import Forming
from .iv_sweep import IVSweep
from .program_verify import ProgramVerify
from .pulse import Pulse, PulseTrain
from .read import Read
from .retention import Retention

PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Read, Forming, IVSweep, Pulse, PulseTrain,
                                                            ProgramVerify, Retention, Endurance)}
