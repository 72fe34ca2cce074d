"""The run journal: the crash-consistent store a run writes while it runs (SQLite, append-only use).

A run writes ``<run file>.journal``, an SQLite database, and commits one transaction per durability
point (the rows of the finished unit, the units finished, the pulse ledger). SQLite's commit is
atomic and survives ``kill -9`` (``synchronous=NORMAL`` in WAL mode) or also a power cut
(``synchronous=FULL``, ``durability="fsync"``); a full disk makes the commit fail as a whole
(``SQLITE_FULL``), leaving every earlier commit readable. The HDF5 run file is *built* from the
journal when the run closes (:mod:`.dataset_build`), in a temporary file renamed into place, so the
HDF5 file is never half-written. While a journal exists it is the truth: readers use it, ``rramlab
recover`` rebuilds the HDF5 file from it, ``rramlab resume`` appends to it.

Why not HDF5 alone: an HDF5 file flushed at every durability point is not crash-consistent while the
flush runs (its metadata is rewritten in place); killed during flushes it was left unreadable in a
few percent of trials, and HDF5 on a full disk can fail on later calls in ways h5py does not survive.
SQLite's rollback-safe commit is the tested, well-kept answer to "append and commit atomically".

Tables of the journal (all values SI; JSON text where noted)::

    meta       key -> value: journal_format, schema, run (JSON run attributes), recipe, station
    sessions   one row per process that wrote the run: kind (start | resume), times, pid, host,
               package_version, instruments (JSON *IDN?), clock_epoch_unix, note, stop record
    steps      idx, name, protocol, parameters (JSON), cells (int64 (n, 2) bytes), status, message,
               start/stop time, tables (JSON)
    tables     name, columns (JSON [[name, dtype, unit, description], ...]), description, step
    batches    table, first_seq, n, data (encoded rows, see :func:`encode_rows`), crc32 of data, part (0: the
               table's rows; 1: rows of a unit that was interrupted and set aside, numbered on their own)
    units      finished units per step (step, key, session): what resume skips
    ledger     row, col, pulses (sent, as of the last durability point), reserved (write-ahead bound)
    in_flight  cells energised since the last durability point (row, col, step, session, t)
    state      key -> JSON value (e.g. the clock reading at the last durability point)
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .dataset_schema import (
    SEQ_COLUMN,
    ColumnInfo,
    DatasetError,
    DatasetWriteError,
    compound_dtype,
    normalize_columns,
)

JOURNAL_FORMAT = 1
JOURNAL_SUFFIX = ".journal"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, start_time TEXT, start_time_unix REAL,
    pid INTEGER, host TEXT, package_version TEXT, instruments TEXT, clock_epoch_unix REAL, note TEXT,
    stop_time TEXT, stop_time_unix REAL, exit_status TEXT, exit_message TEXT, exit_traceback TEXT);
CREATE TABLE steps (idx INTEGER PRIMARY KEY, name TEXT NOT NULL, protocol TEXT, parameters TEXT, cells BLOB,
    status TEXT, message TEXT, start_time TEXT, start_time_unix REAL, stop_time TEXT, stop_time_unix REAL,
    tables TEXT NOT NULL DEFAULT '[]', session INTEGER);
CREATE TABLE tables (name TEXT PRIMARY KEY, ord INTEGER NOT NULL, columns TEXT NOT NULL, description TEXT,
    step TEXT);
CREATE TABLE batches (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, first_seq INTEGER NOT NULL, n INTEGER NOT NULL,
    data BLOB NOT NULL, crc INTEGER NOT NULL, session INTEGER, part INTEGER NOT NULL DEFAULT 0);
CREATE INDEX batches_by_table ON batches (tbl, first_seq);
CREATE TABLE units (step INTEGER NOT NULL, key TEXT NOT NULL, session INTEGER, PRIMARY KEY (step, key));
CREATE TABLE ledger (row INTEGER NOT NULL, col INTEGER NOT NULL, pulses INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (row, col));
CREATE TABLE in_flight (row INTEGER NOT NULL, col INTEGER NOT NULL, step INTEGER, session INTEGER, t REAL,
    PRIMARY KEY (row, col));
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class JournalError(DatasetError):
    """A journal that cannot be opened or read."""


class DiskFullError(DatasetWriteError):
    """A commit failed because the disk (or the file-size limit) is full; earlier commits are intact."""


def journal_path(run_path: str | os.PathLike[str]) -> str:
    """The journal that belongs to run file ``run_path`` (``run.h5`` -> ``run.h5.journal``)."""
    p = os.fspath(run_path)
    return p if p.endswith(JOURNAL_SUFFIX) else p + JOURNAL_SUFFIX


def remove_journal(path: str) -> None:
    """Delete a journal and SQLite's side files (missing files are fine)."""
    for name in (path, *(path + s for s in SQLITE_SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


# ------------------------------------------------------------------------------------ row encoding
def _numeric_dtype(dtype: np.dtype) -> np.dtype:
    """Little-endian packed dtype of the non-string fields of a table dtype."""
    fields = [(n, dtype[n].newbyteorder("<")) for n in dtype.names if dtype[n].kind != "O"]
    return np.dtype(fields)


def encode_rows(rows: np.ndarray) -> bytes:
    """One batch of rows as bytes: numeric fields packed little-endian, string fields as JSON.

    Layout: ``<u4 length of the numeric part>`` + numeric part + UTF-8 JSON ``{field: [str, ...]}``.
    """
    num_dtype = _numeric_dtype(rows.dtype)
    packed = np.empty(len(rows), dtype=num_dtype)
    for name in num_dtype.names:
        packed[name] = rows[name]
    numeric = packed.tobytes()
    strings = {n: [str(v) for v in rows[n]] for n in rows.dtype.names if rows.dtype[n].kind == "O"}
    return struct.pack("<I", len(numeric)) + numeric + json.dumps(strings, ensure_ascii=False).encode("utf-8")


def decode_rows(data: bytes, dtype: np.dtype, n: int) -> np.ndarray:
    """Inverse of :func:`encode_rows` into rows of the table ``dtype`` (string fields as ``object``)."""
    (k,) = struct.unpack_from("<I", data, 0)
    num_dtype = _numeric_dtype(dtype)
    packed = np.frombuffer(data, dtype=num_dtype, count=n, offset=4)
    if 4 + k != 4 + packed.nbytes:
        raise ValueError("numeric part has the wrong length")
    strings = json.loads(data[4 + k:].decode("utf-8"))
    out = np.empty(n, dtype=dtype)
    for name in num_dtype.names:
        out[name] = packed[name]
    for name in dtype.names:
        if dtype[name].kind == "O":
            values = strings[name]
            if len(values) != n:
                raise ValueError(f"string column {name!r} has {len(values)} values for {n} rows")
            out[name] = values
    return out


def columns_json(infos: list[ColumnInfo]) -> str:
    """Column declarations as JSON ``[[name, dtype, unit, description], ...]`` (dtype as numpy str or "str")."""
    return json.dumps([[c.name, "str" if c.kind == "s" else c.dtype.str, c.unit, c.description] for c in infos],
                      ensure_ascii=False)


def columns_from_json(text: str) -> list[ColumnInfo]:
    """Inverse of :func:`columns_json`."""
    return normalize_columns({name: (str if dt == "str" else np.dtype(dt), unit, desc)
                              for name, dt, unit, desc in json.loads(text)})


def _sqlite_error(exc: sqlite3.Error, path: str, what: str) -> DatasetWriteError:
    """A typed error for a failed journal write (disk full is told apart: the run must stop at once)."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "full" in text.lower():
        return DiskFullError(f"{path}: {what}: disk full ({text}); every earlier commit is intact")
    return DatasetWriteError(f"{path}: {what}: {text}")


# ------------------------------------------------------------------------------------------ writer
class JournalWriter:
    """The write side of a journal: create a new one or open an existing one to append (resume).

    Every public method that changes the journal runs in its own transaction, except that
    :meth:`commit_point` groups a durability point. ``durability`` "flush" survives a killed process,
    "fsync" also a power cut.
    """

    def __init__(self, path: str, conn: sqlite3.Connection, durability: str) -> None:
        self.path = path
        self._conn = conn
        self.durability = durability
        self.closed = False

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str, durability: str, meta: Mapping[str, str],
               fill: Callable[[sqlite3.Connection], None] | None = None) -> JournalWriter:
        """Create ``path`` exclusively (FileExistsError if it exists) with the schema, ``meta`` and
        whatever ``fill(connection)`` inserts (an import).

        The journal is made whole under a temporary name and then linked to ``path`` (an atomic,
        exclusive step), so a journal that exists always holds everything it was created with.
        """
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists")
        tmp = f"{path}.new-{os.getpid()}"
        remove_journal(tmp)
        try:
            conn = _connect(tmp, durability)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                 [("journal_format", str(JOURNAL_FORMAT)), *meta.items()])
                if fill is not None:
                    fill(conn)
                conn.execute("COMMIT")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()                          # a clean close folds the WAL into the file
            _publish(tmp, path)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, path, "create the journal") from exc
        finally:
            remove_journal(tmp)
        return cls(path, _connect(path, durability), durability)

    @classmethod
    def open_existing(cls, path: str, durability: str) -> JournalWriter:
        """Open an existing journal to append (resume)."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such journal")
        conn = _connect(path, durability)
        _check_format(conn, path)
        return cls(path, conn, durability)

    # -- transactions --------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; a failure rolls back and raises a :class:`DatasetWriteError`."""
        if self.closed:
            raise RuntimeError(f"{self.path}: the journal is closed")
        conn = self._conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise _sqlite_error(exc, self.path, what) from exc
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self.transaction("write run metadata") as c:
            c.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens on close when nobody else reads)."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn


def _publish(tmp: str, path: str) -> None:
    """Give the finished ``tmp`` the name ``path``, exclusively: FileExistsError if ``path`` exists."""
    try:
        os.link(tmp, path)                            # atomic and exclusive
    except FileExistsError:
        raise FileExistsError(f"{path} exists") from None
    except OSError:                                   # a file system without hard links (FAT, some shares)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)   # reserve the name, exclusively
        os.close(fd)
        os.replace(tmp, path)


def _connect(path: str, durability: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":      # e.g. a file system without shared memory: rollback journal
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'NORMAL'}")
        # fold the WAL into the file every ~1 MiB and keep it at most that size: bounded disk use, and a
        # journal copied without its -wal file still holds all but the latest commits
        conn.execute("PRAGMA wal_autocheckpoint=256")
        conn.execute(f"PRAGMA journal_size_limit={2**20}")
        conn.execute("PRAGMA busy_timeout=10000")
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(f"{path}: not usable as a journal: {exc}") from exc
    return conn


def _check_format(conn: sqlite3.Connection, path: str) -> dict[str, str]:
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not an rramlab journal ({exc})") from exc
    fmt = meta.get("journal_format")
    if fmt is None:
        raise JournalError(f"{path}: not an rramlab journal (no journal_format)")
    if int(fmt) > JOURNAL_FORMAT:
        raise JournalError(f"{path}: journal format {fmt} is newer than this rramlab reads ({JOURNAL_FORMAT}); "
                           "upgrade rramlab")
    return meta


# ------------------------------------------------------------------------------------------ reader
class JournalSnapshot:
    """Everything committed in a journal, read in one read transaction (a consistent snapshot)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such journal")
        conn = _open_for_reading(path)
        try:
            conn.execute("BEGIN")
            self.meta = _check_format(conn, path)
            self.sessions = _rows(conn, "SELECT * FROM sessions ORDER BY id")
            self.steps = _rows(conn, "SELECT * FROM steps ORDER BY idx")
            self.table_specs = _rows(conn, "SELECT * FROM tables ORDER BY ord")
            self.units = conn.execute("SELECT step, key, session FROM units ORDER BY rowid").fetchall()
            self.ledger = conn.execute("SELECT row, col, pulses, reserved FROM ledger ORDER BY row, col").fetchall()
            self.in_flight = conn.execute("SELECT row, col, step, session, t FROM in_flight ORDER BY rowid").fetchall()
            self.state = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM state")}
            self._batches: dict[str, list[tuple[int, int, bytes, int]]] = {}
            self._partial: dict[str, list[tuple[int, int, bytes, int]]] = {}
            self.partial_sessions: dict[str, list[int]] = {}
            for tbl, first, n, data, crc, part, session in conn.execute(
                    "SELECT tbl, first_seq, n, CAST(data AS BLOB), crc, part, session FROM batches "
                    "ORDER BY tbl, first_seq, id"):
                (self._partial if part else self._batches).setdefault(tbl, []).append((first, n, data, crc))
                if part:
                    self.partial_sessions.setdefault(tbl, []).extend([int(session or 0)] * int(n))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{path}: damaged journal: {exc}") from exc
        finally:
            conn.close()

    def spec(self, name: str) -> dict[str, Any]:
        spec = next((t for t in self.table_specs if t["name"] == name), None)
        if spec is None:
            raise KeyError(name)
        return spec

    def good_batches(self, name: str, dtype: np.dtype, *, partial: bool = False
                     ) -> tuple[list[np.ndarray], list[str]]:
        """(decoded batches of table ``name`` in seq order, what was skipped and why); ``partial``: the
        rows of interrupted units set aside for this table instead.

        A batch is kept when its checksum matches, it decodes, and it continues the rows before it;
        a damaged batch is skipped and said so, the good ones after it are kept.
        """
        parts: list[np.ndarray] = []
        skipped: list[str] = []
        expected = 0
        for first, n, data, crc in (self._partial if partial else self._batches).get(name, []):
            if first < expected:
                skipped.append(f"rows {first}..{first + n - 1}: overlap row {expected - 1}; dropped")
                continue
            if first > expected:
                skipped.append(f"rows {expected}..{first - 1}: missing")
            expected = first + n
            if zlib.crc32(data) != crc:
                skipped.append(f"rows {first}..{first + n - 1}: checksum mismatch")
                continue
            try:
                parts.append(decode_rows(data, dtype, n))
            except (ValueError, KeyError, UnicodeDecodeError, struct.error) as exc:
                skipped.append(f"rows {first}..{first + n - 1}: undecodable ({exc})")
        return parts, skipped

    def table_rows(self, name: str) -> tuple[np.ndarray, list[str]]:
        """(rows of table ``name`` in seq order, what was skipped and why)."""
        dtype = compound_dtype(columns_from_json(self.spec(name)["columns"]))
        parts, skipped = self.good_batches(name, dtype)
        return (np.concatenate(parts) if parts else np.empty(0, dtype=dtype)), skipped

    def committed_rows(self, name: str, *, partial: bool = False) -> int:
        batches = (self._partial if partial else self._batches).get(name, [])
        return max((first + n for first, n, _, _ in batches), default=0)

    @property
    def partial_tables(self) -> list[str]:
        """Tables with rows of interrupted units set aside."""
        return sorted(self._partial)


def _open_for_reading(path: str) -> sqlite3.Connection:
    """A read connection; read-only first, read-write if SQLite needs to recover a killed writer's WAL."""
    from urllib.parse import quote

    last: sqlite3.Error | None = None
    for uri in (f"file:{quote(os.path.abspath(path))}?mode=ro", f"file:{quote(os.path.abspath(path))}?mode=rw"):
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as exc:
            last = exc
            with contextlib.suppress(Exception):
                conn.close()  # type: ignore[possibly-undefined]
    raise JournalError(f"{path}: cannot open the journal: {last}")


def _rows(conn: sqlite3.Connection, query: str) -> list[dict[str, Any]]:
    cur = conn.execute(query)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


__all__ = [
    "JOURNAL_SUFFIX",
    "DiskFullError",
    "JournalError",
    "JournalSnapshot",
    "JournalWriter",
    "SEQ_COLUMN",
    "columns_from_json",
    "columns_json",
    "decode_rows",
    "encode_rows",
    "journal_path",
    "remove_journal",
]
