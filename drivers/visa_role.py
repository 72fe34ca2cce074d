"""What every VISA instrument driver gives the station, whatever its command language.

Mix :class:`VisaRole` into a pymeasure :class:`~pymeasure.instruments.Instrument` subclass that provides
``event_status()`` (``*ESR?``, read and cleared); it adds the role methods of :class:`~.roles.Instrument`
that are the same for every VISA instrument.
"""

from __future__ import annotations

from typing import Any

#: Power-on bit of the standard event status register (IEEE 488.2).
ESR_PON = 128


class VisaRole:
    """Role methods shared by VISA drivers (see module docstring)."""

    adapter: Any

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
