"""Tier 1/3: errors behave as on the instruments, and the session always keeps working."""

from __future__ import annotations

import pytest
import pyvisa
from conftest import bench_of
from pyvisa import constants, errors
from tsp_session import open_bench


def _next_error(inst: pyvisa.resources.MessageBasedResource) -> list[str]:
    return inst.query("print(errorqueue.next())").split("\t")


# TSP runs Lua 5.0, which quotes names as `x' (``-285,TSP Syntax error at line 1: unexpected symbol near `*'``
# in a .NET driver's hardware tests; ``attempt to index field `smub'`` in OE-FET/keithley2600 issue #17) [C]


def test_unknown_command_queues_syntax_error(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    smu.write(":SOUR:VOLT 1")           # SCPI sent to a TSP instrument
    smu.write("*FOO?")                  # unknown common command
    assert smu.query("print(errorqueue.count)") == "2.00000e+00"
    assert _next_error(smu) == ["-2.85000e+02", "TSP Syntax error at line 1: unexpected symbol near `:'",
                                "2.00000e+01", "1.00000e+00"]
    assert _next_error(smu)[1] == "TSP Syntax error at line 1: unexpected symbol near `*'"
    assert _next_error(smu)[:2] == ["0.00000e+00", "Queue Is Empty"]
    assert smu.query("print(2*3)") == "6.00000e+00"


def test_statement_cannot_span_lines(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    smu.write("for i = 1, 3 do")
    assert _next_error(smu)[1] == "TSP Syntax error at line 1: `end' expected near `<eof>'"


def test_runtime_error_and_unknown_name(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    smu.write("nosuchfunction()")
    smu.write("smua.source.levelvv = 1")
    code, msg, *_ = _next_error(smu)
    assert code == "-2.86000e+02"
    assert msg == "TSP Runtime error at line 1: attempt to call global `nosuchfunction' (a nil value)"
    code, msg, *_ = _next_error(smu)
    assert code == "-2.86000e+02" and "smua.source.levelvv" in msg
    assert smu.query("print(smua.source.levelv)") == "0.00000e+00"


def test_parameter_errors_leave_setting_unchanged(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    smu.write("smua.source.limiti = 1.5e-7")
    smu.write("smua.source.limiti = 0")             # manual: 1102 Parameter too small
    smu.write("smua.measure.nplc = 30")             # above 25
    assert _next_error(smu)[:2] == ["1.10200e+03", "Parameter too small"]
    assert _next_error(smu)[:2] == ["1.10100e+03", "Parameter too big"]
    assert smu.query("print(smua.source.limiti)") == "1.50000e-07"
    assert smu.query("print(smua.measure.nplc)") == "1.00000e+00"


def test_crosspoint_on_empty_slot_closes_nothing(rm: pyvisa.ResourceManager) -> None:
    _, mx, _ = open_bench(rm)
    mx.write("channel.close('1A01,4A01')")  # slot 4 has no card
    mx.write("channel.close('1I01')")       # no row I on a 7174A
    mx.write("channel.close('1A13')")       # no column 13
    mx.write("channel.close('allslots')")   # slots cannot be closed
    assert mx.query("print(errorqueue.count)") == "4.000000000e+00"
    for _ in range(4):
        assert mx.query("print(errorqueue.next())").split("\t")[:2] == [
            "1.115000000e+03", "Parameter error, invalid channel list"]
    assert mx.query("print(channel.getclose('allslots'))") == "nil"
    mx.write("channel.close('1A01:1B02')")
    assert mx.query("print(channel.getclose('allslots'))") == "1A01;1A02;1B01;1B02"
    assert mx.query("print(slot[4].idn)") == "Empty Slot"


def test_read_with_nothing_pending_times_out(rm: pyvisa.ResourceManager) -> None:
    smu, mx, _ = open_bench(rm)
    mx.timeout = 100
    mx.write("channel.close('1A01')")       # produces no output
    with pytest.raises(errors.VisaIOError) as e:
        mx.read()
    assert e.value.error_code == constants.StatusCode.error_timeout
    assert mx.query("print(channel.getclose('slot1'))") == "1A01"
    assert [ev.kind for ev in bench_of(rm).events.of_kind("timeout")] == ["timeout"]


def test_scripts_loadscript_and_run(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    for line in ("loadscript twice", "function double(x)", "  return 2 * x", "end", "endscript"):
        smu.write(line)
    assert smu.query("print(double)") == "nil"          # defined only when the script runs
    smu.write("twice()")
    assert smu.query("print(double(21))") == "4.20000e+01"
    smu.write("loadandrunscript")
    smu.write("x = 1")
    smu.write("y = = 2")
    smu.write("endscript")
    assert _next_error(smu)[1] == "TSP Syntax error at line 2: unexpected symbol near `='"


def test_sandbox_has_no_host_access(rm: pyvisa.ResourceManager) -> None:
    smu, _, _ = open_bench(rm)
    assert smu.query("print(io, os, debug, require, loadstring, python)") == "nil\tnil\tnil\tnil\tnil\tnil"


def test_thousands_of_chunks_resolve_the_right_objects(rm: pyvisa.ResourceManager) -> None:
    """Regression for the lupa 5.1 userdata pitfall."""
    smu, _, _ = open_bench(rm)
    smu.write("smub.source.levelv = 0.5")
    for k in range(3000):
        v = (k % 50) / 100
        smu.write(f"smua.source.levelv = {v}; t = {{k = {k}}}")
        if k % 97 == 0:
            a, b = smu.query("print(smua.source.levelv, smub.source.levelv)").split("\t")
            assert float(a) == pytest.approx(v) and float(b) == pytest.approx(0.5)
    assert smu.query("print(errorqueue.count)") == "0.00000e+00"
    assert bench_of(rm).internal_errors == []
