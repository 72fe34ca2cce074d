"""Tier 2: the electrical model behind the emulated instruments (driven through VISA)."""

from __future__ import annotations

import pytest
import pyvisa
from conftest import bench_of, open_rm
from tsp_lib import load_lib
from tsp_session import cell_channels, open_bench


@pytest.fixture
def formed() -> tuple[pyvisa.ResourceManager, object, object]:
    """A bench with cell (1, 1) formed and reset into the window, relays open, outputs off."""
    rm = open_rm("noise=0")
    smu, mx, _ = open_bench(rm)
    load_lib(smu)
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    assert float(smu.query("print(rr_form(4, 0.01, 1.2, 1e-3, 50e-6))")) > 2.9
    smu.write("rr_sweep(-1.4, -0.02, 1.2)")
    mx.write("channel.open('allslots')")
    yield rm, smu, mx
    rm.close()


def test_hot_switch_is_logged_only_with_a_live_source(formed) -> None:  # noqa: ANN001
    rm, smu, mx = formed
    events = bench_of(rm).events
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    mx.write("channel.open('allslots')")
    assert events.of_kind("hot_switch") == []
    smu.write("smua.source.levelv = 0.2; smua.source.output = smua.OUTPUT_ON")
    mx.write("channel.close('2A01')")
    hot = events.of_kind("hot_switch")
    assert [(e.details["channel"], e.details["action"], e.details["terminal"]) for e in hot] == [
        ("2A01", "close", "smu.a")]
    smu.write("smua.source.output = smua.OUTPUT_OFF")


def test_current_needs_gate_bit_and_source_line(formed) -> None:  # noqa: ANN001
    rm, smu, mx = formed
    smu.write("rr_bias(3.3); smua.source.levelv = 0.2")
    mx.write("channel.close('2A01,3C01')")          # gate line floating
    assert abs(float(smu.query("print(smua.measure.i())"))) < 1e-9
    mx.write("channel.close('1B01')")               # gate driven at 3.3 V
    i_on = float(smu.query("print(smua.measure.i())"))
    assert 1.5e-6 < i_on < 20e-6
    smu.write("smub.source.levelv = 0")             # gate at 0 V: transistor off
    assert abs(float(smu.query("print(smua.measure.i())"))) < 1e-9
    smu.write("smub.source.levelv = 3.3")
    mx.write("channel.open('3C01')")                # source line floating
    assert abs(float(smu.query("print(smua.measure.i())"))) < 1e-9
    smu.write("rr_outputs_off()")


def test_compliance_clamps_and_is_reported(formed) -> None:  # noqa: ANN001
    rm, smu, mx = formed
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    smu.write("rr_bias(3.3); smua.source.limiti = 1e-6; smua.source.levelv = 0.3")
    i, comp = smu.query("print(smua.measure.i(), smua.source.compliance)").split("\t")
    assert float(i) == pytest.approx(1e-6, rel=1e-3) and comp == "true"
    assert bench_of(rm).events.of_kind("compliance")
    smu.write("smua.source.limiti = 1e-3")
    i, comp = smu.query("print(smua.measure.i(), smua.source.compliance)").split("\t")
    assert float(i) > 2e-6 and comp == "false"
    smu.write("rr_outputs_off()")


def test_gate_voltage_limits_the_set_current(formed) -> None:  # noqa: ANN001
    rm, smu, mx = formed
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    smu.write("rr_bias(0.8); smua.source.levelv = 1.0")
    # I_sat = k (V_G - V_T)^2 / 2 with k = 0.92 mA/V^2, V_T = 0.45 V: 56 µA at V_G = 0.8 V
    bench = bench_of(rm)
    bench.model.g_prog[:] = 80e-6          # side channel: a high-conductance cell
    i = float(smu.query("print(smua.measure.i())"))
    assert i == pytest.approx(0.5 * 0.92e-3 * 0.35 ** 2, rel=0.02)
    smu.write("rr_outputs_off()")


def test_readings_are_quantized_to_the_range(formed) -> None:  # noqa: ANN001
    rm, smu, mx = formed
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    smu.write("rr_bias(3.3); smua.source.levelv = 0.2")
    smu.write("smua.measure.autorangei = 0; smua.measure.rangei = 100e-6")
    i = float(smu.query("print(smua.measure.i())"))
    assert abs(i / 100e-12 - round(i / 100e-12)) < 1e-3   # 100 pA resolution on the 100 µA range
    smu.write("smua.measure.rangei = 1e-6")
    assert smu.query("print(smua.measure.i())") == "9.91000e+37"   # over range
    smu.write("rr_outputs_off()")


def test_pulse_limit_is_at_least_ten_percent_of_range(formed) -> None:  # noqa: ANN001
    """2600B: in sweeps the enforced limit is >= 10 % of the limit range (2600B Reference Manual, the minimum
    enforceable limit in sweeps)."""
    rm, smu, mx = formed
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    smu.write("rr_bias(3.3); rr_pulse_setup(1e-3)")
    smu.write("smua.measure.autorangei = 0; smua.measure.rangei = 1e-3")
    smu.write("smua.trigger.source.limiti = 1e-6; smua.trigger.measure.action = smua.ENABLE")
    smu.write("smua.trigger.measure.i(smua.nvbuffer1); smua.nvbuffer1.clear()")
    smu.write("rr_pulse(1.0)")
    peak = float(smu.query("print(smua.nvbuffer1.readings[1])"))
    assert peak > 10e-6            # far above the 1 µA asked for
    assert peak <= 100e-6 * 1.001  # clamped at 10 % of the 1 mA range
    smu.write("rr_outputs_off()")


def test_current_source_mode(formed) -> None:  # noqa: ANN001
    rm, smu, mx = formed
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    smu.write("rr_bias(3.3)")
    g = float(smu.query("print(rr_read(0.2, 1))"))
    smu.write("smua.source.func = smua.OUTPUT_DCAMPS; smua.source.limitv = 0.5; smua.source.leveli = 2e-6")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    v = float(smu.query("print(smua.measure.v())"))
    assert v == pytest.approx(2e-6 / g, rel=0.05)
    smu.write("smua.source.leveli = 1e-3")          # cannot be reached below 0.5 V
    assert float(smu.query("print(smua.measure.v())")) == pytest.approx(0.5, rel=1e-4)
    assert smu.query("print(smua.source.compliance)") == "true"
    smu.write("smua.source.output = smua.OUTPUT_OFF; smua.source.func = smua.OUTPUT_DCVOLTS")
    smu.write("rr_outputs_off()")


def test_open_circuit_reads_zero() -> None:
    rm = open_rm("noise=0")
    smu, _, _ = open_bench(rm)
    smu.write("smua.source.levelv = 1; smua.source.output = smua.OUTPUT_ON")
    assert smu.query("print(smua.measure.i())") == "0.00000e+00"
    rm.close()


def test_the_event_log_thins_routine_events_and_keeps_every_rare_one() -> None:
    """A long campaign logs hundreds of thousands of relay moves: memory stays bounded, rare events stay."""
    from rramlab.simulator.events import EventLog

    log = EventLog(limit=100)
    for k in range(1000):
        log.add(float(k), "matrix", "relays", closed=[])
        if k % 250 == 0:
            log.add(float(k), "matrix", "hot_switch", level=1.0)
    assert log.counts == {"relays": 1000, "hot_switch": 4}
    assert len(log.of_kind("hot_switch")) == 4                            # every rare event kept, in order
    assert [e.time for e in log.of_kind("hot_switch")] == [0.0, 250.0, 500.0, 750.0]
    relays = log.of_kind("relays")
    assert 100 <= len(relays) <= 200 and relays[-1].time == 999.0      # the newest routine ones kept
    assert log.dropped == 1000 - len(relays)


def test_the_transcript_is_bounded_in_entries_and_in_bytes() -> None:
    from rramlab.simulator.events import ENTRY_BYTES, Transcript

    small = Transcript(limit=100)
    for k in range(1000):
        small.add(float(k), "R", "write", b"x")
    assert 100 <= len(small.entries) < 200 and small.entries[-1].time == 999.0          # entries bound
    assert small.dropped + len(small.entries) == 1000
    big = Transcript(limit=100)                        # 100 × ENTRY_BYTES bytes; 3 kB messages (loop calls)
    for k in range(1000):
        big.add(float(k), "R", "write", b"x" * 3000)
    held = sum(len(e.data) for e in big.entries)
    assert held <= 2 * 100 * ENTRY_BYTES and len(big.entries) >= 100 * ENTRY_BYTES // 3100 > 0
    assert big.entries[-1].time == 999.0 and big.dropped + len(big.entries) == 1000
    big.clear()
    big.add(0.0, "R", "read", b"y")
    assert len(big.entries) == 1
