"""The simulated wafer: which dies exist on a round map, the die-to-die gradient it was built with, bad dies,
and contact (the circuit sees a die only while the probes touch it)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from rramlab.drivers.station import Station
from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import BenchConfigError, load_bench_config
from rramlab.simulator.wafer import WaferConfig, on_wafer

ROOT = Path(__file__).resolve().parents[1]
_tags = itertools.count()
WAFER = """
[wafer]
diameter_mm = 100.0
die_width_um = 15000.0
die_height_um = 15000.0
bad = { "0,0" = "short", "1,0" = "open", "-1,0" = "good", "0,1" = "good", "0,-1" = "good" }
"""


def bench_file(tmp_path: Path, extra: str = WAFER, seed: int = 5) -> Path:
    text = (ROOT / "simulator" / "benches" / "2636b_707b.toml").read_text().replace("seed = 20250206",
                                                                                    f"seed = {seed}")
    path = tmp_path / f"wafer_{seed}.toml"
    path.write_text(text + extra)
    return path


def test_dies_on_a_round_map_counted_independently() -> None:
    cfg = WaferConfig(diameter_mm=100.0, die_width_um=15000.0, die_height_um=12000.0, edge_exclusion_um=3000.0)
    cols, rows = np.meshgrid(np.arange(-10, 11), np.arange(-10, 11), indexing="ij")
    r = 50_000.0 - 3000.0
    corners = [((cols + sx / 2) * 15000.0) ** 2 + ((rows + sy / 2) * 12000.0) ** 2
               for sx in (-1, 1) for sy in (-1, 1)]
    inside = np.all([c <= r * r for c in corners], axis=0)
    assert on_wafer(cfg) == sorted(zip(cols[inside].tolist(), rows[inside].tolist(), strict=True))
    assert len(on_wafer(WaferConfig())) == 21             # 100 mm wafer, 15 mm dies: the campaign's 21 dies


def test_the_gradient_the_wafer_was_built_with_and_seeded_dies(tmp_path: Path) -> None:
    bench = Bench(load_bench_config(str(bench_file(tmp_path, "[wafer]\ndiameter_mm = 200.0\n"))))
    w = bench.wafer
    assert w is not None and len(w.dies) > 80
    info = [w.info[d] for d in w.dies]
    r2 = np.array([i.r_fraction ** 2 for i in info])
    v = np.array([i.v_form_mean for i in info])
    slope, intercept = np.polyfit(r2, v, 1)
    p = w.params
    n = len(info)
    se = p.v_form_die_std / (np.std(r2) * np.sqrt(n))
    assert abs(slope - p.v_form_edge) < 4 * se and abs(intercept - bench.params.forming_voltage_mean) < 0.02
    g = np.array([i.g_max_scale for i in info])
    assert abs(np.polyfit(r2, g, 1)[0] - p.g_max_edge) < 4 * p.g_max_die_std / (np.std(r2) * np.sqrt(n))
    kinds = [i.kind for i in info]
    assert 0 < kinds.count("good") < n
    again = Bench(load_bench_config(str(bench_file(tmp_path, "[wafer]\ndiameter_mm = 200.0\n"))))
    assert again.wafer.info == w.info                    # position and seed only: the same wafer again
    model_a = w.model((2, 1)).v_form.copy()
    _ = again.wafer.model((0, 0))                        # another visiting order
    assert np.array_equal(again.wafer.model((2, 1)).v_form, model_a)
    other = Bench(load_bench_config(str(bench_file(tmp_path, "[wafer]\ndiameter_mm = 200.0\n", seed=6))))
    assert other.wafer.info != w.info


def station_on(path: Path) -> tuple[Station, Bench]:
    lib = f"{path}?tag=wafer{next(_tags)}@rramlab"
    st = Station.from_file(None, visa_library=lib)
    st.open()
    return st, st.instruments["smu"].adapter.connection.visalib.bench


def test_only_a_touched_die_conducts(tmp_path: Path) -> None:
    st, bench = station_on(bench_file(tmp_path))
    try:
        assert abs(st.read(0, 0).current) < 1e-12             # chuck separated: every line open (SMU floor)
        bench.wafer.touch((0, 0))                                    # shorted die: conducts before forming
        shorted = st.read(0, 0).current
        assert shorted > 1e-5
        bench.wafer.touch((0, 1))                                    # a good, pristine die: ~1 nS
        good = st.read(0, 0).current
        assert 0 < good < 1e-8
        bench.wafer.touch((1, 0))                                    # open die: nothing
        assert abs(st.read(0, 0).current) < 1e-12
        bench.wafer.touch((40, 40))                                  # off the wafer
        assert abs(st.read(0, 0).current) < 1e-12
        bench.wafer.lift()
        assert abs(st.read(0, 0).current) < 1e-12
        kinds = [e for e in bench.events.events if e.source == "wafer"]
        assert [e.kind for e in kinds][-2:] == ["contact", "separated"]
    finally:
        st.close()


def test_bad_wafer_tables_are_refused(tmp_path: Path) -> None:
    for extra, message in (("[wafer]\ndiameter_mm = 5.0\n", "wafer.diameter_mm"),
                           ('[wafer]\nbad = { "0,0" = "melted" }\n', "wafer.bad"),
                           ("[wafer]\noverrides = { p_short = 0.9, p_open = 0.9 }\n", "wafer.overrides"),
                           ("[wafer]\ncolour = 1\n", "wafer")):
        with pytest.raises(BenchConfigError, match=message.replace(".", r"\.")):
            load_bench_config(str(bench_file(tmp_path, extra)))
