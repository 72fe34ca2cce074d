"""Endurance statistics from the ``endurance`` and ``endurance_result`` tables.

Input: ``endurance`` — ``row``, ``col``, ``cycle``, ``g_lrs``, ``g_hrs`` (S), ``t`` (s), one row per
checkpoint; ``endurance_result`` — ``row``, ``col``, ``cycles_done``, ``failed``, ``failed_at``.
The on/off ratio of a checkpoint is g_lrs / g_hrs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def window_by_cycle(endurance: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint cycle: ``n`` cells, the median ``g_lrs`` and ``g_hrs`` (S) with their 10th and 90th
    percentiles (``g_lrs_p10``, ``g_lrs_p90``, ``g_hrs_p10``, ``g_hrs_p90``) and the median ``on_off``."""
    df = endurance.assign(on_off=endurance["g_lrs"] / endurance["g_hrs"].where(endurance["g_hrs"] > 0))
    g = df.groupby("cycle", sort=True)
    cols: dict[str, Any] = {"n": g.size()}
    for name in ("g_lrs", "g_hrs"):
        cols[name] = g[name].median()
        cols[f"{name}_p10"], cols[f"{name}_p90"] = g[name].quantile(0.1), g[name].quantile(0.9)
    cols["on_off"] = g["on_off"].median()
    out = pd.DataFrame(cols).reset_index()
    out.attrs["units"] = {c: ("S" if c.startswith("g_") else "") for c in out.columns}
    return out


def endurance_stats(endurance: pd.DataFrame, result: pd.DataFrame | None = None) -> dict[str, Any]:
    """``n_cells``; ``cycles_max`` (largest checkpoint); median ``g_lrs_first``/``g_hrs_first`` (S) and
    ``on_off_first`` at the first checkpoint and the same ``_last`` at the last one reached by each cell;
    from ``result``: ``failed_fraction`` and ``failed_at_median`` (cycle; NaN if none failed)."""
    if endurance.empty:
        return {"n_cells": 0}
    df = endurance.sort_values(["row", "col", "cycle"], kind="stable")
    cells = df.groupby(["row", "col"])
    first, last = cells.head(1), cells.tail(1)

    def med(rows: pd.DataFrame, col: str) -> float:
        return float(np.median(rows[col].to_numpy(float)))

    out: dict[str, Any] = {
        "n_cells": int(cells.ngroups),
        "cycles_max": int(df["cycle"].max()),
        "g_lrs_first": med(first, "g_lrs"), "g_hrs_first": med(first, "g_hrs"),
        "on_off_first": float(np.median(first["g_lrs"] / first["g_hrs"])),
        "g_lrs_last": med(last, "g_lrs"), "g_hrs_last": med(last, "g_hrs"),
        "on_off_last": float(np.median(last["g_lrs"] / last["g_hrs"])),
    }
    if result is not None and len(result):
        failed = result["failed"].to_numpy(bool)
        out["failed_fraction"] = float(failed.mean())
        at = result["failed_at"].to_numpy(float)[failed]
        out["failed_at_median"] = float(np.median(at)) if at.size else float("nan")
    return out
