"""Simulator benchmark (not a test): figures side by side in one run, as ratios.

    python -m pip install ".[bench]"      # pyvisa-sim, for the side-by-side query loop
    python tests/benchmarks/bench_simulator.py [--json out.json]

1. ``*IDN?`` query round trip through the @rramlab backend vs the same loop through pyvisa-sim
   (interleaved ABAB repetitions, medians);
2. a TSP query that measures a formed cell biased for a read (``print(smua.measure.i())``), µs per round trip;
3. program-verify of 32 formed cells with raw TSP and the PC in the loop (one VISA query per iteration, as a
   lab script without an instrument-side loop would run it): simulated-hardware time / wall time of the
   program-verify alone (the cells are formed before the clock starts). The same through ``rramlab run``,
   on-instrument and PC in the loop, is in ``bench_campaign.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pyvisa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsp_lib import load_lib  # noqa: E402
from tsp_session import cell_channels, open_bench  # noqa: E402

N_QUERY = 2000


def _loop(inst: pyvisa.resources.MessageBasedResource, n: int, cmd: str = "*IDN?") -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        inst.query(cmd)
    return (time.perf_counter() - t0) / n


def idn_round_trips(reps: int = 5) -> dict[str, float]:
    ours_rm = pyvisa.ResourceManager("?tag=bench-idn@rramlab")
    ours = ours_rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    try:
        sim_rm = pyvisa.ResourceManager("@sim")
        sim = sim_rm.open_resource("GPIB0::8::INSTR", read_termination="\n", write_termination="\n")
    except Exception as e:  # pyvisa-sim not installed
        print(f"pyvisa-sim unavailable ({e}); install rramlab[bench] for the side-by-side figure")
        sim = None
    a, b = [], []
    for _ in range(reps):
        a.append(_loop(ours, N_QUERY))
        if sim is not None:
            b.append(_loop(sim, N_QUERY))
    out = {"rramlab_idn_us": statistics.median(a) * 1e6}
    if b:
        out["pyvisa_sim_idn_us"] = statistics.median(b) * 1e6
        out["rramlab_over_pyvisa_sim"] = out["rramlab_idn_us"] / out["pyvisa_sim_idn_us"]
    ours_rm.close()
    # the measure round trip on a formed cell biased for a read (gate on, bit line at 0.2 V)
    rm = pyvisa.ResourceManager("?tag=bench-measure@rramlab")
    smu, mx, _ = open_bench(rm)
    load_lib(smu)
    mx.write(f"channel.exclusiveclose('{cell_channels(1, 1)}')")
    smu.query("print(rr_form(4, 0.01, 1.2, 1e-3, 50e-6))")
    smu.write("rr_sweep(-1.4, -0.02, 1.2); rr_bias(3.3); smua.source.levelv = 0.2")
    out["rramlab_measure_query_us"] = _loop(smu, N_QUERY, "print(smua.measure.i())") * 1e6
    rm.close()
    return out


def program_verify_32(acceptance: float = 0.02) -> dict[str, float]:
    rm = pyvisa.ResourceManager("?tag=bench-pv@rramlab")
    smu, mx, ctl = open_bench(rm)
    smu.timeout = 10_000
    load_lib(smu)
    for k in range(32):                               # forming first: not part of the figure
        mx.write(f"channel.exclusiveclose('{cell_channels(k // 8 + 1, k % 8 + 1)}')")
        smu.query("print(rr_form(4, 0.01, 1.2, 1e-3, 50e-6))")
        smu.write("rr_sweep(-1.4, -0.02, 1.2); rr_outputs_off()")
    mx.write("channel.open('allslots')")
    t_sim0 = float(ctl.query("CLOCk:TIME?"))
    wall0 = time.perf_counter()
    iterations = 0
    transactions = 0
    for k in range(32):
        row, col = k // 8 + 1, k % 8 + 1
        mx.write(f"channel.exclusiveclose('{cell_channels(row, col)}')")
        smu.write("rr_bias(3.3); rr_pulse_setup(2.5e-6)")
        target = (10 + 2.3 * k) * 1e-6                     # 10 … 81 µS
        vset = 1.5 if target > 60e-6 else 1.35
        vreset = -1.5 if target < 30e-6 else -1.3
        g = float(smu.query("print(rr_read(0.2, 1))"))
        transactions += 3
        pulses = 0
        while abs(g - target) > acceptance * target and pulses < 1000:   # paper: iteration axis to 1e3
            v = vset if g < target else vreset
            g = float(smu.query(f"rr_pulse({v}); print(rr_read(0.2, 1))"))
            pulses += 1
            transactions += 1
        iterations += pulses
        smu.write("rr_outputs_off()")
        mx.write("channel.open('allslots')")
        transactions += 2
    wall = time.perf_counter() - wall0
    sim = float(ctl.query("CLOCk:TIME?")) - t_sim0
    rm.close()
    return {"cells": 32, "acceptance": acceptance, "iterations": iterations, "transactions": transactions,
            "sim_hardware_time_s": sim, "wall_time_s": wall, "sim_over_wall": sim / wall,
            "wall_us_per_transaction": wall / transactions * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the figures to this JSON file")
    args = ap.parse_args()
    figures = {"idn": idn_round_trips(), "program_verify_2%": program_verify_32(0.02),
               "program_verify_0.2%": program_verify_32(0.002)}
    for name, values in figures.items():
        print(name)
        for k, v in values.items():
            print(f"  {k:28s} {v:.4g}" if isinstance(v, float) else f"  {k:28s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
