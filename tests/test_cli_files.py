"""The CLI on damaged, live and contested run files: info/report never end in a traceback, recover builds or
salvages, a live run's file cannot be recovered under it, two runs cannot share one --out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py

from rramlab.analysis.dataset import RunMetadata, RunWriter, open_run

ROOT = Path(__file__).parents[1]
STATION = str(ROOT / "examples" / "sim_2636b_707b.toml")
RECIPE = """
[recipe]
name = "forming"
[[steps]]
protocol = "forming"
cells = "all"
[steps.params]
current_limit = 1e-3
"""


def cli(*args: str, tmp: Path, wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    env = dict(os.environ, RRAMLAB_LOCK_DIR=str(tmp / "locks"), COLUMNS="400")
    cmd = [sys.executable, "-m", "rramlab.protocols.cli", *args]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _run_file(path: Path, n: int = 20000) -> None:
    with RunWriter(path, metadata=RunMetadata(recipe="r", station="s")) as w:
        t = w.table("reads", {"g": ("f8", "S"), "label": (str, "")})
        t.extend({"g": [i * 1e-6 for i in range(n)], "label": [f"r{i}" for i in range(n)]})


def test_info_and_report_on_a_truncated_file_say_so(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _run_file(path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 3)
    for command in ("info", "report"):
        proc = cli(command, str(path), tmp=tmp_path)
        text = " ".join(proc.stdout.split())
        assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert "damaged HDF5 file" in text and f"rramlab recover {path}" in text, text


def test_info_reports_skipped_parts_of_a_table(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _run_file(path)
    with h5py.File(path, "r") as f:
        info = f["tables/reads"].id.get_chunk_info(2)       # rows 4096..6143: their strings' heap pointers too
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\x7f" * info.size)
    proc = cli("info", str(path), tmp=tmp_path)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "Traceback" not in text, proc.stdout + proc.stderr
    assert "(1 part(s) unreadable, skipped)" in text, text
    assert "reads: skipped rows 4096..6143" in text or "sequence number does not match" in text, text


def test_recover_builds_a_killed_run_and_refuses_a_live_one(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run.h5"
    proc = cli("run", str(recipe), "--station", STATION, "--out", str(out), "--quiet", tmp=tmp_path, wait=False)
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline and proc.poll() is None
        if Path(f"{out}.journal").exists():
            run = open_run(out)
            if "forming" in run.tables and len(run.table("forming")) >= 3:
                break
        time.sleep(0.05)
    live = cli("recover", str(out), tmp=tmp_path)                  # the run is still writing it
    assert live.returncode == 2 and f"in use by PID {proc.pid}" in " ".join(live.stdout.split()), live.stdout
    assert Path(f"{out}.journal").exists() and not out.exists()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    n = len(open_run(out).table("forming"))
    done = cli("recover", str(out), tmp=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"written from its journal: forming {n} rows" in " ".join(done.stdout.split())
    run = open_run(out)
    assert run.source == "hdf5" and run.exit_status == "incomplete" and len(run.table("forming")) == n
    info = cli("info", str(out), tmp=tmp_path)
    assert info.returncode == 0 and "exit status incomplete" in info.stdout


def test_two_runs_racing_for_one_out_file(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "same.h5"
    procs = [cli("run", str(recipe), "--station", STATION, "--out", str(out), "--quiet", tmp=tmp_path, wait=False)
             for _ in range(2)]
    results = [(p.returncode, p.communicate(timeout=300)[0]) for p in procs]
    results = [(p.returncode, text) for p, (_, text) in zip(procs, results, strict=True)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(text for code, text in results if code == 2)
    assert "Data kept" not in loser and "Traceback" not in loser, loser
    assert "same.h5" in loser and ("in use by PID" in loser or "exists" in loser), loser
    assert open_run(out).exit_status == "completed" and len(open_run(out).table("forming")) == 64
