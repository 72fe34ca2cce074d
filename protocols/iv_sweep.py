"""``iv_sweep``: DC double sweep for SET (0 → +V → 0) and RESET (0 → −V → 0) with a current limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import CELL_COLUMNS, CellDone, Event, Protocol, Record, Violation, require, require_int
from .forming import staircase


@dataclass(frozen=True)
class IVSweepParams:
    """Voltages V, currents A; switching below 1.5 V for CMO/HfOx (arXiv 2502.04524)."""

    current_limit: float | None = None
    v_set_max: float = 1.5
    v_reset_min: float = -1.5
    v_step: float = 0.02
    gate_voltage: float = 1.2
    nplc: float = 0.1
    cycles: int = 1

    def __post_init__(self) -> None:
        require("current_limit", self.current_limit, 1e-12, 0.1, "A", allow_none=True)   # None: preflight refuses
        require("v_set_max", self.v_set_max, 0.05, 20.0, "V")
        require("v_reset_min", self.v_reset_min, -20.0, -0.05, "V")
        require("v_step", self.v_step, 1e-4, 1.0, "V")
        require("nplc", self.nplc, 0.001, 25)
        require_int("cycles", self.cycles, 1, 10_000)


class IVSweep(Protocol):
    name = "iv_sweep"
    Params = IVSweepParams
    tables = {"iv_sweep": {**CELL_COLUMNS, "cycle": (np.int32, "", "cycle from 1"),
                           "branch": (str, "", "'set' or 'reset'"), "v": (np.float64, "V", "bit-line voltage"),
                           "i": (np.float64, "A", "bit-line current"),
                           "compliance": (bool, "bool", "source at its limit"), "t": (np.float64, "s", "time")}}

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        p, out = self.params, []
        self.voltage(out, env, "bit_line", "v_set_max", p.v_set_max)
        self.voltage(out, env, "bit_line", "v_reset_min", p.v_reset_min)
        self.voltage(out, env, "word_line", "gate_voltage", p.gate_voltage)
        self.limit(out, env, "current_limit", p.current_limit)
        return out

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        assert p.current_limit is not None
        up = staircase(0.0, p.v_set_max, p.v_step)
        down = staircase(0.0, p.v_reset_min, p.v_step)
        branches = (("set", np.concatenate([up, up[-2::-1]])), ("reset", np.concatenate([down, down[-2::-1]])))
        for row, col in self.cells:
            for cycle in range(1, p.cycles + 1):
                for branch, volts in branches:
                    for v in volts:
                        r = station.dc_point(row, col, float(v), gate_voltage=p.gate_voltage,
                                             current_limit=p.current_limit, nplc=p.nplc)
                        yield Record("iv_sweep", {"row": row, "col": col, "cycle": cycle, "branch": branch,
                                                  "v": r.voltage, "i": r.current, "compliance": r.compliance,
                                                  "t": r.t})
            station.release()
            yield CellDone((row, col))
