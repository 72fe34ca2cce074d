"""TSP front end: a real Lua 5.1 interpreter (lupa) running each command line as a chunk.

The instrument's object model (``smua``, ``channel``, ``errorqueue`` …) is built from Lua tables
whose metatables call four Python callables bound once at start-up (bootstrap.lua). Python keeps the
instrument state; Lua only ever sees numbers, strings, booleans and nil. Syntax errors queue -285,
run-time errors -286 ("TSP Syntax/Runtime error at line N: …"), as the instrument does; the
session always keeps working.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
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
_BOOTSTRAP = resources.files(__package__).joinpath("bootstrap.lua").read_text(encoding="utf-8")


FORMAT_ASCII, FORMAT_REAL32, FORMAT_REAL64 = 1, 2, 3
BYTEORDER_DEFAULT = 1  # format.LITTLEENDIAN: 2651A manual default [M]; 2600B Rev F table unreadable [U]

NIL = object()  # a callback returning NIL returns an explicit nil to Lua (None returns nothing)


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


class TspEngine(EmulatedInstrument):
    """Base of TSP instruments (2600B SMUs, 707B matrix)."""

    default_precision = 6
    error_queue_depth = 100
    lua50_quoting = True  # quote names in Lua messages as TSP's Lua 5.0 does: near `*' (see _lua_message)

    def __init__(self, bench: Bench, name: str, resource: str, idn: str) -> None:
        super().__init__(bench, name, resource)
        self.idn = idn
        self.errors = ErrorQueue(self.error_queue_depth)
        self._attrs: dict[str, dict[str, tuple[Getter | None, Setter | None]]] = {}
        self._nodes: dict[str, Any] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self._script_lines: list[str] | None = None
        self._script_name: str | None = None
        self._script_run = False
        self.precision = self.default_precision
        self.data_format = FORMAT_ASCII
        self.byteorder = BYTEORDER_DEFAULT
        self._start_lua()

    # ------------------------------------------------------------------ Lua set-up
    def _start_lua(self) -> None:
        lua = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
        g = lua.globals()
        for unsafe in ("io", "os", "debug", "package", "require", "dofile", "loadfile", "module",
                       "collectgarbage", "newproxy", "load", "loadstring", "python"):
            g[unsafe] = None
        lua.execute(_BOOTSTRAP, self._py_get, self._py_set, self._py_call, self._py_print)
        lua.globals()["string"]["dump"] = None
        self.lua = lua
        self._node = g["__rr_node"]
        self._fn = g["__rr_fn"]
        self._attrs.clear()
        self._nodes.clear()
        self._functions.clear()
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
            return f"attempt to write read-only or unknown attribute '{path}.{key}'"  # [U] text
        if value is None:  # e.g. an unknown constant (display.FOO is nil): never a silent nil setting
            return f"bad argument to '{path}.{key}' (nil given)"  # [U] text
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
        if code.lstrip().startswith("\x1b"):
            self.queue_error(-285, "TSP Syntax error at line 1: unexpected symbol near char(27)")
            return None
        if (found := lua51_only_operator(code)) is not None:
            line, op = found
            text = f"{line}: unexpected symbol near '{op}'"
            if self.lua50_quoting:
                text = _QUOTED.sub(lambda m: "`" + m.group(1) + "'", text)
            self.queue_error(-285, "TSP Syntax error at line " + text)
            return None
        try:
            return self.lua.compile(code, name="=tsp", mode="t")
        except lua51.LuaError as e:
            self.queue_error(-285, "TSP Syntax error at line " + self._lua_message(e))
            return None

    @staticmethod
    def _lua_text(exc: BaseException) -> str:
        """'N: message' from a Lua error text (position prefix and traceback removed)."""
        text = str(exc).strip().split("\nstack traceback:")[0]
        m = _LUA_POS.match(text)
        if not m:
            return "1: " + text
        return f"{m.group(1)}: " + text[m.end():]

    def _finish_script(self) -> None:
        body = "\n".join(self._script_lines or [])
        name, run = self._script_name, self._script_run
        self._script_lines, self._script_name, self._script_run = None, None, False
        fn = self._compile(body)
        if fn is None:
            return
        make = "function(f) return setmetatable({run = f}, {__call = function(s) return s.run() end}) end"
        script = self.lua.eval(make)(fn)
        if name:
            self.lua.globals()[name] = script
        if run:
            try:
                fn()
            except lua51.LuaError as e:
                self.queue_error(-286, "TSP Runtime error at line " + self._lua_message(e))

    def _opc(self) -> None:
        """``opc()``: set the operation complete bit (ESR bit 0) once overlapped commands finished — at once
        here, as every command completes before the next runs (2600B Reference Manual, opc())."""
        self.esr |= 1

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

    # ------------------------------------------------------------------- errors
    def queue_error(self, code: int, message: str, severity: int = 20) -> None:
        self.errors.push(code, message, severity)
        self.bench.events.add(self.clock.now, self.name, "error_queued", code=code, message=message)

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
        self._start_lua()
