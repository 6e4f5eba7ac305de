"""add, sub, mul, maximum, minimum and squared_difference with constants and broadcasting, against TFLM.

Each case is a tiny Keras model whose converted flatbuffer holds the op under
test (asserted) with a constant or a broadcast operand, or two computed
operands of one shape; the model is converted to int8, 16x8 and float by
TensorFlow Lite's converter and imported by nndsl's TensorFlow Lite importer:

- int8 and 16x8: NumPy backend == TensorFlow Lite Micro (reference kernels),
  zero differing values, and C == NumPy;
- float: NumPy within 1e-5 of each row's largest value of Keras, C == NumPy.

The default run takes :data:`QUICK`; the larger grid is marked ``slow``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.importers.tf import tensorflow
from nndsl.importers.tflite import import_tflite
from tests.c_harness import run_in_c
from tests.test_ops_vs_tflm import assert_close, assert_exact, random_weights
from tests.tflite_models import model_graph, run_tflm_each

pytestmark = pytest.mark.tensorflow

CALIBRATION_INPUTS = 50
INPUTS = 60

# (keras, layers, input) -> output
Builder = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class Case:
    """A model whose flatbuffer holds ``op`` (a TFLite op code); ``int16``: the 16x8 converter takes it too."""

    name: str
    op: str
    shape: tuple[int, ...]
    build: Builder = field(compare=False)
    int16: bool = True

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())


def _constant(shape: tuple[int, ...], seed: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def _conv(layers: Any, x: Any, filters: int, name: str | None = None, activation: str | None = None) -> Any:
    rank = len(x.shape) - 2
    return (layers.Conv1D if rank == 1 else layers.Conv2D)(filters, 1, name=name, activation=activation)(x)


def tf_function(op: str) -> Callable[[Any, Any], Any]:
    """The TensorFlow function the converter turns into the TFLite op ``op``."""
    tf = tensorflow()
    return {"ADD": tf.add, "SUB": tf.subtract, "MUL": tf.multiply, "MAXIMUM": tf.maximum, "MINIMUM": tf.minimum,
            "SQUARED_DIFFERENCE": tf.math.squared_difference}[op]  # type: ignore[no-any-return]


def const_case(op: str, shape: tuple[int, ...], constant: tuple[int, ...], *, first: bool = False,
               int16: bool = True) -> Case:
    """``conv(x) OP c`` (or ``c OP conv(x)``) with a random constant ``c`` of shape ``constant``."""
    name = f"{op.lower()}-const{'x'.join(map(str, constant)) or 'scalar'}{'-first' if first else ''}-in" + \
        "x".join(map(str, shape))
    values = _constant(constant, zlib.crc32(name.encode()), 0.2 if op == "MUL" else -1.0, 1.5)

    def build(keras: Any, layers: Any, x: Any) -> Any:
        # A ReLU between keeps the converter from folding the constant into the layer's weights.
        y = _conv(layers, x, shape[-1], activation="relu") if len(shape) > 1 else layers.Dense(
            shape[0], activation="relu")(x)
        c = tensorflow().constant(values)
        function = tf_function(op)
        return layers.Lambda(lambda t: function(c, t) if first else function(t, c))(y)

    return Case(name, op, shape, build, int16)


def two_case(op: str, shape: tuple[int, ...], other: tuple[int, ...] | None = None) -> Case:
    """``conv_a(x) OP conv_b(x)``; with ``other`` the second is reduced to that (broadcast) shape by a mean."""
    label = f"{op.lower()}-two-in{'x'.join(map(str, shape))}" + (f"-by{'x'.join(map(str, other))}" if other else "")

    def build(keras: Any, layers: Any, x: Any) -> Any:
        a, b = _conv(layers, x, shape[-1], "small"), _conv(layers, x, shape[-1], "big")
        if other is not None:  # squeeze-and-excite's shape: [H, W, C] with [1, 1, C]
            b = layers.Lambda(lambda t: keras.ops.mean(t, axis=tuple(range(1, len(shape))), keepdims=True))(b)
        function = tf_function(op)
        return layers.Lambda(lambda ts: function(ts[0], ts[1]))([a, b])

    return Case(label, op, shape, build)


def keras_case(name: str, op: str, shape: tuple[int, ...], build: Callable[[Any, Any], Any],
               int16: bool = True) -> Case:
    return Case(name, op, shape, lambda keras, layers, x: build(layers, x), int16)


OPS = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE")


@pytest.fixture(scope="module")
def tf() -> Any:
    """TensorFlow (and tflite-micro), imported only for these tests."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    return tensorflow()

QUICK: list[Case] = [
    # The cases: a one-filter Conv1D's bias arrives as ADD(constant [1, 1, 1]).
    keras_case("conv1d-one-filter-bias", "ADD", (9, 2), lambda layers, x: layers.Conv1D(1, 3, padding="same")(x)),
    keras_case("rescaling", "MUL", (6,), lambda layers, x: layers.Rescaling(1 / 127.5, offset=-1.0)(
        layers.Dense(3, activation="relu")(x))),
    keras_case("subtract-layer", "SUB", (5, 3), lambda layers, x: layers.Subtract()(
        [_conv(layers, x, 3, "small"), _conv(layers, x, 3, "big")])),
    keras_case("multiply-layer", "MUL", (4, 3, 2), lambda layers, x: layers.Multiply()(
        [_conv(layers, x, 2, "small"), _conv(layers, x, 2, "big")])),
    const_case("SUB", (4, 3, 5), (5,)),
    const_case("MUL", (7, 3), (7, 1)),
    const_case("MAXIMUM", (6,), ()),
    const_case("MINIMUM", (3, 4, 2), (4, 1)),
    const_case("SQUARED_DIFFERENCE", (5, 2), (2,)),
    const_case("SUB", (6,), (6,), first=True),
    two_case("MUL", (3, 4, 5), (1, 1, 5)),
    two_case("SQUARED_DIFFERENCE", (7, 2)),
    two_case("MAXIMUM", (5, 3)),
]

FULL: list[Case] = [
    *(const_case(op, (4, 3, 5), (5,)) for op in OPS),
    *(const_case(op, (7, 3), (7, 1)) for op in OPS),
    *(const_case(op, (6,), ()) for op in OPS),
    *(const_case(op, (2, 3, 2), (3, 2), first=True) for op in OPS),
    *(two_case(op, (5, 4)) for op in OPS),
    *(two_case(op, (3, 4, 5), (1, 1, 5)) for op in OPS),
    *(two_case(op, (9, 3), (1, 3)) for op in OPS),
    keras_case("maximum-layer", "MAXIMUM", (6,), lambda layers, x: layers.Maximum()(
        [layers.Dense(4, name="small")(x), layers.Dense(4, name="big")(x)])),
    keras_case("minimum-layer", "MINIMUM", (5, 2), lambda layers, x: layers.Minimum()(
        [_conv(layers, x, 3, "small"), _conv(layers, x, 3, "big")])),
    keras_case("conv1d-one-filter-bias-valid", "ADD", (8, 3), lambda layers, x: layers.Conv1D(
        1, 2, padding="valid")(x)),
]
SLOW = [case for case in FULL if case.name not in {c.name for c in QUICK}]


def keras_model(tf: Any, case: Case) -> Any:
    keras = tf.keras
    inputs = keras.Input(case.shape)
    model = keras.Model(inputs, case.build(keras, keras.layers, inputs))
    random_weights(model, np.random.default_rng(case.seed), {"big": 5.0})
    return model


def calibration(case: Case) -> np.ndarray:
    rng = np.random.default_rng(case.seed + 1)
    return rng.normal(0.3, 1.0, size=(CALIBRATION_INPUTS, *case.shape)).astype(np.float32)


def imported(tf: Any, case: Case, tmp_path: Path, *, int16: bool = False,
             quantized: bool = True) -> tuple[bytes, nndsl.Model, str]:
    """The case converted (int8, 16x8 or float), its op checked, imported and loaded; and its `.nn` text."""
    from nndsl.importers.keras import convert

    model = keras_model(tf, case)
    conversion = convert(model, case.name, calibration=calibration(case) if quantized else None, int16=int16,
                         progress=False)
    names = model_graph(conversion.tflite).names
    assert case.op in names, f"{case.name}: the converter made {names}"
    nn_path, _ = import_tflite(conversion.tflite, f"{case.name}.tflite", name="op").write(tmp_path / "op.nn")
    return conversion.tflite, nndsl.load(nn_path), nn_path.read_text()


def check_integer(tf: Any, case: Case, tmp_path: Path, *, int16: bool) -> None:
    flatbuffer, model, text = imported(tf, case, tmp_path, int16=int16)
    dtype = np.int16 if int16 else np.int8
    info = np.iinfo(dtype)
    rng = np.random.default_rng(case.seed + 2)
    inputs = rng.integers(info.min, info.max + 1, size=(INPUTS, *model.graph.input.type.shape)).astype(dtype)
    ours = model.run(inputs)
    reference = run_tflm_each(flatbuffer, inputs).reshape(ours.shape)
    assert_exact(ours, reference, "NumPy backend vs TFLM", text, dtype)
    assert_exact(run_in_c(model, inputs, work_dir=tmp_path / "c"), ours, "C vs NumPy backend", text, dtype)


def check_float(tf: Any, case: Case, tmp_path: Path) -> None:
    _, model, text = imported(tf, case, tmp_path, quantized=False)
    keras_model_ = keras_model(tf, case)
    inputs = np.random.default_rng(case.seed + 3).normal(0.3, 1.5, size=(32, *case.shape)).astype(np.float32)
    ours = model.run(inputs)
    expected = np.asarray(keras_model_.predict(inputs, verbose=0, batch_size=32))
    assert_close(ours, expected.reshape(ours.shape), "NumPy backend vs Keras", text)
    assert_close(run_in_c(model, inputs, work_dir=tmp_path / "c"), ours, "C vs NumPy backend", text)


@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.name)
def test_int8_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.parametrize("case", [c for c in QUICK if c.int16], ids=lambda case: case.name)
def test_int16_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=True)


@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.name)
def test_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=lambda case: case.name)
def test_int8_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in SLOW if c.int16], ids=lambda case: case.name)
def test_int16_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=lambda case: case.name)
def test_float_close_to_keras_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)
