"""Clocks a station waits on: real time on a lab bench, the bench controller's virtual time in simulation.

Protocols never call ``time.sleep``; they call ``station.clock.wait_until(t)``. On the simulated bench
the clock is an instrument like any other: the rramlab bench controller, reached over VISA with a
small SCPI command set (``CLOCk:TIME?``, ``CLOCk:WAIT:UNTil <t>``), so waiting ten years takes no time.
"""

from __future__ import annotations

import math
import time
from typing import Any

from pymeasure.instruments import Instrument

from .errors import InstrumentError, ReplyError
from .roles import ROLE_CLOCK
from .visa_role import VisaRole


class WaitInterrupted(Exception):
    """A wait was cut short by :meth:`SystemClock.interrupt` (e.g. Ctrl-C during a long retention wait)."""


class SystemClock:
    """Monotonic wall-clock time (s) for a real bench; waits can be interrupted from a signal handler."""

    slice = 0.2                      # s; the longest a wait goes without checking for an interrupt

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self.origin_unix: float | None = time.time()      # UTC epoch (s) of now() == 0
        self._interrupted = False

    def now(self) -> float:
        """Seconds since the clock's origin (when it was made, or the origin it continues)."""
        return time.monotonic() - self._t0

    def continue_from(self, origin_unix: float) -> None:
        """Count from an earlier origin (UTC epoch, s): a resumed run continues its run's time axis."""
        self._t0 = time.monotonic() - (time.time() - origin_unix)
        self.origin_unix = origin_unix

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` s, in slices; raise :class:`WaitInterrupted` once :meth:`interrupt` is called."""
        if not math.isfinite(seconds):
            raise ValueError(f"wait must be finite, got {seconds!r} s")
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._interrupted:
                self._interrupted = False
                raise WaitInterrupted(f"wait interrupted with {left:.1f} s left")
            time.sleep(min(self.slice, left))

    def wait_until(self, t: float) -> None:
        """Sleep until :meth:`now` reaches ``t`` s (at once if it has)."""
        self.wait(t - self.now())

    def interrupt(self) -> None:
        """Cut the current (or the next) wait short; safe to call from a signal handler."""
        self._interrupted = True

    def reset_interrupt(self) -> None:
        """Forget an interrupt no wait consumed (a new run starts)."""
        self._interrupted = False

    @property
    def simulated(self) -> bool:
        return False


class BenchController(VisaRole, Instrument):
    """rramlab simulated-bench controller (SCPI): the bench's virtual clock.

    Commands: ``*IDN?``, ``CLOCk:TIME?``, ``CLOCk:EPOCh?``, ``CLOCk:WAIT <s>``, ``CLOCk:WAIT:UNTil <t>``,
    ``SYSTem:ERRor?``, ``*CLS``.
    """

    ROLES = frozenset({ROLE_CLOCK})

    def __init__(self, adapter: Any, name: str = "rramlab bench controller", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self._origin: float | None = None

    @property
    def id(self) -> str:
        return self.ask("*IDN?").strip()

    def power_cycled(self) -> bool:
        """The bench controller has no power cycle (a restarted bench is a new bench: its clock went back)."""
        return False

    def clear_errors(self) -> None:
        """``*CLS``."""
        self.write("*CLS")

    def check_errors(self, max_entries: int = 32) -> None:
        """Drain ``SYSTem:ERRor?`` (at most ``max_entries`` reads); InstrumentError if it held errors."""
        errors: list[tuple[int, str]] = []
        for _ in range(max_entries):
            reply = self.ask("SYSTem:ERRor?").strip()
            code, _, message = reply.partition(",")
            try:
                n = int(code)
            except ValueError:
                raise ReplyError("SYSTem:ERRor?", reply, '<code>,"<message>"') from None
            if n == 0:
                break
            errors.append((n, message.strip('"')))
        if errors:
            raise InstrumentError(errors, self.name)

    def now(self) -> float:
        """Simulated time since the bench was built (s)."""
        return float(self.ask("CLOCk:TIME?"))

    def wait(self, seconds: float) -> None:
        """Advance the virtual clock by ``seconds`` s (``CLOCk:WAIT``); takes no wall time."""
        if not math.isfinite(seconds):
            raise ValueError(f"wait must be finite, got {seconds!r} s")
        if seconds > 0:
            self.write(f"CLOCk:WAIT {float(seconds)!r}")

    def wait_until(self, t: float) -> None:
        """Advance the virtual clock to ``t`` s (``CLOCk:WAIT:UNTil``; no-op if it is later already)."""
        if not math.isfinite(t):
            raise ValueError(f"wait_until must be finite, got {t!r} s")
        self.write(f"CLOCk:WAIT:UNTil {float(t)!r}")

    @property
    def origin_unix(self) -> float:
        """UTC epoch (s since 1970) of virtual t = 0: the simulated bench's calendar (``CLOCk:EPOCh?``)."""
        if self._origin is None:
            self._origin = float(self.ask("CLOCk:EPOCh?"))
        return self._origin

    def continue_from(self, origin_unix: float) -> None:
        """Nothing to do: the bench's virtual clock runs on between sessions."""

    def interrupt(self) -> None:
        """Nothing to cut short: virtual waits are instantaneous."""

    def reset_interrupt(self) -> None:
        """Nothing to forget."""

    @property
    def simulated(self) -> bool:
        return True

    def shutdown(self) -> None:
        """Nothing to switch off."""
