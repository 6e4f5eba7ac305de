"""TensorFlow Lite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM: the integer 8x8->16 kernel and the float one.

The integer kernel (``lstm_eval.h``/``lstm_eval.cc``, prepared by
``PrepareGateParametersInteger`` in ``lstm_eval_common.cc``) runs, per time
step, four gates (input, forget, cell, output: TFLite's order, and Keras's
column blocks of ``kernel``/``recurrent_kernel``):

* ``gate = act(sat16(FC(x) + FC(h)))``: two int8 x int8 fully connected layers
  writing int16 at scale 2**-12 (Q3.12); the input one adds the bias, the
  recurrent one has none. Each is TFLM's ``FullyConnected`` requantisation
  with ``QuantizeMultiplier(float32(in_scale * w_scale) / 2**-12)``.
* ``act``: the int16 LOGISTIC (multiplier 0, shift 0) or, for the cell gate,
  the int16 TANH with the power-of-two shortcut; both output Q0.15.
* ``c = sat16(f * c) + sat16(i * g)`` (int16 ``MulElementwise`` with scales
  ``2**-15 * s_c / s_c`` and ``2**-30 / s_c``), saturated, clipped to
  ``cell_clip`` when positive. The cell scale ``s_c`` must be a power of two.
* ``h = int8(tanh(c) * o)``: TANH at the cell's power of two, then
  ``MulElementwise`` to the hidden (output) scale and zero point.

The state (``h`` int8, ``c`` int16) is explicit: passed in, returned, so that a
caller may keep it between calls. :func:`lstm_s8` starts from the state given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.activations import LogisticS16Params, TanhS16Params, logistic_s16, tanh_s16
from nndsl.qmath.requant import (
    INT16_MAX,
    INT16_MIN,
    IntArray,
    Rounding,
    float32_scale,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    stored_values,
    wrap_int32,
)

GATES = ("input", "forget", "cell", "output")
GATE_INPUT_SCALE_LOG2 = -12  # TFLM's fully connected layers write the gates in Q3.12
GATE_OUTPUT_SCALE_LOG2 = -15  # and the activations Q0.15
SIGMOID = LogisticS16Params(input_multiplier=0, input_left_shift=0)
GATE_TANH = TanhS16Params(input_multiplier=0, input_left_shift=0)  # (15 - 12) - 3 = 0: the Q3.12 shortcut


@dataclass(frozen=True)
class LstmS8Params:
    """What TFLM's Prepare derives from the tensors' scales; one multiplier per column of the ``4U`` gates.

    TFLite files hold one scale per gate matrix, so the columns of a gate share
    one multiplier there; per-column scales of nndsl's weights simply give each
    column its own.
    """

    input_offset: int  # -zero point of x
    hidden_offset: int  # -zero point of h (the output's)
    input_multipliers: tuple[int, ...]
    input_shifts: tuple[int, ...]
    recurrent_multipliers: tuple[int, ...]
    recurrent_shifts: tuple[int, ...]
    cell_scale_log2: int  # TFLM's cell_state_scale_power: the cell scale is 2**cell_scale_log2
    cell_clip: int  # quantised clip of the cell state, 0: none
    forget_multiplier: int  # forget gate x cell -> cell
    forget_shift: int
    update_multiplier: int  # input gate x cell gate -> cell
    update_shift: int
    hidden_multiplier: int  # tanh(cell) x output gate -> h
    hidden_shift: int
    output_zero_point: int
    rounding: Rounding = Rounding.DOUBLE

    @property
    def cell_tanh(self) -> TanhS16Params:
        """``lstm_internal::Tanh``: left shift ``(15 + power) - 3``; a negative one becomes multiplier 3, shift."""
        shift = (15 + self.cell_scale_log2) - 3
        return TanhS16Params(0, shift) if shift >= 0 else TanhS16Params(3, -shift)


def _column_scales(name: str, scales: npt.ArrayLike, columns: int) -> list[np.float32]:
    values = [float32_scale(name, float(s)) for s in np.ravel(np.asarray(scales, dtype=np.float64))]
    if len(values) not in (1, columns):
        raise ValueError(f"{name}: {len(values)} scales for {columns} columns")
    return values * columns if len(values) == 1 else values


def _fc_multipliers(in_scale: float, weight_scales: list[np.float32],
                    rounding: Rounding) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``GetQuantizedConvolutionMultipler``: the float32 product of the scales, over 2**-12 in double."""
    pairs = [quantize_multiplier(float(np.float32(in_scale) * w) / 2.0**GATE_INPUT_SCALE_LOG2, rounding)
             for w in weight_scales]
    return tuple(m for m, _ in pairs), tuple(s for _, s in pairs)


def cell_scale_log2(cell_scale: float) -> int:
    """``CheckedLog2`` of the cell state's scale, which must be a power of two (``ValueError`` otherwise)."""
    log2 = math.log2(float(float32_scale("cell_scale", cell_scale)))
    rounded = round(log2)
    if abs(log2 - rounded) > 1e-3:
        raise ValueError(f"cell state scale {cell_scale!r} is not a power of two")
    return rounded


def lstm_s8_params(
    units: int,
    input_quant: tuple[float, int],
    output_quant: tuple[float, int],
    kernel_scales: npt.ArrayLike,
    recurrent_scales: npt.ArrayLike,
    cell_scale: float,
    cell_clip: float = 0.0,
    rounding: Rounding = Rounding.DOUBLE,
) -> LstmS8Params:
    """``PrepareGateParametersInteger`` and ``CreateLstmCellStateInfo`` from the scales (float32, as TFLM)."""
    (in_scale, in_zero), (out_scale, out_zero) = input_quant, output_quant
    in_mult, in_shift = _fc_multipliers(in_scale, _column_scales("kernel scale", kernel_scales, 4 * units), rounding)
    rec_mult, rec_shift = _fc_multipliers(
        out_scale, _column_scales("recurrent kernel scale", recurrent_scales, 4 * units), rounding)
    power = cell_scale_log2(cell_scale)
    cs = float(np.float32(cell_scale))
    q15 = 2.0**GATE_OUTPUT_SCALE_LOG2
    forget = quantize_multiplier(q15 * cs / cs, rounding)
    update = quantize_multiplier(q15 * q15 / cs, rounding)
    hidden = quantize_multiplier(q15 * q15 / float(np.float32(out_scale)), rounding)
    clip = int(min(max(float(np.float32(cell_clip)) / cs, -32768.0), 32767.0)) if cell_clip > 0 else 0
    return LstmS8Params(-in_zero, -out_zero, in_mult, in_shift, rec_mult, rec_shift, power, clip,
                        *forget, *update, *hidden, out_zero, rounding)


@dataclass(frozen=True)
class LstmState:
    """One sequence's (or a batch's, on leading axes) hidden state ``h`` and cell state ``c``."""

    hidden: npt.NDArray[np.generic]
    cell: npt.NDArray[np.generic]


def zero_state_s8(batch: tuple[int, ...], units: int, output_zero_point: int) -> LstmState:
    """TFLM's reset of the variable tensors: ``h`` at its zero point (real 0), ``c`` at 0."""
    return LstmState(np.full((*batch, units), output_zero_point, dtype=np.int8),
                     np.zeros((*batch, units), dtype=np.int16))


def _sat16(x: IntArray) -> IntArray:
    return np.clip(x, INT16_MIN, INT16_MAX)


def _fc16(x: IntArray, offset: int, weights: IntArray, bias: IntArray | None, multipliers: IntArray,
          shifts: IntArray, rounding: Rounding) -> IntArray:
    """TFLM's int8 -> int16 ``FullyConnected`` over all ``4U`` gate columns (output zero point 0)."""
    acc = wrap_int32((x + offset) @ weights)
    if bias is not None:
        acc = wrap_int32(acc + bias)
    return _sat16(multiply_by_quantized_multiplier(acc, multipliers, shifts, rounding))


def _mul(a: IntArray, b: IntArray, multiplier: int, shift: int, offset: int, low: int, high: int,
         rounding: Rounding) -> IntArray:
    """``MulElementwise`` of two symmetric int16 operands."""
    product = wrap_int32(a * b)
    return np.clip(wrap_int32(multiply_by_quantized_multiplier(product, multiplier, shift, rounding) + offset),
                   low, high)


def lstm_s8_step(x: IntArray, kernel: IntArray, recurrent: IntArray, bias: IntArray | None, p: LstmS8Params,
                 state: LstmState) -> LstmState:
    """One time step (``lstm_internal::LstmStep``): the gates from ``x`` and the old ``h``, then ``c``, then ``h``."""
    h = state.hidden.astype(np.int64)
    c = state.cell.astype(np.int64)
    units = c.shape[-1]
    gates = _sat16(
        _fc16(x, p.input_offset, kernel, bias, np.asarray(p.input_multipliers), np.asarray(p.input_shifts),
              p.rounding)
        + _fc16(h, p.hidden_offset, recurrent, None, np.asarray(p.recurrent_multipliers),
                np.asarray(p.recurrent_shifts), p.rounding))
    i, f, g, o = (gates[..., k * units:(k + 1) * units] for k in range(4))
    i, f, o = (logistic_s16(v.astype(np.int16), SIGMOID).astype(np.int64) for v in (i, f, o))
    g = tanh_s16(g.astype(np.int16), GATE_TANH).astype(np.int64)
    kept = _mul(f, c, p.forget_multiplier, p.forget_shift, 0, INT16_MIN, INT16_MAX, p.rounding)
    added = _mul(i, g, p.update_multiplier, p.update_shift, 0, INT16_MIN, INT16_MAX, p.rounding)
    c = _sat16(kept + added)
    if p.cell_clip > 0:
        c = np.clip(c, -p.cell_clip, p.cell_clip)
    squashed = tanh_s16(c.astype(np.int16), p.cell_tanh).astype(np.int64)
    h = _mul(squashed, o, p.hidden_multiplier, p.hidden_shift, p.output_zero_point, -128, 127, p.rounding)
    return LstmState(h.astype(np.int8), c.astype(np.int16))


def lstm_s8(x: npt.ArrayLike, kernel: npt.ArrayLike, recurrent: npt.ArrayLike, bias: npt.ArrayLike | None,
            p: LstmS8Params, state: LstmState | None = None) -> tuple[npt.NDArray[np.int8], LstmState]:
    """``x`` ``[..., T, F]`` int8 -> every step's ``h`` ``[..., T, U]`` int8, and the final state.

    ``kernel`` is ``[F, 4U]`` and ``recurrent`` ``[U, 4U]`` int8 (symmetric),
    ``bias`` ``[4U]`` int32; without ``state`` the sequence starts from TFLM's
    reset state.
    """
    values = stored_values(x, "lstm input", np.int8)
    w = stored_values(kernel, "lstm kernel", np.int8)
    r = stored_values(recurrent, "lstm recurrent kernel", np.int8)
    b = None if bias is None else np.asarray(bias, dtype=np.int64)
    units = r.shape[0]
    current = state or zero_state_s8(values.shape[:-2], units, p.output_zero_point)
    outputs = []
    for t in range(values.shape[-2]):
        current = lstm_s8_step(values[..., t, :], w, r, b, p, current)
        outputs.append(current.hidden)
    return np.stack(outputs, axis=-2), current


def _sigmoid_f32(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    one = np.float32(1.0)
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x below about -88: the sigmoid is 0
        return (one / (one + np.exp(-x))).astype(np.float32)


def lstm_f32(x: npt.ArrayLike, kernel: npt.ArrayLike, recurrent: npt.ArrayLike, bias: npt.ArrayLike | None,
             cell_clip: float = 0.0, state: LstmState | None = None) -> tuple[npt.NDArray[np.float32], LstmState]:
    """The float kernel, in float32: the same steps, ``FC(x) + b + FC(h)``, sigmoid, tanh, clip."""
    values = np.asarray(x, dtype=np.float32)
    w, r = np.asarray(kernel, dtype=np.float32), np.asarray(recurrent, dtype=np.float32)
    b = np.zeros(w.shape[-1], np.float32) if bias is None else np.asarray(bias, dtype=np.float32)
    units = r.shape[0]
    batch = values.shape[:-2]
    h = np.zeros((*batch, units), np.float32) if state is None else np.asarray(state.hidden, np.float32)
    c = np.zeros((*batch, units), np.float32) if state is None else np.asarray(state.cell, np.float32)
    outputs = []
    for t in range(values.shape[-2]):
        gates = ((values[..., t, :] @ w + b) + h @ r).astype(np.float32)
        i, f, g, o = (gates[..., k * units:(k + 1) * units] for k in range(4))
        c = (_sigmoid_f32(f) * c + _sigmoid_f32(i) * np.tanh(g)).astype(np.float32)
        if cell_clip > 0:
            c = np.clip(c, -np.float32(cell_clip), np.float32(cell_clip))
        h = (np.tanh(c) * _sigmoid_f32(o)).astype(np.float32)
        outputs.append(h)
    return np.stack(outputs, axis=-2), LstmState(h, c)
