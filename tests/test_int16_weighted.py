"""16x8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D: NumPy against TensorFlow Lite Micro, C against NumPy.

Every TFLM comparison is ``np.array_equal`` on the int16 outputs: zero
differing elements, not a tolerance. The TFLM side runs tiny Keras models
(one ``Dense``, ``Conv2D`` or ``DepthwiseConv2D``) converted in 16x8 mode
(int16 activations, int8 weights); the NumPy side takes the weights, biases
and scales from the flatbuffer and computes the op with
``tests/qmath_reference.py`` (plus a tap loop here for the convolutions). Each
test checks the operator, its options and the bias dtype the converter chose.
The C side is ``nn_mbqm64`` from ``backends/c/runtime/requant.c``, built with
AddressSanitizer and UndefinedBehaviorSanitizer, against
:func:`~nndsl.qmath.requant.multiply_by_quantized_multiplier_int64`.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.qmath.requant import (
    INT16_MAX,
    INT16_MIN,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    quantize_multiplier,
    reduced_multiplier,
)
from tests.c_harness import build_harness, compile_c, entry_point, run_harness, runtime_unit
from tests.qmath_reference import (
    dense_s16,
    fully_connected_multipliers,
    fused_activation_range_s16,
    per_channel_multipliers,
    requantize_s16,
)
from tests.tflite_models import KERAS_ACTIVATION_CODES, convert_keras, edit_model, run_tflm, seed_of

# --------------------------------------------------------------------------
# Converting, reading and running 16x8 models
# --------------------------------------------------------------------------


@functools.cache
def converted(
    kind: str,
    config: tuple[tuple[str, Any], ...],
    in_shape: tuple[int, ...],
    value_range: tuple[float, float],
    bias_type: str | None = None,
    dense_per_tensor: bool = False,
) -> bytes:
    """A one-layer Keras model (``Dense``/``Conv2D``/``DepthwiseConv2D`` with ``config``) converted in 16x8 mode.

    Batch size 1 (static shapes, no SHAPE/RESHAPE ops); biases initialised at
    random so that the converter keeps them; calibrated on uniform values in
    ``value_range``. ``bias_type="int32"`` sets the converter's
    ``_experimental_full_integer_quantization_bias_type``; ``dense_per_tensor``
    its ``_experimental_disable_per_channel_quantization_for_dense_layers``.
    """
    import tensorflow as tf

    keras = tf.keras
    seed = seed_of(kind, config, in_shape, value_range, bias_type, dense_per_tensor)
    tf.keras.utils.set_random_seed(seed % (2**31))
    options = dict(config)
    if options.get("use_bias", True):
        options.setdefault("bias_initializer", "random_normal")
    layer = {"dense": keras.layers.Dense, "conv": keras.layers.Conv2D, "depthwise": keras.layers.DepthwiseConv2D}[kind]
    x = keras.Input(in_shape, batch_size=1)
    model = keras.Model(x, layer(**options)(x))
    switches: dict[str, Any] = {}
    if bias_type == "int32":
        switches["_experimental_full_integer_quantization_bias_type"] = tf.int32
    if dense_per_tensor:
        switches["_experimental_disable_per_channel_quantization_for_dense_layers"] = True
    return convert_keras(tf, model, [in_shape], [value_range], seed, int16=True, **switches)


def convert(
    tf: Any,
    kind: str,
    in_shape: tuple[int, ...],
    value_range: tuple[float, float] = (-2.0, 3.0),
    bias_type: str | None = None,
    dense_per_tensor: bool = False,
    **config: Any,
) -> bytes:
    del tf  # the fixture only guarantees TensorFlow is importable
    key = tuple(sorted(config.items()))
    return converted(kind, key, in_shape, value_range, bias_type, dense_per_tensor)


@dataclasses.dataclass(frozen=True)
class WeightedOp:
    """The single operator of a converted model, with its constant tensors and float32 scales."""

    name: str
    options: Any  # the flatbuffer's builtin options object
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_type: str
    output_type: str
    filter: np.ndarray  # int8, TFLite layout: FC [O, I], CONV_2D [O, KH, KW, I], DEPTHWISE [1, KH, KW, O]
    filter_type: str
    filter_scales: np.ndarray  # float32, one per output channel, or one for the tensor
    filter_zero_points: np.ndarray
    bias: np.ndarray | None
    bias_type: str | None
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int

    @property
    def activation(self) -> int:
        return int(self.options.fusedActivationFunction)


def read_single_op(model: bytes) -> WeightedOp:
    """Parse the flatbuffer with TensorFlow Lite's generated schema; exactly one operator is expected."""
    from tensorflow.lite.python import schema_py_generated as schema

    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    dtypes = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}
    parsed = schema.ModelT.InitFromPackedBuf(model, 0)
    graph = parsed.subgraphs[0]
    names = []
    for o in graph.operators:
        code = parsed.operatorCodes[o.opcodeIndex]
        names.append(op_names[max(code.builtinCode, code.deprecatedBuiltinCode)])
    assert len(names) == 1, names
    (op,) = graph.operators
    inputs = [int(i) for i in op.inputs]

    def tensor(index: int) -> tuple[Any, str]:
        t = graph.tensors[index]
        return t, type_names[t.type]

    def data(index: int) -> np.ndarray:
        t, name = tensor(index)
        raw = parsed.buffers[t.buffer].data
        assert raw is not None, f"tensor {index} has no constant data"
        return np.frombuffer(bytes(bytearray(raw)), dtype=dtypes[name]).reshape(tuple(int(d) for d in t.shape))

    def quant(index: int) -> tuple[np.ndarray, np.ndarray]:
        q = tensor(index)[0].quantization
        return np.asarray(q.scale, dtype=np.float32), np.asarray(q.zeroPoint, dtype=np.int64)

    (in_scale,), (in_zp,) = quant(inputs[0])
    (out_scale,), (out_zp,) = quant(int(op.outputs[0]))
    filter_scales, filter_zps = quant(inputs[1])
    has_bias = len(inputs) > 2 and inputs[2] >= 0
    return WeightedOp(
        name=names[0],
        options=op.builtinOptions,
        input_shape=tuple(int(d) for d in graph.tensors[inputs[0]].shape),
        output_shape=tuple(int(d) for d in graph.tensors[int(op.outputs[0])].shape),
        input_type=tensor(inputs[0])[1],
        output_type=tensor(int(op.outputs[0]))[1],
        filter=data(inputs[1]),
        filter_type=tensor(inputs[1])[1],
        filter_scales=filter_scales,
        filter_zero_points=filter_zps,
        bias=data(inputs[2]) if has_bias else None,
        bias_type=tensor(inputs[2])[1] if has_bias else None,
        input_scale=float(in_scale),
        input_zero_point=int(in_zp),
        output_scale=float(out_scale),
        output_zero_point=int(out_zp),
    )


def patch_model(
    model: bytes,
    *,
    drop_bias: bool = False,
    bias_values: np.ndarray | None = None,
    output_scale: float | None = None,
    activation: int | None = None,
) -> bytes:
    """The model with its operator's bias removed or rewritten (same dtype), its output scale or activation changed."""

    def edit(parsed: Any) -> None:
        graph = parsed.subgraphs[0]
        (op,) = graph.operators
        if bias_values is not None:
            buffer = parsed.buffers[graph.tensors[int(op.inputs[2])].buffer]
            old = np.frombuffer(bytes(bytearray(buffer.data)), dtype=bias_values.dtype)
            assert old.shape == bias_values.shape
            little_endian = bias_values.astype(bias_values.dtype.newbyteorder("<"))
            buffer.data = np.frombuffer(little_endian.tobytes(), dtype=np.uint8)
        if drop_bias:
            op.inputs = np.asarray(op.inputs[:2], dtype=np.int32)
        if output_scale is not None:
            graph.tensors[int(op.outputs[0])].quantization.scale = np.array([output_scale], dtype=np.float32)
        if activation is not None:
            op.builtinOptions.fusedActivationFunction = activation

    return edit_model(model, edit)


# --------------------------------------------------------------------------
# The NumPy side
# --------------------------------------------------------------------------


def tflite_padding(in_size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite's ``ComputePadding``: the leading pad (half the total, rounded down; zero for VALID)."""
    effective = (filter_size - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def conv_accumulators(x: np.ndarray, op: WeightedOp) -> np.ndarray:
    """Exact tap sums ``[OH, OW, O]`` of a CONV_2D or DEPTHWISE_CONV_2D on one ``[H, W, C]`` input.

    Taps outside the image are skipped (zero padding); the input and filter
    zero points are 0, so there are no offsets.
    """
    in_h, in_w, _ = x.shape
    _, out_h, out_w, out_c = op.output_shape
    kernel_h, kernel_w = op.filter.shape[1:3]
    stride_h, stride_w = op.options.strideH, op.options.strideW
    dil_h, dil_w = op.options.dilationHFactor, op.options.dilationWFactor
    pad_top = tflite_padding(in_h, kernel_h, stride_h, dil_h, out_h)
    pad_left = tflite_padding(in_w, kernel_w, stride_w, dil_w, out_w)
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    xs = x.astype(np.int64)
    ws = op.filter.astype(np.int64)
    acc = np.zeros((out_h, out_w, out_c), dtype=np.int64)
    for ky in range(kernel_h):
        in_y = np.arange(out_h) * stride_h - pad_top + ky * dil_h
        inside_y = (in_y >= 0) & (in_y < in_h)
        for kx in range(kernel_w):
            in_x = np.arange(out_w) * stride_w - pad_left + kx * dil_w
            inside_x = (in_x >= 0) & (in_x < in_w)
            inside = (inside_y[:, None] & inside_x[None, :])[..., None]
            patch = xs[np.clip(in_y, 0, in_h - 1)][:, np.clip(in_x, 0, in_w - 1)] * inside  # [OH, OW, C]
            if depthwise:
                # Output channel c reads input channel c // depth_multiplier.
                acc += np.repeat(patch, op.options.depthMultiplier, axis=-1) * ws[0, ky, kx]
            else:
                acc += patch @ ws[:, ky, kx, :].T
    return acc


def op_multipliers(op: WeightedOp) -> tuple[np.ndarray, np.ndarray]:
    if op.name == "FULLY_CONNECTED":
        return fully_connected_multipliers(op.input_scale, op.filter_scales, op.output_scale)
    return per_channel_multipliers(op.input_scale, op.filter_scales, op.output_scale)


def numpy_op(op: WeightedOp, x: np.ndarray, bias: Any = "model", multipliers: Any = None) -> np.ndarray:
    """The operator on one model input, in NumPy; ``bias``/``multipliers`` override the model's."""
    act_min, act_max = fused_activation_range_s16(op.activation, op.output_scale)
    mults, shifts = op_multipliers(op) if multipliers is None else multipliers
    b = op.bias if isinstance(bias, str) else bias
    if op.name == "FULLY_CONNECTED":
        rows = x.reshape(-1, op.filter.shape[1])
        return dense_s16(rows, op.filter.T, b, mults, shifts, act_min, act_max).reshape(op.output_shape)
    acc = conv_accumulators(x.reshape(op.input_shape)[0], op)
    return requantize_s16(acc, b, mults, shifts, act_min, act_max).reshape(op.output_shape)


def int16_inputs(op: WeightedOp, value_range: tuple[float, float], seed: int) -> list[np.ndarray]:
    """Extremes, the full int16 range, the calibrated range, and small values.

    The small values keep the outputs of large (patched) multipliers inside the int16 range.
    """
    rng = np.random.default_rng(seed)
    shape = op.input_shape
    inputs = [np.full(shape, INT16_MIN, np.int16), np.full(shape, INT16_MAX, np.int16)]
    inputs += [rng.integers(INT16_MIN, INT16_MAX + 1, size=shape).astype(np.int16) for _ in range(4)]
    for _ in range(6):
        real = rng.uniform(*value_range, size=shape)
        inputs.append(np.clip(np.round(real / op.input_scale), INT16_MIN, INT16_MAX).astype(np.int16))
    inputs += [rng.integers(-64, 65, size=shape).astype(np.int16), rng.integers(-3, 4, size=shape).astype(np.int16)]
    for density in (0.1, 0.03):  # sparse +-1: a few taps, for multipliers up to 2**6
        inputs.append((rng.integers(-1, 2, size=shape) * (rng.random(shape) < density)).astype(np.int16))
    return inputs


def check_model(
    model: bytes, value_range: tuple[float, float], seed: int, min_unsaturated: float = 0.15, **overrides: Any
) -> dict[str, int]:
    """NumPy == TFLM on every input; counts of compared, unsaturated and other-path-differing elements.

    At least ``min_unsaturated`` of the outputs must lie strictly inside the
    clamp range, so that the comparison exercises the rounding.
    """
    op = read_single_op(model)
    assert (op.input_type, op.output_type, op.filter_type) == ("INT16", "INT16", "INT8")
    assert op.input_zero_point == 0 and op.output_zero_point == 0
    assert not np.any(op.filter_zero_points)
    act_min, act_max = fused_activation_range_s16(op.activation, op.output_scale)
    # The other accumulator path, for a count of where the bias dtype matters.
    other = (
        np.zeros(op.output_shape[-1], np.int32)
        if op.bias is None or op.bias.dtype == np.int64
        else (op.bias.astype(np.int64))
    )
    inputs = int16_inputs(op, value_range, seed)
    counts = {"elements": 0, "unsaturated": 0, "other_path_differs": 0}
    for x, expected in zip(inputs, run_tflm(model, inputs), strict=True):
        got = numpy_op(op, x, **overrides)
        assert got.dtype == np.int16 and expected.dtype == np.int16
        assert got.shape == expected.shape, (got.shape, expected.shape)
        differing = int(np.count_nonzero(got != expected))
        # Bit-exact: zero differing elements.
        assert differing == 0, f"{op.name}: {differing} of {got.size} elements differ"
        assert np.array_equal(got, expected)
        counts["elements"] += got.size
        counts["unsaturated"] += int(np.count_nonzero((got > act_min) & (got < act_max)))
        counts["other_path_differs"] += int(np.count_nonzero(numpy_op(op, x, bias=other) != expected))
    assert counts["unsaturated"] >= min_unsaturated * counts["elements"], counts
    return counts


# --------------------------------------------------------------------------
# FULLY_CONNECTED
# --------------------------------------------------------------------------

DENSE_CASES = [
    # (input shape, units, activation, calibration range)
    ((7,), 5, "relu", (-2.0, 3.0)),
    ((20,), 6, "relu6", (-10.0, 10.0)),
    ((9,), 4, None, (-0.5, 0.25)),
    ((64,), 8, None, (-3.0, 3.0)),
    ((3, 9), 4, None, (-1.0, 4.0)),  # a 3-D input: FULLY_CONNECTED with keep_num_dims
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("in_shape", "units", "activation", "value_range"), DENSE_CASES)
def test_dense_matches_tflite_micro(
    tflite: Any, in_shape: tuple[int, ...], units: int, activation: str | None, value_range: tuple[float, float]
) -> None:
    model = convert(tflite, "dense", in_shape, value_range, units=units, activation=activation)
    op = read_single_op(model)
    assert op.name == "FULLY_CONNECTED"
    assert op.activation == KERAS_ACTIVATION_CODES[activation]
    # The converter's defaults for 16x8: an int64 bias, and per-channel FC weights.
    assert op.bias_type == "INT64"
    assert op.bias is not None and op.bias.dtype == np.int64
    assert op.filter_scales.shape == (units,)
    if activation is not None:
        # The converter calibrates the output after the fused activation: 6.0 never clips below 32767.
        assert fused_activation_range_s16(op.activation, op.output_scale) == (0, INT16_MAX)
    check_model(model, value_range, seed_of(in_shape, units))


@pytest.mark.tensorflow
def test_dense_per_tensor_weights(tflite: Any) -> None:
    """``_experimental_disable_per_channel_quantization_for_dense_layers``: one filter scale, int64 bias."""
    model = convert(tflite, "dense", (48,), (-4.0, 4.0), dense_per_tensor=True, units=6)
    op = read_single_op(model)
    assert op.name == "FULLY_CONNECTED" and op.bias_type == "INT64"
    assert op.filter_scales.shape == (1,)
    check_model(model, (-4.0, 4.0), 11)


@pytest.mark.tensorflow
def test_dense_per_tensor_multiplier_is_a_double_product(tflite: Any) -> None:
    """Per-tensor FC weights: TFLM multiplies the float32 scales in double, not in float32.

    TFLite's ``GetQuantizedConvolutionMultipler`` rounds ``input_scale *
    filter_scale`` to float32 first; the pinned TFLM does not. With an int32
    bias the full 31-bit multiplier is used, so the two products give
    different outputs on a few inputs: rows where they differ are picked in
    NumPy, and TFLM sides with the double product on every one.
    """
    rows, features = 64, 48
    model = convert(tflite, "dense", (rows, features), (-4.0, 4.0), bias_type="int32", dense_per_tensor=True, units=8)
    op = read_single_op(model)
    assert op.name == "FULLY_CONNECTED" and op.bias_type == "INT32"
    assert op.filter_scales.shape == (1,) and op.input_shape == (1, rows, features)
    double_product = fully_connected_multipliers(op.input_scale, op.filter_scales, op.output_scale)
    float32_real = float(np.float32(op.input_scale) * op.filter_scales[0]) / op.output_scale
    float32_product = (
        np.array([quantize_multiplier(float32_real)[0]]),
        np.array([quantize_multiplier(float32_real)[1]]),
    )
    assert double_product[0][0] != float32_product[0][0]
    rng = np.random.default_rng(17)
    candidates = rng.integers(INT16_MIN, INT16_MAX + 1, size=(200_000, features)).astype(np.int16)
    act = fused_activation_range_s16(op.activation, op.output_scale)
    double_out = dense_s16(candidates, op.filter.T, op.bias, *double_product, *act)
    float32_out = dense_s16(candidates, op.filter.T, op.bias, *float32_product, *act)
    telling = np.flatnonzero(np.any(float32_out != double_out, axis=1))
    assert telling.size >= rows
    x = candidates[telling[:rows]].reshape(op.input_shape)
    (expected,) = run_tflm(model, [x])
    assert np.array_equal(numpy_op(op, x), expected)
    assert np.count_nonzero(numpy_op(op, x, multipliers=float32_product) != expected) >= rows


@pytest.mark.tensorflow
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_without_bias_takes_the_int64_path(tflite: Any, use_bias: bool) -> None:
    """A zero (or absent) Keras bias leaves the FC without a bias tensor; TFLM then rounds as with an int64 bias."""
    options: dict[str, Any] = {"units": 5, "use_bias": use_bias}
    if use_bias:
        options["bias_initializer"] = "zeros"
    model = convert(tflite, "dense", (40,), (-3.0, 3.0), **options)
    op = read_single_op(model)
    assert op.name == "FULLY_CONNECTED" and op.bias is None
    counts = check_model(model, (-3.0, 3.0), 12)
    # The int32 path (what a zero int32 bias would give) rounds differently.
    assert counts["other_path_differs"] > 0


@pytest.mark.tensorflow
def test_dense_int32_bias(tflite: Any) -> None:
    """``_experimental_full_integer_quantization_bias_type = tf.int32``: int32 accumulator, double rounding."""
    model = convert(tflite, "dense", (48,), (-2.0, 5.0), bias_type="int32", units=7, activation="relu")
    op = read_single_op(model)
    assert op.name == "FULLY_CONNECTED" and op.bias_type == "INT32"
    assert op.bias is not None and op.bias.dtype == np.int32
    counts = check_model(model, (-2.0, 5.0), 13)
    assert counts["other_path_differs"] > 0


# --------------------------------------------------------------------------
# CONV_2D
# --------------------------------------------------------------------------

CONV_CASES: list[tuple[tuple[int, int, int], dict[str, Any], tuple[float, float]]] = [
    ((6, 5, 2), {"filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"}, (-2.0, 3.0)),
    (
        (7, 6, 3),
        {"filters": 4, "kernel_size": (3, 2), "strides": 2, "padding": "valid", "use_bias": False},
        (-1.0, 1.0),
    ),
    (
        (7, 7, 2),
        {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same", "activation": "relu6"},
        (-20.0, 20.0),
    ),
    ((8, 7, 3), {"filters": 3, "kernel_size": (2, 3), "dilation_rate": (1, 2), "padding": "valid"}, (-0.1, 0.3)),
    ((5, 5, 1), {"filters": 2, "kernel_size": 1, "strides": 2, "padding": "same"}, (-4.0, 1.0)),
    (
        (9, 4, 4),
        {"filters": 5, "kernel_size": (5, 3), "strides": (2, 1), "padding": "same", "use_bias": False},
        (-2.0, 2.0),
    ),
    ((6, 8, 2), {"filters": 3, "kernel_size": (4, 4), "strides": (1, 3), "padding": "same"}, (0.0, 6.0)),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("in_shape", "config", "value_range"), CONV_CASES)
def test_conv2d_matches_tflite_micro(
    tflite: Any, in_shape: tuple[int, int, int], config: dict[str, Any], value_range: tuple[float, float]
) -> None:
    model = convert(tflite, "conv", in_shape, value_range, **config)
    op = read_single_op(model)
    assert op.name == "CONV_2D"
    assert op.activation == KERAS_ACTIVATION_CODES[config.get("activation")]
    assert op.options.padding == {"same": 0, "valid": 1}[config["padding"]]
    # An int64 bias even for use_bias=False (all zeros then), per-channel weights.
    assert op.bias_type == "INT64" and op.bias is not None
    if not config.get("use_bias", True):
        assert not np.any(op.bias)
    assert op.filter_scales.shape == (config["filters"],)
    check_model(model, value_range, seed_of(in_shape, sorted(config.items())))


@pytest.mark.tensorflow
def test_conv2d_int32_bias(tflite: Any) -> None:
    model = convert(tflite, "conv", (6, 5, 3), (-2.0, 3.0), bias_type="int32", filters=4, kernel_size=3, padding="same")
    op = read_single_op(model)
    assert op.name == "CONV_2D" and op.bias_type == "INT32"
    counts = check_model(model, (-2.0, 3.0), 21)
    assert counts["other_path_differs"] > 0


# --------------------------------------------------------------------------
# DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------

DEPTHWISE_CASES: list[tuple[tuple[int, int, int], dict[str, Any], tuple[float, float]]] = [
    ((6, 5, 3), {"kernel_size": 3, "padding": "same"}, (-2.0, 3.0)),
    (
        (7, 6, 2),
        {"kernel_size": 3, "depth_multiplier": 2, "strides": 2, "padding": "valid", "activation": "relu"},
        (-1.0, 1.0),
    ),
    (
        (8, 8, 2),
        {"kernel_size": (2, 3), "depth_multiplier": 3, "dilation_rate": 2, "padding": "same", "use_bias": False},
        (-5.0, 5.0),
    ),
    ((5, 7, 4), {"kernel_size": (3, 1), "strides": (1, 2), "padding": "same", "activation": "relu6"}, (-30.0, 30.0)),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("in_shape", "config", "value_range"), DEPTHWISE_CASES)
def test_depthwise_conv2d_matches_tflite_micro(
    tflite: Any, in_shape: tuple[int, int, int], config: dict[str, Any], value_range: tuple[float, float]
) -> None:
    model = convert(tflite, "depthwise", in_shape, value_range, **config)
    op = read_single_op(model)
    assert op.name == "DEPTHWISE_CONV_2D"
    assert op.options.depthMultiplier == config.get("depth_multiplier", 1)
    assert op.activation == KERAS_ACTIVATION_CODES[config.get("activation")]
    assert op.bias_type == "INT64" and op.bias is not None
    assert op.filter_scales.shape == (in_shape[2] * config.get("depth_multiplier", 1),)
    check_model(model, value_range, seed_of(in_shape, sorted(config.items())))


@pytest.mark.tensorflow
def test_depthwise_int32_bias_is_misread_by_tflite_micro(tflite: Any) -> None:
    """The converter emits an int32 DEPTHWISE_CONV_2D bias on request, but TFLM's 16x8 kernel reads int64.

    Neither accumulator path reproduces TFLM's output: such a model must be
    rejected, not compiled.
    """
    model = convert(
        tflite,
        "depthwise",
        (6, 5, 3),
        (-2.0, 3.0),
        bias_type="int32",
        kernel_size=3,
        depth_multiplier=2,
        padding="same",
    )
    op = read_single_op(model)
    assert op.name == "DEPTHWISE_CONV_2D" and op.bias_type == "INT32"
    assert op.bias is not None
    inputs = int16_inputs(op, (-2.0, 3.0), 31)[6:]
    for x, y in zip(inputs, run_tflm(model, inputs), strict=True):
        assert np.count_nonzero(numpy_op(op, x) != y) > y.size // 2
        assert np.count_nonzero(numpy_op(op, x, bias=op.bias.astype(np.int64)) != y) > y.size // 2


# --------------------------------------------------------------------------
# Patched models: no bias tensor, large multipliers, RELU_N1_TO_1
# --------------------------------------------------------------------------

PATCH_BASES: dict[str, tuple[str, tuple[int, ...], dict[str, Any]]] = {
    "dense": ("dense", (30,), {"units": 4}),
    "conv": ("conv", (6, 5, 2), {"filters": 3, "kernel_size": 3, "padding": "same"}),
    "depthwise": ("depthwise", (6, 5, 2), {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"}),
    "conv_int32": ("conv", (6, 5, 2), {"filters": 3, "kernel_size": 3, "padding": "same"}),
    "dense_int32": ("dense", (30,), {"units": 4}),
}


def patch_base(tf: Any, name: str) -> bytes:
    kind, in_shape, config = PATCH_BASES[name]
    return convert(tf, kind, in_shape, (-2.0, 2.0), bias_type="int32" if name.endswith("int32") else None, **config)


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", ["dense", "conv", "depthwise"])
def test_no_bias_tensor_takes_the_int64_path(tflite: Any, name: str) -> None:
    """The bias input removed: TFLM passes a null bias and still rounds with the int64 overload."""
    model = patch_model(patch_base(tflite, name), drop_bias=True)
    assert read_single_op(model).bias is None
    counts = check_model(model, (-2.0, 2.0), 41)
    assert counts["other_path_differs"] > 0


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", ["dense", "conv", "depthwise", "conv_int32", "dense_int32"])
@pytest.mark.parametrize("log2_ratio", [-20, 1, 6])
def test_patched_output_scale(tflite: Any, name: str, log2_ratio: int) -> None:
    """Output scale patched to ``input_scale * max(filter_scale) / 2**k``: shifts from -20 to 7 (left shifts too).

    The biases are replaced by small values of the same dtype, which the
    large multipliers would otherwise saturate.
    """
    base = patch_base(tflite, name)
    op = read_single_op(base)
    assert op.bias is not None
    scale = float(np.float32(op.input_scale * float(op.filter_scales.max()) / 2.0**log2_ratio))
    small_bias = np.random.default_rng(log2_ratio + 40).integers(-40, 41, size=op.bias.shape).astype(op.bias.dtype)
    model = patch_model(base, output_scale=scale, bias_values=small_bias)
    patched = read_single_op(model)
    _, shifts = op_multipliers(patched)
    assert int(shifts.max()) in (log2_ratio, log2_ratio + 1)
    assert patched.bias is not None and np.array_equal(patched.bias, small_bias)
    # With multipliers of 2 to 2**6 only the smallest inputs stay inside the int16 range.
    check_model(model, (-2.0, 2.0), 42, min_unsaturated=0.01 if log2_ratio > 0 else 0.15)


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", ["dense", "conv", "depthwise", "conv_int32"])
@pytest.mark.parametrize("code", [2, 3])
def test_patched_clamps(tflite: Any, name: str, code: int) -> None:
    """RELU_N1_TO_1 and RELU6 patched in, with an output scale that makes both bounds clip."""
    base = patch_base(tflite, name)
    scale = float(np.float32((1.0 if code == 2 else 6.0) / 20000.0))
    model = patch_model(base, activation=code, output_scale=scale)
    op = read_single_op(model)
    act_min, act_max = fused_activation_range_s16(code, op.output_scale)
    assert act_max == 20000 and act_min == (-20000 if code == 2 else 0)
    counts = check_model(model, (-2.0, 2.0), 43, min_unsaturated=0.1)
    assert counts["unsaturated"] < counts["elements"]


# --------------------------------------------------------------------------
# The int64 multiply by hand and against plain Python integers
# --------------------------------------------------------------------------


def mbqm64_python(acc: int, multiplier: int, shift: int) -> int:
    """The TFLite expression with Python integers (floor shifts), then the int32 truncation."""
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total_shift = 15 - shift
    result = (acc * reduced + (1 << (total_shift - 1))) >> total_shift
    return (result + 2**31) % 2**32 - 2**31


def test_mbqm64_by_hand() -> None:
    # Multiplier one half (2**30, shift 0): reduced 2**14, (acc + 1) >> 1: ties go toward +infinity.
    acc = np.array([-5, -3, -2, -1, 0, 1, 2, 3, 5])
    assert multiply_by_quantized_multiplier_int64(acc, 2**30, 0).tolist() == [-2, -1, -1, 0, 0, 1, 1, 2, 3]
    # So do the int32 overload's at shift 0 (SaturatingRoundingDoublingHighMul's nudge).
    assert multiply_by_quantized_multiplier(acc, 2**30, 0).tolist() == [-2, -1, -1, 0, 0, 1, 1, 2, 3]
    # One quarter (shift -1): one rounding, floor((acc + 2) / 4), against the int32 overload's two
    # (high multiply, then a rounding shift with ties away from zero: -1.5 -> -2, and 5 -> 2.5 -> 3 -> 1.5 -> 2).
    acc = np.array([-6, -5, -2, 2, 5, 6])
    assert multiply_by_quantized_multiplier_int64(acc, 2**30, -1).tolist() == [-1, -1, 0, 1, 1, 2]
    assert multiply_by_quantized_multiplier(acc, 2**30, -1).tolist() == [-2, -1, -1, 1, 2, 2]
    # Reduction to 16 bits: rounding half up, the cap at 0x7FFF.
    assert reduced_multiplier([2**30, 2**30 + 2**15 - 1, 2**30 + 2**15, 0x7FFE7FFF, 0x7FFE8000]).tolist() == [
        2**14,
        2**14,
        2**14 + 1,
        0x7FFE,
        0x7FFF,
    ]
    assert reduced_multiplier([0x7FFF0000, 2**31 - 1, 0]).tolist() == [0x7FFF, 0x7FFF, 0]
    # Shift 7 (total 8) and -31 (total 46); a flushed multiplier gives 0.
    assert multiply_by_quantized_multiplier_int64(3, 2**30, 7).tolist() == (3 * 2**14 + 2**7) >> 8
    assert multiply_by_quantized_multiplier_int64(2**46, 2**30, -31).tolist() == 2**14  # 2**46 * 2**-1 * 2**-31
    assert multiply_by_quantized_multiplier_int64(-(2**47), 0, 0).tolist() == 0
    # No saturation: the int64 result wraps to int32.
    big = multiply_by_quantized_multiplier_int64(2**47 - 1, 2**31 - 1, 7)
    assert big.tolist() == mbqm64_python(2**47 - 1, 2**31 - 1, 7)
    assert big.tolist() != ((2**47 - 1) * 0x7FFF + 2**7) >> 8
    # Per-channel broadcast along the last axis.
    got = multiply_by_quantized_multiplier_int64(np.full((2, 3), 1000), [2**30, 2**30, 1 << 30], [0, -1, 1])
    assert got.tolist() == [[500, 250, 1000]] * 2


def test_mbqm64_rejects_inputs_outside_tflite_domain() -> None:
    with pytest.raises(ValueError, match="accumulator"):
        multiply_by_quantized_multiplier_int64(2**47, 2**30, 0)
    with pytest.raises(ValueError, match="shift"):
        multiply_by_quantized_multiplier_int64(1, 2**30, 8)
    with pytest.raises(ValueError, match="shift"):
        multiply_by_quantized_multiplier_int64(1, 2**30, -32)
    with pytest.raises(ValueError, match="multiplier"):
        multiply_by_quantized_multiplier_int64(1, -1, 0)


def random_mbqm64_inputs(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` (acc, multiplier, shift) triples in TFLite's domain, biased toward the interesting corners."""
    magnitude_bits = rng.integers(0, 48, size=count)
    acc = rng.integers(0, 2**47, size=count, dtype=np.int64) >> (47 - magnitude_bits)
    acc = np.where(rng.random(count) < 0.5, -acc, acc)
    acc = np.where(acc == 2**47, 2**47 - 1, acc)
    multiplier = rng.integers(2**30, 2**31, size=count, dtype=np.int64)  # QuantizeMultiplier's range
    corner = rng.random(count)
    multiplier = np.where(corner < 0.05, rng.integers(0, 2**31, size=count), multiplier)
    multiplier = np.where((corner >= 0.05) & (corner < 0.1), rng.integers(0x7FFE0000, 2**31, size=count), multiplier)
    multiplier = np.where((corner >= 0.1) & (corner < 0.12), 0, multiplier)
    # Exact ties: low 16 bits 0x8000 in the multiplier.
    multiplier = np.where((corner >= 0.12) & (corner < 0.15), (multiplier & ~0xFFFF) | 0x8000, multiplier)
    shift = rng.integers(-31, 8, size=count)
    edges_acc = np.array([-(2**47), 2**47 - 1, -1, 0, 1, -(2**14), 2**14, -(2**46), 2**46], dtype=np.int64)
    edges = [(a, m, s) for a in edges_acc for m in (0, 2**30, 0x7FFF0000, 2**31 - 1) for s in (-31, -15, 0, 7)]
    acc = np.concatenate([acc, np.array([e[0] for e in edges], dtype=np.int64)])
    multiplier = np.concatenate([multiplier, np.array([e[1] for e in edges], dtype=np.int64)])
    shift = np.concatenate([shift, np.array([e[2] for e in edges], dtype=np.int64)])
    return acc, multiplier, shift


def test_mbqm64_matches_python_integers() -> None:
    acc, multiplier, shift = random_mbqm64_inputs(np.random.default_rng(7), 20_000)
    got = multiply_by_quantized_multiplier_int64(acc, multiplier, shift)
    expected = [mbqm64_python(int(a), int(m), int(s)) for a, m, s in zip(acc, multiplier, shift, strict=True)]
    assert got.tolist() == expected


def test_multipliers_by_hand() -> None:
    # Per channel: double(s_in) * double(s_w) / double(s_out).
    mults, shifts = per_channel_multipliers(0.5, [0.25, 0.125], 1.0)
    assert mults.tolist() == [2**30, 2**30] and shifts.tolist() == [-2, -3]
    assert per_channel_multipliers(0.5, 0.25, 1.0)[0].shape == (1,)
    # FC, per tensor too: the double product of the float32 scales, not a float32 product.
    s_in, s_w, s_out = 1.1e-4, 3.3e-3, 7.7e-5
    f32 = float(np.float32(s_in) * np.float32(s_w)) / float(np.float32(s_out))
    f64 = float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out))
    assert quantize_multiplier(f32) != quantize_multiplier(f64)
    assert fully_connected_multipliers(s_in, [s_w], s_out)[0].tolist() == [quantize_multiplier(f64)[0]]
    assert per_channel_multipliers(s_in, [s_w], s_out)[0].tolist() == [quantize_multiplier(f64)[0]]
    both = fully_connected_multipliers(s_in, [s_w, s_w], s_out)
    assert both[0].tolist() == [quantize_multiplier(f64)[0]] * 2


def test_fused_activation_range_s16() -> None:
    assert fused_activation_range_s16(0, 1e-3) == (INT16_MIN, INT16_MAX)
    assert fused_activation_range_s16(1, 1e-3) == (0, INT16_MAX)
    assert fused_activation_range_s16(3, 1e-3) == (0, 6000)
    assert fused_activation_range_s16(3, 1e-4) == (0, INT16_MAX)
    assert fused_activation_range_s16(2, 0.4) == (-3, 3)  # 2.5 rounds away from zero
    with pytest.raises(ValueError):
        fused_activation_range_s16(4, 1.0)
    with pytest.raises(ValueError, match="overflows"):
        fused_activation_range_s16(3, 1e-12)


def test_dense_s16_by_hand() -> None:
    x = np.array([[1, -2, 0], [1000, -2000, 3]], dtype=np.int16)
    kernel = np.array([[2, 1], [4, -2], [-128, 127]], dtype=np.int8)
    # Sums: -6 and 5; 2000 - 8000 - 384 = -6384 and 1000 + 4000 + 381 = 5381.
    quarter = (np.array([2**30, 2**30]), np.array([-1, -1]))
    assert dense_s16(x, kernel, None, *quarter).tolist() == [[-1, 1], [-1596, 1345]]  # int64 path, one rounding
    zero32 = np.zeros(2, np.int32)
    # The int32 path rounds twice: 5381 / 4 = 1345.25 -> 2690.5 -> 2691 -> 1345.5 -> 1346.
    assert dense_s16(x, kernel, zero32, *quarter).tolist() == [[-2, 2], [-1596, 1346]]
    assert dense_s16(x, kernel, np.array([2, 3], np.int64), *quarter).tolist() == [[-1, 2], [-1595, 1346]]
    # Per-tensor [1] multipliers broadcast; the clamp.
    assert dense_s16(x, kernel, None, [2**30], [1], -3000, 3000).tolist() == [[-6, 5], [-3000, 3000]]
    with pytest.raises(ValueError):
        dense_s16(x, kernel, np.array([1.0, 2.0]), *quarter)
    with pytest.raises(ValueError):
        dense_s16(x, kernel[:2], None, *quarter)


def test_requantize_s16_int32_path_wraps_like_tflm() -> None:
    """An int32 accumulator wraps (TFLM's int32 AccumScalar); the int64 path keeps the exact sum."""
    acc = np.array([2**31 - 10])
    wrapped = requantize_s16(acc, np.array([20], np.int32), [2**30], [-20])
    exact = requantize_s16(acc, np.array([20], np.int64), [2**30], [-20])
    assert wrapped.tolist() == [-1024] and exact.tolist() == [1024]


# --------------------------------------------------------------------------
# C against NumPy
# --------------------------------------------------------------------------

RUN_CASES = r"""
/* The input: count int64 accumulators, count int32 multipliers, count int32 shifts (after the
 * count); the output: count int32 results. */
static int run_cases(FILE *fin, FILE *fout, int32_t count)
{
    int32_t k;
    int64_t *acc;
    int32_t *multiplier;
    int32_t *shift;
    int32_t *out;
    acc = (int64_t *)malloc(sizeof *acc * (size_t)count);
    multiplier = (int32_t *)malloc(sizeof *multiplier * (size_t)count);
    shift = (int32_t *)malloc(sizeof *shift * (size_t)count);
    out = (int32_t *)malloc(sizeof *out * (size_t)count);
    if (acc == NULL || multiplier == NULL || shift == NULL || out == NULL) {
        return 4;
    }
    if (fread(acc, sizeof *acc, (size_t)count, fin) != (size_t)count
        || fread(multiplier, sizeof *multiplier, (size_t)count, fin) != (size_t)count
        || fread(shift, sizeof *shift, (size_t)count, fin) != (size_t)count) {
        return 5;
    }
    for (k = 0; k < count; ++k) {
        out[k] = nn_mbqm64(acc[k], multiplier[k], shift[k]);
    }
    if (fwrite(out, sizeof *out, (size_t)count, fout) != (size_t)count) {
        return 6;
    }
    free(out);
    free(shift);
    free(multiplier);
    free(acc);
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_harness(compiler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """requant.c (nn_mbqm64), compiled with sanitizers."""
    return build_harness(tmp_path_factory.mktemp("int16_c"), ["requant.c"], RUN_CASES, compiler=compiler)


def run_c_mbqm64(binary: Path, acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, work: Path) -> np.ndarray:
    data = (
        np.array([acc.size], dtype="<i4").tobytes()
        + acc.astype("<i8").tobytes()
        + multiplier.astype("<i4").tobytes()
        + shift.astype("<i4").tobytes()
    )
    return np.frombuffer(run_harness(binary, data, work), dtype="<i4").astype(np.int64)


def test_c_mbqm64_matches_numpy(c_harness: Path, tmp_path: Path) -> None:
    acc, multiplier, shift = random_mbqm64_inputs(np.random.default_rng(20240701), 150_000)
    # The multipliers and shifts of real 16x8 layers, on accumulators of realistic size.
    rng = np.random.default_rng(5)
    scales = np.exp(rng.uniform(np.log(1e-6), np.log(1e2), size=2000))
    pairs = [quantize_multiplier(float(s)) for s in scales]
    real_m = np.array([p[0] for p in pairs], dtype=np.int64)
    real_s = np.array([p[1] for p in pairs], dtype=np.int64)
    keep = (real_s >= -31) & (real_s <= 7)
    real_acc = rng.integers(-(2**40), 2**40, size=int(keep.sum()), dtype=np.int64)
    acc = np.concatenate([acc, real_acc])
    multiplier = np.concatenate([multiplier, real_m[keep]])
    shift = np.concatenate([shift, real_s[keep]])
    assert acc.size >= 100_000
    expected = multiply_by_quantized_multiplier_int64(acc, multiplier, shift)
    got = run_c_mbqm64(c_harness, acc, multiplier, shift, tmp_path)
    differing = np.flatnonzero(got != expected)
    assert differing.size == 0, (
        f"{differing.size} of {acc.size} differ, first acc={acc[differing[0]]} m={multiplier[differing[0]]} "
        f"shift={shift[differing[0]]}: C {got[differing[0]]}, NumPy {expected[differing[0]]}"
    )


def test_c_int16_compiles_without_warnings(compiler: str, tmp_path: Path) -> None:
    """requant.c under the strict flags at -O2: no warning (an unused static inline is fine)."""
    user = entry_point(
        "int64_t acc, int32_t m, int32_t s",
        "return nn_mbqm64(acc, m, s) + nn_mbqm((int32_t)acc, m, s);",
        returns="int32_t",
    )
    for extra in (user, ""):
        proc = compile_c(runtime_unit("requant.c", extra), tmp_path / "unit.o", compiler=compiler)
        assert proc.returncode == 0, proc.stderr
