"""List sweeps on SCPI SMUs (the 2450): a staircase without a stop rule (forming's first RESET sweep) runs as the
instrument's own list sweep, one message per run of equal NPLC, against the same staircase with the PC in the
loop: the messages sent, the readings' limit flags against the source's limit, and statistically equal results
on the same die with the bench time each path takes on the timing model."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from rramlab.analysis.dataset import open_run
from rramlab.drivers.station import Station
from rramlab.drivers.station_config import load_station_config, parse_station_config
from rramlab.protocols.recipe import parse_recipe
from rramlab.protocols.runner import run_recipe

_tags = itertools.count()
SMU_BL = "USB0::0x05E6::0x2450::04365704::INSTR"
FORMING = """
[recipe]
name = "list"
[[steps]]
protocol = "forming"
cells = "all"
[steps.params]
current_limit = 1e-3
fine_from = 2.6
"""
LIST = re.compile(r':SENS:CURR:NPLC (\S+);:SOUR:LIST:VOLT (\S+);:SOUR:SWE:VOLT:LIST 1,0,1,OFF;:TRAC:CLE "defbuffer1";'
                  r':INIT;\*WAI;:TRAC:DATA\? 1,(\d+),"defbuffer1",READ,SOURSTAT,REL;:SYST:ERR:COUN\?')


def station(loops: str, seed: int = 5) -> Station:
    text = load_station_config("sim_2450x2_b2200a").text.replace("[station]\n", f'[station]\nloops = "{loops}"\n', 1)
    return Station(parse_station_config(text), visa_library=f"2450x2_b2200a?seed={seed}&tag=list{next(_tags)}@rramlab")


def formed(row: int, col: int, tmp_path: Path) -> Station:
    """An opened 2450 station (loops auto) whose cell (row, col) the forming protocol formed and RESET."""
    st = station("auto")
    run_recipe(st, parse_recipe(FORMING.replace('cells = "all"', f"cells = [[{row}, {col}]]")), tmp_path / "f.h5")
    st.open()
    return st


def writes(st: Station) -> list[str]:
    bench = st.instruments["smu_bl"].adapter.connection.visalib.bench
    return [e.data.decode().rstrip("\n") for e in bench.transcript.entries
            if e.direction == "write" and e.resource == SMU_BL]


def test_forming_reset_sweep_is_one_list_sweep_per_cell_and_matches_the_pc_path(tmp_path: Path) -> None:
    runs, sent = {}, {}
    for loops in ("auto", "pc"):
        st = station(loops)
        run_recipe(st, parse_recipe(FORMING), tmp_path / f"{loops}.h5")
        runs[loops], sent[loops] = open_run(tmp_path / f"{loops}.h5"), writes(st)
    # on-instrument: each formed cell's RESET sweep (0 … -1.4 V in 20 mV steps at 1 PLC) is one message
    sweeps = [m for m in map(LIST.fullmatch, sent["auto"]) if m]
    fa, fp = runs["auto"].table("forming"), runs["pc"].table("forming")
    assert len(sweeps) == int(fa["formed"].sum()) == 64
    reset = ",".join(repr(round(-0.02 * k, 6) or 0.0) for k in range(71))
    assert {(m[1], m[2], m[3]) for m in sweeps} == {("1.0", reset, "71")}
    assert not any(LIST.fullmatch(w) for w in sent["pc"])
    point = re.compile(r":SOUR:VOLT (\S+);:MEAS:CURR\?;:SOUR:VOLT:ILIM:TRIP\?;:SYST:ERR:COUN\?")
    n_auto, n_pc = (sum(1 for w in sent[k] if point.fullmatch(w)) for k in ("auto", "pc"))
    assert n_pc - n_auto == 64 * 71                       # the PC path's RESET points, one round trip each
    # the same die, the forming ramp PC-run either way: the same V_form cell by cell
    np.testing.assert_array_equal(fa["v_form"], fp["v_form"])
    # the RESET sweeps' readings: every level, the same limit flags (none at 1 mA), equal distributions
    sa, sp = (r.table("forming_sweep") for r in (runs["auto"], runs["pc"]))
    ra, rp = sa[sa["branch"] == "reset"], sp[sp["branch"] == "reset"]
    assert len(ra) == len(rp) == 64 * 71
    np.testing.assert_array_equal(ra["v"].to_numpy(), rp["v"].to_numpy())
    assert not ra["compliance"].any() and not rp["compliance"].any()
    ga, gp = fa["g_after_reset"].to_numpy(), fp["g_after_reset"].to_numpy()
    se = np.hypot(ga.std(ddof=1), gp.std(ddof=1)) / np.sqrt(64)
    assert abs(ga.mean() - gp.mean()) < 3 * se
    assert 0.7 < ga.std(ddof=1) / gp.std(ddof=1) < 1.4
    # the current at the sweep's end (-1.4 V), cell by cell in the mean: the RESET happened alike
    ia, ip = (t.groupby(["row", "col"])["i"].last().to_numpy() for t in (ra, rp))
    assert abs(ia.mean() - ip.mean()) < 3 * np.hypot(ia.std(ddof=1), ip.std(ddof=1)) / 8
    # bench time of a RESET sweep (first to last reading, timing model): the list sweep skips the round trips
    ta, tp = (t.groupby(["row", "col"])["t"].agg(lambda x: x.max() - x.min()).to_numpy() for t in (ra, rp))
    assert ta.mean() < tp.mean()
    assert ta.mean() > 70 * 0.02                           # still 70 steps of at least 1 PLC at 50 Hz


def test_list_sweep_flags_the_points_at_the_current_limit(tmp_path: Path) -> None:
    # a formed cell read up its SET branch with a current limit below the transistor's: the limit flags come from
    # the buffer's source status (STAT_LIMIT) and must be exactly the readings clamped at the limit
    st = formed(2, 3, tmp_path)
    try:
        levels = [round(0.05 * k, 6) for k in range(41)]
        out = st.staircase(2, 3, levels, nplc=[1.0] * 41, gate_voltage=1.2, current_limit=20e-6)
    finally:
        st.close()
    current = np.array([r.current for r in out])
    flags = np.array([r.compliance for r in out])
    assert [r.voltage for r in out] == levels
    assert flags.any() and not flags.all()
    np.testing.assert_array_equal(flags, np.abs(current) >= 20e-6 * (1 - 1e-3))
    assert np.all(np.diff([r.t for r in out]) >= 0.02)     # one 1-PLC reading per level at 50 Hz at least


def test_a_staircase_splits_into_list_sweeps_per_nplc_run_and_hundred_levels(tmp_path: Path) -> None:
    st = formed(0, 0, tmp_path)
    try:
        before = len(writes(st))
        levels = [round(-0.005 * k, 6) for k in range(150)]
        nplc = [0.1] * 20 + [1.0] * 130
        out = st.staircase(0, 0, levels, nplc=nplc, gate_voltage=1.2, current_limit=1e-3)
        sweeps = [m for m in map(LIST.fullmatch, writes(st)[before:]) if m]
        # a stop rule keeps the PC in the loop on the 2450 (its list sweeps run to the end)
        stopped = st.staircase(0, 0, [0.0, 0.1, 0.2], nplc=[1.0] * 3, gate_voltage=1.2, current_limit=1e-3,
                               stop_current=1e-3)
    finally:
        st.close()
    assert [(m[1], int(m[3])) for m in sweeps] == [("0.1", 20), ("1.0", 100), ("1.0", 30)]
    assert [r.voltage for r in out] == levels
    assert all(b.t > a.t for a, b in itertools.pairwise(out))
    assert len(stopped) == 3 and len([m for m in map(LIST.fullmatch, writes(st)[before:]) if m]) == 3


def test_bad_levels_are_refused_before_any_write() -> None:
    st = station("auto")
    st.open()
    try:
        before = len(writes(st))
        with pytest.raises(Exception, match="sweep voltage"):
            st.staircase(0, 0, [0.0, -30.0], nplc=[1.0, 1.0], gate_voltage=1.2, current_limit=1e-3)
        assert writes(st)[before:] == []
    finally:
        st.close()
