"""Power-of-two fixed-point (q7, q15, qM.N) networks: the generated C against the NumPy backend, and the
NumPy backend against the documented integer semantics.

C and NumPy must agree EXACTLY: every comparison is integer equality of the int8/int16 outputs
(:func:`~tests.test_c_backend.assert_exact`: same dtype and shape, zero differing values), never a
tolerance. The generated C is compiled with gcc ``-std=c99 -Wall -Wextra -Werror -pedantic`` (what
:mod:`tests.c_harness` applies), and for a few networks also under ``-fsanitize=address,undefined`` with
every report fatal.

The oracle tests do not trust either backend: they compute what the semantics say from the real values,
with Python integers and :class:`fractions.Fraction` — the exact real result ``sum(x * w) * 2^-(Nx + Nw) +
bias * 2^-Nb`` (or ``a * 2^-Na + b * 2^-Nb`` for add, a mean for the average pools), rounded to the
output's ``N`` fraction bits half away from zero, clamped to the output format and its activation — and
compare the NumPy backend with it exactly, tensor by tensor.

``nn_shift_round`` of the C runtime is compared with :func:`nndsl.qmath.shift.shift_round` (and both with
the definition) on edge and random cases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl import ir
from nndsl.backend import backend
from nndsl.kernels import AddQ, BinaryQ
from nndsl.ops import FIXED_POINT_OPS
from nndsl.qmath.requant import INT32_MAX, INT32_MIN
from nndsl.qmath.shift import aligned_sum, binary_q_raw, shift_round
from tests.c_harness import (
    SANITIZE_FLAGS,
    STRICT_FLAGS,
    OpCase,
    build_harness,
    build_program,
    op_cases_source,
    run_op_cases,
    run_program,
)
from tests.fixed_point_models import random_fixed_inputs, random_fixed_network
from tests.test_c_backend import RandomNetwork, assert_exact

Array = npt.NDArray[Any]

FIXED_SEEDS = range(8)
SLOW_SEEDS = range(100, 250)
SANITIZED_SEEDS = (0, 1, 2)  # one of each layout: [W, C], [H, W, C], vector
RANDOM_INPUTS = 1000


def load_network(network: RandomNetwork, directory: Path) -> nndsl.Model:
    """Write and load a generated network; one that does not compile is a generator bug: show its text."""
    try:
        return network.write(directory)
    except nndsl.NNError as error:
        raise AssertionError(f"generated network does not compile:\n{network.text}\n{error}") from error


# --------------------------------------------------------------------------
# Random networks: C equals NumPy
# --------------------------------------------------------------------------


def check_c_equals_numpy(seed: int, tmp_path: Path, *, sanitize: bool = False) -> None:
    """One generated network: C (static arena and a caller's scrambled arena) == NumPy, exactly."""
    network = random_fixed_network(seed)
    model = load_network(network, tmp_path / "src")
    inputs = random_fixed_inputs(model, RANDOM_INPUTS, seed)
    expected = model.run(inputs)
    low, high = model.graph.output.type.bounds
    assert expected.dtype == model.graph.output.type.dtype.numpy
    assert low <= expected.min() and expected.max() <= high, "NumPy output outside the output format"
    program = build_program(model, tmp_path / "build", sanitize=sanitize)
    for caller_arena in (False, True):
        # Exact: integer equality, zero differing values.
        assert_exact(run_program(program, inputs, caller_arena=caller_arena), expected, network.text)


def test_the_c_is_compiled_strictly() -> None:
    """What the comparisons below rely on: gcc refuses any warning in C99, and the sanitizers stop at the first
    report."""
    assert {"-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"} <= set(STRICT_FLAGS)
    assert {"-fsanitize=address,undefined", "-fno-sanitize-recover=all"} <= set(SANITIZE_FLAGS)


@pytest.mark.parametrize("seed", FIXED_SEEDS)
def test_random_fixed_network_c_equals_numpy(seed: int, tmp_path: Path, compiler: str) -> None:
    check_c_equals_numpy(seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_many_random_fixed_networks_c_equals_numpy(seed: int, tmp_path: Path, compiler: str) -> None:
    check_c_equals_numpy(seed, tmp_path)


@pytest.mark.parametrize("seed", SANITIZED_SEEDS)
def test_random_fixed_network_sanitizers_clean(seed: int, tmp_path: Path, compiler: str) -> None:
    """AddressSanitizer and UBSan, every report fatal: no signed overflow in a shift or sum, no access
    outside the exact-size input, output and arena blocks."""
    check_c_equals_numpy(seed, tmp_path, sanitize=True)


# --------------------------------------------------------------------------
# What the default seeds exercise
# --------------------------------------------------------------------------


def _op_name(op: ir.Op) -> str | None:
    """The language's name of a compiled op (None for a view: flatten and reshape look alike)."""
    match op:
        case ir.Conv():
            return f"{'depthwise_' if op.depthwise else ''}conv{op.window.rank}d"
        case ir.Pool():
            return f"{op.pool.value}_pool"
        case ir.GlobalPool():
            return f"global_{op.pool.value}_pool"
        case ir.Activation():
            return op.activation.value
        case ir.Elementwise():
            return op.function.value
        case ir.Reshape():
            return None
        case ir.Slice() | ir.Resize():
            return op.kind
        case ir.Binary():
            return op.operator.value
    return type(op).__name__.lower()


def _pre_clamp(op: ir.Op, values: dict[str, Array], accumulators: dict[str, Array]) -> tuple[Array, int, int] | None:
    """An op's shifted int32 value before its output clamp, and that clamp (None: the op does not shift)."""
    match op:
        case ir.Dense() | ir.Conv() if isinstance(op.requant, ir.ShiftRequant):
            q = op.requant
            return shift_round(accumulators[op.output.name], q.shift), q.act_min, q.act_max
        case ir.Activation() if isinstance(op.requant, ir.ShiftRequant):
            q = op.requant
            return shift_round(values[op.input.name], q.shift), q.act_min, q.act_max
        case ir.Add(impl=AddQ() as add):
            total = aligned_sum(values[op.inputs[0].name], values[op.inputs[1].name], add.params)
            return shift_round(total, add.params.shift), add.act_min, add.act_max
        case ir.Binary(impl=BinaryQ() as binary):
            a, b = (t.data if t.data is not None else values[t.name] for t in op.operands)
            return shift_round(binary_q_raw(a, b, binary.params), binary.params.shift), binary.act_min, binary.act_max
    return None


def network_features(network: RandomNetwork, model: nndsl.Model, inputs: Array) -> set[str]:
    """What one network exercises, read from its compiled graph, its arrays and a NumPy run on ``inputs``."""
    graph = model.graph
    found: set[str] = set()
    written = dict(re.findall(r"^(?:output\s+)?(\w+)\s*=\s*(\w+)\(", network.text, flags=re.MULTILINE))
    for op in graph.ops:
        name = _op_name(op) or written[op.output.name]  # a reshape view: the text says flatten or reshape
        found.add(f"op {name}")
        activation = getattr(op, "activation", ir.ActivationKind.NONE)
        if isinstance(op, ir.Dense | ir.Conv | ir.Add | ir.Pool) and activation is not ir.ActivationKind.NONE:
            found.add(f"fused {activation.value}")
        shift = None
        if isinstance(op, ir.Dense | ir.Conv | ir.Activation) and isinstance(op.requant, ir.ShiftRequant):
            shift = op.requant.shift
        if isinstance(op, ir.Add) and isinstance(op.impl, AddQ):
            shift = op.impl.params.shift
            formats = {t.type.fixed for t in op.inputs}
            if len(formats) == 2:
                found.add("add of two formats")
        if isinstance(op, ir.Dense | ir.Conv):
            assert shift is not None
            found.add("weighted shift " + ("right" if shift > 0 else "left" if shift < 0 else "zero"))
            found.add(f"kernel {op.kernel.type.dtype.value}")
        elif shift is not None:
            found.add(f"{type(op).__name__.lower()} shift " + ("right" if shift > 0 else "left" if shift < 0
                                                               else "zero"))
        if isinstance(op, ir.Concat) and len(op.inputs) > 1:
            found.add("concat of branches")
        if isinstance(op, ir.Binary):
            found.add(f"binary {'of two computed tensors' if len(op.inputs) == 2 else 'with a constant'}")
    for key, array in network.weights.items():
        if key.endswith(".bias"):
            found.add(f"bias {array.dtype}")
    formats = {t.type.fixed for t in graph.tensors}
    assert None not in formats
    if len(formats) >= 3:
        found.add("three or more formats")
    if graph.input.type.type_name == "q7" and any(t.type.type_name == "q15" for t in graph.tensors):
        found.add("q7 in, q15 inside")
    for fmt in formats:
        assert fmt is not None
        if fmt.bits < 8:
            found.add("narrow format (under 8 bits)")
        if fmt.int_bits > 0:
            found.add(f"qM.N with M > 0 in {fmt.storage.value}")
    found.add(f"input rank {len(graph.input.type.shape)}")
    found |= {f"kernel frac_bits {int(a.reshape(-1)[0])}" for k, a in network.weights.items()
              if k.endswith(".kernel.frac_bits")}

    accumulators: dict[str, Array] = {}

    def observe(op: ir.Op, acc: Array) -> None:
        accumulators[op.output.name] = np.asarray(acc)

    values = backend("numpy").run(graph, inputs, trace=True, observe=observe)
    assert isinstance(values, dict)
    for op in graph.ops:
        stage = _pre_clamp(op, values, accumulators)
        if stage is None:
            continue
        pre, act_min, act_max = stage
        low, high = op.output.type.bounds
        # The format's own clamp cut a value (not just a relu's or relu6's).
        if (act_max == high and (pre > high).any()) or (act_min == low and (pre < low).any()):
            found.add("saturation")
    return found


def test_default_seeds_cover_the_fixed_point_backend(tmp_path: Path) -> None:
    """The default seeds together exercise every fixed-point op, all three shift directions, int8 and int16
    kernels and biases of every storage, mixed formats and saturating layers; and give varied outputs.

    So that a change to the generator cannot quietly shrink what the C-equals-NumPy tests test.
    """
    covered: set[str] = set()
    frac_bits: set[str] = set()
    varied = 0
    for seed in FIXED_SEEDS:
        network = random_fixed_network(seed)
        model = load_network(network, tmp_path / str(seed))
        inputs = random_fixed_inputs(model, 300, seed)
        features = network_features(network, model, inputs)
        frac_bits |= {f for f in features if f.startswith("kernel frac_bits")}
        covered |= features
        outputs = model.run(inputs)
        varied += len(np.unique(outputs.reshape(len(outputs), -1), axis=0)) > 30
    expected = {f"op {name}" for name in FIXED_POINT_OPS} | {
        "fused relu", "fused relu6", "weighted shift right", "weighted shift left", "weighted shift zero",
        "activation shift left", "activation shift right", "kernel i8", "kernel i16", "bias int8", "bias int16",
        "bias int32", "add of two formats", "concat of branches", "three or more formats", "q7 in, q15 inside",
        "narrow format (under 8 bits)", "qM.N with M > 0 in i8", "qM.N with M > 0 in i16", "input rank 1",
        "input rank 2", "input rank 3", "saturation", "binary of two computed tensors", "binary with a constant",
    }
    assert expected <= covered, f"not covered: {sorted(expected - covered)}"
    assert len(frac_bits) >= 5, f"kernels use only {sorted(frac_bits)}"
    assert varied >= 0.75 * len(FIXED_SEEDS), f"only {varied} of {len(FIXED_SEEDS)} networks give varied outputs"


def test_random_fixed_inputs_include_the_edges(tmp_path: Path) -> None:
    """All-min, all-max and all-zero come first, every input is inside the format, and both halves vary."""
    model = load_network(random_fixed_network(1), tmp_path)
    in_type = model.graph.input.type
    low, high = in_type.bounds
    inputs = random_fixed_inputs(model, 200, 3)
    assert inputs.shape == (200, *in_type.shape) and inputs.dtype == in_type.dtype.numpy
    for row, value in zip(inputs[:3], (low, high, 0), strict=True):
        assert np.all(row == value)
    assert low <= inputs.min() and inputs.max() <= high
    assert len(np.unique(inputs.reshape(200, -1), axis=0)) == 200
    assert np.array_equal(inputs, random_fixed_inputs(model, 200, 3))


# --------------------------------------------------------------------------
# An independent oracle of the documented semantics
# --------------------------------------------------------------------------


def _format(name: str) -> tuple[int, int]:
    """``(M, N)`` of ``q7``, ``q15`` or ``qM.N``, read here without nndsl."""
    if name in ("q7", "q15"):
        return 0, int(name[1:])
    match = re.fullmatch(r"q(\d+)\.(\d+)", name)
    assert match is not None, name
    return int(match[1]), int(match[2])


def _round_half_away(value: Fraction) -> int:
    magnitude: int = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def _store(real: Fraction, fmt: str, activation: str) -> int:
    """The documented output stage: the nearest value of ``fmt`` (halves away from zero), clamped to the
    format's range and the activation's (relu: 0 up, relu6: 0 to 6)."""
    int_bits, frac = _format(fmt)
    q = _round_half_away(real * 2**frac)
    low, high = -(1 << (int_bits + frac)), (1 << (int_bits + frac)) - 1
    if activation in ("relu", "relu6"):
        low = max(low, 0)
    if activation == "relu6":
        high = min(high, 6 << frac)
    return min(max(q, low), high)


def _same_or_valid(length: int, size: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """Output length and padding before, from docs/language.md's table."""
    effective = (size - 1) * dilation + 1
    if padding == "valid":
        return (length - effective) // stride + 1, 0
    out = math.ceil(length / stride)
    return out, max((out - 1) * stride + effective - length, 0) // 2


@dataclass(frozen=True)
class Layer:
    """One layer of a hand-made network: its .nn line and its oracle."""

    name: str
    op: str
    inputs: tuple[str, ...]
    fmt: str | None = None  # the declared output format; None: the input's, left unannotated
    activation: str = "none"
    kernel: Array | None = None
    kernel_frac: int = 0
    bias: Array | None = None
    bias_frac: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        args = list(self.inputs)
        if self.kernel is not None:
            args.append(f"{self.name}.kernel")
        if self.bias is not None:
            args.append(f"{self.name}.bias")
        for key, value in self.attrs.items():
            text = value if isinstance(value, str) else (str(value[0]) if len(value) == 1 else str(tuple(value)))
            args.append(f"{key}={text}")
        arrow = "" if self.activation == "none" else f" -> {self.activation}"
        annotation = "" if self.fmt is None else f" : {self.fmt}"
        return f"{self.name} = {self.op}({', '.join(args)}){arrow}{annotation}"

    def arrays(self) -> dict[str, Array]:
        found: dict[str, Array] = {}
        if self.kernel is not None:
            found |= {f"{self.name}.kernel": self.kernel, f"{self.name}.kernel.frac_bits": np.array(self.kernel_frac)}
        if self.bias is not None:
            found |= {f"{self.name}.bias": self.bias, f"{self.name}.bias.frac_bits": np.array(self.bias_frac)}
        return found


def _per_axis(value: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """A window attribute per spatial axis (one number stands for every axis)."""
    return tuple(value) * rank if len(value) == 1 else tuple(value)


def _window_sum(layer: Layer, x: Array, x_frac: int) -> tuple[Array, int]:
    """A conv's exact real result per output (Fractions), from explicit loops over positions and taps."""
    assert layer.kernel is not None
    rank = x.ndim - 1
    stride = _per_axis(layer.attrs.get("stride", (1,)), rank)
    dilation = _per_axis(layer.attrs.get("dilation", (1,)), rank)
    padding = layer.attrs.get("padding", "valid")
    kernel = layer.kernel.astype(object)
    if rank == 1:
        x, kernel, stride, dilation = x[np.newaxis], kernel[np.newaxis], (1, *stride), (1, *dilation)
    height, width, channels = x.shape
    kh, kw = kernel.shape[:2]
    depthwise = layer.op.startswith("depthwise")
    multiplier = kernel.shape[3]
    outputs = channels * multiplier if depthwise else kernel.shape[3]
    out_h, top = _same_or_valid(height, kh, stride[0], dilation[0], padding)
    out_w, left = _same_or_valid(width, kw, stride[1], dilation[1], padding)
    result = np.empty((out_h, out_w, outputs), dtype=object)
    for oy in range(out_h):
        for ox in range(out_w):
            for o in range(outputs):
                total = 0
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * stride[0] - top + ky * dilation[0], ox * stride[1] - left + kx * dilation[1]
                        if not (0 <= iy < height and 0 <= ix < width):
                            continue  # padding adds nothing
                        if depthwise:
                            total += int(x[iy, ix, o // multiplier]) * kernel[ky, kx, o // multiplier, o % multiplier]
                        else:
                            total += sum(int(x[iy, ix, c]) * kernel[ky, kx, c, o] for c in range(channels))
                real = Fraction(total, 2 ** (x_frac + layer.kernel_frac))
                if layer.bias is not None:
                    real += Fraction(int(layer.bias[o]), 2**layer.bias_frac)
                result[oy, ox, o] = real
    return (result[0] if rank == 1 else result), outputs


def _pool_mean(layer: Layer, x: Array) -> Array:
    """An average pool's exact means (in the input's integer units) over each window's in-bounds values."""
    rank = x.ndim - 1
    size = _per_axis(layer.attrs["size"], rank)
    stride = _per_axis(layer.attrs.get("stride", size), rank)
    padding = layer.attrs.get("padding", "valid")
    if rank == 1:
        x, size, stride = x[np.newaxis], (1, *size), (1, *stride)
    height, width, channels = x.shape
    out_h, top = _same_or_valid(height, size[0], stride[0], 1, padding)
    out_w, left = _same_or_valid(width, size[1], stride[1], 1, padding)
    result = np.empty((out_h, out_w, channels), dtype=object)
    for oy in range(out_h):
        for ox in range(out_w):
            rows = range(max(0, oy * stride[0] - top), min(height, oy * stride[0] - top + size[0]))
            cols = range(max(0, ox * stride[1] - left), min(width, ox * stride[1] - left + size[1]))
            for c in range(channels):
                taps = [int(x[iy, ix, c]) for iy in rows for ix in cols]
                result[oy, ox, c] = Fraction(sum(taps), len(taps))
    return result[0] if rank == 1 else result


# The binary ops on exact reals (the second operand a computed tensor or a constant array, broadcast).
BINARY_ORACLE: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "add": lambda p, q: p + q,
    "sub": lambda p, q: p - q,
    "mul": lambda p, q: p * q,
    "maximum": max,
    "minimum": min,
    "squared_difference": lambda p, q: (p - q) ** 2,
}


def oracle(layers: list[Layer], input_fmt: str, x: Array) -> dict[str, Array]:
    """Every tensor of a hand-made network on one input, from the documented semantics alone."""
    values: dict[str, Array] = {"x": x}
    formats: dict[str, str] = {"x": input_fmt}
    for layer in layers:
        a = values[layer.inputs[0]]
        a_fmt = formats[layer.inputs[0]]
        a_frac = _format(a_fmt)[1]
        out_fmt = layer.fmt or a_fmt
        store = np.vectorize(lambda real, f=out_fmt, act=layer.activation: _store(real, f, act), otypes=[object])
        if layer.op == "dense":
            assert layer.kernel is not None
            kernel = layer.kernel.astype(object)
            real = np.array([Fraction(sum(int(a[i]) * kernel[i, o] for i in range(len(a))),
                                      2 ** (a_frac + layer.kernel_frac)) for o in range(kernel.shape[1])])
            if layer.bias is not None:
                real = real + np.array([Fraction(int(b), 2**layer.bias_frac) for b in layer.bias])
            result = store(real)
        elif "conv" in layer.op:
            result = store(_window_sum(layer, a, a_frac)[0])
        elif layer.op in BINARY_ORACLE:
            b, b_frac = ((values[layer.inputs[1]], _format(formats[layer.inputs[1]])[1]) if len(layer.inputs) == 2
                         else (np.broadcast_to(layer.kernel, a.shape), layer.kernel_frac))
            function = BINARY_ORACLE[layer.op]
            result = store(np.array([function(Fraction(int(p), 2**a_frac), Fraction(int(q), 2**b_frac))
                                     for p, q in zip(a.reshape(-1), b.reshape(-1), strict=True)]).reshape(a.shape))
        elif layer.op in ("relu", "relu6"):
            store = np.vectorize(lambda real, f=out_fmt, act=layer.op: _store(real, f, act), otypes=[object])
            result = store(np.array([Fraction(int(q), 2**a_frac) for q in a.reshape(-1)]).reshape(a.shape))
        elif layer.op == "avg_pool":  # the mean in the input's format, rounded to it
            result = store(_pool_mean(layer, a) / 2**a_frac)
        elif layer.op == "global_avg_pool":
            positions = a.reshape(-1, a.shape[-1])
            result = store(np.array([Fraction(sum(int(v) for v in positions[:, c]), len(positions)) / 2**a_frac
                                     for c in range(positions.shape[1])]))
        else:
            raise AssertionError(layer.op)
        values[layer.name] = result
        formats[layer.name] = out_fmt
    return values


def _ints(rng: np.random.Generator, dtype: type[np.signedinteger[Any]], shape: tuple[int, ...],
          bits: int | None = None) -> Array:
    """Random integers of ``dtype`` (or of ``bits`` bits), with the dtype's extremes planted where there is room."""
    info = np.iinfo(dtype)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if bits else (int(info.min), int(info.max))
    values = rng.integers(low, high + 1, size=shape)
    flat = values.reshape(-1)
    if flat.size >= 4:
        flat[:2] = (low, high)
    return values.astype(dtype)


def _oracle_networks() -> dict[str, tuple[str, tuple[int, ...], list[Layer]]]:
    """Hand-made networks: input format and shape, layers. Comments give each op's output shift."""
    rng = np.random.default_rng(20240611)
    i8, i16, i32 = np.int8, np.int16, np.int32
    return {
        # Dense: right shift with an int16 kernel and a narrower int8 bias; left shift into a saturating q15;
        # zero shift with an int32 bias already at the accumulator's 8 fraction bits; then add of q15 + q7.8.
        "dense": ("q2.5", (6,), [
            Layer("d1", "dense", ("x",), "q3.12", "relu6", _ints(rng, i16, (6, 5), 12), 13, _ints(rng, i8, (5,)), 4),
            Layer("d2", "dense", ("d1",), "q15", kernel=_ints(rng, i8, (5, 4), 5), kernel_frac=1),  # 12+1-15 = -2
            Layer("d3", "dense", ("x",), "q7.8", "relu", _ints(rng, i8, (6, 4)), 3,
                  _ints(rng, i32, (4,), 14), 8),  # 5+3-8 = 0
            Layer("y", "add", ("d2", "d3"), "q4.11"),
        ]),
        # 1-D: a conv with dilation and padding same; an average pool whose last window overhangs the input
        # (means of 2 values: halves) with a fused relu; a depthwise conv with stride 2 and a left shift; a mean.
        "conv1d": ("q7", (9, 2), [
            Layer("c1", "conv1d", ("x",), "q3.4", "none", _ints(rng, i8, (3, 2, 3)), 6, _ints(rng, i16, (3,)), 10,
                  {"dilation": (2,), "padding": "same"}),  # 7+6-4 = 9
            Layer("p", "avg_pool", ("c1",), None, "relu", attrs={"size": (2,), "padding": "same"}),  # 2, 2, 1 taps
            Layer("c2", "depthwise_conv1d", ("p",), "q5.10", "none", _ints(rng, i8, (3, 3, 2)), 3,
                  _ints(rng, i32, (6,), 12), 7, {"stride": (2,), "padding": "same"}),  # 4+3-10 = -3
            Layer("y", "global_avg_pool", ("c2",)),
        ]),
        # 2-D: conv with stride 2 and padding same into relu6, a depthwise conv (multiplier 2) with an int16
        # kernel, a stand-alone relu to a narrower format, a 2x3 average pool, a global mean of 4 positions.
        "conv2d": ("q3.4", (5, 6, 2), [
            Layer("c1", "conv2d", ("x",), "q2.5", "relu6", _ints(rng, i8, (3, 3, 2, 3)), 5, _ints(rng, i8, (3,)), 2,
                  {"stride": (2,), "padding": "same"}),  # 4+5-5 = 4
            Layer("d1", "depthwise_conv2d", ("c1",), "q15", "none", _ints(rng, i16, (2, 3, 3, 2), 12), 14,
                  attrs={"padding": "same"}),  # 5+14-15 = 4
            Layer("r", "relu", ("d1",), "q1.6"),  # 15-6 = 9
            Layer("p", "avg_pool", ("r",), None, "none", attrs={"size": (2, 3), "stride": (1, 2)}),
            Layer("y", "global_avg_pool", ("p",)),
        ]),
        # Binary ops with constant arrays (per element and broadcast from one value) and of two computed
        # tensors in different formats: aligned, multiplied, squared, each shifted to its own output format.
        "binary": ("q3.4", (6,), [
            Layer("s", "sub", ("x",), "q4.3", kernel=_ints(rng, i8, (6,)), kernel_frac=6),
            Layer("m", "mul", ("s", "x"), "q2.5", "relu"),
            Layer("hi", "maximum", ("m",), "q3.4", kernel=_ints(rng, i16, (1,)), kernel_frac=12),
            Layer("lo", "minimum", ("hi", "x"), "q1.6"),
            Layer("d", "squared_difference", ("lo", "x"), "q5.10"),
            Layer("y", "add", ("d",), "q6.9", "relu6", kernel=_ints(rng, i8, (6,)), kernel_frac=2),
        ]),
        # Stand-alone activations changing format both ways, and adds of different formats.
        "activations": ("q4.3", (12,), [
            Layer("r1", "relu6", ("x",), "q3.12"),  # left by 9; 6 < 8 so relu6's bound is live
            Layer("r2", "relu", ("x",), "q2.1"),  # right by 2, saturating above 3.5
            Layer("s", "add", ("x", "r1"), "q1.10"),  # aligned to 12 fraction bits, right by 2, saturating
            Layer("t", "add", ("s", "r2"), "q5.2", "relu6"),
            Layer("y", "relu6", ("t",), "q0.4"),
        ]),
    }


@pytest.mark.parametrize("case", sorted(_oracle_networks()))
def test_numpy_backend_equals_the_documented_semantics(case: str, tmp_path: Path) -> None:
    """Every tensor of a hand-made network equals the exact real result, rounded half away from zero to
    its format and clamped, computed here with Python integers and Fractions."""
    input_fmt, shape, layers = _oracle_networks()[case]
    arrays: dict[str, Array] = {}
    for layer in layers:
        arrays |= layer.arrays()
    np.savez(tmp_path / "w.npz", **arrays)  # type: ignore[arg-type]
    lines = ["network oracle", 'weights "w.npz"', f"input x : {input_fmt}[{', '.join(map(str, shape))}]"]
    lines += [layer.line() for layer in layers[:-1]] + [f"output {layers[-1].line()}"]
    path = tmp_path / "oracle.nn"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = nndsl.load(path)
    bits = sum(_format(input_fmt)) + 1
    inputs = np.concatenate([
        np.stack([np.full(shape, v) for v in (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, 0)]),
        np.random.default_rng(len(case)).integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(37, *shape)),
    ]).astype(model.graph.input.type.dtype.numpy)
    trace = model.trace(inputs)
    clamped = 0
    for k, x in enumerate(inputs):
        expected = oracle(layers, input_fmt, x)
        for layer in layers:
            got = trace[layer.name][k]
            want = expected[layer.name].astype(np.int64)
            assert np.array_equal(got.astype(np.int64), want), (
                f"{case}: '{layer.name}' on input {k} {x.tolist()}: NumPy {got.tolist()}, semantics {want.tolist()}")
            int_bits, frac = _format(layer.fmt or input_fmt)
            clamped += int(np.isin(want, (-(2 ** (int_bits + frac)), 2 ** (int_bits + frac) - 1)).sum())
    assert clamped > 0, f"{case}: no value reached its format's bounds: the saturating cases test nothing"


# --------------------------------------------------------------------------
# shift_round: the C runtime against Python, both against the definition
# --------------------------------------------------------------------------

CALL_SHIFT_ROUND = r"""
static int call_op(int32_t op, const int32_t *p, const int32_t *in, int32_t *out)
{
    int32_t k;
    if (op != 1) {
        return 5;
    }
    for (k = 0; k < p[1]; ++k) {
        out[k] = nn_shift_round(in[k], p[0]);
    }
    return 0;
}
"""

# (x, shift, x * 2^-shift rounded half away from zero, or saturated to int32)
HAND_EXAMPLES = [
    (5, 1, 3), (-5, 1, -3), (6, 2, 2), (-6, 2, -2), (7, 2, 2), (-7, 2, -2), (5, 2, 1), (-5, 2, -1),
    (2, 2, 1), (-2, 2, -1), (1, 1, 1), (-1, 1, -1), (1, 2, 0), (-1, 2, 0), (3, 1, 2), (-3, 1, -2),
    (0, 31, 0), (2**30, 31, 1), (-(2**30), 31, -1), (2**30 - 1, 31, 0), (INT32_MAX, 31, 1), (INT32_MIN, 31, -1),
    (INT32_MAX, 0, INT32_MAX), (INT32_MIN, 0, INT32_MIN), (3, -2, 12), (-3, -2, -12),
    (2**30 - 1, -1, 2**31 - 2), (2**30, -1, INT32_MAX), (-(2**30), -1, INT32_MIN), (-(2**30) - 1, -1, INT32_MIN),
    (1, -30, 2**30), (1, -31, INT32_MAX), (-1, -31, INT32_MIN), (INT32_MAX, -31, INT32_MAX),
    (INT32_MIN, -31, INT32_MIN), (0, -31, 0),
]


def shift_round_definition(x: int, shift: int) -> int:
    """``x * 2^-shift``: halves away from zero for a right shift, saturated to int32 for a left one."""
    if shift > 0:
        return _round_half_away(Fraction(x, 2**shift))
    return min(max(x << -shift, INT32_MIN), INT32_MAX)


@pytest.fixture(scope="module")
def shift_harness(tmp_path_factory: pytest.TempPathFactory, compiler: str) -> Path:
    """``nn_shift_round`` (runtime/shift.c after requant.c) in a sanitized harness, built once."""
    work = tmp_path_factory.mktemp("shift_round")
    return build_harness(work, ["requant.c", "shift.c"], op_cases_source("int32_t", CALL_SHIFT_ROUND),
                         compiler=compiler)


def _c_shift_round(binary: Path, cases: list[tuple[int, Array]], work: Path) -> list[Array]:
    """``nn_shift_round`` on each ``(shift, xs)``."""
    ops = [OpCase(1, (shift, len(xs)), xs.astype(np.int32), np.zeros(len(xs), dtype=np.int32))
           for shift, xs in cases]
    return run_op_cases(binary, ops, work, np.int32)


def _shift_cases(shift: int, rng: np.random.Generator) -> Array:
    """Edges (int32's ends, 0, +-1), values at and beside each rounding half and saturation threshold, random."""
    values = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX, 2**30, -(2**30)}
    if shift > 0:
        half, unit = 2 ** (shift - 1), 2**shift
        for k in (-3, -2, -1, 0, 1, 2, 3, -(2 ** (31 - shift)), 2 ** (31 - shift) - 1):
            for offset in (-half - 1, -half, -half + 1, half - 1, half, half + 1, 0):
                values.add(k * unit + offset)
        values |= {INT32_MAX - half, INT32_MAX - half + 1, INT32_MIN + half, INT32_MIN + half - 1}
    else:
        top, bottom = INT32_MAX >> -shift, INT32_MIN >> -shift
        values |= {top, top + 1, top - 1, bottom, bottom - 1, bottom + 1}
    values |= {int(v) for v in rng.integers(INT32_MIN, INT32_MAX, size=64, endpoint=True)}
    values |= {int(v) for v in rng.integers(-1000, 1001, size=32)}
    values |= {int(v) >> int(s) for v, s in zip(rng.integers(INT32_MIN, INT32_MAX, size=64, endpoint=True),
                                                 rng.integers(0, 31, size=64), strict=True)}
    return np.array(sorted(v for v in values if INT32_MIN <= v <= INT32_MAX), dtype=np.int64)


def test_c_shift_round_equals_python(shift_harness: Path, tmp_path: Path) -> None:
    """``nn_shift_round`` == ``shift_round`` == the definition, for every shift from -31 to 31."""
    rng = np.random.default_rng(31)
    cases = [(shift, _shift_cases(shift, rng)) for shift in range(-31, 32)]
    for (shift, xs), got in zip(cases, _c_shift_round(shift_harness, cases, tmp_path), strict=True):
        python = shift_round(xs, shift)
        definition = np.array([shift_round_definition(int(v), shift) for v in xs], dtype=np.int64)
        assert np.array_equal(python, definition), f"shift_round(., {shift}) differs from its definition"
        differs = np.flatnonzero(got.astype(np.int64) != python)
        assert differs.size == 0, (f"shift {shift}: C nn_shift_round({int(xs[differs[0]])}) = "
                                   f"{int(got[differs[0]])}, Python {int(python[differs[0]])}")


@pytest.mark.parametrize(("x", "shift", "expected"), HAND_EXAMPLES)
def test_shift_round_hand_examples(x: int, shift: int, expected: int) -> None:
    """Halves round away from zero (5>>1 -> 3, -5>>1 -> -3, 6>>2 -> 2, -6>>2 -> -2, 7>>2 -> 2); left
    shifts are exact until they saturate at int32's ends."""
    assert shift_round_definition(x, shift) == expected
    assert int(shift_round(x, shift)) == expected
    assert int(shift_round(np.array([x, x]), shift)[1]) == expected


def test_c_shift_round_hand_examples(shift_harness: Path, tmp_path: Path) -> None:
    cases = [(shift, np.array([x])) for x, shift, _ in HAND_EXAMPLES]
    got = _c_shift_round(shift_harness, cases, tmp_path)
    for (x, shift, expected), value in zip(HAND_EXAMPLES, got, strict=True):
        assert int(value[0]) == expected, f"C nn_shift_round({x}, {shift}) = {int(value[0])}, expected {expected}"


@pytest.mark.parametrize("shift", [-32, 32, 40, -100])
def test_shift_round_refuses_shifts_beyond_31(shift: int) -> None:
    with pytest.raises(ValueError, match="beyond"):
        shift_round(1, shift)

