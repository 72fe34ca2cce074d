"""What every protocol shares: parameter validation, table declarations, the events a protocol yields.

A protocol is a parameter dataclass (SI units, defaults, validation) plus code that drives a station one
cell operation at a time and yields :class:`Record` and :class:`CellDone` events. The runner writes
records to the dataset and makes a durability point at every ``CellDone``; a Ctrl-C stops there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .params import ParameterError, Spec, applied_values, check_value, short
from .results import Results

Cell = tuple[int, int]
Columns = dict[str, tuple[Any, str, str]]     # name -> (dtype, unit, description)

CELL_COLUMNS: Columns = {
    "row": (np.int32, "", "word line (0-based)"),
    "col": (np.int32, "", "bit line (0-based)"),
}


@dataclass(frozen=True, slots=True)
class Record:
    """One row for table ``table``."""

    table: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CellDone:
    """A durability and stop point: a cell (or a batch of retention reads) is finished.

    ``work`` counts the progress units it completes (see :meth:`Protocol.units`). ``key`` names the
    finished unit (e.g. the cell's index in the step): a resumed run skips units whose key was
    committed; None for a durability point inside a unit.
    """

    cell: Cell | None = None
    work: int = 1
    key: str | None = None


@dataclass(frozen=True)
class Resume:
    """What a resumed step already has: the keys of its finished units and its committed rows (by table,
    only this step's rows). A unit that was started but not finished is done again from its start."""

    done: frozenset[str] = frozenset()
    rows: dict[str, pd.DataFrame] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame | None:
        df = self.rows.get(name)
        return df if df is not None and len(df) else None


Event = Record | CellDone


def require(name: str, value: Any, lo: float, hi: float, unit: str = "", *, allow_none: bool = False) -> None:
    """Raise ParameterError unless ``value`` is a finite number with lo <= value <= hi ``unit``."""
    check_value(name, value, Spec("float", lo, hi, unit, optional=allow_none))


def require_list(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise ParameterError unless ``value`` is a list (e.g. ``targets = [20e-6]``, not ``20e-6``)."""
    if not (value is None and allow_none or isinstance(value, list)):
        raise ParameterError(f"{name} must be a list, e.g. [{short(value)}], got {short(value)}")


def require_int(name: str, value: Any, lo: int, hi: int) -> None:
    """Raise ParameterError unless ``value`` is an integer (not a bool, not a float) with lo <= value <= hi."""
    check_value(name, value, Spec("int", lo, hi))


@dataclass(frozen=True)
class Violation:
    """A preflight finding: parameter, value, what is allowed."""

    step: str
    parameter: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{self.step}: {self.parameter} = {self.value!r} not allowed ({self.allowed})"


class Protocol:
    """Base class: subclasses set ``name``, ``Params``, ``tables`` and implement ``run``."""

    name: ClassVar[str]
    Params: ClassVar[type]
    tables: ClassVar[dict[str, Columns]]
    temperature_c: float | None = None
    """Chuck set-point (°C) the runner brings the chuck to before the step (recipe step key ``temperature_c``)."""
    rows_complete: ClassVar[bool] = False
    """True when every record is complete on its own and a resumed step continues from the committed rows
    (retention reads, endurance checkpoints): a stop inside a unit then commits the buffered rows. Otherwise
    (a unit is done again whole on resume) they are set aside, so the tables hold each unit once."""

    def __init__(self, params: Any, cells: Sequence[Cell], label: str = "") -> None:
        self.params = params
        self.cells = list(cells)
        self.label = label or self.name

    @classmethod
    def make_params(cls, values: Any) -> Any:
        """The step's ``Params`` from a recipe's ``[steps.params]`` table (ParameterError names the key)."""
        if not isinstance(values, dict):
            raise ParameterError(f"params must be a table of parameters, got {short(values)}")
        known = {f.name for f in fields(cls.Params)}
        extra = sorted(set(values) - known)
        if extra:
            names = ", ".join(short(k, 30) for k in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5
                                                                   else "")
            raise ParameterError(f"unknown parameter(s) {names}; allowed: {', '.join(sorted(known))}")
        return cls.Params(**values)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], cells: Sequence[Cell], label: str = "") -> Protocol:
        """A step on ``cells`` with parameters ``values``; ParameterError (prefixed with the label) if either is
        not allowed."""
        try:
            params = cls.make_params(values)
            params.check_cells(len(cells))
        except ParameterError as e:
            raise ParameterError(f"{label or cls.name}: {e}") from None
        return cls(params, cells, label)

    # --- preflight helpers -------------------------------------------------------------------
    def voltage(self, out: list[Violation], env: SafetyEnvelope, terminal: str, name: str, value: float) -> None:
        if allowed := env.voltage_violation(terminal, value):
            out.append(Violation(self.label, name, value, allowed))

    def limit(self, out: list[Violation], env: SafetyEnvelope, name: str, value: float | None) -> None:
        if allowed := env.limit_violation("bit_line", value):
            out.append(Violation(self.label, name, value, "mandatory, " + allowed if value is None else allowed))

    def nplc(self, out: list[Violation], env: SafetyEnvelope, name: str, value: float | None) -> None:
        if allowed := env.nplc_violation(value):
            out.append(Violation(self.label, name, value, allowed))

    def width(self, out: list[Violation], env: SafetyEnvelope, name: str, value: float, amplitude: float) -> None:
        if allowed := env.width_violation(value) or env.energy_violation(amplitude, value):
            out.append(Violation(self.label, name, value, allowed))

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        """Everything this step will apply, checked against the envelope before any write: every parameter
        declared with ``applies=`` (see :data:`~rramlab.protocols.params.APPLIES`), pulse widths at the largest
        declared pulse amplitude. A protocol adds checks between its own values with :meth:`extra_checks`."""
        out: list[Violation] = []
        applied = applied_values(self.params)
        amplitude = max((abs(v) for _, kind, v in applied if kind == "pulse"), default=0.0)
        for name, kind, value in applied:
            if kind in ("bit_line", "pulse"):
                self.voltage(out, env, "bit_line", name, value)
            elif kind == "word_line":
                self.voltage(out, env, "word_line", name, value)
            elif kind == "limit":
                self.limit(out, env, name, value)
            elif kind == "nplc":
                self.nplc(out, env, name, value)
            elif kind == "width":
                self.width(out, env, name, value, amplitude)
        if self.temperature_c is not None and (allowed := env.temperature_violation(self.temperature_c)):
            out.append(Violation(self.label, "temperature_c", self.temperature_c, allowed))
        return out + self.extra_checks(env)

    def extra_checks(self, env: SafetyEnvelope) -> list[Violation]:
        """Checks the declarations cannot express (e.g. every target inside a programming band)."""
        return []

    def units(self) -> int:
        """Total progress units (sum of :attr:`CellDone.work`) of the step: one per cell by default."""
        return len(self.cells)

    def units_given(self, results: Results) -> int:
        """Progress units once the earlier steps' results are known (the runner's progress total); default
        :meth:`units`."""
        return self.units()

    def pulses_per_cell(self) -> dict[Cell, int]:
        """Worst-case number of pulses each cell receives in this step (preflight sums them per recipe)."""
        return {}

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        """(typical, worst-case) rows each table of the step receives: the disk-space estimate before a run.
        Default: one row per progress unit in every table."""
        n = self.units()
        return dict.fromkeys(self.tables, (n, n))

    def run(self, station: CellStation, results: Results,
            resume: Resume | None = None) -> Iterator[Event]:  # pragma: no cover
        """Drive ``station`` through the step, yielding records and stop points; ``results`` holds what earlier
        steps produced (and takes what this one produces, see :mod:`.results`); with ``resume``, skip the
        finished units and continue where the step stopped."""
        raise NotImplementedError

    # --- resume ------------------------------------------------------------------------------
    @staticmethod
    def pending(units: Sequence[Any], resume: Resume | None) -> Iterator[tuple[str, Any]]:
        """(key, unit) of each unit not finished yet; keys are the units' indices."""
        done = resume.done if resume else frozenset()
        for k, unit in enumerate(units):
            if str(k) not in done:
                yield str(k), unit

    def units_done(self, resume: Resume | None) -> int:
        """Progress units already done in a resumed step (one per finished unit by default)."""
        return len(resume.done) if resume else 0

    def restore(self, results: Results, resume: Resume) -> None:
        """Rebuild what later steps take from this one (e.g. programmed cells) from its committed rows."""
