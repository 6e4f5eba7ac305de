"""TensorFlow Lite Micro's int8 and int16 SOFTMAX, bit-exact.

int8: the reference kernel (``tflite::reference_ops::Softmax<int8_t, int8_t>``,
default double-rounding build) with its preparation step
(``CalculateSoftmaxParams``: ``PreprocessSoftmaxScaling`` and
``CalculateInputRadius``). The output is fixed by TFLM to scale 1/256 and zero
point -128. ``backends/c/runtime/softmax.c`` mirrors :func:`softmax_s8`.

int16 (the 16x8 scheme): ``reference_ops::SoftmaxInt16``
(``reference/softmax.h``), prepared by ``SoftmaxPrepare`` /
``CalculateSoftmaxParams`` (``softmax_common.cc``). No gemmlowp here: two
513-entry int16 lookup tables with linear interpolation (``LUTLookup``),
``exp`` on [-10, 0] and ``1 / (1 + x)`` on [0, 1], which TFLM fills at Prepare
with ``LUTPopulate<int16_t>`` in float32 (:func:`lut_populate_int16`). They do
not depend on the model; they are parameters so that the C code generator
emits them as const arrays. The output is fixed to scale 1/32768, zero point 0
(TFLM checks the zero point and the scale to within 0.1 %); outputs lie in
[0, 32767]. ``backends/c/runtime/softmax.c`` mirrors :func:`softmax_s16`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.fixedpoint import (
    count_leading_zeros,
    exp_on_negative_values,
    fixed_mul,
    get_reciprocal,
    rescale,
)
from nndsl.qmath.requant import (
    INT8_MAX,
    INT8_MIN,
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    S16_FUNCTION_OUTPUT_SCALE,
    S16_FUNCTION_OUTPUT_ZERO_POINT,
    IntArray,
    Rounding,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    quantize_multiplier_greater_than_one,
    round_float32,
    rounding_divide_by_pot,
    stored_values,
    wrap_int16,
    wrap_int32,
)

# Q5.26 for the scaled input differences, Q12.19 for the sum of exponentials.
SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128
# A row with at least this many entries can have a sum of exponentials >= 2**28,
# whose output shift (32 or more) fails TFLM's TFLITE_CHECK; shorter rows never do.
MAX_SAFE_DEPTH = 511


@dataclass(frozen=True)
class SoftmaxS8Params:
    """``SoftmaxParams`` fields of the int8 path: ``input_multiplier``, ``input_left_shift``, ``diff_min``."""

    multiplier: int
    left_shift: int
    diff_min: int


def preprocess_softmax_scaling(
    beta: float, input_scale: float, input_integer_bits: int, rounding: Rounding = Rounding.DOUBLE
) -> tuple[int, int]:
    """TFLite's ``PreprocessSoftmaxScaling``: ``(multiplier, left_shift)``.

    ``beta * input_scale * 2**(31 - input_integer_bits)`` in double, capped at
    ``2**31 - 1`` (``2**30 - 1`` under single rounding, whose multiply takes
    left shifts up to 30 only), split by ``QuantizeMultiplierGreaterThanOne``.
    """
    max_real_multiplier = float((1 << 30) - 1) if rounding is Rounding.SINGLE else float((1 << 31) - 1)
    real_multiplier = min(beta * input_scale * float(1 << (31 - input_integer_bits)), max_real_multiplier)
    return quantize_multiplier_greater_than_one(real_multiplier, rounding)


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """TFLite's ``CalculateInputRadius``: the largest input difference whose rescaled value still fits."""
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * float(1 << (total_signed_bits - input_integer_bits))
        / float(1 << input_left_shift)
    )
    return math.floor(max_input_rescaled)


def softmax_s8_params(
    input_scale: float, beta: float = 1.0, rounding: Rounding = Rounding.DOUBLE
) -> SoftmaxS8Params:
    """TFLM's ``CalculateSoftmaxParams`` for int8 input and int8 output.

    TFLite stores ``input_scale`` as float32 and ``beta`` as float32 in
    ``TfLiteSoftmaxParams``: both are rounded to float32 here (a no-op for a
    scale read from a model) and widened to double before the arithmetic, as
    TFLM does.
    """
    scale32 = float(np.float32(input_scale))
    beta32 = float(np.float32(beta))
    multiplier, left_shift = preprocess_softmax_scaling(beta32, scale32, SCALED_DIFF_INTEGER_BITS, rounding)
    # TFLM computes -1.0 * radius in double and stores it in an int.
    diff_min = int(-1.0 * calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift))
    return SoftmaxS8Params(multiplier=multiplier, left_shift=left_shift, diff_min=diff_min)


def softmax_s8_exp_table(params: SoftmaxS8Params, rounding: Rounding = Rounding.DOUBLE) -> tuple[int, ...]:
    """The exponential :func:`softmax_s8` takes of each difference from the row maximum it keeps.

    Entry ``k`` is ``exp_in_0`` for ``input_diff = -k``, for ``k`` from 0 to ``-diff_min`` (at most 255:
    int8 differences go no further). The exponential depends on nothing else, so a C kernel can look it
    up instead of evaluating the fixed-point polynomial and barrel shifter.
    """
    diffs = -np.arange(min(-params.diff_min, INT8_MAX - INT8_MIN) + 1, dtype=np.int64)
    rescaled = multiply_by_quantized_multiplier(diffs, params.multiplier, params.left_shift, rounding)
    return tuple(int(v) for v in exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS))


def softmax_s8(
    x: npt.ArrayLike, params: SoftmaxS8Params, rounding: Rounding = Rounding.DOUBLE
) -> npt.NDArray[np.int8]:
    """TFLM's int8 softmax over the last axis of ``x`` (int8 values, shape ``(..., depth)``).

    Differences from the row maximum below ``diff_min`` give -128 outright;
    the others are rescaled to Q5.26, exponentiated, summed in Q12.19 and
    multiplied by the reciprocal of the sum. Raises ``ValueError`` where TFLM's
    ``TFLITE_CHECK`` on the output shift would abort (a sum of exponentials of
    at least 2**28, which needs ``depth > MAX_SAFE_DEPTH``).
    """
    values = np.asarray(x)
    if values.ndim == 0:
        raise ValueError("softmax needs at least one dimension")
    if values.size and (values.min() < INT8_MIN or values.max() > INT8_MAX):
        raise ValueError("softmax_s8 input is not int8")
    depth = values.shape[-1]
    if values.size == 0:
        return np.zeros(values.shape, dtype=np.int8)
    rows = values.astype(np.int64).reshape(-1, depth)

    max_in_row = rows.max(axis=1, keepdims=True)
    input_diff = rows - max_in_row
    in_range = input_diff >= params.diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne: left shift, then high multiply.
    input_diff_rescaled = multiply_by_quantized_multiplier(
        input_diff, params.multiplier, params.left_shift, rounding
    )
    exp_in_0 = exp_on_negative_values(input_diff_rescaled, SCALED_DIFF_INTEGER_BITS)
    exp_in_accum = rescale(exp_in_0, 0, ACCUMULATION_INTEGER_BITS)
    sum_of_exps = wrap_int32(np.where(in_range, exp_in_accum, 0).sum(axis=1, keepdims=True))

    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError(
            "sum of exponentials too large: TFLM aborts (TFLITE_CHECK on the output shift) "
            f"for this row; rows of depth <= {MAX_SAFE_DEPTH} never reach it"
        )
    unsat_output = rounding_divide_by_pot(fixed_mul(shifted_scale, exp_in_0), exponent)
    shifted_output = unsat_output + INT8_MIN
    output = np.where(in_range, np.clip(shifted_output, INT8_MIN, INT8_MAX), INT8_MIN)
    return output.astype(np.int8).reshape(values.shape)


# --------------------------------------------------------------------------
# int16 SOFTMAX: constants and TFLite's LUTPopulate/LUTLookup
# --------------------------------------------------------------------------


# LUTSize<int16_t>(): 512 interpolation intervals plus the end point.
LUT_SIZE = 513
# SoftmaxInt16's exp table covers input differences of [-10, 0] on [-65535, 0].
SOFTMAX_EXP_RANGE = 10.0
# The softmax input rescale left-shifts differences down to -65535: from a
# left shift of 16 on, TFLM's int32 product can overflow (undefined behaviour).
SOFTMAX_MAX_LEFT_SHIFT = 15
# The int32 sum of at most this many exponentials cannot overflow: with the
# standard exp table the largest exponential, LUTLookup(32767), is 32762.
SOFTMAX_MAX_SAFE_DEPTH = INT32_MAX // 32762

Float32Function = Callable[[np.float32], np.float32]


def exp_float32(x: np.float32) -> np.float32:
    """``std::exp`` of a float: the double exponential rounded to float32.

    That is the correctly rounded ``expf``, which glibc's ``expf`` (error below
    0.502 ulp) returns for all but the rarest inputs; none of the table's.
    """
    return np.float32(math.exp(float(x)))


def lut_populate_int16(
    transform: Float32Function, input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
) -> tuple[int, ...]:
    """TFLite's ``LUTPopulate<int16_t>`` (``detail::LUTPopulateInt16<float>``), in float32 throughout.

    The int16 input range is cut into 512 steps; entry ``i`` is the transform
    at the step's start, rounded onto the output scale and biased by half the
    rounded error of linear interpolation at the step's midpoint; entry 512 is
    the transform at the range's end. Every operation is the C++'s float
    operation, in the C++'s order (no fused multiply-add).
    """
    f32 = np.float32
    in_scale = f32(input_scale)
    out_scale = f32(output_scale)
    input_min = f32(in_scale * f32(INT16_MIN - input_zero_point))
    input_max = f32(in_scale * f32(INT16_MAX - input_zero_point))
    output_min = f32(out_scale * f32(INT16_MIN - output_zero_point))
    output_max = f32(out_scale * f32(INT16_MAX - output_zero_point))
    nb_steps = LUT_SIZE - 1
    step = f32(f32(input_max - input_min) / f32(nb_steps))
    half_step = f32(step / f32(2))
    output_scaling_inv = f32(f32(INT16_MAX - INT16_MIN + 1) / f32(output_max - output_min))
    table_min = f32(INT16_MIN)
    table_max = f32(INT16_MAX)

    lut: list[int] = []
    for i in range(nb_steps):
        start = f32(input_min + f32(f32(i) * step))
        val = transform(start)
        val_midpoint = transform(f32(start + half_step))
        val_next = transform(f32(input_min + f32(f32(i + 1) * step)))

        sample_val = round_float32(f32(val * output_scaling_inv))
        midpoint_interp_val = round_float32(
            f32(f32(f32(val_next * output_scaling_inv) + round_float32(f32(val * output_scaling_inv))) / f32(2))
        )
        midpoint_val = round_float32(f32(val_midpoint * output_scaling_inv))
        midpoint_err = f32(midpoint_interp_val - midpoint_val)
        bias = round_float32(f32(midpoint_err / f32(2)))
        lut.append(int(min(max(f32(sample_val - bias), table_min), table_max)))

    last = round_float32(f32(transform(input_max) * output_scaling_inv))
    lut.append(int(min(max(last, table_min), table_max)))
    return tuple(lut)


def lut_lookup(value: npt.ArrayLike, lut: npt.ArrayLike) -> IntArray:
    """TFLite's ``LUTLookup(int16_t, const int16_t*)``: interpolated int16 table lookup.

    The top 9 bits of the int16 value (offset by 256) index the table, the low
    7 bits interpolate towards the next entry, rounding ``slope * offset / 128``
    half up (an arithmetic shift); the sum is narrowed to int16.
    """
    v = np.asarray(value, dtype=np.int64)
    table = np.asarray(lut, dtype=np.int64)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    base = table[index]
    slope = table[index + 1] - base
    delta = (slope * offset + 64) >> 7
    return wrap_int16(base + delta)


# --------------------------------------------------------------------------
# int16 SOFTMAX
# --------------------------------------------------------------------------


def _exp_transform(value: np.float32) -> np.float32:
    return exp_float32(value)


def _one_over_one_plus_x_transform(value: np.float32) -> np.float32:
    return np.float32(np.float32(1.0) / np.float32(np.float32(1.0) + value))


@functools.cache
def softmax_exp_lut() -> tuple[int, ...]:
    """SoftmaxPrepare's exp table: ``LUTPopulate<int16_t>(10/65535, 32767, 2/65535, 0, exp)``.

    Inputs -65535..0 (int16 -32768..32767 with zero point 32767) at scale
    10/65535, i.e. [-10, 0]; outputs at scale 2/65535 (so 1.0 is about 32768,
    saturated to 32767). The scales are float32 quotients ``10.0f / range``.
    """
    full_range = np.float32(INT16_MAX - INT16_MIN)
    return lut_populate_int16(
        _exp_transform,
        float(np.float32(np.float32(SOFTMAX_EXP_RANGE) / full_range)),
        INT16_MAX,
        float(np.float32(np.float32(2.0) / full_range)),
        0,
    )


@functools.cache
def softmax_one_over_one_plus_x_lut() -> tuple[int, ...]:
    """SoftmaxPrepare's reciprocal table: ``LUTPopulate<int16_t>(1/65535, -32768, 2/65535, 0, 1/(1+x))``.

    Inputs [0, 1] on int16 -32768..32767, outputs at scale 2/65535.
    """
    full_range = np.float32(INT16_MAX - INT16_MIN)
    return lut_populate_int16(
        _one_over_one_plus_x_transform,
        float(np.float32(np.float32(1.0) / full_range)),
        INT16_MIN,
        float(np.float32(np.float32(2.0) / full_range)),
        0,
    )


@dataclass(frozen=True)
class SoftmaxS16Params:
    """TFLM ``SoftmaxParams`` fields of the int16 path: the input multiplier and shift, and the two tables.

    ``input_left_shift`` is ``QuantizeMultiplier``'s signed shift (positive:
    left). The tables have :data:`LUT_SIZE` int16 entries each.
    """

    input_multiplier: int
    input_left_shift: int
    exp_lut: tuple[int, ...]
    one_over_one_plus_x_lut: tuple[int, ...]


def softmax_s16_params(
    input_scale: float,
    beta: float = 1.0,
    *,
    output_scale: float = S16_FUNCTION_OUTPUT_SCALE,
    output_zero_point: int = S16_FUNCTION_OUTPUT_ZERO_POINT,
) -> SoftmaxS16Params:
    """TFLM's ``SoftmaxPrepare`` / ``CalculateSoftmaxParams`` for int16 input and output.

    ``QuantizeMultiplier(double(input_scale) * double(beta) / (10.0 / 65535.0))``:
    an input difference of ``-10 / (input_scale * beta)`` maps to -65535 (exp
    table's -10). The scale and beta are float32 in the model. The output must
    be zero point 0 and scale 1/32768 to within ``0.001 / 32768`` (TFLM's
    ``TF_LITE_ENSURE_NEAR`` in float); the input zero point is not used (a
    softmax does not depend on it). Raises ``ValueError`` where Prepare fails,
    for a non-positive beta, and for a left shift above 15 (input scale times
    beta of about 5 and up), where TFLM's int32 rescale of the largest
    differences overflows.
    """
    scale32 = float32_scale("input_scale", input_scale)
    beta32 = np.float32(beta)
    if not (np.isfinite(beta32) and beta32 > 0):
        raise ValueError(f"softmax beta {beta!r} is not a positive finite float32")
    out_scale = float32_scale("output_scale", output_scale)
    want = np.float32(1.0) / np.float32(32768.0)
    delta = out_scale - want if out_scale > want else want - out_scale
    epsilon = np.float32(np.float32(np.float32(0.001) * np.float32(1.0)) / np.float32(32768.0))
    if output_zero_point != S16_FUNCTION_OUTPUT_ZERO_POINT or delta > epsilon:
        raise ValueError(
            f"SOFTMAX int16 output must have scale 1/32768 (to within 0.1 %) and zero point 0, "
            f"got {output_scale!r} and {output_zero_point}; TFLM's Prepare fails"
        )
    real_multiplier = float(scale32) * float(beta32) / (SOFTMAX_EXP_RANGE / 65535.0)
    multiplier, shift = quantize_multiplier(real_multiplier)
    if shift > SOFTMAX_MAX_LEFT_SHIFT:
        raise ValueError(
            f"SOFTMAX int16: input scale {input_scale!r} times beta {beta!r} gives left shift {shift} > "
            f"{SOFTMAX_MAX_LEFT_SHIFT}; TFLM's int32 rescale of the input differences overflows"
        )
    return SoftmaxS16Params(
        input_multiplier=multiplier,
        input_left_shift=shift,
        exp_lut=softmax_exp_lut(),
        one_over_one_plus_x_lut=softmax_one_over_one_plus_x_lut(),
    )


def softmax_s16(x: npt.ArrayLike, params: SoftmaxS16Params) -> npt.NDArray[np.int16]:
    """TFLM's ``reference_ops::SoftmaxInt16`` over the last axis of ``x`` (int16 values, shape ``(..., depth)``).

    Per row: each difference from the row maximum is rescaled
    (``MultiplyByQuantizedMultiplier``), moved up by 32767, clamped to int16
    and looked up in the exp table; the int32 sum of those is normalised
    (``CountLeadingZeros``) to a 17-bit value, moved into the reciprocal
    table's int16 input range and looked up; each exponential times the
    reciprocal is shifted back with rounding (half up) and clamped to
    [0, 32767]. Raises ``ValueError`` where TFLM's arithmetic leaves the int32
    range (a sum of exponentials of 2**31 or more, which needs a depth above
    :data:`SOFTMAX_MAX_SAFE_DEPTH`) or a sum below 2, impossible with the
    tables :func:`softmax_s16_params` makes.
    """
    values = np.asarray(x)
    if values.ndim == 0:
        raise ValueError("softmax needs at least one dimension")
    rows = stored_values(values, "softmax_s16 input", np.int16)
    depth = values.shape[-1]
    if values.size == 0:
        return np.zeros(values.shape, dtype=np.int16)
    rows = rows.reshape(-1, depth)
    exp_lut = np.asarray(params.exp_lut, dtype=np.int64)
    reciprocal_lut = np.asarray(params.one_over_one_plus_x_lut, dtype=np.int64)
    if exp_lut.shape != (LUT_SIZE,) or reciprocal_lut.shape != (LUT_SIZE,):
        raise ValueError(f"softmax_s16 tables must have {LUT_SIZE} entries")

    input_diff = rows - rows.max(axis=1, keepdims=True)
    scaled_diff = multiply_by_quantized_multiplier(input_diff, params.input_multiplier, params.input_left_shift)
    sym_scaled_diff = np.clip(scaled_diff + INT16_MAX, INT16_MIN, INT16_MAX)
    exp_results = lut_lookup(sym_scaled_diff, exp_lut)
    sum_of_exps = exp_results.sum(axis=1, keepdims=True)
    if np.any((sum_of_exps > INT32_MAX) | (sum_of_exps < 2)):
        raise ValueError(
            "softmax_s16: sum of exponentials outside [2, 2**31): TFLM's int32 arithmetic overflows "
            f"(rows of depth <= {SOFTMAX_MAX_SAFE_DEPTH} with the standard tables never reach it)"
        )

    headroom_plus_one = count_leading_zeros(sum_of_exps)
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    # 1/(1 + x) for x = sum - 1 in [0, 1]: shifted_sum in [2**16, 2**17] onto [-32768, 32767].
    sym_shifted_sum = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), INT16_MIN, INT16_MAX)
    reciprocal_scale = lut_lookup(sym_shifted_sum, reciprocal_lut)

    right_shift = 31 - headroom_plus_one
    rounding = np.int64(1) << (right_shift - 1)
    result = (exp_results * reciprocal_scale + rounding) >> right_shift
    output: npt.NDArray[np.int16] = np.clip(result, 0, INT16_MAX).astype(np.int16)
    return output.reshape(values.shape)
