"""``multilevel``: program the cells to N conductance levels by program-verify (arXiv 2502.04524), then read each
cell once ``settle`` s after its programming, to count the states that stay distinguishable.

The cells are split evenly over the levels (cell k of the step gets level k mod N); with ``rounds`` > 1 the
whole set is programmed again with the levels rotated, so every cell visits several levels. Programming uses the
station's program-verify (identical pulses, SET below / RESET above the band, amplitudes per target band); the
settle reads go to the ``retention`` table (τ = settle) so later retention steps and the relaxation analysis see
them as what they are.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import CELL_COLUMNS, Cell, CellDone, Event, ParameterError, Protocol, Record, Resume, Violation, require
from .params import param
from .program_verify import MAX_EVENTS, VerifyParams
from .results import Programmed, ProgrammedCell, Results
from .retention import RETENTION_COLUMNS, retention_row


@dataclass(frozen=True)
class MultilevelParams(VerifyParams):
    """levels spread evenly over [g_low, g_high] (S); settle s after each programming for the read that counts
    the states (0: none); acceptance, pulses, width, gate and bands as ``program_verify``."""

    levels: int = param(8, 2, 1000, doc="conductance levels, evenly spaced from g_low to g_high", integer=True)
    g_low: float = param(10e-6, 1e-9, 1e-2, "S", "lowest level")
    g_high: float = param(85e-6, 1e-9, 1e-2, "S", "highest level (> g_low)")
    rounds: int = param(1, 1, 1000, doc="times every cell is programmed (levels rotate)", integer=True)
    settle: float = param(600.0, 0.0, 1e7, "s", "read each cell this long after its programming (0: no read)")

    def cross_check(self) -> None:
        super().cross_check()
        require("g_high", self.g_high, math.nextafter(self.g_low, math.inf), 1e-2, "S")

    def check_cells(self, n_cells: int) -> None:
        if n_cells < self.levels:
            raise ParameterError(f"levels: {self.levels} levels need at least as many cells, the step has {n_cells}")
        if n_cells * self.rounds > MAX_EVENTS:
            raise ParameterError(f"rounds: {n_cells * self.rounds} programmings; at most {MAX_EVENTS} per step")

    def targets(self) -> np.ndarray:
        """The level conductances (S)."""
        return np.linspace(self.g_low, self.g_high, self.levels)


class Multilevel(Protocol):
    name = "multilevel"
    Params = MultilevelParams
    tables = {
        "multilevel": {**CELL_COLUMNS, "round": (np.int32, "", "programming round from 1"),
                       "level": (np.int32, "", "level index from 0 (lowest conductance)"),
                       "target": (np.float64, "S", "level conductance"),
                       "acceptance": (np.float64, "", "acceptance range, fraction of target"),
                       "g_prog": (np.float64, "S", "last verify read"),
                       "iterations": (np.int32, "", "pulses applied"),
                       "converged": (bool, "bool", "last read inside the acceptance range"),
                       "t_prog": (np.float64, "s", "time of the last verify read")},
        "retention": RETENTION_COLUMNS,        # the settle reads (τ = settle)
    }

    def plan(self) -> list[tuple[Any, ...]]:
        """Units in order: ("p", round, row, col, level) programmings, then ("s", round) the round's settle reads."""
        p, n = self.params, len(self.cells)
        shift = max(p.levels // p.rounds, 1)
        units: list[tuple[Any, ...]] = []
        for j in range(p.rounds):
            units += [("p", j + 1, r, c, (k + j * shift) % p.levels) for k, (r, c) in enumerate(self.cells)]
            if p.settle > 0:
                units.append(("s", j + 1))
        assert len(units) == p.rounds * (n + (p.settle > 0))
        return units

    def extra_checks(self, env: SafetyEnvelope) -> list[Violation]:
        out = []
        for target in self.params.targets():
            try:
                self.params.band(float(target))
            except ParameterError as e:
                out.append(Violation(self.label, "g_low/g_high", float(target), str(e)))
        return out

    def units(self) -> int:
        """One unit per programming and one per settle read."""
        p = self.params
        return p.rounds * len(self.cells) * (2 if p.settle > 0 else 1)

    def units_done(self, resume: Resume | None) -> int:
        if not resume:
            return 0
        n = len(self.cells)
        return sum(n if self.plan()[int(k)][0] == "s" else 1 for k in resume.done)

    def pulses_per_cell(self) -> dict[Cell, int]:
        per = self.params.rounds * self.params.max_iterations
        return {cell: k * per for cell, k in Counter(self.cells).items()}

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = self.params.rounds * len(self.cells)
        return {"multilevel": (n, n), "retention": (n, n) if self.params.settle > 0 else (0, 0)}

    def restore(self, results: Results, resume: Resume) -> None:
        programmed = results.setdefault(Programmed)
        df = resume.table("multilevel")
        if df is not None:
            for row, col, target, g, t, ok in zip(df["row"], df["col"], df["target"], df["g_prog"], df["t_prog"],
                                                  df["converged"], strict=True):
                programmed.record((row, col), ProgrammedCell(float(target), float(g), float(t), bool(ok),
                                                             self.params.acceptance))

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        targets = p.targets()
        programmed = results.setdefault(Programmed)
        this_round: dict[int, list[tuple[int, int, ProgrammedCell]]] = {}
        done_rows = resume.table("multilevel") if resume else None
        if done_rows is not None:                 # programmings of unfinished rounds, for their settle reads
            for row, col, rnd, target, g, t, ok in zip(done_rows["row"], done_rows["col"], done_rows["round"],
                                                       done_rows["target"], done_rows["g_prog"],
                                                       done_rows["t_prog"], done_rows["converged"], strict=True):
                this_round.setdefault(int(rnd), []).append(
                    (int(row), int(col), ProgrammedCell(float(target), float(g), float(t), bool(ok), p.acceptance)))
        for key, unit in self.pending(self.plan(), resume):
            if unit[0] == "p":
                _, rnd, row, col, level = unit
                target = float(targets[level])
                v_set, v_reset = p.band(target)
                band = p.acceptance * target
                steps = station.verify(row, col, target=target, band=band, v_set=v_set, v_reset=v_reset,
                                       width=p.width, gate_voltage=p.gate_voltage, max_pulses=p.max_iterations)
                r = steps[-1][1]
                g = r.conductance
                converged = abs(g - target) <= band and math.isfinite(g)
                yield Record("multilevel", {"row": row, "col": col, "round": rnd, "level": level, "target": target,
                                            "acceptance": p.acceptance, "g_prog": g, "iterations": len(steps) - 1,
                                            "converged": converged, "t_prog": r.t})
                done = ProgrammedCell(target, g, r.t, converged, p.acceptance)
                this_round.setdefault(rnd, []).append((row, col, done))
                programmed.record((row, col), done)
                yield CellDone((row, col), key=key)
            else:
                rnd = unit[1]
                cells = sorted(this_round.get(rnd, []), key=lambda x: x[2].t)
                for row, col, prog in cells:      # settle s after its own programming, or late (actual τ kept)
                    if prog.t + p.settle - station.clock.now() > 0:
                        station.release()
                    station.clock.wait_until(prog.t + p.settle)
                    read = station.read(row, col)
                    yield Record("retention", retention_row(row, col, prog, read.conductance, read.t))
                    programmed.record((row, col), ProgrammedCell(prog.target, prog.g, prog.t, prog.converged,
                                                                 prog.acceptance, p.settle))
                yield CellDone(None, work=len(self.cells), key=key)
        station.release()
