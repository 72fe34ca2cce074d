"""Capabilities that protocols use: small typed interfaces, not vendor classes.

A station satisfies :class:`CellStation`; protocols depend on nothing else, so any bench whose drivers
provide these operations runs the same protocols (the simulated bench is one more implementation,
reached through pyvisa).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Reading:
    """One read of one cell: conductance (S) = current (A) / voltage (V) at simulated or real time t (s)."""

    row: int
    col: int
    voltage: float
    current: float
    t: float
    compliance: bool = False

    @property
    def conductance(self) -> float:
        return self.current / self.voltage if self.voltage else float("nan")


@runtime_checkable
class Clock(Protocol):
    """Time a protocol waits on (s). A wait may raise :class:`~.clock.WaitInterrupted` after ``interrupt()``."""

    def now(self) -> float: ...
    def wait(self, seconds: float) -> None: ...
    def wait_until(self, t: float) -> None: ...
    def interrupt(self) -> None: ...
    def reset_interrupt(self) -> None: ...
    def continue_from(self, origin_unix: float) -> None: ...


@runtime_checkable
class CellStation(Protocol):
    """Cell operations on a 1T1R array (0-based rows = word lines, cols = bit lines)."""

    rows: int
    cols: int
    clock: Clock

    def connect(self, row: int, col: int) -> None: ...
    def read(self, row: int, col: int, *, voltage: float | None = None, nplc: float | None = None,
             gate_voltage: float | None = None, release: bool = False) -> Reading: ...
    def read_cells(self, cells: Sequence[tuple[int, int]], *, voltage: float | None = None,
                   nplc: float | None = None, gate_voltage: float | None = None) -> list[Reading]: ...
    def pulse(self, row: int, col: int, amplitude: float, width: float, gate_voltage: float | None = None) -> None: ...
    def pulse_read(self, row: int, col: int, amplitude: float, width: float,
                   gate_voltage: float | None = None, nplc: float | None = None) -> Reading: ...
    def dc_point(self, row: int, col: int, voltage: float, *, gate_voltage: float, current_limit: float,
                 nplc: float) -> Reading: ...
    def staircase(self, row: int, col: int, levels: Sequence[float], *, nplc: Sequence[float], gate_voltage: float,
                  current_limit: float, stop_current: float | None = None) -> list[Reading]: ...
    def verify(self, row: int, col: int, *, target: float, band: float, v_set: float, v_reset: float, width: float,
               gate_voltage: float | None = None, max_pulses: int) -> list[tuple[float, Reading]]: ...
    def release(self) -> None: ...
    def safe_state(self) -> list[str]: ...
