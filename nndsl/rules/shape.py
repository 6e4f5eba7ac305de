"""Rules of the ops that move values without arithmetic (and the global pools)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nndsl import ir
from nndsl.resolve import BoundLayer
from nndsl.rules.base import quant_text, shape_text

if TYPE_CHECKING:
    from nndsl.check import Checker


def check_reshape(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    if layer.decl.call.op == "flatten":
        shape: tuple[int, ...] = (x.type.size,)
    else:
        kwarg = attrs.given["shape"]
        raw = kwarg.value if isinstance(kwarg.value, tuple) else (kwarg.value,)
        shape = attrs.ints("shape", len(raw))
        if math.prod(shape) != x.type.size:
            raise ctx.fail(kwarg.loc, f"cannot reshape {shape_text(x.type.shape)} ({x.type.size} values) to "
                           f"{shape_text(shape)} ({math.prod(shape)} values)")
    out_type = ctx.output_type(layer, shape, x.type.quant)
    ctx.same_quant(layer, out_type, x, layer.decl.call.op)
    return ir.Reshape(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type))


def check_concat(ctx: Checker, layer: BoundLayer, *inputs: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    first = inputs[0]
    rank = len(first.type.shape)
    axis = attrs.integer("axis", -1)
    if not -rank <= axis < rank:
        raise ctx.fail(attrs.loc("axis", layer.decl.call.loc), f"concat axis {axis} is out of range for rank-{rank} "
                       f"inputs (axes {-rank}..{rank - 1}; '{first.name}' has shape {shape_text(first.type.shape)})")
    axis %= rank
    for ref, other in zip(layer.tensors[1:], inputs[1:], strict=True):
        shape = other.type.shape
        mismatched = len(shape) != rank or any(
            d != e for i, (d, e) in enumerate(zip(shape, first.type.shape, strict=True)) if i != axis
        )
        if mismatched:
            raise ctx.fail(ref.loc, f"concat along axis {axis}: '{other.name}' has shape "
                           f"{shape_text(shape)}, '{first.name}' has {shape_text(first.type.shape)}; all other "
                           f"axes must agree")
        if other.type.quant != first.type.quant:
            raise ctx.fail(ref.loc, f"{ctx.integer_name} concat copies bytes, so its inputs share one quantisation: "
                           f"'{other.name}' has {quant_text(other.type.quant)}, '{first.name}' has "
                           f"{quant_text(first.type.quant)}")
    shape_out = list(first.type.shape)
    shape_out[axis] = sum(t.type.shape[axis] for t in inputs)
    out_type = ctx.output_type(layer, tuple(shape_out), first.type.quant)
    ctx.same_quant(layer, out_type, first, f"{ctx.integer_name} concat")
    return ir.Concat(layer.decl.call.loc, tuple(inputs), ctx.tensor(layer, out_type), axis)


def check_pad(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    pads = ctx.attrs(layer).pads("pads", x.type.shape)
    shape = tuple(d + before + after for d, (before, after) in zip(x.type.shape, pads, strict=True))
    out_type = ctx.output_type(layer, shape, x.type.quant)
    ctx.same_quant(layer, out_type, x, "pad")
    return ir.Pad(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), pads)


def check_global_pool(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    op = layer.decl.call.op
    ctx.only_activation(layer, allowed=False)
    ctx.attrs(layer)
    if len(x.type.shape) < 2:
        raise ctx.fail(layer.decl.call.loc, f"{op} takes positions and channels ([W, C] or [H, W, C]); '{x.name}' "
                       f"has shape {shape_text(x.type.shape)}")
    kind = ir.PoolKind.MAX if op == "global_max_pool" else ir.PoolKind.AVG
    out_type = ctx.output_type(layer, (x.type.shape[-1],), x.type.quant)
    if kind is ir.PoolKind.MAX or ctx.fixed:  # the fixed-point mean is a rounded average in the input's format
        ctx.same_quant(layer, out_type, x, op)
    return ir.GlobalPool(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), kind)
