"""Every supported Keras layer, over a grid of its attributes, against TensorFlow Lite Micro.

Each case is a tiny Keras model (a conv or dense layer before element-wise
ops, so that their input quantisation is realistic) with random weights from
a fixed seed. It is converted to full int8 by nndsl's Keras importer
(TensorFlow Lite's converter, ~50 random calibration inputs), then:

- TensorFlow Lite Micro's interpreter (tflite-micro, reference kernels) on the
  converted flatbuffer and nndsl's NumPy backend on the imported `.nn` must
  give the same int8 outputs: exact, zero differing bytes;
- the compiled C must give the same bytes as the NumPy backend;
- TensorFlow Lite's own interpreter (reference and default optimised
  kernels) is compared with TFLM too, but only counted: its optimised kernels
  may round differently. The counts are printed per op at the end of the
  module (visible with ``-s``; under pytest-xdist each worker prints what it
  ran, and the last one to finish prints the total).

The float import of the same model must match Keras's ``predict`` within
1e-5 of each row's largest output, and the C must match NumPy within the same.

The default run takes a reduced grid (:data:`QUICK`); the full grid is
marked ``slow`` (``-m slow``, or ``make test-all``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.diagnostics import NNError
from nndsl.importers.tf import quiet, tensorflow
from tests.c_harness import run_in_c
from tests.tflite_models import run_tflm_each

pytestmark = pytest.mark.tensorflow

CALIBRATION_INPUTS = 50
INT8_INPUTS = 100
FLOAT_INPUTS = 32
FLOAT_TOLERANCE = 1e-5  # relative to each row's largest |output| (see assert_close)

# (keras.layers, input tensor) -> output tensor
Builder = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Case:
    """One tiny model: the op it tests (the report's row), its attributes (the test id), how to build it."""

    op: str
    attrs: str
    shape: tuple[int, ...]
    build: Builder = field(compare=False)
    gains: tuple[tuple[str, float], ...] = ()  # kernel gain by layer name: branches of different scale
    error: str | None = None  # the importer's error, for a case nndsl does not support

    @property
    def id(self) -> str:
        return f"{self.op}-{self.attrs}"

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def _label(**attrs: object) -> str:
    return ",".join(f"{key.rstrip('_')}{_text(value)}" for key, value in attrs.items() if value is not None)


def _extent(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else value


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

ACTIVATIONS = (None, "relu", "relu6")
# Out of scope: Keras allows strides and dilation together on depthwise convs; TensorFlow slices the output.
STRIDED_DILATION = r"strides=\(2(, 2)?,?\) with dilation_rate=\(2(, 2)?,?\) is not supported"
SIZES_1D = (7, 9, 11, 10, 13)  # mostly odd, cycled through the grids
SIZES_2D = ((7, 5), (5, 9), (9, 7), (6, 7), (1, 9))


def conv_case(rank: int, depthwise: bool, kernel: int | tuple[int, int], stride: int | tuple[int, int],
              dilation: int | tuple[int, int], padding: str, channels: int, filters: int, bias: bool,
              activation: str | None, size: int | tuple[int, int]) -> Case:
    """Conv1D/Conv2D (``filters`` outputs) or DepthwiseConv1D/2D (``filters`` is the depth multiplier)."""
    kind = ("DepthwiseConv" if depthwise else "Conv") + f"{rank}D"

    def build(layers: Any, x: Any) -> Any:
        options = {"strides": stride, "padding": padding, "dilation_rate": dilation, "use_bias": bias,
                   "activation": activation}
        if depthwise:
            layer = getattr(layers, kind)(kernel, depth_multiplier=filters, **options)
        else:
            layer = getattr(layers, kind)(filters, kernel, **options)
        return layer(x)

    shape = (*_pair(size), channels) if rank == 2 else (size, channels)
    attrs = _label(k=kernel, s=stride, d=dilation, p=padding, c=channels, **{"m" if depthwise else "f": filters},
                   bias=int(bias), act=activation or "none", in_=size)
    error = None
    if max(_pair(stride)) > 1 and max(_pair(dilation)) > 1:
        error = STRIDED_DILATION
    return Case(kind, attrs, shape, build, error=error)


def conv_grid(rank: int, depthwise: bool) -> list[Case]:
    """Kernel sizes x (strides | dilations) x paddings; channels, bias, activation and odd sizes cycle."""
    if rank == 1:
        kernels: list[Any] = [1, 2, 3, 4, 5]
        steps: list[tuple[Any, Any]] = [(1, 1), (2, 1), (3, 1), (1, 2)]
    else:
        kernels = [1, 2, 3, (2, 3), (3, 1), 4]
        steps = [(1, 1), (2, 1), (3, 1), ((1, 2), 1), ((2, 1), 1), (1, 2), (1, (2, 1))]
    cases = []
    k = 0
    for kernel in kernels:
        for stride, dilation in steps:
            for padding in ("same", "valid"):
                size: Any
                if rank == 1:
                    extent = _extent(kernel, dilation)
                    size = SIZES_1D[k % len(SIZES_1D)]
                    if padding == "valid":
                        size = max(size, extent)
                else:
                    (kh, kw), (dh, dw) = _pair(kernel), _pair(dilation)
                    h, w = SIZES_2D[k % len(SIZES_2D)]
                    if h == 1 and (kh != 1 or _pair(stride)[0] != 1):
                        h = 5
                    if padding == "valid":
                        h, w = max(h, _extent(kh, dh)), max(w, _extent(kw, dw))
                    size = (h, w)
                channels = 1 + k % 5
                filters = 1 + k % 2 if depthwise else 1 + (k * 2) % 5
                cases.append(conv_case(rank, depthwise, kernel, stride, dilation, padding, channels, filters,
                                       k % 4 != 3, ACTIVATIONS[k % 3], size))
                k += 1
    if depthwise:  # Keras forbids strides with dilation on Conv layers only
        cases.append(conv_case(rank, True, 3, 2, 2, "same", 2, 1, True, None, 9 if rank == 1 else (9, 7)))
    return cases


def pool_case(kind: str, rank: int, size: int | tuple[int, int], stride: int | tuple[int, int] | None,
              padding: str, channels: int, in_size: int | tuple[int, int], conv: bool, relu: bool) -> Case:
    """A pooling layer on the input or after a 1x1 conv, optionally followed by a ReLU (fused into the pool)."""
    name = f"{kind}Pooling{rank}D"

    def build(layers: Any, x: Any) -> Any:
        if conv:
            x = (layers.Conv1D if rank == 1 else layers.Conv2D)(channels, 1, use_bias=rank == 2 or channels > 1)(x)
        x = getattr(layers, name)(size, strides=stride, padding=padding)(x)
        return layers.ReLU()(x) if relu else x

    shape = (*_pair(in_size), channels) if rank == 2 else (in_size, channels)
    attrs = _label(k=size, s=stride, p=padding, c=channels, in_=in_size, conv=int(conv), relu=int(relu))
    return Case(name, attrs, shape, build)


def pool_grid(kind: str, rank: int) -> list[Case]:
    sizes: list[Any] = [1, 2, 3, 4] if rank == 1 else [1, 2, 3, (2, 3), (3, 1)]
    strides: list[Any] = [None, 1, 2, 3] if rank == 1 else [None, 1, 2, 3, (1, 2)]
    cases = []
    k = 0
    for size in sizes:
        for stride in strides:
            for padding in ("same", "valid"):
                in_size: Any
                if rank == 1:
                    in_size = max(SIZES_1D[k % len(SIZES_1D)], size)
                else:
                    h, w = SIZES_2D[k % 4]
                    kh, kw = _pair(size)
                    in_size = (max(h, kh), max(w, kw))
                cases.append(pool_case(kind, rank, size, stride, padding, 1 + k % 5, in_size, k % 2 == 0,
                                       k % 3 == 1))
                k += 1
    return cases


def global_pool_case(kind: str, rank: int, in_size: int | tuple[int, int], channels: int,
                     keepdims: bool = False) -> Case:
    name = f"Global{kind}Pooling{rank}D"

    def build(layers: Any, x: Any) -> Any:
        x = (layers.Conv1D if rank == 1 else layers.Conv2D)(channels, 3, padding="same")(x)
        return getattr(layers, name)(keepdims=keepdims)(x)

    shape = (*_pair(in_size), 3) if rank == 2 else (in_size, 3)
    return Case(name, _label(in_=in_size, c=channels, keepdims=int(keepdims) if keepdims else None), shape, build)


def global_pool_grid(kind: str, rank: int) -> list[Case]:
    sizes: list[Any] = [1, 2, 7, 10, 33] if rank == 1 else [(1, 1), (1, 7), (3, 5), (6, 6), (9, 11)]
    cases = [global_pool_case(kind, rank, size, 1 + i % 5) for i, size in enumerate(sizes)]
    cases.append(global_pool_case(kind, rank, sizes[2], 4, keepdims=True))
    return cases


def branches(rank: int, kind: str, a: int, b: int) -> Callable[[Any, Any], tuple[Any, Any]]:
    """Two branches from the input named ``small`` and ``big`` (its kernel 5x larger: a different scale)."""

    def make(layers: Any, x: Any) -> tuple[Any, Any]:
        if kind == "dense":
            return layers.Dense(a, name="small")(x), layers.Dense(b, name="big")(x)
        conv = layers.Conv1D if rank == 1 else layers.Conv2D
        return conv(a, 3, padding="same", name="small")(x), conv(b, 1, name="big")(x)

    return make


GAINS = (("big", 5.0),)


def add_case(rank: int, kind: str, relu: bool, shape: tuple[int, ...]) -> Case:
    two = branches(rank, kind, 4, 4)

    def build(layers: Any, x: Any) -> Any:
        y = layers.Add()(list(two(layers, x)))
        return layers.ReLU()(y) if relu else y

    return Case("Add", _label(kind=kind if kind == "dense" else f"conv{rank}d", relu=int(relu), in_=shape),
                shape, build, GAINS)


def residual_case(shape: tuple[int, ...]) -> Case:
    """``x + conv(x)``: the block input and a conv branch of 5x its scale."""
    rank = len(shape) - 1

    def build(layers: Any, x: Any) -> Any:
        conv = layers.Conv1D if rank == 1 else layers.Conv2D
        x = conv(shape[-1], 1, name="small")(x)
        return layers.Add()([x, conv(shape[-1], 3, padding="same", activation="relu", name="big")(x)])

    return Case("Add", _label(kind="residual", in_=shape), shape, build, GAINS)


def add_grid() -> list[Case]:
    return [
        add_case(1, "conv", False, (9, 3)),
        add_case(1, "conv", True, (10, 1)),
        add_case(2, "conv", False, (5, 7, 2)),
        add_case(2, "conv", True, (1, 5, 3)),
        add_case(1, "dense", False, (6,)),
        add_case(1, "dense", True, (1,)),
        residual_case((7, 3)),
        residual_case((5, 3, 4)),
    ]


def merge_case(layer: str, rank: int, kind: str, shape: tuple[int, ...]) -> Case:
    """Subtract, Multiply, Maximum or Minimum of two branches of different scales (SUB, MUL, MAXIMUM, MINIMUM)."""
    two = branches(rank, kind, 4, 4)

    def build(layers: Any, x: Any) -> Any:
        return getattr(layers, layer)()(list(two(layers, x)))

    return Case(layer, _label(kind=kind if kind == "dense" else f"conv{rank}d", in_=shape), shape, build, GAINS)


def merge_grid() -> list[Case]:
    return [merge_case(layer, rank, kind, shape) for layer in ("Subtract", "Multiply", "Maximum", "Minimum")
            for rank, kind, shape in ((1, "dense", (6,)), (1, "conv", (9, 3)), (2, "conv", (5, 7, 2)))]


def rescaling_case(scale: float, offset: float, shape: tuple[int, ...]) -> Case:
    """Rescaling after a layer with a ReLU (at the input the converter folds it into the next layer's weights):
    a MUL and an ADD of constants."""

    def build(layers: Any, x: Any) -> Any:
        y = layers.Dense(4, activation="relu")(x) if len(shape) == 1 else layers.Conv1D(3, 2, activation="relu")(x)
        return layers.Rescaling(scale, offset=offset)(y)

    return Case("Rescaling", _label(scale=scale, offset=offset, in_=shape), shape, build)


def rescaling_grid() -> list[Case]:
    return [rescaling_case(1 / 127.5, -1.0, (6,)), rescaling_case(2.5, 0.0, (7, 2)), rescaling_case(0.1, 0.5, (5,))]


def concat_case(rank: int, kind: str, axis: int, shape: tuple[int, ...], a: int = 3, b: int = 2,
                relu: bool = False) -> Case:
    two = branches(rank, kind, a, b if axis == -1 else a)

    def build(layers: Any, x: Any) -> Any:
        y = layers.Concatenate(axis=axis)(list(two(layers, x)))
        return layers.ReLU()(y) if relu else y

    return Case("Concatenate", _label(kind=kind if kind == "dense" else f"conv{rank}d", axis=axis, in_=shape,
                                      relu=int(relu) if relu else None), shape, build, GAINS)


def concat_grid() -> list[Case]:
    return [
        concat_case(1, "conv", -1, (9, 3)),
        concat_case(1, "conv", 1, (9, 3)),
        concat_case(1, "conv", -1, (7, 1), 2, 3, relu=True),
        concat_case(2, "conv", -1, (5, 7, 2)),
        concat_case(2, "conv", 1, (5, 7, 2)),
        concat_case(2, "conv", 2, (3, 5, 1), relu=True),
        concat_case(1, "dense", -1, (6,)),
        concat_case(1, "dense", -1, (5,), 1, 1),
    ]


def zero_padding_case(rank: int, padding: Any, shape: tuple[int, ...], conv_after: bool) -> Case:
    name = f"ZeroPadding{rank}D"

    def build(layers: Any, x: Any) -> Any:
        conv = layers.Conv1D if rank == 1 else layers.Conv2D
        x = getattr(layers, name)(padding)(conv(3, 1)(x))
        return conv(2, 3)(x) if conv_after else x

    return Case(name, _label(pad=str(padding).replace(" ", ""), in_=shape, conv=int(conv_after)), shape, build)


def zero_padding_grid(rank: int) -> list[Case]:
    if rank == 1:
        return [zero_padding_case(1, p, s, c) for p, s, c in (
            (1, (7, 2), False), ((2, 0), (9, 3), True), ((0, 3), (5, 1), False), ((3, 1), (4, 2), True))]
    return [zero_padding_case(2, p, s, c) for p, s, c in (
        (1, (5, 7, 2), False), (((1, 2), (0, 3)), (5, 5, 1), True), ((2, 0), (3, 4, 2), False),
        (((0, 0), (2, 1)), (1, 7, 3), False))]


def batch_norm_case(base: str, bias: bool, relu: bool, shape: tuple[int, ...]) -> Case:
    def build(layers: Any, x: Any) -> Any:
        if base == "conv1d":
            x = layers.Conv1D(4, 3, use_bias=bias)(x)
        elif base == "conv2d":
            x = layers.Conv2D(3, 3, padding="same", use_bias=bias)(x)
        else:
            x = layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=bias)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if relu else x

    return Case("BatchNormalization", _label(after=base, bias=int(bias), relu=int(relu), in_=shape), shape, build)


def batch_norm_grid() -> list[Case]:
    return [
        batch_norm_case("conv2d", True, False, (5, 7, 2)),
        batch_norm_case("conv2d", False, True, (6, 5, 3)),
        batch_norm_case("conv1d", True, True, (9, 3)),
        batch_norm_case("conv1d", False, False, (8, 1)),
        batch_norm_case("depthwise2d", True, False, (5, 5, 3)),
        batch_norm_case("depthwise2d", False, True, (7, 6, 2)),
    ]


def dense_case(features: int, units: int, bias: bool, activation: str | None) -> Case:
    def build(layers: Any, x: Any) -> Any:
        return layers.Dense(units, use_bias=bias, activation=activation)(x)

    return Case("Dense", _label(in_=features, units=units, bias=int(bias), act=activation or "none"), (features,),
                build)


def dense_grid() -> list[Case]:
    cases = []
    k = 0
    for features in (1, 5, 16):
        for units in (1, 3, 10):
            for bias in (True, False):
                cases.append(dense_case(features, units, bias, ACTIVATIONS[k % 3]))
                k += 1
    return cases


def elementwise_case(op: str, base: str, make: Callable[[Any], Any], attrs: str = "",
                     shape: tuple[int, ...] | None = None) -> Case:
    """An element-wise layer after a dense or conv layer (so its input scale comes from real values)."""

    def build(layers: Any, x: Any) -> Any:
        if base == "dense":
            x = layers.Dense(8)(x)
        elif base == "conv1d":
            x = layers.Conv1D(3, 2)(x)
        else:
            x = layers.Conv2D(3, 2)(x)
        return make(layers)(x)

    default = {"dense": (6,), "conv1d": (9, 2), "conv2d": (5, 4, 2)}[base]
    in_shape = shape or default
    return Case(op, _label(after=base, **({"": attrs} if attrs else {}), in_=in_shape), in_shape, build)


def relu_grid() -> list[Case]:
    return [elementwise_case("ReLU", base, lambda layers: layers.ReLU()) for base in ("dense", "conv1d", "conv2d")]


def relu6_grid() -> list[Case]:
    return [elementwise_case("ReLU6", base, lambda layers: layers.ReLU(max_value=6.0))
            for base in ("dense", "conv1d", "conv2d")]


def leaky_relu_grid() -> list[Case]:
    cases = []
    for i, slope in enumerate((0.01, 0.1, 0.3, 0.5, 0.9)):
        base = ("dense", "conv1d", "conv2d")[i % 3]
        cases.append(elementwise_case("LeakyReLU", base, lambda layers, s=slope: layers.LeakyReLU(negative_slope=s),
                                      f"slope{slope}"))
    return cases


def activation_grid(function: str) -> list[Case]:
    op = f"Activation({function})"
    cases = [elementwise_case(op, base, lambda layers: layers.Activation(function))
             for base in ("dense", "conv1d", "conv2d")]
    # The same function as a Dense layer's activation option.
    cases.append(Case(op, _label(dense_option=function, in_=5), (5,),
                      lambda layers, x: layers.Dense(7, activation=function)(x)))
    return cases


def softmax_grid() -> list[Case]:
    cases = [elementwise_case("Softmax", "dense", lambda layers: layers.Softmax()),
             elementwise_case("Softmax", "conv1d", lambda layers: layers.Softmax()),
             elementwise_case("Softmax", "conv2d", lambda layers: layers.Softmax())]
    cases.append(Case("Softmax", _label(dense_option="softmax", units=10, in_=6), (6,),
                      lambda layers, x: layers.Dense(10, activation="softmax")(x)))
    cases.append(Case("Softmax", _label(units=1, in_=3), (3,),
                      lambda layers, x: layers.Softmax()(layers.Dense(1)(x))))
    return cases


def flatten_grid() -> list[Case]:
    return [
        Case("Flatten", "conv2d,dense", (5, 7, 2), lambda layers, x: layers.Dense(4)(
            layers.Flatten()(layers.Conv2D(3, 3)(x)))),
        Case("Flatten", "conv1d,dense", (9, 2), lambda layers, x: layers.Dense(3)(
            layers.Flatten()(layers.Conv1D(3, 2, strides=2)(x)))),
        Case("Flatten", "conv2d,output", (4, 3, 2), lambda layers, x: layers.Flatten()(
            layers.Conv2D(2, 2, padding="same")(x))),
        Case("Flatten", "maxpool,dense", (6, 6, 1), lambda layers, x: layers.Dense(5)(
            layers.Flatten()(layers.MaxPooling2D(2)(layers.Conv2D(3, 3, padding="same")(x))))),
    ]


def reshape_grid() -> list[Case]:
    return [
        Case("Reshape", "dense,4x3,conv1d", (6,), lambda layers, x: layers.Conv1D(2, 2)(
            layers.Reshape((4, 3))(layers.Dense(12)(x)))),
        Case("Reshape", "dense,3x2x2,conv2d", (5,), lambda layers, x: layers.Conv2D(2, 2)(
            layers.Reshape((3, 2, 2))(layers.Dense(12)(x)))),
        Case("Reshape", "conv2d,35x2,conv1d", (5, 7, 3), lambda layers, x: layers.Conv1D(3, 3)(
            layers.Reshape((35, 2))(layers.Conv2D(2, 1)(x)))),
        Case("Reshape", "conv1d,-1,dense", (9, 2), lambda layers, x: layers.Dense(4)(
            layers.Reshape((-1,))(layers.Conv1D(3, 3)(x)))),
        Case("Reshape", "dense,3x4,output", (7,), lambda layers, x: layers.Reshape((3, 4))(layers.Dense(12)(x))),
    ]


def permute_grid() -> list[Case]:
    return [
        Case("Permute", "conv2d,213,conv2d", (5, 4, 2), lambda layers, x: layers.Conv2D(2, 2)(
            layers.Permute((2, 1, 3))(layers.Conv2D(3, 1)(x)))),
        Case("Permute", "conv1d,21,output", (6, 3), lambda layers, x: layers.Permute((2, 1))(layers.Conv1D(4, 2)(x))),
        Case("Permute", "conv2d,312,dense", (3, 4, 2), lambda layers, x: layers.Dense(3)(layers.Flatten()(
            layers.Permute((3, 1, 2))(layers.Conv2D(3, 1)(x))))),
    ]


def cropping_grid() -> list[Case]:
    return [
        Case("Cropping2D", "conv2d,10x12,conv2d", (6, 7, 2), lambda layers, x: layers.Conv2D(2, 2)(
            layers.Cropping2D(((1, 0), (1, 2)))(layers.Conv2D(3, 1)(x)))),
        Case("Cropping1D", "conv1d,12,dense", (8, 2), lambda layers, x: layers.Dense(3)(layers.Flatten()(
            layers.Cropping1D((1, 2))(layers.Conv1D(3, 2)(x))))),
        Case("Cropping2D", "conv2d,2,output", (5, 5, 1), lambda layers, x: layers.Cropping2D(2)(
            layers.Conv2D(2, 1)(x))),
        Case("Cropping1D", "conv1d,3x0,output", (9, 3), lambda layers, x: layers.Cropping1D((3, 0))(
            layers.Conv1D(2, 3)(x))),
    ]


def prelu_grid() -> list[Case]:
    return [
        Case("PReLU", "conv2d,shared12", (5, 4, 2), lambda layers, x: layers.PReLU(shared_axes=[1, 2])(
            layers.Conv2D(3, 1)(x))),
        Case("PReLU", "dense,full", (6,), lambda layers, x: layers.PReLU()(layers.Dense(5)(x))),
        Case("PReLU", "conv1d,shared1,conv1d", (7, 2), lambda layers, x: layers.Conv1D(2, 2)(
            layers.PReLU(shared_axes=[1])(layers.Conv1D(3, 2)(x)))),
    ]


def unrolled_lstm(layers: Any, units: int, **options: Any) -> Any:
    """Keras's ``LSTM`` as the converter can take it to int8: unrolled (its int8 conversion is retried where
    it leaves float ops, see ``nndsl.importers.keras.CONVERTER_ATTEMPTS``)."""
    return layers.LSTM(units, unroll=True, name="lstm", **options)


def lstm_grid() -> list[Case]:
    """Keras's LSTM unrolled (the converter's per-step ops; ``test_lstm_vs_tflm.py`` has the fused op)."""
    return [
        Case("LSTM", "unrolled,4,last", (5, 3), lambda layers, x: unrolled_lstm(layers, 4)(x)),
        Case("LSTM", "unrolled,3,sequences,dense", (4, 2), lambda layers, x: layers.Dense(2)(layers.Flatten()(
            unrolled_lstm(layers, 3, return_sequences=True)(x)))),
        Case("LSTM", "rolled", (4, 2), lambda layers, x: layers.LSTM(3, name="lstm")(x), error="unroll=True"),
    ]


def full_grid() -> list[Case]:
    cases: list[Case] = []
    for rank in (1, 2):
        cases += conv_grid(rank, depthwise=False)
        cases += conv_grid(rank, depthwise=True)
        cases += pool_grid("Max", rank)
        cases += pool_grid("Average", rank)
        cases += global_pool_grid("Average", rank)
        cases += global_pool_grid("Max", rank)
        cases += zero_padding_grid(rank)
    cases += add_grid() + merge_grid() + rescaling_grid() + concat_grid() + batch_norm_grid() + dense_grid()
    cases += relu_grid() + relu6_grid() + leaky_relu_grid()
    for function in ("tanh", "sigmoid", "hard_swish"):
        cases += activation_grid(function)
    cases += softmax_grid() + flatten_grid() + reshape_grid() + permute_grid()
    cases += cropping_grid() + prelu_grid() + lstm_grid()
    return cases


# The default run: one or two cases per op, chosen for what they stress (even kernels with same padding,
# strides, dilation, odd sizes, both fused activations, branches of different scale).
QUICK: list[Case] = [
    conv_case(1, False, 4, 2, 1, "same", 3, 5, True, "relu", 11),
    conv_case(1, False, 3, 1, 2, "valid", 2, 4, False, None, 9),
    conv_case(2, False, (2, 3), (2, 1), 1, "same", 3, 4, True, "relu6", (7, 5)),
    conv_case(2, False, 3, 1, 2, "valid", 1, 2, False, "relu", (9, 7)),
    conv_case(1, True, 3, 2, 1, "same", 3, 2, True, None, 10),
    conv_case(2, True, 3, 1, 2, "same", 2, 2, False, "relu6", (7, 5)),
    conv_case(2, True, (2, 3), 3, 1, "valid", 5, 1, True, "relu", (9, 7)),
    conv_case(1, False, 3, 1, 1, "same", 2, 1, True, None, 7),  # the bias arrives as ADD(constant [1, 1, 1])
    conv_case(2, True, 3, 2, 2, "same", 2, 1, True, None, (9, 7)),  # STRIDED_DILATION: the importer's error
    pool_case("Max", 1, 3, 2, "same", 3, 10, True, False),
    pool_case("Max", 2, (2, 3), 2, "valid", 2, (7, 5), False, True),
    pool_case("Average", 1, 2, 3, "valid", 2, 11, True, True),
    pool_case("Average", 2, 3, 2, "same", 3, (7, 5), True, False),
    global_pool_case("Average", 1, 10, 3),
    global_pool_case("Average", 2, (3, 5), 2),
    global_pool_case("Max", 1, 7, 4),
    global_pool_case("Max", 2, (6, 6), 3),
    add_case(2, "conv", True, (5, 7, 2)),
    add_case(1, "dense", False, (6,)),
    merge_case("Subtract", 1, "conv", (9, 3)),
    merge_case("Multiply", 2, "conv", (5, 7, 2)),
    merge_case("Maximum", 1, "dense", (6,)),
    merge_case("Minimum", 1, "conv", (9, 3)),
    rescaling_case(1 / 127.5, -1.0, (6,)),
    concat_case(1, "conv", -1, (9, 3)),
    concat_case(2, "conv", 1, (5, 7, 2)),
    zero_padding_case(1, (2, 0), (9, 3), True),
    zero_padding_case(2, ((1, 2), (0, 3)), (5, 5, 1), True),
    batch_norm_case("conv2d", False, True, (6, 5, 3)),
    dense_case(16, 10, True, "relu6"),
    dense_case(5, 3, False, None),
    elementwise_case("ReLU", "conv1d", lambda layers: layers.ReLU()),
    elementwise_case("ReLU6", "conv1d", lambda layers: layers.ReLU(max_value=6.0)),
    elementwise_case("LeakyReLU", "dense", lambda layers: layers.LeakyReLU(negative_slope=0.1), "slope0.1"),
    elementwise_case("Activation(tanh)", "dense", lambda layers: layers.Activation("tanh")),
    elementwise_case("Activation(sigmoid)", "conv1d", lambda layers: layers.Activation("sigmoid")),
    elementwise_case("Activation(hard_swish)", "dense", lambda layers: layers.Activation("hard_swish")),
    elementwise_case("Softmax", "dense", lambda layers: layers.Softmax()),
    flatten_grid()[0],
    reshape_grid()[2],
    permute_grid()[0],
    cropping_grid()[0],
    cropping_grid()[1],
    prelu_grid()[0],
    lstm_grid()[0],
    lstm_grid()[2],
]
FULL: list[Case] = full_grid()


def _check_unique(cases: list[Case]) -> None:
    ids = [case.id for case in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise AssertionError(f"duplicate case ids: {sorted(duplicates)}")


_check_unique(QUICK)
_check_unique(FULL)
QUICK_IDS = {case.id for case in QUICK}
SLOW = [case for case in FULL if case.id not in QUICK_IDS]  # the default run already covers QUICK


# --------------------------------------------------------------------------
# Building, converting, running
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tf() -> Any:
    """TensorFlow (and tflite-micro), imported only for these tests, without TensorFlow's start-up logging."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed")
    return tensorflow()


def random_weights(model: Any, rng: np.random.Generator, gains: dict[str, float]) -> None:
    """Every layer's weights drawn from ``rng``: kernels ~ N(0, gain^2 / fan-in), random batch-norm statistics."""
    for layer in model.layers:
        gain = gains.get(layer.name, 1.0)
        depthwise = "Depthwise" in type(layer).__name__
        values = []
        for variable in layer.weights:
            shape = tuple(int(d) for d in variable.shape)
            kind = variable.name
            if kind in ("kernel", "depthwise_kernel", "recurrent_kernel"):  # an LSTM's too
                fan_in = math.prod(shape[:-2] if depthwise else shape[:-1])
                value = rng.normal(0.0, gain / math.sqrt(fan_in), shape)
            elif kind == "bias":
                value = rng.normal(0.0, 0.3 * gain, shape)
            elif kind == "gamma":
                value = rng.uniform(0.5, 1.5, shape)
            elif kind == "beta":
                value = rng.normal(0.0, 0.3, shape)
            elif kind == "moving_mean":
                value = rng.normal(0.0, 0.5, shape)
            elif kind == "moving_variance":
                value = rng.uniform(0.3, 2.0, shape)
            elif kind == "alpha":  # PReLU's slopes, negative ones too
                value = rng.uniform(-0.5, 1.0, shape) * gain
            else:
                raise AssertionError(f"no random values for weight {variable.path}")
            values.append(value.astype(np.float32))
        if values:
            layer.set_weights(values)


def keras_model(tf: Any, case: Case) -> Any:
    keras = tf.keras
    inputs = keras.Input(case.shape)
    model = keras.Model(inputs, case.build(keras.layers, inputs))
    random_weights(model, np.random.default_rng(case.seed), dict(case.gains))
    return model


def calibration(case: Case) -> np.ndarray:
    """The representative dataset: random real inputs, a little off-centre (non-zero input zero points)."""
    rng = np.random.default_rng(case.seed + 1)
    return rng.normal(0.3, 1.0, size=(CALIBRATION_INPUTS, *case.shape)).astype(np.float32)


def run_tflite(tf: Any, flatbuffer: bytes, inputs: np.ndarray, resolver: Any) -> np.ndarray:
    with quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, experimental_op_resolver_type=resolver,
                                          num_threads=1)
        interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    result = interpreter.get_output_details()[0]["index"]
    outputs = []
    for x in inputs:
        interpreter.set_tensor(source, x[np.newaxis])
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_tensor(result)[0]))
    return np.stack(outputs)


def load_imported(imported: Any, directory: Path) -> nndsl.Model:
    nn_path, _ = imported.write(directory / "model.nn")
    return nndsl.load(nn_path)


def assert_exact(got: np.ndarray, expected: np.ndarray, what: str, nn_text: str, dtype: type = np.int8) -> None:
    """Zero differing values; otherwise the count, the first difference and the `.nn` text."""
    assert got.shape == expected.shape, f"{what}: shapes {got.shape} and {expected.shape}"
    assert got.dtype == expected.dtype == dtype, f"{what}: dtypes {got.dtype} and {expected.dtype}"
    if not np.array_equal(got, expected):
        where = np.argwhere(got != expected)[0]
        pytest.fail(f"{what}: {np.count_nonzero(got != expected)} of {got.size} bytes differ; first at "
                    f"{tuple(where)}: {got[tuple(where)]} vs {expected[tuple(where)]}\n{nn_text}")


def assert_close(got: np.ndarray, expected: np.ndarray, what: str, nn_text: str) -> None:
    """Within FLOAT_TOLERANCE of each row's largest |expected| value.

    A row whose largest value is below the batch's median row maximum is held to that median instead: with
    one or a few outputs, a sum that nearly cancels has rounding errors of the size of its terms, not of itself.
    """
    assert got.shape == expected.shape, f"{what}: shapes {got.shape} and {expected.shape}"
    rows_got, rows_expected = got.reshape(len(got), -1), expected.reshape(len(expected), -1)
    row_max = np.max(np.abs(rows_expected.astype(np.float64)), axis=1, keepdims=True)
    scale = np.maximum(row_max, np.median(row_max))
    error = np.abs(rows_got.astype(np.float64) - rows_expected.astype(np.float64))
    bad = error > FLOAT_TOLERANCE * np.maximum(scale, np.finfo(np.float32).tiny)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        relative = float(np.max(error[row]) / max(float(scale[row, 0]), np.finfo(np.float32).tiny))
        pytest.fail(f"{what}: {int(bad.any(axis=1).sum())} of {len(got)} rows differ by more than "
                    f"{FLOAT_TOLERANCE} relative; row {row}: {relative:.3g}\n{nn_text}")


# --------------------------------------------------------------------------
# The TF Lite vs TFLM report
# --------------------------------------------------------------------------

REPORT_COLUMNS = ("reference", "optimised")


@dataclass
class Report:
    """Per op: models, bytes compared, and how many of them TF Lite's interpreter gets differently from TFLM."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, op: str, size: int, differing: dict[str, np.ndarray]) -> None:
        row = self.rows.setdefault(op, {"models": 0, "bytes": 0}
                                   | {f"{c}_{k}": 0 for c in REPORT_COLUMNS for k in ("bytes", "models")})
        row["models"] += 1
        row["bytes"] += size
        for column, mask in differing.items():
            count = int(np.count_nonzero(mask))
            row[f"{column}_bytes"] += count
            row[f"{column}_models"] += int(count > 0)

    def merge(self, other: dict[str, dict[str, int]]) -> None:
        for op, row in other.items():
            mine = self.rows.setdefault(op, dict.fromkeys(row, 0))
            for key, value in row.items():
                mine[key] += value

    def text(self, title: str) -> str:
        lines = [title,
                 "TF Lite's interpreter vs TFLM (information, not a failure): differing bytes / bytes compared "
                 "(models with a difference / models)",
                 f"{'op':<24} {'reference kernels (BUILTIN_REF)':>36} {'default optimised kernels':>36}"]
        total = dict.fromkeys(next(iter(self.rows.values()), {}), 0)
        for op in sorted(self.rows):
            row = self.rows[op]
            for key, value in row.items():
                total[key] += value
            lines.append(self._line(op, row))
        if self.rows:
            lines.append(self._line("total", total))
        return "\n".join(lines)

    @staticmethod
    def _line(op: str, row: dict[str, int]) -> str:
        cells = [f"{row[f'{c}_bytes']}/{row['bytes']} ({row[f'{c}_models']}/{row['models']})"
                 for c in REPORT_COLUMNS]
        return f"{op:<24} {cells[0]:>36} {cells[1]:>36}"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    """Collects the counts; prints them (to stderr, which pytest-xdist workers pass through with ``-s``)."""
    collected = Report()
    yield collected
    if not collected.rows:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        print("\n" + collected.text("TF Lite vs TFLM, per op"), file=sys.stderr)
        return
    # Under xdist, every worker leaves its part in the session's shared temporary folder; each prints what
    # is there, so the last one to finish prints the whole run.
    shared = tmp_path_factory.getbasetemp().parent / "tflite_vs_tflm"
    shared.mkdir(exist_ok=True)
    part = shared / f"{worker}.json"
    part.with_suffix(".tmp").write_text(json.dumps(collected.rows))
    part.with_suffix(".tmp").replace(part)
    merged = Report()
    parts = sorted(shared.glob("*.json"))
    for path in parts:
        merged.merge(json.loads(path.read_text()))
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "?")
    done = "all workers" if str(len(parts)) == workers else f"{len(parts)} of {workers} workers so far"
    print("\n" + merged.text(f"TF Lite vs TFLM, per op ({done}: {', '.join(p.stem for p in parts)})"),
          file=sys.stderr)


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------


def check_int8(tf: Any, case: Case, tmp_path: Path, report: Report) -> None:
    from nndsl.importers.keras import import_keras_model

    model = keras_model(tf, case)
    if case.error is not None:
        with pytest.raises(NNError, match=case.error):
            import_keras_model(model, case.id, calibration=calibration(case), name="op")
        return
    imported = import_keras_model(model, case.id, calibration=calibration(case), name="op")
    assert imported.tflite is not None
    compiled = load_imported(imported, tmp_path)
    nn_text = (tmp_path / "model.nn").read_text()
    rng = np.random.default_rng(case.seed + 2)
    inputs = rng.integers(-128, 128, size=(INT8_INPUTS, *compiled.graph.input.type.shape), dtype=np.int8)

    reference = run_tflm_each(imported.tflite, inputs)
    ours = compiled.run(inputs)
    assert reference.size == ours.size, f"TFLM output {reference.shape[1:]}, nndsl {ours.shape[1:]}"
    reference = reference.reshape(ours.shape)
    # Exact: zero differing bytes between TFLM's reference kernels and the NumPy backend...
    assert_exact(ours, reference, "NumPy backend vs TFLM", nn_text)
    # ...and between the compiled C and the NumPy backend.
    assert_exact(run_in_c(compiled, inputs, work_dir=tmp_path / "c"), ours, "C vs NumPy backend", nn_text)

    resolvers = tf.lite.experimental.OpResolverType
    differing = {
        column: run_tflite(tf, imported.tflite, inputs, resolver).reshape(ours.shape) != reference
        for column, resolver in zip(REPORT_COLUMNS, (resolvers.BUILTIN_REF, resolvers.AUTO), strict=True)
    }
    report.add(case.op, reference.size, differing)


def check_int16(tf: Any, case: Case, tmp_path: Path) -> None:
    """The 16x8 scheme: int16 activations, int8 weights; exact against TFLM, and C against NumPy."""
    from nndsl.importers.keras import import_keras_model

    imported = import_keras_model(keras_model(tf, case), case.id, calibration=calibration(case), int16=True,
                                  name="op")
    assert imported.tflite is not None
    compiled = load_imported(imported, tmp_path)
    nn_text = (tmp_path / "model.nn").read_text()
    assert compiled.graph.dtype.value == "i16"
    rng = np.random.default_rng(case.seed + 4)
    inputs = rng.integers(-32768, 32768, size=(INT8_INPUTS, *compiled.graph.input.type.shape)).astype(np.int16)
    reference = run_tflm_each(imported.tflite, inputs)
    ours = compiled.run(inputs)
    reference = reference.reshape(ours.shape)
    # Exact, zero differing values, as for int8.
    assert_exact(ours, reference, "NumPy backend vs TFLM (16x8)", nn_text, np.int16)
    c_outputs = run_in_c(compiled, inputs, work_dir=tmp_path / "c")
    assert_exact(c_outputs, ours, "C vs NumPy backend (16x8)", nn_text, np.int16)


# Not in the 16x8 comparison: TensorFlow Lite Micro has no int16 kernel for hard swish and for REDUCE_MAX
# (global max pooling). (For a concatenation the 16x8 converter rescales inputs with a QUANTIZE op.)
NO_16X8_KERNEL = ("hard_swish", "GlobalMaxPooling", "PReLU")
QUICK_16X8 = [case for case in QUICK if case.error is None and not any(op in case.id for op in NO_16X8_KERNEL)]


def check_float(tf: Any, case: Case, tmp_path: Path) -> None:
    from nndsl.importers.keras import import_keras_model

    model = keras_model(tf, case)
    if case.error is not None:
        with pytest.raises(NNError, match=case.error):
            import_keras_model(model, case.id, name="op")
        return
    compiled = load_imported(import_keras_model(model, case.id, name="op"), tmp_path)
    nn_text = (tmp_path / "model.nn").read_text()
    rng = np.random.default_rng(case.seed + 3)
    inputs = rng.normal(0.3, 1.5, size=(FLOAT_INPUTS, *case.shape)).astype(np.float32)
    expected = np.asarray(model.predict(inputs, verbose=0, batch_size=FLOAT_INPUTS))
    ours = compiled.run(inputs)
    assert ours.dtype == np.float32
    assert_close(ours, expected.reshape(ours.shape), "NumPy backend vs Keras", nn_text)
    assert_close(run_in_c(compiled, inputs, work_dir=tmp_path / "c"), ours, "C vs NumPy backend", nn_text)


@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.id)
def test_int8_equals_tflm(tf: Any, case: Case, tmp_path: Path, report: Report) -> None:
    check_int8(tf, case, tmp_path, report)


@pytest.mark.parametrize("case", QUICK_16X8, ids=lambda case: case.id)
def test_int16_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_int16(tf, case, tmp_path)


@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.id)
def test_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=lambda case: case.id)
def test_int8_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path, report: Report) -> None:
    check_int8(tf, case, tmp_path, report)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=lambda case: case.id)
def test_float_close_to_keras_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


def test_grids_cover_every_supported_layer() -> None:
    """Every layer the Keras importer accepts (bar pass-throughs) has cases in both grids."""
    from nndsl.importers.keras import LAYER_CHECKS

    untested = {"InputLayer", "Dropout", "Identity", "Activation", "ReLU"}  # Activation/ReLU: named by function
    untested.add("GRU")  # no TFLM kernel: read layer by layer, compared with Keras in tests/test_gru.py
    layers = set(LAYER_CHECKS) - untested
    for cases in (QUICK, FULL):
        ops = {case.op for case in cases}
        assert layers <= ops, sorted(layers - ops)
        assert {f"Activation({f})" for f in ("tanh", "sigmoid", "hard_swish")} | {"ReLU", "ReLU6"} <= ops
