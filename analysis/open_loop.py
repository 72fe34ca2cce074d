"""Open-loop (identical-pulse) metrics from the ``pulse_train`` table (arXiv 2502.04524).

The paper's protocol per device: 400 SET, 400 RESET, 400 SET, 400 RESET, then 500 alternating
SET/RESET pulses (pulse numbers ``n`` 1…2100). ``g`` is the read after pulse ``n``. Definitions:

- ``g_max``: mean of the last ``last_reads`` (50) reads of every SET block, pooled (S);
- ``g_min``: the same over the RESET blocks (S);
- ``g_sp``: mean of the last ``sp_reads`` (100) reads of the trace, i.e. of the alternating part (S);
- ``delta_g_sp``: mean pulse-direction-signed step δ_n = sign(V_n)·(G_n − G_{n−1}) over the
  alternating part (the first alternating step is taken from the last read of the last block); with
  ``sp_steps`` only the last ``sp_steps`` steps are used (S);
- ``n_states`` = (g_max − g_min)/delta_g_sp; ``nsr`` = std(δ, ddof=1)/delta_g_sp;
  ``sp_skew`` = (g_max − g_sp)/(g_max − g_min) (0.5 = symmetry point centred in the window).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: The paper's block sequence: (sign, pulses) with +1 = SET, −1 = RESET.
PAPER_BLOCKS: tuple[tuple[int, int], ...] = ((1, 400), (-1, 400), (1, 400), (-1, 400))
#: Pulses in the alternating SET/RESET part that follows the blocks.
PAPER_ALTERNATING = 500

METRICS = ["g_max", "g_min", "g_sp", "delta_g_sp", "n_states", "nsr", "sp_skew"]
UNITS = {"g_max": "S", "g_min": "S", "g_sp": "S", "delta_g_sp": "S", "n_states": "", "nsr": "", "sp_skew": ""}


def _wide(df: pd.DataFrame, value: str, n_total: int) -> pd.DataFrame:
    """(row, col) × pulse number 1…n_total matrix of ``value`` (first record if a pulse repeats)."""
    wide = df.groupby(["row", "col", "n"])[value].first().unstack("n")
    return wide.reindex(columns=range(1, n_total + 1))


def open_loop_metrics(pulse_train: pd.DataFrame, *,
                      blocks: Sequence[tuple[int, int]] = PAPER_BLOCKS,
                      alternating: int = PAPER_ALTERNATING,
                      last_reads: int = 50, sp_reads: int = 100,
                      sp_steps: int | None = None) -> pd.DataFrame:
    """Per-device open-loop metrics (columns ``row``, ``col`` and :data:`METRICS`).

    ``blocks`` are (sign, count) pairs before the ``alternating`` part; pulse numbers follow them from
    1. Missing reads are NaN and skipped; metrics that cannot be formed are NaN.
    """
    n_blocks = int(sum(count for _, count in blocks))
    n_total = n_blocks + int(alternating)
    if pulse_train.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ["row", "col", *METRICS]})
    wide = _wide(pulse_train, "g", n_total)
    g = wide.to_numpy(dtype=float)
    sign = np.sign(_wide(pulse_train, "v_pulse", n_total).to_numpy(dtype=float))
    ends = np.cumsum([count for _, count in blocks])

    def pooled_tail(polarity: int) -> np.ndarray:
        cols = [np.arange(max(end - last_reads, end - count), end) for (s, count), end in zip(blocks, ends, strict=True)
                if s == polarity]
        idx = np.concatenate(cols) if cols else np.array([], dtype=int)
        return _nanmean(g[:, idx])

    g_max, g_min = pooled_tail(1), pooled_tail(-1)
    g_sp = _nanmean(g[:, max(n_total - sp_reads, n_blocks):n_total])
    if alternating > 0 and n_blocks > 0:
        delta = sign[:, n_blocks:] * np.diff(g[:, n_blocks - 1:], axis=1)
    else:
        delta = sign[:, n_blocks:] * np.diff(g[:, n_blocks:], axis=1, prepend=np.nan)
    if sp_steps is not None:
        delta = delta[:, -sp_steps:]
    step = _nanmean(delta)
    spread = _nanstd(delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        window = g_max - g_min
        res = pd.DataFrame({
            "g_max": g_max, "g_min": g_min, "g_sp": g_sp, "delta_g_sp": step,
            "n_states": window / step, "nsr": spread / step, "sp_skew": (g_max - g_sp) / window,
        })
    res.insert(0, "col", wide.index.get_level_values("col").to_numpy())
    res.insert(0, "row", wide.index.get_level_values("row").to_numpy())
    res.attrs["units"] = dict(UNITS)
    return res


def open_loop_stats(metrics: pd.DataFrame) -> dict[str, Any]:
    """Array statistics of :func:`open_loop_metrics`: ``n_devices`` and, per metric, ``<name>_mean``
    and ``<name>_std`` (ddof=1) over the devices with a finite value (units as in :data:`UNITS`)."""
    out: dict[str, Any] = {"n_devices": len(metrics)}
    for name in METRICS:
        x = metrics[name].to_numpy(dtype=float) if name in metrics else np.array([])
        x = x[np.isfinite(x)]
        out[f"{name}_mean"] = float(x.mean()) if x.size else float("nan")
        out[f"{name}_std"] = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return out


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN (no warning) where a row has no finite value."""
    n = np.isfinite(a).sum(axis=1)
    total = np.where(np.isfinite(a), a, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _nanstd(a: np.ndarray) -> np.ndarray:
    """Row sample std (ddof=1) ignoring NaN; NaN where a row has fewer than two finite values."""
    n = np.isfinite(a).sum(axis=1)
    dev = np.where(np.isfinite(a), a - _nanmean(a)[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, np.sqrt((dev**2).sum(axis=1) / np.maximum(n - 1, 1)), np.nan)
