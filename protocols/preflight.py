"""Preflight: the whole recipe checked against the station's safety envelope before the first VISA write.

A rejected recipe sends nothing: the runner calls :func:`preflight` before opening the station.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rramlab.drivers.station_config import SafetyEnvelope

from .base import Protocol, Violation


class PreflightError(ValueError):
    """The recipe leaves the safety envelope; ``violations`` lists every finding."""

    def __init__(self, violations: Sequence[Violation | str]) -> None:
        self.violations = list(violations)
        super().__init__("recipe refused before any instrument write:\n  " +
                         "\n  ".join(str(v) for v in self.violations))


def preflight(protocols: Sequence[Protocol], envelope: SafetyEnvelope) -> None:
    """Raise PreflightError listing every violation of every step, and the recipe's worst-case pulse count
    per cell against ``safety.max_pulses_per_cell``."""
    found: list[Violation] = []
    pulses: Counter = Counter()
    for p in protocols:
        found.extend(p.check(envelope))
        pulses.update(p.pulses_per_cell())
    if pulses:
        cell, worst = max(pulses.items(), key=lambda kv: kv[1])
        if worst > envelope.max_pulses_per_cell:
            steps = [p.label for p in protocols if p.pulses_per_cell().get(cell)]
            found.append(Violation("recipe", "pulses per cell", worst,
                                   f"<= {envelope.max_pulses_per_cell} (safety.max_pulses_per_cell); cell {cell} "
                                   f"would receive up to {worst} pulses in steps {steps}"))
    if found:
        raise PreflightError(found)
