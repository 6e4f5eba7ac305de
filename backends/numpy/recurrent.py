"""The recurrent ops in the NumPy backend: a record's reference run from given states (zeros by default)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir

Array = npt.NDArray[Any]
States = tuple[Array, ...]


def zero_states(op: ir.Recurrent, batch: int) -> States:
    """The states a call starts from without history: zeros, one row per batch row."""
    return tuple(np.zeros((batch, *s.type.shape), dtype=s.type.dtype.numpy) for s in op.states)


def run_recurrent(op: ir.Recurrent, x: Array, states: States | None = None) -> tuple[Array, States]:
    """``op`` on a batch ``x`` from ``states`` (default: zeros): its output batch and the states it ends with."""
    record = op.record
    assert record is not None, "lowering binds a fixed-point recurrent op's record"
    start = states if states is not None else zero_states(op, x.shape[0])
    output, end = record.reference(x, start, op.weights())
    dtype = op.output.type.dtype.numpy
    return output.reshape((x.shape[0], *op.output.type.shape)).astype(dtype), tuple(e.astype(dtype) for e in end)
