"""A station whose matrix is a TSP-Link node of its SMU: the station file, the node commands sent through the
master's session byte for byte, reads of many cells routed by the 2636B itself (``rramlab_routed_reads``) against
the same reads made by the PC, and the faults a lab meets (a relay stuck open, an error on the node, a node that
power-cycles, a network that does not come up).

Command forms: 2600B Reference Manual, "TSP-Link system" ("All TSP-accessible remote commands can be accessed as
elements of the specific node": ``node[N].model``, ``.serialno``, ``.revision``; ``tsplink.reset()``);
707B Reference Manual 707B-901-01 section 7 (``channel.open``/``close``/``getclose``, ``status.standard.event``)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from rramlab.analysis.dataset import open_run
from rramlab.drivers.array_wiring import RoutingError
from rramlab.drivers.errors import InstrumentError
from rramlab.drivers.roles import NodeSwitch
from rramlab.drivers.station import InstrumentRebooted, Station, StationMismatch
from rramlab.drivers.station_config import (
    StationConfigError,
    TspLink,
    load_station_config,
    parse_station_config,
)
from rramlab.protocols.recipe import parse_recipe
from rramlab.protocols.runner import run_recipe

_tags = itertools.count()
SMU, MATRIX = "GPIB0::26::INSTR", "GPIB0::16::INSTR"
NAME = "sim_2636b_707b_tsplink"
FORM_AND_PROGRAM = """
[recipe]
name = "tsplink"
[[steps]]
protocol = "forming"
cells = {{ first = {n} }}
[steps.params]
current_limit = 1e-3
fine_from = 2.6
[[steps]]
protocol = "program_verify"
cells = {{ first = {n} }}
[steps.params]
acceptance = 0.02
target_min = 10e-6
target_max = 85e-6
"""
RETENTION = """
[[steps]]
protocol = "retention"
cells = { first = 16 }
[steps.params]
t_first = 1.0
horizon = 1e4
points_per_decade = 1
delay_fraction = 0.05
"""


def station(loops: str = "auto", bench: str = "2636b_707b_tsplink", seed: int = 5) -> Station:
    text = load_station_config(NAME).text.replace("[station]\n", f'[station]\nloops = "{loops}"\n', 1)
    return Station(parse_station_config(text), visa_library=f"{bench}?seed={seed}&tag=tl{next(_tags)}@rramlab")


def bench_of(st: Station):  # noqa: ANN201 - test side channel
    return st.instruments["smu"].adapter.connection.visalib.bench


def writes(st: Station, resource: str = SMU) -> list[str]:
    return [e.data.decode().rstrip("\n") for e in bench_of(st).transcript.entries
            if e.direction == "write" and e.resource == resource]


# ------------------------------------------------------------------------------------------- the file
def test_the_station_file_reaches_the_matrix_as_node_2_of_the_smu() -> None:
    config = load_station_config(NAME)
    matrix = config.instruments["matrix"]
    assert matrix.tsplink == TspLink("smu", 2) and matrix.resource == ""
    assert matrix.visa_library == config.instruments["smu"].visa_library == "2636b_707b_tsplink@rramlab"
    st = station()
    # the node is locked with its master's address and talks through its session
    assert [k.resource for k in st.lock_keys()] == [SMU, "TCPIP0::RRAMLAB-BENCH::INST0::INSTR"]
    assert st.instruments["matrix"].adapter is st.instruments["smu"].adapter


@pytest.mark.parametrize("edit, message", [
    (("node = 2 }", 'node = 2 }\nresource = "GPIB0::16::INSTR"'),
     r"instruments\.matrix: resource and tsplink exclude each other"),
    (('master = "smu"', 'master = "smu2"'), r"instruments\.matrix\.tsplink\.master: 'smu2' is not an instrument of "
                                            r"this file with its own session; allowed: \['bench', 'smu'\]"),
    (('master = "smu"', 'master = "bench"'),
     r"instruments\.matrix\.tsplink\.master: the rramlab_bench_controller driver cannot be a TSP-Link master"),
    (("node = 2", "node = 65"), r"instruments\.matrix\.tsplink\.node"),
    (("node = 2", "nodes = 2"), r"instruments\.matrix\.tsplink"),
    (('driver = "keithley707b"', 'driver = "keysight_b2200a"'),
     r"instruments\.matrix\.tsplink: the keysight_b2200a driver cannot be reached as a TSP-Link node"),
])
def test_a_bad_tsplink_entry_names_the_key(edit: tuple[str, str], message: str) -> None:
    text = load_station_config(NAME).text
    assert edit[0] in text
    with pytest.raises(StationConfigError, match=message):
        parse_station_config(text.replace(*edit, 1))


def test_two_matrices_on_one_node_number_are_refused() -> None:
    text = load_station_config("sim_64x64_2636b_3x707b").text.replace('node = 3 }', 'node = 2 }', 1)
    with pytest.raises(StationConfigError, match=r"instruments\.mf2\.tsplink\.node: 2 is already instruments\.mf1's"):
        parse_station_config(text)


# ------------------------------------------------------------------------------------ bytes on the wire
def test_the_matrix_commands_go_through_the_smu_session_as_node_commands() -> None:
    st = station()
    st.open()
    st.read(0, 0)
    st.read(0, 1)
    sent = writes(st)
    assert writes(st, MATRIX) == []                         # nothing to the 707B's own address
    assert "print(tsplink.reset(2))" in sent                # the network initialised from the master
    assert "print(node[2].model, node[2].serialno, node[2].revision)" in sent
    safe = ("if node[2] == nil then print('gone') else node[2].channel.open('allslots') "
            "print(node[2].channel.getclose('allslots')) end")      # safe state, the closed set read back
    assert safe in sent
    assert "print(node[2] ~= nil and node[2].status.standard.event or -1)" in sent     # the node's PON bit
    # routing cell (0, 0) then (0, 1): break before make, the error count and closed set in the same query
    assert ("node[2].channel.close('1B01,2A01,3C01') print(errorqueue.count, node[2].channel.getclose('allslots'))"
            in sent)
    assert ("node[2].channel.open('2A01,3C01') node[2].channel.close('2A02,3C02') "
            "print(errorqueue.count, node[2].channel.getclose('allslots'))" in sent)
    assert st.identities()["matrix"] == "Keithley Instruments Inc., Model 707B, 4411350, 1.5.2"
    # cell (0, 1) is 1B01 (gate), 2A02 (bit line), 3C02 (source line) by the bench's wiring, read over the link
    assert st.instruments["matrix"].closed_channels == ["1B01", "2A02", "3C02"]
    assert writes(st)[-1] == "print(node[2].channel.getclose('allslots'))"
    st.close()                                              # safe state: the node's relays opened through the SMU
    assert safe in writes(st)[len(sent):]
    assert bench_of(st).by_name["matrix"].closed == set()


def test_reads_of_many_cells_are_one_call_that_routes_each_cell_on_the_node() -> None:
    st = station()
    st.open()
    st.read_cells([(0, 0)])                                 # loads the loops script; (0, 0) stays routed
    bench = bench_of(st)
    bench.transcript.clear()
    out = st.read_cells([(0, 0), (0, 1), (1, 1)])
    sent = writes(st)
    calls = [w for w in sent if w.startswith("rramlab_routed_reads(")]
    # (0, 0) is routed already; (0, 1) moves bit and source line; (1, 1) moves the gate (closed sets sorted)
    assert calls == ["rramlab_routed_reads(smua, smub, 0.2, {{},"
                     "{2,'2A01,3C01','2A02,3C02','1B01,2A02,3C02'},"
                     "{2,'1B01','1B02','1B02,2A02,3C02'}}, 3)"]
    assert len(sent) == 1                                   # one transaction to the SMU (then the bench's clock)
    assert [(r.row, r.col) for r in out] == [(0, 0), (0, 1), (1, 1)]
    assert out[0].t < out[1].t < out[2].t and all(r.voltage == 0.2 for r in out)
    assert bench.by_name["matrix"].closed == {(1, "B", 2), (2, "A", 2), (3, "C", 2)}
    smu = bench.by_name["smu"]
    assert not smu.channels["a"].state.output and not smu.channels["b"].state.output
    assert bench.events.of_kind("hot_switch") == []       # outputs on only around each reading
    st.read(1, 2, release=True)                             # the station knows where the relays are
    assert writes(st)[-2].startswith("node[2].channel.open('2A02,3C02') node[2].channel.close('2A03,3C03')")
    st.close()


def test_routed_calls_hold_at_most_64_cells_and_the_pc_path_sends_none() -> None:
    st = station()
    st.open()
    cells = [(r, c) for r in range(8) for c in range(8)] + [(0, 0)] * 6
    out = st.read_cells(cells)
    calls = [w for w in writes(st) if w.startswith("rramlab_routed_reads(")]
    assert [int(c.rsplit(", ", 1)[1].rstrip(")")) for c in calls] == [64, 6] and len(out) == 70
    pc = station("pc")
    pc.open()
    assert len(pc.read_cells(cells[:5])) == 5
    assert not any(w.startswith("rramlab_") for w in writes(pc))
    st.close()
    pc.close()


def test_routed_and_pc_reads_of_programmed_cells_agree(tmp_path: Path) -> None:
    st = station()                                            # the first 16 cells formed and programmed to 10–85 µS
    run_recipe(st, parse_recipe(FORM_AND_PROGRAM.format(n=16)), tmp_path / "form.h5")
    st.open()
    cells = [(r, c) for r in range(2) for c in range(8)]
    routed = st.read_cells(cells)
    pc = [st.read(r, c, release=True) for r, c in cells]
    g_routed = np.array([r.conductance for r in routed])
    g_pc = np.array([r.conductance for r in pc])
    assert g_pc.min() > 8e-6 and g_pc.max() < 95e-6       # programmed into the 10–85 µS window
    # the same cells a fraction of a second apart: equal within read noise and relaxation (a few 0.1 µS)
    np.testing.assert_allclose(g_routed, g_pc, rtol=0.02, atol=0.3e-6)
    assert abs(np.mean(g_routed - g_pc)) < 0.15e-6
    st.close()


# ---------------------------------------------------------------------------------------------- faults
def test_a_relay_stuck_open_stops_the_routed_reads_before_the_outputs_turn_on(tmp_path: Path) -> None:
    from rramlab.simulator.faults import Fault

    st = station()
    st.open()
    bench = bench_of(st)
    bench.by_name["matrix"].on_fault(Fault("relay_fail", match="", params={"channels": "2A04"}))
    with pytest.raises(RoutingError, match=r"cell \(0, 3\): routed read 4 of 5: .*every matrix opened") as err:
        st.read_cells([(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)])
    assert [(r.row, r.col) for r in err.value.readings] == [(0, 0), (0, 1), (0, 2)]     # the reads made before it
    assert bench.by_name["matrix"].closed == set()
    assert bench.events.of_kind("hot_switch") == []
    smu = bench.by_name["smu"]
    assert not smu.channels["a"].state.output and not smu.channels["b"].state.output
    assert [(r.row, r.col) for r in st.read_cells([(1, 5), (1, 6)])] == [(1, 5), (1, 6)]   # a clean route follows
    st.close()


def test_an_error_on_the_node_stops_the_call_and_nothing_bad_is_sent() -> None:
    st = station()
    st.open()
    smu = st.instruments["smu"]
    bench = bench_of(st)
    bench.transcript.clear()
    for bad, message in [(NodeSwitch(0, "", "1A01", "1A01"), r"node must be a TSP-Link node number 1-64"),
                         (NodeSwitch(2, "", "1A01') reset() x=('", "1A01"), r"letters, digits and , ; : only")]:
        with pytest.raises(ValueError, match=message):
            smu.routed_reads("a", "b", 0.2, [[bad]], 1.0)
    with pytest.raises(ValueError, match=r"letters, digits and , ; : only"):      # a newline would split the call
        smu.routed_reads("a", "b", 0.2, [[NodeSwitch(2, "", "1A01\n", "1A01")]], 1.0)
    with pytest.raises(ValueError, match=r"voltage"):
        smu.routed_reads("a", "b", 250.0, [[]], 1.0)
    assert writes(st) == []                                   # refused before any write
    with pytest.raises(InstrumentError, match=r"1115"):       # a 7174A has no column 13: the node queues 1115
        smu.routed_reads("a", "b", 0.2, [[NodeSwitch(2, "", "1A13", "1A13")]], 1.0)
    chip = bench.by_name["smu"]
    assert not chip.channels["a"].state.output and not chip.channels["b"].state.output
    st.close()


def test_a_node_that_power_cycles_stops_the_run_and_the_next_open_links_it_again() -> None:
    st = station()
    st.open()
    st.read_cells([(0, 0), (0, 1)])
    bench = bench_of(st)
    bench.by_name["matrix"].power_on()                        # the 707B's mains switch: relays open, link lost
    with pytest.raises(InstrumentError, match=r"not in the node table"):      # gone until tsplink.reset()
        st.read_cells([(0, 1), (0, 2)])                       # (0, 1) is routed as far as the station knows
    with pytest.raises(InstrumentRebooted, match=r"matrix: powered on"):
        st.checkpoint()
    failures = st.safe_state()                                # the node cannot be reached: said, not assumed
    assert failures == [f"matrix: {failures[0].split(': ', 1)[1]}"] and "not in the master's node table" in failures[0]
    assert st.router._closed is None                          # the station does not believe its relays open
    chip = bench.by_name["smu"]
    assert not chip.channels["a"].state.output and not chip.channels["b"].state.output
    st.open()                                                 # tsplink.reset() again: the node is back
    assert writes(st).count("print(tsplink.reset(2))") == 2
    out = st.read_cells([(0, 2), (0, 3)])
    assert len(out) == 2 and bench.by_name["matrix"].closed == {(1, "B", 1), (2, "A", 4), (3, "C", 4)}
    st.checkpoint()                                           # the PON bit was read and cleared at open
    st.close()


def test_a_network_that_does_not_come_up_fails_open_before_any_relay_moves() -> None:
    st = station(bench="2636b_707b")                          # the default bench: no TSP-Link cable
    bench = bench_of(st)
    st.instruments["smu"].write("smua.source.output = smua.OUTPUT_ON")     # left on by an earlier session
    assert bench.by_name["smu"].channels["a"].state.output
    with pytest.raises(StationMismatch, match=r"instruments\.smu: the TSP-Link network of matrix did not come up: "
                                              r".*1219.*safe state: matrix: .*not in the master's node table"):
        st.open()
    assert bench.events.counts.get("relays", 0) == 0           # no relay moved
    assert not bench.by_name["smu"].channels["a"].state.output  # the SMU's outputs off all the same
    st.close()


# ------------------------------------------------------------------------------------- a whole retention
def test_retention_through_the_routed_reads_matches_the_pc_path(tmp_path: Path) -> None:
    recipe = parse_recipe(FORM_AND_PROGRAM.format(n=16) + RETENTION)
    runs, calls = {}, {}
    for loops in ("auto", "pc"):
        st = station(loops)
        run_recipe(st, recipe, tmp_path / f"{loops}.h5")
        calls[loops] = sum(w.startswith("rramlab_routed_reads(") for w in writes(st))
        runs[loops] = open_run(tmp_path / f"{loops}.h5").table("retention")
    a, p = runs["auto"], runs["pc"]
    assert len(a) == len(p) == 16 * 5                         # τ = 1, 10, 100, 1000, 10000 s for every cell
    assert calls["pc"] == 0 and 5 <= calls["auto"] <= 16 * 5 / 2          # reads batched, several cells per call
    # the same relaxation on both paths: each cell's k-th read against its programmed state, mean over the cells
    for t in (a, p):
        t["k"] = t.sort_values("t").groupby(["row", "col"]).cumcount()
    for k in (0, 4):
        da, dp = (t.loc[t["k"] == k, "g"] - t.loc[t["k"] == k, "g0"] for t in (a, p))
        assert len(da) == len(dp) == 16
        assert abs(da.mean() - dp.mean()) < 0.5e-6
    # late reads keep their real time stamp: τ within a read's duration of the schedule
    assert np.all(a["tau"] >= 1.0) and np.all(np.diff(a["t"]) >= 0)


def test_the_cell_boundary_check_drains_the_nodes_errors_once_with_the_masters() -> None:
    st = station()
    st.open()
    smu = st.instruments["smu"]
    bench_of(st).transcript.clear()
    st.checkpoint()
    sent = writes(st)
    assert sent.count("print(errorqueue.count)") == 1                 # the master's queue holds the node's too
    assert "print(node[2] ~= nil and node[2].status.standard.event or -1)" in sent
    smu.write("node[2].channel.close('1A13')")                        # a 7174A has no column 13: node 2 queues 1115
    with pytest.raises(InstrumentError, match=r"1115"):
        st.checkpoint()
    st.close()


def test_retention_keeps_the_reads_a_failed_routed_call_made_before_the_failure() -> None:
    from rramlab.protocols.base import Record
    from rramlab.protocols.catalog import PROTOCOLS
    from rramlab.simulator.faults import Fault

    st = station()
    st.open()
    matrix = bench_of(st).by_name["matrix"]
    read_cells = st.read_cells

    def stuck_then_read(cells, **kw):  # noqa: ANN001, ANN003, ANN202 - the relay sticks once the schedule starts
        matrix.on_fault(Fault("relay_fail", match="", params={"channels": "2A04"}))
        return read_cells(cells, **kw)

    st.read_cells = stuck_then_read
    proto = PROTOCOLS["retention"].from_mapping({"t_first": 1.0, "horizon": 10.0, "points_per_decade": 1,
                                                 "delay_fraction": 0.5}, [(0, c) for c in range(6)])
    records = []
    with pytest.raises(RoutingError, match=r"cell \(0, 3\)"):
        for event in proto.run(st, {}):
            if isinstance(event, Record):
                records.append(event.values)
    assert [(r["row"], r["col"]) for r in records] == [(0, 0), (0, 1), (0, 2)]      # made before the stuck relay
    assert all(r["tau"] >= 1.0 and r["g"] > 0 for r in records)
    st.close()


def test_a_read_never_waits_longer_than_its_own_delay_fraction_for_a_batch() -> None:
    """Cells programmed at t = 0, 909 and 1000 s: cell (0, 0)'s 1000 s read falls due at 1000 s, (0, 2)'s 1 s read at
    1001 s and (0, 1)'s 100 s read at 1009 s. With delay_fraction 0.01 the 1000 s read may wait 10 s but the 1 s
    read only 0.01 s: it must not wait for the 100 s read (it would be read at τ ≈ 9 s)."""
    from rramlab.protocols.base import Record
    from rramlab.protocols.catalog import PROTOCOLS
    from rramlab.protocols.results import Programmed, ProgrammedCell, Results

    st = station()
    st.open()
    st.clock.wait_until(1.0)
    programmed = Programmed()
    for cell, t in (((0, 0), 0.0), ((0, 1), 909.0), ((0, 2), 1000.0)):
        programmed.record(cell, ProgrammedCell(50e-6, 50e-6, t))
    results = Results()
    results.put(programmed)
    f = 0.01
    proto = PROTOCOLS["retention"].from_mapping({"t_first": 1.0, "horizon": 1e3, "points_per_decade": 1,
                                                 "delay_fraction": f, "idle_after": 1e6},
                                                [(0, 0), (0, 1), (0, 2)])
    rows = [e.values for e in proto.run(st, results) if isinstance(e, Record)]
    assert len(rows) == 3 * 4
    read_time = 0.05                                           # s: a routed read at 1 PLC takes ~0.03 s
    for r in rows:
        tau = min((1.0, 10.0, 100.0, 1000.0), key=lambda s: abs(math.log(r["tau"] / s)))
        assert tau <= r["tau"] <= tau * (1 + f) + 3 * read_time, (r["row"], r["col"], tau, r["tau"])
    st.close()


def test_a_failure_in_a_later_call_keeps_the_readings_of_the_calls_before_it() -> None:
    from rramlab.drivers.errors import ReplyError

    st = station()
    st.open()
    cells = [(r, c) for r in range(8) for c in range(8)] + [(0, 0), (0, 1)]
    # the second call (cells 65-66, routed from (7, 7)) gets a garbled reply
    bench_of(st).faults.add("garble", match=r"^rramlab_routed_reads\(smua, smub, 0\.2, \{\{2,'1B08", resource=SMU,
                            reply="garbage")
    with pytest.raises(ReplyError) as err:
        st.read_cells(cells)
    assert [(r.row, r.col) for r in err.value.readings] == cells[:64]
    assert st.router._closed is None and st._cell is None      # nothing believed about relays or outputs
    assert [(r.row, r.col) for r in st.read_cells([(0, 0), (0, 1)])] == [(0, 0), (0, 1)]   # a clean route follows
    st.close()


def test_a_node_of_another_model_fails_open_with_the_sources_off(tmp_path: Path) -> None:
    from rramlab.simulator.bench_config import shipped_bench_text

    bench = tmp_path / "wrong_node.toml"           # node 2 of the cable is a second 2636B, not the 707B
    text = shipped_bench_text("2636b_707b_tsplink").replace("tsplink_node = 2", "tsplink_node = 3")
    bench.write_text(text.replace('''firmware = "4.0.5"
tsplink_node = 1''', '''firmware = "4.0.5"
tsplink_node = 1

[[instruments]]
name = "smu2"
model = "2636B"
resource = "GPIB0::27::INSTR"
serial = "4428183"
firmware = "4.0.5"
tsplink_node = 2'''))
    st = station(bench=str(bench))
    st.instruments["smu"].write("smua.source.output = smua.OUTPUT_ON")     # left on by an earlier session
    # the matrix's safe state cannot work on a 2636B (no channel.*: no reply) and is reported, the SMU's is done
    with pytest.raises(StationMismatch, match=r"instruments\.matrix: TSP-Link node 2 of smu is 'Keithley Instruments "
                                              r"Inc\., Model 2636B, 4428183, 4\.0\.5', not a 707B; safe state: "
                                              r"matrix: .*shutdown step\(s\) failed"):
        st.open()
    smu = bench_of(st).by_name["smu"]
    assert bench_of(st).events.counts.get("relays", 0) == 0 and not smu.channels["a"].state.output
    st.close()


def test_the_lab_templates_tsplink_variant_is_a_valid_station_file() -> None:
    """examples/lab_2636b_707b.toml says how to reach its 707B over TSP-Link; doing what it says gives a valid file."""
    text = load_station_config("lab_2636b_707b").text
    variant = text.replace('resource = "GPIB0::16::INSTR"\nvisa_library = ""\n', "", 1).replace(
        '#   tsplink = { master = "smu", node = 2 }', 'tsplink = { master = "smu", node = 2 }', 1)
    assert variant.count("tsplink = {") == 1 and variant != text
    matrix = parse_station_config(variant).instruments["matrix"]
    assert matrix.tsplink == TspLink("smu", 2) and matrix.cards == {1: "7174A", 2: "7174A", 3: "7174A"}
