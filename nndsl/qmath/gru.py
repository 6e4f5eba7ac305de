"""The GRU layer (Keras ``GRU`` semantics), in float32 and in power-of-two fixed point, written once.

Per time step ``t``, with the gates in Keras's column order ``z, r, h`` of the
kernels ``W`` ``[features, 3 * units]`` and ``U`` ``[units, 3 * units]`` and the
input and recurrent biases ``b``, ``c`` (``c`` is 0 unless ``reset_after``)::

    z = sigmoid(x W_z + b_z + h U_z + c_z)
    r = sigmoid(x W_r + b_r + h U_r + c_r)
    h~ = tanh(x W_h + b_h + r * (h U_h + c_h))       reset_after (Keras's default)
    h~ = tanh(x W_h + b_h + (r * h) U_h)             reset_after=false
    h' = z * h + (1 - z) * h~

The state ``h`` starts at 0. Both backends follow these functions: the NumPy
backend calls them, ``backends/c/runtime/gru.c`` mirrors them.

**Fixed point** (:func:`gru_q`). The input has ``N_x`` fraction bits, the
kernels ``N_w`` and ``N_u``, the state and output the output format's ``N_h``
(q7 or q15: ``|h| < 1``). Each step:

1. the state is read in Q15 (``h15 = h << (15 - N_h)``, exact);
2. each gate's input sum ``x W + b`` (``N_x + N_w`` fraction bits) and
   recurrent sum ``h15 U + c`` (``15 + N_u``) are exact int64 sums; both are
   aligned (a left shift, exact) to ``F = max`` of the two and added;
3. the pre-activation goes to q4.11 by a rounding right shift (half away
   from zero, :func:`nndsl.qmath.shift.shift_round`), saturated to int16, and
   the table functions of :mod:`nndsl.qmath.fixed_functions` give
   ``z, r`` (sigmoid, Q15 in ``[0, 32767]``) and ``h~`` (tanh, Q15 in
   ``[-32767, 32767]``); with ``reset_after``, ``r * (h15 U_h + c_h)`` is the
   product rounded right by 15 bits, then aligned; otherwise ``r * h15`` rounded right by
   15 bits is the vector the recurrent kernel multiplies;
4. ``h' = h~ + round((z * (h15 - h~)) >> 15)``: ``|z| < 1``, so ``h'`` lies
   between ``h15`` and ``h~`` and ``|h'| <= 32767``: **the state is bounded by
   1 in magnitude by construction**, at every step, whatever the input;
5. ``h'`` is rounded to ``N_h`` fraction bits (the state kept and the output).

The sums are int64 in both backends; lowering proves from the weights'
absolute sums that none of them, aligned, leaves int62 (``GruQParams``).

*Error* (against the float GRU on the same quantised weights and inputs):
one step adds the tables' error (under 1 Q15 unit), the products' rounding
(half a Q15 unit each), the pre-activations' rounding to q4.11 (``2^-12``,
through the gates' slopes of at most 1) and the final rounding to ``N_h``
(half a unit). :func:`error_bound` sums these per step over ``T`` steps:
``T * (2.5 * 2^-15 + 2^-(N_h + 1) + 3 * 2^-12)``. It is not a proof for every
network: an error carried in ``h`` is multiplied by the step's gain in ``h``,
which is below 1 for weights of moderate size (the GRU forgets) but not for
any weights. ``tests/test_gru.py`` checks it on seeded networks, q7 and q15,
both reset forms (measured: about a third of the bound for q7, a twentieth
for q15, over 6 steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.qmath.fixed_functions import FunctionQParams, QFunction, function_q, function_q_params
from nndsl.qmath.requant import INT16_MAX, INT16_MIN, IntArray, rounding_divide_by_pot

Array = npt.NDArray[Any]

GATE_FRAC = 11  # the gates' pre-activations in q4.11 (sigmoid and tanh are flat beyond |x| = 16)
UNIT_FRAC = 15  # the gates and the state inside a step: Q15
SUM_LIMIT = 2**62  # every aligned int64 sum stays below this (proved by gru_q_params)


@dataclass(frozen=True, eq=False)
class GruWeights:
    """One GRU's weights, gates in Keras's order z, r, h: ``kernel`` ``[F, 3U]``, ``recurrent`` ``[U, 3U]``,
    the input bias ``bias`` and the recurrent bias ``recurrent_bias`` ``[3U]`` (zeros where absent)."""

    kernel: Array
    recurrent: Array
    bias: Array
    recurrent_bias: Array

    @property
    def units(self) -> int:
        return int(self.recurrent.shape[0])


def _sigmoid(v: Array) -> Array:
    with np.errstate(over="ignore"):  # exp overflows to inf below -88: 1 / inf is the right 0
        result: Array = (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32)
    return result


def gru_f32(x: Array, h: Array, w: GruWeights, reset_after: bool) -> tuple[Array, Array]:
    """The float32 GRU over a batch ``x`` ``[B, T, F]`` from states ``h`` ``[B, U]``: every step's state
    ``[B, T, U]`` and the last one."""
    units = w.units
    kernel, recurrent = w.kernel.astype(np.float32), w.recurrent.astype(np.float32)
    bias, recurrent_bias = w.bias.astype(np.float32), w.recurrent_bias.astype(np.float32)
    state = h.astype(np.float32)
    steps = []
    for t in range(x.shape[1]):
        mx = x[:, t].astype(np.float32) @ kernel + bias
        mh = state @ recurrent[:, : 2 * units] + recurrent_bias[: 2 * units]
        z = _sigmoid(mx[:, :units] + mh[:, :units])
        r = _sigmoid(mx[:, units : 2 * units] + mh[:, units:])
        if reset_after:
            candidate = r * (state @ recurrent[:, 2 * units :] + recurrent_bias[2 * units :])
        else:
            candidate = (r * state) @ recurrent[:, 2 * units :]
        hh = np.tanh(mx[:, 2 * units :] + candidate)
        state = (z * state + (np.float32(1) - z) * hh).astype(np.float32)
        steps.append(state)
    return np.stack(steps, axis=1), state


# -- fixed point -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GruQParams:
    """A fixed-point GRU's shifts and tables.

    ``left_x``/``left_h`` align the input and recurrent sums to their common
    fraction bits, ``gate_shift`` takes that to q4.11 (``reset_after=false``:
    ``left_rh`` aligns the ``(r * h) U_h`` sum instead of ``left_h``);
    ``out_shift`` takes the Q15 state to the output format (``N_h``).
    """

    left_x: int
    left_h: int
    left_rh: int
    gate_shift: int
    out_shift: int
    out_min: int
    out_max: int
    sigmoid: FunctionQParams
    tanh: FunctionQParams


def _sum_bound(values: Array, largest: int, bias: Array, terms_axis: int = 0) -> int:
    """The largest ``|sum_i v_i * w_i + bias|`` over ``|v_i| <= largest``, per column, maximised."""
    column = np.abs(values.astype(np.int64)).sum(axis=terms_axis) * largest + np.abs(bias.astype(np.int64))
    return int(column.max(initial=0))


def gru_q_params(w: GruWeights, in_frac: int, in_largest: int, kernel_frac: int, recurrent_frac: int,
                 out_frac: int, out_bounds: tuple[int, int]) -> GruQParams:
    """The shifts of a fixed-point GRU whose biases ``w`` already carry their sums' fraction bits
    (:func:`input_sum_frac`, :func:`recurrent_sum_frac`); ``ValueError`` when an aligned sum or a product
    could leave int62 (then the weights need fewer fraction bits)."""
    fx, fh = input_sum_frac(in_frac, kernel_frac), recurrent_sum_frac(recurrent_frac)
    frac = max(fx, fh, GATE_FRAC)
    left_x, left_h = frac - fx, frac - fh
    bound_x = _sum_bound(w.kernel, in_largest, w.bias)
    bound_h = _sum_bound(w.recurrent, 1 << UNIT_FRAC, w.recurrent_bias)
    if (bound_x << left_x) + (bound_h << left_h) >= SUM_LIMIT or bound_h << UNIT_FRAC >= SUM_LIMIT:
        raise ValueError(f"a gate's sums could reach {bound_x} and {bound_h} ({fx} and {fh} fraction bits), "
                         "beyond what int64 holds once aligned: give the kernels fewer fraction bits")
    sigmoid = function_q_params(QFunction.SIGMOID, GATE_FRAC, 16, UNIT_FRAC, (0, INT16_MAX))
    tanh = function_q_params(QFunction.TANH, GATE_FRAC, 16, UNIT_FRAC, (-INT16_MAX, INT16_MAX))
    return GruQParams(left_x, left_h, left_h, frac - GATE_FRAC, UNIT_FRAC - out_frac, *out_bounds, sigmoid, tanh)


def input_sum_frac(in_frac: int, kernel_frac: int) -> int:
    """Fraction bits of a gate's input sum ``x W`` (the input bias is aligned to them)."""
    return in_frac + kernel_frac


def recurrent_sum_frac(recurrent_frac: int) -> int:
    """Fraction bits of a gate's recurrent sum ``h15 U`` (the recurrent bias is aligned to them)."""
    return UNIT_FRAC + recurrent_frac


def _shift(values: IntArray, shift: int) -> IntArray:
    """A rounding right shift (half away from zero) for ``shift > 0``, else exact."""
    return rounding_divide_by_pot(values, shift) if shift > 0 else values


def _gate_input(total: IntArray, p: GruQParams) -> IntArray:
    """An aligned pre-activation sum in q4.11, saturated to int16 (the tables' input)."""
    result: IntArray = np.clip(_shift(total, p.gate_shift), INT16_MIN, INT16_MAX)
    return result


def gru_q(x: Array, h: Array, w: GruWeights, reset_after: bool, p: GruQParams) -> tuple[IntArray, IntArray]:
    """The fixed-point GRU over a batch ``x`` ``[B, T, F]`` from states ``h`` ``[B, U]`` (the output format):
    every step's state ``[B, T, U]`` and the last one, in the output format (the module's steps 1-5)."""
    units = w.units
    kernel, recurrent = w.kernel.astype(np.int64), w.recurrent.astype(np.int64)
    bias, recurrent_bias = w.bias.astype(np.int64), w.recurrent_bias.astype(np.int64)
    state = h.astype(np.int64)
    steps = []
    for t in range(x.shape[1]):
        h15 = state << p.out_shift
        mx = (x[:, t].astype(np.int64) @ kernel + bias) << p.left_x
        mh = (h15 @ recurrent[:, : 2 * units] + recurrent_bias[: 2 * units]) << p.left_h
        z = function_q(_gate_input(mx[:, :units] + mh[:, :units], p), p.sigmoid)
        r = function_q(_gate_input(mx[:, units : 2 * units] + mh[:, units:], p), p.sigmoid)
        if reset_after:
            hu = h15 @ recurrent[:, 2 * units :] + recurrent_bias[2 * units :]
            candidate = rounding_divide_by_pot(r * hu, UNIT_FRAC) << p.left_h
        else:
            rh = rounding_divide_by_pot(r * h15, UNIT_FRAC)
            candidate = (rh @ recurrent[:, 2 * units :]) << p.left_rh
        hh = function_q(_gate_input(mx[:, 2 * units :] + candidate, p), p.tanh)
        new15 = hh + rounding_divide_by_pot(z * (h15 - hh), UNIT_FRAC)
        state = np.clip(_shift(new15, p.out_shift), p.out_min, p.out_max)
        steps.append(state)
    return np.stack(steps, axis=1), state


def state_bound_holds(new15: IntArray) -> bool:
    """The construction's claim, for tests: a Q15 state never leaves ``[-32767, 32767]``."""
    return bool(np.all(np.abs(new15) <= INT16_MAX))


def gru_macs(steps: int, features: int, units: int) -> int:
    """Multiply-accumulates of one GRU call: the three gates' input and recurrent products per step."""
    return steps * 3 * units * (features + units)


def error_bound(steps: int, out_frac: int) -> float:
    """The documented bound on ``|h_fixed - h_float|`` (real units) after ``steps`` steps."""
    return steps * (2.5 * 2.0**-UNIT_FRAC + 2.0 ** -(out_frac + 1) + 3 * 2.0 ** -(GATE_FRAC + 1))


__all__ = ["GruQParams", "GruWeights", "error_bound", "gru_f32", "gru_macs", "gru_q", "gru_q_params",
           "input_sum_frac", "recurrent_sum_frac",
           "state_bound_holds"]
