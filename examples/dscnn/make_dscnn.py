"""Regenerate examples/dscnn: the MLPerf Tiny keyword-spotting DS-CNN, seeded, int8, imported into nndsl.

    python examples/dscnn/make_dscnn.py

Deterministic: the Keras model's weights and batch-norm statistics come from a
seeded NumPy generator (no training: this example measures speed and size, not
accuracy), the calibration and test inputs are seeded synthetic spectrograms,
and TensorFlow Lite's converter quantises it to full int8 (int8 input and
output). ``nndsl import`` turns the .tflite into ``dscnn.nn``/``dscnn.npz``;
``expected.npy`` holds TensorFlow Lite Micro's outputs for ``inputs.npy``, and
the script checks the NumPy backend equals them byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import nndsl

HERE = Path(__file__).resolve().parent
SEED = 20250101
SHAPE = (49, 10, 1)  # 49 frames of 10 MFCC features
CLASSES = 12
FILTERS = 64
BLOCKS = 4
CALIBRATION = 200
TESTS = 20


def keras_model(keras: Any) -> Any:
    """DS-CNN as in MLPerf Tiny's keyword spotting reference: conv, four depthwise-separable blocks, pool, dense."""
    layers = keras.layers
    x = inputs = keras.Input(SHAPE)
    x = layers.Conv2D(FILTERS, (10, 4), strides=2, padding="same", name="conv")(x)
    x = layers.ReLU(name="conv_relu")(layers.BatchNormalization(name="conv_bn")(x))
    for block in range(1, BLOCKS + 1):
        x = layers.DepthwiseConv2D((3, 3), padding="same", name=f"dw{block}")(x)
        x = layers.ReLU(name=f"dw{block}_relu")(layers.BatchNormalization(name=f"dw{block}_bn")(x))
        x = layers.Conv2D(FILTERS, (1, 1), name=f"pw{block}")(x)
        x = layers.ReLU(name=f"pw{block}_relu")(layers.BatchNormalization(name=f"pw{block}_bn")(x))
    x = layers.AveragePooling2D((25, 5), name="pool")(x)
    x = layers.Dense(CLASSES, name="fc")(layers.Flatten(name="flat")(x))
    return keras.Model(inputs, layers.Softmax(name="probs")(x), name="dscnn")


def seed_weights(model: Any, rng: np.random.Generator) -> None:
    """He-scaled kernels, small biases, batch-norm statistics away from the identity."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name.endswith("_bn"):  # gamma, beta, moving mean, moving variance
            size = weights[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, size), rng.normal(0.0, 0.1, size),
                               rng.normal(0.0, 0.1, size), rng.uniform(0.5, 1.5, size)])
            continue
        kernel, bias = weights
        fan_in = int(np.prod(kernel.shape[:-1])) if "dw" not in layer.name else int(np.prod(kernel.shape[:2]))
        layer.set_weights([rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape), rng.normal(0.0, 0.05, bias.shape)])


def spectrograms(rng: np.random.Generator, count: int) -> np.ndarray:
    """Smooth positive bumps plus noise, roughly the range of normalised MFCCs."""
    base = rng.normal(0.0, 1.0, (count, *SHAPE))
    bumps = np.sin(np.linspace(0, 3 * np.pi, SHAPE[0]))[None, :, None, None] * rng.uniform(0, 2, (count, 1, 1, 1))
    return (base + bumps).astype(np.float32)


def convert(tf: Any, model: Any, calibration: np.ndarray) -> bytes:
    """Full int8 with TensorFlow Lite's converter, int8 in and out."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([row[None]] for row in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def quantise(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """Round half away from zero, clamp to int8 (as the reference models' test inputs)."""
    q = np.sign(x / scale) * np.floor(np.abs(x / scale) + 0.5) + zero
    clipped: np.ndarray = np.clip(q, -128, 127).astype(np.int8)
    return clipped


def tflm_outputs(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """TensorFlow Lite Micro (reference kernels) on each input."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    outputs = []
    for row in inputs:
        interpreter.set_input(row[None], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)).reshape(-1))
    return np.stack(outputs).astype(np.int8)


def main() -> int:
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = keras_model(keras)
    seed_weights(model, rng)
    tflite = convert(tf, model, spectrograms(rng, CALIBRATION))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dscnn.tflite"
        path.write_bytes(tflite)
        subprocess.run([sys.executable, "-m", "nndsl.cli", "import", str(path), "-o", str(HERE / "dscnn.nn")],
                       check=True)
    details = tf.lite.Interpreter(model_content=tflite).get_input_details()[0]
    scale, zero = details["quantization"]
    inputs = quantise(spectrograms(rng, TESTS), scale, zero)
    expected = tflm_outputs(tflite, inputs)
    np.save(HERE / "inputs.npy", inputs)
    np.save(HERE / "expected.npy", expected)
    got = nndsl.load(HERE / "dscnn.nn").run(inputs)
    differing = int(np.count_nonzero(got != expected))
    print(f"dscnn: {TESTS} inputs, NumPy backend vs TensorFlow Lite Micro: {differing} differing values")
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
