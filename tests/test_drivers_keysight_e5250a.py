"""Keysight E5250A driver: exact (command, reply) pairs from the manual, never from an emulator.

Sources (cited on each pair):
* [UG] Agilent E5250A User's Guide Ed. 9, Ch. 5: channel_list ``(@cNNNN)`` — card number one digit 0–4,
  input two digits, output two digits (p. 5-6); E5252A channel list inputs 01–10, outputs 01–12 (p. 5-15);
  Ch. 7 command reference ``[:ROUTe]:CLOSe``, ``:OPEN``, ``:OPEN:CARD``, ``:CLOSe:CARD?``,
  ``[:ROUTe]:FUNCtion``;
* commands the E5250A shares with the B2200A (B2200 User's Guide Ed. 2: ``:SYST:CCON?`` kept "to keep
  compatibility with the Keysight E5250A"): ``:SYST:CTYP? c``, ``:SYST:ERR?``, IEEE 488.2 ``*ESR?``.

Pairs the emulator must satisfy as well are read from ``tests/manual_pairs/keysight_e5250a.toml`` (selected
by tag; each pair's citation is there, replayed against the emulator by ``tests/test_manual_pairs.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from manual_pairs import comm_pairs
from pymeasure.test import expected_protocol

from rramlab.drivers.errors import InstrumentError
from rramlab.drivers.keysight_e5250a import KeysightE5250A
from rramlab.drivers.roles import ROLE_MATRIX, Crosspoint

C = Crosspoint
NOERR = '+0,"No error"'
ERR = ":SYST:ERR?"
E = "keysight_e5250a"                    # tests/manual_pairs/keysight_e5250a.toml


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    with expected_protocol(KeysightE5250A, pairs, **kwargs) as inst:
        return action(inst)


def test_roles_and_geometry() -> None:
    assert frozenset({ROLE_MATRIX}) == KeysightE5250A.ROLES
    spec = KeysightE5250A.MATRIX
    assert spec.slots == (1, 2, 3, 4)
    assert (spec.cards["E5252A"].rows, spec.cards["E5252A"].columns) == (10, 12)     # [UG] p. 5-15
    run([], lambda m: None, name="mx")


def test_identity() -> None:
    # IEEE 488.2 §10.14 four fields; maker text [U] (see the file): "HEWLETT-PACKARD,E5250A,0,B.01.01"
    assert run(comm_pairs(E, "identity"), lambda m: m.id) == "HEWLETT-PACKARD,E5250A,0,B.01.01"


def test_relay_actions_on_the_wire() -> None:
    pairs = [
        (":ROUT:CLOS (@10101,41012)", None), (ERR, NOERR),        # [UG] p. 5-6: card, input, output
        (":ROUT:OPEN (@41012)", None), (ERR, NOERR),
        # ":ROUT:OPEN:CARD ALL;:ROUT:CLOS (@20305)", ":ROUT:OPEN (@20305);:ROUT:CLOS (@20306)",
        # ":ROUT:FUNC NCON;:ROUT:OPEN:CARD ALL" ([UG] Ch. 7 [:ROUTe]:FUNCtion NCONfig), each then (ERR, NOERR)
        *comm_pairs(E, "exclusive_close", "switch", "open_all"),
    ]

    def act(m: KeysightE5250A) -> None:
        m.close([C(4, 10, 12), C(1, 1, 1)])
        m.open([C(4, 10, 12)])
        m.exclusive_close([C(2, 3, 5)])
        m.switch([C(2, 3, 5)], [C(2, 3, 6)])
        m.open_all()

    run(pairs, act)


def test_cards_and_closed_set() -> None:
    pairs = [
        (":SYST:CTYP? 1", "E5252A,0,1.0"), (":SYST:CTYP? 2", "E5255A,0,1.0"),   # reply shape [U]
        (":SYST:CTYP? 3", "0"), (":SYST:CTYP? 4", "0"),
        *comm_pairs(E, "closed"),        # ":ROUT:CLOS:CARD? 1" → "(@10101,11012)", ":ROUT:CLOS:CARD? 2" → "(@)"
    ]

    def act(m: KeysightE5250A) -> Any:
        return m.installed_cards(), m.closed()

    cards, closed = run(pairs, act)
    assert cards == {1: "E5252A", 2: "E5255A", 3: "", 4: ""}
    assert closed == [C(1, 1, 1), C(1, 10, 12)]


@pytest.mark.parametrize("points", [[C(1, 11, 1)], [C(1, 1, 13)], [C(0, 1, 1)], [C(5, 1, 1)], []])
def test_e5252a_geometry_is_enforced_before_any_write(points: Any) -> None:
    with pytest.raises(ValueError, match="point"):
        run([], lambda m: m.close(points))


def test_error_drain_and_power_on() -> None:
    # (ERR, '-222,"Data out of range"') (SCPI-99 -222 text), then (ERR, NOERR)
    pairs = [(":ROUT:CLOS (@10101)", None), *comm_pairs(E, "error_entry", "error_drained")]
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda m: m.close([C(1, 1, 1)]))
    assert e.value.errors == [(-222, "Data out of range")]
    assert run(comm_pairs(E, "power_on"), lambda m: m.power_cycled()) is True   # IEEE 488.2 ESR bit 7 PON: "128"


def test_shutdown_opens_every_card() -> None:
    run(comm_pairs(E, "shutdown"), lambda m: m.shutdown())     # ":ROUT:OPEN:CARD ALL", ":ROUT:FUNC NCON"
