"""The NumPy backend's batch path: slices of a batch, and float matrix products of integers, change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl import ir
from nndsl.backend import backend
from tests.conftest import EXAMPLES

interpreter = backend("numpy").interpreter
EXAMPLE_MODELS = sorted(EXAMPLES.glob("*/*.nn"))


@pytest.mark.parametrize("path", EXAMPLE_MODELS, ids=lambda p: p.stem)
def test_a_batch_in_slices_equals_one_input_at_a_time(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = nndsl.load(path)
    x = np.load(path.parent / "inputs.npy")[:7]
    one_by_one = [model.trace(row) for row in x]
    monkeypatch.setattr(interpreter, "SLICE_ELEMENTS", 1)  # one row per slice
    sliced = model.trace(x)
    for name, values in sliced.items():
        np.testing.assert_array_equal(values, np.stack([t[name] for t in one_by_one]), err_msg=name)
    np.testing.assert_array_equal(model.run(x), sliced[model.graph.output.name])


def _accumulators(model: nndsl.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    seen: dict[str, np.ndarray] = {}

    def observe(op: ir.Op, acc: Any) -> None:
        seen[op.output.name] = np.asarray(acc)

    backend("numpy").run(model.graph, x, observe=observe)
    return seen


def _extreme_dense(features: int) -> tuple[nndsl.Model, np.ndarray, np.ndarray]:
    """int8 dense whose first accumulator reaches 255 * 127 * features: inputs at 127 (offset +128) times 127."""
    rng = np.random.default_rng(features)
    kernel = rng.choice(np.array([-127, 127], np.int8), size=(features, 3))
    kernel[:, 0] = 127
    net = nndsl.Network("wide")
    x = net.input("x", "i8", (features,), scale=1.0, zero_point=-128)
    net.dense(x, kernel=nndsl.Weight(kernel, scale=np.float32(2.0**-20)), type=nndsl.Type("i8", scale=1.0,
              zero_point=0), output=True)
    signs = np.where(kernel[:, 1] > 0, 127, -128).astype(np.int8)
    inputs = np.stack([np.full(features, 127, np.int8), signs, -signs - 1,
                       rng.integers(-128, 128, features, dtype=np.int8)]).astype(np.int8)
    return net.model(), inputs, kernel


@pytest.mark.parametrize(("features", "work"), [(518, np.float32), (519, np.float64)])
def test_integer_products_are_exact_on_both_sides_of_float32s_limit(features: int, work: type) -> None:
    """255 * 127 * 518 < 2**24 <= 255 * 127 * 519: float32 just below the limit, float64 above, exact both."""
    model, inputs, kernel = _extreme_dense(features)
    op = model.graph.ops[0]
    assert isinstance(op, ir.Dense) and op.requant is not None
    assert interpreter._exact_dtype(inputs, op.requant.input_offset, kernel, features) is work
    expected = (inputs.astype(np.int64) + op.requant.input_offset) @ kernel.astype(np.int64)
    np.testing.assert_array_equal(_accumulators(model, inputs)["dense_1"], expected)
    assert abs(int(expected[0, 0])) == 255 * 127 * features  # the bound itself is reached


def test_beyond_float64_the_products_stay_in_int64() -> None:
    x = np.zeros((1, 4), np.int64)
    assert interpreter._exact_dtype(x, 0, np.array([[2**31]]), 4) is np.int64
    assert interpreter._exact_dtype(np.zeros((1, 4), np.int16), 0, np.array([[2**15]]), 2**21) is np.float64


def test_an_integer_conv_in_slices_equals_the_tap_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    """im2col built a few rows at a time: the same accumulators as summing kernel taps in int64."""
    rng = np.random.default_rng(3)
    kernel = rng.integers(-127, 128, size=(3, 3, 2, 4), dtype=np.int8)
    net = nndsl.Network("c")
    x = net.input("x", "i8", (7, 6, 2), scale=0.1, zero_point=5)
    net.conv2d(x, kernel=nndsl.Weight(kernel, scale=np.full(4, 0.01)), stride=2, padding="same",
               type=nndsl.Type("i8", scale=0.5, zero_point=0), output=True)
    model = net.model()
    inputs = rng.integers(-128, 128, size=(9, 7, 6, 2), dtype=np.int8)
    monkeypatch.setattr(interpreter, "PATCH_ELEMENTS", 1)
    acc = _accumulators(model, inputs)["conv2d_1"]
    padded = np.pad(inputs.astype(np.int64) - 5, ((0, 0), (1, 1), (0, 1), (0, 0)))  # offset by -zero_point; pads are 0
    expected = sum(padded[:, ky : ky + 7 : 2, kx : kx + 6 : 2] @ kernel[ky, kx].astype(np.int64)
                   for ky in range(3) for kx in range(3))
    np.testing.assert_array_equal(acc, expected)


@pytest.mark.tensorflow
def test_the_speed_benchmark_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/numpy_speed.py on a few inputs: both sides agree and the tables are written (no timing checked)."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from benchmarks import numpy_speed

    out = tmp_path / "speed.md"
    monkeypatch.setattr("sys.argv", ["numpy_speed.py", "--inputs", "30", "--repeats", "1", "--out", str(out), "mlp"])
    numpy_speed.main()
    assert "| mlp |" in out.read_text()
    [row] = json.loads(out.with_suffix(".json").read_text())
    assert row["model"] == "mlp" and row["inputs"] == 30 and row["ratio"] > 0
