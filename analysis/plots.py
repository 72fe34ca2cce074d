"""Report figures (matplotlib, Agg). Every function returns a :class:`~matplotlib.figure.Figure` built
without pyplot — no global state, never shown — and presents conductances in µS, times in s.

Line counts (for callers and tests): I–V loops one line per (cell, cycle); open loop one line per
device; programming noise per acceptance a marker line, the measured fit and the published fit;
CDFs one axes per acceptance and one line per target; relaxation two axes (mean, σ) each with the
data, the fit and the published law; MVM one line per result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .endurance import window_by_cycle
from .forming import forming_stats
from .mvm import mvm_error
from .programming import PUBLISHED_PROGRAMMING_NOISE, ProgrammingNoise, acceptance_label, program_verify_by_acceptance
from .retention import AIHWKIT_RELAXATION, TEN_YEARS, RelaxationFit, fit_relaxation, relaxation_curve
from .summary import TablesLike, tables_of

US = 1e6


def _ecdf(ax: Any, values: np.ndarray, **kwargs: Any) -> None:
    """Empirical CDF as one step line starting at 0."""
    x = np.sort(values[np.isfinite(values)])
    if x.size:
        x = np.concatenate([x[:1], x])
    ax.plot(x, np.arange(x.size) / max(x.size - 1, 1), drawstyle="steps-post", **kwargs)


def _figure(ncols: int = 1, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    return fig, axes


def plot_forming(forming: pd.DataFrame) -> Figure:
    """Forming voltage histogram (left) and CDF (right) of the formed cells."""
    fig, (hist, cdf) = _figure(2)
    v = np.sort(forming.loc[forming["formed"].astype(bool), "v_form"].to_numpy(float))
    v = v[np.isfinite(v)]
    stats = forming_stats(forming)
    if v.size:
        hist.hist(v, bins=max(5, min(30, v.size // 3)), color="C0", edgecolor="white")
    _ecdf(cdf, v, color="C0")
    hist.set(xlabel="V_form (V)", ylabel="cells",
             title=f"yield {stats['yield']:.0%}, {stats['v_form_mean']:.3g} ± {stats['v_form_std']:.2g} V")
    cdf.set(xlabel="V_form (V)", ylabel="cumulative fraction", ylim=(0, 1.02))
    return fig


def plot_iv_loops(iv: pd.DataFrame, max_loops: int = 16) -> Figure:
    """|I| (log) vs V, one line per (row, col, cycle) in acquisition order, at most ``max_loops``
    (points at |V| < 1 mV are left out)."""
    fig, (ax,) = _figure()
    order = "seq" if "seq" in iv else "t"
    for k, ((row, col, cycle), loop) in enumerate(iv.sort_values(order).groupby(["row", "col", "cycle"])):
        if k >= max_loops:
            break
        v, i = loop["v"].to_numpy(float), np.abs(loop["i"].to_numpy(float))
        i[(np.abs(v) < 1e-3) | (i <= 0)] = np.nan          # zero-bias points carry no information on a log axis
        ax.plot(v, i, lw=1, label=f"({row},{col}) #{cycle}")
    ax.set(yscale="log", xlabel="V (V)", ylabel="|I| (A)", title="I–V loops")
    if ax.lines and len(ax.lines) <= 8:
        ax.legend(fontsize="small")
    return fig


def plot_open_loop(pulse_train: pd.DataFrame, max_devices: int = 8) -> Figure:
    """Conductance (µS) vs pulse number, one line per device, at most ``max_devices``."""
    fig, (ax,) = _figure(width=7.0)
    for k, ((row, col), trace) in enumerate(pulse_train.sort_values("n").groupby(["row", "col"])):
        if k >= max_devices:
            break
        ax.plot(trace["n"], trace["g"] * US, lw=0.7, label=f"({row},{col})")
    ax.set(xlabel="pulse number", ylabel="G (µS)", title="open-loop identical pulses")
    if ax.lines:
        ax.legend(fontsize="small", ncols=2)
    return fig


def plot_endurance(endurance: pd.DataFrame) -> Figure:
    """LRS and HRS conductance (µS) vs cycle (log x): median and the 10–90 % band over cells."""
    fig, (ax,) = _figure()
    w = window_by_cycle(endurance)
    for k, (name, label) in enumerate((("g_lrs", "LRS"), ("g_hrs", "HRS"))):
        ax.fill_between(w["cycle"], w[f"{name}_p10"] * US, w[f"{name}_p90"] * US, color=f"C{k}", alpha=0.25, lw=0)
        ax.plot(w["cycle"], w[name] * US, "o-", color=f"C{k}", ms=4, label=f"{label} median")
    ax.set(xscale="log", xlabel="cycle", ylabel="G (µS)", title="endurance")
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
        ax.plot(g * US, fit.sigma(g) * US, "-", color=color, label=f"fit {fit.slope:.3g}·G + {s['intercept_uS']:.2g}")
        ref = PUBLISHED_PROGRAMMING_NOISE.get(round(float(s["acceptance"]), 10)) if published else None
        if ref is not None:
            ax.plot(g * US, ref.sigma(g) * US, "--", color=color, lw=1, label=f"published {label}")
    ax.set(yscale="log", xlabel="target G (µS)", ylabel="σ programmed (µS)", title="programming noise")
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def plot_programmed_cdfs(results: pd.DataFrame) -> Figure:
    """CDFs of the final conductance (µS) of converged cells, one axes per acceptance, one line per target."""
    groups = list(results.groupby("acceptance", sort=True)) or [(float("nan"), results)]
    fig, axes = _figure(len(groups), width=4.5)
    for ax, (acc, group) in zip(axes, groups, strict=True):
        conv = group[group["converged"].astype(bool)] if len(group) else group
        for _, cells in group.groupby("target", sort=True):
            _ecdf(ax, conv.loc[conv.index.intersection(cells.index), "g_final"].to_numpy(float) * US, lw=1)
        ax.set(xlabel="G (µS)", ylabel="cumulative fraction", ylim=(0, 1.02),
               title=f"programmed states, AR {acceptance_label(acc)}" if np.isfinite(acc) else "programmed states")
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
        ax.plot(t[t > 0], e[t > 0], "o-", label=label)
    ax.set(xscale="log", xlabel="time after programming (s)", ylabel="RMSE (weight units)", title="64×64 MVM error")
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def save_report_figures(source: TablesLike, directory: str | os.PathLike) -> list[Path]:
    """Write a PNG for each figure whose tables exist in ``source`` (run file path, RunData or a
    name → DataFrame mapping) into ``directory`` (created if needed); return the paths written."""
    tables = {name: df for name, df in tables_of(source).items() if len(df)}
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Figure] = {}
    if "forming" in tables:
        figures["forming"] = plot_forming(tables["forming"])
    if "iv_sweep" in tables:
        figures["iv_loops"] = plot_iv_loops(tables["iv_sweep"])
    if "pulse_train" in tables:
        figures["open_loop"] = plot_open_loop(tables["pulse_train"])
    if "endurance" in tables:
        figures["endurance"] = plot_endurance(tables["endurance"])
    if "program_verify_result" in tables:
        stats = program_verify_by_acceptance(tables["program_verify_result"])
        figures["programming_noise"] = plot_programming_noise(stats)
        figures["programmed_cdfs"] = plot_programmed_cdfs(tables["program_verify_result"])
    if "retention" in tables:
        figures["relaxation"] = plot_relaxation(tables["retention"])
    if "program_verify_result" in tables and "retention" in tables:
        times = (1.0, 3600.0, 86400.0, 604800.0, TEN_YEARS)
        mvm = {f"published AR {acceptance_label(a)}": mvm_error(a, times=times) for a in (0.002, 0.02)}
        fit = fit_relaxation(relaxation_curve(tables["retention"]))
        for label, s in stats.items():
            if np.isfinite([s["slope"], s["intercept_uS"], fit.a, fit.b, fit.c]).all():
                mvm[f"measured AR {label}"] = mvm_error(s, fit, times=times)
        figures["mvm_rmse"] = plot_mvm_rmse(mvm)
    paths = []
    for name, fig in figures.items():
        path = out_dir / f"{name}.png"
        tmp = out_dir / f".{name}.png.partial"
        try:                                     # whole or not at all: a full disk leaves no truncated PNG
            fig.savefig(tmp, dpi=100, format="png")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        paths.append(path)
    return paths
