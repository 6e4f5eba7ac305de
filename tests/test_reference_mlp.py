"""The digits MLP example against TensorFlow Lite Micro, the bit-exact reference.

Integer outputs are compared for exact equality (zero differing bytes), not
within a tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import nndsl
from tests.conftest import DATA, EXAMPLES


@pytest.fixture(scope="module")
def model() -> nndsl.Model:
    return nndsl.load(EXAMPLES / "mlp" / "mlp.nn")


def test_numpy_backend_equals_tflm_reference_outputs(model: nndsl.Model) -> None:
    inputs = np.load(DATA / "mlp" / "x_test_int8.npy")
    expected = np.load(DATA / "mlp" / "tflm_out.npy")
    outputs = model.run(inputs)
    assert outputs.dtype == np.int8
    assert np.array_equal(outputs, expected), f"{np.count_nonzero(outputs != expected)} values differ"


def test_numpy_backend_equals_live_tflm_on_random_inputs(model: nndsl.Model) -> None:
    """The pinned tflite-micro, run now on the reference .tflite, agrees with the stored outputs and nndsl."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model_bytes = (DATA / "mlp" / "model_int8.tflite").read_bytes()
    interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=64 * 1024)
    rng = np.random.default_rng(7)
    inputs = np.concatenate([
        np.load(DATA / "mlp" / "x_test_int8.npy")[:50],
        rng.integers(-128, 128, size=(300, 64), dtype=np.int8),
    ])
    reference = []
    for x in inputs:
        interpreter.set_input(x[np.newaxis], 0)
        interpreter.invoke()
        reference.append(np.array(interpreter.get_output(0)[0]))
    assert np.array_equal(model.run(inputs), np.stack(reference))


def test_example_copies_match_test_data() -> None:
    """The example ships the same inputs and expected outputs as the reference data."""
    for example_file, data_file in (("inputs.npy", "x_test_int8.npy"), ("expected.npy", "tflm_out.npy")):
        assert np.array_equal(np.load(EXAMPLES / "mlp" / example_file), np.load(DATA / "mlp" / data_file))


def test_accuracy_matches_reference(model: nndsl.Model) -> None:
    outputs = model.run(np.load(DATA / "mlp" / "x_test_int8.npy"))
    accuracy = float(np.mean(outputs.argmax(axis=1) == np.load(DATA / "mlp" / "y_test.npy")))
    assert accuracy == pytest.approx(0.9711, abs=1e-4)
