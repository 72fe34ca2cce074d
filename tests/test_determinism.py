"""Same bench config, seed and message sequence → byte-identical replies."""

from __future__ import annotations

import pyvisa
from conftest import bench_of, open_rm
from tsp_lib import load_lib
from tsp_session import cell_channels, open_bench


def _session(query: str) -> tuple[list[bytes], float]:
    rm = open_rm(query)
    smu, mx, ctl = open_bench(rm)
    load_lib(smu)
    out: list[bytes] = []
    for row in (1, 2):
        mx.write(f"channel.exclusiveclose('{cell_channels(row, 3)}')")
        smu.write("print(rr_form(4, 0.01, 1.2, 1e-3, 50e-6))")
        out.append(smu.read_raw())
        smu.write("rr_sweep(-1.4, -0.02, 1.2); rr_bias(3.3); rr_pulse_setup(2.5e-6)")
        for _ in range(5):
            smu.write("rr_pulse(1.35); print(rr_read(0.2, 1))")
            out.append(smu.read_raw())
        ctl.write("CLOCk:WAIT 3600")
        smu.write("print(rr_read(0.2, 1))")
        out.append(smu.read_raw())
        smu.write("rr_outputs_off()")
    ctl.write("CLOCk:TIME?")
    t = float(ctl.read())
    transcript = [e.data for e in bench_of(rm).transcript.entries]
    rm.close()
    return out + transcript, t


def test_same_seed_same_bytes() -> None:
    a, ta = _session("seed=11")
    b, tb = _session("seed=11")
    assert a == b and ta == tb


def test_other_seed_other_device() -> None:
    a, _ = _session("seed=11")
    c, _ = _session("seed=12")
    assert a[:20] != c[:20]


def test_resource_managers_on_one_library_share_the_instruments() -> None:
    """As on a real bench: an instrument keeps its state when the client goes away (output left on)."""
    lib_spec = "?tag=client-death@rramlab"
    rm1 = pyvisa.ResourceManager(lib_spec)
    lib = rm1.visalib
    smu = rm1.open_resource("GPIB0::26::INSTR", read_termination="\n")
    smu.write("smua.source.levelv = 0.7; smua.source.output = smua.OUTPUT_ON")
    rm1.close()
    rm2 = pyvisa.ResourceManager(lib_spec)
    assert rm2.visalib is lib
    smu2 = rm2.open_resource("GPIB0::26::INSTR", read_termination="\n")
    assert smu2.query("print(smua.source.output, smua.source.levelv)") == "1.00000e+00\t7.00000e-01"
    rm2.close()
