"""Element types and quantisation of tensors.

``f32`` is plain float; ``i8`` (and the ``i32`` of biases) are affine:
``real = scale * (q - zero_point)``, TensorFlow Lite's scheme, with one scale
per tensor or one per output channel for weights. Scales are stored as the
float32 values TensorFlow Lite stores, because its integer parameters are
derived from exactly those.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np


class DType(enum.Enum):
    F32 = "f32"
    I8 = "i8"
    I16 = "i16"  # TensorFlow Lite's 16x8 scheme: int16 activations (zero point 0), int8 weights
    I32 = "i32"  # biases of int8 layers
    I64 = "i64"  # biases of int16 layers

    @property
    def numpy(self) -> np.dtype[Any]:
        return np.dtype(_NUMPY_NAMES[self])

    @property
    def c_type(self) -> str:
        return "float" if self is DType.F32 else f"{_NUMPY_NAMES[self]}_t"

    @property
    def size(self) -> int:
        return self.numpy.itemsize

    @property
    def is_integer(self) -> bool:
        return self is not DType.F32

    @property
    def bounds(self) -> tuple[int, int]:
        """The integer range of the type (the clamp of a saturating store)."""
        assert self.is_integer, "f32 has no integer range"
        info = np.iinfo(self.numpy)
        return int(info.min), int(info.max)

    @property
    def weight(self) -> DType:
        """The kernels of a network computing in this type: int8 for both integer schemes."""
        return DType.F32 if self is DType.F32 else DType.I8

    @property
    def bias(self) -> DType:
        """The biases: int32 for int8 networks, int64 for 16x8 ones, as TensorFlow Lite stores them."""
        return {DType.F32: DType.F32, DType.I8: DType.I32, DType.I16: DType.I64}[self]

    @classmethod
    def from_name(cls, name: str) -> DType | None:
        return next((d for d in cls if d.value == name), None)


_NUMPY_NAMES = {DType.F32: "float32", DType.I8: "int8", DType.I16: "int16", DType.I32: "int32", DType.I64: "int64"}
ACTIVATION_DTYPES = (DType.F32, DType.I8, DType.I16)


def as_float32(value: float) -> float:
    """The float32 nearest ``value``, as a Python float (TensorFlow Lite stores float32 scales)."""
    return float(np.float32(value))


@dataclass(frozen=True)
class Quant:
    """Affine quantisation: per tensor (``axis is None``) or per channel along ``axis``."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int | None = None

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int) -> Quant:
        return cls((as_float32(scale),), (int(zero_point),))

    @property
    def scale(self) -> float:
        """The scale of a per-tensor quantisation."""
        assert self.axis is None and len(self.scales) == 1, "per-channel quantisation has no single scale"
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        assert self.axis is None and len(self.zero_points) == 1
        return self.zero_points[0]

    def __str__(self) -> str:
        if self.axis is None:
            return f"scale({self.scales[0]!r}) zero({self.zero_points[0]})"
        return f"per-channel scales ({len(self.scales)} along axis {self.axis})"


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: tuple[int, ...]
    quant: Quant | None = None

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.size

    def __str__(self) -> str:
        text = f"{self.dtype.value}[{', '.join(map(str, self.shape))}]"
        return f"{text} @ {self.quant}" if self.quant is not None else text
