"""Raw-TSP helpers for tests that drive the simulated bench with pyvisa alone (no rramlab driver)."""

from __future__ import annotations

import pyvisa

SMU = "GPIB0::26::INSTR"
MATRIX = "GPIB0::16::INSTR"
CONTROLLER = "TCPIP0::rramlab-bench::inst0::INSTR"


def open_bench(rm: pyvisa.ResourceManager):  # noqa: ANN201
    """(smu, matrix, controller) message-based resources with the instruments' terminations."""
    smu = rm.open_resource(SMU, read_termination="\n", write_termination="\n")
    mx = rm.open_resource(MATRIX, read_termination="\n", write_termination="\n")
    ctl = rm.open_resource(CONTROLLER, read_termination="\n", write_termination="\n")
    return smu, mx, ctl


def cell_channels(row: int, col: int) -> str:
    """Crosspoints of the default bench reaching cell (row, col), 1-based: gate, bit line, source line."""
    return f"1B{row:02d},2A{col:02d},3C{col:02d}"
