"""Record VISA sessions to a transcript, read transcripts back, and compare them with another VISA library.

:class:`RecordingVisaLibrary` wraps any pyvisa library — the system VISA (``""``, ``@ivi``, ``@py``) or
the simulated bench (``@rramlab``) — and writes every operation of every session to a transcript. It is
selected without code changes as the pyvisa backend ``@rramlab_record`` (plugin package
``pyvisa_rramlab_record``, folder ``drivers/plugin``)::

    "/data/s.jsonl@rramlab_record"                          records the system VISA library
    "/data/s.jsonl?backend=py@rramlab_record"               records pyvisa-py
    "/data/s.jsonl?backend=rramlab&library=2636b_707b&seed=3@rramlab_record"
                                                            records "2636b_707b?seed=3@rramlab"

(``backend`` and ``library`` name the wrapped library; other query keys go to its path), or in code with
:meth:`RecordingVisaLibrary.wrap`. ``PYVISA_LIBRARY=/data/s.jsonl@rramlab_record`` records any pyvisa
program. A station records all its instruments with ``Station(config, record=path)``
(``rramlab run … --record FILE``).

A transcript is JSON Lines. Line 1 is the header: ``format``, ``version``, ``rramlab_version``,
``pyvisa_version``, ``library`` (the wrapped library path), ``date`` (UTC), ``host``. Each further line is
one VISA call: ``i`` (message number from 1), ``t`` (s since the header, wall clock), ``dt`` (s the call
took), ``resource``, ``op`` and, per op: ``open`` (``library``, ``attrs``: timeout, termination
character …), ``write`` (``data``), ``read`` (``count``, ``data``, ``status``), ``clear``, ``stb``
(``value``), ``trigger``, ``flush`` (``mask``), ``set`` (``attr``, ``value``), ``event`` (``call``,
``event_type``, ``mechanism``), ``wait_event`` (``event_type``, ``timeout``), ``close``. Bytes are text
with one character per byte (latin-1; JSON escapes the rest). A call that raised carries ``error`` (the
VISA status name) and ``code``.

:func:`read_transcript` reads one back; :meth:`Transcript.messages` joins the reads of one reply.
:func:`conform` sends a transcript's commands through another VISA library and lists the replies that
differ (``rramlab conform``); the simulated bench replays one (``"?replay=FILE@rramlab"``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import pyvisa
from pyvisa import attributes, constants, errors, highlevel
from pyvisa.constants import StatusCode
from pyvisa.util import LibraryPath

FORMAT = "rramlab-visa-transcript"
FORMAT_VERSION = 1
BACKEND = "rramlab_record"                 # pyvisa backend name (plugin package pyvisa_rramlab_record)
OPS = ("open", "write", "read", "clear", "stb", "trigger", "flush", "set", "event", "wait_event", "close")
_NO_PATH = "(no transcript file: give one, e.g. session.jsonl@rramlab_record)"
_OPEN_ATTRS = (constants.ResourceAttribute.timeout_value, constants.ResourceAttribute.termchar,
               constants.ResourceAttribute.termchar_enabled, constants.ResourceAttribute.send_end_enabled)
ATTRIBUTE_IDS: dict[str, int] = {a.visa_name: a.attribute_id for a in attributes.AttributesByID.values()}


class TranscriptError(ValueError):
    """A transcript file that cannot be read or used; the message names the file and the line."""


def to_text(data: bytes) -> str:
    """Bytes as transcript text: one character per byte (latin-1)."""
    return bytes(data).decode("latin-1")


def to_bytes(text: str) -> bytes:
    """Transcript text back to the bytes on the wire."""
    return text.encode("latin-1")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _status_name(status: Any) -> str | int:
    try:
        return StatusCode(int(status)).name
    except ValueError:
        return int(status)


def _error_fields(e: errors.VisaIOError) -> dict[str, Any]:
    return {"error": _status_name(e.error_code), "code": int(e.error_code)}


# ---------------------------------------------------------------------------------------------- writing
class TranscriptWriter:
    """Writes a transcript, one line per VISA call, flushed by a background thread every
    :attr:`flush_interval` s and at the close (a killed process loses at most that much, also during a long
    wait). Never overwrites a file (``FileExistsError``). Thread-safe."""

    flush_interval = 0.2

    def __init__(self, path: str | os.PathLike[str], library: str | list[str]) -> None:
        self.path = Path(path)
        self._file: Any = open(self.path, "x", encoding="ascii", newline="\n")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._count = 0
        self._stop = threading.Event()
        self._line({"format": FORMAT, "version": FORMAT_VERSION, "rramlab_version": _version("rramlab"),
                    "pyvisa_version": _version("pyvisa"), "library": library,
                    "date": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                    "host": socket.gethostname()})
        self._file.flush()
        threading.Thread(target=self._flusher, name=f"transcript {self.path.name}", daemon=True).start()

    def _line(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _flusher(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def event(self, op: str, resource: str, session: Any, start: float, **fields: Any) -> None:
        """One VISA call ``op`` on ``resource`` that began at ``start`` (``time.perf_counter()``)."""
        end = time.perf_counter()
        with self._lock:
            if self._file.closed:
                return
            self._count += 1
            record = {"i": self._count, "t": round(start - self._t0, 6), "dt": round(end - start, 6),
                      "resource": resource, "op": op, **fields}
            if session is not None:
                record["session"] = int(session)
            self._line(record)

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    @property
    def count(self) -> int:
        """Messages written so far."""
        return self._count

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if not self._file.closed:
                self._file.close()


def parse_record_spec(spec: str) -> tuple[str, str]:
    """(transcript path, wrapped library path) of a ``@rramlab_record`` library path (see module doc)."""
    path, _, query = str(spec).partition("?")
    inner_path, backend, rest = "", "", []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "backend":
            backend = value
        elif key == "library":
            inner_path = value
        else:
            rest.append(f"{key}={value}")
    if not path.strip() or path == _NO_PATH:
        raise OSError(f"the {BACKEND} VISA library needs a transcript file: '<file.jsonl>[?backend=NAME&"
                      f"library=PATH]@{BACKEND}'")
    inner = inner_path + ("?" + "&".join(rest) if rest else "") + (f"@{backend}" if backend else "")
    return path.strip(), inner


def open_library(spec: str) -> highlevel.VisaLibraryBase:
    """The pyvisa library for ``spec`` (``""``: the system default, never this recorder again)."""
    if not spec and os.environ.get("PYVISA_LIBRARY", "").rpartition("@")[2] == BACKEND:
        spec = "@" + highlevel._get_default_wrapper()     # noqa: SLF001 - PYVISA_LIBRARY names the recorder
    return highlevel.open_visa_library(spec)


class RecordingVisaLibrary(highlevel.VisaLibraryBase):
    """A pyvisa library that forwards every call to a wrapped library and records it (module doc).
    Session ids are the wrapped library's; attributes it does not define (``resource_scope``, a simulated
    bench's ``bench``) are the wrapped library's too."""

    _inner: highlevel.VisaLibraryBase
    _writer: TranscriptWriter
    _spec: str
    _resources: dict[Any, str]
    _pending: ClassVar[dict[str, tuple[highlevel.VisaLibraryBase, TranscriptWriter, str]]] = {}

    @staticmethod
    def get_library_paths() -> tuple[LibraryPath, ...]:
        return (LibraryPath(_NO_PATH),)

    @staticmethod
    def get_debug_info() -> dict[str, str]:
        return {"backend": "rramlab recorder (wraps another VISA library)",
                "library paths": f"<transcript.jsonl>[?backend=NAME&library=PATH&…]@{BACKEND}"}

    @classmethod
    def wrap(cls, inner: highlevel.VisaLibraryBase, writer: TranscriptWriter, spec: str = "") -> RecordingVisaLibrary:
        """A recorder of ``inner`` writing to ``writer`` (``spec``: how ``inner`` was named, for the transcript)."""
        key = f"wrap:{uuid.uuid4().hex}"
        cls._pending[key] = (inner, writer, spec)
        try:
            return cls(key)  # type: ignore[return-value]
        finally:
            cls._pending.pop(key, None)

    def _init(self) -> None:
        pending = self._pending.get(str(self.library_path))
        if pending is not None:
            self._inner, self._writer, self._spec = pending
        else:
            path, self._spec = parse_record_spec(str(self.library_path))
            self._inner = open_library(self._spec)
            self._writer = TranscriptWriter(path, self._spec)
            weakref.finalize(self, self._writer.close)
        self._resources = {}

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")
        if inner is None or name.startswith("__") or name == "open_resource":
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def inner(self) -> highlevel.VisaLibraryBase:
        """The wrapped library."""
        return self._inner

    @property
    def writer(self) -> TranscriptWriter:
        return self._writer

    @property
    def resource_scope(self) -> str | None:
        """The wrapped library's scope (bench locks treat a recorded session like the bare one)."""
        return getattr(self._inner, "resource_scope", None)

    @property
    def last_status(self) -> StatusCode:
        return self._inner.last_status

    def get_last_status_in_session(self, session: Any) -> StatusCode:
        return self._inner.get_last_status_in_session(session)

    @contextlib.contextmanager
    def ignore_warning(self, session: Any, *warnings_constants: StatusCode) -> Iterator[None]:
        with self._inner.ignore_warning(session, *warnings_constants):
            self._ignore_warning_in_session[session].update(warnings_constants)
            try:
                yield
            finally:
                self._ignore_warning_in_session[session].difference_update(warnings_constants)

    def _call(self, op: str, session: Any, function: Callable[[], Any], **fields: Any) -> Any:
        """``function()`` recorded as ``op`` on the session's resource (its error too, then re-raised)."""
        start = time.perf_counter()
        try:
            result = function()
        except errors.VisaIOError as e:
            self._writer.event(op, self._resources.get(session, ""), session, start, **fields, **_error_fields(e))
            raise
        self._writer.event(op, self._resources.get(session, ""), session, start, **fields,
                           **self._result_fields(op, result))
        return result

    @staticmethod
    def _result_fields(op: str, result: Any) -> dict[str, Any]:
        if op == "read":
            data, status = result
            return {"data": to_text(data), "status": _status_name(status)}
        if op == "stb":
            return {"value": int(result[0])}
        if op == "wait_event":
            return {"event_type": int(result[0])}
        return {}

    # ---------------------------------------------------------------- resource manager and sessions
    def open_default_resource_manager(self) -> tuple[Any, StatusCode]:
        return self._inner.open_default_resource_manager()

    def list_resources(self, session: Any, query: str = "?*::INSTR") -> tuple[str, ...]:
        return self._inner.list_resources(session, query)

    def parse_resource(self, session: Any, resource_name: str) -> Any:
        return self._inner.parse_resource(session, resource_name)

    def parse_resource_extended(self, session: Any, resource_name: str) -> Any:
        return self._inner.parse_resource_extended(session, resource_name)

    def open(self, session: Any, resource_name: str,
             access_mode: constants.AccessModes = constants.AccessModes.no_lock,
             open_timeout: int = constants.VI_TMO_IMMEDIATE) -> tuple[Any, StatusCode]:
        start = time.perf_counter()
        try:
            sid, status = self._inner.open(session, resource_name, access_mode, open_timeout)
        except errors.VisaIOError as e:
            self._writer.event("open", resource_name, None, start, library=self._spec, **_error_fields(e))
            raise
        self._resources[sid] = resource_name
        self._writer.event("open", resource_name, sid, start, library=self._spec, attrs=self._attrs(sid))
        return sid, status

    def _attrs(self, session: Any) -> dict[str, Any]:
        """The session's timeout and termination settings as opened."""
        out: dict[str, Any] = {}
        for attr in _OPEN_ATTRS:
            with contextlib.suppress(errors.VisaIOError):
                value, status = self._inner.get_attribute(session, attr)
                if int(status) >= 0:
                    out[attributes.AttributesByID[attr].visa_name] = _json_value(value)
        return out

    def close(self, session: Any) -> StatusCode:
        try:
            if session not in self._resources:
                return self._inner.close(session)
            return self._call("close", session, lambda: self._inner.close(session))
        finally:
            self._resources.pop(session, None)
            self._writer.flush()

    # ------------------------------------------------------------------------------- messages
    def write(self, session: Any, data: bytes) -> tuple[int, StatusCode]:
        return self._call("write", session, lambda: self._inner.write(session, data), data=to_text(data))

    def read(self, session: Any, count: int) -> tuple[bytes, StatusCode]:
        return self._call("read", session, lambda: self._inner.read(session, count), count=int(count))

    def clear(self, session: Any) -> StatusCode:
        return self._call("clear", session, lambda: self._inner.clear(session))

    def read_stb(self, session: Any) -> tuple[int, StatusCode]:
        return self._call("stb", session, lambda: self._inner.read_stb(session))

    def assert_trigger(self, session: Any, protocol: constants.TriggerProtocol) -> StatusCode:
        return self._call("trigger", session, lambda: self._inner.assert_trigger(session, protocol),
                          protocol=int(protocol))

    def flush(self, session: Any, mask: constants.BufferOperation) -> StatusCode:
        return self._call("flush", session, lambda: self._inner.flush(session, mask), mask=int(mask))

    def get_attribute(self, session: Any, attribute: Any) -> tuple[Any, StatusCode]:
        return self._inner.get_attribute(session, attribute)

    def set_attribute(self, session: Any, attribute: Any, attribute_state: Any) -> StatusCode:
        if session not in self._resources:
            return self._inner.set_attribute(session, attribute, attribute_state)
        attr = attributes.AttributesByID.get(int(attribute))
        name = attr.visa_name if attr is not None else int(attribute)
        return self._call("set", session, lambda: self._inner.set_attribute(session, attribute, attribute_state),
                          attr=name, value=_json_value(attribute_state))

    # --------------------------------------------------------------------------------- events
    def enable_event(self, session: Any, event_type: Any, mechanism: Any, context: Any = None) -> StatusCode:
        return self._call("event", session, lambda: self._inner.enable_event(session, event_type, mechanism, context),
                          call="enable", event_type=int(event_type), mechanism=int(mechanism))

    def disable_event(self, session: Any, event_type: Any, mechanism: Any) -> StatusCode:
        if session not in self._resources:
            return self._inner.disable_event(session, event_type, mechanism)
        return self._call("event", session, lambda: self._inner.disable_event(session, event_type, mechanism),
                          call="disable", event_type=int(event_type), mechanism=int(mechanism))

    def discard_events(self, session: Any, event_type: Any, mechanism: Any) -> StatusCode:
        if session not in self._resources:
            return self._inner.discard_events(session, event_type, mechanism)
        return self._call("event", session, lambda: self._inner.discard_events(session, event_type, mechanism),
                          call="discard", event_type=int(event_type), mechanism=int(mechanism))

    def wait_on_event(self, session: Any, in_event_type: Any, timeout: int | None) -> Any:
        return self._call("wait_event", session, lambda: self._inner.wait_on_event(session, in_event_type, timeout),
                          in_event_type=int(in_event_type), timeout=None if timeout is None else int(timeout))


def _json_value(value: Any) -> Any:
    """An attribute value as JSON (enums as numbers)."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _forward(name: str) -> Callable[..., Any]:
    def method(self: RecordingVisaLibrary, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._inner, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Forwarded to the wrapped library (not recorded): ``{name}``."
    return method


# Every other call of the VISA library API goes to the wrapped library unrecorded (memory, GPIB bus, USB …).
for _name, _attr in vars(highlevel.VisaLibraryBase).items():
    if (callable(_attr) and not _name.startswith("_") and _name not in vars(RecordingVisaLibrary)
            and _name not in ("get_library_paths", "get_debug_info", "handle_return_value", "install_visa_handler",
                              "uninstall_visa_handler", "uninstall_all_visa_handlers", "read_memory",
                              "write_memory", "move_in", "move_out", "peek", "poke")):
        setattr(RecordingVisaLibrary, _name, _forward(_name))


class TranscriptRecorder:
    """One transcript for the instruments of a station, whatever VISA libraries they use."""

    def __init__(self, path: str | os.PathLike[str], libraries: list[str]) -> None:
        names = sorted(set(libraries))
        self.writer = TranscriptWriter(path, names[0] if len(names) == 1 else names)
        self._libraries: dict[str, RecordingVisaLibrary] = {}

    def library(self, spec: str) -> RecordingVisaLibrary:
        """The recording library wrapping the VISA library ``spec`` (one per spec)."""
        if spec not in self._libraries:
            self._libraries[spec] = RecordingVisaLibrary.wrap(open_library(spec), self.writer, spec)
        return self._libraries[spec]

    def close(self) -> None:
        self.writer.close()


# ---------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Message:
    """One VISA operation of a transcript; the reads of one reply are joined (a read that stopped at the
    count is continued by the next). ``index`` is the message number of its (first) line."""

    index: int
    resource: str
    op: str
    data: bytes = b""
    error: int | None = None          # VISA status code the call raised (VI_ERROR_TMO: timed out)
    value: Any = None                 # stb: status byte; set: attribute value; wait_event: event type
    attr: str | None = None           # set: VISA attribute name
    fields: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def timed_out(self) -> bool:
        return self.error == constants.VI_ERROR_TMO

    def describe(self) -> str:
        """What happened, e.g. ``write 'print(1)\\n'`` or ``read reply b'1\\n'``."""
        if self.op == "write":
            return f"write {to_text(self.data)!r}"
        if self.op == "read":
            return "read timing out" if self.timed_out else f"read reply {self.data!r}"
        return {"clear": "device clear", "stb": "serial poll", "trigger": "bus trigger",
                "wait_event": "wait on an event"}.get(self.op, self.op)


@dataclass
class Transcript:
    """A transcript file read back: its header and its operations in order."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def library(self) -> str | list[str]:
        return self.header.get("library", "")

    def resources(self) -> list[str]:
        """Resource names in order of first use (a resource that only failed to open is not one)."""
        return list(dict.fromkeys(r["resource"] for r in self.records
                                  if r["resource"] and not (r["op"] == "open" and "code" in r)))

    def messages(self) -> list[Message]:
        """Every operation in order, the reads of one reply joined into one ``read`` message."""
        out: list[Message] = []
        partial: dict[str, int] = {}            # resource -> position in out of a reply still being read
        for r in self.records:
            res, op = r["resource"], r["op"]
            code = r.get("code")
            if op != "read":
                partial.pop(res, None)
                out.append(Message(r["i"], res, op, to_bytes(r.get("data", "")), code,
                                   r.get("value", r.get("event_type")), r.get("attr"), r))
                continue
            data = to_bytes(r.get("data", ""))
            k = partial.pop(res, None)
            if k is not None:
                m = out[k]
                out[k] = Message(m.index, res, "read", m.data + data, code, None, None, m.fields)
            else:
                out.append(Message(r["i"], res, "read", data, code, None, None, r))
                k = len(out) - 1
            if code is None and r.get("status") == StatusCode.success_max_count_read.name:
                partial[res] = k
        return out


def read_transcript(path: str | os.PathLike[str]) -> Transcript:
    """A transcript file, checked line by line (:class:`TranscriptError` names the first bad line)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise TranscriptError(f"{p}: not a text file: {e}") from None
    if not lines:
        raise TranscriptError(f"{p}: empty file (line 1 must be the transcript header)")

    def parse(n: int) -> dict[str, Any]:
        try:
            record = json.loads(lines[n])
        except json.JSONDecodeError as e:
            raise TranscriptError(f"{p}:{n + 1}: not a JSON object: {e}") from None
        if not isinstance(record, dict):
            raise TranscriptError(f"{p}:{n + 1}: not a JSON object")
        return record

    header = parse(0)
    if header.get("format") != FORMAT:
        raise TranscriptError(f"{p}:1: not an rramlab VISA transcript (header format {header.get('format')!r}, "
                              f"expected {FORMAT!r})")
    if header.get("version") != FORMAT_VERSION:
        raise TranscriptError(f"{p}:1: transcript version {header.get('version')!r}; this rramlab reads version "
                              f"{FORMAT_VERSION}")
    records = []
    for n in range(1, len(lines)):
        if not lines[n].strip():
            continue
        r = parse(n)
        where = f"{p}:{n + 1}"
        if r.get("op") not in OPS:
            raise TranscriptError(f"{where}: op {r.get('op')!r}; allowed: {list(OPS)}")
        if not isinstance(r.get("i"), int) or not isinstance(r.get("resource"), str):
            raise TranscriptError(f"{where}: needs an integer 'i' and a string 'resource'")
        if not isinstance(r.get("data", ""), str):
            raise TranscriptError(f"{where}: 'data' must be a string (one character per byte)")
        try:
            to_bytes(r.get("data", ""))
        except UnicodeEncodeError:
            raise TranscriptError(f"{where}: 'data' holds a character above U+00FF (one character per byte)") from None
        if "code" in r and not isinstance(r["code"], int):
            raise TranscriptError(f"{where}: 'code' must be a VISA status code (integer)")
        records.append(r)
    return Transcript(p, header, records)


# -------------------------------------------------------------------------------------------- conform
class ConformError(ValueError):
    """A transcript that cannot be sent to the library (a resource it does not have, an unusable library)."""


@dataclass(frozen=True)
class Difference:
    """A reply that differs: the emulator's against the recorded one (``None``: the read timed out)."""

    index: int
    resource: str
    command: str
    recorded: bytes | None
    emulated: bytes | None

    @property
    def offset(self) -> int | None:
        """First differing byte (the shorter length if one is a prefix), None when one side timed out."""
        if self.recorded is None or self.emulated is None:
            return None
        a, b = self.recorded, self.emulated
        return next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))


@dataclass
class ConformReport:
    """What :func:`conform` compared and what differed."""

    transcript: Path
    library: str
    compared: int = 0
    skipped: int = 0
    differences: list[Difference] = field(default_factory=list)


def conform(transcript: Transcript, library: str | highlevel.VisaLibraryBase,
            ignore: list[str] | None = None) -> ConformReport:
    """Send ``transcript``'s session through ``library`` in the recorded order, with the recorded resource
    names and attributes, and compare every reply and serial poll; replies to commands matching a regular
    expression of ``ignore`` are read but not compared. :class:`ConformError` if a resource cannot be
    opened or a call other than a read fails."""
    patterns = [re.compile(p) for p in ignore or []]
    report = ConformReport(transcript.path, str(library))
    try:
        rm = pyvisa.ResourceManager(library)
    except Exception as e:  # noqa: BLE001 - pyvisa raises ValueError, OSError, the backend's own errors
        raise ConformError(f"cannot open VISA library {library!r}: {e}") from e
    sessions: dict[str, Any] = {}
    last: dict[str, str] = {}                   # resource -> its last command, for the report

    def session(m: Message) -> Any:
        res = sessions.get(m.resource)
        if res is None:
            try:
                res = rm.open_resource(m.resource)
            except errors.VisaIOError as e:
                have = ", ".join(rm.list_resources("?*")) or "none"
                raise ConformError(f"{transcript.path}: message #{m.index}: {m.resource} cannot be opened on "
                                   f"{library!r} ({e.abbreviation}); it has: {have}") from None
            sessions[m.resource] = res
            for name, value in m.fields.get("attrs", {}).items() if m.op == "open" else ():
                _set(res, name, value)
        return res

    def compare(m: Message, command: str, recorded: bytes | None, emulated: bytes | None) -> None:
        if any(p.search(command) for p in patterns):
            report.skipped += 1
            return
        report.compared += 1
        if recorded != emulated:
            report.differences.append(Difference(m.index, m.resource, command, recorded, emulated))

    def send(m: Message) -> None:
        if m.op == "close":
            res = sessions.pop(m.resource, None)
            if res is not None:
                res.close()
            return
        res = session(m)
        if m.op == "set" and m.attr:
            _set(res, m.attr, m.value)
        elif m.op == "write":
            last[m.resource] = to_text(m.data).rstrip("\r\n")
            res.write_raw(m.data)
        elif m.op == "read":
            try:
                reply: bytes | None = bytes(res.read_raw())
            except errors.VisaIOError:
                reply = None                    # a timeout (or another read error): no reply
            compare(m, last.get(m.resource, ""), None if m.error is not None else m.data, reply)
        elif m.op == "stb":
            stb = res.read_stb()
            if m.error is None:
                compare(m, "(serial poll)", str(m.value).encode(), str(stb).encode())
        elif m.op == "clear":
            res.clear()
        elif m.op == "trigger":
            res.assert_trigger()
        elif m.op == "event":
            _event(res, m)
        elif m.op == "wait_event":
            compare(m, "(wait on an event)", None if m.error is not None else b"event", _wait_event(res, m))

    try:
        for m in transcript.messages():
            try:
                send(m)
            except errors.VisaIOError as e:
                raise ConformError(f"{transcript.path}: message #{m.index} ({m.describe()} on {m.resource}) failed "
                                   f"on {library!r}: {e}") from None
    finally:
        for res in sessions.values():
            with contextlib.suppress(Exception):
                res.close()
        with contextlib.suppress(Exception):
            rm.close()
    return report


def _set(res: Any, name: str, value: Any) -> None:
    """Set a recorded attribute if the library has it (a GPIB-only attribute on another bus is skipped)."""
    attr = ATTRIBUTE_IDS.get(name)
    if attr is not None and value is not None:
        with contextlib.suppress(errors.VisaIOError, ValueError, TypeError):
            res.set_visa_attribute(attr, value)


def _event(res: Any, m: Message) -> None:
    call, event_type, mechanism = m.fields.get("call"), m.fields.get("event_type"), m.fields.get("mechanism")
    with contextlib.suppress(errors.VisaIOError):
        if call == "enable":
            res.visalib.enable_event(res.session, event_type, mechanism, None)
        elif call == "disable":
            res.visalib.disable_event(res.session, event_type, mechanism)
        elif call == "discard":
            res.visalib.discard_events(res.session, event_type, mechanism)


def _wait_event(res: Any, m: Message) -> bytes | None:
    """``b"event"`` if the recorded wait gets its event from ``res``, None if it times out."""
    event_type = m.fields.get("in_event_type", constants.EventType.service_request)
    try:
        res.wait_on_event(event_type, m.fields.get("timeout"))
    except errors.VisaIOError:
        return None
    return b"event"
