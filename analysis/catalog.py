"""A catalogue of the run files under a directory (``rramlab catalog DIR``, ``rramlab ls``): SQLite, one row per run.

The catalogue lives at ``DIR/rramlab-catalog.sqlite``. A row holds the run's path (relative to DIR, POSIX
separators), size and modification time, identity (run id, recipe, station), times (ISO 8601 UTC and unix s),
exit status, step protocols, the sample metadata (operator, wafer, lot, die, die_col, die_row, campaign,
temperature_c, and the whole sample as JSON) and headline figures of :func:`~.summary.summarize` (NULL where
the run has no such figure). Units: voltages in V, conductance shifts in µS (columns ending ``_uS``), sizes in
bytes, times in s, fractions as fractions.

Runs are found recursively: every ``*.h5`` and every ``*.h5.journal`` (a live, killed or not yet built run; it
is read as ``rramlab info`` reads it, from its journal). A file that cannot be read is still listed, with exit
status ``unreadable`` and the reason in ``error``.

Update is incremental: a run whose file signature (size and mtime of the HDF5 file, its journal and the
journal's ``-wal``) is unchanged is not reopened; rows of runs no longer on disk are removed. Files are opened
one at a time and closed before the next (memory does not grow with the number of runs); each run's row is
committed in its own transaction, so a catalogue interrupted mid-update holds every row committed before and
the next update continues. ``rebuild`` writes a new catalogue to a temporary file renamed into place; a
catalogue of another schema version, or one that SQLite cannot read, is rebuilt the same way (it is derived
data: the run files are the truth).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .dataset_reader import RunData, SkippedRowsWarning, open_run
from .journal import JOURNAL_SUFFIX, journal_path

CATALOG_NAME = "rramlab-catalog.sqlite"
CATALOG_SCHEMA_VERSION = 1
UNREADABLE = "unreadable"

#: the catalogue's columns (name, SQLite type), in table order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "TEXT PRIMARY KEY"), ("source", "TEXT"), ("size_bytes", "INTEGER"), ("mtime_unix", "REAL"),
    ("signature", "TEXT"), ("catalogued_unix", "REAL"), ("error", "TEXT"),
    ("run_id", "TEXT"), ("recipe", "TEXT"), ("station", "TEXT"),
    ("start_time", "TEXT"), ("start_time_unix", "REAL"), ("stop_time", "TEXT"), ("stop_time_unix", "REAL"),
    ("exit_status", "TEXT"), ("exit_message", "TEXT"), ("protocols", "TEXT"), ("n_steps", "INTEGER"),
    ("operator", "TEXT"), ("wafer", "TEXT"), ("lot", "TEXT"), ("die", "TEXT"), ("die_col", "INTEGER"),
    ("die_row", "INTEGER"), ("campaign", "TEXT"), ("temperature_c", "REAL"), ("sample_json", "TEXT"),
    ("forming_n_cells", "INTEGER"), ("forming_n_formed", "INTEGER"), ("forming_yield", "REAL"),
    ("v_form_mean", "REAL"), ("v_form_std", "REAL"),
    ("pv_step", "TEXT"), ("pv_acceptance", "REAL"), ("pv_sigma_slope", "REAL"), ("pv_n_states", "INTEGER"),
    ("program_verify_json", "TEXT"),
    ("retention_shift_1h_uS", "REAL"), ("retention_shift_10y_uS", "REAL"),
    ("mvm_acceptance", "REAL"), ("mvm_rmse_10y", "REAL"), ("mvm_rmse_10y_source", "TEXT"),
    ("endurance_failed_fraction", "REAL"), ("read_disturb_rel_drift_median", "REAL"), ("skipped_json", "TEXT"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)

_DDL = (f"CREATE TABLE IF NOT EXISTS runs ({', '.join(f'{n} {t}' for n, t in COLUMNS)});\n"
        "CREATE TABLE IF NOT EXISTS catalog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
        "CREATE INDEX IF NOT EXISTS runs_by_wafer ON runs (wafer, die_col, die_row);\n"
        "CREATE INDEX IF NOT EXISTS runs_by_start ON runs (start_time_unix);\n")


class CatalogError(OSError):
    """The catalogue cannot be written or read (the message says where and why)."""


@dataclasses.dataclass
class CatalogUpdate:
    """What an update did: runs added, re-read (changed), removed (gone from disk), unchanged; unreadable ones
    (path, reason); wall time (s); whether the catalogue was rebuilt from scratch and why."""

    path: Path
    added: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    unchanged: int = 0
    unreadable: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    rebuilt: str = ""

    @property
    def opened(self) -> int:
        """Run files opened (added + re-read)."""
        return len(self.added) + len(self.updated)

    def text(self) -> str:
        head = f"{self.path}: {self.opened + self.unchanged} run(s) catalogued"
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.removed)} removed",
                 f"{self.unchanged} unchanged"]
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable")
        rebuilt = f"; rebuilt ({self.rebuilt})" if self.rebuilt else ""
        return f"{head} ({', '.join(parts)}) in {self.seconds:.2f} s{rebuilt}"


# -- finding runs ----------------------------------------------------------------------------------------------

def find_runs(directory: str | os.PathLike[str]) -> list[Path]:
    """Every run under ``directory`` (recursive), sorted: each ``*.h5`` file, and the run file of each
    ``*.h5.journal`` (a run that exists only as its journal is named by its would-be HDF5 path)."""
    root = Path(directory)
    runs = {p for p in root.rglob("*.h5") if p.is_file()}
    runs.update(Path(str(j).removesuffix(JOURNAL_SUFFIX)) for j in root.rglob(f"*.h5{JOURNAL_SUFFIX}") if j.is_file())
    return sorted(runs)


def file_signature(run: Path) -> tuple[str, int, float]:
    """(signature text, size in bytes, latest mtime in unix s) of a run: its HDF5 file, journal and journal
    ``-wal`` (a live run commits into the -wal), each as size:mtime_ns or ``-`` when absent."""
    parts, size, mtime = [], 0, 0.0
    journal = journal_path(run)
    for k, p in enumerate((os.fspath(run), journal, journal + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        if k == 0 or (k == 1 and size == 0):
            size = st.st_size
        mtime = max(mtime, st.st_mtime)
    return "|".join(parts), size, mtime


# -- one run's row ---------------------------------------------------------------------------------------------

def _int_or_none(value: Any) -> int | None:
    """An integer from an int, an integral float or text such as "-2" (``--meta`` values are text); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _text_or_none(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def sample_fields(sample: Mapping[str, Any]) -> dict[str, Any]:
    """The sample columns from a run's ``extras["sample"]``: text keys stripped (None when absent or empty),
    ``die_col``/``die_row`` as int and ``temperature_c`` (°C) as float when they parse, else None."""
    return {"operator": _text_or_none(sample.get("operator")), "wafer": _text_or_none(sample.get("wafer")),
            "lot": _text_or_none(sample.get("lot")), "die": _text_or_none(sample.get("die")),
            "die_col": _int_or_none(sample.get("die_col")), "die_row": _int_or_none(sample.get("die_row")),
            "campaign": _text_or_none(sample.get("campaign")),
            "temperature_c": _float_or_none(sample.get("temperature_c")),
            "sample_json": json.dumps(dict(sample), sort_keys=True, default=str)}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(float(value)) else None


def headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The catalogue's figures from a :func:`~.summary.summarize` result (None where absent).

    Program-verify: the step with the tightest acceptance (its ``sigma_slope``, ``n_states``; every step's
    acceptance, sigma_slope and n_states in ``program_verify_json``); MVM: the tightest acceptance's RMSE at 10 y
    and whether it was measured or extrapolated; read disturb: the median relative drift of the section whose
    median drifts most (by magnitude).
    """
    out: dict[str, Any] = {}
    f = summary.get("forming") or {}
    out.update({"forming_n_cells": f.get("n_cells"), "forming_n_formed": f.get("n_formed"),
                "forming_yield": _num(f.get("yield")), "v_form_mean": _num(f.get("v_form_mean")),
                "v_form_std": _num(f.get("v_form_std"))})
    pv = {k: v for k, v in (summary.get("program_verify") or {}).items() if isinstance(v, Mapping)}
    steps = [(k, v) for k, v in pv.items() if _num(v.get("acceptance")) is not None]
    if steps:
        key, best = min(steps, key=lambda kv: float(kv[1]["acceptance"]))
        out.update({"pv_step": str(key), "pv_acceptance": _num(best.get("acceptance")),
                    "pv_sigma_slope": _num(best.get("sigma_slope")), "pv_n_states": best.get("n_states")})
    out["program_verify_json"] = json.dumps({k: {"acceptance": v.get("acceptance"), "sigma_slope": v.get("sigma_slope"),
                                                 "n_states": v.get("n_states")} for k, v in pv.items()}) if pv else None
    shift = (summary.get("retention") or {}).get("mean_shift_uS") or {}
    out.update({"retention_shift_1h_uS": _num(shift.get("1h")), "retention_shift_10y_uS": _num(shift.get("10y"))})
    mvm = [(float(v["acceptance"]), v) for v in (summary.get("mvm") or {}).values()
           if isinstance(v, Mapping) and _num(v.get("acceptance")) is not None]
    if mvm:
        acc, m = min(mvm, key=lambda av: av[0])
        out.update({"mvm_acceptance": acc, "mvm_rmse_10y": _num((m.get("rmse") or {}).get("10y")),
                    "mvm_rmse_10y_source": _text_or_none((m.get("source") or {}).get("10y"))})
    out["endurance_failed_fraction"] = _num((summary.get("endurance") or {}).get("failed_fraction"))
    drifts = [_num(v.get("rel_drift_median")) for v in (summary.get("read_disturb") or {}).values()
              if isinstance(v, Mapping)]
    drifts = [d for d in drifts if d is not None]
    out["read_disturb_rel_drift_median"] = max(drifts, key=abs) if drifts else None
    return out


def run_record(run: RunData, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The catalogue columns of an opened run and its summary (not the file columns: path, size, …)."""
    from .report_html import run_info

    info = run_info(run)
    meta = run.metadata
    protocols = list(dict.fromkeys(s.protocol for s in run.steps if s.protocol))
    return {"run_id": info.run_id or None, "recipe": info.recipe or None, "station": info.station or None,
            "start_time": _text_or_none(meta.get("start_time")), "start_time_unix": _num(meta.get("start_time_unix")),
            "stop_time": _text_or_none(meta.get("stop_time")), "stop_time_unix": _num(meta.get("stop_time_unix")),
            "exit_status": run.exit_status, "exit_message": run.exit_message or None,
            "protocols": ",".join(protocols), "n_steps": len(run.steps), **sample_fields(info.sample),
            **headline(summary),
            "skipped_json": json.dumps(run.skipped, sort_keys=True) if run.skipped else None, "error": None}


Opener = Callable[..., RunData]


def read_record(path: Path, opener: Opener | None = None) -> dict[str, Any]:
    """Open one run (HDF5 file or journal), summarise it and return its catalogue columns; the run is released
    before returning. A run that cannot be read gives exit status ``unreadable`` and the reason in ``error``."""
    from .summary import summarize

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedRowsWarning)
            run = (opener or open_run)(path, locking=False)
            try:
                summary = summarize(run)       # reads only the summary tables, each once, lazily
                return run_record(run, summary)
            finally:
                del run
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is listed, not fatal to the catalogue
        return {"exit_status": UNREADABLE, "error": f"{type(exc).__name__}: {exc}"}


# -- the SQLite catalogue --------------------------------------------------------------------------------------

def catalog_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / CATALOG_NAME


def _connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(os.fspath(path), timeout=30.0, isolation_level=None)   # explicit BEGIN/COMMIT
    conn.row_factory = sqlite3.Row
    return conn


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _init_schema(conn: sqlite3.Connection) -> None:
    from .dataset_writer import installed_version

    with _transaction(conn):
        for statement in filter(None, (s.strip() for s in _DDL.split(";\n"))):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {CATALOG_SCHEMA_VERSION}")
        conn.executemany("INSERT OR REPLACE INTO catalog_meta (key, value) VALUES (?, ?)",
                         [("schema_version", str(CATALOG_SCHEMA_VERSION)), ("created_by", installed_version()),
                          ("created_unix", repr(time.time()))])


def _schema_problem(conn: sqlite3.Connection) -> str:
    """Why an existing catalogue cannot be updated in place ("" when it can)."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"unreadable catalogue: {exc}"
    if version != CATALOG_SCHEMA_VERSION:
        return f"catalogue schema {version}, this rramlab writes {CATALOG_SCHEMA_VERSION}"
    if tuple(columns) != COLUMN_NAMES:
        return "catalogue columns differ from this rramlab's"
    return ""


def _upsert(conn: sqlite3.Connection, row: Mapping[str, Any]) -> None:
    values = [row.get(name) for name in COLUMN_NAMES]
    conn.execute(f"INSERT OR REPLACE INTO runs ({', '.join(COLUMN_NAMES)}) VALUES "
                 f"({', '.join('?' * len(COLUMN_NAMES))})", values)


def sync(conn: sqlite3.Connection, directory: str | os.PathLike[str], report: CatalogUpdate, *,
         progress: Callable[[int, int, str], None] | None = None, opener: Opener | None = None) -> None:
    """Bring the ``runs`` table of ``conn`` up to date with the runs under ``directory`` (one transaction per
    run opened; one for the removals)."""
    root = Path(directory)
    known = {r["path"]: r["signature"] for r in conn.execute("SELECT path, signature FROM runs")}
    runs = find_runs(root)
    seen: set[str] = set()
    for k, run in enumerate(runs):
        rel = run.relative_to(root).as_posix()
        seen.add(rel)
        signature, size, mtime = file_signature(run)
        if known.get(rel) == signature:
            report.unchanged += 1
            continue
        if progress is not None:
            progress(k, len(runs), rel)
        record = read_record(run, opener)
        source = "journal" if os.path.exists(journal_path(run)) else "hdf5"
        row = {**record, "path": rel, "source": source, "size_bytes": size, "mtime_unix": mtime,
               "signature": signature, "catalogued_unix": time.time()}
        with _transaction(conn):
            _upsert(conn, row)
        (report.updated if rel in known else report.added).append(rel)
        if record["exit_status"] == UNREADABLE:
            report.unreadable.append((rel, str(record.get("error"))))
    gone = sorted(set(known) - seen)
    if gone:
        with _transaction(conn):
            conn.executemany("DELETE FROM runs WHERE path = ?", [(p,) for p in gone])
        report.removed.extend(gone)


def update_catalog(directory: str | os.PathLike[str], *, rebuild: bool = False,
                   progress: Callable[[int, int, str], None] | None = None,
                   opener: Opener | None = None) -> CatalogUpdate:
    """Create or update ``DIR/rramlab-catalog.sqlite`` (see the module docstring); ``rebuild``: from scratch,
    into a temporary file renamed into place. Raises :class:`CatalogError` when it cannot be written."""
    start = time.perf_counter()
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    target = catalog_path(root)
    report = CatalogUpdate(target)
    if not rebuild and target.exists():
        conn = _connect(target)
        try:
            problem = _schema_problem(conn)
            if not problem:
                sync(conn, root, report, progress=progress, opener=opener)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{target}: cannot update the catalogue: {exc} (`rramlab catalog {root} --rebuild` "
                               "builds a new one)") from None
        finally:
            conn.close()
        if not problem:
            report.seconds = time.perf_counter() - start
            return report
        report.rebuilt = problem
    elif rebuild:
        report.rebuilt = "--rebuild"
    _build_new(root, target, report, progress, opener)
    report.seconds = time.perf_counter() - start
    return report


def _build_new(root: Path, target: Path, report: CatalogUpdate, progress: Callable[[int, int, str], None] | None,
               opener: Opener | None) -> None:
    """A whole new catalogue in a temporary file in ``root``, renamed onto ``target`` when complete (the old
    catalogue stays usable meanwhile; an interrupted build leaves it untouched)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{CATALOG_NAME}.", suffix=".tmp", dir=root)
    except OSError as exc:
        raise CatalogError(f"{target}: cannot write the catalogue: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        conn = _connect(tmp)
        try:
            _init_schema(conn)
            sync(conn, root, report, progress=progress, opener=opener)
        finally:
            conn.close()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def memory_catalog(directory: str | os.PathLike[str], opener: Opener | None = None
                   ) -> tuple[sqlite3.Connection, CatalogUpdate]:
    """A catalogue of ``directory`` in memory (for a directory that cannot be written): connection and report."""
    conn = _connect(":memory:")
    _init_schema(conn)
    report = CatalogUpdate(Path(directory) / ":memory:")
    start = time.perf_counter()
    sync(conn, directory, report, opener=opener)
    report.seconds = time.perf_counter() - start
    return conn, report


# -- queries ---------------------------------------------------------------------------------------------------

def parse_when(text: str, *, end: bool = False) -> float:
    """Unix time (s) of an ISO 8601 date or date-time (naive = UTC; a trailing Z allowed). With ``end``, a bare
    date means the end of that day (its next midnight), so ``--until 2026-11-30`` includes the 30th."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or date-time: {text!r} (e.g. 2026-11-30 or "
                         "2026-11-30T14:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if end and len(raw) <= 10:
        when += timedelta(days=1)
    return when.timestamp()


@dataclasses.dataclass(frozen=True)
class Filters:
    """What ``rramlab ls`` selects (None = any). ``die``: the die text, or "col,row" matching die_col/die_row;
    ``protocol``: one of the run's step protocols; ``since``/``until``: ISO dates on the start time (UTC)."""

    wafer: str | None = None
    die: str | None = None
    lot: str | None = None
    operator: str | None = None
    protocol: str | None = None
    status: str | None = None
    since: str | None = None
    until: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """(SQL WHERE clause with ``?`` placeholders, parameters): user input is only ever a parameter."""
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("wafer", "lot", "operator"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value.strip())
        if self.status is not None:
            clauses.append("exit_status = ?")
            params.append(self.status.strip())
        if self.die is not None:
            parts = self.die.replace(" ", "").split(",")
            col, row = (_int_or_none(parts[0]), _int_or_none(parts[1])) if len(parts) == 2 else (None, None)
            if col is not None and row is not None:
                clauses.append("(die = ? OR (die_col = ? AND die_row = ?))")
                params.extend([self.die.strip(), col, row])
            else:
                clauses.append("die = ?")
                params.append(self.die.strip())
        if self.protocol is not None:
            clauses.append("instr(',' || protocols || ',', ',' || ? || ',') > 0")
            params.append(self.protocol.strip())
        if self.since is not None:
            clauses.append("start_time_unix >= ?")
            params.append(parse_when(self.since))
        if self.until is not None:
            clauses.append("start_time_unix < ?")
            params.append(parse_when(self.until, end=True))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def query(conn: sqlite3.Connection, filters: Filters = Filters()) -> list[dict[str, Any]]:
    """Rows of the catalogue matching ``filters``, ordered by wafer, die (col, row), start time and path."""
    where, params = filters.where()
    rows = conn.execute(f"SELECT * FROM runs{where} ORDER BY wafer IS NULL, wafer, die_col IS NULL, die_col, "
                        "die_row, start_time_unix, path", params)
    return [dict(r) for r in rows]


def query_catalog(directory: str | os.PathLike[str], filters: Filters = Filters()) -> list[dict[str, Any]]:
    """Rows of ``DIR/rramlab-catalog.sqlite`` matching ``filters`` (the catalogue must exist)."""
    target = catalog_path(directory)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no catalogue (`rramlab catalog {directory}` builds it)")
    conn = _connect(target)
    try:
        return query(conn, filters)
    finally:
        conn.close()


def row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A catalogue row for JSON output: ``sample``, ``program_verify`` and ``skipped`` parsed from their JSON
    columns."""
    out = {k: v for k, v in row.items() if not k.endswith("_json")}
    for key, name in (("sample_json", "sample"), ("program_verify_json", "program_verify"),
                      ("skipped_json", "skipped")):
        out[name] = json.loads(row[key]) if row.get(key) else None
    return out


__all__ = ["CATALOG_NAME", "CATALOG_SCHEMA_VERSION", "COLUMNS", "COLUMN_NAMES", "UNREADABLE", "CatalogError",
           "CatalogUpdate", "Filters", "catalog_path", "file_signature", "find_runs", "headline", "memory_catalog",
           "parse_when", "query", "query_catalog", "read_record", "row_json", "run_record", "sample_fields", "sync",
           "update_catalog"]
