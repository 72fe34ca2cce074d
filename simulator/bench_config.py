"""Bench configuration: which instruments at which VISA addresses, the wiring, the die and the seed.

A bench file is TOML (see ``benches/2636b_707b.toml``, the default bench). ``load_bench_config`` validates every key and
names the offending key and the allowed values in its error message. A VISA library path selects a
bench file and may override a few keys in a query string::

    "@rramlab"                                  the default bench (shipped bench "2636b_707b")
    "2450x2_b2200a@rramlab"                     a shipped bench by name (:func:`shipped_benches`)
    "?seed=7&profile=realistic@rramlab"         default bench, other seed and defect profile
    "/lab/bench.toml?noise=0@rramlab"           a bench file, noise off

Overridable keys: seed, profile, noise, rows, cols, line_frequency, name, transcript (entries). Any other query key
(e.g. ``tag=…``) only makes the library path unique, which gives a fresh, independent bench.

``server=ADDRESS`` instead names a bench server (:mod:`.server`) whose bench outlives its clients::

    "?server=unix:/tmp/b.sock@rramlab"          the bench of that server (``label=…`` names this client)
    "?server=tcp:127.0.0.1:5025@rramlab"

The server's bench is configured by the server, so ``server=`` with a bench file or a bench key is refused.

``replay=FILE`` serves a recorded VISA transcript instead of a bench (:mod:`.replay`; ``tag=…`` only makes the
path unique)::

    "?replay=/lab/session.jsonl@rramlab"
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .device_params import WaferParameters
from .models import channels, models
from .wafer import KINDS, WaferConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONTROLLER = "TCPIP0::rramlab-bench::inst0::INSTR"
PROFILES = ("paper", "realistic", "hfo2")
_RANGE = re.compile(r"^([A-Za-z]+)(\d+)(?:-(\d+))?$")


BENCH_KEYS = ("seed", "profile", "noise", "rows", "cols", "line_frequency", "name", "transcript")
TRANSCRIPT_ENTRIES = 200_000     # default transcript bound: the last 200 000 messages, or the last ~24 MB of them


class BenchConfigError(ValueError):
    """A bench file or library path that cannot be used; the message names key and problem."""


@dataclass
class InstrumentConfig:
    name: str
    model: str
    resource: str
    serial: str
    firmware: str
    cards: dict[int, str] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    columns: dict[tuple[int, int], str] = field(default_factory=dict)
    tsplink_node: int | None = None     # TSP-Link node number: the TSP instruments that have one form a network
    options: dict[str, Any] = field(default_factory=dict)   # a prober's validated tables (model.OPTIONS: map, chuck)


DEFAULT_EPOCH_TEXT = "2025-01-01T00:00:00Z"


def _epoch(value: Any) -> float:
    """bench.epoch: an ISO 8601 UTC time (``2025-01-01T00:00:00Z``; a time zone offset is honoured) → s since 1970."""
    if not isinstance(value, str):
        raise BenchConfigError(f"bench.epoch: an ISO 8601 time such as {DEFAULT_EPOCH_TEXT!r}, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BenchConfigError(f"bench.epoch: an ISO 8601 time such as {DEFAULT_EPOCH_TEXT!r}, got {value!r}") \
            from None
    if t.tzinfo is None:
        raise BenchConfigError(f"bench.epoch: give the time zone (e.g. 'Z' for UTC), got {value!r}")
    return t.timestamp()


DEFAULT_EPOCH = _epoch(DEFAULT_EPOCH_TEXT)


def _temperature_c(value: Any) -> float:
    """bench.temperature_c: the die's (chuck's) temperature at t = 0, °C (a prober's chuck may change it later)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not -273.15 < value <= 1000.0:
        raise BenchConfigError(f"bench.temperature_c: a temperature in °C above -273.15 (e.g. 25.0 or 85), got "
                               f"{value!r}")
    return float(value)


@dataclass
class BenchConfig:
    name: str
    seed: int
    rows: int
    cols: int
    profile: str = "paper"
    noise: bool = True
    source_lines: str = "columns"
    line_frequency: float = 50.0
    epoch: float = DEFAULT_EPOCH             # UTC epoch (s since 1970) of simulated t = 0 (bench key epoch, ISO 8601)
    temperature_c: float = 25.0              # die temperature at t = 0, °C (bench key temperature_c; model: kelvin)
    transcript: int = TRANSCRIPT_ENTRIES     # entries kept (fewer when the messages are long; 0 = no transcript)
    device_overrides: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    controller: str = DEFAULT_CONTROLLER
    instruments: list[InstrumentConfig] = field(default_factory=list)
    source: str = ""
    wafer: WaferConfig | None = None         # [wafer]: a wafer of dies under a prober (None: one die, always touched)

    def pads(self) -> dict[str, int]:
        """Pad name → line number: WL1..WLrows, BL1..BLcols, SL1..SLn (n = cols or rows)."""
        n_sl = self.rows if self.source_lines == "rows" else self.cols
        out = {f"WL{i + 1}": i for i in range(self.rows)}
        out.update({f"BL{j + 1}": self.rows + j for j in range(self.cols)})
        out.update({f"SL{k + 1}": self.rows + self.cols + k for k in range(n_sl)})
        return out


def _need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise BenchConfigError(f"{where}.{key}: missing (required)")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BenchConfigError(f"{where}.{key}: expected {name}, got {value!r}")
    return value


def _transcript_limit(value: Any) -> int:
    """bench.transcript: true (:data:`TRANSCRIPT_ENTRIES`), false (none) or a number of entries."""
    if isinstance(value, bool):
        return TRANSCRIPT_ENTRIES if value else 0
    if isinstance(value, int) and value >= 0:
        return value
    raise BenchConfigError(f"bench.transcript must be true, false or a number of entries >= 0, got {value!r}")


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise BenchConfigError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}")


def _expand(spec: str, where: str) -> list[str]:
    """'WL1-8' → ['WL1', …, 'WL8']; '1-8' → ['1', …, '8']."""
    m = _RANGE.match(spec.strip()) or re.match(r"^()(\d+)(?:-(\d+))?$", spec.strip())
    if not m:
        raise BenchConfigError(f"{where}: cannot read {spec!r}; use e.g. 'WL1-8' or 'BL3'")
    prefix, a, b = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2))
    if b < a:
        raise BenchConfigError(f"{where}: range {spec!r} runs backwards")
    return [f"{prefix}{k}" for k in range(a, b + 1)]


def _instrument(t: dict[str, Any], index: int, pads: dict[str, int]) -> InstrumentConfig:
    where = f"instruments[{index}]"
    model = _need(t, "model", str, where)
    known = models()
    if model not in known:
        raise BenchConfigError(f"{where}.model: {model!r} is not emulated; allowed: {sorted(known)}")
    cls = known[model]
    options = set(getattr(cls, "OPTIONS", ()))          # instrument-specific tables (a prober's map, chuck)
    _unknown(t, {"name", "model", "resource", "serial", "firmware", "cards", "rows", "columns", "tsplink_node"}
             | options, where)
    inst = InstrumentConfig(name=_need(t, "name", str, where), model=model,
                            resource=_need(t, "resource", str, where),
                            serial=str(t.get("serial", "0000000")), firmware=str(t.get("firmware", "1.0.0")))
    if "tsplink_node" in t:
        node = _need(t, "tsplink_node", int, where)
        if not getattr(cls, "TSPLINK", False):
            raise BenchConfigError(f"{where}.tsplink_node: the {model} has no TSP-Link")
        if not 1 <= node <= 64:
            raise BenchConfigError(f"{where}.tsplink_node: {node} outside 1..64")
        inst.tsplink_node = node
    if options:
        try:
            inst.options = cls.options(t, where)
        except ValueError as e:
            raise BenchConfigError(str(e)) from None
    if cls.KIND != "matrix":
        extra = sorted({"cards", "rows", "columns"} & set(t))
        if extra:
            raise BenchConfigError(f"{where}: {extra} only apply to switch matrices; {model} is a {cls.KIND}")
        return inst
    slots, shapes = cls.SLOTS, cls.CARDS
    cards = _need(t, "cards", dict, where)
    for slot, card in cards.items():
        if not str(slot).isdigit() or int(slot) not in slots:
            raise BenchConfigError(f"{where}.cards: slot {slot!r} outside {min(slots)}..{max(slots)} of the {model}")
        if str(card) not in shapes:
            raise BenchConfigError(f"{where}.cards.{slot}: card {card!r} is not emulated for the {model}; "
                                   f"allowed: {sorted(shapes)}")
        inst.cards[int(slot)] = str(card)
    row_names = {r for c in inst.cards.values() for r in shapes[c].row_names}
    for row, term in _need(t, "rows", dict, where).items():
        if row not in row_names:
            raise BenchConfigError(f"{where}.rows: row {row!r} is not a row of the installed cards; allowed: "
                                   f"{sorted(row_names, key=lambda r: (len(r), r))}")
        inst.rows[row] = str(term)
    for key, value in _need(t, "columns", dict, where).items():
        slot_s, sep, cols_s = key.partition(":")
        if not sep or not slot_s.isdigit() or int(slot_s) not in inst.cards:
            raise BenchConfigError(f"{where}.columns: key {key!r} must be '<slot>:<columns>' with an "
                                   f"installed slot {sorted(inst.cards)}")
        cols = _expand(cols_s, f"{where}.columns[{key!r}]")
        width = shapes[inst.cards[int(slot_s)]].columns
        if any(not 1 <= int(c) <= width for c in cols):
            raise BenchConfigError(f"{where}.columns[{key!r}]: columns outside 1..{width} of the "
                                   f"{inst.cards[int(slot_s)]} card")
        names = _expand(str(value), f"{where}.columns[{key!r}]")
        if len(cols) != len(names):
            raise BenchConfigError(f"{where}.columns[{key!r}]: {len(cols)} columns but {len(names)} pads")
        for c, pad in zip(cols, names, strict=False):
            if pad not in pads:
                raise BenchConfigError(f"{where}.columns[{key!r}]: pad {pad!r} is not on the die "
                                       f"(pads: WL1..WL{sum(p.startswith('WL') for p in pads)}, BL…, SL…)")
            inst.columns[(int(slot_s), int(c))] = pad
    return inst


_WAFER_NUMBERS = {"diameter_mm": (10.0, 450.0), "die_width_um": (100.0, 1e5), "die_height_um": (100.0, 1e5),
                  "edge_exclusion_um": (0.0, 1e5)}


def _wafer(w: Any) -> WaferConfig:
    """``[wafer]``: geometry (diameter_mm, die_width_um, die_height_um, edge_exclusion_um), ``bad = { "c,r" =
    "short" | "open" | "high_defect" | "good" }`` and ``overrides`` of the wafer parameters."""
    if not isinstance(w, dict):
        raise BenchConfigError(f"wafer: expected a table, got {w!r}")
    _unknown(w, {*_WAFER_NUMBERS, "bad", "overrides"}, "wafer")
    numbers = {}
    for key, (lo, hi) in _WAFER_NUMBERS.items():
        if key in w:
            v = w[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise BenchConfigError(f"wafer.{key}: a number within [{lo}, {hi}], got {v!r}")
            numbers[key] = float(v)
    bad: dict[tuple[int, int], str] = {}
    for key, kind in dict(w.get("bad", {})).items():
        parts = str(key).split(",")
        if len(parts) != 2 or kind not in KINDS:
            raise BenchConfigError(f"wafer.bad: '\"col,row\" = kind' with kind in {list(KINDS)}, got {key!r} = "
                                   f"{kind!r}")
        try:
            bad[(int(parts[0]), int(parts[1]))] = str(kind)
        except ValueError:
            raise BenchConfigError(f"wafer.bad: die {key!r} must be two integers 'col,row'") from None
    overrides = dict(w.get("overrides", {}))
    known = {f.name for f in dataclasses.fields(WaferParameters)}
    if set(overrides) - known:
        raise BenchConfigError(f"wafer.overrides: unknown {sorted(set(overrides) - known)}; allowed: {sorted(known)}")
    try:
        WaferParameters(**overrides)
    except (TypeError, ValueError) as e:
        raise BenchConfigError(f"wafer.overrides: {e}") from None
    return WaferConfig(**numbers, bad=bad or None, overrides=overrides or None)


def parse_bench_config(data: dict[str, Any], source: str = "", overrides: dict[str, str] | None = None
                       ) -> BenchConfig:
    """Validate a parsed bench TOML document (plus library-path overrides)."""
    _unknown(data, {"bench", "die", "controller", "timing", "instruments", "wafer"}, "bench file")
    b = _need(data, "bench", dict, "bench file")
    _unknown(b, {"name", "seed", "line_frequency", "noise", "transcript", "epoch", "temperature_c"}, "bench")
    d = _need(data, "die", dict, "bench file")
    _unknown(d, {"rows", "cols", "profile", "noise", "source_lines", "overrides"}, "die")
    cfg = BenchConfig(name=str(b.get("name", "bench")), seed=_need(b, "seed", int, "bench"),
                      rows=_need(d, "rows", int, "die"), cols=_need(d, "cols", int, "die"),
                      profile=str(d.get("profile", "paper")), noise=bool(b.get("noise", d.get("noise", True))),
                      source_lines=str(d.get("source_lines", "columns")),
                      line_frequency=float(b.get("line_frequency", 50.0)),
                      epoch=_epoch(b.get("epoch", DEFAULT_EPOCH_TEXT)),
                      temperature_c=_temperature_c(b.get("temperature_c", 25.0)),
                      transcript=_transcript_limit(b.get("transcript", True)),
                      device_overrides=dict(d.get("overrides", {})),
                      timing={k: float(v) for k, v in data.get("timing", {}).items()},
                      controller=str(data.get("controller", {}).get("resource", DEFAULT_CONTROLLER)),
                      source=source, wafer=_wafer(data["wafer"]) if "wafer" in data else None)
    for key, value in (overrides or {}).items():
        if key == "seed":
            cfg.seed = _int(key, value)
        elif key in ("rows", "cols"):
            setattr(cfg, key, _int(key, value))
        elif key == "profile":
            cfg.profile = value
        elif key == "noise":
            cfg.noise = value.lower() not in ("0", "false", "off", "no")
        elif key == "line_frequency":
            cfg.line_frequency = float(value)
        elif key == "name":
            cfg.name = value
        elif key == "transcript":
            cfg.transcript = _transcript_limit(_int(key, value))
    if cfg.profile not in PROFILES:
        raise BenchConfigError(f"die.profile: {cfg.profile!r}; allowed: {list(PROFILES)}")
    if cfg.source_lines not in ("columns", "rows"):
        raise BenchConfigError(f"die.source_lines: {cfg.source_lines!r}; allowed: ['columns', 'rows']")
    if not (1 <= cfg.rows <= 1024 and 1 <= cfg.cols <= 1024):
        raise BenchConfigError(f"die.rows/cols: {cfg.rows}x{cfg.cols} outside 1..1024")
    if cfg.line_frequency not in (50.0, 60.0):
        raise BenchConfigError(f"bench.line_frequency: {cfg.line_frequency}; allowed: 50 or 60 Hz")
    pads = cfg.pads()
    instruments = data.get("instruments", [])
    if not isinstance(instruments, list) or not instruments:
        raise BenchConfigError("instruments: at least one [[instruments]] table is required")
    cfg.instruments = [_instrument(t, i, pads) for i, t in enumerate(instruments)]
    names = [i.name for i in cfg.instruments]
    resources_ = [i.resource for i in cfg.instruments] + [cfg.controller]
    nodes = [i.tsplink_node for i in cfg.instruments if i.tsplink_node is not None]
    for label, values in (("name", names), ("resource", resources_), ("tsplink_node", nodes)):
        dup = {v for v in values if values.count(v) > 1}
        if dup:
            raise BenchConfigError(f"instruments: duplicate {label}(s) {sorted(dup)}")
    known = models()
    terminals = {"gnd"} | {f"{i.name}.{ch}" for i in cfg.instruments if known[i.model].KIND == "smu"
                           for ch in channels(i.model)}
    for inst in cfg.instruments:
        for row, term in inst.rows.items():
            if term not in terminals:
                raise BenchConfigError(f"instruments[{inst.name}].rows.{row}: terminal {term!r} unknown; "
                                       f"allowed: {sorted(terminals)}")
    return cfg


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BenchConfigError(f"library path override {key}={value!r}: expected an integer") from None


DEFAULT_BENCH = "2636b_707b"
_BENCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def shipped_benches() -> list[str]:
    """Names of the benches shipped with rramlab (``simulator/benches/<name>.toml``), each paired with the
    station file ``examples/sim_<name>.toml``."""
    folder = resources.files(__package__).joinpath("benches")
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))


def shipped_bench_text(name: str) -> str:
    """The bench file of shipped bench ``name``."""
    if not _BENCH_NAME.match(name) or name not in shipped_benches():
        raise BenchConfigError(f"no shipped bench {name!r}; shipped: {shipped_benches()} (or give a bench file path)")
    return resources.files(__package__).joinpath("benches", f"{name}.toml").read_text(encoding="utf-8")


def default_bench_text() -> str:
    return shipped_bench_text(DEFAULT_BENCH)


@dataclass(frozen=True)
class ServerSpec:
    """A library path naming a bench server: its address and this client's label."""

    address: str
    label: str = ""


def server_spec(spec: str) -> ServerSpec | None:
    """The bench server named by ``server=`` in a library path, or None (an in-process bench)."""
    path_part, _, query = str(spec).partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    servers = [v for k, v in pairs if k == "server"]
    if not servers:
        return None
    if len(servers) > 1 or not servers[0].strip():
        raise BenchConfigError(f"library path {spec!r}: give exactly one server=ADDRESS "
                               "(unix:/path/to.sock or tcp:127.0.0.1:PORT)")
    bench_keys = sorted({k for k, _ in pairs if k in BENCH_KEYS})
    if bench_keys or path_part.strip() not in ("", "default", "unset"):
        what = f"bench key(s) {bench_keys}" if bench_keys else f"bench file {path_part.strip()!r}"
        raise BenchConfigError(f"library path {spec!r}: server= cannot be combined with {what}; the server's "
                               "bench is configured by the server (python -m rramlab.simulator.server --bench SPEC)")
    return ServerSpec(servers[0].strip(), dict(pairs).get("label", ""))


def replay_spec(spec: str) -> str | None:
    """The transcript file named by ``replay=`` in a library path, or None (a bench)."""
    path_part, _, query = str(spec).partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    files = [v for k, v in pairs if k == "replay"]
    if not files:
        return None
    other = sorted({k for k, _ in pairs if k not in ("replay", "tag")})
    if len(files) > 1 or not files[0].strip() or other or path_part.strip() not in ("", "default", "unset"):
        raise BenchConfigError(f"library path {spec!r}: replay= takes exactly one transcript file and nothing else "
                               "but tag= (e.g. '?replay=/lab/session.jsonl@rramlab'): a replay has no bench")
    return files[0].strip()


def load_bench_config(spec: str = "") -> BenchConfig:
    """Bench config from a VISA library path: ``[file][?key=value&…]`` (empty or 'default' = default)."""
    path_part, _, query = str(spec).partition("?")
    overrides = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    if "server" in overrides or "replay" in overrides:
        raise BenchConfigError(f"bench spec {spec!r}: server= names a bench server and replay= a transcript, not a "
                               "bench to build")
    path_part = path_part.strip()
    if path_part in ("", "default", "unset"):
        text, source = default_bench_text(), f"{DEFAULT_BENCH} (shipped bench)"
    elif _BENCH_NAME.match(path_part) and not path_part.endswith(".toml") and not Path(path_part).is_file():
        text, source = shipped_bench_text(path_part), f"{path_part} (shipped bench)"
    else:
        p = Path(path_part)
        if not p.is_file():
            raise BenchConfigError(f"bench file {path_part!r} not found")
        text, source = p.read_text(encoding="utf-8"), str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BenchConfigError(f"{source}: not valid TOML: {e}") from None
    return parse_bench_config(data, source, overrides)
