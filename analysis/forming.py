"""Electroforming statistics from the ``forming`` table (arXiv 2502.04524).

Input columns: ``row``, ``col``, ``v_form`` (V, NaN if not formed), ``formed`` (bool), ``i_form`` (A),
``attempts``, ``g_after_reset`` (S), ``t`` (s).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def forming_stats(df: pd.DataFrame) -> dict[str, Any]:
    """Forming yield and forming-voltage statistics.

    Returns ``n_cells``, ``n_formed``, ``yield`` (formed fraction, NaN for an empty table),
    ``v_form_mean``, ``v_form_std`` (sample std, ddof=1), ``v_form_min``, ``v_form_max`` (V, over the
    formed cells with a finite ``v_form``; NaN when there are none, or for the std when only one).
    ``g_after_reset_median`` (S) is the median conductance after the first RESET of the formed cells.
    """
    n_cells = len(df)
    formed = df["formed"].to_numpy(dtype=bool) if "formed" in df else np.isfinite(df["v_form"].to_numpy(float))
    v = df["v_form"].to_numpy(dtype=float)[formed]
    v = v[np.isfinite(v)]
    g = df["g_after_reset"].to_numpy(dtype=float)[formed] if "g_after_reset" in df else np.array([])
    g = g[np.isfinite(g)]
    return {
        "n_cells": n_cells,
        "n_formed": int(formed.sum()),
        "yield": float(formed.mean()) if n_cells else float("nan"),
        "v_form_mean": float(v.mean()) if v.size else float("nan"),
        "v_form_std": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
        "v_form_min": float(v.min()) if v.size else float("nan"),
        "v_form_max": float(v.max()) if v.size else float("nan"),
        "g_after_reset_median": float(np.median(g)) if g.size else float("nan"),
    }
