"""Bench-server benchmark (not a test): ``*IDN?`` round trip through pyvisa, in-process vs bench server.

    python tests/benchmarks/bench_server.py [--n 2000] [--reps 7] [--json out.json]

Each query is timed on its own; the figure is the median over all queries (local and remote loops
interleaved ABAB so both see the same machine load), in µs. Remote runs over a unix socket and, for
comparison, loopback TCP.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pyvisa

from rramlab.simulator.server import BenchServerProcess

SMU = "GPIB0::26::INSTR"


def _times(inst: pyvisa.resources.MessageBasedResource, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        inst.query("*IDN?")
        out.append(time.perf_counter() - t0)
    return out


def _open(library: str) -> tuple[pyvisa.ResourceManager, pyvisa.resources.MessageBasedResource]:
    rm = pyvisa.ResourceManager(library)
    return rm, rm.open_resource(SMU, read_termination="\n", write_termination="\n")


def run(n: int, reps: int) -> dict[str, float]:
    with BenchServerProcess("?seed=3") as unix_srv, BenchServerProcess("?seed=3", listen="tcp:127.0.0.1:0") as tcp_srv:
        targets = {"local": "?seed=3&tag=bench-server-idn@rramlab", "unix": unix_srv.library, "tcp": tcp_srv.library}
        opened = {k: _open(lib) for k, lib in targets.items()}
        samples: dict[str, list[float]] = {k: [] for k in targets}
        for _, inst in opened.values():                          # warm-up
            _times(inst, 200)
        for _ in range(reps):
            for k, (_, inst) in opened.items():
                samples[k] += _times(inst, n)
        for rm, _ in opened.values():
            rm.close()
    out = {f"{k}_idn_median_us": statistics.median(v) * 1e6 for k, v in samples.items()}
    out.update({f"{k}_idn_p90_us": statistics.quantiles(v, n=10)[-1] * 1e6 for k, v in samples.items()})
    out["queries_each"] = n * reps
    out["unix_over_local"] = out["unix_idn_median_us"] / out["local_idn_median_us"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    result = run(args.n, args.reps)
    for k, v in result.items():
        print(f"{k:24s} {v:10.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
