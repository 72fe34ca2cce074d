"""``rramlab recover``: a readable run file from whatever survived.

* A run with a journal (killed, stopped by a full disk, or its HDF5 file not built yet): the HDF5 file
  is built from the journal — every committed row, the run state, the sessions — and the journal is
  removed. The run stays resumable.
* A damaged HDF5 file without a journal (e.g. a truncated copy, or a file of an older rramlab killed
  in a flush): everything readable — metadata, steps, every table chunk that reads — is copied into a
  new file (``<name>.recovered.h5`` unless told otherwise); the damaged file is kept. The damaged
  file is read in a child process with a time limit, because HDF5 can loop forever on some damage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from .dataset_build import build_run_file, import_run_file
from .dataset_schema import DatasetError
from .journal import journal_path, remove_journal

SALVAGE_TIMEOUT = 600.0          # s for reading a damaged file in the child process


@dataclasses.dataclass
class RecoverReport:
    """What ``recover`` wrote: the file, rows per table, what it could not read."""

    source: str
    out: str
    rows: dict[str, int]
    skipped: dict[str, list[str]]
    from_journal: bool

    def text(self) -> str:
        how = "from its journal" if self.from_journal else f"salvaged from the damaged {self.source}"
        rows = ", ".join(f"{t} {n} rows" for t, n in self.rows.items()) or "no table rows"
        lines = [f"{self.out} written {how}: {rows}."]
        for table, parts in self.skipped.items():
            lines += [f"  {table}: skipped {p}" for p in parts]
        return "\n".join(lines)


def recover(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> RecoverReport:
    """Build a readable run file from ``path``'s journal, or salvage a damaged HDF5 ``path`` into ``out``.

    The caller makes sure no process is writing the run (the CLI holds the run file's lock).
    """
    p = os.fspath(path)
    jp = journal_path(p)
    if os.path.exists(jp):
        target = os.fspath(out) if out is not None else p
        report = build_run_file(jp, target, replace=True)
        remove_journal(jp)
        return RecoverReport(p, target, report["rows"], report["skipped"], True)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no such run file (nor its journal)")
    target = os.fspath(out) if out is not None else str(Path(p).with_suffix("")) + ".recovered.h5"
    if os.path.abspath(target) == os.path.abspath(p):
        raise FileExistsError(f"{target}: the salvaged file must not replace the damaged one")
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists; choose another --out")
    proc = subprocess.run([sys.executable, "-m", __name__, p, target], capture_output=True, text=True,
                          timeout=SALVAGE_TIMEOUT, start_new_session=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DatasetError(f"{p}: nothing could be salvaged: {tail}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return RecoverReport(p, target, report["rows"], report["skipped"], False)


def _salvage(src: str, dst: str) -> dict[str, object]:
    """Copy what reads from the damaged run file ``src`` into a new run file ``dst`` (through a journal)."""
    tmp_journal = journal_path(dst)
    remove_journal(tmp_journal)
    try:
        skipped = import_run_file(src, tmp_journal, salvage=True)
        report = build_run_file(tmp_journal, dst, isolated=False)      # already a child process
    finally:
        remove_journal(tmp_journal)
    for table, parts in skipped.items():
        report["skipped"].setdefault(table, []).extend(parts)
    return report


if __name__ == "__main__":          # the child process of a salvage: python -m rramlab.analysis.dataset_recover SRC DST
    try:
        print(json.dumps(_salvage(sys.argv[1], sys.argv[2])))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
