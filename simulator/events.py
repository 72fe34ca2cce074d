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


#: kinds logged on every relay move or staircase point: only the last ``limit`` of them are kept
ROUTINE = frozenset({"relays", "compliance", "device_clear", "bus_trigger", "timeout"})


class EventLog:
    """List of :class:`BenchEvent` with small query helpers. Every event of a rare kind (hot switches,
    faults, reboots, shorted terminals) is kept; routine ones (:data:`ROUTINE`) are thinned to the last
    ``limit`` once there are twice as many, so a 64×64 campaign does not grow memory without bound.
    ``counts`` holds the number of events of each kind ever added; ``dropped`` how many were thinned."""

    def __init__(self, limit: int = 50_000) -> None:
        self.events: list[BenchEvent] = []
        self.client = 0                           # pid the bench is acting for now (0 = owner process)
        self.limit = limit
        self.counts: dict[str, int] = {}
        self.dropped = 0
        self._routine = 0

    def add(self, time: float, source: str, kind: str, **details: Any) -> None:
        self.events.append(BenchEvent(time, source, kind, details, self.client))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind in ROUTINE:
            self._routine += 1
            if self._routine > 2 * self.limit:
                self._thin()

    def _thin(self) -> None:
        """Drop the oldest routine events, keeping the last ``limit`` of them and every rare one."""
        excess = self._routine - self.limit
        kept: list[BenchEvent] = []
        for e in self.events:
            if excess > 0 and e.kind in ROUTINE:
                excess -= 1
                self.dropped += 1
                continue
            kept.append(e)
        self.events = kept
        self._routine = self.limit

    def of_kind(self, kind: str) -> list[BenchEvent]:
        return [e for e in self.events if e.kind == kind]

    def clear(self) -> None:
        self.events.clear()
        self.counts.clear()
        self._routine = 0


ENTRY_BYTES = 120          # budget per transcript entry (B): ~60 B of entry plus a short message; at most twice held


class Transcript:
    """The messages exchanged with the bench's instruments, in order: the last ``limit`` of them at least, or
    as many of the last as fit ``limit`` × :data:`ENTRY_BYTES` bytes of messages and entries (on-instrument loops
    send and receive kilobytes per message); at most twice that is held; 0 = record nothing. So a long run
    does not grow memory without bound."""

    def __init__(self, limit: int = 200_000) -> None:
        if limit < 0:
            raise ValueError(f"transcript limit must be >= 0 entries, got {limit}")
        self.limit = limit
        self.max_bytes = limit * ENTRY_BYTES
        self.entries: list[TranscriptEntry] = []
        self._sizes: list[int] = []               # bytes charged per entry (message + entry overhead)
        self._bytes = 0
        self.dropped = 0                          # oldest entries discarded to stay within the limit
        self.client = 0                           # pid the bench is acting for now (0 = owner process)

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def add(self, time: float, resource: str, direction: str, data: bytes) -> None:
        if self.limit:
            self.entries.append(TranscriptEntry(time, resource, direction, data, self.client))
            size = len(data) + ENTRY_BYTES // 2
            self._sizes.append(size)
            self._bytes += size
            if len(self.entries) >= 2 * self.limit or self._bytes >= 2 * self.max_bytes:   # amortized O(1)
                drop = max(len(self.entries) - self.limit, 0)
                freed = sum(self._sizes[:drop])
                while self._bytes - freed > self.max_bytes and drop < len(self.entries) - 1:
                    freed += self._sizes[drop]
                    drop += 1
                del self.entries[:drop]
                del self._sizes[:drop]
                self._bytes -= freed
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
        self._sizes.clear()
        self._bytes = 0
