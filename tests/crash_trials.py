"""kill -9 trials of the run writer, shared by tests/test_crash_trials.py (CI, a few dozen) and
tests/benchmarks/kill_trials.py (hundreds, for the README's figure).

A child process writes a run without pause — three tables, rows with numbers and UTF-8 strings, one
durability point per "unit" of 1–300 rows, the in-flight and pulse write-ahead records a runner makes —
and after every durability point appends the committed row counts to an acknowledgement file (its
own flushed line). It is killed with SIGKILL at a random moment, from its start-up (file creation)
to steady writing. The check then opens the run in a fresh process with a time limit (a reader must
never hang or fail), verifies every acknowledged row bit for bit from its sequence number, builds the
HDF5 file with ``recover``, and reads it again with plain h5py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WRITER = r"""
import random, sys
from rramlab.analysis.dataset_writer import RunMetadata, RunWriter

path, ack_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
w = RunWriter(path, metadata=RunMetadata(recipe="kill trial", station="bench", instruments={"smu": "K"}, seed=seed),
              durability="fsync" if seed % 4 == 0 else "flush")
tables = {
    "sweep": w.table("sweep", {"row": ("i4", ""), "v": ("f8", "V"), "i": ("f8", "A"), "branch": (str, "")}),
    "reads": w.table("reads", {"g": ("f8", "S"), "ok": (bool, "bool"), "label": (str, "")}),
    "result": w.table("result", {"cell": ("i8", ""), "g_final": ("f8", "S")}),
}
step = w.step("trial", "synthetic", {"seed": seed})
ack = open(ack_path, "a")
ack.write("{}\n"); ack.flush()
unit = 0
while True:
    w.mark_in_flight((unit % 64, unit // 64 % 64), step.index, None)
    for _ in range(rng.randint(1, 300)):
        n = tables["sweep"].rows
        tables["sweep"].append({"row": n % 97, "v": n * 1e-3, "i": n * 1e-9, "branch": "form" if n % 3 else "réset"})
        n = tables["reads"].rows
        tables["reads"].append({"g": n * 1e-7, "ok": n % 2 == 0, "label": f"µ{n}"})
    tables["result"].append({"cell": unit, "g_final": unit * 1e-6})
    w.durability_point(units=[(step.index, str(unit))], ledger={(unit % 64, unit // 64 % 64): unit + 1},
                       state={"last_t": float(unit)})
    ack.write(json.dumps({name: t.committed_rows for name, t in tables.items()}) + "\n")
    ack.flush()
    unit += 1
""".replace("import random, sys", "import json, random, sys")


def expected(table: str, n: int) -> dict[str, list]:
    """The content of rows 0..n-1 of ``table`` as the writer makes them."""
    k = range(n)
    if table == "sweep":
        return {"row": [i % 97 for i in k], "v": [i * 1e-3 for i in k], "i": [i * 1e-9 for i in k],
                "branch": ["form" if i % 3 else "réset" for i in k]}
    if table == "reads":
        return {"g": [i * 1e-7 for i in k], "ok": [i % 2 == 0 for i in k], "label": [f"µ{i}" for i in k]}
    return {"cell": list(k), "g_final": [i * 1e-6 for i in k]}


CHECK = r"""
import json, sys, warnings
from rramlab.analysis.dataset import open_run
warnings.simplefilter("error")                      # a skipped part is a failure here
run = open_run(sys.argv[1])
out = {"source": run.source, "status": run.exit_status, "units": len(run.state.units.get(0, ())), "tables": {}}
for name in run.tables:
    df = run.table(name)
    out["tables"][name] = {c: df[c].tolist() for c in df.columns if c != "step"}
print(json.dumps(out))
"""


@dataclass
class TrialResult:
    seed: int
    delay: float
    acked_units: int
    committed_units: int
    unreadable: str = ""            # why the run could not be read (empty: readable)
    lost_rows: int = 0              # acknowledged rows missing or not bit-identical
    h5_unreadable: str = ""


def _read(path: Path, timeout: float = 60.0) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHECK, str(path)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["no message"])[-1])
    return json.loads(proc.stdout)


def _lost(data: dict, acked: dict) -> int:
    lost = 0
    for table, n in acked.items():
        got = data["tables"].get(table)
        if got is None:
            lost += n
            continue
        want = expected(table, n)
        if got["seq"][:n] != list(range(n)):
            lost += n
            continue
        for column, values in want.items():
            have = got[column][:n]
            lost += sum(1 for a, b in zip(have, values, strict=False) if a != b) + max(0, n - len(have))
    return lost


def run_trial(workdir: Path, seed: int, max_delay: float = 1.5) -> TrialResult:
    """One writer killed with SIGKILL at a random moment (a fifth during start-up, the rest 0 … ``max_delay``
    s after it began writing), then checked."""
    rng = random.Random(seed)
    path, ack = workdir / f"trial{seed}.h5", workdir / f"trial{seed}.ack"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ack), str(seed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if rng.random() < 0.2:                   # during start-up and the journal's creation
        delay = rng.uniform(0.02, 0.6)
        time.sleep(delay)
    else:                                    # while writing: after the writer said it is ready
        t0 = time.monotonic()
        while not (ack.exists() and ack.stat().st_size) and proc.poll() is None and time.monotonic() - t0 < 30:
            time.sleep(0.002)
        delay = rng.uniform(0.0, max_delay)
        time.sleep(delay)
        delay += time.monotonic() - t0
    if proc.poll() is not None:
        raise RuntimeError(f"writer {seed} ended by itself: {proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()  # type: ignore[union-attr]
    lines = ack.read_text().split("\n")[:-1] if ack.exists() else []
    acked = json.loads(lines[-1]) if lines else {}
    result = TrialResult(seed, delay, max(0, len(lines) - 1), 0)
    if not path.exists() and not Path(f"{path}.journal").exists():
        if lines:
            result.unreadable = "no run file although rows were acknowledged"
        return result                                   # killed before the journal existed: nothing to lose
    try:
        data = _read(path)
    except Exception as exc:  # noqa: BLE001 - counted
        if lines:
            result.unreadable = str(exc)
        elif "no such" not in str(exc) and "not an rramlab journal" not in str(exc):
            result.unreadable = str(exc)                # killed while creating the journal: must still say why
        return result
    result.committed_units = data["units"]
    result.lost_rows = _lost(data, acked)
    from rramlab.analysis.dataset_recover import recover

    try:
        recover(path)
        import h5py

        with h5py.File(path, "r") as f:
            for table, n in acked.items():
                if f[f"tables/{table}"].shape[0] < n:
                    result.h5_unreadable = f"{table}: {f[f'tables/{table}'].shape[0]} < {n} rows"
        if _lost(_read(path), acked):
            result.h5_unreadable = "rows differ after recover"
    except Exception as exc:  # noqa: BLE001 - counted
        result.h5_unreadable = f"{type(exc).__name__}: {exc}"
    return result
