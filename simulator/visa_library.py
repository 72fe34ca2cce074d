"""pyvisa backend ``@rramlab``: message-based VISA sessions to the emulated instruments of a bench.

Selected by ``pyvisa.ResourceManager("@rramlab")``, ``PYVISA_LIBRARY=@rramlab`` or a bench path
before the ``@`` (``"lab.toml@rramlab"``, ``"?seed=3@rramlab"``; see :mod:`.bench_config`).
Each library object (one per library path, as pyvisa caches them) owns one bench, so resource
managers on different bench paths never share state. ``"?server=unix:/tmp/b.sock@rramlab"`` instead
reaches the bench of a bench server (:mod:`.server`), shared with its other clients and outliving
this process. The library keeps the VISA sessions; the bench is reached through a port
(:mod:`.bench_port`, :mod:`.remote_port`). ``resource_scope`` names the set of instruments reached:
resources with the same name in the same scope are the same instrument.

Reads honour the count, the termination character when enabled (VPP-4.3) and END on the last byte
of each reply. pyvisa has no timeout of its own: a read with no reply due within the session's
timeout advances the virtual clock by the timeout and raises ``VI_ERROR_TMO``; a late reply due
within the timeout is waited for on the virtual clock.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from pyvisa import attributes, constants, errors, highlevel, rname
from pyvisa.constants import StatusCode
from pyvisa.typing import VISARMSession, VISASession
from pyvisa.util import LibraryPath

from .bench import Bench
from .bench_config import server_spec
from .bench_port import BenchPort, LocalBenchPort

RA = constants.ResourceAttribute


def _canonical(resource: str) -> str:
    """A resource name in pyvisa's canonical spelling, upper case (USB names gain the ``::0`` interface)."""
    try:
        return str(rname.parse_resource_name(resource)).upper()
    except rname.InvalidResourceName:
        return resource.upper()


class _Session:
    """One open VISA session to an emulated instrument."""

    __slots__ = ("resource", "attrs", "pending", "session_type")

    def __init__(self, resource: str, parsed: rname.ResourceName) -> None:
        self.resource = resource
        self.session_type = (parsed.interface_type_const, parsed.resource_class)
        self.pending = b""
        self.attrs: dict[int, Any] = {
            RA.resource_name: resource,
            RA.interface_type: parsed.interface_type_const,
            RA.resource_class: parsed.resource_class,
            RA.interface_number: int(getattr(parsed, "board", 0) or 0),
            RA.timeout_value: 2000,
            RA.termchar: 0x0A,
            RA.termchar_enabled: False,
            RA.send_end_enabled: True,
            RA.suppress_end_enabled: False,
            RA.io_prot: constants.IOProtocol.normal,
            RA.resource_manufacturer_name: "rramlab",
            RA.resource_impl_version: 1,
            RA.resource_spec_version: 0x00700000,
        }


class RramlabVisaLibrary(highlevel.VisaLibraryBase):
    """The ``@rramlab`` pyvisa backend (``WRAPPER_CLASS`` of :mod:`pyvisa_rramlab`)."""

    bench: Bench                    # in-process bench only (the tests' side channel)
    port: BenchPort
    _sessions: dict[int, Any]

    @staticmethod
    def get_library_paths() -> tuple[LibraryPath, ...]:
        return (LibraryPath("default"),)

    @staticmethod
    def get_debug_info() -> dict[str, str]:
        return {"backend": "rramlab simulated bench",
                "library paths": "bench TOML path [?key=value&…] or ?server=ADDRESS"}

    def _init(self) -> None:
        spec = str(self.library_path)
        server = server_spec(spec)
        if server is None:
            self.bench = Bench.from_spec(spec)
            self.port = LocalBenchPort(self.bench)
        else:
            from .remote_port import RemoteBenchPort

            self.port = RemoteBenchPort(server.address, server.label)
            weakref.finalize(self, self.port.release)
        self._sessions = {}
        self._ids = itertools.count(1000)

    @property
    def resource_scope(self) -> str:
        """The set of instruments this library reaches (same name in the same scope = same instrument)."""
        return self.port.scope

    # ----------------------------------------------------------- resource manager
    def _new_id(self) -> int:
        return next(self._ids)

    def open_default_resource_manager(self) -> tuple[VISARMSession, StatusCode]:
        self.port.connect()
        sid = self._new_id()
        self._sessions[sid] = self
        return VISARMSession(sid), StatusCode.success

    def list_resources(self, session: VISARMSession, query: str = "?*::INSTR") -> tuple[str, ...]:
        found = rname.filter(self.port.resources(), query)
        if found:
            return tuple(found)
        raise errors.VisaIOError(StatusCode.error_resource_not_found.value)

    def open(self, session: VISARMSession, resource_name: str,
             access_mode: constants.AccessModes = constants.AccessModes.no_lock,
             open_timeout: int = constants.VI_TMO_IMMEDIATE) -> tuple[VISASession, StatusCode]:
        try:
            parsed = rname.parse_resource_name(resource_name)
        except rname.InvalidResourceName:
            raise errors.VisaIOError(StatusCode.error_invalid_resource_name.value) from None
        canonical = str(parsed).upper()
        resource = next((r for r in self.port.resources() if _canonical(r) == canonical), None)
        if resource is None:
            raise errors.VisaIOError(StatusCode.error_resource_not_found.value)
        sid = self._new_id()
        self._sessions[sid] = _Session(resource, parsed)
        return VISASession(sid), StatusCode.success

    def close(self, session: Any) -> StatusCode:
        sess = self._sessions.pop(session, None)
        if sess is None:
            return StatusCode.error_invalid_object
        if sess is self:  # closing the resource manager closes its sessions
            self._sessions = {k: v for k, v in self._sessions.items() if v is self}
            if not self._sessions:
                self.port.release()
        return StatusCode.success

    def _get(self, session: Any) -> _Session:
        sess = self._sessions.get(session)
        if not isinstance(sess, _Session):
            raise errors.VisaIOError(StatusCode.error_invalid_object.value)
        return sess

    # ----------------------------------------------------------------- messages
    def write(self, session: VISASession, data: bytes) -> tuple[int, StatusCode]:
        sess = self._get(session)
        self.port.write(sess.resource, bytes(data))
        return len(data), StatusCode.success

    def read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        sess = self._get(session)
        if not sess.pending:
            msg = self.port.read(sess.resource, sess.attrs[RA.timeout_value])
            if msg is None:
                raise errors.VisaIOError(constants.VI_ERROR_TMO)
            sess.pending = msg
        data = sess.pending
        if sess.attrs[RA.termchar_enabled]:
            term = bytes([int(sess.attrs[RA.termchar])])
            k = data.find(term)
            if k >= 0 and k + 1 <= count:
                sess.pending = data[k + 1:]
                return data[:k + 1], StatusCode.success_termination_character_read
        if len(data) > count:
            sess.pending = data[count:]
            return data[:count], StatusCode.success_max_count_read
        sess.pending = b""
        return data, StatusCode.success

    def read_stb(self, session: VISASession) -> tuple[int, StatusCode]:
        sess = self._get(session)
        return self.port.status_byte(sess.resource), StatusCode.success

    def clear(self, session: VISASession) -> StatusCode:
        sess = self._get(session)
        sess.pending = b""
        self.port.device_clear(sess.resource)
        return StatusCode.success

    def assert_trigger(self, session: VISASession, protocol: constants.TriggerProtocol) -> StatusCode:
        sess = self._get(session)
        self.port.assert_trigger(sess.resource)
        return StatusCode.success

    def flush(self, session: VISASession, mask: constants.BufferOperation) -> StatusCode:
        sess = self._get(session)
        if int(mask) & (constants.BufferOperation.discard_read_buffer
                        | constants.BufferOperation.discard_read_buffer_no_io):
            sess.pending = b""
        return StatusCode.success

    def lock(self, session: VISASession, lock_type: constants.Lock, timeout: int,
             requested_key: str | None = None) -> tuple[str, StatusCode]:
        self._get(session)
        return requested_key or "rramlab", StatusCode.success

    def unlock(self, session: VISASession) -> StatusCode:
        self._get(session)
        return StatusCode.success

    # --------------------------------------------------------------- attributes
    def get_attribute(self, session: Any, attribute: int) -> tuple[Any, StatusCode]:
        sess = self._sessions.get(session)
        if sess is self:
            return None, StatusCode.error_nonsupported_attribute
        if not isinstance(sess, _Session):
            return None, StatusCode.error_invalid_object
        if attribute in sess.attrs:
            return sess.attrs[attribute], StatusCode.success
        attr = attributes.AttributesByID.get(attribute)
        if attr is None or not attr.in_resource(sess.session_type):
            return None, StatusCode.error_nonsupported_attribute
        return sess.attrs.setdefault(attribute, attr.default), StatusCode.success

    def set_attribute(self, session: Any, attribute: int, attribute_state: Any) -> StatusCode:
        sess = self._sessions.get(session)
        if not isinstance(sess, _Session):
            return StatusCode.error_invalid_object
        attr = attributes.AttributesByID.get(attribute)
        if attr is None or not attr.in_resource(sess.session_type):
            return StatusCode.error_nonsupported_attribute
        if not attr.write:
            return StatusCode.error_attribute_read_only
        sess.attrs[attribute] = attribute_state
        return StatusCode.success

    def disable_event(self, session: Any, event_type: Any, mechanism: Any) -> StatusCode:
        return StatusCode.success

    def discard_events(self, session: Any, event_type: Any, mechanism: Any) -> StatusCode:
        return StatusCode.success
