"""kill -9 trials of the run writer, many of them: the README's crash-consistency figure.

    python tests/benchmarks/kill_trials.py --trials 200 --jobs 2

Each trial kills a writer that commits without pause at a random moment (see tests/crash_trials.py) and
checks the run: readable, every acknowledged row present and bit-identical, and the HDF5 file built by
``recover`` readable with plain h5py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from crash_trials import run_trial  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-delay", type=float, default=1.5, help="latest kill, s after the writer starts")
    args = ap.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda s: run_trial(Path(d), s, args.max_delay), range(args.trials)))
    unreadable = [r for r in results if r.unreadable]
    lost = [r for r in results if r.lost_rows]
    h5 = [r for r in results if r.h5_unreadable]
    acked = [r.acked_units for r in results]
    extra = [r.committed_units - r.acked_units for r in results]
    print(f"{args.trials} kill -9 trials in {time.monotonic() - t0:.0f} s (kill at 0.02-{args.max_delay} s)")
    print(f"  runs unreadable:               {len(unreadable)}")
    print(f"  acknowledged rows lost/altered: {sum(r.lost_rows for r in results)} (in {len(lost)} runs)")
    print(f"  HDF5 files unreadable after recover: {len(h5)}")
    print(f"  kills during writing (acknowledged units > 0): {sum(a > 0 for a in acked)}; median acknowledged "
          f"units {statistics.median(acked):.0f}, max {max(acked)}")
    print(f"  units committed but not yet acknowledged at the kill: {sum(extra)} (in {sum(e > 0 for e in extra)} runs)")
    for r in (unreadable + lost + h5)[:10]:
        print("  FAIL", r)
    return 1 if unreadable or lost or h5 else 0


if __name__ == "__main__":
    sys.exit(main())
