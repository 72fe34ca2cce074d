"""Distinguishable states of a multilevel programming (table ``multilevel``; the settle reads in ``retention``).

For each level: the mean and spread (S, ddof=1) of the converged cells' conductance, right after programming
(``g_prog``) and at the settle read (``g`` of the retention row of the same programming: row, col, t_prog). From
them: the states that stay distinguishable at the overlap criterion (:func:`number_of_states`), and the measured
level error rate: the fraction of converged cells whose conductance lies nearer another level's mean than its own
(a direct count, no distribution assumed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .programming import number_of_states

US = 1e6


def _level_stats(df: pd.DataFrame, value: str, threshold: float) -> dict[str, Any]:
    """States and level error rate of converged rows ``df`` (columns level, target, ``value``)."""
    g = df[value].to_numpy(float)
    ok = np.isfinite(g)
    df, g = df[ok], g[ok]
    if len(df) < 2:
        return {"n": len(df)}
    per = df.groupby("level").agg(target=("target", "first"), g_mean=(value, "mean"), sigma=(value, "std"),
                                  n=(value, "size")).reset_index()
    states = number_of_states(per[per["n"] >= 2], threshold=threshold)
    means = per.set_index("level")["g_mean"]
    levels = means.index.to_numpy()
    nearest = levels[np.abs(g[:, None] - means.to_numpy()[None, :]).argmin(axis=1)]
    errors = int((nearest != df["level"].to_numpy()).sum())
    return {"n": len(df), "n_states": states["n_states"], "adjacent_overlap_max": states["adjacent_overlap_max"],
            "sigma_uS_mean": float(per["sigma"].mean()) * US, "sigma_uS_max": float(per["sigma"].max()) * US,
            "level_errors": errors, "level_error_rate": errors / len(df)}


def multilevel_stats(programming: pd.DataFrame, retention: pd.DataFrame | None = None, *,
                     threshold: float = 0.1) -> dict[str, Any]:
    """Statistics of one multilevel step: ``levels``, ``n_programmings``, ``n_converged``, ``programmed`` and
    ``settled`` (each: ``n``, ``n_states``, ``adjacent_overlap_max``, ``sigma_uS_mean``/``_max``, ``level_errors``,
    ``level_error_rate``), ``settle_tau_median`` (s); from converged programmings only."""
    good = programming[programming["converged"].to_numpy(bool)]
    out: dict[str, Any] = {"levels": int(programming["level"].nunique()), "n_programmings": len(programming),
                           "n_converged": len(good), "programmed": _level_stats(good, "g_prog", threshold)}
    if retention is not None and len(retention) and len(good):
        reads = retention.merge(good[["row", "col", "t_prog", "level"]], on=["row", "col", "t_prog"], how="inner")
        reads = reads.sort_values("tau").drop_duplicates(["row", "col", "t_prog"], keep="first")
        if len(reads):
            out["settled"] = _level_stats(reads, "g", threshold)
            out["settle_tau_median"] = float(reads["tau"].median())
    else:
        out["settle_tau_median"] = math.nan
    return out
