"""The NumPy backend: runs a lowered graph with the arithmetic of :mod:`nndsl.qmath`."""

from .interpreter import run, run_op
from .stateful import run_stateful

__all__ = ["run", "run_op", "run_stateful"]
