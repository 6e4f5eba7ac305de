"""TensorFlow Lite Micro's int16 RELU and RELU6 (the 16x8 scheme), bit-exact; no backend calls them.


RELU
    ``ReluEval`` (int16) is ``ReluQuantized<int16_t>``: ``out_zp +
    MultiplyByQuantizedMultiplier(x - in_zp, M, s)`` clamped to
    ``[max(-32768, out_zp), 32767]``. The pinned TFLM's Prepare requires both
    zero points to be 0 (older sources had no int16 RELU at all) and takes
    ``(M, s) = QuantizeMultiplier(double(in_scale) / double(out_scale))``:
    the quotient in double (older sources divided in float32; the pinned
    build's outputs follow the double quotient). So: a rescale, then a clamp
    to ``[0, 32767]``.

RELU6
    Differs from RELU: ``Relu6Quantized<int16_t>`` clamps the raw input to
    ``[in_zp, in_zp + round(6 / in_scale)]`` and ignores the output tensor's
    quantisation altogether (no rescaling), although the 16x8 converter gives
    the RELU6 output its own scale. The result is what TFLM computes, not
    ``relu6`` of the real input at the output scale. Non-zero zero points are
    accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.requant import (
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    activation_range,
    checked_zero_point,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    stored_values,
)

RELU6_REAL_MAX = 6.0


def activation_range_s16(
    activation_min: float | None, activation_max: float | None, scale: float, zero_point: int
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for an int16 output: :func:`~nndsl.qmath.requant.activation_range`
    with the int16 bounds (the same function as for int8)."""
    return activation_range(activation_min, activation_max, scale, zero_point, INT16_MIN, INT16_MAX)


@dataclass(frozen=True)
class ReluS16Params:
    """TFLM ``ReluOpData`` (int16): the rescaling multiplier and shift.

    Prepare insists on zero points 0, so the offsets are 0 and the clamp is
    ``[0, 32767]``. The field order is the C argument order of
    ``nn_relu_s16`` after ``size``.
    """

    multiplier: int
    shift: int


def relu_s16_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
) -> ReluS16Params:
    """TFLM's RELU Prepare for int16 (``ReluPrepare`` -> ``CalculateReluOpData<int16_t>``).

    ``QuantizeMultiplier(double(in_scale) / double(out_scale))``, the
    quotient in double (checked against the pinned TFLM: a float32 quotient
    gives other multipliers, and other outputs, for some scale pairs). The
    clamp is ``[max(-32768, 0 + round(0 / out_scale)), 32767] = [0, 32767]``.
    Raises ``ValueError`` where TFLM's Prepare fails (a zero point other than
    0: ``TF_LITE_ENSURE_EQ`` on both) and where its ``1 << shift`` would be
    undefined (a shift above 30, ratios of 2**30 and up).
    """
    in_scale = float32_scale("input_scale", input_scale)
    out_scale = float32_scale("output_scale", output_scale)
    if input_zero_point != 0 or output_zero_point != 0:
        raise ValueError(
            f"RELU int16: zero points {input_zero_point} and {output_zero_point} must be 0; TFLM's Prepare fails"
        )
    multiplier, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    if shift > 30:
        raise ValueError(f"RELU: multiplier shift {shift} > 30, TFLM's shift is undefined")
    return ReluS16Params(multiplier=multiplier, shift=shift)


def relu_s16(x: npt.ArrayLike, params: ReluS16Params) -> npt.NDArray[np.int16]:
    """TFLM's ``ReluQuantized<int16_t>`` (zero points 0), element-wise over ``x``.

    ``MultiplyByQuantizedMultiplier(x, M, s)`` (double rounding; a left shift
    wraps int32 like the C mirror), clamped to ``[0, 32767]``.
    """
    values = stored_values(x, "relu_s16 input", np.int16)
    scaled = multiply_by_quantized_multiplier(values, params.multiplier, params.shift)
    return np.clip(scaled, 0, INT16_MAX).astype(np.int16)


@dataclass(frozen=True)
class Relu6S16Params:
    """TFLM ``Relu6OpData`` (int16): the clamp bounds in input units (``zero``, ``six``)."""

    lower: int
    upper: int


def relu6_s16_params(input_scale: float, input_zero_point: int) -> Relu6S16Params:
    """TFLM's ``Relu6Prepare`` (int16): ``zero = in_zp``, ``six = FloatToQuantizedType<int16_t>(6, in_scale, in_zp)``.

    ``six`` is ``round(6 / in_scale)`` (float32 quotient, halves away from
    zero) plus the zero point, clamped to int16: the upper bound of
    :func:`activation_range_s16` of ``(0, 6)``. Only the input quantisation
    enters; TFLM never reads the output's. Quotients of 2**31 and more, where
    TFLM's conversion to int32 is undefined, raise ``ValueError``.
    """
    in_scale = float32_scale("input_scale", input_scale)
    zero = checked_zero_point("input_zero_point", input_zero_point, np.int16)
    if round_half_away(float(np.float32(RELU6_REAL_MAX) / in_scale)) + zero > INT32_MAX:
        raise ValueError(f"RELU6: 6 / {input_scale!r} does not fit int32, TFLM's conversion is undefined")
    _, six = activation_range_s16(None, RELU6_REAL_MAX, float(in_scale), zero)
    return Relu6S16Params(lower=zero, upper=six)


def relu6_s16(x: npt.ArrayLike, params: Relu6S16Params) -> npt.NDArray[np.int16]:
    """TFLM's ``Relu6Quantized<int16_t>``: the raw input clamped to ``[lower, upper]``, no rescaling."""
    values = stored_values(x, "relu6_s16 input", np.int16)
    return np.clip(values, params.lower, params.upper).astype(np.int16)

