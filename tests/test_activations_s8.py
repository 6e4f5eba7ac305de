"""int8 TANH, LOGISTIC, HARD_SWISH, LEAKY_RELU: NumPy against TensorFlow Lite Micro, C against NumPy.

Every comparison is ``np.array_equal`` on the int8 outputs: zero differing
bytes, not a tolerance. Each model is ``Input((256,)) -> activation``, so one
invocation covers all 256 int8 values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.qmath.activations import (
    HardSwishS8Params,
    LeakyReluS8Params,
    LogisticS8Params,
    TanhS8Params,
    fixed_logistic,
    fixed_tanh,
    hard_swish_s8,
    hard_swish_s8_params,
    leaky_relu_s8,
    leaky_relu_s8_params,
    logistic_s8,
    logistic_s8_params,
    one_minus_x_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot_i16,
    tanh_s8,
    tanh_s8_params,
)
from tests.c_harness import build_harness, compile_c, entry_point, run_harness, runtime_unit
from tests.tflite_models import (
    convert_keras,
    model_graph,
    model_quantization,
    patch_model,
    run_tflm,
    seed_of,
    tflm_interpreter,
)

TFLM_ARENA = 64 * 1024
ALL_INT8 = np.arange(-128, 128).astype(np.int8)
WIDTH = ALL_INT8.size

Params = TanhS8Params | LogisticS8Params | HardSwishS8Params | LeakyReluS8Params


@dataclasses.dataclass(frozen=True)
class Op:
    """One activation: its TFLite builtin, the NumPy kernel and the harness's op code."""

    builtin: str
    kernel: Callable[[Any, Any], np.ndarray]
    code: int


OPS: dict[str, Op] = {
    "tanh": Op("TANH", tanh_s8, 0),
    "logistic": Op("LOGISTIC", logistic_s8, 1),
    "hard_swish": Op("HARD_SWISH", hard_swish_s8, 2),
    "leaky_relu": Op("LEAKY_RELU", leaky_relu_s8, 3),
}


def make_params(op: str, quant: tuple[float, int, float, int], alpha: float) -> Params:
    input_scale, input_zero_point, output_scale, output_zero_point = quant
    if op == "tanh":
        return tanh_s8_params(input_scale, input_zero_point, output_scale, output_zero_point)
    if op == "logistic":
        return logistic_s8_params(input_scale, input_zero_point, output_scale, output_zero_point)
    if op == "hard_swish":
        return hard_swish_s8_params(input_scale, input_zero_point, output_scale, output_zero_point)
    return leaky_relu_s8_params(input_scale, input_zero_point, output_scale, output_zero_point, alpha)


def run_kernel(op: str, x: np.ndarray, params: Params) -> np.ndarray:
    return OPS[op].kernel(x, params)


# --------------------------------------------------------------------------
# NumPy against TensorFlow Lite Micro
# --------------------------------------------------------------------------


def convert_model(tf: Any, op: str, low: float, high: float, alpha: float, seed: int) -> bytes:
    """``Input((256,)) -> op`` converted to a full-int8 TFLite model, calibrated on uniform [low, high]."""
    keras = tf.keras
    layer = {
        "tanh": lambda: keras.layers.Activation("tanh"),
        "logistic": lambda: keras.layers.Activation("sigmoid"),
        "hard_swish": lambda: keras.layers.Activation("hard_swish"),
        "leaky_relu": lambda: keras.layers.LeakyReLU(negative_slope=alpha),
    }[op]()
    inputs = keras.Input((WIDTH,))
    return convert_keras(tf, keras.Model(inputs, layer(inputs)), [(WIDTH,)], [(low, high)], seed)


def run_tflite_micro(model: bytes, batch: np.ndarray) -> np.ndarray:
    """One TFLM invocation per row of ``batch``; a row of outputs each."""
    return run_tflm(model, batch[:, None], arena_size=TFLM_ARENA).reshape(len(batch), -1).astype(np.int8)


def run_tflite(tf: Any, model: bytes, batch: np.ndarray) -> np.ndarray:
    """TensorFlow Lite's own interpreter (optimised kernels), for the printed comparison only."""
    interpreter = tf.lite.Interpreter(model_content=model)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for row in batch:
        interpreter.set_tensor(input_index, row.reshape(1, -1))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index).reshape(-1).copy())
    return np.stack(outputs).astype(np.int8)


ModelKey = tuple[str, float, float, float]


@pytest.fixture(scope="module")
def models(tflite: Any) -> Callable[[str, float, float, float], bytes]:
    """Converted models, cached for the module; each checked to hold exactly the one builtin."""
    cache: dict[ModelKey, bytes] = {}

    def get(op: str, low: float, high: float, alpha: float = 0.3) -> bytes:
        key = (op, low, high, alpha)
        if key not in cache:
            model = convert_model(tflite, op, low, high, alpha, seed=seed_of(*key))
            assert model_graph(model).names == [OPS[op].builtin]
            cache[key] = model
        return cache[key]

    return get


def input_batch(seed: int) -> np.ndarray:
    """All 256 int8 values, then random vectors."""
    rng = np.random.default_rng(seed)
    return np.concatenate([ALL_INT8[None, :], rng.integers(-128, 128, size=(8, WIDTH))]).astype(np.int8)


# (op, calibration range, alpha): input scales from ~4e-5 to ~16, zero points across int8.
RANGES = [(-4.0, 4.0), (-1.0, 1.0), (-0.3, 1.0), (-40.0, 10.0), (0.5, 9.0), (-0.01, 0.01), (-300.0, 300.0)]
TFLM_CASES = [(op, low, high, 0.3) for op in ("tanh", "logistic", "hard_swish") for low, high in RANGES]
TFLM_CASES += [("tanh", -2000.0, 2000.0, 0.3), ("logistic", -2000.0, 2000.0, 0.3)]  # radius 0
TFLM_CASES += [("hard_swish", -3.0, 0.5, 0.3), ("hard_swish", -2000.0, 2000.0, 0.3)]
TFLM_CASES += [
    ("leaky_relu", low, high, alpha)
    for (low, high), alpha in [
        ((-4.0, 4.0), 0.2),
        ((-1.0, 1.0), 0.01),
        ((-0.3, 1.0), 0.3),
        ((-40.0, 10.0), 0.1),
        ((-5.0, 5.0), 0.0),
        ((-2.0, 3.0), 1.5),
        ((-0.01, 0.01), 0.3),
        ((-2000.0, 2000.0), 0.2),
    ]
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("op", "low", "high", "alpha"), TFLM_CASES)
def test_numpy_matches_tflite_micro(
    tflite: Any, models: Callable[..., bytes], op: str, low: float, high: float, alpha: float
) -> None:
    model = models(op, low, high, alpha)
    quant = model_quantization(model)
    if op == "tanh":
        assert quant[2:] == (1.0 / 128.0, 0)
    if op == "logistic":
        assert quant[2:] == (1.0 / 256.0, -128)
    params = make_params(op, quant, alpha)
    batch = input_batch(seed=TFLM_CASES.index((op, low, high, alpha)))
    expected = run_tflite_micro(model, batch)
    got = run_kernel(op, batch, params)
    assert got.dtype == np.int8
    differing = int(np.count_nonzero(got != expected))
    first = np.flatnonzero((got != expected).reshape(-1))[:8]
    # Bit-exact: zero differing bytes.
    assert differing == 0, (
        f"{op} {quant} {params}: {differing} bytes differ; inputs {batch.reshape(-1)[first].tolist()} "
        f"tflm {expected.reshape(-1)[first].tolist()} numpy {got.reshape(-1)[first].tolist()}"
    )
    assert np.array_equal(got, expected)
    lite_differing = int(np.count_nonzero(run_tflite(tflite, model, batch) != expected))
    print(f"{op} {quant}: TF Lite interpreter differs from TFLM in {lite_differing} of {expected.size} bytes")


@pytest.mark.tensorflow
def test_tanh_and_logistic_with_input_range_radius_zero(tflite: Any, models: Callable[..., bytes]) -> None:
    """Input scales >= 8: every input saturates, the zero point itself to -128 (TFLM tests ``<= -radius`` first)."""
    for op in ("tanh", "logistic"):
        model = models(op, -2000.0, 2000.0)
        quant = model_quantization(model)
        params = make_params(op, quant, 0.0)
        assert isinstance(params, TanhS8Params | LogisticS8Params)
        assert params.input_range_radius == 0
        expected = run_tflite_micro(model, ALL_INT8[None, :])[0]
        centred = ALL_INT8.astype(np.int64) - quant[1]
        assert expected[centred == 0][0] == -128
        assert np.array_equal(expected, np.where(centred <= 0, -128, 127))
        assert np.array_equal(run_kernel(op, ALL_INT8, params), expected)


@pytest.mark.tensorflow
def test_tanh_and_logistic_ignore_the_output_scale(tflite: Any, models: Callable[..., bytes]) -> None:
    """TFLM runs TANH with any output quantisation and LOGISTIC with any output scale, writing the same integers.

    The parameter functions refuse those outputs; the integers match the fixed ones.
    """
    for op, zero_point in (("tanh", 5), ("logistic", -128)):
        model = models(op, -4.0, 4.0)
        quant = model_quantization(model)
        patched = patch_model(model, output_scale=0.05, output_zero_point=zero_point)
        assert model_quantization(patched)[2:] == (float(np.float32(0.05)), zero_point)
        with pytest.raises(ValueError, match="output"):
            make_params(op, (quant[0], quant[1], 0.05, zero_point), 0.0)
        expected = run_tflite_micro(patched, ALL_INT8[None, :])[0]
        assert np.array_equal(run_kernel(op, ALL_INT8, make_params(op, quant, 0.0)), expected)


@pytest.mark.tensorflow
def test_logistic_output_zero_point_is_checked(tflite: Any, models: Callable[..., bytes]) -> None:
    model = patch_model(models("logistic", -4.0, 4.0), output_zero_point=0)
    with pytest.raises(RuntimeError):
        tflm_interpreter(model, TFLM_ARENA)
    input_scale, input_zero_point, _, _ = model_quantization(model)
    with pytest.raises(ValueError, match="zero point -128"):
        logistic_s8_params(input_scale, input_zero_point, 1.0 / 256.0, 0)


@pytest.mark.tensorflow
@pytest.mark.parametrize("input_scale", [4e-9, 2.0**-27, 1e-6, 0.7, 7.99, 8.0, 2.0**20])
def test_tanh_and_logistic_at_extreme_input_scales(
    tflite: Any, models: Callable[..., bytes], input_scale: float
) -> None:
    """Left shifts from 0 to 47 (radius 15 * 2**27 down to 0), patched into the model."""
    for op in ("tanh", "logistic"):
        model = patch_model(models(op, -4.0, 4.0), input_scale=input_scale)
        quant = model_quantization(model)
        params = make_params(op, quant, 0.0)
        batch = input_batch(seed=3)
        assert np.array_equal(run_kernel(op, batch, params), run_tflite_micro(model, batch)), (op, params)


def hard_swish_output_scale(input_scale: float, multiplier: float) -> float:
    """An output scale whose float32 ``(input_scale / 128) / output_scale`` is near ``multiplier``."""
    return float(np.float32(np.float32(input_scale) / np.float32(128.0)) / np.float32(multiplier))


@pytest.mark.tensorflow
@pytest.mark.parametrize("multiplier", [0.999, 0.5, 2.0**-14, 2.0**-15 * 0.75, 2.0**-16, 3e-6, 2.0**-30, 2.0**-33])
def test_hard_swish_output_multipliers(tflite: Any, models: Callable[..., bytes], multiplier: float) -> None:
    """Output exponents 0 to -31 and flushed multipliers, patched in; from -16 on the int16 mask is -1."""
    model = models("hard_swish", -4.0, 4.0)
    input_scale, _, _, _ = model_quantization(model)
    patched = patch_model(model, output_scale=hard_swish_output_scale(input_scale, multiplier))
    quant = model_quantization(patched)
    params = make_params("hard_swish", quant, 0.0)
    batch = input_batch(seed=4)
    expected = run_tflite_micro(patched, batch)
    assert np.array_equal(run_kernel("hard_swish", batch, params), expected), params


@pytest.mark.tensorflow
@pytest.mark.parametrize("input_scale", [1e-7, 0.001, 50.0, 2.0**15])
def test_hard_swish_reluish_exponents(tflite: Any, models: Callable[..., bytes], input_scale: float) -> None:
    """Reluish exponents from -16 to 22 (input scale patched, output scale kept valid)."""
    model = models("hard_swish", -4.0, 4.0)
    patched = patch_model(model, input_scale=input_scale, output_scale=hard_swish_output_scale(input_scale, 0.3))
    quant = model_quantization(patched)
    params = make_params("hard_swish", quant, 0.0)
    batch = input_batch(seed=5)
    assert np.array_equal(run_kernel("hard_swish", batch, params), run_tflite_micro(patched, batch)), params


@pytest.mark.tensorflow
@pytest.mark.parametrize("multiplier", [1.0, 1.5, 1000.0])
def test_hard_swish_output_exponent_above_zero_fails(
    tflite: Any, models: Callable[..., bytes], multiplier: float
) -> None:
    """``input_scale / 128 >= output_scale`` (after rounding): TFLM's HardSwishPrepare fails, and so do the params."""
    model = models("hard_swish", -4.0, 4.0)
    input_scale, _, _, _ = model_quantization(model)
    patched = patch_model(model, output_scale=hard_swish_output_scale(input_scale, multiplier))
    with pytest.raises(RuntimeError):
        tflm_interpreter(patched, TFLM_ARENA)
    with pytest.raises(ValueError, match="HardSwishPrepare"):
        make_params("hard_swish", model_quantization(patched), 0.0)


@pytest.mark.tensorflow
@pytest.mark.parametrize("alpha", [-0.5, -3.0, 0.0, 2.0**-40, 3.0, 100.0])
def test_leaky_relu_patched_alpha(tflite: Any, models: Callable[..., bytes], alpha: float) -> None:
    """Alphas Keras refuses (negative) or rarely makes, patched into the LEAKY_RELU options."""
    model = patch_model(models("leaky_relu", -4.0, 4.0, 0.2), alpha=alpha)
    quant = model_quantization(model)
    params = make_params("leaky_relu", quant, alpha)
    batch = input_batch(seed=6)
    assert np.array_equal(run_kernel("leaky_relu", batch, params), run_tflite_micro(model, batch)), params


# --------------------------------------------------------------------------
# C against NumPy
# --------------------------------------------------------------------------

RUN_CASES = r"""
/* Per case: op, p[6] (int32) -> the op on all 256 int8 values, 256 bytes. */
static int run_cases(FILE *fin, FILE *fout, int32_t cases)
{
    int8_t in[256];
    int8_t out[256];
    int32_t k;
    int32_t j;
    for (j = 0; j < 256; ++j) {
        in[j] = (int8_t)(j - 128);
    }
    for (k = 0; k < cases; ++k) {
        int32_t op;
        int32_t p[6];
        if (!read_i32(fin, &op)) {
            return 4;
        }
        for (j = 0; j < 6; ++j) {
            if (!read_i32(fin, &p[j])) {
                return 4;
            }
        }
        memset(out, 0x55, sizeof out);
        switch (op) {
        case 0:
            nn_tanh_s8(in, out, 256, p[0], p[1], p[2], p[3]);
            break;
        case 1:
            nn_logistic_s8(in, out, 256, p[0], p[1], p[2], p[3]);
            break;
        case 2:
            nn_hard_swish_s8(in, out, 256, p[0], p[1], p[2], p[3], p[4], p[5]);
            break;
        case 3:
            nn_leaky_relu_s8(in, out, 256, p[0], p[1], p[2], p[3], p[4], p[5]);
            break;
        default:
            return 5;
        }
        if (fwrite(out, 1, sizeof out, fout) != sizeof out) {
            return 6;
        }
    }
    return 0;
}
"""

ALL_MACROS = ["NN_USE_TANH_S8", "NN_USE_LOGISTIC_S8", "NN_USE_HARD_SWISH_S8", "NN_USE_LEAKY_RELU_S8"]
# The runtime files of the four kernels, in the order the backend pastes them.
RUNTIME = ["requant.c", "fixedpoint.c", "activations.c"]


@pytest.fixture(scope="module")
def c_harness(compiler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four C kernels, compiled once with sanitisers into a file-to-file harness."""
    build = tmp_path_factory.mktemp("activations_c")
    return build_harness(build, RUNTIME, RUN_CASES, macros=ALL_MACROS, compiler=compiler)


def run_c(binary: Path, cases: list[tuple[str, Params]], work: Path) -> np.ndarray:
    rows = []
    for op, params in cases:
        fields = list(dataclasses.astuple(params))
        rows.append([OPS[op].code, *fields, *[0] * (6 - len(fields))])
    data = np.concatenate([[len(cases)], np.array(rows, dtype=np.int64).reshape(-1)])
    assert data.min() >= -(2**31) and data.max() < 2**31
    out = run_harness(binary, data.astype("<i4").tobytes(), work)
    return np.frombuffer(out, dtype=np.int8).reshape(len(cases), WIDTH)


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.float32(math.exp(rng.uniform(math.log(low), math.log(high)))))


def random_parameter_sets(rng: np.random.Generator) -> list[tuple[str, Params]]:
    """Parameters from the ``*_params`` functions at random scales, and raw fields covering every branch."""
    cases: list[tuple[str, Params]] = []

    def zero_point() -> int:
        return int(rng.integers(-128, 128))

    for _ in range(250):
        scale = log_uniform(rng, 2.0**-28, 2.0**34)
        cases.append(("tanh", tanh_s8_params(scale, zero_point(), 1.0 / 128.0, 0)))
        scale = log_uniform(rng, 2.0**-28, 2.0**34)
        cases.append(("logistic", logistic_s8_params(scale, zero_point(), 1.0 / 256.0, -128)))
    for _ in range(400):
        scale = log_uniform(rng, 1e-8, 1e6)
        with_output = scale * log_uniform(rng, 2.0**-8, 2.0**34)
        with contextlib.suppress(ValueError):  # outside what TFLM prepares
            cases.append(("hard_swish", hard_swish_s8_params(scale, zero_point(), with_output, zero_point())))
        alpha = float(rng.choice([0.0, 0.01, 0.1, 0.3, -0.5, 2.0, rng.uniform(-10, 10)]))
        output_scale = scale * log_uniform(rng, 2.0**-31, 2.0**25)
        with contextlib.suppress(ValueError):  # shifts above 30
            cases.append(("leaky_relu", leaky_relu_s8_params(scale, zero_point(), output_scale, zero_point(), alpha)))
    # Raw fields, as TFLM's Prepare could produce them.
    for _ in range(150):
        left_shift = int(rng.integers(0, 63))
        multiplier = int(rng.integers(2**30, 2**31))
        radius = (15 << 27) >> left_shift
        cases.append(("tanh", TanhS8Params(zero_point(), radius, multiplier, left_shift)))
        cases.append(("logistic", LogisticS8Params(zero_point(), radius, multiplier, left_shift)))
        cases.append(
            (
                "hard_swish",
                HardSwishS8Params(
                    zero_point(),
                    zero_point(),
                    int(rng.integers(0, 2**15)),
                    int(rng.integers(-31, 32)),
                    int(rng.integers(0, 2**15)),
                    int(rng.integers(-31, 1)),
                ),
            )
        )
        cases.append(
            (
                "leaky_relu",
                LeakyReluS8Params(
                    zero_point(),
                    zero_point(),
                    int(rng.integers(-(2**31), 2**31)),
                    int(rng.integers(-31, 31)),
                    int(rng.integers(-(2**31), 2**31)),
                    int(rng.integers(-31, 31)),
                ),
            )
        )
    # Extremes: multipliers at the ends of their ranges.
    for zp in (-128, 0, 127):
        cases.append(("hard_swish", HardSwishS8Params(zp, -zp - 1, 32767, 31, 32767, 0)))
        cases.append(("hard_swish", HardSwishS8Params(zp, zp, 0, -31, 32767, -31)))
        cases.append(("leaky_relu", LeakyReluS8Params(zp, -zp - 1, 2**31 - 1, 30, -(2**31), 30)))
        cases.append(("leaky_relu", LeakyReluS8Params(zp, zp, -(2**31), -31, 2**31 - 1, 0)))
    return cases


def test_c_matches_numpy(c_harness: Path, tmp_path: Path) -> None:
    cases = random_parameter_sets(np.random.default_rng(20240612))
    per_op = {op: sum(1 for o, _ in cases if o == op) for op in OPS}
    assert min(per_op.values()) >= 300, per_op
    assert len({p for _, p in cases}) > 1500
    got = run_c(c_harness, cases, tmp_path)
    expected = np.stack([run_kernel(op, ALL_INT8, params) for op, params in cases])
    differing = np.flatnonzero((got != expected).any(axis=1))
    # Bit-exact: zero differing bytes.
    assert differing.size == 0, f"{differing.size} cases differ, first {cases[differing[0]]}"
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("macros", [[m] for m in ALL_MACROS] + [[]])
def test_c_each_kernel_alone_compiles_without_warnings(compiler: str, tmp_path: Path, macros: list[str]) -> None:
    """With only its own macro (or none) defined, no static function is left unused."""
    calls = {
        "NN_USE_TANH_S8": "nn_tanh_s8(in, out, size, 0, 1, 1 << 30, 0);",
        "NN_USE_LOGISTIC_S8": "nn_logistic_s8(in, out, size, 0, 1, 1 << 30, 0);",
        "NN_USE_HARD_SWISH_S8": "nn_hard_swish_s8(in, out, size, 0, 0, 1, 0, 1, 0);",
        "NN_USE_LEAKY_RELU_S8": "nn_leaky_relu_s8(in, out, size, 0, 0, 1, 0, 1, 0);",
    }
    # requant.c's own functions are kept used here, as the generated code uses them.
    user = entry_point(
        "const int8_t *in, int8_t *out, int32_t size",
        "out[0] = (int8_t)nn_mbqm(in[0], 1 << 30, 0);",
        *(calls[m] for m in macros),
        "(void)size;",
    )
    proc = compile_c(runtime_unit(*RUNTIME, user, macros=macros), tmp_path / "unit.o",
                     compiler=compiler)
    assert proc.returncode == 0, proc.stderr


def test_c_shares_a_unit_with_softmax(compiler: str, tmp_path: Path) -> None:
    """requant.c, fixedpoint.c, softmax.c and activations.c (all kernels) in one unit: no clashing names."""
    user = entry_point(
        "const int8_t *in, int8_t *out, const int32_t *exp_table",
        "nn_softmax_s8(in, out, 1, 4, 1 << 30, 20, -100);",
        "nn_softmax_table_s8(in, out, 1, 4, -100, exp_table);",
        "nn_tanh_s8(in, out, 4, 0, 1, 1 << 30, 0);",
        "nn_logistic_s8(in, out, 4, 0, 1, 1 << 30, 0);",
        "nn_hard_swish_s8(in, out, 4, 0, 0, 1, 0, 1, 0);",
        "nn_leaky_relu_s8(in, out, 4, 0, 0, 1, 0, 1, 0);",
    )
    unit = runtime_unit("requant.c", "fixedpoint.c", "softmax.c", "activations.c", user,
                        macros=[*ALL_MACROS, "NN_USE_SOFTMAX_S8", "NN_USE_SOFTMAX_TABLE_S8"])
    proc = compile_c(unit, tmp_path / "unit.o", compiler=compiler)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# Parameters by hand, and the kernels against floating point
# --------------------------------------------------------------------------


def test_params_by_hand() -> None:
    # 2**-4 * 2**27 = 0.5 * 2**24: multiplier 2**30, shift 24, radius 15 * 2**27 / 2**24 = 120.
    assert tanh_s8_params(1 / 16, 3, 1 / 128, 0) == TanhS8Params(3, 120, 2**30, 24)
    assert logistic_s8_params(1 / 16, -7, 1 / 256, -128) == LogisticS8Params(-7, 120, 2**30, 24)
    # Scale 8: shift 31, radius 15/16 -> 0. Below 2**-28 the shift would be negative.
    assert tanh_s8_params(8.0, 0, 1 / 128, 0).input_range_radius == 0
    with pytest.raises(ValueError, match="left_shift"):
        tanh_s8_params(2.0**-29, 0, 1 / 128, 0)
    with pytest.raises(ValueError, match="output"):
        tanh_s8_params(0.1, 0, 1 / 256, 0)
    with pytest.raises(ValueError, match="output"):
        logistic_s8_params(0.1, 0, 1 / 256, 0)
    # Hard swish, input 1/16, output 1/64: hires 2**-11; output multiplier 2**-5 = 0.5 * 2**-4 -> Q15 16384, -4;
    # reluish 2**-11 / (3 * 2**-15) = 16/3 = 0.6667 * 2**3 -> round(2/3 * 2**31) = 1431655765 -> Q15 21845, 3.
    assert hard_swish_s8_params(1 / 16, 1, 1 / 64, -2) == HardSwishS8Params(1, -2, 21845, 3, 16384, -4)
    # Leaky relu, 0.5 / 0.25 = 2 = 0.5 * 2**2; 0.5 * 0.25 / 0.25 = 0.5 * 2**0.
    assert leaky_relu_s8_params(0.5, 0, 0.25, 1, 0.25) == LeakyReluS8Params(0, 1, 2**30, 2, 2**30, 0)
    # Negative alpha: a negative multiplier, as TFLM's QuantizeMultiplier gives.
    assert leaky_relu_s8_params(0.5, 0, 0.25, 1, -0.25).output_multiplier_alpha == -(2**30)


def test_rounding_divide_by_pot_i16_narrowed_mask() -> None:
    x = np.array([-32768, -3, -1, 0, 1, 3, 32767])
    # Exponent 15: an ordinary rounding shift.
    assert rounding_divide_by_pot_i16(x, 15).tolist() == [-1, 0, 0, 0, 0, 0, 1]
    # From 16 on the int16 mask is all ones: non-negative -> 1, negative -> -1.
    for exponent in (16, 20, 31):
        assert rounding_divide_by_pot_i16(x, exponent).tolist() == [-1, -1, -1, 1, 1, 1, 1]


def test_fixed_point_functions_approximate_floats() -> None:
    rng = np.random.default_rng(7)
    # exp_on_negative_values' Taylor expansion dominates: ~1.3e-7 near tanh(1/8), logistic(1/4).
    q4 = np.concatenate([np.arange(-3000, 3000), rng.integers(-(2**31), 2**31, 20000)])
    assert np.max(np.abs(fixed_tanh(q4, 4) / 2.0**31 - np.tanh(q4 / 2.0**27))) < 3e-7
    assert np.max(np.abs(fixed_logistic(q4, 4) / 2.0**31 - 1 / (1 + np.exp(-q4 / 2.0**27)))) < 3e-7
    a = rng.integers(0, 2**31, 20000)
    approx = one_minus_x_over_one_plus_x_for_x_in_0_1(a) / 2.0**31
    assert np.max(np.abs(approx - (1 - a / 2.0**31) / (1 + a / 2.0**31))) < 1e-8


@pytest.mark.parametrize("input_scale", [0.002, 0.03125, 0.1, 0.7])
def test_kernels_approximate_floats(input_scale: float) -> None:
    """Within one output step of the rounded real activation (two for hard swish's int16 path)."""
    zp = 5
    real = (ALL_INT8.astype(np.float64) - zp) * float(np.float32(input_scale))
    got = tanh_s8(ALL_INT8, tanh_s8_params(input_scale, zp, 1 / 128, 0)).astype(int)
    assert np.max(np.abs(got - np.clip(np.round(np.tanh(real) * 128), -128, 127))) <= 1
    got = logistic_s8(ALL_INT8, logistic_s8_params(input_scale, zp, 1 / 256, -128)).astype(int)
    assert np.max(np.abs(got - np.clip(np.round(256 / (1 + np.exp(-real))) - 128, -128, 127))) <= 1
    hs_real = real * np.clip(real + 3, 0, 6) / 6
    out_scale = float(max(hs_real.max() - hs_real.min(), 1e-3) / 255)
    out_zp = int(np.clip(round(-128 - hs_real.min() / out_scale), -128, 127))
    got = hard_swish_s8(ALL_INT8, hard_swish_s8_params(input_scale, zp, out_scale, out_zp)).astype(int)
    assert np.max(np.abs(got - np.clip(np.round(hs_real / out_scale) + out_zp, -128, 127))) <= 2
    lr_real = np.where(real >= 0, real, 0.1 * real)
    got = leaky_relu_s8(ALL_INT8, leaky_relu_s8_params(input_scale, zp, input_scale, -3, 0.1)).astype(int)
    assert np.max(np.abs(got - np.clip(np.round(lr_real / input_scale) - 3, -128, 127))) <= 1
