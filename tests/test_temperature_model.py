"""Chuck temperature in the device model (issue #12 item 3): the relaxation runs on an Arrhenius clock.

AF = exp(Ea/k (1/T_ref - 1/T)) is computed here with plain math from Ea (device_params.py) and the temperatures.
Shifts are read - G_prog (the programmed value, ground truth from the model), so that both temperatures start
from the same point: at 85 °C a cell relaxes after τ as far as a 25 °C cell after AF·τ.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from rramlab.drivers.station import Station
from rramlab.protocols.catalog import PROTOCOLS
from rramlab.protocols.results import Results
from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import (
    BenchConfigError,
    default_bench_text,
    load_bench_config,
    parse_bench_config,
    tomllib,
)
from rramlab.simulator.device_model import ArrayModel, ThermalHistory
from rramlab.simulator.device_params import DeviceParameters

P = DeviceParameters()
K_B = 8.617333262e-5            # eV/K
T25, T85 = 298.15, 358.15       # K
US = 1e-6
T_READ = 20e-3
PULSE = 2.5e-6
_tags = itertools.count()


def af(t_k: float, ea: float = P.relax_activation_energy, t_ref: float = T25) -> float:
    """Arrhenius acceleration factor, plain math."""
    return math.exp(ea / K_B * (1.0 / t_ref - 1.0 / t_k))


def _form_and_reset(model: ArrayModel) -> float:
    """Every cell through the quasi-static forming staircase (3.0-3.6 V, 10 mV / 20 ms, V_G = 1.2 V), then one
    RESET pulse; returns the end of that pulse (s)."""
    idx = np.arange(model.size)
    t = 0.0
    for v in np.arange(3.0, 3.605, 0.01):
        t += 0.02
        model.apply_bias(idx, v, 1.2, 0.02, t)
    t += 1.0
    model.apply_bias(idx, -1.4, P.pulse_gate_voltage, PULSE, t)
    return t


def formed_model(seed: int, cells: int, temperature: float | None = None, params: DeviceParameters = P,
                 noise: bool = True) -> tuple[ArrayModel, float]:
    """Every cell formed by the quasi-static staircase (V_G = 1.2 V), then one SET pulse to mid-window; returns the
    model and the end of that pulse (the cells' t_prog)."""
    thermal = ThermalHistory(params.temperature_ref, params.relax_activation_energy, temperature)
    model = ArrayModel(1, cells, params, np.random.default_rng(seed), thermal=thermal, noise=noise)
    t = _form_and_reset(model) + 1.0
    model.apply_bias(np.arange(cells), 1.35, P.pulse_gate_voltage, 4 * PULSE, t)
    assert not model.pristine.any()
    return model, t


def test_acceleration_factor_and_bench_key() -> None:
    th = ThermalHistory(T25, P.relax_activation_energy)
    assert th.acceleration(T25) == 1.0
    assert th.acceleration(T85) == pytest.approx(af(T85), rel=1e-12)
    assert 1000 < af(T85) < 2000                              # Ea = 1.12 eV: 85 °C runs ~1485× faster
    assert load_bench_config("").temperature_c == 25.0
    text = default_bench_text().replace("[bench]\n", "[bench]\ntemperature_c = 85.0\n", 1)
    bench = Bench(parse_bench_config(tomllib.loads(text)))
    assert bench.temperature_c() == pytest.approx(85.0) and bench.temperature_k() == pytest.approx(T85)
    assert bench.model.thermal is bench.thermal and bench.thermal.isothermal_af == pytest.approx(af(T85))
    bench.clock.advance(100.0)
    bench.set_temperature_c(25.0)                      # the chuck back at 25 °C after 100 s at 85 °C
    bench.clock.advance(50.0)
    assert bench.temperature_c() == pytest.approx(25.0)
    assert bench.thermal.equivalent_time(150.0) == pytest.approx(100.0 * af(T85) + 50.0, rel=1e-12)
    bench.set_temperature_source(lambda t: 25.0 + 0.1 * (t - 150.0))    # a 0.1 K/s ramp from now on, in °C
    bench.clock.advance(600.0)
    assert bench.temperature_c() == pytest.approx(85.0)
    bench.set_temperature_source(None)
    assert bench.temperature_k() == pytest.approx(T85) and bench.thermal.temperature(1e6) == pytest.approx(T85)
    for bad in ("-300.0", "'hot'", "true"):
        with pytest.raises(BenchConfigError, match="temperature_c"):
            parse_bench_config(tomllib.loads(default_bench_text().replace(
                "[bench]\n", f"[bench]\ntemperature_c = {bad}\n", 1)))


# ---------------------------------------------------------------------------------- (a) the must-show, model
def test_retention_at_85c_is_the_25c_retention_at_af_times_tau() -> None:
    """Independent dies (seeds): the mean shift after τ at 85 °C equals the 25 °C mean shift after AF·τ within
    4 standard errors; and 85 °C relaxes faster than 25 °C at the same τ by exactly the Arrhenius factor:
    the measured factor exp((m25(τ) - m85(τ))/a) matches AF."""
    n, tau = 4000, 600.0
    a = P.relax_mean_slope
    hot, tp_hot = formed_model(11, n, T85)
    cold, tp_cold = formed_model(12, n)
    cold2, tp_cold2 = formed_model(13, n)
    idx = np.arange(n)
    s85 = (hot.conductance(idx, tp_hot + tau, T_READ) - hot.true_conductance()) / US
    s25_at_af = (cold.conductance(idx, tp_cold + af(T85) * tau, T_READ) - cold.true_conductance()) / US
    s25 = (cold2.conductance(idx, tp_cold2 + tau, T_READ) - cold2.true_conductance()) / US
    se = math.sqrt(s85.var(ddof=1) / n + s25_at_af.var(ddof=1) / n)
    assert abs(s85.mean() - s25_at_af.mean()) < 4 * se
    assert s85.std(ddof=1) == pytest.approx(s25_at_af.std(ddof=1), rel=0.1)
    # the aihwkit mean law at the equivalent time, and the factor between 85 and 25 °C at the same τ
    assert s85.mean() == pytest.approx(-a / US * math.log(af(T85) * tau), abs=4 * se)
    se_factor = math.sqrt(s85.var(ddof=1) / n + s25.var(ddof=1) / n) / (a / US)      # on ln(AF)
    measured = math.exp((s25.mean() - s85.mean()) / (a / US))
    assert abs(math.log(measured) - math.log(af(T85))) < 4 * se_factor, (measured, af(T85))


# ---------------------------------------------------------------------------------- (b) change mid-relaxation
@pytest.mark.parametrize("single", [False, True])
def test_temperature_change_mid_relaxation_follows_equivalent_time(single: bool) -> None:
    """Same die, same draws, read noise off (reads = the state): 25 °C for τ1, 85 °C for τ2, 25 °C for τ3 is
    where a die kept at 25 °C is after τ1 + AF τ2 + τ3 (vector and single-cell paths)."""
    params = P.with_overrides(read_noise_k=0.0)
    n = 1 if single else 64
    idx = np.arange(n)
    a, tp = formed_model(5, n, params=params)
    b, tp_b = formed_model(5, n, params=params)
    assert tp == tp_b
    np.testing.assert_array_equal(a.true_conductance(), b.true_conductance())
    tau1, tau2, tau3 = 30.0, 200.0, 1000.0
    ra = [a.conductance(idx, tp + tau1, T_READ)]
    rb = [b.conductance(idx, tp + tau1, T_READ)]
    a.thermal.set(T85, tp + tau1)
    assert a.thermal.isothermal_af is None and a.thermal.temperature(tp + tau1 + 1) == T85
    ra.append(a.conductance(idx, tp + tau1 + tau2, T_READ))
    rb.append(b.conductance(idx, tp + tau1 + af(T85) * tau2, T_READ))
    a.thermal.set(T25, tp + tau1 + tau2)
    ra.append(a.conductance(idx, tp + tau1 + tau2 + tau3, T_READ))
    rb.append(b.conductance(idx, tp + tau1 + af(T85) * tau2 + tau3, T_READ))
    np.testing.assert_allclose(np.concatenate(ra), np.concatenate(rb), rtol=1e-9, atol=0.0)
    if not single:      # and it is not the isothermal 25 °C path (mean law: a ln(AF τ2 / τ2) further down)
        c, _ = formed_model(5, n, params=params)
        c.conductance(idx, tp + tau1, T_READ)
        assert np.mean(c.conductance(idx, tp + tau1 + tau2, T_READ) - ra[1]) > 0.3 * US


def test_equivalent_time_of_steps_and_of_a_source() -> None:
    th = ThermalHistory(T25, P.relax_activation_energy)
    th.set(T85, 10.0)
    th.set(T25, 20.0)
    assert th.equivalent_time(5.0) == pytest.approx(5.0)
    assert th.equivalent_time(15.0) == pytest.approx(10.0 + 5.0 * af(T85), rel=1e-12)
    assert th.equivalent_time_one(30.0) == pytest.approx(10.0 + 10.0 * af(T85) + 10.0, rel=1e-12)
    np.testing.assert_allclose(th.equivalent_time(np.array([5.0, 15.0, 30.0])),
                               [th.equivalent_time_one(x) for x in (5.0, 15.0, 30.0)], rtol=1e-12)
    th.set(T85, 5.0)                   # not before the last change: takes effect at t = 20 s
    assert th.temperature(19.0) == T85 and th.temperature(25.0) == T85 and th.temperature(15.0) == T85
    # a chuck ramping 25 -> 85 °C over 600 s (as a first-order prober would report it), then holding
    ramp = ThermalHistory(T25, P.relax_activation_energy)

    def chuck(t: float) -> float:
        return T25 + 60.0 * min(max(t - 100.0, 0.0) / 600.0, 1.0)

    ramp.set_source(chuck, 0.0)
    for t in np.arange(50.0, 1500.0, 50.0):          # evaluations as reads would make them
        ramp.equivalent_time_one(float(t))
    grid = np.linspace(0.0, 1500.0, 150001)
    vals = np.array([ramp.acceleration(chuck(x)) for x in grid])
    exact = float(np.sum((vals[1:] + vals[:-1]) / 2.0 * np.diff(grid)))
    assert ramp.equivalent_time(1500.0) == pytest.approx(exact, rel=2e-3)
    ramp.set_source(None, 1500.0)
    assert ramp.temperature() == pytest.approx(T85)
    assert len(ramp._kt) < 40                     # the constant stretches are one knot each


# ---------------------------------------------------------------------------------- (c) voltage shifts
def test_forming_voltage_shift_per_kelvin_matches_the_coefficient() -> None:
    """With a coefficient c (test value: no published figure, the default is 0) a quasi-static staircase (ideal
    gate, 1 mV steps) forms each cell at V_form_i + c·(T - T_ref); with c = 0 temperature does not move it."""
    c, dt = -2e-3, 60.0
    for coeff, shift in ((c, c * dt), (0.0, 0.0)):
        params = P.with_overrides(forming_voltage_temp_coeff=coeff)
        model = ArrayModel(1, 200, params, np.random.default_rng(3),
                           thermal=ThermalHistory(T25, P.relax_activation_energy, T25 + dt))
        formed_at = np.full(model.size, np.nan)
        t = 0.0
        for v in np.arange(2.7, 3.6, 1e-3):
            t += 0.02
            was = model.pristine.copy()
            model.apply_bias(np.arange(model.size), v, np.inf, 0.02, t)
            formed_at[was & ~model.pristine] = v
        expected = model.v_form + shift
        assert np.all(formed_at >= expected - 1e-9) and np.all(formed_at < expected + 1.001e-3)


def test_switching_reference_voltage_shift_per_kelvin() -> None:
    """A SET / RESET pulse at T with coefficient c acts as the pulse of |V| - c·(T - T_ref) at T_ref (noise off,
    ideal gate, so V_cell = V)."""
    c, dt = -1e-3, 60.0
    still = P.with_overrides(relax_mean_slope=0.0)          # noise off and no mean drift: no relaxation at all
    hot, tp = formed_model(9, 8, T25 + dt, params=still, noise=False)
    ref, _ = formed_model(9, 8, params=still, noise=False)
    np.testing.assert_array_equal(hot.true_conductance(), ref.true_conductance())
    hot._tc_switch = ref._tc_switch = c                     # as DeviceParameters(switching_voltage_temp_coeff=c)
    for k, v in enumerate((1.3, -1.3, 1.4)):
        t = tp + 10.0 * (k + 1)
        hot.apply_bias(np.arange(8), v, np.inf, PULSE, t)
        ref.apply_bias(np.arange(8), math.copysign(abs(v) - c * dt, v), np.inf, PULSE, t)
        np.testing.assert_allclose(hot.true_conductance(), ref.true_conductance(), rtol=1e-12)


# ---------------------------------------------------------------------------------- (d) 25 °C unchanged
def _golden_scenario(model: ArrayModel) -> np.ndarray:
    idx = np.arange(model.size)
    t = _form_and_reset(model)
    out = []
    for k in range(40):
        t += 0.025
        cell = k % model.size
        model.apply_bias(np.array([cell]), 1.35 if k % 3 else -1.3, 3.3, PULSE, t)
        model.apply_bias(idx, 1.35 if k % 2 else -1.3, 3.3, PULSE, t + 1e-3)
        out.append(model.conductance(np.array([cell]), t + 5e-3, T_READ))
        out.append(model.conductance(idx, t + 10e-3, T_READ))
    g, _ = model.read_series(0, t + 20e-3, 0.025, 50, T_READ, 0.2, 3.3)
    out.append(g)
    for tau in (1.0, 600.0, 3600.0, 3.15e8):
        out.append(model.conductance(idx, t + tau, T_READ))
    return np.concatenate(out)


# recorded with the model before the temperature was added (same seed, same call sequence)
GOLDEN_SUM = 0.041049907519927646
GOLDEN_EVERY_53 = [3.166052993540404e-05, 6.322235905923174e-05, 6.180980124006752e-05, 8.218297138228606e-05,
                   5.4348023936029505e-05, 6.40808781434257e-05, 5.16080836847677e-05, 5.734780320610668e-05,
                   3.25320343448398e-05, 2.020363722353883e-05, 4.137359020075732e-05, 4.1863843107589964e-05,
                   6.80056011759861e-05, 3.815899745727141e-05, 5.0925378423580765e-05]


def test_at_25c_results_are_those_of_the_model_before_temperature() -> None:
    plain = _golden_scenario(ArrayModel(2, 8, P, np.random.default_rng(123)))
    assert plain.size == 794
    np.testing.assert_allclose(plain[::53], GOLDEN_EVERY_53, rtol=1e-12, atol=0.0)
    assert float(plain.sum()) == pytest.approx(GOLDEN_SUM, rel=1e-12)
    # an explicit 25 °C history, set again to 25 °C at t = 0, is the same model bit for bit
    th = ThermalHistory(P.temperature_ref, P.relax_activation_energy, 25.0 + 273.15)
    th.set(T25, 0.0)
    assert th.isothermal_af == 1.0
    np.testing.assert_array_equal(_golden_scenario(ArrayModel(2, 8, P, np.random.default_rng(123), thermal=th)),
                                  plain)


# ---------------------------------------------------------------------------------- end to end through pyvisa
def _bench_file(tmp_path: Path, t_c: float | None) -> Path:
    text = default_bench_text()
    if t_c is not None:
        text = text.replace("[bench]\n", f"[bench]\ntemperature_c = {t_c}\n", 1)
    path = tmp_path / f"bench_{t_c}.toml"
    path.write_text(text)
    return path


def _program_and_wait(path: Path, cells: list[tuple[int, int]], wait: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Station]:
    """Form the cells (forming protocol), one SET pulse each; wait `wait` s after the last pulse; read each.
    Returns (G_prog from the side channel, cell conductance from the read, τ_i = read time - t_prog_i)."""
    st = Station.from_file(None, visa_library=f"{path}?tag=temp{next(_tags)}@rramlab")
    st.open()
    for _ in PROTOCOLS["forming"].from_mapping({"current_limit": 1e-3, "contact_check": False}, cells).run(
            st, Results()):
        pass
    for r, c in cells:
        st.pulse(r, c, -1.4, PULSE)
        st.pulse(r, c, 1.35, 4 * PULSE)
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    flat = np.array([r * st.cols + c for r, c in cells])
    g_prog, t_prog = bench.model.g_prog[flat].copy(), bench.model.t_prog[flat].copy()
    st.clock.wait(wait)
    g, t_read = [], []
    rc = st.read_conditions
    g_channel = P.transconductance * (rc.gate_voltage - P.threshold_voltage)
    for r, c in cells:
        reading = st.read(r, c)
        g.append(reading.current / (reading.voltage - reading.current / g_channel))    # through the transistor
        t_read.append(bench.clock.now)
    return g_prog, np.array(g), np.array(t_read) - t_prog, st


def test_retention_at_85c_through_pyvisa_matches_25c_at_af_tau(tmp_path: Path) -> None:
    """Bench files with temperature_c = 85 and 25 (same seed, same messages): the 85 °C shift after τ equals the
    25 °C shift after AF·τ (the same die, so the walks match; what differs is read noise); at equal τ the 85 °C
    cells have relaxed further by the Arrhenius factor."""
    cells = [(r, c) for r in range(8) for c in range(8)]              # the whole 8×8 die
    tau = 1000.0
    g0h, gh, tau_h, st_h = _program_and_wait(_bench_file(tmp_path, 85.0), cells, tau)
    g0c, gc, tau_c, st_c = _program_and_wait(_bench_file(tmp_path, None), cells, af(T85) * tau)
    g0s, gs, tau_s, st_s = _program_and_wait(_bench_file(tmp_path, 25.0), cells, tau)
    for st in (st_h, st_c, st_s):
        st.close()
    hot, cold_af, cold = (gh - g0h) / US, (gc - g0c) / US, (gs - g0s) / US
    n = len(cells)
    assert np.all(np.abs(np.log(tau_h / tau)) < 0.01) and np.all(np.abs(np.log(tau_c / (af(T85) * tau))) < 0.01)
    diff = hot - cold_af                     # paired: the same cells, the same draws
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / math.sqrt(n), (hot.mean(), cold_af.mean())
    a = P.relax_mean_slope / US
    faster = cold - hot
    measured = math.exp(faster.mean() / a)
    se = faster.std(ddof=1) / math.sqrt(n) / a                # on ln(AF)
    assert abs(math.log(measured / af(T85))) < 4 * se, (measured, af(T85), se)
