"""Resume: `rramlab resume` continues a killed, interrupted or failed run in the same file.

The crash test runs the demo's six steps (forming, I-V, program-verify at 2 % and 0.2 %, retention,
endurance; fewer cells) on a bench server — a simulated bench in its own process, which keeps its die,
its clock and its outputs when the client is killed, as a real bench does — and kills the client with
``kill -9`` at three moments (during forming, during the 0.2 % program-verify with its RESET-first
pulses, in the middle of a cell's endurance cycling), resuming after each. The bench's transcript (every
message, with the pid of the process that sent it) is the independent witness.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_runner import SMALL

from rramlab.analysis.dataset import open_run
from rramlab.drivers.keithley707b import channel_name
from rramlab.drivers.station import Station
from rramlab.drivers.station_config import load_station_config, parse_station_config
from rramlab.protocols.preflight import prepare
from rramlab.protocols.recipe import parse_recipe
from rramlab.protocols.runner import PULSE_RESERVATION, ResumeRefused, resume_run, run_recipe

ROOT = Path(__file__).parents[1]
ENTRY = "import sys; from rramlab.protocols.entry import main; sys.exit(main())"
SEED = 11

SHORT_DEMO = """
[recipe]
name = "demo, short"
[[steps]]
name = "forming"
protocol = "forming"
cells = { rows = "0-1", cols = "0-7" }
[steps.params]
current_limit = 1e-3
gate_voltage = 1.2
reset_voltage = -1.4
[[steps]]
name = "iv"
protocol = "iv_sweep"
cells = [[0, 0], [0, 1]]
[steps.params]
current_limit = 1e-3
[[steps]]
name = "program_verify_2pct"
protocol = "program_verify"
cells = { first = 8 }
[steps.params]
acceptance = 0.02
target_min = 10e-6
target_max = 85e-6
rounds = 2
[[steps]]
name = "program_verify_0.2pct"
protocol = "program_verify"
cells = { first = 8 }
[steps.params]
acceptance = 0.002
target_min = 10e-6
target_max = 85e-6
rounds = 2
reset_first = 3
[[steps]]
name = "retention"
protocol = "retention"
cells = { first = 8 }
[steps.params]
t_first = 1.0
horizon = 1e6
points_per_decade = 2
[[steps]]
name = "endurance"
protocol = "endurance"
cells = { rows = "1", cols = "0-1" }
[steps.params]
pulses_per_half = 5
cycles = 200
points_per_decade = 3
"""


# ------------------------------------------------------------------------------------------ helpers
def _journal_count(journal: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute(sql).fetchone()
            return int(row[0] or 0) if row else 0
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", ENTRY, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool], after: float = 0.0,
               timeout: float = 240) -> None:
    """kill -9 ``after`` s once ``ready()`` (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the kill moment: {proc.communicate()[0]}"
        assert time.monotonic() < deadline, "the kill moment never came"
        time.sleep(0.005)
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


class Ops:
    """Per-cell operations from the bench transcript: ('pulse' | 'dc' | 'read', client pid), in order."""

    def __init__(self, transcript: list[dict], station_text: str) -> None:
        config = parse_station_config(station_text)
        cells = [(r, c) for r in range(config.rows) for c in range(config.cols)]
        by_points = {frozenset(channel_name(p) for p in config.wiring.array.cell_points(r, c)["matrix"]): (r, c)
                     for r, c in cells}
        self.ops: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
        self.first_writes: dict[int, list[str]] = defaultdict(list)
        # the largest pulse count one on-instrument verify call on the cell was allowed: the station charges it in
        # full before the call and corrects it from the reply, so a run stopped or killed around a call keeps it
        self.loop_max: dict[tuple[int, int], int] = defaultdict(int)
        cell, closed = None, set()
        loop: dict[int, tuple[tuple[int, int], bool]] = {}     # client -> (cell, reads first) of its open verify call
        for e in transcript:
            if e["direction"] == "read":
                if e["client"] in loop and e["data"].count(", ") >= 2:
                    at, reads_first = loop.pop(e["client"])
                    n = int(float(e["data"].split(", ")[-3]))       # the call's status row: readings
                    self.ops[at] += [("pulse", e["client"]), ("read", e["client"])] * (n - reads_first)
                continue
            if e["direction"] != "write":
                continue
            text, who = e["data"], e["client"]
            loop.pop(who, None)                                  # a loop whose reply never came
            if len(self.first_writes[who]) < 40:
                self.first_writes[who].append(text.strip())
            relays = re.findall(r"channel\.(open|close|exclusiveclose)\('([^']*)'\)", text)
            if relays:
                for action, names in relays:
                    points = set(names.split(","))
                    if names == "allslots":
                        closed = set()
                    elif action == "open":
                        closed -= points
                    elif action == "close":
                        closed |= points
                    else:
                        closed = points
                cell = by_points.get(frozenset(closed))
            elif text.startswith("rramlab_staircase(") and cell is not None:     # on-instrument staircase
                self.ops[cell].append(("dc", who))
            elif text.startswith("rramlab_verify(") and cell is not None:        # on-instrument program-verify
                args = text.strip().removesuffix(")").split(", ")           # …, max pulses, g_start or nil
                reads_first = args[7] == "nil"
                if reads_first:
                    self.ops[cell].append(("read", who))
                loop[who] = (cell, reads_first)
                self.loop_max[cell] = max(self.loop_max[cell], int(args[6]))
            elif "smua." in text and cell is not None:
                if "trigger.initiate()" in text:
                    self.ops[cell].append(("pulse", who))
                    if "measure.i()" in text:
                        self.ops[cell].append(("read", who))
                elif "source.compliance" in text:
                    self.ops[cell].append(("dc", who))
                elif "measure.i()" in text:
                    self.ops[cell].append(("read", who))

    def pulses(self, cell: tuple[int, int]) -> int:
        """Pulses the bench replied for (an on-instrument loop without its reply: unknown, <= :attr:`loop_max`)."""
        return sum(1 for kind, _ in self.ops[cell] if kind == "pulse")

    def unverified(self, pid: int) -> set[tuple[int, int]]:
        """Cells whose last energising operation by ``pid`` was not followed by a read by ``pid``."""
        out = set()
        for cell, ops in self.ops.items():
            mine = [kind for kind, who in ops if who == pid]
            last_energy = max((i for i, k in enumerate(mine) if k in ("pulse", "dc")), default=-1)
            last_read = max((i for i, k in enumerate(mine) if k == "read"), default=-1)
            if last_energy > last_read:
                out.add(cell)
        return out

    def first_op(self, cell: tuple[int, int], pid: int) -> str | None:
        return next((kind for kind, who in self.ops[cell] if who == pid), None)


# ------------------------------------------------------------------------------------------ the crash test
DEMO = (ROOT / "protocols" / "demo_recipe.toml").read_text()
_tags = itertools.count()


@pytest.mark.parametrize("recipe_text, at", [
    pytest.param(SHORT_DEMO, (6, 5, 8), id="demo steps, fewer cells"),
    pytest.param(DEMO, (20, 40, 12), id="the demo", marks=pytest.mark.slow),
])
def test_resume_after_kill_9_at_three_moments_of_the_demo(tmp_path: Path, recipe_text: str,
                                                          at: tuple[int, int, int]) -> None:
    """Kill during forming (after at[0] cells), during the 0.2 % program-verify (after at[1] programmings) and
    during endurance (after at[2] checkpoints), resuming after each."""
    from rramlab.simulator.server import BenchControl, BenchServerProcess

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_text)
    out = tmp_path / "run.h5"
    journal = Path(f"{out}.journal")
    env = dict(os.environ, RRAMLAB_LOCK_DIR=str(tmp_path / "locks"))
    with BenchServerProcess(f"?seed={SEED}&transcript=2000000") as server:
        station = tmp_path / "station.toml"
        station.write_text((ROOT / "examples" / "sim_2636b_707b.toml").read_text()
                           .replace('visa_library = "2636b_707b@rramlab"', f'visa_library = "{server.library}"'))
        pids: list[int] = []
        flying = " AND (SELECT COUNT(*) FROM in_flight) > 0"             # inside a unit, not between two
        moments = [
            f"SELECT COUNT(*) FROM units WHERE step = 0 HAVING COUNT(*) >= {at[0]}" + flying,           # forming
            f"SELECT COUNT(*) FROM units WHERE step = 3 HAVING COUNT(*) >= {at[1]}" + flying,           # PV 0.2 %
            f"SELECT SUM(n) FROM batches WHERE tbl = 'endurance' HAVING SUM(n) >= {at[2]}" + flying,    # cycling
        ]
        committed_first: dict[str, object] = {}
        in_flight: list[set[tuple[int, int]]] = []
        for k, moment in enumerate(moments):
            args = (["run", str(recipe), "--station", str(station), "--out", str(out)] if k == 0
                    else ["resume", str(out)])
            proc = _start([*args, "--quiet"], env)
            pids.append(proc.pid)
            _kill_when(proc, lambda m=moment: _journal_count(journal, m) > 0, after=0.005 * k)
            killed = open_run(out)                            # what the killed process left in the file
            assert killed.source == "journal" and killed.exit_status == "incomplete"
            in_flight.append(set(killed.state.in_flight))
            if k == 0:
                committed_first = {name: killed.table(name) for name in killed.tables}
        proc = _start(["resume", str(out), "--json", str(tmp_path / "summary.json"), "--quiet"], env)
        pids.append(proc.pid)
        stdout, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, stdout
        with BenchControl(server.address) as control:
            transcript = control.transcript()
    run = open_run(out)
    assert run.source == "hdf5" and run.exit_status == "completed" and not journal.exists()
    assert [s["kind"] for s in run.sessions] == ["start", "resume", "resume", "resume"]
    assert [s["pid"] for s in run.sessions] == pids
    assert all(s.status == "completed" for s in run.steps)
    assert json.loads((tmp_path / "summary.json").read_text())["exit_status"] == "completed"

    # -- every cell exactly once per step
    protocols = {p.label: p for p in prepare(parse_recipe(recipe_text), load_station_config(station))}
    forming = run.table("forming")
    assert sorted(zip(forming["row"], forming["col"], strict=True)) == sorted(protocols["forming"].cells)
    sweep = run.table("forming_sweep")
    for (r, c), rows in sweep[sweep["branch"] == "form"].groupby(["row", "col"]):
        assert (np.diff(rows["v"].to_numpy()) > 0).all(), f"cell {(r, c)} ramped twice"
    iv = run.table("iv_sweep")
    points = round(1.5 / 0.02) + 1                      # 0 → ±1.5 V in 20 mV steps (the recipe's defaults)
    per_cell = 2 * (2 * points - 1)                     # a SET loop and a RESET loop, up and back down
    assert Counter(zip(iv["row"], iv["col"], strict=True)) == dict.fromkeys(protocols["iv"].cells, per_cell)
    results = run.table("program_verify_result")
    for label in ("program_verify_2pct", "program_verify_0.2pct"):
        mine = results[results["step"] == label]
        expected = Counter(protocols[label].assignments())
        assert Counter(zip(mine["row"], mine["col"], mine["target"], strict=True)) == expected
    pv = run.table("program_verify")
    for key, rows in pv.groupby(["step", "row", "col", "target"]):        # each programming recorded once
        assert list(rows["iteration"]) == list(range(len(rows))), key
    table = run.table("retention")
    early = protocols["program_verify_0.2pct"].params.read_after          # read right after each programming
    rounds = protocols["program_verify_0.2pct"].params.rounds
    taus = protocols["retention"].params.schedule()
    n_tau = int((taus > max(early, default=0.0) * (1 + 1e-9)).sum())  # the retention step goes on from there
    retention = table[table["step"] == "retention"]
    assert Counter(zip(retention["row"], retention["col"], strict=True)) == \
        dict.fromkeys(protocols["retention"].cells, n_tau)
    first = table[table["step"] == "program_verify_0.2pct"]
    assert Counter(zip(first["row"], first["col"], strict=True)) == \
        (dict.fromkeys(protocols["program_verify_0.2pct"].cells, rounds * len(early)) if early else {})
    for cell, rows in retention.groupby(["row", "col"]):
        assert (np.diff(rows.sort_values("t")["tau"].to_numpy()) > 0).all(), cell
    endurance = run.table("endurance_result")
    assert sorted(zip(endurance["row"], endurance["col"], strict=True)) == sorted(protocols["endurance"].cells)

    # -- no pulse without a recorded read before the next pulse, across every kill (the bench's transcript)
    ops = Ops(transcript, station.read_text())
    resume_reads = run.table("resume_reads")
    # each kill is aimed inside a unit (a cell in flight when polled); on a loaded machine one may land just after
    # the unit's commit, which is a valid stop too (nothing to read first)
    assert sum(bool(f) for f in in_flight) >= 2, in_flight
    for k in range(3):
        killed, resumed = pids[k], pids[k + 1]
        flying = in_flight[k]                 # energised since its last commit: its last reads are not recorded
        assert ops.unverified(killed) <= flying       # every pulse left without a read was written ahead
        for cell in flying:
            assert ops.first_op(cell, resumed) == "read", (k, cell, ops.ops[cell][-12:])
        read_back = resume_reads[resume_reads["session"] == k + 2]
        assert set(zip(read_back["row"], read_back["col"], strict=True)) == flying, (flying, read_back)
        # the resumed process made the bench safe before anything else (kill -9 may have left an output on)
        first = ops.first_writes[resumed]
        energising = next(i for i, w in enumerate(first) if "trigger" in w or "measure" in w or "channel.close(" in w)
        assert any("OUTPUT_OFF" in w for w in first[:energising]) and \
            any("channel.open('allslots')" in w for w in first[:energising]), first[:energising]

    # -- the pulse ledger continued across the sessions: exact, or over by less than one reservation per kill
    ledger = run.state.ledger
    for cell in {*ledger, *ops.ops}:
        sent, unknown = ops.pulses(cell), ops.loop_max[cell]       # an on-instrument loop: charged its max first
        assert sent <= ledger.get(cell, 0) <= sent + unknown + 3 * (PULSE_RESERVATION - 1), \
            (cell, sent, ledger.get(cell))
    assert sum(ledger.values()) - sum(ops.pulses(c) + ops.loop_max[c] for c in ops.ops) <= \
        3 * (PULSE_RESERVATION - 1)

    # -- what the first process committed is bit for bit what an uninterrupted run of the same seed records
    st = Station.from_file(station, visa_library=f"?seed={SEED}&tag=reference{next(_tags)}@rramlab")   # a fresh die
    try:
        run_recipe(st, parse_recipe(recipe_text), tmp_path / "uninterrupted.h5")
    finally:
        st.close()
    reference = open_run(tmp_path / "uninterrupted.h5")
    for name, df in committed_first.items():
        ref = reference.table(name).iloc[: len(df)].reset_index(drop=True)
        assert len(df) > 0 or name == "resume_reads"
        for column in df.columns:
            assert df[column].tolist() == ref[column].tolist(), (name, column)


# ------------------------------------------------------------------------------------------ in-process cases



def _station(library: str | None = None) -> Station:
    return Station.from_file(None, visa_library=library or f"?tag=resume{next(_tags)}@rramlab")


def _fail_at_cell(st: Station, n: int) -> None:
    real, count = st.checkpoint, itertools.count(1)

    def checkpoint() -> None:
        if next(count) == n:
            raise RuntimeError("probe card lifted")
        real()
    st.checkpoint = checkpoint  # type: ignore[method-assign]


def test_a_failed_run_resumes_from_its_hdf5_file_on_the_same_bench(tmp_path: Path) -> None:
    library = f"?tag=resume{next(_tags)}@rramlab"
    st = _station(library)
    _fail_at_cell(st, 4)                                     # forming (3 cells) done, the first PV cell done
    with pytest.raises(RuntimeError, match="probe card lifted"):
        run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5")
    st.close()
    before = open_run(tmp_path / "run.h5")
    assert before.source == "hdf5" and before.exit_status == "failed"
    assert before.state.units == {0: {"0", "1", "2"}, 1: {"0"}} and before.state.in_flight == []
    pulses_before = dict(before.state.ledger)
    st = _station(library)                                   # the same simulated bench (pyvisa keeps it)
    res = resume_run(st, tmp_path / "run.h5")
    assert res.exit_status == "completed" and res.session == 2 and res.in_flight_read == []
    run = open_run(tmp_path / "run.h5")
    assert run.exit_status == "completed" and [s.status for s in run.steps] == ["completed", "completed"]
    result = run.table("program_verify_result")
    assert sorted(zip(result["row"], result["col"], strict=True)) == [(0, 0), (0, 1), (0, 2)]
    assert result["converged"].all() and len(run.table("forming")) == 3
    assert run.state.ledger[(0, 0)] == pulses_before[(0, 0)]           # finished before: untouched
    assert run.sessions[1]["kind"] == "resume" and run.sessions[0]["exit_status"] == "failed"
    st.close()


def test_resume_is_refused_for_a_completed_run_and_on_another_bench(tmp_path: Path) -> None:
    st = _station()
    run_recipe(st, parse_recipe(SMALL), tmp_path / "done.h5")
    st.close()
    with pytest.raises(ResumeRefused, match="completed"):
        resume_run(_station(), tmp_path / "done.h5")
    st = _station()
    _fail_at_cell(st, 2)
    with pytest.raises(RuntimeError):
        run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5")
    st.close()
    other = _station()                                        # a new simulated bench: a new die, its clock at 0
    bench = other.instruments["smu"].adapter.connection.visalib.bench
    with pytest.raises(ResumeRefused, match="not the bench"):
        resume_run(other, tmp_path / "run.h5")
    sent = [e.data for e in bench.transcript.entries if e.direction == "write"]
    assert sent and all(b"trigger" not in w and b"exclusiveclose" not in w for w in sent)   # safe state, IDN only
    assert not Path(f"{tmp_path / 'run.h5'}.journal").exists()               # the run file is as it was
    assert len(open_run(tmp_path / "run.h5").sessions) == 1
    res = resume_run(other, tmp_path / "run.h5", force=True)                 # forced: recorded
    assert res.exit_status == "completed"
    assert "not the bench" in open_run(tmp_path / "run.h5").sessions[1]["note"]
    other.close()


def test_a_second_run_on_a_busy_bench_is_refused_and_sends_nothing(tmp_path: Path) -> None:
    from rramlab.simulator.server import BenchControl, BenchServerProcess

    env = dict(os.environ, RRAMLAB_LOCK_DIR=str(tmp_path / "locks"), COLUMNS="500")
    recipe = tmp_path / "demo.toml"
    recipe.write_text(SHORT_DEMO)
    with BenchServerProcess() as server:
        station = tmp_path / "station.toml"
        station.write_text((ROOT / "examples" / "sim_2636b_707b.toml").read_text()
                           .replace('visa_library = "2636b_707b@rramlab"', f'visa_library = "{server.library}"'))
        first = _start(["run", str(recipe), "--station", str(station), "--out", str(tmp_path / "a.h5"), "--quiet"],
                       env)
        journal = Path(f"{tmp_path / 'a.h5'}.journal")
        deadline = time.monotonic() + 60
        while _journal_count(journal, "SELECT COUNT(*) FROM units") < 1:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = _start(["run", str(recipe), "--station", str(station), "--out", str(tmp_path / "b.h5"),
                         "--quiet"], env)
        text, _ = second.communicate(timeout=60)
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
        with BenchControl(server.address) as control:
            transcript, events = control.transcript(), control.events()
    flat = " ".join(text.split())
    assert second.returncode == 2, text
    assert f"in use by PID {first.pid}" in flat and str(tmp_path / "a.h5") in flat and "Traceback" not in flat
    assert [e for e in transcript if e["client"] == second.pid] == []            # it sent nothing at all
    assert any(e["kind"] == "client_connected" and e["client"] == second.pid for e in events)
    assert not (tmp_path / "b.h5").exists() and not Path(f"{tmp_path / 'b.h5'}.journal").exists()
    assert first.returncode == 130
