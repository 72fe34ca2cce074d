"""Emulated Keithley 2450 Interactive SourceMeter, SCPI command set (``*LANG SCPI``), channel "1".

Manual: Model 2450 Reference Manual 2450-901-01 Rev. B (Sept. 2013), Section 6 "SCPI command
reference" (p. 6-xx), App. B "Common commands"; datasheet SPEC-2450 Rev. A. Evidence tags: [M] manual,
[C] public code written against the instrument (or its TTI firmware siblings DMM6500/2470), [U] unverified
(capture on hardware).

Replies
* ``*IDN?`` -> ``KEITHLEY INSTRUMENTS,MODEL 2450,<serial>,<firmware>``: 2470 manual A-5 and real 2450s
  in public code drop the Rev. B manual's "INC." (B-5: ``KEITHLEY INSTRUMENTS INC.,MODEL 2450,…``);
  the newer form is emulated [M/C]. ``*LANG?`` -> ``SCPI`` [M B-5].
* Readings (:READ?, :MEASure?, :FETCh?, :TRACe:DATA? READ): ``%.6E`` = 7 significant digits,
  uppercase E, 2-digit exponent, no '+' (``-2.384862E-06``, ``3.414127E-04``, ``0.000000E+00``);
  ``:FORMat:ASCii:PRECision n`` (1-16) gives n digits (``-6.999999881E-01`` at 10) [M p. 6-27/6-28;
  C PyMeasure DMM6500 tests]. Over-range reading ``9.900000E+37`` [C DMM6500 tests].
* Setting queries (levels, limits, ranges, NPLC, delays): shortest general form, uppercase exponent
  (``0.01``, ``2``, ``1E+07``, ``0.000105``) [C PyMeasure DMM6500 protocol tests (same TTI
  firmware); 2450 U]. ``:SYSTem:LFRequency?`` -> ``50``/``60`` [C DMM6500 tests].
* Booleans (``:OUTPut?``, ``:…:TRIPped?``, ``…:AUTO?``) ``0``/``1`` [M]; ``:SENSe:FUNCtion?`` ->
  ``"CURR:DC"``/``"VOLT:DC"``/``"RES"`` quoted [C QCoDeS val_mapping; PyMeasure DMM6500 strips quotes];
  ``:SOURce:FUNCtion?`` -> ``VOLT``/``CURR`` [C QCoDeS].
* Elements of a reading are comma-separated [M p. 6-40; "comma and space" in one passage: U].
  UNIT/SOURUNIT ``Amp DC``/``Volt DC``/``Ohm``, STAT/SOURSTAT as integers, DATE/TIME/TSTamp layout [U].
  SOURSTAT bits: 32 source limited (STAT_LIMIT), 64 remote sense (STAT_SENSE), 128 output on (STAT_OUTPUT)
  [M p. 8-29, bufferVar.sourcestatuses: the buffer's source status, which :TRACe:DATA? SOURSTATus reads].

Errors (event log, 1000 entries [M p. 6-101])
* ``:SYSTem:ERRor[:NEXT]?``: ``<code>,"<message>;<type>;<YYYY/MM/DD hh:mm:ss.mmm>"``, type 1 = error
  [C cc.isr.VI DeviceError remarks: ``-113,"Undefined header;1;2018/05/26 14:00:14.871"``];
  empty ``0,"No error;0;0 0"`` [C fixate hardware driver test and PyMeasure DMM6500 tests] — the
  same shape with type 0 and a zero date and time. Timestamps come from an emulated real-time clock
  that starts 2025-01-01 00:00:00 at simulated t = 0 [U].
* ``:SYSTem:EVENtlog:NEXT?``: ``-109,"Missing parameter;1,1367794863,384492889"``, empty
  ``0,"No error;0,0,0"`` [M p. 6-101]; it reads the same log.
* ``:SYSTem:ERRor:COUNt?`` -> ``0`` [M]. Texts: ``-113,"Undefined header"`` [M],
  ``-222,"Parameter data out of range"`` [M], invalid buffer element
  ``1133,"Parameter 4, Syntax error, expected valid name parameters."`` [M]; unknown buffer -224,
  empty buffer on :FETCh? -230 [U]. Unknown command: no reply, -113 queued, ESR CME [M].
* Compliance is not an error: the source clamps at the limit, ``:SOURce:VOLTage:ILIMit:TRIPped?``
  -> ``1`` and the buffer's SOURSTAT carries the limit bit [M p. 6-72; C]. Out-of-range settings
  queue -222 and leave the setting unchanged.

Physics and timing (see :mod:`.smu_core`)
* Ranges [M SPEC-2450]: I 10 nA-1 A decades (measure resolution 10 fA-1 µA), V 20 mV-200 V
  (10 nV-100 µV); 105 % over-range; source limits ±210 V / ±1.05 A; ILIM 1 nA-1.05 A, VLIM
  20 mV-210 V [S/U]; NPLC 0.01-10 [M]. Noise floor one count RMS at 1 PLC, ∝ 1/sqrt(NPLC) [ASSUMP].
* A reading takes NPLC/f_line + ``timing.measure_overhead`` (autozero) [M for NPLC; overhead
  ASSUMP]; source auto delay = ``timing.source_settle`` [ASSUMP; settling < 200 µs typ. M].
  With output off a reading is still made (0 V at the terminal, noise floor) [U].
* Sweeps (:SOURce:SWEep:<f>:LINear|LINear:STEP|LIST) and :TRIGger:LOAD "SimpleLoop" run to
  completion on the virtual clock at :INITiate, so ``*WAI``/``*OPC?`` return at once afterwards.
  Per point: source level, source delay, sweep delay, one measurement into the buffer [M p. 6-81,
  6-85: "a delay block is added … to any source delay"]; the output is switched on at the start and
  left on at the last point's level [U]; failAbort ON stops after a point in the limit [M].
  Count 0 (infinite) is refused with -221 (emulator limit). The 2450 has no pulse mode [M].
* Not emulated (refused, not faked): ``:FORMat REAL|SREal`` (-221), trigger templates other than
  "Empty"/"SimpleLoop" (-224), user delays, statistics, limits, digital I/O; ``*LANG`` is stored but
  the emulator keeps speaking SCPI; ``:SOURce:VOLTage:PROTection`` is stored, never trips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..electrical import FUNC_DCAMPS, FUNC_DCVOLTS, OUTPUT_HIGH_Z, OUTPUT_ON, SourceState
from ..models import emulator
from .engine import Call, Param, ScpiError, ScpiInstrument
from .smu_core import RangeTable, Reading, SmuPhysics, exp_format, short_format

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig

_I_RANGES = (10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0)
_V_RANGES = (20e-3, 200e-3, 2.0, 20.0, 200.0)
CURRENT = RangeTable(_I_RANGES, tuple(r * 1e-6 for r in _I_RANGES), (1.05,) * len(_I_RANGES),
                     tuple(r * 1e-6 for r in _I_RANGES))
VOLTAGE = RangeTable(_V_RANGES, tuple(r * 5e-7 for r in _V_RANGES), (1.05,) * len(_V_RANGES),
                     tuple(r * 5e-7 for r in _V_RANGES))
OVERFLOW = 9.9e37
V_MAX, I_MAX = 210.0, 1.05                 # source magnitude limits (V, A) [M]
ILIM_MIN, ILIM_MAX, ILIM_DEFAULT = 1e-9, 1.05, 105e-6
VLIM_MIN, VLIM_MAX, VLIM_DEFAULT = 0.02, 210.0, 21.0
NPLC_MIN, NPLC_MAX = 0.01, 10.0
DELAY_MAX = 10_000.0
EPOCH = datetime(2025, 1, 1)               # emulated real-time clock at simulated t = 0 [U]
SOURSTAT_LIMIT, SOURSTAT_SENSE, SOURSTAT_OUTPUT = 32, 64, 128   # source status bits [M p. 8-29]
ELEMENTS = ("DATE", "FORMatted", "FRACtional", "READing", "RELative", "SEConds", "SOURce",
            "SOURFORMatted", "SOURSTATus", "SOURUNIT", "STATus", "TIME", "TSTamp", "UNIT")
UNITS = {"CURR": "Amp DC", "VOLT": "Volt DC", "RES": "Ohm"}
SENSE_NAMES = {"CURR": '"CURR:DC"', "VOLT": '"VOLT:DC"', "RES": '"RES"'}


@dataclass
class Entry:
    """One reading in a reading buffer."""

    reading: float
    source: float
    time: float
    function: str
    source_function: str
    status: int
    source_status: int


class ReadingBuffer:
    """A reading buffer (defbuffer1/2 or user-made): fill-continuous, oldest entry dropped when full."""

    def __init__(self, name: str, capacity: int, style: str = "STANDARD") -> None:
        self.name = name
        self.capacity = capacity
        self.style = style
        self.entries: list[Entry] = []

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        if len(self.entries) > self.capacity:
            del self.entries[0]

    def clear(self) -> None:
        self.entries.clear()


@dataclass
class Sweep:
    """A loaded sweep trigger model: source levels per point, delay (s, -1 auto), repeat count,
    abort on limit, destination buffer."""

    levels: list[float]
    function: str
    delay: float
    count: int
    fail_abort: bool
    buffer: str


@emulator("2450")
class Keithley2450(ScpiInstrument):
    """The 2450 in its SCPI command set (see the module docstring for sources)."""

    KIND = "smu"
    CHANNELS = ("1",)
    MANUFACTURER = "KEITHLEY INSTRUMENTS"
    MODEL = "MODEL 2450"
    ERROR_TEXTS = {0: "No error", -222: "Parameter data out of range"}
    ERROR_FORMAT = '{code:d},"{message}"'
    ERROR_QUEUE_DEPTH = 1000

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        self.state = SourceState(name=f"{config.name}.1")
        bench.circuit.register_source(self.state)
        self.phys = SmuPhysics(bench, self.state, CURRENT, VOLTAGE, OVERFLOW, bench.timing.measure_overhead)
        self.buffers: dict[str, ReadingBuffer] = {}
        self.lists: dict[str, list[float]] = {"VOLT": [], "CURR": []}
        self.language = "SCPI"
        self.model_loaded: Sweep | None = None
        self.pending_language = "SCPI"
        self._powered = False
        super().__init__(bench, config)
        self._powered = True

    def idn(self) -> str:
        return f"{self.MANUFACTURER},{self.MODEL},{self.serial},{self.firmware}"

    # ================================================================ defaults
    def reset(self) -> None:
        """``*RST``: source V 0 V (auto range, ILIM 105 µA, VLIM 21 V, auto delay, readback on),
        measure current (auto range, NPLC 1, count 1), output off (normal), buffers cleared,
        precision auto, sweep list and trigger model cleared [M defaults; ILIM/VLIM values S/U]."""
        was_on = self.state.output == OUTPUT_ON
        if self._powered:
            self.clock.advance(self.timing.reset)
        self.src_func = "VOLT"
        self.level = {"VOLT": 0.0, "CURR": 0.0}
        self.src_range = {"VOLT": 200e-3, "CURR": 100e-9}
        self.src_auto = {"VOLT": True, "CURR": True}
        self.ilim, self.vlim = ILIM_DEFAULT, VLIM_DEFAULT
        self.src_delay = {"VOLT": 0.0, "CURR": 0.0}
        self.src_delay_auto = {"VOLT": True, "CURR": True}
        self.readback = {"VOLT": True, "CURR": True}
        self.protection = "NONE"
        self.sense_func = "CURR"
        self.meas_range = {"CURR": 100e-6, "VOLT": 20.0, "RES": 200e3}
        self.meas_auto = {"CURR": True, "VOLT": True, "RES": True}
        self.auto_low = {"CURR": 10e-9, "VOLT": 20e-3, "RES": 20.0}
        self.nplc = {"CURR": 1.0, "VOLT": 1.0, "RES": 1.0}
        self.autozero = {"CURR": True, "VOLT": True, "RES": True}
        self.rsense = {"CURR": False, "VOLT": False, "RES": False}
        self.count = 1
        self.last_range = {"CURR": 100e-6, "VOLT": 20.0, "RES": 200e3}
        self.off_mode = {"VOLT": "NORM", "CURR": "NORM"}
        self.terminals = "FRON"
        self.precision = 0
        self.data_format = "ASC"
        self.lists = {"VOLT": [], "CURR": []}
        self.model_loaded = None
        self.buffers = {"DEFBUFFER1": ReadingBuffer("defbuffer1", 100_000),
                        "DEFBUFFER2": ReadingBuffer("defbuffer2", 100_000)}
        self.state.output = 0
        if was_on:
            self.bench.events.add(self.clock.now, self.state.name, "output_off", level=0.0)
        self._push()

    def _push(self) -> None:
        """Copy the settings the circuit needs into the source state and re-solve."""
        s = self.state
        s.func = FUNC_DCVOLTS if self.src_func == "VOLT" else FUNC_DCAMPS
        s.levelv, s.leveli = self.level["VOLT"], self.level["CURR"]
        s.limiti, s.limitv = self.ilim, self.vlim
        s.offmode = OUTPUT_HIGH_Z if self.off_mode[self.src_func] == "HIMP" else 0
        self.phys.changed()

    # ================================================================ errors
    def queue_error(self, code: int, message: str | None = None, severity: int = 20) -> None:
        """Event-log entry: the text carries type (1 = error) and the time it was logged."""
        code = self.ERROR_MAP.get(code, code)
        text = message if message is not None else self.error_text(code)
        super().queue_error(code, f"{text}\x00{1 if code else 0}\x00{self.clock.now!r}")

    def format_error(self, code: int, message: str) -> str:
        text, kind, when = _split_entry(message)
        if code == 0 and kind is None:
            return f'0,"{text};0;0 0"'
        stamp = _rtc(when if when is not None else self.clock.now)
        return f'{code:d},"{text};{kind if kind is not None else 1};{stamp:%Y/%m/%d %H:%M:%S}.' \
               f'{stamp.microsecond // 1000:03d}"'

    def _event_next(self, call: Call) -> str:
        if not self.errors:
            return '0,"No error;0,0,0"'
        code, message = self.errors.popleft()
        text, kind, when = _split_entry(message)
        t = when if when is not None else self.clock.now
        seconds = (EPOCH - datetime(1970, 1, 1)).total_seconds() + t
        whole = int(math.floor(seconds))
        return f'{code:d},"{text};{kind if kind is not None else 1},{whole},{int((seconds - whole) * 1e9)}"'

    # ================================================================ commands
    def build(self) -> None:
        c = self.command
        c("*LANG?", lambda call: self.language)
        c("*LANG <lang>", self._lang)
        c(":SYSTem:LFRequency?", lambda call: short_format(self.timing.line_frequency))
        c(":SYSTem:CLEar", lambda call: self.errors.clear())
        c(":SYSTem:EVENtlog:NEXT? [<mask>{,<mask>}]", self._event_next)
        c(":SYSTem:EVENtlog:COUNt? [<mask>{,<mask>}]", lambda call: str(len(self.errors)))
        c(":SYSTem:BEEPer[:IMMediate] <freq>,<time>", lambda call: None)
        c(":STATus:PRESet", lambda call: None)
        c(":STATus:CLEar", lambda call: None)
        c(":SOURce[1]:FUNCtion[:MODE] <function>", self._src_func)
        c(":SOURce[1]:FUNCtion[:MODE]?", lambda call: self.src_func)
        for f, node in (("VOLT", "VOLTage"), ("CURR", "CURRent")):
            self._build_source(f, node)
            self._build_sense(f, node)
            c(f":OUTPut[1]:{node}:SMODe <mode>", self._smod, func=f)
            c(f":OUTPut[1]:{node}:SMODe?", lambda call: self.off_mode[call.extra["func"]], func=f)
        self._build_sense("RES", "RESistance")
        c(":SOURce[1]:VOLTage:ILIMit[:LEVel] <value>", self._ilim)
        c(":SOURce[1]:VOLTage:ILIMit[:LEVel]? [<which>]", lambda call: short_format(
            self._minmax(call, self.ilim, ILIM_MIN, ILIM_MAX, ILIM_DEFAULT)))
        c(":SOURce[1]:VOLTage:ILIMit[:LEVel]:TRIPped?", lambda call: self._tripped("VOLT"))
        c(":SOURce[1]:CURRent:VLIMit[:LEVel] <value>", self._vlim)
        c(":SOURce[1]:CURRent:VLIMit[:LEVel]? [<which>]", lambda call: short_format(
            self._minmax(call, self.vlim, VLIM_MIN, VLIM_MAX, VLIM_DEFAULT)))
        c(":SOURce[1]:CURRent:VLIMit[:LEVel]:TRIPped?", lambda call: self._tripped("CURR"))
        c(":SOURce[1]:VOLTage:PROTection[:LEVel] <level>", self._protection)
        c(":SOURce[1]:VOLTage:PROTection[:LEVel]?", lambda call: self.protection)
        c(":SOURce[1]:VOLTage:PROTection[:LEVel]:TRIPped?", lambda call: "0")
        c(":OUTPut[1][:STATe] <state>", self._output)
        c(":OUTPut[1][:STATe]?", lambda call: "1" if self.state.output == OUTPUT_ON else "0")
        c(":ROUTe[1]:TERMinals <terminals>", self._terminals)
        c(":ROUTe[1]:TERMinals?", lambda call: self.terminals)
        c("[:SENSe[1]]:FUNCtion[:ON] <function>", self._sense_func)
        c("[:SENSe[1]]:FUNCtion[:ON]?", lambda call: SENSE_NAMES[self.sense_func])
        c("[:SENSe[1]]:COUNt <count>", self._count)
        c("[:SENSe[1]]:COUNt?", lambda call: str(self.count))
        c("[:SENSe[1]]:AZERo:ONCE", self._azero_once)
        c("*TRG", lambda call: None)
        c(":READ? [<buffer>[,<element>{,<element>}]]", self._read)
        c(":MEASure? [<buffer>[,<element>{,<element>}]]", self._read)
        for f, node in (("CURR", "CURRent[:DC]"), ("VOLT", "VOLTage[:DC]"), ("RES", "RESistance")):
            c(f":MEASure:{node}? [<buffer>[,<element>{{,<element>}}]]", self._read, func=f)
        c(":FETCh? [<buffer>[,<element>{,<element>}]]", self._fetch)
        c(":TRACe:DATA? <start>,<end>[,<buffer>[,<element>{,<element>}]]", self._trace_data)
        c(":TRACe:ACTual? [<buffer>]", lambda call: str(len(self._buffer(call.get(0), 1).entries)))
        c(":TRACe:ACTual:STARt? [<buffer>]", lambda call: "1" if self._buffer(call.get(0), 1).entries else "0")
        c(":TRACe:ACTual:END? [<buffer>]", lambda call: str(len(self._buffer(call.get(0), 1).entries)))
        c(":TRACe:POINts <size>[,<buffer>]", self._trace_points)
        c(":TRACe:POINts? [<buffer>]", lambda call: str(self._buffer(call.get(0), 1).capacity))
        c(":TRACe:CLEar [<buffer>]", lambda call: self._buffer(call.get(0), 1).clear())
        c(":TRACe:MAKE <name>,<size>[,<style>]", self._trace_make)
        c(":TRACe:DELete <name>", self._trace_delete)
        c(":TRACe:TRIGger [<buffer>]", self._trace_trigger)
        c(":INITiate[:IMMediate]", self._initiate)
        c(":ABORt", lambda call: None)
        c(":TRIGger:LOAD <template>{,<parameter>}", self._trigger_load)
        c(":FORMat[:DATA] <format>", self._format)
        c(":FORMat[:DATA]?", lambda call: self.data_format)
        c(":FORMat:ASCii:PRECision <digits>", self._precision)
        c(":FORMat:ASCii:PRECision?", lambda call: str(self.precision))

    def _build_source(self, f: str, node: str) -> None:
        c = self.command
        c(f":SOURce[1]:{node}[:LEVel][:IMMediate][:AMPLitude] <value>", self._level, func=f)
        c(f":SOURce[1]:{node}[:LEVel][:IMMediate][:AMPLitude]? [<which>]", self._level_q, func=f)
        c(f":SOURce[1]:{node}:RANGe <range>", self._src_range, func=f)
        c(f":SOURce[1]:{node}:RANGe? [<which>]", lambda call: short_format(
            self._src_range_now(call.extra["func"])), func=f)
        c(f":SOURce[1]:{node}:RANGe:AUTO <state>", self._src_range_auto, func=f)
        c(f":SOURce[1]:{node}:RANGe:AUTO?", lambda call: _b(self.src_auto[call.extra["func"]]), func=f)
        c(f":SOURce[1]:{node}:DELay <seconds>", self._src_delay, func=f)
        c(f":SOURce[1]:{node}:DELay?", lambda call: short_format(self._delay_now(call.extra["func"])), func=f)
        c(f":SOURce[1]:{node}:DELay:AUTO <state>", self._src_delay_auto, func=f)
        c(f":SOURce[1]:{node}:DELay:AUTO?", lambda call: _b(self.src_delay_auto[call.extra["func"]]), func=f)
        c(f":SOURce[1]:{node}:READ:BACK <state>", self._readback, func=f)
        c(f":SOURce[1]:{node}:READ:BACK?", lambda call: _b(self.readback[call.extra["func"]]), func=f)
        c(f":SOURce[1]:LIST:{node} <value>{{,<value>}}", self._list, func=f, append=False)
        c(f":SOURce[1]:LIST:{node}:APPend <value>{{,<value>}}", self._list, func=f, append=True)
        c(f":SOURce[1]:LIST:{node}?", lambda call: ",".join(short_format(v) for v in
                                                           self.lists[call.extra["func"]]), func=f)
        c(f":SOURce[1]:LIST:{node}:POINts?", lambda call: str(len(self.lists[call.extra["func"]])), func=f)
        c(f":SOURce[1]:SWEep:{node}:LINear <start>,<stop>,<points>[,<delay>[,<count>[,<rangeType>"
          "[,<failAbort>[,<dual>[,<buffer>]]]]]]", self._sweep_linear, func=f, step=False)
        c(f":SOURce[1]:SWEep:{node}:LINear:STEP <start>,<stop>,<step>[,<delay>[,<count>[,<rangeType>"
          "[,<failAbort>[,<dual>[,<buffer>]]]]]]", self._sweep_linear, func=f, step=True)
        c(f":SOURce[1]:SWEep:{node}:LIST <startIndex>[,<delay>[,<count>[,<failAbort>[,<buffer>]]]]",
          self._sweep_list, func=f)

    def _build_sense(self, f: str, node: str) -> None:
        c = self.command
        n = f"{node}[:DC]" if f != "RES" else node
        c(f"[:SENSe[1]]:{n}:RANGe[:UPPer] <range>", self._meas_range, func=f)
        c(f"[:SENSe[1]]:{n}:RANGe[:UPPer]? [<which>]", lambda call: short_format(
            self._meas_range_now(call.extra["func"])), func=f)
        c(f"[:SENSe[1]]:{n}:RANGe:AUTO <state>", self._meas_auto, func=f)
        c(f"[:SENSe[1]]:{n}:RANGe:AUTO?", lambda call: _b(self.meas_auto[call.extra["func"]]), func=f)
        c(f"[:SENSe[1]]:{n}:RANGe:AUTO:LLIMit <range>", self._meas_llim, func=f)
        c(f"[:SENSe[1]]:{n}:RANGe:AUTO:LLIMit?", lambda call: short_format(
            self.auto_low[call.extra["func"]]), func=f)
        c(f"[:SENSe[1]]:{n}:NPLCycles <nplc>", self._nplc, func=f)
        c(f"[:SENSe[1]]:{n}:NPLCycles? [<which>]", lambda call: short_format(
            self._minmax(call, self.nplc[call.extra["func"]], NPLC_MIN, NPLC_MAX, 1.0)), func=f)
        c(f"[:SENSe[1]]:{n}:AZERo[:STATe] <state>", lambda call: self.autozero.__setitem__(
            call.extra["func"], call[0].boolean()), func=f)
        c(f"[:SENSe[1]]:{n}:AZERo[:STATe]?", lambda call: _b(self.autozero[call.extra["func"]]), func=f)
        c(f"[:SENSe[1]]:{n}:RSENse <state>", lambda call: self.rsense.__setitem__(
            call.extra["func"], call[0].boolean()), func=f)
        c(f"[:SENSe[1]]:{n}:RSENse?", lambda call: _b(self.rsense[call.extra["func"]]), func=f)

    # ---------------------------------------------------------------- system
    def _lang(self, call: Call) -> None:
        """``*LANG``: stored in non-volatile memory, effective after a power cycle [M B-5]; the
        emulator keeps answering SCPI."""
        self.pending_language = call[0].choice("SCPI", "TSP", "SCPI2400")

    def _azero_once(self, call: Call) -> None:
        """``:SENSe:AZERo:ONCE``: one reference measurement (1 PLC) [ASSUMP duration]."""
        self.clock.advance(self.phys.reading_time(1.0))

    @staticmethod
    def _minmax(call: Call, value: float, low: float, high: float, default: float) -> float:
        """A setting query's optional MINimum|MAXimum|DEFault argument."""
        p = call.get(0)
        if p is None:
            return value
        return p.number(low, high, default=default)

    # ---------------------------------------------------------------- source
    def _src_func(self, call: Call) -> None:
        self.src_func = "VOLT" if call[0].choice("VOLTage", "CURRent") == "VOLTAGE" else "CURR"
        self._push()

    def _level(self, call: Call) -> None:
        f = call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        value = call[0].number(-top, top, default=0.0, unit="V" if f == "VOLT" else "A")
        table = VOLTAGE if f == "VOLT" else CURRENT
        if not self.src_auto[f] and abs(value) > table.limit_of(self.src_range[f]) * (1 + 1e-9):
            raise ScpiError(-222)
        self.level[f] = value
        if self.src_auto[f]:
            self.src_range[f] = table.at_least(value)
        self._push()

    def _level_q(self, call: Call) -> str:
        f = call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        return short_format(self._minmax(call, self.level[f], -top, top, 0.0))

    def _src_range(self, call: Call) -> None:
        f = call.extra["func"]
        table = VOLTAGE if f == "VOLT" else CURRENT
        value = call[0].number(0.0, table.maximum, minimum=table.ranges[0], maximum=table.ranges[-1],
                               default=table.ranges[-1] if f == "VOLT" else 100e-6)
        rng = table.fit(value) or table.ranges[-1]
        if abs(self.level[f]) > table.limit_of(rng) * (1 + 1e-9):
            raise ScpiError(-221)
        self.src_range[f], self.src_auto[f] = rng, False

    def _src_range_now(self, f: str) -> float:
        return self.src_range[f]

    def _src_range_auto(self, call: Call) -> None:
        f = call.extra["func"]
        self.src_auto[f] = call[0].boolean()
        if self.src_auto[f]:
            self.src_range[f] = (VOLTAGE if f == "VOLT" else CURRENT).at_least(self.level[f])

    def _ilim(self, call: Call) -> None:
        self.ilim = call[0].number(ILIM_MIN, ILIM_MAX, default=ILIM_DEFAULT, unit="A")
        self._push()

    def _vlim(self, call: Call) -> None:
        self.vlim = call[0].number(VLIM_MIN, VLIM_MAX, default=VLIM_DEFAULT, unit="V")
        self._push()

    def _tripped(self, f: str) -> str:
        """``:…:xLIMit:TRIPped?``: 1 while the output is clamped at the limit of source ``f``."""
        return "1" if self.src_func == f and self.phys.in_compliance() else "0"

    def _protection(self, call: Call) -> None:
        word = call[0].keyword()
        allowed = {"NONE"} | {f"PROT{n}" for n in (2, 5, 10, 20, 40, 60, 80, 100, 120, 140, 160, 180)}
        if word not in allowed:
            raise ScpiError(-224)
        self.protection = word

    def _src_delay(self, call: Call) -> None:
        f = call.extra["func"]
        self.src_delay[f] = call[0].number(0.0, DELAY_MAX, default=0.0, unit="S")
        self.src_delay_auto[f] = False

    def _src_delay_auto(self, call: Call) -> None:
        self.src_delay_auto[call.extra["func"]] = call[0].boolean()

    def _delay_now(self, f: str) -> float:
        return self.timing.source_settle if self.src_delay_auto[f] else self.src_delay[f]

    def _readback(self, call: Call) -> None:
        self.readback[call.extra["func"]] = call[0].boolean()

    def _smod(self, call: Call) -> None:
        self.off_mode[call.extra["func"]] = call[0].choice("NORMal", "HIMPedance", "ZERO", "GUARd")[:4]
        self._push()

    def _output(self, call: Call) -> None:
        self.phys.set_output(call[0].boolean())

    def _terminals(self, call: Call) -> None:
        """``:ROUTe:TERMinals``: changing terminals turns the output off [S]."""
        new = call[0].choice("FRONt", "REAR")[:4]
        if new != self.terminals and self.state.output == OUTPUT_ON:
            self.phys.set_output(False)
        self.terminals = new

    # ---------------------------------------------------------------- sense
    def _sense_func(self, call: Call) -> None:
        p = call[0]
        name = (p.string() if p.is_string else p.keyword()).upper()
        table = {"CURR": "CURR", "CURRENT": "CURR", "CURR:DC": "CURR", "CURRENT:DC": "CURR",
                 "VOLT": "VOLT", "VOLTAGE": "VOLT", "VOLT:DC": "VOLT", "VOLTAGE:DC": "VOLT",
                 "RES": "RES", "RESISTANCE": "RES"}
        if name not in table:
            raise ScpiError(-224)
        self.sense_func = table[name]

    def _meas_range(self, call: Call) -> None:
        f = call.extra["func"]
        if f == "RES":
            value = call[0].number(0.0, 210e6, minimum=20.0, maximum=200e6, default=200e3)
            self.meas_range[f] = _decade_fit(value, (20.0, 200.0, 2e3, 20e3, 200e3, 2e6, 20e6, 200e6))
        else:
            table = CURRENT if f == "CURR" else VOLTAGE
            value = call[0].number(0.0, table.maximum, minimum=table.ranges[0], maximum=table.ranges[-1],
                                   default=100e-6 if f == "CURR" else 20.0)
            self.meas_range[f] = table.fit(value) or table.ranges[-1]
        self.meas_auto[f] = False

    def _meas_range_now(self, f: str) -> float:
        if f == self.src_func:              # measuring the sourced quantity: the source range [M 6-54]
            return self.src_range[f]
        return self.last_range[f] if self.meas_auto[f] else self.meas_range[f]

    def _meas_auto(self, call: Call) -> None:
        self.meas_auto[call.extra["func"]] = call[0].boolean()

    def _meas_llim(self, call: Call) -> None:
        f = call.extra["func"]
        table = CURRENT if f == "CURR" else VOLTAGE
        if f == "RES":
            self.auto_low[f] = call[0].number(20.0, 200e6, default=20.0)
            return
        value = call[0].number(table.ranges[0], table.ranges[-1], default=table.ranges[0])
        self.auto_low[f] = table.at_least(value)

    def _nplc(self, call: Call) -> None:
        self.nplc[call.extra["func"]] = call[0].number(NPLC_MIN, NPLC_MAX, default=1.0)

    def _count(self, call: Call) -> None:
        self.count = call[0].integer(1, 300_000, default=1)

    # ---------------------------------------------------------------- measuring
    def _settle(self) -> None:
        self.clock.advance(self._delay_now(self.src_func))

    def _measure_once(self, buffer: ReadingBuffer) -> Entry:
        """One reading of the sense function, stored in ``buffer``."""
        f = self.sense_func
        fixed = None if self.meas_auto[f] else self.meas_range[f]
        if f == self.src_func and f != "RES":
            fixed = self.src_range[f]
        nplc = self.nplc[f]
        # the overhead per reading is the autozero reference measurement: none with autozero off
        # (2450 Reference Manual, [:SENSe[1]]:<function>:AZERo[:STATe]: off speeds up readings)
        self.phys.measure_overhead = self.timing.measure_overhead if self.autozero[f] else 0.0
        reading: Reading
        if f == "CURR":
            reading = self.phys.measure_current(nplc, fixed, self.auto_low["CURR"])
            value = reading.value
        elif f == "VOLT":
            reading = self.phys.measure_voltage(nplc, fixed, self.auto_low["VOLT"])
            value = reading.value
        else:
            i = self.phys.measure_current(nplc, None, self.auto_low["CURR"], advance=False)
            reading = self.phys.measure_voltage(nplc, None)
            value = OVERFLOW if i.overflow or i.value == 0.0 else reading.value / i.value
            if value != OVERFLOW and abs(value) > 210e6:
                value = OVERFLOW
        self.last_range[f] = reading.range
        src = self._source_value()
        on = self.state.output == OUTPUT_ON
        status = ((SOURSTAT_OUTPUT if on else 0) | (SOURSTAT_LIMIT if on and self.state.in_compliance else 0)
                  | (SOURSTAT_SENSE if self.rsense[f] else 0))
        entry = Entry(value, src, reading.time, f, self.src_func, 0, status)
        buffer.add(entry)
        return entry

    def _source_value(self) -> float:
        """Source value stored with a reading: measured (read-back on) or programmed level."""
        f = self.src_func
        if self.readback[f] and self.state.output == OUTPUT_ON:
            return self.state.v_out if f == "VOLT" else self.level[f]
        return self.level[f]

    def _read(self, call: Call) -> str:
        """``:READ?`` / ``:MEASure[:<f>]?``: count readings into the buffer, reply the last one."""
        func = call.extra.get("func")
        buffer = self._buffer(call.get(0), 1)
        elements = self._elements(call, 1)
        if isinstance(func, str):
            self.sense_func = func
        self._settle()
        entry = self._measure_once(buffer)
        for _ in range(self.count - 1):
            entry = self._measure_once(buffer)
        return self._format_entry(entry, buffer, elements)

    def _fetch(self, call: Call) -> str:
        buffer = self._buffer(call.get(0), 1)
        elements = self._elements(call, 1)
        if not buffer.entries:
            raise ScpiError(-230)
        return self._format_entry(buffer.entries[-1], buffer, elements)

    def _trace_data(self, call: Call) -> str:
        start = call[0].integer(1, None)
        end = call[1].integer(1, None)
        buffer = self._buffer(call.get(2), 3)
        elements = self._elements(call, 3)
        n = len(buffer.entries)
        if start > n or end > n or start > end:
            raise ScpiError(-222)
        return ",".join(self._format_entry(e, buffer, elements) for e in buffer.entries[start - 1:end])

    def _trace_trigger(self, call: Call) -> None:
        buffer = self._buffer(call.get(0), 1)
        self._settle()
        for _ in range(self.count):
            self._measure_once(buffer)

    # ---------------------------------------------------------------- buffers
    def _buffer(self, param: Param | None, index: int) -> ReadingBuffer:
        """The buffer a parameter names (default defbuffer1)."""
        if param is None:
            return self.buffers["DEFBUFFER1"]
        name = param.string(strict=False)
        buffer = self.buffers.get(name.upper())
        if buffer is None:
            raise ScpiError(-224)
        return buffer

    def _elements(self, call: Call, first: int) -> list[str]:
        """Buffer element names from parameter ``first`` on (default READing)."""
        out = []
        for k, p in enumerate(call.params[first:], start=first + 1):
            word = p.raw.strip("'\"").upper() if p.is_string else (p.raw.upper() if p.is_character else "")
            match = next((e.upper() for e in ELEMENTS if word in (_short(e), e.upper())), None)
            if match is None:
                raise ScpiError(1133, f"Parameter {k}, Syntax error, expected valid name parameters.")
            out.append(match)
        return out or ["READING"]

    def _format_entry(self, e: Entry, buffer: ReadingBuffer, elements: list[str]) -> str:
        digits = self.precision if self.precision else 7
        first = buffer.entries[0].time if buffer.entries else e.time
        stamp = _rtc(e.time)
        parts = []
        for name in elements:
            if name == "READING":
                parts.append(exp_format(e.reading, digits))
            elif name == "SOURCE":
                parts.append(exp_format(e.source, digits))
            elif name == "RELATIVE":
                parts.append(exp_format(e.time - first, digits))
            elif name == "SECONDS":
                parts.append(str(int((stamp - datetime(1970, 1, 1)).total_seconds())))
            elif name == "FRACTIONAL":
                parts.append(exp_format(stamp.microsecond / 1e6, digits))
            elif name == "UNIT":
                parts.append(UNITS[e.function])
            elif name == "SOURUNIT":
                parts.append(UNITS[e.source_function])
            elif name == "STATUS":
                parts.append(str(e.status))
            elif name == "SOURSTATUS":
                parts.append(str(e.source_status))
            elif name == "DATE":
                parts.append(f"{stamp:%m/%d/%Y}")
            elif name == "TIME":
                parts.append(f"{stamp:%H:%M:%S}.{stamp.microsecond:06d}")
            elif name == "TSTAMP":
                parts.append(f"{stamp:%m/%d/%Y %H:%M:%S}.{stamp.microsecond:06d}")
            elif name == "FORMATTED":
                parts.append(_engineering(e.reading, UNITS[e.function]))
            else:  # SOURFORMATTED
                parts.append(_engineering(e.source, UNITS[e.source_function]))
        return ",".join(parts)

    def _trace_points(self, call: Call) -> None:
        size = call[0].integer(1, 6_875_000)
        buffer = self._buffer(call.get(1), 2)
        buffer.capacity = size
        buffer.clear()

    def _trace_make(self, call: Call) -> None:
        name = call[0].string(strict=False)
        size = call[1].integer(1, 6_875_000)
        style = call[2].choice("COMPact", "STANdard", "FULL", "WRITable", "FULLWRITable") \
            if call.get(2) is not None else "STANDARD"
        if name.upper() in self.buffers or not name[:1].isalpha():
            raise ScpiError(1133, "Parameter 1, Syntax error, expected valid name parameters.")
        self.buffers[name.upper()] = ReadingBuffer(name, size, style)

    def _trace_delete(self, call: Call) -> None:
        name = call[0].string(strict=False).upper()
        if name in ("DEFBUFFER1", "DEFBUFFER2") or name not in self.buffers:
            raise ScpiError(-224)
        del self.buffers[name]

    # ---------------------------------------------------------------- sweeps
    def _list(self, call: Call) -> None:
        f = call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        if len(call.params) > 100:
            raise ScpiError(-108)
        values = [p.number(-top, top, unit="V" if f == "VOLT" else "A") for p in call.params]
        new = (self.lists[f] if call.extra["append"] else []) + values
        if len(new) > 2500:
            raise ScpiError(-225)
        self.lists[f] = new

    def _sweep_common(self, call: Call, first: int, with_range: bool) -> tuple[float, int, bool, bool, str]:
        """(delay, count, failAbort, dual, buffer) from the optional sweep parameters at ``first``."""
        k = first
        delay = -1.0
        if call.get(k) is not None:
            delay = call[k].number(-1.0, DELAY_MAX, default=-1.0)
            if delay not in (-1.0, 0.0) and delay < 50e-6:
                raise ScpiError(-222)
        k += 1
        count = call[k].integer(0, 268_435_455) if call.get(k) is not None else 1
        if count == 0:
            raise ScpiError(-221, "Settings conflict; infinite sweep count not emulated")
        k += 1
        if with_range:
            if call.get(k) is not None:
                call[k].choice("AUTO", "BEST", "FIXed")
            k += 1
        fail_abort = call[k].boolean() if call.get(k) is not None else True
        k += 1
        dual = False
        if with_range:
            dual = call[k].boolean() if call.get(k) is not None else False
            k += 1
        buffer = self._buffer(call.get(k), k).name
        return delay, count, fail_abort, dual, buffer

    def _sweep_linear(self, call: Call) -> None:
        f = call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        unit = "V" if f == "VOLT" else "A"
        start = call[0].number(-top, top, unit=unit)
        stop = call[1].number(-top, top, unit=unit)
        if call.extra["step"]:
            step = call[2].number(unit=unit)
            if step <= 0 or step > abs(stop - start) and stop != start:
                raise ScpiError(-221)
            points = int(math.floor(abs(stop - start) / step + 1e-9)) + 1
        else:
            points = call[2].integer(2, 1_000_000)
        delay, count, fail_abort, dual, buffer = self._sweep_common(call, 3, True)
        inc = (stop - start) / (points - 1) if points > 1 else 0.0
        if call.extra["step"]:
            inc = math.copysign(call[2].number(unit=unit), stop - start)
        levels = [start + k * inc for k in range(points)]
        if dual:
            levels += levels[::-1]
        self.model_loaded = Sweep(levels, f, delay, count, fail_abort, buffer)

    def _sweep_list(self, call: Call) -> None:
        f = call.extra["func"]
        values = self.lists[f]
        start = call[0].integer(1, max(len(values), 1))
        if not values:
            raise ScpiError(-221)
        delay, count, fail_abort, _, buffer = self._sweep_common(call, 1, False)
        self.model_loaded = Sweep(values[start - 1:], f, delay, count, fail_abort, buffer)

    def _trigger_load(self, call: Call) -> None:
        """``:TRIGger:LOAD "Empty"`` or ``"SimpleLoop", count[, delay[, buffer]]``; others -224."""
        name = call[0].string(strict=False).upper()
        if name == "EMPTY":
            self.model_loaded = None
            return
        if name != "SIMPLELOOP":
            raise ScpiError(-224)
        count = call[1].integer(1, 268_435_455)
        delay = call[2].number(0.0, DELAY_MAX) if call.get(2) is not None else 0.0
        buffer = self._buffer(call.get(3), 4).name
        self.model_loaded = Sweep([], self.src_func, delay, count, False, buffer)

    def _initiate(self, call: Call) -> None:
        """``:INITiate``: run the loaded sweep or simple loop to completion on the virtual clock."""
        sweep = self.model_loaded
        if sweep is None:
            return
        buffer = self.buffers[sweep.buffer.upper()] if sweep.buffer.upper() in self.buffers \
            else self.buffers["DEFBUFFER1"]
        if not sweep.levels:                 # SimpleLoop: count readings, delay before each
            for _ in range(sweep.count):
                self.clock.advance(sweep.delay)
                self._measure_once(buffer)
            return
        buffer.clear()
        f = sweep.function
        self.src_func = f
        table = VOLTAGE if f == "VOLT" else CURRENT
        if self.state.output != OUTPUT_ON:
            self.phys.set_output(True)
        for _ in range(sweep.count):
            for level in sweep.levels:
                if not self.src_auto[f]:
                    top = table.limit_of(self.src_range[f])
                    level = max(-top, min(top, level))
                else:
                    self.src_range[f] = table.at_least(level)
                self.level[f] = level
                self._push()
                self._settle()
                if sweep.delay > 0:
                    self.clock.advance(sweep.delay)
                elif sweep.delay < 0:
                    self.clock.advance(self.timing.source_settle)
                entry = self._measure_once(buffer)
                if sweep.fail_abort and entry.source_status & SOURSTAT_LIMIT:
                    return

    # ---------------------------------------------------------------- format
    def _format(self, call: Call) -> None:
        word = call[0].choice("ASCii", "REAL", "SREal")
        if word != "ASCII":
            raise ScpiError(-221, "Settings conflict; binary formats not emulated")
        self.data_format = "ASC"

    def _precision(self, call: Call) -> None:
        self.precision = call[0].integer(0, 16, default=0)


# ----------------------------------------------------------------------------- helpers
def _b(flag: bool) -> str:
    return "1" if flag else "0"


def _short(mnemonic: str) -> str:
    return "".join(ch for ch in mnemonic if ch.isupper())


def _rtc(t: float) -> datetime:
    """The emulated real-time clock at simulated time ``t`` (s)."""
    return EPOCH + timedelta(seconds=t)


def _split_entry(message: str) -> tuple[str, int | None, float | None]:
    """(text, type, time) of an event-log entry as stored by :meth:`Keithley2450.queue_error`."""
    parts = message.split("\x00")
    if len(parts) == 3:
        return parts[0], int(parts[1]), float(parts[2])
    return message, None, None


def _decade_fit(value: float, ranges: tuple[float, ...]) -> float:
    for r in ranges:
        if value <= r * (1 + 1e-9):
            return r
    return ranges[-1]


def _engineering(value: float, unit: str) -> str:
    """FORMatted element: value with an SI prefix and the unit [U]."""
    if value == OVERFLOW:
        return "Overflow"
    prefixes: list[tuple[float, str]] = [(1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"),
                                         (1e-15, "f")]
    scale, prefix = next(((s, p) for s, p in prefixes if abs(value) >= s), (1e-15, "f"))
    symbol = {"Amp DC": "A", "Volt DC": "V", "Ohm": "Ohm"}[unit]
    return f"{value / scale:+09.4f} {prefix}{symbol}"

