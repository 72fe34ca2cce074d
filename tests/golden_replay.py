"""Replay a golden transcript against a fresh simulated bench (shared by the test and the recorder)."""

from __future__ import annotations

import itertools

import pyvisa
from golden_io import Transcript

_tags = itertools.count()


def replay(t: Transcript) -> list[tuple[str, str, str | None]]:
    """Send every command of ``t`` through pyvisa; return (resource, command, reply-or-None)."""
    spec = t.bench + ("&" if "?" in t.bench else "?") + f"tag=golden{next(_tags)}"
    rm = pyvisa.ResourceManager(f"{spec}@rramlab")
    try:
        sessions: dict[str, pyvisa.resources.MessageBasedResource] = {}
        out: list[tuple[str, str, str | None]] = []
        for resource, command, _expected in t.steps:
            inst = sessions.get(resource)
            if inst is None:
                inst = rm.open_resource(resource, read_termination="\n", write_termination="\n")
                sessions[resource] = inst
            inst.write(command)
            reply = inst.read() if inst.read_stb() & 16 else None
            out.append((resource, command, reply))
        return out
    finally:
        rm.close()
