"""Rules of the recurrent layers: gru and lstm.

A recurrent layer reads an input ``[time, features]`` step by step, carrying
state. A GRU computes in f32 or in power-of-two fixed point (TensorFlow Lite
Micro has no GRU kernel, so there is no int8 one to be bit-exact with); an LSTM
in f32 or int8 (TFLM's 8x8->16 kernel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nndsl import ir
from nndsl.qmath.lstm import cell_scale_log2
from nndsl.resolve import BoundLayer
from nndsl.rules.base import shape_text, transposed_hint
from nndsl.rules.elementwise import unit_format
from nndsl.types import DType, Quant

if TYPE_CHECKING:
    from nndsl.check import Checker


def _flag(ctx: Checker, layer: BoundLayer, name: str, default: str) -> bool:
    return ctx.attrs(layer).choice(name, ("false", "true"), default) == "true"


def _units(ctx: Checker, layer: BoundLayer, features: int, x: ir.Tensor) -> int:
    """The units a GRU's kernel ``[features, 3 * units]`` gives."""
    ref = layer.weights["kernel"]
    data = ctx.resolved.weights[ref.name]
    if data.ndim != 2 or data.shape[0] != features or data.shape[1] % 3 or not data.shape[1]:
        hint = transposed_hint(data.shape, lambda s: len(s) == 2 and s[0] == features and s[1] % 3 == 0)
        raise ctx.fail(ref.loc, f"gru kernel '{ref.name}' must be [features, 3 * units] with {features} features "
                       f"(the input '{x.name}' is {shape_text(x.type.shape)}), got {shape_text(data.shape)}{hint}")
    return int(data.shape[1]) // 3


def _bias_shape(ctx: Checker, layer: BoundLayer, units: int, reset_after: bool) -> tuple[int, ...]:
    """``[3U]`` (the input bias) or, with ``reset_after``, ``[2, 3U]`` (input and recurrent biases)."""
    ref = layer.weights.get("bias")
    if ref is None:
        return (3 * units,)
    shape = tuple(int(d) for d in ctx.resolved.weights[ref.name].shape)
    allowed = [(3 * units,), (2, 3 * units)] if reset_after else [(3 * units,)]
    if shape not in allowed:
        expected = " or ".join(shape_text(s) for s in allowed)
        why = "" if reset_after else " (a recurrent bias [2, 3U] needs reset_after=true)"
        raise ctx.fail(ref.loc, f"gru bias '{ref.name}' has shape {shape_text(shape)}, expected {expected}{why}")
    return shape


def check_gru(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    sequences = _flag(ctx, layer, "return_sequences", "false")
    reset_after = _flag(ctx, layer, "reset_after", "true")
    stateful = _flag(ctx, layer, "stateful", "false")
    call = layer.decl.call
    if ctx.model_dtype.is_integer and not ctx.fixed:
        raise ctx.fail(call.loc, f"gru has no {ctx.integer_name} kernel (TensorFlow Lite Micro has no GRU): "
                       "write the network in f32 or in fixed point (q7, q15, qM.N)")
    if len(x.type.shape) != 2:
        raise ctx.fail(layer.tensors[0].loc, f"gru reads [time, features], but '{x.name}' is "
                       f"{shape_text(x.type.shape)}")
    steps, features = x.type.shape
    units = _units(ctx, layer, features, x)
    kernel = ctx.weight(layer, "kernel", (features, 3 * units), ctx.model_dtype.weight, channels=3 * units)
    recurrent = ctx.weight(layer, "recurrent_kernel", (units, 3 * units), ctx.model_dtype.weight,
                           channels=3 * units)
    bias = ctx.weight(layer, "bias", _bias_shape(ctx, layer, units, reset_after), ctx.bias_dtype)
    assert kernel is not None and recurrent is not None
    shape = (steps, units) if sequences else (units,)
    default = Quant.of_format(unit_format(x.type.dtype)) if ctx.fixed else None
    out_type = ctx.output_type(layer, shape, default)
    fmt = out_type.fixed
    if fmt is not None and fmt.int_bits != 0:
        loc = layer.decl.type.loc if layer.decl.type is not None else layer.decl.loc
        raise ctx.fail(loc, f"a fixed-point gru's output is its state, within (-1, 1): declare it q7, q15 or "
                       f"q0.N, not {fmt.name}")
    out = ctx.tensor(layer, out_type)
    return ir.Gru(call.loc, (x,), out, kernel, recurrent, bias, sequences, reset_after, stateful)


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
    stateful = attrs.choice("stateful", ("false", "true"), "false") == "true"
    return ir.Lstm(loc, (x,), out, kernel, recurrent, bias, cell_scale, cell_clip, sequences, stateful)
