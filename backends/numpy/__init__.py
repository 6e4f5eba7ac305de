"""The NumPy backend: runs a lowered graph with the arithmetic of :mod:`nndsl.qmath`."""

from .interpreter import run, run_op

__all__ = ["run", "run_op"]
