"""``retention``: reads on a log-spaced schedule from t_first to a horizon after each cell was programmed,
interleaved across cells in time order, recording the actual read time (late reads keep their real
timestamp). Waits go through ``station.clock``: virtual time on the simulator, real time in the lab."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rramlab.analysis.retention import TEN_YEARS
from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import CELL_COLUMNS, CellDone, Event, Protocol, Record, Violation, require, require_int, require_list


@dataclass(frozen=True)
class RetentionParams:
    """t_first s after programming, horizon s, points_per_decade, also_at extra τ values (s, e.g. 3600);
    flush_every reads per durability point at most; before any wait longer than idle_after s the outputs
    are turned off and the reads so far are made durable (a Ctrl-C stop point on a lab bench)."""

    t_first: float = 1.0
    horizon: float = TEN_YEARS
    points_per_decade: int = 4
    also_at: list[float] = field(default_factory=list)
    flush_every: int = 64
    idle_after: float = 10.0

    def __post_init__(self) -> None:
        require("t_first", self.t_first, 1e-3, 1e9, "s")
        require("horizon", self.horizon, self.t_first, 1e10, "s")
        require_int("points_per_decade", self.points_per_decade, 1, 100)
        require_int("flush_every", self.flush_every, 1, 1_000_000)
        require("idle_after", self.idle_after, 0.0, 1e9, "s")
        require_list("also_at", self.also_at)
        for t in self.also_at:
            require("also_at[]", t, self.t_first, self.horizon, "s")

    def schedule(self) -> np.ndarray:
        """τ values (s): t_first·10^(k/n) up to and including the horizon."""
        k_max = int(math.floor(self.points_per_decade * math.log10(self.horizon / self.t_first) + 1e-9))
        taus = self.t_first * 10.0 ** (np.arange(k_max + 1) / self.points_per_decade)
        taus = np.concatenate([taus, [self.horizon], self.also_at])
        return np.unique(np.round(taus, 9))


class Retention(Protocol):
    name = "retention"
    Params = RetentionParams
    tables = {"retention": {**CELL_COLUMNS, "target": (np.float64, "S", "programmed target (NaN: unknown)"),
                            "g0": (np.float64, "S", "conductance at programming (last verify read)"),
                            "t_prog": (np.float64, "s", "time of programming"),
                            "tau": (np.float64, "s", "actual time since programming"),
                            "g": (np.float64, "S", "conductance read"), "t": (np.float64, "s", "time of the read")}}

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        return []

    def units(self) -> int:
        """Progress in reads: every cell at every τ of the schedule."""
        return len(self.cells) * len(self.params.schedule())

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        programmed = context.get("programmed", {})
        start: dict[tuple[int, int], tuple[float, float, float]] = {}
        for cell in self.cells:
            if cell in programmed:
                start[cell] = programmed[cell]
            else:
                r = station.read(*cell)
                start[cell] = (float("nan"), r.conductance, r.t)
        taus = p.schedule()
        queue = [(t_prog + taus[0], 0, cell) for cell, (_, _, t_prog) in start.items()]
        heapq.heapify(queue)
        pending = 0                                   # reads since the last durability point
        while queue:
            t_due, k, (row, col) = heapq.heappop(queue)
            target, g0, t_prog = start[(row, col)]
            if t_due - station.clock.now() > p.idle_after:
                station.release()                     # no bias while the cells relax
                if pending:
                    yield CellDone(None, work=pending)
                    pending = 0
            station.clock.wait_until(t_due)
            r = station.read(row, col)
            yield Record("retention", {"row": row, "col": col, "target": target, "g0": g0, "t_prog": t_prog,
                                       "tau": r.t - t_prog, "g": r.conductance, "t": r.t})
            if k + 1 < len(taus):
                heapq.heappush(queue, (t_prog + taus[k + 1], k + 1, (row, col)))
            pending += 1
            if pending == p.flush_every:
                yield CellDone(None, work=pending)
                pending = 0
        station.release()
        yield CellDone(None, work=pending)
