"""pyvisa backend ``@rramlab``: message-based VISA sessions to the emulated instruments of a bench.

Selected by ``pyvisa.ResourceManager("@rramlab")``, ``PYVISA_LIBRARY=@rramlab`` or a bench path
before the ``@`` (``"lab.toml@rramlab"``, ``"?seed=3@rramlab"``; see :mod:`.bench_config`).
Each library object (one per library path, as pyvisa caches them) owns one bench, so resource
managers on different bench paths never share state. ``"?server=unix:/tmp/b.sock@rramlab"`` instead
reaches the bench of a bench server (:mod:`.server`), shared with its other clients and outliving
this process; ``"?replay=session.jsonl@rramlab"`` serves a recorded session instead (:mod:`.replay`).
The library keeps the VISA sessions; the bench is reached through a port
(:mod:`.bench_port`, :mod:`.remote_port`, :mod:`.replay`). ``resource_scope`` names the set of instruments reached:
resources with the same name in the same scope are the same instrument.

Reads honour the count, the termination character when enabled (VPP-4.3) and END on the last byte
of each reply. pyvisa has no timeout of its own: a read with no reply due within the session's
timeout advances the virtual clock by the timeout and raises ``VI_ERROR_TMO``; a late reply due
within the timeout is waited for on the virtual clock.
"""

from __future__ import annotations

import itertools
import weakref
from collections import deque
from typing import Any

from pyvisa import attributes, constants, errors, highlevel, rname
from pyvisa.constants import StatusCode
from pyvisa.typing import VISARMSession, VISASession
from pyvisa.util import LibraryPath

from .bench import Bench
from .bench_config import replay_spec, server_spec
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
        replay = replay_spec(spec)
        server = server_spec(spec) if replay is None else None
        if replay is not None:
            from .replay import ReplayPort

            self.port = ReplayPort(replay)
        elif server is None:
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
        self._check_srq(sess.resource)          # event API: SRQ raised by this write
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
        """Serial poll (IEEE 488.2 §11.2.2.1: bit 6 = RQS, cleared by the poll). A service request
        the library has already polled (event enabled) returns that poll's status byte, once."""
        sess = self._get(session)
        self._check_srq(sess.resource)
        ev = self.__dict__.get("_event_states", {}).get(session)
        if ev is not None and ev.stb is not None:
            stb, ev.stb = ev.stb, None
            return stb, StatusCode.success
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
        if isinstance(sess, _EventContext):
            if attribute in sess.attrs:
                return sess.attrs[attribute], StatusCode.success
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

    # ------------------------------------------------------------------- events
    # Service requests (VPP-4.3 viEnableEvent / viWaitOnEvent / viReadSTB): the instrument asserts
    # SRQ when its master summary goes true (IEEE 488.2 §11.3.1, see ``simulator/instrument.py``).
    # The library notices it at its own calls (write, read, wait, read_stb) — there is no real
    # time here, only the bench's virtual clock — then serial-polls the instrument as VISA does
    # (clearing RQS), queues one VI_EVENT_SERVICE_REQ per session enabled for it and keeps the
    # polled status byte for that session's next ``read_stb``. ``wait_on_event`` advances the clock
    # through the instrument's pending work up to the timeout; no request in time → VI_ERROR_TMO.
    def _event_state(self, session: Any) -> _Events:
        states: dict[int, _Events] = self.__dict__.setdefault("_event_states", {})
        return states.setdefault(session, _Events())

    def _srq_sessions(self, resource: str) -> list[_Events]:
        states: dict[int, _Events] = self.__dict__.get("_event_states", {})
        return [ev for sid, ev in states.items() if ev.enabled
                and getattr(self._sessions.get(sid), "resource", None) == resource]

    def _deliver_srq(self, resource: str, stb: int) -> None:
        """One service request of ``resource`` answered by the serial poll that returned ``stb``."""
        states: dict[int, _Events] = self.__dict__.get("_event_states", {})
        for sid, ev in list(states.items()):
            if not ev.enabled or getattr(self._sessions.get(sid), "resource", None) != resource:
                continue
            ev.stb = stb
            if ev.queue_on and len(ev.queue) < ev.queue_length:
                ev.queue.append(stb)
            if ev.handler_on and not ev.suspended:
                self._call_handlers(sid, ev)
            elif ev.handler_on and not ev.queue_on and len(ev.queue) < ev.queue_length:
                ev.queue.append(stb)   # VI_SUSPEND_HNDLR: held until the handler is enabled again

    def _call_handlers(self, session: Any, ev: _Events) -> None:
        for event_type, handler, user_handle in list(ev.handlers):
            if event_type == SRQ:
                ctx = self._new_context(SRQ)
                try:
                    handler(session, SRQ, ctx, user_handle)
                finally:
                    self._sessions.pop(ctx, None)

    def _check_srq(self, resource: str) -> None:
        """Notice an asserted SRQ (serial poll without waiting) when a session is enabled for it."""
        if not self._srq_sessions(resource):
            return
        stb = self.port.wait_srq(resource, 0)
        if stb is not None:
            self._deliver_srq(resource, stb)

    def _new_context(self, event_type: constants.EventType) -> int:
        ctx = self._new_id()
        self._sessions[ctx] = _EventContext(event_type)
        return ctx

    def enable_event(self, session: VISASession, event_type: constants.EventType,
                     mechanism: constants.EventMechanism, context: Any = None) -> StatusCode:
        sess = self._get(session)
        if int(event_type) not in (SRQ, ALL_ENABLED):
            return StatusCode.error_invalid_event
        mech = int(mechanism)
        if mech not in (EM.queue, EM.handler, EM.suspend_handler, EM.queue | EM.handler,
                        EM.queue | EM.suspend_handler):
            return StatusCode.error_invalid_mechanism
        ev = self._event_state(session)
        if mech & EM.handler and not any(t == SRQ for t, _, _ in ev.handlers):
            return StatusCode.error_handler_not_installed
        before = (ev.queue_on, ev.handler_on, ev.suspended)
        if mech & EM.queue:
            ev.queue_on = True
        if mech & (EM.handler | EM.suspend_handler):
            resumed = ev.handler_on and ev.suspended and not mech & EM.suspend_handler
            ev.handler_on, ev.suspended = True, bool(mech & EM.suspend_handler)
            if resumed and not ev.queue_on:   # requests held while suspended go to the handler now
                held, ev.queue = list(ev.queue), deque()
                for _ in held:
                    self._call_handlers(session, ev)
        self._check_srq(sess.resource)
        if before == (ev.queue_on, ev.handler_on, ev.suspended):
            return StatusCode.success_event_already_enabled
        return StatusCode.success

    def disable_event(self, session: VISASession, event_type: constants.EventType,
                      mechanism: constants.EventMechanism) -> StatusCode:
        if int(event_type) not in (SRQ, ALL_ENABLED):
            return StatusCode.error_invalid_event
        ev = self.__dict__.get("_event_states", {}).get(session)
        if ev is None or not ev.enabled:
            return StatusCode.success_event_already_disabled
        mech = int(mechanism)
        if mech & EM.queue:
            ev.queue_on = False
        if mech & (EM.handler | EM.suspend_handler):
            ev.handler_on = ev.suspended = False
        return StatusCode.success

    def discard_events(self, session: VISASession, event_type: constants.EventType,
                       mechanism: constants.EventMechanism) -> StatusCode:
        if int(event_type) not in (SRQ, ALL_ENABLED):
            return StatusCode.error_invalid_event
        ev = self.__dict__.get("_event_states", {}).get(session)
        if ev is not None:
            ev.queue.clear()
            if not ev.enabled and not ev.handlers:
                self.__dict__["_event_states"].pop(session, None)
        return StatusCode.success

    def wait_on_event(self, session: VISASession, in_event_type: constants.EventType,
                      timeout: int | None) -> tuple[constants.EventType, int, StatusCode]:
        sess = self._get(session)
        if int(in_event_type) not in (SRQ, ALL_ENABLED):
            raise errors.VisaIOError(StatusCode.error_invalid_event.value)
        ev = self._event_state(session)
        if not ev.queue_on:
            raise errors.VisaIOError(StatusCode.error_not_enabled.value)
        if not ev.queue:
            wait = constants.VI_TMO_INFINITE if timeout is None else int(timeout)
            stb = self.port.wait_srq(sess.resource, wait)
            if stb is None:
                raise errors.VisaIOError(constants.VI_ERROR_TMO)
            self._deliver_srq(sess.resource, stb)
        ev.queue.popleft()
        status = StatusCode.success_queue_not_empty if ev.queue else StatusCode.success
        return constants.EventType.service_request, self._new_context(SRQ), status

    def install_handler(self, session: VISASession, event_type: constants.EventType, handler: Any,
                        user_handle: Any) -> tuple[Any, Any, Any, StatusCode]:
        self._get(session)
        if int(event_type) != SRQ:
            raise errors.VisaIOError(StatusCode.error_invalid_event.value)
        self._event_state(session).handlers.append((SRQ, handler, user_handle))
        return handler, user_handle, handler, StatusCode.success

    def uninstall_handler(self, session: VISASession, event_type: constants.EventType, handler: Any,
                          user_handle: Any = None) -> StatusCode:
        ev = self.__dict__.get("_event_states", {}).get(session)
        if ev is None:
            return StatusCode.error_invalid_handler_reference
        for k, (t, h, u) in enumerate(ev.handlers):
            if t == int(event_type) and h == handler and u == user_handle:
                del ev.handlers[k]
                return StatusCode.success
        return StatusCode.error_invalid_handler_reference


SRQ = constants.EventType.service_request
ALL_ENABLED = constants.EventType.all_enabled
EM = constants.EventMechanism


class _Events:
    """Event bookkeeping of one session: mechanisms enabled, the event queue, the polled STB."""

    __slots__ = ("queue_on", "handler_on", "suspended", "queue", "stb", "handlers", "queue_length")

    def __init__(self) -> None:
        self.queue_on = False
        self.handler_on = False
        self.suspended = False
        self.queue: deque[int] = deque()        # status bytes of queued service requests
        self.stb: int | None = None             # automatic serial poll's status byte, for read_stb
        self.handlers: list[tuple[int, Any, Any]] = []
        self.queue_length = 50                  # VI_ATTR_MAX_QUEUE_LENGTH default

    @property
    def enabled(self) -> bool:
        return self.queue_on or self.handler_on


class _EventContext:
    """An event occurrence handed to the application (closed with ``viClose``)."""

    __slots__ = ("attrs",)

    def __init__(self, event_type: constants.EventType) -> None:
        self.attrs = {constants.EventAttribute.event_type: event_type}
