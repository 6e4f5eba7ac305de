"""Power-of-two fixed point (q7, q15, qM.N): shift-only requantisation, written once.

A value ``q`` of format qM.N stands for ``q * 2^-N``. Moving a value from
``N_in`` to ``N_out`` fraction bits is a shift by ``N_in - N_out``:

- a right shift rounds half away from zero (gemmlowp's ``RoundingDivideByPOT``,
  the rounding TensorFlow Lite Micro's requantisation ends with, so both of
  nndsl's arithmetics round alike): ``shift_round(5, 1) == 3``,
  ``shift_round(-5, 1) == -3``;
- a left shift is exact, saturated to int32;
- the result is then clamped to the output format (and its fused activation).

Dense and convolution layers accumulate ``sum(x * w)`` in int32 with
``N_x + N_w`` fraction bits, the bias aligned to that by a left shift when the
model is lowered; ``add`` aligns both inputs to the larger of their fraction
bits and sums in int32. The range analysis proves that none of these int32
values can overflow, so the C runtime (``backends/c/runtime/shift.c``) may
compute them in ``int32_t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from nndsl.qmath.requant import INT32_MAX, INT32_MIN, ArrayLike, IntArray, round_half_away_array, rounding_divide_by_pot

MAX_SHIFT = 31  # a right shift of an int32 value by more gives only 0 or -1; a left one by more cannot fit
MAX_ALIGN = 30  # add's input alignment: a left shift by a constant 2^k that int32_t can hold


def checked_shift(shift: int) -> int:
    """A requantisation shift of at most 31 bits either way, or ``ValueError``."""
    if not -MAX_SHIFT <= shift <= MAX_SHIFT:
        raise ValueError(f"a shift of {shift} bits is beyond -{MAX_SHIFT}..{MAX_SHIFT}")
    return shift


def shift_round(x: ArrayLike, shift: int) -> IntArray:
    """``x * 2^-shift`` for int32 ``x``: a rounding right shift (half away from zero) or an exact left shift.

    The left shift saturates to int32 (the C computes it in int64, then clamps).
    """
    values = np.asarray(x, dtype=np.int64)
    if shift > 0:
        return rounding_divide_by_pot(values, checked_shift(shift))
    shifted: IntArray = np.clip(values << -checked_shift(shift), INT32_MIN, INT32_MAX)
    return shifted


def requantize_q(acc: ArrayLike, shift: int, act_min: int, act_max: int) -> IntArray:
    """The output stage of every fixed-point op: ``clamp(shift_round(acc, shift), act_min, act_max)``."""
    return np.clip(shift_round(acc, shift), act_min, act_max)


@dataclass(frozen=True)
class AddQParams:
    """``add`` of qM.N tensors: ``shift_round(a * 2^left_a + b * 2^left_b, shift)``, clamped.

    The input with fewer fraction bits is aligned to the other (one of the two
    ``left`` shifts is 0), and ``shift`` takes the sum to the output's format.
    """

    left_a: int
    left_b: int
    shift: int


def add_q_params(frac_a: int, frac_b: int, frac_out: int) -> AddQParams:
    """The shifts of an add of formats with these fraction bits; ``ValueError`` when one is out of range."""
    frac = max(frac_a, frac_b)
    left_a, left_b = frac - frac_a, frac - frac_b
    if max(left_a, left_b) > MAX_ALIGN:
        raise ValueError(f"aligning the inputs needs a left shift of {max(left_a, left_b)} bits, more than "
                         f"{MAX_ALIGN}")
    return AddQParams(left_a, left_b, checked_shift(frac - frac_out))


def aligned_sum(a: ArrayLike, b: ArrayLike, params: AddQParams) -> IntArray:
    """The int32 sum of an add, before its output shift (what the range analysis bounds)."""
    left_a = np.asarray(a, dtype=np.int64) << params.left_a
    total: IntArray = left_a + (np.asarray(b, dtype=np.int64) << params.left_b)
    return total


def add_q(a: ArrayLike, b: ArrayLike, params: AddQParams, act_min: int, act_max: int) -> IntArray:
    return requantize_q(aligned_sum(a, b, params), params.shift, act_min, act_max)


BinaryQOp = Literal["add", "sub", "mul", "maximum", "minimum", "squared_difference"]
BINARY_Q_OPS: tuple[BinaryQOp, ...] = ("add", "sub", "mul", "maximum", "minimum", "squared_difference")


@dataclass(frozen=True)
class BinaryQParams:
    """A binary op of qM.N values (broadcast, or with a constant): an int32 result, shifted to the output's format.

    ``add``, ``sub``, ``maximum``, ``minimum`` and ``squared_difference`` align
    both inputs to the larger fraction bits first (as :class:`AddQParams`);
    ``mul`` multiplies them as they are (``N_a + N_b`` fraction bits) and
    ``squared_difference`` squares the aligned difference (twice the bits).
    ``shift`` takes that int32 value to the output's fraction bits; the range
    analysis proves it cannot overflow (:func:`binary_q_raw` is what it bounds).
    """

    op: BinaryQOp
    left_a: int
    left_b: int
    shift: int

    @property
    def code(self) -> int:
        """The op as the C element function's ``op`` argument (its index in ``BINARY_Q_OPS``)."""
        return BINARY_Q_OPS.index(self.op)


def binary_q_raw_frac(op: str, frac_a: int, frac_b: int) -> int:
    """The fraction bits of the op's int32 value before its output shift."""
    frac = max(frac_a, frac_b)
    return {"mul": frac_a + frac_b, "squared_difference": 2 * frac}.get(op, frac)


def binary_q_params(name: str, frac_a: int, frac_b: int, frac_out: int) -> BinaryQParams:
    """The shifts of the op ``name`` on formats with these fraction bits; ``ValueError`` when one is out of range."""
    op = BINARY_Q_OPS[BINARY_Q_OPS.index(name)]  # ValueError for an op not listed
    shift = checked_shift(binary_q_raw_frac(op, frac_a, frac_b) - frac_out)
    if op == "mul":
        return BinaryQParams(op, 0, 0, shift)
    aligned = add_q_params(frac_a, frac_b, frac_out)
    return BinaryQParams(op, aligned.left_a, aligned.left_b, shift)


def binary_q_raw(a: ArrayLike, b: ArrayLike, params: BinaryQParams) -> IntArray:
    """The int32 value of the op before its output shift, exactly (int64 here, so that overflow shows)."""
    x = np.asarray(a, dtype=np.int64) << params.left_a
    y = np.asarray(b, dtype=np.int64) << params.left_b
    match params.op:
        case "add":
            raw: IntArray = x + y
        case "sub":
            raw = x - y
        case "mul":
            raw = x * y
        case "maximum":
            raw = np.maximum(x, y)
        case "minimum":
            raw = np.minimum(x, y)
        case "squared_difference":
            raw = (x - y) * (x - y)
    return raw


def binary_q(a: ArrayLike, b: ArrayLike, params: BinaryQParams, act_min: int, act_max: int) -> IntArray:
    return requantize_q(binary_q_raw(a, b, params), params.shift, act_min, act_max)


def to_fixed_integers(values: npt.NDArray[Any], frac_bits: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """``values * 2^frac_bits`` rounded half away from zero, saturated to ``dtype``."""
    scaled = values.astype(np.float64) * 2.0**frac_bits
    info = np.iinfo(dtype)
    result: npt.NDArray[Any] = np.clip(round_half_away_array(scaled), info.min, info.max).astype(dtype)
    return result


def align_bias(bias: ArrayLike, left: int) -> IntArray:
    """A bias moved to its accumulator's fraction bits (``left`` >= 0 more); ``ValueError`` if beyond int32."""
    values = [int(v) << left for v in np.asarray(bias).reshape(-1)]
    worst = max(values, key=abs, default=0)
    if not INT32_MIN <= worst <= INT32_MAX:
        raise ValueError(f"aligned by {left} bits the bias reaches {worst}, beyond int32")
    return np.asarray(values, dtype=np.int64).reshape(np.shape(bias))


__all__ = [
    "BINARY_Q_OPS", "MAX_SHIFT", "AddQParams", "BinaryQOp", "BinaryQParams", "add_q", "add_q_params", "align_bias",
    "aligned_sum", "binary_q", "binary_q_params", "binary_q_raw", "binary_q_raw_frac", "checked_shift",
    "requantize_q", "shift_round", "to_fixed_integers",
]
