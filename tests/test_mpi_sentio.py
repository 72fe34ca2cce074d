"""MPI SENTIO prober: the driver's bytes, the emulator's replies, a route walked by MPI's reply rule, timing on the
virtual clock, the station's safe state with a prober, and a restarted prober.

Expected strings come from MPI's own client code and from code run on real probers, never from our emulator:

* [P] MPI's package ``SentioProberDev/SentioProberControl`` @ 2360c3e: ``sentio_prober_control/Sentio/Response.py``
  (``parse_resp``: ``errc = int(tok[0]) & 1023``, ``stat = (int(tok[0]) & ~1023) >> 10``), ``Enumerations.py``
  (``RemoteCommandError``: 11 EndOfRoute; ``StatusBits.EndOfRoute`` = 1), ``ProberSentio.py`` (``*RCS 1`` on
  construction, ``move_chuck_contact``, ``get_chuck_site_heights Wafer``, ``get_chuck_z <ref>``),
  ``CommandGroups/WafermapCommandGroup.py`` (``map:create {diameter}``, ``map:set_grid_params {ix}, {iy}, {offx},
  {offy}, {edge}``, ``map:set_grid_origin {x}, {y}``, ``map:step_die {col}, {row}, {site}``,
  ``map:step_first_die {site}``, ``map:step_next_die``), ``CommandGroups/WafermapPathCommandGroup.py``
  (``map:path:select_dies a``, ``map:set_routing ul, r``), ``CommandGroups/StatusCommandGroup.py``
  (``status:get_chuck_temp``, ``status:get_chuck_thermo_state``), ``Communication/__init__.py`` (the raw
  ``*IDN?`` example); its ``UnitTest/*.py`` mock replies (``0,0,OK``, ``0,0,3,4,0``) written by MPI.
* [E] MPI examples: ``Example-NoiseProPlus/MPI_test_NoisePro_Marco_V1_3.bas`` (``r1 = "1024"``: last die;
  ``map:get_num_dies Selected``), ``Examples-Python/map_stepping.py`` (``set_routing(UpperRight, ColBiDir)``,
  loop until EndOfRoute), ``Examples-CSharp/Sentio.BasicTcp/Program.cs`` (port 35555, ``*RCS 1`` has no reply).
* [R] code run on real probers: the "MPI_TS2000SE" pyvisa driver (``# if ok return: 0,0,OK`` for setters incl.
  ``status:set_chuck_temp`` and ``set_stepping_contact_mode``; ``status:get_chuck_temp`` exactly 3 fields,
  ``get_chuck_site_heights`` 6); SentioProberControl issues #34/#42 (``Unsupported remote command: <line>``).
"""

from __future__ import annotations

import math
import re
import sys
import typing
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import pyvisa
from pymeasure.test import expected_protocol

from rramlab.drivers.errors import ReplyError, ShutdownError
from rramlab.drivers.mpi_sentio import MpiSentio, SentioError, parse_reply
from rramlab.drivers.registry import driver_class
from rramlab.drivers.roles import ROLE_PROBER, DiePosition, Prober
from rramlab.drivers.station import InstrumentRebooted, Station
from rramlab.drivers.station_config import StationConfigError, load_station_config, parse_station_config
from rramlab.simulator.bench_config import BenchConfigError, load_bench_config, parse_bench_config, shipped_bench_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROBER = "TCPIP0::rramlab-prober::35555::SOCKET"
BENCH = "2636b_707b_sentio"
_tags = iter(range(10**6))

SETUP = [("*RCS 1", None),                                                       # [P] ProberSentio.__init__
         ("set_stepping_contact_mode StepToSeparation", "0,0,OK")]              # [R] TS2000SE "0,0,OK"


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    """``action(driver)`` against exactly ``pairs`` (all consumed)."""
    with expected_protocol(MpiSentio, pairs, **kwargs) as inst:
        return action(inst)


def fresh(query: str = "") -> str:
    return f"{BENCH}?tag=sentio{next(_tags)}{'&' + query if query else ''}@rramlab"


@pytest.fixture
def spec() -> str:
    return fresh()


@pytest.fixture
def rm(spec: str) -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager(spec)
    yield manager
    manager.close()


@pytest.fixture
def raw(rm: pyvisa.ResourceManager) -> Any:
    """A raw pyvisa session to the emulated SENTIO (LF terminations, as MPI's clients use)."""
    return rm.open_resource(PROBER, read_termination="\n", write_termination="\n", timeout=60_000)


def mpi_parse(reply: str) -> tuple[int, int, int, str]:
    """MPI's rule, reimplemented from [P] Response.parse_resp: (errc, status, cmd_id, message)."""
    tok = reply.split(",", 2)
    return int(tok[0]) & 1023, (int(tok[0]) & ~1023) >> 10, int(tok[1]), tok[2].rstrip()


# ------------------------------------------------------------------------------- role and registry
def test_registered_with_the_prober_role() -> None:
    cls = driver_class("mpi_sentio")
    assert cls is MpiSentio and frozenset({ROLE_PROBER}) == cls.ROLES
    attrs = typing._get_protocol_attrs(Prober)  # type: ignore[attr-defined]  # isinstance would query in_contact
    assert {"set_map", "step_first_die", "step_next_die", "step_die", "contact", "separate", "in_contact",
            "chuck_temperature_c", "set_chuck_temperature_c", "thermo_state", "shutdown"} <= attrs
    assert all(hasattr(cls, a) for a in attrs - {"name"})            # name: set per instance


def test_parse_reply_follows_mpi_rule() -> None:
    """[P] Response.parse_resp; 1024 = last die, 2048 = last site ([E] NoiseProPlus, C# RemoteCommandStatus)."""
    assert parse_reply("c", "0,0,ok") == parse_reply("c", "0,0,ok\n")
    r = parse_reply("c", "3072,0,1,2,0")
    assert (r.errc, r.status, r.cmd_id, r.values()) == (0, 3, 0, ["1", "2", "0"])
    assert parse_reply("c", "1035,0,x").errc == 11 and parse_reply("c", "1035,0,x").status == 1
    assert parse_reply("c", "0,123,OK").cmd_id == 123                         # [P] mock of an async command
    with pytest.raises(ReplyError):
        parse_reply("c", "garbage")


# ------------------------------------------------------------------------------- driver bytes
def test_set_map_bytes() -> None:
    """[P] WafermapCommandGroup/WafermapPathCommandGroup command strings; [E] MPI examples' UR + ur, wc."""
    pairs = [*SETUP,
             ("map:create 150", "0,0,OK"),
             ("map:set_grid_params 7000, 9000, 2500, -1000.5, 2000", "0,0,OK"),
             ("map:set_axis_orient UR", "0,0,OK"),
             ("map:set_grid_origin 0, 0", "0,0,OK"),
             ("map:path:select_dies a", "0,0,OK"),
             ("map:set_routing ur, wc", "0,0,OK"),
             ("map:get_num_dies Selected", "0,0,52")]                         # [E] NoiseProPlus
    n = run(pairs, lambda p: (p.set_map(150, 7000, 9000, grid_offset_um=(2500, -1000.5), edge_exclusion_um=2000),
                              p.die_count())[1])
    assert n == 52


def test_stepping_bytes_and_end_of_route() -> None:
    """[P] step strings and mocks ``0,0,1,2,0``/``0,0,3,4,0``; [E] ``1024`` on the last die; [P] errc 11 past it."""
    pairs = [*SETUP,
             ("map:step_first_die 0", "0,0,1,2,0"),
             ("map:step_next_die", "1024,0,3,4,0"),
             ("map:step_next_die", "11,0,End of route"),
             ("map:step_die 3, 4, 0", "0,0,3,4,0"),
             ("map:step_die -2, 5, 0", "0,0,-2,5,0")]
    out = run(pairs, lambda p: (p.step_first_die(), p.step_next_die(), p.step_next_die(), p.step_die(3, 4),
                                p.step_die(-2, 5, site=0)))
    assert out == (DiePosition(1, 2, 0), DiePosition(3, 4, 0, last=True), None, DiePosition(3, 4, 0),
                   DiePosition(-2, 5, 0))


def test_error_reply_names_command_and_message() -> None:
    """A non-zero errc raises SentioError with SENTIO's message ([R] issue #34 text)."""
    pairs = [*SETUP, ("map:step_die 9, 9, 0", "8,0,Die 9,9 is not on the wafer map")]
    with pytest.raises(SentioError) as e:
        run(pairs, lambda p: p.step_die(9, 9))
    assert e.value.code == 8 and "map:step_die 9, 9, 0" in str(e.value) and "not on the wafer map" in str(e.value)
    pairs = [*SETUP, ("map:step_next_die", "3,0,Unsupported remote command: map:step_next_die")]
    with pytest.raises(SentioError, match="Unsupported remote command"):
        run(pairs, lambda p: p.step_next_die())


def test_contact_temperature_and_identity_bytes() -> None:
    """[P] ``*IDN?`` raw reply example; [R] TS2000SE 3-field temperature, ``0,0,OK`` set-point, 6-field heights;
    [P] ``status:set_chuck_temp {temp:.2f}`` (2022 form, accepted by every SENTIO the sources used)."""
    idn = "MPI Corporation,Sentio - Probe System Software Suite,0,23.2.99.0"
    pairs = [("*IDN?", idn), *SETUP,
             ("move_chuck_contact", "0,0,5000"),
             ("get_chuck_site_heights Wafer", "0,0,5000,300,0,0"),
             ("get_chuck_z Zero", "0,0,5000"),
             ("move_chuck_separation", "0,0,4700"),
             ("status:set_chuck_temp 75.00", "0,0,OK"),
             ("status:get_chuck_temp", "0,0,30.5"),
             ("status:get_chuck_temp_setpoint", "0,0,75"),
             ("status:get_chuck_thermo_state", "0,0,Heating")]
    out = run(pairs, lambda p: (p.id, p.contact(), p.in_contact, p.separate(), p.set_chuck_temperature_c(75),
                                p.chuck_temperature_c(), p.chuck_temperature_setpoint_c(), p.thermo_state()))
    assert out == (idn, 5000.0, True, 4700.0, None, 30.5, 75.0, "Heating")


def test_bad_arguments_refused_before_any_write() -> None:
    """Every argument is checked before the session's first byte (an empty protocol: nothing may be sent)."""
    def bad(action: Any, match: str, **kwargs: Any) -> None:
        with pytest.raises(ValueError, match=match):
            run([], action, **kwargs)
    bad(lambda p: p.set_chuck_temperature_c(301), r"t_c .*\[-60.0, 300.0\] °C")
    bad(lambda p: p.set_chuck_temperature_c(float("nan")), "t_c")
    bad(lambda p: p.set_chuck_temperature_c(250), r"t_c .*\[-40.0, 200.0\]", temperature_range_c=(-40, 200))
    bad(lambda p: p.step_die(1.5, 2), "column")
    bad(lambda p: p.step_die(True, 2), "column")
    bad(lambda p: p.step_die(1, 2, -1), "site")
    bad(lambda p: p.set_map(0, 1000, 1000), "diameter_mm")
    bad(lambda p: p.set_map(100, 1000, -5), "die_height_um")
    bad(lambda p: p.set_map(100, 1000, 1000, edge_exclusion_um=-1), "edge_exclusion_um")
    bad(lambda p: p.die_count("all"), "which")


def test_shutdown_separates_and_reports_failure() -> None:
    run([*SETUP, ("move_chuck_separation", "0,0,4700")], lambda p: p.shutdown())
    with pytest.raises(ShutdownError, match="move_chuck_separation"):
        run([*SETUP, ("move_chuck_separation", "2,0,Chuck error")], lambda p: p.shutdown())


# ------------------------------------------------------------------------------- emulator replies
NUMBER = r"-?\d+(\.\d+)?"


def test_emulator_reply_formats(raw: Any) -> None:
    """Each emulated reply has the shape the sources show (see the module docstring for [P]/[E]/[R])."""
    q = raw.query
    assert re.fullmatch(r"MPI Corporation,Sentio - Probe System Software Suite,[^,]+,[\d.]+", q("*IDN?"))  # [P] raw
    raw.write("*RCS 1")                                  # [E] C#: no response; the next reply is the next query's
    for setter in ("map:create 150", "map:set_grid_params 7000, 9000, 2500, -1000, 2000", "map:set_axis_orient UR",
                   "map:set_grid_origin 0, 0", "map:path:select_dies a", "map:set_routing ur, wc",
                   "set_stepping_contact_mode StepToSeparation", "status:set_chuck_temp 75.00, False",
                   "status:set_chuck_temp 60.00"):
        assert q(setter) == "0,0,OK", setter                                    # [R] TS2000SE, [P] mocks
    assert re.fullmatch(r"0,0,\d+", q("map:get_num_dies Selected"))            # [E] NoiseProPlus 3rd token
    assert re.fullmatch(rf"0,0,{NUMBER}", q("status:get_chuck_temp"))           # [R] exactly 3 fields
    assert re.fullmatch(rf"0,0,{NUMBER}", q("status:get_chuck_temp_setpoint"))
    assert q("status:get_chuck_thermo_state") in ("0,0,Heating", "0,0,Cooling")  # [R] TS2000SE words
    assert re.fullmatch(r"0,0,-?\d+,-?\d+,0", q("map:step_first_die 0"))         # [P] mock 0,0,1,2,0
    assert re.fullmatch(r"0,0,-?\d+,-?\d+,0", q("map:step_next_die"))
    assert re.fullmatch(r"0,0,-?\d+,-?\d+,0", q("map:step_die 0, 0, 0"))         # [P] mock 0,0,3,4,0
    assert re.fullmatch(r"0,0,\d+,0,0", q("map:die:get_current_index"))          # [P] mock: index,col,row
    assert re.fullmatch(rf"0,0,{NUMBER}", q("move_chuck_contact"))              # [R] TS2000SE 3 fields
    assert re.fullmatch(rf"0,0,{NUMBER}(,{NUMBER}){{3}}", q("get_chuck_site_heights Wafer"))   # [R] 6 fields
    assert re.fullmatch(rf"0,0,{NUMBER}", q("get_chuck_z Zero"))                 # [R] basil split(',')[2]
    assert re.fullmatch(rf"0,0,{NUMBER},{NUMBER}", q("get_chuck_xy"))            # [R] TS2000SE 4 fields
    assert re.fullmatch(rf"0,0,{NUMBER}", q("move_chuck_separation "))          # [P] sends a trailing blank
    assert q("map:get_routing") == "0,0,UR,WC"                                   # [P] mock "UR,WC"
    # [R] issues #34/#42: the unsupported line echoed; the code (3) is our [U] choice
    assert mpi_parse(q("siph:get_nanocube_xy West"))[3] == "Unsupported remote command: siph:get_nanocube_xy West"
    assert mpi_parse(q("siph:get_nanocube_xy West"))[0] != 0


def test_emulator_accepts_crlf_spacing_and_case(raw: Any) -> None:
    """[E] Lua sends ``\\r\\n``; ``map:set_routing ur,wc`` without blanks; keywords in any case ([P]/[E])."""
    raw.write_termination = "\r\n"
    assert raw.query("map:set_routing ur,wc") == "0,0,OK"
    assert raw.query("map:set_axis_orient ur") == "0,0,OK"
    assert raw.query("select_module Wafermap") == "0,0,OK"
    assert raw.query("map:get_axis_orient") == "0,0,UR"
    raw.write_termination = "\n"
    raw.write("*IDN?")
    assert raw.read_raw().endswith(b"Suite,0,26.0.0.0\n")   # LF only ([R] TS2000SE's exact compare)


# ------------------------------------------------------------------------------- the round map and its route
GEOMETRY = {"diameter_mm": 150.0, "w": 7000.0, "h": 9000.0, "ox": 2500.0, "oy": -1000.0, "edge": 2000.0}


def numpy_map(g: dict[str, float]) -> set[tuple[int, int]]:
    """Dies fully inside the wafer minus the edge exclusion (the emulator's documented rule), computed
    independently: every die's farthest corner from the centre, vectorised."""
    r = g["diameter_mm"] * 500.0 - g["edge"]
    k = np.arange(-60, 61)
    i, j = np.meshgrid(k, k, indexing="ij")
    x0, x1 = g["ox"] + i * g["w"], g["ox"] + (i + 1) * g["w"]
    y0, y1 = g["oy"] + j * g["h"], g["oy"] + (j + 1) * g["h"]
    far = np.hypot(np.maximum(np.abs(x0), np.abs(x1)), np.maximum(np.abs(y0), np.abs(y1)))
    inside = far <= r
    return {(int(a), int(b)) for a, b in zip(i[inside], j[inside], strict=True)}


def test_route_visits_each_die_once_then_end_of_route(raw: Any) -> None:
    """MPI's client loop ([E] map_stepping.py: step until EndOfRoute) on the emulator, parsed by MPI's rule."""
    g = GEOMETRY
    for cmd in (f"map:create {g['diameter_mm']:g}",
                f"map:set_grid_params {g['w']:g}, {g['h']:g}, {g['ox']:g}, {g['oy']:g}, {g['edge']:g}",
                "map:set_axis_orient UR", "map:set_grid_origin 0, 0", "map:path:select_dies a",
                "map:set_routing ur, wc"):
        assert mpi_parse(raw.query(cmd))[0] == 0
    expected = numpy_map(g)
    assert len(expected) > 100                                   # a real map, not an edge case
    assert int(mpi_parse(raw.query("map:get_num_dies Present"))[3]) == len(expected)
    assert int(mpi_parse(raw.query("map:get_num_dies Selected"))[3]) == len(expected)
    visited, last_flags = [], []
    errc, stat, _, msg = mpi_parse(raw.query("map:step_first_die 0"))
    while errc == 0:
        col, row, site = (int(v) for v in msg.split(","))
        visited.append((col, row))
        last_flags.append(bool(stat & 1))
        errc, stat, _, msg = mpi_parse(raw.query("map:step_next_die"))
    assert errc == 11                                            # [P] RemoteCommandError.EndOfRoute
    assert len(visited) == len(set(visited)) and set(visited) == expected
    assert last_flags == [False] * (len(visited) - 1) + [True]   # [E] 1024 exactly on the last die
    # ColBiDir from the upper right ([P] RoutingPriority: "Columns first. Step odd columns backwards")
    columns = sorted({c for c, _ in expected}, reverse=True)
    order: list[tuple[int, int]] = []
    for n, c in enumerate(columns):
        rows = sorted((r for cc, r in expected if cc == c), reverse=(n % 2 == 0))
        order += [(c, r) for r in rows]
    assert visited == order
    assert mpi_parse(raw.query("map:step_next_die"))[0] == 11    # still past the end


def test_step_die_off_the_map_is_refused(raw: Any) -> None:
    errc, _, _, msg = mpi_parse(raw.query("map:step_die 40, 40, 0"))
    assert errc != 0 and "40" in msg


# ------------------------------------------------------------------------------- timing on the virtual clock
def test_contact_step_and_thermal_timing(rm: pyvisa.ResourceManager, spec: str) -> None:
    bench = rm.visalib.bench
    t = bench.timing
    p = MpiSentio(PROBER, visa_library=spec, timeout=60_000)
    try:
        p.step_die(0, 0)
        t0 = bench.clock.now
        p.contact()
        dt = bench.clock.now - t0
        assert t.chuck_z_move <= dt < t.chuck_z_move + 0.01
        assert bench.prober_state().in_contact and p.in_contact
        t0 = bench.clock.now
        pos = p.step_die(2, 0)             # separate, two 15 mm dies in x (StepToSeparation: stays separated)
        dt = bench.clock.now - t0
        move = t.chuck_z_move + t.chuck_xy_overhead + 30_000 / t.chuck_xy_speed
        assert move <= dt < move + 0.01 and pos == DiePosition(2, 0, 0)
        assert not p.in_contact and bench.prober_state().die == (2, 0, 0)
        # thermal: 25 °C → 80 °C; ramp at chuck_ramp_rate until chuck_ramp_rate·τ from the set-point, then exp
        assert p.thermo_state() == "Standby"
        p.set_chuck_temperature_c(80.0)
        t_set = bench.clock.now
        rate, tau = t.chuck_ramp_rate, t.chuck_thermal_tau
        bench.clock.advance_to(t_set + 100.0)
        expected = 25.0 + rate * (bench.clock.now - t_set)
        assert p.chuck_temperature_c() == pytest.approx(expected, abs=0.02)
        assert p.thermo_state() == "Heating"
        t_knee = (55.0 - rate * tau) / rate
        bench.clock.advance_to(t_set + t_knee + 5 * tau)
        expected = 80.0 - rate * tau * math.exp(-(bench.clock.now - t_set - t_knee) / tau)
        assert p.chuck_temperature_c() == pytest.approx(expected, abs=0.02)
        assert p.thermo_state() == "Controlling"
        p.set_chuck_temperature_c(20.0)
        assert p.thermo_state() == "Cooling"
        kinds = [e.kind for e in bench.events.events if e.source == "prober"]
        assert kinds == ["die_step", "chuck_contact", "chuck_separation", "die_step", "chuck_temp_setpoint",
                         "chuck_temp_setpoint"]
    finally:
        p.disconnect()


def test_out_of_range_temperature_refused_before_any_write(rm: pyvisa.ResourceManager, spec: str) -> None:
    bench = rm.visalib.bench
    p = MpiSentio(PROBER, visa_library=spec, temperature_range_c=(-40.0, 150.0))
    try:
        before = len(bench.transcript.writes(PROBER))
        with pytest.raises(ValueError, match=r"t_c .*\[-40.0, 150.0\] °C"):
            p.set_chuck_temperature_c(151.0)
        assert len(bench.transcript.writes(PROBER)) == before == 0
        p2 = MpiSentio(PROBER, visa_library=spec)      # the driver's widest range ...
        with pytest.raises(SentioError) as e:                              # ... and the bench chuck's [-40, 200]
            p2.set_chuck_temperature_c(250.0)
        assert e.value.code == 8 and bench.prober_state().setpoint_c is None
    finally:
        p.disconnect()


# ------------------------------------------------------------------------------- the station
def test_station_file_accepts_a_socket_prober() -> None:
    cfg = load_station_config("sim_2636b_707b_sentio")
    assert cfg.instruments["prober"].roles == frozenset({ROLE_PROBER})
    text = cfg.text.replace("TCPIP0::rramlab-prober::35555::SOCKET", "TCPIP0::rramlab-prober::port::SOCKET")
    with pytest.raises(StationConfigError, match="instruments.prober.resource"):
        parse_station_config(text, "bad.toml")


def test_safe_state_order_sources_relays_then_chuck() -> None:
    st = Station.from_file("sim_2636b_707b_sentio", visa_library=fresh())
    try:
        st.open()
        prober = st.instruments["prober"]
        bench = prober.adapter.connection.visalib.bench
        prober.step_first_die()
        prober.contact()
        st.read(1, 2)                                      # outputs on, relays closed, chuck in contact
        n = len(bench.events.events)
        assert st.safe_state() == []
        events = [(e.source, e.kind, e.details) for e in bench.events.events[n:]]
        kinds = [(s, k) for s, k, _ in events if k in ("output_off", "relays", "chuck_separation")]
        assert kinds == [("smu.a", "output_off"), ("smu.b", "output_off"), ("matrix", "relays"),
                         ("prober", "chuck_separation")]
        assert next(d for s, k, d in events if k == "relays")["closed"] == []
        assert not bench.prober_state().in_contact
    finally:
        st.close()


def test_power_cycled_prober_stops_the_run() -> None:
    st = Station.from_file("sim_2636b_707b_sentio", visa_library=fresh())
    try:
        st.open()
        prober = st.instruments["prober"]
        bench = prober.adapter.connection.visalib.bench
        assert not prober.power_cycled()                   # no die stepped to yet: nothing lost, nothing asked
        prober.step_die(1, 1)
        prober.contact()
        st.checkpoint()                                    # the die is still active
        bench.faults.add("reboot", match="get_current_index", resource=PROBER)
        with pytest.raises(InstrumentRebooted, match="prober"):
            st.checkpoint()
        assert bench.events.of_kind("reboot")[-1].source == "prober"
        state = bench.prober_state()
        assert state.die is None and not state.in_contact  # SENTIO restarted: no die, chuck at separation [U]
        assert prober.die is None
        assert prober.step_first_die().column is not None  # the session set-up is sent again
    finally:
        st.close()


def test_dropped_reply_times_out_and_device_clear_recovers(rm: pyvisa.ResourceManager, spec: str) -> None:
    """A lost reply is a VISA timeout on the virtual clock; a device clear and the session set-up are redone."""
    bench = rm.visalib.bench
    p = MpiSentio(PROBER, visa_library=spec, timeout=5_000)
    try:
        bench.faults.add("drop_reply", match="move_chuck_contact", resource=PROBER)
        t0 = bench.clock.now
        with pytest.raises(pyvisa.errors.VisaIOError):
            p.contact()
        assert bench.clock.now - t0 >= 5.0
        p.device_clear()
        assert p.separate() == 4700.0                       # the bench's contact 5000 µm, gap 300 µm
        assert writes_to(bench)[-3:] == ["*RCS 1", "set_stepping_contact_mode StepToSeparation",
                                         "move_chuck_separation"]
    finally:
        p.disconnect()


def writes_to(bench: Any) -> list[str]:
    return [w.decode().rstrip("\r\n") for w in bench.transcript.writes(PROBER)]


def test_bench_file_prober_tables_are_checked() -> None:
    text = shipped_bench_text(BENCH)
    prober = next(i for i in load_bench_config(BENCH).instruments if i.model == "SENTIO")
    assert prober.options["diameter_mm"] == 100.0 and prober.options["temperature_range_c"] == (-40.0, 200.0)
    for old, new, message in (("edge_exclusion_um = 0 }", "edge_mm = 0 }", "map: unknown key"),
                              ("diameter_mm = 100", "diameter_mm = 1000", "map.diameter_mm"),
                              ("temperature_c = 25.0", "temperature_c = 250.0", "chuck.temperature_c")):
        assert old in text
        with pytest.raises(BenchConfigError, match=re.escape(message)):
            parse_bench_config(tomllib.loads(text.replace(old, new, 1)), "edited.toml")   # the prober's line
