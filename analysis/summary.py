"""The JSON-able run summary (``rramlab demo --json``): one section per table that exists.

``summarize(tables)`` returns nested dicts of plain Python values (float, int, bool, str, None; NaN and
±inf become None). Voltages in V, conductances in µS where the key says ``_uS``, fractions as fractions.

Sections: ``forming`` (table ``forming``), ``switching`` (``iv_sweep``), ``open_loop``
(``pulse_train``), ``program_verify`` keyed by recipe step (``program_verify_result``; one section per step,
two steps at the same acceptance stay apart), ``retention`` (``retention``), ``endurance`` (``endurance``,
``endurance_result``), ``mvm`` keyed by acceptance ("0.2%", …: 64×64 MVM RMSE from the retention reads at
each time, extrapolated only beyond the last measured time and marked so; needs retention reads of programmed
cells), and one section per installed package's summary (:mod:`.plugins`).

States are counted from converged programmings only; the cells that did not converge are counted and listed
apart. The state criterion: neighbouring levels overlap by less than 10 % (:func:`number_of_states`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .dataset_reader import RunData, open_run
from .endurance import endurance_stats
from .forming import forming_stats
from .multilevel import multilevel_stats
from .mvm import annotate_retention, mvm_error_measured
from .open_loop import open_loop_metrics, open_loop_stats
from .plugins import LazyTables, plugin_summaries
from .programming import (
    ProgrammingNoise,
    acceptance_label,
    ispp_stats,
    levels_in_window,
    number_of_states,
    pooled_relative_sigma,
    program_verify_stats,
)
from .read_disturb import read_disturb_drift
from .retention import TEN_YEARS, RelaxationFit, fit_relaxation, reads_at, relaxation_curve, retention_stats
from .switching import switching_stats, switching_voltages

US = 1e6
STATE_OVERLAP = 0.1       # neighbouring states overlap by less than this (the paper's 35 targets: 9.6 % at 10 min)
UNCONVERGED_LISTED = 20   # unconverged programmings listed by cell in a section (all are counted)
TablesLike = Mapping[str, pd.DataFrame] | RunData | str | os.PathLike


#: the tables the summary reads (per-point tables such as ``forming_sweep`` — 1.6 M rows on a 64×64 die —
#: are never loaded, so memory does not grow with the staircases written)
SUMMARY_TABLES = ("forming", "iv_sweep", "pulse_train", "program_verify_result", "retention", "endurance",
                  "endurance_result", "ispp_result", "multilevel", "read_disturb")


def tables_of(source: TablesLike, names: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """Tables of a run as DataFrames (all, or only ``names``): from a mapping, an opened :class:`RunData` or a
    file path."""
    if isinstance(source, Mapping):      # by key: a lazy mapping reads only the tables asked for
        return {k: source[k] for k in source if names is None or k in names}
    run = source if isinstance(source, RunData) else open_run(source)
    return {name: run.table(name) for name in run.tables if names is None or name in names}


def jsonable(value: Any) -> Any:
    """Plain-Python copy of nested dicts/lists/numpy values; NaN/inf → None; DataFrames dropped."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if not isinstance(v, pd.DataFrame | pd.Series)}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _unconverged(df: pd.DataFrame) -> dict[str, Any]:
    bad = df[~df["converged"].to_numpy(bool)]
    return {"n_unconverged": len(bad),
            "unconverged": [[int(r), int(c), float(t)] for r, c, t in
                            zip(bad["row"], bad["col"], bad["target"], strict=True)][:UNCONVERGED_LISTED]}


def _pv_step(df: pd.DataFrame) -> dict[str, Any]:
    """One program-verify step: noise fit, iterations, converged/unconverged, states and levels in the window."""
    s = program_verify_stats(df)
    out: dict[str, Any] = {
        "acceptance": s["acceptance"], "acceptance_label": acceptance_label(s["acceptance"]),
        "n_cells": s["n_cells"], "n_converged": s["n_converged"], "n_targets": s["n_targets"],
        "sigma_slope": s["slope"], "sigma_slope_se": s["slope_se"],
        "sigma_intercept_uS": s["intercept_uS"], "sigma_intercept_se_uS": s["intercept_se_uS"],
        "mean_iterations": s["mean_iterations"], "median_iterations": s["median_iterations"],
        "success_rate": s["success_rate"], **_unconverged(df),
    }
    per = s["per_target"]
    if int((per["n_used"] >= 2).sum()) >= 2 and math.isfinite(s["slope"]):
        sigma, model = ProgrammingNoise(s["slope"], s["intercept_uS"] / US).sigma, "per-target fit"
        states = number_of_states(per, threshold=STATE_OVERLAP)
    else:                                   # one cell per target: a pooled relative spread
        rel = pooled_relative_sigma(df)
        sigma, model = (lambda g: rel * g), "pooled (g_final - target)/target"
        table = pd.DataFrame({"target": per["target"], "g_mean": per["target"], "sigma": rel * per["target"]})
        states = number_of_states(table[per["n_used"] >= 1], threshold=STATE_OVERLAP)
    conv = df[df["converged"].to_numpy(bool)]
    lo, hi = (float(conv["target"].min()), float(conv["target"].max())) if len(conv) else (math.nan, math.nan)
    out.update({"sigma_model": model, "n_states": states["n_states"],
                "adjacent_overlap_max": states["adjacent_overlap_max"], "state_overlap": STATE_OVERLAP,
                "window_uS": [lo * US, hi * US],
                "levels_in_window": levels_in_window(sigma, lo, hi, threshold=STATE_OVERLAP)})
    return out


def _program_verify(df: pd.DataFrame) -> dict[str, Any]:
    """One section per recipe step (the ``step`` column), else per acceptance."""
    if "step" in df and df["step"].astype(str).str.len().gt(0).all():
        return {str(step): _pv_step(group) for step, group in df.groupby("step", sort=False)}
    return {acceptance_label(acc): _pv_step(group) for acc, group in df.groupby("acceptance", sort=True)}


def _retention(df: pd.DataFrame, fit: RelaxationFit) -> dict[str, Any]:
    stats = retention_stats(df, taus=(1.0, 3600.0, TEN_YEARS))
    first = df.groupby([df[k] for k in ("row", "col", "t_prog")])["tau"].min()
    out: dict[str, Any] = {
        "mean_shift_uS": {k: v["mean_shift_uS"] for k, v in stats.items()},
        "sigma_uS": {k: v["sigma_uS"] for k, v in stats.items()},
        "n": {k: v["n"] for k, v in stats.items()},
        "tau_actual_mean": {k: v["tau_actual_mean"] for k, v in stats.items()},
        "first_read_tau_median": float(first.median()) if len(first) else math.nan,
        "fit": fit.as_uS(),
        # a fit over too short a span can extrapolate to a negative spread: no figure then (NaN -> null)
        "extrapolated_10y": {"mean_shift_uS": float(fit.mean_shift(TEN_YEARS)) * US,
                             "sigma_uS": _positive_or_nan(float(fit.sigma(TEN_YEARS))) * US},
    }
    states = _states_at(df, 600.0)
    if states is not None:
        out["states_10min"] = states
    return out


def _positive_or_nan(value: float) -> float:
    return value if value > 0 else math.nan


def _states_at(df: pd.DataFrame, tau: float) -> dict[str, Any] | None:
    """Distinguishable states ``tau`` s after programming, from converged programmings only: each target a normal
    with the pooled spread of g − target (relaxation is level-independent, arXiv 2502.04524), as in the paper's
    "35 targets, 9.6 % overlap after 10 min"; the levels the programmed window holds at that spread."""
    if "target" not in df:
        return None
    reads = reads_at(df, tau)
    reads = reads[np.isfinite(reads["target"]) & np.isfinite(reads["g"])]
    converged = reads["converged"].to_numpy(bool) if "converged" in reads else np.ones(len(reads), bool)
    good = reads[converged]
    if len(good) < 2:
        return None
    sigma = float((good["g"] - good["target"]).std(ddof=1))
    targets = np.unique(good["target"].to_numpy(float))
    table = pd.DataFrame({"target": targets, "g_mean": targets, "sigma": sigma})
    states = number_of_states(table, threshold=STATE_OVERLAP)
    lo, hi = float(targets.min()), float(targets.max())
    return {"sigma_uS": sigma * US, "n_events": len(good), "n_unconverged": int((~converged).sum()),
            **{k: states[k] for k in ("n_targets", "n_states", "adjacent_overlap_mean", "adjacent_overlap_max",
                                      "threshold")},
            "window_uS": [lo * US, hi * US], "levels_in_window": levels_in_window(lambda g: sigma, lo, hi,
                                                                                   threshold=STATE_OVERLAP)}


def _mvm(retention: pd.DataFrame, pv: dict[str, Any], fit: RelaxationFit) -> dict[str, Any]:
    """Per acceptance present in the retention reads: the MVM error from the measured deviations."""
    out: dict[str, Any] = {}
    if "acceptance" not in retention:
        return out
    for acc, group in retention[np.isfinite(retention["acceptance"].to_numpy(float))].groupby("acceptance"):
        sections = [s for s in pv.values() if s["acceptance"] == acc]
        noise = None
        if sections and all(math.isfinite(v) for v in (sections[-1]["sigma_slope"],
                                                       sections[-1]["sigma_intercept_uS"])):
            noise = ProgrammingNoise(sections[-1]["sigma_slope"], sections[-1]["sigma_intercept_uS"] / US)
        r = mvm_error_measured(group, noise, fit)
        out[acceptance_label(acc)] = {"acceptance": float(acc), "rmse": r["rmse_by_time"],
                                      "source": r["source_by_time"], "n": r["n_by_time"],
                                      "tau_median": r["tau_median_by_time"]}
    return out


def summarize(tables: TablesLike) -> dict[str, Any]:
    """JSON-able summary of the analysis of every table present (see the module docstring).

    Keys include ``forming.yield``, ``forming.v_form_mean``, ``forming.v_form_std`` (V);
    ``program_verify[<step>]`` with ``acceptance``, ``sigma_slope``, ``sigma_intercept_uS``, ``mean_iterations``,
    ``success_rate``, ``n_unconverged``, ``n_states``, ``levels_in_window``; ``retention.mean_shift_uS`` and
    ``retention.sigma_uS`` with ``1s``, ``1h`` and ``10y``; ``mvm[<acceptance>].rmse`` and ``.source``.
    """
    t = tables_of(tables, SUMMARY_TABLES)
    out: dict[str, Any] = {}
    if "forming" in t:
        out["forming"] = forming_stats(t["forming"])
    if "iv_sweep" in t:
        out["switching"] = switching_stats(switching_voltages(t["iv_sweep"]))
    if "pulse_train" in t:
        out["open_loop"] = open_loop_stats(open_loop_metrics(t["pulse_train"]))
    if "program_verify_result" in t:
        out["program_verify"] = _program_verify(t["program_verify_result"])
    fit = fit_relaxation(relaxation_curve(t["retention"])) if "retention" in t else None
    if fit is not None:
        out["retention"] = _retention(annotate_retention(t["retention"], t.get("program_verify_result")), fit)
    if "endurance" in t:
        out["endurance"] = endurance_stats(t["endurance"], t.get("endurance_result"))
    if "ispp_result" in t:
        out["ispp"] = {str(step): ispp_stats(group) for step, group in _by_step(t["ispp_result"])}
    if "read_disturb" in t:
        out["read_disturb"] = _read_disturb(t["read_disturb"])
    if "multilevel" in t:
        out["multilevel"] = {str(step): multilevel_stats(group, t.get("retention"), threshold=STATE_OVERLAP)
                             for step, group in _by_step(t["multilevel"])}
    if fit is not None:
        mvm = _mvm(annotate_retention(t["retention"], t.get("program_verify_result")), out.get("program_verify", {}),
                   fit)
        if mvm:
            out["mvm"] = mvm
    out.update({k: v for k, v in plugin_summaries(all_tables(tables)).items() if k not in out})
    return jsonable(out)


def _read_disturb(df: pd.DataFrame) -> dict[str, Any]:
    """Per recipe step and read voltage ("<step> @ <V> V"): cells, reads per cell, stress time (s), median and
    worst relative drift, median drift (µS) and slope (µS per decade of reads)."""
    per = read_disturb_drift(df)
    keys = [k for k in ("step", "v_read") if k in per]
    out: dict[str, Any] = {}
    for key, g in per.groupby(keys, sort=False):
        step, v = (key if len(keys) == 2 else ("", key[0]))
        worst = g["rel_drift"].abs().idxmax()
        out[f"{step} @ {float(v):g} V".strip()] = {
            "n_cells": len(g), "reads": int(g["n_last"].max()), "stress_time_s": float(g["stress_time"].median()),
            "rel_drift_median": float(g["rel_drift"].median()), "rel_drift_worst": float(g.loc[worst, "rel_drift"]),
            "drift_uS_median": float(g["drift"].median()) * US,
            "slope_uS_per_decade_median": float(g["slope_per_decade"].median()) * US}
    return out


def _by_step(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(recipe step, rows) groups of a table (one group "" when it has no step column)."""
    if "step" not in df:
        return [("", df)]
    return [(str(k), g) for k, g in df.groupby("step", sort=False)]


def all_tables(source: TablesLike) -> Mapping[str, pd.DataFrame]:
    """Every table of ``source`` (a mapping as it is; a run file or RunData: each table read when first asked
    for), for sections and figures that name their own tables."""
    if isinstance(source, Mapping):
        return source
    run = source if isinstance(source, RunData) else open_run(source)
    return LazyTables(list(run.tables), run.table)
