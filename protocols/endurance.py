"""``endurance``: full-window SET/RESET cycling with reads on a log-spaced set of cycle numbers.

Each cycle is ``pulses_per_half`` identical SET pulses then as many RESET pulses (no verify); several
pulses per half drive gradual (analog) cells into saturation at both ends of their window. At the
checkpoint cycles 1, …, 10^(k/points_per_decade), …, ``cycles`` the last SET and the last RESET pulse
are each followed by a read, giving the LRS and HRS conductance of that cycle; in between, pulses are
sent without reads, as endurance testers do.
A cell whose on/off ratio stays below ``min_on_off`` at ``fail_after`` consecutive checkpoints has
failed: its cycling stops there and ``failed`` is recorded, so a dead cell does not use up the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation, Reading

from .base import CELL_COLUMNS, Cell, CellDone, Event, Protocol, Record, Resume
from .params import GATE, ProtocolParams, param
from .results import Results


@dataclass(frozen=True)
class EnduranceParams(ProtocolParams):
    """set_voltage / reset_voltage V, width s, gate_voltage V (None = station read gate), cycles,
    pulses_per_half (SET pulses, then as many RESET pulses, per cycle), points_per_decade of the
    checkpoint schedule, min_on_off ratio and fail_after checkpoints below it. The ranges bound the
    checkpoint schedule to at most 100 × 9 + 1 cycle numbers."""

    set_voltage: float = param(1.5, 0.0, 20.0, "V", "SET amplitude", applies="pulse")
    reset_voltage: float = param(-1.5, -20.0, 0.0, "V", "RESET amplitude", applies="pulse")
    width: float = param(2.5e-6, 1e-9, 10.0, "s", "pulse width (the envelope bounds it further)", applies="width")
    gate_voltage: float | None = param(None, *GATE, "V", "word-line voltage (unset: station read gate)",
                                       applies="word_line")
    cycles: int = param(1000, 1, 1_000_000_000, doc="SET/RESET cycles per cell", integer=True)
    pulses_per_half: int = param(10, 1, 10_000, doc="identical pulses per SET and per RESET half", integer=True)
    points_per_decade: int = param(5, 1, 100, doc="read checkpoints per decade of cycles", integer=True)
    min_on_off: float = param(2.0, 1.0, 1e6, doc="on/off ratio below which a checkpoint fails")
    fail_after: int = param(3, 1, 1000, doc="failing checkpoints in a row that stop a cell", integer=True)

    def checkpoints(self) -> np.ndarray:
        """Cycle numbers read (1-based, ascending, unique): log-spaced from 1, always ending at ``cycles``."""
        k_max = math.floor(self.points_per_decade * math.log10(self.cycles) + 1e-9)
        c = np.rint(10.0 ** (np.arange(k_max + 1) / self.points_per_decade)).astype(np.int64)
        return np.unique(np.append(c[c <= self.cycles], self.cycles))


class Endurance(Protocol):
    name = "endurance"
    rows_complete = True
    Params = EnduranceParams
    tables = {
        "endurance": {**CELL_COLUMNS, "cycle": (np.int64, "", "cycle number from 1"),
                      "g_lrs": (np.float64, "S", "conductance read after the SET pulse"),
                      "g_hrs": (np.float64, "S", "conductance read after the RESET pulse"),
                      "t": (np.float64, "s", "time of the HRS read")},
        "endurance_result": {**CELL_COLUMNS, "cycles_done": (np.int64, "", "cycles applied"),
                             "failed": (bool, "bool", "on/off below min_on_off at fail_after checkpoints"),
                             "failed_at": (np.int64, "", "first cycle of the failing run of checkpoints (0: none)")},
    }

    def units(self) -> int:
        return len(self.cells) * len(self.params.checkpoints())

    def pulses_per_cell(self) -> dict[Cell, int]:
        return dict.fromkeys(self.cells, 2 * self.params.cycles * self.params.pulses_per_half)

    def _half(self, station: CellStation, row: int, col: int, amplitude: float, read: bool) -> Reading | None:
        """``pulses_per_half`` pulses of ``amplitude`` V; the last one followed by a read if ``read``."""
        p = self.params
        for _ in range(p.pulses_per_half - read):
            station.pulse(row, col, amplitude, p.width, p.gate_voltage)
        return station.pulse_read(row, col, amplitude, p.width, p.gate_voltage) if read else None

    def units_done(self, resume: Resume | None) -> int:
        df = resume.table("endurance") if resume else None
        return 0 if df is None else len(df)

    def _judge(self, lrs: float, hrs: float, cycle: int, below: int, failed_at: int) -> tuple[int, int]:
        """(checkpoints below min_on_off in a row, first cycle of that run) after a checkpoint's reads."""
        ok = hrs > 0 and lrs / hrs >= self.params.min_on_off
        return (0, 0) if ok else (below + 1, failed_at or cycle)

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = len(self.cells)
        return {"endurance": (self.units(), self.units()), "endurance_result": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        checkpoints = p.checkpoints()
        done = resume.table("endurance") if resume else None
        for key, (row, col) in self.pending(self.cells, resume):
            cycle, below, failed_at, first = 0, 0, 0, 0
            if done is not None:        # a cell cycled before the run stopped: go on after its last checkpoint
                mine = done[(done["row"] == row) & (done["col"] == col)]
                for c, lrs_g, hrs_g in zip(mine["cycle"], mine["g_lrs"], mine["g_hrs"], strict=True):
                    cycle = int(c)
                    below, failed_at = self._judge(float(lrs_g), float(hrs_g), cycle, below, failed_at)
                first = len(mine)
            for k in range(first, len(checkpoints) if below < p.fail_after else first):
                checkpoint = int(checkpoints[k])
                for _ in range(cycle + 1, checkpoint):               # unread cycles before the checkpoint
                    self._half(station, row, col, p.set_voltage, read=False)
                    self._half(station, row, col, p.reset_voltage, read=False)
                cycle = checkpoint
                lrs = self._half(station, row, col, p.set_voltage, read=True)
                hrs = self._half(station, row, col, p.reset_voltage, read=True)
                assert lrs is not None and hrs is not None
                yield Record("endurance", {"row": row, "col": col, "cycle": cycle, "g_lrs": lrs.conductance,
                                           "g_hrs": hrs.conductance, "t": hrs.t})
                below, failed_at = self._judge(lrs.conductance, hrs.conductance, cycle, below, failed_at)
                if below >= p.fail_after:
                    break
                if k + 1 < len(checkpoints):
                    yield CellDone(None)                             # durability point, cell not finished
            failed = below >= p.fail_after
            yield Record("endurance_result", {"row": row, "col": col, "cycles_done": cycle, "failed": failed,
                                              "failed_at": failed_at if failed else 0})
            yield CellDone((row, col), key=key)
        station.release()
