"""707B conformance: the manual's examples through raw pyvisa, asserting the manual's reply bytes.

Models 707B and 708B Switching Matrix Reference Manual, 707B-901-01 Rev. A (August 2010),
section 7 "Command reference" (page numbers of Rev. A). Where the manual gives no reply bytes the
test pins the emulator's documented choice (tagged [U] in ``simulator/tsp/keithley707b.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pyvisa
from conftest import open_rm
from tsp_session import MATRIX


@pytest.fixture
def mx() -> Iterator[pyvisa.resources.MessageBasedResource]:
    rm = open_rm()
    inst = rm.open_resource(MATRIX, read_termination="\n", write_termination="\n")
    inst.write("errorqueue.clear()")
    yield inst
    rm.close()


def _error(mx) -> str:  # noqa: ANN001
    return mx.query("print(errorqueue.next())")


def test_pattern_setimage_getimage_manual_example(mx) -> None:  # noqa: ANN001
    # §7 channel.pattern.getimage() / setimage(), p. 7-38/7-39, example with a 7174 card in slot 1
    mx.write('channel.pattern.setimage("1A01:1A05", "myPattern")')
    mx.write('channel.pattern.setimage("1B01,1B03,1B05", "myRoute")')
    mx.write('myImage = channel.pattern.getimage("myPattern")')
    mx.write("print(myImage)")
    assert mx.read_raw() == b"1A01,1A02,1A03,1A04,1A05\n"
    assert mx.query('print(channel.pattern.getimage("myRoute"))') == "1B01,1B03,1B05"
    assert mx.query('print(channel.pattern.getimage("myRoute, myPattern"))') == \
        "1B01,1B03,1B05;1A01,1A02,1A03,1A04,1A05"
    assert mx.query("print(errorqueue.count)") == "0.000000000e+00"


def test_pattern_overwrite_empty_and_nested(mx) -> None:  # noqa: ANN001
    # p. 7-39 Details: an existing name is overwritten; an empty list is allowed; patterns may be
    # used in the list; nothing is created on an error
    mx.write('channel.pattern.setimage("1A01", "p")')
    mx.write('channel.pattern.setimage("1C02,1A01:1A02", "p")')
    assert mx.query('print(channel.pattern.getimage("p"))') == "1A01,1A02,1C02"
    mx.write('channel.pattern.setimage("", "empty")')
    assert mx.query('print(channel.pattern.getimage("empty"))') == ""
    mx.write('channel.pattern.setimage("p,1H12", "q")')
    assert mx.query('print(channel.pattern.getimage("q"))') == "1A01,1A02,1C02,1H12"
    mx.write('channel.pattern.setimage("1A01,9Z99", "bad")')
    assert _error(mx).startswith("1.115000000e+03\tParameter error, invalid channel list")
    assert mx.query('print(channel.pattern.getimage("bad"))') == "nil"


def test_pattern_close_and_getclose(mx) -> None:  # noqa: ANN001
    # channel.close() / open() take "channels and channel patterns" (p. 7-25, 7-35)
    mx.write('channel.pattern.setimage("1B02,1B04", "path")')
    mx.write('channel.close("path")')
    assert mx.query('print(channel.getclose("allslots"))') == "1B02;1B04"
    mx.write('channel.open("path")')
    assert mx.query('print(channel.getclose("allslots"))') == "nil"


def test_pattern_delete_and_catalog(mx) -> None:  # noqa: ANN001
    # channel.pattern.delete() p. 7-38: an unknown name is an error; catalog() p. 7-37 iterates names
    mx.write('channel.pattern.setimage("1A01", "Channels")')
    mx.write('channel.pattern.setimage("1A02", "Alpha")')
    mx.write('for name in channel.pattern.catalog() do print(name .. " = " .. channel.pattern.getimage(name)) end')
    assert mx.read() == "Alpha = 1A02"
    assert mx.read() == "Channels = 1A01"
    mx.write('channel.pattern.delete("Channels")')
    assert mx.query('print(channel.pattern.getimage("Channels"))') == "nil"
    mx.write('channel.pattern.delete("Channels")')
    assert _error(mx).startswith("1.115000000e+03\t")


def test_getstate_manual_example(mx) -> None:  # noqa: ANN001
    # channel.getstate() p. 7-34: comma-delimited state per channel, IND_CLOSED = 1, patterns allowed
    mx.write('channel.close("1A01,1C03")')
    assert mx.query('print(channel.getstate("1A01:1A03"))') == "1,0,0"
    mx.write('channel.pattern.setimage("1A01,1B02,1C03", "Path")')  # manual uses slots 2, 3
    assert mx.query('print(channel.getstate("Path"))') == "1,0,1"
    assert mx.query('print(channel.getstate("1C03"))') == "1"
    # the manual's example unmasks the state with the TSP bit library
    mx.write('if bit.bitand(tonumber(channel.getstate("1C03")), channel.IND_CLOSED) > 0 then print("CLOSED") '
             'else print("OPENED") end')
    assert mx.read() == "CLOSED"
    assert mx.query('print(channel.getstate("1A01,1A02", 0))') == "0,0"
    assert mx.query("print(channel.IND_CLOSED)") == "1.000000000e+00"


def test_gettype(mx) -> None:  # noqa: ANN001
    # channel.gettype() p. 7-35: TYPE_SWITCH (1) is the only type
    assert mx.query('print(channel.gettype("1A01"))') == "1"
    assert mx.query('print(channel.gettype("1A01,1B01"))') == "1,1"
    assert mx.query("print(channel.TYPE_SWITCH)") == "1.000000000e+00"


def test_setdelay_getdelay_and_close_timing(mx) -> None:  # noqa: ANN001
    # channel.setdelay() p. 7-44 example 1 and 2; channel.getdelay() p. 7-29 (list order, default 0)
    mx.write('channel.setdelay("1A03, 1A05", 50e-6)')
    assert mx.query('print(channel.getdelay("1A05,1A01,1A03"))') == "5e-05,0,5e-05"
    mx.write('channel.setdelay("slot1", 0)')
    assert mx.query('print(channel.getdelay("1A03"))') == "0"
    # a pattern in the list is an error and the reply is nil (p. 7-29)
    mx.write('channel.pattern.setimage("1A01", "pp")')
    assert mx.query('print(channel.getdelay("pp"))') == "nil"
    assert _error(mx).startswith("1.115000000e+03\t")
    # close: settle time, then the user delay (p. 7-29 sequence); open: no user delay
    mx.write('channel.setdelay("1A01", 0.5)')
    clock = mx.visalib.bench.clock
    t0 = clock.now
    mx.write('channel.close("1A01")')
    closed_after = clock.now - t0
    assert closed_after >= 0.5
    t1 = clock.now
    mx.write('channel.open("1A01")')
    assert clock.now - t1 < 0.5


def test_reset_clears_patterns_and_delays(mx) -> None:  # noqa: ANN001
    # "Affected by: System reset, Channel reset" (p. 7-29, 7-38, 7-44)
    mx.write('channel.pattern.setimage("1A01", "p1")')
    mx.write('channel.setdelay("1A01", 0.25)')
    mx.write("reset()")
    assert mx.query('print(channel.pattern.getimage("p1"))') == "nil"
    assert mx.query('print(channel.getdelay("1A01"))') == "0"


def test_beeper(mx) -> None:  # noqa: ANN001
    # beeper.enable / beeper.beep(): default ON (1); beep(duration, frequency)
    assert mx.query("print(beeper.enable)") == "1.000000000e+00"
    mx.write("beeper.enable = beeper.OFF")
    assert mx.query("print(beeper.enable)") == "0.000000000e+00"
    mx.write("beeper.enable = beeper.ON")
    mx.write("beeper.beep(2, 2400)")
    assert mx.query("print(errorqueue.count)") == "0.000000000e+00"
    kinds = [e.kind for e in mx.visalib.bench.events.events]
    assert "beep" in kinds


def test_empty_error_queue_reply(mx) -> None:  # noqa: ANN001
    # errorqueue.next() p. 7-86: empty → code 0, "Queue Is Empty", severity 0; node 0 [C]
    assert mx.query("print(errorqueue.next())") == \
        "0.000000000e+00\tQueue Is Empty\t0.000000000e+00\t0.000000000e+00"
    mx.write("channel.foo()")
    code, message, severity, node = mx.query("print(errorqueue.next())").split("\t")
    assert float(code) == -286 and float(severity) == 20 and float(node) == 1


def test_unknown_names_fail_as_runtime_errors(mx) -> None:  # noqa: ANN001
    for call in ('channel.pattern.snapshot("x")', 'channel.nosuch("1A01")', "beeper.play()"):
        mx.write(call)
        assert _error(mx).startswith("-2.860000000e+02\tTSP Runtime error at line 1: attempt to call field")
    assert mx.query("print(channel.pattern.nosuch)") == "nil"


# ---------------------------------------------------------------------- scripts and TSP-Link (shared engine)
def test_script_new_and_source(mx) -> None:  # noqa: ANN001
    # script.new() (§7, same as the 2600B): the named script is in script.user.scripts and runs as name();
    # scriptVar.source is its code; script.anonymous.* is the anonymous script
    mx.write('myTest8 = script.new("channel.close(\'1A01\')", "myTest8")')
    mx.write("myTest8()")
    assert mx.query('print(channel.getclose("allslots"))') == "1A01"
    assert mx.query("print(myTest8.source)") == "channel.close('1A01')"
    assert mx.query("print(script.user.scripts.myTest8 == myTest8, myTest8.name)") == "true\tmyTest8"
    for line in ("loadscript", "channel.open('allslots')", "endscript", "script.anonymous.run()"):
        mx.write(line)
    assert mx.query('print(channel.getclose("allslots"))') == "nil"
    assert mx.query("print(errorqueue.count)") == "0.000000000e+00"


def test_tsplink_offline_without_a_network(mx) -> None:  # noqa: ANN001
    # tsplink.state: offline when powered on; tsplink.node default 1; node[N] of this node is localnode
    assert mx.query("print(tsplink.state, tsplink.node, node[1] == localnode)") == "offline\t1.000000000e+00\ttrue"


def test_707b_as_master_drives_the_2636b(tmp_path) -> None:  # noqa: ANN001
    # any node may run tsplink.reset() and become the master (TSP-Link system: "The node that receives the
    # command becomes the master"); node[1].smua is the 2636B's SMU A
    from rramlab.simulator.bench_config import default_bench_text

    text = default_bench_text().replace('firmware = "4.0.5"', 'firmware = "4.0.5"\ntsplink_node = 1')
    path = tmp_path / "link.toml"
    path.write_text(text.replace('firmware = "1.5.2"', 'firmware = "1.5.2"\ntsplink_node = 2'))
    rm = pyvisa.ResourceManager(f"{path}?tag=link707b@rramlab")
    mx = rm.open_resource(MATRIX, read_termination="\n", write_termination="\n")
    smu = rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    assert mx.query("print(tsplink.reset())") == "2.000000000e+00"
    mx.write("node[1].smua.source.levelv = 0.25")
    assert smu.query("print(smua.source.levelv, tsplink.master)") == "2.50000e-01\t2.00000e+00"
    assert mx.query("print(node[1].smua.source.levelv, node[1].smua.OUTPUT_ON)") == \
        "2.500000000e-01\t1.000000000e+00"
    rm.close()


def test_standard_event_register_holds_pon_until_read(mx) -> None:  # noqa: ANN001
    # §7 status.standard.event and appendix C "Status model": bit B7 PON (128) is set at power-on; reading the
    # event register clears it
    assert mx.query("print(status.standard.event, status.standard.PON)") == "1.280000000e+02\t1.280000000e+02"
    assert mx.query("print(status.standard.event)") == "0.000000000e+00"


def test_a_node_that_reboots_leaves_the_masters_node_table() -> None:
    # 2600B Reference Manual, "TSP-Link system": the system must be initialised again after rebooting any
    # instrument in it; until then the master cannot reach the node (node[2] reads nil here [U])
    rm = pyvisa.ResourceManager("2636b_707b_tsplink?tag=reboot707b@rramlab")
    smu = rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    assert smu.query("print(tsplink.reset(2))") == "2.00000e+00"
    assert smu.query("print(node[2].status.standard.event, node[2].status.standard.event)") == \
        "1.28000e+02\t0.00000e+00"
    rm.visalib.bench.by_name["matrix"].power_on()
    assert smu.query("print(node[2] == nil)") == "true"
    assert smu.query("print(tsplink.reset(2), node[2].status.standard.event)") == "2.00000e+00\t1.28000e+02"
    rm.close()
