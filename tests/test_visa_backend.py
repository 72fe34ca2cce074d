"""Tier 1: the @rramlab pyvisa backend behaves as a message-based VISA library."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pyvisa
from conftest import bench_of, open_rm
from pyvisa import constants, errors
from tsp_session import CONTROLLER, MATRIX, SMU, open_bench


def test_list_resources_realistic_addresses(rm: pyvisa.ResourceManager) -> None:
    found = rm.list_resources()
    assert SMU in found and MATRIX in found and CONTROLLER in found
    assert rm.list_resources("GPIB?*::INSTR") == (SMU, MATRIX)
    with pytest.raises(errors.VisaIOError) as e:
        rm.list_resources("ASRL?*::INSTR")
    assert e.value.error_code == constants.StatusCode.error_resource_not_found


def test_identities_and_terminations(rm: pyvisa.ResourceManager) -> None:
    smu, mx, ctl = open_bench(rm)
    assert smu.query("*IDN?") == "Keithley Instruments Inc., Model 2636B, 4428182, 4.0.5"
    assert mx.query("*IDN?") == "Keithley Instruments Inc., Model 707B, 4411350, 1.5.2"
    assert ctl.query("*IDN?").startswith("rramlab,Simulated Bench Controller,default,")
    # raw bytes: LF-terminated reply with END on the last byte
    smu.write("print(localnode.model)")
    assert smu.read_raw() == b"2636B\n"


def test_default_write_termination_crlf_is_accepted(rm: pyvisa.ResourceManager) -> None:
    smu = rm.open_resource(SMU)  # pyvisa's default write termination is CR LF
    smu.read_termination = "\n"
    assert smu.query("print(localnode.model)") == "2636B"


def test_read_with_count_and_termchar(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    smu.write('print("abcdefghij")')
    lib, session = rm.visalib, smu.session
    data, status = lib.read(session, 4)
    assert (data, status) == (b"abcd", constants.StatusCode.success_max_count_read)
    data, status = lib.read(session, 100)
    assert data == b"efghij\n"
    assert status == constants.StatusCode.success_termination_character_read


def test_timeout_when_nothing_pending_and_session_continues(rm: pyvisa.ResourceManager) -> None:
    smu, _, ctl = open_bench(rm)
    smu.timeout = 250
    t0 = float(ctl.query("CLOCk:TIME?"))
    with pytest.raises(errors.VisaIOError) as e:
        smu.read()
    assert e.value.error_code == constants.StatusCode.error_timeout
    t1 = float(ctl.query("CLOCk:TIME?"))
    assert t1 - t0 >= 0.25  # the host waited its timeout on the virtual clock
    assert smu.query("print(1+1)") == "2.00000e+00"


def test_read_stb_clear_and_trigger(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    smu.write("*CLS")
    assert smu.read_stb() & 16 == 0
    smu.write('print("x")')
    assert smu.read_stb() & 16  # MAV
    smu.clear()                  # device clear discards the reply
    assert smu.read_stb() & 16 == 0
    smu.write("x = = 1")
    assert smu.read_stb() & 4    # EAV: error queued
    smu.assert_trigger()
    events = [e.kind for e in bench_of(rm).events.events]
    assert "device_clear" in events and "bus_trigger" in events


def test_attributes(rm: pyvisa.ResourceManager) -> None:
    smu = rm.open_resource(SMU)
    smu.timeout = 1234
    assert smu.timeout == 1234
    assert smu.get_visa_attribute(constants.ResourceAttribute.resource_name) == SMU
    assert smu.interface_type == constants.InterfaceType.gpib
    smu.timeout = None
    assert smu.get_visa_attribute(constants.ResourceAttribute.timeout_value) == 0xFFFFFFFF


def test_unknown_resource_is_not_found(rm: pyvisa.ResourceManager) -> None:
    with pytest.raises(errors.VisaIOError) as e:
        rm.open_resource("GPIB0::5::INSTR")
    assert e.value.error_code == constants.StatusCode.error_resource_not_found


def test_two_benches_never_share_state() -> None:
    a, b = open_rm(), open_rm()
    sa, sb = a.open_resource(SMU, read_termination="\n"), b.open_resource(SMU, read_termination="\n")
    sa.write("smua.source.levelv = 1.5")
    assert sa.query("print(smua.source.levelv)") == "1.50000e+00"
    assert sb.query("print(smua.source.levelv)") == "0.00000e+00"
    assert bench_of(a) is not bench_of(b)
    a.close()
    b.close()


def test_bench_file_path_before_at(tmp_path: Path) -> None:
    from rramlab.simulator.bench_config import default_bench_text

    text = default_bench_text().replace('serial = "4428182"', 'serial = "1234567"').replace(
        "seed = 20250206", "seed = 7")
    path = tmp_path / "lab.toml"
    path.write_text(text)
    rm = pyvisa.ResourceManager(f"{path}@rramlab")
    smu = rm.open_resource(SMU, read_termination="\n")
    assert smu.query("*IDN?") == "Keithley Instruments Inc., Model 2636B, 1234567, 4.0.5"
    assert rm.open_resource(CONTROLLER, read_termination="\n").query("BENCh:SEED?") == "7"
    rm.close()


def test_pyvisa_library_environment_variable(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import pyvisa
        rm = pyvisa.ResourceManager()
        print(sorted(rm.list_resources()))
        print(rm.open_resource("{SMU}", read_termination="\\n").query("*IDN?"))
    """)
    env = dict(os.environ, PYVISA_LIBRARY="@rramlab")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out[0] == str(sorted([SMU, MATRIX, CONTROLLER]))
    assert out[1].startswith("Keithley Instruments Inc., Model 2636B")


def test_controller_clock(rm: pyvisa.ResourceManager) -> None:
    _, _, ctl = open_bench(rm)
    t0 = float(ctl.query("CLOCK:TIME?"))
    ctl.write("CLOC:WAIT 315360000")  # ten years, no wall time
    t1 = float(ctl.query("clock:time?"))
    assert t1 - t0 == pytest.approx(315360000, abs=0.01)
    ctl.write(f"CLOCk:WAIT:UNTil {t1 + 5}")
    assert float(ctl.query("CLOC:TIME?")) == pytest.approx(t1 + 5, abs=0.01)
    ctl.write("CLOCk:WAIT -1")
    ctl.write("FOO:BAR")
    assert ctl.query("SYST:ERR?") == '-222,"Data out of range"'
    assert ctl.query("SYSTem:ERRor:NEXT?") == '-113,"Undefined header"'
    assert ctl.query("SYST:ERR?") == '0,"No error"'
    assert ctl.query("*OPC?;BENC:SEED?") == "1;20250206"
    assert float(ctl.query("CLOCk:WALL?")) < 60.0


def test_transcript_is_bounded_and_can_be_turned_off() -> None:
    from rramlab.simulator.bench_config import BenchConfigError

    rm = open_rm("transcript=10")
    smu = rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    for k in range(30):
        assert float(smu.query(f"print({k})")) == k               # 60 messages
    t = bench_of(rm).transcript
    assert 10 <= len(t.entries) < 20 and t.dropped + len(t.entries) == 60
    assert t.entries[-1].data == b"2.90000e+01\n"                 # the newest are kept
    rm.close()
    rm = open_rm("transcript=0")
    rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n").query("print(1)")
    assert bench_of(rm).transcript.entries == []
    rm.close()
    with pytest.raises(BenchConfigError, match="bench.transcript must be true, false or a number of entries >= 0"):
        open_rm("transcript=-1")
