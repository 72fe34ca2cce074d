"""Record, replay, conform: a session recorded with ``rramlab run --record`` replays through
``?replay=FILE@rramlab`` to the same run file, a changed command makes the replay fail naming it, and
``rramlab conform`` sends the session to a fresh simulated bench and reports each reply that differs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import pyvisa
from pyvisa import constants, highlevel

from rramlab.analysis.dataset import open_run
from rramlab.drivers.recording import FORMAT, TranscriptError, read_transcript
from rramlab.drivers.station_config import default_station_text
from rramlab.protocols.cli import main
from rramlab.simulator.visa_library import RramlabVisaLibrary

SMU = "GPIB0::26::INSTR"
DEFAULT_LIBRARY = 'visa_library = "2636b_707b@rramlab"'

RECIPE = """
[recipe]
name = "record-replay"

[[steps]]
name = "forming"
protocol = "forming"
cells = [[0, 0], [0, 1]]
[steps.params]
current_limit = 1e-3
v_stop = 4.0
v_step = 0.01
gate_voltage = 1.2
reset_voltage = -1.4

[[steps]]
name = "map"
protocol = "read"
cells = [[0, 0], [0, 1], [1, 0], [1, 1]]
"""


def station(tmp: Path, name: str, library: str) -> Path:
    """The default simulated station file with every instrument on ``library``."""
    text = default_station_text()
    assert text.count(DEFAULT_LIBRARY) == 3
    path = tmp / f"{name}.toml"
    path.write_text(text.replace(DEFAULT_LIBRARY, f'visa_library = "{library}"'), encoding="utf-8")
    return path


def call(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the recipe on a fresh default bench, recorded: the folder holding recipe, rec.h5, s.jsonl."""
    tmp = tmp_path_factory.mktemp("record")
    (tmp / "recipe.toml").write_text(RECIPE, encoding="utf-8")
    st = station(tmp, "station", f"2636b_707b?tag=record-{tmp.name}@rramlab")
    code = main(["run", str(tmp / "recipe.toml"), "--station", str(st), "--out", str(tmp / "rec.h5"),
                 "--record", str(tmp / "s.jsonl"), "--quiet"])
    assert code == 0
    return tmp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    return tmp_path


def altered(src: Path, dst: Path, pick: Callable[[dict[str, Any]], bool], change: Callable[[str], str]) -> dict:
    """``src`` with the ``data`` of the first message ``pick`` accepts changed; that message as it was."""
    lines = src.read_text(encoding="utf-8").splitlines()
    for k, line in enumerate(lines[1:], 1):
        r = json.loads(line)
        if pick(r):
            lines[k] = json.dumps({**r, "data": change(r["data"])}, separators=(",", ":"))
            dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return r
    raise AssertionError("no message to alter")


def replay_libraries(path: Path) -> list[RramlabVisaLibrary]:
    return [lib for lib in highlevel.VisaLibraryBase._registry.values()
            if isinstance(lib, RramlabVisaLibrary) and f"replay={path}" in str(lib.library_path)]


# ------------------------------------------------------------------------------------------ recording
def test_the_transcript_holds_every_message_with_a_header(recorded: Path) -> None:
    t = read_transcript(recorded / "s.jsonl")
    assert t.header["format"] == FORMAT and t.header["rramlab_version"] and t.header["date"].endswith("+00:00")
    assert t.header["library"].startswith("2636b_707b?tag=record-")
    assert set(t.resources()) == {SMU, "GPIB0::16::INSTR", "TCPIP0::rramlab-bench::inst0::INSTR"}
    ops = [r["op"] for r in t.records]
    assert ops.count("open") == 3 and ops.count("close") == 3 and ops.count("clear") == 3   # Station.open clears
    assert [r["i"] for r in t.records] == list(range(1, len(t.records) + 1))
    assert all(r["t"] >= 0 and r["dt"] >= 0 for r in t.records)
    opened = next(r for r in t.records if r["op"] == "open")
    assert {"VI_ATTR_TMO_VALUE", "VI_ATTR_TERMCHAR", "VI_ATTR_TERMCHAR_EN"} <= set(opened["attrs"])
    clock = [m for m in t.messages() if m.op == "write" and m.data.startswith(b"CLOCk:TIME?")]
    assert clock, "the bench controller's clock queries are part of the session"


# --------------------------------------------------------------------------------------------- replay
def test_a_replayed_run_writes_the_same_tables(recorded: Path) -> None:
    transcript = recorded / "s.jsonl"
    st = station(recorded, "replay", f"?replay={transcript}@rramlab")
    code = main(["run", str(recorded / "recipe.toml"), "--station", str(st), "--out", str(recorded / "rep.h5"),
                 "--quiet"])
    assert code == 0
    a, b = open_run(recorded / "rec.h5"), open_run(recorded / "rep.h5")
    assert a.tables == b.tables and {"forming", "forming_sweep", "read"} <= set(a.tables)
    assert len(a.table("read")) == 4 and len(a.table("forming")) == 2
    for name in a.tables:                       # every column, the simulated times included
        pd.testing.assert_frame_equal(a.table(name), b.table(name), check_exact=True)
    assert b.exit_status == "completed"
    [library] = replay_libraries(transcript)
    assert library.port.remaining() == 0, "the replayed run sent the whole recorded session"


def test_a_changed_command_fails_the_replay_naming_both_sides(recorded: Path, workdir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = workdir / "bad.jsonl"
    was = altered(recorded / "s.jsonl", bad,
                  lambda r: r["op"] == "write" and r["resource"] == SMU and r["i"] > 100
                  and r["data"].startswith("smua.") and "levelv = " in r["data"],
                  lambda d: d.replace("levelv", "levelV", 1))
    st = station(workdir, "station", f"?replay={bad}@rramlab")
    code, out = call(capsys, ["run", str(recorded / "recipe.toml"), "--station", str(st), "--out", "x.h5",
                              "--quiet"])
    assert code == 1, out
    recorded_cmd, sent_cmd = was["data"].replace("levelv", "levelV", 1), was["data"]
    assert f"diverged at message #{was['i']} on {SMU}" in out, out
    assert f"recorded write {recorded_cmd!r}, sent write {sent_cmd!r}" in out, out
    assert "Traceback" not in out


def test_replay_serves_timeouts_polls_and_chunked_reads(tmp_path: Path) -> None:
    """The ``@rramlab_record`` backend by library path; the replay answers the same calls the same way,
    and a call out of order names the recorded message."""
    transcript = tmp_path / "p.jsonl"

    def session(spec: str, first: str = "print(localnode.model)") -> list[Any]:
        rm = pyvisa.ResourceManager(spec)
        try:
            inst = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
            out: list[Any] = [inst.query(first)]
            inst.timeout = 50
            with pytest.raises(pyvisa.VisaIOError) as e:
                inst.read()
            out += [e.value.error_code, inst.read_stb()]
            inst.write("print(12345678)")
            out.append(inst.read_raw(size=3))          # four reads of at most 3 bytes, one reply
            inst.clear()
            inst.close()
            return out
        finally:
            rm.close()

    live = session(f"{transcript}?backend=rramlab&tag={tmp_path.name}@rramlab_record")
    assert live[0] == "2636B" and live[1] == constants.VI_ERROR_TMO and live[3] == b"1.23457e+07\n"
    reads = [r for r in read_transcript(transcript).records if r["op"] == "read" and r.get("count") == 3]
    assert len(reads) == 4
    assert session(f"?replay={transcript}@rramlab") == live
    with pytest.raises(pyvisa.VisaIOError, match=r"message #\d+ on GPIB0::26::INSTR: recorded write "
                       r"'print\(localnode.model\)\\n', sent write 'print\(1\)\\n'"):
        session(f"?replay={transcript}&tag=2@rramlab", first="print(1)")


def test_replay_of_a_service_request_wait(tmp_path: Path) -> None:
    transcript = tmp_path / "srq.jsonl"
    srq = constants.EventType.service_request

    def session(spec: str) -> list[Any]:
        rm = pyvisa.ResourceManager(spec)
        try:
            inst = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
            inst.write("*SRE 16")
            inst.enable_event(srq, constants.EventMechanism.queue)
            inst.write("print(1)")
            response = inst.wait_on_event(srq, 1000)
            out = [response.event.event_type, inst.read_stb(), inst.read()]
            inst.disable_event(srq, constants.EventMechanism.queue)
            inst.close()
            return out
        finally:
            rm.close()

    live = session(f"{transcript}?backend=rramlab&tag={tmp_path.name}@rramlab_record")
    assert live[0] == srq and live[1] & 0x40 and live[2] == "1.00000e+00"
    assert session(f"?replay={transcript}@rramlab") == live


@pytest.mark.parametrize("query", ["replay=/x.jsonl&seed=3", "replay=/x.jsonl&server=unix:/s.sock", "replay="])
def test_a_replay_path_takes_a_transcript_and_nothing_else(query: str) -> None:
    with pytest.raises(ValueError, match="replay= takes exactly one transcript file"):
        pyvisa.ResourceManager(f"?{query}@rramlab")


def test_a_missing_transcript_is_named(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="nosuch.jsonl"):
        pyvisa.ResourceManager(f"?replay={tmp_path}/nosuch.jsonl@rramlab")


def test_record_never_overwrites(recorded: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = workdir / "s.jsonl"
    existing.write_text("keep", encoding="utf-8")
    st = station(workdir, "station", f"?tag=overwrite-{workdir.name}@rramlab")
    code, out = call(capsys, ["run", str(recorded / "recipe.toml"), "--station", str(st), "--out", "x.h5",
                              "--record", str(existing), "--quiet"])
    assert code == 2 and "--record" in out and "exists" in out, out
    assert existing.read_text(encoding="utf-8") == "keep" and not (workdir / "x.h5").exists()


# -------------------------------------------------------------------------------------------- conform
def test_conform_of_an_unmodified_recording_finds_no_difference(recorded: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = call(capsys, ["conform", str(recorded / "s.jsonl")])
    assert code == 0, out
    assert " 0 differ" in out
    replies = sum(1 for m in read_transcript(recorded / "s.jsonl").messages() if m.op == "read")
    assert f"{replies} replies compared" in out


def test_conform_reports_exactly_the_altered_reply(recorded: Path, workdir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = workdir / "reply.jsonl"
    was = altered(recorded / "s.jsonl", bad,
                  lambda r: r["op"] == "read" and r["resource"] == SMU and r["i"] > 300 and "e-" in r["data"],
                  lambda d: d.replace("e-", "E-", 1))
    code, out = call(capsys, ["conform", str(bad), "--json", "diff.json"])
    assert code == 1, out
    assert " 1 differ" in out and f"#{was['i']} {SMU}" in out
    report = json.loads((workdir / "diff.json").read_text(encoding="utf-8"))
    [d] = report["differences"]
    assert d["index"] == was["i"] and d["resource"] == SMU
    assert d["emulator"] == was["data"] and d["recorded"] == was["data"].replace("e-", "E-", 1)
    assert d["offset"] == was["data"].index("e-")
    assert d["command"].startswith(("smua.", "smub.", "print(", "rramlab_"))


def test_conform_ignores_replies_to_matching_commands(recorded: Path, workdir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = workdir / "reply.jsonl"
    altered(recorded / "s.jsonl", bad,
            lambda r: r["op"] == "read" and r["resource"] == SMU and r["i"] > 300 and "e-" in r["data"],
            lambda d: d.replace("e-", "E-", 1))
    code, out = call(capsys, ["conform", str(bad), "--ignore", r"measure\.i\(\)|^rramlab_"])
    assert code == 0 and " 0 differ" in out and "ignored" in out, out


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("not json\n", "not a JSON object"),
    ('{"format": "something else"}\n', "not an rramlab VISA transcript"),
    (f'{{"format": "{FORMAT}", "version": 99}}\n', "transcript version 99"),
    (f'{{"format": "{FORMAT}", "version": 1}}\n{{"i": 1, "resource": "GPIB0::26::INSTR", "op": "teleport"}}\n',
     ":2: op 'teleport'"),
])
def test_conform_refuses_a_bad_file(workdir: Path, capsys: pytest.CaptureFixture[str], text: str,
                                    message: str) -> None:
    (workdir / "bad.jsonl").write_text(text, encoding="utf-8")
    code, out = call(capsys, ["conform", "bad.jsonl"])
    assert code == 2 and message in out and "Traceback" not in out, out
    with pytest.raises(TranscriptError):
        read_transcript(workdir / "bad.jsonl")


def test_conform_refuses_a_missing_file_and_a_resource_the_bench_lacks(workdir: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out = call(capsys, ["conform", "nosuch.jsonl"])
    assert code == 2 and "nosuch.jsonl" in out, out
    (workdir / "other.jsonl").write_text(
        f'{{"format": "{FORMAT}", "version": 1, "library": ""}}\n'
        '{"i": 1, "t": 0, "dt": 0, "resource": "GPIB0::5::INSTR", "op": "write", "data": "*IDN?\\n"}\n',
        encoding="utf-8")
    code, out = call(capsys, ["conform", "other.jsonl"])
    assert code == 2 and "GPIB0::5::INSTR cannot be opened" in out and SMU in out, out
