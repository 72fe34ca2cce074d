"""Tier 3: injected faults behave as on a real bench, and the session survives them."""

from __future__ import annotations

import pytest
from conftest import bench_of, open_rm
from pyvisa import constants, errors
from tsp_session import open_bench


@pytest.fixture
def bench():  # noqa: ANN201
    rm = open_rm("noise=0")
    smu, mx, ctl = open_bench(rm)
    yield rm, bench_of(rm), smu, mx, ctl
    rm.close()


def test_dropped_reply_times_out_and_session_continues(bench) -> None:  # noqa: ANN001
    rm, b, smu, _, _ = bench
    b.faults.add("drop_reply", match=r"print\(localnode\.model\)")
    smu.timeout = 500
    with pytest.raises(errors.VisaIOError) as e:
        smu.query("print(localnode.model)")
    assert e.value.error_code == constants.StatusCode.error_timeout
    assert smu.query("print(localnode.model)") == "2636B"


def test_late_reply_within_timeout_is_waited_for(bench) -> None:  # noqa: ANN001
    rm, b, smu, _, ctl = bench
    b.faults.add("late_reply", match="sync-1", delay=0.3)
    smu.timeout = 1000
    t0 = float(ctl.query("CLOCk:TIME?"))
    assert smu.query('print("sync-1")') == "sync-1"
    assert float(ctl.query("CLOCk:TIME?")) - t0 >= 0.3


def test_late_reply_after_timeout_is_stale_for_the_next_read(bench) -> None:  # noqa: ANN001
    """The desync of pymeasure#184: a resync token shows the stale reply for what it is."""
    rm, b, smu, _, ctl = bench
    b.faults.add("late_reply", match="sync-1", delay=2.0)
    smu.timeout = 500
    with pytest.raises(errors.VisaIOError):
        smu.query('print("sync-1")')
    ctl.write("CLOCk:WAIT 5")
    assert smu.query('print("sync-2")') == "sync-1"   # stale
    assert smu.read() == "sync-2"


def test_device_clear_discards_a_late_reply(bench) -> None:  # noqa: ANN001
    rm, b, smu, _, ctl = bench
    b.faults.add("late_reply", match="sync-1", delay=2.0)
    smu.timeout = 500
    with pytest.raises(errors.VisaIOError):
        smu.query('print("sync-1")')
    smu.clear()
    ctl.write("CLOCk:WAIT 5")
    assert smu.query('print("sync-2")') == "sync-2"


def test_garbled_reply(bench) -> None:  # noqa: ANN001
    rm, b, smu, _, _ = bench
    b.faults.add("garble", match=r"measure\.i", reply="1.2E-0")
    assert smu.query("print(smua.measure.i())") == "1.2E-0"
    assert smu.query("print(smua.measure.i())") == "0.00000e+00"


def test_queued_error_by_transaction_number(bench) -> None:  # noqa: ANN001
    rm, b, smu, _, _ = bench
    b.faults.add("queue_error", at=b.writes + 2, code=-222, message="Parameter data out of range")
    smu.write("x = 1")
    smu.write("y = 2")
    assert smu.query("print(errorqueue.next())").split("\t")[:2] == ["-2.22000e+02",
                                                                       "Parameter data out of range"]


def test_reboot_loses_settings_and_turns_outputs_off(bench) -> None:  # noqa: ANN001
    rm, b, smu, _, _ = bench
    smu.write("smua.source.limiti = 1e-5; smua.source.levelv = 1; smua.source.output = smua.OUTPUT_ON")
    smu.write("*CLS")
    assert smu.query("*ESR?") == "0"
    b.faults.add("reboot", match="print\\(1\\)")
    smu.query("print(1)")
    assert smu.query("print(smua.source.output, smua.source.limiti)") == "0.00000e+00\t1.00000e-01"
    assert int(smu.query("*ESR?")) & 128       # PON: the instrument was power-cycled
    assert any(e.kind == "reboot" for e in b.events.events)


def test_relay_that_fails_to_close_shows_in_readback(bench) -> None:  # noqa: ANN001
    rm, b, _, mx, _ = bench
    b.faults.add("relay_fail", match="exclusiveclose", channels="2A01")
    mx.write("channel.exclusiveclose('1B01,2A01,3C01')")
    assert mx.query("print(channel.getclose('allslots'))") == "1B01;3C01"
    assert b.events.of_kind("fault_relay_fail")


def test_compliance_not_applied(bench) -> None:  # noqa: ANN001
    _, b, smu, mx, _ = bench
    b.model.g_prog[0] = 50e-6
    b.model.pristine[0] = False
    mx.write("channel.exclusiveclose('1B01,2A01,3C01')")
    smu.write("smub.source.levelv = 3.3; smub.source.output = smub.OUTPUT_ON")
    smu.write("smua.source.limiti = 1e-6; smua.source.levelv = 0.2; smua.source.output = smua.OUTPUT_ON")
    assert float(smu.query("print(smua.measure.i())")) == pytest.approx(1e-6, rel=1e-3)
    b.faults.add("no_compliance", match="levelv = 0.25")
    smu.write("smua.source.levelv = 0.25")
    assert float(smu.query("print(smua.measure.i())")) > 5e-6   # the limit was silently not applied
    assert smu.query("print(smua.source.compliance)") == "false"


def test_stuck_cell_ignores_reset(bench) -> None:  # noqa: ANN001
    _, b, smu, mx, _ = bench
    from tsp_lib import load_lib

    load_lib(smu)
    mx.write("channel.exclusiveclose('1B01,2A01,3C01')")
    smu.query("print(rr_form(4, 0.01, 1.2, 1e-3, 50e-6))")
    smu.write("rr_sweep(-1.4, -0.02, 1.2); rr_bias(3.3); rr_pulse_setup(2.5e-6)")
    g0 = float(smu.query("print(rr_read(0.2, 1))"))
    b.faults.add("stuck_cells", match="mark", cells=[0], state="lrs")
    smu.write("mark = 1")
    g_stuck = float(smu.query("print(rr_read(0.2, 1))"))
    assert g_stuck > 2 * g0
    for _ in range(20):
        smu.write("rr_pulse(-1.5)")
    assert float(smu.query("print(rr_read(0.2, 1))")) == pytest.approx(g_stuck, rel=0.01)


def test_fault_plan_rejects_unknown_kinds() -> None:
    rm = open_rm()
    with pytest.raises(ValueError, match="fault kind must be one of"):
        bench_of(rm).faults.add("meltdown", at=1)
    with pytest.raises(ValueError, match="needs 'at'"):
        bench_of(rm).faults.add("reboot")
    rm.close()


def test_no_internal_errors_leak(bench) -> None:  # noqa: ANN001
    _, b, smu, mx, _ = bench
    for cmd in ("smua.source.levelv = 'abc'", "smua.measure.nplc = nil", "printbuffer(1, 2, 3)",
                "smua.trigger.source.listv(5)", "channel.close(nil)"):
        smu.write(cmd)
    mx.write("channel.close(nil)")
    assert int(float(smu.query("print(errorqueue.count)"))) >= 4
    assert b.internal_errors == []
    assert smu.query("print(1 + 1)") == "2.00000e+00"                 # the session still works
