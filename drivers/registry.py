"""Driver registry: a station file's ``driver = "<name>"`` → a driver class, through entry points.

Drivers register in the ``rramlab.drivers`` entry-point group (``pyproject.toml``)::

    [project.entry-points."rramlab.drivers"]
    my_smu = "my_package.my_smu:MySMU"

so a separate, installed package adds a driver without editing rramlab. A driver class declares the roles
it fills (``ROLES``, see :mod:`.roles`) and the static facts a station file is checked against (``SMU``
``MATRIX`` or ``PROBER``). rramlab's own drivers are also listed here, so a source tree works before installation.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from .roles import ROLE_CLOCK, ROLE_MATRIX, ROLE_PROBER, ROLE_SMU

GROUP = "rramlab.drivers"
BUILTIN = {
    "keithley2636b": "rramlab.drivers.keithley2636b:Keithley2636B",
    "keithley707b": "rramlab.drivers.keithley707b:Keithley707B",
    "keithley2450": "rramlab.drivers.keithley2450:Keithley2450",
    "keysight_b2900": "rramlab.drivers.keysight_b2900:KeysightB2900",
    "keysight_b2901a": "rramlab.drivers.keysight_b2900:KeysightB2901A",
    "keysight_b2200a": "rramlab.drivers.keysight_b2200a:KeysightB2200A",
    "keysight_e5250a": "rramlab.drivers.keysight_e5250a:KeysightE5250A",
    "rramlab_bench_controller": "rramlab.drivers.clock:BenchController",
    "mpi_sentio": "rramlab.drivers.mpi_sentio:MpiSentio",
}
ROLES = (ROLE_SMU, ROLE_MATRIX, ROLE_CLOCK, ROLE_PROBER)


class RegistryError(ValueError):
    """A driver name that is not registered, or a registered class that does not declare its roles."""


@cache
def _targets() -> dict[str, str]:
    targets = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        targets[ep.name] = ep.value
    return targets


def driver_names() -> list[str]:
    """Every registered driver name."""
    return sorted(_targets())


@cache
def driver_class(name: str) -> Any:
    """The driver class registered as ``name`` (DriverError naming the registered drivers)."""
    target = _targets().get(name)
    if target is None:
        raise RegistryError(f"driver {name!r} is not registered; registered: {driver_names()} "
                          f"(a package adds one in the {GROUP!r} entry-point group)")
    module, _, attr = target.partition(":")
    try:
        cls = getattr(import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise RegistryError(f"driver {name!r} ({target}) cannot be loaded: {e}") from e
    roles = getattr(cls, "ROLES", None)
    if not roles or not set(roles) <= set(ROLES):
        raise RegistryError(f"driver {name!r} ({target}) must declare ROLES, a subset of {list(ROLES)}; got {roles!r}")
    if ROLE_SMU in roles and getattr(cls, "SMU", None) is None:
        raise RegistryError(f"driver {name!r} ({target}) fills the smu role but declares no SMU = SMUSpec(...)")
    if ROLE_MATRIX in roles and getattr(cls, "MATRIX", None) is None:
        raise RegistryError(f"driver {name!r} ({target}) fills the matrix role but declares no "
                            "MATRIX = MatrixSpec(...)")
    if ROLE_PROBER in roles and getattr(cls, "PROBER", None) is None:
        raise RegistryError(f"driver {name!r} ({target}) fills the prober role but declares no "
                            "PROBER = ProberSpec(...)")
    return cls


def roles_of(name: str) -> frozenset[str]:
    """The roles driver ``name`` fills."""
    return frozenset(driver_class(name).ROLES)
