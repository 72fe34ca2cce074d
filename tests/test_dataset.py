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

from rramlab.analysis import dataset_writer
from rramlab.analysis.dataset import (
    SCHEMA_VERSION,
    DatasetWriteError,
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
    assert run.schema_version == SCHEMA_VERSION == 1
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
        assert f.attrs["rramlab_schema"] == 1 and f["run"].attrs["rramlab_schema"] == 1
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


# -- batching and durability -----------------------------------------------------------------


@pytest.fixture
def write_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Row counts of every HDF5 write of table data (the writer's only raw-data write path)."""
    sizes: list[int] = []
    real = dataset_writer._h5_write

    def spy(dataset_id, start, data, mtype):  # type: ignore[no-untyped-def]
        sizes.append(len(data))
        real(dataset_id, start, data, mtype)

    monkeypatch.setattr(dataset_writer, "_h5_write", spy)
    return sizes


def test_batched_writes_with_durability_every_100_rows(tmp_path: Path, write_spy: list[int]) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS)
        for i, r in enumerate(rows(1000)):
            t.append(r)
            if i % 100 == 99:
                w.durability_point()
                assert t.committed_rows == i + 1 and t.buffered_rows == 0
    assert write_spy == [100] * 10
    assert min(write_spy) >= 64
    assert sum(write_spy) == len(open_run(path).table("reads")) == 1000


def test_batches_fill_to_batch_rows_between_durability_points(tmp_path: Path, write_spy: list[int]) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, metadata=meta(), batch_rows=256) as w:
        t = w.table("reads", COLUMNS)
        for r in rows(1000):
            t.append(r)
        assert t.committed_rows == 0 and t.written_rows == 768 and t.buffered_rows == 232
        t.extend(rows(300, 1000))  # buffer + block go out in one write
        assert t.buffered_rows == 0
    assert write_spy == [256, 256, 256, 532]
    check_rows(open_run(path).table("reads"), 1300)


def test_fsync_at_every_durability_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(dataset_writer.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    with RunWriter(tmp_path / "run.h5", metadata=meta(), durability="fsync") as w:
        t = w.table("reads", COLUMNS)  # open + table creation: 2 syncs
        assert len(calls) == 2
        for r in rows(5):
            t.append(r)
            w.durability_point()
        assert len(calls) == 7
    assert len(calls) == 8  # close
    with pytest.raises(ValueError, match="durability"):
        RunWriter(tmp_path / "other.h5", metadata=meta(), durability="sometimes")


def _last_ack(ack: Path) -> int | None:
    text = ack.read_text() if ack.exists() else ""
    lines = text.split("\n")[:-1]  # only complete lines
    return int(lines[-1]) if lines else None


def _check_crashed_file(path: Path, acked: int, seed: int) -> int:
    with h5py.File(path, "r") as f:  # plain h5py, default locking
        assert f.attrs["rramlab_schema"] == 1
        run_attrs = f["run"].attrs
        assert "exit_status" not in run_attrs and "stop_time" not in run_attrs
        assert f["run/recipe"][()].decode("utf-8") == RECIPE
        assert f["run/station"][()].decode("utf-8") == STATION
        assert json.loads(run_attrs["instruments"]) == {"smu": IDN}
        assert run_attrs["seed"] == seed
        ds = f["tables/reads"]
        committed = int(ds.attrs["committed_rows"])
        assert ds.shape[0] >= committed >= acked
        raw = ds[:committed]
    assert np.array_equal(raw["seq"], np.arange(committed))
    run = open_run(path)
    assert run.exit_status == "incomplete"
    assert run.metadata["extras"] == {"trial": seed} and run.metadata["recipe"] == RECIPE
    df = run.table("reads")
    assert len(df) >= acked
    assert list(df["seq"]) == list(range(len(df)))
    expected = [expected_row(s) for s in range(len(df))]
    assert np.array_equal(df["voltage"].to_numpy(), [e["voltage"] for e in expected])
    assert list(df["code"]) == [e["code"] for e in expected]
    assert list(df["flag"]) == [e["flag"] for e in expected]
    assert list(df["label"]) == [e["label"] for e in expected]
    assert units(df, "voltage") == "V"
    return len(df)


def test_sigkill_keeps_metadata_and_committed_rows(tmp_path: Path) -> None:
    """kill -9 at random moments: every acknowledged row survives, the run reads "incomplete"."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    rng = random.Random(20240521)
    trials = [("open", "flush")] + [("rows", "flush" if i % 2 else "fsync") for i in range(5)]
    survived = []
    for trial, (mode, durability) in enumerate(trials):
        path, ack = tmp_path / f"crash{trial}.h5", tmp_path / f"crash{trial}.ack"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD_SRC,
                str(path),
                str(ack),
                str(trial),
                mode,
                durability,
                RECIPE,
                STATION,
                IDN,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
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
        n = _check_crashed_file(path, acked, trial)
        if mode == "rows":
            assert acked > 0  # the kill landed while rows were being written
        survived.append((acked, n))
    assert survived[0] == (0, 0)


def test_close_after_exception_keeps_rows_and_records_failure(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="relay stuck"), RunWriter(path, metadata=meta()) as w:
        t = w.table("reads", COLUMNS)
        other = w.table("events", {"what": (str, "")})
        for r in rows(150):  # no durability point: everything is still buffered
            t.append(r)
        other.append({"what": "hot switch"})
        assert t.committed_rows == 0 and t.written_rows == 0
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


def test_close_reports_rows_it_could_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.h5"
    w = RunWriter(path, metadata=meta())
    t = w.table("reads", COLUMNS)
    t.extend(rows(10))
    w.durability_point()
    t.extend(rows(5, 10))

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dataset_writer, "_h5_write", disk_full)
    with pytest.raises(DatasetWriteError, match="5 rows not written"):
        w.close("completed")
    run = open_run(path)
    assert run.exit_status == "completed" and "No space left" in run.exit_message
    check_rows(run.table("reads"), 10)


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
    with pytest.raises(SchemaVersionError, match=r"schema version 2.*up to 1"):
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
