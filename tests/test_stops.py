"""Stops other than a clean end, and what a resume finds after them (found by an adversarial review):
a stop inside a unit (SIGTERM, SIGHUP, a failure) keeps the unit's rows apart and its cells in flight; a
resume killed right after its first reads keeps the pulse ledger's charge; a resume killed while it
imports the HDF5 file leaves the run as it was; a Ctrl-C at the terminal while a run closes; a run that
fills a small disk by itself; a journal copied without its log; one lock whatever the address spelling."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from test_full_disk import small_filesystem
from test_resume import ENTRY, Ops, _journal_count, _kill_when

from rramlab.analysis.dataset import JournalError, open_run
from rramlab.drivers.bench_lock import canonical_resource

ROOT = Path(__file__).parents[1]
RECIPE = """
[recipe]
name = "pv then endurance"
[[steps]]
protocol = "forming"
cells = { rows = "0", cols = "0-3" }
[steps.params]
current_limit = 1e-3
[[steps]]
name = "pv"
protocol = "program_verify"
cells = { rows = "0", cols = "0-3" }
[steps.params]
acceptance = 0.002
target_min = 20e-6
target_max = 80e-6
rounds = 3
[[steps]]
protocol = "endurance"
cells = { rows = "0", cols = "0-1" }
[steps.params]
pulses_per_half = 5
cycles = 300
"""


def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, RRAMLAB_LOCK_DIR=str(tmp / "locks"), COLUMNS="400")


def _station(tmp: Path, library: str) -> Path:
    station = tmp / "station.toml"
    station.write_text((ROOT / "examples" / "sim_2636b_707b.toml").read_text()
                       .replace('visa_library = "2636b_707b@rramlab"', f'visa_library = "{library}"'))
    return station


def _start(tmp: Path, *args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", ENTRY, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(tmp), **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_inside_a_unit_then_resume_records_each_unit_once(tmp_path: Path, sig: int, code: int) -> None:
    """SIGTERM/SIGHUP in the middle of a programming: bench safe, the unit's rows set aside (/partial), its cell
    still in flight; the resume reads it first and the tables hold every programming exactly once."""
    from rramlab.simulator.server import BenchControl, BenchServerProcess

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run.h5"
    with BenchServerProcess("?seed=5&transcript=1000000") as server:
        station = _station(tmp_path, server.library)
        first = _start(tmp_path, "run", str(recipe), "--station", str(station), "--out", str(out), "--quiet")
        journal = Path(f"{out}.journal")
        deadline = time.monotonic() + 120
        while _journal_count(journal, "SELECT COUNT(*) FROM units WHERE step = 1 HAVING COUNT(*) >= 3 AND "
                             "(SELECT COUNT(*) FROM in_flight) > 0") == 0:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
            time.sleep(0.003)
        first.send_signal(sig)
        text, _ = first.communicate(timeout=60)
        assert first.returncode == code and "Traceback" not in text, text
        with BenchControl(server.address) as control:
            state = control.state()
        assert all(o["output"] == 0 for o in state["outputs"].values()) and not any(state["closed"].values()), \
            (state, text)
        stopped = open_run(out)
        assert stopped.exit_status == "aborted" and stopped.state.in_flight, stopped.state.in_flight
        assert "set aside" in stopped.exit_message or not stopped.partial_tables
        resumed = _start(tmp_path, "resume", str(out), "--quiet")
        text, _ = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, text
        with BenchControl(server.address) as control:
            transcript = control.transcript()
    run = open_run(out)
    assert run.exit_status == "completed"
    pv = run.table("program_verify")
    for key, rows in pv.groupby(["step", "row", "col", "target"]):
        assert list(rows["iteration"]) == list(range(len(rows))), key      # each programming once
    results = run.table("program_verify_result")
    assert len(results) == 12 and Counter(zip(results["row"], results["col"], strict=True)) == \
        {(0, c): 3 for c in range(4)}
    ops = Ops(transcript, station.read_text())
    for cell in stopped.state.in_flight:
        assert ops.first_op(cell, resumed.pid) == "read"
    assert set(zip(run.table("resume_reads")["row"], run.table("resume_reads")["col"], strict=True)) == \
        set(stopped.state.in_flight)
    if run.partial_tables:                                   # the interrupted programming's rows: kept apart
        partial = run.partial("program_verify")
        assert partial is not None and (partial["interrupted_in_session"] == 1).all() and len(partial) > 0
    for cell, n in run.state.ledger.items():      # both processes were alive at their stops: exact, or one pulse
        # charged by a stop just before its write; an on-instrument loop around the stop: charged its maximum
        assert ops.pulses(cell) <= n <= ops.pulses(cell) + max(1, ops.loop_max[cell]), cell


def test_a_resume_killed_after_its_first_reads_keeps_the_ledger_charge(tmp_path: Path) -> None:
    from rramlab.simulator.server import BenchControl, BenchServerProcess

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run.h5"
    journal = Path(f"{out}.journal")
    with BenchServerProcess("?seed=6&transcript=1000000") as server:
        station = _station(tmp_path, server.library)
        run = _start(tmp_path, "run", str(recipe), "--station", str(station), "--out", str(out), "--quiet")
        _kill_when(run, lambda: _journal_count(journal, "SELECT SUM(n) FROM batches WHERE tbl = 'endurance' "
                                               "HAVING SUM(n) >= 9 AND (SELECT COUNT(*) FROM in_flight) > 0") > 0)
        killed = open_run(out)
        flying = set(killed.state.in_flight)
        assert flying
        resume = _start(tmp_path, "resume", str(out), "--quiet")
        _kill_when(resume, lambda: _journal_count(journal, "SELECT COUNT(*) FROM batches WHERE tbl = 'resume_reads'")
                   > 0)
        with BenchControl(server.address) as control:
            ops = Ops(control.transcript(), station.read_text())
    after = open_run(out)
    assert ops.pulses(next(iter(flying))) > 0
    for cell in {*after.state.ledger, *ops.ops}:         # every pulse the bench received is charged to its cell
        assert after.state.ledger.get(cell, 0) >= ops.pulses(cell), cell


def test_a_resume_killed_while_importing_leaves_the_run_as_it_was(tmp_path: Path) -> None:
    """Resuming a closed run first imports its HDF5 file into a journal; a kill -9 then must not leave a
    journal that hides the file's rows."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace('rows = "0", cols = "0-3" }\n[steps.params]\ncurrent_limit', 'rows = "0-7", '
                                     'cols = "0-7" }\n[steps.params]\ncurrent_limit', 1))
    out = tmp_path / "run.h5"
    run = _start(tmp_path, "run", str(recipe), "--station", str(ROOT / "examples" / "sim_2636b_707b.toml"), "--out",
                 str(out), "--quiet")
    journal = Path(f"{out}.journal")
    deadline = time.monotonic() + 120
    while _journal_count(journal, "SELECT COUNT(*) FROM units") < 40:
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=60)
    reference = {name: len(df) for name, df in ((n, open_run(out).table(n)) for n in open_run(out).tables)}
    assert reference["forming_sweep"] > 10000 and not journal.exists()
    for trial in range(4):
        copy = tmp_path / f"copy{trial}.h5"
        shutil.copy(out, copy)
        proc = _start(tmp_path, "resume", str(copy), "--quiet")
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(f"copy{trial}.h5.journal*")) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        time.sleep(0.01 * trial)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        got = open_run(copy)
        for name, n in reference.items():
            assert len(got.table(name)) >= n, (trial, name)        # nothing of the file is hidden or lost


def test_ctrl_c_at_the_terminal_while_a_run_closes(tmp_path: Path) -> None:
    """SIGINT to the whole process group (a terminal's Ctrl-C) while the HDF5 file is built: the build is not
    hit (it runs in a session of its own), the run is completed and nothing says otherwise (a Ctrl-C during
    cleanup is moot: the run has ended)."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace('cycles = 300', 'cycles = 30'))
    out = tmp_path / "run.h5"
    proc = _start(tmp_path, "run", str(recipe), "--station", str(ROOT / "examples" / "sim_2636b_707b.toml"),
                  "--out", str(out), "--quiet", start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("run.h5.partial-*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.0005)
    os.killpg(proc.pid, signal.SIGINT)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in text, text
    assert "crashed" not in text and "stopped" not in text and "failed" not in text, text
    assert open_run(out).exit_status == "completed" and open_run(out).source == "hdf5"


def test_a_run_on_a_small_disk_is_refused_or_fits(tmp_path: Path) -> None:
    """No other process writes: the estimate (with the journal's log) must not let a run start that then
    fills the disk by itself."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace('cycles = 300', 'cycles = 100'))
    for size in ("4m", "6m", "8m"):
        with small_filesystem(size) as fs:
            proc = subprocess.run([sys.executable, "-c", ENTRY, "run", str(recipe), "--station",
                                   str(ROOT / "examples" / "sim_2636b_707b.toml"), "--out", str(fs / "run.h5"),
                                   "--quiet"], capture_output=True, text=True, env=_env(tmp_path), timeout=300)
            assert proc.returncode in (0, 2), (size, proc.stdout)
            if proc.returncode == 2:
                assert "free; this run needs about" in proc.stdout
            else:
                assert open_run(fs / "run.h5").exit_status == "completed"


def test_a_journal_copied_without_its_log_is_not_taken_for_the_run(tmp_path: Path) -> None:
    """The latest commits live in the journal's -wal file until it is folded in (every ~1 MiB): a journal copied
    alone is said to be incomplete, and never hides an HDF5 file of the run."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run.h5"
    journal = Path(f"{out}.journal")
    proc = _start(tmp_path, "run", str(recipe), "--station", str(ROOT / "examples" / "sim_2636b_707b.toml"),
                  "--out", str(out), "--quiet")
    _kill_when(proc, lambda: _journal_count(journal, "SELECT COUNT(*) FROM units") >= 2)
    assert len(open_run(out).table("forming")) >= 2              # with its -wal file the journal is whole
    away = tmp_path / "away"
    away.mkdir()
    shutil.copy(journal, away / "run.h5.journal")                # the main file only
    alone = open_run(away / "run.h5")
    assert alone.sessions == [] and any("-wal" in note for note in alone.notes), alone.notes
    info = subprocess.run([sys.executable, "-m", "rramlab.protocols.cli", "info", str(away / "run.h5")],
                          capture_output=True, text=True, env=_env(tmp_path))
    assert info.returncode == 0 and "-wal" in " ".join(info.stdout.split()), info.stdout
    shutil.copy(ROOT / "tests" / "data" / "validation_bench.toml", away / "run.h5")   # any file named like the run
    with pytest.raises(JournalError, match="no session although"):
        open_run(away / "run.h5")


def test_one_lock_whatever_the_address_spelling() -> None:
    assert canonical_resource("GPIB::26::INSTR") == canonical_resource("gpib0::26::instr") == "GPIB0::26::INSTR"
    assert canonical_resource("TCPIP::10.0.0.5::INSTR") == canonical_resource("tcpip0::10.0.0.5::inst0::instr")
