"""``ispp``: incremental step pulse programming with verify.

Read G; while it is below the target band (SET, ``v_start`` > 0) or above it (RESET, ``v_start`` < 0), apply a
pulse whose amplitude grows by ``v_step`` per pulse from ``v_start`` towards ``v_stop`` (and, optionally, whose
width grows by ``width_step`` up to ``width_max``), reading after each pulse. It stops when the read is inside
target ± acceptance·target (converged), when it passed the band (overshoot: ISPP moves one way only), or when the
next pulse would exceed ``v_stop`` or ``max_pulses``. The staircase's worst case — every amplitude step up to
``v_stop`` — is the declared pulse budget per programming.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation

from .base import CELL_COLUMNS, Cell, CellDone, Event, ParameterError, Protocol, Record, Resume
from .params import GATE, ProtocolParams, list_param, number, param
from .results import Programmed, ProgrammedCell, Results
from .retention import RETENTION_COLUMNS

MAX_EVENTS = 100_000      # programmings (cells × targets) in one step


@dataclass(frozen=True)
class IsppParams(ProtocolParams):
    """Amplitudes V (v_start > 0: SET staircase, < 0: RESET staircase; v_stop on the same side, |v_stop| >= |v_start|),
    widths s, targets S, acceptance fraction of the target."""

    v_start: float = param(0.8, -20.0, 20.0, "V", "first pulse amplitude (+ SET, - RESET)", applies="pulse")
    v_step: float = param(0.02, 1e-4, 5.0, "V", "amplitude increase per pulse (magnitude)")
    v_stop: float = param(1.6, -20.0, 20.0, "V", "largest amplitude (same sign as v_start)", applies="pulse")
    width: float = param(2.5e-6, 1e-9, 10.0, "s", "first pulse width", applies="width")
    width_step: float = param(0.0, 0.0, 1.0, "s", "width increase per pulse (0: constant width)")
    width_max: float | None = param(None, 1e-9, 10.0, "s", "largest width (needed with width_step)",
                                    applies="width")
    gate_voltage: float | None = param(None, *GATE, "V", "word-line voltage (unset: station read gate)",
                                       applies="word_line")
    targets: list[float] = list_param([60e-6], number(1e-9, 1e-2, "S"), max_len=10_000,
                                      doc="target conductances, assigned to the cells in turn")
    acceptance: float = param(0.02, 1e-5, 0.5, doc="acceptance range, fraction of the target")
    max_pulses: int = param(1000, 1, 1_000_000, doc="pulses per programming at most", integer=True)

    def cross_check(self) -> None:
        if self.v_start == 0.0 or math.copysign(1.0, self.v_start) != math.copysign(1.0, self.v_stop) \
                or abs(self.v_stop) < abs(self.v_start):
            raise ParameterError(f"v_stop must be on the side of v_start (SET > 0, RESET < 0) and at least as large, "
                                 f"got v_start = {self.v_start} V, v_stop = {self.v_stop} V")
        if self.width_step > 0.0 and self.width_max is None:
            raise ParameterError("width_max: needed when width_step > 0 (the largest width the staircase may reach)")
        if self.width_max is not None and self.width_max < self.width:
            raise ParameterError(f"width_max must be >= width = {self.width} s, got {self.width_max} s")

    def check_cells(self, n_cells: int) -> None:
        if n_cells > MAX_EVENTS:
            raise ParameterError(f"cells: at most {MAX_EVENTS} programmings per step, got {n_cells}")

    def steps(self) -> int:
        """Pulses in the full staircase: amplitudes v_start, v_start ± v_step, … up to v_stop, capped by max_pulses."""
        n = int(math.floor((abs(self.v_stop) - abs(self.v_start)) / self.v_step + 1e-9)) + 1
        return min(n, self.max_pulses)

    def pulse(self, k: int) -> tuple[float, float]:
        """(amplitude V, width s) of pulse k (0-based)."""
        sign = math.copysign(1.0, self.v_start)
        v = round(self.v_start + sign * k * self.v_step, 9)
        w = self.width + k * self.width_step
        return v, (min(w, self.width_max) if self.width_max is not None else w)


class Ispp(Protocol):
    name = "ispp"
    Params = IsppParams
    tables = {
        "ispp": {**CELL_COLUMNS, "target": (np.float64, "S", "target conductance"),
                 "pulse": (np.int32, "", "0 = initial read, then one per pulse"),
                 "v_pulse": (np.float64, "V", "pulse before this read (0: none)"),
                 "width": (np.float64, "s", "width of that pulse (0: none)"),
                 "g": (np.float64, "S", "verify read"), "t": (np.float64, "s", "time of the read")},
        "ispp_result": {**CELL_COLUMNS, "target": (np.float64, "S", "target conductance"),
                        "acceptance": (np.float64, "", "acceptance range, fraction of target"),
                        "g_final": (np.float64, "S", "last verify read"),
                        "pulses": (np.int32, "", "pulses applied"),
                        "v_final": (np.float64, "V", "amplitude of the last pulse (0: none)"),
                        "converged": (bool, "bool", "last read inside the acceptance range"),
                        "overshoot": (bool, "bool", "the read passed the band (ISPP does not turn back)"),
                        "t_done": (np.float64, "s", "time of the last read")},
        "retention": RETENTION_COLUMNS,      # declared so a later retention step shares the table's layout
    }

    def assignments(self) -> list[tuple[int, int, float]]:
        t = self.params.targets
        return [(r, c, float(t[k % len(t)])) for k, (r, c) in enumerate(self.cells)]

    def pulses_per_cell(self) -> dict[Cell, int]:
        n = self.params.steps()
        return {cell: k * n for cell, k in Counter((r, c) for r, c, _ in self.assignments()).items()}

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n, steps = len(self.cells), self.params.steps()
        return {"ispp": (n * (1 + min(steps, 30)), n * (1 + steps)), "ispp_result": (n, n), "retention": (0, 0)}

    def restore(self, results: Results, resume: Resume) -> None:
        programmed = results.setdefault(Programmed)
        df = resume.table("ispp_result")
        if df is not None:
            for row, col, target, g, t, ok in zip(df["row"], df["col"], df["target"], df["g_final"], df["t_done"],
                                                  df["converged"], strict=True):
                programmed.record((row, col), ProgrammedCell(float(target), float(g), float(t), bool(ok),
                                                             self.params.acceptance))

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        programmed = results.setdefault(Programmed)
        set_ = p.v_start > 0
        for key, (row, col, target) in self.pending(self.assignments(), resume):
            band = p.acceptance * target
            common = {"row": row, "col": col, "target": target}
            r = station.read(row, col)
            yield Record("ispp", {**common, "pulse": 0, "v_pulse": 0.0, "width": 0.0, "g": r.conductance, "t": r.t})
            pulses, v = 0, 0.0
            g = r.conductance
            while pulses < p.steps() and (g < target - band if set_ else g > target + band):
                v, w = p.pulse(pulses)
                r = station.pulse_read(row, col, v, w, p.gate_voltage)
                pulses += 1
                g = r.conductance
                yield Record("ispp", {**common, "pulse": pulses, "v_pulse": v, "width": w, "g": g, "t": r.t})
            converged = abs(g - target) <= band and math.isfinite(g)
            overshoot = (g > target + band) if set_ else (g < target - band)
            yield Record("ispp_result", {**common, "acceptance": p.acceptance, "g_final": g, "pulses": pulses,
                                         "v_final": v, "converged": converged, "overshoot": bool(overshoot),
                                         "t_done": r.t})
            programmed.record((row, col), ProgrammedCell(target, g, r.t, converged, p.acceptance))
            yield CellDone((row, col), key=key)
        station.release()
