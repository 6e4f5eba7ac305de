"""The MLPerf Tiny benchmark architectures as Keras models, seeded, and their TensorFlow Lite conversions.

Keyword spotting (DS-CNN), visual wake words (MobileNetV1, alpha 0.25),
image classification (ResNet-8) and anomaly detection (the dense
autoencoder), built layer by layer as in the MLPerf Tiny reference training
scripts. Nothing is downloaded or trained: weights, batch-norm statistics and
calibration inputs come from seeded NumPy generators, so every run converts
the same flatbuffers. The weights are not meant to be accurate, only to give
every layer the value ranges of a trained network (He-scaled kernels, batch
norms away from the identity), which is what quantisation sees.

Importing this module does not import TensorFlow: the builders take the
``keras`` module and :func:`convert` the ``tensorflow`` module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Architecture:
    """One benchmark network: how to build it and what it takes."""

    name: str
    input_shape: tuple[int, ...]
    build: Callable[[Any], Any]  # the keras module -> an uninitialised keras.Model


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def _bn_relu(keras: Any, x: Any, *, relu6: bool = False) -> Any:
    layers = keras.layers
    x = layers.BatchNormalization()(x)
    return layers.ReLU(6.0 if relu6 else None)(x)


def dscnn(keras: Any, *, filters: int = 64, blocks: int = 4) -> Any:
    """Keyword spotting DS-CNN on a 49x10 MFCC map: conv 10x4/2, depthwise-separable blocks, pool, dense 12."""
    layers = keras.layers
    inputs = keras.Input((49, 10, 1))
    x = _bn_relu(keras, layers.Conv2D(filters, (10, 4), strides=2, padding="same")(inputs))
    for _ in range(blocks):
        x = _bn_relu(keras, layers.DepthwiseConv2D(3, padding="same")(x))
        x = _bn_relu(keras, layers.Conv2D(filters, 1)(x))
    x = layers.AveragePooling2D(tuple(int(d) for d in x.shape[1:3]))(x)
    x = layers.Dense(12)(layers.Flatten()(x))
    return keras.Model(inputs, layers.Softmax()(x), name="dscnn")


# MobileNetV1's 13 depthwise-separable blocks: (pointwise filters at alpha 1, depthwise stride).
MOBILENET_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def mobilenet_v1(keras: Any, *, alpha: float = 0.25, size: int = 96, classes: int = 2) -> Any:
    """Visual wake words MobileNetV1: conv 3x3/2, 13 depthwise-separable blocks, BN + ReLU6, pool, dense.

    ReLU6 as in MobileNetV1 (MLPerf's training script uses ReLU, which the DS-CNN and ResNet-8 cover).
    """
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    x = _bn_relu(keras, layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same")(inputs), relu6=True)
    for filters, stride in MOBILENET_BLOCKS:
        x = _bn_relu(keras, layers.DepthwiseConv2D(3, strides=stride, padding="same")(x), relu6=True)
        x = _bn_relu(keras, layers.Conv2D(int(filters * alpha), 1)(x), relu6=True)
    x = layers.AveragePooling2D(tuple(int(d) for d in x.shape[1:3]))(x)
    x = layers.Dense(classes)(layers.Flatten()(x))
    return keras.Model(inputs, layers.Softmax()(x), name="mobilenet_v1")


def resnet8(keras: Any) -> Any:
    """Image classification ResNet-8 on 32x32x3: conv 16, three residual stacks 16/32/64, pool, dense 10.

    The strided stacks add a 1x1 strided projection of their input to the
    stack's output: ADD of two computed tensors, as in MLPerf's model.
    """
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = _bn_relu(keras, layers.Conv2D(16, 3, padding="same")(inputs))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = _bn_relu(keras, layers.Conv2D(filters, 3, strides=stride, padding="same")(x))
        y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(y))
        if stride > 1:
            x = layers.Conv2D(filters, 1, strides=stride, padding="same")(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.AveragePooling2D(tuple(int(d) for d in x.shape[1:3]))(x)
    x = layers.Dense(10)(layers.Flatten()(x))
    return keras.Model(inputs, layers.Softmax()(x), name="resnet8")


def autoencoder(keras: Any, *, features: int = 640, hidden: int = 128, bottleneck: int = 8) -> Any:
    """Anomaly detection autoencoder: dense 640 -> 4 x 128 -> 8 -> 4 x 128 -> 640, BN + ReLU after each but the last."""
    layers = keras.layers
    inputs = keras.Input((features,))
    x = inputs
    for units in (hidden,) * 4 + (bottleneck,) + (hidden,) * 4:
        x = _bn_relu(keras, layers.Dense(units)(x))
    return keras.Model(inputs, layers.Dense(features)(x), name="autoencoder")


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture("dscnn", (49, 10, 1), dscnn),
        Architecture("dscnn_small", (49, 10, 1), lambda keras: dscnn(keras, filters=16, blocks=2)),
        Architecture("mobilenet_v1", (96, 96, 3), mobilenet_v1),
        Architecture("resnet8", (32, 32, 3), resnet8),
        Architecture("autoencoder", (640,), autoencoder),
    )
}


# --------------------------------------------------------------------------
# Seeding and converting
# --------------------------------------------------------------------------


def seed_weights(model: Any, rng: np.random.Generator, data: np.ndarray) -> None:
    """He-scaled kernels, small biases and batch-norm scales and offsets from ``rng``; batch-norm statistics
    of ``data``.

    A depthwise kernel's fan-in is its window (each channel sees only itself).
    Each batch norm's moving mean and variance become those of its input when
    the network runs on ``data`` (as training leaves them), so activations keep
    a trained network's scale through the depth and the outputs depend on the
    input instead of saturating.
    """
    norms = []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kind = type(layer).__name__
        if kind == "BatchNormalization":  # gamma, beta, moving mean, moving variance
            size = weights[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, size), rng.normal(0.0, 0.1, size), *weights[2:]])
            norms.append(layer)
            continue
        kernel, *bias = weights  # no bias with use_bias=False
        window = kernel.shape[:-2] if kind == "DepthwiseConv2D" else kernel.shape[:-1]
        fan_in = int(np.prod(window))
        layer.set_weights([rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32),
                           *(rng.normal(0.0, 0.05, b.shape).astype(np.float32) for b in bias)])
    # One training-mode pass with momentum 0 sets every moving statistic to its batch's: each batch norm then
    # sees in inference what it saw in that pass.
    for layer in norms:
        layer.momentum = 0.0
    model(data, training=True)
    for layer in norms:
        layer.momentum = 0.99


def seeded_model(keras: Any, arch: Architecture, seed: int, data: np.ndarray) -> Any:
    """``arch`` built and given weights from ``seed`` and batch-norm statistics from ``data``; layer names
    restart, so the import names are the same whichever models the process built before."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = arch.build(keras)
    seed_weights(model, np.random.default_rng(seed), data)
    return model


def samples(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """``count`` seeded float inputs: unit normal noise plus a per-sample offset, as normalised features."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-0.5, 0.5, (count,) + (1,) * len(shape))
    return (rng.normal(0.0, 1.0, (count, *shape)) + offsets).astype(np.float32)


def convert(tf: Any, model: Any, calibration: np.ndarray, *, float_io: bool) -> bytes:
    """Full int8 with TensorFlow Lite's converter, calibrated on ``calibration``.

    int8 input and output, or with ``float_io`` the converter's default float32
    ones (the flatbuffer starts with QUANTIZE and ends with DEQUANTIZE).
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative() -> Iterator[list[np.ndarray]]:
        for row in calibration:
            yield [row[np.newaxis]]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert())
