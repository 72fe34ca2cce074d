"""Bench server: one simulated bench in its own process, outliving (and shared by) its VISA clients.

    python -m rramlab.simulator.server --bench "?seed=3" --listen unix:/tmp/bench.sock [--ready-file PATH]

``--bench`` is any bench spec (what goes before ``@rramlab``; empty = the default bench), ``--listen``
``unix:/path/to.sock`` (default and preferred) or ``tcp:127.0.0.1:PORT`` (loopback only; port 0 picks
a free one). Clients select it with ``"?server=unix:/tmp/bench.sock@rramlab"`` (:mod:`.bench_config`);
the wire protocol is in :mod:`.wire`. Every bench operation runs under one lock, as a real bench
serializes too, and is attributed to the client's pid in the transcript and event log. When ready, the
server writes its address to stdout and atomically to the ready file. SIGTERM, SIGINT or a
``shutdown`` request stop it (exit 0). A client that disconnects, even killed with ``kill -9``, changes
nothing on the bench (outputs stay as they were, relays stay closed): only a ``client_disconnected``
event is recorded.

Tests drive it with :class:`BenchServerProcess` (a server subprocess) and :class:`BenchControl`
(events, transcript, state, shutdown).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pyvisa.constants import StatusCode

from .bench import Bench
from .bench_config import BenchConfigError
from .bench_port import LocalBenchPort
from .remote_port import RemoteBenchPort
from .wire import PROTOCOL, Address, AddressError, FrameStream, parse_address

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """A JSON-ready copy: bytes as latin-1 text, numpy scalars as numbers, anything else unknown as str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    item = getattr(value, "item", None)
    if callable(item):
        with contextlib.suppress(Exception):
            return _plain(item())
    return str(value)


@dataclass(frozen=True)
class _Client:
    pid: int
    label: str
    role: str


class BenchServer:
    """One bench served to any number of clients (see module docstring)."""

    def __init__(self, bench: Bench, address: Address) -> None:
        self.bench = bench
        self.port = LocalBenchPort(bench)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._closed = False
        self._streams: set[socket.socket] = set()
        self._streams_lock = threading.Lock()
        self._server = self._bind(address)
        self._thread: threading.Thread | None = None
        if address.kind == "unix":
            self.address = address
            self._inode = os.stat(address.path).st_ino
        else:
            host, port = self._server.server_address[:2]
            self.address = Address("tcp", host=str(host), port=int(port))

    def _bind(self, address: Address) -> socketserver.BaseServer:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.serve_client(self.request)

        if address.kind == "unix":
            _clear_stale_socket(address.path)
            unix = type("_UnixServer", (socketserver.ThreadingUnixStreamServer,), {"daemon_threads": True})
            return unix(address.path, Handler)
        tcp = type("_TCPServer", (socketserver.ThreadingTCPServer,),
                   {"daemon_threads": True, "allow_reuse_address": True, "address_family": address.family})
        return tcp(address.sockaddr, Handler)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bench-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, cut every client, wait for the operation in progress, remove the socket file."""
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        with self._streams_lock:
            for sock in self._streams:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with self.lock:                      # an operation in progress completes; none starts after
            self._closed = True
        if self.address.kind == "unix":
            with contextlib.suppress(OSError):
                if os.stat(self.address.path).st_ino == self._inode:
                    os.unlink(self.address.path)

    # ------------------------------------------------------------------ clients
    def serve_client(self, sock: socket.socket) -> None:
        """One connection: hello, then requests until the client goes (or the server stops)."""
        if self.address.kind == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = FrameStream(sock)
        with self._streams_lock:
            self._streams.add(sock)
        client: _Client | None = None
        try:
            client = self._hello(stream)
            if client is None:
                return
            while not self.stopping.is_set():
                request = stream.receive()
                if request is None:
                    break
                reply = self._answer(client, request)
                if isinstance(request, dict) and "id" in request:
                    reply["id"] = request["id"]          # the client matches replies to requests by it
                stream.send(reply)
        except (OSError, ValueError) as e:
            log.debug("bench server: client %s: %s", client, e)
        finally:
            with self._streams_lock:
                self._streams.discard(sock)
            if client is not None and client.role == "visa":
                self._event(client, "client_disconnected")

    def _hello(self, stream: FrameStream) -> _Client | None:
        hello = stream.receive()
        if not isinstance(hello, dict) or hello.get("op") != "hello" or hello.get("protocol") != PROTOCOL:
            stream.send({"ok": False, "status": None,
                         "error": f"expected hello with protocol {PROTOCOL}, got {str(hello)[:200]}"})
            return None
        client = _Client(int(hello.get("pid", 0)), str(hello.get("label", "")), str(hello.get("role", "visa")))
        stream.send({"ok": True, "result": {"protocol": PROTOCOL, "address": str(self.address),
                                            "bench": self.bench.name, "resources": list(self.bench.instruments)}})
        if client.role == "visa":
            self._event(client, "client_connected")
        return client

    def _event(self, client: _Client, kind: str) -> None:
        with self.lock, self.bench.acting_for(client.pid):
            self.bench.events.add(self.bench.clock.now, "server", kind, pid=client.pid, label=client.label)

    def _answer(self, client: _Client, request: Any) -> dict[str, Any]:
        op = request.get("op") if isinstance(request, dict) else None
        try:
            return {"ok": True, "result": self._dispatch(client, str(op), request)}
        except _Refused as e:
            return {"ok": False, "error": str(e), "status": e.status}
        except Exception as e:  # noqa: BLE001 - reported to the client, the server goes on
            log.exception("bench server: %s failed", op)
            return {"ok": False, "error": f"{type(e).__name__}: {e}", "status": None}

    def _dispatch(self, client: _Client, op: str, req: dict[str, Any]) -> Any:
        bench, port = self.bench, self.port
        with self.lock, bench.acting_for(client.pid):
            if self._closed:
                raise _Refused("the bench server is stopping", StatusCode.error_connection_lost)
            if op in _RESOURCE_OPS:
                resource = req.get("resource")
                if resource not in bench.instruments:
                    raise _Refused(f"no instrument {resource!r} on this bench", StatusCode.error_resource_not_found)
                if op == "write":
                    port.write(resource, str(req["data"]).encode("latin-1"))
                    return None
                if op == "read":
                    msg = port.read(resource, int(req["timeout"]))
                    return None if msg is None else msg.decode("latin-1")
                if op == "stb":
                    return port.status_byte(resource)
                if op == "srq":
                    return port.wait_srq(resource, int(req["timeout"]))
                if op == "clear":
                    port.device_clear(resource)
                else:
                    port.assert_trigger(resource)
                return None
            if op == "resources":
                return port.resources()
            if op == "events":
                return [{"time": e.time, "source": e.source, "kind": e.kind, "details": _plain(e.details),
                         "client": e.client} for e in bench.events.events]
            if op == "transcript":
                return [{"time": e.time, "resource": e.resource, "direction": e.direction,
                         "data": e.data.decode("latin-1"), "client": e.client} for e in bench.transcript.entries]
            if op == "state":
                return _plain(bench.state())
            if op == "shutdown":
                self.stopping.set()
                return None
        raise _Refused(f"unknown operation {op!r}", None)


_RESOURCE_OPS = frozenset({"write", "read", "stb", "srq", "clear", "trigger"})


class _Refused(Exception):
    def __init__(self, message: str, status: StatusCode | None) -> None:
        super().__init__(message)
        self.status = None if status is None else int(status)


def _clear_stale_socket(path: str) -> None:
    """Remove a socket file left by a dead server; refuse a live one or a file that is not a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AddressError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)                     # nobody listens: stale
        return
    finally:
        probe.close()
    raise AddressError(f"a bench server is already listening at unix:{path}")


def _write_ready(path: str, address: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    Path(tmp).write_text(address + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rramlab.simulator.server",
                                 description="Serve one simulated bench to any number of @rramlab clients.")
    ap.add_argument("--bench", default="", help='bench spec, e.g. "?seed=3" or "bench.toml?noise=0" (default bench)')
    ap.add_argument("--listen", default="", help="unix:/path/to.sock or tcp:127.0.0.1:PORT (port 0 = any free)")
    ap.add_argument("--ready-file", default="", help="file to write the address to once serving")
    args = ap.parse_args(argv)
    listen = args.listen or os.path.join(tempfile.gettempdir(), f"rramlab-bench-{os.getpid()}.sock")
    try:
        address = parse_address(listen)
        server = BenchServer(Bench.from_spec(args.bench), address)
    except (BenchConfigError, AddressError, OSError) as e:
        print(f"bench server: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    try:
        if args.ready_file:
            _write_ready(args.ready_file, str(server.address))
        print(server.address, flush=True)
        while not stop.wait(0.05) and not server.stopping.is_set():
            pass
    finally:
        server.close()
        if args.ready_file:
            with contextlib.suppress(OSError):
                os.unlink(args.ready_file)
    return 0


# ------------------------------------------------------------------ test control API
class BenchControl:
    """A control connection to a bench server (tests): events, transcript, state, shutdown."""

    def __init__(self, address: str, label: str = "control") -> None:
        self._port = RemoteBenchPort(address, label, role="control")

    def events(self) -> list[dict[str, Any]]:
        """Every event: time (s), source, kind, details, client (pid; 0 = the server itself)."""
        return list(self._port.request("events"))

    def transcript(self) -> list[dict[str, Any]]:
        """Every message: time (s), resource, direction, data (latin-1 text), client (pid)."""
        return list(self._port.request("transcript"))

    def state(self) -> dict[str, Any]:
        """What ``Bench.state()`` returns: time, outputs, closed relays."""
        return dict(self._port.request("state"))

    def shutdown(self) -> None:
        """Ask the server to exit."""
        self._port.request("shutdown")
        self.close()

    def close(self) -> None:
        self._port.release()

    def __enter__(self) -> BenchControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BenchServerProcess:
    """``python -m rramlab.simulator.server`` as a subprocess on a unix socket in a fresh temp dir (tests)."""

    def __init__(self, bench: str = "", *, listen: str | None = None, ready_timeout: float = 30.0,
                 env: dict[str, str] | None = None) -> None:
        self.bench = bench
        self.ready_timeout = ready_timeout
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="rramlab-srv-"))
        self.listen = listen or f"unix:{self.dir / 'bench.sock'}"
        self.ready_file = self.dir / "ready"
        self.log_file = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self) -> BenchServerProcess:
        """Start the server and wait (at most ``ready_timeout`` s) for its ready file."""
        with open(self.log_file, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rramlab.simulator.server", "--bench", self.bench, "--listen", self.listen,
                 "--ready-file", str(self.ready_file)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"bench server did not start ({self.bench!r} on {self.listen}):\n{log_text}")
            time.sleep(0.01)
        self.address = self.ready_file.read_text(encoding="utf-8").strip()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def library(self) -> str:
        """The pyvisa library string of this server, e.g. ``"?server=unix:/tmp/…/bench.sock@rramlab"``."""
        return f"?server={self.address}@rramlab"

    def control(self) -> BenchControl:
        return BenchControl(self.address)

    def log(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait (SIGKILL after ``timeout`` s), remove the temp dir; the exit code (None if never started)."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def __enter__(self) -> BenchServerProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["BenchControl", "BenchServer", "BenchServerProcess", "main"]


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="bench server: %(levelname)s %(message)s")
    sys.exit(main())
