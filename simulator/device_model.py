"""Vectorized model of an array of CMO/HfOx 1T1R ReRAM cells (IBM Zurich, arXiv 2502.04524).

Follows the published CMO/HfOx figures (arXiv 2502.04524) and the sources named per parameter; all numbers
come from :class:`DeviceParameters` (SI units).
Cells are addressed by flat index ``row * cols + col``; every state array is flat, length ``rows*cols``.

Pieces of the model
-------------------
* **Access transistor** (§12.2): square-law NMOS in series with the cell, ``R_on = 1/(k(V_G - V_T))``,
  ``I_sat = k(V_G - V_T)^2/2``; RESET polarity uses ``k/1.5`` (source degeneration, R_on × 1.5);
  ``V_G <= V_T`` leaves only a 1 pS leakage.  ``v_gate = inf`` is an ideal switch (V_cell = V_applied).
* **Forming** (§12.3): a bias lasting ``>= quasi_static_duration`` forms a pristine cell when
  ``V_cell >= V_form_i``; shorter pulses form with probability
  ``1 - exp(-(t_w/τ_f) exp((V_cell - V_form_i)/V_f))``.  The cell jumps to
  ``min(Gmax_i U(0.8, 1.1), I_sat/V_cell)``; ``I_sat > 600 µA`` makes it stuck-LRS with p = 0.5.
* **SET/RESET** (§12.4), time-consistent soft bounds:
  ``G -> G_b - (G_b - G) exp(-f r)`` with ``r = -ln(1 - s±_i)``,
  ``f = min((t_w/t_w0) exp((|V_cell| - V_ref±)/V0), f_max)``, plus ``sqrt(f) σ_c2c,i ξ``; clipped to
  ``[Gmin_i - 2 µS, Gmax_i + 2 µS]``; ``|V_cell| < V_th`` changes nothing.  A pulse acts on the relaxed
  conductance and restarts the relaxation clock.
* **Relaxation** (§12.6): a Brownian walk in σ²-time, advanced lazily at each evaluation,
  ``G_rel(τ2) = G_rel(τ1) + μ(τ2) - μ(τ1) + sqrt(σ²(τ2) - σ²(τ1)) ξ``, with the aihwkit fits
  ``μ = -a ln τ``, ``σ = b ln τ + c`` for τ >= 1 s and, below 1 s, μ = 0 and σ rising log-linearly from
  0 at τ0 = 1 ms to c.  Its marginals equal the fits at every τ.
* **Read noise** (§12.7), genuine 1/f noise: per cell a sum of unit-variance Ornstein-Uhlenbeck
  components with time constants log-spaced ``noise_per_decade`` per decade from 1 µs to 1e9 s,
  initialised from their stationary law and advanced exactly at each read
  (``x <- x e^(-dt/τ) + sqrt(1 - e^(-2dt/τ)) ξ``).  A read integrating over ``t_int`` sees component j
  with weight ``sqrt(ρ) w_j``, ``w_j² = 2(τ_j/T)²(T/τ_j - 1 + e^(-T/τ_j))`` (the OU window-averaging
  factor) at ``T = α t_int``, scaled by ``K log10(G/1 µS)`` evaluated at read time.  It is added to the
  (clamped) state and is not clamped itself, so a cell sitting at a conductance bound reads with the same
  noise as anywhere else (see "Defects and clamping").

* **Read disturb** (sub-threshold bias), deterministic, no random draw: a formed, working cell held at a cell
  voltage 0 < |V_cell| < V_th for t seconds moves toward its polarity's bound, the edge of its clamp window
  (G_b = Gmax_i + 2 µS for V > 0, Gmin_i - 2 µS for V < 0, where the kinetics clip; a state at the edge stays
  there), ``G_b - (G_b - G) exp(-(t/τ_rd) sinh(|V_cell|/V_rd))``: field-accelerated ionic hopping
  (sinh law), zero at 0 V, linear in the time under bias, so a read of shorter integration disturbs less.
  It acts on the programmed value (``g_prog``) and leaves the relaxation clock running: the disturb is a
  slow drift of the state, not a write.  Magnitude and sources: ``read_disturb_*`` in device_params.py
  (1 % of the way to the bound after 10^6 reads of 20 ms at 0.2 V).  The electrical model applies every
  non-zero bias it holds (:meth:`ArrayModel.apply_bias`), so reads disturb through the same path as pulses;
  :meth:`ArrayModel.read_series` takes n reads under one steady bias in one vectorized step.

Temperature
-----------
The die sits on the prober's chuck at temperature T (K; :class:`ThermalHistory`, shared by the bench's dies).  The
relaxation is a thermally activated ionic process, so it runs on an Arrhenius clock: its walk advances in
*equivalent time at T_ref* (25 °C, where the aihwkit fits hold), ``dτ_eq = AF(T) dt``,
``AF = exp(Ea/k (1/T_ref - 1/T))`` (``relax_activation_energy``; AF(85 °C) ≈ 1485 with Ea = 1.12 eV), and μ, σ
above are evaluated at τ_eq instead of τ.  τ_eq of a cell is E(t) - E(t_prog), E(t) = ∫_0^t AF(T(s)) ds the
bench's equivalent-time clock, so a temperature change in mid-relaxation continues the walk from where it was
(a cell held τ1 at 25 °C and then τ2 at 85 °C is where a 25 °C cell is after τ1 + AF τ2), and the walk stays
time-consistent (it is the same Brownian walk in σ²(τ_eq)).  The temperature history is piecewise constant
(:meth:`ThermalHistory.set`, the chuck reaching a set-point) or follows a callable (:meth:`ThermalHistory.
set_source`, sampled and integrated by Simpson's rule between evaluations).  At T = T_ref with no change the
code path is the isothermal one, bit for bit.  Forming voltages and the SET/RESET reference voltages shift by
``forming_voltage_temp_coeff`` / ``switching_voltage_temp_coeff`` (V/K) × (T - T_ref), both 0 (no published
figure found, see device_params.py).  Not temperature dependent: the d2d draws, the transistor, the read
noise and the read disturb (no calibrated figure).

Read-noise calibration
----------------------
With variance ρ = ln(10)/(2 n_dec) per component the spread of ``read(t0 + τ) - read(t0)`` grows by
exactly one unit of K²L² (L = log10 G/µS) per e-fold of τ.  For τ >> T the sum tends to
``ln(τ/T_w) + γ + c_w`` where ``γ + c_w = ∫[w²(x) - H(x - 1)] dln x + γ = 3/2`` (exactly), so with the
physical window ``T_w = t_int`` it would exceed the aihwkit formula ``ln((τ + T)/(2T))`` by 2.19 units
(+29 % in σ at τ = 1 s, t_int = 20 ms).  The window is therefore evaluated at ``α t_int`` with
``α = 2 e^1.5 ≈ 8.96`` (``noise_window_scale``), which makes the difference spread equal
``K log10(G/µS) sqrt(ln((τ + t_int)/(2 t_int)))`` for τ >> t_int: the aihwkit formula with t_read
replaced by the read's integration time.  This reconciles the formula with the V3 constraint that one
verify read must be much quieter than the 0.2 % acceptance band: with t_int = 20 ms, reads 25 ms apart
differ by only ~0.02 µS at 50 µS, while a read 1 h later differs by 0.16 µS.  (A read's absolute offset
from the programmed value, ~0.17 µS at 50 µS, varies only on long time scales and acts like part of
the state.)

Defects and clamping
--------------------
``stuck`` codes: 0 none; 1 stuck-LRS (drawn with p_stuck_lrs, or over-formed): forms to ~Gmax_i·U(1, 1.2)
and then ignores every pulse; 2 stuck-HRS: either form-fail (``form_fail``, never forms, reads ~1 nS) or
p_stuck_hrs (forms weakly to ~Gmin_i·U(0.8, 1) and then ignores every pulse).  Stuck cells do not relax but
carry read noise.  The state of formed, working cells is clamped (at every relaxation step) to the same
window the kinetics clip to, ``[Gmin_i - 2 µS, Gmax_i + 2 µS]`` rather than ``[Gmin_i, Gmax_i]``: otherwise
a cell left by a pulse at Gmax_i + 1 µS would read Gmax_i, reads would disagree with the state and targets
just above Gmax_i could never verify.  The clamp acts on the state (programmed value + relaxation); the read
noise is added after it and is never clamped.  Clamping the noisy read instead made the read noise vanish at
the bounds: a cell that the SET kinetics leave exactly at Gmax_i + 2 µS (~13 % of the pulses on the plateau
of a 400-pulse SET train) read exactly Gmax_i + 2 µS whenever state + noise lay above it, the same value to
every digit for every such read (issue #9).

``noise=False`` switches off the c2c noise, the relaxation and forming randomness and the read noise
(forming becomes deterministic: P >= 0.5, mid-range jump) but keeps the device-to-device draws, which
are identical for both settings.  All randomness comes from the one ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import numpy as np

from .device_params import BOLTZMANN_EV, DeviceParameters

__all__ = ["NOT_STUCK", "STUCK_HRS", "STUCK_LRS", "ArrayModel", "ThermalHistory"]

# stuck codes
NOT_STUCK = 0
STUCK_LRS = 1
STUCK_HRS = 2  # stuck in HRS after a weak forming, or never forms (form-fail)


def _window_weights_sq(tau: np.ndarray, window: float) -> np.ndarray:
    """OU window-averaging variance factor 2(τ/T)²(T/τ - 1 + e^(-T/τ)) for each τ (1 for T = 0)."""
    u = window / tau
    small = u < 1e-3
    us = np.where(small, 1.0, u)
    exact = 2.0 * (us - 1.0 + np.exp(-us)) / (us * us)
    series = 1.0 - u / 3.0 + u * u / 12.0
    return np.where(small, series, exact)


class ThermalHistory:
    """The die temperature over virtual time and the Arrhenius clock it drives (module docstring, "Temperature").

    Knots (t_k s, E_k s, AF_k, T_k K): the temperature is T_k from t_k on (a set-point) and the equivalent time
    at T_ref, E(t) = ∫_0^t AF(T(s)) ds, is piecewise linear through the knots, with slope AF_k after the last one.
    With a source (a callable t -> K) the history is sampled when an evaluation needs E beyond the last knot:
    Simpson's rule over that interval, a knot at its end.  Knots are only added going forward in time."""

    _SIMPSON = 8          # sub-intervals per integration of a source

    def __init__(self, t_ref: float, activation_energy: float, temperature: float | None = None) -> None:
        self.t_ref = float(t_ref)                            # K
        self.activation_energy = float(activation_energy)    # eV
        self._ea_k = self.activation_energy / BOLTZMANN_EV     # K
        temp = self.t_ref if temperature is None else self._checked(temperature)
        self._kt, self._ke = [0.0], [0.0]
        self._kaf, self._ktemp = [self.acceleration(temp)], [temp]
        self._source: Callable[[float], float] | None = None
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self.isothermal_af: float | None = self._kaf[0]   # AF while the history is one constant segment, else None

    @staticmethod
    def _checked(temperature: float) -> float:
        t = float(temperature)
        if not (t > 0.0 and math.isfinite(t)):
            raise ValueError(f"temperature must be a finite number of kelvin > 0, got {temperature!r}")
        return t

    def acceleration(self, temperature: float) -> float:
        """Arrhenius factor AF = exp(Ea/k (1/T_ref - 1/T)) of the relaxation clock at ``temperature`` (K)."""
        if temperature == self.t_ref:
            return 1.0
        return math.exp(self._ea_k * (1.0 / self.t_ref - 1.0 / temperature))

    def temperature(self, t: float | None = None) -> float:
        """Die temperature (K) at virtual time t (s); default: the latest one known."""
        if self._source is not None and t is not None:
            return self._checked(self._source(t))
        if t is None or t >= self._kt[-1]:
            return self._ktemp[-1]
        return self._ktemp[max(bisect_right(self._kt, t) - 1, 0)]

    def set(self, temperature: float, at: float) -> None:
        """The die is at ``temperature`` (K) from virtual time ``at`` (s) on (not before the last change); this
        ends a source."""
        temp = self._checked(temperature)
        at = float(at)
        if self._source is not None:
            self._sync(at)
            self._source = None
        at = max(at, self._kt[-1])
        if at == self._kt[-1]:
            self._kaf[-1], self._ktemp[-1] = self.acceleration(temp), temp
        elif temp != self._ktemp[-1]:
            self._append(at, self._extrapolate(at), self.acceleration(temp), temp)
        self._changed()

    def set_source(self, source: Callable[[float], float] | None, at: float) -> None:
        """From virtual time ``at`` (s) on, the die temperature is ``source(t)`` (K), e.g. a chuck's ramp; None
        holds the temperature the source had at ``at``.  The source is sampled for times after the last knot only
        and must give the temperature for every such t; a source whose law changes (a new set-point) is handed
        over by a new call made before the change takes effect: the old source is integrated up to ``at`` first."""
        at = max(float(at), self._kt[-1])
        if self._source is not None:
            self._sync(at)
        old, self._source = self._source, None
        temp = self._checked(old(at)) if source is None and old is not None else None
        if source is not None:
            temp = self._checked(source(at))
        if temp is not None:
            if at == self._kt[-1]:
                self._kaf[-1], self._ktemp[-1] = self.acceleration(temp), temp
            else:
                self._append(at, self._extrapolate(at), self.acceleration(temp), temp)
        self._source = source
        self._changed()

    def _extrapolate(self, t: float) -> float:
        return self._ke[-1] + self._kaf[-1] * (t - self._kt[-1])

    def _append(self, t: float, e: float, af: float, temp: float) -> None:
        self._kt.append(t)
        self._ke.append(e)
        self._kaf.append(af)
        self._ktemp.append(temp)

    def _changed(self) -> None:
        self._arrays = None
        self.isothermal_af = self._kaf[0] if len(self._kt) == 1 and self._source is None else None

    def _sync(self, t: float) -> None:
        """Integrate the source's AF from the last knot up to t (s) and put a knot there."""
        src, t0 = self._source, self._kt[-1]
        if src is None or not t > t0:
            return
        n = self._SIMPSON if t - t0 <= 60.0 else 8 * self._SIMPSON      # a long wait may hide a whole ramp
        h = (t - t0) / n
        temps = [self._checked(src(t0 + k * h)) for k in range(n + 1)]
        af = [self.acceleration(x) for x in temps]
        e = self._ke[-1] + h / 3.0 * (af[0] + af[n] + 4.0 * sum(af[1:n:2]) + 2.0 * sum(af[2:n:2]))
        if len(self._kt) > 1 and all(x == self._ktemp[-1] for x in temps) and self._ktemp[-2] == self._ktemp[-1]:
            # a constant stretch continuing a constant segment: move its end knot forward instead of adding one
            self._kt[-1], self._ke[-1] = t, self._ke[-2] + self._kaf[-2] * (t - self._kt[-2])
        else:
            self._append(t, e, af[n], temps[n])
        self._arrays = None

    def equivalent_time(self, t: Any) -> Any:
        """E(t) = ∫_0^t AF(T(s)) ds (s of equivalent time at T_ref) for virtual times t (s, scalar or array)."""
        x = np.asarray(t, dtype=float)
        if self._source is not None and x.size:
            self._sync(float(x.max()))
        if self._arrays is None:
            self._arrays = (np.array(self._kt), np.array(self._ke))
        kt, ke = self._arrays
        e = np.where(x > kt[-1], ke[-1] + self._kaf[-1] * (x - kt[-1]), np.interp(x, kt, ke))
        return e if e.ndim else float(e)

    def equivalent_time_one(self, t: float) -> float:
        """Scalar :meth:`equivalent_time` (plain floats)."""
        if self._source is not None:
            self._sync(t)
        kt = self._kt
        if t >= kt[-1]:
            return self._ke[-1] + self._kaf[-1] * (t - kt[-1])
        k = max(bisect_right(kt, t) - 1, 0)
        ke = self._ke
        return ke[k] + (t - kt[k]) * ((ke[k + 1] - ke[k]) / (kt[k + 1] - kt[k]))

    def age(self, t: Any, t_prog: Any) -> Any:
        """Equivalent time at T_ref (s) from t_prog to t (virtual s; scalars or arrays): (t - t_prog) at T_ref,
        AF (t - t_prog) at another constant temperature, E(t) - E(t_prog) after a change."""
        af = self.isothermal_af
        if af is not None:
            return t - t_prog if af == 1.0 else af * (t - t_prog)
        return self.equivalent_time(t) - self.equivalent_time(t_prog)

    def age_one(self, t: float, t_prog: float) -> float:
        """Scalar :meth:`age` (plain floats)."""
        af = self.isothermal_af
        if af is not None:
            return t - t_prog if af == 1.0 else af * (t - t_prog)
        return self.equivalent_time_one(t) - self.equivalent_time_one(t_prog)


class ArrayModel:
    """State and physics of a ``rows`` × ``cols`` array of 1T1R cells (SI units, flat indexing)."""

    def __init__(
        self, rows: int, cols: int, params: DeviceParameters, rng: np.random.Generator, *, noise: bool = True,
        thermal: ThermalHistory | None = None,
    ) -> None:
        if rows < 1 or cols < 1:
            raise ValueError("rows and cols must be >= 1")
        p = params
        self.rows, self.cols, self.size = int(rows), int(cols), int(rows) * int(cols)
        self.params, self.rng, self.noise = p, rng, bool(noise)
        n = self.size

        # ---- device-to-device draws, once, in a fixed order (independent of `noise`) ----
        g_min = np.maximum(rng.normal(p.g_min_mean, p.g_min_std, n), 1e-6)
        g_max = np.maximum(rng.normal(p.g_max_mean, p.g_max_std, n), g_min + p.g_window_min_width)
        s_set = np.minimum(p.step_set * np.exp(p.step_d2d_sigma * rng.standard_normal(n)), 0.95)
        s_reset = np.minimum(p.step_reset * np.exp(p.step_d2d_sigma * rng.standard_normal(n)), 0.95)
        v_form = rng.normal(p.forming_voltage_mean, p.forming_voltage_std, n)
        u_defect = rng.random(n)
        dg_sp = s_set * s_reset * (g_max - g_min) / (s_set + s_reset)
        # one (9, n) array, so that a single gather fetches every per-cell constant; rows 5-7 are the clamp
        # window and the "relaxes and switches" flag: (-inf, inf, 0) until the cell is formed and not stuck
        self._d2d = np.vstack([
            g_min, g_max, -np.log1p(-s_set), -np.log1p(-s_reset), p.nsr * dg_sp,
            np.full(n, -np.inf), np.full(n, np.inf), np.zeros(n), v_form,
        ])
        self.g_min, self.g_max = self._d2d[0], self._d2d[1]          # S
        self.s_set, self.s_reset = s_set, s_reset                      # per nominal pulse
        self.sigma_c2c = self._d2d[4]                                   # S per nominal pulse
        self.v_form = self._d2d[8]                                      # V

        # ---- defects ----
        p_ff, p_lrs, p_hrs = p.p_form_fail, p.p_stuck_lrs, p.p_stuck_hrs
        self.form_fail = u_defect < p_ff
        self.stuck = np.zeros(n, dtype=np.int8)
        self.stuck[(u_defect >= p_ff) & (u_defect < p_ff + p_lrs)] = STUCK_LRS
        hrs = (u_defect >= p_ff + p_lrs) & (u_defect < p_ff + p_lrs + p_hrs)
        self.stuck[self.form_fail | hrs] = STUCK_HRS

        # ---- state ----
        self.pristine = np.ones(n, dtype=bool)
        self._n_pristine = n
        self.g_prog = np.full(n, p.g_pristine)         # S, right after the last write
        self.t_prog = np.zeros(n)                      # s, end of the last write
        self.rel_walk = np.zeros(n)                    # S, Brownian part of the relaxation
        self.rel_var = np.zeros(n)                     # S², σ² at the last evaluation

        # ---- 1/f read noise ----
        n_tau = int(round(p.noise_per_decade * math.log10(p.noise_tau_max / p.noise_tau_min))) + 1
        self.noise_tau = np.logspace(math.log10(p.noise_tau_min), math.log10(p.noise_tau_max), n_tau)
        self._inv_tau = 1.0 / self.noise_tau
        self._rho = math.log(10.0) / (2.0 * p.noise_per_decade)
        self.noise_x = rng.standard_normal((n, n_tau)) if self.noise else np.zeros((n, 0))
        self.noise_t = np.zeros(n)
        self._weights: dict[float, np.ndarray] = {}

        # ---- scalars used on every call ----
        self._early_slope = p.relax_sigma_intercept / -math.log(p.relax_onset)
        self._k_rd = p.read_noise_k / math.log(10.0)   # K log10(G/µS) = _k_rd * ln(G/µS)
        # ---- temperature: the chuck's history (shared by a bench's dies) and this die's coefficients ----
        self.thermal = thermal if thermal is not None else ThermalHistory(p.temperature_ref,
                                                                           p.relax_activation_energy)
        self.t_ref = p.temperature_ref                              # K
        self._tc_form = p.forming_voltage_temp_coeff              # V/K (0: no shift)
        self._tc_switch = p.switching_voltage_temp_coeff          # V/K (0: no shift)
        # |V_applied| below this cannot form or switch any cell: the electrical model's reads (0.2 V) are
        # applied as the read disturb only (half the switching threshold, the bias the circuit used to ignore)
        self._weak_bias = 0.5 * p.switching_threshold

    # ------------------------------------------------------------------ helpers
    def flat_index(self, row: np.ndarray | int, col: np.ndarray | int) -> np.ndarray:
        """Flat cell index for (row, col)."""
        r, c = np.asarray(row), np.asarray(col)
        if np.any((r < 0) | (r >= self.rows) | (c < 0) | (c >= self.cols)):
            raise IndexError("row/col outside the array")
        return np.atleast_1d(r * self.cols + c).astype(np.intp)

    def true_conductance(self) -> np.ndarray:
        """Ground truth: conductance right after the last write, every cell (S, a copy)."""
        return self.g_prog.copy()

    def state_summary(self) -> dict[str, float]:
        """Counts of pristine / formed / stuck cells; mean programmed conductance of formed cells (S)."""
        formed = ~self.pristine
        return {
            "cells": float(self.size),
            "pristine": float(self.pristine.sum()),
            "formed": float(formed.sum()),
            "stuck_lrs": float((self.stuck == STUCK_LRS).sum()),
            "stuck_hrs": float((self.stuck == STUCK_HRS).sum()),
            "form_fail": float(self.form_fail.sum()),
            "mean_g_formed": float(self.g_prog[formed].mean()) if formed.any() else float("nan"),
        }

    def _relaxed(
        self, idx: np.ndarray, t: float, act: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        """Advance the relaxation walk of cells `idx` to time t (s); return their drifted conductance (S).

        `act` is 1.0 for formed, non-stuck cells (0.0 otherwise), `lo`/`hi` their clamp window."""
        p = self.params
        lt = np.log(np.maximum(self.thermal.age(t, self.t_prog[idx]), p.relax_onset))
        late = np.maximum(lt, 0.0)
        # σ: 0 at τ0, log-linear to c at 1 s, then b ln τ + c; μ = -a ln τ for τ > 1 s
        sig = p.relax_sigma_intercept + p.relax_sigma_slope * late + self._early_slope * np.minimum(lt, 0.0)
        var0 = self.rel_var[idx]
        var = np.maximum(sig * sig, var0)
        walk = self.rel_walk[idx]
        if self.noise:                       # the walk of cells that do not relax (pristine, stuck) is not drawn
            step = np.sqrt(var - var0)
            if act.all():
                walk = walk + step * self.rng.standard_normal(idx.size)
            else:
                moving = act > 0.0
                walk = walk.copy()
                walk[moving] += step[moving] * self.rng.standard_normal(int(moving.sum()))
            self.rel_walk[idx] = walk
        self.rel_var[idx] = var
        return np.minimum(np.maximum(self.g_prog[idx] + act * (walk - p.relax_mean_slope * late), lo), hi)

    def _window(self, t_int: float) -> np.ndarray:
        """Per-component read weights sqrt(ρ)·w_j for an integration time t_int (cached)."""
        w = self._weights.get(t_int)
        if w is None:
            scale = self.params.noise_window_scale * max(float(t_int), 0.0)
            w = np.sqrt(self._rho * _window_weights_sq(self.noise_tau, scale))
            if len(self._weights) > 64:
                self._weights.clear()
            self._weights[t_int] = w
        return w

    # ------------------------------------------------------------------ physics
    def transistor(
        self, g: np.ndarray, v_applied: np.ndarray, v_gate: np.ndarray, reset: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """§12.2: (v_cell in V, current in A) for cells of conductance g (S) under v_applied (BL - SL, V;
        + = SET polarity) and gate voltage v_gate (V).  Square law: R_on = 1/(k(V_G - V_T)),
        I_sat = k(V_G - V_T)²/2; `reset` (RESET polarity) uses k/1.5 (R_on × 1.5, I_sat / 1.5).
        V_G <= V_T leaves a 1 pS leakage; v_gate = inf is an ideal switch.  The current has the sign of
        v_applied."""
        p = self.params
        v = np.asarray(v_applied, dtype=float)
        if np.ndim(reset) == 0:
            k_eff = p.transconductance / p.reset_degeneration if reset else p.transconductance
        else:
            k_eff = np.where(reset, p.transconductance / p.reset_degeneration, p.transconductance)
        overdrive = np.maximum(np.asarray(v_gate, dtype=float) - p.threshold_voltage, 0.0)
        g_channel = k_eff * overdrive + p.transistor_off_conductance
        current = g * v / (1.0 + g / g_channel)
        i_sat = 0.5 * k_eff * overdrive * overdrive + p.transistor_off_conductance * np.abs(v)
        current = np.copysign(np.minimum(np.abs(current), i_sat), v)
        return current / g, current

    def transistor_one(self, g: float, v_applied: float, v_gate: float) -> float:
        """Scalar :meth:`transistor` current (A) for one cell; same formulas, no numpy overhead."""
        p = self.params
        k_eff = p.transconductance / p.reset_degeneration if v_applied < 0.0 else p.transconductance
        overdrive = v_gate - p.threshold_voltage
        if overdrive < 0.0:
            overdrive = 0.0
        g_channel = k_eff * overdrive + p.transistor_off_conductance
        current = g * v_applied / (1.0 + g / g_channel)
        i_sat = 0.5 * k_eff * overdrive * overdrive + p.transistor_off_conductance * abs(v_applied)
        return math.copysign(min(abs(current), i_sat), v_applied)

    def apply_bias(
        self, index: np.ndarray, v_applied: np.ndarray, v_gate: np.ndarray, duration: float, t_end: float,
        hold: float | None = None, final: bool = True,
    ) -> None:
        """Hold cells `index` (flat ints, no duplicates) at v_applied (BL - SL, V) with gate v_gate (V)
        for `duration` s ending at virtual time t_end (s): forming of pristine cells (§12.3), SET/RESET
        kinetics of formed ones (§12.4); every cell whose conductance changes restarts its relaxation
        clock at t_end.  v_applied and v_gate are scalars or arrays matching `index`.  `hold` (s, default
        `duration`) is how long this same bias has been held in all, when a caller applies one steady bias
        in several slices: forming then follows the quasi-static rule as soon as the hold is long enough;
        `final` = False marks a slice after which the same bias continues, so a short hold is not judged
        by the pulse rule until it has ended (its full length is known)."""
        p = self.params
        v = np.asarray(v_applied, dtype=float)
        if v.ndim and v.size == 1:
            v = v.reshape(())
        scalar_v = v.ndim == 0
        if duration <= 0.0:
            if duration == 0.0 and final and hold is not None and hold > 0.0:
                self._end_hold(np.asarray(index, dtype=np.intp).reshape(-1), v, v_gate, t_end, hold)
            return
        if scalar_v and abs(float(v)) < p.switching_threshold and (
                not self._n_pristine or abs(float(v)) < self._weak_bias):
            # below the switching threshold (and far below forming: a weak bias draws nothing for pristine
            # cells): only the read disturb, which draws no random number
            if float(v) != 0.0:
                self._disturb(np.asarray(index, dtype=np.intp).reshape(-1), float(v), v_gate, duration)
            return
        idx = np.asarray(index, dtype=np.intp).reshape(-1)
        if not scalar_v:
            weak = np.abs(v) < self._weak_bias
            if weak.any():                   # weak biases: the disturb only; the rest as before
                vg = np.broadcast_to(np.asarray(v_gate, dtype=float), idx.shape)
                self._disturb(idx[weak], v[weak], vg[weak], duration)
                if weak.all():
                    return
                idx, v, v_gate = idx[~weak], v[~weak], vg[~weak]
        if idx.size == 1 and scalar_v and self._scalar_fast_path and np.size(v_gate) == 1:
            i = int(idx[0])
            if self._d2d[7, i] > 0.0:  # formed, not stuck: scalar fast path, same physics and draws
                self._apply_one(i, float(v), float(np.reshape(v_gate, ())), duration, t_end)
                return
            if self.pristine[i]:       # pristine: scalar up to the forming decision (forming ramps' hot path)
                self._apply_pristine_one(i, float(v), float(np.reshape(v_gate, ())), duration, t_end,
                                         duration if hold is None else max(hold, duration), final)
                return
        gmin, gmax, r_set, r_reset, sig, lo, hi, act, vform = self._d2d[:, idx]
        g = self._relaxed(idx, t_end - duration, act, lo, hi)
        v_cell = self.transistor(g, v, v_gate, v < 0.0)[0]
        if self._n_pristine:
            pristine = self.pristine[idx]
            if pristine.any():
                self._form(idx, pristine, v_cell, v_gate, duration, t_end, gmin, gmax, vform,
                           duration if hold is None else max(hold, duration), final)
        # `act` was gathered before forming, so a cell formed by this bias does not also switch
        switch = (act > 0.0) & (np.abs(v_cell) >= p.switching_threshold)
        below = (act > 0.0) & ~switch & (v_cell != 0.0)
        if below.any():
            self._disturb_cells(idx[below], v_cell[below], duration)
        if not switch.any():
            return
        if scalar_v:
            bound, rate, v_ref = (gmax, r_set, p.v_ref_set) if v > 0.0 else (gmin, r_reset, p.v_ref_reset)
        else:
            setting = v_cell > 0.0
            bound, rate = np.where(setting, gmax, gmin), np.where(setting, r_set, r_reset)
            v_ref = np.where(setting, p.v_ref_set, p.v_ref_reset)
        if self._tc_switch:
            v_ref = v_ref + self._tc_switch * (self.thermal.temperature(t_end) - self.t_ref)
        f = (duration / p.pulse_width_ref) * np.exp((np.abs(v_cell) - v_ref) / p.kinetic_voltage_scale)
        f = np.minimum(f, p.max_pulse_factor)
        g_new = bound - (bound - g) * np.exp(-f * rate)
        if self.noise:
            g_new += np.sqrt(f) * sig * self.rng.standard_normal(idx.size)
        g_new = np.minimum(np.maximum(g_new, lo), hi)
        changed = idx[switch]
        self.g_prog[changed] = g_new[switch]
        self.t_prog[changed] = t_end
        self.rel_walk[changed] = 0.0
        self.rel_var[changed] = 0.0

    def _end_hold(self, idx: np.ndarray, v: np.ndarray, v_gate: Any, t_end: float, hold: float) -> None:
        """A bias held ``hold`` s ended at t_end with no time left to apply (its last slice was applied as not
        final): the pristine cells it biased are judged by the forming rule once, with the hold's whole length
        (:meth:`apply_bias` with duration 0; weak biases form nothing and draw nothing, as there)."""
        if not self._n_pristine:
            return
        vg = np.broadcast_to(np.asarray(v_gate, dtype=float), idx.shape)
        va = np.broadcast_to(v, idx.shape)
        cand = self.pristine[idx] & (np.abs(va) >= self._weak_bias)
        if not cand.any():
            return
        v_cell = self.transistor(self.g_prog[idx], va, vg, va < 0.0)[0]
        gmin, gmax, vform = self._d2d[[0, 1, 8]][:, idx]
        self._form(idx, cand, v_cell, vg, 0.0, t_end, gmin, gmax, vform, hold, True)

    def apply_bias_one(self, i: int, v_applied: float, v_gate: float, duration: float, t_end: float,
                       hold: float, final: bool = True) -> None:
        """:meth:`apply_bias` of one cell i (flat index) at v_applied (V) and v_gate (V), in plain floats where
        the vector code has a scalar path: the same physics, random draws and order (the electrical model's
        common case: one routed cell)."""
        if duration <= 0.0:
            if duration == 0.0 and final and hold > 0.0 and self._n_pristine and self.pristine.item(i) \
                    and abs(v_applied) >= self._weak_bias:
                if self._scalar_fast_path:
                    self._apply_pristine_one(i, v_applied, v_gate, 0.0, t_end, hold, True)
                else:
                    self._end_hold(np.array([i], dtype=np.intp), np.asarray(v_applied), v_gate, t_end, hold)
            return
        p = self.params
        if abs(v_applied) < p.switching_threshold and (not self._n_pristine or abs(v_applied) < self._weak_bias):
            if v_applied != 0.0 and self._d2d.item(7, i) > 0.0:       # the read disturb only (_disturb)
                g = self.g_prog.item(i)
                v_cell = self.transistor_one(g, v_applied, v_gate) / g
                if v_cell != 0.0:
                    self._disturb_one(i, v_cell, duration)
            return
        if self._scalar_fast_path:
            if self._d2d.item(7, i) > 0.0:
                self._apply_one(i, v_applied, v_gate, duration, t_end)
                return
            if self.pristine.item(i):
                self._apply_pristine_one(i, v_applied, v_gate, duration, t_end, max(hold, duration), final)
                return
        self.apply_bias(np.array([i], dtype=np.intp), v_applied, np.array([v_gate]), duration, t_end, hold=hold,
                        final=final)

    def _form(self, idx: np.ndarray, pristine: np.ndarray, v_cell: np.ndarray, v_gate: np.ndarray,
              duration: float, t_end: float, gmin: np.ndarray, gmax: np.ndarray, vform: np.ndarray,
              hold: float, final: bool) -> None:
        """Forming of the pristine cells among `idx` (§12.3); `hold` >= `duration` is the steady-bias time.
        A hold shorter than the quasi-static duration is a pulse, judged once it has ended (`final`)."""
        p = self.params
        cand = pristine & ~self.form_fail[idx] & (v_cell > 0.0)
        if not cand.any():
            return
        if self._tc_form:
            vform = vform + self._tc_form * (self.thermal.temperature(t_end) - self.t_ref)
        if hold >= p.quasi_static_duration:
            forms = cand & (v_cell >= vform)
        elif not final:
            return
        else:
            hazard = (hold / p.forming_time) * np.exp((v_cell - vform) / p.forming_voltage_scale)
            prob = -np.expm1(-hazard)
            forms = cand & ((self.rng.random(idx.size) < prob) if self.noise else (prob >= 0.5))
        if forms.any():
            self._form_jump(idx, forms, v_cell, v_gate, t_end, gmin, gmax)

    def _form_jump(self, idx: np.ndarray, forms: np.ndarray, v_cell: np.ndarray, v_gate: Any, t_end: float,
                   gmin: np.ndarray, gmax: np.ndarray) -> None:
        """The cells ``idx[forms]`` form at t_end (§12.3): the jump to min(Gmax_i U(low, high), I_sat/V_cell),
        over-forming into stuck-LRS, stuck cells into their state; their relaxation starts."""
        p = self.params
        sel = np.flatnonzero(forms)
        cells = idx[sel]
        u = self.rng.random((2, sel.size)) if self.noise else np.full((2, sel.size), 0.5)
        vc = v_cell[sel]
        vg = np.broadcast_to(np.asarray(v_gate, dtype=float), idx.shape)[sel]
        overdrive = np.maximum(vg - p.threshold_voltage, 0.0)
        i_sat = 0.5 * p.transconductance * overdrive * overdrive + p.transistor_off_conductance * vc
        g_new = np.minimum(gmax[sel] * (p.forming_g_low + (p.forming_g_high - p.forming_g_low) * u[0]),
                           i_sat / vc)
        stuck = self.stuck[cells]
        over = (stuck == NOT_STUCK) & (i_sat > p.overforming_current) & (u[1] < p.overforming_probability)
        stuck = np.where(over, STUCK_LRS, stuck).astype(np.int8)
        g_new = np.where(stuck == STUCK_LRS, gmax[sel] * (1.0 + 0.2 * u[0]), g_new)
        g_new = np.where(stuck == STUCK_HRS, gmin[sel] * (0.8 + 0.2 * u[0]), g_new)
        self.stuck[cells] = stuck
        self.pristine[cells] = False
        self._n_pristine -= cells.size
        good = cells[stuck == NOT_STUCK]
        self._d2d[5, good] = self.g_min[good] - p.clip_margin
        self._d2d[6, good] = self.g_max[good] + p.clip_margin
        self._d2d[7, good] = 1.0
        self.g_prog[cells] = g_new
        self.t_prog[cells] = t_end
        self.rel_walk[cells] = 0.0
        self.rel_var[cells] = 0.0

    # ------------------------------------------------------------------ read disturb
    def disturb_factor(self, v_cell: np.ndarray | float, duration: float) -> np.ndarray | float:
        """Read-disturb exponent (t/τ_rd) sinh(|V_cell|/V_rd) of a bias of v_cell (V) held `duration` s; the
        state moves the fraction 1 - exp(-factor) of the way to its bound.  0 at 0 V."""
        p = self.params
        return duration * np.sinh(np.abs(v_cell) / p.read_disturb_voltage_scale) / p.read_disturb_time

    def _disturb(self, idx: np.ndarray, v: float | np.ndarray, v_gate: Any, duration: float) -> None:
        """Read disturb of cells `idx` held at v_applied `v` (V) with gate `v_gate` (V) for `duration` s: the
        cell voltage from the programmed conductance through the access transistor; formed, working cells only."""
        if idx.size == 1 and np.ndim(v) == 0 and np.size(v_gate) == 1:
            i = idx.item()
            if self._d2d.item(7, i) > 0.0:
                g = self.g_prog.item(i)
                vg = v_gate.item() if isinstance(v_gate, np.ndarray) else float(v_gate)
                v_cell = self.transistor_one(g, float(v), vg) / g
                if v_cell != 0.0:
                    self._disturb_one(i, v_cell, duration)
            return
        act = self._d2d[7, idx] > 0.0
        if not act.any():
            return
        cells = idx[act]
        va = np.broadcast_to(np.asarray(v, dtype=float), idx.shape)[act]
        vg = np.broadcast_to(np.asarray(v_gate, dtype=float), idx.shape)[act]
        v_cell = self.transistor(self.g_prog[cells], va, vg, va < 0.0)[0]
        self._disturb_cells(cells, v_cell, duration)

    def _disturb_cells(self, cells: np.ndarray, v_cell: np.ndarray, duration: float) -> None:
        """Move formed, working `cells` at cell voltages v_cell (V, |v_cell| < V_th) toward their bound."""
        f = self.disturb_factor(v_cell, duration)
        bound = np.where(v_cell > 0.0, self._d2d[6, cells], self._d2d[5, cells])
        self.g_prog[cells] = bound - (bound - self.g_prog[cells]) * np.exp(-f)

    def _disturb_one(self, i: int, v_cell: float, duration: float) -> None:
        """Scalar :meth:`_disturb_cells` for one formed, working cell i."""
        p = self.params
        f = duration * math.sinh(abs(v_cell) / p.read_disturb_voltage_scale) / p.read_disturb_time
        bound = self._d2d.item(6, i) if v_cell > 0.0 else self._d2d.item(5, i)
        self.g_prog[i] = bound - (bound - self.g_prog.item(i)) * math.exp(-f)

    def read_series(self, i: int, t0: float, dt: float, n: int, t_int: float, v_applied: float, v_gate: float,
                    extra: int = 0, commit_draw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """n reads of formed cell i at t0 + k·dt (s), k = 1 … n, under one steady bias v_applied (V, gate
        v_gate V) below the switching threshold, each integrating t_int s, in one vectorized step; the cell was
        read (and its bias committed) at t0.  Before each read the bias held dt since the previous one is
        applied (the read disturb), then the state (relaxation walk) and the 1/f read noise are advanced exactly
        as :meth:`conductance` does read by read.  Random draws come in the order n single reads would make
        them: per read [a zero-step relaxation draw of the commit (``commit_draw``, see :meth:`apply_bias`),
        the relaxation step, the read-noise components, ``extra`` caller draws] (each only where the single
        read makes it).  Returns (conductances, S, shape (n,); the caller's draws, shape (n, extra))."""
        p = self.params
        if self.pristine.item(i):
            raise ValueError("read_series needs a formed cell (a pristine cell reads without noise)")
        k = np.arange(1, n + 1, dtype=float)
        t = t0 + k * dt
        act = self._d2d.item(7, i)
        lo, hi = self._d2d.item(5, i), self._d2d.item(6, i)
        noise = self.noise
        n_tau = self.noise_tau.size
        walk_draw = noise and act > 0.0
        cols = int(commit_draw and walk_draw) + int(walk_draw) + (n_tau if noise else 0) + extra
        z = self.rng.standard_normal((n, cols)) if cols else np.zeros((n, 0))
        c = int(commit_draw and walk_draw)
        # read disturb: the bias held dt before each read (deterministic, the same factor each time)
        g_prog0 = self.g_prog.item(i)
        if act > 0.0:
            v_cell = self.transistor_one(g_prog0, v_applied, v_gate) / g_prog0
            if abs(v_cell) >= p.switching_threshold:
                raise ValueError(f"read_series: |V_cell| = {abs(v_cell)} V reaches the switching threshold")
            bound = self._d2d.item(6, i) if v_cell > 0.0 else self._d2d.item(5, i)
            f1 = float(self.disturb_factor(v_cell, dt)) if v_cell != 0.0 else 0.0
            g_prog = bound - (bound - g_prog0) * np.exp(-f1 * k)
        else:
            g_prog = np.full(n, g_prog0)
        # relaxation: the Brownian walk in σ²-time, one step per read
        lt = np.log(np.maximum(self.thermal.age(t, self.t_prog.item(i)), p.relax_onset))
        late = np.maximum(lt, 0.0)
        sig = p.relax_sigma_intercept + p.relax_sigma_slope * late + self._early_slope * np.minimum(lt, 0.0)
        var = np.maximum.accumulate(np.maximum(sig * sig, self.rel_var.item(i)))
        walk0 = self.rel_walk.item(i)
        if walk_draw:
            step = np.sqrt(np.diff(var, prepend=self.rel_var.item(i))) * z[:, c]
            walk = walk0 + np.cumsum(step)
            c += 1
            self.rel_walk[i] = walk[-1]
        else:
            walk = np.full(n, walk0)
        self.rel_var[i] = var[-1]
        self.g_prog[i] = g_prog[-1]
        g = np.minimum(np.maximum(g_prog + act * (walk - p.relax_mean_slope * late), lo), hi)
        if noise:
            # 1/f read noise: each OU component an AR(1) recursion, advanced exactly per read
            from scipy.signal import lfilter

            xi = z[:, c:c + n_tau]
            c += n_tau
            gaps = np.diff(t, prepend=self.noise_t.item(i)).clip(min=0.0)
            x_prev = self.noise_x[i].copy()
            y = np.empty((n, n_tau))
            uniform = np.allclose(gaps[1:], dt, rtol=1e-9, atol=0.0)
            for j in range(n_tau):
                inv = self._inv_tau[j]
                if uniform:
                    a1 = math.exp(-dt * inv)
                    s1 = math.sqrt(-math.expm1(-2.0 * dt * inv))
                    # first read from the last one before the series, the rest at the steady spacing dt
                    a0 = math.exp(-gaps[0] * inv)
                    first = x_prev[j] * a0 + math.sqrt(-math.expm1(-2.0 * gaps[0] * inv)) * xi[0, j]
                    y[0, j] = first
                    if n > 1:
                        y[1:, j] = lfilter([1.0], [1.0, -a1], s1 * xi[1:, j], zi=[a1 * first])[0]
                else:
                    a = np.exp(-gaps * inv)
                    s_ = np.sqrt(-np.expm1(-2.0 * gaps * inv))
                    x = x_prev[j]
                    for m in range(n):
                        x = x * a[m] + s_[m] * xi[m, j]
                        y[m, j] = x
            self.noise_x[i] = y[-1]
            self.noise_t[i] = t[-1]
            g = g + self._k_rd * np.maximum(np.log(g * 1e6), 0.0) * (y @ self._window(t_int))
        return g, z[:, c:c + extra]

    def set_stuck(self, index: np.ndarray, state: str, t: float) -> None:
        """Make cells stuck from now on (fault injection): "lrs" at ~1.1·Gmax_i, "hrs" at ~0.9·Gmin_i;
        they ignore every pulse and stop relaxing.  Pristine cells are marked and form into that state."""
        cells = np.asarray(index, dtype=np.intp).reshape(-1)
        if state not in ("lrs", "hrs"):
            raise ValueError(f"stuck state must be 'lrs' or 'hrs', got {state!r}")
        code = STUCK_LRS if state == "lrs" else STUCK_HRS
        self.stuck[cells] = code
        formed = cells[~self.pristine[cells]]
        self._d2d[5, formed], self._d2d[6, formed], self._d2d[7, formed] = -np.inf, np.inf, 0.0
        self.g_prog[formed] = (1.1 * self.g_max[formed]) if code == STUCK_LRS else (0.9 * self.g_min[formed])
        self.t_prog[formed] = t
        self.rel_walk[formed] = 0.0
        self.rel_var[formed] = 0.0

    def conductance(self, index: np.ndarray, t: float, t_int: float) -> np.ndarray:
        """Conductance (S) that a read of cells `index` at virtual time t (s), integrating over t_int (s),
        sees: the state (programmed value + relaxation walk, clamped to [Gmin_i - 2 µS, Gmax_i + 2 µS] for
        formed, non-stuck cells) plus the 1/f read noise, which is not clamped: it is the same at the bounds
        as inside the window.  Pristine cells read ~1 nS without relaxation or noise (and draw none)."""
        idx = np.asarray(index, dtype=np.intp).reshape(-1)
        if idx.size == 1 and self._scalar_fast_path:
            return np.array([self.conductance_one(int(idx[0]), t, t_int)])
        lo, hi, act = self._d2d[5:8, idx]
        g = self._relaxed(idx, t, act, lo, hi)
        if not self.noise:
            return g
        if self._n_pristine:                 # pristine cells read without noise: their noise state waits
            formed = ~self.pristine[idx]
            if not formed.all():
                g[formed] = self._read_noise(idx[formed], g[formed], t, t_int)
                return g
        return self._read_noise(idx, g, t, t_int)

    def _read_noise(self, idx: np.ndarray, g: np.ndarray, t: float, t_int: float) -> np.ndarray:
        """g (S) of cells idx plus their 1/f read noise at time t (s) over an integration of t_int (s)."""
        decay = np.maximum(t - self.noise_t[idx], 0.0)[:, None] * self._inv_tau
        x = self.noise_x[idx] * np.exp(-decay)
        x += np.sqrt(-np.expm1(-2.0 * decay)) * self.rng.standard_normal(x.shape)
        self.noise_x[idx] = x
        self.noise_t[idx] = t
        # the read noise rides on the clamped state and is not clamped again (issue #9: clamping state + noise
        # pinned reads of a cell at its bound to the bound itself, bit-identical read after read)
        return g + self._k_rd * np.maximum(np.log(g * 1e6), 0.0) * (x @ self._window(t_int))

    # ------------------------------------------------------------------ scalar fast paths
    # Same formulas, operation order and random draws as the vector code above, in plain floats: one cell
    # per call is the instrument layer's common case.  tests/test_device_model.py checks the equivalence.
    _scalar_fast_path = True

    def _relaxed_one(self, i: int, t: float, act: float, lo: float, hi: float) -> float:
        """Scalar `_relaxed` for cell i."""
        p = self.params
        lt = math.log(max(self.thermal.age_one(t, self.t_prog.item(i)), p.relax_onset))
        late = max(lt, 0.0)
        sig = p.relax_sigma_intercept + p.relax_sigma_slope * late + self._early_slope * min(lt, 0.0)
        var0 = self.rel_var.item(i)
        var = max(sig * sig, var0)
        walk = self.rel_walk.item(i)
        if self.noise and act > 0.0:
            walk = walk + math.sqrt(var - var0) * self.rng.standard_normal()
            self.rel_walk[i] = walk
        self.rel_var[i] = var
        return min(max(self.g_prog.item(i) + act * (walk - p.relax_mean_slope * late), lo), hi)

    def _apply_one(self, i: int, v: float, v_gate: float, duration: float, t_end: float) -> None:
        """Scalar `apply_bias` for one formed, non-stuck cell i."""
        p = self.params
        gmin, gmax, r_set, r_reset, sig, lo, hi, act, _ = self._d2d[:, i].tolist()
        g = self._relaxed_one(i, t_end - duration, act, lo, hi)
        k_eff = p.transconductance / p.reset_degeneration if v < 0.0 else p.transconductance
        overdrive = max(v_gate - p.threshold_voltage, 0.0)
        g_channel = k_eff * overdrive + p.transistor_off_conductance
        current = g * v / (1.0 + g / g_channel)
        i_sat = 0.5 * k_eff * overdrive * overdrive + p.transistor_off_conductance * abs(v)
        v_cell = math.copysign(min(abs(current), i_sat), v) / g
        if abs(v_cell) < p.switching_threshold:
            if v_cell != 0.0:
                self._disturb_one(i, v_cell, duration)
            return
        bound, rate, v_ref = (gmax, r_set, p.v_ref_set) if v > 0.0 else (gmin, r_reset, p.v_ref_reset)
        if self._tc_switch:
            v_ref += self._tc_switch * (self.thermal.temperature(t_end) - self.t_ref)
        f = min((duration / p.pulse_width_ref) * math.exp((abs(v_cell) - v_ref) / p.kinetic_voltage_scale),
                p.max_pulse_factor)
        g_new = bound - (bound - g) * math.exp(-f * rate)
        if self.noise:
            g_new += math.sqrt(f) * sig * self.rng.standard_normal()
        self.g_prog[i] = min(max(g_new, lo), hi)
        self.t_prog[i] = t_end
        self.rel_walk[i] = 0.0
        self.rel_var[i] = 0.0

    def _apply_pristine_one(self, i: int, v: float, v_gate: float, duration: float, t_end: float, hold: float,
                            final: bool) -> None:
        """Scalar `apply_bias` for one pristine cell i: the relaxation draw and the cell voltage in floats; the
        vector `_form` only when the bias can form the cell (same draws as the vector path)."""
        p = self.params
        g = self.g_prog.item(i)                  # a pristine cell does not relax (its walk starts at forming)
        v_cell = self.transistor_one(g, v, v_gate) / g
        if self.form_fail.item(i) or not v_cell > 0.0:
            return
        shift = self._tc_form * (self.thermal.temperature(t_end) - self.t_ref) if self._tc_form else 0.0
        vform = self._d2d.item(8, i) + shift
        if hold >= p.quasi_static_duration:
            if v_cell < vform:
                return
        elif not final:
            return
        else:                                    # the pulse rule in floats (np.exp/expm1: the vector path's values)
            hazard = (hold / p.forming_time) * float(np.exp((v_cell - vform) / p.forming_voltage_scale))
            prob = -float(np.expm1(-hazard))
            if not ((self.rng.random() < prob) if self.noise else (prob >= 0.5)):
                return
        idx = np.array([i], dtype=np.intp)
        gmin, gmax = self._d2d[[0, 1]][:, idx]
        self._form_jump(idx, np.ones(1, dtype=bool), np.array([v_cell]), v_gate, t_end, gmin, gmax)

    def conductance_one(self, i: int, t: float, t_int: float) -> float:
        """Scalar :meth:`conductance` (S) of cell i read at t (s) over t_int (s)."""
        if not self._scalar_fast_path:
            return float(self.conductance(np.array([i], dtype=np.intp), t, t_int)[0])
        if self.pristine.item(i):               # ~1 nS, no relaxation, no read noise
            return self.g_prog.item(i)
        lo, hi, act = self._d2d[5:8, i].tolist()
        g = self._relaxed_one(i, t, act, lo, hi)
        if not self.noise:
            return g
        decay = max(t - self.noise_t.item(i), 0.0) * self._inv_tau
        x = self.noise_x[i] * np.exp(-decay)
        x += np.sqrt(-np.expm1(-2.0 * decay)) * self.rng.standard_normal(x.size)
        self.noise_x[i] = x
        self.noise_t[i] = t
        return g + self._k_rd * max(math.log(g * 1e6), 0.0) * float(x @ self._window(t_int))
