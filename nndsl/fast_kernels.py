"""Which int8 layers the C runtime's fast kernels serve, and which of them may write over their input.

The matrix kernel (``runtime/matmul.c``: dense and convolution layers) and the
depthwise kernel (``runtime/depthwise.c``) compute exactly what the plain
loops compute, but only under conditions on the layer's numbers: the input
offset folded into the bias must keep every partial sum inside int32, and the
requantisation's single-shift form needs multipliers above 2^30, right shifts
and accumulators whose double fits int32. Both the memory planner (which lets
a layer run in place only when its kernel allows it) and the C emitter (which
picks the kernel) ask here, so they cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.qmath.requant import Rounding
from nndsl.types import DType

# The stack a convolution gathers window taps in for the matrix kernel: as many positions as fit (two at
# least, so a window of more than half of it runs the plain loops instead).
GATHER_BYTES = 1024
MAX_GATHERED_TAPS = GATHER_BYTES // 2
# A depthwise layer running in place first copies four channels of its input (its whole height and width)
# to the stack; a larger copy is not worth the arena it saves.
IN_PLACE_COPY_BYTES = 1024


def int8_requant(op: ir.Dense | ir.Conv) -> ir.Requant | None:
    """The requantisation of a layer the int8 runtime kernels may serve: int8 values and weights, TFLM's
    scheme (not fixed point, not 16x8)."""
    int8 = all(t.type.dtype is DType.I8 for t in (op.input, op.output, op.kernel))
    return op.requant if int8 and isinstance(op.requant, ir.Requant) else None


def accumulator_bounds(weights: npt.NDArray[np.generic], start: npt.NDArray[np.generic],
                       largest_input: int) -> npt.NDArray[np.int64]:
    """The largest size any partial sum of each row of ``weights`` can reach: ``|start| + largest_input *
    sum |w|``."""
    rows: npt.NDArray[np.int64] = np.abs(weights.astype(np.int64)).sum(axis=1)
    return np.abs(start.astype(np.int64).reshape(-1)) + largest_input * rows


def folded_bias(weights: npt.NDArray[np.generic], bias: npt.NDArray[np.generic] | None,
                input_offset: int) -> npt.NDArray[np.int32] | None:
    """``bias + input_offset * row sums``: the input offset taken out of the inner loop, or None.

    ``weights`` is ``[units][depth]``. The sum of products then starts from this bias; None when a partial
    sum could leave int32 (int8 inputs are at most 128 in size).
    """
    rows = weights.astype(np.int64)
    start = np.zeros(rows.shape[0], np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    folded: npt.NDArray[np.int64] = start + input_offset * rows.sum(axis=1)
    if int(accumulator_bounds(weights, folded, 128).max(initial=0)) >= 2**31:
        return None
    return folded.astype(np.int32)


def scaling_fits(bounds: npt.NDArray[np.int64], requant: ir.Requant) -> bool:
    """Whether the runtime kernels' requantisation (``nn_mat_scale``: one multiply-accumulate, two shifts)
    serves a layer whose accumulators stay within ``bounds`` (one per channel): every multiplier above
    2^30, every shift a right shift, twice every accumulator inside int32. Anything else (a scale of 1/2
    or more, an exact power of two, a zero multiplier) keeps the plain loops."""
    if requant.rounding is Rounding.SINGLE:
        return True  # the kernels call nn_mbqm itself
    simple = all(m > 2**30 for m in requant.multipliers) and all(shift < 0 for shift in requant.shifts)
    return simple and 2 * int(bounds.max(initial=0)) < 2**31


def unit_rows(op: ir.Dense | ir.Conv) -> npt.NDArray[np.generic]:
    """The weights as ``[units][depth]`` rows (a convolution's taps in ``[ky][kx][c]`` order)."""
    assert op.kernel.data is not None
    units = op.output.type.shape[-1]
    data = op.kernel.data
    return np.ascontiguousarray(data.reshape(-1, units).T)


def is_pointwise(op: ir.Conv) -> bool:
    """A 1x1 window, stride 1, no padding: each output position is a matrix product of its input pixel."""
    window = op.window.as_2d()
    return window.size == (1, 1) and window.stride == (1, 1) and window.pads == ((0, 0), (0, 0))


def matrix_bias(op: ir.Dense | ir.Conv) -> npt.NDArray[np.int32] | None:
    """The folded bias when the matrix kernel serves ``op``, else None."""
    requant = int8_requant(op)
    if requant is None or (isinstance(op, ir.Conv) and op.depthwise):
        return None
    if isinstance(op, ir.Conv) and not is_pointwise(op) and op.kernel.type.size // op.output.type.shape[-1] \
            > MAX_GATHERED_TAPS:
        return None
    weights = unit_rows(op)
    bias = op.bias.data if op.bias is not None else None
    folded = folded_bias(weights, bias, requant.input_offset)
    if folded is None or not scaling_fits(accumulator_bounds(weights, folded, 128), requant):
        return None
    return folded


def depthwise_bias(op: ir.Conv) -> npt.NDArray[Any] | None:
    """The bias (zeros if the layer has none) when the depthwise kernel serves ``op``, else None: one output
    channel per input channel, and accumulators (input plus offset, at most 255 in size) that fit."""
    requant = int8_requant(op)
    channels = op.output.type.shape[-1]
    if requant is None or not op.depthwise or op.input.type.shape[-1] != channels or op.kernel.data is None:
        return None
    bias = op.bias.data if op.bias is not None and op.bias.data is not None else np.zeros(channels, np.int32)
    per_channel = op.kernel.data.reshape(-1, channels).T
    return bias if scaling_fits(accumulator_bounds(per_channel, bias, 255), requant) else None


def runs_in_place(op: ir.Op) -> bool:
    """Whether ``op``'s kernel may write its output over its own input (which nothing reads afterwards).

    A pointwise convolution with no more output than input channels, gathered position by position before
    any write, only overwrites inputs it has read; a depthwise layer whose output has its input's shape
    (stride 1, same padding) works four channels at a time from a copy of them, and writes only those.
    """
    if not isinstance(op, ir.Conv) or op.output.type.nbytes > op.input.type.nbytes:
        return False
    if op.depthwise:
        window = op.window.as_2d()
        spatial = math.prod(window.spatial(op.input.type.shape))
        same_shape = op.output.type.shape == op.input.type.shape
        return same_shape and 4 * spatial <= IN_PLACE_COPY_BYTES and depthwise_bias(op) is not None
    return is_pointwise(op) and op.input.type.shape[-1] <= MAX_GATHERED_TAPS and matrix_bias(op) is not None
