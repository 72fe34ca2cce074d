"""What every VISA instrument driver gives the station, whatever its command language.

Mix :class:`VisaRole` into a pymeasure :class:`~pymeasure.instruments.Instrument` subclass that provides
``event_status()`` (``*ESR?``, read and cleared); it adds the role methods of :class:`~.roles.Instrument`
that are the same for every VISA instrument.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .errors import ShutdownError

log = logging.getLogger(__name__)

#: Power-on bit of the standard event status register (IEEE 488.2).
ESR_PON = 128


class VisaRole:
    """Role methods shared by VISA drivers (see module docstring)."""

    adapter: Any
    name: str

    def shutdown_steps(self, steps: Sequence[str]) -> None:
        """Write each shutdown step in its own ``try`` (a failing or interrupted step does not stop the others),
        then mark the instrument shut down; a Ctrl-C is re-raised once every step was tried, other failures
        raise :class:`ShutdownError` listing them."""
        failures: list[tuple[str, BaseException]] = []
        for step in steps:
            try:
                self.write(step)  # type: ignore[attr-defined]
            except BaseException as exc:  # noqa: BLE001 - every step must be tried, even through a Ctrl-C
                log.error("%s: shutdown step %r failed: %r", self.name, step, exc)
                failures.append((step, exc))
        self.isShutdown = True
        interrupt = next((e for _, e in failures if not isinstance(e, Exception)), None)
        if interrupt is not None:
            raise interrupt
        if failures:
            raise ShutdownError(self.name, failures)

    def event_status(self) -> int:  # pragma: no cover - provided by the instrument family's mixin
        raise NotImplementedError

    def device_clear(self) -> None:
        """VISA device clear (viClear; IEEE 488.1 SDC on GPIB): drops replies an earlier client left unread."""
        self.adapter.connection.clear()

    def power_cycled(self) -> bool:
        """True if the instrument was powered on since the last call (``*ESR?`` PON bit, read and cleared)."""
        return bool(self.event_status() & ESR_PON)

    def disconnect(self) -> None:
        """Close the VISA session (sends nothing)."""
        self.adapter.close()

    def lock_scope(self) -> str | None:
        """The VISA library's resource scope (one simulated bench, one bench server), None for this host."""
        visalib = getattr(getattr(self.adapter, "connection", None), "visalib", None)
        scope = getattr(visalib, "resource_scope", None)
        return str(scope) if scope else None
