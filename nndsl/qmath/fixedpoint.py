"""gemmlowp fixed-point arithmetic, as TensorFlow Lite's softmax uses it.

Every function takes and returns ``int64`` arrays holding int32 values (the
raw integers of gemmlowp's ``FixedPoint<int32_t, IntegerBits>``); the
``IntegerBits`` template parameters become plain ``int`` arguments. Additions
that gemmlowp leaves to C++ (where overflow is undefined) wrap to int32 here,
as ``backends/c/runtime/softmax.c`` does with unsigned arithmetic. The C file
mirrors this module function by function.
"""

from __future__ import annotations

import numpy as np

from nndsl.qmath.requant import (
    INT32_MAX,
    INT32_MIN,
    ArrayLike,
    IntArray,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

# Raw constants of exp_on_negative_values' barrel shifter: for each exponent
# ``e`` the Q0.31 value of ``exp(-2**e)``, applied when bit ``e`` of the
# (positive) integer-and-fraction remainder is set.
EXP_BARREL_SHIFTER: tuple[tuple[int, int], ...] = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)
# Q0.31 exp(-1/8) and 1/3, the Taylor-expansion constants on [-1/4, 0).
EXP_CONSTANT_TERM = 1895147668
EXP_CONSTANT_1_OVER_3 = 715827883
# Q2.29 48/17 and -32/17, the Newton-Raphson start of 1/(1+x).
CONSTANT_48_OVER_17 = 1515870810
CONSTANT_NEG_32_OVER_17 = -1010580540


def _i64(x: ArrayLike) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def fixed_add(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``Add`` (``FixedPoint operator+``): int32 addition, wrapping."""
    return wrap_int32(_i64(a) + _i64(b))


def fixed_sub(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``Sub`` (``FixedPoint operator-``): int32 subtraction, wrapping."""
    return wrap_int32(_i64(a) - _i64(b))


def fixed_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """``FixedPoint operator*``: ``SaturatingRoundingDoublingHighMul`` of the raws.

    The result has the sum of the operands' integer bits.
    """
    return saturating_rounding_doubling_high_mul(a, b)


def mask_if_non_zero(a: ArrayLike) -> IntArray:
    """gemmlowp ``MaskIfNonZero``: all ones (-1) where ``a != 0``, else 0."""
    return np.where(_i64(a) != 0, np.int64(-1), np.int64(0))


def mask_if_zero(a: ArrayLike) -> IntArray:
    """gemmlowp ``MaskIfZero``: all ones (-1) where ``a == 0``, else 0."""
    return np.where(_i64(a) == 0, np.int64(-1), np.int64(0))


def mask_if_greater_than(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``MaskIfGreaterThan``: all ones where ``a > b``."""
    return np.where(_i64(a) > _i64(b), np.int64(-1), np.int64(0))


def mask_if_less_than(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``MaskIfLessThan``: all ones where ``a < b``."""
    return np.where(_i64(a) < _i64(b), np.int64(-1), np.int64(0))


def select_using_mask(if_mask: ArrayLike, then_val: ArrayLike, else_val: ArrayLike) -> IntArray:
    """gemmlowp ``SelectUsingMask`` (NEON ``VBSL``): bitwise ``mask ? then : else``."""
    mask = _i64(if_mask)
    return (mask & _i64(then_val)) ^ (~mask & _i64(else_val))


def rounding_half_sum(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``RoundingHalfSum`` (NEON ``VRHADD``): ``(a + b) / 2``, halves away from zero.

    Computed in 64 bits; the division truncates toward zero like C's ``/``.
    """
    total = _i64(a) + _i64(b)
    nudged = total + np.where(total >= 0, 1, -1)
    return np.where(nudged >= 0, nudged >> 1, -((-nudged) >> 1)).astype(np.int64)


def saturating_rounding_multiply_by_pot(x: ArrayLike, exponent: int) -> IntArray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>``: ``x * 2**exponent``.

    A positive exponent is a saturating left shift, a negative one a rounding
    right shift (``RoundingDivideByPOT``), zero is the identity.
    """
    x64 = _i64(x)
    if exponent > 0:
        threshold = (1 << (31 - exponent)) - 1
        positive_mask = mask_if_greater_than(x64, threshold)
        negative_mask = mask_if_less_than(x64, -threshold)
        result = wrap_int32(x64 << exponent)
        result = select_using_mask(positive_mask, INT32_MAX, result)
        return select_using_mask(negative_mask, INT32_MIN, result)
    if exponent < 0:
        return rounding_divide_by_pot(x64, -exponent)
    return x64


def rescale(x: ArrayLike, src_integer_bits: int, dst_integer_bits: int) -> IntArray:
    """gemmlowp ``Rescale<dst>(FixedPoint<int32_t, src>)``: change the Q format, rounding and saturating."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: ArrayLike) -> IntArray:
    """gemmlowp's function of that name: Q0.31 ``exp(a)`` for Q0.31 ``a`` in ``[-1/4, 0)``.

    A fourth-order Taylor expansion around -1/8.
    """
    x = fixed_add(a, 1 << 28)
    x2 = fixed_mul(x, x)
    x3 = fixed_mul(x2, x)
    x4 = fixed_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = saturating_rounding_multiply_by_pot(
        fixed_add(fixed_mul(fixed_add(x4_over_4, x3), EXP_CONSTANT_1_OVER_3), x2), -1
    )
    sum_of_terms = fixed_add(x, x4_over_24_plus_x3_over_6_plus_x2_over_2)
    return fixed_add(EXP_CONSTANT_TERM, fixed_mul(EXP_CONSTANT_TERM, sum_of_terms))


def exp_on_negative_values(a: ArrayLike, integer_bits: int = 5) -> IntArray:
    """gemmlowp ``exp_on_negative_values``: ``FixedPoint<int32_t, integer_bits>`` in, Q0.31 out.

    ``exp(a)`` for ``a <= 0``: the part of ``a`` modulo 1/4 goes through the
    Taylor expansion, the remaining multiples of 1/4 through the barrel shifter
    of ``exp(-2**e)`` constants; ``a == 0`` gives ``One()`` (``INT32_MAX``).
    """
    if not 0 <= integer_bits <= 28:
        raise ValueError(f"integer_bits {integer_bits} outside [0, 28]")
    a64 = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = fixed_sub(a64 & mask, one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = fixed_sub(a_mod_quarter_minus_one_quarter, a64)
    for exponent, multiplier in EXP_BARREL_SHIFTER:
        if integer_bits > exponent:
            shift_amount = fractional_bits + exponent
            result = select_using_mask(
                mask_if_non_zero(remainder & (1 << shift_amount)), fixed_mul(result, multiplier), result
            )
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = select_using_mask(mask_if_less_than(a64, clamp), 0, result)
    return select_using_mask(mask_if_zero(a64), INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> IntArray:
    """gemmlowp's function of that name: Q0.31 ``1 / (1 + a)`` for Q0.31 ``a`` in ``[0, 1)``.

    Three Newton-Raphson steps in Q2.29 on the half denominator.
    """
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = fixed_add(CONSTANT_48_OVER_17, fixed_mul(half_denominator, CONSTANT_NEG_32_OVER_17))
    for _ in range(3):
        half_denominator_times_x = fixed_mul(half_denominator, x)
        one_minus_half_denominator_times_x = fixed_sub(1 << 29, half_denominator_times_x)
        x = fixed_add(x, rescale(fixed_mul(x, one_minus_half_denominator_times_x), 4, 2))
    # ExactMulByPot<-1> turns Q2.29 into Q1.30 without touching the raw value.
    return rescale(x, 1, 0)


def count_leading_zeros(x: ArrayLike) -> IntArray:
    """TensorFlow Lite's ``CountLeadingZeros`` of the values as ``uint32_t``; 32 for zero."""
    value = _i64(x) & 0xFFFFFFFF
    bit_length = np.zeros(value.shape, dtype=np.int64)
    for step in (16, 8, 4, 2, 1):
        high = value >> step
        has_high = high != 0
        bit_length += np.where(has_high, step, 0)
        value = np.where(has_high, high, value)
    bit_length += value != 0
    return np.int64(32) - bit_length


def get_reciprocal(x: ArrayLike, x_integer_digits: int) -> tuple[IntArray, IntArray]:
    """TensorFlow Lite's ``GetReciprocal``: ``(shifted_scale, num_bits_over_unit)``.

    For positive ``x`` in ``FixedPoint<int32_t, x_integer_digits>``,
    ``1/x ~= shifted_scale * 2**-(31 + num_bits_over_unit)``: ``x`` is
    normalised to ``[1, 2)`` and ``one_over_one_plus_x_for_x_in_0_1`` inverts it.
    """
    x_unsigned = _i64(x) & 0xFFFFFFFF
    headroom_plus_one = count_leading_zeros(x_unsigned)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap_int32(((x_unsigned << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    return shifted_scale, num_bits_over_unit.astype(np.int64)
