"""A simulated wafer: a round map of dies, each its own array model, under the prober's chuck.

The bench file's ``[wafer]`` table places dies on a grid (``die_width_um`` × ``die_height_um``, die (0, 0)
centred on the wafer centre, columns to +x, rows to +y); a die exists where its four corners lie inside the
wafer's radius minus ``edge_exclusion_um``. Each die gets :class:`~.device_params.DeviceParameters` moved by
:class:`~.device_params.WaferParameters`: a radial gradient ∝ (r/R)² of the mean forming voltage and of the
mean Gmax, a random die-to-die spread, and a few bad dies (shorted, open, high-defect), all drawn from the
bench seed and the die's position only (the same die is the same whatever order it is visited in). A die's
array model is built when the chuck first touches it, then kept (its cells remember what was done to them).

Contact: the circuit sees a die only while the prober holds the chuck in contact there; separated, off the
wafer or on an open die, every line is open (reads 0 A). The prober emulator reports its moves with
:meth:`Wafer.touch` (contact at a die) and :meth:`Wafer.lift` (separation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .device_model import ArrayModel
from .device_params import PROFILES, DeviceParameters, WaferParameters

if TYPE_CHECKING:
    from .bench import Bench

Die = tuple[int, int]
KINDS = ("good", "short", "open", "high_defect")


@dataclass(frozen=True)
class WaferConfig:
    """``[wafer]`` of a bench file: geometry (mm, µm as a prober gives them), named bad dies, overrides of
    :class:`WaferParameters`."""

    diameter_mm: float = 100.0
    die_width_um: float = 15000.0
    die_height_um: float = 15000.0
    edge_exclusion_um: float = 0.0
    bad: dict[Die, str] | None = None             # die → "short" | "open" | "high_defect" (else drawn)
    overrides: dict[str, Any] | None = None


@dataclass(frozen=True)
class DieInfo:
    """What the wafer made of one die: kind, radius fraction r/R, mean forming voltage (V) and Gmax scale."""

    die: Die
    kind: str
    r_fraction: float
    v_form_mean: float
    g_max_scale: float


def on_wafer(cfg: WaferConfig) -> list[Die]:
    """Every die (col, row) whose four corners lie within the radius minus the edge exclusion, sorted."""
    radius = cfg.diameter_mm * 500.0 - cfg.edge_exclusion_um          # µm
    w, h = cfg.die_width_um, cfg.die_height_um
    n = int(math.ceil(radius / min(w, h))) + 1
    out = []
    for col in range(-n, n + 1):
        for row in range(-n, n + 1):
            xs = (col * w - w / 2, col * w + w / 2)
            ys = (row * h - h / 2, row * h + h / 2)
            if all(x * x + y * y <= radius * radius for x in xs for y in ys):
                out.append((col, row))
    return sorted(out)


class Wafer:
    """The dies of the bench's wafer and which one the probes touch (see module docstring)."""

    def __init__(self, bench: Bench, cfg: WaferConfig) -> None:
        self.bench, self.cfg = bench, cfg
        self.params = WaferParameters(**(cfg.overrides or {}))
        self.dies = on_wafer(cfg)
        self._index = {d: k for k, d in enumerate(self.dies)}
        self.radius_um = cfg.diameter_mm * 500.0
        self.models: dict[Die, ArrayModel] = {}
        self.touching: Die | None = None
        self.info = {d: self._draw(d) for d in self.dies}

    def _rng(self, die: Die, stream: int) -> np.random.Generator:
        """A generator of its own per die and purpose, from the bench seed and the die's position."""
        return np.random.default_rng([int(self.bench.seed) & 0xFFFFFFFFFFFFFFFF, stream, die[0] + 1_000_000,
                                      die[1] + 1_000_000])

    def _draw(self, die: Die) -> DieInfo:
        p, base = self.params, self.bench.params
        rng = self._rng(die, 0)
        x, y = die[0] * self.cfg.die_width_um, die[1] * self.cfg.die_height_um
        r = math.hypot(x, y) / self.radius_um
        v_form = base.forming_voltage_mean + p.v_form_edge * r * r + p.v_form_die_std * rng.standard_normal()
        g_scale = 1.0 + p.g_max_edge * r * r + p.g_max_die_std * rng.standard_normal()
        u = rng.random()
        kind = ("short" if u < p.p_short else "open" if u < p.p_short + p.p_open
                else "high_defect" if u < p.p_short + p.p_open + p.p_high_defect else "good")
        kind = (self.cfg.bad or {}).get(die, kind)
        return DieInfo(die, kind, r, float(v_form), float(g_scale))

    def die_params(self, die: Die) -> DeviceParameters:
        """The device parameters of ``die`` (its gradient, spread and kind applied to the bench's)."""
        info, base = self.info[die], self.bench.params
        changes: dict[str, Any] = {"forming_voltage_mean": info.v_form_mean,
                                   "g_max_mean": base.g_max_mean * info.g_max_scale}
        if info.kind == "short":
            changes["g_pristine"] = self.params.g_short
        elif info.kind == "high_defect":
            changes.update({k: min(5 * v, 0.3) for k, v in PROFILES["hfo2"].items()})
        return replace(base, **changes)

    def model(self, die: Die) -> ArrayModel:
        """The array model of ``die``, built at first contact."""
        if die not in self.models:
            self.models[die] = ArrayModel(self.bench.config.rows, self.bench.config.cols, self.die_params(die),
                                          self._rng(die, 1), noise=self.bench.noise, thermal=self.bench.thermal)
        return self.models[die]

    # -- the prober's side ----------------------------------------------------------------------------------
    def touch(self, die: Die) -> None:
        """The chuck is in contact at ``die`` (col, row): the circuit sees its array, unless it is off the wafer
        or an open die."""
        self.touching = die
        present = die in self._index and self.info[die].kind != "open"
        self.bench.model = self.model(die) if present else self.bench.model
        self.bench.circuit.attach(self.bench.model, connected=present)
        self.bench.events.add(self.bench.clock.now, "wafer", "contact", die=list(die),
                              die_kind=self.info[die].kind if die in self._index else "off_wafer")

    def touch_at(self, x_um: float, y_um: float) -> None:
        """The probes came down at (x, y) µm from the wafer centre: on the die whose area holds that point."""
        self.touch((round(x_um / self.cfg.die_width_um), round(y_um / self.cfg.die_height_um)))

    def lift(self) -> None:
        """The chuck separated: every line open."""
        if self.touching is not None:
            self.bench.events.add(self.bench.clock.now, "wafer", "separated", die=list(self.touching))
        self.touching = None
        self.bench.circuit.attach(self.bench.model, connected=False)
