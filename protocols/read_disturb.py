"""``read_disturb``: many reads of each cell at one bias, the conductance recorded at log-spaced read counts.

Each cell gets ``reads`` reads in a row at ``voltage`` V (the station's read voltage by default) and ``nplc``
PLC; G is recorded at the read counts 1, …, 10^(k/points_per_decade) (rounded, without repeats), …, ``reads``,
never at every read. Between two recorded counts the station reads without reporting
(:meth:`~rramlab.drivers.station.Station.read_many`: on the instrument when its SMU offers it, the readings
kept in the instrument's buffer). Reads are not pulses: nothing is charged to the pulse budget. Cells are done
one after the other; a stop keeps every recorded row and a resumed step goes on from each cell's last one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation, Reading

from .base import CELL_COLUMNS, CellDone, Event, ParameterError, Protocol, Record, Resume
from .params import ProtocolParams, param
from .results import Results

MAX_READS = 100_000_000          # reads per cell
MAX_POINTS_PER_DECADE = 20       # ≤ 20 · 8 + 2 = 162 recorded rows per cell at MAX_READS

READ_DISTURB_COLUMNS = {
    **CELL_COLUMNS,
    "n_reads": (np.int64, "", "reads of this cell so far, this one included (from 1)"),
    "g": (np.float64, "S", "conductance of that read, i/v_read"),
    "t": (np.float64, "s", "time of that read"),
    "v_read": (np.float64, "V", "read voltage on the bit line"),
    "nplc": (np.float64, "PLC", "integration time of each read"),
}


@dataclass(frozen=True)
class ReadDisturbParams(ProtocolParams):
    """reads per cell; voltage: read bias on the bit line (V, None = station default); nplc: integration of
    each read (PLC, None = station default); points_per_decade: recorded read counts per decade."""

    reads: int = param(1_000_000, 1, MAX_READS, doc="reads per cell", integer=True)
    voltage: float | None = param(None, -1.0, 1.0, "V", "bit-line read voltage, |voltage| >= 1 mV (unset: station)",
                                  applies="bit_line")
    nplc: float | None = param(None, 0.001, 25, "PLC", "integration time of each read (unset: station)",
                               applies="nplc")
    points_per_decade: int = param(10, 1, MAX_POINTS_PER_DECADE, doc="recorded read counts per decade of reads",
                                   integer=True)

    def cross_check(self) -> None:
        if self.voltage is not None and abs(self.voltage) < 1e-3:
            raise ParameterError(f"voltage must be within [-1.0, -0.001] or [0.001, 1.0] V (a read at 0 V has no "
                                 f"conductance), got {self.voltage!r}")

    def schedule(self) -> np.ndarray:
        """The recorded read counts: round(10^(k/points_per_decade)) for k = 0, 1, … below ``reads``, without
        repeats, and ``reads`` itself (int64, increasing, from 1)."""
        k_max = int(math.floor(self.points_per_decade * math.log10(self.reads) + 1e-9))
        counts = np.round(10.0 ** (np.arange(k_max + 1) / self.points_per_decade)).astype(np.int64)
        return np.unique(np.concatenate([counts[counts < self.reads], [self.reads]]))


class ReadDisturb(Protocol):
    name = "read_disturb"
    rows_complete = True
    Params = ReadDisturbParams
    tables = {"read_disturb": READ_DISTURB_COLUMNS}

    def units(self) -> int:
        """Progress in recorded reads: every cell at every recorded count."""
        return len(self.cells) * len(self.params.schedule())

    def units_done(self, resume: Resume | None) -> int:
        df = resume.table("read_disturb") if resume else None
        return 0 if df is None else len(df)

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = self.units()
        return {"read_disturb": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        counts = p.schedule()
        done = resume.table("read_disturb") if resume else None
        last: dict[tuple[int, int], int] = {}
        if done is not None:                       # a resumed step: each cell goes on from its last recorded read
            for row, col, n in zip(done["row"], done["col"], done["n_reads"], strict=True):
                cell = (int(row), int(col))
                last[cell] = max(last.get(cell, 0), int(n))
        for key, (row, col) in self.pending(self.cells, resume):
            so_far = last.get((row, col), 0)
            todo = counts[counts > so_far]
            for k, n_reads in enumerate(todo):
                r = self._reads(station, row, col, int(n_reads) - so_far)
                so_far = int(n_reads)
                yield Record("read_disturb", {"row": row, "col": col, "n_reads": so_far, "g": r.conductance,
                                              "t": r.t, "v_read": r.voltage, "nplc": self._nplc(station)})
                if k + 1 < len(todo):
                    yield CellDone(None, work=1)   # a durability and stop point after every recorded read
            yield CellDone((row, col), work=1 if len(todo) else 0, key=key)
        station.release()

    def _reads(self, station: CellStation, row: int, col: int, n: int) -> Reading:
        """``n`` reads of (row, col) at the step's read conditions; the last one."""
        p = self.params
        read_many = getattr(station, "read_many", None)
        if read_many is not None:
            return read_many(row, col, n, voltage=p.voltage, nplc=p.nplc)
        last = station.read(row, col, voltage=p.voltage, nplc=p.nplc)
        for _ in range(n - 1):
            last = station.read(row, col, voltage=p.voltage, nplc=p.nplc)
        return last

    def _nplc(self, station: CellStation) -> float:
        """The integration of each read (PLC): the step's, or the station's read conditions'."""
        if self.params.nplc is not None:
            return float(self.params.nplc)
        conditions = getattr(station, "read_conditions", None)
        return float(conditions.nplc) if conditions is not None else float("nan")
