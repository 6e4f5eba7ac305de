"""Importing Keras models and .tflite files: the .nn output runs bit for bit like TensorFlow Lite Micro.

Integer results are compared for exact equality (zero differing bytes):
NumPy backend vs TFLM running the flatbuffer the import came from, and
compiled C vs NumPy backend. Float imports are compared with Keras within
1e-5 of the largest output value of each row.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.diagnostics import NNError
from nndsl.importers import import_model
from nndsl.importers.keras import _progress, import_keras_model
from nndsl.importers.tflite import parse_flatbuffer
from tests.c_harness import run_in_c
from tests.conftest import DATA
from tests.tflite_models import quantizing_converter, run_tflm_each

pytestmark = pytest.mark.tensorflow

REFERENCE_MODELS = ("mlp", "hotword", "conv1d")


def write_and_load(imported: Any, folder: Path, name: str) -> nndsl.Model:
    nn, _ = imported.write(folder / f"{name}.nn")
    return nndsl.load(nn)


def float_close(actual: np.ndarray, expected: np.ndarray, tolerance: float = 1e-5) -> None:
    """Every value within ``tolerance`` of the largest |value| of its row."""
    rows_a = actual.reshape(len(actual), -1).astype(np.float64)
    rows_e = expected.reshape(len(expected), -1).astype(np.float64)
    scale = np.maximum(np.abs(rows_e).max(axis=1, keepdims=True), 1e-30)
    worst = float((np.abs(rows_a - rows_e) / scale).max())
    assert worst <= tolerance, f"relative error {worst:.3g}"


# -- the reference models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_tflite_import_runs_like_tflm(name: str, tmp_path: Path) -> None:
    source = DATA / name / "model_int8.tflite"
    model = write_and_load(import_model(source), tmp_path, name)
    inputs = np.load(DATA / name / "x_test_int8.npy")
    expected = np.load(DATA / name / "tflm_out.npy")
    outputs = model.run(inputs)
    assert np.array_equal(outputs, expected), f"{np.count_nonzero(outputs != expected)} values differ"
    assert np.array_equal(run_in_c(model, inputs), outputs)


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_keras_import_with_calibration_runs_like_tflm(name: str, tmp_path: Path) -> None:
    imported = import_model(DATA / name / "model.keras", calibrate=DATA / name / "x_calib.npy")
    assert imported.tflite is not None
    model = write_and_load(imported, tmp_path, name)
    inputs = np.load(DATA / name / "x_test_int8.npy")
    outputs = model.run(inputs)
    assert np.array_equal(outputs, run_tflm_each(imported.tflite, inputs))
    # The same converter on the same calibration data made the reference model.
    assert np.array_equal(outputs, np.load(DATA / name / "tflm_out.npy"))
    assert np.array_equal(run_in_c(model, inputs), outputs)


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_float_keras_import_matches_keras(name: str, tmp_path: Path) -> None:
    model = write_and_load(import_model(DATA / name / "model.keras"), tmp_path, name)
    assert model.graph.dtype.value == "f32"
    inputs = np.load(DATA / name / "x_test.npy")
    outputs = model.run(inputs)
    float_close(outputs, np.load(DATA / name / "keras_out.npy"))
    float_close(run_in_c(model, inputs[:50]), outputs[:50])


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_keras_import_16x8_runs_like_tflm(name: str, tmp_path: Path) -> None:
    """--int16: int16 activations, int8 weights, int64 biases (TensorFlow Lite's 16x8 scheme)."""
    imported = import_model(DATA / name / "model.keras", calibrate=DATA / name / "x_calib.npy", int16=True)
    assert imported.tflite is not None
    model = write_and_load(imported, tmp_path, name)
    assert model.graph.dtype.value == "i16"
    rng = np.random.default_rng(5)
    inputs = rng.integers(-32768, 32768, size=(60, *model.graph.input.type.shape)).astype(np.int16)
    outputs = model.run(inputs)
    assert np.array_equal(outputs, run_tflm_each(imported.tflite, inputs))
    assert np.array_equal(run_in_c(model, inputs), outputs)


def test_generated_16x8_model_runs_like_tflm(tmp_path: Path) -> None:
    """Residual add, average pooling, tanh and a depthwise conv in 16x8."""
    from nndsl.importers.tf import tensorflow

    keras = tensorflow().keras
    rng = np.random.default_rng(8)
    inputs = keras.Input((12, 10, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = keras.layers.DepthwiseConv2D(3, padding="same")(keras.layers.Conv2D(4, 1)(inputs))
    x = keras.layers.Add()([a, b])
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Activation("tanh")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    imported = import_keras_model(keras.Model(inputs, outputs), "residual16", int16=True,
                                  calibration=rng.normal(size=(40, 12, 10, 3)))
    model = write_and_load(imported, tmp_path, "residual16")
    x_test = rng.integers(-32768, 32768, size=(60, 12, 10, 3)).astype(np.int16)
    assert imported.tflite is not None
    outputs_nn = model.run(x_test)
    assert np.array_equal(outputs_nn, run_tflm_each(imported.tflite, x_test))
    assert np.array_equal(run_in_c(model, x_test), outputs_nn)


def test_h5_and_savedmodel_sources(tmp_path: Path) -> None:
    """The legacy .h5 file and a SavedModel folder import like the .keras file."""
    from nndsl.importers.keras import load_keras

    calibration = DATA / "mlp" / "x_calib.npy"
    inputs = np.load(DATA / "mlp" / "x_test_int8.npy")
    expected = np.load(DATA / "mlp" / "tflm_out.npy")
    h5 = write_and_load(import_model(DATA / "mlp" / "model.h5", calibrate=calibration), tmp_path, "h5")
    assert np.array_equal(h5.run(inputs), expected)

    from nndsl.importers.tf import quiet

    saved = tmp_path / "saved"
    with quiet():
        load_keras(DATA / "mlp" / "model.keras").export(str(saved))
    imported = import_model(saved, calibrate=calibration)
    assert imported.tflite is not None
    model = write_and_load(imported, tmp_path, "saved")
    assert np.array_equal(model.run(inputs), run_tflm_each(imported.tflite, inputs))
    float_model = write_and_load(import_model(saved), tmp_path, "saved_float")
    float_close(float_model.run(np.load(DATA / "mlp" / "x_test.npy")), np.load(DATA / "mlp" / "keras_out.npy"))


def test_imported_text_is_meant_for_people(tmp_path: Path) -> None:
    imported = import_model(DATA / "conv1d" / "model.keras", calibrate=DATA / "conv1d" / "x_calib.npy")
    text = imported.text("conv1d.npz")
    statements = [line for line in text.splitlines() if " = " in line and not line.startswith("#")]
    ops = [line.split(" = ")[1].split("(")[0] for line in statements]
    # Keras's 1-D layers arrive as 2-D ops between reshapes; the .nn shows the 1-D network.
    assert ops == ["conv1d", "max_pool", "depthwise_conv1d", "conv1d", "max_pool", "global_avg_pool", "dense",
                   "softmax"]
    assert all("  # " in line for line in statements), "each statement names its source op"
    assert "# CONV_2D [128, 8]" in text and "# MEAN [16]" in text
    assert "reshape" not in text and "SHAPE" not in text


def dynamic_batch_flatbuffer(keras_model: Any, calibration: np.ndarray) -> bytes:
    """Keras's own conversion, batch left dynamic: what users' .tflite files often are."""
    from nndsl.importers.tf import tensorflow

    converter = quantizing_converter(
        tensorflow(), keras_model, lambda: ([x[np.newaxis].astype(np.float32)] for x in calibration)
    )
    return bytes(converter.convert())


def tflite_reference_outputs(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    """TensorFlow Lite's interpreter with its reference kernels (TFLM cannot run dynamic shapes)."""
    from nndsl.importers.tf import tensorflow

    tf = tensorflow()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer,
                                      experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    outputs = []
    for x in inputs:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[np.newaxis])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].copy())
    return np.stack(outputs)


def test_dynamic_batch_shape_ops_are_folded(tmp_path: Path) -> None:
    """A dynamic batch makes Flatten a SHAPE/STRIDED_SLICE/PACK computation feeding a RESHAPE."""
    keras_model = nndsl_keras_load(DATA / "hotword" / "model.keras")
    flatbuffer = dynamic_batch_flatbuffer(keras_model, np.load(DATA / "hotword" / "x_calib.npy")[:50])
    assert {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"} <= {op.name for op in parse_flatbuffer(flatbuffer, "").ops}
    source = tmp_path / "dynamic.tflite"
    source.write_bytes(flatbuffer)
    imported = import_model(source)
    body = [line for line in imported.lines if " = " in line]
    assert [line.split(" = ")[1].split("(")[0] for line in body] == ["conv2d", "flatten", "dense", "softmax"]
    model = write_and_load(imported, tmp_path, "dynamic")
    inputs = np.load(DATA / "hotword" / "x_test_int8.npy")[:40]
    assert np.array_equal(model.run(inputs), run_tflm_each(flatbuffer, inputs))


def nndsl_keras_load(path: Path) -> Any:
    from nndsl.importers.keras import load_keras

    return load_keras(path)


# -- generated Keras models ------------------------------------------------------------------------------------


def random_keras_model(seed: int) -> tuple[Any, np.ndarray]:
    """A random stack of supported layers, with branches, on a random 1-D or 2-D input and random weights."""
    from nndsl.importers.tf import tensorflow

    keras = tensorflow().keras
    rng = np.random.default_rng(seed)
    two_d = bool(rng.integers(2))
    shape = (int(rng.integers(6, 14)), int(rng.integers(6, 14)), int(rng.integers(1, 4))) if two_d else (
        int(rng.integers(12, 40)), int(rng.integers(1, 5)))
    conv = keras.layers.Conv2D if two_d else keras.layers.Conv1D
    depthwise = keras.layers.DepthwiseConv2D if two_d else keras.layers.DepthwiseConv1D
    pool = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D) if two_d else (
        keras.layers.MaxPooling1D, keras.layers.AveragePooling1D)
    padding_layer = keras.layers.ZeroPadding2D if two_d else keras.layers.ZeroPadding1D
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(int(rng.integers(1, 5))):
        choice = int(rng.integers(9))
        padding = str(rng.choice(["same", "valid"]))
        filters = int(rng.integers(2, 7))  # one filter with a bias converts to conv + ADD of a constant
        if choice == 0:
            x = conv(filters, int(rng.integers(1, 4)), padding="same", strides=int(rng.integers(1, 3)),
                     activation=str(rng.choice(["relu", "linear"])))(x)
        elif choice == 1:
            x = depthwise(int(rng.integers(1, 4)), padding="same", depth_multiplier=int(rng.integers(1, 3)))(x)
            x = keras.layers.ReLU(max_value=6.0)(x)
        elif choice == 2:
            x = conv(filters, 3, padding="same")(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        elif choice == 3:
            x = pool[int(rng.integers(2))](2, padding=padding)(x)
        elif choice == 4:
            x = keras.layers.Activation(str(rng.choice(["tanh", "sigmoid", "hard_swish"])))(x)
        elif choice == 5:  # residual: two branches of one shape on different scales
            x = keras.layers.Add()([conv(filters, 3, padding="same", activation="relu")(x),
                                    conv(filters, 1, padding="same")(x)])
        elif choice == 6:
            x = keras.layers.Concatenate()([conv(filters, 3, padding="same")(x), conv(2, 1, padding="same")(x)])
        elif choice == 7:
            x = padding_layer(int(rng.integers(1, 3)))(x)
        else:
            x = keras.layers.LeakyReLU(negative_slope=float(rng.uniform(0.05, 0.5)))(x)
    x = keras.layers.GlobalAveragePooling2D()(x) if two_d else keras.layers.Flatten()(x)
    if rng.integers(2):
        x = keras.layers.Dense(int(rng.integers(4, 12)), activation="relu")(x)
    outputs = keras.layers.Dense(int(rng.integers(2, 8)), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, channels), rng.normal(size=channels),
                               rng.normal(size=channels) * 0.5, rng.uniform(0.5, 2, channels)])
    calibration = rng.normal(size=(40, *shape)).astype(np.float32)
    return model, calibration


@pytest.mark.parametrize("seed", range(4))
def test_generated_keras_models_run_like_tflm(seed: int, tmp_path: Path) -> None:
    keras_model, calibration = random_keras_model(seed)
    imported = import_keras_model(keras_model, f"generated-{seed}", calibration=calibration, name=f"g{seed}")
    assert imported.tflite is not None
    model = write_and_load(imported, tmp_path, f"g{seed}")
    rng = np.random.default_rng(100 + seed)
    inputs = rng.integers(-128, 128, size=(100, *model.graph.input.type.shape), dtype=np.int8)
    outputs = model.run(inputs)
    assert np.array_equal(outputs, run_tflm_each(imported.tflite, inputs))
    assert np.array_equal(run_in_c(model, inputs), outputs)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 30))
def test_more_generated_keras_models_run_like_tflm(seed: int, tmp_path: Path) -> None:
    test_generated_keras_models_run_like_tflm(seed, tmp_path)


@pytest.mark.parametrize("seed", range(2))
def test_generated_float_models_match_keras(seed: int, tmp_path: Path) -> None:
    keras_model, calibration = random_keras_model(seed)
    model = write_and_load(import_keras_model(keras_model, f"generated-{seed}", name=f"f{seed}"), tmp_path, "f")
    expected = keras_model.predict(calibration, verbose=0)
    float_close(model.run(calibration), expected)


def dilated_keras_model() -> Any:
    from nndsl.importers.tf import tensorflow

    keras = tensorflow().keras
    return keras.Sequential([
        keras.Input((17, 15, 2)),
        keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", activation="relu"),
        keras.layers.Conv2D(3, 3, dilation_rate=(2, 1), padding="valid"),
        keras.layers.Flatten(),
    ])


def test_dilated_convolution_imports_with_its_dilation(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    keras_model = dilated_keras_model()
    imported = import_keras_model(keras_model, "dilated", calibration=rng.normal(size=(30, 17, 15, 2)))
    text = imported.text("w.npz")
    assert "dilation=2, padding=same" in text and "dilation=(2, 1))" in text
    model = write_and_load(imported, tmp_path, "dilated")
    inputs = rng.integers(-128, 128, size=(60, 17, 15, 2), dtype=np.int8)
    assert imported.tflite is not None
    assert np.array_equal(model.run(inputs), run_tflm_each(imported.tflite, inputs))


def test_space_to_batch_dilations_are_recognised(tmp_path: Path) -> None:
    """With a dynamic batch the converter writes SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND."""
    rng = np.random.default_rng(4)
    flatbuffer = dynamic_batch_flatbuffer(dilated_keras_model(), rng.normal(size=(30, 17, 15, 2)))
    assert "SPACE_TO_BATCH_ND" in {op.name for op in parse_flatbuffer(flatbuffer, "").ops}
    source = tmp_path / "s2b.tflite"
    source.write_bytes(flatbuffer)
    imported = import_model(source)
    text = imported.text("w.npz")
    assert "dilation=2, padding=same" in text and "dilation=(2, 1))" in text and "SPACE_TO_BATCH" not in text
    model = write_and_load(imported, tmp_path, "s2b")
    inputs = rng.integers(-128, 128, size=(40, 17, 15, 2), dtype=np.int8)
    assert np.array_equal(model.run(inputs), tflite_reference_outputs(flatbuffer, inputs))


# -- errors -------------------------------------------------------------------------------------------------------


def unsupported_models() -> dict[str, tuple[Any, str]]:
    from nndsl.importers.tf import tensorflow

    keras = tensorflow().keras

    class Doubler(keras.layers.Layer):  # a custom layer
        def call(self, x: Any) -> Any:
            return x * 2.0

    return {
        "lstm": (keras.Sequential([keras.Input((10, 3)), keras.layers.LSTM(4, name="lstm")]),
                 "layer 'lstm' (LSTM): unroll=False is not supported: build it with unroll=True"),
        "custom": (keras.Sequential([keras.Input((8,)), Doubler(name="doubler")]),
                   "layer 'doubler' (Doubler) is not supported by nndsl"),
        "causal": (keras.Sequential([keras.Input((16, 2)), keras.layers.Conv1D(3, 3, padding="causal", name="c")]),
                   "layer 'c' (Conv1D): padding='causal' is not supported"),
        "gelu": (keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="gelu", name="d")]),
                 "layer 'd' (Dense): activation='gelu' is not supported"),
    }


@pytest.mark.parametrize("case", ["lstm", "custom", "causal", "gelu"])
def test_unsupported_layers_are_named(case: str) -> None:
    keras_model, message = unsupported_models()[case]
    with pytest.raises(NNError) as raised:
        import_keras_model(keras_model, "model.keras")
    assert f"model.keras: error: {message}" in str(raised.value)


def div_flatbuffer(path: Path) -> Path:
    """A float .tflite file of two dense layers and a DIV (which nndsl does not support) at ``path``."""
    from nndsl.importers.tf import tensorflow

    tf = tensorflow()
    keras = tf.keras
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(4, name="head")(inputs) / keras.layers.Dense(4, name="gate")(inputs)  # DIV
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    path.write_bytes(converter.convert())
    return path


def test_unsupported_tflite_op_is_named(tmp_path: Path) -> None:
    """An op with no handler is an error naming the layer, the op and what is supported, never a different model."""
    source = div_flatbuffer(tmp_path / "div.tflite")
    with pytest.raises(NNError) as raised:
        import_model(source)
    message = str(raised.value)
    pattern = r"error: layer '[^']+' \(op \d+, DIV\): op DIV is not supported by nndsl \(supported: ADD, "
    assert re.search(pattern, message)
    assert "MUL, PACK, PAD, PADV2, PRELU, QUANTIZE, REDUCE_MAX, RELU, " in message
    assert message.startswith(str(source))


def test_cli_import_check_build_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "net.nn"
    command = [sys.executable, "-m", "nndsl", "import", str(DATA / "mlp" / "model.keras"),
               "--calibrate", str(DATA / "mlp" / "x_calib.npy"), "-o", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "nndsl", "check", str(out)], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "nndsl", "build", str(out), "-o", str(tmp_path / "c")], check=True,
                   capture_output=True)
    assert (tmp_path / "c" / "net.c").exists()


@pytest.mark.parametrize("args, message", [
    (["missing.keras", "-o", "x.nn"], "missing.keras: error: no such file or folder"),
    ([str(DATA / "mlp" / "model_int8.tflite"), "--calibrate", "c.npy", "-o", "x.nn"],
     "a .tflite model is already quantised"),
    ([str(DATA / "mlp" / "model.keras"), "--calibrate", str(DATA / "hotword" / "x_calib.npy"), "-o", "x.nn"],
     "calibration data has shape [200, 49, 40, 1]"),
    ([str(DATA / "mlp" / "x_test.npy"), "-o", "x.nn"], "cannot load the Keras model"),
    ([str(DATA / "mlp" / "model.keras"), "--int16", "-o", "x.nn"], "--int16 quantises: it needs --calibrate"),
    (["junk.tflite", "-o", "x.nn"], "junk.tflite: error: not a TensorFlow Lite flatbuffer (no TFL3 file identifier)"),
])
def test_cli_import_errors(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "junk.tflite").write_bytes(bytes(range(100)))
    result = subprocess.run([sys.executable, "-m", "nndsl", "import", *args], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.nn").exists(), "nothing is written on failure"


def list_ops_command(source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nndsl", "import", "--list-ops", str(source), *extra],
                          capture_output=True, text=True, cwd=source.parent)


def test_cli_list_ops_names_what_is_not_supported(tmp_path: Path) -> None:
    """Before any import: each op code, its count, supported or not, its layers; exit 1 for an unsupported one."""
    source = div_flatbuffer(tmp_path / "div.tflite")
    result = list_ops_command(source)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{source}: 3 ops of 2 kinds"
    assert re.fullmatch(r"  FULLY_CONNECTED +2  supported  \(layers: gate, head\)", lines[1]), lines[1]
    assert re.fullmatch(r"  DIV +1  not supported  \(layers: .+\)", lines[2]), lines[2]
    assert lines[3].startswith("not supported: DIV (nndsl imports ADD, AVERAGE_POOL_2D, CONCATENATION, ")
    assert not list(tmp_path.glob("*.nn")) and "Traceback" not in result.stderr


def test_cli_list_ops_shows_dropped_and_folded_ops(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    source = tmp_path / "s2b.tflite"
    source.write_bytes(dynamic_batch_flatbuffer(dilated_keras_model(), rng.normal(size=(30, 17, 15, 2))))
    result = list_ops_command(source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"  SPACE_TO_BATCH_ND +2  folded into a dilated convolution", result.stdout)
    assert re.search(r"  SHAPE +\d+  dropped: a shape computation", result.stdout)
    assert result.stdout.rstrip().endswith("every op is supported")


def test_cli_list_ops_needs_a_tflite_file_and_import_needs_an_output(tmp_path: Path) -> None:
    result = list_ops_command(DATA / "mlp" / "model.keras")
    assert result.returncode == 1 and "--list-ops reads a .tflite file" in result.stderr
    result = subprocess.run([sys.executable, "-m", "nndsl", "import", str(DATA / "mlp" / "model_int8.tflite")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and "import needs -o OUT.nn (or --list-ops" in result.stderr


def test_cli_compare_reports_layers_and_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "c.nn"
    source = str(DATA / "conv1d" / "model.keras")
    subprocess.run([sys.executable, "-m", "nndsl", "import", source, "--calibrate",
                    str(DATA / "conv1d" / "x_calib.npy"), "-o", str(out)], check=True, capture_output=True)
    plot = tmp_path / "errors.png"
    result = subprocess.run([sys.executable, "-m", "nndsl", "compare", str(out), source, "--input",
                             str(DATA / "conv1d" / "x_test.npy"), "--labels", str(DATA / "conv1d" / "y_test.npy"),
                             "--plot", str(plot)], check=True, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["layer", "shape"]
    assert any(line.startswith("max_pooling1d ") for line in lines)
    assert "accuracy: float 0.9850, int8 0.9800 (-0.0050)" in result.stdout
    assert plot.stat().st_size > 1000


def test_calibration_progress_only_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    samples = np.zeros((5, 3), dtype=np.float32)
    assert len(list(_progress(samples, enabled=False))) == 5
    assert capsys.readouterr().err == ""
    assert len(list(_progress(samples, enabled=True))) == 5
    shown = capsys.readouterr().err
    assert "calibrating [" in shown and shown.rstrip().endswith("5/5")


def test_a_conversion_that_leaves_float_ops_is_retried() -> None:
    """TensorFlow's int8 conversion sometimes leaves float ops (an unrolled LSTM, about one time in three): a
    full-integer conversion with a DEQUANTIZE inside is made again, up to CONVERTER_ATTEMPTS times."""
    from nndsl.importers import keras as keras_importer
    from nndsl.importers.tf import tensorflow

    keras = tensorflow().keras
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    calibration = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    full = keras_importer.convert(model, "m.keras", calibration=calibration).tflite
    converter = tensorflow().lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tensorflow().lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([row[np.newaxis]] for row in calibration)
    partly_float = bytes(converter.convert())  # float I/O: QUANTIZE in, DEQUANTIZE out
    assert "DEQUANTIZE" in {op.name for op in parse_flatbuffer(partly_float, "m").ops}

    class Flaky:
        def __init__(self, results: list[bytes]) -> None:
            self.results, self.calls = results, 0
            self.target_spec = SimpleNamespace(supported_ops=[])  # what quantize_fully sets

        def convert(self) -> bytes:
            self.calls += 1
            return self.results.pop(0)

    flaky = Flaky([partly_float, partly_float, full])
    conversion = keras_importer._run_converter(flaky, "m.keras", calibration=None, int16=False, progress=False)
    assert flaky.calls == 1 and conversion.tflite == partly_float  # a float conversion is never retried
    flaky = Flaky([partly_float, partly_float, full, full])
    fake_calibration = np.zeros((0, 4), np.float32)
    conversion = keras_importer._run_converter(flaky, "m.keras", calibration=fake_calibration, int16=False,
                                               progress=False)
    assert flaky.calls == 3 and conversion.tflite == full
    flaky = Flaky([partly_float] * keras_importer.CONVERTER_ATTEMPTS)
    conversion = keras_importer._run_converter(flaky, "m.keras", calibration=fake_calibration, int16=False,
                                               progress=False)
    assert flaky.calls == keras_importer.CONVERTER_ATTEMPTS and conversion.tflite == partly_float
