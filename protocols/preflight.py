"""Preflight: the whole recipe checked against the station's safety envelope before the first VISA write.

A rejected recipe sends nothing: the runner calls :func:`preflight` before opening the station.
"""

from __future__ import annotations

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
    """Raise PreflightError listing every violation of every step."""
    found: list[Violation] = []
    for p in protocols:
        found.extend(p.check(envelope))
    if found:
        raise PreflightError(found)
