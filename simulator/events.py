"""Transcript and event log of a simulated bench.

The transcript holds every message exchanged with an emulated instrument, with its simulated
timestamp; the event log holds what happened on the bench (output on/off, relay closed while a source
was live, compliance reached, faults injected). Both exist for debugging, replay and tests.

Every entry and event names the client it was caused by (``client``: the pid of a bench-server client,
0 for the process that owns the bench); the bench sets :attr:`EventLog.client` and
:attr:`Transcript.client` while it acts for a client (:meth:`Bench.acting_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One message on the wire: ``direction`` is "write" (host → instrument) or "read"; ``client`` its pid."""

    time: float
    resource: str
    direction: str
    data: bytes
    client: int = 0


@dataclass(frozen=True, slots=True)
class BenchEvent:
    """Something that happened on the bench at simulated ``time`` (s), caused by ``client`` (pid; 0 = owner)."""

    time: float
    source: str
    kind: str
    details: dict[str, Any] = field(default_factory=dict)
    client: int = 0


class EventLog:
    """Append-only list of :class:`BenchEvent` with small query helpers."""

    def __init__(self) -> None:
        self.events: list[BenchEvent] = []
        self.client = 0                           # pid the bench is acting for now (0 = owner process)

    def add(self, time: float, source: str, kind: str, **details: Any) -> None:
        self.events.append(BenchEvent(time, source, kind, details, self.client))

    def of_kind(self, kind: str) -> list[BenchEvent]:
        return [e for e in self.events if e.kind == kind]

    def clear(self) -> None:
        self.events.clear()


class Transcript:
    """The messages exchanged with the bench's instruments, in order: the last ``limit`` of them at least
    (at most twice that is held; 0 = record nothing), so a long run does not grow memory without bound."""

    def __init__(self, limit: int = 200_000) -> None:
        if limit < 0:
            raise ValueError(f"transcript limit must be >= 0 entries, got {limit}")
        self.limit = limit
        self.entries: list[TranscriptEntry] = []
        self.dropped = 0                          # oldest entries discarded to stay within the limit
        self.client = 0                           # pid the bench is acting for now (0 = owner process)

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def add(self, time: float, resource: str, direction: str, data: bytes) -> None:
        if self.limit:
            self.entries.append(TranscriptEntry(time, resource, direction, data, self.client))
            if len(self.entries) >= 2 * self.limit:           # amortized O(1): trim in one go
                drop = len(self.entries) - self.limit
                del self.entries[:drop]
                self.dropped += drop

    def writes(self, resource: str | None = None) -> list[bytes]:
        """Messages sent by the host (optionally to one resource)."""
        return [e.data for e in self.entries
                if e.direction == "write" and (resource is None or e.resource == resource)]

    def pairs(self, resource: str) -> list[tuple[bytes, bytes | None]]:
        """(command, reply) pairs for one resource; reply is None when a write got no read."""
        out: list[tuple[bytes, bytes | None]] = []
        for e in self.entries:
            if e.resource != resource:
                continue
            if e.direction == "write":
                out.append((e.data, None))
            elif out and out[-1][1] is None:
                out[-1] = (out[-1][0], e.data)
            else:
                out.append((b"", e.data))
        return out

    def clear(self) -> None:
        self.entries.clear()
