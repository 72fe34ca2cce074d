"""Shared helpers for SCPI instruments (Keithley 2450, Keysight B2900, B2200A, E5250A).

SCPI instruments answer queries with IEEE 488.2 numeric response data (NR1 ``+0``, NR3
``+1.000000E-03``; ``9.91E+37`` for "not a number"); several queries in one message come back in
one reply line joined by ``;`` (IEEE 488.2 §8.4.1, response message unit separator). Errors are read
one at a time with ``:SYSTem:ERRor?`` (``<code>,"<message>"``, code 0 = queue empty).

This module holds what the SCPI drivers share:

* :func:`scpi_number` — setpoints on the wire with Python's shortest round-trip ``repr`` (``0.2``,
  ``1.5e-07``), valid IEEE 488.2 decimal numeric program data; never ``%f``/``%g``;
* reply parsers (:func:`parse_number`, :func:`parse_replies`, :func:`parse_flag`,
  :func:`parse_error`) that raise :class:`~rramlab.drivers.errors.ReplyError` on garbled replies;
* :class:`SCPIMixin` — identity, ``*CLS``, ``*ESR?`` (power-on flag), reset with ``*OPC?`` and a
  bounded error-queue drain (at most 32 ``:SYST:ERR?`` reads, never ``while True``).

The strict validators (:func:`range_validator`, :func:`choice_validator`, :func:`flag_validator`)
are the ones of :mod:`.tsp`, re-exported: one implementation for every driver.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from pymeasure.instruments import Instrument

from .errors import InstrumentError, ReplyError
from .tsp import choice_validator, flag_validator, range_validator, show, tsp_number
from .visa_role import ESR_PON, VisaRole

log = logging.getLogger(__name__)

__all__ = [
    "ESR_PON",
    "MAX_ERROR_READS",
    "SCPIMixin",
    "choice_validator",
    "flag_validator",
    "parse_error",
    "parse_flag",
    "parse_number",
    "parse_replies",
    "range_validator",
    "scpi_number",
    "show",
]

#: Upper bound of ``:SYST:ERR?`` reads per drain.
MAX_ERROR_READS = 32

_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_ERROR = re.compile(r'^\s*([+-]?\d+)\s*,\s*(.*?)\s*$', re.DOTALL)


def scpi_number(value: float) -> str:
    """A finite number for a SCPI command without losing a significant digit (``0.2``, ``1.5e-07``).

    Python's shortest round-trip ``repr``; ``-0.0`` is sent as ``0.0``; NaN and infinities raise
    ValueError (validators reject them earlier).
    """
    return tsp_number(value)


def parse_number(reply: str, command: str = "") -> float:
    """One SCPI numeric response (NR1/NR2/NR3, optional sign): ``+1.000000E-03`` → 0.001, ``+0`` → 0.0.

    ``9.91E+37`` (the SCPI "not a number" value) is returned as is; the caller decides.
    """
    text = reply.strip()
    if _NUMBER.match(text):
        return float(text)
    raise ReplyError(command, reply, "a number")


def parse_replies(reply: str, count: int, command: str = "") -> list[str]:
    """The ``count`` replies of one message holding ``count`` queries (joined by ``;``), stripped."""
    parts = [p.strip() for p in reply.strip().split(";")]
    if len(parts) != count or any(not p for p in parts):
        raise ReplyError(command, reply, f"{count} replies separated by ';'")
    return parts


def parse_flag(reply: str, command: str = "") -> bool:
    """A boolean response: ``1``/``0`` (``+1``/``+0`` too; ``ON``/``OFF`` accepted)."""
    text = reply.strip().upper()
    if text in ("1", "+1", "ON"):
        return True
    if text in ("0", "+0", "OFF"):
        return False
    raise ReplyError(command, reply, "1 or 0")


def parse_error(reply: str, command: str = ":SYST:ERR?") -> tuple[int, str]:
    """One error-queue entry ``<code>,"<message>"`` → (code, message without the quotes).

    Accepts ``+0,"No error"``, ``-222,"Data out of range"``, ``0,"No error;0;0 0"`` (2450: the event
    type and time stamp stay in the message; :class:`SCPIMixin` may cut them) and unquoted messages.
    """
    match = _ERROR.match(reply)
    if match is None:
        raise ReplyError(command, reply, 'an error-queue entry <code>,"<message>"')
    message = match.group(2)
    if len(message) >= 2 and message[0] == message[-1] and message[0] in "\"'":
        message = message[1:-1]
    return int(match.group(1)), message


# --------------------------------------------------------------------------------------- mixin
class SCPIMixin(VisaRole):
    """Behaviour shared by the SCPI drivers; mix in before :class:`pymeasure.instruments.Instrument`.

    Class attributes a driver may set:

    * ``error_count_command`` — a query that returns the number of queued errors
      (``:SYST:ERR:COUN?``), or None when the instrument has none (the drain then reads
      ``:SYST:ERR?`` until code 0, at most :data:`MAX_ERROR_READS` times);
    * ``error_event_suffix`` — True when messages carry ``;<type>;<time>`` after the text (2450).

    The instance attribute ``strict_errors`` decides whether settings that can fail are followed by
    an error check (pymeasure's ``check_set_errors`` hook).
    """

    name: str
    strict_errors: bool = True
    error_count_command: str | None = ":SYST:ERR:COUN?"
    error_event_suffix: bool = False

    write: Callable[..., None]
    read: Callable[..., str]
    ask: Callable[..., str]

    id = Instrument.measurement(
        "*IDN?",
        """Get the identification string (``*IDN?``), stripped.""",
        cast=str, maxsplit=0, get_process=str.strip,
    )

    # ------------------------------------------------------------------ queries
    def query_number(self, command: str) -> float:
        """Send ``command`` (a query) and parse the one number it returns."""
        return parse_number(self.ask(command), command)

    # ------------------------------------------------------------------- errors
    def next_error(self) -> tuple[int, str]:
        """Read and remove the oldest error-queue entry (``:SYST:ERR?``): (code, message)."""
        code, message = parse_error(self.ask(":SYST:ERR?"))
        if self.error_event_suffix:
            message = message.split(";", 1)[0]
        return code, message

    def check_errors(self, max_entries: int = MAX_ERROR_READS) -> None:
        """Read the error queue, bounded, and raise :class:`InstrumentError` if it held errors.

        With an ``error_count_command``: that query, then at most ``min(count, max_entries)``
        ``:SYST:ERR?`` reads. Without: ``:SYST:ERR?`` until code 0, at most ``max_entries`` reads.
        Never loops further: a queue left undrained is itself reported in the exception.
        """
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        if self.error_count_command is not None:
            count = int(self.query_number(self.error_count_command))
            if count <= 0:
                return
            self.drain_errors(count, max_entries)
        else:
            self.drain_errors(None, max_entries)

    def drain_errors(self, count: int | None, max_entries: int = MAX_ERROR_READS,
                     first: tuple[int, str] | None = None) -> None:
        """Read up to ``max_entries`` entries (``count`` known, or None: until code 0) and raise
        :class:`InstrumentError` with them (or with a note when none could be read). ``first``: an
        entry already read (by a hot-path message); it counts towards ``max_entries``."""
        errors: list[tuple[int, str]] = [] if first is None else [first]
        reads = max_entries if count is None else min(count, max_entries)
        reads -= len(errors)
        empty = False
        for _ in range(reads):
            code, message = self.next_error()
            if code == 0:
                empty = True
                break
            errors.append((code, message))
        note = ""
        if not empty and (count is None or count > max_entries):
            reported = "an unknown number of" if count is None else str(count)
            note = f"error queue not drained: {reported} entries, {len(errors)} read"
        if errors or note:
            for code, message in errors:
                log.error("%s: error %d %s", self.name, code, message)
            raise InstrumentError(errors, self.name, note)

    def check_set_errors(self) -> list:
        """pymeasure hook after a setting that can fail: :meth:`check_errors` when ``strict_errors``."""
        if self.strict_errors:
            self.check_errors()
        return []

    def check_get_errors(self) -> list:
        """pymeasure hook after a query: getters do not read the error queue."""
        return []

    def split_error_reply(self, reply: str, values: int, command: str) -> tuple[list[str], tuple[int, str]]:
        """Split the reply of a message whose last query is ``:SYST:ERR?``: the ``values`` replies before
        it and the error entry (which may itself hold ``;``)."""
        parts = reply.strip().split(";")
        if len(parts) < values + 1 or any(not p.strip() for p in parts[:values]):
            raise ReplyError(command, reply, f"{values} replies and an error-queue entry separated by ';'")
        entry = parse_error(";".join(parts[values:]), command)
        if self.error_event_suffix:
            entry = (entry[0], entry[1].split(";", 1)[0])
        return [p.strip() for p in parts[:values]], entry

    def raise_entry(self, entry: tuple[int, str], what: str) -> None:
        """A hot-path reply carried the error ``entry`` (code ≠ 0): drain the rest (bounded, until code 0)
        and raise :class:`InstrumentError` with all of them."""
        self.drain_errors(None, first=entry)
        raise InstrumentError([entry], self.name, f"after {what}")  # pragma: no cover - drain_errors raised

    def raise_queued(self, count: float, what: str) -> None:
        """A hot-path reply reported ``count`` queued errors: drain them into :class:`InstrumentError`
        (a count whose entries were already gone still raises, with a note)."""
        self.drain_errors(int(count))
        raise InstrumentError([], self.name, f"error count was {show(count)} after {what}")

    def clear_errors(self) -> None:
        """Empty the error queue and the event registers (``*CLS``)."""
        self.write("*CLS")

    def event_status(self) -> int:
        """Read and clear the standard event status register (``*ESR?``); bit 7 (:data:`ESR_PON`, 128)
        is set once the instrument has been powered on since the last read."""
        reply = self.ask("*ESR?")
        try:
            value = int(reply.strip())
        except ValueError:
            raise ReplyError("*ESR?", reply, "an integer 0-255") from None
        if not 0 <= value <= 255:
            raise ReplyError("*ESR?", reply, "an integer 0-255")
        return value

    # ------------------------------------------------------------------- state
    def reset(self) -> None:
        """Return to the instrument's defaults (``*RST``) and wait for it to finish (``*OPC?``)."""
        self.write("*RST")
        reply = self.ask("*OPC?")
        if reply.strip().lstrip("+") != "1":
            raise ReplyError("*OPC?", reply, "1")

