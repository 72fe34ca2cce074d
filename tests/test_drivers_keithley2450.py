"""Keithley 2450 driver: exact (command, reply) pairs written from the manual, never from an emulator.

Sources of the pairs (cited on each pair):
* [RM] Keithley Model 2450 Reference Manual 2450-901-01 Rev. B, Section 6 (p. 6-xx) and App. B;
* reply formats ([M] NR3 ``-2.384862E-06``, 7 digits; ``:OUTP?``,
  ``*OPC?``, ``TRIP?`` → ``0|1``; empty error ``0,"No error;0;0 0"`` [C: DMM6500 hardware tests];
  an error with event type and time ``<code>,"<msg>;<type>;<time>"``);
* the wire scheme the driver follows: ``.helper/scpi_scheme.md``.

Pairs the emulator must satisfy as well are read from ``tests/manual_pairs/keithley2450.toml`` (selected
by tag; each pair's citation is there, replayed against the emulator by ``tests/test_manual_pairs.py``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from manual_pairs import comm_pairs
from pymeasure.test import expected_protocol

from rramlab.drivers.errors import InstrumentError, ReplyError, ShutdownError
from rramlab.drivers.keithley2450 import PULSE_WIDTH, Keithley2450, SMU2450Channel
from rramlab.drivers.roles import ROLE_SMU, SourceMeasureChannel, SourceMeasureUnit

OK = "0"                                    # :SYST:ERR:COUN? → NR1, queue empty ([RM] :SYSTem:ERRor:COUNt?)
ERRC = ":SYST:ERR:COUN?"
K = "keithley2450"                          # tests/manual_pairs/keithley2450.toml


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    """Run ``action(instrument)`` against exactly ``pairs`` (all consumed)."""
    with expected_protocol(Keithley2450, pairs, **kwargs) as inst:
        return action(inst)


# ------------------------------------------------------------------------------------ identity
def test_identity_and_roles() -> None:
    pairs = comm_pairs(K, "identity")      # [RM] *IDN? (§1: real 2450s)
    assert run(pairs, lambda k: k.id) == "KEITHLEY INSTRUMENTS,MODEL 2450,04365704,1.6.4c"
    assert frozenset({ROLE_SMU}) == Keithley2450.ROLES
    assert Keithley2450.SMU.channels == ("1",)
    assert Keithley2450.SMU.max_voltage == 210.0
    assert Keithley2450.SMU.nplc == (0.01, 10.0)
    # the driver makes 200 µs (one 0.01 PLC reading) and >= 250 µs; a station may allow the continuous range only
    assert PULSE_WIDTH == (200e-6, 10e3) and Keithley2450.SMU.pulse_width == (250e-6, 10e3)
    assert set(Keithley2450.SMU.notes) == {"max_voltage", "current_limit", "nplc", "pulse_width"}
    for attr in ("ROLES", "id", "device_clear", "clear_errors", "check_errors", "power_cycled",
                 "shutdown", "disconnect", "lock_scope", "channel"):
        assert hasattr(Keithley2450, attr), attr
    for attr in ("key", "current_limit", "source_voltage", "output_enabled", "nplc", "measure_current_at",
                 "sweep_point", "configure_pulse", "pulse", "pulse_and_measure", "list_sweep"):
        assert hasattr(SMU2450Channel, attr), attr
    assert SourceMeasureUnit is not None and SourceMeasureChannel is not None


def test_constructor_sends_nothing_and_channel_key() -> None:
    with expected_protocol(Keithley2450, [], name="smu") as k:
        assert k.channel("1").key == "smu.1"
        assert k.channel("1") is k.smu
        with pytest.raises(ValueError, match="channel must be '1'"):
            k.channel("a")


# ------------------------------------------------------------------------------------ settings
def test_current_limit_set_exactly_and_read_back() -> None:
    # [RM] :SOURce[1]:<function>:<x>LIMit[:LEVel], p. 6-71: ":SOUR:VOLT:ILIM 1.5e-07"; [RM] :SYSTem:ERRor:COUNt?
    # → "0"; same, query form ":SOUR:VOLT:ILIM?" → NR3 "1.500000E-07" (§1)
    pairs = comm_pairs(K, "current_limit")

    def act(k: Keithley2450) -> float:
        k.smu.current_limit = 1.5e-7
        return k.smu.current_limit

    assert run(pairs, act) == 1.5e-7


def test_source_voltage_output_and_nplc_settings() -> None:
    # [RM] :SOURce[1]:<function>[:LEVel], p. 6-68 (":SOUR:VOLT 0.2", ERRC, ":SOUR:VOLT?" → "2.000000E-01");
    # [RM] :OUTPut[1][:STATe], p. 6-55 (§1: :OUTP? → 0|1); [RM] [:SENSe[1]]:<function>:NPLCycles (0.01-10)
    pairs = comm_pairs(K, "source_voltage", "output", "nplc")

    def act(k: Keithley2450) -> list[Any]:
        ch = k.smu
        out: list[Any] = []
        ch.source_voltage = 0.2
        out.append(ch.source_voltage)
        ch.output_enabled = True
        out.append(ch.output_enabled)
        ch.output_enabled = False
        out.append(ch.output_enabled)
        ch.nplc = 0.01
        out.append(ch.nplc)
        return out

    assert run(pairs, act) == [0.2, True, False, 0.01]


def test_strict_errors_off_sends_only_the_setting() -> None:
    pairs = comm_pairs(K, "dc_limit")                     # [RM] p. 6-71: ":SOUR:VOLT:ILIM 0.0001"

    def act(k: Keithley2450) -> None:
        k.smu.current_limit = 1e-4

    run(pairs, act, strict_errors=False)


def test_setting_refused_by_the_instrument_raises_with_code_and_message() -> None:
    pairs = [
        (":SOUR:VOLT 20.0", None),
        # (ERRC, "1"), (":SYST:ERR?", '-222,"Parameter data out of range;1;1367794863 384492889"'): §1 [M]/[S]
        *comm_pairs(K, "range_error_count", "range_error_entry"),
    ]

    def act(k: Keithley2450) -> None:
        k.smu.source_voltage = 20

    with pytest.raises(InstrumentError) as e:
        run(pairs, act)
    assert e.value.errors == [(-222, "Parameter data out of range")]


# ------------------------------------------------------------------------------------ hot path
def test_measure_current_at_is_one_message_and_returns_to_zero() -> None:
    # [RM] :MEASure:<function>? p. 6-4; replies joined by ';' (IEEE 488.2 §8.4.1); NR3 as in §1:
    # ":SOUR:VOLT 0.2;:MEAS:CURR?;:SOUR:VOLT 0;:SYST:ERR:COUN?" → "-2.384862E-06;0"
    pairs = comm_pairs(K, "measure")
    assert run(pairs, lambda k: k.smu.measure_current_at(0.2)) == -2.384862e-06


def test_measure_current_at_can_stay_at_the_level() -> None:
    # [RM] p. 6-4: ":SOUR:VOLT -1.25;:MEAS:CURR?;:SYST:ERR:COUN?" → "1.000000E-09;0"
    pairs = comm_pairs(K, "measure_stay")
    assert run(pairs, lambda k: k.smu.measure_current_at(-1.25, return_to_zero=False)) == 1e-9


def test_overflow_reading_is_passed_on_as_the_number() -> None:
    pairs = [(":SOUR:VOLT 5.0;:MEAS:CURR?;:SOUR:VOLT 0;:SYST:ERR:COUN?", "9.91E+37;0")]   # §1: 9.91e37
    assert run(pairs, lambda k: k.smu.measure_current_at(5)) == 9.91e37


def test_sweep_point_reads_current_and_limit_trip() -> None:
    pairs = [
        # [RM] :SOURce[1]:VOLTage:ILIMit:TRIPped? p. 6-72 → 1 when clamped at the limit
        (":SOUR:VOLT 1.5;:MEAS:CURR?;:SOUR:VOLT:ILIM:TRIP?;:SYST:ERR:COUN?", "1.050000E-04;1;0"),
        *comm_pairs(K, "sweep_point"),     # ":SOUR:VOLT 0.5;…" → "2.500000E-05;0;0" (not clamped)
    ]

    def act(k: Keithley2450) -> list[tuple[float, bool]]:
        return [k.smu.sweep_point(1.5), k.smu.sweep_point(0.5)]

    assert run(pairs, act) == [(1.05e-4, True), (2.5e-5, False)]


def test_hot_path_error_drains_the_queue_and_discards_the_reading() -> None:
    pairs = [
        (":SOUR:VOLT 0.2;:MEAS:CURR?;:SOUR:VOLT 0;:SYST:ERR:COUN?", "1.000000E-06;2"),
        (":SYST:ERR?", '-222,"Parameter data out of range;1;1367794863 384492889"'),   # §1 event form
        (":SYST:ERR?", '-113,"Undefined header;1;1367794864 100"'),                    # §1: -113 text [M]
    ]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.smu.measure_current_at(0.2))
    assert e.value.errors == [(-222, "Parameter data out of range"), (-113, "Undefined header")]


def test_garbled_reply_raises_reply_error() -> None:
    pairs = [(":SOUR:VOLT 0.2;:MEAS:CURR?;:SOUR:VOLT 0;:SYST:ERR:COUN?", "1.000000E-06")]   # count missing
    with pytest.raises(ReplyError):
        run(pairs, lambda k: k.smu.measure_current_at(0.2))


# ------------------------------------------------------------------------------------ pulses
PULSE_SETUP = ":SENS:CURR:NPLC?;:SYST:LFR?;:SOUR:VOLT?;:SOUR:VOLT:ILIM?"


def setup_pairs(nplc: str = "1", lfr: str = "50", level: str = "0",
                limit: str = "0.0001") -> list[tuple[str | None, str | None]]:
    return [
        # [RM] NPLCycles?, :SYSTem:LFRequency?, levels; setting queries in the shortest form (manual_pairs)
        (PULSE_SETUP, f"{nplc};{lfr};{level};{limit}"),
        (":SOUR:VOLT:DEL 0", None),                       # [RM] :SOURce[1]:<function>:DELay p. 6-66
        (ERRC, OK),
    ]


def test_pulse_is_a_two_point_list_sweep_back_at_the_dc_level() -> None:
    # setup_pairs() as in the file, then:
    # [RM] :SOURce[1]:LIST:<function> p. 6-78; :SOURce[1]:SWEep:<function>:LIST start,delay,count,failAbort
    # p. 6-85; :INITiate; *WAI (App. B-10). 1 ms - 0.01 PLC at 50 Hz (200 µs) = 800 µs sweep delay.
    # [:SENSe[1]]:<function>:AZERo[:STATe] OFF|ON (autozero off for the sweep, on again after):
    # ":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;:SOUR:LIST:VOLT 1.5,0.0;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;:INIT;
    # *WAI;:SENS:CURR:AZER ON;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?" → "0"
    pairs = comm_pairs(K, "pulse_setup", "pulse")
    assert pairs[:3] == setup_pairs()

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(1e-3, 1e-4)
        k.smu.pulse(1.5)

    run(pairs, act)


def test_shortest_pulse_is_one_hundredth_plc_with_no_sweep_delay() -> None:
    pairs = setup_pairs(nplc="0.1") + [
        (":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;:SOUR:LIST:VOLT -2.0,0.0;:SOUR:SWE:VOLT:LIST 1,0,1,OFF;:INIT;*WAI;"
         ":SENS:CURR:AZER ON;:SENS:CURR:NPLC 0.1;:SYST:ERR:COUN?", "0"),     # delay 0 = no delay block (p. 6-85)
    ]

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(200e-6)
        k.smu.pulse(-2)

    run(pairs, act)


def test_pulse_width_between_measurement_and_fifty_microseconds_more_is_refused() -> None:
    pairs = [(PULSE_SETUP, "1;50;0;0.0001")]   # only the query, no setting

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(230e-6)

    with pytest.raises(ValueError, match=r"width must be 0.0002 s .* within \[0.00025, "):
        run(pairs, act)


def test_pulse_at_60_hz_uses_the_60_hz_measurement_time() -> None:
    pairs = setup_pairs(lfr="60", level="0.1") + [
        # 0.01 PLC at 60 Hz = 166.667 µs; 1 ms → 833.333 µs sweep delay (1 ns steps)
        (":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;"
         ":SOUR:LIST:VOLT 1.2,0.1;:SOUR:SWE:VOLT:LIST 1,0.000833333,1,OFF;:INIT;*WAI;"
         ":SENS:CURR:AZER ON;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?", "0"),
    ]

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(1e-3)
        k.smu.pulse(1.2)

    run(pairs, act)


def test_pulse_limit_is_set_for_the_pulse_and_the_dc_limit_restored() -> None:
    pairs = setup_pairs() + [
        (":SOUR:VOLT:ILIM 0.001;:SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;"
         ":SOUR:LIST:VOLT 3.0,0.0;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;"
         ":INIT;*WAI;:SOUR:VOLT:ILIM 0.0001;:SENS:CURR:AZER ON;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?",
         "0"),   # [RM] p. 6-71
    ]

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(1e-3, 1e-3)
        k.smu.pulse(3)

    run(pairs, act)


def test_pulse_returns_to_the_level_the_driver_wrote_last() -> None:
    pairs = setup_pairs() + [
        (":SOUR:VOLT 0.3", None), (ERRC, OK),
        (":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;"
         ":SOUR:LIST:VOLT 1.5,0.3;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;:INIT;*WAI;"
         ":SENS:CURR:AZER ON;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?", "0"),
        (":SENS:CURR:NPLC 2.0", None), (ERRC, OK),
        (":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;"
         ":SOUR:LIST:VOLT 1.5,0.3;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;:INIT;*WAI;"
         ":SENS:CURR:AZER ON;:SENS:CURR:NPLC 2.0;:SYST:ERR:COUN?", "0"),
    ]

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(1e-3)
        k.smu.source_voltage = 0.3
        k.smu.pulse(1.5)
        k.smu.nplc = 2
        k.smu.pulse(1.5)

    run(pairs, act)


def test_pulse_and_measure_reads_at_the_channel_nplc_and_ends_at_zero() -> None:
    # setup_pairs(), then the 2.0 V pulse back to 0.1 V and ":SOUR:VOLT 0.1;:MEAS:CURR?;:SOUR:VOLT 0;
    # :SYST:ERR:COUN?" → "4.072050E-05;0" ([RM] p. 6-4)
    pairs = comm_pairs(K, "pulse_setup", "pulse_and_measure")
    assert pairs[:3] == setup_pairs()

    def act(k: Keithley2450) -> float:
        k.smu.configure_pulse(1e-3)
        return k.smu.pulse_and_measure(2.0, 0.1)

    assert run(pairs, act) == 4.07205e-05


def test_pulse_error_raises_at_once() -> None:
    pairs = setup_pairs() + [
        (":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;"
         ":SOUR:LIST:VOLT 1.5,0.0;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;:INIT;*WAI;"
         ":SENS:CURR:AZER ON;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?", "1"),
        (":SYST:ERR?", '-113,"Undefined header;1;1367794863 384492889"'),
    ]

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(1e-3)
        k.smu.pulse(1.5)

    with pytest.raises(InstrumentError) as e:
        run(pairs, act)
    assert e.value.errors == [(-113, "Undefined header")]


def test_after_a_failed_pulse_the_held_values_are_read_again() -> None:
    pulse = (":SENS:CURR:AZER OFF;:SENS:CURR:NPLC 0.01;"
             ":SOUR:LIST:VOLT 1.5,0.0;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;:INIT;*WAI;"
             ":SENS:CURR:AZER ON;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?")
    pairs = setup_pairs() + [
        (pulse, "1"), (":SYST:ERR?", '-222,"Parameter data out of range;1;1 2"'),
        (":SOUR:VOLT?", "0.000000E+00"),                  # level and NPLC unknown after the failure: read
        (":SENS:CURR:NPLC?", "1.000000E+00"),
        (pulse, "0"),
    ]

    def act(k: Keithley2450) -> None:
        k.smu.configure_pulse(1e-3)
        with pytest.raises(InstrumentError):
            k.smu.pulse(1.5)
        k.smu.pulse(1.5)

    run(pairs, act)


def test_pulse_before_configure_pulse_sends_nothing() -> None:
    with pytest.raises(RuntimeError, match="configure_pulse"):
        run([], lambda k: k.smu.pulse(1.0))
    with pytest.raises(RuntimeError, match="configure_pulse"):
        run([], lambda k: k.smu.pulse_and_measure(1.0, 0.1))


# ------------------------------------------------------------------------------------ list sweeps
# [RM] :SOURce[1]:LIST:<function> p. 6-78; :SOURce[1]:SWEep:<function>:LIST start,delay,count,failAbort p. 6-85;
# :TRACe:CLEar; :INITiate; *WAI (App. B); :TRACe:DATA? start,end,buffer,elements (elements comma-separated,
# p. 6-40); the source status of a reading: STAT_LIMIT 32, STAT_OUTPUT 128 (p. 8-29, bufferVar.sourcestatuses)
LIST = (':SENS:CURR:NPLC 1.0;:SOUR:LIST:VOLT 0.1,0.2,0.3;:SOUR:SWE:VOLT:LIST 1,0,1,OFF;:TRAC:CLE "defbuffer1";'
        ':INIT;*WAI;:TRAC:DATA? 1,3,"defbuffer1",READ,SOURSTAT,REL;:SYST:ERR:COUN?')


@pytest.mark.parametrize(("on", "limited"), [("128", "160"), ("1.280000E+02", "1.600000E+02")])
def test_list_sweep_is_one_message_with_limit_flags_and_times(on: str, limited: str) -> None:
    # the manual gives the status as a number, not its text form: integer and NR3 forms both read
    reply = (f"1.000000E-05,{on},0.000000E+00,2.000000E-05,{on},2.100000E-02,"
             f"1.050000E-04,{limited},4.200000E-02;0")
    trace = run([(LIST, reply)], lambda k: k.smu.list_sweep([0.1, 0.2, 0.3], 1))
    assert trace.level == (0.1, 0.2, 0.3)
    assert trace.current == (1e-5, 2e-5, 1.05e-4)
    assert trace.compliance == (False, False, True)
    assert trace.before_end == pytest.approx((0.042, 0.021, 0.0), abs=1e-15)


def test_list_sweep_error_drains_the_queue_and_discards_the_readings() -> None:
    pairs = [
        (LIST, "1.000000E-05,128,0.000000E+00,2.000000E-05,128,2.100000E-02,3.000000E-05,128,4.200000E-02;1"),
        (":SYST:ERR?", '-222,"Parameter data out of range;1;1367794863 384492889"'),   # §1 event form
    ]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.smu.list_sweep([0.1, 0.2, 0.3], 1))
    assert e.value.errors == [(-222, "Parameter data out of range")]
    # the sweep did not run (no buffer reply): the count still reports the error
    pairs = [(LIST, "2"), (":SYST:ERR?", '-221,"Settings conflict;1;1367794863 384492889"'),
             (":SYST:ERR?", '-230,"Data corrupt or stale;1;1367794863 384492890"')]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.smu.list_sweep([0.1, 0.2, 0.3], 1))
    assert [code for code, _ in e.value.errors] == [-221, -230]


def test_list_sweep_with_readings_missing_is_a_reply_error() -> None:
    with pytest.raises(ReplyError, match="3 readings of 3 elements"):
        run([(LIST, "1.000000E-05,128,0.000000E+00,2.000000E-05,128,2.100000E-02;0")],
            lambda k: k.smu.list_sweep([0.1, 0.2, 0.3], 1))


# ------------------------------------------------------------------------------------ errors
def test_check_errors_empty_queue_is_one_query() -> None:
    run(comm_pairs(K, "error_count_empty"), lambda k: k.check_errors())      # (ERRC, "0")


def test_check_errors_reports_code_and_message_without_event_tail() -> None:
    pairs = [
        (ERRC, "2"),
        (":SYST:ERR?", '-109,"Missing parameter;1;1367794863 384492889"'),          # §1 [M] -109 text
        (":SYST:ERR?", '1133,"Parameter 4, Syntax error, expected valid name parameters.;1;1 2"'),  # §1 [M]
    ]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.check_errors())
    assert e.value.errors == [(-109, "Missing parameter"),
                              (1133, "Parameter 4, Syntax error, expected valid name parameters.")]
    assert "-109 Missing parameter" in str(e.value)


def test_check_errors_is_bounded() -> None:
    pairs: list[tuple[str | None, str | None]] = [(ERRC, "40")]
    pairs += [(":SYST:ERR?", '-222,"Parameter data out of range;1;1 2"')] * 32
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.check_errors())
    assert len(e.value.errors) == 32
    assert "not drained: 40 entries, 32 read" in str(e.value)


def test_check_errors_stops_at_an_empty_entry() -> None:
    pairs = [(ERRC, "3"), (":SYST:ERR?", '-113,"Undefined header;1;1 2"'), (":SYST:ERR?", '0,"No error;0;0 0"')]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.check_errors())
    assert e.value.errors == [(-113, "Undefined header")]


def test_clear_errors_and_power_on_flag() -> None:
    pairs = [
        # [RM] App. B *CLS; [RM] App. B *ESR?: bit 7 = power on (PON) "128"; read and cleared "0"
        *comm_pairs(K, "clear", "power_on", "esr_read"),
        ("*ESR?", "160"),         # PON + command error (32)
    ]

    def act(k: Keithley2450) -> list[bool]:
        k.clear_errors()
        return [k.power_cycled(), k.power_cycled(), k.power_cycled()]

    assert run(pairs, act) == [True, False, True]


def test_reset_waits_for_completion() -> None:
    run(comm_pairs(K, "reset"), lambda k: k.reset())      # [RM] App. B *RST, *OPC? → "1"


# ------------------------------------------------------------------------------------ validators
BAD = [
    ("current_limit", 0.0), ("current_limit", 1.2), ("current_limit", math.nan), ("current_limit", True),
    ("current_limit", "1e-3"), ("source_voltage", 210.5), ("source_voltage", -math.inf), ("nplc", 0.001),
    ("nplc", 11), ("output_enabled", 2), ("output_enabled", "on"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_bad_setting_raises_before_any_write(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        run([], lambda k: setattr(k.smu, name, value))


BAD_CALLS = [
    ("measure_current_at", (250.0,), "voltage"),
    ("measure_current_at", (math.nan,), "voltage"),
    ("sweep_point", (-211.0,), "voltage"),
    ("configure_pulse", (1e-5,), "width"),
    ("configure_pulse", (2e4,), "width"),
    ("configure_pulse", (1e-3, 2.0), "current_limit"),
    ("pulse", (300.0,), "amplitude"),
    ("pulse_and_measure", (1.0, 300.0), "read_voltage"),
    ("pulse_and_measure", ("1", 0.1), "amplitude"),
    ("list_sweep", ([0.1, 250.0], 1.0), "voltage"),
    ("list_sweep", ([0.1], 20.0), "nplc"),
    ("list_sweep", ([0.1] * 101, 1.0), "levels"),
    ("list_sweep", ([], 1.0), "levels"),
]


@pytest.mark.parametrize(("method", "args", "name"), BAD_CALLS)
def test_bad_method_input_raises_before_any_write(method: str, args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        run([], lambda k: getattr(k.smu, method)(*args))


def test_range_message_names_parameter_and_range() -> None:
    with pytest.raises(ValueError, match=r"current_limit must be within \[1e-09, 1.05\] A, got 2"):
        run([], lambda k: setattr(k.smu, "current_limit", 2))


# ------------------------------------------------------------------------------------ shutdown
def test_shutdown_order_without_queries() -> None:
    pairs = [(":OUTP OFF", None), (":ABOR", None), (":SOUR:VOLT 0;:SOUR:CURR 0", None)]   # [RM] :OUTPut, :ABORt
    run(pairs, lambda k: k.shutdown())


def test_shutdown_tries_every_step_when_the_first_fails() -> None:
    pairs = [(":ABOR", None), (":SOUR:VOLT 0;:SOUR:CURR 0", None)]
    with expected_protocol(Keithley2450, pairs) as k:
        real_write = k.adapter.write
        calls = {"n": 0}

        def failing_write(command: str, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("bus error")
            real_write(command, **kwargs)

        k.adapter.write = failing_write
        with pytest.raises(ShutdownError) as e:
            k.shutdown()
        assert [step for step, _ in e.value.failures] == [":OUTP OFF"]
        assert k.isShutdown


def test_lock_scope_and_device_clear_use_the_connection() -> None:
    with expected_protocol(Keithley2450, []) as k:
        k.adapter.connection.visalib.resource_scope = "bench-1"
        assert k.lock_scope() == "bench-1"
        k.device_clear()
        k.adapter.connection.clear.assert_called_once()
