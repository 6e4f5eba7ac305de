"""The recurrent ops in the NumPy backend: a record's reference run from given states (initial by default)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir

Array = npt.NDArray[Any]
States = tuple[Array, ...]


def initial_states(op: ir.Recurrent, batch: int) -> States:
    """The states a call starts from without history (each state's initial value), one row per batch row."""
    return tuple(np.full((batch, *s.type.shape), s.initial, dtype=s.type.dtype.numpy) for s in op.states)


def run_recurrent(op: ir.Recurrent, x: Array, states: States | None = None) -> tuple[Array, States]:
    """``op`` on a batch ``x`` from ``states`` (default: the initial ones): its output batch and end states."""
    start = states if states is not None else initial_states(op, x.shape[0])
    end: States
    if isinstance(op, ir.Gru):
        assert op.record is not None, "lowering binds a fixed-point recurrent op's record"
        output, end = op.record.reference(x, start, op.weights())
    else:
        record = op.record
        assert record is not None and op.kernel.data is not None and op.recurrent.data is not None
        output, end = record.reference(x, start, op.kernel.data, op.recurrent.data,
                                       None if op.bias is None else op.bias.data)
    dtypes = [s.type.dtype.numpy for s in op.states]
    return (output.reshape((x.shape[0], *op.output.type.shape)).astype(op.output.type.dtype.numpy),
            tuple(e.astype(d) for e, d in zip(end, dtypes, strict=True)))
