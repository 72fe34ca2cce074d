"""Emulated Keithley 707B switching matrix mainframe (TSP) with 7174A-style matrix cards.

Channels are ``<slot><row><column>`` (``1A01``: slot 1, row A, column 1); lists separate items with
``,`` or ``;`` and accept rectangular ranges ``1A01:1C04``, plus ``slotN`` and ``allslots`` where the
manual allows them (707B/708B Reference Manual: ``channel.close``, ``.open``, ``.exclusiveclose``,
``.getclose``, ``.reset``). A list with any invalid item — bad syntax, an empty slot, a row or column
the card does not have, ``slotX`` in a close — queues an error and changes nothing.

Rows are bussed to the mainframe's row connectors; the bench file says which instrument terminal
each row carries and which die pad each card column reaches. A die with more lines than one
mainframe's columns (6 slots × 12) is reached with more mainframes on their own GPIB addresses
(a 64×64 1T1R die needs 192 columns: 16 cards in 3 mainframes), each listed in the bench file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..models import CardShape, emulator
from .engine import NIL, TspEngine, TspError

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig
    from ..faults import Fault

CARDS = {"7174A": ("8x12 Low Current Matrix Card", 8, 12)}
ROW_LETTERS = tuple("ABCDEFGH")
_ITEM = re.compile(r"^([1-6])([A-Ha-h])(\d{2})$")
INVALID_CHANNEL = (1115, "Parameter error, invalid channel list")
Crosspoint = tuple[int, str, int]


@emulator("707B")
class Keithley707B(TspEngine):
    """The 707B mainframe with its installed cards."""

    model = "707B"
    default_precision = 10
    KIND = "matrix"
    SLOTS = (1, 2, 3, 4, 5, 6)
    CARDS = {m: CardShape(d, r, c, ROW_LETTERS[:r]) for m, (d, r, c) in CARDS.items()}

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        name, resource, cards = config.name, config.resource, config.cards
        self.serial, self.firmware = serial, firmware = config.serial, config.firmware
        for slot, card in cards.items():
            if card not in CARDS:
                raise ValueError(f"{name}: card {card!r} in slot {slot} is not emulated; known: {sorted(CARDS)}")
            if not 1 <= slot <= 6:
                raise ValueError(f"{name}: slot {slot} outside 1..6")
        self.cards = dict(cards)
        self.closed: set[Crosspoint] = set()
        self.failing: set[Crosspoint] = set()
        self.fail_next = False
        self.connectrule = 1
        super().__init__(bench, name, resource, f"Keithley Instruments Inc., Model {self.model}, {serial}, {firmware}")

    def build_object_model(self) -> None:
        self.define("channel", {
            "connectrule": (lambda: self.connectrule, lambda v: setattr(self, "connectrule", int(v))),
            "connectsequential": (lambda: 0, lambda v: None),
        }, constants={"BREAK_BEFORE_MAKE": 1, "MAKE_BEFORE_BREAK": 2, "OFF": 0},
            functions={"close": self.close, "open": self.open, "exclusiveclose": self.exclusiveclose,
                       "getclose": self.getclose, "reset": self.reset_channels,
                       "getcount": lambda spec: float(len(self.parse(spec, allow_slots=True)))})
        self.define_table("slot")
        for k in range(1, 7):
            card = self.cards.get(k)
            idn = (f"{card},{CARDS[card][0]},01.40a,{self.serial}{k}" if card else "Empty Slot")
            self.define(f"slot.{k}", {"idn": (lambda idn=idn: idn, None),
                                      "rows": (lambda c=card: CARDS[c][1] if c else 0, None),
                                      "columns": (lambda c=card: CARDS[c][2] if c else 0, None)})

    # ----------------------------------------------------------------- parsing
    def parse(self, spec: Any, *, allow_slots: bool) -> set[Crosspoint]:
        """Crosspoints named by a channel list; raises the instrument error on any bad item."""
        if spec is None:
            raise TspError(*INVALID_CHANNEL)
        text = str(spec).strip()
        out: set[Crosspoint] = set()
        if not text:
            return out
        for raw in re.split(r"[,;]", text):
            item = raw.strip()
            low = item.lower()
            if low == "allslots" or re.fullmatch(r"slot[1-6]", low):
                if not allow_slots:
                    raise TspError(*INVALID_CHANNEL)
                slots = self.cards if low == "allslots" else [int(low[4:])]
                for s in slots:
                    if s not in self.cards:
                        raise TspError(*INVALID_CHANNEL)
                    _, nrow, ncol = CARDS[self.cards[s]]
                    out |= {(s, chr(65 + r), c) for r in range(nrow) for c in range(1, ncol + 1)}
                continue
            if ":" in item:
                a, _, b = item.partition(":")
                p, q = self._item(a), self._item(b)
                if p[0] != q[0]:
                    raise TspError(*INVALID_CHANNEL)
                r0, r1 = sorted((p[1], q[1]))
                c0, c1 = sorted((p[2], q[2]))
                out |= {(p[0], chr(r), c) for r in range(ord(r0), ord(r1) + 1) for c in range(c0, c1 + 1)}
            else:
                out.add(self._item(item))
        return out

    def _item(self, item: str) -> Crosspoint:
        m = _ITEM.match(item.strip())
        if not m:
            raise TspError(*INVALID_CHANNEL)
        slot, row, col = int(m.group(1)), m.group(2).upper(), int(m.group(3))
        card = self.cards.get(slot)
        if card is None:
            raise TspError(*INVALID_CHANNEL)
        _, nrow, ncol = CARDS[card]
        if ord(row) - 65 >= nrow or not 1 <= col <= ncol:
            raise TspError(*INVALID_CHANNEL)
        return slot, row, col

    @staticmethod
    def name_of(point: Crosspoint) -> str:
        return f"{point[0]}{point[1]}{point[2]:02d}"

    # ---------------------------------------------------------------- actions
    def _apply(self, new: set[Crosspoint]) -> None:
        changed = new ^ self.closed
        if not changed:
            return
        now = self.clock.now
        for point in sorted(changed):
            term = self.bench.circuit.terminal_of_row(self.name, point[1])
            src = self.bench.circuit.sources.get(term) if term else None
            if src is not None and src.live:
                self.bench.events.add(now, self.name, "hot_switch", channel=self.name_of(point),
                                      action="close" if point in new else "open", terminal=term,
                                      level=src.levelv)
        closing = bool(new - self.closed)
        self.closed = new
        self.clock.advance(self.timing.relay_settle if closing else self.timing.relay_open)
        self.bench.events.add(self.clock.now, self.name, "relays", closed=sorted(self.name_of(p) for p in new))
        self.bench.circuit.set_closed(self.name, frozenset(new))

    def close(self, spec: Any) -> None:
        points = self.parse(spec, allow_slots=False)
        self._apply(self.closed | (points - self._stuck(points)))

    def open(self, spec: Any) -> None:
        points = self.parse(spec, allow_slots=True)
        self._apply(self.closed - points)

    def exclusiveclose(self, spec: Any) -> None:
        points = self.parse(spec, allow_slots=False)
        self._apply(points - self._stuck(points))

    def _stuck(self, points: set[Crosspoint]) -> set[Crosspoint]:
        """Crosspoints of this close that a relay_fail fault keeps open (reported as an event)."""
        stuck = points.copy() if self.fail_next else points & self.failing
        self.fail_next = False
        if stuck:
            self.failing -= stuck
            self.bench.events.add(self.clock.now, self.name, "fault_relay_fail",
                                  channels=sorted(self.name_of(p) for p in stuck))
        return stuck

    def getclose(self, spec: Any) -> Any:
        points = self.parse(spec, allow_slots=True) & self.closed
        if not points:
            return NIL
        return ";".join(self.name_of(p) for p in sorted(points))

    def reset_channels(self, spec: Any = "all") -> None:
        text = str(spec).strip().lower() if spec is not None else "all"
        points = self.closed.copy() if text == "all" else self.parse(spec, allow_slots=True)
        self._apply(self.closed - points)

    def reset(self, *_: Any) -> None:
        super().reset()
        self.connectrule = 1
        self._apply(set())

    def power_on(self) -> None:
        self.closed = set()
        self.bench.circuit.set_closed(self.name, frozenset())
        super().power_on()

    def on_fault(self, fault: Fault) -> None:
        if fault.kind == "relay_fail":
            names = fault.params.get("channels")
            if names:
                self.failing |= self.parse(names, allow_slots=False)
            else:
                self.fail_next = True
        else:
            super().on_fault(fault)
