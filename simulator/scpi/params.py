"""Program message tokenizing and typed parameter access for SCPI handlers.

Handlers get a :class:`Call`; ``call[i]`` is a :class:`Param` whose typed accessors raise
:class:`~.errors.ScpiError` with the SCPI code of the problem (the engine queues it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import ScpiError

# SCPI-99 vol. 1 7.7.3 suffix multipliers (M = milli; MA = mega; for OHM and HZ, M means mega)
MULTIPLIERS = {"EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3, "M": 1e-3,
               "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18}
_DECIMAL = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:\s*[eE]\s*[+-]?\d+)?)\s*([A-Za-z%/]*)$")
_NONDECIMAL = re.compile(r"^#([HhQqBb])([0-9A-Fa-f]+)$")
_CHARDATA = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_BASES = {"H": 16, "Q": 8, "B": 2}


def _mnemonic_forms(option: str) -> tuple[str, str]:
    short = "".join(ch for ch in option if ch.isupper() or ch.isdigit()) or option.upper()
    return short, option.upper()


@dataclass(frozen=True)
class ChannelRange:
    """One item of a channel list: ``first`` alone, or the range ``first:last`` (raw text)."""

    first: str
    last: str | None = None


class Param:
    """One parameter of a program message unit, as received (``raw``: stripped text)."""

    __slots__ = ("raw", "index")

    def __init__(self, raw: str, index: int) -> None:
        self.raw = raw
        self.index = index

    def __repr__(self) -> str:
        return f"Param({self.raw!r})"

    # ------------------------------------------------------------- classification
    @property
    def is_string(self) -> bool:
        return len(self.raw) >= 2 and self.raw[0] in "'\"" and self.raw[-1] == self.raw[0]

    @property
    def is_channel_list(self) -> bool:
        return self.raw.startswith("(")

    @property
    def is_block(self) -> bool:
        return self.raw.startswith("#") and len(self.raw) > 1 and self.raw[1].isdigit()

    @property
    def is_character(self) -> bool:
        return bool(_CHARDATA.match(self.raw))

    @property
    def is_numeric(self) -> bool:
        return bool(_DECIMAL.match(self.raw) or _NONDECIMAL.match(self.raw))

    def _wrong_type(self) -> ScpiError:
        if self.is_string:
            return ScpiError(-158)
        if self.is_block:
            return ScpiError(-168)
        if self.is_channel_list:
            return ScpiError(-178)
        return ScpiError(-104)

    # ------------------------------------------------------------------ accessors
    def keyword(self) -> str:
        """Character data, uppercased (-104 etc. if the parameter is something else)."""
        if not self.is_character:
            if self.is_numeric:
                raise ScpiError(-128)
            raise self._wrong_type()
        return self.raw.upper()

    def choice(self, *options: str) -> str:
        """The option (declared as in the manual, e.g. ``"SROUte"``) this character data names,
        returned as declared uppercase long form; -224 if none matches, -128 for a number."""
        word = self.keyword()
        for option in options:
            if word in _mnemonic_forms(option):
                return option.upper()
        raise ScpiError(-224)

    def number(self, low: float | None = None, high: float | None = None, *, default: float | None = None,
               minimum: float | None = None, maximum: float | None = None, unit: str | None = None,
               integer: bool = False, allow_minmax: bool = True) -> float:
        """Decimal numeric data (NR1/NR2/NR3, ``#H``/``#Q``/``#B``), optionally with ``unit``
        (e.g. ``"V"``; multipliers ``mV``, ``uA`` ...), or MINimum/MAXimum/DEFault (values
        ``minimum``/``maximum`` default to ``low``/``high``). Outside [low, high] -> -222.
        ``integer``: rounded to int (returned as int)."""
        raw = self.raw
        value: float
        if self.is_character:
            word = raw.upper()
            lo = minimum if minimum is not None else low
            hi = maximum if maximum is not None else high
            specials = {"MIN": lo, "MINIMUM": lo, "MAX": hi, "MAXIMUM": hi, "DEF": default, "DEFAULT": default}
            if not allow_minmax or word not in specials:
                raise ScpiError(-104)
            special = specials[word]
            if special is None:
                raise ScpiError(-224)
            value = float(special)
        else:
            m = _NONDECIMAL.match(raw)
            if m:
                value = float(int(m.group(2), _BASES[m.group(1).upper()]))
            else:
                m = _DECIMAL.match(raw)
                if not m:
                    raise self._wrong_type() if not re.match(r"^[+-.\d]", raw) else ScpiError(-120)
                try:
                    value = float(re.sub(r"\s+", "", m.group(1)))
                except ValueError:
                    raise ScpiError(-120) from None
                if not math.isfinite(value):
                    raise ScpiError(-123)
                value *= self._suffix_scale(m.group(2), unit)
            if low is not None and value < low or high is not None and value > high:
                raise ScpiError(-222)
        return int(round(value)) if integer else value

    @staticmethod
    def _suffix_scale(suffix: str, unit: str | None) -> float:
        if not suffix:
            return 1.0
        if unit is None:
            raise ScpiError(-138)
        s, u = suffix.upper(), unit.upper()
        if s == u:
            return 1.0
        if s.endswith(u):
            prefix = s[: -len(u)]
            if prefix == "M" and u in ("OHM", "HZ"):
                return 1e6
            if prefix in MULTIPLIERS:
                return MULTIPLIERS[prefix]
        raise ScpiError(-131)

    def integer(self, low: int | None = None, high: int | None = None, **kw: float | None) -> int:
        """NR1 (NRf rounded) in [low, high]; MIN/MAX/DEF as :meth:`number`."""
        return int(self.number(low, high, integer=True, **kw))  # type: ignore[arg-type]

    def boolean(self) -> bool:
        """ON|OFF|1|0 (any number: nonzero after rounding = ON); other words -224."""
        if self.is_character:
            word = self.raw.upper()
            if word == "ON":
                return True
            if word == "OFF":
                return False
            raise ScpiError(-224)
        if not self.is_numeric:
            raise self._wrong_type()
        return round(self.number()) != 0

    def string(self, strict: bool = True) -> str:
        """String data in '...' or "..." (doubled quote = one quote); unquoted text -104 unless not strict."""
        raw = self.raw
        if self.is_string:
            q = raw[0]
            return raw[1:-1].replace(q + q, q)
        if raw[:1] in "'\"":
            raise ScpiError(-151)
        if strict:
            raise ScpiError(-104)
        return raw

    def block(self) -> bytes:
        """Definite (``#<n><len><data>``) or indefinite (``#0<data>``) arbitrary block data."""
        raw = self.raw
        if not self.is_block:
            raise ScpiError(-104)
        n = int(raw[1])
        if n == 0:
            return raw[2:].encode("latin-1")
        digits = raw[2:2 + n]
        if len(digits) != n or not digits.isdigit():
            raise ScpiError(-161)
        data = raw[2 + n:]
        if len(data) != int(digits):
            raise ScpiError(-161)
        return data.encode("latin-1")

    def channels(self) -> list[ChannelRange]:
        """A channel list ``(@a,b,c:d)`` (items raw; the instrument interprets them).
        Not a channel list: -104; malformed: -171."""
        raw = self.raw
        if not raw.startswith("("):
            raise ScpiError(-104)
        if not raw.endswith(")") or not raw[1:].lstrip().startswith("@"):
            raise ScpiError(-171)
        body = raw[1:-1].strip()[1:].strip()
        out: list[ChannelRange] = []
        if not body:
            return out
        for item in body.split(","):
            item = item.strip()
            if not item:
                raise ScpiError(-171)
            first, sep, last = item.partition(":")
            first, last = first.strip(), last.strip()
            if not first or sep and not last or ":" in last:
                raise ScpiError(-171)
            out.append(ChannelRange(first, last if sep else None))
        return out


@dataclass
class Call:
    """One command as the handler sees it."""

    header: str                       # the header as received (after path completion)
    params: list[Param]
    query: bool
    suffixes: tuple[int, ...] = ()    # one per suffix-taking node of the declared syntax (default 1)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def suffix(self) -> int:
        """The first numeric suffix (default 1)."""
        return self.suffixes[0] if self.suffixes else 1

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, i: int) -> Param:
        """Parameter ``i`` (-109 Missing parameter if absent)."""
        if i >= len(self.params):
            raise ScpiError(-109)
        return self.params[i]

    def get(self, i: int) -> Param | None:
        """Parameter ``i`` or None if not given."""
        return self.params[i] if i < len(self.params) else None


# --------------------------------------------------------------------------- tokenizing
class MessageError(Exception):
    """Syntax problem while splitting a program message (code per SCPI)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _split(text: str, sep: str, strict: bool) -> list[str]:
    """``text`` split on ``sep`` outside strings ('…', "…" with doubled quotes), parentheses and block data
    (``#0…`` to the end, ``#<n><len>…``). MessageError(-151) on an unterminated string; with ``strict``,
    MessageError(-102) on unbalanced parentheses."""
    parts: list[str] = []
    start = i = depth = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j = i + 1
            while True:
                j = text.find(ch, j)
                if j < 0:
                    raise MessageError(-151)
                if j + 1 < n and text[j + 1] == ch:
                    j += 2
                    continue
                break
            i = j + 1
            continue
        if ch == "#" and i + 1 < n and text[i + 1].isdigit():
            k = int(text[i + 1])
            if k == 0:
                i = n     # indefinite block runs to the end of the message
                continue
            digits = text[i + 2:i + 2 + k]
            if len(digits) == k and digits.isdigit():
                i = i + 2 + k + int(digits)
                continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if strict and depth < 0:
                raise MessageError(-102)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if strict and depth:
        raise MessageError(-102)
    parts.append(text[start:])
    return parts


def split_units(message: str) -> list[str]:
    """A program message -> its message units (split on ';' outside strings, channel lists, blocks).
    Raises MessageError(-151/-102) on an unterminated string or unbalanced parenthesis."""
    return _split(message, ";", strict=True)


def split_params(text: str) -> list[str]:
    """Parameter text -> raw parameters (split on ',' outside strings, parentheses and blocks), stripped."""
    return [p.strip() for p in _split(text, ",", strict=False)]


def join_replies(parts: Iterable[str]) -> str:
    """IEEE 488.2 response message: units joined with ';'."""
    return ";".join(parts)


def format_list(values: Sequence[object], sep: str = ",") -> str:
    """Comma-separated response data."""
    return sep.join(str(v) for v in values)
