"""Runner: preflight refusals send nothing; every exit path ends in safe state with the data kept."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from rramlab.analysis.dataset import open_run
from rramlab.drivers.station import InstrumentRebooted, Station
from rramlab.protocols.preflight import PreflightError
from rramlab.protocols.recipe import RecipeError, parse_recipe
from rramlab.protocols.runner import run_recipe

_tags = itertools.count()

SMALL = """
[recipe]
name = "small"
[[steps]]
protocol = "forming"
cells = [[0, 0], [0, 1], [0, 2]]
[steps.params]
current_limit = 1e-3
[[steps]]
name = "pv"
protocol = "program_verify"
cells = [[0, 0], [0, 1], [0, 2]]
[steps.params]
acceptance = 0.02
targets = [20e-6, 50e-6, 80e-6]
"""


def station() -> Station:
    return Station.from_file(None, visa_library=f"?tag=runner{next(_tags)}@rramlab")


def bench(st: Station):  # noqa: ANN201
    return st.instruments["smu"].adapter.connection.visalib.bench


def test_small_run_writes_dataset_with_units(tmp_path: Path) -> None:
    st = station()
    res = run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5", seed=5)
    assert res.exit_status == "completed" and res.units_done == 6
    run = open_run(tmp_path / "run.h5")
    assert run.exit_status == "completed" and run.metadata["seed"] == 5
    assert "Model 2636B" in run.metadata["instruments"]["smu"] and 'name = "small"' in run.metadata["recipe"]
    assert [s.name for s in run.steps] == ["forming", "pv"] and all(s.status == "completed" for s in run.steps)
    res_t = run.table("program_verify_result")
    assert res_t.attrs["units"]["g_final"] == "S" and res_t.attrs["units"]["target"] == "S"
    assert res_t["converged"].all() and list(res_t["step"]) == ["pv"] * 3
    with h5py.File(tmp_path / "run.h5", "r") as f:          # plain h5py opens it
        assert json.loads(f["tables/forming"].attrs["units"])["v_form"] == "V"
    b = bench(st)
    assert b.events.of_kind("hot_switch") == []
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()


@pytest.mark.parametrize("edit, finding", [
    (("current_limit = 1e-3\n[[steps]]", "v_stop = 6.0\ncurrent_limit = 1e-3\n[[steps]]"), "v_stop = 6.0"),
    (("current_limit = 1e-3\n[[steps]]", "[[steps]]"), "current_limit = None"),
    (("acceptance = 0.02", "acceptance = 0.02\nwidth = 0.01"), "width = 0.01"),
    (("acceptance = 0.02", "acceptance = 0.02\nbands = [[0.0, 1.0, 4.5, -1.3]]"), "bands.v_set = 4.5"),
    # 3 rounds × 400 000 pulses could reach one cell 1.2 million times: over safety.max_pulses_per_cell
    (("acceptance = 0.02", "acceptance = 0.02\nmax_iterations = 400000\nrounds = 3"),
     "pulses per cell = 1200000 not allowed (<= 1000000"),
])
def test_recipe_outside_envelope_is_refused_before_any_write(tmp_path: Path, edit: tuple[str, str],
                                                              finding: str) -> None:
    old, new = edit
    assert old in SMALL
    st = station()
    with pytest.raises(PreflightError, match="refused before any instrument write") as e:
        run_recipe(st, parse_recipe(SMALL.replace(old, new, 1)), tmp_path / "x.h5")
    assert str(e.value).count(finding) == 1                # named, and only once
    assert bench(st).transcript.entries == []              # nothing was sent
    assert not (tmp_path / "x.h5").exists()


def test_bad_recipes_name_the_problem() -> None:
    with pytest.raises(RecipeError, match="unknown; allowed"):
        parse_recipe(SMALL.replace('protocol = "forming"', 'protocol = "melt"'))
    with pytest.raises(RecipeError, match="unknown key"):
        parse_recipe(SMALL.replace("[[steps]]\nname", "[[steps]]\ncolour = 1\nname", 1))
    st = station()
    with pytest.raises(PreflightError, match="unknown parameter"):
        run_recipe(st, parse_recipe(SMALL.replace("acceptance", "acceptanse")), "unused.h5")


def test_instrument_failure_mid_run_keeps_data_and_ends_safe(tmp_path: Path) -> None:
    st = station()
    b = bench(st)
    # the SMU stops answering during the second step (program-verify, on the instrument or PC in the loop):
    # a dropped reply times out
    b.faults.add("drop_reply", match=r"^rramlab_verify\(|^smua\.trigger\.source\.listv.*measure\.i", times=1000)
    with pytest.raises(Exception, match="VI_ERROR_TMO|Timeout"):
        run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5")
    run = open_run(tmp_path / "run.h5")
    assert run.exit_status == "failed" and ("Timeout" in run.exit_message or "TMO" in run.exit_message)
    assert len(run.table("forming")) == 3                  # the finished step is all there
    assert [s.status for s in run.steps] == ["completed", "failed"]
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()


def test_smu_reboot_mid_run_is_detected_at_the_next_cell_boundary(tmp_path: Path) -> None:
    st = station()
    b = bench(st)
    recipe = SMALL.split("[[steps]]\nname")[0] + (
        '[[steps]]\nname = "map"\nprotocol = "read"\ncells = [[0, 0], [0, 1], [0, 2]]\n'
        "[steps.params]\nvoltage = 0.125\n")
    # the SMU power-cycles as the first read of the map arrives: that read runs on a rebooted instrument
    b.faults.add("reboot", match=r"levelv = 0\.125 ", resource="GPIB0::26::INSTR")
    with pytest.raises(InstrumentRebooted, match="smu: powered on during the run"):
        run_recipe(st, parse_recipe(recipe), tmp_path / "run.h5")
    run = open_run(tmp_path / "run.h5")
    assert run.exit_status == "failed" and "PON" in run.exit_message
    assert [s.status for s in run.steps] == ["completed", "failed"]
    assert len(run.table("forming")) == 3 and len(run.table("read")) == 1     # stopped after that cell
    assert [e.kind for e in b.events.events].count("reboot") == 1
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()


def _spawn(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "bench.json"
    env = dict(os.environ, RRAMLAB_BENCH_LOG=str(log))
    proc = subprocess.Popen([sys.executable, "-m", "rramlab.protocols.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, log


def _wait_for_file(proc: subprocess.Popen[str], path: Path, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if Path(f"{path}.journal").exists():
            try:
                run = open_run(path)                               # a live run is read from its journal
                if "forming" in run.tables and len(run.table("forming")) >= 2:
                    return
            except FileNotFoundError:          # the run ended between the two looks
                pass
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    raise AssertionError("the demo never got going")


@pytest.mark.parametrize("sig, status, code", [(signal.SIGINT, "interrupted", 130), (signal.SIGTERM, "aborted", 143)])
def test_signal_during_demo_subprocess(tmp_path: Path, sig: int, status: str, code: int) -> None:
    out = tmp_path / "demo.h5"
    proc, log = _spawn(tmp_path, ["demo", "--out", str(out), "--quiet"])
    _wait_for_file(proc, out)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, stdout
    run = open_run(out)
    assert run.exit_status == status
    forming = run.table("forming")
    if sig == signal.SIGINT:                               # the message counts what the file holds
        sweep, contact = run.table("forming_sweep"), run.table("contact_check")
        assert f"Interrupted: contact_check {len(contact)} rows, forming {len(forming)} rows, forming_sweep " \
               f"{len(sweep)} rows recorded" in \
            " ".join(stdout.split()), stdout
    assert len(forming) >= 2 and list(forming["seq"]) == list(range(len(forming)))
    cells = {(int(r), int(c)) for r, c in zip(forming["row"], forming["col"], strict=True)}
    assert len(cells) == len(forming)                      # every finished cell exactly once
    bench_log = json.loads(log.read_text())
    assert [e for e in bench_log["events"] if e["kind"] == "hot_switch"] == []
    assert all(o["output"] == 0 for o in bench_log["final"]["outputs"].values())
    assert all(not closed for closed in bench_log["final"]["closed"].values())
    assert bench_log["internal_errors"] == []


def test_lab_station_file_runs_unchanged_with_the_simulators_visa_library(tmp_path: Path) -> None:
    """Only the station file differs between lab and simulator: run the example lab file on @rramlab."""
    example = Path(__file__).parents[1] / "examples" / "lab_2636b_707b.toml"
    st = Station.from_file(example, visa_library=f"?tag=lab{next(_tags)}@rramlab")
    assert type(st.clock).__name__ == "SystemClock"          # the lab file waits in real time
    res = run_recipe(st, parse_recipe(SMALL), tmp_path / "lab.h5")
    assert res.exit_status == "completed"
    run = open_run(tmp_path / "lab.h5")
    assert run.table("program_verify_result")["converged"].all()
    assert run.metadata["station"].startswith("# Station file for a real probe station")


def test_ctrl_c_twice_during_cleanup_cannot_leave_the_bench_live(tmp_path: Path) -> None:
    """Signals that arrive while the runner puts the bench in safe state are held until it is done."""
    st = station()
    real, calls = st.safe_state, []
    before = signal.getsignal(signal.SIGINT)                # default, or ignored when CI runs in background

    def safe_state() -> list[str]:
        calls.append(1)
        if len(calls) == 2:                                  # the cleanup call (the first is open())
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)                                 # let the handlers run here, not later
        return real()
    st.safe_state = safe_state
    try:
        res = run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5")
    except KeyboardInterrupt:
        pytest.fail("a Ctrl-C escaped the runner's cleanup")
    assert len(calls) == 2 and res.exit_status == "completed" and res.safe_state_failures == []
    b = bench(st)
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()
    assert open_run(tmp_path / "run.h5").exit_status == "completed"
    assert signal.getsignal(signal.SIGINT) is before                            # handlers restored


def test_failure_while_closing_the_file_keeps_the_run_error_as_cause(tmp_path: Path) -> None:
    from rramlab.analysis.dataset_writer import RunWriter

    st = station()
    real_close = RunWriter.close

    def close(self, *a, **k) -> None:  # noqa: ANN001, ANN002, ANN003
        real_close(self, *a, **k)
        raise OSError("disk full")
    st.checkpoint = lambda: (_ for _ in ()).throw(RuntimeError("bench on fire"))
    RunWriter.close = close
    try:
        with pytest.raises(OSError, match="disk full") as info:
            run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5")
    finally:
        RunWriter.close = real_close
    assert isinstance(info.value.__cause__, RuntimeError) and "bench on fire" in str(info.value.__cause__)
    b = bench(st)
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()
    assert open_run(tmp_path / "run.h5").exit_status == "failed"


def test_ctrl_c_cuts_a_long_real_time_retention_wait_short(tmp_path: Path) -> None:
    """On a lab bench (system clock) a Ctrl-C during a 9 s wait stops the run at once, reads kept."""
    import threading

    example = Path(__file__).parents[1] / "examples" / "lab_2636b_707b.toml"
    st = Station.from_file(example, visa_library=f"?tag=labret{next(_tags)}@rramlab")
    recipe = parse_recipe('[[steps]]\nprotocol = "retention"\ncells = [[0, 0]]\n[steps.params]\n'
                          't_first = 1.0\nhorizon = 100.0\npoints_per_decade = 1\n')
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))   # during the τ = 1 → 10 s wait
    timer.start()
    try:
        res = run_recipe(st, recipe, tmp_path / "ret.h5")
    finally:
        timer.cancel()
    assert res.exit_status == "interrupted"
    tau = open_run(tmp_path / "ret.h5").table("retention")["tau"]
    assert len(tau) == 1 and 1.0 <= tau[0] < 1.5                     # the τ = 10 s read never happened
    b = bench(st)
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()


def test_sigterm_during_cleanup_is_held_then_delivered(tmp_path: Path) -> None:
    st = station()
    real, calls, received = st.safe_state, [], []

    def safe_state() -> list[str]:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert received == []                           # held: not delivered while cleaning up
        return real()
    st.safe_state = safe_state
    old = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        res = run_recipe(st, parse_recipe(SMALL), tmp_path / "run.h5")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert received == [signal.SIGTERM] and res.exit_status == "completed"
    assert open_run(tmp_path / "run.h5").exit_status == "completed"
    b = bench(st)
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()


def test_ctrl_c_while_the_station_opens_cuts_the_first_real_time_wait(tmp_path: Path) -> None:
    example = Path(__file__).parents[1] / "examples" / "lab_2636b_707b.toml"
    st = Station.from_file(example, visa_library=f"?tag=labopen{next(_tags)}@rramlab")
    real_open = st.open

    def open_() -> None:                                       # Ctrl-C as the run starts opening the bench
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        real_open()
    st.open = open_
    recipe = parse_recipe('[[steps]]\nprotocol = "retention"\ncells = [[0, 0]]\n[steps.params]\n'
                          't_first = 30.0\nhorizon = 300.0\npoints_per_decade = 1\n')
    res = run_recipe(st, recipe, tmp_path / "ret.h5")
    assert res.exit_status == "interrupted"
    assert len(open_run(tmp_path / "ret.h5").table("retention")) == 0    # the 30 s wait was cut short
