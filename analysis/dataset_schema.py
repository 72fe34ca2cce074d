"""Schema of the rramlab run file: names, version, column specs, unit rules, JSON helpers.

Shared by :mod:`.dataset_writer` and :mod:`.dataset_reader`; the on-disk layout is documented in
:mod:`.dataset`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import h5py
import numpy as np

SCHEMA_VERSION = 2
"""Version of the on-disk layout written by this rramlab; readers refuse newer versions (2 adds the
sessions and the run state of resumable runs to version 1)."""

SCHEMA_ATTR = "rramlab_schema"
RUN_GROUP = "run"
TABLES_GROUP = "tables"
STEPS_GROUP = "steps"
STATE_GROUP = "state"                    # /run/state: what a resumed run needs
PARTIAL_GROUP = "partial"                # /partial/<table>: rows of units a stop interrupted, set aside
SEQ_COLUMN = "seq"

EXIT_STATUSES = ("completed", "interrupted", "failed", "aborted")
"""Values accepted by ``RunWriter.close``; a file without a stop record reads as ``INCOMPLETE``."""
INCOMPLETE = "incomplete"
STEP_STATUSES = ("running", "completed", "interrupted", "failed", "aborted", "skipped")
DURABILITY_MODES = ("flush", "fsync")

MAX_ATTR_BYTES = 60_000
"""Largest JSON/text attribute written (HDF5 object headers in the compatible format hold 64 KiB)."""

STRING_DTYPE = h5py.string_dtype("utf-8")

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_PREFIXED_UNIT_RE = re.compile(r"^(?:[yzafpnuµμmkMGTPE])(?:V|A|S|s|Ω|Ohm|ohm|F|H|W|J|C|Hz)$")


class DatasetError(Exception):
    """Base class of rramlab dataset errors."""


class NotARunFileError(DatasetError):
    """The HDF5 file is not an rramlab run file (no schema version)."""


class SchemaVersionError(DatasetError):
    """The file was written with a schema version this rramlab cannot read."""


class DatasetWriteError(DatasetError):
    """Buffered rows or the stop record could not be written."""


class Column(NamedTuple):
    """Declaration of one table column: numpy dtype (or ``str``/``bool``), SI unit, description."""

    dtype: Any
    unit: str
    description: str = ""


@dataclasses.dataclass(frozen=True)
class ColumnInfo:
    """A validated column: name, storage dtype, unit, description and value checker."""

    name: str
    dtype: np.dtype
    unit: str
    description: str
    kind: str  # "f" float, "i" signed int, "u" unsigned int, "b" bool, "s" UTF-8 string
    check: Callable[[Any], Any]


def validate_name(name: str, what: str) -> str:
    """Return ``name`` if usable as an HDF5 object name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{what} name {name!r} is invalid: use 1-64 characters from A-Z a-z 0-9 _ . - "
            "(not starting with . or -)"
        )
    return name


def validate_unit(unit: str, *, column: str, kind: str) -> str:
    """Check that ``unit`` is an unprefixed SI unit string ("" = dimensionless, "bool" for flags)."""
    if not isinstance(unit, str):
        raise TypeError(f"column {column!r}: unit must be a str, got {type(unit).__name__}")
    if kind == "b" and unit != "bool":
        raise ValueError(f"column {column!r}: boolean columns take the unit 'bool', got {unit!r}")
    if kind != "b" and unit == "bool":
        raise ValueError(f"column {column!r}: unit 'bool' is only for boolean columns")
    if _PREFIXED_UNIT_RE.match(unit):
        raise ValueError(
            f"column {column!r}: unit {unit!r} carries an SI prefix; store base SI units "
            f"({unit[1:]!r}) and convert only for presentation"
        )
    return unit


def _is_string_dtype(dtype: Any) -> bool:
    if dtype is str or dtype == "str" or dtype is np.str_:
        return True
    try:
        return h5py.check_string_dtype(np.dtype(dtype)) is not None
    except TypeError:
        return False


def storage_dtype(dtype: Any, *, column: str) -> tuple[np.dtype, str]:
    """Map a declared column dtype to (storage dtype, kind); raise for unsupported types."""
    if _is_string_dtype(dtype):
        return STRING_DTYPE, "s"
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"column {column!r}: {dtype!r} is not a numpy dtype") from exc
    if dt.kind == "U":
        return STRING_DTYPE, "s"
    if dt.kind == "b":
        return np.dtype(np.bool_), "b"
    if dt.kind in "iuf" and dt.itemsize <= 8:
        return dt.newbyteorder("="), dt.kind
    raise TypeError(
        f"column {column!r}: dtype {dt} is not supported; use bool, (u)int8-64, float16-64 or str "
        "(store times as float seconds)"
    )


def _check_float(value: Any) -> Any:
    t = type(value)
    if t is float or t is int:
        return value
    if isinstance(value, (np.floating, np.integer)) or (
        isinstance(value, numbers.Real) and not isinstance(value, bool)
    ):
        return value
    raise TypeError(f"expected a real number, got {t.__name__} {value!r}")


def _check_int(value: Any) -> Any:
    t = type(value)
    if t is int or isinstance(value, np.integer):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"expected an integer, got {t.__name__} {value!r}")


def _check_bool(value: Any) -> Any:
    if type(value) is bool or isinstance(value, np.bool_):
        return value
    raise TypeError(f"expected a bool, got {type(value).__name__} {value!r}")


def _check_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a str, got {type(value).__name__} {value!r}")


_CHECKERS: dict[str, Callable[[Any], Any]] = {
    "f": _check_float,
    "i": _check_int,
    "u": _check_int,
    "b": _check_bool,
    "s": _check_str,
}


def normalize_columns(columns: Mapping[str, Any]) -> list[ColumnInfo]:
    """Validate an ordered mapping ``name -> (dtype, unit[, description])``."""
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError("columns must be a non-empty mapping name -> (dtype, unit, description)")
    infos: list[ColumnInfo] = []
    for name, spec in columns.items():
        validate_name(name, "column")
        if name == SEQ_COLUMN:
            raise ValueError(f"column name {SEQ_COLUMN!r} is reserved for the row sequence number")
        if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
            raise TypeError(f"column {name!r}: expected (dtype, unit[, description]), got {spec!r}")
        parts = tuple(spec)
        if len(parts) not in (2, 3):
            raise TypeError(f"column {name!r}: expected (dtype, unit[, description]), got {spec!r}")
        col = Column(*parts)
        dt, kind = storage_dtype(col.dtype, column=name)
        validate_unit(col.unit, column=name, kind=kind)
        if not isinstance(col.description, str):
            raise TypeError(f"column {name!r}: description must be a str")
        infos.append(ColumnInfo(name, dt, col.unit, col.description, kind, _CHECKERS[kind]))
    return infos


SEQ_INFO = ColumnInfo(
    SEQ_COLUMN, np.dtype(np.int64), "", "row sequence number, 0..n-1 within the table", "i", _check_int
)


def compound_dtype(infos: list[ColumnInfo]) -> np.dtype:
    """Compound dtype of a table: ``seq`` then the declared columns in order."""
    return np.dtype([(c.name, c.dtype) for c in [SEQ_INFO, *infos]])


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} {obj!r} is not JSON serialisable")


def to_json(obj: Any, *, what: str) -> str:
    """Encode ``obj`` as JSON (numpy scalars, dataclasses, enums, paths allowed); check its size."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    try:
        text = json.dumps(obj, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} cannot be stored as JSON: {exc}") from exc
    check_attr_size(text, what=what)
    return text


def check_attr_size(text: str, *, what: str) -> None:
    """Raise ``ValueError`` when ``text`` is too large for an HDF5 attribute."""
    if len(text) > MAX_ATTR_BYTES // 4 and len(text.encode("utf-8")) > MAX_ATTR_BYTES:
        raise ValueError(
            f"{what} is too large for an HDF5 attribute (> {MAX_ATTR_BYTES} bytes); store it in a table"
        )


def status_for_exception(exc: BaseException | None) -> str:
    """Exit status for a context manager leaving with ``exc``."""
    if exc is None:
        return "completed"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, (SystemExit, GeneratorExit)):
        return "aborted"
    return "failed"


def exception_message(exc: BaseException) -> str:
    """One-line ``Type: message`` text of an exception."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
