"""Which cells a recipe step acts on: "all", a list of [row, col], ranges, or the first N cells."""

from __future__ import annotations

import re
from typing import Any

from .base import Cell, ParameterError

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def _indices(spec: Any, n: int, what: str) -> list[int]:
    if isinstance(spec, int) and not isinstance(spec, bool):
        items = [spec]
    elif isinstance(spec, str):
        items = []
        for part in spec.split(","):
            m = _RANGE.match(part)
            if not m:
                raise ParameterError(f"cells.{what}: cannot read {spec!r}; use e.g. '0-3' or '0,2,5'")
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
            items.extend(range(a, b + 1))
    elif isinstance(spec, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in spec):
        items = list(spec)
    else:
        raise ParameterError(f"cells.{what}: expected an index, a range string or a list, got {spec!r}")
    bad = [i for i in items if not 0 <= i < n]
    if bad:
        raise ParameterError(f"cells.{what}: {bad} outside 0..{n - 1}")
    return items


def parse_cells(spec: Any, rows: int, cols: int) -> list[Cell]:
    """Cells (row, col), 0-based, row-major, no duplicates."""
    if spec == "all":
        cells = [(r, c) for r in range(rows) for c in range(cols)]
    elif isinstance(spec, dict):
        extra = set(spec) - {"rows", "cols", "first"}
        if extra:
            raise ParameterError(f"cells: unknown key(s) {sorted(extra)}; allowed: rows, cols, first")
        if "first" in spec:
            if len(spec) > 1:
                raise ParameterError("cells: 'first' cannot be combined with 'rows' or 'cols'")
            n = spec["first"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= rows * cols:
                raise ParameterError(f"cells.first must be an integer within [1, {rows * cols}], got {n!r}")
            return [(k // cols, k % cols) for k in range(n)]
        rr = _indices(spec.get("rows", f"0-{rows - 1}"), rows, "rows")
        cc = _indices(spec.get("cols", f"0-{cols - 1}"), cols, "cols")
        cells = [(r, c) for r in rr for c in cc]
    elif isinstance(spec, list):
        cells = []
        for item in spec:
            if not (isinstance(item, list) and len(item) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in item)):
                raise ParameterError(f"cells: each cell is [row, col], got {item!r}")
            r, c = item
            if not (0 <= r < rows and 0 <= c < cols):
                raise ParameterError(f"cells: [{r}, {c}] outside the {rows}x{cols} array")
            cells.append((r, c))
    else:
        raise ParameterError(f"cells: expected 'all', a list of [row, col] or a table, got {spec!r}")
    if len(set(cells)) != len(cells):
        raise ParameterError("cells: a cell is listed twice")
    if not cells:
        raise ParameterError("cells: no cell selected")
    return cells
