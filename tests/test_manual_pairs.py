"""The emulators must satisfy the manual (command, reply) pairs of ``tests/manual_pairs/*.toml``.

Each file is one ordered session written from the programming manual (each pair cites its source; none
was recorded from an emulator). It is replayed top to bottom against the instrument it names on a fresh
copy of the shipped bench it names: ``inst.write(command)``, then ``inst.read_raw()`` when a reply is
expected — the exact bytes (text + LF) for ``match = "exact"``, the file's regexes for ``"number"``,
the bench file's serial/firmware for ``"unit"`` — and nothing queued when no reply is expected. The bench
must log no internal error. Every pair is its own test case (ids ``<file>-<index>-<tag>``); a pair the
emulator does not satisfy carries ``xfail = "reason"`` in the file and is reported as xfailed here, and
an xfail pair that passes fails the test (strict), so the marker cannot go stale. The expectation of a
pair is never changed to suit the emulator.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import manual_pairs as mp
import pytest
import pyvisa
from pyvisa import errors as visa_errors

_runs = itertools.count()


@dataclass
class Outcome:
    """What the emulator did with one pair."""

    pair: dict[str, Any]
    ok: bool
    detail: str


@dataclass
class Replay:
    """One file replayed on a fresh bench."""

    outcomes: list[Outcome] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)


def _expected(pair: dict[str, Any]) -> str:
    if "reply" not in pair:
        return "no reply"
    if pair.get("match", "exact") == "exact":
        return repr(pair["reply"])
    return f"{pair['match']} {pair.get('form', '{number}')!r}"


def _replay(name: str) -> Replay:
    head = mp.header(name)
    resource = head["resource"]
    rm = pyvisa.ResourceManager(f"{head['bench']}?tag=manual-pairs-{name}-{os.getpid()}-{next(_runs)}@rramlab")
    result = Replay()
    try:
        inst = rm.open_resource(resource, read_termination="\n", write_termination="\n")
        bench = inst.visalib.bench
        config = next(i for i in bench.config.instruments if i.resource == resource)
        unit = {"serial": config.serial, "firmware": config.firmware}
        emulated = bench.instruments[resource]
        for index, pair in enumerate(mp.load(name)):
            inst.write(pair["command"])
            where = f"{name}.toml pair {index} ({pair.get('tag')}) {pair['command']!r}"
            if "reply" not in pair:
                if emulated.pending_until() is None:
                    result.outcomes.append(Outcome(pair, True, ""))
                else:
                    raw = inst.read_raw()          # take it off the bus so the session stays aligned
                    result.outcomes.append(Outcome(pair, False, f"{where}: expected no reply, got {raw!r}"))
                continue
            try:
                raw: bytes | None = inst.read_raw()
            except visa_errors.VisaIOError:
                raw = None
            if raw is None or not raw.endswith(b"\n"):
                result.outcomes.append(Outcome(pair, False, f"{where}: expected {_expected(pair)}, got {raw!r}"))
                continue
            text = raw[:-1].decode("latin-1")
            ok = mp.reply_pattern(name, pair, unit).fullmatch(text) is not None
            result.outcomes.append(Outcome(pair, ok, "" if ok else f"{where}: expected {_expected(pair)}, "
                                                                   f"got {text!r}"))
        result.internal_errors = list(bench.internal_errors)
    finally:
        rm.close()
    return result


_REPLAYS: dict[str, Replay] = {}


def replay(name: str) -> Replay:
    """The replay of ``name`` (once per test process)."""
    if name not in _REPLAYS:
        _REPLAYS[name] = _replay(name)
    return _REPLAYS[name]


CASES = [pytest.param(name, index, id=f"{name}-{index:02d}-{pair.get('tag', '')}")
         for name in mp.ALL_NAMES for index, pair in enumerate(mp.load(name))]


@pytest.mark.parametrize(("name", "index"), CASES)
def test_emulator_satisfies_the_manual_pair(name: str, index: int) -> None:
    outcome = replay(name).outcomes[index]
    reason = outcome.pair.get("xfail")
    if reason is None:
        assert outcome.ok, outcome.detail
    elif outcome.ok:
        pytest.fail(f"XPASS(strict): {name}.toml pair {index} ({outcome.pair['command']!r}) now passes; "
                    f"remove its xfail ({reason!r})")
    else:
        pytest.xfail(f"{reason} | {outcome.detail}")


@pytest.mark.parametrize("name", mp.ALL_NAMES)
def test_replay_logs_no_internal_error(name: str) -> None:
    assert replay(name).internal_errors == []


@pytest.mark.parametrize("name", mp.ALL_NAMES)
def test_files_are_well_formed_and_examples_fit_their_forms(name: str) -> None:
    head = mp.header(name)
    assert head["bench"] and head["resource"]
    pairs = mp.load(name)
    assert pairs
    for index, pair in enumerate(pairs):
        where = f"{name}.toml pair {index}"
        assert set(pair) <= {"tag", "command", "reply", "match", "form", "source", "xfail"}, where
        assert isinstance(pair.get("tag"), str) and pair["tag"], f"{where}: tag"
        assert isinstance(pair.get("command"), str) and pair["command"].strip(), f"{where}: command"
        assert "\n" not in pair["command"] and "\n" not in pair.get("reply", ""), f"{where}: terminator in text"
        assert isinstance(pair.get("source"), str) and pair["source"].strip(), f"{where}: every pair cites a source"
        assert "xfail" not in pair or (isinstance(pair["xfail"], str) and pair["xfail"].strip()), where
        match = pair["match"]
        if "reply" not in pair:
            assert match == "exact" and "form" not in pair, f"{where}: no reply, nothing to match"
            continue
        assert (match == "exact") == ("form" not in pair) or match == "number", f"{where}: form with {match}"
        # the manual's example reply must itself fit the form it is checked by
        assert mp.reply_pattern(name, pair).fullmatch(pair["reply"]), f"{where}: {pair['reply']!r} vs its form"


def test_comm_pairs_selects_by_tag_in_the_order_given() -> None:
    pairs = mp.comm_pairs("keithley2450", "esr_read", "power_on")
    assert pairs == [("*ESR?", "0"), ("*ESR?", "128")]
    assert mp.comm_pairs("keysight_b2200a", "shutdown") == [(":ROUT:OPEN:CARD ALL", None), (":ROUT:FUNC NCON", None)]
    with pytest.raises(KeyError, match="no pair tagged"):
        mp.comm_pairs("keithley2450", "no such tag")
