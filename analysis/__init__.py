"""rramlab.analysis: run datasets, figure extraction, statistics and plots.

Modules: ``dataset`` (open/write run files), ``forming``, ``switching``, ``open_loop``,
``programming`` (σ(G) fits, number of states), ``retention`` (relaxation law), ``mvm`` (64×64 MVM
error), ``summary`` (the JSON run summary) and ``plots`` (matplotlib figures; imported on demand).
``open_run`` and ``summarize`` are imported on first use, so writing a run does not pay for scipy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["open_run", "summarize"]


def __getattr__(name: str) -> Any:
    if name == "open_run":
        from .dataset import open_run

        return open_run
    if name == "summarize":
        from .summary import summarize

        return summarize
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
