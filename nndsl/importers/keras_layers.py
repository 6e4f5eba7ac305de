"""Keras models with recurrent layers to `.nn`, layer by layer (not through TensorFlow Lite's converter).

The converter turns a GRU into a loop of generic ops that nndsl does not
import, so a model with a ``GRU`` is read from its Keras layers directly: a
chain of ``InputLayer``, ``GRU``, ``Dense``, ``Activation`` and ``Dropout``
(dropped: inference), each mapped to its `.nn` layer with its weights as they
are (float; ``nndsl to-fixed`` makes the fixed-point version). Options nndsl
does not represent are located errors naming the layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndsl.diagnostics import Loc, NNError
from nndsl.importers.writer import ImportedModel, shape_text

DIRECT_LAYERS = ("InputLayer", "GRU", "Dense", "Activation", "Dropout")
FUSED = {"relu": "relu", "relu6": "relu6"}  # activations a dense layer fuses
STANDALONE = frozenset({"tanh", "sigmoid", "softmax", "relu", "relu6"})


def has_recurrent_layer(layers: list[Any]) -> bool:
    return any(type(layer).__name__ == "GRU" for layer in layers)


def _activation_name(layer: Any, option: str = "activation") -> str:
    function = getattr(layer, option, None)
    return str(getattr(function, "__name__", "linear"))


def check_gru(layer: Any) -> str | None:
    """The GRU options nndsl represents: Keras's gates and activations, one output, forwards."""
    if _activation_name(layer) != "tanh" or _activation_name(layer, "recurrent_activation") != "sigmoid":
        return (f"activation='{_activation_name(layer)}' and recurrent_activation="
                f"'{_activation_name(layer, 'recurrent_activation')}' are not supported (tanh and sigmoid)")
    for option in ("go_backwards", "return_state"):
        if getattr(layer, option, False):
            return f"{option}=True is not supported"
    if getattr(layer, "time_major", False):
        return "time_major=True is not supported"
    return None


class _Writer:
    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.out = ImportedModel(name)

    def fail(self, layer: Any, message: str) -> NNError:
        return NNError.at(Loc.file(self.source), f"layer '{layer.name}' ({type(layer).__name__}): {message}")

    def weight(self, layer: str, role: str, data: Any) -> str:
        key = f"{layer}.{role}"
        self.out.weights[key] = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
        return key

    def gru(self, layer: Any, x: str) -> str:
        name = self.out.fresh_name(layer.name)
        arrays = layer.get_weights()
        args = [x, self.weight(name, "kernel", arrays[0]), self.weight(name, "recurrent_kernel", arrays[1])]
        if getattr(layer, "use_bias", True) and len(arrays) > 2:
            args.append(self.weight(name, "bias", arrays[2]))
        flags = [f"return_sequences={'true' if layer.return_sequences else 'false'}",
                 f"reset_after={'true' if layer.reset_after else 'false'}"]
        if getattr(layer, "stateful", False):
            flags.append("stateful=true")
        self.out.lines.append(f"{name} = gru({', '.join(args + flags)})")
        return name

    def dense(self, layer: Any, x: str) -> str:
        name = self.out.fresh_name(layer.name)
        arrays = layer.get_weights()
        args = [x, self.weight(name, "kernel", arrays[0])]
        if len(arrays) > 1:
            args.append(self.weight(name, "bias", arrays[1]))
        activation = _activation_name(layer)
        fused = f" -> {FUSED[activation]}" if activation in FUSED else ""
        self.out.lines.append(f"{name} = dense({', '.join(args)}){fused}")
        if activation in FUSED or activation == "linear":
            return name
        return self.activation(layer, activation, name)

    def activation(self, layer: Any, activation: str, x: str) -> str:
        if activation not in STANDALONE:
            raise self.fail(layer, f"activation='{activation}' is not supported here (supported: "
                            f"linear, {', '.join(sorted(STANDALONE))})")
        name = self.out.fresh_name(f"{layer.name}_{activation}")
        self.out.lines.append(f"{name} = {activation}({x})")
        return name


def import_layers(model: Any, layers: list[Any], source: str, name: str) -> ImportedModel:
    """A chain of Keras layers (one of them a GRU) in `.nn` form, its weights as float arrays."""
    writer = _Writer(source, name)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise NNError.at(Loc.file(source), f"the input shape {list(shape)} has an axis of unknown length: nndsl "
                         "needs a fixed number of time steps (Input(shape=(steps, features)))")
    x = writer.out.fresh_name(getattr(model.inputs[0], "name", None) or "x")
    writer.out.lines += [f"input {x} : f32{shape_text(tuple(int(d) for d in shape))}", ""]
    previous = None
    for layer in layers:
        kind = type(layer).__name__
        if kind not in DIRECT_LAYERS:
            raise writer.fail(layer, f"not supported in a model with a GRU, which nndsl reads layer by layer "
                              f"(supported there: {', '.join(DIRECT_LAYERS)})")
        if previous is not None and getattr(layer, "input", None) is not getattr(previous, "output", None):
            raise writer.fail(layer, "a model with a GRU must be a chain of layers (each reads the one before)")
        previous = layer
        match kind:
            case "GRU":
                x = writer.gru(layer, x)
            case "Dense":
                x = writer.dense(layer, x)
            case "Activation":
                activation = _activation_name(layer)
                x = x if activation == "linear" else writer.activation(layer, activation, x)
    writer.out.lines += ["", f"output {x}"]
    return writer.out
