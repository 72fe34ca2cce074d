"""Keithley 2636B driver: (command, reply) pairs written from the manual (tier 1) and behaviour on the
simulated bench (tiers 2-3).

Tier 1 reads its pairs from ``tests/manual_pairs/keithley2636b.toml`` (selected by tag with
:func:`manual_pairs.comm_pairs`; each pair cites its section of the Series 2600B Reference Manual
2600BS-901-01 or the code written against real instruments, none was recorded from the emulator). The
same pairs are replayed against the emulator by ``tests/test_manual_pairs.py``. The driver session of
:func:`session` runs on a fresh simulated bench (tier 2-3), not against a recorded transcript.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import pyvisa
from conftest import MATRIX, SMU, bench_of, open_rm, writes
from manual_pairs import comm_pairs
from pymeasure.test import expected_protocol
from pyvisa import errors as visa_errors

from rramlab.drivers import InstrumentError, Keithley707B, Keithley2636B, ReplyError, ShutdownError
from rramlab.drivers.keithley2636b import SMUChannel
from rramlab.drivers.tsp import ESR_PON, parse_numbers

K = "keithley2636b"                     # tests/manual_pairs/keithley2636b.toml


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    """Run ``action(instrument)`` against exactly ``pairs`` (all consumed)."""
    with expected_protocol(Keithley2636B, pairs, **kwargs) as inst:
        return action(inst)


SAMPLE_SCRIPT = """
function rr_sample(smu, n)
  smu.measure.count = n
  smu.measure.i(smu.nvbuffer1)
  smu.measure.count = 1
end
"""


# ------------------------------------------------------------------------------- session
def session(smu: Keithley2636B, mx: Keithley707B) -> dict[str, Any]:
    """A coherent session: set-up, settings with read-back, errors, pulses, measurements, shutdown."""
    out: dict[str, Any] = {"id": smu.id}
    smu.reset()
    smu.clear_errors()
    smu.check_errors()
    a, b = smu.smua, smu.smub

    a.source_function = "voltage"
    out["function"] = a.source_function
    a.current_limit = 1.5e-7                       # sub-µA: pymeasure's %f driver would send 0.000000
    out["current_limit"] = a.current_limit
    a.voltage_limit = 2.5
    out["voltage_limit"] = a.voltage_limit
    a.nplc = 0.01
    out["nplc"] = a.nplc
    a.measure_delay = -1
    out["measure_delay"] = a.measure_delay
    a.source_delay = 0
    a.current_range = 1e-6
    out["current_range"] = (a.current_range, a.current_autorange)
    a.current_autorange = True

    a.source_voltage_range = 2                     # fixed 2 V range: 3 V is refused by the instrument
    try:
        a.source_voltage = 3
    except InstrumentError as e:
        out["range_error"] = e.errors
    out["level_after_error"] = a.source_voltage
    a.source_voltage_autorange = True
    out["autorange"] = a.source_voltage_autorange

    smu.load_script("rrsample", SAMPLE_SCRIPT)
    smu.sync("rramlab-sync-1")

    mx.exclusive_close(["1B01", "2A01", "3C01"])   # cell (1, 1): gate WL1, BL1, SL1
    b.source_voltage = 1.2
    b.current_limit = 1e-6
    b.output_enabled = True
    a.current_limit = 1e-3
    a.nplc = 1
    a.output_enabled = True
    out["outputs_on"] = (a.output_enabled, b.output_enabled)

    a.configure_pulse(1e-4, current_limit=1e-4)
    out["pristine"] = a.pulse_and_measure(2.0, 0.2)
    out["formed"] = a.pulse_and_measure(3.5, 0.2)
    b.source_voltage = 3.3
    a.pulse(-1.5)                                  # RESET into the analog window, no reply
    smu.check_errors()                             # the caller's check after hot-path pulses
    out["after_reset"] = a.pulse_and_measure(1.0, 0.2)

    out["i_at"] = a.measure_current_at(0.2)       # one round trip, back at 0 V
    out["i_stay"] = a.measure_current_at(0.25, return_to_zero=False)
    a.source_voltage = 0.2
    out["i"] = a.measure_current()
    out["v"] = a.measure_voltage()
    out["iv"] = a.measure_iv()
    out["compliance"] = a.compliance
    a.clear_buffer()
    smu.write("rr_sample(smua, 3)")
    out["buffer"] = a.read_buffer()

    a.source_voltage = 0
    a.source_voltage_range = 0.2                   # a read at 0.5 V cannot be sourced on 200 mV
    try:
        a.pulse_and_measure(0.1, 0.5)
    except InstrumentError as e:
        out["pulse_error"] = e.errors
    a.source_voltage_autorange = True

    smu.shutdown()
    mx.shutdown()
    out["outputs_off"] = (a.output_enabled, b.output_enabled)
    out["closed"] = mx.closed_channels
    return out


# ------------------------------------------------------------------------------ tier 1: manual pairs
def test_identity_per_the_manual() -> None:
    # [RM] Rev. F p. 11-3: "Keithley Instruments, Model 2600B, xxxxxxx, yyyyy"
    ident = run(comm_pairs(K, "identity"), lambda k: k.id)
    assert ident == "Keithley Instruments, Model 2636B, 4428182, 4.0.5"
    assert ident.startswith("Keithley Instruments") and ", Model 2636B, " in ident


def test_reset_clear_and_empty_error_check() -> None:
    # reset() then *OPC? -> "1"; errorqueue.clear(); print(errorqueue.count) -> "0.00000e+00"
    def act(k: Keithley2636B) -> None:
        k.reset()
        k.clear_errors()
        k.check_errors()

    run(comm_pairs(K, "reset", "clear_errors", "error_count_empty"), act)


def test_settings_are_sent_exactly_checked_and_read_back() -> None:
    pairs = comm_pairs(K, "function", "current_limit", "voltage_limit", "nplc", "measure_delay", "source_delay",
                       "current_range", "current_autorange", "source_voltage", "output_on")

    def act(k: Keithley2636B) -> dict[str, Any]:
        a = k.smua
        out: dict[str, Any] = {}
        a.source_function = "voltage"
        out["function"] = a.source_function
        a.current_limit = 1.5e-7                   # sub-µA: pymeasure's %f driver would send 0.000000
        out["current_limit"] = a.current_limit
        a.voltage_limit = 2.5
        out["voltage_limit"] = a.voltage_limit
        a.nplc = 0.01
        out["nplc"] = a.nplc
        a.measure_delay = -1
        out["measure_delay"] = a.measure_delay
        a.source_delay = 0
        a.current_range = 1e-6
        out["current_range"] = (a.current_range, a.current_autorange)
        a.current_autorange = True
        a.source_voltage = 0.2
        out["level"] = a.source_voltage
        a.output_enabled = True
        out["output"] = a.output_enabled
        return out

    out = run(pairs, act)
    assert out["function"] == "voltage"
    assert out["current_limit"] == 1.5e-7
    assert out["voltage_limit"] == 2.5
    assert out["nplc"] == 0.01
    assert out["measure_delay"] == -1.0
    assert out["current_range"] == (1e-6, False)
    assert out["level"] == 0.2 and out["output"] is True


def test_pairs_set_sub_microamp_limit_exactly() -> None:
    assert comm_pairs(K, "current_limit") == [("smua.source.limiti = 1.5e-07", None),
                                              ("print(errorqueue.count)", "0.00000e+00"),
                                              ("print(smua.source.limiti)", "1.50000e-07")]


def test_level_beyond_the_fixed_range_raises_with_code_and_message() -> None:
    def act(k: Keithley2636B) -> dict[str, Any]:
        a = k.smua
        out: dict[str, Any] = {}
        a.source_voltage_range = 2                 # fixed 2 V range: 3 V is refused by the instrument
        try:
            a.source_voltage = 3
        except InstrumentError as e:
            out["range_error"] = e.errors
        out["level_after_error"] = a.source_voltage
        a.source_voltage_autorange = True
        out["autorange"] = a.source_voltage_autorange
        return out

    out = run(comm_pairs(K, "range_error", "source_autorange"), act)
    assert out["range_error"] == [(1101, "Parameter too big")]
    assert out["level_after_error"] == 0.0
    assert out["autorange"] is True


def test_error_drain_and_empty_queue_entry() -> None:
    def act(k: Keithley2636B) -> list[tuple[int, str]]:
        k.write("smua.source.limiti = 0")          # refused by the instrument (the driver never sends it)
        with pytest.raises(InstrumentError) as e:
            k.check_errors()
        k.check_errors()                           # drained: nothing left
        return e.value.errors

    assert run(comm_pairs(K, "limit_error"), act) == [(1102, "Parameter too small")]
    # the empty queue: code 0 "Queue Is Empty" (read by check_errors only when the count was wrong)
    assert run(comm_pairs(K, "error_empty"), lambda k: k._next_error()) == (0, "Queue Is Empty")


def test_event_status_power_on_then_cleared() -> None:
    def act(k: Keithley2636B) -> tuple[int, int]:
        return k.event_status(), k.event_status()

    first, second = run(comm_pairs(K, "power_on", "esr_read"), act)
    assert first & ESR_PON and second == 0


def test_hot_path_chunks_are_the_manual_pairs() -> None:
    pairs = comm_pairs(K, "pulse_setup", "pulse", "pulse_check", "pulse_and_measure", "measure_at", "measure_stay",
                       "sweep_point", "measure_v", "measure_iv", "compliance")

    def act(k: Keithley2636B) -> dict[str, Any]:
        a = k.smua
        a.configure_pulse(1e-4, current_limit=1e-4)
        a.pulse(-1.5)                              # one write, no reply
        k.check_errors()                           # the caller's check after hot-path pulses
        return {"pulse_read": a.pulse_and_measure(2.0, 0.2), "i_at": a.measure_current_at(0.2),
                "i_stay": a.measure_current_at(0.25, return_to_zero=False), "point": a.sweep_point(0.25),
                "v": a.measure_voltage(), "iv": a.measure_iv(), "compliance": a.compliance}

    out = run(pairs, act)
    assert out["pulse_read"] == -2.38486e-12
    assert out["i_at"] == 1.2345e-12 and out["i_stay"] == -4.07205e-13
    assert out["point"] == (3.1e-12, False)
    assert out["v"] == 0.25 and out["iv"] == (-1.2e-12, 0.25)
    assert out["compliance"] is False


def test_buffer_read_per_the_manual() -> None:
    def act(k: Keithley2636B) -> list[float]:
        k.smua.clear_buffer()
        k.write("smua.measure.count = 3 smua.measure.i(smua.nvbuffer1) smua.measure.count = 1")
        return k.smua.read_buffer()

    assert run(comm_pairs(K, "buffer"), act) == [1e-12, 2e-12, -1e-12]


def test_shutdown_per_the_manual() -> None:
    def act(k: Keithley2636B) -> list[float]:
        k.shutdown()
        return parse_numbers(k.ask("print(smua.source.output, smub.source.output)"), 2)

    assert run(comm_pairs(K, "shutdown", "outputs_off"), act) == [0.0, 0.0]


# ------------------------------------------------------------------ tier 2-3: the session on the simulated bench
def test_session_on_the_simulated_bench() -> None:
    rm = open_rm("noise=0")
    try:
        out = session(Keithley2636B(SMU, visa_library=rm.visalib), Keithley707B(MATRIX, visa_library=rm.visalib))
    finally:
        rm.close()
    # identity: the manual's text is checked above; the emulator's differs (tests/manual_pairs xfail)
    assert out["id"].startswith("Keithley Instruments") and ", Model 2636B, " in out["id"]
    assert out["function"] == "voltage"
    assert out["current_limit"] == 1.5e-7
    assert out["voltage_limit"] == 2.5
    assert out["nplc"] == 0.01
    assert out["measure_delay"] == -1.0
    assert out["current_range"] == (1e-6, False)
    assert out["range_error"] == [(1101, "Parameter too big")]
    assert out["level_after_error"] == 0.0
    assert out["autorange"] is True
    assert out["outputs_on"] == (True, True)
    assert abs(out["pristine"]) < 1e-8 < out["formed"]
    assert out["v"] == 0.2 and out["iv"] == (out["i"], 0.2)
    assert out["compliance"] is False
    assert len(out["buffer"]) == 3 and all(x == out["i"] for x in out["buffer"])
    assert out["pulse_error"] == [(1101, "Parameter too big")]
    assert out["outputs_off"] == (False, False)
    assert out["closed"] == []


# ------------------------------------------------------------------ tier 2-3: simulated bench
@pytest.fixture
def bench() -> Iterator[tuple[Any, Keithley2636B]]:
    rm = open_rm("noise=0")
    smu = Keithley2636B(SMU, visa_library=rm.visalib)
    yield bench_of(rm), smu
    rm.close()



BAD_SETTINGS = [
    ("current_limit", 0), ("current_limit", 1e-11), ("current_limit", 1.6), ("current_limit", -1e-3),
    ("current_limit", math.nan), ("current_limit", math.inf), ("current_limit", "1e-3"), ("current_limit", True),
    ("voltage_limit", 0.01), ("voltage_limit", 201), ("voltage_limit", -math.inf),
    ("source_voltage", 200.5), ("source_voltage", -201), ("source_voltage", math.nan),
    ("source_current", 1.6), ("source_current", math.nan),
    ("source_voltage_range", 3), ("source_voltage_range", 0.1), ("source_voltage_range", math.nan),
    ("current_range", 2e-6), ("current_range", 2.0), ("current_range", math.inf),
    ("nplc", 0), ("nplc", 0.0005), ("nplc", 26), ("nplc", math.nan),
    ("measure_delay", -2), ("measure_delay", -0.5), ("measure_delay", 1e5), ("measure_delay", math.nan),
    ("source_delay", -0.1), ("source_delay", math.inf),
    ("source_function", "volts"), ("source_function", 1), ("source_function", None),
    ("output_enabled", 2), ("output_enabled", "on"), ("output_enabled", 1.0),
    ("source_voltage_autorange", None), ("current_autorange", "yes"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_bad_setting_raises_before_any_write(bench, name: str, value: Any) -> None:  # noqa: ANN001
    b, smu = bench
    with pytest.raises(ValueError, match=name):
        setattr(smu.smua, name, value)
    assert b.transcript.entries == []


def test_range_message_names_parameter_and_range(bench) -> None:  # noqa: ANN001
    b, smu = bench
    with pytest.raises(ValueError) as e:
        smu.smua.current_limit = 0
    assert str(e.value) == "current_limit must be within [1e-10, 1.5] A, got 0"
    with pytest.raises(ValueError) as e:
        smu.smub.source_voltage_range = 3
    assert str(e.value) == "source_voltage_range must be one of 0.2, 2, 20, 200 V, got 3"
    with pytest.raises(ValueError, match="finite"):
        smu.smub.source_voltage = math.inf
    assert b.transcript.entries == []


BAD_CALLS = [
    ("configure_pulse", (0.5e-6,), "width"), ("configure_pulse", (math.nan,), "width"),
    ("configure_pulse", (1e-3, 0), "current_limit"), ("configure_pulse", (1e-3, math.inf), "current_limit"),
    ("pulse", (250,), "amplitude"), ("pulse", (math.nan,), "amplitude"), ("pulse", (-math.inf,), "amplitude"),
    ("pulse_and_measure", (1.0, 201), "read_voltage"), ("pulse_and_measure", (math.nan, 0.2), "amplitude"),
    ("read_buffer", (3,), "buffer"), ("clear_buffer", (0,), "buffer"), ("read_buffer", (True,), "buffer"),
]


@pytest.mark.parametrize(("method", "args", "name"), BAD_CALLS)
def test_bad_method_input_raises_before_any_write(bench, method: str, args: tuple, name: str) -> None:  # noqa: ANN001
    b, smu = bench
    with pytest.raises(ValueError, match=name):
        getattr(smu.smub, method)(*args)
    assert b.transcript.entries == []


def test_constructor_sends_nothing(bench) -> None:  # noqa: ANN001
    b, smu = bench
    assert b.transcript.entries == []
    assert smu.adapter.connection.timeout == 10_000
    assert smu.adapter.connection.read_termination == "\n"


@pytest.mark.parametrize("limit", [1.5e-7, 1.234567e-6, 100e-12, 2.5e-9, 1.5])
def test_sub_microamp_limits_reach_the_instrument_exactly(bench, limit: float) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.current_limit = limit
    assert writes(b)[0] == f"smua.source.limiti = {limit!r}"
    reply = smu.adapter.connection.query("print(smua.source.limiti)")
    assert reply == f"{limit:.5e}"
    assert smu.smua.current_limit == float(f"{limit:.5e}")


def test_limit_1p5e_7_on_the_wire(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.current_limit = 1.5e-7
    assert b.transcript.pairs(SMU)[:2] == [(b"smua.source.limiti = 1.5e-07\n", None),
                                           (b"print(errorqueue.count)\n", b"0.00000e+00\n")]
    assert smu.adapter.connection.query("print(smua.source.limiti)") == "1.50000e-07"


def test_setpoints_keep_every_digit(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.source_voltage = 0.123456789
    smu.smua.nplc = 0.001
    smu.smua.source_delay = 1.25e-5
    assert [w for w in writes(b) if "errorqueue" not in w] == [
        "smua.source.levelv = 0.123456789", "smua.measure.nplc = 0.001", "smua.source.delay = 1.25e-05"]


def test_strict_errors_checks_once_per_setting_and_can_be_turned_off() -> None:
    rm = open_rm("noise=0")
    try:
        smu = Keithley2636B(SMU, visa_library=rm.visalib, strict_errors=False)
        smu.smua.current_limit = 1e-3
        smu.smua.source_voltage = 0.2
        assert writes(bench_of(rm)) == ["smua.source.limiti = 0.001", "smua.source.levelv = 0.2"]
    finally:
        rm.close()


def test_setting_refused_by_the_instrument_raises_with_code_and_message(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.source_voltage_range = 0.2
    with pytest.raises(InstrumentError) as e:
        smu.smua.source_voltage = 1.0
    assert e.value.errors == [(1101, "Parameter too big")]
    assert "1101 Parameter too big" in str(e.value)
    assert smu.smua.source_voltage == 0.0          # the instrument kept its setting


def test_check_errors_reports_code_and_message(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.write("smua.source.limiti = 0")
    smu.write("nosuchfunction()")
    with pytest.raises(InstrumentError) as e:
        smu.check_errors()
    assert e.value.errors == [
        (1102, "Parameter too small"),
        (-286, "TSP Runtime error at line 1: attempt to call global `nosuchfunction' (a nil value)")]
    smu.check_errors()                              # drained: nothing left, no exception


def test_check_errors_is_bounded_when_the_queue_re_reports(bench) -> None:  # noqa: ANN001
    b, smu = bench
    for _ in range(40):
        smu.write("smua.source.limiti = 0")
    b.faults.add("queue_error", match=r"errorqueue", times=100, code=-300, message="Device error")
    b.transcript.clear()
    with pytest.raises(InstrumentError) as e:
        smu.check_errors()
    sent = writes(b)
    assert sent[0] == "print(errorqueue.count)"
    assert sent[1:] == ["print(errorqueue.next())"] * 32
    assert len(e.value.errors) == 32 and e.value.errors[0] == (1102, "Parameter too small")
    assert "not drained" in str(e.value)


def test_check_errors_bound_with_a_queue_that_never_empties(monkeypatch: pytest.MonkeyPatch) -> None:
    with expected_protocol(Keithley2636B, []) as smu:
        asked: list[str] = []

        def ask(command: str, query_delay: float | None = None) -> str:
            asked.append(command)
            if command == "print(errorqueue.count)":
                return "1.00000e+06"
            return "-3.50000e+02\tQueue overflow\t3.00000e+01\t1.00000e+00"

        monkeypatch.setattr(smu, "ask", ask)
        with pytest.raises(InstrumentError) as e:
            smu.check_errors(max_entries=5)
        assert len(asked) == 6
        assert e.value.errors == [(-350, "Queue overflow")] * 5
        with pytest.raises(ValueError, match="max_entries"):
            smu.check_errors(max_entries=0)


def test_check_errors_empty_queue_is_one_query(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.check_errors()
    assert writes(b) == ["print(errorqueue.count)"]


def test_clear_errors(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.write("smua.source.limiti = 0")
    smu.clear_errors()
    smu.check_errors()


def test_event_status_reports_power_on_once(bench) -> None:  # noqa: ANN001
    b, smu = bench
    assert smu.event_status() & ESR_PON                      # a freshly opened instrument was powered on
    assert smu.event_status() == 0                           # *ESR? clears the register
    b.faults.add("reboot", match=r"print\(1\)")
    smu.ask("print(1)")
    assert smu.event_status() == ESR_PON and writes(b)[-1] == "*ESR?"
    b.faults.add("garble", match=r"\*ESR\?", reply="PON")
    with pytest.raises(ReplyError, match="an integer"):
        smu.event_status()


def test_garbled_reply_raises_reply_error(bench) -> None:  # noqa: ANN001
    b, smu = bench
    b.faults.add("garble", match=r"source\.limiti", reply="nil")
    with pytest.raises(ReplyError):
        _ = smu.smua.current_limit


def test_shutdown_turns_everything_off_without_queries(bench) -> None:  # noqa: ANN001
    b, smu = bench
    for ch in (smu.smua, smu.smub):
        ch.source_voltage = 0.5
        ch.output_enabled = True
    b.transcript.clear()
    smu.shutdown()
    assert writes(b) == ["smua.source.output = smua.OUTPUT_OFF", "smub.source.output = smub.OUTPUT_OFF",
                         "smua.source.levelv = 0; smua.source.leveli = 0",
                         "smub.source.levelv = 0; smub.source.leveli = 0"]
    assert [r for _, r in b.transcript.pairs(SMU)] == [None] * 4
    smu.shutdown()                                  # idempotent
    assert smu.smua.output_enabled is False and smu.smub.output_enabled is False
    assert smu.smua.source_voltage == 0.0 and smu.smub.source_voltage == 0.0
    assert smu.isShutdown


def test_shutdown_turns_the_other_output_off_when_the_first_write_fails(bench) -> None:  # noqa: ANN001
    b, smu = bench
    for ch in (smu.smua, smu.smub):
        ch.output_enabled = True
    b.transcript.clear()
    real_write = smu.adapter.write
    calls = {"n": 0}

    def failing_write(command: str, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise visa_errors.VisaIOError(pyvisa.constants.VI_ERROR_IO)
        real_write(command, **kwargs)

    smu.adapter.write = failing_write  # type: ignore[method-assign]
    with pytest.raises(ShutdownError) as e:
        smu.shutdown()
    assert [step for step, _ in e.value.failures] == ["smua.source.output = smua.OUTPUT_OFF"]
    assert writes(b)[0] == "smub.source.output = smub.OUTPUT_OFF"
    assert len(writes(b)) == 3
    smu.adapter.write = real_write  # type: ignore[method-assign]
    assert smu.smub.output_enabled is False
    assert smu.smua.output_enabled is True          # the failed step: reported, not hidden
    smu.shutdown()
    assert smu.smua.output_enabled is False


def _pulses(b: Any) -> int:
    return b.instruments[SMU].channels["a"].trigger.pulses


def test_pulse_is_one_write_and_no_read(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.configure_pulse(5e-6)
    smu.smua.output_enabled = True
    b.transcript.clear()
    smu.smua.pulse(0.75)
    assert b.transcript.pairs(SMU) == [
        (b"smua.trigger.source.listv({0.75}) if errorqueue.count == 0 then smua.trigger.initiate() "
         b"waitcomplete() end\n", None)]
    assert _pulses(b) == 1


def test_configure_pulse_commands_and_timer_per_channel(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smub.configure_pulse(2.5e-6)
    cmd = writes(b)[0]
    assert "trigger.timer[2].delay = 2.5e-06" in cmd
    assert "smub.trigger.source.limiti = 0" in cmd
    assert "smub.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID" in cmd
    assert writes(b)[1:] == ["print(errorqueue.count)"]
    smu.smua.configure_pulse(1e-3, current_limit=1.5e-7)
    cmd = writes(b)[2]
    assert "trigger.timer[1].delay = 0.001" in cmd and "smua.trigger.source.limiti = 1.5e-07" in cmd
    assert smu.query_number("trigger.timer[1].delay") == 1e-3
    assert smu.query_number("smua.trigger.source.limiti") == 1.5e-7


def test_pulse_does_not_fire_a_stale_amplitude_after_an_error(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.configure_pulse(1e-5)
    smu.smua.output_enabled = True
    smu.smua.pulse(1.0)
    assert _pulses(b) == 1
    smu.write("smua.source.limiti = 0")            # an unchecked error is pending
    smu.smua.pulse(1.0)
    assert _pulses(b) == 1                          # skipped, and reported by the next check
    with pytest.raises(InstrumentError):
        smu.check_errors()
    smu.smua.pulse(1.0)
    assert _pulses(b) == 2


def test_pulse_and_measure_is_one_write_one_read_and_raises_on_errors(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.configure_pulse(1e-5)
    smu.smua.output_enabled = True
    b.transcript.clear()
    assert smu.smua.pulse_and_measure(0.5, 0.2) == 0.0          # open circuit: nothing routed
    (cmd, reply), = b.transcript.pairs(SMU)
    assert cmd == (b"smua.trigger.source.listv({0.5}) if errorqueue.count == 0 then smua.trigger.initiate() "
                   b"waitcomplete() end smua.source.levelv = 0.2 print(smua.measure.i(), errorqueue.count) "
                   b"smua.source.levelv = 0\n")
    assert reply == b"0.00000e+00\t0.00000e+00\n"
    assert smu.smua.source_voltage == 0.0
    smu.smua.source_voltage_range = 0.2
    with pytest.raises(InstrumentError) as e:
        smu.smua.pulse_and_measure(0.1, 1.0)
    assert e.value.errors == [(1101, "Parameter too big")]


def test_measure_current_at_is_one_round_trip_and_refuses_bad_levels(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.output_enabled = True
    b.transcript.clear()
    assert smu.smua.measure_current_at(0.2) == 0.0            # open circuit
    (cmd, reply), = b.transcript.pairs(SMU)
    assert cmd == b"smua.source.levelv = 0.2 print(smua.measure.i(), errorqueue.count) smua.source.levelv = 0\n"
    assert reply == b"0.00000e+00\t0.00000e+00\n"
    smu.smua.measure_current_at(0.3, return_to_zero=False)
    assert smu.smua.source_voltage == 0.3
    with pytest.raises(ValueError, match=r"voltage must be a finite number within \[-200, 200\] V"):
        smu.smua.measure_current_at(float("inf"))
    smu.smua.source_voltage = 0
    smu.smua.source_voltage_range = 0.2
    with pytest.raises(InstrumentError) as e:
        smu.smua.measure_current_at(1.0)
    assert e.value.errors == [(1101, "Parameter too big")]


def test_sweep_point_reads_current_and_compliance_in_one_round_trip(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.output_enabled = True
    b.transcript.clear()
    assert smu.smua.sweep_point(0.25) == (0.0, False)          # open circuit: no current, not clamped
    (cmd, reply), = b.transcript.pairs(SMU)
    assert cmd == (b"smua.source.levelv = 0.25 print(smua.measure.i(), smua.source.compliance, "
                   b"errorqueue.count)\n")
    assert reply == b"0.00000e+00\tfalse\t0.00000e+00\n"
    assert smu.smua.source_voltage == 0.25                      # stays at its level
    smu.smua.source_voltage = 0
    smu.smua.source_voltage_range = 0.2
    with pytest.raises(InstrumentError) as e:
        smu.smua.sweep_point(1.0)
    assert e.value.errors == [(1101, "Parameter too big")]


def test_measurements_and_buffer(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smua.source_voltage = 0.2
    smu.smua.output_enabled = True
    assert smu.smua.measure_voltage() == 0.2
    i, v = smu.smua.measure_iv()
    assert v == 0.2 and isinstance(i, float)
    assert smu.smua.compliance is False
    smu.smua.clear_buffer(2)
    assert smu.smua.read_buffer(2) == []
    smu.write("smua.measure.count = 4 smua.measure.v(smua.nvbuffer2) smua.measure.count = 1")
    assert smu.smua.read_buffer(2) == [0.2] * 4
    assert writes(b)[-1] == "printbuffer(1, 4, smua.nvbuffer2.readings)"


def test_output_and_function_constants(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.smub.output_enabled = True
    smu.smub.source_function = "current"
    smu.smub.measure_delay = -1
    smu.smub.current_autorange = False
    sent = [w for w in writes(b) if "errorqueue" not in w]
    assert sent == ["smub.source.output = smub.OUTPUT_ON", "smub.source.func = smub.OUTPUT_DCAMPS",
                    "smub.measure.delay = smub.DELAY_AUTO", "smub.measure.autorangei = smub.AUTORANGE_OFF"]
    assert smu.smub.output_enabled is True
    assert smu.smub.source_function == "current"
    assert smu.smub.current_autorange is False


def test_reset_waits_for_completion(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.reset()
    assert b.transcript.pairs(SMU) == [(b"reset()\n", None), (b"*OPC?\n", b"1\n")]


def test_sync_discards_a_stale_reply_after_a_timeout(bench) -> None:  # noqa: ANN001
    b, smu = bench
    smu.adapter.connection.timeout = 500
    b.faults.add("late_reply", match=r"measure\.i", delay=2.0)
    with pytest.raises(visa_errors.VisaIOError):
        smu.smua.measure_current()
    b.clock.advance(5.0)
    smu.sync("resync-1")                            # reads the late reading, then the token
    assert smu.smua.measure_voltage() == 0.0        # the next reply is its own again
    with pytest.raises(ValueError, match="token"):
        smu.sync('x"); reset() print("')


def test_load_script_validates_and_checks_errors(bench) -> None:  # noqa: ANN001
    b, smu = bench
    for name, text in [("1abc", "x = 1"), ("end", "x = 1"), ("ok", ""), ("ok", "x = 1\nendscript\n")]:
        with pytest.raises(ValueError):
            smu.load_script(name, text)
    assert b.transcript.entries == []
    with pytest.raises(InstrumentError) as e:
        smu.load_script("broken", "function f(\n")
    assert e.value.errors[0][0] == -285
    smu.load_script("works", "function rr_twice(x)\n  return 2 * x\nend\n")
    assert smu.query_number("rr_twice(21)") == 42.0


def test_property_docstrings_say_control_get_or_set() -> None:
    for name in ("source_function", "source_voltage", "source_current", "current_limit", "voltage_limit",
                 "source_voltage_range", "source_voltage_autorange", "current_range", "current_autorange",
                 "nplc", "source_delay", "measure_delay", "output_enabled", "compliance"):
        doc = getattr(SMUChannel, name).__doc__
        assert doc.split()[0] in ("Control", "Get", "Set"), name

