"""Program-and-verify statistics and the number of distinguishable states (arXiv 2502.04524).

Input: the ``program_verify_result`` table — one row per programmed cell: ``row``, ``col``,
``target`` (S), ``acceptance`` (fraction), ``g_final`` (S), ``iterations``, ``converged`` (bool),
``t_done`` (s).

Programming noise σ(G) is the sample std (ddof=1) of ``g_final`` over the *converged* cells of one
target, fitted as σ = slope·G + intercept in µS (slope dimensionless). Fit weights: each σ_i is
weighted by the inverse of its expected standard error, √(2(n_i − 1))/σ_exp,i, with
σ_exp = slope₀·G + b₀ from a first unweighted fit (floored at 1 % of its mean so a poor first pass
cannot produce infinite weights) — i.e. a relative-error weighting that does not let the large-G
points dominate. Standard errors are scaled by the reduced χ² of the weighted fit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

US = 1e6  # S → µS for presentation


@dataclasses.dataclass(frozen=True)
class ProgrammingNoise:
    """σ_prog(G) = slope·G + intercept; slope dimensionless, intercept in S."""

    slope: float
    intercept: float

    def sigma(self, g: np.ndarray | float) -> np.ndarray | float:
        """Programming noise σ (S) at conductance ``g`` (S)."""
        return self.slope * np.asarray(g) + self.intercept

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> ProgrammingNoise:
        """From :func:`program_verify_stats` output (``slope``, ``intercept_uS``)."""
        return cls(float(stats["slope"]), float(stats["intercept_uS"]) / US)


#: aihwkit ``ReRamCMONoiseModel`` fits (arXiv 2502.04524), keyed by acceptance fraction.
PUBLISHED_PROGRAMMING_NOISE: dict[float, ProgrammingNoise] = {
    0.002: ProgrammingNoise(0.00106879, 0.00081107e-6),
    0.02: ProgrammingNoise(0.01129027418, 0.0112185391e-6),
}


def acceptance_label(acceptance: float) -> str:
    """0.002 → "0.2%", 0.02 → "2%" (percent without trailing zeros)."""
    return f"{round(float(acceptance) * 100, 10):g}%"


def state_distributions(df: pd.DataFrame, value: str = "g_final",
                        targets: Sequence[float] | None = None) -> pd.DataFrame:
    """Per-target ``n`` (cells), ``n_used`` (converged cells with a finite value), ``g_mean`` and
    ``sigma`` (S, ddof=1) of column ``value``, and ``mean_iterations`` when available.

    Rows are grouped by their ``target`` column, or assigned to the nearest of ``targets`` (S) if
    given. A ``converged`` column, when present, selects the cells used for ``g_mean``/``sigma``.
    """
    if targets is not None:
        t = np.sort(np.asarray(targets, dtype=float))
        nearest = np.abs(df["target"].to_numpy(float)[:, None] - t[None, :]).argmin(axis=1) if len(t) else []
        key = pd.Series(t[nearest] if len(t) else np.nan, index=df.index, name="target")
    else:
        key = df["target"].rename("target")
    used = df["converged"].astype(bool) if "converged" in df else pd.Series(True, index=df.index)
    x = df[value].astype(float).where(used & np.isfinite(df[value].astype(float)))
    grouped = x.groupby(key)
    out = pd.DataFrame({"n": key.groupby(key).size(), "n_used": grouped.count(),
                        "g_mean": grouped.mean(), "sigma": grouped.std(ddof=1)})
    if "iterations" in df:
        out["mean_iterations"] = df["iterations"].astype(float).where(used).groupby(key).mean()
    out = out.reset_index().sort_values("target", kind="stable").reset_index(drop=True)
    out.attrs["units"] = {"target": "S", "n": "", "n_used": "", "g_mean": "S", "sigma": "S", "mean_iterations": ""}
    return out


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float]:
    """Weighted least squares y = m·x + b (w multiplies residuals); (m, b, se_m, se_b)."""
    a = np.column_stack([x, np.ones_like(x)]) * w[:, None]
    coef, *_ = np.linalg.lstsq(a, y * w, rcond=None)
    if len(x) <= 2:
        return float(coef[0]), float(coef[1]), float("nan"), float("nan")
    chi2 = float(np.sum((a @ coef - y * w) ** 2)) / (len(x) - 2)
    cov = np.linalg.inv(a.T @ a) * chi2
    return float(coef[0]), float(coef[1]), float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))


def fit_sigma_line(target: np.ndarray, sigma: np.ndarray, n: np.ndarray) -> dict[str, float]:
    """Fit σ = slope·G + intercept to per-target spreads (all in S; see module docstring for weights).

    Returns ``slope``, ``intercept_uS``, ``slope_se``, ``intercept_se_uS`` (NaN if < 2 usable targets).
    """
    x, y, n = target * US, sigma * US, np.asarray(n, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (n >= 2)
    x, y, n = x[ok], y[ok], n[ok]
    nan = {"slope": float("nan"), "intercept_uS": float("nan"), "slope_se": float("nan"),
           "intercept_se_uS": float("nan")}
    if len(np.unique(x)) < 2:
        return nan
    m0, b0, *_ = _weighted_line(x, y, np.ones_like(x))
    expected = m0 * x + b0
    expected = np.maximum(expected, 0.01 * max(float(np.mean(np.abs(y))), np.finfo(float).tiny))
    m, b, se_m, se_b = _weighted_line(x, y, np.sqrt(2.0 * (n - 1.0)) / expected)
    return {"slope": m, "intercept_uS": b, "slope_se": se_m, "intercept_se_uS": se_b}


def program_verify_stats(results: pd.DataFrame, targets: Sequence[float] | None = None) -> dict[str, Any]:
    """Statistics of one acceptance range from ``program_verify_result`` rows.

    Returns ``acceptance`` (fraction, NaN if mixed or absent), ``n_cells``, ``n_converged``,
    ``success_rate`` (converged fraction; 0 when none converged, NaN for no rows), ``mean_iterations``
    and ``median_iterations`` (over converged cells; NaN if none), ``n_targets``, the σ(G) fit of
    :func:`fit_sigma_line` (``slope``, ``intercept_uS``, ``slope_se``, ``intercept_se_uS``) and
    ``per_target`` (:func:`state_distributions`).
    """
    acc = results["acceptance"].unique() if "acceptance" in results else np.array([])
    per = state_distributions(results, "g_final", targets)
    conv = results["converged"].to_numpy(dtype=bool) if len(results) else np.array([], dtype=bool)
    its = results["iterations"].to_numpy(dtype=float)[conv] if len(results) else np.array([])
    out: dict[str, Any] = {
        "acceptance": float(acc[0]) if len(acc) == 1 else float("nan"),
        "n_cells": len(results),
        "n_converged": int(conv.sum()),
        "success_rate": float(conv.mean()) if len(conv) else float("nan"),
        "mean_iterations": float(its.mean()) if its.size else float("nan"),
        "median_iterations": float(np.median(its)) if its.size else float("nan"),
        "n_targets": len(per),
    }
    out.update(fit_sigma_line(per["target"].to_numpy(float), per["sigma"].to_numpy(float),
                              per["n_used"].to_numpy(float)))
    out["per_target"] = per
    return out


def program_verify_by_acceptance(results: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """:func:`program_verify_stats` per acceptance, keyed by :func:`acceptance_label` ("0.2%", "2%")."""
    return {acceptance_label(acc): program_verify_stats(group)
            for acc, group in results.groupby("acceptance", sort=True)}


def gaussian_overlap(mu1: np.ndarray | float, s1: np.ndarray | float,
                     mu2: np.ndarray | float, s2: np.ndarray | float) -> np.ndarray:
    """Overlapping coefficient ∫ min(f₁, f₂) dx of two normal densities (exact; vectorized).

    For equal σ it is 2Φ(−|μ₂ − μ₁|/2σ). For unequal σ the densities cross at two points r₁ < r₂; the
    narrower density is the minimum outside [r₁, r₂] and the wider one inside.
    """
    mu1, s1, mu2, s2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (mu1, s1, mu2, s2)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        equal = 2.0 * ndtr(-np.abs(mu2 - mu1) / (s1 + s2))
        narrow_mu, narrow_s = np.where(s1 < s2, mu1, mu2), np.minimum(s1, s2)
        wide_mu, wide_s = np.where(s1 < s2, mu2, mu1), np.maximum(s1, s2)
        a = 1.0 / narrow_s**2 - 1.0 / wide_s**2
        b = 2.0 * (wide_mu / wide_s**2 - narrow_mu / narrow_s**2)
        c = narrow_mu**2 / narrow_s**2 - wide_mu**2 / wide_s**2 - 2.0 * np.log(wide_s / narrow_s)
        root = np.sqrt(np.maximum(b**2 - 4.0 * a * c, 0.0))
        r1, r2 = (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)
        r1, r2 = np.minimum(r1, r2), np.maximum(r1, r2)

        def cdf(x: np.ndarray, mu: np.ndarray, s: np.ndarray) -> np.ndarray:
            return ndtr((x - mu) / s)

        unequal = (cdf(r1, narrow_mu, narrow_s) + 1.0 - cdf(r2, narrow_mu, narrow_s)
                   + cdf(r2, wide_mu, wide_s) - cdf(r1, wide_mu, wide_s))
        same = np.isclose(s1, s2, rtol=1e-9, atol=0.0)
        out = np.where(same, equal, unequal)
        out = np.where((s1 == 0) | (s2 == 0), np.where(mu1 == mu2, 1.0, 0.0), out)
    return np.clip(out, 0.0, 1.0)


def number_of_states(states: pd.DataFrame, *, threshold: float = 0.1, extra_sigma: float = 0.0,
                     value: str | None = None) -> dict[str, Any]:
    """Number of distinguishable conductance states.

    ``states`` is a per-target table with ``target``, ``g_mean`` and ``sigma`` (S; e.g.
    ``program_verify_stats(...)["per_target"]``) or raw rows with ``target`` and ``value`` (default
    ``g_final``, or ``g`` for retention reads) from which that table is built. ``extra_sigma`` (S)
    adds a spread in quadrature (e.g. the relaxation σ at some time).

    Each state is a normal N(g_mean, σ). ``adjacent_overlap`` is the :func:`gaussian_overlap` of
    neighbouring targets (sorted by g_mean). ``n_states`` counts states selected greedily from the
    lowest: the next state kept is the first whose overlap with the last kept one is below
    ``threshold`` (default 0.1: the paper counts its 35 targets with a 9.6 % adjacent overlap after
    10 min as distinguishable). With every adjacent overlap below threshold this is the number of
    targets; with larger spreads, states are thinned out rather than the count collapsing.
    """
    if "sigma" not in states or "g_mean" not in states:
        col = value or ("g_final" if "g_final" in states else "g")
        states = state_distributions(states, col)
    table = states[np.isfinite(states["g_mean"]) & np.isfinite(states["sigma"])]
    table = table.sort_values("g_mean", kind="stable").reset_index(drop=True)
    mu = table["g_mean"].to_numpy(float)
    sigma = np.sqrt(table["sigma"].to_numpy(float) ** 2 + float(extra_sigma) ** 2)
    adjacent = gaussian_overlap(mu[:-1], sigma[:-1], mu[1:], sigma[1:]) if len(mu) > 1 else np.array([])
    kept: list[int] = [0] if len(mu) else []
    while kept and kept[-1] < len(mu) - 1:
        k = kept[-1]
        ok = gaussian_overlap(mu[k], sigma[k], mu[k + 1:], sigma[k + 1:]) < threshold
        if not ok.any():
            break
        kept.append(k + 1 + int(np.argmax(ok)))
    pairs = pd.DataFrame({"g_low": mu[:-1], "g_high": mu[1:], "overlap": adjacent}) if len(mu) > 1 else \
        pd.DataFrame({"g_low": [], "g_high": [], "overlap": []})
    return {
        "n_targets": len(mu),
        "n_states": len(kept),
        "threshold": float(threshold),
        "adjacent_overlap_max": float(adjacent.max()) if adjacent.size else float("nan"),
        "adjacent_overlap_mean": float(adjacent.mean()) if adjacent.size else float("nan"),
        "n_adjacent_below_threshold": int((adjacent < threshold).sum()),
        "states": table["target"].to_numpy(float)[kept] if "target" in table else mu[kept],
        "pairs": pairs,
    }


def levels_in_window(sigma: Callable[[float], float], g_low: float, g_high: float, *,
                     threshold: float = 0.1, max_levels: int = 10_000) -> int:
    """How many levels the window [g_low, g_high] (S) holds when each level is a normal of spread ``sigma(G)``
    (S) and neighbours G₁ < G₂ may overlap by less than ``threshold``, the overlap taken as 2Φ(−(G₂ − G₁)/(σ₁ + σ₂))
    (exact for equal spreads, :func:`gaussian_overlap`; within a few % of it for the slowly varying σ(G) of
    programming noise): levels packed from g_low upwards, each as close to the last as the criterion allows,
    G₂ − G₁ = z·(σ(G₁) + σ(G₂)) with 2Φ(−z) = threshold (solved by fixed-point iteration). 0 for an empty or invalid
    window or an unknown spread; ``max_levels`` for noiseless levels."""
    if not (math.isfinite(g_low) and math.isfinite(g_high) and g_high >= g_low and 0 < threshold < 1):
        return 0
    z = NormalDist().inv_cdf(1.0 - threshold / 2.0)
    g, n = g_low, 1
    while n < max_levels:
        s = float(sigma(g))
        if not (math.isfinite(s) and s >= 0.0):
            return 0                                  # no spread known: no count
        if s == 0.0:
            return max_levels                         # noiseless levels: the cap
        d = 2.0 * z * s
        for _ in range(50):                           # d = z·(σ(g) + σ(g + d)): a contraction for |σ'| < 1/z
            nxt = z * (s + float(sigma(g + d)))
            if abs(nxt - d) <= 1e-12 * d:
                break
            d = nxt
        if not (math.isfinite(d) and d > 0.0):
            return 0
        if g + d > g_high:
            break
        g, n = g + d, n + 1
    return n


def pooled_relative_sigma(results: pd.DataFrame) -> float:
    """σ(G)/G pooled over the converged cells of ``program_verify_result`` rows: the sample std (ddof=1) of
    (g_final − target)/target; NaN with fewer than 2 converged cells. For steps with one cell per target, where
    no per-target spread exists."""
    ok = results["converged"].to_numpy(bool) & np.isfinite(results["g_final"].to_numpy(float))
    rel = ((results["g_final"] - results["target"]) / results["target"]).to_numpy(float)[ok]
    return float(np.std(rel, ddof=1)) if rel.size >= 2 else float("nan")


def ispp_stats(results: pd.DataFrame) -> dict[str, Any]:
    """Statistics of ``ispp_result`` rows (one ISPP step): ``n_cells``, ``success_rate`` (converged),
    ``overshoot_rate``, ``mean_pulses``/``median_pulses`` and ``v_final_median``/``v_final_std`` (V) over the
    converged cells, ``sigma_rel`` (std of (g_final − target)/target over converged cells, ddof=1)."""
    conv = results["converged"].to_numpy(bool)
    good = results[conv]
    rel = ((good["g_final"] - good["target"]) / good["target"]).to_numpy(float)
    return {"n_cells": len(results), "success_rate": float(conv.mean()) if len(conv) else math.nan,
            "overshoot_rate": float(results["overshoot"].to_numpy(bool).mean()) if len(results) else math.nan,
            "mean_pulses": float(good["pulses"].mean()) if len(good) else math.nan,
            "median_pulses": float(good["pulses"].median()) if len(good) else math.nan,
            "v_final_median": float(good["v_final"].median()) if len(good) else math.nan,
            "v_final_std": float(good["v_final"].std(ddof=1)) if len(good) > 1 else math.nan,
            "sigma_rel": float(np.std(rel, ddof=1)) if rel.size > 1 else math.nan}
