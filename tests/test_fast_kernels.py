"""The int8 runtime kernels (``backends/c/runtime/matmul.c``, ``depthwise.c``) equal the plain loops, bit for bit.

Dense, convolution and depthwise layers of random shapes (odd channel and unit counts,
depths not a multiple of 2 or 4, strides, dilation, padding, 1x1 windows,
per-channel and per-tensor quantisation, extreme zero points, inputs at -128
and 127) are built to C and run: on the host (the portable C), and on an
emulated Cortex-M4 in the DSP (SMLAD) and the ``NNDSL_PORTABLE`` variants.
Each output must equal the NumPy backend's, which runs the reference
arithmetic of ``nndsl/qmath``. Layers outside the kernel's reach (a window too
large to gather, a bias whose folded form could overflow) keep the plain loops.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from nndsl.backends.c.emit import interleave_row_pairs

import nndsl
from nndsl.fast_kernels import MAX_GATHERED_TAPS, folded_bias, scaling_fits
from tests.c_harness import find_compiler, run_in_c

Array = npt.NDArray[np.generic]
CASES = 24  # random layers per kind; each runs on the host and in both emulated variants


@dataclass(frozen=True)
class Layer:
    """One random int8 layer: its ``.nn`` text and weights."""

    text: str
    weights: dict[str, Array]
    input_shape: tuple[int, ...]


def _zero_point(rng: np.random.Generator) -> int:
    return int(rng.choice([-128, 127, -1, 0, int(rng.integers(-128, 128))]))


def _weights(rng: np.random.Generator, shape: tuple[int, ...], units: int, per_channel: bool) -> dict[str, Array]:
    kernel = rng.integers(-128, 128, size=shape).astype(np.int8)
    kernel.reshape(-1)[: rng.integers(0, 3)] = -128  # the extreme weight, at least sometimes
    scales = rng.uniform(0.002, 0.03, size=units if per_channel else 1).astype(np.float32)
    bias = rng.integers(-20000, 20000, size=units).astype(np.int32)
    return {"w": kernel, "w.scale": scales, "b": bias}


def random_layer(rng: np.random.Generator, kind: str) -> Layer:
    """A dense, conv or depthwise layer (1-D or 2-D) with a random shape and quantisation."""
    in_q = f"@ scale({rng.uniform(0.01, 0.1):.6f}) zero({_zero_point(rng)})"
    out_q = f"@ scale({rng.uniform(0.05, 0.5):.6f}) zero({_zero_point(rng)})"
    activation = str(rng.choice(["", " -> relu", " -> relu6"]))
    per_channel = bool(rng.integers(0, 2))
    units = int(rng.integers(1, 12))
    if kind == "dense":
        rows, features = int(rng.integers(1, 4)), int(rng.integers(1, 40))
        shape: tuple[int, ...] = (rows, features) if rows > 1 else (features,)
        call = "dense(x, w, b)"
        weights = _weights(rng, (features, units), units, per_channel)
    else:
        rank = int(kind[-2])
        channels = int(rng.integers(1, 10))
        depthwise = kind.startswith("depthwise")
        if depthwise:
            units = channels  # one output channel per input channel: the depthwise kernel's case
        window = tuple(int(v) for v in rng.integers(1, 5, size=rank))
        if rng.integers(0, 3) == 0:
            window = (1,) * rank  # a pointwise convolution
        spatial = tuple(int(w + rng.integers(0, 9)) for w in window)
        shape = (*spatial, channels)
        stride = tuple(int(v) for v in rng.integers(1, 4, size=rank))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=rank))
        if rng.integers(0, 2):
            stride = (1,) * rank
        if rng.integers(0, 2):
            dilation = (1,) * rank
        padding = str(rng.choice(["same", "valid"]))
        if padding == "valid":  # the dilated window must fit
            spatial = tuple(max(s, (w - 1) * d + 1) for s, w, d in zip(spatial, window, dilation, strict=True))
            shape = (*spatial, channels)
        fmt = (lambda t: str(t[0])) if rank == 1 else (lambda t: f"({t[0]}, {t[1]})")
        op = "depthwise_conv" if depthwise else "conv"
        call = f"{op}{rank}d(x, w, b, stride={fmt(stride)}, dilation={fmt(dilation)}, padding={padding})"
        weights = _weights(rng, (*window, channels, 1 if depthwise else units), units, per_channel)
    dims = ", ".join(map(str, shape))
    text = (f"network layer\nweights \"layer.npz\"\ninput x : i8[{dims}] {in_q}\n"
            f"output y = {call}{activation} : i8 {out_q}\n")
    return Layer(text, weights, shape)


def extreme_inputs(rng: np.random.Generator, shape: tuple[int, ...], count: int) -> Array:
    """Random inputs, with the first all -128 and the second all 127."""
    batch = rng.integers(-128, 128, size=(count, *shape)).astype(np.int8)
    batch[0], batch[1] = -128, 127
    return batch


def load(layer: Layer, folder: Path) -> nndsl.Model:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "layer.npz", **layer.weights)  # type: ignore[arg-type]
    (folder / "layer.nn").write_text(layer.text, encoding="utf-8")
    return nndsl.load(folder / "layer.nn")


def c_source(model: nndsl.Model) -> str:
    return model.c_sources()[0]


KINDS = ("dense", "conv1d", "conv2d", "depthwise_conv1d", "depthwise_conv2d")
KERNEL_CALLS = {"dense": "nn_mat_s8(", "conv1d": "nn_mat_s8(", "conv2d": "nn_mat_s8(",
                "depthwise_conv1d": "nn_depthwise_s8(", "depthwise_conv2d": "nn_depthwise_s8("}


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
@pytest.mark.parametrize("kind", KINDS)
def test_host_c_equals_numpy(kind: str, tmp_path: Path) -> None:
    """The portable C of the kernels on random layers equals the NumPy backend exactly."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    used = 0
    for case in range(CASES):
        layer = random_layer(rng, kind)
        model = load(layer, tmp_path / str(case))
        used += KERNEL_CALLS[kind] in c_source(model)
        x = extreme_inputs(rng, layer.input_shape, 6)
        got = run_in_c(model, x, work_dir=tmp_path / str(case))
        assert np.array_equal(got, np.asarray(model.run(x))), (case, layer.text)
    assert used == CASES  # every layer took the runtime kernel


def test_interleaved_rows_hold_every_weight_once() -> None:
    rng = np.random.default_rng(3)
    for units in range(1, 6):
        for depth in range(1, 11):
            weights = rng.integers(-128, 128, size=(units, depth)).astype(np.int8)
            stored = interleave_row_pairs(weights)
            assert stored.size == weights.size
            assert sorted(stored.tolist()) == sorted(weights.reshape(-1).tolist())
            whole = depth - depth % 4
            if units >= 2:  # the first pair: rows 0 and 1 alternate by fours, then their tails
                first = stored[: 2 * depth]
                assert np.array_equal(first[: 2 * whole].reshape(-1, 2, 4)[:, 0].reshape(-1), weights[0, :whole])
                assert np.array_equal(first[: 2 * whole].reshape(-1, 2, 4)[:, 1].reshape(-1), weights[1, :whole])
                assert np.array_equal(first[2 * whole : 2 * whole + depth - whole], weights[0, whole:])
            if units % 2:
                assert np.array_equal(stored[-depth:], weights[-1])


def test_folded_bias_refuses_what_could_overflow() -> None:
    weights = np.full((2, 4), -128, dtype=np.int8)
    folded = folded_bias(weights, np.array([5, -5], dtype=np.int32), input_offset=128)
    assert folded is not None and folded.tolist() == [5 - 128 * 512, -5 - 128 * 512]
    huge = np.array([2**31 - 100, 0], dtype=np.int64)
    assert folded_bias(weights, huge, input_offset=0) is None  # 2^31 - 100 + 128 * 512 leaves int32


def test_the_kernels_requantise_only_what_their_formula_covers() -> None:
    from nndsl import ir

    typical = ir.Requant(0, 0, (1500000000, 1100000000), (-7, -1), -128, 127)
    assert scaling_fits(np.array([2**29, 5], np.int64), typical)
    assert not scaling_fits(np.array([2**30, 5], np.int64), typical)  # twice the accumulator leaves int32
    for multipliers, shifts in (((2**30,), (-3,)), ((0,), (0,)), ((1500000000,), (0,)), ((1500000000,), (2,))):
        assert not scaling_fits(np.array([7], np.int64), ir.Requant(0, 0, multipliers, shifts, -128, 127))


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_layers_outside_the_kernel_keep_the_plain_loops(tmp_path: Path) -> None:
    """A window with more taps than the gather buffer holds, a bias near the int32 limit, and a depthwise
    layer with a depth multiplier of 2."""
    rng = np.random.default_rng(7)
    channels = MAX_GATHERED_TAPS // 9 + 1  # a 3x3 window of these has more taps than the buffer
    wide = Layer(
        f"network layer\nweights \"layer.npz\"\ninput x : i8[5, 5, {channels}] @ scale(0.05) zero(3)\n"
        "output y = conv2d(x, w, b, padding=same) : i8 @ scale(0.5) zero(-7)\n",
        _weights(rng, (3, 3, channels, 3), 3, per_channel=True), (5, 5, channels))
    # The plain loops' sums stay below 2^31 (bias + 255 * 127 * 6); the folded bias's bound, |bias + 128 * 762|
    # + 128 * 762, does not.
    near_limit = Layer(
        "network layer\nweights \"layer.npz\"\ninput x : i8[6] @ scale(0.05) zero(-128)\n"
        "output y = dense(x, w, b) : i8 @ scale(1000000.0) zero(0)\n",
        {"w": np.full((6, 2), 127, np.int8), "w.scale": np.array([0.01], np.float32),
         "b": np.array([2**31 - 194500, -(2**31) + 194500], np.int32)}, (6,))
    multiplier = Layer(
        "network layer\nweights \"layer.npz\"\ninput x : i8[6, 5, 3] @ scale(0.05) zero(-128)\n"
        "output y = depthwise_conv2d(x, w, b, padding=same) : i8 @ scale(0.2) zero(5)\n",
        _weights(rng, (3, 3, 3, 2), 6, per_channel=True), (6, 5, 3))
    for index, layer in enumerate((wide, near_limit, multiplier)):
        model = load(layer, tmp_path / str(index))
        assert "nn_mat_s8(" not in c_source(model) and "nn_depthwise_s8(" not in c_source(model)
        x = extreme_inputs(rng, layer.input_shape, 4)
        assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / str(index)), np.asarray(model.run(x)))


def _emulator_ready() -> str | None:
    for module in ("unicorn", "elftools", "capstone"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed"
    if shutil.which("arm-none-eabi-gcc") is None:
        return "arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    return None


@pytest.mark.skipif(_emulator_ready() is not None, reason=str(_emulator_ready()))
@pytest.mark.parametrize("kind", KINDS)
def test_dsp_and_portable_on_the_m4_equal_numpy(kind: str, tmp_path: Path) -> None:
    """The SMLAD path and the portable path, cross-compiled and emulated, on random layers."""
    from benchmarks.m4 import build, elf, emulator

    rng = np.random.default_rng(100 + sum(map(ord, kind)))
    for case in range(CASES // 3):
        layer = random_layer(rng, kind)
        model = load(layer, tmp_path / str(case))
        x = extreme_inputs(rng, layer.input_shape, 3)
        expected = np.asarray(model.run(x))
        for variant in sorted(build.VARIANTS):
            made = build.build_model(model, tmp_path / str(case) / variant, opt="-O2", variant=variant)
            image = elf.load(made.elf)
            for index in range(len(x)):
                result = emulator.run(image, x[index], expected.dtype, entry=f"{model.name}_run")
                assert result.status == 0
                assert np.array_equal(result.output, expected[index].reshape(-1)), (case, variant, layer.text)
