"""Source-measure physics shared by the SCPI SMU emulators (Keithley 2450, Keysight B2900).

A :class:`RangeTable` holds one quantity's ranges with their reading resolution, over-range and
noise floor; :class:`SmuPhysics` turns a channel's :class:`~..electrical.SourceState` into readings
the way the 2636B emulator does (``circuit.measure_current`` over the integration time, range chosen
fixed or automatically, over-range → the instrument's overflow value, seeded white noise scaled by
1/sqrt(NPLC), quantised to the range resolution). Levels change through ``circuit.changed()``, so the circuit
integrates each level over the virtual time it is held.

Number formats of the two families are here too (each tagged where it is used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..electrical import FUNC_DCVOLTS, OUTPUT_ON, SourceState

if TYPE_CHECKING:
    from ..bench import Bench


@dataclass(frozen=True)
class RangeTable:
    """Ranges (A or V, full scale) of one quantity, each with its resolution, over-range factor and
    RMS noise of one reading at 1 PLC."""

    ranges: tuple[float, ...]
    resolution: tuple[float, ...]
    over_range: tuple[float, ...]
    noise_1plc: tuple[float, ...]

    def index(self, rng: float) -> int:
        """Index of range ``rng`` (the nearest declared range)."""
        return min(range(len(self.ranges)), key=lambda k: abs(math.log(self.ranges[k] / rng)))

    def fit(self, value: float) -> float | None:
        """Smallest range whose full scale holds |value|, or None when above the largest (A or V)."""
        a = abs(value)
        for r in self.ranges:
            if a <= r * (1.0 + 1e-9):
                return r
        return None

    def at_least(self, value: float) -> float:
        """Smallest range holding |value|; the largest range when none does."""
        return self.fit(value) or self.ranges[-1]

    @property
    def maximum(self) -> float:
        """Largest magnitude any range accepts (top range × its over-range)."""
        return self.ranges[-1] * self.over_range[-1]

    def limit_of(self, rng: float) -> float:
        """Largest magnitude readable or settable on range ``rng``."""
        return rng * self.over_range[self.index(rng)]

    def resolution_of(self, rng: float) -> float:
        return self.resolution[self.index(rng)]

    def noise_of(self, rng: float, nplc: float) -> float:
        """RMS noise (A or V) of one reading on ``rng`` integrated over ``nplc`` line cycles."""
        return self.noise_1plc[self.index(rng)] / math.sqrt(max(nplc, 1e-4))

    def quantize(self, value: float, rng: float) -> float:
        """``value`` rounded to the resolution of ``rng``."""
        res = self.resolution_of(rng)
        return round(value / res) * res


@dataclass(frozen=True)
class Reading:
    """One measurement: value as reported (quantised or the overflow value), range used, whether
    the source was in compliance, simulated time at its start (s) and the programmed source level."""

    value: float
    range: float
    compliance: bool
    time: float
    source: float
    overflow: bool = False


class SmuPhysics:
    """Readings and timed waveforms of one SMU channel (``state`` is registered with the circuit)."""

    def __init__(self, bench: Bench, state: SourceState, current: RangeTable, voltage: RangeTable,
                 overflow: float, measure_overhead: float) -> None:
        self.bench = bench
        self.clock = bench.clock
        self.state = state
        self.current = current
        self.voltage = voltage
        self.overflow = overflow
        self.measure_overhead = measure_overhead
        self.line_frequency: float | None = None      # the instrument's setting (Hz); None = bench's

    # ------------------------------------------------------------------ source
    def changed(self) -> None:
        """A level, limit, function or output changed: close the bias segment and re-solve."""
        self.bench.circuit.changed()

    def set_output(self, on: bool) -> None:
        """Switch the output (events ``output_on`` / ``output_off`` when it changes)."""
        s = self.state
        new = OUTPUT_ON if on else 0
        if s.output != new:
            self.bench.events.add(self.clock.now, s.name, "output_on" if on else "output_off",
                                  level=s.levelv if s.func == FUNC_DCVOLTS else s.leveli)
        s.output = new
        self.changed()

    def source_level(self) -> float:
        """Programmed level of the present source function (V or A)."""
        s = self.state
        return s.levelv if s.func == FUNC_DCVOLTS else s.leveli

    def set_level(self, level: float) -> None:
        """Program the present function's level and re-solve the circuit."""
        if self.state.func == FUNC_DCVOLTS:
            self.state.levelv = level
        else:
            self.state.leveli = level
        self.changed()

    def in_compliance(self) -> bool:
        """Whether the source is clamped at its limit now (bias so far applied first)."""
        self.bench.circuit.commit(final=False)
        return bool(self.state.output == OUTPUT_ON and self.state.in_compliance)

    # ----------------------------------------------------------------- readings
    def integration_time(self, nplc: float) -> float:
        """Integration time (s) of one reading at ``nplc``."""
        return nplc / (self.line_frequency or self.bench.timing.line_frequency)

    def measure_current(self, nplc: float, fixed_range: float | None,
                        auto_floor: float | None = None, advance: bool = True) -> Reading:
        """One current reading (A) out of the HI terminal; ``fixed_range`` None = auto range (never
        below ``auto_floor``; in compliance at least the limit's range). ``advance`` False leaves the
        integration time on the clock to the caller (channels integrating in parallel)."""
        s = self.state
        t0 = self.clock.now
        t_int = self.integration_time(nplc)
        i = self.bench.circuit.measure_current(s.name, t_int)
        compliance = bool(s.output == OUTPUT_ON and s.in_compliance)
        if compliance:
            self.bench.events.add(t0, s.name, "compliance_reading", current=i)
        if fixed_range is not None:
            rng = fixed_range
        else:
            rng = self.current.at_least(i)
            if compliance and s.func == FUNC_DCVOLTS:
                rng = max(rng, self.current.at_least(s.limiti))
            if auto_floor is not None:
                rng = max(rng, auto_floor)
        return self._finish(i, rng, self.current, nplc, t_int, compliance, t0, advance)

    def measure_voltage(self, nplc: float, fixed_range: float | None,
                        auto_floor: float | None = None, advance: bool = True) -> Reading:
        """One voltage reading (V) at the HI terminal; ``fixed_range`` None = auto range."""
        s = self.state
        t0 = self.clock.now
        t_int = self.integration_time(nplc)
        v = self.bench.circuit.measure_voltage(s.name)
        compliance = bool(s.output == OUTPUT_ON and s.in_compliance)
        if fixed_range is not None:
            rng = fixed_range
        else:
            rng = self.voltage.at_least(v)
            if auto_floor is not None:
                rng = max(rng, auto_floor)
        return self._finish(v, rng, self.voltage, nplc, t_int, compliance, t0, advance)

    def reading_time(self, nplc: float) -> float:
        """Time (s) one reading occupies: integration plus autozero/ranging overhead."""
        return self.integration_time(nplc) + self.measure_overhead

    def _finish(self, x: float, rng: float, table: RangeTable, nplc: float, t_int: float,
                compliance: bool, t0: float, advance: bool) -> Reading:
        if advance:
            self.clock.advance(t_int + self.measure_overhead)
        source = self.source_level()
        if abs(x) > table.limit_of(rng):
            return Reading(self.overflow, rng, compliance, t0, source, overflow=True)
        if self.bench.noise:
            x += float(self.bench.rng.normal(0.0, table.noise_of(rng, nplc)))
        return Reading(table.quantize(x, rng), rng, compliance, t0, source)


# ------------------------------------------------------------------- number formats
def exp_format(value: float, digits: int, exp_digits: int = 2, plus: bool = False) -> str:
    """``value`` as d.ddd…E±xx with ``digits`` significant digits, at least ``exp_digits`` exponent
    digits, a leading '+' on non-negative values when ``plus``."""
    text = f"{value:{'+' if plus else ''}.{max(digits, 1) - 1}E}"
    mantissa, _, exponent = text.partition("E")
    sign, mag = exponent[0], exponent[1:].lstrip("0") or "0"
    return f"{mantissa}E{sign}{mag.zfill(exp_digits)}"


def short_format(value: float) -> str:
    """General (``%G``) form with at least 6 significant digits and as many more as needed to read
    back the same value; trailing zeros dropped, uppercase exponent (``0.01``, ``2``, ``50``,
    ``1E+07``, ``1E-08``, ``0.000105``)."""
    v = float(value)
    digits = next((d for d in range(1, 18) if float(f"{v:.{d}G}") == v), 17)
    return f"{v:.{max(digits, 6)}G}"
