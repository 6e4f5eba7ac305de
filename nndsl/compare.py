"""Where quantisation hurts: an imported int8 `.nn` model against its float Keras source, layer by layer.

Every `.nn` tensor named after a Keras layer (the importer names them so) is
compared with that layer's float output on the same inputs: error in real
units and the share of values the int8 format saturates. TensorFlow is
imported only here and in the importers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.diagnostics import Loc, NNError
from nndsl.model import Model
from nndsl.qmath.requant import round_half_away

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class LayerError:
    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    mean_abs_error: float
    saturated: float  # share of values outside the int8 format's real range
    value_range: float  # max |float value|, to read the errors against


@dataclass(frozen=True)
class Comparison:
    layers: tuple[LayerError, ...]
    float_accuracy: float | None
    int8_accuracy: float | None  # the .nn model's accuracy, whatever its arithmetic
    arithmetic: str = "int8"


def quantize_input(model: Model, x: Array) -> Array:
    """Real inputs to the model's input type (round half away from zero, clamp), as TFLite does."""
    in_type = model.graph.input.type
    if in_type.quant is None:
        return x.astype(np.float32)
    scale, zero = in_type.quant.scale, in_type.quant.zero_point
    low, high = in_type.bounds
    q = np.vectorize(lambda v: round_half_away(float(v) / scale) + zero)(x.astype(np.float64))
    quantized: Array = np.clip(q, low, high).astype(in_type.dtype.numpy)
    return quantized


def dequantize(model: Model, name: str, values: Array) -> tuple[Array, float, float]:
    """Real values of a tensor, and the real range its format holds."""
    tensor = next(t for t in model.graph.tensors if t.name == name)
    quant = tensor.type.quant
    if quant is None:
        return values.astype(np.float64), -np.inf, np.inf
    low, high = tensor.type.bounds
    scale, zero = quant.scale, quant.zero_point
    return (values.astype(np.float64) - zero) * scale, (low - zero) * scale, (high - zero) * scale


def compare(model: Model, keras_model: Any, x: Array, labels: Array | None = None) -> Comparison:
    keras = _keras()
    trace = model.trace(quantize_input(model, x))
    wanted = [name for name in trace if _comparable(model, keras_model, name)]
    probes = [keras_model.get_layer(name).output for name in wanted] + list(keras_model.outputs)
    outputs = keras.Model(keras_model.inputs, probes)([x.astype(np.float32)], training=False)
    outputs = [np.asarray(o) for o in (outputs if isinstance(outputs, list | tuple) else [outputs])]
    final_name = model.graph.output.name
    pairs = list(zip(wanted, outputs[: len(wanted)], strict=True))
    if final_name not in wanted:
        pairs.append((final_name, outputs[-1]))
    layers = []
    for name, reference in pairs:
        real, low, high = dequantize(model, name, trace[name])
        reference = reference.reshape(real.shape).astype(np.float64)
        error = np.abs(real - reference)
        step = (high - low) / 255 if np.isfinite(high) else 0.0
        saturated = float(np.mean((reference > high + step / 2) | (reference < low - step / 2)))
        layers.append(LayerError(name, real.shape[1:], float(error.max()), float(error.mean()), saturated,
                                 float(np.abs(reference).max())))
    float_accuracy = int8_accuracy = None
    if labels is not None:
        float_accuracy = float(np.mean(outputs[-1].argmax(axis=-1) == labels))
        int8_accuracy = float(np.mean(trace[final_name].argmax(axis=-1) == labels))
    arithmetic = {"i8": "int8", "i16": "int16"}.get(model.graph.dtype.value, model.graph.dtype.value)
    return Comparison(tuple(layers), float_accuracy, int8_accuracy, arithmetic)


def _comparable(model: Model, keras_model: Any, name: str) -> bool:
    """A `.nn` tensor and a Keras layer of the same name hold the same values.

    Not when the Keras layer ends in an activation that the `.nn` model
    computes as a separate op (a Dense with ``activation='softmax'`` is a
    dense op, then a softmax op).
    """
    if name == model.graph.input.name or name not in {layer.name for layer in keras_model.layers}:
        return False
    activation = getattr(keras_model.get_layer(name).activation, "__name__", "linear") \
        if hasattr(keras_model.get_layer(name), "activation") else "linear"
    if activation == "linear":
        return True
    op = next((op for op in model.graph.ops if op.output.name == name), None)
    fused = getattr(op, "activation", None)
    return isinstance(fused, ir.ActivationKind) and fused.value == activation


def format_comparison(result: Comparison) -> str:
    header = f"{'layer':<28} {'shape':<14} {'max |err|':>10} {'mean |err|':>11} {'max |x|':>9} {'saturated':>10}"
    lines = [header, "-" * len(header)]
    for layer in result.layers:
        shape = "[" + ",".join(map(str, layer.shape)) + "]"
        lines.append(f"{layer.name:<28} {shape:<14} {layer.max_abs_error:>10.4g} {layer.mean_abs_error:>11.4g} "
                     f"{layer.value_range:>9.4g} {layer.saturated:>9.2%}")
    if result.float_accuracy is not None and result.int8_accuracy is not None:
        diff = result.int8_accuracy - result.float_accuracy
        lines.append(f"accuracy: float {result.float_accuracy:.4f}, {result.arithmetic} {result.int8_accuracy:.4f} "
                     f"({diff:+.4f})")
    return "\n".join(lines)


def plot_comparison(result: Comparison, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NNError.at(Loc.file(str(path)), "--plot needs matplotlib (pip install matplotlib)") from None
    names = [layer.name for layer in result.layers]
    relative = [layer.mean_abs_error / layer.value_range if layer.value_range else 0.0 for layer in result.layers]
    figure, axis = plt.subplots(figsize=(max(6, len(names) * 0.8), 4))
    axis.bar(names, relative)
    axis.set_ylabel("mean |error| / max |value|")
    axis.set_title("int8 vs float, per layer")
    axis.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    figure.savefig(path)


def _keras() -> Any:
    from nndsl.importers.tf import tensorflow

    return tensorflow().keras
