"""Wire protocol between a bench server (:mod:`.server`) and its clients (:mod:`.remote_port`).

Addresses: ``unix:/path/to.sock`` (preferred; a bare path means the same) or ``tcp:HOST:PORT`` with a
loopback HOST (``127.0.0.1``, ``::1`` or ``localhost``; port 0 = the server picks a free one).

Frames: a 4-byte big-endian length N, then N bytes of UTF-8 JSON holding one object. Message bytes
travel as latin-1 strings (each byte 0..255 is one code point). The client sends requests, the server
answers each with exactly one frame, in order::

    request  {"op": OP, ...arguments}
    reply    {"ok": true, "result": ...}  or  {"ok": false, "error": TEXT, "status": VISA status or null}

The first request of a connection must be ``hello``; its result tells the client about the bench::

    {"op": "hello", "protocol": 1, "pid": PID, "label": TEXT, "role": "visa" | "control"}
      -> {"protocol": 1, "address": ADDRESS, "bench": NAME, "resources": [RESOURCE, ...]}

Bench operations, each run under the server's one bench lock and attributed to the client's pid:

=============================================  ==============================================================
``{"op": "resources"}``                        ``[RESOURCE, ...]``
``{"op": "write", "resource": R, "data": S}``  ``null`` (S: the message, latin-1)
``{"op": "read", "resource": R,``              the next reply (latin-1) or ``null`` for VI_ERROR_TMO: the
``"timeout": MS}``                             virtual clock advanced exactly as with an in-process bench
``{"op": "stb", "resource": R}``               status byte (int)
``{"op": "clear" | "trigger", "resource": R}``  ``null`` (device clear / bus trigger)
``{"op": "events"}``                           ``[{"time", "source", "kind", "details", "client"}, ...]``
``{"op": "transcript"}``                       ``[{"time", "resource", "direction", "data", "client"}, ...]``
``{"op": "state"}``                            what ``Bench.state()`` returns
``{"op": "shutdown"}``                         ``null``, then the server exits
=============================================  ==============================================================
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

PROTOCOL = 1
MAX_FRAME = 1 << 30                 # bytes; a full 200 000-entry transcript is well below
_HEADER = struct.Struct(">I")
_UNIX_PATH_MAX = 107                # sun_path holds 108 bytes with the NUL (Linux)


class AddressError(ValueError):
    """A bench server address that cannot be used; the message says why."""


@dataclass(frozen=True)
class Address:
    """Where a bench server listens: a unix socket ``path`` or a loopback ``host``:``port``."""

    kind: str                       # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"

    @property
    def family(self) -> socket.AddressFamily:
        if self.kind == "unix":
            return socket.AF_UNIX
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def sockaddr(self) -> str | tuple[str, int]:
        return self.path if self.kind == "unix" else (self.host, self.port)


def parse_address(text: str) -> Address:
    """``unix:/path``, a bare path, or ``tcp:HOST:PORT`` (loopback only) → :class:`Address`."""
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if scheme == "unix" or not sep or "/" in scheme:
        path = os.path.abspath(rest if scheme == "unix" else text)
        if not rest and scheme == "unix":
            raise AddressError(f"bench server address {text!r}: give a socket path, e.g. unix:/tmp/bench.sock")
        if len(os.fsencode(path)) > _UNIX_PATH_MAX:
            raise AddressError(f"bench server address {text!r}: socket path longer than {_UNIX_PATH_MAX} bytes")
        return Address("unix", path=path)
    if scheme != "tcp":
        raise AddressError(f"bench server address {text!r}: use unix:/path/to.sock or tcp:127.0.0.1:PORT")
    host, _, port_s = rest.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise AddressError(f"bench server address {text!r}: host {host!r} is not loopback; "
                           "a bench server only listens on 127.0.0.1 or ::1")
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise AddressError(f"bench server address {text!r}: port must be 0..65535")
    return Address("tcp", host=host, port=int(port_s))


def connect(address: Address, timeout: float = 5.0) -> socket.socket:
    """A blocking stream socket connected to ``address`` (connecting gives up after ``timeout`` s)."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address.sockaddr)
        sock.settimeout(None)
        if address.kind == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class FrameStream:
    """Length-prefixed JSON frames over a connected socket (see module docstring).

    Received bytes are buffered in the object, so a receive interrupted by an exception (e.g. a
    signal handler raising) loses nothing: the next :meth:`receive` continues the same frame."""

    __slots__ = ("sock", "_buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def send(self, obj: Any) -> None:
        payload = json.dumps(obj, separators=(",", ":")).encode("ascii")
        self.sock.sendall(_HEADER.pack(len(payload)) + payload)

    def receive(self) -> Any:
        """The next frame's object; None when the peer closed the connection between frames."""
        buf = self._buf
        while True:
            if len(buf) >= 4:
                (n,) = _HEADER.unpack_from(buf)
                if n > MAX_FRAME:
                    raise ConnectionError(f"bench server frame of {n} bytes exceeds {MAX_FRAME}")
                if len(buf) >= 4 + n:
                    payload = bytes(buf[4:4 + n])
                    del buf[:4 + n]
                    return json.loads(payload)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                if buf:
                    raise ConnectionError("bench server connection closed in the middle of a frame")
                return None
            buf += chunk

    def close(self) -> None:
        self.sock.close()
