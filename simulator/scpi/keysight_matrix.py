"""Shared core of the Keysight (Agilent) low-leakage switch mainframes: B2200A/B2201A and E5250A.

Both speak the same SCPI dialect (the B2200's ``:SYST:CCON?`` exists "to keep compatibility with the
E5250A"): channels ``cIIOO`` (card digit 0-4, two-digit input, two-digit output) in ``(@…)`` lists
with ``,`` and ``:`` ranges; normal (``NCON``, cards 1-4 addressed separately) or auto (``ACON``,
card 0, outputs numbered across the installed cards) channel configuration; per-card connection
rule (FREE / single route) and sequence (NSEQ / BBM / MBBR); bias mode, couple mode and (B2200)
auto-ground mode. The per-instrument modules (:mod:`.keysight_b2200a`, :mod:`.keysight_e5250a`)
hold the evidence for each reply format and error; this module holds the behaviour.

Relay state is kept as physical crosspoints ``(slot, input, output on card)``. What the matrix
reports — ``:CLOS:CARD?``, ``:CLOS?`` and the bench circuit — is the *effective* set: the
connections the host made plus the bias / ground port connections the modes add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..models import CardShape
from .engine import Call, ChannelRange, Param, ScpiError, ScpiInstrument

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig
    from ..faults import Fault

Point = tuple[int, int, int]            # (slot, input, output on that card)
Channel = tuple[int, int, int]          # (card digit as addressed, input, output as addressed)

_DIGITS = re.compile(r"^\d{1,5}$")


@dataclass
class CardSettings:
    """Settings of one addressable card (a slot in NCON, all cards together as card 0 in ACON)."""

    rule: str = "FREE"                          # FREE | SROU
    sequence: str = "BBM"                       # NSEQ | BBM | MBBR
    bias: bool = False
    bias_port: int = 10
    bias_disabled: set[int] = field(default_factory=set)      # outputs (as addressed) bias-disabled
    ground: bool = False
    ground_port: int = 12
    ground_enabled: set[int] = field(default_factory=set)     # outputs (as addressed) ground-enabled
    unused_inputs: list[int] = field(default_factory=list)    # ground-enabled (unused) inputs
    couple: bool = False
    couple_ports: list[int] = field(default_factory=list)     # odd inputs of coupled pairs


class KeysightSwitchMatrix(ScpiInstrument):
    """Behaviour shared by the Keysight low-leakage switch mainframes (see module docstring).

    Subclasses set ``CARDS`` (card model → :class:`CardShape`), ``INPUTS``, ``DEFAULT_CONFIG``,
    ``HAS_GROUND_MODE``, the error codes below and the relay times.
    """

    KIND: ClassVar[str] = "matrix"
    SLOTS: ClassVar[tuple[int, ...]] = (1, 2, 3, 4)
    CARDS: ClassVar[dict[str, CardShape]] = {}
    INPUTS: ClassVar[int] = 14
    OUTPUTS_PER_CARD: ClassVar[int] = 12
    DEFAULT_CONFIG: ClassVar[str] = "ACON"
    HAS_GROUND_MODE: ClassVar[bool] = True
    DEFAULT_BIAS_PORT: ClassVar[int] = 10
    DEFAULT_GROUND_PORT: ClassVar[int] = 12
    COUPLE_PORTS: ClassVar[tuple[int, ...]] = (1, 3, 5, 7, 9, 11, 13)
    # instrument error codes (positive: the instrument's own, DDE)
    ERR_BIAS_PORT: ClassVar[int] = 3014
    ERR_GROUND_PORT: ClassVar[int] = 3022
    ERR_CHANNEL: ClassVar[int] = -222          # channel outside the installed cards / ports
    ERR_CARD: ClassVar[int] = -222             # card number not installed / not valid in this mode
    ERR_MODE_CONFLICT: ClassVar[int] = -221    # bias and ground mode both ON, couple pair past the last port
    RELAY_CLOSE: ClassVar[float] = 5e-3        # s, overridden per instrument (evidence there)
    RELAY_OPEN: ClassVar[float] = 5e-3         # s

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        for slot, card in config.cards.items():
            if slot not in self.SLOTS:
                raise ValueError(f"{config.name}: slot {slot} outside {self.SLOTS}")
            if card not in self.CARDS:
                raise ValueError(f"{config.name}: card {card!r} in slot {slot} is not emulated for the "
                                 f"{config.model}; known: {sorted(self.CARDS)}")
        self.cards: dict[int, str] = dict(sorted(config.cards.items()))
        self.config_mode = self.DEFAULT_CONFIG
        self.settings: dict[int, CardSettings] = {}
        self.user: set[Point] = set()          # connections the host made
        self.closed: set[Point] = set()        # effective (reported, and what the circuit sees)
        self.failing: set[Point] = set()
        self.fail_next = False
        self.flags: dict[str, str] = {}        # accepted front-panel/system settings (beeper, LCD, ...)
        super().__init__(bench, config)

    # ================================================================= addressing
    def groups(self) -> list[int]:
        """Addressable card numbers in the present channel configuration mode."""
        return [0] if self.config_mode == "ACON" else list(self.cards)

    def outputs_of(self, group: int) -> int:
        return self.OUTPUTS_PER_CARD * (len(self.cards) if group == 0 else 1)

    def inputs_of(self, group: int) -> int:
        return min(self.CARDS[c].rows for c in self.cards.values()) if group == 0 else \
            self.CARDS[self.cards[group]].rows

    def physical(self, ch: Channel) -> Point:
        card, inp, out = ch
        if card == 0:
            slots = list(self.cards)
            return slots[(out - 1) // self.OUTPUTS_PER_CARD], inp, (out - 1) % self.OUTPUTS_PER_CARD + 1
        return card, inp, out

    def logical(self, p: Point) -> Channel:
        slot, inp, out = p
        if self.config_mode == "ACON":
            return 0, inp, list(self.cards).index(slot) * self.OUTPUTS_PER_CARD + out
        return p

    @staticmethod
    def channel_text(ch: Channel) -> str:
        return f"{ch[0]}{ch[1]:02d}{ch[2]:02d}"

    def _number(self, text: str) -> Channel:
        if not _DIGITS.match(text):
            raise ScpiError(-260)
        v = int(text)
        return v // 10000, (v // 100) % 100, v % 100

    def _check(self, ch: Channel) -> Channel:
        card, inp, out = ch
        if card not in self.groups():
            raise ScpiError(self.ERR_CHANNEL)
        if not 1 <= inp <= self.inputs_of(card) or not 1 <= out <= self.outputs_of(card):
            raise ScpiError(self.ERR_CHANNEL)
        return ch

    def expand(self, items: list[ChannelRange], *, check_inputs: bool = True) -> list[Channel]:
        """Channels named by a parsed list, in order; a range ``a:b`` (same card) is the rectangle of
        inputs × outputs between its corners. Any bad item raises before anything is used."""
        out: list[Channel] = []
        for item in items:
            first = self._number(item.first)
            if item.last is None:
                out.append(self._check_any(first, check_inputs))
                continue
            last = self._number(item.last)
            if first[0] != last[0]:
                raise ScpiError(-260)
            self._check_any(first, check_inputs)
            self._check_any(last, check_inputs)
            i0, i1 = sorted((first[1], last[1]))
            o0, o1 = sorted((first[2], last[2]))
            out.extend((first[0], i, o) for i in range(i0, i1 + 1) for o in range(o0, o1 + 1))
        return out

    def _check_any(self, ch: Channel, check_inputs: bool) -> Channel:
        if check_inputs:
            return self._check(ch)
        card, _, out = ch
        if card not in self.groups() or not 1 <= out <= self.outputs_of(card):
            raise ScpiError(self.ERR_CHANNEL)
        return ch

    def channel_list(self, p: Param, *, check_inputs: bool = True) -> list[Channel]:
        return self.expand(p.channels(), check_inputs=check_inputs)

    def card_arg(self, p: Param, *, allow_all: bool) -> list[int]:
        """Card number parameter: 0 (ACON) or 1-4 (NCON, installed), or ALL where allowed."""
        if p.is_character:
            if allow_all and p.keyword() == "ALL":
                return self.groups()
            raise ScpiError(-224)
        card = p.integer()
        if card not in self.groups():
            raise ScpiError(self.ERR_CARD)
        return [card]

    def group_of(self, p: Point) -> int:
        return 0 if self.config_mode == "ACON" else p[0]

    # ================================================================= state
    def reset(self) -> None:
        """*RST: every relay open, every card's rule/sequence/modes to defaults (channel
        configuration mode kept)."""
        self._reset_settings(self.groups())
        self.user.clear()
        self.failing.clear()
        self.fail_next = False
        self._apply(set(), sequence="NSEQ")

    def power_on(self) -> None:
        self.config_mode = self.DEFAULT_CONFIG
        self.flags.clear()
        self.settings = {}
        self.user = set()
        self.closed = set()
        self.bench.circuit.set_closed(self.name, frozenset())
        super().power_on()

    def _reset_settings(self, groups: list[int]) -> None:
        for g in groups:
            self.settings[g] = CardSettings(bias_port=self.DEFAULT_BIAS_PORT, ground_port=self.DEFAULT_GROUND_PORT)

    def effective(self, user: set[Point]) -> set[Point]:
        """``user`` plus the bias / ground port connections of cards whose mode is ON."""
        out = set(user)
        for g in self.groups():
            s = self.settings[g]
            port = s.bias_port if s.bias else s.ground_port if s.ground else None
            if port is None or port < 1:
                continue
            used = {self.logical(p)[2] for p in user if self.group_of(p) == g}
            for o in range(1, self.outputs_of(g) + 1):
                enabled = o not in s.bias_disabled if s.bias else o in s.ground_enabled
                if enabled and o not in used:
                    out.add(self.physical((g, port, o)))
        return out

    # ================================================================= relays
    def _apply(self, user: set[Point], *, sequence: str) -> None:
        """Make ``user`` the host's connection set and move the relays (timing per ``sequence``)."""
        self.user = set(user)
        new = self.effective(self.user)
        old = self.closed
        breaks, makes = old - new, new - old
        if not breaks and not makes:
            return
        now = self.clock.now
        for point in sorted(breaks | makes):
            term = self.bench.circuit.terminal_of_row(self.name, str(point[1]))
            src = self.bench.circuit.sources.get(term) if term else None
            if src is not None and src.live:
                self.bench.events.add(now, self.name, "hot_switch", channel=self.name_of(point),
                                      action="close" if point in makes else "open", terminal=term,
                                      level=src.levelv)
        if breaks and makes and sequence == "BBM":
            self.clock.advance(self.RELAY_OPEN)
            self._report(old - breaks)
            self.clock.advance(self.RELAY_CLOSE)
        elif breaks and makes and sequence == "MBBR":
            self.clock.advance(self.RELAY_CLOSE)
            self._report(old | makes)
            self.clock.advance(self.RELAY_OPEN)
        else:
            self.clock.advance(max(self.RELAY_CLOSE if makes else 0.0, self.RELAY_OPEN if breaks else 0.0))
        self._report(new)

    def _report(self, points: set[Point]) -> None:
        self.closed = set(points)
        self.bench.events.add(self.clock.now, self.name, "relays",
                              closed=sorted(self.name_of(p) for p in points))
        self.bench.circuit.set_closed(self.name, frozenset((s, str(i), o) for s, i, o in points))

    def name_of(self, p: Point) -> str:
        """Physical crosspoint as a card-numbered channel (``10203``: slot 1, input 2, output 3)."""
        return self.channel_text(p)

    def _couple(self, g: int, ch: Channel) -> list[Channel]:
        s = self.settings[g]
        card, inp, out = ch
        base = inp if inp % 2 else inp - 1
        if not s.couple or base not in s.couple_ports:
            return [ch]
        obase = out if out % 2 else out - 1
        if obase + 1 > self.outputs_of(g):
            raise ScpiError(self.ERR_MODE_CONFLICT)
        return [(card, base, obase), (card, base + 1, obase + 1)]

    def _guard_ports(self, chans: list[Channel]) -> None:
        for card, inp, _ in chans:
            s = self.settings[card]
            if s.bias and inp == s.bias_port:
                raise ScpiError(self.ERR_BIAS_PORT)
            if s.ground and inp == s.ground_port:
                raise ScpiError(self.ERR_GROUND_PORT)

    def close(self, chans: list[Channel]) -> None:
        """Connect ``chans`` in order (single route: a new path on an input or output of the card
        breaks the old one; couple mode: the pair partner follows)."""
        self._guard_ports(chans)
        expanded = [c for ch in chans for c in self._couple(ch[0], ch)]
        points = [self.physical(c) for c in expanded]
        stuck = self._stuck(set(points))
        user = set(self.user)
        sequence = "NSEQ"
        for ch, p in zip(expanded, points, strict=True):
            s = self.settings[ch[0]]
            sequence = s.sequence
            if s.rule == "SROU":
                g = ch[0]
                for q in list(user):
                    if q != p and self.group_of(q) == g and (q[1] == p[1] or self.logical(q)[2] == ch[2]):
                        user.discard(q)
            if p not in stuck:
                user.add(p)
        self._apply(user, sequence=sequence)

    def open(self, chans: list[Channel]) -> None:
        self._guard_ports(chans)
        expanded = [c for ch in chans for c in self._couple(ch[0], ch)]
        self._apply(self.user - {self.physical(c) for c in expanded}, sequence="NSEQ")

    def open_groups(self, groups: list[int]) -> None:
        self._apply({p for p in self.user if self.group_of(p) not in groups}, sequence="NSEQ")

    def _stuck(self, points: set[Point]) -> set[Point]:
        """Crosspoints a relay_fail fault keeps open (reported as an event)."""
        stuck = set(points) if self.fail_next else points & self.failing
        self.fail_next = False
        if stuck:
            self.failing -= stuck
            self.bench.events.add(self.clock.now, self.name, "fault_relay_fail",
                                  channels=sorted(self.name_of(p) for p in stuck))
        return stuck

    def on_fault(self, fault: Fault) -> None:
        if fault.kind == "relay_fail":
            names = fault.params.get("channels")
            if names:
                text = str(names).strip()
                if not text.startswith("("):
                    text = f"(@{text})"
                try:
                    chans = self.channel_list(Param(text, 0))
                except ScpiError as e:
                    raise ValueError(f"relay_fail: cannot read channels {names!r} (error {e.code})") from None
                self.failing |= {self.physical(c) for c in chans}
            else:
                self.fail_next = True
        else:
            super().on_fault(fault)

    # ================================================================= commands
    def build(self) -> None:
        c = self.command
        c("[:ROUTe]:CLOSe[:LIST] <channel_list>", lambda call: self.close(self.channel_list(call[0])))
        c("[:ROUTe]:CLOSe[:LIST]? <channel_list>", self._closed_q)
        c("[:ROUTe]:OPEN[:LIST] <channel_list>", lambda call: self.open(self.channel_list(call[0])))
        c("[:ROUTe]:OPEN[:LIST]? <channel_list>", self._open_q)
        c("[:ROUTe]:OPEN:CARD <card_number>", lambda call: self.open_groups(self.card_arg(call[0], allow_all=True)))
        c("[:ROUTe]:CLOSe:CARD? <card_number>", self._card_q)
        c("[:ROUTe]:FUNCtion <channel_config>", self._func)
        c("[:ROUTe]:FUNCtion?", lambda call: self.config_mode)
        c("[:ROUTe]:CONNection:RULE <card_number>,<rule>", self._rule)
        c("[:ROUTe]:CONNection:RULE? <card_number>", lambda call: self._one(call).rule)
        c("[:ROUTe]:CONNection:SEQuence <card_number>,<sequence>", self._seq)
        c("[:ROUTe]:CONNection:SEQuence? <card_number>", lambda call: self._one(call).sequence)
        # bias mode
        c("[:ROUTe]:BIAS:PORT <card_number>,<port>", self._bias_port)
        c("[:ROUTe]:BIAS:PORT? <card_number>", lambda call: str(self._one(call).bias_port))
        c("[:ROUTe]:BIAS[:STATe] <card_number>,<state>", self._bias_state)
        c("[:ROUTe]:BIAS[:STATe]? <card_number>", lambda call: "1" if self._one(call).bias else "0")
        c("[:ROUTe]:BIAS:CHANnel:ENABle[:LIST] <channel_list>", lambda call: self._bias_chan(call, True))
        c("[:ROUTe]:BIAS:CHANnel:ENABle[:LIST]? <channel_list>", lambda call: self._bias_chan_q(call, True))
        c("[:ROUTe]:BIAS:CHANnel:DISable[:LIST] <channel_list>", lambda call: self._bias_chan(call, False))
        c("[:ROUTe]:BIAS:CHANnel:DISable[:LIST]? <channel_list>", lambda call: self._bias_chan_q(call, False))
        c("[:ROUTe]:BIAS:CHANnel:ENABle:CARD <card_number>", lambda call: self._bias_card(call, True))
        c("[:ROUTe]:BIAS:CHANnel:DISable:CARD <card_number>", lambda call: self._bias_card(call, False))
        # couple mode
        c("[:ROUTe]:COUPle:PORT <card_number>,<couple_port>", self._couple_port)
        c("[:ROUTe]:COUPle:PORT? <card_number>", lambda call: self._port_list(self._one(call).couple_ports))
        c("[:ROUTe]:COUPle:PORT:DETect", self._couple_detect)
        c("[:ROUTe]:COUPle[:STATe] <card_number>,<state>", self._couple_state)
        c("[:ROUTe]:COUPle[:STATe]? <card_number>", lambda call: "1" if self._one(call).couple else "0")
        if self.HAS_GROUND_MODE:
            c("[:ROUTe]:AGND:PORT <card_number>,<port>", self._ground_port)
            c("[:ROUTe]:AGND:PORT? <card_number>", lambda call: str(self._one(call).ground_port))
            c("[:ROUTe]:AGND[:STATe] <card_number>,<state>", self._ground_state)
            c("[:ROUTe]:AGND[:STATe]? <card_number>", lambda call: "1" if self._one(call).ground else "0")
            c("[:ROUTe]:AGND:CHANnel:ENABle[:LIST] <channel_list>", lambda call: self._gnd_chan(call, True))
            c("[:ROUTe]:AGND:CHANnel:ENABle[:LIST]? <channel_list>", lambda call: self._gnd_chan_q(call, True))
            c("[:ROUTe]:AGND:CHANnel:DISable[:LIST] <channel_list>", lambda call: self._gnd_chan(call, False))
            c("[:ROUTe]:AGND:CHANnel:DISable[:LIST]? <channel_list>", lambda call: self._gnd_chan_q(call, False))
            c("[:ROUTe]:AGND:CHANnel:ENABle:CARD <card_number>", lambda call: self._gnd_card(call, True))
            c("[:ROUTe]:AGND:CHANnel:DISable:CARD <card_number>", lambda call: self._gnd_card(call, False))
            c("[:ROUTe]:AGND:UNUSed <card_number>,<enable_port>", self._unused)
            c("[:ROUTe]:AGND:UNUSed? <card_number>", lambda call: self._port_list(self._one(call).unused_inputs))
        # system
        c(":SYSTem:CPON <card_number>", self._cpon)
        c(":SYSTem:CTYPe? <card_number>", lambda call: self.card_type(self._card_slot(call)))
        c(":SYSTem:CDEScription? <card_number>", lambda call: self.card_description(self._card_slot(call)))
        c(":SYSTem:VERSion?", lambda call: "1999.0")
        for name in (":SYSTem:BEEPer[:STATe]", ":SYSTem:DISPlay:LCD", ":SYSTem:DISPlay:LED",
                     ":SYSTem:KLC", ":SYSTem:PEN"):
            c(f"{name} <state>", lambda call, n=name: self.flags.__setitem__(n, "1" if call[0].boolean() else "0"))

    # ----------------------------------------------------------------- handlers
    def _one(self, call: Call) -> CardSettings:
        """Settings of the single card a query names."""
        return self.settings[self.card_arg(call[0], allow_all=False)[0]]

    def _closed_q(self, call: Call) -> str:
        return ",".join("1" if self.physical(ch) in self.closed else "0" for ch in self.channel_list(call[0]))

    def _open_q(self, call: Call) -> str:
        return ",".join("0" if self.physical(ch) in self.closed else "1" for ch in self.channel_list(call[0]))

    def _card_q(self, call: Call) -> str:
        groups = self.card_arg(call[0], allow_all=False)
        chans = sorted(self.logical(p) for p in self.closed if self.group_of(p) in groups)
        return "(@" + ",".join(self.channel_text(ch) for ch in chans) + ")"

    def _func(self, call: Call) -> None:
        mode = call[0].choice("ACONfig", "NCONfig")[:4]
        if mode != self.config_mode:
            self.config_mode = mode
            self.settings = {}
            self._reset_settings(self.groups())
            self._apply(set(), sequence="NSEQ")

    def _rule(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        rule = call[1].choice("FREE", "SROUte")[:4]
        for g in groups:
            self.settings[g].rule = rule

    def _seq(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        seq = call[1].choice("NSEQuence", "BBM", "MBBReak")
        seq = {"NSEQUENCE": "NSEQ", "MBBREAK": "MBBR"}.get(seq, seq)
        for g in groups:
            self.settings[g].sequence = seq

    def _port(self, p: Param) -> int:
        port = p.integer()
        if port != -1 and not 1 <= port <= self.INPUTS:
            raise ScpiError(-222)
        return port

    def _set_modes(self, groups: list[int], **values: object) -> None:
        for g in groups:
            for k, v in values.items():
                setattr(self.settings[g], k, v)
        self._apply(self.user, sequence="BBM")

    def _bias_port(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        self._set_modes(groups, bias_port=self._port(call[1]))

    def _bias_state(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        on = call[1].boolean()
        if on and any(self.settings[g].ground for g in groups):
            raise ScpiError(self.ERR_MODE_CONFLICT)
        if on:
            self._release_port(groups, "bias_port")
        self._set_modes(groups, bias=on)

    def _release_port(self, groups: list[int], attr: str) -> None:
        """Host connections on a port that a mode takes over are released [U]."""
        ports = {g: getattr(self.settings[g], attr) for g in groups}
        self.user = {p for p in self.user if not (self.group_of(p) in ports and p[1] == ports[self.group_of(p)])}

    def _outputs(self, call: Call) -> dict[int, set[int]]:
        by_group: dict[int, set[int]] = {}
        for card, _, out in self.channel_list(call[0], check_inputs=False):
            by_group.setdefault(card, set()).add(out)
        return by_group

    def _bias_chan(self, call: Call, enable: bool) -> None:
        for g, outs in self._outputs(call).items():
            s = self.settings[g]
            s.bias_disabled = s.bias_disabled - outs if enable else s.bias_disabled | outs
        self._apply(self.user, sequence="BBM")

    def _bias_chan_q(self, call: Call, enable: bool) -> str:
        chans = self.channel_list(call[0], check_inputs=False)
        return ",".join("1" if (o not in self.settings[g].bias_disabled) == enable else "0" for g, _, o in chans)

    def _bias_card(self, call: Call, enable: bool) -> None:
        for g in self.card_arg(call[0], allow_all=True):
            self.settings[g].bias_disabled = set() if enable else set(range(1, self.outputs_of(g) + 1))
        self._apply(self.user, sequence="BBM")

    def _ground_port(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        self._set_modes(groups, ground_port=self._port(call[1]))

    def _ground_state(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        on = call[1].boolean()
        if on and any(self.settings[g].bias for g in groups):
            raise ScpiError(self.ERR_MODE_CONFLICT)
        if on:
            self._release_port(groups, "ground_port")
        self._set_modes(groups, ground=on)

    def _gnd_chan(self, call: Call, enable: bool) -> None:
        for g, outs in self._outputs(call).items():
            s = self.settings[g]
            s.ground_enabled = s.ground_enabled | outs if enable else s.ground_enabled - outs
        self._apply(self.user, sequence="BBM")

    def _gnd_chan_q(self, call: Call, enable: bool) -> str:
        chans = self.channel_list(call[0], check_inputs=False)
        return ",".join("1" if (o in self.settings[g].ground_enabled) == enable else "0" for g, _, o in chans)

    def _gnd_card(self, call: Call, enable: bool) -> None:
        for g in self.card_arg(call[0], allow_all=True):
            self.settings[g].ground_enabled = set(range(1, self.outputs_of(g) + 1)) if enable else set()
        self._apply(self.user, sequence="BBM")

    def _port_string(self, p: Param, allowed: tuple[int, ...]) -> list[int]:
        text = p.string(strict=False)
        ports: list[int] = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) not in allowed:
                raise ScpiError(-224)
            if int(part) not in ports:
                ports.append(int(part))
        return sorted(ports)

    @staticmethod
    def _port_list(ports: list[int]) -> str:
        return "'" + ",".join(str(p) for p in ports) + "'"

    def _unused(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        ports = self._port_string(call[1], tuple(range(1, self.INPUTS + 1)))
        for g in groups:
            self.settings[g].unused_inputs = ports

    def _couple_port(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        ports = self._port_string(call[1], tuple(p for p in self.COUPLE_PORTS if p < self.INPUTS))
        for g in groups:
            self.settings[g].couple_ports = ports

    def _couple_detect(self, call: Call) -> None:
        for g in self.groups():             # no Kelvin cables on the simulated bench [U]
            self.settings[g].couple_ports = []

    def _couple_state(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        on = call[1].boolean()
        for g in groups:
            self.settings[g].couple = on

    def _cpon(self, call: Call) -> None:
        groups = self.card_arg(call[0], allow_all=True)
        self._reset_settings(groups)
        self._apply({p for p in self.user if self.group_of(p) not in groups}, sequence="NSEQ")

    def _card_slot(self, call: Call) -> int:
        """Card number of a :SYST query: 1-4 (or 0 in auto config mode, meaning slot 1)."""
        p = call[0]
        card = p.integer()
        if card == 0 and self.config_mode == "ACON":
            return next(iter(self.cards))
        if card not in self.SLOTS:
            raise ScpiError(self.ERR_CARD)
        return card

    def card_type(self, slot: int) -> str:  # pragma: no cover - per instrument
        raise NotImplementedError

    def card_description(self, slot: int) -> str:  # pragma: no cover - per instrument
        raise NotImplementedError
