"""Manual (command, reply) pairs of the SCPI instruments, one TOML file per instrument.

The TSP instruments (``TSP_NAMES``: Keithley 2636B, 707B) have files of the same layout; their commands
are Lua chunks and their replies what the chunk prints. The probers (``PROBER_NAMES``: MPI SENTIO, a TCP/IP
socket resource) too: native replies are the whole line ``<errc>,<cmd_id>,<message>``, errors included (SENTIO
has no error queue), matched like any other reply.

The pairs are written from the programming manuals (or from third-party code written against the real
instrument), each citing its source; they were never recorded from our emulators. The same files feed
the driver transcript tests (``tests/test_drivers_*.py``, through :func:`comm_pairs`) and the emulator
replay (``tests/test_manual_pairs.py``).

File layout::

    instrument = "keithley2450"                  # the file's name without .toml
    bench = "2450x2_b2200a"                      # shipped bench the emulator replay opens (fresh)
    resource = "USB0::0x05E6::0x2450::04365704::INSTR"

    [formats]                                    # documented reply formats, anchored regexes
    number = '^[+-]?\\d\\.\\d{6}E[+-]\\d{2}$'

    [[pairs]]                                    # one ordered session, replayed top to bottom
    tag = "current_limit"                        # selects pairs for a driver test (several may share one)
    command = ":SOUR:VOLT:ILIM?"
    reply = "1.500000E-07"                       # exact reply text, no terminator; absent = no reply
    match = "exact"                              # exact | number | unit (default exact)
    form = "{number}"                            # number/unit only, see below
    source = "[RM] ... p. 6-71"                  # manual section / page, or the code written against it
    xfail = "reason"                             # optional: the emulator disagrees (see the replay test)

``match``:

* ``exact`` — the reply is exactly ``reply``;
* ``number`` — the reply's value depends on physics or on the clock: ``form`` (default ``"{number}"``) is
  the reply with each such value written as ``{name}``, a regex of the file's ``[formats]`` table (e.g.
  ``"{number};0"``: an NR3 reading, then exactly ``;0``); everything else in ``form`` is exact. ``reply``
  is the manual's example and must itself fit ``form``;
* ``unit`` — the reply names the unit (``*IDN?``): ``form`` holds ``{serial}`` / ``{firmware}``, filled in
  from the bench file's entry for the instrument, the rest is exact. ``reply`` is the manual's example
  for a real unit (and is what the driver tests use).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

HERE = Path(__file__).parent
NAMES = ("keithley2450", "keysight_b2900", "keysight_b2200a", "keysight_e5250a")
# The TSP instruments (Keithley 2600B / 707B manuals), same layout; they replace the emulator-recorded driver goldens.
TSP_NAMES = ("keithley2636b", "keithley707b")
# The probers (MPI SENTIO native remote command set; no public manual: MPI's client code and examples).
PROBER_NAMES = ("mpi_sentio",)
ALL_NAMES = NAMES + TSP_NAMES + PROBER_NAMES
MATCHES = ("exact", "number", "unit")
UNIT_FIELDS = ("serial", "firmware")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

Pair = dict[str, Any]


@cache
def _read(name: str) -> dict[str, Any]:
    with (HERE / f"{name}.toml").open("rb") as f:
        data = tomllib.load(f)
    if data.get("instrument") != name:
        raise ValueError(f"{name}.toml: instrument = {data.get('instrument')!r}, expected {name!r}")
    for i, pair in enumerate(data.get("pairs", [])):
        pair.setdefault("match", "exact")
        if pair["match"] not in MATCHES:
            raise ValueError(f"{name}.toml pair {i}: match {pair['match']!r} not one of {MATCHES}")
    return data


def header(name: str) -> dict[str, Any]:
    """The file's header: ``instrument``, ``bench``, ``resource``, ``formats``."""
    return {k: v for k, v in _read(name).items() if k != "pairs"}


def load(name: str) -> list[Pair]:
    """The pairs of ``tests/manual_pairs/<name>.toml`` in file (session) order (copies)."""
    return [dict(p) for p in _read(name)["pairs"]]


def comm_pairs(name: str, *tags: str) -> list[tuple[str, str | None]]:
    """``(command, reply)`` tuples for ``pymeasure.test.expected_protocol``: the pairs of each tag in the
    order the tags are given, within a tag in file order. Every tag must exist."""
    pairs = load(name)
    out: list[tuple[str, str | None]] = []
    for tag in tags:
        chosen = [(p["command"], p.get("reply")) for p in pairs if p.get("tag") == tag]
        if not chosen:
            raise KeyError(f"{name}.toml has no pair tagged {tag!r}")
        out += chosen
    return out


def _body(regex: str) -> str:
    """A [formats] regex without its anchors, to embed in a form."""
    return regex.removeprefix("^").removesuffix("$")


def reply_pattern(name: str, pair: Pair, unit: dict[str, str] | None = None) -> re.Pattern[str]:
    """The regex a reply to ``pair`` must match as a whole (``fullmatch``).

    ``unit`` gives ``serial``/``firmware`` for ``match = "unit"`` (the bench file's entry); without it
    those fields match any text without a comma (used to check the manual example itself).
    """
    if "reply" not in pair:
        raise ValueError(f"{name}: {pair['command']!r} has no reply")
    match = pair.get("match", "exact")
    if match == "exact":
        return re.compile(re.escape(pair["reply"]))
    formats = header(name).get("formats", {})
    form = pair.get("form", "{number}" if match == "number" else None)
    if form is None:
        raise ValueError(f"{name}: {pair['command']!r} (match = unit) needs a form")

    def field(key: str) -> str:
        if match == "unit" and key in UNIT_FIELDS:
            return re.escape(unit[key]) if unit is not None else r"[^,]+"
        if match == "number" and key in formats:
            return f"(?:{_body(formats[key])})"
        raise ValueError(f"{name}: {pair['command']!r}: unknown placeholder {{{key}}} for match = {match}")

    parts = _PLACEHOLDER.split(form)
    regex = "".join(field(p) if i % 2 else re.escape(p) for i, p in enumerate(parts))
    return re.compile(regex)
