"""Station file (TOML): instruments, wiring, array geometry, read conditions and the safety envelope.

``load_station_config`` validates every key; an error names the key and says what is allowed.
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
_SLOT_COLUMNS = re.compile(r"^([1-6]):(\d+)-(\d+)$")
_LIBRARY = re.compile(r"^[A-Za-z0-9_./\\:\- ?=&]*(@[A-Za-z0-9_]+)?$")


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
        if value is not None and math.isfinite(value) and 0 < value <= cap:
            return None
        return f"within (0, {cap}] A on the {terminal} (safety.current_limit.{terminal})"

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


def _get(t: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    if key not in t:
        if default is ...:
            raise StationConfigError(f"{where}.{key}: missing (required)")
        return default
    value = t[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise StationConfigError(f"{where}.{key}: expected {names}, got {value!r}")
    return value


def _positive(t: dict[str, Any], key: str, where: str, default: Any = ...) -> float:
    value = float(_get(t, key, (int, float), where, default))
    if not math.isfinite(value) or value <= 0:
        raise StationConfigError(f"{where}.{key}: must be a finite number > 0, got {value!r}")
    return value


def _within(t: dict[str, Any], key: str, where: str, lo: float, hi: float, unit: str, default: Any = ...) -> float:
    """A number in (lo, hi] (lo exclusive: every bound here must be positive)."""
    value = float(_get(t, key, (int, float), where, default))
    if not (math.isfinite(value) or value == math.inf == hi) or not lo < value <= hi:
        raise StationConfigError(f"{where}.{key}: must be within ({lo}, {hi}] {unit}, got {value!r}")
    return value


def _no_extra(t: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(t) - allowed)
    if extra:
        raise StationConfigError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}")


def parse_station_config(text: str, source: str = "<text>") -> StationConfig:
    """Validate a station file's text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StationConfigError(f"{source}: not valid TOML: {e}") from None
    _no_extra(data, {"station", "instruments", "clock", "array", "wiring", "read", "safety"}, "station file")
    st = _get(data, "station", dict, "station file")
    _no_extra(st, {"name"}, "station")
    instruments: dict[str, InstrumentEntry] = {}
    for name, t in _get(data, "instruments", dict, "station file").items():
        where = f"instruments.{name}"
        if not isinstance(t, dict):
            raise StationConfigError(f"{where}: expected a table")
        _no_extra(t, {"driver", "resource", "visa_library", "timeout"}, where)
        driver = _get(t, "driver", str, where)
        if driver not in DRIVERS:
            raise StationConfigError(f"{where}.driver: {driver!r} unknown; allowed: {list(DRIVERS)}")
        resource = _get(t, "resource", str, where)
        if not _RESOURCE.match(resource):
            raise StationConfigError(f"{where}.resource: {resource!r} is not a VISA INSTR address "
                                     "(e.g. GPIB0::26::INSTR, TCPIP0::host::inst0::INSTR)")
        library = _get(t, "visa_library", str, where, "")
        if not _LIBRARY.match(library) or ".." in library:
            raise StationConfigError(f"{where}.visa_library: {library!r} is not a VISA library path")
        instruments[name] = InstrumentEntry(name, driver, resource, library, _positive(t, "timeout", where, 10.0))
    if not instruments:
        raise StationConfigError("instruments: at least one instrument is required")

    ck = _get(data, "clock", dict, "station file", {"source": "system"})
    _no_extra(ck, {"source"}, "clock")
    clock = _get(ck, "source", str, "clock", "system")
    if clock != "system" and (clock not in instruments or instruments[clock].driver != "rramlab_bench_controller"):
        raise StationConfigError(f"clock.source: {clock!r} must be 'system' or the name of a "
                                 "rramlab_bench_controller instrument")

    ar = _get(data, "array", dict, "station file")
    _no_extra(ar, {"topology", "rows", "cols", "source_lines"}, "array")
    topology = _get(ar, "topology", str, "array")
    if topology != "1T1R":
        raise StationConfigError(f"array.topology: {topology!r}; allowed: ['1T1R'] (passive crossbars later)")
    rows, cols = _get(ar, "rows", int, "array"), _get(ar, "cols", int, "array")
    if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
        raise StationConfigError(f"array.rows/cols: {rows}x{cols} outside 1..4096")
    source_lines = _get(ar, "source_lines", str, "array", "columns")
    if source_lines not in ("columns", "rows"):
        raise StationConfigError(f"array.source_lines: {source_lines!r}; allowed: ['columns', 'rows']")

    wiring = _wiring(_get(data, "wiring", dict, "station file"), instruments, rows, cols, source_lines)
    rd = _get(data, "read", dict, "station file", {})
    _no_extra(rd, {"voltage", "gate_voltage", "nplc"}, "read")
    read = ReadConditions(voltage=_positive(rd, "voltage", "read", 0.2),
                          gate_voltage=_positive(rd, "gate_voltage", "read", 3.3),
                          nplc=_positive(rd, "nplc", "read", 1.0))
    safety = _safety(_get(data, "safety", dict, "station file"))
    for terminal, v in (("bit_line", read.voltage), ("word_line", read.gate_voltage)):
        if v > safety.max_voltage[terminal]:
            raise StationConfigError(f"read: {v} V on the {terminal} exceeds safety.max_voltage.{terminal} "
                                     f"= {safety.max_voltage[terminal]} V")
    return StationConfig(name=_get(st, "name", str, "station"), instruments=instruments, clock=clock,
                         rows=rows, cols=cols, topology=topology, source_lines=source_lines, wiring=wiring,
                         read=read, safety=safety, text=text, source=source)


def _wiring(w: dict[str, Any], instruments: dict[str, InstrumentEntry], rows: int, cols: int,
            source_lines: str) -> Wiring:
    _no_extra(w, {"bit_line", "word_line", "matrix", "matrix_rows", "pads"}, "wiring")
    channels = {f"{n}.{c}" for n, e in instruments.items() if e.driver == "keithley2636b" for c in "ab"}
    for key in ("bit_line", "word_line"):
        value = _get(w, key, str, "wiring")
        if value not in channels:
            raise StationConfigError(f"wiring.{key}: {value!r} is not an SMU channel; allowed: {sorted(channels)}")
    if w["bit_line"] == w["word_line"]:
        raise StationConfigError("wiring: bit_line and word_line must be different SMU channels")
    matrix = _get(w, "matrix", str, "wiring")
    if matrix not in instruments or instruments[matrix].driver != "keithley707b":
        raise StationConfigError(f"wiring.matrix: {matrix!r} must name a keithley707b instrument")
    mrows = _get(w, "matrix_rows", dict, "wiring")
    _no_extra(mrows, {"bit_line", "word_line", "ground"}, "wiring.matrix_rows")
    for key in ("bit_line", "word_line", "ground"):
        letter = _get(mrows, key, str, "wiring.matrix_rows")
        if not re.fullmatch(r"[A-H]", letter):
            raise StationConfigError(f"wiring.matrix_rows.{key}: {letter!r} must be a row letter A..H")
    if len(set(mrows.values())) != 3:
        raise StationConfigError("wiring.matrix_rows: bit_line, word_line and ground need three different rows")
    pads_t = _get(w, "pads", dict, "wiring")
    _no_extra(pads_t, {"WL", "BL", "SL"}, "wiring.pads")
    counts = {"WL": rows, "BL": cols, "SL": rows if source_lines == "rows" else cols}
    pads: dict[str, tuple[int, int, int]] = {}
    for line, count in counts.items():
        spec = _get(pads_t, line, str, "wiring.pads")
        m = _SLOT_COLUMNS.match(spec)
        if not m:
            raise StationConfigError(f"wiring.pads.{line}: {spec!r} must look like '<slot>:<first>-<last>', "
                                     "e.g. '1:1-8'")
        slot, first, last = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if last - first + 1 != count or first < 1 or last > 99:
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
    for table in (mv, cl):
        _no_extra(table, set(TERMINALS), f"safety.{'max_voltage' if table is mv else 'current_limit'}")
    # bounds for ReRAM arrays on a 2636B: a value outside them is a unit mistake, not a setting
    env = SafetyEnvelope(
        max_voltage={t: _within(mv, t, "safety.max_voltage", 0, 20.0, "V") for t in TERMINALS},
        current_limit={t: _within(cl, t, "safety.current_limit", 0, 0.1, "A") for t in TERMINALS},
        max_pulse_width=_within(s, "max_pulse_width", "safety", 0, 1.0, "s"),
        min_pulse_width=_within(s, "min_pulse_width", "safety", 0, 1.0, "s", 1e-6),
        max_pulse_energy=_within(s, "max_pulse_energy", "safety", 0, math.inf, "J", math.inf),
        max_forming_attempts=int(_get(s, "max_forming_attempts", int, "safety", 3)),
        max_pulses_per_cell=int(_get(s, "max_pulses_per_cell", int, "safety", 1_000_000)),
        g_max=_within(s, "g_max", "safety", 0, 1.0, "S", 150e-6))
    if env.max_pulses_per_cell < 1:
        raise StationConfigError(f"safety.max_pulses_per_cell: must be >= 1, got {env.max_pulses_per_cell}")
    if env.min_pulse_width > env.max_pulse_width:
        raise StationConfigError("safety: min_pulse_width is larger than max_pulse_width")
    if env.max_forming_attempts < 1:
        raise StationConfigError("safety.max_forming_attempts: must be >= 1")
    return env


def default_station_text() -> str:
    return resources.files(__package__).joinpath("default_station.toml").read_text(encoding="utf-8")


def load_station_config(path: str | Path | None = None) -> StationConfig:
    """A station file, or the default simulated station when ``path`` is None."""
    if path is None:
        return parse_station_config(default_station_text(), "default_station.toml")
    p = Path(path)
    if not p.is_file():
        raise StationConfigError(f"station file {str(p)!r} not found")
    return parse_station_config(read_text_file(p), str(p))


def read_text_file(p: Path, error: type[Exception] = StationConfigError) -> str:
    """A UTF-8 (TOML) text file; ``error`` (naming the file) if it is not text or cannot be read."""
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{p}: not a UTF-8 text (TOML) file") from None
    except OSError as e:
        raise error(f"{p}: cannot read: {e.strerror or e}") from None
