"""SET/RESET voltages, HRS/LRS and the on/off window from DC I–V double sweeps (arXiv 2502.04524).

Input: the ``iv_sweep`` table — ``row``, ``col``, ``cycle``, ``branch`` ("set" | "reset"), ``v`` (V),
``i`` (A), ``compliance``, ``t`` (s), ``seq``. Each branch is a double sweep 0 → ±V_max → 0; its
*outbound half* is the part up to and including the point of largest |V|.

Definitions (one per quantity, applied per row, col, cycle):

- Switching voltages work on the apparent conductance G = |I/V| of the outbound half, counting only
  points with |V| ≥ ``v_min`` (below it I/V is dominated by offsets and noise). G_start is the median
  of the first three such points (the state the branch starts in); G_end is the largest G of the
  outbound half on the SET branch and the smallest on the RESET branch (the state switched to).
  ``v_set`` is the first voltage of the SET branch at which ln G reaches the midpoint of ln G_start
  and ln G_end (the geometric-mean conductance); ``v_reset`` (negative) the first voltage of the
  RESET branch at which ln G falls to that midpoint. For an abrupt switch this is the first point
  after the jump; for the gradual (analog) switching of CMO/HfOx cells it is the middle of the
  transition in log G, independent of arbitrary onset thresholds and of the current limit that
  flattens I after SET. If G_end/G_start (or its inverse) is below ``min_ratio`` the branch did not
  switch and the voltage is NaN. A non-linear (non-ohmic) background is tolerated as long as its own
  rise of I/V over the sweep stays well below the switching ratio.
- ``g_hrs`` (S) is |I/V| at the point of the SET branch's outbound half whose |V| is closest to
  ``v_read`` (the state before SET); ``g_lrs`` (S) the same on the RESET branch (the state after
  SET, before RESET). ``on_off`` = g_lrs / g_hrs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

CELL = ["row", "col"]
CYCLE = ["row", "col", "cycle"]
_BRANCH = [*CYCLE, "branch"]


def _outbound(iv: pd.DataFrame) -> pd.DataFrame:
    """Rows of each branch's outbound half (up to the largest |V|), in acquisition order."""
    order = "seq" if "seq" in iv else "t"
    df = iv.sort_values([*_BRANCH, order], kind="stable").reset_index(drop=True)
    df["_absv"] = df["v"].abs()
    df["_pos"] = df.groupby(_BRANCH).cumcount()
    peak = df.loc[df.groupby(_BRANCH)["_absv"].idxmax(), [*_BRANCH, "_pos"]].rename(columns={"_pos": "_peak"})
    df = df.merge(peak, on=_BRANCH, how="left")
    return df[df["_pos"] <= df["_peak"]]


def _switch_voltage(out: pd.DataFrame, branch: str, v_min: float, min_ratio: float) -> pd.Series:
    """First voltage at which ln G crosses the midpoint between its start and its extreme (see module)."""
    df = out[(out["branch"] == branch) & (out["_absv"] >= v_min)].copy()
    g = df["i"].abs() / df["_absv"]
    df["_lng"] = np.log(g.where(g > 0))
    df = df.dropna(subset=["_lng"])
    if df.empty:
        return pd.Series(dtype=float, name=f"v_{branch}")
    by = df.groupby(CYCLE)["_lng"]
    start = df.groupby(CYCLE).head(3).groupby(CYCLE)["_lng"].median()
    end = by.max() if branch == "set" else by.min()
    mid = ((start + end) / 2.0).rename("_mid")
    df = df.join(mid, on=CYCLE)
    crossed = df[df["_lng"] >= df["_mid"]] if branch == "set" else df[df["_lng"] <= df["_mid"]]
    v = crossed.groupby(CYCLE)["v"].first().reindex(mid.index)
    return v.where((end - start).abs() >= np.log(min_ratio)).rename(f"v_{branch}")


def _read_conductance(out: pd.DataFrame, branch: str, v_read: float, name: str) -> pd.Series:
    df = out[out["branch"] == branch]
    if df.empty:
        return pd.Series(dtype=float, name=name)
    dist = (df["_absv"] - abs(v_read)).abs()
    pick = df.loc[dist.groupby([df[k] for k in CYCLE]).idxmin()].set_index(CYCLE)
    return (pick["i"].abs() / pick["_absv"]).where(pick["_absv"] > 0).rename(name)


def switching_voltages(iv: pd.DataFrame, *, v_read: float = 0.2, v_min: float = 0.05,
                       min_ratio: float = 1.5) -> pd.DataFrame:
    """Per (row, col, cycle): ``v_set``, ``v_reset`` (V), ``g_hrs``, ``g_lrs`` (S) and ``on_off``.

    ``v_read`` (V) is the read voltage for HRS/LRS, ``v_min`` (V) the smallest |V| used for the
    switching search, ``min_ratio`` the smallest conductance change accepted as switching. See the module
    docstring for the definitions.
    """
    cols = ["row", "col", "cycle", "v_set", "v_reset", "g_hrs", "g_lrs", "on_off"]
    if iv.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    out = _outbound(iv)
    parts = [
        _switch_voltage(out, "set", v_min, min_ratio),
        _switch_voltage(out, "reset", v_min, min_ratio),
        _read_conductance(out, "set", v_read, "g_hrs"),
        _read_conductance(out, "reset", v_read, "g_lrs"),
    ]
    keys = out[CYCLE].drop_duplicates().set_index(CYCLE).index
    res = pd.concat([p.reindex(keys) if not p.empty else pd.Series(np.nan, index=keys, name=p.name)
                     for p in parts], axis=1)
    res["on_off"] = res["g_lrs"] / res["g_hrs"]
    res = res.reset_index()[cols].sort_values(CYCLE, kind="stable").reset_index(drop=True)
    res.attrs["units"] = {"v_set": "V", "v_reset": "V", "g_hrs": "S", "g_lrs": "S", "on_off": ""}
    return res


def switching_stats(sw: pd.DataFrame) -> dict[str, Any]:
    """Mean and sample std (ddof=1) of ``v_set``, ``v_reset`` (V), ``g_hrs``, ``g_lrs`` (S) and
    ``on_off`` over the cycles of :func:`switching_voltages` (NaN entries skipped), plus ``n_cycles``,
    ``n_cells``, ``set_fraction`` / ``reset_fraction`` (cycles in which a switch was found) and the
    median on/off ratio."""
    out: dict[str, Any] = {"n_cycles": len(sw), "n_cells": int(len(sw[CELL].drop_duplicates())) if len(sw) else 0}
    for name in ("v_set", "v_reset", "g_hrs", "g_lrs", "on_off"):
        x = sw[name].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        out[f"{name}_mean"] = float(x.mean()) if x.size else float("nan")
        out[f"{name}_std"] = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    ratio = sw["on_off"].to_numpy(dtype=float)
    ratio = ratio[np.isfinite(ratio)]
    out["on_off_median"] = float(np.median(ratio)) if ratio.size else float("nan")
    for name in ("set", "reset"):
        out[f"{name}_fraction"] = float(np.isfinite(sw[f"v_{name}"]).mean()) if len(sw) else float("nan")
    return out
