"""A disk that fills during a run: a real small file system (tmpfs) filled by another process, and a real
file-size limit (RLIMIT_FSIZE) — the write fails in the C library, not in a Python stand-in.

What must hold: the run stops at once with a true message and exit 1, no crash (no segfault), the bench
ends in safe state, every acknowledged (committed) row is readable, and once space is free the HDF5
file is built from the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rramlab.analysis.dataset import open_run

ROOT = Path(__file__).parents[1]


@contextlib.contextmanager
def small_filesystem(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on a fresh directory, unmounted afterwards; skip where mounting is not allowed."""
    where = Path(tempfile.mkdtemp(prefix="rramlab-fullfs-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'mount failed'}); the file-size "
                    "limit test covers a failing write instead")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(directory: Path, until: threading.Event) -> None:
    """Another process's data filling the disk: write until ENOSPC (or told to stop)."""
    block = b"\0" * 65536
    with contextlib.suppress(OSError), open(directory / "filler.bin", "wb") as f:
        while not until.is_set():
            f.write(block)
            f.flush()


WRITER = """
import sys
from rramlab.analysis.dataset_writer import RunMetadata, RunWriter
path, ack = sys.argv[1], sys.argv[2]
w = RunWriter(path, metadata=RunMetadata(recipe="r", station="s", seed=1))
t = w.table("reads", {"v": ("f8", "V"), "label": (str, "")})
step = w.step("s", "read", {})
n = 0
with open(ack, "w") as a:
    try:
        for unit in range(10**6):
            for _ in range(50):
                t.append({"v": n * 0.5, "label": f"row {n}"})
                n += 1
            w.durability_point(units=[(step.index, str(unit))])
            a.write(f"{t.committed_rows}\\n")
            a.flush()
    except Exception as e:
        print(type(e).__name__, str(e), flush=True)
        try:
            w.close("failed", str(e))
        except Exception as e2:
            print("close:", type(e2).__name__, str(e2), flush=True)
        sys.exit(1)
"""


def _check_acked(path: Path, ack: Path) -> int:
    lines = ack.read_text().split("\n")[:-1]
    acked = int(lines[-1]) if lines else 0
    run = open_run(path)
    df = run.table("reads")
    assert len(df) >= acked > 0 and df.attrs["skipped"] == []
    assert list(df["seq"]) == list(range(len(df)))
    assert list(df["label"]) == [f"row {k}" for k in range(len(df))]
    assert (df["v"].to_numpy() == [k * 0.5 for k in range(len(df))]).all()
    return acked


def test_writer_on_a_filling_tmpfs_keeps_every_acknowledged_row(tmp_path: Path) -> None:
    with small_filesystem("4m") as fs:
        path, ack = fs / "run.h5", tmp_path / "ack"
        stop = threading.Event()
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-c", WRITER, str(path), str(ack)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while not (ack.exists() and ack.read_text().count("\n") > 20) and time.monotonic() < deadline:
            time.sleep(0.01)
        filler = threading.Thread(target=fill, args=(fs, stop))
        filler.start()
        out, _ = proc.communicate(timeout=120)
        stop.set()
        filler.join()
        assert proc.returncode == 1, out                      # stopped by the error, not by a signal (-11)
        assert "DiskFullError" in out and "disk full" in out, out
        _check_acked(path, ack)                               # readable in place, on the full disk
        (fs / "filler.bin").unlink()
        from rramlab.analysis.dataset_recover import recover

        report = recover(path)                                # space free again: the HDF5 file is built
        assert report.from_journal and report.rows["reads"] >= _check_acked(path, ack)


def test_writer_hitting_the_file_size_limit_keeps_every_acknowledged_row(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse a write (EFBIG): a real failing write, no privileges needed."""
    path, ack = tmp_path / "run.h5", tmp_path / "ack"
    limit = 3 * 2**20
    code = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n" + WRITER)
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code, str(path), str(ack)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DatasetWriteError" in proc.stdout or "DiskFullError" in proc.stdout, proc.stdout
    acked = _check_acked(path, ack)
    assert acked >= 1000                                      # it got well into the run before the limit


def test_a_full_disk_while_the_hdf5_file_is_built_keeps_the_journal(tmp_path: Path) -> None:
    """The journal took every commit; the disk fills before the close builds the HDF5 file. The build fails
    (in its own process: libhdf5 may crash on it), the journal stays whole, the message says so, and the file
    is built once there is space again."""
    from rramlab.analysis.dataset import DatasetWriteError, RunMetadata, RunWriter
    from rramlab.analysis.dataset_recover import recover

    with small_filesystem("8m") as fs:
        path = fs / "run.h5"
        w = RunWriter(path, metadata=RunMetadata(recipe="r", station="s"))
        t = w.table("reads", {"v": ("f8", "V"), "label": (str, "")})
        for k in range(40):
            t.extend({"v": [float(i) for i in range(k * 1000, k * 1000 + 1000)],
                      "label": [f"row {i}" for i in range(k * 1000, k * 1000 + 1000)]})
            w.durability_point()
        stop = threading.Event()
        fill(fs, stop)                                          # the disk is full now
        with open(fs / "filler.bin", "ab") as f:     # room for the stop record, not for the whole HDF5 file
            f.truncate(f.tell() - 1400 * 1024)
        with pytest.raises(DatasetWriteError, match="disk full.*HDF5 file not built") as info:
            w.close("completed")
        assert f"every committed row is in {path}.journal" in str(info.value)
        assert not path.exists() and not [p for p in fs.iterdir() if "partial" in p.name]   # no half-built file
        run = open_run(path)
        assert run.source == "journal" and run.exit_status == "completed" and len(run.table("reads")) == 40000
        (fs / "filler.bin").unlink()
        assert recover(path).rows == {"reads": 40000} and open_run(path).source == "hdf5"


RECIPE = """
[recipe]
name = "forming under a filling disk"
[[steps]]
protocol = "forming"
cells = "all"
[steps.params]
current_limit = 1e-3
"""


def test_run_on_a_filling_disk_stops_safely_with_a_true_message(tmp_path: Path) -> None:
    """`rramlab run` while another process fills the disk: exit 1, the message says where the data is, the
    bench is safe (bench log), every committed cell is readable, and `recover` builds the file afterwards."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    station = tmp_path / "station.toml"
    text = (ROOT / "examples" / "sim_2636b_707b.toml").read_text()
    station.write_text(text)
    log = tmp_path / "bench.json"
    with small_filesystem("16m") as fs:
        out = fs / "run.h5"
        stop = threading.Event()
        env = dict(os.environ, RRAMLAB_BENCH_LOG=str(log), RRAMLAB_LOCK_DIR=str(tmp_path / "locks"))
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "rramlab.protocols.cli", "run",
                                 str(recipe), "--station", str(station), "--out", str(out), "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(Exception):
                if len(open_run(out).table("forming")) >= 4:
                    break
            time.sleep(0.05)
        filler = threading.Thread(target=fill, args=(fs, stop))
        filler.start()
        stdout, _ = proc.communicate(timeout=180)
        stop.set()
        filler.join()
        text = " ".join(stdout.split())
        assert proc.returncode == 1, stdout
        assert "Traceback" not in stdout and "Fatal Python error" not in stdout, stdout
        assert "disk full" in text and f"every committed row is in {out}.journal" in text, stdout
        assert "Outputs off, relays open." in text, stdout
        bench = json.loads(log.read_text())
        assert all(o["output"] == 0 for o in bench["final"]["outputs"].values())
        assert all(not closed for closed in bench["final"]["closed"].values())
        assert [e for e in bench["events"] if e["kind"] == "hot_switch"] == []
        run = open_run(out)                                   # on the full disk: read from the journal
        forming = run.table("forming")
        assert 4 <= len(forming) < 64 and run.exit_status == "incomplete"
        cells = {(int(r), int(c)) for r, c in zip(forming["row"], forming["col"], strict=True)}
        assert len(cells) == len(forming)
        sweep = run.table("forming_sweep")
        assert set(zip(sweep["row"], sweep["col"], strict=True)) == cells      # whole cells only
        (fs / "filler.bin").unlink()
        rec = subprocess.run([sys.executable, "-m", "rramlab.protocols.cli", "recover", str(out)],
                             capture_output=True, text=True, env=env)
        assert rec.returncode == 0, rec.stdout + rec.stderr
        assert len(open_run(out).table("forming")) == len(forming) and not Path(f"{out}.journal").exists()


def test_a_run_that_cannot_fit_is_refused_with_the_numbers_before_anything_is_sent(tmp_path: Path) -> None:
    log = tmp_path / "bench.json"
    env = dict(os.environ, RRAMLAB_BENCH_LOG=str(log), RRAMLAB_LOCK_DIR=str(tmp_path / "locks"))
    with small_filesystem("3m") as fs:
        proc = subprocess.run([sys.executable, "-m", "rramlab.protocols.cli", "demo", "--out", str(fs / "d.h5"),
                               "--quiet"], capture_output=True, text=True, env=env, timeout=120)
        text = " ".join(proc.stdout.split())
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "MiB free; this run needs about" in text and "Traceback" not in text, text
        assert sorted(p.name for p in fs.iterdir()) == []               # no file, no journal
    assert not log.exists() or json.loads(log.read_text())["events"] == []   # no bench was even opened


def test_json_and_figures_on_a_full_disk_are_whole_or_absent(tmp_path: Path) -> None:
    """The run file is on a roomy disk; --json and --figures point at a full one: a message, exit 1, and no
    0-byte or truncated output."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace('cells = "all"', 'cells = [[0, 0], [0, 1]]'))
    env = dict(os.environ, RRAMLAB_LOCK_DIR=str(tmp_path / "locks"), COLUMNS="400")
    with small_filesystem("1m") as fs:
        stop = threading.Event()
        (fs / "figs").mkdir()
        fill(fs, stop)
        proc = subprocess.run([sys.executable, "-m", "rramlab.protocols.cli", "run", str(recipe), "--station",
                               str(ROOT / "examples" / "sim_2636b_707b.toml"), "--out", str(tmp_path / "run.h5"),
                               "--json", str(fs / "summary.json"), "--figures", str(fs / "figs"), "--quiet"],
                              capture_output=True, text=True, env=env, timeout=120)
        text = " ".join(proc.stdout.split())
        assert proc.returncode == 1 and "Traceback" not in text, proc.stdout + proc.stderr
        assert f"--json {fs / 'summary.json'} not written: No space left on device" in text, text
        assert "--figures" in text and "not written" in text, text
        assert sorted(p.name for p in fs.iterdir()) == ["figs", "filler.bin"]
        assert list((fs / "figs").iterdir()) == []
    assert open_run(tmp_path / "run.h5").exit_status == "completed"      # the run itself is whole
