"""Reference kernels of TFLM that no nndsl backend calls: the tests' models of what nndsl lowers another way.

* TFLite's pooling padding (:func:`pool_padding`), which the tests derive
  from a model's options; nndsl's own is ``nndsl/rules/window.py``'s
  ``output_length``.
* The 16x8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D (:func:`dense_s16`,
  :func:`requantize_s16` and the multiplier helpers): the NumPy backend runs
  its own tap loops over
  :func:`~nndsl.qmath.requant.multiply_by_quantized_multiplier_int64`, the C
  backend its templates' loops over ``nn_mbqm64``.
* TFLM's stand-alone int16 RELU and RELU6 (:func:`relu_s16`,
  :func:`relu6_s16`), which the tests pin against TFLM; no backend calls
  them.

16x8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D
====================================================

In the 16x8 scheme (``OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``)
activations are int16 with zero point 0 (symmetric), weights int8 symmetric
(zero point 0), per output channel for CONV_2D, DEPTHWISE_CONV_2D and, since
the converter quantises dense layers per channel too, FULLY_CONNECTED
(``_experimental_disable_per_channel_quantization_for_dense_layers`` gives
per-tensor FC weights). The converter (TF 2.21) emits **int64** biases for all
three operators, with bias scale ``input_scale * filter_scale[c]``; it adds an
all-zero int64 bias to a CONV_2D or DEPTHWISE_CONV_2D built without one, but
leaves a FULLY_CONNECTED without bias (input index -1) when the Keras bias is
absent or all zero. ``converter._experimental_full_integer_quantization_bias_type
= tf.int32`` makes it emit int32 biases instead.

Kernels (``reference_integer_ops``: ``FullyConnected``/``FullyConnectedPerChannel``,
``ConvPerChannel``, ``DepthwiseConvPerChannel``, the int16-input overloads),
for each output element, in this order:

1. **Accumulate** ``sum(filter * input)`` over the taps, with no offsets: both
   zero points are 0 (FC still adds ``-filter_zero_point``, which is 0). Each
   product is an int32 (at most ``128 * 32768 = 2**22``). FC: every input
   feature ``i`` of the last axis. CONV_2D: every in-image tap
   ``(ky, kx, ci)`` (taps that fall in the padding are skipped, i.e. padding
   is 0). DEPTHWISE_CONV_2D: the in-image ``(ky, kx)`` taps of input channel
   ``c // depth_multiplier`` for output channel ``c``.
2. **Add the bias** ``bias[c]`` when present.
3. **Requantise** with the channel's ``(multiplier, shift)``.
4. **Clamp** to ``[act_min, act_max]`` and store as int16. There is no output
   offset (the output zero point is 0).

The accumulator type follows the bias tensor (TFLM's Eval dispatches on its
type and instantiates the kernel's ``AccumScalar`` with it):

* **int64 bias** (the converter's default) **or no bias tensor**: an int64
  accumulator, and step 3 is the int64-input ``MultiplyByQuantizedMultiplier``
  overload, :func:`multiply_by_quantized_multiplier_int64`: the multiplier is
  reduced to 16 bits, ``reduced = min((m + 2**15) >> 16, 0x7FFF)``, then
  ``(acc * reduced + 2**(14 - shift)) >> (15 - shift)``, an arithmetic shift
  (floor) after adding half: a **single** rounding, ties toward +infinity. The
  int64 result is truncated to int32 (no saturation) before the clamp. This
  overload's code is the same in both ``TFLITE_SINGLE_ROUNDING`` builds.
* **int32 bias** (FULLY_CONNECTED and CONV_2D): an int32 accumulator (signed
  overflow in C++; it wraps in practice, so a C mirror should sum in int64 or
  uint32 and wrap once), plus the int32 bias, through the ordinary int32
  ``MultiplyByQuantizedMultiplier``
  (:func:`~nndsl.qmath.requant.multiply_by_quantized_multiplier`, TFLM's
  default double rounding: a left shift for ``shift > 0``, the saturating
  rounding doubling high multiply by the full 31-bit multiplier, whose nudge
  rounds its ties toward +infinity, then a rounding right shift by ``-shift``
  with ties away from zero). The two paths round differently (for
  ``m = 2**30, shift = -1``: ``-6 -> -1`` vs ``-2``, ``5 -> 1`` vs ``2``), so
  the bias dtype is part of the contract.
* DEPTHWISE_CONV_2D's 16x8 Eval reads the bias as int64 whatever its type: an
  int32 bias (which the converter emits on request) is misread as int64
  values made of pairs of int32 words (channel ``c`` gets
  ``b[2c] + b[2c + 1] * 2**32``; the upper half of the channels reads past the
  buffer), so TFLM's output is garbage. Reject that combination rather than
  reproduce it.

Multipliers (Prepare, double arithmetic, ``QuantizeMultiplier`` as in
:func:`~nndsl.qmath.requant.quantize_multiplier`):

``double(input_scale) * double(filter_scale[c]) / double(output_scale)`` from
the tensors' float32 scales, exactly as for int8, for all three operators
(``PopulateConvolutionQuantizationParams``, ``CalculateOpDataFullyConnected``);
a single filter scale is broadcast to every channel (conv) or used per tensor
(FC). Older TFLite code (``GetQuantizedConvolutionMultipler``) formed a
per-tensor FC's product in float32 first; the pinned TFLM does not: its
per-tensor FULLY_CONNECTED takes the double product too (tested with an int32
bias, where the full 31-bit multiplier shows the difference).

Activation clamp (``CalculateActivationRangeQuantized`` for an int16 output):
``[-32768, 32767]`` intersected with ``round(bound / output_scale)`` for
RELU (lower bound 0.0), RELU6 (0.0 and 6.0) and RELU_N1_TO_1 (-1.0 and 1.0),
the division done in float32 and rounded half away from zero; the zero point
is 0, so RELU's lower bound is exactly 0. The converter calibrates the output
after the fused activation, so in a converted model RELU6's upper bound is at
or above 32767 and only the lower bound 0 clips.

int16 RELU and RELU6
====================

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
    INT8_MAX,
    INT8_MIN,
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    IntArray,
    activation_range,
    check_activation_range,
    checked_zero_point,
    float32_scale,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    quantize_multiplier,
    round_half_away,
    stored_values,
    wrap_int32,
)

RELU6_REAL_MAX = 6.0


# --------------------------------------------------------------------------
# Pooling padding
# --------------------------------------------------------------------------


def pool_padding(in_size: int, filter_size: int, stride: int, padding: str) -> tuple[int, int]:
    """``(out_size, pad_before)`` along one axis: TFLite's ``ComputeOutSize`` and ``ComputePaddingWithOffset``.

    ``padding`` is ``"same"`` (``ceil(in / stride)`` outputs) or ``"valid"``
    (``(in + stride - filter) / stride``); the padding before is half the
    total, rounded down. Raises ``ValueError`` for no output.
    """
    if min(in_size, filter_size, stride) < 1:
        raise ValueError(f"sizes must be positive: in {in_size}, filter {filter_size}, stride {stride}")
    if padding == "same":
        out_size = (in_size + stride - 1) // stride
    elif padding == "valid":
        if in_size < filter_size:
            raise ValueError(f"valid pooling of {in_size} with a filter of {filter_size} has no output")
        out_size = (in_size + stride - filter_size) // stride
    else:
        raise ValueError(f"padding {padding!r} is neither 'same' nor 'valid'")
    total_padding = max((out_size - 1) * stride + filter_size - in_size, 0)
    return out_size, total_padding // 2


# --------------------------------------------------------------------------
# 16x8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------


# TFLite ActivationFunctionType code -> real clamp bounds.
FUSED_ACTIVATION_BOUNDS: dict[int, tuple[float | None, float | None]] = {
    0: (None, None),  # NONE
    1: (0.0, None),  # RELU
    2: (-1.0, 1.0),  # RELU_N1_TO_1
    3: (0.0, 6.0),  # RELU6
}


def per_channel_multipliers(
    input_scale: float, filter_scales: npt.ArrayLike, output_scale: float
) -> tuple[IntArray, IntArray]:
    """``(multipliers, shifts)`` of CONV_2D, DEPTHWISE_CONV_2D and per-channel FULLY_CONNECTED.

    ``QuantizeMultiplier(double(input_scale) * double(filter_scale[c]) /
    double(output_scale))`` from the float32 scales, one entry per filter
    scale (a single per-tensor scale gives one entry, which broadcasts).
    """
    s_in = float(np.float32(input_scale))
    s_out = float(np.float32(output_scale))
    scales = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
    pairs = [quantize_multiplier(s_in * float(s) / s_out) for s in scales]
    return (
        np.array([p[0] for p in pairs], dtype=np.int64),
        np.array([p[1] for p in pairs], dtype=np.int64),
    )


def fully_connected_multipliers(
    input_scale: float, filter_scales: npt.ArrayLike, output_scale: float
) -> tuple[IntArray, IntArray]:
    """``(multipliers, shifts)`` of a FULLY_CONNECTED: ``[O]`` per channel, ``[1]`` for one filter scale.

    The same double product as :func:`per_channel_multipliers`, per tensor
    too: the pinned TFLM does not round ``input_scale * filter_scale`` to
    float32 first (as TFLite's ``GetQuantizedConvolutionMultipler`` does).
    """
    return per_channel_multipliers(input_scale, filter_scales, output_scale)


def fused_activation_range_s16(activation: int, output_scale: float) -> tuple[int, int]:
    """Clamp bounds of a fused activation (TFLite ``ActivationFunctionType`` code) for an int16 output.

    NONE ``(0)``, RELU ``(1)``, RELU_N1_TO_1 ``(2)``, RELU6 ``(3)``; zero point 0.
    Raises ``ValueError`` for other codes and where TFLM's ``Quantize`` check
    fails (a bound beyond the int32 range).
    """
    if activation not in FUSED_ACTIVATION_BOUNDS:
        raise ValueError(f"fused activation {activation} has no quantised range")
    low, high = FUSED_ACTIVATION_BOUNDS[activation]
    for bound in (low, high):
        # TFLM checks the rounded float32 quotient against float(INT32_MIN/MAX) = -2**31, 2**31.
        if bound is not None and abs(round_half_away(float(np.float32(bound) / np.float32(output_scale)))) > 2**31:
            raise ValueError(f"activation bound {bound} / {output_scale} overflows int32")
    return activation_range(low, high, output_scale, 0, INT16_MIN, INT16_MAX)


def _bias_kind(bias: npt.ArrayLike | None) -> str:
    """``'int64'`` (also for ``None``) or ``'int32'``: which TFLM accumulator path a bias selects."""
    if bias is None:
        return "int64"
    dtype = np.asarray(bias).dtype
    if dtype == np.int64:
        return "int64"
    if dtype == np.int32:
        return "int32"
    raise ValueError(f"16x8 bias must be int64 or int32, got {dtype}")


def requantize_s16(
    acc: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    multipliers: npt.ArrayLike,
    shifts: npt.ArrayLike,
    act_min: int = INT16_MIN,
    act_max: int = INT16_MAX,
) -> npt.NDArray[np.int16]:
    """Steps 2 to 4 of a 16x8 kernel on exact accumulators ``acc`` (``[..., O]``).

    ``acc`` holds the exact tap sums (int64, as NumPy or a C tap loop computes
    them). With an int64 ``bias`` or ``None`` the sum plus bias goes through
    :func:`multiply_by_quantized_multiplier_int64`; with an int32 ``bias`` it
    wraps to int32 (TFLM's int32 accumulator) and goes through the int32
    double-rounding ``MultiplyByQuantizedMultiplier``. ``multipliers``
    and ``shifts`` are ``[O]`` or ``[1]``; the result is clamped to
    ``[act_min, act_max]``.
    """
    check_activation_range(act_min, act_max, np.int16)
    total = np.asarray(acc, dtype=np.int64)
    kind = _bias_kind(bias)
    if bias is not None:
        total = total + np.asarray(bias, dtype=np.int64)
    if kind == "int64":
        scaled = multiply_by_quantized_multiplier_int64(total, multipliers, shifts)
    else:
        scaled = multiply_by_quantized_multiplier(wrap_int32(total), multipliers, shifts)
    return np.clip(scaled, act_min, act_max).astype(np.int16)


def dense_s16(
    x: npt.ArrayLike,
    kernel: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    multipliers: npt.ArrayLike,
    shifts: npt.ArrayLike,
    act_min: int = INT16_MIN,
    act_max: int = INT16_MAX,
) -> npt.NDArray[np.int16]:
    """TFLM's 16x8 FULLY_CONNECTED: ``x`` int16 ``[..., I]``, ``kernel`` int8 ``[I, O]`` -> int16 ``[..., O]``.

    ``kernel`` is the Keras layout, the transpose of the TFLite weights tensor
    ``[O, I]``. ``bias``: int64 ``[O]`` (the converter's default) or ``None``
    (no bias tensor): int64 accumulator and
    :func:`multiply_by_quantized_multiplier_int64`; int32 ``[O]``: int32
    accumulator and the int32 double-rounding multiply. ``multipliers``/``shifts``: ``[O]`` per channel or ``[1]`` per
    tensor (:func:`fully_connected_multipliers`). ``act_min``/``act_max``: the
    fused activation's bounds (:func:`fused_activation_range_s16`).
    """
    xs = np.asarray(x)
    ws = np.asarray(kernel)
    if xs.size and (xs.min() < INT16_MIN or xs.max() > INT16_MAX):
        raise ValueError("dense_s16 input is not int16")
    if ws.size and (ws.min() < INT8_MIN or ws.max() > INT8_MAX):
        raise ValueError("dense_s16 kernel is not int8")
    if ws.ndim != 2 or xs.shape[-1:] != ws.shape[:1]:
        raise ValueError(f"dense_s16 shapes {xs.shape} and {ws.shape} do not match")
    outputs = ws.shape[1]
    if bias is not None and np.shape(bias) != (outputs,):
        raise ValueError(f"bias shape {np.shape(bias)} is not ({outputs},)")
    for name, values in (("multipliers", multipliers), ("shifts", shifts)):
        if np.shape(values) not in ((outputs,), (1,), ()):
            raise ValueError(f"{name} shape {np.shape(values)} is neither ({outputs},) nor (1,)")
    # Exact in int64: each product is below 2**22 in magnitude.
    acc = xs.astype(np.int64) @ ws.astype(np.int64)
    return requantize_s16(acc, bias, multipliers, shifts, act_min, act_max)


# --------------------------------------------------------------------------
# int16 RELU and RELU6
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReluS16Params:
    """TFLM ``ReluOpData`` (int16): the rescaling multiplier and shift.

    Prepare insists on zero points 0, so the offsets are 0 and the clamp is
    ``[0, 32767]``. The field order is the C argument order of
    ``test_relu_s16`` (tests/test_int16_ops.py) after ``size``.
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
    :func:`~nndsl.qmath.requant.activation_range` of ``(0, 6)``. Only the input quantisation
    enters; TFLM never reads the output's. Quotients of 2**31 and more, where
    TFLM's conversion to int32 is undefined, raise ``ValueError``.
    """
    in_scale = float32_scale("input_scale", input_scale)
    zero = checked_zero_point("input_zero_point", input_zero_point, np.int16)
    if round_half_away(float(np.float32(RELU6_REAL_MAX) / in_scale)) + zero > INT32_MAX:
        raise ValueError(f"RELU6: 6 / {input_scale!r} does not fit int32, TFLM's conversion is undefined")
    _, six = activation_range(None, RELU6_REAL_MAX, float(in_scale), zero, INT16_MIN, INT16_MAX)
    return Relu6S16Params(lower=zero, upper=six)


def relu6_s16(x: npt.ArrayLike, params: Relu6S16Params) -> npt.NDArray[np.int16]:
    """TFLM's ``Relu6Quantized<int16_t>``: the raw input clamped to ``[lower, upper]``, no rescaling."""
    values = stored_values(x, "relu6_s16 input", np.int16)
    return np.clip(values, params.lower, params.upper).astype(np.int16)
