"""TSP front end: a real Lua 5.1 interpreter (lupa) running each command line as a chunk.

The instrument's object model (``smua``, ``channel``, ``errorqueue`` …) is built from Lua tables
whose metatables call five Python callables bound once at start-up (bootstrap.lua). Python keeps the
instrument state; Lua only ever sees numbers, strings, booleans and nil. Syntax errors queue -285,
run-time errors -286 ("TSP Syntax/Runtime error at line N: …"), as the instrument does; the
session always keeps working.

Shared by the 2600B and the 707B (both reference manuals document the same commands):

- Scripts: ``loadscript``/``loadandrunscript`` … ``endscript``, ``script.new()``, ``script.newautorun()``,
  ``script.anonymous``, ``script.run()``/``run()``, ``script.user.scripts``/``.catalog()``, ``script.delete()``,
  ``script.restore()``, scriptVar ``.name``/``.source``/``.autorun``/``.run()``/``()``/``.save()``/``.list()``
  (:meth:`TspEngine._build_scripts`). Saved scripts survive a power cycle (autorun ones run). ``script.load()``
  (a file on a USB drive) and ``script.factory.*`` are not emulated (nil, so calling them fails as an unknown name).
- TSP-Link: ``tsplink.state/node/master/group``, ``tsplink.reset()``, ``node[N]`` (:meth:`TspEngine._build_tsplink`).
  The TSP instruments of one bench that have ``tsplink_node`` in the bench file are cabled together; after
  ``tsplink.reset()`` on one of them (the master), ``node[N]`` of another node is a proxy whose reads, writes and
  calls run in that node's engine, on its state and on the bench clock (:meth:`TspEngine._py_remote`). This is
  the one place where an emulator reaches another instrument, as the TSP-Link cable does. Without
  ``tsplink_node`` an instrument is alone: offline, ``node[1]`` = ``localnode``.
- Writing an attribute that does not exist or is read-only is a -286 run-time error with the text "attempt to
  write read-only or unknown attribute '<path>'" and the setting is kept: no text for this was found in the
  2600B (Rev. F TSP command reference, error summary) or 707B manuals nor in code run against the instruments, so
  the wording is ours [U]; it is kept as an error because a misspelt setting must never pass silently.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import lupa.lua51 as lua51

from ..error_queue import ErrorQueue
from ..instrument import EmulatedInstrument
from .numbers import tsp_number, tsp_value

if TYPE_CHECKING:
    from ..bench import Bench

Getter = Callable[[], Any]
Setter = Callable[[Any], "str | None"]

_LUA_POS = re.compile(r'^(?:\[string "(?:[^"\\]|\\.)*"\]|tsp):(\d+): ', re.S)
_SCRIPT_START = re.compile(r"^\s*(loadscript|loadandrunscript)(?:\s+([A-Za-z_][A-Za-z0-9_]*))?\s*$")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*?)'")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH_SEP = "\x1f"           # separates the keys of a remote (TSP-Link) object path
_BOOTSTRAP = resources.files(__package__).joinpath("bootstrap.lua").read_text(encoding="utf-8")


FORMAT_ASCII, FORMAT_REAL32, FORMAT_REAL64 = 1, 2, 3
BYTEORDER_DEFAULT = 1  # format.LITTLEENDIAN: 2651A manual default [M]; 2600B Rev F table unreadable [U]

NIL = object()  # a callback returning NIL returns an explicit nil to Lua (None returns nothing)
TSPLINK_FEWER_NODES = (1219, "TSP-Link found fewer nodes than expected")   # tsplink.reset() example [M]


class TspError(Exception):
    """An instrument error raised inside a callback: queued with its own code, chunk aborted."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _lua_type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "value"


_LONG_OPEN = re.compile(r"\[(=*)\[")
CACHED_CHUNKS = 2048             # compiled chunks kept per instrument (a session repeats a few command texts)
CACHED_CHUNK_CHARS = 4096        # longer chunks (staircase calls with their levels) are kept apart, fewer of them
CACHED_LONG_CHUNKS = 8           # long chunks kept (a forming ramp sends the same staircase call for every cell)
CACHED_LONG_CHUNK_CHARS = 1 << 20


def lua51_only_operator(code: str) -> tuple[int, str] | None:
    """(line, operator) of the first ``#`` (length) or ``%`` (modulo) outside strings and comments, else None.

    TSP runs Lua 5.0, which has neither operator: its parser stops at them with "unexpected symbol near" the
    character, which is what the instrument queues as -285 (Lua 5.0 reference manual, §2.5 lists no ``#`` or
    ``%``; the 2600B error text for them is not captured [U])."""
    i, n, line = 0, len(code), 1
    while i < n:
        ch = code[i]
        if ch == "\n":
            line += 1
        elif code.startswith("--", i):
            m = _LONG_OPEN.match(code, i + 2)
            end = code.find("]" + m.group(1) + "]", m.end()) if m else code.find("\n", i)
            if end < 0:
                return None
            line += code.count("\n", i, end)
            i = end + (len(m.group(1)) + 2 if m else 0)
            continue
        elif ch in "'\"":
            j = i + 1
            while j < n and code[j] != ch and code[j] != "\n":
                j += 2 if code[j] == "\\" else 1
            i = j + 1
            continue
        elif ch == "[" and (m := _LONG_OPEN.match(code, i)):
            end = code.find("]" + m.group(1) + "]", m.end())
            if end < 0:
                return None
            line += code.count("\n", i, end)
            i = end + len(m.group(1)) + 2
            continue
        elif ch in "#%":
            return line, ch
        i += 1
    return None


def _bits(index: Any, width: Any = 1) -> tuple[int, int]:
    """(shift, mask) of a 1-based bit ``index`` (1 = least significant) and field ``width``."""
    i, w = int(float(index)), int(float(width))
    if not (1 <= i <= 32 and 1 <= w <= 33 - i):
        raise TspError(1102, "Parameter too small" if i < 1 or w < 1 else "Parameter too big")
    return i - 1, (1 << w) - 1


def _int(value: Any) -> int:
    return int(float(value)) & 0xFFFFFFFF


#: the TSP ``bit`` library (2600B Reference Manual, "bit.*"): integer values, 1-based bit indices from the
#: least significant bit, results as numbers (``bit.test`` a boolean)
_BIT_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "bitand": lambda a, b: float(_int(a) & _int(b)),
    "bitor": lambda a, b: float(_int(a) | _int(b)),
    "bitxor": lambda a, b: float(_int(a) ^ _int(b)),
    "set": lambda v, i: float(_int(v) | (1 << _bits(i)[0])),
    "clear": lambda v, i: float(_int(v) & ~(1 << _bits(i)[0])),
    "toggle": lambda v, i: float(_int(v) ^ (1 << _bits(i)[0])),
    "test": lambda v, i: bool(_int(v) >> _bits(i)[0] & 1),
    "get": lambda v, i, w: float(_int(v) & (_bits(i, w)[1] << _bits(i, w)[0])),
    "getfield": lambda v, i, w: float(_int(v) >> _bits(i, w)[0] & _bits(i, w)[1]),
    "setfield": lambda v, i, w, f: float(_int(v) & ~(_bits(i, w)[1] << _bits(i, w)[0])
                                         | (_int(f) & _bits(i, w)[1]) << _bits(i, w)[0]),
}


class LuaRuntimeError(Exception):
    """A callback failing as a Lua run-time error (-286) with this message, not as an instrument error."""


_NODE_FUNCTIONS = ("execute", "getglobal", "setglobal")


def _encode_path(keys: list[Any]) -> str:
    """A remote object path (keys from the node's globals) as one string: s<name> or n<number> per key."""
    return _PATH_SEP.join(("n" + repr(float(k))) if isinstance(k, (int, float)) and not isinstance(k, bool)
                          else "s" + str(k) for k in keys)


@functools.lru_cache(maxsize=4096)
def _decode_path(path: str) -> tuple[Any, ...]:
    """The keys of an :func:`_encode_path` string (cached: a script reaches the same few paths again and again)."""
    return tuple(_decode_keys(path))


def _decode_keys(path: str) -> list[Any]:
    keys: list[Any] = []
    for part in path.split(_PATH_SEP) if path else []:
        if part[:1] == "n":
            x = float(part[1:])
            keys.append(int(x) if x.is_integer() else x)
        else:
            keys.append(part[1:])
    return keys


def _plain_lua_message(exc: BaseException) -> str:
    """A Lua error's message without position prefix and traceback."""
    text = str(exc).strip().split("\nstack traceback:")[0]
    m = _LUA_POS.match(text)
    return text[m.end():] if m else text


@dataclass(eq=False)
class Script:
    """A script in the runtime environment (scriptVar): its chunk, source and names (Python side)."""

    node: Any                 # the Lua scriptVar table
    code: str                 # the source as loaded (kept for scriptVar.save() even if .source is set to nil)
    source: str | None
    name: str = ""
    autorun: str = "no"


class TspEngine(EmulatedInstrument):
    """Base of TSP instruments (2600B SMUs, 707B matrix)."""

    default_precision = 6
    error_queue_depth = 100
    lua50_quoting = True  # quote names in Lua messages as TSP's Lua 5.0 does: near `*' (see _lua_message)
    TSPLINK = True        # the bench file may give this instrument a TSP-Link node number (tsplink_node)

    def __init__(self, bench: Bench, name: str, resource: str, idn: str) -> None:
        super().__init__(bench, name, resource)
        self.idn = idn
        self.errors = ErrorQueue(self.error_queue_depth)
        self._attrs: dict[str, dict[str, tuple[Getter | None, Setter | None]]] = {}
        self._nodes: dict[str, Any] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self._nil_settable: set[tuple[str, str]] = set()
        self._script_lines: list[str] | None = None
        self._script_name: str | None = None
        self._script_run = False
        self.precision = self.default_precision
        self.data_format = FORMAT_ASCII
        self.byteorder = BYTEORDER_DEFAULT
        # nonvolatile memory: saved scripts (name -> source, autorun) and the TSP-Link node number
        self.saved_scripts: dict[str, tuple[str, str]] = {}
        self.usb_scripts: dict[str, str] = {}
        config = next((i for i in getattr(getattr(bench, "config", None), "instruments", [])
                       if i.name == name), None)
        configured = getattr(config, "tsplink_node", None)
        self.tsplink_cabled = configured is not None   # on the bench's TSP-Link network (bench file)
        self.tsplink_nv = int(configured or 1)         # tsplink.node, kept in nonvolatile memory [M]
        self._tsplink_power_on()
        self._start_lua()

    # ------------------------------------------------------------------ Lua set-up
    def _start_lua(self) -> None:
        lua = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
        self._compiled: dict[str, Any] = {}         # command text -> compiled chunk of this runtime
        self._compiled_long: dict[str, Any] = {}    # the same for long command texts (insertion ordered)
        g = lua.globals()
        for unsafe in ("io", "os", "debug", "package", "require", "dofile", "loadfile", "module",
                       "collectgarbage", "newproxy", "load", "loadstring", "python"):
            g[unsafe] = None
        lua.execute(_BOOTSTRAP, self._py_get, self._py_set, self._py_call, self._py_print, self._py_remote)
        lua.globals()["string"]["dump"] = None
        self.lua = lua
        self._node = g["__rr_node"]
        self._fn = g["__rr_fn"]
        self._rawget = g["rawget"]
        self._rawset = g["rawset"]
        self._index = g["__rr_index"]          # t[k] / t[k] = v from Python, protected (metamethods may fail)
        self._setindex = g["__rr_setindex"]
        self._make_script = g["__rr_script"]
        self._make_remote = g["__rr_remote"]
        self._attrs.clear()
        self._nodes.clear()
        self._functions.clear()
        self._nil_settable.clear()
        self._remote_refs = 0
        self.define("format", {
            "asciiprecision": (lambda: self.precision, self._set_precision),
            "data": (lambda: self.data_format, self._set_format_data),
            "byteorder": (lambda: self.byteorder, self._set_byteorder),
        }, constants={"ASCII": FORMAT_ASCII, "SREAL": FORMAT_REAL32, "REAL32": FORMAT_REAL32,
                      "REAL": FORMAT_REAL64, "REAL64": FORMAT_REAL64, "DREAL": FORMAT_REAL64,
                      "NORMAL": 0, "BIGENDIAN": 0, "NETWORK": 0, "SWAPPED": 1, "LITTLEENDIAN": 1})
        self.define("errorqueue", {"count": (lambda: len(self.errors), None)},
                    functions={"next": self._errorqueue_next, "clear": self._errorqueue_clear})
        self.define("localnode", {
            "model": (lambda: self.model, None),
            "serialno": (lambda: self.serial, None),
            "revision": (lambda: self.firmware, None),
            "linefreq": (lambda: self.timing.line_frequency, None),
            "prompts": (lambda: 0, lambda v: None),
            "showerrors": (lambda: 0, lambda v: None),
        })
        self.define("timer", {}, functions={"reset": self._timer_reset})
        self.define("timer.measure", {}, functions={"t": lambda: self.clock.now - self._timer_zero})
        self._timer_zero = 0.0
        self.define_function("printbuffer", self._printbuffer)
        self.define_function("printnumber", self._printnumber)
        self.define_function("reset", self.reset)
        self.define_function("waitcomplete", lambda *a: None)
        self.define_function("opc", self._opc)
        self.define_function("delay", self._delay)
        self.define_function("exit", lambda: None)
        self.define("bit", {}, functions=_BIT_FUNCTIONS)
        self._build_scripts()
        self._build_tsplink()
        self.build_object_model()

    def define(self, path: str, attrs: dict[str, tuple[Getter | None, Setter | None]],
               constants: dict[str, Any] | None = None,
               functions: dict[str, Callable[..., Any]] | None = None, place: bool = True) -> Any:
        """Create the Lua node ``path`` with instrument attributes, constants and functions; placed in
        its parent (or as a global) unless ``place`` is False (e.g. a buffer returned by a function)."""
        self._attrs[path] = dict(attrs)
        members = self.lua.table()
        for key, value in (constants or {}).items():
            members[key] = value
        for key, fn in (functions or {}).items():
            self._functions[f"{path}.{key}"] = fn
            members[key] = self._fn(f"{path}.{key}")
        node = self._node(path, members)
        self._nodes[path] = node
        parent, _, leaf = path.rpartition(".")
        if not place:
            return node
        if not parent:
            self.lua.globals()[leaf] = node
        else:
            container = self._nodes.get(parent)
            if container is None:
                container = self.lua.eval(parent) if "[" not in parent else None
            if container is None:
                raise ValueError(f"parent of {path} not defined")
            key: Any = int(leaf) if leaf.isdigit() else leaf
            self.lua.globals()["rawset"](container, key, node)
        return node

    def define_table(self, path: str) -> None:
        """A plain Lua table (e.g. ``trigger.timer``) that will hold indexed nodes."""
        parent, _, leaf = path.rpartition(".")
        container = self.lua.eval(parent) if parent else self.lua.globals()
        self.lua.globals()["rawset"](container, leaf, self.lua.table())

    def define_function(self, name: str, fn: Callable[..., Any]) -> None:
        """A global instrument function."""
        self._functions[name] = fn
        self.lua.globals()[name] = self._fn(name)

    def build_object_model(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ Python callbacks
    def _py_get(self, path: str, key: Any) -> tuple[bool, Any]:
        try:
            entry = self._attrs.get(path, {}).get(key)
            if entry is None or entry[0] is None:
                return True, None
            return True, entry[0]()
        except TspError as e:
            self.queue_error(e.code, e.message)
            return True, None
        except Exception as e:  # an emulator bug must never leak into the session
            self.bench.internal_error(self.name, f"get {path}.{key}", e)
            return False, f"internal error reading {path}.{key}"

    def _py_set(self, path: str, key: Any, value: Any) -> str | None:
        entry = self._attrs.get(path, {}).get(key)
        if entry is None or entry[1] is None:
            # no manual text found for writing an unknown or read-only attribute (see the module docstrings of
            # keithley2636b/keithley707b): the write fails as a -286 run-time error rather than passing silently,
            # in our own words [U text]
            return f"attempt to write read-only or unknown attribute '{path}.{key}'"
        if value is None and (path, key) not in self._nil_settable:
            # e.g. an unknown constant (display.FOO is nil): never a silent nil setting [U text]
            return f"bad argument to '{path}.{key}' (nil given)"
        try:
            return entry[1](value)
        except TspError as e:
            self.queue_error(e.code, e.message)
            return None
        except (TypeError, ValueError):
            return f"bad argument to '{path}.{key}' ({_lua_type(value)} given)"
        except Exception as e:
            self.bench.internal_error(self.name, f"set {path}.{key}", e)
            return f"internal error writing {path}.{key}"

    def _py_call(self, name: str, n: int, *args: Any) -> tuple[Any, ...]:
        fn = self._functions.get(name)
        if fn is None:
            return False, f"attempt to call unknown function '{name}'"
        args = args[:n] + (None,) * (n - len(args))
        try:
            result = fn(*args)
        except TspError as e:
            self.queue_error(e.code, e.message)
            return (True,)
        except LuaRuntimeError as e:
            return False, str(e)
        except (TypeError, ValueError):
            given = ", ".join(_lua_type(a) for a in args) or "no value"
            return False, f"bad argument to '{name}' ({given} given)"
        except Exception as e:
            self.bench.internal_error(self.name, f"call {name}", e)
            return False, f"internal error in {name}"
        if result is None:
            return (True,)
        if result is NIL:
            return True, None
        if isinstance(result, tuple):
            return (True, *result)
        return True, result

    def _py_print(self, n: int, *args: Any) -> None:
        args = args[:n] + (None,) * (n - len(args))
        self.reply("\t".join(tsp_value(a, self.precision) for a in args))

    # ---------------------------------------------------------------- built-ins
    def _set_precision(self, value: Any) -> str | None:
        v = int(value)
        if not 1 <= v <= 16:
            raise TspError(1101 if v > 16 else 1102, "Parameter too big" if v > 16 else "Parameter too small")
        self.precision = v
        return None

    def _set_format_data(self, value: Any) -> str | None:
        v = int(value)
        if v not in (FORMAT_ASCII, FORMAT_REAL32, FORMAT_REAL64):
            raise TspError(1101 if v > FORMAT_REAL64 else 1102,
                           "Parameter too big" if v > FORMAT_REAL64 else "Parameter too small")
        self.data_format = v
        return None

    def _set_byteorder(self, value: Any) -> str | None:
        v = int(value)
        if v not in (0, 1):
            raise TspError(1101 if v > 1 else 1102, "Parameter too big" if v > 1 else "Parameter too small")
        self.byteorder = v
        return None

    def reply_raw(self, data: bytes) -> None:
        """Queue one reply exactly as given (binary blocks carry their own LF)."""
        self._out.append((self.clock.now, bytes(data)))

    def emit_numbers(self, values: list[float]) -> None:
        """One response message of numbers as ``format.data`` says (printnumber/printbuffer).

        ASCII: ``format.asciiprecision`` digits, comma + space; REAL32/REAL64: ``#0`` + IEEE-754 values
        in ``format.byteorder`` + LF (manual, format.data / format.byteorder) [M][C QCoDeS].
        """
        if self.data_format == FORMAT_ASCII:
            self.reply(", ".join(tsp_number(v, self.precision) for v in values))
            return
        code = "f" if self.data_format == FORMAT_REAL32 else "d"
        order = "<" if self.byteorder else ">"
        self.reply_raw(b"#0" + struct.pack(f"{order}{len(values)}{code}", *values) + b"\n")

    def _errorqueue_next(self) -> tuple[float, str, float, float]:
        e = self.errors.pop()
        return float(e.code), e.message, float(e.severity), float(e.node)

    def _errorqueue_clear(self) -> None:
        self.errors.clear()

    def _timer_reset(self) -> None:
        self._timer_zero = self.clock.now

    def _delay(self, seconds: Any) -> None:
        s = float(seconds)
        if not s >= 0.0:
            raise TspError(1102, "Parameter too small")
        self.clock.advance(s)

    def _printnumber(self, *values: Any) -> None:
        self.emit_numbers([float(v) for v in values if v is not None])

    def _printbuffer(self, start: Any, stop: Any, *buffers: Any) -> None:
        """``printbuffer(start, stop, buf, …)``: start <= 1 uses 1, stop > n uses n (manual,
        printbuffer()) [M]; values interleaved per index; a reading buffer prints its readings; plain
        Lua tables print as buffers [M]. An empty range prints an empty message [U]."""
        lists = [self.buffer_values(str(b)) for b in buffers if b is not None]
        if not lists:
            raise TspError(1102, "Parameter too small")  # [U]
        n = min(len(v) for v in lists)
        i0, i1 = max(int(float(start)), 1), min(int(float(stop)), n)
        out: list[float] = []
        for k in range(i0 - 1, i1):
            out.extend(v[k] for v in lists)
        self.emit_numbers(out)

    def buffer_values(self, path: str) -> list[float]:
        """Values of a reading buffer component named by its Lua path, or of a plain Lua table of
        numbers (marshalled as ``{v1,v2,…}``); subclasses provide buffers."""
        if path.startswith("{") and path.endswith("}"):
            body = path[1:-1].strip()
            values: list[float] = []
            for x in body.split(",") if body else []:
                try:
                    values.append(float(x))
                except ValueError:
                    raise TspError(1104, "Parameter error, invalid buffer") from None  # [U]
            return values
        raise TspError(1104, "Parameter error, invalid buffer")

    # ------------------------------------------------------------------ execution
    def execute(self, line: str) -> None:
        self.clock.advance(self.timing.lua_chunk)
        if self._script_lines is not None:
            if line.strip() == "endscript":
                self._finish_script()
            else:
                self._script_lines.append(line)
            return
        stripped = line.strip()
        if stripped.startswith("*") and self._common_command(stripped):
            return
        m = _SCRIPT_START.match(line)
        if m:
            self._script_lines = []
            self._script_name = m.group(2)
            self._script_run = m.group(1) == "loadandrunscript"
            return
        if stripped == "abort":
            self.abort()
            return
        self.run_chunk(line)

    def run_chunk(self, code: str) -> None:
        """Compile and run one chunk; errors are queued, never raised."""
        fn = self._compile(code)
        if fn is None:
            return
        try:
            fn()
        except lua51.LuaError as e:
            self.queue_error(-286, "TSP Runtime error at line " + self._lua_message(e))

    def _lua_message(self, exc: BaseException) -> str:
        """'N: message' from a Lua error text; with ``lua50_quoting`` the 5.1 quotes 'x' become 5.0's
        `x' (``-285,TSP Syntax error at line 1: unexpected symbol near `*'`` in a .NET driver's hardware
        tests, ``attempt to index field `smub'`` in OE-FET/keithley2600 issue #17 [C])."""
        text = self._lua_text(exc)
        if self.lua50_quoting:
            text = _QUOTED.sub(lambda m: "`" + m.group(1) + "'", text)
        return text

    def _compile(self, code: str) -> Any:
        """Compile source text (never byte code); queue -285 and return None on a syntax error — also for the
        Lua 5.1 operators ``#`` and ``%`` that TSP's Lua 5.0 does not have (:func:`lua51_only_operator`)."""
        fn = self._compiled.get(code) if len(code) <= CACHED_CHUNK_CHARS else self._compiled_long.get(code)
        if fn is not None:
            return fn
        if code.lstrip().startswith("\x1b"):
            self.queue_error(-285, "TSP Syntax error at line 1: unexpected symbol near char(27)")
            return None
        if ("#" in code or "%" in code) and (found := lua51_only_operator(code)) is not None:
            line, op = found
            text = f"{line}: unexpected symbol near '{op}'"
            if self.lua50_quoting:
                text = _QUOTED.sub(lambda m: "`" + m.group(1) + "'", text)
            self.queue_error(-285, "TSP Syntax error at line " + text)
            return None
        try:
            fn = self.lua.compile(code, name="=tsp", mode="t")
        except lua51.LuaError as e:
            self.queue_error(-285, "TSP Syntax error at line " + self._lua_message(e))
            return None
        if len(code) <= CACHED_CHUNK_CHARS:            # the same command text compiles to the same function
            if len(self._compiled) >= CACHED_CHUNKS:
                self._compiled.clear()
            self._compiled[code] = fn
        elif len(code) <= CACHED_LONG_CHUNK_CHARS:
            if len(self._compiled_long) >= CACHED_LONG_CHUNKS:
                del self._compiled_long[next(iter(self._compiled_long))]     # the oldest
            self._compiled_long[code] = fn
        return fn

    @staticmethod
    def _lua_text(exc: BaseException) -> str:
        """'N: message' from a Lua error text (position prefix and traceback removed)."""
        text = str(exc).strip().split("\nstack traceback:")[0]
        m = _LUA_POS.match(text)
        if not m:
            return "1: " + text
        return f"{m.group(1)}: " + text[m.end():]

    def _finish_script(self) -> None:
        """``endscript``: the collected lines become a script: named (a global of that name and an entry in
        ``script.user.scripts``) or, without a name, the anonymous script; ``loadandrunscript`` also runs it and
        sets its autorun attribute to "yes" (2600B Reference Manual, "Named scripts", "Anonymous scripts",
        scriptVar.autorun) [M]. Its source is the lines joined by new-line characters, without the
        loadscript/endscript lines (scriptVar.source) [M]."""
        body = "\n".join(self._script_lines or [])
        name, run = self._script_name, self._script_run
        self._script_lines, self._script_name, self._script_run = None, None, False
        fn = self._compile(body)
        if fn is None:
            return
        script = self._new_script(body, fn, "yes" if run else "no")
        if name:
            self._name_script(script, name)
            self._rawset(self.lua.globals(), name, script.node)
        else:
            self._anonymous = script
        if run:
            try:
                fn()
            except lua51.LuaError as e:
                self.queue_error(-286, "TSP Runtime error at line " + self._lua_message(e))

    def _opc(self) -> None:
        """``opc()``: set the operation complete bit (ESR bit 0) once overlapped commands finished — at once
        here, as every command completes before the next runs (2600B Reference Manual, opc())."""
        self.esr |= 1

    def build_standard_status(self) -> None:
        """``status.standard.condition``, ``.event`` (the *ESR? register; reading it clears it), ``.enable``
        (*ESE, 0–255), ``.ntr``/``.ptr`` and the bit constants (``status.standard.PON`` = 128 …): the same on
        the 2600B and the 707B (2600B Reference Manual and 707B Reference Manual section 7,
        status.standard.*; both "TSP-Link accessible") [M]."""
        std = {"OPC": 1, "QYE": 4, "DDE": 8, "EXE": 16, "CME": 32, "URQ": 64, "PON": 128,
               "OPERATION_COMPLETE": 1, "QUERY_ERROR": 4, "DEVICE_DEPENDENT_ERROR": 8,
               "EXECUTION_ERROR": 16, "COMMAND_ERROR": 32, "USER_REQUEST": 64, "POWER_ON": 128}
        self.define("status.standard", {
            "condition": (lambda: self.esr, None),
            "event": (self._read_esr, None),
            "enable": (lambda: getattr(self, "ese", 0), lambda v: self._set_register("ese", v)),
            "ntr": (lambda: 0, None), "ptr": (lambda: 0xFF, None),
        }, constants=std)

    def _read_esr(self) -> int:
        v, self.esr = self.esr, 0
        return v

    def _set_register(self, attr: str, v: Any) -> None:
        """An 8-bit enable register (``ese``, ``sre``) from a TSP assignment; SRE bit 6 is always 0 (IEEE 488.2)."""
        if v is None:
            raise TypeError
        x = int(v)
        if not 0 <= x <= 255:
            raise TspError(1101 if x > 255 else 1102, "Parameter too big" if x > 255 else "Parameter too small")
        setattr(self, attr, x & 0xBF if attr == "sre" else x)

    def _common_command(self, cmd: str) -> bool:
        """IEEE 488.2 common commands the TSP instruments accept outside Lua."""
        c = cmd.upper()
        if c == "*IDN?":
            self.reply(self.idn)
        elif c == "*RST":
            self.reset()
        elif c == "*CLS":
            self.errors.clear()
            self.esr = 0
        elif c == "*OPC?":
            self.reply("1")
        elif c == "*OPC":
            self.esr |= 1     # OPC: every command runs to completion on the virtual clock before the next [M]
        elif c == "*WAI":
            pass
        elif c == "*ESR?":
            self.reply(str(self.esr))
            self.esr = 0
        elif c == "*STB?":
            self.reply(str(self.status_byte()))
        elif c == "*TRG":
            self.assert_trigger()
        elif c == "*TST?":
            self.reply("0")  # self-test passed [M 2600B *TST?; reply bytes U]
        elif c in ("*ESE?", "*SRE?"):
            self.reply(str(getattr(self, "ese" if c == "*ESE?" else "sre", 0)))
        elif c.startswith(("*ESE ", "*SRE ")):
            try:
                v = int(float(c[5:].strip()))
            except ValueError:
                return False
            if 0 <= v <= 255:
                setattr(self, "ese" if c.startswith("*ESE") else "sre", v & (0xBF if c.startswith("*SRE") else 0xFF))
            else:
                self.queue_error(-222, "Data out of range")  # [U]
        else:
            return False
        return True

    # ------------------------------------------------------------------ scripts
    def _build_scripts(self) -> None:
        """``script.*`` and scriptVar (2600B Reference Manual and 707B Reference Manual: script.new(),
        script.newautorun(), script.anonymous, script.run(), script.delete(), script.restore(),
        script.user.catalog(), scriptVar.name/.source/.autorun/.run()/.save()/.list()) [M]; see
        :meth:`_new_script` and the module docstrings of the instruments for what is [U]."""
        self._scripts_by_name: dict[str, Script] = {}
        self._anonymous: Script | None = None
        self._script_serial = 0
        self.define("script", {"anonymous": (lambda: self._anonymous_script().node, None)},
                    functions={"new": lambda code=None, name=None: self._script_new(code, name, "no"),
                               "delete": self._script_delete, "restore": self._script_restore})
        self.define("script.user", {})
        self._user_scripts = self.lua.table()
        self._rawset(self._nodes["script.user"], "scripts", self._user_scripts)
        self._functions["script.__newautorun"] = lambda code=None, name=None: self._script_new(code, name, "yes")
        self._functions["script.user.__catalog"] = lambda: "\n".join(self.saved_scripts)
        self.lua.execute(
            "local new = __rr_fn('script.__newautorun')\n"
            "rawset(script, 'newautorun', function(code, name)\n"
            "  local s = new(code, name)\n"
            "  if s ~= nil then s() end\n"
            "  return s\n"
            "end)\n"
            "rawset(script.user, 'catalog', __rr_iter(__rr_fn('script.user.__catalog')))\n"
            "rawset(script, 'run', function() return script.anonymous() end)\n"
            "run = script.run")

    def _new_script(self, code: str, chunk: Any, autorun: str) -> Script:
        """A scriptVar for a compiled chunk: ``.name`` ("" when unnamed), ``.source`` (only nil may be
        written), ``.autorun`` ("yes"/"no"), ``.run()`` and ``scriptVar()``, ``.save()``, ``.list()`` [M]."""
        self._script_serial += 1
        path = f"__script{self._script_serial}"
        rec = Script(node=None, code=code, source=code, autorun=autorun)
        node = self.define(path, {
            "name": (lambda: rec.name, lambda v: self._rename_script(rec, v)),
            "source": (lambda: rec.source, lambda v: self._set_script_source(rec, v)),
            "autorun": (lambda: rec.autorun, lambda v: self._set_script_autorun(rec, v)),
        }, functions={"save": lambda filename=None: self._script_save(rec, filename),
                      "list": lambda: self._script_list(rec)}, place=False)
        self._nil_settable.add((path, "source"))
        rec.node = self._make_script(node, chunk)
        return rec

    def _name_script(self, rec: Script, name: str) -> None:
        """Give ``rec`` a name in ``script.user.scripts`` ("" removes it); a script that had that name
        becomes unnamed (its name attribute is set to "") — scriptVar.name, script.new() [M]."""
        if rec.name and self._scripts_by_name.get(rec.name) is rec:
            del self._scripts_by_name[rec.name]
            self._rawset(self._user_scripts, rec.name, None)
        rec.name = name
        if not name:
            return
        other = self._scripts_by_name.get(name)
        if other is not None and other is not rec:
            other.name = ""
        self._scripts_by_name[name] = rec
        self._rawset(self._user_scripts, name, rec.node)

    def _rename_script(self, rec: Script, value: Any) -> None:
        """scriptVar.name: "a valid Lua identifier or the empty string" [M]; anything else is a bad argument [U]."""
        if not isinstance(value, str) or value and not _IDENTIFIER.match(value):
            raise ValueError("script name")
        self._name_script(rec, value)

    @staticmethod
    def _set_script_source(rec: Script, value: Any) -> None:
        """scriptVar.source: "Although this attribute is writable, it can only be set to the nil value" [M];
        another value is a bad argument [U]."""
        if value is not None:
            raise ValueError("source")
        rec.source = None

    @staticmethod
    def _set_script_autorun(rec: Script, value: Any) -> None:
        """scriptVar.autorun: "yes" or "no" [M]; another value is a bad argument [U]."""
        if value not in ("yes", "no"):
            raise ValueError("autorun")
        rec.autorun = value

    def _anonymous_script(self) -> Script:
        """script.anonymous; before any anonymous script was loaded, an empty one [U]."""
        if self._anonymous is None:
            self._anonymous = self._new_script("", self.lua.compile("", name="=tsp", mode="t"), "no")
        return self._anonymous

    def _script_new(self, code: Any, name: Any, autorun: str) -> Any:
        """script.new(code[, name]) / script.newautorun(): a script named ``name`` in script.user.scripts, no
        global variable of that name (the manual's beepTwoSec example: the global keeps the old script) [M];
        unnamed without a name [M]. Code that does not compile queues -285 and returns nil [U]."""
        if not isinstance(code, str):
            raise TypeError("code")
        if name is not None and (not isinstance(name, str) or name and not _IDENTIFIER.match(name)):
            raise ValueError("name")
        chunk = self._compile(code)
        if chunk is None:
            return NIL
        rec = self._new_script(code, chunk, autorun)
        if name:
            self._name_script(rec, name)
        return rec.node

    def _script_save(self, rec: Script, filename: Any = None) -> None:
        """scriptVar.save(): into nonvolatile memory (listed by script.user.catalog(), loaded again at power-on)
        [M]; with a file name, to the USB flash drive — kept in :attr:`usb_scripts` only [U]. Saving an
        unnamed script to nonvolatile memory fails as a run-time error (the manual: only a script with a name
        defined can be saved; the instrument's error is not given) [U]."""
        if filename is not None and str(filename) != "":
            self.usb_scripts[str(filename)] = rec.code
            return
        if not rec.name:
            raise LuaRuntimeError("cannot save an unnamed script")
        self.saved_scripts[rec.name] = (rec.code, rec.autorun)

    def _script_list(self, rec: Script) -> None:
        """scriptVar.list(): one response message per line, with the loadscript (or loadandrunscript) and
        endscript lines [M]; loadandrunscript when autorun is "yes" [U]."""
        keyword = "loadandrunscript" if rec.autorun == "yes" else "loadscript"
        self.reply(f"{keyword} {rec.name}".rstrip())
        for line in (rec.source.split("\n") if rec.source is not None else []):
            self.reply(line)
        self.reply("endscript")

    def _script_delete(self, name: Any) -> None:
        """script.delete(name): deletes the script from nonvolatile memory [M]; the runtime environment keeps
        it, a name that is not saved is ignored [U]."""
        if not isinstance(name, str):
            raise TypeError("name")
        self.saved_scripts.pop(name, None)

    def _script_restore(self, name: Any) -> None:
        """script.restore(name): the saved script back into the runtime environment [M]; unknown name: nothing
        [U]."""
        if not isinstance(name, str):
            raise TypeError("name")
        if name in self.saved_scripts:
            self._restore_saved(name)

    def _restore_saved(self, name: str) -> Script | None:
        code, autorun = self.saved_scripts[name]
        chunk = self._compile(code)
        if chunk is None:
            return None
        rec = self._new_script(code, chunk, autorun)
        self._name_script(rec, name)
        self._rawset(self.lua.globals(), name, rec.node)
        return rec

    def _load_saved_scripts(self) -> None:
        """Power-on: scripts in nonvolatile memory are loaded into the runtime environment, autorun scripts run
        (order arbitrary), then a script named autoexec (2600B Reference Manual, scriptVar.autorun,
        script.new() example "autoexec") [M]; run order here: saved order, autoexec last [U]."""
        loaded = [(name, self._restore_saved(name)) for name in list(self.saved_scripts)]
        runs = [rec for name, rec in loaded if rec is not None and rec.autorun == "yes" and name != "autoexec"]
        runs += [rec for name, rec in loaded if rec is not None and name == "autoexec"]
        for rec in runs:
            try:
                rec.node.run()
            except lua51.LuaError as e:
                self.queue_error(-286, "TSP Runtime error at line " + self._lua_message(e))

    # ---------------------------------------------------------------- TSP-Link
    def _tsplink_power_on(self) -> None:
        """Power-on: offline; the node number from nonvolatile memory; group 0 (tsplink.state, tsplink.node,
        tsplink.group) [M]."""
        self.tsplink_node = self.tsplink_nv
        self.errors.node = self.tsplink_node
        self.tsplink_online = False
        self.tsplink_master = self.tsplink_node
        self.tsplink_group = 0
        self._link: dict[int, TspEngine] = {}
        self._error_sink: TspEngine | None = None

    def _leave_masters(self) -> None:
        """A node that powers on is gone from its master's node table until the next tsplink.reset() ("the
        TSP-Link system must be initialized after … turning off power or rebooting any instrument in the
        system": 2600B Reference Manual, TSP-Link system) [M]; node[N] reads nil there [U]."""
        for m in self.tsplink_members():
            gone = [n for n, e in m._link.items() if e is self] if m is not self else []
            for n in gone:
                del m._link[n]
            if gone:
                m._rebuild_node_table()

    def _build_tsplink(self) -> None:
        """``tsplink.state/node/master/group``, ``tsplink.reset()`` and the ``node`` table (2600B and 707B
        Reference Manuals, "TSP-Link system", tsplink.*) [M]."""
        def number(attr: str, lo: int, hi: int) -> Callable[[Any], None]:
            def setter(v: Any) -> None:
                x = float(v)
                if not lo <= x <= hi:
                    raise TspError(1101 if x > hi else 1102, "Parameter too big" if x > hi else "Parameter too small")
                setattr(self, attr, int(x))
            return setter
        self.define("tsplink", {
            "state": (lambda: "online" if self.tsplink_online else "offline", None),
            "node": (lambda: self.tsplink_nv, number("tsplink_nv", 1, 64)),
            "master": (lambda: self.tsplink_master, None),
            "group": (lambda: self.tsplink_group, number("tsplink_group", 0, 64)),
        }, functions={"reset": self._tsplink_reset})
        self._rebuild_node_table()

    def _rebuild_node_table(self) -> None:
        """``node[N]``: ``localnode`` at this node's number; after a successful tsplink.reset() on this node,
        a proxy for each other node of the network ("A TSP-Link reset populates the node table") [M]."""
        g = self.lua.globals()
        table = self.lua.table()
        self._rawset(table, self.tsplink_node, self._rawget(g, "localnode"))
        for n in sorted(self._link):
            self._rawset(table, n, self._make_remote(n, ""))
        self._rawset(g, "node", table)

    def tsplink_members(self) -> list[TspEngine]:
        """The instruments on this instrument's TSP-Link network: every TSP instrument of the bench with a
        ``tsplink_node`` in the bench file (one network per bench); just this one when it has none."""
        if not self.tsplink_cabled:
            return [self]
        return [i for i in self.bench.instruments.values() if isinstance(i, TspEngine) and i.tsplink_cabled]

    def _tsplink_reset(self, expected: Any = None) -> float:
        """``tsplink.reset([expectedNodes])`` → nodes found, this node counted (2600B/707B Reference Manuals,
        tsplink.reset()) [M]. It fails — an error, the state offline — when no other node is found and
        expectedNodes is not given, when fewer than expectedNodes are found, or when two nodes have the same
        number [M]: error 1219 "TSP-Link found fewer nodes than expected" [M, the manual's example for fewer
        than expectedNodes; U for the other two cases]. On success every node takes the number it has in
        nonvolatile memory and is online, and this node (the master) gets node[N] for the others [M];
        the subordinates' node tables stay local [U]."""
        want: int | None = None
        if expected is not None:
            x = float(expected)
            if not 1 <= x <= 64:
                raise TspError(1101 if x > 64 else 1102, "Parameter too big" if x > 64 else "Parameter too small")
            want = int(x)
        members = self.tsplink_members()
        found = len(members)
        unique = len({m.tsplink_nv for m in members}) == found
        if not unique or found < (want if want is not None else 2):
            self.tsplink_online = False
            self._link = {}
            self._rebuild_node_table()
            self.queue_error(*TSPLINK_FEWER_NODES)
            return float(found)
        for m in members:
            m.tsplink_node = m.tsplink_nv
            m.errors.node = m.tsplink_node
            m.tsplink_online = True
            m.tsplink_master = self.tsplink_nv
            m._link = {}
        self._link = {m.tsplink_node: m for m in members if m is not self}
        for m in members:
            m._rebuild_node_table()
        return float(found)

    def _py_remote(self, op: str, node: Any, path: Any, *rest: Any) -> tuple[Any, ...]:
        """node[N]…: a read (``get``), write (``set``) or call (``call``) executed by remote node N's engine, on
        its state and the bench clock. Instrument errors it raises go to this (the master's) error queue with
        errorNode N (errorqueue.next(): "the node number where the error originated") [M; that the master's
        queue receives them: U]; a Lua error there is a run-time error (-286) of the chunk here [U text]."""
        remote = self._link.get(int(node)) if isinstance(node, (int, float)) else None
        if remote is None:
            return False, f"TSP-Link node {node} is not available"  # stale proxy after a failed reset [U text]
        keys = list(_decode_path(str(path)))
        prev, remote._error_sink = remote._error_sink, self      # its errors go to this (the master's) queue
        try:
            if op == "get":
                return (True, 1, *remote._remote_get(keys, rest[0] if rest else None))
            if op == "set":
                key, value = (rest + (None, None))[:2]
                remote._remote_set(keys, key, self._to_remote(remote, value))
                return (True,)
            n = int(rest[0])
            args = list(rest[1:1 + n]) + [None] * (n - len(rest[1:1 + n]))
            return (True, *remote._remote_call(keys, [self._to_remote(remote, a) for a in args]))
        except lua51.LuaError as e:
            return False, _plain_lua_message(e)
        except LuaRuntimeError as e:
            return False, str(e)
        except (TypeError, ValueError):
            return False, f"bad argument to remote node {int(node)}"   # [U text]
        except Exception as e:
            self.bench.internal_error(self.name, f"node[{node}] {op}", e)
            return False, "internal error in a TSP-Link access"
        finally:
            remote._error_sink = prev

    def _to_remote(self, remote: TspEngine, value: Any) -> Any:
        """An argument for remote node ``remote``: numbers, strings, booleans and nil as they are; a proxy of
        that node as the object it stands for; a plain table of values as a new table there."""
        if lua51.lua_type(value) == "function":
            raise ValueError("function")
        if lua51.lua_type(value) != "table":
            return value
        rpath = self._rawget(value, "__rpath")
        if rpath is not None:
            if self._rawget(value, "__rnode") != remote.tsplink_node:
                raise ValueError("object of another node")
            return remote._resolve(list(_decode_path(str(rpath))))
        if self._rawget(value, "__path") is not None:
            raise ValueError("an object of this node")
        items = []
        while (item := self._rawget(value, len(items) + 1)) is not None:
            if lua51.lua_type(item) in ("table", "function"):
                raise ValueError("nested table")
            items.append(item)
        return remote.lua.table_from(items)

    def _resolve(self, keys: list[Any]) -> Any:
        """The object at ``keys`` from this node's globals (attribute reads run their getters)."""
        value = self.lua.globals()
        for key in keys:
            if lua51.lua_type(value) != "table":
                raise LuaRuntimeError("attempt to index a nil value")
            value = self._index(value, key)
        return value

    def _export(self, keys: list[Any], value: Any) -> tuple[str, Any]:
        """(kind, value) for the master: "v" and a value, or "p" and the path of a table or function here."""
        if lua51.lua_type(value) in ("table", "function", "userdata"):
            return "p", _encode_path(keys)
        return "v", value

    def _remote_get(self, keys: list[Any], key: Any) -> tuple[str, Any]:
        if not keys and isinstance(key, str):
            if key in _NODE_FUNCTIONS:
                return "p", _encode_path([key])
            if key in self._attrs.get("localnode", {}):   # node[N].model, .serialno, .revision … [M]
                return "v", self._index(self._nodes["localnode"], key)
        return self._export([*keys, key], self._resolve([*keys, key]))

    def _remote_set(self, keys: list[Any], key: Any, value: Any) -> None:
        if not keys and isinstance(key, str) and key in self._attrs.get("localnode", {}):
            self._setindex(self._nodes["localnode"], key, value)
            return
        parent = self._resolve(keys)
        if lua51.lua_type(parent) != "table":
            raise LuaRuntimeError("attempt to index a nil value")
        self._setindex(parent, key, value)

    def _remote_call(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        """A call on this node; ``node[N].execute(code)``, ``.getglobal(name)``, ``.setglobal(name, value)``
        (2600B/707B Reference Manuals, node[N].execute() …) [M]; execute runs the code to its end before the
        master continues [U: the manual's execute does not wait]."""
        if len(keys) == 1 and keys[0] in _NODE_FUNCTIONS:
            what = keys[0]
            name = args[0] if args else None
            if not isinstance(name, str):
                raise TypeError(what)
            if what == "execute":
                self.run_chunk(name)
                return (0,)
            if what == "setglobal":
                self._setindex(self.lua.globals(), name, args[1] if len(args) > 1 else None)
                return (0,)
            return (1, *self._export_result(self._index(self.lua.globals(), name)))
        fn = self._resolve(keys)
        if lua51.lua_type(fn) not in ("function", "table"):
            raise LuaRuntimeError("attempt to call a nil value")
        result = fn(*args)
        values = list(result) if isinstance(result, tuple) else [result]
        out: list[Any] = []
        for v in values:
            out.extend(self._export_result(v))
        return (len(values), *out)

    def _export_result(self, value: Any) -> tuple[str, Any]:
        """A returned table or function is kept in ``__rr_refs`` here so the master can reach it."""
        if lua51.lua_type(value) not in ("table", "function", "userdata"):
            return "v", value
        g = self.lua.globals()
        if self._rawget(g, "__rr_refs") is None:
            self._rawset(g, "__rr_refs", self.lua.table())
        self._remote_refs += 1
        self._rawset(self._rawget(g, "__rr_refs"), self._remote_refs, value)
        return "p", _encode_path(["__rr_refs", self._remote_refs])

    # ------------------------------------------------------------------- errors
    def queue_error(self, code: int, message: str, severity: int = 20) -> None:
        """Queue an error of this node: in its own queue, or — while it executes a command of a TSP-Link
        master — in the master's queue, with this node's number as errorNode (see :meth:`_py_remote`)."""
        sink = self._error_sink
        (sink or self).push_error(code, message, severity, self.tsplink_node)
        self.bench.events.add(self.clock.now, self.name, "error_queued", code=code, message=message)

    def push_error(self, code: int, message: str, severity: int, node: int) -> None:
        """errorqueue.next() gives "the node number where the error originated" (2600B Reference Manual,
        errorqueue.next(); "The errorNode is always 1 on the 2604B/2614B/2634B", the models without TSP-Link) [M]."""
        own, self.errors.node = self.errors.node, node
        try:
            self.errors.push(code, message, severity)
        finally:
            self.errors.node = own

    def error_count(self) -> int:
        return len(self.errors)

    # ------------------------------------------------------------------- state
    def reset(self, *_: Any) -> None:
        """``reset()`` / ``*RST``: instrument defaults (subclasses extend)."""
        self.clock.advance(self.timing.reset)
        self.precision = self.default_precision
        self.data_format = FORMAT_ASCII
        self.byteorder = BYTEORDER_DEFAULT

    def abort(self) -> None:
        """``abort``: stop a running script or trigger model."""

    def power_on(self) -> None:
        super().power_on()
        self.errors.clear()
        self._script_lines = None
        self._tsplink_power_on()
        self._leave_masters()
        self._start_lua()
        self._load_saved_scripts()
