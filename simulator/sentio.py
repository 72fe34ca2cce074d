"""Emulated MPI probe system under SENTIO: the native remote command set on a TCP/IP socket (line based).

Sources (no public copy of MPI's remote command manual exists; the research note behind this module lists
them): MPI's Python package ``SentioProberDev/SentioProberControl`` @ 2360c3e — [P] —
(``sentio_prober_control/Sentio/Response.py``, ``Enumerations.py``, ``ProberSentio.py``,
``CommandGroups/{WafermapCommandGroup,WafermapPathCommandGroup,WafermapDieCommandGroup,StatusCommandGroup}.py``;
its unit tests' mock replies are written by MPI, not captured); MPI examples — [E] —
(``SentioProberDev/Example-NoiseProPlus/MPI_test_NoisePro_Marco_V1_3.bas``, ``Examples-CSharp/Sentio.BasicTcp``,
``Examples-Python/map_stepping.py``, ``thermo_test.py``); third-party code run on real probers — [R] — (an
anonymous pyvisa "MPI_TS2000SE" driver, SweepMe! ``src/WaferProber-MPI_SENTIO/libs/sentio.py``, SiLab-Bonn
``basil/HL/SentioProber.py``); SentioProberControl issues #34, #42 (real error text), #53 (number format).
[U] marks what no source shows: our choice, to be captured on a real SENTIO.

Framing: commands end in LF or CRLF [P ``CommunicatorTcpIp.send``: ``msg + "\\n"``; E Lua ``"\\r\\n"``];
replies end in LF [R: TS2000SE compares the last field to ``OK`` exactly after a ``\\n`` read termination].
A command word, one blank, comma-separated arguments with or without blanks; trailing blanks ignored
(MPI sends ``"move_chuck_separation "``) [P, R]. Command words are matched case-insensitively [U]; argument
keywords case-insensitively [P, E: ``UR``/``ur``, ``Wafermap``/``wafermap``].

Replies: ``<errc | status << 10>,<cmd_id>,<message>`` [P ``Response.parse_resp``]; ``cmd_id`` is 0 (no async
commands are emulated). Setters reply ``0,0,OK`` [R TS2000SE "if ok return: 0,0,OK"; P mocks]. ``*IDN?``
replies raw ``MPI Corporation,Sentio - Probe System Software Suite,<serial>,<version>`` [P
``Communication/__init__.py`` docstring]; ``*RCS 1``, ``*LOCAL`` and ``*REMOTE`` reply nothing [E C#, P].
Errors: an unknown command → ``3,0,Unsupported remote command: <the line>`` (text [R issues #34, #42]; code 3
CommandHandlerNotFound [U]); a wrong number of arguments → 7, a malformed argument → 6, out of range → 8 (codes
[P RemoteCommandError]; texts [U]).

Commands and reply shapes:

* ``map:create <diameter mm>`` [E], ``map:set_grid_params <w>,<h>,<offx>,<offy>,<edge>`` (µm) [P, E],
  ``map:set_axis_orient UR|UL|DR|DL``, ``map:set_grid_origin <c>,<r>``, ``map:set_home_die <c>,<r>``,
  ``map:path:select_dies a|n|g|u|e``, ``map:set_routing <ul|ur|ll|lr>,<r|c|wr|wc>`` [P, E] → ``OK``;
  ``map:get_diameter``, ``map:get_grid_params``, ``map:get_axis_orient``, ``map:get_grid_origin``,
  ``map:get_home_die``, ``map:get_routing`` (``UR,WC``), ``map:get_num_cols``, ``map:get_num_rows`` [P mocks];
  ``map:get_num_dies Present|Selected|Total`` → ``<n>`` [E NoiseProPlus]; ``map:path:get_die <seq>`` →
  ``<c>,<r>`` [R SweepMe]; ``map:die:get_status <c>,<r>`` → 1 selected, 2 not selected, 3 not present [P].
* ``map:step_first_die [<site>]``, ``map:step_next_die [<site>]``, ``map:step_die <c>,<r>[,<site>]``,
  ``map:step_die_seq <seq>,<site>`` → ``<c>,<r>,<site>`` [P, E]; arriving at the route's last die sets status
  1024 [E NoiseProPlus ``r1 = "1024"``, C# LastDie]; stepping past it → error 11 EndOfRoute, the chuck stays
  [P Examples-Python, E Lua "11 is end of route"; message text [U] ``End of route``].
  ``map:die:get_current_index`` → ``<route index>,<c>,<r>`` (-1 off the route) [P mock, R SweepMe doc];
  no active die → ``2,0,No die active`` (text [R SweepMe doc], code [U]).
* ``move_chuck_contact`` / ``move_chuck_separation`` → ``<z>`` µm from zero [R TS2000SE: 3 fields; P];
  ``move_chuck_home`` → ``<x>,<y>`` [R]; ``get_chuck_z [<ref>]`` → ``<z>`` [R basil, P]; ``get_chuck_xy``
  → ``<x>,<y>`` [R]; ``get_chuck_site_heights <site>`` → ``<contact>,<separation>,<overtravel>,<hover>`` [R
  TS2000SE: 6 fields]; ``set_stepping_contact_mode BackToContact|StepToSeparation|LockContact`` → ``OK`` [R].
* ``status:get_chuck_temp`` / ``status:get_chuck_temp_setpoint`` → ``<°C>`` [R TS2000SE: 3 fields; E];
  ``status:set_chuck_temp <T>[, <lift chuck>]`` → ``OK`` [R, P]; ``status:get_chuck_thermo_state`` → one word
  of Heating, Cooling, Controlling, Standby [R TS2000SE comment, P ThermoChuckState];
  ``status:get_machine_status`` → ``Ready`` [P parser; exact text U]; ``select_module <module>`` → ``OK`` [U].

Model choices, all [U]:

* Map: die (i, j) of the native grid spans x ∈ [offx + i·w, offx + (i+1)·w], y ∈ [offy + j·h, offy + (j+1)·h]
  µm from the wafer centre (SENTIO's docstring: the wafer centre is the lower-left corner of the central die
  when the offset is 0 [P ``set_grid_params``]); a die is on the map when its four corners lie within the
  wafer radius minus the edge exclusion (distance <= R - edge). Columns and rows: with ``UR`` column = i and
  row = j (MPI's examples remove dies (0,0), (-1,0), (-1,-1), (0,-1) as "the 4 dies in the centre" [E]); a
  mirrored axis (``L`` or ``D``) numbers index k as -k-1; the grid origin is subtracted. Defaults after
  ``map:create``: orientation UR, origin (0, 0), every die selected, routing ``ur, wc`` (MPI's examples).
  ``map:get_num_dies Total`` counts the bounding rectangle of the dies on the wafer. ``g``/``u``/``e``
  selections select every die (bins are not emulated). Subsites: only site 0 exists.
* Route: ``c``/``wc`` step a column (top to bottom from an upper start) then the next column; ``r``/``wr`` a
  row then the next; ``w…`` reverses every second line in visiting order. ``map:step_die`` to a die on the
  route continues the route from it. Status 1024 only on ``step_first_die``/``step_next_die``.
* Chuck: contact height, separation gap from the bench file (``chuck`` table); contact = z at the contact
  height (no overtravel), separation = contact - gap. Steps go from separation: in contact the chuck separates,
  moves, and returns to contact only in BackToContact (the default) — LockContact refuses with 12. xy of a die
  = its lower-left corner (site 0). Times: :class:`~.timing.TimingModel` ``chuck_z_move`` per z move,
  ``chuck_xy_overhead`` + distance / ``chuck_xy_speed`` per xy move; the reply comes after the move.
* Thermal chuck: the set-point is taken at once; the temperature follows dT/dt = (T_set - T)/τ limited to
  ±``chuck_ramp_rate`` (``chuck_thermal_tau`` τ): a linear ramp, then an exponential approach. Standby (no
  set-point since power-on) drifts to the ambient ``temperature_c`` the same way. State: Standby; Controlling
  within 0.5 °C of the set-point (MPI ``thermo_test.py`` band [E]); else Heating/Cooling. A set-point outside
  the bench's ``temperature_range_c`` → ``8,0,…``.
* Numbers print as SENTIO 26 does (``545``, not ``545.0`` [issue #53]): integral values without a fraction,
  temperatures rounded to 0.01 °C, positions to 0.001 µm.
* Faults: ``reboot`` = SENTIO restarted: no active die, chuck at separation, stepping mode and thermal control
  back to their defaults (the temperature itself carries on), the map kept (SENTIO reloads its project);
  ``queue_error`` replaces the command's reply with ``<code>,0,<message>`` (SENTIO has no error queue);
  ``drop_reply``, ``late_reply``, ``garble`` as for every emulator.

Bench side channel: :meth:`SentioProber.state` (also ``bench.prober_state()``) gives die, contact and
temperature; events ``die_step``, ``chuck_contact``, ``chuck_separation``, ``chuck_temp_setpoint`` go to
``bench.events``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .instrument import EmulatedInstrument
from .models import emulator

if TYPE_CHECKING:
    from .bench import Bench
    from .bench_config import InstrumentConfig

# error codes (SentioProberControl Enumerations.py: RemoteCommandError)
EXECUTION_ERROR = 2
HANDLER_NOT_FOUND = 3
INVALID_PARAMETER = 6
INVALID_NUMBER_OF_PARAMETERS = 7
ARGUMENT_OUT_OF_BOUNDS = 8
END_OF_ROUTE = 11
INVALID_OPERATION = 12
LAST_DIE = 1024                 # status bit 0 << 10 (StatusBits.EndOfRoute)

ORIENTS = ("UR", "UL", "DR", "DL")
STARTS = ("UL", "UR", "LL", "LR")
PRIORITIES = ("R", "C", "WR", "WC")
SELECTIONS = ("A", "N", "G", "U", "E")
STEPPING_MODES = ("BackToContact", "StepToSeparation", "LockContact")
Z_REFS = {"Z": "zero", "ZERO": "zero", "C": "contact", "CONTACT": "contact", "S": "separation",
          "SEPARATION": "separation", "R": "current", "CURRENT": "current", "H": "hover", "HOVER": "hover"}
CONTROL_BAND_C = 0.5

MAP_DEFAULTS = {"diameter_mm": 100.0, "die_width_um": 10000.0, "die_height_um": 10000.0,
                "grid_offset_um": (0.0, 0.0), "edge_exclusion_um": 3000.0}
CHUCK_DEFAULTS = {"contact_height_um": 5000.0, "separation_gap_um": 300.0, "temperature_c": 25.0,
                  "temperature_range_c": (-40.0, 200.0)}


def _num(value: float, digits: int = 3) -> str:
    """SENTIO 26 number format [U beyond issue #53]: ``545`` for integral values, else rounded to ``digits``."""
    v = round(float(value), digits)
    if v == 0:
        v = 0.0
    return str(int(v)) if v.is_integer() else f"{v:.{digits}f}".rstrip("0")


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ProberState:
    """What the prober does now, for the bench: ``die`` (column, row, site) or None, ``in_contact``,
    chuck ``temperature_c`` and ``setpoint_c`` (°C, None in Standby), chuck ``z_um`` and ``xy_um``."""

    name: str
    die: tuple[int, int, int] | None
    in_contact: bool
    temperature_c: float
    setpoint_c: float | None
    z_um: float
    xy_um: tuple[float, float]


def _table_number(t: dict[str, Any], key: str, where: str, lo: float, hi: float, default: float) -> float:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise ValueError(f"{where}.{key}: a number within [{lo}, {hi}], got {value!r}")
    return float(value)


def _table_pair(t: dict[str, Any], key: str, where: str, lo: float, hi: float,
                default: tuple[float, float]) -> tuple[float, float]:
    value = t.get(key, default)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{where}.{key}: two numbers [a, b], got {value!r}")
    a = _table_number({"v": value[0]}, "v", f"{where}.{key}[0]", lo, hi, 0.0)
    b = _table_number({"v": value[1]}, "v", f"{where}.{key}[1]", lo, hi, 0.0)
    return a, b


@emulator("SENTIO")
class SentioProber(EmulatedInstrument):
    """An MPI probe system under SENTIO (see the module docstring)."""

    model = "SENTIO"
    KIND = "prober"
    OPTIONS = ("map", "chuck")       # bench-file tables of a prober instrument

    @classmethod
    def options(cls, table: dict[str, Any], where: str) -> dict[str, Any]:
        """Validate the bench file's ``map`` and ``chuck`` tables (ValueError naming the key)."""
        out: dict[str, Any] = {}
        m = table.get("map", {})
        c = table.get("chuck", {})
        for name, t, allowed in (("map", m, MAP_DEFAULTS), ("chuck", c, CHUCK_DEFAULTS)):
            if not isinstance(t, dict):
                raise ValueError(f"{where}.{name}: expected a table, got {t!r}")
            extra = sorted(set(t) - set(allowed))
            if extra:
                raise ValueError(f"{where}.{name}: unknown key(s) {extra}; allowed: {sorted(allowed)}")
        w = f"{where}.map"
        out["diameter_mm"] = _table_number(m, "diameter_mm", w, 1.0, 450.0, MAP_DEFAULTS["diameter_mm"])
        size = out["diameter_mm"] * 1000.0
        out["die_width_um"] = _table_number(m, "die_width_um", w, 1.0, size, MAP_DEFAULTS["die_width_um"])
        out["die_height_um"] = _table_number(m, "die_height_um", w, 1.0, size, MAP_DEFAULTS["die_height_um"])
        out["grid_offset_um"] = _table_pair(m, "grid_offset_um", w, -size, size, MAP_DEFAULTS["grid_offset_um"])
        out["edge_exclusion_um"] = _table_number(m, "edge_exclusion_um", w, 0.0, size / 2,
                                                 MAP_DEFAULTS["edge_exclusion_um"])
        w = f"{where}.chuck"
        out["contact_height_um"] = _table_number(c, "contact_height_um", w, 0.0, 1e5,
                                                 CHUCK_DEFAULTS["contact_height_um"])
        out["separation_gap_um"] = _table_number(c, "separation_gap_um", w, 1.0, out["contact_height_um"],
                                                 CHUCK_DEFAULTS["separation_gap_um"])
        out["temperature_range_c"] = _table_pair(c, "temperature_range_c", w, -273.0, 1000.0,
                                                 CHUCK_DEFAULTS["temperature_range_c"])
        lo, hi = out["temperature_range_c"]
        if lo >= hi:
            raise ValueError(f"{w}.temperature_range_c: [min, max] with min < max, got {[lo, hi]}")
        out["temperature_c"] = _table_number(c, "temperature_c", w, lo, hi, CHUCK_DEFAULTS["temperature_c"])
        return out

    def __init__(self, bench: Bench, config: InstrumentConfig) -> None:
        super().__init__(bench, config.name, config.resource)
        opts = config.options or self.options({}, config.name)
        self.serial, self.version = config.serial, config.firmware
        self.esr = 0
        # wafer map
        self.diameter_mm = opts["diameter_mm"]
        self.die_w, self.die_h = opts["die_width_um"], opts["die_height_um"]
        self.off_x, self.off_y = opts["grid_offset_um"]
        self.edge = opts["edge_exclusion_um"]
        self._map_defaults()
        # chuck
        self.contact_height = opts["contact_height_um"]
        self.separation_gap = opts["separation_gap_um"]
        self.ambient = opts["temperature_c"]
        self.t_range = opts["temperature_range_c"]
        self._t0, self._temp0 = self.clock.now, self.ambient
        self.setpoint: float | None = None
        self._heat_the_die()
        self.xy = (0.0, 0.0)
        self._session_defaults()
        self._commands = {
            "map:create": self._map_create, "map:set_grid_params": self._set_grid_params,
            "map:get_grid_params": self._get_grid_params, "map:get_diameter": self._get_diameter,
            "map:set_axis_orient": self._set_axis_orient, "map:get_axis_orient": lambda a: self._ok(self.orient, 0, a),
            "map:set_grid_origin": self._set_grid_origin, "map:get_grid_origin": self._get_grid_origin,
            "map:set_home_die": self._set_home_die, "map:get_home_die": self._get_home_die,
            "map:path:select_dies": self._select_dies, "map:set_routing": self._set_routing,
            "map:get_routing": lambda a: self._ok(f"{self.start},{self.priority}", 0, a),
            "map:get_num_cols": lambda a: self._ok(str(self._extent()[0]), 0, a),
            "map:get_num_rows": lambda a: self._ok(str(self._extent()[1]), 0, a),
            "map:get_num_dies": self._get_num_dies, "map:path:get_die": self._path_get_die,
            "map:die:get_status": self._die_status, "map:die:get_current_index": self._current_index,
            "map:step_first_die": self._step_first, "map:step_next_die": self._step_next,
            "map:step_die": self._step_die, "map:step_die_seq": self._step_die_seq,
            "move_chuck_contact": self._move_contact, "move_chuck_separation": self._move_separation,
            "move_chuck_home": self._move_home, "get_chuck_z": self._get_z, "get_chuck_xy": self._get_xy,
            "get_chuck_site_heights": self._site_heights, "set_stepping_contact_mode": self._stepping_mode,
            "select_module": lambda a: self._ok("OK", 0, a, 2, 1),
            "status:get_chuck_temp": lambda a: self._ok(_num(self.temperature(), 2), 0, a),
            "status:get_chuck_temp_setpoint": lambda a: self._ok(
                _num(self.ambient if self.setpoint is None else self.setpoint, 2), 0, a),
            "status:set_chuck_temp": self._set_temp, "status:get_chuck_thermo_state": self._thermo_state,
            "status:get_machine_status": lambda a: self._ok("Ready", 0, a),
        }

    # ------------------------------------------------------------------ state
    def _map_defaults(self) -> None:
        self.orient, self.origin, self.home = "UR", (0, 0), (0, 0)
        self.start, self.priority, self.selection = "UR", "WC", "A"
        self._cache: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None
        self.die: tuple[int, int] | None = None        # native grid index (i, j) of the active die
        self.site = 0
        self.route_index: int | None = None

    def _session_defaults(self) -> None:
        self.z_state = "separation"
        self.stepping_mode = "BackToContact"

    def power_on(self) -> None:
        """SENTIO restarted (see the module docstring: what is kept and what is lost)."""
        super().power_on()
        self.esr = 0
        was_contact = self.z_state == "contact"
        self._rebase()
        self.setpoint = None
        self._heat_the_die()                    # the set-point is lost: the chuck drifts back to ambient
        self.die, self.route_index, self.site = None, None, 0
        self._session_defaults()
        if was_contact:
            self.bench.events.add(self.clock.now, self.name, "chuck_separation", z=self.z(), reason="power_on")
            self._touch()

    def state(self) -> ProberState:
        """Die, contact and temperature now (the bench's side channel)."""
        die = None
        if self.die is not None:
            die = (*self.number(*self.die), self.site)
        return ProberState(self.name, die, self.z_state == "contact", self.temperature(), self.setpoint,
                           self.z(), self.xy)

    # ------------------------------------------------------------------ wafer map
    def present(self) -> list[tuple[int, int]]:
        """Native grid indices (i, j) of the dies on the wafer, sorted."""
        return self._map()[0]

    def route(self) -> list[tuple[int, int]]:
        """Native indices of the selected dies in stepping order."""
        return self._map()[1]

    def _map(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        if self._cache is None:
            r = self.diameter_mm * 500.0 - self.edge
            eps = 1e-9
            i_lo = math.floor((-r - self.off_x) / self.die_w) - 1
            i_hi = math.ceil((r - self.off_x) / self.die_w) + 1
            j_lo = math.floor((-r - self.off_y) / self.die_h) - 1
            j_hi = math.ceil((r - self.off_y) / self.die_h) + 1
            present = []
            for i in range(i_lo, i_hi + 1):
                x0, x1 = self.off_x + i * self.die_w, self.off_x + (i + 1) * self.die_w
                xm = max(x0 * x0, x1 * x1)
                for j in range(j_lo, j_hi + 1):
                    y0, y1 = self.off_y + j * self.die_h, self.off_y + (j + 1) * self.die_h
                    if r > 0 and math.sqrt(xm + max(y0 * y0, y1 * y1)) <= r + eps:
                        present.append((i, j))
            selected = present if self.selection != "N" else []
            self._cache = (present, self._order(selected))
        return self._cache

    def _order(self, dies: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Stepping order of ``dies`` for the routing (start corner, priority), in physical directions: upper =
        +y (larger j), right = +x (larger i)."""
        from_top, from_right = self.start[0] == "U", self.start[1] == "R"
        columns_first = self.priority in ("C", "WC")
        lines: dict[int, list[tuple[int, int]]] = {}
        for i, j in dies:
            lines.setdefault(i if columns_first else j, []).append((i, j))
        outer_desc = from_right if columns_first else from_top
        inner_desc = from_top if columns_first else from_right
        out: list[tuple[int, int]] = []
        for n, key in enumerate(sorted(lines, reverse=outer_desc)):
            line = sorted(lines[key], key=lambda d: d[1] if columns_first else d[0], reverse=inner_desc)
            if self.priority.startswith("W") and n % 2 == 1:
                line.reverse()
            out += line
        return out

    def number(self, i: int, j: int) -> tuple[int, int]:
        """Native grid index → (column, row) as SENTIO numbers them (orientation, grid origin)."""
        nc = i if self.orient[1] == "R" else -i - 1
        nr = j if self.orient[0] == "U" else -j - 1
        return nc - self.origin[0], nr - self.origin[1]

    def index(self, col: int, row: int) -> tuple[int, int]:
        """(column, row) → native grid index."""
        nc, nr = col + self.origin[0], row + self.origin[1]
        return (nc if self.orient[1] == "R" else -nc - 1), (nr if self.orient[0] == "U" else -nr - 1)

    def _extent(self) -> tuple[int, int]:
        present = self.present()
        if not present:
            return 0, 0
        i_s, j_s = [d[0] for d in present], [d[1] for d in present]
        return max(i_s) - min(i_s) + 1, max(j_s) - min(j_s) + 1

    def _changed(self) -> None:
        self._cache = None
        self.die, self.route_index = None, None

    # ------------------------------------------------------------------ thermal chuck
    def _target(self) -> float:
        return self.ambient if self.setpoint is None else self.setpoint

    def temperature(self, t: float | None = None) -> float:
        """Chuck temperature (°C) at simulated time ``t`` (default now): a ramp-limited first-order approach."""
        return self._law()(self.clock.now if t is None else t)

    def _law(self) -> Callable[[float], float]:
        """The chuck's temperature (°C) as a function of simulated time under the present set-point."""
        temp0, t0, target = self._temp0, self._t0, self._target()
        rate, tau = self.timing.chuck_ramp_rate, self.timing.chuck_thermal_tau
        knee = rate * tau
        e0 = temp0 - target

        def law(t: float) -> float:
            dt = max(t - t0, 0.0)
            if abs(e0) > knee:
                t1 = (abs(e0) - knee) / rate
                if dt <= t1:
                    return temp0 - math.copysign(rate * dt, e0)
                return target + math.copysign(knee, e0) * math.exp(-(dt - t1) / tau)
            return target + e0 * math.exp(-dt / tau)

        return law

    def _rebase(self) -> None:
        self._temp0, self._t0 = self.temperature(), self.clock.now

    def _heat_the_die(self) -> None:
        """The die on the chuck follows it: the bench's device model integrates this law from now on."""
        set_source = getattr(self.bench, "set_temperature_source", None)
        if set_source is not None:
            set_source(self._law(), at=self.clock.now)

    # ------------------------------------------------------------------ chuck
    def z(self) -> float:
        return self.contact_height - (0.0 if self.z_state == "contact" else self.separation_gap)

    def _z_move(self, state: str) -> None:
        if self.z_state != state:
            self.clock.advance(self.timing.chuck_z_move)
            self.z_state = state
            kind = "chuck_contact" if state == "contact" else "chuck_separation"
            die = None if self.die is None else (*self.number(*self.die), self.site)
            self.bench.events.add(self.clock.now, self.name, kind, z=self.z(), die=die)
            self._touch()

    def _touch(self) -> None:
        """Tell the bench's wafer (if any) where the probes are: down at the centre of the die under the chuck's
        xy (its lower-left corner + half a die of this map), or lifted."""
        wafer = getattr(self.bench, "wafer", None)
        if wafer is None:
            return
        if self.z_state == "contact":
            wafer.touch_at(self.xy[0] + self.die_w / 2, self.xy[1] + self.die_h / 2)
        else:
            wafer.lift()

    def _xy_move(self, x: float, y: float) -> None:
        distance = math.hypot(x - self.xy[0], y - self.xy[1])
        if distance > 0:
            self.clock.advance(self.timing.chuck_xy_overhead + distance / self.timing.chuck_xy_speed)
        self.xy = (x, y)

    # ------------------------------------------------------------------ I/O
    def execute(self, line: str) -> None:
        text = line.strip()
        word, _, rest = text.partition(" ")
        if word.startswith("*"):
            self._low_level(word.upper(), rest.strip(), text)
            return
        handler = self._commands.get(word.lower())
        if handler is None:
            self._reply(HANDLER_NOT_FOUND, f"Unsupported remote command: {text}")
            return
        args = [a.strip() for a in rest.split(",")] if rest.strip() else []
        try:
            handler(args)
        except _Fail as f:
            self._reply(f.code, f.message)

    def _low_level(self, word: str, rest: str, text: str) -> None:
        if word == "*IDN?":
            self.reply(f"MPI Corporation,Sentio - Probe System Software Suite,{self.serial},{self.version}")
        elif word in ("*RCS", "*LOCAL", "*REMOTE"):
            pass                             # no reply [E C#: "this command does not have a response!"]
        else:
            self._reply(HANDLER_NOT_FOUND, f"Unsupported remote command: {text}")

    def _reply(self, code: int, message: str) -> None:
        self.reply(f"{code},0,{message}")

    def _ok(self, message: str = "OK", status: int = 0, args: list[str] | None = None, n_max: int = 0,
            n_min: int = 0) -> None:
        if args is not None and not n_min <= len(args) <= n_max:
            raise _Fail(INVALID_NUMBER_OF_PARAMETERS, "Invalid number of parameters")
        self.reply(f"{status},0,{message}")

    def queue_error(self, code: int, message: str, severity: int = 20) -> None:
        """SENTIO has no error queue: the error replaces the reply of the command it followed [U]."""
        if self._out:
            t, _ = self._out.pop()
            self._out.append((t, f"{code if code > 0 else EXECUTION_ERROR},0,{message}".encode("latin-1")
                              + self.read_termination))

    @staticmethod
    def _count(args: list[str], lo: int, hi: int | None = None) -> None:
        if not lo <= len(args) <= (lo if hi is None else hi):
            raise _Fail(INVALID_NUMBER_OF_PARAMETERS, "Invalid number of parameters")

    @staticmethod
    def _float(arg: str) -> float:
        try:
            v = float(arg)
        except ValueError:
            raise _Fail(INVALID_PARAMETER, f"Invalid parameter: {arg}") from None
        if not math.isfinite(v):
            raise _Fail(INVALID_PARAMETER, f"Invalid parameter: {arg}")
        return v

    @staticmethod
    def _int(arg: str) -> int:
        try:
            return int(arg)
        except ValueError:
            raise _Fail(INVALID_PARAMETER, f"Invalid parameter: {arg}") from None

    @staticmethod
    def _keyword(arg: str, allowed: tuple[str, ...]) -> str:
        for k in allowed:
            if arg.upper() == k.upper():
                return k
        raise _Fail(INVALID_PARAMETER, f"Invalid parameter: {arg}")

    # ------------------------------------------------------------------ map commands
    def _map_create(self, args: list[str]) -> None:
        self._count(args, 1)
        d = self._float(args[0])
        if not 1.0 <= d <= 450.0:
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, f"Argument out of bounds: {args[0]}")
        self.diameter_mm = d
        self._map_defaults()
        self._ok()

    def _set_grid_params(self, args: list[str]) -> None:
        self._count(args, 5)
        w, h, ox, oy, edge = (self._float(a) for a in args)
        size = self.diameter_mm * 1000.0
        if not (0 < w <= size and 0 < h <= size and abs(ox) <= size and abs(oy) <= size and 0 <= edge <= size / 2):
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, "Argument out of bounds")
        self.die_w, self.die_h, self.off_x, self.off_y, self.edge = w, h, ox, oy, edge
        self._changed()
        self._ok()

    def _get_grid_params(self, args: list[str]) -> None:
        self._ok(",".join(_num(v) for v in (self.die_w, self.die_h, self.off_x, self.off_y, self.edge)), 0, args)

    def _get_diameter(self, args: list[str]) -> None:
        self._ok(_num(self.diameter_mm), 0, args)

    def _set_axis_orient(self, args: list[str]) -> None:
        self._count(args, 1)
        self.orient = self._keyword(args[0], ORIENTS)
        self._changed()
        self._ok()

    def _pair(self, args: list[str]) -> tuple[int, int]:
        self._count(args, 2)
        return self._int(args[0]), self._int(args[1])

    def _set_grid_origin(self, args: list[str]) -> None:
        self.origin = self._pair(args)
        self._changed()
        self._ok()

    def _get_grid_origin(self, args: list[str]) -> None:
        self._ok(f"{self.origin[0]},{self.origin[1]}", 0, args)

    def _set_home_die(self, args: list[str]) -> None:
        self.home = self._pair(args)
        self._ok()

    def _get_home_die(self, args: list[str]) -> None:
        self._ok(f"{self.home[0]},{self.home[1]}", 0, args)

    def _select_dies(self, args: list[str]) -> None:
        self._count(args, 1)
        self.selection = self._keyword(args[0], SELECTIONS)
        self._changed()
        self._ok()

    def _set_routing(self, args: list[str]) -> None:
        self._count(args, 2)
        self.start, self.priority = self._keyword(args[0], STARTS), self._keyword(args[1], PRIORITIES)
        self._changed()
        self._ok()

    def _get_num_dies(self, args: list[str]) -> None:
        self._count(args, 1)
        which = self._keyword(args[0], ("Present", "Selected", "Total"))
        cols, rows = self._extent()
        n = {"Present": len(self.present()), "Selected": len(self.route()), "Total": cols * rows}[which]
        self._ok(str(n))

    def _path_get_die(self, args: list[str]) -> None:
        self._count(args, 1)
        seq, route = self._int(args[0]), self.route()
        if not 0 <= seq < len(route):
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, f"Argument out of bounds: {args[0]}")
        c, r = self.number(*route[seq])
        self._ok(f"{c},{r}")

    def _die_status(self, args: list[str]) -> None:
        d = self.index(*self._pair(args))
        self._ok("1" if d in self.route() else "2" if d in self.present() else "3")

    def _current_index(self, args: list[str]) -> None:
        self._count(args, 0)
        if self.die is None:
            raise _Fail(EXECUTION_ERROR, "No die active")
        c, r = self.number(*self.die)
        self._ok(f"{-1 if self.route_index is None else self.route_index},{c},{r}")

    # ------------------------------------------------------------------ stepping
    def _site(self, args: list[str], k: int, default: int) -> int:
        if len(args) <= k:
            return default
        site = self._int(args[k])
        if site != 0:
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, f"Argument out of bounds: site {site}")
        return site

    def _go(self, die: tuple[int, int], site: int, route_index: int | None, status: int = 0) -> None:
        """Move to ``die`` from separation (see the module docstring) and reply ``<col>,<row>,<site>``."""
        was_contact = self.z_state == "contact"
        if was_contact and self.stepping_mode == "LockContact":
            raise _Fail(INVALID_OPERATION, "Stepping is locked while the chuck is in contact")
        self._z_move("separation")
        self._xy_move(self.off_x + die[0] * self.die_w, self.off_y + die[1] * self.die_h)
        self.die, self.site, self.route_index = die, site, route_index
        c, r = self.number(*die)
        self.bench.events.add(self.clock.now, self.name, "die_step", column=c, row=r, site=site)
        if was_contact and self.stepping_mode == "BackToContact":
            self._z_move("contact")
        self._ok(f"{c},{r},{site}", status)

    def _step_first(self, args: list[str]) -> None:
        self._count(args, 0, 1)
        site = self._site(args, 0, 0)
        route = self.route()
        if not route:
            raise _Fail(EXECUTION_ERROR, "No dies selected for stepping")
        self._go(route[0], site, 0, LAST_DIE if len(route) == 1 else 0)

    def _step_next(self, args: list[str]) -> None:
        self._count(args, 0, 1)
        site = self._site(args, 0, self.site)
        route = self.route()
        k = 0 if self.route_index is None else self.route_index + 1
        if self.route_index is None and self.die is not None and self.die in route:
            k = route.index(self.die) + 1
        if k >= len(route):
            raise _Fail(END_OF_ROUTE, "End of route")
        self._go(route[k], site, k, LAST_DIE if k == len(route) - 1 else 0)

    def _step_die(self, args: list[str]) -> None:
        self._count(args, 2, 3)
        col, row = self._int(args[0]), self._int(args[1])
        site = self._site(args, 2, 0)
        die = self.index(col, row)
        if die not in self.present():
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, f"Die {col},{row} is not on the wafer map")
        route = self.route()
        self._go(die, site, route.index(die) if die in route else None)

    def _step_die_seq(self, args: list[str]) -> None:
        self._count(args, 2)
        seq, route = self._int(args[0]), self.route()
        site = self._site(args, 1, 0)
        if not 0 <= seq < len(route):
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, f"Argument out of bounds: {args[0]}")
        self._go(route[seq], site, seq)

    # ------------------------------------------------------------------ chuck commands
    def _move_contact(self, args: list[str]) -> None:
        self._count(args, 0)
        self._z_move("contact")
        self._ok(_num(self.z()))

    def _move_separation(self, args: list[str]) -> None:
        self._count(args, 0)
        self._z_move("separation")
        self._ok(_num(self.z()))

    def _move_home(self, args: list[str]) -> None:
        self._count(args, 0)
        self._z_move("separation")
        self._xy_move(0.0, 0.0)
        self.die, self.route_index = None, None
        self._ok("0,0")

    def _get_z(self, args: list[str]) -> None:
        self._count(args, 0, 1)
        ref = Z_REFS.get(args[0].upper()) if args else "zero"
        if ref is None:
            raise _Fail(INVALID_PARAMETER, f"Invalid parameter: {args[0]}")
        base = {"zero": 0.0, "current": self.z(), "contact": self.contact_height, "hover": self.contact_height,
                "separation": self.contact_height - self.separation_gap}[ref]
        self._ok(_num(self.z() - base))

    def _get_xy(self, args: list[str]) -> None:
        self._count(args, 0, 2)
        self._ok(f"{_num(self.xy[0])},{_num(self.xy[1])}")

    def _site_heights(self, args: list[str]) -> None:
        self._count(args, 1)
        self._keyword(args[0], ("Wafer",))
        self._ok(f"{_num(self.contact_height)},{_num(self.separation_gap)},0,0")

    def _stepping_mode(self, args: list[str]) -> None:
        self._count(args, 1)
        self.stepping_mode = self._keyword(args[0], STEPPING_MODES)
        self._ok()

    # ------------------------------------------------------------------ thermal commands
    def _set_temp(self, args: list[str]) -> None:
        self._count(args, 1, 2)
        t = self._float(args[0])
        if len(args) == 2:
            self._keyword(args[1], ("True", "False", "1", "0"))
        lo, hi = self.t_range
        if not lo <= t <= hi:
            raise _Fail(ARGUMENT_OUT_OF_BOUNDS, f"Argument out of bounds: {args[0]} (chuck range {_num(lo)} to "
                                                f"{_num(hi)} degC)")
        self._rebase()
        self.setpoint = t
        self._heat_the_die()
        self.bench.events.add(self.clock.now, self.name, "chuck_temp_setpoint", setpoint=t,
                              temperature=self._temp0)
        self._ok()

    def _thermo_state(self, args: list[str]) -> None:
        self._count(args, 0)
        if self.setpoint is None:
            self._ok("Standby")
            return
        t = self.temperature()
        self._ok("Controlling" if abs(t - self.setpoint) <= CONTROL_BAND_C else "Heating" if t < self.setpoint
                 else "Cooling")
