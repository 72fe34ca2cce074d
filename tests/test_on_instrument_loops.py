"""On-instrument loops (the 2636B runs the forming staircase and the program-verify loop itself) against the same
procedures with the PC in the loop: the TSP source and calls sent byte for byte, the staircase holding its
level, and statistically equal results on the same die."""

from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from rramlab.analysis.dataset import open_run
from rramlab.drivers.station import Station
from rramlab.drivers.station_config import StationConfigError, load_station_config, parse_station_config
from rramlab.protocols.forming import FormingParams, forming_ramp
from rramlab.protocols.recipe import parse_recipe
from rramlab.protocols.runner import run_recipe

_tags = itertools.count()
SMU = "GPIB0::26::INSTR"
RECIPE = """
[recipe]
name = "loops"
[[steps]]
protocol = "forming"
cells = "all"
[steps.params]
current_limit = 1e-3
[[steps]]
protocol = "program_verify"
cells = { first = 32 }
[steps.params]
acceptance = 0.02
target_min = 10e-6
target_max = 85e-6
rounds = 2
"""


def station(loops: str, seed: int = 3) -> Station:
    text = load_station_config("sim_2636b_707b").text.replace("[station]\n", f'[station]\nloops = "{loops}"\n', 1)
    return Station(parse_station_config(text), visa_library=f"?seed={seed}&tag=loops{next(_tags)}@rramlab")


def writes(st: Station) -> list[str]:
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    return [e.data.decode().rstrip("\n") for e in bench.transcript.entries
            if e.direction == "write" and e.resource == SMU]


def test_the_station_file_chooses_the_loops() -> None:
    assert load_station_config("sim_2636b_707b").loops == "auto"
    with pytest.raises(StationConfigError, match=r"station.loops: 'fast'; allowed: \['auto', 'pc'\]"):
        parse_station_config(load_station_config("sim_2636b_707b").text.replace(
            "[station]\n", '[station]\nloops = "fast"\n', 1))


def test_the_loops_script_and_calls_are_sent_byte_for_byte(tmp_path: Path) -> None:
    st = station("auto")
    run_recipe(st, parse_recipe(RECIPE.replace('cells = "all"', "cells = [[0, 0]]").replace(
        "{ first = 32 }", "[[0, 0]]").replace("rounds = 2", "rounds = 1")), tmp_path / "run.h5")
    sent = writes(st)
    # the packaged TSP file, non-blank lines with trailing blanks removed, between loadscript and endscript
    source = resources.files("rramlab.drivers").joinpath("keithley2600_loops.tsp").read_text(encoding="utf-8")
    lines = [line.rstrip() for line in source.splitlines() if line.strip()]
    start = sent.index("loadscript rramlab_loops")
    assert sent[start + 1:start + 1 + len(lines)] == lines
    assert sent[start + 1 + len(lines):start + 3 + len(lines)] == ["endscript", "rramlab_loops()"]
    assert sent.count("loadscript rramlab_loops") == 1                       # loaded once per session
    # the forming ramp: every level and integration time as Python's shortest repr, the jump current as stop
    levels, nplc = forming_ramp(FormingParams(current_limit=1e-3))
    calls = [w for w in sent if w.startswith("rramlab_staircase(")]
    first = ",".join(repr(v) for v in levels[:250])
    assert calls[0] == f"rramlab_staircase(smua, {{{first}}}, {{{','.join(['1.0'] * 250)}}}, 250, 5e-05)"
    assert calls[0].startswith("rramlab_staircase(smua, {0.0,0.01,0.02,0.03,")
    reset = ",".join(repr(round(-0.02 * k, 6) or 0.0) for k in range(71))
    assert calls[-1] == f"rramlab_staircase(smua, {{{reset}}}, {{{','.join(['1.0'] * 71)}}}, 71, nil)"
    # program-verify of cell (0, 0) to the first target of 10-85 µS at 2 %, paper band amplitudes: the first
    # call reads first (nil) and may pulse 200 times, as many more calls as needed go on from the last read
    verify = [w for w in sent if w.startswith("rramlab_verify(")]
    assert verify[0] == f"rramlab_verify(smua, 1e-05, {0.02 * 1e-05!r}, 1.35, -1.5, 0.2, 200, nil)"
    # the forming ramp's two calls follow each other: nothing (no 0 V) is sent to the SMU between them
    assert sent.index(calls[1]) == sent.index(calls[0]) + 1


def test_the_pc_path_holds_the_staircase_level_between_points(tmp_path: Path) -> None:
    st = station("pc")
    run_recipe(st, parse_recipe(RECIPE.replace('cells = "all"', "cells = [[0, 0]]").replace(
        "{ first = 32 }", "[[0, 0]]").replace("rounds = 2", "rounds = 1")), tmp_path / "run.h5")
    sent = writes(st)
    assert not any(w.startswith("rramlab_") or w.startswith("loadscript") for w in sent)
    start = next(i for i, w in enumerate(sent) if "smua.source.compliance" in w)
    forming = list(itertools.takewhile(lambda w: "smua.source.compliance" in w, sent[start:]))
    # the forming ramp, point after point with nothing between (no 0 V), up to the jump near 3.2 V
    assert forming[0] == "smua.source.levelv = 0.0 print(smua.measure.i(), smua.source.compliance, errorqueue.count)"
    assert forming[1] == "smua.source.levelv = 0.01 print(smua.measure.i(), smua.source.compliance, errorqueue.count)"
    levels = [float(re.match(r"smua\.source\.levelv = (\S+) ", w).group(1)) for w in forming]
    assert levels == [round(0.01 * k, 6) for k in range(len(levels))] and 2.8 < levels[-1] < 3.6
    assert sent[start + len(forming)] == "smua.source.levelv = 0.0"      # then the release: the bit line to 0 V


def test_on_instrument_and_pc_loops_give_statistically_equal_results(tmp_path: Path) -> None:
    runs = {}
    for loops in ("auto", "pc"):
        run_recipe(station(loops), parse_recipe(RECIPE), tmp_path / f"{loops}.h5")
        runs[loops] = open_run(tmp_path / f"{loops}.h5")
    a, p = runs["auto"], runs["pc"]
    fa, fp = a.table("forming"), p.table("forming")
    # the same die: quasi-static forming is deterministic at V_form, so the same cells form at the same step
    assert fa["formed"].all() and fp["formed"].all()
    np.testing.assert_array_equal(fa["v_form"], fp["v_form"])            # not one step apart anywhere
    assert abs(fa["v_form"].mean() - fp["v_form"].mean()) < 0.005
    assert abs(fa["v_form"].std() - fp["v_form"].std()) < 0.2 * fp["v_form"].std()
    assert len(a.table("forming_sweep")) == pytest.approx(len(p.table("forming_sweep")), rel=0.02)
    # program-verify: iterations and the final error spread from the raw rows, with plain numpy
    ra, rp = a.table("program_verify_result"), p.table("program_verify_result")
    assert ra["converged"].mean() >= 0.95 and rp["converged"].mean() >= 0.95
    ia, ip = ra["iterations"].to_numpy(float), rp["iterations"].to_numpy(float)
    se = np.hypot(ia.std(ddof=1), ip.std(ddof=1)) / np.sqrt(len(ia))
    assert abs(ia.mean() - ip.mean()) < 3 * se, (ia.mean(), ip.mean(), se)
    ca, cp = ra[ra["converged"]], rp[rp["converged"]]      # σ of the programmed states: converged cells
    ea = ((ca["g_final"] - ca["target"]) / ca["target"]).to_numpy()
    ep = ((cp["g_final"] - cp["target"]) / cp["target"]).to_numpy()
    assert 0.7 < ea.std() / ep.std() < 1.4, (ea.std(), ep.std())
    # the same records: every iteration row, iterations numbered from 0 per programming
    for run in (a, p):
        rows = run.table("program_verify")
        assert len(rows) == int(run.table("program_verify_result")["iterations"].sum()) + len(ra)


def test_coarse_then_fine_forming_matches_the_full_ramp_in_far_less_bench_time(tmp_path: Path) -> None:
    """The faster forming method: 0.1 V / 0.01 PLC steps below fine_from, then the paper's 10 mV / 1 PLC ramp.
    Same die: the same V_form per cell (so the same statistics) in a fraction of the ramps' bench time, as the
    bench's timing model counts it."""
    recipe = RECIPE.split("[[steps]]\nprotocol = \"program_verify\"")[0]
    out = {}
    for label, extra in (("fine", ""), ("coarse", "fine_from = 2.6\n")):
        run_recipe(station("auto", seed=11), parse_recipe(recipe + extra), tmp_path / f"{label}.h5")
        run = open_run(tmp_path / f"{label}.h5")
        ramp = run.table("forming_sweep")
        ramp = ramp[ramp["branch"] == "form"]
        per_cell = ramp.groupby(["row", "col"])["t"]
        out[label] = (run.table("forming")["v_form"].to_numpy(), float((per_cell.max() - per_cell.min()).sum()),
                      len(ramp))
    (v_fine, t_fine, n_fine), (v_coarse, t_coarse, n_coarse) = out["fine"], out["coarse"]
    assert np.isfinite(v_fine).all() and v_fine.min() > 2.6 + 0.1       # no cell formed in the coarse part
    np.testing.assert_array_equal(v_coarse, v_fine)
    assert n_coarse < 0.35 * n_fine                                     # 26 coarse points replace 260 fine ones
    assert 4.0 < t_fine / t_coarse < 7.0, (t_fine, t_coarse)            # measured 5.3× on this die


@pytest.mark.parametrize("loops", ["auto", "pc"])
def test_short_staircase_steps_form_cells_by_the_pulse_rule(loops: str) -> None:
    """Steps shorter than the quasi-static duration (0.01 PLC: 0.2 ms) are judged by forming's pulse rule when
    each one ends, P = 1 - exp(-(t/τ_f) exp((V_cell - V_form)/V_f)), even though the step's reading and its
    compliance query take its whole length (their slices are not final). Every cell of a row forms on a 50 mV
    short-step ramp to 3.8 V, within a few V_f of its own V_form; the steps never reach the quasi-static rule."""
    st = station(loops, seed=11)
    st.open()
    model = st.instruments["smu"].adapter.connection.visalib.bench.model     # test side channel: V_form_i
    p = model.params
    levels = [round(0.05 * k, 2) for k in range(77)]                          # 0 … 3.8 V
    jumps = []
    for col in range(8):
        if model.form_fail[col] or model.stuck[col]:
            continue
        points = st.staircase(0, col, levels, nplc=[0.01] * len(levels), gate_voltage=1.2, current_limit=1e-3,
                              stop_current=5e-5)
        st.release()
        assert points[-1].current >= 5e-5, f"cell (0, {col}) did not form by 3.8 V"
        jumps.append(points[-1].voltage - float(model.v_form[col]))
    assert len(jumps) >= 6
    # the cell voltage lags the applied one by the transistor's drop (~0.1-0.3 V at 1.2 V gate): the jump comes
    # within a few V_f of V_form, not at the quasi-static V_form exactly and never far above it
    assert all(-3 * p.forming_voltage_scale < d < 0.5 for d in jumps), jumps
    st.close()


def test_a_cell_change_is_two_smu_and_one_matrix_transaction_with_checks_folded_in() -> None:
    """Outputs off (bit line first) with the error check, break-before-make relays with the check and the
    read-back, then outputs on (gate first), the reading and 0 V again with the check: each one query (2600B/707B
    commands, TSP chunks; the reading is kept in a Lua local until the check is printed with it)."""
    from rramlab.drivers.keithley707b import channel_list

    st = station("auto")
    st.open()
    st.read(0, 0)
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    bench.transcript.clear()
    st.read(0, 1)
    points = st.config.wiring.array.cell_points
    old, new = points(0, 0)["matrix"], points(0, 1)["matrix"]
    opening, closing = channel_list(sorted(old - new)), channel_list(sorted(new - old))
    sent = [(e.resource, e.data.decode().rstrip("\n")) for e in bench.transcript.entries if e.direction == "write"]
    assert sent == [
        (SMU, "smua.source.output = smua.OUTPUT_OFF smub.source.output = smub.OUTPUT_OFF print(errorqueue.count)"),
        ("GPIB0::16::INSTR", f"channel.open('{opening}') channel.close('{closing}') "
                             "print(errorqueue.count, channel.getclose('allslots'))"),
        (SMU, "smub.source.output = smub.OUTPUT_ON smua.source.output = smua.OUTPUT_ON smua.source.levelv = 0.2 "
              "local i = smua.measure.i() smua.source.levelv = 0 print(i, errorqueue.count)"),
        ("TCPIP0::rramlab-bench::inst0::INSTR", "CLOCk:TIME?"),
    ]
    bench.transcript.clear()
    st.read(0, 2, release=True)              # the next cell is routed next: the outputs go off with the reading
    st.read(0, 3)
    sent = [e.data.decode().rstrip("\n") for e in bench.transcript.entries if e.direction == "write"
            and e.resource == SMU]
    assert sent[1] == ("smub.source.output = smub.OUTPUT_ON smua.source.output = smua.OUTPUT_ON "
                       "smua.source.levelv = 0.2 local i = smua.measure.i() smua.source.levelv = 0 "
                       "smua.source.output = smua.OUTPUT_OFF smub.source.output = smub.OUTPUT_OFF "
                       "print(i, errorqueue.count)")
    assert len(sent) == 3 and "OUTPUT_OFF" not in sent[2]      # read(0, 3): no outputs-off query before routing
    st.close()


def test_an_error_queued_by_the_folded_output_switch_stops_the_operation() -> None:
    from rramlab.drivers.errors import InstrumentError

    st = station("auto")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    # the folded check answers 1 (an error was queued with the outputs' write): nothing may be trusted
    bench.faults.add("garble", match=r"OUTPUT_ON .*print\(i, errorqueue\.count\)", reply="2.00000e-06\t1.00000e+00",
                     times=1)
    with pytest.raises(InstrumentError, match="errorqueue.count was 1 after"):
        st.read(2, 2)
    bench.transcript.clear()
    st.read(2, 2)                            # the outputs' state was not trusted: switched on again, then read
    sent = " ".join(e.data.decode() for e in bench.transcript.entries if e.direction == "write" and e.resource == SMU)
    assert "smua.source.output = smua.OUTPUT_ON" in sent.split("measure.i()")[0]
    st.close()


@pytest.mark.parametrize("reply, error", [
    ("1.0e-09, 0.0e+00, x, 1.0e+00, 0.0e+00, 2.0e-02", "ReplyError"),              # not a number
    ("1.0e-09, 0.0e+00, 1.0e-02, 2.0e+00, 0.0e+00, 2.0e-02", "ReplyError"),        # 2 announced, 1 sent
    ("1.0e-09, 0.0e+00, 1.0e-02, 1.0e+00, 1.0e+00, 2.0e-02", "InstrumentError"),   # an error was queued
])
def test_a_bad_loop_reply_raises_and_records_nothing(reply: str, error: str) -> None:
    st = station("auto")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    bench.faults.add("garble", match=r"^rramlab_staircase\(", reply=reply, times=1)
    with pytest.raises(Exception) as e:
        st.staircase(0, 0, [0.0, 0.01], nplc=[1.0, 1.0], gate_voltage=1.2, current_limit=1e-3, stop_current=5e-5)
    assert type(e.value).__name__ == error, e.value
    assert (st.smu_bl, "source_voltage") not in st._settings    # the bit line's level is not trusted afterwards
    st.close()


@pytest.mark.parametrize("link", ["tsplink", "own sessions"])
def test_a_relay_that_fails_on_one_of_three_mainframes_is_caught_by_the_folded_read_back(link: str) -> None:
    """64×64 die on three 707Bs, as TSP-Link nodes of the 2636B (the shipped station) or each on its own GPIB
    address: the read-back that comes with each mainframe's closing query sees a relay that did not close; the
    route fails naming that mainframe and every mainframe is opened."""
    from rramlab.drivers.station import RoutingError
    from rramlab.simulator.faults import Fault

    text = load_station_config("sim_64x64_2636b_3x707b").text
    if link == "own sessions":
        for node in (2, 3, 4):
            text = text.replace(f'tsplink = {{ master = "smu", node = {node} }}',
                                f'resource = "GPIB0::{14 + node}::INSTR"\nvisa_library = "64x64_2636b_3x707b@rramlab"')
    config = parse_station_config(text)
    assert all((e.tsplink is None) == (link == "own sessions") for n, e in config.instruments.items()
               if n.startswith("mf"))
    st = Station(config, visa_library=f"64x64_2636b_3x707b?tag=rb{next(_tags)}@rramlab")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    st.read(0, 0)
    want = set(st.config.wiring.array.cell_points(0, 1)["mf2"])
    failing = f"{min(want).card}{'ABCDEFGH'[min(want).row - 1]}{min(want).column:02d}"
    if link == "own sessions":                          # armed by the mainframe's own next closing command
        bench.faults.add("relay_fail", match=r"channel\.close", channels=failing, resource="GPIB0::17::INSTR")
    else:                                               # over TSP-Link its commands come through the 2636B
        bench.by_name["mf2"].on_fault(Fault("relay_fail", match="", params={"channels": failing}))
    with pytest.raises(RoutingError, match=r"cell \(0, 1\): mf2 asked for .* reports "):
        st.read(0, 1)
    assert all(not bench.by_name[m].closed for m in ("mf1", "mf2", "mf3"))
    st.read(0, 2)                                       # the router forgot its state: a clean route follows
    points = st.config.wiring.array.cell_points(0, 2)
    for m in ("mf1", "mf2", "mf3"):
        assert bench.by_name[m].closed == {(p.card, "ABCDEFGH"[p.row - 1], p.column) for p in points.get(m, ())}
    st.close()


def test_the_stop_rule_firing_on_a_calls_last_level_ends_the_staircase() -> None:
    """A staircase longer than one call (250 levels): when the jump comes on the last level of a call, no
    further level is applied (the PC path stops there too)."""
    st = station("auto")
    st.open()
    st.read(2, 2)
    i_read = st.read(2, 2).current                       # a formed... or pristine cell: ~nA at the read voltage
    levels = [0.0] * 249 + [0.2] * 51                    # the current first exceeds the stop at level 250
    stop = max(i_read, 1e-15) / 10
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    bench.transcript.clear()
    out = st.staircase(2, 2, levels, nplc=[0.01] * 300, gate_voltage=3.3, current_limit=1e-3, stop_current=stop)
    calls = [w for w in writes(st) if w.startswith("rramlab_staircase(")]
    assert len(out) == 250 and out[-1].current >= stop and all(r.current < stop for r in out[:-1])
    assert len(calls) == 1
    st.close()


def test_a_long_verify_goes_on_over_several_calls_and_charges_exactly_its_pulses() -> None:
    """A pristine cell (~1 nS) never reaches 10 µS with 1.35 V pulses: 450 pulses are applied in calls of at most
    200, each call after the first going on from the last read (no extra read), and the ledger holds 450."""
    st = station("auto")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    bench.transcript.clear()
    steps = st.verify(0, 0, target=10e-6, band=0.2e-6, v_set=1.35, v_reset=-1.5, width=2.5e-6, max_pulses=450)
    calls = [w for w in writes(st) if w.startswith("rramlab_verify(")]
    assert [c.rsplit(", ", 2)[1] for c in calls] == ["200", "200", "50"]
    assert calls[0].endswith(", nil)") and not calls[1].endswith(", nil)") and not calls[2].endswith(", nil)")
    assert len(steps) == 451 and steps[0][0] == 0.0 and all(v == 1.35 for v, _ in steps[1:])
    assert float(calls[1].rsplit(", ", 1)[1].rstrip(")")) == pytest.approx(steps[200][1].conductance, rel=1e-12)
    assert st.pulses_per_cell[(0, 0)] == 450
    times = [r.t for _, r in steps]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    st.close()


def test_the_loops_are_loaded_again_after_the_smu_was_power_cycled() -> None:
    from rramlab.drivers.station import InstrumentRebooted

    st = station("auto")
    st.open()
    levels, nplc = [0.0, 0.01], [1.0, 1.0]
    st.staircase(0, 0, levels, nplc=nplc, gate_voltage=1.2, current_limit=1e-3, stop_current=5e-5)
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    bench.faults.add("reboot", match=r"^print\(errorqueue\.count\)$", resource=SMU, times=1)
    st.instruments["smu"].write("print(errorqueue.count)")      # the SMU power-cycles: its loops are gone
    st.instruments["smu"].read()
    with pytest.raises(InstrumentRebooted):
        st.checkpoint()
    bench.transcript.clear()
    st.open()
    out = st.staircase(0, 0, levels, nplc=nplc, gate_voltage=1.2, current_limit=1e-3, stop_current=5e-5)
    assert len(out) == 2 and writes(st).count("loadscript rramlab_loops") == 1
    st.close()
