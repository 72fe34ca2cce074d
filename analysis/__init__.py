"""rramlab.analysis: run datasets, figure extraction, statistics and plots.

Modules: ``dataset`` (open/write run files), ``forming``, ``switching``, ``open_loop``,
``programming`` (σ(G) fits, number of states), ``retention`` (relaxation law), ``mvm`` (64×64 MVM
error), ``summary`` (the JSON run summary) and ``plots`` (matplotlib figures; imported on demand).
"""

from .dataset import open_run
from .summary import summarize

__all__ = ["open_run", "summarize"]
