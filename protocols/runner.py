"""The runner: preflight, then run a recipe on a station, writing the dataset as it goes.

On every exit path — normal end, exception, Ctrl-C, SIGTERM — the station is put in safe state and the
exit status is recorded. Ctrl-C once stops at the next cell boundary ("interrupted"); twice aborts at
once, still with cleanup; SIGTERM aborts with cleanup ("aborted"). Every cell ends with a durability
point, so nothing recorded before an interruption is lost.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rramlab.analysis.dataset import RunMetadata, RunWriter
from rramlab.analysis.dataset_writer import installed_version
from rramlab.drivers.clock import WaitInterrupted
from rramlab.drivers.station import Station

from .base import CellDone, ParameterError, Protocol
from .preflight import PreflightError, preflight
from .recipe import Recipe


class StopRequested(Exception):
    """First Ctrl-C: stop at the next cell boundary."""


@dataclass
class RunResult:
    path: Path
    exit_status: str
    message: str = ""
    wall_time_s: float = 0.0
    sim_hardware_time_s: float | None = None
    units_done: int = 0  # completed cell operations and retention read batches (durability points)
    safe_state_failures: list[str] = field(default_factory=list)


class _Signals:
    """SIGINT once → stop at the next cell; twice → KeyboardInterrupt now; SIGTERM → SystemExit now.

    Once :meth:`defer` is called (cleanup has begun) a signal is only noted: nothing may interrupt
    putting the bench in safe state and closing the dataset. After that, a held SIGTERM is delivered
    again (to the handler that was there before the run); a held Ctrl-C is moot, the run has stopped.
    """

    def __init__(self) -> None:
        self.stop = False
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
            raise SystemExit(143)

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        main = threading.current_thread() is threading.main_thread()
        if main:
            self._old = {signal.SIGINT: signal.signal(signal.SIGINT, self._sigint),
                         signal.SIGTERM: signal.signal(signal.SIGTERM, self._sigterm)}
        try:
            yield self
        finally:
            for sig, handler in self._old.items():
                signal.signal(sig, handler)


def run_recipe(station: Station, recipe: Recipe, out: str | Path, *, seed: int | None = None,
               progress: Callable[[str, int, int, float | None], None] | None = None,
               extras: dict[str, Any] | None = None, overwrite: bool = False) -> RunResult:
    """Run ``recipe`` on ``station`` into the HDF5 file ``out``.

    ``progress(step_label, done, total, simulated_time)`` is called at every cell boundary.
    Raises PreflightError (nothing sent, no file written) when the recipe leaves the safety envelope.
    Any other exception is recorded in the file (exit status "failed"), then re-raised after cleanup.
    """
    try:
        protocols = recipe.build(station.rows, station.cols)
    except ParameterError as e:
        raise PreflightError([str(e)]) from None
    preflight(protocols, station.envelope)

    out = Path(out)
    wall0 = time.perf_counter()
    meta = RunMetadata(recipe=recipe.text, station=station.config.text, instruments=station.identities(),
                       package_version=installed_version(), seed=seed, extras=extras or {})
    writer = RunWriter(out, metadata=meta, overwrite=overwrite)
    result = RunResult(out, "failed")
    signals = _Signals()
    signals.on_stop = station.clock.interrupt
    station.clock.reset_interrupt()          # before the handlers exist: a Ctrl-C from now on counts
    sim0 = station.clock.now() if getattr(station.clock, "simulated", False) else None
    error: BaseException | None = None
    tb = ""
    with signals.installed():          # until the file is closed: cleanup runs with signals deferred
        try:
            _execute(station, protocols, writer, signals, result, progress, sim0)
            result.exit_status = "completed"
        except (StopRequested, KeyboardInterrupt, WaitInterrupted):
            signals.defer()
            result.exit_status, result.message = "interrupted", "interrupted by Ctrl-C"
        except SystemExit:
            signals.defer()
            result.exit_status, result.message = "aborted", "terminated by SIGTERM"
        except BaseException as e:  # noqa: BLE001 - every failure is recorded, then re-raised below
            signals.defer()
            result.exit_status, result.message = "failed", f"{type(e).__name__}: {e}"
            error, tb = e, traceback.format_exc()
        finally:
            signals.defer()
            try:
                _cleanup(station, writer, result, tb)
            except BaseException as close_error:
                if error is not None:
                    raise close_error from error      # keep the run's own failure as the cause
                raise
    result.wall_time_s = time.perf_counter() - wall0
    result.sim_hardware_time_s = _sim_time(station, sim0)
    if error is not None:
        raise error
    if signal.SIGTERM in signals.deferred:
        signal.raise_signal(signal.SIGTERM)   # held during cleanup, honoured now (the run has ended anyway)
    return result


def _execute(station: Station, protocols: list[Protocol], writer: RunWriter, signals: _Signals,
             result: RunResult, progress: Callable[[str, int, int, float | None], None] | None,
             sim0: float | None) -> None:
    """Open the station and run every step, a durability point and a station checkpoint per cell."""
    station.open()
    context: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    for proto in protocols:
        step = writer.step(proto.label, proto.name, _params(proto), cells=proto.cells)
        for name, columns in proto.tables.items():
            if name not in tables:
                tables[name] = writer.table(name, {"step": (str, "", "recipe step"), **columns})
        total, done = proto.units(), 0
        for event in proto.run(station, context):
            if isinstance(event, CellDone):
                writer.durability_point()
                station.checkpoint()
                done += event.work
                result.units_done += 1
                if progress:
                    progress(proto.label, done, total, _sim_time(station, sim0))
                if signals.stop:
                    raise StopRequested
            else:
                tables[event.table].append({"step": proto.label, **event.values})
        step.finish("completed")


def _cleanup(station: Station, writer: RunWriter, result: RunResult, tb: str) -> None:
    """Safe state, then close the dataset with the exit status; each step survives the other failing."""
    try:
        result.safe_state_failures = station.safe_state()
    except BaseException as e:  # noqa: BLE001 - the file must still be closed
        result.safe_state_failures = [f"safe state raised {type(e).__name__}: {e}"]
    message = result.message
    if result.safe_state_failures:
        message += ("; " if message else "") + "safe state incomplete: " + "; ".join(result.safe_state_failures)
    writer.close(result.exit_status, message, traceback=tb)   # also finishes a step left running


def _sim_time(station: Station, t0: float | None) -> float | None:
    if t0 is None:
        return None
    try:
        return station.clock.now() - t0
    except Exception:  # noqa: BLE001 - reporting only
        return None


def _params(proto: Protocol) -> dict[str, Any]:
    return dataclasses.asdict(proto.params)
