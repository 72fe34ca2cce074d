"""Replay of a recorded VISA session: the ``@rramlab`` library serving a transcript instead of a bench.

``pyvisa.ResourceManager("?replay=/lab/session.jsonl@rramlab")`` (or a station file's ``visa_library``)
opens the resources the transcript names and answers them from it, in strict order per resource: each
write must equal the next recorded write of that resource, each read returns the recorded reply (or
times out where the recording did), each device clear, serial poll and bus trigger must come where it
was recorded. The first difference raises :class:`ReplayDivergence` naming the message number, the
resource and both sides (recorded and sent); after it, writes are taken without comparison (the clean-up
of the failed run has no instrument to make safe) and every read, poll or clear raises it again. So a
session recorded on a lab bench (``rramlab run … --record``) becomes a test of the code that sent it.

The recording format and reader are :mod:`rramlab.drivers.recording`'s. Attributes (timeout, termination
characters), opens and closes are the session's own and are not compared; service requests are replayed
for ``wait_on_event`` followed by a serial poll, not for event handlers.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import deque
from pathlib import Path

from pyvisa import constants, errors, rname

from rramlab.drivers.recording import Message, TranscriptError, read_transcript, to_text

log = logging.getLogger(__name__)

REPLAYED = ("write", "read", "clear", "stb", "trigger", "wait_event")
RQS = 0x40


def _canonical(resource: str) -> str:
    try:
        return str(rname.parse_resource_name(resource)).upper()
    except rname.InvalidResourceName:
        return resource.upper()


class ReplayDivergence(errors.VisaIOError):
    """The session sent something else than the transcript recorded (VI_ERROR_IO with the details)."""

    def __init__(self, message: str) -> None:
        super().__init__(constants.StatusCode.error_io)
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (ReplayDivergence, (self.message,))


class ReplayPort:
    """A :class:`~.bench_port.BenchPort` answering from a transcript (module doc). Each resource manager
    opened on the library (after all earlier ones closed) replays the transcript from its start."""

    def __init__(self, path: str) -> None:
        try:
            self.transcript = read_transcript(path)
        except (OSError, TranscriptError) as e:
            raise OSError(f"replay={path}: {e}") from e
        self.path = Path(path)
        self._uid = uuid.uuid4().hex
        self._names = {_canonical(r): r for r in self.transcript.resources()}
        self._messages = [m for m in self.transcript.messages() if m.op in REPLAYED]
        self._queues: dict[str, deque[Message]] = {}
        self._divergence: str | None = None
        self._active = False
        self.rewind()

    @property
    def scope(self) -> str:
        return f"rramlab-replay:{os.getpid()}:{self._uid}"

    def rewind(self) -> None:
        """Start the transcript over."""
        self._queues = {c: deque() for c in self._names}
        for m in self._messages:
            self._queues[_canonical(m.resource)].append(m)
        self._divergence = None

    def remaining(self) -> int:
        """Recorded messages not replayed yet."""
        return sum(len(q) for q in self._queues.values())

    # ------------------------------------------------------------------------------ strict order
    def _diverge(self, where: str, detail: str) -> ReplayDivergence:
        self._divergence = f"{where}: {detail}"
        return ReplayDivergence(f"replay of {self.path.name} diverged at {self._divergence}")

    def _next(self, resource: str, op: str, sent: str) -> Message:
        """The next recorded message of ``resource``, which must be an ``op``; ``sent`` describes the call."""
        if self._divergence is not None:
            raise ReplayDivergence(f"replay of {self.path.name} stopped at its first divergence, "
                                   f"{self._divergence}")
        queue = self._queues.get(_canonical(resource))
        if not queue:
            raise self._diverge(f"the end of {resource}'s messages",
                                f"the transcript has no further message for it; sent {sent}")
        m = queue[0]
        if m.op != op:
            raise self._diverge(f"message #{m.index} on {resource}", f"recorded {m.describe()}, sent {sent}")
        return queue.popleft()

    @staticmethod
    def _raise_recorded(m: Message) -> None:
        if m.error is not None and not m.timed_out:
            raise errors.VisaIOError(m.error)

    # ------------------------------------------------------------------------------ BenchPort
    def resources(self) -> tuple[str, ...]:
        return tuple(self._names.values())

    def write(self, resource: str, data: bytes) -> None:
        if self._divergence is not None:
            return              # after the divergence: no instrument to drive (clean-up writes go quietly)
        m = self._next(resource, "write", f"write {to_text(data)!r}")
        if m.data != data:
            raise self._diverge(f"message #{m.index} on {resource}",
                                f"recorded write {to_text(m.data)!r}, sent write {to_text(data)!r}")
        if m.error is not None:
            raise errors.VisaIOError(m.error)

    def read(self, resource: str, timeout: int) -> bytes | None:
        m = self._next(resource, "read", "a read")
        self._raise_recorded(m)
        return None if m.timed_out else m.data

    def status_byte(self, resource: str) -> int:
        m = self._next(resource, "stb", "a serial poll")
        self._raise_recorded(m)
        return int(m.value or 0)

    def wait_srq(self, resource: str, timeout: int) -> int | None:
        """A recorded ``wait_on_event`` (its serial poll's status byte, or None if it timed out); a check
        without waiting (timeout 0) finds a request only where one was waited for next."""
        if self._divergence is None:
            queue = self._queues.get(_canonical(resource))
            if timeout == 0 and (not queue or queue[0].op != "wait_event"):
                return None
        m = self._next(resource, "wait_event", "a wait on an event")
        if m.error is not None:
            return None
        queue = self._queues.get(_canonical(resource))
        if queue and queue[0].op == "stb":
            return int(queue.popleft().value or 0)
        return RQS

    def device_clear(self, resource: str) -> None:
        self._raise_recorded(self._next(resource, "clear", "a device clear"))

    def assert_trigger(self, resource: str) -> None:
        self._raise_recorded(self._next(resource, "trigger", "a bus trigger"))

    def connect(self) -> None:
        if not self._active:
            self.rewind()
            self._active = True

    def release(self) -> None:
        if self._active and self._divergence is None and (left := self.remaining()):
            log.warning("replay of %s: %d recorded message(s) were not replayed", self.path, left)
        self._active = False
