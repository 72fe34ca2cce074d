"""The shared SCPI engine (simulator/scpi): parsing, header tree, parameters, errors, status model.

Expectations come from the standards, not from running the engine: IEEE 488.2-1992 (common
commands ch. 10, status reporting ch. 11, message exchange / query errors ch. 6) and SCPI-99
(vol. 1: command syntax ch. 6 — short/long forms, optional nodes, numeric suffixes, compound
commands and the header path; data types ch. 7 — NRf, MIN/MAX/DEF, booleans, suffix units;
vol. 2 ch. 21: error numbers and texts, error queue with -350 overflow). A small test instrument
(``Toy``) is declared here with syntax strings in the manuals' notation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import InstrumentConfig, load_bench_config
from rramlab.simulator.scpi.engine import Call, ScpiError, ScpiInstrument

R = "GPIB0::30::INSTR"


class Toy(ScpiInstrument):
    """Test instrument: two source channels, a string setting, a channel list and a slow operation."""

    MANUFACTURER = "rramlab"
    MODEL = "TOY1"
    ERROR_QUEUE_DEPTH = 4
    ERROR_TEXTS = {0: "No error", 1234: "Toy specific error"}
    OPT = "OPT1,0"

    def build(self) -> None:
        c = self.command
        c(":SOURce[1|2]:VOLTage[:LEVel][:IMMediate][:AMPLitude] <value>", self._volt)
        c(":SOURce[1|2]:VOLTage[:LEVel][:IMMediate][:AMPLitude]? [MIN|MAX|DEF]", self._volt_q)
        c(":OUTPut[1|2][:STATe] <bool>", self._output)
        c(":OUTPut[1|2][:STATe]?", lambda call: "1" if self.out[call.suffix] else "0")
        c(":SENSe:FUNCtion[:ON] <string>", self._func)
        c(":SENSe:FUNCtion[:ON]?", lambda call: f'"{self.func}"')
        c(":SENSe:MODE <mode>", lambda call: setattr(self, "mode", call[0].choice("NORMal", "FAST")))
        c(":SENSe:MODE?", lambda call: self.mode[:4])
        c(":ROUTe:CLOSe <channel_list>", self._close)
        c(":TRIGger:COUNt <count>", lambda call: setattr(self, "count", call[0].integer(1, 100, default=1)))
        c(":TRIGger:COUNt?", lambda call: str(self.count))
        c(":FORMat:ELEMents <element>{,<element>}", lambda call: setattr(self, "elems",
                                                                          [p.keyword() for p in call.params]))
        c(":FORMat:ELEMents?", lambda call: ",".join(self.elems))
        c(":SYSTem:SLOW", self._slow)
        c(":SYSTem:TOY", lambda call: self.raise_error(1234))
        c(":SYSTem:BOOM", self._boom)

    def reset(self) -> None:
        self.volt = {1: 0.0, 2: 0.0}
        self.out = {1: False, 2: False}
        self.func = "CURR"
        self.mode = "NORMAL"
        self.count = 1
        self.elems = ["VOLT"]
        self.closed: list[tuple[str, str | None]] = []
        self.busy_until = 0.0

    def _volt(self, call: Call) -> None:
        self.volt[call.suffix] = call[0].number(-10.0, 10.0, default=0.0, unit="V")

    def _volt_q(self, call: Call) -> str:
        p = call.get(0)
        v = p.number(-10.0, 10.0, default=0.0) if p is not None else self.volt[call.suffix]
        return f"{v:+.6E}"

    def _output(self, call: Call) -> None:
        self.out[call.suffix] = call[0].boolean()

    def _func(self, call: Call) -> None:
        self.func = call[0].string()

    def _close(self, call: Call) -> None:
        self.closed = [(r.first, r.last) for r in call[0].channels()]

    def _slow(self, call: Call) -> None:
        self.busy_until = self.clock.now + 1.0

    def complete_at(self) -> float:
        return max(self.clock.now, self.busy_until)

    def _boom(self, call: Call) -> None:
        raise RuntimeError("emulator bug")


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = Bench(load_bench_config(""))
    b.instruments[R] = Toy(b, InstrumentConfig("toy", "TOY1", R, "SN42", "1.2.3"))
    yield b


def w(b: Bench, text: str) -> None:
    b.write(R, text.encode() + b"\n")


def q(b: Bench, text: str) -> str | None:
    w(b, text)
    msg = b.read(R)
    return None if msg is None else msg.decode()


def err(b: Bench) -> str:
    return q(b, ":SYST:ERR?") or ""


# ------------------------------------------------------------------------------------ headers
def test_idn_and_error_format(bench: Bench) -> None:
    # IEEE 488.2 10.14: four fields, comma-separated; SCPI-99 vol.2 21.8: <code>,"<text>", 0 = no error
    assert q(bench, "*IDN?") == "rramlab,TOY1,SN42,1.2.3\n"
    assert err(bench) == '+0,"No error"\n'


@pytest.mark.parametrize("header", [":SOUR:VOLT 1.5", ":SOURCE:VOLTAGE 1.5", ":sour:volt:lev:imm:ampl 1.5",
                                    "SOUR1:VOLT:LEVEL 1.5", ":source1:voltage:level:immediate:amplitude 1.5",
                                    ":SoUr:VoLt 1.5"])
def test_short_long_case_optional_nodes(bench: Bench, header: str) -> None:
    # SCPI-99 vol.1 ch.6: short form = uppercase part, long form whole word, case-insensitive, [ ] optional
    w(bench, header)
    assert q(bench, ":SOUR:VOLT?") == "+1.500000E+00\n"
    assert err(bench) == '+0,"No error"\n'


@pytest.mark.parametrize("header", [":SOURC:VOLT 1", ":SOU:VOLT 1", ":SOURCEX:VOLT 1", ":VOLT 1", ":SOUR:VOLT:LEVE 1"])
def test_other_abbreviations_are_undefined_headers(bench: Bench, header: str) -> None:
    # SCPI-99 vol.1 ch.6: only the short and the long form are accepted; else -113 (vol.2 ch.21)
    w(bench, header)
    assert err(bench) == '-113,"Undefined header"\n'
    assert q(bench, "*ESR?") == "160\n"      # IEEE 488.2 11.5.1.1: CME (bit 5) + PON from power-on


def test_numeric_suffixes(bench: Bench) -> None:
    # SCPI-99 vol.1 ch.6 numeric suffix: omitted = 1; a suffix the node does not allow -> -114
    w(bench, ":SOUR2:VOLT 2;:SOUR:VOLT 1;:OUTP2 ON")
    assert q(bench, ":SOUR2:VOLT?;:SOUR1:VOLT?;:OUTP2?;:OUTP?") == "+2.000000E+00;+1.000000E+00;1;0\n"
    w(bench, ":SOUR3:VOLT 1")
    assert err(bench) == '-114,"Header suffix out of range"\n'
    w(bench, ":SENS2:MODE FAST")              # SENSe takes no suffix
    assert err(bench) == '-113,"Undefined header"\n'


def test_header_separator_and_long_mnemonic(bench: Bench) -> None:
    # IEEE 488.2 7.4.3: header and data separated by white space (-111); 7.6.1.2: mnemonic <= 12 chars (-112)
    w(bench, ":ROUT:CLOS(@101)")
    assert err(bench) == '-111,"Header separator error"\n'
    w(bench, ":SOURCEVOLTAGELEVEL 1")
    assert err(bench) == '-112,"Program mnemonic too long"\n'


def test_query_form_of_a_set_only_command_is_undefined(bench: Bench) -> None:
    w(bench, ":SYST:SLOW?")
    assert err(bench) == '-113,"Undefined header"\n'


# ------------------------------------------------------------------------ compound messages
def test_compound_replies_joined_with_semicolon(bench: Bench) -> None:
    # IEEE 488.2 8.4.1: response message units separated by ';', one terminator
    assert q(bench, "*IDN?;:TRIG:COUN?;*ESR?") == "rramlab,TOY1,SN42,1.2.3;1;128\n"


def test_header_path_rule(bench: Bench) -> None:
    # SCPI-99 vol.1 ch.6 (compound commands): a unit without leading ':' continues at the previous
    # unit's path; a leading ':' restarts at the root; common commands do not change the path.
    w(bench, ":SOUR2:VOLT 3;:SENS:MODE FAST;FUNC 'VOLT';*CLS;MODE NORM")
    assert q(bench, ":SENS:FUNC?;MODE?;:SOUR2:VOLT?") == '"VOLT";NORM;+3.000000E+00\n'
    assert err(bench) == '+0,"No error"\n'
    w(bench, ":SENS:MODE FAST;TRIG:COUN 5")    # -> :SENS:TRIG:COUN, undefined
    assert err(bench) == '-113,"Undefined header"\n'
    assert q(bench, ":SENS:MODE?") == "FAST\n"


def test_command_error_discards_rest_of_message(bench: Bench) -> None:
    # IEEE 488.2 6.1.6.1.1: after a command error the parser skips to the end of the program message
    assert q(bench, ":TRIG:COUN?;:BOGUS;:TRIG:COUN?;*IDN?") == "1\n"
    assert err(bench) == '-113,"Undefined header"\n'


def test_execution_error_does_not_stop_the_message(bench: Bench) -> None:
    # IEEE 488.2 ch.6: an execution error aborts only that command; later units are executed
    w(bench, ":TRIG:COUN 1000;:TRIG:COUN 7")
    assert q(bench, ":TRIG:COUN?") == "7\n"
    assert err(bench) == '-222,"Data out of range"\n'
    assert q(bench, "*ESR?") == "144\n"       # IEEE 488.2 11.5.1.1: EXE (bit 4) + PON


def test_empty_units_and_whitespace(bench: Bench) -> None:
    assert q(bench, "  :TRIG:COUN   9 ;  :TRIG:COUN?  ") == "9\n"


# ------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize(("arg", "value"), [("1", "+1.000000E+00"), ("-2.5", "-2.500000E+00"), ("+.5", "+5.000000E-01"),
                                            ("1E0", "+1.000000E+00"), ("25e-1", "+2.500000E+00"),
                                            ("1.5 V", "+1.500000E+00"), ("500mV", "+5.000000E-01"),
                                            ("MIN", "-1.000000E+01"), ("max", "+1.000000E+01"),
                                            ("DEF", "+0.000000E+00"), ("#H5", "+5.000000E+00")])
def test_numeric_forms(bench: Bench, arg: str, value: str) -> None:
    # SCPI-99 vol.1 ch.7: NR1/NR2/NR3, suffix multiplier + unit (m = milli), MINimum/MAXimum/DEFault,
    # non-decimal #H
    w(bench, f":SOUR:VOLT 9;:SOUR:VOLT {arg}")
    assert q(bench, ":SOUR:VOLT?") == value + "\n"
    assert err(bench) == '+0,"No error"\n'


def test_min_max_def_query_form(bench: Bench) -> None:
    # SCPI-99 vol.1 ch.7 (MIN/MAX/DEF in queries)
    assert q(bench, ":SOUR:VOLT? MIN;VOLT? MAX;VOLT? DEF") == "-1.000000E+01;+1.000000E+01;+0.000000E+00\n"


@pytest.mark.parametrize(("arg", "code", "text"), [("11", -222, "Data out of range"), ("ABC", -104, "Data type error"),
                                                   ("'1'", -158, "String data not allowed"),
                                                   ("1 A", -131, "Invalid suffix"),
                                                   ("1.2.3", -120, "Numeric data error")])
def test_numeric_errors(bench: Bench, arg: str, code: int, text: str) -> None:
    # SCPI-99 vol.2 ch.21 code meanings; the setting is unchanged
    w(bench, ":SOUR:VOLT 1;:SOUR:VOLT " + arg)
    assert err(bench) == f'{code:+d},"{text}"\n'
    assert q(bench, ":SOUR:VOLT?") == "+1.000000E+00\n"


def test_suffix_not_allowed_on_unitless_parameter(bench: Bench) -> None:
    w(bench, ":TRIG:COUN 5 V")
    assert err(bench) == '-138,"Suffix not allowed"\n'


@pytest.mark.parametrize(("arg", "state"), [("ON", "1"), ("off", "0"), ("1", "1"), ("0", "0"), ("2", "1"),
                                            ("0.4", "0")])
def test_booleans(bench: Bench, arg: str, state: str) -> None:
    # SCPI-99 vol.1 ch.7 boolean: ON|OFF|<NRf> (nonzero after rounding = ON)
    w(bench, f":OUTP {arg}")
    assert q(bench, ":OUTP?") == state + "\n"


def test_bad_boolean_and_choice(bench: Bench) -> None:
    w(bench, ":OUTP MAYBE")
    assert err(bench) == '-224,"Illegal parameter value"\n'
    w(bench, ":SENS:MODE SLOW")
    assert err(bench) == '-224,"Illegal parameter value"\n'
    w(bench, ":SENS:MODE 3")
    assert err(bench) == '-128,"Numeric data not allowed"\n'
    w(bench, ":SENS:MODE NORMAL")
    assert q(bench, ":SENS:MODE?") == "NORM\n"


def test_strings(bench: Bench) -> None:
    # IEEE 488.2 7.7.5: string data in '…' or "…", doubled quote = one quote; ';' inside is data
    w(bench, ':SENS:FUNC "a;b""c"')
    assert q(bench, ":SENS:FUNC?") == '"a;b"c"\n'
    w(bench, ":SENS:FUNC 'x'")
    assert q(bench, ":SENS:FUNC?") == '"x"\n'
    w(bench, ":SENS:FUNC VOLT")
    assert err(bench) == '-104,"Data type error"\n'


def test_parameter_counts(bench: Bench) -> None:
    w(bench, ":TRIG:COUN")
    assert err(bench) == '-109,"Missing parameter"\n'
    w(bench, ":TRIG:COUN 1,2")
    assert err(bench) == '-108,"Parameter not allowed"\n'
    w(bench, "*CLS 5")
    assert err(bench) == '-108,"Parameter not allowed"\n'
    w(bench, ":FORM:ELEM VOLT,CURR,TIME")
    assert q(bench, ":FORM:ELEM?") == "VOLT,CURR,TIME\n"


def test_channel_lists(bench: Bench) -> None:
    # SCPI-99 vol.1 ch.8 channel list: (@item{,item}), ranges with ':'
    inst = bench.instruments[R]
    w(bench, ":ROUT:CLOS (@101, 102:105,2)")
    assert inst.closed == [("101", None), ("102", "105"), ("2", None)]
    w(bench, ":ROUT:CLOS 101")
    assert err(bench) == '-104,"Data type error"\n'
    w(bench, ":ROUT:CLOS (@101,)")
    assert err(bench) == '-171,"Invalid expression"\n'


# ------------------------------------------------------------------------- error queue
def test_error_queue_fifo_overflow_and_cls(bench: Bench) -> None:
    # SCPI-99 vol.2 21.8: FIFO; when full the most recent entry is replaced by -350 "Queue overflow"
    for _ in range(6):
        w(bench, ":BOGUS")
    assert q(bench, ":SYST:ERR:COUN?") == "4\n"
    got = [err(bench) for _ in range(5)]
    assert got == ['-113,"Undefined header"\n'] * 3 + ['-350,"Queue overflow"\n', '+0,"No error"\n']
    w(bench, ":BOGUS")
    w(bench, "*CLS")                          # IEEE 488.2 10.3: *CLS clears the error queue and ESR
    assert q(bench, "*ESR?;:SYST:ERR?") == '0;+0,"No error"\n'


def test_instrument_specific_error_and_dde(bench: Bench) -> None:
    w(bench, ":SYST:TOY")
    assert err(bench) == '+1234,"Toy specific error"\n'
    assert q(bench, "*ESR?") == "136\n"       # positive (device-specific) error -> DDE (bit 3) + PON


def test_internal_bug_queues_device_error_and_session_continues(bench: Bench) -> None:
    w(bench, ":SYST:BOOM")
    assert err(bench) == '-300,"Device-specific error"\n'
    assert bench.internal_errors and "RuntimeError" in bench.internal_errors[0]
    assert q(bench, "*IDN?") == "rramlab,TOY1,SN42,1.2.3\n"


def test_query_unterminated_and_interrupted(bench: Bench) -> None:
    # IEEE 488.2 6.3.2.2: addressed to talk with nothing to say -> -420 (QYE);
    # 6.3.2.3: a new message before the response is read -> response discarded, -410
    w(bench, ":TRIG:COUN 3")
    assert bench.read(R) is None
    assert err(bench) == '-420,"Query UNTERMINATED"\n'
    w(bench, ":TRIG:COUN?")
    w(bench, ":TRIG:COUN 4")                  # reply "3" never read
    assert q(bench, ":SYST:ERR?;*ESR?") == '-410,"Query INTERRUPTED";132\n'   # PON + QYE


# ------------------------------------------------------------------- common commands, status
def test_esr_ese_stb_sre(bench: Bench) -> None:
    # IEEE 488.2 11.2 / 11.5: PON at power-on; ESB = ESR & ESE; MSS = STB & SRE; EAV (SCPI bit 2)
    assert q(bench, "*ESE?;*SRE?") == "0;0\n"
    w(bench, "*ESE 36;*SRE 36")
    assert q(bench, "*ESE?;*SRE?") == "36;36\n"
    assert q(bench, "*STB?") == "0\n"          # ESR = PON, not enabled by ESE 36
    w(bench, ":BOGUS")                          # CME (32) + error in the queue
    assert bench.instruments[R].status_byte() == 4 | 32 | 64
    assert q(bench, "*ESR?") == "160\n"        # PON 128 + CME 32, read clears
    assert q(bench, "*ESR?") == "0\n"
    w(bench, "*ESE 256")                        # 10.10: 0..255
    assert [err(bench), err(bench)] == ['-113,"Undefined header"\n', '-222,"Data out of range"\n']


def test_opc_and_slow_operation(bench: Bench) -> None:
    # IEEE 488.2 10.18/10.19/10.39: *OPC sets OPC when pending operations are done; *OPC? answers 1
    # then; *WAI holds later commands until then. Pending work ends on the virtual clock.
    w(bench, ":SYST:SLOW;*OPC")
    assert q(bench, "*ESR?") == "128\n"        # not complete yet (PON only)
    t0 = bench.clock.now
    w(bench, "*OPC?")
    assert bench.read(R) is None               # reply not due yet
    bench.clock.advance(1.0)
    assert bench.read(R) == b"1\n"
    assert q(bench, "*ESR?") == "1\n"
    w(bench, ":SYST:SLOW;*WAI;:TRIG:COUN 2")
    assert bench.clock.now >= t0 + 2.0


def test_rst_keeps_error_queue_and_opt_tst(bench: Bench) -> None:
    # IEEE 488.2 10.32: *RST does not affect the error queue / status registers
    w(bench, ":TRIG:COUN 9;:BOGUS")
    w(bench, "*RST")
    assert q(bench, ":TRIG:COUN?") == "1\n"
    assert err(bench) == '-113,"Undefined header"\n'
    assert q(bench, "*OPT?;*TST?") == "OPT1,0;0\n"   # 10.20 *OPT?, 10.38 *TST? (0 = passed)


def test_reboot_fault_is_power_on(bench: Bench) -> None:
    w(bench, ":TRIG:COUN 9;*ESE 4")
    bench.faults.add("reboot", match="TRIG:COUN\\?")
    assert q(bench, ":TRIG:COUN?;*ESE?;*ESR?") == "1;0;128\n"


def test_redeclaring_a_header_replaces_it(bench: Bench) -> None:
    inst = bench.instruments[R]
    inst.command("*TST?", lambda call: "1")
    assert q(bench, "*TST?") == "1\n"


def test_scpi_error_carries_code() -> None:
    e = ScpiError(-222)
    assert e.code == -222 and "Data out of range" in str(e)
