"""What every protocol shares: parameter validation, table declarations, the events a protocol yields.

A protocol is a parameter dataclass (SI units, defaults, validation) plus code that drives a station one
cell operation at a time and yields :class:`Record` and :class:`CellDone` events. The runner writes
records to the dataset and makes a durability point at every ``CellDone``; a Ctrl-C stops there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

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

    ``work`` counts the progress units it completes (see :meth:`Protocol.units`).
    """

    cell: Cell | None = None
    work: int = 1


Event = Record | CellDone


class ParameterError(ValueError):
    """A protocol parameter outside its allowed range."""


def require(name: str, value: Any, lo: float, hi: float, unit: str = "", *, allow_none: bool = False) -> None:
    """Raise ParameterError unless lo <= value <= hi (finite)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        u = f" {unit}" if unit else ""
        raise ParameterError(f"{name} must be within [{lo}, {hi}]{u}, got {value!r}")


def require_list(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise ParameterError unless ``value`` is a list (e.g. ``targets = [20e-6]``, not ``20e-6``)."""
    if value is None and allow_none:
        return
    if not isinstance(value, list):
        raise ParameterError(f"{name} must be a list, e.g. [{value!r}], got {value!r}")


def require_int(name: str, value: Any, lo: int, hi: int) -> None:
    """Raise ParameterError unless ``value`` is an integer (not a bool, not a float) with lo <= value <= hi."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ParameterError(f"{name} must be an integer within [{lo}, {hi}], got {value!r}")


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

    def __init__(self, params: Any, cells: Sequence[Cell], label: str = "") -> None:
        self.params = params
        self.cells = list(cells)
        self.label = label or self.name

    @classmethod
    def from_mapping(cls, values: dict[str, Any], cells: Sequence[Cell], label: str = "") -> Protocol:
        known = {f.name for f in fields(cls.Params)}
        extra = sorted(set(values) - known)
        if extra:
            raise ParameterError(f"{label or cls.name}: unknown parameter(s) {extra}; allowed: {sorted(known)}")
        return cls(cls.Params(**values), cells, label)

    # --- preflight helpers -------------------------------------------------------------------
    def voltage(self, out: list[Violation], env: SafetyEnvelope, terminal: str, name: str, value: float) -> None:
        if allowed := env.voltage_violation(terminal, value):
            out.append(Violation(self.label, name, value, allowed))

    def limit(self, out: list[Violation], env: SafetyEnvelope, name: str, value: float | None) -> None:
        if allowed := env.limit_violation("bit_line", value):
            out.append(Violation(self.label, name, value, "mandatory, " + allowed if value is None else allowed))

    def width(self, out: list[Violation], env: SafetyEnvelope, name: str, value: float, amplitude: float) -> None:
        if allowed := env.width_violation(value) or env.energy_violation(amplitude, value):
            out.append(Violation(self.label, name, value, allowed))

    def pulse_shape(self, out: list[Violation], env: SafetyEnvelope, width: float, gate_voltage: float | None,
                    **amplitudes: float) -> None:
        """Check a pulse step: each named bit-line amplitude (V), the gate voltage (V, None = the station's
        read gate) and the width (s) at the largest amplitude."""
        for name, value in amplitudes.items():
            self.voltage(out, env, "bit_line", name, value)
        if gate_voltage is not None:
            self.voltage(out, env, "word_line", "gate_voltage", gate_voltage)
        self.width(out, env, "width", width, max(abs(v) for v in amplitudes.values()))

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        """Everything this step will apply, checked against the envelope before any write."""
        return []

    def units(self) -> int:
        """Total progress units (sum of :attr:`CellDone.work`) of the step: one per cell by default."""
        return len(self.cells)

    def pulses_per_cell(self) -> dict[Cell, int]:
        """Worst-case number of pulses each cell receives in this step (preflight sums them per recipe)."""
        return {}

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:  # pragma: no cover
        raise NotImplementedError
