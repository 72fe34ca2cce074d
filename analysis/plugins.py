"""Summary sections and figures that installed packages add for their own protocols' tables.

A package that registers a protocol (entry-point group ``rramlab.protocols``) adds its analysis beside it::

    [project.entry-points."rramlab.summaries"]
    ispp_custom = "my_package.ispp:summary"      # (tables) -> dict | None: a section of the run summary
    [project.entry-points."rramlab.figures"]
    ispp_custom = "my_package.ispp:figures"      # (tables) -> {name: matplotlib Figure}

``tables`` maps table names to DataFrames; a table is read from the run file only when the function asks
for it. A function that fails does not take the report down: its section says why instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

import pandas as pd

SUMMARIES = "rramlab.summaries"
FIGURES = "rramlab.figures"


class LazyTables(Mapping[str, pd.DataFrame]):
    """Tables of a run, each read when first asked for (``read(name)``), then kept."""

    def __init__(self, names: list[str], read: Callable[[str], pd.DataFrame]) -> None:
        self._names, self._read, self._cache = list(names), read, {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _hooks(group: str) -> list[tuple[str, Any]]:
    return sorted(((ep.name, ep) for ep in entry_points(group=group)), key=lambda kv: kv[0])


def plugin_summaries(tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Sections from every ``rramlab.summaries`` entry point, keyed by its name (None results left out)."""
    out: dict[str, Any] = {}
    for name, ep in _hooks(SUMMARIES):
        try:
            section = ep.load()(tables)
        except Exception as e:       # a broken plugin: say so in its own section, keep the rest
            section = {"error": f"{ep.value}: {type(e).__name__}: {e}"}
        if section is not None:
            out[name] = section
    return out


def plugin_figures(tables: Mapping[str, pd.DataFrame]) -> tuple[dict[str, Any], dict[str, str]]:
    """(figures by "<entry point>_<name>", errors by entry point) from every ``rramlab.figures`` entry point."""
    figures: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, ep in _hooks(FIGURES):
        try:
            made = ep.load()(tables) or {}
            figures.update({f"{name}_{k}": fig for k, fig in made.items()})
        except Exception as e:
            errors[name] = f"{ep.value}: {type(e).__name__}: {e}"
    return figures, errors
