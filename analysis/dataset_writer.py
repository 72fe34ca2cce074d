"""Writer of rramlab run files: :class:`RunWriter`, its :class:`Table` and :class:`Step` handles.

While a run is written, everything goes to its journal (:mod:`.journal`, ``<file>.journal``), one
atomic commit per durability point; :meth:`RunWriter.close` builds the HDF5 file from the journal
(:mod:`.dataset_build`) and then removes the journal. The layout and the durability rules are
described in :mod:`.dataset`. A writer is used from one thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import time
import traceback as _traceback
import uuid
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from .dataset_build import build_run_file, import_run_file
from .dataset_schema import (
    DURABILITY_MODES,
    EXIT_STATUSES,
    SCHEMA_VERSION,
    SEQ_COLUMN,
    STEP_STATUSES,
    ColumnInfo,
    DatasetError,
    DatasetWriteError,
    check_attr_size,
    compound_dtype,
    exception_message,
    normalize_columns,
    status_for_exception,
    to_json,
    validate_name,
)
from .journal import (
    DiskFullError,
    JournalSnapshot,
    JournalWriter,
    columns_from_json,
    columns_json,
    encode_rows,
    journal_path,
    remove_journal,
)

DEFAULT_BATCH_ROWS = 1024
"""Initial row capacity of a table's buffer (it grows; rows are kept until the next durability point)."""

Cell = tuple[int, int]


def _now() -> tuple[str, float]:
    """Current time as (ISO 8601 UTC string, Unix seconds)."""
    t = time.time()
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds"), t


def installed_version() -> str:
    """Version of the installed rramlab distribution, or ``"unknown"``."""
    try:
        return importlib.metadata.version("rramlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclasses.dataclass
class RunMetadata:
    """Run metadata, written when the file is created (before the first pulse).

    ``package_version``, ``host`` and ``run_id`` are filled in when left ``None``. ``extras`` takes
    any JSON-serialisable mapping (numpy scalars, dataclasses, enums and paths are converted).
    """

    recipe: str = ""
    station: str = ""
    instruments: Mapping[str, str] = dataclasses.field(default_factory=dict)
    package_version: str | None = None
    seed: int | None = None
    host: str | None = None
    run_id: str | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunMetadata:
        """Build from a dict; keys that are not fields are added to ``extras``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            known["extras"] = {**dict(known.get("extras") or {}), **unknown}
        return cls(**known)

    def validated(self) -> RunMetadata:
        """Return a copy with defaults filled in; raise ``TypeError`` on wrong types."""
        for key in ("recipe", "station"):
            if not isinstance(getattr(self, key), str):
                raise TypeError(f"metadata {key!r} must be the file text (str)")
        if not isinstance(self.instruments, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.instruments.items()
        ):
            raise TypeError("metadata 'instruments' must map instrument name -> identity string (*IDN?)")
        if self.seed is not None and (
            isinstance(self.seed, (bool, np.bool_)) or not isinstance(self.seed, (int, np.integer))
        ):
            raise TypeError(f"metadata 'seed' must be an int or None, got {self.seed!r}")
        if not isinstance(self.extras, Mapping):
            raise TypeError("metadata 'extras' must be a mapping")
        return dataclasses.replace(
            self,
            instruments=dict(self.instruments),
            package_version=self.package_version or installed_version(),
            seed=None if self.seed is None else int(self.seed),
            host=self.host or socket.gethostname(),
            run_id=self.run_id or uuid.uuid4().hex,
            extras=dict(self.extras),
        )


class Table:
    """An append-only table of one run (``/tables/<name>``), created by :meth:`RunWriter.table`.

    Rows are kept in memory until the next :meth:`RunWriter.durability_point`, which commits them all
    at once; :attr:`committed_rows` says how many are committed. ``seq`` is filled in automatically.
    """

    def __init__(self, writer: RunWriter, name: str, infos: list[ColumnInfo], capacity: int,
                 committed: int = 0) -> None:
        self._writer = writer
        self._infos = infos
        self._ncols = len(infos)
        self._dtype = compound_dtype(infos)
        self._buf = np.zeros(max(1, capacity), dtype=self._dtype)
        self._n = 0
        self._next_seq = committed
        self._committed = committed
        self._closed = False
        self.name = name

    def __repr__(self) -> str:
        return f"<Table {self.name!r} rows={self.rows} committed={self._committed}>"

    @property
    def columns(self) -> list[str]:
        """Column names in file order (``seq`` first)."""
        return [SEQ_COLUMN, *(c.name for c in self._infos)]

    @property
    def units(self) -> dict[str, str]:
        """Unit of each column."""
        return {SEQ_COLUMN: "", **{c.name: c.unit for c in self._infos}}

    @property
    def rows(self) -> int:
        """Rows accepted so far (committed or buffered)."""
        return self._next_seq

    @property
    def buffered_rows(self) -> int:
        """Rows accepted but not committed yet."""
        return self._n

    @property
    def committed_rows(self) -> int:
        """Rows committed to the journal (they survive a killed process)."""
        return self._committed

    def append(self, row: Mapping[str, Any]) -> None:
        """Accept one row (a mapping with exactly the declared columns, ``seq`` excluded).

        A ``TypeError``/``ValueError``/``OverflowError`` means the row was not accepted.
        """
        self._check_open()
        values = self._row_values(row, self._next_seq)
        if self._n == len(self._buf):
            self._grow(self._n + 1)
        try:
            self._buf[self._n] = values
        except (ValueError, OverflowError) as exc:
            raise type(exc)(f"table {self.name!r}: {exc}") from exc
        self._n += 1
        self._next_seq += 1

    def extend(self, rows: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Accept many rows at once: a mapping column -> 1-D array (or a DataFrame / structured
        array), or an iterable of row mappings. All rows are accepted or none."""
        self._check_open()
        block = self._block(rows)
        n = len(block)
        if n == 0:
            return
        if self._n + n > len(self._buf):
            self._grow(self._n + n)
        self._buf[self._n : self._n + n] = block
        self._n += n
        self._next_seq += n

    # -- internals ---------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        buf = np.zeros(max(need, 2 * len(self._buf)), dtype=self._dtype)
        buf[: self._n] = self._buf[: self._n]
        self._buf = buf

    def _pending(self) -> np.ndarray | None:
        """The buffered rows (a view), or None."""
        return self._buf[: self._n] if self._n else None

    def _drop_pending(self) -> None:
        """Forget the buffered rows (they were set aside); their sequence numbers are used again."""
        self._next_seq = self._committed
        self._n = 0

    def _mark_committed(self) -> None:
        self._committed += self._n
        self._n = 0
        if len(self._buf) > 4 * self._writer.batch_rows:       # give back the memory of a large unit
            self._buf = np.zeros(self._writer.batch_rows, dtype=self._dtype)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"table {self.name!r}: the run file is closed")

    def _row_values(self, row: Mapping[str, Any], seq: int) -> tuple[Any, ...]:
        values: list[Any] = [seq]
        for col in self._infos:
            try:
                value = row[col.name]
            except KeyError:
                missing = [c.name for c in self._infos if c.name not in row]
                raise ValueError(f"table {self.name!r}: row lacks column(s) {missing}") from None
            try:
                values.append(col.check(value))
            except TypeError as exc:
                raise TypeError(f"table {self.name!r}, column {col.name!r}: {exc}") from None
        if len(row) != self._ncols:
            extra = sorted(set(row) - {c.name for c in self._infos})
            raise ValueError(f"table {self.name!r}: unknown column(s) {extra}")
        return tuple(values)

    def _block(self, rows: Any) -> np.ndarray:
        seq0 = self._next_seq
        if isinstance(rows, np.ndarray) and rows.dtype.names:
            rows = {name: rows[name] for name in rows.dtype.names}
        elif not isinstance(rows, Mapping) and hasattr(rows, "columns") and hasattr(rows, "to_numpy"):
            rows = {str(name): rows[name].to_numpy() for name in rows.columns}  # a DataFrame
        if not isinstance(rows, Mapping):
            values = [self._row_values(row, seq0 + i) for i, row in enumerate(rows)]
            try:
                return np.array(values, dtype=self._dtype)
            except (ValueError, OverflowError) as exc:
                raise type(exc)(f"table {self.name!r}: {exc}") from exc
        names = {c.name for c in self._infos}
        if set(rows) != names:
            raise ValueError(
                f"table {self.name!r}: columns {sorted(rows)} do not match {sorted(names)} "
                f"(missing {sorted(names - set(rows))}, unknown {sorted(set(rows) - names)})"
            )
        arrays = {c.name: self._column_array(c, rows[c.name]) for c in self._infos}
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"table {self.name!r}: columns have different lengths {sorted(lengths)}")
        n = lengths.pop()
        block = np.zeros(n, dtype=self._dtype)
        block[SEQ_COLUMN] = np.arange(seq0, seq0 + n, dtype=np.int64)
        for name, arr in arrays.items():
            block[name] = arr
        return block

    def _column_array(self, col: ColumnInfo, values: Any) -> np.ndarray:
        arr = np.asarray(values)
        where = f"table {self.name!r}, column {col.name!r}"
        if arr.ndim != 1:
            raise ValueError(f"{where}: expected a 1-D array, got shape {arr.shape}")
        kind = arr.dtype.kind
        if col.kind == "s":
            if kind == "U":
                return arr.astype(object)
            if kind == "O" and all(isinstance(v, str) for v in arr):
                return arr
            if arr.size == 0:
                return arr.astype(object)
            raise TypeError(f"{where}: expected str values, got dtype {arr.dtype}")
        ok = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}[col.kind]
        if kind not in ok:
            raise TypeError(f"{where}: expected {col.dtype} values, got dtype {arr.dtype}")
        if col.kind in "iu" and arr.size:
            info = np.iinfo(col.dtype)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < info.min or hi > info.max:
                raise OverflowError(f"{where}: values {lo}..{hi} out of range for {col.dtype}")
        return arr


class Step:
    """One protocol step of a run (``/steps/<index>_<name>``), created by :meth:`RunWriter.step`.

    As a context manager it finishes with "completed", or with the status of the exception.
    """

    def __init__(self, writer: RunWriter, index: int, name: str, tables: list[str] | None = None,
                 status: str = "running") -> None:
        self._writer = writer
        self.index = index
        self.name = name
        self.key = f"{index:03d}_{name}"
        self.status = status
        self.tables: list[str] = list(tables or [])

    def __repr__(self) -> str:
        return f"<Step {self.key!r} status={self.status!r}>"

    def __enter__(self) -> Step:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status == "running" and not self._writer.closed:
            self.finish(status_for_exception(exc), exception_message(exc) if exc else "")

    def table(self, name: str, columns: Mapping[str, Any], **kwargs: Any) -> Table:
        """Create a table belonging to this step (see :meth:`RunWriter.table`)."""
        return self._writer.table(name, columns, step=self, **kwargs)

    def finish(self, status: str = "completed", message: str = "") -> None:
        """Record the step's final status, committed with everything buffered (a durability point)."""
        self._writer._check_open()
        if status not in STEP_STATUSES or status == "running":
            raise ValueError(f"step status must be one of {STEP_STATUSES[1:]}, got {status!r}")
        self._writer.durability_point(finish=[(self, status, str(message))])


def _cells_array(cells: Any) -> np.ndarray:
    """Cells as an int64 (n, 2) array of (row, col); accepts pairs or objects with row/col."""
    if cells is None:
        return np.zeros((0, 2), dtype=np.int64)
    if not isinstance(cells, np.ndarray):
        pairs = []
        for cell in cells:
            if hasattr(cell, "row") and hasattr(cell, "col"):
                pairs.append((cell.row, cell.col))
            elif hasattr(cell, "row") and hasattr(cell, "column"):
                pairs.append((cell.row, cell.column))
            else:
                pairs.append(tuple(cell))
        cells = np.array(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    if cells.ndim != 2 or cells.shape[1] != 2 or cells.dtype.kind not in "iu":
        raise ValueError("cells must be (row, col) integer pairs")
    return cells.astype(np.int64)


def _run_attrs(meta: RunMetadata, durability: str) -> dict[str, Any]:
    """The run attributes written once, at creation (before the first pulse)."""
    iso, unix = _now()
    attrs: dict[str, Any] = {
        "run_id": meta.run_id, "package_version": meta.package_version, "seed": meta.seed, "host": meta.host,
        "start_time": iso, "start_time_unix": unix, "durability": durability,
        "instruments": dict(meta.instruments), "extras": dict(meta.extras),
        "python_version": platform.python_version(), "numpy_version": np.__version__,
        "h5py_version": h5py.version.version, "hdf5_version": h5py.version.hdf5_version,
    }
    for key in ("recipe", "station"):
        attrs[f"{key}_sha256"] = hashlib.sha256(getattr(meta, key).encode("utf-8")).hexdigest()
    return attrs


class RunWriter:
    """Write one run (see :mod:`.dataset` for the layout and the durability rules).

    Creates the journal ``<path>.journal`` exclusively (refusing an existing run file unless
    ``overwrite``; never an existing journal: it belongs to a live or a killed run), commits the
    metadata before returning. ``durability`` is ``"flush"`` (survives a killed process) or
    ``"fsync"`` (also a power cut). :meth:`close` builds the HDF5 file ``path`` and removes the
    journal. As a context manager it closes with "completed", or with the status and text of the
    exception. :meth:`resume` opens a run that did not complete, to append to it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metadata: RunMetadata | Mapping[str, Any],
        durability: str = "flush",
        overwrite: bool = False,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        clock_epoch_unix: float | None = None,
        _journal: JournalWriter | None = None,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}, got {durability!r}")
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        self.path = os.fspath(path)
        self.journal_path = journal_path(self.path)
        self.durability = durability
        self.batch_rows = batch_rows
        self._tables: dict[str, Table] = {}
        self._steps: list[Step] = []
        self._closed = False
        self.session: int | None = 1
        self._overwrite = overwrite           # the HDF5 file may be replaced at the close
        self._imported = False                # resume() made the journal from the HDF5 file
        self._partial_rows: dict[str, int] = {}   # rows set aside so far, per table
        if _journal is not None:                                  # resume(): state loaded by the caller
            self._journal = _journal
            self.metadata = RunMetadata.from_mapping(metadata) if isinstance(metadata, Mapping) else metadata
            return
        meta = metadata if isinstance(metadata, RunMetadata) else RunMetadata.from_mapping(metadata)
        meta = meta.validated()
        to_json(meta.instruments, what="metadata 'instruments'")
        to_json(meta.extras, what="metadata 'extras'")
        self.metadata = meta
        if os.path.exists(self.path) and not overwrite:
            raise FileExistsError(f"{self.path} exists; refusing to overwrite a run file")
        if os.path.exists(self.journal_path):
            raise FileExistsError(f"{self.journal_path} exists: another run is writing {self.path}, or a killed "
                                  f"run left it (see `rramlab recover` / `rramlab resume`)")
        attrs = _run_attrs(meta, durability)
        self._journal = JournalWriter.create(self.journal_path, durability, {
            "schema": str(SCHEMA_VERSION), "run": to_json(attrs, what="run metadata"),
            "recipe": meta.recipe, "station": meta.station, "run_file": os.path.basename(self.path)})
        try:
            self.session = self._new_session("start", meta.instruments, clock_epoch_unix, "")
        except BaseException:
            self._journal.close()
            remove_journal(self.journal_path)
            raise

    # -- resume --------------------------------------------------------------------------------

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, durability: str | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> RunWriter:
        """Open the unfinished run ``path`` to append: its journal, or (after a clean close or a
        ``recover``) a new journal imported from the HDF5 file. Nothing is recorded until
        :meth:`begin_session`; :meth:`abandon` leaves the run as it was."""
        p = os.fspath(path)
        jp = journal_path(p)
        imported = False
        if not os.path.exists(jp):
            if not os.path.exists(p):
                raise FileNotFoundError(f"{p}: no such run file (and no journal {jp})")
            import_run_file(p, jp)
            imported = True
        snap = JournalSnapshot(jp)
        run_attrs = json.loads(snap.meta["run"])
        mode = durability or str(run_attrs.get("durability", "flush"))
        journal = JournalWriter.open_existing(jp, mode)
        meta = RunMetadata(recipe=snap.meta.get("recipe", ""), station=snap.meta.get("station", ""),
                           instruments=run_attrs.get("instruments", {}),
                           package_version=run_attrs.get("package_version"), seed=run_attrs.get("seed"),
                           host=run_attrs.get("host"), run_id=run_attrs.get("run_id"),
                           extras=run_attrs.get("extras", {}))
        w = cls(p, metadata=meta, durability=mode, batch_rows=batch_rows, _journal=journal)
        w._overwrite = True                                        # the HDF5 file is this run's own view
        w._imported = imported
        w.session = None
        for spec in snap.table_specs:
            infos = columns_from_json(spec["columns"])
            w._tables[spec["name"]] = Table(w, spec["name"], infos, batch_rows, snap.committed_rows(spec["name"]))
            w._partial_rows[spec["name"]] = snap.committed_rows(spec["name"], partial=True)
        for s in snap.steps:
            w._steps.append(Step(w, int(s["idx"]), str(s["name"]), json.loads(s["tables"] or "[]"), str(s["status"])))
        return w

    def begin_session(self, kind: str, instruments: Mapping[str, str], clock_epoch_unix: float | None,
                      note: str = "") -> int:
        """Record that this process now writes the run (``kind`` "resume"); returns the session number."""
        self._check_open()
        self.session = self._new_session(kind, instruments, clock_epoch_unix, note)
        return self.session

    def record_instruments(self, instruments: Mapping[str, str]) -> None:
        """Store the instruments' identities (``*IDN?``) of this session (and of the run, in its first)."""
        self._check_open()
        text = to_json(dict(instruments), what="instruments")
        with self._journal.transaction("record the instruments") as c:
            c.execute("UPDATE sessions SET instruments = ? WHERE id = ?", (text, self.session))
            if self.session == 1:
                run = json.loads(c.execute("SELECT value FROM meta WHERE key = 'run'").fetchone()[0])
                run["instruments"] = dict(instruments)
                c.execute("UPDATE meta SET value = ? WHERE key = 'run'", (to_json(run, what="run metadata"),))
        self.metadata = dataclasses.replace(self.metadata, instruments=dict(instruments))

    def abandon(self) -> None:
        """Close without recording anything (a resume refused before it began); the run stays as it was."""
        if self._closed:
            return
        self._journal.close()
        self._closed = True
        if self._imported:
            remove_journal(self.journal_path)

    def resume_step(self, index: int, note: str = "") -> Step:
        """Mark step ``index`` running again (a resumed run continues it) and return its handle."""
        self._check_open()
        step = self._steps[index]
        with self._journal.transaction("reopen a step") as c:
            c.execute("UPDATE steps SET status = 'running', message = ?, stop_time = NULL, stop_time_unix = NULL "
                      "WHERE idx = ?", (note, index))
        step.status = "running"
        return step

    # -- public API --------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RunWriter {self.path!r} {state} tables={list(self._tables)}>"

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        if exc is None:
            self.close("completed")
        else:
            text = "".join(_traceback.format_exception(exc_type, exc, tb))
            self.close(status_for_exception(exc), exception_message(exc), traceback=text)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def tables(self) -> Mapping[str, Table]:
        """Tables created so far, by name."""
        return dict(self._tables)

    @property
    def steps(self) -> list[Step]:
        """Steps created so far, in order."""
        return list(self._steps)

    def table(
        self,
        name: str,
        columns: Mapping[str, Any],
        *,
        step: Step | None = None,
        description: str = "",
        batch_rows: int | None = None,
    ) -> Table:
        """Create table ``name`` with ``columns`` (name -> (dtype, unit, description)), committed at once.

        A ``seq`` (int64) column is prepended. In a resumed run, asking again for a table that
        exists with the same columns returns it (rows continue its ``seq``).
        """
        self._check_open()
        validate_name(name, "table")
        if step is not None and step._writer is not self:
            raise ValueError("step belongs to another run")
        infos = normalize_columns(columns)
        if name in self._tables:
            existing = self._tables[name]
            if self.session > 1 and columns_json(existing._infos) == columns_json(infos):
                return existing
            raise ValueError(f"table {name!r} already exists")
        capacity = self.batch_rows if batch_rows is None else batch_rows
        if capacity < 1:
            raise ValueError("batch_rows must be >= 1")
        check_attr_size(description, what="table description")
        table = Table(self, name, infos, capacity)
        with self._journal.transaction(f"create table {name!r}") as c:
            c.execute("INSERT INTO tables (name, ord, columns, description, step) VALUES (?, ?, ?, ?, ?)",
                      (name, len(self._tables), columns_json(infos), description, step.key if step else ""))
            if step is not None:
                c.execute("UPDATE steps SET tables = ? WHERE idx = ?",
                          (to_json([*step.tables, name], what="step tables"), step.index))
        self._tables[name] = table
        if step is not None:
            step.tables.append(name)
        return table

    def step(
        self,
        name: str,
        protocol: str,
        parameters: Mapping[str, Any] | Any,
        cells: Iterable[Any] | np.ndarray | None = None,
    ) -> Step:
        """Record a new step ``<index>_<name>`` (status "running"), committed at once.

        ``parameters`` is a mapping or a dataclass, stored as JSON; ``cells`` are (row, col) pairs.
        """
        self._check_open()
        validate_name(name, "step")
        if not isinstance(protocol, str):
            raise TypeError("protocol must be a str")
        params_json = to_json(parameters, what=f"step {name!r} parameters")
        cell_array = _cells_array(cells)
        index = len(self._steps)
        iso, unix = _now()
        with self._journal.transaction(f"record step {name!r}") as c:
            c.execute("INSERT INTO steps (idx, name, protocol, parameters, cells, status, message, start_time, "
                      "start_time_unix, session) VALUES (?, ?, ?, ?, ?, 'running', '', ?, ?, ?)",
                      (index, name, protocol, params_json, cell_array.astype("<i8").tobytes(), iso, unix,
                       self.session))
        step = Step(self, index, name)
        self._steps.append(step)
        return step

    def durability_point(self, *, units: Iterable[tuple[int, str]] = (), ledger: Mapping[Cell, int] | None = None,
                         state: Mapping[str, Any] | None = None,
                         finish: Iterable[tuple[Step, str, str]] = (), end_of_unit: bool = True) -> None:
        """Commit, in one atomic transaction, every buffered row of every table, the finished
        ``units`` ((step index, key)), the pulse ``ledger`` (cell -> pulses sent), run ``state``
        values and step stop records; the in-flight set is cleared (unless not ``end_of_unit``). On return
        everything is committed
        (it survives a killed process; with ``durability="fsync"`` a power cut too). On a failure
        nothing of it is committed (:class:`DiskFullError` when the disk is full) and the rows stay
        buffered."""
        self._check_open()
        finish = list(finish)
        pending = [(t, rows) for t in self._tables.values() if (rows := t._pending()) is not None]
        with self._journal.transaction("commit a durability point") as c:
            for table, rows in pending:
                data = encode_rows(rows)
                c.execute("INSERT INTO batches (tbl, first_seq, n, data, crc, session) VALUES (?, ?, ?, ?, ?, ?)",
                          (table.name, table._committed, len(rows), data, zlib.crc32(data), self.session))
            c.executemany("INSERT OR IGNORE INTO units (step, key, session) VALUES (?, ?, ?)",
                          [(int(s), str(k), self.session) for s, k in units])
            if ledger:
                c.executemany("INSERT INTO ledger (row, col, pulses, reserved) VALUES (?, ?, ?, ?) "
                              "ON CONFLICT (row, col) DO UPDATE SET pulses = excluded.pulses, "
                              "reserved = max(reserved, excluded.pulses)",
                              [(int(r), int(col), int(n), int(n)) for (r, col), n in ledger.items()])
            if end_of_unit:
                c.execute("DELETE FROM in_flight")
            if state:
                c.executemany("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                              [(k, to_json(v, what=f"run state {k!r}")) for k, v in state.items()])
            for step, status, message in finish:
                iso, unix = _now()
                c.execute("UPDATE steps SET status = ?, message = ?, stop_time = ?, stop_time_unix = ? WHERE idx = ?",
                          (status, message, iso, unix, step.index))
        for table, _ in pending:
            table._mark_committed()
        for step, status, _ in finish:
            step.status = status

    def set_aside(self, ledger: Mapping[Cell, int] | None = None) -> dict[str, int]:
        """Commit the buffered rows — those of a unit the run stopped inside — apart from the tables
        (``/partial/<table>``, with the session): kept, but not part of the tables, because a resumed run
        does that unit again from its start. The cells in flight stay in flight (a resumed run reads them
        first); ``ledger`` (cell -> pulses sent, known exactly by a live process) is committed as both
        count and reservation. Returns the rows set aside per table."""
        self._check_open()
        pending = [(t, rows) for t in self._tables.values() if (rows := t._pending()) is not None]
        with self._journal.transaction("set aside the rows of the unit in progress") as c:
            for table, rows in pending:
                first = self._partial_rows.get(table.name, 0)
                block = rows.copy()
                block[SEQ_COLUMN] = np.arange(first, first + len(block))
                data = encode_rows(block)
                c.execute("INSERT INTO batches (tbl, first_seq, n, data, crc, session, part) "
                          "VALUES (?, ?, ?, ?, ?, ?, 1)", (table.name, first, len(block), data, zlib.crc32(data),
                                                           self.session))
            ledger = dict(ledger or {})
            c.executemany("INSERT INTO ledger (row, col, pulses, reserved) VALUES (?, ?, ?, ?) ON CONFLICT (row, col) "
                          "DO UPDATE SET pulses = excluded.pulses, reserved = excluded.reserved",
                          [(int(r), int(col), int(n), int(n)) for (r, col), n in ledger.items()])
        out = {}
        for table, rows in pending:
            self._partial_rows[table.name] = self._partial_rows.get(table.name, 0) + len(rows)
            out[table.name] = len(rows)
            table._drop_pending()
        return out

    def mark_in_flight(self, cell: Cell, step: int | None, t: float | None) -> None:
        """Write ahead, before the first energising operation on ``cell`` since the last durability point:
        a resumed run reads such a cell before it pulses it again. Committed at once."""
        with self._journal.transaction("record a cell in flight") as c:
            c.execute("INSERT OR REPLACE INTO in_flight (row, col, step, session, t) VALUES (?, ?, ?, ?, ?)",
                      (int(cell[0]), int(cell[1]), step, self.session, t))

    def reserve_pulses(self, cell: Cell, reserved: int) -> None:
        """Write ahead an upper bound of the pulses ``cell`` will have received before the next commit
        of its count, so a killed run never under-counts the pulse ledger. Committed at once."""
        with self._journal.transaction("reserve pulses") as c:
            c.execute("INSERT INTO ledger (row, col, pulses, reserved) VALUES (?, ?, 0, ?) ON CONFLICT (row, col) "
                      "DO UPDATE SET reserved = max(reserved, excluded.reserved)",
                      (int(cell[0]), int(cell[1]), int(reserved)))

    def close(self, exit_status: str, message: str = "", *, traceback: str = "", build: bool = True) -> None:
        """Commit the buffered rows and the stop record, then build the HDF5 file and remove the journal.

        ``exit_status`` is one of "completed", "interrupted", "failed", "aborted". Safe in a
        ``finally``; a second call does nothing. Raises :class:`DatasetWriteError` (after closing)
        when something could not be written; the message says where the data is (the journal is kept
        whenever the HDF5 file could not be built, and ``rramlab recover`` builds it later).
        """
        if self._closed:
            return
        if exit_status not in EXIT_STATUSES:
            raise ValueError(f"exit_status must be one of {EXIT_STATUSES}, got {exit_status!r}")
        if self.session is None:
            self.abandon()
            return
        errors: list[str] = []
        failure: Exception | None = None
        stop_recorded = False
        try:
            running = [(s, exit_status, str(message)) for s in self._steps if s.status == "running"]
            self.durability_point(finish=running, end_of_unit=False)      # cells in flight stay in flight
        except Exception as exc:
            failure = exc
            lost = ", ".join(f"{t.name} {t.buffered_rows} rows" for t in self._tables.values() if t.buffered_rows)
            errors.append(f"not committed (the unit in progress): {lost}" if lost else "last step records not written")
        try:
            iso, unix = _now()
            with self._journal.transaction("write the stop record") as c:
                c.execute("UPDATE sessions SET stop_time = ?, stop_time_unix = ?, exit_status = ?, exit_message = ?, "
                          "exit_traceback = ? WHERE id = ?",
                          (iso, unix, exit_status, "; ".join([m for m in (str(message), *errors) if m]),
                           str(traceback), self.session))
            stop_recorded = True
        except Exception as exc:
            failure = failure or exc
            errors.append("stop record not written (the run reads 'incomplete')")
        finally:
            self._journal.close()
            self._closed = True
            for table in self._tables.values():
                table._closed = True
        if build and stop_recorded:
            try:
                build_run_file(self.journal_path, self.path, replace=self._overwrite)
                remove_journal(self.journal_path)
            except Exception as exc:
                failure = failure or exc
                errors.append(f"HDF5 file not built ({exc})")
        if errors:
            full = isinstance(failure, DiskFullError) or (isinstance(failure, OSError) and failure.errno == 28)
            head = "disk full" if full else exception_message(failure) if failure else "write failed"
            raise (DiskFullError if full else DatasetWriteError)(
                f"{self.path}: {head}; " + "; ".join(errors) + f"; every committed row is in {self.journal_path} "
                f"(free space if the disk is full, then `rramlab recover {self.path}` builds the HDF5 file and "
                f"`rramlab resume {self.path}` continues the run)")

    # -- internals ---------------------------------------------------------------------------

    def _new_session(self, kind: str, instruments: Mapping[str, str], clock_epoch_unix: float | None,
                     note: str) -> int:
        iso, unix = _now()
        with self._journal.transaction("record the session") as c:
            cur = c.execute("INSERT INTO sessions (kind, start_time, start_time_unix, pid, host, package_version, "
                            "instruments, clock_epoch_unix, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (kind, iso, unix, os.getpid(), socket.gethostname(), installed_version(),
                             to_json(dict(instruments), what="instruments"), clock_epoch_unix, note))
            return int(cur.lastrowid or 1)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: the run file is closed")


__all__ = ["DEFAULT_BATCH_ROWS", "DatasetError", "DiskFullError", "RunMetadata", "RunWriter", "Step", "Table"]
