"""Batch-norm folding arithmetic.

A batch norm is ``y = x * factor[c] + offset[c]`` per output channel. After a
dense or conv with no activation it folds into the weights: in f32 the kernel
and bias are rescaled; in int8 the kernel bytes stay (negated where the
factor is negative), the per-channel kernel scales absorb ``|factor|`` and the
int32 bias is recomputed on the new scale. An int8 batch norm that cannot
fold becomes a 1x1 depthwise convolution with int8 weights of +-127.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.diagnostics import DiagnosticSink
from nndsl.types import DType, Quant, TensorType, as_float32

Floats = npt.NDArray[np.float64]


def _by_channel(kernel: npt.NDArray[np.generic], op: ir.Dense | ir.Conv) -> npt.NDArray[np.generic]:
    """The kernel as [taps..., output channel], whatever its layout."""
    if isinstance(op, ir.Conv) and op.depthwise:
        return kernel.reshape((*kernel.shape[:-2], -1))
    return kernel


def _const(name: str, data: npt.NDArray[np.generic], dtype: DType, like: ir.Tensor, quant: Quant | None) -> ir.Tensor:
    return ir.Tensor(name, TensorType(dtype, tuple(data.shape), quant), like.loc, data)


def fold_into(op: ir.Dense | ir.Conv, bn: ir.BatchNorm) -> ir.Dense | ir.Conv | None:
    """``op`` followed by ``bn`` as one op, or None when the int8 arithmetic cannot absorb it."""
    assert bn.scale.data is not None and bn.offset.data is not None and op.kernel.data is not None
    factor = bn.scale.data.astype(np.float64)
    offset = bn.offset.data.astype(np.float64)
    name = bn.output.name
    kernel = _by_channel(op.kernel.data, op)
    if op.kernel.type.dtype is DType.F32:
        new_kernel = (kernel * factor.astype(np.float32)).astype(np.float32).reshape(op.kernel.data.shape)
        bias = op.bias.data.astype(np.float64) if op.bias is not None and op.bias.data is not None else 0.0
        new_bias = (bias * factor + offset).astype(np.float32)
        return replace(
            op,
            output=bn.output,
            kernel=_const(f"{name}/folded.kernel", new_kernel, DType.F32, op.kernel, None),
            bias=_const(f"{name}/folded.bias", new_bias, DType.F32, op.kernel, None),
        )
    return _fold_int8(op, kernel, factor, offset, bn)


def _fold_int8(op: ir.Dense | ir.Conv, kernel: npt.NDArray[np.generic], factor: Floats, offset: Floats,
               bn: ir.BatchNorm) -> ir.Dense | ir.Conv | None:
    assert op.kernel.type.quant is not None and op.input.type.quant is not None
    channels = factor.size
    scales = np.broadcast_to(np.asarray(op.kernel.type.quant.scales, dtype=np.float64), (channels,))
    new_scales = np.array([as_float32(s * abs(f)) for s, f in zip(scales, factor, strict=True)])
    negative = factor < 0
    flat = kernel.reshape(-1, channels).astype(np.int32)
    if np.any(new_scales == 0) or np.any((flat == -128) & negative):
        return None  # a zero factor, or a -128 weight whose negation does not fit int8
    new_kernel = np.where(negative, -flat, flat).astype(np.int8).reshape(op.kernel.data.shape)  # type: ignore[union-attr]
    input_scale = op.input.type.quant.scale
    old_bias = op.bias.data.astype(np.float64) if op.bias is not None and op.bias.data is not None else 0.0
    real_bias = old_bias * input_scale * scales * factor + offset
    new_bias = np.round(real_bias / (input_scale * new_scales))
    bias_dtype = op.input.type.dtype.bias
    low, high = bias_dtype.bounds
    if np.any(new_bias < low) or np.any(new_bias > high):
        return None
    name = bn.output.name
    quant = Quant(tuple(float(s) for s in new_scales), (0,) * channels, len(op.kernel.type.shape) - 1)
    return replace(
        op,
        output=bn.output,
        kernel=_const(f"{name}/folded.kernel", new_kernel, DType.I8, op.kernel, quant),
        bias=_const(f"{name}/folded.bias", new_bias.astype(bias_dtype.numpy), bias_dtype, op.kernel, None),
    )


def batch_norm_as_depthwise(bn: ir.BatchNorm, sink: DiagnosticSink) -> ir.AnyOp:
    """An int8 batch norm on its own: a 1x1 depthwise convolution computing the same affine map."""
    shape = bn.input.type.shape
    rank = len(shape) - 1
    if rank not in (1, 2):
        sink.error(bn.loc, f"an int8 batch_norm of shape {list(shape)} must follow a dense or conv layer "
                   "(with no activation in between) to be folded into it")
        return bn
    assert bn.scale.data is not None and bn.offset.data is not None and bn.input.type.quant is not None
    factor = bn.scale.data.astype(np.float64)
    channels = factor.size
    weights = np.where(factor < 0, -127, np.where(factor > 0, 127, 0)).astype(np.int8)
    scales = np.array([as_float32(abs(f) / 127) if f != 0 else 1.0 for f in factor])
    bias = np.round(bn.offset.data.astype(np.float64) / (bn.input.type.quant.scale * scales))
    bias_dtype = bn.input.type.dtype.bias
    low, high = bias_dtype.bounds
    if np.any(bias < low) or np.any(bias > high):
        sink.error(bn.loc, f"batch_norm offset is too large for an {bias_dtype.value} bias at this input scale")
        return bn
    name = bn.output.name
    kernel_shape = (*(1,) * rank, channels, 1)
    quant = Quant(tuple(float(s) for s in scales), (0,) * channels, rank + 1)
    kernel = _const(f"{name}/folded.kernel", weights.reshape(kernel_shape), DType.I8, bn.scale, quant)
    bias_t = _const(f"{name}/folded.bias", bias.astype(bias_dtype.numpy), bias_dtype, bn.scale, None)
    window = ir.Window((1,) * rank, (1,) * rank, (1,) * rank, ((0, 0),) * rank)
    return ir.Conv(bn.loc, bn.inputs, bn.output, kernel, bias_t, window, True, ir.ActivationKind.NONE)
