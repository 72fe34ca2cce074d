"""SCPI command tree built from the manuals' syntax strings, and header matching.

A syntax string is a header and an optional parameter description, as the manuals print them::

    "[:ROUTe]:CLOSe[:LIST] <channel_list>"     optional nodes in [ ], short form = uppercase part
    ":SYSTem:ERRor[:NEXT]?"                     a query form ends in '?'
    ":SOURce[1|2]:VOLTage[:LEVel] <value>"     numeric suffix: allowed values (omitted -> default 1)
    ":OUTPut[1-4] <bool>"                       ... or a range
    "*ESE <value>"                              common command
    ":ROUTe:CONNection:RULE <card>,<rule>"      parameter count: 2
    ":ROUTe:CLOSe:CARD? [<card>]"               0 or 1 parameter
    ":FORMat:ELEMents <e>{,<e>}"                1 or more ('{...}' or '...' = repeatable)

Matching is case-insensitive; each node accepts exactly its short or its long form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_NODE = re.compile(r"(\[)?:?([A-Za-z*][A-Za-z0-9_]*)(?:\[([0-9|\-]+)\])?(\])?")
_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*?)(\d*)$")


@dataclass(frozen=True)
class Node:
    """One program mnemonic of a command: short and long form, optional, allowed numeric suffixes."""

    short: str
    long: str
    optional: bool = False
    suffixes: frozenset[int] | None = None   # None: the node takes no numeric suffix

    def match(self, token: str) -> tuple[bool, int | None, bool]:
        """(matched, suffix value or None, suffix-out-of-range) for one header token (uppercase)."""
        if token in (self.short, self.long):
            return True, None, False
        m = _TOKEN.match(token)
        if m and m.group(2) and m.group(1) in (self.short, self.long):
            if self.suffixes is None:
                return False, None, False
            value = int(m.group(2))
            if value in self.suffixes:
                return True, value, False
            return False, None, True
        return False, None, False


@dataclass
class Command:
    """A declared command form (set or query) and its handler."""

    syntax: str
    nodes: tuple[Node, ...]
    query: bool
    handler: Callable[..., Any]
    min_params: int
    max_params: int | None
    common: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _suffix_set(spec: str) -> frozenset[int]:
    values: set[int] = set()
    for part in spec.split("|"):
        if "-" in part:
            a, _, b = part.partition("-")
            values.update(range(int(a), int(b) + 1))
        elif part:
            values.add(int(part))
    return frozenset(values)


def parse_params_spec(spec: str) -> tuple[int, int | None]:
    """(min, max) parameter count of a manual's parameter description (max None = unbounded)."""
    spec = spec.strip()
    if not spec:
        return 0, 0
    unbounded = "{" in spec or "..." in spec
    spec = re.sub(r"\{[^{}]*\}", "", spec).replace("...", "")
    required = spec
    while True:
        stripped = re.sub(r"\[[^\[\]]*\]", "", required)
        if stripped == required:
            break
        required = stripped
    n_min = len([p for p in required.split(",") if p.strip()])
    n_max = len([p for p in spec.replace("[", "").replace("]", "").split(",") if p.strip()])
    return n_min, (None if unbounded else n_max)


def parse_syntax(syntax: str) -> tuple[tuple[Node, ...], bool, int, int | None]:
    """(nodes, is_query, min_params, max_params) of a syntax string."""
    text = syntax.strip()
    m = re.match(r"^(\S+)\s*(.*)$", text)
    if not m:
        raise ValueError(f"empty SCPI syntax {syntax!r}")
    header, params = m.group(1), m.group(2)
    query = header.endswith("?")
    header = header.rstrip("?")
    nodes: list[Node] = []
    pos = 0
    while pos < len(header):
        nm = _NODE.match(header, pos)
        if not nm or nm.end() == pos:
            raise ValueError(f"cannot read SCPI syntax {syntax!r} at {header[pos:]!r}")
        opt_open, word, suffix, opt_close = nm.groups()
        if bool(opt_open) != bool(opt_close):
            raise ValueError(f"unbalanced [ ] in SCPI syntax {syntax!r}")
        short = "".join(ch for ch in word if ch.isupper() or ch.isdigit() or ch in "*_")
        if word.startswith("*"):
            short = word.upper()
        short = short or word.upper()
        nodes.append(Node(short=short, long=word.upper(), optional=bool(opt_open),
                          suffixes=_suffix_set(suffix) if suffix else None))
        pos = nm.end()
    n_min, n_max = parse_params_spec(params)
    return tuple(nodes), query, n_min, n_max


def split_header(header: str) -> list[str]:
    """Header text (no '?', no leading ':') -> uppercase tokens."""
    return [t.upper() for t in header.split(":")]


class CommandTree:
    """All declared commands of an instrument; header lookups are cached."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self._cache: dict[tuple[tuple[str, ...], bool], tuple[Command, tuple[int, ...]] | int] = {}

    def add(self, syntax: str, handler: Callable[..., Any], **extra: Any) -> Command:
        nodes, query, n_min, n_max = parse_syntax(syntax)
        cmd = Command(syntax, nodes, query, handler, n_min, n_max,
                      common=nodes[0].long.startswith("*"), extra=dict(extra))
        for k, old in enumerate(self.commands):      # re-declaring a header replaces it
            if old.nodes == nodes and old.query == query:
                self.commands[k] = cmd
                break
        else:
            self.commands.append(cmd)
        self._cache.clear()
        return cmd

    def lookup(self, tokens: tuple[str, ...], query: bool) -> tuple[Command, tuple[int, ...]] | int:
        """(command, suffix values of its suffix nodes) or an error code (-113 / -114)."""
        key = (tokens, query)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result: tuple[Command, tuple[int, ...]] | int = -113
        for cmd in self.commands:
            if cmd.query != query:
                continue
            found = _match(cmd.nodes, tokens)
            if isinstance(found, tuple):
                result = (cmd, found)
                break
            if found == -114:
                result = -114
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = result
        return result


def _match(nodes: tuple[Node, ...], tokens: tuple[str, ...]) -> tuple[int, ...] | int:
    """Suffix values (one per suffix-taking node, default 1) if ``tokens`` spell ``nodes``; else
    -114 if only a suffix was out of range, else -113."""
    suffix_error = False

    def walk(i: int, j: int) -> list[int] | None:
        nonlocal suffix_error
        if i == len(nodes):
            return [] if j == len(tokens) else None
        node = nodes[i]
        if j < len(tokens):
            ok, value, bad = node.match(tokens[j])
            suffix_error |= bad
            if ok:
                rest = walk(i + 1, j + 1)
                if rest is not None:
                    return ([value if value is not None else 1] if node.suffixes is not None else []) + rest
        if node.optional:
            rest = walk(i + 1, j)
            if rest is not None:
                return ([1] if node.suffixes is not None else []) + rest
        return None

    found = walk(0, 0)
    if found is not None:
        return tuple(found)
    return -114 if suffix_error else -113
