"""Bad input, all the way: malformed recipes and station files through the CLI, in process.

Every case runs ``rramlab check`` and ``rramlab run`` and must give exit code 2, a message that starts a
line with the bad file and names the key, no traceback, no output file, and — for ``run`` — not one
write to any simulated instrument (each test's station uses its own ``?tag=...@rramlab`` bench).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyvisa import highlevel

from rramlab.drivers.station_config import default_station_text
from rramlab.protocols.cli import main
from rramlab.simulator.visa_library import RramlabVisaLibrary

_tags = itertools.count()

RECIPE = """\
[recipe]
name = "bad input"
description = "every protocol once, small"

[[steps]]
name = "map"
protocol = "read"
cells = [[0, 0]]
[steps.params]
repeats = 1

[[steps]]
name = "form"
protocol = "forming"
cells = [[0, 0], [0, 1]]
[steps.params]
current_limit = 1e-3
attempts = 1

[[steps]]
name = "iv"
protocol = "iv_sweep"
cells = [[0, 0]]
[steps.params]
current_limit = 1e-3
gate_voltage = 1.2

[[steps]]
name = "pulse"
protocol = "pulse"
cells = [[0, 1]]
[steps.params]
amplitude = 1.35
width = 2.5e-6
count = 2

[[steps]]
name = "train"
protocol = "pulse_train"
cells = [[0, 1]]
[steps.params]
blocks = [[1, 10], [-1, 10]]
alternating_pairs = 5

[[steps]]
name = "pv"
protocol = "program_verify"
cells = { rows = "0", cols = "0-1" }
[steps.params]
acceptance = 0.02
targets = [20e-6, 50e-6]
bands = [[0.0, 30e-6, 1.35, -1.5], [30e-6, 1.0, 1.35, -1.3]]

[[steps]]
name = "hold"
protocol = "retention"
cells = { first = 2 }
[steps.params]
t_first = 1.0
horizon = 100.0
also_at = [30.0]

[[steps]]
name = "cycle"
protocol = "endurance"
cells = [[1, 0]]
[steps.params]
cycles = 10
pulses_per_half = 2
"""

STATION = default_station_text()


def station_text(tag: str) -> str:
    """The default simulated station on a bench of its own (``?tag=...@rramlab``)."""
    assert STATION.count('visa_library = "2636b_707b@rramlab"') == 3
    return STATION.replace('visa_library = "2636b_707b@rramlab"', f'visa_library = "?tag={tag}@rramlab"')


Edit = tuple[str, str] | Callable[[str], str | bytes | None]


@dataclass(frozen=True)
class Case:
    id: str
    file: str                   # "recipe" or "station": the file that is wrong
    edit: Edit                  # (old, new) replaced once in the good file, or text -> new text/bytes (None: a dir)
    keys: tuple[str, ...]       # what the message must name besides the file


def rc(id: str, old: str, new: str, *keys: str) -> Case:
    return Case(id, "recipe", (old, new), keys)


def st(id: str, old: str, new: str, *keys: str) -> Case:
    return Case(id, "station", (old, new), keys)


def many(n: int, item: str) -> str:
    return "[" + ", ".join([item] * n) + "]"


CASES = [
    # --- the user's findings ---------------------------------------------------------------------
    rc("gate_voltage as text", "acceptance = 0.02\n", 'acceptance = 0.02\ngate_voltage = "1.2"\n',
       "steps[5] 'pv'", "gate_voltage", "without quotes"),
    rc("huge row range", 'cells = { rows = "0", cols = "0-1" }', 'cells = { rows = "0-1000000", cols = "0-1" }',
       "steps[5] 'pv'", "cells.rows", "0..7"),
    rc("enormous row range", 'cells = { rows = "0", cols = "0-1" }', 'cells = { rows = "0-100000000" }',
       "cells.rows", "0..7"),
    rc("range beyond any integer", 'cells = { rows = "0", cols = "0-1" }',
       'cells = { rows = "0-99999999999999999999999" }', "cells.rows", "cannot read"),
    rc("bands of text", "bands = [[0.0, 30e-6, 1.35, -1.5],", 'bands = [["low", 30e-6, 1.35, -1.5],',
       "bands[0][0] (g_low)", "a number"),
    rc("band too short", "bands = [[0.0, 30e-6, 1.35, -1.5],", "bands = [[0.0, 30e-6, 1.35],",
       "bands[0]", "[g_low, g_high, v_set, v_reset]"),
    rc("bands not a list of lists", "bands = [[0.0, 30e-6, 1.35, -1.5], [30e-6, 1.0, 1.35, -1.3]]",
       "bands = [0.0, 30e-6, 1.35, -1.5]", "bands[0]", "[g_low, g_high, v_set, v_reset]"),
    rc("bands empty", "bands = [[0.0, 30e-6, 1.35, -1.5], [30e-6, 1.0, 1.35, -1.3]]", "bands = []",
       "bands", "empty list"),
    rc("band upside down", "bands = [[0.0, 30e-6, 1.35, -1.5],", "bands = [[30e-6, 0.0, 1.35, -1.5],",
       "bands[0]", "g_low < g_high"),
    rc("band with a positive reset", "[30e-6, 1.0, 1.35, -1.3]]", "[30e-6, 1.0, 1.35, 1.3]]",
       "bands[1][3] (v_reset)", "[-20.0, -0.001] V"),
    # --- wrong types ------------------------------------------------------------------------------
    rc("bool gate voltage", "amplitude = 1.35\n", "amplitude = 1.35\ngate_voltage = true\n",
       "steps[3] 'pulse'", "gate_voltage", "true/false"),
    rc("list where a number goes", "current_limit = 1e-3\nattempts = 1", "current_limit = [1e-3]\nattempts = 1",
       "steps[1] 'form'", "current_limit", "a list"),
    rc("table where a number goes", "width = 2.5e-6\ncount = 2", "width = { s = 2.5e-6 }\ncount = 2",
       "width", "a table"),
    rc("text gate voltage in iv", "gate_voltage = 1.2", 'gate_voltage = "high"', "steps[2] 'iv'", "gate_voltage"),
    rc("float count", "count = 2", "count = 1.5", "count", "an integer"),
    rc("text count", "count = 2", 'count = "2"', "count", "an integer"),
    rc("block count as text", "blocks = [[1, 10], [-1, 10]]", 'blocks = [[1, "10"], [-1, 10]]',
       "blocks[0][1] (count)"),
    rc("blocks flat", "blocks = [[1, 10], [-1, 10]]", "blocks = [1, 10]", "blocks[0]", "[sign, count]"),
    rc("blocks as text", "blocks = [[1, 10], [-1, 10]]", 'blocks = "[[1, 10]]"', "blocks", "list of"),
    rc("block sign 2", "blocks = [[1, 10], [-1, 10]]", "blocks = [[2, 10]]", "blocks[0][0] (sign)", "one of"),
    rc("targets scalar", "targets = [20e-6, 50e-6]", "targets = 20e-6", "targets must be a list"),
    rc("target as text", "targets = [20e-6, 50e-6]", 'targets = [20e-6, "50e-6"]', "targets[1]"),
    rc("also_at scalar", "also_at = [30.0]", "also_at = 30.0", "also_at must be a list"),
    # --- NaN, infinities, zero, negative, just outside ---------------------------------------------
    rc("nan step", "current_limit = 1e-3\nattempts = 1", "current_limit = 1e-3\nattempts = 1\nv_step = nan",
       "v_step", "nan"),
    rc("inf stop", "current_limit = 1e-3\nattempts = 1", "current_limit = 1e-3\nattempts = 1\nv_stop = inf",
       "v_stop"),
    rc("-inf jump", "current_limit = 1e-3\nattempts = 1", "current_limit = 1e-3\nattempts = 1\njump_current = -inf",
       "jump_current"),
    rc("zero step", "current_limit = 1e-3\nattempts = 1", "current_limit = 1e-3\nattempts = 1\nv_step = 0",
       "v_step", "[0.0001, 1.0] V"),
    rc("negative nplc", "current_limit = 1e-3\nattempts = 1", "current_limit = 1e-3\nattempts = 1\nnplc = -1",
       "nplc", "[0.001, 25] PLC"),
    rc("nplc just above 25", "gate_voltage = 1.2", "gate_voltage = 1.2\nnplc = 25.001", "steps[2] 'iv'", "nplc"),
    rc("zero attempts", "attempts = 1", "attempts = 0", "attempts", "[1, 100]"),
    rc("attempts just above 100", "attempts = 1", "attempts = 101", "attempts", "[1, 100]"),
    rc("repeats just above", "repeats = 1", "repeats = 10001", "steps[0] 'map'", "repeats"),
    rc("read at 0 V", "repeats = 1", "repeats = 1\nvoltage = 0.0", "voltage", "0 V"),
    rc("zero width", "width = 2.5e-6", "width = 0", "width"),
    rc("negative acceptance", "acceptance = 0.02", "acceptance = -0.02", "acceptance"),
    rc("reset sweep positive", "gate_voltage = 1.2", "gate_voltage = 1.2\nv_reset_min = 0.5", "v_reset_min"),
    rc("zero cycles", "cycles = 10", "cycles = 0", "steps[7] 'cycle'", "cycles"),
    rc("pulses per half above", "pulses_per_half = 2", "pulses_per_half = 10001", "pulses_per_half"),
    rc("horizon above 1e10 s", "horizon = 100.0", "horizon = 1e11", "horizon"),
    rc("also_at before t_first", "also_at = [30.0]", "also_at = [0.5]", "also_at[0]", "[1.0, 100.0] s"),
    # --- lists too long, empty, counts that drive allocations ----------------------------------------
    rc("too many blocks", "blocks = [[1, 10], [-1, 10]]", f"blocks = {many(1001, '[1, 1]')}",
       "blocks", "at most 1000"),
    rc("train of 1e6+ pulses", "blocks = [[1, 10], [-1, 10]]", "blocks = [[1, 1000000], [-1, 1]]",
       "blocks, alternating_pairs", "1000000"),
    rc("too many targets", "targets = [20e-6, 50e-6]", f"targets = {many(10001, '20e-6')}",
       "targets", "at most 10000"),
    rc("targets empty", "targets = [20e-6, 50e-6]", "targets = []", "targets", "empty list"),
    rc("too many also_at", "also_at = [30.0]", f"also_at = {many(1001, '30.0')}", "also_at", "at most 1000"),
    Case("too many steps", "recipe", lambda t: t + "".join(
        f'[[steps]]\nname = "s{i}"\nprotocol = "read"\ncells = [[0, 0]]\n' for i in range(250)),
         ("steps", "at most 256")),
    # --- unknown keys at every level --------------------------------------------------------------
    rc("unknown parameter", "acceptance = 0.02", "acceptanse = 0.02", "steps[5] 'pv'", "acceptanse"),
    rc("unknown step key", 'name = "pv"', 'name = "pv"\ncolour = "red"', "steps[5]", "colour"),
    rc("unknown recipe key", 'name = "bad input"', 'name = "bad input"\nauthor = "me"', "[recipe]", "author"),
    rc("unknown top-level key", "[recipe]", 'extra = 1\n[recipe]', "top level", "extra"),
    rc("unknown cells key", 'cells = { rows = "0", cols = "0-1" }', 'cells = { rows = "0", colz = "0-1" }',
       "cells", "colz"),
    rc("unknown protocol", 'protocol = "endurance"', 'protocol = "melt"', "steps[7].protocol", "melt"),
    # --- missing mandatory keys, names ------------------------------------------------------------
    rc("missing cells", 'cells = [[1, 0]]\n', "", "steps[7].cells", "missing"),
    rc("missing protocol", 'protocol = "endurance"\n', "", "steps[7].protocol", "missing"),
    rc("missing current_limit", "current_limit = 1e-3\nattempts = 1", "attempts = 1", "form", "current_limit"),
    Case("no steps", "recipe", lambda t: t.split("[[steps]]")[0], ("steps", "at least one")),
    Case("step not a table", "recipe", lambda t: "steps = [1]\n", ("steps[0]", "[[steps]] table")),
    rc("name twice", 'name = "cycle"', 'name = "pv"', "steps[7].name", "used twice"),
    rc("name not text", 'name = "cycle"', "name = 5", "steps[7].name"),
    rc("recipe name not text", 'name = "bad input"', "name = 5", "recipe.name"),
    # --- cells ------------------------------------------------------------------------------------
    rc("duplicate cells", "cells = [[0, 0], [0, 1]]", "cells = [[0, 0], [0, 0]]", "steps[1] 'form'", "cells",
       "[0, 0] listed more than once"),
    rc("duplicate rows", 'cells = { rows = "0", cols = "0-1" }', 'cells = { rows = "0,0", cols = "0-1" }',
       "cells.rows", "more than once"),
    rc("cell outside the array", "cells = [[1, 0]]", "cells = [[8, 0]]", "cells", "[8, 0] outside the 8x8"),
    rc("negative cell", "cells = [[1, 0]]", "cells = [[-1, 0]]", "cells", "outside"),
    rc("cells empty", "cells = [[1, 0]]", "cells = []", "cells", "no cell"),
    rc("first too many", "cells = { first = 2 }", "cells = { first = 65 }", "cells.first", "[1, 64]"),
    rc("cells as a word", "cells = [[1, 0]]", 'cells = "everything"', "cells", "'everything'"),
    rc("bool cell", "cells = [[1, 0]]", "cells = [[true, 0]]", "cells", "[row, col]"),
    # --- the safety envelope (refused by the preflight) -------------------------------------------
    rc("gate above the word-line max", "acceptance = 0.02\n", "acceptance = 0.02\ngate_voltage = 5.0\n",
       "pv", "gate_voltage", "safety.max_voltage.word_line"),
    rc("attempts above the envelope", "attempts = 1", "attempts = 5", "form", "attempts",
       "safety.max_forming_attempts"),
    rc("width above the envelope", "width = 2.5e-6", "width = 0.01", "pulse", "width", "safety.min/max_pulse_width"),
    rc("pulse budget", "cycles = 10", "cycles = 1000000", "pulses per cell", "safety.max_pulses_per_cell"),
    # --- the file itself --------------------------------------------------------------------------
    Case("recipe not TOML", "recipe", ("[recipe]", "[recipe"), ("not valid TOML", "line")),
    Case("recipe nested too deeply", "recipe", lambda t: "x = " + "[" * 5000 + "]" * 5000, ("not valid TOML",)),
    Case("recipe empty", "recipe", lambda t: "", ("steps", "at least one")),
    Case("recipe not UTF-8", "recipe", lambda t: t.replace("bad input", "caf\xe9").encode("latin-1"),
         ("not a UTF-8 text",)),
    Case("recipe is a directory", "recipe", lambda t: None, ("is a directory",)),
    Case("recipe over 1 MiB", "recipe", lambda t: t + "#" * (1 << 20), ("at most 1 MiB",)),
    # --- station files ----------------------------------------------------------------------------
    st("nplc 1000", "nplc = 1.0", "nplc = 1000", "read.nplc", "[0.001, 25.0] PLC", "1000"),
    st("nplc just below", "nplc = 1.0", "nplc = 0.0009", "read.nplc"),
    st("read voltage 1e-300", "voltage = 0.2", "voltage = 1e-300", "read.voltage", "[0.001, 4.0] V"),
    st("read voltage above the bit-line max", "voltage = 0.2", "voltage = 4.5", "read.voltage",
       "safety.max_voltage.bit_line"),
    st("read gate above the word-line max", "gate_voltage = 3.3", "gate_voltage = 3.7", "read.gate_voltage",
       "safety.max_voltage.word_line"),
    st("read voltage as text", "voltage = 0.2", 'voltage = "0.2"', "read.voltage", "number"),
    st("read voltage nan", "voltage = 0.2", "voltage = nan", "read.voltage", "nan"),
    st("timeout 1e308", 'resource = "GPIB0::26::INSTR"', 'resource = "GPIB0::26::INSTR"\ntimeout = 1e308',
       "instruments.smu.timeout", "3600"),
    st("timeout zero", 'resource = "GPIB0::26::INSTR"', 'resource = "GPIB0::26::INSTR"\ntimeout = 0',
       "instruments.smu.timeout"),
    st("timeout negative", 'resource = "GPIB0::16::INSTR"', 'resource = "GPIB0::16::INSTR"\ntimeout = -1',
       "instruments.matrix.timeout"),
    st("timeout bool", 'resource = "GPIB0::16::INSTR"', 'resource = "GPIB0::16::INSTR"\ntimeout = true',
       "instruments.matrix.timeout"),
    st("max voltage inf", "bit_line = 4.0,", "bit_line = inf,", "safety.max_voltage.bit_line"),
    st("max voltage negative", "bit_line = 4.0,", "bit_line = -4.0,", "safety.max_voltage.bit_line"),
    st("current limit just above", "bit_line = 1e-3,", "bit_line = 0.1000001,", "safety.current_limit.bit_line",
       "0.1] A"),
    st("current limit below 100 pA", "word_line = 1e-6 }", "word_line = 1e-11 }", "safety.current_limit.word_line",
       "1e-10"),
    st("current limit missing", "bit_line = 1e-3, word_line = 1e-6 }", "bit_line = 1e-3 }",
       "safety.current_limit.word_line", "missing"),
    st("current limits missing", "current_limit = { bit_line = 1e-3, word_line = 1e-6 }", "",
       "safety.current_limit", "missing"),
    st("min pulse width below the timer", "min_pulse_width = 1e-6", "min_pulse_width = 1e-7",
       "safety.min_pulse_width"),
    st("max pulse width 1000 s", "max_pulse_width = 1e-3", "max_pulse_width = 1000", "safety.max_pulse_width"),
    st("pulse energy nan", "max_forming_attempts = 3", "max_forming_attempts = 3\nmax_pulse_energy = nan",
       "safety.max_pulse_energy"),
    st("forming attempts float", "max_forming_attempts = 3", "max_forming_attempts = 2.5",
       "safety.max_forming_attempts"),
    st("pulses per cell zero", "max_forming_attempts = 3", "max_forming_attempts = 3\nmax_pulses_per_cell = 0",
       "safety.max_pulses_per_cell"),
    st("g_max 10 S", "max_forming_attempts = 3", "max_forming_attempts = 3\ng_max = 10", "safety.g_max"),
    st("rows zero", "rows = 8 ", "rows = 0 ", "array.rows"),
    st("rows as text", "rows = 8 ", 'rows = "8" ', "array.rows"),
    st("cols huge", "cols = 8 ", "cols = 100000 ", "array.rows/cols"),
    st("unknown read key", "[read]", "[read]\nvoltge = 0.2", "read", "voltge"),
    st("unknown top-level table", "[read]", "[extras]\nx = 1\n[read]", "top level", "extras"),
    st("unknown instrument key", 'resource = "GPIB0::26::INSTR"', 'resource = "GPIB0::26::INSTR"\naddr = 3',
       "instruments.smu", "addr"),
    st("unknown safety key", "max_forming_attempts = 3", "max_forming_attempts = 3\nmax_current = 1",
       "safety", "max_current"),
    st("resource with ;", 'resource = "GPIB0::26::INSTR"', 'resource = "GPIB0::26::INSTR; rm -rf /"',
       "instruments.smu.resource"),
    st("resource with ..", 'resource = "GPIB0::26::INSTR"', 'resource = "ASRL/dev/../etc/passwd::INSTR"',
       "instruments.smu.resource"),
    st("library with ;", "visa_library = \"?tag=", "visa_library = \"x.toml;reboot?tag=",
       "instruments.smu.visa_library"),
    st("library with ..", "visa_library = \"?tag=", "visa_library = \"../../etc/bench.toml?tag=",
       "instruments.smu.visa_library"),
    st("library with $()", "visa_library = \"?tag=", "visa_library = \"$(reboot)?tag=",
       "instruments.smu.visa_library"),
    st("library with a backtick", "visa_library = \"?tag=", "visa_library = \"`reboot`?tag=",
       "instruments.smu.visa_library"),
    st("library with a pipe", "visa_library = \"?tag=", "visa_library = \"a|b?tag=", "instruments.smu.visa_library"),
    st("unknown driver", 'driver = "keithley707b"', 'driver = "keithley7001"', "instruments.matrix.driver"),
    st("pad columns beyond the card", 'WL = "matrix:1:1-8"', 'WL = "matrix:1:1-99999999999"', "wiring.lines.WL"),
    st("matrix row Z", 'ground = "C"', 'ground = "Z"', "wiring.rows.matrix.ground"),
    st("clock from a sundial", 'source = "bench"', 'source = "sundial"', "clock.source"),
    st("instrument name with a dot", "[instruments.bench]", '[instruments."be.nch"]', "instruments", "be.nch"),
    st("no [station]", "[station]", "[stations]", "stations"),
    Case("station not TOML", "station", ("[station]", "[station"), ("not valid TOML",)),
    Case("station empty", "station", lambda t: "", ("station", "missing")),
    Case("station not UTF-8", "station", lambda t: t.replace("bench (default)", "caf\xe9").encode("latin-1"),
         ("not a UTF-8 text",)),
    Case("station is a directory", "station", lambda t: None, ("is a directory",)),
    Case("station over 1 MiB", "station", lambda t: t + "#" * (1 << 20), ("at most 1 MiB",)),
]


def write_files(tmp: Path, case: Case | None, tag: str) -> tuple[str, str]:
    """recipe.toml and station.toml in ``tmp``, one of them broken by ``case``."""
    texts: dict[str, str | bytes | None] = {"recipe": RECIPE, "station": station_text(tag)}
    if case is not None:
        good = texts[case.file]
        assert isinstance(good, str)
        if isinstance(case.edit, tuple):
            old, new = case.edit
            assert good.count(old) >= 1, f"{case.id}: {old!r} not in the {case.file} file"
            texts[case.file] = good.replace(old, new, 1)
        else:
            texts[case.file] = case.edit(good)
    for kind, content in texts.items():
        path = tmp / f"{kind}.toml"
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return "recipe.toml", "station.toml"


def benches() -> dict[object, RramlabVisaLibrary]:
    """Every simulated bench pyvisa has opened so far in this process."""
    return {k: lib for k, lib in highlevel.VisaLibraryBase._registry.items() if isinstance(lib, RramlabVisaLibrary)}


def call(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    code = main(argv)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split()), time.perf_counter() - t0


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")          # keep rich from folding long keys
    return tmp_path


def assert_refused(case: Case, code: int, out: str, seconds: float) -> None:
    bad = f"{case.file}.toml: "
    assert code == 2, out
    assert "Traceback" not in out, out
    assert bad in out, f"the message must start with the file {bad!r}: {out}"
    for key in case.keys:
        assert key in out, f"{key!r} not in: {out}"
    assert len(out) < 1500, f"message of {len(out)} characters"
    assert seconds < 20, f"refusing took {seconds:.1f} s"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_refuses_with_file_and_key(workdir: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    recipe, station = write_files(workdir, case, f"bad-check-{next(_tags)}")
    before = set(benches())
    code, out, seconds = call(capsys, ["check", recipe, "--station", station])
    assert_refused(case, code, out, seconds)
    assert set(benches()) - before == set()          # check opens no VISA session at all (others may be collected)
    assert sorted(p.name for p in workdir.iterdir()) == ["recipe.toml", "station.toml"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_run_refuses_with_file_and_key(workdir: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    recipe, station = write_files(workdir, case, f"bad-run-{next(_tags)}")
    code, out, seconds = call(capsys, ["run", recipe, "--station", station, "--out", "x.h5", "--quiet"])
    assert_refused(case, code, out, seconds)
    assert not (workdir / "x.h5").exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["recipe.toml", "station.toml"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_run_sends_nothing_to_any_instrument(workdir: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    tag = f"bad-writes-{next(_tags)}"
    recipe, station = write_files(workdir, case, tag)
    before = benches()
    code, out, _ = call(capsys, ["run", recipe, "--station", station, "--out", "x.h5", "--quiet"])
    assert code == 2, out
    new = {k: lib for k, lib in benches().items() if k not in before}
    assert all(tag in str(lib.library_path) for lib in new.values())
    assert {str(lib.library_path): lib.bench.writes for lib in new.values()} == \
        {str(lib.library_path): 0 for lib in new.values()}


def test_the_good_files_pass(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline every case breaks in one place is itself accepted, by check and by run."""
    tag = f"good-{next(_tags)}"
    recipe, station = write_files(workdir, None, tag)
    code, out, _ = call(capsys, ["check", recipe, "--station", station])
    assert code == 0 and "8 steps pass the safety envelope" in out, out
    code, out, _ = call(capsys, ["run", recipe, "--station", station, "--out", "x.h5", "--quiet"])
    assert code == 0 and (workdir / "x.h5").exists(), out
    # the side channel the refusal tests rely on does see a run's writes
    assert [lib.bench.writes > 0 for lib in benches().values() if tag in str(lib.library_path)] == [True]


@pytest.mark.parametrize("which", ["recipe", "station", "both"])
def test_a_utf8_bom_is_accepted(workdir: Path, capsys: pytest.CaptureFixture[str], which: str) -> None:
    recipe, station = write_files(workdir, None, f"bom-{next(_tags)}")
    for kind in ("recipe", "station") if which == "both" else (which,):
        path = workdir / f"{kind}.toml"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, out, _ = call(capsys, ["check", recipe, "--station", station])
    assert code == 0, out


def test_a_bom_recipe_runs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe, station = write_files(workdir, None, f"bom-run-{next(_tags)}")
    (workdir / "recipe.toml").write_bytes(b"\xef\xbb\xbf" + b'[[steps]]\nprotocol = "read"\ncells = [[0, 0]]\n')
    code, out, _ = call(capsys, ["run", recipe, "--station", station, "--out", "x.h5", "--quiet"])
    assert code == 0 and (workdir / "x.h5").exists(), out


def test_missing_files_are_named(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe, station = write_files(workdir, None, f"missing-{next(_tags)}")
    code, out, _ = call(capsys, ["check", "nosuch.toml", "--station", station])
    assert code == 2 and "nosuch.toml: no such recipe file" in out, out
    code, out, _ = call(capsys, ["check", recipe, "--station", "nostation.toml"])
    assert code == 2 and "nostation.toml: no such station file" in out, out


@pytest.mark.parametrize("rows", ["0-1000000", "0-100000000", "0-4294967295,0-4294967295"])
def test_huge_cell_ranges_are_refused_at_once_in_a_short_message(rows: str) -> None:
    from rramlab.protocols.base import ParameterError
    from rramlab.protocols.cells import parse_cells

    t0 = time.perf_counter()
    with pytest.raises(ParameterError) as e:
        parse_cells({"rows": rows}, 8, 8)
    assert time.perf_counter() - t0 < 0.1 and len(str(e.value)) < 200, str(e.value)


def test_every_parameter_is_declared_with_its_range() -> None:
    """Each protocol parameter is declared once (default, range or shape, unit, doc) and checked from that."""
    from dataclasses import fields

    from rramlab.protocols.catalog import PROTOCOLS

    for proto in PROTOCOLS.values():
        for f in fields(proto.Params):
            spec = f.metadata.get("spec")
            assert spec is not None and spec.doc, f"{proto.name}.{f.name} is not declared with param()"


@pytest.mark.parametrize("value", ["1.2", True, [1.2], {"v": 1.2}, float("nan"), float("inf"), -1.0, 0.0, 21.0])
def test_optional_gate_voltages_are_checked_in_every_protocol(value: object) -> None:
    from rramlab.protocols.base import ParameterError
    from rramlab.protocols.catalog import PROTOCOLS

    for name in ("pulse", "pulse_train", "program_verify", "endurance", "forming", "iv_sweep"):
        with pytest.raises(ParameterError, match="gate_voltage"):
            PROTOCOLS[name].from_mapping({"gate_voltage": value, "current_limit": 1e-3}
                                         if name in ("forming", "iv_sweep") else {"gate_voltage": value}, [(0, 0)])


def test_one_refusal_carries_every_finding(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """prepare() raises one PreflightError listing every envelope violation, each with its step."""
    recipe, station = write_files(workdir, None, f"all-{next(_tags)}")
    text = RECIPE.replace("acceptance = 0.02\n", "acceptance = 0.02\ngate_voltage = 5.0\n")
    (workdir / "recipe.toml").write_text(text.replace("width = 2.5e-6", "width = 0.01"))
    for command in (["check"], ["run", "--out", "x.h5", "--quiet"]):
        code, out, _ = call(capsys, [command[0], recipe, "--station", station, *command[1:]])
        assert code == 2 and "recipe.toml: recipe refused before any instrument write (station station.toml)" in out
        assert "steps[5] 'pv': gate_voltage = 5.0" in out and "steps[3] 'pulse': width = 0.01" in out, out


def test_work_that_depends_on_the_cell_count_is_bounded() -> None:
    from rramlab.protocols.base import ParameterError
    from rramlab.protocols.catalog import PROTOCOLS

    cells = [(k // 99, k % 99) for k in range(101)]
    with pytest.raises(ParameterError, match=r"rounds: 1000 rounds × 101 cells = 101000 programming events"):
        PROTOCOLS["program_verify"].from_mapping({"rounds": 1000}, cells)
    PROTOCOLS["program_verify"].from_mapping({"rounds": 990}, cells)
