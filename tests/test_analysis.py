"""Tests of the analysis layer: extraction and statistics on synthetic tables with known answers,
the run summary, and the figures (structure only, no image comparison)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.integrate import quad
from scipy.stats import norm

from rramlab.analysis.dataset import RunMetadata, RunWriter
from rramlab.analysis.endurance import endurance_stats, window_by_cycle
from rramlab.analysis.forming import forming_stats
from rramlab.analysis.mvm import (
    G_MAX,
    G_MIN,
    annotate_retention,
    expected_rmse,
    mvm_error,
    mvm_error_measured,
    read_noise_sigma,
)
from rramlab.analysis.open_loop import open_loop_metrics, open_loop_stats
from rramlab.analysis.plots import (
    plot_endurance,
    plot_forming,
    plot_iv_loops,
    plot_mvm_rmse,
    plot_open_loop,
    plot_programmed_cdfs,
    plot_programming_noise,
    plot_relaxation,
    save_report_figures,
)
from rramlab.analysis.programming import (
    PUBLISHED_PROGRAMMING_NOISE,
    ProgrammingNoise,
    acceptance_label,
    gaussian_overlap,
    levels_in_window,
    number_of_states,
    program_verify_by_acceptance,
    program_verify_stats,
)
from rramlab.analysis.retention import (
    AIHWKIT_RELAXATION,
    TEN_YEARS,
    RelaxationFit,
    extrapolate,
    fit_relaxation,
    reads_at,
    relaxation_curve,
    retention_stats,
    tau_label,
)
from rramlab.analysis.summary import jsonable, summarize
from rramlab.analysis.switching import switching_stats, switching_voltages

US = 1e6
A, B, C = 0.08900206, 0.04201137, 0.41183342  # µS, aihwkit relaxation law


# -- synthetic tables --------------------------------------------------------------------------------

def forming_table(n: int = 400, unformed: int = 0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    v = rng.normal(3.17, 0.075, n)
    formed = np.ones(n, dtype=bool)
    formed[:unformed] = False
    v[~formed] = np.nan
    return pd.DataFrame({"seq": np.arange(n), "row": np.arange(n) // 32, "col": np.arange(n) % 32, "v_form": v,
                         "formed": formed, "i_form": np.where(formed, 2.5e-4, np.nan), "attempts": 1,
                         "g_after_reset": np.where(formed, 12e-6, np.nan), "t": np.arange(n, dtype=float)})


def iv_branch(v_max: float, step: float = 0.02) -> np.ndarray:
    up = np.round(np.sign(v_max) * step * np.arange(int(round(abs(v_max) / step)) + 1), 6)
    return np.concatenate([up, up[-2::-1]])


def iv_loop(row: int, col: int, cycle: int, v_set: float | None, v_reset: float | None, *, g_hrs: float = 10e-6,
            g_lrs: float = 90e-6, nonlinear: bool = False, i_limit: float = 1e-4, noise: float = 0.0,
            width: float = 0.0, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """A hand-made double sweep: SET at v_set (HRS → LRS), RESET at v_reset (LRS → HRS); abrupt, or with
    ``width`` > 0 gradual: log G moves linearly in |V| over v_sw ± width/2."""
    rows = []
    for branch, v_end, v_sw in (("set", 1.5, v_set), ("reset", -1.5, v_reset)):
        v = iv_branch(v_end)
        g_from, g_to = (g_hrs, g_lrs) if branch == "set" else (g_lrs, g_hrs)
        if v_sw is None:
            frac = np.zeros(v.size)
        elif width:
            frac = np.clip((np.abs(v) - abs(v_sw) + width / 2) / width, 0.0, 1.0)
        else:
            frac = (np.abs(v) >= abs(v_sw) - 1e-9).astype(float)
        frac = np.maximum.accumulate(frac)                       # once switched, stays switched
        state = g_from * (g_to / g_from) ** frac
        shape = 0.5 * np.sinh(v / 0.5) if nonlinear else v
        i = np.clip(state * shape, -i_limit, i_limit)
        if noise and rng is not None:
            i = i * (1.0 + noise * rng.standard_normal(i.size))
        rows.append(pd.DataFrame({"row": row, "col": col, "cycle": cycle, "branch": branch, "v": v, "i": i,
                                  "compliance": np.abs(i) >= i_limit, "t": 0.0}))
    return pd.concat(rows, ignore_index=True)


def soft_bounds_trace(row: int, col: int, s_plus: float, s_minus: float, *, g_max: float = 90e-6,
                      g_min: float = 10e-6, g_start: float = 50e-6, sigma: float = 0.0,
                      blocks: tuple[tuple[int, int], ...] = ((1, 400), (-1, 400), (1, 400), (-1, 400)),
                      alternating: int = 500, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """ΔG⁺ = s⁺(Gmax − G), ΔG⁻ = −s⁻(G − Gmin) (+ σ·ξ): the paper's 2,100-pulse protocol."""
    signs = np.concatenate([np.full(n, s) for s, n in blocks] + [np.tile([1, -1], alternating // 2)])
    noise = sigma * rng.standard_normal(signs.size) if sigma else np.zeros(signs.size)
    g = np.empty(signs.size)
    value = g_start
    for k, s in enumerate(signs):   # a recurrence: each read depends on the previous one
        value += (s_plus * (g_max - value) if s > 0 else -s_minus * (value - g_min)) + noise[k]
        g[k] = value
    n = np.arange(1, signs.size + 1)
    return pd.DataFrame({"row": row, "col": col, "n": n, "v_pulse": np.where(signs > 0, 1.35, -1.3), "g": g,
                         "t": n * 1e-3})


def fixed_point_step(s_plus: float, s_minus: float, span: float) -> float:
    """Steady alternating step d of the recurrence: d = s⁺s⁻·span/(s⁺ + s⁻ − s⁺s⁻)."""
    return s_plus * s_minus * span / (s_plus + s_minus - s_plus * s_minus)


TARGETS = np.linspace(9e-6, 88e-6, 35)


def programmed_table(acceptance: float, per_target: int = 200, seed: int = 2, fail: float = 0.0) -> pd.DataFrame:
    """Converged cells uniform in target ± acceptance·target; a fraction ``fail`` did not converge."""
    rng = np.random.default_rng(seed)
    target = np.repeat(TARGETS, per_target)
    g = target * (1.0 + acceptance * rng.uniform(-1.0, 1.0, target.size))
    converged = rng.uniform(size=target.size) >= fail
    g = np.where(converged, g, target * 0.5)        # non-converged cells far off: must be ignored
    iterations = np.where(converged, rng.integers(1, 40, target.size), 1000)
    n = target.size
    return pd.DataFrame({"seq": np.arange(n), "row": np.arange(n) % 64, "col": np.arange(n) // 64 % 64,
                         "target": target, "acceptance": acceptance, "g_final": g, "iterations": iterations,
                         "converged": converged, "t_done": np.arange(n, dtype=float)})


def retention_table(cells: int = 2000, seed: int = 3, horizon: float = TEN_YEARS) -> pd.DataFrame:
    """Shifts drawn from the aihwkit law at log-spaced τ (4 per decade, + 1 h), τ jittered by ≤ 2 %."""
    rng = np.random.default_rng(seed)
    taus = np.unique(np.concatenate([10.0 ** (np.arange(0, 35) / 4), [3600.0, TEN_YEARS]]))
    taus = taus[taus <= horizon]
    tau = np.tile(taus, cells) * (1.0 + 0.02 * rng.uniform(size=cells * taus.size))
    cell = np.repeat(np.arange(cells), taus.size)
    target = TARGETS[cell % TARGETS.size]
    g0 = target * (1.0 + 0.001 * rng.uniform(-1, 1, cells))[cell]
    shift = (-A * np.log(tau) + (B * np.log(tau) + C) * rng.standard_normal(tau.size)) / US
    return pd.DataFrame({"row": cell // 64, "col": cell % 64, "target": target, "acceptance": 0.002,
                         "converged": True, "g0": g0, "t_prog": 100.0 + cell, "tau": tau, "g": g0 + shift,
                         "t": 100.0 + cell + tau})


# -- forming -----------------------------------------------------------------------------------------

def test_forming_stats_match_the_drawn_distribution():
    s = forming_stats(forming_table(400, unformed=20))
    n = 380
    assert s["n_cells"] == 400 and s["n_formed"] == n
    assert s["yield"] == pytest.approx(0.95)
    assert abs(s["v_form_mean"] - 3.17) < 4 * 0.075 / math.sqrt(n)
    assert abs(s["v_form_std"] - 0.075) < 4 * 0.075 / math.sqrt(2 * (n - 1))
    assert 2.9 < s["v_form_min"] < s["v_form_mean"] < s["v_form_max"] < 3.45
    assert s["g_after_reset_median"] == pytest.approx(12e-6)


def test_forming_stats_exact_small_sample():
    df = forming_table(3).assign(v_form=[3.0, 3.2, 3.4])
    s = forming_stats(df)
    assert s["v_form_mean"] == pytest.approx(3.2) and s["v_form_std"] == pytest.approx(0.2)   # ddof = 1
    assert (s["v_form_min"], s["v_form_max"]) == (3.0, 3.4)


def test_forming_stats_nothing_formed_is_nan_safe():
    s = forming_stats(forming_table(10, unformed=10))
    assert s["yield"] == 0.0 and s["n_formed"] == 0
    assert math.isnan(s["v_form_mean"]) and math.isnan(s["v_form_std"]) and math.isnan(s["v_form_min"])


# -- switching ---------------------------------------------------------------------------------------

def test_switching_voltages_of_hand_made_loops():
    rng = np.random.default_rng(4)
    iv = pd.concat([
        iv_loop(0, 0, 1, 0.8, -0.9),
        iv_loop(0, 0, 2, 1.0, -1.1, nonlinear=True, noise=0.01, rng=rng),
        iv_loop(0, 1, 1, None, -0.9, noise=0.01, rng=rng),   # no SET in this cycle: NaN, not a noise step
        iv_loop(1, 0, 1, 0.8, -1.0, width=0.4),              # gradual (analog) switching: the log midpoint
    ], ignore_index=True)
    iv.insert(0, "seq", np.arange(len(iv)))
    sw = switching_voltages(iv.sample(frac=1.0, random_state=0))   # row order must not matter (seq does)
    assert list(sw[["row", "col", "cycle"]].itertuples(index=False, name=None)) == [(0, 0, 1), (0, 0, 2), (0, 1, 1),
                                                                                  (1, 0, 1)]
    assert sw["v_set"].iloc[0] == pytest.approx(0.8) and sw["v_reset"].iloc[0] == pytest.approx(-0.9)
    assert sw["v_set"].iloc[1] == pytest.approx(1.0) and sw["v_reset"].iloc[1] == pytest.approx(-1.1)
    assert math.isnan(sw["v_set"].iloc[2]) and sw["v_reset"].iloc[2] == pytest.approx(-0.9)
    assert sw["g_hrs"].iloc[0] == pytest.approx(10e-6) and sw["g_lrs"].iloc[0] == pytest.approx(90e-6)
    assert sw["on_off"].iloc[0] == pytest.approx(9.0)
    # gradual: the midpoint lies exactly on a sweep point, so the answer is good to one 20 mV step
    assert sw["v_set"].iloc[3] == pytest.approx(0.8, abs=0.021)
    assert sw["v_reset"].iloc[3] == pytest.approx(-1.0, abs=0.021)
    st = switching_stats(sw)
    assert st["n_cycles"] == 4 and st["n_cells"] == 3
    assert st["v_set_mean"] == pytest.approx(sw["v_set"].mean()) and st["set_fraction"] == pytest.approx(3 / 4)
    assert st["v_reset_mean"] == pytest.approx(sw["v_reset"].mean()) and st["reset_fraction"] == 1.0
    assert st["v_reset_std"] == pytest.approx(sw["v_reset"].std(ddof=1))


# -- open loop ---------------------------------------------------------------------------------------

def test_open_loop_deterministic_soft_bounds_gives_known_states():
    devices = [(0, 0, 0.074, 0.117), (0, 1, 0.05, 0.2), (1, 0, 0.1, 0.08)]
    df = pd.concat([soft_bounds_trace(r, c, sp, sm) for r, c, sp, sm in devices], ignore_index=True)
    steady = open_loop_metrics(df, sp_steps=100)
    for (_, _, sp, sm), m in zip(devices, steady.itertuples(), strict=True):
        d = fixed_point_step(sp, sm, 80e-6)
        g_low = 90e-6 - d / sp                           # read after the RESET of a steady pair
        assert m.g_max == pytest.approx(90e-6, rel=1e-9) and m.g_min == pytest.approx(10e-6, rel=1e-9)
        assert m.delta_g_sp == pytest.approx(d, rel=1e-6)
        assert m.n_states == pytest.approx((sp + sm - sp * sm) / (sp * sm), rel=1e-6)
        assert m.g_sp == pytest.approx(g_low + d / 2, rel=1e-6)
        assert m.sp_skew == pytest.approx((90e-6 - (g_low + d / 2)) / 80e-6, rel=1e-6)
        assert m.nsr < 1e-6
    assert steady["n_states"].iloc[0] == pytest.approx(21.06, abs=0.01)   # arXiv 2502.04524: ≈ 22
    # default: every step of the alternating part, including the approach from Gmin
    # (the approach to the steady pair makes the steps unequal: a noise-to-signal ratio without any noise)
    full = open_loop_metrics(df)
    assert np.allclose(full["delta_g_sp"], steady["delta_g_sp"], rtol=0.05)
    assert ((full["nsr"] > 0.02) & (full["nsr"] < 0.2)).all()
    stats = open_loop_stats(steady)
    assert stats["n_devices"] == 3 and stats["n_states_mean"] == pytest.approx(steady["n_states"].mean())


def test_open_loop_noise_to_signal_and_custom_blocks():
    rng = np.random.default_rng(5)
    sp, sm = 0.074, 0.117
    d = fixed_point_step(sp, sm, 80e-6)
    blocks = ((1, 200), (-1, 200))
    df = pd.concat([soft_bounds_trace(0, k, sp, sm, sigma=0.5 * d, blocks=blocks, alternating=2000, rng=rng)
                    for k in range(8)], ignore_index=True)
    m = open_loop_metrics(df, blocks=blocks, alternating=2000, sp_steps=1800)
    # δ = deterministic step + sign·σξ: std(δ)/ΔG_sp ≈ 0.5 (2,000 steps: sampling error ≈ 2 %/device)
    assert m["nsr"].mean() == pytest.approx(0.5, rel=0.1)
    assert m["n_states"].mean() == pytest.approx(80e-6 / d, rel=0.1)
    assert len(open_loop_metrics(df.iloc[:0])) == 0


# -- program-verify ----------------------------------------------------------------------------------

@pytest.mark.parametrize("acceptance", [0.002, 0.02])
def test_program_verify_uniform_window_gives_slope_ar_over_sqrt3(acceptance):
    s = program_verify_stats(programmed_table(acceptance, fail=0.05))
    # σ of a uniform ±AR·G window is AR·G/√3; 35 targets × ~190 cells: slope to ~1 % (4 % allowed)
    assert s["slope"] == pytest.approx(acceptance / math.sqrt(3), rel=0.04)
    assert abs(s["intercept_uS"]) < max(4 * s["intercept_se_uS"], 1e-3 * acceptance * US * 1e-4)
    assert abs(s["slope"] - acceptance / math.sqrt(3)) < 4 * s["slope_se"]
    assert s["success_rate"] == pytest.approx(0.95, abs=0.01)
    assert s["n_targets"] == 35 and s["n_cells"] == 35 * 200
    assert 15 < s["mean_iterations"] < 25 and s["median_iterations"] <= 40   # failures (1000) excluded
    per = s["per_target"]
    assert per["sigma"].iloc[-1] == pytest.approx(acceptance * 88e-6 / math.sqrt(3), rel=0.15)


def test_program_verify_by_acceptance_keys_and_targets_argument():
    both = pd.concat([programmed_table(0.02, 20), programmed_table(0.002, 20)], ignore_index=True)
    by = program_verify_by_acceptance(both)
    assert list(by) == ["0.2%", "2%"]
    assert by["2%"]["acceptance"] == 0.02 and by["0.2%"]["n_cells"] == 700
    jittered = programmed_table(0.02, 20).assign(target=lambda d: d["target"] * (1 + 1e-9 * np.arange(len(d))))
    assert program_verify_stats(jittered)["n_targets"] > 35                  # raw target values
    assert program_verify_stats(jittered, targets=TARGETS)["n_targets"] == 35  # nearest given target
    assert [acceptance_label(a) for a in (0.002, 0.02, 0.007, 0.1, 0.0005)] == ["0.2%", "2%", "0.7%", "10%", "0.05%"]


def test_program_verify_nothing_converged_is_nan_safe():
    s = program_verify_stats(programmed_table(0.02, 3, fail=1.0))
    assert s["success_rate"] == 0.0 and s["n_converged"] == 0
    assert math.isnan(s["mean_iterations"]) and math.isnan(s["slope"]) and math.isnan(s["intercept_uS"])
    empty = program_verify_stats(programmed_table(0.02, 3).iloc[:0])
    assert math.isnan(empty["success_rate"]) and empty["n_targets"] == 0


# -- number of states --------------------------------------------------------------------------------

def test_gaussian_overlap_is_exact():
    assert gaussian_overlap(0.0, 1.0, 0.0, 1.0) == pytest.approx(1.0)
    assert gaussian_overlap(0.0, 1.0, 2.0, 1.0) == pytest.approx(2 * norm.cdf(-1.0))
    numeric, _ = quad(lambda x: min(norm.pdf(x, 0, 1), norm.pdf(x, 1.5, 0.4)), -10, 10, points=[0.8, 1.5, 2.2])
    assert gaussian_overlap(0.0, 1.0, 1.5, 0.4) == pytest.approx(numeric, rel=1e-6)
    assert gaussian_overlap(1.5, 0.4, 0.0, 1.0) == pytest.approx(numeric, rel=1e-6)
    assert gaussian_overlap(0.0, 0.01, 50.0, 0.01) < 1e-12


def test_number_of_states_paper_35_targets_at_10_minutes():
    pitch = TARGETS[1] - TARGETS[0]                     # 2.32 µS
    table = pd.DataFrame({"target": TARGETS, "g_mean": TARGETS, "sigma": 0.70e-6})
    paper = number_of_states(table)
    assert paper["adjacent_overlap_max"] == pytest.approx(0.096, abs=0.005)   # paper: 9.6 % after 10 min
    assert paper["n_states"] == 35 and paper["n_targets"] == 35
    wide = number_of_states(table.assign(sigma=1.2e-6))
    # adjacent overlap 2Φ(−pitch/2σ) ≈ 0.33 > 0.1, next-but-one ≈ 0.05 < 0.1 → every other target
    assert wide["adjacent_overlap_mean"] == pytest.approx(2 * norm.cdf(-pitch / 2.4e-6), rel=1e-6)
    assert wide["n_states"] == 18
    quadrature = number_of_states(table.assign(sigma=0.0), extra_sigma=0.70e-6)
    assert quadrature["adjacent_overlap_max"] == pytest.approx(paper["adjacent_overlap_max"])
    raw = number_of_states(programmed_table(0.002, 10))      # from result rows: tiny σ → all distinct
    assert raw["n_states"] == 35 and raw["adjacent_overlap_max"] < 1e-6


# -- retention ---------------------------------------------------------------------------------------

def test_retention_stats_at_1h_and_10y():
    df = retention_table()
    s = retention_stats(df)
    assert set(s) == {"1h", "10y"}
    n = 2000
    for label, tau in (("1h", 3600.0), ("10y", TEN_YEARS)):
        sigma = B * math.log(tau) + C
        assert s[label]["n"] == n
        assert abs(s[label]["mean_shift_uS"] + A * math.log(tau)) < 4 * sigma / math.sqrt(n)
        assert abs(s[label]["sigma_uS"] - sigma) < 4 * sigma / math.sqrt(2 * (n - 1))
    assert s["1h"]["mean_shift_uS"] == pytest.approx(-0.73, abs=0.05)
    assert s["10y"]["sigma_uS"] == pytest.approx(1.23, abs=0.05)
    # a generic τ gets a generic label; reads farther than the factor are not used
    short = retention_stats(retention_table(50, horizon=1e6), taus=(250.0, TEN_YEARS))
    assert short["250s"]["n"] == 50 and short["10y"]["n"] == 0 and short["10y"]["mean_shift_uS"] != 0.0
    assert math.isnan(short["10y"]["mean_shift_uS"])
    assert tau_label(600.0) == "10min" and tau_label(86400.0) == "1d"


def test_reads_at_picks_the_nearest_read_in_log_time():
    df = pd.DataFrame({"row": 0, "col": 0, "t_prog": 0.0, "target": 5e-5, "g0": 5e-5,
                       "tau": [1000.0, 2500.0, 5000.0], "g": [4.9e-5, 4.8e-5, 4.7e-5], "t": 0.0})
    pick = reads_at(df, 3600.0)
    assert pick["tau"].tolist() == [5000.0]            # |ln(5000/3600)| = 0.33 < |ln(2500/3600)| = 0.36
    assert pick["shift"].iloc[0] == pytest.approx(-0.3e-5)
    assert len(reads_at(df, 3600.0, factor=1.3)) == 0


def test_relaxation_fit_recovers_the_aihwkit_law():
    curve = relaxation_curve(retention_table(400))
    assert curve["tau"].is_monotonic_increasing and (curve["n"] >= 400).all()
    fit = fit_relaxation(curve)
    coeff = fit.as_uS()
    assert coeff["a_uS"] == pytest.approx(A, rel=0.05)
    assert coeff["b_uS"] == pytest.approx(B, rel=0.08)
    assert coeff["c_uS"] == pytest.approx(C, rel=0.05)
    assert abs(coeff["a_uS"] - A) < 5 * coeff["a_se_uS"]
    mean, sigma = extrapolate(fit, TEN_YEARS)
    assert mean * US == pytest.approx(-1.74, abs=0.1) and sigma * US == pytest.approx(1.23, abs=0.08)
    assert RelaxationFit.from_mapping(coeff).b == pytest.approx(fit.b)
    assert math.isnan(fit_relaxation(curve.iloc[:1]).a)


# -- MVM ---------------------------------------------------------------------------------------------

def test_read_noise_formula_matches_device_model():
    # arXiv 2502.04524: 0.17 µS (1 s), 0.22 µS (1 h), 0.27 µS (10 y) at 50 µS
    for t, expected in ((1.0, 0.17), (3600.0, 0.22), (TEN_YEARS, 0.27)):
        assert read_noise_sigma(50e-6, t) * US == pytest.approx(expected, abs=0.006)


def test_mvm_rmse_matches_device_model_recomputation():
    r = mvm_error(0.002, AIHWKIT_RELAXATION, times=(0.0, 1.0, 3600.0, TEN_YEARS), repeats=20)
    rmse = r["rmse_by_time"]
    # §7 recomputation (20 repeats, no I/O quantization): 0.007, 0.052, 0.122, 0.246. Seed-to-seed
    # spread of our 20-repeat RMSE is ≈ 0.5 %, the reference has as much Monte Carlo error plus up to 1 %
    # from 3-digit rounding: 4 % covers both, yet fails a wrong law (no read noise: 1 s → 0.0485, −7 %;
    # mean drift omitted: 10 y → 0.146).
    assert rmse["1s"] == pytest.approx(0.052, rel=0.04)
    assert rmse["1h"] == pytest.approx(0.122, rel=0.04)
    assert rmse["10y"] == pytest.approx(0.246, rel=0.04)
    assert rmse["0s"] == pytest.approx(0.007, abs=0.001)
    for t, e in zip(r["times"], r["rmse"], strict=True):
        assert e == pytest.approx(expected_rmse(PUBLISHED_PROGRAMMING_NOISE[0.002], AIHWKIT_RELAXATION, t), rel=0.05)
    wide = mvm_error(0.02, times=(1.0,), repeats=20)
    assert wide["rmse"][0] == pytest.approx(0.088, rel=0.04)
    assert mvm_error(0.002, times=(1.0,))["rmse"] == mvm_error(0.002, times=(1.0,))["rmse"]   # seeded


def test_mvm_takes_measured_fits():
    stats = program_verify_stats(programmed_table(0.002, 50))
    fit = fit_relaxation(relaxation_curve(retention_table(200)))
    r = mvm_error(stats, fit, times=(1.0, TEN_YEARS), repeats=5)
    assert r["programming_noise"]["slope"] == pytest.approx(0.002 / math.sqrt(3), rel=0.1)
    assert r["rmse"][0] == pytest.approx(0.052, rel=0.15) and r["rmse"][1] == pytest.approx(0.246, rel=0.15)
    no_relax = mvm_error(ProgrammingNoise(0.0, 0.0), {"a": 0.0, "b": 0.0, "c": 0.0}, times=(1.0,), read_noise=False)
    assert no_relax["rmse"][0] < 1e-12


# -- summary -----------------------------------------------------------------------------------------

def endurance_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three cells, checkpoints 1, 10, 100: (0,0) and (0,1) keep a 80/10 µS and 60/20 µS window; (0,2)
    closes to 30/25 µS from cycle 10 and fails there."""
    rows = []
    for col, (lrs, hrs) in enumerate(((80e-6, 10e-6), (60e-6, 20e-6))):
        rows += [{"row": 0, "col": col, "cycle": c, "g_lrs": lrs, "g_hrs": hrs, "t": float(c)} for c in (1, 10, 100)]
    rows += [{"row": 0, "col": 2, "cycle": 1, "g_lrs": 70e-6, "g_hrs": 10e-6, "t": 1.0},
             {"row": 0, "col": 2, "cycle": 10, "g_lrs": 30e-6, "g_hrs": 25e-6, "t": 10.0}]
    result = pd.DataFrame({"row": [0, 0, 0], "col": [0, 1, 2], "cycles_done": [100, 100, 10],
                           "failed": [False, False, True], "failed_at": [0, 0, 10]})
    return pd.DataFrame(rows), result


def test_endurance_stats_and_window_by_cycle():
    df, result = endurance_tables()
    s = endurance_stats(df, result)
    assert s["n_cells"] == 3 and s["cycles_max"] == 100
    assert s["g_lrs_first"] == pytest.approx(70e-6) and s["g_hrs_first"] == pytest.approx(10e-6)
    assert s["on_off_first"] == pytest.approx(7.0)                      # median of 8, 3, 7
    assert s["g_lrs_last"] == pytest.approx(60e-6) and s["on_off_last"] == pytest.approx(3.0)   # 8, 3, 1.2
    assert s["failed_fraction"] == pytest.approx(1 / 3) and s["failed_at_median"] == 10.0
    w = window_by_cycle(df)
    assert w["cycle"].tolist() == [1, 10, 100] and w["n"].tolist() == [3, 3, 2]
    assert w["g_hrs"].tolist() == pytest.approx([10e-6, 20e-6, 15e-6])
    assert w["g_lrs_p10"].iloc[1] == pytest.approx(36e-6)               # 30 + 0.2·(60 − 30) µS
    assert endurance_stats(df.iloc[:0]) == {"n_cells": 0}


def all_tables() -> dict[str, pd.DataFrame]:
    iv = pd.concat([iv_loop(0, c, 1, 0.8, -0.9) for c in range(3)], ignore_index=True)
    iv.insert(0, "seq", np.arange(len(iv)))
    pv = pd.concat([programmed_table(0.02, 4), programmed_table(0.002, 4)], ignore_index=True)
    trains = pd.concat([soft_bounds_trace(0, c, 0.074, 0.117) for c in range(2)], ignore_index=True)
    endurance, endurance_result = endurance_tables()
    return {"forming": forming_table(32), "iv_sweep": iv, "program_verify_result": pv,
            "retention": retention_table(70), "pulse_train": trains, "endurance": endurance,
            "endurance_result": endurance_result}


def _plain(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


def test_summary_keys_and_json():
    s = summarize(all_tables())
    assert set(s) == {"forming", "switching", "open_loop", "program_verify", "retention", "endurance", "mvm"}
    assert s["endurance"]["failed_fraction"] == pytest.approx(1 / 3)
    assert s["forming"]["yield"] == 1.0
    assert s["forming"]["v_form_mean"] == pytest.approx(3.17, abs=0.05) and 0 < s["forming"]["v_form_std"] < 0.15
    for label, ar in (("0.2%", 0.002), ("2%", 0.02)):
        pv = s["program_verify"][label]
        assert pv["sigma_slope"] == pytest.approx(ar / math.sqrt(3), rel=0.3)
        assert {"sigma_intercept_uS", "mean_iterations", "success_rate"} <= set(pv)
    assert set(s["retention"]["mean_shift_uS"]) == {"1s", "1h", "10y"} == set(s["retention"]["sigma_uS"])
    assert s["retention"]["mean_shift_uS"]["10y"] == pytest.approx(-1.74, abs=0.3)
    assert s["switching"]["v_set_mean"] == pytest.approx(0.8)
    assert s["open_loop"]["n_states_mean"] == pytest.approx(20, abs=2)
    assert set(s["mvm"]) == {"0.2%"} and set(s["mvm"]["0.2%"]["rmse"]) == {"1s", "1h", "1d", "10y"}
    assert set(s["mvm"]["0.2%"]["source"].values()) == {"measured"}
    assert _plain(s)
    json.dumps(s, allow_nan=False)


def test_summary_omits_missing_tables_and_maps_nan_to_none():
    s = summarize({"forming": forming_table(5, unformed=5)})
    assert set(s) == {"forming"}
    assert s["forming"]["yield"] == 0.0 and s["forming"]["v_form_mean"] is None
    s = summarize({"program_verify_result": programmed_table(0.02, 3, fail=1.0)})
    assert set(s) == {"program_verify"}
    assert s["program_verify"]["2%"]["success_rate"] == 0.0 and s["program_verify"]["2%"]["sigma_slope"] is None
    json.dumps(s, allow_nan=False)
    assert summarize({}) == {}
    assert jsonable({"x": np.float32(1.5), "y": [np.int64(2), float("inf")], "z": pd.DataFrame()}) == \
        {"x": 1.5, "y": [2, None]}


def test_summary_reads_a_run_file(tmp_path):
    path = tmp_path / "run.h5"
    df = forming_table(8)
    with RunWriter(path, metadata=RunMetadata(seed=1)) as run:
        table = run.table("forming", {"row": ("i4", "", ""), "col": ("i4", "", ""), "v_form": ("f8", "V", ""),
                                      "formed": (bool, "bool", ""), "i_form": ("f8", "A", ""),
                                      "attempts": ("i4", "", ""), "g_after_reset": ("f8", "S", ""),
                                      "t": ("f8", "s", "")})
        for rec in df.drop(columns="seq").to_dict("records"):
            table.append(rec)
    s = summarize(path)
    assert s["forming"]["v_form_mean"] == pytest.approx(df["v_form"].mean())
    assert [p.name for p in save_report_figures(path, tmp_path / "fig")] == ["forming.png"]


# -- plots -------------------------------------------------------------------------------------------

def test_plot_functions_return_figures_with_expected_content():
    t = all_tables()
    fig = plot_forming(t["forming"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and len(fig.axes[1].lines) == 1
    fig = plot_iv_loops(t["iv_sweep"])
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3 and fig.axes[0].get_yscale() == "log"
    fig = plot_open_loop(t["pulse_train"])
    assert len(fig.axes[0].lines) == 2
    fig = plot_programming_noise(t["program_verify_result"])
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 6       # 2 acceptances × (data, fit, published)
    fig = plot_programmed_cdfs(t["program_verify_result"])
    assert len(fig.axes) == 2 and all(len(ax.lines) == 35 for ax in fig.axes)
    fig = plot_relaxation(t["retention"])
    assert len(fig.axes) == 2 and all(len(ax.lines) == 3 for ax in fig.axes)
    assert len(plot_relaxation(t["retention"], published=False).axes[0].lines) == 2
    fig = plot_mvm_rmse({"a": mvm_error(0.002, times=(0.0, 1.0, 3600.0)), "b": mvm_error(0.02, times=(1.0,))})
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[0].lines[0].get_xdata()) == 2   # t = 0 left off
    fig = plot_endurance(t["endurance"])
    lrs, hrs = (np.asarray(line.get_ydata(), float) for line in fig.axes[0].lines)
    assert lrs == pytest.approx([70, 60, 70]) and hrs == pytest.approx([10, 20, 15])        # medians in µS


def test_save_report_figures_writes_pngs(tmp_path):
    paths = save_report_figures(all_tables(), tmp_path / "report")
    names = sorted(p.name for p in paths)
    assert names == sorted(["forming.png", "iv_loops.png", "switching_voltages.png", "open_loop.png",
                            "programming_noise.png", "endurance.png", "programmed_cdfs.png", "iterations.png",
                            "relaxation.png", "retention_levels.png", "retention_cdfs.png", "mvm_rmse.png"])
    for p in paths:
        assert Path(p).is_file() and Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_report_figures({"retention": retention_table(5).iloc[:0]}, tmp_path / "empty") == []


def test_extrapolated_spread_is_withheld_when_the_fit_goes_negative():
    """Three seconds of data whose spread shrinks: σ(10 y) = b·ln τ + c < 0 is no figure (null)."""
    from rramlab.analysis.summary import summarize

    rng = np.random.default_rng(0)
    z = rng.standard_normal(40)
    df = pd.DataFrame([{"row": 0, "col": k, "target": 50e-6, "g0": 50e-6, "t_prog": 0.0, "tau": tau,
                        "g": 50e-6 + z[k] * 1e-6 * (1.0 - 0.4 * np.log(tau)), "t": tau}
                       for k in range(40) for tau in (1.0, 2.0, 3.0)])
    r = summarize({"retention": df})["retention"]
    assert r["fit"]["b_uS"] < 0 and r["extrapolated_10y"]["sigma_uS"] is None
    assert r["extrapolated_10y"]["mean_shift_uS"] < 0                   # the mean still extrapolates


# -- figures from what was measured -------------------------------------------------------------------------------

def test_mvm_from_measured_reads_marks_extrapolation_and_gaps():
    short = retention_table(400, horizon=86400.0)                    # reads from 1 s to 1 day only
    fit = fit_relaxation(relaxation_curve(short))
    noise = ProgrammingNoise(0.001, 0.0)
    r = mvm_error_measured(short, noise, fit, times=(1.0, 3600.0, TEN_YEARS), vectors=200, repeats=2)
    assert r["source_by_time"] == {"1s": "measured", "1h": "measured", "10y": "extrapolated"}
    # measured: the deviations already hold every noise; E = √(size/3·E[e²]) with e = 2δ/span (uniform inputs)
    reads = reads_at(short[short["converged"]], 3600.0)
    delta = (reads["g"] - reads["target"]).to_numpy(float)
    expected = math.sqrt(64 / 3 * np.mean((2 * delta / (G_MAX - G_MIN)) ** 2))
    assert r["rmse_by_time"]["1h"] == pytest.approx(expected, rel=0.05)
    late = short[short["tau"] > 100.0]                                # nothing read near 1 s
    gap = mvm_error_measured(late, noise, fit, times=(1.0, 3600.0))
    assert gap["source_by_time"]["1s"] == "not measured" and gap["rmse_by_time"]["1s"] is None
    assert math.isnan(gap["rmse"][0]) and gap["rmse_by_time"]["1h"] > 0
    unconverged = short.assign(converged=False)
    assert mvm_error_measured(unconverged, noise, fit, times=(3600.0,))["source_by_time"]["1h"] == "not measured"


def test_retention_of_an_older_file_takes_acceptance_and_converged_from_the_programming_rows():
    ret = retention_table(3).drop(columns=["acceptance", "converged"])
    events = ret.drop_duplicates(["row", "col", "t_prog"])
    pv = pd.DataFrame({"row": events["row"], "col": events["col"], "t_done": events["t_prog"], "acceptance": 0.02,
                       "converged": [True, False, True]})
    out = annotate_retention(ret, pv)
    by_cell = out.groupby("col")["converged"].first().tolist()
    assert by_cell == [True, False, True] and (out["acceptance"] == 0.02).all() and len(out) == len(ret)
    assert not annotate_retention(ret, None)["converged"].any()


def test_levels_in_window_packs_levels_at_the_overlap_criterion():
    d = 2 * 0.8e-6 * 1.6448536269514722            # equal spreads: 2Φ(−d/2σ) = 0.1
    assert levels_in_window(lambda g: 0.8e-6, 10e-6, 85e-6) == int(75e-6 // d) + 1
    # σ ∝ G: level k+1 sits at g·(1 + zσ)/(1 − zσ); count them with a plain loop
    z, rel, g, n = 1.6448536269514722, 0.01, 10e-6, 1
    while True:
        nxt = g * (1 + z * rel) / (1 - z * rel)
        if nxt > 85e-6:
            break
        g, n = nxt, n + 1
    assert abs(levels_in_window(lambda x: rel * x, 10e-6, 85e-6) - n) <= 1
    assert levels_in_window(lambda g: float("nan"), 10e-6, 85e-6) == 0


def test_the_summary_reads_only_the_tables_it_needs():
    """A lazy mapping (the CLI's) is read by key: the per-point tables (1.6 M forming_sweep rows on a 64×64 die)
    are never loaded for the summary (a Mapping's items() would have read every table)."""
    from rramlab.analysis.plugins import LazyTables

    tables = all_tables()
    read: list[str] = []

    def reader(name: str) -> pd.DataFrame:
        read.append(name)
        return tables[name] if name in tables else pd.DataFrame({"x": [1.0]})

    summarize(LazyTables([*tables, "forming_sweep", "program_verify"], reader))
    assert "forming_sweep" not in read and "program_verify" not in read
    assert sorted(set(read)) == sorted(tables) and len(read) == len(set(read))     # each once
