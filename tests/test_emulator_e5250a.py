"""Keysight E5250A switch-matrix emulator with E5252A cards (simulator/scpi/keysight_e5250a.py).

Expectations: E5250A User's Guide ([M], Edition 9/11, ch. 5 "Controlling the E5250A"), the
4155C/4156C User's Guide Vol.2 8-35 (which drives the E5250A) and public drivers written against it
([C]: SweepMe! ``Switch-Keysight_E5250A``). Reply bytes the sources do not give are tested only for
their structure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pyvisa

from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import BenchConfigError, parse_bench_config

R = "GPIB0::23::INSTR"
TOML = """
[bench]
name = "e5250a-test"
seed = 5

[die]
rows = 4
cols = 4

[[instruments]]
name = "smu"
model = "2636B"
resource = "GPIB0::26::INSTR"

[[instruments]]
name = "mx"
model = "E5250A"
resource = "GPIB0::23::INSTR"
firmware = "B.01.00"
cards = { 1 = "E5252A", 2 = "E5252A" }
rows = { 1 = "smu.a", 2 = "smu.b", 10 = "gnd" }
columns = { "1:1-4" = "WL1-4", "1:5-8" = "BL1-4", "2:1-4" = "SL1-4" }
"""


def make_bench() -> Bench:
    data = {"bench": {"name": "t", "seed": 5}, "die": {"rows": 4, "cols": 4},
            "instruments": [
                {"name": "smu", "model": "2636B", "resource": "GPIB0::26::INSTR"},
                {"name": "mx", "model": "E5250A", "resource": R, "firmware": "B.01.00",
                 "cards": {"1": "E5252A", "2": "E5252A"}, "rows": {"1": "smu.a", "2": "smu.b", "10": "gnd"},
                 "columns": {"1:1-4": "WL1-4", "1:5-8": "BL1-4", "2:1-4": "SL1-4"}}]}
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
    return msg.decode().removesuffix("\n")


def closed(b: Bench, card: int) -> set[str]:
    """5-digit channels of ``:CLOS:CARD? card`` (parsed as the SweepMe/C# drivers do [C])."""
    return set(re.findall(r"\d{5}", q(b, f":ROUT:CLOS:CARD? {card}")))


def test_identity_structure(bench: Bench) -> None:
    # IEEE 488.2 10.14: four comma-separated fields; model field = E5250A (exact maker text [U])
    fields = q(bench, "*IDN?").split(",")
    assert len(fields) == 4 and fields[1] == "E5250A" and fields[3] == "B.01.00"


def test_sweepme_sequence(bench: Bench) -> None:
    # [C] SweepMe driver: *RST, :OPEN:CARD ALL, :CLOS (@...), :CLOS:CARD? 1, :CLOS? (@...)
    # [M 5-6]: cNNNN = card digit + 2-digit input + 2-digit output
    w(bench, "*RST")
    w(bench, ":OPEN:CARD ALL")
    w(bench, ":CLOS (@10101,10212)")
    assert closed(bench, 1) == {"10101", "10212"}
    assert q(bench, ":CLOS? (@10101,10102)") == "1,0"
    w(bench, ":OPEN (@10101)")
    assert closed(bench, 1) == {"10212"}
    assert q(bench, ":SYST:ERR?") == '+0,"No error"'


def test_csharp_driver_sequence(bench: Bench) -> None:
    # [C] SMU_Revamp SwitchMatrixService: RULE ALL,FREE; SEQ ALL,BBM; :ROUT:CLOSE (@...) (long form); *OPC?
    w(bench, ":ROUT:CONN:RULE ALL,FREE")
    w(bench, ":ROUT:CONN:SEQ ALL,BBM")
    w(bench, ":ROUT:CLOSE (@10305)")
    assert q(bench, "*OPC?") == "1"
    assert closed(bench, 1) == {"10305"}
    assert q(bench, ":ROUT:CONN:RULE? 1;SEQ? 1") == "FREE;BBM"


def test_e5252a_ports(bench: Bench) -> None:
    # [M 5-15]: E5252A inputs 01-10, outputs 01-12; other numbers are rejected (error code [U])
    w(bench, "*CLS;:CLOS (@11001,10112,20101)")
    assert closed(bench, 1) == {"11001", "10112"} and closed(bench, 2) == {"20101"}
    for bad in ("11101", "10113", "30101"):
        w(bench, f"*CLS;:CLOS (@{bad})")
        assert int(q(bench, "*ESR?")) & (32 | 16 | 8)
        assert int(q(bench, ":SYST:ERR?").split(",")[0]) < 0
    assert closed(bench, 1) == {"11001", "10112"}


def test_single_route_is_per_card_in_normal_config(bench: Bench) -> None:
    # [M 5-9]: single route per card; with two cards input 1 may reach one output on each card
    w(bench, ":ROUT:CONN:RULE ALL,SROU")
    w(bench, ":CLOS (@10101)")
    w(bench, ":CLOS (@20102)")
    assert closed(bench, 1) == {"10101"} and closed(bench, 2) == {"20102"}
    w(bench, ":CLOS (@10103)")                  # same input, same card: the old path breaks
    assert closed(bench, 1) == {"10103"}
    w(bench, ":CLOS (@10203)")                  # same output, same card: the old path breaks
    assert closed(bench, 1) == {"10203"}


def test_rule_change_keeps_connections(bench: Bench) -> None:
    # [M 4155C/4156C Vol.2 8-35]: changing the connection rule does not change the connections
    w(bench, ":CLOS (@10101,10102)")
    w(bench, ":ROUT:CONN:RULE 1,SROU")
    assert closed(bench, 1) == {"10101", "10102"}


def test_bias_mode(bench: Bench) -> None:
    # [M 5-11]: bias port joined to every bias-enabled output not connected to another input;
    # :ROUT:OPEN gives an output back to the bias port, :ROUT:CLOS takes it away
    w(bench, ":ROUT:BIAS:PORT 1,10;:ROUT:BIAS 1,ON")
    assert closed(bench, 1) == {f"110{o:02d}" for o in range(1, 13)}
    w(bench, ":CLOS (@10105)")
    assert "11005" not in closed(bench, 1) and "10105" in closed(bench, 1)
    w(bench, ":OPEN (@10105)")
    assert "11005" in closed(bench, 1) and "10105" not in closed(bench, 1)
    w(bench, ":ROUT:BIAS:CHAN:DIS (@10107)")
    assert "11007" not in closed(bench, 1)
    w(bench, ":ROUT:BIAS 1,OFF")
    assert closed(bench, 1) == set()


def test_auto_config(bench: Bench) -> None:
    # [M 5-6 Table 5-2]: card 0 in auto configuration, outputs numbered across the cards
    w(bench, ":ROUT:FUNC ACON")
    assert q(bench, ":ROUT:FUNC?") == "ACON"
    w(bench, ":CLOS (@00113,00101)")
    assert closed(bench, 0) == {"00101", "00113"}
    assert bench.circuit.closed["mx"] == frozenset({(1, "1", 1), (2, "1", 1)})


def test_closed_set_reaches_the_circuit(bench: Bench) -> None:
    w(bench, ":CLOS (@10101,10205,20204)")
    assert bench.circuit.closed["mx"] == frozenset({(1, "1", 1), (1, "2", 5), (2, "2", 4)})
    w(bench, "*RST")
    assert bench.circuit.closed["mx"] == frozenset()


def test_session_continues_after_errors(bench: Bench) -> None:
    w(bench, ":ROUT:BOGUS 1;:CLOS (@10101)")   # command error: rest of the message discarded
    assert q(bench, ":SYST:ERR?") == '-113,"Undefined header"'
    assert closed(bench, 1) == set()
    w(bench, ":CLOS (@10101)")
    assert closed(bench, 1) == {"10101"}


def test_no_ground_mode() -> None:
    b = make_bench()
    w(b, ":ROUT:AGND 1,ON")
    assert q(b, ":SYST:ERR?") == '-113,"Undefined header"'


def test_card_model_checked_by_bench_config() -> None:
    with pytest.raises(BenchConfigError, match="E5252A"):
        parse_bench_config({"bench": {"seed": 1}, "die": {"rows": 2, "cols": 2},
                            "instruments": [{"name": "mx", "model": "E5250A", "resource": R,
                                             "cards": {"1": "B2210A"}, "rows": {}, "columns": {}}]})


def test_through_pyvisa(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(TOML, encoding="utf-8")
    rm = pyvisa.ResourceManager(f"{path}@rramlab")
    try:
        mx = rm.open_resource(R, read_termination="\n", write_termination="\n")
        mx.write("*RST;:OPEN:CARD ALL;:CLOS (@10101,10202)")
        assert mx.query(":CLOS? (@10101,10102,10201,10202)") == "1,0,0,1"
        assert mx.query(":SYST:ERR?") == '+0,"No error"'
        assert rm.visalib.bench.circuit.closed["mx"] == frozenset({(1, "1", 1), (1, "2", 2)})
    finally:
        rm.close()
