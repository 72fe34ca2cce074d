"""Fault plan: inject instrument and device faults by transaction number or command match.

A fault fires when a host write matches it: ``at`` is the bench-wide write number (1-based) and
``match`` a regular expression searched in the decoded command; either or both may be given, plus an
optional ``resource``. ``times`` bounds how often it fires (default once).

Kinds:
  drop_reply     the reply the command produces is lost (the host's read times out)
  late_reply     the reply becomes readable only ``delay`` s of simulated time later
  garble         the reply is replaced by ``reply`` (bytes or str, termination added if missing)
  queue_error    the instrument queues error ``code``/``message`` after the command
  reboot         the instrument power-cycles before executing the command (state lost, outputs off)
  relay_fail     crosspoints named in the command do not close (relay stuck open)
  no_compliance  the SMU stops applying its current limit (compliance silently not applied)
  stuck_cells    cells ``cells`` (flat indices) become stuck in ``state`` ("lrs" or "hrs")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KINDS = frozenset({"drop_reply", "late_reply", "garble", "queue_error", "reboot", "relay_fail",
                   "no_compliance", "stuck_cells"})


@dataclass
class Fault:
    """One planned fault (see the module docstring)."""

    kind: str
    at: int | None = None
    match: str | None = None
    resource: str | None = None
    times: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.at is None and self.match is None:
            raise ValueError("a fault needs 'at' (write number) or 'match' (regular expression)")
        self._rx = re.compile(self.match) if self.match is not None else None

    def matches(self, number: int, resource: str, command: str) -> bool:
        if self.fired >= self.times:
            return False
        if self.resource is not None and self.resource != resource:
            return False
        if self.at is not None and self.at != number:
            return False
        return self._rx is None or self._rx.search(command) is not None


class FaultPlan:
    """The faults armed on one bench."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, kind: str, *, at: int | None = None, match: str | None = None,
            resource: str | None = None, times: int = 1, **params: Any) -> Fault:
        fault = Fault(kind, at, match, resource, times, dict(params))
        self.faults.append(fault)
        return fault

    def firing(self, number: int, resource: str, command: str) -> list[Fault]:
        """Faults that fire on this write (their counters are advanced)."""
        hits = [f for f in self.faults if f.matches(number, resource, command)]
        for f in hits:
            f.fired += 1
        return hits

    def clear(self) -> None:
        self.faults.clear()
