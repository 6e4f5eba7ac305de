"""The recurrent layers' rule: lstm over a ``[T, F]`` sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nndsl import ir
from nndsl.qmath.lstm import cell_scale_log2
from nndsl.resolve import BoundLayer
from nndsl.rules.base import shape_text
from nndsl.types import DType

if TYPE_CHECKING:
    from nndsl.check import Checker


def check_lstm(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """Shapes from the kernel (``[F, 4U]``); an int8 layer needs its cell state's power-of-two scale."""
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    loc, name = layer.decl.call.loc, layer.decl.name
    if ctx.fixed or ctx.model_dtype is DType.I16:
        raise ctx.fail(loc, f"lstm '{name}' is computed in {ctx.arithmetic}: nndsl's lstm is int8 (TFLM's 8x8->16 "
                       "kernel) or f32")
    if len(x.type.shape) != 2:
        raise ctx.fail(loc, f"lstm '{name}' takes a [steps, features] sequence, but '{x.name}' is "
                       f"{shape_text(x.type.shape)}")
    steps, features = x.type.shape
    kernel_ref = layer.weights["kernel"]
    data = ctx.resolved.weights[kernel_ref.name]
    if data.ndim != 2 or data.shape[0] != features or data.shape[1] % 4 or data.shape[1] == 0:
        raise ctx.fail(kernel_ref.loc, f"lstm kernel '{kernel_ref.name}' must be [features, 4 * units] with "
                       f"features {features} (the input's last axis), got {shape_text(data.shape)}")
    units = int(data.shape[1]) // 4
    weight = ctx.model_dtype.weight
    kernel = ctx.weight(layer, "kernel", (features, 4 * units), weight, channels=4 * units)
    recurrent = ctx.weight(layer, "recurrent_kernel", (units, 4 * units), weight, channels=4 * units)
    bias = ctx.weight(layer, "bias", (4 * units,), ctx.bias_dtype)
    assert kernel is not None and recurrent is not None
    cell_clip = attrs.number("cell_clip", 0.0)
    if cell_clip < 0:
        raise ctx.fail(attrs.loc("cell_clip", loc), f"lstm cell_clip must be >= 0 (0: no clip), got {cell_clip:g}")
    cell_scale = None
    if ctx.model_dtype is DType.I8:
        if "cell_scale" not in attrs.given:
            raise ctx.fail(loc, f"int8 lstm '{name}' needs its cell state's scale, a power of two: e.g. "
                           "cell_scale=0.00048828125 (2^-11) for cells within ±16")
        cell_scale = attrs.number("cell_scale", 0.0)
        try:
            cell_scale_log2(cell_scale)
        except ValueError as error:
            raise ctx.fail(attrs.loc("cell_scale", loc), f"lstm {error}: TFLM's kernel needs 2^k") from None
    elif "cell_scale" in attrs.given:
        raise ctx.fail(attrs.loc("cell_scale", loc), f"lstm '{name}' is f32: cell_scale is for int8 layers")
    sequences = attrs.choice("return_sequences", ("false", "true"), "false") == "true"
    shape = (steps, units) if sequences else (units,)
    out = ctx.tensor(layer, ctx.output_type(layer, shape, None))
    return ir.Lstm(loc, (x,), out, kernel, recurrent, bias, cell_scale, cell_clip, sequences)
