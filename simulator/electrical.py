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
from typing import TYPE_CHECKING, Any

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
        self.connected = True            # the probes touch the die (a wafer's prober may lift them: all open)
        self.rows, self.cols = model.rows, model.cols
        self.line_of_pad = line_of_pad
        self.n_lines = n_lines
        self.row_terminals = row_terminals
        self.column_pads = column_pads
        self.sources: dict[str, SourceState] = {}
        self._terms: list[str] = [GROUND]
        self._src: list[SourceState] = [SourceState(GROUND)]   # index-aligned with _terms
        self._empty = np.zeros(0, dtype=np.int64)
        self._wl0 = self._bl0 = self._sl0 = -1
        self.closed: dict[str, frozenset[tuple[int, str, int]]] = {}
        self.sl_by_row = sl_by_row        # source line k runs along word line k (else along bit line k)
        self.line_term = np.full(n_lines, -1, dtype=np.int64)
        self.v_th = float(getattr(model.params, "v_th", 0.6))
        # connected cells and their terminals
        self.idx = np.zeros(0, dtype=np.int64)
        self.t_wl = self.t_bl = self.t_sl = np.zeros(0, dtype=np.int64)
        # bias segment held since seg_start
        self.seg_start = 0.0
        self.hold_start = 0.0
        self.seg_idx = np.zeros(0, dtype=np.int64)
        self.seg_vapp = np.zeros(0)
        self.seg_vgate = np.zeros(0)
        self._seg_key: tuple[Any, ...] | None = None    # what the segment biases (None: nothing)
        self._seg_one: tuple[int, float, float] | None = None   # (cell, v_applied, v_gate): a one-cell segment
        self._unjudged = False           # the segment's last slice was applied as not final (the hold goes on)
        self.conflicts: list[str] = []

    # ----------------------------------------------------------------- topology
    def register_source(self, state: SourceState) -> None:
        self.sources[state.name] = state
        self._terms.append(state.name)
        self._src.append(state)

    def set_closed(self, matrix: str, closed: frozenset[tuple[int, str, int]]) -> None:
        """A matrix reports its closed crosspoints (slot, row letter, column)."""
        self.commit()
        self.closed[matrix] = closed
        self._rebuild()
        self.update()

    def _rebuild(self) -> None:
        driven: dict[int, int] = {}          # line -> index of the terminal driving it
        conflicts = []
        for matrix, points in self.closed.items():
            for slot, row, col in points:
                term = self.row_terminals.get((matrix, row))
                pad = self.column_pads.get((matrix, slot, col))
                if term is None or pad is None:
                    continue
                line = self.line_of_pad[pad]
                ti = self._terms.index(term)
                held = driven.get(line, ti)
                if held != ti:
                    conflicts.append(f"{pad}: {self._terms[held]} and {term}")
                    continue
                driven[line] = ti
        if conflicts and conflicts != self.conflicts:
            self.bench.events.add(self.bench.clock.now, "circuit", "terminals_shorted", lines=conflicts)
        self.conflicts = conflicts
        line_term = np.full(self.n_lines, -1, dtype=np.int64)
        if driven:
            line_term[list(driven)] = list(driven.values())
        self.line_term = line_term
        # connected cells: a driven word line × a driven bit line whose source line is driven too, in flat
        # (row-major) order; found from the few driven lines, not by scanning every cell of the die
        rows, cols = self.rows, self.cols
        wl = sorted(x for x in driven if x < rows) if self.connected else []
        bl = sorted(x - rows for x in driven if rows <= x < rows + cols) if wl else []
        sl0, by_row = rows + cols, self.sl_by_row
        cells = [(r, c, ts) for r in wl for c in bl if (ts := driven.get(sl0 + (r if by_row else c))) is not None]
        self.idx = np.array([r * cols + c for r, c, _ in cells], dtype=np.int64)
        self.t_wl = np.array([driven[r] for r, _, _ in cells], dtype=np.int64)
        self.t_bl = np.array([driven[rows + c] for _, c, _ in cells], dtype=np.int64)
        self.t_sl = np.array([ts for _, _, ts in cells], dtype=np.int64)
        if len(cells) == 1:
            self._wl0, self._bl0, self._sl0 = int(self.t_wl[0]), int(self.t_bl[0]), int(self.t_sl[0])

    def attach(self, model: ArrayModel, *, connected: bool) -> None:
        """The die under the probes: its array ``model``, touched (``connected``) or not (every line open). The
        bias held so far is applied to the die it was held on first."""
        self.commit()
        self.model = model
        self.connected = bool(connected)
        self._rebuild()
        self.update()

    def terminal_of_row(self, matrix: str, row: str) -> str | None:
        """The terminal wired to matrix row letter ``row`` (None: unwired)."""
        return self.row_terminals.get((matrix, row))

    # ------------------------------------------------------------------ solving
    def _terminal_voltages(self) -> np.ndarray:
        """Voltage of every terminal (NaN = floating), index 0 = ground."""
        v = np.zeros(len(self._terms))
        for i, name in enumerate(self._terms[1:], start=1):
            s = self.sources[name]
            if s.output == OUTPUT_ON:
                v[i] = s.v_out
            elif s.output == OUTPUT_HIGH_Z or s.offmode == OUTPUT_HIGH_Z:
                v[i] = np.nan
        return v

    def _bias(self, tv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(mask of biased connected cells, their index, v_applied = V_BL - V_SL, v_gate = V_WL - V_SL)."""
        vwl, vbl, vsl = tv[self.t_wl], tv[self.t_bl], tv[self.t_sl]
        ok = ~(np.isnan(vwl) | np.isnan(vbl) | np.isnan(vsl))
        return ok, self.idx[ok], (vbl - vsl)[ok], (vwl - vsl)[ok]

    def _terminal_currents(self, tv: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        """Current out of every terminal's HI (A) for terminal voltages tv (g: conductances of the biased
        cells, default the programmed values)."""
        ok, idx, vapp, vgate = self._bias(tv)
        out = np.zeros(len(self._terms))
        if idx.size == 0:
            return out
        if g is None:
            g = self.model.g_prog[idx]
        _, cur = self.model.transistor(g, vapp, vgate, vapp < 0)
        out += np.bincount(self.t_bl[ok], weights=cur, minlength=out.size)
        out -= np.bincount(self.t_sl[ok], weights=cur, minlength=out.size)
        return out

    def _one_cell(self) -> tuple[int, float | None, float | None, float | None]:
        """The single connected cell and its (V_WL, V_BL, V_SL) (None = floating)."""
        return int(self.idx[0]), self._v(self._wl0), self._v(self._bl0), self._v(self._sl0)

    def _v(self, ti: int) -> float | None:
        if ti == 0:
            return 0.0
        s = self._src[ti]
        if s.output == OUTPUT_ON:
            return s.v_out
        return None if OUTPUT_HIGH_Z in (s.output, s.offmode) else 0.0

    def _one_current(self, g: float) -> tuple[float, float, float]:
        """(cell current BL→SL in A, v_applied, v_gate) of the single connected cell (0 if floating)."""
        _, vwl, vbl, vsl = self._one_cell()
        if vwl is None or vbl is None or vsl is None:
            return 0.0, 0.0, 0.0
        vapp = vbl - vsl
        if vapp == 0.0:
            return 0.0, 0.0, vwl - vsl
        return self.model.transistor_one(g, vapp, vwl - vsl), vapp, vwl - vsl

    def _source_current(self, ti: int, g: float | None = None) -> float:
        """Current out of source terminal ti's HI (A) with the present v_out of every source."""
        n = self.idx.size
        if n == 0:
            return 0.0
        if n == 1:
            if ti not in (self._bl0, self._sl0):
                return 0.0
            i_cell = self._one_current(float(self.model.g_prog[self.idx[0]]) if g is None else g)[0]
            return (i_cell if ti == self._bl0 else 0.0) - (i_cell if ti == self._sl0 else 0.0)
        return float(self._terminal_currents(self._terminal_voltages())[ti])

    def update(self) -> None:
        """Re-solve source outputs (compliance) and start a new bias segment (call after commit)."""
        for s in self._src[1:]:
            s.in_compliance = False
            s.v_out = s.levelv if s.func == FUNC_DCVOLTS else 0.0
        n = self.idx.size
        one: tuple[float, float, float] | None = None     # the single cell's (current, v_applied, v_gate)
        for ti, s in enumerate(self._src[1:], start=1):
            if s.output != OUTPUT_ON:
                continue
            if s.func == FUNC_DCVOLTS:
                if not s.limit_applied:
                    continue
                if n == 1:                  # _source_current of one cell, its current computed once per solve
                    if one is None:
                        one = self._one_current(self.model.g_prog.item(int(self.idx[0])))
                    current = (one[0] if ti == self._bl0 else 0.0) - (one[0] if ti == self._sl0 else 0.0)
                else:
                    current = self._source_current(ti)
                if abs(current) > s.limiti:
                    self._clamp_voltage_source(s, ti)
                    one = None
            else:
                self._solve_current_source(s, ti)
                one = None
        now = self.bench.clock.now
        self.seg_start = now
        key: tuple[Any, ...] | None = None
        if n == 1:
            _, vapp, vgate = one or self._one_current(self.model.g_prog.item(int(self.idx[0])))
            if vapp != 0.0:                  # every bias acts on the cell; a read's is the read disturb
                key = (int(self.idx[0]), vapp, vgate)
                if key != self._seg_key:
                    self.seg_idx, self.seg_vapp, self.seg_vgate = self.idx, np.array([vapp]), np.array([vgate])
        elif n > 1:
            _, idx, vapp, vgate = self._bias(self._terminal_voltages())
            active = vapp != 0.0
            self.seg_idx, self.seg_vapp, self.seg_vgate = idx[active], vapp[active], vgate[active]
            if self.seg_idx.size:
                key = (self.seg_idx.tobytes(), self.seg_vapp.tobytes(), self.seg_vgate.tobytes())
        if key is None:
            self.seg_idx = self._empty
        self._seg_one = key if n == 1 else None
        # a steady bias split by reads keeps its hold time (forming follows the quasi-static rule)
        if key != self._seg_key:
            self.hold_start = now
            self._seg_key = key

    def _clamp_voltage_source(self, s: SourceState, ti: int) -> None:
        """Lower the source's output until its current equals the limit (bisection on the output)."""
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            s.v_out = s.levelv * mid
            if abs(self._source_current(ti)) > s.limiti:
                hi = mid
            else:
                lo = mid
        s.v_out = s.levelv * lo
        s.in_compliance = True
        self.bench.events.add(self.bench.clock.now, s.name, "compliance", level=s.levelv,
                              limit=s.limiti, output_voltage=s.v_out)

    def _solve_current_source(self, s: SourceState, ti: int) -> None:
        """Find the output voltage that drives the programmed current, within ±limitv."""
        target = s.leveli
        lo, hi = -s.limitv, s.limitv
        s.v_out = hi
        i_hi = self._source_current(ti)
        s.v_out = lo
        i_lo = self._source_current(ti)
        if not i_lo <= target <= i_hi:
            s.v_out = hi if target > i_hi else lo
            s.in_compliance = True
            self.bench.events.add(self.bench.clock.now, s.name, "compliance", level=target, limit=s.limitv)
            return
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            s.v_out = mid
            if self._source_current(ti) > target:
                hi = mid
            else:
                lo = mid
        s.v_out = 0.5 * (lo + hi)

    def commit(self, final: bool = True) -> None:
        """Apply the bias held since the segment started to the array, up to now. ``final`` = False when
        the same bias goes on afterwards (a reading in the middle of a steady bias). A final commit with no time
        left still ends the hold when its last slice was applied as not final (a staircase step whose reading and
        compliance query took its whole length): the array judges it then, as a whole (forming's pulse rule)."""
        now = self.bench.clock.now
        duration = now - self.seg_start
        if duration > 0.0 or (final and self._unjudged):
            if self._seg_one is not None:
                i, vapp, vgate = self._seg_one
                self.model.apply_bias_one(i, vapp, vgate, duration, now, hold=now - self.hold_start, final=final)
            elif self.seg_idx.size:
                self.model.apply_bias(self.seg_idx, self.seg_vapp, self.seg_vgate, duration, now,
                                      hold=now - self.hold_start, final=final)
            self._unjudged = not final
        self.seg_start = now

    def changed(self) -> None:
        """A source level/limit/output changed: close the old segment, solve, open a new one."""
        self.commit()
        self.update()

    # -------------------------------------------------------------- measurement
    def measure_current(self, name: str, t_int: float) -> float:
        """Current (A) out of the HI terminal of source ``name`` over an integration of t_int s."""
        self.commit(final=False)
        s = self.sources[name]
        if s.in_compliance and s.func == FUNC_DCVOLTS:
            return float(np.copysign(s.limiti, s.levelv))
        if s.func == FUNC_DCAMPS and s.output == OUTPUT_ON and not s.in_compliance:
            return s.leveli
        ti = self._terms.index(name)
        n = self.idx.size
        if n == 0:
            return 0.0
        now = self.bench.clock.now
        if n == 1:
            if ti not in (self._bl0, self._sl0):
                return 0.0
            return self._source_current(ti, self.model.conductance_one(int(self.idx[0]), now, t_int))
        ok, idx, _, _ = self._bias(self._terminal_voltages())
        if idx.size == 0:
            return 0.0
        sel = (self.t_bl[ok] == ti) | (self.t_sl[ok] == ti)
        g = self.model.g_prog[idx].copy()
        if sel.any():
            g[sel] = self.model.conductance(idx[sel], now, t_int)
        return float(self._terminal_currents(self._terminal_voltages(), g)[ti])

    def measure_current_series(self, name: str, t_int: float, t0: float, dt: float, n: int,
                               extra: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """Currents (A) out of the HI terminal of source ``name`` for n more readings at t0 + k·dt, k = 1 … n
        (s), each over an integration of t_int s, after a reading at t0 (:meth:`measure_current`), with the
        steady bias in between applied to the array: what n calls of :meth:`measure_current` at those times give,
        in one vectorized step (:meth:`ArrayModel.read_series`; ``extra`` caller draws per reading, returned
        second). None, with nothing changed, when the circuit is not one formed cell under a voltage source
        below its limit and below the switching threshold; the caller then reads one by one. The caller moves
        the clock."""
        s = self.sources[name]
        if (self.idx.size != 1 or s.func != FUNC_DCVOLTS or s.output != OUTPUT_ON or s.in_compliance
                or self.seg_start != t0):
            return None
        ti = self._terms.index(name)
        if ti not in (self._bl0, self._sl0) or ti == self._bl0 == self._sl0:
            return None
        model = self.model
        i = int(self.idx[0])
        _, vwl, vbl, vsl = self._one_cell()
        if vwl is None or vbl is None or vsl is None or model.pristine.item(i):
            return None
        vapp, vgate = vbl - vsl, vwl - vsl
        g_top = 1.5 * max(model.g_prog.item(i), model.g_max.item(i))
        if s.limit_applied and abs(model.transistor_one(g_top, vapp, vgate)) > s.limiti:
            return None
        g_now = model.g_prog.item(i)
        if vapp != 0.0 and abs(model.transistor_one(g_now, vapp, vgate) / g_now) >= model.params.switching_threshold:
            return None
        commit_draw = (abs(vapp) >= model._weak_bias and model._n_pristine > 0 and model._d2d.item(7, i) > 0.0)
        g, z = model.read_series(i, t0, dt, n, t_int, vapp, vgate, extra=extra, commit_draw=commit_draw)
        cur = model.transistor(g, vapp, vgate, vapp < 0.0)[1] if vapp != 0.0 else np.zeros(n)
        self.seg_start = t0 + n * dt
        return (cur if ti == self._bl0 else -cur), z

    def measure_voltage(self, name: str) -> float:
        """Voltage (V) at the HI terminal of source ``name``."""
        self.commit(final=False)
        s = self.sources[name]
        if s.output == OUTPUT_ON:
            return s.v_out
        return 0.0
