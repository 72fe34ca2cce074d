"""``rramlab catalog`` / ``rramlab ls`` and wafer maps: the SQLite catalogue equals the run files under a directory
(paths, statuses, sample fields, headline figures recomputed from the files' tables), updates incrementally
(unchanged files are not reopened, deleted ones removed), opens one run at a time (memory does not grow with the
number of runs), survives an interrupted update, lists journal-only and damaged runs; ``ls`` filters select
exactly the expected runs and user input never reaches the SQL text; wafer maps put each die's square at its grid
position in its value's colour and mark bad dies; ``rramlab report DIR`` adds the maps to the HTML page."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import Normalize

from rramlab.analysis import catalog as cat
from rramlab.analysis import dataset_writer
from rramlab.analysis.dataset import RunMetadata, RunWriter, open_run
from rramlab.analysis.wafer_map import DieValue, die_is_bad, plot_wafer_map, wafer_map_figures
from rramlab.protocols.cli import CliSignals, main

RECIPE = '[recipe]\nname = "die probe"\n'
STATION = '[station]\nname = "prober bench"\n[array]\ntopology = "1T1R"\nrows = 4\ncols = 4\n'
FORMING = {"row": ("i4", ""), "col": ("i4", ""), "v_form": ("f8", "V"), "formed": (bool, "bool"),
           "i_form": ("f8", "A"), "attempts": ("i4", ""), "g_after_reset": ("f8", "S"), "t": ("f8", "s")}


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def write_die(path: Path, *, wafer: str | None = "W1", col: int | None = 0, row: int | None = 0, n: int = 16,
              unformed: int = 0, v_mean: float = 3.0, status: str = "completed", start: str | None = None,
              extra: dict[str, Any] | None = None, seed: int = 0, monkeypatch: pytest.MonkeyPatch | None = None,
              protocols: tuple[str, ...] = ("forming",)) -> None:
    """A run of one die: a forming table of ``n`` cells (``unformed`` of them not formed, V_form ~ v_mean), an
    optional program-verify step; sample metadata as ``--meta`` writes it (text values); ``start``: ISO UTC time
    of its start (the writer's clock patched)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sample: dict[str, Any] = {"operator": "jdoe", "lot": "L7"}
    if wafer is not None:
        sample["wafer"] = wafer
    if col is not None and row is not None:
        sample.update({"die": f"{col},{row}", "die_col": str(col), "die_row": str(row), "campaign": "c1"})
    sample.update(extra or {})
    if start is not None:
        assert monkeypatch is not None
        when = _unix(start)
        monkeypatch.setattr(dataset_writer, "_now", lambda: (datetime.fromtimestamp(when, timezone.utc).isoformat(),
                                                              when))
    rng = np.random.default_rng(seed)
    w = RunWriter(path, metadata=RunMetadata(recipe=RECIPE, station=STATION, seed=1, extras={"sample": sample}))
    try:
        cells = [(k // 4, k % 4) for k in range(n)]
        if "forming" in protocols:
            with w.step("forming", "forming", {}, cells) as st:
                t = st.table("forming", FORMING)
                for k, (r, c) in enumerate(cells):
                    formed = k >= unformed
                    t.append({"row": r, "col": c, "v_form": v_mean + 0.05 * rng.standard_normal() if formed else np.nan,
                              "formed": formed, "i_form": 2e-4, "attempts": 1, "g_after_reset": 12e-6, "t": float(k)})
        if "program_verify" in protocols:
            with w.step("pv", "program_verify", {}, cells) as st:
                t = st.table("program_verify_result", {
                    "row": ("i4", ""), "col": ("i4", ""), "target": ("f8", "S"), "acceptance": ("f8", ""),
                    "g_final": ("f8", "S"), "iterations": ("i4", ""), "converged": (bool, "bool"),
                    "t_done": ("f8", "s")})
                for k, (r, c) in enumerate(cells):
                    target = (10e-6, 40e-6)[k % 2]
                    t.append({"row": r, "col": c, "target": target, "acceptance": 0.02, "iterations": 5,
                              "g_final": target * (1 + 0.01 * rng.standard_normal()), "converged": True,
                              "t_done": float(k)})
    finally:
        w.close(status, "probe lost contact" if status == "failed" else "")
    if monkeypatch is not None:
        monkeypatch.undo()


def write_killed(path: Path, wafer: str = "W1", col: int = 5, row: int = 5) -> None:
    """A run killed (os._exit) after one committed forming unit: only its journal exists."""
    code = f"""
import os
from rramlab.analysis.dataset import RunMetadata, RunWriter
w = RunWriter({str(path)!r}, metadata=RunMetadata(recipe={RECIPE!r}, station={STATION!r}, seed=1, extras={{"sample":
    {{"wafer": {wafer!r}, "die_col": "{col}", "die_row": "{row}"}}}}))
st = w.step("forming", "forming", {{}}, [(0, 0), (0, 1)])
t = st.table("forming", {{"row": ("i4", ""), "col": ("i4", ""), "v_form": ("f8", "V"), "formed": (bool, "bool"),
                         "i_form": ("f8", "A"), "attempts": ("i4", ""), "g_after_reset": ("f8", "S"),
                         "t": ("f8", "s")}})
t.append({{"row": 0, "col": 0, "v_form": 3.1, "formed": True, "i_form": 2e-4, "attempts": 1, "g_after_reset": 1e-5,
          "t": 0.0}})
w.durability_point()
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert not path.exists() and Path(f"{path}.journal").exists()


def forming_from_file(path: Path) -> tuple[float, float]:
    """(yield, mean V_form of the formed cells) recomputed with numpy from the HDF5 table."""
    with h5py.File(path, "r") as f:
        rows = f["tables/forming"][()]
    formed = rows["formed"].astype(bool)
    return float(formed.mean()), float(np.mean(rows["v_form"][formed]))


def ls(*args: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """``rramlab ls ARGS --json`` in-process: the rows printed (stdout holds nothing else; stderr is kept)."""
    capsys.readouterr()
    assert main(["ls", *args, "--json"], signals=CliSignals()) == 0
    captured = capsys.readouterr()
    sys.stderr.write(captured.err)
    return [json.loads(line) for line in captured.out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A campaign directory: wafer W1 (4 dies, one failed, one with low yield), W2 (2 dies), a run without sample
    die, a killed run (journal only), a damaged file and a file of another program, in nested folders."""
    root = tmp_path_factory.mktemp("campaign")
    mp = pytest.MonkeyPatch()
    write_die(root / "W1/die_+00_+00.h5", col=0, row=0, v_mean=3.0, start="2026-05-10T08:00:00", monkeypatch=mp,
              protocols=("forming", "program_verify"))
    write_die(root / "W1/die_+01_+00.h5", col=1, row=0, v_mean=3.1, start="2026-05-31T23:30:00", monkeypatch=mp)
    write_die(root / "W1/die_+01_-01.h5", col=1, row=-1, v_mean=3.2, status="failed", start="2026-06-02T09:00:00",
              monkeypatch=mp)
    write_die(root / "W1/die_+00_-01.h5", col=0, row=-1, unformed=10, v_mean=3.3, start="2026-06-03T09:00:00",
              monkeypatch=mp, extra={"temperature_c": "85"})
    write_die(root / "W2/die_+00_+00.h5", wafer="W2", col=0, row=0, v_mean=2.9, start="2026-06-05T10:00:00",
              monkeypatch=mp)
    write_die(root / "W2/deep/die_+02_+01.h5", wafer="W2", col=2, row=1, v_mean=2.8, start="2026-06-06T10:00:00",
              monkeypatch=mp, protocols=("program_verify",))
    write_die(root / "loose.h5", wafer=None, col=None, row=None, start="2026-04-01T00:00:00", monkeypatch=mp)
    write_killed(root / "W1/die_+05_+05.h5")
    (root / "damaged.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    with h5py.File(root / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    return root


EXPECTED = {"W1/die_+00_+00.h5", "W1/die_+01_+00.h5", "W1/die_+01_-01.h5", "W1/die_+00_-01.h5", "W2/die_+00_+00.h5",
            "W2/deep/die_+02_+01.h5", "loose.h5", "W1/die_+05_+05.h5", "damaged.h5", "other.h5"}


@pytest.fixture()
def tree(campaign: Path, tmp_path: Path) -> Path:
    """A private copy of the campaign (tests that change files)."""
    root = tmp_path / "c"
    shutil.copytree(campaign, root, ignore=shutil.ignore_patterns(f"*{cat.CATALOG_NAME}*"))
    return root


class CountingOpener:
    """open_run that counts the runs opened and checks that no run opened before is still alive."""

    def __init__(self, keep: bool = False) -> None:
        self.paths: list[str] = []
        self.alive_at_open: list[int] = []
        self._refs: list[weakref.ref[Any]] = []
        self.kept: list[Any] = []
        self.keep = keep

    def __call__(self, path: Any, **kwargs: Any) -> Any:
        gc.collect()
        self.alive_at_open.append(sum(r() is not None for r in self._refs))
        self.paths.append(os.fspath(path))
        run = open_run(path, **kwargs)
        self._refs.append(weakref.ref(run))
        if self.keep:                                  # a leaking catalogue: every run and its tables kept
            self.kept.append((run, {name: run.table(name) for name in run.tables}))
        return run


# -- the catalogue ----------------------------------------------------------------------------------------------

def test_catalogue_rows_equal_the_files(campaign: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", str(campaign), "--rebuild", "--quiet"], signals=CliSignals()) == 0
    assert "10 run(s) catalogued (10 added" in " ".join(capsys.readouterr().out.split())
    db = campaign / cat.CATALOG_NAME
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        assert conn.execute("PRAGMA user_version").fetchone()[0] == cat.CATALOG_SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = {r["path"]: dict(r) for r in conn.execute("SELECT * FROM runs")}
    assert set(rows) == EXPECTED
    status = {p: r["exit_status"] for p, r in rows.items()}
    assert status == {**{p: "completed" for p in EXPECTED}, "W1/die_+01_-01.h5": "failed",
                      "W1/die_+05_+05.h5": "incomplete", "damaged.h5": "unreadable", "other.h5": "unreadable"}
    killed = rows["W1/die_+05_+05.h5"]
    assert killed["source"] == "journal" and (killed["die_col"], killed["die_row"]) == (5, 5)
    assert killed["forming_n_cells"] == 1 and killed["size_bytes"] > 0
    assert "not an rramlab run file" in rows["other.h5"]["error"] and rows["damaged.h5"]["error"]
    d = rows["W1/die_+00_-01.h5"]
    assert (d["wafer"], d["lot"], d["operator"], d["die"], d["die_col"], d["die_row"], d["campaign"]) == \
        ("W1", "L7", "jdoe", "0,-1", 0, -1, "c1")
    assert d["temperature_c"] == 85.0 and json.loads(d["sample_json"])["temperature_c"] == "85"
    assert d["recipe"] == "die probe" and d["station"] == "prober bench" and d["protocols"] == "forming"
    assert rows["W1/die_+00_+00.h5"]["protocols"] == "forming,program_verify"
    assert rows["W1/die_+00_+00.h5"]["pv_acceptance"] == 0.02 and rows["W1/die_+00_+00.h5"]["pv_n_states"] >= 1
    loose = rows["loose.h5"]
    assert loose["wafer"] is None and loose["die_col"] is None and loose["forming_n_formed"] == 16
    for rel, r in rows.items():
        if r["exit_status"] == "unreadable" or "forming" not in (r["protocols"] or "") or r["source"] == "journal":
            continue
        y, v = forming_from_file(campaign / rel)
        assert r["forming_yield"] == pytest.approx(y, rel=1e-12) and r["v_form_mean"] == pytest.approx(v, rel=1e-12)
        assert r["size_bytes"] == (campaign / rel).stat().st_size
        assert r["run_id"] == open_run(campaign / rel).metadata["run_id"]
    assert rows["W1/die_+00_-01.h5"]["forming_yield"] == pytest.approx(6 / 16)
    assert rows["W1/die_+00_+00.h5"]["start_time_unix"] == pytest.approx(_unix("2026-05-10T08:00:00"))
    assert rows["W2/deep/die_+02_+01.h5"]["forming_yield"] is None


def test_incremental_update_reopens_only_changed_runs(tree: Path) -> None:
    first = CountingOpener()
    report = cat.update_catalog(tree, opener=first)
    assert sorted(report.added) == sorted(EXPECTED) and len(first.paths) == len(EXPECTED)
    again = CountingOpener()
    report = cat.update_catalog(tree, opener=again)
    assert again.paths == [] and report.unchanged == len(EXPECTED) and not report.added + report.updated

    touched = tree / "W1/die_+01_+00.h5"
    later = touched.stat().st_mtime + 10
    os.utime(touched, (later, later))
    (tree / "W2/die_+00_+00.h5").unlink()
    write_die(tree / "W3/die_+00_+00.h5", wafer="W3")
    third = CountingOpener()
    report = cat.update_catalog(tree, opener=third)
    assert sorted(Path(p).relative_to(tree).as_posix() for p in third.paths) == ["W1/die_+01_+00.h5",
                                                                                 "W3/die_+00_+00.h5"]
    assert report.updated == ["W1/die_+01_+00.h5"] and report.added == ["W3/die_+00_+00.h5"]
    assert report.removed == ["W2/die_+00_+00.h5"]
    paths = {r["path"] for r in cat.query_catalog(tree)}
    assert paths == (EXPECTED - {"W2/die_+00_+00.h5"}) | {"W3/die_+00_+00.h5"}
    rebuilt = CountingOpener()
    report = cat.update_catalog(tree, rebuild=True, opener=rebuilt)
    assert len(rebuilt.paths) == len(paths) and report.rebuilt == "--rebuild"


def test_a_live_run_is_reread_when_its_journal_grows(tree: Path) -> None:
    cat.update_catalog(tree)
    path = tree / "W4/live.h5"
    path.parent.mkdir()
    w = RunWriter(path, metadata=RunMetadata(recipe=RECIPE, station=STATION, extras={"sample": {"wafer": "W4"}}))
    try:
        st = w.step("forming", "forming", {}, [(0, 0), (0, 1)])
        t = st.table("forming", FORMING)
        t.append({"row": 0, "col": 0, "v_form": 3.0, "formed": True, "i_form": 2e-4, "attempts": 1,
                  "g_after_reset": 1e-5, "t": 0.0})
        w.durability_point()
        cat.update_catalog(tree)
        row = next(r for r in cat.query_catalog(tree) if r["path"] == "W4/live.h5")
        assert (row["exit_status"], row["source"], row["forming_n_cells"]) == ("incomplete", "journal", 1)
        t.append({"row": 0, "col": 1, "v_form": 3.2, "formed": True, "i_form": 2e-4, "attempts": 1,
                  "g_after_reset": 1e-5, "t": 1.0})
        w.durability_point()
        opener = CountingOpener()
        cat.update_catalog(tree, opener=opener)
        assert [Path(p).name for p in opener.paths] == ["live.h5"]
        row = next(r for r in cat.query_catalog(tree) if r["path"] == "W4/live.h5")
        assert row["forming_n_cells"] == 2 and row["v_form_mean"] == pytest.approx(3.1)
    finally:
        w.close("completed")
    cat.update_catalog(tree)
    row = next(r for r in cat.query_catalog(tree) if r["path"] == "W4/live.h5")
    assert (row["exit_status"], row["source"]) == ("completed", "hdf5")


def _peak(root: Path, opener: Any = None) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        cat.update_catalog(root, rebuild=True, opener=opener)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_one_run_open_at_a_time_and_memory_does_not_grow_with_the_runs(tmp_path: Path) -> None:
    """N and 3N runs of 1024 cells each: the same peak (a catalogue keeping every run's tables would grow by
    about 2N × 80 kB, which the same measurement shows)."""
    n = 4
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    for k in range(3 * n):
        write_die(big / f"d{k:02d}.h5", col=k, row=0, n=1024, seed=k)
        if k < n:
            shutil.copy(big / f"d{k:02d}.h5", small / f"d{k:02d}.h5")
    opener = CountingOpener()
    cat.update_catalog(big, rebuild=True, opener=opener)
    assert len(opener.paths) == 3 * n and opener.alive_at_open == [0] * (3 * n)   # each run released before the next
    cat.update_catalog(small)                      # warm-up: imports and caches outside the measurement
    _peak(small, CountingOpener(keep=True))        # the same for the leaking opener's path
    p_small, p_big = _peak(small), _peak(big)
    assert p_big < 1.15 * p_small + 100_000, (p_small, p_big)
    leaky_small, leaky_big = _peak(small, CountingOpener(keep=True)), _peak(big, CountingOpener(keep=True))
    # the measurement sees a leak: each kept run raises the peak by more than 40 kB (the bound above fails from
    # ≈ 27 kB per run). In a full CI worker the small set's peak is set by the update's transient (773 kB against
    # 568 kB run alone) rather than by the runs kept, so the difference shows ~56 kB of the ~80 kB a kept run holds
    assert leaky_big - leaky_small > 2 * n * 40_000, (leaky_small, leaky_big)


class Boom(Exception):
    pass


def test_an_interrupted_update_leaves_a_usable_catalogue(tree: Path) -> None:
    db = tree / cat.CATALOG_NAME

    def failing_after(k: int) -> Any:
        opened: list[str] = []

        def opener(path: Any, **kwargs: Any) -> Any:
            if len(opened) == k:
                raise KeyboardInterrupt                # Ctrl-C while the k+1-th run is read
            opened.append(os.fspath(path))
            return open_run(path, **kwargs)
        return opener

    with pytest.raises(KeyboardInterrupt):            # the first build: nothing half-built is left behind
        cat.update_catalog(tree, opener=failing_after(3))
    assert not db.exists() and not list(tree.glob(f".{cat.CATALOG_NAME}*"))
    cat.update_catalog(tree)
    for p in ("W1/die_+00_+00.h5", "W1/die_+01_+00.h5", "W2/die_+00_+00.h5"):
        os.utime(tree / p, (time.time() + 20, time.time() + 20))
    write_die(tree / "W9/new.h5", wafer="W9")
    with pytest.raises(KeyboardInterrupt):            # an incremental update: what was committed stays
        cat.update_catalog(tree, opener=failing_after(2))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert {r["path"] for r in cat.query_catalog(tree)} >= EXPECTED
    report = cat.update_catalog(tree)
    assert report.opened == 2 and {r["path"] for r in cat.query_catalog(tree)} == EXPECTED | {"W9/new.h5"}


def test_a_damaged_or_older_catalogue_is_rebuilt(tree: Path) -> None:
    db = tree / cat.CATALOG_NAME
    db.write_bytes(b"not a database at all" * 100)
    report = cat.update_catalog(tree)
    assert "unreadable catalogue" in report.rebuilt and len(report.added) == len(EXPECTED)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    report = cat.update_catalog(tree)
    assert "schema 99" in report.rebuilt and len(cat.query_catalog(tree)) == len(EXPECTED)


# -- rramlab ls -------------------------------------------------------------------------------------------------

def test_ls_filters_select_exactly_the_expected_runs(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tree)
    assert not (tree / cat.CATALOG_NAME).exists()
    everything = ls(d, capsys=capsys)                  # the catalogue is built on first use
    assert {r["path"] for r in everything} == EXPECTED and (tree / cat.CATALOG_NAME).exists()

    def paths(*args: str) -> set[str]:
        return {r["path"] for r in ls(d, *args, capsys=capsys)}

    w1 = {"W1/die_+00_+00.h5", "W1/die_+01_+00.h5", "W1/die_+01_-01.h5", "W1/die_+00_-01.h5", "W1/die_+05_+05.h5"}
    assert paths("--wafer", "W1") == w1
    assert paths("--wafer", "W2", "--die", "2,1") == {"W2/deep/die_+02_+01.h5"}
    assert paths("--die", "1,-1") == {"W1/die_+01_-01.h5"}
    assert paths("--status", "failed") == {"W1/die_+01_-01.h5"}
    assert paths("--status", "incomplete") == {"W1/die_+05_+05.h5"}
    assert paths("--status", "unreadable") == {"damaged.h5", "other.h5"}
    assert paths("--since", "2026-06-01", "--until", "2026-06-05") == {"W1/die_+01_-01.h5", "W1/die_+00_-01.h5",
                                                                       "W2/die_+00_+00.h5"}
    assert paths("--until", "2026-05-31") == {"W1/die_+00_+00.h5", "W1/die_+01_+00.h5", "loose.h5"}
    assert paths("--since", "2026-05-31T23:00Z", "--until", "2026-06-01") == {"W1/die_+01_+00.h5"}
    assert paths("--protocol", "program_verify") == {"W1/die_+00_+00.h5", "W2/deep/die_+02_+01.h5"}
    assert paths("--protocol", "program") == set()
    assert paths("--operator", "jdoe", "--lot", "L7", "--wafer", "W2") == {"W2/die_+00_+00.h5",
                                                                          "W2/deep/die_+02_+01.h5"}
    row = next(r for r in everything if r["path"] == "W1/die_+00_-01.h5")
    assert row["sample"]["temperature_c"] == "85" and row["die_col"] == 0 and row["temperature_c"] == 85.0


def test_ls_input_never_reaches_the_sql(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tree)
    assert len(ls(d, capsys=capsys)) == len(EXPECTED)
    for hostile in ("W1' OR '1'='1", "W1\" OR 1=1 --", "x'; DROP TABLE runs; --", "%", "W_"):
        for option in ("--wafer", "--lot", "--operator", "--status", "--die", "--protocol"):
            assert ls(d, option, hostile, capsys=capsys) == [], (option, hostile)
    assert len(ls(d, capsys=capsys)) == len(EXPECTED)          # the table is still there, whole
    with pytest.raises(SystemExit) as e:                       # a date that is not one is refused by argparse
        main(["ls", d, "--since", "2026' OR 1=1"], signals=CliSignals())
    assert e.value.code == 2


def test_ls_table_output(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["ls", str(tree), "--wafer", "W1"], signals=CliSignals()) == 0
    out = capsys.readouterr().out
    assert "5 run(s) under" in out and "W1/die_+01_-01.h5" in out and "failed" in out
    assert "0,-1" in out and "37.5" in out              # die text, yield % of the low-yield die
    assert "W2/" not in out


def test_ls_of_a_directory_that_cannot_be_written_lists_from_memory(tree: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise cat.CatalogError(f"{tree}: cannot write the catalogue: Read-only file system")

    monkeypatch.setattr(cat, "update_catalog", refuse)
    rows = ls(str(tree), "--wafer", "W2", capsys=capsys)
    assert {r["path"] for r in rows} == {"W2/die_+00_+00.h5", "W2/deep/die_+02_+01.h5"}
    assert not (tree / cat.CATALOG_NAME).exists()
    assert "listing from a catalogue in memory" in " ".join(capsys.readouterr().err.split())   # rich wraps lines


# -- wafer maps -------------------------------------------------------------------------------------------------

def round_wafer() -> list[DieValue]:
    """21 dies: columns and rows -2..2 within radius √5 (the four corners untested); value a gradient."""
    dies = [DieValue(c, r, 10.0 + c + 0.3 * r, bad=(c, r) == (1, -2))
            for r in range(-2, 3) for c in range(-2, 3) if c * c + r * r <= 5]
    assert len(dies) == 21
    return dies


def test_wafer_map_squares_sit_at_their_dies_in_their_colours() -> None:
    dies = round_wafer()
    fig = plot_wafer_map(dies, wafer="W12", name="V_form mean", unit="V", cmap="viridis")
    ax = fig.axes[0]
    squares = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("die:")}
    assert len(squares) == 21
    values = np.array([d.value for d in dies])
    norm, cmap = Normalize(values.min(), values.max()), colormaps["viridis"]
    for d in dies:
        p = squares[f"die:{d.col},{d.row}"]
        x, y = p.get_xy()
        assert (x + p.get_width() / 2, y + p.get_height() / 2) == pytest.approx((d.col, d.row))
        assert p.get_width() < 1 and p.get_height() < 1                  # no overlap with the neighbours
        assert np.allclose(p.get_facecolor(), cmap(norm(d.value)), atol=1e-9), (d, p.get_facecolor())
        assert (p.get_hatch() is not None) == d.bad
    centres = {(round(p.get_x() + p.get_width() / 2), round(p.get_y() + p.get_height() / 2)) for p in squares.values()}
    assert not centres & {(-2, -2), (-2, 2), (2, -2), (2, 2)}          # untested positions stay empty
    crosses = [line for line in ax.lines if (line.get_gid() or "").startswith("bad:")]
    assert [line.get_gid() for line in crosses] == ["bad:1,-2"]
    xs, ys = crosses[0].get_data()
    assert np.nanmin(xs) >= 0.5 and np.nanmax(xs) <= 1.5 and np.nanmin(ys) >= -2.5 and np.nanmax(ys) <= -1.5
    assert "W12" in ax.get_title() and "V_form mean" in ax.get_title() and "1 bad" in ax.get_title()
    assert fig.axes[1].get_ylabel() == "V_form mean [V]"                 # the colour bar and its unit
    hi = max(dies, key=lambda d: d.value)
    assert np.allclose(squares[f"die:{hi.col},{hi.row}"].get_facecolor(), cmap(1.0))


def test_bad_dies_and_maps_per_wafer_from_records() -> None:
    def rec(wafer: str, col: int, row: int, **kw: Any) -> dict[str, Any]:
        return {"wafer": wafer, "die_col": col, "die_row": row, "exit_status": "completed", "forming_yield": 0.9,
                "forming_n_cells": 10, "forming_n_formed": 9, "v_form_mean": 3.0 + 0.1 * col, **kw}

    assert not die_is_bad(rec("W", 0, 0))
    assert die_is_bad(rec("W", 0, 0, exit_status="failed"))
    assert die_is_bad(rec("W", 0, 0, forming_yield=0.4, forming_n_formed=4))
    assert not die_is_bad(rec("W", 0, 0, forming_yield=0.4, forming_n_formed=4), min_yield=0.3)
    assert die_is_bad(rec("W", 0, 0, forming_yield=None, forming_n_formed=0))
    records = [rec("A", 0, 0), rec("A", 1, 0, exit_status="failed"), rec("A", 1, 0, start_time_unix=-1.0),
               rec("B", 0, 0), {"wafer": "A", "die_col": None, "die_row": None}]
    maps = wafer_map_figures(records)
    assert sorted(maps) == ["wafer_A_forming_yield", "wafer_A_v_form_mean"]    # B has one die: no map
    ax = maps["wafer_A_forming_yield"].axes[0]
    assert sorted(p.get_gid() for p in ax.patches) == ["die:0,0", "die:1,0"]
    assert [line.get_gid() for line in ax.lines] == ["bad:1,0"]       # the later run of die 1,0 (failed) wins


def test_report_of_a_directory_adds_wafer_maps(campaign: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "runs"
    shutil.copytree(campaign / "W1", src / "W1")
    (src / "W1/die_+05_+05.h5.journal").unlink()
    html, figs = tmp_path / "report.html", tmp_path / "figs"
    capsys.readouterr()
    assert main(["report", str(src), "--html", str(html), "--figures", str(figs)], signals=CliSignals()) == 0
    out = " ".join(capsys.readouterr().out.split())
    page = html.read_text(encoding="utf-8")
    assert page.index('id="wafer-maps"') < page.index('id="run-0"')
    maps = ["wafer_W1_forming_yield", "wafer_W1_pv_sigma_slope", "wafer_W1_v_form_mean"]   # no retention here
    assert sorted(re.findall(r'class="wafer-map" id="map-[^"]*" data-figure="([^"]*)"', page)) == maps
    assert "4 run(s)" in out and "<figcaption><b>wafer W1 — forming yield</b></figcaption>" in page
    assert sorted(p.name for p in (figs / "wafer_maps").iterdir()) == [f"{m}.png" for m in maps]
    fig = wafer_map_figures([cat.read_record(p) | {"die_col": int(p.stem.split("_")[1]),
                                                   "die_row": int(p.stem.split("_")[2])}
                             for p in sorted((src / "W1").glob("*.h5"))])["wafer_W1_forming_yield"]
    bad = sorted(line.get_gid() for line in fig.axes[0].lines)
    assert bad == ["bad:0,-1", "bad:1,-1"]            # yield 6/16 < 0.5, and the failed run


@pytest.fixture(autouse=True)
def _no_lock_dir_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RRAMLAB_LOCK_DIR", str(tmp_path / "locks"))
    yield
