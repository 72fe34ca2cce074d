"""Every table of a run file as CSV (``rramlab report … --csv DIR``).

One file per table, named ``<run file stem>.<table>.csv``; the header carries each column's unit as
``name [unit]`` (``g [S]``, ``t [s]``; no brackets for dimensionless columns). Values are written at
full precision (they read back equal). Each file is written whole or not at all.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .atomic import atomic_file
from .dataset_reader import RunData, SkippedRowsWarning, open_run


def csv_header(df: pd.DataFrame) -> list[str]:
    """Column names with their units from ``df.attrs["units"]``: ``g [S]``, or ``row`` when unitless."""
    units = df.attrs.get("units", {}) or {}
    return [f"{c} [{units[c]}]" if units.get(c) else str(c) for c in df.columns]


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """``df`` as CSV with :func:`csv_header`, no index, to ``path`` via a temporary file renamed into place."""
    with atomic_file(path, "w", encoding="utf-8", newline="") as f:
        df.to_csv(f, header=csv_header(df), index=False)


def unique_stems(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """File-name stems of ``paths``, made unique with -2, -3, … (two runs may share a name)."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(p).stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def export_run_csv(run: RunData | str | os.PathLike[str], directory: str | os.PathLike[str],
                   stem: str | None = None) -> list[Path]:
    """Write every table of ``run`` to ``directory`` (created if needed) as ``<stem>.<table>.csv``
    (``stem`` default: the run file's stem); return the paths written."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRowsWarning)
        data = run if isinstance(run, RunData) else open_run(run, locking=False)
        out_dir = Path(directory)
        out_dir.mkdir(parents=True, exist_ok=True)
        name = stem or Path(data.path).stem
        paths = []
        for table in data.tables:
            path = out_dir / f"{name}.{table}.csv"
            write_csv_atomic(data.table(table), path)
            paths.append(path)
    return paths


def read_csv_with_units(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV written here back: plain column names, units in ``df.attrs["units"]``."""
    df = pd.read_csv(path)
    units = {}
    names = []
    for col in df.columns:
        name, _, rest = str(col).partition(" [")
        names.append(name)
        if rest.endswith("]"):
            units[name] = rest[:-1]
    df.columns = names
    df.attrs["units"] = units
    return df
