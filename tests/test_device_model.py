"""Model-level validation of the CMO/HfOx array model against the validation targets V1-V4 (arXiv 2502.04524)
and the read noise.

Every statistical target runs for three seeds.  Conventions used throughout:

* Pulses are applied through the access transistor at the bench's pulse gate voltage
  (``P.pulse_gate_voltage`` = 3.3 V), as the instruments apply them; V_ref± are the cell voltages of the
  nominal pulses at the symmetry point through that gate, so nominal pulses give f = 1 there.
* Verify reads integrate over 20 ms and follow each pulse by 25 ms on the virtual clock.
* V2 metrics (paper definitions as documented in arXiv 2502.04524): per device, Gmax / Gmin are the
  means of the last 50 reads of the two SET / RESET blocks, Gsp the mean of the last 100 reads,
  ΔG_sp the mean pulse-direction-signed step ``δ = ±ΔG`` over the alternating part,
  NSR = std(δ)/mean(δ), n_states = (Gmax - Gmin)/ΔG_sp, SP_skew = (Gmax - Gsp)/(Gmax - Gmin).
* V3 σ_prog is the spread of the accepted (final) verify reads per target: the distribution the paper
  plots "during programming"; later reads add relaxation (V4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rramlab.simulator.device_model import STUCK_HRS, STUCK_LRS, ArrayModel
from rramlab.simulator.device_params import PROFILES, DeviceParameters

SEEDS = [20250206, 1, 2]
P = DeviceParameters()
US = 1e-6
T_READ = 20e-3      # verify-read integration time (1 NPLC), s
T_STEP = 25e-3      # virtual time per pulse + verify read, s
PULSE = 2.5e-6      # s


# ----------------------------------------------------------------------------------------- helpers
def form_all(model: ArrayModel, t: float = 0.0) -> float:
    """Quasi-static forming staircase (3.0-3.6 V, 10 mV / 20 ms, V_G = 1.2 V), then one -1.4 V RESET."""
    idx = np.arange(model.size)
    for v in np.arange(3.0, 3.605, 0.01):
        t += 0.02
        model.apply_bias(idx, v, 1.2, 0.02, t)
    t += 1.0
    model.apply_bias(idx, -1.4, P.pulse_gate_voltage, PULSE, t)
    return t + 1.0


def band_voltages(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§5 SET / RESET amplitudes for each target conductance (S)."""
    v_set = np.where(target >= P.band_high_edge, P.set_voltage_high, P.set_voltage)
    v_reset = np.where(target < P.band_low_edge, P.reset_voltage_low, P.reset_voltage)
    return v_set, v_reset


def program_verify(model: ArrayModel, cells: np.ndarray, target: np.ndarray, acceptance: float, t: float,
                   max_iter: int = P.verify_max_iterations) -> dict[str, np.ndarray | float]:
    """§5 identical-pulse loop, all cells in lockstep on the virtual clock.

    Returns accepted reads (S), pulse counts, convergence flags and the end time."""
    v_set, v_reset = band_voltages(target)
    accepted = np.full(cells.size, np.nan)
    pulses = np.zeros(cells.size, dtype=int)
    todo = np.arange(cells.size)
    for _ in range(max_iter + 1):
        g = model.conductance(cells[todo], t, T_READ)
        tgt = target[todo]
        low, high = g < tgt * (1 - acceptance), g > tgt * (1 + acceptance)
        ok = ~(low | high)
        accepted[todo[ok]] = g[ok]
        todo, low = todo[~ok], low[~ok]
        if todo.size == 0:
            break
        t += T_STEP
        model.apply_bias(cells[todo], np.where(low, v_set[todo], v_reset[todo]), P.pulse_gate_voltage, PULSE, t)
        pulses[todo] += 1
    return {"accepted": accepted, "pulses": pulses, "converged": ~np.isnan(accepted), "t": t}


def pick_cells(model: ArrayModel, targets: np.ndarray, per_target: int) -> tuple[np.ndarray, np.ndarray]:
    """Assign distinct cells whose window holds the target (>= 1 µS inside the §12.4 clip window),
    as any experiment that reaches all 35 targets selects working devices."""
    free = np.ones(model.size, dtype=bool)
    cells, tgts = [], []
    for g in targets:
        ok = free & (model.g_min - P.clip_margin + 1 * US <= g) & (model.g_max + P.clip_margin - 1 * US >= g)
        chosen = np.flatnonzero(ok)[:per_target]
        assert chosen.size == per_target, "cell pool too small"
        free[chosen] = False
        cells.append(chosen)
        tgts.append(np.full(per_target, g))
    return np.concatenate(cells), np.concatenate(tgts)


# ----------------------------------------------------------------------------------------- measurements
def measure_v1(seed: int, cells: int = 128) -> dict[str, float]:
    """V1: forming voltage from a 0-4 V staircase (10 mV, 20 ms, V_G = 1.2 V), current jump > 1 µA."""
    model = ArrayModel(1, cells, P, np.random.default_rng(seed))
    idx = np.arange(cells)
    v_form = np.full(cells, np.nan)
    for step, v in enumerate(np.arange(0.01, 4.0001, 0.01)):
        model.apply_bias(idx, v, 1.2, 0.02, 0.02 * (step + 1))
        current = model.transistor(model.true_conductance(), np.full(cells, v), 1.2, np.zeros(cells, bool))[1]
        v_form[np.isnan(v_form) & (current > 1e-6)] = v
    return {"mean": float(np.nanmean(v_form)), "std": float(np.nanstd(v_form, ddof=1)),
            "formed": float(np.isfinite(v_form).mean()),
            "i_after_max": float(current.max())}


def measure_v2(seed: int, cells: int = 64, v_gate: float = P.pulse_gate_voltage) -> dict[str, float]:
    """V2: 400 SET / 400 RESET / 400 SET / 400 RESET / 500 alternating pulses (2,100 in all)."""
    model = ArrayModel(1, cells, P, np.random.default_rng(seed))
    t = form_all(model)
    idx = np.arange(cells)
    signs = np.concatenate([np.ones(400), -np.ones(400), np.ones(400), -np.ones(400),
                            np.tile([1.0, -1.0], 250)])
    reads = np.empty((signs.size + 1, cells))
    reads[0] = model.conductance(idx, t, T_READ)
    for k, s in enumerate(signs):
        t += T_STEP
        model.apply_bias(idx, P.set_voltage if s > 0 else P.reset_voltage, v_gate, PULSE, t)
        reads[k + 1] = model.conductance(idx, t + 2e-3, T_READ)
    g = reads[1:] / US
    gmax = 0.5 * (g[350:400].mean(0) + g[1150:1200].mean(0))
    gmin = 0.5 * (g[750:800].mean(0) + g[1550:1600].mean(0))
    gsp = g[-100:].mean(0)
    dg = np.diff(reads[1600:], axis=0) / US                 # steps of pulses 1601..2100
    delta = dg * signs[1600:, None]
    dgsp = delta.mean(0)
    n_states = (gmax - gmin) / dgsp
    return {"gmax": float(gmax.mean()), "gmin": float(gmin.mean()), "gsp": float(gsp.mean()),
            "dgsp": float(dgsp.mean()), "dgsp_abs": float(np.abs(dg).mean()),
            "n_states": float(n_states.mean()), "n_states_median": float(np.median(n_states)),
            "nsr": float((delta.std(0, ddof=1) / dgsp).mean()),
            "sp_skew": float(((gmax - gsp) / (gmax - gmin)).mean())}


def measure_v3(seed: int, acceptance: float, per_target: int = 20) -> dict[str, float]:
    """V3: program-verify to 35 targets 9-88 µS; σ_prog(G) fit and iteration counts."""
    model = ArrayModel(40, 40, P, np.random.default_rng(seed))
    t = form_all(model)
    targets = np.linspace(9.0, 88.0, 35) * US
    cells, target = pick_cells(model, targets, per_target)
    res = program_verify(model, cells, target, acceptance, t)
    conv = res["converged"]
    sig = np.array([np.std(res["accepted"][(target == g) & conv], ddof=1) for g in targets]) / US
    (slope, icpt), cov = np.polyfit(targets / US, sig, 1, cov=True)
    return {"slope": float(slope), "intercept": float(icpt), "intercept_se": float(math.sqrt(cov[1, 1])),
            "slope_se": float(math.sqrt(cov[0, 0])),
            "iter_mean": float(res["pulses"][conv].mean()),
            "iter_median": float(np.median(res["pulses"][conv])),
            "non_converged": float((~conv).mean())}


def measure_v4(seed: int, cells: int = 1600) -> dict[str, float]:
    """V4: cells verified to 50 µS (AR 2 %); read shifts from the accepted value at 10 min, 1 h, 10 y."""
    model = ArrayModel(1, cells, P, np.random.default_rng(seed))
    t = form_all(model)
    idx = np.arange(cells)
    res = program_verify(model, idx, np.full(cells, 50 * US), 0.02, t)
    conv = res["converged"]
    t_done = model.t_prog.max()
    out = {}
    for name, tau in (("10min", 600.0), ("1h", 3600.0), ("10y", 10 * 365.25 * 86400.0)):
        shift = (model.conductance(idx, t_done + tau, T_READ) - res["accepted"])[conv] / US
        out[f"mean_{name}"], out[f"std_{name}"] = float(shift.mean()), float(shift.std(ddof=1))
    out["overlap_10min"] = float(2 * 0.5 * math.erfc(2.3 / (2 * out["std_10min"]) / math.sqrt(2)))
    return out


def measure_read_noise(seed: int, t_int: float, cells: int = 2000) -> dict[str, float]:
    """Spread of read(t0 + τ) - read(t0) on cells unprogrammed for ~3 years, relative to the formula."""
    model = ArrayModel(1, cells, P, np.random.default_rng(seed))
    form_all(model)
    idx = np.arange(cells)
    t0 = 1e8
    out = {}
    prev = model.conductance(idx, t0, t_int)
    t = t0
    for name, tau in (("25ms", 25e-3), ("1s", 1.0), ("1h", 3600.0)):
        t += tau
        now = model.conductance(idx, t, t_int)
        amp = P.read_noise_k * np.log10(0.5 * (now + prev) / US)
        z = (now - prev) / amp
        out[name] = float(z.std(ddof=1) / math.sqrt(math.log((tau + t_int) / (2 * t_int))))
        out[f"abs_{name}_at50uS"] = float(z.std(ddof=1) * P.read_noise_k * math.log10(50) / US)
        prev = now
    return out


# ----------------------------------------------------------------------------------------- §13 targets
def within(value: float, target: float, rel: float) -> bool:
    return abs(value - target) <= rel * abs(target)


@pytest.mark.parametrize("seed", SEEDS)
def test_v1_forming_voltage(seed: int) -> None:
    r = measure_v1(seed)
    assert r["formed"] == 1.0                          # "paper" profile: 32/32 formed
    assert abs(r["mean"] - 3.17) <= 0.05, r
    assert within(r["std"], 0.075, 0.30), r
    assert r["i_after_max"] <= 0.5 * P.transconductance * (1.2 - P.threshold_voltage) ** 2 * 1.0001


@pytest.mark.parametrize("seed", SEEDS)
def test_v2_open_loop_statistics(seed: int) -> None:
    r = measure_v2(seed)
    assert within(r["n_states"], 22.0, 0.25), r
    assert within(r["nsr"], 0.90, 0.25), r
    assert within(r["sp_skew"], 0.61, 0.25), r
    assert within(r["gmax"], 90.0, 0.10), r
    assert 10.0 <= r["gmin"] <= 15.0, r
    assert 20.0 <= r["gsp"] <= 45.0, r


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("acceptance", "iterations"), [(0.02, (4.0, 30.0)), (0.002, (50.0, 250.0))])
def test_v3_program_verify(seed: int, acceptance: float, iterations: tuple[float, float]) -> None:
    r = measure_v3(seed, acceptance)
    if acceptance == 0.02:
        slope, icpt = P.prog_sigma_slope_coarse, P.prog_sigma_intercept_coarse / US
    else:
        slope, icpt = P.prog_sigma_slope_fine, P.prog_sigma_intercept_fine / US
    assert within(r["slope"], slope, 0.20), r
    # The published intercepts (0.8 nS, 11 nS) are far below what 35 targets × 20 cells can resolve: the
    # intercept's standard error from the fit is ~2-3 nS (0.2 %) / ~20-30 nS (2 %).  Require agreement within
    # three standard errors of our own fit.
    assert abs(r["intercept"] - icpt) <= 3.0 * r["intercept_se"], r
    assert iterations[0] <= r["iter_mean"] <= iterations[1], r   # paper: ≈ 10 (2 %), ≈ 90 (0.2 %)
    assert r["non_converged"] <= 0.05, r                          # within 1,000 pulses


@pytest.mark.parametrize("seed", SEEDS)
def test_v4_relaxation(seed: int) -> None:
    r = measure_v4(seed)
    # σ includes the read-noise difference (≈ 0.16 µS at 1 h, 0.22 µS at 10 y, in quadrature) and lacks the
    # relaxation already present at the accepted verify read (σ(25 ms) ≈ 0.19 µS): both within tolerance.
    assert within(r["mean_1h"], -0.73, 0.15), r
    assert within(r["mean_10y"], -1.74, 0.15), r
    assert within(r["std_1h"], 0.76, 0.15), r
    assert within(r["std_10y"], 1.23, 0.15), r
    assert 0.06 <= r["overlap_10min"] <= 0.14, r     # paper: 9.6 % at 2.3 µS pitch


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("t_int", [20e-3, 1e-6])
def test_read_noise_matches_formula(seed: int, t_int: float) -> None:
    r = measure_read_noise(seed, t_int)
    assert within(r["1s"], 1.0, 0.20), r
    assert within(r["1h"], 1.0, 0.20), r
    if t_int == 20e-3:   # V3 constraint: consecutive 20 ms reads 25 ms apart far below the 0.2 % band
        assert r["abs_25ms_at50uS"] < 0.05, r


# ----------------------------------------------------------------------------------------- mechanics
def _model(seed: int = 7, cells: int = 16, noise: bool = True, params: DeviceParameters = P) -> ArrayModel:
    return ArrayModel(1, cells, params, np.random.default_rng(seed), noise=noise)


def _script(model: ArrayModel) -> np.ndarray:
    """A fixed call sequence mixing vector and single-cell calls; returns all reads."""
    t = form_all(model)
    out = []
    for k in range(60):
        t += T_STEP
        cell = k % model.size
        v = 1.5 if k % 3 else -1.5
        if k % 2:   # size-1 arrays take the same single-cell path as scalars
            model.apply_bias(np.array([cell]), np.array([v]), np.array([4.0]), PULSE, t)
        else:
            model.apply_bias(np.array([cell]), v, np.inf, PULSE, t)
        model.apply_bias(np.arange(model.size), 1.35 if k % 2 else -1.3, 3.3, PULSE, t + 1e-3)
        out.append(model.conductance(np.array([cell]), t + 5e-3, T_READ))
        out.append(model.conductance(np.arange(model.size), t + 10e-3, T_READ))
    out.append(model.conductance(np.arange(model.size), t + 3600.0, T_READ))
    return np.concatenate(out)


def test_same_seed_same_results() -> None:
    a, b = _model(), _model()
    ra, rb = _script(a), _script(b)
    np.testing.assert_array_equal(ra, rb)
    np.testing.assert_array_equal(a.g_prog, b.g_prog)
    np.testing.assert_array_equal(a.noise_x, b.noise_x)
    assert not np.array_equal(ra, _script(_model(seed=8)))


def test_scalar_fast_path_equals_vector_path() -> None:
    a, b = _model(), _model()
    b._scalar_fast_path = False
    np.testing.assert_allclose(_script(a), _script(b), rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(a.g_prog, b.g_prog, rtol=1e-12)


def test_one_cell_entry_points_equal_the_array_calls() -> None:
    """``apply_bias_one``/``conductance_one`` (what the circuit calls for one routed cell) leave the same state and
    draws as ``apply_bias``/``conductance`` with a one-cell index: a read bias (disturb only), a sub-threshold
    bias on a pristine cell, a forming staircase held quasi-statically and as short non-final slices, SET and
    RESET pulses on a formed cell, a stuck cell (the vector path), reads in between."""
    a, b = _model(), _model()
    stuck = 5
    for m in (a, b):
        m.set_stuck(np.array([stuck]), "lrs", 0.0)
    steps = [(0.2, 3.3, 0.02, True), (0.9, 1.2, 0.02, True), (2.0, 1.2, 2e-4, False), (2.0, 1.2, 2e-4, True),
             *[(2.9 + 0.02 * k, 1.2, 0.02, True) for k in range(20)], (-1.4, 3.3, 0.02, True),
             (1.35, 3.3, 2.5e-6, True), (-1.3, 3.3, 2.5e-6, True), (0.2, 3.3, 0.02, False)]
    t = 0.0
    for cell in (3, stuck):
        for v, gate, width, final in steps:
            t += width
            a.apply_bias_one(cell, v, gate, width, t, hold=width, final=final)
            b.apply_bias(np.array([cell]), np.array([v]), np.array([gate]), width, t, hold=width, final=final)
            t += 0.02
            assert a.conductance_one(cell, t, T_READ) == b.conductance(np.array([cell]), t, T_READ)[0]
    assert not a.pristine[3]                                    # the staircase formed the cell
    for name in ("g_prog", "t_prog", "rel_walk", "rel_var", "noise_x", "pristine", "stuck"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.rng.random() == b.rng.random()                     # the same number of draws


def test_a_hold_ended_with_no_time_left_is_judged_once_and_alike_on_both_paths() -> None:
    """A short hold applied as non-final slices and ended by a zero-length final commit (a staircase step whose
    reading took its whole length) is judged by forming's pulse rule with its whole length: the one-cell and the
    array entry points draw alike and form the cell at the same step; a non-final zero-length call judges
    nothing; a formed cell draws nothing at a zero-length end."""
    a, b = _model(), _model()
    cell, t, formed_at = 9, 0.0, None
    for k in range(40):
        v = 2.6 + 0.025 * k
        for final, width in ((False, 2e-4), (False, 0.0), (True, 0.0)):
            t += width
            a.apply_bias_one(cell, v, 1.2, width, t, hold=4e-4, final=final)
            b.apply_bias(np.array([cell]), np.array([v]), np.array([1.2]), width, t, hold=4e-4, final=final)
        assert a.pristine[cell] == b.pristine[cell]
        if formed_at is None and not a.pristine[cell]:
            formed_at = v
    assert formed_at is not None and abs(formed_at - float(a.v_form[cell])) < 0.5, (formed_at, a.v_form[cell])
    for name in ("g_prog", "t_prog", "pristine", "stuck"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.rng.random() == b.rng.random()                     # the same number of draws


def test_noise_off_is_deterministic_and_keeps_d2d() -> None:
    quiet, noisy = _model(noise=False), _model(noise=True)
    np.testing.assert_array_equal(quiet.g_max, noisy.g_max)
    np.testing.assert_array_equal(quiet.v_form, noisy.v_form)
    r1 = _script(quiet)
    r2 = _script(_model(noise=False))
    np.testing.assert_array_equal(r1, r2)
    idx = np.arange(quiet.size)
    t = quiet.t_prog.max() + 5000.0
    reads = np.array([quiet.conductance(idx, t, T_READ) for _ in range(5)])
    assert np.all(reads == reads[0])
    tau = t - quiet.t_prog
    expected = np.clip(quiet.g_prog - P.relax_mean_slope * np.log(tau), quiet.g_min - P.clip_margin,
                       quiet.g_max + P.clip_margin)
    np.testing.assert_allclose(reads[0], expected, rtol=1e-12)
    # no c2c noise: one nominal SET pulse moves exactly s+ of the way to Gmax
    g0 = quiet.g_prog.copy()
    quiet.apply_bias(idx, P.v_ref_set, np.inf, P.pulse_width_ref, t + 1.0)
    relaxed = np.clip(g0 - P.relax_mean_slope * np.log(tau + 1.0 - PULSE), quiet.g_min - P.clip_margin,
                      quiet.g_max + P.clip_margin)
    np.testing.assert_allclose(quiet.g_prog, relaxed + quiet.s_set * (quiet.g_max - relaxed), rtol=1e-9)


def test_kinetics_are_time_consistent() -> None:
    one, two = _model(noise=False), _model(noise=False)
    t1, t2 = form_all(one), form_all(two)
    idx = np.arange(one.size)
    one.apply_bias(idx, 1.4, np.inf, 4e-6, t1 + 4e-6)
    two.apply_bias(idx, 1.4, np.inf, 2e-6, t2 + 2e-6)
    two.apply_bias(idx, 1.4, np.inf, 2e-6, t2 + 4e-6)
    np.testing.assert_allclose(one.g_prog, two.g_prog, rtol=1e-12)
    before = one.g_prog.copy()
    one.apply_bias(idx, 0.0, np.inf, 1.0, t1 + 0.01)           # 0 V: no change
    np.testing.assert_array_equal(one.g_prog, before)
    one.apply_bias(idx, 0.5, np.inf, 1.0, t1 + 1.01)           # below V_th: no switching, only the read disturb
    f = math.sinh(0.5 / P.read_disturb_voltage_scale) / P.read_disturb_time
    hi = one.g_max + P.clip_margin
    np.testing.assert_allclose(one.g_prog, hi - (hi - before) * math.exp(-f), rtol=1e-12)


def test_transistor() -> None:
    m = _model()
    g = np.array([1e-9, 10e-6, 90e-6, 90e-6])
    v = np.array([3.0, 1.35, 1.35, -1.3])
    v_cell, i = m.transistor(g, v, np.inf, v < 0)                       # ideal switch
    np.testing.assert_allclose(v_cell, v)
    np.testing.assert_allclose(i, g * v)
    v_cell, i = m.transistor(g, v, 0.3, v < 0)                          # off: leakage only
    assert np.all(np.abs(i) <= P.transistor_off_conductance * np.abs(v)) and np.all(np.abs(v_cell) < 0.01)
    assert np.all(np.sign(i) == np.sign(v))
    i_sat = 0.5 * P.transconductance * (1.2 - P.threshold_voltage) ** 2
    v_cell, i = m.transistor(np.array([80e-6]), np.array([4.0]), 1.2, np.array([False]))  # compliance
    assert i[0] == pytest.approx(i_sat + P.transistor_off_conductance * 4.0)
    assert v_cell[0] == pytest.approx(i[0] / 80e-6)
    r_on = 1.0 / (P.transconductance * (3.3 - P.threshold_voltage))
    v_set = m.transistor(np.array([50e-6]), np.array([1.0]), 3.3, np.array([False]))[0][0]
    v_rst = m.transistor(np.array([50e-6]), np.array([-1.0]), 3.3, np.array([True]))[0][0]
    assert v_set == pytest.approx(1.0 / (1 + 50e-6 * r_on), rel=1e-6)
    assert -v_rst == pytest.approx(1.0 / (1 + 50e-6 * r_on * P.reset_degeneration), rel=1e-6)


def test_pulse_forming_probability() -> None:
    m = _model(seed=3, cells=4000)
    idx = np.arange(m.size)
    # 50 % point of the pulse rule for a 2.5 µs pulse: V_form + V_f·ln(τ_f ln2 / t_w)
    dv = P.forming_voltage_scale * math.log(P.forming_time * math.log(2) / PULSE)
    m.apply_bias(idx, m.v_form + dv, np.inf, PULSE, 1.0)
    assert 0.45 <= 1 - m.pristine.mean() <= 0.55
    quasi = _model(seed=3, cells=200)
    quasi.apply_bias(np.arange(200), quasi.v_form - 0.01, 1.2, 0.02, 1.0)
    assert quasi.pristine.all()


def test_defect_profiles() -> None:
    params = DeviceParameters.profile("hfo2")
    m = _model(seed=5, cells=20000, params=params)
    assert (m.stuck == STUCK_LRS).mean() == pytest.approx(params.p_stuck_lrs, abs=0.006)
    assert (m.stuck == STUCK_HRS).mean() == pytest.approx(params.p_stuck_hrs + params.p_form_fail, abs=0.006)
    t = form_all(m)
    assert np.array_equal(m.pristine, m.form_fail)                       # form-fail cells never form
    assert np.all(m.conductance(np.flatnonzero(m.form_fail), t, T_READ) == P.g_pristine)
    lrs = np.flatnonzero(m.stuck == STUCK_LRS)
    hrs = np.flatnonzero((m.stuck == STUCK_HRS) & ~m.form_fail)
    assert np.all(m.g_prog[lrs] >= m.g_max[lrs])                          # ignores the forming RESET
    before = m.g_prog.copy()
    m.apply_bias(lrs, -1.5, np.inf, PULSE, t + 1.0)
    m.apply_bias(hrs, 1.5, np.inf, PULSE, t + 1.0)
    np.testing.assert_array_equal(m.g_prog, before)
    assert np.all(m.g_prog[hrs] <= m.g_min[hrs])
    assert DeviceParameters.profile("paper").p_stuck_lrs == 0.0
    assert set(PROFILES) == {"paper", "realistic", "hfo2"}


def test_overforming_without_compliance() -> None:
    m = _model(seed=11, cells=2000)
    m.apply_bias(np.arange(m.size), 3.6, 2.5, 0.02, 1.0)    # I_sat(2.5 V) ≈ 1.9 mA > 600 µA
    assert not m.pristine.any()
    assert 0.4 <= (m.stuck == STUCK_LRS).mean() <= 0.6


def test_parameters_have_provenance() -> None:
    rows = DeviceParameters.provenance()
    assert len(rows) > 50
    for row in rows:
        assert row["unit"] and row["source"][:1] == "[", row
    assert "kinetic_voltage_scale" in DeviceParameters.assumptions()
    p = P.with_overrides(kinetic_voltage_scale=0.05)
    assert p.kinetic_voltage_scale == 0.05 and P.kinetic_voltage_scale == 0.07
    with pytest.raises(ValueError):
        DeviceParameters.profile("nope")
    with pytest.raises(ValueError):
        DeviceParameters(p_form_fail=0.7, p_stuck_lrs=0.7)
