"""The three example models against TensorFlow Lite Micro, the bit-exact reference.

Each example is the reference int8 .tflite written by hand as a `.nn` file
(examples/<name>/). Integer outputs are compared for exact equality (zero
differing bytes), never within a tolerance: NumPy backend vs TFLM's stored
outputs, NumPy backend vs the pinned tflite-micro run now, compiled C vs
NumPy backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import nndsl
from tests.c_harness import run_in_c
from tests.conftest import DATA, EXAMPLES

EXAMPLE_NAMES = ("mlp", "hotword", "conv1d")
ACCURACY = {"mlp": 0.9711, "hotword": 0.985, "conv1d": 0.980}


@pytest.fixture(scope="module", params=EXAMPLE_NAMES)
def example(request: pytest.FixtureRequest) -> tuple[str, nndsl.Model]:
    name: str = request.param
    return name, nndsl.load(EXAMPLES / name / f"{name}.nn")


def test_numpy_backend_equals_tflm_reference_outputs(example: tuple[str, nndsl.Model]) -> None:
    name, model = example
    inputs = np.load(DATA / name / "x_test_int8.npy")
    expected = np.load(DATA / name / "tflm_out.npy")
    outputs = model.run(inputs)
    assert outputs.dtype == np.int8
    assert np.array_equal(outputs, expected), f"{np.count_nonzero(outputs != expected)} values differ"


def test_numpy_backend_equals_live_tflm_on_random_inputs(example: tuple[str, nndsl.Model]) -> None:
    """The pinned tflite-micro, run now on the reference .tflite, agrees with nndsl on unseen inputs."""
    name, model = example
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model_bytes = (DATA / name / "model_int8.tflite").read_bytes()
    interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=256 * 1024)
    rng = np.random.default_rng(7)
    shape = model.graph.input.type.shape
    inputs = np.concatenate([
        np.load(DATA / name / "x_test_int8.npy")[:20],
        rng.integers(-128, 128, size=(60, *shape), dtype=np.int8),
    ])
    reference = []
    for x in inputs:
        interpreter.set_input(x[np.newaxis], 0)
        interpreter.invoke()
        reference.append(np.array(interpreter.get_output(0)[0]))
    assert np.array_equal(model.run(inputs), np.stack(reference))


def test_compiled_c_equals_numpy_backend(example: tuple[str, nndsl.Model]) -> None:
    name, model = example
    rng = np.random.default_rng(11)
    inputs = np.concatenate([
        np.load(DATA / name / "x_test_int8.npy"),
        rng.integers(-128, 128, size=(200, *model.graph.input.type.shape), dtype=np.int8),
    ])
    assert np.array_equal(run_in_c(model, inputs), model.run(inputs))


def test_example_copies_match_test_data() -> None:
    """The examples ship the same inputs and expected outputs as the reference data."""
    for name in EXAMPLE_NAMES:
        for example_file, data_file in (("inputs.npy", "x_test_int8.npy"), ("expected.npy", "tflm_out.npy")):
            assert np.array_equal(np.load(EXAMPLES / name / example_file), np.load(DATA / name / data_file))


def test_accuracy_matches_reference(example: tuple[str, nndsl.Model]) -> None:
    name, model = example
    outputs = model.run(np.load(DATA / name / "x_test_int8.npy"))
    accuracy = float(np.mean(outputs.argmax(axis=1) == np.load(DATA / name / "y_test.npy")))
    assert accuracy == pytest.approx(ACCURACY[name], abs=1e-3)


# --------------------------------------------------------------------------
# examples/mlp_q: the same MLP in power-of-two fixed point (no TensorFlow runtime computes it)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_q() -> nndsl.Model:
    return nndsl.load(EXAMPLES / "mlp_q" / "mlp_q.nn")


def test_fixed_point_mlp_keeps_the_int8_accuracy(mlp_q: nndsl.Model) -> None:
    """q7 pixels, q4.11/q6.9 hidden layers, q7.8 logits: as accurate as the int8 model on the test digits."""
    outputs = mlp_q.run(np.load(EXAMPLES / "mlp_q" / "inputs.npy"))
    accuracy = float(np.mean(outputs.argmax(axis=1) == np.load(DATA / "mlp" / "y_test.npy")))
    assert accuracy == pytest.approx(ACCURACY["mlp"], abs=1e-3)
    assert [t.type.type_name for t in mlp_q.graph.tensors] == ["q7", "q4.11", "q6.9", "q7.8"]


def test_fixed_point_mlp_outputs_are_unchanged(mlp_q: nndsl.Model) -> None:
    """expected.npy is the NumPy backend's output when the example was made: a regression baseline, exact."""
    inputs = np.load(EXAMPLES / "mlp_q" / "inputs.npy")
    assert inputs.dtype == np.int8
    pixels = np.load(DATA / "mlp" / "x_test.npy").astype(np.float64)
    assert np.array_equal(inputs, np.clip(np.floor(pixels * 128 + 0.5), -128, 127))  # q7, half away from zero
    assert np.array_equal(mlp_q.run(inputs), np.load(EXAMPLES / "mlp_q" / "expected.npy"))


def test_fixed_point_mlp_c_equals_numpy(mlp_q: nndsl.Model) -> None:
    """Integer equality of gcc's build of the generated C and the NumPy backend, test digits and random q7 inputs."""
    rng = np.random.default_rng(5)
    inputs = np.concatenate([
        np.load(EXAMPLES / "mlp_q" / "inputs.npy"),
        rng.integers(-128, 128, size=(200, 64), dtype=np.int8),
    ])
    assert np.array_equal(run_in_c(mlp_q, inputs), mlp_q.run(inputs))
