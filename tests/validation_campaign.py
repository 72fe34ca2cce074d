"""Device-model validation experiments driven through VISA on the simulated bench (raw TSP, no driver).

Each experiment runs as a lab would run it: the 707B connects one cell at a time (outputs off while
relays move), the 2636B runs the pulse/read loops of ``tsp/rr_lib.tsp`` on the instrument, the bench
controller's clock provides waits. Nothing here touches the device model directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyvisa
from tsp_lib import load_lib
from tsp_session import cell_channels, open_bench

BENCH = Path(__file__).parent / "data" / "validation_bench.toml"
ROWS = COLS = 12
V_READ = 0.2
GATE = 3.3          # word line during pulses and reads (device_params.pulse_gate_voltage)
WIDTH = 2.5e-6      # paper pulse width
NPLC_VERIFY = 1.0   # 20 ms verify reads
US = 1e-6


def band_voltages(target: float) -> tuple[float, float]:
    """(V_set, V_reset) of the paper's program-verify bands (arXiv 2502.04524)."""
    v_set = 1.5 if target >= 60 * US else 1.35
    v_reset = -1.5 if target < 30 * US else -1.3
    return v_set, v_reset


@dataclass
class Campaign:
    """A validation bench session for one seed."""

    seed: int
    rm: pyvisa.ResourceManager = field(init=False)

    def __post_init__(self) -> None:
        self.rm = pyvisa.ResourceManager(f"{BENCH}?seed={self.seed}&tag=validation-{self.seed}@rramlab")
        self.smu, self.mx, self.ctl = open_bench(self.rm)
        self.smu.timeout = 60_000
        load_lib(self.smu)

    def close(self) -> None:
        self.rm.close()

    @property
    def bench(self):  # noqa: ANN201 - test side channel (events, assertions only)
        return self.rm.visalib.bench

    def connect(self, cell: int) -> None:
        self.smu.write("rr_outputs_off()")
        self.mx.write(f"channel.exclusiveclose('{cell_channels(cell // COLS + 1, cell % COLS + 1)}')")

    def now(self) -> float:
        return float(self.ctl.query("CLOCk:TIME?"))

    # ------------------------------------------------------------------ V1
    def form_all(self) -> np.ndarray:
        """Forming staircase 0→4 V, 10 mV / 1 NPLC steps, V_G = 1.2 V, then the first RESET sweep."""
        v_form = np.full(ROWS * COLS, np.nan)
        for cell in range(ROWS * COLS):
            self.connect(cell)
            reply = self.smu.query("print(rr_form(4, 0.01, 1.2, 1e-3, 50e-6))")
            if reply != "nil":
                v_form[cell] = float(reply)
            self.smu.write("rr_sweep(-1.4, -0.02, 1.2)")
        return v_form

    # ------------------------------------------------------------------ V2
    def open_loop(self, cell: int) -> np.ndarray:
        """400 SET / 400 RESET / 400 SET / 400 RESET / 250 alternating pairs; G after each pulse (S)."""
        self.connect(cell)
        s = self.smu
        s.write(f"rr_bias({GATE}); rr_pulse_setup({WIDTH}); smua.nvbuffer2.clear()")
        for v in (1.35, -1.3, 1.35, -1.3):
            s.write(f"rr_train(400, {v}, {V_READ}, 0.1)")
        s.write(f"for k = 1, 250 do rr_train(1, 1.35, {V_READ}, 0.1); rr_train(1, -1.3, {V_READ}, 0.1) end")
        reply = s.query("printbuffer(1, smua.nvbuffer2.n, smua.nvbuffer2.readings)")
        s.write("rr_outputs_off()")
        return np.array([float(x) for x in reply.split(", ")]) / V_READ

    # ------------------------------------------------------------------ V3
    def program(self, cell: int, target: float, acceptance: float, max_iterations: int = 1000,
                reset_first: bool = False) -> tuple[float, int]:
        """The paper's program-verify on one cell: (accepted conductance S, pulses used). With
        ``reset_first`` the cell is first RESET (5 × −1.5 V), so programming always ends on a fresh pulse."""
        self.connect(cell)
        v_set, v_reset = band_voltages(target)
        self.smu.write(f"rr_bias({GATE}); rr_pulse_setup({WIDTH})")
        if reset_first:
            self.smu.write("for k = 1, 5 do rr_pulse(-1.5) end")
        g, it = self.smu.query(f"print(rr_pv({target!r}, {acceptance!r}, {v_set}, {v_reset}, {V_READ}, "
                               f"{NPLC_VERIFY}, {max_iterations}))").split("\t")
        return float(g), int(float(it))

    def read(self, cell: int) -> float:
        self.connect(cell)
        self.smu.write(f"rr_bias({GATE})")
        return float(self.smu.query(f"print(rr_read({V_READ}, {NPLC_VERIFY}))"))


def open_loop_metrics(g: np.ndarray) -> dict[str, float]:
    """Paper metrics of one device's 2,100-pulse trace (arXiv 2502.04524): G in µS."""
    g = g / US
    signs = np.concatenate([np.ones(400), -np.ones(400), np.ones(400), -np.ones(400), np.tile([1.0, -1.0], 250)])
    gmax = 0.5 * (g[350:400].mean() + g[1150:1200].mean())
    gmin = 0.5 * (g[750:800].mean() + g[1550:1600].mean())
    gsp = g[-100:].mean()
    delta = np.diff(g[1599:]) * signs[1600:]     # pulse-direction-signed steps of the alternating part
    dgsp = delta.mean()
    return {"gmax": gmax, "gmin": gmin, "gsp": gsp, "n_states": (gmax - gmin) / dgsp,
            "nsr": delta.std(ddof=1) / dgsp, "sp_skew": (gmax - gsp) / (gmax - gmin)}
