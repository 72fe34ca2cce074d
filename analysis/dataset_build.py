"""Build the HDF5 run file from its journal, and import an HDF5 run file back into a journal.

:func:`build_run_file` writes ``<file>.partial``, fsyncs it, and renames it onto ``<file>`` (then
fsyncs the directory), so the HDF5 file is either the previous version or the new one, never half
of it. :func:`import_run_file` is the inverse, for resuming a run whose journal was already turned
into an HDF5 file (a run that ended "interrupted", "failed" or "aborted", or one that was recovered).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterable
from typing import Any

import h5py
import numpy as np

from .dataset_schema import (
    MAX_ATTR_BYTES,
    PARTIAL_GROUP,
    RUN_GROUP,
    SCHEMA_ATTR,
    SCHEMA_VERSION,
    SEQ_COLUMN,
    STATE_GROUP,
    STEPS_GROUP,
    STRING_DTYPE,
    TABLES_GROUP,
    ColumnInfo,
    DatasetError,
    DatasetWriteError,
    compound_dtype,
    normalize_columns,
)
from .journal import (
    DiskFullError,
    JournalSnapshot,
    JournalWriter,
    columns_from_json,
    columns_json,
    encode_rows,
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
WRITE_ROWS = 65536                      # rows per HDF5 write while building
PARTIAL_SESSION = "interrupted_in_session"

UNITS_DTYPE = np.dtype([("step", "<i8"), ("key", STRING_DTYPE), ("session", "<i8")])
LEDGER_DTYPE = np.dtype([("row", "<i8"), ("col", "<i8"), ("pulses", "<i8"), ("reserved", "<i8")])
IN_FLIGHT_DTYPE = np.dtype([("row", "<i8"), ("col", "<i8"), ("step", "<i8"), ("session", "<i8"), ("t", "<f8")])
_STATE_DESCRIPTIONS = {
    "units": "finished units of each step (a resumed run skips them)",
    "ledger": "pulses sent to each cell (as of the last commit) and the write-ahead reservation (an upper bound)",
    "in_flight": "cells energised after the last commit (a resumed run reads them before pulsing; step -1: none)",
}
SESSION_STOP_KEYS = ("stop_time", "stop_time_unix", "exit_status", "exit_message", "exit_traceback")


def default_chunk_rows(itemsize: int) -> int:
    """About 64 KiB per chunk, a power of two between 256 and 16384 rows."""
    rows = max(1, 65536 // max(1, itemsize))
    return min(16384, max(256, 1 << (rows.bit_length() - 1)))


def _attr_text(text: str) -> str:
    """``text`` cut to what an HDF5 attribute holds (the full text stays in /run/sessions)."""
    data = text.encode("utf-8")
    if len(data) <= MAX_ATTR_BYTES:
        return text
    return data[: MAX_ATTR_BYTES - 64].decode("utf-8", "ignore") + "\n… (cut; full text in /run/sessions)"


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):                # not every platform can open a directory
        fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _run_id_of(path: str) -> str | None:
    with contextlib.suppress(Exception), h5py.File(path, "r") as f:
        value = f[RUN_GROUP].attrs.get("run_id")
        return value.decode() if isinstance(value, bytes) else str(value)
    return None


def build_run_file(journal: str, out: str, *, replace: bool = False, isolated: bool = True) -> dict[str, Any]:
    """Write the HDF5 run file ``out`` from ``journal``; returns {"rows": {table: n}, "skipped": {...}}.

    An existing ``out`` is replaced only if ``replace`` or if it is this run's own earlier file (same
    run_id); anything else raises FileExistsError. On any failure the partial file is removed and
    ``out`` is left as it was (DatasetWriteError says why).

    ``isolated`` (the default) builds in a child process: when the disk fills during the build, libhdf5
    can crash the process that used it (a segmentation fault in ``H5D_close`` after the failed flush,
    measured), and that must not be the run's own process.
    """
    if not isolated:
        return _build_here(journal, out, replace=replace)
    cmd = [sys.executable, "-m", __name__, journal, out, *(["--replace"] if replace else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    # its own session: a Ctrl-C at the terminal is the run's to handle (it is held while the run closes), not
    # the build's; a build orphaned by a killed run finishes on its own into a file of its own
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, start_new_session=True)
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 3 and lines:                 # the child's own report of what failed
        kind, _, text = lines[-1].partition(": ")
        if kind == "FileExistsError":
            raise FileExistsError(text)
    else:
        how = f"crashed (signal {-proc.returncode})" if proc.returncode < 0 else f"failed (exit {proc.returncode})"
        text = f"the HDF5 library {how}: {lines[-1] if lines else 'no message'}"
    full = _disk_full(out)
    raise (DiskFullError if full else DatasetWriteError)(f"{full}; {text}" if full else text)


def _disk_full(out: str) -> str:
    """"disk full (N bytes free on DIR)" when the directory of ``out`` has (almost) no room left, else ""."""
    directory = os.path.dirname(os.path.abspath(out))
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return ""
    return f"disk full ({free} bytes free on {directory})" if free < 4 * 2**20 else ""


def _build_here(journal: str, out: str, *, replace: bool = False) -> dict[str, Any]:
    """:func:`build_run_file` in this process."""
    snap = JournalSnapshot(journal)
    run = json.loads(snap.meta["run"])
    if os.path.exists(out) and not replace and _run_id_of(out) != run.get("run_id"):
        raise FileExistsError(f"{out} exists and is not this run's file; refusing to overwrite it")
    tmp = f"{out}.partial-{os.getpid()}"
    report: dict[str, Any] = {"rows": {}, "skipped": {}}
    try:
        with h5py.File(tmp, "w") as f:
            _write_run(f, snap, run)
            _write_steps(f, snap)
            tables = f.create_group(TABLES_GROUP)
            for spec in snap.table_specs:
                n, skipped = _write_table(tables, snap, spec)
                report["rows"][spec["name"]] = n
                if skipped:
                    report["skipped"][spec["name"]] = skipped
            if snap.partial_tables:
                partial = f.create_group(PARTIAL_GROUP)
                partial.attrs["description"] = ("rows of units a run stopped inside (set aside; a resumed run did "
                                                "each such unit again from its start, in the tables)")
                for name in snap.partial_tables:
                    report.setdefault("partial", {})[name] = _write_partial(partial, snap, snap.spec(name))
            f.flush()
            os.fsync(f.id.get_vfd_handle())
        os.replace(tmp, out)
        _fsync_dir(out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return report


def _write_run(f: h5py.File, snap: JournalSnapshot, run: dict[str, Any]) -> None:
    f.attrs[SCHEMA_ATTR] = np.int64(SCHEMA_VERSION)
    g = f.create_group(RUN_GROUP)
    a = g.attrs
    a[SCHEMA_ATTR] = np.int64(SCHEMA_VERSION)
    for key, value in run.items():
        if key == "seed":
            if value is not None:
                a["seed"] = np.int64(value) if _INT64_MIN <= value <= _INT64_MAX else str(value)
        elif key in ("instruments", "extras"):
            a[key] = json.dumps(value, ensure_ascii=False)
        elif value is not None:
            a[key] = value
    for key in ("recipe", "station"):
        ds = g.create_dataset(key, data=snap.meta.get(key, ""), dtype=STRING_DTYPE)
        ds.attrs["units"] = ""
    sessions = [json.dumps(s, ensure_ascii=False) for s in snap.sessions]
    ds = g.create_dataset("sessions", data=np.array(sessions, dtype=object), dtype=STRING_DTYPE)
    ds.attrs["units"] = ""
    ds.attrs["description"] = "one JSON object per process that wrote the run (start, then each resume)"
    a["sessions"] = np.int64(len(snap.sessions))
    last = snap.sessions[-1] if snap.sessions else {}
    if last.get("exit_status"):
        for key in SESSION_STOP_KEYS:
            value = last.get(key)
            a[key] = _attr_text(str(value)) if isinstance(value, str) else value if value is not None else ""
    state = g.create_group(STATE_GROUP)
    state.attrs["values"] = json.dumps(snap.state, ensure_ascii=False)
    for name, dtype, rows in (("units", UNITS_DTYPE, snap.units), ("ledger", LEDGER_DTYPE, snap.ledger),
                              ("in_flight", IN_FLIGHT_DTYPE, snap.in_flight)):
        data = np.array([tuple(_nan_none(v) for v in r) for r in rows], dtype=dtype) if rows else \
            np.empty(0, dtype=dtype)
        ds = state.create_dataset(name, data=data, maxshape=(None,), chunks=True)
        ds.attrs["units"] = json.dumps({f: ("s" if f == "t" else "") for f in dtype.names})
        ds.attrs["description"] = _STATE_DESCRIPTIONS[name]


def _nan_none(v: Any) -> Any:
    return -1 if v is None else v


def _write_steps(f: h5py.File, snap: JournalSnapshot) -> None:
    steps = f.create_group(STEPS_GROUP)
    for s in snap.steps:
        g = steps.create_group(f"{int(s['idx']):03d}_{s['name']}")
        a = g.attrs
        a["index"] = np.int64(s["idx"])
        for key in ("name", "protocol", "parameters", "status", "message", "start_time", "tables"):
            a[key] = "" if s[key] is None else str(s[key])
        for key in ("start_time_unix", "stop_time_unix"):
            if s[key] is not None:
                a[key] = float(s[key])
        if s["stop_time"] is not None:
            a["stop_time"] = str(s["stop_time"])
        cells = np.frombuffer(s["cells"] or b"", dtype="<i8").reshape(-1, 2)
        ds = g.create_dataset("cells", data=cells.astype(np.int64), maxshape=(None, 2))
        ds.attrs["units"] = ""
        ds.attrs["columns"] = json.dumps(["row", "col"])


def _write_table(tables: h5py.Group, snap: JournalSnapshot, spec: dict[str, Any]) -> tuple[int, list[str]]:
    infos = columns_from_json(spec["columns"])
    dtype = compound_dtype(infos)
    good, skipped = snap.good_batches(spec["name"], dtype)
    total = sum(len(b) for b in good)
    ds = tables.create_dataset(spec["name"], shape=(total,), maxshape=(None,), dtype=dtype,
                               chunks=(default_chunk_rows(dtype.itemsize),))
    pos = 0
    for block in _blocks(good):
        ds[pos : pos + len(block)] = block
        pos += len(block)
    a = ds.attrs
    a["units"] = json.dumps({SEQ_COLUMN: "", **{c.name: c.unit for c in infos}}, ensure_ascii=False)
    a["descriptions"] = json.dumps({SEQ_COLUMN: "row sequence number, 0..n-1",
                                    **{c.name: c.description for c in infos}}, ensure_ascii=False)
    a["description"] = spec["description"] or ""
    a["step"] = spec["step"] or ""
    a["committed_rows"] = np.int64(total)
    if skipped:
        a["skipped"] = json.dumps(skipped)
    return total, skipped


def partial_columns(infos: list[ColumnInfo]) -> list[ColumnInfo]:
    """Columns of ``/partial/<table>``: the table's, then the session that set the rows aside."""
    spec = {c.name: (str if c.kind == "s" else c.dtype, c.unit, c.description) for c in infos}
    return normalize_columns({**spec, PARTIAL_SESSION: ("i8", "", "session whose stop interrupted the unit")})


def _write_partial(group: h5py.Group, snap: JournalSnapshot, spec: dict[str, Any]) -> int:
    infos = columns_from_json(spec["columns"])
    good, skipped = snap.good_batches(spec["name"], compound_dtype(infos), partial=True)
    pinfos = partial_columns(infos)
    rows = np.concatenate(good) if good else np.empty(0, dtype=compound_dtype(infos))
    data = np.zeros(len(rows), dtype=compound_dtype(pinfos))
    for name in rows.dtype.names:
        data[name] = rows[name]
    sessions = snap.partial_sessions.get(spec["name"], [])
    data[PARTIAL_SESSION] = sessions[: len(rows)] if not skipped else 0
    ds = group.create_dataset(spec["name"], data=data, maxshape=(None,), chunks=True)
    ds.attrs["units"] = json.dumps({SEQ_COLUMN: "", **{c.name: c.unit for c in pinfos}}, ensure_ascii=False)
    ds.attrs["descriptions"] = json.dumps({SEQ_COLUMN: "row sequence number among the set-aside rows",
                                           **{c.name: c.description for c in pinfos}}, ensure_ascii=False)
    ds.attrs["description"] = f"rows of table {spec['name']!r} from units a stop interrupted"
    ds.attrs["step"] = spec["step"] or ""
    ds.attrs["committed_rows"] = np.int64(len(data))
    if skipped:
        ds.attrs["skipped"] = json.dumps(skipped)
    return len(data)


def _blocks(batches: list[np.ndarray]) -> Iterable[np.ndarray]:
    """Concatenate consecutive batches into blocks of about WRITE_ROWS rows."""
    acc: list[np.ndarray] = []
    n = 0
    for b in batches:
        acc.append(b)
        n += len(b)
        if n >= WRITE_ROWS:
            yield np.concatenate(acc)
            acc, n = [], 0
    if acc:
        yield np.concatenate(acc)


# ------------------------------------------------------------------------------------------ import
def import_run_file(path: str, journal: str, *, salvage: bool = False) -> dict[str, list[str]]:
    """Create ``journal`` from the HDF5 run file ``path``; returns what could not be read, by table.

    For a resume the file must be of schema 2 (it holds the run state). ``salvage`` takes any readable
    run file, schema 1 included, and skips what does not read.
    """
    import warnings

    from .dataset_reader import SkippedRowsWarning, open_run

    run = open_run(path)
    if run.schema_version < 2 and not salvage:
        raise DatasetError(f"{path}: written with rramlab schema {run.schema_version}, which holds no run state "
                           "(finished cells, pulse ledger): it cannot be resumed")
    meta = run.metadata
    run_attrs = {k: meta.get(k) for k in run.run_attr_keys}
    sessions = run.sessions or [{"id": 1, "kind": "start", "start_time": meta.get("start_time"),
                                 "start_time_unix": meta.get("start_time_unix"), "host": meta.get("host"),
                                 "package_version": meta.get("package_version"),
                                 "instruments": json.dumps(meta.get("instruments") or {}),
                                 **{k: meta.get(k) for k in SESSION_STOP_KEYS if meta.get(k) not in (None, "")}}]
    skipped: dict[str, list[str]] = dict(run.skipped)
    def fill(c: sqlite3.Connection) -> None:
        """Everything of the run, inserted before the journal gets its name (a kill leaves no half import)."""
        for s in sessions:
            cols = [k for k in s if k != "id"]
            c.execute(f"INSERT INTO sessions (id, {', '.join(cols)}) VALUES (?{', ?' * len(cols)})",
                      (s["id"], *(s[k] for k in cols)))
        for s in run.steps:
            c.execute("INSERT INTO steps (idx, name, protocol, parameters, cells, status, message, start_time, "
                      "start_time_unix, stop_time, stop_time_unix, tables) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                      (s.index, s.name, s.protocol, json.dumps(s.parameters), s.cells.astype("<i8").tobytes(),
                       s.status if s.status != "incomplete" else "running", s.message, s.start_time,
                       s.start_time_unix, s.stop_time, s.stop_time_unix, json.dumps(s.tables)))
        for k, name in enumerate(run.tables):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SkippedRowsWarning)
                    rows, infos, attrs = run.table_array(name)
            except (OSError, KeyError, ValueError, DatasetError) as exc:
                if not salvage:
                    raise
                skipped.setdefault(name, []).append(f"whole table unreadable ({exc})")
                continue
            skipped.update({name: attrs["skipped"]} if attrs.get("skipped") else {})
            c.execute("INSERT INTO tables (name, ord, columns, description, step) VALUES (?, ?, ?, ?, ?)",
                      (name, k, columns_json(infos), attrs.get("description", ""), attrs.get("step", "")))
            _insert_rows(c, name, rows, part=0, sessions=None)
            partial = run.partial_array(name)
            if partial is not None:
                block = partial[[f for f in partial.dtype.names if f != PARTIAL_SESSION]]
                _insert_rows(c, name, np.asarray(block).astype(compound_dtype(infos)), part=1,
                             sessions=partial[PARTIAL_SESSION])
        st = run.state
        c.executemany("INSERT INTO units (step, key, session) VALUES (?, ?, ?)", st.units_rows)
        c.executemany("INSERT INTO ledger (row, col, pulses, reserved) VALUES (?, ?, ?, ?)", st.ledger_rows)
        c.executemany("INSERT INTO in_flight (row, col, step, session, t) VALUES (?, ?, ?, ?, ?)", st.in_flight_rows)
        values = [(k, json.dumps(v)) for k, v in st.values.items()]
        c.executemany("INSERT INTO state (key, value) VALUES (?, ?)", values)

    JournalWriter.create(journal, str(meta.get("durability", "flush")), {
        "schema": str(SCHEMA_VERSION), "run": json.dumps(run_attrs, ensure_ascii=False, default=str),
        "recipe": meta.get("recipe", ""), "station": meta.get("station", ""),
        "run_file": os.path.basename(path)}, fill=fill).close()
    return skipped


def _insert_rows(c: sqlite3.Connection, name: str, rows: np.ndarray, *, part: int,
                 sessions: np.ndarray | None) -> None:
    """``rows`` as batches of ``name``, renumbered from 0 (past skipped parts); one batch per session run."""
    start = 0
    while start < len(rows):
        stop = min(len(rows), start + WRITE_ROWS)
        if sessions is not None:                      # a batch holds one session's rows
            same = np.flatnonzero(sessions[start:stop] != sessions[start])
            stop = start + int(same[0]) if same.size else stop
        block = rows[start:stop].copy()
        block[SEQ_COLUMN] = np.arange(start, stop)
        data = encode_rows(block)
        session = int(sessions[start]) if sessions is not None else 0
        c.execute("INSERT INTO batches (tbl, first_seq, n, data, crc, session, part) VALUES (?,?,?,?,?,?,?)",
                  (name, start, len(block), data, zlib.crc32(data), session, part))
        start = stop


__all__ = ["build_run_file", "default_chunk_rows", "import_run_file"]


if __name__ == "__main__":           # the child of an isolated build: JOURNAL OUT [--replace]
    try:
        print(json.dumps(_build_here(sys.argv[1], sys.argv[2], replace="--replace" in sys.argv[3:])))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        text = str(exc).replace("\n", " ")
        print(f"{'FileExistsError' if isinstance(exc, FileExistsError) else 'Error'}: {text}", file=sys.stderr)
        sys.exit(3)
