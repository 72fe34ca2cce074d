"""Keysight (Agilent) B2200A/B2201A Femto Leakage Switch Mainframe with B2210A cards (14 × 12).

Manual: Agilent B2200 User's Guide, Edition 2, Chapter 5 "SCPI Command Reference" (``*IDN?`` →
``AGILENT,B2200A,0,A.01.00`` and the ``*ESR?`` bits OPC 1 … PON 128 on p. 5-7), with the command
summary as transcribed in QCoDeS' ``keysight_b220x.py`` (first version, commit 136245b8, written
against a real B2200A): ``[:ROUT]:FUNC ACON|NCON`` (channel configuration mode),
``[:ROUT]:CLOS[:LIST] (@list)``, ``[:ROUT]:OPEN[:LIST] (@list)``, ``[:ROUT]:OPEN:CARD card|ALL``,
``[:ROUT]:CLOS:CARD? card`` (→ ``(@list)``), ``:SYST:CTYP? card`` (card ID: model and revision),
``:SYST:ERR?`` (head of the error queue). No ``:SYST:ERR:COUN?`` is listed, so the queue is read
with ``:SYST:ERR?`` until code 0 (≤ 32 reads).

A crosspoint is ``cIIOO``: card 1–4 (normal configuration mode; auto mode's card 0 is not used),
input (matrix row) 01–14, output (column) 01–12: ``Crosspoint(1, 1, 1)`` → ``10101``; lists go on the
wire sorted and comma-separated, ``(@10101,10202)``. Every crosspoint is validated locally before
anything is written (ValueError naming the allowed range). :meth:`open_all` also selects the normal
configuration mode (``:ROUT:FUNC NCON``), which the card numbers 1–4 need; the station opens every
matrix before it routes a cell.

Error check: every relay action is followed by one ``:SYST:ERR?`` (``+0,"No error"`` when empty);
a non-zero code drains the rest of the queue (≤ 32 entries in all) into
:class:`~rramlab.drivers.errors.InstrumentError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from pymeasure.instruments import Instrument

from .errors import ReplyError
from .roles import ROLE_MATRIX, CardGeometry, Crosspoint, MatrixSpec
from .scpi import SCPIMixin

__all__ = ["KeysightB2200A", "KeysightSwitchMainframe", "channel_list", "parse_channel_list"]

_CLOSED = re.compile(r"^\(@([0-9,\s]*)\)$")
_CHANNEL = re.compile(r"^(\d)(\d\d)(\d\d)$")
_MODEL = re.compile(r"\b([A-Z]\d{4}[A-Z])\b")


def channel_list(points: Sequence[Crosspoint], spec: MatrixSpec, geometry: CardGeometry) -> str:
    """Validate ``points`` and format them as a SCPI channel list ``(@10101,10202)`` (sorted, no repeats).

    Raises ValueError for a str, an empty sequence, anything that is not a :class:`Crosspoint`, or a
    card, row or column outside ``spec.slots`` and ``geometry`` (1-based).
    """
    if isinstance(points, str | bytes) or not isinstance(points, Sequence | set | frozenset):
        raise ValueError(f"points must be a sequence of Crosspoint, got {points!r}")
    items = list(points)
    if not items:
        raise ValueError("points must name at least one crosspoint, got an empty sequence")
    bad = [p for p in items if not isinstance(p, Crosspoint)]
    if bad:
        raise ValueError(f"points must be Crosspoint(card, row, column), got {bad!r}")
    cards = f"{min(spec.slots)}-{max(spec.slots)}"
    for p in items:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (p.card, p.row, p.column)):
            raise ValueError(f"crosspoint card, row and column must be integers, got {p}")
        if p.card not in spec.slots or not 1 <= p.row <= geometry.rows or not 1 <= p.column <= geometry.columns:
            raise ValueError(f"crosspoint must be card {cards}, row (input) 1-{geometry.rows}, "
                             f"column (output) 1-{geometry.columns} of a {geometry.model}, got {p}")
    return "(@" + ",".join(f"{p.card}{p.row:02d}{p.column:02d}" for p in sorted(set(items))) + ")"


def parse_channel_list(reply: str, command: str = "") -> list[Crosspoint]:
    """``(@10101,10203)`` → sorted crosspoints; ``(@)`` → []. Ranges (``:``) are refused (ReplyError)."""
    match = _CLOSED.match(reply.strip())
    if match is None:
        raise ReplyError(command, reply, "a channel list (@cIIOO,...)")
    points = []
    for item in filter(None, (s.strip() for s in match.group(1).split(","))):
        m = _CHANNEL.match(item)
        if m is None:
            raise ReplyError(command, reply, "a channel list of 5-digit cIIOO channels")
        points.append(Crosspoint(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return sorted(points)


class KeysightSwitchMainframe(SCPIMixin, Instrument):
    """Keysight B2200A / E5250A switch mainframe in normal configuration mode (cards 1–4), one card model.

    Subclasses set ``MATRIX`` (slots and the one card model) and ``CARD_MODEL``.
    ``adapter``: a VISA resource name (``"GPIB0::22::INSTR"``), GPIB address or pymeasure adapter.
    Terminations LF both ways and a 10 s timeout unless given; nothing is sent on connect.
    ``strict_errors``: check the error queue after each relay action (one ``:SYST:ERR?``).
    """

    ROLES = frozenset({ROLE_MATRIX})
    MATRIX: ClassVar[MatrixSpec]
    CARD_MODEL: ClassVar[str]
    error_count_command = None            # no :SYST:ERR:COUN? listed: drain :SYST:ERR? until code 0

    def __init__(self, adapter: Any, name: str, *, strict_errors: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.strict_errors = bool(strict_errors)
        self._cards: dict[int, str] | None = None       # from the last installed_cards()

    @property
    def geometry(self) -> CardGeometry:
        """Geometry of the card model this driver drives."""
        return self.MATRIX.cards[self.CARD_MODEL]

    def _list(self, points: Sequence[Crosspoint]) -> str:
        return channel_list(points, self.MATRIX, self.geometry)

    def _action(self, command: str) -> None:
        self.write(command)
        self.check_set_errors()

    # ------------------------------------------------------------------ relays
    def close(self, points: Sequence[Crosspoint]) -> None:
        """Close ``points`` in addition to those already closed (``:ROUT:CLOS (@10101,…)``)."""
        self._action(f":ROUT:CLOS {self._list(points)}")

    def open(self, points: Sequence[Crosspoint]) -> None:
        """Open ``points`` (``:ROUT:OPEN (@10101,…)``)."""
        self._action(f":ROUT:OPEN {self._list(points)}")

    def exclusive_close(self, points: Sequence[Crosspoint]) -> None:
        """Close exactly ``points``, break before make: every card opened first, in one message
        ``:ROUT:OPEN:CARD ALL;:ROUT:CLOS (@…)``."""
        self._action(f":ROUT:OPEN:CARD ALL;:ROUT:CLOS {self._list(points)}")

    def switch(self, opening: Sequence[Crosspoint], closing: Sequence[Crosspoint]) -> None:
        """Break before make in one message: ``:ROUT:OPEN (@…);:ROUT:CLOS (@…)`` (either part may be
        empty; both empty sends nothing), then one error check."""
        parts = [f":ROUT:OPEN {self._list(opening)}"] if opening else []
        parts += [f":ROUT:CLOS {self._list(closing)}"] if closing else []
        if parts:
            self._action(";".join(parts))

    def open_all(self) -> None:
        """Normal configuration mode, then open every crosspoint of every card:
        ``:ROUT:FUNC NCON;:ROUT:OPEN:CARD ALL``."""
        self._action(":ROUT:FUNC NCON;:ROUT:OPEN:CARD ALL")

    # ------------------------------------------------------------------ state
    def installed_cards(self) -> dict[int, str]:
        """Card model per slot (``{1: "B2210A", 2: "", …}``), one ``:SYST:CTYP? c`` per slot.

        The reply names the model and revision; the first ``A1234B``-shaped word is taken, anything
        else (an empty slot) gives ``""``.
        """
        cards: dict[int, str] = {}
        for slot in self.MATRIX.slots:
            command = f":SYST:CTYP? {slot}"
            match = _MODEL.search(self.ask(command).upper())
            cards[slot] = match.group(1) if match else ""
        self._cards = cards
        return dict(cards)

    def closed(self) -> list[Crosspoint]:
        """The closed crosspoints of every installed card, sorted: ``:ROUT:CLOS:CARD? c`` per card
        (cards from the last :meth:`installed_cards`, which is asked first if it never was)."""
        cards = self._cards if self._cards is not None else self.installed_cards()
        points: list[Crosspoint] = []
        for slot, model in sorted(cards.items()):
            if not model:
                continue
            command = f":ROUT:CLOS:CARD? {slot}"
            found = parse_channel_list(self.ask(command), command)
            if any(p.card != slot for p in found):
                raise ReplyError(command, ",".join(map(str, found)), f"channels of card {slot} only")
            points += found
        return sorted(points)

    def shutdown(self) -> None:
        """Open every relay first (``:ROUT:OPEN:CARD ALL``), then select the normal configuration mode
        (``:ROUT:FUNC NCON``); each step in its own ``try``; no query needed; idempotent.
        Raises :class:`ShutdownError` listing the failed steps after all were tried."""
        self.shutdown_steps((":ROUT:OPEN:CARD ALL", ":ROUT:FUNC NCON"))


class KeysightB2200A(KeysightSwitchMainframe):
    """Keysight B2200A (or B2201A) switch mainframe with B2210A 14 × 12 matrix cards in slots 1–4."""

    CARD_MODEL = "B2210A"
    MATRIX = MatrixSpec(
        slots=(1, 2, 3, 4),
        cards={"B2210A": CardGeometry("B2210A", 14, 12, tuple(str(i) for i in range(1, 15)))},
    )

    def __init__(self, adapter: Any, name: str = "Keysight B2200A", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)
