"""``pulse``: single SET/RESET pulses with a read after each; ``pulse_train``: the paper's open-loop
identical-pulse protocol (400 SET / 400 RESET / 400 SET / 400 RESET / 250 alternating pairs at
+1.35 V / −1.3 V, 2.5 µs; arXiv 2502.04524)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation

from .base import (
    CELL_COLUMNS,
    Cell,
    CellDone,
    Event,
    ParameterError,
    Protocol,
    Record,
    Resume,
)
from .params import GATE, ProtocolParams, number, param, rows_param
from .results import Results

MAX_TRAIN = 1_000_000                # pulses in one pulse train (blocks and alternating pairs together)


@dataclass(frozen=True)
class PulseParams(ProtocolParams):
    """amplitude V (+ SET, − RESET), width s, gate_voltage V (None = station read gate), count pulses."""

    amplitude: float = param(1.35, -20.0, 20.0, "V", "pulse amplitude (+ SET, - RESET)", applies="pulse")
    width: float = param(2.5e-6, 1e-9, 10.0, "s", "pulse width (the envelope bounds it further)", applies="width")
    gate_voltage: float | None = param(None, *GATE, "V", "word-line voltage (unset: station read gate)",
                                       applies="word_line")
    count: int = param(1, 1, 1_000_000, doc="pulses per cell, each followed by a read", integer=True)


class Pulse(Protocol):
    name = "pulse"
    Params = PulseParams
    tables = {"pulse": {**CELL_COLUMNS, "n": (np.int32, "", "pulse number from 1"),
                        "v_pulse": (np.float64, "V", "pulse amplitude"), "width": (np.float64, "s", "pulse width"),
                        "g": (np.float64, "S", "conductance read after the pulse"),
                        "t": (np.float64, "s", "time of the read")}}

    def pulses_per_cell(self) -> dict[Cell, int]:
        return dict.fromkeys(self.cells, self.params.count)

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = len(self.cells) * self.params.count
        return {"pulse": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        for key, (row, col) in self.pending(self.cells, resume):
            for n in range(1, p.count + 1):
                r = station.pulse_read(row, col, p.amplitude, p.width, p.gate_voltage)
                yield Record("pulse", {"row": row, "col": col, "n": n, "v_pulse": p.amplitude, "width": p.width,
                                       "g": r.conductance, "t": r.t})
            yield CellDone((row, col), key=key)
        station.release()


@dataclass(frozen=True)
class PulseTrainParams(ProtocolParams):
    """blocks: [[sign, count], …] (+1 SET, −1 RESET); then alternating_pairs SET/RESET pairs."""

    set_voltage: float = param(1.35, 0.0, 20.0, "V", "SET amplitude", applies="pulse")
    reset_voltage: float = param(-1.3, -20.0, 0.0, "V", "RESET amplitude", applies="pulse")
    width: float = param(2.5e-6, 1e-9, 10.0, "s", "pulse width (the envelope bounds it further)", applies="width")
    gate_voltage: float | None = param(None, *GATE, "V", "word-line voltage (unset: station read gate)",
                                       applies="word_line")
    blocks: list[list[int]] = rows_param([[1, 400], [-1, 400], [1, 400], [-1, 400]],
                                         {"sign": number(-1, 1, choices=(1, -1)),
                                          "count": number(1, MAX_TRAIN, integer=True)},
                                         max_len=1000, min_len=0, doc="[+1 SET or -1 RESET, pulses] blocks")
    alternating_pairs: int = param(250, 0, MAX_TRAIN // 2, doc="SET/RESET pairs after the blocks", integer=True)

    def cross_check(self) -> None:
        n = self.n_pulses()
        if not 1 <= n <= MAX_TRAIN:
            raise ParameterError(f"blocks, alternating_pairs: the train must have 1 to {MAX_TRAIN} pulses "
                                 f"(sum of block counts + 2 × alternating_pairs), got {n}")

    def n_pulses(self) -> int:
        """Pulses in the train (computed without building it)."""
        return sum(n for _, n in self.blocks) + 2 * self.alternating_pairs

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

    def pulses_per_cell(self) -> dict[Cell, int]:
        return dict.fromkeys(self.cells, self.params.n_pulses())

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        n = len(self.cells) * len(self.params.signs())
        return {"pulse_train": (n, n)}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        signs = p.signs()
        for key, (row, col) in self.pending(self.cells, resume):
            for n, s in enumerate(signs, start=1):
                v = p.set_voltage if s > 0 else p.reset_voltage
                r = station.pulse_read(row, col, v, p.width, p.gate_voltage)
                yield Record("pulse_train", {"row": row, "col": col, "n": n, "v_pulse": v, "g": r.conductance,
                                             "t": r.t})
            yield CellDone((row, col), key=key)
        station.release()
