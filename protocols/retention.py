"""``retention``: reads on a log-spaced schedule from t_first to a horizon after each cell was programmed,
interleaved across cells in time order, recording the actual read time (late reads keep their real
timestamp). Waits go through ``station.clock``: virtual time on the simulator, real time in the lab."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rramlab.analysis.retention import TEN_YEARS
from rramlab.drivers.capabilities import CellStation

from .base import CELL_COLUMNS, CellDone, Event, ParameterError, Protocol, Record, Resume, require
from .params import ProtocolParams, list_param, number, param
from .results import Programmed, ProgrammedCell, Results

MAX_SCHEDULE = 10_000     # reads per cell
RETENTION_COLUMNS = {**CELL_COLUMNS, "target": (np.float64, "S", "programmed target (NaN: unknown)"),
                     "acceptance": (np.float64, "", "acceptance range of the programming, fraction of target "
                                                    "(NaN: unknown)"),
                     "converged": (bool, "bool", "the programming ended inside its acceptance range (false: "
                                                 "not converged or not programmed in this run)"),
                     "g0": (np.float64, "S", "conductance at programming (last verify read)"),
                     "t_prog": (np.float64, "s", "time of programming"),
                     "tau": (np.float64, "s", "actual time since programming"),
                     "g": (np.float64, "S", "conductance read"), "t": (np.float64, "s", "time of the read")}


def retention_row(row: int, col: int, programmed: ProgrammedCell, g: float, t: float) -> dict[str, Any]:
    """A ``retention`` table row: the read (g S at t s) of a cell programmed as ``programmed``."""
    return {"row": row, "col": col, "target": programmed.target, "acceptance": programmed.acceptance,
            "converged": programmed.converged, "g0": programmed.g, "t_prog": programmed.t,
            "tau": t - programmed.t, "g": g, "t": t}


def _records(due: list[tuple[int, tuple[int, int]]], readings: list[Any],
             start: dict[tuple[int, int], ProgrammedCell]) -> Iterator[Record]:
    """The ``retention`` rows of the readings made for ``due`` ((schedule index, cell) each), in order."""
    for (_, (row, col)), r in zip(due, readings, strict=False):
        yield Record("retention", retention_row(row, col, start[(row, col)], r.conductance, r.t))


@dataclass(frozen=True)
class RetentionParams(ProtocolParams):
    """t_first s after programming, horizon s, points_per_decade, also_at extra τ values (s, e.g. 3600);
    flush_every reads per durability point at most; before any wait longer than idle_after s the outputs
    are turned off and the reads so far are made durable (a Ctrl-C stop point on a lab bench); delay_fraction:
    how long (fraction of its own τ) a read may wait for the reads falling due after it, so that they share one
    call (0: each read as soon as it is due); the reads of a batch are then made one after the other."""

    t_first: float = param(1.0, 1e-3, 1e9, "s", "first read after programming")
    horizon: float = param(TEN_YEARS, 1e-3, 1e10, "s", "last read after programming (>= t_first)")
    points_per_decade: int = param(4, 1, 100, doc="reads per decade of time", integer=True)
    also_at: list[float] = list_param([], number(1e-3, 1e10, "s"), max_len=1000, min_len=0,
                                      doc="extra read times (within [t_first, horizon])")
    flush_every: int = param(64, 1, 1_000_000, doc="reads per durability point at most", integer=True)
    delay_fraction: float = param(0.0, 0.0, 0.5, "", "a read may wait this fraction of its τ for the reads due after "
                                  "it (one transaction where the station routes on the SMU)")
    idle_after: float = param(10.0, 0.0, 1e9, "s", "outputs off before waits longer than this")

    def cross_check(self) -> None:
        require("horizon", self.horizon, self.t_first, 1e10, "s")
        for i, t in enumerate(self.also_at):
            require(f"also_at[{i}]", t, self.t_first, self.horizon, "s")
        n = self.points_per_decade * math.log10(self.horizon / self.t_first) + len(self.also_at) + 2
        if n > MAX_SCHEDULE:       # not reachable within the ranges above; kept as the allocation bound
            raise ParameterError(f"points_per_decade, also_at: about {int(n)} reads per cell; at most "
                                 f"{MAX_SCHEDULE}")

    def schedule(self) -> np.ndarray:
        """τ values (s): t_first·10^(k/n) up to and including the horizon."""
        k_max = int(math.floor(self.points_per_decade * math.log10(self.horizon / self.t_first) + 1e-9))
        taus = self.t_first * 10.0 ** (np.arange(k_max + 1) / self.points_per_decade)
        taus = np.concatenate([taus, [self.horizon], self.also_at])
        return np.unique(np.round(taus, 9))


class Retention(Protocol):
    name = "retention"
    rows_complete = True
    Params = RetentionParams
    tables = {"retention": RETENTION_COLUMNS}

    def units(self) -> int:
        """Progress in reads: every cell at every τ of the schedule."""
        return len(self.cells) * len(self.params.schedule())

    @staticmethod
    def _skipped(taus: np.ndarray, programmed: ProgrammedCell | None) -> int:
        """Reads of the schedule that the programming step already made (τ ≤ its read_until)."""
        if programmed is None or programmed.read_until <= 0.0:
            return 0
        return int(np.searchsorted(taus, programmed.read_until * (1 + 1e-9), side="right"))

    def units_given(self, results: Results) -> int:
        """Reads still to make once earlier steps are known: reads a programming step already made are not
        repeated."""
        programmed = results.get(Programmed) or Programmed()
        taus = self.params.schedule()
        return sum(len(taus) - self._skipped(taus, programmed.get(cell)) for cell in self.cells)

    def units_done(self, resume: Resume | None) -> int:
        df = resume.table("retention") if resume else None
        return 0 if df is None else len(df)

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = self.units()
        return {"retention": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        programmed = results.get(Programmed) or Programmed()
        start: dict[tuple[int, int], ProgrammedCell] = {}
        reads_done: dict[tuple[int, int], int] = {}
        taus = p.schedule()
        done = resume.table("retention") if resume else None
        if done is not None:                          # a resumed step: each cell goes on from its last read
            mine = done.sort_values("t", kind="stable")
            for row, col, target, acc, ok, g0, t_prog in zip(mine["row"], mine["col"], mine["target"],
                                                             mine["acceptance"], mine["converged"], mine["g0"],
                                                             mine["t_prog"], strict=True):
                cell = (int(row), int(col))
                start.setdefault(cell, ProgrammedCell(float(target), float(g0), float(t_prog), bool(ok), float(acc)))
                reads_done[cell] = reads_done.get(cell, 0) + 1
        for cell in self.cells:
            reads_done[cell] = reads_done.get(cell, 0) + self._skipped(taus, programmed.get(cell))
            if cell in start:
                continue
            before = programmed.get(cell)
            if before is not None:
                start[cell] = before
            else:
                r = station.read(*cell)
                start[cell] = ProgrammedCell(float("nan"), r.conductance, r.t, False)
        queue = [(prog.t + taus[k], k, cell) for cell, prog in start.items()
                 if (k := reads_done.get(cell, 0)) < len(taus)]
        heapq.heapify(queue)
        pending = 0                                   # reads since the last durability point
        known = -math.inf                             # the clock has passed this time (s): the last read's
        while queue:
            t_due, k, cell = heapq.heappop(queue)
            # with it, up to a durability point, every read known to be due and those due before any read of the
            # batch would be later than its own allowed delay (delay_fraction of its τ)
            due = [(k, cell)]
            deadline = t_due + p.delay_fraction * taus[k]
            while queue and queue[0][0] <= max(known, deadline) and len(due) < p.flush_every - pending:
                t_due, k, cell = heapq.heappop(queue)     # in time order: the last one popped is due last
                due.append((k, cell))
                deadline = min(deadline, t_due + p.delay_fraction * taus[k])
            if t_due > known:                         # not yet known to be due: maybe a wait (else none to ask)
                # t_due - known bounds the wait from above: the clock is asked only when it may be a long one
                if t_due - known > p.idle_after and t_due - station.clock.now() > p.idle_after:
                    station.release()                 # no bias while the cells relax
                    if pending:
                        yield CellDone(None, work=pending)
                        pending = 0
                station.clock.wait_until(t_due)
            # one read per cell, outputs off around each (the next read is another cell, or the same after a wait);
            # a station whose SMU routes through its TSP-Link matrices reads them in one transaction
            try:
                readings = station.read_cells([cell for _, cell in due])
            except BaseException as e:     # a failure or Ctrl-C part-way carries the reads made before it: kept
                yield from _records(due, getattr(e, "readings", None) or [], start)
                raise
            yield from _records(due, readings, start)
            for k, cell in due:
                if k + 1 < len(taus):
                    heapq.heappush(queue, (start[cell].t + taus[k + 1], k + 1, cell))
            known = readings[-1].t
            pending += len(due)
            if pending == p.flush_every:
                yield CellDone(None, work=pending)
                pending = 0
        station.release()
        yield CellDone(None, work=pending)
