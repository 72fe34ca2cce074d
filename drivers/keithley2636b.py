"""Keithley 2636B System SourceMeter (two channels, TSP).

Manual: Keithley Series 2600B System SourceMeter Instrument Reference Manual, 2600BS-901-01
(commands ``smuX.source.*``, ``smuX.measure.*``, ``smuX.nvbufferY``, ``smuX.trigger.*``,
``trigger.timer[N]``, ``errorqueue``, ``reset()``). Ranges of the 263xB models: source voltage
200 mV/2 V/20 V/200 V; current limit 100 pA to 1.5 A; voltage limit 20 mV to 200 V; measure current
ranges 100 pA to 1.5 A; NPLC 0.001 to 25.

Every setpoint is validated before it is written (ValueError naming the parameter and its range;
NaN and infinities rejected) and goes on the wire as Python's shortest round-trip ``repr``
(``smua.source.limiti = 1.5e-07``), never ``%f``. Replies are ``%.5e`` numbers
(``format.asciiprecision`` 6), ``true``/``false`` or ``nil``.

Error queue. With ``strict_errors=True`` (default) every setting that can fail (levels, limits,
ranges, NPLC, delays, output, :meth:`SMUChannel.configure_pulse`) is followed by one
``print(errorqueue.count)`` query, and the queue is drained (≤ 32 entries) into an
:class:`~rramlab.drivers.errors.InstrumentError` when it is not empty. The hot path does not query
the queue per operation:

* :meth:`SMUChannel.pulse` sends one write and reads nothing. It fires the pulse only when the
  error queue is empty (checked on the instrument, inside the same chunk), so a rejected amplitude
  never fires the previous amplitude left in the sweep list; a skipped pulse is reported by the
  next error check.
* :meth:`SMUChannel.pulse_and_measure` prints ``errorqueue.count`` beside the reading in its one
  reply, so its errors are raised at once at no extra bus cost.
* Callers of :meth:`SMUChannel.pulse` check the queue with :meth:`Keithley2636B.check_errors` at
  their durability point (the station: once per cell operation batch, before results are stored).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from pymeasure.instruments import Channel, Instrument

from .array_wiring import RoutingError
from .errors import InstrumentError, ReplyError
from .roles import ROLE_SMU, LoopTrace, NodeSwitch, SMUSpec
from .tsp import (
    TSPMixin,
    choice_validator,
    flag_validator,
    parse_bool,
    parse_number,
    parse_numbers,
    range_validator,
    tsp_number,
)

__all__ = ["Keithley2636B", "SMUChannel"]

VOLTAGE_RANGES = (200e-3, 2.0, 20.0, 200.0)
CURRENT_MEASURE_RANGES = (100e-12, 1e-9, 10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5)
VOLTAGE_LEVEL = (-200.0, 200.0)
CURRENT_LEVEL = (-1.5, 1.5)
CURRENT_LIMIT = (100e-12, 1.5)
VOLTAGE_LIMIT = (20e-3, 200.0)
NPLC = (0.001, 25.0)
DELAY = (0.0, 10e3)              # driver bound (s), not a manual figure
PULSE_WIDTH = (1e-6, 100e3)      # trigger.timer[N].delay
DELAY_AUTO = -1.0

_validate_width = range_validator("width", "s")
_validate_pulse_limit = range_validator("current_limit", "A")
_validate_amplitude = range_validator("amplitude", "V")
_validate_read_voltage = range_validator("read_voltage", "V")
_validate_voltage = range_validator("voltage", "V")
_validate_nplc = range_validator("nplc", "PLC")
_validate_stop = range_validator("stop_current", "A")
_validate_target = range_validator("target", "S")
_validate_band = range_validator("band", "S")
_NUM = r"(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|-?nan|-?inf)"
_NUMBER_LIST = re.compile(rf"^{_NUM}(?:, {_NUM})*$")     # a printbuffer reply (ASCII, ", "-separated)
LOOP_POINTS = 250                # levels per staircase call: ~3 kB message (driver bound, not a manual figure)
LOOP_PULSES = 200                # pulses per verify call: a bounded reply and call time (driver bound)
LINE_FREQUENCY_MIN = 50.0        # Hz: the longest power-line cycle, for a loop call's time-out
POINT_OVERHEAD = 0.01            # s per reading or pulse beyond its integration, for a loop call's time-out
ROUTED_CELLS = 64                # cells per routed-read call: ~10 kB message on a 64×64 die (driver bound)
RELAY_OVERHEAD = 0.05            # s per routed cell for its switching, for a loop call's time-out (driver bound)
_CHANNEL_TEXT = re.compile(r"^[0-9A-Za-z,;:]*$")      # a matrix channel list sent inside quotes (no quote, no space)
LOOPS_SCRIPT = "rramlab_loops"   # the TSP script holding the on-instrument loops (keithley2600_loops.tsp)
READ_CHUNK = 60_000              # readings per repeated-read call: the capacity of the dynamic buffer the driver makes
#                                  (smuX.makebuffer(READ_CHUNK)); a driver bound below the >140,000 readings the
#                                  manual gives a dedicated buffer (bufferVar.capacity), not a manual figure
READ_BUFFER = "rramlab_reads"    # Lua global of that buffer, one per channel: rramlab_reads_a / rramlab_reads_b



def _number(name: str, unit: str, bounds: tuple[float, float], *, special: tuple[float, ...] = (),
            set_process: Any = tsp_number) -> dict[str, Any]:
    """Keyword arguments of a numeric setting that can fail (checked with ``strict_errors``)."""
    return {"validator": range_validator(name, unit, special=special), "values": bounds,
            "set_process": set_process, "get_process": parse_number, "cast": str, "maxsplit": 0,
            "check_set_errors": True}


def _choice(name: str, unit: str, choices: tuple[float, ...]) -> dict[str, Any]:
    return {"validator": choice_validator(name, unit), "values": choices, "set_process": tsp_number,
            "get_process": parse_number, "cast": str, "maxsplit": 0, "check_set_errors": True}


def _flag(name: str, on: str, off: str, *, is_on: Any = lambda x: x != 0.0,
          check: bool = False) -> dict[str, Any]:
    """A boolean attribute written as the manual's named constants (``on``/``off``)."""
    return {"validator": flag_validator(name), "values": (True, False),
            "set_process": lambda b: on if b else off,
            "get_process": lambda reply: bool(is_on(parse_number(reply))), "cast": str, "maxsplit": 0,
            "check_set_errors": check}


def _delay_text(x: float) -> str:
    return "smu{ch}.DELAY_AUTO" if x == DELAY_AUTO else tsp_number(x)


_FUNCTIONS = {"voltage": "smu{ch}.OUTPUT_DCVOLTS", "current": "smu{ch}.OUTPUT_DCAMPS"}


def _function_of(reply: str) -> str:
    code = parse_number(reply)
    if code == 1.0:
        return "voltage"
    if code == 0.0:
        return "current"
    raise ReplyError("print(smuX.source.func)", reply, "1 (OUTPUT_DCVOLTS) or 0 (OUTPUT_DCAMPS)")


def _function_validator(value: Any, values: Any) -> str:
    if not isinstance(value, str) or value not in _FUNCTIONS:
        raise ValueError(f"source_function must be one of 'voltage', 'current', got {value!r}")
    return value


class SMUChannel(Channel):
    """One SMU channel (``id`` "a" or "b"; the TSP node ``smua``/``smub``)."""

    # ------------------------------------------------------------------ source
    source_function = Channel.control(
        "print(smu{ch}.source.func)", "smu{ch}.source.func = %s",
        """Control the source function: "voltage" (``OUTPUT_DCVOLTS``) or "current" (``OUTPUT_DCAMPS``).""",
        validator=_function_validator, values=tuple(_FUNCTIONS), set_process=_FUNCTIONS.__getitem__,
        get_process=_function_of, cast=str, maxsplit=0, check_set_errors=True,
    )

    source_voltage = Channel.control(
        "print(smu{ch}.source.levelv)", "smu{ch}.source.levelv = %s",
        """Control the DC voltage source level (``source.levelv``, V, -200 … 200; the instrument
        rejects levels beyond the present fixed source range).""",
        **_number("source_voltage", "V", VOLTAGE_LEVEL),
    )

    source_current = Channel.control(
        "print(smu{ch}.source.leveli)", "smu{ch}.source.leveli = %s",
        """Control the DC current source level (``source.leveli``, A, -1.5 … 1.5).""",
        **_number("source_current", "A", CURRENT_LEVEL),
    )

    current_limit = Channel.control(
        "print(smu{ch}.source.limiti)", "smu{ch}.source.limiti = %s",
        """Control the current limit (compliance) of the voltage source (``source.limiti``, A,
        100e-12 … 1.5; sub-µA values are sent exactly, e.g. ``1.5e-07``).""",
        **_number("current_limit", "A", CURRENT_LIMIT),
    )

    voltage_limit = Channel.control(
        "print(smu{ch}.source.limitv)", "smu{ch}.source.limitv = %s",
        """Control the voltage limit of the current source (``source.limitv``, V, 0.02 … 200).""",
        **_number("voltage_limit", "V", VOLTAGE_LIMIT),
    )

    source_voltage_range = Channel.control(
        "print(smu{ch}.source.rangev)", "smu{ch}.source.rangev = %s",
        """Control the voltage source range (``source.rangev``, V, one of 0.2, 2, 20, 200).
        Setting it disables source autorange; it fails (5003) below the present level.""",
        **_choice("source_voltage_range", "V", VOLTAGE_RANGES),
    )

    source_voltage_autorange = Channel.control(
        "print(smu{ch}.source.autorangev)", "smu{ch}.source.autorangev = %s",
        """Control voltage source autorange (``source.autorangev``, bool).""",
        **_flag("source_voltage_autorange", "smu{ch}.AUTORANGE_ON", "smu{ch}.AUTORANGE_OFF"),
    )

    source_delay = Channel.control(
        "print(smu{ch}.source.delay)", "smu{ch}.source.delay = %s",
        """Control the source delay (``source.delay``, s, 0 … 1e4, or -1 for ``DELAY_AUTO``).""",
        **_number("source_delay", "s", DELAY, special=(DELAY_AUTO,), set_process=_delay_text),
    )

    output_enabled = Channel.control(
        "print(smu{ch}.source.output)", "smu{ch}.source.output = %s",
        """Control the output (``source.output``: True = ``OUTPUT_ON``, False = ``OUTPUT_OFF``;
        reads False for ``OUTPUT_HIGH_Z`` too).""",
        **_flag("output_enabled", "smu{ch}.OUTPUT_ON", "smu{ch}.OUTPUT_OFF", is_on=lambda x: x == 1.0,
                check=True),
    )

    compliance = Channel.measurement(
        "print(smu{ch}.source.compliance)",
        """Get whether the source is in compliance, i.e. clamped at its limit (``source.compliance``).""",
        cast=str, maxsplit=0, get_process=parse_bool,
    )

    # ----------------------------------------------------------------- measure
    current_range = Channel.control(
        "print(smu{ch}.measure.rangei)", "smu{ch}.measure.rangei = %s",
        """Control the current measure range (``measure.rangei``, A, one of 1e-10, 1e-9 … 1, 1.5).
        Setting it disables measure autorange; under autorange it reads the range in use.""",
        **_choice("current_range", "A", CURRENT_MEASURE_RANGES),
    )

    current_autorange = Channel.control(
        "print(smu{ch}.measure.autorangei)", "smu{ch}.measure.autorangei = %s",
        """Control current measure autorange (``measure.autorangei``, bool).""",
        **_flag("current_autorange", "smu{ch}.AUTORANGE_ON", "smu{ch}.AUTORANGE_OFF"),
    )

    nplc = Channel.control(
        "print(smu{ch}.measure.nplc)", "smu{ch}.measure.nplc = %s",
        """Control the integration time in power-line cycles (``measure.nplc``, 0.001 … 25).""",
        **_number("nplc", "", NPLC),
    )

    measure_delay = Channel.control(
        "print(smu{ch}.measure.delay)", "smu{ch}.measure.delay = %s",
        """Control the measure delay (``measure.delay``, s, 0 … 1e4, or -1 for ``DELAY_AUTO``).""",
        **_number("measure_delay", "s", DELAY, special=(DELAY_AUTO,), set_process=_delay_text),
    )

    def __init__(self, parent: Instrument, id: str, **kwargs: Any) -> None:
        if id not in ("a", "b"):
            raise ValueError(f"SMU channel id must be 'a' or 'b', got {id!r}")
        super().__init__(parent, id, **kwargs)
        n = f"smu{id}"
        self.node = n                                   # the TSP node name, smua or smub
        self._pulse_width: float | None = None          # s, set by configure_pulse (a loop call's time-out)
        self._staircase_calls: dict[tuple[Any, ...], tuple[str, float]] = {}   # inputs -> (call, s), staircase
        self.pulse_timer = 1 if id == "a" else 2        # trigger.timer[N] that times this channel's pulses
        # Hot-path command templates, built once (one write per pulse; see the module docstring).
        fire = f"if errorqueue.count == 0 then {n}.trigger.initiate() waitcomplete() end"
        self._pulse_command = f"{n}.trigger.source.listv({{%s}}) {fire}"
        self._pulse_read_command = (f"{n}.trigger.source.listv({{%s}}) {fire} {n}.source.levelv = %s "
                                    f"print({n}.measure.i(), errorqueue.count) {n}.source.levelv = 0")
        self._source_read_command = f"{n}.source.levelv = %s print({n}.measure.i(), errorqueue.count)"
        self._sweep_point_command = (f"{n}.source.levelv = %s "
                                     f"print({n}.measure.i(), {n}.source.compliance, errorqueue.count)")

    @property
    def key(self) -> str:
        """The station's name for this channel: ``<instrument name>.<a|b>``."""
        return f"{self.parent.name}.{self.id}"

    def _ask(self, command: str) -> str:
        # Through the instrument, not Channel.write: commands may hold Lua tables ({...}).
        return self.parent.ask(command)

    def _measure(self, what: str) -> float:
        command = f"print({self.node}.measure.{what}())"
        return parse_number(self._ask(command), command)

    def measure_current(self) -> float:
        """Measure the current once (``print(smuX.measure.i())``, A; 9.91e37 when over range)."""
        return self._measure("i")

    def measure_voltage(self) -> float:
        """Measure the voltage once (``print(smuX.measure.v())``, V; 9.91e37 when over range)."""
        return self._measure("v")

    def measure_iv(self) -> tuple[float, float]:
        """Measure current and voltage together (``print(smuX.measure.iv())``): (A, V)."""
        command = f"print({self.node}.measure.iv())"
        i, v = parse_numbers(self._ask(command), 2, command)
        return i, v

    # ------------------------------------------------------------------ pulses
    def configure_pulse(self, width: float, current_limit: float | None = None) -> None:
        """Set up the trigger model for one timed voltage pulse per ``smuX.trigger.initiate()``.

        ``width``: pulse width (s, 1e-6 … 1e5), the delay of ``trigger.timer[N]`` (N = 1 for smua,
        2 for smub) started by the source-complete event; the end pulse returns the source to its DC
        level (``SOURCE_IDLE``). Source action on, measure action off, counts 1.
        ``current_limit``: the limit during the pulse (``smuX.trigger.source.limiti``, A, 100e-12 …
        1.5; during sweeps the instrument enforces at least 10 % of the limit range); None = the DC
        limit (``LIMIT_AUTO``, sent as 0). One write, then the strict error check.
        """
        w = _validate_width(width, PULSE_WIDTH)
        limit = "0" if current_limit is None else tsp_number(_validate_pulse_limit(current_limit, CURRENT_LIMIT))
        n, t = self.node, f"trigger.timer[{self.pulse_timer}]"
        statements = [
            f"{n}.trigger.source.action = {n}.ENABLE",
            f"{n}.trigger.measure.action = {n}.DISABLE",
            f"{n}.trigger.source.limiti = {limit}",
            f"{t}.delay = {tsp_number(w)}",
            f"{t}.count = 1",
            f"{t}.passthrough = false",
            f"{t}.stimulus = {n}.trigger.SOURCE_COMPLETE_EVENT_ID",
            f"{n}.trigger.endpulse.action = {n}.SOURCE_IDLE",
            f"{n}.trigger.endpulse.stimulus = {t}.EVENT_ID",
            f"{n}.trigger.arm.count = 1",
            f"{n}.trigger.count = 1",
        ]
        self._pulse_width = None
        self.parent.write("; ".join(statements))
        self.parent.check_set_errors()
        self._pulse_width = w

    def pulse(self, amplitude: float) -> None:
        """One timed pulse of ``amplitude`` V (-200 … 200), returning to the DC level.

        One write, no reply: ``smuX.trigger.source.listv({amplitude})``, then
        ``smuX.trigger.initiate() waitcomplete()`` only if the error queue is empty (a rejected
        amplitude must not fire the previous one). Needs :meth:`configure_pulse` and the output on.
        Errors are not read here: see the module docstring.
        """
        a = tsp_number(_validate_amplitude(amplitude, VOLTAGE_LEVEL))
        self.parent.write(self._pulse_command % a)

    def pulse_and_measure(self, amplitude: float, read_voltage: float) -> float:
        """Pulse ``amplitude`` V, then source ``read_voltage`` V, measure the current (A), return to 0 V.

        One write and one read (both voltages -200 … 200; the current is measured with the
        channel's present NPLC, range and delay). The reply carries ``errorqueue.count`` beside the
        reading; a non-zero count drains the queue into :class:`InstrumentError` (reading discarded).
        """
        a = tsp_number(_validate_amplitude(amplitude, VOLTAGE_LEVEL))
        r = tsp_number(_validate_read_voltage(read_voltage, VOLTAGE_LEVEL))
        parent = self.parent
        command = self._pulse_read_command % (a, r)
        current, count = parse_numbers(parent.fast_ask(command), 2, command)
        if count != 0.0:
            parent.check_errors()
            raise InstrumentError([], parent.name, f"errorqueue.count was {count:g} after a pulse")
        return current

    def measure_current_at(self, voltage: float, return_to_zero: bool = True) -> float:
        """Source ``voltage`` V (-200 … 200), measure the current once (A), then return to 0 V unless
        ``return_to_zero`` is False (a staircase point that stays at its level).

        One write and one read: ``smuX.source.levelv = v print(smuX.measure.i(), errorqueue.count)``
        [`` smuX.source.levelv = 0``]. A non-zero error count drains the queue into
        :class:`InstrumentError` (reading discarded), so a refused level never yields a reading.
        """
        v = tsp_number(_validate_voltage(voltage, VOLTAGE_LEVEL))
        command = self._source_read_command % v
        if return_to_zero:
            command += f" {self.node}.source.levelv = 0"
        parent = self.parent
        current, count = parse_numbers(parent.fast_ask(command), 2, command)
        if count != 0.0:
            parent.check_errors()
            raise InstrumentError([], parent.name, f"errorqueue.count was {count:g} after sourcing {v} V")
        return current

    def sweep_point(self, voltage: float) -> tuple[float, bool]:
        """Source ``voltage`` V and stay there (a staircase point); measure the current once (A) and read
        whether the source is clamped at its limit (``source.compliance``), in one round trip:
        ``smuX.source.levelv = v print(smuX.measure.i(), smuX.source.compliance, errorqueue.count)``.
        A non-zero error count raises :class:`InstrumentError` (reading discarded).
        """
        v = tsp_number(_validate_voltage(voltage, VOLTAGE_LEVEL))
        command = self._sweep_point_command % v
        parent = self.parent
        reply = parent.fast_ask(command)
        parts = reply.strip().split("\t")
        if len(parts) != 3:
            raise ReplyError(command, reply, "current, compliance and error count separated by TABs")
        current, count = parse_number(parts[0], command), parse_number(parts[2], command)
        if count != 0.0:
            parent.check_errors()
            raise InstrumentError([], parent.name, f"errorqueue.count was {count:g} after sourcing {v} V")
        return current, parse_bool(parts[1], command)

    # ------------------------------------------------------- on-instrument loops
    loop_points = LOOP_POINTS
    loop_pulses = LOOP_PULSES

    def staircase(self, levels: Sequence[float], nplc: Sequence[float], stop_current: float | None) -> LoopTrace:
        """A DC staircase run by the instrument (``rramlab_staircase`` in ``keithley2600_loops.tsp``): each of
        ``levels`` (V, -200 … 200, at most :attr:`loop_points`) held in turn, no 0 V between points, one current
        reading per level with ``nplc[k]`` PLC (0.001 … 25); stops after the first reading >= ``stop_current``
        (A) or in compliance (None: no stop rule). The output stays at the last level. One write, one reply.
        A non-zero error count drains the queue into :class:`InstrumentError` (readings discarded)."""
        key = (tuple(levels), tuple(nplc), stop_current)
        call = self._staircase_calls.get(key)    # a forming ramp sends the same calls cell after cell
        if call is None:
            if len(self._staircase_calls) >= 8:
                self._staircase_calls.clear()
            call = self._staircase_calls[key] = self._staircase_command(levels, nplc, stop_current)
        command, seconds = call
        self.parent.load_loops()
        current, flag, t = self.parent.loop_reply(command, seconds)
        return LoopTrace(tuple(float(x) for x in levels[:len(current)]), tuple(current),
                         tuple(f != 0.0 for f in flag), tuple(t))

    def _staircase_command(self, levels: Sequence[float], nplc: Sequence[float],
                           stop_current: float | None) -> tuple[str, float]:
        """(the ``rramlab_staircase`` call, its duration bound in s) for :meth:`staircase`, every value checked."""
        n = len(levels)
        if not 1 <= n <= LOOP_POINTS or len(nplc) != n:
            raise ValueError(f"levels: 1 … {LOOP_POINTS} levels with one nplc each, got {n} levels and "
                             f"{len(nplc)} nplc values")
        v = ",".join(tsp_number(_validate_voltage(x, VOLTAGE_LEVEL)) for x in levels)
        p = ",".join(tsp_number(_validate_nplc(x, NPLC)) for x in nplc)
        stop = "nil" if stop_current is None else tsp_number(_validate_stop(stop_current, CURRENT_LEVEL))
        command = f"rramlab_staircase({self.node}, {{{v}}}, {{{p}}}, {n}, {stop})"
        return command, sum(float(x) for x in nplc) / LINE_FREQUENCY_MIN + n * POINT_OVERHEAD

    def verify_loop(self, target: float, band: float, v_set: float, v_reset: float, read_voltage: float,
                    max_pulses: int, nplc: float, g_start: float | None = None) -> LoopTrace:
        """The program-verify loop run by the instrument (``rramlab_verify`` in ``keithley2600_loops.tsp``): read
        G = I/``read_voltage`` (unless ``g_start`` S, the last read of a previous call, is given); while
        |G - ``target``| > ``band`` (S) and fewer than ``max_pulses`` (at most :attr:`loop_pulses`) pulses, one
        pulse of ``v_set`` V (G < target) or ``v_reset`` V through the trigger model of :meth:`configure_pulse`,
        then read again (``nplc``: the channel's present integration, PLC, for the reply's time-out; back at
        0 V). One write, one reply; a non-zero error count drains the queue into :class:`InstrumentError`.
        ``level`` in the trace is the pulse before each read (0: none)."""
        g = _validate_target(target, (1e-12, 1.0))
        b = _validate_band(band, (0.0, 1.0))
        vs = _validate_amplitude(v_set, VOLTAGE_LEVEL)
        vr = _validate_amplitude(v_reset, VOLTAGE_LEVEL)
        r = _validate_read_voltage(read_voltage, VOLTAGE_LEVEL)
        if r == 0.0:
            raise ValueError("read_voltage must be non-zero (G = I / read_voltage), got 0 V")
        if isinstance(max_pulses, bool) or not isinstance(max_pulses, int) or not 0 <= max_pulses <= LOOP_PULSES:
            raise ValueError(f"max_pulses must be an integer in 0 … {LOOP_PULSES} per call, got {max_pulses!r}")
        n = _validate_nplc(nplc, NPLC)
        start = "nil" if g_start is None else tsp_number(_validate_target(g_start, (-1.0, 1.0)))
        self.parent.load_loops()
        command = (f"rramlab_verify({self.node}, {tsp_number(g)}, {tsp_number(b)}, {tsp_number(vs)}, "
                   f"{tsp_number(vr)}, {tsp_number(r)}, {max_pulses}, {start})")
        width = self._pulse_width or 0.0
        seconds = (max_pulses + 1) * (n / LINE_FREQUENCY_MIN + width + POINT_OVERHEAD)
        amplitude, current, t = self.parent.loop_reply(command, seconds)
        return LoopTrace(tuple(amplitude), tuple(current), (False,) * len(current), tuple(t))

    # ------------------------------------------------------------ repeated reads
    repeat_chunk = READ_CHUNK

    def read_chunk_command(self, voltage: float, count: int) -> str:
        """The TSP text of one call of :meth:`read_repeated_chunk` (validated; nothing is sent)."""
        v = tsp_number(_validate_voltage(voltage, VOLTAGE_LEVEL))
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= READ_CHUNK:
            raise ValueError(f"count must be an integer within [1, {READ_CHUNK}] (smuX.measure.count readings per "
                             f"call, at most the capacity of the reading buffer smuX.makebuffer({READ_CHUNK})), "
                             f"got {count!r}")
        n, b = self.node, f"{READ_BUFFER}_{self.id}"
        return (f"if {b} == nil then {b} = {n}.makebuffer({READ_CHUNK}) end {b}.clear() "
                f"{n}.source.levelv = {v} {n}.measure.count = {count} "
                f"print({n}.measure.i({b}), {b}.n, errorqueue.count) "
                f"{n}.measure.count = 1 {n}.source.levelv = 0")

    def read_repeated_chunk(self, voltage: float, count: int, nplc: float) -> float:
        """``count`` current readings at ``voltage`` V made by the instrument in one call; returns the last (A).

        One write and one read (2600B Reference Manual, 2600BS-901-01): a dynamic reading buffer of
        :data:`READ_CHUNK` readings made once per instrument session (``smuX.makebuffer()``: "Use bufferSize to
        designate the number of readings the buffer can store"; ``bufferVar.capacity``: "A user-defined
        dynamically allocated buffer has a fixed capacity that is set when the buffer is created") and cleared
        (``bufferVar.clear()``); the source at ``voltage``; ``smuX.measure.count = count``; ``smuX.measure.i(buffer)``
        stores every reading in the buffer and returns only the last (``smuX.measure.Y()``: "If the instrument is
        configured to return multiple readings for a measurement and readingBuffer is specified, all readings are
        available in readingBuffer, but only the last measurement is returned as reading"; without a buffer the
        count is ignored); the measure delay only before the first reading and ``smuX.measure.interval`` (0 by
        default) between readings (``smuX.measure.count``); the reply prints the last reading, ``bufferVar.n`` and
        ``errorqueue.count``; then the count back to 1 and the source to 0 V. ``count`` within [1,
        :data:`READ_CHUNK`] and ``voltage`` within -200 … 200 V (ValueError before anything is written); ``nplc``
        (the channel's present integration, PLC) sizes the VISA time-out of the reply. A non-zero error count
        drains the queue into :class:`InstrumentError`; fewer readings than ``count`` is a :class:`ReplyError`."""
        command = self.read_chunk_command(voltage, count)
        n = _validate_nplc(nplc, NPLC)
        parent = self.parent
        seconds = count * (n / LINE_FREQUENCY_MIN + POINT_OVERHEAD)
        connection = getattr(parent.adapter, "connection", None)
        timeout = getattr(connection, "timeout", None)
        if isinstance(timeout, (int, float)):                 # a VISA session (ms); not a test double
            connection.timeout = max(timeout, (seconds + 10.0) * 1000.0)
        try:
            reply = parent.ask(command)
        finally:
            if isinstance(timeout, (int, float)):
                connection.timeout = timeout
        current, stored, errors = parse_numbers(reply, 3, command)
        if errors != 0.0:
            parent.check_errors()
            raise InstrumentError([], parent.name, f"errorqueue.count was {errors:g} after {count} readings")
        if stored != count:
            raise ReplyError(command, reply, f"{count} readings stored in the buffer, not {stored:g}")
        return current

    def read_repeated(self, voltage: float, n: int, nplc: float) -> float:
        """``n`` current readings at ``voltage`` V (any n >= 1), in calls of at most :data:`READ_CHUNK`
        readings (:meth:`read_repeated_chunk`, back at 0 V between calls); returns the last reading (A)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (readings), got {n!r}")
        self.read_chunk_command(voltage, min(n, READ_CHUNK))        # everything checked before the first write
        _validate_nplc(nplc, NPLC)
        current = float("nan")
        done = 0
        while done < n:
            count = min(n - done, READ_CHUNK)
            current = self.read_repeated_chunk(voltage, count, nplc)
            done += count
        return current

    # ----------------------------------------------------------------- buffers
    @staticmethod
    def _buffer(buffer: int) -> int:
        if isinstance(buffer, bool) or buffer not in (1, 2):
            raise ValueError(f"buffer must be 1 or 2, got {buffer!r}")
        return int(buffer)

    def read_buffer(self, buffer: int = 1) -> list[float]:
        """All readings of ``smuX.nvbufferN`` (N = 1, 2), oldest first.

        ``print(smuX.nvbufferN.n)``, then, when not empty,
        ``printbuffer(1, n, smuX.nvbufferN.readings)``.
        """
        b = f"{self.node}.nvbuffer{self._buffer(buffer)}"
        count = int(self.parent.query_number(f"{b}.n"))
        if count <= 0:
            return []
        command = f"printbuffer(1, {count}, {b}.readings)"
        return parse_numbers(self._ask(command), count, command, separator=", ")

    def clear_buffer(self, buffer: int = 1) -> None:
        """Clear ``smuX.nvbufferN`` (``smuX.nvbufferN.clear()``)."""
        self.parent.write(f"{self.node}.nvbuffer{self._buffer(buffer)}.clear()")


class Keithley2636B(TSPMixin, Instrument):
    """Keithley 2636B dual-channel System SourceMeter (TSP).

    ``adapter``: a VISA resource name (``"GPIB0::26::INSTR"``), GPIB address or pymeasure adapter.
    Terminations are LF both ways and the timeout 10 s unless given; nothing is sent on connect.
    ``strict_errors``: check the error queue after each setting that can fail (one query).
    """

    ROLES = frozenset({ROLE_SMU})
    TSPLINK_MASTER = True   # other TSP instruments can be its TSP-Link nodes (station file: tsplink.master)
    SMU = SMUSpec(
        channels=("a", "b"), max_voltage=VOLTAGE_LEVEL[1], current_limit=CURRENT_LIMIT, nplc=NPLC,
        pulse_width=PULSE_WIDTH,
        notes={"max_voltage": "2600B Reference Manual, smuX.source.levelv: 263xB ±200 V",
               "current_limit": "smuX.source.limiti: 100 pA (263xB) to 1.5 A",
               "nplc": "smuX.measure.nplc: 0.001 to 25",
               "pulse_width": "trigger.timer[N].delay: 1 µs resolution (pulse = timer-timed source action)"})

    smua = Instrument.ChannelCreator(SMUChannel, "a")
    smub = Instrument.ChannelCreator(SMUChannel, "b")

    def channel(self, channel_id: str) -> SMUChannel:
        """Channel ``"a"`` (smua) or ``"b"`` (smub)."""
        if channel_id not in ("a", "b"):
            raise ValueError(f"channel must be 'a' or 'b', got {channel_id!r}")
        return self.smua if channel_id == "a" else self.smub

    def __init__(self, adapter: Any, name: str = "Keithley 2636B", *, strict_errors: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.strict_errors = bool(strict_errors)
        self._loops_loaded = False

    def _output_settings(self, states: Sequence[tuple[str, bool]]) -> list[str]:
        """``smuX.source.output = smuX.OUTPUT_ON|OFF`` for each (channel id, on), in order (ValueError if bad)."""
        parts = []
        for channel_id, on in states:
            node = self.channel(channel_id).node
            if not isinstance(on, bool):
                raise ValueError(f"output state of channel {channel_id!r} must be True or False, got {on!r}")
            parts.append(f"{node}.source.output = {node}.{'OUTPUT_ON' if on else 'OUTPUT_OFF'}")
        return parts

    def set_outputs(self, states: Sequence[tuple[str, bool]]) -> None:
        """Turn channel outputs on or off in the order given and check the error queue, in one query:
        ``smub.source.output = smub.OUTPUT_ON smua.source.output = smua.OUTPUT_ON print(errorqueue.count)``.
        A non-zero count drains the queue into :class:`InstrumentError`."""
        parts = self._output_settings(states)
        if not parts:
            return
        command = " ".join([*parts, "print(errorqueue.count)"])
        count = parse_number(self.fast_ask(command), command)
        if count != 0.0:
            self.check_errors()
            raise InstrumentError([], self.name, f"errorqueue.count was {count:g} after {command!r}")

    def read_switched(self, channel_id: str, voltage: float, before: Sequence[tuple[str, bool]],
                      after: Sequence[tuple[str, bool]]) -> float:
        """One current reading (A) of channel ``channel_id`` at ``voltage`` V (-200 … 200) with outputs switched
        around it, in one query: the outputs ``before`` in order, the level, the reading, the level back to
        0 V, the outputs ``after`` in order, then the reading and the error count printed, e.g. ``smub.source.output
        = smub.OUTPUT_ON smua.source.output = smua.OUTPUT_ON smua.source.levelv = 0.2 local i = smua.measure.i()
        smua.source.levelv = 0 smua.source.output = smua.OUTPUT_OFF smub.source.output = smub.OUTPUT_OFF
        print(i, errorqueue.count)``: the attributes and functions of :meth:`set_outputs` and
        :meth:`SMUChannel.measure_current_at` (2600B Reference Manual, smuX.source.output, smuX.source.levelv,
        smuX.measure.Y(), errorqueue.count) in one chunk, the reading kept in a Lua local. A non-zero count drains
        the queue into :class:`InstrumentError` (reading discarded). Everything is checked before the write."""
        node = self.channel(channel_id).node
        v = tsp_number(_validate_voltage(voltage, VOLTAGE_LEVEL))
        command = " ".join([*self._output_settings(before), f"{node}.source.levelv = {v}",
                            f"local i = {node}.measure.i()", f"{node}.source.levelv = 0",
                            *self._output_settings(after), "print(i, errorqueue.count)"])
        current, count = parse_numbers(self.fast_ask(command), 2, command)
        if count != 0.0:
            self.check_errors()
            raise InstrumentError([], self.name, f"errorqueue.count was {count:g} after {command!r}")
        return current

    routed_cells = ROUTED_CELLS

    def routed_reads(self, bl: str, wl: str, voltage: float, routes: Sequence[Sequence[NodeSwitch]],
                     nplc: float) -> LoopTrace:
        """Read one cell per entry of ``routes`` (at most :attr:`routed_cells`), switching the matrices that are
        this master's TSP-Link nodes on the instrument (``rramlab_routed_reads`` in ``keithley2600_loops.tsp``):
        both outputs off first; per cell each :class:`~.roles.NodeSwitch`'s openings on every node, then its
        closings, then the closed sets read back (``node[N].channel.getclose('allslots')``, compared as sets);
        outputs of ``wl`` then ``bl`` on, ``bl`` at ``voltage`` V (-200 … 200), one current reading with the present
        integration (``nplc`` PLC sizes the reply's time-out), ``bl`` at 0 V, both off. One write, one reply. A
        closed set that differs stops the call there: :class:`~.array_wiring.RoutingError` with the readings before
        it. Everything is checked before the write (node 1–64, channel lists of ``0-9 A-Z a-z , ; :`` only)."""
        b, w = self.channel(bl).node, self.channel(wl).node
        if b == w:
            raise ValueError(f"bl and wl must be different channels, got {bl!r} twice")
        v = tsp_number(_validate_voltage(voltage, VOLTAGE_LEVEL))
        n = _validate_nplc(nplc, NPLC)
        if not 1 <= len(routes) <= ROUTED_CELLS:
            raise ValueError(f"routes: 1 … {ROUTED_CELLS} cells per call, got {len(routes)}")
        cells = []
        for k, route in enumerate(routes):
            parts = []
            for sw in route:
                if isinstance(sw.node, bool) or not isinstance(sw.node, int) or not 1 <= sw.node <= 64:
                    raise ValueError(f"routes[{k}]: node must be a TSP-Link node number 1-64, got {sw.node!r}")
                for text in (sw.opening, sw.closing, sw.closed):
                    if not isinstance(text, str) or not _CHANNEL_TEXT.fullmatch(text):
                        raise ValueError(f"routes[{k}]: a channel list is letters, digits and , ; : only, got "
                                         f"{text!r}")
                parts.append(f"{sw.node},'{sw.opening}','{sw.closing}','{sw.closed}'")
            cells.append("{" + ",".join(parts) + "}")
        self.load_loops()
        command = f"rramlab_routed_reads({b}, {w}, {v}, {{{','.join(cells)}}}, {len(routes)})"
        seconds = len(routes) * (n / LINE_FREQUENCY_MIN + POINT_OVERHEAD + RELAY_OVERHEAD)
        current, status, before_end = self.loop_reply(command, seconds)
        read = status.index(0.0) if 0.0 in status else len(status)
        trace = LoopTrace((float(voltage),) * read, tuple(current[:read]), (False,) * read, tuple(before_end[:read]))
        if read < len(status):
            raise RoutingError(f"routed read {read + 1} of {len(routes)}: a matrix's closed set differs from the "
                               f"one expected ({routes[read]})", trace)
        return trace

    def power_cycled(self) -> bool:
        """True if powered on since the last call (``*ESR?`` PON bit); a power cycle loses the loaded loops,
        so they are loaded again before the next loop call."""
        cycled = super().power_cycled()
        if cycled:
            self._loops_loaded = False
        return cycled

    def load_loops(self) -> None:
        """Load the on-instrument loops (``keithley2600_loops.tsp``, as script ``rramlab_loops``) once per
        driver session: ``loadscript`` … ``endscript``, ``rramlab_loops()``, error check. A power cycle loses
        them; the station stops a run on a power-cycled instrument and a new session loads them again."""
        if not self._loops_loaded:
            text = resources.files(__package__).joinpath("keithley2600_loops.tsp").read_text(encoding="utf-8")
            self.load_script(LOOPS_SCRIPT, text)
            self._loops_loaded = True

    def loop_reply(self, command: str, seconds: float) -> tuple[list[float], list[float], list[float]]:
        """Send one loop call and parse its reply: three values per reading, then the status row (readings,
        error count, end time on the instrument timer). ``seconds``: how long the call may run on the
        instrument; the VISA time-out is raised to it plus 10 s for this reply only. Returns the first two
        columns and each reading's seconds before the end; a non-zero error count drains the queue
        (:class:`InstrumentError`)."""
        connection = self.adapter.connection
        timeout = connection.timeout
        connection.timeout = max(timeout, (seconds + 10.0) * 1000.0)
        try:
            reply = self.fast_ask(command)
        finally:
            connection.timeout = timeout
        text = reply.strip()
        parts = text.split(", ")
        if len(parts) < 3 or len(parts) % 3 or not _NUMBER_LIST.match(text):
            raise ReplyError(command, reply, "numbers, 3 per reading and a status row, separated by ', '")
        values = [float(x) for x in parts]                 # every part checked by the one pattern above
        n, errors, t_end = values[-3:]
        if n != len(values) // 3 - 1:
            raise ReplyError(command, reply, f"{int(n)} readings announced, {len(values) // 3 - 1} sent")
        if errors < 0.0:
            raise InstrumentError([], self.name, "a TSP-Link node the loop needs is not in the node table (it "
                                  "rebooted?); nothing was switched: initialise the network again (tsplink.reset())")
        if errors != 0.0:
            self.check_errors()
            raise InstrumentError([], self.name, f"errorqueue.count was {errors:g} after an on-instrument loop")
        return values[0:-3:3], values[1:-3:3], [t_end - t for t in values[2:-3:3]]

    def shutdown(self) -> None:
        """Turn both outputs off, then set both levels to 0; no query needed; idempotent.

        Writes, each in its own ``try`` (a failing or interrupted step does not stop the others):
        ``smua.source.output = smua.OUTPUT_OFF``, ``smub.source.output = smub.OUTPUT_OFF``,
        ``smua.source.levelv = 0; smua.source.leveli = 0`` and the same for smub. Raises
        :class:`ShutdownError` listing the failed steps after all were tried.
        """
        steps = [f"{n}.source.output = {n}.OUTPUT_OFF" for n in ("smua", "smub")]
        steps += [f"{n}.source.levelv = 0; {n}.source.leveli = 0" for n in ("smua", "smub")]
        self.shutdown_steps(steps)
