"""Declared protocol parameters: each field states its default, type, range (or choices), unit and doc
once, and :class:`ProtocolParams` checks every declared field generically when an instance is made.

    @dataclass(frozen=True)
    class PulseParams(ProtocolParams):
        amplitude: float = param(1.35, -20.0, 20.0, "V", "pulse amplitude (+ SET, - RESET)")
        count: int = param(1, 1, 1_000_000, doc="pulses per cell", integer=True)

A value of the wrong type (a string, a boolean, a table), NaN, an infinity, a value outside its range,
a list too long or of the wrong shape raises :class:`ParameterError` naming the key, what is allowed
and (shortened) what was given. Checks between fields go in :meth:`ProtocolParams.cross_check`.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

GATE = (0.1, 20.0)      # V: the word-line (gate) voltages a recipe may name; the station envelope bounds them further

#: What a declared value may be on the bench (``applies=`` of :func:`param`, :func:`number`, ...); the preflight
#: checks each declared value against the station's safety envelope (:meth:`Protocol.check`):
APPLIES = {
    "bit_line": "a DC bit-line voltage (V): within safety.max_voltage.bit_line",
    "pulse": "a bit-line pulse amplitude (V): within safety.max_voltage.bit_line; the widths are checked at the "
             "largest amplitude (safety.max_pulse_energy)",
    "word_line": "a word-line (gate) voltage (V): within safety.max_voltage.word_line",
    "limit": "the bit-line current limit (A): mandatory, within safety.current_limit.bit_line",
    "nplc": "an integration time (PLC): within safety.nplc",
    "width": "a pulse width (s): within safety.min/max_pulse_width and the pulse-energy bound",
}


class ParameterError(ValueError):
    """A protocol parameter (or a step's cells) that a recipe cannot use; the message names the key."""


@dataclass(frozen=True)
class Spec:
    """What one parameter (or list item, or table column) may hold."""

    kind: str                                   # "float", "int", "bool", "list" (of ``item``), "rows" (of ``columns``)
    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""
    doc: str = ""
    optional: bool = False                      # None allowed (a station default; TOML cannot write None)
    choices: tuple[Any, ...] = ()               # "int": the allowed values, if not a range
    item: Spec | None = None                    # "list": each item
    columns: tuple[tuple[str, Spec], ...] = ()  # "rows": each row is a list with one entry per column
    min_len: int = 0
    max_len: int = 0
    applies: str = ""                           # what the value is on the bench, checked by the preflight:
    #                                             see APPLIES ("" = nothing the station envelope bounds)

    def allowed(self) -> str:
        """What a number may be, for messages, e.g. "within [0.0, 20.0] V"."""
        if self.choices:
            return f"one of {list(self.choices)}"
        if self.kind == "int":
            return f"an integer within [{_num(self.lo)}, {_num(self.hi)}]"
        return f"within [{_num(self.lo)}, {_num(self.hi)}]" + (f" {self.unit}" if self.unit else "")


def _num(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) >= 1e6 else str(x)


def short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (a message must stay short whatever was given)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _what(value: Any) -> str:
    """A hint for a value of the wrong type, e.g. " (text: write numbers without quotes)"."""
    if isinstance(value, str):
        return " (text: write numbers without quotes)"
    if isinstance(value, bool):
        return " (true/false is not a number)"
    if isinstance(value, (list, dict)):
        return f" (a {'list' if isinstance(value, list) else 'table'})"
    return ""


def is_int(value: Any) -> bool:
    """An integer, not a bool (TOML ``true`` is not a count) and not a float like 3.0."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def is_real(value: Any) -> bool:
    """An int or float (not a bool, not a string)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def check_value(name: str, value: Any, spec: Spec) -> None:
    """Raise ParameterError naming ``name`` unless ``value`` is what ``spec`` allows."""
    if value is None and spec.optional:
        return
    if spec.kind == "int":
        if spec.choices:
            if not (is_int(value) and value in spec.choices):
                raise ParameterError(f"{name} must be {spec.allowed()}, got {short(value)}")
        elif not (is_int(value) and spec.lo <= value <= spec.hi):
            raise ParameterError(f"{name} must be {spec.allowed()}, got {short(value)}{_what(value)}")
    elif spec.kind == "bool":
        if not isinstance(value, bool):
            raise ParameterError(f"{name} must be true or false, got {short(value)}")
    elif spec.kind == "float":
        if not is_real(value):
            raise ParameterError(f"{name} must be a number {spec.allowed()}, got {short(value)}{_what(value)}")
        if not (math.isfinite(value) and spec.lo <= value <= spec.hi):
            raise ParameterError(f"{name} must be {spec.allowed()}, got {short(value)}")
    else:
        _check_list(name, value, spec)


def _check_list(name: str, value: Any, spec: Spec) -> None:
    example = f"[{', '.join(n for n, _ in spec.columns)}]" if spec.kind == "rows" else "value"
    if not isinstance(value, list):
        if spec.kind == "rows":
            raise ParameterError(f"{name} must be a list of {example} lists, got {short(value)}")
        raise ParameterError(f"{name} must be a list, e.g. [{short(value)}], got {short(value)}")
    if len(value) > spec.max_len:
        raise ParameterError(f"{name}: at most {spec.max_len} items, got {len(value)}")
    if len(value) < spec.min_len:
        raise ParameterError(f"{name}: empty list; give at least one {example}")
    for i, item in enumerate(value):
        if spec.kind == "list":
            assert spec.item is not None
            check_value(f"{name}[{i}]", item, spec.item)
            continue
        if not (isinstance(item, list) and len(item) == len(spec.columns)):
            raise ParameterError(f"{name}[{i}] must be a list {example}, got {short(item)}")
        for j, (column, column_spec) in enumerate(spec.columns):
            check_value(f"{name}[{i}][{j}] ({column})", item[j], column_spec)


def _applies(applies: str) -> str:
    if applies and applies not in APPLIES:
        raise ValueError(f"applies={applies!r}: one of {sorted(APPLIES)}")
    return applies


def number(lo: float, hi: float, unit: str = "", *, integer: bool = False, choices: tuple[Any, ...] = (),
           applies: str = "") -> Spec:
    """The spec of a list item or table column: a number within [lo, hi] (or one of ``choices``); ``applies``
    says what it is on the bench (see :data:`APPLIES`), so the preflight checks it against the envelope."""
    return Spec("int" if integer or choices else "float", lo, hi, unit, choices=choices, applies=_applies(applies))


def param(default: Any, lo: float, hi: float, unit: str = "", doc: str = "", *, integer: bool = False,
          applies: str = "") -> Any:
    """A dataclass field holding a number within [lo, hi] ``unit``; default None = optional (station value);
    ``applies`` says what it is on the bench (see :data:`APPLIES`), so the preflight checks it."""
    spec = Spec("int" if integer else "float", lo, hi, unit, doc, optional=default is None, applies=_applies(applies))
    return field(default=default, metadata={"spec": spec})


def flag(default: bool, doc: str = "") -> Any:
    """A dataclass field holding true or false."""
    return field(default=default, metadata={"spec": Spec("bool", doc=doc)})


def list_param(default: list[Any] | None, item: Spec, *, max_len: int, min_len: int = 1, doc: str = "") -> Any:
    """A dataclass field holding a list of at most ``max_len`` ``item`` values (None default: optional)."""
    spec = Spec("list", doc=doc, optional=default is None, item=item, min_len=min_len, max_len=max_len)
    if default is None:
        return field(default=None, metadata={"spec": spec})
    return field(default_factory=lambda: copy.deepcopy(default), metadata={"spec": spec})


def rows_param(default: list[list[Any]], columns: dict[str, Spec], *, max_len: int, min_len: int = 1,
               doc: str = "") -> Any:
    """A dataclass field holding a list of rows, each a list with one value per named column."""
    spec = Spec("rows", doc=doc, columns=tuple(columns.items()), min_len=min_len, max_len=max_len)
    return field(default_factory=lambda: copy.deepcopy(default), metadata={"spec": spec})


class ProtocolParams:
    """Base of the ``*Params`` dataclasses: every field declared with :func:`param`, :func:`list_param` or
    :func:`rows_param` is checked by type and range when an instance is made, then :meth:`cross_check`."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            spec = f.metadata.get("spec")
            if spec is not None:
                check_value(f.name, getattr(self, f.name), spec)
        self.cross_check()

    def cross_check(self) -> None:
        """Checks between fields (e.g. v_start <= v_stop); every field is already of its type and range."""

    def check_cells(self, n_cells: int) -> None:
        """Bounds that depend on how many cells the step acts on (e.g. the work it would allocate)."""



def applied_values(params: Any) -> list[tuple[str, str, Any]]:
    """(name, applies, value) of every declared value of ``params`` that is applied on the bench: scalar fields
    as ``name``, list items as ``name[i]``, table columns as ``name.column`` (one entry per row); fields with
    ``applies=""`` are not listed. Optional values left unset (None) are listed only for ``limit`` (mandatory)."""
    out: list[tuple[str, str, Any]] = []
    for f in fields(params):
        spec = f.metadata.get("spec")
        value = getattr(params, f.name)
        if spec is None:
            continue
        if spec.kind in ("float", "int") and spec.applies:
            if value is not None or spec.applies == "limit":
                out.append((f.name, spec.applies, value))
        elif spec.kind == "list" and spec.item is not None and spec.item.applies and value is not None:
            out.extend((f"{f.name}[{i}]", spec.item.applies, v) for i, v in enumerate(value))
        elif spec.kind == "rows" and value is not None:
            for j, (column, column_spec) in enumerate(spec.columns):
                if column_spec.applies:
                    out.extend((f"{f.name}.{column}", column_spec.applies, row[j]) for row in value)
    return out
