"""``program_verify``: the paper's closed-loop scheme (arXiv 2502.04524).

Read G; while it lies outside target ± acceptance·target, apply one identical pulse whose polarity
follows the sign of the error (SET below, RESET above) and read again, up to max_iterations. Pulse
amplitudes depend only on the target band (10–30 µS: +1.35/−1.5 V; 30–60 µS: +1.35/−1.3 V;
60–90 µS: +1.5/−1.3 V). Every iteration is recorded; one result row per programmed cell.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

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
    Resume,
    Violation,
    require,
)
from .params import GATE, ProtocolParams, list_param, number, param, rows_param, short
from .results import Programmed, ProgrammedCell, Results
from .retention import RETENTION_COLUMNS, retention_row

PAPER_BANDS = [[0.0, 30e-6, 1.35, -1.5], [30e-6, 60e-6, 1.35, -1.3], [60e-6, 1.0, 1.5, -1.3]]
BAND_COLUMNS = {"g_low": number(0.0, 1.0, "S"), "g_high": number(0.0, 1.0, "S"),
                "v_set": number(1e-3, 20.0, "V", applies="pulse"),
                "v_reset": number(-20.0, -1e-3, "V", applies="pulse")}
MAX_EVENTS = 100_000     # programming events (cells × rounds) in one step; split a larger step


def band_of(bands: list[list[float]], target: float) -> tuple[float, float]:
    """(v_set, v_reset) V of the band [g_low, g_high) holding ``target`` S (ParameterError if none does)."""
    for lo, hi, v_set, v_reset in bands:
        if lo <= target < hi:
            return v_set, v_reset
    raise ParameterError(f"no programming band holds target {target} S")


@dataclass(frozen=True)
class VerifyParams(ProtocolParams):
    """What every program-verify scheme needs: acceptance fraction of the target, pulses per programming at most,
    pulse width s, gate V (None: the station's read gate), bands [[g_low, g_high, v_set, v_reset], …] (S, S, V,
    V) giving the pulse amplitudes per target band (``program_verify``, ``multilevel``)."""

    acceptance: float = param(0.02, 1e-5, 0.5, doc="acceptance range, fraction of the target")
    max_iterations: int = param(1000, 1, 1_000_000, doc="pulses per programming at most", integer=True)
    width: float = param(2.5e-6, 1e-9, 10.0, "s", "pulse width (the envelope bounds it further)", applies="width")
    gate_voltage: float | None = param(None, *GATE, "V", "word-line voltage (unset: station read gate)",
                                       applies="word_line")
    bands: list[list[float]] = rows_param(PAPER_BANDS, BAND_COLUMNS, max_len=100,
                                          doc="[g_low, g_high, v_set, v_reset]: pulse amplitudes per target band")

    def cross_check(self) -> None:
        for i, (g_low, g_high, _, _) in enumerate(self.bands):
            if not g_low < g_high:
                raise ParameterError(f"bands[{i}]: each band is [g_low < g_high, v_set > 0, v_reset < 0], got "
                                     f"{short(self.bands[i])}")

    def band(self, target: float) -> tuple[float, float]:
        """(v_set, v_reset) V of the band holding ``target`` S (ParameterError if none does)."""
        return band_of(self.bands, target)


@dataclass(frozen=True)
class ProgramVerifyParams(VerifyParams):
    """targets S (None: spread from target_min to target_max over the cells); rounds: times each cell is
    programmed (targets rotate between rounds); reset_first: RESET pulses before programming so it ends on a
    fresh pulse; read_after: reads right after each programming (plus :class:`VerifyParams`)."""

    targets: list[float] | None = list_param(None, number(1e-9, 1e-2, "S"), max_len=10_000,
                                             doc="target conductances (unset: target_min..target_max)")
    target_min: float = param(10e-6, 1e-9, 1e-2, "S", "lowest target when targets is unset")
    target_max: float = param(90e-6, 1e-9, 1e-2, "S", "highest target when targets is unset (>= target_min)")
    rounds: int = param(1, 1, 1000, doc="times each cell is programmed (targets rotate)", integer=True)
    reset_first: int = param(0, 0, 1000, doc="RESET pulses before each programming", integer=True)
    read_after: list[float] = list_param([], number(1e-3, 3600.0, "s"), max_len=100, min_len=0,
                                         doc="reads of each programmed cell at these times after its programming, "
                                             "before the next one (table retention: relaxation from τ ≈ 1 s)")

    def cross_check(self) -> None:
        super().cross_check()
        require("target_max", self.target_max, self.target_min, 1e-2, "S")
        if list(self.read_after) != sorted(set(self.read_after)):
            raise ParameterError(f"read_after must be increasing times (s), got {short(self.read_after)}")

    def check_cells(self, n_cells: int) -> None:
        if n_cells * self.rounds > MAX_EVENTS:
            raise ParameterError(f"rounds: {self.rounds} rounds × {n_cells} cells = {n_cells * self.rounds} "
                                 f"programming events; at most {MAX_EVENTS} per step (split the step)")

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
        "retention": RETENTION_COLUMNS,
    }

    def assignments(self) -> list[tuple[int, int, float]]:
        """(row, col, target) in programming order."""
        p = self.params
        n = len(self.cells)
        targets = list(p.targets) if p.targets is not None else list(np.linspace(p.target_min, p.target_max, n))
        stride = max(len(targets) // p.rounds, 1)
        return [(r, c, float(targets[(k + j * stride) % len(targets)]))
                for j in range(p.rounds) for k, (r, c) in enumerate(self.cells)]

    def extra_checks(self, env: SafetyEnvelope) -> list[Violation]:
        out = []
        for _, _, target in self.assignments():
            try:
                self.params.band(target)
            except ParameterError as e:
                out.append(Violation(self.label, "targets", target, str(e)))
        return out

    def units(self) -> int:
        return len(self.assignments())

    def pulses_per_cell(self) -> dict[Cell, int]:
        per_event = self.params.max_iterations + self.params.reset_first
        events = Counter((row, col) for row, col, _ in self.assignments())
        return {cell: n * per_event for cell, n in events.items()}

    def restore(self, results: Results, resume: Resume) -> None:
        """Programmed cells of the finished assignments, for later steps."""
        programmed = results.setdefault(Programmed)
        df = resume.table("program_verify_result")
        read_until = max(self.params.read_after, default=0.0)
        if df is not None:
            for row, col, target, acc, g, t, ok in zip(df["row"], df["col"], df["target"], df["acceptance"],
                                                       df["g_final"], df["t_done"], df["converged"], strict=True):
                programmed.record((row, col), ProgrammedCell(float(target), float(g), float(t), bool(ok), float(acc),
                                                             read_until))

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        """Verify reads: about 100 iterations per programming typically (the paper's 0.2 % needs ~120), every
        allowed iteration at worst."""
        n = len(self.assignments())
        cap, reads = self.params.max_iterations, len(self.params.read_after)
        return {"program_verify": (n * (1 + min(cap, 100)), n * (1 + cap)), "program_verify_result": (n, n),
                "retention": (n * reads, n * reads)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        programmed = results.setdefault(Programmed)
        for key, (row, col, target) in self.pending(self.assignments(), resume):
            v_set, v_reset = p.band(target)
            common = {"row": row, "col": col, "target": target, "acceptance": p.acceptance}
            if p.reset_first:
                for _ in range(p.reset_first):
                    station.pulse(row, col, min(v_reset for *_, v_reset in p.bands), p.width, p.gate_voltage)
            band = p.acceptance * target
            steps = station.verify(row, col, target=target, band=band, v_set=v_set, v_reset=v_reset, width=p.width,
                                   gate_voltage=p.gate_voltage, max_pulses=p.max_iterations)
            for it, (v, r) in enumerate(steps):
                yield Record("program_verify", {**common, "iteration": it, "v_pulse": v, "g": r.conductance,
                                                "t": r.t})
            it, r = len(steps) - 1, steps[-1][1]
            g = r.conductance
            converged = abs(g - target) <= band and math.isfinite(g)
            yield Record("program_verify_result", {**common, "g_final": g, "iterations": it, "converged": converged,
                                                   "t_done": r.t})
            done = ProgrammedCell(target, g, r.t, converged, p.acceptance, max(p.read_after, default=0.0))
            for tau in p.read_after:                   # relaxation from τ ≈ 1 s, before the next cell is programmed
                if r.t + tau - station.clock.now() > 0:
                    station.release()                  # no bias while the cell relaxes
                station.clock.wait_until(r.t + tau)
                read = station.read(row, col)
                yield Record("retention", retention_row(row, col, done, read.conductance, read.t))
            programmed.record((row, col), done)
            yield CellDone((row, col), key=key)
        station.release()
