"""Emulated Keithley 2636B System SourceMeter (TSP), both channels.

Object model after the Series 2600B Reference Manual (2600BS-901-01): ``smua``/``smub``
``.source.*``, ``.measure.*`` (``i() v() iv() r() p()``), ``.nvbuffer1/2``, the trigger-model subset
used for timed pulses (``smuX.trigger.*`` with ``trigger.timer[N]``), ``reset()``, ``errorqueue``,
``format.asciiprecision``, ``localnode``. Parameter errors queue 1101 "Parameter too big" / 1102
"Parameter too small" and leave the setting unchanged.

Evidence per behaviour ([M] manual, [C] third-party code written against the instrument, [U] unverified):
- ``format.data = ASCII|SREAL|REAL32|REAL|REAL64|DREAL``, ``format.byteorder``; binary ``#0`` + IEEE-754 +
  LF from ``printnumber``/``printbuffer`` [M 9-101/9-102][C QCoDeS REAL32 LITTLEENDIAN read_raw]; default
  byte order LITTLEENDIAN [M 2651A; 2600B U]; numeric constant values other than ASCII = 1 [U].
- ``smuX.makebuffer(n)``, ``rb[i]`` = ``rb.readings[i]``, ``rb.n``, ``.basetimestamp``, ``.timestamps``
  relative to it [M]; ``printbuffer`` clamps start < 1 and end > n [M printbuffer()], plain Lua tables [M].
  Out-of-range ``rb[i]`` → nil, empty range → empty message, 1104 for a non-buffer [U].
- ``bufferVar.collectsourcevalues`` / ``.collecttimestamps`` honoured, default 0 for ``nvbuffer1/2`` and for a
  new ``makebuffer`` buffer [M bufferVar.collect*, "Reading buffers" buffer storage control attributes]; values
  not collected read as nil and print as nothing; changing the flags on a non-empty buffer is accepted [U]
  (:class:`ReadingBuffer`).
- ``smuX.trigger.source.linearv/lineari/listv/listi`` [M]; ``endsweep.action`` SOURCE_IDLE default [M].
- Factory scripts (factory.lua): SweepV/ILin…, SweepV/IList…, PulseV/IMeasureI/V levels, buffer contents [M];
  settings and output around them [U].
- ``smuX.sense`` [M][C QCoDeS/pymeasure], ``.measure.rel.*`` (rel subtracted), ``.source.settling`` stored
  [M names; SETTLE_* values U].
- ``smuX.measure.filter.count/enable/type`` honoured: repeating average (count conversions, each one integration
  on the clock), moving average and median (first-in first-out stack, filled with copies of the first conversion
  when first enabled; median of an even count = mean of the two middle values); ``FILTER_MOVING_AVG`` 0,
  ``FILTER_REPEAT_AVG`` 1 (default), ``FILTER_MEDIAN`` 2, ``FILTER_OFF`` 0 (default), ``FILTER_ON`` 1
  [M smuX.measure.filter.type/.enable/.count, "Filters", "Filter commands"]; stacks per quantity, emptied when a
  filter setting changes, over-range if any conversion is [U] (:meth:`SmuChannel.filtered`).
- ``status.condition``, ``.request_enable`` (*SRE), ``.standard.enable/event`` (*ESE, *ESR?),
  ``status.measurement.*``; ``status.measurement.instrument.smuX.condition`` bit0 V limit, bit1 I limit
  [C QCoDeS]; event registers are not latched, ntr/ptr stored only [U]. ``*TST?`` → 0 [M; bytes U].
- ``beeper``, ``display`` (screen, smuX.measure.func, settext/clear), ``digio`` port bits: stored/read back only
  [M names, effects U].
- Scripts (engine): ``script.new(code, name)`` (in ``script.user.scripts``, no global of that name; an existing
  script of that name becomes unnamed), ``script.newautorun()`` (runs at once, autorun "yes"), ``loadscript name``
  (a global of that name and a ``script.user.scripts`` entry; autorun "no", "yes" for ``loadandrunscript``),
  anonymous ``loadscript`` → ``script.anonymous``, ``run()``/``script.run()``, ``.source`` (lines joined by LF;
  only nil may be written), ``.name`` (renames; "" unnames), ``.run()``/``name()``, ``.list()``, ``.save()`` into
  nonvolatile memory (``script.user.catalog()``, loaded again and autorun at power-on), ``script.delete()``
  [M script.*, scriptVar.*, "Named scripts", "Anonymous scripts", "Global variables and the script.user.scripts
  table"]; code that does not compile in ``script.new`` → -285 and nil, an unnamed script's ``save()`` fails,
  ``save(filename)`` only kept, ``delete``/``restore`` of an unknown name do nothing, the run order at power-on
  [U]. An unknown script name fails as any unknown name (-286 attempt to call/index …) [C Lua].
- TSP-Link (engine): offline at power-on, ``tsplink.node`` from the bench file (``tsplink_node``, default 1),
  ``tsplink.reset([expected])`` → nodes found, online and ``node[N]`` of the other nodes on success, 1219 "TSP-Link
  found fewer nodes than expected" when fewer than expected [M tsplink.*, "TSP-Link system", node[N]]; the same
  error when no other node is found without ``expected`` or on duplicate numbers [U code]; ``node[N].x`` reads,
  writes and calls run on node N (its state, the bench clock), ``node[N].model/serialno/revision``,
  ``node[N].execute/getglobal/setglobal`` [M]; node N's instrument errors queue at the master with errorNode N
  [M errorqueue.next() errorNode; the receiving queue U]; a local error's errorNode is this node's number [M].
- An unknown constant is nil; assigning nil to an attribute is a -286 run-time error, the setting kept
  (message text [U]). Writing an unknown or read-only attribute: -286 "attempt to write read-only or unknown
  attribute '<path>'", setting kept — no manual or instrument text was found, the wording is ours and kept only
  so that a misspelt setting never passes silently [U] (see the engine module docstring).
- Lua error messages quote names as TSP's Lua 5.0 does: near `x' [C] (``lua50_quoting``, on).
- 5042 "Cannot initiate: the source sweep list is empty" [U: no code or text found in the 2600B manual;
  smuX.trigger.initiate() documents no error for it].
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from ..electrical import FUNC_DCAMPS, FUNC_DCVOLTS, OUTPUT_HIGH_Z, OUTPUT_OFF, OUTPUT_ON, SourceState
from ..models import emulator
from . import smu_ranges as R
from .engine import TspEngine, TspError
from .smu_trigger import TriggerModel, TriggerTimer

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig

DELAY_AUTO = -1.0
FILTER_MOVING_AVG, FILTER_REPEAT_AVG, FILTER_MEDIAN = 0, 1, 2   # smuX.measure.filter.type values [M]


def _too(value: float, lo: float, hi: float) -> None:
    if not value == value:  # NaN
        raise TspError(1102, "Parameter too small")
    if value > hi:
        raise TspError(1101, "Parameter too big")
    if value < lo:
        raise TspError(1102, "Parameter too small")


class ReadingBuffer:
    """``smuX.nvbufferN`` or a dynamic buffer (``smuX.makebuffer(n)``): readings with status, and source
    values and timestamps when ``collectsourcevalues`` / ``collecttimestamps`` are 1 — both 0 by default and
    when a buffer is created (2600B Reference Manual, bufferVar.collectsourcevalues, bufferVar.collecttimestamps:
    default 0; "Reading buffers", buffer storage control attributes: "When the buffer is created, this attribute
    is initialized to off") [M]. ``timestamps`` read back relative to ``basetimestamp``, the time of the first
    stored reading (bufferVar.basetimestamp / bufferVar.timestamps) [M].

    A value that was not collected reads as nil (``rb.timestamps[1]``), and a component prints as its collected
    values only, so one never collected prints nothing (the manual: "If it is set to 0, you cannot access any
    time information from a reading buffer"; what the instrument answers instead is not given) [U]. The manual
    allows changing the collect attributes only on an empty buffer; its error for a non-empty one is not given,
    so the change is accepted and applies to later readings [U]."""

    def __init__(self, capacity: int = 60000) -> None:
        self.readings: list[float] = []
        self._sources: list[float | None] = []
        self._times: list[float | None] = []
        self.statuses: list[float] = []
        self.appendmode = 0
        self.collectsourcevalues = 0
        self.collecttimestamps = 0
        self.capacity = capacity
        self.basetimestamp = 0.0

    @property
    def sourcevalues(self) -> list[float | None]:
        return list(self._sources)

    @property
    def timestamps(self) -> list[float | None]:
        return [None if t is None else t - self.basetimestamp for t in self._times]

    def clear(self) -> None:
        self.readings.clear()
        self._sources.clear()
        self._times.clear()
        self.statuses.clear()
        self.basetimestamp = 0.0

    def extend(self, readings: list[float], source: float, times: list[float], status: float) -> None:
        """:meth:`add` of many readings (same source value and status), as that many calls would store them."""
        k = 0
        while k < len(readings):
            if not self.appendmode and len(self.readings) >= self.capacity:
                self.clear()
            room = len(readings) - k if self.appendmode else min(len(readings) - k, self.capacity - len(self.readings))
            if not self.readings:
                self.basetimestamp = times[k]
            part = slice(k, k + room)
            self.readings.extend(readings[part])
            self._sources.extend([source if self.collectsourcevalues else None] * room)
            self._times.extend(times[part] if self.collecttimestamps else [None] * room)
            self.statuses.extend([status] * room)
            k += room

    def add(self, reading: float, source: float, t: float, status: float) -> None:
        if not self.appendmode and len(self.readings) >= self.capacity:
            self.clear()
        if not self.readings:
            self.basetimestamp = t
        self.readings.append(reading)
        self._sources.append(source if self.collectsourcevalues else None)
        self._times.append(t if self.collecttimestamps else None)
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
        self.sense = 0
        self.settling = 0
        self.filter = {"count": 1, "enable": 0, "type": FILTER_REPEAT_AVG}   # defaults [M]
        self.filter_stacks: dict[str, list[float]] = {"i": [], "v": []}
        self.rel = {"enablei": 0, "leveli": 0.0, "enablev": 0, "levelv": 0.0,
                    "enabler": 0, "levelr": 0.0, "enablep": 0, "levelp": 0.0}
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
        """One current reading as the instrument reports it, through the measure filter."""
        return self.filtered("i", self._convert_current)

    def read_voltage(self) -> float:
        """One voltage reading as the instrument reports it, through the measure filter."""
        return self.filtered("v", self._convert_voltage)

    def _convert_current(self) -> float:
        """One current conversion (range, resolution, noise, over-range)."""
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

    def _convert_voltage(self) -> float:
        """One voltage conversion."""
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

    def limit_condition(self) -> int:
        """``status.measurement.instrument.smuX.condition``: bit0 voltage limit, bit1 current limit
        [C QCoDeS Keithley2600 _parse_response]."""
        if not self.compliance():
            return 0
        return 2 if self.state.func == FUNC_DCVOLTS else 1

    def set_choice(self, attr: str, v: Any, choices: tuple[int, ...]) -> None:
        if v is None:
            raise TypeError
        x = int(v)
        if x not in choices:
            raise TspError(1101 if x > max(choices) else 1102,
                           "Parameter too big" if x > max(choices) else "Parameter too small")
        setattr(self, attr, x)

    def set_filter(self, key: str, v: Any) -> None:
        """``smuX.measure.filter.count`` 1–100, ``.enable``, ``.type`` [M]. A change empties the filter stacks,
        so the next moving/median reading starts as when the filter is first enabled [U for count/type]."""
        if v is None:
            raise TypeError
        x = int(v)
        lo, hi = {"count": (1, 100), "enable": (0, 1), "type": (0, 2)}[key]
        _too(x, lo, hi)
        if self.filter[key] != x:
            for stack in self.filter_stacks.values():
                stack.clear()
        self.filter[key] = x

    def filtered(self, kind: str, convert: Callable[[], float]) -> float:
        """One reading from A/D conversions (``convert``: one integration each, on the bench clock) through
        the measure filter (2600B Reference Manual, "Filters" and smuX.measure.filter.type) [M]:

        - off: one conversion;
        - repeating average: ``count`` conversions averaged, the stack then cleared;
        - moving average: a first-in first-out stack of ``count``; each reading is one new conversion, the
          oldest discarded, the stack averaged; when the filter is first enabled the stack is empty and the
          first conversion is copied to all its places ("the first filtered reading is the same as the first
          reading conversion");
        - median: the same stack, the middle-most value, the mean of the two middle ones for an even count.

        Current and voltage conversions keep separate stacks; a conversion over range makes the reading over
        range; conversions are averaged as quantised [U]."""
        if not self.filter["enable"]:
            return convert()
        n, kind_of = self.filter["count"], self.filter["type"]
        if kind_of == FILTER_REPEAT_AVG:
            values = [convert() for _ in range(n)]
        else:
            stack = self.filter_stacks[kind]
            x = convert()
            if not stack:
                stack.extend([x] * n)
            else:
                stack.append(x)
                del stack[:-n]
            values = list(stack)
        if any(abs(v) >= R.OVER_RANGE for v in values):
            return R.OVER_RANGE
        return statistics.median(values) if kind_of == FILTER_MEDIAN else sum(values) / len(values)

    def set_rel(self, key: str, v: Any) -> None:
        if v is None:
            raise TypeError
        if key.startswith("enable"):
            x = int(v)
            if x not in (0, 1):
                raise TspError(1101 if x > 1 else 1102, "Parameter too big" if x > 1 else "Parameter too small")
            self.rel[key] = x
        else:
            self.rel[key] = float(v)

    def _store(self, buf: str | None, value: float) -> None:
        b = self.smu.buffer_of(buf)
        if b is not None:
            src = self.state.levelv if self.state.func == FUNC_DCVOLTS else self.state.leveli
            b.add(value, src, self.smu.clock.now, self.status_bits())

    def _rel(self, kind: str, value: float) -> float:
        """``smuX.measure.rel.enableY/levelY``: reading minus the relative offset [M]."""
        if self.rel[f"enable{kind}"] and value != R.OVER_RANGE:
            return value - self.rel[f"level{kind}"]
        return value

    def measure(self, what: str, buf1: Any = None, buf2: Any = None) -> Any:
        """``smuX.measure.i/v/iv/r/p([buffers])``; returns the last reading(s) [M smuX.measure.Y()]:
        ``smuX.measure.count`` readings, the measure delay only before the first [M smuX.measure.count,
        smuX.measure.delay]; ``smuX.measure.interval`` is not emulated (0: as fast as possible).
        ``measure.i(buffer)`` with a count of more than one runs as one vectorized step (:meth:`_measure_i_series`)
        when the circuit allows it.

        Known deviations from the manual, kept because test scripts rely on them [U]: without a reading buffer
        the count is honoured (manual: "If a reading buffer is not specified, the SMU ignores the
        smuX.measure.count attribute and only makes one measurement"), and a buffer is not cleared before the
        readings when it does not append (manual: "The readingBuffer is cleared before making any measurements
        unless the buffer is configured to append data"); it is cleared when full."""
        self._settle()
        result: Any = None
        if what == "i" and buf1 is not None and self.meas_count > 1 and not self.filter["enable"]:
            return self._measure_i_series(buf1, self.meas_count)
        for _ in range(self.meas_count):
            if what == "i":
                result = self._rel("i", self.read_current())
                self._store(buf1, result)
            elif what == "v":
                result = self._rel("v", self.read_voltage())
                self._store(buf1, result)
            else:
                i = self._rel("i", self.read_current())
                v = self._rel("v", self.read_voltage())
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

    def _measure_i_series(self, buf: Any, count: int) -> float:
        """``count`` current readings into reading buffer ``buf``; returns the last. The first reading as
        :meth:`read_current` makes it, the others in one vectorized step (:meth:`Circuit.measure_current_series`:
        the physics over count × (integration + overhead) at the read bias, the read noise and the SMU's own
        noise as arrays, in the order single readings draw them; ranging, over-range, quantisation and the
        relative offset as for one reading; the clock advanced as count readings advance it). When the circuit
        does not allow it (several cells, compliance, a pristine cell, ...), reading by reading."""
        smu, bench = self.smu, self.smu.bench
        t_first = smu.clock.now
        first = self._rel("i", self.read_current())
        self._store(buf, first)
        rest = count - 1
        t_int = self.integration()
        dt = t_int + smu.timing.measure_overhead
        series = None
        if smu.clock.now == t_first + dt and self.state.func == FUNC_DCVOLTS:
            series = bench.circuit.measure_current_series(self.state.name, t_int, t_first, dt, rest,
                                                          extra=1 if bench.noise else 0)
        if series is None:
            result = first
            for _ in range(rest):
                result = self._rel("i", self.read_current())
                self._store(buf, result)
            return result
        i, z = series
        ranges = np.asarray(R.CURRENT_RANGES)
        if self.meas_autorangei:
            k = np.searchsorted(ranges[1:] * (1.0 + 1e-9), np.abs(i), side="left")
            rng = ranges[1:][np.minimum(k, ranges.size - 2)]
        else:
            rng = np.full(rest, self.meas_rangei)
        self.last_range_i = float(rng[-1])
        over = np.abs(i) > rng * R.RANGE_HEADROOM
        if bench.noise:
            i = i + R.current_noise(rng, self.nplc) * z[:, 0]      # normal(0, σ) = σ·standard normal
        res = R.current_resolution(rng)
        values = np.where(over, R.OVER_RANGE, np.round(i / res) * res)
        if self.rel["enablei"]:
            values = np.where(over, values, values - self.rel["leveli"])
        times = t_first + dt * np.arange(2, count + 1)
        smu.clock.advance_to(t_first + dt * count)
        b = smu.buffer_of(buf)
        if b is not None:
            b.extend(values.tolist(), self.state.levelv, times.tolist(), self.status_bits())
        return float(values[-1])

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
                  "SENSE_REMOTE": 1, "SENSE_CALA": 3, "LIMIT_AUTO": 0,
                  # FILTER_*: names and values, smuX.measure.filter.type / .enable [M]; SETTLE_*: names
                  # (tsp-toolkit 2636B.lua) [M], values [U] except SETTLE_SMOOTH
                  "FILTER_MOVING_AVG": FILTER_MOVING_AVG, "FILTER_REPEAT_AVG": FILTER_REPEAT_AVG,
                  "FILTER_MEDIAN": FILTER_MEDIAN, "FILTER_OFF": 0, "FILTER_ON": 1,
                  "SETTLE_SMOOTH": 0, "SETTLE_FAST_RANGE": 1, "SETTLE_FAST_POLARITY": 2,
                  "SETTLE_DIRECT_IRANGE": 3, "SETTLE_SMOOTH_100NA": 4, "SETTLE_FAST_ALL": 128}
        smu.define(n, {"sense": (lambda: self.sense, lambda v: self.set_choice("sense", v, (0, 1, 3)))},
                   constants=consts,
                   functions={"reset": self.reset, "abort": self.trigger.abort,
                              "makebuffer": self.makebuffer})
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
            "settling": (lambda: self.settling, lambda v: self.set_choice("settling", v, (0, 1, 2, 3, 4, 128))),
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
        smu.define(f"{n}.measure.filter", {
            key: (lambda key=key: self.filter[key], lambda v, key=key: self.set_filter(key, v))
            for key in ("count", "enable", "type")})
        smu.define(f"{n}.measure.rel", {
            key: (lambda key=key: self.rel[key], lambda v, key=key: self.set_rel(key, v)) for key in self.rel})
        for k, buf in self.buffers.items():
            smu.register_buffer(f"{n}.nvbuffer{k}", buf)
        self.trigger.register()

    def makebuffer(self, size: Any) -> Any:
        """``smuX.makebuffer(n)``: a dynamic reading buffer of n readings (manual) [M]."""
        n = int(size)
        _too(n, 1, 60000)  # upper bound [U]
        self.smu.buffer_serial += 1
        return self.smu.register_buffer(f"__rb{self.smu.buffer_serial}", ReadingBuffer(n), place=False)

    def reset(self) -> None:
        """``smuX.reset()``: channel defaults; output off."""
        was_on = self.state.output == OUTPUT_ON
        self.defaults()
        if was_on:
            self.smu.bench.events.add(self.smu.clock.now, self.state.name, "output_off", level=0.0)
        self.changed()


def _index(values: list[Any], key: Any) -> float | None:
    if isinstance(key, bool) or not isinstance(key, (int, float)):
        return None
    k = int(key)
    return values[k - 1] if k == key and 1 <= k <= len(values) else None


_FACTORY = resources.files(__package__).joinpath("factory.lua").read_text(encoding="utf-8")
BUFFER_COMPONENTS = ("readings", "sourcevalues", "timestamps", "statuses")


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
        self.buffer_nodes: dict[str, ReadingBuffer] = {}
        self.buffer_serial = 0
        self.channels = {"a": SmuChannel(self, "a"), "b": SmuChannel(self, "b")}
        self.timers = [TriggerTimer(k) for k in range(1, 9)]
        self.meas_enable = self.meas_ntr = 0
        self.meas_ptr = 0xFFFF
        self.display_screen = 0
        self.display_text = ""
        self.display_func = {"a": 0, "b": 0}
        self.beeper_enable = 1
        self.digio_port = 0
        self.digio_writeprotect = 0
        for ch in self.channels.values():
            bench.circuit.register_source(ch.state)
        super().__init__(bench, name, resource,
                         f"Keithley Instruments Inc., Model {self.model}, {serial}, {firmware}")

    # ------------------------------------------------------------------ buffers
    def register_buffer(self, path: str, buf: ReadingBuffer, place: bool = True) -> Any:
        """A reading buffer node: attributes, ``clear()``, ``rb[i]`` (readings) and the
        ``readings/sourcevalues/timestamps/statuses`` subtables (manual, reading buffers) [M]."""
        def flag(attr: str) -> tuple[Any, Any]:
            def setter(v: Any) -> None:
                if v is None:
                    raise TypeError
                x = int(v)
                if x not in (0, 1):
                    raise TspError(1101 if x > 1 else 1102, "Parameter too big" if x > 1 else "Parameter too small")
                setattr(buf, attr, x)
            return (lambda: getattr(buf, attr), setter)
        self.buffer_nodes[path] = buf
        node = self.define(path, {
            "n": (lambda: len(buf.readings), None),
            "appendmode": flag("appendmode"),
            "collectsourcevalues": flag("collectsourcevalues"),
            "collecttimestamps": flag("collecttimestamps"),
            "capacity": (lambda: buf.capacity, None),
            "basetimestamp": (lambda: buf.basetimestamp, None),
        }, functions={"clear": buf.clear}, place=place)
        for comp in BUFFER_COMPONENTS:
            self.define(f"{path}.{comp}", {})
            self.indexers[f"{path}.{comp}"] = (lambda key, comp=comp: _index(getattr(buf, comp), key))
        return node

    def _py_get(self, path: str, key: Any) -> tuple[bool, Any]:
        ix = self.indexers.get(path)
        if ix is not None:
            return True, ix(key)
        buf = self.buffer_nodes.get(path)
        if buf is not None and not isinstance(key, str):
            return True, _index(buf.readings, key)  # rb[i] is rb.readings[i] [M]
        return super()._py_get(path, key)

    def buffer_of(self, path: str | None) -> ReadingBuffer | None:
        if path is None:
            return None
        b = self.buffer_nodes.get(path)
        if b is None:
            raise TspError(1104, "Parameter error, invalid buffer")  # [U] code and text
        return b

    def buffer_values(self, path: str) -> list[float]:
        if path.startswith("{"):
            return super().buffer_values(path)
        base, _, comp = path.rpartition(".")
        if comp in BUFFER_COMPONENTS and base in self.buffer_nodes:   # values not collected are left out [U]
            return [v for v in getattr(self.buffer_nodes[base], comp) if v is not None]
        b = self.buffer_of(path)
        assert b is not None
        return list(b.readings)

    # ------------------------------------------------------------- object model
    def build_object_model(self) -> None:
        self.indexers.clear()
        self.buffer_nodes.clear()
        for ch in self.channels.values():
            ch.register()
        self.define("trigger", {}, constants={"EVENT_ID": 0}, functions={"clear": lambda: None})
        self.define_table("trigger.timer")
        for t in self.timers:
            t.register(self)
        self._build_status()
        self._build_front_panel()
        self.lua.execute(_FACTORY)

    def _build_status(self) -> None:
        """Status model, TSP side (manual, status model; STB bits as IEEE 488.2) [M]: ``status.condition``
        (the status byte), ``status.request_enable`` (*SRE), ``status.standard.*`` (the engine's,
        :meth:`~.engine.TspEngine.build_standard_status`), ``status.measurement.*`` and ``…instrument.smuX.condition``
        (bit0 voltage limit, bit1 current limit [C QCoDeS]). The measurement event register follows the
        condition (no latching, no ntr/ptr edge detection) [U]."""
        stb = {"MSB": 1, "SSB": 2, "EAV": 4, "QSB": 8, "MAV": 16, "ESB": 32, "MSS": 64, "OSB": 128,
               "MEASUREMENT_SUMMARY_BIT": 1, "SYSTEM_SUMMARY_BIT": 2, "ERROR_AVAILABLE": 4,
               "QUESTIONABLE_SUMMARY_BIT": 8, "MESSAGE_AVAILABLE": 16, "EVENT_SUMMARY_BIT": 32,
               "MASTER_SUMMARY_STATUS": 64, "OPERATION_SUMMARY_BIT": 128}
        self.define("status", {
            "condition": (self.status_byte, None),
            "request_enable": (lambda: getattr(self, "sre", 0), lambda v: self._set_register("sre", v)),
            "node_enable": (lambda: getattr(self, "sre", 0), lambda v: self._set_register("sre", v)),
            "node_event": (self.status_byte, None),
        }, constants=stb, functions={"reset": self._status_reset, "preset": self._status_reset})
        self.build_standard_status()
        meas = {"VOLTAGE_LIMIT": 1, "VLMT": 1, "CURRENT_LIMIT": 2, "ILMT": 2, "READING_OVERFLOW": 128,
                "ROF": 128, "BUFFER_AVAILABLE": 256, "BAV": 256, "INSTRUMENT_SUMMARY": 8192, "INST": 8192}
        self.define("status.measurement", {
            "condition": (self._meas_condition, None),
            "event": (self._meas_condition, None),
            "enable": (lambda: self.meas_enable, lambda v: self._set_meas("meas_enable", v)),
            "ntr": (lambda: self.meas_ntr, lambda v: self._set_meas("meas_ntr", v)),
            "ptr": (lambda: self.meas_ptr, lambda v: self._set_meas("meas_ptr", v)),
        }, constants=meas)
        self.define("status.measurement.instrument", {
            "condition": (self._meas_instrument, None), "event": (self._meas_instrument, None),
        }, constants={"SMUA": 2, "SMUB": 4})
        for letter, ch in self.channels.items():
            self.define(f"status.measurement.instrument.smu{letter}", {
                "condition": (ch.limit_condition, None), "event": (ch.limit_condition, None),
            }, constants={"VOLTAGE_LIMIT": 1, "VLMT": 1, "CURRENT_LIMIT": 2, "ILMT": 2})

    def _set_meas(self, attr: str, v: Any) -> None:
        if v is None:
            raise TypeError
        x = int(v)
        _too(x, 0, 65535)
        setattr(self, attr, x)

    def _status_reset(self) -> None:
        self.sre = 0
        self.ese = 0
        self.meas_enable = self.meas_ntr = 0
        self.meas_ptr = 0xFFFF

    def _meas_instrument(self) -> int:
        return sum(2 if k == "a" else 4 for k, ch in self.channels.items() if ch.limit_condition())

    def _meas_condition(self) -> int:
        bits = 0
        for ch in self.channels.values():
            bits |= ch.limit_condition()
        return bits | (8192 if bits else 0)

    def stb_extra(self) -> int:
        """Status byte bit 0, MSB: measurement event register under its enable register [M]."""
        return 1 if self._meas_condition() & self.meas_enable else 0

    def _build_front_panel(self) -> None:
        """``beeper``, ``display``, ``digio`` basics; settings are stored and read back, nothing else is
        emulated [M names; effects U]. ``tsplink``/``node`` are the engine's (TSP-Link, both instruments)."""
        def store(attr: str, lo: int, hi: int) -> Any:
            def setter(v: Any) -> None:
                if v is None:
                    raise TypeError
                x = int(v)
                _too(x, lo, hi)
                setattr(self, attr, x)
            return setter
        self.define("beeper", {"enable": (lambda: self.beeper_enable, store("beeper_enable", 0, 1))},
                    constants={"ON": 1, "OFF": 0}, functions={"beep": self._beep})
        self.define("display", {
            "screen": (lambda: self.display_screen, store("display_screen", 0, 3)),
            "locallockout": (lambda: 0, None),
        }, constants={"SMUA": 0, "SMUB": 1, "SMUA_SMUB": 2, "USER": 3, "LOCK": 1, "UNLOCK": 0,
                      "ENABLE": 1, "DISABLE": 0, "MEASURE_DCAMPS": 0, "MEASURE_DCVOLTS": 1,
                      "MEASURE_OHMS": 2, "MEASURE_WATTS": 3, "LIMIT_IV": 0, "LIMIT_P": 1},
            functions={"clear": self._display_clear, "settext": self._display_settext,
                       "gettext": lambda *a: self.display_text, "setcursor": lambda *a: None,
                       "sendkey": lambda *a: None})
        for letter in self.channels:
            self.define(f"display.smu{letter}", {})
            self.define(f"display.smu{letter}.measure", {
                "func": (lambda letter=letter: self.display_func[letter],
                         lambda v, letter=letter: self._set_display_func(letter, v))})
        self.define("digio", {
            "writeprotect": (lambda: self.digio_writeprotect, store("digio_writeprotect", 0, 16383)),
        }, functions={"readbit": lambda n: float((self.digio_port >> (int(n) - 1)) & 1),
                      "readport": lambda: float(self.digio_port),
                      "writebit": self._digio_writebit,
                      "writeport": lambda v: setattr(self, "digio_port", int(v) & 0x3FFF)})

    def _beep(self, duration: Any = None, frequency: Any = None) -> None:
        d = float(duration)
        _too(d, 0.001, 100.0)
        float(frequency)

    def _display_clear(self) -> None:
        self.display_text, self.display_screen = "", 3

    def _display_settext(self, text: Any) -> None:
        if text is None:
            raise TypeError
        self.display_text, self.display_screen = str(text), 3

    def _set_display_func(self, letter: str, v: Any) -> None:
        if v is None:
            raise TypeError
        x = int(v)
        _too(x, 0, 3)
        self.display_func[letter] = x

    def _digio_writebit(self, n: Any, data: Any) -> None:
        k = int(n)
        _too(k, 1, 14)
        bit = 1 << (k - 1)
        self.digio_port = (self.digio_port | bit) if int(data) else (self.digio_port & ~bit)

    # ------------------------------------------------------------------- state
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
