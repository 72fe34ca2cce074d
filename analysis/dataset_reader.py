"""Reader of rramlab run files: :func:`open_run` returns a :class:`RunData`.

Tables come back as pandas DataFrames with ``df.attrs["units"]``; :func:`units` looks one up.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .dataset_schema import (
    INCOMPLETE,
    RUN_GROUP,
    SCHEMA_ATTR,
    SCHEMA_VERSION,
    SEQ_COLUMN,
    STEPS_GROUP,
    TABLES_GROUP,
    NotARunFileError,
    SchemaVersionError,
)

_JSON_RUN_ATTRS = ("instruments", "extras")


def _py(value: Any) -> Any:
    """HDF5 attribute value as a plain Python object."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _text(dataset: h5py.Dataset) -> str:
    value = dataset[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One step of a run as read from the file."""

    index: int
    name: str
    protocol: str
    parameters: dict[str, Any]
    cells: np.ndarray
    status: str
    message: str
    start_time: str
    stop_time: str | None
    tables: list[str]


def check_schema(file: h5py.File, path: str) -> int:
    """Return the file's schema version; raise if it is missing or newer than this rramlab."""
    raw = file.attrs.get(SCHEMA_ATTR)
    if raw is None:
        raise NotARunFileError(f"{path}: not an rramlab run file (no {SCHEMA_ATTR!r} attribute)")
    try:
        version = int(raw)
    except (TypeError, ValueError):
        raise SchemaVersionError(f"{path}: unreadable schema version {raw!r}") from None
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} was written with rramlab schema version {version}; this rramlab reads versions "
            f"up to {SCHEMA_VERSION}. Upgrade rramlab to read it."
        )
    if version < 1:
        raise SchemaVersionError(f"{path}: invalid schema version {version}")
    return version


class RunData:
    """A run file opened for reading. Metadata and steps are read at once; tables on demand.

    ``locking=False`` lets a viewer peek at a file another process is still writing (best effort:
    only what was flushed at the writer's last durability point is consistent).
    """

    def __init__(self, path: str | os.PathLike[str], *, locking: bool | None = None) -> None:
        self.path = os.fspath(path)
        self._locking = locking
        with self._open() as f:
            self.schema_version: int = check_schema(f, self.path)
            self.metadata: dict[str, Any] = self._read_metadata(f)
            self.tables: list[str] = sorted(f[TABLES_GROUP]) if TABLES_GROUP in f else []
            self.steps: list[StepRecord] = self._read_steps(f)

    def __repr__(self) -> str:
        return f"<RunData {self.path!r} exit_status={self.exit_status!r} tables={self.tables}>"

    @property
    def exit_status(self) -> str:
        """Exit status: completed, interrupted, failed, aborted, or incomplete (no stop record)."""
        return str(self.metadata["exit_status"])

    @property
    def exit_message(self) -> str:
        """Exception text or message recorded at close ("" if none)."""
        return str(self.metadata["exit_message"])

    def table(self, name: str) -> pd.DataFrame:
        """The committed rows of table ``name``, ``seq`` first, with units in ``df.attrs``.

        After a crash only the rows committed at the last durability point are returned (the
        prefix whose ``seq`` equals its row index); ``df.attrs`` holds ``units``,
        ``descriptions``, ``table``, ``step`` and ``description``.
        """
        with self._open() as f:
            tables = f.get(TABLES_GROUP)
            if tables is None or name not in tables:
                raise KeyError(f"{self.path}: no table {name!r}; tables: {self.tables}")
            ds = tables[name]
            n = min(int(ds.attrs.get("committed_rows", ds.shape[0])), ds.shape[0])
            arr = ds[:n]
            string_fields = {
                field for field in ds.dtype.names if h5py.check_string_dtype(ds.dtype[field]) is not None
            }
            attrs = {
                "units": json.loads(_py(ds.attrs["units"])),
                "descriptions": json.loads(_py(ds.attrs.get("descriptions", "{}"))),
                "table": name,
                "step": _py(ds.attrs.get("step", "")),
                "description": _py(ds.attrs.get("description", "")),
            }
        bad = np.flatnonzero(arr[SEQ_COLUMN] != np.arange(len(arr)))
        if bad.size:
            arr = arr[: bad[0]]
        data: dict[str, Any] = {}
        for field in arr.dtype.names:
            column = arr[field]
            if field in string_fields:
                column = np.array(
                    [v.decode("utf-8") if isinstance(v, bytes) else v for v in column], dtype=object
                )
            data[field] = column
        df = pd.DataFrame(data, columns=list(arr.dtype.names))
        df.attrs.update(attrs)
        return df

    # -- internals ---------------------------------------------------------------------------

    def _open(self) -> h5py.File:
        kwargs: dict[str, Any] = {} if self._locking is None else {"locking": self._locking}
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such file")
        if not h5py.is_hdf5(self.path):
            raise NotARunFileError(f"{self.path}: not an HDF5 file")
        return h5py.File(self.path, "r", **kwargs)

    def _read_metadata(self, f: h5py.File) -> dict[str, Any]:
        if RUN_GROUP not in f:
            raise NotARunFileError(f"{self.path}: no /{RUN_GROUP} group")
        run = f[RUN_GROUP]
        meta: dict[str, Any] = {
            "seed": None,
            "stop_time": None,
            "stop_time_unix": None,
            "exit_status": INCOMPLETE,
            "exit_message": "",
            "exit_traceback": "",
        }
        for key, raw in run.attrs.items():
            meta[key] = _py(raw)
        meta.pop(SCHEMA_ATTR, None)
        meta["schema_version"] = self.schema_version
        for key in _JSON_RUN_ATTRS:
            meta[key] = json.loads(meta[key]) if isinstance(meta.get(key), str) else {}
        if isinstance(meta["seed"], str):
            meta["seed"] = int(meta["seed"])
        for key in ("recipe", "station"):
            meta[key] = _text(run[key]) if key in run else ""
        return meta

    def _read_steps(self, f: h5py.File) -> list[StepRecord]:
        if STEPS_GROUP not in f:
            return []
        steps = []
        for group in f[STEPS_GROUP].values():
            a = {k: _py(v) for k, v in group.attrs.items()}
            status = str(a.get("status", INCOMPLETE))
            if status == "running" and self.metadata["exit_status"] == INCOMPLETE:
                status = INCOMPLETE  # the writer died during this step
            cells = group["cells"][()] if "cells" in group else np.zeros((0, 2), dtype=np.int64)
            steps.append(
                StepRecord(
                    index=int(a["index"]),
                    name=str(a["name"]),
                    protocol=str(a.get("protocol", "")),
                    parameters=json.loads(a.get("parameters", "{}")),
                    cells=cells,
                    status=status,
                    message=str(a.get("message", "")),
                    start_time=str(a.get("start_time", "")),
                    stop_time=a.get("stop_time"),
                    tables=json.loads(a.get("tables", "[]")),
                )
            )
        return sorted(steps, key=lambda s: s.index)


def open_run(path: str | os.PathLike[str], *, locking: bool | None = None) -> RunData:
    """Open a run file for reading; refuse files of an unknown (newer) schema version."""
    return RunData(path, locking=locking)


def units(df: pd.DataFrame, column: str) -> str:
    """Unit of ``column`` of a DataFrame returned by :meth:`RunData.table` ("" = dimensionless)."""
    try:
        return str(df.attrs["units"][column])
    except KeyError:
        raise KeyError(
            f"no unit recorded for column {column!r}; df.attrs['units'] is set by RunData.table "
            "and may be dropped by DataFrame operations"
        ) from None


__all__ = ["RunData", "StepRecord", "check_schema", "open_run", "units"]
