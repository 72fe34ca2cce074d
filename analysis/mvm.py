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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .programming import PUBLISHED_PROGRAMMING_NOISE, ProgrammingNoise
from .retention import AIHWKIT_RELAXATION, TEN_YEARS, RelaxationFit, tau_label

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
