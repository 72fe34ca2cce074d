"""Every protocol by name: rramlab's own (:data:`PROTOCOLS`) and those installed packages register in the
``rramlab.protocols`` entry-point group (:func:`protocol_class`, :func:`protocol_names`)."""

from __future__ import annotations

from dataclasses import is_dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from .base import Protocol
from .endurance import Endurance
from .forming import Forming
from .ispp import Ispp
from .iv_sweep import IVSweep
from .multilevel import Multilevel
from .params import ProtocolParams
from .program_verify import ProgramVerify
from .pulse import Pulse, PulseTrain
from .read import Read
from .read_disturb import ReadDisturb
from .retention import Retention

PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Read, Forming, IVSweep, Pulse, PulseTrain,
                                                            ProgramVerify, Retention, Endurance, ReadDisturb,
                                                            Ispp, Multilevel)}

#: the entry-point group in which an installed package registers its own protocols::
#:
#:     [project.entry-points."rramlab.protocols"]
#:     ispp_custom = "my_package.ispp:IsppCustom"
GROUP = "rramlab.protocols"


class ProtocolRegistryError(ValueError):
    """A protocol name that is not registered, or a registered protocol that cannot be used."""


@cache
def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP) if ep.name not in PROTOCOLS}


def protocol_names() -> list[str]:
    """Every protocol a recipe may name: rramlab's own and those of installed packages."""
    return sorted({*PROTOCOLS, *_plugins()})


@cache
def protocol_class(name: str) -> type[Protocol]:
    """The protocol registered as ``name`` (rramlab's own first; ProtocolRegistryError names the registered
    ones, or says why an installed package's protocol cannot be used)."""
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    ep = _plugins().get(name)
    if ep is None:
        raise ProtocolRegistryError(f"protocol {name!r} unknown; allowed: {', '.join(protocol_names())} (a package "
                                    f"adds one in the {GROUP!r} entry-point group)")
    try:
        cls = ep.load()
    except Exception as e:          # a broken plugin must not take the others down: say which and why
        raise ProtocolRegistryError(f"protocol {name!r} ({ep.value}) cannot be loaded: "
                                    f"{type(e).__name__}: {e}") from e
    problem = _unusable(name, cls)
    if problem:
        raise ProtocolRegistryError(f"protocol {name!r} ({ep.value}): {problem}")
    return cls


def _unusable(name: str, cls: object) -> str:
    """Why ``cls`` cannot serve as protocol ``name`` ("" if it can)."""
    if not (isinstance(cls, type) and issubclass(cls, Protocol)):
        return "must be a subclass of rramlab.protocols.base.Protocol"
    if getattr(cls, "name", None) != name:
        return f"its name is {getattr(cls, 'name', None)!r}; it must equal the entry-point name"
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, ProtocolParams) and is_dataclass(params)):
        return "Params must be a dataclass deriving from rramlab.protocols.params.ProtocolParams"
    tables = getattr(cls, "tables", None)
    if not (isinstance(tables, dict) and tables and all(isinstance(c, dict) and c for c in tables.values())):
        return "tables must map each table name to its columns {name: (dtype, unit, description)}"
    return ""
