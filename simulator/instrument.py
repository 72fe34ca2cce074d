"""Base class of every emulated instrument: message I/O, output queue, status byte, faults.

An emulated instrument receives whole messages (the VISA layer hands over each write), executes each
line, and queues replies exactly as the instrument would put them on the bus. Replies carry the
simulated time from which they can be read (a late reply is not there yet).

Status reporting follows IEEE 488.2 chapter 11: the status byte (§11.2) carries EAV (bit 2, SCPI),
MAV (bit 4) and ESB (bit 5 = ``esr & ese``, the Standard Event Status Register of §11.5.1 under its
enable register ``*ESE``) plus instrument summary bits (:meth:`EmulatedInstrument.stb_extra`). The
master summary MSS (bit 6) is ``stb & sre`` over bits 0–5 and 7 (§11.3.2, ``*SRE``). When MSS goes
from false to true the instrument requests service (RQS latched, SRQ asserted, §11.3.1); a serial
poll (:meth:`EmulatedInstrument.serial_poll`, VISA ``viReadSTB``) returns bit 6 as RQS and clears it
(§11.2.2.1), while ``*STB?`` (:meth:`EmulatedInstrument.status_byte`) returns bit 6 as MSS and
clears nothing (§11.2.2.2). ``sre`` and ``ese`` are 0 at power-on (``*PSC 1``, §10.25), so an
instrument that never sets them never requests service.
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
STB_MSS = 64    # master summary (*STB?) / RQS (serial poll)
STB_RQS = 64

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
        self.ese = 0                # *ESE: Standard Event Status Enable register (IEEE 488.2 §11.5.1.3)
        self.sre = 0                # *SRE: Service Request Enable register, bit 6 always 0 (§11.3.2)
        self._rqs = False           # requesting service: SRQ asserted until a serial poll (§11.3.1)
        self._mss = False           # last evaluated MSS (RQS is set on its false → true transition)

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
        self.status_byte()          # a new reason for service raises RQS now, not at the next poll

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
        """IEEE 488.2 status byte as ``*STB?`` returns it: bit 6 = MSS (§11.2.2.2); clears nothing."""
        self.update_status()
        stb = self.stb_extra() & ~(STB_MSS | STB_EAV | STB_MAV | STB_ESB)
        if self.error_count():
            stb |= STB_EAV
        if self._out and self._out[0][0] <= self.clock.now:
            stb |= STB_MAV
        if self.esr & self.ese:
            stb |= STB_ESB
        mss = bool(stb & self.sre & ~STB_MSS)
        if mss:
            stb |= STB_MSS
        if mss and not self._mss:
            self._rqs = True        # a new reason for service (§11.3.1)
            self.bench.events.add(self.clock.now, self.name, "srq", stb=stb)
        self._mss = mss
        return stb

    def serial_poll(self) -> int:
        """Serial poll (VISA ``viReadSTB``): bit 6 = RQS, cleared by this poll (§11.2.2.1)."""
        stb = self.status_byte() & ~STB_RQS
        if self._rqs:
            stb |= STB_RQS
            self._rqs = False
        return stb

    @property
    def srq(self) -> bool:
        """The SRQ line as this instrument drives it: asserted while RQS is set."""
        self.status_byte()
        return self._rqs

    def update_status(self) -> None:
        """Bring time-dependent status up to the clock (e.g. ESR OPC of a pending ``*OPC``)."""

    def stb_extra(self) -> int:
        """Instrument summary bits of the status byte (e.g. QUES 8, OPER 128); default none."""
        return 0

    def status_due(self) -> float | None:
        """Earliest simulated time after now at which the status byte may change by itself (a late
        reply becoming readable, a pending ``*OPC`` completing …); None when nothing is pending.
        A wait for SRQ advances the clock to these times (subclasses extend)."""
        due = self.pending_until()
        return due if due is not None and due > self.clock.now else None

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
        self.ese = self.sre = 0     # power-on status clear (*PSC 1 default, IEEE 488.2 §10.25)
        self._rqs = self._mss = False
