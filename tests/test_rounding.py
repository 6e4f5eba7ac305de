"""The ``rounding`` target field: TensorFlow Lite's single-rounding scheme.

``rounding = double`` (the default) is TensorFlow Lite Micro's default
arithmetic and is covered by every other suite; ``rounding = single`` is the
scheme of TFLite's ``TFLITE_SINGLE_ROUNDING`` builds (and CMSIS-NN). Here:
the single-rounding multiply against a plain-int transcription of TFLite's
formula, C == NumPy bit for bit under single rounding (example models and
the random int8 networks of ``test_c_backend`` and ``test_c_ops``, one of them
under the sanitizers), that the switch changes results, and the field's errors.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.qmath.requant import (
    INT32_MAX,
    Rounding,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single,
    quantize_multiplier,
)
from nndsl.qmath.softmax import preprocess_softmax_scaling
from tests.c_harness import build_program, find_compiler, run_program
from tests.conftest import EXAMPLES
from tests.test_c_backend import assert_exact, random_inputs, random_int8_network
from tests.test_c_ops import random_conv_network

TARGET_BLOCK = "target efm32 {\n    rounding = single\n}"
EXAMPLE_NAMES = ("mlp", "conv1d", "hotword")
INT8_SEEDS = range(8)
CONV_SEEDS = range(6)
INPUTS = 400


# --------------------------------------------------------------------------
# .nn texts under single rounding
# --------------------------------------------------------------------------


def with_single_rounding(text: str) -> str:
    """``text`` with ``rounding = single``: added to its target block, or a target block after ``network``."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("target ") and "{" in line:
            return "\n".join([*lines[: i + 1], "    rounding = single", *lines[i + 1:]])
    for i, line in enumerate(lines):
        if line.startswith("network "):
            return "\n".join([*lines[: i + 1], TARGET_BLOCK, *lines[i + 1:]])
    raise AssertionError("no network line")


def example_single(name: str, directory: Path) -> nndsl.Model:
    """The example model ``name`` with ``rounding = single``, written next to a copy of its weights."""
    directory.mkdir(parents=True, exist_ok=True)
    source = EXAMPLES / name
    for weights in source.glob("*.npz"):
        shutil.copy(weights, directory / weights.name)
    path = directory / f"{name}.nn"
    path.write_text(with_single_rounding((source / f"{name}.nn").read_text(encoding="utf-8")), encoding="utf-8")
    return nndsl.load(path)


def example_inputs(name: str) -> np.ndarray:
    return np.load(EXAMPLES / name / "inputs.npy")


def _needs_compiler() -> None:
    if find_compiler() is None:
        pytest.skip("gcc not found")


# --------------------------------------------------------------------------
# (a) the single-rounding multiply is TFLite's formula
# --------------------------------------------------------------------------


def tflite_single_rounding_mbqm(x: int, multiplier: int, shift: int) -> int:
    """TFLite's ``MultiplyByQuantizedMultiplier`` under ``TFLITE_SINGLE_ROUNDING``, in Python ints."""
    total_shift = 31 - shift
    rounding = 1 << (total_shift - 1)
    result = (x * multiplier + rounding) >> total_shift
    assert -(2**31) <= result <= 2**31 - 1
    return result


@st.composite
def _mbqm_cases(draw: st.DrawFn) -> tuple[int, int, int]:
    shift = draw(st.integers(-31, 30))
    multiplier = draw(st.integers(1 << 30, INT32_MAX))
    # |x * multiplier| < 2**(62 - total_shift) keeps the result inside int32, as TFLite requires.
    bound = min(2**31 - 1, (2**(31 - shift) * (2**31 - 1)) // multiplier // 2)
    x = draw(st.integers(-bound, bound))
    return x, multiplier, shift


@settings(max_examples=2000, deadline=None)
@given(_mbqm_cases())
def test_single_rounding_mbqm_is_tflite_formula(case: tuple[int, int, int]) -> None:
    x, multiplier, shift = case
    expected = tflite_single_rounding_mbqm(x, multiplier, shift)
    assert int(multiply_by_quantized_multiplier_single(x, multiplier, shift)) == expected
    assert int(multiply_by_quantized_multiplier(x, multiplier, shift, Rounding.SINGLE)) == expected


def test_single_rounding_mbqm_vectorised() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**20), 2**20, size=5000)
    multipliers = rng.integers(1 << 30, INT32_MAX, size=5000, endpoint=True)
    shifts = rng.integers(-31, 11, size=5000)
    got = multiply_by_quantized_multiplier(x, multipliers, shifts, Rounding.SINGLE)
    cases = zip(x, multipliers, shifts, strict=True)
    expected = [tflite_single_rounding_mbqm(int(a), int(m), int(s)) for a, m, s in cases]
    assert got.tolist() == expected


def test_quantize_multiplier_single_rounding_clamp() -> None:
    # Shifts above 30 saturate under single rounding; everything else is the double-rounding split.
    assert quantize_multiplier(2.0**31, Rounding.SINGLE) == (INT32_MAX, 30)
    assert quantize_multiplier(2.0**31, Rounding.DOUBLE) == (1 << 30, 32)
    for real in (1e-12, 3e-5, 0.37, 1.0, 5.5, 2.0**29):
        assert quantize_multiplier(real, Rounding.SINGLE) == quantize_multiplier(real, Rounding.DOUBLE)


def test_softmax_scaling_cap_under_single_rounding() -> None:
    # beta * scale * 2**26 of 2**30 and more: capped at 2**30 - 1 under single rounding, 2**31 - 1 otherwise.
    single = preprocess_softmax_scaling(1.0, 64.0, 5, Rounding.SINGLE)
    double = preprocess_softmax_scaling(1.0, 64.0, 5, Rounding.DOUBLE)
    assert single[1] == 30 and double[1] == 31
    assert math.isclose(single[0] * 2.0 ** (single[1] - 31), 2**30 - 1, rel_tol=1e-9)


# --------------------------------------------------------------------------
# (d) the two schemes differ
# --------------------------------------------------------------------------


def test_single_and_double_mbqm_differ() -> None:
    # -2 * 0.5 / 2 = -0.5: double rounding's final shift takes halves away from zero, single rounding up.
    assert int(multiply_by_quantized_multiplier(-2, 1 << 30, -1, Rounding.DOUBLE)) == -1
    assert int(multiply_by_quantized_multiplier(-2, 1 << 30, -1, Rounding.SINGLE)) == 0
    rng = np.random.default_rng(3)
    x = rng.integers(-(2**24), 2**24, size=20000)
    m = rng.integers(1 << 30, INT32_MAX, size=20000, endpoint=True)
    s = rng.integers(-20, 0, size=20000)
    single = multiply_by_quantized_multiplier(x, m, s, Rounding.SINGLE)
    double = multiply_by_quantized_multiplier(x, m, s, Rounding.DOUBLE)
    assert np.any(single != double)
    assert np.max(np.abs(single - double)) <= 1


def test_single_rounding_changes_model_outputs(tmp_path: Path) -> None:
    """Some example or random int8 network gives different outputs under the two schemes."""
    differing = 0
    for name in EXAMPLE_NAMES:
        double = nndsl.load(EXAMPLES / name / f"{name}.nn")
        single = example_single(name, tmp_path / name)
        assert single.graph.rounding is Rounding.SINGLE and double.graph.rounding is Rounding.DOUBLE
        inputs = example_inputs(name)
        differing += int(np.sum(np.any((single.run(inputs) != double.run(inputs)).reshape(len(inputs), -1), axis=1)))
    for seed in INT8_SEEDS:
        network = random_int8_network(seed)
        double = network.write(tmp_path / f"d{seed}")
        single = replace(network, text=with_single_rounding(network.text)).write(tmp_path / f"s{seed}")
        inputs = random_inputs(double, INPUTS, seed)
        differing += int(np.sum(np.any((single.run(inputs) != double.run(inputs)).reshape(len(inputs), -1), axis=1)))
    assert differing > 0


# --------------------------------------------------------------------------
# (c) C == NumPy under single rounding
# --------------------------------------------------------------------------


def test_c_text_defines_single_rounding_only_when_asked(tmp_path: Path) -> None:
    double = nndsl.load(EXAMPLES / "mlp" / "mlp.nn")
    single = example_single("mlp", tmp_path)
    assert "NN_SINGLE_ROUNDING" not in double.c_sources()[0]
    assert "#define NN_SINGLE_ROUNDING" in single.c_sources()[0]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_single_rounding_c_equals_numpy(name: str, tmp_path: Path) -> None:
    _needs_compiler()
    model = example_single(name, tmp_path / "src")
    inputs = example_inputs(name)
    got = run_program(build_program(model, tmp_path / "build"), inputs)
    assert_exact(got, model.run(inputs), f"{name} (rounding = single)")


@pytest.mark.parametrize("seed", INT8_SEEDS)
def test_random_int8_network_single_rounding_c_equals_numpy(seed: int, tmp_path: Path) -> None:
    _needs_compiler()
    network = random_int8_network(seed)
    network = replace(network, text=with_single_rounding(network.text))
    model = network.write(tmp_path / "src")
    inputs = random_inputs(model, INPUTS, seed)
    got = run_program(build_program(model, tmp_path / "build"), inputs)
    assert_exact(got, model.run(inputs), network.text)


@pytest.mark.parametrize("seed", CONV_SEEDS)
def test_random_conv_network_single_rounding_c_equals_numpy(seed: int, tmp_path: Path) -> None:
    _needs_compiler()
    network = random_conv_network("i8", seed)
    network = replace(network, text=with_single_rounding(network.text))
    model = network.write(tmp_path / "src")
    inputs = random_inputs(model, INPUTS, seed)
    got = run_program(build_program(model, tmp_path / "build"), inputs)
    assert_exact(got, model.run(inputs), network.text)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_single_rounding_sanitizers_clean(kind: str, tmp_path: Path) -> None:
    _needs_compiler()
    if kind == "mlp":
        model = example_single("mlp", tmp_path / "src")
    else:
        network = random_conv_network("i8", 1)
        model = replace(network, text=with_single_rounding(network.text)).write(tmp_path / "src")
    inputs = random_inputs(model, INPUTS, 11)
    program = build_program(model, tmp_path / "asan", sanitize=True)
    for caller_arena in (False, True):
        got = run_program(program, inputs, caller_arena=caller_arena)
        assert_exact(got, model.run(inputs), f"{kind} (rounding = single, sanitized)")


# --------------------------------------------------------------------------
# (e) errors
# --------------------------------------------------------------------------


def test_unknown_rounding_is_located_error() -> None:
    text = "network t\ntarget efm32 {\n    rounding = triple\n}\ninput x : i8[4] @ scale(0.1) zero(0)\n" \
           "y = relu(x)\noutput y\n"
    with pytest.raises(nndsl.NNError) as error:
        nndsl.loads(text)
    [diagnostic] = error.value.diagnostics
    assert "'rounding' is one of double, single, not 'triple'" in diagnostic.message
    assert diagnostic.loc is not None and diagnostic.loc.line == 3


def test_double_rounding_is_the_default_and_can_be_written() -> None:
    base = "network t\n{target}input x : i8[4] @ scale(0.1) zero(0)\ny = relu(x)\noutput y\n"
    default = nndsl.loads(base.format(target=""))
    written = nndsl.loads(base.format(target="target efm32 {\n    rounding = double\n}\n"))
    assert default.graph.rounding is Rounding.DOUBLE and written.graph.rounding is Rounding.DOUBLE
    assert "NN_SINGLE_ROUNDING" not in written.c_sources()[0]


def test_single_rounding_refused_for_int16_networks() -> None:
    text = "network t\ntarget efm32 {\n    rounding = single\n}\ninput x : i16[4] @ scale(0.01) zero(0)\n" \
           "y = relu(x) : i16 @ scale(0.02) zero(0)\noutput y\n"
    with pytest.raises(nndsl.NNError) as error:
        nndsl.loads(text)
    messages = [d.message for d in error.value.diagnostics]
    assert any("'rounding = single' is not supported for i16" in m for m in messages), messages
    assert all(d.loc is not None for d in error.value.diagnostics)
