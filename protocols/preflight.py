"""Preflight: the whole recipe checked against the station's safety envelope before the first VISA write.

:func:`prepare` is every input-only check of a recipe on a station — parameters, cells against the
array, the safety envelope, the pulse budget — in one place, so that ``rramlab check`` refuses exactly
what ``rramlab run`` would refuse; it raises one exception type, :class:`PreflightError`, carrying every
message. A rejected recipe sends nothing: the runner checks before opening the station.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rramlab.drivers.station_config import SafetyEnvelope, StationConfig

from .base import ParameterError, Protocol, Violation

if TYPE_CHECKING:
    from .recipe import Recipe


class PreflightError(ValueError):
    """The recipe is refused before any instrument write; ``violations`` lists every finding."""

    def __init__(self, violations: Sequence[Violation | str], source: str = "", station: str = "") -> None:
        self.violations = list(violations)
        head = f"{source}: " if source else ""
        against = f" (station {station})" if station else ""
        super().__init__(f"{head}recipe refused before any instrument write{against}:\n  " +
                         "\n  ".join(str(v) for v in self.violations))


def preflight(protocols: Sequence[Protocol], envelope: SafetyEnvelope, source: str = "", station: str = "") -> None:
    """Raise PreflightError listing every violation of every step, and the recipe's worst-case pulse count per
    cell against ``safety.max_pulses_per_cell``; ``source`` and ``station`` name the files in its message."""
    found: list[Violation] = []
    pulses: Counter = Counter()
    for p in protocols:
        found.extend(p.check(envelope))
        pulses.update(p.pulses_per_cell())
    if pulses:
        cell, worst = max(pulses.items(), key=lambda kv: kv[1])
        if worst > envelope.max_pulses_per_cell:
            steps = [p.label for p in protocols if p.pulses_per_cell().get(cell)]
            found.append(Violation("recipe", "pulses per cell", worst,
                                   f"<= {envelope.max_pulses_per_cell} (safety.max_pulses_per_cell); cell {cell} "
                                   f"would receive up to {worst} pulses in steps {steps}"))
    if found:
        raise PreflightError(found, source, station)


def prepare(recipe: Recipe, config: StationConfig) -> list[Protocol]:
    """The protocols of ``recipe`` on the station of ``config``, after every check that needs no instrument:
    parameters, cells against the array, the safety envelope and the pulse budget. Raises PreflightError
    (nothing sent, nothing written); its message starts with the recipe file and names the step and key."""
    head = f"{recipe.source}: " if recipe.source else ""
    try:
        protocols = recipe.build(config.rows, config.cols)
    except ParameterError as e:                  # "<recipe file>: steps[i] 'label': ..."
        raise PreflightError([str(e).removeprefix(head)], recipe.source, config.source) from None
    try:
        preflight(protocols, config.safety)
    except PreflightError as e:                  # name each step as the file does: steps[i] 'label'
        where = {s.label: s.where for s in recipe.steps}
        found = [dataclasses.replace(v, step=where.get(v.step, v.step)) if isinstance(v, Violation) else v
                 for v in e.violations]
        raise PreflightError(found, recipe.source, config.source) from None
    return protocols
