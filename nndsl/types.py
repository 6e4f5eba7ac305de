"""Element types and quantisation of tensors.

``f32`` is plain float; ``i8`` (and the ``i32`` of biases) are affine:
``real = scale * (q - zero_point)``, TensorFlow Lite's scheme, with one scale
per tensor or one per output channel for weights. Scales are stored as the
float32 values TensorFlow Lite stores, because its integer parameters are
derived from exactly those.

Power-of-two fixed point (``q7``, ``q15``, ``qM.N``) is the special case
``scale = 2^-N``, ``zero_point = 0`` with its own bit width: a :class:`Quant`
whose ``fixed`` names the :class:`QFormat`, stored in int8 or int16.
"""

from __future__ import annotations

import enum
import math
import re
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


@dataclass(frozen=True)
class QFormat:
    """Signed power-of-two fixed point Qm.n: ``m`` integer bits, ``n`` fraction bits, ``m + n + 1`` bits in all.

    ``real = q * 2^-n``. Activations are written ``q7`` (Q0.7), ``q15``
    (Q0.15) or ``qM.N`` with 2 to 16 bits; a weight array's format comes from
    its storage (int8, int16, int32) and its ``frac_bits``, so ``m`` may be
    negative there (small weights kept with more fraction bits).
    """

    int_bits: int
    frac_bits: int

    @property
    def bits(self) -> int:
        return self.int_bits + self.frac_bits + 1

    @property
    def bounds(self) -> tuple[int, int]:
        """The integer range of the format (the clamp of a saturating store)."""
        top = 1 << (self.bits - 1)
        return -top, top - 1

    @property
    def scale(self) -> float:
        return 2.0**-self.frac_bits

    @property
    def storage(self) -> DType:
        """The smallest container: int8 up to 8 bits, int16 up to 16, else int32."""
        return DType.I8 if self.bits <= 8 else DType.I16 if self.bits <= 16 else DType.I32

    @property
    def name(self) -> str:
        if self.int_bits == 0 and self.frac_bits in (7, 15):
            return f"q{self.frac_bits}"
        return f"q{self.int_bits}.{self.frac_bits}"

    @classmethod
    def stored_in(cls, storage: DType, frac_bits: int) -> QFormat:
        """The format of a whole int8/int16/int32 array with ``frac_bits`` fraction bits."""
        bits = 8 * storage.size
        return cls(bits - 1 - frac_bits, frac_bits)

    @classmethod
    def parse(cls, name: str) -> QFormat | None:
        """``q7``, ``q15`` or ``qM.N`` (None for any other name); the width is not checked here."""
        if name in ("q7", "q15"):
            return cls(0, int(name[1:]))
        match = re.fullmatch(r"q(\d+)\.(\d+)", name)
        return cls(int(match[1]), int(match[2])) if match else None


MAX_ACTIVATION_BITS = 16  # qM.N activations live in int8 or int16
MAX_WEIGHT_FRAC_BITS = 31  # a weight array's ``frac_bits``: a shift an int32 value can take


def format_for(largest: float, bits: int, headroom: int = 0, max_frac: int = MAX_WEIGHT_FRAC_BITS) -> QFormat:
    """The ``bits``-bit format with the most fraction bits (0 to ``max_frac``) that holds ``largest * 2^headroom``.

    Activations take ``max_frac = bits - 1`` (a qM.N name has M >= 0); weights may have more fraction bits
    than bits (small weights, negative M).
    """
    top = 2 ** (bits - 1) - 1
    wanted = largest * 2.0**headroom
    frac = next((f for f in range(max_frac, 0, -1) if math.floor(wanted * 2.0**f + 0.5) <= top), 0)
    return QFormat(bits - 1 - frac, frac)

# Limits on what one model may ask the compiler to hold or compute. A microcontroller's RAM and flash are a
# few MiB at most, so each is far beyond any real model, and each keeps the checks (above all the range
# analysis, which holds int64 bounds per element and per kernel tap) within a few hundred MB and seconds.
MAX_LAYERS = 2048  # layers the output depends on (memory planning compares every pair of tensors)
MAX_RANK = 8  # axes of a tensor
MAX_TENSOR_ELEMENTS = 2**22  # one activation tensor: 4 MiB of int8, 16 MiB of f32
MAX_NETWORK_ELEMENTS = 2**23  # all the activation tensors of a network together
MAX_WINDOW_TAPS = 2**12  # one conv or pool window (64x64): the checks visit its taps one by one
MAX_OP_WORK = 2**23  # one op: MACs, window taps x outputs, padded input elements (see nndsl.check)
MAX_NETWORK_WORK = 2**26  # all the ops of a network together
MAX_WEIGHT_ELEMENTS = 2**24  # the weight arrays a model uses, together: 16 MiB of int8, 64 MiB of f32
MAX_ARRAY_FILE_ELEMENTS = 2**26  # a .npy file of inputs (run --input, --calibrate, --labels): 256 MiB of f32


def element_count(shape: tuple[int, ...]) -> int:
    """The number of elements of a shape, exactly (Python integers never wrap, unlike an int64 product)."""
    return math.prod(int(d) for d in shape)


def power_text(limit: int) -> str:
    """A limit as messages write it: ``4194304 (2^22)``."""
    exponent = limit.bit_length() - 1
    return f"{limit} (2^{exponent})" if limit == 1 << exponent else str(limit)


def as_float32(value: float) -> float:
    """The float32 nearest ``value``, as a Python float (TensorFlow Lite stores float32 scales)."""
    return float(np.float32(value))


@dataclass(frozen=True)
class Quant:
    """Affine quantisation: per tensor (``axis is None``) or per channel along ``axis``."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int | None = None
    fixed: QFormat | None = None  # power-of-two fixed point: scale 2^-n, zero point 0, its own width

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int) -> Quant:
        return cls((as_float32(scale),), (int(zero_point),))

    @classmethod
    def of_format(cls, fmt: QFormat) -> Quant:
        return cls((fmt.scale,), (0,), None, fmt)

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
        if self.fixed is not None:
            return self.fixed.name
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
        return element_count(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.size

    @property
    def fixed(self) -> QFormat | None:
        """The power-of-two format of a qM.N tensor (None for f32 and affine ones)."""
        return self.quant.fixed if self.quant is not None else None

    @property
    def bounds(self) -> tuple[int, int]:
        """The integer range a value of this type can hold: its qM.N format's, else its dtype's."""
        return self.fixed.bounds if self.fixed is not None else self.dtype.bounds

    @property
    def type_name(self) -> str:
        """How the language names the element type: f32, i8, i16, q7, q3.4..."""
        return self.fixed.name if self.fixed is not None else self.dtype.value

    def __str__(self) -> str:
        text = f"{self.type_name}[{', '.join(map(str, self.shape))}]"
        if self.fixed is not None or self.quant is None:
            return text
        return f"{text} @ {self.quant}"
