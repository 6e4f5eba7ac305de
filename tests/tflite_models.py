"""Tiny Keras models as quantised TensorFlow Lite flatbuffers, and TensorFlow Lite Micro running them.

Shared by the tests that compare the NumPy kernels with TFLM: converting a
Keras model to full int8 or 16x8 with a representative dataset, reading the
operators and quantisation of the flatbuffer, rewriting values the converter
never writes, and running TFLM on a batch.

Importing this module does not import TensorFlow: every function imports it
when called (tests get it through the ``tflite`` fixture of ``conftest.py``,
which skips them when it is missing).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# TFLite ActivationFunctionType -> real clamp bounds (CalculateActivationRangeQuantized).
FUSED_ACTIVATIONS: dict[int, tuple[float | None, float | None]] = {
    0: (None, None),  # NONE
    1: (0.0, None),  # RELU
    2: (-1.0, 1.0),  # RELU_N1_TO_1
    3: (0.0, 6.0),  # RELU6
}
KERAS_ACTIVATION_CODES = {None: 0, "relu": 1, "relu6": 3}  # Keras activation -> fused ActivationFunctionType
PADDING_CODES = {"same": 0, "valid": 1}  # TFLite Padding enum
TFLITE_INT16 = 7  # TensorType

Representative = Callable[[], Iterator[list[np.ndarray]]]


def seed_of(*key: object) -> int:
    """A stable seed for a test case (``hash`` changes between processes)."""
    return zlib.crc32(repr(key).encode())


# --------------------------------------------------------------------------
# Converting
# --------------------------------------------------------------------------


def uniform_samples(
    shapes: Sequence[tuple[int, ...]], ranges: Sequence[tuple[float, float]], seed: int, count: int = 16
) -> Representative:
    """A representative dataset: ``count`` samples, each input uniform in its own ``(low, high)`` range.

    One generator draws every sample, in order, from ``seed``; each input gets a batch axis of 1.
    """
    rng = np.random.default_rng(seed)

    def representative() -> Iterator[list[np.ndarray]]:
        for _ in range(count):
            yield [
                rng.uniform(low, high, size=(1, *shape)).astype(np.float32)
                for shape, (low, high) in zip(shapes, ranges, strict=True)
            ]

    return representative


def quantizing_converter(tf: Any, keras_model: Any, representative: Representative, *, int16: bool = False) -> Any:
    """A ``TFLiteConverter`` for full integer quantisation, input and output included.

    int8 activations and weights, or with ``int16`` TensorFlow Lite's 16x8
    scheme (int16 activations, int8 weights).
    """
    from nndsl.importers.keras import quantize_fully

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    quantize_fully(converter, representative, int16=int16)
    return converter


def convert_keras(
    tf: Any,
    keras_model: Any,
    shapes: Sequence[tuple[int, ...]],
    ranges: Sequence[tuple[float, float]],
    seed: int,
    *,
    int16: bool = False,
    samples: int = 16,
    **converter_attributes: Any,
) -> bytes:
    """``keras_model`` as a full-int8 (or 16x8) flatbuffer, calibrated on :func:`uniform_samples`.

    ``converter_attributes`` are set on the converter before converting (its
    ``_experimental_*`` switches).
    """
    converter = quantizing_converter(
        tf, keras_model, uniform_samples(shapes, ranges, seed, samples), int16=int16
    )
    for name, value in converter_attributes.items():
        setattr(converter, name, value)
    return bytes(converter.convert())


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """One operator of a converted model: its builtin name, tensor indices and options."""

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclass(frozen=True)
class Graph:
    """Subgraph 0 of a flatbuffer: operators, input and output tensors, every tensor's shape and type."""

    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    shapes: dict[int, tuple[int, ...]]
    types: dict[int, int]

    @property
    def names(self) -> list[str]:
        return [op.name for op in self.operators]

    def only(self, name: str) -> Operator:
        (op,) = [op for op in self.operators if op.name == name]
        return op


def model_graph(model: bytes) -> Graph:
    """The structure of subgraph 0 (operators, inputs, outputs, shapes, tensor types) from the flatbuffer."""
    from tensorflow.lite.tools import flatbuffer_utils

    parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    graph = parsed.subgraphs[0]
    operators = tuple(
        Operator(
            name=flatbuffer_utils.opcode_to_name(parsed, o.opcodeIndex),
            inputs=tuple(int(i) for i in o.inputs),
            outputs=tuple(int(i) for i in o.outputs),
            options=dict(vars(o.builtinOptions)) if o.builtinOptions is not None else {},
        )
        for o in graph.operators
    )
    shapes = {i: tuple(int(d) for d in t.shape) if t.shape is not None else () for i, t in enumerate(graph.tensors)}
    types = {i: int(t.type) for i, t in enumerate(graph.tensors)}
    return Graph(operators, tuple(int(i) for i in graph.inputs), tuple(int(i) for i in graph.outputs), shapes, types)


def model_quantization(model: bytes) -> tuple[float, int, float, int]:
    """Input (scale, zero point) and output (scale, zero point), read with TensorFlow Lite's interpreter only."""
    import tensorflow as tf

    details = tf.lite.Interpreter(model_content=model)
    input_scale, input_zero_point = details.get_input_details()[0]["quantization"]
    output_scale, output_zero_point = details.get_output_details()[0]["quantization"]
    return float(input_scale), int(input_zero_point), float(output_scale), int(output_zero_point)


def tensor_quantization(model: bytes) -> dict[int, tuple[float, int]]:
    """Every tensor's (scale, zero point), read with TensorFlow Lite's interpreter only."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model)
    return {
        int(d["index"]): (float(d["quantization"][0]), int(d["quantization"][1]))
        for d in interpreter.get_tensor_details()
    }


# --------------------------------------------------------------------------
# Rewriting
# --------------------------------------------------------------------------


def edit_model(model: bytes, edit: Callable[[Any], None]) -> bytes:
    """The model after ``edit`` changed its parsed form (``flatbuffer_utils``' object API) in place."""
    from tensorflow.lite.tools import flatbuffer_utils

    parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    edit(parsed)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))


def patch_model(
    model: bytes,
    *,
    quant: dict[int, tuple[float, int]] | None = None,
    input_scale: float | None = None,
    input_zero_point: int | None = None,
    output_scale: float | None = None,
    output_zero_point: int | None = None,
    **options: Any,
) -> bytes:
    """The model with quantisation or builtin options rewritten (values the converter never writes).

    The operator concerned is the single one that is not EXPAND_DIMS or
    RESHAPE: ``options`` are set on its builtin options (``alpha``, ``beta``,
    ``fusedActivationFunction``, ...), ``input_*``/``output_*`` on its input 0
    and output 0. ``quant`` maps any tensor index to a new (scale, zero point).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    def quantize(tensor: Any, scale: float | None, zero_point: int | None) -> None:
        if scale is not None:
            tensor.quantization.scale = np.array([scale], dtype=np.float32)
        if zero_point is not None:
            tensor.quantization.zeroPoint = np.array([zero_point], dtype=np.int64)

    def edit(parsed: Any) -> None:
        graph = parsed.subgraphs[0]
        for index, (scale, zero_point) in (quant or {}).items():
            quantize(graph.tensors[index], scale, zero_point)
        if options or any(v is not None for v in (input_scale, input_zero_point, output_scale, output_zero_point)):
            (operator,) = [
                o
                for o in graph.operators
                if flatbuffer_utils.opcode_to_name(parsed, o.opcodeIndex) not in ("EXPAND_DIMS", "RESHAPE")
            ]
            quantize(graph.tensors[operator.inputs[0]], input_scale, input_zero_point)
            quantize(graph.tensors[operator.outputs[0]], output_scale, output_zero_point)
            for key, value in options.items():
                setattr(operator.builtinOptions, key, value)

    return edit_model(model, edit)


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def tflm_interpreter(model: bytes, arena_size: int = 1 << 20) -> Any:
    """A TensorFlow Lite Micro interpreter for ``model`` (raises RuntimeError where TFLM's Prepare fails)."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def run_tflm(
    model: bytes, batch: np.ndarray | Iterable[Sequence[np.ndarray]], *, arena_size: int = 1 << 20
) -> np.ndarray:
    """Output 0 of one TFLM invocation per item of ``batch``, stacked.

    An item is the model's input as TFLM takes it (batch axis included), or a
    sequence of its inputs in order: a ``(N, 1, ...)`` array runs ``N`` inputs.
    """
    interpreter = tflm_interpreter(model, arena_size)
    outputs = []
    for item in batch:
        for index, value in enumerate([item] if isinstance(item, np.ndarray) else item):
            interpreter.set_input(value, index)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)))
    return np.stack(outputs)


def run_tflm_each(model: bytes, inputs: np.ndarray, *, arena_size: int = 512 * 1024) -> np.ndarray:
    """TFLM on each input of a single-input model (as a batch of one): the outputs, without that batch axis."""
    return run_tflm(model, inputs[:, np.newaxis], arena_size=arena_size)[:, 0]


def assert_bit_exact(got: np.ndarray, expected: np.ndarray, dtype: type[np.generic], context: object) -> None:
    """Both of ``dtype`` and the same shape, zero differing bytes."""
    assert got.dtype == dtype and expected.dtype == dtype, (got.dtype, expected.dtype, context)
    assert got.shape == expected.shape, (got.shape, expected.shape, context)
    differing = int(np.count_nonzero(got.view(np.uint8) != expected.view(np.uint8)))
    # Bit-exact: zero differing bytes.
    assert differing == 0, f"{context}: {differing} of {got.nbytes} bytes differ"
    assert np.array_equal(got, expected)
