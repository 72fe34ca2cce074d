"""Bench ports: what the ``@rramlab`` VISA library needs from a bench, in-process or behind a server.

The library keeps the VISA sessions (ids, attributes, pending bytes, termination characters); a port
carries the few operations that reach the instruments. :class:`LocalBenchPort` wraps an in-process
:class:`~.bench.Bench` (the bench server uses it too, so both paths run the same code);
:class:`~.remote_port.RemoteBenchPort` talks to a bench server.
"""

from __future__ import annotations

import os
import uuid
from typing import Protocol

from .bench import Bench

INFINITE = 0xFFFFFFFF               # VI_TMO_INFINITE (ms)


class BenchPort(Protocol):
    """The bench as seen by the VISA library. ``scope`` names the set of instruments it reaches:
    resources with the same name in the same scope are the same instrument."""

    scope: str

    def resources(self) -> tuple[str, ...]:
        """VISA resource names of the bench's instruments."""

    def write(self, resource: str, data: bytes) -> None:
        """One host write (END on its last byte)."""

    def read(self, resource: str, timeout: int) -> bytes | None:
        """The next whole reply, waited for on the virtual clock up to ``timeout`` (ms); None = VI_ERROR_TMO."""

    def status_byte(self, resource: str) -> int:
        """IEEE 488.2 status byte (serial poll: bit 6 is RQS, cleared by the poll)."""

    def wait_srq(self, resource: str, timeout: int) -> int | None:
        """Wait on the virtual clock up to ``timeout`` (ms) for the instrument to request service;
        the status byte of the serial poll that answers the request, or None (VI_ERROR_TMO)."""

    def device_clear(self, resource: str) -> None:
        """IEEE 488.1 selected device clear."""

    def assert_trigger(self, resource: str) -> None:
        """Bus trigger (GET)."""

    def connect(self) -> None:
        """Make the port usable (again) when a resource manager opens on it."""

    def release(self) -> None:
        """No resource manager is open on the port any more (a remote port disconnects)."""


class LocalBenchPort:
    """An in-process bench: private to this library object (and this process)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._uid = uuid.uuid4().hex

    @property
    def scope(self) -> str:
        return f"rramlab-bench:{os.getpid()}:{self._uid}"   # a forked child's copy is another bench

    def resources(self) -> tuple[str, ...]:
        return tuple(self.bench.instruments)

    def write(self, resource: str, data: bytes) -> None:
        self.bench.write(resource, data)

    def read(self, resource: str, timeout: int) -> bytes | None:
        msg = self.bench.read(resource)
        return msg if msg is not None else self._wait_for_reply(resource, timeout)

    def _wait_for_reply(self, resource: str, timeout: int) -> bytes | None:
        """Wait on the virtual clock for a late reply; time out like the real bus otherwise."""
        inst = self.bench.instruments[resource]
        due = inst.pending_until()
        clock = self.bench.clock
        if timeout == INFINITE:
            if due is not None:
                clock.advance_to(due)
                return self.bench.read(resource)
            return None
        deadline = clock.now + timeout / 1000.0
        if due is not None and due <= deadline:
            clock.advance_to(due)
            msg = self.bench.read(resource)
            if msg is not None:
                return msg
        clock.advance_to(deadline)
        self.bench.events.add(clock.now, inst.name, "timeout", timeout=timeout / 1000.0)
        return None

    def status_byte(self, resource: str) -> int:
        return self.bench.instruments[resource].serial_poll()

    def wait_srq(self, resource: str, timeout: int) -> int | None:
        """Advance the clock through the instrument's pending status changes (late replies, pending
        ``*OPC`` …) up to the timeout until it asserts SRQ; then serial-poll it (clears RQS)."""
        inst = self.bench.instruments[resource]
        clock = self.bench.clock
        deadline = None if timeout == INFINITE else clock.now + timeout / 1000.0
        while not inst.srq:
            due = inst.status_due()
            if due is None or (deadline is not None and due > deadline):
                if deadline is not None:
                    clock.advance_to(deadline)
                self.bench.events.add(clock.now, inst.name, "timeout", timeout=None if deadline is None
                                      else timeout / 1000.0, waiting="srq")
                return None
            clock.advance_to(due)
        return inst.serial_poll()

    def device_clear(self, resource: str) -> None:
        self.bench.instruments[resource].device_clear()

    def assert_trigger(self, resource: str) -> None:
        self.bench.instruments[resource].assert_trigger()

    def connect(self) -> None:
        pass

    def release(self) -> None:
        pass
