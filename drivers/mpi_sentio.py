"""MPI probe systems under SENTIO (native remote command set, over TCP/IP socket or GPIB).

No public copy of MPI's remote command manual exists; every command string and reply format below follows
MPI's own client code: the ``sentio-prober-control`` package (GitHub ``SentioProberDev/SentioProberControl`` @
2360c3e, ``sentio_prober_control/Sentio/{Response.py, ProberSentio.py, Enumerations.py}``,
``Sentio/CommandGroups/{WafermapCommandGroup,WafermapPathCommandGroup,StatusCommandGroup}.py``), MPI's
examples (``SentioProberDev/Example-NoiseProPlus``, ``Examples-CSharp``, ``Examples-Python``) and
third-party drivers used on real probers (SweepMe! ``src/WaferProber-MPI_SENTIO/libs/sentio.py``).

Framing: one command per line, LF-terminated; one reply line per native command (LF). A native reply is
``<errc>,<cmd_id>,<message>`` (``Response.parse_resp``): the error code is ``errc & 0x3FF``, status flags are
``errc >> 10`` (1 = last die of the route, 2 = last subsite: ``StatusBits``); ``cmd_id`` is 0 for synchronous
commands; the message may hold more comma-separated values. A non-zero error code raises
:class:`SentioError` (an :class:`~.errors.InstrumentError`) naming the command and SENTIO's message; stepping
past the end of the route (code 11, EndOfRoute) makes :meth:`MpiSentio.step_next_die` return None.
Low-level ``*`` commands are not native: ``*IDN?`` replies raw, ``*RCS 1`` (select the native command set,
sent before the session's first native command, as MPI's ``ProberSentio.__init__`` does) has no reply.

Every motion command blocks until the motion is done, then replies: give the station entry a timeout that
covers the slowest move (MPI's own VISA client uses 1 h, SweepMe! 20 s).

SENTIO has no error queue (each reply carries its own error) and no power-on flag: :meth:`power_cycled`
reports a restart as the loss of the die this session stepped to (``map:die:get_current_index``).
Units are SENTIO's: mm for the wafer diameter, µm for die size, offsets and chuck heights, °C for the chuck.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from pymeasure.instruments import Instrument

from .errors import InstrumentError, ReplyError, ShutdownError
from .roles import ROLE_PROBER, DiePosition, ProberSpec
from .visa_role import VisaRole

log = logging.getLogger(__name__)

__all__ = ["END_OF_ROUTE", "STATUS_LAST_DIE", "STATUS_LAST_SITE", "MpiSentio", "SentioError", "SentioReply",
           "parse_reply"]

ERROR_MASK = 0x3FF              # lowermost 10 bits: the error code (Response.parse_resp: ``int(tok[0]) & 1023``)
STATUS_LAST_DIE = 1             # status (errc >> 10) bit: the step reached the last die (StatusBits.EndOfRoute)
STATUS_LAST_SITE = 2            # the step reached the last subsite of a die (StatusBits.LastSite)
END_OF_ROUTE = 11               # RemoteCommandError.EndOfRoute: stepping past the last die
THERMO_STATES = ("Soaking", "Cooling", "Heating", "Uncontrolled", "Standby", "Error", "Controlling")
CONTACT_TOLERANCE_UM = 0.5      # z within this of the contact height (or above it: overtravel) counts as contact


@dataclass(frozen=True, slots=True)
class SentioReply:
    """One native reply: ``errc`` (error code, 0 = none), ``status`` (flags, ``errc >> 10``), ``cmd_id``
    (async command id, 0 for synchronous commands) and ``message`` (the rest of the line)."""

    errc: int
    status: int
    cmd_id: int
    message: str

    def values(self) -> list[str]:
        """The message's comma-separated values, stripped."""
        return [v.strip() for v in self.message.split(",")]


def parse_reply(command: str, reply: str) -> SentioReply:
    """``<errc>,<cmd_id>,<message>`` → :class:`SentioReply` (ReplyError if the line is not one)."""
    text = reply.rstrip("\r\n")
    parts = text.split(",", 2)
    try:
        code, cmd_id = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise ReplyError(command, reply, "a SENTIO reply <errc>,<cmd_id>,<message>") from None
    if code < 0 or cmd_id < 0:
        raise ReplyError(command, reply, "a SENTIO reply with a non-negative error code and command id")
    return SentioReply(code & ERROR_MASK, code >> 10, cmd_id, parts[2].strip() if len(parts) > 2 else "")


class SentioError(InstrumentError):
    """SENTIO answered a command with a non-zero error code: ``code`` and SENTIO's ``message``."""

    def __init__(self, instrument: str, command: str, code: int, message: str) -> None:
        self.command = command
        self.code = code
        self.message = message
        super().__init__([(code, message)], instrument, f"reply to {command!r}")


def _number(value: float) -> str:
    """A number as written on the wire: integral values without a fraction (``5000``), others in the shortest
    decimal that reads back the same (``2500.5``)."""
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _finite(name: str, value: Any, unit: str, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of {unit}, got {value!r}")
    v = float(value)
    low_ok = lo is None or (v > lo if lo_open else v >= lo)
    if not math.isfinite(v) or not low_ok or hi is not None and v > hi:
        bounds = f"{'(' if lo_open else '['}{lo}, {hi}] {unit}"
        raise ValueError(f"{name} must be within {bounds}, got {value!r}")
    return v


def _integer(name: str, value: Any, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or lo is not None and value < lo:
        raise ValueError(f"{name} must be an integer{f' >= {lo}' if lo is not None else ''}, got {value!r}")
    return int(value)


class MpiSentio(VisaRole, Instrument):
    """An MPI probe system running SENTIO (the prober role, :class:`~.roles.Prober`).

    ``adapter``: a VISA resource (``"TCPIP0::<host>::35555::SOCKET"``: SENTIO listens on port 35555 by
    default, MPI ``Examples-CSharp/Sentio.BasicTcp/Program.cs``; or ``"GPIB0::20::INSTR"``). Terminations
    are LF both ways. Nothing is sent on connect. ``temperature_range_c`` narrows the chuck set-points
    accepted (default: :attr:`PROBER`'s); a set-point outside it is refused before anything is written.
    """

    ROLES = frozenset({ROLE_PROBER})
    PROBER = ProberSpec(
        temperature_range_c=(-60.0, 300.0),
        notes={"temperature_range_c": "the widest range of MPI thermal chucks we plan for; SENTIO refuses what "
                                      "the installed chuck cannot reach (pass temperature_range_c to narrow)"})
    STEPPING_MODE = "StepToSeparation"     # a step leaves the chuck at separation (set_stepping_contact_mode)

    def __init__(self, adapter: Any, name: str = "MPI SENTIO", *,
                 temperature_range_c: tuple[float, float] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 60_000)
        lo, hi = self.PROBER.temperature_range_c if temperature_range_c is None else temperature_range_c
        spec_lo, spec_hi = self.PROBER.temperature_range_c
        if not (spec_lo <= float(lo) < float(hi) <= spec_hi):
            raise ValueError(f"temperature_range_c must lie within [{spec_lo}, {spec_hi}] °C with min < max, "
                             f"got {temperature_range_c!r}")
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.temperature_range_c = (float(lo), float(hi))
        self._session_ready = False         # *RCS 1 and the stepping mode sent in this session
        self._die: DiePosition | None = None   # the die this session last stepped to (None: none, or unknown)

    # ------------------------------------------------------------------ transport
    def _prepare_session(self) -> None:
        """Before the session's first native command: ``*RCS 1`` (native command set; no reply, MPI
        ``ProberSentio.__init__``) and ``set_stepping_contact_mode StepToSeparation`` (``0,0,OK``)."""
        if not self._session_ready:
            self.write("*RCS 1")
            self._session_ready = True
            try:
                self.command(f"set_stepping_contact_mode {self.STEPPING_MODE}")
            except BaseException:
                self._session_ready = False
                raise

    def command(self, command: str) -> SentioReply:
        """Send one native command, read its reply; :class:`SentioError` when SENTIO reports an error."""
        reply = self.query(command)
        if reply.errc:
            raise SentioError(self.name, command, reply.errc, reply.message)
        return reply

    def query(self, command: str) -> SentioReply:
        """Send one native command and read its reply, errors included (no exception for a non-zero code)."""
        self._prepare_session()
        return parse_reply(command, self.ask(command))

    def _values(self, command: str, n: int, what: str) -> list[str]:
        reply = self.command(command)
        values = reply.values()
        if len(values) != n:
            raise ReplyError(command, reply.message, what)
        return values

    def _float(self, command: str) -> float:
        (value,) = self._values(command, 1, "one number")
        try:
            return float(value)          # 26.0 prints 545, older versions 545.0 (SentioProberControl issue #53)
        except ValueError:
            raise ReplyError(command, value, "a number") from None

    # ------------------------------------------------------------------ role: Instrument
    @property
    def id(self) -> str:
        """``*IDN?``, raw (not a native reply): ``MPI Corporation,Sentio - Probe System Software Suite,…``."""
        return self.ask("*IDN?").strip()

    def clear_errors(self) -> None:
        """Nothing to clear: SENTIO has no error queue (each reply carries its own error code)."""

    def check_errors(self) -> None:
        """Nothing to drain: every reply's error code was checked when it was read."""

    def device_clear(self) -> None:
        """VISA device clear (drops replies an earlier client left unread); the session set-up is sent again."""
        super().device_clear()
        self._session_ready = False

    def power_cycled(self) -> bool:
        """True if SENTIO lost the die this session stepped to (it restarted or the station was power-cycled;
        SENTIO has no power-on flag). One query (``map:die:get_current_index``) when a die was stepped to;
        none otherwise. Forgets the die and the session set-up when True."""
        if self._die is None:
            return False
        command = "map:die:get_current_index"
        reply = self.query(command)
        values = reply.values()
        same = False
        if reply.errc == 0 and len(values) == 3:
            try:
                same = (int(values[1]), int(values[2])) == (self._die.column, self._die.row)
            except ValueError:
                raise ReplyError(command, reply.message, "<list index>,<column>,<row>") from None
        if not same:
            log.warning("%s: the active die is no longer (%d, %d): %r", self.name, self._die.column, self._die.row,
                        reply.message)
            self._die = None
            self._session_ready = False
        return not same

    def shutdown(self) -> None:
        """Separate the chuck (``move_chuck_separation``); idempotent. ShutdownError if it failed."""
        step = "move_chuck_separation"
        try:
            self.separate()
        except Exception as exc:  # noqa: BLE001 - report, never hide
            log.error("%s: shutdown step %r failed: %s", self.name, step, exc)
            self.isShutdown = True
            raise ShutdownError(self.name, [(step, exc)]) from exc
        self.isShutdown = True

    # ------------------------------------------------------------------ wafer map
    def set_map(self, diameter_mm: float, die_width_um: float, die_height_um: float, *,
                grid_offset_um: tuple[float, float] = (0.0, 0.0), edge_exclusion_um: float = 0.0) -> None:
        """A new round wafer map and its stepping route (all checked before anything is written):

        ``map:create <diameter mm>``; ``map:set_grid_params <die w>, <die h>, <offset x>, <offset y>, <edge>``
        (µm); ``map:set_axis_orient UR`` (columns grow to the right, rows upwards); ``map:set_grid_origin 0, 0``
        (die 0, 0 is the one whose lower-left corner is the grid origin); ``map:path:select_dies a`` (every die
        on the wafer); ``map:set_routing ur, wc`` (start upper right, column by column, odd columns backwards:
        the order MPI's examples use, ``Examples-Python/map_stepping.py``). Each replies ``0,0,OK``."""
        d = _finite("diameter_mm", diameter_mm, "mm", 0.0, 450.0, lo_open=True)
        w = _finite("die_width_um", die_width_um, "µm", 0.0, d * 1000.0, lo_open=True)
        h = _finite("die_height_um", die_height_um, "µm", 0.0, d * 1000.0, lo_open=True)
        if isinstance(grid_offset_um, str) or len(grid_offset_um) != 2:
            raise ValueError(f"grid_offset_um must be (x, y) in µm, got {grid_offset_um!r}")
        ox = _finite("grid_offset_um[0]", grid_offset_um[0], "µm", -w, w)
        oy = _finite("grid_offset_um[1]", grid_offset_um[1], "µm", -h, h)
        edge = _finite("edge_exclusion_um", edge_exclusion_um, "µm", 0.0, d * 500.0)
        for command in (f"map:create {_number(d)}",
                        f"map:set_grid_params {_number(w)}, {_number(h)}, {_number(ox)}, {_number(oy)}, "
                        f"{_number(edge)}",
                        "map:set_axis_orient UR",
                        "map:set_grid_origin 0, 0",
                        "map:path:select_dies a",
                        "map:set_routing ur, wc"):
            self.command(command)
        self._die = None

    def die_count(self, which: str = "Selected") -> int:
        """Dies of the map: ``Selected`` (on the route), ``Present`` (on the wafer) or ``Total``
        (``map:get_num_dies <which>`` → ``0,0,<n>``; MPI Example-NoiseProPlus)."""
        if which not in ("Selected", "Present", "Total"):
            raise ValueError(f"which must be 'Selected', 'Present' or 'Total', got {which!r}")
        command = f"map:get_num_dies {which}"
        (value,) = self._values(command, 1, "one integer")
        try:
            return int(value)
        except ValueError:
            raise ReplyError(command, value, "an integer") from None

    def _step(self, command: str, reply: SentioReply) -> DiePosition:
        values = reply.values()
        try:
            col, row, site = (int(v) for v in values)
        except ValueError:
            raise ReplyError(command, reply.message, "<column>,<row>,<site>") from None
        self._die = DiePosition(col, row, site, bool(reply.status & STATUS_LAST_DIE))
        return self._die

    def step_first_die(self) -> DiePosition:
        """Step to the first die of the route, site 0 (``map:step_first_die 0`` → ``0,0,<col>,<row>,<site>``)."""
        command = "map:step_first_die 0"
        return self._step(command, self.command(command))

    def step_next_die(self) -> DiePosition | None:
        """Step to the next die of the route, same site (``map:step_next_die``); ``last`` is set on the route's
        last die (status 1024). None when the route had ended (error 11, EndOfRoute; the chuck stays)."""
        command = "map:step_next_die"
        reply = self.query(command)
        if reply.errc == END_OF_ROUTE:
            return None
        if reply.errc:
            raise SentioError(self.name, command, reply.errc, reply.message)
        return self._step(command, reply)

    def step_die(self, column: int, row: int, site: int = 0) -> DiePosition:
        """Step to die (``column``, ``row``), subsite ``site`` (``map:step_die <col>, <row>, <site>``)."""
        c, r, s = _integer("column", column), _integer("row", row), _integer("site", site, 0)
        command = f"map:step_die {c}, {r}, {s}"
        return self._step(command, self.command(command))

    @property
    def die(self) -> DiePosition | None:
        """The die this session last stepped to (None: none yet, or lost), as SENTIO replied."""
        return self._die

    # ------------------------------------------------------------------ chuck z
    def contact(self) -> float:
        """Chuck to contact height (``move_chuck_contact`` → ``0,0,<z µm>``); returns z (µm from zero)."""
        return self._float("move_chuck_contact")

    def separate(self) -> float:
        """Chuck to separation height (``move_chuck_separation`` → ``0,0,<z µm>``); returns z (µm)."""
        return self._float("move_chuck_separation")

    @property
    def in_contact(self) -> bool:
        """Whether the chuck stands at (or above: overtravel) the wafer's contact height, as SENTIO reports it:
        ``get_chuck_site_heights Wafer`` → ``<contact>,<separation>,<overtravel>,<hover>`` and
        ``get_chuck_z Zero`` → ``<z>`` (µm). SENTIO has no contact query of its own."""
        command = "get_chuck_site_heights Wafer"
        values = self._values(command, 4, "<contact>,<separation>,<overtravel>,<hover>")
        try:
            contact_um = float(values[0])
        except ValueError:
            raise ReplyError(command, ",".join(values), "numbers") from None
        return self._float("get_chuck_z Zero") >= contact_um - CONTACT_TOLERANCE_UM

    # ------------------------------------------------------------------ thermal chuck
    def chuck_temperature_c(self) -> float:
        """The chuck's present temperature, °C as SENTIO reports it (``status:get_chuck_temp``)."""
        return self._float("status:get_chuck_temp")

    def chuck_temperature_setpoint_c(self) -> float:
        """The chuck's set-point, °C (``status:get_chuck_temp_setpoint``)."""
        return self._float("status:get_chuck_temp_setpoint")

    def set_chuck_temperature_c(self, t_c: float) -> None:
        """Set the chuck to ``t_c`` °C (``status:set_chuck_temp <t:.2f>`` → ``0,0,OK``; the chuck then heats or
        cools on its own: poll :meth:`chuck_temperature_c` / :meth:`thermo_state`). ValueError naming the range
        when ``t_c`` lies outside :attr:`temperature_range_c`, before anything is written."""
        lo, hi = self.temperature_range_c
        t = _finite("t_c (chuck temperature set-point)", t_c, "°C", lo, hi)
        self.command(f"status:set_chuck_temp {t:.2f}")

    def thermo_state(self) -> str:
        """The thermal chuck's state word (``status:get_chuck_thermo_state``): Heating, Cooling, Controlling,
        Standby, Soaking, Uncontrolled or Error."""
        command = "status:get_chuck_thermo_state"
        (word,) = self._values(command, 1, "one state word")
        for state in THERMO_STATES:
            if word.lower() == state.lower():
                return state
        raise ReplyError(command, word, f"one of {list(THERMO_STATES)}")
