"""TensorFlow Lite Micro's int8 SOFTMAX, bit-exact.

The reference kernel (``tflite::reference_ops::Softmax<int8_t, int8_t>``,
default double-rounding build) with its preparation step
(``CalculateSoftmaxParams``: ``PreprocessSoftmaxScaling`` and
``CalculateInputRadius``). The output is fixed by TFLM to scale 1/256 and zero
point -128. ``backends/c/runtime/softmax.c`` mirrors :func:`softmax_s8`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.fixedpoint import exp_on_negative_values, fixed_mul, get_reciprocal, rescale
from nndsl.qmath.requant import (
    INT8_MAX,
    INT8_MIN,
    Rounding,
    multiply_by_quantized_multiplier,
    quantize_multiplier_greater_than_one,
    rounding_divide_by_pot,
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
