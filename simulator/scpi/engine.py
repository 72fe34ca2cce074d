"""The shared SCPI engine: every SCPI emulator (SMUs, switch matrices) is a :class:`ScpiInstrument`.

What it does, per IEEE 488.2 and SCPI-99:

* command tree from the manuals' syntax strings (:mod:`.tree`): short/long forms, any case,
  optional ``[:NODE]``s, numeric suffixes, set and query forms declared separately;
* program messages: ``;``-separated units with the header-path rule (a unit without a leading
  ``:`` continues at the previous unit's path; ``:`` resets to the root; ``*XXX`` common commands
  leave the path alone); the replies of one message are joined with ``;`` into one response;
* parameters (:mod:`.params`): NR1/NR2/NR3 (+ ``#H/#Q/#B``), units with multipliers,
  MIN/MAX/DEF, booleans, character data, strings, channel lists ``(@…)``, block data;
* IEEE 488.2 common commands and the status model (ESR/ESE, STB/SRE; EAV, MAV, ESB, MSS);
* the error queue (``:SYSTem:ERRor[:NEXT]?``, ``:SYSTem:ERRor:COUNt?``), with SCPI texts, the
  instrument's own codes, per-instrument reply format, depth and -350 overflow; -410 when a new
  message arrives while a reply is unread, -420 when the host reads with nothing to say;
* a command error (-1xx) discards the rest of the message (IEEE 488.2 6.1.6.1.1); execution and
  device errors end only the command that raised them. An emulator bug is recorded through
  ``bench.internal_error`` and queued as -300, never raised into the session.

Subclasses declare their commands in :meth:`ScpiInstrument.build` with
``self.command("<syntax>", handler)`` and set the class attributes documented on
:class:`ScpiInstrument`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ..instrument import STB_MSS, EmulatedInstrument
from .errors import ESR_CME, ESR_OPC, ESR_PON, SCPI_ERRORS, ScpiError, esr_bit_of
from .params import Call, ChannelRange, MessageError, Param, split_params, split_units
from .tree import Command, CommandTree

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig

__all__ = ["Call", "ChannelRange", "Param", "ScpiError", "ScpiInstrument"]

_HEADER = re.compile(r"^\s*([A-Za-z0-9_:*?]+)(.*)$", re.S)
_HEADER_OK = re.compile(r"^(\*[A-Za-z]+\??|:?[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*)*\??)$")

Handler = Callable[[Call], "str | None"]


class ScpiInstrument(EmulatedInstrument):
    """Base of SCPI emulators. Class attributes (override per instrument):

    ``MANUFACTURER``, ``MODEL``     ``*IDN?`` fields; ``IDN_FORMAT`` joins them with serial and firmware
    ``ERROR_TEXTS``                 instrument codes/texts (override or extend :data:`SCPI_ERRORS`)
    ``ERROR_MAP``                   standard code -> instrument code, applied to every queued error
    ``ERROR_FORMAT``                ``:SYST:ERR?`` reply, ``str.format`` with ``code``, ``message``
    ``ERROR_QUEUE_DEPTH``           entries; when full the newest is replaced by -350
    ``OPT``                         ``*OPT?`` reply, or None (then ``*OPT?`` is an undefined header)
    ``TST_RESULT``                  ``*TST?`` reply
    ``QUERY_INTERRUPTED``           queue -410 when a message arrives while a reply is unread
    ``QUERY_UNTERMINATED``          queue -420 when the host reads with no reply pending
    ``COMMAND_TIME``                simulated time (s) charged per executed message unit
    """

    KIND: ClassVar[str] = "instrument"
    MANUFACTURER: ClassVar[str] = "rramlab"
    MODEL: ClassVar[str] = "generic"
    IDN_FORMAT: ClassVar[str] = "{manufacturer},{model},{serial},{firmware}"
    ERROR_TEXTS: ClassVar[dict[int, str]] = {}
    ERROR_MAP: ClassVar[dict[int, int]] = {}
    ERROR_FORMAT: ClassVar[str] = '{code:+d},"{message}"'
    ERROR_QUEUE_DEPTH: ClassVar[int] = 30
    OPT: ClassVar[str | None] = None
    TST_RESULT: ClassVar[str] = "0"
    QUERY_INTERRUPTED: ClassVar[bool] = True
    QUERY_UNTERMINATED: ClassVar[bool] = True
    COMMAND_TIME: ClassVar[float] = 0.0

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        super().__init__(bench, config.name, config.resource)
        self.config = config
        self.model = config.model
        self.serial = config.serial
        self.firmware = config.firmware
        self.errors: deque[tuple[int, str]] = deque()
        self._opc_at: float | None = None      # *OPC armed: set ESR OPC at this time
        self.tree = CommandTree()
        self._common()
        self.build()
        self.power_on()

    # ================================================================= subclass API
    def build(self) -> None:
        """Declare the instrument's commands with :meth:`command` (called once from __init__)."""

    def reset(self) -> None:
        """``*RST`` (and power-on): instrument settings to their defaults."""

    def command(self, syntax: str, handler: Handler, **extra: Any) -> Command:
        """Declare one command form, e.g. ``self.command(":ROUTe:CLOSe:CARD? <card>", self._card_q)``.
        The handler gets a :class:`Call` and returns the reply text of a query (None for a set)."""
        return self.tree.add(syntax, handler, **extra)

    def idn(self) -> str:
        """``*IDN?`` reply."""
        return self.IDN_FORMAT.format(manufacturer=self.MANUFACTURER, model=self.MODEL,
                                      serial=self.serial, firmware=self.firmware)

    def error_text(self, code: int) -> str:
        """Text of ``code``: the instrument's table first, then SCPI's."""
        return self.ERROR_TEXTS.get(code) or SCPI_ERRORS.get(code) or SCPI_ERRORS[-300]

    def format_error(self, code: int, message: str) -> str:
        """One ``:SYST:ERR?`` reply (also used for the empty queue: code 0)."""
        return self.ERROR_FORMAT.format(code=code, message=message)

    def esr_bit_of(self, code: int) -> int:
        """ESR bit an error sets (SCPI classes; positive instrument codes DDE)."""
        return esr_bit_of(code)

    def stb_extra(self) -> int:
        """Instrument summary bits of the status byte (e.g. QUES 8, OPER 128); default none."""
        return 0

    def complete_at(self) -> float:
        """Simulated time (s) at which all pending operations are done (``*OPC``/``*OPC?``/``*WAI``)."""
        return self.clock.now

    def raise_error(self, code: int, message: str | None = None) -> None:
        """Convenience: raise :class:`ScpiError` from a handler."""
        raise ScpiError(code, message)

    # ================================================================= error queue
    def queue_error(self, code: int, message: str | None = None, severity: int = 20) -> None:
        """Queue an error (text from the tables when ``message`` is None) and set its ESR bit."""
        code = self.ERROR_MAP.get(code, code)
        text = message if message is not None else self.error_text(code)
        self.esr |= self.esr_bit_of(code)
        if len(self.errors) >= self.ERROR_QUEUE_DEPTH:
            self.errors[-1] = (-350, self.error_text(-350))
            return
        self.errors.append((code, text))

    def error_count(self) -> int:
        return len(self.errors)

    def next_error(self) -> str:
        """Pop the oldest error as the instrument replies it (``0,"No error"`` style when empty)."""
        if self.errors:
            code, text = self.errors.popleft()
        else:
            code, text = 0, self.error_text(0)
        return self.format_error(code, text)

    # ================================================================= status
    def _update_opc(self) -> None:
        if self._opc_at is not None and self.clock.now >= self._opc_at:
            self.esr |= ESR_OPC
            self._opc_at = None

    def update_status(self) -> None:
        """Status byte (base class, IEEE 488.2 §11.2/§11.3: ESB = ESR & ESE, MSS = STB & SRE) sees
        the ESR OPC bit of a pending ``*OPC`` once its operations are done."""
        self._update_opc()

    def status_due(self) -> float | None:
        due = [t for t in (super().status_due(), self._opc_at) if t is not None and t > self.clock.now]
        return min(due) if due else None

    # ================================================================= power / clear
    def power_on(self) -> None:
        """Power-on: output queue and error queue empty, ESR = PON, ESE = SRE = 0, settings *RST."""
        super().power_on()
        self.errors.clear()
        self.esr = ESR_PON          # ESE = SRE = 0: base class power-on
        self._opc_at = None
        self._guard("power-on", self.reset)

    def device_clear(self) -> None:
        super().device_clear()
        self._opc_at = None

    # ================================================================= host side
    def receive(self, data: bytes, faults: list[Any]) -> None:
        if self.QUERY_INTERRUPTED and self._out:
            self._out.clear()
            self.queue_error(-410)
        super().receive(data, faults)

    def fetch(self) -> bytes | None:
        if not self._out and self.QUERY_UNTERMINATED:
            self.queue_error(-420)
        return super().fetch()

    def execute(self, line: str) -> None:
        """Run one program message; queue the joined replies of its queries."""
        replies: list[str] = []
        ready = self.clock.now
        if any(ord(ch) > 126 or ord(ch) < 32 and ch not in "\t\r" for ch in line) and "#" not in line:
            self.queue_error(-101)
            return
        try:
            units = split_units(line)
        except MessageError as e:
            self.queue_error(e.code)
            return
        path = ""
        for unit in units:
            if not unit.strip():
                continue
            outcome = self._run_unit(unit, path)
            if outcome is None:     # command error: rest of the message discarded
                break
            path, reply, when = outcome
            if reply is not None:
                replies.append(reply)
                ready = max(ready, when)
            if self.COMMAND_TIME:
                self.clock.advance(self.COMMAND_TIME)
        if replies:
            self._out.append((max(ready, self.clock.now), (";".join(replies)).encode("latin-1")
                              + self.read_termination))

    def _run_unit(self, unit: str, path: str) -> tuple[str, str | None, float] | None:
        """Execute one message unit: (new path, reply or None, reply-ready time), None on a command error."""
        m = _HEADER.match(unit)
        if not m:
            self.queue_error(-102)
            return None
        header, rest = m.group(1), m.group(2)
        if rest and not rest[0].isspace():
            self.queue_error(-102 if rest[0] not in "(\"'#" else -111)
            return None
        if not _HEADER_OK.match(header):
            self.queue_error(-113 if "?" not in header[:-1] else -102)
            return None
        query = header.endswith("?")
        bare = header.rstrip("?")
        if any(len(token) > 12 for token in bare.lstrip(":").split(":")):
            self.queue_error(-112)            # IEEE 488.2 7.6.1.2: program mnemonics are at most 12 characters
            return None
        if bare.startswith("*"):
            full, new_path = bare, path
        elif bare.startswith(":"):
            full = bare[1:]
            new_path = full.rpartition(":")[0]
        else:
            full = f"{path}:{bare}" if path else bare
            new_path = full.rpartition(":")[0]
        found = self.tree.lookup(tuple(full.upper().split(":")), query)
        if isinstance(found, int):
            self.queue_error(found)
            return None
        cmd, suffixes = found
        try:
            raw = split_params(rest) if rest.strip() else []
        except MessageError as e:
            self.queue_error(e.code)
            return None
        if any(not p for p in raw):
            self.queue_error(-109 if len(raw) > 1 else -102)
            return None
        if len(raw) < cmd.min_params:
            self.queue_error(-109)
            return None
        if cmd.max_params is not None and len(raw) > cmd.max_params:
            self.queue_error(-108)
            return None
        call = Call(header=(":" + full if not full.startswith("*") else full) + ("?" if query else ""),
                    params=[Param(p, i) for i, p in enumerate(raw)], query=query, suffixes=suffixes,
                    extra=cmd.extra)
        try:
            reply = cmd.handler(call)
        except ScpiError as e:
            self.queue_error(e.code, e.message)
            if self.esr_bit_of(self.ERROR_MAP.get(e.code, e.code)) == ESR_CME:
                return None
            return (new_path if not cmd.common else path), None, self.clock.now
        except Exception as exc:  # an emulator bug: recorded, never raised into the session
            self.bench.internal_error(self.name, unit.strip(), exc)
            self.queue_error(-300)
            return (new_path if not cmd.common else path), None, self.clock.now
        when = self.clock.now
        if isinstance(reply, tuple):          # (text, ready time) from handlers whose reply is late
            reply, when = reply
        if reply is not None and not isinstance(reply, str):   # an emulator bug: recorded, never raised
            self.bench.internal_error(self.name, unit.strip(), TypeError(f"handler returned {reply!r}"))
            self.queue_error(-300)
            reply = None
        return (new_path if not cmd.common else path), reply, when

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # pragma: no cover - emulator bug
            self.bench.internal_error(self.name, what, exc)
            self.queue_error(-300)
            return None

    # ================================================================= common commands
    def _common(self) -> None:
        c = self.command
        c("*IDN?", lambda call: self.idn())
        c("*RST", self._rst)
        c("*CLS", self._cls)
        c("*ESR?", self._esr_q)
        c("*ESE <value>", self._ese)
        c("*ESE?", lambda call: str(self.ese))
        c("*SRE <value>", self._sre)
        c("*SRE?", lambda call: str(self.sre))
        c("*STB?", lambda call: str(self.status_byte()))
        c("*OPC", self._opc)
        c("*OPC?", lambda call: ("1", max(self.clock.now, self.complete_at())))
        c("*WAI", lambda call: self.clock.advance_to(self.complete_at()) and None)
        c("*TST?", lambda call: self.TST_RESULT)
        if self.OPT is not None:
            c("*OPT?", lambda call: self.OPT)
        c(":SYSTem:ERRor[:NEXT]?", lambda call: self.next_error())
        c(":SYSTem:ERRor:COUNt?", lambda call: str(len(self.errors)))

    def _rst(self, call: Call) -> None:
        self._opc_at = None
        self.reset()

    def _cls(self, call: Call) -> None:
        self.errors.clear()
        self.esr = 0
        self._opc_at = None

    def _esr_q(self, call: Call) -> str:
        self._update_opc()
        value, self.esr = self.esr, 0
        return str(value)

    def _ese(self, call: Call) -> None:
        self.ese = call[0].integer(0, 255)

    def _sre(self, call: Call) -> None:
        self.sre = call[0].integer(0, 255) & ~STB_MSS

    def _opc(self, call: Call) -> None:
        self._opc_at = self.complete_at()
        self._update_opc()

