"""Test stand-ins for a device under test on the simulated bench's circuit."""

from __future__ import annotations

from rramlab.simulator.electrical import FUNC_DCVOLTS, OUTPUT_ON, Circuit


def attach_resistor(circuit: Circuit, name: str, ohms: float) -> None:
    """A resistor from terminal ``name`` to ground (test stand-in for a device under test)."""
    ti = circuit._terms.index(name)
    source_current = circuit._source_current
    measure_current = circuit.measure_current

    def current(t: int, g: float | None = None) -> float:
        if t == ti:
            s = circuit.sources[name]
            return s.v_out / ohms if s.output == OUTPUT_ON else 0.0
        return source_current(t, g)

    def measure(n: str, t_int: float) -> float:
        s = circuit.sources[n]
        if n == name and s.output == OUTPUT_ON and not (s.in_compliance and s.func == FUNC_DCVOLTS):
            return s.v_out / ohms
        return measure_current(n, t_int)

    circuit._source_current = current          # type: ignore[method-assign]
    circuit.measure_current = measure          # type: ignore[method-assign]
    circuit.changed()
