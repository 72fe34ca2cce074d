"""Keysight B2200A driver: exact (command, reply) pairs from the manual and from code written against the
instrument, never from an emulator.

Sources of the pairs (cited on each pair):
* [UG] Agilent B2200 User's Guide Ed. 2, Ch. 5 "SCPI Command Reference": *IDN? → ``AGILENT,B2200A,0,A.01.00``
  and the *ESR? bits (PON 128) on p. 5-7;
* [Q] QCoDeS ``keysight_b220x.py`` (hardware-tested): ``:CLOS (@…)``, ``:OPEN (@…)``, ``:OPEN:CARD c``,
  ``:CLOS:CARD? c``, channel ``cIIOO`` and its test reply ``(@00345,01109)``; its first version
  (commit 136245b8) transcribes the manual's summary: ``[:ROUT]:FUNC ACON|NCON``, ``[:ROUT]:OPEN:CARD
  card|ALL``, ``[:ROUT]:CLOS:CARD? card`` → channel list, ``:SYST:CTYP? card`` (model and revision),
  ``:SYST:ERR?``; the optional ``:ROUT`` node is written out here;
* SCPI-99 Vol. 2 §21.8 for standard error codes/texts; the manual.

Pairs the emulator must satisfy as well are read from ``tests/manual_pairs/keysight_b2200a.toml`` (selected
by tag; each pair's citation is there, replayed against the emulator by ``tests/test_manual_pairs.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from manual_pairs import comm_pairs
from pymeasure.test import expected_protocol

from rramlab.drivers.errors import InstrumentError, ReplyError, ShutdownError
from rramlab.drivers.keysight_b2200a import KeysightB2200A, channel_list, parse_channel_list
from rramlab.drivers.roles import ROLE_MATRIX, Crosspoint

C = Crosspoint
NOERR = '+0,"No error"'                  # :SYST:ERR? with an empty queue (SCPI; format [U] on the B2200A)
ERR = ":SYST:ERR?"
M = "keysight_b2200a"                    # tests/manual_pairs/keysight_b2200a.toml


def run(pairs: list[tuple[str | None, str | None]], action: Any, **kwargs: Any) -> Any:
    with expected_protocol(KeysightB2200A, pairs, **kwargs) as inst:
        return action(inst)


def test_identity_roles_and_geometry() -> None:
    assert run(comm_pairs(M, "identity"), lambda m: m.id) == "AGILENT,B2200A,0,A.01.00"   # [UG] 5-7
    assert frozenset({ROLE_MATRIX}) == KeysightB2200A.ROLES
    spec = KeysightB2200A.MATRIX
    assert spec.slots == (1, 2, 3, 4)
    geometry = spec.cards["B2210A"]
    assert (geometry.rows, geometry.columns) == (14, 12)
    assert geometry.row_number("14") == 14 and geometry.row_number("15") is None
    for attr in ("close", "open", "exclusive_close", "open_all", "closed", "installed_cards", "shutdown",
                 "check_errors", "clear_errors", "power_cycled", "device_clear", "disconnect", "lock_scope"):
        assert hasattr(KeysightB2200A, attr), attr


def test_constructor_sends_nothing() -> None:
    run([], lambda m: m.name)


# ------------------------------------------------------------------------------------ relays
def test_close_open_one_error_check_each() -> None:
    pairs = [
        # [Q] connect_paths; card 1 (normal config): ":ROUT:CLOS (@10101,10202)", (ERR, NOERR);
        # [Q] disconnect_paths: ":ROUT:OPEN (@10202)", (ERR, NOERR)
        *comm_pairs(M, "close", "open"),
        (":ROUT:CLOS (@31412)", None), (ERR, NOERR),            # card 3, input 14, output 12
    ]

    def act(m: KeysightB2200A) -> None:
        m.close([C(1, 2, 2), C(1, 1, 1), C(1, 1, 1)])           # sorted, repeats dropped
        m.open([C(1, 2, 2)])
        m.close((C(3, 14, 12),))

    run(pairs, act)


def test_exclusive_close_breaks_before_make_in_one_message() -> None:
    pairs = comm_pairs(M, "exclusive_close")   # [Q]/[UG] OPEN:CARD ALL: ":ROUT:OPEN:CARD ALL;:ROUT:CLOS (@10105,20310)"

    run(pairs, lambda m: m.exclusive_close([C(2, 3, 10), C(1, 1, 5)]))


def test_switch_opens_then_closes_in_one_message() -> None:
    # (":ROUT:OPEN (@10101);:ROUT:CLOS (@10202)", None), (ERR, NOERR), (":ROUT:CLOS (@10303)", None), (ERR, NOERR)
    pairs = comm_pairs(M, "switch")

    def act(m: KeysightB2200A) -> None:
        m.switch([C(1, 1, 1)], [C(1, 2, 2)])
        m.switch([], [C(1, 3, 3)])
        m.switch([], [])                                      # nothing to do: nothing sent

    run(pairs, act)


def test_open_all_selects_normal_configuration_mode() -> None:
    pairs = comm_pairs(M, "open_all")   # [Q] 136245b8: FUNC NCON; OPEN:CARD ALL, then (ERR, NOERR)
    run(pairs, lambda m: m.open_all())


def test_relay_error_raises_with_code_and_message() -> None:
    pairs = [(":ROUT:CLOS (@11201)", None), (ERR, '-221,"Settings conflict"'), (ERR, NOERR)]   # SCPI -221
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda m: m.close([C(1, 12, 1)]))
    assert e.value.errors == [(-221, "Settings conflict")]


def test_check_errors_reports_the_manual_undefined_header_entry() -> None:
    # [UG] p. 7-4: -113 "Undefined header" (after ":ROUT:OPEN:COOD"), then the empty queue
    pairs = comm_pairs(M, "error_entry", "error_drained")
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda m: m.check_errors())
    assert e.value.errors == [(-113, "Undefined header")]


def test_strict_errors_off_sends_only_the_action() -> None:
    run([(":ROUT:CLOS (@10101)", None)], lambda m: m.close([C(1, 1, 1)]), strict_errors=False)


# ------------------------------------------------------------------------------------ state
def test_installed_cards_and_closed_per_card() -> None:
    # [Q] 136245b8: ":SYST:CTYP? c" → ID of the card, model and revision ("B2210A,A.01.00"), empty slot "0"
    # (reply [U]: no model → ""); [Q] ":ROUT:CLOS:CARD? c" → (@cIIOO,…): "(@10101,10203)", "(@)"
    pairs = comm_pairs(M, "cards", "closed")

    def act(m: KeysightB2200A) -> tuple[dict[int, str], list[Crosspoint]]:
        return m.installed_cards(), m.closed()

    cards, closed = run(pairs, act)
    assert cards == {1: "B2210A", 2: "B2210A", 3: "", 4: ""}
    assert closed == [C(1, 1, 1), C(1, 2, 3)]


def test_closed_asks_for_the_cards_first_when_never_asked() -> None:
    pairs = [
        (":SYST:CTYP? 1", "B2210A,A.01.00"), (":SYST:CTYP? 2", "0"), (":SYST:CTYP? 3", "0"),
        (":SYST:CTYP? 4", "B2210A,A.01.00"),
        (":ROUT:CLOS:CARD? 1", "(@)"),
        (":ROUT:CLOS:CARD? 4", "(@40112,41401)"),
    ]
    assert run(pairs, lambda m: m.closed()) == [C(4, 1, 12), C(4, 14, 1)]


def test_parse_channel_list_as_qcodes_reads_it() -> None:
    # [Q] test_to_channel_list: "(@00345,01109)" (auto mode card 0) → inputs 3, 11; outputs 45, 9
    assert parse_channel_list("(@00345,01109)") == [C(0, 3, 45), C(0, 11, 9)]
    assert parse_channel_list("(@)") == []
    for bad in ("", "10101", "(@10101:10103)", "(@1010)", "nil"):
        with pytest.raises(ReplyError):
            parse_channel_list(bad, ":ROUT:CLOS:CARD? 1")


def test_closed_refuses_a_channel_of_another_card() -> None:
    pairs = [(":SYST:CTYP? 1", "B2210A,A.01.00"), (":SYST:CTYP? 2", "0"), (":SYST:CTYP? 3", "0"),
             (":SYST:CTYP? 4", "0"), (":ROUT:CLOS:CARD? 1", "(@20101)")]
    with pytest.raises(ReplyError):
        run(pairs, lambda m: m.closed())


# ------------------------------------------------------------------------------------ errors / status
def test_check_errors_is_bounded() -> None:
    pairs = [(ERR, '-350,"Queue overflow"')] * 32
    with pytest.raises(InstrumentError) as e:
        run(pairs, lambda m: m.check_errors())
    assert len(e.value.errors) == 32 and "not drained" in str(e.value)


def test_check_errors_accepts_unquoted_messages() -> None:
    # QCoDeS' B2200 simulation file answers '0, No Error' (a sim, not the instrument): parsed as well
    run([(ERR, "0, No Error")], lambda m: m.check_errors())


def test_power_on_flag_and_clear() -> None:
    pairs = comm_pairs(M, "clear", "power_on", "esr_read")   # *CLS; [UG] 5-7: ESR bit 7 PON = 128, then 0

    def act(m: KeysightB2200A) -> list[bool]:
        m.clear_errors()
        return [m.power_cycled(), m.power_cycled()]

    assert run(pairs, act) == [True, False]


# ------------------------------------------------------------------------------------ validators
INVALID = [
    [], (), "10101", [C(0, 1, 1)], [C(5, 1, 1)], [C(1, 0, 1)], [C(1, 15, 1)], [C(1, 1, 0)], [C(1, 1, 13)],
    [(1, 1, 1)], [C(1, 1, 1), None], [C(True, 1, 1)], [C(1, 1.0, 1)],
]


@pytest.mark.parametrize("points", INVALID)
@pytest.mark.parametrize("method", ["close", "open", "exclusive_close"])
def test_invalid_crosspoints_are_refused_before_any_write(method: str, points: Any) -> None:
    with pytest.raises(ValueError, match="point"):
        run([], lambda m: getattr(m, method)(points))


def test_refusal_names_the_allowed_range() -> None:
    spec = KeysightB2200A.MATRIX
    with pytest.raises(ValueError, match=r"card 1-4, row \(input\) 1-14, column \(output\) 1-12 of a B2210A"):
        channel_list([C(1, 15, 1)], spec, spec.cards["B2210A"])


def test_switch_refuses_bad_points_before_any_write() -> None:
    with pytest.raises(ValueError):
        run([], lambda m: m.switch([C(1, 1, 1)], [C(1, 1, 13)]))


# ------------------------------------------------------------------------------------ shutdown
def test_shutdown_opens_everything_first() -> None:
    run(comm_pairs(M, "shutdown"), lambda m: m.shutdown())     # ":ROUT:OPEN:CARD ALL", ":ROUT:FUNC NCON"


def test_shutdown_tries_every_step_when_one_fails() -> None:
    with expected_protocol(KeysightB2200A, [(":ROUT:FUNC NCON", None)]) as m:
        real_write = m.adapter.write
        calls = {"n": 0}

        def failing_write(command: str, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("bus error")
            real_write(command, **kwargs)

        m.adapter.write = failing_write
        with pytest.raises(ShutdownError) as e:
            m.shutdown()
        assert [step for step, _ in e.value.failures] == [":ROUT:OPEN:CARD ALL"]
