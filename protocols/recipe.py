"""Recipes: a TOML file listing steps (protocol, parameters, cells) — protocol as data.

    [recipe]
    name = "forming and program-verify"

    [[steps]]
    name = "forming"              # label (default: the protocol name)
    protocol = "forming"
    cells = "all"                 # or [[0, 0], [0, 1]], or { rows = "0-3", cols = "0-7" }, or { first = 32 }
    [steps.params]
    current_limit = 1e-3          # SI units: V, A, S, s

Reading a recipe checks its structure and every parameter by type and range (unknown keys, unknown
protocols, a string where a number belongs, ...); :meth:`Recipe.build` then checks the cells against the
array. Every message starts with the file and names the step and the key, e.g.
``recipe.toml: steps[2] 'pv': gate_voltage must be within [0.1, 20.0] V, got 40.0``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rramlab.analysis.dataset_schema import validate_name
from rramlab.drivers.station_config import parse_toml, read_text_file

from .base import ParameterError, Protocol
from .catalog import ProtocolRegistryError, protocol_class, protocol_names
from .cells import parse_cells
from .params import short
from .preflight import PreflightError

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

MAX_STEPS = 256
MAX_TEXT = 10_000              # characters of the recipe's name or description
MAX_META = 64                  # entries of a [metadata] table
SAMPLE_KEYS = ("operator", "wafer", "lot", "die", "notes")   # the sample details rramlab info shows first
_META_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class RecipeError(ValueError):
    """A recipe file that cannot be run as written; the message starts with the file."""


class RecipeParameterError(RecipeError, PreflightError):
    """A step parameter the recipe cannot use: a bad file (RecipeError) that is refused before any instrument
    write (PreflightError), whichever of the two the caller handles."""

    def __init__(self, message: str) -> None:
        self.violations = [message]
        ValueError.__init__(self, message)


@dataclass(frozen=True)
class StepSpec:
    label: str
    protocol: str
    params: dict[str, Any]
    cells: Any
    index: int = 0                               # position in the file: steps[index]
    temperature_c: float | None = None           # chuck set-point (°C) held during the step; None: as it is

    @property
    def where(self) -> str:
        """E.g. "steps[2] 'pv'", for messages."""
        return f"steps[{self.index}] {self.label!r}"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    steps: list[StepSpec] = field(default_factory=list)
    text: str = ""
    source: str = ""                             # the file it was read from, for messages
    metadata: dict[str, Any] = field(default_factory=dict)   # [metadata]: operator, wafer, lot, die, notes, …

    def build(self, rows: int, cols: int) -> list[Protocol]:
        """Protocol instances for an array of rows × cols; ParameterError names the file, the step and the key."""
        out = []
        for spec in self.steps:
            cls = protocol_class(spec.protocol)
            try:
                params = cls.make_params(spec.params)
                cells = parse_cells(spec.cells, rows, cols)
                params.check_cells(len(cells))
            except (TypeError, ValueError) as e:        # ParameterError, or a bug in a check: still no traceback
                raise ParameterError(f"{_head(self.source)}{spec.where}: {e}") from None
            step = cls(params, cells, spec.label)
            step.temperature_c = spec.temperature_c
            out.append(step)
        return out


def _head(source: str) -> str:
    return f"{source}: " if source else ""


def parse_recipe(text: str, source: str = "<text>") -> Recipe:
    """Read a recipe's text: structure, protocols, labels and every step parameter (RecipeError otherwise)."""
    text = text.removeprefix("\ufeff")
    data = parse_toml(text, source, RecipeError)
    try:
        return _parse(data, text, source)
    except RecipeParameterError as e:
        raise RecipeParameterError(f"{source}: {e}") from None
    except RecipeError as e:
        raise RecipeError(f"{source}: {e}") from None


def _keys(t: dict[str, Any], allowed: list[str], where: str) -> None:
    extra = sorted(set(t) - set(allowed))
    if extra:
        names = ", ".join(short(k, 30) for k in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5
                                                              else "")
        raise RecipeError(f"{where}: unknown key(s) {names}; allowed: {', '.join(allowed)}")


def _text(t: dict[str, Any], key: str, where: str, default: str) -> str:
    value = t.get(key, default)
    if not isinstance(value, str):
        raise RecipeError(f"{where}.{key}: expected a string, got {short(value)}")
    if len(value) > MAX_TEXT:
        raise RecipeError(f"{where}.{key}: at most {MAX_TEXT} characters, got {len(value)}")
    return value


def _parse(data: dict[str, Any], text: str, source: str) -> Recipe:
    _keys(data, ["recipe", "steps", "metadata", "campaign"], "top level")   # [campaign]: protocols.campaign
    head = data.get("recipe", {})
    if not isinstance(head, dict):
        raise RecipeError(f"recipe: expected a [recipe] table, got {short(head)}")
    misplaced = sorted(set(head) & {*SAMPLE_KEYS, "sample"})
    if misplaced:
        raise RecipeError(f"[recipe]: {', '.join(misplaced)} belong in a [metadata] table ([recipe] takes name and "
                          f"description), e.g. [metadata] {misplaced[0]} = {short(head[misplaced[0]])}")
    _keys(head, ["name", "description"], "[recipe]")
    metadata = check_metadata(data.get("metadata", {}), "[metadata]")
    name, description = _text(head, "name", "recipe", "recipe"), _text(head, "description", "recipe", "")
    steps_t = data.get("steps")
    if not isinstance(steps_t, list) or not steps_t:
        raise RecipeError("steps: at least one [[steps]] table is required")
    if len(steps_t) > MAX_STEPS:
        raise RecipeError(f"steps: at most {MAX_STEPS} steps, got {len(steps_t)}")
    steps: list[StepSpec] = []
    labels: set[str] = set()
    for i, t in enumerate(steps_t):
        spec = _step(i, t)
        if spec.label in labels:
            raise RecipeError(f"steps[{i}].name: {spec.label!r} used twice; give each step its own name")
        labels.add(spec.label)
        steps.append(spec)
    return Recipe(name, description, steps, text, source, metadata)


def check_metadata(value: Any, where: str) -> dict[str, Any]:
    """Sample metadata (operator, wafer, lot, die, notes or any other key): a table of at most MAX_META keys (a
    letter, then letters, digits, ``_ . -``; ≤ 64 characters) holding text (≤ MAX_TEXT characters) or numbers;
    RecipeError naming the key otherwise."""
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected a table of key = value, got {short(value)}")
    if len(value) > MAX_META:
        raise RecipeError(f"{where}: at most {MAX_META} entries, got {len(value)}")
    for key, v in value.items():
        if not _META_KEY.match(str(key)):
            raise RecipeError(f"{where}: key {short(key)} must start with a letter and hold only letters, digits, "
                              "'_', '.' or '-' (at most 64 characters)")
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise RecipeError(f"{where}.{key}: text or a number, got {short(v)}")
        if isinstance(v, str) and len(v) > MAX_TEXT:
            raise RecipeError(f"{where}.{key}: at most {MAX_TEXT} characters, got {len(v)}")
    return dict(value)


def parse_meta_options(items: list[str] | None) -> dict[str, str]:
    """``--meta KEY=VALUE`` options → {KEY: VALUE} (checked as a [metadata] table; RecipeError otherwise)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--meta {short(item)}: expected KEY=VALUE, e.g. --meta operator=jdoe")
        out[key.strip()] = value
    return check_metadata(out, "--meta")


def _step(i: int, t: Any) -> StepSpec:
    where = f"steps[{i}]"
    if not isinstance(t, dict):
        raise RecipeError(f"{where}: expected a [[steps]] table, got {short(t)}")
    _keys(t, ["name", "protocol", "params", "cells", "temperature_c"], where)
    temperature = t.get("temperature_c")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                                    or not -273.15 < temperature <= 600.0):
        raise RecipeError(f"{where}.temperature_c: a chuck temperature in °C within (-273.15, 600], got "
                          f"{short(temperature)}")
    protocol = t.get("protocol")
    if protocol is None:
        raise RecipeError(f"{where}.protocol: missing; allowed: {', '.join(protocol_names())}")
    if not isinstance(protocol, str) or protocol not in protocol_names():
        raise RecipeError(f"{where}.protocol: {short(protocol)} unknown; allowed: {', '.join(protocol_names())}")
    try:
        cls = protocol_class(protocol)
    except ProtocolRegistryError as e:
        raise RecipeError(f"{where}.protocol: {e}") from None
    label = t.get("name", protocol)
    if not isinstance(label, str) or len(label) > 64:
        raise RecipeError(f"{where}.name: expected a name of 1-64 characters, got {short(label)}")
    try:
        validate_name(label, "step")
    except ValueError as e:
        raise RecipeError(f"{where}.name: {e}") from None
    params = t.get("params", {})
    if not isinstance(params, dict):
        raise RecipeError(f"{where}.params: expected a [steps.params] table, got {short(params)}")
    if "cells" not in t:
        raise RecipeError(f"{where}.cells: missing; name the cells, e.g. cells = \"all\", [[0, 0], [0, 1]], "
                          "{ rows = \"0-3\", cols = \"0-7\" } or { first = 32 }")
    spec = StepSpec(label, protocol, dict(params), t["cells"], i,
                    None if temperature is None else float(temperature))
    try:
        cls.make_params(params)                       # every parameter by type and range, now
    except (TypeError, ValueError) as e:
        raise RecipeParameterError(f"{spec.where}: {e}") from None
    return spec


def load_recipe(path: str | Path) -> Recipe:
    """A recipe file (UTF-8 with or without BOM, at most 1 MiB); RecipeError names the file."""
    p = Path(path)
    return parse_recipe(read_text_file(p, RecipeError, "recipe file"), str(p))


def demo_recipe() -> Recipe:
    """The recipe of ``rramlab demo`` (shipped as demo_recipe.toml)."""
    text = resources.files(__package__).joinpath("demo_recipe.toml").read_text(encoding="utf-8")
    return parse_recipe(text, "demo_recipe.toml")
