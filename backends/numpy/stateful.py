"""Stateful networks in the NumPy backend: recurrent state carried from one call to the next.

A stateless network runs as any other (each row of a batch from a zero state).
A network with stateful recurrent ops runs its rows in order, each one a call
that starts from the state the previous call left: what the C code's
``<name>_run`` does when called once per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir

from .interpreter import run_op
from .recurrent import run_recurrent

Array = npt.NDArray[Any]


def run_stateful(graph: ir.Graph, x: Array, state: dict[str, Array]) -> Array:
    """The rows of ``x`` as consecutive calls of a stateful network: ``state`` (by :attr:`ir.State.name`; a
    missing entry is its initial value) is read and updated in place. The output batch, one row per call."""
    outputs = []
    for row in x:
        values: dict[str, Array] = {graph.input.name: row[np.newaxis]}
        for op in graph.ops:
            inputs = [values[t.name] for t in op.inputs]
            if isinstance(op, ir.Recurrent) and ir.op_states(op):
                start = tuple(state[s.name][np.newaxis] if s.name in state else
                              np.full((1, *s.type.shape), s.initial, dtype=s.type.dtype.numpy) for s in op.states)
                values[op.output.name], end = run_recurrent(op, inputs[0], start)
                state.update({s.name: e[0] for s, e in zip(op.states, end, strict=True)})
            else:
                values[op.output.name] = run_op(op, *inputs)
        outputs.append(values[graph.output.name][0])
    return np.stack(outputs) if outputs else np.zeros((0, *graph.output.type.shape), graph.output.type.dtype.numpy)
