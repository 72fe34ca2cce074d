"""Probe-station campaigns on the simulated wafer: every die of the round map through the CLI, one run file per
die plus the campaign index, per-die contact and safe state, the wafer's gradient seen in the measured figures,
bad dies, chuck temperatures per step; and the campaign file's checks."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvisa

from rramlab.analysis.dataset import open_run
from rramlab.analysis.summary import summarize
from rramlab.protocols.campaign import CampaignError, die_file, parse_campaign, select_dies
from rramlab.protocols.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "examples" / "campaign_wafer.toml"
TAG = "campaign-cli"


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shipped campaign on the shipped prober station, in this process (the bench stays inspectable)."""
    tmp = tmp_path_factory.mktemp("campaign")
    station = tmp / "station.toml"
    station.write_text((ROOT / "examples" / "sim_2636b_707b_sentio.toml").read_text()
                       .replace('"2636b_707b_sentio@rramlab"', f'"2636b_707b_sentio?tag={TAG}@rramlab"'))
    code = cli_main(["run", str(CAMPAIGN), "--station", str(station), "--out", str(tmp / "W12"), "--quiet",
                     "--meta", "notes=campaign test"])
    bench = pyvisa.ResourceManager(f"2636b_707b_sentio?tag={TAG}@rramlab").visalib.bench
    return {"code": code, "dir": tmp / "W12", "bench": bench}


def index(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / "campaign.jsonl").read_text().splitlines()]


def test_every_die_of_the_round_map_once_with_its_own_file(campaign: dict[str, Any]) -> None:
    assert campaign["code"] == 0
    events = index(campaign["dir"])
    dies = [tuple(d) for d in events[0]["dies"]]
    wafer = campaign["bench"].wafer
    assert len(dies) == 21 and sorted(dies) == sorted(wafer.dies)            # the prober's route = the wafer's dies
    done = {tuple(e["die"]): e["status"] for e in events if e["event"] == "die_done"}
    assert set(done) == set(dies)
    assert done[(-2, -1)] == "no_contact"                                    # the bench file's open die
    assert all(s == "completed" for d, s in done.items() if d != (-2, -1))
    for die in dies:
        run = open_run(die_file(campaign["dir"], die))
        sample = run.metadata["extras"]["sample"]
        assert (sample["die_col"], sample["die_row"], sample["wafer"], sample["notes"]) == (*die, "W12",
                                                                                          "campaign test")
        if die != (-2, -1):
            assert run.exit_status == "completed" and len(run.table("forming")) == 16


def test_contact_only_while_measuring_and_separated_after_the_sources(campaign: dict[str, Any]) -> None:
    """From the bench's event log: each die is touched once (after the step to it), the chuck separates at the
    end of its run after the outputs went off and the relays opened, and no cell is biased while separated."""
    log = campaign["bench"].events.events
    wafer = [e for e in log if e.source == "wafer"]
    touched = [tuple(e.details["die"]) for e in wafer if e.kind == "contact"]
    assert sorted(touched) == sorted(campaign["bench"].wafer.dies)           # each die contacted exactly once
    kinds = [e.kind for e in wafer]
    assert all(a == "contact" and b == "separated" for a, b in zip(kinds[::2], kinds[1::2], strict=True))
    for e in wafer:
        if e.kind != "separated":
            continue
        before = [x for x in log if x.time <= e.time and x.source in ("smu.a", "smu.b") and x.kind == "output"]
        assert not before or before[-1].details.get("state", 0) in (0, "0", False), before[-1]


def test_the_wafer_gradient_appears_in_the_measured_forming_voltage(campaign: dict[str, Any]) -> None:
    wafer = campaign["bench"].wafer
    measured, built, r2 = [], [], []
    for die in wafer.dies:
        info = wafer.info[die]
        if info.kind != "good":
            continue
        forming = open_run(die_file(campaign["dir"], die)).table("forming")
        measured.append(float(forming["v_form"].mean()))
        built.append(info.v_form_mean)
        r2.append(info.r_fraction ** 2)
    measured, built, r2 = map(np.asarray, (measured, built, r2))
    # 16 cells per die, σ 0.075 V each: the die means carry ±0.02 V of sampling; the built gradient is 0.12 V
    assert np.corrcoef(measured, built)[0, 1] > 0.7
    slope = np.polyfit(r2, measured, 1)[0]
    assert abs(slope - wafer.params.v_form_edge) < 0.06, slope
    assert np.all(np.abs(measured - built) < 0.08)


def test_bad_dies_show_in_their_data(campaign: dict[str, Any]) -> None:
    short = open_run(die_file(campaign["dir"], (2, 1))).table("contact_check")
    assert (short["i"] > 1e-5).all()                                         # a shorted die conducts unformed
    good = open_run(die_file(campaign["dir"], (0, 0))).table("contact_check")
    assert (good["i"] < 1e-8).all()
    missing = open_run(die_file(campaign["dir"], (-2, -1)))
    assert missing.exit_status == "failed" and "no contact" in missing.exit_message


def test_chuck_temperature_recorded_per_step(campaign: dict[str, Any]) -> None:
    t = open_run(die_file(campaign["dir"], (0, 0))).table("chuck_temperature")
    start = t[t["point"] == "start"].set_index("step")
    assert start.loc["retention_85C", "setpoint_c"] == 85.0
    assert abs(start.loc["retention_85C", "temperature_c"] - 85.0) <= 0.5
    assert abs(start.loc["retention_25C", "temperature_c"] - 25.0) <= 0.5
    assert np.isnan(start.loc["program_verify_2pct", "setpoint_c"])          # no set-point: the chuck as it was
    assert len(t) == 2 * 4                                                    # start and end of each step


def test_campaign_files_are_checked_before_anything(tmp_path: Path) -> None:
    text = CAMPAIGN.read_text()
    for old, new, message in (('dies = "all"', "dies = [[0, 0], [0, 0]]", "listed twice"),
                              ('dies = "all"', 'dies = { every = 0 }', "every = n >= 1"),
                              ('dies = "all"', 'dies = "some"', "[campaign].dies"),
                              ("[campaign]", "[campaign]\ncolour = 1", "unknown key(s) colour")):
        with pytest.raises(CampaignError, match=re.escape(message)):
            parse_campaign(text.replace(old, new, 1))
    route = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)]
    assert select_dies({"every": 2, "offset": 1}, route) == [(1, 0), (-1, 0)]
    assert select_dies({"columns": "0..1"}, route) == [(0, 0), (1, 0), (0, 1), (0, -1)]
    with pytest.raises(CampaignError, match="not on the prober's wafer map"):
        select_dies([[5, 5]], route)
    (tmp_path / "hot.toml").write_text(text.replace("temperature_c = 85.0", "temperature_c = 180.0"))
    code = cli_main(["check", str(tmp_path / "hot.toml"), "--station", "sim_2636b_707b_sentio"])
    assert code == 2                                                          # beyond safety.temperature_c
    code = cli_main(["run", str(CAMPAIGN), "--station", "sim_2636b_707b", "--out", str(tmp_path / "x")])
    assert code == 2 and not (tmp_path / "x" / "campaign.jsonl").exists()     # no prober, no temperature control


def test_retention_at_85C_relaxes_faster_by_the_arrhenius_factor(campaign: dict[str, Any]) -> None:
    """Rows read at 85 °C against rows read at 25 °C on every good die: the mean shift g − g0 at the last read
    follows μ = −a·ln(τ_eq), τ_eq the time at 25 °C equivalent to the chuck's history since programming (the
    Arrhenius factor exp(Ea/k·(1/T_ref − 1/T)) recomputed here), so the 85 °C rows have shifted further by
    −a·ln(τ_eq,85/τ_eq,25)."""
    bench = campaign["bench"]
    p = bench.params
    af = math.exp(p.relax_activation_energy / 8.617333262e-5 * (1 / p.temperature_ref - 1 / (85.0 + 273.15)))
    assert bench.thermal.acceleration(85.0 + 273.15) == pytest.approx(af, rel=1e-12)
    shifts: dict[str, list[float]] = {"retention_25C": [], "retention_85C": []}
    log_age: dict[str, list[float]] = {"retention_25C": [], "retention_85C": []}
    for die, info in bench.wafer.info.items():
        if info.kind != "good":
            continue
        ret = open_run(die_file(campaign["dir"], die)).table("retention")
        for step in shifts:
            last = ret[ret["step"] == step].sort_values("t").groupby(["row", "col"]).tail(1)
            shifts[step] += (last["g"] - last["g0"]).tolist()
            log_age[step] += [math.log(bench.thermal.age_one(t, t0)) for t, t0 in zip(last["t"], last["t_prog"],
                                                                                       strict=True)]
    measured = np.mean(shifts["retention_85C"]) - np.mean(shifts["retention_25C"])
    predicted = -p.relax_mean_slope * (np.mean(log_age["retention_85C"]) - np.mean(log_age["retention_25C"]))
    se = math.sqrt(np.var(shifts["retention_85C"], ddof=1) / len(shifts["retention_85C"])
                   + np.var(shifts["retention_25C"], ddof=1) / len(shifts["retention_25C"]))
    assert predicted < -3 * se                                               # a difference the data can show
    assert abs(measured - predicted) < 3 * se, (measured, predicted, se)


def test_each_die_file_ledgers_only_its_own_pulses(campaign: dict[str, Any]) -> None:
    """The pulse ledger is per die: a cell (r, c) of one die never carries the pulses of (r, c) on another; each
    file's ledger equals the pulses its program-verify table records (the only pulsing step)."""
    for die, info in campaign["bench"].wafer.info.items():
        if info.kind == "open":
            continue
        run = open_run(die_file(campaign["dir"], die))
        pv = run.table("program_verify")
        pulses = pv[pv["v_pulse"] != 0].groupby(["row", "col"]).size().to_dict()
        assert {c: n for c, n in run.state.ledger.items() if n} == pulses, die


def test_the_wafer_report_maps_the_gradient_and_flags_the_bad_dies(campaign: dict[str, Any], tmp_path: Path) -> None:
    """rramlab report DIR: the V_form map's die colours follow the measured per-die means; the shorted die
    (forms at the first ramp step) and the open die (no contact) are flagged bad, and no good die is."""
    from rramlab.analysis.catalog import run_record
    from rramlab.analysis.wafer_map import die_is_bad, forming_outliers

    runs = [open_run(die_file(campaign["dir"], d)) for d in campaign["bench"].wafer.dies]
    records = [run_record(run, summarize(run)) for run in runs]
    flags = [die_is_bad(r) or o for r, o in zip(records, forming_outliers(records), strict=True)]
    bad = {(r["die_col"], r["die_row"]) for r, f in zip(records, flags, strict=True) if f}
    kinds = campaign["bench"].wafer.info
    assert bad == {d for d, i in kinds.items() if i.kind in ("short", "open")}
    code = cli_main(["report", str(campaign["dir"]), "--figures", str(tmp_path / "figs")])
    assert code == 0
    assert (tmp_path / "figs" / "wafer_maps" / "wafer_W12_v_form_mean.png").stat().st_size > 5000


def test_ls_lists_the_campaigns_dies(campaign: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli_main(["ls", str(campaign["dir"]), "--wafer", "W12", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert sorted((r["die_col"], r["die_row"]) for r in rows) == sorted(campaign["bench"].wafer.dies)
    assert cli_main(["ls", str(campaign["dir"]), "--wafer", "W13", "--json"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_chuck_that_moves_during_a_step_is_recorded_as_it_moves(tmp_path: Path) -> None:
    """A set-point given outside the recipe (the chuck ramping at 0.2 K/s during a retention step): besides the
    step's start and end, 'during' rows follow the temperature, each within the chuck's ramp."""
    from rramlab.drivers.station import Station
    from rramlab.protocols.campaign import _contact_at
    from rramlab.protocols.recipe import parse_recipe
    from rramlab.protocols.runner import run_recipe

    recipe = parse_recipe("""
[recipe]
name = "drift"
[[steps]]
protocol = "retention"
cells = [[0, 0], [0, 1]]
[steps.params]
t_first = 1.0
horizon = 1000.0
points_per_decade = 8
""")
    st = Station.from_file("sim_2636b_707b_sentio", visa_library="2636b_707b_sentio?tag=drift@rramlab")
    try:
        def hot_contact(station: Station) -> None:
            _contact_at((0, 0))(station)
            station.prober.set_chuck_temperature_c(60.0)           # no wait: the chuck ramps during the step

        run_recipe(st, recipe, tmp_path / "drift.h5", after_open=hot_contact)
    finally:
        st.close()
    t = open_run(tmp_path / "drift.h5").table("chuck_temperature").sort_values("t")
    assert t["point"].iloc[0] == "start" and t["point"].iloc[-1] == "end"
    during = t[t["point"] == "during"]
    assert len(during) >= 5
    temps = t["temperature_c"].to_numpy()
    assert np.all(np.diff(temps) > 0) and temps[0] < 27.0 and temps[-1] > 55.0       # heating all along
    dt = np.diff(t["t"].to_numpy())
    assert np.all(np.diff(temps) <= 0.2 * dt + 0.02)                                  # never faster than the ramp
