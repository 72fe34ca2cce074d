"""Instrument roles: what a station needs from an instrument, as small typed interfaces.

The station holds roles, never vendor classes. A driver fills one or more roles and says which in its
class attribute ``ROLES`` (``{"smu"}``, ``{"matrix"}``, ``{"clock"}``); it is registered under a name in
the ``rramlab.drivers`` entry-point group (:mod:`.registry`), so a separate package can add one.

Static facts a station file is validated against before anything is sent (channel names, ranges,
matrix geometry) are class attributes (:class:`SMUSpec`, :class:`MatrixSpec`); what can only be learnt
from the instrument (identity, installed cards, the closed set) is asked at open.

All values are SI: V, A, s; ``nplc`` in power-line cycles. The prober role is the exception where the
instrument speaks other units: wafer and die geometry in mm/µm and the chuck temperature in °C, as the prober
reports them; every such name carries its unit (``diameter_mm``, ``die_width_um``, ``temperature_c``) and
nothing is converted silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

ROLE_SMU = "smu"
ROLE_MATRIX = "matrix"
ROLE_CLOCK = "clock"
ROLE_PROBER = "prober"


@dataclass(frozen=True, slots=True, order=True)
class Crosspoint:
    """One relay of a switch matrix: ``card`` (slot) number, matrix ``row`` (input) and ``column``
    (output), all 1-based in the vendor's numbering (row A of a 707B card is 1)."""

    card: int
    row: int
    column: int


@dataclass(frozen=True)
class CardGeometry:
    """A matrix card model: its rows (inputs) and columns (outputs), and how the vendor names rows."""

    model: str
    rows: int
    columns: int
    row_names: tuple[str, ...]            # row_names[i] is row i + 1 as the station file writes it

    def row_number(self, name: str) -> int | None:
        """1-based row of ``name`` (as the station file writes it), or None if the card has no such row."""
        try:
            return self.row_names.index(str(name)) + 1
        except ValueError:
            return None


@dataclass(frozen=True)
class MatrixSpec:
    """What a matrix driver knows without asking the instrument: card numbers a mainframe offers and the
    geometry of each card model it drives."""

    slots: tuple[int, ...]
    cards: dict[str, CardGeometry]
    reports_closed: bool = True           # the instrument can report its closed crosspoints
    reports_cards: bool = True            # the instrument can report which card is in which slot


@dataclass(frozen=True)
class SMUSpec:
    """What an SMU driver knows without asking the instrument (used to validate a station file)."""

    channels: tuple[str, ...]             # channel ids, e.g. ("a", "b") or ("1",)
    max_voltage: float                    # V, largest |source level|
    current_limit: tuple[float, float]    # A, smallest and largest current limit
    nplc: tuple[float, float]             # PLC, integration time range
    pulse_width: tuple[float, float]      # s, shortest and longest timed pulse
    notes: dict[str, str] = field(default_factory=dict)   # where each figure comes from (manual section)


@runtime_checkable
class Instrument(Protocol):
    """What every instrument of a station gives."""

    ROLES: ClassVar[frozenset[str]]
    name: str

    @property
    def id(self) -> str: ...                     # *IDN? (or the instrument's equivalent), stripped
    def device_clear(self) -> None: ...          # VISA device clear: drop unread replies, abort pending I/O
    def clear_errors(self) -> None: ...          # empty the error queue and the event flags
    def check_errors(self) -> None: ...          # drain the error queue (bounded); InstrumentError if not empty
    def power_cycled(self) -> bool: ...          # True if powered on since the last call (reads and clears it)
    def shutdown(self) -> None: ...              # go safe: outputs off / relays open; ShutdownError on failure
    def disconnect(self) -> None: ...            # close the VISA session (sends nothing)
    def lock_scope(self) -> str | None: ...      # the VISA library's scope for bench locks (None: this host)


@runtime_checkable
class SourceMeasureChannel(Protocol):
    """One source-measure channel, used as a voltage source with a current limit."""

    key: str                                     # "<instrument>.<channel>", e.g. "smu.a"
    current_limit: float                         # A (get/set, read back from the instrument)
    source_voltage: float                        # V, DC level
    output_enabled: bool
    nplc: float

    def measure_current_at(self, voltage: float, return_to_zero: bool = True) -> float: ...
    def sweep_point(self, voltage: float) -> tuple[float, bool]: ...   # (A, compliance); stays at the level
    def configure_pulse(self, width: float, current_limit: float | None = None) -> None: ...
    def pulse(self, amplitude: float) -> None: ...                     # back at the DC level afterwards
    def pulse_and_measure(self, amplitude: float, read_voltage: float) -> float: ...   # A; back at 0 V


_OFFERS: dict[tuple[type, type], bool] = {}


def offers(instrument: object, capability: type) -> bool:
    """Whether ``instrument`` (or a channel) offers the optional role ``capability`` (:class:`StaircaseLoop`,
    :class:`VerifyLoop`, :class:`CheckedSwitch`, :class:`OutputSwitch`, :class:`SwitchedRead`): a structural
    check of the role's members, never of a driver class; remembered per class (drivers declare their methods in
    the class, and a protocol check costs tens of µs on a pymeasure instrument)."""
    key = (type(instrument), capability)
    found = _OFFERS.get(key)
    if found is None:
        found = _OFFERS[key] = isinstance(instrument, capability)
    return found


@dataclass(frozen=True, slots=True)
class LoopTrace:
    """What an on-instrument loop measured, one entry per reading, oldest first: ``level`` (V: the staircase
    level, or the pulse amplitude before a verify read, 0 for the first read), ``current`` (A), ``compliance``
    (the source at its limit), ``before_end`` (s from the reading to the end of the call, instrument timer)."""

    level: tuple[float, ...]
    current: tuple[float, ...]
    compliance: tuple[bool, ...]
    before_end: tuple[float, ...]


@runtime_checkable
class StaircaseLoop(Protocol):
    """Optional channel capability: a DC staircase run by the instrument, stopping at a current.

    ``staircase(levels, nplc, stop_current)``: source each level in turn and stay there (no 0 V between
    points), measure the current once per level with ``nplc[k]`` PLC; stop after the first reading with
    current >= ``stop_current`` or the source in compliance (None: no stop rule). At most ``loop_points``
    levels per call; the output stays at the last level."""

    loop_points: int

    def staircase(self, levels: Sequence[float], nplc: Sequence[float], stop_current: float | None) -> LoopTrace: ...


@runtime_checkable
class ListSweep(Protocol):
    """Optional channel capability: a DC list sweep run by the instrument, with no stop rule (what SCPI SMUs
    offer; the station uses it for a staircase without ``stop_current`` where the channel has no
    :class:`StaircaseLoop`).

    ``list_sweep(levels, nplc)``: source each of ``levels`` (V) in turn, no 0 V between points, one current
    reading per level at ``nplc`` PLC (one value for the whole list); every level is made. At most
    ``list_points`` levels per call; the level the output holds afterwards is not assumed."""

    list_points: int

    def list_sweep(self, levels: Sequence[float], nplc: float) -> LoopTrace: ...


@runtime_checkable
class VerifyLoop(Protocol):
    """Optional channel capability: the program-verify loop run by the instrument (arXiv 2502.04524 scheme).

    ``verify_loop(target, band, v_set, v_reset, read_voltage, max_pulses)``: read G = I/read_voltage; while
    |G - target| > band (S) and fewer than ``max_pulses`` pulses were applied, one pulse of ``v_set`` V if
    G < target else ``v_reset`` V (the width set by ``configure_pulse``), then read again. Reads at the
    channel's present NPLC (``nplc``), back at 0 V after each. At most ``loop_pulses`` pulses per call;
    ``g_start`` (S) continues from a previous call's last read without reading first."""

    loop_pulses: int

    def verify_loop(self, target: float, band: float, v_set: float, v_reset: float, read_voltage: float,
                    max_pulses: int, nplc: float, g_start: float | None = None) -> LoopTrace: ...


@runtime_checkable
class SourceMeasureUnit(Instrument, Protocol):
    """An SMU mainframe: one or more :class:`SourceMeasureChannel`."""

    SMU: ClassVar[SMUSpec]

    def channel(self, channel_id: str) -> SourceMeasureChannel: ...


@runtime_checkable
class SwitchMatrix(Instrument, Protocol):
    """A switch matrix mainframe: crosspoints by (card, row, column)."""

    MATRIX: ClassVar[MatrixSpec]

    def close(self, points: Sequence[Crosspoint]) -> None: ...             # add to the closed set
    def open(self, points: Sequence[Crosspoint]) -> None: ...
    def exclusive_close(self, points: Sequence[Crosspoint]) -> None: ...   # exactly these closed afterwards
    def open_all(self) -> None: ...
    def closed(self) -> list[Crosspoint]: ...                              # sorted; MATRIX.reports_closed
    def installed_cards(self) -> dict[int, str]: ...                       # slot -> card model, "" = empty


@runtime_checkable
class CheckedSwitch(Protocol):
    """Optional matrix capability: ``switch_checked(opening, closing, read_back)`` opens then closes crosspoints
    and checks the error queue in one transaction, reading the closed set back in the same one when
    ``read_back`` (returns it sorted; None otherwise). InstrumentError when an error was queued."""

    def switch_checked(self, opening: Sequence[Crosspoint], closing: Sequence[Crosspoint],
                       read_back: bool) -> list[Crosspoint] | None: ...


@runtime_checkable
class OutputSwitch(Protocol):
    """Optional SMU capability: ``set_outputs({channel_id: on}, …)`` turns several channels' outputs on or off
    in the order given and checks the error queue, in one transaction. InstrumentError when an error was
    queued."""

    def set_outputs(self, states: Sequence[tuple[str, bool]]) -> None: ...


@runtime_checkable
class SwitchedRead(Protocol):
    """Optional SMU capability: ``read_switched(channel_id, voltage, before, after)``: outputs ``before`` (channel
    id, on) in order, one current reading of ``channel_id`` at ``voltage`` V, back to 0 V, outputs ``after`` in
    order, and the error check, in one transaction; returns the reading (A). InstrumentError when an error was
    queued (the reading is discarded)."""

    def read_switched(self, channel_id: str, voltage: float, before: Sequence[tuple[str, bool]],
                      after: Sequence[tuple[str, bool]]) -> float: ...


@dataclass(frozen=True)
class NodeSwitch:
    """One TSP-Link matrix node's part in routing one cell: its node number, the channel lists to open and to
    close (the matrix's own syntax, ``""`` for none) and the closed set expected afterwards (``""``: none)."""

    node: int
    opening: str
    closing: str
    closed: str


@runtime_checkable
class RoutedReads(Protocol):
    """Optional SMU capability of a TSP-Link master: ``routed_reads(bl, wl, voltage, routes, nplc)`` reads one cell
    per entry of ``routes``, switching the matrices that are its TSP-Link nodes itself (each entry: the
    :class:`NodeSwitch` of every matrix that changes, break-before-make, closed sets read back), outputs on only
    around each reading. One transaction per call of at most ``routed_cells`` cells; returns the readings
    (``level``: the read voltage). A closed set that differs from the expected stops the call before that cell's
    outputs turn on: :class:`~.array_wiring.RoutingError` naming the entry, with the readings made before it
    (``readings``). InstrumentError when an error was queued (readings discarded)."""

    routed_cells: int

    def routed_reads(self, bl: str, wl: str, voltage: float, routes: Sequence[Sequence[NodeSwitch]],
                     nplc: float) -> LoopTrace: ...


@runtime_checkable
class BenchClock(Instrument, Protocol):
    """A clock instrument (the simulated bench's virtual clock)."""

    def now(self) -> float: ...
    def wait(self, seconds: float) -> None: ...
    def wait_until(self, t: float) -> None: ...


@runtime_checkable
class RepeatedRead(Protocol):
    """Optional channel capability: many reads of one cell at one voltage, made by the instrument.

    ``read_repeated(voltage, n, nplc)``: source ``voltage`` V, make ``n`` current readings back to back at the
    channel's present integration (``nplc`` PLC, given for the reply's time-out), then return to 0 V; returns the
    last reading (A). The readings of one instrument call are kept in a reading buffer and not sent; at most
    ``repeat_chunk`` readings per call (the buffer's capacity), ``n`` is split into such calls."""

    repeat_chunk: int

    def read_repeated(self, voltage: float, n: int, nplc: float) -> float: ...


@dataclass(frozen=True, slots=True)
class DiePosition:
    """Where a wafer prober stands after a step: die ``column`` and ``row`` in the prober's map numbering
    (may be negative) and the subsite ``site`` (0 = the die's reference site); ``last`` is True when the
    prober flagged this die as the last of its stepping route."""

    column: int
    row: int
    site: int = 0
    last: bool = False


@dataclass(frozen=True)
class ProberSpec:
    """What a prober driver knows without asking the instrument."""

    temperature_range_c: tuple[float, float]   # °C, chuck set-points the driver accepts (checked before writing)
    notes: dict[str, str] = field(default_factory=dict)   # where each figure comes from


@runtime_checkable
class Prober(Instrument, Protocol):
    """A wafer prober: a round wafer map of dies, stepping along the prober's route, chuck contact and
    separation, and a thermal chuck.

    Units are the prober's, named in every argument: wafer diameter in mm, die size and offsets in µm, chuck
    temperature in °C (``_c``). A step leaves the chuck at separation (the driver sets the prober's stepping
    so); :meth:`contact` brings the probes down on the die. ``shutdown()`` separates the chuck (the station's
    safe state calls it after every source is off and every relay open)."""

    PROBER: ClassVar[ProberSpec]

    def set_map(self, diameter_mm: float, die_width_um: float, die_height_um: float, *,
                grid_offset_um: tuple[float, float] = (0.0, 0.0), edge_exclusion_um: float = 0.0) -> None: ...
    def die_count(self) -> int: ...                                   # dies on the stepping route
    def step_first_die(self) -> DiePosition: ...
    def step_next_die(self) -> DiePosition | None: ...                # None: the route had ended
    def step_die(self, column: int, row: int, site: int = 0) -> DiePosition: ...
    def contact(self) -> float: ...                                   # chuck z after the move (µm)
    def separate(self) -> float: ...

    @property
    def in_contact(self) -> bool: ...
    def chuck_temperature_c(self) -> float: ...                       # °C, the chuck's present temperature
    def chuck_temperature_setpoint_c(self) -> float: ...
    def set_chuck_temperature_c(self, t_c: float) -> None: ...        # ValueError outside PROBER's range
    def thermo_state(self) -> str: ...                                # "Heating", "Cooling", "Controlling", ...
