"""The data-movement ops (TRANSPOSE, SLICE, STRIDED_SLICE) as one strided walk over the input.

TensorFlow Lite Micro's reference kernels for these ops copy values without
arithmetic, so int8, int16 and float32 results are the same bytes moved. Each
of them is an affine walk: the output, read in row-major order, is

    output[i0, ..., ik] = input_flat[offset + i0 * strides[0] + ... + ik * strides[k]]

(:class:`Walk`). A transpose permutes the input's strides; a slice starts at
its begin and steps by its strides (negative ones included); an axis of one
value only moves the offset. Both backends take the same walk: the NumPy
backend through :func:`gather`, the C runtime's ``nn_gather``
(``backends/c/runtime/layout.c``) through the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Walk:
    """``counts[k]`` steps of ``strides[k]`` elements along each loop, outermost first, from ``offset``."""

    offset: int
    counts: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.counts)


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-ordered array of ``shape``."""
    return tuple(math.prod(shape[axis + 1 :]) for axis in range(len(shape)))


def simplify(offset: int, counts: tuple[int, ...], strides: tuple[int, ...]) -> Walk:
    """The same walk with loops of one step dropped and a loop merged into the one before it where the two
    step through memory as one (a contiguous run stays one loop: the C copies it in one ``memcpy``)."""
    loops: list[tuple[int, int]] = []
    for count, stride in zip(counts, strides, strict=True):
        if count == 1:
            continue
        if loops and loops[-1][1] == stride * count:
            loops[-1] = (loops[-1][0] * count, stride)
        else:
            loops.append((count, stride))
    if not loops:
        loops = [(1, 1)]
    return Walk(offset, tuple(c for c, _ in loops), tuple(s for _, s in loops))


def transpose_walk(shape: tuple[int, ...], perm: tuple[int, ...]) -> Walk:
    """TRANSPOSE: output axis ``k`` runs along input axis ``perm[k]``."""
    strides = row_major_strides(shape)
    return simplify(0, tuple(shape[p] for p in perm), tuple(strides[p] for p in perm))


def slice_walk(shape: tuple[int, ...], begin: tuple[int, ...], step: tuple[int, ...],
               count: tuple[int, ...]) -> Walk:
    """A strided slice already resolved per input axis: ``count`` values from ``begin``, ``step`` apart."""
    strides = row_major_strides(shape)
    offset = sum(b * s for b, s in zip(begin, strides, strict=True))
    return simplify(offset, count, tuple(st * s for st, s in zip(step, strides, strict=True)))


def walk_indices(walk: Walk) -> npt.NDArray[np.int64]:
    """The flat input index of every output value, in output order."""
    index = np.full((), walk.offset, dtype=np.int64)
    for count, stride in zip(walk.counts, walk.strides, strict=True):
        index = index[..., np.newaxis] + np.arange(count, dtype=np.int64) * stride
    return index.reshape(-1)


def gather(x: npt.NDArray[Any], walk: Walk) -> npt.NDArray[Any]:
    """The walk over each row of a batch ``x`` (``(batch, ...)``): ``(batch, walk.size)``, the values unchanged."""
    flat = x.reshape((x.shape[0], -1))
    result: npt.NDArray[Any] = flat[:, walk_indices(walk)]
    return result


# --------------------------------------------------------------------------
# STRIDED_SLICE's begin, end and masks (tensorflow/lite/kernels/internal/strided_slice_logic.h)
# --------------------------------------------------------------------------

INT_LOWEST = -(2**31)
INT_MAX = 2**31 - 1


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def start_for_axis(size: int, begin: int, stride: int, masked: bool) -> int:
    """TFLite's ``StartForAxis``: the begin mask takes the whole axis, negative begins count from the end,
    then the begin is clamped to ``[0, size]`` (``[-1, size - 1]`` for a negative stride)."""
    start = (INT_LOWEST if stride > 0 else INT_MAX) if masked else begin
    if start < 0:
        start += size
    return _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)


def stop_for_axis(size: int, end: int, stride: int, masked: bool, shrink: bool, start: int) -> int:
    """TFLite's ``StopForAxis``: a shrunk axis stops one past its start; otherwise as ``start_for_axis``."""
    if shrink:
        return start + 1
    stop = (INT_MAX if stride > 0 else INT_LOWEST) if masked else end
    if stop < 0:
        stop += size
    return _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)


def strided_count(start: int, stop: int, stride: int) -> int:
    """Values a strided slice takes on one axis: ``ceil((stop - start) / stride)``, at least 0."""
    return max(0, -((start - stop) // stride))
