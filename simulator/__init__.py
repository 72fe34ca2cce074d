"""The simulated bench: a pyvisa backend (``@rramlab``) with emulated instruments and a ReRAM array.

Only tests import this package directly; stations reach it through pyvisa
(``pyvisa.ResourceManager("@rramlab")``).
"""

from .bench import Bench
from .bench_config import BenchConfig, BenchConfigError, load_bench_config

__all__ = ["Bench", "BenchConfig", "BenchConfigError", "load_bench_config"]
