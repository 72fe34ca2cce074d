"""Emulator registry: instrument models the simulated bench can place at a VISA address.

An emulator class registers under one or more model names (``@emulator("B2901A", "B2902A")``) and
declares what the bench file may say about it:

* ``KIND = "smu"``: ``CHANNELS`` (channel ids; terminal names are ``<instrument>.<channel>``);
* ``KIND = "matrix"``: ``SLOTS`` (card numbers of the mainframe) and ``CARDS`` (card model →
  :class:`CardShape`: rows, columns, row names as the bench file writes them).
* ``KIND = "prober"``: ``OPTIONS`` (the bench-file tables it takes, e.g. ``map``, ``chuck``) and a
  classmethod ``options(table, where)`` validating them (ValueError naming the key); the bench asks a prober
  for its state with ``state()`` (:meth:`~.bench.Bench.prober_state`).

Emulators are built as ``cls(bench, config)`` with the instrument's
:class:`~.bench_config.InstrumentConfig`; they use the bench's services (``bench.clock``,
``bench.timing``, ``bench.circuit``, ``bench.rng``, ``bench.events``) and never reach into other
instruments. Matrix emulators report their closed crosspoints as ``(card, row name, column)`` through
``bench.circuit.set_closed(name, frozenset(...))``; SMU emulators register one
:class:`~.electrical.SourceState` per channel with ``bench.circuit.register_source``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

_MODULES = ("rramlab.simulator.tsp.keithley2636b", "rramlab.simulator.tsp.keithley707b",
            "rramlab.simulator.scpi.keithley2450", "rramlab.simulator.scpi.keysight_b2900",
            "rramlab.simulator.scpi.keysight_b2200a", "rramlab.simulator.scpi.keysight_e5250a",
            "rramlab.simulator.sentio")

_REGISTRY: dict[str, type] = {}
_loaded = False


@dataclass(frozen=True)
class CardShape:
    """A matrix card: ``rows`` inputs × ``columns`` outputs; ``row_names[i]`` names row i + 1."""

    description: str
    rows: int
    columns: int
    row_names: tuple[str, ...]


def emulator(*models: str) -> Callable[[type], type]:
    """Class decorator: register an emulator under ``models``."""
    def register(cls: type) -> type:
        for m in models:
            _REGISTRY[m] = cls
        return cls
    return register


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in _MODULES:
        try:
            import_module(module)
        except ModuleNotFoundError as e:          # a family not shipped in this build
            if not e.name or not module.startswith(e.name):
                raise
    _loaded = True                                # only once every family imported (a failure is raised again)


def emulator_class(model: str) -> type:
    """The emulator registered for ``model`` (KeyError naming the known models)."""
    _load()
    try:
        return _REGISTRY[model]
    except KeyError:
        raise KeyError(f"model {model!r} is not emulated; known: {sorted(_REGISTRY)}") from None


def channels(model: str) -> tuple[str, ...]:
    """Channel ids of SMU ``model`` (``CHANNELS``: a tuple, or a dict model → tuple for a class serving
    several models)."""
    spec = emulator_class(model).CHANNELS
    return tuple(spec[model]) if isinstance(spec, dict) else tuple(spec)


def models() -> dict[str, Any]:
    """Every registered model → its emulator class."""
    _load()
    return dict(_REGISTRY)
