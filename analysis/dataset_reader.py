"""Reader of rramlab runs: :func:`open_run` returns a :class:`RunData`.

A run is read from its journal while one exists (the run is live, was killed, or its HDF5 file could
not be built: the journal is then the truth), else from the HDF5 file. Tables come back as pandas
DataFrames with ``df.attrs["units"]``; :func:`units` looks one up. Reading never fails because one
part of a table is damaged: every good row is returned and ``df.attrs["skipped"]`` says what was not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .dataset_schema import (
    INCOMPLETE,
    PARTIAL_GROUP,
    RUN_GROUP,
    SCHEMA_ATTR,
    SCHEMA_VERSION,
    SEQ_COLUMN,
    STATE_GROUP,
    STEPS_GROUP,
    TABLES_GROUP,
    ColumnInfo,
    DatasetError,
    NotARunFileError,
    SchemaVersionError,
    compound_dtype,
    normalize_columns,
)
from .journal import JOURNAL_SUFFIX, JournalError, JournalSnapshot, columns_from_json, journal_path

_JSON_RUN_ATTRS = ("instruments", "extras")
_STOP_KEYS = ("stop_time", "stop_time_unix", "exit_status", "exit_message", "exit_traceback")


class DamagedFileError(DatasetError):
    """The HDF5 file cannot be opened at all (``rramlab recover`` salvages what it can)."""


class SkippedRowsWarning(UserWarning):
    """Some rows of a table could not be read; the good ones are returned."""


def _py(value: Any) -> Any:
    """HDF5 attribute value as a plain Python object."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


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
    start_time_unix: float | None = None
    stop_time_unix: float | None = None


@dataclasses.dataclass
class RunState:
    """What a resumed run needs: finished units per step, the pulse ledger, cells in flight, values."""

    units_rows: list[tuple[int, str, int]] = dataclasses.field(default_factory=list)
    ledger_rows: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)
    in_flight_rows: list[tuple[int, int, int, int, float]] = dataclasses.field(default_factory=list)
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def units(self) -> dict[int, set[str]]:
        """Finished unit keys by step index."""
        out: dict[int, set[str]] = {}
        for step, key, _ in self.units_rows:
            out.setdefault(int(step), set()).add(str(key))
        return out

    @property
    def ledger(self) -> dict[tuple[int, int], int]:
        """Pulses to charge each cell with: the committed count, exact for a cell not energised since the last
        commit; for a cell in flight, its write-ahead reservation (an upper bound of what it received)."""
        flying = set(self.in_flight)
        return {(int(r), int(c)): max(int(p), int(res)) if (int(r), int(c)) in flying else int(p)
                for r, c, p, res in self.ledger_rows}

    @property
    def in_flight(self) -> list[tuple[int, int]]:
        """Cells energised after the last durability point (read them before any new pulse)."""
        return [(int(r), int(c)) for r, c, *_ in self.in_flight_rows]


def check_schema(file: h5py.File, path: str) -> int:
    """Return the file's schema version; raise if it is missing or newer than this rramlab."""
    raw = file.attrs.get(SCHEMA_ATTR)
    if raw is None:
        raise NotARunFileError(f"{path}: not an rramlab run file (no {SCHEMA_ATTR!r} attribute)")
    return _schema_version(raw, path)


def _schema_version(raw: Any, path: str) -> int:
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
    """A run opened for reading. Metadata, steps, sessions and run state are read at once; tables on demand.

    ``source`` is "journal" (live, killed or not yet built) or "hdf5". ``locking`` is passed to h5py.
    """

    def __init__(self, path: str | os.PathLike[str], *, locking: bool | None = None) -> None:
        self.path = os.fspath(path)
        self._locking = locking
        self.journal = journal_path(self.path)
        self._snap: JournalSnapshot | None = None
        self.sessions: list[dict[str, Any]] = []
        self.state = RunState()
        self.skipped: dict[str, list[str]] = {}
        self.notes: list[str] = []             # what the reader noticed about the files (said by `rramlab info`)
        if os.path.exists(self.journal):
            self.source = "journal"
            self._load_journal()
        else:
            self.source = "hdf5"
            self._load_h5()

    def __repr__(self) -> str:
        return f"<RunData {self.path!r} from {self.source} exit_status={self.exit_status!r} tables={self.tables}>"

    @property
    def exit_status(self) -> str:
        """Exit status: completed, interrupted, failed, aborted, or incomplete (no stop record)."""
        return str(self.metadata["exit_status"])

    @property
    def exit_message(self) -> str:
        """Exception text or message recorded at close ("" if none)."""
        return str(self.metadata["exit_message"])

    @property
    def run_attr_keys(self) -> list[str]:
        """Keys of the run attributes written at creation (not the stop record)."""
        skip = {"recipe", "station", "schema_version", "sessions", *_STOP_KEYS}
        return [k for k in self.metadata if k not in skip]

    def table(self, name: str) -> pd.DataFrame:
        """The committed rows of table ``name``, ``seq`` first, with units in ``df.attrs``.

        ``df.attrs`` holds ``units``, ``descriptions``, ``table``, ``step``, ``description`` and
        ``skipped`` (what could not be read, with the reason; a :class:`SkippedRowsWarning` is issued).
        """
        arr, infos, attrs = self.table_array(name)
        data: dict[str, Any] = {field: arr[field] for field in arr.dtype.names}
        df = pd.DataFrame(data, columns=list(arr.dtype.names))
        df.attrs.update(attrs)
        return df

    @property
    def partial_tables(self) -> list[str]:
        """Tables with rows of units a stop interrupted, set aside (see :meth:`partial`)."""
        if self._snap is not None:
            return self._snap.partial_tables
        with self._open() as f:
            return sorted(f[PARTIAL_GROUP]) if PARTIAL_GROUP in f else []

    def partial(self, name: str) -> pd.DataFrame | None:
        """Rows of table ``name`` from units a stop (Ctrl-C twice, SIGTERM, a failure) interrupted: kept, but
        not in the table, because a resumed run does such a unit again from its start. Column
        ``interrupted_in_session`` says which session stopped. None if there are none."""
        arr = self.partial_array(name)
        if arr is None:
            return None
        df = pd.DataFrame({f: arr[f] for f in arr.dtype.names}, columns=list(arr.dtype.names))
        df.attrs.update({"table": name, "partial": True})
        return df

    def partial_array(self, name: str) -> np.ndarray | None:
        """:meth:`partial` as a structured array (None if there are no such rows)."""
        from .dataset_build import PARTIAL_SESSION, partial_columns

        if name not in self.partial_tables:
            return None
        if self._snap is not None:
            infos = columns_from_json(self._snap.spec(name)["columns"])
            good, _ = self._snap.good_batches(name, compound_dtype(infos), partial=True)
            rows = np.concatenate(good) if good else np.empty(0, dtype=compound_dtype(infos))
            out = np.zeros(len(rows), dtype=compound_dtype(partial_columns(infos)))
            for field in rows.dtype.names:
                out[field] = rows[field]
            out[PARTIAL_SESSION] = self._snap.partial_sessions.get(name, [0] * len(rows))[: len(rows)]
            return out
        with self._open() as f:
            arr = f[PARTIAL_GROUP][name][()]
        names = arr.dtype.names or ()
        fixed = np.zeros(len(arr), dtype=[(n, object if arr.dtype[n].kind == "O" else arr.dtype[n]) for n in names])
        for n in names:
            fixed[n] = [v.decode("utf-8") if isinstance(v, bytes) else v for v in arr[n]] if arr.dtype[n].kind == "O" \
                else arr[n]
        return fixed

    def table_array(self, name: str) -> tuple[np.ndarray, list[ColumnInfo], dict[str, Any]]:
        """(rows as a structured array, column declarations, attrs) of table ``name``."""
        if name not in self.tables:
            raise KeyError(f"{self.path}: no table {name!r}; tables: {self.tables}")
        if self._snap is not None:
            spec = self._snap.spec(name)
            infos = columns_from_json(spec["columns"])
            arr, skipped = self._snap.table_rows(name)
            attrs = _table_attrs(name, infos, spec["description"] or "", spec["step"] or "")
        else:
            arr, infos, attrs, skipped = self._h5_table(name)
        attrs["skipped"] = skipped
        if skipped:
            self.skipped[name] = skipped
            warnings.warn(f"{self.path}: table {name!r}: {len(skipped)} part(s) unreadable, skipped: "
                          + "; ".join(skipped[:3]), SkippedRowsWarning, stacklevel=3)
        return arr, infos, attrs

    # -- journal -------------------------------------------------------------------------------

    def _load_journal(self) -> None:
        snap = self._snap = JournalSnapshot(self.journal)
        if not snap.sessions and not os.path.exists(self.path):
            self.notes.append(f"{self.journal} holds no session: the run was killed as it started, or this is a copy "
                              "without its -wal file (which holds the latest commits); bring the -wal and -shm files "
                              "next to it")
        if not snap.sessions and os.path.exists(self.path):
            raise JournalError(f"{self.journal} holds no session although {self.path} exists: an incomplete copy of a "
                               "journal (its -wal file, which holds the latest commits, missing?); move it away to "
                               "read the HDF5 file, or bring its -wal and -shm files next to it")
        self.schema_version = _schema_version(snap.meta.get("schema", "1"), self.journal)
        run = json.loads(snap.meta["run"])
        meta: dict[str, Any] = {"seed": None, "stop_time": None, "stop_time_unix": None, "exit_status": INCOMPLETE,
                                "exit_message": "", "exit_traceback": "", **run}
        self.sessions = snap.sessions
        last = snap.sessions[-1] if snap.sessions else {}
        if last.get("exit_status"):
            meta.update({k: last.get(k) for k in _STOP_KEYS})
        meta["recipe"], meta["station"] = snap.meta.get("recipe", ""), snap.meta.get("station", "")
        meta["schema_version"] = self.schema_version
        self.metadata = meta
        self.tables = sorted(t["name"] for t in snap.table_specs)
        self.state = RunState(list(snap.units), list(snap.ledger), list(snap.in_flight), dict(snap.state))
        steps = []
        for s in snap.steps:
            status = str(s["status"])
            if status == "running" and meta["exit_status"] == INCOMPLETE:
                status = INCOMPLETE
            steps.append(StepRecord(
                index=int(s["idx"]), name=str(s["name"]), protocol=str(s["protocol"] or ""),
                parameters=json.loads(s["parameters"] or "{}"),
                cells=np.frombuffer(s["cells"] or b"", dtype="<i8").reshape(-1, 2).astype(np.int64),
                status=status, message=str(s["message"] or ""), start_time=str(s["start_time"] or ""),
                stop_time=s["stop_time"], tables=json.loads(s["tables"] or "[]"),
                start_time_unix=s["start_time_unix"], stop_time_unix=s["stop_time_unix"]))
        self.steps = steps

    # -- HDF5 ----------------------------------------------------------------------------------

    def _open(self) -> h5py.File:
        kwargs: dict[str, Any] = {} if self._locking is None else {"locking": self._locking}
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such file")
        if os.path.isdir(self.path):
            raise NotARunFileError(f"{self.path}: is a directory, not a run file")
        if not h5py.is_hdf5(self.path):
            raise NotARunFileError(f"{self.path}: not an HDF5 file")
        try:
            return h5py.File(self.path, "r", **kwargs)
        except OSError as exc:
            raise DamagedFileError(f"{self.path}: damaged HDF5 file, cannot be opened ({exc}); "
                                   f"`rramlab recover {self.path}` salvages what it can") from None

    def _load_h5(self) -> None:
        with self._open() as f:
            self.schema_version = check_schema(f, self.path)
            try:
                self.metadata = self._read_metadata(f)
            except (KeyError, OSError, ValueError) as exc:
                raise DamagedFileError(f"{self.path}: damaged run metadata ({exc}); `rramlab recover "
                                       f"{self.path}` salvages what it can") from None
            try:
                self.tables = sorted(f[TABLES_GROUP]) if TABLES_GROUP in f else []
            except (KeyError, OSError) as exc:
                self.tables = []
                self.skipped["(tables)"] = [f"table index unreadable: {exc}"]
            self.steps = self._read_steps(f)
            self.sessions, self.state = self._read_state(f)

    def _read_metadata(self, f: h5py.File) -> dict[str, Any]:
        if RUN_GROUP not in f:
            raise NotARunFileError(f"{self.path}: no /{RUN_GROUP} group")
        run = f[RUN_GROUP]
        meta: dict[str, Any] = {"seed": None, "stop_time": None, "stop_time_unix": None, "exit_status": INCOMPLETE,
                                "exit_message": "", "exit_traceback": ""}
        for key, raw in run.attrs.items():
            meta[key] = _py(raw)
        meta.pop(SCHEMA_ATTR, None)
        meta.pop("sessions", None)
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
        for key in f[STEPS_GROUP]:
            try:
                group = f[STEPS_GROUP][key]
                a = {k: _py(v) for k, v in group.attrs.items()}
                cells = group["cells"][()] if "cells" in group else np.zeros((0, 2), dtype=np.int64)
            except (KeyError, OSError) as exc:
                self.skipped.setdefault("(steps)", []).append(f"step {key}: unreadable ({exc})")
                continue
            status = str(a.get("status", INCOMPLETE))
            if status == "running" and self.metadata["exit_status"] == INCOMPLETE:
                status = INCOMPLETE  # the writer died during this step
            steps.append(StepRecord(
                index=int(a["index"]), name=str(a["name"]), protocol=str(a.get("protocol", "")),
                parameters=json.loads(a.get("parameters", "{}")), cells=cells, status=status,
                message=str(a.get("message", "")), start_time=str(a.get("start_time", "")),
                stop_time=a.get("stop_time"), tables=json.loads(a.get("tables", "[]")),
                start_time_unix=a.get("start_time_unix"), stop_time_unix=a.get("stop_time_unix")))
        return sorted(steps, key=lambda s: s.index)

    def _read_state(self, f: h5py.File) -> tuple[list[dict[str, Any]], RunState]:
        run = f[RUN_GROUP]
        sessions: list[dict[str, Any]] = []
        if "sessions" in run:
            sessions = [json.loads(v.decode("utf-8") if isinstance(v, bytes) else v) for v in run["sessions"][()]]
        state = RunState()
        if STATE_GROUP in run:
            g = run[STATE_GROUP]
            state.values = json.loads(_py(g.attrs.get("values", "{}")))
            state.units_rows = [(int(s), k.decode() if isinstance(k, bytes) else str(k), int(n))
                                for s, k, n in g["units"][()]]
            state.ledger_rows = [tuple(int(x) for x in r) for r in g["ledger"][()]]  # type: ignore[misc]
            state.in_flight_rows = [(int(r), int(c), int(s), int(n), float(t)) for r, c, s, n, t in g["in_flight"][()]]
        return sessions, state

    def _h5_table(self, name: str) -> tuple[np.ndarray, list[ColumnInfo], dict[str, Any], list[str]]:
        with self._open() as f:
            ds = f[TABLES_GROUP][name]
            raw_units = json.loads(_py(ds.attrs["units"]))
            descriptions = json.loads(_py(ds.attrs.get("descriptions", "{}")))
            infos = normalize_columns({c: (ds.dtype[c], raw_units.get(c, ""), descriptions.get(c, ""))
                                       for c in ds.dtype.names if c != SEQ_COLUMN})
            attrs = _table_attrs(name, infos, _py(ds.attrs.get("description", "")), _py(ds.attrs.get("step", "")))
            attrs["descriptions"] = descriptions
            n = min(int(ds.attrs.get("committed_rows", ds.shape[0])), ds.shape[0])
            arr, skipped = _read_chunks(ds, n)
            skipped = [*json.loads(_py(ds.attrs.get("skipped", "[]"))), *skipped]
        arr = arr.astype(compound_dtype(infos), copy=False) if arr.dtype != compound_dtype(infos) else arr
        for c in infos:                                    # h5py returns variable-length strings as bytes
            if c.kind == "s":
                arr[c.name] = [v.decode("utf-8") if isinstance(v, bytes) else v for v in arr[c.name]]
        return arr, infos, attrs, skipped


def _read_chunks(ds: h5py.Dataset, n: int) -> tuple[np.ndarray, list[str]]:
    """Rows 0..n-1 of ``ds`` read chunk by chunk; a chunk that fails to read (or whose ``seq`` does not
    match its position) is skipped and reported; the rows of every good chunk are kept."""
    try:
        return _check_seq(ds[:n], 0)
    except (OSError, ValueError, RuntimeError):
        pass
    step = ds.chunks[0] if ds.chunks else 1024
    parts: list[np.ndarray] = []
    skipped: list[str] = []
    for start in range(0, n, step):
        stop = min(n, start + step)
        try:
            block, bad = _check_seq(ds[start:stop], start)
        except (OSError, ValueError, RuntimeError) as exc:
            skipped.append(f"rows {start}..{stop - 1}: unreadable ({str(exc).splitlines()[0][:120]})")
            continue
        parts.append(block)
        skipped.extend(bad)
    return (np.concatenate(parts) if parts else np.empty(0, dtype=ds.dtype)), skipped


def _check_seq(block: np.ndarray, start: int) -> tuple[np.ndarray, list[str]]:
    ok = block[SEQ_COLUMN] == np.arange(start, start + len(block))
    if ok.all():
        return block, []
    bad = np.flatnonzero(~ok)
    return block[ok], [f"{bad.size} row(s) from row {start + int(bad[0])}: sequence number does not match"]


def _table_attrs(name: str, infos: list[ColumnInfo], description: str, step: str) -> dict[str, Any]:
    return {"units": {SEQ_COLUMN: "", **{c.name: c.unit for c in infos}},
            "descriptions": {SEQ_COLUMN: "row sequence number, 0..n-1", **{c.name: c.description for c in infos}},
            "table": name, "step": step, "description": description}


def _text(dataset: h5py.Dataset) -> str:
    value = dataset[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def open_run(path: str | os.PathLike[str], *, locking: bool | None = None) -> RunData:
    """Open a run for reading (its journal if one exists, else the HDF5 file); refuse files of an
    unknown (newer) schema version. ``path`` may name the run file or its journal."""
    p = os.fspath(path)
    if p.endswith(JOURNAL_SUFFIX):
        p = p.removesuffix(JOURNAL_SUFFIX)
    for _ in range(3):
        try:
            return RunData(p, locking=locking)
        except (FileNotFoundError, JournalError):
            # the run may have closed between the check for its journal and the read: look again
            if os.path.exists(journal_path(p)) or not os.path.exists(p):
                raise
    return RunData(p, locking=locking)


def units(df: pd.DataFrame, column: str) -> str:
    """Unit of ``column`` of a DataFrame returned by :meth:`RunData.table` ("" = dimensionless)."""
    try:
        return str(df.attrs["units"][column])
    except KeyError:
        raise KeyError(
            f"no unit recorded for column {column!r}; df.attrs['units'] is set by RunData.table "
            "and may be dropped by DataFrame operations"
        ) from None


__all__ = ["DamagedFileError", "RunData", "RunState", "SkippedRowsWarning", "StepRecord", "check_schema",
           "open_run", "units"]
