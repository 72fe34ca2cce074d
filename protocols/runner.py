"""The run engine: a recipe (or the rest of an unfinished run) on a station, written to a run file as it goes.

Order of a run: every input check (nothing sent), the bench lock (nothing sent; a busy bench is refused
with the holder named), the run file's journal, then the station (safe state first). On every exit
path — normal end, exception, Ctrl-C, SIGTERM — the station is put in safe state and the exit status
is recorded. Ctrl-C once stops at the next cell boundary ("interrupted"); twice aborts at once, still
with cleanup; SIGTERM aborts with cleanup ("aborted"). Every finished unit (cell) ends with a
durability point: its rows, its key and the pulse ledger are committed together.

Write-ahead, so a killed run can be resumed safely: before the first energising operation on a cell
since the last durability point, the cell is committed as *in flight*; before pulses beyond the
cell's reserved count, a new reservation is committed (blocks of :data:`PULSE_RESERVATION`). A resumed
run (:func:`resume_run`) reads every in-flight cell before anything else (programming pulses are not
idempotent), charges the ledger with the reservations, skips finished units, and appends to the same
run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rramlab.analysis.dataset import RunData, RunMetadata, RunWriter, open_run
from rramlab.analysis.dataset_writer import installed_version
from rramlab.drivers.clock import WaitInterrupted
from rramlab.drivers.station import Station

from .base import CellDone, Protocol, Resume
from .preflight import prepare
from .recipe import Recipe, parse_recipe
from .results import Results

log = logging.getLogger(__name__)

PULSE_RESERVATION = 64
"""Pulses reserved per write-ahead commit: a killed run over-counts a cell's ledger by less than this."""

CLOCK_TOLERANCE = 1.0
"""s; a resumed run's clock may read this much before the run's last record (clock jitter) and still pass."""

RESUME_READS = {"row": (np.int32, "", "word line (0-based)"), "col": (np.int32, "", "bit line (0-based)"),
                "session": (np.int64, "", "session that read it (1 = the first process)"),
                "v": (np.float64, "V", "read voltage"), "i": (np.float64, "A", "current"),
                "g": (np.float64, "S", "conductance i/v"), "t": (np.float64, "s", "time of the read")}


_SIGHUP = getattr(signal, "SIGHUP", 1)
ABORT_SIGNALS = (signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []))
"""Signals that abort a run with cleanup: SIGTERM, and SIGHUP (the terminal or the ssh session went away)."""


class StopRequested(Exception):
    """First Ctrl-C: stop at the next cell boundary."""


class ResumeRefused(RuntimeError):
    """The run cannot be resumed as asked (completed, another bench, another station file, ...)."""


@dataclass
class RunResult:
    path: Path
    exit_status: str
    message: str = ""
    wall_time_s: float = 0.0
    sim_hardware_time_s: float | None = None
    units_done: int = 0  # completed cell operations and retention read batches (durability points)
    safe_state_failures: list[str] = field(default_factory=list)
    session: int = 1
    in_flight_read: list[tuple[int, int]] = field(default_factory=list)   # cells read first on resume
    exit_code: int | None = None          # 143 / 129 when a SIGTERM / SIGHUP aborted the run


class _Signals:
    """SIGINT once → stop at the next cell; twice → KeyboardInterrupt now; SIGTERM, SIGHUP → SystemExit now.

    Once :meth:`defer` is called (cleanup has begun) a signal is only noted: nothing may interrupt
    putting the bench in safe state and closing the dataset. After that, a held SIGTERM is delivered
    again (to the handler that was there before the run); a held Ctrl-C is moot, the run has stopped.

    A handler's exception is lost when the signal arrives while Python runs a finalizer or a weakref callback
    (it prints "Exception ignored" and goes on), so every signal is also noted: :meth:`check` at each cell
    boundary ends the run as the exception would have.
    """

    def __init__(self) -> None:
        self.stop = False
        self.terminated: int | None = None    # SIGTERM / SIGHUP received (its SystemExit may have been lost)
        self.deferred: list[int] = []
        self._defer = False
        self._old: dict[int, Any] = {}
        self.on_stop: Callable[[], None] | None = None

    def defer(self) -> None:
        self._defer = True

    def _sigint(self, signum: int, frame: Any) -> None:
        if self._defer:
            self.deferred.append(signum)
        elif self.stop:
            raise KeyboardInterrupt
        else:
            self.stop = True
            if self.on_stop is not None:
                self.on_stop()                # e.g. cut a long retention wait short

    def _sigterm(self, signum: int, frame: Any) -> None:
        if self._defer:
            self.deferred.append(signum)
        else:
            self.terminated = signum
            raise SystemExit(128 + signum)        # 143 for SIGTERM, 129 for SIGHUP

    def check(self) -> None:
        """At a cell boundary: SystemExit for a SIGTERM / SIGHUP received, StopRequested after a Ctrl-C."""
        if self.terminated is not None:
            raise SystemExit(128 + self.terminated)
        if self.stop:
            raise StopRequested

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        main = threading.current_thread() is threading.main_thread()
        if main:
            self._old = {signal.SIGINT: signal.signal(signal.SIGINT, self._sigint)}
            for sig in ABORT_SIGNALS:
                self._old[sig] = signal.signal(sig, self._sigterm)
        try:
            yield self
        finally:
            for sig, handler in self._old.items():
                signal.signal(sig, handler)


class _WriteAhead:
    """Station hook (``before_energise``): commit a cell as in flight, and reserve pulses ahead, before
    the instrument is told to energise it."""

    def __init__(self, writer: RunWriter, station: Station, reserved: dict[tuple[int, int], int],
                 committed: dict[tuple[int, int], int]) -> None:
        self.writer = writer
        self.station = station
        self.reserved = dict(reserved)
        self.in_flight: set[tuple[int, int]] = set()       # energised since the last commit
        self.step: int | None = None
        # cells whose count differs from the file's (a resumed cell charged its reservation)
        self.uncommitted = {c for c, n in station.pulses_per_cell.items() if committed.get(c) != n}

    def __call__(self, row: int, col: int) -> None:
        cell = (row, col)
        if cell not in self.in_flight:
            self.writer.mark_in_flight(cell, self.step, None)
            self.in_flight.add(cell)
        sent = self.station.pulses_per_cell.get(cell, 0)
        if sent > self.reserved.get(cell, 0):
            self.reserved[cell] = sent + PULSE_RESERVATION - 1
            self.writer.reserve_pulses(cell, self.reserved[cell])

    def ledger_changes(self) -> dict[tuple[int, int], int]:
        """Pulse counts to commit: only cells energised (or charged) since the last commit — every pulse
        passes through this hook — so a durability point costs nothing per cell of the die."""
        counts = self.station.pulses_per_cell
        return {c: counts[c] for c in self.in_flight | self.uncommitted if c in counts}

    def committed(self) -> None:
        self.in_flight.clear()
        self.uncommitted.clear()


def run_recipe(station: Station, recipe: Recipe, out: str | Path, *, seed: int | None = None,
               progress: Callable[[str, int, int, float | None], None] | None = None,
               extras: dict[str, Any] | None = None, overwrite: bool = False,
               durability: str = "flush", metadata: dict[str, Any] | None = None,
               after_open: Callable[[Station], None] | None = None) -> RunResult:
    """Run ``recipe`` on ``station`` into the run file ``out``.

    ``progress(step_label, done, total, simulated_time)`` is called at every cell boundary.
    Raises PreflightError (nothing sent, no file written) when the recipe leaves the safety envelope,
    BenchBusyError (nothing sent) when another process holds one of the instruments, FileExistsError
    (nothing sent) when ``out`` or its journal exists. Any other exception is recorded in the file (exit status
    "failed"), then re-raised after cleanup. ``metadata`` (e.g. from ``--meta``) goes over the recipe's
    ``[metadata]``; both are stored as the run's sample metadata (``extras["sample"]``). ``after_open(station)``
    runs once the station is open and armed, before anything else touches a cell (a campaign steps the prober
    to the die and makes contact there).
    """
    protocols = prepare(recipe, station.config)          # every input check: nothing sent on a refusal
    out = Path(out)
    station.lock(str(out))
    sample = {**recipe.metadata, **(metadata or {})}
    meta = RunMetadata(recipe=recipe.text, station=station.config.text, instruments={},
                       package_version=installed_version(), seed=seed,
                       extras={**(extras or {}), **({"sample": sample} if sample else {})})
    writer = RunWriter(out, metadata=meta, overwrite=overwrite, durability=durability,
                       clock_epoch_unix=station.clock.origin_unix)
    return _Engine(station, writer, protocols, progress, after_open).execute(None)


def resume_run(station: Station, path: str | Path, *, force: bool = False,
               progress: Callable[[str, int, int, float | None], None] | None = None,
               after_open: Callable[[Station], None] | None = None) -> RunResult:
    """Continue the unfinished run ``path`` on ``station`` (see the module docstring).

    Refused (:class:`ResumeRefused`, nothing sent) when the run completed, when its recipe no longer
    passes the station's envelope, or — unless ``force`` — when the station file or the rramlab version
    differ from the run's; refused after only safe state and ``*IDN?`` when an instrument's identity
    differs or the station clock reads earlier than the run's last record (another bench or a restarted
    simulated bench: not the die the run left). ``force`` records what differed and goes on.
    """
    path = Path(path)
    run = open_run(path)
    if run.schema_version < 2:
        raise ResumeRefused(f"{path} was written by an rramlab without resumable runs (schema "
                            f"{run.schema_version}): it holds no run state")
    if run.exit_status == "completed":
        raise ResumeRefused(f"{path}: the run completed; there is nothing to resume")
    recipe = parse_recipe(run.metadata["recipe"], f"{path} (its recipe)")
    protocols = prepare(recipe, station.config)
    for rec in run.steps:
        if rec.index >= len(protocols) or protocols[rec.index].label != rec.name:
            raise ResumeRefused(f"{path}: step {rec.index} {rec.name!r} does not match the run's recipe")
    differences = []
    if station.config.text != run.metadata["station"]:
        differences.append("the station file differs from the run's")
    if installed_version() != run.metadata.get("package_version"):
        differences.append(f"rramlab {installed_version()} resumes a run of rramlab "
                           f"{run.metadata.get('package_version')}")
    if differences and not force:
        raise ResumeRefused(f"{path}: " + "; ".join(differences) + " (nothing sent; --force resumes anyway and "
                            "records it)")
    station.lock(str(path), purpose="resume")
    writer = RunWriter.resume(path)
    return _Engine(station, writer, protocols, progress, after_open).execute(_ResumePlan(run, force, differences))


@dataclass
class _ResumePlan:
    run: RunData
    force: bool
    differences: list[str]


CHUCK_POLL_S = 10.0        # s of station time between chuck readings at stop points, at most
CHUCK_CHANGE_C = 0.1       # °C: a reading this far from the last recorded one is recorded
CHUCK_COLUMNS = {"point": (str, "", "'start', 'during' (the chuck moved) or 'end' of the step"),
                 "temperature_c": (np.float64, "°C", "chuck temperature measured by the prober"),
                 "setpoint_c": (np.float64, "°C", "the step's set-point (NaN: none, the chuck as it was)"),
                 "t": (np.float64, "s", "time of the reading")}


class _Engine:
    """Executes protocols on a station into a writer; one instance per run or resume."""

    def __init__(self, station: Station, writer: RunWriter, protocols: list[Protocol],
                 progress: Callable[[str, int, int, float | None], None] | None,
                 after_open: Callable[[Station], None] | None = None) -> None:
        self.station = station
        self.after_open = after_open
        self._chuck_last: tuple[float, float] | None = None      # (t s, °C) of the last chuck_temperature row
        self.writer = writer
        self.protocols = protocols
        self.progress = progress
        self.result = RunResult(Path(writer.path), "failed")
        self.sim0: float | None = None
        self.tables: dict[str, Any] = {}
        self.write_ahead: _WriteAhead | None = None
        self.current: Protocol | None = None        # the step being run
        self.session_started = writer.session is not None

    def execute(self, plan: _ResumePlan | None) -> RunResult:
        station, result = self.station, self.result
        wall0 = time.perf_counter()
        signals = _Signals()
        signals.on_stop = station.clock.interrupt
        station.clock.reset_interrupt()          # before the handlers exist: a Ctrl-C from now on counts
        error: BaseException | None = None
        tb = ""
        with signals.installed():          # until the file is closed: cleanup runs with signals deferred
            try:
                self._begin(plan)
                self._steps(plan, signals)
                result.exit_status = "completed"
            except (StopRequested, KeyboardInterrupt, WaitInterrupted):
                signals.defer()
                result.exit_status, result.message = "interrupted", "interrupted by Ctrl-C"
            except SystemExit as e:
                signals.defer()
                name = "SIGHUP (the terminal closed)" if e.code == 128 + _SIGHUP else "SIGTERM"
                result.exit_status, result.message = "aborted", f"terminated by {name}"
                result.exit_code = int(e.code) if isinstance(e.code, int) else 143
            except BaseException as e:  # noqa: BLE001 - every failure is recorded, then re-raised below
                signals.defer()
                result.exit_status, result.message = "failed", f"{type(e).__name__}: {e}"
                error, tb = e, traceback.format_exc()
            finally:
                signals.defer()
                station.before_energise = None
                try:
                    self._cleanup(tb)
                except BaseException as close_error:
                    _annotate(close_error, self)
                    if error is not None:
                        raise close_error from error      # keep the run's own failure as the cause
                    raise
        result.wall_time_s = time.perf_counter() - wall0
        result.sim_hardware_time_s = self._sim_time()
        if error is not None:
            _annotate(error, self)
            raise error
        for sig in ABORT_SIGNALS:
            if sig in signals.deferred:
                signal.raise_signal(sig)          # held during cleanup, honoured now (the run has ended anyway)
                break
        return result

    # -- phases ----------------------------------------------------------------------------------

    def _begin(self, plan: _ResumePlan | None) -> None:
        """Safe state and arming, identities, (resume: checks, ledger, in-flight reads), write-ahead on."""
        station, writer = self.station, self.writer
        if plan is not None:
            first = plan.run.sessions[0] if plan.run.sessions else {}
            if first.get("clock_epoch_unix") is not None:
                station.clock.continue_from(float(first["clock_epoch_unix"]))
        station.open()
        if self.after_open is not None:
            self.after_open(station)
        ids = station.identities()
        if plan is None:
            writer.record_instruments(ids)
        else:
            self._check_resume(plan, ids)
            writer.begin_session("resume", ids, station.clock.origin_unix,
                                 note="; ".join(["forced: " + d for d in plan.differences]) if plan.force else "")
            self.session_started = True
            self.result.session = writer.session or 1
            station.pulses_per_cell = dict(plan.run.state.ledger)
        self.sim0 = station.clock.now() if getattr(station.clock, "simulated", False) else None
        # a resumed cell in flight is charged its reservation: committed with the first durability point
        committed = {(int(r), int(c)): int(p) for r, c, p, _ in plan.run.state.ledger_rows} if plan else {}
        self.write_ahead = _WriteAhead(writer, station, plan.run.state.ledger if plan else {}, committed)
        station.before_energise = self.write_ahead
        if plan is not None and plan.run.state.in_flight:
            self._read_in_flight(plan)

    def _check_resume(self, plan: _ResumePlan, ids: dict[str, str]) -> None:
        """Same instruments and a clock that did not go back: else refuse (only safe state and *IDN? sent)."""
        problems = []
        before = plan.run.metadata.get("instruments") or {}
        changed = sorted(n for n in set(before) | set(ids) if before.get(n) != ids.get(n))
        if changed:
            problems.append("instrument identity changed: " + "; ".join(
                f"{n}: {before.get(n)!r} -> {ids.get(n)!r}" for n in changed))
        last_t = plan.run.state.values.get("last_t")
        now = self.station.clock.now()
        if isinstance(last_t, (int, float)) and math.isfinite(last_t) and now < last_t - CLOCK_TOLERANCE:
            problems.append(f"the station clock reads {now:.6g} s, before the run's last record at {last_t:.6g} s: "
                            "this is not the bench (and die) the run left — a restarted simulated bench starts "
                            "a new die")
        if problems and not plan.force:
            raise ResumeRefused(f"{self.writer.path}: " + "; ".join(problems) + " (--force resumes anyway)")
        plan.differences.extend(problems)

    def _read_in_flight(self, plan: _ResumePlan) -> None:
        """Read every cell the stopped run energised after its last commit, before anything else."""
        table = self._table("resume_reads", RESUME_READS)
        for row, col in plan.run.state.in_flight:
            r = self.station.read(row, col)
            table.append({"step": "", "row": row, "col": col, "session": self.writer.session, "v": r.voltage,
                          "i": r.current, "g": r.conductance, "t": r.t})
            self.result.in_flight_read.append((row, col))
        self.station.release()
        self._durability_point([])

    def _steps(self, plan: _ResumePlan | None, signals: _Signals) -> None:
        results = Results()
        existing = {s.index: s for s in plan.run.steps} if plan else {}
        finished_units = plan.run.state.units if plan else {}
        for k, proto in enumerate(self.protocols):
            resume: Resume | None = None
            if k in existing:
                rows = {name: _rows_of(plan.run, name, proto.label) for name in proto.tables if name in plan.run.tables}
                resume = Resume(frozenset(finished_units.get(k, set())), rows)
                proto.restore(results, resume)
                if existing[k].status == "completed":
                    continue
                step = self.writer.resume_step(k, f"resumed in session {self.writer.session}")
            else:
                step = self.writer.step(proto.label, proto.name, dataclasses.asdict(proto.params), cells=proto.cells)
            assert self.write_ahead is not None
            self.write_ahead.step = step.index
            self.current = proto
            for name, columns in proto.tables.items():
                self._table(name, columns)
            total, done = proto.units_given(results), proto.units_done(resume)
            self._chuck_temperature(proto, "start")
            for event in proto.run(self.station, results, resume):
                if isinstance(event, CellDone):
                    self._chuck_drift(proto)
                    now = self._durability_point([(step.index, event.key)] if event.key is not None else [])
                    self.station.checkpoint()
                    done += event.work
                    self.result.units_done += 1
                    if self.progress:
                        self.progress(proto.label, done, total, None if self.sim0 is None else now - self.sim0)
                    signals.check()
                else:
                    self.tables[event.table].append({"step": proto.label, **event.values})
            self._chuck_temperature(proto, "end")
            step.finish("completed")

    def _chuck_temperature(self, proto: Protocol, point: str) -> None:
        """With a prober: at a step's start (after bringing the chuck to the step's ``temperature_c``) and end, one
        row of table ``chuck_temperature`` with the measured temperature; in between, rows where it changed
        (:meth:`_chuck_drift`)."""
        prober = self.station.prober
        if prober is None:
            return
        setpoint = proto.temperature_c
        if point == "start" and setpoint is not None:
            measured = self.station.set_chuck_temperature_c(setpoint)
        else:
            measured = prober.chuck_temperature_c()
        self._chuck_row(proto, point, measured)

    def _chuck_drift(self, proto: Protocol) -> None:
        """At a stop point, at most every CHUCK_POLL_S of station time: a ``during`` row when the chuck moved by
        CHUCK_CHANGE_C or more since the last row (the rows between two readings share the earlier one)."""
        prober = self.station.prober
        if prober is None or self._chuck_last is None:
            return
        t_last, temp_last = self._chuck_last
        if self.station.clock.now() - t_last < CHUCK_POLL_S:
            return
        measured = prober.chuck_temperature_c()
        if abs(measured - temp_last) >= CHUCK_CHANGE_C:
            self._chuck_row(proto, "during", measured)
        else:
            self._chuck_last = (self.station.clock.now(), temp_last)

    def _chuck_row(self, proto: Protocol, point: str, measured: float) -> None:
        now = self.station.clock.now()
        self._table("chuck_temperature", CHUCK_COLUMNS).append(
            {"step": proto.label, "point": point, "temperature_c": measured,
             "setpoint_c": math.nan if proto.temperature_c is None else proto.temperature_c, "t": now})
        self._chuck_last = (now, measured)

    def _table(self, name: str, columns: dict[str, Any]) -> Any:
        if name not in self.tables:
            self.tables[name] = self.writer.table(name, {"step": (str, "", "recipe step"), **columns})
        return self.tables[name]

    def _durability_point(self, units: list[tuple[int, str]]) -> float:
        """Commit rows, finished units, ledger changes and the clock reading; returns the clock reading (s)."""
        assert self.write_ahead is not None
        now = self.station.clock.now()
        ledger = self.write_ahead.ledger_changes()
        self.writer.durability_point(units=units, ledger=ledger, state={"last_t": now})
        self.write_ahead.committed()
        return now

    def _cleanup(self, tb: str) -> None:
        """Safe state, then close the run with the exit status; each step survives the other failing."""
        result = self.result
        try:
            result.safe_state_failures = self.station.safe_state()
        except BaseException as e:  # noqa: BLE001 - the file must still be closed
            result.safe_state_failures = [f"safe state raised {type(e).__name__}: {e}"]
        message = result.message
        if result.safe_state_failures:
            message += ("; " if message else "") + "safe state incomplete: " + "; ".join(result.safe_state_failures)
        if not self.session_started:                 # a resume refused before it began: the run is untouched
            self.writer.abandon()
            return
        ledger = dict(self.station.pulses_per_cell)     # exact: this process knows what it sent
        try:            # rows of a unit the stop interrupted: kept apart; the cells in flight stay in flight
            if self.current is not None and self.current.rows_complete:
                self.writer.durability_point(ledger=ledger, end_of_unit=False)
            else:
                aside = self.writer.set_aside(ledger)
                if aside:
                    message += ("; " if message else "") + "set aside (unit in progress, done again on resume): " \
                        + ", ".join(f"{t} {n} rows" for t, n in aside.items())
        except Exception as e:  # noqa: BLE001 - close reports what could not be written
            log.warning("committing the unit in progress failed: %s", e)
        self.writer.close(result.exit_status, message, traceback=tb)   # also finishes a step left running

    def _sim_time(self) -> float | None:
        if self.sim0 is None:
            return None
        try:
            return self.station.clock.now() - self.sim0
        except Exception:  # noqa: BLE001 - reporting only
            return None


def _annotate(error: BaseException, engine: _Engine) -> None:
    """Tell the caller (the CLI) where the data is and whether the bench reached safe state."""
    with contextlib.suppress(AttributeError):
        error.safe_state_failures = engine.result.safe_state_failures   # type: ignore[attr-defined]
        if engine.session_started:
            error.run_file = engine.writer.path                        # type: ignore[attr-defined]


def _rows_of(run: RunData, table: str, label: str) -> Any:
    df = run.table(table)
    return df[df["step"] == label].reset_index(drop=True)
