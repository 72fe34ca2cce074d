"""``iv_sweep``: DC double sweep for SET (0 → +V → 0) and RESET (0 → −V → 0) with a current limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation

from .base import CELL_COLUMNS, CellDone, Event, Protocol, Record, Resume
from .forming import staircase
from .params import GATE, ProtocolParams, param
from .results import Results


@dataclass(frozen=True)
class IVSweepParams(ProtocolParams):
    """Voltages V, currents A; switching below 1.5 V for CMO/HfOx (arXiv 2502.04524)."""

    current_limit: float | None = param(None, 1e-12, 0.1, "A", "bit-line limit during the sweeps (mandatory)",
                                        applies="limit")
    v_set_max: float = param(1.5, 0.05, 20.0, "V", "top of the SET sweep", applies="bit_line")
    v_reset_min: float = param(-1.5, -20.0, -0.05, "V", "bottom of the RESET sweep", applies="bit_line")
    v_step: float = param(0.02, 1e-4, 1.0, "V", "sweep step")
    gate_voltage: float = param(1.2, *GATE, "V", "word-line (gate) voltage", applies="word_line")
    nplc: float = param(0.1, 0.001, 25, "PLC", "integration time per point", applies="nplc")
    cycles: int = param(1, 1, 10_000, doc="SET/RESET loops per cell", integer=True)


class IVSweep(Protocol):
    name = "iv_sweep"
    Params = IVSweepParams
    tables = {"iv_sweep": {**CELL_COLUMNS, "cycle": (np.int32, "", "cycle from 1"),
                           "branch": (str, "", "'set' or 'reset'"), "v": (np.float64, "V", "bit-line voltage"),
                           "i": (np.float64, "A", "bit-line current"),
                           "compliance": (bool, "bool", "source at its limit"), "t": (np.float64, "s", "time")}}

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        p = self.params
        points = 2 * len(staircase(0.0, p.v_set_max, p.v_step)) + 2 * len(staircase(0.0, p.v_reset_min, p.v_step)) - 2
        n = len(self.cells) * p.cycles * points
        return {"iv_sweep": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        assert p.current_limit is not None
        up = staircase(0.0, p.v_set_max, p.v_step)
        down = staircase(0.0, p.v_reset_min, p.v_step)
        branches = (("set", np.concatenate([up, up[-2::-1]])), ("reset", np.concatenate([down, down[-2::-1]])))
        for key, (row, col) in self.pending(self.cells, resume):
            for cycle in range(1, p.cycles + 1):
                for branch, volts in branches:
                    for v in volts:
                        r = station.dc_point(row, col, float(v), gate_voltage=p.gate_voltage,
                                             current_limit=p.current_limit, nplc=p.nplc)
                        yield Record("iv_sweep", {"row": row, "col": col, "cycle": cycle, "branch": branch,
                                                  "v": r.voltage, "i": r.current, "compliance": r.compliance,
                                                  "t": r.t})
            station.release()
            yield CellDone((row, col), key=key)
