"""Tests of the run file (rramlab.analysis.dataset): round trip, batching, crash consistency."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest

from rramlab.analysis.dataset import (
    SCHEMA_VERSION,
    NotARunFileError,
    RunMetadata,
    RunWriter,
    SchemaVersionError,
    open_run,
    units,
)

RECIPE = '[run]\nname = "forming µ-test"\n[[steps]]\nprotocol = "forming"\nv_max = 3.5\n'
STATION = '[instruments.smu]\ndriver = "keithley2450"\naddress = "TCPIP0::10.0.0.5::inst0::INSTR"\n'
IDN = "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"

COLUMNS = {
    "voltage": ("f8", "V", "BL pulse amplitude"),
    "current": ("f4", "A", "read current"),
    "code": ("i4", "", "iteration"),
    "word": ("u2", "", "word line"),
    "compliance": (bool, "bool", "SMU in compliance"),
    "label": (str, "", "free text"),
}

# Deterministic row content as a function of seq, shared with the crash-test child process.
ROW_SRC = """
def expected_row(seq):
    return {
        "voltage": seq * 0.001 - 1.0,
        "code": (seq * 7919) % 1000003,
        "flag": seq % 3 == 0,
        "label": f"r{seq}-µ",
    }
"""
_ns: dict = {}
exec(ROW_SRC, _ns)
expected_row = _ns["expected_row"]

CHILD_SRC = (
    ROW_SRC
    + """
import random, sys, time
from rramlab.analysis.dataset_writer import RunMetadata, RunWriter

path, ack_path, seed, mode, durability = sys.argv[1:6]
rng = random.Random(int(seed))
meta = RunMetadata(recipe=sys.argv[6], station=sys.argv[7], instruments={"smu": sys.argv[8]},
                   seed=int(seed), extras={"trial": int(seed)})
writer = RunWriter(path, metadata=meta, durability=durability, batch_rows=64)
table = writer.table("reads", {
    "voltage": ("f8", "V", ""), "code": ("i8", "", ""),
    "flag": (bool, "bool", ""), "label": (str, "", ""),
})
with open(ack_path, "a") as ack:
    ack.write("0\\n")
    ack.flush()
    deadline = time.monotonic() + 30
    if mode == "open":
        time.sleep(30)
    seq = 0
    while time.monotonic() < deadline:
        for _ in range(rng.randint(1, 300)):
            table.append(expected_row(seq))
            seq += 1
        writer.durability_point()
        ack.write(f"{table.committed_rows}\\n")
        ack.flush()
"""
)


def meta(**kw: object) -> RunMetadata:
    base = dict(
        recipe=RECIPE,
        station=STATION,
        instruments={"smu": IDN, "matrix": "KEITHLEY,707B,1,2"},
        seed=1234,
        extras={"operator": "ci", "wafer": {"id": "W7", "die": np.int64(3)}},
    )
    base.update(kw)
    return RunMetadata(**base)  # type: ignore[arg-type]


def rows(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "voltage": 0.5 + 0.01 * i,
            "current": np.float32(1e-6 * (i + 1)),
            "code": -i,
            "word": i % 64,
            "compliance": i % 2 == 0,
            "label": f"cell-{i}-Ω",
        }
        for i in range(start, start + n)
    ]


def check_rows(df, n: int) -> None:
    expected = rows(n)
    assert list(df["seq"]) == list(range(n))
    assert np.array_equal(df["voltage"].to_numpy(), [r["voltage"] for r in expected])
    assert np.array_equal(df["current"].to_numpy(), np.array([r["current"] for r in expected], np.float32))
    assert list(df["code"]) == [r["code"] for r in expected]
    assert list(df["word"]) == [r["word"] for r in expected]
    assert list(df["compliance"]) == [r["compliance"] for r in expected]
    assert list(df["label"]) == [r["label"] for r in expected]


# -- round trip ------------------------------------------------------------------------------


def test_metadata_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    before = time.time()
    with RunWriter(path, metadata=meta(seed=2**70)):
        pass
    run = open_run(path)
    m = run.metadata
    assert run.schema_version == SCHEMA_VERSION == 2
    assert m["recipe"] == RECIPE and m["station"] == STATION
    assert m["instruments"] == {"smu": IDN, "matrix": "KEITHLEY,707B,1,2"}
    assert m["seed"] == 2**70
    assert m["extras"] == {"operator": "ci", "wafer": {"id": "W7", "die": 3}}
    assert m["package_version"] and m["host"] and len(m["run_id"]) == 32
    start = datetime.fromisoformat(m["start_time"])
    assert start.utcoffset() == timezone.utc.utcoffset(None)
    assert abs(start.timestamp() - m["start_time_unix"]) < 1e-3
    assert before - 1 <= m["start_time_unix"] <= m["stop_time_unix"] <= time.time() + 1
    assert run.exit_status == "completed" and run.exit_message == ""
    with h5py.File(path, "r") as f:  # plain h5py sees the same
        assert f.attrs["rramlab_schema"] == 2 and f["run"].attrs["rramlab_schema"] == 2
        assert f["run/recipe"][()].decode("utf-8") == RECIPE
        assert json.loads(f["run"].attrs["instruments"])["smu"] == IDN
        assert f["run"].attrs["exit_status"] == "completed"


def test_metadata_from_dict_and_seed_none(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata={"recipe": RECIPE, "seed": None, "chuck_temperature": 300.0}):
        pass
    m = open_run(path).metadata
    assert m["seed"] is None
    assert m["extras"] == {"chuck_temperature": 300.0}
    assert m["station"] == "" and m["instruments"] == {}


def test_table_round_trip_dtypes_and_units(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS, description="verify reads")
        for r in rows(10):
            t.append(r)
        block = rows(20, 10)
        t.extend({k: np.array([r[k] for r in block]) for k in COLUMNS})
        t.extend(rows(5, 30))
        assert t.rows == 35
    run = open_run(path)
    assert run.tables == ["reads"]
    df = run.table("reads")
    check_rows(df, 35)
    assert [str(df[c].dtype) for c in ["seq", "voltage", "current", "code", "word", "compliance"]] == [
        "int64",
        "float64",
        "float32",
        "int32",
        "uint16",
        "bool",
    ]
    expected_units = {
        "seq": "",
        "voltage": "V",
        "current": "A",
        "code": "",
        "word": "",
        "compliance": "bool",
        "label": "",
    }
    assert df.attrs["units"] == expected_units
    assert units(df, "current") == "A" and units(df, "compliance") == "bool"
    assert df.attrs["descriptions"]["voltage"] == "BL pulse amplitude"
    with pytest.raises(KeyError):
        units(df, "nope")
    with h5py.File(path, "r") as f:
        ds = f["tables/reads"]
        assert ds.maxshape == (None,) and ds.chunks is not None
        assert ds.dtype.names == ("seq", *COLUMNS)
        assert json.loads(ds.attrs["units"]) == expected_units
        assert ds.attrs["committed_rows"] == 35
        assert ds[:]["label"][3].decode("utf-8") == "cell-3-Ω"
        assert h5py.check_string_dtype(ds.dtype["label"]).encoding == "utf-8"
        missing: list[str] = []
        f.visititems(
            lambda name, obj: (
                missing.append(name) if isinstance(obj, h5py.Dataset) and "units" not in obj.attrs else None
            )
        )
        assert missing == []


def test_steps_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta()) as w:
        with w.step("forming", "forming", {"v_max": 3.5, "attempts": 3}, cells=[(0, 1), (2, 3)]) as s:
            s.table("forming_pulses", COLUMNS).append(rows(1)[0])
        with pytest.raises(RuntimeError), w.step("retention", "retention", {"reads": 10}, []):
            raise RuntimeError("probe lifted")
        w.table("loose", {"x": ("f8", "")})
    run = open_run(path)
    assert [(s.index, s.name, s.status) for s in run.steps] == [
        (0, "forming", "completed"),
        (1, "retention", "failed"),
    ]
    forming, retention = run.steps
    assert forming.parameters == {"v_max": 3.5, "attempts": 3}
    assert forming.cells.tolist() == [[0, 1], [2, 3]] and forming.tables == ["forming_pulses"]
    assert "probe lifted" in retention.message and retention.cells.shape == (0, 2)
    assert run.table("forming_pulses").attrs["step"] == "000_forming"
    assert run.table("loose").attrs["step"] == ""
    with h5py.File(path, "r") as f:
        assert set(f["steps"]) == {"000_forming", "001_retention"}
        assert json.loads(f["steps/000_forming"].attrs["parameters"])["v_max"] == 3.5


# -- durability: the journal -------------------------------------------------------------------


def test_rows_are_committed_at_durability_points_and_readers_see_only_those(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS)
        s = w.step("form", "forming", {}, cells=[(0, 0), (0, 1)])
        for i, r in enumerate(rows(1000)):
            t.append(r)
            if i % 100 == 99:
                w.durability_point(units=[(s.index, str(i // 100))], ledger={(0, 0): i + 1})
                assert t.committed_rows == i + 1 and t.buffered_rows == 0
        t.extend(rows(30, 1000))                          # buffered, not committed
        assert t.committed_rows == 1000 and t.buffered_rows == 30
        live = open_run(path)                             # a second reader while the run is live
        assert live.source == "journal" and live.exit_status == "incomplete"
        check_rows(live.table("reads"), 1000)
        assert live.state.units == {0: {str(k) for k in range(10)}} and live.state.ledger == {(0, 0): 1000}
        assert not path.exists()                          # the HDF5 file is built at the close, whole
    run = open_run(path)
    assert run.source == "hdf5" and not Path(f"{path}.journal").exists()
    check_rows(run.table("reads"), 1030)
    assert run.state.ledger == {(0, 0): 1000} and run.steps[0].status == "completed"


def test_write_ahead_records_commit_at_once(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    w = RunWriter(path, metadata=meta())
    w.step("pv", "program_verify", {})
    w.mark_in_flight((2, 3), 0, None)
    w.reserve_pulses((2, 3), 64)
    run = open_run(path)
    assert run.state.in_flight == [(2, 3)] and run.state.ledger == {(2, 3): 64}   # in flight: the reservation
    w.durability_point(ledger={(2, 3): 5})
    run = open_run(path)
    assert run.state.in_flight == [] and run.state.ledger == {(2, 3): 5}          # committed since: exact
    assert run.state.ledger_rows == [(2, 3, 5, 64)]
    w.close("interrupted")
    assert open_run(path).state.ledger_rows == [(2, 3, 5, 64)]


def test_durability_modes(tmp_path: Path) -> None:
    """flush: SQLite synchronous=NORMAL (a killed process loses nothing committed); fsync: FULL (each commit is
    fsynced, SQLite's documented contract; counted with strace in test_power_loss_policy_fsyncs_every_commit)."""
    for mode, level in (("flush", 1), ("fsync", 2)):
        with RunWriter(tmp_path / f"{mode}.h5", metadata=meta(), durability=mode) as w:
            assert w._journal.connection.execute("PRAGMA synchronous").fetchone()[0] == level
            assert w._journal.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert open_run(tmp_path / f"{mode}.h5").metadata["durability"] == mode
    with pytest.raises(ValueError, match="durability"):
        RunWriter(tmp_path / "other.h5", metadata=meta(), durability="sometimes")


POWER_CHILD = """
import sys
from rramlab.analysis.dataset_writer import RunMetadata, RunWriter
w = RunWriter(sys.argv[1], metadata=RunMetadata(), durability=sys.argv[2])
t = w.table("reads", {"v": ("f8", "V")})
for i in range(20):
    t.append({"v": float(i)})
    w.durability_point()
w.close("completed", build=False)
"""


def test_power_loss_policy_fsyncs_every_commit(tmp_path: Path) -> None:
    """With durability="fsync" every durability point reaches the disk (fsync/fdatasync per commit, counted by
    strace on the real system calls); with "flush" commits do not wait for the disk."""
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed: the system calls cannot be counted here")
    counts = {}
    for mode in ("flush", "fsync"):
        log = tmp_path / f"{mode}.strace"
        proc = subprocess.run(["strace", "-f", "-e", "trace=fsync,fdatasync", "-o", str(log), sys.executable, "-c",
                               POWER_CHILD, str(tmp_path / f"{mode}.h5"), mode], capture_output=True, text=True)
        if proc.returncode != 0 and "ptrace" in proc.stderr:
            pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
        assert proc.returncode == 0, proc.stderr
        counts[mode] = sum(1 for line in log.read_text().splitlines() if "sync(" in line and "= 0" in line)
    assert counts["fsync"] >= 20 > counts["flush"], counts


def _last_ack(ack: Path) -> int | None:
    text = ack.read_text() if ack.exists() else ""
    lines = text.split("\n")[:-1]  # only complete lines
    return int(lines[-1]) if lines else None


def _check_crashed_run(path: Path, acked: int, seed: int) -> int:
    run = open_run(path)
    assert run.source == "journal" and run.exit_status == "incomplete"
    assert run.metadata["recipe"] == RECIPE and run.metadata["station"] == STATION
    assert run.metadata["instruments"] == {"smu": IDN} and run.metadata["seed"] == seed
    assert run.metadata["extras"] == {"trial": seed}
    df = run.table("reads")
    assert len(df) >= acked and df.attrs["skipped"] == []
    assert list(df["seq"]) == list(range(len(df)))
    expected = [expected_row(s) for s in range(len(df))]
    assert np.array_equal(df["voltage"].to_numpy(), [e["voltage"] for e in expected])
    assert list(df["code"]) == [e["code"] for e in expected]
    assert list(df["flag"]) == [e["flag"] for e in expected]
    assert list(df["label"]) == [e["label"] for e in expected]
    assert units(df, "voltage") == "V"
    return len(df)


def test_sigkill_keeps_metadata_and_committed_rows(tmp_path: Path) -> None:
    """kill -9 at random moments: every acknowledged row survives, the run reads "incomplete", and
    `recover` builds an HDF5 file that plain h5py reads with the same rows."""
    from rramlab.analysis.dataset_recover import recover

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    rng = random.Random(20240521)
    trials = [("open", "flush")] + [("rows", "flush" if i % 2 else "fsync") for i in range(5)]
    survived = []
    for trial, (mode, durability) in enumerate(trials):
        path, ack = tmp_path / f"crash{trial}.h5", tmp_path / f"crash{trial}.ack"
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_SRC, str(path), str(ack), str(trial), mode, durability, RECIPE, STATION, IDN],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while _last_ack(ack) is None:
                assert proc.poll() is None, proc.communicate()[1].decode()
                assert time.monotonic() < deadline, "writer did not start"
                time.sleep(0.005)
            if mode == "rows":
                time.sleep(rng.uniform(0.01, 0.3))
            assert proc.poll() is None, proc.communicate()[1].decode()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
        assert proc.returncode == -signal.SIGKILL
        acked = _last_ack(ack)
        assert acked is not None
        n = _check_crashed_run(path, acked, trial)
        if mode == "rows":
            assert acked > 0  # the kill landed while rows were being written
        report = recover(path)
        assert report.from_journal and report.rows == {"reads": n} and report.skipped == {}
        with h5py.File(path, "r") as f:                 # plain h5py, default locking
            assert f.attrs["rramlab_schema"] == SCHEMA_VERSION and "exit_status" not in f["run"].attrs
            assert f["tables/reads"].shape == (n,) and f["tables/reads"].attrs["committed_rows"] == n
        assert _check_rows_equal(open_run(path).table("reads"), n)
        survived.append((acked, n))
    assert survived[0] == (0, 0)


def _check_rows_equal(df, n: int) -> bool:  # noqa: ANN001
    expected = [expected_row(s) for s in range(n)]
    return (list(df["seq"]) == list(range(n)) and list(df["label"]) == [e["label"] for e in expected]
            and np.array_equal(df["voltage"].to_numpy(), [e["voltage"] for e in expected]))


def test_close_after_exception_keeps_rows_and_records_failure(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="relay stuck"), RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS)
        other = w.table("events", {"what": (str, "")})
        for r in rows(150):  # no durability point: everything is still buffered
            t.append(r)
        other.append({"what": "hot switch"})
        assert t.committed_rows == 0 and t.buffered_rows == 150
        raise RuntimeError("relay stuck closed on row 3")
    assert w.closed and t.committed_rows == 150
    run = open_run(path)
    assert run.exit_status == "failed"
    assert run.exit_message == "RuntimeError: relay stuck closed on row 3"
    assert "relay stuck" in run.metadata["exit_traceback"] and "Traceback" in run.metadata["exit_traceback"]
    assert run.metadata["stop_time"] is not None
    check_rows(run.table("reads"), 150)
    assert list(run.table("events")["what"]) == ["hot switch"]


def test_close_in_finally_and_statuses(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    w = RunWriter(path, metadata=meta())
    try:
        t = w.table("reads", COLUMNS)
        t.extend(rows(3))
        with pytest.raises(ValueError, match="exit_status"):
            w.close("crashed")
    finally:
        w.close("aborted", "SIGTERM")
    w.close("completed")  # second close does nothing
    assert open_run(path).exit_status == "aborted" and open_run(path).exit_message == "SIGTERM"
    with pytest.raises(RuntimeError, match="closed"):
        t.append(rows(1)[0])
    with pytest.raises(KeyboardInterrupt), RunWriter(tmp_path / "ki.h5", metadata=meta()):
        raise KeyboardInterrupt
    assert open_run(tmp_path / "ki.h5").exit_status == "interrupted"


def test_a_second_writer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    w = RunWriter(path, metadata=meta(seed=1))
    with pytest.raises(FileExistsError, match="another run is writing"):
        RunWriter(path, metadata=meta(seed=2))
    w.close("completed")
    assert open_run(path).metadata["seed"] == 1


# -- damaged files ---------------------------------------------------------------------------


def _chunked_run(path: Path, n: int = 5000) -> None:
    with RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS)
        t.extend(rows(n))


def test_a_bad_chunk_costs_only_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _chunked_run(path)
    with h5py.File(path, "r") as f:
        ds = f["tables/reads"]
        chunk = ds.chunks[0]
        info = ds.id.get_chunk_info(1)                 # the second chunk: rows chunk..2*chunk-1
    with open(path, "r+b") as fh:                      # garble it on disk, as a bad sector would
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    with pytest.warns(UserWarning, match="unreadable, skipped"):
        df = open_run(path).table("reads")
    kept = list(range(chunk)) + list(range(2 * chunk, 5000))
    assert list(df["seq"]) == kept                      # every good row, nothing invented
    assert df.attrs["skipped"] and str(chunk) in df.attrs["skipped"][0]
    good = [r for r in rows(5000) if True]
    assert list(df["label"]) == [good[i]["label"] for i in kept]


def test_truncated_file_is_reported_and_salvaged(tmp_path: Path) -> None:
    from rramlab.analysis.dataset import DamagedFileError
    from rramlab.analysis.dataset_recover import recover

    path = tmp_path / "run.h5"
    _chunked_run(path, 20000)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises((DamagedFileError, OSError)):
        open_run(path).table("reads")
    with pytest.raises(Exception, match="nothing could be salvaged|damaged"):
        recover(path)                                   # the superblock points past the end: nothing to read
    assert path.stat().st_size == size // 2             # the damaged file is kept as it was


def test_recover_salvages_a_file_with_a_bad_chunk(tmp_path: Path) -> None:
    from rramlab.analysis.dataset_recover import recover

    path = tmp_path / "run.h5"
    _chunked_run(path)
    with h5py.File(path, "r") as f:
        info = f["tables/reads"].id.get_chunk_info(0)
        chunk = f["tables/reads"].chunks[0]
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\x00\x13" * (info.size // 2))
    report = recover(path)
    assert report.out.endswith("run.recovered.h5") and not report.from_journal
    assert report.rows == {"reads": 5000 - chunk} and report.skipped["reads"]
    new = open_run(report.out)
    df = new.table("reads")
    assert len(df) == 5000 - chunk and list(df["seq"]) == list(range(5000 - chunk))      # renumbered
    assert list(df["label"]) == [r["label"] for r in rows(5000)[chunk:]]
    assert new.metadata["recipe"] == RECIPE and new.exit_status == "completed"


def test_a_damaged_journal_batch_is_skipped_and_said(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "run.h5"
    w = RunWriter(path, metadata=meta())
    t = w.table("reads", COLUMNS)
    for k in range(3):
        t.extend(rows(10, 10 * k))
        w.durability_point()
    con = sqlite3.connect(f"{path}.journal")                 # one flipped bit in the second batch, as on bad media
    (data,) = con.execute("SELECT data FROM batches WHERE first_seq = 10").fetchone()
    bad = bytearray(data)
    bad[20] ^= 0x04
    con.execute("UPDATE batches SET data = ? WHERE first_seq = 10", (bytes(bad),))
    con.commit()
    con.close()
    with pytest.warns(UserWarning, match="checksum mismatch"):
        df = open_run(path).table("reads")
    assert list(df["seq"]) == list(range(10)) + list(range(20, 30))
    w.close("completed")


# -- refusals and validation -----------------------------------------------------------------


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta(seed=1)):
        pass
    with pytest.raises(FileExistsError):
        RunWriter(path, metadata=meta(seed=2))
    assert open_run(path).metadata["seed"] == 1  # untouched
    with RunWriter(path, metadata=meta(seed=3), overwrite=True):
        pass
    assert open_run(path).metadata["seed"] == 3


def test_refuses_future_schema_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta()):
        pass
    with h5py.File(path, "r+") as f:
        f.attrs["rramlab_schema"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*up to {SCHEMA_VERSION}"):
        open_run(path)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(NotARunFileError):
        open_run(foreign)


def test_column_declarations_are_checked(tmp_path: Path) -> None:
    with RunWriter(tmp_path / "run.h5", metadata=meta()) as w:
        with pytest.raises(ValueError, match="SI prefix"):
            w.table("a", {"g": ("f8", "uS")})
        with pytest.raises(ValueError, match="'bool'"):
            w.table("b", {"ok": (bool, "")})
        with pytest.raises(ValueError, match="bool"):
            w.table("c", {"n": ("i4", "bool")})
        with pytest.raises(ValueError, match="reserved"):
            w.table("d", {"seq": ("i8", "")})
        with pytest.raises(TypeError, match="not supported"):
            w.table("e", {"z": ("c16", "")})
        with pytest.raises(ValueError, match="invalid"):
            w.table("bad/name", {"x": ("f8", "")})
        w.table("ok", {"x": ("f8", "")})
        with pytest.raises(ValueError, match="exists"):
            w.table("ok", {"x": ("f8", "")})


def test_bad_rows_are_rejected_and_not_accepted(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS)
        t.append(rows(1)[0])
        good = rows(1, 1)[0]
        with pytest.raises(TypeError, match="'code'"):
            t.append({**good, "code": 1.7})  # would be truncated silently by numpy
        with pytest.raises(TypeError, match="'compliance'"):
            t.append({**good, "compliance": "no"})
        with pytest.raises(TypeError, match="'voltage'"):
            t.append({**good, "voltage": "1.5"})
        with pytest.raises(OverflowError):
            t.append({**good, "word": -1})
        with pytest.raises(ValueError, match="lacks"):
            t.append({k: v for k, v in good.items() if k != "label"})
        with pytest.raises(ValueError, match="unknown"):
            t.append({**good, "extra": 1})
        with pytest.raises(TypeError):  # one bad row: none of the batch is accepted
            t.extend([good, {**good, "code": "x"}])
        with pytest.raises(OverflowError):
            t.extend({**{k: np.array([good[k]] * 2) for k in COLUMNS}, "word": np.array([1, 70000])})
        assert t.rows == 1
        t.append(good)
    check_rows(open_run(path).table("reads"), 2)
