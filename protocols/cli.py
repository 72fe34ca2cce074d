"""The ``rramlab`` command line: demo, run, resume, check, info, report, catalog, ls, recover, conform.

Exit codes: 0 completed, 1 failed (the run began; its data is kept), 2 refused (bad input, busy bench,
unusable file: nothing was sent), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up
(SIGHUP: the terminal or ssh session went away; treated as SIGTERM). Signals never
end in a traceback: before a run they stop the command at once; during the run the runner handles
them; after it they are held until the summary and the JSON are written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rramlab.analysis.atomic import write_text_atomic
from rramlab.analysis.dataset_reader import SkippedRowsWarning
from rramlab.analysis.dataset_schema import DatasetError, DatasetWriteError
from rramlab.analysis.journal import journal_path
from rramlab.drivers.bench_lock import BenchBusyError, BenchLock, run_file_keys
from rramlab.drivers.recording import ConformError, ConformReport, TranscriptError, conform, read_transcript
from rramlab.drivers.station import InstrumentConnectionError, Station
from rramlab.drivers.station_config import (
    SIMULATED,
    StationConfig,
    StationConfigError,
    example_stations,
    load_station_config,
    parse_station_config,
    read_text_file,
)

from .base import ParameterError
from .campaign import CampaignError, CampaignIndex, die_file, is_campaign, parse_campaign, resume_campaign, run_campaign
from .preflight import PreflightError, prepare
from .recipe import SAMPLE_KEYS, Recipe, RecipeError, demo_recipe, load_recipe, parse_meta_options, parse_recipe
from .runner import ABORT_SIGNALS, ResumeRefused, RunResult, resume_run, run_recipe
from .space import InsufficientSpaceError, check_free_space

EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143
_EXIT_CODES = {"completed": 0, "interrupted": EXIT_INTERRUPTED, "aborted": EXIT_TERMINATED}


class CliSignals:
    """The command's own SIGINT/SIGTERM handling outside the run (the runner has its own during it).

    Before the run a signal stops the command (KeyboardInterrupt / SystemExit(143), reported without a
    traceback); from :meth:`hold` on it is only noted, so the summary and the JSON are still written,
    and the command then exits 130 or 143.

    Python drops a handler's exception when the signal arrives while it runs a finalizer or a weakref callback
    (e.g. while an import releases its module lock), printing "Exception ignored"; every signal is therefore
    noted too, and :meth:`start_run` stops the command before the run if one was received. Those dropped
    exceptions are not printed (:meth:`_unraisable`): the signal is acted on.
    """

    def __init__(self) -> None:
        self.held: list[int] = []
        self.received: list[int] = []                  # signals whose exception was raised (it may have been lost)
        self._hold = False

    def install(self) -> None:
        with contextlib.suppress(ValueError):          # not the main thread (tests): nothing to install
            signal.signal(signal.SIGINT, self._handler)
            for sig in ABORT_SIGNALS:
                signal.signal(sig, self._handler)
            sys.unraisablehook = self._unraisable

    def hold(self) -> None:
        self._hold = True

    def start_run(self) -> None:
        """Hand signals to the run: a signal received before (its exception lost) stops the command here, before
        anything is sent; from here on signals are the runner's during the run and held after it."""
        if self.received:
            self._raise(self.received[-1])
        self.hold()

    def _handler(self, signum: int, frame: Any) -> None:
        if self._hold:
            self.held.append(signum)
            return
        self.received.append(signum)
        self._raise(signum)

    @staticmethod
    def _raise(signum: int) -> None:
        if signum in ABORT_SIGNALS:
            raise SystemExit(128 + signum)
        raise KeyboardInterrupt

    @staticmethod
    def _unraisable(info: Any) -> None:
        """``sys.unraisablehook``: a signal's KeyboardInterrupt / SystemExit dropped in a finalizer is not printed
        (the signal was noted and is acted on); anything else goes to Python's own hook."""
        exc = info.exc_value
        if isinstance(exc, KeyboardInterrupt) or (
                isinstance(exc, SystemExit) and exc.code in [128 + sig for sig in ABORT_SIGNALS]):
            return
        sys.__unraisablehook__(info)

    def exit_code(self, code: int) -> int:
        """``code``, or 143 / 129 / 130 when a SIGTERM / SIGHUP / Ctrl-C was held."""
        for sig in ABORT_SIGNALS:
            if sig in self.held:
                return 128 + sig
        if signal.SIGINT in self.held and code == 0:
            return EXIT_INTERRUPTED
        return code


def _human_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("y", 365.25 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


class _Bar:
    """rich progress bar: one task per recipe step, with the simulated-hardware time."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[sim]}"), console=console,
                                 disable=not enabled, transient=False)
        self.tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int, sim: float | None) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total, sim="")
        hw = f"hardware time {_human_time(sim)}" if sim is not None else ""
        self.progress.update(self.tasks[step], completed=done, sim=hw)


def _default_out(prefix: str) -> Path:
    """``<prefix>-<date>-<time>.h5`` in the working directory, with -2, -3, … if that name is taken."""
    stem = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = Path(f"{stem}.h5"), 1
    while path.exists() or Path(journal_path(path)).exists():
        n += 1
        path = Path(f"{stem}-{n}.h5")
    return path


def _open_quietly(path: Path) -> Any:
    """open_run with skipped-row warnings silenced (the CLI reports ``df.attrs['skipped']`` itself)."""
    from rramlab.analysis.dataset import open_run

    return open_run(path, locking=False)


def _tables(run: Any, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The run's tables (all, or only ``names``) as DataFrames."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRowsWarning)
        return {name: run.table(name) for name in run.tables if names is None or name in names}


def _lazy_tables(run: Any) -> Any:
    """The run's tables, each read (quietly) when first asked for."""
    from rramlab.analysis.plugins import LazyTables

    return LazyTables(list(run.tables), lambda name: _tables(run, (name,))[name])


def _summary(path: Path) -> dict[str, Any]:
    """The summary figures of a run, with its exit status."""
    return _summary_of(_open_quietly(path))


def _summary_of(run: Any) -> dict[str, Any]:
    """The summary figures of an opened run, with its exit status."""
    from rramlab.analysis.summary import summarize

    # a table is read only when a section asks for it: never the per-point tables of the built-in sections
    out = {"exit_status": run.exit_status, **summarize(_lazy_tables(run))}
    if run.skipped:
        out["skipped"] = run.skipped
    return out


def _print_summary(console: Console, summary: dict[str, Any], result: RunResult) -> None:
    table = Table(title=escape(f"rramlab summary — {result.path} ({result.exit_status})"))
    table.add_column("figure")
    table.add_column("value", justify="right")

    def add(name: str, value: Any, scale: float = 1.0, unit: str = "") -> None:
        if isinstance(value, (int, float)) and value is not None and math.isfinite(value):
            table.add_row(name, f"{value * scale:.4g} {unit}".strip())

    f = summary.get("forming", {})
    add("forming yield", f.get("yield"), 100, "%")
    add("V_form mean", f.get("v_form_mean"), 1, "V")
    add("V_form σ", f.get("v_form_std"), 1e3, "mV")
    for key, pv in summary.get("program_verify", {}).items():
        add(f"program-verify {key}: σ slope", pv.get("sigma_slope"))
        add(f"program-verify {key}: σ intercept", pv.get("sigma_intercept_uS"), 1, "µS")
        add(f"program-verify {key}: mean iterations", pv.get("mean_iterations"))
        add(f"program-verify {key}: success", pv.get("success_rate"), 100, "%")
    r = summary.get("retention", {})
    for label in ("1h", "10y"):
        add(f"relaxation {label}: mean shift", r.get("mean_shift_uS", {}).get(label), 1, "µS")
        add(f"relaxation {label}: σ", r.get("sigma_uS", {}).get(label), 1, "µS")
    e = summary.get("endurance", {})
    add("endurance: cycles", e.get("cycles_max"))
    add("endurance: on/off at the last cycle", e.get("on_off_last"))
    add("endurance: failed cells", e.get("failed_fraction"), 100, "%")
    add("hardware time (simulated)", result.sim_hardware_time_s, 1, "s")
    add("wall time", result.wall_time_s, 1, "s")
    console.print(table)


def _say(console: Console, message: object, style: str = "red") -> None:
    """Print ``message`` as plain text (no rich markup: "[row, col]" must stay visible)."""
    console.print(f"[{style}]{escape(str(message))}[/{style}]")


def check_outputs(out: Path, json_path: str | None, figures: str | None, *, resume: bool = False) -> None:
    """Refuse, before anything is opened or sent, output paths the run could not write at its end."""
    json_file = Path(json_path) if json_path else None
    for label, path in (("--out", out), ("--json", json_file)):
        if path is None:
            continue
        if path.is_dir():
            raise IsADirectoryError(f"{label} {path} is a directory; give a file name")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{label} {path}: directory {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(f"{label} {path}: directory {path.parent} is not writable")
    if not resume:
        if out.exists():
            raise FileExistsError(f"{out} exists; refusing to overwrite a run file (choose another --out)")
        if Path(journal_path(out)).exists():
            raise FileExistsError(f"{journal_path(out)} exists: a run is writing {out}, or a stopped run left it "
                                  f"(`rramlab resume {out}` or `rramlab recover {out}`)")
    if json_file is not None and json_file.resolve() in (out.resolve(), Path(journal_path(out)).resolve()):
        raise FileExistsError(f"--json {json_file} is the run file itself; give another name")
    if figures:
        fig = Path(figures)
        if fig.resolve() == out.resolve() or (fig.exists() and not fig.is_dir()):
            raise NotADirectoryError(f"--figures {figures} exists and is not a directory")
        existing = fig if fig.exists() else next(p for p in fig.resolve().parents if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise PermissionError(f"--figures {figures}: {existing} is not a writable directory")


def _where(path: Path) -> str:
    """Where a run's data is now: its HDF5 file, or its journal when the file could not be built yet."""
    jp = Path(journal_path(path))
    return f"{jp} (its journal; `rramlab recover {path}` builds the HDF5 file)" if jp.exists() else str(path)


def _execute(console: Console, sig: CliSignals, start: Callable[[_Bar], RunResult], out: Path,
             json_path: str | None, quiet: bool, figures: str | None) -> int:
    """Run ``start`` (run or resume) with a progress bar, then report, write the JSON and the figures."""
    bar = _Bar(console, enabled=not quiet)
    sig.start_run()            # from here a signal is the runner's (during the run) or held (after it)
    try:
        with bar.progress:
            result = start(bar)
    except (PreflightError, ResumeRefused, BenchBusyError, FileExistsError, InsufficientSpaceError) as e:
        _say(console, e)
        return sig.exit_code(EXIT_REFUSED)
    except DatasetWriteError as e:        # the run's data could not all be written (e.g. the disk filled)
        cause = e.__cause__
        why = f"{type(cause).__name__}: {cause}; " if cause is not None and not isinstance(cause, DatasetWriteError) \
            else ""
        _say(console, f"Run stopped: {why}{e}. {_safe_text(e)}")
        return sig.exit_code(EXIT_FAILED)
    except Exception as e:  # noqa: BLE001 - the run failed after it began: recorded in the file, reported here
        kept = getattr(e, "run_file", None)
        where = f" Data kept in {_where(Path(kept))} (exit status 'failed')." if kept else ""
        _say(console, f"Run failed: {type(e).__name__}: {e}.{where} {_safe_text(e)}")
        return sig.exit_code(EXIT_FAILED)
    code = result.exit_code or _EXIT_CODES.get(result.exit_status, EXIT_FAILED)
    if result.exit_status == "interrupted":
        _say(console, f"Interrupted: {_rows_text(out)} recorded in {_where(out)} (exit status 'interrupted'; "
                      f"`rramlab resume {out}` continues it); outputs off, relays open.", "yellow")
    elif result.exit_status != "completed":
        _say(console, f"Run {result.exit_status}: {result.message}. Data kept in {_where(out)}.")
    try:
        summary = _summary(out)
    except (DatasetError, OSError) as e:
        _say(console, f"No summary: {e}")
        return sig.exit_code(EXIT_FAILED)
    summary.update({"exit_status": result.exit_status, "file": str(out), "wall_time_s": result.wall_time_s,
                    "sim_hardware_time_s": result.sim_hardware_time_s, "units_done": result.units_done,
                    "session": result.session})
    if not quiet:
        _print_summary(console, summary, result)
    if json_path:
        try:
            write_text_atomic(Path(json_path), json.dumps(summary, indent=2, allow_nan=False, default=_json_default))
        except OSError as e:
            _say(console, f"--json {json_path} not written: {e.strerror or e} (the run file is complete)")
            code = code or EXIT_FAILED
    if figures:
        code = _write_figures(console, out, Path(figures)) or code
    return sig.exit_code(code)


def _safe_text(error: BaseException) -> str:
    """What the cleanup achieved, truthfully: outputs off and relays open, or what could not be made safe."""
    failures = getattr(error, "safe_state_failures", None)
    if failures:
        return "SAFE STATE INCOMPLETE, check the bench: " + "; ".join(failures)
    return "Outputs off, relays open." if failures is not None else ""


def _rows_text(path: Path) -> str:
    """Rows per table in a run, e.g. "forming 12 rows, forming_sweep 3411 rows"."""
    run = _open_quietly(path)
    return ", ".join(f"{name} {len(df)} rows" for name, df in _tables(run).items()) or "no rows"


def _write_figures(console: Console, run_file: Path, directory: Path, figures: dict[str, Any] | None = None) -> int:
    """Write the report figures (each labelled with its run and die/array; ``figures``: already drawn); 0,
    or 1 (with a message, no partial files) when they could not be written."""
    from rramlab.analysis.plots import save_figures, save_report_figures
    from rramlab.analysis.report_html import figure_label, run_info

    try:
        if figures is not None:
            paths = save_figures(figures, directory)
        else:
            run = _open_quietly(run_file)
            paths = save_report_figures(_lazy_tables(run), directory, label=figure_label(run_info(run)))
    except OSError as e:
        _say(console, f"--figures {directory}: not written: {e.strerror or e}")
        return EXIT_FAILED
    console.print(escape(f"{len(paths)} figures written to {directory}: {', '.join(p.name for p in paths)}"))
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON-serialisable: {o!r}")


def _prepared(recipe: Recipe, config: StationConfig, out: Path, console: Console) -> None:
    """Every input check `check` makes, then the free space for the run file (refused if it cannot fit)."""
    protocols = prepare(recipe, config)
    warning = check_free_space(out, protocols)
    if warning:
        _say(console, f"warning: {warning}", "yellow")


def check_record(record: str | None, out: Path) -> None:
    """Refuse a ``--record`` transcript path that exists, is the run file or lies in no directory."""
    if record is None:
        return
    path = Path(record)
    if path.exists() or path.resolve() in (out.resolve(), Path(journal_path(out)).resolve()):
        raise FileExistsError(f"--record {path} exists; refusing to overwrite it (choose another name)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--record {path}: directory {path.parent} does not exist")


@contextlib.contextmanager
def _station(config: StationConfig, visa_library: str | None = None, record: str | None = None) -> Iterator[Station]:
    """The station's VISA sessions (nothing sent), closed on the way out (safe state only if it was opened);
    ``record``: the transcript file every VISA message goes to."""
    station = Station(config, visa_library=visa_library, record=record)
    try:
        yield station
    finally:
        station.close()


def cmd_demo(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    out = Path(args.out) if args.out else _default_out("rramlab-demo")
    check_outputs(out, args.json, args.figures)
    check_record(args.record, out)
    recipe, config = demo_recipe(), load_station_config(None)
    meta = parse_meta_options(args.meta)
    _prepared(recipe, config, out, console)
    library = f"?seed={args.seed}@rramlab" if args.seed is not None else None
    with _station(config, library, args.record) as station:
        return _execute(console, sig, lambda bar: run_recipe(station, recipe, out, seed=args.seed, progress=bar,
                                                             metadata=meta),
                        out, args.json, args.quiet, args.figures)


def cmd_run(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    if is_campaign(read_text_file(Path(args.recipe), RecipeError, "recipe file")):
        return cmd_campaign(args, console, sig)
    recipe = load_recipe(args.recipe)
    meta = parse_meta_options(args.meta)
    config = load_station_config(args.station)
    out = Path(args.out) if args.out else _default_out(Path(args.recipe).stem)
    check_outputs(out, args.json, args.figures)
    check_record(args.record, out)
    _prepared(recipe, config, out, console)
    with _station(config, record=args.record) as station:
        return _execute(console, sig, lambda bar: run_recipe(station, recipe, out, progress=bar, metadata=meta),
                        out, args.json, args.quiet, args.figures)


def cmd_campaign(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    """``rramlab run CAMPAIGN --station S --out DIR``: the recipe on every selected die (see protocols.campaign)."""
    path = Path(args.recipe)
    campaign = parse_campaign(read_text_file(path, RecipeError, "recipe file"), str(path))
    meta = parse_meta_options(args.meta)
    config = load_station_config(args.station)
    if not args.out:
        raise CampaignError("--out DIR: a campaign writes one run file per die into a directory")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    prepare(campaign.recipe, config)                 # every input check, nothing sent
    with _station(config, record=args.record) as station:
        return _execute_campaign(console, sig, lambda bar, on_die: run_campaign(
            station, campaign, out, metadata=meta, on_die=on_die, progress=bar), args.quiet)


def _execute_campaign(console: Console, sig: CliSignals, start: Callable[..., Any], quiet: bool) -> int:
    bar = _Bar(console, enabled=not quiet)

    def on_die(die: tuple[int, int], k: int, n: int) -> None:
        if not quiet:
            console.print(escape(f"die ({die[0]}, {die[1]}): {k + 1} of {n}"), style="bold")

    sig.start_run()
    try:
        with bar.progress:
            result = start(bar, on_die)
    except (PreflightError, ResumeRefused, BenchBusyError, FileExistsError, CampaignError) as e:
        _say(console, e)
        return sig.exit_code(EXIT_REFUSED)
    except Exception as e:  # noqa: BLE001 - a die's run failed: recorded in its file and the index
        kept = getattr(e, "run_file", None)
        where = f" Data kept in {_where(Path(kept))} (exit status 'failed')." if kept else ""
        _say(console, f"Campaign stopped: {type(e).__name__}: {e}.{where} {_safe_text(e)} Continue with "
                      f"rramlab resume DIR.")
        return sig.exit_code(EXIT_FAILED)
    done = len(result.results) + len(result.skipped) + len(result.no_contact)
    open_dies = f" ({len(result.no_contact)} without contact: {result.no_contact})" if result.no_contact else ""
    _say(console, f"campaign {result.exit_status}: {done} of {len(result.dies)} dies in {result.directory}{open_dies}"
                  + ("" if result.exit_status == "completed" else f"; continue with rramlab resume {result.directory}"),
         "green" if result.exit_status == "completed" else "yellow")
    return sig.exit_code(_EXIT_CODES.get(result.exit_status, EXIT_FAILED))


def cmd_resume(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    out = Path(args.file)
    if out.is_dir():                                 # a campaign directory
        index = CampaignIndex.read(out)
        recipe = parse_campaign(index.events[0]["recipe"], f"{out} (the campaign's recipe)").recipe
        config = load_station_config(args.station) if args.station else None
        if config is None:
            first = next((die_file(out, d) for d in index.dies
                          if die_file(out, d).exists() or Path(journal_path(die_file(out, d))).exists()), None)
            if first is None:
                raise CampaignError(f"{out}: no die run file yet; give --station")
            config = parse_station_config(_open_quietly(first).metadata["station"], f"{first} (its station file)")
        prepare(recipe, config)
        with _station(config) as station:
            return _execute_campaign(console, sig, lambda bar, on_die: resume_campaign(
                station, out, on_die=on_die, progress=bar, force=args.force), args.quiet)
    if not out.exists() and not Path(journal_path(out)).exists():
        raise FileNotFoundError(f"{out}: no such run file (nor its journal)")
    check_outputs(out, args.json, args.figures, resume=True)
    run = _open_quietly(out)
    config = (load_station_config(args.station) if args.station
              else parse_station_config(run.metadata["station"], f"{out} (the run's station file)"))
    _prepared(parse_recipe(run.metadata["recipe"], f"{out} (the run's recipe)"), config, out, console)
    with _station(config) as station:
        return _execute(console, sig, lambda bar: resume_run(station, out, force=args.force, progress=bar),
                        out, args.json, args.quiet, args.figures)


def cmd_check(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    text = read_text_file(Path(args.recipe), RecipeError, "recipe file")
    recipe = parse_campaign(text, args.recipe).recipe if is_campaign(text) else load_recipe(args.recipe)
    config = load_station_config(args.station)
    prepare(recipe, config)                  # exactly the input checks `run` makes before opening anything
    _say(console, f"{args.recipe}: {len(recipe.steps)} steps pass the safety envelope of {config.name}", "green")
    return 0


def cmd_stations(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    """The shipped station files: name (usable as --station NAME), instruments, die, VISA library."""
    t = Table(title="station files shipped in examples/ (--station NAME, or copy the file)")
    t.add_column("name", no_wrap=True)
    for column in ("station", "instruments (driver)", "die", "visa_library"):
        t.add_column(column)
    for name in example_stations():
        c = load_station_config(name)
        drivers = ", ".join(f"{n} ({e.driver})" for n, e in c.instruments.items())
        libraries = sorted({e.visa_library or "(system VISA)" for e in c.instruments.values()})
        t.add_row(name, c.name, drivers, f"{c.rows}x{c.cols}", ", ".join(libraries))
    console.print(t)
    return 0


def cmd_info(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    run = _open_quietly(Path(args.file))          # a live, killed or damaged run can be inspected
    meta = run.metadata
    source = (" — read from its journal (live, stopped or not built yet; `rramlab recover` builds the HDF5 "
              "file)" if run.source == "journal" else "")
    _say(console, f"{args.file}: schema {run.schema_version}, exit status {run.exit_status}"
                  + (f" ({run.exit_message})" if run.exit_message else "") + source, "bold")
    for note in run.notes:
        _say(console, f"  note: {note}", "yellow")
    for key in ("run_id", "package_version", "seed", "start_time", "stop_time", "host"):
        if meta.get(key) is not None:
            console.print(escape(f"  {key}: {meta[key]}"))
    sample = dict((meta.get("extras") or {}).get("sample") or {})
    for key in [*(k for k in SAMPLE_KEYS if k in sample), *sorted(k for k in sample if k not in SAMPLE_KEYS)]:
        console.print(escape(f"  {key}: {sample[key]}"))
    epoch = run.sessions[0].get("clock_epoch_unix") if run.sessions else None
    if epoch is not None:
        origin = datetime.fromtimestamp(float(epoch), timezone.utc).isoformat(timespec="milliseconds")
        console.print(escape(f"  clock origin (t = 0 s of every t column): {origin} (UTC epoch {float(epoch):.3f} s"
                             + (", the simulated bench's calendar)" if "@rramlab" in str(meta.get("station", ""))
                                else ")")))
    for name, idn in (meta.get("instruments") or {}).items():
        console.print(escape(f"  instrument {name}: {idn}"))
    for s in run.sessions[1:]:
        note = f"; {s['note']}" if s.get("note") else ""
        console.print(escape(f"  session {s.get('id')}: {s.get('kind')} at {s.get('start_time')} (pid {s.get('pid')}), "
                             f"exit {s.get('exit_status') or 'incomplete'}{note}"))
    if run.state.in_flight:
        console.print(escape(f"  cells in flight when it stopped (read first on resume): {run.state.in_flight}"))
    t = Table(title="steps")
    for col in ("#", "name", "protocol", "status", "cells", "units done"):
        t.add_column(col)
    units = run.state.units
    for s in run.steps:
        done = str(len(units.get(s.index, ())))
        t.add_row(str(s.index), escape(s.name), s.protocol, s.status, str(len(s.cells)), done)
    console.print(t)
    t = Table(title="tables")
    for col in ("table", "rows", "columns (units)"):
        t.add_column(col)
    for name, df in _tables(run).items():
        unit = df.attrs.get("units", {})
        rows = str(len(df)) + (f" ({len(df.attrs['skipped'])} part(s) unreadable, skipped)"
                               if df.attrs.get("skipped") else "")
        t.add_row(name, rows, escape(", ".join(f"{c} [{unit.get(c)}]" if unit.get(c) else c for c in df.columns)))
    console.print(t)
    for name, parts in run.skipped.items():
        for part in parts:
            _say(console, f"  {name}: skipped {part}", "yellow")
    return 0


def _check_report_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any file is read, --html/--csv/--figures paths the report could not write."""
    if args.html:
        html = Path(args.html)
        if html.is_dir():
            raise IsADirectoryError(f"--html {html} is a directory; give a file name")
        if not html.parent.is_dir():
            raise FileNotFoundError(f"--html {html}: directory {html.parent} does not exist")
        if any(html.resolve() == Path(f).resolve() for f in args.files):
            raise FileExistsError(f"--html {html} is one of the run files; give another name")
    for option, value in (("--csv", args.csv), ("--figures", args.figures)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise NotADirectoryError(f"{option} {value} exists and is not a directory")


def cmd_report(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    """Summary JSON of each run file (one file: its summary; several: keyed by file), and optionally PNG
    figures, one HTML page over all files, CSV tables."""
    from rramlab.analysis.export_csv import export_run_csv, unique_stems

    _check_report_outputs(args)
    files = _report_files(args.files)
    summaries, records = {}, []
    for f in files:                                          # every file readable before anything is written
        summaries[str(f)], record = _summary_and_record(f)
        records.append(record)
    out = summaries[str(files[0])] if len(files) == 1 else summaries
    console.print_json(json.dumps(out, default=_json_default))
    code = 0
    stems = unique_stems(files)
    maps = _wafer_maps(records) if args.html or args.figures else {}
    reports = None
    if args.html:                         # figures drawn once, for the page and the PNGs
        from rramlab.analysis.report_html import load_run_report

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedRowsWarning)
            reports = [load_run_report(f) for f in files]
    if args.figures:
        for k, (f, stem) in enumerate(zip(files, stems, strict=True)):
            target = Path(args.figures) if len(files) == 1 else Path(args.figures) / stem
            code = _write_figures(console, f, target, reports[k].figures if reports else None) or code
        if maps:
            code = _write_figures(console, files[0], Path(args.figures) / "wafer_maps", maps) or code
    if args.csv:
        try:
            written = [p for f, stem in zip(files, stems, strict=True) for p in export_run_csv(f, args.csv, stem)]
        except OSError as e:
            _say(console, f"--csv {args.csv}: not written: {e.strerror or e}")
            code = EXIT_FAILED
        else:
            console.print(escape(f"{len(written)} CSV tables written to {args.csv}"))
    if reports is not None:
        from rramlab.analysis.report_html import write_report_html

        try:
            figures = write_report_html(reports, args.html, wafer_maps=maps)
        except OSError as e:
            _say(console, f"--html {args.html}: not written: {e.strerror or e}")
            code = EXIT_FAILED
        else:
            console.print(escape(f"{args.html}: {len(files)} run(s), {len(figures)} figures"))
    return code


def _report_files(items: list[str]) -> list[Path]:
    """The run files to report: each FILE as given, each directory as every run file under it (recursive)."""
    from rramlab.analysis.catalog import find_runs

    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = find_runs(path)
            if not found:
                raise FileNotFoundError(f"{path}: no run files (*.h5, *.h5.journal) under this directory")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def _summary_and_record(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary of a run (as ``_summary``) and its catalogue record (die position, headline figures)."""
    from rramlab.analysis.catalog import run_record

    run = _open_quietly(path)
    summary = _summary_of(run)
    return summary, run_record(run, summary)


def _wafer_maps(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Wafer maps of the runs that carry die_col/die_row (two or more dies of a wafer; else none)."""
    from rramlab.analysis.wafer_map import wafer_map_figures

    return wafer_map_figures(records)


def _catalog_update(console: Console, directory: Path, rebuild: bool, quiet: bool) -> Any:
    """Create or update DIR's catalogue (a progress line per run opened unless ``quiet``)."""
    from rramlab.analysis.catalog import update_catalog

    def progress(k: int, n: int, rel: str) -> None:
        if not quiet:
            console.print(escape(f"  [{k + 1}/{n}] {rel}"), highlight=False)

    return update_catalog(directory, rebuild=rebuild, progress=progress)


def cmd_catalog(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    """Create or update the catalogue of the runs under DIR (DIR/rramlab-catalog.sqlite)."""
    report = _catalog_update(console, Path(args.dir), args.rebuild, args.quiet)
    _say(console, report.text(), "yellow" if report.unreadable else "green")
    for rel, why in report.unreadable:
        _say(console, f"  unreadable: {rel}: {why}", "yellow")
    return 0


def _fmt(value: Any, fmt: str, scale: float = 1.0) -> str:
    return "" if value is None else format(float(value) * scale, fmt)


def cmd_ls(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    """The catalogued runs under DIR matching the filters (the catalogue updated first), as a table or JSON
    lines."""
    import sqlite3

    from rramlab.analysis.catalog import CatalogError, Filters, memory_catalog, query, query_catalog, row_json

    directory = Path(args.dir)
    filters = Filters(wafer=args.wafer, die=args.die, lot=args.lot, operator=args.operator, protocol=args.protocol,
                      status=args.status, since=args.since, until=args.until)
    try:
        _catalog_update(console, directory, False, True)
        rows = query_catalog(directory, filters)
    except (CatalogError, PermissionError, sqlite3.OperationalError) as e:     # e.g. a read-only archive
        # on stderr: stdout may be JSON lines
        _say(Console(stderr=True), f"catalogue not written ({e}); listing from a catalogue in memory", "yellow")
        conn, _ = memory_catalog(directory)
        try:
            rows = query(conn, filters)
        finally:
            conn.close()
    if args.json:
        try:
            for row in rows:
                sys.stdout.write(json.dumps(row_json(row), default=_json_default) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:               # `rramlab ls --json | head`: the reader has all it wanted
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    t = Table(title=escape(f"{len(rows)} run(s) under {directory}"), box=box.SIMPLE_HEAD)
    longest = max([len(str(r["path"])) for r in rows] or [4])
    t.add_column("path", min_width=min(longest, 28), overflow="fold")
    for col in ("wafer", "die", "start (UTC)", "status"):
        t.add_column(col, no_wrap=True)
    t.add_column("protocols", min_width=9)
    for col in ("yield %", "V_form V", "σ slope", "Δ10y µS"):      # Δ10y: retention mean shift at 10 years
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        die = r["die"] or (f"{r['die_col']},{r['die_row']}" if r["die_col"] is not None else "")
        t.add_row(*(escape(str(x)) for x in (
            r["path"], r["wafer"] or "", die, (r["start_time"] or "")[:16].replace("T", " "), r["exit_status"] or "",
            (r["protocols"] or "").replace(",", ", "), _fmt(r["forming_yield"], ".1f", 100),
            _fmt(r["v_form_mean"], ".3f"), _fmt(r["pv_sigma_slope"], ".3g"), _fmt(r["retention_shift_10y_uS"], ".3g"))))
    # piped or redirected (rich then assumes 80 columns): the table at its natural width, nothing folded
    (console if console.is_terminal else Console(width=240)).print(t)
    return 0


def cmd_recover(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    from rramlab.analysis.dataset_recover import recover

    path = Path(args.file)
    with BenchLock.acquire(run_file_keys(path), run_file=str(path), purpose="recover"):   # not a live run's file
        sig.start_run()
        report = recover(path, Path(args.out) if args.out else None)
    _say(console, report.text(), "yellow" if report.skipped else "green")
    return sig.exit_code(0)


def conform_library(bench: str | None, recorded: str | list[str]) -> str:
    """A fresh simulated bench for ``rramlab conform``: ``bench`` (a shipped bench name, a bench file, a query
    such as ``?seed=3``), else the recording's own simulated bench, else the default bench."""
    if bench is None:
        specs = [recorded] if isinstance(recorded, str) else [str(r) for r in recorded]
        bench = next((s for s in specs if s.endswith(SIMULATED) and "server=" not in s and "replay=" not in s), "")
    bench = bench.removesuffix(SIMULATED)
    return f"{bench}{'&' if '?' in bench else '?'}tag=conform-{uuid.uuid4().hex[:12]}{SIMULATED}"


def _print_conform(console: Console, report: ConformReport) -> None:
    for d in report.differences:
        console.print(escape(f"#{d.index} {d.resource}  {d.command}"), style="bold")
        console.print(escape(f"    recorded: {'(timeout)' if d.recorded is None else repr(d.recorded)}"))
        console.print(escape(f"    emulator: {'(timeout)' if d.emulated is None else repr(d.emulated)}"))
        if d.offset is not None:
            console.print(escape(f"    first difference at byte {d.offset}"))
    skipped = f", {report.skipped} ignored" if report.skipped else ""
    _say(console, f"{report.transcript}: {report.compared} replies compared on {report.library}{skipped}: "
                  f"{len(report.differences)} differ", "red" if report.differences else "green")


def cmd_conform(args: argparse.Namespace, console: Console, sig: CliSignals) -> int:
    """Send a recorded session to a fresh simulated bench (through pyvisa) and report the replies that differ."""
    transcript = read_transcript(args.transcript)
    report = conform(transcript, conform_library(args.bench, transcript.library), ignore=args.ignore)
    _print_conform(console, report)
    if args.json:
        write_text_atomic(Path(args.json), json.dumps({
            "transcript": str(report.transcript), "library": report.library, "compared": report.compared,
            "ignored": report.skipped, "differences": [
                {"index": d.index, "resource": d.resource, "command": d.command,
                 "recorded": None if d.recorded is None else d.recorded.decode("latin-1"),
                 "emulator": None if d.emulated is None else d.emulated.decode("latin-1"), "offset": d.offset}
                for d in report.differences]}, indent=2))
    return EXIT_FAILED if report.differences else 0


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a regular expression: {e}") from None
    return text


def _date(text: str) -> str:
    """An ISO 8601 date or date-time (checked; kept as text for the catalogue query)."""
    from rramlab.analysis.catalog import parse_when

    try:
        parse_when(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer 0 … 2**63 - 1, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer 0 … 2**63 - 1, got {value}")
    return value


def _outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", help="write the summary figures to this JSON file")
    p.add_argument("--figures", help="directory for the report figures (PNG)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")


def _meta_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="sample metadata stored in the run file "
                   "(repeatable; over the recipe's [metadata]), e.g. --meta operator=jdoe --meta wafer=W12 "
                   "--meta die=3,4")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rramlab", description="ReRAM array characterization on real or simulated "
                                 "benches (any SMU and switch matrix with a registered driver), HDF5 datasets and "
                                 "analysis.")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="full characterization run on the embedded simulated bench")
    d.add_argument("--out", help="HDF5 file to write (default rramlab-demo-<time>.h5; never overwritten)")
    d.add_argument("--seed", type=_seed, help="seed of the simulated bench, 0 … 2**63 - 1 (default: the bench "
                   "file's)")
    d.add_argument("--record", metavar="FILE", help="record every VISA message to this transcript (JSON Lines; "
                   "never overwritten)")
    _outputs(d)
    _meta_option(d)
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("run", help="run a recipe on a station")
    r.add_argument("recipe", help="recipe TOML file")
    r.add_argument("--station", required=True, help="station TOML file, or a shipped one by name (rramlab "
                   "stations)")
    r.add_argument("--out", help="HDF5 file to write (never overwritten)")
    r.add_argument("--record", metavar="FILE", help="record every VISA message of the station's instruments to "
                   "this transcript (JSON Lines; never overwritten); replay it with visa_library = "
                   "\"?replay=FILE@rramlab\"")
    _outputs(r)
    _meta_option(r)
    r.set_defaults(func=cmd_run)
    u = sub.add_parser("resume", help="continue an interrupted, failed or killed run in the same file")
    u.add_argument("file", help="the run file (its journal is used if one exists)")
    u.add_argument("--station", help="station TOML file (default: the one stored in the run)")
    u.add_argument("--force", action="store_true", help="resume although the station file, rramlab version, "
                   "instrument identities or clock differ from the run's (recorded in the file)")
    _outputs(u)
    u.set_defaults(func=cmd_resume)
    c = sub.add_parser("check", help="check a recipe against a station's safety envelope (sends nothing)")
    c.add_argument("recipe")
    c.add_argument("--station", required=True)
    c.set_defaults(func=cmd_check)
    s = sub.add_parser("stations", help="list the station files shipped with rramlab (usable by name)")
    s.set_defaults(func=cmd_stations)
    i = sub.add_parser("info", help="describe a run file (also a live, stopped or damaged one)")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
    p = sub.add_parser("report", help="summary figures (JSON), plots, an HTML page and CSV tables of run files")
    p.add_argument("files", nargs="+", metavar="FILE", help="run file(s) or directories (every run file under "
                   "them); with several, the JSON is keyed by file; runs of two or more dies of a wafer "
                   "(die_col/die_row) add wafer maps to --html and --figures (DIR/wafer_maps/)")
    p.add_argument("--figures", metavar="DIR", help="directory for PNG figures (several files: DIR/<file stem>/)")
    p.add_argument("--html", metavar="OUT.html", help="one self-contained HTML page over all files: run metadata, "
                   "steps, summary figures side by side and every plot")
    p.add_argument("--csv", metavar="DIR", help="every table of every file as DIR/<file stem>.<table>.csv, units "
                   "in the header")
    p.set_defaults(func=cmd_report)
    g = sub.add_parser("catalog", help="index every run file under DIR (recursive; also live or killed runs) in "
                       "DIR/rramlab-catalog.sqlite: sample, die, status, headline figures; incremental")
    g.add_argument("dir", metavar="DIR")
    g.add_argument("--rebuild", action="store_true", help="build the catalogue from scratch (every file reopened)")
    g.add_argument("--quiet", action="store_true", help="no line per run opened")
    g.set_defaults(func=cmd_catalog)
    ls = sub.add_parser("ls", help="list the catalogued runs under DIR (the catalogue is updated first), filtered")
    ls.add_argument("dir", metavar="DIR", nargs="?", default=".", help="directory (default: the current one)")
    ls.add_argument("--wafer", help="wafer name (exact)")
    ls.add_argument("--die", help="die: its text as recorded, or COL,ROW of the prober grid (e.g. 3,-2)")
    ls.add_argument("--lot", help="lot (exact)")
    ls.add_argument("--operator", help="operator (exact)")
    ls.add_argument("--protocol", help="runs with a step of this protocol (e.g. forming)")
    ls.add_argument("--status", help="exit status: completed, interrupted, failed, aborted, incomplete, unreadable")
    ls.add_argument("--since", metavar="DATE", type=_date, help="started at or after DATE (ISO 8601; UTC unless "
                    "it says)")
    ls.add_argument("--until", metavar="DATE", type=_date, help="started before the end of DATE (a bare date: that "
                    "whole day)")
    ls.add_argument("--json", action="store_true", help="one JSON object per run (every catalogue column)")
    ls.set_defaults(func=cmd_ls)
    v = sub.add_parser("recover", help="build a readable run file from what survived (journal or damaged file)")
    v.add_argument("file")
    v.add_argument("--out", help="where to write a file salvaged from a damaged HDF5 file (default "
                   "<name>.recovered.h5; the damaged file is kept)")
    v.set_defaults(func=cmd_recover)
    f = sub.add_parser("conform", help="send a recorded session (--record) to the emulators and report every reply "
                       "that differs (exit 0: all match, 1: some differ, 2: unusable file)")
    f.add_argument("transcript", help="transcript file (JSON Lines, from --record)")
    f.add_argument("--bench", help="simulated bench: a shipped bench name, a bench file or a query such as "
                   "'?seed=3' (default: the recording's simulated bench, else the default bench)")
    f.add_argument("--ignore", metavar="REGEX", action="append", type=_regex, default=[],
                   help="do not compare replies to commands matching REGEX (e.g. measurements); repeatable")
    f.add_argument("--json", help="write the differences to this JSON file")
    f.set_defaults(func=cmd_conform)
    return ap


_REFUSALS = (RecipeError, StationConfigError, TranscriptError, ConformError, ParameterError, PreflightError,
             InstrumentConnectionError, DatasetError, ResumeRefused, BenchBusyError, InsufficientSpaceError,
             FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
             BlockingIOError, CampaignError)


def main(argv: list[str] | None = None, *, signals: CliSignals | None = None) -> int:
    sig = signals or CliSignals()
    if signals is None:
        sig.install()
    console = Console(stderr=False)
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args, console, sig))
    except _REFUSALS as e:
        sig.hold()                              # the outcome is decided: later signals are only noted
        _say(console, f"error: {e}")            # bad input, busy bench, unreachable instrument, unusable file
        return sig.exit_code(EXIT_REFUSED)
    except KeyboardInterrupt:
        sig.hold()                              # a second Ctrl-C while this is printed must not end in a traceback
        _say(console, "Interrupted: nothing was sent to any instrument.", "yellow")
        return EXIT_INTERRUPTED
    except SystemExit as e:
        sig.hold()
        if e.code in [128 + sig for sig in ABORT_SIGNALS]:
            _say(console, "Terminated: nothing was sent to any instrument.", "yellow")
        raise


if __name__ == "__main__":
    from .entry import main as entry_main

    sys.exit(entry_main())
