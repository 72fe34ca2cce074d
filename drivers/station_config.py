"""Station file (TOML): instruments, wiring, array geometry, read conditions and the safety envelope.

``load_station_config`` validates every key, each number against a physically meaningful range (a value
outside is taken for a unit mistake); an error starts with the file, names the key and says what is
allowed, e.g. ``my_station.toml: read.nplc: must be within [0.001, 25] PLC, got 1000.0``. Files are
UTF-8 (with or without BOM) and at most 1 MiB.
See ``examples/station_lab_2636b_707b.toml`` for a commented file for a real bench and
``default_station.toml`` (shipped) for the simulated bench.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DRIVERS = ("keithley2636b", "keithley707b", "rramlab_bench_controller")
TERMINALS = ("bit_line", "word_line")
_RESOURCE = re.compile(r"^(GPIB\d*::\d+(::\d+)?|TCPIP\d*::[A-Za-z0-9_.\-]+::[A-Za-z0-9_.\-]+|"
                       r"USB\d*::0x[0-9A-Fa-f]+::0x[0-9A-Fa-f]+::[A-Za-z0-9_.\-]+|ASRL[A-Za-z0-9/_.\-]+)::INSTR$")
_SLOT_COLUMNS = re.compile(r"^([1-6]):(\d{1,2})-(\d{1,2})$")
# a path (no shell metacharacters), an optional ?key=value&... query, an optional @backend
_LIBRARY = re.compile(r"^[A-Za-z0-9_./\\: \-]*(\?[A-Za-z0-9_.=&:/\-]*)?(@[A-Za-z0-9_]+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,31}$")
MAX_FILE_BYTES = 1 << 20                  # a station or recipe file larger than 1 MiB is refused unread
MAX_INSTRUMENTS = 16
TIMEOUT = (1e-3, 3600.0)                  # s, VISA I/O timeout
NPLC = (0.001, 25)                        # PLC, the 2636B's integration range
MIN_CURRENT_LIMIT = 1e-10                 # A, the 2636B's smallest current limit
MIN_PULSE_WIDTH = 1e-6                    # s, the 2636B's trigger-timer resolution


class StationConfigError(ValueError):
    """A station file that cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class InstrumentEntry:
    """One ``[instruments.<name>]`` table."""

    name: str
    driver: str                               # one of DRIVERS
    resource: str                             # VISA address, e.g. GPIB0::26::INSTR
    visa_library: str = ""                    # "" = the system VISA; "@rramlab" = the simulated bench
    timeout: float = 10.0                     # VISA I/O timeout (s)


@dataclass(frozen=True)
class SafetyEnvelope:
    """Limits checked before anything is sent (V, A, s, J)."""

    max_voltage: dict[str, float]            # per terminal: bit_line, word_line
    current_limit: dict[str, float]          # mandatory source current limit per terminal
    max_pulse_width: float
    min_pulse_width: float = 1e-6
    max_pulse_energy: float = math.inf       # V²·G·t bound at the array's maximum conductance
    max_forming_attempts: int = 3
    max_pulses_per_cell: int = 1_000_000
    g_max: float = 150e-6                    # conductance assumed for energy bounds (S)

    # Each check returns None when the value is allowed, else what is allowed (for an error message).
    def voltage_violation(self, terminal: str, value: float) -> str | None:
        """Source voltage ``value`` (V) on ``terminal`` ("bit_line" | "word_line")."""
        limit = self.max_voltage[terminal]
        if math.isfinite(value) and abs(value) <= limit:
            return None
        return f"within [-{limit}, {limit}] V on the {terminal} (safety.max_voltage.{terminal})"

    def limit_violation(self, terminal: str, value: float | None) -> str | None:
        """Source current limit ``value`` (A) on ``terminal``; None (no limit) is never allowed."""
        cap = self.current_limit[terminal]
        if value is not None and math.isfinite(value) and MIN_CURRENT_LIMIT <= value <= cap:
            return None
        return f"within [{MIN_CURRENT_LIMIT}, {cap}] A on the {terminal} (safety.current_limit.{terminal})"

    def width_violation(self, width: float) -> str | None:
        """Pulse width ``width`` (s)."""
        if math.isfinite(width) and self.min_pulse_width <= width <= self.max_pulse_width:
            return None
        return f"within [{self.min_pulse_width}, {self.max_pulse_width}] s (safety.min/max_pulse_width)"

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
    matrix: str                               # instrument name of the switch matrix
    matrix_rows: dict[str, str]               # terminal ("bit_line" | "word_line" | "ground") -> row letter
    pads: dict[str, tuple[int, int, int]]     # "WL" | "BL" | "SL" -> (slot, first column, last column)


@dataclass(frozen=True)
class StationConfig:
    name: str
    instruments: dict[str, InstrumentEntry]
    clock: str                                # "system" or the name of a bench-controller instrument
    rows: int
    cols: int
    topology: str
    source_lines: str
    wiring: Wiring
    read: ReadConditions
    safety: SafetyEnvelope
    text: str = ""
    source: str = ""

    def crosspoints(self, row: int, col: int) -> tuple[str, str, str]:
        """Matrix crosspoints (gate, bit line, source line) that reach cell (row, col), 0-based."""
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise ValueError(f"cell ({row}, {col}) outside the {self.rows}x{self.cols} array")
        w = self.wiring
        sl_index = row if self.source_lines == "rows" else col

        def point(line: str, index: int, terminal: str) -> str:
            slot, first, _ = w.pads[line]
            return f"{slot}{w.matrix_rows[terminal]}{first + index:02d}"
        return point("WL", row, "word_line"), point("BL", col, "bit_line"), point("SL", sl_index, "ground")


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
    _no_extra(data, {"station", "instruments", "clock", "array", "wiring", "read", "safety"}, "")
    st = _get(data, "station", dict, "")
    _no_extra(st, {"name"}, "station")
    name = _text(st, "name", "station")
    instruments = _instruments(_get(data, "instruments", dict, ""))

    ck = _get(data, "clock", dict, "", {"source": "system"})
    _no_extra(ck, {"source"}, "clock")
    clock = _text(ck, "source", "clock", "system")
    if clock != "system" and (clock not in instruments or instruments[clock].driver != "rramlab_bench_controller"):
        raise StationConfigError(f"clock.source: {_short(clock)} must be 'system' or the name of a "
                                 "rramlab_bench_controller instrument")

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
    safety = _safety(_get(data, "safety", dict, ""))
    rd = _get(data, "read", dict, "", {})
    _no_extra(rd, {"voltage", "gate_voltage", "nplc"}, "read")
    mv = safety.max_voltage
    read = ReadConditions(
        voltage=_number(rd, "voltage", "read", 1e-3, mv["bit_line"], "V", 0.2, note="safety.max_voltage.bit_line"),
        gate_voltage=_number(rd, "gate_voltage", "read", 0.1, mv["word_line"], "V", 3.3,
                             note="safety.max_voltage.word_line"),
        nplc=_number(rd, "nplc", "read", *NPLC, "PLC", 1.0))
    return StationConfig(name=name, instruments=instruments, clock=clock, rows=rows, cols=cols, topology=topology,
                         source_lines=source_lines, wiring=wiring, read=read, safety=safety, text=text,
                         source=source)


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
        _no_extra(t, {"driver", "resource", "visa_library", "timeout"}, where)
        driver = _text(t, "driver", where)
        if driver not in DRIVERS:
            raise StationConfigError(f"{where}.driver: {_short(driver)} unknown; allowed: {list(DRIVERS)}")
        resource = _text(t, "resource", where, max_len=256)
        if not _RESOURCE.match(resource) or ".." in resource:
            raise StationConfigError(f"{where}.resource: {_short(resource)} is not a VISA INSTR address "
                                     "(e.g. GPIB0::26::INSTR, TCPIP0::host::inst0::INSTR)")
        library = _text(t, "visa_library", where, "", max_len=512)
        if not _LIBRARY.match(library) or ".." in library:
            raise StationConfigError(f"{where}.visa_library: {_short(library)} is not a VISA library path "
                                     "(letters, digits, _ . / \\ : - and spaces, then ?key=value&... and "
                                     "@backend; no '..')")
        timeout = _number(t, "timeout", where, *TIMEOUT, "s", 10.0)
        instruments[name] = InstrumentEntry(name, driver, resource, library, timeout)
    return instruments


def _wiring(w: dict[str, Any], instruments: dict[str, InstrumentEntry], rows: int, cols: int,
            source_lines: str) -> Wiring:
    _no_extra(w, {"bit_line", "word_line", "matrix", "matrix_rows", "pads"}, "wiring")
    channels = {f"{n}.{c}" for n, e in instruments.items() if e.driver == "keithley2636b" for c in "ab"}
    for key in ("bit_line", "word_line"):
        value = _text(w, key, "wiring")
        if value not in channels:
            raise StationConfigError(f"wiring.{key}: {_short(value)} is not an SMU channel; allowed: "
                                     f"{sorted(channels)}")
    if w["bit_line"] == w["word_line"]:
        raise StationConfigError("wiring: bit_line and word_line must be different SMU channels")
    matrix = _text(w, "matrix", "wiring")
    if matrix not in instruments or instruments[matrix].driver != "keithley707b":
        raise StationConfigError(f"wiring.matrix: {_short(matrix)} must name a keithley707b instrument")
    mrows = _get(w, "matrix_rows", dict, "wiring")
    _no_extra(mrows, {"bit_line", "word_line", "ground"}, "wiring.matrix_rows")
    for key in ("bit_line", "word_line", "ground"):
        letter = _text(mrows, key, "wiring.matrix_rows")
        if not re.fullmatch(r"[A-H]", letter):
            raise StationConfigError(f"wiring.matrix_rows.{key}: {_short(letter)} must be a row letter A..H")
    if len(set(mrows.values())) != 3:
        raise StationConfigError("wiring.matrix_rows: bit_line, word_line and ground need three different rows")
    pads_t = _get(w, "pads", dict, "wiring")
    _no_extra(pads_t, {"WL", "BL", "SL"}, "wiring.pads")
    counts = {"WL": rows, "BL": cols, "SL": rows if source_lines == "rows" else cols}
    pads: dict[str, tuple[int, int, int]] = {}
    for line, count in counts.items():
        spec = _text(pads_t, line, "wiring.pads")
        m = _SLOT_COLUMNS.match(spec)
        if not m:
            raise StationConfigError(f"wiring.pads.{line}: {_short(spec)} must look like '<slot>:<first>-<last>' "
                                     "(slot 1-6, columns 1-99), e.g. '1:1-8'")
        slot, first, last = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if last - first + 1 != count or first < 1:
            raise StationConfigError(f"wiring.pads.{line}: {spec!r} spans {last - first + 1} columns, "
                                     f"the array has {count} {line} lines")
        pads[line] = (slot, first, last)
    used = [(s, c) for s, a, b in pads.values() for c in range(a, b + 1)]
    if len(used) != len(set(used)):
        raise StationConfigError("wiring.pads: two array lines share a matrix column")
    return Wiring(w["bit_line"], w["word_line"], matrix, dict(mrows), pads)


def _safety(s: dict[str, Any]) -> SafetyEnvelope:
    _no_extra(s, {"max_voltage", "current_limit", "max_pulse_width", "min_pulse_width", "max_pulse_energy",
                  "max_forming_attempts", "max_pulses_per_cell", "g_max"}, "safety")
    mv = _get(s, "max_voltage", dict, "safety")
    cl = _get(s, "current_limit", dict, "safety")
    _no_extra(mv, set(TERMINALS), "safety.max_voltage")
    _no_extra(cl, set(TERMINALS), "safety.current_limit")
    # bounds for ReRAM arrays on a 2636B: a value outside them is a unit mistake, not a setting
    env = SafetyEnvelope(
        max_voltage={t: _number(mv, t, "safety.max_voltage", 0.01, 20.0, "V") for t in TERMINALS},
        current_limit={t: _number(cl, t, "safety.current_limit", MIN_CURRENT_LIMIT, 0.1, "A") for t in TERMINALS},
        max_pulse_width=_number(s, "max_pulse_width", "safety", 0, 1.0, "s", lo_open=True),
        min_pulse_width=_number(s, "min_pulse_width", "safety", MIN_PULSE_WIDTH, 1.0, "s", MIN_PULSE_WIDTH),
        max_pulse_energy=_number(s, "max_pulse_energy", "safety", 1e-15, 1.0, "J", math.inf),
        max_forming_attempts=_integer(s, "max_forming_attempts", "safety", 1, 100, 3),
        max_pulses_per_cell=_integer(s, "max_pulses_per_cell", "safety", 1, 10**12, 1_000_000),
        g_max=_number(s, "g_max", "safety", 1e-9, 0.1, "S", 150e-6))
    if env.min_pulse_width > env.max_pulse_width:
        raise StationConfigError(f"safety.max_pulse_width: {env.max_pulse_width} s is below safety.min_pulse_width "
                                 f"= {env.min_pulse_width} s")
    return env


def default_station_text() -> str:
    return resources.files(__package__).joinpath("default_station.toml").read_text(encoding="utf-8")


def load_station_config(path: str | Path | None = None) -> StationConfig:
    """A station file, or the default simulated station when ``path`` is None."""
    if path is None:
        return parse_station_config(default_station_text(), "default_station.toml")
    p = Path(path)
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
