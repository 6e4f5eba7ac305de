"""Interpreter for lowered graphs: the executable reference the C backend must equal.

Integer ops call :mod:`nndsl.qmath` (the one definition of their semantics);
f32 ops compute in float32. Every function takes a batch: activations carry
a leading batch axis here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.ir import assert_never
from nndsl.qmath.pooling import avg_pool_s8, avg_pool_s16
from nndsl.qmath.requant import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_int64
from nndsl.qmath.shift import requantize_q
from nndsl.types import DType
from nndsl.windows import as_2d, output_hw, window_taps

from .recurrent import run_recurrent

Array = npt.NDArray[Any]


def _requantize(acc: npt.NDArray[np.int64], requant: ir.Requant | ir.ShiftRequant, dtype: DType,
                wide: bool = False) -> Array:
    """``clamp(mbqm(acc, multiplier[c], shift[c]) + output_offset)``; channels on the last axis.

    ``wide``: the int64-accumulator multiply of 16x8 dense and conv kernels;
    otherwise TFLite's int32 one, in ``requant.rounding``'s scheme. A
    fixed-point op's output stage is a rounding shift instead.
    """
    if isinstance(requant, ir.ShiftRequant):
        return requantize_q(acc, requant.shift, requant.act_min, requant.act_max).astype(dtype.numpy)
    multipliers = np.asarray(requant.multipliers, dtype=np.int64)
    shifts = np.asarray(requant.shifts, dtype=np.int64)
    if wide:
        scaled = multiply_by_quantized_multiplier_int64(acc, multipliers, shifts)
    else:
        scaled = multiply_by_quantized_multiplier(acc, multipliers, shifts, requant.rounding)
    scaled = scaled + requant.output_offset
    return np.clip(scaled, requant.act_min, requant.act_max).astype(dtype.numpy)


def _float_activation(x: Array, activation: ir.ActivationKind) -> Array:
    low, high = activation.real_range
    if low is not None:
        x = np.maximum(x, np.float32(low))
    if high is not None:
        x = np.minimum(x, np.float32(high))
    return x


Observer = Callable[[ir.Op, Array], None]


def _exact_dtype(x: Array, offset: int, kernel: Array, terms: int) -> type[np.generic]:
    """The fastest dtype in which sums of ``terms`` products ``(x + offset) * kernel`` are exact.

    Every partial sum is an integer below the largest sum of absolute products, which float32 holds
    exactly up to 2**24 and float64 up to 2**53, whatever order BLAS adds in; beyond, int64 (NumPy's own
    loop). The bound comes from ``x``'s integer dtype, so no pass over the data is needed.
    """
    info = np.iinfo(x.dtype)
    largest = max(abs(int(info.min) + offset), abs(int(info.max) + offset)) * int(np.abs(kernel).max(initial=0))
    if largest * terms < 2**24:
        return np.float32
    return np.float64 if largest * terms < 2**53 else np.int64


def _dense(op: ir.Dense, x: Array, observe: Observer | None = None) -> Array:
    assert op.kernel.data is not None
    if op.requant is None:
        out = x.astype(np.float32) @ op.kernel.data.astype(np.float32)
        if op.bias is not None and op.bias.data is not None:
            out = out + op.bias.data.astype(np.float32)
        return _float_activation(out.astype(np.float32), op.activation)
    work = _exact_dtype(x, op.requant.input_offset, op.kernel.data, op.kernel.data.shape[0])
    product = (x.astype(work) + work(op.requant.input_offset)) @ op.kernel.data.astype(work)
    acc = product.astype(np.int64)
    if op.bias is not None and op.bias.data is not None:
        acc += op.bias.data.astype(np.int64)
    if observe is not None:
        observe(op, acc)
    dtype = op.output.type.dtype
    return _requantize(acc, op.requant, dtype, wide=dtype is DType.I16)


PATCH_ELEMENTS = 2**21  # the im2col matrix of an integer conv is built this many elements at a time


def _integer_conv_sum(op: ir.Conv, x: Array, out_hw: ir.Pair) -> npt.NDArray[np.int64]:
    """The accumulators of an integer conv without bias, [B, OH, OW, O], in a dtype whose sums are exact.

    A conv puts every tap's values side by side (im2col) for one matrix product per slice of the batch;
    a depthwise conv, whose taps meet one channel each, adds tap by tap.
    """
    assert op.kernel.data is not None and op.requant is not None
    kernel = op.kernel.data.reshape((1, *op.kernel.data.shape)) if op.window.rank == 1 else op.kernel.data
    taps, channels = kernel.shape[0] * kernel.shape[1], kernel.shape[2]  # kernel: [KH, KW, C, O or M]
    work = _exact_dtype(x, op.requant.input_offset, kernel, taps if op.depthwise else taps * channels)
    values = np.add(x, op.requant.input_offset, dtype=work)
    if op.depthwise:
        weights = kernel.astype(work)
        acc = np.zeros((x.shape[0], *out_hw, channels, kernel.shape[3]), dtype=work)
        for (ky, kx), view in window_taps(values, op.window, out_hw, 0):
            acc += view[..., np.newaxis] * weights[ky, kx]
        return acc.reshape((x.shape[0], *out_hw, -1)).astype(np.int64)
    matrix = kernel.reshape((taps * channels, -1)).astype(work)
    positions = out_hw[0] * out_hw[1]
    rows = max(1, PATCH_ELEMENTS // max(1, positions * taps * channels))
    parts = []
    for start in range(0, x.shape[0], rows):
        patches = np.stack([view for _, view in window_taps(values[start : start + rows], op.window, out_hw, 0)],
                           axis=-2)
        batch = patches.shape[0]
        parts.append((patches.reshape((batch * positions, taps * channels)) @ matrix).reshape((batch, *out_hw, -1)))
    acc = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return acc.astype(np.int64)


def _conv(op: ir.Conv, x: Array, observe: Observer | None = None) -> Array:
    """Sum over kernel taps; int8 inputs are offset first, so padding with 0 is padding with the zero point."""
    assert op.kernel.data is not None
    out_hw = output_hw(op, op.window)
    if op.requant is not None:
        acc = _integer_conv_sum(op, x, out_hw)
        if op.bias is not None and op.bias.data is not None:
            acc += op.bias.data.astype(np.int64)
        acc = acc.reshape((x.shape[0], *op.output.type.shape))
        if observe is not None:
            observe(op, acc)
        dtype = op.output.type.dtype
        return _requantize(acc, op.requant, dtype, wide=dtype is DType.I16)
    kernel = op.kernel.data.astype(np.float32)
    kernel = kernel.reshape((1, *kernel.shape)) if op.window.rank == 1 else kernel  # [KH, KW, C, O or M]
    out = np.zeros((x.shape[0], *out_hw, op.output.type.shape[-1]), dtype=np.float32)
    for (ky, kx), view in window_taps(x.astype(np.float32), op.window, out_hw, 0):
        if op.depthwise:
            out += (view[..., :, np.newaxis] * kernel[ky, kx]).reshape(out.shape)
        else:
            out += view @ kernel[ky, kx]
    if op.bias is not None and op.bias.data is not None:
        out += op.bias.data.astype(np.float32)
    out = out.reshape((x.shape[0], *op.output.type.shape))
    return _float_activation(out, op.activation)


def _pool(op: ir.Pool, x: Array) -> Array:
    out_hw = output_hw(op, op.window)
    if op.pool is ir.PoolKind.AVG and op.act_range is not None:
        flat = op.window.as_2d()
        pads = (flat.pads[0][0], flat.pads[1][0])
        average = avg_pool_s16 if op.output.type.dtype is DType.I16 else avg_pool_s8
        result = average(as_2d(x, op.window), flat.size, flat.stride, pads, out_hw, *op.act_range)
        return result.reshape((x.shape[0], *op.output.type.shape))
    integer = op.act_range is not None
    if op.pool is ir.PoolKind.MAX:
        fill: Any = np.iinfo(np.int32).min if integer else -np.inf
        work = x.astype(np.int32 if integer else np.float32)
        taps = [view for _, view in window_taps(work, op.window, out_hw, fill)]
        result = np.maximum.reduce(taps)
    else:  # f32 average over the in-bounds values only
        values = window_taps(x.astype(np.float32), op.window, out_hw, 0.0)
        ones = window_taps(np.ones(x.shape, dtype=np.float32), op.window, out_hw, 0.0)
        result = np.add.reduce([v for _, v in values]) / np.add.reduce([o for _, o in ones])
    result = result.reshape((x.shape[0], *op.output.type.shape))
    if op.act_range is not None:
        return np.clip(result, *op.act_range).astype(op.output.type.dtype.numpy)
    return _float_activation(result.astype(np.float32), op.activation)


def _global_pool(op: ir.GlobalPool, x: Array) -> Array:
    positions = x.reshape((x.shape[0], -1, x.shape[-1]))
    if op.pool is ir.PoolKind.MAX:
        return positions.max(axis=1)
    if op.act_range is not None:  # fixed point: the average pool over every position, one rounding
        count = positions.shape[1]
        average = avg_pool_s16 if op.output.type.dtype is DType.I16 else avg_pool_s8
        return average(positions[:, np.newaxis], (1, count), (1, 1), (0, 0), (1, 1), *op.act_range)
    if op.impl is not None:
        return op.impl.reference(positions)
    return positions.astype(np.float32).mean(axis=1, dtype=np.float32)


def _add(op: ir.Add, a: Array, b: Array) -> Array:
    if op.impl is not None:
        return op.impl.reference(a, b)
    return _float_activation((a.astype(np.float32) + b.astype(np.float32)), op.activation)


def _operands(op: ir.Binary, inputs: tuple[Array, ...]) -> tuple[Array, Array]:
    """Both operands as batches of the output's rank (constants with a batch axis of 1), ready to broadcast."""
    rank = len(op.output.type.shape)
    computed = iter(inputs)
    aligned = []
    for tensor in op.operands:
        values = tensor.data[np.newaxis] if tensor.data is not None else next(computed)
        shape = tensor.type.shape
        aligned.append(values.reshape((values.shape[0], *(1,) * (rank - len(shape)), *shape)))
    return aligned[0], aligned[1]


F32_BINARY: dict[ir.BinaryOp, Callable[[Array, Array], Array]] = {
    ir.BinaryOp.ADD: np.add,
    ir.BinaryOp.SUB: np.subtract,
    ir.BinaryOp.MUL: np.multiply,
    ir.BinaryOp.MAXIMUM: np.maximum,
    ir.BinaryOp.MINIMUM: np.minimum,
    ir.BinaryOp.SQUARED_DIFFERENCE: lambda x, y: np.square(np.subtract(x, y)),
    ir.BinaryOp.PRELU: lambda x, y: np.where(x >= 0, x, np.multiply(x, y)),
}


def _binary(op: ir.Binary, inputs: tuple[Array, ...]) -> Array:
    a, b = np.broadcast_arrays(*_operands(op, inputs))
    if op.impl is not None:
        return op.impl.reference(a, b)
    values = F32_BINARY[op.operator](a.astype(np.float32), b.astype(np.float32)).astype(np.float32)
    return _float_activation(values, op.activation)


def _pad(op: ir.Pad, x: Array) -> Array:
    quant = op.output.type.quant
    fill = quant.zero_point if quant is not None else 0.0
    return np.pad(x, ((0, 0), *op.pads), constant_values=fill)


def _elementwise(op: ir.Elementwise, x: Array) -> Array:
    if op.impl is not None:
        return op.impl.reference(x)
    v = x.astype(np.float32)
    match op.function:
        case ir.Function.TANH:
            return np.tanh(v)
        case ir.Function.SIGMOID:
            with np.errstate(over="ignore"):  # exp overflows to inf below -88: 1 / inf is the right 0
                return (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32)
        case ir.Function.HARD_SWISH:
            return (v * np.clip(v + np.float32(3), 0, 6) / np.float32(6)).astype(np.float32)
        case ir.Function.LEAKY_RELU:
            return np.where(v > 0, v, v * np.float32(op.alpha)).astype(np.float32)
    raise AssertionError(op.function)


def _activation(op: ir.Activation, x: Array) -> Array:
    if op.requant is None:
        return _float_activation(x.astype(np.float32), op.activation)
    return _requantize(x.astype(np.int64) + op.requant.input_offset, op.requant, op.output.type.dtype)


def _softmax(op: ir.Softmax, x: Array) -> Array:
    if op.impl is not None:
        return op.impl.reference(x)
    values = x.astype(np.float32)
    exps = np.exp((values - values.max(axis=-1, keepdims=True)) * np.float32(op.beta))
    probabilities: Array = (exps / exps.sum(axis=-1, keepdims=True)).astype(np.float32)
    return probabilities


def _batch_norm(op: ir.BatchNorm, x: Array) -> Array:
    assert op.scale.data is not None and op.offset.data is not None
    scaled: Array = x.astype(np.float32) * op.scale.data.astype(np.float32) + op.offset.data.astype(np.float32)
    return scaled


def run_op(op: ir.AnyOp, *inputs: Array, observe: Observer | None = None) -> Array:
    """One op on batches ``inputs`` of shape ``(batch, *tensor.type.shape)``.

    ``observe`` sees each int8 dense or conv op's int32 accumulators (the range
    analysis is tested against them).
    """
    x = inputs[0]
    batch = x.shape[0]
    match op:
        case ir.Dense():
            y = _dense(op, x, observe)
        case ir.Conv():
            y = _conv(op, x, observe)
        case ir.Pool():
            y = _pool(op, x)
        case ir.GlobalPool():
            y = _global_pool(op, x)
        case ir.Add():
            y = _add(op, x, inputs[1])
        case ir.Binary():
            y = _binary(op, inputs)
        case ir.Quantize() if op.impl is not None:
            y = op.impl.reference(x)
        case ir.Quantize():
            assert op.requant is not None
            y = _requantize(x.astype(np.int64) + op.requant.input_offset, op.requant, op.output.type.dtype)
        case ir.Dequantize():
            assert op.impl is not None
            y = op.impl.reference(x)
        case ir.Concat():
            y = np.concatenate(inputs, axis=op.axis + 1)
        case ir.Pad():
            y = _pad(op, x)
        case ir.Activation():
            y = _activation(op, x)
        case ir.Elementwise():
            y = _elementwise(op, x)
        case ir.Softmax():
            y = _softmax(op, x)
        case ir.BatchNorm():
            y = _batch_norm(op, x)
        case ir.Reshape():
            y = x
        case ir.Transpose() | ir.Slice() | ir.Resize():
            y = op.impl.reference(x)
        case ir.Reduce():
            kernel = op.kernel
            assert kernel is not None  # lowering binds an integer mean's
            y = kernel.reference(x)
        case ir.Gru():  # from a zero state; a stateful network's calls go through stateful.run_stateful
            y, _ = run_recurrent(op, x)
        case ir.Lstm():  # from the initial state, as the Gru
            y, _ = run_recurrent(op, x)
        case _:
            assert_never(op)
    return y.reshape((batch, *op.output.type.shape)).astype(op.output.type.dtype.numpy, copy=False)


# Rows of a batch run together: the largest tensor of a slice has about this many elements, so that the
# integer temporaries of requantisation stay in cache (3-4x faster than one pass over 10,000 inputs).
SLICE_ELEMENTS = 2**16


def run(graph: ir.Graph, x: Array, trace: bool = False, observe: Observer | None = None) -> Array | dict[str, Array]:
    """Run ``graph`` on a batch ``x`` (leading batch axis, input dtype).

    With ``trace`` the result maps every tensor name, in execution order, to its
    batch of values; otherwise it is the output batch. The batch runs in slices
    (every value is independent of the other rows); with ``observe``, in one piece,
    so that it sees each op's accumulators for the whole batch.
    """
    largest = max([graph.input.type.size, *(op.output.type.size for op in graph.ops)])
    rows = len(x) if observe is not None else max(1, SLICE_ELEMENTS // max(1, largest))
    if len(x) <= rows:
        return _run_slice(graph, x, trace, observe)
    slices = [_run_slice(graph, x[start : start + rows], trace, None) for start in range(0, len(x), rows)]
    if trace:
        traces = [s for s in slices if isinstance(s, dict)]
        return {name: np.concatenate([t[name] for t in traces]) for name in traces[0]}
    return np.concatenate([s for s in slices if not isinstance(s, dict)])


def _run_slice(graph: ir.Graph, x: Array, trace: bool, observe: Observer | None) -> Array | dict[str, Array]:
    values: dict[str, Array] = {graph.input.name: x}
    for op in graph.ops:
        values[op.output.name] = run_op(op, *(values[t.name] for t in op.inputs), observe=observe)
    return values if trace else values[graph.output.name]
