"""TensorFlow Lite Micro's int16 SOFTMAX, TANH and LOGISTIC (the 16x8 scheme), bit-exact.

In TensorFlow Lite's 16x8 scheme activations are int16 with zero point 0.
Each op has a frozen parameter dataclass, a ``*_s16_params`` function doing
what the TFLM kernel's Prepare does with the tensors' float32 scales (and
failing, with ``ValueError``, where Prepare fails), and a vectorised kernel
mirroring the int16 reference implementation:

* SOFTMAX: ``reference_ops::SoftmaxInt16`` (``reference/softmax.h``), prepared
  by ``SoftmaxPrepare`` / ``CalculateSoftmaxParams`` (``softmax_common.cc``).
  No gemmlowp here: two 513-entry int16 lookup tables with linear
  interpolation (``LUTLookup``), ``exp`` on [-10, 0] and ``1 / (1 + x)`` on
  [0, 1], which TFLM fills at Prepare with ``LUTPopulate<int16_t>`` in float32
  (:func:`lut_populate_int16`). They do not depend on the model; they are
  parameters so that the C code generator emits them as const arrays. The
  output is fixed to scale 1/32768, zero point 0 (TFLM checks the zero point
  and the scale to within 0.1 %); outputs lie in [0, 32767].
* TANH: ``reference_integer_ops::Tanh`` (int16 overload), prepared by
  ``CalculateArithmeticOpData`` (``tanh.cc``). No gemmlowp either: the input
  is rescaled to units of 1/(3 * 4096) (an integer multiplier and a rounding
  right shift, or, for input scales 2**-12 and 2**-11 to within 1e-3 in
  log2, the power-of-two shortcut ``input_multiplier == 0``) and interpolated
  in TFLite's fixed 256-entry ``sigmoid_table_uint16`` via
  ``tanh(x) = 2 sigmoid(2x) - 1``.
  Input and output zero points must be 0 and the output scale 2**-15 (checked
  by TFLM with ``CheckedLog2``); outputs lie in [-32767, 32767].
* LOGISTIC: ``reference_integer_ops::Logistic`` (int16 overload), prepared by
  ``CalculateArithmeticOpDataLogistic`` (``logistic_common.cc``); the same
  rescale (the power-of-two shortcut only for input scale 2**-12) and table.
  Output scale 2**-15, zero point 0; outputs lie in [1, 32767]: the most
  negative inputs give 1, never 0.

HARD_SWISH has no int16 kernel in TFLM (its Eval takes float32 and int8 only),
and the TF 2.21 converter refuses it in 16x8 mode ("Quantization to 16x8-bit
not yet supported for op: 'HARD_SWISH'"), so there is none here.

``backends/c/runtime/int16_functions.c`` mirrors the three kernels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.fixedpoint import count_leading_zeros
from nndsl.qmath.requant import (
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    IntArray,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    stored_values,
)

# Every op here writes int16 at scale 2**-15, zero point 0.
OUTPUT_SCALE = 1.0 / 32768.0
OUTPUT_ZERO_POINT = 0

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

Float32Function = Callable[[np.float32], np.float32]
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def wrap_int16(x: npt.ArrayLike) -> IntArray:
    """Two's-complement wrap to int16 (C++'s conversion of an ``int`` to ``int16_t``)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def round_float32(x: np.float32) -> np.float32:
    """``TfLiteRound`` on a float (``std::round``): halves away from zero, exact.

    Done in double, where ``|x| + 0.5`` is exact for every float32 ``x``.
    """
    value = float(x)
    return np.float32(math.copysign(math.floor(abs(value) + 0.5), value))


def exp_float32(x: np.float32) -> np.float32:
    """``std::exp`` of a float: the double exponential rounded to float32.

    That is the correctly rounded ``expf``, which glibc's ``expf`` (error below
    0.502 ulp) returns for all but the rarest inputs; none of the table's.
    """
    return np.float32(math.exp(float(x)))


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


def _check_output(op: str, scale: float, zero_point: int) -> None:
    """TANH and LOGISTIC's Prepare: output zero point 0 and ``CheckedLog2(scale)`` giving -15."""
    is_pot, log2_rounded = checked_log2(scale)
    if zero_point != OUTPUT_ZERO_POINT or not is_pot or log2_rounded != -SIGMOID_OUTPUT_FRACTIONAL_BITS:
        raise ValueError(
            f"{op} int16 output must have scale 2**-15 (to within 1e-3 in log2) and zero point 0, "
            f"got {scale!r} and {zero_point}; TFLM's Prepare fails"
        )


# --------------------------------------------------------------------------
# SOFTMAX
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
    output_scale: float = OUTPUT_SCALE,
    output_zero_point: int = OUTPUT_ZERO_POINT,
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
    if output_zero_point != OUTPUT_ZERO_POINT or delta > epsilon:
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


# --------------------------------------------------------------------------
# TANH and LOGISTIC
# --------------------------------------------------------------------------


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
    output_scale: float = OUTPUT_SCALE,
    output_zero_point: int = OUTPUT_ZERO_POINT,
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
    output_scale: float = OUTPUT_SCALE,
    output_zero_point: int = OUTPUT_ZERO_POINT,
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
