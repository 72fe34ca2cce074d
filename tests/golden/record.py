"""Re-record the replies of a golden transcript from the emulators (review every change by hand!).

What this writes is a regression record of the emulator, never evidence of a real instrument's replies:
those are the manual pairs in tests/manual_pairs/*.toml, written from the manuals, never recorded.

    python tests/golden/record.py tests/golden/keithley2636b.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden_io import Transcript, dump, load  # noqa: E402
from golden_replay import replay  # noqa: E402


def main(paths: list[str]) -> None:
    for p in paths:
        path = Path(p)
        t = load(path.name)
        header = "\n".join(line[2:] for line in path.read_text().splitlines() if line.startswith("# "))
        steps = replay(t)
        path.write_text(dump(Transcript(bench=t.bench, steps=steps), header))
        print(f"{path}: {len(steps)} commands, {sum(r is not None for *_, r in steps)} replies")


if __name__ == "__main__":
    main(sys.argv[1:])
