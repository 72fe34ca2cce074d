"""Keysight B2901A/B2902A driver: exact (command, reply) pairs written from the manuals, never from an emulator.

Sources of the pairs (cited on each pair):
* [SCPI] Agilent B2900 SCPI Command Reference Ed. 2 (B2910-90030), Ch. 4 (p. 4-xx): :MEASure? p. 4-44,
  :MEASure:CURRent? p. 4-45 (NR3; ``+9.910000E+37`` when no data), :SENSe:APERture p. 4-73,
  [:SOURce]:VOLTage / :TRIGgered p. 4-93, :STATus p. 4-115; :SENSe:CURRent:PROTection(:TRIPped?) and
  :NPLCycles as in the B2961A/B2962A SCPI Command Reference Ed. 6 p. 4-87, 4-90, 4-91 (TRIP? → NR1 1|0);
* [UG] Keysight B2900 User's Guide Ed. 5 p. 6-7 (pulse output, width 50 µs-100,000 s);
* reply formats: NR3 ``+1.000000E-03``; ``SYST:ERR?`` ``+0,"No error"``;
* the wire scheme the driver follows: ``.helper/scpi_scheme.md``.

Pairs the emulator must satisfy as well are read from ``tests/manual_pairs/keysight_b2900.toml`` (selected
by tag; each pair's citation is there, replayed against the emulator by ``tests/test_manual_pairs.py``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from manual_pairs import comm_pairs
from pymeasure.test import expected_protocol

from rramlab.drivers.errors import InstrumentError, ReplyError, ShutdownError
from rramlab.drivers.keysight_b2900 import B2900Channel, KeysightB2900
from rramlab.drivers.roles import ROLE_SMU

NOERR = '+0,"No error"'                  # :SYSTem:ERRor? with an empty queue (§5; standard SCPI)
ERR = ":SYST:ERR?"
B = "keysight_b2900"                     # tests/manual_pairs/keysight_b2900.toml


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    """Run ``action(instrument)`` against exactly ``pairs`` (all consumed)."""
    with expected_protocol(KeysightB2900, pairs, **kwargs) as inst:
        return action(inst)


# ------------------------------------------------------------------------------------ identity
def test_identity_roles_and_spec() -> None:
    pairs = comm_pairs(B, "identity")    # [SCPI] *IDN? → manufacturer,model,serial,firmware
    assert run(pairs, lambda k: k.id) == "Keysight Technologies,B2902A,MY51141234,3.4.2011.5100"
    assert frozenset({ROLE_SMU}) == KeysightB2900.ROLES
    spec = KeysightB2900.SMU
    assert spec.channels == ("1", "2")
    assert spec.max_voltage == 210.0
    assert spec.pulse_width == (50e-6, 100e3)           # [UG] p. 6-7
    assert spec.nplc == (4.8e-4, 100.0)                 # [SCPI] p. 4-73 / B2961A ref. p. 4-87
    assert set(spec.notes) == {"max_voltage", "current_limit", "nplc", "pulse_width"}
    for attr in ("key", "current_limit", "source_voltage", "output_enabled", "nplc", "measure_current_at",
                 "sweep_point", "configure_pulse", "pulse", "pulse_and_measure"):
        assert hasattr(B2900Channel, attr), attr


def test_channels_and_keys() -> None:
    with expected_protocol(KeysightB2900, [], name="smu2") as k:
        assert k.channel("1").key == "smu2.1"
        assert k.channel("2").key == "smu2.2"
        with pytest.raises(ValueError, match="channel must be one of"):
            k.channel("3")
    with expected_protocol(KeysightB2900, [], channels=1) as k, pytest.raises(ValueError, match="'1'"):
        k.channel("2")
    with pytest.raises(ValueError, match="channels must be 1"):
        KeysightB2900("GPIB0::1::INSTR", channels=3)


# ------------------------------------------------------------------------------------ settings
def test_settings_with_one_error_check_each() -> None:
    # :SENSe[c]:CURRent:PROTection (compliance), query NR3 "+1.500000E-07"; [SCPI] [:SOURce[c]]:VOLTage
    # p. 4-93, "-2.500000E-01"; :OUTPut[c][:STATe], "1"; :SENSe[c]:CURRent:NPLCycles, "+1.000000E-02";
    # each setting followed by (ERR, NOERR)
    pairs = comm_pairs(B, "current_limit", "source_voltage", "output", "nplc")

    def act(k: KeysightB2900) -> list[Any]:
        c1, c2 = k.channel("1"), k.channel("2")
        c1.current_limit = 1.5e-7
        out: list[Any] = [c1.current_limit]
        c2.source_voltage = -0.25
        out.append(c2.source_voltage)
        c2.output_enabled = True
        out.append(c2.output_enabled)
        c1.nplc = 0.01
        out.append(c1.nplc)
        return out

    assert run(pairs, act) == [1.5e-7, -0.25, True, 0.01]


def test_setting_refused_drains_until_no_error() -> None:
    pairs = [
        (":OUTP1 ON", None),
        (ERR, '-221,"Settings conflict"'),                   # standard SCPI -221 (SCPI-99 Vol. 2 §21.8)
        (ERR, NOERR),
    ]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: setattr(k.channel("1"), "output_enabled", True))
    assert e.value.errors == [(-221, "Settings conflict")]


# ------------------------------------------------------------------------------------ hot path
def test_measure_current_at_is_one_message() -> None:
    # [SCPI] :MEASure:CURRent? (@c) p. 4-45; NR3 reply; replies joined by ';' (IEEE 488.2 §8.4.1):
    # ":SOUR1:VOLT 0.2;:MEAS:CURR? (@1);:SOUR1:VOLT 0;:SYST:ERR?" → '+1.000000E-03;+0,"No error"',
    # ":SOUR2:VOLT 1.5e-05;:MEAS:CURR? (@2);:SYST:ERR?" → '-3.141593E-11;+0,"No error"'
    pairs = comm_pairs(B, "measure")

    def act(k: KeysightB2900) -> list[float]:
        return [k.channel("1").measure_current_at(0.2), k.channel("2").measure_current_at(1.5e-5, False)]

    assert run(pairs, act) == [1e-3, -3.141593e-11]


def test_no_data_value_is_passed_on() -> None:
    pairs = [(":SOUR1:VOLT 0.1;:MEAS:CURR? (@1);:SOUR1:VOLT 0;:SYST:ERR?", '+9.910000E+37;+0,"No error"')]  # p. 4-45
    assert run(pairs, lambda k: k.channel("1").measure_current_at(0.1)) == 9.91e37


def test_sweep_point_reads_compliance() -> None:
    pairs = [
        # :SENSe[c]:CURRent:PROTection:TRIPped? → NR1 1 (in compliance) | 0 (B2961A/62A ref. p. 4-91)
        (":SOUR1:VOLT 2.0;:MEAS:CURR? (@1);:SENS1:CURR:PROT:TRIP?;:SYST:ERR?", '+1.000000E-04;1;+0,"No error"'),
        *comm_pairs(B, "sweep_point"),     # ":SOUR1:VOLT 0.5;…" → '+2.000000E-05;0;+0,"No error"'
    ]

    def act(k: KeysightB2900) -> list[tuple[float, bool]]:
        return [k.channel("1").sweep_point(2.0), k.channel("1").sweep_point(0.5)]

    assert run(pairs, act) == [(1e-4, True), (2e-5, False)]


def test_hot_path_error_entry_raises_and_drains_the_rest() -> None:
    pairs = [
        (":SOUR1:VOLT 0.2;:MEAS:CURR? (@1);:SOUR1:VOLT 0;:SYST:ERR?", '+1.000000E-03;-222,"Data out of range"'),
        (ERR, '-113,"Undefined header"'),
        (ERR, NOERR),
    ]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.channel("1").measure_current_at(0.2))
    assert e.value.errors == [(-222, "Data out of range"), (-113, "Undefined header")]


def test_garbled_reply_raises_reply_error() -> None:
    pairs = [(":SOUR1:VOLT 0.2;:MEAS:CURR? (@1);:SOUR1:VOLT 0;:SYST:ERR?", "+1.000000E-03")]
    with pytest.raises(ReplyError):
        run(pairs, lambda k: k.channel("1").measure_current_at(0.2))


# ------------------------------------------------------------------------------------ pulses
def configure_pairs(c: str, width: str) -> list[tuple[str | None, str | None]]:
    # [SCPI] :SOURce:FUNCtion:MODE, [:SOURce]:VOLTage:MODE, :SOURce:PULSe:DELay/:WIDTh,
    # :TRIGger[c]:TRANsient:SOURce/:COUNt/:DELay, :ARM[c]:TRANsient:COUNt
    return [(f":SOUR{c}:FUNC:MODE VOLT;:SOUR{c}:VOLT:MODE FIX;:SOUR{c}:PULS:DEL 0;:SOUR{c}:PULS:WIDT {width};"
             f":TRIG{c}:TRAN:SOUR AINT;:TRIG{c}:TRAN:COUN 1;:TRIG{c}:TRAN:DEL 0;:ARM{c}:TRAN:COUN 1", None),
            (ERR, NOERR)]


def test_pulse_uses_pulse_shape_one_transient_and_returns_to_dc_shape() -> None:
    # configure_pairs("1", "5e-05"), then
    # [UG] p. 6-7: pulse from the base (:SOUR:VOLT) to the peak (:SOUR:VOLT:TRIG, [SCPI] p. 4-93);
    # :INITiate:TRANsient (@1) starts the source action only; *WAI waits for it (IEEE 488.2):
    # ":SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT:TRIG 1.5;:INIT:TRAN (@1);*WAI;:SOUR1:FUNC:SHAP DC;:SYST:ERR?" → NOERR
    pairs = comm_pairs(B, "pulse_configure_1", "pulse")
    assert pairs[:2] == configure_pairs("1", "5e-05")

    def act(k: KeysightB2900) -> None:
        ch = k.channel("1")
        ch.configure_pulse(50e-6)
        ch.pulse(1.5)

    run(pairs, act)


def test_pulse_and_measure_on_channel_2_ends_at_zero() -> None:
    # configure_pairs("2", "0.001"), then ":SOUR2:FUNC:SHAP PULS;:SOUR2:VOLT:TRIG -2.0;:INIT:TRAN (@2);*WAI;
    # :SOUR2:FUNC:SHAP DC;:SOUR2:VOLT 0.1;:MEAS:CURR? (@2);:SOUR2:VOLT 0;:SYST:ERR?" → '+2.345678E-06;+0,"No error"'
    pairs = comm_pairs(B, "pulse_configure_2", "pulse_and_measure")
    assert pairs[:2] == configure_pairs("2", "0.001")

    def act(k: KeysightB2900) -> float:
        ch = k.channel("2")
        ch.configure_pulse(1e-3)
        return ch.pulse_and_measure(-2.0, 0.1)

    assert run(pairs, act) == 2.345678e-06


def test_pulse_limit_wraps_the_pulse_and_restores_the_dc_limit() -> None:
    pairs = [
        (":SENS1:CURR:PROT 0.0001", None), (ERR, NOERR),
        *configure_pairs("1", "0.0002"),
        (":SENS1:CURR:PROT 0.001;:SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT:TRIG 3.0;:INIT:TRAN (@1);*WAI;"
         ":SOUR1:FUNC:SHAP DC;:SENS1:CURR:PROT 0.0001;:SYST:ERR?", NOERR),
    ]

    def act(k: KeysightB2900) -> None:
        ch = k.channel("1")
        ch.current_limit = 1e-4
        ch.configure_pulse(2e-4, 1e-3)
        ch.pulse(3.0)

    run(pairs, act)


def test_pulse_limit_equal_to_dc_limit_adds_nothing_and_unknown_limit_is_read_first() -> None:
    pairs = [
        (":SENS1:CURR:PROT?", "+1.000000E-04"),             # DC limit not written by this driver: read it
        *configure_pairs("1", "0.0002"),
        (":SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT:TRIG 3.0;:INIT:TRAN (@1);*WAI;:SOUR1:FUNC:SHAP DC;:SYST:ERR?", NOERR),
    ]

    def act(k: KeysightB2900) -> None:
        ch = k.channel("1")
        ch.configure_pulse(2e-4, 1e-4)
        ch.pulse(3.0)

    run(pairs, act)


def test_pulse_error_raises_at_once() -> None:
    pairs = configure_pairs("1", "0.001") + [
        (":SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT:TRIG 1.5;:INIT:TRAN (@1);*WAI;:SOUR1:FUNC:SHAP DC;:SYST:ERR?",
         '-221,"Settings conflict"'),
        (ERR, NOERR),
    ]

    def act(k: KeysightB2900) -> None:
        ch = k.channel("1")
        ch.configure_pulse(1e-3)
        ch.pulse(1.5)

    with pytest.raises(InstrumentError) as e:
        run(pairs, act)
    assert e.value.errors == [(-221, "Settings conflict")]


def test_pulse_before_configure_pulse_sends_nothing() -> None:
    with pytest.raises(RuntimeError, match="configure_pulse"):
        run([], lambda k: k.channel("1").pulse(1.0))


# ------------------------------------------------------------------------------------ errors
def test_check_errors_empty_is_one_query_and_reports_entries() -> None:
    run(comm_pairs(B, "error_empty"), lambda k: k.check_errors())                  # (ERR, NOERR)
    # (ERR, '-113,"Undefined header"'), (ERR, '-222,"Data out of range"'), (ERR, NOERR): SCPI-99 Vol. 2 §21.8
    pairs = comm_pairs(B, "error_entries")
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.check_errors())
    assert e.value.errors == [(-113, "Undefined header"), (-222, "Data out of range")]


def test_check_errors_is_bounded_when_the_queue_re_reports() -> None:
    pairs = [(ERR, '-350,"Queue overflow"')] * 32              # SCPI -350 (SCPI-99 Vol. 2 §21.8)
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda k: k.check_errors())
    assert len(e.value.errors) == 32
    assert "not drained" in str(e.value)


def test_clear_errors_power_on_flag_and_reset() -> None:
    # IEEE 488.2: ("*CLS", None), ("*ESR?", "+128"), ("*ESR?", "+0"), ("*RST", None), ("*OPC?", "1")
    pairs = comm_pairs(B, "clear", "power_on", "esr_read", "reset")

    def act(k: KeysightB2900) -> list[bool]:
        k.clear_errors()
        out = [k.power_cycled(), k.power_cycled()]
        k.reset()
        return out

    assert run(pairs, act) == [True, False]


# ------------------------------------------------------------------------------------ validators
BAD = [
    ("current_limit", 0.0), ("current_limit", 3.5), ("current_limit", math.nan), ("source_voltage", 210.1),
    ("source_voltage", None), ("nplc", 1e-4), ("nplc", 120), ("output_enabled", "ON"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_bad_setting_raises_before_any_write(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        run([], lambda k: setattr(k.channel("1"), name, value))


BAD_CALLS = [
    ("measure_current_at", (211.0,), "voltage"),
    ("sweep_point", (math.inf,), "voltage"),
    ("configure_pulse", (49e-6,), "width"),
    ("configure_pulse", (2e5,), "width"),
    ("configure_pulse", (1e-3, 5.0), "current_limit"),
    ("pulse", (-250.0,), "amplitude"),
    ("pulse_and_measure", (1.0, math.nan), "read_voltage"),
]


@pytest.mark.parametrize(("method", "args", "name"), BAD_CALLS)
def test_bad_method_input_raises_before_any_write(method: str, args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        run([], lambda k: getattr(k.channel("2"), method)(*args))


# ------------------------------------------------------------------------------------ shutdown
def test_shutdown_outputs_off_first_no_queries() -> None:
    pairs = [
        (":OUTP1 OFF", None), (":OUTP2 OFF", None),          # :OUTPut[c] OFF
        (":ABOR (@1,2)", None),                              # :ABORt[:ALL] (@chanlist)
        (":SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:SOUR1:CURR 0", None),
        (":SOUR2:FUNC:SHAP DC;:SOUR2:VOLT 0;:SOUR2:CURR 0", None),
    ]
    run(pairs, lambda k: k.shutdown())


def test_shutdown_b2901a_addresses_channel_1_only() -> None:
    pairs = [(":OUTP1 OFF", None), (":ABOR (@1)", None), (":SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:SOUR1:CURR 0", None)]
    run(pairs, lambda k: k.shutdown(), channels=1)


def test_shutdown_tries_every_step_when_one_fails() -> None:
    pairs = [(":OUTP2 OFF", None), (":ABOR (@1,2)", None),
             (":SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:SOUR1:CURR 0", None),
             (":SOUR2:FUNC:SHAP DC;:SOUR2:VOLT 0;:SOUR2:CURR 0", None)]
    with expected_protocol(KeysightB2900, pairs) as k:
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
        assert [step for step, _ in e.value.failures] == [":OUTP1 OFF"]
