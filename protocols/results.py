"""Typed results that steps hand to later steps of the same run.

A step puts a value of its own type into :class:`Results`; a later step asks for that type::

    programmed = results.get(Programmed)          # None if no earlier step programmed cells
    results.setdefault(Programmed).record((r, c), ProgrammedCell(target, g, t, converged))

Any protocol may produce or consume any result type (a user's ISPP protocol produces :class:`Programmed`
just as ``program_verify`` does, and ``retention`` reads it). A resumed run rebuilds the values from the
committed rows (:meth:`~rramlab.protocols.base.Protocol.restore`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

Cell = tuple[int, int]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProgrammedCell:
    """One programming of a cell: target (S, NaN if none), last verify read g (S), its time t (s), whether that
    read was inside the acceptance range (converged), the acceptance (fraction of the target, NaN if none) and
    read_until (s): the cell was already read up to this time after its programming (0: not read since)."""

    target: float
    g: float
    t: float
    converged: bool = True
    acceptance: float = float("nan")
    read_until: float = 0.0


class Programmed:
    """The latest programming of each cell, by (row, col): later programmings replace earlier ones."""

    def __init__(self) -> None:
        self._cells: dict[Cell, ProgrammedCell] = {}

    def record(self, cell: Cell, value: ProgrammedCell) -> None:
        self._cells[(int(cell[0]), int(cell[1]))] = value

    def get(self, cell: Cell) -> ProgrammedCell | None:
        return self._cells.get((int(cell[0]), int(cell[1])))

    def __contains__(self, cell: object) -> bool:
        return cell in self._cells

    def __getitem__(self, cell: Cell) -> ProgrammedCell:
        return self._cells[cell]

    def __iter__(self) -> Iterator[Cell]:
        return iter(self._cells)

    def __len__(self) -> int:
        return len(self._cells)

    def items(self) -> Iterator[tuple[Cell, ProgrammedCell]]:
        return iter(self._cells.items())


class Results:
    """What earlier steps of a run produced, one value per type."""

    def __init__(self) -> None:
        self._values: dict[type, Any] = {}

    def get(self, kind: type[T]) -> T | None:
        """The value of type ``kind`` an earlier step put, or None."""
        return self._values.get(kind)

    def put(self, value: Any) -> None:
        """Make ``value`` available to later steps (replacing an earlier value of the same type)."""
        self._values[type(value)] = value

    def setdefault(self, kind: type[T], factory: Callable[[], T] | None = None) -> T:
        """The value of type ``kind``, made with ``factory`` (default ``kind()``) and put if there is none."""
        if kind not in self._values:
            self._values[kind] = (factory or kind)()
        return self._values[kind]

    def __contains__(self, kind: type) -> bool:
        return kind in self._values
