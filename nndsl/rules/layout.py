"""Rules of the ops that move values to new places: transpose (and the slices).

They copy stored values, so an integer output keeps its input's quantisation
(as TensorFlow Lite Micro's kernels assume: they move bytes); a different one
declared is an error at the declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nndsl import ast, ir
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
