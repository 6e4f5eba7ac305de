"""int16 SOFTMAX, TANH, LOGISTIC (16x8 scheme): NumPy against TensorFlow Lite Micro, C against NumPy.

Every comparison is ``np.array_equal`` on the int16 outputs: zero differing
values, not a tolerance. The TANH and LOGISTIC models are
``Input((65536,)) -> activation``, so one invocation covers every int16 value;
the SOFTMAX models are ``Input((rows, depth)) -> Softmax`` over the last axis,
so one invocation covers many rows.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.qmath.activations import (
    SIGMOID_DCHECK_MULTIPLIER,
    SIGMOID_TABLE_UINT16,
    LogisticS16Params,
    TanhS16Params,
    logistic_s16,
    logistic_s16_params,
    tanh_s16,
    tanh_s16_params,
)
from nndsl.qmath.requant import checked_log2
from nndsl.qmath.softmax import (
    LUT_SIZE,
    SOFTMAX_MAX_SAFE_DEPTH,
    SoftmaxS16Params,
    lut_lookup,
    softmax_exp_lut,
    softmax_one_over_one_plus_x_lut,
    softmax_s16,
    softmax_s16_params,
)
from tests.c_harness import WARNING_FLAGS, build_harness, compile_c, entry_point, run_harness, runtime_unit
from tests.tflite_models import (
    convert_keras,
    edit_model,
    model_graph,
    model_quantization,
    patch_model,
    quantizing_converter,
    run_tflm,
    seed_of,
    tflm_interpreter,
)

ALL_INT16 = np.arange(-(2**15), 2**15).astype(np.int16)
WIDTH = ALL_INT16.size
ALL_MACROS = ["NN_USE_SOFTMAX_S16", "NN_USE_TANH_S16", "NN_USE_LOGISTIC_S16"]
# The runtime files of the three kernels, in the order the backend pastes them.
RUNTIME = ["requant.c", "fixedpoint.c", "softmax.c", "activations.c"]

ElementwiseParams = TanhS16Params | LogisticS16Params


@dataclasses.dataclass(frozen=True)
class Elementwise:
    """TANH or LOGISTIC: the builtin, the Keras activation, the params function, the kernel, the harness code."""

    builtin: str
    keras_name: str
    make_params: Callable[..., ElementwiseParams]
    kernel: Callable[[Any, Any], np.ndarray]
    code: int


ELEMENTWISE: dict[str, Elementwise] = {
    "tanh": Elementwise("TANH", "tanh", tanh_s16_params, tanh_s16, 0),
    "logistic": Elementwise("LOGISTIC", "sigmoid", logistic_s16_params, logistic_s16, 1),
}
SOFTMAX_CODE = 2


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def softmax_edge_rows(depth: int) -> np.ndarray:
    """Rows that stress the kernel: ties, the extremes, the widest spreads, ramps."""
    rows = [np.full(depth, v) for v in (-32768, -1, 0, 32767)]
    one_hot = np.full(depth, -32768)
    one_hot[depth // 2] = 32767
    rows.append(one_hot)
    rows.append(np.where(np.arange(depth) % 2 == 0, 32767, -32768))
    rows.append(np.resize(np.arange(-32768, 32768, 257), depth))
    rows.append(np.resize(np.arange(32767, -32769, -131), depth))
    near_max = np.full(depth, 32766)
    near_max[0] = 32767
    rows.append(near_max)
    one_low = np.full(depth, 32767)
    one_low[-1] = -32768
    rows.append(one_low)
    return np.stack(rows).astype(np.int16)


def softmax_random_rows(rng: np.random.Generator, depth: int, count: int) -> np.ndarray:
    """Rows with spreads from 1 to 65535 (log-uniform), so that every part of the exp table is used."""
    spread = np.exp(rng.uniform(0.0, math.log(65535.0), size=count)).astype(np.int64)
    top = rng.integers(-32768 + spread, 32768)
    offsets = np.floor(rng.random((count, depth)) * (spread[:, None] + 1)).astype(np.int64)
    rows: np.ndarray = (top[:, None] - offsets).astype(np.int16)
    return rows


def softmax_every_difference() -> np.ndarray:
    """Depth-2 rows ``(32767, 32767 - k)`` for every k in [0, 65535], each in both orders."""
    k = np.arange(65536)
    pairs = np.stack([np.full(k.size, 32767), 32767 - k], axis=1)
    return np.concatenate([pairs, pairs[:, ::-1]]).astype(np.int16)


# --------------------------------------------------------------------------
# NumPy against TensorFlow Lite Micro
# --------------------------------------------------------------------------


def convert_model(tf: Any, op: str, shape: tuple[int, ...], low: float, high: float, seed: int) -> bytes:
    """``Input(shape) -> op`` converted in the 16x8 scheme (int16 in and out), calibrated on uniform [low, high]."""
    keras = tf.keras
    layer = keras.layers.Softmax() if op == "softmax" else keras.layers.Activation(ELEMENTWISE[op].keras_name)
    inputs = keras.Input(shape)
    return convert_keras(tf, keras.Model(inputs, layer(inputs)), [shape], [(low, high)], seed, int16=True, samples=8)


def run_tflite_micro(model: bytes, batch: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``batch`` split into model inputs of ``shape`` (the last one padded with zeros), run one by one."""
    per_input = math.prod(shape)
    flat = batch.reshape(-1)
    padded = np.concatenate([flat, np.zeros(-flat.size % per_input, dtype=np.int16)])
    outputs = run_tflm(model, padded.reshape(-1, 1, *shape))
    result: np.ndarray = outputs.reshape(-1)[: flat.size].reshape(batch.shape)
    assert result.dtype == np.int16
    return result


ModelKey = tuple[str, tuple[int, ...], float, float]


@pytest.fixture(scope="module")
def models(tflite: Any) -> Callable[[str, tuple[int, ...], float, float], bytes]:
    """Converted models, cached for the module; each checked to hold exactly the one builtin, int16 in and out."""
    cache: dict[ModelKey, bytes] = {}

    def get(op: str, shape: tuple[int, ...], low: float, high: float) -> bytes:
        key = (op, shape, low, high)
        if key not in cache:
            model = convert_model(tflite, op, shape, low, high, seed=seed_of(*key))
            assert model_graph(model).names == ["SOFTMAX" if op == "softmax" else ELEMENTWISE[op].builtin]
            details = tflite.lite.Interpreter(model_content=model)
            assert details.get_input_details()[0]["dtype"] == np.int16
            assert details.get_output_details()[0]["dtype"] == np.int16
            cache[key] = model
        return cache[key]

    return get


def assert_same(got: np.ndarray, expected: np.ndarray, inputs: np.ndarray, what: object) -> None:
    """Bit-exact: zero differing values (the first few shown otherwise)."""
    assert got.dtype == np.int16
    assert got.shape == expected.shape
    bad = np.flatnonzero((got != expected).reshape(-1))
    assert bad.size == 0, (
        f"{what}: {bad.size} values differ; inputs {inputs.reshape(-1)[bad[:6]].tolist()} "
        f"tflm {expected.reshape(-1)[bad[:6]].tolist()} numpy {got.reshape(-1)[bad[:6]].tolist()}"
    )
    assert np.array_equal(got, expected)


# Calibration ranges: input scales from ~3e-9 to ~0.03. (-8, 8) and (-16, 16) give
# 8/32767 and 16/32767, within 1e-3 (in log2) of 2**-12 and 2**-11: TFLM's power-of-two
# shortcut (for LOGISTIC only the first).
ELEMENTWISE_RANGES = [(-3.0, 3.0), (-8.0, 8.0), (-16.0, 16.0), (-0.1, 0.1), (-1e-4, 1e-4), (-1000.0, 1000.0)]
ELEMENTWISE_CASES = [(op, low, high) for op in ELEMENTWISE for low, high in ELEMENTWISE_RANGES]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("op", "low", "high"), ELEMENTWISE_CASES)
def test_tanh_logistic_match_tflite_micro_on_every_int16(
    tflite: Any, models: Callable[..., bytes], op: str, low: float, high: float
) -> None:
    model = models(op, (WIDTH,), low, high)
    quantization = model_quantization(model)
    assert quantization[1:] == (0, 1.0 / 32768.0, 0)
    params = ELEMENTWISE[op].make_params(*quantization)
    expected = run_tflite_micro(model, ALL_INT16, (WIDTH,))
    assert_same(ELEMENTWISE[op].kernel(ALL_INT16, params), expected, ALL_INT16, (op, quantization, params))
    if (low, high) == (-8.0, 8.0) or ((low, high) == (-16.0, 16.0) and op == "tanh"):
        assert params.input_multiplier == 0, "expected the power-of-two shortcut"
    if high >= 0.1:  # (smaller scales leave a handful of output values)
        assert len(np.unique(expected)) > 100


# Patched input scales: exact powers of two (the shortcut, or not), near ones either
# side of CheckedLog2's 1e-3, shift 31 (tiny scales), shift 0 with multipliers above
# TFLM's debug-only DCHECK (32767) up to 61440.
PATCHED_INPUT_SCALES = [
    2.0**-13,
    2.0**-12,
    2.0**-11,
    2.0**-10,
    2.0**-12 * 1.0006,
    2.0**-12 * 1.0008,
    2.0**-11 * 0.9994,
    1e-9,
    1.5,
    2.0,
    2.6,
    3.0,
    5.0,
]


@pytest.mark.tensorflow
@pytest.mark.parametrize("input_scale", PATCHED_INPUT_SCALES)
def test_tanh_logistic_patched_input_scales(tflite: Any, models: Callable[..., bytes], input_scale: float) -> None:
    for op in ELEMENTWISE:
        model = patch_model(models(op, (WIDTH,), -3.0, 3.0), input_scale=input_scale)
        quantization = model_quantization(model)
        params = ELEMENTWISE[op].make_params(*quantization)
        expected = run_tflite_micro(model, ALL_INT16, (WIDTH,))
        assert_same(ELEMENTWISE[op].kernel(ALL_INT16, params), expected, ALL_INT16, (op, quantization, params))


@pytest.mark.tensorflow
def test_tanh_logistic_input_multiplier_overflow_refused(tflite: Any, models: Callable[..., bytes]) -> None:
    """Input scale 6: multiplier 73728, TFLM's int32 product overflows (visibly); the params refuse."""
    for op in ELEMENTWISE:
        model = patch_model(models(op, (WIDTH,), -3.0, 3.0), input_scale=6.0)
        expected = run_tflite_micro(model, ALL_INT16, (WIDTH,))
        # Input -32768: -32768 * 73728 wraps to +1879048192 in int32, so the most negative
        # input saturates the wrong way.
        assert expected[0] == 32767
        with pytest.raises(ValueError, match="overflows"):
            ELEMENTWISE[op].make_params(*model_quantization(model))


@pytest.mark.tensorflow
def test_tanh_logistic_output_quantisation_checked(tflite: Any, models: Callable[..., bytes]) -> None:
    """TFLM's Prepare: zero points 0, output scale 2**-15 within 1e-3 in log2; the params agree both ways."""
    for op in ELEMENTWISE:
        model = models(op, (WIDTH,), -3.0, 3.0)
        # Accepted: an output scale a little off 2**-15; the integers do not change.
        near = patch_model(model, output_scale=2.0**-15 * 1.0005)
        params = ELEMENTWISE[op].make_params(*model_quantization(near))
        expected = run_tflite_micro(near, ALL_INT16, (WIDTH,))
        assert_same(ELEMENTWISE[op].kernel(ALL_INT16, params), expected, ALL_INT16, op)
        # Refused by both.
        for patch in (
            {"output_scale": 2.0**-14},
            {"output_scale": 2.0**-15 * 1.001},
            {"output_zero_point": 5},
            {"input_zero_point": -3},
        ):
            patched = patch_model(model, **patch)
            with pytest.raises(RuntimeError):
                tflm_interpreter(patched)
            with pytest.raises(ValueError, match=r"zero point|scale"):
                ELEMENTWISE[op].make_params(*model_quantization(patched))


# (rows, depth, calibration range): input scales from ~1.5e-6 to ~0.01.
SOFTMAX_CASES = [
    (64, 1, -5.0, 5.0),
    (256, 2, -5.0, 5.0),
    (128, 3, -1.0, 1.0),
    (64, 10, -5.0, 5.0),
    (64, 10, -50.0, 50.0),
    (64, 10, -0.05, 0.05),
    (16, 100, -12.0, 12.0),
    (4, 1000, -300.0, 300.0),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("rows", "depth", "low", "high"), SOFTMAX_CASES)
def test_softmax_matches_tflite_micro(
    tflite: Any, models: Callable[..., bytes], rows: int, depth: int, low: float, high: float
) -> None:
    model = models("softmax", (rows, depth), low, high)
    quantization = model_quantization(model)
    assert quantization[1:] == (0, 1.0 / 32768.0, 0)
    params = softmax_s16_params(quantization[0], output_scale=quantization[2], output_zero_point=quantization[3])
    rng = np.random.default_rng(depth * 1000 + rows)
    batch = np.concatenate([softmax_edge_rows(depth), softmax_random_rows(rng, depth, max(400, 8 * rows))])
    expected = run_tflite_micro(model, batch, (rows, depth))
    assert_same(softmax_s16(batch, params), expected, batch, (quantization, params.input_multiplier))
    if depth > 1:
        assert len(np.unique(expected)) > 100


@pytest.mark.tensorflow
@pytest.mark.parametrize("input_scale", [10.0 / 65535.0, 1e-4, 1.5e-3])
def test_softmax_every_input_difference(tflite: Any, models: Callable[..., bytes], input_scale: float) -> None:
    """Every difference 0..65535 from the maximum: every exp table interval when the rescale is >= 1."""
    shape = (4096, 2)
    model = patch_model(models("softmax", shape, -5.0, 5.0), input_scale=input_scale)
    params = softmax_s16_params(model_quantization(model)[0])
    batch = softmax_every_difference()
    expected = run_tflite_micro(model, batch, shape)
    assert_same(softmax_s16(batch, params), expected, batch, params.input_multiplier)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("input_scale", "beta"),
    [(1e-12, 1.0), (2e-7, 1.0), (1e-4, 0.5), (1e-4, 3.0), (3e-5, 0.01), (0.02, 1.0), (4.9, 1.0)],
)
def test_softmax_patched_scale_and_beta(
    tflite: Any, models: Callable[..., bytes], input_scale: float, beta: float
) -> None:
    """Right shifts to -27 (multipliers flushing nothing), left shifts to 15, beta from the options."""
    shape = (64, 10)
    model = patch_model(models("softmax", shape, -5.0, 5.0), input_scale=input_scale, beta=beta)
    params = softmax_s16_params(model_quantization(model)[0], beta)
    rng = np.random.default_rng(5)
    batch = np.concatenate([softmax_edge_rows(10), softmax_random_rows(rng, 10, 640)])
    expected = run_tflite_micro(model, batch, shape)
    assert_same(softmax_s16(batch, params), expected, batch, (input_scale, beta, params.input_multiplier))


@pytest.mark.tensorflow
def test_softmax_output_quantisation_checked(tflite: Any, models: Callable[..., bytes]) -> None:
    """TFLM's Prepare: output zero point 0, scale within 0.001/32768 of 1/32768; the params agree both ways."""
    model = models("softmax", (64, 10), -5.0, 5.0)
    input_scale = model_quantization(model)[0]
    accepted = patch_model(model, output_scale=1.0009 / 32768.0)
    tflm_interpreter(accepted)
    softmax_s16_params(input_scale, output_scale=model_quantization(accepted)[2])
    for patch in ({"output_scale": 1.0011 / 32768.0}, {"output_scale": 1.0 / 65536.0}, {"output_zero_point": 1}):
        patched = patch_model(model, **patch)
        with pytest.raises(RuntimeError):
            tflm_interpreter(patched)
        _, _, output_scale, output_zero_point = model_quantization(patched)
        with pytest.raises(ValueError, match="SOFTMAX int16 output"):
            softmax_s16_params(input_scale, output_scale=output_scale, output_zero_point=output_zero_point)
    # Left shift 16 (input scale >= ~5): TFLM's int32 rescale may overflow; refused.
    with pytest.raises(ValueError, match="overflows"):
        softmax_s16_params(5.1)


@pytest.mark.tensorflow
def test_hard_swish_has_no_int16_kernel(tflite: Any) -> None:
    """The converter refuses HARD_SWISH in 16x8 mode, and TFLM's HARD_SWISH Eval rejects int16 tensors."""
    from tensorflow.lite.python import schema_py_generated as schema

    keras = tflite.keras
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Activation("hard_swish")(inputs))

    def representative() -> Iterator[list[np.ndarray]]:
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.uniform(-4.0, 4.0, size=(1, 8)).astype(np.float32)]

    with pytest.raises(Exception, match="16x8"):
        quantizing_converter(tflite, model, representative, int16=True).convert()
    # The int8 model with both tensors retyped int16, zero points 0: Prepare passes, Eval fails.
    int8_model = bytes(quantizing_converter(tflite, model, representative).convert())

    def retype(parsed: Any) -> None:
        for tensor in parsed.subgraphs[0].tensors:
            tensor.type = schema.TensorType.INT16
            tensor.quantization.zeroPoint = np.zeros_like(tensor.quantization.zeroPoint)

    interpreter = tflm_interpreter(edit_model(int8_model, retype))
    interpreter.set_input(np.zeros((1, 8), dtype=np.int16), 0)
    with pytest.raises(RuntimeError):
        interpreter.invoke()


# --------------------------------------------------------------------------
# C against NumPy
# --------------------------------------------------------------------------

RUN_CASES = r"""
static int16_t all_int16[65536];
static int16_t out_buf[1 << 20];
static int16_t in_buf[1 << 20];
static int16_t exp_lut[513];
static int16_t reciprocal_lut[513];

/* Per case an op code and its fields:
 * 0 tanh / 1 logistic: multiplier, shift -> the op on all 65536 int16 values;
 * 2 softmax: rows, depth, multiplier, shift, the two 513-entry tables (int16),
 *   rows x depth int16 values -> rows x depth int16 outputs;
 * 3: the sigmoid table (256 uint16). */
static int run_cases(FILE *fin, FILE *fout, int32_t cases)
{
    int32_t k;
    int32_t j;
    for (j = 0; j < 65536; ++j) {
        all_int16[j] = (int16_t)(j - 32768);
    }
    for (k = 0; k < cases; ++k) {
        int32_t op;
        int32_t a;
        int32_t b;
        int32_t rows;
        int32_t depth;
        size_t count;
        if (!read_i32(fin, &op)) {
            return 4;
        }
        if (op == 3) {
            if (fwrite(nn_sigmoid_table_uint16, sizeof nn_sigmoid_table_uint16, 1, fout) != 1) {
                return 6;
            }
            continue;
        }
        if (op == 0 || op == 1) {
            if (!read_i32(fin, &a) || !read_i32(fin, &b)) {
                return 4;
            }
            memset(out_buf, 0x55, sizeof all_int16);
            if (op == 0) {
                nn_tanh_s16(all_int16, out_buf, 65536, a, b);
            } else {
                nn_logistic_s16(all_int16, out_buf, 65536, a, b);
            }
            if (fwrite(out_buf, sizeof all_int16, 1, fout) != 1) {
                return 6;
            }
            continue;
        }
        if (op != 2 || !read_i32(fin, &rows) || !read_i32(fin, &depth) || !read_i32(fin, &a)
            || !read_i32(fin, &b)) {
            return 4;
        }
        count = (size_t)rows * (size_t)depth;
        if (fread(exp_lut, sizeof exp_lut, 1, fin) != 1 || fread(reciprocal_lut, sizeof reciprocal_lut, 1, fin) != 1
            || count > sizeof in_buf / sizeof in_buf[0] || fread(in_buf, sizeof in_buf[0], count, fin) != count) {
            return 5;
        }
        memset(out_buf, 0x55, count * sizeof out_buf[0]);
        nn_softmax_s16(in_buf, out_buf, rows, depth, a, b, exp_lut, reciprocal_lut);
        if (fwrite(out_buf, sizeof out_buf[0], count, fout) != count) {
            return 6;
        }
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_harness(compiler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three C kernels, compiled once with sanitisers into a file-to-file harness."""
    build = tmp_path_factory.mktemp("int16_functions_c")
    return build_harness(build, RUNTIME, RUN_CASES, macros=ALL_MACROS, compiler=compiler)


SoftmaxCase = tuple[np.ndarray, SoftmaxS16Params]


def run_c(
    binary: Path,
    work: Path,
    elementwise: Sequence[tuple[str, ElementwiseParams]] = (),
    softmax: Sequence[SoftmaxCase] = (),
    table: bool = False,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
    """Runs the harness: (elementwise outputs on all int16 values, softmax outputs, the C sigmoid table)."""
    chunks = [np.array([len(elementwise) + len(softmax) + int(table)], dtype="<i4").tobytes()]
    for op, fields in elementwise:
        chunks.append(np.array([ELEMENTWISE[op].code, *dataclasses.astuple(fields)], dtype="<i4").tobytes())
    for rows, params in softmax:
        header = [SOFTMAX_CODE, rows.shape[0], rows.shape[1], params.input_multiplier, params.input_left_shift]
        chunks.append(np.array(header, dtype="<i4").tobytes())
        chunks.append(np.array(params.exp_lut + params.one_over_one_plus_x_lut, dtype="<i2").tobytes())
        chunks.append(np.ascontiguousarray(rows, dtype="<i2").tobytes())
    if table:
        chunks.append(np.array([3], dtype="<i4").tobytes())
    raw = run_harness(binary, b"".join(chunks), work)
    offset = 2 * WIDTH * len(elementwise)
    elementwise_out = np.frombuffer(raw[:offset], dtype="<i2").reshape(len(elementwise), WIDTH)
    softmax_out = []
    for rows, _ in softmax:
        softmax_out.append(np.frombuffer(raw[offset : offset + 2 * rows.size], dtype="<i2").reshape(rows.shape))
        offset += 2 * rows.size
    sigmoid_table = None
    if table:
        sigmoid_table = np.frombuffer(raw[offset : offset + 512], dtype="<u2")
        offset += 512
    assert offset == len(raw)
    return elementwise_out, softmax_out, sigmoid_table


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.float32(math.exp(rng.uniform(math.log(low), math.log(high)))))


def elementwise_parameter_sets(rng: np.random.Generator) -> list[tuple[str, ElementwiseParams]]:
    """Params from the params functions at random and special scales, and raw fields TFLM's Prepare can make."""
    cases: list[tuple[str, ElementwiseParams]] = []
    special = [2.0**-13, 2.0**-12, 2.0**-11, 2.0**-12 * 1.0006, 1e-12, 2.6, 3.0, 5.3]
    for op in ELEMENTWISE:
        for scale in special:
            cases.append((op, ELEMENTWISE[op].make_params(scale)))
        for _ in range(60):
            cases.append((op, ELEMENTWISE[op].make_params(log_uniform(rng, 1e-11, 5.3))))
        raw: type[TanhS16Params] | type[LogisticS16Params] = TanhS16Params if op == "tanh" else LogisticS16Params
        for shift in range(32):
            cases.append((op, raw(int(rng.integers(16384, SIGMOID_DCHECK_MULTIPLIER + 1)), shift)))
        cases.append((op, raw(65535, 0)))
    cases.append(("tanh", TanhS16Params(0, 1)))
    return cases


def test_c_tanh_logistic_match_numpy(c_harness: Path, tmp_path: Path) -> None:
    cases = elementwise_parameter_sets(np.random.default_rng(20240613))
    got, _, _ = run_c(c_harness, tmp_path, elementwise=cases)
    expected = np.stack([ELEMENTWISE[op].kernel(ALL_INT16, p) for op, p in cases])
    differing = [cases[i] for i in np.flatnonzero((got != expected).any(axis=1))]
    # Bit-exact: zero differing values.
    assert differing == []
    assert np.array_equal(got, expected)


def test_c_softmax_matches_numpy(c_harness: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(20240614)
    cases: list[SoftmaxCase] = []
    for _ in range(150):
        params = softmax_s16_params(log_uniform(rng, 1e-12, 4.9), float(rng.choice([1.0, 0.5, 2.0])))
        depth = int(rng.choice([1, 2, 3, 5, 10, 16, 37, 100, 1000]))
        cases.append((softmax_random_rows(rng, depth, int(rng.integers(1, 12))), params))
    standard = softmax_s16_params(10.0 / 65535.0)
    for depth in (1, 2, 7, 100):
        cases.append((softmax_edge_rows(depth), standard))
    cases.append((softmax_every_difference(), standard))
    # Tables other than the standard ones, to check the C reads the ones it is given.
    noisy = dataclasses.replace(
        standard,
        exp_lut=tuple(int(v) for v in np.clip(np.array(standard.exp_lut) + rng.integers(-3, 4, LUT_SIZE), 1, 32767)),
        one_over_one_plus_x_lut=tuple(
            int(v) for v in np.array(standard.one_over_one_plus_x_lut) - rng.integers(0, 4, LUT_SIZE)
        ),
    )
    cases.append((softmax_random_rows(rng, 10, 500), noisy))
    # Past the safe depth: a row of ties overflows the int32 sum; NumPy raises, C writes zeros.
    ties = np.full((1, SOFTMAX_MAX_SAFE_DEPTH + 1), 7, dtype=np.int16)
    with pytest.raises(ValueError, match="sum of exponentials"):
        softmax_s16(ties, standard)
    below = np.full((1, SOFTMAX_MAX_SAFE_DEPTH), 7, dtype=np.int16)

    _, got, _ = run_c(c_harness, tmp_path, softmax=[*cases, (below, standard), (ties, standard)])
    differing = [
        (index, p.input_multiplier, p.input_left_shift)
        for index, ((rows, p), c_out) in enumerate(zip(cases, got, strict=False))
        if not np.array_equal(c_out, softmax_s16(rows, p))
    ]
    # Bit-exact: zero differing values in every case.
    assert differing == []
    assert np.array_equal(got[-2], softmax_s16(below, standard))
    assert np.all(got[-1] == 0)


def test_c_sigmoid_table_matches_python(c_harness: Path, tmp_path: Path) -> None:
    _, _, table = run_c(c_harness, tmp_path, table=True)
    assert table is not None
    assert table.tolist() == list(SIGMOID_TABLE_UINT16)


@pytest.mark.parametrize("macros", [[m] for m in ALL_MACROS] + [[]])
def test_c_each_kernel_alone_compiles_without_warnings(compiler: str, tmp_path: Path, macros: list[str]) -> None:
    """With only its own macro (or none) defined, no static function or table is left unused."""
    calls = {
        "NN_USE_SOFTMAX_S16": "nn_softmax_s16(in, out, 1, size, 1 << 30, 0, lut, lut);",
        "NN_USE_TANH_S16": "nn_tanh_s16(in, out, size, 0, 0);",
        "NN_USE_LOGISTIC_S16": "nn_logistic_s16(in, out, size, 0, 0);",
    }
    user = entry_point(
        "const int16_t *in, int16_t *out, int32_t size, const int16_t *lut",
        "out[0] = (int16_t)nn_mbqm(in[0], 1 << 30, 0);",
        *(calls[m] for m in macros),
        "(void)size;",
        "(void)lut;",
    )
    proc = compile_c(runtime_unit(*RUNTIME, user, macros=macros), tmp_path / "unit.o",
                     compiler=compiler)
    assert proc.returncode == 0, proc.stderr


def test_c_shares_a_unit_with_the_int8_kernels(compiler: str, tmp_path: Path) -> None:
    """The int16 and int8 kernels of softmax.c and activations.c in one unit: no name clashes (unused-function
    warnings aside)."""
    int8_macros = ["NN_USE_TANH_S8", "NN_USE_LOGISTIC_S8", "NN_USE_HARD_SWISH_S8", "NN_USE_LEAKY_RELU_S8",
                   "NN_USE_SOFTMAX_S8", "NN_USE_SOFTMAX_TABLE_S8"]
    unit = runtime_unit(*RUNTIME, macros=int8_macros + ALL_MACROS)
    proc = compile_c(unit, tmp_path / "unit.o", flags=(*WARNING_FLAGS, "-Wno-unused-function"), compiler=compiler)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# The tables, generated in float32, against native C float arithmetic
# --------------------------------------------------------------------------

LUT_PROGRAM = r"""
#include <math.h>
#include <stdio.h>
#include <stdint.h>

/* TFLite's LUTPopulateInt16<float>, written out in C with expf. */
static void populate(float (*f)(float), float input_scale, int32_t input_zero_point, float output_scale,
                     int32_t output_zero_point, int16_t *lut)
{
    const float input_min = input_scale * (float)(-32768 - input_zero_point);
    const float input_max = input_scale * (float)(32767 - input_zero_point);
    const float output_min = output_scale * (float)(-32768 - output_zero_point);
    const float output_max = output_scale * (float)(32767 - output_zero_point);
    const float step = (input_max - input_min) / 512;
    const float half_step = step / 2;
    const float inv = (float)65536 / (output_max - output_min);
    int i;
    for (i = 0; i < 512; i++) {
        const float val = f(input_min + i * step);
        const float val_midpoint = f(input_min + i * step + half_step);
        const float val_next = f(input_min + (i + 1) * step);
        const float sample_val = roundf(val * inv);
        const float midpoint_interp_val = roundf((val_next * inv + roundf(val * inv)) / 2);
        const float midpoint_val = roundf(val_midpoint * inv);
        const float bias = roundf((midpoint_interp_val - midpoint_val) / 2);
        const float v = sample_val - bias;
        lut[i] = (int16_t)(v < -32768.0f ? -32768.0f : v > 32767.0f ? 32767.0f : v);
    }
    {
        const float v = roundf(f(input_max) * inv);
        lut[512] = (int16_t)(v < -32768.0f ? -32768.0f : v > 32767.0f ? 32767.0f : v);
    }
}

static float exp_f(float x) { return expf(x); }
static float reciprocal_f(float x) { return 1.0f / (1.0f + x); }

int main(void)
{
    int16_t lut[513];
    const int32_t range = 65535;
    int i;
    populate(exp_f, 10.0f / range, 32767, 2.0f / range, 0, lut);
    for (i = 0; i < 513; i++) printf("%d\n", lut[i]);
    populate(reciprocal_f, 1.0f / range, -32768, 2.0f / range, 0, lut);
    for (i = 0; i < 513; i++) printf("%d\n", lut[i]);
    return 0;
}
"""


def test_softmax_tables_match_native_float_arithmetic(compiler: str, tmp_path: Path) -> None:
    """The float32 emulation gives what C float arithmetic (no FMA contraction) and libm's expf give."""
    binary = tmp_path / "lut"
    proc = compile_c(LUT_PROGRAM, binary, flags=("-std=c99", "-O2", "-ffp-contract=off"), compiler=compiler)
    assert proc.returncode == 0, proc.stderr
    values = [int(v) for v in subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split()]
    assert tuple(values[:LUT_SIZE]) == softmax_exp_lut()
    assert tuple(values[LUT_SIZE:]) == softmax_one_over_one_plus_x_lut()


# --------------------------------------------------------------------------
# Parameters and tables, worked out by hand
# --------------------------------------------------------------------------


def test_softmax_s16_params_by_hand() -> None:
    # 2**-12 * 6553.5 = 1.5999755859375 = 0.79998779296875 * 2**1; * 2**31 = 1717960704 exactly.
    params = softmax_s16_params(2.0**-12)
    assert (params.input_multiplier, params.input_left_shift) == (1717960704, 1)
    # beta multiplies in: 2**-13 * 2 is the same real multiplier.
    assert softmax_s16_params(2.0**-13, 2.0) == params
    assert params.exp_lut == softmax_exp_lut() and len(params.exp_lut) == LUT_SIZE
    with pytest.raises(ValueError, match="beta"):
        softmax_s16_params(1e-3, 0.0)
    with pytest.raises(ValueError, match="overflows"):
        softmax_s16_params(2.0**-12 * 2**15)  # left shift 16
    assert softmax_s16_params(4.9).input_left_shift == 15


def test_tanh_logistic_params_by_hand() -> None:
    assert tanh_s16_params(2.0**-12) == TanhS16Params(0, 0)
    assert tanh_s16_params(2.0**-11) == TanhS16Params(0, 1)
    assert logistic_s16_params(2.0**-12) == LogisticS16Params(0, 0)
    # 2**-11 * 12288 = 6, doubled 12 times to 24576 (<= 16383.5 stops the doubling after).
    assert logistic_s16_params(2.0**-11) == LogisticS16Params(24576, 12)
    assert tanh_s16_params(2.0**-13) == TanhS16Params(24576, 14)
    # 8/32767 is 2**-12 * 1.00003: a power of two for CheckedLog2.
    assert tanh_s16_params(8.0 / 32767.0) == TanhS16Params(0, 0)
    assert checked_log2(2.0**-12 * 1.0006) == (True, -12)
    assert checked_log2(2.0**-12 * 1.0008)[0] is False
    # Large scales: shift 0, multiplier truncated; up to 65535 accepted.
    assert tanh_s16_params(2.0) == TanhS16Params(24576, 0)
    assert logistic_s16_params(3.0) == LogisticS16Params(36864, 0)
    with pytest.raises(ValueError, match="overflows"):
        tanh_s16_params(5.34)
    # Tiny scales: the doubling stops at shift 31.
    assert tanh_s16_params(1e-12).input_left_shift == 31
    with pytest.raises(ValueError, match="zero point"):
        tanh_s16_params(1e-3, 1)
    with pytest.raises(ValueError, match="scale 2"):
        logistic_s16_params(1e-3, 0, 2.0**-14, 0)


def test_sigmoid_table_is_sigmoid() -> None:
    table = np.array(SIGMOID_TABLE_UINT16)
    exact = 65536.0 / (1.0 + np.exp(-np.arange(256) / 24.0))
    assert table.size == 256 and table[0] == 32768 and table[-1] == 65535
    assert np.all(np.diff(table) >= 0)
    assert np.max(np.abs(table - exact)) < 1.2  # not plain rounding: off by up to 1.11


def test_softmax_tables() -> None:
    exp_lut = np.array(softmax_exp_lut())
    reciprocal_lut = np.array(softmax_one_over_one_plus_x_lut())
    assert exp_lut.size == reciprocal_lut.size == LUT_SIZE
    assert np.all(np.diff(exp_lut) >= 0) and np.all(np.diff(reciprocal_lut) <= 0)
    # exp(-10) * 32768 is 1.49; the interpolation bias makes the first entry 2.
    assert exp_lut[-1] == 32767 and exp_lut[0] == 2
    assert reciprocal_lut[0] == 32767 and reciprocal_lut[-1] == 16384
    # Interpolated lookups follow the functions to within a few units.
    x = ALL_INT16.astype(np.int64)
    exp_values = lut_lookup(x, exp_lut) / 32768.0
    assert np.max(np.abs(exp_values - np.exp((x - 32767) * 10.0 / 65535.0))) < 3e-4
    reciprocal_values = lut_lookup(x, reciprocal_lut) / 32768.0
    assert np.max(np.abs(reciprocal_values - 1.0 / (1.0 + (x + 32768) / 65535.0))) < 3e-4


def test_saturation_values() -> None:
    """TANH's outputs span [-32767, 32767], LOGISTIC's [1, 32767]: neither reaches -32768 or 0."""
    tanh_out = tanh_s16(ALL_INT16, tanh_s16_params(1.0))
    assert tanh_out.min() == -32767 and tanh_out.max() == 32767
    logistic_out = logistic_s16(ALL_INT16, logistic_s16_params(1e-2))  # multiplier 31457, shift 8
    assert logistic_out.min() == 1 and logistic_out.max() == 32767
    assert logistic_s16(np.array([0]), logistic_s16_params(1e-2))[0] == 16384
    assert np.array_equal(softmax_s16(np.zeros((1, 4), np.int16), softmax_s16_params(1e-3)), [[8192] * 4])


def test_softmax_safe_depth() -> None:
    """The largest exponential is 32762: rows of ties overflow the int32 sum from depth 65549 on."""
    standard = softmax_s16_params(1e-3)
    assert int(lut_lookup(32767, standard.exp_lut)) == 32762
    assert SOFTMAX_MAX_SAFE_DEPTH == 65548
    softmax_s16(np.zeros((1, SOFTMAX_MAX_SAFE_DEPTH), np.int16), standard)
    with pytest.raises(ValueError, match="sum of exponentials"):
        softmax_s16(np.zeros((1, SOFTMAX_MAX_SAFE_DEPTH + 1), np.int16), standard)
