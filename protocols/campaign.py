"""Probe-station campaigns: a recipe run on many dies of a wafer, die by die, with a prober.

A campaign file is a recipe file with a ``[campaign]`` table::

    [recipe]
    name = "W12 forming, program-verify, retention at 25 and 85 °C"
    [metadata]
    wafer = "W12"
    operator = "jdoe"
    [campaign]
    dies = "all"                     # every die of the prober's route; or [[col, row], …];
                                     # or { every = 3, offset = 0 } (every 3rd die of the route);
                                     # or { columns = "-2..2", rows = "-1..1" } (a window of the route)
    [campaign.map]                   # optional: the wafer map set on the prober first (its units: mm, µm)
    diameter_mm = 100.0
    die_width_um = 15000.0
    die_height_um = 15000.0
    edge_exclusion_um = 0.0
    [[steps]]                        # per die, as in any recipe (a step may set temperature_c)
    …

Layout on disk (``--out DIR``): one run file per die, ``DIR/die_<col>_<row>.h5`` — each an ordinary run file
(crash-safe with its journal, resumable, readable by ``rramlab info``/``report`` while the campaign goes on) —
and the campaign index ``DIR/campaign.jsonl``: one JSON object per line, appended and fsynced (start with the
die list, then die_start/die_done per die), so a killed campaign leaves at most one die in progress, and the
finished dies' files are closed and complete. A wafer-wide single file would put every die behind one writer
and one journal; per-die files keep a crash to one die and let other programs read finished dies at once.

For each die: step the prober to it (chuck separated), open the station (safe state, arming), make contact, run
the steps; the run's exit puts the station in safe state, which separates the chuck after the sources are off
and the relays open. A die whose contact check finds nothing (an open die, a lifted needle) is recorded as
"no_contact" in its file and the index, and the campaign goes on; any other failure stops it (resumable).
``rramlab resume DIR`` skips finished dies, steps back to the die in progress and resumes its run file (its
pulse ledger and cells in flight included), then goes on with the remaining dies.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rramlab.drivers.station import ContactError, SafetyError, Station
from rramlab.drivers.station_config import parse_toml

from .recipe import Recipe, RecipeError, parse_recipe, short
from .runner import RunResult, resume_run, run_recipe

INDEX = "campaign.jsonl"
MAX_DIES = 10_000
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")
Die = tuple[int, int]


class CampaignError(ValueError):
    """A campaign file, directory or prober that cannot be used (nothing sent, or nothing more)."""


@dataclass(frozen=True)
class Campaign:
    """A recipe run on a selection of dies; ``map`` (prober units) is set on the prober first when given."""

    recipe: Recipe
    dies: Any
    map: dict[str, float] | None = None
    text: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        return self.recipe.name


def is_campaign(text: str) -> bool:
    """Whether a recipe file's text holds a ``[campaign]`` table."""
    return re.search(r"^\s*\[campaign(\.[A-Za-z_]+)?\]\s*(#.*)?$", text, re.MULTILINE) is not None


MAP_KEYS = {"diameter_mm": (1.0, 500.0), "die_width_um": (1.0, 1e6), "die_height_um": (1.0, 1e6),
            "edge_exclusion_um": (0.0, 1e5), "offset_x_um": (-1e6, 1e6), "offset_y_um": (-1e6, 1e6)}


def parse_campaign(text: str, source: str = "<text>") -> Campaign:
    """A campaign file: the recipe (checked as any recipe) and its ``[campaign]`` table (CampaignError)."""
    recipe = parse_recipe(text, source)
    data = parse_toml(text.removeprefix("\ufeff"), source, CampaignError)
    c = data.get("campaign")
    if not isinstance(c, dict):
        raise CampaignError(f"{source}: a campaign file needs a [campaign] table")
    extra = sorted(set(c) - {"dies", "map"})
    if extra:
        raise CampaignError(f"{source}: [campaign]: unknown key(s) {', '.join(extra)}; allowed: dies, map")
    dies = c.get("dies", "all")
    _check_dies(dies, source)
    wmap = c.get("map")
    if wmap is not None:
        if not isinstance(wmap, dict):
            raise CampaignError(f"{source}: [campaign.map]: a table of {', '.join(MAP_KEYS)}")
        for key, value in wmap.items():
            if key not in MAP_KEYS:
                raise CampaignError(f"{source}: [campaign.map]: unknown key {short(key)}; allowed: "
                                    f"{', '.join(MAP_KEYS)}")
            lo, hi = MAP_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise CampaignError(f"{source}: [campaign.map].{key} must be a number within [{lo}, {hi}], got "
                                    f"{short(value)}")
        missing = sorted({"diameter_mm", "die_width_um", "die_height_um"} - set(wmap))
        if missing:
            raise CampaignError(f"{source}: [campaign.map]: missing {', '.join(missing)}")
        wmap = {k: float(v) for k, v in wmap.items()}
    return Campaign(recipe, dies, wmap, text, source)


def _check_dies(dies: Any, source: str) -> None:
    where = f"{source}: [campaign].dies"
    if dies == "all":
        return
    if isinstance(dies, list):
        if not dies or len(dies) > MAX_DIES:
            raise CampaignError(f"{where}: 1 to {MAX_DIES} [col, row] pairs, got {len(dies)}")
        for i, d in enumerate(dies):
            if not (isinstance(d, list) and len(d) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in d)):
                raise CampaignError(f"{where}[{i}]: a [col, row] pair of integers, got {short(d)}")
        if len({tuple(d) for d in dies}) != len(dies):
            raise CampaignError(f"{where}: a die is listed twice")
        return
    if isinstance(dies, dict):
        keys = set(dies)
        if keys <= {"every", "offset"} and "every" in keys:
            every, offset = dies.get("every"), dies.get("offset", 0)
            if not (isinstance(every, int) and every >= 1 and isinstance(offset, int) and 0 <= offset < every):
                raise CampaignError(f"{where}: {{ every = n >= 1, offset = 0..n-1 }}, got {short(dies)}")
            return
        if keys <= {"columns", "rows"} and keys:
            for k in keys:
                if not (isinstance(dies[k], str) and _RANGE.match(dies[k])):
                    raise CampaignError(f"{where}.{k}: a range 'a..b' of die numbers, e.g. '-2..2', got "
                                        f"{short(dies[k])}")
            return
    raise CampaignError(f"{where}: \"all\", a list of [col, row], {{ every = n }} or {{ columns = 'a..b', rows = "
                        f"'c..d' }}, got {short(dies)}")


def select_dies(spec: Any, route: list[Die]) -> list[Die]:
    """The dies of ``route`` (the prober's stepping order) that ``spec`` selects, in route order; a listed die
    must be on the route (CampaignError)."""
    if spec == "all":
        return list(route)
    if isinstance(spec, list):
        on = set(route)
        off = [tuple(d) for d in spec if tuple(d) not in on]
        if off:
            raise CampaignError(f"[campaign].dies: {off[:5]} not on the prober's wafer map")
        return [tuple(d) for d in spec]
    if "every" in spec:
        return [d for k, d in enumerate(route) if k % spec["every"] == spec.get("offset", 0)]

    def window(key: str, value: int) -> bool:
        if key not in spec:
            return True
        lo, hi = (int(v) for v in _RANGE.match(spec[key]).groups())  # type: ignore[union-attr]
        return min(lo, hi) <= value <= max(lo, hi)

    return [d for d in route if window("columns", d[0]) and window("rows", d[1])]


def die_file(directory: Path, die: Die) -> Path:
    """``DIR/die_+03_-02.h5``: the run file of die (col, row)."""
    return directory / f"die_{die[0]:+03d}_{die[1]:+03d}.h5"


@dataclass
class CampaignIndex:
    """The campaign's append-only index (``campaign.jsonl``): the die list, then each die's start and end."""

    path: Path
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, directory: Path) -> CampaignIndex:
        path = directory / INDEX
        if not path.exists():
            raise CampaignError(f"{directory}: no {INDEX} (not a campaign directory)")
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break                       # a line cut by a crash: everything before it stands
        if not events or events[0].get("event") != "start":
            raise CampaignError(f"{path}: does not start with the campaign's start record")
        return cls(path, events)

    def append(self, event: dict[str, Any]) -> None:
        """Append one event line and make it durable (fsync of the file; the directory entry on creation)."""
        new = not self.path.exists()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if new:
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.events.append(event)

    @property
    def dies(self) -> list[Die]:
        return [tuple(d) for d in self.events[0]["dies"]]

    def status(self) -> dict[Die, str]:
        """Per die: "done" (its run ended, any status), "started" (in progress when the index was last written)."""
        out: dict[Die, str] = {}
        for e in self.events[1:]:
            die = tuple(e["die"])
            out[die] = "done" if e["event"] == "die_done" else out.get(die, "started")
        return out


@dataclass
class CampaignResult:
    directory: Path
    dies: list[Die]
    results: dict[Die, RunResult] = field(default_factory=dict)
    skipped: list[Die] = field(default_factory=list)
    no_contact: list[Die] = field(default_factory=list)      # dies whose contact check found nothing
    exit_status: str = "completed"


def _prober(station: Station) -> Any:
    prober = station.prober
    if prober is None:
        raise CampaignError("the station has no prober: a campaign steps a wafer die by die (add a prober "
                            "instrument to the station file, e.g. driver = \"mpi_sentio\")")
    return prober


def route(station: Station, campaign: Campaign) -> list[Die]:
    """Set the wafer map (if the campaign gives one) and walk the prober's route once, chuck separated,
    collecting every die position (nothing is contacted)."""
    prober = _prober(station)
    prober.separate()
    if campaign.map is not None:
        m = campaign.map
        prober.set_map(m["diameter_mm"], m["die_width_um"], m["die_height_um"],
                       grid_offset_um=(m.get("offset_x_um", 0.0), m.get("offset_y_um", 0.0)),
                       edge_exclusion_um=m.get("edge_exclusion_um", 0.0))
    dies: list[Die] = []
    pos = prober.step_first_die()
    while pos is not None and len(dies) <= MAX_DIES:
        dies.append((pos.column, pos.row))
        if pos.last:
            break
        pos = prober.step_next_die()
    if not dies:
        raise CampaignError("the prober's wafer map has no die on its route")
    return dies


def _contact_at(die: Die) -> Callable[[Station], None]:
    def after_open(station: Station) -> None:
        prober = _prober(station)
        pos = prober.step_die(die[0], die[1])
        if (pos.column, pos.row) != die:
            raise SafetyError(f"prober stepped to die ({pos.column}, {pos.row}), asked for {die}: not contacting")
        prober.contact()
        station.pulses_per_cell = {}        # another die: its cells have had nothing from this station (a resumed
        #                                     run then takes its die's ledger from its file)
    return after_open


def _sample(campaign: Campaign, meta: dict[str, Any], die: Die) -> dict[str, Any]:
    return {**meta, "campaign": campaign.name, "die": f"{die[0]},{die[1]}", "die_col": die[0], "die_row": die[1]}


def run_campaign(station: Station, campaign: Campaign, directory: str | os.PathLike[str], *,
                 metadata: dict[str, Any] | None = None,
                 on_die: Callable[[Die, int, int], None] | None = None,
                 progress: Callable[[str, int, int, float | None], None] | None = None) -> CampaignResult:
    """Run ``campaign`` into ``directory`` (created; must not hold a campaign already). Stops at the first die
    whose run did not complete (interrupted, failed): ``rramlab resume DIR`` goes on from there."""
    out = Path(directory)
    if (out / INDEX).exists():
        raise FileExistsError(f"{out}: holds a campaign already ({INDEX}); resume it with rramlab resume {out}")
    out.mkdir(parents=True, exist_ok=True)
    station.lock(str(out / INDEX), purpose="campaign")
    station.open()
    dies = select_dies(campaign.dies, route(station, campaign))
    station.safe_state()
    index = CampaignIndex(out / INDEX)
    index.append({"event": "start", "campaign": campaign.name, "dies": [list(d) for d in dies],
                  "recipe": campaign.text, "metadata": metadata or {}})
    return _go(station, campaign, index, metadata or {}, on_die, progress)


def resume_campaign(station: Station, directory: str | os.PathLike[str], *,
                    on_die: Callable[[Die, int, int], None] | None = None,
                    progress: Callable[[str, int, int, float | None], None] | None = None,
                    force: bool = False) -> CampaignResult:
    """Continue the campaign in ``directory``: finished dies are skipped, the die in progress is resumed in its
    run file (the prober steps back to it), then the remaining dies run."""
    out = Path(directory)
    index = CampaignIndex.read(out)
    start = index.events[0]
    campaign = parse_campaign(start["recipe"], f"{out / INDEX} (the campaign's recipe)")
    station.lock(str(out / INDEX), purpose="campaign")
    return _go(station, campaign, index, dict(start.get("metadata") or {}), on_die, progress, force=force)


def _go(station: Station, campaign: Campaign, index: CampaignIndex, meta: dict[str, Any],
        on_die: Callable[[Die, int, int], None] | None,
        progress: Callable[[str, int, int, float | None], None] | None, *, force: bool = False) -> CampaignResult:
    from rramlab.analysis.dataset import open_run

    out = index.path.parent
    dies = index.dies
    status = index.status()
    result = CampaignResult(out, dies)
    for k, die in enumerate(dies):
        path = die_file(out, die)
        if status.get(die) == "done":
            result.skipped.append(die)
            continue
        if on_die is not None:
            on_die(die, k, len(dies))
        if status.get(die) == "started" and (path.exists() or Path(f"{path}.journal").exists()):
            run = open_run(path)
            if run.exit_status == "completed":          # killed between its end and the index line
                index.append({"event": "die_done", "die": list(die), "status": "completed", "file": path.name})
                result.skipped.append(die)
                continue
            r = resume_run(station, path, force=force, progress=progress, after_open=_contact_at(die))
        else:
            index.append({"event": "die_start", "die": list(die), "file": path.name})
            try:
                r = run_recipe(station, campaign.recipe, path, progress=progress,
                               metadata=_sample(campaign, meta, die), after_open=_contact_at(die))
            except ContactError as e:                 # an open die: recorded in its file and here; next die
                index.append({"event": "die_done", "die": list(die), "status": "no_contact", "file": path.name,
                              "message": str(e)})
                result.no_contact.append(die)
                continue
        result.results[die] = r
        if r.exit_status != "completed":                # stopped or failed: resumable from this die
            result.exit_status = r.exit_status
            return result
        index.append({"event": "die_done", "die": list(die), "status": r.exit_status, "file": path.name})
    return result


__all__ = ["Campaign", "CampaignError", "CampaignIndex", "CampaignResult", "RecipeError", "die_file",
           "is_campaign", "parse_campaign", "resume_campaign", "route", "run_campaign", "select_dies"]
