"""Quantised UNIDIRECTIONAL_SEQUENCE_LSTM flatbuffers, written directly, for TensorFlow Lite Micro to run.

TensorFlow 2.21's converter turns a Keras 3 ``LSTM`` into a WHILE loop (and
crashes converting it to full int8), so the tests write the fused op's
flatbuffer themselves with TensorFlow Lite's schema builders, choosing the
scales the way the converter does from a float calibration run:
asymmetric int8 input and hidden state (which is the output), one symmetric
int8 scale per gate matrix, int32 biases at ``input_scale * weight_scale``, and
a power-of-two int16 cell state scale covering the largest cell value seen.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndsl.qmath.lstm import lstm_f32

LSTM_OPCODE = 44  # BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
TANH_ACTIVATION = 4  # ActivationFunctionType.TANH
INT8, INT16, INT32, FLOAT32 = 9, 7, 2, 0  # TensorType


@dataclass(frozen=True)
class LstmSpec:
    """A float LSTM (Keras layout: ``kernel [F, 4U]``, ``recurrent [U, 4U]``, ``bias [4U]``, gates i, f, c, o)."""

    steps: int
    features: int
    units: int
    seed: int
    cell_clip: float = 0.0
    weight_gain: float = 1.0
    kernel: np.ndarray = field(init=False, compare=False)
    recurrent: np.ndarray = field(init=False, compare=False)
    bias: np.ndarray = field(init=False, compare=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        gain = self.weight_gain
        shapes = {"kernel": (self.features, 4 * self.units), "recurrent": (self.units, 4 * self.units)}
        for name, shape in shapes.items():
            object.__setattr__(self, name, rng.normal(0, gain / math.sqrt(shape[0]), shape).astype(np.float32))
        object.__setattr__(self, "bias", rng.normal(0, 0.5, 4 * self.units).astype(np.float32))

    def calibration(self, count: int = 64) -> np.ndarray:
        return np.random.default_rng(self.seed + 1).normal(0.2, 1.0, (count, self.steps, self.features)).astype(
            np.float32)


@dataclass(frozen=True)
class QuantizedLstm:
    """The integers and scales of the int8 model, in Keras's layout, and its flatbuffer."""

    input_quant: tuple[float, int]
    output_quant: tuple[float, int]
    cell_scale: float
    kernel: np.ndarray  # int8 [F, 4U]
    kernel_scales: np.ndarray  # float32 [4U]: one per gate, repeated over its columns
    recurrent: np.ndarray
    recurrent_scales: np.ndarray
    bias: np.ndarray  # int32 [4U]
    flatbuffer: bytes


def _asymmetric(low: float, high: float) -> tuple[float, int]:
    """The converter's int8 (scale, zero point) for a real range, which it widens to hold 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = float(np.float32((high - low) / 255.0)) or 1.0
    zero = int(np.clip(round(-128 - low / scale), -128, 127))
    return scale, zero


def _symmetric(weights: np.ndarray) -> tuple[np.ndarray, float]:
    scale = float(np.float32(max(float(np.abs(weights).max()), 1e-6) / 127.0))
    return np.clip(np.round(weights / scale), -127, 127).astype(np.int8), scale


def _quantized_columns(weights: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Each gate's block of columns quantised with its own scale (a TFLite gate matrix's)."""
    blocks, scales = zip(*(_symmetric(weights[:, k * units:(k + 1) * units]) for k in range(4)), strict=True)
    return np.concatenate(blocks, axis=1), np.repeat(np.array(scales, dtype=np.float32), units)


def quantize(spec: LstmSpec, *, flatbuffer: bool = True) -> QuantizedLstm:
    """Calibrate on the float kernel and quantise; the flatbuffer (none without ``flatbuffer``: no
    TensorFlow) runs one sequence per invocation."""
    data = spec.calibration()
    hidden, _ = lstm_f32(data, spec.kernel, spec.recurrent, spec.bias, spec.cell_clip)
    cells = []
    state = None
    for t in range(spec.steps):  # the cell's range: rerun one step at a time
        _, state = lstm_f32(data[:, t:t + 1], spec.kernel, spec.recurrent, spec.bias, spec.cell_clip, state)
        cells.append(np.abs(state.cell).max())
    input_quant = _asymmetric(float(data.min()), float(data.max()))
    output_quant = _asymmetric(float(hidden.min()), float(hidden.max()))
    cell_scale = 2.0 ** math.ceil(math.log2(max(float(max(cells)), 1e-3) / 32767.0))
    kernel, kernel_scales = _quantized_columns(spec.kernel, spec.units)
    recurrent, recurrent_scales = _quantized_columns(spec.recurrent, spec.units)
    bias_scales = np.float32(input_quant[0]) * kernel_scales
    bias = np.round(spec.bias / bias_scales.astype(np.float64)).astype(np.int32)
    model = _flatbuffer(spec, input_quant, output_quant, cell_scale, kernel, kernel_scales, recurrent,
                        recurrent_scales, bias, bias_scales) if flatbuffer else b""
    return QuantizedLstm(input_quant, output_quant, cell_scale, kernel, kernel_scales, recurrent,
                         recurrent_scales, bias, model)


def float_flatbuffer(spec: LstmSpec, *, time_major: bool = False) -> bytes:
    """The float model (float32 tensors, no quantisation); ``time_major``: input ``[T, 1, F]``."""
    ones = np.ones(4 * spec.units, np.float32)
    return _flatbuffer(spec, (0.0, 0), (0.0, 0), 0.0, spec.kernel, ones, spec.recurrent, ones, spec.bias, ones,
                       integer=False, time_major=time_major)


def _flatbuffer(spec: LstmSpec, input_quant: tuple[float, int], output_quant: tuple[float, int],
                cell_scale: float, kernel: np.ndarray, kernel_scales: np.ndarray, recurrent: np.ndarray,
                recurrent_scales: np.ndarray, bias: np.ndarray, bias_scales: np.ndarray, *, integer: bool = True,
                time_major: bool = False) -> bytes:
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = schema.ModelT()
    model.version = 3
    model.buffers = [schema.BufferT()]
    graph = schema.SubGraphT()
    graph.tensors = []

    def tensor(name: str, shape: tuple[int, ...], kind: int, scale: float | None, zero: int = 0,
               data: np.ndarray | None = None, variable: bool = False) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.isVariable = name, list(shape), kind if integer else FLOAT32, variable
        if scale is not None and integer:
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale = [float(np.float32(scale))]
            t.quantization.zeroPoint = [int(zero)]
        buffer = schema.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        t.buffer = len(model.buffers) - 1
        graph.tensors.append(t)
        return len(graph.tensors) - 1

    u = spec.units
    sequence = (spec.steps, 1) if time_major else (1, spec.steps)
    x = tensor("input", (*sequence, spec.features), INT8, *input_quant)
    gates = ("input", "forget", "cell", "output")
    columns = [slice(k * u, (k + 1) * u) for k in range(4)]
    to_input = [tensor(f"input_to_{g}", (u, spec.features), INT8, float(kernel_scales[c][0]),
                       data=kernel[:, c].T) for g, c in zip(gates, columns, strict=True)]
    to_recurrent = [tensor(f"recurrent_to_{g}", (u, u), INT8, float(recurrent_scales[c][0]),
                           data=recurrent[:, c].T) for g, c in zip(gates, columns, strict=True)]
    biases = [tensor(f"{g}_bias", (u,), INT32, float(bias_scales[c][0]), data=bias[c])
              for g, c in zip(gates, columns, strict=True)]
    hidden = tensor("output_state", (1, u), INT8, *output_quant, variable=True)
    cell = tensor("cell_state", (1, u), INT16, cell_scale, variable=True)
    out = tensor("output", (*sequence, u), INT8, *output_quant)

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = LSTM_OPCODE
    code.version = 1
    model.operatorCodes = [code]
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [x, *to_input, *to_recurrent, -1, -1, -1, *biases, -1, -1, hidden, cell, -1, -1, -1, -1]
    op.outputs = [out]
    options = schema.UnidirectionalSequenceLSTMOptionsT()
    options.fusedActivationFunction = TANH_ACTIVATION
    options.cellClip = float(spec.cell_clip)
    options.timeMajor = time_major
    op.builtinOptionsType = schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions
    op.builtinOptions = options
    graph.operators = [op]
    graph.inputs, graph.outputs = [x], [out]
    model.subgraphs = [graph]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def run_tflm_sequences(model: bytes, inputs: np.ndarray, *, time_major: bool = False) -> np.ndarray:
    """TFLM on each ``[T, F]`` sequence, its variable state reset before each (every call starts from zero):
    every step's output, ``[N, T, U]``."""
    from tests.tflite_models import tflm_interpreter

    interpreter: Any = tflm_interpreter(model)
    outputs = []
    for sequence in inputs:
        interpreter.reset()
        interpreter.set_input(sequence[:, np.newaxis] if time_major else sequence[np.newaxis], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)).reshape(len(sequence), -1))
    return np.stack(outputs)
