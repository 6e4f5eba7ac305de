"""int8 ADD, AVERAGE_POOL_2D and MEAN: NumPy against TensorFlow Lite Micro, C against NumPy.

Every comparison is ``np.array_equal`` on the int8 outputs: zero differing
bytes, not a tolerance. The TFLM side runs tiny Keras models converted to full
int8 (``Add`` of two model inputs, ``AveragePooling1D/2D``,
``GlobalAveragePooling1D/2D``); each test first checks which TFLite operators
the converter produced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.qmath.add import AddS8Params, add_s8, add_s8_params, quantize_multiplier_smaller_than_one_exp
from nndsl.qmath.pooling import (
    MeanS8Params,
    avg_pool_s8,
    mean_multiplier,
    mean_s8,
    mean_s8_params,
)
from nndsl.qmath.requant import activation_range
from tests.c_harness import (
    OpCase,
    build_harness,
    compile_c,
    entry_point,
    op_cases_source,
    run_op_cases,
    runtime_unit,
)
from tests.qmath_reference import pool_padding
from tests.tflite_models import (
    FUSED_ACTIVATIONS,
    KERAS_ACTIVATION_CODES,
    PADDING_CODES,
    assert_bit_exact,
    convert_keras,
    model_graph,
    patch_model,
    run_tflm,
    seed_of,
    tensor_quantization,
)

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def fused_range(code: int, scale: float, zero_point: int) -> tuple[int, int]:
    low, high = FUSED_ACTIVATIONS[code]
    return activation_range(low, high, scale, zero_point, -128, 127)


def random_int8(rng: np.random.Generator, shape: tuple[int, ...], count: int) -> list[np.ndarray]:
    """``count`` random int8 arrays of ``shape``, after the all -128 and all 127 ones."""
    arrays = [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]
    arrays += [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(count)]
    return arrays


# --------------------------------------------------------------------------
# ADD
# --------------------------------------------------------------------------

ADD_SHAPE = (256, 256)  # one invocation covers every (a, b) pair of int8 values


def keras_activation(tf: Any, y: Any, activation: str | None) -> Any:
    """``y`` followed by a Keras ReLU or ReLU6 layer (or nothing): what TFLite fuses into the op before it."""
    if activation == "relu":
        return tf.keras.layers.ReLU()(y)
    if activation == "relu6":
        return tf.keras.layers.ReLU(max_value=6.0)(y)
    return y


def add_model(tf: Any, ranges: tuple[tuple[float, float], tuple[float, float]], activation: str | None) -> bytes:
    keras = tf.keras
    a = keras.Input(ADD_SHAPE)
    b = keras.Input(ADD_SHAPE)
    y = keras_activation(tf, keras.layers.Add()([a, b]), activation)
    model = keras.Model([a, b], y)
    return convert_keras(tf, model, [ADD_SHAPE, ADD_SHAPE], list(ranges), seed_of("add", ranges, activation))


def all_pairs() -> tuple[np.ndarray, np.ndarray]:
    a = np.broadcast_to(ALL_INT8[None, :], ADD_SHAPE).copy()
    b = np.broadcast_to(ALL_INT8[:, None], ADD_SHAPE).copy()
    return a, b


def check_add_model(tf: Any, model: bytes, seed: int) -> tuple[AddS8Params, tuple[float, float, float]]:
    """ADD of the two model inputs: NumPy == TFLM on every int8 pair and on random data; the params and scales."""
    graph = model_graph(model)
    assert graph.names == ["ADD"]
    op = graph.only("ADD")
    quant = tensor_quantization(model)
    (s1, z1), (s2, z2), (so, zo) = quant[op.inputs[0]], quant[op.inputs[1]], quant[op.outputs[0]]
    params = add_s8_params(s1, z1, s2, z2, so, zo)
    act_min, act_max = fused_range(op.options["fusedActivationFunction"], so, zo)
    # Model input k is subgraph input k; the ADD may take them in either order.
    position = {tensor: k for k, tensor in enumerate(graph.inputs)}
    rng = np.random.default_rng(seed)
    a, b = all_pairs()
    pairs = [(a, b), (rng.integers(-128, 128, ADD_SHAPE).astype(np.int8), rng.integers(-128, 128, ADD_SHAPE))]
    batches = []
    for first, second in pairs:
        inputs: list[np.ndarray] = [np.empty(0)] * 2
        inputs[position[op.inputs[0]]] = first.astype(np.int8)[None]
        inputs[position[op.inputs[1]]] = second.astype(np.int8)[None]
        batches.append(inputs)
    for (first, second), expected in zip(pairs, run_tflm(model, batches), strict=True):
        got = add_s8(first, second, params, act_min, act_max)
        assert_bit_exact(got, expected.reshape(ADD_SHAPE), np.int8, (params, act_min, act_max))
    return params, (s1, s2, so)


ADD_CASES = [
    ((-1.0, 1.0), (-5.0, 3.0), None),
    ((-1.0, 1.0), (-5.0, 3.0), "relu"),
    ((0.0, 1.0), (-0.01, 0.02), "relu6"),
    ((-100.0, 100.0), (-1.0, 1.0), None),
    ((-0.3, 2.0), (-0.3, 2.5), "relu"),
    ((-1000.0, 10.0), (-0.001, 0.001), None),
    ((-4.0, 4.0), (0.5, 9.0), "relu6"),
    ((-2.0, -1.0), (3.0, 40.0), None),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("range1", "range2", "activation"), ADD_CASES)
def test_add_matches_tflite_micro(
    tflite: Any, range1: tuple[float, float], range2: tuple[float, float], activation: str | None
) -> None:
    model = add_model(tflite, (range1, range2), activation)
    assert model_graph(model).only("ADD").options["fusedActivationFunction"] == KERAS_ACTIVATION_CODES[activation]
    _, (s1, s2, _) = check_add_model(tflite, model, seed=seed_of(range1, range2))
    assert s1 != s2  # the two inputs really are rescaled differently


@pytest.mark.tensorflow
def test_add_patched_activation_and_scales(tflite: Any) -> None:
    """RELU_N1_TO_1, a flushed input multiplier and an output multiplier near one, patched into a converted ADD."""
    model = add_model(tflite, ((-1.0, 1.0), (-5.0, 3.0)), None)
    op = model_graph(model).only("ADD")
    quant = tensor_quantization(model)
    (s1, z1), (s2, _), (so, zo) = quant[op.inputs[0]], quant[op.inputs[1]], quant[op.outputs[0]]
    check_add_model(tflite, patch_model(model, fusedActivationFunction=2), seed=1)
    # Input 1 scale 2**-40 of input 2's: its multiplier flushes to zero, input 1 is ignored.
    tiny = patch_model(model, quant={op.inputs[0]: (s2 * 2.0**-40, z1)})
    params, _ = check_add_model(tflite, tiny, seed=2)
    assert params.input1_multiplier == 0
    # Output multiplier 2 * max_scale / (2**20 * out_scale) about 0.99; and a large output scale.
    near_one = float(np.float32(2 * max(s1, s2) / (2**20 * 0.99)))
    params, _ = check_add_model(tflite, patch_model(model, quant={op.outputs[0]: (near_one, zo)}), seed=3)
    assert params.output_shift == 0
    check_add_model(tflite, patch_model(model, quant={op.outputs[0]: (so * 1000.0, zo)}), seed=4)


# --------------------------------------------------------------------------
# AVERAGE_POOL_2D (AveragePooling2D, AveragePooling1D)
# --------------------------------------------------------------------------


def pool2d_model(
    tf: Any,
    in_hwc: tuple[int, int, int],
    pool: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    activation: str | None,
    value_range: tuple[float, float],
) -> bytes:
    keras = tf.keras
    x = keras.Input(in_hwc)
    y = keras_activation(tf, keras.layers.AveragePooling2D(pool, strides, padding=padding)(x), activation)
    key = ("pool2d", in_hwc, pool, strides, padding, activation, value_range)
    return convert_keras(tf, keras.Model(x, y), [in_hwc], [value_range], seed_of(*key))


def pool1d_model(tf: Any, in_wc: tuple[int, int], pool: int, stride: int, padding: str) -> bytes:
    keras = tf.keras
    x = keras.Input(in_wc)
    y = keras.layers.AveragePooling1D(pool, stride, padding=padding)(x)
    return convert_keras(tf, keras.Model(x, y), [in_wc], [(-1.5, 2.0)], seed_of("pool1d", in_wc, pool, stride))


def check_avg_pool_model(
    tf: Any,
    model: bytes,
    in_shape: tuple[int, ...],
    pool: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    activation_code: int,
    seed: int,
) -> None:
    """The model's AVERAGE_POOL_2D has the expected options; NumPy == TFLM on its int8 input and output.

    ``in_shape`` is the model input without the batch: ``(H, W, C)``, or
    ``(W, C)`` for AveragePooling1D, whose EXPAND_DIMS makes it ``[1, 1, W, C]``.
    """
    graph = model_graph(model)
    op = graph.only("AVERAGE_POOL_2D")
    assert op.options["filterHeight"] == pool[0] and op.options["filterWidth"] == pool[1]
    assert op.options["strideH"] == strides[0] and op.options["strideW"] == strides[1]
    assert op.options["padding"] == PADDING_CODES[padding]
    assert op.options["fusedActivationFunction"] == activation_code
    pool_in = graph.shapes[op.inputs[0]]
    pool_out = graph.shapes[op.outputs[0]]
    in_h, in_w, channels = pool_in[1:]
    out_h, pad_top = pool_padding(in_h, pool[0], strides[0], padding)
    out_w, pad_left = pool_padding(in_w, pool[1], strides[1], padding)
    assert pool_out == (1, out_h, out_w, channels)
    quant = tensor_quantization(model)
    scale, zero_point = quant[graph.inputs[0]]
    assert quant[op.inputs[0]] == quant[op.outputs[0]] == quant[graph.outputs[0]] == (scale, zero_point)
    act_min, act_max = fused_range(activation_code, scale, zero_point)
    inputs = random_int8(np.random.default_rng(seed), (1, *in_shape), 6)
    outputs = run_tflm(model, [[x] for x in inputs])
    for x, expected in zip(inputs, outputs, strict=True):
        got = avg_pool_s8(x.reshape(pool_in), pool, strides, (pad_top, pad_left), (out_h, out_w), act_min, act_max)
        context = (in_shape, pool, strides, padding, act_min, act_max)
        assert_bit_exact(got.reshape(expected.shape), expected, np.int8, context)


POOL2D_GRID = [
    (size, stride, padding)
    for size in (1, 2, 3)
    for stride in (1, 2, 3)
    for padding in ("same", "valid")
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("size", "stride", "padding"), POOL2D_GRID)
def test_average_pooling2d_matches_tflite_micro(tflite: Any, size: int, stride: int, padding: str) -> None:
    """Square pools and strides on a 5 x 7 input; channels and the fused activation vary with the case."""
    index = POOL2D_GRID.index((size, stride, padding))
    channels = (1, 3)[index % 2]
    activation = (None, "relu", "relu6")[index % 3]
    value_range = [(-1.0, 2.0), (-8.0, 3.0), (0.0, 0.05)][index % 3]
    in_hwc = (5, 7, channels)
    model = pool2d_model(tflite, in_hwc, (size, size), (stride, stride), padding, activation, value_range)
    assert model_graph(model).names == ["AVERAGE_POOL_2D"]
    check_avg_pool_model(
        tflite, model, in_hwc, (size, size), (stride, stride), padding, KERAS_ACTIVATION_CODES[activation], index
    )


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("in_hwc", "pool", "strides", "padding"),
    [
        ((5, 7, 3), (2, 3), (2, 1), "same"),
        ((5, 7, 1), (3, 1), (1, 3), "valid"),
        ((9, 3, 3), (3, 2), (3, 2), "same"),
        ((3, 3, 1), (3, 3), (1, 1), "same"),
        ((1, 9, 3), (1, 3), (1, 2), "same"),
    ],
)
def test_average_pooling2d_rectangular(
    tflite: Any, in_hwc: tuple[int, int, int], pool: tuple[int, int], strides: tuple[int, int], padding: str
) -> None:
    model = pool2d_model(tflite, in_hwc, pool, strides, padding, None, (-3.0, 1.0))
    assert model_graph(model).names == ["AVERAGE_POOL_2D"]
    check_avg_pool_model(tflite, model, in_hwc, pool, strides, padding, 0, seed=seed_of(in_hwc, pool))


POOL1D_GRID = [(size, stride, padding) for size in (1, 2, 3) for stride in (1, 2, 3) for padding in ("same", "valid")]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("size", "stride", "padding"), POOL1D_GRID)
def test_average_pooling1d_matches_tflite_micro(tflite: Any, size: int, stride: int, padding: str) -> None:
    """EXPAND_DIMS -> AVERAGE_POOL_2D (1 x size filter) -> RESHAPE; the int8 data fed at the model's ends."""
    channels = (1, 3)[POOL1D_GRID.index((size, stride, padding)) % 2]
    model = pool1d_model(tflite, (9, channels), size, stride, padding)
    assert model_graph(model).names == ["EXPAND_DIMS", "AVERAGE_POOL_2D", "RESHAPE"]
    check_avg_pool_model(tflite, model, (9, channels), (1, size), (1, stride), padding, 0, seed=size * 10 + stride)


@pytest.mark.tensorflow
@pytest.mark.parametrize("code", [1, 2, 3])
def test_average_pooling_patched_activation(tflite: Any, code: int) -> None:
    """RELU, RELU_N1_TO_1 and RELU6 patched into an AVERAGE_POOL_2D calibrated on [-8, 8]."""
    model = pool2d_model(tflite, (5, 7, 3), (2, 2), (1, 1), "same", None, (-8.0, 8.0))
    patched = patch_model(model, fusedActivationFunction=code)
    check_avg_pool_model(tflite, patched, (5, 7, 3), (2, 2), (1, 1), "same", code, seed=code)


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("in_hw", [(5, 7), (7, 3), (1, 5)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_average_pooling2d_full_grid(tflite: Any, in_hw: tuple[int, int], channels: int, padding: str) -> None:
    """Every pool size and stride in {1, 2, 3} x {1, 2, 3}, with every fused activation in turn."""
    in_hwc = (*in_hw, channels)
    for k, (ph, pw, sh, sw) in enumerate(
        (ph, pw, sh, sw) for ph in (1, 2, 3) for pw in (1, 2, 3) for sh in (1, 2, 3) for sw in (1, 2, 3)
    ):
        if padding == "valid" and (ph > in_hw[0] or pw > in_hw[1]):
            continue
        activation = (None, "relu", "relu6")[k % 3]
        model = pool2d_model(tflite, in_hwc, (ph, pw), (sh, sw), padding, activation, (-2.0, 5.0))
        code = KERAS_ACTIVATION_CODES[activation]
        check_avg_pool_model(tflite, model, in_hwc, (ph, pw), (sh, sw), padding, code, seed=k)


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("width", [1, 4, 7, 10])
@pytest.mark.parametrize("channels", [1, 3])
def test_average_pooling1d_full_grid(tflite: Any, width: int, channels: int) -> None:
    for size in (1, 2, 3, 4):
        for stride in (1, 2, 3):
            for padding in ("same", "valid"):
                if padding == "valid" and size > width:
                    continue
                model = pool1d_model(tflite, (width, channels), size, stride, padding)
                check_avg_pool_model(
                    tflite, model, (width, channels), (1, size), (1, stride), padding, 0, seed=size + stride
                )


# --------------------------------------------------------------------------
# MEAN (GlobalAveragePooling1D, GlobalAveragePooling2D)
# --------------------------------------------------------------------------


def global_pool_model(tf: Any, in_shape: tuple[int, ...], value_range: tuple[float, float], keepdims: bool) -> bytes:
    keras = tf.keras
    x = keras.Input(in_shape)
    layer = keras.layers.GlobalAveragePooling1D if len(in_shape) == 2 else keras.layers.GlobalAveragePooling2D
    y = layer(keepdims=keepdims)(x)
    key = ("gap", in_shape, value_range, keepdims)
    return convert_keras(tf, keras.Model(x, y), [in_shape], [value_range], seed_of(*key))


def check_mean_model(
    tf: Any, model: bytes, in_shape: tuple[int, ...], keepdims: bool, seed: int
) -> tuple[MeanS8Params, bool]:
    """MEAN over every axis but batch and channels; NumPy (positions = product of them) == TFLM.

    Returns the params and whether the input and output quantisations are equal.
    """
    graph = model_graph(model)
    assert graph.names == ["MEAN"]
    op = graph.only("MEAN")
    assert op.options["keepDims"] == keepdims
    assert graph.shapes[op.inputs[0]] == (1, *in_shape)
    # The axis tensor: a scalar 1 for 1-D, [1, 2] for 2-D (a constant; only its shape is checked here).
    assert graph.shapes[op.inputs[1]] == (() if len(in_shape) == 2 else (2,))
    quant = tensor_quantization(model)
    (in_scale, in_zp), (out_scale, out_zp) = quant[op.inputs[0]], quant[op.outputs[0]]
    positions = math.prod(in_shape[:-1])
    channels = in_shape[-1]
    params = mean_s8_params(in_scale, in_zp, out_scale, out_zp, positions)
    inputs = random_int8(np.random.default_rng(seed), (1, *in_shape), 8)
    # Narrow spreads too, so that outputs fall inside the output range rather than saturate.
    rng = np.random.default_rng(seed + 1)
    inputs += [
        np.clip(rng.integers(-8, 9, size=(1, *in_shape)) + int(centre), -128, 127).astype(np.int8)
        for centre in rng.integers(-128, 128, size=24)
    ]
    outputs = run_tflm(model, [[x] for x in inputs])
    for x, expected in zip(inputs, outputs, strict=True):
        got = mean_s8(x.reshape(1, positions, channels), params)
        assert_bit_exact(got.reshape(expected.shape), expected, np.int8, (in_shape, params))
    return params, (in_scale, in_zp) == (out_scale, out_zp)


MEAN_CASES = [
    ((1, 3), (-1.0, 2.0)),
    ((2, 4), (-1.0, 3.0)),
    ((7, 3), (-4.0, 4.0)),
    ((64, 2), (0.0, 1.0)),
    ((300, 3), (-50.0, 10.0)),
    ((1, 1, 3), (-1.0, 2.0)),
    ((3, 5, 4), (-2.0, 1.0)),
    ((7, 7, 3), (-0.01, 0.05)),
    ((2, 64, 1), (-6.0, 6.0)),
    ((16, 16, 3), (-3.0, 9.0)),
    ((1, 9, 2), (-1.0, 1.0)),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("in_shape", "value_range"), MEAN_CASES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling_matches_tflite_micro(
    tflite: Any, in_shape: tuple[int, ...], value_range: tuple[float, float], keepdims: bool
) -> None:
    model = global_pool_model(tflite, in_shape, value_range, keepdims)
    if keepdims and math.prod(in_shape[:-1]) == 1:
        # A mean over one position that keeps the shape is the identity: the converter emits no operator.
        assert model_graph(model).names == []
        return
    _, same_quantization = check_mean_model(tflite, model, in_shape, keepdims, seed=seed_of(in_shape, value_range))
    # One position: the converter keeps the input quantisation; otherwise the output gets its
    # own, narrower range. Both take QuantizedMeanOrSum.
    assert same_quantization == (math.prod(in_shape[:-1]) == 1)


@pytest.mark.tensorflow
# Counts with an odd factor and a factor 2 (6, 10, 12) make exact ties of the ideal mean, where
# QuantizedMeanOrSum's truncated multiplier (M << k) / count decides the rounding.
@pytest.mark.parametrize("in_shape", [(7, 3), (6, 4), (2, 5, 4), (3, 4, 2), (3, 5, 4), (16, 16, 3)])
def test_mean_same_quantization_still_rescales(tflite: Any, in_shape: tuple[int, ...]) -> None:
    """Output quantisation patched to the input's: still QuantizedMeanOrSum, no truncating shortcut.

    Older TFLM divided the raw sum with C's truncation when the quantisations
    were equal; the pinned build rounds through the multiplier: all -3 but one
    -2 averages -3 + 1/n, which truncation would make -2.
    """
    model = global_pool_model(tflite, in_shape, (-2.0, 2.0), False)
    op = model_graph(model).only("MEAN")
    quant = tensor_quantization(model)
    patched = patch_model(model, quant={op.outputs[0]: quant[op.inputs[0]]})
    params, same_quantization = check_mean_model(tflite, patched, in_shape, False, seed=7)
    assert same_quantization
    positions, channels = math.prod(in_shape[:-1]), in_shape[-1]
    x = np.full((1, positions, channels), -3, np.int8)
    x[0, 0] = -2
    expected = run_tflm(patched, [[x.reshape(1, *in_shape)]])[0].reshape(-1)
    assert np.array_equal(mean_s8(x, params).reshape(-1), expected)
    assert expected.tolist() == [-3] * channels


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    "ratio",
    [2.0**-29, 2.0**-31 * 1.5, 2.0**-33, 0.999, 1.0, 3.0, 2.0**12 * 0.7],
)
def test_mean_patched_output_scales(tflite: Any, ratio: float) -> None:
    """``in_scale / out_scale`` patched from 2**-33 (flushed) to ~2**11: the ``31 + shift`` clamp and left shifts."""
    in_shape = (5, 7, 3)
    model = global_pool_model(tflite, in_shape, (-2.0, 2.0), False)
    op = model_graph(model).only("MEAN")
    quant = tensor_quantization(model)
    in_scale, in_zp = quant[op.inputs[0]]
    # A zero point other than the input's: even ratio 1 takes QuantizedMeanOrSum.
    out_zp = in_zp + 3
    patched = patch_model(model, quant={op.outputs[0]: (float(np.float32(in_scale / ratio)), out_zp)})
    check_mean_model(tflite, patched, in_shape, False, seed=8)


# --------------------------------------------------------------------------
# C against NumPy
# --------------------------------------------------------------------------

CALL_OP = r"""
static int call_op(int32_t op, const int32_t *p, const int8_t *in, int8_t *out)
{
    if (op == 0) {
        /* a and b in separate exact buffers */
        int8_t *b = (int8_t *)malloc((size_t)p[0]);
        if (b == NULL) {
            return 4;
        }
        memcpy(b, in + p[0], (size_t)p[0]);
        nn_add_s8(in, b, out, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12]);
        free(b);
    } else if (op == 1) {
        nn_avg_pool_s8(in, out, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12]);
    } else if (op == 2) {
        nn_mean_s8(in, out, p[0], p[1], p[2], p[3], p[4], p[5]);
    } else {
        return 5;
    }
    return 0;
}
"""

ALL_MACROS = ["NN_USE_ADD_S8", "NN_USE_AVG_POOL_S8", "NN_USE_MEAN_S8"]
# The runtime files of the three kernels, in the order the backend pastes them.
RUNTIME = ["requant.c", "binary.c", "add.c", "pooling.c"]


@pytest.fixture(scope="module")
def c_harness(compiler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three C kernels, compiled once with sanitisers into a file-to-file harness."""
    build = tmp_path_factory.mktemp("pool_add_c")
    run_cases = op_cases_source("int8_t", CALL_OP)
    return build_harness(build, RUNTIME, run_cases, macros=ALL_MACROS, compiler=compiler)


def add_case(a: np.ndarray, b: np.ndarray, params: AddS8Params, act_min: int, act_max: int) -> OpCase:
    expected = add_s8(a, b, params, act_min, act_max)
    args = (a.size, *dataclasses.astuple(params), act_min, act_max)
    return OpCase(0, args, np.concatenate([a, b]).astype(np.int8), expected)


def avg_pool_case(
    x: np.ndarray,
    pool: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int],
    out_hw: tuple[int, int],
    act: tuple[int, int],
) -> OpCase:
    """``x`` of shape (H, W, C): one batch item."""
    expected = avg_pool_s8(x[None], pool, strides, pads, out_hw, *act)[0]
    args = (*x.shape, *out_hw, *pool, *strides, *pads, *act)
    return OpCase(1, args, x.astype(np.int8), expected)


def mean_case(x: np.ndarray, params: MeanS8Params) -> OpCase:
    """``x`` of shape (positions, C)."""
    expected = mean_s8(x[None], params)[0]
    fields = dataclasses.astuple(params)
    args = (x.shape[0], x.shape[1], *(int(f) for f in fields[1:]))
    return OpCase(2, args, x.astype(np.int8), expected)


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.float32(math.exp(rng.uniform(math.log(low), math.log(high)))))


def random_act(rng: np.random.Generator) -> tuple[int, int]:
    if rng.random() < 0.5:
        return -128, 127
    low, high = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return low, high


def random_c_cases(rng: np.random.Generator) -> list[OpCase]:
    """NumPy-derived parameters at random scales and shapes, raw fields, and extremes."""
    cases: list[OpCase] = []

    def zp() -> int:
        return int(rng.integers(-128, 128))

    def int8s(*shape: int) -> np.ndarray:
        return rng.integers(-128, 128, size=shape).astype(np.int8)

    # ADD from random scales, then raw fields (any multiplier, shifts 0 to -31).
    all_a, all_b = (v.reshape(-1) for v in all_pairs())
    for k in range(400):
        s1, s2 = log_uniform(rng, 1e-5, 1e3), log_uniform(rng, 1e-5, 1e3)
        out_scale = max(s1, s2) * log_uniform(rng, 2.0**-18, 2.0**10)
        try:
            params = add_s8_params(s1, zp(), s2, zp(), out_scale, zp())
        except ValueError:  # TFLM's Prepare aborts
            continue
        a, b = (all_a, all_b) if k % 100 == 0 else (int8s(300), int8s(300))
        cases.append(add_case(a, b, params, *random_act(rng)))
    for _ in range(200):
        raw = AddS8Params(
            int(rng.integers(-127, 129)),
            int(rng.integers(0, 2**31)),
            int(rng.integers(-31, 1)),
            int(rng.integers(-127, 129)),
            int(rng.integers(0, 2**31)),
            int(rng.integers(-31, 1)),
            zp(),
            int(rng.integers(0, 2**31)),
            int(rng.integers(-31, 1)),
            20,
        )
        cases.append(add_case(int8s(200), int8s(200), raw, *random_act(rng)))
    for offset in (-127, 128):
        extreme = AddS8Params(offset, 2**31 - 1, 0, offset, 2**31 - 1, 0, 127, 2**31 - 1, 0, 20)
        cases.append(add_case(all_a, all_b, extreme, -128, 127))

    # AVERAGE_POOL_2D: TFLite padding, then arbitrary pads wherever every window keeps a tap.
    while sum(1 for c in cases if c.op == 1) < 500:
        in_h, in_w, channels = (int(v) for v in rng.integers(1, [10, 10, 5]))
        pool = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        strides = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        x = int8s(in_h, in_w, channels)
        if rng.random() < 0.6:
            padding = str(rng.choice(["same", "valid"]))
            try:
                out_h, pad_top = pool_padding(in_h, pool[0], strides[0], padding)
                out_w, pad_left = pool_padding(in_w, pool[1], strides[1], padding)
            except ValueError:
                continue
        else:
            pad_top, pad_left = int(rng.integers(0, pool[0])), int(rng.integers(0, pool[1]))
            out_h, out_w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        with contextlib.suppress(ValueError):  # a window without taps
            cases.append(avg_pool_case(x, pool, strides, (pad_top, pad_left), (out_h, out_w), random_act(rng)))
    cases.append(avg_pool_case(np.full((9, 9, 2), -128, np.int8), (5, 5), (1, 1), (2, 2), (9, 9), (-128, 127)))
    cases.append(avg_pool_case(np.full((9, 9, 2), 127, np.int8), (5, 5), (2, 2), (2, 2), (5, 5), (-128, 127)))

    # MEAN: from random scales (some input and output quantisations equal), then raw fields.
    for k in range(400):
        positions = int(rng.choice([1, 2, 3, 7, 35, 49, 64, 100, 256, 1000, 5000]))
        channels = int(rng.integers(1, 9))
        in_scale = log_uniform(rng, 1e-4, 1e2)
        in_zp = zp()
        if k % 5 == 0:
            out_scale, out_zp = in_scale, in_zp
        else:
            out_scale, out_zp = in_scale * log_uniform(rng, 2.0**-12, 2.0**36), zp()
        try:
            params = mean_s8_params(in_scale, in_zp, out_scale, out_zp, positions)
        except ValueError:
            continue
        x = int8s(positions, channels)
        if k % 3 == 0:  # narrow spread, so that outputs land inside the int8 range
            x = np.clip(x // 16 + int(rng.integers(-120, 121)), -128, 127).astype(np.int8)
        cases.append(mean_case(x, params))
    for _ in range(150):
        positions = int(rng.integers(1, 300))
        raw_mean = MeanS8Params(positions, zp(), zp(), int(rng.integers(0, 2**31)), int(rng.integers(-31, 31)))
        cases.append(mean_case(int8s(positions, int(rng.integers(1, 5))), raw_mean))
    for value in (-128, 127):
        cases.append(mean_case(np.full((4096, 2), value, np.int8), mean_s8_params(0.1, -128, 0.1, -128, 4096)))
        cases.append(mean_case(np.full((4096, 2), value, np.int8), mean_s8_params(0.1, 127, 0.001, -128, 4096)))
    return cases


def test_c_matches_numpy(c_harness: Path, tmp_path: Path) -> None:
    cases = random_c_cases(np.random.default_rng(20240613))
    per_op = {op: sum(1 for c in cases if c.op == op) for op in (0, 1, 2)}
    assert min(per_op.values()) >= 400, per_op
    got = run_op_cases(c_harness, cases, tmp_path, np.int8)
    differing = [i for i, (g, c) in enumerate(zip(got, cases, strict=True)) if not np.array_equal(g, c.expected)]
    # Bit-exact: zero differing bytes.
    assert not differing, f"{len(differing)} cases differ, first {cases[differing[0]].op} {cases[differing[0]].args}"


@pytest.mark.parametrize("macros", [[m] for m in ALL_MACROS] + [[]])
def test_c_each_kernel_alone_compiles_without_warnings(compiler: str, tmp_path: Path, macros: list[str]) -> None:
    """With only its own macro (or none) defined, no static function is left unused."""
    calls = {
        "NN_USE_ADD_S8": "nn_add_s8(in, in, out, 4, 0, 1 << 30, 0, 0, 1 << 30, -1, 0, 1 << 30, -19, 20, -128, 127);",
        "NN_USE_AVG_POOL_S8": "nn_avg_pool_s8(in, out, 2, 2, 1, 1, 1, 2, 2, 1, 1, 0, 0, -128, 127);",
        "NN_USE_MEAN_S8": "nn_mean_s8(in, out, 4, 1, 0, 0, 1 << 30, -1);",
    }
    user = entry_point(
        "const int8_t *in, int8_t *out", "out[0] = (int8_t)nn_mbqm(in[0], 1 << 30, 0);", *(calls[m] for m in macros)
    )
    proc = compile_c(runtime_unit(*RUNTIME, user, macros=macros), tmp_path / "unit.o",
                     compiler=compiler)
    assert proc.returncode == 0, proc.stderr


def test_c_shares_a_unit_with_the_other_kernels(compiler: str, tmp_path: Path) -> None:
    """requant.c, fixedpoint.c, softmax.c, activations.c, binary.c, add.c and pooling.c in one unit: no clashing
    names."""
    macros = [*ALL_MACROS, "NN_USE_TANH_S8", "NN_USE_LOGISTIC_S8", "NN_USE_HARD_SWISH_S8", "NN_USE_LEAKY_RELU_S8",
              "NN_USE_SOFTMAX_S8", "NN_USE_SOFTMAX_TABLE_S8"]
    user = entry_point(
        "const int8_t *in, int8_t *out, const int32_t *exp_table",
        "nn_softmax_s8(in, out, 1, 4, 1 << 30, 20, -100);",
        "nn_softmax_table_s8(in, out, 1, 4, -100, exp_table);",
        "nn_tanh_s8(in, out, 4, 0, 1, 1 << 30, 0);",
        "nn_logistic_s8(in, out, 4, 0, 1, 1 << 30, 0);",
        "nn_hard_swish_s8(in, out, 4, 0, 0, 1, 0, 1, 0);",
        "nn_leaky_relu_s8(in, out, 4, 0, 0, 1, 0, 1, 0);",
        "nn_add_s8(in, in, out, 4, 0, 1 << 30, 0, 0, 1 << 30, -1, 0, 1 << 30, -19, 20, -128, 127);",
        "nn_avg_pool_s8(in, out, 2, 2, 1, 1, 1, 2, 2, 1, 1, 0, 0, -128, 127);",
        "nn_mean_s8(in, out, 4, 1, 0, 0, 1 << 30, -1);",
    )
    files = ["requant.c", "fixedpoint.c", "softmax.c", "activations.c", "binary.c", "add.c", "pooling.c"]
    unit = runtime_unit(*files, user, macros=macros)
    proc = compile_c(unit, tmp_path / "unit.o", compiler=compiler)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# Parameters and kernels by hand, and against floating point
# --------------------------------------------------------------------------


def test_add_params_by_hand() -> None:
    # twice_max = 1: 0.5 -> (2**30, 0), 0.25 -> (2**30, -1); output 1 / (2**20 * 1) -> (2**30, -19).
    assert add_s8_params(0.5, 3, 0.25, -4, 1.0, 7) == AddS8Params(-3, 2**30, 0, 4, 2**30, -1, 7, 2**30, -19, 20)
    # Equal scales: both multipliers one half.
    params = add_s8_params(0.1, 0, 0.1, 0, 0.2, 0)
    assert (params.input1_multiplier, params.input1_shift) == (params.input2_multiplier, params.input2_shift)
    with pytest.raises(ValueError, match="TFLITE_CHECK"):
        add_s8_params(1.0, 0, 1.0, 0, 2.0**-19, 0)  # output multiplier 2 / (2**20 * 2**-19) = 1
    with pytest.raises(ValueError, match="TFLITE_CHECK"):
        quantize_multiplier_smaller_than_one_exp(1.0 - 2.0**-40)  # rounds up to 2**31: shift 1
    with pytest.raises(ValueError, match="int8"):
        add_s8_params(1.0, 200, 1.0, 0, 1.0, 0)


@pytest.mark.parametrize(("s1", "s2", "so"), [(0.01, 0.03, 0.04), (0.5, 0.002, 0.5), (1e-3, 1e-3, 1e-4)])
def test_add_approximates_floats(s1: float, s2: float, so: float) -> None:
    a, b = (v.reshape(-1) for v in all_pairs())
    params = add_s8_params(s1, 5, s2, -9, so, 3)
    real = np.float32(s1) * (a.astype(np.float64) - 5) + np.float32(s2) * (b.astype(np.float64) - (-9))
    ideal = np.clip(np.round(real / np.float32(so)) + 3, -128, 127)
    assert np.max(np.abs(add_s8(a, b, params).astype(int) - ideal)) <= 1
    relu = add_s8(a, b, params, 3, 127)
    assert relu.min() == 3


def test_pool_padding_matches_tflite_formulas() -> None:
    assert pool_padding(7, 3, 2, "same") == (4, 1)
    assert pool_padding(5, 2, 2, "same") == (3, 0)  # total padding 1: all of it after
    assert pool_padding(7, 3, 2, "valid") == (3, 0)
    assert pool_padding(5, 1, 3, "same") == (2, 0)
    with pytest.raises(ValueError):
        pool_padding(2, 3, 1, "valid")


def test_avg_pool_by_hand() -> None:
    x = np.array([-3, -2, 3, 2, 1, 2]).reshape(1, 1, 6, 1)
    # Pairs: -5 / 2 -> -3 (away from zero), 5 / 2 -> 3, 3 / 2 -> 2.
    assert avg_pool_s8(x, (1, 2), (1, 2), (0, 0), (1, 3)).reshape(-1).tolist() == [-3, 3, 2]
    # 'same' 3-wide, stride 1: the ends average 2 in-bounds taps, not 3.
    got = avg_pool_s8(x, (1, 3), (1, 1), (0, 1), (1, 6)).reshape(-1).tolist()
    assert got == [-3, -1, 1, 2, 2, 2]  # -5/2, -2/3, 3/3, 6/3, 5/3, 3/2
    assert avg_pool_s8(x, (1, 2), (1, 2), (0, 0), (1, 3), act_min=0, act_max=2).reshape(-1).tolist() == [0, 2, 2]
    with pytest.raises(ValueError, match="no input tap"):
        avg_pool_s8(x, (1, 2), (1, 2), (0, 0), (1, 4))


def test_mean_by_hand() -> None:
    # 1/count folding: count 35 -> k = floor(log2 35) = 5, clamped by 31 + shift.
    assert mean_multiplier(2**30, -2, 35) == ((2**30 << 5) // 35, -7)
    assert mean_multiplier(2**30, -30, 35) == ((2**30 << 1) // 35, -31)
    assert mean_multiplier(2**30, 0, 1) == (2**30, 0)
    # Equal quantisations: ratio 1 -> (2**30, 1), count 2 -> (2**30, 0): the centred mean, rounded by
    # SaturatingRoundingDoublingHighMul, whose nudge 1 - 2**30 sends negative ties toward zero.
    # Centred sums -13 and -3 -> -6.5, -1.5 -> -6, -1 -> -2, 3 with the zero point.
    same = mean_s8_params(0.1, 4, 0.1, 4, 2)
    assert (same.multiplier, same.shift) == (2**30, 0)
    assert mean_s8(np.array([[[-3, 3], [-2, 2]]]), same).tolist() == [[-2, 3]]
    other = mean_s8_params(0.1, 4, 0.05, -1, 2)
    # Centred sums -15, 1 -> means -7.5, 0.5 -> x2 -> -15, 1 -> -16, 0 with the zero point.
    assert mean_s8(np.array([[[-3, 3], [-4, 6]]]), other).tolist() == [[-16, 0]]
    with pytest.raises(ValueError, match="positions"):
        mean_s8(np.zeros((1, 3, 2)), other)
    with pytest.raises(ValueError, match="shift"):
        mean_s8_params(1.0, 0, 2.0**-40, 0, 2)


@pytest.mark.parametrize("positions", [1, 3, 49, 1000])
def test_mean_approximates_floats(positions: int) -> None:
    rng = np.random.default_rng(positions)
    x = rng.integers(-128, 128, size=(20, positions, 4))
    params = mean_s8_params(0.02, -7, 0.004, 11, positions)
    real = (x - (-7)).mean(axis=1) * float(np.float32(0.02))
    ideal = np.clip(np.round(real / float(np.float32(0.004))) + 11, -128, 127)
    assert np.max(np.abs(mean_s8(x, params).astype(int) - ideal)) <= 1
