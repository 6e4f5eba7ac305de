"""int16 (16x8) ADD, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RELU, RELU6, LEAKY_RELU: NumPy against TFLM, C against NumPy.

Every comparison is ``np.array_equal`` on the int16 outputs: zero differing
bytes, not a tolerance. The TFLM side runs tiny Keras models converted in
TensorFlow Lite's 16x8 mode (int16 activations with zero point 0, int8
weights; int16 model input and output); each test first checks which TFLite
operators the converter produced. Unary element-wise models take a
``(256, 256)`` input, so one invocation covers all 65536 int16 values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.qmath.activations import LeakyReluS16Params, leaky_relu_s16, leaky_relu_s16_params
from nndsl.qmath.add import AddS16Params, add_s16, add_s16_params
from nndsl.qmath.pooling import MeanS16Params, avg_pool_s16, mean_s16, mean_s16_params
from nndsl.qmath.requant import INT16_MAX, INT16_MIN, activation_range, quantize_multiplier
from tests.c_harness import (
    OpCase,
    build_harness,
    compile_c,
    entry_point,
    op_cases_source,
    run_op_cases,
    runtime_unit,
)
from tests.qmath_reference import (
    Relu6S16Params,
    ReluS16Params,
    pool_padding,
    relu6_s16,
    relu6_s16_params,
    relu_s16,
    relu_s16_params,
)
from tests.test_pool_add_s8 import ADD_CASES, keras_activation, log_uniform
from tests.tflite_models import (
    FUSED_ACTIVATIONS,
    KERAS_ACTIVATION_CODES,
    PADDING_CODES,
    TFLITE_INT16,
    Graph,
    assert_bit_exact,
    convert_keras,
    model_graph,
    patch_model,
    run_tflm,
    seed_of,
    tensor_quantization,
)

ARENA_SIZE = 1 << 21
SQUARE = (256, 256)
ALL_INT16 = np.arange(INT16_MIN, INT16_MAX + 1, dtype=np.int16).reshape(SQUARE)


# --------------------------------------------------------------------------
# TensorFlow Lite helpers
# --------------------------------------------------------------------------


def check_16x8(graph: Graph, quant: dict[int, tuple[float, int]], tensors: Sequence[int]) -> None:
    """The given tensors are int16 with zero point 0, as the 16x8 scheme makes activations."""
    for tensor in tensors:
        assert graph.types[tensor] == TFLITE_INT16, (tensor, graph.types[tensor])
        assert quant[tensor][1] == 0, (tensor, quant[tensor])


def run_tflite_micro(model: bytes, batches: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """One TFLM invocation per item of ``batches`` (a list of model inputs each); output 0 of each, int16."""
    outputs = run_tflm(model, batches, arena_size=ARENA_SIZE)
    assert outputs.dtype == np.int16
    return outputs


def fused_range(code: int, scale: float, zero_point: int) -> tuple[int, int]:
    low, high = FUSED_ACTIVATIONS[code]
    return activation_range(low, high, scale, zero_point, INT16_MIN, INT16_MAX)


def random_int16(rng: np.random.Generator, shape: tuple[int, ...], count: int) -> list[np.ndarray]:
    """All -32768 and all 32767, then ``count`` random arrays: full range, small values, narrow spreads."""
    arrays = [np.full(shape, INT16_MIN, np.int16), np.full(shape, INT16_MAX, np.int16)]
    for k in range(count):
        if k % 3 == 0:
            arrays.append(rng.integers(INT16_MIN, INT16_MAX + 1, size=shape).astype(np.int16))
        elif k % 3 == 1:
            arrays.append(rng.integers(-40, 41, size=shape).astype(np.int16))
        else:
            centre = int(rng.integers(-30000, 30001))
            arrays.append(np.clip(rng.integers(-300, 301, size=shape) + centre, INT16_MIN, INT16_MAX).astype(np.int16))
    return arrays


# --------------------------------------------------------------------------
# ADD
# --------------------------------------------------------------------------


def grid_values(rng: np.random.Generator) -> np.ndarray:
    """256 int16 values: both ends, zero and its neighbours, a spread over the range, small values."""
    fixed = [INT16_MIN, INT16_MIN + 1, -1, 0, 1, INT16_MAX - 1, INT16_MAX]
    spread = np.linspace(INT16_MIN, INT16_MAX, 130).round().astype(np.int64)
    values = np.unique(np.concatenate([fixed, spread, np.arange(-40, 41)]))
    extra = rng.integers(INT16_MIN, INT16_MAX + 1, size=256 - values.size)
    return np.concatenate([values, extra]).astype(np.int16)


def add_model(tf: Any, ranges: tuple[tuple[float, float], tuple[float, float]], activation: str | None) -> bytes:
    keras = tf.keras
    a = keras.Input(SQUARE)
    b = keras.Input(SQUARE)
    y = keras_activation(tf, keras.layers.Add()([a, b]), activation)
    model = keras.Model([a, b], y)
    return convert_keras(tf, model, [SQUARE, SQUARE], list(ranges), seed_of("add16", ranges, activation), int16=True)


def check_add_model(tf: Any, model: bytes, seed: int) -> tuple[AddS16Params, tuple[float, float, float]]:
    """ADD of the two model inputs: NumPy == TFLM on a grid of int16 pairs and on random data."""
    graph = model_graph(model)
    assert graph.names == ["ADD"]
    op = graph.only("ADD")
    quant = tensor_quantization(model)
    (s1, z1), (s2, z2), (so, zo) = quant[op.inputs[0]], quant[op.inputs[1]], quant[op.outputs[0]]
    params = add_s16_params(s1, z1, s2, z2, so, zo)
    act_min, act_max = fused_range(op.options["fusedActivationFunction"], so, zo)
    position = {tensor: k for k, tensor in enumerate(graph.inputs)}
    rng = np.random.default_rng(seed)
    grid = grid_values(rng)
    pairs = [(np.broadcast_to(grid[None, :], SQUARE), np.broadcast_to(grid[:, None], SQUARE))]
    first_inputs = random_int16(rng, SQUARE, 3)
    second_inputs = random_int16(rng, SQUARE, 3)
    pairs += list(zip(first_inputs, second_inputs[::-1], strict=True))
    batches = []
    for first, second in pairs:
        inputs: list[np.ndarray] = [np.empty(0)] * 2
        inputs[position[op.inputs[0]]] = np.asarray(first, np.int16)[None]
        inputs[position[op.inputs[1]]] = np.asarray(second, np.int16)[None]
        batches.append(inputs)
    for (first, second), expected in zip(pairs, run_tflite_micro(model, batches), strict=True):
        got = add_s16(first, second, params, act_min, act_max)
        assert_bit_exact(got, expected.reshape(SQUARE), np.int16, (params, act_min, act_max))
    return params, (s1, s2, so)


@pytest.mark.tensorflow
@pytest.mark.parametrize(("range1", "range2", "activation"), ADD_CASES)
def test_add_matches_tflite_micro(
    tflite: Any, range1: tuple[float, float], range2: tuple[float, float], activation: str | None
) -> None:
    model = add_model(tflite, (range1, range2), activation)
    graph = model_graph(model)
    op = graph.only("ADD")
    assert op.options["fusedActivationFunction"] == KERAS_ACTIVATION_CODES[activation]
    # The converter asks for the general (non power-of-two) path; TFLM takes it whatever the flag says.
    assert op.options["potScaleInt16"] is False
    check_16x8(graph, tensor_quantization(model), [*op.inputs, *op.outputs])
    params, (s1, s2, _) = check_add_model(tflite, model, seed=seed_of(range1, range2))
    assert s1 != s2  # the two inputs really are rescaled differently
    assert params.left_shift == 15


@pytest.mark.tensorflow
def test_add_ignores_pot_scale_flag(tflite: Any) -> None:
    """``pot_scale_int16`` patched to true: TFLM still takes AddGeneralParamScale (it never reads the flag).

    With the converter's non-power-of-two scales the power-of-two kernel
    would add raw values; the general path matches TFLM all the same. Then
    power-of-two scales, where TFLite's own power-of-two kernel would apply.
    """
    model = add_model(tflite, ((-1.0, 1.0), (-5.0, 3.0)), None)
    op = model_graph(model).only("ADD")
    check_add_model(tflite, patch_model(model, potScaleInt16=True), seed=11)
    pot = {op.inputs[0]: (2.0**-10, 0), op.inputs[1]: (2.0**-12, 0), op.outputs[0]: (2.0**-10, 0)}
    for flag in (False, True):
        check_add_model(tflite, patch_model(model, quant=pot, potScaleInt16=flag), seed=12)


@pytest.mark.tensorflow
def test_add_patched_activation_scales_and_zero_points(tflite: Any) -> None:
    """RELU_N1_TO_1, a flushed input multiplier, an output multiplier near one, non-zero zero points."""
    model = add_model(tflite, ((-1.0, 1.0), (-5.0, 3.0)), None)
    op = model_graph(model).only("ADD")
    quant = tensor_quantization(model)
    (s1, _), (s2, _), (so, _) = quant[op.inputs[0]], quant[op.inputs[1]], quant[op.outputs[0]]
    check_add_model(tflite, patch_model(model, fusedActivationFunction=2), seed=1)
    tiny = patch_model(model, quant={op.inputs[0]: (s2 * 2.0**-40, 0)})
    params, _ = check_add_model(tflite, tiny, seed=2)
    assert params.input1_multiplier == 0
    # Output multiplier 2 * max_scale / (2**15 * out_scale) about 0.99.
    near_one = float(np.float32(2 * max(s1, s2) / (2**15 * 0.99)))
    params, _ = check_add_model(tflite, patch_model(model, quant={op.outputs[0]: (near_one, 0)}), seed=3)
    assert params.output_shift == 0
    check_add_model(tflite, patch_model(model, quant={op.outputs[0]: (so * 1000.0, 0)}), seed=4)
    # TFLM does not insist on zero point 0 for int16 ADD: the offsets are applied as for int8.
    shifted = {op.inputs[0]: (s1, 1234), op.inputs[1]: (s2, -32768), op.outputs[0]: (so, 32767)}
    check_add_model(tflite, patch_model(model, quant=shifted, fusedActivationFunction=3), seed=5)
    shifted = {op.inputs[0]: (s1, -20000), op.inputs[1]: (s2, 32767), op.outputs[0]: (near_one, -32768)}
    check_add_model(tflite, patch_model(model, quant=shifted), seed=6)


# --------------------------------------------------------------------------
# AVERAGE_POOL_2D and MAX_POOL_2D (2D and 1D)
# --------------------------------------------------------------------------


def max_pool_reference(
    x: np.ndarray,
    filter_hw: tuple[int, int],
    stride_hw: tuple[int, int],
    pads: tuple[int, int],
    out_hw: tuple[int, int],
    act_min: int,
    act_max: int,
) -> np.ndarray:
    """``reference_integer_ops::MaxPool``, written plainly: nothing int16-specific but the dtype."""
    batch, in_h, in_w, channels = x.shape
    out = np.empty((batch, *out_hw, channels), np.int16)
    for out_y in range(out_hw[0]):
        for out_x in range(out_hw[1]):
            y0, x0 = out_y * stride_hw[0] - pads[0], out_x * stride_hw[1] - pads[1]
            window = x[:, max(y0, 0) : min(y0 + filter_hw[0], in_h), max(x0, 0) : min(x0 + filter_hw[1], in_w), :]
            out[:, out_y, out_x, :] = np.clip(window.max(axis=(1, 2)), act_min, act_max)
    return out


def pool2d_model(
    tf: Any,
    kind: str,
    in_hwc: tuple[int, int, int],
    pool: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    activation: str | None,
    value_range: tuple[float, float],
) -> bytes:
    keras = tf.keras
    layer = keras.layers.AveragePooling2D if kind == "avg" else keras.layers.MaxPooling2D
    x = keras.Input(in_hwc)
    y = keras_activation(tf, layer(pool, strides, padding=padding)(x), activation)
    key = ("pool2d16", kind, in_hwc, pool, strides, padding, activation, value_range)
    return convert_keras(tf, keras.Model(x, y), [in_hwc], [value_range], seed_of(*key), int16=True)


def pool1d_model(tf: Any, kind: str, in_wc: tuple[int, int], pool: int, stride: int, padding: str) -> bytes:
    keras = tf.keras
    layer = keras.layers.AveragePooling1D if kind == "avg" else keras.layers.MaxPooling1D
    x = keras.Input(in_wc)
    y = layer(pool, stride, padding=padding)(x)
    key = ("pool1d16", kind, in_wc, pool, stride, padding)
    return convert_keras(tf, keras.Model(x, y), [in_wc], [(-1.5, 2.0)], seed_of(*key), int16=True)


def check_pool_model(
    tf: Any,
    model: bytes,
    builtin: str,
    in_shape: tuple[int, ...],
    pool: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    activation_code: int,
    seed: int,
) -> None:
    """The model's pool has the expected options; NumPy == TFLM on its int16 input and output.

    ``in_shape`` is the model input without the batch: ``(H, W, C)``, or
    ``(W, C)`` for the 1D layers, whose EXPAND_DIMS makes it ``[1, 1, W, C]``.
    """
    graph = model_graph(model)
    op = graph.only(builtin)
    assert op.options["filterHeight"] == pool[0] and op.options["filterWidth"] == pool[1]
    assert op.options["strideH"] == strides[0] and op.options["strideW"] == strides[1]
    assert op.options["padding"] == PADDING_CODES[padding]
    assert op.options["fusedActivationFunction"] == activation_code
    pool_in = graph.shapes[op.inputs[0]]
    in_h, in_w, channels = pool_in[1:]
    out_h, pad_top = pool_padding(in_h, pool[0], strides[0], padding)
    out_w, pad_left = pool_padding(in_w, pool[1], strides[1], padding)
    assert graph.shapes[op.outputs[0]] == (1, out_h, out_w, channels)
    quant = tensor_quantization(model)
    check_16x8(graph, quant, [op.inputs[0], op.outputs[0]])
    scale, zero_point = quant[graph.inputs[0]]
    assert quant[op.inputs[0]] == quant[op.outputs[0]] == quant[graph.outputs[0]] == (scale, zero_point)
    act_min, act_max = fused_range(activation_code, scale, zero_point)
    kernel = avg_pool_s16 if builtin == "AVERAGE_POOL_2D" else max_pool_reference
    inputs = random_int16(np.random.default_rng(seed), (1, *in_shape), 6)
    outputs = run_tflite_micro(model, [[x] for x in inputs])
    for x, expected in zip(inputs, outputs, strict=True):
        got = kernel(x.reshape(pool_in), pool, strides, (pad_top, pad_left), (out_h, out_w), act_min, act_max)
        context = (in_shape, pool, strides, padding, act_min, act_max)
        assert_bit_exact(got.reshape(expected.shape), expected, np.int16, context)


# Strides of 3 are in the slow full grid.
POOL2D_GRID = [(size, stride, padding) for size in (1, 2, 3) for stride in (1, 2) for padding in ("same", "valid")]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("size", "stride", "padding"), POOL2D_GRID)
def test_average_pooling2d_matches_tflite_micro(tflite: Any, size: int, stride: int, padding: str) -> None:
    """Square pools and strides on a 5 x 7 input; channels and the fused activation vary with the case."""
    index = POOL2D_GRID.index((size, stride, padding))
    channels = (1, 3)[index % 2]
    activation = (None, "relu", "relu6")[index % 3]
    value_range = [(-1.0, 2.0), (-8.0, 3.0), (0.0, 0.05)][index % 3]
    in_hwc = (5, 7, channels)
    model = pool2d_model(tflite, "avg", in_hwc, (size, size), (stride, stride), padding, activation, value_range)
    assert model_graph(model).names == ["AVERAGE_POOL_2D"]
    code = KERAS_ACTIVATION_CODES[activation]
    check_pool_model(tflite, model, "AVERAGE_POOL_2D", in_hwc, (size, size), (stride, stride), padding, code, index)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("in_hwc", "pool", "strides", "padding"),
    [
        ((5, 7, 3), (2, 3), (2, 1), "same"),
        ((5, 7, 1), (3, 1), (1, 3), "valid"),
        ((9, 3, 3), (3, 2), (3, 2), "same"),
        ((3, 3, 1), (3, 3), (1, 1), "same"),
        ((16, 16, 2), (16, 16), (1, 1), "valid"),
    ],
)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pooling2d_rectangular(
    tflite: Any,
    kind: str,
    in_hwc: tuple[int, int, int],
    pool: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> None:
    model = pool2d_model(tflite, kind, in_hwc, pool, strides, padding, None, (-3.0, 1.0))
    builtin = "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D"
    assert model_graph(model).names == [builtin]
    check_pool_model(tflite, model, builtin, in_hwc, pool, strides, padding, 0, seed=seed_of(in_hwc, pool))


@pytest.mark.tensorflow
@pytest.mark.parametrize(("size", "stride", "padding"), [(2, 2, "valid"), (3, 1, "same"), (3, 2, "same")])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pooling1d_matches_tflite_micro(tflite: Any, kind: str, size: int, stride: int, padding: str) -> None:
    """EXPAND_DIMS -> *_POOL_2D (1 x size filter) -> RESHAPE; the int16 data fed at the model's ends."""
    model = pool1d_model(tflite, kind, (9, 3), size, stride, padding)
    builtin = "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D"
    assert model_graph(model).names == ["EXPAND_DIMS", builtin, "RESHAPE"]
    check_pool_model(tflite, model, builtin, (9, 3), (1, size), (1, stride), padding, 0, seed=size * 10 + stride)


@pytest.mark.tensorflow
@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_max_pooling_with_activation(tflite: Any, activation: str) -> None:
    """MaxPooling2D then ReLU/ReLU6: what the converter makes of it, and TFLM == NumPy on each operator."""
    model = pool2d_model(tflite, "max", (5, 7, 3), (2, 2), (2, 2), "same", activation, (-8.0, 8.0))
    names = model_graph(model).names
    if names == ["MAX_POOL_2D"]:  # fused
        code = KERAS_ACTIVATION_CODES[activation]
        check_pool_model(tflite, model, "MAX_POOL_2D", (5, 7, 3), (2, 2), (2, 2), "same", code, seed=3)
    else:
        assert names == ["MAX_POOL_2D", activation.upper()]


@pytest.mark.tensorflow
@pytest.mark.parametrize("code", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pooling_patched_activation(tflite: Any, kind: str, code: int) -> None:
    """RELU, RELU_N1_TO_1 and RELU6 patched into a pool calibrated on [-8, 8]."""
    model = pool2d_model(tflite, kind, (5, 7, 3), (2, 2), (1, 1), "same", None, (-8.0, 8.0))
    builtin = "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D"
    patched = patch_model(model, fusedActivationFunction=code)
    check_pool_model(tflite, patched, builtin, (5, 7, 3), (2, 2), (1, 1), "same", code, seed=code)


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("in_hw", [(5, 7), (7, 3), (1, 5)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pooling2d_full_grid(tflite: Any, kind: str, in_hw: tuple[int, int], channels: int, padding: str) -> None:
    """Every pool size and stride in {1, 2, 3} x {1, 2, 3}, with every fused activation in turn."""
    in_hwc = (*in_hw, channels)
    builtin = "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D"
    for k, (ph, pw, sh, sw) in enumerate(
        (ph, pw, sh, sw) for ph in (1, 2, 3) for pw in (1, 2, 3) for sh in (1, 2, 3) for sw in (1, 2, 3)
    ):
        if padding == "valid" and (ph > in_hw[0] or pw > in_hw[1]):
            continue
        activation = (None, "relu", "relu6")[k % 3] if kind == "avg" else None
        model = pool2d_model(tflite, kind, in_hwc, (ph, pw), (sh, sw), padding, activation, (-2.0, 5.0))
        code = KERAS_ACTIVATION_CODES[activation]
        check_pool_model(tflite, model, builtin, in_hwc, (ph, pw), (sh, sw), padding, code, seed=k)


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("width", [1, 4, 7, 10])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pooling1d_full_grid(tflite: Any, kind: str, width: int) -> None:
    builtin = "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D"
    for size in (1, 2, 3, 4):
        for stride in (1, 2, 3):
            for padding in ("same", "valid"):
                if padding == "valid" and size > width:
                    continue
                model = pool1d_model(tflite, kind, (width, 2), size, stride, padding)
                check_pool_model(
                    tflite, model, builtin, (width, 2), (1, size), (1, stride), padding, 0, seed=size + stride
                )


# --------------------------------------------------------------------------
# MEAN (GlobalAveragePooling1D, GlobalAveragePooling2D)
# --------------------------------------------------------------------------


def global_pool_model(tf: Any, in_shape: tuple[int, ...], value_range: tuple[float, float], keepdims: bool) -> bytes:
    keras = tf.keras
    x = keras.Input(in_shape)
    layer = keras.layers.GlobalAveragePooling1D if len(in_shape) == 2 else keras.layers.GlobalAveragePooling2D
    y = layer(keepdims=keepdims)(x)
    key = ("gap16", in_shape, value_range, keepdims)
    return convert_keras(tf, keras.Model(x, y), [in_shape], [value_range], seed_of(*key), int16=True)


def check_mean_model(
    tf: Any, model: bytes, in_shape: tuple[int, ...], keepdims: bool, seed: int
) -> tuple[MeanS16Params, bool]:
    """MEAN over every axis but batch and channels; NumPy (positions = product of them) == TFLM.

    Returns the params and whether the input and output quantisations are equal.
    """
    graph = model_graph(model)
    assert graph.names == ["MEAN"]
    op = graph.only("MEAN")
    assert op.options["keepDims"] == keepdims
    assert graph.shapes[op.inputs[0]] == (1, *in_shape)
    quant = tensor_quantization(model)
    (in_scale, in_zp), (out_scale, out_zp) = quant[op.inputs[0]], quant[op.outputs[0]]
    positions = math.prod(in_shape[:-1])
    channels = in_shape[-1]
    params = mean_s16_params(in_scale, in_zp, out_scale, out_zp, positions)
    inputs = random_int16(np.random.default_rng(seed), (1, *in_shape), 24)
    outputs = run_tflite_micro(model, [[x] for x in inputs])
    for x, expected in zip(inputs, outputs, strict=True):
        got = mean_s16(x.reshape(1, positions, channels), params)
        assert_bit_exact(got.reshape(expected.shape), expected, np.int16, (in_shape, params))
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
    ((16, 16, 3), (-3.0, 9.0)),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("in_shape", "value_range", "keepdims"),
    [(*case, False) for case in MEAN_CASES] + [(*case, True) for case in MEAN_CASES[::2]],
)
def test_global_average_pooling_matches_tflite_micro(
    tflite: Any, in_shape: tuple[int, ...], value_range: tuple[float, float], keepdims: bool
) -> None:
    model = global_pool_model(tflite, in_shape, value_range, keepdims)
    if keepdims and math.prod(in_shape[:-1]) == 1:
        assert model_graph(model).names == []  # the identity: no operator
        return
    graph = model_graph(model)
    op = graph.only("MEAN")
    check_16x8(graph, tensor_quantization(model), [op.inputs[0], op.outputs[0]])
    check_mean_model(tflite, model, in_shape, keepdims, seed=seed_of(in_shape, value_range))


@pytest.mark.tensorflow
@pytest.mark.parametrize("in_shape", [(7, 3), (6, 4), (3, 5, 4), (16, 16, 3)])
def test_mean_same_quantization_still_rescales(tflite: Any, in_shape: tuple[int, ...]) -> None:
    """Output quantisation patched to the input's: QuantizedMeanOrSum, not a truncating division.

    All -3 but one -2 averages -3 + 1/n: truncation would give -2.
    """
    model = global_pool_model(tflite, in_shape, (-2.0, 2.0), False)
    op = model_graph(model).only("MEAN")
    quant = tensor_quantization(model)
    patched = patch_model(model, quant={op.outputs[0]: quant[op.inputs[0]]})
    params, same_quantization = check_mean_model(tflite, patched, in_shape, False, seed=7)
    assert same_quantization
    positions, channels = math.prod(in_shape[:-1]), in_shape[-1]
    x = np.full((1, positions, channels), -3, np.int16)
    x[0, 0] = -2
    expected = run_tflite_micro(patched, [[x.reshape(1, *in_shape)]])[0].reshape(-1)
    assert np.array_equal(mean_s16(x, params).reshape(-1), expected)
    assert expected.tolist() == [-3] * channels


@pytest.mark.tensorflow
@pytest.mark.parametrize("ratio", [2.0**-29, 2.0**-33, 0.999, 1.0, 3.0, 2.0**12 * 0.7])
def test_mean_patched_output_scales_and_zero_points(tflite: Any, ratio: float) -> None:
    """``in_scale / out_scale`` patched from 2**-33 (flushed) to ~2**11, with non-zero zero points."""
    in_shape = (5, 7, 3)
    model = global_pool_model(tflite, in_shape, (-2.0, 2.0), False)
    op = model_graph(model).only("MEAN")
    in_scale, _ = tensor_quantization(model)[op.inputs[0]]
    patched = patch_model(model, quant={op.outputs[0]: (float(np.float32(in_scale / ratio)), 3)})
    check_mean_model(tflite, patched, in_shape, False, seed=8)
    patched = patch_model(
        model, quant={op.inputs[0]: (in_scale, -1000), op.outputs[0]: (float(np.float32(in_scale / ratio)), 250)}
    )
    check_mean_model(tflite, patched, in_shape, False, seed=9)


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("in_shape", [(1000, 2), (64, 64, 2), (300, 1), (2, 64, 1), (1, 9, 2)])
def test_global_average_pooling_larger_shapes(tflite: Any, in_shape: tuple[int, ...]) -> None:
    model = global_pool_model(tflite, in_shape, (-6.0, 6.0), False)
    check_mean_model(tflite, model, in_shape, False, seed=seed_of(in_shape))


# --------------------------------------------------------------------------
# RELU, RELU6, LEAKY_RELU: every int16 value in one invocation
# --------------------------------------------------------------------------


def unary_model(tf: Any, op: str, value_range: tuple[float, float], alpha: float = 0.3) -> bytes:
    keras = tf.keras
    x = keras.Input(SQUARE)
    if op == "relu":
        y = keras.layers.ReLU()(x)
    elif op == "relu6":
        y = keras.layers.ReLU(max_value=6.0)(x)
    else:
        y = keras.layers.LeakyReLU(negative_slope=alpha)(x)
    key = ("unary16", op, value_range, alpha)
    return convert_keras(tf, keras.Model(x, y), [SQUARE], [value_range], seed_of(*key), int16=True)


UnaryParams = ReluS16Params | Relu6S16Params | LeakyReluS16Params


def unary_params(graph: Graph, quant: dict[int, tuple[float, int]]) -> tuple[str, UnaryParams]:
    (op,) = graph.operators
    (in_scale, in_zp), (out_scale, out_zp) = quant[op.inputs[0]], quant[op.outputs[0]]
    if op.name == "RELU":
        return op.name, relu_s16_params(in_scale, in_zp, out_scale, out_zp)
    if op.name == "RELU6":
        return op.name, relu6_s16_params(in_scale, in_zp)
    assert op.name == "LEAKY_RELU"
    return op.name, leaky_relu_s16_params(in_scale, in_zp, out_scale, out_zp, op.options["alpha"])


def run_unary(params: UnaryParams, x: np.ndarray) -> np.ndarray:
    if isinstance(params, ReluS16Params):
        return relu_s16(x, params)
    if isinstance(params, Relu6S16Params):
        return relu6_s16(x, params)
    return leaky_relu_s16(x, params)


def check_unary_model(tf: Any, model: bytes) -> tuple[UnaryParams, np.ndarray]:
    """NumPy == TFLM on all 65536 int16 values; the params and TFLM's output."""
    graph = model_graph(model)
    quant = tensor_quantization(model)
    name, params = unary_params(graph, quant)
    (expected,) = run_tflite_micro(model, [[ALL_INT16[None]]])
    expected = expected.reshape(SQUARE)
    assert_bit_exact(run_unary(params, ALL_INT16), expected, np.int16, (name, params))
    return params, expected


# More calibrations in the slow test_unary_many_calibrations.
UNARY_RANGES = [(-4.0, 4.0), (-0.3, 1.0), (0.5, 9.0), (-300.0, 300.0)]


@pytest.mark.tensorflow
@pytest.mark.parametrize("value_range", UNARY_RANGES)
@pytest.mark.parametrize("op", ["relu", "relu6", "leaky_relu"])
def test_unary_matches_tflite_micro(tflite: Any, op: str, value_range: tuple[float, float]) -> None:
    model = unary_model(tflite, op, value_range)
    graph = model_graph(model)
    assert graph.names == [op.upper()]
    check_16x8(graph, tensor_quantization(model), [*graph.inputs, *graph.outputs])
    check_unary_model(tflite, model)


@pytest.mark.tensorflow
def test_relu6_ignores_the_output_quantization(tflite: Any) -> None:
    """The 16x8 converter gives RELU6 an output scale of its own; TFLM's Relu6 clamps raw input values.

    The input is calibrated on [-10, 10] and the output on [0, 6]: different
    scales. TFLM's output is the input clamped to [0, round(6 / in_scale)],
    read at the output scale (so 6.0 in comes out as about 10.0).
    """
    model = unary_model(tflite, "relu6", (-10.0, 10.0))
    graph = model_graph(model)
    quant = tensor_quantization(model)
    in_scale, out_scale = quant[graph.inputs[0]][0], quant[graph.outputs[0]][0]
    assert in_scale != out_scale
    params, expected = check_unary_model(tflite, model)
    assert isinstance(params, Relu6S16Params)
    assert params == Relu6S16Params(0, round(6.0 / in_scale))
    assert np.array_equal(expected, np.clip(ALL_INT16, 0, params.upper))
    # Patched output quantisation: not read at all.
    patched = patch_model(model, quant={graph.outputs[0]: (out_scale * 7.5, 1234)})
    assert np.array_equal(run_tflite_micro(patched, [[ALL_INT16[None]]])[0].reshape(SQUARE), expected)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("in_scale", "in_zp"), [(2.0**-12, 0), (1e-4, 500), (1.0, -3), (0.02, 32767), (3e-9, -32768), (7e-5, -20000)]
)
def test_relu6_patched_input_quantization(tflite: Any, in_scale: float, in_zp: int) -> None:
    """``six`` from the input scale and zero point, clamped to int16 (``six`` beyond 32767 for tiny scales)."""
    model = unary_model(tflite, "relu6", (-10.0, 10.0))
    graph = model_graph(model)
    check_unary_model(tflite, patch_model(model, quant={graph.inputs[0]: (in_scale, in_zp)}))


@pytest.mark.tensorflow
@pytest.mark.parametrize("ratio", [1.0, 0.37, 1.9, 2.0**-20, 40000.0, 2.0**29 * 1.5])
def test_relu_patched_scales(tflite: Any, ratio: float) -> None:
    """RELU int16 rescales (ReluQuantized<int16_t>): ``in_scale / out_scale`` patched, left and right shifts."""
    model = unary_model(tflite, "relu", (-1.0, 2.0))
    graph = model_graph(model)
    in_scale, _ = tensor_quantization(model)[graph.inputs[0]]
    out_scale = float(np.float32(in_scale / ratio))
    params, _ = check_unary_model(tflite, patch_model(model, quant={graph.outputs[0]: (out_scale, 0)}))
    assert isinstance(params, ReluS16Params)


@pytest.mark.tensorflow
@pytest.mark.parametrize(("in_zp", "out_zp"), [(700, 0), (0, 5), (-32768, -5)])
def test_relu_zero_points_must_be_zero(tflite: Any, in_zp: int, out_zp: int) -> None:
    """TFLM's int16 RELU Prepare fails on a non-zero zero point; so does relu_s16_params."""
    model = unary_model(tflite, "relu", (-1.0, 2.0))
    graph = model_graph(model)
    (in_scale, _), (out_scale, _) = (tensor_quantization(model)[t] for t in (*graph.inputs, *graph.outputs))
    patched = patch_model(model, quant={graph.inputs[0]: (in_scale, in_zp), graph.outputs[0]: (out_scale, out_zp)})
    with pytest.raises(RuntimeError, match="allocate"):
        run_tflite_micro(patched, [[ALL_INT16[None]]])
    with pytest.raises(ValueError, match="zero points"):
        relu_s16_params(in_scale, in_zp, out_scale, out_zp)


def double_and_float32_pairs(
    rng: np.random.Generator, make: Any, ratio_range: tuple[float, float], count: int
) -> Iterator[tuple[float, float, UnaryParams, UnaryParams]]:
    """Scale pairs whose double-quotient params (``make(in, out)``) and float32-quotient params differ in output."""
    found = 0
    for _ in range(5000):
        in_scale = float(np.float32(rng.uniform(1e-5, 1e-3)))
        out_scale = float(np.float32(in_scale / rng.uniform(*ratio_range)))
        double_params, float32_params = make(in_scale, out_scale)
        if np.array_equal(run_unary(double_params, ALL_INT16), run_unary(float32_params, ALL_INT16)):
            continue
        yield in_scale, out_scale, double_params, float32_params
        found += 1
        if found == count:
            return
    raise AssertionError(f"only {found} distinguishing scale pairs")


@pytest.mark.tensorflow
def test_relu_multiplier_from_a_double_quotient(tflite: Any) -> None:
    """The pinned TFLM divides the scales in double (older sources: in float32, then widened).

    Scale pairs for which the two multipliers lead to different outputs
    somewhere in the int16 range: TFLM agrees with the double one.
    """
    model = unary_model(tflite, "relu", (-1.0, 2.0))
    graph = model_graph(model)

    def make(in_scale: float, out_scale: float) -> tuple[UnaryParams, UnaryParams]:
        params = relu_s16_params(in_scale, 0, out_scale, 0)
        return params, ReluS16Params(*quantize_multiplier(float(np.float32(in_scale / out_scale))))

    for in_scale, out_scale, _, float32_params in double_and_float32_pairs(
        np.random.default_rng(5), make, (0.5, 40.0), 3
    ):
        patched = patch_model(model, quant={graph.inputs[0]: (in_scale, 0), graph.outputs[0]: (out_scale, 0)})
        _, expected = check_unary_model(tflite, patched)
        assert not np.array_equal(run_unary(float32_params, ALL_INT16), expected)


@pytest.mark.tensorflow
def test_leaky_relu_multipliers_from_double_quotients(tflite: Any) -> None:
    """CalculateOpDataLeakyRelu works in double; float32 quotients (as leaky_relu_s8_params takes) differ."""
    model = unary_model(tflite, "leaky_relu", (-3.0, 2.0), 0.2)
    graph = model_graph(model)
    alpha = float(np.float32(0.2))

    def make(in_scale: float, out_scale: float) -> tuple[UnaryParams, UnaryParams]:
        params = leaky_relu_s16_params(in_scale, 0, out_scale, 0, alpha)
        m_alpha, s_alpha = quantize_multiplier(float(np.float32(np.float32(in_scale * alpha) / out_scale)))
        m_identity, s_identity = quantize_multiplier(float(np.float32(in_scale / out_scale)))
        return params, LeakyReluS16Params(0, 0, m_identity, s_identity, m_alpha, s_alpha)

    for in_scale, out_scale, _, float32_params in double_and_float32_pairs(
        np.random.default_rng(6), make, (0.3, 5.0), 3
    ):
        patched = patch_model(model, quant={graph.inputs[0]: (in_scale, 0), graph.outputs[0]: (out_scale, 0)})
        _, expected = check_unary_model(tflite, patched)
        assert not np.array_equal(run_unary(float32_params, ALL_INT16), expected)


@pytest.mark.tensorflow
@pytest.mark.parametrize("alpha", [0.01, 0.2, 0.5, 0.99, 1.0, 1.7, -0.4, 0.0])
def test_leaky_relu_alphas(tflite: Any, alpha: float) -> None:
    """Alphas through Keras where it takes them, the others patched into the options.

    Keras takes non-negative slopes only, and the converter drops a LeakyReLU
    of slope 1 (the identity): no operator at all.
    """
    if alpha >= 0 and alpha != 1.0:
        model = unary_model(tflite, "leaky_relu", (-3.0, 2.0), alpha)
    else:
        if alpha == 1.0:
            assert model_graph(unary_model(tflite, "leaky_relu", (-3.0, 2.0), alpha)).names == []
        model = patch_model(unary_model(tflite, "leaky_relu", (-3.0, 2.0), 0.3), alpha=alpha)
    graph = model_graph(model)
    assert graph.names == ["LEAKY_RELU"]
    assert graph.operators[0].options["alpha"] == pytest.approx(alpha)
    check_unary_model(tflite, model)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("ratio", "in_zp", "out_zp"),
    [(2.0**-25, 0, 0), (0.999, 0, 0), (5.5, 0, 0), (2.0**14 * 0.9, 0, 0), (0.7, 1000, -7000), (2.0, -32768, 32767)],
)
def test_leaky_relu_patched_scales(tflite: Any, ratio: float, in_zp: int, out_zp: int) -> None:
    """Large ratios shift left (``x * 2**shift`` stays in int32 up to ratios of about 2**15)."""
    model = unary_model(tflite, "leaky_relu", (-3.0, 2.0), 0.2)
    graph = model_graph(model)
    in_scale, _ = tensor_quantization(model)[graph.inputs[0]]
    out_scale = float(np.float32(in_scale / ratio))
    patched = patch_model(model, quant={graph.inputs[0]: (in_scale, in_zp), graph.outputs[0]: (out_scale, out_zp)})
    check_unary_model(tflite, patched)


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.parametrize("op", ["relu", "relu6", "leaky_relu"])
def test_unary_many_calibrations(tflite: Any, op: str) -> None:
    rng = np.random.default_rng(seed_of(op))
    for _ in range(25):
        low = -float(np.exp(rng.uniform(-6, 6)))
        high = float(np.exp(rng.uniform(-6, 6)))
        alpha = float(rng.uniform(0.0, 2.0))
        check_unary_model(tflite, unary_model(tflite, op, (low, high), alpha))


# --------------------------------------------------------------------------
# C against NumPy
# --------------------------------------------------------------------------

# TFLM's stand-alone int16 RELU and RELU6 (tests/qmath_reference.py): no backend calls them, so their C
# mirrors live here, next to the test that pins them.
RELU_KERNELS = r"""
static int16_t test_clamp_s16(int32_t value, int32_t low, int32_t high)
{
    return (int16_t)(value > high ? high : value < low ? low : value);
}

/* relu_s16 (ReluS16Params: zero points 0, shift at most 30; the clamp is [0, 32767]) */
static void test_relu_s16(const int16_t *in, int16_t *out, int32_t size, int32_t multiplier, int32_t shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        out[i] = test_clamp_s16(nn_mbqm((int32_t)in[i], multiplier, shift), 0, 32767);
    }
}

/* relu6_s16 (Relu6S16Params: the clamp in input units, no rescaling) */
static void test_relu6_s16(const int16_t *in, int16_t *out, int32_t size, int32_t lower, int32_t upper)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        out[i] = test_clamp_s16((int32_t)in[i], lower, upper);
    }
}
"""

CALL_OP = r"""
static int call_op(int32_t op, const int32_t *p, const int16_t *in, int16_t *out)
{
    if (op == 0) {
        /* a and b in separate exact buffers */
        int16_t *b = (int16_t *)malloc(sizeof *b * (size_t)p[0]);
        if (b == NULL) {
            return 4;
        }
        memcpy(b, in + p[0], sizeof *b * (size_t)p[0]);
        nn_add_s16(in, b, out, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12]);
        free(b);
    } else if (op == 1) {
        nn_avg_pool_s16(in, out, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12]);
    } else if (op == 2) {
        nn_mean_s16(in, out, p[0], p[1], p[2], p[3], p[4], p[5]);
    } else if (op == 3) {
        test_relu_s16(in, out, p[0], p[1], p[2]);
    } else if (op == 4) {
        test_relu6_s16(in, out, p[0], p[1], p[2]);
    } else if (op == 5) {
        nn_leaky_relu_s16(in, out, p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
    } else {
        return 5;
    }
    return 0;
}
"""

# The runtime files of the four kernels, in the order the backend pastes them.
RUNTIME = ["requant.c", "activations.c", "binary.c", "add.c", "pooling.c"]
ALL_MACROS = [
    "NN_USE_ADD_S16",
    "NN_USE_AVG_POOL_S16",
    "NN_USE_MEAN_S16",
    "NN_USE_LEAKY_RELU_S16",
]
OP_CODES = {"add": 0, "avg_pool": 1, "mean": 2, "relu": 3, "relu6": 4, "leaky_relu": 5}


@pytest.fixture(scope="module")
def c_harness(compiler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The int16 kernels, compiled once with sanitisers into a file-to-file harness."""
    build = tmp_path_factory.mktemp("int16_c")
    run_cases = op_cases_source("int16_t", CALL_OP)
    return build_harness(build, [*RUNTIME, RELU_KERNELS], run_cases, macros=ALL_MACROS,
                         compiler=compiler)


def add_case(a: np.ndarray, b: np.ndarray, params: AddS16Params, act_min: int, act_max: int) -> OpCase:
    expected = add_s16(a, b, params, act_min, act_max)
    args = (a.size, *dataclasses.astuple(params), act_min, act_max)
    return OpCase(OP_CODES["add"], args, np.concatenate([a, b]).astype(np.int16), expected)


def avg_pool_case(
    x: np.ndarray,
    pool: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int],
    out_hw: tuple[int, int],
    act: tuple[int, int],
) -> OpCase:
    """``x`` of shape (H, W, C): one batch item."""
    expected = avg_pool_s16(x[None], pool, strides, pads, out_hw, *act)[0]
    args = (*x.shape, *out_hw, *pool, *strides, *pads, *act)
    return OpCase(OP_CODES["avg_pool"], args, x.astype(np.int16), expected)


def mean_case(x: np.ndarray, params: MeanS16Params) -> OpCase:
    """``x`` of shape (positions, C)."""
    expected = mean_s16(x[None], params)[0]
    fields = dataclasses.astuple(params)
    args = (x.shape[0], x.shape[1], *(int(f) for f in fields[1:]))
    return OpCase(OP_CODES["mean"], args, x.astype(np.int16), expected)


def unary_case(x: np.ndarray, params: UnaryParams) -> OpCase:
    op = {ReluS16Params: "relu", Relu6S16Params: "relu6", LeakyReluS16Params: "leaky_relu"}[type(params)]
    return OpCase(OP_CODES[op], (x.size, *dataclasses.astuple(params)), x.astype(np.int16), run_unary(params, x))


def random_act(rng: np.random.Generator) -> tuple[int, int]:
    if rng.random() < 0.5:
        return INT16_MIN, INT16_MAX
    low, high = sorted(int(v) for v in rng.integers(INT16_MIN, INT16_MAX + 1, size=2))
    return low, high


def random_c_cases(rng: np.random.Generator) -> list[OpCase]:
    """NumPy-derived parameters at random scales and shapes, raw fields, and extremes."""
    cases: list[OpCase] = []

    def zp() -> int:
        return 0 if rng.random() < 0.5 else int(rng.integers(INT16_MIN, INT16_MAX + 1))

    def int16s(*shape: int) -> np.ndarray:
        if rng.random() < 0.3:
            return rng.integers(-50, 51, size=shape).astype(np.int16)
        return rng.integers(INT16_MIN, INT16_MAX + 1, size=shape).astype(np.int16)

    grid = grid_values(rng)
    grid_a = np.broadcast_to(grid[None, :], SQUARE).reshape(-1)
    grid_b = np.broadcast_to(grid[:, None], SQUARE).reshape(-1)

    # ADD from random scales, then raw fields (any multiplier, shifts 0 to -31), then extremes.
    for k in range(400):
        s1, s2 = log_uniform(rng, 1e-6, 1e2), log_uniform(rng, 1e-6, 1e2)
        out_scale = max(s1, s2) * log_uniform(rng, 2.0**-13, 2.0**10)
        try:
            params = add_s16_params(s1, zp(), s2, zp(), out_scale, zp())
        except ValueError:  # TFLM's Prepare aborts
            continue
        a, b = (grid_a, grid_b) if k % 100 == 0 else (int16s(300), int16s(300))
        cases.append(add_case(a, b, params, *random_act(rng)))
    for _ in range(200):
        raw = AddS16Params(
            int(rng.integers(-32767, 32769)),
            int(rng.integers(0, 2**31)),
            int(rng.integers(-31, 1)),
            int(rng.integers(-32767, 32769)),
            int(rng.integers(0, 2**31)),
            int(rng.integers(-31, 1)),
            zp(),
            int(rng.integers(0, 2**31)),
            int(rng.integers(-31, 1)),
            15,
        )
        cases.append(add_case(int16s(200), int16s(200), raw, *random_act(rng)))
    for offset in (-32767, 32768):
        for out_offset in (INT16_MIN, INT16_MAX):
            extreme = AddS16Params(offset, 2**31 - 1, 0, offset, 2**31 - 1, 0, out_offset, 2**31 - 1, 0, 15)
            cases.append(add_case(grid_a, grid_b, extreme, INT16_MIN, INT16_MAX))

    # AVERAGE_POOL_2D: TFLite padding, then arbitrary pads wherever every window keeps a tap.
    while sum(1 for c in cases if c.op == OP_CODES["avg_pool"]) < 500:
        in_h, in_w, channels = (int(v) for v in rng.integers(1, [10, 10, 5]))
        pool = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        strides = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        x = int16s(in_h, in_w, channels)
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
    for value in (INT16_MIN, INT16_MAX):
        # The largest window allowed: 255 x 257 = 65535 taps, all at an extreme.
        cases.append(
            avg_pool_case(
                np.full((255, 257, 1), value, np.int16), (255, 257), (1, 1), (0, 0), (1, 1), (INT16_MIN, INT16_MAX)
            )
        )
        cases.append(
            avg_pool_case(np.full((9, 9, 2), value, np.int16), (5, 5), (2, 2), (2, 2), (5, 5), (INT16_MIN, INT16_MAX))
        )

    # MEAN: from random scales (some quantisations equal), raw fields, then sums that wrap int32.
    for k in range(400):
        positions = int(rng.choice([1, 2, 3, 7, 35, 49, 64, 100, 256, 1000, 5000]))
        channels = int(rng.integers(1, 9))
        in_scale = log_uniform(rng, 1e-6, 1e2)
        in_zp = zp()
        if k % 5 == 0:
            out_scale, out_zp = in_scale, in_zp
        else:
            out_scale, out_zp = in_scale * log_uniform(rng, 2.0**-12, 2.0**36), zp()
        try:
            mean_params = mean_s16_params(in_scale, in_zp, out_scale, out_zp, positions)
        except ValueError:
            continue
        x = int16s(positions, channels)
        if k % 3 == 0:  # narrow spread, so that outputs land inside the int16 range
            x = np.clip(x // 256 + int(rng.integers(-30000, 30001)), INT16_MIN, INT16_MAX).astype(np.int16)
        cases.append(mean_case(x, mean_params))
    for _ in range(150):
        positions = int(rng.integers(1, 300))
        raw_mean = MeanS16Params(positions, zp(), zp(), int(rng.integers(0, 2**31)), int(rng.integers(-31, 31)))
        cases.append(mean_case(int16s(positions, int(rng.integers(1, 5))), raw_mean))
    for value in (INT16_MIN, INT16_MAX):
        wrapping = mean_s16_params(1e-3, 0, 1e-3, 0, 70000)
        cases.append(mean_case(np.full((70000, 1), value, np.int16), wrapping))
        cases.append(mean_case(np.full((4096, 2), value, np.int16), mean_s16_params(0.1, 32767, 0.001, -32768, 4096)))

    # RELU, RELU6, LEAKY_RELU on all int16 values now and then, from random scales and raw fields.
    everything = ALL_INT16.reshape(-1)
    for k in range(300):
        in_scale = log_uniform(rng, 1e-7, 1e2)
        out_scale = in_scale * log_uniform(rng, 2.0**-20, 2.0**15)
        x = everything if k % 50 == 0 else int16s(257)
        with contextlib.suppress(ValueError):
            cases.append(unary_case(x, relu_s16_params(in_scale, 0, out_scale, 0)))
        with contextlib.suppress(ValueError):
            cases.append(unary_case(x, relu6_s16_params(in_scale, zp())))
        alpha = float(rng.uniform(-3.0, 3.0))
        with contextlib.suppress(ValueError):
            cases.append(unary_case(x, leaky_relu_s16_params(in_scale, zp(), out_scale, zp(), alpha)))
    for _ in range(100):
        relu = ReluS16Params(int(rng.integers(0, 2**31)), int(rng.integers(-31, 31)))
        cases.append(unary_case(int16s(300), relu))
        cases.append(unary_case(int16s(300), Relu6S16Params(*random_act(rng))))
        leaky = LeakyReluS16Params(
            zp(),
            zp(),
            int(rng.integers(-(2**31) + 1, 2**31)),
            int(rng.integers(-31, 31)),
            int(rng.integers(-(2**31) + 1, 2**31)),
            int(rng.integers(-31, 31)),
        )
        cases.append(unary_case(int16s(300), leaky))
    return cases


def test_c_matches_numpy(c_harness: Path, tmp_path: Path) -> None:
    cases = random_c_cases(np.random.default_rng(20240614))
    per_op = {op: sum(1 for c in cases if c.op == code) for op, code in OP_CODES.items()}
    assert min(per_op.values()) >= 300, per_op
    got = run_op_cases(c_harness, cases, tmp_path, np.int16)
    differing = [i for i, (g, c) in enumerate(zip(got, cases, strict=True)) if not np.array_equal(g, c.expected)]
    # Bit-exact: zero differing bytes.
    assert not differing, f"{len(differing)} cases differ, first {cases[differing[0]].op} {cases[differing[0]].args}"


C_CALLS = {
    "NN_USE_ADD_S16": "nn_add_s16(in, in, out, 4, 0, 1 << 30, 0, 0, 1 << 30, -1, 0, 1 << 30, -14, 15, -32768, 32767);",
    "NN_USE_AVG_POOL_S16": "nn_avg_pool_s16(in, out, 2, 2, 1, 1, 1, 2, 2, 1, 1, 0, 0, -32768, 32767);",
    "NN_USE_MEAN_S16": "nn_mean_s16(in, out, 4, 1, 0, 0, 1 << 30, -1);",
    "NN_USE_LEAKY_RELU_S16": "nn_leaky_relu_s16(in, out, 4, 0, 0, 1 << 30, 1, 1 << 30, -2);",
}


@pytest.mark.parametrize("macros", [[m] for m in ALL_MACROS] + [[]])
def test_c_each_kernel_alone_compiles_without_warnings(compiler: str, tmp_path: Path, macros: list[str]) -> None:
    """With only its own macro (or none) defined, no static function is left unused."""
    user = entry_point(
        "const int16_t *in, int16_t *out",
        "out[0] = (int16_t)nn_mbqm(in[0], 1 << 30, 0);",
        *(C_CALLS[m] for m in macros),
    )
    proc = compile_c(runtime_unit(*RUNTIME, user, macros=macros), tmp_path / "unit.o",
                     compiler=compiler)
    assert proc.returncode == 0, proc.stderr


OTHER_RUNTIME = ["requant.c", "fixedpoint.c", "softmax.c", "activations.c", "binary.c", "add.c", "pooling.c"]
OTHER_MACROS = [
    "NN_USE_SOFTMAX_S8",
    "NN_USE_SOFTMAX_TABLE_S8",
    "NN_USE_TANH_S8",
    "NN_USE_LOGISTIC_S8",
    "NN_USE_HARD_SWISH_S8",
    "NN_USE_LEAKY_RELU_S8",
    "NN_USE_ADD_S8",
    "NN_USE_AVG_POOL_S8",
    "NN_USE_MEAN_S8",
]
OTHER_CALLS = [
    "nn_softmax_s8(in8, out8, 1, 4, 1 << 30, 20, -100);",
    "nn_softmax_table_s8(in8, out8, 1, 4, -100, exp_table);",
    "nn_tanh_s8(in8, out8, 4, 0, 1, 1 << 30, 0);",
    "nn_logistic_s8(in8, out8, 4, 0, 1, 1 << 30, 0);",
    "nn_hard_swish_s8(in8, out8, 4, 0, 0, 1, 0, 1, 0);",
    "nn_leaky_relu_s8(in8, out8, 4, 0, 0, 1, 0, 1, 0);",
    "nn_add_s8(in8, in8, out8, 4, 0, 1 << 30, 0, 0, 1 << 30, -1, 0, 1 << 30, -19, 20, -128, 127);",
    "nn_avg_pool_s8(in8, out8, 2, 2, 1, 1, 1, 2, 2, 1, 1, 0, 0, -128, 127);",
    "nn_mean_s8(in8, out8, 4, 1, 0, 0, 1 << 30, -1);",
]


def test_c_shares_a_unit_with_the_other_kernels(compiler: str, tmp_path: Path) -> None:
    """The int8 and int16 kernels of the runtime files in one unit, every kernel used: no clashing names."""
    user = entry_point(
        "const int8_t *in8, int8_t *out8, const int16_t *in, int16_t *out, const int32_t *exp_table",
        *OTHER_CALLS, *C_CALLS.values(),
    )
    unit = runtime_unit(*OTHER_RUNTIME, user, macros=[*OTHER_MACROS, *ALL_MACROS])
    proc = compile_c(unit, tmp_path / "unit.o", compiler=compiler)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# Parameters and kernels by hand, and against floating point
# --------------------------------------------------------------------------


def test_add_params_by_hand() -> None:
    # twice_max = 1: 0.5 -> (2**30, 0), 0.25 -> (2**30, -1); output 1 / (2**15 * 1) -> (2**30, -14).
    assert add_s16_params(0.5, 3, 0.25, -4, 1.0, 7) == AddS16Params(-3, 2**30, 0, 4, 2**30, -1, 7, 2**30, -14, 15)
    with pytest.raises(ValueError, match="TFLITE_CHECK"):
        add_s16_params(1.0, 0, 1.0, 0, 2.0**-14, 0)  # output multiplier 2 / (2**15 * 2**-14) = 1
    with pytest.raises(ValueError, match="int16"):
        add_s16_params(1.0, 40000, 1.0, 0, 1.0, 0)
    with pytest.raises(ValueError, match="int16"):
        add_s16(np.array([40000]), np.array([0]), add_s16_params(1.0, 0, 1.0, 0, 1.0, 0))


@pytest.mark.parametrize(("s1", "s2", "so"), [(1e-4, 3e-4, 4e-4), (0.5, 0.002, 0.5), (1e-5, 1e-5, 1e-6)])
def test_add_approximates_floats(s1: float, s2: float, so: float) -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.integers(INT16_MIN, INT16_MAX + 1, size=100000) for _ in range(2))
    params = add_s16_params(s1, 0, s2, 0, so, 0)
    real = float(np.float32(s1)) * a + float(np.float32(s2)) * b
    ideal = np.clip(np.round(real / float(np.float32(so))), INT16_MIN, INT16_MAX)
    assert np.max(np.abs(add_s16(a, b, params).astype(int) - ideal)) <= 1


def test_avg_pool_by_hand() -> None:
    x = np.array([-30001, -2, 30001, 2, 1, 2]).reshape(1, 1, 6, 1)
    # Pairs: -30003 / 2 -> -15002 (away from zero), 30003 / 2 -> 15002, 3 / 2 -> 2.
    assert avg_pool_s16(x, (1, 2), (1, 2), (0, 0), (1, 3)).reshape(-1).tolist() == [-15002, 15002, 2]
    assert avg_pool_s16(x, (1, 2), (1, 2), (0, 0), (1, 3), 0, 100).reshape(-1).tolist() == [0, 100, 2]
    with pytest.raises(ValueError, match="no input tap"):
        avg_pool_s16(x, (1, 2), (1, 2), (0, 0), (1, 4))
    with pytest.raises(ValueError, match="taps"):
        avg_pool_s16(np.zeros((1, 256, 256, 1)), (256, 256), (1, 1), (0, 0), (1, 1))


def test_mean_by_hand() -> None:
    # Equal quantisations, count 2: (2**30, 0); centred sums -60001 and 5 -> -30000.5 -> -30000 (negative ties
    # go toward zero through SaturatingRoundingDoublingHighMul's nudge), 2.5 -> 3.
    same = mean_s16_params(0.1, 0, 0.1, 0, 2)
    assert (same.multiplier, same.shift) == (2**30, 0)
    assert mean_s16(np.array([[[-30000, 3], [-30001, 2]]]), same).tolist() == [[-30000, 3]]
    # A sum beyond int32 wraps as in TFLM (70000 * 32767 > 2**31).
    wrapping = mean_s16_params(1.0, 0, 1.0, 0, 70000)
    assert mean_s16(np.full((1, 70000, 1), INT16_MAX), wrapping)[0, 0] < 0
    with pytest.raises(ValueError, match="positions"):
        mean_s16(np.zeros((1, 3, 2)), same)


@pytest.mark.parametrize("positions", [1, 3, 49, 1000])
def test_mean_approximates_floats(positions: int) -> None:
    rng = np.random.default_rng(positions)
    x = rng.integers(INT16_MIN, INT16_MAX + 1, size=(20, positions, 4))
    params = mean_s16_params(2e-4, 0, 1e-4, 0, positions)
    real = x.mean(axis=1) * float(np.float32(2e-4))
    ideal = np.clip(np.round(real / float(np.float32(1e-4))), INT16_MIN, INT16_MAX)
    assert np.max(np.abs(mean_s16(x, params).astype(int) - ideal)) <= 1


def test_relu_params_by_hand() -> None:
    # Ratio 2 -> (2**30, 2).
    assert relu_s16_params(2.0, 0, 1.0, 0) == ReluS16Params(2**30, 2)
    # Ratio 1/4 -> (2**30, -1): double rounding, so 1/4 -> 1/2 -> 1 and 2/4 -> 1 -> 1/2 -> 1.
    params = relu_s16_params(1.0, 0, 4.0, 0)
    assert relu_s16(np.array([-5, 0, 1, 2, 6, -32768, 32767]), params).tolist() == [0, 0, 1, 1, 2, 0, 8192]
    with pytest.raises(ValueError, match="shift"):
        relu_s16_params(1.0, 0, 2.0**-31, 0)
    with pytest.raises(ValueError, match="zero points"):
        relu_s16_params(1.0, 1, 1.0, 0)


def test_relu6_params_by_hand() -> None:
    assert relu6_s16_params(6.0 / 1000.0, 0) == Relu6S16Params(0, 1000)
    assert relu6_s16_params(6.0 / 1000.0, 32000) == Relu6S16Params(32000, INT16_MAX)
    assert relu6_s16_params(2.0**-20, -32768) == Relu6S16Params(-32768, INT16_MAX)
    assert relu6_s16(np.array([-9, 0, 999, 1000, 1001]), Relu6S16Params(0, 1000)).tolist() == [0, 0, 999, 1000, 1000]
    with pytest.raises(ValueError, match="int32"):
        relu6_s16_params(2.0**-40, 0)


def test_leaky_relu_params_by_hand() -> None:
    # The multipliers of the int8 params (zero points do not enter them); int16 zero points.
    params = leaky_relu_s16_params(0.5, 1000, 0.25, -2000, 0.25)
    assert params == LeakyReluS16Params(1000, -2000, 2**30, 2, 2**30, 0)
    # Identity x2, alpha x0.5 (2**30, 0): -0.5 and -2.5 go toward zero (SaturatingRoundingDoublingHighMul).
    assert leaky_relu_s16(np.array([1000, 1001, 999, 995]), params).tolist() == [-2000, -1998, -2000, -2002]
    with pytest.raises(ValueError, match="int16"):
        leaky_relu_s16_params(0.5, 40000, 0.25, 0, 0.25)


@pytest.mark.parametrize("in_scale", [1e-4, 3e-3, 0.07])
def test_unary_kernels_approximate_floats(in_scale: float) -> None:
    x = ALL_INT16.reshape(-1).astype(np.int64)
    real = x * float(np.float32(in_scale))
    out_scale = in_scale * 0.6
    relu = relu_s16(x, relu_s16_params(in_scale, 0, out_scale, 0))
    ideal = np.clip(np.round(np.maximum(real, 0) / float(np.float32(out_scale))), INT16_MIN, INT16_MAX)
    assert np.max(np.abs(relu - ideal)) <= 1
    leaky = leaky_relu_s16(x, leaky_relu_s16_params(in_scale, 0, out_scale, 0, 0.1))
    ideal = np.clip(
        np.round(np.where(real >= 0, real, 0.1 * real) / float(np.float32(out_scale))), INT16_MIN, INT16_MAX
    )
    assert np.max(np.abs(leaky - ideal)) <= 1
    relu6 = relu6_s16(x, relu6_s16_params(in_scale, 0))  # in input units
    ideal = np.round(np.clip(real, 0, 6) / float(np.float32(in_scale)))
    assert np.max(np.abs(relu6 - ideal)) <= 1
