"""Interpreter for lowered graphs: the executable reference the C backend must equal.

Integer ops call :mod:`nndsl.qmath` (the one definition of their semantics);
f32 ops compute in float32. Every function takes a batch: activations carry
a leading batch axis here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.qmath.requant import multiply_by_quantized_multiplier
from nndsl.qmath.softmax import softmax_s8
from nndsl.types import DType

Array = npt.NDArray[np.generic]


def _requantize(acc: npt.NDArray[np.int64], requant: ir.Requant, dtype: DType) -> Array:
    """``clamp(mbqm(acc, multiplier[c], shift[c]) + output_offset)``; channels on the last axis."""
    multipliers = np.asarray(requant.multipliers, dtype=np.int64)
    shifts = np.asarray(requant.shifts, dtype=np.int64)
    scaled = multiply_by_quantized_multiplier(acc, multipliers, shifts) + requant.output_offset
    return np.clip(scaled, requant.act_min, requant.act_max).astype(dtype.numpy)


def _float_activation(x: npt.NDArray[np.float32], activation: ir.ActivationKind) -> npt.NDArray[np.float32]:
    low, high = activation.real_range
    if low is not None:
        x = np.maximum(x, np.float32(low))
    if high is not None:
        x = np.minimum(x, np.float32(high))
    return x


def _dense(op: ir.Dense, x: Array) -> Array:
    assert op.kernel.data is not None
    if op.requant is None:
        out = x.astype(np.float32) @ op.kernel.data.astype(np.float32)
        if op.bias is not None and op.bias.data is not None:
            out = out + op.bias.data.astype(np.float32)
        return _float_activation(out.astype(np.float32), op.activation)
    acc = (x.astype(np.int64) + op.requant.input_offset) @ op.kernel.data.astype(np.int64)
    if op.bias is not None and op.bias.data is not None:
        acc = acc + op.bias.data.astype(np.int64)
    return _requantize(acc, op.requant, op.output.type.dtype)


def _activation(op: ir.Activation, x: Array) -> Array:
    if op.requant is None:
        return _float_activation(x.astype(np.float32), op.activation)
    return _requantize(x.astype(np.int64) + op.requant.input_offset, op.requant, op.output.type.dtype)


def _softmax(op: ir.Softmax, x: Array) -> Array:
    if op.params is None:
        values = x.astype(np.float32)
        exps = np.exp((values - values.max(axis=-1, keepdims=True)) * np.float32(op.beta))
        probabilities: Array = (exps / exps.sum(axis=-1, keepdims=True)).astype(np.float32)
        return probabilities
    result: Array = softmax_s8(x, op.params)
    return result


def run_op(op: ir.Op, x: Array) -> Array:
    """One op on a batch ``x`` of shape ``(batch, *op.input.type.shape)``."""
    batch = x.shape[0]
    match op:
        case ir.Dense():
            y = _dense(op, x)
        case ir.Activation():
            y = _activation(op, x)
        case ir.Softmax():
            y = _softmax(op, x)
        case ir.Reshape():
            y = x
        case _:
            raise AssertionError(f"numpy backend: unhandled op {type(op).__name__}")
    return y.reshape((batch, *op.output.type.shape)).astype(op.output.type.dtype.numpy)


def run(graph: ir.Graph, x: Array, trace: bool = False) -> Array | dict[str, Array]:
    """Run ``graph`` on a batch ``x`` (leading batch axis, input dtype).

    With ``trace`` the result maps every tensor name, in execution order, to its
    batch of values; otherwise it is the output batch.
    """
    values: dict[str, Array] = {graph.input.name: x}
    for op in graph.ops:
        values[op.output.name] = run_op(op, values[op.input.name])
    return values if trace else values[graph.output.name]
