"""Rules of the reductions over any axes: reduce_max and mean.

``axes`` names each reduced axis once (negative from the end); the output
drops them, or keeps them as axes of one with ``keep_dims=true``. The max
compares stored values, so an integer output keeps its input's
quantisation; the mean may rescale (an i8 or i16 output is declared, or
keeps the input's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nndsl import ir
from nndsl.resolve import BoundLayer
from nndsl.rules.base import shape_text
from nndsl.rules.layout import int_tuple
from nndsl.types import DType

if TYPE_CHECKING:
    from nndsl.check import Checker


def check_reduce(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    op = layer.decl.call.op
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    loc = attrs.loc("axes", layer.decl.call.loc)
    shape = x.type.shape
    rank = len(shape)
    kwarg = attrs.given["axes"]
    count = len(kwarg.value) if isinstance(kwarg.value, tuple) else 1
    given = int_tuple(ctx, attrs, "axes", count, f"the reduced axes of '{x.name}' {shape_text(shape)}")
    if any(not -rank <= a < rank for a in given):
        raise ctx.fail(loc, f"{op} axes {given} are outside the axes {-rank}..{rank - 1} of '{x.name}' "
                       f"{shape_text(shape)}")
    axes = tuple(sorted(a % rank for a in given))
    if len(set(axes)) != len(axes):
        raise ctx.fail(loc, f"{op} axes {given} name an axis twice")
    keep = attrs.choice("keep_dims", ("false", "true"), "false") == "true"
    if not keep and len(axes) == rank:
        raise ctx.fail(loc, f"{op} over every axis of '{x.name}' {shape_text(shape)} leaves no axis: keep them "
                       "with keep_dims=true")
    if op == "reduce_max" and ctx.model_dtype is DType.I16:
        raise ctx.fail(layer.decl.call.loc, "reduce_max has no int16 kernel in TensorFlow Lite Micro (int8 and "
                       "f32 only)")
    out_shape = tuple(1 if a in axes else d for a, d in enumerate(shape) if keep or a not in axes)
    out_type = ctx.output_type(layer, out_shape, x.type.quant)
    reducer = ir.PoolKind.MAX if op == "reduce_max" else ir.PoolKind.AVG
    if reducer is ir.PoolKind.MAX:
        ctx.same_quant(layer, out_type, x, op)
    return ir.Reduce(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), reducer, axes, keep)
