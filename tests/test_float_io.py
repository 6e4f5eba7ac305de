"""Float-I/O models: an int8 or 16x8 network that takes and returns float, quantising inside as TFLM does.

TensorFlow Lite's converter keeps a model's input and output float unless
``inference_input_type``/``inference_output_type`` say otherwise: the flatbuffer
begins with QUANTIZE and ends with DEQUANTIZE. Imported, the `.nn` reads
``input x : f32[...]``, ``quantize(x) : i8 @ ...`` and ``dequantize(...)``; the
NumPy backend and the generated C (``float`` in, ``float`` out) must equal
TensorFlow Lite Micro bit for bit, on ordinary and extreme inputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.importers.tf import tensorflow
from nndsl.importers.tflite import import_tflite
from nndsl.qmath.quantize import affine_quantize, dequantize
from tests.c_harness import run_in_c
from tests.tflite_models import model_graph, run_tflm_each, uniform_samples

pytestmark = pytest.mark.tensorflow


def test_affine_quantize_rounds_halves_away_from_zero() -> None:
    x = np.array([0.5, 1.5, -0.5, -2.5, 0.49999997, 1e30, -1e30, np.nan], dtype=np.float32)
    assert affine_quantize(x, 1.0, 3, np.int8).tolist() == [4, 5, 2, 0, 3, 127, -128, 3]
    assert dequantize(np.array([-128, 5], dtype=np.int8), 0.1, -3).tolist() == [np.float32(0.1) * np.float32(-125),
                                                                              np.float32(0.1) * np.float32(8)]


@pytest.fixture(scope="module")
def tf() -> Any:
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    return tensorflow()


def float_io_flatbuffer(tf: Any, int16: bool, float_input: bool, float_output: bool) -> bytes:
    keras = tf.keras
    tf.keras.utils.set_random_seed(21)
    inputs = keras.Input((9, 2))
    x = keras.layers.Conv1D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(x))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = uniform_samples([(9, 2)], [(-2.0, 2.0)], seed=4, count=30)
    wide = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    converter.target_spec.supported_ops = [wide if int16 else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    integer = tf.int16 if int16 else tf.int8
    if not float_input:
        converter.inference_input_type = integer
    if not float_output:
        converter.inference_output_type = integer
    return bytes(converter.convert())


@pytest.mark.parametrize(("int16", "float_input", "float_output"), [
    (False, True, True), (False, True, False), (False, False, True), (True, True, True),
], ids=["int8-float-in-out", "int8-float-in", "int8-float-out", "16x8-float-in-out"])
def test_float_io_model_runs_like_tflm(tf: Any, int16: bool, float_input: bool, float_output: bool,
                                       tmp_path: Path) -> None:
    flatbuffer = float_io_flatbuffer(tf, int16, float_input, float_output)
    names = model_graph(flatbuffer).names
    assert (names[0] == "QUANTIZE") == float_input and (names[-1] == "DEQUANTIZE") == float_output, names
    imported = import_tflite(flatbuffer, "model.tflite", name="fio")
    nn_path, _ = imported.write(tmp_path / "fio.nn")
    text = nn_path.read_text()
    model = nndsl.load(nn_path)
    assert model.graph.dtype.value == ("i16" if int16 else "i8")
    if float_input:
        assert re.search(r"^input \w+ : f32\[9, 2\]$", text, re.MULTILINE) and "= quantize(" in text
    if float_output:
        assert "= dequantize(" in text and model.graph.output.type.dtype.value == "f32"
    rng = np.random.default_rng(5)
    if float_input:
        inputs = rng.normal(0.0, 1.5, size=(50, 9, 2)).astype(np.float32)
        # Saturating values; their quotients stay inside int32, where TFLM's cast is defined (beyond it, x86
        # gives INT32_MIN whatever the sign; nndsl saturates).
        inputs[0] = 1e3
        inputs[1] = -1e3
        inputs[2, 0, 0] = 0.0
    else:
        info = np.iinfo(np.int16 if int16 else np.int8)
        inputs = rng.integers(info.min, info.max + 1, size=(50, 9, 2)).astype(info.dtype)
    ours = model.run(inputs)
    reference = run_tflm_each(flatbuffer, inputs).reshape(ours.shape)
    assert ours.dtype == reference.dtype
    assert np.array_equal(ours.view(np.uint8), reference.view(np.uint8)), "NumPy backend vs TFLM"
    c_outputs = run_in_c(model, inputs, work_dir=tmp_path / "c")
    assert np.array_equal(c_outputs.view(np.uint8), ours.view(np.uint8)), "C vs NumPy backend"
    header = (tmp_path / "c" / "fio.h").read_text()
    assert f"int fio_run(const {'float' if float_input else 'int'}" in header
    assert f"{'float' if float_output else 'int'}" in header.split("int fio_run(")[1].split(")")[0]


def test_float_edges_in_text_are_checked(tmp_path: Path) -> None:
    """Only quantize reads the f32 input of an integer network, and nothing reads a dequantize."""
    cases = {
        "in": ("r = relu(x)\ns = add(q, r) : i8 @ scale(0.2) zero(0)\noutput d = dequantize(s)\n",
               "4:10: error: 'relu' reads 'x', an f32 tensor of an i8 network: quantize it first"),
        "out": ("d = dequantize(q)\noutput e = relu(d)\n", "5:17: error: 'relu' reads 'd', an f32 tensor"),
    }
    for name, (layers, error) in cases.items():
        path = tmp_path / f"{name}.nn"
        path.write_text(f"network e\ninput x : f32[4]\nq = quantize(x) : i8 @ scale(0.1) zero(0)\n{layers}")
        with pytest.raises(nndsl.NNError) as raised:
            nndsl.load(path)
        assert f"{path}:{error}" in str(raised.value)
