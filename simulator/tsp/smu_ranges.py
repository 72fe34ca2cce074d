"""Source and measure ranges of the Keithley 2636B and how readings are resolved on them.

Ranges: 263xB current 100 pA (measure only), 1 nA … 1 A, 1.5 A; voltage 200 mV, 2 V, 20 V, 200 V
(the manual, QCoDeS range tables). Resolution: 6½ digits of range [ASSUMP: ≈ datasheet
resolution columns]; noise floor per range [ASSUMP], white, scaled by 1/sqrt(NPLC).
"""

from __future__ import annotations

import math

CURRENT_RANGES = (100e-12, 1e-9, 10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5)
SOURCE_CURRENT_RANGES = CURRENT_RANGES[1:]
VOLTAGE_RANGES = (200e-3, 2.0, 20.0, 200.0)
OVER_RANGE = 9.91e37
LIMITI_MIN, LIMITI_MAX = 100e-12, 1.5
LIMITV_MIN, LIMITV_MAX = 20e-3, 200.0
NPLC_MIN, NPLC_MAX = 0.001, 25.0
RANGE_HEADROOM = 1.01


def fit_range(value: float, ranges: tuple[float, ...]) -> float | None:
    """Smallest range that holds |value|, or None when above the largest."""
    a = abs(value)
    for r in ranges:
        if a <= r * (1.0 + 1e-9):
            return r
    return None


def current_resolution(rng: float) -> float:
    return rng * 1e-6


def voltage_resolution(rng: float) -> float:
    return rng * 5e-6


def current_noise(rng: float, nplc: float) -> float:
    """RMS noise (A) of one current reading on range ``rng`` at ``nplc``."""
    return rng * 2e-7 / math.sqrt(max(nplc, NPLC_MIN))


def voltage_noise(rng: float, nplc: float) -> float:
    return rng * 1e-6 / math.sqrt(max(nplc, NPLC_MIN))


def quantize(value: float, resolution: float) -> float:
    return round(value / resolution) * resolution
