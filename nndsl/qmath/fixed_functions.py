"""Power-of-two fixed point tanh, sigmoid and softmax (qM.N in, qM.N out), integer only, written once.

The real functions are sampled at build time into tables (computed here, in
float64, and handed to the C as constant arrays); the kernels only index,
interpolate, shift and divide integers. ``backends/c/runtime/fixed_functions.c``
mirrors :func:`function_q` and :func:`softmax_q`.

**tanh and sigmoid.** Both are symmetric: ``tanh(-x) = -tanh(x)`` and
``sigmoid(-x) = 1 - sigmoid(x)``, so the table covers ``|x|`` only: entry ``i``
is the function at ``|x| = i * 2^s`` input units. An input of at most 10 bits
(q7, q3.4...) gets one entry per value (``s = 0``), the output already rounded:
the result is the exact value correctly rounded. A wider one gets at most 512
intervals up to where the function is within a quarter output unit of its
limit (beyond, the last entry), values with 8 more fraction bits than the
output, and linear interpolation between them; each entry is lowered by
``h^2 f''/16`` (``h`` the step in real units), which centres the error of the
chords (``h^2 |f''| / 8`` on one side) on zero.

*Error bound* (tested on every input of several formats): the output differs
from the exact function, clipped to the output format's range, by at most
1/2 output unit for inputs of up to 10 bits, and by less than 1 output unit
for any input format (at most 0.5 from the final rounding, under 0.39 from the
interpolation, under 2^-7 from the tables' own rounding).

**softmax.** Over the last axis, ``exp(beta * (x_j - max))`` as
``2^-(u)`` with ``u = (max - x_j) * beta * 2^-N_in / ln 2`` in 40 fraction
bits (an int64 product of the integer difference and a multiplier). ``2^-u``
is ``2^-frac(u)`` from a 257-entry table (Q30, linear interpolation on 16 bits
of the fraction, nodes lowered by half the chord error) shifted right by
``floor(u)`` with rounding. The exponentials (Q30) are summed in int64 and each
output is the correctly rounded quotient ``e_j * 2^N_out / sum``.

*Error bound*: relative to the exact probabilities clipped to the output
format, at most ``0.5 + 2^(N_out - 19) + (depth + 1) * 2^(N_out - 31)`` output
units (the final rounding; each exponential's relative error, under 2^-20, in
the value and in the sum; half a Q30 unit per exponential): below 0.6 for any
output format (at most 15 fraction bits) and rows of up to 1000 values, below
1 for rows of up to 28,000.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nndsl.qmath.requant import ArrayLike, IntArray, round_half_away_array, rounding_divide_by_pot

FloatArray = npt.NDArray[np.float64]

TABLE_INTERVALS = 512  # the most intervals of a tanh/sigmoid table (513 entries)
EXTRA_BITS = 8  # fraction bits an interpolated table keeps beyond the output's
TAIL_MARGIN = 2  # the table reaches where the function is within 2^-(N_out + 2) of its limit

EXP_BITS = 30  # softmax: exponentials in Q30
LOG2_BITS = 40  # the difference in log2 units, 40 fraction bits
EXP2_INDEX_BITS = 8  # 256 intervals of 2^-f, f in [0, 1]
EXP2_INTERP_BITS = 16  # interpolation on the next 16 bits of f
MAX_EXP_SHIFT = 30  # 2^-u with u >= 31 is below half a Q30 unit: 0


class QFunction(enum.Enum):
    """The fixed-point element functions: their real definition and what the tables need of it."""

    TANH = "tanh"
    SIGMOID = "sigmoid"

    def real(self, x: FloatArray) -> FloatArray:
        """The exact function in float64 (the oracle the tables are sampled from)."""
        if self is QFunction.TANH:
            return np.tanh(x)
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # 1 / (1 + e^-x), without overflow

    def second_derivative(self, x: FloatArray) -> FloatArray:
        y = self.real(x)
        if self is QFunction.TANH:
            return -2.0 * y * (1.0 - y * y)
        return y * (1.0 - y) * (1.0 - 2.0 * y)

    def tail(self, out_frac: int) -> float:
        """The real ``x`` beyond which the function is within ``2^-(out_frac + TAIL_MARGIN)`` of its limit 1."""
        gap = 2.0 ** -(out_frac + TAIL_MARGIN)
        return math.atanh(1.0 - gap) if self is QFunction.TANH else math.log((1.0 - gap) / gap)


@dataclass(frozen=True)
class FunctionQParams:
    """tanh or sigmoid from one qM.N format to another: the table and how to read it.

    ``table[i]`` is the function at ``|x| = i * 2^step_shift`` input units, with
    ``N_out + extra_bits`` fraction bits, non-decreasing; ``reflect`` gives the
    negative side (``f(-x) = reflect - f(x)``: 0 for tanh, 1 for sigmoid).
    """

    step_shift: int
    extra_bits: int
    reflect: int
    table: tuple[int, ...]
    act_min: int
    act_max: int


def function_q_params(function: QFunction, in_frac: int, in_bits: int, out_frac: int,
                      out_bounds: tuple[int, int]) -> FunctionQParams:
    """The table of ``function`` from a format of ``in_bits`` bits (``in_frac`` fraction bits) to ``out_frac``."""
    largest = 1 << (in_bits - 1)  # the largest |x|: that of the most negative value
    if largest <= TABLE_INTERVALS:
        step, extra, count = 0, 0, largest
    else:
        reach = min(largest, math.ceil(function.tail(out_frac) * 2.0**in_frac))
        step = next(s for s in range(in_bits) if -(-reach >> s) <= TABLE_INTERVALS)
        count, extra = -(-reach >> step), EXTRA_BITS
    x = np.arange(count + 1, dtype=np.float64) * 2.0 ** (step - in_frac)
    values = function.real(x)
    if step > 0:
        h = 2.0 ** (step - in_frac)
        values = values - h * h / 16.0 * function.second_derivative(x)
    table = round_half_away_array(values * 2.0 ** (out_frac + extra)).astype(np.int64)
    assert np.all(np.diff(table) >= 0), "the table must be non-decreasing (the range analysis relies on it)"
    reflect = 0 if function is QFunction.TANH else 1 << (out_frac + extra)
    return FunctionQParams(step, extra, reflect, tuple(int(v) for v in table), *out_bounds)


def function_error_bound(in_bits: int) -> float:
    """The documented bound, in output units, on ``|function_q(x) - f(x)|`` (``f`` clipped to the output format):
    1/2 where every input has its own table entry (correct rounding), below 1 otherwise."""
    return 0.5 if 1 << (in_bits - 1) <= TABLE_INTERVALS else 1.0


def function_q(x: ArrayLike, params: FunctionQParams) -> IntArray:
    """tanh or sigmoid of qM.N values: the table read at ``|x|``, interpolated, reflected, rounded, clamped.

    Non-decreasing in ``x`` (the table is), so its range is its values at the ends of its input's.
    """
    values = np.asarray(x, dtype=np.int64)
    table = np.asarray(params.table, dtype=np.int64)
    last = table.size - 1
    step = params.step_shift
    magnitude = np.abs(values)
    index = np.minimum(magnitude >> step, last)
    fraction = magnitude & ((1 << step) - 1)
    slope = table[np.minimum(index + 1, last)] - table[index]
    inside = table[index] + rounding_divide_by_pot(slope * fraction, step)
    value = np.where(magnitude >= last << step, table[last], inside)
    value = np.where(values < 0, params.reflect - value, value)
    result: IntArray = np.clip(rounding_divide_by_pot(value, params.extra_bits), params.act_min, params.act_max)
    return result


# -- softmax -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxQParams:
    """softmax from a qM.N format to another.

    ``multiplier`` turns an integer difference from the row maximum into log2
    units with ``LOG2_BITS`` fraction bits; differences above ``diff_max`` have
    an exponential of 0. ``exp2_table[i]`` is ``2^-(i/256)`` in Q30 (nodes lowered
    by half the chord error), non-increasing.
    """

    multiplier: int
    diff_max: int
    out_frac: int
    out_max: int
    exp2_table: tuple[int, ...]


def exp2_table() -> tuple[int, ...]:
    """``2^-f`` for ``f = i / 256``, ``i = 0..256``, in Q30, each node lowered by ``h^2 f''/16``."""
    f = np.arange((1 << EXP2_INDEX_BITS) + 1, dtype=np.float64) / (1 << EXP2_INDEX_BITS)
    h = math.log(2.0) / (1 << EXP2_INDEX_BITS)  # the step in real units of the exponent
    values = 2.0**-f * (1.0 - h * h / 16.0) * 2.0**EXP_BITS
    return tuple(int(v) for v in round_half_away_array(values))


def softmax_q_params(beta: float, in_frac: int, in_bits: int, out_frac: int, out_max: int) -> SoftmaxQParams:
    """The parameters of a softmax with ``beta`` from ``in_frac`` fraction bits (``in_bits`` wide)."""
    limit = (MAX_EXP_SHIFT + 1) << LOG2_BITS  # u at which the exponential is 0
    real = beta * 2.0**-in_frac / math.log(2.0) * 2.0**LOG2_BITS
    multiplier = int(min(math.floor(real + 0.5), limit))
    largest = (1 << in_bits) - 1  # the largest difference two values of the format can have
    diff_max = largest if multiplier == 0 else min(largest, (limit - 1) // multiplier)
    return SoftmaxQParams(multiplier, diff_max, out_frac, out_max, exp2_table())


def softmax_error_bound(out_frac: int, depth: int) -> float:
    """The documented bound, in output units, on a softmax output's distance from the exact probability
    (clipped to the output format): the final rounding, the exponentials' relative error, their Q30 rounding."""
    return 0.5 + 2.0 ** (out_frac - 19) + (depth + 1) * 2.0 ** (out_frac - 31)


def softmax_exponentials(diff: ArrayLike, params: SoftmaxQParams) -> IntArray:
    """``exp(-beta * diff * 2^-N_in)`` in Q30 for differences ``diff >= 0`` from the row maximum."""
    d = np.asarray(diff, dtype=np.int64)
    kept = d <= params.diff_max
    u = np.where(kept, d, 0) * params.multiplier
    shift = u >> LOG2_BITS
    fraction = u & ((1 << LOG2_BITS) - 1)
    index = fraction >> (LOG2_BITS - EXP2_INDEX_BITS)
    between = (fraction >> (LOG2_BITS - EXP2_INDEX_BITS - EXP2_INTERP_BITS)) & ((1 << EXP2_INTERP_BITS) - 1)
    table = np.asarray(params.exp2_table, dtype=np.int64)
    drop = table[index] - table[index + 1]  # >= 0: 2^-f falls
    value = table[index] - ((drop * between + (1 << (EXP2_INTERP_BITS - 1))) >> EXP2_INTERP_BITS)
    exps: IntArray = np.where(kept, (value + ((np.int64(1) << shift) >> 1)) >> shift, 0)
    return exps


def softmax_q(x: ArrayLike, params: SoftmaxQParams) -> IntArray:
    """softmax over the last axis of qM.N values: ``round(e_j * 2^N_out / sum(e))``, clamped to the format."""
    values = np.asarray(x, dtype=np.int64)
    exps = softmax_exponentials(values.max(axis=-1, keepdims=True) - values, params)
    total = exps.sum(axis=-1, keepdims=True)
    quotient = (exps * (2 << params.out_frac) + total) // (2 * total)
    result: IntArray = np.minimum(quotient, params.out_max)
    return result


__all__ = [
    "FunctionQParams", "QFunction", "SoftmaxQParams", "exp2_table", "function_error_bound", "function_q",
    "function_q_params", "softmax_error_bound", "softmax_exponentials", "softmax_q", "softmax_q_params",
]
