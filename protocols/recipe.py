"""Recipes: a TOML file listing steps (protocol, parameters, cells) — protocol as data.

    [recipe]
    name = "forming and program-verify"

    [[steps]]
    name = "forming"              # label (default: the protocol name)
    protocol = "forming"
    cells = "all"                 # or [[0, 0], [0, 1]], or { rows = "0-3", cols = "0-7" }, or { first = 32 }
    [steps.params]
    current_limit = 1e-3          # SI units: V, A, S, s

Unknown keys, unknown protocols and bad parameters are rejected with the key named.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rramlab.analysis.dataset_schema import validate_name
from rramlab.drivers.station_config import read_text_file

from .base import ParameterError, Protocol
from .catalog import PROTOCOLS
from .cells import parse_cells

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RecipeError(ValueError):
    """A recipe file that cannot be run as written."""


@dataclass(frozen=True)
class StepSpec:
    label: str
    protocol: str
    params: dict[str, Any]
    cells: Any


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    steps: list[StepSpec] = field(default_factory=list)
    text: str = ""

    def build(self, rows: int, cols: int) -> list[Protocol]:
        """Protocol instances for an array of rows × cols (ParameterError names the step and key)."""
        out = []
        for spec in self.steps:
            try:
                cells = parse_cells(spec.cells, rows, cols)
                out.append(PROTOCOLS[spec.protocol].from_mapping(spec.params, cells, spec.label))
            except (ParameterError, TypeError) as e:
                raise ParameterError(f"step {spec.label!r}: {e}") from None
        return out


def parse_recipe(text: str, source: str = "<text>") -> Recipe:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{source}: not valid TOML: {e}") from None
    extra = set(data) - {"recipe", "steps"}
    if extra:
        raise RecipeError(f"{source}: unknown key(s) {sorted(extra)}; allowed: recipe, steps")
    head = data.get("recipe", {})
    if not isinstance(head, dict) or set(head) - {"name", "description"}:
        raise RecipeError(f"{source}: [recipe] takes name and description")
    steps_t = data.get("steps")
    if not isinstance(steps_t, list) or not steps_t:
        raise RecipeError(f"{source}: at least one [[steps]] table is required")
    steps, labels = [], set()
    for i, t in enumerate(steps_t):
        where = f"steps[{i}]"
        if not isinstance(t, dict):
            raise RecipeError(f"{where}: expected a [[steps]] table, got {t!r}")
        extra = set(t) - {"name", "protocol", "params", "cells"}
        if extra:
            raise RecipeError(f"{where}: unknown key(s) {sorted(extra)}; allowed: name, protocol, params, cells")
        protocol = t.get("protocol")
        if protocol not in PROTOCOLS:
            raise RecipeError(f"{where}.protocol: {protocol!r} unknown; allowed: {sorted(PROTOCOLS)}")
        label = str(t.get("name", protocol))
        try:
            validate_name(label, "step")
        except ValueError as e:
            raise RecipeError(f"{where}.name: {e}") from None
        if label in labels:
            raise RecipeError(f"{where}.name: {label!r} used twice")
        labels.add(label)
        params = t.get("params", {})
        if not isinstance(params, dict):
            raise RecipeError(f"{where}.params: expected a table")
        if "cells" not in t:
            raise RecipeError(f"{where}.cells: missing; name the cells, e.g. cells = \"all\", [[0, 0], [0, 1]], "
                              "{ rows = \"0-3\", cols = \"0-7\" } or { first = 32 }")
        steps.append(StepSpec(label, protocol, dict(params), t["cells"]))
    return Recipe(str(head.get("name", "recipe")), str(head.get("description", "")), steps, text)


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"recipe file {str(p)!r} not found")
    return parse_recipe(read_text_file(p, RecipeError), str(p))


def demo_recipe() -> Recipe:
    """The recipe of ``rramlab demo`` (shipped as demo_recipe.toml)."""
    text = resources.files(__package__).joinpath("demo_recipe.toml").read_text(encoding="utf-8")
    return parse_recipe(text, "demo_recipe.toml")

