"""Parameters of the CMO/HfOx 1T1R ReRAM array model (IBM Research Zurich, arXiv 2502.04524).

Every number comes from arXiv 2502.04524 or the source named with it, and is converted once to SI units
(S, V, s, A).  Each field carries its provenance in ``dataclasses.fields(...)[i].metadata``:

- ``unit``: SI unit of the value (``"1"`` for dimensionless numbers);
- ``symbol``: the symbol used in the model description;
- ``source``: provenance tag and origin, e.g. ``"[F✓] Fig. 1c"``, ``"[A] aihwkit reram.py"`` or
  ``"[ASSUMP] ..."`` (a tunable default with no source behind it); ``[L]`` a law from the literature named
  there, ``[F~]`` a published figure used as a bound, not fitted.

``DeviceParameters.provenance()`` lists all of them; ``DeviceParameters.profile(name)`` gives the
"paper", "realistic" and "hfo2" defect profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["BOLTZMANN_EV", "PROFILES", "ZERO_CELSIUS", "DeviceParameters"]

_US = 1e-6  # one microsiemens in S


def _p(default: Any, unit: str, source: str, symbol: str = "") -> Any:
    """A dataclass field with provenance metadata."""
    return field(default=default, metadata={"unit": unit, "source": source, "symbol": symbol})


# Effective-window factor of the 1/f read-noise model: with equal-variance OU components (density rho per
# e-fold of tau) and the OU window-averaging factor evaluated at alpha*t_int, the read-difference variance is
# 2*rho*(ln(tau/(alpha*t_int)) + gamma + c_w) with gamma + c_w = 3/2 exactly; alpha = 2*e^1.5 turns that into
# 2*rho*ln(tau/(2*t_int)), the asymptote of the aihwkit formula.  See device_model.py.
_OU_WINDOW_SCALE = 2.0 * math.exp(1.5)

# Read-disturb calibration (see the "read disturb" fields): a read bias of V_RD_REF at the cell held for a
# cumulative T_RD_REF (10^6 reads of 1 PLC at 50 Hz, 20 ms each) moves the conductance the fraction F_RD_REF of
# the way to its bound.  tau_rd follows from F = 1 - exp(-(T/tau_rd) sinh(V/V_rd)).
_RD_VOLTAGE_SCALE = 0.07
_RD_REF_VOLTAGE = 0.2
_RD_REF_STRESS = 1e6 * 20e-3
_RD_REF_FRACTION = 0.01
_RD_TIME = _RD_REF_STRESS * math.sinh(_RD_REF_VOLTAGE / _RD_VOLTAGE_SCALE) / -math.log1p(-_RD_REF_FRACTION)

ZERO_CELSIUS = 273.15            # K at 0 °C: the one °C -> K conversion (bench files give °C, the model works in K)
BOLTZMANN_EV = 8.617333262e-5    # Boltzmann constant in eV/K (CODATA 2018, exact)


@dataclass(frozen=True)
class DeviceParameters:
    """Every parameter of the array model, SI units; see the field metadata for unit and provenance."""

    # ---- device-to-device window (§12.1) -------------------------------------------------------------
    g_min_mean: float = _p(10.0 * _US, "S", "[ASSUMP] around [F✓] Gmin ≈ 10 µS (open-loop figure)", "Gmin_i")
    g_min_std: float = _p(1.5 * _US, "S", "[ASSUMP] D2D spread of Gmin_i", "σ(Gmin_i)")
    g_max_mean: float = _p(90.0 * _US, "S", "[ASSUMP] around [F✓] Gmax ≈ 90 µS (open-loop figure)", "Gmax_i")
    g_max_std: float = _p(6.0 * _US, "S", "[ASSUMP] D2D spread of Gmax_i", "σ(Gmax_i)")
    g_window_min_width: float = _p(
        10.0 * _US, "S", "[ASSUMP] guard: Gmax_i >= Gmin_i + this; Gmin_i >= 1 µS", "")
    step_set: float = _p(
        0.074, "1", "[D] soft-bounds fit of n_states 22, SP_skew 0.61 [F✓] at +1.35 V, 2.5 µs", "s+")
    step_reset: float = _p(
        0.117, "1", "[D] soft-bounds fit of n_states 22, SP_skew 0.61 [F✓] at -1.3 V, 2.5 µs", "s-")
    step_d2d_sigma: float = _p(0.3, "1", "[ASSUMP] lognormal D2D width of s+_i and s-_i", "σ_ln(s)")
    nsr: float = _p(
        0.9, "1", "[F✓] NSR mean 90 %; σ_c2c,i = NSR·ΔG_sp,i, ΔG_sp = s+s-(Gmax-Gmin)/(s+ + s-)", "NSR")
    # ---- electroforming (§2, §12.3) -----------------------------------------------------------------
    forming_voltage_mean: float = _p(3.17, "V", "[F✓] Fig. 1c, quasi-static sweep at V_G = 1.2 V", "V_form")
    forming_voltage_std: float = _p(0.075, "V", "[F✓] Fig. 1c", "σ(V_form)")
    g_pristine: float = _p(1e-9, "S", "[ASSUMP] pristine ≈ 1 nS ([D] ~nA at ~1 V)", "G_pristine")
    quasi_static_duration: float = _p(
        1e-3, "s", "[ASSUMP] biases at least this long use the quasi-static rule V_cell >= V_form_i", "")
    forming_time: float = _p(
        1e-3, "s",
        "[ASSUMP] tuned from 1 µs (arXiv 2502.04524) to the quasi-static limit, so the pulse rule is "
        "continuous with the sweep rule (P_form = 63 % for a 1 ms pulse at V_form_i) and V_form rises "
        "~logarithmically for shorter pulses (+0.56 V at 2.5 µs); with 1 µs a 0.9 ms pulse formed at ~2.5 V",
        "τ_f")
    forming_voltage_scale: float = _p(0.1, "V", "[ASSUMP] §12.3 pulse-forming voltage scale", "V_f")
    forming_g_low: float = _p(0.8, "1", "[ASSUMP] G after forming = min(Gmax_i·U(low, high), I_sat/V)", "")
    forming_g_high: float = _p(1.1, "1", "[ASSUMP] G after forming = min(Gmax_i·U(low, high), I_sat/V)", "")
    overforming_current: float = _p(
        600e-6, "A", "[ASSUMP] I_sat above this at forming risks stuck-LRS", "I_over")
    overforming_probability: float = _p(0.5, "1", "[ASSUMP] P(stuck-LRS) when I_sat > I_over", "p_over")
    # ---- SET/RESET kinetics (§12.4) -----------------------------------------------------------------
    pulse_gate_voltage: float = _p(
        3.3, "V", "[ASSUMP] word-line voltage during pulses and reads (3.3 V thick-oxide class, §1); "
        "the paper does not give it", "V_G,pulse")
    v_ref_set: float = _p(
        1.3292, "V", "[D] cell voltage of the nominal +1.35 V SET pulse [F✓] through R_on(3.3 V) = 381 Ω at "
        "G_sp = 41 µS: 1.35/(1 + 41e-6·381.4), so that nominal pulses through the access transistor give f = 1",
        "V_ref+")
    v_ref_reset: float = _p(
        1.2702, "V", "[D] cell voltage of the nominal -1.3 V RESET pulse [F✓] through 1.5·R_on(3.3 V) at "
        "G_sp = 41 µS: 1.3/(1 + 41e-6·572.1)", "V_ref-")
    pulse_width_ref: float = _p(2.5e-6, "s", "[F✓] nominal pulse width", "t_w0")
    kinetic_voltage_scale: float = _p(0.07, "V", "[ASSUMP] VCM-typical, ×e per 70 mV", "V0")
    switching_threshold: float = _p(0.6, "V", "[ASSUMP] |V_cell| below this changes nothing", "V_th")
    max_pulse_factor: float = _p(20.0, "1", "[ASSUMP] cap on f (stand-in for the abrupt regime)", "f_max")
    clip_margin: float = _p(
        2.0 * _US, "S",
        "[ASSUMP] §12.4 clip G to [Gmin_i - m, Gmax_i + m]; also used for the read clamp so reads agree "
        "with the state", "")
    # ---- access transistor (§12.2) ------------------------------------------------------------------
    threshold_voltage: float = _p(0.45, "V", "[ASSUMP] square-law NMOS", "V_T")
    transconductance: float = _p(0.92e-3, "A/V^2", "[ASSUMP] I_sat(3 V) ≈ 3 mA as in Fig. 1b [F✓]", "k")
    reset_degeneration: float = _p(
        1.5, "1", "[ASSUMP] RESET polarity: R_on × 1.5 and I_sat / 1.5 (k_eff = k/1.5), source degeneration",
        "")
    transistor_off_conductance: float = _p(1e-12, "S", "[ASSUMP] leakage of an off transistor", "")
    # ---- relaxation (§6, §12.6); natural log, t in s ------------------------------------------------
    relax_mean_slope: float = _p(
        0.08900206 * _US, "S", "[A] aihwkit reram.py ReRamCMONoiseModel: μ = G_prog - a·ln t", "a")
    relax_sigma_slope: float = _p(
        0.04201137 * _US, "S", "[A] aihwkit reram.py: σ = b·ln t + c (t >= 1 s)", "b")
    relax_sigma_intercept: float = _p(0.41183342 * _US, "S", "[A] aihwkit reram.py: σ(1 s)", "c")
    relax_onset: float = _p(
        1e-3, "s", "[ASSUMP] for τ < 1 s: μ = 0 and σ grows log-linearly from 0 at τ0 to σ(1 s)", "τ0")
    # ---- temperature (chuck): Arrhenius clock of the relaxation; device_model.py "Temperature" -------
    temperature_ref: float = _p(
        25.0 + ZERO_CELSIUS, "K",
        "[ASSUMP] temperature of the relaxation fits above: the aihwkit fits of arXiv 2502.04524 were measured at "
        "room temperature (not stated further), taken as 25 °C; at T_ref the model is the isothermal one", "T_ref")
    relax_activation_energy: float = _p(
        1.12, "eV",
        "[L] Arrhenius acceleration of the relaxation clock: relaxation advances in equivalent time at T_ref, "
        "dt_eq = AF(T) dt, AF = exp(Ea/k (1/T_ref - 1/T)) (AF(85 °C) = 1485).  Ea: the oxygen-ion hopping barrier "
        "E_h = 1.12 eV of the PKU/Stanford HfOx RRAM compact model (Verilog-A RRAM_v_2_0_Beta, H. Li, Z. Jiang, "
        "X. Guan, S. Yu, P. Huang, B. Gao, J. Kang, H.-S. P. Wong, 2014, parameters per doi:10.1109/LED.2013.2293354; "
        "the same model gives E_a = 0.7 eV for vacancy generation, AF(85 °C) = 96), used because LRS retention drift "
        "of filamentary HfOx cells is thermally driven ion motion with the switching activation energy (hourglass "
        "retention model, calibrated on HfO samples, Microelectron. Eng. (2017), doi:10.1016/j.mee.2017.04.032, "
        "abstract).  Not measured on CMO/HfOx (no retention bake of these cells is published), and no measured "
        "HfOx retention Arrhenius slope was found in the sources searched", "Ea")
    forming_voltage_temp_coeff: float = _p(
        0.0, "V/K",
        "[ASSUMP] off: V_form_i -> V_form_i + c (T - T_ref) when set; forming voltage falls with temperature in "
        "HfOx, but no figure (mV/K) for HfOx or CMO/HfOx cells was found in the sources searched, so no shift",
        "dV_form/dT")
    switching_voltage_temp_coeff: float = _p(
        0.0, "V/K",
        "[ASSUMP] off: V_ref± -> V_ref± + c (T - T_ref) (the SET/RESET kinetics' reference voltages) when set; "
        "RESET voltage rises on cooling in ITO/HfO2/TiN down to 10 K (M. K. Ram et al., Appl. Phys. Lett. 128, "
        "173501 (2026), abstract), but no coefficient near room temperature was found, so no shift", "dV_ref/dT")
    # ---- read noise (§6, §12.7) ---------------------------------------------------------------------
    read_noise_k: float = _p(
        0.0277316483 * _US, "S",
        "[A] aihwkit reram.py: σ_nG = K·log10(G/µS)·sqrt(ln((t + t_r)/(2 t_r))), K in µS", "K")
    read_time: float = _p(1e-6, "s", "[A] aihwkit reram.py t_read (1 µs read pulses)", "t_read")
    noise_tau_min: float = _p(1e-6, "s", "[ASSUMP] shortest OU time constant of the 1/f noise", "")
    noise_tau_max: float = _p(1e9, "s", "[ASSUMP] longest OU time constant of the 1/f noise", "")
    noise_per_decade: int = _p(2, "1", "[ASSUMP] OU components per decade of time constant", "")
    noise_window_scale: float = _p(
        _OU_WINDOW_SCALE, "1",
        "[ASSUMP] calibration: the OU window-averaging factor is evaluated at alpha·t_int, alpha = 2e^1.5, "
        "so the read-difference spread equals the aihwkit formula with t_read -> t_int (device_model.py)",
        "α")
    read_voltage: float = _p(0.2, "V", "[ASSUMP] read voltage (unknown in the paper)", "V_read")
    # ---- read disturb (sub-threshold bias); the mechanism in device_model.py --------------------------
    read_disturb_voltage_scale: float = _p(
        _RD_VOLTAGE_SCALE, "V",
        "[L] sinh(V/V_rd) field-accelerated ionic hopping below the switching threshold (D. B. Strukov, "
        "R. S. Williams, Appl. Phys. A 94, 515 (2009), 'Exponential ionic drift'; S. Menzel et al., Adv. Funct. "
        "Mater. 21, 4487 (2011), SET time vs voltage over ~10 decades); V_rd = V0 of the SET/RESET kinetics "
        "[ASSUMP], so that far above V_rd the disturb accelerates like the switching itself (×e per 70 mV); "
        "sinh(0) = 0: no disturb at 0 V", "V_rd")
    read_disturb_time: float = _p(
        _RD_TIME, "s",
        "[ASSUMP] calibration: 10^6 reads at V_cell = 0.2 V of 20 ms each (2e4 s under bias) move G 1 % of the way "
        "to its bound (Gmax_i + 2 µS for V > 0, Gmin_i - 2 µS for V < 0), i.e. 0.42 µS from 50 µS; bounded by "
        "[F~] P. Yao et al., Nature 577, 641 (2020), Extended Data Fig. 7 (TaOx/HfOx 1T1R, 10^6 read pulses of "
        "0.2 V: the distributions of the states after 1, 10^5, 5×10^5 and 10^6 reads stay separated, the drift "
        "well below the level spacing; the figure was used by its caption, not digitised, and its read-pulse "
        "width is not used: if its total time under bias was shorter than 2e4 s, the bound per second is weaker)",
        "τ_rd")
    # ---- defects (§12.8) ----------------------------------------------------------------------------
    p_form_fail: float = _p(0.0, "1", "[ASSUMP] never forms, stays ~1 nS; paper: 32/32 formed [F✓]", "")
    p_stuck_lrs: float = _p(0.0, "1", "[ASSUMP] forms over-formed, G ≈ Gmax_i·U(1, 1.2), ignores RESET", "")
    p_stuck_hrs: float = _p(0.0, "1", "[ASSUMP] forms weakly, G ≈ Gmin_i·U(0.8, 1), ignores SET", "")
    # ---- program-verify scheme (§5) and published fits, for protocols and tests ---------------------
    set_voltage: float = _p(1.35, "V", "[F✓] SET amplitude for targets < 60 µS", "")
    set_voltage_high: float = _p(1.5, "V", "[F✓] SET amplitude for targets 60-90 µS", "")
    reset_voltage: float = _p(-1.3, "V", "[F✓] RESET amplitude for targets >= 30 µS", "")
    reset_voltage_low: float = _p(-1.5, "V", "[F✓] RESET amplitude for targets 10-30 µS", "")
    band_low_edge: float = _p(30.0 * _US, "S", "[F✓] targets below use the -1.5 V RESET", "")
    band_high_edge: float = _p(60.0 * _US, "S", "[F✓] targets at or above use the +1.5 V SET", "")
    verify_pulse_width: float = _p(2.5e-6, "s", "[ASSUMP] in-loop pulse width not shown; nominal 2.5 µs", "")
    verify_max_iterations: int = _p(1000, "1", "[ASSUMP] iteration axis of the figure ends at 10^3", "")
    prog_sigma_slope_fine: float = _p(1.0688e-3, "1", "[A] aihwkit: σ_prog = a·G + b at AR 0.2 %", "")
    prog_sigma_intercept_fine: float = _p(0.81107e-3 * _US, "S", "[A] aihwkit: σ_prog at AR 0.2 %", "")
    prog_sigma_slope_coarse: float = _p(1.129027418e-2, "1", "[A] aihwkit: σ_prog = a·G + b at AR 2 %", "")
    prog_sigma_intercept_coarse: float = _p(1.12185391e-2 * _US, "S", "[A] aihwkit: σ_prog at AR 2 %", "")
    endurance_cycles: float = _p(
        1e6, "1", "[ASSUMP] no degradation up to this many pulses (not modelled)", "")

    # --------------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        total = self.p_form_fail + self.p_stuck_lrs + self.p_stuck_hrs
        if min(self.p_form_fail, self.p_stuck_lrs, self.p_stuck_hrs) < 0.0 or total > 1.0:
            raise ValueError(f"defect probabilities must be >= 0 and sum to <= 1 (sum {total})")
        if not 0.0 < self.step_set < 1.0 or not 0.0 < self.step_reset < 1.0:
            raise ValueError("step_set and step_reset must lie in (0, 1)")
        if self.noise_tau_max <= self.noise_tau_min or self.noise_per_decade < 1:
            raise ValueError("need noise_tau_max > noise_tau_min and noise_per_decade >= 1")
        if not self.temperature_ref > 0.0 or self.relax_activation_energy < 0.0:
            raise ValueError("need temperature_ref > 0 K and relax_activation_energy >= 0 eV")

    @classmethod
    def profile(cls, name: str) -> DeviceParameters:
        """Named defect profile: "paper" (no defects), "realistic" (1 % each), "hfo2" (10 % in total)."""
        try:
            overrides = PROFILES[name]
        except KeyError:
            raise ValueError(f"unknown profile {name!r}; choose from {sorted(PROFILES)}") from None
        return cls(**overrides)

    def with_overrides(self, **changes: Any) -> DeviceParameters:
        """A copy with some fields replaced (``dataclasses.replace``); unknown names raise TypeError."""
        return replace(self, **changes)

    @classmethod
    def provenance(cls) -> list[dict[str, str]]:
        """One row per field: name, default, unit, symbol and source tag."""
        return [
            {"name": f.name, "default": repr(f.default), "unit": f.metadata.get("unit", ""),
             "symbol": f.metadata.get("symbol", ""), "source": f.metadata.get("source", "")}
            for f in fields(cls)
        ]

    @classmethod
    def assumptions(cls) -> list[str]:
        """Names of the fields with no source behind them (tag [ASSUMP])."""
        return [row["name"] for row in cls.provenance() if row["source"].startswith("[ASSUMP]")]


PROFILES: dict[str, dict[str, float]] = {
    "paper": {},
    "realistic": {"p_form_fail": 0.01, "p_stuck_lrs": 0.01, "p_stuck_hrs": 0.01},
    # IBM HfO2 arrays: 9.8-13.5 % corrupt devices [A]
    "hfo2": {"p_form_fail": 0.03, "p_stuck_lrs": 0.04, "p_stuck_hrs": 0.03},
}


@dataclass(frozen=True)
class WaferParameters:
    """Die-to-die variation over a simulated wafer (each die an array of :class:`DeviceParameters`).

    A smooth radial gradient (∝ (r/R)², r the die centre's distance from the wafer centre, R the radius) plus
    a random die-to-die spread, and a few bad dies. Wafer-level non-uniformity and chip-to-chip variation of
    HfOx RRAM as separate hierarchical components: B. L. Ji et al., "In-Line-Test of Variability and Bit-Error-
    Rate of HfOx-Based Resistive Memory", IEEE IMW 2015 (arXiv:1509.00070), which gives no numbers usable here;
    the magnitudes below are assumptions sized against the die's own spreads (forming 3.17 ± 0.075 V, Fig. 1c)."""

    v_form_edge: float = _p(0.12, "V", "[ASSUMP] forming voltage higher at the wafer edge than at its centre "
                            "(thicker/denser oxide at the edge; 1.6 σ of the die's own forming spread)", "ΔV_form,edge")
    v_form_die_std: float = _p(0.02, "V", "[ASSUMP] die-to-die random spread of the mean forming voltage", "σ_V,die")
    g_max_edge: float = _p(-0.10, "1", "[ASSUMP] relative change of the mean Gmax at the edge (a narrower window)",
                           "ΔGmax,edge")
    g_max_die_std: float = _p(0.02, "1", "[ASSUMP] die-to-die relative spread of the mean Gmax", "σ_G,die")
    p_short: float = _p(0.03, "1", "[ASSUMP] dies whose array is shorted (every cell conducts before forming)", "")
    p_open: float = _p(0.03, "1", "[ASSUMP] dies with an open contact to the pads (reads nothing)", "")
    p_high_defect: float = _p(0.04, "1", "[ASSUMP] dies with many defective cells (the 'hfo2' defect "
                              "profile ×5)", "")
    g_short: float = _p(2e-3, "S", "[ASSUMP] conductance of a shorted cell (ohmic, ~500 Ω)", "G_short")

    def __post_init__(self) -> None:
        if min(self.p_short, self.p_open, self.p_high_defect) < 0 or self.p_short + self.p_open + \
                self.p_high_defect > 1:
            raise ValueError("wafer: p_short, p_open, p_high_defect must be >= 0 and sum to <= 1")
