"""Shared helpers for Keithley TSP instruments (Series 2600B SourceMeters, 707B/708B switch mainframes).

TSP instruments run every received line as a Lua chunk; nothing is returned unless the chunk prints
it. Numbers print in ``%.{asciiprecision-1}e`` style (``format.asciiprecision``: 6 on the 2600B,
10 on the 707B), several values of one ``print`` are TAB-separated, booleans print ``true``/``false``
and a missing value ``nil``. Errors are never replied: they wait in ``errorqueue`` (``count``,
``next()`` → code, message, severity, node; ``clear()``).

This module holds what both drivers share:

* :func:`tsp_number` — setpoints on the wire with Python's shortest round-trip ``repr`` (``0.2``,
  ``1.5e-07``): no significant digit is lost, unlike ``%f``/``%g``;
* strict validators that name the parameter and its allowed range, and reject NaN/inf, booleans
  and non-numbers before anything is written;
* reply parsers that raise :class:`~rramlab.drivers.errors.ReplyError` instead of passing a
  garbled reply on as a string;
* :class:`TSPMixin` — identity, bounded error-queue drain, reset with ``*OPC?`` sync, script
  loading and token resynchronisation.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Callable, Iterable
from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range
from pyvisa.resources import MessageBasedResource

from .errors import InstrumentError, ReplyError
from .visa_role import ESR_PON, VisaRole

log = logging.getLogger(__name__)

__all__ = [
    "ESR_PON",
    "TSPMixin",
    "choice_validator",
    "flag_validator",
    "parse_bool",
    "parse_number",
    "parse_numbers",
    "range_validator",
    "show",
    "tsp_number",
]

_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_LUA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
LUA_KEYWORDS = frozenset({
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
})


# --------------------------------------------------------------------------- numbers on the wire
def show(x: Any) -> str:
    """A number as people write it in messages: ``1e-10``, ``1.5``, ``200`` (repr of the float)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return repr(x)
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def tsp_number(value: float) -> str:
    """A finite number formatted for a TSP command without losing a significant digit.

    Python's shortest round-trip ``repr`` (``0.2``, ``1.5e-07``, ``200.0``); ``-0.0`` is sent as
    ``0.0``. Raises ValueError for NaN and infinities (validators reject them earlier).
    """
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"cannot send a non-finite number to the instrument, got {value!r}")
    return repr(x + 0.0)


def _real(name: str, value: Any, allowed: str) -> float:
    """``value`` as a finite float, or ValueError naming ``name`` and the ``allowed`` values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number {allowed}, got {show(value)}")
    return x


def range_validator(name: str, unit: str = "", *, special: Iterable[float] = ()) -> Callable[[Any, Any], float]:
    """A pymeasure validator: finite number within ``values = (lo, hi)``, else ValueError.

    The message names the parameter and range, e.g. ``current_limit must be within [1e-10, 1.5] A,
    got 0``. ``special`` values (e.g. ``-1`` for DELAY_AUTO) are accepted besides the range.
    """
    extra = tuple(float(s) for s in special)
    suffix = f" {unit}" if unit else ""

    def allowed(values: Any) -> str:
        text = f"within [{show(min(values))}, {show(max(values))}]{suffix}"
        return text + (" or " + ", ".join(show(s) for s in extra) if extra else "")

    def validator(value: Any, values: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number {allowed(values)}, got {value!r}")
        x = float(value)
        if x in extra:
            return x
        if not math.isfinite(x):
            raise ValueError(f"{name} must be a finite number {allowed(values)}, got {show(value)}")
        try:
            return float(strict_range(x, values))
        except ValueError:
            raise ValueError(f"{name} must be {allowed(values)}, got {show(value)}") from None

    validator.__name__ = f"validate_{name}"
    return validator


def choice_validator(name: str, unit: str = "") -> Callable[[Any, Any], float]:
    """A pymeasure validator: one of the numbers in ``values`` (e.g. the ranges), else ValueError."""
    suffix = f" {unit}" if unit else ""

    def validator(value: Any, values: Any) -> float:
        allowed = "one of " + ", ".join(show(v) for v in values) + suffix
        x = _real(name, value, allowed)
        try:
            return float(strict_discrete_set(x, values))
        except ValueError:
            raise ValueError(f"{name} must be {allowed}, got {show(value)}") from None

    validator.__name__ = f"validate_{name}"
    return validator


def flag_validator(name: str) -> Callable[[Any, Any], bool]:
    """A pymeasure validator: ``True``/``False`` (or the integers 1/0), else ValueError."""

    def validator(value: Any, values: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, numbers.Integral) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{name} must be True or False, got {value!r}")

    validator.__name__ = f"validate_{name}"
    return validator


# --------------------------------------------------------------------------------------- replies
def parse_number(reply: str, command: str = "") -> float:
    """A number printed by a TSP instrument (``4.07205e-05``, ``nan``, ``inf``) as float."""
    text = reply.strip()
    if _NUMBER.match(text) or text in ("nan", "-nan", "inf", "-inf"):
        return float(text)
    raise ReplyError(command, reply, "a number")


def parse_numbers(reply: str, count: int, command: str = "", separator: str = "\t") -> list[float]:
    """``count`` numbers of one ``print(a, b, …)`` (TAB-separated) or ``printbuffer`` (``", "``)."""
    parts = reply.strip().split(separator) if reply.strip() else []
    if len(parts) != count:
        raise ReplyError(command, reply, f"{count} number(s) separated by {separator!r}")
    return [parse_number(p, command) for p in parts]


def parse_bool(reply: str, command: str = "") -> bool:
    """A printed Lua boolean (``true``/``false``)."""
    text = reply.strip()
    if text == "true":
        return True
    if text == "false":
        return False
    raise ReplyError(command, reply, "true or false")


# --------------------------------------------------------------------------------------- mixin
class TSPMixin(VisaRole):
    """Behaviour shared by TSP instruments; mix in before :class:`pymeasure.instruments.Instrument`.

    The host class provides ``write``/``read``/``ask`` (pymeasure) and ``name``; the instance
    attribute ``strict_errors`` decides whether settings that can fail are followed by one
    ``print(errorqueue.count)`` query (pymeasure's ``check_set_errors`` hook).
    """

    name: str
    strict_errors: bool = True
    sync_max_reads: int = 64

    write: Callable[..., None]
    read: Callable[..., str]
    ask: Callable[..., str]

    id = Instrument.measurement(
        "*IDN?",
        """Get the identification string (``*IDN?``), e.g.
        ``Keithley Instruments Inc., Model 2636B, 4428182, 4.0.5``.""",
        cast=str, maxsplit=0, get_process=str.strip,
    )

    # ------------------------------------------------------------------ queries
    def fast_ask(self, command: str) -> str:
        """:meth:`ask` straight through the pyvisa session (write, then read: the same bytes) without pymeasure's
        per-call layers, for the per-reading path; plain :meth:`ask` where the adapter has no session (a test
        protocol adapter)."""
        connection = getattr(self.adapter, "connection", None)
        if not isinstance(connection, MessageBasedResource):
            return self.ask(command)
        return connection.query(command)

    def query_number(self, expression: str) -> float:
        """``print(expression)`` and parse the one number it prints."""
        command = f"print({expression})"
        return parse_number(self.ask(command), command)

    # ------------------------------------------------------------------- errors
    def check_errors(self, max_entries: int = 32) -> None:
        """Read the error queue, bounded, and raise :class:`InstrumentError` if it held errors.

        Sends ``print(errorqueue.count)``, then at most ``min(count, max_entries)`` times
        ``print(errorqueue.next())`` (stopping at code 0 "Queue Is Empty"). Codes are parsed with
        ``int(float(code))``. Never loops: an instrument that keeps re-reporting an error costs at
        most ``max_entries`` reads, and a queue left undrained is itself reported in the exception.
        """
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        count = int(self.query_number("errorqueue.count"))
        if count <= 0:
            return
        errors: list[tuple[int, str]] = []
        empty = False
        for _ in range(min(count, max_entries)):
            code, message = self._next_error()
            if code == 0:
                empty = True
                break
            errors.append((code, message))
        note = ""
        if count > max_entries and not empty:
            note = f"error queue not drained: {count} entries reported, {max_entries} read"
        if errors or note:
            for code, message in errors:
                log.error("%s: error %d %s", self.name, code, message)
            raise InstrumentError(errors, self.name, note)

    def _next_error(self) -> tuple[int, str]:
        command = "print(errorqueue.next())"
        reply = self.ask(command)
        parts = reply.strip("\r\n").split("\t")
        try:
            code = int(float(parts[0]))
        except ValueError:
            raise ReplyError(command, reply, "an error-queue entry (code, message, severity, node)") from None
        return code, parts[1] if len(parts) > 1 else ""

    def check_set_errors(self) -> list:
        """pymeasure hook after a setting that can fail: :meth:`check_errors` when ``strict_errors``."""
        if self.strict_errors:
            self.check_errors()
        return []

    def check_get_errors(self) -> list:
        """pymeasure hook after a query: getters do not check the error queue."""
        return []

    def event_status(self) -> int:
        """Read and clear the standard event status register (``*ESR?``); bit 7 (:data:`ESR_PON`, 128)
        is set once the instrument has been powered on since the last read."""
        reply = self.ask("*ESR?")
        try:
            return int(reply.strip())
        except ValueError:
            raise ReplyError("*ESR?", reply, "an integer 0-255") from None

    def clear_errors(self) -> None:
        """Discard every queued error (``errorqueue.clear()``)."""
        self.write("errorqueue.clear()")

    # ------------------------------------------------------------------- state
    def reset(self) -> None:
        """Return to the instrument's defaults (``reset()``) and wait for it to finish (``*OPC?``)."""
        self.write("reset()")
        reply = self.ask("*OPC?")
        if reply.strip() != "1":
            raise ReplyError("*OPC?", reply, "1")

    def sync(self, token: str) -> None:
        """Resynchronise the session: print ``token`` and read until it comes back.

        Replies left over from an earlier timeout are read and discarded (logged); at most
        ``sync_max_reads`` replies are read. A read that times out raises the VISA error.
        ``token``: 1–64 characters from ``A–Z a–z 0–9 _ . : -``, unique per call.
        """
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise ValueError(f"token must be 1-64 characters of [A-Za-z0-9_.:-], got {token!r}")
        command = f'print("{token}")'
        self.write(command)
        for _ in range(self.sync_max_reads):
            reply = self.read().strip()
            if reply == token:
                return
            log.warning("%s: discarding stale reply %r while resynchronising", self.name, reply)
        raise ReplyError(command, "", f"{token!r} within {self.sync_max_reads} replies")

    def tsplink_reset(self, expected: int) -> int:
        """Initialise the TSP-Link network from this node, the master: ``print(tsplink.reset(N))`` → the nodes
        found, this one counted (2600B Reference Manual, tsplink.reset()), then the error queue. Fewer than
        ``expected`` (2–64) nodes queue error 1219 "TSP-Link found fewer nodes than expected", raised here as
        :class:`InstrumentError`. Needed after any node was powered on (the same manual, "TSP-Link system")."""
        if isinstance(expected, bool) or not isinstance(expected, int) or not 2 <= expected <= 64:
            raise ValueError(f"expected must be the number of TSP-Link nodes, 2-64, got {expected!r}")
        found = self.query_number(f"tsplink.reset({expected})")
        self.check_errors()
        return int(found)

    def load_script(self, name: str, text: str) -> None:
        """Load a named TSP script and run it once (so the functions it defines exist).

        Sends ``loadscript name``, each non-blank line of ``text`` (trailing blanks removed),
        ``endscript``, then ``name()``; then always checks the error queue (a syntax error in the
        script is queued as -285). ``name``: a Lua identifier; ``text`` must not itself contain
        ``loadscript``/``loadandrunscript``/``endscript`` lines.
        """
        if not isinstance(name, str) or not _LUA_NAME.match(name) or name in LUA_KEYWORDS:
            raise ValueError(f"script name must be a Lua identifier, got {name!r}")
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError(f"script {name!r} is empty")
        for line in lines:
            word = line.split(maxsplit=1)[0]
            if word in ("loadscript", "loadandrunscript", "endscript"):
                raise ValueError(f"script {name!r} must not contain a {word!r} line")
        self.write(f"loadscript {name}")
        for line in lines:
            self.write(line)
        self.write("endscript")
        self.write(f"{name}()")
        self.check_errors()
