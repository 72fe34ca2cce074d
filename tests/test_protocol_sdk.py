"""The protocol SDK: declared parameters drive the preflight, declared budgets equal what protocols do, typed
results pass between steps, installed packages add protocols by entry point, and the ``rramlab.testing`` plugin's
fixtures (used here as a user would) check the contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rramlab.protocols.base import ParameterError, Protocol
from rramlab.protocols.catalog import PROTOCOLS, ProtocolRegistryError, protocol_class
from rramlab.protocols.params import applied_values
from rramlab.protocols.results import Programmed, Results
from rramlab.testing import ContractError, run_step

CELLS = [(0, 0), (0, 1)]

# parameters that drive each protocol to its declared limits: every allowed pulse used, every unit reported
AT_LIMITS: dict[str, dict[str, Any]] = {
    "read": {"repeats": 3},
    "forming": {"current_limit": 1e-3, "contact_check": False, "v_stop": 2.0, "attempts": 2},   # nothing forms
    "iv_sweep": {"current_limit": 1e-3, "cycles": 2, "v_step": 0.1},
    "pulse": {"count": 5},
    "pulse_train": {"blocks": [[1, 3], [-1, 3]], "alternating_pairs": 2},
    # an acceptance no read can meet: every programming uses max_iterations after its reset_first pulses
    "program_verify": {"acceptance": 1e-5, "max_iterations": 5, "reset_first": 2, "rounds": 2,
                       "targets": [30e-6, 60e-6]},
    "retention": {"t_first": 1.0, "horizon": 100.0, "points_per_decade": 2},
    "endurance": {"cycles": 10, "pulses_per_half": 2, "points_per_decade": 2, "min_on_off": 1.0},
    "read_disturb": {"reads": 1000, "nplc": 0.01, "points_per_decade": 3},
    # 1 mS is out of any 1T1R cell's reach: every amplitude of the staircase up to v_stop is used
    "ispp": {"v_start": 0.8, "v_step": 0.05, "v_stop": 1.0, "targets": [1e-3]},
    "multilevel": {"levels": 2, "acceptance": 1e-5, "max_iterations": 3, "rounds": 2, "settle": 10.0},
}


def test_every_builtin_protocol_has_a_limit_case() -> None:
    assert set(AT_LIMITS) == set(PROTOCOLS)


@pytest.mark.parametrize("name", sorted(AT_LIMITS))
def test_declared_pulses_and_progress_equal_what_the_protocol_does(rramlab_run: Any, name: str) -> None:
    out = rramlab_run(name, AT_LIMITS[name], CELLS, form=name not in ("read", "forming"))
    assert out.units == out.units_declared > 0
    assert out.pulses == {c: n for c, n in out.pulses_declared.items() if n}      # every declared pulse, no more


def test_program_verify_reads_after_programming_and_retention_goes_on_from_there(rramlab_run: Any) -> None:
    results = Results()
    pv = rramlab_run("program_verify", {"acceptance": 0.02, "targets": [40e-6], "read_after": [1.0, 3.0, 10.0]},
                     CELLS, results=results, form=True)
    early = pv.tables["retention"]
    assert len(early) == 3 * len(CELLS)
    assert ((early["tau"] >= [1.0, 3.0, 10.0] * len(CELLS)) & (early["tau"] < [1.1, 3.1, 10.1] * len(CELLS))).all()
    programmed = results.get(Programmed)
    assert programmed is not None and programmed[CELLS[0]].read_until == 10.0 and programmed[CELLS[0]].converged
    ret = rramlab_run("retention", {"t_first": 1.0, "horizon": 1000.0, "points_per_decade": 1}, CELLS, results=results)
    # the schedule 1, 10, 100, 1000 s: 1 and 10 were read by the programming step, so 2 reads per cell remain
    assert ret.units == ret.units_declared == 2 * len(CELLS)
    assert sorted(ret.tables["retention"]["tau"].round(-1).unique()) == [100.0, 1000.0]
    assert ret.tables["retention"]["converged"].all() and (ret.tables["retention"]["acceptance"] == 0.02).all()


def test_the_contract_check_catches_a_protocol_that_lies(rramlab_station: Any) -> None:
    pulse = PROTOCOLS["pulse"]

    class Undercounted(pulse):          # type: ignore[misc, valid-type]
        name = "undercounted"

        def pulses_per_cell(self) -> dict[tuple[int, int], int]:
            return dict.fromkeys(self.cells, self.params.count - 1)

    with pytest.raises(ContractError, match="more pulses than pulses_per_cell"):
        run_step(rramlab_station, Undercounted, {"count": 2}, CELLS)


def test_declared_values_are_the_preflight(rramlab_station: Any) -> None:
    cls = PROTOCOLS["program_verify"]
    step = cls.from_mapping({"bands": [[0.0, 1.0, 4.5, -1.3]], "width": 2e-6, "gate_voltage": 9.0}, CELLS)
    found = {(v.parameter, v.value) for v in step.check(rramlab_station.envelope)}
    assert ("bands.v_set", 4.5) in found and ("gate_voltage", 9.0) in found
    assert ("bands.v_reset", -1.3) not in found
    assert {(n, k) for n, k, _ in applied_values(step.params)} == {
        ("width", "width"), ("gate_voltage", "word_line"), ("bands.v_set", "pulse"), ("bands.v_reset", "pulse")}


# -- a protocol from an installed package -------------------------------------------------------------------------

PACKAGE = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "ispp-custom"
        version = "0.1"
        [project.entry-points."rramlab.protocols"]
        ispp_custom = "ispp_custom:IsppCustom"
        [project.entry-points."rramlab.summaries"]
        ispp_custom = "ispp_custom:summary"
        [project.entry-points."rramlab.figures"]
        ispp_custom = "ispp_custom:figures"
        [tool.setuptools]
        py-modules = ["ispp_custom"]
    """,
    "ispp_custom.py": '''
        """A user's ISPP (the README's worked example): no hand-written check, no context dict."""
        from dataclasses import dataclass
        import numpy as np
        from rramlab.protocols.base import CELL_COLUMNS, CellDone, Protocol, Record
        from rramlab.protocols.params import ProtocolParams, param
        from rramlab.protocols.results import Programmed, ProgrammedCell

        @dataclass(frozen=True)
        class Params(ProtocolParams):
            v_start: float = param(0.9, 0.0, 10.0, "V", "first amplitude", applies="pulse")
            v_step: float = param(0.05, 0.001, 1.0, "V", "amplitude step")
            steps: int = param(10, 1, 100, doc="pulses per cell at most", integer=True)
            width: float = param(2.5e-6, 1e-9, 1e-3, "s", "pulse width", applies="width")
            target: float = param(60e-6, 1e-6, 1e-3, "S", "stop at this conductance")

        class IsppCustom(Protocol):
            name = "ispp_custom"
            Params = Params
            tables = {"ispp_custom": {**CELL_COLUMNS, "v": (np.float64, "V", "amplitude"),
                                      "g": (np.float64, "S", "read after the pulse")}}

            def pulses_per_cell(self):
                return dict.fromkeys(self.cells, self.params.steps)

            def run(self, station, results, resume=None):
                p, programmed = self.params, results.setdefault(Programmed)
                for key, (row, col) in self.pending(self.cells, resume):
                    for k in range(p.steps):
                        r = station.pulse_read(row, col, p.v_start + k * p.v_step, p.width)
                        yield Record("ispp_custom", {"row": row, "col": col, "v": p.v_start + k * p.v_step,
                                                     "g": r.conductance})
                        if r.conductance >= p.target:
                            break
                    programmed.record((row, col), ProgrammedCell(p.target, r.conductance, r.t,
                                                                 r.conductance >= p.target))
                    yield CellDone((row, col), key=key)
                station.release()

        def summary(tables):
            if "ispp_custom" not in tables:
                return None
            df = tables["ispp_custom"]
            return {"pulses": int(len(df)), "g_last_uS": float(df["g"].iloc[-1] * 1e6)}

        def figures(tables):
            from matplotlib.figure import Figure
            fig = Figure()
            df = tables["ispp_custom"]
            fig.add_subplot().plot(df["v"], df["g"] * 1e6, "o")
            return {"g_vs_v": fig}
    ''',
}

RECIPE = """
[recipe]
name = "ispp_custom"
[[steps]]
protocol = "forming"
cells = [[0, 0], [0, 1]]
[steps.params]
current_limit = 1e-3
fine_from = 2.6
[[steps]]
protocol = "ispp_custom"
cells = [[0, 0], [0, 1]]
[steps.params]
{params}
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The package built and installed (pip, into its own directory on PYTHONPATH) for subprocesses."""
    root = tmp_path_factory.mktemp("ispp_pkg")
    src, target = root / "src", root / "site"
    src.mkdir()
    for name, text in PACKAGE.items():
        (src / name).write_text(textwrap.dedent(text))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(target.glob("ispp_custom-0.1.dist-info/entry_points.txt"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    return env


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rramlab.protocols.entry", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_an_installed_package_adds_a_protocol_that_check_and_run_accept(installed: dict[str, str],
                                                                        tmp_path: Path) -> None:
    (tmp_path / "ok.toml").write_text(RECIPE.format(params="v_start = 0.9\nsteps = 6"))
    proc = cli(installed, tmp_path, "check", "ok.toml", "--station", "sim_2636b_707b")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli(installed, tmp_path, "run", "ok.toml", "--station", "sim_2636b_707b", "--out", "r.h5",
               "--json", "s.json", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["exit_status"] == "completed" and 2 <= s["ispp_custom"]["pulses"] <= 12       # the package's summary
    proc = cli(installed, tmp_path, "info", "r.h5")
    assert "ispp_custom" in proc.stdout
    proc = cli(installed, tmp_path, "report", "r.h5", "--figures", "figs")
    assert proc.returncode == 0 and (tmp_path / "figs" / "ispp_custom_g_vs_v.png").stat().st_size > 1000


def test_a_user_tests_the_package_protocol_in_three_lines(installed: dict[str, str], tmp_path: Path) -> None:
    """The README's three-line test, run by pytest with the plugin installed with rramlab (no conftest)."""
    (tmp_path / "test_mine.py").write_text(textwrap.dedent("""
        def test_ispp_custom(rramlab_run):
            out = rramlab_run("ispp_custom", {"v_start": 0.9}, cells=[(0, 0), (0, 1)], form=True)
            assert (out.tables["ispp_custom"]["g"] > 0).all()
    """))
    (tmp_path / "test_lies.py").write_text(textwrap.dedent("""
        def test_too_many_pulses(rramlab_run, monkeypatch):
            from ispp_custom import IsppCustom
            monkeypatch.setattr(IsppCustom, "pulses_per_cell", lambda self: dict.fromkeys(self.cells, 1))
            rramlab_run("ispp_custom", {"v_start": 0.9, "target": 1e-3}, cells=[(0, 0)], form=True)
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                           "-o", "addopts=", str(tmp_path)], cwd=tmp_path, env=installed, capture_output=True,
                          text=True, timeout=600)
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "ContractError: ispp_custom: cells received more pulses than pulses_per_cell() declares" in proc.stdout


@pytest.mark.parametrize(("params", "message"), [
    ("v_start = 5.0", "v_start = 5.0 not allowed"),                        # beyond the envelope, no check() written
    ("v_start = 11.0", "v_start must be within [0.0, 10.0] V"),            # beyond its declaration
    ('v_start = "1"', "write numbers without quotes"),
    ("v_stat = 1.0", "unknown parameter(s) 'v_stat'"),
    ("width = 0.01", "width must be within [1e-09, 0.001] s"),
])
def test_the_package_protocol_is_refused_from_its_declaration(installed: dict[str, str], tmp_path: Path,
                                                              params: str, message: str) -> None:
    (tmp_path / "bad.toml").write_text(RECIPE.format(params=params))
    proc = cli(installed, tmp_path, "check", "bad.toml", "--station", "sim_2636b_707b")
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_unknown_and_broken_protocols_are_named() -> None:
    with pytest.raises(ProtocolRegistryError, match="protocol 'nope' unknown; allowed: .*program_verify"):
        protocol_class("nope")
    with pytest.raises(ParameterError, match="unknown parameter"):
        PROTOCOLS["pulse"].from_mapping({"amplitud": 1.0}, CELLS)
    assert issubclass(protocol_class("retention"), Protocol)
