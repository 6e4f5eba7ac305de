"""TensorFlow Lite Micro's int16 kernels of the 16x8 scheme, bit-exact.

TensorFlow Lite's 16x8 quantisation (``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``)
gives activations int16 tensors with zero point 0. TFLM accepts other int16
zero points for every op here but RELU, and so do the functions below. Each op has a frozen parameter
dataclass (field order = the C argument order), a ``*_params`` function doing
what the TFLM kernel's Prepare does with the tensors' float32 scales, and a
vectorised kernel mirroring the int16 reference implementation (default
double-rounding build). ``backends/c/runtime/int16_ops.c`` mirrors the
kernels.

ADD
    TFLM's ``EvalAddQuantized`` calls ``reference_ops::Add(..., int16_t, ...,
    pot_scale=false)`` for equal shapes, always: the ``pot_scale_int16``
    option of the model (the converter writes false) is never read, so the
    power-of-two path of ``reference_ops::Add`` (gemmlowp ``F0`` saturating
    add of pre-shifted raw values) is dead code in TFLM. ``pot_scale=false``
    is ``AddGeneralParamScale`` -> ``AddElementwise<int16_t>``: the int8
    arithmetic of :func:`~nndsl.qmath.add.add_s8` with ``left_shift = 15``
    (``CalculateOpDataAdd``: 15 for an int16 output, 20 for int8) and int16
    clamp bounds. The parameters come from the same ``CalculateOpDataAdd``.

AVERAGE_POOL_2D
    ``reference_integer_ops::AveragePool`` (int16 overload): exactly the
    arithmetic of :func:`~nndsl.qmath.pooling.avg_pool_s8` (sum of the
    in-bounds taps in an int32, division rounding half away from zero, clamp)
    with int16 data. The int32 accumulator cannot overflow for windows of up
    to 65535 taps; larger windows are rejected.

MAX_POOL_2D
    Needs nothing special: ``reference_integer_ops::MaxPool`` (int16
    overload) takes the maximum of the in-bounds taps and clamps it to the
    fused activation's range, as for int8; there is no arithmetic that
    depends on the width (the NumPy backend's max pooling is dtype-agnostic).
    The fused activation range is :func:`~nndsl.qmath.requant.activation_range`
    with the int16 bounds.

MEAN
    ``EvalMeanHelper`` sends int16 to ``EvalIntegerMean<int16_t>``, that is
    ``reference_ops::QuantizedMeanOrSum<int16_t, int32_t>`` with
    ``compute_sum = false``: the same computation as
    :func:`~nndsl.qmath.pooling.mean_s8` (Prepare's ``QuantizeMultiplier`` of
    ``in_scale / out_scale``, the ``1 / count`` folded in by
    :func:`~nndsl.qmath.pooling.mean_multiplier`, an int32 sum, double
    rounding) with the output clamped to ``[-32768, 32767]``. The int32 sum of
    int16 values can wrap from 65537 positions on (as TFLM's does).

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

LEAKY_RELU
    ``reference_ops::QuantizeLeakyRelu<int16_t>``, prepared by
    ``CalculateOpDataLeakyRelu`` (the same code as for int8): the kernel is
    :func:`~nndsl.qmath.activations.leaky_relu_s8`'s arithmetic with int16
    clamp bounds. The pinned TFLM computes the two multipliers from *double*
    quotients (``double(in) * double(alpha) / double(out)`` and
    ``double(in) / double(out)``), as
    :func:`~nndsl.qmath.activations.leaky_relu_s8_params` does.

Reuse: each arithmetic exists once. ADD, AVERAGE_POOL_2D, MEAN and LEAKY_RELU
call the int8 modules' private generic kernels and parameter functions,
parametrised by the storage type (``np.int8``/``np.int16``, whose bounds and
name they take from ``np.iinfo``): ``_add_params``/``_add``
(:mod:`nndsl.qmath.add`), ``_avg_pool``, ``_mean_params``/``_mean``
(:mod:`nndsl.qmath.pooling`), ``_leaky_relu_params``/``_leaky_relu``
(:mod:`nndsl.qmath.activations`); the parameter dataclasses share their
fields through the private base classes there. What differs between the
widths is passed in: ADD's ``left_shift`` (15 here, 20 for int8) and
AVERAGE_POOL_2D's largest window (65535 taps here, no limit for int8).
:func:`~nndsl.qmath.requant.activation_range` gives the fused activation
ranges and :func:`~nndsl.qmath.pooling.pool_padding` the pads of
:func:`avg_pool_s16` as of ``avg_pool_s8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.activations import _leaky_relu, _leaky_relu_params, _LeakyReluParams
from nndsl.qmath.add import ArithmeticParams, _add, _add_params
from nndsl.qmath.pooling import _avg_pool, _mean, _mean_params, _MeanParams
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

# ``data->left_shift`` of CalculateOpDataAdd for an int16 output (20 for int8).
ADD_S16_LEFT_SHIFT = 15
# The largest window whose int32 sum of int16 values, +- half the count, cannot overflow.
AVG_POOL_S16_MAX_TAPS = 2**16 - 1
RELU6_REAL_MAX = 6.0

__all__ = [
    "ADD_S16_LEFT_SHIFT",
    "INT16_MAX",
    "INT16_MIN",
    "AddS16Params",
    "LeakyReluS16Params",
    "MeanS16Params",
    "Relu6S16Params",
    "ReluS16Params",
    "activation_range_s16",
    "add_s16",
    "add_s16_params",
    "avg_pool_s16",
    "leaky_relu_s16",
    "leaky_relu_s16_params",
    "mean_s16",
    "mean_s16_params",
    "relu6_s16",
    "relu6_s16_params",
    "relu_s16",
    "relu_s16_params",
]


# --------------------------------------------------------------------------
# Fused activation range (the input checks are nndsl.qmath.activations', given np.int16)
# --------------------------------------------------------------------------


def activation_range_s16(
    activation_min: float | None, activation_max: float | None, scale: float, zero_point: int
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for an int16 output: :func:`~nndsl.qmath.requant.activation_range`
    with the int16 bounds (the same function as for int8)."""
    return activation_range(activation_min, activation_max, scale, zero_point, INT16_MIN, INT16_MAX)


# --------------------------------------------------------------------------
# ADD
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AddS16Params(ArithmeticParams):
    """TFLM ``OpDataAdd`` for an int16 output; the fields of :class:`~nndsl.qmath.add.AddS8Params`.

    The field order is the C argument order of ``nn_add_s16`` after ``size``.
    Offsets are the negated input zero points and the output zero point; all
    shifts are ``<= 0`` (right shifts by ``-shift``); ``left_shift`` is 15.
    """


def add_s16_params(scale1: float, zp1: int, scale2: float, zp2: int, out_scale: float, out_zp: int) -> AddS16Params:
    """TFLM's ``CalculateOpDataAdd`` for an int16 output.

    As :func:`~nndsl.qmath.add.add_s8_params` with ``left_shift = 15``: in
    double, from the float32 scales, ``twice_max = 2 * max(scale1, scale2)``,
    input multipliers ``scale_i / twice_max`` and output multiplier
    ``twice_max / (2**15 * out_scale)``, each split by
    ``QuantizeMultiplierSmallerThanOneExp``. Raises ``ValueError`` where
    TFLM's Prepare aborts: an output multiplier of one or more (an output
    scale below about ``2 * max_scale / 2**15``).
    """
    return _add_params(AddS16Params, np.int16, ADD_S16_LEFT_SHIFT, (scale1, scale2, out_scale), (zp1, zp2, out_zp))


def add_s16(
    a: npt.ArrayLike, b: npt.ArrayLike, params: AddS16Params, act_min: int = INT16_MIN, act_max: int = INT16_MAX
) -> npt.NDArray[np.int16]:
    """TFLM's int16 ADD (equal shapes): ``reference_ops::AddElementwise<int16_t>``.

    :func:`~nndsl.qmath.add.add_s8`'s arithmetic with int16 bounds:
    ``act_min``/``act_max`` are the fused activation's quantised bounds
    (``[-32768, 32767]`` for none). A centred int16 value (at most 65535 in
    magnitude) shifted left by 15 stays inside int32, and so does the sum of
    the two halved inputs; the addition of the output offset can leave int32
    for extreme parameters and wraps like the C mirror.
    """
    return _add(a, b, params, act_min, act_max, np.int16, "add_s16")


# --------------------------------------------------------------------------
# AVERAGE_POOL_2D (MAX_POOL_2D needs nothing: see the module docstring)
# --------------------------------------------------------------------------


def avg_pool_s16(
    x: npt.ArrayLike,
    filter_hw: tuple[int, int],
    stride_hw: tuple[int, int],
    pads: tuple[int, int],
    out_hw: tuple[int, int],
    act_min: int = INT16_MIN,
    act_max: int = INT16_MAX,
) -> npt.NDArray[np.int16]:
    """TFLM's ``reference_integer_ops::AveragePool`` (int16) on ``x`` of shape ``(batch, H, W, C)``.

    The signature and arithmetic of :func:`~nndsl.qmath.pooling.avg_pool_s8`:
    ``pads`` is ``(top, left)`` (:func:`~nndsl.qmath.pooling.pool_padding`
    for TFLite's SAME/VALID), ``out_hw`` the output height and width; each
    output averages the in-bounds taps of its window (rounding half away from
    zero), then clamps to ``[act_min, act_max]``. A window without any
    in-bounds tap makes TFLM's kernel fail: ``ValueError``, as is a filter of
    more than 65535 taps (TFLM's int32 sum could overflow).
    """
    return _avg_pool(
        x, filter_hw, stride_hw, pads, out_hw, (act_min, act_max), np.int16, "avg_pool_s16", AVG_POOL_S16_MAX_TAPS
    )


# --------------------------------------------------------------------------
# MEAN over the positions axis
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanS16Params(_MeanParams):
    """TFLM's int16 MEAN (``QuantizedMeanOrSum<int16_t>``) for ``count`` elements per output.

    The fields of :class:`~nndsl.qmath.pooling.MeanS8Params`;
    ``multiplier``/``shift`` include the ``1 / count`` folded in at Eval. The
    field order after ``count`` is the C argument order of ``nn_mean_s16``
    after ``channels``.
    """


def mean_s16_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int, count: int) -> MeanS16Params:
    """TFLM's ``PrepareMeanOrSumHelper`` (int16) plus ``QuantizedMeanOrSum``'s Eval-time multiplier.

    The multiplier and shift are :func:`~nndsl.qmath.pooling.mean_s8_params`'
    (which do not depend on the zero points): ``QuantizeMultiplier(double(in_scale)
    / double(out_scale))`` then :func:`~nndsl.qmath.pooling.mean_multiplier`;
    equal input and output quantisations take the same path. A resulting
    left shift above 30 raises ``ValueError``.
    """
    return _mean_params(MeanS16Params, np.int16, in_scale, in_zp, out_scale, out_zp, count)


def mean_s16(x: npt.ArrayLike, params: MeanS16Params) -> npt.NDArray[np.int16]:
    """TFLM's int16 MEAN of ``x`` (``(batch, positions, C)``) over positions: ``(batch, C)``.

    :func:`~nndsl.qmath.pooling.mean_s8`'s arithmetic with the int16 clamp:
    the int32 sum (wrapping), minus ``in_zp * count``, through
    ``MultiplyByQuantizedMultiplier``, plus ``out_zp``. ``positions`` must
    equal ``params.count``.
    """
    return _mean(x, params, np.int16, "mean_s16")


# --------------------------------------------------------------------------
# RELU and RELU6
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# LEAKY_RELU
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
