"""The catalogue of operators the language knows: their call signatures.

The signature says which positional arguments are tensors and which are
weight arrays, and which keyword attributes exist; the resolver uses it to bind
names and check arity, the rules in :mod:`nndsl.rules` hold each op's shape
and type rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AttrKind(enum.Enum):
    NUMBER = "a number"
    INT = "a whole number"
    INTS = "a whole number or a tuple of them"
    CHOICE = "a name"
    PADS = "a tuple of (before, after) pairs"


@dataclass(frozen=True)
class Attr:
    name: str
    kind: AttrKind
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpSignature:
    name: str
    tensors: int
    weights: tuple[str, ...] = ()
    optional_weights: tuple[str, ...] = ()
    attrs: tuple[Attr, ...] = ()
    variadic: bool = False  # any number (>= tensors) of tensor arguments and no weights
    constants: bool = False  # each tensor argument may also be a weight array or a number (one must be a tensor)
    summary: str = ""

    @property
    def min_args(self) -> int:
        return self.tensors + len(self.weights)

    @property
    def max_args(self) -> int | None:
        return None if self.variadic else self.min_args + len(self.optional_weights)

    @property
    def usage(self) -> str:
        params = [("x" if self.tensors == 1 else f"x{i}") for i in range(self.tensors)]
        if self.variadic:
            params.append("...")
        params += list(self.weights) + [f"[{w}]" for w in self.optional_weights]
        params += [f"{a.name}=..." for a in self.attrs]
        return f"{self.name}({', '.join(params)})"


PADDING = Attr("padding", AttrKind.CHOICE, choices=("valid", "same"))
STRIDE = Attr("stride", AttrKind.INTS)
DILATION = Attr("dilation", AttrKind.INTS)
POOL_SIZE = Attr("size", AttrKind.INTS, required=True)


STRIDED_SLICE_ATTRS = (
    Attr("begin", AttrKind.INTS, required=True),
    Attr("end", AttrKind.INTS, required=True),
    Attr("strides", AttrKind.INTS),
    *(Attr(f"{mask}_mask", AttrKind.INT) for mask in ("begin", "end", "shrink_axis", "ellipsis", "new_axis")),
)


BOOLEAN = ("false", "true")
REDUCE_ATTRS = (Attr("axes", AttrKind.INTS, required=True), Attr("keep_dims", AttrKind.CHOICE, choices=BOOLEAN))


def _conv(name: str, summary: str) -> OpSignature:
    return OpSignature(name, 1, ("kernel",), ("bias",), (STRIDE, DILATION, PADDING), summary=summary)


def _pool(name: str, summary: str) -> OpSignature:
    return OpSignature(name, 1, attrs=(POOL_SIZE, STRIDE, PADDING), summary=summary)


def _binary(name: str, summary: str) -> OpSignature:
    return OpSignature(name, 2, constants=True,
                       summary=f"{summary}; either operand may be a weight array or a number, shapes broadcast")


SIGNATURES = {
    sig.name: sig
    for sig in (
        OpSignature("dense", 1, ("kernel",), ("bias",), summary="fully connected layer over the last axis"),
        _conv("conv1d", "1-D convolution, input [W, C], kernel [K, C, O]"),
        _conv("conv2d", "2-D convolution, input [H, W, C], kernel [KH, KW, C, O]"),
        _conv("depthwise_conv1d", "depthwise 1-D convolution, kernel [K, C, M]"),
        _conv("depthwise_conv2d", "depthwise 2-D convolution, kernel [KH, KW, C, M]"),
        _pool("max_pool", "maximum over a window (1-D or 2-D by the input's rank)"),
        _pool("avg_pool", "mean over a window (1-D or 2-D by the input's rank)"),
        OpSignature("global_max_pool", 1, summary="maximum over all positions, [..., C] -> [C]"),
        OpSignature("global_avg_pool", 1, summary="mean over all positions, [..., C] -> [C]"),
        _binary("add", "element-wise sum"),
        _binary("sub", "element-wise difference x0 - x1"),
        _binary("mul", "element-wise product"),
        _binary("maximum", "element-wise maximum"),
        _binary("minimum", "element-wise minimum"),
        _binary("squared_difference", "element-wise (x0 - x1)^2"),
        _binary("prelu", "element-wise x0 if x0 >= 0 else x0 * x1 (x1: the slopes, alpha)"),
        OpSignature("concat", 1, attrs=(Attr("axis", AttrKind.INT),), variadic=True, summary="join along an axis"),
        OpSignature("pad", 1, attrs=(Attr("pads", AttrKind.PADS, required=True),), summary="pad with zeros"),
        OpSignature("batch_norm", 1, ("gamma", "beta", "mean", "variance"),
                    attrs=(Attr("epsilon", AttrKind.NUMBER),), summary="batch normalisation (inference)"),
        OpSignature("relu", 1, summary="max(x, 0)"),
        OpSignature("relu6", 1, summary="min(max(x, 0), 6)"),
        OpSignature("leaky_relu", 1, attrs=(Attr("alpha", AttrKind.NUMBER),), summary="x if x > 0 else alpha * x"),
        OpSignature("tanh", 1, summary="hyperbolic tangent"),
        OpSignature("sigmoid", 1, summary="1 / (1 + exp(-x))"),
        OpSignature("hard_swish", 1, summary="x * relu6(x + 3) / 6"),
        OpSignature("softmax", 1, attrs=(Attr("beta", AttrKind.NUMBER),), summary="softmax over the last axis"),
        OpSignature("quantize", 1, summary="the same real values in another quantisation; quantises a float input"),
        OpSignature("dequantize", 1, summary="an integer tensor's real values as f32 (a float output)"),
        OpSignature("flatten", 1, summary="reshape to one dimension"),
        OpSignature("reshape", 1, attrs=(Attr("shape", AttrKind.INTS, required=True),), summary="new shape"),
        OpSignature("transpose", 1, attrs=(Attr("perm", AttrKind.INTS, required=True),),
                    summary="axes reordered: output axis k is input axis perm[k]"),
        OpSignature("slice", 1, attrs=(Attr("begin", AttrKind.INTS, required=True),
                                       Attr("size", AttrKind.INTS, required=True)),
                    summary="size[a] values from begin[a] along each axis a (size -1: to the end)"),
        OpSignature("resize_nearest_neighbor", 1, attrs=(
            Attr("size", AttrKind.INTS, required=True), Attr("align_corners", AttrKind.CHOICE, choices=BOOLEAN),
            Attr("half_pixel_centers", AttrKind.CHOICE, choices=BOOLEAN)),
            summary="[H, W, C] -> [H', W', C]: each output value the nearest input value"),
        OpSignature("reduce_max", 1, attrs=REDUCE_ATTRS, summary="the largest value over the given axes"),
        OpSignature("mean", 1, attrs=REDUCE_ATTRS, summary="the mean over the given axes"),
        OpSignature("gru", 1, ("kernel", "recurrent_kernel"), ("bias",), attrs=(
            Attr("return_sequences", AttrKind.CHOICE, choices=BOOLEAN),
            Attr("reset_after", AttrKind.CHOICE, choices=BOOLEAN), Attr("stateful", AttrKind.CHOICE, choices=BOOLEAN)),
            summary="gated recurrent unit over [time, features] (Keras GRU), kernel [F, 3U], recurrent_kernel "
                    "[U, 3U], bias [3U] or [2, 3U]; stateful=true keeps its state between calls"),
        OpSignature("lstm", 1, ("kernel", "recurrent_kernel"), ("bias",), attrs=(
            Attr("cell_scale", AttrKind.NUMBER), Attr("cell_clip", AttrKind.NUMBER),
            Attr("return_sequences", AttrKind.CHOICE, choices=BOOLEAN),
            Attr("stateful", AttrKind.CHOICE, choices=BOOLEAN)),
            summary="LSTM over [T, F] -> [T, U] (or the last step's [U]); kernel [F, 4U], recurrent_kernel "
                    "[U, 4U], bias [4U], gates i, f, c, o; int8 cell state scale: cell_scale, a power of two; "
                    "stateful=true keeps its state between calls"),
        OpSignature("strided_slice", 1, attrs=STRIDED_SLICE_ATTRS,
                    summary="values begin[a], begin[a] + strides[a], ... before end[a] along each axis a, "
                            "with TensorFlow's masks"),
    )
}

# The ops a power-of-two fixed-point (q7, q15, qM.N) network may use: those whose
# integer semantics are shifts, sums and clamps (nndsl.qmath.shift), and tanh,
# sigmoid and softmax from tables made at build time (nndsl.qmath.fixed_functions).
FIXED_POINT_OPS = frozenset({
    "dense", "conv1d", "conv2d", "depthwise_conv1d", "depthwise_conv2d", "max_pool", "avg_pool",
    "global_max_pool", "global_avg_pool", "add", "concat", "pad", "relu", "relu6", "flatten", "reshape",
    "tanh", "sigmoid", "softmax", "sub", "mul", "maximum", "minimum", "squared_difference",
    "transpose", "slice", "strided_slice", "resize_nearest_neighbor", "gru",
})
