"""``forming``: quasi-static voltage ramp with gate-limited compliance until the current jumps, then the
first RESET into the analog window (arXiv 2502.04524 Fig. 1c: V_G = 1.2 V, sweep to +3.6 V, reset to
−1.4 V). Records V_form per cell and every sweep point; attempts are bounded by the safety envelope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import CELL_COLUMNS, CellDone, Event, ParameterError, Protocol, Record, Violation, require, require_int

SWEEP_COLUMNS = {**CELL_COLUMNS, "attempt": (np.int32, "", "forming attempt from 1"),
                 "branch": (str, "", "'form' or 'reset'"), "v": (np.float64, "V", "bit-line voltage"),
                 "i": (np.float64, "A", "bit-line current"), "compliance": (bool, "bool", "source at its limit"),
                 "t": (np.float64, "s", "time of the point")}


def staircase(start: float, stop: float, step: float) -> np.ndarray:
    """Voltages start, start ± step, … up to and including stop (rounded to 1 µV)."""
    n = int(np.floor(abs(stop - start) / abs(step) + 1e-9))
    v = start + np.sign(stop - start) * abs(step) * np.arange(n + 1)
    return np.round(v, 6)


@dataclass(frozen=True)
class FormingParams:
    """Voltages V, currents A. current_limit is mandatory (the bit-line source limit during the ramp)."""

    current_limit: float | None = None
    v_start: float = 0.0
    v_stop: float = 4.0
    v_step: float = 0.01
    gate_voltage: float = 1.2
    jump_current: float = 50e-6
    nplc: float = 1.0
    attempts: int = 1
    reset_voltage: float = -1.4
    reset_step: float = 0.02
    reset_gate_voltage: float = 1.2

    def __post_init__(self) -> None:
        require("current_limit", self.current_limit, 1e-12, 0.1, "A", allow_none=True)   # None: preflight refuses
        require("v_stop", self.v_stop, 0.1, 20.0, "V")
        require("v_start", self.v_start, 0.0, self.v_stop, "V")
        require("v_step", self.v_step, 1e-4, 1.0, "V")
        require("jump_current", self.jump_current, 1e-9, 0.1, "A")
        require("nplc", self.nplc, 0.001, 25)
        require_int("attempts", self.attempts, 1, 100)
        require("reset_voltage", self.reset_voltage, -20.0, 0.0, "V")
        require("reset_step", self.reset_step, 1e-4, 1.0, "V")
        if self.current_limit is not None and not self.jump_current < self.current_limit:
            raise ParameterError(f"jump_current must be below current_limit = {self.current_limit} A (the ramp "
                                 f"could never see the jump), got {self.jump_current} A")


class Forming(Protocol):
    name = "forming"
    Params = FormingParams
    tables = {
        "forming": {**CELL_COLUMNS, "v_form": (np.float64, "V", "voltage at the current jump (NaN: not formed)"),
                    "formed": (bool, "bool", "the current jumped"),
                    "i_form": (np.float64, "A", "current at the jump"),
                    "attempts": (np.int32, "", "ramps used"),
                    "g_after_reset": (np.float64, "S", "conductance after the first RESET"),
                    "t": (np.float64, "s", "time at the end of the cell")},
        "forming_sweep": SWEEP_COLUMNS,
    }

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        p, out = self.params, []
        self.voltage(out, env, "bit_line", "v_stop", p.v_stop)
        self.voltage(out, env, "bit_line", "reset_voltage", p.reset_voltage)
        self.voltage(out, env, "word_line", "gate_voltage", p.gate_voltage)
        self.voltage(out, env, "word_line", "reset_gate_voltage", p.reset_gate_voltage)
        self.limit(out, env, "current_limit", p.current_limit)
        if p.attempts > env.max_forming_attempts:
            out.append(Violation(self.label, "attempts", p.attempts,
                                 f"<= {env.max_forming_attempts} (safety.max_forming_attempts)"))
        return out

    def _point(self, station: CellStation, row: int, col: int, v: float, gate: float, attempt: int,
               branch: str) -> tuple[float, bool, Record]:
        """One staircase point: (current A, compliance, its sweep record)."""
        p = self.params
        assert p.current_limit is not None
        r = station.dc_point(row, col, v, gate_voltage=gate, current_limit=p.current_limit, nplc=p.nplc)
        return r.current, r.compliance, Record("forming_sweep", {
            "row": row, "col": col, "attempt": attempt, "branch": branch, "v": r.voltage, "i": r.current,
            "compliance": r.compliance, "t": r.t})

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        ramp = staircase(p.v_start, p.v_stop, p.v_step)
        reset = staircase(0.0, p.reset_voltage, p.reset_step)
        for row, col in self.cells:
            v_form, i_form, attempt = float("nan"), float("nan"), 0
            for attempt in range(1, p.attempts + 1):  # noqa: B007 - attempt is recorded
                for v in ramp:
                    current, compliance, record = self._point(station, row, col, float(v), p.gate_voltage,
                                                              attempt, "form")
                    yield record
                    if current >= p.jump_current or compliance:      # the filament formed: stop the ramp
                        v_form, i_form = float(v), current
                        break
                station.release()
                if v_form == v_form:
                    break
            g_reset = float("nan")
            if v_form == v_form:
                for v in reset:
                    yield self._point(station, row, col, float(v), p.reset_gate_voltage, attempt, "reset")[2]
                station.release()
                g_reset = station.read(row, col).conductance
            yield Record("forming", {"row": row, "col": col, "v_form": v_form, "formed": v_form == v_form,
                                     "i_form": i_form, "attempts": attempt, "g_after_reset": g_reset,
                                     "t": station.clock.now()})
            yield CellDone((row, col))
        station.release()
