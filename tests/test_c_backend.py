"""The generated C against the NumPy backend.

int8 models must agree bit for bit: every comparison is ``np.array_equal`` on
the int8 outputs, zero differing bytes, never a tolerance. f32 models agree
within a relative error of 1e-5, relative to the largest magnitude in the
reference (NumPy) output row of the same input; a few ill-conditioned rows are
held to 1e-5 of their rounding magnitude instead (see :func:`assert_close_f32`).

Each network is compiled once and all its inputs go through one process
(:mod:`tests.c_harness`). Random networks come from seeded generators, so every
run tests the same networks.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl import ir
from nndsl.types import DType
from tests.c_harness import CRunError, build_program, c_name, compile_program, find_compiler, run_program
from tests.conftest import DATA, EXAMPLES, ROOT

Array = npt.NDArray[np.generic]

INT8_SEEDS = range(25)
F32_SEEDS = range(10)
RANDOM_INPUTS = 1000
F32_RTOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _needs_compiler() -> None:
    if find_compiler() is None:
        pytest.skip("gcc not found")


# --------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------


def assert_exact(got: Array, expected: Array, what: str) -> None:
    """Bit-exact: same dtype and shape, zero differing bytes."""
    assert got.dtype == expected.dtype and got.shape == expected.shape, (
        f"{what}: C gives {got.dtype}{got.shape}, NumPy {expected.dtype}{expected.shape}"
    )
    differs = np.flatnonzero((got != expected).reshape(len(got), -1).any(axis=1))
    assert differs.size == 0, (
        f"{what}: {np.count_nonzero(got != expected)} values differ in {differs.size} of {len(got)} outputs; "
        f"first at item {differs[0]}: C {got[differs[0]].reshape(-1).tolist()} "
        f"NumPy {expected[differs[0]].reshape(-1).tolist()}"
    )


def rounding_magnitude(graph: ir.Graph, batch: Array) -> npt.NDArray[np.float64]:
    """Per input, the magnitude float32 rounding errors of an f32 graph scale with.

    The network run in float64 on ``|x|`` with ``|kernel|`` and ``|bias|`` and no
    clamps: a dot product's rounding error is at most ``n * eps * sum |x_i w_i|``,
    and each layer passes earlier errors on through its ``|kernel|``. Softmax
    scales input errors by ``beta``. Returns the largest entry of each input's row.
    """
    values: dict[str, npt.NDArray[np.float64]] = {graph.input.name: np.abs(np.asarray(batch, dtype=np.float64))}
    for op in graph.ops:
        x = values[op.input.name]
        match op:
            case ir.Dense():
                assert op.kernel.data is not None
                y = x @ np.abs(op.kernel.data.astype(np.float64))
                if op.bias is not None and op.bias.data is not None:
                    y = y + np.abs(op.bias.data.astype(np.float64))
            case ir.Softmax():
                y = np.broadcast_to(op.beta * x.max(axis=-1, keepdims=True), x.shape)
            case _:
                y = x
        values[op.output.name] = y.reshape((len(x), *op.output.type.shape))
    out = values[graph.output.name]
    magnitude: npt.NDArray[np.float64] = out.reshape(len(out), -1).max(axis=1)
    return magnitude


def assert_close_f32(got: Array, expected: Array, what: str,
                     magnitude: npt.NDArray[np.float64] | None = None) -> None:
    """f32: ``max |C - NumPy|`` over an output row <= 1e-5 * ``max |NumPy|`` over that row.

    The row is one input's whole output. The denominator is floored at the
    smallest normal float32, so an all-zero reference row must be matched exactly.

    C sums in order and NumPy's matmul does not, so a row left small by
    cancelling sums (after relus zeroed the rest) can legitimately miss this.
    Given the row's :func:`rounding_magnitude`, such an ill-conditioned row
    passes if ``max |C - NumPy| <= 1e-5 * magnitude`` instead; at most 5% of
    rows may need that (a sweep of 300 networks needed it for at most 1.3%, and
    there stayed 45 times under the bound).
    """
    assert got.dtype == expected.dtype == np.float32 and got.shape == expected.shape, what
    rows_got = got.reshape(len(got), -1).astype(np.float64)
    rows_ref = expected.reshape(len(expected), -1).astype(np.float64)
    assert np.all(np.isfinite(rows_got)) and np.all(np.isfinite(rows_ref)), f"{what}: non-finite outputs"
    difference = np.abs(rows_got - rows_ref).max(axis=1)
    relative = difference / np.maximum(np.abs(rows_ref).max(axis=1), np.finfo(np.float32).tiny)
    failing = relative > F32_RTOL
    if magnitude is not None and failing.any():
        excused = failing & (difference <= F32_RTOL * magnitude)
        assert excused.sum() <= 0.05 * len(got), f"{what}: {excused.sum()} ill-conditioned rows of {len(got)}"
        failing &= ~excused
    if failing.any():
        worst = int(np.argmax(np.where(failing, relative, -1.0)))
        raise AssertionError(
            f"{what}: relative error {relative[worst]:.3g} at item {worst} ({failing.sum()} rows over {F32_RTOL}): "
            f"C {rows_got[worst].tolist()} NumPy {rows_ref[worst].tolist()}"
        )


def assert_matches(got: Array, model: nndsl.Model, inputs: Array, what: str) -> None:
    """C output ``got`` against ``model.run(inputs)``: bit-exact for integer models,
    :func:`assert_close_f32` for f32 ones."""
    expected = model.run(inputs)
    if expected.dtype == np.float32:
        assert_close_f32(got, expected, what, rounding_magnitude(model.graph, inputs))
    else:
        # Bit-exact: np.array_equal, zero differing bytes.
        assert_exact(got, expected, what)


# --------------------------------------------------------------------------
# Random networks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomNetwork:
    """A generated ``.nn`` text and the arrays of its ``.npz``."""

    name: str
    text: str
    weights: dict[str, Array]

    def write(self, directory: Path) -> nndsl.Model:
        """Write ``<name>.nn`` and ``<name>.npz`` into ``directory`` and load the model."""
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / f"{self.name}.npz", **self.weights)  # type: ignore[arg-type]
        path = directory / f"{self.name}.nn"
        path.write_text(self.text, encoding="utf-8")
        return nndsl.load(path)


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int | None = None) -> npt.NDArray[np.float64]:
    return np.exp(rng.uniform(math.log(low), math.log(high), size=size))


def _f32(value: float) -> float:
    return float(np.float32(value))


def _q(scale: float, zero: int) -> str:
    """An int8 annotation; ``repr`` of the float32 value reads back as the same float32."""
    return f"i8 @ scale({_f32(scale)!r}) zero({zero})"


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))


def _input_stage(rng: np.random.Generator, lines: list[str], dtype: str, quant: str) -> tuple[str, tuple[int, ...]]:
    """The input and an optional flatten/reshape of it: (tensor name, its shape)."""
    layout = str(rng.choice(["vector", "flatten", "reshape", "rows"]))
    if layout == "vector":
        shape: tuple[int, ...] = (int(rng.integers(1, 41)),)
    else:
        shape = (int(rng.integers(2, 6)), int(rng.integers(1, 11)))
    lines.append(f"input x : {dtype}[{_dims(shape)}]{quant}")
    if layout == "flatten":
        lines.append("x_flat = flatten(x)")
        return "x_flat", (shape[0] * shape[1],)
    if layout == "reshape":
        total = shape[0] * shape[1]
        rows = int(rng.choice([d for d in range(1, total + 1) if total % d == 0 and total // d <= 40]))
        lines.append(f"x_2d = reshape(x, shape=({rows}, {total // rows}))")
        return "x_2d", (rows, total // rows)
    return "x", shape


def _clamp_bounds(activation: str, scale: float, zero: int) -> tuple[int, int]:
    """The int8 clamp of an activation on an output of this quantisation (roughly, for the generator)."""
    low = zero if activation in ("relu", "relu6") else -128
    high = min(127, zero + round(6 / scale)) if activation == "relu6" else 127
    return max(low, -128), high


def random_int8_network(seed: int) -> RandomNetwork:
    """An int8 network: input (maybe reshaped or flattened, maybe through an activation),
    1-4 dense layers of width 1-40 with fused, stand-alone or no relu/relu6, maybe a softmax.

    Input and output scales are log-uniform in [1e-3, 1] and zero points uniform
    in [-128, 127]; kernels are uniform int8 with per-tensor or per-channel
    scales. The generator pushes a sample of inputs through a float
    approximation of the network, so that (like a calibrated model) biases
    roughly centre each channel (|b| < 2**16) and the kernel scales give
    requantisation multipliers that spread outputs over tens of int8 steps
    (times a random factor of 3 either way). One layer in ten instead gets a
    multiplier above one (a left shift, mostly saturating).
    """
    rng = np.random.default_rng(1_000_003 * (seed + 1))
    name = f"rand_i8_{seed}"
    lines = [f"# random int8 network, seed {seed}", f"network {name}", f'weights "{name}.npz"']
    weights: dict[str, Array] = {}
    scale = _f32(float(_log_uniform(rng, 1e-3, 1.0)))
    zero = int(rng.integers(-128, 128))
    current, shape = _input_stage(rng, lines, "i8", f" @ scale({scale!r}) zero({zero})")
    # The generator's float view of the current tensor's int8 values, for 256 inputs.
    sample = rng.integers(-128, 128, size=(256, *shape)).astype(np.float64)

    if rng.random() < 0.25:  # an activation on the (maybe reshaped) input: never fused
        kind = str(rng.choice(["relu6", "relu", "relu_rescaled"]))
        if kind == "relu_rescaled":
            new_scale, new_zero = _f32(scale * float(_log_uniform(rng, 0.25, 4.0))), int(rng.integers(-128, 128))
            lines.append(f"x_act = relu({current}) : {_q(new_scale, new_zero)}")
            sample = np.clip(np.round((sample - zero) * scale / new_scale) + new_zero, max(new_zero, -128), 127)
            scale, zero = new_scale, new_zero
        else:
            lines.append(f"x_act = {kind}({current})")
            sample = np.clip(sample, *_clamp_bounds(kind, scale, zero))
        current = "x_act"

    for layer in range(int(rng.integers(1, 5))):
        features, units = shape[-1], int(rng.integers(1, 41))
        out_scale, out_zero = _f32(float(_log_uniform(rng, 1e-3, 1.0))), int(rng.integers(-128, 128))
        kernel_name, bias_name = f"fc{layer}.kernel", f"fc{layer}.bias"
        kernel = rng.integers(-128, 128, size=(features, units), dtype=np.int8)
        weights[kernel_name] = kernel
        acc = ((sample - zero) @ kernel.astype(np.float64)).reshape(-1, units)
        args = f"{current}, {kernel_name}"
        if rng.random() < 0.85:
            centre = -acc.mean(axis=0) + rng.normal(size=units) * acc.std(axis=0) * 0.5
            bias = np.clip(np.round(centre), -(2**16) + 1, 2**16 - 1).astype(np.int32)
            weights[bias_name] = bias
            args += f", {bias_name}"
            acc = acc + bias
        if rng.random() < 0.1:
            multipliers = np.full(units, float(_log_uniform(rng, 1.0, 30.0)))
        else:
            multipliers = 40.0 * float(_log_uniform(rng, 1 / 3, 3.0)) / np.maximum(acc.std(axis=0), 1.0)
        if units > 1 and rng.random() < 0.6:
            kernel_scale: Array = (multipliers * out_scale / scale).astype(np.float32)
        else:  # per tensor: a 0-d array or one value
            multipliers = np.full(units, float(np.median(multipliers)))
            kernel_scale = np.full(() if rng.random() < 0.5 else 1, multipliers[0] * out_scale / scale, np.float32)
        weights[f"{kernel_name}.scale"] = kernel_scale
        acc = np.round(acc * multipliers) + out_zero

        style = str(rng.choice(["none", "fused", "separate", "rescaled", "fused_then_relu6"]))
        dense = f"dense({args})"
        name_out = f"h{layer}"
        activation = "none"
        if style == "none":
            lines.append(f"{name_out} = {dense} : {_q(out_scale, out_zero)}")
        elif style == "fused":
            activation = str(rng.choice(["relu", "relu6"]))
            lines.append(f"{name_out} = {dense} -> {activation} : {_q(out_scale, out_zero)}")
        else:
            fused = " -> relu" if style == "fused_then_relu6" else ""
            lines.append(f"d{layer} = {dense}{fused} : {_q(out_scale, out_zero)}")
            if style == "separate":  # same quantisation: the pass fuses it into the dense
                activation = str(rng.choice(["relu", "relu6"]))
                lines.append(f"{name_out} = {activation}(d{layer})")
            elif style == "fused_then_relu6":  # not fusable: a clamp of its own
                activation = "relu6"
                lines.append(f"{name_out} = relu6(d{layer})")
            else:  # a new scale and zero point: a requantising relu
                acc = np.clip(acc, -128, 127)
                new_scale = _f32(out_scale * float(_log_uniform(rng, 0.25, 4.0)))
                new_zero = int(rng.integers(-128, 128))
                lines.append(f"{name_out} = relu(d{layer}) : {_q(new_scale, new_zero)}")
                acc = np.round((acc - out_zero) * out_scale / new_scale) + new_zero
                out_scale, out_zero, activation = new_scale, new_zero, "relu"
        sample = np.clip(acc, *_clamp_bounds(activation, out_scale, out_zero)).reshape(len(sample), *shape[:-1], units)
        current, shape, scale, zero = name_out, (*shape[:-1], units), out_scale, out_zero

    ending = rng.random()
    if ending < 0.3:
        beta = "" if rng.random() < 0.5 else f", beta={float(_log_uniform(rng, 0.1, 4.0)):.4g}"
        annotation = " : i8 @ scale(1/256) zero(-128)" if rng.random() < 0.3 else ""
        lines.append(f"output probs = softmax({current}{beta}){annotation}")
    elif ending < 0.45 and len(shape) == 2:
        lines.append(f"output flat = flatten({current})")  # the output is a view of the last dense
    else:
        lines.append(f"output {current}")
    return RandomNetwork(name, "\n".join(lines) + "\n", weights)


def random_f32_network(seed: int) -> RandomNetwork:
    """An f32 network of the same shapes: float kernels and biases, relu/relu6, maybe a softmax."""
    rng = np.random.default_rng(2_000_003 * (seed + 1))
    name = f"rand_f32_{seed}"
    lines = [f"# random f32 network, seed {seed}", f"network {name}", f'weights "{name}.npz"']
    weights: dict[str, Array] = {}
    current, shape = _input_stage(rng, lines, "f32", "")
    if rng.random() < 0.2:
        lines.append(f"x_act = {rng.choice(['relu', 'relu6'])}({current})")
        current = "x_act"
    for layer in range(int(rng.integers(1, 5))):
        features, units = shape[-1], int(rng.integers(1, 41))
        stored = np.float32 if rng.random() < 0.7 else np.float64  # float64 arrays are cast by the checker
        weights[f"fc{layer}.kernel"] = (rng.normal(size=(features, units)) * math.sqrt(2 / features)).astype(stored)
        args = f"{current}, fc{layer}.kernel"
        if rng.random() < 0.85:
            weights[f"fc{layer}.bias"] = (rng.normal(size=units) * 0.1).astype(stored)
            args += f", fc{layer}.bias"
        style = str(rng.choice(["none", "relu", "relu6", "separate"]))
        if style in ("relu", "relu6"):
            lines.append(f"h{layer} = dense({args}) -> {style}")
        elif style == "separate":
            lines.append(f"d{layer} = dense({args})")
            lines.append(f"h{layer} = {rng.choice(['relu', 'relu6'])}(d{layer})")
        else:
            lines.append(f"h{layer} = dense({args})")
        current, shape = f"h{layer}", (*shape[:-1], units)
    if rng.random() < 0.4:
        beta = "" if rng.random() < 0.5 else f", beta={float(_log_uniform(rng, 0.1, 4.0)):.4g}"
        lines.append(f"output probs = softmax({current}{beta})")
    else:
        lines.append(f"output {current}")
    return RandomNetwork(name, "\n".join(lines) + "\n", weights)


def random_inputs(model: nndsl.Model, count: int, seed: int) -> Array:
    """``count`` inputs: uniform int8 (plus the all -128, all 127 and all zero-point inputs),
    or normal float32 with standard deviation 2."""
    rng = np.random.default_rng(seed)
    in_type = model.graph.input.type
    if in_type.dtype is DType.F32:
        return (rng.normal(size=(count, *in_type.shape)) * 2).astype(np.float32)
    assert in_type.quant is not None
    edges = [np.full(in_type.shape, v, dtype=np.int8) for v in (-128, 127, in_type.quant.zero_point)]
    uniform = rng.integers(-128, 128, size=(count - len(edges), *in_type.shape), dtype=np.int8)
    return np.concatenate([np.stack(edges), uniform])


def _load(network: RandomNetwork, directory: Path) -> nndsl.Model:
    try:
        return network.write(directory)
    except nndsl.NNError as error:  # a generator bug, not a backend one: show the text
        raise AssertionError(f"generated network does not compile:\n{network.text}\n{error}") from error


# --------------------------------------------------------------------------
# The MLP example
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp() -> nndsl.Model:
    return nndsl.load(EXAMPLES / "mlp" / "mlp.nn")


@pytest.fixture(scope="module")
def mlp_inputs() -> Array:
    """The 450 reference test inputs, then 1000 uniform random int8 inputs."""
    rng = np.random.default_rng(64)
    reference = np.load(DATA / "mlp" / "x_test_int8.npy")
    return np.concatenate([reference, rng.integers(-128, 128, size=(RANDOM_INPUTS, 64), dtype=np.int8)])


def test_mlp_c_equals_numpy(mlp: nndsl.Model, mlp_inputs: Array, tmp_path: Path) -> None:
    program = build_program(mlp, tmp_path)
    got = run_program(program, mlp_inputs)
    # Bit-exact: zero differing bytes against NumPy, and against TFLM's stored outputs.
    assert_exact(got, mlp.run(mlp_inputs), "mlp")
    assert_exact(got[:450], np.load(DATA / "mlp" / "tflm_out.npy"), "mlp vs TFLM reference")


# --------------------------------------------------------------------------
# Random networks: C equals NumPy
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", INT8_SEEDS)
def test_random_int8_network_c_equals_numpy(seed: int, tmp_path: Path) -> None:
    network = random_int8_network(seed)
    model = _load(network, tmp_path)
    inputs = random_inputs(model, RANDOM_INPUTS, seed)
    # Bit-exact: np.array_equal, zero differing bytes.
    assert_exact(run_program(build_program(model, tmp_path), inputs), model.run(inputs), network.text)


@pytest.mark.parametrize("seed", F32_SEEDS)
def test_random_f32_network_c_close_to_numpy(seed: int, tmp_path: Path) -> None:
    network = random_f32_network(seed)
    model = _load(network, tmp_path)
    inputs = random_inputs(model, RANDOM_INPUTS, seed)
    # Relative to max |NumPy| of each output row, at most 1e-5 (see assert_close_f32).
    assert_matches(run_program(build_program(model, tmp_path), inputs), model, inputs, network.text)


def _features(graph: ir.Graph) -> set[str]:
    """What a graph exercises in the C backend."""
    found: set[str] = set()
    for op in graph.ops:
        match op:
            case ir.Dense(requant=None):
                found.add("dense_f32")
            case ir.Dense(requant=requant) if requant is not None:
                found.add("dense per-channel" if requant.per_channel else "dense per-tensor")
                found.add(f"dense -> {op.activation.value}")
                if op.bias is None:
                    found.add("dense without bias")
                if op.input.type.size > op.kernel.type.shape[0]:
                    found.add("dense over rows")
                if any(shift > 0 for shift in requant.shifts):
                    found.add("left shift")
            case ir.Activation(requant=requant) if requant is not None:
                identity = requant.multipliers == (1 << 30,) and requant.shifts == (1,)
                same = identity and requant.input_offset == -requant.output_offset
                found.add("activation clamp" if same else "activation requantise")
            case ir.Softmax(impl=kernel) if kernel is not None:
                found.add("softmax" if op.beta == 1.0 else "softmax with beta")
            case ir.Reshape():
                found.add("reshape")
    if graph.plan.roots[graph.output.name] != graph.output.name:
        found.add("output is a view")
    return found


def test_random_int8_networks_cover_the_backend(tmp_path: Path) -> None:
    """The seeds above exercise every int8 code path, and most networks give varied outputs."""
    covered: set[str] = set()
    varied = 0
    for seed in INT8_SEEDS:
        model = _load(random_int8_network(seed), tmp_path / str(seed))
        covered |= _features(model.graph)
        outputs = model.run(random_inputs(model, 200, seed))
        varied += len(np.unique(outputs.reshape(len(outputs), -1), axis=0)) > 20
    expected = {
        "dense per-channel", "dense per-tensor", "dense -> none", "dense -> relu", "dense -> relu6",
        "dense without bias", "dense over rows", "left shift", "activation clamp", "activation requantise",
        "softmax", "softmax with beta", "reshape", "output is a view",
    }
    assert expected <= covered, f"not covered: {sorted(expected - covered)}"
    assert varied >= 0.8 * len(INT8_SEEDS), f"only {varied} of {len(INT8_SEEDS)} networks give varied outputs"


# --------------------------------------------------------------------------
# Small networks at the edges of the emitter
# --------------------------------------------------------------------------

EDGE_NETWORKS: dict[str, tuple[str, dict[str, Callable[[np.random.Generator], Array]]]] = {
    # A relu6 on the input keeps its quantisation: a clamp that calls no runtime function.
    "relu6_on_input": ("input x : i8[8] @ scale(0.05) zero(-10)\noutput y = relu6(x)\n", {}),
    # Comment markers in the source line that the C comment quotes.
    "comment_markers": (
        "input x : i8[8] @ scale(0.05) zero(-10)\n"
        "output y = relu(x) : i8 @ scale(0.1) zero(3)  # see docs/*.md, */ and /*/\n",
        {},
    ),
    # The output is the input reshaped: no op writes it, the input is copied.
    "copy_input_i8": ("input x : i8[3, 4] @ scale(0.5) zero(1)\noutput y = flatten(x)\n", {}),
    "copy_input_f32": ("input x : f32[2, 3]\noutput y = reshape(x, shape=(3, 2))\n", {}),
    # Softmax straight on a 2-D input: rows read from the caller's buffer.
    "softmax_rows": ("input x : i8[3, 7] @ scale(0.1) zero(0)\noutput y = softmax(x)\n", {}),
    "softmax_f32_rows": ("input x : f32[3, 7]\noutput y = softmax(x, beta=0.5)\n", {}),
    # Weights named like the generated C: the API and the arena (<network>_run...),
    # a runtime function (nn_mbqm in network 'nn'), a typedef, and the per-channel
    # requantisation arrays of layer 'h'.
    "names": (
        'weights "names.npz"\n'
        "input x : i8[6] @ scale(0.05) zero(0)\n"
        "h = dense(x, run, arena) : i8 @ scale(0.1) zero(2)\n"
        "g = dense(h, h.multiplier, h.shift) -> relu : i8 @ scale(0.2) zero(-5)\n"
        "output y = dense(g, mbqm, input_t) : i8 @ scale(0.3) zero(7)\n",
        {
            "run": lambda r: r.integers(-128, 128, (6, 5), dtype=np.int8),
            "run.scale": lambda r: np.array([0.01, 0.02, 0.015, 0.03, 0.012], np.float32),
            "arena": lambda r: r.integers(-5000, 5000, 5, dtype=np.int32),
            "h.multiplier": lambda r: r.integers(-128, 128, (5, 4), dtype=np.int8),
            "h.multiplier.scale": lambda r: np.array([0.004, 0.006, 0.005, 0.007], np.float32),
            "h.shift": lambda r: r.integers(-5000, 5000, 4, dtype=np.int32),
            "mbqm": lambda r: r.integers(-128, 128, (4, 3), dtype=np.int8),
            "mbqm.scale": lambda r: np.array([0.01, 0.02, 0.03], np.float32),
            "input_t": lambda r: r.integers(-5000, 5000, 3, dtype=np.int32),
        },
    ),
}


@pytest.mark.parametrize("case", sorted(EDGE_NETWORKS))
@pytest.mark.parametrize("network_name", ["nn", "edge"])
def test_edge_network_c_equals_numpy(case: str, network_name: str, tmp_path: Path) -> None:
    body, arrays = EDGE_NETWORKS[case]
    rng = np.random.default_rng(5)
    if arrays:
        np.savez(tmp_path / "names.npz", **{key: make(rng) for key, make in arrays.items()})  # type: ignore[arg-type]
    path = tmp_path / f"{case}.nn"
    path.write_text(f"network {network_name}\n{body}", encoding="utf-8")
    model = nndsl.load(path)
    inputs = random_inputs(model, 300, 11)
    program = build_program(model, tmp_path / "build")
    for caller_arena in (False, True):
        assert_matches(run_program(program, inputs, caller_arena=caller_arena), model, inputs, case)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 1e39])
def test_non_finite_f32_weights_never_reach_c(bad: float, tmp_path: Path) -> None:
    """No C literal exists for them ('inff' does not compile): loading or building refuses."""
    kernel = np.ones((2, 2), dtype=np.float64)
    kernel[1, 0] = bad
    np.savez(tmp_path / "w.npz", k=kernel)
    path = tmp_path / "bad.nn"
    path.write_text('network bad\nweights "w.npz"\ninput x : f32[2]\noutput y = dense(x, k)\n', encoding="utf-8")
    with pytest.raises((nndsl.NNError, ValueError), match=r"finite|inf|nan"):
        nndsl.load(path).build(tmp_path / "build")
    assert not (tmp_path / "build" / "bad.c").exists()


# --------------------------------------------------------------------------
# Sanitizers
# --------------------------------------------------------------------------

SANITIZED = [("mlp", 0), ("int8", 0), ("int8", 1), ("int8", 2), ("int8", 3), ("f32", 0), ("f32", 1)]


@pytest.mark.parametrize(("kind", "seed"), SANITIZED)
def test_sanitizers_clean(kind: str, seed: int, tmp_path: Path) -> None:
    """AddressSanitizer and UBSan (every report fatal) on the model and the driver.

    The driver's input, output and (in arena mode) arena are heap blocks of
    exactly the declared sizes, so any access outside them is reported.
    """
    if kind == "mlp":
        model = nndsl.load(EXAMPLES / "mlp" / "mlp.nn")
    else:
        make = random_int8_network if kind == "int8" else random_f32_network
        model = _load(make(seed), tmp_path)
    inputs = random_inputs(model, RANDOM_INPUTS, 100 + seed)
    program = build_program(model, tmp_path / "asan", sanitize=True)
    for caller_arena in (False, True):
        assert_matches(run_program(program, inputs, caller_arena=caller_arena), model, inputs, f"{kind} {seed}")


def test_sanitizers_would_report(mlp: nndsl.Model, tmp_path: Path) -> None:
    """The sanitizer checks are not vacuous: a too-small arena and a signed overflow are reported."""
    inputs = random_inputs(mlp, 5, 1)
    name, upper = c_name(mlp), c_name(mlp).upper()
    assert mlp.graph.plan.arena_size > 4

    arena = tmp_path / "arena"
    mlp.build(arena, depfile=False)
    header = arena / f"{name}.h"
    size = f"#define {upper}_ARENA_SIZE {mlp.graph.plan.arena_size}\n"
    assert size in header.read_text()
    header.write_text(header.read_text().replace(size, f"#define {upper}_ARENA_SIZE {mlp.graph.plan.arena_size - 4}\n"))
    program = compile_program(mlp, arena, sanitize=True)
    with pytest.raises(CRunError, match="heap-buffer-overflow"):
        run_program(program, inputs, caller_arena=True)

    overflow = tmp_path / "overflow"
    mlp.build(overflow, depfile=False)
    source = overflow / f"{name}.c"
    body = "    unsigned char *arena = (unsigned char *)arena_memory;\n"
    assert body in source.read_text()
    injected = "    volatile int32_t big = INT32_MAX;\n    big = big + (int32_t)(input[0] != 1);\n"
    source.write_text(source.read_text().replace(body, injected + body))
    program = compile_program(mlp, overflow, sanitize=True)
    with pytest.raises(CRunError, match="signed integer overflow"):
        run_program(program, np.zeros_like(inputs))


# --------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------

_BUILD_SCRIPT = "import sys, nndsl; nndsl.load(sys.argv[1]).build(sys.argv[2], depfile=False)"


def _build_files(model: nndsl.Model, directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in model.build(directory, depfile=False)}


@pytest.mark.parametrize("kind", ["mlp", "int8", "f32"])
def test_builds_are_byte_identical(kind: str, tmp_path: Path) -> None:
    """Two loads and builds in this process, and one in a process with another hash seed."""
    if kind == "mlp":
        path = EXAMPLES / "mlp" / "mlp.nn"
    else:
        network = (random_int8_network if kind == "int8" else random_f32_network)(4)
        _load(network, tmp_path / "src")
        path = tmp_path / "src" / f"{network.name}.nn"
    first = _build_files(nndsl.load(path), tmp_path / "a")
    second = _build_files(nndsl.load(path), tmp_path / "b")
    assert sorted(first) == sorted(second) and len(first) == 2
    assert first == second
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", _BUILD_SCRIPT, str(path), str(tmp_path / "c")],
                   check=True, env=env, cwd=ROOT, timeout=120)
    third = {name: (tmp_path / "c" / name).read_bytes() for name in first}
    assert third == first


# --------------------------------------------------------------------------
# The generated header
# --------------------------------------------------------------------------


def _macros(header: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (.+?)\s*$", header, flags=re.MULTILINE))


@pytest.mark.parametrize("kind", ["mlp", "int8", "f32"])
def test_header_and_caller_arena(kind: str, tmp_path: Path) -> None:
    if kind == "mlp":
        model = nndsl.load(EXAMPLES / "mlp" / "mlp.nn")
    else:
        model = _load((random_int8_network if kind == "int8" else random_f32_network)(7), tmp_path)
    graph = model.graph
    program = build_program(model, tmp_path / "build")
    name = program.name
    header = (tmp_path / "build" / f"{name}.h").read_text(encoding="utf-8")
    upper = name.upper()
    macros = _macros(header)
    assert int(macros[f"{upper}_INPUT_SIZE"]) == graph.input.type.size
    assert int(macros[f"{upper}_OUTPUT_SIZE"]) == graph.output.type.size
    assert int(macros[f"{upper}_ARENA_SIZE"]) == graph.plan.arena_size
    assert f"#ifndef {upper}_H" in header and f"#define {upper}_H" in header
    c_in, c_out = graph.input.type.dtype.c_type, graph.output.type.dtype.c_type
    assert f"int {name}_run(const {c_in} *input, {c_out} *output);" in header
    assert f"int {name}_run_with_arena(const {c_in} *input, {c_out} *output, void *arena);" in header
    for end, tensor in (("INPUT", graph.input), ("OUTPUT", graph.output)):
        quant = tensor.type.quant
        if quant is None:
            assert f"{upper}_{end}_SCALE" not in macros
        else:
            assert np.float32(macros[f"{upper}_{end}_SCALE"].rstrip("f")) == np.float32(quant.scale)
            assert int(macros[f"{upper}_{end}_ZERO_POINT"].strip("()")) == quant.zero_point
    if kind == "mlp":
        assert (macros["MLP_INPUT_SIZE"], macros["MLP_OUTPUT_SIZE"]) == ("64", "10")

    inputs = random_inputs(model, RANDOM_INPUTS, 3)
    static = run_program(program, inputs)
    # A heap arena of exactly ARENA_SIZE bytes, scrambled before each call: same bytes out.
    with_arena = run_program(program, inputs, caller_arena=True)
    assert np.array_equal(static, with_arena)
    assert_matches(static, model, inputs, kind)


# --------------------------------------------------------------------------
# A wider sweep (make test-all, or -m slow): a minute or so
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1000, 1150))
def test_many_random_int8_networks_c_equals_numpy(seed: int, tmp_path: Path) -> None:
    test_random_int8_network_c_equals_numpy(seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1000, 1050))
def test_many_random_f32_networks_c_close_to_numpy(seed: int, tmp_path: Path) -> None:
    test_random_f32_network_c_close_to_numpy(seed, tmp_path)


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_weights_attribute_places_every_array(mlp: nndsl.Model, tmp_path: Path) -> None:
    """<NAME>_WEIGHTS_ATTRIBUTE puts every constant array in the section it names; left undefined, nothing
    changes (the weights stay in .rodata)."""
    mlp.build(tmp_path, depfile=False)
    compiler = find_compiler()
    assert compiler is not None
    section = '-DMLP_WEIGHTS_ATTRIBUTE=__attribute__((section(".model_weights")))'
    sizes = {}
    for name, flags in (("placed", [section]), ("default", [])):
        obj = tmp_path / f"{name}.o"
        subprocess.run([compiler, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", *flags,
                        str(tmp_path / "mlp.c"), "-o", str(obj)], check=True, capture_output=True)
        headers = subprocess.run(["objdump", "-h", str(obj)], check=True, capture_output=True, text=True).stdout
        sizes[name] = {fields[1]: int(fields[2], 16) for fields in (line.split() for line in headers.splitlines())
                       if len(fields) > 2 and fields[0].isdigit()}
    assert ".model_weights" not in sizes["default"]
    assert sizes["placed"][".model_weights"] >= mlp.summary().weight_bytes
    assert sizes["placed"].get(".rodata", 0) < sizes["default"][".rodata"] - mlp.summary().weight_bytes + 64
