"""Keithley 2450 Interactive SourceMeter (SCPI command set, ``*LANG SCPI``), one channel ("1").

Manual: Keithley Model 2450 Interactive SourceMeter Reference Manual 2450-901-01 Rev. B (Sept. 2013),
Section 6 "SCPI command reference" (pages 6-xx below), Appendix B "Common commands"; figures:
source level ±210 V (:SOURce[1]:LIST:<function>, p. 6-78), current limit up to 1.05 A
(:SOURce[1]:<function>:<x>LIMit, p. 6-71), NPLC 0.01–10 ([:SENSe[1]]:<function>:NPLCycles),
sweep delay 0 or 50 µs–10,000 s (:SOURce[1]:SWEep:<function>:LIST, p. 6-85). The wire scheme is
written down, with its evidence, in ``.helper/scpi_scheme.md``.

Why not pymeasure's ``Keithley2450``: it formats setpoints with ``%g`` (6 significant digits) and
``%f``, clips the compliance with ``truncated_range`` instead of refusing it, uses the 2400-style
buffer (``:TRAC:FEED``), has no ``:SOUR:VOLT:ILIM:TRIP?``, list sweeps or trigger model, and its
``shutdown()`` queries the source mode before turning the output off.
Subclassing would inherit every one of those properties, so this driver is written on
:class:`~pymeasure.instruments.Instrument` with only the role's commands.

Every setpoint is validated before anything is written (ValueError naming the parameter and its
range) and sent as the shortest round-trip ``repr``. Settings are followed by one
``:SYST:ERR:COUN?`` (``strict_errors``); the hot path (:meth:`SMU2450Channel.measure_current_at`,
:meth:`~SMU2450Channel.sweep_point`, :meth:`~SMU2450Channel.pulse`,
:meth:`~SMU2450Channel.pulse_and_measure`) is one message whose reply ends with the error count, so
an error is raised at once without an extra round trip.

Pulses. The 2450 has no pulse mode: a pulse is a two-point list sweep (``:SOUR:LIST:VOLT a,dc``,
``:SOUR:SWE:VOLT:LIST 1,<delay>,1,OFF``, ``:INIT``, ``*WAI``) run at 0.01 PLC, so the output sits
at the amplitude for the sweep delay plus one 0.01 PLC measurement (and settling/autozero overhead
the manual does not specify). Shortest width: 0.01 PLC = 166.7 µs (60 Hz) / 200 µs (50 Hz); the
static bound is 200 µs. ``failAbort`` is OFF so a pulse that reaches the current limit does not
leave the output at the amplitude. The DC level the pulse returns to is the one the driver last
wrote (read back by :meth:`~SMU2450Channel.configure_pulse`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from pymeasure.adapters import VISAAdapter
from pymeasure.instruments import Channel, Instrument

from .errors import ReplyError
from .roles import ROLE_SMU, LoopTrace, SMUSpec
from .scpi import (
    SCPIMixin,
    flag_validator,
    parse_flag,
    parse_number,
    parse_replies,
    range_validator,
    scpi_number,
    show,
)

__all__ = ["Keithley2450", "SMU2450Channel"]

VOLTAGE_LEVEL = (-210.0, 210.0)      # V, :SOURce[1]:LIST:<function> / :SOURce[1]:VOLTage (p. 6-78)
CURRENT_LIMIT = (1e-9, 1.05)         # A, :SOURce[1]:VOLTage:ILIMit up to 1.05 A (p. 6-71); 1 nA driver bound
NPLC = (0.01, 10.0)                  # PLC, [:SENSe[1]]:CURRent:NPLCycles
PULSE_NPLC = 0.01                    # PLC of the measurement made at each list point of a pulse
SWEEP_DELAY_MIN = 50e-6              # s, smallest non-zero delay of :SOURce[1]:SWEep:<function>:LIST (p. 6-85)
SWEEP_DELAY_MAX = 10e3               # s
PULSE_WIDTH = (200e-6, SWEEP_DELAY_MAX)   # s, 0.01 PLC at 50 Hz … 10,000 s sweep delay
LIST_POINTS = 100                    # levels per list sweep call: one :SOUR:LIST:VOLT of 100 values (driver bound)
STAT_LIMIT = 32                      # buffer source status "source limited" (bufferVar.sourcestatuses, p. 8-29)
LINE_PERIOD_MAX = 1 / 50             # s: the longest power-line cycle, for a list sweep's time-out
POINT_OVERHEAD = 0.01                # s per list point beyond its integration, for a list sweep's time-out

_validate_voltage = range_validator("voltage", "V")
_validate_amplitude = range_validator("amplitude", "V")
_validate_read_voltage = range_validator("read_voltage", "V")
_validate_width = range_validator("width", "s")
_validate_pulse_limit = range_validator("current_limit", "A")
_validate_limit = range_validator("current_limit", "A")
_validate_level = range_validator("source_voltage", "V")

ERRC = ":SYST:ERR:COUN?"


class SMU2450Channel(Channel):
    """The 2450's source-measure channel (id "1") as a voltage source with a current limit."""

    output_enabled = Channel.control(
        ":OUTP?", ":OUTP %s",
        """Control the output (``:OUTPut[:STATe] ON|OFF``; reads ``1``/``0``).""",
        validator=flag_validator("output_enabled"), values=(True, False),
        set_process=lambda b: "ON" if b else "OFF", get_process=parse_flag, cast=str, maxsplit=0,
        check_set_errors=True,
    )

    compliance = Channel.measurement(
        ":SOUR:VOLT:ILIM:TRIP?",
        """Get whether the source is clamped at its current limit (``:SOUR:VOLT:ILIM:TRIP?``, p. 6-72).""",
        get_process=parse_flag, cast=str, maxsplit=0,
    )

    def __init__(self, parent: Instrument, id: str, **kwargs: Any) -> None:
        if id != "1":
            raise ValueError(f"the 2450 has one channel, '1', got {id!r}")
        super().__init__(parent, id, **kwargs)
        # What the driver last wrote (None: unknown); the pulse messages need them (module docstring).
        self._dc_level: float | None = None
        self._dc_limit: float | None = None
        self._nplc: float | None = None
        self._line_frequency: float | None = None
        self._pulse_delay: float | None = None           # s, sweep delay of the amplitude point
        self._pulse_limit: float | None = None           # A, None: the DC limit

    @property
    def key(self) -> str:
        """The station's name for this channel: ``<instrument name>.1``."""
        return f"{self.parent.name}.{self.id}"

    # ------------------------------------------------------------------ settings
    def _set(self, command: str) -> None:
        self.parent.write(command)
        self.parent.check_set_errors()

    @property
    def current_limit(self) -> float:
        """Control the current limit of the voltage source (``:SOUR:VOLT:ILIM``, A, 1e-9 … 1.05)."""
        return parse_number(self.parent.ask(":SOUR:VOLT:ILIM?"), ":SOUR:VOLT:ILIM?")

    @current_limit.setter
    def current_limit(self, value: float) -> None:
        x = _validate_limit(value, CURRENT_LIMIT)
        self._dc_limit = None
        self._set(f":SOUR:VOLT:ILIM {scpi_number(x)}")
        self._dc_limit = x

    @property
    def source_voltage(self) -> float:
        """Control the DC voltage level (``:SOUR:VOLT``, V, -210 … 210)."""
        return parse_number(self.parent.ask(":SOUR:VOLT?"), ":SOUR:VOLT?")

    @source_voltage.setter
    def source_voltage(self, value: float) -> None:
        x = _validate_level(value, VOLTAGE_LEVEL)
        self._dc_level = None
        self._set(f":SOUR:VOLT {scpi_number(x)}")
        self._dc_level = x

    @property
    def nplc(self) -> float:
        """Control the current integration time (``:SENS:CURR:NPLC``, power-line cycles, 0.01 … 10)."""
        return parse_number(self.parent.ask(":SENS:CURR:NPLC?"), ":SENS:CURR:NPLC?")

    @nplc.setter
    def nplc(self, value: float) -> None:
        x = range_validator("nplc")(value, NPLC)
        self._nplc = None
        self._set(f":SENS:CURR:NPLC {scpi_number(x)}")
        self._nplc = x

    # ------------------------------------------------------------------ hot path
    def _ask_counted(self, command: str, replies: int, what: str) -> list[str]:
        """Send ``command`` whose last query is ``:SYST:ERR:COUN?``; the other replies, or
        InstrumentError (queue drained) when the count is not 0."""
        parent = self.parent
        parts = parse_replies(parent.ask(command), replies + 1, command)
        count = parse_number(parts[-1], command)
        if count != 0.0:
            parent.raise_queued(count, what)
        return parts[:-1]

    def measure_current_at(self, voltage: float, return_to_zero: bool = True) -> float:
        """Source ``voltage`` V (-210 … 210), measure the current once (A), then return to 0 V unless
        ``return_to_zero`` is False. One message:
        ``:SOUR:VOLT v;:MEAS:CURR?[;:SOUR:VOLT 0];:SYST:ERR:COUN?`` (:MEASure:<function>?, p. 6-4)."""
        v = _validate_voltage(voltage, VOLTAGE_LEVEL)
        command = f":SOUR:VOLT {scpi_number(v)};:MEAS:CURR?"
        if return_to_zero:
            command += ";:SOUR:VOLT 0"
        self._dc_level = None
        (reading,) = self._ask_counted(command + ";" + ERRC, 1, f"sourcing {show(v)} V")
        self._dc_level = 0.0 if return_to_zero else v
        return parse_number(reading, command)

    def sweep_point(self, voltage: float) -> tuple[float, bool]:
        """Source ``voltage`` V and stay there; measure the current (A) and read whether the source is
        clamped at its limit, in one message:
        ``:SOUR:VOLT v;:MEAS:CURR?;:SOUR:VOLT:ILIM:TRIP?;:SYST:ERR:COUN?`` (p. 6-72)."""
        v = _validate_voltage(voltage, VOLTAGE_LEVEL)
        command = f":SOUR:VOLT {scpi_number(v)};:MEAS:CURR?;:SOUR:VOLT:ILIM:TRIP?"
        self._dc_level = None
        reading, trip = self._ask_counted(command + ";" + ERRC, 2, f"sourcing {show(v)} V")
        self._dc_level = v
        return parse_number(reading, command), parse_flag(trip, command)

    # ------------------------------------------------------------------ pulses
    def configure_pulse(self, width: float, current_limit: float | None = None) -> None:
        """Set up timed pulses of ``width`` s (200e-6 … 1e4) as two-point list sweeps.

        One query reads the present NPLC, line frequency, DC level and DC limit
        (``:SENS:CURR:NPLC?;:SYST:LFR?;:SOUR:VOLT?;:SOUR:VOLT:ILIM?``). The amplitude point lasts the
        sweep delay plus one 0.01 PLC measurement, so ``width`` must equal 0.01/f_line or exceed it by
        at least 50 µs (ValueError otherwise, before any setting is written). Then one write
        ``:SOUR:VOLT:DEL 0`` (source delay 0, which turns auto delay off, p. 6-66) and the error check.
        ``current_limit``: limit during the pulse (A, 1e-9 … 1.05); None = the DC limit.
        """
        w = _validate_width(width, PULSE_WIDTH)
        limit = None if current_limit is None else _validate_pulse_limit(current_limit, CURRENT_LIMIT)
        command = ":SENS:CURR:NPLC?;:SYST:LFR?;:SOUR:VOLT?;:SOUR:VOLT:ILIM?"
        nplc, lfr, level, dc_limit = (parse_number(p, command)
                                      for p in parse_replies(self.parent.ask(command), 4, command))
        if lfr not in (50.0, 60.0):
            raise ReplyError(":SYST:LFR?", show(lfr), "50 or 60")
        measure = PULSE_NPLC / lfr
        delay = round(w - measure, 9)                    # s; 1 ns steps keep the wire text short
        if abs(delay) <= 1e-9:
            delay = 0.0
        elif not SWEEP_DELAY_MIN <= delay <= SWEEP_DELAY_MAX:
            raise ValueError(
                f"width must be {show(measure)} s (one {show(PULSE_NPLC)} PLC measurement at {show(lfr)} Hz) or "
                f"within [{show(measure + SWEEP_DELAY_MIN)}, {show(measure + SWEEP_DELAY_MAX)}] s, got {show(w)}")
        self._nplc, self._line_frequency, self._dc_level, self._dc_limit = nplc, lfr, level, dc_limit
        self._pulse_delay = None
        self._set(":SOUR:VOLT:DEL 0")
        self._pulse_delay = delay
        self._pulse_limit = limit

    def _require_configured(self) -> None:
        if self._pulse_delay is None:
            raise RuntimeError(f"{self.key}: configure_pulse() first")

    def _pulse_parts(self, amplitude: float, second: float) -> tuple[str, str]:
        """The message parts before and after the sweep for a pulse to ``amplitude`` ending at ``second``."""
        self._require_configured()
        parent = self.parent
        if self._nplc is None:
            self._nplc = parse_number(parent.ask(":SENS:CURR:NPLC?"), ":SENS:CURR:NPLC?")
        # autozero off for the sweep: its reference readings would lengthen the pulse by an amount the manual
        # does not give; on again after (its *RST state, the state the driver keeps between pulses)
        head = f":SENS:CURR:AZER OFF;:SENS:CURR:NPLC {scpi_number(PULSE_NPLC)};"
        tail = f":SENS:CURR:AZER ON;:SENS:CURR:NPLC {scpi_number(self._nplc)};"
        if self._pulse_limit is not None:
            if self._dc_limit is None:
                self._dc_limit = parse_number(parent.ask(":SOUR:VOLT:ILIM?"), ":SOUR:VOLT:ILIM?")
            if self._pulse_limit != self._dc_limit:
                head = f":SOUR:VOLT:ILIM {scpi_number(self._pulse_limit)};" + head
                tail = f":SOUR:VOLT:ILIM {scpi_number(self._dc_limit)};" + tail
        head += (f":SOUR:LIST:VOLT {scpi_number(amplitude)},{scpi_number(second)};"
                 f":SOUR:SWE:VOLT:LIST 1,{scpi_number(self._pulse_delay) if self._pulse_delay else '0'},1,OFF;"
                 ":INIT;*WAI;")
        return head, tail

    def pulse(self, amplitude: float) -> None:
        """One pulse of ``amplitude`` V (-210 … 210), back at the DC level: one message
        ``:SENS:CURR:NPLC 0.01;:SOUR:LIST:VOLT a,dc;:SOUR:SWE:VOLT:LIST 1,d,1,OFF;:INIT;*WAI;
        :SENS:CURR:NPLC n;:SYST:ERR:COUN?`` (pulse limit set before and the DC limit restored after, when
        they differ). Needs :meth:`configure_pulse` and the output on."""
        a = _validate_amplitude(amplitude, VOLTAGE_LEVEL)
        self._require_configured()
        if self._dc_level is None:
            self._dc_level = parse_number(self.parent.ask(":SOUR:VOLT?"), ":SOUR:VOLT?")
        dc = self._dc_level
        head, tail = self._pulse_parts(a, dc)
        with self._unknown_while_sending():
            self._ask_counted(head + tail + ERRC, 0, f"a pulse to {show(a)} V")

    def pulse_and_measure(self, amplitude: float, read_voltage: float) -> float:
        """Pulse ``amplitude`` V, then source ``read_voltage`` V and measure the current (A) at the
        channel's NPLC; end at 0 V. One message: the pulse sweep ending at the read level, then
        ``:SENS:CURR:NPLC n;:SOUR:VOLT r;:MEAS:CURR?;:SOUR:VOLT 0;:SYST:ERR:COUN?``."""
        a = _validate_amplitude(amplitude, VOLTAGE_LEVEL)
        r = _validate_read_voltage(read_voltage, VOLTAGE_LEVEL)
        head, tail = self._pulse_parts(a, r)
        # the read level is set again before the reading: the sweep ends on it, but what the output holds after
        # a sweep is not stated in the manual
        command = head + tail + f":SOUR:VOLT {scpi_number(r)};:MEAS:CURR?;:SOUR:VOLT 0;" + ERRC
        with self._unknown_while_sending():
            (reading,) = self._ask_counted(command, 1, f"a pulse to {show(a)} V")
        self._dc_level = 0.0
        return parse_number(reading, command)

    # ------------------------------------------------------------------ list sweeps
    list_points = LIST_POINTS

    def list_sweep(self, levels: Sequence[float], nplc: float) -> LoopTrace:
        """A DC list sweep run by the instrument (role ``ListSweep``): each of ``levels`` (V, -210 … 210, 1 …
        :attr:`list_points`) held in turn, one current reading per level at ``nplc`` PLC (0.01 … 10), every level
        made (failAbort OFF). One message, one reply:
        ``:SENS:CURR:NPLC n;:SOUR:LIST:VOLT v1,…;:SOUR:SWE:VOLT:LIST 1,0,1,OFF;:TRAC:CLE "defbuffer1";:INIT;*WAI;
        :TRAC:DATA? 1,N,"defbuffer1",READ,SOURSTAT,REL;:SYST:ERR:COUN?`` (p. 6-78 list, p. 6-85 sweep: start
        index 1, sweep delay 0, count 1, failAbort OFF). Compliance per reading from the source status
        (STAT_LIMIT 32, p. 8-29), times from the relative time stamps. The VISA time-out is raised to the
        sweep's length plus 10 s for this reply. A non-zero error count drains the queue into
        :class:`InstrumentError` (readings discarded); the DC level is unknown afterwards."""
        n = len(levels)
        if not 1 <= n <= LIST_POINTS:
            raise ValueError(f"levels: 1 … {LIST_POINTS} levels per list sweep, got {n}")
        values = ",".join(scpi_number(_validate_voltage(v, VOLTAGE_LEVEL)) for v in levels)
        q = range_validator("nplc")(nplc, NPLC)
        command = (f":SENS:CURR:NPLC {scpi_number(q)};:SOUR:LIST:VOLT {values};:SOUR:SWE:VOLT:LIST 1,0,1,OFF;"
                   f':TRAC:CLE "defbuffer1";:INIT;*WAI;:TRAC:DATA? 1,{n},"defbuffer1",READ,SOURSTAT,REL;' + ERRC)
        adapter = self.parent.adapter                   # only a VISA resource has a time-out to raise
        connection = adapter.connection if isinstance(adapter, VISAAdapter) else None
        timeout = None if connection is None else connection.timeout
        if connection is not None:
            connection.timeout = max(timeout, (n * (q * LINE_PERIOD_MAX + POINT_OVERHEAD) + 10.0) * 1000.0)
        self._dc_level = self._nplc = None
        try:
            reply = self.parent.ask(command)
        finally:
            if connection is not None:
                connection.timeout = timeout
        parts = [x.strip() for x in reply.strip().split(";")]
        count = parse_number(parts[-1], command)
        if count != 0.0:
            self.parent.raise_queued(count, f"a list sweep of {n} levels")
        if len(parts) != 2:
            raise ReplyError(command, reply, "the buffer's readings and the error count separated by ';'")
        data = [parse_number(x, command) for x in parts[0].split(",")]
        if len(data) != 3 * n:
            raise ReplyError(command, reply, f"{n} readings of 3 elements (READ, SOURSTAT, REL)")
        self._nplc = q
        rel = data[2::3]
        return LoopTrace(tuple(float(v) for v in levels), tuple(data[0::3]),
                         tuple(int(x) & STAT_LIMIT != 0 for x in data[1::3]), tuple(rel[-1] - t for t in rel))

    @contextlib.contextmanager
    def _unknown_while_sending(self) -> Iterator[None]:
        """The held level, limit and NPLC are unknown while a pulse message runs (a failure half-way may
        leave the sweep's values on the instrument); they are restored when it went through."""
        held = (self._dc_level, self._dc_limit, self._nplc)
        self._dc_level = self._dc_limit = self._nplc = None
        yield
        self._dc_level, self._dc_limit, self._nplc = held


class Keithley2450(SCPIMixin, Instrument):
    """Keithley 2450 SourceMeter (SCPI), one source-measure channel ``"1"``.

    ``adapter``: a VISA resource name (``"USB0::0x05E6::0x2450::04365704::INSTR"``), GPIB address or
    pymeasure adapter. Terminations LF both ways and a 10 s timeout unless given; nothing is sent on
    connect. ``strict_errors``: check the error queue after each setting (one query).
    """

    ROLES = frozenset({ROLE_SMU})
    SMU = SMUSpec(
        channels=("1",), max_voltage=VOLTAGE_LEVEL[1], current_limit=CURRENT_LIMIT, nplc=NPLC,
        pulse_width=(250e-6, SWEEP_DELAY_MAX),
        notes={"max_voltage": "2450 Ref. Manual Rev. B p. 6-78 (:SOURce[1]:LIST:<function>): -210 V to 210 V",
               "current_limit": "p. 6-71 (:SOURce[1]:<function>:<x>LIMit): up to 1.05 A; 1 nA is a driver "
                                "bound (the limit must exceed 0.1 % of a fixed measure range)",
               "nplc": "[:SENSe[1]]:<function>:NPLCycles: 0.01 to 10",
               "pulse_width": "no pulse mode: list sweep (p. 6-78, 6-85); amplitude lasts sweep delay (0 or "
                              "50 µs-10,000 s) + one 0.01 PLC measurement (autozero off): 200 µs at 50 Hz "
                              "(166.7 µs at 60 Hz), plus settling the manual does not give. Widths between one "
                              "measurement and one measurement + 50 µs cannot be made, so the continuous range a "
                              "station may allow starts at 250 µs (50 Hz and 60 Hz alike)"})
    error_event_suffix = True

    smu = Instrument.ChannelCreator(SMU2450Channel, "1")

    def __init__(self, adapter: Any, name: str = "Keithley 2450", *, strict_errors: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.strict_errors = bool(strict_errors)

    def channel(self, channel_id: str) -> SMU2450Channel:
        """Channel ``"1"`` (the only one)."""
        if channel_id != "1":
            raise ValueError(f"channel must be '1', got {channel_id!r}")
        return self.smu

    def shutdown(self) -> None:
        """Output off, stop a running sweep, levels to 0; no query needed; idempotent.

        Writes, each in its own ``try`` (a failing or interrupted step does not stop the others):
        ``:OUTP OFF``, ``:ABOR``, ``:SOUR:VOLT 0;:SOUR:CURR 0``. Raises :class:`ShutdownError`
        listing the failed steps after all were tried (a Ctrl-C is re-raised after all steps).
        """
        try:
            self.shutdown_steps((":OUTP OFF", ":ABOR", ":SOUR:VOLT 0;:SOUR:CURR 0"))
        finally:
            self.smu._dc_level = None                   # the DC level is unknown after any of these
