"""Bench server: a simulated bench in its own process, outliving and shared by its pyvisa clients.

Real processes throughout: the server is a subprocess, clients are this process or subprocesses, and
a crash is a real ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvisa
from conftest import bench_of, fresh_spec
from pyvisa import constants, errors
from tsp_session import CONTROLLER, MATRIX, SMU, open_bench

from rramlab.simulator import Bench
from rramlab.simulator.bench_config import BenchConfigError
from rramlab.simulator.remote_port import BenchServerUnavailable
from rramlab.simulator.server import BenchControl, BenchServerProcess, main

CLIENT_EVENTS = ("client_connected", "client_disconnected")


def _session(rm: pyvisa.ResourceManager) -> list[str]:
    """A fixed message sequence: identities, TSP settings and errors, a measurement, a timeout, the clock."""
    smu, mx, ctl = open_bench(rm)
    out = [smu.query("*IDN?"), mx.query("*IDN?"), ctl.query("*IDN?"), smu.query("print(smua.source.levelv)")]
    smu.write("smua.source.levelv = 0.05")
    smu.write("smua.source.output = 1")
    out += [smu.query("print(smua.source.levelv)"), smu.query("print(smua.measure.i())")]
    smu.write("smua.source.output = 0")
    smu.write("x = = 1")
    out += [smu.query("print(errorqueue.count)"), str(smu.read_stb())]
    smu.timeout = 250
    smu.write("y = 1")                               # no reply: the read times out on the virtual clock
    with pytest.raises(errors.VisaIOError) as e:
        smu.read()
    assert e.value.error_code == constants.StatusCode.error_timeout
    smu.write('print("abcdefghij")')
    data, status = rm.visalib.read(smu.session, 4)   # count-limited read: the rest stays pending client-side
    out += [data.decode(), str(int(status)), smu.read(), ctl.query("CLOCk:TIME?")]
    return out


def _wait_for(what: Callable[[], Any], timeout: float = 4.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def _client(library: str, code: str) -> subprocess.Popen[str]:
    """A client process on ``library`` (chosen through PYVISA_LIBRARY) running ``code`` after ``smu`` is open."""
    script = textwrap.dedent("""
        import sys, time, pyvisa
        rm = pyvisa.ResourceManager()
        smu = rm.open_resource("{smu}", read_termination="\\n", write_termination="\\n")
    """).format(smu=SMU) + textwrap.dedent(code)
    env = dict(os.environ, PYVISA_LIBRARY=library)
    return subprocess.Popen([sys.executable, "-c", script], env=env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _disconnected(control: BenchControl, pid: int) -> list[dict[str, Any]]:
    return [e for e in control.events() if e["kind"] == "client_disconnected" and e["client"] == pid]


def test_same_bytes_local_and_remote() -> None:
    local = pyvisa.ResourceManager(fresh_spec("seed=3"))
    with BenchServerProcess("?seed=3") as server, server.control() as control:
        remote = pyvisa.ResourceManager(server.library)
        assert _session(remote) == _session(local)
        remote.close()
        theirs = control.transcript()
        their_events = [e for e in control.events() if e["kind"] not in CLIENT_EVENTS]
    bench = bench_of(local)
    ours = [(e.time, e.resource, e.direction, e.data.decode("latin-1")) for e in bench.transcript.entries]
    assert [(e["time"], e["resource"], e["direction"], e["data"]) for e in theirs] == ours
    assert {e["client"] for e in theirs} == {os.getpid()}
    assert {e.client for e in bench.transcript.entries} == {0}               # in-process: client 0
    assert [(e["time"], e["source"], e["kind"]) for e in their_events] == \
        [(e.time, e.source, e.kind) for e in bench.events.events]
    assert any(e["kind"] == "timeout" for e in their_events)
    local.close()


def test_killed_client_leaves_the_bench_as_it_was(bench_server: BenchServerProcess) -> None:
    proc = _client(bench_server.library, """
        mx = rm.open_resource("GPIB0::16::INSTR", read_termination="\\n", write_termination="\\n")
        mx.write('channel.close("1B01")')
        smu.write("smua.source.levelv = 0.2")
        smu.write("smua.source.output = smua.OUTPUT_ON")
        print(smu.query("print(smua.source.output)"), flush=True)
        time.sleep(60)
    """)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "1.00000e+00", proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    finally:
        proc.kill()
        proc.communicate()
    with bench_server.control() as control:
        assert _wait_for(lambda: _disconnected(control, proc.pid))
        state = control.state()
        assert state["outputs"]["smu.a"] == {"output": 1, "levelv": 0.2}        # output left ON, as on a real bench
        assert state["closed"]["matrix"] == ["1B01"]
        kinds = [e["kind"] for e in control.events() if e["client"] == proc.pid]
        assert kinds[-1] == "client_disconnected" and "output_off" not in kinds
    rm = pyvisa.ResourceManager(bench_server.library)                        # the next run on the same bench
    smu = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
    assert smu.query("print(smua.source.output)") == "1.00000e+00"
    assert smu.query("print(smua.source.levelv)") == "2.00000e-01"
    rm.close()


def test_transcript_and_events_name_the_client(bench_server: BenchServerProcess) -> None:
    first = _client(bench_server.library, 'print(smu.query("*IDN?")); rm.close()')
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0 and out.startswith("Keithley"), err
    rm = pyvisa.ResourceManager(bench_server.library)
    rm.open_resource(SMU, read_termination="\n", write_termination="\n").query("print(1)")
    quiet = _client(bench_server.library, "print(len(rm.list_resources())); rm.close()")  # sends nothing
    out, err = quiet.communicate(timeout=30)
    assert quiet.returncode == 0 and out.strip() == "3", err
    with bench_server.control() as control:
        assert _wait_for(lambda: _disconnected(control, quiet.pid))
        by_client: dict[int, list[str]] = {}
        for e in control.transcript():
            by_client.setdefault(e["client"], []).append(e["data"])
        assert by_client == {first.pid: ["*IDN?\n", "Keithley Instruments Inc., Model 2636B, 4428182, 4.0.5\n"],
                             os.getpid(): ["print(1)\n", "1.00000e+00\n"]}      # the quiet run sent nothing
        quiet_events = [(e["kind"], e["details"]["pid"]) for e in control.events() if e["client"] == quiet.pid]
        assert quiet_events == [("client_connected", quiet.pid), ("client_disconnected", quiet.pid)]
    rm.close()


def test_client_label_is_recorded(bench_server: BenchServerProcess) -> None:
    rm = pyvisa.ResourceManager(bench_server.library.replace("@rramlab", "&label=second-run@rramlab"))
    rm.close()
    expected = {("client_connected", "second-run"), ("client_disconnected", "second-run")}
    deadline = time.monotonic() + 10.0          # the server logs a client's comings and goings on its own thread
    while True:
        with bench_server.control() as control:
            labels = {(e["kind"], e["details"]["label"]) for e in control.events() if e["client"] == os.getpid()}
        if labels == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert labels == expected


def test_server_with_bench_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchConfigError, match=r"server= cannot be combined with bench key\(s\) \['seed'\]; "
                                                r"the server's bench is configured by the server"):
        pyvisa.ResourceManager("?server=unix:/tmp/nowhere.sock&seed=3@rramlab")
    with pytest.raises(BenchConfigError, match="server= cannot be combined with bench file"):
        pyvisa.ResourceManager(f"{tmp_path / 'lab.toml'}?server=unix:/tmp/nowhere.sock@rramlab")
    with pytest.raises(BenchConfigError, match="server= names a bench server"):
        Bench.from_spec("?server=unix:/tmp/nowhere.sock")
    with pytest.raises(BenchServerUnavailable, match=f"no bench server at unix:{tmp_path}/none.sock"):
        pyvisa.ResourceManager(f"?server=unix:{tmp_path}/none.sock@rramlab")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_and_clients_see_the_connection_lost(sig: int) -> None:
    server = BenchServerProcess().start()
    try:
        sock = Path(server.address.removeprefix("unix:"))
        rm = pyvisa.ResourceManager(server.library)
        smu = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
        assert smu.query("print(2)") == "2.00000e+00"
        assert sock.exists() and server.ready_file.exists()
        assert server.proc is not None
        server.proc.send_signal(sig)
        assert server.proc.wait(5) == 0, server.log()
        assert not sock.exists() and not server.ready_file.exists()
        with pytest.raises(errors.VisaIOError) as e:
            smu.query("print(3)")
        assert e.value.error_code == constants.StatusCode.error_connection_lost
        rm.close()
    finally:
        server.stop()


def test_shutdown_request() -> None:
    server = BenchServerProcess().start()
    try:
        server.control().shutdown()
        assert server.proc is not None and server.proc.wait(5) == 0, server.log()
    finally:
        server.stop()


def test_tcp_loopback_with_a_free_port() -> None:
    with BenchServerProcess("?seed=7", listen="tcp:127.0.0.1:0") as server:
        host_port = server.address.removeprefix("tcp:")
        assert host_port.startswith("127.0.0.1:") and not host_port.endswith(":0")
        rm = pyvisa.ResourceManager(server.library)
        assert rm.open_resource(CONTROLLER, read_termination="\n").query("BENCh:SEED?") == "7"
        assert rm.visalib.resource_scope == f"rramlab-server:{server.address}"
        rm.close()


def test_refuses_a_non_loopback_address_and_a_busy_socket(bench_server: BenchServerProcess,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--listen", "tcp:0.0.0.0:0"]) == 2
    assert "host '0.0.0.0' is not loopback" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="a bench server is already listening at"):
        BenchServerProcess(listen=bench_server.address).start()


def test_resource_scope() -> None:
    a, b = pyvisa.ResourceManager(fresh_spec()), pyvisa.ResourceManager(fresh_spec())
    assert a.visalib.resource_scope != b.visalib.resource_scope
    assert a.visalib.resource_scope.startswith(f"rramlab-bench:{os.getpid()}:")
    with BenchServerProcess() as server:
        c = pyvisa.ResourceManager(server.library)
        d = pyvisa.ResourceManager(server.library.replace("@rramlab", "&label=other@rramlab"))
        assert c.visalib is not d.visalib
        assert c.visalib.resource_scope == d.visalib.resource_scope == f"rramlab-server:{server.address}"
        assert not hasattr(c.visalib, "bench")
        c.close()
        d.close()
    a.close()
    b.close()


def test_two_clients_share_one_bench(bench_server: BenchServerProcess) -> None:
    first = _client(bench_server.library, 'smu.write("smua.source.levelv = 1.25"); rm.close()')
    assert first.wait(30) == 0, first.communicate()[1]
    first.communicate()
    rm = pyvisa.ResourceManager(bench_server.library)
    assert rm.open_resource(SMU, read_termination="\n").query("print(smua.source.levelv)") == "1.25000e+00"
    assert sorted(rm.list_resources()) == sorted([SMU, MATRIX, CONTROLLER])
    rm.close()


@pytest.fixture
def interrupt_after() -> Iterator[Callable[[float], None]]:
    """Raise ``_Interrupted`` in the main thread after a delay (a real signal, like a second Ctrl-C)."""
    old = signal.signal(signal.SIGUSR1, _raise_interrupted)
    timers: list[threading.Timer] = []

    def arm(delay: float) -> None:
        timers.append(threading.Timer(delay, os.kill, (os.getpid(), signal.SIGUSR1)))
        timers[-1].start()

    yield arm
    for t in timers:
        t.cancel()
        t.join()
    signal.signal(signal.SIGUSR1, old)


class _Interrupted(Exception):
    pass


def _raise_interrupted(*_: object) -> None:
    raise _Interrupted


def test_interrupted_request_keeps_the_connection_in_step(bench_server: BenchServerProcess,
                                                          interrupt_after: Callable[[float], None]) -> None:
    rm = pyvisa.ResourceManager(bench_server.library)
    smu = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
    interrupt_after(0.1)
    with pytest.raises(_Interrupted):        # the server is still busy with the write when the signal comes
        smu.write('for i = 1, 1e8 do end print("late")')
    assert smu.read() == "late"              # the write was carried out; its reply is not mistaken for a read
    assert smu.query("print(2)") == "2.00000e+00"
    rm.close()


def test_forked_child_gets_a_connection_of_its_own(bench_server: BenchServerProcess) -> None:
    rm = pyvisa.ResourceManager(bench_server.library)
    smu = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
    assert smu.query("print(1)") == "1.00000e+00"
    child = os.fork()
    if child == 0:                                       # pragma: no cover - runs in the child
        ok = False
        try:
            ok = smu.query("print(2)") == "2.00000e+00"
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert smu.query("print(3)") == "3.00000e+00"       # the parent's connection was not disturbed
    with bench_server.control() as control:
        sent = [(e["client"], e["data"]) for e in control.transcript() if e["direction"] == "write"]
    assert sent == [(os.getpid(), "print(1)\n"), (child, "print(2)\n"), (os.getpid(), "print(3)\n")]
    rm.close()
