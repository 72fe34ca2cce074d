"""Instrument error queue (TSP style: code, message, severity, node)."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

QUEUE_OVERFLOW = -350


class QueuedError(NamedTuple):
    code: int
    message: str
    severity: int
    node: int


class ErrorQueue:
    """FIFO error queue with the instrument's depth; overflow replaces the newest entry with -350."""

    def __init__(self, depth: int = 100, node: int = 1) -> None:
        self.depth = depth
        self.node = node
        self._q: deque[QueuedError] = deque()

    def push(self, code: int, message: str, severity: int = 20) -> None:
        if len(self._q) >= self.depth:
            self._q[-1] = QueuedError(QUEUE_OVERFLOW, "Queue overflow", 30, self.node)
            return
        self._q.append(QueuedError(code, message, severity, self.node))

    def pop(self) -> QueuedError:
        """Oldest entry, or the 'empty' entry: code 0, "Queue Is Empty", severity 0, node 0 (a 2600A driver
        used on hardware ends its drain loop on ``0.00000e+00\tQueue Is Empty\t0.00000e+00\t0.00000e+00``;
        the 2600B manual gives code and severity 0 for an empty queue, not the node)."""
        if self._q:
            return self._q.popleft()
        return QueuedError(0, "Queue Is Empty", 0, 0)

    def clear(self) -> None:
        self._q.clear()

    def __len__(self) -> int:
        return len(self._q)

    def codes(self) -> list[int]:
        return [e.code for e in self._q]
