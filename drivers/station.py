"""The station: instruments from a station file, by role, wired to a 1T1R array, offering cell operations.

Protocols talk to a :class:`Station` (capability :class:`~.capabilities.CellStation`), never to pyvisa.
The station holds instrument *roles* (:mod:`.roles`: source-measure channels, switch matrices, a clock),
never vendor classes: drivers come from the registry by the name the station file gives. It connects
one cell at a time through the matrices (sources off while relays move; :class:`~.array_wiring.Router`,
break-before-make, read-back), drives the word line (gate) and the bit line from two SMU channels, and
checks every voltage, width and limit against the safety envelope before anything is written.
``safe_state()`` goes by role: every source off first, then every matrix open, then every prober's chuck
separated, each in its own ``try``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .array_wiring import Router, RoutingError
from .bench_lock import BenchLock, LockKey, canonical_resource, host_scope, run_file_keys
from .capabilities import Reading
from .clock import SystemClock
from .errors import InstrumentError
from .recording import TranscriptRecorder
from .registry import driver_class
from .roles import (
    ROLE_MATRIX,
    ROLE_PROBER,
    ROLE_SMU,
    ListSweep,
    NodeSwitch,
    OutputSwitch,
    RepeatedRead,
    RoutedReads,
    SourceMeasureChannel,
    StaircaseLoop,
    SwitchedRead,
    SwitchMatrix,
    VerifyLoop,
    offers,
)
from .station_config import StationConfig, load_station_config

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["ContactError", "InstrumentConnectionError", "InstrumentRebooted", "RoutingError", "SafetyError",
           "Station", "StationMismatch", "staircase_points", "verify_points"]


def staircase_points(point: Callable[[float, float], Reading], levels: Sequence[float], nplc: Sequence[float],
                     stop_current: float | None) -> list[Reading]:
    """The staircase rule, PC in the loop: ``point(level V, nplc)`` per level until the first reading with
    current >= ``stop_current`` (A) or in compliance (None: every level). The on-instrument loops follow it."""
    out: list[Reading] = []
    for v, n in zip(levels, nplc, strict=True):
        r = point(v, n)
        out.append(r)
        if stop_current is not None and (r.current >= stop_current or r.compliance):
            break
    return out


def _chunks(n: int, size: int, start: int = 0) -> list[slice]:
    """Slices of at most ``size`` covering ``start`` … ``start + n``."""
    return [slice(k, min(k + size, start + n)) for k in range(start, start + n, size)]


def _runs(values: Sequence[float]) -> list[slice]:
    """Slices of the runs of equal consecutive ``values``."""
    out, k = [], 0
    for j in range(1, len(values) + 1):
        if j == len(values) or values[j] != values[k]:
            out.append(slice(k, j))
            k = j
    return out


def verify_points(read: Callable[[], Reading], pulse_read: Callable[[float], Reading], target: float, band: float,
                  v_set: float, v_reset: float, max_pulses: int) -> list[tuple[float, Reading]]:
    """The program-verify rule (arXiv 2502.04524), PC in the loop: read; while |G - target| > band (S) and fewer
    than ``max_pulses`` pulses, ``pulse_read(v_set if G < target else v_reset)``. Returns (pulse V before the
    read, 0 for the first; reading). The on-instrument loop follows it."""
    r = read()
    out, g = [(0.0, r)], r.conductance
    while abs(g - target) > band and len(out) <= max_pulses:
        v = v_set if g < target else v_reset
        r = pulse_read(v)
        out.append((v, r))
        g = r.conductance
    return out


class SafetyError(ValueError):
    """An operation outside the station's safety envelope; nothing was sent."""


class InstrumentRebooted(RuntimeError):
    """An instrument was power-cycled during the run (its settings, current limits included, are lost)."""


class InstrumentConnectionError(RuntimeError):
    """An instrument of the station file could not be opened (no VISA library, wrong address, ...)."""


class StationMismatch(RuntimeError):
    """The instruments found at open are not the station file's (other bench, other cards)."""


class ContactError(RuntimeError):
    """The contact check read nothing on any checked cell: the probes or the wiring are not connected."""


@dataclass(frozen=True)
class ContactReport:
    """Low-bias reads of the contact check: (row, col, current A) per cell, and the threshold (A)."""

    voltage: float
    min_current: float
    reads: tuple[tuple[int, int, float], ...]

    @property
    def connected(self) -> bool:
        return any(abs(i) >= self.min_current for *_, i in self.reads)


def _finite(name: str, value: float, unit: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise SafetyError(f"{name} must be a finite number of {unit}, got {value!r}")
    return v


class Station:
    """A probe station: SMU channels + switch matrices + clock, wired to one die (0-based cells)."""

    def __init__(self, config: StationConfig, *, visa_library: str | None = None,
                 record: str | Path | None = None) -> None:
        """``record``: write every VISA message of the station's instruments to this transcript file
        (:mod:`.recording`; never overwritten)."""
        self.config = config
        self.rows, self.cols = config.rows, config.cols
        self.envelope = config.safety
        self.read_conditions = config.read
        self.instruments: dict[str, Any] = {}
        libraries = {n: e.visa_library if visa_library is None else visa_library for n, e in config.instruments.items()}
        self.recorder = TranscriptRecorder(record, list(libraries.values())) if record is not None else None
        # instruments with their own session first, then the TSP-Link nodes reached through their master's
        for name, entry in sorted(config.instruments.items(), key=lambda item: item[1].tsplink is not None):
            library = libraries[name]
            try:
                if entry.tsplink is not None:
                    self.instruments[name] = driver_class(entry.driver).over_tsplink(
                        self.instruments[entry.tsplink.master], entry.tsplink.node, name)
                    continue
                self.instruments[name] = driver_class(entry.driver)(
                    entry.resource, name, timeout=int(entry.timeout * 1000),
                    visa_library=library if self.recorder is None else self.recorder.library(library))
            except Exception as e:  # noqa: BLE001 - pyvisa raises ValueError, OSError, VisaIOError, ...
                for opened in self.instruments.values():
                    opened.disconnect()
                if self.recorder is not None:
                    self.recorder.close()
                raise InstrumentConnectionError(
                    f"instruments.{name}: cannot open {entry.resource} with VISA library "
                    f"{library or '(system default)'!r}: {e}") from e
        w = config.wiring
        self._owners: dict[int, Any] = {}
        self._channel_ids: dict[int, str] = {}
        try:
            self.smu_bl: SourceMeasureChannel = self._channel(w.bit_line)
            self.smu_wl: SourceMeasureChannel = self._channel(w.word_line)
        except Exception as e:  # noqa: BLE001 - a driver that cannot give the channel: close what was opened
            for opened in self.instruments.values():
                opened.disconnect()
            if self.recorder is not None:
                self.recorder.close()
            raise InstrumentConnectionError(f"wiring: a driver could not give its channel: {e}") from e
        self.sources = [i for i in self.instruments.values() if ROLE_SMU in i.ROLES]
        self.matrices: dict[str, SwitchMatrix] = {n: i for n, i in self.instruments.items() if ROLE_MATRIX in i.ROLES}
        self.router = Router(w.array, self.matrices)
        self.clock = self.instruments[config.clock] if config.clock != "system" else SystemClock()
        self._cell: tuple[int, int] | None = None
        self._settings: dict[tuple[SourceMeasureChannel, str], float | bool] = {}
        self._pulse_width: float | None = None
        self._armed = False                  # current limits set and verified since the last reset
        self._opened = False                 # open() was called: something may have been sent
        self._lock: BenchLock | None = None
        self.pulses_per_cell: dict[tuple[int, int], int] = {}
        # optional on-instrument loops of the bit-line channel (None: the PC runs the loop)
        on_instrument = config.loops == "auto"
        self._staircase_loop = self.smu_bl if on_instrument and offers(self.smu_bl, StaircaseLoop) else None
        self._verify_loop = self.smu_bl if on_instrument and offers(self.smu_bl, VerifyLoop) else None
        self._list_sweep = self.smu_bl if on_instrument and offers(self.smu_bl, ListSweep) else None
        # reads routed by the SMU instrument itself: both channels on it, every matrix its TSP-Link node
        owner = self._owners[id(self.smu_bl)]
        linked = all(getattr(m, "tsplink_master", None) is owner for m in self.matrices.values())
        self._routed_reads = owner if (on_instrument and linked and self.matrices and offers(owner, RoutedReads)
                                       and self._owners[id(self.smu_wl)] is owner) else None
        # called with (row, col) before any energising write to a cell (pulse or DC point), after the pulse
        # was charged to pulses_per_cell: the run engine writes ahead there (cell in flight, pulse ledger)
        self.before_energise: Callable[[int, int], None] | None = None

    @classmethod
    def from_file(cls, path: str | Path | None = None, *, visa_library: str | None = None,
                  record: str | Path | None = None) -> Station:
        """Station from a station file or shipped example name (None: the default simulated station)."""
        return cls(load_station_config(path), visa_library=visa_library, record=record)

    def _channel(self, spec: str) -> SourceMeasureChannel:
        """The channel ``"<instrument>.<channel id>"`` of the station file; its instrument is remembered by
        identity (a driver's own ``key`` spelling is never parsed)."""
        inst, ch = spec.split(".")
        channel = self.instruments[inst].channel(ch)
        self._owners[id(channel)] = self.instruments[inst]
        self._channel_ids[id(channel)] = ch
        return channel

    # ------------------------------------------------------------------ life cycle
    def lock_keys(self) -> list[LockKey]:
        """What a run must hold exclusively: every instrument address, within its VISA library's scope."""
        return [LockKey(inst.lock_scope() or host_scope(), canonical_resource(entry.resource))
                for name, inst in self.instruments.items()
                if (entry := self.config.instruments[name]).tsplink is None]     # a node: its master's lock

    def lock(self, run_file: str = "", purpose: str = "run") -> None:
        """Take the exclusive OS lock on every instrument and on ``run_file`` (:class:`~.bench_lock.BenchBusyError`
        names the holder); sends nothing. Released by :meth:`close` or when the process ends."""
        if self._lock is None:
            keys = self.lock_keys() + (run_file_keys(run_file) if run_file else [])
            self._lock = BenchLock.acquire(keys, run_file=run_file, purpose=purpose)

    def check_same_bench(self) -> None:
        """StationMismatch unless every instrument is reached through the same simulated bench, or none is.
        (The station file is checked when loaded; this catches a library given at run time.)"""
        scopes = {name: inst.lock_scope() for name, inst in self.instruments.items()}
        simulated = {s for s in scopes.values() if s is not None}
        if len(simulated) > 1 or simulated and None in scopes.values():
            raise StationMismatch("the instruments are not on one bench: " + ", ".join(
                f"{n} on {s or 'this host'}" for n, s in scopes.items()) + "; a simulated station needs one bench "
                "(one visa_library for every instrument)")

    def open(self) -> None:
        """First action of every run: device clear, safe state, check the matrices' cards, clear error queues,
        set and verify the current limits. The device clear (VISA viClear: IEEE 488.1 SDC on GPIB) drops
        replies an earlier client left unread — e.g. one killed between a query and its read — so no stale
        reply answers this run's first query."""
        self.check_same_bench()
        self._opened = True
        for inst in self.instruments.values():
            try:
                inst.device_clear()
            except Exception as e:  # noqa: BLE001 - safe state must still be tried
                log.warning("device clear of %s failed: %s", inst.name, e)
        try:
            self._link_nodes()
        except StationMismatch as e:
            failed = self.safe_state()               # the sources off at least (the nodes may not be reachable)
            raise StationMismatch(f"{e}; safe state: {'; '.join(failed) or 'done'}") from e
        failures = self.safe_state()
        if failures:
            raise RuntimeError("could not put the station in a safe state: " + "; ".join(failures))
        for name, matrix in self.matrices.items():           # relays open, as read back, not as believed
            if matrix.MATRIX.reports_closed and (closed := matrix.closed()):
                self.router.forget()
                raise RuntimeError(f"{name}: still reports {len(closed)} closed crosspoint(s) after opening all, "
                                   f"e.g. {closed[0]}; refusing to run")
        self.check_cards()
        for inst in self.instruments.values():
            inst.clear_errors()
            inst.power_cycled()                            # clears a power-on flag from before the run
        self.arm()

    def _link_nodes(self) -> None:
        """Initialise every TSP-Link network of the station from its master (``tsplink.reset(N)``: a node that
        rebooted is reachable again only after it) and check each node's model; StationMismatch otherwise."""
        networks: dict[str, list[str]] = {}
        for name, entry in self.config.instruments.items():
            if entry.tsplink is not None:
                networks.setdefault(entry.tsplink.master, []).append(name)
        for master, nodes in networks.items():
            try:
                self.instruments[master].tsplink_reset(len(nodes) + 1)
            except InstrumentError as e:
                raise StationMismatch(f"instruments.{master}: the TSP-Link network of {', '.join(nodes)} did not come "
                                      f"up: {e}") from e
            for name in nodes:
                identity = self.instruments[name].id
                model = getattr(self.instruments[name], "MODEL", "")
                if model and f"Model {model}," not in identity:
                    raise StationMismatch(f"instruments.{name}: TSP-Link node {self.instruments[name].tsplink_node} of "
                                          f"{master} is {identity!r}, not a {model}")

    def check_cards(self) -> None:
        """StationMismatch unless every matrix holds the cards its station-file entry lists (where it reports)."""
        for name, matrix in self.matrices.items():
            if not matrix.MATRIX.reports_cards:
                continue
            expected = self.config.instruments[name].cards or {}
            found = matrix.installed_cards()
            wrong = {slot: (model, found.get(slot, "")) for slot, model in expected.items()
                     if found.get(slot, "") != model}
            if wrong:
                raise StationMismatch(f"instruments.{name}.cards: " + "; ".join(
                    f"slot {s} should hold a {m}, the matrix reports {f or 'an empty slot'}"
                    for s, (m, f) in sorted(wrong.items())))

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

    def checkpoint(self) -> None:
        """Cell boundary check of every instrument: a power-on since :meth:`open` (it rebooted and lost its
        current limits) raises :class:`InstrumentRebooted`; then the error queue is drained (pulses do not
        read it), so an instrument error stops the run before the next cell. A TSP-Link node's errors are in its
        master's queue, drained once with the master's."""
        for inst in self.instruments.values():
            if inst.power_cycled():
                self._settings.clear()
                self._pulse_width = None
                self._armed = False
                self._cell = None
                self.router.forget()
                raise InstrumentRebooted(f"{inst.name}: powered on during the run (power-on event, PON): its "
                                         "settings and current limits are lost; the run stops here")
            if getattr(inst, "tsplink_master", None) is None:
                inst.check_errors()

    def identities(self) -> dict[str, str]:
        """Identity (``*IDN?``) of every instrument."""
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
                    inst.disconnect()
                except Exception as e:  # noqa: BLE001 - closing must go on
                    log.warning("closing %s: %s", inst.name, e)
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            if self.recorder is not None:
                self.recorder.close()

    def __enter__(self) -> Station:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def safe_state(self) -> list[str]:
        """By role: every source off at 0 V, then every relay open, then every prober's chuck separated (probes
        lifted off the wafer only once nothing is live on them); each instrument in its own ``try``, even
        through a Ctrl-C (re-raised once every instrument was tried). Returns what failed; after a failure
        the station is disarmed and forgets what it believed that instrument's settings were."""
        failures: list[str] = []
        pending: BaseException | None = None
        matrices_open = True
        probers = [i for i in self.instruments.values() if ROLE_PROBER in i.ROLES]
        for inst in [*self.sources, *self.matrices.values(), *probers]:
            try:
                inst.shutdown()
                for ch in (self.smu_bl, self.smu_wl):
                    if self._owner(ch) is inst:
                        self._settings[(ch, "output_enabled")] = False
                        self._settings[(ch, "source_voltage")] = 0.0
            except BaseException as e:  # noqa: BLE001 - go on with the next instrument, whatever happened
                failures.append(f"{inst.name}: {str(e) or type(e).__name__}")
                if not isinstance(e, Exception):
                    pending = pending or e
                self._forget(inst)
                matrices_open = matrices_open and ROLE_MATRIX not in inst.ROLES
        self._cell = None
        if matrices_open:
            self.router.opened_all()
        else:
            self.router.forget()
        for key in [k for k in self._settings if k[1] not in ("current_limit", "output_enabled", "source_voltage")]:
            del self._settings[key]
        for f in failures:
            log.error("safe state: %s", f)
        if failures:
            self._armed = False
        if pending is not None:
            raise pending
        return failures

    def _owner(self, channel: SourceMeasureChannel) -> Any:
        return self._owners[id(channel)]

    def _forget(self, inst: Any) -> None:
        """Drop cached settings of ``inst`` (its state is unknown after a failed shutdown)."""
        for key in [k for k in self._settings if self._owner(k[0]) is inst]:
            del self._settings[key]
        if inst is self._owner(self.smu_bl):
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

    def check_nplc(self, nplc: float) -> float:
        """``nplc`` (PLC) as a float if within the bit-line SMU's integration range, else SafetyError."""
        n = _finite("nplc", nplc, "PLC")
        if allowed := self.envelope.nplc_violation(n):
            raise SafetyError(f"nplc must be {allowed}, got {n}")
        return n

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
    def _set(self, channel: SourceMeasureChannel, attr: str, value: float | bool) -> None:
        """Write ``channel.attr = value`` unless the cache says it already holds (saves a round trip)."""
        key = (channel, attr)
        if self._settings.get(key) != value:
            self._settings.pop(key, None)        # unknown until the write is confirmed (it may half-succeed)
            setattr(channel, attr, value)
            self._settings[key] = value

    def _outputs(self, states: Sequence[tuple[SourceMeasureChannel, bool]]) -> None:
        """Set channel outputs in the order given, skipping those the cache says already hold; when every
        remaining channel belongs to one instrument that offers :class:`~.roles.OutputSwitch`, in one
        transaction (with its error check), else one setting (and check) per channel."""
        todo = [(ch, on) for ch, on in states if self._settings.get((ch, "output_enabled")) is not on]
        if not todo:
            return
        owner = self._owner(todo[0][0])
        if all(self._owner(ch) is owner for ch, _ in todo) and offers(owner, OutputSwitch):
            for ch, _ in todo:
                self._settings.pop((ch, "output_enabled"), None)     # unknown until the write is confirmed
            owner.set_outputs([(self._channel_ids[id(ch)], on) for ch, on in todo])
            for ch, on in todo:
                self._settings[(ch, "output_enabled")] = on
            return
        for ch, on in todo:
            self._set(ch, "output_enabled", on)

    def release(self) -> None:
        """Bit line to 0 V, then both outputs off, bit line first (relays stay as they are; the gate keeps its
        level, which an output that is off does not apply)."""
        self._set(self.smu_bl, "source_voltage", 0.0)
        self._outputs([(self.smu_bl, False), (self.smu_wl, False)])

    def connect(self, row: int, col: int) -> None:
        """Route cell (row, col): outputs off, then the router closes its gate, bit- and source-line
        crosspoints on their matrices (break-before-make across matrices) and reads them back
        (RoutingError on any mismatch, every matrix opened)."""
        self.check_cell(row, col)
        self._require_armed()
        if self._cell == (row, col):
            return
        self.release()
        self._cell = None
        self.router.route(row, col)
        self._cell = (row, col)

    def _bias(self, gate_voltage: float, bl_limit: float | None = None, *, hold_level: bool = False,
              outputs: bool = True) -> list[tuple[SourceMeasureChannel, bool]]:
        """Gate on at gate_voltage (V), bit line on with its limit (A; default: the envelope's); outputs on
        after the levels are set. The bit line is set to 0 V first unless ``hold_level`` and its output is
        on already (a staircase keeps its level between points). Refuses (SafetyError) unless armed. With
        ``outputs`` False the outputs are left as they are and the ones still to turn on, gate first, are
        returned (the caller switches them)."""
        self._require_armed()
        self.check_voltage("word_line", gate_voltage, "gate voltage")
        limit = self.envelope.current_limit["bit_line"] if bl_limit is None else bl_limit
        s = self._settings
        holding = (hold_level and s.get((self.smu_bl, "output_enabled")) is True
                   and s.get((self.smu_wl, "output_enabled")) is True
                   and s.get((self.smu_wl, "source_voltage")) == gate_voltage
                   and s.get((self.smu_bl, "current_limit")) == limit)
        if not holding:                          # bit line to 0 V before the gate or the limit moves
            self._set(self.smu_bl, "source_voltage", 0.0)
        self._set(self.smu_wl, "source_voltage", gate_voltage)
        self._set(self.smu_bl, "current_limit", limit)
        on = [(self.smu_wl, True), (self.smu_bl, True)]                     # the gate first
        if not outputs:
            return [(ch, v) for ch, v in on if s.get((ch, "output_enabled")) is not True]
        self._outputs(on)
        return []

    # ------------------------------------------------------------------ cell ops
    def _read_setup(self, row: int, col: int, voltage: float | None, nplc: float | None,
                    gate_voltage: float | None) -> tuple[float, float, float]:
        """(read voltage V, nplc, gate V): the station's read conditions where not given, each checked; the cell
        too (nothing sent)."""
        rc = self.read_conditions
        n = self.check_nplc(rc.nplc if nplc is None else nplc)
        v = self.check_voltage("bit_line", rc.voltage if voltage is None else voltage, "read voltage")
        gate = self.check_voltage("word_line", rc.gate_voltage if gate_voltage is None else gate_voltage,
                                  "gate voltage")
        self.check_cell(row, col)
        return v, n, gate

    def read(self, row: int, col: int, *, voltage: float | None = None, nplc: float | None = None,
             gate_voltage: float | None = None, release: bool = False) -> Reading:
        """Read cell (row, col) at ``voltage`` V (default: the station's read voltage) on the bit line, back at
        0 V afterwards; ``release``: then both outputs off, as :meth:`release` (the next cell is routed next).
        Where one instrument holds both channels and offers :class:`~.roles.SwitchedRead`, the outputs it must
        turn on and off travel in the reading's own transaction."""
        v, n, gate = self._read_setup(row, col, voltage, nplc, gate_voltage)
        self.connect(row, col)
        before = self._bias(gate, outputs=False)
        self._set(self.smu_bl, "nplc", n)
        after = [(self.smu_bl, False), (self.smu_wl, False)] if release else []
        owner = self._owner(self.smu_bl)
        if offers(owner, SwitchedRead) and all(self._owner(ch) is owner for ch, _ in before + after):
            switched = [(ch, "output_enabled") for ch, _ in before + after] + [(self.smu_bl, "source_voltage")]
            for key in switched:                 # unknown until the transaction went through
                self._settings.pop(key, None)
            ids = self._channel_ids
            current = owner.read_switched(ids[id(self.smu_bl)], v, [(ids[id(ch)], on) for ch, on in before],
                                          [(ids[id(ch)], on) for ch, on in after])
            for ch, on in before + after:
                self._settings[(ch, "output_enabled")] = on
            self._settings[(self.smu_bl, "source_voltage")] = 0.0
        else:
            self._outputs(before)
            current = self._sourcing(lambda: self.smu_bl.measure_current_at(v), 0.0)   # back at 0 V afterwards
            if release:
                self.release()
        return Reading(row, col, v, current, self.clock.now())

    def read_cells(self, cells: Sequence[tuple[int, int]], *, voltage: float | None = None, nplc: float | None = None,
                   gate_voltage: float | None = None) -> list[Reading]:
        """Read each of ``cells`` in turn as :meth:`read` with ``release=True`` reads one (``voltage`` V on the bit
        line, default the station's read voltage; ``nplc`` PLC; gate ``gate_voltage`` V; outputs on only around
        each reading). Where the bit- and word-line channels are on one instrument that offers
        :class:`~.roles.RoutedReads` and every matrix is its TSP-Link node (station ``loops = "auto"``), that
        instrument routes and reads the cells itself, :attr:`~.roles.RoutedReads.routed_cells` per transaction
        (the first cell routed as :meth:`connect` routes it); else one :meth:`read` per cell. A routing read-back
        mismatch opens every matrix and raises :class:`~.array_wiring.RoutingError`; any failure (or Ctrl-C) part-way
        carries the readings made before it as its ``readings``."""
        for r, c in cells:
            self.check_cell(r, c)
        cells = [(int(r), int(c)) for r, c in cells]
        out: list[Reading] = []
        try:
            self._read_cells(cells, voltage, nplc, gate_voltage, out)
        except BaseException as e:    # a failure or Ctrl-C part-way: the readings made before it go with it
            if getattr(e, "readings", None) is None:
                e.readings = list(out)  # type: ignore[attr-defined]
            raise
        return out

    def _read_cells(self, cells: list[tuple[int, int]], voltage: float | None, nplc: float | None,
                    gate_voltage: float | None, out: list[Reading]) -> None:
        """:meth:`read_cells`, appending each reading to ``out`` as it is made."""
        loop = self._routed_reads
        if loop is None or not cells:
            for r, c in cells:
                out.append(self.read(r, c, voltage=voltage, nplc=nplc, gate_voltage=gate_voltage, release=True))
            return
        v, n, gate = self._read_setup(*cells[0], voltage, nplc, gate_voltage)
        self.connect(*cells[0])
        self._bias(gate, outputs=False)
        self._set(self.smu_bl, "nplc", n)
        ids = self._channel_ids
        for k in range(0, len(cells), loop.routed_cells):
            part = cells[k:k + loop.routed_cells]
            routes = [[NodeSwitch(self.matrices[m].tsplink_node, *(self.matrices[m].channel_text(p) for p in lists))
                       for m, lists in step.items()] for step in self.router.plan(part)]
            switched = ((self.smu_bl, "output_enabled"), (self.smu_wl, "output_enabled"),
                        (self.smu_bl, "source_voltage"))
            for key in switched:
                self._settings.pop(key, None)        # unknown until the call went through
            self._cell = None
            self.router.forget()
            try:
                trace = loop.routed_reads(ids[id(self.smu_bl)], ids[id(self.smu_wl)], v, routes, n)
            except RoutingError as e:
                opened = self.router.open_everything()
                trace = e.readings
                t_end = self.clock.now()
                out += [Reading(r, c, v, i, t_end - dt) for (r, c), i, dt in
                        zip(part, trace.current, trace.before_end, strict=False)]
                raise RoutingError(f"cell {part[len(trace.current)]}: {e}; " + (
                    "every matrix opened" if opened else "opening every matrix failed too"), out) from e
            t_end = self.clock.now()
            out += [Reading(r, c, v, i, t_end - dt) for (r, c), i, dt in
                    zip(part, trace.current, trace.before_end, strict=True)]
            self.router.routed(*part[-1])
            self._cell = part[-1]
            self._settings.update(zip(switched, (False, False, 0.0), strict=True))

    def read_many(self, row: int, col: int, n: int, *, voltage: float | None = None, nplc: float | None = None,
                  gate_voltage: float | None = None) -> Reading:
        """``n`` reads of cell (row, col) back to back, each as :meth:`read` makes it (``voltage`` V on the bit
        line, default the station's read voltage; ``nplc`` PLC; gate ``gate_voltage`` V); returns the last, at
        the time the reads ended. Made by the instrument when the bit-line channel offers it
        (:class:`~.roles.RepeatedRead`, station ``loops = "auto"``: the readings stay in its buffer), else by the
        PC, one :meth:`read` round trip each (slow but the same reads). Reads are not pulses: nothing is charged
        to the pulse budget. Back at 0 V afterwards."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (reads), got {n!r}")
        v, n_plc, gate = self._read_setup(row, col, voltage, nplc, gate_voltage)
        channel = self.smu_bl
        if not (self.config.loops == "auto" and offers(channel, RepeatedRead)):
            last = self.read(row, col, voltage=v, nplc=n_plc, gate_voltage=gate)
            for _ in range(n - 1):
                last = self.read(row, col, voltage=v, nplc=n_plc, gate_voltage=gate)
            return last
        self.connect(row, col)
        self._bias(gate)
        self._set(channel, "nplc", n_plc)
        current = self._sourcing(lambda: channel.read_repeated(v, n, n_plc), 0.0)      # back at 0 V afterwards
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
        rc = self.read_conditions
        n = self.check_nplc(rc.nplc if nplc is None else nplc)
        a = self._prepare_pulse(row, col, amplitude, width, gate_voltage)
        self._set(self.smu_bl, "nplc", n)
        current = self._sourcing(lambda: self.smu_bl.pulse_and_measure(a, rc.voltage), 0.0)
        return Reading(row, col, rc.voltage, current, self.clock.now())

    def _prepare_dc(self, row: int, col: int, gate_voltage: float, current_limit: float) -> None:
        """Check the limit, gate and cell, then write ahead, route and bias for a DC level held on the bit line
        (the level stays where it was until the caller sets it)."""
        limit = self.check_limit("bit_line", current_limit)
        self.check_voltage("word_line", gate_voltage, "gate voltage")
        self.check_cell(row, col)
        self._require_armed()
        if self.before_energise is not None:
            self.before_energise(row, col)
        self.connect(row, col)
        self._bias(gate_voltage, limit, hold_level=True)

    def dc_point(self, row: int, col: int, voltage: float, *, gate_voltage: float, current_limit: float,
                 nplc: float) -> Reading:
        """Hold the bit line at ``voltage`` V (DC, output stays on, current limited to ``current_limit`` A,
        gate at ``gate_voltage`` V) and measure current and compliance (as the SMU reports it); for
        staircase sweeps."""
        v = self.check_voltage("bit_line", voltage, "sweep voltage")
        nplc = self.check_nplc(nplc)
        self._prepare_dc(row, col, gate_voltage, current_limit)
        self._set(self.smu_bl, "nplc", nplc)
        current, compliance = self._sourcing(lambda: self.smu_bl.sweep_point(v), v)
        return Reading(row, col, v, current, self.clock.now(), compliance)

    def staircase(self, row: int, col: int, levels: Sequence[float], *, nplc: Sequence[float], gate_voltage: float,
                  current_limit: float, stop_current: float | None = None) -> list[Reading]:
        """A DC staircase on the bit line of cell (row, col): each of ``levels`` (V) held in turn (no 0 V between
        points, current limited to ``current_limit`` A, gate at ``gate_voltage`` V), one reading per level with
        ``nplc[k]`` PLC; stops after the first reading with current >= ``stop_current`` (A) or in compliance.
        Run by the instrument when the bit-line channel offers it (:class:`~.roles.StaircaseLoop`, station
        ``loops = "auto"``), or, with no stop rule, as list sweeps (:class:`~.roles.ListSweep`, one call per run
        of equal NPLC), else point by point (:meth:`dc_point`); the same readings either way. The bit line
        stays at the last level (after list sweeps: whatever the instrument holds; the station does not assume
        it)."""
        if len(nplc) != len(levels):
            raise ValueError(f"nplc: one value per level, got {len(nplc)} for {len(levels)} levels")
        loop = self._staircase_loop
        sweep = self._list_sweep if loop is None and stop_current is None else None
        if loop is None and sweep is None:
            return staircase_points(lambda v, n: self.dc_point(row, col, v, gate_voltage=gate_voltage,
                                                               current_limit=current_limit, nplc=n),
                                    levels, nplc, stop_current)
        vs = [self.check_voltage("bit_line", v, "sweep voltage") for v in levels]
        ns = [self.check_nplc(n) for n in nplc]
        self._prepare_dc(row, col, gate_voltage, current_limit)
        out: list[Reading] = []
        if loop is not None:
            calls = _chunks(len(vs), loop.loop_points)
        else:                                                  # a list sweep has one NPLC: a call per run of it
            calls = [c for run in _runs(ns) for c in _chunks(run.stop - run.start, sweep.list_points, run.start)]
        for part_range in calls:
            part, part_nplc = vs[part_range], ns[part_range]
            self._settings.pop((self.smu_bl, "nplc"), None)
            if loop is not None:
                trace = self._sourcing(lambda p=part, q=part_nplc: loop.staircase(p, q, stop_current), part[0])
                self._settings[(self.smu_bl, "source_voltage")] = trace.level[-1]
            else:
                trace = self._sourcing(lambda p=part, q=part_nplc[0]: sweep.list_sweep(p, q), part[0])
                self._settings.pop((self.smu_bl, "source_voltage"), None)   # the level after a sweep: not assumed
            self._settings[(self.smu_bl, "nplc")] = part_nplc[len(trace.current) - 1]
            t_end = self.clock.now()
            out += [Reading(row, col, v, i, t_end - dt, c) for v, i, c, dt in
                    zip(trace.level, trace.current, trace.compliance, trace.before_end, strict=True)]
            stopped = stop_current is not None and (trace.current[-1] >= stop_current or trace.compliance[-1])
            if stopped or len(trace.current) < len(part):     # the stop rule fired (maybe on the chunk's last)
                break
        return out

    def verify(self, row: int, col: int, *, target: float, band: float, v_set: float, v_reset: float, width: float,
               gate_voltage: float | None = None, max_pulses: int) -> list[tuple[float, Reading]]:
        """Program-verify cell (row, col) to ``target`` ± ``band`` (S) with identical pulses of ``width`` s,
        ``v_set`` V below the target and ``v_reset`` V above it (gate ``gate_voltage`` V, default the read gate),
        at most ``max_pulses``; every verify read at the station's read conditions. Returns (pulse V before the
        read, 0 for the first; reading). Run by the instrument when the bit-line channel offers it
        (:class:`~.roles.VerifyLoop`, station ``loops = "auto"``), the pulse gate is the read gate and the
        cell's pulse budget holds ``max_pulses``; else PC in the loop (:meth:`read`, :meth:`pulse_read`)."""
        rc = self.read_conditions
        loop = self._verify_loop
        used = self.pulses_per_cell.get((row, col), 0)
        if (loop is None or (gate_voltage is not None and gate_voltage != rc.gate_voltage)
                or used + max_pulses > self.envelope.max_pulses_per_cell):
            return verify_points(lambda: self.read(row, col),
                                 lambda v: self.pulse_read(row, col, v, width, gate_voltage),
                                 target, band, v_set, v_reset, max_pulses)
        a_set, w = self.check_pulse(v_set, width)
        a_reset, _ = self.check_pulse(v_reset, width)
        n = self.check_nplc(rc.nplc)
        v_read = self.check_voltage("bit_line", rc.voltage, "read voltage")
        gate = self.check_voltage("word_line", rc.gate_voltage, "gate voltage")
        self.check_cell(row, col)
        self._require_armed()
        if self.before_energise is not None:
            self.before_energise(row, col)
        self.connect(row, col)
        self._bias(gate)
        if self._pulse_width != w:
            self._pulse_width = None
            self.smu_bl.configure_pulse(w, self.envelope.current_limit["bit_line"])
            self._pulse_width = w
        self._set(self.smu_bl, "nplc", n)
        out: list[tuple[float, Reading]] = []
        pulses, g_start = 0, None
        while True:                          # calls of at most loop_pulses pulses, each going on from the last read
            calls = min(max_pulses - pulses, loop.loop_pulses)
            # every pulse a call may apply is charged before the instrument is told (a failure leaves that upper
            # bound in the ledger); the count is corrected from the reply
            self.pulses_per_cell[(row, col)] = used + pulses + calls
            if self.before_energise is not None:
                self.before_energise(row, col)
            trace = self._sourcing(lambda c=calls, g=g_start: loop.verify_loop(target, band, a_set, a_reset, v_read,
                                                                               c, n, g), 0.0)
            t_end = self.clock.now()
            out += [(v, Reading(row, col, v_read, i, t_end - dt)) for v, i, dt in
                    zip(trace.level, trace.current, trace.before_end, strict=True)]
            fired = len(trace.current) - (1 if g_start is None else 0)
            pulses += fired
            self.pulses_per_cell[(row, col)] = used + pulses
            if not trace.current or fired < calls or pulses >= max_pulses:     # converged, or the budget is used
                break
            g_start = trace.current[-1] / v_read
        return out

    def contact_check(self, cells: Sequence[tuple[int, int]]) -> ContactReport:
        """Read up to ``contact.cells`` of ``cells`` (spread over the list) at the contact voltage; raises
        :class:`ContactError` when every one reads below ``contact.min_current`` (nothing connected: open probes,
        a wrong station file, another bench). Low bias, no pulse: a pristine cell is not disturbed."""
        c = self.config.contact
        picked = list(cells)
        if len(picked) > c.cells:
            step = (len(picked) - 1) / (c.cells - 1) if c.cells > 1 else 0
            picked = [picked[round(k * step)] for k in range(c.cells)]
        reads = tuple((r, col, self.read(r, col, voltage=c.voltage, release=True).current) for r, col in picked)
        report = ContactReport(c.voltage, c.min_current, reads)
        if reads and not report.connected:
            cells_text = ", ".join(f"({r}, {col}): {i:.3g} A" for r, col, i in reads)
            raise ContactError(f"no contact: every checked cell reads below {c.min_current:g} A at {c.voltage:g} V "
                               f"({cells_text}); check the probes, the station file's wiring and that every "
                               "instrument is on the same bench (contact.min_current sets the threshold)")
        return report

    # ------------------------------------------------------------------ prober
    @functools.cached_property
    def prober(self) -> Any:
        """The instrument filling the prober role (a wafer prober with a thermal chuck), or None (the runner asks
        at every stop point: found once)."""
        return next((i for i in self.instruments.values() if ROLE_PROBER in i.ROLES), None)

    def set_chuck_temperature_c(self, t_c: float, *, tolerance_c: float = 0.5, settle_s: float = 60.0,
                                timeout_s: float = 3600.0, poll_s: float = 5.0) -> float:
        """Bring the chuck to ``t_c`` °C and wait on the station clock until it has read within ``tolerance_c``
        of it for ``settle_s`` s (the die follows the chuck); returns the measured temperature (°C). Refused
        before any write outside ``safety.temperature_c`` or without a prober; TimeoutError after ``timeout_s``."""
        if (allowed := self.envelope.temperature_violation(t_c)) is not None:
            raise SafetyError(f"temperature_c = {t_c!r} not allowed: {allowed}")
        prober = self.prober
        if prober is None:
            raise SafetyError("temperature_c: the station has no prober with a thermal chuck")
        prober.set_chuck_temperature_c(float(t_c))
        start = self.clock.now()
        stable_since: float | None = None
        while True:
            now = self.clock.now()
            measured = prober.chuck_temperature_c()
            if abs(measured - t_c) <= tolerance_c:
                stable_since = now if stable_since is None else stable_since
                if now - stable_since >= settle_s:
                    return measured
            else:
                stable_since = None
            if now - start > timeout_s:
                raise TimeoutError(f"chuck at {measured:.2f} °C, set to {t_c} °C: not within ±{tolerance_c} °C for "
                                   f"{settle_s} s after {timeout_s} s")
            self.clock.wait(poll_s)
