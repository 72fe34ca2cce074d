"""The 64×64 matrix-vector-multiplication error study (arXiv 2502.04524).

Recipe (aihwkit example 34, ``ReRamCMONoiseModel``): weights W uniform in [−1, 1], one device per
weight, mapped linearly onto [g_min, g_max] = [9.0, 88.19] µS; inputs x uniform in [−1, 1]. Each
device is programmed to G_prog = G_target + σ_prog(G_target)·ξ; at inference time t > 0 (s)

    G_drift = G_prog − a·ln t + (b·ln t + c)·ξ
    G(t)    = G_drift + K·log₁₀(G_drift[µS])·√(ln((t + t_read)/(2·t_read)))·ξ   (µS; K, t_read of §6)

clamped to [g_min, g_max]; at t = 0 only programming noise applies. The device weights are read back
with the inverse linear map and the RMSE of W_dev·x − W·x is taken over all outputs and vectors (and
repeats). Periphery effects (I/O quantization, IR drop) are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .programming import PUBLISHED_PROGRAMMING_NOISE, ProgrammingNoise
from .retention import AIHWKIT_RELAXATION, TEN_YEARS, RelaxationFit, reads_at, tau_label

US = 1e6
#: Read-noise constants of §6 (Lombardo DRC 2024 as implemented in aihwkit).
READ_NOISE_K = 0.0277316483
T_READ = 1e-6
G_MIN = 9.0e-6
G_MAX = 88.19e-6
PAPER_TIMES = (1.0, 3600.0, 86400.0, TEN_YEARS)


def read_noise_sigma(g: np.ndarray | float, t: float, k: float = READ_NOISE_K, t_read: float = T_READ) -> np.ndarray:
    """Accumulated 1/f read-noise σ (S) of devices at conductance ``g`` (S) after ``t`` (s):
    K·log₁₀(G[µS])·√(ln((t + t_read)/(2·t_read))) µS (0 for t ≤ t_read)."""
    spread = np.sqrt(max(np.log((t + t_read) / (2.0 * t_read)), 0.0))
    return k * np.log10(np.asarray(g, dtype=float) * US) * spread / US


def device_conductance(g_prog: np.ndarray, t: float, relaxation: RelaxationFit, rng: np.random.Generator, *,
                       read_noise: bool = True, g_min: float = G_MIN, g_max: float = G_MAX) -> np.ndarray:
    """Conductances (S) at inference time ``t`` (s) of devices programmed to ``g_prog`` (S)."""
    if t == 0:
        return g_prog
    log_t = np.log(t)
    g = g_prog - relaxation.a * log_t + (relaxation.b * log_t + relaxation.c) * rng.standard_normal(g_prog.shape)
    if read_noise:
        g = g + read_noise_sigma(np.maximum(g, 1e-12), t) * rng.standard_normal(g_prog.shape)
    return np.clip(g, g_min, g_max)


def _as_noise(value: ProgrammingNoise | Mapping[str, Any] | float) -> ProgrammingNoise:
    if isinstance(value, ProgrammingNoise):
        return value
    if isinstance(value, Mapping):
        return ProgrammingNoise.from_stats(value)
    return PUBLISHED_PROGRAMMING_NOISE[float(value)]


def _as_relaxation(value: RelaxationFit | Mapping[str, Any] | None) -> RelaxationFit:
    if value is None:
        return AIHWKIT_RELAXATION
    return value if isinstance(value, RelaxationFit) else RelaxationFit.from_mapping(value)


def mvm_error(g_prog_sigma: ProgrammingNoise | Mapping[str, Any] | float = 0.002,
              relaxation: RelaxationFit | Mapping[str, Any] | None = None, *,
              size: int = 64, vectors: int = 100, seed: int = 0,
              times: Sequence[float] = PAPER_TIMES, repeats: int = 1, read_noise: bool = True,
              g_min: float = G_MIN, g_max: float = G_MAX) -> dict[str, Any]:
    """RMSE of a ``size``×``size`` ReRAM MVM against floating point at each time in ``times`` (s).

    ``g_prog_sigma``: a :class:`ProgrammingNoise`, a :func:`program_verify_stats` dict (``slope``,
    ``intercept_uS``) or an acceptance fraction (0.002 / 0.02) naming a published fit.
    ``relaxation``: a :class:`RelaxationFit`, a mapping of a, b, c (S) or a_uS, … (µS), or None for
    the published aihwkit law. ``repeats`` independent weight matrices are pooled into one RMSE.

    Returns ``times`` (s), ``rmse`` (weight units, aligned with ``times``), ``rmse_by_time`` keyed by
    :func:`~rramlab.analysis.retention.tau_label` ("0s", "1s", "1h", "1d", "10y"), and the settings.
    """
    noise, relax = _as_noise(g_prog_sigma), _as_relaxation(relaxation)
    rng = np.random.default_rng(seed)
    span = g_max - g_min
    sq_err = np.zeros(len(times))
    for _ in range(repeats):
        w = rng.uniform(-1.0, 1.0, (size, size))
        x = rng.uniform(-1.0, 1.0, (vectors, size))
        g_target = g_min + (w + 1.0) / 2.0 * span
        g_prog = g_target + noise.sigma(g_target) * rng.standard_normal(w.shape)
        y_ref = x @ w.T
        for i, t in enumerate(times):
            g = device_conductance(g_prog, float(t), relax, rng, read_noise=read_noise, g_min=g_min, g_max=g_max)
            w_dev = (g - g_min) / span * 2.0 - 1.0
            sq_err[i] += float(np.mean((x @ w_dev.T - y_ref) ** 2))
    rmse = np.sqrt(sq_err / repeats)
    return {
        "times": [float(t) for t in times],
        "rmse": [float(r) for r in rmse],
        "rmse_by_time": {tau_label(t) if t else "0s": float(r) for t, r in zip(times, rmse, strict=True)},
        "size": size, "vectors": vectors, "repeats": repeats, "seed": seed,
        "programming_noise": {"slope": noise.slope, "intercept_uS": noise.intercept * US},
        "relaxation": {k: v for k, v in relax.as_uS().items() if not k.endswith("_se_uS")},
    }


def expected_rmse(noise: ProgrammingNoise, relaxation: RelaxationFit, t: float, *, size: int = 64,
                  g_min: float = G_MIN, g_max: float = G_MAX, g_typical: float = 50e-6) -> float:
    """Analytic RMSE estimate without clamping: per-device weight error of mean m and std s gives
    E[(Σ e·x)²] = size·(s² + m²)·E[x²] with E[x²] = 1/3 for x uniform in [−1, 1] (the mean term adds
    m²·E[(Σx)²] = m²·size/3 too). Read noise is evaluated at ``g_typical`` (S); the programming
    noise is averaged over the uniform target distribution."""
    span = g_max - g_min
    g_mid, half = (g_min + g_max) / 2.0, span / 2.0
    prog_var = (noise.slope * g_mid + noise.intercept) ** 2 + (noise.slope * half) ** 2 / 3.0
    if t > 0:
        mean = -relaxation.a * np.log(t)
        var = prog_var + (relaxation.b * np.log(t) + relaxation.c) ** 2 + read_noise_sigma(g_typical, t) ** 2
    else:
        mean, var = 0.0, prog_var
    scale = 2.0 / span
    return float(np.sqrt(size / 3.0 * (var + mean**2)) * scale)


def annotate_retention(retention: pd.DataFrame, results: pd.DataFrame | None) -> pd.DataFrame:
    """``retention`` with ``acceptance`` and ``converged`` columns: as recorded, or — in files written before the
    retention table carried them — from the program-verify result row of the same programming (same row and
    col, ``t_done`` = ``t_prog``); NaN / false where no such row exists."""
    if "acceptance" in retention and "converged" in retention:
        return retention
    out = retention.drop(columns=[c for c in ("acceptance", "converged") if c in retention])
    if results is None or not len(results):
        return out.assign(acceptance=np.nan, converged=False)
    keys = results[["row", "col", "t_done", "acceptance", "converged"]].rename(columns={"t_done": "t_prog"})
    keys = keys.drop_duplicates(["row", "col", "t_prog"], keep="last")
    merged = out.merge(keys, on=["row", "col", "t_prog"], how="left")
    merged.index = out.index
    return merged.assign(converged=merged["converged"].fillna(False).astype(bool))


#: reads within this factor of a time count as measured at it (nearest in log, as :func:`reads_at`)
MEASURED_FACTOR = 1.5
MIN_MEASURED = 8          # programming events with a read near a time, for a measured figure
NEAREST = 8               # a device's deviation is drawn from the events with the nearest targets


def measured_deviations(retention: pd.DataFrame, t: float, factor: float = MEASURED_FACTOR) -> pd.DataFrame:
    """Per converged programming event, its read nearest ``t`` (s after programming, within ``factor``):
    columns ``target`` (S), ``delta`` = g − target (S: programming error, relaxation and read noise together,
    as measured) and ``tau`` (s, actual). Events that did not converge (``converged`` false) are left out."""
    d = retention[np.isfinite(retention["target"].to_numpy(float))]
    if "converged" in d:
        d = d[d["converged"].to_numpy(bool)]
    sel = reads_at(d, t, factor)
    sel = sel[np.isfinite(sel["g"].to_numpy(float))]
    return pd.DataFrame({"target": sel["target"].to_numpy(float), "delta": (sel["g"] - sel["target"]).to_numpy(float),
                         "tau": sel["tau"].to_numpy(float)})


def _rmse(g_target: np.ndarray, g: np.ndarray, x: np.ndarray, w: np.ndarray, g_min: float, g_max: float) -> float:
    w_dev = (np.clip(g, g_min, g_max) - g_min) / (g_max - g_min) * 2.0 - 1.0
    return float(np.mean((x @ w_dev.T - x @ w.T) ** 2))


def mvm_error_measured(retention: pd.DataFrame, noise: ProgrammingNoise | None = None,
                       relaxation: RelaxationFit | None = None, *, times: Sequence[float] = PAPER_TIMES,
                       size: int = 64, vectors: int = 1000, repeats: int = 4, seed: int = 0,
                       g_min: float = G_MIN, g_max: float = G_MAX) -> dict[str, Any]:
    """RMSE of a ``size``×``size`` MVM (weights → [g_min, g_max] as :func:`mvm_error`) from what was measured.

    At each time t (s after programming) with reads of at least :data:`MIN_MEASURED` converged programming events
    near t (:func:`measured_deviations`), each device's conductance is its target plus the measured deviation
    g − target of one of the :data:`NEAREST` events with the nearest targets, drawn at random: programming
    error, relaxation and read noise exactly as measured, none of them added again. Beyond the last measured
    time, and only there, the deviation is extrapolated: ``noise`` (σ(G) of the programming) and ``relaxation``
    (mean shift and spread at t; its spread was fitted to reads, so read noise is in it already), source
    "extrapolated". Before the first measured time, or with no measured time at all: no figure (source "not
    measured").

    Returns ``times`` (s), ``rmse`` (weight units, NaN without a figure) and ``source`` aligned with them;
    ``rmse_by_time`` (None without a figure), ``source_by_time``, ``n_by_time``
    (events used) and ``tau_median_by_time`` (s, actual read times) keyed by :func:`tau_label`, and settings.
    """
    rng = np.random.default_rng(seed)
    measured = {t: measured_deviations(retention, t) for t in times}
    usable = [t for t, m in measured.items() if len(m) >= MIN_MEASURED]
    last = max(usable, default=-math.inf)
    sq = dict.fromkeys(times, 0.0)
    source: dict[float, str] = {}
    for t in times:
        if t in usable:
            source[t] = "measured"
        elif usable and t > last and noise is not None and relaxation is not None and t > 0 and \
                all(math.isfinite(v) for v in (noise.slope, noise.intercept, relaxation.a, relaxation.b, relaxation.c)):
            source[t] = "extrapolated"
        else:
            source[t] = "not measured"
    for _ in range(repeats):
        w = rng.uniform(-1.0, 1.0, (size, size))
        x = rng.uniform(-1.0, 1.0, (vectors, size))
        g_target = g_min + (w + 1.0) / 2.0 * (g_max - g_min)
        for t in times:
            if source[t] == "measured":
                m = measured[t].sort_values("target", kind="stable")
                targets, deltas = m["target"].to_numpy(float), m["delta"].to_numpy(float)
                k = min(NEAREST, len(targets))
                pos = np.clip(np.searchsorted(targets, g_target), 0, len(targets))        # nearest-k window
                start = np.clip(pos - k // 2, 0, len(targets) - k)
                g = g_target + deltas[start + rng.integers(0, k, size=g_target.shape)]
            elif source[t] == "extrapolated":
                assert noise is not None and relaxation is not None
                log_t = math.log(t)
                spread = np.sqrt(noise.sigma(g_target) ** 2 + (relaxation.b * log_t + relaxation.c) ** 2)
                g = g_target - relaxation.a * log_t + spread * rng.standard_normal(g_target.shape)
            else:
                continue
            sq[t] += _rmse(g_target, g, x, w, g_min, g_max)
    label = {t: tau_label(t) if t else "0s" for t in times}
    rmse = [math.sqrt(sq[t] / repeats) if source[t] != "not measured" else math.nan for t in times]
    return {
        "times": [float(t) for t in times], "rmse": rmse, "source": [source[t] for t in times],
        "rmse_by_time": {label[t]: (None if math.isnan(r) else r) for t, r in zip(times, rmse, strict=True)},
        "source_by_time": {label[t]: source[t] for t in times},
        "n_by_time": {label[t]: len(measured[t]) for t in times},
        "tau_median_by_time": {label[t]: float(np.median(measured[t]["tau"])) if len(measured[t]) else None
                               for t in times},
        "size": size, "vectors": vectors, "repeats": repeats, "seed": seed, "g_min": g_min, "g_max": g_max,
    }
