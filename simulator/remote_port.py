"""The bench port of a bench server's client: each operation is one request/reply (see :mod:`.wire`)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from pyvisa import errors
from pyvisa.constants import StatusCode

from .wire import PROTOCOL, AddressError, FrameStream, connect, parse_address

log = logging.getLogger(__name__)


class BenchServerUnavailable(ConnectionError):
    """No bench server answers at the address (or it speaks another protocol)."""


class BenchServerError(RuntimeError):
    """The bench server could not carry out a request (its message says why)."""


REPLY_TIMEOUT = 30.0
"""s of wall time a VISA client waits for one reply before it takes the connection for lost (and the next
request connects again)."""


class RemoteBenchPort:
    """A connection to a bench server, opened when a resource manager opens and closed when none is left.

    Requests are serialized per port. A request interrupted anywhere in its exchange (e.g. by a signal
    handler raising) drops the connection; the next request connects again (see :meth:`request`)."""

    def __init__(self, address: str, label: str = "", role: str = "visa", connect_timeout: float = 5.0) -> None:
        try:
            self.address = parse_address(address)
        except AddressError as e:
            raise BenchServerUnavailable(str(e)) from None
        self.label = label
        self.role = role
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._stream: FrameStream | None = None
        self._next_id = 0                   # id of the last request (echoed in its reply)
        self._pid = 0                       # the process that made the connection
        self.info: dict[str, Any] = {}
        self.connect()
        self.scope = f"rramlab-server:{self.info['address']}"

    # --------------------------------------------------------------- connection
    def connect(self) -> None:
        """Connect and say hello (no-op when connected)."""
        with self._lock:
            self._connect()

    def _connect(self) -> None:
        if self._stream is not None and self._pid != os.getpid():
            self._drop(self._stream)        # a forked child's copy: it gets a connection of its own
        if self._stream is not None:
            return
        try:
            sock = connect(self.address, self.connect_timeout)
            if self.role == "visa":     # the server answers at once (simulated waits take no wall time):
                sock.settimeout(REPLY_TIMEOUT)          # a reply this late means a lost server, not a slow bench
            stream = FrameStream(sock)
        except OSError as e:
            raise BenchServerUnavailable(f"no bench server at {self.address}: {e} (start one with "
                                         f"python -m rramlab.simulator.server --listen {self.address})") from None
        try:
            stream.send({"op": "hello", "protocol": PROTOCOL, "pid": os.getpid(), "label": self.label,
                         "role": self.role})
            reply = stream.receive()
        except BaseException:
            stream.close()
            raise
        if not isinstance(reply, dict) or not reply.get("ok"):
            stream.close()
            why = reply.get("error") if isinstance(reply, dict) else "connection closed"
            raise BenchServerUnavailable(f"bench server at {self.address} refused the connection: {why}")
        self._stream, self._pid, self.info = stream, os.getpid(), reply["result"]

    def release(self) -> None:
        """Disconnect (the server's bench is left exactly as it is)."""
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    close = release

    @property
    def connected(self) -> bool:
        return self._stream is not None

    def request(self, op: str, **args: Any) -> Any:
        """Send one request and return its result; a lost connection raises VI_ERROR_CONN_LOST.

        A signal handler may raise (Ctrl-C, SIGTERM) at any point of an exchange, and the client must still
        reach the bench afterwards — its safe-state commands come next. An exchange cut anywhere drops the
        connection (part of a frame may be out, or read), and the next request opens a new one: the bench
        is the server's, not the connection's. Replies also carry the request's id, so a reply can never be
        taken for the answer to another request.
        """
        with self._lock:
            if self._pid != os.getpid() or self._stream is None:
                try:
                    self._connect()
                except BenchServerUnavailable as e:
                    raise errors.VisaIOError(StatusCode.error_connection_lost) from e
            stream = self._stream
            assert stream is not None
            self._next_id += 1
            ident = args["id"] = self._next_id
            args["op"] = op
            try:
                stream.send(args)
                while True:
                    reply = self._receive(stream)
                    if reply.get("id") == ident:
                        break                  # an older id: a reply the server sent to an abandoned request
            except (OSError, ValueError) as e:
                log.warning("rramlab: lost the bench server at %s: %s", self.address, e)
                self._drop(stream)
                raise errors.VisaIOError(StatusCode.error_connection_lost) from e
            except BaseException:              # cut by a signal: part of a frame may be out or read
                self._drop(stream)             # the next request opens a new connection, in step
                raise
        if reply.get("ok"):
            return reply.get("result")
        if reply.get("status") is not None:
            raise errors.VisaIOError(int(reply["status"]))
        raise BenchServerError(f"bench server at {self.address}: {op}: {reply.get('error')}")

    def _receive(self, stream: FrameStream) -> dict[str, Any]:
        reply = stream.receive()
        if not isinstance(reply, dict):
            raise ConnectionError("bench server closed the connection")
        return reply

    def _drop(self, stream: FrameStream) -> None:
        stream.close()
        if self._stream is stream:
            self._stream = None

    # ---------------------------------------------------------------- bench port
    def resources(self) -> tuple[str, ...]:
        return tuple(self.request("resources"))

    def write(self, resource: str, data: bytes) -> None:
        self.request("write", resource=resource, data=data.decode("latin-1"))

    def read(self, resource: str, timeout: int) -> bytes | None:
        data = self.request("read", resource=resource, timeout=int(timeout))
        return None if data is None else data.encode("latin-1")

    def status_byte(self, resource: str) -> int:
        return int(self.request("stb", resource=resource))

    def wait_srq(self, resource: str, timeout: int) -> int | None:
        stb = self.request("srq", resource=resource, timeout=int(timeout))
        return None if stb is None else int(stb)

    def device_clear(self, resource: str) -> None:
        self.request("clear", resource=resource)

    def assert_trigger(self, resource: str) -> None:
        self.request("trigger", resource=resource)
