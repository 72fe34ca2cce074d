"""Station: station files, routing with read-back, safety checks before any write, safe state."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from conftest import SMU

from rramlab.drivers.roles import Crosspoint
from rramlab.drivers.station import RoutingError, SafetyError, Station
from rramlab.drivers.station_config import (
    StationConfigError,
    default_station_text,
    load_station_config,
    parse_station_config,
)

EXAMPLE = Path(__file__).parents[1] / "examples" / "lab_2636b_707b.toml"
_tags = itertools.count()


def fresh_station(query: str = "") -> Station:
    return Station.from_file(None, visa_library=f"?tag=station{next(_tags)}{'&' + query if query else ''}@rramlab")


def bench(station: Station):  # noqa: ANN201 - test side channel
    return station.instruments["smu"].adapter.connection.visalib.bench


@pytest.mark.parametrize("edit, message", [
    (("rows = 8 ", "rows = 0 "), "array.rows/cols"),
    (('driver = "keithley707b"', 'driver = "keithley7001"'), "instruments.matrix.driver"),
    (('resource = "GPIB0::26::INSTR"', 'resource = "GPIB0::26; rm -rf /"'), "instruments.smu.resource"),
    (("bit_line = 4.0,", "bit_line = -4.0,"), "safety.max_voltage.bit_line"),
    (("current_limit = { bit_line = 1e-3, word_line = 1e-6 }", "current_limit = { bit_line = 1e-3 }"),
     "safety.current_limit.word_line: missing"),
    (('WL = "matrix:1:1-8"', 'WL = "matrix:1:1-7"'), "wiring.lines.WL: 7 columns for the array's 8 WL lines"),
    (('bit_line = "smu.a"', 'bit_line = "smu.c"'), "wiring.bit_line"),
    (("[read]", "[read]\nvoltge = 0.2"), "read: unknown key(s) ['voltge']"),
    (('source = "bench"', 'source = "sundial"'), "clock.source"),
])
def test_bad_station_file_names_key_and_problem(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    text = default_station_text()
    assert old in text
    with pytest.raises(StationConfigError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        parse_station_config(text.replace(old, new, 1))


def test_example_lab_station_differs_only_in_instruments_and_clock() -> None:
    lab, sim = load_station_config(EXAMPLE), load_station_config()
    assert (lab.rows, lab.cols, lab.wiring, lab.read) == (sim.rows, sim.cols, sim.wiring, sim.read)
    assert lab.clock == "system" and all(e.visa_library == "" for e in lab.instruments.values())
    # cell (2, 5): gate on row B of column 3 (WL3), bit line on row A of slot 2 column 6, source line row C
    expected = {"matrix": {Crosspoint(1, 2, 3), Crosspoint(2, 1, 6), Crosspoint(3, 3, 6)}}
    assert lab.wiring.array.cell_points(2, 5) == sim.wiring.array.cell_points(2, 5) == expected


def test_safety_refuses_before_any_write() -> None:
    st = fresh_station()
    entries = bench(st).transcript.entries
    with pytest.raises(SafetyError, match=r"pulse amplitude must be within \[-4.0, 4.0\] V on the bit_line"):
        st.pulse(0, 0, 5.0, 2.5e-6)
    with pytest.raises(SafetyError, match=r"pulse width must be within \[1e-06, 0.001\] s"):
        st.pulse(0, 0, 1.0, 2e-3)
    with pytest.raises(SafetyError, match="gate voltage must be within"):
        st.read(0, 0, gate_voltage=5.0)
    with pytest.raises(SafetyError, match="finite"):
        st.pulse(0, 0, float("nan"), 2.5e-6)
    with pytest.raises(SafetyError, match="current_limit must be within"):
        st.dc_point(0, 0, 1.0, gate_voltage=1.2, current_limit=0.5, nplc=1)
    with pytest.raises(ValueError, match="cell"):
        st.read(8, 0)
    assert entries == []


def test_pulse_budget_per_cell_is_enforced_at_send_time() -> None:
    st = fresh_station()
    st.envelope = dataclasses.replace(st.envelope, max_pulses_per_cell=3)
    st.open()
    for _ in range(2):
        st.pulse(1, 1, 1.0, 2.5e-6)
    st.pulse_read(1, 1, 1.0, 2.5e-6)
    sent = len(bench(st).transcript.entries)
    with pytest.raises(SafetyError, match=r"cell \(1, 1\): pulse 4 exceeds safety.max_pulses_per_cell = 3"):
        st.pulse(1, 1, 1.0, 2.5e-6)
    assert len(bench(st).transcript.entries) == sent           # refused before any write
    st.pulse(1, 2, 1.0, 2.5e-6)                                # the budget is per cell
    assert st.pulses_per_cell == {(1, 1): 3, (1, 2): 1}
    st.close()


def test_open_connect_read_and_safe_state() -> None:
    st = fresh_station("noise=0")
    st.open()
    b = bench(st)
    assert b.circuit.sources["smu.a"].limiti == 1e-3 and b.circuit.sources["smu.b"].limiti == 1e-6
    r = st.read(2, 5)
    assert r.row == 2 and r.col == 5 and r.voltage == 0.2
    assert 0 < r.conductance < 5e-9                         # pristine cell
    assert b.by_name["matrix"].closed == {(1, "B", 3), (2, "A", 6), (3, "C", 6)}
    assert st.safe_state() == []
    assert all(s.output == 0 for s in b.circuit.sources.values()) and b.by_name["matrix"].closed == set()
    assert b.events.of_kind("hot_switch") == []


def test_routing_read_back_mismatch_aborts() -> None:
    st = fresh_station()
    st.open()
    bench(st).faults.add("relay_fail", match="channel.close", channels="2A01")
    with pytest.raises(RoutingError, match=r"cell \(0, 0\): matrix asked for \[card 1 row 2 col 1, card 2 row 1 col 1, "
                       r"card 3 row 3 col 1\], reports \[card 1 row 2 col 1, card 3 row 3 col 1\]"):
        st.read(0, 0)
    assert bench(st).by_name["matrix"].closed == set()   # opened again after the mismatch


def test_checkpoint_raises_queued_instrument_errors() -> None:
    from rramlab.drivers.errors import InstrumentError

    st = fresh_station()
    st.open()
    bench(st).faults.add("queue_error", match="listv", code=-222, message="Parameter data out of range")
    st.pulse(0, 0, 1.0, 1e-5)
    with pytest.raises(InstrumentError, match="-222"):
        st.checkpoint()


def test_cell_operations_refused_until_armed() -> None:
    """Without open()/arm() the bit-line limit was never set and verified: nothing may be biased."""
    st = fresh_station()
    entries = bench(st).transcript.entries
    for op in (lambda: st.read(0, 0), lambda: st.pulse(0, 0, 1.0, 2.5e-6),
               lambda: st.dc_point(0, 0, 0.5, gate_voltage=1.2, current_limit=1e-4, nplc=1)):
        with pytest.raises(SafetyError, match="not armed"):
            op()
    assert entries == [] and st.pulses_per_cell == {}         # refused before any write, nothing charged
    st.open()
    assert st.read(0, 0).current >= 0
    st.close()


def _failing_writes(st: Station, needle: str, exc: BaseException) -> None:
    real = st.instruments["smu"].write

    def write(command: str) -> None:
        if needle in command:
            raise exc
        real(command)
    st.instruments["smu"].write = write


def test_failed_shutdown_is_reported_disarms_and_the_rest_still_runs() -> None:
    st = fresh_station()
    st.open()
    st.read(0, 0)
    b = bench(st)
    assert b.circuit.sources["smu.a"].output == 1 and b.by_name["matrix"].closed
    _failing_writes(st, "smua.source.output = smua.OUTPUT_OFF", OSError("bus error"))
    failures = st.safe_state()
    assert len(failures) == 1 and failures[0].startswith("smu:") and "bus error" in failures[0]
    assert b.circuit.sources["smu.a"].output == 1                        # that step really failed...
    assert b.circuit.sources["smu.b"].output == 0 and b.by_name["matrix"].closed == set()   # ...the rest ran
    with pytest.raises(SafetyError, match="not armed"):                  # state unknown: re-arm first
        st.read(0, 1)
    # the matrix opened under a source that would not turn off, but whose level had gone to 0 V
    assert [e.details["level"] for e in b.events.of_kind("hot_switch")] == [0.0]
    del st.instruments["smu"].write
    st.arm()
    st.read(0, 1)
    assert len(b.events.of_kind("hot_switch")) == 1                      # outputs off before relays moved
    st.close()
    assert all(s.output == 0 for s in b.circuit.sources.values())


def test_ctrl_c_inside_safe_state_still_tries_every_step_then_propagates() -> None:
    st = fresh_station()
    st.open()
    st.read(0, 0)
    b = bench(st)
    _failing_writes(st, "smua.source.output = smua.OUTPUT_OFF", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        st.safe_state()
    assert b.circuit.sources["smu.b"].output == 0 and b.by_name["matrix"].closed == set()
    assert b.circuit.sources["smu.b"].levelv == 0
    with pytest.raises(SafetyError, match="not armed"):                  # state unknown: disarmed
        st.read(0, 1)


def test_a_write_that_fails_after_the_instrument_acted_is_not_cached() -> None:
    """An error queued after the instrument acted (OUTPUT_ON, then OUTPUT_OFF) surfaces at the next check: the
    station must not believe an output is off while it may be on, or the next connect would skip turning it
    off and move relays under a live source."""
    from rramlab.drivers.errors import InstrumentError

    st = fresh_station("noise=0")
    st.open()
    b = bench(st)
    b.faults.add("queue_error", match=r"smua\.source\.output = smua\.OUTPUT_ON", code=-221,
                 message="Settings conflict")
    st.read(0, 0)                            # queued after the reading's message: its own check answered 0
    assert b.circuit.sources["smu.a"].output == 1
    b.faults.add("queue_error", match=r"smua\.source\.output = smua\.OUTPUT_OFF", code=-221,
                 message="Settings conflict")
    with pytest.raises(InstrumentError, match="-221"):
        st.read(1, 1)                        # reported by the outputs-off check before the relays move
    assert b.circuit.sources["smu.a"].output == 0                       # the instrument did turn it off
    st.instruments["smu"].clear_errors()
    st.read(1, 1)
    assert b.events.of_kind("hot_switch") == []
    st.release()
    b.faults.add("queue_error", match=r"smua\.source\.output = smua\.OUTPUT_OFF", code=-221,
                 message="Settings conflict")
    st.read(2, 2, release=True)              # outputs off in the reading's message; its error is queued after it
    with pytest.raises(InstrumentError, match="-221"):
        st.read(3, 3)                        # not believed off: switched off again, and that check reports it
    st.instruments["smu"].clear_errors()
    st.read(3, 3)
    assert b.events.of_kind("hot_switch") == []
    st.close()


def test_failed_arming_leaves_the_station_disarmed() -> None:
    st = fresh_station("noise=0")
    st.open()
    st.read(0, 0)
    bench(st).faults.add("garble", match=r"print\(smua\.source\.limiti\)", reply="0.5")
    with pytest.raises(RuntimeError, match="current limit read back 0.5 A"):
        st.open()
    with pytest.raises(SafetyError, match="not armed"):
        st.read(1, 1)
    st.close()


def test_half_failed_operations_leave_nothing_cached() -> None:
    """A staircase point whose reply is garbled leaves the bit line at 2.5 V: the next read must write
    its level before turning anything on; a pulse set-up that failed is sent again in full."""
    from rramlab.drivers.errors import InstrumentError, ReplyError

    st = fresh_station("noise=0")
    st.open()
    b = bench(st)
    b.faults.add("garble", match=r"source\.compliance", reply="1e-6")
    with pytest.raises(ReplyError):
        st.dc_point(0, 0, 2.5, gate_voltage=1.2, current_limit=1e-4, nplc=1)
    b.transcript.clear()
    st.read(3, 3)
    sent = [w.decode().strip() for w in b.transcript.writes(SMU)]
    turn_on = next(i for i, w in enumerate(sent) if "smua.source.output = smua.OUTPUT_ON" in w)
    assert sent.index("smua.source.levelv = 0.0") < turn_on

    st.pulse(3, 3, 1.0, 1e-5)
    b.faults.add("queue_error", match=r"timer\[1\]\.delay = 2e-05", code=-221, message="Settings conflict")
    with pytest.raises(InstrumentError, match="-221"):
        st.pulse(3, 3, 1.0, 2e-5)
    st.instruments["smu"].clear_errors()
    b.transcript.clear()
    st.pulse(3, 3, 1.0, 1e-5)                                        # the instrument holds 2e-05 s now
    assert any("trigger.timer[1].delay = 1e-05" in w for w in [x.decode() for x in b.transcript.writes(SMU)])
    st.close()
