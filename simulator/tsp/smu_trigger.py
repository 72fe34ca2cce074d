"""The subset of the 2600B trigger model that timed pulses need.

Supported (Series 2600B Reference Manual, "Triggering"): ``smuX.trigger.source.listv/linearv/
listi/lineari``, ``.source.limiti/limitv`` (the pulse-area limit), ``.source.action``,
``.source.stimulus``, ``.measure.action``, ``.measure.i/v/iv(buffers)``, ``.endpulse.action``
(``SOURCE_IDLE`` returns to the DC level, ``SOURCE_HOLD`` keeps the pulse level),
``.endpulse.stimulus``, ``.count``, ``.arm.count``, ``.initiate()``, ``.abort()``, and
``trigger.timer[N].delay/.count/.passthrough/.stimulus``.

Execution is evaluated at ``initiate()`` on the virtual clock: for each point the source steps to the
sweep level, settles, measures when the measure action is enabled, and returns to the idle level when
the end-pulse event fires. The pulse width is the delay of the timer whose event is the end-pulse
stimulus (counted from the source-complete event), or the settling plus measurement time when the
end pulse fires immediately. A timer on the source stimulus sets the period between points.
During sweeps the enforced limit is never below 10 % of the limit range (manual, ``trigger.source.
limitY``; 2600B Reference Manual).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..electrical import FUNC_DCVOLTS, OUTPUT_ON
from . import smu_ranges as R
from .engine import TspError

if TYPE_CHECKING:
    from .keithley2636b import Keithley2636B, SmuChannel

LIMIT_AUTO = 0.0
TIMER_EVENT_BASE = 40
CHANNEL_EVENT_BASE = {"a": 10, "b": 20}
ARMED, SOURCE_COMPLETE, MEASURE_COMPLETE, PULSE_COMPLETE, SWEEP_COMPLETE, IDLE = range(6)


class TriggerTimer:
    """``trigger.timer[N]``."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.event_id = TIMER_EVENT_BASE + number
        self.defaults()

    def defaults(self) -> None:
        self.delay = 10e-6
        self.count = 1
        self.passthrough = 0
        self.stimulus = 0

    def set_delay(self, v: Any) -> None:
        x = float(v)
        if not x >= 1e-6:
            raise TspError(1102, "Parameter too small")
        if x > 100e3:
            raise TspError(1101, "Parameter too big")
        self.delay = x

    def register(self, smu: Keithley2636B) -> None:
        smu.define(f"trigger.timer.{self.number}", {
            "delay": (lambda: self.delay, self.set_delay),
            "count": (lambda: self.count, lambda v: setattr(self, "count", int(v))),
            "passthrough": (lambda: self.passthrough, lambda v: setattr(self, "passthrough", int(bool(v)))),
            "stimulus": (lambda: self.stimulus, lambda v: setattr(self, "stimulus", int(v))),
        }, constants={"EVENT_ID": self.event_id}, functions={"reset": self.defaults, "clear": lambda: None})


class TriggerModel:
    """``smuX.trigger``: sweep list, actions, stimuli and counts of one channel."""

    def __init__(self, channel: SmuChannel) -> None:
        self.ch = channel
        self.base = CHANNEL_EVENT_BASE[channel.letter]
        self.defaults()

    def defaults(self) -> None:
        self.levels: list[float] = []
        self.sweep_func = FUNC_DCVOLTS
        self.limiti = LIMIT_AUTO
        self.limitv = LIMIT_AUTO
        self.source_action = 0
        self.measure_action = 0
        self.measure_what = "i"
        self.measure_buffers: tuple[Any, Any] = (None, None)
        self.endpulse_action = 1
        self.endpulse_stimulus = 0
        self.endsweep_action = 0
        self.source_stimulus = 0
        self.measure_stimulus = 0
        self.count = 1
        self.arm_count = 1
        self.pulses = 0

    def _set_list(self, func: int, values: Any) -> None:
        vals = _parse_list(values)
        if not vals:
            raise TspError(1102, "Parameter too small")
        limit = R.VOLTAGE_RANGES[-1] if func == FUNC_DCVOLTS else R.SOURCE_CURRENT_RANGES[-1]
        for v in vals:
            if abs(v) > limit * R.RANGE_HEADROOM or v != v:
                raise TspError(1101, "Parameter too big")
        self.levels, self.sweep_func = vals, func

    def _set_linear(self, func: int, start: Any, stop: Any, points: Any) -> None:
        """``linearv/lineari(start, stop, points)``: step = (stop - start) / (points - 1) [M]; the last
        point is exactly ``stop``. points < 2 → 1102 [U]."""
        n = int(points)
        if n < 2:
            raise TspError(1102, "Parameter too small")
        a, b = float(start), float(stop)
        step = (b - a) / (n - 1)
        self._set_list(func, [a + k * step for k in range(n - 1)] + [b])

    def _set_limit(self, attr: str, v: Any, lo: float, hi: float) -> None:
        x = float(v)
        if x != LIMIT_AUTO and not lo <= x <= hi:
            raise TspError(1101 if x > hi else 1102, "Parameter too big" if x > hi else "Parameter too small")
        setattr(self, attr, x)

    def _set_measure(self, what: str, b1: Any = None, b2: Any = None) -> None:
        self.measure_what, self.measure_buffers = what, (b1, b2)

    def register(self) -> None:
        smu, n = self.ch.smu, f"{self.ch.node}.trigger"
        ids = {"ARMED_EVENT_ID": self.base + ARMED, "SOURCE_COMPLETE_EVENT_ID": self.base + SOURCE_COMPLETE,
               "MEASURE_COMPLETE_EVENT_ID": self.base + MEASURE_COMPLETE,
               "PULSE_COMPLETE_EVENT_ID": self.base + PULSE_COMPLETE,
               "SWEEP_COMPLETE_EVENT_ID": self.base + SWEEP_COMPLETE, "IDLE_EVENT_ID": self.base + IDLE}
        smu.define(n, {
            "count": (lambda: self.count, lambda v: setattr(self, "count", _positive(v))),
        }, constants=ids, functions={"initiate": self.initiate, "abort": self.abort})
        smu.define(f"{n}.arm", {"count": (lambda: self.arm_count, lambda v: setattr(self, "arm_count",
                                                                                      _positive(v))),
                                "stimulus": (lambda: 0, lambda v: None)})
        smu.define(f"{n}.source", {
            "action": (lambda: self.source_action, lambda v: setattr(self, "source_action", int(v))),
            "stimulus": (lambda: self.source_stimulus, lambda v: setattr(self, "source_stimulus", int(v))),
            "limiti": (lambda: self.limiti, lambda v: self._set_limit("limiti", v, R.LIMITI_MIN, R.LIMITI_MAX)),
            "limitv": (lambda: self.limitv, lambda v: self._set_limit("limitv", v, R.LIMITV_MIN, R.LIMITV_MAX)),
        }, functions={"listv": lambda v: self._set_list(FUNC_DCVOLTS, v),
                      "listi": lambda v: self._set_list(0, v),
                      "linearv": lambda a, b, k: self._set_linear(FUNC_DCVOLTS, a, b, k),
                      "lineari": lambda a, b, k: self._set_linear(0, a, b, k)})
        smu.define(f"{n}.measure", {
            "action": (lambda: self.measure_action, lambda v: setattr(self, "measure_action", int(v))),
            "stimulus": (lambda: self.measure_stimulus, lambda v: setattr(self, "measure_stimulus", int(v))),
        }, functions={"i": lambda b=None: self._set_measure("i", b), "v": lambda b=None: self._set_measure("v", b),
                      "iv": lambda b1=None, b2=None: self._set_measure("iv", b1, b2)})
        smu.define(f"{n}.endpulse", {
            "action": (lambda: self.endpulse_action, lambda v: setattr(self, "endpulse_action", int(v))),
            "stimulus": (lambda: self.endpulse_stimulus, lambda v: setattr(self, "endpulse_stimulus", int(v))),
        })
        smu.define(f"{n}.endsweep", {"action": (lambda: self.endsweep_action,
                                                 lambda v: setattr(self, "endsweep_action", _flag(v)))})

    # ---------------------------------------------------------------- execution
    def _timer(self, event_id: int) -> Any:
        for t in self.ch.smu.timers:
            if t.event_id == event_id:
                return t
        return None

    def _effective_limit(self) -> float:
        limit = self.limiti if self.limiti != LIMIT_AUTO else self.ch.state.limiti
        rng = self.ch.meas_rangei if not self.ch.meas_autorangei else (R.fit_range(limit, R.CURRENT_RANGES)
                                                                      or R.CURRENT_RANGES[-1])
        return max(limit, 0.1 * rng)

    def initiate(self) -> None:
        """Run the configured sweep to completion on the virtual clock."""
        ch, smu = self.ch, self.ch.smu
        if self.source_action and not self.levels:
            raise TspError(5042, "Cannot initiate: the source sweep list is empty")  # [U] code and text
        s = ch.state
        idle_v, idle_i, idle_limit = s.levelv, s.leveli, s.limiti
        if self.source_action:
            s.func = self.sweep_func  # a listv/linearv sweep sources volts, listi/lineari amps [U]
        width_timer = self._timer(self.endpulse_stimulus)
        period_timer = self._timer(self.source_stimulus)
        s.limiti = self._effective_limit()
        try:
            for _ in range(self.arm_count):
                for k in range(self.count):
                    t_point = smu.clock.now
                    smu.clock.advance(smu.timing.pulse_overhead)
                    if self.source_action:
                        level = self.levels[k % len(self.levels)]
                        if self.sweep_func == FUNC_DCVOLTS:
                            s.levelv = level
                        else:
                            s.leveli = level
                        ch.changed()
                    t_on = smu.clock.now
                    if self.measure_action:
                        b1, b2 = self.measure_buffers
                        saved = ch.meas_count
                        ch.meas_count = 1
                        try:
                            ch.measure(self.measure_what, b1, b2)
                        finally:
                            ch.meas_count = saved
                    width = width_timer.delay if width_timer is not None else smu.timing.source_settle
                    smu.clock.advance_to(t_on + width)
                    if self.endpulse_action == 0 and self.source_action:
                        s.levelv, s.leveli = idle_v, idle_i
                        ch.changed()
                    if s.output == OUTPUT_ON and self.source_action:
                        self.pulses += 1
                    if period_timer is not None:
                        smu.clock.advance_to(t_point + period_timer.delay)
        finally:
            s.limiti = idle_limit
            if self.source_action and (self.endpulse_action == 0 or self.endsweep_action == 0):
                s.levelv, s.leveli = idle_v, idle_i  # SOURCE_IDLE: back to the bias level [M]
            ch.changed()

    def abort(self) -> None:
        """Nothing runs in the background: initiate() completes before the next command."""


def _flag(v: Any) -> int:
    if v is None:
        raise TypeError
    f = int(v)
    if f not in (0, 1):
        raise TspError(1101 if f > 1 else 1102, "Parameter too big" if f > 1 else "Parameter too small")
    return f


def _positive(v: Any) -> int:
    n = int(v)
    if n < 1:
        raise TspError(1102, "Parameter too small")
    return n


def _parse_list(values: Any) -> list[float]:
    if isinstance(values, list):
        return [float(v) for v in values]
    text = str(values).strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise TspError(1104, "Parameter error, expected a table of numbers")
    body = text[1:-1].strip()
    if not body:
        return []
    try:
        return [float(x) for x in body.split(",")]
    except ValueError:
        raise TspError(1104, "Parameter error, expected a table of numbers") from None
