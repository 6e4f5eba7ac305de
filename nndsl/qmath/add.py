"""TensorFlow Lite Micro's int8 ADD (same-shape inputs), bit-exact.

:func:`add_s8_params` does what TFLM's ``CalculateOpDataAdd`` (``add_common.cc``)
does for an int8 output with the tensors' float32 scales; :func:`add_s8`
mirrors ``reference_integer_ops::AddFunc`` (``integer_ops/add.h``, default
double-rounding build), which ``reference_integer_ops::Add`` applies element by
element when the two input shapes are equal (no broadcast).

Both inputs are moved to a common scale, ``2 * max(scale1, scale2)``, with 20
bits of headroom: each centred input is shifted left by ``left_shift = 20``
and multiplied by ``scale_i / (2 * max_scale)`` (at most one half); the sum is
multiplied by ``2 * max_scale / (2**20 * output_scale)`` onto the output
scale. Every multiplier is below one, split by
``QuantizeMultiplierSmallerThanOneExp`` (``QuantizeMultiplier`` with a
``shift <= 0`` check) and applied by
``MultiplyByQuantizedMultiplierSmallerThanOneExp``: a saturating rounding
doubling high multiply, then a rounding right shift by ``-shift``, which is
:func:`~nndsl.qmath.requant.multiply_by_quantized_multiplier` for a
non-positive shift. The fused activation is a clamp to ``[act_min, act_max]``
(``CalculateActivationRangeQuantized``, see
:func:`~nndsl.qmath.requant.activation_range`). ``backends/c/runtime/add.c``
mirrors the kernel.

TFLM's int16 ADD (:func:`add_s16`) is the same
arithmetic (``AddElementwise<int16_t>``) with ``left_shift = 15`` and int16
bounds: the private :func:`_add_params` and :func:`_add`, parametrised by the
storage type, serve both widths. TFLM's ``EvalAddQuantized`` calls
``reference_ops::Add(..., int16_t, ..., pot_scale=false)`` for equal shapes,
always: the model's ``pot_scale_int16`` option is never read, so the
power-of-two path of ``reference_ops::Add`` is dead code in TFLM.
``backends/c/runtime/add.c`` mirrors :func:`add_s16`.
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

# ``data->left_shift`` of CalculateOpDataAdd: 20 for an int8 output, 15 for int16.
ADD_S8_LEFT_SHIFT = 20
ADD_S16_LEFT_SHIFT = 15


@dataclass(frozen=True)
class ArithmeticParams:
    """TFLM's ``ArithmeticParams`` of the two-input kernels that align their inputs to one scale (ADD, SUB,
    SQUARED_DIFFERENCE): the fields of :class:`AddS8Params`, ``AddS16Params`` and ``binary.AlignedParams``.

    Offsets are the negated input zero points and the output zero point; all
    shifts are ``<= 0`` (right shifts by ``-shift``).
    """

    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    left_shift: int


_Params = TypeVar("_Params", bound=ArithmeticParams)


@dataclass(frozen=True)
class AddS8Params(ArithmeticParams):
    """TFLM ``OpDataAdd`` (int8): offsets (negated input zero points, output zero point), multipliers, shifts.

    The field order is the C argument order of ``nn_add_s8`` after ``size``.
    All shifts are ``<= 0`` (right shifts by ``-shift``); ``left_shift`` is 20.
    """


def quantize_multiplier_smaller_than_one_exp(
    real_multiplier: float, rounding: Rounding = Rounding.DOUBLE
) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplierSmallerThanOneExp``: ``(multiplier, shift)`` with ``shift <= 0``.

    TFLM aborts (``TFLITE_CHECK``) unless ``0 < real < 1`` and the rounded
    shift is ``<= 0`` (a multiplier just below one can round up to ``2**31``
    and carry into shift 1); those raise ``ValueError`` here. Multipliers
    below ``2**-31`` flush to ``(0, 0)`` as in ``QuantizeMultiplier``.
    """
    if not 0.0 < real_multiplier < 1.0:
        raise ValueError(f"multiplier {real_multiplier!r} is not in (0, 1); TFLM's TFLITE_CHECK fails")
    multiplier, shift = quantize_multiplier(real_multiplier, rounding)
    if shift > 0:
        raise ValueError(f"multiplier {real_multiplier!r} rounds to shift {shift} > 0; TFLM's TFLITE_CHECK fails")
    return multiplier, shift


def _add_params(
    params_type: type[_Params],
    storage: type[np.signedinteger[Any]],
    left_shift: int,
    scales: tuple[float, float, float],
    zero_points: tuple[int, int, int],
    rounding: Rounding = Rounding.DOUBLE,
) -> _Params:
    """``CalculateOpDataAdd`` for an output of type ``storage`` with its ``left_shift`` (20 for int8, 15 for int16).

    ``scales`` and ``zero_points`` are those of input 1, input 2 and the output.
    """
    s1 = float32_scale("scale1", scales[0])
    s2 = float32_scale("scale2", scales[1])
    so = float32_scale("out_scale", scales[2])
    twice_max_input_scale = 2.0 * float(max(s1, s2))
    real_input1_multiplier = float(s1) / twice_max_input_scale
    real_input2_multiplier = float(s2) / twice_max_input_scale
    real_output_multiplier = twice_max_input_scale / (float(1 << left_shift) * float(so))
    input1_multiplier, input1_shift = quantize_multiplier_smaller_than_one_exp(real_input1_multiplier, rounding)
    input2_multiplier, input2_shift = quantize_multiplier_smaller_than_one_exp(real_input2_multiplier, rounding)
    output_multiplier, output_shift = quantize_multiplier_smaller_than_one_exp(real_output_multiplier, rounding)
    return params_type(
        input1_offset=-checked_zero_point("zp1", zero_points[0], storage),
        input1_multiplier=input1_multiplier,
        input1_shift=input1_shift,
        input2_offset=-checked_zero_point("zp2", zero_points[1], storage),
        input2_multiplier=input2_multiplier,
        input2_shift=input2_shift,
        output_offset=checked_zero_point("out_zp", zero_points[2], storage),
        output_multiplier=output_multiplier,
        output_shift=output_shift,
        left_shift=left_shift,
    )


def add_s8_params(
    scale1: float,
    zp1: int,
    scale2: float,
    zp2: int,
    out_scale: float,
    out_zp: int,
    rounding: Rounding = Rounding.DOUBLE,
) -> AddS8Params:
    """TFLM's ``CalculateOpDataAdd`` for an int8 output.

    In double, from the float32 scales: ``twice_max = 2 * max(scale1,
    scale2)``, input multipliers ``scale_i / twice_max`` and output multiplier
    ``twice_max / (2**20 * out_scale)``. Raises ``ValueError`` where TFLM's
    Prepare would abort: an output multiplier of one or more (an output scale
    below about ``2 * max_scale / 2**20``). ``rounding``: TFLite's default
    double rounding or its ``TFLITE_SINGLE_ROUNDING`` scheme (the same
    multipliers for multipliers below one; the kernel's multiply differs).
    """
    return _add_params(
        AddS8Params, np.int8, ADD_S8_LEFT_SHIFT, (scale1, scale2, out_scale), (zp1, zp2, out_zp), rounding
    )


def _add(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    params: ArithmeticParams,
    act_min: int,
    act_max: int,
    storage: type[Storage],
    op: str,
    rounding: Rounding = Rounding.DOUBLE,
) -> npt.NDArray[Storage]:
    """``AddElementwise`` / ``AddFunc`` on equal shapes, for int8 or int16 data (``storage``).

    Each centred input is shifted left by ``params.left_shift``, scaled by its
    multiplier; the int32 sum is scaled by the output multiplier, offset by
    the output zero point and clamped to ``[act_min, act_max]``. The int32
    intermediates wrap like the C mirror.
    """
    x1 = stored_values(a, f"{op} input a", storage)
    x2 = stored_values(b, f"{op} input b", storage)
    if x1.shape != x2.shape:
        raise ValueError(f"{op} needs equal shapes, got {x1.shape} and {x2.shape}")
    check_activation_range(act_min, act_max, storage)
    shifted1 = wrap_int32((x1 + params.input1_offset) << params.left_shift)
    shifted2 = wrap_int32((x2 + params.input2_offset) << params.left_shift)
    scaled1 = multiply_by_quantized_multiplier(shifted1, params.input1_multiplier, params.input1_shift, rounding)
    scaled2 = multiply_by_quantized_multiplier(shifted2, params.input2_multiplier, params.input2_shift, rounding)
    raw_sum = wrap_int32(scaled1 + scaled2)
    raw_output = wrap_int32(
        multiply_by_quantized_multiplier(raw_sum, params.output_multiplier, params.output_shift, rounding)
        + params.output_offset
    )
    return np.clip(raw_output, act_min, act_max).astype(storage)


def add_s8(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    params: AddS8Params,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    rounding: Rounding = Rounding.DOUBLE,
) -> npt.NDArray[np.int8]:
    """TFLM's ``reference_integer_ops::Add`` (int8, equal shapes): ``AddFunc`` element-wise.

    ``act_min``/``act_max`` are the fused activation's quantised bounds
    (``[-128, 127]`` for none). The int32 sum and the addition of the output
    offset cannot overflow for int8 inputs and multipliers below one; they
    wrap like the C mirror all the same. ``rounding``: the scheme of the
    three ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` calls.
    """
    return _add(a, b, params, act_min, act_max, np.int8, "add_s8", rounding)


# --------------------------------------------------------------------------
# int16 ADD
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
