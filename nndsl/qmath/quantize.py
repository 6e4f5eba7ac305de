"""TensorFlow Lite Micro's QUANTIZE from float and DEQUANTIZE to float: the edges of a float-I/O model.

A converted model whose input or output stays float (the converter's default
without ``inference_input_type``) quantises its input and dequantises its
output inside. :func:`affine_quantize` mirrors TFLM's ``AffineQuantize``:
``round(x / float(scale))`` in float32, halves away from zero (``TfLiteRound``),
plus the zero point, clamped to the storage type. :func:`dequantize` mirrors
``Dequantize``: ``float(double(scale) * (q - zero_point))``, which equals the
float32 product ``scale * float(q - zero_point)`` (the double product of a
float32 and an integer below 2^24 is exact, so both round it once).

Where TFLM's ``static_cast<int32_t>`` is undefined (a quotient beyond int32,
or NaN) nndsl saturates, and NaN becomes the zero point; ``backends/c/runtime/
quantize.c`` does the same without libm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.qmath.requant import float32_scale


def affine_quantize(x: npt.ArrayLike, scale: float, zero_point: int,
                    storage: type[np.signedinteger[Any]]) -> npt.NDArray[Any]:
    """Float values to ``storage`` (int8 or int16) as TFLM's ``AffineQuantize``."""
    quotient = np.asarray(x, dtype=np.float32) / float32_scale("scale", scale)
    wide = np.nan_to_num(quotient.astype(np.float64), nan=0.0, posinf=np.inf, neginf=-np.inf)
    rounded = np.sign(wide) * np.floor(np.abs(wide) + 0.5)  # exact for a float32 quotient
    info = np.iinfo(storage)
    stored: npt.NDArray[Any] = np.clip(rounded + zero_point, info.min, info.max).astype(storage)
    return stored


def dequantize(q: npt.ArrayLike, scale: float, zero_point: int) -> npt.NDArray[np.float32]:
    """Stored values to float32 as TFLM's ``Dequantize``."""
    centred = (np.asarray(q, dtype=np.int64) - zero_point).astype(np.float32)
    return (float32_scale("scale", scale) * centred).astype(np.float32)
