"""Timing model: how long each operation takes on the real instruments.

Every figure carries its source. [doc] = vendor datasheet/manual,
[ASSUMP] = a tunable default with no measurement behind it yet (capture on hardware).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _f(default: float, unit: str, source: str) -> float:
    return field(default=default, metadata={"unit": unit, "source": source})  # type: ignore[return-value]


@dataclass(frozen=True)
class TimingModel:
    """Durations (s) the simulated bench charges on its virtual clock."""

    line_frequency: float = _f(50.0, "Hz", "[ASSUMP] mains frequency; 60 Hz benches set it in the bench file")
    bus_write: float = _f(150e-6, "s", "[ASSUMP] GPIB write of a short command incl. parse (~0.7 ms per "
                          "2602B source-measure round trip at 0.001 NPLC [doc] SPEC-2602B)")
    bus_read: float = _f(150e-6, "s", "[ASSUMP] GPIB read of a short reply")
    bus_per_byte: float = _f(1e-6, "s", "[ASSUMP] ~1 MB/s HS488 payload rate")
    lua_chunk: float = _f(50e-6, "s", "[ASSUMP] TSP chunk compile + run overhead")
    measure_overhead: float = _f(200e-6, "s", "[ASSUMP] autozero/ranging overhead per reading; "
                                 "57 readings/s at 1 NPLC to GPIB [doc] SPEC-2602B")
    source_settle: float = _f(50e-6, "s", "[ASSUMP] 2636B source settling on the 1 mA-100 µA ranges")
    pulse_overhead: float = _f(120e-6, "s", "[ASSUMP] trigger-model arm + source-action latency per pulse")
    relay_settle: float = _f(4e-3, "s", "[doc] 707B manual example: each relay takes 4 ms to close")
    relay_open: float = _f(2e-3, "s", "[ASSUMP] 7174A release time")
    reset: float = _f(50e-3, "s", "[ASSUMP] reset() duration")
    # wafer prober (MPI SENTIO): no public figure exists for any of these (simulator/sentio.py, [U])
    chuck_z_move: float = _f(0.25, "s", "[ASSUMP] chuck z move between separation and contact")
    chuck_xy_overhead: float = _f(0.15, "s", "[ASSUMP] chuck xy move: acceleration, braking, settling")
    chuck_xy_speed: float = _f(50e3, "µm/s", "[ASSUMP] chuck xy travel speed (50 mm/s)")
    chuck_ramp_rate: float = _f(0.2, "K/s", "[ASSUMP] thermal chuck ramp-rate limit (12 °C/min)")
    chuck_thermal_tau: float = _f(30.0, "s", "[ASSUMP] thermal chuck time constant near the set-point")

    def integration_time(self, nplc: float) -> float:
        """Integration time (s) of one reading at ``nplc`` power-line cycles."""
        return nplc / self.line_frequency
