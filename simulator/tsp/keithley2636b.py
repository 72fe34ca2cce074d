"""Emulated Keithley 2636B System SourceMeter (TSP), both channels.

Object model after the Series 2600B Reference Manual (2600BS-901-01): ``smua``/``smub``
``.source.*``, ``.measure.*`` (``i() v() iv() r() p()``), ``.nvbuffer1/2``, the trigger-model subset
used for timed pulses (``smuX.trigger.*`` with ``trigger.timer[N]``), ``reset()``, ``errorqueue``,
``format.asciiprecision``, ``localnode``. Parameter errors queue 1101 "Parameter too big" / 1102
"Parameter too small" and leave the setting unchanged (instruments.md §3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..electrical import FUNC_DCAMPS, FUNC_DCVOLTS, OUTPUT_HIGH_Z, OUTPUT_OFF, OUTPUT_ON, SourceState
from ..models import emulator
from . import smu_ranges as R
from .engine import TspEngine, TspError
from .smu_trigger import TriggerModel, TriggerTimer

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig

DELAY_AUTO = -1.0


def _too(value: float, lo: float, hi: float) -> None:
    if not value == value:  # NaN
        raise TspError(1102, "Parameter too small")
    if value > hi:
        raise TspError(1101, "Parameter too big")
    if value < lo:
        raise TspError(1102, "Parameter too small")


class ReadingBuffer:
    """``smuX.nvbufferN``: readings with source values, timestamps and status."""

    def __init__(self) -> None:
        self.readings: list[float] = []
        self.sourcevalues: list[float] = []
        self.timestamps: list[float] = []
        self.statuses: list[float] = []
        self.appendmode = 0
        self.collectsourcevalues = 0
        self.collecttimestamps = 0
        self.capacity = 60000

    def clear(self) -> None:
        self.readings.clear()
        self.sourcevalues.clear()
        self.timestamps.clear()
        self.statuses.clear()

    def add(self, reading: float, source: float, t: float, status: float) -> None:
        if not self.appendmode and len(self.readings) >= self.capacity:
            self.clear()
        self.readings.append(reading)
        self.sourcevalues.append(source)
        self.timestamps.append(t)
        self.statuses.append(status)


class SmuChannel:
    """One SMU channel: its settings, the circuit-facing source state, buffers and trigger model."""

    def __init__(self, smu: Keithley2636B, letter: str) -> None:
        self.smu = smu
        self.letter = letter
        self.node = f"smu{letter}"
        self.state = SourceState(name=f"{smu.name}.{letter}")
        self.buffers = {1: ReadingBuffer(), 2: ReadingBuffer()}
        self.trigger = TriggerModel(self)
        self.defaults()

    def defaults(self) -> None:
        s = self.state
        s.func, s.output, s.offmode = FUNC_DCVOLTS, OUTPUT_OFF, 0
        s.levelv = s.leveli = 0.0
        s.limiti, s.limitv = 100e-3, 20.0
        self.rangev, self.rangei = 200e-3, 100e-9
        self.autorangev = self.autorangei = 1
        self.source_delay = 0.0
        self.nplc = 1.0
        self.meas_rangei, self.meas_rangev = 100e-9, 200e-3
        self.meas_autorangei = self.meas_autorangev = 1
        self.meas_delay = DELAY_AUTO
        self.meas_count = 1
        self.autozero = 2
        self.last_range_i = 100e-9
        for b in self.buffers.values():
            b.clear()
        self.trigger.defaults()

    # --------------------------------------------------------------- setters
    def set_func(self, v: Any) -> None:
        f = int(v)
        if f not in (FUNC_DCAMPS, FUNC_DCVOLTS):
            raise TspError(1101 if f > 1 else 1102, "Parameter too big" if f > 1 else "Parameter too small")
        self.state.func = f
        self.changed()

    def set_levelv(self, v: Any) -> None:
        x = float(v)
        hi = R.VOLTAGE_RANGES[-1] if self.autorangev else self.rangev
        _too(x, -hi * R.RANGE_HEADROOM, hi * R.RANGE_HEADROOM)
        self.state.levelv = x
        if self.autorangev:
            self.rangev = R.fit_range(x, R.VOLTAGE_RANGES) or R.VOLTAGE_RANGES[-1]
        self.changed()

    def set_leveli(self, v: Any) -> None:
        x = float(v)
        hi = R.SOURCE_CURRENT_RANGES[-1] if self.autorangei else self.rangei
        _too(x, -hi * R.RANGE_HEADROOM, hi * R.RANGE_HEADROOM)
        self.state.leveli = x
        self.changed()

    def set_limiti(self, v: Any) -> None:
        x = float(v)
        _too(x, R.LIMITI_MIN, R.LIMITI_MAX)
        self.state.limiti = x
        self.changed()

    def set_limitv(self, v: Any) -> None:
        x = float(v)
        _too(x, R.LIMITV_MIN, R.LIMITV_MAX)
        self.state.limitv = x
        self.changed()

    def set_rangev(self, v: Any) -> None:
        x = float(v)
        r = R.fit_range(x, R.VOLTAGE_RANGES)
        if r is None:
            raise TspError(1101, "Parameter too big")
        if abs(self.state.levelv) > r * R.RANGE_HEADROOM:
            raise TspError(5003, "Setting conflicts with present source level")
        self.rangev, self.autorangev = r, 0

    def set_rangei(self, v: Any) -> None:
        r = R.fit_range(float(v), R.SOURCE_CURRENT_RANGES)
        if r is None:
            raise TspError(1101, "Parameter too big")
        self.rangei, self.autorangei = r, 0

    def set_output(self, v: Any) -> None:
        o = int(v)
        if o not in (OUTPUT_OFF, OUTPUT_ON, OUTPUT_HIGH_Z):
            raise TspError(1101 if o > 2 else 1102, "Parameter too big" if o > 2 else "Parameter too small")
        old = self.state.output
        self.state.output = o
        if o != old:
            self.smu.bench.events.add(self.smu.clock.now, self.state.name,
                                      "output_on" if o == OUTPUT_ON else
                                      "output_high_z" if o == OUTPUT_HIGH_Z else "output_off",
                                      level=self.state.levelv if self.state.func else self.state.leveli)
        self.changed()

    def set_offmode(self, v: Any) -> None:
        m = int(v)
        if m not in (0, 1, 2):
            raise TspError(1101 if m > 2 else 1102, "Parameter too big" if m > 2 else "Parameter too small")
        self.state.offmode = OUTPUT_HIGH_Z if m == 2 else 0
        self.changed()

    def set_nplc(self, v: Any) -> None:
        x = float(v)
        _too(x, R.NPLC_MIN, R.NPLC_MAX)
        self.nplc = x

    def set_meas_rangei(self, v: Any) -> None:
        r = R.fit_range(float(v), R.CURRENT_RANGES)
        if r is None:
            raise TspError(1101, "Parameter too big")
        self.meas_rangei, self.meas_autorangei = r, 0

    def set_meas_rangev(self, v: Any) -> None:
        r = R.fit_range(float(v), R.VOLTAGE_RANGES)
        if r is None:
            raise TspError(1101, "Parameter too big")
        self.meas_rangev, self.meas_autorangev = r, 0

    def set_count(self, v: Any) -> None:
        n = int(v)
        _too(n, 1, 60000)
        self.meas_count = n

    def set_flag(self, attr: str, v: Any) -> None:
        f = int(v)
        if f not in (0, 1):
            raise TspError(1101 if f > 1 else 1102, "Parameter too big" if f > 1 else "Parameter too small")
        setattr(self, attr, f)

    def set_delay(self, attr: str, v: Any) -> None:
        x = float(v)
        if x != DELAY_AUTO:
            _too(x, 0.0, 1e4)
        setattr(self, attr, x)

    def changed(self) -> None:
        self.smu.bench.circuit.changed()

    # ------------------------------------------------------------ measuring
    def integration(self) -> float:
        return self.smu.timing.integration_time(self.nplc)

    def _settle(self) -> None:
        d = self.meas_delay if self.meas_delay != DELAY_AUTO else self.smu.timing.source_settle
        self.smu.clock.advance(d + self.source_delay)

    def read_current(self) -> float:
        """One current reading as the instrument reports it (range, resolution, noise, over-range)."""
        bench = self.smu.bench
        t_int = self.integration()
        i = bench.circuit.measure_current(self.state.name, t_int)
        if self.state.in_compliance:
            bench.events.add(self.smu.clock.now, self.state.name, "compliance_reading", current=i)
        rng = self.meas_rangei
        if self.meas_autorangei:
            rng = R.fit_range(i * 1.0, R.CURRENT_RANGES[1:]) or R.CURRENT_RANGES[-1]
            if self.state.func == FUNC_DCVOLTS:
                rng = max(rng, R.fit_range(self.state.limiti, R.CURRENT_RANGES) or rng) \
                    if self.state.in_compliance else rng
        self.last_range_i = rng
        self.smu.clock.advance(t_int + self.smu.timing.measure_overhead)
        if abs(i) > rng * R.RANGE_HEADROOM:
            return R.OVER_RANGE
        if bench.noise:
            i += bench.rng.normal(0.0, R.current_noise(rng, self.nplc))
        return R.quantize(i, R.current_resolution(rng))

    def read_voltage(self) -> float:
        bench = self.smu.bench
        v = bench.circuit.measure_voltage(self.state.name)
        rng = self.meas_rangev
        if self.meas_autorangev:
            rng = R.fit_range(v, R.VOLTAGE_RANGES) or R.VOLTAGE_RANGES[-1]
        self.smu.clock.advance(self.integration() + self.smu.timing.measure_overhead)
        if abs(v) > rng * R.RANGE_HEADROOM:
            return R.OVER_RANGE
        if bench.noise:
            v += bench.rng.normal(0.0, R.voltage_noise(rng, self.nplc))
        return R.quantize(v, R.voltage_resolution(rng))

    def status_bits(self) -> float:
        return 2.0 if self.state.in_compliance else 0.0

    def _store(self, buf: str | None, value: float) -> None:
        b = self.smu.buffer_of(buf)
        if b is not None:
            src = self.state.levelv if self.state.func == FUNC_DCVOLTS else self.state.leveli
            b.add(value, src, self.smu.clock.now, self.status_bits())

    def measure(self, what: str, buf1: Any = None, buf2: Any = None) -> Any:
        """``smuX.measure.i/v/iv/r/p([buffers])``; returns the last reading(s)."""
        self._settle()
        result: Any = None
        for _ in range(self.meas_count):
            if what == "i":
                result = self.read_current()
                self._store(buf1, result)
            elif what == "v":
                result = self.read_voltage()
                self._store(buf1, result)
            else:
                i = self.read_current()
                v = self.read_voltage()
                if what == "iv":
                    self._store(buf1, i)
                    self._store(buf2, v)
                    result = (i, v)
                elif what == "r":
                    result = R.OVER_RANGE if i == 0.0 or abs(i) >= R.OVER_RANGE else v / i
                    self._store(buf1, result)
                else:
                    result = v * i
                    self._store(buf1, result)
        return result

    def compliance(self) -> bool:
        self.smu.bench.circuit.commit(final=False)
        return bool(self.state.in_compliance)

    # ------------------------------------------------------------- registration
    def register(self) -> None:
        smu, n = self.smu, self.node
        consts = {"OUTPUT_OFF": 0, "OUTPUT_ON": 1, "OUTPUT_HIGH_Z": 2, "OUTPUT_DCAMPS": 0,
                  "OUTPUT_DCVOLTS": 1, "OUTPUT_NORMAL": 0, "OUTPUT_ZERO": 1, "AUTORANGE_ON": 1,
                  "AUTORANGE_OFF": 0, "AUTORANGE_FOLLOW_LIMIT": 2, "ENABLE": 1, "DISABLE": 0,
                  "SOURCE_IDLE": 0, "SOURCE_HOLD": 1, "DELAY_AUTO": -1, "DELAY_OFF": 0,
                  "AUTOZERO_OFF": 0, "AUTOZERO_ONCE": 1, "AUTOZERO_AUTO": 2, "SENSE_LOCAL": 0,
                  "SENSE_REMOTE": 1, "SENSE_CALA": 3, "LIMIT_AUTO": 0}
        smu.define(n, {"sense": (lambda: 0, lambda v: None)}, constants=consts,
                   functions={"reset": self.reset, "abort": self.trigger.abort,
                              "makebuffer": lambda *a: None})
        s = self.state
        smu.define(f"{n}.source", {
            "func": (lambda: s.func, self.set_func),
            "levelv": (lambda: s.levelv, self.set_levelv),
            "leveli": (lambda: s.leveli, self.set_leveli),
            "limiti": (lambda: s.limiti, self.set_limiti),
            "limitv": (lambda: s.limitv, self.set_limitv),
            "limitp": (lambda: 0.0, lambda v: None),
            "rangev": (lambda: self.rangev, self.set_rangev),
            "rangei": (lambda: self.rangei, self.set_rangei),
            "autorangev": (lambda: self.autorangev, lambda v: self.set_flag("autorangev", v)),
            "autorangei": (lambda: self.autorangei, lambda v: self.set_flag("autorangei", v)),
            "output": (lambda: s.output, self.set_output),
            "offmode": (lambda: 2 if s.offmode == OUTPUT_HIGH_Z else 0, self.set_offmode),
            "delay": (lambda: self.source_delay, lambda v: self.set_delay("source_delay", v)),
            "compliance": (self.compliance, None),
            "outputenableaction": (lambda: 0, lambda v: None),
        })
        smu.define(f"{n}.measure", {
            "nplc": (lambda: self.nplc, self.set_nplc),
            "rangei": (lambda: self.meas_rangei if not self.meas_autorangei else self.last_range_i,
                       self.set_meas_rangei),
            "rangev": (lambda: self.meas_rangev, self.set_meas_rangev),
            "autorangei": (lambda: self.meas_autorangei, lambda v: self.set_flag("meas_autorangei", v)),
            "autorangev": (lambda: self.meas_autorangev, lambda v: self.set_flag("meas_autorangev", v)),
            "autozero": (lambda: self.autozero, lambda v: setattr(self, "autozero", int(v))),
            "delay": (lambda: self.meas_delay, lambda v: self.set_delay("meas_delay", v)),
            "count": (lambda: self.meas_count, self.set_count),
            "interval": (lambda: 0.0, lambda v: None),
        }, functions={"i": lambda b=None: self.measure("i", b), "v": lambda b=None: self.measure("v", b),
                      "iv": lambda b1=None, b2=None: self.measure("iv", b1, b2),
                      "r": lambda b=None: self.measure("r", b), "p": lambda b=None: self.measure("p", b)})
        for k, buf in self.buffers.items():
            path = f"{n}.nvbuffer{k}"
            smu.define(path, {
                "n": (lambda buf=buf: len(buf.readings), None),
                "appendmode": (lambda buf=buf: buf.appendmode,
                               lambda v, buf=buf: setattr(buf, "appendmode", int(v))),
                "collectsourcevalues": (lambda buf=buf: buf.collectsourcevalues,
                                        lambda v, buf=buf: setattr(buf, "collectsourcevalues", int(v))),
                "collecttimestamps": (lambda buf=buf: buf.collecttimestamps,
                                      lambda v, buf=buf: setattr(buf, "collecttimestamps", int(v))),
                "capacity": (lambda buf=buf: buf.capacity, None),
            }, functions={"clear": buf.clear})
            for comp in ("readings", "sourcevalues", "timestamps", "statuses"):
                smu.define(f"{path}.{comp}", {})
                smu.indexers[f"{path}.{comp}"] = (lambda key, buf=buf, comp=comp:
                                                  _index(getattr(buf, comp), key))
        self.trigger.register()

    def reset(self) -> None:
        """``smuX.reset()``: channel defaults; output off."""
        was_on = self.state.output == OUTPUT_ON
        self.defaults()
        if was_on:
            self.smu.bench.events.add(self.smu.clock.now, self.state.name, "output_off", level=0.0)
        self.changed()


def _index(values: list[float], key: Any) -> float | None:
    try:
        k = int(key)
    except (TypeError, ValueError):
        return None
    return values[k - 1] if 1 <= k <= len(values) else None


@emulator("2636B")
class Keithley2636B(TspEngine):
    """The 2636B: two SMU channels on one TSP node."""

    model = "2636B"
    KIND = "smu"
    CHANNELS = ("a", "b")

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        name, resource = config.name, config.resource
        self.serial, self.firmware = serial, firmware = config.serial, config.firmware
        self.name = name
        self.indexers: dict[str, Any] = {}
        self.channels = {"a": SmuChannel(self, "a"), "b": SmuChannel(self, "b")}
        self.timers = [TriggerTimer(k) for k in range(1, 9)]
        for ch in self.channels.values():
            bench.circuit.register_source(ch.state)
        super().__init__(bench, name, resource,
                         f"Keithley Instruments Inc., Model {self.model}, {serial}, {firmware}")

    def build_object_model(self) -> None:
        for ch in self.channels.values():
            ch.register()
        self.define("trigger", {}, constants={"EVENT_ID": 0}, functions={"clear": lambda: None})
        self.define_table("trigger.timer")
        for t in self.timers:
            t.register(self)
        self.define("status", {"condition": (lambda: 0, None)})
        self.define("beeper", {"enable": (lambda: 0, lambda v: None)}, functions={"beep": lambda *a: None})
        self.define("display", {"screen": (lambda: 0, lambda v: None)},
                    functions={"clear": lambda: None, "settext": lambda *a: None})

    def _py_get(self, path: str, key: Any) -> tuple[bool, Any]:
        ix = self.indexers.get(path)
        if ix is not None:
            return True, ix(key)
        return super()._py_get(path, key)

    def buffer_of(self, path: str | None) -> ReadingBuffer | None:
        if path is None:
            return None
        for ch in self.channels.values():
            for k, b in ch.buffers.items():
                if path == f"{ch.node}.nvbuffer{k}":
                    return b
        raise TspError(1104, "Parameter error, invalid buffer")

    def buffer_values(self, path: str) -> list[float]:
        base, _, comp = path.rpartition(".")
        if comp in ("readings", "sourcevalues", "timestamps", "statuses"):
            b = self.buffer_of(base)
            assert b is not None
            return list(getattr(b, comp))
        b = self.buffer_of(path)
        assert b is not None
        return list(b.readings)

    def reset(self, *_: Any) -> None:
        super().reset()
        for ch in self.channels.values():
            ch.reset()
        for t in self.timers:
            t.defaults()

    def power_on(self) -> None:
        for ch in self.channels.values():
            ch.state.output = OUTPUT_OFF
            ch.defaults()
        for t in self.timers:
            t.defaults()
        self.bench.circuit.changed()
        super().power_on()

    def abort(self) -> None:
        for ch in self.channels.values():
            ch.trigger.abort()


