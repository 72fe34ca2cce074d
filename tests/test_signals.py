"""Signals end a command cleanly whenever they arrive: exit 130 (Ctrl-C) or 143 (SIGTERM), never a traceback,
the bench safe, and the summary and JSON written whenever the run got that far.

Each trial starts the real command (through the ``rramlab`` entry point, so even the imports are covered)
and signals it at a random moment: while it starts, runs, cleans up, or writes its summary.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rramlab.analysis.dataset import open_run

ROOT = Path(__file__).parents[1]
ENTRY = "import sys; from rramlab.protocols.entry import main; sys.exit(main())"
RECIPE = """
[recipe]
name = "short"
[[steps]]
protocol = "forming"
cells = "all"
[steps.params]
current_limit = 1e-3
[[steps]]
protocol = "program_verify"
cells = "all"
[steps.params]
acceptance = 0.002
rounds = 2
"""                     # runs for ~6 s on a 2-core machine: most random moments land while it runs


def _trial(workdir: Path, k: int, signals: list[int], when: float, gap: float) -> dict:
    recipe = workdir / "recipe.toml"
    out, js, log = workdir / f"run{k}.h5", workdir / f"run{k}.json", workdir / f"bench{k}.json"
    env = dict(os.environ, RRAMLAB_BENCH_LOG=str(log), RRAMLAB_LOCK_DIR=str(workdir / "locks"))
    proc = subprocess.Popen([sys.executable, "-c", ENTRY, "run", str(recipe), "--station",
                             str(ROOT / "examples" / "sim_2636b_707b.toml"), "--out", str(out), "--json", str(js),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _wait_for_handlers(proc.pid)
    time.sleep(when)
    for sig in signals:
        if proc.poll() is None:
            proc.send_signal(sig)
            time.sleep(gap)
    output, _ = proc.communicate(timeout=120)
    return {"k": k, "code": proc.returncode, "out": output, "file": out, "json": js, "log": log, "when": when}


def _wait_for_handlers(pid: int, timeout: float = 30.0) -> None:
    """Until the process catches SIGINT and SIGTERM (``SigCgt`` in /proc/PID/status): a signal before the
    interpreter reached the entry point's first instruction kills it the default way, which no program can
    prevent, so the random moments count from there."""
    wanted = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return                                          # already gone
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt")), 16)
        if caught & wanted == wanted:
            return
        time.sleep(0.002)


def _check(t: dict, expected: int) -> None:
    out = t["out"]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert t["code"] in (0, expected), (t["code"], t["when"], out)
    if t["log"].exists():                                   # a bench was opened: it ends safe
        bench = json.loads(t["log"].read_text())
        assert all(o["output"] == 0 for o in bench["final"]["outputs"].values()), out
        assert all(not c for c in bench["final"]["closed"].values()), out
        assert [e for e in bench["events"] if e["kind"] == "hot_switch"] == []
    if t["file"].exists() or Path(f"{t['file']}.journal").exists():
        run = open_run(t["file"])
        if run.exit_status in ("completed", "interrupted", "aborted"):
            assert t["json"].exists(), (t["when"], out)       # the run got that far: the summary is written
            assert json.loads(t["json"].read_text())["exit_status"] == run.exit_status
    else:
        assert not t["json"].exists()


@pytest.mark.parametrize("name, signals, expected", [
    ("ctrl-c twice", [signal.SIGINT, signal.SIGINT], 130),
    ("ctrl-c once", [signal.SIGINT], 130),
    ("sigterm", [signal.SIGTERM], 143),
])
def test_signals_at_random_moments_end_cleanly(tmp_path: Path, name: str, signals: list[int], expected: int) -> None:
    (tmp_path / "recipe.toml").write_text(RECIPE)
    rng = random.Random(hash(name) % 1000)
    plan = [(k, rng.uniform(0.05, 4.0), rng.uniform(0.0, 0.3)) for k in range(10)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        trials = list(pool.map(lambda p: _trial(tmp_path, p[0], signals, p[1], p[2]), plan))
    for t in trials:
        _check(t, expected)
    assert sum(t["code"] == expected for t in trials) >= 5           # most signals landed while it ran
