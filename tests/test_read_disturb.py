"""Read disturb (issue #11, item 3): the simulator's mechanism against its literature calibration, the 2636B's
``smuX.measure.count`` readings into a buffer (driver bytes from the manual, the emulator's vectorized step against
single readings) and the ``read_disturb`` protocol through the CLI: 10^6 reads on 4 cells.

Manual: Keithley Series 2600B System SourceMeter Instrument Reference Manual, 2600BS-901-01 — ``smuX.measure.count``,
``smuX.measure.Y()``, ``smuX.measure.interval``, ``smuX.makebuffer()``, ``bufferVar.capacity``, ``bufferVar.clear()``,
``bufferVar.n``, ``print()``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pyvisa
from conftest import SMU, bench_of, open_rm, writes
from pymeasure.test import expected_protocol

from rramlab.analysis.dataset import open_run
from rramlab.analysis.read_disturb import read_disturb_drift
from rramlab.analysis.summary import summarize
from rramlab.drivers import Keithley2636B
from rramlab.drivers.keithley2636b import READ_CHUNK
from rramlab.drivers.roles import RepeatedRead, offers
from rramlab.drivers.station import Station
from rramlab.drivers.station_config import SafetyEnvelope
from rramlab.protocols.base import ParameterError
from rramlab.protocols.catalog import PROTOCOLS
from rramlab.protocols.cli import main as cli_main
from rramlab.protocols.results import Results
from rramlab.simulator.device_model import ArrayModel
from rramlab.simulator.device_params import DeviceParameters

P = DeviceParameters()
US = 1e-6
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ the mechanism
def _formed(noise: bool = False, cells: int = 4) -> tuple[ArrayModel, float]:
    """A model whose cells are formed (quasi-static 3.0-3.6 V staircase at V_G = 1.2 V) and set to 50 µS."""
    m = ArrayModel(1, cells, P, np.random.default_rng(3), noise=noise)
    idx = np.arange(cells)
    t = 0.0
    for v in np.arange(3.0, 3.605, 0.01):
        t += 0.02
        m.apply_bias(idx, v, 1.2, 0.02, t)
    assert not m.pristine.any()
    m.g_prog[:] = 50 * US                                  # side channel: a programmed state
    return m, t + 1.0


def test_drift_after_a_million_reads_matches_the_calibration_and_is_zero_at_0_v() -> None:
    """10^6 reads of 20 ms at V_cell = 0.2 V (ideal access switch) move G from 50 µS 1 % of the way to Gmax_i + 2 µS
    (device_params read_disturb_time: ≈ 0.42 µS), within 1e-9 relative, read by read as in one hold; that is below
    half the spacing of 32 states in the 10-90 µS window (1.29 µS), as the states of P. Yao et al., Nature 577, 641
    (2020), Extended Data Fig. 7 stay apart after 10^6 reads of 0.2 V. At 0 V nothing moves."""
    m, t = _formed()
    idx = np.arange(m.size)
    hi = m.g_max + P.clip_margin
    for _ in range(1000):                                 # 1000 holds of 1000 reads each
        t += 20.0
        m.apply_bias(idx, 0.2, np.inf, 20.0, t)
    drift = m.g_prog - 50 * US
    np.testing.assert_allclose(drift / (hi - 50 * US), 0.01, rtol=1e-9)
    assert np.all((drift > 0.2 * US) & (drift < 0.6 * US))          # Gmax_i spreads ± 6 µS
    assert np.all(drift * 31 < 0.5 * 80 * US)
    m2, t2 = _formed()
    m2.apply_bias(idx, 0.0, np.inf, 2e4, t2 + 2e4)
    np.testing.assert_array_equal(m2.g_prog, 50 * US)


def test_drift_grows_with_voltage_and_read_time_and_follows_polarity() -> None:
    """The same stress time at 0.3 V moves G sinh(0.3/V_rd)/sinh(0.2/V_rd) = 4.19 times as far (small-drift
    limit); reads of 2 ms (0.1 PLC) move it a tenth as far as reads of 20 ms; -0.2 V moves it toward Gmin_i - 2 µS."""
    def drift(v: float, duration: float) -> np.ndarray:
        m, t = _formed()
        m.apply_bias(np.arange(m.size), v, np.inf, duration, t + duration)
        return m.g_prog - 50 * US, m

    d02, m = drift(0.2, 2e4)
    d03, _ = drift(0.3, 2e4)
    d_fast, _ = drift(0.2, 2e3)
    d_neg, m_neg = drift(-0.2, 2e4)
    ratio = math.sinh(0.3 / P.read_disturb_voltage_scale) / math.sinh(0.2 / P.read_disturb_voltage_scale)
    assert ratio == pytest.approx(4.19, abs=0.01)
    np.testing.assert_allclose(d03 / d02, ratio, rtol=0.05)       # exp saturation: 4 % below the linear ratio
    np.testing.assert_allclose(d_fast / d02, 0.1, rtol=0.01)
    lo = m_neg.g_min - P.clip_margin
    np.testing.assert_allclose(d_neg / (lo - 50 * US), 0.01, rtol=1e-9)
    assert np.all(d_neg < 0)


def test_reads_through_the_electrical_model_disturb_without_a_hook() -> None:
    """Plain ``Station.read`` calls (1 PLC at the station's 0.2 V, gate 3.3 V) move the programmed state by what
    the mechanism gives for the time the bias was held; nothing but the bias on the cell moves it."""
    st = Station.from_file(None, visa_library="?tag=rd-electrical&noise=0@rramlab")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    m = bench.model
    for _ in PROTOCOLS["forming"].from_mapping({"current_limit": 1e-3, "contact_check": False}, [(0, 0)]).run(
            st, Results()):
        pass
    g0 = m.g_prog[0]
    for _ in range(200):
        st.read(0, 0)
    hi = m.g_max[0] + P.clip_margin
    f = -math.log((hi - m.g_prog[0]) / (hi - g0))                 # the disturb exponent that was applied
    v_cell = 0.2 / (1 + g0 / (P.transconductance * (3.3 - P.threshold_voltage)))
    held = f * P.read_disturb_time / math.sinh(v_cell / P.read_disturb_voltage_scale)
    assert held == pytest.approx(200 * (0.02 + bench.timing.measure_overhead), rel=0.02)   # the integrations
    st.close()


# ------------------------------------------------------------------------------------------------ the driver
CHUNK = ("if rramlab_reads_a == nil then rramlab_reads_a = smua.makebuffer(60000) end rramlab_reads_a.clear() "
         "smua.source.levelv = 0.2 smua.measure.count = 50000 "
         "print(smua.measure.i(rramlab_reads_a), rramlab_reads_a.n, errorqueue.count) "
         "smua.measure.count = 1 smua.source.levelv = 0")


def test_a_chunk_is_one_exchange_per_the_manual() -> None:
    """smuX.makebuffer(): a dynamic buffer of a fixed capacity; bufferVar.clear(); smuX.measure.count readings per
    measurement; smuX.measure.Y() with a buffer stores every reading and returns the last; print() of several
    values is TAB-separated (format.asciiprecision 6: %.5e); bufferVar.n the readings stored."""
    pairs = [(CHUNK, "1.23456e-06\t5.00000e+04\t0.00000e+00")]
    with expected_protocol(Keithley2636B, pairs) as k:
        assert k.smua.read_repeated_chunk(0.2, 50_000, 1.0) == 1.23456e-06
    with expected_protocol(Keithley2636B, pairs[:0]) as k:
        assert k.smua.read_chunk_command(0.2, 50_000) == CHUNK


def test_a_short_buffer_is_a_reply_error() -> None:
    from rramlab.drivers import ReplyError

    with expected_protocol(Keithley2636B, [(CHUNK, "1.23456e-06\t4.99990e+04\t0.00000e+00")]) as k, \
            pytest.raises(ReplyError, match="50000 readings stored"):
        k.smua.read_repeated_chunk(0.2, 50_000, 1.0)


def test_read_repeated_splits_into_buffer_sized_calls() -> None:
    """130 000 reads: calls of 60 000, 60 000 and 10 000 (the buffer's capacity); the last call's reading."""
    def chunk(n: int) -> str:
        return CHUNK.replace("count = 50000", f"count = {n}")
    pairs = [(chunk(60000), "1.00000e-06\t6.00000e+04\t0.00000e+00"),
             (chunk(60000), "2.00000e-06\t6.00000e+04\t0.00000e+00"),
             (chunk(10000), "3.00000e-06\t1.00000e+04\t0.00000e+00")]
    with expected_protocol(Keithley2636B, pairs) as k:
        assert k.smua.read_repeated(0.2, 130_000, 1.0) == 3e-06
        assert offers(k.smua, RepeatedRead) and k.smua.repeat_chunk == READ_CHUNK == 60_000


@pytest.mark.parametrize("count", [0, 60_001, 1.5, True, -3])
def test_a_count_outside_the_range_is_refused_before_any_write(count: object) -> None:
    rm = open_rm()
    k = Keithley2636B(SMU, visa_library=rm.visalib)
    bench = bench_of(rm)
    before = len(writes(bench))
    with pytest.raises(ValueError, match=r"count must be an integer within \[1, 60000\].*makebuffer\(60000\)"):
        k.smua.read_repeated_chunk(0.2, count, 1.0)          # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        k.smua.read_repeated(0.2, 0, 1.0)
    with pytest.raises(ValueError, match=r"voltage must be within \[-200, 200\] V"):
        k.smua.read_repeated(250.0, 10, 1.0)
    assert len(writes(bench)) == before
    rm.close()


@pytest.mark.parametrize("loops", ["auto", "pc"])
def test_station_read_many_on_the_instrument_or_by_the_pc(tmp_path: Path, loops: str) -> None:
    """``Station.read_many``: with ``loops = "auto"`` one instrument call of 7 readings (the chunk above); with
    ``"pc"`` 7 reads of one round trip each (``Station.read``). Either way the last reading, no pulse charged."""
    station = tmp_path / "st.toml"
    station.write_text((ROOT / "examples" / "sim_2636b_707b.toml").read_text()
                       .replace('"2636b_707b@rramlab"', f'"?tag=rd-many-{loops}@rramlab"')
                       .replace('name = "simulated 2636B + 707B bench"',
                                f'name = "simulated 2636B + 707B bench"\nloops = "{loops}"'))
    st = Station.from_file(station)
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    before = len(writes(bench))
    r = st.read_many(2, 3, 7)
    sent = writes(bench)[before:]
    assert (r.row, r.col, r.voltage) == (2, 3, 0.2) and r.current > 0
    chunks = [w for w in sent if "measure.count = 7" in w]
    singles = [w for w in sent if "smua.source.levelv = 0.2 local i = smua.measure.i()" in w]
    assert (len(chunks), len(singles)) == ((1, 0) if loops == "auto" else (0, 7)), sent
    assert st.pulses_per_cell == {}
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        st.read_many(2, 3, 0)
    st.close()


# ------------------------------------------------------------------------------------------------ the emulator
def _formed_station(tag: str) -> Station:
    st = Station.from_file(None, visa_library=f"?tag={tag}&seed=11@rramlab")
    st.open()
    for _ in PROTOCOLS["forming"].from_mapping({"current_limit": 1e-3, "contact_check": False}, [(0, 0)]).run(
            st, Results()):
        pass
    st.read(0, 0)
    return st


def _buffer_reads(st: Station, n: int, single: bool, v: float) -> tuple[np.ndarray, float]:
    smu = st.instruments["smu"]
    smu.write(f"smua.measure.delay = 0 smua.source.levelv = {v}")
    loop = (f"smua.nvbuffer1.clear() smua.nvbuffer1.appendmode = 1 smua.measure.count = 1 "
            f"for k = 1, {n} do smua.measure.i(smua.nvbuffer1) end smua.nvbuffer1.appendmode = 0")
    count = f"smua.nvbuffer1.clear() smua.measure.count = {n} smua.measure.i(smua.nvbuffer1) smua.measure.count = 1"
    count += " --" + "x" * (len(loop) - len(count) - 3)      # a Lua comment: the same bus time for both messages
    assert len(count) == len(loop)
    t0 = st.clock.now()
    smu.write(loop if single else count)     # n measure calls of one reading each (appending), or one call of n
    t = st.clock.now() - t0
    reply = smu.ask(f"printbuffer(1, {n}, smua.nvbuffer1.readings)")
    smu.write("smua.source.levelv = 0")
    return np.array([float(x) for x in reply.split(", ")]), t


@pytest.mark.parametrize("v", [0.2, 0.4])
def test_vectorized_measure_count_equals_single_readings(v: float) -> None:
    """Same seed, same cell, messages of the same length: 3000 readings of one measure call (vectorized) and 3000
    calls of one reading. The random draws come in the same order, so at 0.2 V the readings are bit-identical; at
    0.4 V (where the single readings' cell voltage comes from the relaxed state, the series' from the programmed
    one) a few differ by one resolution step (6½ digits of the range). The clock moves 3000 integrations plus
    overheads either way."""
    n = 3000
    one, t_one = _buffer_reads(_formed_station(f"rd-single-{v}"), n, True, v)
    many, t_many = _buffer_reads(_formed_station(f"rd-count-{v}"), n, False, v)
    assert len(one) == len(many) == n
    if v == 0.2:
        np.testing.assert_array_equal(many, one)
    lsb = 1e-6 * 10.0 ** np.ceil(np.log10(np.abs(one)))        # resolution: 1e-6 of the autorange
    assert np.all(np.abs(many - one) <= 1.001 * lsb) and np.count_nonzero(many != one) < 0.05 * n
    assert np.mean(many) == pytest.approx(np.mean(one), rel=1e-6)
    assert np.std(many) == pytest.approx(np.std(one), rel=1e-4)
    dt = 1.0 / 50.0 + 200e-6                                   # 1 PLC at 50 Hz + the measure overhead per reading
    assert t_many == pytest.approx(n * dt, rel=1e-3) and t_one == pytest.approx(n * dt, rel=1e-3)


# ------------------------------------------------------------------------------------------------ the protocol
def test_params_schedule_and_checks() -> None:
    p = PROTOCOLS["read_disturb"].Params(reads=1_000_000, points_per_decade=10)
    counts = p.schedule()
    assert counts[:11].tolist() == [1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20]       # round(10^(k/10)), no repeats
    assert counts[-2:].tolist() == [794_328, 1_000_000] and np.all(np.diff(counts) > 0) and len(counts) == 58
    big = PROTOCOLS["read_disturb"].Params(reads=100_000_000, points_per_decade=20)
    assert len(big.schedule()) <= 200
    with pytest.raises(ParameterError, match="voltage must be within"):
        PROTOCOLS["read_disturb"].Params(voltage=0.0)
    with pytest.raises(ParameterError, match=r"reads must be an integer within \[1, 100000000\]"):
        PROTOCOLS["read_disturb"].Params(reads=10**9)
    proto = PROTOCOLS["read_disturb"].from_mapping({"voltage": 0.4, "nplc": 30.0 - 5.5}, [(0, 0)])
    env = SafetyEnvelope(max_voltage={"bit_line": 0.3, "word_line": 3.6}, current_limit={"bit_line": 1e-3,
                         "word_line": 1e-6}, max_pulse_width=1e-3, nplc=(0.001, 10.0))
    assert [(v.parameter, v.value) for v in proto.check(env)] == [("voltage", 0.4), ("nplc", 24.5)]
    assert PROTOCOLS["read_disturb"].from_mapping({"voltage": 0.3}, [(0, 0)]).check(env) == []
    assert proto.pulses_per_cell() == {}                                     # reads are not pulses


RECIPE = """
[recipe]
name = "read disturb"

[[steps]]
name = "forming"
protocol = "forming"
cells = [[0, 0], [0, 1], [1, 0], [1, 1]]
[steps.params]
current_limit = 1e-3
contact_check = false

[[steps]]
name = "set"
protocol = "pulse"
cells = [[0, 0], [0, 1], [1, 0], [1, 1]]
[steps.params]
amplitude = 1.35
count = 8

[[steps]]
name = "disturb"
protocol = "read_disturb"
cells = [[0, 0], [0, 1], [1, 0], [1, 1]]
[steps.params]
reads = 1000000
voltage = 0.45
nplc = 1.0
points_per_decade = 10
"""


def test_a_million_reads_on_four_cells_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``rramlab run``: 10^6 reads of 1 PLC at 0.45 V on 4 cells formed and SET by 8 pulses, G recorded at 58
    log-spaced counts per cell ending at exactly 10^6; the drift recomputed with numpy from the table (stress time
    per read from its timestamps, the cell's G and voltage through the access transistor's R_on, each cell's
    Gmax_i + 2 µS and programming time from the bench's ground truth) plus the mean relaxation -a·ln(τ_end/τ_start)
    equals the measured one within 10 % per cell and 4 % on average (the relaxation walk, σ ≤ 0.6 µS over this
    time, against drifts of ~14 µS). The wall time is printed."""
    tag = "rd-cli"
    station = tmp_path / "st.toml"
    station.write_text((ROOT / "examples" / "sim_2636b_707b.toml").read_text()
                       .replace('"2636b_707b@rramlab"', f'"?tag={tag}@rramlab"'))
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    t0 = time.perf_counter()
    code = cli_main(["run", str(recipe), "--station", str(station), "--out", str(tmp_path / "x.h5")])
    wall = time.perf_counter() - t0
    assert code == 0, capsys.readouterr()
    with capsys.disabled():
        print(f"\nread_disturb: forming + 10^6 reads x 4 cells: {wall:.1f} s wall time")
    df = open_run(tmp_path / "x.h5").table("read_disturb")
    bench = pyvisa.ResourceManager(f"?tag={tag}@rramlab").visalib.bench
    model = bench.model
    assert len(df) == 4 * 58
    ratios = []
    for (row, col), cell in df.groupby(["row", "col"]):
        cell = cell.sort_values("n_reads")
        n = cell["n_reads"].to_numpy()
        assert len(n) <= 200 and n[0] == 1 and n[-1] == 1_000_000
        k = np.round(10 * np.log10(n))                                          # 10 per decade, log-spaced:
        np.testing.assert_array_equal(n, np.round(10.0 ** (k / 10)))            # n = round(10^(k/10))
        assert np.all(np.diff(k) >= 1) and k[-1] == 60 and np.all(np.diff(k)[7:] == 1)
        assert set(cell["v_read"]) == {0.45} and set(cell["nplc"]) == {1.0}
        r_on = 1.0 / (P.transconductance * (3.3 - P.threshold_voltage))        # access transistor at V_G = 3.3 V
        g_read, t = cell["g"].to_numpy(), cell["t"].to_numpy()
        g = g_read / (1.0 - g_read * r_on)                                      # i/v_read -> the cell's own G
        i = row * 8 + col
        hi = model.g_max[i] + P.clip_margin
        dt = (t[-1] - t[0]) / (n[-1] - 1)                                        # s of bias per read
        v_cell = 0.45 / (1 + 0.5 * (g[0] + g[-1]) * r_on)
        f = (n[-1] - 1) * dt * math.sinh(v_cell / P.read_disturb_voltage_scale) / P.read_disturb_time
        late0, late1 = (max(math.log(tk - model.t_prog[i]), 0.0) for tk in (t[0], t[-1]))
        g_prog0 = g[0] + P.relax_mean_slope * late0          # the disturb moves the programmed value, not the mean
        expected = (hi - g_prog0) * -math.expm1(-f) - P.relax_mean_slope * (late1 - late0)     # relaxation
        measured = g[-1] - g[0]
        assert measured == pytest.approx(expected, rel=0.10), (row, col, measured, expected)
        ratios.append(measured / expected)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.04), ratios
    with capsys.disabled():
        print("read_disturb: measured / expected drift per cell:", ", ".join(f"{r:.3f}" for r in ratios))
    summary = read_disturb_drift(df)
    assert len(summary) == 4 and (summary["n_last"] == 1_000_000).all()
    assert (summary["drift"] > 5 * US).all() and (summary["slope_per_decade"] > 0).all()
    (section,) = summarize(tmp_path / "x.h5")["read_disturb"].values()          # the run summary's section
    assert section["n_cells"] == 4 and section["reads"] == 1_000_000
    rel = ((summary["g_last"] - summary["g_first"]) / summary["g_first"]).to_numpy()
    assert section["rel_drift_median"] == pytest.approx(float(np.median(rel)))
    assert section["rel_drift_worst"] == pytest.approx(float(rel[np.argmax(np.abs(rel))]))


def test_drift_leaves_out_rows_without_a_count_or_a_reading() -> None:
    df = pd.DataFrame({"row": 0, "col": 0, "v_read": 0.2, "nplc": 1.0, "n_reads": [0, 1, 10, 100, 1000],
                       "g": [float("nan"), 50e-6, 50.1e-6, float("nan"), 50.3e-6], "t": [0.0, 1.0, 2.0, 3.0, 4.0]})
    (row,) = read_disturb_drift(df).to_dict("records")
    assert row["n_last"] == 1000 and row["g_first"] == 50e-6 and row["drift"] == pytest.approx(0.3e-6)
    assert row["slope_per_decade"] == pytest.approx(np.polyfit([0.0, 1.0, 3.0], [50e-6, 50.1e-6, 50.3e-6], 1)[0])
