"""The station: instruments from a station file wired to a 1T1R array, offering cell operations.

Protocols talk to a :class:`Station` (capability :class:`~.capabilities.CellStation`), never to pyvisa.
The station connects one cell at a time through the matrix (sources off while relays move, then the
closed crosspoints are read back), drives the word line (gate) and bit line from two SMU channels, and
checks every voltage, width and limit against the safety envelope before anything is written.
``safe_state()`` turns every output off and opens every relay, each step in its own ``try``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .bench_lock import BenchLock, LockKey, canonical_resource, host_scope, run_file_keys
from .capabilities import Reading
from .clock import BenchController, SystemClock
from .keithley707b import Keithley707B
from .keithley2636b import Keithley2636B, SMUChannel
from .station_config import StationConfig, load_station_config
from .tsp import ESR_PON

log = logging.getLogger(__name__)
T = TypeVar("T")


class SafetyError(ValueError):
    """An operation outside the station's safety envelope; nothing was sent."""


class InstrumentRebooted(RuntimeError):
    """An instrument was power-cycled during the run (its settings, current limits included, are lost)."""


class InstrumentConnectionError(RuntimeError):
    """An instrument of the station file could not be opened (no VISA library, wrong address, ...)."""


class RoutingError(RuntimeError):
    """The matrix did not close exactly the crosspoints asked for (read-back mismatch)."""


def _finite(name: str, value: float, unit: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise SafetyError(f"{name} must be a finite number of {unit}, got {value!r}")
    return v


class Station:
    """A probe station: SMU channels + switch matrix + clock, wired to one die (0-based cells)."""

    def __init__(self, config: StationConfig, *, visa_library: str | None = None) -> None:
        self.config = config
        self.rows, self.cols = config.rows, config.cols
        self.envelope = config.safety
        self.read_conditions = config.read
        self.instruments: dict[str, Any] = {}
        drivers = {"keithley2636b": Keithley2636B, "keithley707b": Keithley707B,
                   "rramlab_bench_controller": BenchController}
        for name, entry in config.instruments.items():
            library = entry.visa_library if visa_library is None else visa_library
            try:
                self.instruments[name] = drivers[entry.driver](entry.resource, name, visa_library=library,
                                                               timeout=int(entry.timeout * 1000))
            except Exception as e:  # noqa: BLE001 - pyvisa raises ValueError, OSError, VisaIOError, ...
                for opened in self.instruments.values():
                    opened.adapter.close()
                raise InstrumentConnectionError(
                    f"instruments.{name}: cannot open {entry.resource} with VISA library "
                    f"{library or '(system default)'!r}: {e}") from e
        w = config.wiring
        self.smu_bl: SMUChannel = self._channel(w.bit_line)
        self.smu_wl: SMUChannel = self._channel(w.word_line)
        self.smu = self.instruments[w.bit_line.split(".")[0]]
        self.matrix: Keithley707B = self.instruments[w.matrix]
        self.clock = self.instruments[config.clock] if config.clock != "system" else SystemClock()
        self._cell: tuple[int, int] | None = None
        self._settings: dict[tuple[SMUChannel, str], float | bool] = {}
        self._pulse_width: float | None = None
        self._armed = False                  # current limits set and verified since the last reset
        self._opened = False                 # open() was called: something may have been sent
        self._lock: BenchLock | None = None
        self.pulses_per_cell: dict[tuple[int, int], int] = {}
        # called with (row, col) before any energising write to a cell (pulse or DC point), after the pulse
        # was charged to pulses_per_cell: the run engine writes ahead there (cell in flight, pulse ledger)
        self.before_energise: Callable[[int, int], None] | None = None

    @classmethod
    def from_file(cls, path: str | Path | None = None, *, visa_library: str | None = None) -> Station:
        """Station from a station file (None: the default simulated station)."""
        return cls(load_station_config(path), visa_library=visa_library)

    def _channel(self, spec: str) -> SMUChannel:
        inst, ch = spec.split(".")
        return getattr(self.instruments[inst], f"smu{ch}")

    # ------------------------------------------------------------------ life cycle
    def lock_keys(self) -> list[LockKey]:
        """What a run must hold exclusively: every instrument address, within its VISA library's scope."""
        keys = []
        for name, inst in self.instruments.items():
            visalib = getattr(getattr(inst.adapter, "connection", None), "visalib", None)
            scope = getattr(visalib, "resource_scope", None) or host_scope()
            keys.append(LockKey(str(scope), canonical_resource(self.config.instruments[name].resource)))
        return keys

    def lock(self, run_file: str = "", purpose: str = "run") -> None:
        """Take the exclusive OS lock on every instrument and on ``run_file`` (:class:`~.bench_lock.BenchBusyError`
        names the holder); sends nothing. Released by :meth:`close` or when the process ends."""
        if self._lock is None:
            keys = self.lock_keys() + (run_file_keys(run_file) if run_file else [])
            self._lock = BenchLock.acquire(keys, run_file=run_file, purpose=purpose)

    def open(self) -> None:
        """First action of every run: device clear, safe state, clear error queues, set and verify the current
        limits. The device clear (VISA viClear: IEEE 488.1 SDC on GPIB) drops replies an earlier client left
        unread — e.g. one killed between a query and its read — so no stale reply answers this run's first
        query."""
        self._opened = True
        for inst in self.instruments.values():
            try:
                inst.adapter.connection.clear()
            except Exception as e:  # noqa: BLE001 - safe state must still be tried
                log.warning("device clear of %s failed: %s", inst.name, e)
        failures = self.safe_state()
        if failures:
            raise RuntimeError("could not put the station in a safe state: " + "; ".join(failures))
        for inst in self._tsp_instruments():
            inst.clear_errors()
            inst.event_status()                             # clears a power-on flag from before the run
        self.arm()

    def arm(self) -> None:
        """Set the mandatory current limits and read them back (refuse to run if they differ)."""
        self._armed = False
        self._settings.clear()
        for terminal, channel in (("bit_line", self.smu_bl), ("word_line", self.smu_wl)):
            limit = self.envelope.current_limit[terminal]
            channel.current_limit = limit
            back = channel.current_limit
            if not math.isclose(back, limit, rel_tol=1e-5):
                raise RuntimeError(f"{terminal} current limit read back {back} A, set {limit} A")
            self._settings[(channel, "current_limit")] = limit
        self._pulse_width = None
        self._armed = True

    def _require_armed(self) -> None:
        if not self._armed:
            raise SafetyError("the station is not armed (current limits not set and verified since it was "
                              "opened, rebooted or failed to reach safe state): call open() first")

    def _tsp_instruments(self) -> list[Keithley2636B | Keithley707B]:
        return [i for i in self.instruments.values() if isinstance(i, Keithley2636B | Keithley707B)]

    def checkpoint(self) -> None:
        """Cell boundary check of every instrument: a power-on since :meth:`open` (``*ESR?`` PON: it
        rebooted and lost its current limits) raises :class:`InstrumentRebooted`; then the error queue is
        drained (pulses do not read it), so an instrument error stops the run before the next cell."""
        for inst in self._tsp_instruments():
            if inst.event_status() & ESR_PON:
                self._settings.clear()
                self._pulse_width = None
                self._armed = False
                raise InstrumentRebooted(f"{inst.name}: powered on during the run (*ESR? PON bit): its settings "
                                         "and current limits are lost; the run stops here")
            inst.check_errors()

    def identities(self) -> dict[str, str]:
        """``*IDN?`` of every instrument."""
        return {name: inst.id for name, inst in self.instruments.items()}

    def close(self) -> None:
        """Safe state if anything may have been sent (:meth:`open` was called), then close every VISA
        session and release the bench lock. A station that was never opened sends nothing here."""
        try:
            if self._opened:
                self.safe_state()
        finally:
            for inst in self.instruments.values():
                try:
                    inst.adapter.close()
                except Exception as e:  # noqa: BLE001 - closing must go on
                    log.warning("closing %s: %s", inst.name, e)
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Station:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def safe_state(self) -> list[str]:
        """Every output off at 0 V, every relay open; each instrument in its own ``try``, even through a
        Ctrl-C (re-raised once every instrument was tried). Returns what failed; after a failure the
        station is disarmed and forgets what it believed that instrument's settings were."""
        failures: list[str] = []
        pending: BaseException | None = None
        order = [i for i in self.instruments.values() if isinstance(i, Keithley2636B)]
        order += [i for i in self.instruments.values() if isinstance(i, Keithley707B)]
        for inst in order:
            try:
                inst.shutdown()
            except BaseException as e:  # noqa: BLE001 - go on with the next instrument, whatever happened
                failures.append(f"{inst.name}: {str(e) or type(e).__name__}")
                if not isinstance(e, Exception):
                    pending = pending or e
                self._forget(inst)
            else:
                if isinstance(inst, Keithley2636B):
                    for ch in (inst.smua, inst.smub):
                        self._settings[(ch, "output_enabled")] = False
                        self._settings[(ch, "source_voltage")] = 0.0
        self._cell = None
        for key in [k for k in self._settings if k[1] not in ("current_limit", "output_enabled", "source_voltage")]:
            del self._settings[key]
        for f in failures:
            log.error("safe state: %s", f)
        if failures:
            self._armed = False
        if pending is not None:
            raise pending
        return failures

    def _forget(self, inst: Any) -> None:
        """Drop cached settings of ``inst`` (its state is unknown after a failed shutdown)."""
        if isinstance(inst, Keithley2636B):
            for key in [k for k in self._settings if k[0] in (inst.smua, inst.smub)]:
                del self._settings[key]
            self._pulse_width = None

    # ------------------------------------------------------------------ safety
    def check_voltage(self, terminal: str, value: float, name: str) -> float:
        """``value`` (V) as a float if the envelope allows it on ``terminal``, else SafetyError naming ``name``."""
        v = _finite(name, value, "V")
        if allowed := self.envelope.voltage_violation(terminal, v):
            raise SafetyError(f"{name} must be {allowed}, got {v} V")
        return v

    def check_pulse(self, amplitude: float, width: float) -> tuple[float, float]:
        """(amplitude V, width s) of a bit-line pulse, checked for voltage, width and energy."""
        a = self.check_voltage("bit_line", amplitude, "pulse amplitude")
        w = _finite("pulse width", width, "s")
        if allowed := self.envelope.width_violation(w):
            raise SafetyError(f"pulse width must be {allowed}, got {w} s")
        if allowed := self.envelope.energy_violation(a, w):
            raise SafetyError(f"pulse energy must be {allowed}, got {self.envelope.pulse_energy(a, w):.3g} J")
        return a, w

    def check_limit(self, terminal: str, current_limit: float) -> float:
        """``current_limit`` (A) as a float if within (0, safety.current_limit] on ``terminal``."""
        c = _finite("current_limit", current_limit, "A")
        if allowed := self.envelope.limit_violation(terminal, c):
            raise SafetyError(f"current_limit must be {allowed}, got {c} A")
        return c

    def _count_pulse(self, row: int, col: int) -> None:
        """Charge one pulse to cell (row, col); SafetyError (nothing sent) beyond safety.max_pulses_per_cell."""
        n = self.pulses_per_cell.get((row, col), 0) + 1
        if n > self.envelope.max_pulses_per_cell:
            raise SafetyError(f"cell ({row}, {col}): pulse {n} exceeds safety.max_pulses_per_cell = "
                              f"{self.envelope.max_pulses_per_cell} for this station session")
        self.pulses_per_cell[(row, col)] = n

    def check_cell(self, row: int, col: int) -> None:
        """ValueError unless (row, col) is an integer cell of the array (0-based)."""
        if not (0 <= row < self.rows and 0 <= col < self.cols) or int(row) != row or int(col) != col:
            raise ValueError(f"cell (row, col) must be within rows 0..{self.rows - 1}, cols 0..{self.cols - 1}, "
                             f"got ({row}, {col})")

    # ------------------------------------------------------------------ routing
    def _set(self, channel: SMUChannel, attr: str, value: float | bool) -> None:
        """Write ``channel.attr = value`` unless the cache says it already holds (saves a round trip)."""
        key = (channel, attr)
        if self._settings.get(key) != value:
            self._settings.pop(key, None)        # unknown until the write is confirmed (it may half-succeed)
            setattr(channel, attr, value)
            self._settings[key] = value

    def release(self) -> None:
        """Bit line to 0 V and both outputs off (relays stay as they are)."""
        for ch in (self.smu_bl, self.smu_wl):
            self._set(ch, "source_voltage", 0.0)
            self._set(ch, "output_enabled", False)

    def connect(self, row: int, col: int) -> None:
        """Route cell (row, col): outputs off, exclusive close of its gate, bit- and source-line crosspoints,
        then read the closed crosspoints back (RoutingError on any mismatch)."""
        self.check_cell(row, col)
        self._require_armed()
        if self._cell == (row, col):
            return
        self.release()
        points = list(self.config.crosspoints(row, col))
        self._cell = None
        self.matrix.exclusive_close(points)
        closed = sorted(self.matrix.closed_channels)
        if closed != sorted(points):
            self.matrix.open_all()
            raise RoutingError(f"cell ({row}, {col}): asked for {sorted(points)}, matrix reports {closed}")
        self._cell = (row, col)

    def _bias(self, gate_voltage: float, bl_limit: float | None = None) -> None:
        """Gate on at gate_voltage (V), bit line on at 0 V with its limit (A; default: the envelope's);
        outputs on after the levels are set. Refuses (SafetyError) unless the station is armed."""
        self._require_armed()
        self.check_voltage("word_line", gate_voltage, "gate voltage")
        self._set(self.smu_wl, "source_voltage", gate_voltage)
        self._set(self.smu_wl, "output_enabled", True)
        limit = self.envelope.current_limit["bit_line"] if bl_limit is None else bl_limit
        self._set(self.smu_bl, "current_limit", limit)
        self._set(self.smu_bl, "source_voltage", 0.0)
        self._set(self.smu_bl, "output_enabled", True)

    # ------------------------------------------------------------------ cell ops
    def read(self, row: int, col: int, *, voltage: float | None = None, nplc: float | None = None,
             gate_voltage: float | None = None) -> Reading:
        """Read cell (row, col) at ``voltage`` V (default: the station's read voltage) on the bit line."""
        rc = self.read_conditions
        v = self.check_voltage("bit_line", rc.voltage if voltage is None else voltage, "read voltage")
        gate = self.check_voltage("word_line", rc.gate_voltage if gate_voltage is None else gate_voltage,
                                  "gate voltage")
        self.check_cell(row, col)
        self.connect(row, col)
        self._bias(gate)
        self._set(self.smu_bl, "nplc", rc.nplc if nplc is None else nplc)
        current = self._sourcing(lambda: self.smu_bl.measure_current_at(v), 0.0)   # back at 0 V afterwards
        return Reading(row, col, v, current, self.clock.now())

    def _prepare_pulse(self, row: int, col: int, amplitude: float, width: float,
                       gate_voltage: float | None) -> float:
        """Check everything, charge the pulse to the cell's budget, route and bias; returns the amplitude (V)."""
        a, w = self.check_pulse(amplitude, width)
        gate = self.check_voltage("word_line", self.read_conditions.gate_voltage if gate_voltage is None
                                  else gate_voltage, "gate voltage")
        self.check_cell(row, col)
        self._require_armed()
        self._count_pulse(row, col)
        if self.before_energise is not None:
            self.before_energise(row, col)
        self.connect(row, col)
        self._bias(gate)
        if self._pulse_width != w:
            self._pulse_width = None             # unknown until the whole configuration went through
            self.smu_bl.configure_pulse(w, self.envelope.current_limit["bit_line"])
            self._pulse_width = w
        return a

    def _sourcing(self, operation: Callable[[], T], level_after: float) -> T:
        """Run a bit-line operation that moves its source level; the cached level is unknown while it
        runs (a failure half-way leaves it so, and the next bias rewrites it) and ``level_after`` V after."""
        key = (self.smu_bl, "source_voltage")
        self._settings.pop(key, None)
        result = operation()
        self._settings[key] = level_after
        return result

    def pulse(self, row: int, col: int, amplitude: float, width: float, gate_voltage: float | None = None) -> None:
        """One timed pulse of ``amplitude`` V and ``width`` s on the bit line, gate at ``gate_voltage`` V."""
        a = self._prepare_pulse(row, col, amplitude, width, gate_voltage)
        self._sourcing(lambda: self.smu_bl.pulse(a), 0.0)

    def pulse_read(self, row: int, col: int, amplitude: float, width: float,
                   gate_voltage: float | None = None, nplc: float | None = None) -> Reading:
        """Pulse, then read at the station's read voltage (integration ``nplc`` power-line cycles) with the
        gate still at the pulse's ``gate_voltage``: one instrument round trip. (A read at the station's read
        gate is :meth:`read`.)"""
        a = self._prepare_pulse(row, col, amplitude, width, gate_voltage)
        rc = self.read_conditions
        self._set(self.smu_bl, "nplc", rc.nplc if nplc is None else nplc)
        current = self._sourcing(lambda: self.smu_bl.pulse_and_measure(a, rc.voltage), 0.0)
        return Reading(row, col, rc.voltage, current, self.clock.now())

    def dc_point(self, row: int, col: int, voltage: float, *, gate_voltage: float, current_limit: float,
                 nplc: float) -> Reading:
        """Hold the bit line at ``voltage`` V (DC, output stays on, current limited to ``current_limit`` A,
        gate at ``gate_voltage`` V) and measure current and compliance (as the SMU reports it); for
        staircase sweeps."""
        v = self.check_voltage("bit_line", voltage, "sweep voltage")
        limit = self.check_limit("bit_line", current_limit)
        self.check_voltage("word_line", gate_voltage, "gate voltage")
        self.check_cell(row, col)
        self._require_armed()
        if self.before_energise is not None:
            self.before_energise(row, col)
        self.connect(row, col)
        self._bias(gate_voltage, limit)
        self._set(self.smu_bl, "nplc", nplc)
        current, compliance = self._sourcing(lambda: self.smu_bl.sweep_point(v), v)
        return Reading(row, col, v, current, self.clock.now(), compliance)
