"""Requantisation: fixed-point multipliers, rounding shifts and clamps.

All array functions take and return ``int64`` arrays holding int32 values, so
that intermediate products never overflow in NumPy; the C runtime uses
``int32_t``/``int64_t`` with the same results. C's ``/`` truncates toward
zero while NumPy's ``//`` floors: the helpers below spell out truncation.
"""

from __future__ import annotations

import enum
import math
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT16_MIN = -(2**15)
INT16_MAX = 2**15 - 1
INT8_MIN = -128
INT8_MAX = 127
# TFLM's int16 SOFTMAX, TANH and LOGISTIC write int16 at scale 2**-15, zero point 0.
S16_FUNCTION_OUTPUT_SCALE = 1.0 / 32768.0
S16_FUNCTION_OUTPUT_ZERO_POINT = 0

# The storage type of an integer kernel's data: int8, or int16 for the 16x8 kernels.
Storage = TypeVar("Storage", np.int8, np.int16)

IntArray = npt.NDArray[np.int64]
ArrayLike = npt.ArrayLike


class Rounding(enum.Enum):
    """How ``MultiplyByQuantizedMultiplier`` rounds.

    ``DOUBLE``: TensorFlow Lite Micro's default, gemmlowp's rounding high
    multiply then a rounding right shift (two roundings). ``SINGLE``: the
    scheme of TFLite's ``TFLITE_SINGLE_ROUNDING`` builds and CMSIS-NN, one
    64-bit product rounded once.
    """

    DOUBLE = "double"
    SINGLE = "single"


def round_half_away(x: float) -> int:
    """C's ``round()``/``std::round``: halves go away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def round_half_away_array(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`round_half_away` on every value of a float64 array (the result still float64)."""
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def float32_scale(name: str, value: float) -> np.float32:
    """A tensor scale as TensorFlow Lite stores it (float32); positive and finite, or ``ValueError``."""
    scale = np.float32(value)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"{name} {value!r} is not a positive finite float32")
    return scale


def checked_zero_point(name: str, value: int, storage: type[np.signedinteger[Any]]) -> int:
    """A zero point inside its storage type's range, or ``ValueError``."""
    info = np.iinfo(storage)
    if not info.min <= value <= info.max:
        raise ValueError(f"{name} {value} outside the {info.dtype} range")
    return int(value)


def stored_values(x: ArrayLike, what: str, storage: type[np.signedinteger[Any]]) -> IntArray:
    """``x`` widened to int64; ``ValueError`` ("``what`` is not int8") when a value lies outside ``storage``."""
    info = np.iinfo(storage)
    values = np.asarray(x)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise ValueError(f"{what} is not {info.dtype}")
    return values.astype(np.int64)


def check_activation_range(act_min: int, act_max: int, storage: type[np.signedinteger[Any]]) -> None:
    """``ValueError`` unless ``act_min <= act_max`` both lie in ``storage``'s range."""
    info = np.iinfo(storage)
    if not info.min <= act_min <= act_max <= info.max:
        raise ValueError(f"activation range [{act_min}, {act_max}] is not an {info.dtype} range")


def quantize_multiplier(real_multiplier: float, rounding: Rounding = Rounding.DOUBLE) -> tuple[int, int]:
    """Split a positive real multiplier into ``(q31 multiplier, shift)``.

    ``real ~= multiplier * 2**(shift - 31)`` with ``multiplier`` in
    ``[2**30, 2**31)``; TensorFlow Lite's ``QuantizeMultiplier``: multipliers
    below ``2**-31`` flush to ``(0, 0)``. Under single rounding a shift above
    30 saturates to ``(2**31 - 1, 30)``, as ``TFLITE_SINGLE_ROUNDING`` does.
    """
    if real_multiplier == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(fraction * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if rounding is Rounding.SINGLE and shift > 30:
        return INT32_MAX, 30
    return q_fixed, shift


def quantize_multiplier_greater_than_one(
    real_multiplier: float, rounding: Rounding = Rounding.DOUBLE
) -> tuple[int, int]:
    """``QuantizeMultiplierGreaterThanOne``: the shift is a left shift >= 0."""
    if not real_multiplier > 1.0:
        raise ValueError(f"multiplier {real_multiplier} is not greater than one")
    return quantize_multiplier(real_multiplier, rounding)


# The multiplier and shift of a scale of exactly 1: mbqm(x, 2^30, 1) == x.
IDENTITY_MULTIPLIER = (1 << 30, 1)


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: ``round(a*b / 2**31)``.

    The nudge rounds halves away from zero, then C division truncates; the
    one overflowing case, ``INT32_MIN * INT32_MIN``, saturates to ``INT32_MAX``.
    Computed as ``(a*b + 2**30) >> 31`` (a flooring shift), which is the same:
    a positive sum floors either way, and a negative one truncates to its
    ceiling, ``ceil((p + 1 - 2**30) / 2**31) == floor((p + 2**30) / 2**31)``.
    """
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    high = np.asarray((a64 * b64 + (1 << 30)) >> 31)
    if np.any(b64 == INT32_MIN):
        high = np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, high)
    return high


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> IntArray:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent``, halves away from zero.

    gemmlowp adds one to ``x >> exponent`` when the remainder exceeds half the
    divisor (less one for a positive ``x``); that is the flooring shift of
    ``x + half`` (``half = 2**exponent / 2``, 0 for exponent 0), less one for a
    negative ``x`` when there is a half to round.
    """
    x64 = np.asarray(x, dtype=np.int64)
    exp64 = np.asarray(exponent, dtype=np.int64)
    half = (np.int64(1) << exp64) >> 1
    negative_adjust = (x64 >> 63) & -(half > 0).astype(np.int64)  # -1 for a negative x, where half > 0
    return np.asarray((x64 + half + negative_adjust) >> exp64)


def wrap_int32(x: ArrayLike) -> IntArray:
    """Two's-complement wrap to int32, as the C runtime's unsigned shift does."""
    x64 = np.asarray(x, dtype=np.int64)
    return ((x64 + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap_int16(x: npt.ArrayLike) -> IntArray:
    """Two's-complement wrap to int16 (C++'s conversion of an ``int`` to ``int16_t``)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)



def multiply_by_quantized_multiplier_single(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> IntArray:
    """``MultiplyByQuantizedMultiplier`` of a ``TFLITE_SINGLE_ROUNDING`` build.

    ``(x * multiplier + 2**(30 - shift)) >> (31 - shift)`` in 64 bits: one
    rounding, halves toward positive infinity. TFLite requires ``shift`` in
    ``[-31, 30]`` and a result inside int32 (debug checks only); the result
    is wrapped to int32 like the C cast. Its ``...SmallerThanOneExp`` and
    ``...GreaterThanOne`` variants are this same function.
    """
    x64 = np.asarray(x, dtype=np.int64)
    total_shift = 31 - np.asarray(shift, dtype=np.int64)
    product = x64 * np.asarray(multiplier, dtype=np.int64) + (np.int64(1) << (total_shift - 1))
    return wrap_int32(product >> total_shift)


def multiply_by_quantized_multiplier(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, rounding: Rounding = Rounding.DOUBLE
) -> IntArray:
    """TensorFlow Lite's ``MultiplyByQuantizedMultiplier`` (double rounding unless ``rounding`` says single).

    A positive ``shift`` scales ``x`` left before the high multiply (wrapping
    like the C code; the checker proves it does not), a negative one is a
    rounding right shift after it. Single rounding:
    :func:`multiply_by_quantized_multiplier_single`.
    """
    if rounding is Rounding.SINGLE:
        return multiply_by_quantized_multiplier_single(x, multiplier, shift)
    shift64 = np.asarray(shift, dtype=np.int64)
    x64 = np.asarray(x, dtype=np.int64)
    merged = _merged_double_rounding(x64, np.asarray(multiplier, dtype=np.int64), shift64)
    if merged is not None:
        return merged
    left = np.maximum(shift64, 0)
    right = np.maximum(-shift64, 0)
    within = not x64.size or (x64.min() >= INT32_MIN and x64.max() <= INT32_MAX)
    scaled = x64 if within and not np.any(left) else wrap_int32(x64 << left)  # nothing to shift or wrap: as is
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


def _merged_double_rounding(x: IntArray, multiplier: IntArray, shift: IntArray) -> IntArray | None:
    """The double rounding as one floor division, where it equals it; None elsewhere.

    For multipliers above 2^30, right shifts ``r >= 1`` and ``|x| < 2^30``,
    ``rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), r)``
    is ``floor((p + 2^30 + (2^(r-1) - [p < -2^30]) * 2^31) / 2^(31+r))`` with
    ``p = x*m`` (nested floor divisions merge; the high multiply's result is
    negative exactly when ``p < -2^30``, that is when ``x < 0``). With ``2x``
    in place of ``x`` the division by 2^31 becomes a shift by 32. The C
    kernels compute the same (``nn_mat_scale`` in ``runtime/matmul.c``); here
    it is several times faster on a batch than the two roundings one by one.
    """
    if not x.size or not (np.all(multiplier > 2**30) and np.all(shift < 0)):
        return None
    if max(-int(x.min()), int(x.max())) >= 2**30:
        return None
    right = -shift
    high = (x * 2 * multiplier + (1 << 31)) >> 32
    high += (np.int64(1) << right) >> 1
    high -= x < 0
    return np.asarray(high >> right)


def activation_range(
    activation_min: float | None, activation_max: float | None, scale: float, zero_point: int, qmin: int, qmax: int
) -> tuple[int, int]:
    """Quantised clamp bounds of a fused activation (``CalculateActivationRangeQuantized``).

    The real bound is divided by the scale in float32 and rounded half away
    from zero, then intersected with the type's range.
    """
    low, high = qmin, qmax
    if activation_min is not None:
        low = max(low, zero_point + round_half_away(float(np.float32(activation_min) / np.float32(scale))))
    if activation_max is not None:
        high = min(high, zero_point + round_half_away(float(np.float32(activation_max) / np.float32(scale))))
    return low, high


# --------------------------------------------------------------------------
# float32 helpers of TFLite's Prepare code
# --------------------------------------------------------------------------


def round_float32(x: np.float32) -> np.float32:
    """``TfLiteRound`` on a float (``std::round``): halves away from zero, exact.

    Done in double, where ``|x| + 0.5`` is exact for every float32 ``x``.
    """
    value = float(x)
    return np.float32(math.copysign(math.floor(abs(value) + 0.5), value))


def log_float32(x: np.float32) -> np.float32:
    """``std::log`` of a float, correctly rounded (as :func:`exp_float32`)."""
    return np.float32(math.log(float(x)))


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite's ``CheckedLog2`` in float32: ``(is a power of two to within 1e-3 in log2, rounded log2)``.

    ``log(x) * (1 / log(2))``, rounded half away from zero; the power-of-two
    test is ``|log2 - rounded| < 1e-3``.
    """
    x32 = float32_scale("scale", x)
    inverse_log2 = np.float32(np.float32(1.0) / log_float32(np.float32(2.0)))
    x_log2 = np.float32(log_float32(x32) * inverse_log2)
    rounded = round_float32(x_log2)
    fraction = np.float32(x_log2 - rounded)
    return bool(abs(fraction) < np.float32(1e-3)), int(rounded)


# --------------------------------------------------------------------------
# The int64 MultiplyByQuantizedMultiplier of the 16x8 weighted ops
# --------------------------------------------------------------------------

# TFLite's documented domain of the int64 MultiplyByQuantizedMultiplier (TFLITE_DCHECKs).
MBQM64_ACC_LIMIT = 2**47
MBQM64_SHIFT_MIN = -31
MBQM64_SHIFT_MAX = 7
REDUCED_MULTIPLIER_CAP = 0x7FFF


def reduced_multiplier(multiplier: npt.ArrayLike) -> IntArray:
    """The 16-bit multiplier of the int64 overload: ``(m + 2**15) >> 16``, capped at ``0x7FFF``.

    TFLite caps every ``m >= 0x7FFF0000`` (where ``m + 2**15`` could overflow
    int32); the rounded value there is ``0x7FFF`` anyway.
    """
    m = np.asarray(multiplier, dtype=np.int64)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, REDUCED_MULTIPLIER_CAP).astype(np.int64)


def multiply_by_quantized_multiplier_int64(
    acc: npt.ArrayLike, multiplier: npt.ArrayLike, shift: npt.ArrayLike
) -> IntArray:
    """TFLite's ``MultiplyByQuantizedMultiplier(int64_t x, int32_t m, int shift)``.

    ``(acc * reduced + 2**(14 - shift)) >> (15 - shift)`` with
    ``reduced = reduced_multiplier(m)`` and an arithmetic (flooring) shift:
    one rounding, halves toward +infinity. The int64 result is truncated to
    int32 (two's-complement wrap, as the C++ implicit conversion does); it is
    not saturated. ``multiplier`` and ``shift`` broadcast against ``acc``
    (per-channel arrays along the last axis). Returns int64 holding int32.

    Raises ``ValueError`` outside TFLite's documented domain (its DCHECKs):
    ``multiplier >= 0`` (int32), ``-31 <= shift < 8``, ``-2**47 <= acc < 2**47``;
    there ``acc * reduced`` stays below ``2**62``, so no int64 overflows.

    TFLM's 16x8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D requantise
    their int64 accumulators (an int64 bias or none) with it; an int32 bias
    selects the int32 double-rounding :func:`multiply_by_quantized_multiplier`.
    ``backends/c/runtime/requant.c`` mirrors it as ``nn_mbqm64``.
    """
    x = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if m.size and (m.min() < 0 or m.max() > 2**31 - 1):
        raise ValueError("multiplier outside [0, 2**31)")
    if s.size and (s.min() < MBQM64_SHIFT_MIN or s.max() > MBQM64_SHIFT_MAX):
        raise ValueError(f"shift outside [{MBQM64_SHIFT_MIN}, {MBQM64_SHIFT_MAX}]")
    if x.size and (x.min() < -MBQM64_ACC_LIMIT or x.max() >= MBQM64_ACC_LIMIT):
        raise ValueError("accumulator outside [-2**47, 2**47)")
    total_shift = 15 - s
    rounding = np.left_shift(np.int64(1), total_shift - 1)
    result = (x * reduced_multiplier(m) + rounding) >> total_shift
    return wrap_int32(result)
