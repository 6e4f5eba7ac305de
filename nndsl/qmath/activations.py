"""TensorFlow Lite Micro's int8 TANH, LOGISTIC, HARD_SWISH and LEAKY_RELU, bit-exact.

Each op has a frozen parameter dataclass, a ``*_s8_params`` function doing what
the TFLM kernel's Prepare does with the tensors' float32 scales, and a
vectorised kernel mirroring the int8 reference implementation (default
double-rounding build):

* TANH: ``reference_integer_ops::Tanh`` (int8 overload), prepared by
  ``tanh.cc``'s ``CalculateArithmeticOpData``; gemmlowp ``tanh`` on Q4.27.
* LOGISTIC: ``reference_integer_ops::Logistic`` (int8 overload), prepared by
  ``CalculateArithmeticOpDataLogistic``; gemmlowp ``logistic`` on Q4.27.
* HARD_SWISH: ``reference_ops::HardSwish<int8_t>``, prepared by
  ``HardSwishPrepare``; int16 fixed point throughout.
* LEAKY_RELU: ``reference_ops::QuantizeLeakyRelu<int8_t>``, prepared by
  ``CalculateOpDataLeakyRelu``. The int16 LEAKY_RELU
  (:func:`~nndsl.qmath.int16_ops.leaky_relu_s16`) is the same code on int16
  data: the private :func:`_leaky_relu_params` and :func:`_leaky_relu`,
  parametrised by the storage type, serve both widths.

TANH and LOGISTIC ignore the output tensor's scale: their kernels always write
``round(tanh(x) * 128)`` (scale 1/128, zero point 0) and
``round(sigmoid(x) * 256) - 128`` (scale 1/256, zero point -128). TFLM checks
only LOGISTIC's output zero point; the parameter functions here reject any
other output quantisation, under which TFLM's integers would mean something
else. ``backends/c/runtime/activations.c`` mirrors the kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from nndsl.qmath.fixedpoint import (
    CONSTANT_48_OVER_17,
    CONSTANT_NEG_32_OVER_17,
    exp_on_negative_values,
    fixed_add,
    fixed_mul,
    fixed_sub,
    mask_if_greater_than,
    mask_if_less_than,
    mask_if_zero,
    one_over_one_plus_x_for_x_in_0_1,
    rescale,
    rounding_half_sum,
    select_using_mask,
)
from nndsl.qmath.requant import (
    INT8_MAX,
    INT8_MIN,
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    ArrayLike,
    IntArray,
    Rounding,
    Storage,
    checked_zero_point,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    stored_values,
    wrap_int32,
)

BoolArray = npt.NDArray[np.bool_]


# TANH and LOGISTIC: the input is rescaled to gemmlowp Q4.27.
SIGMOID_INPUT_INTEGER_BITS = 4
TANH_OUTPUT_SCALE = 1.0 / 128.0
TANH_OUTPUT_ZERO_POINT = 0
LOGISTIC_OUTPUT_SCALE = 1.0 / 256.0
LOGISTIC_OUTPUT_ZERO_POINT = -128
# HardSwishPrepare's float constants: the hires input scale factor and the
# scale on which the real value 3 is 32768.
HARD_SWISH_HIRES_FACTOR = np.float32(1.0 / 128.0)
HARD_SWISH_RELUISH_SCALE = np.float32(3.0 / 32768.0)


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _i64(x: ArrayLike) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def _clamp(x: IntArray, storage: type[Storage]) -> npt.NDArray[Storage]:
    info = np.iinfo(storage)
    return np.clip(x, info.min, info.max).astype(storage)


def _check_fixed_output(op: str, scale: float, zero_point: int, want_scale: float, want_zero_point: int) -> None:
    if float(np.float32(scale)) != want_scale or zero_point != want_zero_point:
        raise ValueError(
            f"{op} int8 output must have scale {want_scale} and zero point {want_zero_point} "
            f"(the kernel's fixed output quantisation), got {scale!r} and {zero_point}"
        )


# --------------------------------------------------------------------------
# TANH and LOGISTIC
# --------------------------------------------------------------------------


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> IntArray:
    """gemmlowp's function of that name: Q0.31 ``(1 - a) / (1 + a)`` for Q0.31 ``a`` in ``[0, 1)``.

    The Newton-Raphson reciprocal of ``one_over_one_plus_x_for_x_in_0_1``,
    minus one in Q2.29 before the final rescale.
    """
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = fixed_add(CONSTANT_48_OVER_17, fixed_mul(half_denominator, CONSTANT_NEG_32_OVER_17))
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus_half_denominator_times_x = fixed_sub(one_q2, fixed_mul(half_denominator, x))
        x = fixed_add(x, rescale(fixed_mul(x, one_minus_half_denominator_times_x), 4, 2))
    return rescale(fixed_sub(x, one_q2), 2, 0)


def fixed_tanh(a: ArrayLike, integer_bits: int) -> IntArray:
    """gemmlowp ``tanh``: ``FixedPoint<int32_t, integer_bits>`` in, Q0.31 out.

    ``-tanh(-|a|) = (1 - exp(-2|a|)) / (1 + exp(-2|a|))``; doubling is
    ``ExactMulByPot<1>``, one more integer bit on the same raw value.
    """
    a64 = _i64(a)
    negative = mask_if_less_than(a64, 0)
    non_positive = select_using_mask(negative, a64, fixed_sub(0, a64))
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(non_positive, integer_bits + 1))
    signed = select_using_mask(negative, fixed_sub(0, t), t)
    return select_using_mask(mask_if_zero(a64), 0, signed)


def fixed_logistic(a: ArrayLike, integer_bits: int) -> IntArray:
    """gemmlowp ``logistic``: ``FixedPoint<int32_t, integer_bits>`` in, Q0.31 out.

    ``1 / (1 + exp(-|a|))`` for the positive side, ``One() -`` that for the
    negative side, exactly one half at zero.
    """
    a64 = _i64(a)
    positive = mask_if_greater_than(a64, 0)
    magnitude = select_using_mask(positive, a64, fixed_sub(0, a64))
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(fixed_sub(0, magnitude), integer_bits))
    if_negative = fixed_sub(INT32_MAX, if_positive)
    return select_using_mask(mask_if_zero(a64), 1 << 30, select_using_mask(positive, if_positive, if_negative))


@dataclass(frozen=True)
class TanhS8Params:
    """TFLM tanh ``OpData`` (int8 fields): the input zero point, range radius, multiplier and left shift.

    The same under either rounding scheme (``_q4_input_params`` does not call
    ``QuantizeMultiplier``); the kernel's ``MultiplyByQuantizedMultiplier`` differs.
    """

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


@dataclass(frozen=True)
class LogisticS8Params:
    """TFLM ``OpDataLogistic`` (int8): the same four fields as :class:`TanhS8Params`."""

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


def _q4_input_params(input_scale: float) -> tuple[int, int, int]:
    """The int8 branch shared by TFLM's tanh and logistic Prepare: ``(multiplier, left_shift, radius)``.

    ``std::frexp(double(scale) * 2**27)`` gives the multiplier (rounded half
    away, exact for a float32 scale) and the left shift, used as is, not via
    ``QuantizeMultiplier``; ``CalculateInputRadius(4, left_shift, 31)`` is the
    input magnitude from which the output saturates. TFLM shifts by
    ``left_shift`` in a 64-bit integer, undefined outside ``[0, 62]``: scales
    below 2**-28 or at least 2**35 are rejected.
    """
    scale = float(float32_scale("input_scale", input_scale))
    fraction, left_shift = math.frexp(scale * float(1 << (31 - SIGMOID_INPUT_INTEGER_BITS)))
    if not 0 <= left_shift <= 62:
        raise ValueError(f"input_scale {input_scale!r}: input_left_shift {left_shift} outside [0, 62]")
    multiplier = round_half_away(fraction * float(1 << 31))
    # 1.0 * (2**4 - 1) * 2**27 / 2**left_shift, floored: exact in double, so exact here.
    radius = (((1 << SIGMOID_INPUT_INTEGER_BITS) - 1) << (31 - SIGMOID_INPUT_INTEGER_BITS)) >> left_shift
    return multiplier, left_shift, radius


def tanh_s8_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
) -> TanhS8Params:
    """TFLM's ``CalculateArithmeticOpData`` for int8 TANH (``tanh.cc``).

    The output must be scale 1/128, zero point 0 (TFLM does not check; the
    converter always writes that).
    """
    _check_fixed_output("TANH", output_scale, output_zero_point, TANH_OUTPUT_SCALE, TANH_OUTPUT_ZERO_POINT)
    multiplier, left_shift, radius = _q4_input_params(input_scale)
    return TanhS8Params(
        input_zero_point=checked_zero_point("input_zero_point", input_zero_point, np.int8),
        input_range_radius=radius,
        input_multiplier=multiplier,
        input_left_shift=left_shift,
    )


def logistic_s8_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
) -> LogisticS8Params:
    """TFLM's ``CalculateArithmeticOpDataLogistic`` for int8 (``logistic_common.cc``).

    The output must be scale 1/256, zero point -128 (TFLM checks the zero
    point only).
    """
    _check_fixed_output("LOGISTIC", output_scale, output_zero_point, LOGISTIC_OUTPUT_SCALE, LOGISTIC_OUTPUT_ZERO_POINT)
    multiplier, left_shift, radius = _q4_input_params(input_scale)
    return LogisticS8Params(
        input_zero_point=checked_zero_point("input_zero_point", input_zero_point, np.int8),
        input_range_radius=radius,
        input_multiplier=multiplier,
        input_left_shift=left_shift,
    )


def _q4_input(
    values: IntArray, params: TanhS8Params | LogisticS8Params, rounding: Rounding = Rounding.DOUBLE
) -> tuple[BoolArray, BoolArray, IntArray]:
    """``(saturate_low, saturate_high, input_in_q4)``: the radius test, then the rescale where it passes.

    Saturated lanes are rescaled from 0 instead (their result is discarded),
    so that no shift there leaves the int32 range.
    """
    centred = values - params.input_zero_point
    low = centred <= -params.input_range_radius
    high = ~low & (centred >= params.input_range_radius)
    inside = np.where(low | high, 0, centred)
    input_in_q4 = multiply_by_quantized_multiplier(
        inside, params.input_multiplier, params.input_left_shift, rounding
    )
    return low, high, input_in_q4


def tanh_s8(
    x: npt.ArrayLike, params: TanhS8Params, rounding: Rounding = Rounding.DOUBLE
) -> npt.NDArray[np.int8]:
    """TFLM's ``reference_integer_ops::Tanh`` (int8 overload), element-wise over ``x``.

    Inputs at least ``input_range_radius`` from the zero point saturate to
    -128 / 127 (the low test comes first, so with a radius of 0, large input
    scales, the zero point itself gives -128); the others go through gemmlowp
    ``tanh`` in Q4.27 and ``RoundingDivideByPOT(·, 24)``.
    """
    values = stored_values(x, "tanh_s8 input", np.int8)
    low, high, input_in_q4 = _q4_input(values, params, rounding)
    output_in_q0 = fixed_tanh(input_in_q4, SIGMOID_INPUT_INTEGER_BITS)
    output = rounding_divide_by_pot(output_in_q0, 31 - 7)
    output = np.where(low, INT8_MIN, np.where(high, INT8_MAX, output))
    return _clamp(output, np.int8).reshape(values.shape)


def logistic_s8(
    x: npt.ArrayLike, params: LogisticS8Params, rounding: Rounding = Rounding.DOUBLE
) -> npt.NDArray[np.int8]:
    """TFLM's ``reference_integer_ops::Logistic`` (int8 overload), element-wise over ``x``.

    As :func:`tanh_s8`, with gemmlowp ``logistic``, ``RoundingDivideByPOT(·, 23)``
    and the output zero point -128 added before the clamp.
    """
    values = stored_values(x, "logistic_s8 input", np.int8)
    low, high, input_in_q4 = _q4_input(values, params, rounding)
    output_in_q0 = fixed_logistic(input_in_q4, SIGMOID_INPUT_INTEGER_BITS)
    output = rounding_divide_by_pot(output_in_q0, 31 - 8) + LOGISTIC_OUTPUT_ZERO_POINT
    output = np.where(low, INT8_MIN, np.where(high, INT8_MAX, output))
    return _clamp(output, np.int8).reshape(values.shape)


# --------------------------------------------------------------------------
# HARD_SWISH: int16 fixed point
# --------------------------------------------------------------------------


def wrap_int16(x: ArrayLike) -> IntArray:
    """Two's-complement wrap to int16 (the C++ kernel's implicit ``int`` -> ``int16_t`` conversions)."""
    return ((_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def saturating_rounding_doubling_high_mul_i16(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul<int16_t>``: ``round(a*b / 2**15)``, -1 * -1 saturating."""
    a64 = _i64(a)
    b64 = _i64(b)
    product = a64 * b64
    nudged = product + np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    high = np.where(nudged >= 0, nudged >> 15, -((-nudged) >> 15))
    return np.where((a64 == INT16_MIN) & (b64 == INT16_MIN), INT16_MAX, wrap_int16(high))


def saturating_doubling_high_mul_i16(a: ArrayLike, b: ArrayLike) -> IntArray:
    """TFLite's ``SaturatingDoublingHighMul`` (hard_swish.h): ``a*b / 2**15`` truncated toward zero."""
    a64 = _i64(a)
    b64 = _i64(b)
    product = a64 * b64
    high = np.where(product >= 0, product >> 15, -((-product) >> 15))
    return np.where((a64 == INT16_MIN) & (b64 == INT16_MIN), INT16_MAX, wrap_int16(high))


def rounding_divide_by_pot_i16(x: ArrayLike, exponent: int) -> IntArray:
    """gemmlowp ``RoundingDivideByPOT<int16_t>`` for ``exponent`` in ``[0, 31]``.

    The mask ``(1ll << exponent) - 1`` is narrowed to int16: from exponent 16
    on it is -1, so non-negative values give 1 and negative ones -1, which is
    what the C++ computes.
    """
    if not 0 <= exponent <= 31:
        raise ValueError(f"exponent {exponent} outside [0, 31]")
    x64 = _i64(x)
    mask = int(wrap_int16((1 << exponent) - 1))
    remainder = x64 & mask
    threshold = wrap_int16((mask >> 1) + (x64 < 0))
    return wrap_int16((x64 >> exponent) + (remainder > threshold))


def saturating_left_shift_i16(x: ArrayLike, amount: int) -> IntArray:
    """TFLite's ``SaturatingLeftShift`` (hard_swish.h): ``x * 2**amount`` clamped to int16, amount in [0, 30]."""
    if not 0 <= amount <= 30:
        raise ValueError(f"shift {amount} outside [0, 30]")
    # |x| <= 2**15, so beyond 16 only the sign matters: the clamp is the same.
    shifted: IntArray = np.clip(_i64(x) << min(amount, 16), INT16_MIN, INT16_MAX)
    return shifted


def down_scale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLite's ``DownScaleInt32ToInt16Multiplier``: a Q31 multiplier rounded to Q15, capped at 32767."""
    if multiplier < 0:
        raise ValueError(f"multiplier {multiplier} is negative")
    rounding_offset = 1 << 15
    if multiplier >= INT32_MAX - rounding_offset:
        return INT16_MAX
    return (multiplier + rounding_offset) >> 16


@dataclass(frozen=True)
class HardSwishS8Params:
    """TFLite ``HardSwishParams``: zero points, and the Q15 multipliers with their exponents."""

    input_zero_point: int
    output_zero_point: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int


def hard_swish_s8_params(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    rounding: Rounding = Rounding.DOUBLE,
) -> HardSwishS8Params:
    """TFLM's ``HardSwishPrepare`` (int8), float32 arithmetic as in the C++.

    ``hires = input_scale / 128``; the output multiplier ``hires /
    output_scale`` must quantise to an exponent <= 0 (TFLM's
    ``TF_LITE_ENSURE``: roughly ``input_scale < 128 * output_scale``), the
    reluish multiplier is ``hires / (3 / 32768)``. Raises ``ValueError``
    where TFLM fails to prepare, or where its shift would be undefined (a
    reluish exponent above 31, input scales of about 2**23 and up).

    The kernel has no single-rounding variant (its int16 fixed-point helpers
    are the same in every TFLite build); ``rounding`` only reaches
    ``QuantizeMultiplier``, whose single-rounding clamp of exponents above 30
    changes the reluish multiplier of input scales of about 2**22 and up.
    """
    in_scale = float32_scale("input_scale", input_scale)
    out_scale = float32_scale("output_scale", output_scale)
    hires_input_scale = np.float32(HARD_SWISH_HIRES_FACTOR * in_scale)

    output_multiplier, output_exponent = quantize_multiplier(
        float(np.float32(hires_input_scale / out_scale)), rounding
    )
    if output_exponent > 0:
        raise ValueError(
            f"HARD_SWISH: output multiplier exponent {output_exponent} > 0 (input scale {input_scale!r} too large "
            f"for output scale {output_scale!r}); TFLM's HardSwishPrepare fails"
        )
    reluish_multiplier, reluish_exponent = quantize_multiplier(
        float(np.float32(hires_input_scale / HARD_SWISH_RELUISH_SCALE)), rounding
    )
    if reluish_exponent > 31:
        raise ValueError(f"HARD_SWISH: reluish exponent {reluish_exponent} > 31, TFLM's shift is undefined")
    return HardSwishS8Params(
        input_zero_point=checked_zero_point("input_zero_point", input_zero_point, np.int8),
        output_zero_point=checked_zero_point("output_zero_point", output_zero_point, np.int8),
        reluish_multiplier_fixedpoint_int16=down_scale_int32_to_int16_multiplier(reluish_multiplier),
        reluish_multiplier_exponent=reluish_exponent,
        output_multiplier_fixedpoint_int16=down_scale_int32_to_int16_multiplier(output_multiplier),
        output_multiplier_exponent=output_exponent,
    )


def hard_swish_s8(x: npt.ArrayLike, params: HardSwishS8Params) -> npt.NDArray[np.int8]:
    """TFLite's ``reference_ops::HardSwish<int8_t>`` (quantised overload), element-wise over ``x``.

    ``x * relu6(x + 3) / 6`` in int16: the input on a 2**7 finer scale, once
    multiplied onto the (pre-shift) output scale and once rescaled so that 3
    is 32768 ("reluish", saturating) and mapped from [-1, 1] to [0, 1]; their
    truncating doubling high product is shifted to the output scale.
    """
    values = stored_values(x, "hard_swish_s8 input", np.int8)
    exponent = params.reluish_multiplier_exponent
    input_value = wrap_int16(values - params.input_zero_point)
    hires = wrap_int16(input_value * (1 << 7))
    preshift_output_scale = saturating_rounding_doubling_high_mul_i16(hires, params.output_multiplier_fixedpoint_int16)
    reluish = hires
    if exponent > 0:
        reluish = saturating_left_shift_i16(reluish, exponent - 1)
    reluish = saturating_rounding_doubling_high_mul_i16(reluish, params.reluish_multiplier_fixedpoint_int16)
    if exponent > 0:
        reluish = saturating_left_shift_i16(reluish, 1)
    if exponent < 0:
        reluish = rounding_divide_by_pot_i16(reluish, -exponent)
    reluish = (reluish + (1 << 15)) >> 1
    preshift_output = saturating_doubling_high_mul_i16(reluish, preshift_output_scale)
    output = rounding_divide_by_pot_i16(preshift_output, -params.output_multiplier_exponent)
    output = wrap_int16(output + params.output_zero_point)
    return _clamp(output, np.int8).reshape(values.shape)


# --------------------------------------------------------------------------
# LEAKY_RELU
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _LeakyReluParams:
    """TFLM ``LeakyReluOpData``: the fields shared by :class:`LeakyReluS8Params` and ``LeakyReluS16Params``."""

    input_zero_point: int
    output_zero_point: int
    output_multiplier_identity: int
    output_shift_identity: int
    output_multiplier_alpha: int
    output_shift_alpha: int


_Params = TypeVar("_Params", bound=_LeakyReluParams)


@dataclass(frozen=True)
class LeakyReluS8Params(_LeakyReluParams):
    """TFLM ``LeakyReluOpData``: zero points, identity and alpha multipliers with their shifts."""


def _leaky_relu_params(
    params_type: type[_Params],
    storage: type[np.signedinteger[Any]],
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    alpha: float,
) -> _Params:
    """``CalculateOpDataLeakyRelu`` (the same code for int8 and int16), zero points checked against ``storage``."""
    in_scale = float32_scale("input_scale", input_scale)
    out_scale = float32_scale("output_scale", output_scale)
    alpha32 = np.float32(alpha)
    if not np.isfinite(alpha32):
        raise ValueError(f"alpha {alpha!r} is not finite")
    # Single rounding's QuantizeMultiplier differs from this one only by saturating
    # shifts above 30, which are rejected below: one split serves both schemes.
    multiplier_alpha, shift_alpha = quantize_multiplier(float(in_scale) * float(alpha32) / float(out_scale))
    multiplier_identity, shift_identity = quantize_multiplier(float(in_scale) / float(out_scale))
    if max(shift_alpha, shift_identity) > 30:
        raise ValueError(
            f"LEAKY_RELU: multiplier shift {max(shift_alpha, shift_identity)} > 30, TFLM's shift is undefined"
        )
    return params_type(
        input_zero_point=checked_zero_point("input_zero_point", input_zero_point, storage),
        output_zero_point=checked_zero_point("output_zero_point", output_zero_point, storage),
        output_multiplier_identity=multiplier_identity,
        output_shift_identity=shift_identity,
        output_multiplier_alpha=multiplier_alpha,
        output_shift_alpha=shift_alpha,
    )


def leaky_relu_s8_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int, alpha: float
) -> LeakyReluS8Params:
    """TFLM's ``CalculateOpDataLeakyRelu`` (int8).

    ``double(input_scale) * double(alpha) / double(output_scale)`` and
    ``double(input_scale) / double(output_scale)`` (``alpha`` is a float32
    option; the pinned TFLM divides in double, not float32), split by
    ``QuantizeMultiplier``. A negative ``alpha`` gives a negative multiplier,
    as in TFLM. Shifts above 30 (ratios of 2**30 and up), where TFLM's
    ``1 << shift`` is undefined, raise ``ValueError``.
    """
    return _leaky_relu_params(
        LeakyReluS8Params, np.int8, input_scale, input_zero_point, output_scale, output_zero_point, alpha
    )


def _leaky_relu(
    x: npt.ArrayLike,
    params: _LeakyReluParams,
    storage: type[Storage],
    op: str,
    rounding: Rounding = Rounding.DOUBLE,
) -> npt.NDArray[Storage]:
    """``reference_ops::QuantizeLeakyRelu<T>`` for int8 or int16 data (``storage``), element-wise over ``x``.

    Inputs at or above the zero point are rescaled by the identity multiplier,
    those below by the alpha multiplier (``MultiplyByQuantizedMultiplier``,
    double rounding; a left shift wraps int32 like the C mirror); the output
    zero point is added before the clamp to the storage type's range.
    """
    values = stored_values(x, f"{op} input", storage)
    centred = values - params.input_zero_point
    identity = multiply_by_quantized_multiplier(
        centred, params.output_multiplier_identity, params.output_shift_identity, rounding
    )
    scaled_alpha = multiply_by_quantized_multiplier(
        centred, params.output_multiplier_alpha, params.output_shift_alpha, rounding
    )
    # int32 addition, wrapping like the C mirror (out of reach for shifts <= 30 and int8 input).
    output = wrap_int32(params.output_zero_point + np.where(centred >= 0, identity, scaled_alpha))
    return _clamp(output, storage).reshape(values.shape)


def leaky_relu_s8(
    x: npt.ArrayLike, params: LeakyReluS8Params, rounding: Rounding = Rounding.DOUBLE
) -> npt.NDArray[np.int8]:
    """TFLite's ``reference_ops::QuantizeLeakyRelu<int8_t>``, element-wise over ``x``.

    Inputs at or above the zero point are rescaled by the identity multiplier,
    those below by the alpha multiplier (``MultiplyByQuantizedMultiplier``,
    double rounding); the output zero point is added before the clamp.
    """
    return _leaky_relu(x, params, np.int8, "leaky_relu_s8", rounding)
