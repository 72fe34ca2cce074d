"""Load tests/tsp/rr_lib.tsp into the emulated 2636B over VISA (as a lab loads a script)."""

from __future__ import annotations

from pathlib import Path

import pyvisa

LIB = Path(__file__).parent / "tsp" / "rr_lib.tsp"


def load_lib(smu: pyvisa.resources.MessageBasedResource) -> None:
    smu.write("loadscript rrlib")
    for line in LIB.read_text().splitlines():
        if line.strip():
            smu.write(line)
    smu.write("endscript")
    smu.write("rrlib()")
    assert smu.query("print(errorqueue.count)") == "0.00000e+00"
