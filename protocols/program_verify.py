"""``program_verify``: the paper's closed-loop scheme (arXiv 2502.04524; device-model.md §5).

Read G; while it lies outside target ± acceptance·target, apply one identical pulse whose polarity
follows the sign of the error (SET below, RESET above) and read again, up to max_iterations. Pulse
amplitudes depend only on the target band (10–30 µS: +1.35/−1.5 V; 30–60 µS: +1.35/−1.3 V;
60–90 µS: +1.5/−1.3 V). Every iteration is recorded; one result row per programmed cell.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import (
    CELL_COLUMNS,
    Cell,
    CellDone,
    Event,
    ParameterError,
    Protocol,
    Record,
    Violation,
    require,
    require_int,
    require_list,
)

PAPER_BANDS = [[0.0, 30e-6, 1.35, -1.5], [30e-6, 60e-6, 1.35, -1.3], [60e-6, 1.0, 1.5, -1.3]]


@dataclass(frozen=True)
class ProgramVerifyParams:
    """targets S (None: spread from target_min to target_max over the cells); acceptance fraction of target;
    bands [[g_low, g_high, v_set, v_reset], …] (S, S, V, V); rounds: times each cell is programmed (targets
    rotate between rounds); reset_first: RESET pulses before programming so it ends on a fresh pulse."""

    acceptance: float = 0.02
    targets: list[float] | None = None
    target_min: float = 10e-6
    target_max: float = 90e-6
    max_iterations: int = 1000
    width: float = 2.5e-6
    gate_voltage: float | None = None
    bands: list[list[float]] = field(default_factory=lambda: [list(b) for b in PAPER_BANDS])
    rounds: int = 1
    reset_first: int = 0

    def __post_init__(self) -> None:
        require("acceptance", self.acceptance, 1e-5, 0.5)
        require("target_min", self.target_min, 1e-9, 1e-2, "S")
        require("target_max", self.target_max, self.target_min, 1e-2, "S")
        require_int("max_iterations", self.max_iterations, 1, 1_000_000)
        require("width", self.width, 1e-9, 10.0, "s")
        require_int("rounds", self.rounds, 1, 1000)
        require_int("reset_first", self.reset_first, 0, 1000)
        require_list("targets", self.targets, allow_none=True)
        require_list("bands", self.bands)
        for t in self.targets or []:
            require("targets[]", t, 1e-9, 1e-2, "S")
        if self.targets is not None and not self.targets:
            raise ParameterError("targets: empty list")
        if not self.bands:
            raise ParameterError("bands: empty list; give at least one [g_low, g_high, v_set, v_reset]")
        for b in self.bands:
            if len(b) != 4 or not b[0] < b[1] or b[2] <= 0 or b[3] >= 0:
                raise ParameterError(f"bands: each band is [g_low < g_high, v_set > 0, v_reset < 0], got {b!r}")

    def band(self, target: float) -> tuple[float, float]:
        for lo, hi, v_set, v_reset in self.bands:
            if lo <= target < hi:
                return v_set, v_reset
        raise ParameterError(f"no programming band holds target {target} S")


class ProgramVerify(Protocol):
    name = "program_verify"
    Params = ProgramVerifyParams
    tables = {
        "program_verify": {**CELL_COLUMNS, "target": (np.float64, "S", "target conductance"),
                           "acceptance": (np.float64, "", "acceptance range, fraction of target"),
                           "iteration": (np.int32, "", "0 = initial read, then one per pulse"),
                           "v_pulse": (np.float64, "V", "pulse before this read (0: none)"),
                           "g": (np.float64, "S", "verify read"), "t": (np.float64, "s", "time of the read")},
        "program_verify_result": {**CELL_COLUMNS, "target": (np.float64, "S", "target conductance"),
                                  "acceptance": (np.float64, "", "acceptance range, fraction of target"),
                                  "g_final": (np.float64, "S", "last verify read"),
                                  "iterations": (np.int32, "", "pulses applied"),
                                  "converged": (bool, "bool", "last read inside the acceptance range"),
                                  "t_done": (np.float64, "s", "time of the last read")},
    }

    def assignments(self) -> list[tuple[int, int, float]]:
        """(row, col, target) in programming order."""
        p = self.params
        n = len(self.cells)
        targets = list(p.targets) if p.targets is not None else list(np.linspace(p.target_min, p.target_max, n))
        stride = max(len(targets) // p.rounds, 1)
        return [(r, c, float(targets[(k + j * stride) % len(targets)]))
                for j in range(p.rounds) for k, (r, c) in enumerate(self.cells)]

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        p, out = self.params, []
        for _, _, target in self.assignments():
            try:
                p.band(target)
            except ParameterError as e:
                out.append(Violation(self.label, "targets", target, str(e)))
        for _, _, v_set, v_reset in p.bands:
            self.voltage(out, env, "bit_line", "bands.v_set", v_set)
            self.voltage(out, env, "bit_line", "bands.v_reset", v_reset)
        self.width(out, env, "width", p.width, max(max(abs(b[2]), abs(b[3])) for b in p.bands))
        if p.gate_voltage is not None:
            self.voltage(out, env, "word_line", "gate_voltage", p.gate_voltage)
        return out

    def units(self) -> int:
        return len(self.assignments())

    def pulses_per_cell(self) -> dict[Cell, int]:
        per_event = self.params.max_iterations + self.params.reset_first
        events = Counter((row, col) for row, col, _ in self.assignments())
        return {cell: n * per_event for cell, n in events.items()}

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        programmed = context.setdefault("programmed", {})
        for row, col, target in self.assignments():
            v_set, v_reset = p.band(target)
            common = {"row": row, "col": col, "target": target, "acceptance": p.acceptance}
            if p.reset_first:
                for _ in range(p.reset_first):
                    station.pulse(row, col, min(v_reset for *_, v_reset in p.bands), p.width, p.gate_voltage)
            r = station.read(row, col)
            g, it = r.conductance, 0
            yield Record("program_verify", {**common, "iteration": 0, "v_pulse": 0.0, "g": g, "t": r.t})
            band = p.acceptance * target
            while abs(g - target) > band and it < p.max_iterations:
                v = v_set if g < target else v_reset
                r = station.pulse_read(row, col, v, p.width, p.gate_voltage)
                g, it = r.conductance, it + 1
                yield Record("program_verify", {**common, "iteration": it, "v_pulse": v, "g": g, "t": r.t})
            converged = abs(g - target) <= band and math.isfinite(g)
            yield Record("program_verify_result", {**common, "g_final": g, "iterations": it, "converged": converged,
                                                   "t_done": r.t})
            programmed[(row, col)] = (target, g, r.t)
            yield CellDone((row, col))
        station.release()
