"""Writer of rramlab run files: :class:`RunWriter`, its :class:`Table` and :class:`Step` handles.

The layout, the batching and the durability rules are described in :mod:`.dataset`. A writer is
used from one thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import os
import platform
import socket
import time
import traceback as _traceback
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import h5py
import numpy as np
from h5py import h5a, h5d, h5s, h5t

from .dataset_schema import (
    DURABILITY_MODES,
    EXIT_STATUSES,
    RUN_GROUP,
    SCHEMA_ATTR,
    SCHEMA_VERSION,
    SEQ_COLUMN,
    STEP_STATUSES,
    STEPS_GROUP,
    STRING_DTYPE,
    TABLES_GROUP,
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

DEFAULT_BATCH_ROWS = 1024
"""Rows buffered per table before an HDF5 write (a durability point writes fewer)."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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


def _h5_write(dataset_id: h5d.DatasetID, start: int, rows: np.ndarray, mtype: h5t.TypeID) -> None:
    """Write ``rows`` at row ``start`` in one H5Dwrite (the extent must already cover them).

    The low-level call with a cached memory type costs ~30 µs against ~200 µs for
    ``Dataset.__setitem__`` (h5py 3.16 / HDF5 2.0), which matters at one write per cell.
    """
    fspace = dataset_id.get_space()
    fspace.select_hyperslab((start,), (len(rows),))
    dataset_id.write(h5s.create_simple((len(rows),)), fspace, rows, mtype=mtype)


def _default_chunk_rows(itemsize: int) -> int:
    """About 64 KiB per chunk, a power of two between 256 and 16384 rows."""
    rows = max(1, 65536 // max(1, itemsize))
    return min(16384, max(256, 1 << (rows.bit_length() - 1)))


class Table:
    """An append-only table of one run (``/tables/<name>``), created by :meth:`RunWriter.table`.

    Rows are buffered and written in batches of ``batch_rows``; they are committed (known to be on
    disk) only after the next :meth:`RunWriter.durability_point`. ``seq`` is filled in automatically.
    """

    def __init__(
        self, writer: RunWriter, dataset: h5py.Dataset, infos: list[ColumnInfo], batch_rows: int
    ) -> None:
        self._writer = writer
        self._ds = dataset
        self._dsid = dataset.id
        self._infos = infos
        self._ncols = len(infos)
        self._dtype = compound_dtype(infos)
        self._mtype = h5t.py_create(self._dtype)  # what h5py itself passes to H5Dwrite
        self._committed_attr = h5a.open(dataset.id, b"committed_rows")
        self._extent = 0
        self._cap = batch_rows
        self._buf = np.zeros(batch_rows, dtype=self._dtype)
        self._n = 0
        self._next_seq = 0
        self._written = 0
        self._committed = 0
        self._attr_committed = 0
        self._closed = False
        self.name: str = dataset.name.rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"<Table {self.name!r} rows={self.rows} written={self._written} committed={self._committed}>"

    @property
    def columns(self) -> list[str]:
        """Column names in file order (``seq`` first)."""
        return [SEQ_COLUMN, *(c.name for c in self._infos)]

    @property
    def units(self) -> dict[str, str]:
        """Unit of each column."""
        return {SEQ_COLUMN: "", **{c.name: c.unit for c in self._infos}}

    @property
    def dataset(self) -> h5py.Dataset:
        """The underlying h5py dataset (escape hatch; do not resize it)."""
        return self._ds

    @property
    def rows(self) -> int:
        """Rows accepted so far (written, buffered or committed)."""
        return self._next_seq

    @property
    def buffered_rows(self) -> int:
        """Rows accepted but not yet written to the file."""
        return self._n

    @property
    def written_rows(self) -> int:
        """Rows handed to HDF5 (not necessarily on disk yet)."""
        return self._written

    @property
    def committed_rows(self) -> int:
        """Rows known to be on disk after the last durability point."""
        return self._committed

    def append(self, row: Mapping[str, Any]) -> None:
        """Accept one row (a mapping with exactly the declared columns, ``seq`` excluded).

        A ``TypeError``/``ValueError``/``OverflowError`` means the row was not accepted.
        """
        self._check_open()
        values = self._row_values(row, self._next_seq)
        if self._n == self._cap:
            self._write_buffer()
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
        if self._n + n <= self._cap:
            self._buf[self._n : self._n + n] = block
            self._n += n
        else:
            data = np.concatenate([self._buf[: self._n], block]) if self._n else block
            self._write_rows(data)
            self._n = 0
        self._next_seq += n

    def flush(self) -> None:
        """Write the buffered rows to HDF5 (no file flush: see :meth:`RunWriter.durability_point`)."""
        self._check_open()
        self._write_buffer()

    # -- internals ---------------------------------------------------------------------------

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

    def _write_buffer(self) -> None:
        if self._n:
            self._write_rows(self._buf[: self._n])
            self._n = 0

    def _write_rows(self, data: np.ndarray) -> None:
        start = self._written
        stop = start + len(data)
        if self._extent != stop:
            self._dsid.set_extent((stop,))
            self._extent = stop
        _h5_write(self._dsid, start, np.ascontiguousarray(data), self._mtype)
        self._written = stop

    def _store_committed_attr(self) -> None:
        if self._attr_committed != self._written:
            self._committed_attr.write(np.array(self._written, dtype=np.int64))
            self._attr_committed = self._written


class Step:
    """One protocol step of a run (``/steps/<index>_<name>``), created by :meth:`RunWriter.step`.

    As a context manager it finishes with "completed", or with the status of the exception.
    """

    def __init__(self, writer: RunWriter, group: h5py.Group, index: int, name: str) -> None:
        self._writer = writer
        self._group = group
        self.index = index
        self.name = name
        self.key: str = group.name.rsplit("/", 1)[-1]
        self.status = "running"
        self.tables: list[str] = []

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
        """Record the step's final status and make everything durable."""
        self._writer._check_open()
        self._record_finish(status, message)
        self._writer.durability_point()

    def _record_finish(self, status: str, message: str) -> None:
        if status not in STEP_STATUSES or status == "running":
            raise ValueError(f"step status must be one of {STEP_STATUSES[1:]}, got {status!r}")
        iso, unix = _now()
        attrs = self._group.attrs
        attrs["stop_time"] = iso
        attrs["stop_time_unix"] = unix
        attrs["message"] = str(message)
        attrs["status"] = status
        self.status = status

    def _add_table(self, name: str) -> None:
        self.tables.append(name)
        self._group.attrs["tables"] = to_json(self.tables, what="step tables")


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


class RunWriter:
    """Write one run to one HDF5 file (see :mod:`.dataset` for the layout).

    Creates ``path`` (refusing an existing file unless ``overwrite``), writes the schema version and
    ``metadata`` and flushes them before returning. ``durability`` is ``"flush"`` (survives a killed
    process) or ``"fsync"`` (also fsyncs at every durability point, for power loss). As a context
    manager it closes with "completed", or with the status and text of the exception.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metadata: RunMetadata | Mapping[str, Any],
        durability: str = "flush",
        overwrite: bool = False,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}, got {durability!r}")
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        meta = metadata if isinstance(metadata, RunMetadata) else RunMetadata.from_mapping(metadata)
        meta = meta.validated()
        instruments_json = to_json(meta.instruments, what="metadata 'instruments'")
        extras_json = to_json(meta.extras, what="metadata 'extras'")
        self.path = os.fspath(path)
        self.durability = durability
        self.batch_rows = batch_rows
        self.metadata = meta
        self._tables: dict[str, Table] = {}
        self._steps: list[Step] = []
        self._closed = False
        if not overwrite and os.path.exists(self.path):
            raise FileExistsError(f"{self.path} exists; refusing to overwrite a run file")
        self._file = h5py.File(self.path, "w" if overwrite else "x")
        try:
            self._write_header(meta, instruments_json, extras_json)
            self._tables_group = self._file.create_group(TABLES_GROUP)
            self._steps_group = self._file.create_group(STEPS_GROUP)
            self._sync()
        except BaseException:
            self._file.close()
            with contextlib.suppress(OSError):
                os.remove(self.path)
            raise

    def _write_header(self, meta: RunMetadata, instruments_json: str, extras_json: str) -> None:
        f = self._file
        f.attrs[SCHEMA_ATTR] = np.int64(SCHEMA_VERSION)
        run = f.create_group(RUN_GROUP)
        a = run.attrs
        a[SCHEMA_ATTR] = np.int64(SCHEMA_VERSION)
        a["run_id"] = meta.run_id
        a["package_version"] = meta.package_version
        if meta.seed is not None:
            seed = meta.seed
            a["seed"] = np.int64(seed) if _INT64_MIN <= seed <= _INT64_MAX else str(seed)
        a["host"] = meta.host
        iso, unix = _now()
        a["start_time"] = iso
        a["start_time_unix"] = unix
        a["durability"] = self.durability
        a["instruments"] = instruments_json
        a["extras"] = extras_json
        a["python_version"] = platform.python_version()
        a["numpy_version"] = np.__version__
        a["h5py_version"] = h5py.version.version
        a["hdf5_version"] = h5py.version.hdf5_version
        for key in ("recipe", "station"):
            text: str = getattr(meta, key)
            a[f"{key}_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
            ds = run.create_dataset(key, data=text, dtype=STRING_DTYPE)
            ds.attrs["units"] = ""

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
    def file(self) -> h5py.File:
        """The open h5py file (escape hatch; add data only outside ``/run``, ``/tables``, ``/steps``)."""
        return self._file

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
        chunk_rows: int | None = None,
    ) -> Table:
        """Create ``/tables/<name>`` with ``columns`` (name -> (dtype, unit, description)).

        The table is a chunked compound dataset with ``maxshape=(None,)``; a ``seq`` (int64) column
        is prepended. The new (empty) table is made durable at once.
        """
        self._check_open()
        validate_name(name, "table")
        if name in self._tables:
            raise ValueError(f"table {name!r} already exists")
        if step is not None and step._writer is not self:
            raise ValueError("step belongs to another run")
        infos = normalize_columns(columns)
        dtype = compound_dtype(infos)
        batch = self.batch_rows if batch_rows is None else batch_rows
        if batch < 1:
            raise ValueError("batch_rows must be >= 1")
        chunk = chunk_rows or _default_chunk_rows(dtype.itemsize)
        units_json = to_json({SEQ_COLUMN: "", **{c.name: c.unit for c in infos}}, what="units")
        desc = {SEQ_COLUMN: "row sequence number, 0..n-1", **{c.name: c.description for c in infos}}
        desc_json = to_json(desc, what="column descriptions")
        check_attr_size(description, what="table description")
        ds = self._tables_group.create_dataset(
            name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(chunk,)
        )
        ds.attrs["units"] = units_json
        ds.attrs["descriptions"] = desc_json
        ds.attrs["description"] = description
        ds.attrs["step"] = step.key if step is not None else ""
        ds.attrs["committed_rows"] = np.int64(0)
        table = Table(self, ds, infos, batch)
        self._tables[name] = table
        if step is not None:
            step._add_table(name)
        self._sync()
        return table

    def step(
        self,
        name: str,
        protocol: str,
        parameters: Mapping[str, Any] | Any,
        cells: Iterable[Any] | np.ndarray | None = None,
    ) -> Step:
        """Record a new step ``/steps/<index>_<name>`` (status "running") and make it durable.

        ``parameters`` is a mapping or a dataclass, stored as JSON; ``cells`` are (row, col) pairs.
        """
        self._check_open()
        validate_name(name, "step")
        if not isinstance(protocol, str):
            raise TypeError("protocol must be a str")
        params_json = to_json(parameters, what=f"step {name!r} parameters")
        cell_array = _cells_array(cells)
        index = len(self._steps)
        group = self._steps_group.create_group(f"{index:03d}_{name}")
        iso, unix = _now()
        a = group.attrs
        a["index"] = np.int64(index)
        a["name"] = name
        a["protocol"] = protocol
        a["parameters"] = params_json
        a["status"] = "running"
        a["message"] = ""
        a["start_time"] = iso
        a["start_time_unix"] = unix
        a["tables"] = "[]"
        ds = group.create_dataset("cells", data=cell_array, maxshape=(None, 2))
        ds.attrs["units"] = ""
        ds.attrs["columns"] = to_json(["row", "col"], what="cells columns")
        step = Step(self, group, index, name)
        self._steps.append(step)
        self._sync()
        return step

    def durability_point(self) -> None:
        """Write every buffered row of every table, then flush the file (and fsync if asked).

        On return, every row accepted so far is committed: it survives a killed process.
        """
        self._check_open()
        tables = self._tables.values()
        for table in tables:
            table._write_buffer()
        for table in tables:
            table._store_committed_attr()
        self._sync()
        for table in tables:
            table._committed = table._written

    def close(self, exit_status: str, message: str = "", *, traceback: str = "") -> None:
        """Write the buffered rows and the stop record, then close the file.

        ``exit_status`` is one of "completed", "interrupted", "failed", "aborted". Safe in a
        ``finally``; a second call does nothing. Raises :class:`DatasetWriteError` (after closing)
        when rows or the stop record could not be written.
        """
        if self._closed:
            return
        if exit_status not in EXIT_STATUSES:
            raise ValueError(f"exit_status must be one of {EXIT_STATUSES}, got {exit_status!r}")
        errors: list[str] = []
        for table in self._tables.values():
            try:
                table._write_buffer()
            except Exception as exc:
                errors.append(
                    f"table {table.name!r}: {table.buffered_rows} rows not written ({exception_message(exc)})"
                )
        synced = False
        try:
            for table in self._tables.values():
                table._store_committed_attr()
            for step in self._steps:
                if step.status == "running":
                    step._record_finish(exit_status, message)
            full_message = "; ".join([m for m in (str(message), *errors) if m])
            iso, unix = _now()
            a = self._file[RUN_GROUP].attrs
            a["stop_time"] = iso
            a["stop_time_unix"] = unix
            a["exit_message"] = full_message
            a["exit_traceback"] = str(traceback)
            a["exit_status"] = exit_status
            self._sync()
            synced = True
        except Exception as exc:
            errors.append(f"stop record not written ({exception_message(exc)})")
        finally:
            try:
                self._file.close()
            except Exception as exc:
                errors.append(f"closing the file failed ({exception_message(exc)})")
            self._closed = True
            for table in self._tables.values():
                table._closed = True
                if synced:
                    table._committed = table._written
        if errors:
            raise DatasetWriteError(f"{self.path}: " + "; ".join(errors))

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: the run file is closed")

    def _sync(self) -> None:
        self._file.flush()
        if self.durability == "fsync":
            os.fsync(self._file.id.get_vfd_handle())


__all__ = ["DEFAULT_BATCH_ROWS", "DatasetError", "RunMetadata", "RunWriter", "Step", "Table"]
