"""Report figures (matplotlib, Agg). Every function returns a :class:`~matplotlib.figure.Figure` built
without pyplot — no global state, never shown — and presents conductances in µS, times in s.

Line counts (for callers and tests): I–V loops one line per cell (its first loop); open loop one line
per device; programming noise per acceptance a marker line, the measured fit and the published fit;
CDFs one axes per acceptance and one line per target; relaxation two axes (mean, σ) each with the
data, the fit and the published law; MVM one line per result; endurance two lines (LRS, HRS medians;
failures are a scatter, not a line); program-verify traces one axes per acceptance, one line per
trace plus one dashed target line each; retention per level one line per level; retention CDFs one
line per read time; read disturb one line per cell.

:func:`report_figures` builds every figure whose tables exist; :func:`save_report_figures` writes them
as PNG files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .atomic import atomic_file
from .endurance import window_by_cycle
from .forming import forming_stats
from .mvm import annotate_retention, mvm_error, mvm_error_measured
from .plugins import plugin_figures
from .programming import (
    PUBLISHED_PROGRAMMING_NOISE,
    ProgrammingNoise,
    acceptance_label,
    program_verify_by_acceptance,
    program_verify_stats,
)
from .retention import (
    AIHWKIT_RELAXATION,
    TEN_YEARS,
    RelaxationFit,
    fit_relaxation,
    reads_at,
    relaxation_curve,
    tau_label,
)
from .summary import TablesLike, all_tables, tables_of
from .switching import switching_voltages

US = 1e6
MINUS = "\u2212"

#: tables :func:`report_figures` reads (per-point tables such as ``forming_sweep`` are never loaded)
FIGURE_TABLES = ("forming", "iv_sweep", "pulse_train", "endurance", "endurance_result", "program_verify",
                 "program_verify_result", "retention", "read_disturb", "ispp", "multilevel")

#: read times (s) of :func:`plot_retention_cdfs`
RETENTION_CDF_TIMES = (60.0, 3600.0, 86400.0, 604800.0, 31557600.0, TEN_YEARS)


def signed(value: float, fmt: str = ".3g") -> str:
    """`` + 0.5`` / `` − 0.5`` (a true minus sign) for appending a term to an expression."""
    return f" {MINUS if value < 0 else '+'} {format(abs(value), fmt)}"


def _ecdf(ax: Any, values: np.ndarray, markers: bool = False, **kwargs: Any) -> None:
    """Empirical CDF as one step line starting at 0 (``markers``: a dot at each value, so a few values
    stay readable)."""
    x = np.sort(values[np.isfinite(values)])
    if x.size:
        x = np.concatenate([x[:1], x])
    if markers:
        kwargs = {"marker": "o", "ms": 3, "markevery": slice(1, None), **kwargs}
    ax.plot(x, np.arange(x.size) / max(x.size - 1, 1), drawstyle="steps-post", **kwargs)


def _figure(ncols: int = 1, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    return fig, axes


def _spread(items: Sequence[Any], n: int) -> list[Any]:
    """At most ``n`` items evenly spread over ``items`` (first and last included)."""
    if len(items) <= n:
        return list(items)
    return [items[int(round(k))] for k in np.linspace(0, len(items) - 1, n)]


def _level_colors(n: int) -> list[Any]:
    """``n`` colours of the viridis map, low to high level."""
    from matplotlib import colormaps

    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.9, max(n, 1))][:n]


def _range_text(counts: np.ndarray) -> str:
    """"4" or "3–5" for a set of counts."""
    if not counts.size:
        return "0"
    lo, hi = int(counts.min()), int(counts.max())
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def plot_forming(forming: pd.DataFrame) -> Figure:
    """Forming voltage histogram (left) and CDF (right) of the formed cells."""
    fig, (hist, cdf) = _figure(2)
    v = np.sort(forming.loc[forming["formed"].astype(bool), "v_form"].to_numpy(float))
    v = v[np.isfinite(v)]
    stats = forming_stats(forming)
    if v.size:
        hist.hist(v, bins=max(5, min(30, v.size // 3)), color="C0", edgecolor="white")
    _ecdf(cdf, v, markers=v.size <= 20, color="C0")
    hist.set(xlabel="V_form (V)", ylabel="cells",
             title=f"yield {stats['yield']:.0%}, {stats['v_form_mean']:.3g} ± {stats['v_form_std']:.2g} V")
    cdf.set(xlabel="V_form (V)", ylabel="cumulative fraction", ylim=(0, 1.02), title=f"n = {v.size} formed cells")
    return fig


def plot_iv_loops(iv: pd.DataFrame, max_loops: int = 16, max_cells: int = 8) -> Figure:
    """|I| (log) vs V: the first loop (lowest cycle) of each of up to ``max_cells`` cells (and at most
    ``max_loops`` loops), one colour per cell, legend (row, col); the title says how many of the
    table's loops and cells are shown (points at |V| < 1 mV are left out)."""
    fig, (ax,) = _figure()
    order = "seq" if "seq" in iv else "t"
    df = iv.sort_values(order, kind="stable")
    n_loops = len(df[["row", "col", "cycle"]].drop_duplicates())
    cells = df[["row", "col"]].drop_duplicates()
    shown = 0
    for k, (row, col) in enumerate(cells.itertuples(index=False)):
        if k >= min(max_cells, max_loops):
            break
        cell = df[(df["row"] == row) & (df["col"] == col)]
        loop = cell[cell["cycle"] == cell["cycle"].min()]
        v, i = loop["v"].to_numpy(float), np.abs(loop["i"].to_numpy(float))
        i[(np.abs(v) < 1e-3) | (i <= 0)] = np.nan          # zero-bias points carry no information on a log axis
        ax.plot(v, i, lw=1, color=f"C{k % 10}", label=f"({row}, {col})")
        shown += 1
    ax.set(yscale="log", xlabel="V (V)", ylabel="|I| (A)",
           title=f"I–V: first loop of {shown} of {len(cells)} cells ({shown} of {n_loops} loops)")
    if ax.lines:
        ax.legend(title="cell (row, col)", fontsize="small", ncols=2 if shown > 4 else 1)
    return fig


def plot_open_loop(pulse_train: pd.DataFrame, max_devices: int = 8) -> Figure:
    """Conductance (µS) vs pulse number, one line per device, at most ``max_devices``."""
    fig, (ax,) = _figure(width=7.0)
    groups = list(pulse_train.sort_values("n").groupby(["row", "col"]))
    for (row, col), trace in groups[:max_devices]:
        ax.plot(trace["n"], trace["g"] * US, lw=0.7, label=f"({row}, {col})")
    ax.set(xlabel="pulse number", ylabel="G (µS)",
           title=f"open-loop identical pulses ({min(len(groups), max_devices)} of {len(groups)} devices)")
    if ax.lines:
        ax.legend(title="cell (row, col)", fontsize="small", ncols=2)
    return fig


def plot_endurance(endurance: pd.DataFrame, result: pd.DataFrame | None = None) -> Figure:
    """LRS and HRS conductance (µS) vs cycle (log x): median and the 10–90 % band over cells; with
    ``result`` (``endurance_result``) each failed cell's last LRS and HRS reads are marked ✕ at its
    ``failed_at`` cycle and the title gives the failed count."""
    fig, (ax,) = _figure()
    w = window_by_cycle(endurance)
    for k, (name, label) in enumerate((("g_lrs", "LRS"), ("g_hrs", "HRS"))):
        ax.fill_between(w["cycle"], w[f"{name}_p10"] * US, w[f"{name}_p90"] * US, color=f"C{k}", alpha=0.25, lw=0)
        ax.plot(w["cycle"], w[name] * US, "o-", color=f"C{k}", ms=4, label=f"{label} median")
    n_cells = len(endurance[["row", "col"]].drop_duplicates())
    title = f"endurance, {n_cells} cells"
    if result is not None and len(result):
        failed = result[result["failed"].astype(bool)]
        title += f", {len(failed)} failed"
        points = []
        for r in failed.itertuples(index=False):
            cell = endurance[(endurance["row"] == r.row) & (endurance["col"] == r.col)].sort_values("cycle")
            upto = cell[cell["cycle"] <= r.failed_at]
            last = (upto if len(upto) else cell).tail(1)
            for name in ("g_lrs", "g_hrs"):
                points += [(float(r.failed_at), float(g) * US) for g in last[name]]
        if points:
            x, y = zip(*points, strict=True)
            ax.scatter(x, y, marker="x", s=40, color="red", zorder=3, label=f"failed cells ({len(failed)})")
    ax.set(xscale="log", xlabel="cycle", ylabel="G (µS)", title=title)
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def plot_programming_noise(results: pd.DataFrame | Mapping[str, dict[str, Any]], published: bool = True) -> Figure:
    """σ of the programmed conductance vs target (µS, log y) per acceptance: data, measured fit and
    (``published``) the aihwkit fit. ``results``: ``program_verify_result`` rows or the output of
    :func:`~rramlab.analysis.programming.program_verify_by_acceptance`."""
    stats = program_verify_by_acceptance(results) if isinstance(results, pd.DataFrame) else results
    fig, (ax,) = _figure()
    for k, (label, s) in enumerate(stats.items()):
        per = s["per_target"]
        color = f"C{k}"
        ax.plot(per["target"] * US, per["sigma"] * US, "o", color=color, ms=4, label=f"AR {label}")
        targets = per["target"].to_numpy(float)
        targets = targets[np.isfinite(targets)]
        g = np.linspace(targets.min(), targets.max(), 50) if targets.size else np.linspace(9e-6, 88e-6, 50)
        fit = ProgrammingNoise(s["slope"], s["intercept_uS"] / US)
        ax.plot(g * US, fit.sigma(g) * US, "-", color=color,
                label=f"fit σ = {fit.slope:.3g}·G{signed(s['intercept_uS'], '.2g')} µS")
        ref = PUBLISHED_PROGRAMMING_NOISE.get(round(float(s["acceptance"]), 10)) if published else None
        if ref is not None:
            ax.plot(g * US, ref.sigma(g) * US, "--", color=color, lw=1, label=f"published {label}")
    ax.set(yscale="log", xlabel="target G (µS)", ylabel="σ programmed (µS)", title="programming noise")
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def plot_programmed_cdfs(results: pd.DataFrame) -> Figure:
    """CDFs of the final conductance (µS) of converged cells, one axes per acceptance, one step line with
    a marker per cell for each target (colour: target level); the title gives n cells per target."""
    groups = list(results.groupby("acceptance", sort=True)) or [(float("nan"), results)]
    fig, axes = _figure(len(groups), width=4.5)
    for ax, (acc, group) in zip(axes, groups, strict=True):
        conv = group[group["converged"].astype(bool)] if len(group) else group
        targets = list(group.groupby("target", sort=True))
        counts = []
        for color, (_, cells) in zip(_level_colors(len(targets)), targets, strict=True):
            g = conv.loc[conv.index.intersection(cells.index), "g_final"].to_numpy(float) * US
            counts.append(int(np.isfinite(g).sum()))
            _ecdf(ax, g, markers=True, lw=1, color=color)
        name = f"AR {acceptance_label(acc)}" if np.isfinite(acc) else "programmed states"
        ax.set(xlabel="G (µS)", ylabel="cumulative fraction", ylim=(0, 1.02),
               title=f"{name}: {len(targets)} targets, n = {_range_text(np.array(counts))} per target")
    return fig


def plot_program_verify_traces(program_verify: pd.DataFrame, max_traces: int = 8, name: str | None = None) -> Figure:
    """G (µS) vs pulse number (``iteration``) of program-verify, one axes per acceptance: up to
    ``max_traces`` (cell, target) traces spread over the targets, each with its target as a dashed line
    of the same colour; the title says how many of how many traces are shown (``name``: its first words, e.g.
    "ISPP"; default the acceptance)."""
    groups = list(program_verify.groupby("acceptance", sort=True)) or [(float("nan"), program_verify)]
    fig, axes = _figure(len(groups), width=4.8)
    order = "seq" if "seq" in program_verify else "t"
    keys = [k for k in ("step", "row", "col", "target") if k in program_verify]
    for ax, (acc, group) in zip(axes, groups, strict=True):
        traces = sorted(group.sort_values(order, kind="stable").groupby(keys, sort=False),
                        key=lambda item: (float(item[1]["target"].iloc[0]), float(item[1][order].iloc[0])))
        shown = _spread(traces, max_traces)
        for color, (_, trace) in zip(_level_colors(len(shown)), shown, strict=True):
            row, col, target = int(trace["row"].iloc[0]), int(trace["col"].iloc[0]), float(trace["target"].iloc[0])
            ax.plot(trace["iteration"], trace["g"] * US, ".-", ms=3, lw=0.8, color=color, label=f"({row}, {col})")
            ax.axhline(target * US, ls="--", lw=0.8, color=color)
        head = name or (f"AR {acceptance_label(acc)}" if np.isfinite(acc) else "program-verify")
        ax.set(xlabel="pulse number", ylabel="G (µS)", title=f"{head}: {len(shown)} of {len(traces)} traces")
        if ax.lines:
            ax.legend(title="cell (dashed: target)", fontsize="x-small", ncols=2)
    return fig


def iterations_per_cell(source: pd.DataFrame) -> pd.DataFrame:
    """Per programmed (cell, target): ``acceptance``, ``iterations`` and ``converged``, from
    ``program_verify_result`` rows, or from ``program_verify`` rows (largest ``iteration``; converged
    unknown → NaN)."""
    if "iterations" in source:
        cols = [c for c in ("acceptance", "iterations", "converged") if c in source]
        return source[cols].reset_index(drop=True)
    keys = [k for k in ("step", "row", "col", "target", "acceptance") if k in source]
    out = source.groupby(keys, sort=False)["iteration"].max().rename("iterations").reset_index()
    return out.assign(converged=np.nan)


def plot_iterations(source: pd.DataFrame) -> Figure:
    """Histogram of the program-verify pulses per cell to converge (log-spaced bins), one step outline
    per acceptance; ``source``: ``program_verify_result`` or ``program_verify`` rows. Cells that did
    not converge are counted in the legend, not in the histogram."""
    per = iterations_per_cell(source)
    fig, (ax,) = _figure()
    its = per["iterations"].to_numpy(float)
    top = float(np.nanmax(its)) if np.isfinite(its).any() else 10.0
    bins = np.unique(np.round(np.logspace(0, np.log10(max(top, 2.0)) + 0.01, 25)))
    groups = list(per.groupby("acceptance", sort=True)) if "acceptance" in per else [(float("nan"), per)]
    for k, (acc, group) in enumerate(groups):
        conv = group["converged"]
        ok = conv.isna() | conv.astype(bool, errors="ignore").eq(True)
        name = f"AR {acceptance_label(acc)}" if np.isfinite(acc) else "all"
        failed = int((~ok).sum())
        ax.hist(group.loc[ok, "iterations"].to_numpy(float), bins=bins, histtype="step", lw=1.5, color=f"C{k}",
                label=f"{name}: {int(ok.sum())} converged" + (f", {failed} not" if failed else ""))
    ax.set(xscale="log", xlabel="pulses to converge", ylabel="cells", title="program-verify iterations per cell")
    if len(groups):
        ax.legend(fontsize="small")
    return fig


def _log_binned(df: pd.DataFrame, x: str, y: str, bins_per_decade: int = 4) -> pd.DataFrame:
    """Median, 10th and 90th percentile of ``y`` in log bins of ``x`` (x > 0); ``x`` is the bin's
    geometric mean."""
    d = df[(df[x] > 0) & np.isfinite(df[y])]
    logx = np.log10(d[x].to_numpy(float))
    frame = pd.DataFrame({"k": np.rint(logx * bins_per_decade).astype(int), "logx": logx, "y": d[y].to_numpy(float)})
    g = frame.groupby("k", sort=True)
    return pd.DataFrame({x: 10.0 ** g["logx"].mean(), "median": g["y"].median(), "p10": g["y"].quantile(0.1),
                         "p90": g["y"].quantile(0.9)}).reset_index(drop=True)


def plot_retention_levels(retention: pd.DataFrame, max_levels: int = 8) -> Figure:
    """G (µS) vs time since programming τ (s, log) per target level: median over the level's cells and
    the 10–90 % band in log-τ bins (4 per decade), at most ``max_levels`` levels spread over the range;
    the title says how many levels are shown."""
    fig, (ax,) = _figure(width=6.0)
    levels = sorted(retention["target"].dropna().unique()) if "target" in retention else []
    shown = _spread(levels, max_levels)
    for color, target in zip(_level_colors(len(shown)), shown, strict=True):
        cells = retention[retention["target"] == target]
        b = _log_binned(cells, "tau", "g")
        n = len(cells[["row", "col"]].drop_duplicates())
        ax.fill_between(b["tau"], b["p10"] * US, b["p90"] * US, color=color, alpha=0.2, lw=0)
        ax.plot(b["tau"], b["median"] * US, "-", color=color, lw=1.2, label=f"{target * US:.3g} µS (n = {n})")
    ax.set(xscale="log", xlabel="τ since programming (s)", ylabel="G (µS)",
           title=f"retention per level: {len(shown)} of {len(levels)} levels")
    if ax.lines:
        ax.legend(title="target", fontsize="x-small", ncols=2 if len(shown) > 4 else 1)
    return fig


def plot_retention_cdfs(retention: pd.DataFrame, taus: Sequence[float] = RETENTION_CDF_TIMES) -> Figure:
    """CDFs of the conductance (µS) of all programmed cells read at several times since programming (the
    read nearest each τ in log, within a factor 1.5): one step line per τ with data, so the levels
    blurring over time are seen side by side."""
    fig, (ax,) = _figure(width=6.0)
    k = 0
    for tau in taus:
        reads = reads_at(retention, tau)
        g = reads["g"].to_numpy(float) * US
        if not np.isfinite(g).any():
            continue
        _ecdf(ax, g, markers=g.size <= 40, lw=1, color=f"C{k}", label=f"τ = {tau_label(tau)} (n = {g.size})")
        k += 1
    ax.set(xlabel="G (µS)", ylabel="cumulative fraction", ylim=(0, 1.02), title="programmed states over time")
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def plot_switching_voltages(iv: pd.DataFrame) -> Figure:
    """Distributions of V_set (left) and V_reset (right) over the I–V cycles
    (:func:`~rramlab.analysis.switching.switching_voltages`): histogram with a tick per cycle; titles
    give n, mean and σ."""
    sw = switching_voltages(iv)
    fig, axes = _figure(2)
    for ax, name, label, color in ((axes[0], "v_set", "V_set", "C0"), (axes[1], "v_reset", "V_reset", "C1")):
        v = sw[name].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=max(3, min(20, v.size // 2)), color=color, alpha=0.6, edgecolor="white")
            ax.plot(v, np.zeros_like(v), "|", ms=12, color=color)
        spread = f", σ = {v.std(ddof=1) * 1e3:.3g} mV" if v.size > 1 else ""
        mean = f", mean {v.mean():.3g} V" if v.size else ""
        ax.set(xlabel=f"{label} (V)", ylabel="cycles", title=f"{label}: n = {v.size} of {len(sw)} cycles{mean}{spread}")
        ax.locator_params(axis="x", nbins=5)
    return fig


def plot_read_disturb(read_disturb: pd.DataFrame, max_cells: int = 8) -> Figure:
    """G (µS) vs number of reads (log x) for up to ``max_cells`` cells (table ``read_disturb``: ``row``,
    ``col``, ``n_reads``, ``g`` (S), ``v_read`` (V), ``nplc``); points with n_reads ≤ 0 are left off
    the log axis. The title gives the read voltage(s) and NPLC."""
    fig, (ax,) = _figure(width=6.0)
    df = read_disturb.sort_values("n_reads", kind="stable")
    cells = list(df.groupby(["row", "col"], sort=True))
    for k, ((row, col), trace) in enumerate(cells[:max_cells]):
        t = trace[trace["n_reads"] > 0]
        ax.plot(t["n_reads"], t["g"] * US, "o-", ms=3, lw=1, color=f"C{k % 10}", label=f"({row}, {col})")

    def values(col: str, unit: str) -> str:
        v = sorted(df[col].dropna().unique()) if col in df else []
        return ", ".join(f"{x:.3g}{unit}" for x in v[:3]) + (" …" if len(v) > 3 else "")

    ax.set(xscale="log", xlabel="reads", ylabel="G (µS)",
           title=f"read disturb: {min(len(cells), max_cells)} of {len(cells)} cells, "
                 f"V_read {values('v_read', ' V')}, NPLC {values('nplc', '')}")
    if ax.lines:
        ax.legend(title="cell (row, col)", fontsize="small", ncols=2 if len(ax.lines) > 4 else 1)
    return fig


def plot_relaxation(retention: pd.DataFrame, fit: RelaxationFit | None = None, published: bool = True) -> Figure:
    """Mean shift (left) and σ (right) of g − g0 (µS) vs τ (log): binned data, fit (default: fitted
    to the data) and the published aihwkit law."""
    curve = relaxation_curve(retention)
    fit = fit if fit is not None else fit_relaxation(curve)
    fig, (mean_ax, sigma_ax) = _figure(2)
    tau = curve["tau"].to_numpy(float)
    grid = np.logspace(0, np.log10(max(float(tau.max(initial=1.0)), TEN_YEARS)), 100)
    mean_ax.plot(tau, curve["mean_shift"] * US, "o", ms=4, label="data")
    sigma_ax.plot(tau, curve["sigma"] * US, "o", ms=4, label="data")
    mean_ax.plot(grid, fit.mean_shift(grid) * US, "-", label=f"fit a = {fit.a * US:.3g} µS")
    sigma_ax.plot(grid, fit.sigma(grid) * US, "-", label=f"fit b = {fit.b * US:.3g}, c = {fit.c * US:.3g} µS")
    if published:
        mean_ax.plot(grid, AIHWKIT_RELAXATION.mean_shift(grid) * US, "--", lw=1, label="aihwkit")
        sigma_ax.plot(grid, AIHWKIT_RELAXATION.sigma(grid) * US, "--", lw=1, label="aihwkit")
    mean_ax.set(xscale="log", xlabel="τ (s)", ylabel="mean shift (µS)", title="relaxation: mean")
    sigma_ax.set(xscale="log", xlabel="τ (s)", ylabel="σ (µS)", title="relaxation: spread")
    for ax in (mean_ax, sigma_ax):
        ax.legend(fontsize="small")
    return fig


def plot_mvm_rmse(results: Mapping[str, Mapping[str, Any]]) -> Figure:
    """MVM RMSE vs time (log x), one line per entry of ``results`` (label → :func:`mvm_error` output;
    t = 0 points are omitted from the log axis)."""
    fig, (ax,) = _figure()
    for label, r in results.items():
        t, e = np.asarray(r["times"], float), np.asarray(r["rmse"], float)
        source = np.asarray(r.get("source", ["measured"] * len(t)))
        ok = (t > 0) & np.isfinite(e)
        line, = ax.plot(t[ok], e[ok], "o-", label=label, markevery=list(np.flatnonzero(source[ok] != "extrapolated")))
        extrapolated = ok & (source == "extrapolated")
        if extrapolated.any():                   # open markers: beyond the last measured time
            ax.plot(t[extrapolated], e[extrapolated], "o", color=line.get_color(), mfc="none",
                    label=f"{label}: extrapolated")
    ax.set(xscale="log", xlabel="time after programming (s)", ylabel="RMSE (weight units)", title="64×64 MVM error")
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def plot_multilevel(multilevel: pd.DataFrame, retention: pd.DataFrame | None = None) -> Figure:
    """Conductance CDF of each level (converged programmings): right after programming, and at the settle read
    (the first retention read of the same programming) when there is one; dashed lines at the level targets."""
    good = multilevel[multilevel["converged"].to_numpy(bool)]
    panels = [("after programming", good.assign(value=good["g_prog"]))]
    if retention is not None and len(retention):
        reads = retention.merge(good[["row", "col", "t_prog", "level"]], on=["row", "col", "t_prog"])
        reads = reads.sort_values("tau").drop_duplicates(["row", "col", "t_prog"])
        if len(reads):
            panels.append((f"settle read (τ ≈ {reads['tau'].median():.3g} s)", reads.assign(value=reads["g"])))
    fig, axes = _figure(len(panels), width=4.8)
    levels = sorted(good["level"].unique())
    for ax, (title, df) in zip(axes, panels, strict=True):
        for color, level in zip(_level_colors(len(levels)), levels, strict=True):
            values = df.loc[df["level"] == level, "value"].to_numpy(float) * US
            if values.size:
                _ecdf(ax, values, markers=True, color=color)
                ax.axvline(float(df.loc[df["level"] == level, "target"].iloc[0]) * US, ls="--", lw=0.6, color=color)
        ax.set(xlabel="G (µS)", ylabel="cumulative fraction", title=f"{len(levels)} levels, {title}")
    return fig


def program_verify_by_step(results: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """:func:`program_verify_stats` per recipe step ("<step> (<acceptance>)"), else per acceptance."""
    if "step" in results and results["step"].astype(str).str.len().gt(0).all():
        return {f"{step} ({acceptance_label(group['acceptance'].iloc[0])})": program_verify_stats(group)
                for step, group in results.groupby("step", sort=False)}
    return program_verify_by_acceptance(results)


def _error_figure(title: str, text: str) -> Figure:
    fig, (ax,) = _figure()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.0, 0.5, text[:300], wrap=True, fontsize="small", va="center")
    return fig


def report_figures(source: TablesLike, label: str | None = None) -> dict[str, Figure]:
    """Every report figure whose tables exist (non-empty) in ``source`` (run file path, RunData or a
    name → DataFrame mapping), keyed by figure name; ``label`` (e.g. the run and die) is set as each
    figure's super-title."""
    every = all_tables(source)
    tables = {name: df for name, df in tables_of(every, FIGURE_TABLES).items() if len(df)}
    figures: dict[str, Figure] = {}
    if "forming" in tables:
        figures["forming"] = plot_forming(tables["forming"])
    if "iv_sweep" in tables:
        figures["iv_loops"] = plot_iv_loops(tables["iv_sweep"])
        figures["switching_voltages"] = plot_switching_voltages(tables["iv_sweep"])
    if "pulse_train" in tables:
        figures["open_loop"] = plot_open_loop(tables["pulse_train"])
    if "endurance" in tables:
        figures["endurance"] = plot_endurance(tables["endurance"], tables.get("endurance_result"))
    if "program_verify" in tables:
        figures["program_verify_traces"] = plot_program_verify_traces(tables["program_verify"])
    if "program_verify_result" in tables or "program_verify" in tables:
        figures["iterations"] = plot_iterations(tables.get("program_verify_result", tables.get("program_verify")))
    if "program_verify_result" in tables:
        stats = program_verify_by_step(tables["program_verify_result"])
        figures["programming_noise"] = plot_programming_noise(stats)
        figures["programmed_cdfs"] = plot_programmed_cdfs(tables["program_verify_result"])
    if "retention" in tables:
        figures["relaxation"] = plot_relaxation(tables["retention"])
        if "target" in tables["retention"]:
            figures["retention_levels"] = plot_retention_levels(tables["retention"])
        figures["retention_cdfs"] = plot_retention_cdfs(tables["retention"])
    if "retention" in tables:
        times = (1.0, 3600.0, 86400.0, 604800.0, TEN_YEARS)
        ret = annotate_retention(tables["retention"], tables.get("program_verify_result"))
        fit = fit_relaxation(relaxation_curve(ret))
        mvm = {f"published AR {acceptance_label(a)}": mvm_error(a, times=times) for a in (0.002, 0.02)}
        pv = tables.get("program_verify_result")
        for acc, group in ret[np.isfinite(ret["acceptance"].to_numpy(float))].groupby("acceptance"):
            noise = None
            if pv is not None and (pv["acceptance"] == acc).any():
                s = program_verify_stats(pv[pv["acceptance"] == acc])
                noise = ProgrammingNoise(s["slope"], s["intercept_uS"] / 1e6)
            mvm[f"measured AR {acceptance_label(acc)}"] = mvm_error_measured(group, noise, fit, times=times)
        figures["mvm_rmse"] = plot_mvm_rmse(mvm)
    if "read_disturb" in tables:
        figures["read_disturb"] = plot_read_disturb(tables["read_disturb"])
    if "ispp" in tables:
        figures["ispp_traces"] = plot_program_verify_traces(tables["ispp"].rename(columns={"pulse": "iteration"})
                                                            .assign(acceptance=np.nan), name="ISPP")
    if "multilevel" in tables:
        figures["multilevel"] = plot_multilevel(tables["multilevel"], tables.get("retention"))
    extra, errors = plugin_figures(every)
    figures.update(extra)
    for name, error in errors.items():
        figures[f"{name}_error"] = _error_figure(f"{name}: figures not drawn", error)
    if label:
        for fig in figures.values():
            fig.suptitle(label, fontsize="small")
    return figures


def save_report_figures(source: TablesLike, directory: str | os.PathLike, label: str | None = None) -> list[Path]:
    """Write a PNG for each figure of :func:`report_figures` into ``directory`` (created if needed);
    return the paths written."""
    return save_figures(report_figures(source, label), directory)


def save_figures(figures: Mapping[str, Figure], directory: str | os.PathLike) -> list[Path]:
    """Write each figure as ``<name>.png`` (100 dpi) into ``directory`` (created if needed), each whole or
    not at all; return the paths written."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = out_dir / f"{name}.png"
        with atomic_file(path, "wb") as f:       # whole or not at all: a full disk leaves no truncated PNG
            fig.savefig(f, dpi=100, format="png")
        paths.append(path)
    return paths
