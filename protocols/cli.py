"""The ``rramlab`` command line: demo, run, check, info, report."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rramlab.analysis.dataset_schema import DatasetError
from rramlab.drivers.station import InstrumentConnectionError, Station
from rramlab.drivers.station_config import StationConfigError

from .base import ParameterError
from .preflight import PreflightError
from .recipe import Recipe, RecipeError, demo_recipe, load_recipe
from .runner import RunResult, run_recipe

EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143
_EXIT_CODES = {"completed": 0, "interrupted": EXIT_INTERRUPTED, "aborted": EXIT_TERMINATED}


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
    while path.exists():
        n += 1
        path = Path(f"{stem}-{n}.h5")
    return path


def _summary(path: Path) -> dict[str, Any]:
    """The summary figures of a run file, with its exit status."""
    from rramlab.analysis.dataset import open_run
    from rramlab.analysis.summary import summarize

    run = open_run(path, locking=False)
    return {"exit_status": run.exit_status, **summarize({name: run.table(name) for name in run.tables})}


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


def check_outputs(out: Path, json_path: str | None, figures: str | None) -> None:
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
    if out.exists():
        raise FileExistsError(f"{out} exists; refusing to overwrite a run file (choose another --out)")
    if json_file is not None and json_file.resolve() == out.resolve():
        raise FileExistsError(f"--json {json_file} is the run file itself; give another name")
    if figures:
        fig = Path(figures)
        if fig.resolve() == out.resolve() or (fig.exists() and not fig.is_dir()):
            raise NotADirectoryError(f"--figures {figures} exists and is not a directory")
        existing = fig if fig.exists() else next(p for p in fig.resolve().parents if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise PermissionError(f"--figures {figures}: {existing} is not a writable directory")


def _execute(console: Console, station: Station, recipe: Recipe, out: Path, seed: int | None,
             json_path: str | None, quiet: bool, figures: str | None = None) -> int:
    bar = _Bar(console, enabled=not quiet)
    try:
        with bar.progress:
            result = run_recipe(station, recipe, out, seed=seed, progress=bar)
    except PreflightError as e:
        _say(console, e)
        return EXIT_REFUSED
    except Exception as e:  # noqa: BLE001 - the run failed after it began: recorded in the file, reported here
        kept = f" Data kept in {out} (exit status 'failed')." if out.exists() else ""
        _say(console, f"Run failed: {type(e).__name__}: {e}.{kept} Outputs off, relays open.")  # traceback: in the file
        return EXIT_FAILED
    finally:
        station.close()
    if result.exit_status == "interrupted":
        _say(console, f"Interrupted: {_rows_text(out)} recorded in {out} (exit status 'interrupted'); "
                        "outputs off, relays open.", "yellow")
    elif result.exit_status != "completed":
        _say(console, f"Run {result.exit_status}: {result.message}. Data kept in {out}.")
    summary = _summary(out)
    summary.update({"exit_status": result.exit_status, "file": str(out), "wall_time_s": result.wall_time_s,
                    "sim_hardware_time_s": result.sim_hardware_time_s, "units_done": result.units_done})
    if not quiet:
        _print_summary(console, summary, result)
    if json_path:
        Path(json_path).write_text(json.dumps(summary, indent=2, allow_nan=False, default=_json_default))
    if figures:
        _write_figures(console, out, Path(figures))
    return _EXIT_CODES.get(result.exit_status, EXIT_FAILED)


def _rows_text(path: Path) -> str:
    """Rows per table in a run file, e.g. "forming 12 rows, forming_sweep 3411 rows"."""
    from rramlab.analysis.dataset import open_run

    run = open_run(path)
    return ", ".join(f"{name} {len(run.table(name))} rows" for name in run.tables) or "no rows"


def _write_figures(console: Console, run_file: Path, directory: Path) -> None:
    from rramlab.analysis.dataset import open_run
    from rramlab.analysis.plots import save_report_figures

    run = open_run(run_file)
    paths = save_report_figures({n: run.table(n) for n in run.tables}, directory)
    console.print(escape(f"{len(paths)} figures written to {directory}: {', '.join(p.name for p in paths)}"))


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON-serialisable: {o!r}")


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    out = Path(args.out) if args.out else _default_out("rramlab-demo")
    check_outputs(out, args.json, args.figures)
    library = f"?seed={args.seed}@rramlab" if args.seed is not None else None
    station = Station.from_file(None, visa_library=library)
    return _execute(console, station, demo_recipe(), out, args.seed, args.json, args.quiet, args.figures)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    recipe = load_recipe(args.recipe)
    out = Path(args.out) if args.out else _default_out(Path(args.recipe).stem)
    check_outputs(out, args.json, args.figures)
    station = Station.from_file(args.station)
    return _execute(console, station, recipe, out, None, args.json, args.quiet, args.figures)


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    from rramlab.drivers.station_config import load_station_config

    from .preflight import preflight

    recipe = load_recipe(args.recipe)
    config = load_station_config(args.station)
    try:
        preflight(recipe.build(config.rows, config.cols), config.safety)
    except (PreflightError, ParameterError) as e:
        _say(console, e)
        return EXIT_REFUSED
    _say(console, f"{args.recipe}: {len(recipe.steps)} steps pass the safety envelope of {config.name}", "green")
    return 0


def cmd_info(args: argparse.Namespace, console: Console) -> int:
    from rramlab.analysis.dataset import open_run

    run = open_run(args.file, locking=False)          # a run still being written can be inspected
    meta = run.metadata
    _say(console, f"{args.file}: schema {run.schema_version}, exit status {run.exit_status}"
                    + (f" ({run.exit_message})" if run.exit_message else ""), "bold")
    for key in ("run_id", "package_version", "seed", "start_time", "stop_time", "host"):
        if meta.get(key) is not None:
            console.print(escape(f"  {key}: {meta[key]}"))
    for name, idn in (meta.get("instruments") or {}).items():
        console.print(escape(f"  instrument {name}: {idn}"))
    t = Table(title="steps")
    for col in ("#", "name", "protocol", "status", "cells"):
        t.add_column(col)
    for s in run.steps:
        t.add_row(str(s.index), escape(s.name), s.protocol, s.status, str(len(s.cells)))
    console.print(t)
    t = Table(title="tables")
    for col in ("table", "rows", "columns (units)"):
        t.add_column(col)
    for name in run.tables:
        df = run.table(name)
        units = df.attrs.get("units", {})
        t.add_row(name, str(len(df)), escape(", ".join(f"{c} [{units.get(c)}]" if units.get(c) else c
                                                       for c in df.columns)))
    console.print(t)
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    summary = _summary(Path(args.file))
    console.print_json(json.dumps(summary, default=_json_default))
    if args.figures:
        _write_figures(console, Path(args.file), Path(args.figures))
    return 0


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer 0 … 2**63 - 1, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer 0 … 2**63 - 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rramlab", description="ReRAM array characterization on real or simulated "
                                 "benches (Keithley 2636B + 707B), HDF5 datasets and analysis.")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="full characterization run on the embedded simulated bench")
    d.add_argument("--out", help="HDF5 file to write (default rramlab-demo-<time>.h5; never overwritten)")
    d.add_argument("--seed", type=_seed, help="seed of the simulated bench, 0 … 2**63 - 1 (default: the bench "
                   "file's)")
    d.add_argument("--json", help="write the summary figures to this JSON file")
    d.add_argument("--figures", help="directory for the report figures (PNG)")
    d.add_argument("--quiet", action="store_true", help="no progress bar or table")
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("run", help="run a recipe on a station")
    r.add_argument("recipe", help="recipe TOML file")
    r.add_argument("--station", required=True, help="station TOML file")
    r.add_argument("--out", help="HDF5 file to write (never overwritten)")
    r.add_argument("--json", help="write the summary figures to this JSON file")
    r.add_argument("--figures", help="directory for the report figures (PNG)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_run)
    c = sub.add_parser("check", help="check a recipe against a station's safety envelope (sends nothing)")
    c.add_argument("recipe")
    c.add_argument("--station", required=True)
    c.set_defaults(func=cmd_check)
    i = sub.add_parser("info", help="describe a run file")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
    p = sub.add_parser("report", help="summary figures (JSON) and plots of a run file")
    p.add_argument("file")
    p.add_argument("--figures", help="directory for PNG figures")
    p.set_defaults(func=cmd_report)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        return int(args.func(args, console))
    except (RecipeError, StationConfigError, ParameterError, InstrumentConnectionError, DatasetError,
            FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
            BlockingIOError) as e:
        _say(console, f"error: {e}")            # bad input, unreachable instrument, unusable file or path
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
