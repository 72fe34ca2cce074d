"""Sample metadata (recipe [metadata], --meta) and absolute time (the UTC epoch of every clock origin)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rramlab.analysis.dataset import open_run
from rramlab.analysis.report_html import die_label, run_info
from rramlab.protocols.recipe import RecipeError, parse_meta_options, parse_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """
[recipe]
name = "meta"
[metadata]
operator = "jdoe"
wafer = "W12"
lot = "L7"
die = "3,4"
notes = "after anneal"
temperature_setpoint = 25
[[steps]]
protocol = "read"
cells = [[0, 0], [0, 1]]
"""


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rramlab.protocols.entry", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_recipe_metadata_and_meta_options_are_stored_shown_and_label_the_figures(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(RECIPE)
    proc = cli(tmp_path, "run", "r.toml", "--station", "sim_2636b_707b", "--out", "r.h5", "--quiet",
               "--meta", "die=5,6", "--meta", "probe_card=PC-2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = open_run(tmp_path / "r.h5")
    sample = run.metadata["extras"]["sample"]
    assert sample == {"operator": "jdoe", "wafer": "W12", "lot": "L7", "die": "5,6", "notes": "after anneal",
                      "temperature_setpoint": 25, "probe_card": "PC-2"}            # --meta over [metadata]
    info = cli(tmp_path, "info", "r.h5").stdout
    lines = [line.strip() for line in info.splitlines()]
    assert lines.index("operator: jdoe") < lines.index("wafer: W12") < lines.index("die: 5,6")
    assert "probe_card: PC-2" in lines and "notes: after anneal" in lines
    assert die_label(run_info(run)) == "die W12 5,6"


def test_every_t_maps_to_utc_through_the_clock_origin(tmp_path: Path) -> None:
    """The simulated bench's calendar: t = 0 at the bench file's epoch (default 2025-01-01T00:00:00Z); another
    epoch in the bench file moves it; rramlab info prints it."""
    bench = (ROOT / "simulator" / "benches" / "2636b_707b.toml").read_text().replace(
        'name = "default"', 'name = "epoch-test"\nepoch = "2026-03-01T12:00:00+01:00"')
    (tmp_path / "bench.toml").write_text(bench)
    station = (ROOT / "examples" / "sim_2636b_707b.toml").read_text().replace(
        '"2636b_707b@rramlab"', f'"{tmp_path / "bench.toml"}@rramlab"')
    (tmp_path / "st.toml").write_text(station)
    (tmp_path / "r.toml").write_text(RECIPE)
    proc = cli(tmp_path, "run", "r.toml", "--station", "st.toml", "--out", "r.h5", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = open_run(tmp_path / "r.h5")
    epoch = run.sessions[0]["clock_epoch_unix"]
    assert epoch == datetime(2026, 3, 1, 11, 0, tzinfo=timezone.utc).timestamp()
    t = run.table("read")["t"].to_numpy()
    assert (t > 0).all() and (t < 60).all()                  # seconds after the bench's t = 0, within a minute
    assert "clock origin (t = 0 s of every t column): 2026-03-01T11:00:00.000+00:00" in \
        " ".join(cli(tmp_path, "info", "r.h5").stdout.split())


def test_a_system_clock_origin_is_the_wall_time_of_the_run() -> None:
    from rramlab.drivers.clock import SystemClock

    before = datetime.now(timezone.utc).timestamp()
    clock = SystemClock()
    assert before - 1 <= clock.origin_unix <= datetime.now(timezone.utc).timestamp()
    assert abs(clock.origin_unix + clock.now() - datetime.now(timezone.utc).timestamp()) < 0.5


@pytest.mark.parametrize(("text", "message"), [
    ('[recipe]\nname = "x"\noperator = "jdoe"\n[[steps]]\nprotocol = "read"\ncells = "all"\n',
     "[recipe]: operator belong in a [metadata] table"),
    ('[recipe]\nname = "x"\n[metadata]\noperator = true\n[[steps]]\nprotocol = "read"\ncells = "all"\n',
     "[metadata].operator: text or a number"),
    ('[recipe]\nname = "x"\n[metadata]\n"bad key" = "v"\n[[steps]]\nprotocol = "read"\ncells = "all"\n',
     "must start with a letter"),
    ('[recipe]\nname = "x"\nmetadata = "v"\n[[steps]]\nprotocol = "read"\ncells = "all"\n',
     "[recipe]: unknown key(s) 'metadata'"),
])
def test_bad_metadata_is_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(RecipeError) as e:
        parse_recipe(text)
    assert message in str(e.value)


def test_bad_meta_options_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        parse_meta_options(["operator"])
    assert parse_meta_options(["die=3,4", "notes=a=b"]) == {"die": "3,4", "notes": "a=b"}
    (tmp_path / "r.toml").write_text(RECIPE)
    proc = cli(tmp_path, "run", "r.toml", "--station", "sim_2636b_707b", "--out", "r.h5", "--meta", "=x")
    assert proc.returncode == 2 and "--meta" in proc.stdout + proc.stderr and not (tmp_path / "r.h5").exists()
