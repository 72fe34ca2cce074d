"""``forming``: quasi-static voltage ramp with gate-limited compliance until the current jumps, then the
first RESET into the analog window (arXiv 2502.04524 Fig. 1c: V_G = 1.2 V, sweep to +3.6 V, reset to
−1.4 V). Records V_form per cell and every sweep point; attempts are bounded by the safety envelope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rramlab.drivers.capabilities import CellStation, Reading
from rramlab.drivers.station_config import SafetyEnvelope

from .base import CELL_COLUMNS, CellDone, Event, ParameterError, Protocol, Record, Resume, Violation, require
from .params import GATE, ProtocolParams, flag, param
from .results import Results

SWEEP_COLUMNS = {**CELL_COLUMNS, "attempt": (np.int32, "", "forming attempt from 1"),
                 "branch": (str, "", "'form' or 'reset'"), "v": (np.float64, "V", "bit-line voltage"),
                 "i": (np.float64, "A", "bit-line current"), "compliance": (bool, "bool", "source at its limit"),
                 "t": (np.float64, "s", "time of the point")}


def staircase(start: float, stop: float, step: float) -> np.ndarray:
    """Voltages start, start ± step, … up to and including stop (rounded to 1 µV)."""
    n = int(np.floor(abs(stop - start) / abs(step) + 1e-9))
    v = start + np.sign(stop - start) * abs(step) * np.arange(n + 1)
    return np.round(v, 6)


def forming_ramp(p: FormingParams) -> tuple[list[float], list[float]]:
    """(levels V, nplc per level) of the forming ramp: one staircase of v_step steps at nplc, or — with
    fine_from — coarse_step steps at coarse_nplc up to below fine_from, then v_step steps at nplc from it."""
    fine = staircase(p.v_start if p.fine_from is None else p.fine_from, p.v_stop, p.v_step).tolist()
    if p.fine_from is None:
        return fine, [p.nplc] * len(fine)
    coarse = [v for v in staircase(p.v_start, p.fine_from, p.coarse_step).tolist() if v < fine[0]]
    return coarse + fine, [p.coarse_nplc] * len(coarse) + [p.nplc] * len(fine)


@dataclass(frozen=True)
class FormingParams(ProtocolParams):
    """Voltages V, currents A. current_limit is mandatory (the bit-line source limit during the ramp)."""

    current_limit: float | None = param(None, 1e-12, 0.1, "A", "bit-line limit during the ramp (mandatory)",
                                        applies="limit")
    v_start: float = param(0.0, 0.0, 20.0, "V", "first ramp voltage (<= v_stop)", applies="bit_line")
    v_stop: float = param(4.0, 0.1, 20.0, "V", "last ramp voltage", applies="bit_line")
    v_step: float = param(0.01, 1e-4, 1.0, "V", "ramp step")
    gate_voltage: float = param(1.2, *GATE, "V", "word-line (gate) voltage during the ramp", applies="word_line")
    jump_current: float = param(50e-6, 1e-9, 0.1, "A", "current that marks forming (< current_limit)")
    nplc: float = param(1.0, 0.001, 25, "PLC", "integration time per ramp point", applies="nplc")
    fine_from: float | None = param(None, 0.0, 20.0, "V", "coarse-then-fine ramp: below this voltage, coarse_step "
                                    "steps of coarse_nplc (unset: one ramp of v_step steps)")
    coarse_step: float = param(0.1, 1e-4, 1.0, "V", "ramp step below fine_from")
    coarse_nplc: float = param(0.01, 0.001, 25, "PLC", "integration time per point below fine_from",
                                applies="nplc")
    attempts: int = param(1, 1, 100, doc="ramps per cell (<= safety.max_forming_attempts)", integer=True)
    reset_voltage: float = param(-1.4, -20.0, 0.0, "V", "end of the first RESET sweep", applies="bit_line")
    reset_step: float = param(0.02, 1e-4, 1.0, "V", "RESET sweep step")
    reset_gate_voltage: float = param(1.2, *GATE, "V", "gate voltage during the RESET sweep",
                                       applies="word_line")
    contact_check: bool = flag(True, "read a few cells at low bias first; stop if none answers (station file "
                               "[contact])")

    def cross_check(self) -> None:
        require("v_start", self.v_start, 0.0, self.v_stop, "V")
        if self.fine_from is not None:
            require("fine_from", self.fine_from, self.v_start, self.v_stop, "V")
        if self.current_limit is not None and not self.jump_current < self.current_limit:
            raise ParameterError(f"jump_current must be below current_limit = {self.current_limit} A (the ramp "
                                 f"could never see the jump), got {self.jump_current} A")


class Forming(Protocol):
    name = "forming"
    Params = FormingParams
    tables = {
        "forming": {**CELL_COLUMNS, "v_form": (np.float64, "V", "voltage at the current jump (NaN: not formed)"),
                    "formed": (bool, "bool", "the current jumped"),
                    "i_form": (np.float64, "A", "current at the jump"),
                    "attempts": (np.int32, "", "ramps used"),
                    "g_after_reset": (np.float64, "S", "conductance after the first RESET"),
                    "t": (np.float64, "s", "time at the end of the cell")},
        "forming_sweep": SWEEP_COLUMNS,
        "contact_check": {**CELL_COLUMNS, "v": (np.float64, "V", "bit-line read voltage"),
                          "i": (np.float64, "A", "bit-line current"),
                          "min_current": (np.float64, "A", "contact threshold (every cell below it: no contact)")},
    }

    def extra_checks(self, env: SafetyEnvelope) -> list[Violation]:
        p, out = self.params, []
        if p.attempts > env.max_forming_attempts:
            out.append(Violation(self.label, "attempts", p.attempts,
                                 f"<= {env.max_forming_attempts} (safety.max_forming_attempts)"))
        return out

    def _records(self, readings: list[Reading], attempt: int, branch: str) -> Iterator[Record]:
        for r in readings:
            yield Record("forming_sweep", {"row": r.row, "col": r.col, "attempt": attempt, "branch": branch,
                                           "v": r.voltage, "i": r.current, "compliance": r.compliance, "t": r.t})

    def expected_rows(self) -> dict[str, tuple[int, int]]:
        """Sweep points: up to ~3.2 V (the paper's forming voltage) typically, every attempt's whole ramp at worst."""
        p = self.params
        levels = forming_ramp(p)[0]
        ramp = len(levels)
        reset = len(staircase(0.0, p.reset_voltage, p.reset_step))
        typical = sum(1 for v in levels if v <= 3.2) + reset
        n = len(self.cells)
        return {"forming": (n, n), "forming_sweep": (n * typical, n * p.attempts * (ramp + reset)),
                "contact_check": (min(n, 4), min(n, 64))}

    def run(self, station: CellStation, results: Results, resume: Resume | None = None) -> Iterator[Event]:
        p = self.params
        assert p.current_limit is not None
        levels, nplc = forming_ramp(p)
        reset = staircase(0.0, p.reset_voltage, p.reset_step).tolist()
        pending = list(self.pending(self.cells, resume))
        check = getattr(station, "contact_check", None) if p.contact_check else None   # optional capability
        if pending and check is not None:
            report = check([cell for _, cell in pending])   # ContactError (nothing sent after) if nothing answers
            for row, col, current in report.reads:
                yield Record("contact_check", {"row": row, "col": col, "v": report.voltage, "i": current,
                                               "min_current": report.min_current})
        for key, (row, col) in pending:
            v_form, i_form, attempt = float("nan"), float("nan"), 0
            for attempt in range(1, p.attempts + 1):  # noqa: B007 - attempt is recorded
                # the ramp stops at the jump: the filament formed (or the source is at its limit)
                ramp = station.staircase(row, col, levels, nplc=nplc, gate_voltage=p.gate_voltage,
                                         current_limit=p.current_limit, stop_current=p.jump_current)
                yield from self._records(ramp, attempt, "form")
                last = ramp[-1]
                if last.current >= p.jump_current or last.compliance:
                    v_form, i_form = last.voltage, last.current
                station.release()
                if v_form == v_form:
                    break
            g_reset = float("nan")
            if v_form == v_form:
                sweep = station.staircase(row, col, reset, nplc=[p.nplc] * len(reset),
                                          gate_voltage=p.reset_gate_voltage, current_limit=p.current_limit)
                yield from self._records(sweep, attempt, "reset")
                station.release()
                g_reset = station.read(row, col, release=True).conductance     # the next cell is routed next
            yield Record("forming", {"row": row, "col": col, "v_form": v_form, "formed": v_form == v_form,
                                     "i_form": i_form, "attempts": attempt, "g_after_reset": g_reset,
                                     "t": station.clock.now()})
            yield CellDone((row, col), key=key)
        station.release()
