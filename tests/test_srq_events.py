"""Service requests through pyvisa's event API on the @rramlab backend (rramlab issue #9, item 1).

Status model: IEEE 488.2-1992 chapter 11 — §11.2 status byte (§11.2.2.1 serial poll returns bit 6
as RQS and clears it; §11.2.2.2 ``*STB?`` returns bit 6 as MSS and clears nothing), §11.3 service
request enabling (``*SRE``; MSS = STB & SRE over bits 0–5, 7; RQS/SRQ on MSS false → true),
§11.5.1 Standard Event Status Register (``*ESE``; ESB = ESR & ESE; ``*OPC`` sets ESR bit 0).
Instrument manuals: Keithley 2450 Reference Manual (2450-901-01) "Status model" / "Understanding
bit settings" (``*SRE``, ``*ESE``, ``*OPC``), Series 2600B Reference Manual (2600BS-901-01)
section 15 "Status model" (``*SRE``, ``*ESE`` common commands; ``status.request_enable``).
VISA side: VPP-4.3 viEnableEvent / viWaitOnEvent / viReadSTB (pyvisa ``Resource.enable_event``,
``wait_on_event``, ``read_stb``); the application enables the event, the instrument asserts SRQ,
VISA serial-polls it, and ``read_stb`` returns that poll's status byte with RQS set.
"""

from __future__ import annotations

import pytest
import pyvisa
from conftest import bench_of, fresh_spec
from pyvisa import constants, errors

SRQ = constants.EventType.service_request
QUEUE = constants.EventMechanism.queue
SMU2450 = "USB0::0x05E6::0x2450::04365704::INSTR"
SMU2636 = "GPIB0::26::INSTR"


def _rm_2450() -> pyvisa.ResourceManager:
    return pyvisa.ResourceManager("2450x2_b2200a" + fresh_spec())


def _open(rm: pyvisa.ResourceManager, name: str):  # noqa: ANN202
    return rm.open_resource(name, read_termination="\n", write_termination="\n")


def test_2450_opc_esb_raises_srq_and_serial_poll_clears_rqs() -> None:
    # 2450 manual, status model example: *ESE 1 (OPC → ESB), *SRE 32 (ESB → MSS), *OPC
    rm = _rm_2450()
    smu = _open(rm, SMU2450)
    smu.enable_event(SRQ, QUEUE)
    smu.write("*CLS;*ESE 1;*SRE 32;*OPC")   # *CLS: PON (bit 7) cleared first
    resp = smu.wait_on_event(SRQ, 1000)
    assert resp.event.event_type == SRQ and not resp.timed_out
    assert resp.event.get_visa_attribute(constants.EventAttribute.event_type) == SRQ
    stb = smu.read_stb()
    assert stb & 64 and stb & 32        # RQS + ESB (§11.2.2.1)
    stb2 = smu.read_stb()
    assert stb2 & 64 == 0 and stb2 & 32  # RQS cleared by the poll; ESB stays until ESR is read
    assert int(smu.query("*STB?")) & 64  # *STB? reports MSS, which stays true (§11.2.2.2)
    assert smu.query("*ESR?") == "1"     # reading ESR clears ESB → MSS false
    assert int(smu.query("*STB?")) & (64 | 32) == 0
    # a new reason for service → a new request (MSS false → true)
    smu.write("*OPC")
    smu.wait_on_event(SRQ, 1000)
    assert smu.read_stb() & 64
    smu.disable_event(SRQ, QUEUE)
    smu.close()
    rm.close()


def test_no_request_without_sre_times_out_on_the_virtual_clock() -> None:
    rm = _rm_2450()
    smu = _open(rm, SMU2450)
    smu.enable_event(SRQ, QUEUE)
    smu.write("*ESE 1;*OPC")            # ESB set, but SRE = 0 (power-on, §11.3.2): no request
    clock = bench_of(rm).clock
    t0 = clock.now
    with pytest.raises(errors.VisaIOError) as e:
        smu.wait_on_event(SRQ, 500)
    assert e.value.error_code == constants.StatusCode.error_timeout
    assert clock.now == pytest.approx(t0 + 0.5)
    resp = smu.wait_on_event(SRQ, 250, capture_timeout=True)
    assert resp.timed_out
    assert smu.read_stb() == 32         # ESB only; no RQS, no MSS
    rm.close()


def test_wait_advances_the_clock_to_pending_work() -> None:
    # *OPC completes when pending operations are done (§12.5.2): stand in a 2 s operation
    rm = _rm_2450()
    bench = bench_of(rm)
    inst = bench.instruments[SMU2450]
    smu = _open(rm, SMU2450)
    done = bench.clock.now + 2.0
    inst.complete_at = lambda: done      # side channel: pending work until `done`
    smu.enable_event(SRQ, QUEUE)
    smu.write("*ESE 1;*SRE 32;*OPC")
    with pytest.raises(errors.VisaIOError):
        smu.wait_on_event(SRQ, 1000)     # not done within 1 s
    assert bench.clock.now < done
    smu.wait_on_event(SRQ, 5000)         # returns when the operation completes, not at the timeout
    assert bench.clock.now == pytest.approx(done)
    assert smu.read_stb() & 64
    rm.close()


def test_mav_request_waits_for_a_late_reply() -> None:
    rm = _rm_2450()
    bench = bench_of(rm)
    smu = _open(rm, SMU2450)
    smu.write("*SRE 16")                 # MAV → MSS
    smu.enable_event(SRQ, QUEUE)
    bench.faults.add("late_reply", match=r"IDN", delay=1.5)
    t0 = bench.clock.now
    smu.write("*IDN?")
    smu.wait_on_event(SRQ, 3000)
    assert bench.clock.now == pytest.approx(t0 + 1.5, abs=0.01)
    assert smu.read_stb() & (64 | 16) == 64 | 16
    assert smu.read().startswith("KEITHLEY")
    rm.close()


def test_event_not_enabled_and_discard() -> None:
    rm = _rm_2450()
    smu = _open(rm, SMU2450)
    with pytest.raises(errors.VisaIOError) as e:
        smu.wait_on_event(SRQ, 100)
    assert e.value.error_code == constants.StatusCode.error_not_enabled
    smu.enable_event(SRQ, QUEUE)
    smu.write("*ESE 1;*SRE 32;*OPC")     # request noticed at this write and queued
    smu.discard_events(SRQ, QUEUE)
    with pytest.raises(errors.VisaIOError):
        smu.wait_on_event(SRQ, 100)      # the queued occurrence was discarded; RQS already polled
    rm.close()


def test_handler_called_on_service_request() -> None:
    rm = _rm_2450()
    smu = _open(rm, SMU2450)
    seen: list[int] = []

    def on_srq(resource, event, user_handle) -> None:  # noqa: ANN001
        seen.append(resource.read_stb())

    handler = smu.wrap_handler(on_srq)
    handle = smu.install_handler(SRQ, handler)
    smu.enable_event(SRQ, constants.EventMechanism.handler)
    smu.write("*ESE 1;*SRE 32;*OPC")
    assert len(seen) == 1 and seen[0] & 64
    smu.disable_event(SRQ, constants.EventMechanism.handler)
    smu.uninstall_handler(SRQ, handler, handle)
    smu.close()
    rm.close()


def test_2636b_error_available_raises_srq() -> None:
    # 2600B Reference Manual, status model: *SRE 4 enables EAV (error queue not empty) to request
    # service; an unknown name queues -286 → EAV → MSS → SRQ (IEEE 488.2 §11.3.2)
    rm = pyvisa.ResourceManager(fresh_spec())
    smu = _open(rm, SMU2636)
    smu.write("*CLS")
    smu.write("*SRE 4")
    assert smu.query("*SRE?") == "4"
    smu.enable_event(SRQ, QUEUE)
    with pytest.raises(errors.VisaIOError):
        smu.wait_on_event(SRQ, 100)       # no error queued yet: no request
    smu.write("nosuchfunction()")
    smu.wait_on_event(SRQ, 1000)
    assert smu.read_stb() & (64 | 4) == 64 | 4
    assert smu.read_stb() & (64 | 4) == 4    # RQS cleared; EAV stays until the queue is read
    assert smu.query("print(errorqueue.count)").startswith("1")
    smu.write("errorqueue.clear()")
    assert smu.read_stb() & (64 | 4) == 0
    rm.close()


def test_srq_through_bench_server(bench_server) -> None:  # noqa: ANN001
    rm = pyvisa.ResourceManager(bench_server.library)
    smu = _open(rm, SMU2636)
    smu.write("*SRE 4")
    smu.enable_event(SRQ, QUEUE)
    with pytest.raises(errors.VisaIOError) as e:
        smu.wait_on_event(SRQ, 200)
    assert e.value.error_code == constants.StatusCode.error_timeout
    smu.write("nosuchfunction()")
    smu.wait_on_event(SRQ, 200)
    assert smu.read_stb() & 64
    assert smu.read_stb() & 64 == 0
    smu.write("errorqueue.clear()")
    rm.close()


def test_the_2636b_requests_service_when_an_opc_completes() -> None:
    """2600B Reference Manual, status model: *ESE 1 (OPC), *SRE 32 (ESB), then *OPC — SRQ raised (IEEE 488.2
    §11.3 / §11.5); the same through the TSP function opc()."""
    import itertools as _it

    import pyvisa
    from pyvisa import constants

    rm = pyvisa.ResourceManager(f"?tag=opc-srq{next(_it.count())}{id(object())}@rramlab")
    smu = rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    smu.write("*CLS")
    smu.write("*ESE 1")
    smu.write("*SRE 32")
    smu.enable_event(constants.EventType.service_request, constants.EventMechanism.queue)
    smu.write("*OPC")
    smu.wait_on_event(constants.EventType.service_request, 1000)
    assert smu.read_stb() & 0x60 == 0x60                       # RQS + ESB
    assert smu.query("*ESR?") == "1"
    smu.write("opc()")
    smu.wait_on_event(constants.EventType.service_request, 1000)
    assert smu.query("*ESR?") == "1"
    rm.close()
