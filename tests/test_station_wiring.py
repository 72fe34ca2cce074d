"""Station files for any bench: wiring validated against each matrix's geometry, routing across mainframes,
one bench per simulated station, the contact check, drivers by entry point, and a station free of vendors."""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pyvisa import highlevel

from rramlab.drivers.array_wiring import LinePort
from rramlab.drivers.registry import BUILTIN, driver_class
from rramlab.drivers.roles import Crosspoint
from rramlab.drivers.station import ContactError, Station, StationMismatch
from rramlab.drivers.station_config import (
    StationConfigError,
    example_station_text,
    example_stations,
    load_station_config,
    parse_station_config,
)
from rramlab.protocols.cli import main
from rramlab.protocols.recipe import parse_recipe
from rramlab.protocols.runner import run_recipe
from rramlab.simulator.visa_library import RramlabVisaLibrary

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
_tags = itertools.count()
SIMULATED = ["sim_2636b_707b", "sim_2450x2_b2200a", "sim_b2902a_e5250a", "sim_64x64_2636b_3x707b",
             "sim_2636b_707b_sentio", "sim_2636b_707b_tsplink"]
TSPLINK = ["sim_2636b_707b_tsplink", "sim_64x64_2636b_3x707b"]     # matrices reached as TSP-Link nodes of the SMU


def benches() -> set[object]:
    return {k for k, lib in highlevel.VisaLibraryBase._registry.items() if isinstance(lib, RramlabVisaLibrary)}


def tagged(text: str, bench: str) -> str:
    """A station text on a fresh copy of its shipped bench (a unique library path)."""
    return text.replace(f'visa_library = "{bench}@rramlab"', f'visa_library = "{bench}?tag=w{next(_tags)}@rramlab"')


# ----------------------------------------------------------------------------------------- loading
def test_every_shipped_station_is_paired_with_its_shipped_bench() -> None:
    from rramlab.simulator.bench_config import shipped_benches

    assert sorted(example_stations()) == sorted(["lab_2636b_707b", *SIMULATED])
    assert sorted(f"sim_{b}" for b in shipped_benches()) == sorted(SIMULATED)
    for name in SIMULATED:
        config = load_station_config(EXAMPLES / f"{name}.toml")
        assert {e.visa_library for e in config.instruments.values()} == {f"{name[4:]}@rramlab"}
        assert all((e.tsplink is not None) == (name in TSPLINK and e.driver == "keithley707b")
                   for e in config.instruments.values())
        assert load_station_config(name) == dataclasses.replace(config, source=f"{name}.toml")   # by name too


def test_stations_lists_every_shipped_station_by_name(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["stations"]) == 0
    out = capsys.readouterr().out
    for name in ["lab_2636b_707b", *SIMULATED]:
        assert name in out
    assert "keysight_e5250a" in out and "64x64" in out


def test_the_64x64_die_spans_three_mainframes_and_sixteen_cards() -> None:
    config = load_station_config(EXAMPLES / "sim_64x64_2636b_3x707b.toml")
    ports = config.wiring.array.ports
    assert [len(ports[k]) for k in ("WL", "BL", "SL")] == [64, 64, 64]
    cards = {(p.matrix, p.card) for line in ports.values() for p in line}
    assert len(cards) == 16 and {m for m, _ in cards} == {"mf1", "mf2", "mf3"}
    assert ports["WL"][63] == LinePort("mf1", 6, 4) and ports["BL"][0] == LinePort("mf1", 6, 5)
    assert ports["SL"][63] == LinePort("mf3", 4, 12)
    # the far corner: gate on mf1 (row B), bit line on mf2 (row A), source line on mf3 (row C)
    assert config.wiring.array.cell_points(63, 63) == {
        "mf1": {Crosspoint(6, 2, 4)}, "mf2": {Crosspoint(5, 1, 8)}, "mf3": {Crosspoint(4, 3, 12)}}


CHECK_REFUSALS = [
    # (station, edit old → new, what the message must name)
    ("sim_2636b_707b", ('WL = "matrix:1:1-8"', 'WL = "matrix:1:9-16"'),
     "wiring.lines.WL: columns 9-16 on the 7174A in matrix slot 1; allowed: 1-12"),
    ("sim_2636b_707b", ('SL = "matrix:3:1-8"', 'SL = "matrix:4:1-8"'),
     "wiring.lines.SL: matrix has no card in slot 4; cards are in slots [1, 2, 3]"),
    ("sim_2636b_707b", ('SL = "matrix:3:1-8"', 'SL = "matrix:2:1-8"'),
     "wiring.lines.SL: SL1 and BL1 share matrix card 2 column 1"),
    ("sim_2636b_707b", ('cards = { 1 = "7174A", 2 = "7174A", 3 = "7174A" }', 'cards = { 1 = "7174A", 7 = "7174A" }'),
     "instruments.matrix.cards: slot '7' does not exist; allowed: [1, 2, 3, 4, 5, 6]"),
    ("sim_2636b_707b", ('ground = "C"', 'ground = "J"'), "wiring.rows.matrix.ground: row 'J' is not a row"),
    ("sim_2450x2_b2200a", ('SL = "switch:2:5-12"', 'SL = "switch:2:6-13"'),
     "wiring.lines.SL: columns 6-13 on the B2210A in switch slot 2; allowed: 1-12"),
    ("sim_2450x2_b2200a", ('BL = ["switch:1:9-12", "switch:2:1-4"]', 'BL = ["switch:1:9-12", "switch:2:1-3"]'),
     "wiring.lines.BL: 7 columns for the array's 8 BL lines"),
    ("sim_b2902a_e5250a", ('ground = "3"', 'ground = "11"'), "wiring.rows.switch.ground: row '11' is not a row"),
    ("sim_b2902a_e5250a", ('bit_line = "smu.1"', 'bit_line = "smu.3"'), "wiring.bit_line: 'smu.3' is not an SMU"),
    ("sim_b2902a_e5250a", ("min_pulse_width = 50e-6", "min_pulse_width = 1e-6"),
     "safety.min_pulse_width: must be within [5e-05, 1.0] s (the bit-line SMU's shortest pulse)"),
    ("sim_64x64_2636b_3x707b", ('"mf3:4:1-12"]', '"mf3:5:1-12"]'), "wiring.lines.SL[5]: mf3 has no card in slot 5"),
    ("sim_2636b_707b", ('driver = "keithley707b"', 'driver = "keithley7001"'),
     "instruments.matrix.driver: driver 'keithley7001' is not registered"),
]


@pytest.mark.parametrize("station, edit, message", CHECK_REFUSALS, ids=[m.split(":")[0] + f"-{i}"
                                                                       for i, (_, _, m) in enumerate(CHECK_REFUSALS)])
def test_check_refuses_wiring_the_instruments_cannot_have_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, station: str,
        edit: tuple[str, str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    text = example_station_text(station)
    assert edit[0] in text
    (tmp_path / "st.toml").write_text(text.replace(*edit))
    (tmp_path / "r.toml").write_text('[recipe]\nname = "r"\n[[steps]]\nprotocol = "read"\ncells = "all"\n')
    before = benches()
    code = main(["check", "r.toml", "--station", "st.toml"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2 and "Traceback" not in out, out
    assert f"st.toml: {message}" in out, out
    assert benches() - before == set()                       # refused before any VISA session: nothing sent


def test_a_simulated_station_on_two_benches_is_refused_when_loaded() -> None:
    text = example_station_text("sim_2636b_707b")
    smu_only = text.replace('visa_library = "2636b_707b@rramlab"', 'visa_library = "2636b_707b?seed=7@rramlab"', 1)
    with pytest.raises(StationConfigError, match=r"instruments.matrix.visa_library: '2636b_707b@rramlab' is not the "
                       r"simulated bench of instruments.smu \('2636b_707b\?seed=7@rramlab'\)"):
        parse_station_config(smu_only)
    half_real = text.replace('visa_library = "2636b_707b@rramlab"', 'visa_library = ""', 1)
    with pytest.raises(StationConfigError, match="instruments.smu.visa_library: '' is not the simulated bench"):
        parse_station_config(half_real)


def test_a_station_split_over_two_benches_at_run_time_is_refused_at_open() -> None:
    """The file was fine; the libraries given at run time are not one bench: open() refuses before any write."""
    config = load_station_config("sim_2636b_707b")
    lib = {n: f"2636b_707b?tag=split{next(_tags)}{'&seed=7' if n == 'smu' else ''}@rramlab" for n in config.instruments}
    config = dataclasses.replace(config, instruments={
        n: dataclasses.replace(e, visa_library=lib[n]) for n, e in config.instruments.items()})
    st = Station(config)
    try:
        with pytest.raises(StationMismatch, match="the instruments are not on one bench"):
            st.open()
        for name in config.instruments:
            assert st.instruments[name].adapter.connection.visalib.bench.writes == 0
    finally:
        st.close()


def test_contact_check_stops_forming_when_nothing_is_connected(tmp_path: Path) -> None:
    """The station file puts the terminals on matrix rows D-F, which the bench leaves unwired: every line floats.
    The forming step reads a few cells at low bias, finds nothing and stops before its first ramp."""
    text = tagged(example_station_text("sim_2636b_707b"), "2636b_707b")
    text = text.replace('{ bit_line = "A", word_line = "B", ground = "C" }', '{ bit_line = "D", word_line = "E", '
                        'ground = "F" }')
    st = Station(parse_station_config(text))
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    recipe = parse_recipe('[recipe]\nname = "f"\n[[steps]]\nprotocol = "forming"\n'
                          'cells = { rows = "0-3", cols = "0-3" }\n[steps.params]\ncurrent_limit = 1e-3\n')
    with pytest.raises(ContactError, match=r"no contact: every checked cell reads below 1e-11 A at 0.1 V \(\(0, 0\)"):
        run_recipe(st, recipe, tmp_path / "run.h5")
    writes = [e.data.decode() for e in bench.transcript.entries if e.direction == "write"]
    assert not any("source.compliance" in w for w in writes)            # no staircase point was sent
    read_level = r"smua\.source\.levelv = ([-0-9.e]+) (?:print\(smua\.measure|local i)"
    levels = [float(v) for w in writes for v in re.findall(read_level, w)]
    assert levels == [0.1] * 4                                          # four reads at the contact voltage
    assert all(s.output == 0 for s in bench.circuit.sources.values()) and not any(bench.circuit.closed.values())


def test_forming_staircase_holds_its_level_between_points() -> None:
    """Each staircase point moves the bit line from the last level to the next: no dip to 0 V between points
    (the 2600B manual: smuX.source.levelv sets the level the output holds)."""
    st = Station.from_file("sim_2636b_707b", visa_library=f"2636b_707b?tag=stair{next(_tags)}@rramlab")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    first = len(bench.transcript.entries)
    for v in (0.5, 0.51, 0.52, 0.53):
        st.dc_point(0, 0, v, gate_voltage=1.2, current_limit=1e-3, nplc=1.0)
    writes = [e.data.decode() for e in bench.transcript.entries[first:] if e.direction == "write"]
    bl = [float(v) for w in writes for v in re.findall(r"smua\.source\.levelv = ([-0-9.e]+)", w)]
    assert bl == [0.0, 0.5, 0.51, 0.52, 0.53]          # on at 0 V once, then point after point, never back to 0
    assert sum("smua.source.output = smua.OUTPUT_ON" in w for w in writes) == 1
    st.close()


@pytest.mark.parametrize("station", ["sim_2450x2_b2200a", "sim_b2902a_e5250a", "sim_64x64_2636b_3x707b"])
def test_routing_breaks_before_it_makes_and_reads_back_on_every_family(station: str) -> None:
    config = load_station_config(station)
    bench_name = station[4:]
    st = Station(config, visa_library=f"{bench_name}?tag=route{next(_tags)}@rramlab")
    st.open()
    bench = next(iter(st.instruments.values())).adapter.connection.visalib.bench
    corners = [(0, 0), (0, config.cols - 1), (config.rows - 1, 0), (config.rows - 1, config.cols - 1)]
    for r, c in corners:
        st.connect(r, c)
        want = config.wiring.array.cell_points(r, c)
        for name in st.matrices:
            got = {Crosspoint(p[0], int(p[1]) if p[1].isdigit() else ord(p[1]) - 64, p[2])
                   for p in bench.circuit.closed.get(name, frozenset())}
            assert got == set(want.get(name, frozenset())), (r, c, name)
        cell = r * config.cols + c
        assert int(bench.circuit.idx.size) == 1 and int(bench.circuit.idx[0]) == cell     # exactly that cell
    events = [e for e in bench.events.events if e.kind == "hot_switch"]
    assert events == []                                                 # sources off while relays move
    st.close()
    assert not any(bench.circuit.closed.values())


# ------------------------------------------------------------------------------ vendor-free station
def test_station_and_protocols_name_no_vendor_class_or_command() -> None:
    """The station, its config, the array model and every protocol go by role: no driver class name, no vendor
    name, no instrument command text, no isinstance on a driver."""
    classes = {target.partition(":")[2] for target in BUILTIN.values()}
    commands = ["smua", "smub", "errorqueue", "channel.close", "channel.open", "exclusiveclose", "getclose",
                ":ROUT", ":SOUR", ":SENS", ":MEAS", ":OUTP", ":SYST", "print(", "*ESR", "nvbuffer", "trigger.timer"]
    vendors = ["Keithley", "Keysight", "Agilent", "Tektronix"]
    files = [ROOT / "drivers" / n for n in ("station.py", "station_config.py", "array_wiring.py")]
    files += sorted((ROOT / "protocols").glob("*.py"))
    hits = []
    for f in files:
        for k, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for word in [*classes, *vendors]:
                if re.search(rf"\b{word}\b", line):
                    hits.append(f"{f.name}:{k}: {word}")
            for cmd in commands:
                if cmd in code.replace("console.print(", "").replace(".print(", ""):
                    hits.append(f"{f.name}:{k}: {cmd}")
            if re.search(r"isinstance\([^)]*(inst|driver|matrix|smu|channel)", code):
                hits.append(f"{f.name}:{k}: isinstance on a driver")
    assert hits == []


# --------------------------------------------------------------------------- drivers by entry point
PLUGIN = '''
"""A lab's own driver package: a 2636B subclass that leaves a mark when the station builds it."""
import os
from pathlib import Path
from rramlab.drivers.keithley2636b import Keithley2636B


class AcmeSMU(Keithley2636B):
    def __init__(self, adapter, name="acme", **kwargs):
        super().__init__(adapter, name, **kwargs)
        Path(os.environ["ACME_MARK"]).write_text(f"{name} built by the station")
'''


@pytest.mark.slow
def test_a_separately_installed_package_adds_a_driver_that_a_station_uses_by_name(tmp_path: Path) -> None:
    pkg = tmp_path / "acme"
    pkg.mkdir()
    (pkg / "acme_rramlab.py").write_text(PLUGIN)
    (pkg / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "acme-rramlab"
        version = "1.0"
        [project.entry-points."rramlab.drivers"]
        acme_smu = "acme_rramlab:AcmeSMU"
        [tool.setuptools]
        py-modules = ["acme_rramlab"]
        '''))
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                            "--target", str(site), str(pkg)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    station = example_station_text("sim_2636b_707b").replace('driver = "keithley2636b"', 'driver = "acme_smu"')
    (tmp_path / "st.toml").write_text(station)
    (tmp_path / "r.toml").write_text('[recipe]\nname = "r"\n[[steps]]\nprotocol = "read"\ncells = { rows = "0", '
                                     'cols = "0-1" }\n')
    env = dict(os.environ, PYTHONPATH=str(site), ACME_MARK=str(tmp_path / "mark"),
               RRAMLAB_LOCK_DIR=str(tmp_path / "locks"))
    run = subprocess.run([sys.executable, "-c", "import sys; from rramlab.protocols.entry import main; "
                          "sys.exit(main())", "run", "r.toml", "--station", "st.toml", "--out", "o.h5", "--quiet"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "mark").read_text() == "smu built by the station"
    without = subprocess.run([sys.executable, "-c", "import sys; from rramlab.protocols.entry import main; "
                              "sys.exit(main())", "check", "r.toml", "--station", "st.toml"],
                             cwd=tmp_path, env=dict(env, PYTHONPATH=""), capture_output=True, text=True, timeout=300)
    assert without.returncode == 2
    assert "instruments.smu.driver: driver 'acme_smu' is not registered" in " ".join(without.stdout.split())


def test_registry_refuses_a_class_that_declares_no_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    from rramlab.drivers import registry

    monkeypatch.setitem(registry.BUILTIN, "bare", "rramlab.drivers.errors:InstrumentError")
    registry._targets.cache_clear()
    registry.driver_class.cache_clear()
    try:
        with pytest.raises(registry.RegistryError, match="must declare ROLES"):
            driver_class("bare")
    finally:
        registry._targets.cache_clear()
        registry.driver_class.cache_clear()


# ------------------------------------------------------------------------------- review regressions
def test_safe_state_opens_the_relays_whatever_a_driver_calls_itself() -> None:
    """The station knows a channel's instrument by identity, not by parsing the driver's own name."""
    st = Station.from_file("sim_2636b_707b", visa_library=f"2636b_707b?tag=name{next(_tags)}@rramlab")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    st.read(0, 0)
    st.instruments["smu"].name = "Keithley 2636B SN 4428182"          # a driver free to name itself
    assert st.safe_state() == []
    assert not any(bench.circuit.closed.values()) and all(s.output == 0 for s in bench.circuit.sources.values())
    st.close()


def test_a_gate_or_limit_change_inside_a_staircase_first_brings_the_bit_line_to_0_v() -> None:
    st = Station.from_file("sim_2636b_707b", visa_library=f"2636b_707b?tag=gate{next(_tags)}@rramlab")
    st.open()
    bench = st.instruments["smu"].adapter.connection.visalib.bench
    st.dc_point(0, 0, 1.0, gate_voltage=1.2, current_limit=1e-4, nplc=1.0)
    first = len(bench.transcript.entries)
    st.dc_point(0, 0, -0.1, gate_voltage=3.3, current_limit=1e-3, nplc=1.0)
    writes = " | ".join(e.data.decode().strip() for e in bench.transcript.entries[first:] if e.direction == "write")
    order = [writes.index(s) for s in ("smua.source.levelv = 0.0", "smub.source.levelv = 3.3",
                                       "smua.source.limiti = 0.001", "smua.source.levelv = -0.1")]
    assert order == sorted(order), writes
    st.close()


@pytest.mark.parametrize("station, width, amplitude", [("sim_2636b_707b", 2.5e-6, 1.5),
                                                       ("sim_2450x2_b2200a", 300e-6, 1.165),
                                                       ("sim_b2902a_e5250a", 300e-6, 1.165)])
def test_a_pulse_lasts_its_width_on_the_virtual_clock(station: str, width: float, amplitude: float) -> None:
    """The array sees the pulse amplitude for the requested width (within 2 µs), on every SMU family."""
    st = Station.from_file(station, visa_library=f"{station[4:]}?tag=width{next(_tags)}@rramlab")
    st.open()
    bench = next(iter(st.instruments.values())).adapter.connection.visalib.bench
    seen: list[tuple[float, float]] = []
    real, real_one = bench.model.apply_bias, bench.model.apply_bias_one

    def spy(idx, v_applied, v_gate, duration, t_end, **kw):  # noqa: ANN001, ANN003, ANN202 - test hook
        seen.extend((float(v), duration) for v in np.atleast_1d(v_applied))
        return real(idx, v_applied, v_gate, duration, t_end, **kw)

    def spy_one(i, v_applied, v_gate, duration, t_end, **kw):  # noqa: ANN001, ANN003, ANN202 - test hook
        seen.append((float(v_applied), duration))
        return real_one(i, v_applied, v_gate, duration, t_end, **kw)

    bench.model.apply_bias, bench.model.apply_bias_one = spy, spy_one
    st.pulse(0, 0, amplitude, width, gate_voltage=1.2)
    at_amplitude = sum(d for v, d in seen if abs(v - amplitude) < 1e-6)
    assert abs(at_amplitude - width) < 2e-6, seen
    st.close()


def test_check_refuses_an_integration_time_the_bit_line_smu_cannot_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text('[recipe]\nname = "r"\n[[steps]]\nprotocol = "read"\ncells = "all"\n'
                                     '[steps.params]\nnplc = 20\n')
    code = main(["check", "r.toml", "--station", "sim_2450x2_b2200a"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2 and "nplc = 20 not allowed (within [0.01, 10.0] PLC (the bit-line SMU's integration range))" \
        in out, out


def test_the_one_channel_b2901a_is_registered_and_never_addresses_channel_2() -> None:
    from pymeasure.test import expected_protocol

    cls = driver_class("keysight_b2901a")
    assert cls.SMU.channels == ("1",)
    # B2900 SCPI Command Reference: :OUTPut[c][:STATe], :ABORt:ALL (@list), :SOURce[c]:FUNCtion:SHAPe,
    # :SOURce[c]:VOLTage, :SOURce[c]:CURRent — channel 1 only on a one-channel B2901A
    with expected_protocol(cls, [(":OUTP1 OFF", None), (":ABOR (@1)", None),
                                 (":SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:SOUR1:CURR 0", None)]) as smu:
        smu.shutdown()
        with pytest.raises(ValueError, match="channel must be one of '1'"):
            smu.channel("2")
    text = example_station_text("sim_b2902a_e5250a").replace('driver = "keysight_b2900"', 'driver = "keysight_b2901a"')
    with pytest.raises(StationConfigError, match=r"wiring.word_line: 'smu.2' is not an SMU channel; allowed: "
                       r"\['smu.1'\]"):
        parse_station_config(text)
