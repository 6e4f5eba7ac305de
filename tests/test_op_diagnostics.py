"""Malformed uses of the convolution, pooling, shape and activation ops: located errors, in words.

Every case is a small model (``net``: a header whose line 3 is the input,
then its layers from line 4 on) with weights written to ``tmp_path`` by NumPy;
the check is the exact
``path:line:col`` of the first error (the column of ``anchor`` on that line)
and the words and numbers its message must contain. The positive tests check
that valid uses type-check with TensorFlow's output shapes and run; a subset
of the errors also goes through ``python -m nndsl check``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

import nndsl
from nndsl import ir

Arrays = dict[str, np.ndarray]

# -- models -----------------------------------------------------------------------------------------

I8_2D = "input x : i8[8, 8, 3] @ scale(0.02) zero(-1)"
I8_1D = "input x : i8[16, 4] @ scale(0.02) zero(-1)"
I8_VEC = "input x : i8[64] @ scale(0.02) zero(-1)"
F32_2D = "input x : f32[8, 8, 3]"
F32_1D = "input x : f32[16, 4]"
F32_VEC = "input x : f32[64]"

Q = ": i8 @ scale(0.05) zero(0)"  # an int8 output type for layers that need one


def net(input_decl: str, *layers: str) -> str:
    """A network with ``input_decl`` on line 3 and ``layers`` from line 4 on."""
    return "\n".join(["network t", 'weights "w.npz"', input_decl, *layers]) + "\n"


def i8_kernel(shape: tuple[int, ...], channels: int, name: str = "k", scales: int | None = None,
              bias: str | None = "b") -> Arrays:
    """An int8 kernel with per-channel scales (``scales`` of them) and an int32 bias of ``channels``."""
    rng = np.random.default_rng(sum(shape) + channels)
    arrays: Arrays = {
        name: rng.integers(-127, 128, shape, dtype=np.int8),
        f"{name}.scale": np.full(channels if scales is None else scales, 0.01, np.float32),
    }
    if bias is not None:
        arrays[bias] = rng.integers(-100, 100, channels, dtype=np.int32)
    return arrays


def f32_kernel(shape: tuple[int, ...], channels: int, name: str = "k", bias: str | None = "b") -> Arrays:
    rng = np.random.default_rng(sum(shape) + channels)
    arrays: Arrays = {name: rng.normal(0, 0.3, shape).astype(np.float32)}
    if bias is not None:
        arrays[bias] = rng.normal(0, 0.1, channels).astype(np.float32)
    return arrays


def bn_params(channels: int, prefix: str = "bn", **changes: np.ndarray) -> Arrays:
    rng = np.random.default_rng(channels)
    arrays: Arrays = {
        f"{prefix}.gamma": rng.uniform(0.5, 1.5, channels).astype(np.float32),
        f"{prefix}.beta": rng.normal(0, 0.1, channels).astype(np.float32),
        f"{prefix}.mean": rng.normal(0, 0.1, channels).astype(np.float32),
        f"{prefix}.var": rng.uniform(0.5, 1.5, channels).astype(np.float32),
    }
    arrays.update({f"{prefix}.{key}": value for key, value in changes.items()})
    return arrays


def merged(*parts: Arrays) -> Arrays:
    out: Arrays = {}
    for part in parts:
        out.update(part)
    return out


BN_ARGS = "bn.gamma, bn.beta, bn.mean, bn.var"


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    line: int
    anchor: str  # text on that line where the error points (it must occur there once)
    words: tuple[str, ...]
    weights: Arrays = field(default_factory=dict)

    @property
    def col(self) -> int:
        text = self.source.splitlines()[self.line - 1]
        assert text.count(self.anchor) == 1, f"{self.anchor!r} occurs {text.count(self.anchor)} times in {text!r}"
        return text.index(self.anchor) + 1


CASES = [
    # -- convolutions: window against input ---------------------------------------------------------
    Case("conv2d-kernel-wider-than-input",
         net("input x : i8[4, 6, 3] @ scale(0.02) zero(-1)", f"y = conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("conv2d kernel 'k' is wider than its input on axis 0", "5 > 4", "'x'", "[4, 6, 3]", "padding valid"),
         i8_kernel((5, 5, 3, 4), 4)),
    Case("conv2d-dilated-kernel-wider-than-input",
         net(I8_2D, f"y = conv2d(x, k, b, dilation=4) {Q}", "output y"),
         4, "k,", ("conv2d kernel 'k'", "axis 0", "9 (3 dilated by 4) > 8", "[8, 8, 3]", "padding valid"),
         i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-dilated-on-one-axis",
         net(I8_2D, f"y = conv2d(x, k, b, dilation=(1, 3)) {Q}", "output y"),
         4, "k,", ("axis 1", "10 (4 dilated by 3) > 8"),
         i8_kernel((2, 4, 3, 4), 4)),
    Case("conv1d-kernel-wider-than-input",
         net(I8_1D, f"y = conv1d(x, k, b, stride=2) {Q}", "output y"),
         4, "k,", ("conv1d kernel 'k'", "axis 0", "17 > 16", "[16, 4]"),
         i8_kernel((17, 4, 8), 8)),
    Case("depthwise-conv1d-dilated-wider",
         net(I8_1D, f"y = depthwise_conv1d(x, k, b, dilation=8) {Q}", "output y"),
         4, "k,", ("depthwise_conv1d kernel 'k'", "17 (3 dilated by 8) > 16"),
         i8_kernel((3, 4, 1), 4)),
    # -- convolutions: kernel layout ------------------------------------------------------------------
    Case("conv2d-kernel-input-channels",
         net(I8_2D, f"y = conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("conv2d kernel 'k' [3, 3, 2, 4]", "2 input channels", "'x' has 3", "[8, 8, 3]"),
         i8_kernel((3, 3, 2, 4), 4)),
    Case("depthwise-conv2d-kernel-input-channels",
         net(I8_2D, f"y = depthwise_conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("depthwise_conv2d kernel 'k' [3, 3, 4, 1]", "4 input channels", "'x' has 3"),
         i8_kernel((3, 3, 4, 1), 4)),
    Case("conv1d-kernel-input-channels",
         net(I8_1D, f"y = conv1d(x, k, b) {Q}", "output y"),
         4, "k,", ("conv1d kernel 'k' [3, 3, 8]", "3 input channels", "'x' has 4"),
         i8_kernel((3, 3, 8), 8)),
    Case("conv2d-kernel-rank",
         net(I8_2D, f"y = conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("conv2d kernel 'k' must be [KH, KW, C, O]", "got shape [3, 3, 4]"),
         i8_kernel((3, 3, 4), 4)),
    Case("conv1d-kernel-rank",
         net(I8_1D, f"y = conv1d(x, k, b) {Q}", "output y"),
         4, "k,", ("conv1d kernel 'k' must be [K, C, O]", "got shape [3, 3, 4, 8]"),
         i8_kernel((3, 3, 4, 8), 8)),
    Case("depthwise-conv2d-kernel-rank",
         net(I8_2D, f"y = depthwise_conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("depthwise_conv2d kernel 'k' must be [KH, KW, C, M]", "got shape [3, 3]"),
         i8_kernel((3, 3), 3)),
    Case("depthwise-conv1d-kernel-rank",
         net(I8_1D, f"y = depthwise_conv1d(x, k, b) {Q}", "output y"),
         4, "k,", ("depthwise_conv1d kernel 'k' must be [K, C, M]", "got shape [3, 4]"),
         i8_kernel((3, 4), 4)),
    Case("conv1d-on-2d-input",
         net(I8_2D, f"y = conv1d(x, k, b) {Q}", "output y"),
         4, "conv1d", ("conv1d takes a [W, C] input", "'x' has shape [8, 8, 3]", "conv2d"),
         i8_kernel((3, 3, 4), 4)),
    Case("conv2d-on-1d-input",
         net(I8_1D, f"y = conv2d(x, k, b) {Q}", "output y"),
         4, "conv2d", ("conv2d takes a [H, W, C] input", "'x' has shape [16, 4]", "conv1d"),
         i8_kernel((3, 3, 4, 4), 4)),
    Case("depthwise-conv2d-on-vector",
         net(I8_VEC, f"y = depthwise_conv2d(x, k, b) {Q}", "output y"),
         4, "depthwise_conv2d", ("depthwise_conv2d takes a [H, W, C] input", "'x' has shape [64]"),
         i8_kernel((3, 3, 64, 1), 64)),
    # -- convolutions: weights --------------------------------------------------------------------------
    Case("depthwise-conv2d-scale-count",
         net(I8_2D, f"y = depthwise_conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("'k.scale' has 3 values", "expected 1 or 6", "C x M = 3 x 2"),
         i8_kernel((3, 3, 3, 2), 6, scales=3)),
    Case("depthwise-conv1d-scale-count",
         net(I8_1D, f"y = depthwise_conv1d(x, k, b) {Q}", "output y"),
         4, "k,", ("'k.scale' has 2 values", "expected 1 or 12", "C x M = 4 x 3"),
         i8_kernel((3, 4, 3), 12, scales=2)),
    Case("conv2d-scale-count",
         net(I8_2D, f"y = conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("'k.scale' has 3 values", "expected 1 or 4"),
         i8_kernel((3, 3, 3, 4), 4, scales=3)),
    Case("depthwise-conv2d-bias-length",
         net(I8_2D, f"y = depthwise_conv2d(x, k, b) {Q}", "output y"),
         4, "b)", ("depthwise_conv2d bias 'b' has shape [3], expected [6]",),
         merged(i8_kernel((3, 3, 3, 2), 6), {"b": np.zeros(3, np.int32)})),
    Case("conv2d-float-kernel-in-int8-network",
         net(I8_2D, f"y = conv2d(x, k, b) {Q}", "output y"),
         4, "k,", ("conv2d kernel 'k' is float32, expected int8",),
         merged(i8_kernel((3, 3, 3, 4), 4), {"k": np.zeros((3, 3, 3, 4), np.float32)})),
    Case("conv2d-int8-without-output-type",
         net(I8_2D, "y = conv2d(x, k, b)", "output y"),
         4, "y", ("'y' is computed in i8", "declare its type"),
         i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-without-kernel",
         net(I8_2D, f"y = conv2d(x) {Q}", "output y"),
         4, "conv2d", ("'conv2d' takes 2 to 3 arguments, got 1", "conv2d(x, kernel, [bias]")),
    # -- convolutions: attributes -----------------------------------------------------------------------
    Case("conv2d-stride-zero",
         net(I8_2D, f"y = conv2d(x, k, b, stride=0) {Q}", "output y"),
         4, "stride", ("conv2d stride", ">= 1", "got 0"), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-stride-three-values",
         net(I8_2D, f"y = conv2d(x, k, b, stride=(1, 2, 2)) {Q}", "output y"),
         4, "stride", ("conv2d stride has 3 values, expected 1 or 2",), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv1d-stride-two-values",
         net(I8_1D, f"y = conv1d(x, k, b, stride=(2, 2)) {Q}", "output y"),
         4, "stride", ("conv1d stride has 2 values, expected 1 (one per spatial axis)",), i8_kernel((3, 4, 8), 8)),
    Case("conv2d-stride-fraction",
         net(I8_2D, f"y = conv2d(x, k, b, stride=1.5) {Q}", "output y"),
         4, "stride", ("conv2d stride", "whole numbers", "1.5"), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-dilation-zero",
         net(I8_2D, f"y = conv2d(x, k, b, dilation=(1, 0)) {Q}", "output y"),
         4, "dilation", ("conv2d dilation", ">= 1", "(1, 0)"), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-padding-full",
         net(I8_2D, f"y = conv2d(x, k, b, padding=full) {Q}", "output y"),
         4, "padding", ("conv2d padding must be one of valid, same", "got 'full'"), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-padding-number",
         net(I8_2D, f"y = conv2d(x, k, b, padding=1) {Q}", "output y"),
         4, "padding", ("conv2d padding must be one of valid, same", "got 1"), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-unknown-attribute",
         net(I8_2D, f"y = conv2d(x, k, b, strides=2) {Q}", "output y"),
         4, "strides", ("'conv2d' has no attribute 'strides'", "stride, dilation, padding"),
         i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-attribute-twice",
         net(I8_2D, f"y = conv2d(x, k, b, stride=1, stride=2) {Q}", "output y"),
         4, "stride=2", ("attribute 'stride' given twice",), i8_kernel((3, 3, 3, 4), 4)),
    Case("conv2d-unknown-activation",
         net(I8_2D, f"y = conv2d(x, k, b) -> sigmoid {Q}", "output y"),
         4, "sigmoid", ("unknown activation 'sigmoid'", "relu, relu6"), i8_kernel((3, 3, 3, 4), 4)),
    # -- pools ------------------------------------------------------------------------------------------
    Case("max-pool-size-larger-than-input",
         net("input x : i8[8, 4, 3] @ scale(0.02) zero(-1)", "y = max_pool(x, size=5)", "output y"),
         4, "size", ("max_pool size is wider than its input on axis 1", "5 > 4", "'x'", "[8, 4, 3]", "padding valid")),
    Case("avg-pool-1d-size-larger-than-input",
         net(I8_1D, "y = avg_pool(x, size=20, stride=1)", "output y"),
         4, "size", ("avg_pool size is wider than its input on axis 0", "20 > 16", "[16, 4]")),
    Case("max-pool-on-vector",
         net(I8_VEC, "y = max_pool(x, size=2)", "output y"),
         4, "max_pool", ("max_pool takes a [W, C] or [H, W, C] input", "'x' has shape [64]")),
    Case("avg-pool-on-rank-4",
         net("input x : f32[2, 4, 4, 3]", "y = avg_pool(x, size=2)", "output y"),
         4, "avg_pool", ("avg_pool takes a [W, C] or [H, W, C] input", "[2, 4, 4, 3]")),
    Case("max-pool-without-size",
         net(I8_2D, "y = max_pool(x, stride=2)", "output y"),
         4, "max_pool", ("'max_pool' needs 'size=...'", "max_pool(x, size=...")),
    Case("max-pool-size-three-values",
         net(I8_2D, "y = max_pool(x, size=(2, 2, 2))", "output y"),
         4, "size", ("max_pool size has 3 values, expected 1 or 2",)),
    Case("avg-pool-stride-zero",
         net(I8_2D, "y = avg_pool(x, size=2, stride=0)", "output y"),
         4, "stride", ("avg_pool stride", ">= 1", "got 0")),
    Case("max-pool-padding-choice",
         net(I8_2D, "y = max_pool(x, size=2, padding=causal)", "output y"),
         4, "padding", ("max_pool padding must be one of valid, same", "'causal'")),
    Case("max-pool-int8-requantised",
         net(I8_2D, f"y = max_pool(x, size=2) {Q}", "output y"),
         4, "i8 @", ("max_pool keeps its input's quantisation", "scale(0.02) zero(-1)",
                     "declared scale(0.05) zero(0)")),
    Case("avg-pool-int8-requantised",
         net(I8_1D, f"y = avg_pool(x, size=2) {Q}", "output y"),
         4, "i8 @", ("avg_pool keeps its input's quantisation", "scale(0.02) zero(-1)")),
    Case("max-pool-dilation",
         net(I8_2D, "y = max_pool(x, size=2, dilation=2)", "output y"),
         4, "dilation", ("'max_pool' has no attribute 'dilation'", "size, stride, padding")),
    Case("global-avg-pool-on-vector",
         net(I8_VEC, "y = global_avg_pool(x)", "output y"),
         4, "global_avg_pool", ("global_avg_pool takes positions and channels", "'x' has shape [64]")),
    Case("global-max-pool-on-vector",
         net(F32_VEC, "y = global_max_pool(x)", "output y"),
         4, "global_max_pool", ("global_max_pool takes positions and channels", "[64]")),
    Case("global-max-pool-int8-requantised",
         net(I8_2D, f"y = global_max_pool(x) {Q}", "output y"),
         4, "i8 @", ("global_max_pool keeps its input's quantisation", "scale(0.02) zero(-1)")),
    Case("global-avg-pool-with-size",
         net(I8_2D, "y = global_avg_pool(x, size=2)", "output y"),
         4, "size", ("'global_avg_pool' has no attribute 'size'", "attributes: none")),
    Case("global-avg-pool-int8-output-scale-unrepresentable",
         net(I8_2D, "y = global_avg_pool(x) : i8 @ scale(1e-15) zero(0)", "output y"),
         4, "global_avg_pool", ("int8 global_avg_pool of 'y'", "output scale 1e-15", "input scale 0.02", "30 bits")),
    # -- add --------------------------------------------------------------------------------------------
    Case("add-shape-mismatch",
         net(I8_2D, f"y = conv2d(x, k, b, padding=same) {Q}", f"s = add(x, y) {Q}", "output s"),
         5, "add", ("add cannot broadcast 'x' [8, 8, 3] with 'y' [8, 8, 4]", "equal or 1"),
         i8_kernel((3, 3, 3, 4), 4)),
    Case("add-rank-mismatch",
         net(F32_1D, "f = flatten(x)", "s = add(x, f)", "output s"),
         5, "add", ("'x' [16, 4]", "'f' [64]")),
    Case("add-int8-without-output-type",
         net(I8_2D, "r = relu(x)", "s = add(x, r)", "output s"),
         5, "s", ("'s' is computed in i8", "declare its type")),
    Case("add-one-input",
         net(I8_2D, f"s = add(x) {Q}", "output s"),
         4, "add", ("'add' takes 2 arguments, got 1",)),
    Case("add-int8-output-scale-unrepresentable",
         net(I8_2D, "r = relu(x)", "s = add(x, r) : i8 @ scale(1e-9) zero(0)", "output s"),
         5, "add", ("int8 add of 's'", "output scale 1e-09", "2 x the larger input scale / 2^20 = 3.8147e-08")),
    # -- binary ops with constants and broadcasting ------------------------------------------------------
    Case("sub-constant-does-not-broadcast",
         net(F32_2D, "s = sub(x, c)", "output s"),
         4, "sub", ("sub cannot broadcast 'x' [8, 8, 3] with 'c' [2]",), {"c": np.ones(2, np.float32)}),
    Case("mul-constants-only",
         net(F32_VEC, "m = mul(c, 2.0)", "output m"),
         4, "mul", ("'mul' needs a computed tensor among its operands",), {"c": np.ones(2, np.float32)}),
    Case("mul-number-in-dense",
         net(F32_VEC, "d = dense(x, 0.5)", "output d"),
         4, "0.5", ("'dense' takes no number as an argument",)),
    Case("maximum-int8-quantisations-differ",
         net(I8_VEC, f"r = relu(x) {Q}", "m = maximum(x, r)", "output m"),
         5, "m =", ("int8 maximum compares stored values", "'r'", "must share one quantisation")),
    Case("maximum-no-fused-activation",
         net(F32_VEC, "m = maximum(x, 0.0) -> relu", "output m"),
         4, "relu", ("'maximum' cannot be followed by an activation",)),
    Case("squared-difference-int8-constant-without-scale",
         net(I8_VEC, f"d = squared_difference(x, c) {Q}", "output d"),
         4, "c)", ("squared_difference operand 'c' is i8", "'c.scale'"), {"c": np.ones(64, np.int8)}),
    Case("mul-int16-constant-zero-point",
         net("input x : i16[8] @ scale(0.001) zero(0)", "m = mul(x, c) : i16 @ scale(0.002) zero(0)", "output m"),
         4, "c)", ("'c.zero_point' is 3", "i16 tensors are symmetric"),
         {"c": np.ones(8, np.int16), "c.scale": np.float32([0.5]), "c.zero_point": np.int32([3])}),
    Case("squared-difference-fixed-point-overflow",
         net("input x : q15[8]", "r = relu(x) : q15", "d = squared_difference(x, r) : q15", "output d"),
         5, "squared_difference", ("the accumulator of 'd' can reach [0, 4294836225]", "beyond i32")),
    Case("maximum-fixed-point-constant-beyond-storage",
         net("input x : q7[8]", "m = maximum(x, 1000.0) : q7", "output m"),
         4, "1000.0", ("constant 1000 does not fit the network's int8 storage in fixed point (-128 to 127)",)),
    Case("prelu-fixed-point",
         net("input x : q7[8]", "p = prelu(x, 0.25) : q7", "output p"),
         4, "prelu", ("'prelu' has no fixed-point (qM.N) kernel",)),
    Case("sub-fixed-point-constant-int32",
         net("input x : q7[8]", "s = sub(x, c) : q7", "output s"),
         4, "c)", ("sub operand 'c' is int32", "expected int8 or int16 in a fixed-point network", "'c.frac_bits'"),
         {"c": np.ones(8, np.int32)}),
    Case("mul-fixed-point-constant-without-frac-bits",
         net("input x : q7[8]", "m = mul(x, c) : q7", "output m"),
         4, "c)", ("mul operand 'c' is fixed point", "'c.frac_bits'"), {"c": np.ones(8, np.int8)}),
    Case("sub-int8-output-scale-unrepresentable",
         net(I8_VEC, "s = sub(x, 1.0) : i8 @ scale(1e-9) zero(0)", "output s"),
         4, "sub", ("int8 sub of 's' cannot be computed", "TensorFlow Lite Micro's kernel rejects them")),
    Case("quantize-in-f32-network",
         net(F32_VEC, "q = quantize(x) : f32", "output q"),
         4, "quantize", ("quantize gives a tensor an i8 or i16 quantisation", "computes in f32")),
    # -- concat -----------------------------------------------------------------------------------------
    Case("concat-non-axis-mismatch",
         net(F32_2D, "p = max_pool(x, size=2)", "c = concat(x, p)", "output c"),
         5, "p)", ("concat along axis 2", "'p' has shape [4, 4, 3]", "'x' has [8, 8, 3]", "all other axes")),
    Case("concat-non-axis-mismatch-axis-0",
         net(F32_2D, "y = conv2d(x, k, b)", "c = concat(x, y, axis=0)", "output c"),
         5, "y,", ("concat along axis 0", "'y' has shape [6, 6, 4]", "'x' has [8, 8, 3]"),
         f32_kernel((3, 3, 3, 4), 4)),
    Case("concat-rank-mismatch",
         net(F32_1D, "f = flatten(x)", "c = concat(x, f)", "output c"),
         5, "f)", ("'f' has shape [64]", "'x' has [16, 4]")),
    Case("concat-axis-out-of-range",
         net(F32_2D, "c = concat(x, x, axis=3)", "output c"),
         4, "axis", ("concat axis 3 is out of range for rank-3 inputs", "-3..2", "[8, 8, 3]")),
    Case("concat-negative-axis-out-of-range",
         net(F32_1D, "c = concat(x, x, axis=-3)", "output c"),
         4, "axis", ("concat axis -3", "rank-2", "-2..1")),
    Case("concat-axis-name",
         net(F32_1D, "c = concat(x, x, axis=last)", "output c"),
         4, "axis", ("concat axis must be a whole number", "'last'")),
    Case("concat-int8-different-quantisation",
         net(I8_1D, "r = relu(x) : i8 @ scale(0.05) zero(-128)", "c = concat(x, r)", "output c"),
         5, "r)", ("int8 concat", "share one quantisation", "'r' has scale(0.05) zero(-128)",
                   "'x' has scale(0.02) zero(-1)")),
    Case("concat-int8-declared-other-quantisation",
         net(I8_1D, f"c = concat(x, x) {Q}", "output c"),
         4, "i8 @", ("int8 concat keeps its input's quantisation", "scale(0.02) zero(-1)",
                     "declared scale(0.05) zero(0)")),
    Case("concat-weight-argument",
         net(F32_1D, "c = concat(x, k)", "output c"),
         4, "k)", ("'k' is a weight array", "tensor is expected"), {"k": np.zeros((16, 4), np.float32)}),
    Case("concat-activation",
         net(F32_1D, "c = concat(x, x) -> relu", "output c"),
         4, "relu", ("'concat' cannot be followed by an activation",)),
    # -- pad --------------------------------------------------------------------------------------------
    Case("pad-too-few-pairs",
         net(I8_2D, "p = pad(x, pads=((1, 1), (1, 1)))", "output p"),
         4, "pads", ("pad needs 3 (before, after) pairs", "[8, 8, 3]", "got 2")),
    Case("pad-too-many-pairs",
         net(I8_1D, "p = pad(x, pads=((1, 1), (1, 1), (0, 0)))", "output p"),
         4, "pads", ("pad needs 2 (before, after) pairs", "[16, 4]", "got 3")),
    Case("pad-negative",
         net(I8_1D, "p = pad(x, pads=((1, -1), (0, 0)))", "output p"),
         4, "pads", ("pad pads for axis 0", "whole numbers >= 0", "(1, -1)")),
    Case("pad-flat-numbers",
         net(I8_1D, "p = pad(x, pads=(1, 1))", "output p"),
         4, "pads", ("pad needs 2 (before, after) pairs", "got (1, 1)")),
    Case("pad-triple",
         net(F32_VEC, "p = pad(x, pads=((1, 2, 3)))", "output p"),
         4, "pads", ("pad pads for axis 0", "(before, after) pair", "(1, 2, 3)")),
    Case("pad-fraction",
         net(F32_VEC, "p = pad(x, pads=((1.5, 0)))", "output p"),
         4, "pads", ("pad pads for axis 0", "whole numbers", "(1.5, 0)")),
    Case("pad-without-pads",
         net(F32_VEC, "p = pad(x)", "output p"),
         4, "pad", ("'pad' needs 'pads=...'",)),
    Case("pad-int8-requantised",
         net(I8_VEC, f"p = pad(x, pads=((1, 1))) {Q}", "output p"),
         4, "i8 @", ("pad keeps its input's quantisation", "scale(0.02) zero(-1)")),
    # -- batch_norm -------------------------------------------------------------------------------------
    Case("batch-norm-gamma-length",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS})", "output n"),
         4, "bn.gamma", ("batch_norm gamma 'bn.gamma' has shape [5], expected [3]",),
         bn_params(3, gamma=np.ones(5, np.float32))),
    Case("batch-norm-mean-rank",
         net(F32_1D, f"n = batch_norm(x, {BN_ARGS})", "output n"),
         4, "bn.mean", ("batch_norm mean 'bn.mean' has shape [1, 4], expected [4]",),
         bn_params(4, mean=np.zeros((1, 4), np.float32))),
    Case("batch-norm-variance-negative",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS})", "output n"),
         4, "bn.var", ("batch_norm variance 'bn.var'", "negative", "-0.5", "channel 1"),
         bn_params(3, var=np.array([1.0, -0.5, 1.0], np.float32))),
    Case("batch-norm-variance-zero-epsilon-zero",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS}, epsilon=0)", "output n"),
         4, "bn.var", ("variance + epsilon must be positive", "'bn.var' is 0 at channel 2", "epsilon is 0"),
         bn_params(3, var=np.array([1.0, 1.0, 0.0], np.float32))),
    Case("batch-norm-epsilon-negative",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS}, epsilon=-1e-3)", "output n"),
         4, "epsilon", ("batch_norm epsilon must be >= 0", "-0.001"),
         bn_params(3)),
    Case("batch-norm-epsilon-name",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS}, epsilon=small)", "output n"),
         4, "epsilon", ("batch_norm epsilon must be a number", "'small'"),
         bn_params(3)),
    Case("batch-norm-factor-beyond-float32",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS})", "output n"),
         4, "batch_norm", ("batch_norm gamma / sqrt(variance + epsilon)", "at channel 0", "float32"),
         bn_params(3, gamma=np.full(3, 3e38, np.float32), var=np.full(3, 1e-30, np.float32))),
    Case("batch-norm-int8-parameters",
         net(I8_2D, f"n = batch_norm(x, {BN_ARGS}) {Q}", "output n"),
         4, "bn.gamma", ("batch_norm gamma 'bn.gamma' is int8, expected a float array", "even in an i8 network"),
         bn_params(3, gamma=np.ones(3, np.int8))),
    Case("batch-norm-missing-parameter",
         net(F32_2D, "n = batch_norm(x, bn.gamma, bn.beta, bn.mean)", "output n"),
         4, "batch_norm", ("'batch_norm' takes 5 arguments, got 4",), bn_params(3)),
    Case("batch-norm-int8-without-output-type",
         net(I8_2D, f"n = batch_norm(x, {BN_ARGS})", "output n"),
         4, "n =", ("'n' is computed in i8", "declare its type"), bn_params(3)),
    Case("batch-norm-int8-vector-not-after-dense",
         net(I8_VEC, "r = relu(x)", f"n = batch_norm(r, {BN_ARGS}) {Q}", "output n"),
         5, "batch_norm", ("int8 batch_norm", "[64]", "must follow a dense or conv"),
         bn_params(64)),
    Case("batch-norm-activation",
         net(F32_2D, f"n = batch_norm(x, {BN_ARGS}) -> relu", "output n"),
         4, "relu", ("'batch_norm' cannot be followed by an activation",), bn_params(3)),
    # -- element-wise functions -------------------------------------------------------------------------
    Case("tanh-int8-wrong-scale",
         net(I8_2D, f"t = tanh(x) {Q}", "output t"),
         4, "i8 @", ("int8 tanh output must be i8 @ scale(1/128) zero(0)", "declared scale(0.05) zero(0)")),
    Case("tanh-int8-wrong-zero-point",
         net(I8_2D, "t = tanh(x) : i8 @ scale(1/128) zero(-128)", "output t"),
         4, "i8 @", ("int8 tanh output must be i8 @ scale(1/128) zero(0)", "declared scale(1/128) zero(-128)")),
    Case("sigmoid-int8-wrong-zero-point",
         net(I8_2D, "s = sigmoid(x) : i8 @ scale(1/256) zero(0)", "output s"),
         4, "i8 @", ("int8 sigmoid output must be i8 @ scale(1/256) zero(-128)", "declared scale(1/256) zero(0)")),
    Case("sigmoid-int8-tanh-quantisation",
         net(I8_2D, "s = sigmoid(x) : i8 @ scale(1/128) zero(0)", "output s"),
         4, "i8 @", ("int8 sigmoid output must be i8 @ scale(1/256) zero(-128)", "declared scale(1/128) zero(0)")),
    Case("tanh-int8-input-scale-unrepresentable",
         net("input x : i8[8] @ scale(1e-12) zero(0)", "t = tanh(x)", "output t"),
         4, "tanh", ("int8 tanh of 't'", "input scale 1e-12", "2^-28 to 2^35")),
    Case("tanh-attribute",
         net(F32_VEC, "t = tanh(x, alpha=2)", "output t"),
         4, "alpha", ("'tanh' has no attribute 'alpha'", "attributes: none")),
    Case("sigmoid-activation",
         net(F32_VEC, "s = sigmoid(x) -> relu", "output s"),
         4, "relu", ("'sigmoid' cannot be followed by an activation",)),
    Case("leaky-relu-alpha-name",
         net(F32_VEC, "l = leaky_relu(x, alpha=small)", "output l"),
         4, "alpha", ("leaky_relu alpha must be a number", "'small'")),
    Case("leaky-relu-alpha-tuple",
         net(F32_VEC, "l = leaky_relu(x, alpha=(0.1, 0.2))", "output l"),
         4, "alpha", ("leaky_relu alpha must be a number", "(0.1, 0.2)")),
    Case("leaky-relu-alpha-string",
         net(F32_VEC, 'l = leaky_relu(x, alpha="0.1")', "output l"),
         4, "alpha", ("leaky_relu alpha must be a number", "'0.1'")),
    Case("leaky-relu-alpha-beyond-float32",
         net(F32_VEC, "l = leaky_relu(x, alpha=1e39)", "output l"),
         4, "alpha", ("leaky_relu alpha 1e+39 is outside the range of float32",)),
    Case("relu-alpha",
         net(F32_VEC, "l = relu(x, alpha=0.1)", "output l"),
         4, "alpha", ("'relu' has no attribute 'alpha'", "attributes: none")),
    Case("leaky-relu-as-fused-activation",
         net(F32_2D, "y = conv2d(x, k, b) -> leaky_relu", "output y"),
         4, "leaky_relu", ("unknown activation 'leaky_relu'", "relu, relu6", "own layer", "y = leaky_relu(x)"),
         f32_kernel((3, 3, 3, 4), 4)),
    Case("leaky-relu-int8-scale-ratio-unrepresentable",
         net(I8_VEC, "l = leaky_relu(x) : i8 @ scale(1e-12) zero(0)", "output l"),
         4, "leaky_relu", ("int8 leaky_relu of 'l'", "output scale 1e-12", "below 2^30")),
    Case("hard-swish-int8-output-scale-too-small",
         net(I8_VEC, "h = hard_swish(x) : i8 @ scale(0.0001) zero(0)", "output h"),
         4, "hard_swish", ("int8 hard_swish of 'h'", "output scale 0.0001", "input scale 0.02", "TensorFlow Lite Micro",
                         "larger than input scale / 128 = 0.00015625")),
    Case("hard-swish-int8-without-output-type",
         net(I8_VEC, "h = hard_swish(x) : f32", "output h"),
         4, "f32", ("'h' is declared f32", "computes in i8")),
    Case("relu6-int8-requantised",
         net(I8_VEC, f"r = relu6(x) {Q}", "output r"),
         4, "i8 @", ("int8 relu6 keeps its input's quantisation", "scale(0.02) zero(-1)")),
    Case("softmax-int8-input-scale-too-small",
         net("input x : i8[8] @ scale(1e-9) zero(0)", "s = softmax(x, beta=0.01)", "output s"),
         4, "softmax", ("int8 softmax of 's'", "0.01 x 1e-09", "2^-26")),
    Case("softmax-beta-infinite",
         net(F32_VEC, "s = softmax(x, beta=1e400)", "output s"),
         4, "beta", ("softmax beta inf is outside the range of float32",)),
    Case("softmax-int8-declared-shape",
         net(I8_VEC, "s = softmax(x) : i8[32] @ scale(1/256) zero(-128)", "output s"),
         4, "i8[32]", ("'s' is declared [32]", "softmax produces [64]")),
]


def savez(path: Path, arrays: Arrays) -> None:
    np.savez(path, **cast("dict[str, Any]", arrays))  # (NumPy's stubs take ** for its own keywords)


def write_model(directory: Path, case: Case) -> Path:
    savez(directory / "w.npz", case.weights)
    path = directory / "model.nn"
    path.write_text(case.source, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[nndsl.Diagnostic]:
    with pytest.raises(nndsl.NNError) as raised:
        nndsl.load(path)
    errors = [d for d in raised.value.diagnostics if d.severity.value == "error"]
    assert errors, "an NNError without errors"
    return errors


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


def assert_case_error(path: Path, case: Case) -> None:
    """Loading ``path`` fails first with ``case``'s error: its place (line, column of its anchor) and words."""
    error = errors_of(path)[0]
    assert error.loc is not None, error.format()
    assert (error.loc.path, error.loc.line, error.loc.col) == (str(path), case.line, case.col), error.format()
    for word in case.words:
        assert word in error.message, f"{word!r} not in {error.message!r}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_diagnostic(tmp_path: Path, case: Case) -> None:
    assert_case_error(write_model(tmp_path, case), case)


LOADS_CASES = [case for case in CASES if case.id in {
    "conv2d-kernel-input-channels", "pad-too-few-pairs", "concat-non-axis-mismatch", "tanh-int8-wrong-scale",
    "hard-swish-int8-output-scale-too-small",
}]


@pytest.mark.parametrize("case", LOADS_CASES, ids=[case.id for case in LOADS_CASES])
def test_diagnostic_from_text(tmp_path: Path, case: Case) -> None:
    """``nndsl.loads``: the same errors, labelled with the path given (which also anchors the weights)."""
    savez(tmp_path / "w.npz", case.weights)
    label = str(tmp_path / "from_text.nn")
    with pytest.raises(nndsl.NNError) as raised:
        nndsl.loads(case.source, label)
    error = raised.value.diagnostics[0]
    assert error.loc is not None and (error.loc.path, error.loc.line, error.loc.col) == (label, case.line, case.col)
    assert all(word in error.message for word in case.words), error.message


# -- the command line -------------------------------------------------------------------------------


CLI_CASES = [
    case for case in CASES
    if case.id in {
        "conv2d-kernel-wider-than-input", "conv2d-dilated-kernel-wider-than-input", "conv1d-on-2d-input",
        "depthwise-conv2d-scale-count", "conv2d-stride-three-values", "conv2d-padding-full",
        "max-pool-size-larger-than-input", "avg-pool-on-rank-4", "add-shape-mismatch",
        "add-int8-output-scale-unrepresentable", "concat-int8-different-quantisation", "pad-negative",
        "global-avg-pool-on-vector", "global-avg-pool-int8-output-scale-unrepresentable",
        "batch-norm-variance-negative", "sigmoid-int8-wrong-zero-point", "leaky-relu-alpha-name",
        "hard-swish-int8-output-scale-too-small",
    }
]


def test_cli_cases_exist() -> None:
    assert len(CLI_CASES) == 18


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_cli_check(tmp_path: Path, case: Case) -> None:
    path = write_model(tmp_path, case)
    result = subprocess.run([sys.executable, "-m", "nndsl", "check", str(path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert re.match(rf"^{re.escape(str(path))}:{case.line}:{case.col}: error: ", result.stderr), result.stderr
    first = result.stderr.splitlines()[0]
    for word in case.words:
        assert word in first, f"{word!r} not in {first!r}"
    assert result.stdout == ""


# -- valid uses: TensorFlow's output shapes ---------------------------------------------------------

F32_9x7 = "input x : f32[9, 7, 3]"
I8_9x7 = "input x : i8[9, 7, 3] @ scale(0.02) zero(-1)"


@dataclass(frozen=True)
class Valid:
    id: str
    source: str
    shapes: dict[str, tuple[int, ...]]  # tensor name -> its shape
    weights: Arrays = field(default_factory=dict)


def _one(input_decl: str, layer: str, shape: tuple[int, ...], weights: Arrays | None = None,
         id: str | None = None) -> Valid:
    name = layer.split("=", 1)[0].strip()
    return Valid(id or layer.split("=", 1)[1].strip(), net(input_decl, layer, f"output {name}"), {name: shape},
                 weights or {})


K3 = f32_kernel((3, 3, 3, 4), 4)
VALID = [
    # conv2d on [9, 7, 3]: valid is ceil((n - (k - 1) * d) / s), same is ceil(n / s)
    _one(F32_9x7, "y = conv2d(x, k, b)", (7, 5, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, b, padding=same)", (9, 7, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, b, stride=2, padding=same)", (5, 4, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, b, stride=2)", (4, 3, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, b, stride=(2, 1))", (4, 5, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, b, dilation=2)", (5, 3, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, b, dilation=(2, 3), padding=same)", (9, 7, 4), K3),
    _one(F32_9x7, "y = conv2d(x, k, stride=3, padding=same)", (3, 3, 5), f32_kernel((2, 4, 3, 5), 5, bias=None)),
    _one(F32_9x7, "y = conv2d(x, k, b, padding=valid)", (1, 1, 2), f32_kernel((9, 7, 3, 2), 2)),
    _one(F32_9x7, "y = depthwise_conv2d(x, k, b)", (7, 5, 6), f32_kernel((3, 3, 3, 2), 6)),
    _one(F32_9x7, "y = depthwise_conv2d(x, k, b, stride=2, padding=same)", (5, 4, 6), f32_kernel((3, 3, 3, 2), 6)),
    _one(F32_1D, "y = conv1d(x, k, b, stride=3, padding=same)", (6, 8), f32_kernel((5, 4, 8), 8)),
    _one(F32_1D, "y = conv1d(x, k, b, dilation=3)", (10, 8), f32_kernel((3, 4, 8), 8)),
    _one(F32_1D, "y = depthwise_conv1d(x, k, b)", (14, 8), f32_kernel((3, 4, 2), 8)),
    _one(F32_1D, "y = depthwise_conv1d(x, k, b, stride=2, padding=same)", (8, 12), f32_kernel((4, 4, 3), 12)),
    # pools: the stride defaults to the size
    _one(F32_9x7, "p = max_pool(x, size=2)", (4, 3, 3)),
    _one(F32_9x7, "p = max_pool(x, size=2, padding=same)", (5, 4, 3)),
    _one(F32_9x7, "p = avg_pool(x, size=(3, 2), stride=1)", (7, 6, 3)),
    _one(F32_9x7, "p = avg_pool(x, size=3, stride=2, padding=same)", (5, 4, 3)),
    _one(F32_1D, "p = avg_pool(x, size=3, stride=1, padding=same)", (16, 4)),
    _one(F32_1D, "p = max_pool(x, size=5)", (3, 4)),
    _one(F32_9x7, "g = global_avg_pool(x)", (3,)),
    _one(F32_1D, "g = global_max_pool(x)", (4,)),
    # shape ops
    _one(F32_9x7, "c = concat(x, x, axis=0)", (18, 7, 3)),
    _one(F32_9x7, "c = concat(x, x, x, axis=-1)", (9, 7, 9)),
    _one(F32_9x7, "c = concat(x, x)", (9, 7, 6), id="concat default axis"),
    _one(F32_9x7, "c = concat(x, axis=1)", (9, 7, 3)),
    _one(F32_9x7, "p = pad(x, pads=((1, 2), (0, 1), (0, 0)))", (12, 8, 3)),
    _one(F32_VEC, "p = pad(x, pads=((3, 0)))", (67,)),
    _one(F32_9x7, "s = add(x, x) -> relu", (9, 7, 3)),
    _one(F32_9x7, f"n = batch_norm(x, {BN_ARGS}, epsilon=0.01)", (9, 7, 3), bn_params(3)),
    _one(F32_VEC, "l = leaky_relu(x, alpha=0.1)", (64,)),
    _one(F32_VEC, "l = leaky_relu(x)", (64,)),
    _one(F32_VEC, "t = tanh(x)", (64,)),
    _one(F32_VEC, "s = sigmoid(x)", (64,)),
    _one(F32_VEC, "h = hard_swish(x)", (64,)),
    Valid("concat on axis 1 of a pooled tensor",
          net(F32_9x7, "p = max_pool(x, size=(1, 2))", "c = concat(x, p, axis=1)", "output c"),
          {"p": (9, 3, 3), "c": (9, 10, 3)}),
    Valid("int8 chain", net(
        I8_9x7,
        "c = conv2d(x, k, b, stride=2, padding=same) -> relu : i8 @ scale(0.05) zero(-128)",
        "d = depthwise_conv2d(c, dk, db, padding=same) : i8 @ scale(0.05) zero(0)",
        "p = max_pool(d, size=2, padding=same)",
        "q = pad(p, pads=((1, 1), (0, 0), (0, 0)))",
        "j = concat(q, q, axis=0)",
        "t = tanh(j)",
        "s = sigmoid(j)",
        "a = add(t, s) : i8 @ scale(0.01) zero(0)",
        "g = global_avg_pool(a)",
        "l = leaky_relu(g, alpha=0.2)",
        "h = hard_swish(l)",
        "output h",
    ), {"c": (5, 4, 4), "d": (5, 4, 8), "p": (3, 2, 8), "q": (5, 2, 8), "j": (10, 2, 8), "t": (10, 2, 8),
        "a": (10, 2, 8), "g": (8,), "h": (8,)},
        merged(i8_kernel((3, 3, 3, 4), 4), i8_kernel((3, 3, 4, 2), 8, name="dk", bias="db"))),
]


def _load(tmp_path: Path, source: str, weights: Arrays) -> nndsl.Model:
    savez(tmp_path / "w.npz", weights)
    path = tmp_path / "model.nn"
    path.write_text(source, encoding="utf-8")
    return nndsl.load(path)


@pytest.mark.parametrize("valid", VALID, ids=[v.id for v in VALID])
def test_valid_shapes(tmp_path: Path, valid: Valid) -> None:
    model = _load(tmp_path, valid.source, valid.weights)
    types = {t.name: t.type for t in model.graph.tensors}
    in_type = model.graph.input.type
    x = np.zeros(in_type.shape, in_type.dtype.numpy)
    values = model.trace(x)
    for name, shape in valid.shapes.items():
        assert types[name].shape == shape, f"{name}: {types[name].shape}"
        assert values[name].shape == shape


def test_int8_quantisations(tmp_path: Path) -> None:
    """Which int8 ops keep their input's quantisation and which have a fixed one."""
    valid = next(v for v in VALID if v.id == "int8 chain")
    types = {t.name: t.type for t in _load(tmp_path, valid.source, valid.weights).graph.tensors}
    quant = {name: (t.quant.scale, t.quant.zero_point) for name, t in types.items() if t.quant}
    f32 = float(np.float32(0.05)), float(np.float32(0.01))  # scales are stored as float32
    assert quant["p"] == quant["q"] == quant["j"] == quant["d"] == (f32[0], 0)  # pool, pad, concat keep it
    assert quant["t"] == (1 / 128, 0)  # fixed by TFLM's tanh
    assert quant["s"] == (1 / 256, -128)  # fixed by TFLM's logistic
    assert quant["g"] == quant["l"] == quant["h"] == quant["a"] == (f32[1], 0)  # mean, leaky_relu, hard_swish default


def test_int8_batch_norm_folds_into_conv(tmp_path: Path) -> None:
    source = net(I8_9x7, "c = conv2d(x, k, b) : i8 @ scale(0.05) zero(0)",
                 f"n = batch_norm(c, {BN_ARGS}) : i8 @ scale(0.05) zero(0)", "output n")
    model = _load(tmp_path, source, merged(i8_kernel((3, 3, 3, 4), 4), bn_params(4)))
    ops = model.graph.ops
    assert len(ops) == 1 and isinstance(ops[0], ir.Conv) and ops[0].output.name == "n"
    assert model.run(np.zeros((9, 7, 3), np.int8)).shape == (7, 5, 4)


def test_int8_batch_norm_after_activation_becomes_depthwise(tmp_path: Path) -> None:
    source = net(I8_9x7, "c = conv2d(x, k, b) -> relu : i8 @ scale(0.05) zero(-128)",
                 f"n = batch_norm(c, {BN_ARGS}) : i8 @ scale(0.05) zero(0)", "output n")
    model = _load(tmp_path, source, merged(i8_kernel((3, 3, 3, 4), 4), bn_params(4)))
    last = model.graph.ops[-1]
    assert isinstance(last, ir.Conv) and last.depthwise and last.window.size == (1, 1)
    assert model.run(np.zeros((9, 7, 3), np.int8)).shape == (7, 5, 4)
