"""Shared fixtures: a fresh, independent simulated bench per test, reached through pyvisa."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import pyvisa

if TYPE_CHECKING:
    from rramlab.simulator.server import BenchServerProcess

_tags = itertools.count()

SMU = "GPIB0::26::INSTR"
MATRIX = "GPIB0::16::INSTR"
CONTROLLER = "TCPIP0::rramlab-bench::inst0::INSTR"


def fresh_spec(query: str = "") -> str:
    """A VISA library path naming a brand-new default bench (optionally with overrides)."""
    extra = f"&{query}" if query else ""
    return f"?tag=t{next(_tags)}{extra}@rramlab"


def open_rm(query: str = "") -> pyvisa.ResourceManager:
    return pyvisa.ResourceManager(fresh_spec(query))


@pytest.fixture
def rm() -> Iterator[pyvisa.ResourceManager]:
    manager = open_rm()
    yield manager
    manager.close()


@pytest.fixture
def bench_server() -> Iterator[BenchServerProcess]:
    """A started bench server subprocess (default bench, unix socket); ``.library`` is its pyvisa library."""
    from rramlab.simulator.server import BenchServerProcess

    with BenchServerProcess() as server:
        yield server


def bench_of(manager: pyvisa.ResourceManager):  # noqa: ANN201 - test side channel
    """The simulated bench behind a resource manager (tests only)."""
    return manager.visalib.bench


def writes(bench: Any) -> list[str]:
    """Every command written to the bench, terminations removed."""
    return [w.decode().removesuffix("\n") for w in bench.transcript.writes()]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--visa-address", action="append", default=[],
                     help="NAME=VISA address of real hardware for tier-4 tests (never simulated)")
    parser.addoption("--visa-library", default="", help="VISA library for hardware tests (default: system)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--visa-address"):
        return
    skip = pytest.mark.skip(reason="hardware test: give --visa-address NAME=ADDRESS to run it")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
