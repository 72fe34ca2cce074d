"""Disk space for a run, estimated before it starts: refuse a run that cannot fit, warn when the worst case might not.

A run needs its journal while it runs and, at the close, the HDF5 file built from it (the journal is
then removed): about twice the rows' size at the end. The rows' size comes from each protocol's
expected row counts (typical and worst case) and its tables' row sizes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rramlab.analysis.dataset_schema import compound_dtype, normalize_columns

from .base import Protocol

STRING_BYTES = 24            # typical stored size of a short string field (step label, branch), B
COPIES = 2.2                 # journal + HDF5 file at the close, with SQLite page overhead
MARGIN = 2**20               # B kept free beyond the estimate
JOURNAL_OVERHEAD = 2 * 2**20  # B: the journal's write-ahead log (folded back every ~1 MiB) and its index


class InsufficientSpaceError(OSError):
    """The run's estimated size does not fit in the free space of its directory; nothing was sent."""


def _row_bytes(columns: dict) -> int:
    dtype = compound_dtype(normalize_columns({"step": (str, "", ""), **columns}))
    strings = sum(1 for name in dtype.names if dtype[name].kind == "O")
    return int(dtype.itemsize - strings * np.dtype(object).itemsize + strings * STRING_BYTES)


def estimate_bytes(protocols: Sequence[Protocol]) -> tuple[int, int]:
    """(typical, worst-case) bytes of the rows of a run of ``protocols``."""
    typical = worst = 0
    for proto in protocols:
        for name, (n_typ, n_worst) in proto.expected_rows().items():
            size = _row_bytes(proto.tables[name])
            typical += n_typ * size
            worst += n_worst * size
    return typical, worst


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def check_free_space(out: str | os.PathLike[str], protocols: Sequence[Protocol]) -> str | None:
    """Refuse (:class:`InsufficientSpaceError`) when the typical size does not fit next to ``out``; return
    a warning text when the worst case might not; None when both fit."""
    directory = Path(out).resolve().parent
    free = shutil.disk_usage(directory).free
    typical, worst = estimate_bytes(protocols)
    extra = MARGIN + JOURNAL_OVERHEAD
    need_typ, need_worst = COPIES * typical + extra, COPIES * worst + extra
    if free < need_typ:
        raise InsufficientSpaceError(
            f"{directory} has {_mib(free)} free; this run needs about {_mib(need_typ)} (rows ≈ {_mib(typical)}, "
            f"journal, its log and the HDF5 file, {_mib(MARGIN)} spare): free some space or choose another --out")
    if free < need_worst:
        return (f"{directory} has {_mib(free)} free: enough for this run as expected ({_mib(need_typ)}), not for its "
                f"worst case ({_mib(need_worst)}); a full disk stops the run safely, committed rows kept")
    return None
