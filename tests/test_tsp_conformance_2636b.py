"""The emulated 2636B against the Series 2600B Reference Manual (2600BS-901-01), driven through raw pyvisa
as the manual's examples (and QCoDeS / pymeasure) drive the instrument (rramlab issue #9, item 1)."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator

import pytest
import pyvisa
from conftest import bench_of

_tags = itertools.count()
SMU = "GPIB0::26::INSTR"


@pytest.fixture
def rm() -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager(f"?tag=conf2636b{next(_tags)}@rramlab")
    yield manager
    manager.close()


@pytest.fixture
def smu(rm: pyvisa.ResourceManager) -> pyvisa.resources.MessageBasedResource:
    return rm.open_resource(SMU, read_termination="\n", write_termination="\n")


def _errors(smu) -> list[list[str]]:  # noqa: ANN001
    n = int(float(smu.query("print(errorqueue.count)")))
    return [smu.query("print(errorqueue.next())").split("\t")[:2] for _ in range(n)]


# ------------------------------------------------------------------ format.data (manual 9-101, 9-102)
def test_printnumber_real32_little_and_big_endian(smu) -> None:  # noqa: ANN001
    """format.byteorder example (Rev F p. 9-101): 1.23 as REAL32 prints ``#0¤p??`` (little endian) and
    ``#0??p¤`` (big endian); binary messages start with #0 and end with LF (format.data, 9-102)."""
    smu.write("x = 1.23")
    smu.write("format.data = format.REAL32")
    smu.write("format.byteorder = format.LITTLEENDIAN")
    smu.write("printnumber(x)")
    assert smu.read_raw() == b"#0" + struct.pack("<f", 1.23) + b"\n" == b"#0\xa4p\x9d?\n"
    smu.write("format.byteorder = format.BIGENDIAN")
    smu.write("printnumber(x)")
    assert smu.read_raw() == b"#0?\x9dp\xa4\n"
    assert smu.query("print(format.data, format.byteorder)") == "2.00000e+00\t0.00000e+00"
    assert _errors(smu) == []


def test_printnumber_real64_then_ascii(smu) -> None:  # noqa: ANN001
    """format.data example (9-102): precision 10 ASCII, then REAL64 (IEEE-754 double), then ASCII again."""
    smu.write("format.asciiprecision = 10")
    smu.write("x = 3.14159265")
    smu.write("format.data = format.ASCII")
    assert smu.query("printnumber(x)") == "3.141592650e+00"
    smu.write("format.data = format.REAL64")
    smu.write("format.byteorder = format.SWAPPED")
    smu.write("printnumber(x)")
    assert smu.read_raw() == b"#0" + struct.pack("<d", 3.14159265) + b"\n"
    smu.write("format.data = format.ASCII")
    assert smu.query("printnumber(x, 2.5)") == "3.141592650e+00, 2.500000000e+00"


def test_reset_restores_ascii(smu) -> None:  # noqa: ANN001
    """format.data / format.byteorder are affected by instrument reset (9-101/9-102); default ASCII."""
    smu.write("format.data = format.REAL32")
    smu.write("reset()")
    assert smu.query("print(format.data)") == "1.00000e+00"


def test_printbuffer_real32_as_qcodes_reads_it(smu) -> None:  # noqa: ANN001
    """QCoDeS Keithley2600 fast sweep: REAL32 LITTLEENDIAN printbuffer read with read_raw until
    4*n + 3 bytes (data may contain LF: 1.0000011920928955 packs as 0a 00 80 3f)."""
    values = [0.5, 1.0000011920928955, -2.25]
    smu.write("format.data = format.REAL32")
    smu.write("format.byteorder = format.LITTLEENDIAN")
    smu.write("printbuffer(1, 3, {0.5, 1.0000011920928955, -2.25})")
    data = b""
    while len(data) < 4 * len(values) + 3:
        data += smu.read_raw()
    assert data[:2] == b"#0" and data[-1:] == b"\n"
    assert list(struct.unpack("<3f", data[2:-1])) == values


def test_query_binary_values_big_endian(smu) -> None:  # noqa: ANN001
    smu.write("format.data = format.REAL32")
    smu.write("format.byteorder = format.BIGENDIAN")
    got = smu.query_binary_values("printbuffer(1, 2, {1.5, -3})", datatype="f", is_big_endian=True,
                                  header_fmt="ieee", expect_termination=True, data_points=2)
    assert got == [1.5, -3.0]


# ---------------------------------------------- trigger.source.linearv / lineari / listv (manual 9-3xx)
def test_linearv_sweep_levels_in_buffer(smu) -> None:  # noqa: ANN001
    """smuX.trigger.source.linearv(start, stop, points): step = (stop - start)/(points - 1); sweep runs
    with smuX.trigger.initiate(); source values land in the buffer (collectsourcevalues)."""
    for line in ("smua.nvbuffer1.clear()", "smua.nvbuffer1.collectsourcevalues = 1",
                 "smua.trigger.source.linearv(-1, 1, 5)", "smua.trigger.source.action = smua.ENABLE",
                 "smua.trigger.measure.i(smua.nvbuffer1)", "smua.trigger.measure.action = smua.ENABLE",
                 "smua.trigger.count = 5", "smua.source.output = smua.OUTPUT_ON", "smua.trigger.initiate()",
                 "waitcomplete()"):
        smu.write(line)
    assert smu.query("printbuffer(1, smua.nvbuffer1.n, smua.nvbuffer1.sourcevalues)") == \
        "-1.00000e+00, -5.00000e-01, 0.00000e+00, 5.00000e-01, 1.00000e+00"
    # endsweep.action defaults to SOURCE_IDLE: the source returns to its idle level [M]
    assert smu.query("print(smua.source.levelv)") == "0.00000e+00"
    assert _errors(smu) == []


def test_lineari_and_listv_with_lua_table(smu) -> None:  # noqa: ANN001
    smu.write("smua.trigger.source.lineari(0, 1e-6, 3)")
    smu.write("v = {0.1, 0.2, 0.3}")
    smu.write("smua.trigger.source.listv(v)")
    assert _errors(smu) == []


# ----------------------------------------------------------------- factory scripts (KISweep, KIPulse)
def test_sweepvlinmeasurei_example(smu) -> None:  # noqa: ANN001
    """SweepVLinMeasureI(smua, -1, 1, 1e-3, points) (Rev F 9-36x): data, source values and timestamps
    in smua.nvbuffer1; the source settles stime before each measurement."""
    smu.write("SweepVLinMeasureI(smua, -1, 1, 1e-3, 11)")
    assert smu.query("print(smua.nvbuffer1.n)") == "1.10000e+01"
    src = smu.query("printbuffer(1, smua.nvbuffer1.n, smua.nvbuffer1.sourcevalues)").split(", ")
    assert [float(x) for x in src] == pytest.approx([-1 + 0.2 * k for k in range(11)], abs=1e-12)
    ts = [float(x) for x in smu.query("printbuffer(1, 11, smua.nvbuffer1.timestamps)").split(", ")]
    assert ts[0] == 0.0 and all(b - a >= 1e-3 for a, b in itertools.pairwise(ts))
    assert _errors(smu) == []


def test_sweepilin_and_list_factory_scripts(smu) -> None:  # noqa: ANN001
    smu.write("SweepILinMeasureV(smua, -1e-3, 1e-3, 0, 3)")
    assert smu.query("printbuffer(1, 3, smua.nvbuffer1.sourcevalues)") == \
        "-1.00000e-03, 0.00000e+00, 1.00000e-03"
    smu.write("myvlist = {-0.1, 0.1, -1, 1, -6, 6, -40, 40, 0, 0}")
    smu.write("SweepVListMeasureI(smua, myvlist, 500E-3, 10)")   # manual example (Rev F 9-364)
    assert smu.query("printbuffer(1, 10, smua.nvbuffer1.sourcevalues)") == (
        "-1.00000e-01, 1.00000e-01, -1.00000e+00, 1.00000e+00, -6.00000e+00, 6.00000e+00, "
        "-4.00000e+01, 4.00000e+01, 0.00000e+00, 0.00000e+00")
    assert _errors(smu) == []


def test_pulsevmeasurei(smu) -> None:  # noqa: ANN001
    """PulseVMeasureI(smu, bias, level, ton, toff, points): measure at level; period >= ton + toff."""
    smu.write("PulseVMeasureI(smua, 0, 1, 1e-3, 2e-3, 4)")
    assert smu.query("printbuffer(1, 4, smua.nvbuffer1.sourcevalues)") == ", ".join(["1.00000e+00"] * 4)
    ts = [float(x) for x in smu.query("printbuffer(1, 4, smua.nvbuffer1.timestamps)").split(", ")]
    assert all(b - a >= 3e-3 for a, b in itertools.pairwise(ts))
    assert smu.query("print(smua.source.levelv)") == "0.00000e+00"


# ------------------------------------------------------------------- reading buffers (manual 9-1x)
def test_makebuffer_indexing_and_timestamps(smu) -> None:  # noqa: ANN001
    """rb = smua.makebuffer(n); rb[i] is rb.readings[i]; rb.n; timestamps relative to basetimestamp."""
    smu.write("rb = smua.makebuffer(100)")
    smu.write("rb.collecttimestamps = 1")                     # off when a buffer is created (see below)
    smu.write("smua.source.output = smua.OUTPUT_ON")
    for _ in range(3):
        smu.write("smua.measure.i(rb)")
    assert smu.query("print(rb.n)") == "3.00000e+00"
    assert smu.query("print(rb[2] == rb.readings[2], rb[4])") == "true\tnil"
    assert smu.query("print(rb.timestamps[1])") == "0.00000e+00"
    assert float(smu.query("print(rb.basetimestamp)")) > 0.0
    assert _errors(smu) == []


def test_printbuffer_clamps_indices(smu) -> None:  # noqa: ANN001
    """printbuffer(): startIndex <= 1 uses 1; endIndex > n uses n (manual, printbuffer())."""
    smu.write("smua.nvbuffer1.clear()")
    smu.write("smua.measure.count = 2")
    smu.write("smua.measure.i(smua.nvbuffer1)")
    assert len(smu.query("printbuffer(0, 9, smua.nvbuffer1.readings)").split(", ")) == 2
    assert smu.query("printbuffer(-3, 2, {7, 8, 9})") == "7.00000e+00, 8.00000e+00"
    assert _errors(smu) == []


# ------------------------------------------------------------------ settings read back, constants
def test_sense_filter_rel_settling_display_beeper(smu) -> None:  # noqa: ANN001
    for line in ("smua.sense = smua.SENSE_REMOTE", "smua.measure.filter.count = 10",
                 "smua.measure.filter.type = smua.FILTER_REPEAT_AVG", "smua.measure.filter.enable = smua.ENABLE",
                 "smua.source.settling = smua.SETTLE_FAST_RANGE", "display.screen = display.SMUA_SMUB",
                 "display.smua.measure.func = display.MEASURE_DCAMPS", "beeper.enable = beeper.ON",
                 "beeper.beep(0.1, 2400)", "digio.writebit(3, 1)"):
        smu.write(line)
    assert smu.query("print(smua.sense, smua.measure.filter.count, smua.measure.filter.type)") == \
        "1.00000e+00\t1.00000e+01\t1.00000e+00"
    assert smu.query("print(smua.source.settling, display.screen, beeper.enable)") == \
        "1.00000e+00\t2.00000e+00\t1.00000e+00"
    assert smu.query("print(digio.readport())") == "4.00000e+00"
    assert smu.query("print(node[1].model)") == "2636B"
    assert _errors(smu) == []


def test_rel_offsets_readings(smu) -> None:  # noqa: ANN001
    smu.write("smua.source.func = smua.OUTPUT_DCVOLTS")
    smu.write("smua.source.levelv = 1")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    v = float(smu.query("print(smua.measure.v())"))
    smu.write("smua.measure.rel.levelv = 0.25")
    smu.write("smua.measure.rel.enablev = smua.ENABLE")
    assert float(smu.query("print(smua.measure.v())")) == pytest.approx(v - 0.25, abs=1e-5)


def test_unknown_constant_is_not_a_silent_setting(smu) -> None:  # noqa: ANN001
    smu.write("display.screen = display.SMUA_SMUB")
    smu.write("display.screen = display.SMUX")   # nil: fails, the setting is kept
    smu.write("beeper.enable = beeper.ONN")
    errs = _errors(smu)
    assert [e[0] for e in errs] == ["-2.86000e+02", "-2.86000e+02"]
    assert "display.screen" in errs[0][1]
    assert smu.query("print(display.screen)") == "2.00000e+00"


def test_print_of_tables_and_functions_is_tostring(smu) -> None:  # noqa: ANN001
    """print() of a non-number/string prints what tostring() gives (manual, print())."""
    assert smu.query("print(smua)").startswith("table: 0x")
    assert smu.query("print(print)").startswith("function: 0x")
    assert smu.query("print(SweepVLinMeasureI)").startswith("function: 0x")


# --------------------------------------------------------------------------- status model (TSP side)
def test_status_registers_and_common_commands(smu) -> None:  # noqa: ANN001
    smu.write("status.request_enable = status.MAV")
    assert smu.query("*SRE?") == "16"
    smu.write("*SRE 4")
    assert smu.query("print(status.request_enable)") == "4.00000e+00"
    smu.write("status.standard.enable = status.standard.CME")
    assert smu.query("*ESE?") == "32"
    smu.write("*ESE 0")
    assert smu.query("print(status.standard.enable)") == "0.00000e+00"
    assert smu.query("*TST?") == "0"
    assert smu.query("print(status.measurement.instrument.smua.condition)") == "0.00000e+00"


def test_current_limit_sets_measurement_condition_bit1(rm, smu) -> None:  # noqa: ANN001
    """QCoDeS: print(smua.measure.i(), status.measurement.instrument.smua.condition); bit1 = I limit."""
    bench = bench_of(rm)
    inst = bench.instruments[SMU]
    ch = inst.channels["a"]
    smu.write("smua.source.limiti = 1e-9")
    smu.write("smua.source.levelv = 1")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    ch.state.in_compliance = True  # side channel: hold the channel in its current limit
    ch.compliance = lambda: True
    value, cond = smu.query("print(smua.measure.i(), status.measurement.instrument.smua.condition)").split("\t")
    assert int(float(cond)) & 2 == 2 and int(float(cond)) & 1 == 0


# ------------------------------------------------------------------------------ Lua 5.0 quoting
def test_lua50_quoting_when_enabled(rm, smu) -> None:  # noqa: ANN001
    """``-285,TSP Syntax error at line 1: unexpected symbol near `*'`` and ``attempt to index field
    `channel' (a nil value)`` in hardware-tested drivers  [C]."""
    bench_of(rm).instruments[SMU].lua50_quoting = True
    smu.write("x = *")
    smu.write("smua.foo.bar = 1")
    assert _errors(smu) == [["-2.85000e+02", "TSP Syntax error at line 1: unexpected symbol near `*'"],
                            ["-2.86000e+02", "TSP Runtime error at line 1: attempt to index field `foo' (a nil value)"]]


# --------------------------------------------------------------------------- stock pymeasure driver
@pytest.mark.filterwarnings("ignore:It is not known whether this device support SCPI:FutureWarning")
def test_pymeasure_keithley2600_features(rm) -> None:  # noqa: ANN001
    k26 = pytest.importorskip("pymeasure.instruments.keithley.keithley2600")
    from pymeasure.adapters import VISAAdapter

    adapter = VISAAdapter(SMU, visa_library=rm.visalib, read_termination="\n", write_termination="\n")
    k = k26.Keithley2600(adapter)
    k.ChA.wires_mode = "4"                       # smua.sense=1
    assert k.ChA.wires_mode == "4"
    k.ChA.source_output = "ON"
    assert k.ChA.source_output == "ON"
    assert k.next_error == (0, "Queue Is Empty")


# ------------------------------------------------------------------------------------- bit library
def test_bit_library(smu) -> None:  # noqa: ANN001
    """2600B Reference Manual, bit.bitand/bitor/bitxor/set/clear/toggle/test/get/getfield/setfield: integer
    values, bit indices from 1 at the least significant bit [M]; printed with asciiprecision 6."""
    reply = smu.query("print(bit.bitand(12, 10), bit.bitor(12, 10), bit.bitxor(12, 10), bit.test(4, 3), "
                      "bit.test(4, 2), bit.set(0, 1), bit.clear(15, 4), bit.toggle(5, 1), bit.get(0xF0, 5, 4), "
                      "bit.getfield(0xF0, 5, 4), bit.setfield(0, 2, 3, 7))")
    assert reply.split("\t") == ["8.00000e+00", "1.40000e+01", "6.00000e+00", "true", "false", "1.00000e+00",
                                 "7.00000e+00", "4.00000e+00", "2.40000e+02", "1.50000e+01", "1.40000e+01"]
    smu.write("bit.set(1, 0)")                                      # index 0 does not exist
    assert [e[0] for e in _errors(smu)] == ["1.10200e+03"]


@pytest.mark.filterwarnings("ignore:It is not known whether this device support SCPI:FutureWarning")
def test_pymeasure_keithley2600_binary_buffer_read_and_srq_wait(rm) -> None:  # noqa: ANN001
    """The stock pymeasure Keithley2600, unchanged: 4-wire sense, a REAL32 buffer read through its
    ``binary_values`` (pyvisa's IEEE block parser reads the manual's ``#0`` indefinite-length block), and an SRQ
    wait through its adapter's ``wait_for_srq`` (pyvisa's event API) after ``*ESE 1; *SRE 32; *OPC``."""
    k26 = pytest.importorskip("pymeasure.instruments.keithley.keithley2600")
    from pymeasure.adapters import VISAAdapter

    adapter = VISAAdapter(SMU, visa_library=rm.visalib, read_termination="\n", write_termination="\n")
    k = k26.Keithley2600(adapter)
    k.ChA.wires_mode = "4"
    assert k.ChA.wires_mode == "4"
    k.write("smua.nvbuffer1.clear() smua.source.levelv = 0.5 smua.source.output = smua.OUTPUT_ON "
            "smua.measure.count = 3 smua.measure.v(smua.nvbuffer1)")
    k.write("format.data = format.REAL32 format.byteorder = format.LITTLEENDIAN")
    values = k.binary_values("printbuffer(1, 3, smua.nvbuffer1.readings)", header_bytes=2, termination_bytes=-1,
                             dtype="<f4")                 # pymeasure's reader: '#0' header, 3 floats, LF
    assert list(values) == [0.5, 0.5, 0.5]                 # the voltage sourced, read back in REAL32
    k.write("format.data = format.ASCII")
    k.write("*CLS")
    k.write("*ESE 1")
    k.write("*SRE 32")
    k.write("*OPC")
    k.adapter.wait_for_srq(timeout=1)                      # returns once a serial poll shows RQS (and clears it)
    assert k.adapter.connection.read_stb() == 32           # ESB still set; RQS cleared by that poll (IEEE 488.2)
    assert k.ask("*ESR?").strip() == "1"                   # OPC


# ------------------------------------------------------------------------------ Lua 5.0 operators
@pytest.mark.parametrize("chunk, line, op", [("t = {1, 2} print(#t)", 1, "#"), ("print(7 % 3)", 1, "%")])
def test_lua51_only_operators_are_syntax_errors(smu, chunk: str, line: int, op: str) -> None:  # noqa: ANN001
    """TSP is Lua 5.0, which has no length (#) or modulo (%) operator (Lua 5.0 reference manual §2.5): the
    chunk is refused with -285 and nothing runs; the same characters inside strings and comments are fine."""
    smu.write("x = 0")
    smu.write(chunk.replace("print(", "x = 1 print("))
    assert _errors(smu) == [["-2.85000e+02", f"TSP Syntax error at line {line}: unexpected symbol near `{op}'"]]
    assert smu.query("print(x)") == "0.00000e+00"                  # nothing of the chunk ran
    assert smu.query("print('100% #1') -- # %") == "100% #1"


# ------------------------------------------------------------------------------------- script.* (scriptVar)
def _lines(smu, command: str, n: int) -> list[str]:  # noqa: ANN001
    smu.write(command)
    return [smu.read() for _ in range(n)]


def test_script_new_named_and_run(smu) -> None:  # noqa: ANN001
    """script.new(code, name) example: the script is in script.user.scripts under its name and runs with
    myTest8() or myTest8.run() (2600B Reference Manual, script.new(), scriptVar.run())."""
    smu.write("myTest8 = script.new(\"display.clear() display.settext('Hello from myTest8') n8 = (n8 or 0) + 1\", "
              "\"myTest8\")")
    smu.write("myTest8()")
    smu.write("myTest8.run()")
    assert smu.query("print(n8, myTest8.name, script.user.scripts.myTest8 == myTest8)") == "2.00000e+00\tmyTest8\ttrue"
    assert smu.query("print(myTest8.autorun)") == "no"                    # scriptVar.autorun: no for script.new()
    assert _errors(smu) == []


def test_script_newautorun_manual_example(smu) -> None:  # noqa: ANN001
    """script.newautorun() example: runs at once; autorun yes; the name as given (output in the manual)."""
    smu.write("NewAuto = script.newautorun(\"print('Hello from new auto run command')\", 'NewAuto')")
    assert smu.read() == "Hello from new auto run command"
    assert smu.query("print(NewAuto.autorun)") == "yes"
    assert smu.query("print(NewAuto.name)") == "NewAuto"


def test_script_source_and_name_manual_examples(smu) -> None:  # noqa: ANN001
    """scriptVar.source example (output in the manual); scriptVar.name example: an unnamed script (name "")
    named test7 and saved; only nil may be written to .source."""
    smu.write("test7 = script.new(\"display.clear() display.settext('Hello from my test')\", \"\")")
    assert smu.query("print(test7.source)") == "display.clear() display.settext('Hello from my test')"
    smu.write("test7()")
    assert smu.query("print(test7.name)") == ""
    assert smu.query("print(script.user.scripts.test7)") == "nil"         # unnamed: not in the table
    smu.write('test7.name = "test7"')
    assert smu.query("print(test7.name, script.user.scripts.test7 == test7)") == "test7\ttrue"
    smu.write("test7.save()")
    assert _lines(smu, "for name in script.user.catalog() do print(name) end print('end')", 2) == ["test7", "end"]
    smu.write("test7.source = nil")                                          # frees the source [M]
    assert smu.query("print(test7.source)") == "nil"
    smu.write("test7.source = 'x = 1'")                                      # only nil [M]; a run-time error [U]
    assert [e[0] for e in _errors(smu)] == ["-2.86000e+02"]


def test_new_script_with_an_existing_name(smu) -> None:  # noqa: ANN001
    """"Global variables and the script.user.scripts table" (beepTwoSec example): the old script becomes
    unnamed (name ""), the global of the old name still references it, the new script is reached through
    the new variable and script.user.scripts."""
    for line in ("loadscript beepTwoSec", "old = 1", "endscript",
                 'beepTwoSec1200 = script.new("new = 1", "beepTwoSec")'):
        smu.write(line)
    assert smu.query("print(beepTwoSec.name == '', beepTwoSec1200.name)") == "true\tbeepTwoSec"
    assert smu.query("print(script.user.scripts.beepTwoSec == beepTwoSec1200)") == "true"
    smu.write("beepTwoSec()")
    smu.write("script.user.scripts.beepTwoSec()")
    assert smu.query("print(old, new)") == "1.00000e+00\t1.00000e+00"


def test_loadscript_makes_a_named_script(smu) -> None:  # noqa: ANN001
    """Named scripts: loadscript name … endscript creates a global of that name referencing the script, run
    with name() or name.run(); its source is the lines joined by new-line characters without loadscript/
    endscript (scriptVar.source); autorun no for loadscript, yes for loadandrunscript (scriptVar.autorun)."""
    for line in ("loadscript test3", "k = (k or 0) + 1", "print('ran', k)", "endscript"):
        smu.write(line)
    assert smu.query("test3()") == "ran\t1.00000e+00"
    assert smu.query("test3.run()") == "ran\t2.00000e+00"
    assert smu.query("print(test3.name, test3.autorun, script.user.scripts.test3 == test3)") == "test3\tno\ttrue"
    assert _lines(smu, "print(test3.source)", 2) == ["k = (k or 0) + 1", "print('ran', k)"]
    for line in ("loadandrunscript test4", "print('test4 ran')", "endscript"):
        smu.write(line)
    assert smu.read() == "test4 ran"
    assert smu.query("print(test4.autorun)") == "yes"
    assert _errors(smu) == []


def test_anonymous_script_run_and_script_run(smu) -> None:  # noqa: ANN001
    """Anonymous scripts: loadscript without a name replaces script.anonymous; run() and script.run() run it
    (script.run(), script.anonymous); print(script.anonymous.source) gives its source."""
    for line in ("loadscript", "a = (a or 0) + 1", "endscript", "run()", "script.run()"):
        smu.write(line)
    assert smu.query("print(a, script.anonymous.source)") == "2.00000e+00\ta = (a or 0) + 1"
    for line in ("loadscript", "b = 7", "endscript", "run()"):
        smu.write(line)
    assert smu.query("print(b, script.anonymous.source)") == "7.00000e+00\tb = 7"
    assert _errors(smu) == []


def test_script_list(smu) -> None:  # noqa: ANN001
    """scriptVar.list(): one response message per line, with the loadscript and endscript lines."""
    smu.write('test9 = script.new("x = 1\\ny = 2", "test9")')
    assert _lines(smu, "test9.list()", 4) == ["loadscript test9", "x = 1", "y = 2", "endscript"]


def test_unknown_script_names_fail_as_unknown_names(smu) -> None:  # noqa: ANN001
    """A script that does not exist is an unknown name: calling or indexing it fails as Lua does (-286, Lua 5.0
    quoting as on the instrument [C])."""
    for line in ("nosuch()", "nosuch.run()", "script.user.scripts.nosuch()"):
        smu.write(line)
    assert [e[1] for e in _errors(smu)] == [
        "TSP Runtime error at line 1: attempt to call global `nosuch' (a nil value)",
        "TSP Runtime error at line 1: attempt to index global `nosuch' (a nil value)",
        "TSP Runtime error at line 1: attempt to call field `nosuch' (a nil value)"]


def test_saved_scripts_survive_power_on_and_autorun(rm, smu) -> None:  # noqa: ANN001
    """scriptVar.save() keeps a script in nonvolatile memory: at power-on it is in the runtime environment again
    and scripts with autorun "yes" run (scriptVar.autorun, "test5.autorun = 'yes' test5.save()" example);
    script.delete() removes it from nonvolatile memory."""
    for line in ("test5 = script.new('booted = (booted or 0) + 1', 'test5')", 'test5.autorun = "yes"', "test5.save()",
                 "keep = script.new('kept = 1', 'keep')", "keep.save()", "gone = script.new('', 'gone')",
                 "gone.save()", 'script.delete("gone")'):
        smu.write(line)
    bench_of(rm).instruments[SMU].power_on()                       # side channel: power cycle
    assert smu.query("print(booted, kept, test5.name, keep.autorun, gone)") == "1.00000e+00\tnil\ttest5\tno\tnil"
    assert _lines(smu, "for name in script.user.catalog() do print(name) end print('end')", 3) == \
        ["test5", "keep", "end"]
    assert _errors(smu) == []


# ------------------------------------------------------------------------------ smuX.measure.filter
def _conversions(rm, values: list[float]) -> None:  # noqa: ANN001
    """Side channel: smua's next current conversions (each one integration) are ``values``."""
    it = iter(values)
    bench_of(rm).instruments[SMU].channels["a"]._convert_current = lambda: next(it)


def test_filter_constants_and_defaults(smu) -> None:  # noqa: ANN001
    """smuX.measure.filter.type: 0 FILTER_MOVING_AVG, 1 FILTER_REPEAT_AVG, 2 FILTER_MEDIAN, default 1;
    .enable: FILTER_OFF/FILTER_ON, default 0; .count default 1 (2600B Reference Manual, "Filter commands")."""
    assert smu.query("print(smua.FILTER_MOVING_AVG, smua.FILTER_REPEAT_AVG, smua.FILTER_MEDIAN, smua.FILTER_OFF, "
                     "smua.FILTER_ON)") == "0.00000e+00\t1.00000e+00\t2.00000e+00\t0.00000e+00\t1.00000e+00"
    smu.write("smua.measure.filter.count = 7 smua.measure.filter.enable = smua.FILTER_ON")
    smu.write("smua.reset()")
    assert smu.query("print(smua.measure.filter.count, smua.measure.filter.enable, smua.measure.filter.type)") == \
        "1.00000e+00\t0.00000e+00\t1.00000e+00"


def test_repeat_average_filter(rm, smu) -> None:  # noqa: ANN001
    """Repeating filter: "the stack (filter count) is filled, and the conversions are averaged to yield a
    reading. The stack is then cleared, and the process starts over" (smuX.measure.filter.type)."""
    _conversions(rm, [float(k) for k in range(1, 21)])
    smu.write("smua.measure.filter.count = 10 smua.measure.filter.type = smua.FILTER_REPEAT_AVG "
              "smua.measure.filter.enable = smua.FILTER_ON")
    assert smu.query("print(smua.measure.i())") == "5.50000e+00"
    assert smu.query("print(smua.measure.i())") == "1.55000e+01"


def test_repeat_average_takes_count_integrations(rm, smu) -> None:  # noqa: ANN001
    """Each conversion is one integration: a repeat-average reading of count 10 at 1 PLC (50 Hz) takes at least
    10 x 20 ms; unfiltered, one (the filter "type and count affect the overall reading speed", "Filters")."""
    clock = bench_of(rm).clock
    smu.write("smua.source.output = smua.OUTPUT_ON")
    t0 = clock.now
    smu.query("print(smua.measure.i())")
    single = clock.now - t0
    smu.write("smua.measure.filter.count = 10 smua.measure.filter.enable = smua.FILTER_ON")
    t1 = clock.now
    smu.query("print(smua.measure.i())")
    assert 0.02 <= single < 0.2 <= clock.now - t1


def test_moving_average_filter(rm, smu) -> None:  # noqa: ANN001
    """Moving filter (the manual's example: count 10, FILTER_MOVING_AVG, FILTER_ON): first-in first-out stack;
    "When a moving average filter ... is first enabled, the stack is empty. The first reading conversion is placed
    in the stack and is then copied to the other stack locations ... the first filtered reading is the same as the
    first reading conversion" ("Filters"); one new conversion per reading."""
    _conversions(rm, [1.0, 2.0, 3.0])
    smu.write("smua.measure.filter.count = 10")
    smu.write("smua.measure.filter.type = smua.FILTER_MOVING_AVG")
    smu.write("smua.measure.filter.enable = smua.FILTER_ON")
    assert [smu.query("print(smua.measure.i())") for _ in range(3)] == ["1.00000e+00", "1.10000e+00", "1.30000e+00"]


def test_median_filter_even_count(rm, smu) -> None:  # noqa: ANN001
    """Median filter: the moving stack's middle-most reading; "If the filter count is an even number, the reading
    returned is the average of the two middle readings" (smuX.measure.filter.type example value 2)."""
    _conversions(rm, [5.0, 1.0, 3.0])
    smu.write("smua.measure.filter.count = 4 smua.measure.filter.type = 2 smua.measure.filter.enable = 1")
    assert [smu.query("print(smua.measure.i())") for _ in range(3)] == ["5.00000e+00", "5.00000e+00", "4.00000e+00"]


# ------------------------------------------------------------- reading buffers: collected components
def test_collect_attributes_default_off(smu) -> None:  # noqa: ANN001
    """bufferVar.collectsourcevalues / .collecttimestamps: default 0 (disabled) for the dedicated buffers,
    and "When the buffer is created, this attribute is initialized to off" ("Reading buffers", buffer
    storage control attributes)."""
    smu.write("rb = smua.makebuffer(10)")
    assert smu.query("print(smua.nvbuffer1.collectsourcevalues, smua.nvbuffer1.collecttimestamps, "
                     "rb.collectsourcevalues, rb.collecttimestamps)") == "\t".join(["0.00000e+00"] * 4)


def test_components_not_collected(smu) -> None:  # noqa: ANN001
    """With collection off, readings are stored but no source values or timestamps ("If it is set to 0, you
    cannot access any time information from a reading buffer", bufferVar.timestamps): they read as nil and
    print as nothing [U: the manual gives no reply]; with collection on they are there."""
    smu.write("smua.source.levelv = 0.5 smua.source.output = smua.OUTPUT_ON")
    smu.write("smua.nvbuffer1.clear() smua.measure.v(smua.nvbuffer1)")
    assert smu.query("print(smua.nvbuffer1.n, smua.nvbuffer1.sourcevalues[1], smua.nvbuffer1.timestamps[1])") == \
        "1.00000e+00\tnil\tnil"
    assert smu.query("printbuffer(1, 1, smua.nvbuffer1.sourcevalues)") == ""
    smu.write("smua.nvbuffer1.clear() smua.nvbuffer1.collectsourcevalues = 1 smua.nvbuffer1.collecttimestamps = 1")
    smu.write("smua.measure.v(smua.nvbuffer1)")
    assert smu.query("print(smua.nvbuffer1.sourcevalues[1], smua.nvbuffer1.timestamps[1])") == \
        "5.00000e-01\t0.00000e+00"
    assert _errors(smu) == []


# ------------------------------------------------------------------------------------------- TSP-Link
def _tsplink_bench(tmp_path, smu_node: int | None = 1, matrix_node: int | None = 2) -> str:  # noqa: ANN001
    """The default bench with TSP-Link node numbers (bench file key ``tsplink_node``)."""
    from rramlab.simulator.bench_config import default_bench_text

    text = default_bench_text()
    if smu_node is not None:
        text = text.replace('firmware = "4.0.5"', f'firmware = "4.0.5"\ntsplink_node = {smu_node}')
    if matrix_node is not None:
        text = text.replace('firmware = "1.5.2"', f'firmware = "1.5.2"\ntsplink_node = {matrix_node}')
    path = tmp_path / "tsplink.toml"
    path.write_text(text)
    return f"{path}?tag=tsplink{next(_tags)}@rramlab"


@pytest.fixture
def link(tmp_path) -> Iterator[tuple]:  # noqa: ANN001
    """(rm, smu, matrix) on a bench where the 2636B is TSP-Link node 1 and the 707B node 2."""
    manager = pyvisa.ResourceManager(_tsplink_bench(tmp_path))
    smu = manager.open_resource(SMU, read_termination="\n", write_termination="\n")
    mx = manager.open_resource("GPIB0::16::INSTR", read_termination="\n", write_termination="\n")
    yield manager, smu, mx
    manager.close()


def test_tsplink_reset_populates_the_node_table(link) -> None:  # noqa: ANN001
    """tsplink.state: offline at power-on, online after a successful tsplink.reset(), which returns the nodes
    found (this node counted) and "must be called at least once before any remote nodes can be accessed";
    tsplink.node the node number; tsplink.master the master's number; node[N].model (TSP-Link system)."""
    _, smu, mx = link
    assert smu.query("print(tsplink.state, tsplink.node, node[2])") == "offline\t1.00000e+00\tnil"
    assert mx.query("print(tsplink.state, tsplink.node, node[2] == localnode)") == "offline\t2.000000000e+00\ttrue"
    assert smu.query('nodesFound = tsplink.reset(2) print("Nodes found = " .. nodesFound)') == "Nodes found = 2"
    assert smu.query("print(tsplink.state, tsplink.master, node[1] == localnode)") == "online\t1.00000e+00\ttrue"
    assert smu.query("print(node[2].model, node[2].serialno)") == "707B\t4411350"
    assert _errors(smu) == []


def test_script_on_the_2636b_drives_the_707b(link) -> None:  # noqa: ANN001
    """A script on the master closes crosspoints of node 2 with node[2].channel.* (channel.close(),
    exclusiveclose(), getclose() examples of the 707B Reference Manual); the 707B's own session sees them."""
    _, smu, mx = link
    for line in ("loadscript route", "tsplink.reset()", 'node[2].channel.close("1A01")',
                 'print(node[2].channel.getclose("1A01:1H12"))', 'node[2].channel.close("1C03")',
                 'print(node[2].channel.getclose("1A01:1H12"))', "endscript", "route()"):
        smu.write(line)
    assert [smu.read(), smu.read()] == ["1A01", "1A01;1C03"]
    assert mx.query('print(channel.getclose("allslots"))') == "1A01;1C03"
    smu.write('node[2].channel.exclusiveclose("1B03:1B05")')
    assert mx.query('print(channel.getclose("allslots"))') == "1B03;1B04;1B05"
    assert smu.query('print(node[2].channel.getstate("1B03,1B06"))') == "1,0"
    smu.write('node[2].channel.open("allslots")')
    assert mx.query('print(channel.getclose("allslots"))') == "nil"
    assert _errors(smu) == []


def test_remote_errors_reach_the_master_with_their_node(link) -> None:  # noqa: ANN001
    """errorqueue.next(): "In an expanded system ... errorNode stores the node number where the error originated"
    [M]; an invalid channel list on node 2 is queued at the master with errorNode 2 [U: which queue]. A name
    node 2 does not have fails as an unknown name."""
    _, smu, mx = link
    smu.write("tsplink.reset()")
    smu.write('node[2].channel.close("9Z99")')
    smu.write('node[2].channel.nosuch("1A01")')
    code, message, _, node = smu.query("print(errorqueue.next())").split("\t")
    assert (code, message, node) == ("1.11500e+03", "Parameter error, invalid channel list", "2.00000e+00")
    assert smu.query("print(errorqueue.next())").split("\t")[:2] == [
        "-2.86000e+02", "TSP Runtime error at line 1: attempt to call field `nosuch' (a nil value)"]
    assert mx.query("print(errorqueue.count)") == "0.000000000e+00"
    mx.write("channel.close('1A13')")                                  # the 707B's own error: its node number
    assert mx.query("print(errorqueue.next())").split("\t")[3] == "2.000000000e+00"


def test_remote_commands_run_on_the_remote_clock_and_state(link) -> None:  # noqa: ANN001
    """node[2].channel.setdelay() then close(): the close takes the 707B's settle time and user delay (channel.
    setdelay(), 707B manual) on the bench clock; node[N].execute/getglobal/setglobal examples."""
    manager, smu, mx = link
    clock = bench_of(manager).clock
    smu.write("tsplink.reset()")
    smu.write('node[2].channel.setdelay("1A01", 0.5)')
    assert mx.query('print(channel.getdelay("1A01"))') == "0.5"
    t0 = clock.now
    smu.write('node[2].channel.close("1A01")')
    assert clock.now - t0 >= 0.5
    smu.write('node[2].execute("x = 5")')
    smu.write('node[2].setglobal("y", 6)')
    assert smu.query('print(node[2].getglobal("x"), node[2].getglobal("y"), x)') == "5.00000e+00\t6.00000e+00\tnil"
    assert mx.query("print(x, y)") == "5.000000000e+00\t6.000000000e+00"


def test_tsplink_reset_failures(link) -> None:  # noqa: ANN001
    """tsplink.reset(expectedNodes): "If nodesFound is less than expectedNodes, an error is generated" — 1219
    "TSP-Link found fewer nodes than expected" in the manual's example; an expected count of 1 never errs; without
    expectedNodes an error when no other node is found [M] (code 1219 there too [U]). Without tsplink_node in the
    bench file the 2636B has no other node: node[1] = localnode only, offline."""
    _, smu, _ = link
    assert smu.query("print(tsplink.reset(3), tsplink.state, node[2])") == "2.00000e+00\toffline\tnil"
    assert _errors(smu) == [["1.21900e+03", "TSP-Link found fewer nodes than expected"]]
    manager = pyvisa.ResourceManager(f"?tag=alone{next(_tags)}@rramlab")       # the default bench
    alone = manager.open_resource(SMU, read_termination="\n", write_termination="\n")
    assert alone.query("print(tsplink.reset(1), tsplink.state)") == "1.00000e+00\tonline"
    assert _errors(alone) == []
    assert alone.query("print(tsplink.reset(), tsplink.state, node[1] == localnode, node[2])") == \
        "1.00000e+00\toffline\ttrue\tnil"
    assert [e[0] for e in _errors(alone)] == ["1.21900e+03"]
    manager.close()


def test_tsplink_node_in_the_bench_file_is_checked(tmp_path) -> None:  # noqa: ANN001
    from rramlab.simulator.bench_config import BenchConfigError, default_bench_text, load_bench_config

    spec = _tsplink_bench(tmp_path, 2, 2).split("?")[0]
    with pytest.raises(BenchConfigError, match="duplicate tsplink_node"):
        load_bench_config(spec)
    bad = tmp_path / "b.toml"
    bad.write_text(default_bench_text().replace('firmware = "4.0.5"', 'firmware = "4.0.5"\ntsplink_node = 65'))
    with pytest.raises(BenchConfigError, match="tsplink_node: 65 outside 1..64"):
        load_bench_config(str(bad))


def test_global_table_metatable_is_protected(smu) -> None:  # noqa: ANN001
    """The session keeps working when a chunk tries to give the global table a metatable: refused as Lua refuses a
    protected metatable (-286) [U: the instrument's behaviour is not documented]; without this, lupa's unprotected
    look-up of `debug` would run a failing __index and abort the process."""
    smu.write('setmetatable(_G, {__index = function() error("y") end})')
    smu.write("x = 1")
    assert smu.query("print(x)") == "1.00000e+00"
    assert _errors(smu) == [["-2.86000e+02", "TSP Runtime error at line 1: cannot change a protected metatable"]]
