"""REDUCE_MAX and MEAN over any axes, as two walks over the input.

The output walks the kept axes (in order), each output value the reduced axes
(:class:`~nndsl.qmath.layout.Walk` both, offsets in input values), so any
choice of axes is one loop over outputs and one over the values each reduces,
in the C as here. The integer mean is TensorFlow Lite Micro's
``QuantizedMeanOrSum`` (:func:`nndsl.qmath.pooling.mean_s8` and
``mean_s16``): the int32 sum of the values (order does not change it), minus
``count * input_zero_point``, then ``MultiplyByQuantizedMultiplier`` with the
``1 / count`` folded in, plus the output zero point, clamped. Tested against
TFLM, this one path serves every axis choice, ``keep_dims`` either way, and
equal or different input and output quantisations. The max compares stored
values (input and output share a quantisation); TFLM's REDUCE_MAX has no
int16 kernel. The float mean sums in float32 in walk order, then divides by
the count, as the C does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.qmath.layout import Walk, row_major_strides, simplify, walk_indices


def reduce_walks(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[Walk, Walk]:
    """(over the outputs, over the values of one output) for reducing ``shape`` over ``axes``."""
    strides = row_major_strides(shape)
    kept = [a for a in range(len(shape)) if a not in axes]
    outer = simplify(0, tuple(shape[a] for a in kept), tuple(strides[a] for a in kept))
    inner = simplify(0, tuple(shape[a] for a in axes), tuple(strides[a] for a in axes))
    return outer, inner


def reduced_values(x: npt.NDArray[Any], outer: Walk, inner: Walk) -> npt.NDArray[Any]:
    """A batch ``x`` as ``(batch, outputs, values per output)``, each row's values in walk order."""
    flat = x.reshape((x.shape[0], -1))
    index = walk_indices(outer)[:, np.newaxis] + walk_indices(inner)[np.newaxis, :]
    result: npt.NDArray[Any] = flat[:, index]
    return result


def reduce_max(x: npt.NDArray[Any], outer: Walk, inner: Walk) -> npt.NDArray[Any]:
    """The largest stored value of each output's values: ``(batch, outputs)``."""
    result: npt.NDArray[Any] = reduced_values(x, outer, inner).max(axis=-1)
    return result


def mean_f32(x: npt.NDArray[Any], outer: Walk, inner: Walk) -> npt.NDArray[np.float32]:
    """The float32 sum of each output's values, added in walk order, divided by their count."""
    values = reduced_values(x, outer, inner).astype(np.float32)
    total = np.cumsum(values, axis=-1, dtype=np.float32)[..., -1]  # one value after the other, as the C adds
    result: npt.NDArray[np.float32] = (total / np.float32(inner.size)).astype(np.float32)
    return result
