"""The typed graph IR: what the checker produces and the backends consume.

A :class:`Graph` is a flat list of ops in execution order. Every tensor has a
shape and, when integer, its quantisation; every op carries its source
location and, after :mod:`nndsl.lower`, the integer parameters its kernel
needs (multipliers, shifts, offsets, clamps), so backends compute nothing but
the arithmetic of :mod:`nndsl.qmath`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nndsl.diagnostics import Loc
from nndsl.qmath.softmax import SoftmaxS8Params
from nndsl.target import Target
from nndsl.types import DType, TensorType


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

    @property
    def is_const(self) -> bool:
        return self.data is not None


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

    @property
    def per_channel(self) -> bool:
        return len(self.multipliers) > 1


@dataclass(frozen=True, eq=False)
class Op:
    loc: Loc
    input: Tensor
    output: Tensor

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
    requant: Requant | None = None

    @property
    def consts(self) -> tuple[Tensor, ...]:
        return (self.kernel,) if self.bias is None else (self.kernel, self.bias)

    @property
    def macs(self) -> int:
        return self.output.type.size * self.kernel.type.shape[0]


@dataclass(frozen=True, eq=False)
class Activation(Op):
    """A stand-alone activation; in int8 it may also rescale to a new quantisation."""

    activation: ActivationKind
    requant: Requant | None = None


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    """Softmax over the last axis."""

    beta: float
    params: SoftmaxS8Params | None = None


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Same bytes, new shape (``flatten`` and ``reshape``): a view, no code."""


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
    reshaped, so the C code must copy it.
    """

    roots: dict[str, str] = field(default_factory=dict)
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
    ops: list[Op]
    target: Target | None = None
    plan: MemoryPlan = field(default_factory=MemoryPlan)

    @property
    def dtype(self) -> DType:
        """The arithmetic of the model: f32 or i8."""
        return self.input.type.dtype

    @property
    def consts(self) -> list[Tensor]:
        seen: dict[str, Tensor] = {}
        for op in self.ops:
            for const in op.consts:
                seen.setdefault(const.name, const)
        return list(seen.values())

    @property
    def tensors(self) -> list[Tensor]:
        """Activation tensors in order of definition, the input first."""
        return [self.input, *(op.output for op in self.ops)]
