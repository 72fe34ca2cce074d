"""Base class of every emulated instrument: message I/O, output queue, status byte, faults.

An emulated instrument receives whole messages (the VISA layer hands over each write), executes each
line, and queues replies exactly as the instrument would put them on the bus. Replies carry the
simulated time from which they can be read (a late reply is not there yet).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bench import Bench
    from .faults import Fault

# IEEE 488.2 status byte bits
STB_EAV = 4     # error available
STB_MAV = 16    # message available
STB_ESB = 32    # standard event summary
STB_MSS = 64    # master summary

ESR_PON = 128


class EmulatedInstrument:
    """A message-based instrument on the simulated bench."""

    model = "generic"
    write_termination = b"\n"
    read_termination = b"\n"

    def __init__(self, bench: Bench, name: str, resource: str) -> None:
        self.bench = bench
        self.clock = bench.clock
        self.timing = bench.timing
        self.name = name
        self.resource = resource
        self._out: deque[tuple[float, bytes]] = deque()
        self._reply_faults: list[Fault] = []
        self.esr = ESR_PON

    # ----------------------------------------------------------------- host side
    def receive(self, data: bytes, faults: list[Fault]) -> None:
        """Execute one host write (VISA END asserted on its last byte)."""
        self.clock.advance(self.timing.bus_write + self.timing.bus_per_byte * len(data))
        for f in faults:
            if f.kind == "reboot":
                self.bench.events.add(self.clock.now, self.name, "reboot")
                self.power_on()
            elif f.kind in ("drop_reply", "late_reply", "garble"):
                self._reply_faults.append(f)
            elif f.kind != "queue_error":
                self.on_fault(f)
        n_before = len(self._out)
        text = data.decode("latin-1")
        for line in text.split("\n"):
            line = line.rstrip("\r")
            if line.strip():
                self.execute(line)
        for f in faults:
            if f.kind == "queue_error":
                self.queue_error(int(f.params.get("code", -300)), str(f.params.get("message", "Device error")))
        if self._reply_faults and len(self._out) > n_before:
            self._apply_reply_faults(n_before)

    def _apply_reply_faults(self, first: int) -> None:
        faults, self._reply_faults = self._reply_faults, []
        replies = list(self._out)
        new = replies[first:]
        for f in faults:
            if f.kind == "drop_reply":
                self.bench.events.add(self.clock.now, self.name, "fault_drop_reply")
                new = new[1:]
            elif f.kind == "late_reply":
                delay = float(f.params.get("delay", 1.0))
                new = [(t + delay, m) for t, m in new]
                self.bench.events.add(self.clock.now, self.name, "fault_late_reply", delay=delay)
            elif f.kind == "garble" and new:
                reply = f.params.get("reply", b"1.2E-0")
                raw = reply.encode("latin-1") if isinstance(reply, str) else bytes(reply)
                if not raw.endswith(self.read_termination):
                    raw += self.read_termination
                new = [(new[0][0], raw), *new[1:]]
                self.bench.events.add(self.clock.now, self.name, "fault_garble", reply=raw)
        self._out = deque(replies[:first] + new)

    def fetch(self) -> bytes | None:
        """The next whole reply readable now, or None (the host's read will time out)."""
        if self._out and self._out[0][0] <= self.clock.now:
            msg = self._out.popleft()[1]
            self.clock.advance(self.timing.bus_read + self.timing.bus_per_byte * len(msg))
            return msg
        return None

    def pending_until(self) -> float | None:
        """Simulated time at which the next queued reply becomes readable."""
        return self._out[0][0] if self._out else None

    def device_clear(self) -> None:
        """IEEE 488.1 SDC: empty input and output buffers, abort pending replies."""
        self._out.clear()
        self._reply_faults.clear()
        self.bench.events.add(self.clock.now, self.name, "device_clear")

    def status_byte(self) -> int:
        stb = 0
        if self.error_count():
            stb |= STB_EAV
        if self._out and self._out[0][0] <= self.clock.now:
            stb |= STB_MAV
        if self.esr:
            stb |= STB_ESB
        if stb:
            stb |= STB_MSS
        return stb

    def assert_trigger(self) -> None:
        """Bus trigger (GET / *TRG); instruments override when they use it."""
        self.bench.events.add(self.clock.now, self.name, "bus_trigger")

    # ------------------------------------------------------------ subclass API
    def reply(self, text: str) -> None:
        """Queue one reply line (termination appended)."""
        self._out.append((self.clock.now, text.encode("latin-1") + self.read_termination))

    def execute(self, line: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def queue_error(self, code: int, message: str, severity: int = 20) -> None:  # pragma: no cover
        raise NotImplementedError

    def error_count(self) -> int:  # pragma: no cover
        return 0

    def on_fault(self, fault: Fault) -> None:
        """Instrument- or device-level faults; the bench handles what the instrument does not."""
        self.bench.apply_fault(fault, self)

    def power_on(self) -> None:
        """Power-on state: output queue empty, PON set; subclasses reset their settings."""
        self._out.clear()
        self.esr = ESR_PON
