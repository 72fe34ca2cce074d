"""Regression: every emulated instrument still answers its golden transcript byte for byte.

The transcripts were recorded from our own emulators: they are regression records, not evidence of what a
real instrument answers. Evidence is in ``tests/manual_pairs/*.toml`` (pairs written from the manuals,
replayed against the emulators by ``tests/test_manual_pairs.py`` and read by the driver tests); the
emulator-recorded driver transcripts ``driver_keithley2636b.txt``/``driver_keithley707b.txt`` were
replaced by those pairs and are no longer kept.
"""

from __future__ import annotations

import pytest
from golden_io import GOLDEN, load
from golden_replay import replay

FILES = sorted(p.name for p in GOLDEN.glob("*.txt"))


def test_there_is_a_transcript_per_instrument() -> None:
    assert {"keithley2636b.txt", "keithley707b.txt", "bench_controller.txt"} <= set(FILES)
    assert not {"driver_keithley2636b.txt", "driver_keithley707b.txt"} & set(FILES)   # replaced by manual pairs


@pytest.mark.parametrize("name", FILES)
def test_emulator_matches_golden_transcript(name: str) -> None:
    t = load(name)
    got = replay(t)
    assert len(got) == len(t.steps)
    for (res, cmd, expected), (_, _, reply) in zip(t.steps, got, strict=False):
        assert reply == expected, f"{res} {cmd!r}: expected {expected!r}, got {reply!r}"

