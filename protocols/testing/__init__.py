"""``rramlab.testing``: a pytest plugin (installed with rramlab, entry point ``pytest11``) to test protocols on a
seeded simulated bench, through the same drivers and station a lab uses::

    def test_my_ispp(rramlab_run):
        out = rramlab_run("ispp_custom", {"v_start": 0.9, "v_step": 0.05}, cells=[(0, 0), (0, 1)], form=True)
        assert (out.tables["ispp"]["g"] > 0).all()

Fixtures:

- ``rramlab_station``: an opened :class:`~rramlab.drivers.station.Station` on a fresh simulated bench (the
  default station file: a Keithley 2636B and 707B on an 8×8 die), seeded by ``--rramlab-seed`` (default 1) or a
  ``@pytest.mark.rramlab_bench("?seed=5&noise=0")`` marker; closed (outputs off, relays open) afterwards.
- ``rramlab_bench``: the simulated bench behind it (its ``clock``, ``model`` and ``events``), for assertions
  about what reached the device. Reached through pyvisa like any client, never by importing the simulator.
- ``rramlab_run``: ``(protocol, params, cells, *, results=None, form=False) -> ProtocolRun`` runs one step
  on ``rramlab_station`` and checks the protocol contract as it goes: the preflight accepts the step on the
  station's envelope; every record has exactly its table's declared columns; the progress units of the stop
  points add up to the declared total; no cell receives more pulses than declared.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

_tags = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rramlab-seed", type=int, default=1, help="seed of rramlab's simulated test benches")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rramlab_bench(query): bench query of the rramlab_station fixture, "
                                       "e.g. '?seed=5&noise=0' or a shipped bench name")


class ContractError(AssertionError):
    """A protocol did not do what it declared (columns, progress units, pulses per cell)."""


@dataclass
class ProtocolRun:
    """What one step did: its tables, the progress units its stop points reported against the declared total,
    and the pulses each cell received against the declared worst case."""

    tables: dict[str, pd.DataFrame]
    units: int
    units_declared: int
    pulses: dict[tuple[int, int], int]
    pulses_declared: dict[tuple[int, int], int]
    results: Any = None
    records: list[Any] = field(default_factory=list)


def _library(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("rramlab_bench")
    query = marker.args[0] if marker and marker.args else f"?seed={request.config.getoption('--rramlab-seed')}"
    query = query.removesuffix("@rramlab")
    tag = f"tag=rramlab-testing-{next(_tags)}"
    return f"{query}{'&' if '?' in query else '?'}{tag}@rramlab"


@pytest.fixture
def rramlab_station(request: pytest.FixtureRequest) -> Any:
    """An opened station on a fresh seeded simulated bench; safe state and closed afterwards."""
    from rramlab.drivers.station import Station

    st = Station.from_file(None, visa_library=_library(request))
    st.open()
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def rramlab_bench(rramlab_station: Any) -> Any:
    """The simulated bench behind ``rramlab_station`` (through its VISA session, as any pyvisa client)."""
    smu = next(iter(rramlab_station.instruments.values()))
    return smu.adapter.connection.visalib.bench


def run_step(station: Any, protocol: Any, params: dict[str, Any], cells: list[tuple[int, int]], *,
             results: Any = None) -> ProtocolRun:
    """Run one step of ``protocol`` (a name or a Protocol class) on ``station`` and check its contract."""
    from rramlab.protocols.base import CellDone, Record
    from rramlab.protocols.catalog import protocol_class
    from rramlab.protocols.preflight import preflight
    from rramlab.protocols.results import Results

    cls = protocol_class(protocol) if isinstance(protocol, str) else protocol
    step = cls.from_mapping(params, cells)
    preflight([step], station.envelope)
    results = Results() if results is None else results
    declared_units = step.units_given(results)
    declared_pulses = step.pulses_per_cell()
    before = Counter(station.pulses_per_cell)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in step.tables}
    units = 0
    records = []
    for event in step.run(station, results):
        if isinstance(event, Record):
            columns = set(step.tables.get(event.table, {}))
            if set(event.values) != columns:
                raise ContractError(f"{cls.name}: a {event.table!r} record has columns {sorted(event.values)}, "
                                    f"declared {sorted(columns)}")
            rows[event.table].append(event.values)
            records.append(event)
        elif isinstance(event, CellDone):
            units += event.work
        else:
            raise ContractError(f"{cls.name}: run() yielded {event!r}, neither a Record nor a CellDone")
    pulses = {cell: n - before.get(cell, 0) for cell, n in station.pulses_per_cell.items()
              if n - before.get(cell, 0) > 0}
    over = {cell: (n, declared_pulses.get(cell, 0)) for cell, n in pulses.items() if n > declared_pulses.get(cell, 0)}
    if over:
        raise ContractError(f"{cls.name}: cells received more pulses than pulses_per_cell() declares "
                            f"(received, declared): {over}")
    if units != declared_units:
        raise ContractError(f"{cls.name}: its stop points reported {units} progress units, units() declares "
                            f"{declared_units}")
    tables = {name: pd.DataFrame(r, columns=list(step.tables[name])) for name, r in rows.items()}
    return ProtocolRun(tables, units, declared_units, pulses, declared_pulses, results, records)


@pytest.fixture
def rramlab_run(rramlab_station: Any) -> Any:
    """``(protocol, params, cells, *, results=None, form=False)``: one step on ``rramlab_station``, contract
    checked (see :func:`run_step`); ``form=True`` forms the cells first (the paper's ramp, no contact check)."""
    def run(protocol: Any, params: dict[str, Any], cells: list[tuple[int, int]], *, results: Any = None,
            form: bool = False) -> ProtocolRun:
        if form:
            run_step(rramlab_station, "forming", {"current_limit": 1e-3, "contact_check": False, "fine_from": 2.6},
                     cells)
        return run_step(rramlab_station, protocol, params, cells, results=results)

    return run
