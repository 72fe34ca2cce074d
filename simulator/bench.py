"""A simulated bench: instruments at VISA addresses, wired through a matrix to a ReRAM die.

One bench per VISA library object. Everything random draws from the bench's single seeded
``numpy.random.Generator``; with the same config, seed and message sequence every reply is
byte-identical. ``Bench`` is the tests' side channel (faults, ground truth, transcript, events);
protocols and drivers only ever see VISA messages.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bench_config import BenchConfig, load_bench_config
from .clock import VirtualClock
from .controller import BenchController
from .device_model import ArrayModel, ThermalHistory
from .device_params import ZERO_CELSIUS, DeviceParameters
from .electrical import Circuit
from .events import EventLog, Transcript
from .faults import FaultPlan
from .instrument import EmulatedInstrument
from .models import emulator_class
from .timing import TimingModel
from .wafer import Wafer

if TYPE_CHECKING:
    from .faults import Fault

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("rramlab")
    except Exception:  # pragma: no cover - running from a source tree
        return "0.0.0"


class Bench:
    """The whole simulated bench (see module docstring)."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.name = config.name
        self.seed = config.seed
        self.epoch = config.epoch            # UTC epoch (s) of simulated t = 0
        self.noise = config.noise
        self.clock = VirtualClock()
        self.timing = TimingModel(line_frequency=config.line_frequency, **config.timing)
        self.rng = np.random.default_rng(config.seed)
        self.events = EventLog()
        self.transcript = Transcript(config.transcript)
        self.faults = FaultPlan()
        self.internal_errors: list[str] = []
        self.writes = 0
        self.params = DeviceParameters.profile(config.profile).with_overrides(**config.device_overrides)
        # the chuck's temperature history, kelvin from here on (the bench file gives °C); every die shares it
        self.thermal = ThermalHistory(self.params.temperature_ref, self.params.relax_activation_energy,
                                      config.temperature_c + ZERO_CELSIUS)
        self.model = ArrayModel(config.rows, config.cols, self.params, self.rng, noise=config.noise,
                                thermal=self.thermal)
        row_terminals = {(i.name, row): term for i in config.instruments for row, term in i.rows.items()}
        column_pads = {(i.name, slot, col): pad for i in config.instruments
                       for (slot, col), pad in i.columns.items()}
        pads = config.pads()
        self.circuit = Circuit(self, self.model, pads, len(pads), row_terminals, column_pads,
                               sl_by_row=config.source_lines == "rows")
        self.wafer = Wafer(self, config.wafer) if config.wafer is not None else None
        if self.wafer is not None:
            self.circuit.connected = False         # a wafer under a prober: nothing touched until contact
        self.instruments: dict[str, EmulatedInstrument] = {}
        self.by_name: dict[str, EmulatedInstrument] = {}
        for ic in config.instruments:
            inst: EmulatedInstrument = emulator_class(ic.model)(self, ic)
            self.instruments[ic.resource] = inst
            self.by_name[ic.name] = inst
        self.controller = BenchController(self, config.controller, _version())
        self.instruments[config.controller] = self.controller
        self.by_name["controller"] = self.controller
        self.circuit.changed()
        log_path = os.environ.get("RRAMLAB_BENCH_LOG")
        if log_path:  # for tests that run a whole process on the bench (e.g. Ctrl-C of `rramlab demo`)
            atexit.register(self.dump_log, Path(log_path))
        counts_path = os.environ.get("RRAMLAB_BENCH_COUNTS")
        if counts_path:  # for benchmarks: the traffic counts only (the event log's JSON would cost memory)
            atexit.register(self.dump_counts, Path(counts_path))

    # ------------------------------------------------------------------ temperature (the chuck)
    def temperature_k(self) -> float:
        """Die temperature now (K)."""
        return self.thermal.temperature(self.clock.now)

    def temperature_c(self) -> float:
        """Die temperature now (°C)."""
        return self.temperature_k() - ZERO_CELSIUS

    def set_temperature_c(self, t_c: float, at: float | None = None) -> None:
        """The die is at ``t_c`` °C from virtual time ``at`` (s; default now) on: a prober's chuck reaching a
        set-point. The relaxation of every cell continues on the Arrhenius clock (device_model.py, "Temperature")."""
        self.thermal.set(float(t_c) + ZERO_CELSIUS, self.clock.now if at is None else at)

    def set_temperature_source(self, source_c: Callable[[float], float] | None, at: float | None = None) -> None:
        """From ``at`` (s; default now) on the die follows ``source_c(t)`` (°C at virtual time t s), e.g. a chuck's
        ramp; the model samples it whenever it integrates. None holds the temperature reached. Call it again, with a
        new function, before the chuck's law changes (a new set-point): the old one is integrated up to ``at`` first
        (:meth:`~.device_model.ThermalHistory.set_source`)."""
        src = None if source_c is None else (lambda t: float(source_c(t)) + ZERO_CELSIUS)
        self.thermal.set_source(src, self.clock.now if at is None else at)

    def state(self) -> dict[str, object]:
        """Outputs and closed relays now (for logs and tests)."""
        return {"time": self.clock.now,
                "outputs": {n: {"output": s.output, "levelv": s.levelv} for n, s in self.circuit.sources.items()},
                "closed": {n: sorted(f"{p[0]}{p[1]}{p[2]:02d}" for p in pts) for n, pts in self.circuit.closed.items()}}

    def prober_state(self, name: str | None = None) -> Any:
        """The state of the bench's wafer prober (``name``, or the only one): die (column, row, site), contact,
        chuck temperature (°C) — a :class:`~.sentio.ProberState`; None when the bench has no prober."""
        probers = {n: i for n, i in self.by_name.items() if getattr(i, "KIND", "") == "prober"}
        if name is not None:
            return probers[name].state()  # type: ignore[attr-defined]
        return next(iter(probers.values())).state() if probers else None  # type: ignore[attr-defined]

    @contextmanager
    def acting_for(self, client: int) -> Iterator[None]:
        """Attribute transcript entries and events to ``client`` (a pid; 0 = the owner process) meanwhile."""
        prev = self.events.client
        self.events.client = self.transcript.client = client
        try:
            yield
        finally:
            self.events.client = self.transcript.client = prev

    def dump_log(self, path: Path) -> None:
        """Write the event log and the final state as JSON."""
        events = [{"time": e.time, "source": e.source, "kind": e.kind, "client": e.client,
                   "details": {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else str(v))
                               for k, v in e.details.items()}} for e in self.events.events]
        path.write_text(json.dumps({"bench": self.name, "events": events, "final": self.state(),
                                    "internal_errors": self.internal_errors}, default=str))

    def dump_counts(self, path: Path) -> None:
        """Write the host writes (VISA transactions) the bench received and its events per kind as JSON."""
        path.write_text(json.dumps({"bench": self.name, "writes": self.writes, "events": dict(self.events.counts)}))

    @classmethod
    def from_spec(cls, spec: str = "") -> Bench:
        """Build from a VISA library path (see :func:`load_bench_config`)."""
        return cls(load_bench_config(spec))

    # ------------------------------------------------------------------ traffic
    def write(self, resource: str, data: bytes) -> None:
        """A host write to ``resource`` (transaction numbers count every write, from 1)."""
        self.writes += 1
        inst = self.instruments[resource]
        self.transcript.add(self.clock.now, resource, "write", data)
        faults = self.faults.firing(self.writes, resource, data.decode("latin-1")) if self.faults.faults else []
        for f in faults:
            self.events.add(self.clock.now, inst.name, "fault", fault=f.kind, write=self.writes)
        inst.receive(data, faults)

    def read(self, resource: str) -> bytes | None:
        """The next reply of ``resource`` readable now, or None."""
        msg = self.instruments[resource].fetch()
        if msg is not None:
            self.transcript.add(self.clock.now, resource, "read", msg)
        return msg

    # ------------------------------------------------------------- side channel
    def apply_fault(self, fault: Fault, instrument: EmulatedInstrument) -> None:
        """Device- and bench-level faults that the instrument itself does not handle."""
        if fault.kind == "stuck_cells":
            cells = np.asarray(fault.params.get("cells", []), dtype=np.int64)
            self.model.set_stuck(cells, str(fault.params.get("state", "lrs")), self.clock.now)
        elif fault.kind == "no_compliance":
            own = [n for n in self.circuit.sources if n.startswith(f"{instrument.name}.")]
            channel = fault.params.get("channel")
            name = f"{instrument.name}.{channel}" if channel is not None else (own[0] if own else "")
            if name in self.circuit.sources:
                self.circuit.sources[name].limit_applied = False
        self.events.add(self.clock.now, instrument.name, "fault_applied", fault=fault.kind)

    def internal_error(self, source: str, what: str, exc: BaseException) -> None:
        """An emulator bug: recorded (tests assert there are none), never leaked to the session."""
        text = f"{source}: {what}: {type(exc).__name__}: {exc}"
        log.error("rramlab simulator internal error: %s", text, exc_info=exc)
        self.internal_errors.append(text)
