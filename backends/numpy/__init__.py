"""The NumPy backend: runs a lowered graph with the arithmetic of :mod:`nndsl.qmath`."""

from nndsl.backends.numpy.interpreter import run, run_op

__all__ = ["run", "run_op"]
