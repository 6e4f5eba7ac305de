"""Rules of the windowed ops: convolutions and pools, 1-D and 2-D, channels last."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nndsl import ir
from nndsl.diagnostics import Loc
from nndsl.resolve import BoundLayer
from nndsl.rules.base import shape_text, transposed_hint

if TYPE_CHECKING:
    from nndsl.check import Checker

PADDINGS = ("valid", "same")


def output_length(length: int, size: int, stride: int, dilation: int, padding: str) -> tuple[int, tuple[int, int]]:
    """Output length and ``(before, after)`` pads of one spatial axis, by TensorFlow's rule."""
    effective = (size - 1) * dilation + 1
    if padding == "same":
        out = math.ceil(length / stride)
        total = max((out - 1) * stride + effective - length, 0)
        return out, (total // 2, total - total // 2)
    return (length - effective) // stride + 1, (0, 0)


def make_window(ctx: Checker, layer: BoundLayer, x: ir.Tensor, size: tuple[int, ...], stride_default: tuple[int, ...],
                dilated: bool, what: str, where: Loc) -> tuple[ir.Window, tuple[int, ...]]:
    """The op's window and its output's spatial shape; a window wider than the padded input is an error.

    ``what`` names the window in that error (the kernel, the pool's size) and ``where`` is its place.
    """
    attrs = ctx.attrs(layer)
    rank = len(size)
    stride = attrs.ints("stride", rank, None) if "stride" in attrs.given else stride_default
    dilation = attrs.ints("dilation", rank, 1) if dilated else (1,) * rank
    padding = attrs.choice("padding", PADDINGS, "valid")
    spatial = x.type.shape[:rank]
    lengths: list[int] = []
    pads: list[tuple[int, int]] = []
    for axis, (length, k, s, d) in enumerate(zip(spatial, size, stride, dilation, strict=True)):
        out, pad = output_length(length, k, s, d, padding)
        if out <= 0:
            effective = (k - 1) * d + 1
            dilated_text = f" ({k} dilated by {d})" if d != 1 else ""
            raise ctx.fail(where, f"{layer.decl.call.op} {what} is wider than its input on axis {axis}: "
                           f"{effective}{dilated_text} > {length} (input '{x.name}' has shape "
                           f"{shape_text(x.type.shape)}, padding {padding})")
        lengths.append(out)
        pads.append(pad)
    return ir.Window(size, stride, dilation, tuple(pads)), tuple(lengths)


def _spatial_input(ctx: Checker, layer: BoundLayer, x: ir.Tensor, rank: int) -> None:
    if len(x.type.shape) != rank + 1:
        op = layer.decl.call.op
        layout = "[W, C]" if rank == 1 else "[H, W, C]"
        hint = ""
        if len(x.type.shape) in (2, 3):  # the other rank's op would take it
            hint = f" (for a {'[H, W, C]' if rank == 1 else '[W, C]'} input use {op[:-2]}{3 - rank}d)"
        raise ctx.fail(layer.decl.call.loc, f"{op} takes a {layout} input, '{x.name}' has shape "
                       f"{shape_text(x.type.shape)}{hint}")


def check_conv(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    op = layer.decl.call.op
    depthwise = op.startswith("depthwise")
    rank = 1 if op.endswith("1d") else 2
    activation = ctx.only_activation(layer, allowed=True)
    _spatial_input(ctx, layer, x, rank)
    kernel_ref = layer.weights["kernel"]
    kernel_shape = ctx.resolved.weights[kernel_ref.name].shape
    channels = x.type.shape[-1]
    layout = "[K, C, M]" if depthwise else "[K, C, O]"
    layout = layout if rank == 1 else layout.replace("K", "KH, KW")
    if len(kernel_shape) != rank + 2:
        raise ctx.fail(kernel_ref.loc, f"{op} kernel '{kernel_ref.name}' must be {layout}, got shape "
                       f"{shape_text(kernel_shape)}")
    if kernel_shape[-2] != channels:
        raise ctx.fail(kernel_ref.loc, f"{op} kernel '{kernel_ref.name}' {shape_text(kernel_shape)} takes "
                       f"{kernel_shape[-2]} input channels, but '{x.name}' has {channels} "
                       f"(shape {shape_text(x.type.shape)})"
                       f"{transposed_hint(kernel_shape, lambda shape: shape[-2] == channels)}")
    size = tuple(int(k) for k in kernel_shape[:rank])
    window, lengths = make_window(ctx, layer, x, size, (1,) * rank, dilated=True, what=f"kernel '{kernel_ref.name}'",
                                  where=kernel_ref.loc)
    out_channels = channels * kernel_shape[-1] if depthwise else kernel_shape[-1]
    channels_text = f"C x M = {channels} x {kernel_shape[-1]}" if depthwise else ""
    kernel = ctx.weight(layer, "kernel", tuple(kernel_shape), ctx.model_dtype.weight, channels=out_channels,
                        channels_text=channels_text)
    bias = ctx.weight(layer, "bias", (out_channels,), ctx.bias_dtype)
    assert kernel is not None
    out = ctx.tensor(layer, ctx.output_type(layer, (*lengths, out_channels), None))
    return ir.Conv(layer.decl.call.loc, (x,), out, kernel, bias, window, depthwise, activation)


def check_pool(ctx: Checker, layer: BoundLayer, x: ir.Tensor) -> ir.AnyOp:
    op = layer.decl.call.op
    activation = ctx.only_activation(layer, allowed=True)
    rank = len(x.type.shape) - 1
    if rank not in (1, 2):
        raise ctx.fail(layer.decl.call.loc, f"{op} takes a [W, C] or [H, W, C] input, '{x.name}' has shape "
                       f"{shape_text(x.type.shape)}")
    attrs = ctx.attrs(layer)
    size = attrs.ints("size", rank)
    window, lengths = make_window(ctx, layer, x, size, size, dilated=False, what="size",
                                  where=attrs.loc("size", layer.decl.call.loc))
    out_type = ctx.output_type(layer, (*lengths, x.type.shape[-1]), x.type.quant)
    ctx.same_quant(layer, out_type, x, op)
    kind = ir.PoolKind.MAX if op == "max_pool" else ir.PoolKind.AVG
    return ir.Pool(layer.decl.call.loc, (x,), ctx.tensor(layer, out_type), kind, window, activation)
