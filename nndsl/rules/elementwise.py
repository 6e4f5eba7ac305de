"""Rules of the element-wise ops of one operand: activations and softmax."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nndsl import ir
from nndsl.qmath.softmax import MAX_SAFE_DEPTH
from nndsl.resolve import BoundLayer
from nndsl.types import DType, QFormat, Quant, TensorType

if TYPE_CHECKING:
    from nndsl.check import Checker

# Output quantisations TFLM's integer kernels assume (and the TFLite converter produces).
SOFTMAX_S8_QUANT = Quant.per_tensor(1 / 256, -128)
SIGMOID_S8_QUANT = Quant.per_tensor(1 / 256, -128)
TANH_S8_QUANT = Quant.per_tensor(1 / 128, 0)
S16_UNIT_QUANT = Quant.per_tensor(1 / 32768, 0)  # softmax, tanh and sigmoid in 16x8
FIXED_QUANTS = {
    (DType.I8, ir.Function.TANH): TANH_S8_QUANT,
    (DType.I8, ir.Function.SIGMOID): SIGMOID_S8_QUANT,
    (DType.I16, ir.Function.TANH): S16_UNIT_QUANT,
    (DType.I16, ir.Function.SIGMOID): S16_UNIT_QUANT,
}
SOFTMAX_QUANTS = {DType.I8: SOFTMAX_S8_QUANT, DType.I16: S16_UNIT_QUANT}


def unit_format(storage: DType) -> QFormat:
    """A fixed-point tanh's, sigmoid's or softmax's output format (the checker's default, the converter's
    choice): q7 after an int8-stored input, q15 after an int16 one (their values lie in [-1, 1])."""
    return QFormat(0, 15 if storage is DType.I16 else 7)


def check_relu(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    ctx.attrs(layer)
    kind = ir.ActivationKind.from_name(layer.decl.call.op)
    assert kind is not None
    out_type = ctx.output_type(layer, x.type.shape, x.type.quant)
    if kind is ir.ActivationKind.RELU6 and not ctx.fixed:  # TFLM's relu6 cannot rescale; a shift can
        ctx.same_quant(layer, out_type, x, f"{ctx.integer_name} relu6")
    return ir.Activation(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), kind)


def check_function(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    function = ir.Function(layer.decl.call.op)
    integer = ctx.model_dtype.is_integer
    fixed = None if ctx.fixed else FIXED_QUANTS.get((ctx.model_dtype, function))
    default: Quant | None = None
    if integer:
        default = Quant.of_format(unit_format(x.type.dtype)) if ctx.fixed else fixed or x.type.quant
    out_type = ctx.output_type(layer, x.type.shape, default)
    if integer:
        ctx.fixed_quant(layer, out_type, fixed, function.value)
    alpha = attrs.number("alpha", 0.3) if function is ir.Function.LEAKY_RELU else 0.0
    return ir.Elementwise(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), function, alpha)


def check_softmax(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    beta = attrs.number("beta", 1.0)
    if beta <= 0:
        raise ctx.fail(attrs.loc("beta", layer.decl.call.loc), f"softmax beta must be a positive number (got {beta:g})")
    default = Quant.of_format(unit_format(x.type.dtype)) if ctx.fixed else SOFTMAX_QUANTS.get(ctx.model_dtype)
    depth = x.type.shape[-1]
    if ctx.model_dtype is DType.I8 and not ctx.fixed and depth > MAX_SAFE_DEPTH:
        raise ctx.fail(layer.decl.call.loc, f"int8 softmax over {depth} values: TensorFlow Lite Micro's kernel "
                       f"handles at most {MAX_SAFE_DEPTH} (its sum of exponentials would overflow)")
    out_type = ctx.output_type(layer, x.type.shape, default)
    ctx.fixed_quant(layer, out_type, None if ctx.fixed else default, "softmax")
    return ir.Softmax(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), beta)


def check_quantize(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """Requantisation within an i8 or i16 network, or the quantisation of its f32 input; the type is declared."""
    ctx.only_activation(layer, allowed=False)
    ctx.attrs(layer)
    if not ctx.model_dtype.is_integer or ctx.fixed:
        raise ctx.fail(layer.decl.call.loc, f"quantize gives a tensor an i8 or i16 quantisation; this network "
                       f"computes in {ctx.arithmetic}")
    if layer.decl.type is None:
        raise ctx.fail(layer.decl.loc, f"'{layer.decl.name}' is a quantize: declare its type, e.g. "
                       f"': {ctx.model_dtype.value} @ scale(0.05) zero(0)'")
    out_type = ctx.output_type(layer, x.type.shape, None)
    return ir.Quantize(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type))


def check_dequantize(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """An integer tensor as f32: the float output of an i8 or i16 network (nothing may read it)."""
    ctx.only_activation(layer, allowed=False)
    ctx.attrs(layer)
    if not x.type.dtype.is_integer or ctx.fixed:
        raise ctx.fail(layer.decl.call.loc, f"dequantize takes an i8 or i16 tensor; '{x.name}' is "
                       f"{x.type.type_name}")
    expr = layer.decl.type
    if expr is not None and (expr.dtype != "f32" or expr.quant is not None):
        raise ctx.fail(expr.loc, f"dequantize gives f32; '{layer.decl.name}' is declared {expr.dtype}")
    if expr is not None and expr.shape is not None and expr.shape != x.type.shape:
        raise ctx.fail(expr.loc, f"'{layer.decl.name}' is declared {list(expr.shape)}, but dequantize produces "
                       f"{list(x.type.shape)}")
    return ir.Dequantize(layer.decl.call.loc, (x,), ctx.tensor(layer, TensorType(DType.F32, x.type.shape, None)))
