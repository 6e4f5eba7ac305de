"""TensorFlow Lite Micro's RESIZE_NEAREST_NEIGHBOR: each output row and column copies one input row and column.

Which one is ``GetNearestNeighbor``'s float32 arithmetic, computed here once
per row and column at build time (both backends then only copy):

    scale = (in - 1) / (out - 1)   with align_corners (and out > 1), else in / out
    index = round((o + offset) * scale)   with align_corners (halves away from zero),
            floor((o + offset) * scale)   otherwise;  offset = 0.5 with half_pixel_centers
    index = min(index, in - 1), and with half_pixel_centers max(index, 0)

Values move unchanged (int8, int16, float32), so an integer output keeps its
input's quantisation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> tuple[int, ...]:
    """The input index each of ``out_size`` outputs along one axis copies."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5) if half_pixel_centers else np.float32(0.0)
    indices = []
    for o in range(out_size):
        position = float((np.float32(o) + offset) * scale)  # float32 arithmetic, then exact in double
        rounded = int(math.copysign(math.floor(abs(position) + 0.5), position))  # std::round: halves away
        value = rounded if align_corners else math.floor(position)
        value = min(value, in_size - 1)
        if half_pixel_centers:
            value = max(0, value)
        indices.append(value)
    return tuple(indices)


def resize_nearest(x: npt.NDArray[Any], rows: tuple[int, ...], cols: tuple[int, ...]) -> npt.NDArray[Any]:
    """A batch ``x`` of ``[H, W, C]`` tensors resized: ``[len(rows), len(cols), C]`` each."""
    result: npt.NDArray[Any] = x[:, list(rows)][:, :, list(cols)]
    return result
