"""Keysight (Agilent) B2901A / B2902A Precision Source/Measure Unit (SCPI), channels "1" and "2".

Manuals: Agilent B2900 Series SCPI Command Reference, Edition 2 (B2910-90030, July 2011), Chapter 4
"Subsystem Commands" (pages 4-xx below); Keysight B2900 User's Guide, Edition 5, Chapter 6 "Function
Details" (pulse output p. 6-7); Agilent B2900 User's Guide Ed. 2, Specifications (pulse source,
p. 2-20); the same SMU commands are in the Keysight B2961A/B2962A SCPI Command Reference Ed. 6.
Figures: source level ±210 V (200 V range, 0 ≤ |V| ≤ 210 V), current limit up to 3.03 A (B2961A/62A
Ref. Table 2-4, the same SMU output table); NPLC 4E-4–100 (50 Hz) / 4.8E-4–120 (60 Hz) and aperture
8 µs–2 s (p. 4-73; values outside are silently set to MIN/MAX, so this driver refuses them); pulse
width 50 µs–100,000 s, 1 µs resolution. pymeasure has no B2900 driver (neither under ``keysight``
nor ``agilent``). The wire scheme, with its evidence, is in ``.helper/scpi_scheme.md``.

Every setpoint is validated before anything is written (ValueError naming the parameter and its
range) and sent as the shortest round-trip ``repr``. Settings are followed by one ``:SYST:ERR?``
(``strict_errors``); the hot path is one message whose last query is ``:SYST:ERR?``, so an error is
raised at once (the rest of the queue drained, ≤ 32 reads) without an extra round trip.

Pulses use the pulse mode: inside one message the channel is switched to ``:SOUR:FUNC:SHAP PULS``,
the peak is ``:SOUR:VOLT:TRIG`` (the base is the DC level ``:SOUR:VOLT``), ``:INIT:TRAN (@c)``
starts the transient (source) action only, ``*WAI`` waits for it, and the shape goes back to DC
before any measurement — a DC spot measurement never runs in pulse shape. Shortest width 50 µs (10 %
leading to 90 % trailing edge).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pymeasure.instruments import Channel, Instrument

from .roles import ROLE_SMU, SMUSpec
from .scpi import (
    SCPIMixin,
    flag_validator,
    parse_flag,
    parse_number,
    range_validator,
    scpi_number,
    show,
)

__all__ = ["B2900Channel", "KeysightB2900"]

VOLTAGE_LEVEL = (-210.0, 210.0)      # V, 200 V range: 0 ≤ |V| ≤ 210 V
CURRENT_LIMIT = (1e-9, 3.03)         # A, 3.03 A maximum (≤ 6 V); 1 nA is a driver bound
NPLC = (4.8e-4, 100.0)               # PLC, valid at 50 Hz and 60 Hz (p. 4-73 aperture 8 µs … 2 s)
PULSE_WIDTH = (50e-6, 100e3)         # s, :SOURce:PULSe:WIDTh; User's Guide Ed. 5 p. 6-7

_validate_voltage = range_validator("voltage", "V")
_validate_amplitude = range_validator("amplitude", "V")
_validate_read_voltage = range_validator("read_voltage", "V")
_validate_width = range_validator("width", "s")
_validate_limit = range_validator("current_limit", "A")
_validate_level = range_validator("source_voltage", "V")
_validate_nplc = range_validator("nplc")

ERR = ":SYST:ERR?"


class B2900Channel(Channel):
    """One B2900 SMU channel (id "1" or "2") as a voltage source with a current limit."""

    output_enabled = Channel.control(
        ":OUTP{ch}?", ":OUTP{ch} %s",
        """Control the output (``:OUTPut[c][:STATe] ON|OFF``; reads ``1``/``0``).""",
        validator=flag_validator("output_enabled"), values=(True, False),
        set_process=lambda b: "ON" if b else "OFF", get_process=parse_flag, cast=str, maxsplit=0,
        check_set_errors=True,
    )

    nplc = Channel.control(
        ":SENS{ch}:CURR:NPLC?", ":SENS{ch}:CURR:NPLC %s",
        """Control the integration time (``:SENSe[c]:CURRent:NPLCycles``, power-line cycles, 4.8e-4 … 100;
        the instrument would clip values outside its range, so they are refused here).""",
        validator=_validate_nplc, values=NPLC, set_process=scpi_number, get_process=parse_number,
        cast=str, maxsplit=0, check_set_errors=True,
    )

    compliance = Channel.measurement(
        ":SENS{ch}:CURR:PROT:TRIP?",
        """Get whether the channel is in current compliance (``:SENSe[c]:CURRent:PROTection:TRIPped?``).""",
        get_process=parse_flag, cast=str, maxsplit=0,
    )

    def __init__(self, parent: Instrument, id: str, **kwargs: Any) -> None:
        if id not in ("1", "2"):
            raise ValueError(f"B2900 channel id must be '1' or '2', got {id!r}")
        super().__init__(parent, id, **kwargs)
        self._dc_limit: float | None = None          # A, the limit the driver last wrote (None: unknown)
        self._pulse_limit: float | None = None       # A, None: the DC limit
        self._configured = False

    @property
    def key(self) -> str:
        """The station's name for this channel: ``<instrument name>.<1|2>``."""
        return f"{self.parent.name}.{self.id}"

    def _set(self, command: str) -> None:
        self.parent.write(command)
        self.parent.check_set_errors()

    @property
    def current_limit(self) -> float:
        """Control the current compliance (``:SENSe[c]:CURRent:PROTection``, A, 1e-9 … 3.03)."""
        command = f":SENS{self.id}:CURR:PROT?"
        return parse_number(self.parent.ask(command), command)

    @current_limit.setter
    def current_limit(self, value: float) -> None:
        x = _validate_limit(value, CURRENT_LIMIT)
        self._dc_limit = None
        self._set(f":SENS{self.id}:CURR:PROT {scpi_number(x)}")
        self._dc_limit = x

    @property
    def source_voltage(self) -> float:
        """Control the DC voltage level (``[:SOURce[c]]:VOLTage``, V, -210 … 210; the pulse base)."""
        command = f":SOUR{self.id}:VOLT?"
        return parse_number(self.parent.ask(command), command)

    @source_voltage.setter
    def source_voltage(self, value: float) -> None:
        x = _validate_level(value, VOLTAGE_LEVEL)
        self._set(f":SOUR{self.id}:VOLT {scpi_number(x)}")

    # ------------------------------------------------------------------ hot path
    def _ask_checked(self, command: str, values: int, what: str) -> list[str]:
        """Send ``command`` whose last query is ``:SYST:ERR?``; the other replies, or InstrumentError
        (rest of the queue drained) when the entry is not code 0."""
        parent = self.parent
        parts, entry = parent.split_error_reply(parent.ask(command), values, command)
        if entry[0] != 0:
            parent.raise_entry(entry, what)
        return parts

    def measure_current_at(self, voltage: float, return_to_zero: bool = True) -> float:
        """Source ``voltage`` V (-210 … 210), measure the current once (A), then return to 0 V unless
        ``return_to_zero`` is False. One message:
        ``:SOURc:VOLT v;:MEAS:CURR? (@c)[;:SOURc:VOLT 0];:SYST:ERR?`` (:MEASure:CURRent?, p. 4-45)."""
        v = _validate_voltage(voltage, VOLTAGE_LEVEL)
        c = self.id
        command = f":SOUR{c}:VOLT {scpi_number(v)};:MEAS:CURR? (@{c})"
        if return_to_zero:
            command += f";:SOUR{c}:VOLT 0"
        command += ";" + ERR
        (reading,) = self._ask_checked(command, 1, f"sourcing {show(v)} V")
        return parse_number(reading, command)

    def sweep_point(self, voltage: float) -> tuple[float, bool]:
        """Source ``voltage`` V and stay there; measure the current (A) and read the compliance state, in
        one message: ``:SOURc:VOLT v;:MEAS:CURR? (@c);:SENSc:CURR:PROT:TRIP?;:SYST:ERR?``."""
        v = _validate_voltage(voltage, VOLTAGE_LEVEL)
        c = self.id
        command = f":SOUR{c}:VOLT {scpi_number(v)};:MEAS:CURR? (@{c});:SENS{c}:CURR:PROT:TRIP?;{ERR}"
        reading, trip = self._ask_checked(command, 2, f"sourcing {show(v)} V")
        return parse_number(reading, command), parse_flag(trip, command)

    # ------------------------------------------------------------------ pulses
    def configure_pulse(self, width: float, current_limit: float | None = None) -> None:
        """Set up the pulse timing: one pulse of ``width`` s (5e-5 … 1e5) per transient trigger.

        One write (then the error check): ``:SOURc:FUNC:MODE VOLT;:SOURc:VOLT:MODE FIX;:SOURc:PULS:DEL 0;
        :SOURc:PULS:WIDT w;:TRIGc:TRAN:SOUR AINT;:TRIGc:TRAN:COUN 1;:TRIGc:TRAN:DEL 0;:ARMc:TRAN:COUN 1``.
        ``current_limit``: compliance during the pulse (A, 1e-9 … 3.03), set before and replaced by the
        DC limit after each pulse; None = the DC limit. When the DC limit is not known (the driver did
        not write it), it is read first (``:SENSc:CURR:PROT?``).
        """
        w = _validate_width(width, PULSE_WIDTH)
        limit = None if current_limit is None else _validate_limit(current_limit, CURRENT_LIMIT)
        c = self.id
        if limit is not None and self._dc_limit is None:
            self._dc_limit = self.current_limit
        self._configured = False
        self._set(f":SOUR{c}:FUNC:MODE VOLT;:SOUR{c}:VOLT:MODE FIX;:SOUR{c}:PULS:DEL 0;"
                  f":SOUR{c}:PULS:WIDT {scpi_number(w)};:TRIG{c}:TRAN:SOUR AINT;:TRIG{c}:TRAN:COUN 1;"
                  f":TRIG{c}:TRAN:DEL 0;:ARM{c}:TRAN:COUN 1")
        self._pulse_limit = limit
        self._configured = True

    def _pulse_command(self, amplitude: float) -> str:
        """The pulse part of a message: pulse shape, peak, one transient, back to DC shape (and limits)."""
        if not self._configured:
            raise RuntimeError(f"{self.key}: configure_pulse() first")
        c = self.id
        head = tail = ""
        if self._pulse_limit is not None and self._pulse_limit != self._dc_limit:
            if self._dc_limit is None:
                self._dc_limit = self.current_limit
            if self._pulse_limit != self._dc_limit:
                head = f":SENS{c}:CURR:PROT {scpi_number(self._pulse_limit)};"
                tail = f":SENS{c}:CURR:PROT {scpi_number(self._dc_limit)};"
        return (f"{head}:SOUR{c}:FUNC:SHAP PULS;:SOUR{c}:VOLT:TRIG {scpi_number(amplitude)};"
                f":INIT:TRAN (@{c});*WAI;:SOUR{c}:FUNC:SHAP DC;{tail}")

    def pulse(self, amplitude: float) -> None:
        """One pulse of ``amplitude`` V (-210 … 210) from the DC level and back to it: one message
        ``:SOURc:FUNC:SHAP PULS;:SOURc:VOLT:TRIG a;:INIT:TRAN (@c);*WAI;:SOURc:FUNC:SHAP DC;:SYST:ERR?``.
        Needs :meth:`configure_pulse` and the output on."""
        a = _validate_amplitude(amplitude, VOLTAGE_LEVEL)
        self._ask_checked(self._pulse_command(a) + ERR, 0, f"a pulse to {show(a)} V")

    def pulse_and_measure(self, amplitude: float, read_voltage: float) -> float:
        """Pulse ``amplitude`` V, then source ``read_voltage`` V, measure the current (A), end at 0 V; one
        message: the pulse part, then ``:SOURc:VOLT r;:MEAS:CURR? (@c);:SOURc:VOLT 0;:SYST:ERR?``."""
        a = _validate_amplitude(amplitude, VOLTAGE_LEVEL)
        r = _validate_read_voltage(read_voltage, VOLTAGE_LEVEL)
        c = self.id
        command = (self._pulse_command(a) + f":SOUR{c}:VOLT {scpi_number(r)};:MEAS:CURR? (@{c});"
                   f":SOUR{c}:VOLT 0;{ERR}")
        (reading,) = self._ask_checked(command, 1, f"a pulse to {show(a)} V")
        return parse_number(reading, command)


class KeysightB2900(SCPIMixin, Instrument):
    """Keysight B2901A (one channel) / B2902A (two channels) SMU.

    ``adapter``: a VISA resource name (``"USB0::0x0957::0x8C18::MY51140133::INSTR"``), GPIB address or
    pymeasure adapter. Terminations LF both ways and a 10 s timeout unless given; nothing is sent on
    connect. ``channels``: 2 (B2902A, default) or 1 (B2901A: :meth:`shutdown` then leaves channel 2
    alone). ``strict_errors``: check the error queue after each setting (one query).
    """

    ROLES = frozenset({ROLE_SMU})
    SMU = SMUSpec(
        channels=("1", "2"), max_voltage=VOLTAGE_LEVEL[1], current_limit=CURRENT_LIMIT, nplc=NPLC,
        pulse_width=PULSE_WIDTH,
        notes={"max_voltage": "B2900 source output ranges (B2961A/B2962A SCPI Ref. Ed. 6 Table 2-4): "
                              "200 V range, 0 <= |V| <= 210 V",
               "current_limit": "same table: up to 3.03 A (|V| <= 6 V; 105 mA above 21 V); 1 nA is a driver "
                                "bound (lower limit not given in the pages read)",
               "nplc": "B2900 SCPI Ref. Ed. 2 p. 4-73 aperture 8 µs-2 s = 4E-4-100 PLC (50 Hz), 4.8E-4-120 "
                       "(60 Hz); the intersection",
               "pulse_width": "B2900 User's Guide Ed. 5 p. 6-7 / Ed. 2 p. 2-20: 50 µs minimum programmable "
                              "width (10 % to 90 %), 1 µs resolution, up to 100,000 s"})
    error_count_command = None            # drain with :SYST:ERR? until code 0 (bounded)

    ch_1 = Instrument.ChannelCreator(B2900Channel, "1")
    ch_2 = Instrument.ChannelCreator(B2900Channel, "2")

    def __init__(self, adapter: Any, name: str = "Keysight B2900", *, channels: int = 2,
                 strict_errors: bool = True, **kwargs: Any) -> None:
        if isinstance(channels, bool) or channels not in (1, 2):
            raise ValueError(f"channels must be 1 (B2901A) or 2 (B2902A), got {channels!r}")
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.channel_ids: tuple[str, ...] = ("1", "2")[:channels]
        self.strict_errors = bool(strict_errors)

    def channel(self, channel_id: str) -> B2900Channel:
        """Channel ``"1"`` or (B2902A) ``"2"``."""
        if channel_id not in self.channel_ids:
            raise ValueError(f"channel must be one of {', '.join(map(repr, self.channel_ids))}, got {channel_id!r}")
        return self.ch_1 if channel_id == "1" else self.ch_2

    def shutdown(self) -> None:
        """Outputs off first, then stop the trigger system, then DC shape and levels 0; no query needed.

        Writes, each in its own ``try``: ``:OUTP1 OFF`` (``:OUTP2 OFF``), ``:ABOR (@1,2)``,
        ``:SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:SOUR1:CURR 0`` (and channel 2). Raises
        :class:`ShutdownError` listing the failed steps after all were tried (a Ctrl-C is re-raised
        after all steps).
        """
        ids = self.channel_ids
        steps = [f":OUTP{c} OFF" for c in ids]
        steps.append(f":ABOR (@{','.join(ids)})")
        steps += [f":SOUR{c}:FUNC:SHAP DC;:SOUR{c}:VOLT 0;:SOUR{c}:CURR 0" for c in ids]
        self.shutdown_steps(steps)


class KeysightB2901A(KeysightB2900):
    """Keysight B2901A: the one-channel B2900 (channel "1" only; :meth:`shutdown` never addresses channel 2,
    which the B2901A would refuse). Registered as ``keysight_b2901a``."""

    SMU = dataclasses.replace(KeysightB2900.SMU, channels=("1",))

    def __init__(self, adapter: Any, name: str = "Keysight B2901A", *, strict_errors: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(adapter, name, channels=1, strict_errors=strict_errors, **kwargs)
