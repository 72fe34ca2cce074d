"""The JSON-able run summary (``rramlab demo --json``): one section per table that exists.

``summarize(tables)`` returns nested dicts of plain Python values (float, int, bool, str, None; NaN and
±inf become None). Voltages in V, conductances in µS where the key says ``_uS``, fractions as fractions.

Sections: ``forming`` (table ``forming``), ``switching`` (``iv_sweep``), ``open_loop``
(``pulse_train``), ``program_verify`` keyed "0.2%", "2%", … (``program_verify_result``),
``retention`` (``retention``), ``endurance`` (``endurance``, ``endurance_result``) and ``mvm`` (64×64
MVM RMSE from the measured programming-noise fit of the tightest acceptance and the measured relaxation
fit; needs program-verify and retention).
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
from .mvm import mvm_error
from .open_loop import open_loop_metrics, open_loop_stats
from .programming import ProgrammingNoise, number_of_states, program_verify_by_acceptance
from .retention import TEN_YEARS, RelaxationFit, fit_relaxation, reads_at, relaxation_curve, retention_stats
from .switching import switching_stats, switching_voltages

US = 1e6
TablesLike = Mapping[str, pd.DataFrame] | RunData | str | os.PathLike


#: the tables the summary reads (per-point tables such as ``forming_sweep`` — 1.6 M rows on a 64×64 die —
#: are never loaded, so memory does not grow with the staircases written)
SUMMARY_TABLES = ("forming", "iv_sweep", "pulse_train", "program_verify_result", "retention", "endurance",
                  "endurance_result")


def tables_of(source: TablesLike, names: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """Tables of a run as DataFrames (all, or only ``names``): from a mapping, an opened :class:`RunData` or a
    file path."""
    if isinstance(source, Mapping):
        return {k: v for k, v in source.items() if names is None or k in names}
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


def _program_verify(df: pd.DataFrame) -> dict[str, Any]:
    out = {}
    for label, s in program_verify_by_acceptance(df).items():
        out[label] = {
            "acceptance": s["acceptance"], "n_cells": s["n_cells"], "n_targets": s["n_targets"],
            "sigma_slope": s["slope"], "sigma_slope_se": s["slope_se"],
            "sigma_intercept_uS": s["intercept_uS"], "sigma_intercept_se_uS": s["intercept_se_uS"],
            "mean_iterations": s["mean_iterations"], "median_iterations": s["median_iterations"],
            "success_rate": s["success_rate"],
        }
    return out


def _retention(df: pd.DataFrame, fit: RelaxationFit) -> dict[str, Any]:
    stats = retention_stats(df)
    out: dict[str, Any] = {
        "mean_shift_uS": {k: v["mean_shift_uS"] for k, v in stats.items()},
        "sigma_uS": {k: v["sigma_uS"] for k, v in stats.items()},
        "n": {k: v["n"] for k, v in stats.items()},
        "fit": fit.as_uS(),
        # a fit over too short a span can extrapolate to a negative spread: no figure then (NaN -> null)
        "extrapolated_10y": {"mean_shift_uS": float(fit.mean_shift(TEN_YEARS)) * US,
                             "sigma_uS": _positive_or_nan(float(fit.sigma(TEN_YEARS))) * US},
    }
    states = _states_10min(df)
    if states is not None:
        out["states_10min"] = states
    return out


def _positive_or_nan(value: float) -> float:
    return value if value > 0 else math.nan


def _states_10min(df: pd.DataFrame) -> dict[str, Any] | None:
    """Distinguishable states 10 min after programming: each target a normal with the pooled spread of
    g − target over all cells (relaxation is level-independent, arXiv 2502.04524), as in the paper's
    "35 targets, 9.6 % overlap after 10 min"."""
    if "target" not in df:
        return None
    reads = reads_at(df, 600.0)
    reads = reads[np.isfinite(reads["target"]) & np.isfinite(reads["g"])]
    if len(reads) < 2:
        return None
    sigma = float((reads["g"] - reads["target"]).std(ddof=1))
    targets = np.unique(reads["target"].to_numpy(float))
    table = pd.DataFrame({"target": targets, "g_mean": targets, "sigma": sigma})
    states = number_of_states(table)
    return {"sigma_uS": sigma * US, **{k: states[k] for k in ("n_targets", "n_states", "adjacent_overlap_mean",
                                                               "adjacent_overlap_max", "threshold")}}


def _mvm(pv: dict[str, Any], fit: RelaxationFit) -> dict[str, Any] | None:
    tight = min(pv.values(), key=lambda s: s["acceptance"], default=None)
    if tight is None or not all(math.isfinite(v) for v in (tight["sigma_slope"], tight["sigma_intercept_uS"],
                                                           fit.a, fit.b, fit.c)):
        return None
    noise = ProgrammingNoise(tight["sigma_slope"], tight["sigma_intercept_uS"] / US)
    result = mvm_error(noise, fit)
    return {"acceptance": tight["acceptance"], "rmse": result["rmse_by_time"]}


def summarize(tables: TablesLike) -> dict[str, Any]:
    """JSON-able summary of the analysis of every table present (see the module docstring).

    Keys include ``forming.yield``, ``forming.v_form_mean``, ``forming.v_form_std`` (V);
    ``program_verify["0.2%"|"2%"]`` with ``sigma_slope``, ``sigma_intercept_uS``, ``mean_iterations``,
    ``success_rate``; ``retention.mean_shift_uS`` and ``retention.sigma_uS`` with ``1h`` and ``10y``.
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
        out["retention"] = _retention(t["retention"], fit)
    if "endurance" in t:
        out["endurance"] = endurance_stats(t["endurance"], t.get("endurance_result"))
    if "program_verify" in out and fit is not None:
        mvm = _mvm(out["program_verify"], fit)
        if mvm is not None:
            out["mvm"] = mvm
    return jsonable(out)
