"""TensorFlow Lite Micro's TANH, LOGISTIC, HARD_SWISH and LEAKY_RELU (int8, and int16 of the 16x8 scheme), bit-exact.

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
  (:func:`leaky_relu_s16`) is the same code on int16
  data: the private :func:`_leaky_relu_params` and :func:`_leaky_relu`,
  parametrised by the storage type, serve both widths.

TANH and LOGISTIC ignore the output tensor's scale: their kernels always write
``round(tanh(x) * 128)`` (scale 1/128, zero point 0) and
``round(sigmoid(x) * 256) - 128`` (scale 1/256, zero point -128). TFLM checks
only LOGISTIC's output zero point; the parameter functions here reject any
other output quantisation, under which TFLM's integers would mean something
else. ``backends/c/runtime/activations.c`` mirrors the kernels.

The int16 kernels (16x8 scheme, zero point 0):

* TANH: ``reference_integer_ops::Tanh`` (int16 overload), prepared by
  ``CalculateArithmeticOpData`` (``tanh.cc``). No gemmlowp: the input is
  rescaled to units of 1/(3 * 4096) (an integer multiplier and a rounding
  right shift, or, for input scales 2**-12 and 2**-11 to within 1e-3 in log2,
  the power-of-two shortcut ``input_multiplier == 0``) and interpolated in
  TFLite's fixed 256-entry ``sigmoid_table_uint16`` via
  ``tanh(x) = 2 sigmoid(2x) - 1``. Input and output zero points must be 0
  and the output scale 2**-15 (checked by TFLM with ``CheckedLog2``); outputs
  lie in [-32767, 32767].
* LOGISTIC: ``reference_integer_ops::Logistic`` (int16 overload), prepared by
  ``CalculateArithmeticOpDataLogistic`` (``logistic_common.cc``); the same
  rescale (the power-of-two shortcut only for input scale 2**-12) and table.
  Output scale 2**-15, zero point 0; outputs lie in [1, 32767]: the most
  negative inputs give 1, never 0.
* LEAKY_RELU: ``QuantizeLeakyRelu<int16_t>``, see above. The pinned TFLM
  computes the two multipliers from *double* quotients, as
  :func:`leaky_relu_s8_params` does.

HARD_SWISH has no int16 kernel in TFLM (its Eval takes float32 and int8 only),
and the TF 2.21 converter refuses it in 16x8 mode, so there is none here.
``backends/c/runtime/activations.c`` mirrors the int16 TANH and LOGISTIC,
and the int16 LEAKY_RELU.
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
    S16_FUNCTION_OUTPUT_SCALE,
    S16_FUNCTION_OUTPUT_ZERO_POINT,
    ArrayLike,
    IntArray,
    Rounding,
    Storage,
    checked_log2,
    checked_zero_point,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    stored_values,
    wrap_int16,
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


# --------------------------------------------------------------------------
# int16 LEAKY_RELU
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LeakyReluS16Params(_LeakyReluParams):
    """TFLM ``LeakyReluOpData`` (int16); the fields of :class:`~nndsl.qmath.activations.LeakyReluS8Params`.

    The field order is the C argument order of ``nn_leaky_relu_s16`` after ``size``.
    """


def leaky_relu_s16_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int, alpha: float
) -> LeakyReluS16Params:
    """TFLM's ``CalculateOpDataLeakyRelu`` (int16; the same code as for int8).

    In double: ``double(in_scale) * double(alpha) / double(out_scale)`` and
    ``double(in_scale) / double(out_scale)`` (``alpha`` is a float32 option),
    split by ``QuantizeMultiplier``, as
    :func:`~nndsl.qmath.activations.leaky_relu_s8_params`, with int16 zero
    points. A negative ``alpha`` gives a negative multiplier, as in TFLM.
    Shifts above 30 (ratios of 2**30 and up), where TFLM's ``1 << shift`` is
    undefined, raise ``ValueError``.
    """
    return _leaky_relu_params(
        LeakyReluS16Params, np.int16, input_scale, input_zero_point, output_scale, output_zero_point, alpha
    )


def leaky_relu_s16(x: npt.ArrayLike, params: LeakyReluS16Params) -> npt.NDArray[np.int16]:
    """TFLite's ``reference_ops::QuantizeLeakyRelu<int16_t>``, element-wise over ``x``.

    :func:`~nndsl.qmath.activations.leaky_relu_s8`'s arithmetic: inputs at or
    above the zero point rescaled by the identity multiplier, those below by
    the alpha multiplier, plus the output zero point, clamped to int16. With
    int16 inputs a large left shift can leave int32 (``x * 2**shift``); it
    wraps like the C mirror.
    """
    return _leaky_relu(x, params, np.int16, "leaky_relu_s16")


# --------------------------------------------------------------------------
# int16 TANH and LOGISTIC: TFLite's sigmoid table
# --------------------------------------------------------------------------


# TANH and LOGISTIC: the input is rescaled to units of 1/(3 * 4096), an integer
# multiplier over a right shift. TFLM's TFLITE_DCHECK_LE wants multipliers <= 32767;
# release builds (the pip tflite-micro among them) compile it out and run larger
# ones, whose int32 products cannot overflow up to 65535.
SIGMOID_DCHECK_MULTIPLIER = 32767
SIGMOID_MAX_MULTIPLIER = 65535
SIGMOID_MAX_LEFT_SHIFT = 31
SIGMOID_OUTPUT_FRACTIONAL_BITS = 15

# TFLite's sigmoid_table_uint16 (kernels/internal/common.h): sigmoid(i / 24) in
# Q0.16, i = 0..255, saturated at 65535. It is a fixed constant of TFLite, not
# computable by plain rounding (entries differ from round(65536 * sigmoid(i/24))
# by one in places), so it is reproduced as data. tanh uses it through
# tanh(x) = 2 * sigmoid(2x) - 1.
SIGMOID_TABLE_UINT16: tuple[int, ...] = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)  # fmt: skip
_SIGMOID_TABLE = np.array(SIGMOID_TABLE_UINT16, dtype=np.int64)


def _check_output(op: str, scale: float, zero_point: int) -> None:
    """TANH and LOGISTIC's Prepare: output zero point 0 and ``CheckedLog2(scale)`` giving -15."""
    is_pot, log2_rounded = checked_log2(scale)
    if zero_point != S16_FUNCTION_OUTPUT_ZERO_POINT or not is_pot or log2_rounded != -SIGMOID_OUTPUT_FRACTIONAL_BITS:
        raise ValueError(
            f"{op} int16 output must have scale 2**-15 (to within 1e-3 in log2) and zero point 0, "
            f"got {scale!r} and {zero_point}; TFLM's Prepare fails"
        )


@dataclass(frozen=True)
class TanhS16Params:
    """TFLM tanh ``OpData`` (int16 fields): ``input_multiplier`` and ``input_left_shift``.

    ``input_multiplier == 0`` is the power-of-two case: the kernel uses
    ``3 << input_left_shift`` and no shift. Otherwise the multiplier (at most
    32767, or up to 65535 with shift 0 for input scales above about 2.67) is
    applied before a rounding right shift by ``input_left_shift`` (despite its
    name), in [0, 31].
    """

    input_multiplier: int
    input_left_shift: int


@dataclass(frozen=True)
class LogisticS16Params:
    """TFLM ``OpDataLogistic`` (int16 fields): the same two as :class:`TanhS16Params`."""

    input_multiplier: int
    input_left_shift: int


def _sigmoid_input_params(op: str, input_scale: float, pot_shifts: tuple[int, ...]) -> tuple[int, int]:
    """The int16 branch shared by TFLM's tanh and logistic Prepare: ``(input_multiplier, input_left_shift)``.

    ``CheckedLog2(input_scale)``: a power of two giving ``12 + log2`` in
    ``pot_shifts`` takes the shortcut (multiplier 0). Otherwise
    ``double(input_scale) * 4096.0 * 3.0`` is doubled, counting, while it is
    at most 32767 / 2 and the count at most 30, then truncated to an integer.
    Multipliers above 32767 (input scales above 32767 / 12288, about 2.67, with
    shift 0) fail TFLM's ``TFLITE_DCHECK_LE`` in debug builds only; release
    builds compute them exactly up to 65535 (input scales below about 5.33),
    and so does this module. Beyond that TFLM's int32 product overflows: raise.
    """
    scale = float32_scale("input_scale", input_scale)
    is_pot, log2_rounded = checked_log2(float(scale))
    pot_shift = (15 - 3) + log2_rounded
    if is_pot and pot_shift in pot_shifts:
        return 0, pot_shift
    multiplier = float(scale) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    if multiplier > SIGMOID_MAX_MULTIPLIER:
        raise ValueError(
            f"{op} int16: input scale {input_scale!r} gives input multiplier {multiplier} > "
            f"{SIGMOID_MAX_MULTIPLIER}: TFLM's int32 product of the input and the multiplier overflows"
        )
    return int(multiplier), shift


def _check_input_zero_point(op: str, zero_point: int) -> None:
    if zero_point != 0:
        raise ValueError(f"{op} int16 input must have zero point 0, got {zero_point}; TFLM's Prepare fails")


def tanh_s16_params(
    input_scale: float,
    input_zero_point: int = 0,
    output_scale: float = S16_FUNCTION_OUTPUT_SCALE,
    output_zero_point: int = S16_FUNCTION_OUTPUT_ZERO_POINT,
) -> TanhS16Params:
    """TFLM's ``CalculateArithmeticOpData`` for int16 TANH (``tanh.cc``).

    Zero points must be 0 and the output scale 2**-15 (``CheckedLog2``, so
    within 1e-3 in log2; the kernel writes the same integers regardless).
    Input scales 2**-12 and 2**-11 take the power-of-two shortcut.
    """
    _check_input_zero_point("TANH", input_zero_point)
    _check_output("TANH", output_scale, output_zero_point)
    multiplier, shift = _sigmoid_input_params("TANH", input_scale, (0, 1))
    return TanhS16Params(input_multiplier=multiplier, input_left_shift=shift)


def logistic_s16_params(
    input_scale: float,
    input_zero_point: int = 0,
    output_scale: float = S16_FUNCTION_OUTPUT_SCALE,
    output_zero_point: int = S16_FUNCTION_OUTPUT_ZERO_POINT,
) -> LogisticS16Params:
    """TFLM's ``CalculateArithmeticOpDataLogistic`` for int16 (``logistic_common.cc``).

    As :func:`tanh_s16_params`, but only input scale 2**-12 takes the
    power-of-two shortcut.
    """
    _check_input_zero_point("LOGISTIC", input_zero_point)
    _check_output("LOGISTIC", output_scale, output_zero_point)
    multiplier, shift = _sigmoid_input_params("LOGISTIC", input_scale, (0,))
    return LogisticS16Params(input_multiplier=multiplier, input_left_shift=shift)


def _sigmoid_table_input(values: IntArray, params: TanhS16Params | LogisticS16Params) -> IntArray:
    """The kernels' input rescale: ``(x * multiplier + round) >> shift``, in units of 1/(3 * 4096).

    The power-of-two case (multiplier 0) uses ``3 << input_left_shift`` and no shift.
    """
    multiplier = params.input_multiplier
    shift = params.input_left_shift
    if not 0 <= shift <= SIGMOID_MAX_LEFT_SHIFT:
        raise ValueError(f"input_left_shift {shift} outside [0, {SIGMOID_MAX_LEFT_SHIFT}]")
    if multiplier == 0:
        multiplier = 3 << shift
        shift = 0
    if not 0 < multiplier <= SIGMOID_MAX_MULTIPLIER:
        raise ValueError(f"input_multiplier {multiplier} outside [1, {SIGMOID_MAX_MULTIPLIER}]")
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    return (values * multiplier + rounding) >> shift


def _interpolate_sigmoid(magnitude: IntArray, fraction_bits: int) -> tuple[BoolArray, IntArray]:
    """``(saturated, (ua << bits) + ut * (ub - ua))``: the table at ``magnitude``, ``bits`` fraction bits."""
    index = magnitude >> fraction_bits
    saturated = index >= 255
    safe = np.minimum(index, 254)
    low = _SIGMOID_TABLE[safe]
    high = _SIGMOID_TABLE[safe + 1]
    fraction = magnitude & ((1 << fraction_bits) - 1)
    return saturated, (low << fraction_bits) + fraction * (high - low)


def tanh_s16(x: npt.ArrayLike, params: TanhS16Params) -> npt.NDArray[np.int16]:
    """TFLM's ``reference_integer_ops::Tanh`` (int16 overload), element-wise over ``x``.

    The rescaled magnitude indexes the sigmoid table with 8 fraction bits
    (table step 1/48 on the input, i.e. 1/24 on ``2x``), interpolated in
    Q0.24; index 255 and up saturate. ``2 sigmoid - 1`` with rounding
    constants, then ``>> 8`` to Q0.15: outputs in [-32767, 32767], odd
    around 0 up to the rounding constants. Output scale 2**-15, zero point 0.
    """
    values = stored_values(x, "tanh_s16 input", np.int16)
    input_data = _sigmoid_table_input(values, params)
    saturated, interpolated = _interpolate_sigmoid(np.abs(input_data), 8)
    result = np.where(saturated, 0xFFFF << 8, interpolated)
    result = np.where(
        input_data >= 0,
        result - (1 << (14 + 9)) + (1 << (9 - 2)),
        -result + (1 << (14 + 9)) + (1 << (9 - 2)) - 1,
    )
    return wrap_int16(result >> (9 - 1)).astype(np.int16).reshape(values.shape)


def logistic_s16(x: npt.ArrayLike, params: LogisticS16Params) -> npt.NDArray[np.int16]:
    """TFLM's ``reference_integer_ops::Logistic`` (int16 overload), element-wise over ``x``.

    The rescaled magnitude indexes the sigmoid table with 9 fraction bits
    (table step 1/24), interpolated in Q0.25; index 255 and up saturate to
    ``0x7FFF << 10``. Negative inputs take ``1 - sigmoid``; ``>> 10`` with
    rounding to Q0.15. Outputs in [1, 32767] (the table's last entry and the
    saturation value both leave ``1 - sigmoid`` at 1). Output scale 2**-15,
    zero point 0.
    """
    values = stored_values(x, "logistic_s16 input", np.int16)
    input_data = _sigmoid_table_input(values, params)
    saturated, interpolated = _interpolate_sigmoid(np.abs(input_data), 9)
    result = np.where(saturated, 0x7FFF << 10, interpolated)
    result = np.where(input_data >= 0, result + (1 << 9), (1 << (16 + 9)) - result + (1 << 9) - 1)
    return wrap_int16(result >> 10).astype(np.int16).reshape(values.shape)
