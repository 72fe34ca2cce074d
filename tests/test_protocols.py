"""Every protocol through the station on the simulated bench: physical outcomes, not just rows."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest

from rramlab.drivers.station import Station
from rramlab.protocols.base import CellDone, ParameterError, Record
from rramlab.protocols.catalog import PROTOCOLS
from rramlab.protocols.forming import staircase
from rramlab.protocols.results import Programmed, Results

_tags = itertools.count()


def station(query: str = "") -> Station:
    st = Station.from_file(None, visa_library=f"?tag=proto{next(_tags)}{'&' + query if query else ''}@rramlab")
    st.open()
    return st


def run(st: Station, name: str, params: dict[str, Any], cells: list[tuple[int, int]],
        results: Results | None = None) -> dict[str, list[dict[str, Any]]]:
    proto = PROTOCOLS[name].from_mapping(params, cells)
    assert proto.check(st.envelope) == []
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in proto.tables}
    done = 0
    for ev in proto.run(st, Results() if results is None else results):
        if isinstance(ev, Record):
            assert set(ev.values) == set(proto.tables[ev.table])      # every declared column, nothing else
            out[ev.table].append(ev.values)
        else:
            assert isinstance(ev, CellDone)
            done += 1
    assert done >= 1
    return out


def formed(st: Station, cells: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Set-up forming of the cells (no contact check: its reads would shift the bench's noise draws, and the
    statistics asserted after it were set on this die's realisation)."""
    return run(st, "forming", {"current_limit": 1e-3, "contact_check": False}, cells)["forming"]


def test_staircase_is_exact() -> None:
    assert staircase(0.0, 0.05, 0.01).tolist() == [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
    assert staircase(0.0, -0.04, 0.02).tolist() == [0.0, -0.02, -0.04]


def test_read_map() -> None:
    st = station("noise=0")
    rows = run(st, "read", {"repeats": 2}, [(0, 0), (3, 4)])["read"]
    assert [(r["row"], r["col"], r["n"]) for r in rows] == [(0, 0, 1), (0, 0, 2), (3, 4, 1), (3, 4, 2)]
    assert all(0 < r["g"] < 5e-9 and r["v"] == 0.2 for r in rows)       # pristine cells: ~1 nS


def test_forming_jump_and_first_reset() -> None:
    st = station()
    out = run(st, "forming", {"current_limit": 1e-3}, [(0, c) for c in range(8)])
    f = out["forming"]
    v = np.array([r["v_form"] for r in f])
    assert all(r["formed"] for r in f) and np.all((v > 2.9) & (v < 3.45))
    assert all(r["i_form"] >= 50e-6 for r in f)
    g = np.array([r["g_after_reset"] for r in f])
    assert np.all((g > 2e-6) & (g < 40e-6)) and np.median(g) < 20e-6     # reset into the analog window
    sweep = out["forming_sweep"]
    first = [r for r in sweep if r["col"] == 0 and r["branch"] == "form"]
    assert first[-1]["v"] == v[0] and first[-1]["i"] >= 50e-6 and first[-2]["i"] < 50e-6
    assert min(r["v"] for r in sweep if r["branch"] == "reset") == pytest.approx(-1.4)


def test_forming_attempts_bounded_by_envelope() -> None:
    st = station()
    proto = PROTOCOLS["forming"].from_mapping({"current_limit": 1e-3, "attempts": 5}, [(0, 0)])
    assert [v.parameter for v in proto.check(st.envelope)] == ["attempts"]
    missing = PROTOCOLS["forming"].from_mapping({}, [(0, 0)])
    assert [v.parameter for v in missing.check(st.envelope)] == ["current_limit"]


def test_iv_sweep_shows_set_and_reset() -> None:
    st = station()
    formed(st, [(1, 1)])
    rows = run(st, "iv_sweep", {"current_limit": 1e-3}, [(1, 1)])["iv_sweep"]
    s = [r for r in rows if r["branch"] == "set"]
    r_ = [r for r in rows if r["branch"] == "reset"]
    g_before_set = s[10]["i"] / s[10]["v"]        # 0.2 V on the way up
    g_after_set = s[-11]["i"] / s[-11]["v"]       # 0.2 V on the way down
    assert g_after_set > 1.5 * g_before_set
    g_after_reset = r_[-11]["i"] / r_[-11]["v"]
    assert g_after_reset < 0.7 * g_after_set
    assert max(r["v"] for r in s) == pytest.approx(1.5) and min(r["v"] for r in r_) == pytest.approx(-1.5)


def test_pulses_move_conductance_both_ways() -> None:
    st = station()
    formed(st, [(2, 2)])
    up = run(st, "pulse", {"amplitude": 1.35, "count": 10}, [(2, 2)])["pulse"]
    down = run(st, "pulse", {"amplitude": -1.3, "count": 10}, [(2, 2)])["pulse"]
    assert up[-1]["g"] > up[0]["g"] + 10e-6 and down[-1]["g"] < up[-1]["g"] - 10e-6
    assert [r["n"] for r in up] == list(range(1, 11))


def test_pulse_train_paper_protocol_shape() -> None:
    st = station()
    formed(st, [(3, 3)])
    rows = run(st, "pulse_train", {"blocks": [[1, 100], [-1, 100]], "alternating_pairs": 20}, [(3, 3)])
    g = np.array([r["g"] for r in rows["pulse_train"]])
    assert g.size == 240
    assert g[99] > 60e-6 and g[199] < 25e-6                            # saturates up, then down
    with pytest.raises(ParameterError, match="blocks"):
        PROTOCOLS["pulse_train"].from_mapping({"blocks": [[2, 5]]}, [(0, 0)])


def test_program_verify_lands_in_the_acceptance_band() -> None:
    st = station()
    cells = [(4, c) for c in range(4)]
    formed(st, cells)
    out = run(st, "program_verify", {"acceptance": 0.02, "targets": [20e-6, 45e-6, 70e-6]}, cells)
    res = out["program_verify_result"]
    assert [r["target"] for r in res] == [20e-6, 45e-6, 70e-6, 20e-6]
    for r in res:
        assert r["converged"] and abs(r["g_final"] - r["target"]) <= 0.02 * r["target"]
    its = out["program_verify"]
    first = [r for r in its if r["col"] == 0]
    assert first[0]["iteration"] == 0 and first[0]["v_pulse"] == 0.0
    assert {r["v_pulse"] for r in first[1:]} <= {1.35, -1.5}              # the 10–30 µS band's amplitudes
    assert len(first) - 1 == res[0]["iterations"]


def test_retention_log_schedule_with_actual_times() -> None:
    st = station()
    cells = [(5, 0), (5, 1)]
    formed(st, cells)
    ctx = Results()
    run(st, "program_verify", {"acceptance": 0.02, "targets": [50e-6]}, cells, ctx)
    rows = run(st, "retention", {"t_first": 1.0, "horizon": 1e5, "points_per_decade": 2, "also_at": [3600.0]},
               cells, ctx)["retention"]
    for cell in cells:
        mine = [r for r in rows if (r["row"], r["col"]) == cell]
        tau = np.array([r["tau"] for r in mine])
        planned = np.array(sorted({*np.round(10 ** (np.arange(11) / 2), 9).tolist(), 3600.0}))
        assert tau.size == planned.size and np.all(np.diff(tau) > 0)
        assert np.all(tau >= planned) and np.all(tau < planned + 0.5)     # never early; late reads keep real τ
        assert mine[0]["g0"] == ctx.get(Programmed)[cell].g and mine[0]["converged"]
    times = [r["t"] for r in rows]
    assert times == sorted(times)                                        # interleaved in time order


def test_endurance_log_checkpoints_full_window_and_a_stuck_cell_stops() -> None:
    st = station()
    cells = [(6, 0), (6, 1)]
    formed(st, cells)
    b = st.instruments["smu"].adapter.connection.visalib.bench          # test side channel: a cell sticks at LRS
    b.model.set_stuck(np.array([6 * st.cols + 1]), "lrs", b.clock.now)
    out = run(st, "endurance", {"cycles": 100, "points_per_decade": 2}, cells)
    good = [r for r in out["endurance"] if r["col"] == 0]
    assert [r["cycle"] for r in good] == [1, 3, 10, 32, 100]
    on_off = np.array([r["g_lrs"] / r["g_hrs"] for r in good])         # the window stays open (single
    assert np.median(on_off) > 3 and np.all(on_off > 1.5)                 # checkpoints vary cycle to cycle)
    assert np.median([r["g_lrs"] for r in good]) > 50e-6 and np.median([r["g_hrs"] for r in good]) < 25e-6
    stuck = [r for r in out["endurance"] if r["col"] == 1]
    assert [r["cycle"] for r in stuck] == [1, 3, 10]                      # stops after fail_after = 3 checkpoints
    assert all(r["g_lrs"] / r["g_hrs"] < 1.2 for r in stuck)
    assert [(r["col"], r["cycles_done"], r["failed"], r["failed_at"]) for r in out["endurance_result"]] == \
        [(0, 100, False, 0), (1, 10, True, 1)]
    assert st.pulses_per_cell[(6, 0)] == 2000 and st.pulses_per_cell[(6, 1)] == 200   # 2 × 10 pulses per cycle
    assert PROTOCOLS["endurance"].from_mapping({"cycles": 1000, "points_per_decade": 1}, cells).units() == 8
    bad = PROTOCOLS["endurance"].from_mapping({"reset_voltage": -4.5, "width": 0.01, "gate_voltage": 4.0}, cells)
    assert sorted(v.parameter for v in bad.check(st.envelope)) == ["gate_voltage", "reset_voltage", "width"]


@pytest.mark.parametrize("protocol, param, value", [
    ("pulse", "count", 2.5), ("pulse", "count", True), ("read", "repeats", 3.0), ("forming", "attempts", 1.5),
    ("program_verify", "max_iterations", 1e3), ("retention", "flush_every", 64.5),
    ("endurance", "cycles", 1e3), ("iv_sweep", "cycles", "3"), ("pulse_train", "alternating_pairs", 0.5),
])
def test_integer_parameters_refuse_non_integers(protocol: str, param: str, value: object) -> None:
    """A count like 2.5 must be refused at recipe load, not crash mid-run after writes."""
    base = {"current_limit": 1e-3} if protocol in ("forming", "iv_sweep") else {}
    with pytest.raises(ParameterError, match=rf"{param} must be an integer within \["):
        PROTOCOLS[protocol].from_mapping({**base, param: value}, [(0, 0)])
    good = {**base, param: 2 if param != "alternating_pairs" else 0}
    PROTOCOLS[protocol].from_mapping(good, [(0, 0)])            # the same parameter as an integer is fine


def test_dc_point_compliance_is_what_the_smu_reports() -> None:
    """A formed cell driven at 1 V through an open gate draws ~tens of µA: clamped at 1 µA, free at 1 mA."""
    st = station("noise=0")
    formed(st, [(5, 5)])
    clamped = st.dc_point(5, 5, 1.0, gate_voltage=3.3, current_limit=1e-6, nplc=1)
    assert clamped.compliance and clamped.current == pytest.approx(1e-6, rel=0.01)
    free = st.dc_point(5, 5, 0.3, gate_voltage=3.3, current_limit=1e-3, nplc=1)
    assert not free.compliance and 1e-6 < free.current < 1e-4
    st.close()


def test_forming_jump_must_be_reachable_below_the_current_limit() -> None:
    with pytest.raises(ParameterError, match=r"jump_current must be below current_limit = 5e-05 A"):
        PROTOCOLS["forming"].from_mapping({"current_limit": 50e-6, "jump_current": 50e-6}, [(0, 0)])


def test_forming_stops_the_ramp_at_compliance() -> None:
    """An SMU clamped at its limit while its (noisy) reading is still under jump_current ends the ramp (the
    station's PC-side staircase rule, which the on-instrument loop follows)."""
    from rramlab.drivers.capabilities import Reading
    from rramlab.drivers.station import staircase_points

    class ClampingStation:                      # a CellStation whose source clamps at 0.8 V
        class clock:  # noqa: N801
            now = staticmethod(lambda: 0.0)

        def staircase(self, row: int, col: int, levels: list[float], *, nplc: list[float], stop_current: Any = None,
                      **kw: Any) -> list[Reading]:
            return staircase_points(lambda v, n: Reading(row, col, v, 1e-9 if v < 0.8 else 49.9e-6, 0.0,
                                                         compliance=v >= 0.8), levels, nplc, stop_current)

        def release(self) -> None: ...

        def read(self, row: int, col: int, release: bool = False) -> Reading:
            return Reading(row, col, 0.2, 2e-6, 0.0)

    proto = PROTOCOLS["forming"].from_mapping({"current_limit": 50e-6, "jump_current": 49.95e-6}, [(0, 0)])
    events = [e for e in proto.run(ClampingStation(), {}) if isinstance(e, Record)]
    form = [e.values for e in events if e.table == "forming_sweep" and e.values["branch"] == "form"]
    result = next(e.values for e in events if e.table == "forming")
    assert form[-1]["v"] == 0.8 and len(form) == 81 and result["formed"] and result["v_form"] == 0.8


def test_retention_turns_outputs_off_and_makes_reads_durable_before_long_waits() -> None:
    st = station()
    proto = PROTOCOLS["retention"].from_mapping({"t_first": 1.0, "horizon": 1e4, "points_per_decade": 1,
                                                 "idle_after": 5.0, "flush_every": 3}, [(1, 1), (1, 2)])
    b = st.instruments["smu"].adapter.connection.visalib.bench
    b.transcript.clear()
    events = list(proto.run(st, {}))
    works = [e.work for e in events if isinstance(e, CellDone)]
    assert sum(works) == proto.units() == 2 * 5 and max(works) <= 3
    reads = [e for e in events if isinstance(e, Record)]
    # the τ = 1 s reads of both cells come before any durability point; then one before each long wait
    assert [type(e).__name__ for e in events[:3]] == ["Record", "Record", "CellDone"]
    output = {"smua": False, "smub": False}
    long_waits = 0
    for e in b.transcript.entries:
        text = e.data.decode()
        for n in output:                       # a message may switch a channel twice: its last setting holds
            settings = re.findall(rf"{n}\.source\.output = {n}\.OUTPUT_(ON|OFF)", text)
            if settings:
                output[n] = settings[-1] == "ON"
        if e.direction == "write" and text.startswith("CLOCk:WAIT:UNTil") and float(text.split()[1]) - e.time > 5:
            long_waits += 1
            assert output == {"smua": False, "smub": False}, f"biased during the wait at t = {e.time} s"
    assert long_waits >= 3 and len(reads) == 10
    st.close()


def test_recipe_values_of_the_wrong_shape_are_named() -> None:
    from rramlab.protocols.cells import parse_cells

    with pytest.raises(ParameterError, match=r"current_limit must be within \[1e-12, 0.1\] A, got -0.001"):
        PROTOCOLS["forming"].from_mapping({"current_limit": -1e-3}, [(0, 0)])
    with pytest.raises(ParameterError, match=r"also_at must be a list, e.g. \[3600.0\]"):
        PROTOCOLS["retention"].from_mapping({"also_at": 3600.0}, [(0, 0)])
    with pytest.raises(ParameterError, match="'first' cannot be combined"):
        parse_cells({"rows": "0-1", "first": 3}, 8, 8)
    with pytest.raises(ParameterError, match=r"cells.first must be an integer within \[1, 64\], got 32.0"):
        parse_cells({"first": 32.0}, 8, 8)
