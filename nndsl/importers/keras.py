"""Keras models (`.keras`, `.h5`, SavedModel folders) to `.nn`, through TensorFlow Lite's converter.

Float import converts without optimisation; ``calibrate`` quantises to full
int8 with the converter (per-channel weights, per-tensor activations, int8
input and output, batch size 1, calibration inputs one at a time), so that
the result is exactly what TensorFlow Lite would run. Either way the
flatbuffer then goes through :mod:`nndsl.importers.tflite`.

Before converting, every Keras layer is checked against what nndsl supports
(:data:`LAYER_CHECKS`), so that an unsupported layer or option is named as
the user wrote it rather than as the converter's ops.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nndsl.arrayfile import ArrayFileError, read_npy
from nndsl.diagnostics import Loc, NNError
from nndsl.importers.files import refuse_special_file
from nndsl.importers.keras_layers import check_gru, has_recurrent_layer, import_layers
from nndsl.importers.tf import quiet, tensorflow
from nndsl.importers.tflite import import_tflite, parse_flatbuffer
from nndsl.importers.writer import ImportedModel

# Keras 3 resolves "hard_swish" to its ``hard_silu`` function: the same function, converted to HARD_SWISH.
ACTIVATIONS = frozenset({"linear", "relu", "relu6", "tanh", "sigmoid", "softmax", "hard_swish", "hard_silu",
                         "leaky_relu"})
WINDOW_PADDINGS = frozenset({"valid", "same"})


@dataclass(frozen=True)
class Conversion:
    """The TensorFlow Lite flatbuffer made from a Keras model, kept for comparisons."""

    tflite: bytes
    int8: bool


def _option(layer: Any, name: str) -> Any:
    return getattr(layer, name, None)


def _check_activation(layer: Any) -> str | None:
    activation = _option(layer, "activation")
    name = getattr(activation, "__name__", None) if activation is not None else None
    if name is not None and name not in ACTIVATIONS:
        return f"activation='{name}' is not supported (supported: {', '.join(sorted(ACTIVATIONS))})"
    return None


def _check_window(layer: Any) -> str | None:
    padding = _option(layer, "padding")
    if padding is not None and padding not in WINDOW_PADDINGS:
        return f"padding='{padding}' is not supported (valid, same)"
    if _option(layer, "data_format") not in (None, "channels_last"):
        return f"data_format='{layer.data_format}' is not supported (channels_last)"
    if (_option(layer, "groups") or 1) != 1:
        return f"groups={layer.groups} is not supported"
    strides, dilation = _option(layer, "strides"), _option(layer, "dilation_rate")
    strided = strides is not None and int(np.max(strides)) > 1
    if strided and dilation is not None and int(np.max(dilation)) > 1:
        # Keras forbids this for Conv but not for DepthwiseConv; TensorFlow slices a dilated conv's output.
        return (f"strides={strides} with dilation_rate={dilation} is not supported (the converter makes it a dilated "
                "convolution and a STRIDED_SLICE)")
    return _check_activation(layer)


def _check_relu(layer: Any) -> str | None:
    max_value = _option(layer, "max_value")
    if max_value is not None and float(max_value) != 6.0:
        return f"max_value={max_value} is not supported (none or 6)"
    if float(_option(layer, "negative_slope") or 0.0) != 0.0 or float(_option(layer, "threshold") or 0.0) != 0.0:
        return "ReLU with negative_slope or threshold is not supported (use LeakyReLU)"
    return None


def _check_softmax(layer: Any) -> str | None:
    axis = _option(layer, "axis")
    if axis not in (None, -1) and axis != [-1]:
        return f"axis={axis} is not supported (softmax over the last axis)"
    return None


def _check_lstm(layer: Any) -> str | None:
    """Keras's LSTM unrolled: TensorFlow's converter writes a rolled Keras 3 LSTM as a WHILE loop (and fails
    converting it to int8), an unrolled one as the per-step FULLY_CONNECTED, LOGISTIC, TANH, MUL and ADD."""
    if not _option(layer, "unroll"):
        return ("unroll=False is not supported: build it with unroll=True (the converter writes a rolled LSTM as a "
                "WHILE loop); a TensorFlow Lite file with UNIDIRECTIONAL_SEQUENCE_LSTM imports as one lstm layer")
    for option in ("go_backwards", "stateful", "return_state"):
        if _option(layer, option):
            return f"{option}=True is not supported"
    return None


def _fine(layer: Any) -> str | None:
    return None


LayerCheck = Callable[[Any], str | None]
LAYER_CHECKS: dict[str, LayerCheck] = {}


def _register(names: tuple[str, ...], check: LayerCheck) -> None:
    for name in names:
        if name in LAYER_CHECKS:
            raise AssertionError(f"two checks for {name}")
        LAYER_CHECKS[name] = check


_register(("InputLayer", "Flatten", "Reshape", "Dropout", "Identity", "Add", "Subtract", "Multiply", "Maximum",
           "Minimum", "Rescaling", "Concatenate", "ZeroPadding1D",
           "ZeroPadding2D", "BatchNormalization", "LeakyReLU", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Permute", "Cropping1D", "Cropping2D", "PReLU"), _fine)
_register(("Dense", "Activation"), _check_activation)
_register(("Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D",
           "AveragePooling1D", "AveragePooling2D"), _check_window)
_register(("ReLU",), _check_relu)
_register(("Softmax",), _check_softmax)
_register(("GRU",), check_gru)  # read layer by layer (nndsl.importers.keras_layers), not converted
_register(("LSTM",), _check_lstm)


def check_layers(model: Any, source: str) -> None:
    """An error naming the first layer (and option) nndsl cannot represent."""
    for layer in _layers(model):
        kind = type(layer).__name__
        check = LAYER_CHECKS.get(kind)
        if check is None:
            raise NNError.at(Loc.file(source), f"layer '{layer.name}' ({kind}) is not supported by nndsl "
                             f"(supported: {', '.join(sorted(LAYER_CHECKS))})")
        problem = check(layer)
        if problem is not None:
            raise NNError.at(Loc.file(source), f"layer '{layer.name}' ({kind}): {problem}")


def _layers(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        nested = getattr(layer, "layers", None)
        if nested is not None and type(layer).__name__ in ("Sequential", "Functional", "Model"):
            yield from _layers(layer)
        else:
            yield layer


def load_keras(path: Path) -> Any:
    """The Keras model in ``path``, or a located error."""
    refuse_special_file(path)
    tf = tensorflow()
    try:
        with quiet():
            return tf.keras.models.load_model(str(path), compile=False)
    except Exception as error:  # Keras raises many kinds for unreadable or custom-object models
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise NNError.at(Loc.file(str(path)), f"cannot load the Keras model: {message}") from None


def calibration_data(path: Path, input_shape: tuple[int, ...], source: str) -> np.ndarray:
    try:
        data = read_npy(path)
    except ArrayFileError as error:
        raise NNError.at(Loc.file(str(path)), f"cannot read the calibration data: {error}") from None
    if data.shape[1:] != input_shape:
        raise NNError.at(Loc.file(str(path)), f"calibration data has shape {list(data.shape)}, the model "
                         f"'{source}' takes [N, {', '.join(map(str, input_shape))}]")
    samples: np.ndarray = data.astype(np.float32)
    return samples


def _progress(samples: np.ndarray, enabled: bool) -> Iterator[list[np.ndarray]]:
    """One calibration input at a time; a progress line on a terminal, nothing otherwise."""
    total = len(samples)
    for count, sample in enumerate(samples, start=1):
        if enabled:
            done = 30 * count // total
            print(f"\rcalibrating [{'#' * done}{'.' * (30 - done)}] {count}/{total}", end="", file=sys.stderr)
        yield [sample[np.newaxis]]
    if enabled:
        print(file=sys.stderr)


def _batch_of_one(model: Any) -> Any:
    """The model with its batch fixed at 1, as it runs on a device.

    Static shapes let the converter emit dilated convolutions and reshapes
    directly, without shape arithmetic. A model that cannot be cloned is
    converted as it is: the importer copes with dynamic-batch output too.
    """
    keras = tensorflow().keras
    shape = tuple(model.inputs[0].shape[1:])
    try:
        with quiet():
            clone = keras.models.clone_model(model, input_tensors=keras.Input(batch_shape=(1, *shape)))
            clone.set_weights(model.get_weights())
    except Exception:  # subclassed or custom models: keep the original
        return model
    return clone


def convert(model: Any, source: str, *, calibration: np.ndarray | None = None, int16: bool = False,
            progress: bool = False) -> Conversion:
    """The model as a batch-1 TensorFlow Lite flatbuffer: float, or full int8 (16x8 with ``int16``)
    calibrated on ``calibration``."""
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(_batch_of_one(model))
    return _run_converter(converter, source, calibration=calibration, int16=int16, progress=progress)


def quantize_fully(converter: Any, representative: Callable[[], Iterator[list[np.ndarray]]], *,
                   int16: bool = False) -> None:
    """Set a ``TFLiteConverter`` for full integer quantisation, input and output included.

    int8 activations and weights, or with ``int16`` TensorFlow Lite's 16x8
    scheme (int16 activations, int8 weights); ``representative`` yields the
    calibration inputs.
    """
    tf = tensorflow()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    if int16:
        sixteen_by_eight = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [sixteen_by_eight]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8


# TensorFlow 2.21's int8 conversion is not deterministic for every graph: an unrolled Keras LSTM comes out with
# parts left float (behind DEQUANTIZE) in about one conversion in three. Converting again gives a full-integer
# model; one that still has float ops after these attempts is imported as it is (and refused with its location).
CONVERTER_ATTEMPTS = 4


def _run_converter(converter: Any, source: str, *, calibration: np.ndarray | None, int16: bool,
                   progress: bool) -> Conversion:
    if calibration is not None:
        samples = calibration
        quantize_fully(converter, lambda: _progress(samples, progress), int16=int16)
    for _ in range(CONVERTER_ATTEMPTS):
        try:
            # The progress line goes to stderr, so only stdout is silenced while calibrating.
            with quiet((1,) if progress else (1, 2)):
                flatbuffer = bytes(converter.convert())
        except Exception as error:  # the converter reports unsupported graphs with its own exception types
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise NNError.at(Loc.file(source), f"TensorFlow Lite's converter failed: {first}") from None
        if calibration is None or not _left_float(flatbuffer, source):
            break
    return Conversion(flatbuffer, calibration is not None)


def _left_float(flatbuffer: bytes, source: str) -> bool:
    """Whether a full-integer conversion kept float ops (a DEQUANTIZE inside the model)."""
    return any(op.name == "DEQUANTIZE" for op in parse_flatbuffer(flatbuffer, source).ops)


def import_keras(path: Path, *, calibrate: str | Path | None = None, int16: bool = False, name: str | None = None,
                 progress: bool = False) -> ImportedModel:
    """A Keras model file or SavedModel folder in `.nn` form (int8 with ``calibrate``, else float)."""
    source = str(path)
    if int16 and calibrate is None:
        raise NNError.at(Loc.file(source), "--int16 quantises: it needs --calibrate DATA.npy")
    if path.is_dir():
        return _import_saved_model(path, calibrate=calibrate, int16=int16, name=name or _stem(path),
                                   progress=progress)
    model = load_keras(path)
    calibration = None
    if calibrate is not None:
        input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        calibration = calibration_data(Path(calibrate), input_shape, source)
    return import_keras_model(model, source, calibration=calibration, int16=int16, name=name or _stem(path),
                              progress=progress)


def import_keras_model(model: Any, source: str, *, calibration: np.ndarray | None = None, int16: bool = False,
                       name: str = "model", progress: bool = False) -> ImportedModel:
    """An in-memory Keras model in `.nn` form; ``source`` labels errors. Keeps the flatbuffer in ``.tflite``."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NNError.at(Loc.file(source), f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                         "outputs; nndsl takes one of each")
    check_layers(model, source)
    layers = [layer for layer in _layers(model) if type(layer).__name__ != "InputLayer"]
    if has_recurrent_layer(layers):
        if calibration is not None:
            raise NNError.at(Loc.file(source), "a model with a GRU imports in float only (TensorFlow Lite Micro "
                             "has no int8 GRU): import it without --calibrate, then convert it with nndsl to-fixed")
        return import_layers(model, layers, source, name)
    if calibration is not None:
        calibration = np.asarray(calibration, dtype=np.float32)
    conversion = convert(model, source, calibration=calibration, int16=int16, progress=progress)
    imported = import_tflite(conversion.tflite, source, name=name)
    imported.tflite = conversion.tflite
    return imported


def _import_saved_model(path: Path, *, calibrate: str | Path | None, int16: bool, name: str,
                        progress: bool) -> ImportedModel:
    """A SavedModel folder: converted from its serving signature (no Keras layers to check first)."""
    tf = tensorflow()
    source = str(path)
    if not (path / "saved_model.pb").exists():
        raise NNError.at(Loc.file(source), "a folder to import must be a SavedModel (it has no saved_model.pb)")
    try:
        with quiet():
            converter = tf.lite.TFLiteConverter.from_saved_model(source)
            signature = tf.saved_model.load(source).signatures["serving_default"]
    except Exception as error:  # TensorFlow raises many kinds for unreadable SavedModels
        raise NNError.at(Loc.file(source), f"cannot load the SavedModel: {str(error).splitlines()[0]}") from None
    calibration = None
    if calibrate is not None:
        specs = list(signature.structured_input_signature[1].values())
        input_shape = tuple(int(d) for d in specs[0].shape[1:])
        calibration = calibration_data(Path(calibrate), input_shape, source)
    conversion = _run_converter(converter, source, calibration=calibration, int16=int16, progress=progress)
    imported = import_tflite(conversion.tflite, source, name=name)
    imported.tflite = conversion.tflite
    return imported


def _stem(path: Path) -> str:
    return path.name if path.is_dir() else path.stem
