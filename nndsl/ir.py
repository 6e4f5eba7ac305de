"""The typed graph IR: what the checker produces and the backends consume.

A :class:`Graph` is a flat list of ops in execution order. Every tensor has a
shape and, when integer, its quantisation; every op carries its source
location and, after :mod:`nndsl.lower`, the integer parameters its kernel
needs (multipliers, shifts, offsets, clamps), so backends compute nothing but
the arithmetic of :mod:`nndsl.qmath`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from nndsl.diagnostics import Loc
from nndsl.kernels import (
    AddKernel,
    AffineQuantize,
    BinaryKernel,
    FunctionKernel,
    Gather,
    GruF32,
    GruKernel,
    GruQ,
    Kernel,
    LstmF32,
    LstmKernel,
    MeanKernel,
    ReduceKernel,
    ReduceMax,
    ReduceMean,
    ReduceMeanF32,
    ResizeNearest,
    SoftmaxKernel,
)
from nndsl.kernels import (
    Dequantize as DequantizeKernel,
)
from nndsl.qmath.gru import GruWeights, gru_macs
from nndsl.qmath.layout import slice_walk, transpose_walk
from nndsl.qmath.reduce import reduce_walks
from nndsl.qmath.requant import Rounding
from nndsl.qmath.resize import nearest_indices
from nndsl.target import Target
from nndsl.types import DType, Quant, TensorType


def assert_never(value: NoReturn) -> NoReturn:
    """The end of an exhaustive ``match``: the type checker proves it unreachable (``typing.assert_never``,
    which Python 3.10 lacks), so a new op or variant is reported at every place that misses it."""
    raise AssertionError(f"unhandled: {value!r}")


class ActivationKind(enum.Enum):
    """Element-wise activations that fuse into the clamp of the op before them."""

    NONE = "none"
    RELU = "relu"
    RELU6 = "relu6"

    @property
    def real_range(self) -> tuple[float | None, float | None]:
        """The real interval the activation clamps to (None: unbounded)."""
        return {
            ActivationKind.NONE: (None, None),
            ActivationKind.RELU: (0.0, None),
            ActivationKind.RELU6: (0.0, 6.0),
        }[self]

    @classmethod
    def from_name(cls, name: str) -> ActivationKind | None:
        return next((a for a in cls if a.value == name and a is not ActivationKind.NONE), None)


@dataclass(frozen=True, eq=False)
class Tensor:
    """An activation (``data is None``) or a constant weight array."""

    name: str
    type: TensorType
    loc: Loc
    data: npt.NDArray[np.generic] | None = None


@dataclass(frozen=True)
class Requant:
    """Integer parameters of an int8 op's output stage.

    ``acc`` is computed with ``input + input_offset``; the output is
    ``clamp(mbqm(acc, multiplier[c], shift[c]) + output_offset, act_min, act_max)``
    with one multiplier/shift per output channel (one entry: per tensor).
    """

    input_offset: int
    output_offset: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    act_min: int
    act_max: int
    rounding: Rounding = Rounding.DOUBLE  # mbqm's scheme (the graph's target's)

    @property
    def per_channel(self) -> bool:
        return len(self.multipliers) > 1


@dataclass(frozen=True)
class ShiftRequant:
    """Integer parameters of a fixed-point (qM.N) op's output stage.

    The output is ``clamp(shift_round(acc, shift), act_min, act_max)``
    (:mod:`nndsl.qmath.shift`): a rounding right shift for ``shift > 0``, an
    exact left shift otherwise. Fixed point has no zero points, so the inputs
    are not offset (``input_offset`` is 0, for the loops shared with int8).
    """

    shift: int
    act_min: int
    act_max: int
    input_offset: int = 0


@dataclass(frozen=True)
class Window:
    """The sliding window of a conv or pool over the spatial axes (1 or 2 of them).

    ``pads`` are explicit ``(before, after)`` per spatial axis, from ``same``
    (TensorFlow's rule: the smaller half before) or ``valid`` (none).
    """

    size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]

    @property
    def rank(self) -> int:
        return len(self.size)

    def as_2d(self) -> Window2D:
        """The window as a 2-D one: a 1-D window is one of height 1 (how both backends loop)."""
        if self.rank == 1:
            return Window2D((1, self.size[0]), (1, self.stride[0]), (1, self.dilation[0]), ((0, 0), self.pads[0]))
        return Window2D(
            (self.size[0], self.size[1]), (self.stride[0], self.stride[1]), (self.dilation[0], self.dilation[1]),
            (self.pads[0], self.pads[1]),
        )


Pair = tuple[int, int]


@dataclass(frozen=True)
class Window2D:
    size: Pair
    stride: Pair
    dilation: Pair
    pads: tuple[Pair, Pair]

    def spatial(self, shape: tuple[int, ...]) -> Pair:
        """(height, width) of a channels-last tensor of this window's op (1-D: height 1)."""
        return (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])


@dataclass(frozen=True, eq=False)
class Op:
    loc: Loc
    inputs: tuple[Tensor, ...]
    output: Tensor

    @property
    def input(self) -> Tensor:
        """The first (for most ops the only) input."""
        return self.inputs[0]

    @property
    def kind(self) -> str:
        """The op's name in the language, for messages and summaries."""
        return type(self).__name__.lower()

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return ()

    @property
    def macs(self) -> int:
        return 0


@dataclass(frozen=True, eq=False)
class Dense(Op):
    """``output[..., o] = act(sum_i input[..., i] * kernel[i, o] + bias[o])``."""

    kernel: Tensor
    bias: Tensor | None
    activation: ActivationKind
    requant: Requant | ShiftRequant | None = None

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return (self.kernel,) if self.bias is None else (self.kernel, self.bias)

    @property
    def macs(self) -> int:
        return self.output.type.size * self.kernel.type.shape[0]


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """Convolution over 1 or 2 spatial axes, channels last.

    The kernel is ``[*window, in_channels, out_channels]``; with ``depthwise``
    it is ``[*window, in_channels, multiplier]`` and output channel
    ``c * multiplier + m`` sees only input channel ``c``.
    """

    kernel: Tensor
    bias: Tensor | None
    window: Window
    depthwise: bool
    activation: ActivationKind
    requant: Requant | ShiftRequant | None = None

    @property
    def kind(self) -> str:
        prefix = "depthwise_conv" if self.depthwise else "conv"
        return f"{prefix}{self.window.rank}d"

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return (self.kernel,) if self.bias is None else (self.kernel, self.bias)

    @property
    def macs(self) -> int:
        taps = math.prod(self.window.size)
        per_output = taps if self.depthwise else taps * self.input.type.shape[-1]
        return self.output.type.size * per_output


class PoolKind(enum.Enum):
    MAX = "max"
    AVG = "avg"


@dataclass(frozen=True, eq=False)
class Pool(Op):
    """Max or average over a window (only in-bounds values count); int8 keeps its quantisation."""

    pool: PoolKind
    window: Window
    activation: ActivationKind
    act_range: tuple[int, int] | None = None

    @property
    def kind(self) -> str:
        return f"{self.pool.value}_pool{self.window.rank}d"


@dataclass(frozen=True, eq=False)
class GlobalPool(Op):
    """Max or mean over all spatial positions: ``[..., C] -> [C]``; int8 mean may rescale.

    A fixed-point mean (``act_range`` set, no ``impl``) is the rounded
    average in the input's format, as an average pool over the whole input.
    """

    pool: PoolKind
    impl: MeanKernel | None = None  # an int8 or int16 mean's (set by lowering)
    act_range: tuple[int, int] | None = None  # the fixed-point mean's clamp

    @property
    def kind(self) -> str:
        return f"global_{self.pool.value}_pool"


@dataclass(frozen=True, eq=False)
class Add(Op):
    """Element-wise sum of two same-shaped tensors, each with its own quantisation."""

    activation: ActivationKind
    impl: AddKernel | None = None  # integer networks' (set by lowering)


class BinaryOp(enum.Enum):
    """Element-wise ops of two operands with TFLM's broadcasting; the names are TFLite's op codes."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    MAXIMUM = "maximum"
    MINIMUM = "minimum"
    SQUARED_DIFFERENCE = "squared_difference"
    PRELU = "prelu"  # x0 where x0 >= 0, else x0 * x1 (the slopes)

    @property
    def fuses_activation(self) -> bool:
        """TFLite's ADD, SUB and MUL carry a fused activation; the others have none."""
        return self in (BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL)

    @property
    def same_quant(self) -> bool:
        """MAXIMUM and MINIMUM compare stored values: both inputs and the output share one quantisation."""
        return self in (BinaryOp.MAXIMUM, BinaryOp.MINIMUM)


@dataclass(frozen=True, eq=False)
class Binary(Op):
    """``operator(a, b)`` element-wise, with TFLM's broadcasting (shapes aligned on the right, axes of 1 repeat).

    ``operands`` are ``(a, b)`` in order; either may be a constant (a tensor
    with ``data``), and only the computed ones are among ``inputs``. A plain
    add of two computed tensors of one shape is an :class:`Add`.
    """

    operator: BinaryOp
    operands: tuple[Tensor, Tensor]
    activation: ActivationKind
    impl: BinaryKernel | None = None  # integer networks' (set by lowering)

    @property
    def kind(self) -> str:
        return self.operator.value

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return tuple(t for t in self.operands if t.data is not None)


@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Join along ``axis``; int8 inputs share the output's quantisation (a copy, as in TFLM)."""

    axis: int


@dataclass(frozen=True, eq=False)
class Pad(Op):
    """Constant padding per axis; the value is real zero (the zero point in int8)."""

    pads: tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class Activation(Op):
    """A stand-alone relu/relu6; in int8 it may also rescale to a new quantisation."""

    activation: ActivationKind
    requant: Requant | ShiftRequant | None = None

    @property
    def kind(self) -> str:
        return self.activation.value


@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """The input's real values in the output's quantisation: TFLite's QUANTIZE.

    Between two integer tensors a requantisation (``requant``); from the
    float input of an integer network, the rounding of TFLM's
    ``AffineQuantize`` (``impl``).
    """

    requant: Requant | None = None
    impl: AffineQuantize | None = None


@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """An integer tensor's real values as float (TFLite's DEQUANTIZE): the float output of an integer network."""

    impl: DequantizeKernel | None = None


class Function(enum.Enum):
    """Element-wise non-linearities with their own int8 kernels."""

    LEAKY_RELU = "leaky_relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    HARD_SWISH = "hard_swish"


@dataclass(frozen=True, eq=False)
class Elementwise(Op):
    function: Function
    alpha: float = 0.0  # leaky_relu's slope below zero
    impl: FunctionKernel | None = None  # integer networks' (set by lowering)

    @property
    def kind(self) -> str:
        return self.function.value


@dataclass(frozen=True, eq=False)
class BatchNorm(Op):
    """``x * scale[c] + offset[c]`` over the last axis: a batch norm not folded into a conv or dense."""

    scale: Tensor
    offset: Tensor

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return (self.scale, self.offset)

    @property
    def macs(self) -> int:
        return self.output.type.size


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    """Softmax over the last axis."""

    beta: float
    impl: SoftmaxKernel | None = None  # integer networks' (set by lowering)


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Same bytes, new shape (``flatten`` and ``reshape``): a view, no code."""


@dataclass(frozen=True, eq=False)
class Transpose(Op):
    """Axes reordered (TFLite's TRANSPOSE): output axis ``k`` is input axis ``perm[k]``; values only move."""

    perm: tuple[int, ...]

    @property
    def impl(self) -> Gather:
        """The strided copy that computes it, in every element type (made from the shapes alone)."""
        return Gather(transpose_walk(self.input.type.shape, self.perm), self.input.type.dtype.size)


@dataclass(frozen=True, eq=False)
class Slice(Op):
    """``count[a]`` values from ``begin[a]``, ``step[a]`` apart, along each input axis ``a`` (steps may be
    negative); the ``shrink`` axes (one value each) leave the output's shape: ``slice`` and ``strided_slice``,
    TFLite's SLICE and STRIDED_SLICE (and SPLIT, SPLIT_V and UNPACK, imported as slices)."""

    begin: tuple[int, ...]
    step: tuple[int, ...]
    count: tuple[int, ...]
    shrink: tuple[int, ...] = ()
    strided: bool = False  # written as strided_slice

    @property
    def kind(self) -> str:
        return "strided_slice" if self.strided else "slice"

    @property
    def impl(self) -> Gather:
        """The strided copy that computes it, in every element type (made from the shapes alone)."""
        return Gather(slice_walk(self.input.type.shape, self.begin, self.step, self.count),
                      self.input.type.dtype.size)


@dataclass(frozen=True, eq=False)
class Reduce(Op):
    """REDUCE_MAX or MEAN over ``axes`` (sorted); with ``keep_dims`` they stay as axes of one."""

    reducer: PoolKind
    axes: tuple[int, ...]
    keep_dims: bool
    impl: ReduceMean | None = None  # an integer mean's (set by lowering)

    @property
    def kind(self) -> str:
        return "reduce_max" if self.reducer is PoolKind.MAX else "mean"

    @property
    def kernel(self) -> ReduceKernel | None:
        """The record that computes it: the max and the float mean from the shapes, an integer mean's from
        lowering (None before)."""
        outer, inner = reduce_walks(self.input.type.shape, self.axes)
        if self.reducer is PoolKind.MAX:
            return ReduceMax(outer, inner, self.input.type.dtype.size)
        if self.input.type.dtype is DType.F32:
            return ReduceMeanF32(outer, inner)
        return self.impl


@dataclass(frozen=True, eq=False)
class Resize(Op):
    """TFLite's RESIZE_NEAREST_NEIGHBOR of an ``[H, W, C]`` tensor to the output's ``[H', W', C]``."""

    align_corners: bool
    half_pixel_centers: bool

    @property
    def kind(self) -> str:
        return "resize_nearest_neighbor"

    @property
    def impl(self) -> ResizeNearest:
        """The copy that computes it, in every element type (made from the shapes and the two flags)."""
        (in_h, in_w, channels), (out_h, out_w, _) = self.input.type.shape, self.output.type.shape
        rows = nearest_indices(in_h, out_h, self.align_corners, self.half_pixel_centers)
        cols = nearest_indices(in_w, out_w, self.align_corners, self.half_pixel_centers)
        return ResizeNearest(rows, cols, in_w, channels, self.input.type.dtype.size)


@dataclass(frozen=True)
class State:
    """One state tensor of a recurrent op (a GRU's ``h``; an LSTM's ``h`` and ``c``): ``initial`` at first, kept
    between calls when the op is ``stateful`` (NumPy: in the model; C: a file-scope static array)."""

    name: str  # "<layer>.h": unique in the network, the C array's name part
    type: TensorType
    initial: int = 0  # every value of a fresh state (an int8 LSTM's h: its output zero point)


@dataclass(frozen=True, eq=False)
class Gru(Op):
    """A GRU (Keras's, :mod:`nndsl.qmath.gru`) over an input ``[time, features]``: the states of every step
    ``[time, units]`` (``return_sequences``) or the last ``[units]``. ``bias`` is ``[3U]`` (the input bias) or
    ``[2, 3U]`` (input and recurrent biases, ``reset_after`` only)."""

    kernel: Tensor
    recurrent: Tensor
    bias: Tensor | None
    return_sequences: bool
    reset_after: bool
    stateful: bool
    impl: GruQ | None = None  # a fixed-point GRU's (set by lowering)

    @property
    def steps(self) -> int:
        return self.input.type.shape[0]

    @property
    def features(self) -> int:
        return self.input.type.shape[1]

    @property
    def units(self) -> int:
        return self.recurrent.type.shape[0]

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return (self.kernel, self.recurrent) if self.bias is None else (self.kernel, self.recurrent, self.bias)

    @property
    def macs(self) -> int:
        return gru_macs(self.steps, self.features, self.units)

    @property
    def states(self) -> tuple[State, ...]:
        """The state it carries from step to step (between calls when ``stateful``): ``h`` in its output type."""
        out = self.output.type
        return (State(f"{self.output.name}.h", TensorType(out.dtype, (self.units,), out.quant)),)

    @property
    def record(self) -> GruKernel | None:
        """The record that computes it: the float GRU's from the shapes, a fixed-point one's from lowering."""
        if self.input.type.dtype is DType.F32:
            return GruF32(self.steps, self.features, self.units, self.return_sequences, self.reset_after)
        return self.impl

    def weights(self) -> GruWeights:
        """The weights as arrays, the biases split into input and recurrent ones (zeros where absent)."""
        assert self.kernel.data is not None and self.recurrent.data is not None
        width = 3 * self.units
        rows = [] if self.bias is None or self.bias.data is None else list(self.bias.data.reshape(-1, width))
        zeros = np.zeros(width, dtype=rows[0].dtype if rows else self.kernel.data.dtype)
        rows += [zeros] * (2 - len(rows))
        return GruWeights(self.kernel.data, self.recurrent.data, rows[0], rows[1])


@dataclass(frozen=True, eq=False)
class Lstm(Op):
    """UNIDIRECTIONAL_SEQUENCE_LSTM over a ``[T, F]`` input: every step's ``h`` ``[T, U]`` or the last ``[U]``.

    ``kernel`` ``[F, 4U]``, ``recurrent`` ``[U, 4U]``, ``bias`` ``[4U]``, gate
    blocks i, f, c, o. ``cell_scale`` (int8 only) is the int16 cell state's
    power-of-two scale; ``cell_clip`` > 0 clips the cell state (real units).
    """

    kernel: Tensor
    recurrent: Tensor
    bias: Tensor | None
    cell_scale: float | None
    cell_clip: float
    return_sequences: bool
    stateful: bool
    impl: LstmKernel | None = None  # an int8 layer's (set by lowering)

    @property
    def units(self) -> int:
        return self.recurrent.type.shape[0]

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return (self.kernel, self.recurrent) + (() if self.bias is None else (self.bias,))

    @property
    def macs(self) -> int:
        steps, features = self.input.type.shape
        return steps * 4 * self.units * (features + self.units)

    @property
    def states(self) -> tuple[State, ...]:
        """``h`` in its output type (an int8 one starts at the output's zero point, TFLM's reset state) and
        ``c`` (int16 at ``cell_scale`` in an int8 LSTM, else float), zero at first."""
        out = self.output.type
        hidden = TensorType(out.dtype, (self.units,), out.quant)
        if out.dtype is DType.F32:
            return State(f"{self.output.name}.h", hidden), State(f"{self.output.name}.c", hidden)
        assert out.quant is not None and self.cell_scale is not None  # the checker requires both
        cell = TensorType(DType.I16, (self.units,), Quant.per_tensor(self.cell_scale, 0))
        return (State(f"{self.output.name}.h", hidden, out.quant.zero_point),
                State(f"{self.output.name}.c", cell))

    @property
    def record(self) -> LstmKernel | None:
        """The record that computes it: the float one from the attributes, an int8 one from lowering."""
        if self.input.type.dtype is DType.F32:
            return LstmF32(self.cell_clip, self.return_sequences)
        return self.impl


Recurrent = Gru | Lstm  # the ops with state


def op_states(op: Op) -> tuple[State, ...]:
    """The states ``op`` keeps between calls: a stateful recurrent op's, else none."""
    if isinstance(op, Recurrent) and op.stateful:
        return op.states
    return ()


# Every op class: a closed union, so that a `match` ending in `assert_never` is checked for every op by the type
# checker, and a new op class shows each place that must handle it.
AnyOp = (Dense | Conv | Pool | GlobalPool | Add | Binary | Concat | Pad | Activation | Quantize | Dequantize
         | Elementwise | BatchNorm | Softmax | Reshape | Transpose | Slice | Reduce | Resize | Gru
         | Lstm)


def op_kernel(op: Op) -> Kernel | None:
    """The kernel record lowering bound to ``op`` (None: f32, or a loop the C templates write inline)."""
    match op:
        case Add() | GlobalPool() | Elementwise() | Softmax() | Binary() | Quantize() | Dequantize():
            return op.impl
        case Transpose() | Slice() | Resize():
            return op.impl
        case Reduce():
            return op.kernel
        case Gru():
            return op.record
    return None


def op_weight_bytes(op: Op) -> int:
    """Constant bytes of one op: its weights plus per-channel multiplier/shift tables."""
    requant = op.requant if isinstance(op, Dense | Conv | Activation | Quantize) else None
    tables = 8 * len(requant.multipliers) if isinstance(requant, Requant) and requant.per_channel else 0
    return sum(c.type.nbytes for c in op.consts) + tables


def model_weight_bytes(graph: Graph) -> int:
    """Constant bytes of the model; weights shared by several ops count once."""
    shared = sum(op_weight_bytes(op) for op in graph.ops) - sum(c.type.nbytes for op in graph.ops for c in op.consts)
    return shared + sum(c.type.nbytes for c in graph.consts)


class Storage(enum.Enum):
    INPUT = "input"  # the caller's input buffer
    OUTPUT = "output"  # the caller's output buffer
    ARENA = "arena"  # the one scratch arena


@dataclass
class MemoryPlan:
    """Where each activation tensor lives.

    Views (reshapes) share the bytes of their ``root``; roots other than the
    graph input and the tensor the output is a view of get an arena offset.
    ``output_copies_input`` marks a network whose output is just the input
    reshaped, so the C code must copy it. ``in_place`` names the outputs of
    ops whose output shares its input's bytes (the op's kernel allows it,
    :func:`nndsl.fast_kernels.runs_in_place`, and nothing reads the input later).
    """

    roots: dict[str, str] = field(default_factory=dict)
    in_place: set[str] = field(default_factory=set)
    offsets: dict[str, int] = field(default_factory=dict)
    storage: dict[str, Storage] = field(default_factory=dict)
    arena_size: int = 0
    output_copies_input: bool = False

    def place(self, tensor_name: str) -> tuple[Storage, int]:
        """The storage and byte offset of a tensor (views resolve to their root)."""
        root = self.roots[tensor_name]
        return self.storage[root], self.offsets.get(root, 0)


@dataclass
class Graph:
    name: str
    source_path: str
    input: Tensor
    output: Tensor
    ops: list[AnyOp]
    target: Target | None = None
    plan: MemoryPlan = field(default_factory=MemoryPlan)

    @property
    def rounding(self) -> Rounding:
        """The target's rounding scheme (TensorFlow Lite Micro's default double rounding without a target)."""
        return self.target.rounding if self.target is not None else Rounding.DOUBLE

    @property
    def dtype(self) -> DType:
        """The network's arithmetic: f32, i8 or i16 (affine, or fixed point: see :attr:`fixed`).

        The input's storage, or for a float input that the network quantises
        (a float-I/O model), the storage it is quantised to.
        """
        for op in self.ops:
            if isinstance(op, Quantize) and op.input.name == self.input.name:
                return op.output.type.dtype
        return self.input.type.dtype

    @property
    def fixed(self) -> bool:
        """A power-of-two fixed-point network (q7, q15, qM.N tensors, shift-only arithmetic)."""
        return self.input.type.fixed is not None

    @property
    def consts(self) -> list[Tensor]:
        seen: dict[str, Tensor] = {}
        for op in self.ops:
            for const in op.consts:
                seen.setdefault(const.name, const)
        return list(seen.values())

    @property
    def states(self) -> list[State]:
        """The state kept between calls (stateful recurrent ops'), in op order; empty: a stateless network."""
        return [state for op in self.ops for state in op_states(op)]

    @property
    def state_bytes(self) -> int:
        return sum(state.type.nbytes for state in self.states)

    @property
    def tensors(self) -> list[Tensor]:
        """Activation tensors in order of definition, the input first."""
        return [self.input, *(op.output for op in self.ops)]
