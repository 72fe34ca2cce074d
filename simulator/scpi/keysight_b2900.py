"""Emulated Keysight (Agilent) B2901A / B2902A Precision Source/Measure Units, SCPI, channels "1"/"2".

Manuals: Agilent B2900 SCPI Command Reference Ed. 2 (B2910-90030, 2011; p. 1-xx/4-xx as printed),
Keysight B2961A/B2962A SCPI Command Reference Ed. 6 (same command set), Keysight B2900 User's Guide
Ed. 5, B2900A data sheet. Evidence tags: [M] manual/data sheet, [C] public code
written against the instrument (Lab::Measurement's recorded B2901A session
``t/Moose/Instrument/KeysightB2901A.yml``; a B2901A script with its printed output,
``control_smu.py``), [U] unverified.

Replies
* ``*IDN?`` -> ``Keysight Technologies,<model>,<serial>,<firmware>`` [C: ``Keysight Technologies,
  B2902A,MY51143745,3.4.2011.5100`` asserted by a hardware script; B2901A ``…,3.4.1910.3210``].
* Measurement data (``:MEASure?``, ``:READ?``, ``:FETCh?``): NR3 ``+9.760740E-01`` (7 significant
  digits, sign, 2-digit exponent), elements comma-separated, channel 1 before channel 2 whatever the
  channel list order [M 1-12, 4-44/4-45; C control_smu.py]; ``+9.910000E+37`` = not a number (function
  off / no data) [M 1-12]. ``:MEASure?`` returns the ``:FORMat:ELEMents:SENSe`` elements, default all
  six in the order VOLT,CURR,RES,TIME,STAT,SOUR [M B2961A 4-21]; ``:MEASure:CURRent?`` only current
  [M 4-45; C]. Status element bits [M 1-14 Table 1-2]: 1 current source, 2 in compliance (the
  2-bit compliance field's value for a current compliance is U), 8192 range overflow.
* Setting queries (NR3): ``+1.00000000E-006`` (9 significant digits, 3-digit exponent) [C recorded
  B2901A session: SENS:CURR:RANG?, SENS:CURR:PROT?, SOUR:VOLT:RANG?, SOUR:VOLT:LEV?]; NR1 booleans
  ``0``/``1`` (``SENS:CURR:PROT:TRIP?`` -> ``0``) [C]; counts NR1 without sign [U]; CRD short forms
  ``VOLT``, ``CURR``, ``PULS``, ``FIX`` [C ``SOUR:FUNC:MODE?`` -> ``VOLT``]; ``:SENSe:FUNCtion[:ON]?`` ->
  ``"VOLT","CURR"`` [C]; ``:FORMat:ELEMents:SENSe?`` -> ``VOLT,CURR,…`` [C Lab::Measurement parser].
* Errors: ``:SYSTem:ERRor?`` ``+0,"No error"`` empty [C control_smu.py output], ``<code>,"<SCPI text>"``
  (``-113,"Undefined header"``, ``-222,"Data out of range"``, ``-114,"Header suffix out of range"``
  for ``:SOUR2`` on a B2901A) [texts U]; ``:SYSTem:ERRor:COUNt?`` NR1 ``0`` [U: command and sign].
  Out-of-range levels, limits, ranges, pulse widths queue -222 and leave the setting; NPLC and
  aperture are clamped to MIN/MAX without an error [M B2961A 4-87, B2900 4-73].

Behaviour
* *RST: source voltage 0 V (FIX, DC shape, auto range), compliance 100 µA / 2 V [M B2961A 4-90],
  NPLC 0.1 [M 4-87], measurement auto range with lower limit 1 µA / 0.2 V [M 2-17], sense functions
  VOLT and CURR on [U], all six data elements [M], trigger/arm count 1, AINT, delays 0 [U],
  pulse width 100 µs, delay 0 [U], output off (off mode ZERO [U]), auto output-on ON [M 4-67].
* Ranges B2901A/B2902A [M data sheet, User's Guide Table 2-5]: I 100 nA-3 A (resolution 100 fA-10 µA;
  10 nA not available; 10 A pulse-only not emulated), V 0.2/2/20/200 V (100 nV-100 µV); measurement
  over-range 106 % (102 % on 1.5 A and 3 A); source to 105 % of range (0.21 V on 0.2 V), ±210 V,
  ±3.03 A [M Table 2-4]. Noise one count RMS at 1 PLC, ∝ 1/sqrt(NPLC) [ASSUMP].
* NPLC 4E-4-100 (50 Hz) / 4.8E-4-120 (60 Hz), aperture 8 µs-2 s [M]; pulse width 50 µs-100,000 s
  [M User's Guide], trigger count 1-100,000 [M data sheet].
* :INITiate (ALL/ACQuire/TRANsient, channel list) runs arm count × trigger count points to completion
  on the virtual clock: at each trigger the transient sets the point's level (FIX: ``:SOUR:VOLT:TRIG``;
  LIST; SWEep) after ``:TRIG:TRAN:DEL`` — in PULS shape the output idles at the immediate level (base),
  goes to the point's level after ``:SOUR:PULS:DEL`` for ``:SOUR:PULS:WIDT`` and returns to the base
  [M User's Guide p. 6-7] — and the acquire action measures after ``:TRIG:ACQ:DEL`` (a snapshot at its
  start; the clock then covers the integration). Trigger sources other than TIMer fire at once
  (BUS/external not waited for: emulator limit). In DC shape the output stays at the last point and
  the immediate level follows it [U]. ``*WAI``/``*OPC?`` therefore return at once afterwards.
* Auto output-on: :INITiate, :READ? and :MEASure? switch a channel's output on first [M 4-67].
  Off mode ZERO keeps 0 V on the terminal, NORMal/HIZ open the output relay (high impedance) [U].
* :MEASure? is a one-shot reading at the present output (in PULS shape: at the base) [U]; two channels
  in one channel list integrate side by side [ASSUMP].
* Not emulated: binary ``:FORMat REAL`` (-221), the 10 A pulse range, :TRACe, :CALCulate, waiting for
  BUS/external triggers, ``:OUTPut:PROTection`` tripping (stored only), ``:SENSe:WAIT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..electrical import FUNC_DCAMPS, FUNC_DCVOLTS, OUTPUT_HIGH_Z, OUTPUT_ON, SourceState
from ..models import emulator
from .engine import Call, Param, ScpiError, ScpiInstrument
from .smu_core import RangeTable, Reading, SmuPhysics, exp_format

if TYPE_CHECKING:
    from ..bench import Bench
    from ..bench_config import InstrumentConfig

_I_RANGES = (100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5, 3.0)
_I_RES = (100e-15, 1e-12, 10e-12, 100e-12, 1e-9, 10e-9, 100e-9, 1e-6, 1e-6, 10e-6)
_V_RANGES = (0.2, 2.0, 20.0, 200.0)
CURRENT = RangeTable(_I_RANGES, _I_RES, (1.06,) * 8 + (1.02, 1.02), _I_RES)
VOLTAGE = RangeTable(_V_RANGES, tuple(r * 5e-7 for r in _V_RANGES), (1.06,) * 4,
                     tuple(r * 5e-7 for r in _V_RANGES))
NAN = 9.91e37
V_MAX, I_MAX = 210.0, 3.03
SOURCE_HEADROOM = 1.05
PROT_DEFAULT = {"CURR": 100e-6, "VOLT": 2.0}
WIDTH_MIN, WIDTH_MAX = 50e-6, 100_000.0
TIME_MAX = 100_000.0
COUNT_MAX = 100_000
ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT", "SOUR")
STATUS_CURRENT_SOURCE, STATUS_COMPLIANCE, STATUS_OVERFLOW = 1, 2, 8192
Action = Callable[[], None]


@dataclass
class Point:
    """One acquired data point (NaN for elements not measured)."""

    volt: float = NAN
    curr: float = NAN
    res: float = NAN
    time: float = NAN
    stat: float = NAN
    sour: float = NAN

    def element(self, name: str) -> float:
        return float(getattr(self, name.lower()))


@dataclass
class Layer:
    """One trigger or arm layer of one action (ACQuire or TRANsient)."""

    source: str = "AINT"
    count: int = 1
    delay: float = 0.0
    timer: float = 1e-4


@dataclass
class Channel:
    """Settings and data of one SMU channel."""

    number: int
    state: SourceState
    phys: SmuPhysics
    points: list[Point] = field(default_factory=list)

    def defaults(self) -> None:
        self.func = "VOLT"
        self.level = {"VOLT": 0.0, "CURR": 0.0}
        self.trig_level = {"VOLT": 0.0, "CURR": 0.0}
        self.mode = {"VOLT": "FIX", "CURR": "FIX"}
        self.src_range = {"VOLT": 0.2, "CURR": 100e-9}
        self.src_auto = {"VOLT": True, "CURR": True}
        self.shape = "DC"
        self.width, self.pulse_delay = 100e-6, 0.0
        self.lists: dict[str, list[float]] = {"VOLT": [], "CURR": []}
        self.start = {"VOLT": 0.0, "CURR": 0.0}
        self.stop = {"VOLT": 0.0, "CURR": 0.0}
        self.sweep_points = 1
        self.spacing, self.sweep_state, self.direction, self.sweep_ranging = "LIN", "SING", "UP", "BEST"
        self.prot = dict(PROT_DEFAULT)
        self.functions = {"VOLT", "CURR"}
        self.meas_range = {"CURR": 100e-6, "VOLT": 2.0, "RES": 2e5}
        self.meas_auto = {"CURR": True, "VOLT": True, "RES": True}
        self.auto_low = {"CURR": 1e-6, "VOLT": 0.2, "RES": 2.0}
        self.last_range = {"CURR": 1e-6, "VOLT": 0.2, "RES": 2.0}
        self.nplc = 0.1
        self.nplc_auto = False
        self.remote_sense = False
        self.off_mode = "ZERO"
        self.on_auto, self.off_auto = True, False
        self.protection = False
        self.low = "GRO"
        self.trigger = {"ACQ": Layer(), "TRAN": Layer()}
        self.arm = {"ACQ": Layer(), "TRAN": Layer()}
        self.points = []

    def push(self) -> None:
        """Settings -> the source state the circuit solves; re-solve."""
        s = self.state
        s.func = FUNC_DCVOLTS if self.func == "VOLT" else FUNC_DCAMPS
        s.levelv, s.leveli = self.level["VOLT"], self.level["CURR"]
        s.limiti, s.limitv = abs(self.prot["CURR"]), abs(self.prot["VOLT"])
        s.offmode = 0 if self.off_mode == "ZERO" else OUTPUT_HIGH_Z
        self.phys.changed()

    def levels(self) -> list[float]:
        """The transient's level per trigger for the present source mode."""
        f = self.func
        mode = self.mode[f]
        if mode == "LIST":
            return list(self.lists[f]) or [self.level[f]]
        if mode == "SWE":
            n = max(self.sweep_points, 1)
            a, b = self.start[f], self.stop[f]
            if self.direction == "DOWN":
                a, b = b, a
            if self.spacing == "LOG" and a * b > 0 and n > 1:
                ratio = (b / a) ** (1.0 / (n - 1))
                values = [a * ratio ** k for k in range(n)]
            else:
                values = [a + (b - a) * k / (n - 1) if n > 1 else a for k in range(n)]
            return values + values[::-1] if self.sweep_state == "DOUB" else values
        return [self.trig_level[f]]


@emulator("B2901A", "B2902A")
class KeysightB2900(ScpiInstrument):
    """B2901A (channel 1) and B2902A (channels 1 and 2); see the module docstring for sources."""

    KIND = "smu"
    # model -> channel ids (``models.channels``); each instance replaces it by its own tuple
    CHANNELS: dict[str, tuple[str, ...]] | tuple[str, ...] = {"B2901A": ("1",), "B2902A": ("1", "2")}
    MANUFACTURER = "Keysight Technologies"
    MODEL = "B2902A"
    ERROR_FORMAT = '{code:+d},"{message}"'
    ERROR_QUEUE_DEPTH = 30

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        spec = type(self).CHANNELS
        self.CHANNELS: tuple[str, ...] = tuple(spec.get(config.model, ("1", "2"))) \
            if isinstance(spec, dict) else tuple(spec)
        self.channels: dict[int, Channel] = {}
        for c in self.CHANNELS:
            state = SourceState(name=f"{config.name}.{c}")
            bench.circuit.register_source(state)
            phys = SmuPhysics(bench, state, CURRENT, VOLTAGE, NAN, bench.timing.measure_overhead)
            self.channels[int(c)] = Channel(int(c), state, phys)
        self.elements = list(ELEMENTS)
        self.line_frequency = bench.timing.line_frequency
        self.timer_zero = 0.0
        self._powered = False
        super().__init__(bench, config)
        self._powered = True

    def idn(self) -> str:
        return f"{self.MANUFACTURER},{self.model},{self.serial},{self.firmware}"

    # ================================================================ defaults
    def reset(self) -> None:
        """``*RST`` (and power-on) defaults, outputs off (see the module docstring)."""
        if self._powered:
            self.clock.advance(self.timing.reset)
        for ch in self.channels.values():
            if ch.state.output == OUTPUT_ON:
                self.bench.events.add(self.clock.now, ch.state.name, "output_off", level=0.0)
            ch.defaults()
            ch.state.output = 0
            ch.phys.line_frequency = self.line_frequency
            ch.push()
        self.elements = list(ELEMENTS)

    # ================================================================ commands
    def build(self) -> None:
        c = self.command
        sfx = "[" + "|".join(self.CHANNELS) + "]"
        c(":SYSTem:ERRor:ALL?", self._errors_all)
        c(":SYSTem:ERRor:CODE[:NEXT]?", lambda call: str(self.errors.popleft()[0]) if self.errors else "0")
        c(":SYSTem:LFRequency <frequency>", self._lfr)
        c(":SYSTem:LFRequency?", lambda call: str(int(self.line_frequency)))
        c(":SYSTem:TIME:TIMer:COUNt?", lambda call: _data(self.clock.now - self.timer_zero))
        c(":SYSTem:TIME:TIMer:COUNt:RESet", lambda call: setattr(self, "timer_zero", self.clock.now))
        c(":SYSTem:BEEPer:STATe <state>", self._accept_bool)
        c("*TRG", lambda call: None)
        c(":FORMat[:DATA] <format>{,<length>}", self._format)
        c(":FORMat[:DATA]?", lambda call: "ASC")
        c(":FORMat:ELEMents:SENSe <element>{,<element>}", self._elements_set)
        c(":FORMat:ELEMents:SENSe?", lambda call: ",".join(self.elements))
        c(":FORMat:BORDer <order>", self._byte_order)
        # source
        c(f"[:SOURce{sfx}]:FUNCtion:MODE <mode>", self._src_mode)
        c(f"[:SOURce{sfx}]:FUNCtion:MODE?", lambda call: self._ch(call).func)
        c(f"[:SOURce{sfx}]:FUNCtion:SHAPe <shape>", self._shape)
        c(f"[:SOURce{sfx}]:FUNCtion:SHAPe?", lambda call: self._ch(call).shape)
        for f, node in (("VOLT", "VOLTage"), ("CURR", "CURRent")):
            self._build_source(sfx, f, node)
            self._build_sense(sfx, f, node)
        self._build_sense(sfx, "RES", "RESistance")
        c(f"[:SOURce{sfx}]:PULSe:WIDTh <width>", self._width)
        c(f"[:SOURce{sfx}]:PULSe:WIDTh? [<which>]", lambda call: _setting(self._q(call, self._ch(call).width,
                                                                             WIDTH_MIN, WIDTH_MAX, 100e-6)))
        c(f"[:SOURce{sfx}]:PULSe:DELay <delay>", self._pulse_delay)
        c(f"[:SOURce{sfx}]:PULSe:DELay? [<which>]", lambda call: _setting(self._q(
            call, self._ch(call).pulse_delay, 0.0, TIME_MAX, 0.0)))
        c(f"[:SOURce{sfx}]:SWEep:POINts <points>", self._sweep_points)
        c(f"[:SOURce{sfx}]:SWEep:POINts? [<which>]", lambda call: str(self._ch(call).sweep_points))
        c(f"[:SOURce{sfx}]:SWEep:SPACing <spacing>", lambda call: setattr(
            self._ch(call), "spacing", call[0].choice("LINear", "LOGarithmic")[:3]))
        c(f"[:SOURce{sfx}]:SWEep:SPACing?", lambda call: self._ch(call).spacing)
        c(f"[:SOURce{sfx}]:SWEep:STAir <state>", lambda call: setattr(
            self._ch(call), "sweep_state", call[0].choice("SINGle", "DOUBle")[:4]))
        c(f"[:SOURce{sfx}]:SWEep:STAir?", lambda call: self._ch(call).sweep_state)
        c(f"[:SOURce{sfx}]:SWEep:DIRection <direction>", lambda call: setattr(
            self._ch(call), "direction", call[0].choice("UP", "DOWN")))
        c(f"[:SOURce{sfx}]:SWEep:DIRection?", lambda call: self._ch(call).direction)
        c(f"[:SOURce{sfx}]:SWEep:RANGing <mode>", lambda call: setattr(
            self._ch(call), "sweep_ranging", call[0].choice("BEST", "AUTO", "FIXed")[:4]))
        c(f"[:SOURce{sfx}]:SWEep:RANGing?", lambda call: self._ch(call).sweep_ranging)
        # output
        c(f":OUTPut{sfx}[:STATe] <state>", self._output)
        c(f":OUTPut{sfx}[:STATe]?", lambda call: "1" if self._ch(call).state.output == OUTPUT_ON else "0")
        c(f":OUTPut{sfx}:OFF:MODE <mode>", self._off_mode)
        c(f":OUTPut{sfx}:OFF:MODE?", lambda call: self._ch(call).off_mode)
        c(f":OUTPut{sfx}:ON:AUTO <state>", lambda call: setattr(self._ch(call), "on_auto", call[0].boolean()))
        c(f":OUTPut{sfx}:ON:AUTO?", lambda call: _b(self._ch(call).on_auto))
        c(f":OUTPut{sfx}:OFF:AUTO <state>", lambda call: setattr(self._ch(call), "off_auto", call[0].boolean()))
        c(f":OUTPut{sfx}:OFF:AUTO?", lambda call: _b(self._ch(call).off_auto))
        c(f":OUTPut{sfx}:PROTection[:STATe] <state>", lambda call: setattr(
            self._ch(call), "protection", call[0].boolean()))
        c(f":OUTPut{sfx}:PROTection[:STATe]?", lambda call: _b(self._ch(call).protection))
        c(f":OUTPut{sfx}:LOW <low>", lambda call: setattr(
            self._ch(call), "low", call[0].choice("FLOat", "GROund")[:3]))
        c(f":OUTPut{sfx}:LOW?", lambda call: self._ch(call).low)
        # sense functions and speed
        c(f":SENSe{sfx}:FUNCtion[:ON] <function>{{,<function>}}", self._func_on, on=True)
        c(f":SENSe{sfx}:FUNCtion:OFF <function>{{,<function>}}", self._func_on, on=False)
        c(f":SENSe{sfx}:FUNCtion[:ON]:ALL", lambda call: setattr(self._ch(call), "functions",
                                                                {"VOLT", "CURR", "RES"}))
        c(f":SENSe{sfx}:FUNCtion:OFF:ALL", lambda call: setattr(self._ch(call), "functions", set()))
        c(f":SENSe{sfx}:FUNCtion[:ON]?", lambda call: _quoted(self._ch(call).functions))
        c(f":SENSe{sfx}:FUNCtion:OFF?", lambda call: _quoted({"VOLT", "CURR", "RES"} - self._ch(call).functions))
        c(f":SENSe{sfx}:FUNCtion:STATe? <function>", self._func_state)
        c(f":SENSe{sfx}:REMote <state>", lambda call: setattr(self._ch(call), "remote_sense", call[0].boolean()))
        c(f":SENSe{sfx}:REMote?", lambda call: _b(self._ch(call).remote_sense))
        # trigger and arm layers
        for layer in ("TRIGger", "ARM"):
            for action, node in (("ALL", "[:ALL]"), ("ACQ", ":ACQuire"), ("TRAN", ":TRANsient")):
                base = f":{layer}{sfx}{node}"
                c(f"{base}:SOURce[:SIGNal] <source>", self._layer_source, layer=layer, action=action)
                c(f"{base}:SOURce[:SIGNal]?", self._layer_q, layer=layer, action=action, what="source")
                c(f"{base}:COUNt <count>", self._layer_count, layer=layer, action=action)
                c(f"{base}:COUNt? [<which>]", self._layer_q, layer=layer, action=action, what="count")
                c(f"{base}:DELay <delay>", self._layer_time, layer=layer, action=action, what="delay")
                c(f"{base}:DELay? [<which>]", self._layer_q, layer=layer, action=action, what="delay")
                c(f"{base}:TIMer <period>", self._layer_time, layer=layer, action=action, what="timer")
                c(f"{base}:TIMer? [<which>]", self._layer_q, layer=layer, action=action, what="timer")
        # execution and data
        for action, node in (("ALL", "[:ALL]"), ("ACQ", ":ACQuire"), ("TRAN", ":TRANsient")):
            c(f":INITiate[:IMMediate]{node} [<chanlist>]", self._initiate, action=action)
            c(f":ABORt{node} [<chanlist>]", lambda call: None)
            c(f":IDLE{sfx}{node}?", lambda call: "1")
        for kind in ("FETCh", "READ"):
            c(f":{kind}[:SCALar]? [<chanlist>]", self._data_q, kind=kind, array=False, element=None)
            c(f":{kind}:ARRay? [<chanlist>]", self._data_q, kind=kind, array=True, element=None)
            for el, node in (("CURR", "CURRent"), ("VOLT", "VOLTage"), ("RES", "RESistance"),
                             ("TIME", "TIME"), ("STAT", "STATus"), ("SOUR", "SOURce")):
                c(f":{kind}[:SCALar]:{node}? [<chanlist>]", self._data_q, kind=kind, array=False, element=el)
                c(f":{kind}:ARRay:{node}? [<chanlist>]", self._data_q, kind=kind, array=True, element=el)
        c(":MEASure? [<chanlist>]", self._measure, element=None)
        for el, node in (("CURR", "CURRent[:DC]"), ("VOLT", "VOLTage[:DC]"), ("RES", "RESistance")):
            c(f":MEASure:{node}? [<chanlist>]", self._measure, element=el)

    def _build_source(self, sfx: str, f: str, node: str) -> None:
        c = self.command
        lvl = f"[:SOURce{sfx}]:{node}[:LEVel]"
        c(f"{lvl}[:IMMediate][:AMPLitude] <level>", self._level, func=f, triggered=False)
        c(f"{lvl}[:IMMediate][:AMPLitude]? [<which>]", self._level_q, func=f, triggered=False)
        c(f"{lvl}:TRIGgered[:AMPLitude] <level>", self._level, func=f, triggered=True)
        c(f"{lvl}:TRIGgered[:AMPLitude]? [<which>]", self._level_q, func=f, triggered=True)
        c(f"[:SOURce{sfx}]:{node}:MODE <mode>", self._mode, func=f)
        c(f"[:SOURce{sfx}]:{node}:MODE?", lambda call: self._ch(call).mode[call.extra["func"]], func=f)
        c(f"[:SOURce{sfx}]:{node}:RANGe[:UPPer] <range>", self._src_range, func=f)
        c(f"[:SOURce{sfx}]:{node}:RANGe[:UPPer]? [<which>]", lambda call: _setting(
            self._ch(call).src_range[call.extra["func"]]), func=f)
        c(f"[:SOURce{sfx}]:{node}:RANGe:AUTO <state>", self._src_auto, func=f)
        c(f"[:SOURce{sfx}]:{node}:RANGe:AUTO?", lambda call: _b(self._ch(call).src_auto[call.extra["func"]]),
          func=f)
        for edge in ("STARt", "STOP"):
            c(f"[:SOURce{sfx}]:{node}:{edge} <value>", self._edge, func=f, edge=edge[:4].upper())
            c(f"[:SOURce{sfx}]:{node}:{edge}? [<which>]", self._edge_q, func=f, edge=edge[:4].upper())
        c(f"[:SOURce{sfx}]:{node}:POINts <points>", self._sweep_points, func=f)
        c(f"[:SOURce{sfx}]:{node}:POINts? [<which>]", lambda call: str(self._ch(call).sweep_points), func=f)
        c(f"[:SOURce{sfx}]:LIST:{node} <value>{{,<value>}}", self._list, func=f, append=False)
        c(f"[:SOURce{sfx}]:LIST:{node}:APPend <value>{{,<value>}}", self._list, func=f, append=True)
        c(f"[:SOURce{sfx}]:LIST:{node}?", lambda call: ",".join(
            _setting(v) for v in self._ch(call).lists[call.extra["func"]]), func=f)
        c(f"[:SOURce{sfx}]:LIST:{node}:POINts?", lambda call: str(len(self._ch(call).lists[call.extra["func"]])),
          func=f)

    def _build_sense(self, sfx: str, f: str, node: str) -> None:
        c = self.command
        n = f":SENSe{sfx}:{node}" + ("[:DC]" if f != "RES" else "")
        c(f"{n}:RANGe[:UPPer] <range>", self._meas_range, func=f)
        c(f"{n}:RANGe[:UPPer]? [<which>]", lambda call: _setting(self._meas_range_now(call)), func=f)
        c(f"{n}:RANGe:AUTO <state>", lambda call: self._ch(call).meas_auto.__setitem__(
            call.extra["func"], call[0].boolean()), func=f)
        c(f"{n}:RANGe:AUTO?", lambda call: _b(self._ch(call).meas_auto[call.extra["func"]]), func=f)
        c(f"{n}:RANGe:AUTO:LLIMit <range>", self._meas_llim, func=f)
        c(f"{n}:RANGe:AUTO:LLIMit? [<which>]", lambda call: _setting(
            self._ch(call).auto_low[call.extra["func"]]), func=f)
        c(f"{n}:NPLCycles <nplc>", self._nplc)
        c(f"{n}:NPLCycles? [<which>]", self._nplc_q)
        c(f"{n}:NPLCycles:AUTO <state>", lambda call: setattr(self._ch(call), "nplc_auto", call[0].boolean()))
        c(f"{n}:NPLCycles:AUTO?", lambda call: _b(self._ch(call).nplc_auto))
        c(f"{n}:APERture <time>", self._aperture)
        c(f"{n}:APERture? [<which>]", lambda call: _setting(self._ch(call).nplc / self.line_frequency))
        c(f"{n}:APERture:AUTO <state>", lambda call: setattr(self._ch(call), "nplc_auto", call[0].boolean()))
        c(f"{n}:APERture:AUTO?", lambda call: _b(self._ch(call).nplc_auto))
        if f != "RES":
            c(f"{n}:PROTection[:LEVel] <limit>", self._prot, func=f)
            c(f"{n}:PROTection[:LEVel]? [<which>]", lambda call: _setting(self._q(
                call, self._ch(call).prot[call.extra["func"]], 0.0, I_MAX if call.extra["func"] == "CURR"
                else V_MAX, PROT_DEFAULT[call.extra["func"]])), func=f)
            c(f"{n}:PROTection:TRIPped?", self._tripped, func=f)

    # ================================================================ helpers
    def _ch(self, call: Call) -> Channel:
        """The channel a command's numeric suffix names (the first suffix-taking node)."""
        return self.channels[call.suffix]

    @staticmethod
    def _q(call: Call, value: float, low: float, high: float, default: float) -> float:
        p = call.get(0)
        return value if p is None else p.number(low, high, default=default)

    def _chanlist(self, param: Param | None) -> list[Channel]:
        """Channels of a ``(@1)``/``(@1,2)``/``(@1:2)`` list in channel order; default (@1)."""
        if param is None:
            return [self.channels[1]]
        numbers: set[int] = set()
        for item in param.channels():
            try:
                a = int(item.first)
                b = int(item.last) if item.last is not None else a
            except ValueError:
                raise ScpiError(-171) from None
            for n in range(min(a, b), max(a, b) + 1):
                if n not in self.channels:
                    raise ScpiError(-222)
                numbers.add(n)
        if not numbers:
            raise ScpiError(-109)
        return [self.channels[n] for n in sorted(numbers)]

    # ---------------------------------------------------------------- system
    @staticmethod
    def _accept_bool(call: Call) -> None:
        call[0].boolean()

    @staticmethod
    def _byte_order(call: Call) -> None:
        call[0].choice("NORMal", "SWAPped")

    def _errors_all(self, call: Call) -> str:
        out = [self.format_error(code, text) for code, text in self.errors] or [self.format_error(0, "No error")]
        self.errors.clear()
        return ",".join(out)

    def _lfr(self, call: Call) -> None:
        value = call[0].number(50.0, 60.0, unit="HZ")
        if value not in (50.0, 60.0):
            raise ScpiError(-224)
        self.line_frequency = value
        for ch in self.channels.values():
            ch.phys.line_frequency = value
            ch.nplc = self._clamp_nplc(ch.nplc)

    def _format(self, call: Call) -> None:
        if call[0].choice("ASCii", "REAL") != "ASCII":
            raise ScpiError(-221, "Settings conflict; binary formats not emulated")

    def _elements_set(self, call: Call) -> None:
        chosen = {p.choice("VOLTage", "CURRent", "RESistance", "TIME", "STATus", "SOURce")[:4]
                  for p in call.params}
        self.elements = [e for e in ELEMENTS if e in chosen]

    # ---------------------------------------------------------------- source
    def _src_mode(self, call: Call) -> None:
        ch = self._ch(call)
        ch.func = "VOLT" if call[0].choice("VOLTage", "CURRent") == "VOLTAGE" else "CURR"
        ch.push()

    def _shape(self, call: Call) -> None:
        self._ch(call).shape = "PULS" if call[0].choice("PULSe", "DC") == "PULSE" else "DC"

    def _check_level(self, ch: Channel, f: str, value: float) -> None:
        table = VOLTAGE if f == "VOLT" else CURRENT
        if not ch.src_auto[f] and abs(value) > ch.src_range[f] * SOURCE_HEADROOM * (1 + 1e-9):
            raise ScpiError(-222)
        if table.fit(value / SOURCE_HEADROOM) is None:
            raise ScpiError(-222)

    def _level(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        value = call[0].number(-top, top, default=0.0, unit="V" if f == "VOLT" else "A")
        self._check_level(ch, f, value)
        if call.extra["triggered"]:
            ch.trig_level[f] = value
            return
        ch.level[f] = value
        if ch.src_auto[f]:
            ch.src_range[f] = _source_range(f, value)
        ch.push()

    def _level_q(self, call: Call) -> str:
        ch, f = self._ch(call), call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        value = ch.trig_level[f] if call.extra["triggered"] else ch.level[f]
        return _setting(self._q(call, value, -top, top, 0.0))

    def _mode(self, call: Call) -> None:
        self._ch(call).mode[call.extra["func"]] = call[0].choice("FIXed", "LIST", "SWEep")[:4].rstrip("E")

    def _src_range(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        table = VOLTAGE if f == "VOLT" else CURRENT
        value = call[0].number(0.0, table.ranges[-1] * SOURCE_HEADROOM, minimum=table.ranges[0],
                               maximum=table.ranges[-1], default=table.ranges[0])
        rng = table.at_least(value)
        if abs(ch.level[f]) > rng * SOURCE_HEADROOM * (1 + 1e-9):
            raise ScpiError(-221)
        ch.src_range[f], ch.src_auto[f] = rng, False

    def _src_auto(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        ch.src_auto[f] = call[0].boolean()
        if ch.src_auto[f]:
            ch.src_range[f] = _source_range(f, ch.level[f])

    def _edge(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        value = call[0].number(-top, top, default=0.0, unit="V" if f == "VOLT" else "A")
        (ch.start if call.extra["edge"] == "STAR" else ch.stop)[f] = value

    def _edge_q(self, call: Call) -> str:
        ch, f = self._ch(call), call.extra["func"]
        return _setting((ch.start if call.extra["edge"] == "STAR" else ch.stop)[f])

    def _sweep_points(self, call: Call) -> None:
        self._ch(call).sweep_points = call[0].integer(1, 2500, default=1)

    def _list(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        top = V_MAX if f == "VOLT" else I_MAX
        values = [p.number(-top, top, unit="V" if f == "VOLT" else "A") for p in call.params]
        new = (ch.lists[f] if call.extra["append"] else []) + values
        if len(new) > 2500:
            raise ScpiError(-223)
        ch.lists[f] = new

    def _width(self, call: Call) -> None:
        self._ch(call).width = call[0].number(WIDTH_MIN, WIDTH_MAX, default=100e-6, unit="S")

    def _pulse_delay(self, call: Call) -> None:
        self._ch(call).pulse_delay = call[0].number(0.0, TIME_MAX, default=0.0, unit="S")

    def _output(self, call: Call) -> None:
        ch = self._ch(call)
        ch.phys.set_output(call[0].boolean())

    def _off_mode(self, call: Call) -> None:
        ch = self._ch(call)
        ch.off_mode = {"ZERO": "ZERO", "HIZ": "HIZ", "NORMAL": "NORM"}[call[0].choice("ZERO", "HIZ", "NORMal")]
        ch.push()

    # ---------------------------------------------------------------- sense
    def _func_on(self, call: Call) -> None:
        ch = self._ch(call)
        names = set()
        for p in call.params:
            word = (p.string() if p.is_string else p.keyword()).upper()
            table = {"VOLT": "VOLT", "VOLTAGE": "VOLT", "VOLT:DC": "VOLT", "VOLTAGE:DC": "VOLT",
                     "CURR": "CURR", "CURRENT": "CURR", "CURR:DC": "CURR", "CURRENT:DC": "CURR",
                     "RES": "RES", "RESISTANCE": "RES"}
            if word not in table:
                raise ScpiError(-224)
            names.add(table[word])
        if call.extra["on"]:
            ch.functions |= names
        else:
            ch.functions -= names

    def _func_state(self, call: Call) -> str:
        p = call[0]
        word = (p.string() if p.is_string else p.keyword()).upper()[:4]
        if word not in ("VOLT", "CURR", "RES", "RESI"):
            raise ScpiError(-224)
        return _b(word[:4].rstrip("I") in self._ch(call).functions)

    def _meas_range(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        if f == "RES":
            ch.meas_range[f] = call[0].number(0.0, 200e6, default=2e5)
        else:
            table = CURRENT if f == "CURR" else VOLTAGE
            value = call[0].number(0.0, table.maximum, minimum=table.ranges[0], maximum=table.ranges[-1],
                                   default=table.ranges[0])
            ch.meas_range[f] = table.at_least(value)
        ch.meas_auto[f] = False

    def _meas_range_now(self, call: Call) -> float:
        ch, f = self._ch(call), call.extra["func"]
        return ch.last_range[f] if ch.meas_auto[f] else ch.meas_range[f]

    def _meas_llim(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        if f == "RES":
            ch.auto_low[f] = call[0].number(2.0, 200e6, default=2.0)
            return
        table = CURRENT if f == "CURR" else VOLTAGE
        ch.auto_low[f] = table.at_least(call[0].number(table.ranges[0], table.ranges[-1],
                                                       default=table.ranges[1] if f == "CURR" else 0.2))

    def _nplc_limits(self) -> tuple[float, float]:
        return (4e-4, 100.0) if self.line_frequency == 50.0 else (4.8e-4, 120.0)

    def _clamp_nplc(self, value: float) -> float:
        low, high = self._nplc_limits()
        return min(max(value, low), high)

    def _nplc(self, call: Call) -> None:
        """NPLC outside MIN..MAX is set to MIN or MAX, no error [M 4-87]."""
        low, high = self._nplc_limits()
        ch = self._ch(call)
        ch.nplc = self._clamp_nplc(call[0].number(minimum=low, maximum=high, default=0.1))
        ch.nplc_auto = False

    def _nplc_q(self, call: Call) -> str:
        low, high = self._nplc_limits()
        return _setting(self._q(call, self._ch(call).nplc, low, high, 0.1))

    def _aperture(self, call: Call) -> None:
        """Aperture 8 µs-2 s, clamped [M 4-73]; shares the setting with NPLC."""
        ch = self._ch(call)
        seconds = min(max(call[0].number(minimum=8e-6, maximum=2.0, default=0.1 / self.line_frequency,
                                         unit="S"), 8e-6), 2.0)
        ch.nplc = self._clamp_nplc(seconds * self.line_frequency)
        ch.nplc_auto = False

    def _prot(self, call: Call) -> None:
        ch, f = self._ch(call), call.extra["func"]
        top = I_MAX if f == "CURR" else V_MAX
        value = call[0].number(-top, top, default=PROT_DEFAULT[f], unit="A" if f == "CURR" else "V")
        if value == 0.0:
            raise ScpiError(-222)
        ch.prot[f] = value
        ch.push()

    def _tripped(self, call: Call) -> str:
        ch, f = self._ch(call), call.extra["func"]
        limited = ch.func != f                   # current compliance applies to a voltage source
        return "1" if limited and ch.phys.in_compliance() else "0"

    # ---------------------------------------------------------------- triggers
    def _layers(self, call: Call) -> list[Layer]:
        ch = self._ch(call)
        group = ch.trigger if call.extra["layer"] == "TRIGger" else ch.arm
        action = call.extra["action"]
        return [group["ACQ"], group["TRAN"]] if action == "ALL" else [group[action]]

    def _layer_source(self, call: Call) -> None:
        word = call[0].choice("AINT", "BUS", "TIMer", "INT1", "INT2", "LAN", "EXT1", "EXT2", "EXT3",
                              "EXT4", "EXT5", "EXT6", "EXT7", "EXT8", "EXT9", "EXT10", "EXT11",
                              "EXT12", "EXT13", "EXT14")
        for layer in self._layers(call):
            layer.source = "TIM" if word == "TIMER" else word

    def _layer_count(self, call: Call) -> None:
        p = call[0]
        n = COUNT_MAX if p.is_character and p.raw.upper() in ("INF", "INFINITY") else \
            p.integer(1, COUNT_MAX, default=1)
        for layer in self._layers(call):
            layer.count = n

    def _layer_time(self, call: Call) -> None:
        what = call.extra["what"]
        low = 0.0 if what == "delay" else 2e-5
        value = call[0].number(low, TIME_MAX, default=0.0 if what == "delay" else 1e-4, unit="S")
        for layer in self._layers(call):
            setattr(layer, what, value)

    def _layer_q(self, call: Call) -> str:
        layer = self._layers(call)[0]
        what = call.extra["what"]
        if what == "source":
            return layer.source
        if what == "count":
            return str(layer.count)
        low = 0.0 if what == "delay" else 2e-5
        return _setting(self._q(call, getattr(layer, what), low, TIME_MAX, 0.0 if what == "delay" else 1e-4))

    # ---------------------------------------------------------------- execution
    def _auto_on(self, channels: list[Channel]) -> None:
        for ch in channels:
            if ch.on_auto and ch.state.output != OUTPUT_ON:
                ch.phys.set_output(True)

    def _auto_off(self, channels: list[Channel]) -> None:
        for ch in channels:
            if ch.off_auto and ch.state.output == OUTPUT_ON:
                ch.phys.set_output(False)

    def _acquire(self, ch: Channel, source: float, only: str | None = None) -> Point:
        """One measurement of the enabled functions (or only ``only``) at the present output; the clock
        is not advanced (the caller accounts for the integration time)."""
        funcs = {only} if only else set(ch.functions)
        if "RES" in funcs:
            funcs |= {"VOLT", "CURR"}
        point = Point(time=self.clock.now - self.timer_zero, sour=source)
        status = STATUS_CURRENT_SOURCE if ch.func == "CURR" else 0
        readings: list[Reading] = []
        if "VOLT" in funcs:
            fixed = ch.src_range["VOLT"] if ch.func == "VOLT" else \
                (None if ch.meas_auto["VOLT"] else ch.meas_range["VOLT"])
            r = ch.phys.measure_voltage(ch.nplc, fixed, ch.auto_low["VOLT"], advance=False)
            point.volt = r.value
            ch.last_range["VOLT"] = r.range
            readings.append(r)
        if "CURR" in funcs:
            fixed = ch.src_range["CURR"] if ch.func == "CURR" else \
                (None if ch.meas_auto["CURR"] else ch.meas_range["CURR"])
            r = ch.phys.measure_current(ch.nplc, fixed, ch.auto_low["CURR"], advance=False)
            point.curr = r.value
            ch.last_range["CURR"] = r.range
            readings.append(r)
        if "RES" in funcs and point.curr not in (0.0, NAN) and point.volt != NAN:
            point.res = point.volt / point.curr
        if any(r.compliance for r in readings):
            status |= STATUS_COMPLIANCE
        if any(r.overflow for r in readings):
            status |= STATUS_OVERFLOW
        point.stat = float(status)
        return point

    def _measure(self, call: Call) -> str:
        """``:MEASure[:<f>]? [chanlist]``: spot measurement on each channel (in parallel)."""
        channels = self._chanlist(call.get(0))
        self._auto_on(channels)
        element = call.extra["element"]
        self._spot(channels, element)
        self._auto_off(channels)
        return self._reply(channels, element, array=False)

    def _spot(self, channels: list[Channel], element: str | None) -> None:
        duration = 0.0
        for ch in channels:
            ch.points = [self._acquire(ch, ch.phys.source_level(), element)]
            duration = max(duration, ch.phys.reading_time(ch.nplc))
        self.clock.advance(duration)

    def _data_q(self, call: Call) -> str:
        channels = self._chanlist(call.get(0))
        if call.extra["kind"] == "READ":
            self._auto_on(channels)
            self._run(channels, "ALL")
            self._auto_off(channels)
        return self._reply(channels, call.extra["element"], call.extra["array"])

    def _reply(self, channels: list[Channel], element: str | None, array: bool) -> str:
        names = [element] if element else self.elements
        out: list[str] = []
        for ch in channels:
            points = ch.points or [Point()]
            for p in (points if array else points[-1:]):
                out.extend(_data(p.element(n)) for n in names)
        return ",".join(out)

    def _initiate(self, call: Call) -> None:
        channels = self._chanlist(call.get(0))
        self._auto_on(channels)
        self._run(channels, call.extra["action"])
        self._auto_off(channels)

    def _run(self, channels: list[Channel], action: str) -> None:
        """Run the trigger model of ``channels`` (in parallel) for ``action`` ALL/ACQ/TRAN."""
        t0 = self.clock.now
        ends = []
        events: list[tuple[float, int, Action]] = []
        for ch in channels:
            if action in ("ALL", "ACQ"):
                ch.points = []
            events.extend(self._schedule(ch, action, t0, ends))
        for when, _, fn in sorted(events, key=lambda e: (e[0], e[1])):
            self.clock.advance_to(when)
            fn()
        self.clock.advance_to(max(ends, default=t0))

    def _schedule(self, ch: Channel, action: str, t0: float, ends: list[float]) -> list[tuple[float, int, Action]]:
        """Timed actions of one channel's trigger model from ``t0`` (absolute times)."""
        f = ch.func
        levels = ch.levels()
        tran, acq = ch.trigger["TRAN"], ch.trigger["ACQ"]
        arm = ch.arm["TRAN"] if action == "TRAN" else ch.arm["ACQ"]
        count = tran.count if action == "TRAN" else acq.count
        if action == "ALL":
            count = max(tran.count, acq.count)
        base = ch.level[f]
        t_meas = ch.phys.reading_time(ch.nplc)
        pulse = ch.shape == "PULS"
        events: list[tuple[float, int, Action]] = []
        t = t0
        k = 0
        for _ in range(arm.count):
            t += arm.delay
            for _ in range(count):
                level = levels[k % len(levels)]
                k += 1
                start = t
                end = t
                if action in ("ALL", "TRAN"):
                    on = start + tran.delay + (ch.pulse_delay if pulse else 0.0)
                    events.append((on, 1, _setter(ch, f, level)))
                    end = on + (ch.width if pulse else self.timing.source_settle)
                    if pulse:
                        events.append((end, 3, _setter(ch, f, base)))
                if action in ("ALL", "ACQ"):
                    at = start + acq.delay
                    src = level if action != "ACQ" else None
                    events.append((at, 2, _acquirer(self, ch, src)))
                    end = max(end, at + t_meas)
                period = tran.timer if action == "TRAN" else acq.timer
                timed = (tran.source if action == "TRAN" else acq.source) == "TIM"
                t = max(end, start + period) if timed else end
        if not pulse and action in ("ALL", "TRAN"):
            events.append((t, 4, _level_follow(ch, f, levels[-1])))
        ends.append(t)
        return events


# ----------------------------------------------------------------------------- helpers
def _setter(ch: Channel, f: str, level: float) -> Action:
    def run() -> None:
        if f == "VOLT":
            ch.state.levelv = level
        else:
            ch.state.leveli = level
        ch.phys.changed()
    return run


def _level_follow(ch: Channel, f: str, level: float) -> Action:
    def run() -> None:
        ch.level[f] = level
        ch.push()
    return run


def _acquirer(inst: KeysightB2900, ch: Channel, source: float | None) -> Action:
    def run() -> None:
        ch.points.append(inst._acquire(ch, ch.phys.source_level() if source is None else source))
    return run


def _source_range(f: str, value: float) -> float:
    table = VOLTAGE if f == "VOLT" else CURRENT
    return table.fit(value / SOURCE_HEADROOM) or table.ranges[-1]


def _b(flag: bool) -> str:
    return "1" if flag else "0"


def _data(value: float) -> str:
    """Measurement data, NR3 ``+9.760740E-01`` [M 1-12; C]."""
    return exp_format(value, 7, 2, plus=True)


def _setting(value: float) -> str:
    """Setting query reply, NR3 ``+1.00000000E-006`` [C recorded B2901A session]."""
    return exp_format(value, 9, 3, plus=True)


def _quoted(functions: set[str]) -> str:
    names = [f for f in ("VOLT", "CURR", "RES") if f in functions]
    return ",".join(f'"{n}"' for n in names) if names else '""'
