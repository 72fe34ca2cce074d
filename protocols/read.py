"""``read``: conductance of one cell or a map of the array at the station's read conditions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import CELL_COLUMNS, CellDone, Event, Protocol, Record, Violation, require, require_int


@dataclass(frozen=True)
class ReadParams:
    """voltage: read voltage on the bit line (V, None = station default); nplc: integration (PLC, None =
    station default); repeats: reads per cell."""

    voltage: float | None = None
    nplc: float | None = None
    repeats: int = 1

    def __post_init__(self) -> None:
        require("voltage", self.voltage, -1.0, 1.0, "V", allow_none=True)
        require("nplc", self.nplc, 0.001, 25, allow_none=True)
        require_int("repeats", self.repeats, 1, 10_000)


class Read(Protocol):
    name = "read"
    Params = ReadParams
    tables = {"read": {**CELL_COLUMNS, "n": (np.int32, "", "repeat number from 1"),
                       "v": (np.float64, "V", "read voltage"), "i": (np.float64, "A", "current"),
                       "g": (np.float64, "S", "conductance i/v"), "t": (np.float64, "s", "time of the read")}}

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        out: list[Violation] = []
        if self.params.voltage is not None:
            self.voltage(out, env, "bit_line", "voltage", self.params.voltage)
        return out

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        for row, col in self.cells:
            for n in range(1, p.repeats + 1):
                r = station.read(row, col, voltage=p.voltage, nplc=p.nplc)
                yield Record("read", {"row": row, "col": col, "n": n, "v": r.voltage, "i": r.current,
                                      "g": r.conductance, "t": r.t})
            yield CellDone((row, col))
        station.release()
