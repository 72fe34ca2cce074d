"""Campaign resume: the 21-die wafer campaign killed with ``kill -9`` at three moments (forming of one die,
program-verify of a later one, the 85 °C retention of a later one still), each followed by ``rramlab resume DIR``.

The bench runs in its own process (it keeps its wafer, its clock and its outputs when the client dies, as a real
bench does) and records every message with the pid that sent it: the independent witness. Checked: every die and
cell exactly once in the final files; no cell received a pulse that was not followed by a recorded read before the
next pulse (per die, from the transcript); per-cell pulse counts equal the ledger rules; the resumed process
stepped back to the die in progress and read its cells in flight first."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_resume import Ops, _journal_count, _kill_when, _start

from rramlab.analysis.dataset import open_run
from rramlab.protocols.campaign import die_file, parse_campaign
from rramlab.protocols.runner import PULSE_RESERVATION
from rramlab.simulator.bench import Bench
from rramlab.simulator.bench_config import load_bench_config

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "examples" / "campaign_wafer.toml"
SEED = 7
STEP_DIE = re.compile(r"map:step_die (-?\d+), (-?\d+)")


def _progress(directory: Path) -> tuple[int, Path | None]:
    """(dies finished, the run file of the die in progress or None) from the campaign index."""
    path = directory / "campaign.jsonl"
    if not path.exists():
        return 0, None
    events = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    finished = {tuple(e["die"]) for e in events if e["event"] == "die_done"}
    started = [e for e in events if e["event"] == "die_start" and tuple(e["die"]) not in finished]
    return len(finished), (directory / started[-1]["file"] if started else None)


def _moment(directory: Path, after_dies: int, sql: str) -> bool:
    done, current = _progress(directory)
    if done < after_dies or current is None:
        return False
    return _journal_count(Path(f"{current}.journal"), sql) > 0


def by_die(transcript: list[dict[str, Any]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """The transcript split by the die the prober stepped to: the SMU and matrix traffic of each die."""
    out: dict[tuple[int, int], list[dict[str, Any]]] = {}
    die: tuple[int, int] | None = None
    for e in transcript:
        if "SOCKET" in e["resource"]:
            if e["direction"] == "write" and (m := STEP_DIE.search(e["data"])):
                die = (int(m.group(1)), int(m.group(2)))
            continue
        if die is not None:
            out.setdefault(die, []).append(e)
    return out


@pytest.mark.slow
def test_kill_9_at_three_moments_then_resume_gives_every_die_and_cell_once(tmp_path: Path) -> None:
    from rramlab.simulator.server import BenchControl, BenchServerProcess

    out = tmp_path / "W12"
    env = dict(os.environ, RRAMLAB_LOCK_DIR=str(tmp_path / "locks"))
    flying = " AND (SELECT COUNT(*) FROM in_flight) > 0"
    moments = [(2, "SELECT COUNT(*) FROM units WHERE step = 0 HAVING COUNT(*) >= 5" + flying),      # forming
               (7, "SELECT COUNT(*) FROM units WHERE step = 1 HAVING COUNT(*) >= 6" + flying),      # program-verify
               (13, "SELECT COUNT(*) FROM steps WHERE idx = 3")]                                    # retention 85 °C
    with BenchServerProcess(f"2636b_707b_sentio?seed={SEED}&transcript=3000000") as server:
        station = tmp_path / "station.toml"
        station.write_text((ROOT / "examples" / "sim_2636b_707b_sentio.toml").read_text()
                           .replace('"2636b_707b_sentio@rramlab"', f'"{server.library}"'))
        pids: list[int] = []
        in_flight: list[tuple[Path, set[tuple[int, int]]]] = []
        for k, (after, sql) in enumerate(moments):
            args = (["run", str(CAMPAIGN), "--station", str(station), "--out", str(out)] if k == 0
                    else ["resume", str(out)])
            proc = _start([*args, "--quiet"], env)
            pids.append(proc.pid)
            _kill_when(proc, lambda a=after, q=sql: _moment(out, a, q), after=0.003 * k, timeout=400)
            _, current = _progress(out)
            assert current is not None
            killed = open_run(current)
            assert killed.exit_status == "incomplete"
            in_flight.append((current, set(killed.state.in_flight)))
        proc = _start(["resume", str(out), "--quiet"], env)
        pids.append(proc.pid)
        stdout, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, stdout
        with BenchControl(server.address) as control:
            transcript = control.transcript()

    # -- every die exactly once in the index, every cell exactly once in its die's file
    events = [json.loads(line) for line in (out / "campaign.jsonl").read_text().splitlines()]
    dies = [tuple(d) for d in events[0]["dies"]]
    done = Counter(tuple(e["die"]) for e in events if e["event"] == "die_done")
    assert len(dies) == 21 and done == Counter(dict.fromkeys(dies, 1))
    campaign = parse_campaign(CAMPAIGN.read_text())
    steps = {s.label: s for s in campaign.recipe.steps}
    protocols = {p.label: p for p in campaign.recipe.build(8, 8)}
    wafer = Bench(load_bench_config(f"2636b_707b_sentio?seed={SEED}")).wafer     # the same wafer, for its truth
    open_dies = {d for d, info in wafer.info.items() if info.kind == "open"}
    assert (-2, -1) in open_dies
    for die in dies:
        run = open_run(die_file(out, die))
        if die in open_dies:                                  # an open die: no contact, recorded
            assert run.exit_status == "failed" and "no contact" in run.exit_message
            assert [e["status"] for e in events if e["event"] == "die_done" and tuple(e["die"]) == die] == \
                ["no_contact"]
            continue
        assert run.exit_status == "completed", (die, run.exit_message)
        forming = run.table("forming")
        assert Counter(zip(forming["row"], forming["col"], strict=True)) == dict.fromkeys(
            protocols["forming"].cells, 1)
        pv = run.table("program_verify_result")
        assert Counter(zip(pv["row"], pv["col"], strict=True)) == dict.fromkeys(protocols["program_verify_2pct"].cells,
                                                                                 1)
        ret = run.table("retention")
        for label in ("retention_25C", "retention_85C"):
            mine = ret[ret["step"] == label]
            n = len(protocols[label].params.schedule())
            assert Counter(zip(mine["row"], mine["col"], strict=True)) == dict.fromkeys(protocols[label].cells, n)
        assert steps["retention_85C"].temperature_c == 85.0

    # -- per die, from the transcript: no pulse without a read before the next, and the ledger rules
    segments = by_die(transcript)
    station_text = station.read_text()
    killed_dies = {die_file(out, d): d for d in dies}
    for k, (path, flying_cells) in enumerate(in_flight):
        die = killed_dies[path]
        ops = Ops(segments[die], station_text)
        killed, resumed = pids[k], pids[k + 1]
        assert ops.unverified(killed) <= flying_cells, (die, ops.unverified(killed), flying_cells)
        for cell in flying_cells:
            assert ops.first_op(cell, resumed) == "read", (die, cell, ops.ops[cell][-8:])
    for die in dies:
        if die in open_dies:
            continue
        ops = Ops(segments[die], station_text)
        ledger = open_run(die_file(out, die)).state.ledger
        kills = sum(killed_dies[p] == die for p, _ in in_flight)
        for cell in {*ledger, *ops.ops}:
            sent, unknown = ops.pulses(cell), ops.loop_max[cell]
            assert sent <= ledger.get(cell, 0) <= sent + unknown + kills * (PULSE_RESERVATION - 1), \
                (die, cell, sent, ledger.get(cell))
        # dies no kill touched: exactly what the bench received
        if kills == 0:
            assert {c: n for c, n in ledger.items() if n} == {c: ops.pulses(c) for c in ops.ops if ops.pulses(c)}
