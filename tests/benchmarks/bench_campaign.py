"""Campaign benchmark (not a test): the 64×64 campaign through ``rramlab run``, on-instrument loops vs PC in the
loop, side by side in one run, plus the demo's wall time and program-verify of 32 cells alone.

    python tests/benchmarks/bench_campaign.py [--json out.json] [--skip-pc] [--cells-pv 32]

Each run is a separate ``rramlab run`` process on the shipped simulated bench; per run: wall time, CPU time
(user + system, the run and its HDF5-building child), peak RSS (wait4 of the run process: the largest of it and
its children), simulated hardware time (the bench's virtual clock), VISA transactions (host writes the bench
received, ``RRAMLAB_BENCH_COUNTS``), file size and rows written (rows/s = rows / wall time), and each step's
hardware time (its rows' first to last time stamp; the campaign's total is dominated by the retention step's
waits out to 1e9 s, so the on-instrument vs PC comparison uses the steps without them) and wall time (its start
to its stop). The PC-in-the-loop runs use the same station file with ``loops = "pc"``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = ROOT / "examples" / "campaign_64x64.toml"
STATION_64 = ROOT / "examples" / "sim_64x64_2636b_3x707b.toml"
STATION_8 = ROOT / "examples" / "sim_2636b_707b.toml"
PV_ONLY = """[recipe]
name = "pv32"
description = "forming then a 2 % program-verify of 32 cells (the program-verify step is what is measured)"
[[steps]]
name = "forming"
protocol = "forming"
cells = {{ first = {n} }}
[steps.params]
current_limit = 1e-3
fine_from = 2.6
[[steps]]
name = "program_verify"
protocol = "program_verify"
cells = {{ first = {n} }}
[steps.params]
acceptance = 0.02
target_min = 10e-6
target_max = 85e-6
"""


def station_variant(src: Path, loops: str, work: Path) -> Path:
    """``src`` with ``[station] loops = <loops>``."""
    text = src.read_text().replace("[station]\n", f'[station]\nloops = "{loops}"\n', 1)
    out = work / f"{src.stem}_{loops}.toml"
    out.write_text(text)
    return out


def run(args: list[str], work: Path, label: str) -> dict[str, float]:
    """One ``rramlab`` process: wall, CPU, peak RSS, hardware time, transactions, file size, rows."""
    out, summary, log = work / f"{label}.h5", work / f"{label}.json", work / f"{label}.bench.json"
    env = dict(os.environ, RRAMLAB_BENCH_COUNTS=str(log))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rramlab.protocols.cli", *args, "--out", str(out),
                             "--json", str(summary), "--quiet"], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label}: rramlab exited with {proc.returncode}")
    from rramlab.analysis.dataset import open_run

    data = open_run(out)
    rows, first, last = 0, {}, {}
    for name in data.tables:                        # each step's hardware time: its rows' first and last time
        table = data.table(name)
        rows += len(table)
        if "t" in table and len(table):
            for step, t in table.groupby("step")["t"]:
                first[step] = min(first.get(step, math.inf), float(t.min()))
                last[step] = max(last.get(step, -math.inf), float(t.max()))
    result = json.loads(summary.read_text())
    steps = {s.name: last[s.name] - first[s.name] for s in data.steps if s.name in first}
    active = sum(v for k, v in steps.items() if k != "retention")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "hardware_s": float(result["sim_hardware_time_s"]),
            **{f"hardware_s_{k}": v for k, v in steps.items()},
            **{f"wall_s_{s.name}": s.stop_time_unix - s.start_time_unix for s in data.steps},
            "hardware_s_without_retention_waits": active,
            "transactions": json.loads(log.read_text())["writes"], "file_mb": out.stat().st_size / 1e6,
            "rows": rows, "rows_per_s": rows / wall, "file": str(out)}


def pv_step(h5: str) -> dict[str, float]:
    """Hardware time / wall time of the program-verify step alone (from its rows' times and the step's wall)."""
    from rramlab.analysis.dataset import open_run

    data = open_run(h5)
    step = next(s for s in data.steps if s.protocol == "program_verify")
    t = data.table("program_verify")["t"]
    wall = step.stop_time_unix - step.start_time_unix
    return {"pv_hardware_s": float(t.max() - t.min()), "pv_wall_s": wall,
            "pv_hardware_over_wall": float(t.max() - t.min()) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--skip-pc", action="store_true", help="skip the (slow) PC-in-the-loop campaign")
    ap.add_argument("--cells-pv", type=int, default=32)
    args = ap.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pv = work / "pv.toml"
        pv.write_text(PV_ONLY.format(n=args.cells_pv))
        for loops in ("auto", "pc"):
            st = station_variant(STATION_8, loops, work)
            r = run(["run", str(pv), "--station", str(st)], work, f"pv32_{loops}")
            figures[f"program_verify_{args.cells_pv}_{loops}"] = {**r, **pv_step(r["file"])}
        figures["demo"] = run(["demo"], work, "demo")
        for loops in ("auto",) if args.skip_pc else ("auto", "pc"):
            st = station_variant(STATION_64, loops, work)
            figures[f"campaign_64x64_{loops}"] = run(["run", str(CAMPAIGN), "--station", str(st)], work,
                                                     f"campaign_{loops}")
    if "campaign_64x64_pc" in figures:
        a, p = figures["campaign_64x64_auto"], figures["campaign_64x64_pc"]
        figures["campaign_ratios"] = {"hardware_pc_over_on_instrument": p["hardware_s_without_retention_waits"]
                                      / a["hardware_s_without_retention_waits"],
                                      "forming_hardware_pc_over_on_instrument": p["hardware_s_forming"]
                                      / a["hardware_s_forming"],
                                      "program_verify_hardware_pc_over_on_instrument":
                                      p["hardware_s_program_verify_2pct"] / a["hardware_s_program_verify_2pct"],
                                      "wall_pc_over_on_instrument": p["wall_s"] / a["wall_s"],
                                      "transactions_pc_over_on_instrument": p["transactions"] / a["transactions"]}
    for name, values in figures.items():
        print(name)
        for k, v in values.items():
            if k != "file":
                print(f"  {k:26s} {v:.4g}" if isinstance(v, float) else f"  {k:26s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
