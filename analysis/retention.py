"""Retention and relaxation after programming (arXiv 2502.04524).

Input: the ``retention`` table — ``row``, ``col``, ``target`` (S), ``g0`` (S, accepted verify read at
programming), ``t_prog`` (s), ``tau`` (s since programming, actual), ``g`` (S), ``t`` (s). The shift
of a read is g − g0. A programming event is identified by (row, col, t_prog), so a cell programmed
twice counts twice.

The relaxation law (aihwkit ``ReRamCMONoiseModel``, natural log, τ in s, τ ≥ 1 s)::

    mean shift μ(τ) = −a·ln τ          σ(τ) = b·ln τ + c

with the published a = 0.0890, b = 0.0420, c = 0.412 µS (:data:`AIHWKIT_RELAXATION`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

US = 1e6
TEN_YEARS = 315576000.0
EVENT = ["row", "col", "t_prog"]
_NAMED = {1.0: "1s", 60.0: "1min", 600.0: "10min", 3600.0: "1h", 86400.0: "1d", 172800.0: "2d",
          604800.0: "1w", 31557600.0: "1y", TEN_YEARS: "10y"}


def tau_label(tau: float) -> str:
    """Short label of a time span: 3600 → "1h", 315576000 → "10y"; otherwise e.g. "250s"."""
    for value, name in _NAMED.items():
        if math.isclose(float(tau), value, rel_tol=1e-9):
            return name
    return f"{float(tau):g}s"


@dataclasses.dataclass(frozen=True)
class RelaxationFit:
    """μ(τ) = −a·ln τ, σ(τ) = b·ln τ + c; a, b, c and their standard errors in S, τ in s."""

    a: float
    b: float
    c: float
    a_se: float = float("nan")
    b_se: float = float("nan")
    c_se: float = float("nan")

    def mean_shift(self, tau: np.ndarray | float) -> np.ndarray | float:
        """Mean conductance shift (S) at ``tau`` (s)."""
        return -self.a * np.log(tau)

    def sigma(self, tau: np.ndarray | float) -> np.ndarray | float:
        """Spread of the shift (S) at ``tau`` (s)."""
        return self.b * np.log(tau) + self.c

    def as_uS(self) -> dict[str, float]:
        """Coefficients and standard errors in µS (keys ``a_uS``, ``a_se_uS``, …)."""
        return {f"{k}_uS": float(getattr(self, k)) * US for k in ("a", "b", "c", "a_se", "b_se", "c_se")}

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> RelaxationFit:
        """From ``{"a": …, "b": …, "c": …}`` in S or ``{"a_uS": …, …}`` in µS."""
        if "a_uS" in m:
            return cls(m["a_uS"] / US, m["b_uS"] / US, m["c_uS"] / US)
        return cls(float(m["a"]), float(m["b"]), float(m["c"]))


#: Published relaxation coefficients (aihwkit ``ReRamCMONoiseModel`` ``decay_dict``).
AIHWKIT_RELAXATION = RelaxationFit(a=0.08900206e-6, b=0.04201137e-6, c=0.41183342e-6)


def _events(df: pd.DataFrame) -> list[str]:
    return [k for k in EVENT if k in df]


def reads_at(df: pd.DataFrame, tau: float, factor: float = 1.5) -> pd.DataFrame:
    """For each programming event, its read whose actual ``tau`` is nearest to ``tau`` in log,
    kept only if within a factor ``factor`` of it. Adds a ``shift`` column (g − g0, S)."""
    d = pd.Series(np.abs(np.log(df["tau"].where(df["tau"] > 0).astype(float) / float(tau))), index=df.index)
    d = d.dropna()
    if d.empty:
        return df.iloc[:0].assign(shift=pd.Series(dtype=float))
    best = d.groupby([df.loc[d.index, k] for k in _events(df)]).idxmin()
    pick = df.loc[best.to_numpy()]
    pick = pick[d.loc[best.to_numpy()].to_numpy() <= math.log(factor)]
    return pick.assign(shift=pick["g"] - pick["g0"]).reset_index(drop=True)


def retention_stats(df: pd.DataFrame, taus: Sequence[float] = (3600.0, TEN_YEARS),
                    factor: float = 1.5) -> dict[str, dict[str, float]]:
    """Shift statistics at each requested τ (s), keyed by :func:`tau_label` ("1h", "10y", …).

    Each entry: ``tau`` (s, requested), ``tau_actual_mean`` (s), ``n`` (events with a read within a
    factor ``factor`` of τ, nearest in log), ``mean_shift_uS`` and ``sigma_uS`` (ddof=1) of g − g0 in µS.
    """
    out: dict[str, dict[str, float]] = {}
    for tau in taus:
        sel = reads_at(df, tau, factor)
        shift = sel["shift"].to_numpy(float) * US
        shift = shift[np.isfinite(shift)]
        out[tau_label(tau)] = {
            "tau": float(tau),
            "tau_actual_mean": float(sel["tau"].mean()) if len(sel) else float("nan"),
            "n": int(shift.size),
            "mean_shift_uS": float(shift.mean()) if shift.size else float("nan"),
            "sigma_uS": float(shift.std(ddof=1)) if shift.size > 1 else float("nan"),
        }
    return out


def relaxation_curve(df: pd.DataFrame, bins_per_decade: int = 4) -> pd.DataFrame:
    """Mean and spread of the shift g − g0 in log-τ bins.

    Bins are centred on 10^(k/bins_per_decade) s. Columns: ``tau`` (s, geometric mean of the actual
    τ in the bin), ``n``, ``mean_shift`` and ``sigma`` (S, ddof=1).
    """
    ok = (df["tau"] > 0) & np.isfinite(df["g"]) & np.isfinite(df["g0"])
    d = df[ok]
    if d.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("tau", "n", "mean_shift", "sigma")})
    log_tau = np.log10(d["tau"].to_numpy(float))
    k = np.rint(log_tau * bins_per_decade).astype(int)
    frame = pd.DataFrame({"k": k, "log_tau": log_tau, "shift": (d["g"] - d["g0"]).to_numpy(float)})
    g = frame.groupby("k")
    curve = pd.DataFrame({"tau": 10.0 ** g["log_tau"].mean(), "n": g.size(),
                          "mean_shift": g["shift"].mean(), "sigma": g["shift"].std(ddof=1)})
    curve = curve.reset_index(drop=True)
    curve.attrs["units"] = {"tau": "s", "n": "", "mean_shift": "S", "sigma": "S"}
    return curve


def fit_relaxation(curve: pd.DataFrame, tau_min: float = 1.0, min_count: int = 2) -> RelaxationFit:
    """Fit μ = −a·ln τ (through the origin) and σ = b·ln τ + c to a :func:`relaxation_curve`.

    Uses bins with τ ≥ ``tau_min`` (s) and at least ``min_count`` reads, each weighted by √n (the
    standard errors of a bin mean and a bin std both scale as 1/√n). Standard errors are scaled by
    the reduced χ². Returns NaN coefficients when fewer than two bins qualify.
    """
    c = curve[(curve["tau"] >= tau_min) & (curve["n"] >= min_count) & np.isfinite(curve["sigma"])]
    if len(c) < 2:
        return RelaxationFit(float("nan"), float("nan"), float("nan"))
    x = np.log(c["tau"].to_numpy(float))
    w = np.sqrt(c["n"].to_numpy(float))
    m = c["mean_shift"].to_numpy(float)
    s = c["sigma"].to_numpy(float)
    xw = x * w
    a = -float(np.dot(xw, m * w) / np.dot(xw, xw))
    resid_a = (m + a * x) * w
    a_se = math.sqrt(float(np.dot(resid_a, resid_a)) / (len(x) - 1) / float(np.dot(xw, xw)))
    design = np.column_stack([x, np.ones_like(x)]) * w[:, None]
    coef, *_ = np.linalg.lstsq(design, s * w, rcond=None)
    if len(x) > 2:
        chi2 = float(np.sum((design @ coef - s * w) ** 2)) / (len(x) - 2)
        cov = np.linalg.inv(design.T @ design) * chi2
        b_se, c_se = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
    else:
        b_se = c_se = float("nan")
    return RelaxationFit(a, float(coef[0]), float(coef[1]), a_se, b_se, c_se)


def extrapolate(fit: RelaxationFit, tau: np.ndarray | float) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(mean shift, σ) in S at ``tau`` (s), e.g. ``extrapolate(fit, TEN_YEARS)``."""
    return fit.mean_shift(tau), fit.sigma(tau)
