"""Keysight B2901A/B2902A emulator (SCPI): command -> exact reply bytes and error codes, and physics.

Expectations come from the Agilent B2900 SCPI Command Reference Ed. 2 / Keysight B2961A/B2962A SCPI
Command Reference Ed. 6 / B2900 User's Guide and data sheet ([M] + page), from sessions recorded on a
real B2901A ([C] Lab::Measurement ``t/Moose/Instrument/KeysightB2901A.yml``, a B2901A script's printed
output ``control_smu.py``, a B2902A script asserting ``*IDN?``), or the SCPI-99 standard — never
from the emulator's own output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from electrical_helpers import attach_resistor

from rramlab.simulator import models
from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import InstrumentConfig
from rramlab.simulator.electrical import OUTPUT_ON

models._load()   # the registry must hold every family before a module is imported on its own

from rramlab.simulator.scpi.keysight_b2900 import KeysightB2900  # noqa: E402

RESOURCE = "GPIB0::23::INSTR"
DATA = re.compile(r"^[+-]\d\.\d{6}E[+-]\d\d$")          # [C] control_smu.py: +9.760740E-01; [M] 1-12


class Session:
    """Byte-level access to one emulated B2901A/B2902A on a bench."""

    def __init__(self, model: str = "B2902A", noise: bool = False) -> None:
        self.bench = Bench.from_spec(f"?noise={int(noise)}@rramlab")
        cfg = InstrumentConfig(name="b29", model=model, resource=RESOURCE, serial="MY51143745",
                               firmware="3.4.2011.5100")
        self.inst = KeysightB2900(self.bench, cfg)
        self.bench.instruments[RESOURCE] = self.inst

    def state(self, channel: int) -> object:
        return self.bench.circuit.sources[f"b29.{channel}"]

    def write(self, text: str) -> None:
        self.bench.write(RESOURCE, text.encode() + b"\n")

    def query(self, text: str) -> str:
        self.write(text)
        reply = self.bench.read(RESOURCE)
        assert reply is not None, f"no reply to {text!r}"
        assert reply.endswith(b"\n")
        return reply[:-1].decode()


@pytest.fixture
def b() -> Iterator[Session]:
    s = Session()
    yield s
    assert s.bench.internal_errors == []



# ------------------------------------------------------------------------------- identity, errors
def test_idn(b: Session) -> None:
    # [C] a B2902A script asserts exactly this reply (serial/firmware from the bench file)
    assert b.query("*IDN?") == "Keysight Technologies,B2902A,MY51143745,3.4.2011.5100"


def test_empty_error_queue(b: Session) -> None:
    assert b.query(":SYST:ERR?") == '+0,"No error"'                     # [C] control_smu.py output


def test_unknown_header_and_out_of_range(b: Session) -> None:
    b.write(":BOGUS 1")
    assert b.query(":SYST:ERR?") == '-113,"Undefined header"'           # SCPI-99 21.8.9 (text U on B2900)
    b.write(":SOUR1:VOLT 1;:SOUR1:VOLT 300")                            # > 210 V [M Table 2-4]
    assert b.query(":SYST:ERR?") == '-222,"Data out of range"'          # SCPI-99 21.8.10
    assert b.query(":SOUR1:VOLT?") == "+1.00000000E+000"                # setting kept
    assert b.query(":SYST:ERR?") == '+0,"No error"'


def test_b2901a_has_one_channel() -> None:
    s = Session(model="B2901A")
    assert s.query("*IDN?").startswith("Keysight Technologies,B2901A,")
    s.write(":SOUR2:VOLT 1")
    assert s.query(":SYST:ERR?") == '-114,"Header suffix out of range"'  # SCPI-99; B2901A = 1 ch [M]
    assert "b29.2" not in s.bench.circuit.sources
    assert models.channels("B2901A") == ("1",) and models.channels("B2902A") == ("1", "2")


# ---------------------------------------------------------- recorded B2901A session (Lab::Measurement)
@pytest.mark.parametrize(("value", "reply"), [("1e-6", "+1.00000000E-006"), ("1e-5", "+1.00000000E-005"),
                                              ("1e-4", "+1.00000000E-004")])
def test_recorded_range_and_compliance(b: Session, value: str, reply: str) -> None:
    b.write(f"SENS:CURR:RANG {value}")
    assert b.query("SENS:CURR:RANG?") == reply                          # [C] recorded session ids 16-21
    b.write(f"SENS:CURR:PROT {value}")
    assert b.query("SENS:CURR:PROT?") == reply                          # [C] ids 22-27


def test_recorded_source_function_range_level(b: Session) -> None:
    b.write("SOUR:FUNC:MODE CURR")
    assert b.query("SOUR:FUNC:MODE?") == "CURR"                         # [C] ids 28-29
    b.write("SOUR:FUNC:MODE VOLT")
    assert b.query("SOUR:FUNC:MODE?") == "VOLT"
    for value, reply in (("0.2", "+2.00000000E-001"), ("2", "+2.00000000E+000"), ("20", "+2.00000000E+001"),
                         ("200", "+2.00000000E+002")):
        b.write(f"SOUR:VOLT:RANG {value}")
        assert b.query("SOUR:VOLT:RANG?") == reply                      # [C] ids 32-39
    b.write("SOUR:VOLT:RANG 21")                                        # [C] id 40 (accepted)
    for value, reply in (("1.111", "+1.11100000E+000"), ("2.222", "+2.22200000E+000"),
                         ("0", "+0.00000000E+000"), ("0.1", "+1.00000000E-001"), ("1.234", "+1.23400000E+000")):
        b.write(f"SOUR:VOLT:LEV {value}")
        assert b.query("SOUR:VOLT:LEV?") == reply                       # [C] ids 41-78
    assert b.query("SENS:CURR:PROT:TRIP?") == "0"                       # [C] id 79
    assert b.query(":SYST:ERR?") == '+0,"No error"'


def test_recorded_sense_functions(b: Session) -> None:
    b.write("SENS:FUNC:OFF 'VOLT','CURR'")
    assert b.query("SENS:FUNC:ON?") == '""'                             # [C] ids 3-5
    b.write("SENS:FUNC:ON 'CURR'")
    assert b.query("SENS:FUNC:ON?") == '"CURR"'                         # [C] ids 6-8
    b.write("SENS:FUNC:OFF 'CURR'")
    b.write("SENS:FUNC:ON 'VOLT'")
    assert b.query("SENS:FUNC:ON?") == '"VOLT"'                         # [C] ids 9-13
    b.write("SENS:FUNC:ON 'CURR'")
    assert b.query("SENS:FUNC:ON?") == '"VOLT","CURR"'                  # [C] ids 14-15


# ------------------------------------------------------------------------------------- readings
def test_measure_current_format_and_auto_output_on(b: Session) -> None:
    assert b.query(":OUTP1?") == "0"
    assert DATA.match(b.query(":MEAS:CURR? (@1)"))                     # [C] +9.760740E-01; [M] 4-45
    assert b.query(":OUTP1?") == "1"                                    # auto output-on [M] 4-67


def test_measure_all_elements_and_channel_order(b: Session) -> None:
    values = b.query(":MEAS? (@1,2)").split(",")
    assert len(values) == 12 and all(DATA.match(v) for v in values)     # six elements per channel [M] 4-21
    assert values[2] == "+9.910000E+37"                                 # RES function off -> NaN [M] 1-12
    assert b.query(":FORM:ELEM:SENS?") == "VOLT,CURR,RES,TIME,STAT,SOUR"
    b.write(":FORM:ELEM:SENS CURR,SOUR")                                # [M] 4-44 example
    b.write(":SOUR1:VOLT 0.1;:SOUR2:VOLT 0.2")
    for chanlist in ("(@1,2)", "(@2,1)", "(@1:2)"):                     # ch1 data first [M] 4-44
        ch1curr, ch1sour, ch2curr, ch2sour = b.query(f":MEAS? {chanlist}").split(",")
        assert (ch1sour, ch2sour) == ("+1.000000E-01", "+2.000000E-01")
        assert DATA.match(ch1curr) and DATA.match(ch2curr)
    assert len(b.query(":MEAS:CURR? (@2,1)").split(",")) == 2          # ch1curr,ch2curr [M] 4-45


def test_function_off_reads_not_a_number(b: Session) -> None:
    b.write(":SENS1:FUNC:OFF \"CURR\";:FORM:ELEM:SENS CURR")
    assert b.query(":MEAS? (@1)") == "+9.910000E+37"                    # [M] 4-44 function not enabled


def test_fetch_without_data(b: Session) -> None:
    b.write(":FORM:ELEM:SENS CURR")
    assert b.query(":FETC? (@1)") == "+9.910000E+37"                    # [M] 4-44 no data exists


def test_nplc_is_clamped_not_refused(b: Session) -> None:
    assert b.query(":SENS1:CURR:NPLC?") == "+1.00000000E-001"           # default 0.1 PLC [M] 4-87
    b.write(":SENS1:CURR:NPLC 1000")                                    # > MAX -> MAX, no error [M] 4-87
    assert b.query(":SENS1:CURR:NPLC?") == "+1.00000000E+002"
    b.write(":SENS1:CURR:NPLC 1e-6")                                    # < MIN -> 4E-4 at 50 Hz [M]
    assert b.query(":SENS1:CURR:NPLC?") == "+4.00000000E-004"
    assert b.query(":SYST:ERR?") == '+0,"No error"'


def test_pulse_width_limits(b: Session) -> None:
    b.write(":SOUR1:PULS:WIDT 1e-3")
    b.write(":SOUR1:PULS:WIDT 1e-6")                                    # < 50 µs [M] User's Guide
    assert b.query(":SYST:ERR?").startswith("-222,")
    assert b.query(":SOUR1:PULS:WIDT?") == "+1.00000000E-003"
    b.write(":SOUR1:PULS:WIDT 5e-5")
    assert b.query(":SOUR1:PULS:WIDT?") == "+5.00000000E-005"


def test_compliance_defaults(b: Session) -> None:
    assert b.query(":SENS1:CURR:PROT?") == "+1.00000000E-004"           # 100 µA [M] B2961A 4-90
    assert b.query(":SENS1:VOLT:PROT?") == "+2.00000000E+000"           # 2 V [M] 4-90


# ------------------------------------------------------------------------------------- physics
def test_open_circuit_noise_floor_on_1ua_range() -> None:
    s = Session(noise=True)
    values = [float(s.query(":MEAS:CURR? (@1)")) for _ in range(20)]
    assert s.query(":SENS1:CURR:RANG?") == "+1.00000000E-006"           # auto-range lower limit 1 µA [M 2-17]
    for v in values:                                                    # 1 pA resolution [M data sheet]
        assert abs(v / 1e-12 - round(v / 1e-12)) < 1e-6
        assert abs(v) < 1e-10
    assert any(v != 0.0 for v in values)
    assert s.bench.internal_errors == []


def test_compliance_clamps_and_reports(b: Session) -> None:
    attach_resistor(b.bench.circuit, "b29.1", 1e3)
    b.write(":SENS1:CURR:PROT 1e-4;:SOUR1:VOLT 1;:OUTP1 ON;:FORM:ELEM:SENS CURR,STAT")
    curr, stat = b.query(":MEAS? (@1)").split(",")
    assert float(curr) == pytest.approx(1e-4, rel=1e-5)                 # clamped at the compliance
    assert int(float(stat)) & 6                                         # compliance bits [M] 1-14
    assert b.query(":SENS1:CURR:PROT:TRIP?") == "1"                     # [M] 4-91 / Ed.2 4-77
    assert b.query(":SYST:ERR:COUN?") == "0"
    b.write(":SENS1:CURR:PROT 1e-2")
    curr, stat = b.query(":MEAS? (@1)").split(",")
    assert float(curr) == pytest.approx(1e-3, rel=1e-5) and int(float(stat)) & 6 == 0
    assert b.query(":SENS1:CURR:PROT:TRIP?") == "0"


def test_driver_pulse_sequence_on_the_clock(b: Session) -> None:
    """Scheme v1 pulse: base = immediate level, one transient trigger gives one pulse to the
    triggered level for the width [M User's Guide p. 6-7]."""
    history: list[tuple[float, float]] = []
    changed = b.bench.circuit.changed
    state = b.bench.circuit.sources["b29.1"]

    def spy() -> None:
        changed()
        history.append((b.bench.clock.now, state.levelv))

    b.bench.circuit.changed = spy                                      # type: ignore[method-assign]
    b.write(":SOUR1:VOLT 0.2;:OUTP1 ON")
    b.write(":SOUR1:FUNC:MODE VOLT;:SOUR1:VOLT:MODE FIX;:SOUR1:PULS:DEL 0;:SOUR1:PULS:WIDT 0.001;"
            ":TRIG1:TRAN:SOUR AINT;:TRIG1:TRAN:COUN 1;:TRIG1:TRAN:DEL 0;:ARM1:TRAN:COUN 1")
    assert b.query(":SYST:ERR?") == '+0,"No error"'
    t0 = b.bench.clock.now
    assert b.query(":SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT:TRIG 1.5;:INIT:TRAN (@1);*WAI;"
                   ":SOUR1:FUNC:SHAP DC;:SYST:ERR?") == '+0,"No error"'
    on = next(t for t, v in history if t >= t0 and v == 1.5)
    off = next(t for t, v in history if t > on and v == 0.2)
    assert off - on == pytest.approx(0.001, abs=1e-12)                  # width on the virtual clock
    assert state.levelv == 0.2 and state.output == OUTPUT_ON            # back at the base
    assert b.bench.clock.now - t0 >= 0.001
    assert b.query(":SOUR1:VOLT?") == "+2.00000000E-001"
    # pulse_and_measure (scheme v2): DC shape again, read level, spot reading, back to 0 V
    value, err = b.query(":SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT:TRIG 1.5;:INIT:TRAN (@1);*WAI;:SOUR1:FUNC:SHAP DC;"
                         ":SOUR1:VOLT 0.1;:MEAS:CURR? (@1);:SOUR1:VOLT 0;:SYST:ERR?").split(";")
    assert DATA.match(value) and err == '+0,"No error"'
    assert state.levelv == 0.0


def test_shutdown_steps(b: Session) -> None:
    b.write(":OUTP1 ON;:OUTP2 ON;:SOUR1:VOLT 1")
    for step in (":OUTP1 OFF", ":OUTP2 OFF", ":ABOR (@1,2)", ":SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:SOUR1:CURR 0",
                 ":SOUR2:FUNC:SHAP DC;:SOUR2:VOLT 0;:SOUR2:CURR 0"):     # scheme v2 shutdown
        b.write(step)
    assert b.query(":OUTP1?;:OUTP2?;:SOUR1:VOLT?;:SYST:ERR?") == '0;0;+0.00000000E+000;+0,"No error"'


def test_triggered_list_sweep_acquires_each_point(b: Session) -> None:
    b.write(":SOUR1:VOLT:MODE LIST;:SOUR1:LIST:VOLT 0.1,0.2,0.3;:TRIG1:COUN 3;:FORM:ELEM:SENS SOUR")
    b.write(":INIT (@1)")
    assert b.query(":FETC:ARR? (@1)") == "+1.000000E-01,+2.000000E-01,+3.000000E-01"   # [M] 4-xx FETC:ARR
    assert b.query(":SOUR1:LIST:VOLT:POIN?") == "3"
    assert b.query(":SYST:ERR?") == '+0,"No error"'


def test_integration_time_on_virtual_clock(b: Session) -> None:
    elapsed = {}
    for nplc in (1.0, 0.1):
        b.write(f":SENS1:CURR:NPLC {nplc}")
        t0 = b.bench.clock.now
        b.query(":MEAS:CURR? (@1)")
        elapsed[nplc] = b.bench.clock.now - t0
    assert elapsed[1.0] - elapsed[0.1] == pytest.approx(0.9 / 50, abs=1e-9)   # 1 PLC = 20 ms at 50 Hz


def test_two_channels_measure_in_parallel(b: Session) -> None:
    b.write(":SENS1:CURR:NPLC 1;:SENS2:CURR:NPLC 1;:OUTP1 ON;:OUTP2 ON")
    t0 = b.bench.clock.now
    b.query(":MEAS:CURR? (@1)")
    one = b.bench.clock.now - t0
    t0 = b.bench.clock.now
    b.query(":MEAS:CURR? (@1,2)")
    both = b.bench.clock.now - t0
    assert both - one < 0.001            # integrated side by side, not one after the other [ASSUMP]


def test_registration() -> None:
    assert models.emulator_class("B2901A") is KeysightB2900
    assert models.emulator_class("B2902A") is KeysightB2900
    assert KeysightB2900.KIND == "smu"
