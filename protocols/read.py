"""``read``: conductance of one cell or a map of the array at the station's read conditions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation

from .base import CELL_COLUMNS, CellDone, Event, ParameterError, Protocol, Record, Resume
from .params import ProtocolParams, param
from .results import Results


@dataclass(frozen=True)
class ReadParams(ProtocolParams):
    """voltage: read voltage on the bit line (V, None = station default); nplc: integration (PLC, None =
    station default); repeats: reads per cell."""

    voltage: float | None = param(None, -1.0, 1.0, "V", "bit-line read voltage, |voltage| >= 1 mV (unset: station)",
                                  applies="bit_line")
    nplc: float | None = param(None, 0.001, 25, "PLC", "integration time (unset: station)", applies="nplc")
    repeats: int = param(1, 1, 10_000, doc="reads per cell", integer=True)

    def cross_check(self) -> None:
        if self.voltage is not None and abs(self.voltage) < 1e-3:
            raise ParameterError(f"voltage must be within [-1.0, -0.001] or [0.001, 1.0] V (a read at 0 V has no "
                                 f"conductance), got {self.voltage!r}")


class Read(Protocol):
    name = "read"
    Params = ReadParams
    tables = {"read": {**CELL_COLUMNS, "n": (np.int32, "", "repeat number from 1"),
                       "v": (np.float64, "V", "read voltage"), "i": (np.float64, "A", "current"),
                       "g": (np.float64, "S", "conductance i/v"), "t": (np.float64, "s", "time of the read")}}

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = len(self.cells) * self.params.repeats
        return {"read": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        for key, (row, col) in self.pending(self.cells, resume):
            for n in range(1, p.repeats + 1):
                r = station.read(row, col, voltage=p.voltage, nplc=p.nplc)
                yield Record("read", {"row": row, "col": col, "n": n, "v": r.voltage, "i": r.current,
                                      "g": r.conductance, "t": r.t})
            yield CellDone((row, col), key=key)
        station.release()
