"""Station file (TOML): instruments, wiring, array geometry, read conditions and the safety envelope.

``load_station_config`` validates every key, each number against a physically meaningful range (a value
outside is taken for a unit mistake); an error starts with the file, names the key and says what is
allowed, e.g. ``my_station.toml: read.nplc: must be within [0.001, 25] PLC, got 1000.0``. Files are
UTF-8 (with or without BOM) and at most 1 MiB.
Drivers are found by name in the driver registry (:mod:`.registry`); what a file may say about an
instrument (channels, voltage and current ranges, matrix slots and cards) comes from the driver's
declared roles (:mod:`.roles`), so the file is checked against the instruments without sending anything.
See ``examples/`` for station files: ``sim_<bench>.toml`` run on the shipped simulated bench ``<bench>``
(``visa_library = "<bench>@rramlab"``) and ``lab_*.toml`` are for real benches.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .array_wiring import LINES, TERMINAL_OF_LINE, ArrayWiring, LinePort
from .bench_lock import canonical_resource
from .registry import RegistryError, driver_class
from .roles import ROLE_CLOCK, ROLE_MATRIX, ROLE_SMU, SMUSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TERMINALS = ("bit_line", "word_line")
LOOPS = ("auto", "pc")                    # station.loops: on-instrument loops where offered, or PC in the loop
_RESOURCE = re.compile(r"^((GPIB\d*::\d+(::\d+)?|TCPIP\d*::[A-Za-z0-9_.\-]+::[A-Za-z0-9_.\-]+|"
                       r"USB\d*::0x[0-9A-Fa-f]+::0x[0-9A-Fa-f]+::[A-Za-z0-9_.\-]+|ASRL[A-Za-z0-9/_.\-]+)::INSTR|"
                       r"TCPIP\d*::[A-Za-z0-9_.\-]+::\d{1,5}::SOCKET)$")      # a raw socket (e.g. a prober's)
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]{0,31}):(\d{1,3}):(\d{1,4})(?:-(\d{1,4}))?$")
# a path (no shell metacharacters), an optional ?key=value&... query, an optional @backend
_LIBRARY = re.compile(r"^[A-Za-z0-9_./\\: \-]*(\?[A-Za-z0-9_.=&:/\-]*)?(@[A-Za-z0-9_]+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,31}$")
MAX_FILE_BYTES = 1 << 20                  # a station or recipe file larger than 1 MiB is refused unread
MAX_INSTRUMENTS = 16
TIMEOUT = (1e-3, 3600.0)                  # s, VISA I/O timeout
SIMULATED = "@rramlab"                    # the VISA library suffix of the simulated bench


class StationConfigError(ValueError):
    """A station file that cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class TspLink:
    """``tsplink = { master = "<instrument>", node = N }``: node N (1–64) of the TSP-Link network whose master is
    that instrument of the file; the computer reaches it through the master's session (2600B Reference
    Manual, "TSP-Link system": a computer-based system talks to one node, the master)."""

    master: str
    node: int


@dataclass(frozen=True)
class InstrumentEntry:
    """One ``[instruments.<name>]`` table."""

    name: str
    driver: str                               # a registered driver name (registry.driver_names())
    resource: str                             # VISA address, e.g. GPIB0::26::INSTR
    visa_library: str = ""                    # "" = the system VISA; "<bench>@rramlab" = a simulated bench
    timeout: float = 10.0                     # VISA I/O timeout (s)
    cards: dict[int, str] | None = None       # matrices: slot -> card model
    tsplink: TspLink | None = None            # reached as a TSP-Link node of another instrument (no own session)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(driver_class(self.driver).ROLES)


@dataclass(frozen=True)
class SafetyEnvelope:
    """Limits checked before anything is sent (V, A, s, J)."""

    max_voltage: dict[str, float]            # per terminal: bit_line, word_line
    current_limit: dict[str, float]          # mandatory source current limit per terminal
    max_pulse_width: float
    min_current_limit: dict[str, float] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(TERMINALS, 1e-10))   # A, the terminal SMU's smallest limit
    nplc: tuple[float, float] = (0.001, 25.0)                   # PLC, the bit-line SMU's integration range
    min_pulse_width: float = 1e-6
    max_pulse_energy: float = math.inf       # V²·G·t bound at the array's maximum conductance
    max_forming_attempts: int = 3
    max_pulses_per_cell: int = 1_000_000
    g_max: float = 150e-6                    # conductance assumed for energy bounds (S)
    temperature_c: tuple[float, float] | None = None   # °C chuck set-points allowed (None: no thermal chuck)

    # Each check returns None when the value is allowed, else what is allowed (for an error message).
    def voltage_violation(self, terminal: str, value: float) -> str | None:
        """Source voltage ``value`` (V) on ``terminal`` ("bit_line" | "word_line")."""
        limit = self.max_voltage[terminal]
        if math.isfinite(value) and abs(value) <= limit:
            return None
        return f"within [-{limit}, {limit}] V on the {terminal} (safety.max_voltage.{terminal})"

    def limit_violation(self, terminal: str, value: float | None) -> str | None:
        """Source current limit ``value`` (A) on ``terminal``; None (no limit) is never allowed."""
        cap, low = self.current_limit[terminal], self.min_current_limit[terminal]
        if value is not None and math.isfinite(value) and low <= value <= cap:
            return None
        return f"within [{low}, {cap}] A on the {terminal} (safety.current_limit.{terminal})"

    def nplc_violation(self, nplc: float | None) -> str | None:
        """Integration time ``nplc`` (PLC) on the bit-line SMU; None (the station's read setting) is allowed."""
        lo, hi = self.nplc
        if nplc is None or math.isfinite(nplc) and lo <= nplc <= hi:
            return None
        return f"within [{lo}, {hi}] PLC (the bit-line SMU's integration range)"

    def width_violation(self, width: float) -> str | None:
        """Pulse width ``width`` (s)."""
        if math.isfinite(width) and self.min_pulse_width <= width <= self.max_pulse_width:
            return None
        return f"within [{self.min_pulse_width}, {self.max_pulse_width}] s (safety.min/max_pulse_width)"

    def temperature_violation(self, t_c: float) -> str | None:
        """Chuck temperature set-point ``t_c`` (°C, the prober's unit)."""
        if self.temperature_c is None:
            return "the station has no thermal chuck (safety.temperature_c unset)"
        lo, hi = self.temperature_c
        if math.isfinite(t_c) and lo <= t_c <= hi:
            return None
        return f"within [{lo}, {hi}] °C (safety.temperature_c)"

    def pulse_energy(self, amplitude: float, width: float) -> float:
        """Worst-case pulse energy V²·G_max·t (J) of a pulse of ``amplitude`` V and ``width`` s."""
        return amplitude * amplitude * self.g_max * width

    def energy_violation(self, amplitude: float, width: float) -> str | None:
        """Pulse energy of ``amplitude`` V for ``width`` s against safety.max_pulse_energy."""
        if self.pulse_energy(amplitude, width) <= self.max_pulse_energy:
            return None
        return f"at most {self.max_pulse_energy} J of V²·G_max·t (safety.max_pulse_energy)"


@dataclass(frozen=True)
class ReadConditions:
    """How a cell is read unless a protocol says otherwise."""

    voltage: float = 0.2                      # bit-line read voltage (V)
    gate_voltage: float = 3.3                 # word-line (gate) voltage during reads and pulses (V)
    nplc: float = 1.0                         # integration time (power-line cycles)


@dataclass(frozen=True)
class Wiring:
    bit_line: str                             # "<instrument>.<channel>" driving the bit lines
    word_line: str                            # driving the word lines (gates)
    rows: dict[str, dict[str, str]]           # matrix -> terminal ("bit_line" | "word_line" | "ground") -> row
    array: ArrayWiring                        # every array line's (matrix, card, column)


@dataclass(frozen=True)
class ContactCheck:
    """Low-bias read before the first forming step: a station with nothing connected stops there."""

    voltage: float = 0.1                      # V on the bit line
    min_current: float = 10e-12               # A; every checked cell below it → no contact
    cells: int = 4                            # cells read, spread over the step's selection


@dataclass(frozen=True)
class StationConfig:
    name: str
    instruments: dict[str, InstrumentEntry]
    clock: str                                # "system" or the name of a clock instrument
    rows: int
    cols: int
    topology: str
    source_lines: str
    wiring: Wiring
    read: ReadConditions
    safety: SafetyEnvelope
    contact: ContactCheck = ContactCheck()
    loops: str = "auto"                       # "auto": on-instrument loops where offered; "pc": PC in the loop
    text: str = ""
    source: str = ""

    def smu_spec(self, terminal: str) -> SMUSpec:
        """The declared figures of the SMU driving ``terminal`` ("bit_line" | "word_line")."""
        inst = getattr(self.wiring, terminal).split(".")[0]
        return driver_class(self.instruments[inst].driver).SMU

    @property
    def simulated(self) -> bool:
        """Every instrument is on a simulated bench."""
        return all(e.visa_library.endswith(SIMULATED) for e in self.instruments.values())


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message stays short whatever the file holds."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _raw(t: dict[str, Any], key: str, where: str, default: Any = ...) -> Any:
    """``t[key]``, ``default`` if absent (``...``: required)."""
    if key in t:
        return t[key]
    if default is ...:
        raise StationConfigError(f"{_key(where, key)}: missing (required)")
    return default


def _get(t: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    """``t[key]`` of type ``kind`` (bool is not an int here), ``default`` if absent (``...``: required)."""
    if key not in t:
        return _raw(t, key, where, default)
    value = t[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = {int: "an integer", float: "a number", str: "a string", dict: "a table", bool: "true or false"}
        wanted = "a number" if float in kinds else " or ".join(names.get(k, k.__name__) for k in kinds)
        hint = _hint(value) if int in kinds or float in kinds else ""
        raise StationConfigError(f"{_key(where, key)}: expected {wanted}, got {_short(value)}{hint}")
    return value


def _hint(value: Any) -> str:
    """Why a value has the wrong type, when TOML makes it easy to miss."""
    if isinstance(value, str):
        return " (text: write numbers without quotes)"
    return " (true/false is not a number)" if isinstance(value, bool) else ""


def _text(t: dict[str, Any], key: str, where: str, default: Any = ..., max_len: int = 200) -> str:
    value = _get(t, key, str, where, default)
    if len(value) > max_len:
        raise StationConfigError(f"{_key(where, key)}: at most {max_len} characters, got {len(value)}")
    return value


def _number(t: dict[str, Any], key: str, where: str, lo: float, hi: float, unit: str, default: Any = ...,
            *, lo_open: bool = False, note: str = "") -> float:
    """A finite number in [lo, hi] (or (lo, hi] with ``lo_open``) ``unit``; ``note`` names where a bound
    comes from, e.g. "safety.max_voltage.bit_line"; ``default`` (if given) when absent."""
    if key not in t and default is not ...:
        return default
    bounds = f"{'(' if lo_open else '['}{lo}, {hi}] {unit}".rstrip() + (f" ({note})" if note else "")
    value = _raw(t, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StationConfigError(f"{_key(where, key)}: must be a number within {bounds}, got {_short(value)}"
                                 f"{_hint(value)}")
    v = float(value)
    if not (math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi):
        raise StationConfigError(f"{_key(where, key)}: must be within {bounds}, got {v!r}")
    return v


def _integer(t: dict[str, Any], key: str, where: str, lo: int, hi: int, default: Any = ...) -> int:
    value = _raw(t, key, where, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise StationConfigError(f"{_key(where, key)}: must be an integer within [{lo}, {hi}], got "
                                 f"{_short(value)}{_hint(value)}")
    return value


def _no_extra(t: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(t) - allowed)
    if extra:
        names = ", ".join(_short(k, 30) for k in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5
                                                               else "")
        raise StationConfigError(f"{where or 'top level'}: unknown key(s) [{names}]; allowed: {sorted(allowed)}")


def parse_station_config(text: str, source: str = "<text>") -> StationConfig:
    """Validate a station file's text; StationConfigError messages start with ``source``."""
    text = text.removeprefix("\ufeff")
    data = parse_toml(text, source, StationConfigError)
    try:
        return _parse(data, text, source)
    except StationConfigError as e:
        raise StationConfigError(f"{source}: {e}") from None


def _parse(data: dict[str, Any], text: str, source: str) -> StationConfig:
    _no_extra(data, {"station", "instruments", "clock", "array", "wiring", "read", "safety", "contact"}, "")
    st = _get(data, "station", dict, "")
    _no_extra(st, {"name", "loops"}, "station")
    name = _text(st, "name", "station")
    loops = _text(st, "loops", "station", "auto")
    if loops not in LOOPS:
        raise StationConfigError(f"station.loops: {_short(loops)}; allowed: {list(LOOPS)} (auto: on the instrument "
                                 "where the bit-line SMU runs the loop itself; pc: the PC runs every loop)")
    instruments = _instruments(_get(data, "instruments", dict, ""))

    ck = _get(data, "clock", dict, "", {"source": "system"})
    _no_extra(ck, {"source"}, "clock")
    clock = _text(ck, "source", "clock", "system")
    if clock != "system" and (clock not in instruments or ROLE_CLOCK not in instruments[clock].roles):
        clocks = sorted(n for n, e in instruments.items() if ROLE_CLOCK in e.roles)
        raise StationConfigError(f"clock.source: {_short(clock)} must be 'system' or the name of a clock "
                                 f"instrument; allowed: {['system', *clocks]}")

    ar = _get(data, "array", dict, "")
    _no_extra(ar, {"topology", "rows", "cols", "source_lines"}, "array")
    topology = _text(ar, "topology", "array")
    if topology != "1T1R":
        raise StationConfigError(f"array.topology: {_short(topology)}; allowed: ['1T1R'] (passive crossbars later)")
    rows, cols = _get(ar, "rows", int, "array"), _get(ar, "cols", int, "array")
    if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
        raise StationConfigError(f"array.rows/cols: {rows}x{cols} outside 1..4096")
    source_lines = _text(ar, "source_lines", "array", "columns")
    if source_lines not in ("columns", "rows"):
        raise StationConfigError(f"array.source_lines: {_short(source_lines)}; allowed: ['columns', 'rows']")

    wiring = _wiring(_get(data, "wiring", dict, ""), instruments, rows, cols, source_lines)
    specs = {t: driver_class(instruments[getattr(wiring, t).split(".")[0]].driver).SMU for t in TERMINALS}
    safety = _safety(_get(data, "safety", dict, ""), specs)
    rd = _get(data, "read", dict, "", {})
    _no_extra(rd, {"voltage", "gate_voltage", "nplc"}, "read")
    mv = safety.max_voltage
    nplc = specs["bit_line"].nplc
    read = ReadConditions(
        voltage=_number(rd, "voltage", "read", 1e-3, mv["bit_line"], "V", 0.2, note="safety.max_voltage.bit_line"),
        gate_voltage=_number(rd, "gate_voltage", "read", 0.1, mv["word_line"], "V", 3.3,
                             note="safety.max_voltage.word_line"),
        nplc=_number(rd, "nplc", "read", *nplc, "PLC", 1.0, note="the bit-line SMU's integration range"))
    ct = _get(data, "contact", dict, "", {})
    _no_extra(ct, {"voltage", "min_current", "cells"}, "contact")
    contact = ContactCheck(
        voltage=_number(ct, "voltage", "contact", 1e-3, mv["bit_line"], "V", min(0.1, mv["bit_line"]),
                        note="safety.max_voltage.bit_line"),
        min_current=_number(ct, "min_current", "contact", 1e-15, 1e-6, "A", 10e-12),
        cells=_integer(ct, "cells", "contact", 1, 64, 4))
    return StationConfig(name=name, loops=loops, instruments=instruments, clock=clock, rows=rows, cols=cols,
                         topology=topology, source_lines=source_lines, wiring=wiring, read=read, safety=safety,
                         contact=contact, text=text, source=source)


def _instruments(table: dict[str, Any]) -> dict[str, InstrumentEntry]:
    if not table:
        raise StationConfigError("instruments: at least one instrument is required")
    if len(table) > MAX_INSTRUMENTS:
        raise StationConfigError(f"instruments: at most {MAX_INSTRUMENTS} instruments, got {len(table)}")
    instruments: dict[str, InstrumentEntry] = {}
    for name, t in table.items():
        if not _NAME.match(name):
            raise StationConfigError(f"instruments.{_short(name, 40)}: an instrument name is a letter or _ then up "
                                     "to 31 letters, digits, _ or -")
        where = f"instruments.{name}"
        if not isinstance(t, dict):
            raise StationConfigError(f"{where}: expected a table, got {_short(t)}")
        _no_extra(t, {"driver", "resource", "visa_library", "timeout", "cards", "tsplink"}, where)
        driver = _text(t, "driver", where)
        try:
            cls = driver_class(driver)
        except RegistryError as e:
            raise StationConfigError(f"{where}.driver: {e}") from None
        if "tsplink" in t:
            instruments[name] = _linked(t, name, driver, cls)
            continue
        resource = _text(t, "resource", where, max_len=256)
        if not _RESOURCE.match(resource) or ".." in resource:
            raise StationConfigError(f"{where}.resource: {_short(resource)} is not a VISA INSTR or SOCKET address "
                                     "(e.g. GPIB0::26::INSTR, TCPIP0::host::inst0::INSTR, TCPIP0::host::35555::SOCKET)")
        library = _text(t, "visa_library", where, "", max_len=512)
        if not _LIBRARY.match(library) or ".." in library:
            raise StationConfigError(f"{where}.visa_library: {_short(library)} is not a VISA library path "
                                     "(letters, digits, _ . / \\ : - and spaces, then ?key=value&... and "
                                     "@backend; no '..')")
        timeout = _number(t, "timeout", where, *TIMEOUT, "s", 10.0)
        cards = _cards(t, where, cls) if ROLE_MATRIX in cls.ROLES else None
        if cards is None and "cards" in t:
            raise StationConfigError(f"{where}.cards: only a switch matrix has cards; {driver} is not one")
        instruments[name] = InstrumentEntry(name, driver, resource, library, timeout, cards)
    _masters(instruments)
    _same_bench(instruments)
    addresses: dict[tuple[str, str], str] = {}
    for name, e in instruments.items():
        if e.tsplink is not None:
            continue
        key = (e.visa_library, canonical_resource(e.resource))
        if key in addresses:
            raise StationConfigError(f"instruments.{name}.resource: {e.resource} is already instruments."
                                     f"{addresses[key]}'s address")
        addresses[key] = name
    return instruments


def _linked(t: dict[str, Any], name: str, driver: str, cls: Any) -> InstrumentEntry:
    """An instrument reached as a TSP-Link node: ``tsplink`` instead of ``resource``/``visa_library``/``timeout``
    (its master's session carries its commands); the master is checked once every entry is read."""
    where = f"instruments.{name}"
    extra = sorted({"resource", "visa_library", "timeout"} & set(t))
    if extra:
        raise StationConfigError(f"{where}: {', '.join(extra)} and tsplink exclude each other (a TSP-Link node is "
                                 "reached through its master's session)")
    if not getattr(cls, "TSPLINK_NODE", False):
        raise StationConfigError(f"{where}.tsplink: the {driver} driver cannot be reached as a TSP-Link node")
    link = _get(t, "tsplink", dict, where)
    _no_extra(link, {"master", "node"}, f"{where}.tsplink")
    master = _text(link, "master", f"{where}.tsplink", max_len=32)
    node = _integer(link, "node", f"{where}.tsplink", 1, 64)
    cards = _cards(t, where, cls) if ROLE_MATRIX in cls.ROLES else None
    return InstrumentEntry(name, driver, "", "", 10.0, cards, TspLink(master, node))


def _masters(instruments: dict[str, InstrumentEntry]) -> None:
    """Each ``tsplink.master`` names another instrument of the file that has its own session and can be a TSP-Link
    master; node numbers are unique per master. A linked entry takes its master's VISA library and timeout."""
    nodes: dict[tuple[str, int], str] = {}
    for name, e in list(instruments.items()):
        if e.tsplink is None:
            continue
        where = f"instruments.{name}.tsplink"
        master = instruments.get(e.tsplink.master)
        if master is None or master.tsplink is not None or master.name == name:
            raise StationConfigError(f"{where}.master: {_short(e.tsplink.master)} is not an instrument of this file "
                                     "with its own session; allowed: " + str(sorted(
                                         n for n, m in instruments.items() if m.tsplink is None and n != name)))
        if not getattr(driver_class(master.driver), "TSPLINK_MASTER", False):
            raise StationConfigError(f"{where}.master: the {master.driver} driver cannot be a TSP-Link master")
        key = (master.name, e.tsplink.node)
        if key in nodes:
            raise StationConfigError(f"{where}.node: {e.tsplink.node} is already instruments.{nodes[key]}'s node")
        nodes[key] = name
        instruments[name] = dataclasses.replace(e, visa_library=master.visa_library, timeout=master.timeout)


def _cards(t: dict[str, Any], where: str, cls: Any) -> dict[int, str]:
    """``cards = { 1 = "7174A", ... }`` of a matrix, checked against the driver's slots and card models."""
    spec = cls.MATRIX
    table = _get(t, "cards", dict, where)
    if not table:
        raise StationConfigError(f"{where}.cards: at least one card is required")
    cards: dict[int, str] = {}
    for slot, model in table.items():
        if not str(slot).isdigit() or int(slot) not in spec.slots:
            raise StationConfigError(f"{where}.cards: slot {_short(slot, 10)} does not exist; allowed: "
                                     f"{list(spec.slots)}")
        if not isinstance(model, str) or model not in spec.cards:
            raise StationConfigError(f"{where}.cards.{slot}: {_short(model)} is not a card this driver knows; "
                                     f"allowed: {sorted(spec.cards)}")
        cards[int(slot)] = model
    return cards


def _same_bench(instruments: dict[str, InstrumentEntry]) -> None:
    """Every instrument of a simulated station names the same simulated bench (one VISA library path)."""
    simulated = {n: e.visa_library for n, e in instruments.items() if e.visa_library.endswith(SIMULATED)}
    if not simulated:
        return
    first = next(iter(simulated))
    for name, e in instruments.items():
        if e.visa_library != simulated[first]:
            raise StationConfigError(
                f"instruments.{name}.visa_library: {e.visa_library!r} is not the simulated bench of instruments."
                f"{first} ({simulated[first]!r}); every instrument of a simulated station must be on the same bench "
                "(one visa_library for all)")


def _wiring(w: dict[str, Any], instruments: dict[str, InstrumentEntry], rows: int, cols: int,
            source_lines: str) -> Wiring:
    _no_extra(w, {"bit_line", "word_line", "rows", "lines"}, "wiring")
    channels = {f"{n}.{c}" for n, e in instruments.items() if ROLE_SMU in e.roles
                for c in driver_class(e.driver).SMU.channels}
    for key in ("bit_line", "word_line"):
        value = _text(w, key, "wiring")
        if value not in channels:
            raise StationConfigError(f"wiring.{key}: {_short(value)} is not an SMU channel; allowed: "
                                     f"{sorted(channels)}")
    if w["bit_line"] == w["word_line"]:
        raise StationConfigError("wiring: bit_line and word_line must be different SMU channels")
    matrices = {n: e for n, e in instruments.items() if ROLE_MATRIX in e.roles}
    rows_t = _get(w, "rows", dict, "wiring")
    _no_extra(rows_t, set(matrices), "wiring.rows")
    terminal_rows: dict[str, dict[str, int]] = {}
    row_names: dict[str, dict[str, str]] = {}
    for m, table in rows_t.items():
        where = f"wiring.rows.{m}"
        if not isinstance(table, dict):
            raise StationConfigError(f"{where}: expected a table like {{ bit_line = ..., word_line = ..., "
                                     f"ground = ... }}, got {_short(table)}")
        _no_extra(table, set(TERMINAL_OF_LINE.values()), where)
        spec = driver_class(matrices[m].driver).MATRIX
        geometries = [spec.cards[c] for c in (matrices[m].cards or {}).values()]
        terminal_rows[m], row_names[m] = {}, {}
        for terminal, row in table.items():
            if not isinstance(row, str | int) or isinstance(row, bool):
                raise StationConfigError(f"{where}.{terminal}: expected a row name, got {_short(row)}")
            numbers = {g.row_number(str(row)) for g in geometries}
            if None in numbers or len(numbers) != 1:
                allowed = sorted({n for g in geometries for n in g.row_names}, key=lambda r: (len(r), r))
                raise StationConfigError(f"{where}.{terminal}: row {_short(row)} is not a row of every card in "
                                         f"{m}; allowed: {allowed}")
            terminal_rows[m][terminal] = numbers.pop()
            row_names[m][terminal] = str(row)
        if len(set(terminal_rows[m].values())) != len(terminal_rows[m]):
            raise StationConfigError(f"{where}: each terminal needs its own matrix row, got {table}")
    lines_t = _get(w, "lines", dict, "wiring")
    _no_extra(lines_t, set(LINES), "wiring.lines")
    counts = {"WL": rows, "BL": cols, "SL": rows if source_lines == "rows" else cols}
    ports: dict[str, tuple[LinePort, ...]] = {}
    used: dict[tuple[str, int, int], str] = {}
    for line, count in counts.items():
        where = f"wiring.lines.{line}"
        value = _raw(lines_t, line, "wiring.lines")
        segments = [value] if isinstance(value, str) else value
        if not isinstance(segments, list) or not segments or not all(isinstance(x, str) for x in segments):
            raise StationConfigError(f"{where}: expected '<matrix>:<card>:<first>-<last>' or a list of them, got "
                                     f"{_short(value)}")
        out: list[LinePort] = []
        for k, seg in enumerate(segments):
            at = where if isinstance(value, str) else f"{where}[{k}]"
            out += _segment(seg, at, matrices, terminal_rows, TERMINAL_OF_LINE[line])
        if len(out) != count:
            size = "rows" if line == "WL" or source_lines == "rows" and line == "SL" else "cols"
            raise StationConfigError(f"{where}: {len(out)} columns for the array's {count} {line} lines "
                                     f"(array.{size} = {count})")
        for index, port in enumerate(out):
            key = (port.matrix, port.card, port.column)
            name = f"{line}{index + 1}"
            if key in used:
                raise StationConfigError(f"{where}: {name} and {used[key]} share {port.matrix} card {port.card} "
                                         f"column {port.column}; each array line needs its own matrix column")
            used[key] = name
        ports[line] = tuple(out)
    array = ArrayWiring(rows, cols, source_lines, ports, terminal_rows)
    return Wiring(w["bit_line"], w["word_line"], row_names, array)


def _segment(seg: str, where: str, matrices: dict[str, InstrumentEntry], terminal_rows: dict[str, dict[str, int]],
             terminal: str) -> list[LinePort]:
    """``"<matrix>:<card>:<first>-<last>"`` → one port per column, checked against the card's geometry."""
    m = _SEGMENT.match(seg.strip())
    if not m:
        raise StationConfigError(f"{where}: {_short(seg)} must look like '<matrix>:<card>:<first>-<last>', "
                                 "e.g. 'matrix:1:1-8'")
    matrix, card, first = m.group(1), int(m.group(2)), int(m.group(3))
    last = int(m.group(4) or first)
    if matrix not in matrices:
        raise StationConfigError(f"{where}: {_short(matrix)} is not a switch matrix of the station; allowed: "
                                 f"{sorted(matrices)}")
    cards = matrices[matrix].cards or {}
    if card not in cards:
        raise StationConfigError(f"{where}: {matrix} has no card in slot {card}; cards are in slots {sorted(cards)} "
                                 f"(instruments.{matrix}.cards)")
    geometry = driver_class(matrices[matrix].driver).MATRIX.cards[cards[card]]
    if not (1 <= first <= last <= geometry.columns):
        raise StationConfigError(f"{where}: columns {first}-{last} on the {geometry.model} in {matrix} slot {card}; "
                                 f"allowed: 1-{geometry.columns}, first <= last")
    if terminal not in terminal_rows.get(matrix, {}):
        raise StationConfigError(f"{where}: lines on {matrix} need a {terminal} row (wiring.rows.{matrix}.{terminal})")
    return [LinePort(matrix, card, c) for c in range(first, last + 1)]


def _safety(s: dict[str, Any], specs: dict[str, SMUSpec]) -> SafetyEnvelope:
    """The safety envelope; each bound also within what the terminal's SMU can do (``specs``)."""
    _no_extra(s, {"max_voltage", "current_limit", "max_pulse_width", "min_pulse_width", "max_pulse_energy",
                  "max_forming_attempts", "max_pulses_per_cell", "g_max", "temperature_c"}, "safety")
    mv = _get(s, "max_voltage", dict, "safety")
    cl = _get(s, "current_limit", dict, "safety")
    _no_extra(mv, set(TERMINALS), "safety.max_voltage")
    _no_extra(cl, set(TERMINALS), "safety.current_limit")
    bl = specs["bit_line"]
    # bounds for ReRAM arrays: a value outside them is a unit mistake (or beyond what the SMU can do)
    env = SafetyEnvelope(
        max_voltage={t: _number(mv, t, "safety.max_voltage", 0.01, min(20.0, specs[t].max_voltage), "V",
                                note=f"the {t} SMU" if specs[t].max_voltage < 20.0 else "")
                     for t in TERMINALS},
        current_limit={t: _number(cl, t, "safety.current_limit", specs[t].current_limit[0],
                                  min(0.1, specs[t].current_limit[1]), "A", note=f"the {t} SMU's limit range")
                       for t in TERMINALS},
        min_current_limit={t: specs[t].current_limit[0] for t in TERMINALS},
        nplc=(float(bl.nplc[0]), float(bl.nplc[1])),
        max_pulse_width=_number(s, "max_pulse_width", "safety", 0, min(1.0, bl.pulse_width[1]), "s", lo_open=True),
        min_pulse_width=_number(s, "min_pulse_width", "safety", bl.pulse_width[0], 1.0, "s", bl.pulse_width[0],
                                note="the bit-line SMU's shortest pulse"),
        max_pulse_energy=_number(s, "max_pulse_energy", "safety", 1e-15, 1.0, "J", math.inf),
        max_forming_attempts=_integer(s, "max_forming_attempts", "safety", 1, 100, 3),
        max_pulses_per_cell=_integer(s, "max_pulses_per_cell", "safety", 1, 10**12, 1_000_000),
        g_max=_number(s, "g_max", "safety", 1e-9, 0.1, "S", 150e-6),
        temperature_c=_temperature_range(s))
    if env.min_pulse_width > env.max_pulse_width:
        raise StationConfigError(f"safety.max_pulse_width: {env.max_pulse_width} s is below safety.min_pulse_width "
                                 f"= {env.min_pulse_width} s")
    return env


def _temperature_range(s: dict[str, Any]) -> tuple[float, float] | None:
    """safety.temperature_c = [low, high] (°C): the chuck set-points a recipe may ask for; unset: none."""
    value = s.get("temperature_c")
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                                 and math.isfinite(v) for v in value)):
        raise StationConfigError(f"safety.temperature_c: [low, high] in °C, e.g. [-40, 200], got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not -273.15 < lo <= hi <= 600.0:
        raise StationConfigError(f"safety.temperature_c: need -273.15 < low <= high <= 600 °C, got {value!r}")
    return lo, hi


DEFAULT_STATION = "sim_2636b_707b"
_EXAMPLE = re.compile(r"^(sim|lab)_[a-z0-9_]+$")


def example_stations() -> list[str]:
    """Names of the station files shipped in ``examples/`` (``sim_<bench>``: on the shipped simulated bench
    ``<bench>``; ``lab_*``: templates for real benches)."""
    folder = resources.files("rramlab.examples")
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml") and _EXAMPLE.match(f.name[:-5]))


def example_station_text(name: str) -> str:
    """The text of shipped station file ``name`` (e.g. ``sim_2636b_707b``)."""
    if not _EXAMPLE.match(name) or name not in example_stations():
        raise StationConfigError(f"{name}: no such station file, and no shipped example of that name; shipped: "
                                 f"{example_stations()}")
    return resources.files("rramlab.examples").joinpath(f"{name}.toml").read_text(encoding="utf-8")


def default_station_text() -> str:
    return example_station_text(DEFAULT_STATION)


def load_station_config(path: str | Path | None = None) -> StationConfig:
    """A station file, a shipped example by name (``sim_2450x2_b2200a``), or the default simulated station
    (``sim_2636b_707b``) when ``path`` is None."""
    if path is None:
        return parse_station_config(default_station_text(), f"{DEFAULT_STATION}.toml")
    p = Path(path)
    if not p.exists() and _EXAMPLE.match(str(path)):
        return parse_station_config(example_station_text(str(path)), f"{path}.toml")
    return parse_station_config(read_text_file(p, StationConfigError, "station file"), str(p))


def parse_toml(text: str, source: str, error: type[Exception]) -> dict[str, Any]:
    """The TOML document ``text``, or ``error`` naming ``source`` (invalid or nested too deeply)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{source}: not valid TOML: {e}") from None
    except RecursionError:
        raise error(f"{source}: not valid TOML: nested too deeply") from None


def read_text_file(p: Path, error: type[Exception] = StationConfigError, what: str = "file") -> str:
    """A UTF-8 (TOML) text file of at most MAX_FILE_BYTES, with or without BOM; ``error`` naming the file if
    it is missing, a directory, too large, not text or cannot be read."""
    try:
        if not p.exists():
            raise error(f"{p}: no such {what}")
        if p.is_dir():
            raise error(f"{p}: is a directory; give a {what}")
        if not p.is_file():
            raise error(f"{p}: not a regular file")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise error(f"{p}: {size} bytes; a {what} is at most 1 MiB ({MAX_FILE_BYTES} bytes)")
        with p.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise error(f"{p}: more than {MAX_FILE_BYTES} bytes; a {what} is at most 1 MiB")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{p}: not a UTF-8 text (TOML) file") from None
    except OSError as e:
        raise error(f"{p}: cannot read: {e.strerror or e}") from None
