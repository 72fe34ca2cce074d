"""Virtual clock of a simulated bench.

Simulated time only moves forward, by what the real instruments would need for each operation
(see :mod:`rramlab.simulator.timing`). Waiting ten years of device time costs no wall time.
"""

from __future__ import annotations

import time


class VirtualClock:
    """Monotonic simulated time in seconds since the bench was built."""

    __slots__ = ("now", "_wall_start")

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)
        self._wall_start = time.perf_counter()

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds`` (s, >= 0) and return the new time."""
        if seconds < 0.0 or seconds != seconds:
            raise ValueError(f"clock advance must be >= 0 s, got {seconds!r}")
        self.now += seconds
        return self.now

    def advance_to(self, t: float) -> float:
        """Move simulated time to ``t`` (s) if it lies in the future; never backwards."""
        if t > self.now:
            self.now = float(t)
        return self.now

    @property
    def wall_elapsed(self) -> float:
        """Wall-clock seconds since the clock was created."""
        return time.perf_counter() - self._wall_start
