"""Rules of the ops that move values to new places: transpose, slice and strided_slice.

They copy stored values, so an integer output keeps its input's quantisation
(as TensorFlow Lite Micro's kernels assume: they move bytes); a different one
declared is an error at the declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nndsl import ast, ir
from nndsl.diagnostics import Loc
from nndsl.qmath.layout import start_for_axis, stop_for_axis, strided_count
from nndsl.resolve import BoundLayer
from nndsl.rules.base import Attrs, shape_text

if TYPE_CHECKING:
    from nndsl.check import Checker


def int_tuple(ctx: Checker, attrs: Attrs, name: str, rank: int, what: str, default: int | None = None
              ) -> tuple[int, ...]:
    """One whole number per axis of a rank-``rank`` input (a single number for a rank-1 one)."""
    kwarg: ast.KeywordArg | None = attrs.given.get(name)
    if kwarg is None:
        assert default is not None, f"attribute {name} is required by the signature"
        return (default,) * rank
    raw = kwarg.value if isinstance(kwarg.value, tuple) else (kwarg.value,)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        raise ctx.fail(kwarg.loc, f"{attrs.op} {name} must be whole numbers (got {kwarg.value!r})")
    if len(raw) != rank:
        raise ctx.fail(kwarg.loc, f"{attrs.op} {name} has {len(raw)} value{'s' * (len(raw) != 1)}, expected "
                       f"{rank}: one per axis of {what}")
    return tuple(int(v) for v in raw)  # type: ignore[arg-type]


def check_transpose(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    shape = x.type.shape
    rank = len(shape)
    perm = int_tuple(ctx, attrs, "perm", rank, f"'{x.name}' {shape_text(shape)}")
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(attrs.loc("perm", layer.decl.call.loc), f"transpose perm {perm} is not a permutation of "
                       f"the axes 0..{rank - 1} of '{x.name}' {shape_text(shape)}: each axis exactly once")
    out_type = ctx.output_type(layer, tuple(shape[p] for p in perm), x.type.quant)
    ctx.same_quant(layer, out_type, x, "transpose")
    return ir.Transpose(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), perm)


def _slice_op(ctx: Checker, layer: BoundLayer, x: ir.Tensor, begin: tuple[int, ...], step: tuple[int, ...],
              count: tuple[int, ...], shrink: tuple[int, ...], strided: bool) -> ir.AnyOp:
    """The slice of ``x`` (resolved per axis): empty ones are errors, the output keeps the quantisation."""
    op = layer.decl.call.op
    empty = [axis for axis, c in enumerate(count) if c <= 0]
    if empty:
        raise ctx.fail(layer.decl.call.loc, f"{op} of '{x.name}' {shape_text(x.type.shape)} takes no value on "
                       f"axis {empty[0]}: nndsl tensors have no empty axes")
    shape = tuple(c for axis, c in enumerate(count) if axis not in shrink)
    out_type = ctx.output_type(layer, shape, x.type.quant)
    ctx.same_quant(layer, out_type, x, op)
    return ir.Slice(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), begin, step, count, shrink, strided)


def check_slice(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """TFLite's SLICE: ``size[a]`` values from ``begin[a]`` (-1: to the end); TFLM reads what it is told, so every
    value must lie inside the input."""
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    shape = x.type.shape
    what = f"'{x.name}' {shape_text(shape)}"
    begin = int_tuple(ctx, attrs, "begin", len(shape), what)
    size = int_tuple(ctx, attrs, "size", len(shape), what)
    count = []
    for axis, (dim, b, s) in enumerate(zip(shape, begin, size, strict=True)):
        if not 0 <= b < dim:
            raise ctx.fail(attrs.loc("begin", layer.decl.call.loc), f"slice begin {b} on axis {axis} is outside "
                           f"0..{dim - 1} ({what})")
        if s != -1 and not 1 <= s <= dim - b:
            raise ctx.fail(attrs.loc("size", layer.decl.call.loc), f"slice size {s} on axis {axis} must be -1 (to "
                           f"the end) or 1..{dim - b} (from begin {b} of {dim} values; {what})")
        count.append(dim - b if s == -1 else s)
    return _slice_op(ctx, layer, x, begin, (1,) * len(shape), tuple(count), (), strided=False)


def _mask(ctx: Checker, attrs: Attrs, name: str, rank: int, default: Loc) -> int:
    """A bit mask over the axes of a rank-``rank`` input (bit ``a``: axis ``a``)."""
    value = attrs.integer(name, 0)
    if not 0 <= value < 2**rank:
        raise ctx.fail(attrs.loc(name, default), f"strided_slice {name} {value} has bits beyond the input's "
                       f"{rank} axes (0..{2**rank - 1})")
    return value


def check_strided_slice(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """TFLite's STRIDED_SLICE: TensorFlow's begin, end and strides with their masks, resolved per axis as
    TFLM's ``StartForAxis``/``StopForAxis`` do (negative indices from the end, clamped to the axis)."""
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    loc = layer.decl.call.loc
    shape = x.type.shape
    rank = len(shape)
    what = f"'{x.name}' {shape_text(shape)}"
    for unsupported in ("ellipsis_mask", "new_axis_mask"):
        if attrs.integer(unsupported, 0) != 0:
            raise ctx.fail(attrs.loc(unsupported, loc), f"strided_slice {unsupported} is not supported: give "
                           f"begin, end and strides for every axis of {what} (and add axes with reshape)")
    begin = int_tuple(ctx, attrs, "begin", rank, what)
    end = int_tuple(ctx, attrs, "end", rank, what)
    strides = int_tuple(ctx, attrs, "strides", rank, what, default=1)
    if 0 in strides:
        raise ctx.fail(attrs.loc("strides", loc), f"strided_slice strides must not be 0 (axis {strides.index(0)})")
    begin_mask, end_mask, shrink_mask = (_mask(ctx, attrs, f"{m}_mask", rank, loc)
                                         for m in ("begin", "end", "shrink_axis"))
    starts, counts = [], []
    for axis, dim in enumerate(shape):
        shrink = bool(shrink_mask >> axis & 1)
        start = start_for_axis(dim, begin[axis], strides[axis], bool(begin_mask >> axis & 1))
        if shrink and not 0 <= start < dim:
            raise ctx.fail(attrs.loc("begin", loc), f"strided_slice shrinks axis {axis} to index {begin[axis]}, "
                           f"outside the {dim} values of {what}")
        stop = stop_for_axis(dim, end[axis], strides[axis], bool(end_mask >> axis & 1), shrink, start)
        starts.append(start)
        counts.append(strided_count(start, stop, strides[axis]))
    shrunk = tuple(axis for axis in range(rank) if shrink_mask >> axis & 1)
    return _slice_op(ctx, layer, x, tuple(starts), strides, tuple(counts), shrunk, strided=True)


def check_resize(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    """RESIZE_NEAREST_NEIGHBOR: ``[H, W, C]`` to ``size=(H', W')``; TensorFlow forbids both flags at once."""
    ctx.only_activation(layer, allowed=False)
    attrs = ctx.attrs(layer)
    loc = layer.decl.call.loc
    shape = x.type.shape
    if len(shape) != 3:
        raise ctx.fail(loc, f"resize_nearest_neighbor takes an [H, W, C] input, '{x.name}' has shape "
                       f"{shape_text(shape)}")
    size = attrs.ints("size", 2)
    align = attrs.choice("align_corners", ("false", "true"), "false") == "true"
    half = attrs.choice("half_pixel_centers", ("false", "true"), "false") == "true"
    if align and half:
        raise ctx.fail(attrs.loc("half_pixel_centers", loc), "resize_nearest_neighbor takes align_corners or "
                       "half_pixel_centers, not both (as TensorFlow)")
    out_type = ctx.output_type(layer, (size[0], size[1], shape[2]), x.type.quant)
    ctx.same_quant(layer, out_type, x, "resize_nearest_neighbor")
    return ir.Resize(loc, (x,), ctx.tensor(layer, out_type), align, half)
