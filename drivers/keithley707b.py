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

Over TSP-Link (:meth:`Keithley707B.over_tsplink`) the mainframe is node N of a TSP master (a 2600B) and has no
session of its own: in a computer-based TSP-Link system the computer talks to one node, the master, which reaches
every other node's commands as ``node[N].…`` (2600B Reference Manual, "TSP-Link system"). Every channel command is
then sent through the master's session as ``node[N].channel.…``; errors are the master's queue (each entry
carries the node it came from); identity is ``node[N].model``, ``.serialno``, ``.revision``; a power-on is the
node's ``status.standard.event`` PON bit, and a node gone from the master's node table (it rebooted: the network
must be initialised again) counts as powered on.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any

from pymeasure.instruments import Instrument

from .errors import InstrumentError, ReplyError, ShutdownError
from .roles import ROLE_MATRIX, CardGeometry, Crosspoint, MatrixSpec
from .tsp import TSPMixin, parse_number
from .visa_role import ESR_PON

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


@functools.lru_cache(maxsize=4096)
def _channel_text(channels: tuple[str | Crosspoint, ...]) -> str:
    """:func:`channel_list`, ``""`` for none; cached (a die's cells are routed with the same few lists again)."""
    return channel_list(channels) if channels else ""


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
    MODEL = "707B"          # the model field of its identity
    MATRIX = MatrixSpec(
        slots=tuple(SLOTS),
        cards={"7174A": CardGeometry("7174A", 8, 12, tuple(ROWS))},   # 7174A: 8×12 low-current matrix card
    )

    TSPLINK_NODE = True     # can be reached as node[N] of a TSP-Link master (over_tsplink)

    def __init__(self, adapter: Any, name: str = "Keithley 707B", *, strict_errors: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.strict_errors = bool(strict_errors)
        self.tsplink_node: int | None = None      # None: its own session; N: node[N] of tsplink_master
        self.tsplink_master: Any = None
        self._at = ""                             # prefix of every channel/slot command: "" or "node[N]."

    @classmethod
    def over_tsplink(cls, master: Any, node: int, name: str = "Keithley 707B", *,
                     strict_errors: bool = True) -> Keithley707B:
        """The mainframe as TSP-Link node ``node`` (1–64) of ``master`` (a TSP driver whose session it shares;
        see the module docstring). The master initialises the network (``tsplink.reset()``) before use."""
        if isinstance(node, bool) or not isinstance(node, int) or not 1 <= node <= 64:
            raise ValueError(f"node must be a TSP-Link node number 1-64, got {node!r}")
        inst = cls(master.adapter, name, strict_errors=strict_errors)
        inst.tsplink_node, inst.tsplink_master, inst._at = node, master, f"node[{node}]."
        return inst

    @property
    def id(self) -> str:
        """The identification string: ``*IDN?`` on its own session; over TSP-Link ``Keithley Instruments Inc.,
        Model <node[N].model>, <node[N].serialno>, <node[N].revision>`` (the *IDN? fields)."""
        if self.tsplink_node is None:
            return self.ask("*IDN?").strip()
        at = self._at
        command = f"print({at}model, {at}serialno, {at}revision)"
        reply = self.ask(command)
        parts = reply.strip("\r\n").split("\t")
        if len(parts) != 3:
            raise ReplyError(command, reply, "model, serial number and revision, TAB-separated")
        return f"Keithley Instruments Inc., Model {parts[0]}, {parts[1]}, {parts[2]}"

    def power_cycled(self) -> bool:
        """True if powered on since the last call: ``*ESR?`` PON bit on its own session; over TSP-Link the node's
        ``status.standard.event`` PON bit (read clears it), or True when node N is no longer in the master's
        node table (``print(node[N] ~= nil and node[N].status.standard.event or -1)`` → -1)."""
        if self.tsplink_node is None:
            return super().power_cycled()
        n = self.tsplink_node
        value = self.query_number(f"node[{n}] ~= nil and node[{n}].status.standard.event or -1")
        if value < 0:
            log.warning("%s: TSP-Link node %d is gone from the master's node table (rebooted)", self.name, n)
            return True
        return bool(int(value) & ESR_PON)

    def device_clear(self) -> None:
        """viClear of its own session; nothing over TSP-Link (the master's session is cleared by the master)."""
        if self.tsplink_node is None:
            super().device_clear()

    def disconnect(self) -> None:
        """Close its own session; over TSP-Link nothing (the session is the master's)."""
        if self.tsplink_node is None:
            super().disconnect()

    def reset(self) -> None:
        """``reset()`` (over TSP-Link ``node[N].reset()``), then ``*OPC?``."""
        self.write(f"{self._at}reset()")
        reply = self.ask("*OPC?")
        if reply.strip() != "1":
            raise ReplyError("*OPC?", reply, "1")

    def _relays(self, function: str, channels: Sequence[str | Crosspoint]) -> None:
        names = channel_list(channels)
        self.write(f"{self._at}channel.{function}('{names}')")
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
        parts = self.switch_commands(opening, closing)
        if parts:
            self.write(" ".join(parts))
            self.check_set_errors()

    def switch_checked(self, opening: Sequence[str | Crosspoint], closing: Sequence[str | Crosspoint],
                       read_back: bool) -> list[Crosspoint] | None:
        """:meth:`switch` with the error check (and, when ``read_back``, the closed set) in the same query:
        ``channel.open('…') channel.close('…') print(errorqueue.count[, channel.getclose('allslots')])``.
        A non-zero count drains the queue into :class:`InstrumentError`. Returns the closed set, sorted,
        when ``read_back``."""
        parts = self.switch_commands(opening, closing)
        parts.append(f"print(errorqueue.count, {self._at}channel.getclose('allslots'))" if read_back
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

    @staticmethod
    def channel_text(channels: Sequence[str | Crosspoint]) -> str:
        """A channel list as this matrix's commands take it (``1A01,2B03``; ``""`` for none), each name checked."""
        return _channel_text(tuple(channels))

    def switch_commands(self, opening: Sequence[str | Crosspoint], closing: Sequence[str | Crosspoint]) -> list[str]:
        """The TSP of :meth:`switch` (each name checked; nothing is sent): ``channel.open('…')`` then
        ``channel.close('…')``, either left out when its list is empty (``node[N].`` before each over TSP-Link)."""
        parts = [f"{self._at}channel.open('{channel_list(opening)}')"] if opening else []
        return parts + ([f"{self._at}channel.close('{channel_list(closing)}')"] if closing else [])

    def open_all(self) -> None:
        """Open every channel of every slot (``channel.open('allslots')``)."""
        self.write(f"{self._at}channel.open('allslots')")
        self.check_set_errors()

    @property
    def closed_channels(self) -> list[str]:
        """The closed channels of all slots, as the mainframe lists them (``print(channel.getclose('allslots'))``,
        over TSP-Link ``node[N].channel.getclose``; ``nil`` → [])."""
        return _closed_list(self.ask(f"print({self._at}channel.getclose('allslots'))"))

    def closed(self) -> list[Crosspoint]:
        """The closed crosspoints of all slots, sorted (one query, see :attr:`closed_channels`)."""
        return sorted(crosspoint(c) for c in self.closed_channels)

    def installed_cards(self) -> dict[int, str]:
        """Card model per slot 1–6 (``"7174A"``), ``""`` for an empty slot.

        One query: ``print(slot[1].idn, …, slot[6].idn)``; each idn is
        ``model,description,firmware,serial`` or ``Empty Slot``.
        """
        command = "print(" + ", ".join(f"{self._at}slot[{n}].idn" for n in SLOTS) + ")"
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
        """Open every relay (``channel.open('allslots')``); no query needed on its own session; idempotent. Over
        TSP-Link the master would only queue an error for a node it cannot reach, so the closed set is read back
        in the same query: ``if node[N] == nil then print('gone') else node[N].channel.open('allslots')
        print(node[N].channel.getclose('allslots')) end`` must print ``nil``.

        Raises :class:`ShutdownError` if the write failed (or, over TSP-Link, the node is gone or still reports
        closed relays).
        """
        n = self.tsplink_node
        step = (f"{self._at}channel.open('allslots')" if n is None else
                f"if node[{n}] == nil then print('gone') else node[{n}].channel.open('allslots') "
                f"print(node[{n}].channel.getclose('allslots')) end")
        try:
            if n is None:
                self.write(step)
            elif (reply := self.ask(step).strip()) != "nil":
                raise RuntimeError(f"TSP-Link node {n} is not in the master's node table" if reply == "gone"
                                   else f"still reports closed relays: {reply}")
        except Exception as exc:  # noqa: BLE001 - report, never hide
            log.error("%s: shutdown step %r failed: %s", self.name, step, exc)
            self.isShutdown = True
            raise ShutdownError(self.name, [(step, exc)]) from exc
        self.isShutdown = True
