"""TensorFlow Lite Micro's int8 AVERAGE_POOL_2D and MEAN (global average pooling), bit-exact.

AVERAGE_POOL_2D
    ``reference_integer_ops::AveragePool`` (int8 overload), prepared by
    ``PoolingPrepare`` (``pooling_common.cc``). Input and output share one
    quantisation (Prepare fails otherwise), so the kernel averages the raw
    int8 values: for each output position it sums the window's in-bounds taps
    only (padding is never counted), divides by their count rounding half away
    from zero (``acc > 0 ? (acc + n/2) / n : (acc - n/2) / n`` in C integer
    arithmetic) and clamps to the fused activation's range. The padding is
    TFLite's ``ComputePaddingHeightWidth`` (``tests/qmath_reference.py``'s ``pool_padding``): for
    SAME the smaller half of the total padding goes to the top/left. Keras
    ``AveragePooling1D`` converts to ``EXPAND_DIMS`` (axis 1: ``[1, 1, W, C]``)
    -> ``AVERAGE_POOL_2D`` with a ``1 x k`` filter and stride ``(1, s)`` ->
    ``RESHAPE``; the two reshapes leave the int8 data untouched.

MEAN
    Keras ``GlobalAveragePooling1D`` converts to ``MEAN`` of a ``[1, W, C]``
    tensor over axis 1 (a scalar axis tensor) and ``GlobalAveragePooling2D``
    to ``MEAN`` of a ``[1, H, W, C]`` tensor over axes ``[1, 2]``, both with
    ``keep_dims`` false (true with ``keepdims=True``, which changes the output
    shape only; with a single position and ``keepdims=True`` the converter
    emits no operator at all). TFLM's ``EvalMeanHelper`` (``reduce_common.cc``)
    sends int8 to ``EvalIntegerMean``, which in the pinned tflite-micro always
    calls ``reference_ops::QuantizedMeanOrSum<int8_t, int32_t>`` with
    ``compute_sum = false``, whatever the shape, the axes or ``keep_dims``
    (the 4-D axes-{1,2} special case is float32-only):

    * Prepare: ``(M, s) = QuantizeMultiplier(double(in_scale) /
      double(out_scale))`` of the float32 scales;
    * Eval folds ``1 / count`` into it: ``k = min(floor(log2(count)), 32,
      31 + s)``, ``M' = (M << k) / count`` (64-bit, truncating),
      ``s' = s - k``;
    * each output is ``MultiplyByQuantizedMultiplier(int32(sum - in_zp *
      count), M', s') + out_zp`` (double rounding), clamped to int8; the sum is
      the int32 sum of the raw int8 values.

    Older tflite-micro (``reduce_common.cc`` at commit 5774466) took
    ``reference_ops::Mean<int8_t, int32_t>`` instead when the input and
    output zero points and scales were equal: the raw sum divided by the count
    with C's truncating ``/``. The pinned build does not (checked against it
    with the output quantisation patched to the input's), so that path is not
    implemented; equal quantisations go through the multiplier like any other.

    The sum is an exact integer sum, so the order in which the reduced
    elements are visited does not matter: the 1-D case (reducing ``W``) and
    the 2-D case (reducing ``H`` and ``W``) are the same computation on the
    input viewed as ``(batch, positions, C)`` with ``positions = W`` or
    ``H * W`` in C order. :func:`mean_s8` is therefore one function for both.

``backends/c/runtime/pooling.c`` mirrors :func:`avg_pool_s8` and
:func:`mean_s8`.

TFLM's int16 AVERAGE_POOL_2D and MEAN (:func:`avg_pool_s16`,
:func:`mean_s16`) are the same arithmetic on int16 data: the private
:func:`_avg_pool`, :func:`_mean_params` and :func:`_mean`, parametrised by the
storage type, serve both widths.

* int16 AVERAGE_POOL_2D (``reference_integer_ops::AveragePool``, int16
  overload): the int32 accumulator cannot overflow for windows of up to 65535
  taps; larger windows are rejected.
* int16 MAX_POOL_2D needs nothing here: ``reference_integer_ops::MaxPool``
  takes the maximum of the in-bounds taps and clamps it to the fused
  activation's range, as for int8 (the NumPy backend's max pooling is
  dtype-agnostic).
* int16 MEAN: ``EvalMeanHelper`` sends int16 to
  ``QuantizedMeanOrSum<int16_t, int32_t>`` with ``compute_sum = false``, the
  computation of :func:`mean_s8` with the output clamped to
  ``[-32768, 32767]``. The int32 sum of int16 values can wrap from 65537
  positions on (as TFLM's does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from nndsl.qmath.requant import (
    INT8_MAX,
    INT8_MIN,
    INT16_MAX,
    INT16_MIN,
    IntArray,
    Rounding,
    Storage,
    check_activation_range,
    checked_zero_point,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    stored_values,
    wrap_int32,
)

# QuantizedMeanOrSum caps the 1/count pre-shift at 32 bits.
MEAN_MAX_COUNT_SHIFT = 32
# The largest window whose int32 sum of int16 values, +- half the count, cannot overflow.
AVG_POOL_S16_MAX_TAPS = 2**16 - 1


def _values(x: npt.ArrayLike, op: str, ndim: int, storage: type[np.signedinteger[Any]]) -> IntArray:
    values = np.asarray(x)
    if values.ndim != ndim:
        raise ValueError(f"{op} input must have {ndim} dimensions, got shape {values.shape}")
    return stored_values(values, f"{op} input", storage)


def _truncating_divide(numerator: IntArray, denominator: IntArray | int) -> IntArray:
    """C's integer ``/`` for a positive denominator: the quotient rounded toward zero."""
    quotient: IntArray = np.where(numerator >= 0, numerator // denominator, -((-numerator) // denominator))
    return quotient


# --------------------------------------------------------------------------
# AVERAGE_POOL_2D
# --------------------------------------------------------------------------


def _avg_pool(
    x: npt.ArrayLike,
    filter_hw: tuple[int, int],
    stride_hw: tuple[int, int],
    pads: tuple[int, int],
    out_hw: tuple[int, int],
    act_range: tuple[int, int],
    storage: type[Storage],
    op: str,
    max_taps: int | None = None,
) -> npt.NDArray[Storage]:
    """``reference_integer_ops::AveragePool`` for int8 or int16 data (``storage``); see :func:`avg_pool_s8`.

    ``act_range`` is ``(act_min, act_max)``; a filter of more than
    ``max_taps`` taps (if given) raises ``ValueError``.
    """
    values = _values(x, op, 4, storage)
    act_min, act_max = act_range
    check_activation_range(act_min, act_max, storage)
    filter_h, filter_w = filter_hw
    stride_h, stride_w = stride_hw
    pad_top, pad_left = pads
    out_h, out_w = out_hw
    if min(filter_h, filter_w, stride_h, stride_w, out_h, out_w) < 1:
        raise ValueError(f"filter {filter_hw}, stride {stride_hw} and output {out_hw} must be positive")
    if max_taps is not None and filter_h * filter_w > max_taps:
        raise ValueError(f"filter {filter_hw} has more than {max_taps} taps; TFLM's int32 sum overflows")
    batch, in_h, in_w, channels = values.shape
    origin_y = np.arange(out_h) * stride_h - pad_top
    origin_x = np.arange(out_w) * stride_w - pad_left
    acc = np.zeros((batch, out_h, out_w, channels), dtype=np.int64)
    count = np.zeros((out_h, out_w), dtype=np.int64)
    for filter_y in range(filter_h):
        in_y = origin_y + filter_y
        valid_y = (in_y >= 0) & (in_y < in_h)
        rows = np.clip(in_y, 0, max(in_h - 1, 0))
        for filter_x in range(filter_w):
            in_x = origin_x + filter_x
            valid_x = (in_x >= 0) & (in_x < in_w)
            cols = np.clip(in_x, 0, max(in_w - 1, 0))
            inside = valid_y[:, None] & valid_x[None, :]
            if not inside.any():
                continue
            taps = values[:, rows[:, None], cols[None, :], :]
            acc += np.where(inside[None, :, :, None], taps, 0)
            count += inside
    if (count == 0).any():
        empty = np.argwhere(count == 0)[0]
        raise ValueError(f"output position {tuple(int(i) for i in empty)} has no input tap; TFLM's AveragePool fails")
    divisor = count[None, :, :, None]
    half = divisor // 2
    average = np.where(acc > 0, _truncating_divide(acc + half, divisor), _truncating_divide(acc - half, divisor))
    return np.clip(average, act_min, act_max).astype(storage)


def avg_pool_s8(
    x: npt.ArrayLike,
    filter_hw: tuple[int, int],
    stride_hw: tuple[int, int],
    pads: tuple[int, int],
    out_hw: tuple[int, int],
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
) -> npt.NDArray[np.int8]:
    """TFLM's ``reference_integer_ops::AveragePool`` (int8) on ``x`` of shape ``(batch, H, W, C)``.

    ``pads`` is ``(top, left)``, ``out_hw`` the output height and width; the
    result has shape ``(batch, out_h, out_w, C)``. Each output averages the
    in-bounds taps of its window (rounding half away from zero), then clamps
    to ``[act_min, act_max]``. A window without any in-bounds tap makes TFLM's
    kernel return false (Eval fails): ``ValueError`` here.
    """
    return _avg_pool(x, filter_hw, stride_hw, pads, out_hw, (act_min, act_max), np.int8, "avg_pool_s8")


# --------------------------------------------------------------------------
# MEAN over the positions axis
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _MeanParams:
    """The fields shared by :class:`MeanS8Params` and ``MeanS16Params``."""

    count: int
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


_Params = TypeVar("_Params", bound=_MeanParams)


@dataclass(frozen=True)
class MeanS8Params(_MeanParams):
    """What TFLM's int8 MEAN (``QuantizedMeanOrSum``) uses for a reduction of ``count`` elements per output.

    ``multiplier``/``shift`` already include the ``1 / count`` that
    ``QuantizedMeanOrSum`` folds in at Eval. The field order after ``count`` is
    the C argument order of ``nn_mean_s8`` after ``channels``.
    """


def mean_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """``QuantizedMeanOrSum``'s ``1 / count`` folding: ``(multiplier', shift')``.

    ``k = min(floor(log2(count)), 32, 31 + shift)``; ``multiplier' =
    (multiplier << k) / count`` in 64 bits (truncating; below ``2**31`` since
    ``2**k <= count``), ``shift' = shift - k``.
    """
    if count < 1:
        raise ValueError(f"count {count} must be positive")
    k = min(count.bit_length() - 1, MEAN_MAX_COUNT_SHIFT, 31 + shift)
    return (multiplier << k) // count, shift - k


def _mean_params(
    params_type: type[_Params],
    storage: type[np.signedinteger[Any]],
    in_scale: float,
    in_zp: int,
    out_scale: float,
    out_zp: int,
    count: int,
    rounding: Rounding = Rounding.DOUBLE,
) -> _Params:
    """``PrepareMeanOrSumHelper`` plus :func:`mean_multiplier` for int8 or int16 data (``storage``)."""
    s_in = float32_scale("in_scale", in_scale)
    s_out = float32_scale("out_scale", out_scale)
    if count < 1:
        raise ValueError(f"count {count} must be positive")
    base_multiplier, base_shift = quantize_multiplier(float(s_in) / float(s_out), rounding)
    multiplier, shift = mean_multiplier(base_multiplier, base_shift, count)
    if shift > 30:
        raise ValueError(f"MEAN: multiplier shift {shift} > 30, TFLM's shift is undefined")
    return params_type(
        count=int(count),
        input_zero_point=checked_zero_point("in_zp", in_zp, storage),
        output_zero_point=checked_zero_point("out_zp", out_zp, storage),
        multiplier=multiplier,
        shift=shift,
    )


def mean_s8_params(
    in_scale: float, in_zp: int, out_scale: float, out_zp: int, count: int, rounding: Rounding = Rounding.DOUBLE
) -> MeanS8Params:
    """TFLM's ``PrepareMeanOrSumHelper`` (int8) plus the Eval-time multiplier of ``QuantizedMeanOrSum``.

    ``QuantizeMultiplier(double(in_scale) / double(out_scale))`` of the float32
    scales, then :func:`mean_multiplier` (equal input and output quantisations
    included: the pinned TFLM has no separate path for them). A resulting left
    shift above 30 (``in_scale / out_scale`` of about ``2**30 * count``), where
    TFLM's ``1 << shift`` is undefined, raises ``ValueError``. ``rounding``
    selects ``QuantizeMultiplier``'s and the kernel's rounding scheme.
    """
    return _mean_params(MeanS8Params, np.int8, in_scale, in_zp, out_scale, out_zp, count, rounding)


def _mean(
    x: npt.ArrayLike, params: _MeanParams, storage: type[Storage], op: str, rounding: Rounding = Rounding.DOUBLE
) -> npt.NDArray[Storage]:
    """``QuantizedMeanOrSum`` (mean) over axis 1 of ``(batch, positions, C)`` int8 or int16 data (``storage``).

    The int32 sum (wrapping), minus ``in_zp * count``, through
    ``MultiplyByQuantizedMultiplier``, plus ``out_zp``, clamped to the
    storage type's range.
    """
    info = np.iinfo(storage)
    values = _values(x, op, 3, storage)
    if values.shape[1] != params.count:
        raise ValueError(f"{op}: {values.shape[1]} positions, params for {params.count}")
    total = wrap_int32(values.sum(axis=1))
    shifted = wrap_int32(total - params.input_zero_point * params.count)
    scaled = multiply_by_quantized_multiplier(shifted, params.multiplier, params.shift, rounding)
    output = wrap_int32(scaled + params.output_zero_point)
    return np.clip(output, info.min, info.max).astype(storage)


def mean_s8(
    x: npt.ArrayLike, params: MeanS8Params, rounding: Rounding = Rounding.DOUBLE
) -> npt.NDArray[np.int8]:
    """TFLM's int8 MEAN (``QuantizedMeanOrSum``) of ``x`` (``(batch, positions, C)``) over positions: ``(batch, C)``.

    A ``GlobalAveragePooling1D`` input ``[batch, W, C]`` is passed as is, a
    ``GlobalAveragePooling2D`` input ``[batch, H, W, C]`` reshaped to
    ``(batch, H * W, C)``; ``positions`` must equal ``params.count``. The
    int32 sum wraps as TFLM's ``AddTensorValuesWithExpectedOverflow`` does
    (only reachable beyond 2**24 positions).
    """
    return _mean(x, params, np.int8, "mean_s8", rounding)


# --------------------------------------------------------------------------
# int16 AVERAGE_POOL_2D (MAX_POOL_2D needs nothing: its kernel is dtype-agnostic)
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
    ``pads`` is ``(top, left)`` (TFLite's ``ComputePaddingHeightWidth``
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
# int16 MEAN
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
