"""One self-contained HTML page reporting one or several run files (``rramlab report … --html``).

The page fetches nothing: figures are base64 PNG ``data:`` URIs, the CSS is inline, there is no script,
and a Content-Security-Policy forbids every other source. Every string taken from a run file is
escaped (run files are user input). Every figure carries its run and die/array label
(:func:`figure_label`) as its super-title, alt text and caption.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .atomic import write_text_atomic
from .dataset_reader import RunData, SkippedRowsWarning, open_run
from .plots import report_figures
from .summary import all_tables, summarize

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Content-Security-Policy of the page: inline CSS and data: images only, nothing fetched
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0;border:1px solid #ddd;padding:.5em;display:inline-block}
figure img{max-width:100%;height:auto;display:block}figcaption{font-size:.85em;color:#444;margin-top:.3em}
.status-completed{color:#070}.status-failed,.status-aborted,.status-incomplete{color:#b00}
.status-interrupted{color:#a60}
"""


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a report says about a run: file, identity, recipe, station, die/array, times and steps."""

    path: str
    run_id: str
    recipe: str
    station: str
    array: str
    die: str
    start_time: str
    stop_time: str
    exit_status: str
    exit_message: str
    steps: tuple[Mapping[str, Any], ...]
    sample: Mapping[str, Any] = dataclasses.field(default_factory=dict)   # operator, wafer, lot, die, notes, …


@dataclasses.dataclass
class RunReport:
    """One run's part of the page: its info, summary (JSON-able dict) and figures by name."""

    info: RunInfo
    summary: dict[str, Any]
    figures: dict[str, Figure]


def _toml(text: str) -> dict[str, Any]:
    """The TOML document ``text`` as a dict ({} if it does not parse: the report still shows the rest)."""
    try:
        return tomllib.loads(text or "")
    except (tomllib.TOMLDecodeError, TypeError):
        return {}


def run_info(run: RunData) -> RunInfo:
    """:class:`RunInfo` from an opened run: recipe name and station name/array read from the stored TOML
    texts; ``die`` from the run metadata when a run records one (else "")."""
    meta = run.metadata
    recipe = _toml(str(meta.get("recipe", ""))).get("recipe", {})
    station = _toml(str(meta.get("station", "")))
    array = station.get("array", {}) if isinstance(station.get("array"), dict) else {}
    rows, cols = array.get("rows"), array.get("cols")
    size = f"{rows}×{cols}" if rows is not None and cols is not None else ""
    sample = dict((meta.get("extras") or {}).get("sample") or {})
    steps = tuple({"index": s.index, "name": s.name, "protocol": s.protocol, "status": s.status,
                   "cells": len(s.cells), "start_time": s.start_time, "stop_time": s.stop_time or "",
                   "message": s.message} for s in run.steps)
    return RunInfo(
        path=run.path, run_id=str(meta.get("run_id") or ""),
        recipe=str(recipe.get("name", "")) if isinstance(recipe, dict) else "",
        station=str((station.get("station") or {}).get("name", "")) if isinstance(station.get("station"), dict)
        else "",
        array=" ".join(str(x) for x in (array.get("topology", ""), size) if x),
        die=_die(sample),
        start_time=str(meta.get("start_time") or ""), stop_time=str(meta.get("stop_time") or ""),
        exit_status=run.exit_status, exit_message=run.exit_message, steps=steps, sample=sample)


def _die(sample: Mapping[str, Any]) -> str:
    """"W12 3,4" from the sample metadata's wafer and die ("" without a die)."""
    die = str(sample.get("die", "")).strip()
    wafer = str(sample.get("wafer", "")).strip()
    return f"{wafer} {die}".strip() if die else ""


def die_label(info: RunInfo) -> str:
    """The die/array a run measured: its ``die`` when recorded, else station name and array (e.g.
    "simulated 2636B + 707B bench, 1T1R 8×8 array")."""
    if info.die:
        return f"die {info.die}"
    parts = [p for p in (info.station, f"{info.array} array" if info.array else "") if p]
    return ", ".join(parts) or "die unknown"


def figure_label(info: RunInfo) -> str:
    """The label every figure of a run carries: run id, file name and die/array."""
    run = f"run {info.run_id[:8]}" if info.run_id else "run (no id)"
    return f"{run} ({Path(info.path).name}) · {die_label(info)}"


def load_run_report(path: str | os.PathLike[str]) -> RunReport:
    """Open a run file (HDF5 or journal) and build its summary and labelled figures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRowsWarning)   # skipped parts are listed in the summary
        run = open_run(path, locking=False)
        tables = all_tables(run)           # each table read once, when a section or figure asks for it
        info = run_info(run)
        summary = {"exit_status": run.exit_status, **summarize(tables)}
        if run.skipped:
            summary["skipped"] = run.skipped
        return RunReport(info, summary, report_figures(tables, figure_label(info)))


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested summary dict → {"forming.yield": 0.98, …}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def format_value(value: Any) -> str:
    """A summary value as table text: 4 significant digits, "—" for None/NaN, lists comma-separated."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def png_data_uri(fig: Figure, dpi: int = 100) -> str:
    """The figure as a ``data:image/png;base64,…`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 99) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class=\"num\">{_e(c)}</td>" if k >= numeric_from else f"<td>{_e(c)}</td>"
                                    for k, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(status: str) -> str:
    return f"<span class=\"status-{_e(status)}\">{_e(status)}</span>"


def _run_section(k: int, report: RunReport) -> str:
    info = report.info
    label = figure_label(info)
    parts = [f"<section class=\"run\" id=\"run-{k}\"><h2>{_e(label)}</h2>",
             _table(["file", "run id", "recipe", "station", "die / array", "start", "stop", "exit status"],
                    [[info.path, info.run_id, info.recipe, info.station, die_label(info), info.start_time,
                      info.stop_time, info.exit_status + (f": {info.exit_message}" if info.exit_message else "")]]),
             *([_table(["sample", "value"], [[k, v] for k, v in info.sample.items()])] if info.sample else []),
             "<h3>steps</h3>",
             _table(["#", "name", "protocol", "status", "cells", "start", "stop", "message"],
                    [[s["index"], s["name"], s["protocol"], s["status"], s["cells"], s["start_time"], s["stop_time"],
                      s["message"]] for s in info.steps])]
    parts.append(f"<h3>figures ({len(report.figures)})</h3>")
    for name, fig in report.figures.items():
        parts.append(f"<figure class=\"report-figure\" id=\"fig-{k}-{_e(name)}\" data-figure=\"{_e(name)}\" "
                     f"data-run=\"{_e(info.run_id)}\" data-label=\"{_e(label)}\">"
                     f"<img src=\"{png_data_uri(fig)}\" alt=\"{_e(name)} — {_e(label)}\">"
                     f"<figcaption><b>{_e(name.replace('_', ' '))}</b> — {_e(label)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def _wafer_section(maps: Mapping[str, Figure]) -> str:
    """The wafer maps (one per wafer and figure, :mod:`.wafer_map`) as a section of figures."""
    parts = [f"<section class=\"wafer-maps\" id=\"wafer-maps\"><h2>wafer maps ({len(maps)})</h2>",
             "<p>One square per die at its prober position (column to the right, row upwards); hatched and "
             "crossed: bad dies (run failed, forming yield below 50 %, no cell formed, or a mean forming voltage far "
             "off the wafer's: more than 10 median absolute deviations); empty: not tested.</p>"]
    for name, fig in maps.items():
        title = fig.get_label() or name
        parts.append(f"<figure class=\"wafer-map\" id=\"map-{_e(name)}\" data-figure=\"{_e(name)}\">"
                     f"<img src=\"{png_data_uri(fig)}\" alt=\"{_e(title)}\">"
                     f"<figcaption><b>{_e(title)}</b></figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(reports: Sequence[RunReport], title: str = "rramlab report",
                wafer_maps: Mapping[str, Figure] | None = None) -> str:
    """The page: an overview of the runs, their summary figures side by side (one column per run), the wafer
    maps (when given), then per run its metadata, steps and every figure (labelled with run and die/array)."""
    labels = [figure_label(r.info) for r in reports]
    overview = _table(["run", "file", "recipe", "station", "die / array", "start", "stop", "exit status"],
                      [[lab, r.info.path, r.info.recipe, r.info.station, die_label(r.info), r.info.start_time,
                        r.info.stop_time, r.info.exit_status] for lab, r in zip(labels, reports, strict=True)])
    flat = [flatten(r.summary) for r in reports]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    summary = _table(["figure", *(Path(r.info.path).name for r in reports)],
                     [[key, *(format_value(f.get(key)) for f in flat)] for key in keys], numeric_from=1)
    n_figures = sum(len(r.figures) for r in reports) + len(wafer_maps or {})
    body = "\n".join([*([_wafer_section(wafer_maps)] if wafer_maps else []),
                      *(_run_section(k, r) for k, r in enumerate(reports))])
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
            f"<body data-figures=\"{n_figures}\" data-runs=\"{len(reports)}\">"
            f"<h1>{_e(title)}: {len(reports)} run{'s' if len(reports) != 1 else ''}, {n_figures} figures</h1>\n"
            f"<h2>runs</h2>{overview}\n<h2>summary</h2>"
            f"<p>Units as in the keys (<code>_uS</code>: µS; voltages in V, conductances in S, times in s, "
            f"fractions as fractions).</p>{summary}\n{body}\n</body></html>\n")


def write_report_html(reports: Sequence[RunReport], out: str | os.PathLike[str],
                      wafer_maps: Mapping[str, Figure] | None = None) -> list[str]:
    """Write the page of ``reports`` (and ``wafer_maps``) to ``out`` atomically; return the figure labels it
    holds, as "<figure name> — <run/die label>" (a wafer map: its name), in page order."""
    write_text_atomic(out, render_html(reports, wafer_maps=wafer_maps))
    return [*(wafer_maps or {}), *(f"{name} — {figure_label(r.info)}" for r in reports for name in r.figures)]
