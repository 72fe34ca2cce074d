"""Exception types raised by the rramlab instrument drivers.

Bad input never reaches an instrument: it raises :class:`ValueError` before any write. What the
instrument itself reports (its error queue) raises :class:`InstrumentError`; a reply the driver
cannot read raises :class:`ReplyError`; a safe-state sequence in which a step failed raises
:class:`ShutdownError` after every step was tried.
"""

from __future__ import annotations

__all__ = ["DriverError", "InstrumentError", "ReplyError", "ShutdownError"]


class DriverError(RuntimeError):
    """Base class of the errors an instrument session raises (not bad input: that is ValueError)."""


class InstrumentError(DriverError):
    """The instrument reported one or more errors in its error queue.

    ``errors`` holds ``(code, message)`` pairs in queue order, codes as integers
    (TSP prints them as ``1.10200e+03``; parsed with ``int(float(code))``).
    """

    def __init__(self, errors: list[tuple[int, str]], instrument: str = "", note: str = "") -> None:
        self.errors: list[tuple[int, str]] = list(errors)
        self.instrument = instrument
        listed = "; ".join(f"{code} {message}" for code, message in self.errors) or "no entries read"
        text = f"{instrument}: instrument error: {listed}" if instrument else f"instrument error: {listed}"
        if note:
            text += f" ({note})"
        super().__init__(text)


class ReplyError(DriverError):
    """A reply the driver cannot parse (garbled, wrong type, stale after a timeout)."""

    def __init__(self, command: str, reply: str, expected: str) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"reply {reply!r} to {command!r} is not {expected}")


class ShutdownError(DriverError):
    """One or more steps of ``shutdown()`` failed; every other step was still tried.

    ``failures`` holds ``(step, exception)`` pairs, where ``step`` is the command that failed.
    """

    def __init__(self, instrument: str, failures: list[tuple[str, BaseException]]) -> None:
        self.failures = list(failures)
        listed = "; ".join(f"{step!r}: {type(exc).__name__}: {exc}" for step, exc in self.failures)
        super().__init__(f"{instrument}: shutdown step(s) failed: {listed}")
