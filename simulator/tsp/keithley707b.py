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

Replies and their evidence (Models 707B and 708B Switching Matrix Reference Manual, 707B-901-01
Rev. A, section 7 "Command reference"; [M] manual, [C] code written against a real 707B or a TSP
sibling, [U] unverified — capture on hardware):

- ``channel.getstate(list[, mask])`` → comma-delimited state per channel in list order,
  ``channel.IND_CLOSED`` = 1 the only indicator; channel patterns accepted [M 7-34]; each state
  printed as an integer string ``1``/``0`` [U]; a mask ANDs each state [M].
- ``channel.gettype(list)`` → comma-delimited ``1`` (``channel.TYPE_SWITCH``) per channel [M 7-35].
- ``channel.pattern.setimage(list, name)`` overwrites an existing name, accepts patterns in the
  list and an empty list; nothing is created on an error [M 7-39]. Names: letters, digits, ``_``,
  starting with a letter, case sensitive [M Series 3700 13-65, same firmware family; U for 707B].
- ``channel.pattern.getimage(names)`` → slot-row-column channels joined by ``,``; several names
  (``"a,b"``) → one group per name joined by ``;`` [M 7-39 example
  ``1B01,1B03,1B05;1A01,1A02,1A03,1A04,1A05``]; channels listed in slot, row, column order [M
  examples]; unknown name → ``nil`` [M Series 3700 13-63; U for 707B].
- ``channel.pattern.delete(name)``: an unknown name is an error [M 7-38]; code 1115 [U].
- ``channel.pattern.catalog()`` → iterator over the names for ``for name in … do`` [M 7-37];
  order [U] (sorted here).
- ``channel.setdelay(list, seconds)`` / ``channel.getdelay(list)``: default 0; a pattern in the list
  is an error, ``slotX``/``allslots`` allowed; getdelay → comma-delimited, in list order, ``nil`` on
  an error [M 7-29, 7-44]; a close incurs settle time then the longest user delay of the channels
  it closes, an open none [M 7-29, 7-35]; delays printed as Lua ``%.14g`` numbers [U]; negative
  delay → 1102 "Parameter too small" [U code].
- Channel patterns and delays are cleared by ``reset()`` and by ``channel.reset`` of their
  channels [M "Affected by: System reset, Channel reset"].
- ``status.condition`` (the status byte) and ``status.standard.*`` (``.event`` is the *ESR? register, PON bit 128
  after a power-on; read clears) [M 7, appendix C].
- ``beeper.enable`` (``beeper.ON`` 1 default, ``beeper.OFF`` 0), ``beeper.beep(duration,
  frequency)`` [M 7-xx beeper; ranges 0.001–100 s, 20–8000 Hz from the 2600B manual, U for 707B];
  the beep does not hold up the command [U].
- ``errorqueue.next()`` on an empty queue → ``0, "Queue Is Empty", 0, 0``: code 0 and severity 0
  "no entries" [M 7-86]; node 0 [C: a 2600A driver used on hardware stops its drain loop on
  ``0.00000e+00\tQueue Is Empty\t0.00000e+00\t0.00000e+00``; comet's K707B emulator replies node
  0; U for 707B firmware]. comet's K707B driver stops on code 0.
- Unknown names under ``channel``/``channel.pattern``/``beeper`` read as nil, so calling one fails
  as a TSP runtime error -286 "attempt to call field 'x' (a nil value)" as any TSP instrument [C].
- Scripts (``script.new()``, ``script.anonymous.*``, scriptVar ``.name``/``.source``/``.run()``/``.save()``/
  ``.list()``, ``script.delete()``, ``script.user.catalog()``) and TSP-Link (``tsplink.state/node/master/group``,
  ``tsplink.reset()``, ``node[N]``, ``node[N].execute/getglobal/setglobal``) are the engine's, as on the 2636B
  [M 7: the 707B manual documents the same commands]; see ``simulator/tsp/engine.py`` and the 2636B docstring for
  what is [U]. With ``tsplink_node`` in the bench file the 707B is a node of the bench's TSP-Link network: a
  2636B master drives it through ``node[N].channel.*``, and its own errors carry errorNode N (errorqueue.next():
  "the node number where the error originated") [M].
- Writing an unknown or read-only attribute: -286 with our own text [U] (see the engine module docstring).
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

def _lua_number(value: float) -> str:
    """A number as Lua's tostring gives it (``%.14g``)."""
    return f"{value:.14g}"


CARDS = {"7174A": ("8x12 Low Current Matrix Card", 8, 12)}
ROW_LETTERS = tuple("ABCDEFGH")
_ITEM = re.compile(r"^([1-6])([A-Ha-h])(\d{2})$")
_PATTERN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
IND_CLOSED = 1
TYPE_SWITCH = 1
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
        self.patterns: dict[str, tuple[Crosspoint, ...]] = {}
        self._expanded: dict[tuple[str, bool, bool], tuple[Crosspoint, ...]] = {}   # parsed lists (no patterns)
        self.delays: dict[Crosspoint, float] = {}
        self.beeper_enable = 1
        super().__init__(bench, name, resource, f"Keithley Instruments Inc., Model {self.model}, {serial}, {firmware}")

    def build_object_model(self) -> None:
        self.define("channel", {
            "connectrule": (lambda: self.connectrule, lambda v: setattr(self, "connectrule", int(v))),
            "connectsequential": (lambda: 0, lambda v: None),
        }, constants={"BREAK_BEFORE_MAKE": 1, "MAKE_BEFORE_BREAK": 2, "OFF": 0,
                      "IND_CLOSED": IND_CLOSED, "TYPE_SWITCH": TYPE_SWITCH},
            functions={"close": self.close, "open": self.open, "exclusiveclose": self.exclusiveclose,
                       "getclose": self.getclose, "reset": self.reset_channels,
                       "getcount": lambda spec: float(len(self.parse(spec, allow_slots=True))),
                       "getstate": self.getstate, "gettype": self.gettype,
                       "setdelay": self.setdelay, "getdelay": self.getdelay})
        self.define("channel.pattern", {}, functions={
            "setimage": self.pattern_setimage, "getimage": self.pattern_getimage,
            "delete": self.pattern_delete})
        # catalog() returns a Lua iterator (for name in channel.pattern.catalog() do … end)
        self._functions["channel.pattern.catalog"] = lambda: "\n".join(sorted(self.patterns))
        self.lua.execute(
            "local f = __rr_fn('channel.pattern.catalog')\n"
            "rawset(channel.pattern, 'catalog', function()\n"
            "  local names, s = {}, f()\n"
            "  for n in string.gmatch(s, '[^\\n]+') do names[#names + 1] = n end\n"
            "  local i = 0\n"
            "  return function() i = i + 1; return names[i] end\n"
            "end)")
        # status model (707B Reference Manual section 7 and appendix C): the status byte and the standard event
        # register, whose PON bit a TSP-Link master reads as node[N].status.standard.event [M]
        self.define("status", {"condition": (self.status_byte, None)})
        self.build_standard_status()
        self.define("beeper", {"enable": (lambda: self.beeper_enable, self._set_beeper_enable)},
                    constants={"ON": 1, "OFF": 0}, functions={"beep": self.beep})
        self.define_table("slot")
        for k in range(1, 7):
            card = self.cards.get(k)
            idn = (f"{card},{CARDS[card][0]},01.40a,{self.serial}{k}" if card else "Empty Slot")
            self.define(f"slot.{k}", {"idn": (lambda idn=idn: idn, None),
                                      "rows": (lambda c=card: CARDS[c][1] if c else 0, None),
                                      "columns": (lambda c=card: CARDS[c][2] if c else 0, None)})

    # ----------------------------------------------------------------- parsing
    def parse(self, spec: Any, *, allow_slots: bool, allow_patterns: bool = True) -> set[Crosspoint]:
        """Crosspoints named by a channel list; raises the instrument error on any bad item."""
        return set(self.expand(spec, allow_slots=allow_slots, allow_patterns=allow_patterns))

    def expand(self, spec: Any, *, allow_slots: bool, allow_patterns: bool = True) -> list[Crosspoint]:
        """Crosspoints of a channel list in list order (ranges and slots row by row [U]), no repeats. Lists
        are parsed once while no pattern is defined (a pattern name could change what a list means)."""
        if spec is None:
            raise TspError(*INVALID_CHANNEL)
        text = str(spec).strip()
        if self.patterns:
            return self._expand(text, allow_slots, allow_patterns)
        key = (text, allow_slots, allow_patterns)
        hit = self._expanded.get(key)
        if hit is None:
            if len(self._expanded) >= 512:
                self._expanded.clear()
            hit = self._expanded[key] = tuple(self._expand(text, allow_slots, allow_patterns))
        return list(hit)

    def _expand(self, text: str, allow_slots: bool, allow_patterns: bool) -> list[Crosspoint]:
        out: dict[Crosspoint, None] = {}
        if not text:
            return []
        for raw in re.split(r"[,;]", text):
            item = raw.strip()
            low = item.lower()
            if low == "allslots" or re.fullmatch(r"slot[1-6]", low):
                if not allow_slots:
                    raise TspError(*INVALID_CHANNEL)
                slots = sorted(self.cards) if low == "allslots" else [int(low[4:])]
                for s in slots:
                    if s not in self.cards:
                        raise TspError(*INVALID_CHANNEL)
                    _, nrow, ncol = CARDS[self.cards[s]]
                    out.update(dict.fromkeys((s, chr(65 + r), c) for r in range(nrow) for c in range(1, ncol + 1)))
                continue
            if item in self.patterns and not _ITEM.match(item):
                if not allow_patterns:
                    raise TspError(*INVALID_CHANNEL)
                out.update(dict.fromkeys(self.patterns[item]))
                continue
            if ":" in item:
                a, _, b = item.partition(":")
                p, q = self._item(a), self._item(b)
                if p[0] != q[0]:
                    raise TspError(*INVALID_CHANNEL)
                r0, r1 = sorted((p[1], q[1]))
                c0, c1 = sorted((p[2], q[2]))
                out.update(dict.fromkeys((p[0], chr(r), c) for r in range(ord(r0), ord(r1) + 1)
                                         for c in range(c0, c1 + 1)))
            else:
                out[self._item(item)] = None
        return list(out)

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
        closing = new - self.closed
        self.closed = new
        if closing:   # settle time, then the longest user delay of the closing channels [M 7-29]
            self.clock.advance(self.timing.relay_settle + max(self.delays.get(p, 0.0) for p in closing))
        else:
            self.clock.advance(self.timing.relay_open)
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
        if text in ("all", "allslots"):
            self.patterns.clear()
            self.delays.clear()
        else:
            for p in points:
                self.delays.pop(p, None)
            self.patterns = {n: pts for n, pts in self.patterns.items() if not set(pts) & points}
        self._apply(self.closed - points)

    def reset(self, *_: Any) -> None:
        super().reset()
        self.connectrule = 1
        self.patterns.clear()
        self.delays.clear()
        self._apply(set())

    # ------------------------------------------------------------- queries
    def getstate(self, spec: Any, mask: Any = None) -> str:
        m = int(mask) if mask is not None else 0xFFFF
        return ",".join(str((IND_CLOSED if p in self.closed else 0) & m)
                        for p in self.expand(spec, allow_slots=True))

    def gettype(self, spec: Any) -> str:
        return ",".join(str(TYPE_SWITCH) for _ in self.expand(spec, allow_slots=True, allow_patterns=False))

    def setdelay(self, spec: Any, value: Any) -> None:
        if value is None:
            raise TypeError("delay")
        delay = float(value)
        points = self.expand(spec, allow_slots=True, allow_patterns=False)
        if not delay >= 0.0:
            raise TspError(1102, "Parameter too small")
        for p in points:
            self.delays[p] = delay

    def getdelay(self, spec: Any) -> Any:
        try:
            points = self.expand(spec, allow_slots=True, allow_patterns=False)
        except TspError as e:   # error queued and a nil response [M 7-29]
            self.queue_error(e.code, e.message)
            return NIL
        return ",".join(_lua_number(self.delays.get(p, 0.0)) for p in points)

    # ------------------------------------------------------------ patterns
    def pattern_setimage(self, spec: Any, name: Any) -> None:
        if not isinstance(name, str) or not _PATTERN_NAME.match(name) or _ITEM.match(name) \
                or re.fullmatch(r"(?i)slot[1-6]|allslots", name):
            raise TspError(*INVALID_CHANNEL)
        points = self.expand(spec if spec is not None else "", allow_slots=True)
        self.patterns[name] = tuple(sorted(points))

    def pattern_getimage(self, names: Any) -> Any:
        groups = []
        for name in str(names if names is not None else "").split(","):
            pts = self.patterns.get(name.strip())
            if pts is None:
                return NIL
            groups.append(",".join(self.name_of(p) for p in pts))
        return ";".join(groups)

    def pattern_delete(self, name: Any) -> None:
        if name not in self.patterns:
            raise TspError(*INVALID_CHANNEL)
        del self.patterns[name]

    # -------------------------------------------------------------- beeper
    def _set_beeper_enable(self, value: Any) -> None:
        v = int(value)
        if v not in (0, 1):
            raise TspError(1101 if v > 1 else 1102, "Parameter too big" if v > 1 else "Parameter too small")
        self.beeper_enable = v

    def beep(self, duration: Any, frequency: Any) -> None:
        d, f = float(duration), float(frequency)
        if not 0.001 <= d <= 100 or not 20 <= f <= 8000:
            raise TspError(1101 if d > 100 or f > 8000 else 1102,
                           "Parameter too big" if d > 100 or f > 8000 else "Parameter too small")
        if self.beeper_enable:
            self.bench.events.add(self.clock.now, self.name, "beep", duration=d, frequency=f)

    def _errorqueue_next(self) -> tuple[float, str, float, float]:
        if not len(self.errors):
            return 0.0, "Queue Is Empty", 0.0, 0.0    # node 0 when empty (see module docstring)
        return super()._errorqueue_next()

    def power_on(self) -> None:
        self.closed = set()
        self.patterns = {}
        self.delays = {}
        self.beeper_enable = 1
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
