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
