"""Wafer maps: one square per die at its prober grid position (column to the right, row upwards, as the MPI
SENTIO map is set up), coloured by a per-die figure, with a colour bar and its unit; bad dies hatched and
crossed (X); positions without a tested die left empty.

:func:`plot_wafer_map` draws one map from per-die values; :func:`wafer_map_figures` draws the report's maps
(forming yield, V_form mean, programming noise σ slope, retention shift at 1 h and 10 y) from catalogue records
(:func:`~.catalog.run_record` / catalogue rows), one map per wafer and figure, for every wafer with two or more
dies that carry ``die_col``/``die_row``. Built without pyplot (no global state), like :mod:`.plots`.

A die is bad when its run failed (exit status failed, aborted or unreadable), its forming yield is below
``min_yield`` (default 0.5), it has a forming table with no formed cell, or its mean forming voltage lies more
than :data:`OUTLIER_MADS` median absolute deviations from the wafer's median (a shorted die "forms" at the
first step of the ramp; :func:`forming_outliers`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

MIN_YIELD = 0.5
OUTLIER_MADS = 10.0        # |V_form − wafer median| beyond this many MADs (floor 10 mV): a bad die
BAD_STATUSES = ("failed", "aborted", "unreadable")
DIE_SIZE = 0.92            # a square's side, in grid pitches (a thin gap between dies)
NO_VALUE_COLOR = "#d9d9d9"  # a tested die without this figure


@dataclasses.dataclass(frozen=True)
class DieValue:
    """One die on a map: prober grid position (column, row), the value (NaN: tested, figure unknown), bad flag."""

    col: int
    row: int
    value: float
    bad: bool = False
    note: str = ""


@dataclasses.dataclass(frozen=True)
class MapFigure:
    """A figure the report maps: catalogue key, title, unit shown, scale from the key's unit, colour map."""

    key: str
    title: str
    unit: str
    scale: float = 1.0
    cmap: str = "viridis"


#: the report's maps, in page order (the retention shift at 1 h and at 10 y: whichever the runs have)
MAP_FIGURES: tuple[MapFigure, ...] = (
    MapFigure("forming_yield", "forming yield", "%", 100.0, "RdYlGn"),
    MapFigure("v_form_mean", "V_form mean", "V"),
    MapFigure("pv_sigma_slope", "programming noise σ slope (tightest acceptance)", "1"),
    MapFigure("retention_shift_1h_uS", "retention mean shift at 1 h", "µS", 1.0, "coolwarm"),
    MapFigure("retention_shift_10y_uS", "retention mean shift at 10 y", "µS", 1.0, "coolwarm"),
)


def plot_wafer_map(dies: Sequence[DieValue], *, wafer: str, name: str, unit: str = "", cmap: str = "viridis",
                   vmin: float | None = None, vmax: float | None = None) -> Figure:
    """A wafer map of ``dies``: each die a square centred on (col, row) coloured by ``value`` (``cmap``; colour
    bar labelled ``name [unit]``; range ``vmin``…``vmax``, default the finite values'), grey when its value is
    NaN; bad dies hatched and crossed with an X. Each die's square has gid ``die:<col>,<row>``, each X gid
    ``bad:<col>,<row>`` (for tests and viewers). Title: wafer, figure name, dies tested and bad."""
    fig = Figure(figsize=(5.6, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    values = np.array([d.value for d in dies], dtype=float)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if vmin is None and finite.size else (vmin if vmin is not None else 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    if hi <= lo:                                    # one value (or all equal): a range around it
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    norm, colormap = Normalize(lo, hi), colormaps[cmap]
    half = DIE_SIZE / 2
    for d in dies:
        color = colormap(norm(d.value)) if math.isfinite(d.value) else NO_VALUE_COLOR
        ax.add_patch(Rectangle((d.col - half, d.row - half), DIE_SIZE, DIE_SIZE, facecolor=color,
                               edgecolor="black" if d.bad else "0.35", linewidth=1.2 if d.bad else 0.5,
                               hatch="///" if d.bad else None, gid=f"die:{d.col},{d.row}"))
        if d.bad:
            ax.plot([d.col - half, d.col + half, math.nan, d.col - half, d.col + half],
                    [d.row - half, d.row + half, math.nan, d.row + half, d.row - half], color="black",
                    linewidth=1.5, gid=f"bad:{d.col},{d.row}")
    cols = [d.col for d in dies] or [0]
    rows = [d.row for d in dies] or [0]
    ax.set_xlim(min(cols) - 1, max(cols) + 1)
    ax.set_ylim(min(rows) - 1, max(rows) + 1)
    ax.set_aspect("equal")
    ax.set_xticks(range(min(cols), max(cols) + 1))
    ax.set_yticks(range(min(rows), max(rows) + 1))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("die column")
    ax.set_ylabel("die row")
    n_bad = sum(d.bad for d in dies)
    plain = wafer.replace("$", r"\$")             # run-file text: never matplotlib mathtext
    ax.set_title(f"wafer {plain} — {name}\n{len(dies)} dies tested, {n_bad} bad (hatched, X)", fontsize=10)
    fig.set_label(f"wafer {wafer} — {name}")       # the plain title (captions, alt text)
    mappable = ScalarMappable(norm=norm, cmap=colormap)
    fig.colorbar(mappable, ax=ax, label=f"{name} [{unit}]" if unit else name)
    fig.tight_layout()
    return fig


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def die_is_bad(record: Mapping[str, Any], min_yield: float = MIN_YIELD) -> bool:
    """True when the run failed, its forming yield is below ``min_yield`` or no cell formed (see module doc)."""
    if str(record.get("exit_status") or "") in BAD_STATUSES:
        return True
    y = _finite(record.get("forming_yield"))
    if y is not None and y < min_yield:
        return True
    n_cells, n_formed = record.get("forming_n_cells"), record.get("forming_n_formed")
    return bool(n_cells) and n_formed is not None and int(n_formed) == 0


def forming_outliers(records: Sequence[Mapping[str, Any]], mads: float = OUTLIER_MADS) -> list[bool]:
    """Per record: its mean forming voltage lies more than ``mads`` median absolute deviations (at least 10 mV)
    from the median of the records' (False without a value)."""
    v = np.array([_finite(r.get("v_form_mean")) if _finite(r.get("v_form_mean")) is not None else math.nan
                  for r in records], dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return [False] * len(records)
    median = float(np.median(v[ok]))
    mad = max(float(np.median(np.abs(v[ok] - median))), 0.01)
    return [bool(np.isfinite(x) and abs(x - median) > mads * mad) for x in v]


def _die_position(record: Mapping[str, Any]) -> tuple[int, int] | None:
    col, row = record.get("die_col"), record.get("die_row")
    if isinstance(col, bool) or isinstance(row, bool) or not isinstance(col, int) or not isinstance(row, int):
        return None
    return col, row


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "wafer"


def wafer_dies(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Records with a die position, by wafer (a wafer with fewer than two such dies left out). A die measured
    more than once is the run that started last."""
    by_wafer: dict[str, dict[tuple[int, int], Mapping[str, Any]]] = {}
    for rec in records:
        pos = _die_position(rec)
        if pos is None:
            continue
        dies = by_wafer.setdefault(str(rec.get("wafer") or ""), {})
        old = dies.get(pos)
        if old is None or (_finite(rec.get("start_time_unix")) or 0.0) >= (_finite(old.get("start_time_unix")) or 0.0):
            dies[pos] = rec
    return {w: list(d.values()) for w, d in by_wafer.items() if len(d) >= 2}


def wafer_map_figures(records: Iterable[Mapping[str, Any]], min_yield: float = MIN_YIELD,
                      figures: Sequence[MapFigure] = MAP_FIGURES) -> dict[str, Figure]:
    """The report's wafer maps, named ``wafer_<wafer>_<key>``: per wafer with two or more dies at known
    positions, one map per figure that at least one of its dies has (bad dies marked on every map)."""
    out: dict[str, Figure] = {}
    for wafer, recs in sorted(wafer_dies(records).items()):
        bad = [die_is_bad(r, min_yield) or outlier for r, outlier in zip(recs, forming_outliers(recs), strict=True)]
        for spec in figures:
            values = [_finite(r.get(spec.key)) for r in recs]
            if all(v is None for v in values):
                continue
            dies = [DieValue(r["die_col"], r["die_row"], math.nan if v is None else v * spec.scale, b)
                    for r, v, b in zip(recs, values, bad, strict=True)]
            out[f"wafer_{_slug(wafer)}_{spec.key}"] = plot_wafer_map(
                dies, wafer=wafer or "(unnamed)", name=spec.title, unit=spec.unit, cmap=spec.cmap)
    return out


__all__ = ["BAD_STATUSES", "MAP_FIGURES", "MIN_YIELD", "DieValue", "MapFigure", "die_is_bad", "forming_outliers",
           "plot_wafer_map",
           "wafer_dies", "wafer_map_figures"]
