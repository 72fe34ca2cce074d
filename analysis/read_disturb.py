"""Read disturb: how far repeated reads moved each cell's conductance (table ``read_disturb``).

The table holds G at log-spaced read counts ``n_reads`` (from 1) of each cell read at ``v_read`` V and ``nplc``
PLC. :func:`read_disturb_drift` gives, per cell, the drift at the last count and its trend per decade of reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["read_disturb_drift"]

_KEYS = ["row", "col", "v_read", "nplc"]


def read_disturb_drift(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (and step, read voltage and integration, when several): ``n_last`` reads in all,
    ``g_first`` (S, the first read) and ``g_last`` (S, the read at ``n_last``), ``drift`` = g_last - g_first (S),
    ``rel_drift`` = drift / g_first, ``slope_per_decade`` (S per decade of reads: least-squares slope of G against
    log10 n_reads, NaN with fewer than 2 counts), ``stress_time`` (s from the first read to the last). Rows with
    no read count (n_reads < 1) or no reading (NaN) are left out."""
    keys = (["step"] if "step" in df.columns else []) + _KEYS
    ok = (df["n_reads"].to_numpy(float) >= 1) & np.isfinite(df["g"].to_numpy(float))   # counts from 1; no NaN reads
    out = []
    for key, cell in df[ok].sort_values("n_reads", kind="stable").groupby(keys, sort=True):
        n = cell["n_reads"].to_numpy(dtype=float)
        g = cell["g"].to_numpy(dtype=float)
        t = cell["t"].to_numpy(dtype=float)
        slope = float(np.polyfit(np.log10(n), g, 1)[0]) if len(np.unique(n)) >= 2 else float("nan")
        drift = g[-1] - g[0]
        out.append({**dict(zip(keys, key, strict=True)), "n_last": int(n[-1]), "g_first": g[0], "g_last": g[-1],
                    "drift": drift, "rel_drift": drift / g[0] if g[0] else float("nan"),
                    "slope_per_decade": slope, "stress_time": t[-1] - t[0]})
    columns = [*keys, "n_last", "g_first", "g_last", "drift", "rel_drift", "slope_per_decade", "stress_time"]
    return pd.DataFrame(out, columns=columns)
