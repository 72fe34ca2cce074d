"""The ``rramlab`` command line end to end: the README's ``rramlab demo`` on the embedded bench, its
JSON summary against the published device figures, the run file, figures, ``info``/``report``/``check``.

Tolerances are statistical: the demo forms 64 cells and programs/reads 32, so a mean of n samples
with spread σ is allowed 3·σ/√n and a spread 3·σ/√(2(n−1)) around the published value
(arXiv 2502.04524).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rramlab.analysis.dataset import open_run
from rramlab.analysis.retention import TEN_YEARS
from rramlab.protocols.recipe import demo_recipe

SEED = 7


def rramlab_command() -> list[str]:
    """The installed console script next to this interpreter (as the README runs it), else the module."""
    script = Path(sys.executable).with_name("rramlab")
    if script.exists():
        return [str(script)]
    found = shutil.which("rramlab")
    return [found] if found else [sys.executable, "-m", "rramlab.protocols.cli"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*rramlab_command(), *args], cwd=cwd, text=True, capture_output=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cwd = tmp_path_factory.mktemp("demo")
    proc = run_cli("demo", "--seed", str(SEED), "--out", "demo.h5", "--json", "summary.json",
                   "--figures", "figures", cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"cwd": cwd, "stdout": proc.stdout, "summary": json.loads((cwd / "summary.json").read_text())}


def within(value: float, expected: float, tol: float) -> bool:
    return value is not None and abs(value - expected) <= tol


def test_demo_completes_and_prints_the_summary_table(demo: dict[str, Any]) -> None:
    s = demo["summary"]
    assert s["exit_status"] == "completed"
    assert "rramlab summary" in demo["stdout"] and "V_form mean" in demo["stdout"]
    # The retention step reads out to ten years of bench time in seconds of wall time.
    assert s["sim_hardware_time_s"] >= TEN_YEARS
    assert 0 < s["wall_time_s"] < 240
    assert s["sim_hardware_time_s"] / s["wall_time_s"] > 1e6


def test_demo_run_file_holds_every_step_and_cell(demo: dict[str, Any]) -> None:
    run = open_run(demo["cwd"] / "demo.h5")
    assert run.exit_status == "completed"
    recipe = demo_recipe()
    assert [s.name for s in run.steps] == [s.label for s in recipe.steps]
    assert all(s.status == "completed" for s in run.steps)
    # One durability point per cell operation: forming 64, I-V 4, program-verify 2 × 32 cells × 4
    # rounds, endurance 4 cells × 10 checkpoints (1000 cycles, 3 per decade), and the retention reads
    # in batches.
    cells = [len(s.cells) for s in run.steps]
    assert cells == [64, 4, 32, 32, 32, 4]
    retention = run.table("retention")
    batches = demo["summary"]["units_done"] - (64 + 4 + 2 * 32 * 4 + 4 * 10)
    assert len(retention) == 32 * retention.groupby(["row", "col"]).size().iloc[0]
    # at most 64 reads per batch, and a batch before every long wait (at most one per read), plus the last
    assert len(retention) // 64 + 1 <= batches <= len(retention) + 1
    assert len(run.table("forming")) == 64
    pv = run.table("program_verify_result")
    assert len(pv) == 2 * 32 * 4                              # two acceptances × 32 cells × 4 rounds
    assert set(pv["acceptance"]) == {0.002, 0.02}
    units = run.table("retention").attrs["units"]
    assert units["g"] == "S" and units["tau"] == "s"


def test_demo_forming_matches_the_published_distribution(demo: dict[str, Any]) -> None:
    f = demo["summary"]["forming"]
    assert f["n_cells"] == 64 and f["yield"] >= 0.95
    # arXiv 2502.04524: V_form ≈ 3.17 V mean, σ ≈ 75 mV.
    assert within(f["v_form_mean"], 3.17, 3 * 0.075 / math.sqrt(64) + 0.01), f
    assert within(f["v_form_std"], 0.075, 3 * 0.075 / math.sqrt(126) + 0.005), f


def test_demo_switching_below_one_and_a_half_volts(demo: dict[str, Any]) -> None:
    sw = demo["summary"]["switching"]
    assert sw["set_fraction"] == 1.0 and sw["reset_fraction"] == 1.0
    assert 0.5 < sw["v_set_mean"] < 1.5 and -1.5 < sw["v_reset_mean"] < -0.5
    assert sw["on_off_median"] > 2.0


@pytest.mark.parametrize(("label", "slope"), [("2%", 0.01129), ("0.2%", 0.001069)])
def test_demo_programming_noise_slopes(demo: dict[str, Any], label: str, slope: float) -> None:
    pv = by_acceptance(demo["summary"], label)
    assert pv["n_targets"] == 32 and pv["success_rate"] >= 0.95
    # Published σ(G) slope (arXiv 2502.04524) within 3 standard errors of the fit plus 10 %.
    assert within(pv["sigma_slope"], slope, 3 * pv["sigma_slope_se"] + 0.1 * slope), pv
    assert abs(pv["sigma_intercept_uS"]) < 3 * pv["sigma_intercept_se_uS"] + 0.02
    iterations = {"2%": (5, 40), "0.2%": (50, 300)}[label]
    assert iterations[0] < pv["mean_iterations"] < iterations[1]


# 1 h: the paper's average over all programmed states (−0.68 µS; −0.73 µS at 50 µS, where cells near
# the bottom of their window cannot drift as far); 10 y: the log-time extrapolation at 50 µS.
@pytest.mark.parametrize(("label", "mean", "sigma"), [("1h", -0.68, 0.76), ("10y", -1.74, 1.23)])
def test_demo_relaxation_matches_the_published_law(demo: dict[str, Any], label: str, mean: float,
                                                   sigma: float) -> None:
    r = demo["summary"]["retention"]
    n = r["n"][label]
    assert n == 32
    assert within(r["mean_shift_uS"][label], mean, 3 * sigma / math.sqrt(n)), r
    assert within(r["sigma_uS"][label], sigma, 3 * sigma / math.sqrt(2 * (n - 1))), r
    assert within(r["fit"]["a_uS"], 0.0890, 0.25 * 0.0890)


def by_acceptance(summary: dict[str, Any], label: str) -> dict[str, Any]:
    """The one program-verify section (one per step) at acceptance ``label`` ("2%")."""
    (section,) = [s for s in summary["program_verify"].values() if s["acceptance_label"] == label]
    return section


def test_demo_mvm_error_grows_with_time_as_published(demo: dict[str, Any]) -> None:
    mvm = demo["summary"]["mvm"]["0.2%"]
    rmse = mvm["rmse"]
    # every time measured: the program-verify step reads each cell 1 s after programming, retention runs to 10 y
    assert set(mvm["source"].values()) == {"measured"} and mvm["n"]["1s"] >= 115 and mvm["n"]["10y"] >= 28
    # arXiv 2502.04524, MVM (published ≈ 0.05-0.06 at 1 s, 0.2-0.25 at 10 y)
    assert 0.025 < rmse["1s"] < 0.08 and 0.15 < rmse["10y"] < 0.35
    assert rmse["1s"] < rmse["1h"] < rmse["1d"] < rmse["10y"]


def test_demo_endurance_keeps_the_window_open(demo: dict[str, Any]) -> None:
    e = demo["summary"]["endurance"]
    assert e["n_cells"] == 4 and e["cycles_max"] == 1000 and e["failed_fraction"] == 0.0   # no stuck cells
    assert e["on_off_last"] > 2.0 and e["g_lrs_last"] > 50e-6 and e["g_hrs_last"] < 30e-6
    run = open_run(demo["cwd"] / "demo.h5")
    assert sorted(set(run.table("endurance")["cycle"])) == [1, 2, 5, 10, 22, 46, 100, 215, 464, 1000]


def test_demo_writes_the_report_figures(demo: dict[str, Any]) -> None:
    names = sorted(p.name for p in (demo["cwd"] / "figures").glob("*.png"))
    assert names == ["endurance.png", "forming.png", "iterations.png", "iv_loops.png", "mvm_rmse.png",
                     "program_verify_traces.png", "programmed_cdfs.png", "programming_noise.png", "relaxation.png",
                     "retention_cdfs.png", "retention_levels.png", "switching_voltages.png"]
    for name in names:
        assert (demo["cwd"] / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_and_info_read_the_run_file(demo: dict[str, Any]) -> None:
    proc = run_cli("report", "demo.h5", cwd=demo["cwd"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("forming", "switching", "program_verify", "retention", "endurance", "mvm"):
        assert report[key] == demo["summary"][key]
    assert report["exit_status"] == "completed"
    info = run_cli("info", "demo.h5", cwd=demo["cwd"])
    assert info.returncode == 0 and "exit status completed" in info.stdout
    assert "program_verify_result" in info.stdout and "retention" in info.stdout
    assert "tau [s]" in info.stdout and "formed [bool]" in info.stdout       # units survive the console


def test_demo_never_overwrites_a_run_file(demo: dict[str, Any]) -> None:
    before = (demo["cwd"] / "demo.h5").read_bytes()
    proc = run_cli("demo", "--out", "demo.h5", "--quiet", cwd=demo["cwd"])
    assert proc.returncode != 0 and "demo.h5" in proc.stdout
    assert (demo["cwd"] / "demo.h5").read_bytes() == before


def test_check_refuses_a_recipe_outside_the_envelope(tmp_path: Path) -> None:
    station = Path(__file__).parents[1] / "examples" / "lab_2636b_707b.toml"
    good = tmp_path / "good.toml"
    step = '[[steps]]\nname = "form"\nprotocol = "forming"\ncells = "all"\n[steps.params]\ncurrent_limit = 1e-3\n'
    good.write_text(step)
    proc = run_cli("check", str(good), "--station", str(station), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(step + "v_stop = 9.0\n")
    proc = run_cli("check", str(bad), "--station", str(station), cwd=tmp_path)
    assert proc.returncode == 2
    assert "v_stop" in proc.stdout and "9" in proc.stdout
    bad.write_text(step + "attempts = 2.5\n")                  # a parameter the step cannot take at all
    proc = run_cli("check", str(bad), "--station", str(station), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert "attempts must be an integer within [1, 100], got 2.5" in " ".join(proc.stdout.split())


STEP = '[[steps]]\nprotocol = "read"\ncells = [[0, 0]]\n'
LAB = Path(__file__).parents[1] / "examples" / "lab_2636b_707b.toml"


@pytest.mark.parametrize("case, args, expected", [
    ("unreachable instrument", ["run", "r.toml", "--station", "bad_lib.toml"],
     "instruments.smu: cannot open GPIB0::26::INSTR with VISA library '@nosuchlib'"),
    ("not an HDF5 file", ["info", "r.toml"], "r.toml: not an HDF5 file"),
    ("HDF5, not a run", ["report", "plain.h5"], "plain.h5: not an rramlab run file"),
    ("binary recipe", ["check", "plain.h5", "--station", str(LAB)], "plain.h5: not a UTF-8 text (TOML) file"),
    ("negative seed", ["demo", "--seed", "-5"], "must be an integer 0 … 2**63 - 1, got -5"),
    ("bool cell", ["check", "bool_cell.toml", "--station", str(LAB)], "each cell is [row, col], got [True, 0]"),
    ("scalar list", ["check", "scalar.toml", "--station", str(LAB)], "targets must be a list, e.g. [2e-05]"),
    ("no cells", ["check", "nocells.toml", "--station", str(LAB)], "steps[0].cells: missing"),
    ("unit mistake in station", ["check", "r.toml", "--station", "wide.toml"],
     "safety.max_pulse_width: must be within (0, 1.0] s, got 1000.0"),
    ("json into a missing directory", ["demo", "--json", "nodir/s.json", "--quiet"], "directory nodir does not"),
    ("figures onto a file", ["demo", "--figures", "r.toml", "--quiet"], "--figures r.toml exists and is not"),
    ("json onto the run file", ["demo", "--out", "x.h5", "--json", "x.h5", "--quiet"],
     "--json x.h5 is the run file itself"),
    ("step not a table", ["check", "notable.toml", "--station", str(LAB)], "steps[0]: expected a [[steps]] table"),
    ("missing run file", ["info", "nosuch.h5"], "nosuch.h5: no such file"),
])
def test_user_mistakes_are_refused_with_a_message_not_a_traceback(tmp_path: Path, case: str, args: list[str],
                                                                  expected: str) -> None:
    import h5py

    (tmp_path / "r.toml").write_text(STEP)
    lab = LAB.read_text()
    (tmp_path / "bad_lib.toml").write_text(lab.replace('visa_library = ""', 'visa_library = "@nosuchlib"'))
    (tmp_path / "wide.toml").write_text(lab.replace("max_pulse_width = 1e-3", "max_pulse_width = 1000"))
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = [1, 2]
    (tmp_path / "bool_cell.toml").write_text(STEP.replace("[[0, 0]]", "[[true, 0]]"))
    (tmp_path / "scalar.toml").write_text('[[steps]]\nprotocol = "program_verify"\ncells = [[0, 0]]\n'
                                          "[steps.params]\ntargets = 20e-6\n")
    (tmp_path / "nocells.toml").write_text('[[steps]]\nprotocol = "read"\n')
    (tmp_path / "notable.toml").write_text("steps = [1]\n")
    proc = run_cli(*args, cwd=tmp_path)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, out
    assert "Traceback" not in out and expected in out, out
    assert not list(tmp_path.glob("rramlab-demo-*.h5"))             # refused before any run began

    assert not (tmp_path / "x.h5").exists()


def test_a_run_that_fails_after_it_began_exits_1_with_the_data_kept(tmp_path: Path) -> None:
    """The station file says slot 4 holds a card, the mainframe has none there: the file cannot know, the
    instrument tells at open (slot[4].idn), before any relay moves; the run file already exists and is kept."""
    lab = LAB.read_text().replace('visa_library = ""', 'visa_library = "?tag=cli-fail@rramlab"')
    lab = lab.replace('cards = { 1 = "7174A", 2 = "7174A", 3 = "7174A" }',
                      'cards = { 1 = "7174A", 2 = "7174A", 3 = "7174A", 4 = "7174A" }')
    (tmp_path / "st.toml").write_text(lab.replace('SL = "matrix:3:1-8"', 'SL = "matrix:4:1-8"'))
    (tmp_path / "r.toml").write_text(STEP)
    proc = run_cli("run", "r.toml", "--station", "st.toml", "--out", "f.h5", cwd=tmp_path)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "Run failed: StationMismatch: instruments.matrix.cards: slot 4 should hold a 7174A, the matrix reports " \
           "an empty slot" in out and "Data kept in f.h5 (exit status 'failed')" in out, out
    run = open_run(tmp_path / "f.h5")
    assert run.exit_status == "failed" and "slot 4" in run.exit_message
