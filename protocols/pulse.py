"""``pulse``: single SET/RESET pulses with a read after each; ``pulse_train``: the paper's open-loop
identical-pulse protocol (400 SET / 400 RESET / 400 SET / 400 RESET / 250 alternating pairs at
+1.35 V / −1.3 V, 2.5 µs; arXiv 2502.04524)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rramlab.drivers.capabilities import CellStation
from rramlab.drivers.station_config import SafetyEnvelope

from .base import (
    CELL_COLUMNS,
    Cell,
    CellDone,
    Event,
    ParameterError,
    Protocol,
    Record,
    Violation,
    require,
    require_int,
    require_list,
)


@dataclass(frozen=True)
class PulseParams:
    """amplitude V (+ SET, − RESET), width s, gate_voltage V (None = station read gate), count pulses."""

    amplitude: float = 1.35
    width: float = 2.5e-6
    gate_voltage: float | None = None
    count: int = 1

    def __post_init__(self) -> None:
        require("amplitude", self.amplitude, -20.0, 20.0, "V")
        require("width", self.width, 1e-9, 10.0, "s")
        require_int("count", self.count, 1, 1_000_000)


class Pulse(Protocol):
    name = "pulse"
    Params = PulseParams
    tables = {"pulse": {**CELL_COLUMNS, "n": (np.int32, "", "pulse number from 1"),
                        "v_pulse": (np.float64, "V", "pulse amplitude"), "width": (np.float64, "s", "pulse width"),
                        "g": (np.float64, "S", "conductance read after the pulse"),
                        "t": (np.float64, "s", "time of the read")}}

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        p, out = self.params, []
        self.pulse_shape(out, env, p.width, p.gate_voltage, amplitude=p.amplitude)
        return out

    def pulses_per_cell(self) -> dict[Cell, int]:
        return dict.fromkeys(self.cells, self.params.count)

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        for row, col in self.cells:
            for n in range(1, p.count + 1):
                r = station.pulse_read(row, col, p.amplitude, p.width, p.gate_voltage)
                yield Record("pulse", {"row": row, "col": col, "n": n, "v_pulse": p.amplitude, "width": p.width,
                                       "g": r.conductance, "t": r.t})
            yield CellDone((row, col))
        station.release()


@dataclass(frozen=True)
class PulseTrainParams:
    """blocks: [[sign, count], …] (+1 SET, −1 RESET); then alternating_pairs SET/RESET pairs."""

    set_voltage: float = 1.35
    reset_voltage: float = -1.3
    width: float = 2.5e-6
    gate_voltage: float | None = None
    blocks: list[list[int]] = field(default_factory=lambda: [[1, 400], [-1, 400], [1, 400], [-1, 400]])
    alternating_pairs: int = 250

    def __post_init__(self) -> None:
        require("set_voltage", self.set_voltage, 0.0, 20.0, "V")
        require("reset_voltage", self.reset_voltage, -20.0, 0.0, "V")
        require("width", self.width, 1e-9, 10.0, "s")
        require_int("alternating_pairs", self.alternating_pairs, 0, 1_000_000)
        require_list("blocks", self.blocks)
        for b in self.blocks:
            if not (isinstance(b, list) and len(b) == 2 and b[0] in (1, -1) and not isinstance(b[0], bool)
                    and isinstance(b[1], int) and not isinstance(b[1], bool) and b[1] > 0):
                raise ParameterError(f"blocks: each block is [+1 or -1, count > 0], got {b!r}")

    def signs(self) -> np.ndarray:
        parts = [np.full(n, s) for s, n in self.blocks] + [np.tile([1, -1], self.alternating_pairs)]
        return np.concatenate(parts).astype(int)


class PulseTrain(Protocol):
    name = "pulse_train"
    Params = PulseTrainParams
    tables = {"pulse_train": {**CELL_COLUMNS, "n": (np.int32, "", "pulse number from 1"),
                              "v_pulse": (np.float64, "V", "pulse amplitude"),
                              "g": (np.float64, "S", "conductance read after pulse n"),
                              "t": (np.float64, "s", "time of the read")}}

    def check(self, env: SafetyEnvelope) -> list[Violation]:
        p, out = self.params, []
        self.pulse_shape(out, env, p.width, p.gate_voltage, set_voltage=p.set_voltage, reset_voltage=p.reset_voltage)
        return out

    def pulses_per_cell(self) -> dict[Cell, int]:
        return dict.fromkeys(self.cells, len(self.params.signs()))

    def run(self, station: CellStation, context: dict[str, Any]) -> Iterator[Event]:
        p = self.params
        signs = p.signs()
        for row, col in self.cells:
            for n, s in enumerate(signs, start=1):
                v = p.set_voltage if s > 0 else p.reset_voltage
                r = station.pulse_read(row, col, v, p.width, p.gate_voltage)
                yield Record("pulse_train", {"row": row, "col": col, "n": n, "v_pulse": v, "g": r.conductance,
                                             "t": r.t})
            yield CellDone((row, col))
        station.release()
