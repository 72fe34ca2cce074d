"""Keithley 2450 emulator (SCPI): command -> exact reply bytes and error codes, and electrical behaviour.

Expectations come from the 2450 Reference Manual 2450-901-01 Rev. B ([M] + page) or from public code
written against the instrument or its TTI-firmware siblings ([C] + source), never from the
emulator's own output. Electrical checks drive the emulator through the bench's byte interface and
look at ``bench.circuit`` (a resistor load stands in for a device where a known current is needed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
from electrical_helpers import attach_resistor

from rramlab.simulator import models
from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import InstrumentConfig
from rramlab.simulator.electrical import OUTPUT_ON

models._load()   # the registry must hold every family before a module is imported on its own

from rramlab.simulator.scpi.keithley2450 import Keithley2450  # noqa: E402

RESOURCE = "GPIB0::18::INSTR"
ERR_STAMP = r';1;\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}"$'      # [C] cc.isr.VI DeviceError remarks
READING = re.compile(r"^-?\d\.\d{6}E[+-]\d\d$")                 # [M] p. 6-27: -2.384862E-06


class Session:
    """Byte-level access to one emulated 2450 on a bench."""

    def __init__(self, noise: bool = False) -> None:
        self.bench = Bench.from_spec(f"?noise={int(noise)}@rramlab")
        cfg = InstrumentConfig(name="k2450", model="2450", resource=RESOURCE, serial="04365704",
                               firmware="1.6.4c")
        self.inst = Keithley2450(self.bench, cfg)
        self.bench.instruments[RESOURCE] = self.inst
        self.state = self.bench.circuit.sources["k2450.1"]

    def write(self, text: str) -> None:
        self.bench.write(RESOURCE, text.encode() + b"\n")

    def query(self, text: str) -> str:
        self.write(text)
        reply = self.bench.read(RESOURCE)
        assert reply is not None, f"no reply to {text!r}"
        assert reply.endswith(b"\n")
        return reply[:-1].decode()

    def no_reply(self, text: str) -> None:
        self.write(text)
        assert self.inst.pending_until() is None, f"unexpected reply to {text!r}"


@pytest.fixture
def k() -> Iterator[Session]:
    s = Session()
    yield s
    assert s.bench.internal_errors == []



# ------------------------------------------------------------------------------- identity, errors
def test_idn_and_language(k: Session) -> None:
    # [C] real 2450 in public code; format [M] 2470 Ref. Manual A-5
    assert k.query("*IDN?") == "KEITHLEY INSTRUMENTS,MODEL 2450,04365704,1.6.4c"
    # [M] App. B-5 *LANG?; [C] QCoDeS Keithley2450._has_correct_language_mode expects "SCPI"
    assert k.query("*LANG?") == "SCPI"


def test_empty_error_queue(k: Session) -> None:
    # [C] fixate DMM6500 hardware test / PyMeasure DMM6500 test: 0,"No error;0;0 0"
    assert k.query(":SYST:ERR?") == '0,"No error;0;0 0"'
    assert k.query(":SYST:ERR:COUN?") == "0"                            # [M] :SYSTem:ERRor:COUNt?


def test_unknown_header_queues_113_and_session_continues(k: Session) -> None:
    k.query("*ESR?")
    k.no_reply(":BOGUS 1")                                              # [M] no reply, -113 queued
    assert k.query(":SYST:ERR:COUN?") == "1"
    assert re.match(r'^-113,"Undefined header' + ERR_STAMP, k.query(":SYST:ERR?"))   # [M] text, [C] tail
    assert int(k.query("*ESR?")) & 32                                   # [M] ESR CME
    assert k.query("*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450")


def test_out_of_range_level_queues_222_and_keeps_setting(k: Session) -> None:
    k.write(":SOUR:VOLT 1")
    k.write(":SOUR:VOLT 300")                                           # > 210 V [M] SPEC-2450
    assert re.match(r'^-222,"Parameter data out of range' + ERR_STAMP, k.query(":SYST:ERR?"))  # [M]
    assert float(k.query(":SOUR:VOLT?")) == 1.0


@pytest.mark.parametrize("nplc", ["0.001", "20"])
def test_nplc_limits(k: Session, nplc: str) -> None:
    k.write(":SENS:CURR:NPLC 0.5")
    k.write(f":SENS:CURR:NPLC {nplc}")                                  # [M] 0.01 to 10
    assert k.query(":SYST:ERR?").startswith('-222,"Parameter data out of range')
    assert float(k.query(":SENS:CURR:NPLC?")) == 0.5


def test_ilim_limits(k: Session) -> None:
    k.write(":SOUR:VOLT:ILIM 2")                                        # > 1.05 A [M] SPEC-2450
    assert k.query(":SYST:ERR?").startswith("-222,")
    k.write(":SOUR:VOLT:ILIM 1e-3")
    assert float(k.query(":SOUR:VOLT:ILIM?")) == 1e-3
    assert k.query(":SYST:ERR:COUN?") == "0"


def test_event_log_format(k: Session) -> None:
    # [M] p. 6-101: empty 0,"No error;0,0,0"; -109,"Missing parameter;1,1367794863,384492889"
    assert k.query(":SYST:EVEN:NEXT?") == '0,"No error;0,0,0"'
    k.write(":SOUR:VOLT:ILIM")
    assert re.match(r'^-109,"Missing parameter;1,\d+,\d+"$', k.query(":SYST:EVEN:NEXT?"))


def test_invalid_buffer_element(k: Session) -> None:
    k.query(":READ?")
    k.write(':TRAC:DATA? 1,1,"defbuffer1",FOO')
    # [M] 1133,"Parameter 4, Syntax error, expected valid name parameters."
    assert k.query(":SYST:ERR?").startswith('1133,"Parameter 4, Syntax error, expected valid name parameters.')


# ------------------------------------------------------------------------------------- settings
def test_function_queries(k: Session) -> None:
    assert k.query(":SOUR:FUNC?") == "VOLT"                             # [C] QCoDeS mapping VOLT/CURR
    k.write(':SENS:FUNC "CURR"')
    assert k.query(":SENS:FUNC?") == '"CURR:DC"'                        # [C] QCoDeS '"CURR:DC"'
    k.write(":SENS:FUNC 'VOLT'")                                        # PyMeasure sends single quotes
    assert k.query(":SENS:FUNC?") == '"VOLT:DC"'
    assert k.query(":SYST:ERR:COUN?") == "0"


def test_output_and_trip_booleans(k: Session) -> None:
    assert k.query(":OUTP?") == "0"                                     # [C] QCoDeS on/off mapping 1/0
    k.write(":OUTP ON")
    assert k.query(":OUTP?") == "1"
    assert k.query(":SOUR:VOLT:ILIM:TRIP?") == "0"                      # [M] p. 6-72 (open circuit)


def test_line_frequency(k: Session) -> None:
    assert k.query(":SYST:LFR?") == "50"                                # [C] DMM6500 test: b'60\n' at 60 Hz


def test_setting_replies_short_form(k: Session) -> None:
    # [C] PyMeasure DMM6500 protocol tests (same TTI firmware): NPLC? -> 2, RANG? -> 0.01, 1E+07
    k.write(":SENS:CURR:NPLC 2")
    assert k.query(":SENS:CURR:NPLC?") == "2"
    k.write(":SENS:CURR:RANG 0.01")
    assert k.query(":SENS:CURR:RANG?") == "0.01"
    k.write(":SENS:CURR:RANG 1.5e-6")                                   # expected reading -> 10 µA [M 6-54]
    assert k.query(":SENS:CURR:RANG?") == "1E-05"
    assert k.query(":SENS:CURR:RANG:AUTO?") == "0"                      # fixed range turns auto off [M 6-54]


# ------------------------------------------------------------------------------------- readings
def test_reading_format_and_precision(k: Session) -> None:
    k.write(":OUTP ON")
    assert k.query(":MEAS:CURR?") == "0.000000E+00"                     # [C] DMM6500 test; noise off
    k.write(":FORM:ASC:PREC 10")                                        # [M] -6.999999881E-01 at 10
    assert re.match(r"^-?\d\.\d{9}E[+-]\d\d$", k.query(":READ?"))
    assert k.query(":FORM:ASC:PREC?") == "10"


def test_compound_message_joins_replies(k: Session) -> None:
    # IEEE 488.2 §8.4.1; 2450 [M] "Multiple command messages"; the driver's sweep_point message
    reply = k.query(":SOUR:VOLT 0.5;:MEAS:CURR?;:SOUR:VOLT:ILIM:TRIP?;:SYST:ERR:COUN?")
    value, trip, count = reply.split(";")
    assert READING.match(value) and trip == "0" and count == "0"


def test_buffer_counts_and_trace_data(k: Session) -> None:
    k.write(":OUTP ON;:SENS:COUN 3")
    k.query(":READ?")                                                   # [M] count readings into defbuffer1
    assert k.query(":TRAC:ACT?") == "3"
    data = k.query(':TRAC:DATA? 1, 3, "defbuffer1", READ, SOUR').split(",")
    assert len(data) == 6 and all(READING.match(x) for x in data)
    assert k.query(":TRAC:DATA? 1, 3, 'defbuffer1'").count(",") == 2    # [C] QCoDeS single quotes
    k.write(':TRAC:CLE "defbuffer1"')
    assert k.query(":TRAC:ACT?") == "0"


def test_linear_sweep(k: Session) -> None:
    # [M] p. 6-81 argument order; [C] QCoDeS sweep_start sends this shape
    k.write(":SOUR:SWE:VOLT:LIN 0,1,5,0.001,1,BEST,ON,OFF,'defbuffer1';:INIT;*WAI")
    assert k.query(":SYST:ERR:COUN?") == "0"
    assert k.query(":TRAC:ACT?") == "5"
    sources = [float(x) for x in k.query(':TRAC:DATA? 1,5,"defbuffer1",SOUR').split(",")]
    assert sources == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert k.query("*OPC?") == "1"


def test_infinite_sweep_count_is_refused(k: Session) -> None:
    k.write(":SOUR:SWE:VOLT:LIN 0,1,5,0.001,0")                         # count 0 = infinite [M]
    assert k.query(":SYST:ERR?").startswith("-221,")                    # emulator limit (documented)


# ------------------------------------------------------------------------------------- physics
def test_open_circuit_reads_noise_floor_on_lowest_range() -> None:
    s = Session(noise=True)
    s.write(":OUTP ON;:SOUR:VOLT 1")
    values = [float(s.query(":MEAS:CURR?")) for _ in range(20)]
    assert s.query(":SENS:CURR:RANG?") == "1E-08"                       # auto range to 10 nA [M ranges]
    for v in values:                                                    # on the 10 fA grid [M SPEC-2450]
        assert abs(v / 10e-15 - round(v / 10e-15)) < 1e-6
        assert abs(v) < 1e-12
    assert any(v != 0.0 for v in values)
    assert s.bench.internal_errors == []


def test_compliance_clamps_without_error(k: Session) -> None:
    attach_resistor(k.bench.circuit, "k2450.1", 1e3)
    k.write(":SOUR:VOLT:ILIM 1e-4;:SOUR:VOLT 1;:OUTP ON")
    value, trip = k.query(":MEAS:CURR?;:SOUR:VOLT:ILIM:TRIP?").split(";")
    assert float(value) == pytest.approx(1e-4, rel=1e-5)                # clamped at the limit [M]
    assert trip == "1"                                                  # [M] p. 6-72
    assert k.state.in_compliance and k.state.v_out == pytest.approx(0.1, rel=1e-6)
    assert k.query(":SYST:ERR:COUN?") == "0"                            # no error queued [M]
    # the buffer's source status: STAT_LIMIT 32 + STAT_OUTPUT 128 (2450 Reference Manual p. 8-29,
    # bufferVar.sourcestatuses)
    assert k.query(':FETC? "defbuffer1", SOURSTAT') == "160"
    k.write(":SOUR:VOLT:ILIM 1e-2")
    value, trip = k.query(":MEAS:CURR?;:SOUR:VOLT:ILIM:TRIP?").split(";")
    assert float(value) == pytest.approx(1e-3, rel=1e-5) and trip == "0"
    assert k.query(':FETC? "defbuffer1", SOURSTAT') == "128"           # output on, not limited


def test_fixed_range_overflow(k: Session) -> None:
    attach_resistor(k.bench.circuit, "k2450.1", 1e3)
    k.write(":SOUR:VOLT:ILIM 0.1;:SOUR:VOLT 1;:OUTP ON;:SENS:CURR:RANG 1e-6")
    assert k.query(":MEAS:CURR?") == "9.900000E+37"                     # [C] DMM6500 test overflow


def test_integration_time_on_virtual_clock(k: Session) -> None:
    k.write(":OUTP ON")
    elapsed = {}
    for nplc in (1.0, 0.01):
        k.write(f":SENS:CURR:NPLC {nplc}")
        t0 = k.bench.clock.now
        k.query(":MEAS:CURR?")
        elapsed[nplc] = k.bench.clock.now - t0
    # [M] 1 PLC = 20 ms at 50 Hz: the two readings differ by 0.99 PLC; the rest (source delay,
    # autozero, bus) is the same for both [ASSUMP]
    assert elapsed[1.0] - elapsed[0.01] == pytest.approx(0.99 / 50, abs=1e-9)
    assert elapsed[0.01] < 1e-3


def test_pulse_as_list_sweep_holds_amplitude(k: Session) -> None:
    """The driver's pulse (scheme v2): the level sits at the amplitude for the sweep delay plus one
    0.01 PLC reading, then returns to the DC level with the output left on [M p. 6-78, 6-85 "a delay
    block is added to any source delay"; U end-of-sweep output state]; the NPLC is restored."""
    history: list[tuple[float, float, int]] = []
    changed = k.bench.circuit.changed

    def spy() -> None:
        changed()
        history.append((k.bench.clock.now, k.state.levelv, k.state.output))

    k.bench.circuit.changed = spy                                      # type: ignore[method-assign]
    assert k.query(":SENS:CURR:NPLC?;:SYST:LFR?;:SOUR:VOLT?;:SOUR:VOLT:ILIM?").count(";") == 3
    k.write(":SOUR:VOLT:DEL 0")
    assert k.query(":SENS:CURR:NPLC 0.01;:SOUR:LIST:VOLT 1.5,0.0;:SOUR:SWE:VOLT:LIST 1,0.0008,1,OFF;"
                   ":INIT;*WAI;:SENS:CURR:NPLC 1.0;:SYST:ERR:COUN?") == "0"
    on = next(t for t, v, _ in history if v == 1.5)
    off = next(t for t, v, _ in history if t > on and v == 0.0)
    t_read = 0.01 / 50 + k.bench.timing.measure_overhead
    assert off - on == pytest.approx(0.0008 + t_read, abs=1e-9)
    assert history[-1][1:] == (0.0, OUTPUT_ON)
    assert k.query(":TRAC:ACT?") == "2"
    assert k.query(":SENS:CURR:NPLC?") == "1"
    # pulse_and_measure: the list ends at the read level, then a spot reading there
    reply = k.query(":SENS:CURR:NPLC 0.01;:SOUR:LIST:VOLT 1.5,0.1;:SOUR:SWE:VOLT:LIST 1,0,1,OFF;:INIT;*WAI;"
                    ":SENS:CURR:NPLC 1.0;:MEAS:CURR?;:SOUR:VOLT 0;:SYST:ERR:COUN?")
    value, count = reply.split(";")
    assert READING.match(value) and count == "0"
    assert k.state.levelv == 0.0


def test_shutdown_steps(k: Session) -> None:
    k.write(":OUTP ON;:SOUR:VOLT 1")
    for step in (":OUTP OFF", ":ABOR", ":SOUR:VOLT 0;:SOUR:CURR 0"):   # scheme v2 shutdown
        k.write(step)
    assert k.query(":OUTP?;:SOUR:VOLT?;:SYST:ERR:COUN?") == "0;0;0"


def test_registration() -> None:
    assert models.emulator_class("2450") is Keithley2450
    assert models.channels("2450") == ("1",)
    assert Keithley2450.KIND == "smu"


def test_reset_turns_output_off(k: Session) -> None:
    k.write(":OUTP ON;:SOUR:VOLT 2")
    assert k.state.output == OUTPUT_ON and k.state.levelv == 2.0
    k.write("*RST")
    assert k.query(":OUTP?") == "0" and float(k.query(":SOUR:VOLT?")) == 0.0
    assert not math.isnan(k.state.v_out)
