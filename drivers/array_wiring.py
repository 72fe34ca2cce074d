"""The array model: which matrix crosspoints reach which array line, and a router over several matrices.

A 1T1R array has word lines (gates, one per row), bit lines (one per column) and source lines (one per
column or per row). Each line reaches one column of one card of one matrix mainframe; each matrix row
(input) carries one station terminal — the bit-line SMU, the word-line SMU or ground. A cell (r, c) is
connected by closing, on the matrix of each of its three lines, the crosspoint of that line's column
with the row of the line's terminal.

:class:`Router` turns "connect cell (r, c)" into per-matrix open and close sets, break-before-make
across every matrix (all opens before any close), and reads the closed set back where the matrix can
report it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .roles import CheckedSwitch, Crosspoint, SwitchMatrix, offers

LINES = ("WL", "BL", "SL")
TERMINAL_OF_LINE = {"WL": "word_line", "BL": "bit_line", "SL": "ground"}


class RoutingError(RuntimeError):
    """A matrix did not close exactly the crosspoints asked for (read-back mismatch). ``readings``: what a
    multi-cell call measured before the mismatch (the cells routed and read before it), else None."""

    def __init__(self, message: str, readings: object = None) -> None:
        super().__init__(message)
        self.readings = readings


@dataclass(frozen=True)
class LinePort:
    """Where one array line lands: ``matrix`` (instrument name), ``card`` (slot) and ``column`` (1-based)."""

    matrix: str
    card: int
    column: int


@dataclass(frozen=True)
class ArrayWiring:
    """Every array line's :class:`LinePort` and, per matrix, the row (1-based) carrying each terminal."""

    rows: int
    cols: int
    source_lines: str                                  # "columns" | "rows"
    ports: Mapping[str, tuple[LinePort, ...]]          # "WL" | "BL" | "SL" -> one port per line, in order
    terminal_rows: Mapping[str, Mapping[str, int]]     # matrix -> terminal -> row number

    def cell_points(self, row: int, col: int) -> dict[str, frozenset[Crosspoint]]:
        """Crosspoints (per matrix) that connect cell (row, col), 0-based: gate, bit line, source line."""
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise ValueError(f"cell ({row}, {col}) outside the {self.rows}x{self.cols} array")
        out: dict[str, set[Crosspoint]] = {}
        sl = row if self.source_lines == "rows" else col
        for line, index in (("WL", row), ("BL", col), ("SL", sl)):
            port = self.ports[line][index]
            r = self.terminal_rows[port.matrix][TERMINAL_OF_LINE[line]]
            out.setdefault(port.matrix, set()).add(Crosspoint(port.card, r, port.column))
        return {m: frozenset(p) for m, p in out.items()}

    def matrices(self) -> list[str]:
        """Names of the matrices any line lands on."""
        return sorted({p.matrix for ports in self.ports.values() for p in ports})


class Router:
    """Connects one cell at a time through several matrices (see module docstring)."""

    def __init__(self, wiring: ArrayWiring, matrices: Mapping[str, SwitchMatrix]) -> None:
        self.wiring = wiring
        self.matrices = dict(matrices)
        self._closed: dict[str, frozenset[Crosspoint]] | None = None     # None: unknown

    def forget(self) -> None:
        """The closed sets are unknown (after a failure): the next route opens everything first."""
        self._closed = None

    def opened_all(self) -> None:
        """Every matrix was opened completely (safe state)."""
        self._closed = {m: frozenset() for m in self.matrices}

    def route(self, row: int, col: int) -> None:
        """Close exactly the crosspoints of cell (row, col) on every matrix, break-before-make; verify the
        closed set of every matrix that changed and can report it (RoutingError, all matrices opened)."""
        want = self.wiring.cell_points(row, col)
        verify_all = self._closed is None           # state unknown: open everything, then read every matrix back
        if verify_all:
            for m in self.matrices.values():
                m.open_all()
            self.opened_all()
        have = self._closed
        assert have is not None
        changes = self._changes(have, want)
        self._closed = None                                  # unknown until every change went through
        read: dict[str, list[Crosspoint]] = {}               # closed sets read back with the last switching
        if len(changes) == 1:
            (name, (opening, closing)), = changes.items()
            self._switch(name, opening, closing, read)
        else:
            # break-before-make across matrices: every opening before any closing; the last matrix that both
            # opens and closes does the two in one transaction (its opening still comes after the others')
            pivot = next((n for n, (o, c) in reversed(changes.items()) if o and c), None)
            for name, (opening, closing) in changes.items():
                if opening and name != pivot:
                    self._switch(name, opening, [], read if not closing else None)
            if pivot is not None:
                self._switch(pivot, *changes[pivot], read)
            for name, (_, closing) in changes.items():
                if closing and name != pivot:
                    self._switch(name, [], closing, read)
        for name in (self.matrices if verify_all else changes):
            matrix = self.matrices[name]
            if matrix.MATRIX.reports_closed:
                got = read[name] if name in read else sorted(matrix.closed())
                expected = sorted(want.get(name, frozenset()))
                if got != expected:
                    opened = self.open_everything()
                    raise RoutingError(f"cell ({row}, {col}): {name} asked for {_names(expected)}, "
                                       f"reports {_names(got)}; " + ("every matrix opened" if opened else
                                                                    "opening every matrix failed too"))
        self._closed = {name: want.get(name, frozenset()) for name in self.matrices}

    def _changes(self, have: Mapping[str, frozenset[Crosspoint]], want: Mapping[str, frozenset[Crosspoint]]
                 ) -> dict[str, tuple[list[Crosspoint], list[Crosspoint]]]:
        """Per matrix whose closed set changes from ``have`` to ``want``: (crosspoints to open, to close), sorted."""
        changes = {}
        for name in self.matrices:
            target = want.get(name, frozenset())
            now = have.get(name, frozenset())
            if target != now:
                changes[name] = (sorted(now - target), sorted(target - now))
        return changes

    def plan(self, cells: Sequence[tuple[int, int]]) -> list[dict[str, tuple[list[Crosspoint], list[Crosspoint],
                                                                         list[Crosspoint]]]]:
        """For routing ``cells`` one after the other from the known closed sets (nothing is sent): per cell, per
        matrix that changes, (to open, to close, closed afterwards), sorted. ValueError if the closed sets are
        unknown (route one cell first)."""
        if self._closed is None:
            raise ValueError("the matrices' closed sets are unknown: route a cell first")
        have: Mapping[str, frozenset[Crosspoint]] = self._closed
        out = []
        for row, col in cells:
            want = self.wiring.cell_points(row, col)
            out.append({name: (opening, closing, sorted(want.get(name, frozenset())))
                        for name, (opening, closing) in self._changes(have, want).items()})
            have = want
        return out

    def routed(self, row: int, col: int) -> None:
        """Cell (row, col) was routed (and its closed sets verified) by an instrument: remember its closed sets."""
        want = self.wiring.cell_points(row, col)
        self._closed = {name: want.get(name, frozenset()) for name in self.matrices}

    def _switch(self, name: str, opening: Sequence[Crosspoint], closing: Sequence[Crosspoint],
                read: dict[str, list[Crosspoint]] | None = None) -> None:
        """Open then close on matrix ``name``; where it can, in one transaction with the error check and, when
        ``read`` is given, the closed set read back into ``read[name]`` (:class:`~.roles.CheckedSwitch`)."""
        matrix = self.matrices[name]
        if offers(matrix, CheckedSwitch):
            want = read is not None and matrix.MATRIX.reports_closed
            got = matrix.switch_checked(opening, closing, want)
            if want and read is not None and got is not None:
                read[name] = sorted(got)
            return
        switch = getattr(matrix, "switch", None)
        if switch is not None:
            switch(opening, closing)
            return
        if opening:
            matrix.open(opening)
        if closing:
            matrix.close(closing)

    def open_everything(self) -> bool:
        """Open every matrix, best effort (after a routing error); True if every one opened. The closed sets are
        unknown afterwards (the next route opens and reads back every matrix)."""
        ok = True
        for m in self.matrices.values():
            try:
                m.open_all()
            except Exception:  # noqa: BLE001 - go on with the next matrix
                ok = False
        self._closed = None
        return ok


def _names(points: Sequence[Crosspoint]) -> str:
    return "[" + ", ".join(f"card {p.card} row {p.row} col {p.column}" for p in points) + "]"
