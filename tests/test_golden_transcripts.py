"""Tier 1: every emulated instrument answers its golden transcript byte for byte.

The same files are the drivers' transcript tests (drivers and simulator meet in one contract).
"""

from __future__ import annotations

import pytest
from golden_io import GOLDEN, load
from golden_replay import replay

FILES = sorted(p.name for p in GOLDEN.glob("*.txt"))


def test_there_is_a_transcript_per_instrument() -> None:
    assert {"keithley2636b.txt", "keithley707b.txt", "bench_controller.txt"} <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_emulator_matches_golden_transcript(name: str) -> None:
    t = load(name)
    got = replay(t)
    assert len(got) == len(t.steps)
    for (res, cmd, expected), (_, _, reply) in zip(t.steps, got, strict=False):
        assert reply == expected, f"{res} {cmd!r}: expected {expected!r}, got {reply!r}"

