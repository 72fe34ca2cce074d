"""Keithley 707B six-slot switching matrix mainframe (TSP).

Manual: Keithley Series 707B/708B Switching Matrix Reference Manual, 707B-901-01 (commands
``channel.close``, ``channel.open``, ``channel.exclusiveclose``, ``channel.getclose``,
``slot[N].idn``, ``errorqueue``, ``reset()``).

A channel (crosspoint) is ``<slot><row><column>``: slot 1–6, row A–H, two-digit column, e.g.
``1A01``. The driver validates every name locally (``^[1-6][A-H]\\d\\d$``) and rejects an empty list
before anything is written; the instrument still checks that the card in that slot has the row and
column. Lists go on the wire comma-separated inside single quotes: ``channel.close('1A01,2B03')``.
``channel.getclose`` replies with a ``;``-separated sorted list, or ``nil`` when nothing is closed.
Numbers print with ``format.asciiprecision`` 10 (``1.115000000e+03``).

Error queue: with ``strict_errors=True`` (default) every relay action is followed by one
``print(errorqueue.count)`` query (an invalid list closes nothing and queues 1115); the queue is then
drained (≤ 32 entries) into :class:`~rramlab.drivers.errors.InstrumentError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from pymeasure.instruments import Instrument

from .errors import InstrumentError, ReplyError, ShutdownError
from .roles import ROLE_MATRIX, CardGeometry, Crosspoint, MatrixSpec
from .tsp import TSPMixin, parse_number

log = logging.getLogger(__name__)

__all__ = ["Keithley707B", "channel_list", "channel_name", "crosspoint"]

CHANNEL = re.compile(r"^[1-6][A-H]\d\d$")
SLOTS = range(1, 7)
ROWS = "ABCDEFGH"


def channel_name(point: Crosspoint | str) -> str:
    """The 707B name of a crosspoint: ``Crosspoint(1, 1, 3)`` → ``1A03`` (a name is returned as it is)."""
    if isinstance(point, Crosspoint):
        if not (point.card in SLOTS and 1 <= point.row <= len(ROWS) and 1 <= point.column <= 99):
            raise ValueError(f"crosspoint must be slot 1-6, row 1-8 (A-H), column 1-99, got {point}")
        return f"{point.card}{ROWS[point.row - 1]}{point.column:02d}"
    return point


def crosspoint(name: str) -> Crosspoint:
    """``1A03`` → ``Crosspoint(1, 1, 3)``."""
    return Crosspoint(int(name[0]), ROWS.index(name[1].upper()) + 1, int(name[2:]))


def channel_list(channels: Sequence[str | Crosspoint]) -> str:
    """Validate channel names and join them for a TSP channel list (``1A01,2B03``).

    Raises ValueError for an empty list, a bare string, or any name not matching
    ``^[1-6][A-H]\\d\\d$`` (slot 1–6, row A–H, two-digit column).
    """
    if isinstance(channels, str):
        raise ValueError(f"channels must be a sequence of channel names such as ['1A01'], got the str {channels!r}")
    names = [channel_name(c) for c in channels]
    if not names:
        raise ValueError("channels must name at least one channel, got an empty list")
    bad = [c for c in names if not isinstance(c, str) or not CHANNEL.match(c)]
    if bad:
        raise ValueError(f"channels must match <slot 1-6><row A-H><column 00-99> (e.g. '1A01'), got {bad!r}")
    return ",".join(names)


def _closed_list(reply: str) -> list[str]:
    text = reply.strip()
    if text == "nil":
        return []
    names = [c.strip() for c in re.split(r"[;,]", text)]
    if not all(CHANNEL.match(c) for c in names):
        raise ReplyError("print(channel.getclose('allslots'))", reply, "nil or a ';'-separated channel list")
    return names


class Keithley707B(TSPMixin, Instrument):
    """Keithley 707B switching matrix mainframe (TSP).

    ``adapter``: a VISA resource name (``"GPIB0::16::INSTR"``), GPIB address or pymeasure adapter.
    Terminations are LF both ways and the timeout 10 s unless given; nothing is sent on connect.
    ``strict_errors``: check the error queue after each relay action (one query).
    """

    ROLES = frozenset({ROLE_MATRIX})
    MATRIX = MatrixSpec(
        slots=tuple(SLOTS),
        cards={"7174A": CardGeometry("7174A", 8, 12, tuple(ROWS))},   # 7174A: 8×12 low-current matrix card
    )

    closed_channels = Instrument.measurement(
        "print(channel.getclose('allslots'))",
        """Get the closed channels of all slots, sorted (``channel.getclose('allslots')``; ``nil`` → []).""",
        cast=str, maxsplit=0, get_process=_closed_list,
    )

    def __init__(self, adapter: Any, name: str = "Keithley 707B", *, strict_errors: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.strict_errors = bool(strict_errors)

    def _relays(self, function: str, channels: Sequence[str | Crosspoint]) -> None:
        names = channel_list(channels)
        self.write(f"channel.{function}('{names}')")
        self.check_set_errors()

    def close(self, channels: Sequence[str | Crosspoint]) -> None:
        """Close ``channels`` in addition to those already closed (``channel.close('1A01,2B03')``)."""
        self._relays("close", channels)

    def open(self, channels: Sequence[str | Crosspoint]) -> None:
        """Open ``channels`` (``channel.open('1A01,2B03')``)."""
        self._relays("open", channels)

    def exclusive_close(self, channels: Sequence[str | Crosspoint]) -> None:
        """Close exactly ``channels``, opening every other (``channel.exclusiveclose('1A01,2B03')``)."""
        self._relays("exclusiveclose", channels)

    def switch(self, opening: Sequence[str | Crosspoint], closing: Sequence[str | Crosspoint]) -> None:
        """Break before make in one write: ``channel.open('…') channel.close('…')`` (either part may be
        empty), then one error check. An invalid list queues 1115 and that call changes nothing."""
        parts = [f"channel.open('{channel_list(opening)}')"] if opening else []
        parts += [f"channel.close('{channel_list(closing)}')"] if closing else []
        if parts:
            self.write(" ".join(parts))
            self.check_set_errors()

    def switch_checked(self, opening: Sequence[str | Crosspoint], closing: Sequence[str | Crosspoint],
                       read_back: bool) -> list[Crosspoint] | None:
        """:meth:`switch` with the error check (and, when ``read_back``, the closed set) in the same query:
        ``channel.open('…') channel.close('…') print(errorqueue.count[, channel.getclose('allslots')])``.
        A non-zero count drains the queue into :class:`InstrumentError`. Returns the closed set, sorted,
        when ``read_back``."""
        parts = [f"channel.open('{channel_list(opening)}')"] if opening else []
        parts += [f"channel.close('{channel_list(closing)}')"] if closing else []
        parts.append("print(errorqueue.count, channel.getclose('allslots'))" if read_back
                     else "print(errorqueue.count)")
        command = " ".join(parts)
        reply = self.fast_ask(command)
        values = reply.strip("\r\n").split("\t")
        if len(values) != (2 if read_back else 1):
            raise ReplyError(command, reply, "the error count" + (" and the closed list, TAB-separated"
                                                                   if read_back else ""))
        if parse_number(values[0], command) != 0.0:
            self.check_errors()
            raise InstrumentError([], self.name, f"errorqueue.count was {values[0]} after {command!r}")
        return sorted(crosspoint(c) for c in _closed_list(values[1])) if read_back else None

    def open_all(self) -> None:
        """Open every channel of every slot (``channel.open('allslots')``)."""
        self.write("channel.open('allslots')")
        self.check_set_errors()

    def closed(self) -> list[Crosspoint]:
        """The closed crosspoints of all slots, sorted (one query, see :attr:`closed_channels`)."""
        return sorted(crosspoint(c) for c in self.closed_channels)

    def installed_cards(self) -> dict[int, str]:
        """Card model per slot 1–6 (``"7174A"``), ``""`` for an empty slot.

        One query: ``print(slot[1].idn, …, slot[6].idn)``; each idn is
        ``model,description,firmware,serial`` or ``Empty Slot``.
        """
        command = "print(" + ", ".join(f"slot[{n}].idn" for n in SLOTS) + ")"
        reply = self.ask(command)
        parts = reply.strip("\r\n").split("\t")
        if len(parts) != len(SLOTS):
            raise ReplyError(command, reply, f"{len(SLOTS)} TAB-separated slot identities")
        cards: dict[int, str] = {}
        for slot, idn in zip(SLOTS, parts, strict=True):
            text = idn.strip()
            cards[slot] = "" if not text or text.lower().startswith("empty") else text.split(",")[0].strip()
        return cards

    def shutdown(self) -> None:
        """Open every relay (``channel.open('allslots')``); no query needed; idempotent.

        Raises :class:`ShutdownError` if the write failed.
        """
        step = "channel.open('allslots')"
        try:
            self.write(step)
        except Exception as exc:  # noqa: BLE001 - report, never hide
            log.error("%s: shutdown step %r failed: %s", self.name, step, exc)
            self.isShutdown = True
            raise ShutdownError(self.name, [(step, exc)]) from exc
        self.isShutdown = True
