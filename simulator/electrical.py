"""Electrical model of the bench: SMU terminals → matrix crosspoints → die pads → array lines → cells.

Each closed crosspoint ties a matrix row (wired to an SMU terminal or ground) to a matrix column
(wired to a pad of the die). A line no terminal drives floats, and a cell conducts only when its word
line (gate), bit line and source line are all driven. The access transistor limits the cell current
from its gate voltage (device model); a voltage source whose current exceeds its limit is clamped:
its output voltage drops until the limit holds and the source reports compliance.

Whenever a source level, an output or a relay changes, the bias held since the previous change is
applied to the array for the time it lasted (``commit``), so device state integrates over the
waveform the instruments actually produced on the virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .bench import Bench
    from .device_model import ArrayModel

GROUND = "gnd"
OUTPUT_OFF, OUTPUT_ON, OUTPUT_HIGH_Z = 0, 1, 2
FUNC_DCAMPS, FUNC_DCVOLTS = 0, 1


@dataclass
class SourceState:
    """What the circuit needs to know about one SMU channel (owned by the SMU emulator)."""

    name: str
    func: int = FUNC_DCVOLTS
    output: int = OUTPUT_OFF
    offmode: int = 0                 # 0 normal (0 V), 2 high-Z
    levelv: float = 0.0
    leveli: float = 0.0
    limiti: float = 100e-3
    limitv: float = 20.0
    limit_applied: bool = True       # False under the "no_compliance" fault
    v_out: float = 0.0               # actual output voltage (after compliance)
    in_compliance: bool = False

    @property
    def live(self) -> bool:
        return self.output == OUTPUT_ON


class Circuit:
    """Netlist of one bench, solved per source/relay event."""

    def __init__(self, bench: Bench, model: ArrayModel, line_of_pad: dict[str, int], n_lines: int,
                 row_terminals: dict[tuple[str, str], str],
                 column_pads: dict[tuple[str, int, int], str], sl_by_row: bool) -> None:
        self.bench = bench
        self.model = model
        self.rows, self.cols = model.rows, model.cols
        self.line_of_pad = line_of_pad
        self.n_lines = n_lines
        self.row_terminals = row_terminals
        self.column_pads = column_pads
        self.sources: dict[str, SourceState] = {}
        self._terms: list[str] = [GROUND]
        self.closed: dict[str, frozenset[tuple[int, str, int]]] = {}
        r = np.repeat(np.arange(self.rows), self.cols)
        c = np.tile(np.arange(self.cols), self.rows)
        self.cell_wl = r
        self.cell_bl = self.rows + c
        self.cell_sl = self.rows + self.cols + (r if sl_by_row else c)
        self.line_term = np.full(n_lines, -1, dtype=np.int64)
        self.v_th = float(getattr(model.params, "v_th", 0.6))
        # connected cells and their terminals
        self.idx = np.zeros(0, dtype=np.int64)
        self.t_wl = self.t_bl = self.t_sl = np.zeros(0, dtype=np.int64)
        # bias segment held since seg_start
        self.seg_start = 0.0
        self.seg_idx = np.zeros(0, dtype=np.int64)
        self.seg_vapp = np.zeros(0)
        self.seg_vgate = np.zeros(0)
        self.conflicts: list[str] = []

    # ----------------------------------------------------------------- topology
    def register_source(self, state: SourceState) -> None:
        self.sources[state.name] = state
        self._terms.append(state.name)

    def terminal_index(self, name: str) -> int:
        return self._terms.index(name)

    def set_closed(self, matrix: str, closed: frozenset[tuple[int, str, int]]) -> None:
        """A matrix reports its closed crosspoints (slot, row letter, column)."""
        self.commit()
        self.closed[matrix] = closed
        self._rebuild()
        self.update()

    def _rebuild(self) -> None:
        line_term = np.full(self.n_lines, -1, dtype=np.int64)
        conflicts = []
        for matrix, points in self.closed.items():
            for slot, row, col in points:
                term = self.row_terminals.get((matrix, row))
                pad = self.column_pads.get((matrix, slot, col))
                if term is None or pad is None:
                    continue
                line = self.line_of_pad[pad]
                ti = self._terms.index(term)
                if line_term[line] not in (-1, ti):
                    conflicts.append(f"{pad}: {self._terms[line_term[line]]} and {term}")
                    continue
                line_term[line] = ti
        if conflicts and conflicts != self.conflicts:
            self.bench.events.add(self.bench.clock.now, "circuit", "terminals_shorted", lines=conflicts)
        self.conflicts = conflicts
        self.line_term = line_term
        tw, tb, ts = line_term[self.cell_wl], line_term[self.cell_bl], line_term[self.cell_sl]
        ok = (tw >= 0) & (tb >= 0) & (ts >= 0)
        self.idx = np.flatnonzero(ok)
        self.t_wl, self.t_bl, self.t_sl = tw[ok], tb[ok], ts[ok]

    def lines_of(self, terminal: str) -> list[int]:
        """Array lines a terminal drives now."""
        ti = self._terms.index(terminal)
        return [int(i) for i in np.flatnonzero(self.line_term == ti)]

    def terminal_of_row(self, matrix: str, row: str) -> str | None:
        return self.row_terminals.get((matrix, row))

    # ------------------------------------------------------------------ solving
    def _terminal_voltages(self) -> np.ndarray:
        v = np.zeros(len(self._terms))
        for i, name in enumerate(self._terms[1:], start=1):
            s = self.sources[name]
            if s.output == OUTPUT_ON:
                v[i] = s.v_out
            elif s.offmode == OUTPUT_HIGH_Z:
                v[i] = np.nan
        return v

    def _cell_currents(self, tv: np.ndarray, g: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                                  np.ndarray, np.ndarray]:
        """(index, v_applied, v_gate, current) of the connected, non-floating cells."""
        vwl, vbl, vsl = tv[self.t_wl], tv[self.t_bl], tv[self.t_sl]
        ok = ~(np.isnan(vwl) | np.isnan(vbl) | np.isnan(vsl))
        idx = self.idx[ok]
        vapp = (vbl - vsl)[ok]
        vgate = (vwl - vsl)[ok]
        if idx.size == 0:
            return idx, vapp, vgate, vapp
        if g is None:
            g = self.model.true_conductance()[idx]
        _, cur = self.model.transistor(g, vapp, vgate, vapp < 0)
        return idx, vapp, vgate, cur

    def _terminal_current(self, ti: int, tv: np.ndarray, g_noisy: np.ndarray | None = None,
                          idx_filter: np.ndarray | None = None) -> float:
        vwl, vbl, vsl = tv[self.t_wl], tv[self.t_bl], tv[self.t_sl]
        ok = ~(np.isnan(vwl) | np.isnan(vbl) | np.isnan(vsl))
        on_bl = ok & (self.t_bl == ti)
        on_sl = ok & (self.t_sl == ti)
        sel = on_bl | on_sl
        if not sel.any():
            return 0.0
        idx = self.idx[sel]
        vapp = (vbl - vsl)[sel]
        vgate = (vwl - vsl)[sel]
        g = g_noisy[np.searchsorted(idx_filter, idx)] if g_noisy is not None else \
            self.model.true_conductance()[idx]
        _, cur = self.model.transistor(g, vapp, vgate, vapp < 0)
        sign = np.where(on_bl[sel], 1.0, -1.0)
        return float(np.sum(sign * cur))

    def update(self) -> None:
        """Re-solve source outputs (compliance) and start a new bias segment (call after commit)."""
        for s in self.sources.values():
            s.in_compliance = False
            s.v_out = s.levelv if s.func == FUNC_DCVOLTS else 0.0
        for name, s in self.sources.items():
            if s.output != OUTPUT_ON:
                continue
            ti = self._terms.index(name)
            if s.func == FUNC_DCVOLTS:
                self._clamp_voltage_source(s, ti)
            else:
                self._solve_current_source(s, ti)
        tv = self._terminal_voltages()
        idx, vapp, vgate, _ = self._cell_currents(tv)
        active = np.abs(vapp) >= self.v_th * 0.5
        self.seg_idx, self.seg_vapp, self.seg_vgate = idx[active], vapp[active], vgate[active]
        self.seg_start = self.bench.clock.now

    def _clamp_voltage_source(self, s: SourceState, ti: int) -> None:
        tv = self._terminal_voltages()
        current = self._terminal_current(ti, tv)
        if not s.limit_applied or abs(current) <= s.limiti:
            return
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            s.v_out = s.levelv * mid
            if abs(self._terminal_current(ti, self._terminal_voltages())) > s.limiti:
                hi = mid
            else:
                lo = mid
        s.v_out = s.levelv * lo
        s.in_compliance = True
        self.bench.events.add(self.bench.clock.now, s.name, "compliance", level=s.levelv,
                              limit=s.limiti, output_voltage=s.v_out)

    def _solve_current_source(self, s: SourceState, ti: int) -> None:
        target = s.leveli
        lo, hi = -s.limitv, s.limitv
        s.v_out = hi
        i_hi = self._terminal_current(ti, self._terminal_voltages())
        s.v_out = lo
        i_lo = self._terminal_current(ti, self._terminal_voltages())
        if not i_lo <= target <= i_hi:
            s.v_out = hi if target > i_hi else lo
            s.in_compliance = True
            self.bench.events.add(self.bench.clock.now, s.name, "compliance", level=target, limit=s.limitv)
            return
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            s.v_out = mid
            if self._terminal_current(ti, self._terminal_voltages()) > target:
                hi = mid
            else:
                lo = mid
        s.v_out = 0.5 * (lo + hi)

    def commit(self) -> None:
        """Apply the bias held since the segment started to the array, up to now."""
        now = self.bench.clock.now
        duration = now - self.seg_start
        if duration > 0.0 and self.seg_idx.size:
            self.model.apply_bias(self.seg_idx, self.seg_vapp, self.seg_vgate, duration, now)
        self.seg_start = now

    def changed(self) -> None:
        """A source level/limit/output changed: close the old segment, solve, open a new one."""
        self.commit()
        self.update()

    # -------------------------------------------------------------- measurement
    def measure_current(self, name: str, t_int: float) -> float:
        """Current (A) out of the HI terminal of source ``name`` over an integration of t_int s."""
        self.commit()
        s = self.sources[name]
        if s.in_compliance and s.func == FUNC_DCVOLTS:
            return float(np.copysign(s.limiti, s.levelv))
        if s.func == FUNC_DCAMPS and s.output == OUTPUT_ON and not s.in_compliance:
            return s.leveli
        ti = self._terms.index(name)
        tv = self._terminal_voltages()
        vwl, vbl, vsl = tv[self.t_wl], tv[self.t_bl], tv[self.t_sl]
        ok = ~(np.isnan(vwl) | np.isnan(vbl) | np.isnan(vsl)) & ((self.t_bl == ti) | (self.t_sl == ti))
        if not ok.any():
            return 0.0
        idx = self.idx[ok]
        g = self.model.conductance(idx, self.bench.clock.now, t_int)
        return self._terminal_current(ti, tv, g, idx)

    def measure_voltage(self, name: str) -> float:
        """Voltage (V) at the HI terminal of source ``name``."""
        self.commit()
        s = self.sources[name]
        if s.output == OUTPUT_ON:
            return s.v_out
        return 0.0
