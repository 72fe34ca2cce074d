"""Bench controller: a small SCPI instrument that exposes the simulated bench's clock over VISA.

Protocols reach simulated time only through pyvisa (nothing outside ``simulator/`` imports it), so
the bench answers at its own resource (default ``TCPIP0::rramlab-bench::inst0::INSTR``):

=============================  ======================================================
``*IDN?``                      ``rramlab,Simulated Bench Controller,<bench name>,1.0``
``CLOCk:TIME?``                simulated time since the bench was built (s)
``CLOCk:WAIT <s>``             let ``s`` seconds of simulated time pass
``CLOCk:WAIT:UNTil <t>``       let simulated time reach ``t`` (s); no-op if already past
``CLOCk:WALL?``                wall-clock seconds since the bench was built
``CLOCk:EPOCh?``               UTC epoch (s since 1970) of simulated t = 0: the bench's simulated calendar
``BENCh:NAME?`` / ``:SEED?``   bench identity; ``BENCh:VERSion?`` the rramlab version
``SYSTem:ERRor[:NEXT]?``       ``0,"No error"`` or e.g. ``-113,"Undefined header"``
``*CLS`` ``*RST`` ``*OPC?``    as IEEE 488.2
=============================  ======================================================

Short and long header forms, any case, ``;``-separated compound commands (replies joined with
``;``). Times are printed as the shortest decimal that reads back to the same double, so no
simulated time is lost.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .instrument import EmulatedInstrument

if TYPE_CHECKING:
    from .bench import Bench


def _header(pattern: str) -> re.Pattern[str]:
    """SCPI header with short/long mnemonics and optional ``[:NODE]``s -> compiled regex."""
    query = pattern.endswith("?")
    rx = ""
    for token in re.findall(r"\[:?[A-Za-z*]+\]|:?[A-Za-z*]+", pattern.rstrip("?")):
        optional = token.startswith("[")
        word = token.strip("[]:")
        short = "".join(ch for ch in word if ch.isupper() or ch == "*")
        rest = word[len(short):].upper()
        body = ":" + re.escape(short) + (f"(?:{re.escape(rest)})?" if rest else "")
        rx += f"(?:{body})?" if optional else body
    return re.compile("^:?" + rx[1:] + ("\\?" if query else "") + "$", re.I)


PROTOCOL_VERSION = "1.0"


class BenchController(EmulatedInstrument):
    """SCPI bench controller (see module docstring)."""

    model = "rramlab-bench"

    def __init__(self, bench: Bench, resource: str, version: str) -> None:
        super().__init__(bench, "controller", resource)
        self.version = version
        self.errors: deque[tuple[int, str]] = deque()
        self.esr = 0
        self._commands: list[tuple[re.Pattern[str], Callable[[str | None], str | None]]] = [
            (_header("*IDN?"), lambda a: f"rramlab,Simulated Bench Controller,{bench.name},{PROTOCOL_VERSION}"),
            (_header("*CLS"), self._cls),
            (_header("*RST"), lambda a: None),
            (_header("*OPC?"), lambda a: "1"),
            (_header("CLOCk:TIME?"), lambda a: repr(self.clock.now)),
            (_header("CLOCk:WALL?"), lambda a: f"{self.clock.wall_elapsed:.6f}"),
            (_header("CLOCk:EPOCh?"), lambda a: repr(bench.epoch)),
            (_header("CLOCk:WAIT:UNTil"), self._wait_until),
            (_header("CLOCk:WAIT"), self._wait),
            (_header("BENCh:NAME?"), lambda a: f'"{bench.name}"'),
            (_header("BENCh:SEED?"), lambda a: str(bench.seed)),
            (_header("BENCh:VERSion?"), lambda a: f'"{version}"'),
            (_header("SYSTem:ERRor[:NEXT]?"), self._next_error),
        ]

    def _cls(self, _: str | None) -> None:
        self.errors.clear()

    def _number(self, arg: str | None) -> float | None:
        if arg is None or not arg.strip():
            self.queue_error(-109, "Missing parameter")
            return None
        try:
            value = float(arg)
        except ValueError:
            self.queue_error(-104, "Data type error")
            return None
        if not math.isfinite(value) or value < 0:
            self.queue_error(-222, "Data out of range")
            return None
        return value

    def _wait(self, arg: str | None) -> None:
        seconds = self._number(arg)
        if seconds is not None:
            self.clock.advance(seconds)

    def _wait_until(self, arg: str | None) -> None:
        t = self._number(arg)
        if t is not None:
            self.clock.advance_to(t)

    def _next_error(self, _: str | None) -> str:
        if self.errors:
            code, msg = self.errors.popleft()
            return f'{code},"{msg}"'
        return '0,"No error"'

    def execute(self, line: str) -> None:
        replies = []
        for part in line.split(";"):
            part = part.strip()
            if not part:
                continue
            header, _, arg = part.partition(" ")
            for rx, fn in self._commands:
                if rx.match(header):
                    out = fn(arg.strip() or None)
                    if out is not None:
                        replies.append(out)
                    break
            else:
                self.queue_error(-113, "Undefined header")
        if replies:
            self.reply(";".join(replies))

    def queue_error(self, code: int, message: str, severity: int = 20) -> None:
        if len(self.errors) >= 10:
            self.errors[-1] = (-350, "Queue overflow")
        else:
            self.errors.append((code, message))

    def error_count(self) -> int:
        return len(self.errors)
