"""Sliding windows over batches of channels-last tensors, for convs and pools.

Shared by the NumPy backend (values) and the range analysis (interval
bounds): both sum or reduce over the same kernel taps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir

Array = npt.NDArray[Any]


def as_2d(x: Array, window: ir.Window) -> Array:
    """[B, W, C] as [B, 1, W, C]: 1-D windows run as 2-D ones of height 1."""
    return x[:, np.newaxis] if window.rank == 1 else x


def window_taps(x: Array, window: ir.Window, out_hw: ir.Pair, fill: float) -> list[tuple[ir.Pair, Array]]:
    """For each kernel tap, the input values it sees at every output position ([B, OH, OW, C])."""
    flat = window.as_2d()
    size, stride, dilation, pads = flat.size, flat.stride, flat.dilation, flat.pads
    padded = as_2d(x, window)
    if any(pads[0]) or any(pads[1]):  # np.pad copies even when there is nothing to pad
        padded = np.pad(padded, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    taps = []
    for ky in range(size[0]):
        for kx in range(size[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            view = padded[:, y0 : y0 + (out_hw[0] - 1) * stride[0] + 1 : stride[0],
                          x0 : x0 + (out_hw[1] - 1) * stride[1] + 1 : stride[1], :]
            taps.append(((ky, kx), view))
    return taps


def output_hw(op: ir.Op, window: ir.Window) -> ir.Pair:
    return window.as_2d().spatial(op.output.type.shape)
