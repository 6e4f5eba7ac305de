"""TensorFlow Lite Micro's int8 and int16 SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM and MINIMUM, and int8 PRELU,
bit-exact.

Each ``*_params`` function does what the kernel's ``Prepare`` does with the
tensors' float32 scales; each kernel function is its element-wise reference
(``SubElementwise``, ``MulElementwise``, ``SquaredDifference``, ``MaximumOp``)
on two arrays of one shape. Broadcasting (``Broadcast*4DSlow``) only chooses
which elements meet, so callers broadcast the operands first
(:func:`numpy.broadcast_arrays`). ADD is :mod:`nndsl.qmath.add`.
``backends/c/runtime/binary.c`` mirrors the element functions.

The three differ in where the scales meet:

- SUB (``sub_common.cc``) is ADD's arithmetic with a difference;
- MUL (``mul_common.cc``) multiplies the centred inputs and rescales the
  int32 product by ``scale1 * scale2 / scale_out`` (double);
- SQUARED_DIFFERENCE (``squared_difference.cc``) aligns both inputs as ADD
  does, with a left shift of 7 (int8) or 0 (int16), squares the int32
  difference and rescales it by ``(2 * max_scale)^2 / (2^(2 * left_shift) *
  scale_out)`` (double, ``QuantizeMultiplier``: may exceed one). It has no
  fused activation: the clamp is the storage type's range.

PRELU (``prelu.cc``, int8 only) keeps a centred input at or above zero,
rescaled by ``scale_in / scale_out``, and multiplies one below zero by the
centred alpha, rescaled by ``scale_in * scale_alpha / scale_out`` (double,
``QuantizeMultiplier`` both); the clamp is the storage type's range.

MAXIMUM and MINIMUM compare the stored values: TFLM has no ``Prepare`` for
them, so they are only meaningful when both inputs and the output share one
quantisation (the converter's rule, which the checker enforces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.qmath.add import ArithmeticParams, quantize_multiplier_smaller_than_one_exp
from nndsl.qmath.requant import (
    IntArray,
    Rounding,
    Storage,
    check_activation_range,
    checked_zero_point,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away_array,
    stored_values,
    wrap_int32,
)

SUB_LEFT_SHIFT = {np.int8: 20, np.int16: 15}
SQUARED_DIFFERENCE_LEFT_SHIFT = {np.int8: 7, np.int16: 0}
MAX_OUTPUT_SHIFT = 30  # QuantizeMultiplier's shift above this overflows the kernel's left shift


@dataclass(frozen=True)
class AlignedParams(ArithmeticParams):
    """TFLM ``ArithmeticParams`` of SUB and SQUARED_DIFFERENCE: both inputs moved to one scale, then the output's.

    Offsets are the negated input zero points and the output zero point; the
    input shifts are ``<= 0``. The field order is the C argument order of
    ``nn_sub_q`` and ``nn_squared_difference_q`` after the two values.
    """


@dataclass(frozen=True)
class MulParams:
    """TFLM ``OpDataMul``: offsets (negated input zero points, output zero point), the product's multiplier."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int


def _scales(scales: tuple[float, float, float]) -> tuple[np.float32, np.float32, np.float32]:
    return (float32_scale("scale1", scales[0]), float32_scale("scale2", scales[1]),
            float32_scale("out_scale", scales[2]))


def _offsets(zero_points: tuple[int, int, int], storage: type[np.signedinteger[Any]]) -> tuple[int, int, int]:
    """``(-zp1, -zp2, zp_out)``, each zero point checked against the storage type as TFLM's Prepare does."""
    zp1, zp2, zp_out = (checked_zero_point(name, value, storage)
                        for name, value in zip(("zp1", "zp2", "out_zp"), zero_points, strict=True))
    return -zp1, -zp2, zp_out


def _output_multiplier(real: float, rounding: Rounding) -> tuple[int, int]:
    """``QuantizeMultiplier`` of an output stage; a shift above 30 cannot run (``ValueError``)."""
    multiplier, shift = quantize_multiplier(real, rounding)
    if shift > MAX_OUTPUT_SHIFT:
        raise ValueError(f"output multiplier {real:.3g} is 2^31 or more")
    return multiplier, shift


def sub_params(scales: tuple[float, float, float], zero_points: tuple[int, int, int],
               storage: type[np.signedinteger[Any]], rounding: Rounding = Rounding.DOUBLE) -> AlignedParams:
    """``CalculateOpDataSub``: ADD's multipliers, from the float32 scales in double.

    The pinned TFLM computes them in double, as ADD does (later TFLM sources form
    ``twice_max`` and the quotients in float32, which moves some multipliers by
    a few units; the 16x8 tests tell the two apart). ``ValueError`` where TFLM's
    ``QuantizeMultiplierSmallerThanOneExp`` check fails (an output scale below
    about ``2 * max_scale / 2^left_shift``).
    """
    s1, s2, so = _scales(scales)
    left_shift = SUB_LEFT_SHIFT[storage]
    twice_max = 2.0 * float(max(s1, s2))
    real1 = float(s1) / twice_max
    real2 = float(s2) / twice_max
    real_out = twice_max / (float(1 << left_shift) * float(so))
    m1, shift1 = quantize_multiplier_smaller_than_one_exp(real1, rounding)
    m2, shift2 = quantize_multiplier_smaller_than_one_exp(real2, rounding)
    m_out, shift_out = quantize_multiplier_smaller_than_one_exp(real_out, rounding)
    off1, off2, off_out = _offsets(zero_points, storage)
    return AlignedParams(off1, m1, shift1, off2, m2, shift2, off_out, m_out, shift_out, left_shift)


def squared_difference_params(scales: tuple[float, float, float], zero_points: tuple[int, int, int],
                              storage: type[np.signedinteger[Any]],
                              rounding: Rounding = Rounding.DOUBLE) -> AlignedParams:
    """SQUARED_DIFFERENCE's ``PrepareQuantized`` (double arithmetic; the output multiplier may exceed one)."""
    s1, s2, so = _scales(scales)
    left_shift = SQUARED_DIFFERENCE_LEFT_SHIFT[storage]
    twice_max = 2.0 * float(max(s1, s2))
    real1 = float(s1) / twice_max
    real2 = float(s2) / twice_max
    real_out = (twice_max * twice_max) / float(np.float32((1 << (left_shift * 2)) * so))
    m1, shift1 = quantize_multiplier_smaller_than_one_exp(real1, rounding)
    m2, shift2 = quantize_multiplier_smaller_than_one_exp(real2, rounding)
    m_out, shift_out = _output_multiplier(real_out, rounding)
    off1, off2, off_out = _offsets(zero_points, storage)
    return AlignedParams(off1, m1, shift1, off2, m2, shift2, off_out, m_out, shift_out, left_shift)


def mul_params(scales: tuple[float, float, float], zero_points: tuple[int, int, int],
               storage: type[np.signedinteger[Any]], rounding: Rounding = Rounding.DOUBLE) -> MulParams:
    """``CalculateOpDataMul``: ``QuantizeMultiplier(double(scale1) * double(scale2) / double(scale_out))``."""
    s1, s2, so = _scales(scales)
    multiplier, shift = _output_multiplier(float(s1) * float(s2) / float(so), rounding)
    off1, off2, off_out = _offsets(zero_points, storage)
    return MulParams(off1, off2, off_out, multiplier, shift)


@dataclass(frozen=True)
class PreluParams:
    """TFLM ``PreluParams``: offsets (negated input and alpha zero points, output zero point), the identity
    branch's multiplier (``in / out``) and the negative branch's (``in * alpha / out``). The field order is the
    C argument order of ``nn_prelu_q`` after the two values."""

    input_offset: int
    alpha_offset: int
    output_offset: int
    output_multiplier_1: int
    output_shift_1: int
    output_multiplier_2: int
    output_shift_2: int


def prelu_params(scales: tuple[float, float, float], zero_points: tuple[int, int, int],
                 storage: type[np.signedinteger[Any]], rounding: Rounding = Rounding.DOUBLE) -> PreluParams:
    """``PreluPrepare``: ``QuantizeMultiplier`` of ``double(in) / double(out)`` and of ``double(in) *
    double(alpha) / double(out)`` (scales: input, alpha, output)."""
    s_in, s_alpha, s_out = _scales(scales)
    m1, shift1 = _output_multiplier(float(s_in) / float(s_out), rounding)
    m2, shift2 = _output_multiplier(float(s_in) * float(s_alpha) / float(s_out), rounding)
    off_in, off_alpha, off_out = _offsets(zero_points, storage)
    return PreluParams(off_in, off_alpha, off_out, m1, shift1, m2, shift2)


def _operands(a: npt.ArrayLike, b: npt.ArrayLike, storage: type[Storage], op: str) -> tuple[IntArray, IntArray]:
    x1 = stored_values(a, f"{op} input a", storage)
    x2 = stored_values(b, f"{op} input b", storage)
    if x1.shape != x2.shape:
        raise ValueError(f"{op} needs equal shapes (broadcast them first), got {x1.shape} and {x2.shape}")
    return x1, x2


def _aligned(x: IntArray, offset: int, multiplier: int, shift: int, left_shift: int, rounding: Rounding) -> IntArray:
    """A centred input shifted left and scaled onto the shared scale (``...SmallerThanOneExp``)."""
    return multiply_by_quantized_multiplier(wrap_int32((x + offset) << left_shift), multiplier, shift, rounding)


def sub(a: npt.ArrayLike, b: npt.ArrayLike, params: AlignedParams, act_min: int, act_max: int,
        storage: type[Storage], rounding: Rounding = Rounding.DOUBLE) -> npt.NDArray[Storage]:
    """``SubElementwise``: ``a - b`` in the output's quantisation, clamped to the fused activation's bounds."""
    x1, x2 = _operands(a, b, storage, "sub")
    check_activation_range(act_min, act_max, storage)
    p = params
    raw = wrap_int32(_aligned(x1, p.input1_offset, p.input1_multiplier, p.input1_shift, p.left_shift, rounding)
                     - _aligned(x2, p.input2_offset, p.input2_multiplier, p.input2_shift, p.left_shift, rounding))
    out = wrap_int32(multiply_by_quantized_multiplier(raw, p.output_multiplier, p.output_shift, rounding)
                     + p.output_offset)
    return np.clip(out, act_min, act_max).astype(storage)


def squared_difference(a: npt.ArrayLike, b: npt.ArrayLike, params: AlignedParams, storage: type[Storage],
                       rounding: Rounding = Rounding.DOUBLE) -> npt.NDArray[Storage]:
    """TFLM's quantised ``SquaredDifference``: ``(a - b)^2`` in the output's quantisation, clamped to the storage."""
    x1, x2 = _operands(a, b, storage, "squared_difference")
    p = params
    diff = wrap_int32(_aligned(x1, p.input1_offset, p.input1_multiplier, p.input1_shift, p.left_shift, rounding)
                      - _aligned(x2, p.input2_offset, p.input2_multiplier, p.input2_shift, p.left_shift, rounding))
    out = wrap_int32(multiply_by_quantized_multiplier(wrap_int32(diff * diff), p.output_multiplier, p.output_shift,
                                                      rounding) + p.output_offset)
    info = np.iinfo(storage)
    return np.clip(out, info.min, info.max).astype(storage)


def mul(a: npt.ArrayLike, b: npt.ArrayLike, params: MulParams, act_min: int, act_max: int,
        storage: type[Storage], rounding: Rounding = Rounding.DOUBLE) -> npt.NDArray[Storage]:
    """``MulElementwise``: the centred inputs' int32 product, rescaled, offset and clamped."""
    x1, x2 = _operands(a, b, storage, "mul")
    check_activation_range(act_min, act_max, storage)
    p = params
    product = wrap_int32((x1 + p.input1_offset) * (x2 + p.input2_offset))
    out = wrap_int32(multiply_by_quantized_multiplier(product, p.output_multiplier, p.output_shift, rounding)
                     + p.output_offset)
    return np.clip(out, act_min, act_max).astype(storage)


def prelu(a: npt.ArrayLike, alpha: npt.ArrayLike, params: PreluParams, storage: type[Storage],
          rounding: Rounding = Rounding.DOUBLE) -> npt.NDArray[Storage]:
    """``BroadcastPrelu4DSlow`` per value: a centred input at or above 0 rescaled by the first multiplier,
    below 0 times the centred alpha by the second; plus the output zero point, clamped to the storage type."""
    x, slope = _operands(a, alpha, storage, "prelu")
    p = params
    centred = x + p.input_offset
    positive = multiply_by_quantized_multiplier(centred, p.output_multiplier_1, p.output_shift_1, rounding)
    product = wrap_int32(centred * (slope + p.alpha_offset))
    negative = multiply_by_quantized_multiplier(product, p.output_multiplier_2, p.output_shift_2, rounding)
    out = wrap_int32(np.where(centred >= 0, positive, negative) + p.output_offset)
    info = np.iinfo(storage)
    return np.clip(out, info.min, info.max).astype(storage)


def maximum(a: npt.ArrayLike, b: npt.ArrayLike, storage: type[Storage]) -> npt.NDArray[Storage]:
    """``MaximumOp`` on the stored values (one shared quantisation)."""
    x1, x2 = _operands(a, b, storage, "maximum")
    return np.maximum(x1, x2).astype(storage)


def minimum(a: npt.ArrayLike, b: npt.ArrayLike, storage: type[Storage]) -> npt.NDArray[Storage]:
    """``MinimumOp`` on the stored values (one shared quantisation)."""
    x1, x2 = _operands(a, b, storage, "minimum")
    return np.minimum(x1, x2).astype(storage)


def quantize_constant(values: npt.ArrayLike, storage: type[np.signedinteger[Any]]) -> tuple[IntArray, float, int]:
    """A float constant operand as ``(stored values, scale, zero point)`` for an integer network.

    int8: asymmetric over ``[min(0, lo), max(0, hi)]`` (the range always holds
    real zero), so a single value is stored exactly as the largest or smallest
    int8 up to its float32 scale; int16: symmetric (zero point 0, TFLite's 16x8
    rule) with scale ``max|v| / 32767``. All zeros: scale 1, zero point 0.
    """
    real = np.asarray(values, dtype=np.float64)
    info = np.iinfo(storage)
    low, high = min(0.0, float(real.min())), max(0.0, float(real.max()))
    if low == high:
        return np.zeros(real.shape, dtype=np.int64), 1.0, 0
    if storage is np.int16:
        scale, zero_point = float(np.float32(max(-low, high) / info.max)), 0
    else:
        scale = float(np.float32((high - low) / (info.max - info.min)))
        zero_point = int(np.clip(round_half_away_array(np.array(info.min - low / scale)), info.min, info.max))
    return quantize_with(real, scale, zero_point, storage), scale, zero_point


def quantize_with(values: npt.ArrayLike, scale: float, zero_point: int,
                  storage: type[np.signedinteger[Any]]) -> IntArray:
    """``clamp(round(v / scale) + zero_point)``, halves away from zero: a constant in a given quantisation."""
    info = np.iinfo(storage)
    stored = round_half_away_array(np.asarray(values, dtype=np.float64) / scale) + zero_point
    return np.clip(stored, info.min, info.max).astype(np.int64)
