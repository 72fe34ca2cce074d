"""Keysight B2200A switch-matrix emulator (simulator/scpi/keysight_b2200a.py).

Expected replies come from the B2200 User's Guide ([M], Edition 2 unless noted) or from code written
against the real instrument ([C]: QCoDeS ``keysight_b220x`` driver, its tests and example notebook —
the notebook's outputs were produced on a real B2200A, e.g. the firmware typo "directory").
Behaviour the sources do not pin down ([U] in the module docstring) is tested only for invariants
(an error is queued, nothing switches, the session goes on), never for invented bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pyvisa

from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import parse_bench_config

R = "GPIB0::22::INSTR"
TOML = """
[bench]
name = "b2200a-test"
seed = 3

[die]
rows = 4
cols = 4

[[instruments]]
name = "smu"
model = "2636B"
resource = "GPIB0::26::INSTR"

[[instruments]]
name = "sw"
model = "B2200A"
resource = "GPIB0::22::INSTR"
firmware = "A.01.00"
cards = { 1 = "B2210A", 2 = "B2210A", 3 = "B2210A", 4 = "B2210A" }
rows = { 1 = "smu.a", 2 = "smu.b", 12 = "gnd" }
columns = { "1:1-4" = "WL1-4", "1:5-8" = "BL1-4", "2:1-4" = "SL1-4" }
"""


def make_bench(cards: int = 4) -> Bench:
    data = {"bench": {"name": "t", "seed": 3}, "die": {"rows": 4, "cols": 4},
            "instruments": [
                {"name": "smu", "model": "2636B", "resource": "GPIB0::26::INSTR"},
                {"name": "sw", "model": "B2200A", "resource": R, "firmware": "A.01.00",
                 "cards": {str(k): "B2210A" for k in range(1, cards + 1)},
                 "rows": {"1": "smu.a", "2": "smu.b", "12": "gnd"},
                 "columns": {"1:1-4": "WL1-4", "1:5-8": "BL1-4", "2:1-4": "SL1-4"} if cards >= 2
                 else {"1:1-4": "WL1-4", "1:5-8": "BL1-4"}}]}
    return Bench(parse_bench_config(data))


@pytest.fixture
def bench() -> Bench:
    return make_bench()


def w(b: Bench, text: str) -> None:
    b.write(R, text.encode() + b"\n")


def q(b: Bench, text: str) -> str:
    w(b, text)
    msg = b.read(R)
    assert msg is not None, f"no reply to {text!r}"
    assert msg.endswith(b"\n")
    return msg[:-1].decode()


def connections(b: Bench) -> set[tuple[int, int]]:
    """QCoDeS ``KeysightB220X.parse_channel_list`` applied to ``:CLOS:CARD? 0`` [C]."""
    pattern = r"(?P<card>\d{0,1}?)(?P<input>\d{1,2})(?P<output>\d{2})(?=(?:[,\)\r\n]|$))"
    return {(int(m["input"]), int(m["output"])) for m in re.finditer(pattern, q(b, ":CLOS:CARD? 0"))}


def status_after(b: Bench, *commands: str) -> int:
    """QCoDeS ``post_execution_status_poll``: *CLS, the command(s), then *ESR? [C]."""
    w(b, "*CLS")
    for c in commands:
        w(b, c)
    return int(q(b, "*ESR?"))


# --------------------------------------------------------------------------------- identity
def test_idn(bench: Bench) -> None:
    # [M 5-7] "AGILENT,model,0,revision"; example "AGILENT,B2200A,0,A.01.00"
    assert q(bench, "*IDN?") == "AGILENT,B2200A,0,A.01.00"


def test_power_on_esr_bits(bench: Bench) -> None:
    # [M 5-7] ESR bit 7 = PON (128); read clears
    assert q(bench, "*ESR?") == "128"
    assert q(bench, "*ESR?") == "0"


# ------------------------------------------------------------------------- manual examples
def test_manual_open_query_example(bench: Bench) -> None:
    # [M Ed.4 5-39]: OPEN:CARD ALL; CLOS (@10101,10202); OPEN? (@10101,10102,10201,10202) -> 0,1,1,0
    w(bench, ":ROUT:FUNC NCON")               # card numbers 1-4 address the cards (normal config)
    w(bench, ":ROUT:OPEN:CARD ALL")
    w(bench, ":ROUT:CLOS (@10101,10202)")
    assert q(bench, ":ROUT:OPEN? (@10101,10102,10201,10202)") == "0,1,1,0"
    # [M summary (via [C] transcription)]: CLOS? returns 1 = closed, 0 = open
    assert q(bench, ":ROUT:CLOS? (@10101,10102,10201,10202)") == "1,0,0,1"
    assert q(bench, ":SYST:ERR?") == '+0,"No error"'


def test_manual_compound_example(bench: Bench) -> None:
    # [M 4-3]: ":ROUT:CONN:RULE ALL,FREE;SEQ ALL,BBM" is the same as the two separate commands
    w(bench, ":ROUT:CONN:RULE ALL,SROU;SEQ ALL,MBBR")
    assert q(bench, ":ROUT:CONN:RULE? 0;SEQ? 0") == "SROU;MBBR"
    w(bench, ":ROUT:CONN:RULE ALL,FREE;SEQ ALL,BBM")
    assert q(bench, ":ROUT:CONN:RULE? 0;:ROUT:CONN:SEQ? 0") == "FREE;BBM"
    assert status_after(bench) == 0


def test_undefined_header_example(bench: Bench) -> None:
    # [M 7-4]: -113 "Undefined header", e.g. *XYZ or :ROUT:OPEN:COOD; command errors set ESR bit 5 [M 7-3]
    for header in ("*XYZ", ":ROUT:OPEN:COOD 1"):
        w(bench, "*CLS")
        w(bench, header)
        assert q(bench, ":SYST:ERR?") == '-113,"Undefined header"'
        assert q(bench, "*ESR?") == "32"
    assert q(bench, "*IDN?").startswith("AGILENT,B2200A")


def test_header_errors_from_the_manual(bench: Bench) -> None:
    # [M 7-4]: -111 "Header separator error" (no white space between header and parameter),
    # -112 "Program mnemonic too long" (a keyword of more than twelve characters), -109, -108
    cases = [(":ROUT:CLOS(@00101)", '-111,"Header separator error"'),
             (":ROUT:CONNECTIONRULES 0,FREE", '-112,"Program mnemonic too long"'),
             (":ROUT:CONN:RULE 0", '-109,"Missing parameter"'),
             (":ROUT:CONN:RULE 0,FREE,1", '-108,"Parameter not allowed"')]
    for cmd, reply in cases:
        w(bench, cmd)
        assert q(bench, ":SYST:ERR?") == reply
    assert connections(bench) == set()


# ----------------------------------------------------------------------- QCoDeS [C] cases
def test_qcodes_sim_dialogue(bench: Bench) -> None:
    # [C] QCoDeS keysight_b220x.yaml: CLOS (@00248); CLOS (@01012); CLOS:CARD? 0 -> (@00248,01012)
    w(bench, "*RST")
    w(bench, ":CLOS (@00248)")
    w(bench, ":CLOS (@01012)")
    assert q(bench, ":CLOS:CARD? 0") == "(@00248,01012)"
    assert status_after(bench, ":OPEN (@00248)", ":OPEN (@00322)") == 0   # opening an open channel: no error


def test_qcodes_connect_paths(bench: Bench) -> None:
    # [C] test_connections / test_connect_paths / test_disconnect_paths / test_disconnect_all
    w(bench, "*RST")
    assert connections(bench) == set()
    assert status_after(bench, ":CLOS (@00248)", ":CLOS (@01012)") == 0
    assert connections(bench) == {(2, 48), (10, 12)}
    assert status_after(bench, ":CLOS (@00345,01109)") == 0
    assert connections(bench) == {(2, 48), (10, 12), (3, 45), (11, 9)}
    assert status_after(bench, ":OPEN (@00345,01109)") == 0
    assert connections(bench) == {(2, 48), (10, 12)}
    assert status_after(bench, ":OPEN:CARD 0") == 0
    assert connections(bench) == set()


def test_channels_without_leading_zeros(bench: Bench) -> None:
    # [C] SweepMe B2200 driver: "this instrument accepts channels strings without the leading zeros"
    w(bench, ":CLOS (@248,1012)")
    assert connections(bench) == {(2, 48), (10, 12)}


def test_qcodes_single_route(bench: Bench) -> None:
    # [C] notebook (hardware): in single route a new connection on an input releases its old path
    w(bench, "*RST")
    w(bench, ":CONN:RULE 0,SROU")
    assert q(bench, ":CONN:RULE? 0") == "SROU"      # [C] val_mapping single -> "SROU"
    w(bench, ":CLOS (@00248)")
    w(bench, ":CLOS (@00509)")
    assert connections(bench) == {(2, 48), (5, 9)}
    w(bench, ":CLOS (@00212)")
    assert connections(bench) == {(5, 9), (2, 12)}


def test_qcodes_free_connections_persist_into_single_route(bench: Bench) -> None:
    # [C] notebook (hardware): free-mode 1-to-many paths persist; SROU releases only the conflicting one
    w(bench, "*RST")
    for ch in ("00218", "00244", "00245"):
        w(bench, f":CLOS (@{ch})")
    w(bench, ":CONN:RULE 0,SROU")
    assert connections(bench) == {(2, 18), (2, 44), (2, 45)}
    w(bench, ":CLOS (@00545)")
    assert connections(bench) == {(2, 18), (2, 44), (5, 45)}


def test_qcodes_connection_sequence(bench: Bench) -> None:
    # [C] test_connection_sequence: BBM after reset; MBBR settable
    w(bench, "*RST")
    assert q(bench, ":CONN:SEQ? 0") == "BBM"
    assert status_after(bench, ":CONN:SEQ 0,MBBR") == 0
    assert q(bench, ":CONN:SEQ? 0") == "MBBR"
    assert status_after(bench, ":CONN:SEQ 0,NSEQ") == 0
    assert q(bench, ":CONN:SEQ? 0") == "NSEQ"


def test_qcodes_ground_port_errors(bench: Bench) -> None:
    # [C] notebook (hardware): GND mode ON, connect(12, 22) -> ESR 8 (DDE) and
    # +3022,"Cannot directory specify Auto Ground Port channel" (typo is the firmware's)
    w(bench, "*RST")
    w(bench, ":AGND 0,1")
    assert status_after(bench, ":CLOS (@01222)") == 8
    assert q(bench, ":SYST:ERR?") == '+3022,"Cannot directory specify Auto Ground Port channel"'
    assert (12, 22) not in connections(bench)


def test_qcodes_bias_mode(bench: Bench) -> None:
    # [C] notebook (hardware): all outputs bias-enabled by default; bias port 10; bias-disabled
    # outputs stay floating; a host connection takes an output off the bias port and back
    w(bench, "*RST")
    assert q(bench, ":BIAS:PORT? 0") == "10"
    w(bench, ":BIAS:CHAN:DIS (@00115)")
    w(bench, ":BIAS:CHAN:DIS (@00117)")
    assert connections(bench) == set()
    w(bench, ":BIAS 0,1")
    assert q(bench, ":BIAS? 0") == "1"
    assert connections(bench) == {(10, o) for o in range(1, 49) if o not in (15, 17)}
    w(bench, ":CLOS (@00411)")
    got = connections(bench)
    assert (10, 11) not in got and (4, 11) in got
    w(bench, ":OPEN (@00411)")
    got = connections(bench)
    assert (10, 11) in got and (4, 11) not in got
    assert status_after(bench, ":CLOS (@01017)") == 8
    assert q(bench, ":SYST:ERR?") == '+3014,"Cannot directly specify Bias Port channel"'
    assert status_after(bench, ":CLOS (@01023)") == 8
    assert q(bench, ":SYST:ERR?") == '+3014,"Cannot directly specify Bias Port channel"'
    assert (10, 17) not in connections(bench)


def test_qcodes_ground_mode_example(bench: Bench) -> None:
    # [C] notebook "Ground Mode complete example" (hardware)
    w(bench, "*RST")
    w(bench, ":AGND:UNUSED 0,'5,6,7,8'")
    w(bench, ":AGND:CHAN:ENAB (@00112)")
    w(bench, ":AGND:CHAN:ENAB (@00133)")
    assert connections(bench) == set()
    w(bench, ":AGND 0,1")
    assert connections(bench) == {(12, 12), (12, 33)}
    w(bench, ":CLOS (@00433)")
    assert connections(bench) == {(12, 12), (4, 33)}
    w(bench, ":OPEN (@00433)")
    assert connections(bench) == {(12, 12), (12, 33)}
    w(bench, ":AGND:CHAN:DIS (@00112)")
    assert connections(bench) == {(12, 33)}
    assert q(bench, ":SYST:ERR?") == '+0,"No error"'


def test_qcodes_couple_mode(bench: Bench) -> None:
    # [C] notebook (hardware): couple pairs connect odd->odd and even->even
    w(bench, "*RST")
    w(bench, ":COUP 0,1")
    w(bench, ":COUP:PORT 0,'1,3,5'")
    w(bench, ":CLOS (@00317)")
    assert connections(bench) == {(4, 18), (3, 17)}
    w(bench, ":OPEN (@00317)")
    assert connections(bench) == set()
    w(bench, ":CLOS (@00211)")
    assert connections(bench) == {(1, 11), (2, 12)}
    w(bench, ":CLOS (@00112)")
    assert connections(bench) == {(1, 11), (2, 12)}


def test_qcodes_port_settings(bench: Bench) -> None:
    # [C] test_bias_input_port / test_gnd_input_port / test_gnd_mode / test_couple_mode (default values)
    w(bench, "*RST")
    assert int(q(bench, ":BIAS:PORT? 0")) == 10
    assert status_after(bench, ":BIAS:PORT 0,9") == 0
    assert int(q(bench, ":BIAS:PORT? 0")) == 9
    assert int(q(bench, ":AGND:PORT? 0")) == 12
    assert status_after(bench, ":AGND:PORT 0,5") == 0
    assert int(q(bench, ":AGND:PORT? 0")) == 5
    assert q(bench, ":AGND? 0") == "0"
    assert q(bench, ":COUP? 0") == "0"
    assert status_after(bench, ":BIAS:CHAN:DIS:CARD 0", ":BIAS:CHAN:ENAB:CARD 0", ":BIAS:CHAN:DIS (@00101)",
                        ":BIAS:CHAN:ENAB (@00101)", ":AGND:CHAN:DIS:CARD 0", ":AGND:CHAN:ENAB:CARD 0",
                        ":AGND:CHAN:DIS (@00101)", ":AGND:CHAN:ENAB (@00101)", ":COUP:PORT:DET") == 0


def _ports(reply: str) -> list[int]:
    """QCoDeS get_parser of unused_inputs / couple_ports [C]."""
    return [int(x) for x in reply.strip("'").split(",") if x.strip().isdigit()]


def test_qcodes_unused_inputs_and_couple_ports(bench: Bench) -> None:
    # [C] test_unused_inputs / test_couple_ports (set_parser sends '5, 6, 7, 8' with spaces)
    w(bench, "*RST")
    assert _ports(q(bench, ":AGND:UNUSED? 0")) == []
    assert status_after(bench, ":AGND:UNUSED 0,'3'") == 0
    assert _ports(q(bench, ":AGND:UNUSED? 0")) == [3]
    assert status_after(bench, ":AGND:UNUSED 0,'5, 6, 7, 8'") == 0
    assert _ports(q(bench, ":AGND:UNUSED? 0")) == [5, 6, 7, 8]
    assert _ports(q(bench, ":COUP:PORT? 0")) == []
    assert status_after(bench, ":COUP:PORT 0,'1, 3, 5'") == 0
    assert _ports(q(bench, ":COUP:PORT? 0")) == [1, 3, 5]


# ---------------------------------------------------------------------- errors, session
@pytest.mark.parametrize("cmd", [":CLOS (@00249)", ":CLOS (@01501)", ":CLOS (@10101)", ":CLOS (@0A101)",
                                 ":CLOS 00101", ":CLOS (@00101:10203)", ":CONN:RULE 0,SOMETIMES",
                                 ":CONN:RULE 7,FREE"])
def test_bad_commands_switch_nothing_and_session_continues(bench: Bench, cmd: str) -> None:
    # [U] codes: an error is queued (ESR not 0), nothing switches, the next command works
    w(bench, "*RST;*CLS;:CLOS (@00301)")
    w(bench, cmd)
    code = int(q(bench, ":SYST:ERR?").split(",")[0])
    assert code < 0
    assert int(q(bench, "*ESR?")) & (32 | 16 | 8)
    assert connections(bench) == {(3, 1)}
    w(bench, ":CLOS (@00302)")
    assert connections(bench) == {(3, 1), (3, 2)}


def test_whole_list_rejected_when_one_item_bad(bench: Bench) -> None:
    w(bench, "*RST;:CLOS (@00101,00199)")
    assert connections(bench) == set()


def test_channel_range(bench: Bench) -> None:
    # [M] channel_list with ':' ranges; (@00101:00112) = input 1 to outputs 1..12
    w(bench, "*RST;:CLOS (@00101:00112)")
    assert connections(bench) == {(1, o) for o in range(1, 13)}
    assert q(bench, ":CLOS? (@00101:00103,00201)") == "1,1,1,0"


def test_normal_config_cards(bench: Bench) -> None:
    w(bench, ":ROUT:FUNC NCON")
    assert q(bench, ":ROUT:FUNC?") == "NCON"
    w(bench, ":CLOS (@10101,20112,41412)")
    assert q(bench, ":CLOS:CARD? 1;:CLOS:CARD? 2;:CLOS:CARD? 3;:CLOS:CARD? 4") == \
        "(@10101);(@20112);(@);(@41412)"
    w(bench, ":ROUT:FUNC ACON")
    assert q(bench, ":ROUT:FUNC?") == "ACON"


def test_rst_opens_everything_and_restores_defaults(bench: Bench) -> None:
    w(bench, ":CONN:RULE 0,SROU;:CONN:SEQ 0,NSEQ;:CLOS (@00101);:BIAS:PORT 0,3")
    w(bench, "*RST")
    assert q(bench, ":CLOS:CARD? 0;:CONN:RULE? 0;:CONN:SEQ? 0;:BIAS:PORT? 0") == "(@);FREE;BBM;10"


def test_error_queue_not_cleared_by_rst(bench: Bench) -> None:
    # [C] QCoDeS reset() docstring: "Does not reset error queue!"; [M 7-2] *CLS and power-on clear it
    w(bench, "*XYZ")
    w(bench, "*RST")
    assert q(bench, ":SYST:ERR?") == '-113,"Undefined header"'
    w(bench, "*XYZ;*CLS")
    assert q(bench, ":SYST:ERR?") == '-113,"Undefined header"'   # *CLS was discarded with the rest
    w(bench, "*CLS")
    assert q(bench, ":SYST:ERR?") == '+0,"No error"'


# --------------------------------------------------------------------------- the circuit
def test_closed_set_reaches_the_circuit(bench: Bench) -> None:
    w(bench, "*RST;:CLOS (@00101,00205,00214)")  # out 14 = card 2, output 2 in auto config
    assert bench.circuit.closed["sw"] == frozenset({(1, "1", 1), (1, "2", 5), (2, "2", 2)})
    w(bench, ":OPEN:CARD ALL")
    assert bench.circuit.closed["sw"] == frozenset()


def test_sequences_seen_by_the_circuit(bench: Bench) -> None:
    # [M 4155C/4156C guide 8-35] BBM: break, wait for open, make; MBBR: make, wait for close, break
    def relay_events(seq: str) -> list[list[str]]:
        b = make_bench()
        b.write(R, f"*RST;:CONN:RULE 0,SROU;SEQ 0,{seq};:CLOS (@00101)\n".encode())
        n = len(b.events.events)
        b.write(R, b":CLOS (@00102)\n")
        return [e.details["closed"] for e in b.events.events[n:] if e.kind == "relays"]

    assert relay_events("BBM") == [[], ["10102"]]
    assert relay_events("MBBR") == [["10101", "10102"], ["10102"]]
    assert relay_events("NSEQ") == [["10102"]]


def test_relay_time_on_the_virtual_clock(bench: Bench) -> None:
    t0 = bench.clock.now
    w(bench, ":CLOS (@00101)")
    assert bench.clock.now - t0 >= type(bench.instruments[R]).RELAY_CLOSE


def test_hot_switch_event(bench: Bench) -> None:
    bench.write("GPIB0::26::INSTR", b"smua.source.levelv = 1 smua.source.output = 1\n")
    w(bench, ":CLOS (@00101)")
    hot = [e for e in bench.events.events if e.kind == "hot_switch"]
    assert hot and hot[0].details["terminal"] == "smu.a" and hot[0].details["action"] == "close"


def test_relay_fail_fault(bench: Bench) -> None:
    bench.faults.add("relay_fail", match="CLOS", channels="00101")
    w(bench, ":CLOS (@00101,00102)")
    assert connections(bench) == {(1, 2)}
    assert any(e.kind == "fault_relay_fail" for e in bench.events.events)
    w(bench, ":CLOS (@00101)")                 # the fault fired once: the relay works again
    assert connections(bench) == {(1, 1), (1, 2)}


def test_reboot_fault_opens_relays(bench: Bench) -> None:
    w(bench, ":CLOS (@00101)")
    bench.faults.add("reboot", match="CARD")
    assert q(bench, ":CLOS:CARD? 0;*ESR?") == "(@);128"
    assert bench.circuit.closed["sw"] == frozenset()


def test_no_internal_errors(bench: Bench) -> None:
    for cmd in ("*IDN?", ":CLOS (@00101)", ":SYST:CTYP? 1", ":SYST:CDES? 1", ":SYST:CCON? 1", ":SYST:VERS?",
                ":BIAS 0,1", ":AGND 0,1", ":COUP:PORT:DET", ":SYST:CPON ALL", ":SYST:BEEP OFF"):
        w(bench, cmd)
        bench.read(R)
    assert bench.internal_errors == []


# ------------------------------------------------------------------------------- pyvisa
def test_through_pyvisa(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(TOML, encoding="utf-8")
    rm = pyvisa.ResourceManager(f"{path}@rramlab")
    try:
        assert R in rm.list_resources()
        sw = rm.open_resource(R, read_termination="\n", write_termination="\n")
        assert sw.query("*IDN?") == "AGILENT,B2200A,0,A.01.00"
        sw.write(":ROUT:FUNC NCON;:ROUT:OPEN:CARD ALL;:ROUT:CLOS (@10101,10202)")
        assert sw.query(":ROUT:OPEN? (@10101,10102,10201,10202)") == "0,1,1,0"
        assert sw.query_ascii_values(":ROUT:CLOS? (@10101,10102)", converter="d") == [1, 0]
        assert sw.query(":SYST:ERR?") == '+0,"No error"'
        # 10202 = card 1, input 2, output 2
        assert rm.visalib.bench.circuit.closed["sw"] == frozenset({(1, "1", 1), (1, "2", 2)})
    finally:
        rm.close()
