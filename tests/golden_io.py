"""Golden transcripts: exact (command, reply) pairs for each emulated instrument.

File format (UTF-8 text, one item per line)::

    # comment                      ignored
    @ bench ?noise=0               library-path overrides of the bench the transcript was taken on
    @ resource GPIB0::26::INSTR    the instrument the following pairs talk to
    > smua.source.levelv = 0.2     a write (the instrument's write termination LF is added)
    > print(smua.source.levelv)
    < 2.00000e-01                  the reply to the previous write (read termination LF implied)

Replies are stored with Python string escapes (``\\t`` for TAB, ``\\\\`` for a backslash) so every byte is
visible. These files are regression records taken on the emulators (tests/test_golden_transcripts.py): they
show the emulators did not change, not that they are right; the evidence is in tests/manual_pairs/.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


@dataclass
class Transcript:
    bench: str = ""
    steps: list[tuple[str, str, str | None]] = field(default_factory=list)  # (resource, command, reply)

    def pairs(self, resource: str) -> list[tuple[str, str | None]]:
        """(command, reply) pairs of one instrument, in order."""
        return [(c, r) for res, c, r in self.steps if res == resource]


def _unescape(text: str) -> str:
    return codecs.decode(text, "unicode_escape")


def _escape(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


def load(name: str) -> Transcript:
    t = Transcript()
    resource = ""
    for raw in (GOLDEN / name).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        tag, _, rest = raw.partition(" ")
        if tag == "@":
            key, _, value = rest.partition(" ")
            if key == "bench":
                t.bench = value.strip()
            elif key == "resource":
                resource = value.strip()
            else:
                raise ValueError(f"{name}: unknown directive {raw!r}")
        elif tag == ">":
            t.steps.append((resource, _unescape(rest), None))
        elif tag == "<":
            if not t.steps or t.steps[-1][2] is not None:
                raise ValueError(f"{name}: reply without a command: {raw!r}")
            res, cmd, _ = t.steps[-1]
            t.steps[-1] = (res, cmd, _unescape(rest))
        else:
            raise ValueError(f"{name}: cannot read line {raw!r}")
    return t


def dump(t: Transcript, header: str) -> str:
    lines = [f"# {h}" for h in header.splitlines()]
    lines.append(f"@ bench {t.bench}")
    current = None
    for res, cmd, reply in t.steps:
        if res != current:
            lines.append(f"@ resource {res}")
            current = res
        lines.append(f"> {_escape(cmd)}")
        if reply is not None:
            lines.append(f"< {_escape(reply)}")
    return "\n".join(lines) + "\n"
