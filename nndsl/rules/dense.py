"""Rules of the layers with weights over the last axis: dense and batch_norm."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nndsl import ir
from nndsl.resolve import BoundLayer
from nndsl.rules.base import shape_text, transposed_hint
from nndsl.types import DType, TensorType

if TYPE_CHECKING:
    from nndsl.check import Checker


def check_dense(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    activation = ctx.only_activation(layer, allowed=True)
    ctx.attrs(layer)
    kernel_ref = layer.weights["kernel"]
    kernel_data = ctx.resolved.weights[kernel_ref.name]
    features = x.type.shape[-1]
    if kernel_data.ndim != 2:
        raise ctx.fail(kernel_ref.loc, f"dense kernel '{kernel_ref.name}' must be 2-D [inputs, outputs], "
                       f"got shape {shape_text(kernel_data.shape)}")
    if kernel_data.shape[0] != features:
        raise ctx.fail(kernel_ref.loc, f"dense kernel '{kernel_ref.name}' is {kernel_data.shape[0]}x"
                       f"{kernel_data.shape[1]} (inputs x outputs), but its input '{x.name}' has {features} "
                       f"features (shape {shape_text(x.type.shape)})"
                       f"{transposed_hint(kernel_data.shape, lambda shape: shape[0] == features)}")
    units = int(kernel_data.shape[1])
    kernel = ctx.weight(layer, "kernel", (features, units), ctx.model_dtype.weight, channels=units)
    bias = ctx.weight(layer, "bias", (units,), ctx.bias_dtype)
    assert kernel is not None
    out = ctx.tensor(layer, ctx.output_type(layer, (*x.type.shape[:-1], units), None))
    return ir.Dense(layer.decl.call.loc, (x,), out, kernel, bias, activation)


def check_batch_norm(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta`` per channel, as one scale and offset.

    :mod:`nndsl.passes` folds it into the conv or dense before it when it can.
    """
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    epsilon = attrs.number("epsilon", 1e-3)
    if epsilon < 0:
        raise ctx.fail(attrs.loc("epsilon", layer.decl.call.loc), f"batch_norm epsilon must be >= 0 (got {epsilon})")
    channels = x.type.shape[-1]
    params = {}
    for role in ("gamma", "beta", "mean", "variance"):
        tensor = ctx.weight(layer, role, (channels,), DType.F32)
        assert tensor is not None and tensor.data is not None
        params[role] = tensor.data.astype(np.float64)
    variance_ref = layer.weights["variance"]
    if np.any(params["variance"] < 0):
        channel = int(np.argmin(params["variance"]))
        raise ctx.fail(variance_ref.loc, f"batch_norm variance '{variance_ref.name}' has a negative value "
                       f"({params['variance'][channel]:g} at channel {channel})")
    if np.any(params["variance"] + epsilon <= 0):
        channel = int(np.argmin(params["variance"]))
        raise ctx.fail(variance_ref.loc, f"batch_norm variance + epsilon must be positive: '{variance_ref.name}' is "
                       f"0 at channel {channel} and epsilon is {epsilon:g}")
    factor = params["gamma"] / np.sqrt(params["variance"] + epsilon)
    offset = params["beta"] - params["mean"] * factor
    for what, values in (("gamma / sqrt(variance + epsilon)", factor), ("beta - mean x that", offset)):
        if not np.all(np.abs(values) <= np.finfo(np.float32).max):
            channel = int(np.argmax(np.abs(values)))
            raise ctx.fail(layer.decl.call.loc, f"batch_norm {what} is {values[channel]:g} at channel {channel}, "
                           f"outside the range of float32")
    scale_t = ctx.const(f"{layer.decl.name}.scale", _vector_type(factor), layer.decl.loc, factor.astype(np.float32))
    offset_t = ctx.const(f"{layer.decl.name}.offset", _vector_type(offset), layer.decl.loc, offset.astype(np.float32))
    out = ctx.tensor(layer, ctx.output_type(layer, x.type.shape, None))
    return ir.BatchNorm(layer.decl.call.loc, (x,), out, scale_t, offset_t)


def _vector_type(values: np.ndarray) -> TensorType:
    return TensorType(DType.F32, (int(values.size),))
