"""Every layer's values in real units: what ``nndsl run --trace`` prints and ``--dump`` writes.

Integers say little when each tensor has its own scale; these figures are
real values (``scale * (q - zero_point)``), and the saturated share is the
part of a layer's values stuck at a limit of its integer format, where
quantisation clipped them. A limit that is real 0 (the floor a fused relu
puts there) does not count: values there are exact.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.files import write_files
from nndsl.model import Model
from nndsl.types import TensorType

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class LayerStats:
    """One tensor's values over an input or a batch: real min, max, mean, and the saturated share."""

    name: str
    op: str
    type_name: str
    shape: tuple[int, ...]
    minimum: float
    maximum: float
    mean: float
    saturated: float  # share of values at a clipping limit of the format (0 for f32)


def saturated_share(tensor_type: TensorType, values: Array) -> float:
    """The share of integer values at a limit of their format; a limit that is real 0 does not count."""
    quant = tensor_type.quant
    if quant is None or not values.size or quant.axis is not None:
        return 0.0
    low, high = tensor_type.bounds
    at_limit = values == high
    if low != quant.zero_point:
        at_limit |= values == low
    return float(np.mean(at_limit))


def layer_stats(model: Model, values: dict[str, Array]) -> list[LayerStats]:
    """Figures for every tensor of a trace (``model.trace(x)``, integer values), in its order."""
    ops = {op.output.name: op.kind for op in model.graph.ops}
    types = {tensor.name: tensor.type for tensor in model.graph.tensors}
    stats = []
    for name, value in values.items():
        tensor_type = types[name]
        real = model.dequantize(value, name)
        finite = real[np.isfinite(real)] if real.size else real
        low, high, mean = (float(finite.min()), float(finite.max()), float(finite.mean())) if finite.size \
            else (float("nan"),) * 3
        stats.append(LayerStats(name, ops.get(name, "input"), tensor_type.type_name, tensor_type.shape, low, high,
                                mean, saturated_share(tensor_type, value)))
    return stats


def format_stats(stats: list[LayerStats]) -> str:
    """The table ``nndsl run --trace`` prints."""
    width = max(8, *(len(s.name) for s in stats))
    header = (f"{'layer':<{width}} {'op':<16} {'type':<6} {'shape':<14} {'min':>11} {'max':>11} {'mean':>11} "
              f"{'saturated':>9}")
    lines = [header, "-" * len(header)]
    for s in stats:
        shape = "[" + ",".join(map(str, s.shape)) + "]"
        lines.append(f"{s.name:<{width}} {s.op:<16} {s.type_name:<6} {shape:<14} {s.minimum:>11.5g} "
                     f"{s.maximum:>11.5g} {s.mean:>11.5g} {s.saturated:>9.2%}")
    lines.append("(min, max and mean in real units: scale * (q - zero_point); saturated: values at a limit of the "
                 "format that is not real 0)")
    return "\n".join(lines)


def dump_file_stem(name: str) -> str:
    """A file name for a tensor: its name, with anything but letters, digits, '.', '-' and '_' made '_'."""
    return re.sub(r"[^\w.-]", "_", name)


def dump_layers(model: Model, values: dict[str, Array], folder: Path) -> list[Path]:
    """Every tensor as ``<name>.npy`` (its values as computed) and, when quantised, ``<name>.real.npy``."""
    types = {tensor.name: tensor.type for tensor in model.graph.tensors}
    files: dict[Path, bytes] = {}
    for name, value in values.items():
        stem = folder / dump_file_stem(name)
        files[stem.with_name(stem.name + ".npy")] = _npy(value)
        if types[name].quant is not None:
            files[stem.with_name(stem.name + ".real.npy")] = _npy(model.dequantize(value, name))
    write_files(files, keep=model.compiled.dependencies)  # never over the model's own files
    return list(files)


def _npy(array: Array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
