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


class SystemClock:
    """Monotonic wall-clock time (s) for a real bench."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait_until(self, t: float) -> None:
        self.wait(t - self.now())

    @property
    def simulated(self) -> bool:
        return False


class BenchController(Instrument):
    """rramlab simulated-bench controller (SCPI): the bench's virtual clock.

    Commands: ``*IDN?``, ``CLOCk:TIME?``, ``CLOCk:WAIT <s>``, ``CLOCk:WAIT:UNTil <t>``, ``SYSTem:ERRor?``.
    """

    def __init__(self, adapter: Any, name: str = "rramlab bench controller", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, includeSCPI=False, **kwargs)

    @property
    def id(self) -> str:
        return self.ask("*IDN?").strip()

    def now(self) -> float:
        """Simulated time since the bench was built (s)."""
        return float(self.ask("CLOCk:TIME?"))

    def wait(self, seconds: float) -> None:
        if not math.isfinite(seconds):
            raise ValueError(f"wait must be finite, got {seconds!r} s")
        if seconds > 0:
            self.write(f"CLOCk:WAIT {float(seconds)!r}")

    def wait_until(self, t: float) -> None:
        if not math.isfinite(t):
            raise ValueError(f"wait_until must be finite, got {t!r} s")
        self.write(f"CLOCk:WAIT:UNTil {float(t)!r}")

    @property
    def simulated(self) -> bool:
        return True

    def shutdown(self) -> None:
        """Nothing to switch off."""
