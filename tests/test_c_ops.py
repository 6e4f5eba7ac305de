"""Random convolutional networks: the generated C against the NumPy backend.

A seeded generator writes int8 and f32 networks that mix every op of the
language (see :class:`_Builder`): 1-D and 2-D convolutions and depthwise
convolutions (odd sizes, stride 1-3, dilation 1-2, same/valid padding, depth
multipliers 1-2), max/avg pools, residual ``add`` of two branches with
different scales, ``concat`` on the channel axis and on spatial axes, ``pad``,
batch norms folded into the conv before them and stand-alone ones, fused and
stand-alone activations, reshape/flatten, and a global pool + dense (+ softmax)
head.

int8 networks must agree bit for bit: ``np.array_equal`` on the int8 outputs,
zero differing bytes, never a tolerance. f32 networks are held to the rule of
``tests/test_c_backend.py`` (:func:`assert_close_f32`: 1e-5 of the largest
magnitude in the NumPy output row, with the rounding-magnitude fallback for a
few ill-conditioned rows), given the rounding magnitude of these ops
(:func:`rounding_magnitude`).

Like a calibrated model, the generator picks every int8 output scale from a
float approximation of the network run on a sample of inputs, so that outputs
spread over many int8 steps instead of saturating (checked by
:func:`test_default_networks_cover_every_op`, which also checks that the
default networks run every op kind in both ranks). Each network is compiled
once, its 400 inputs go through one process, with the static arena and with a
scrambled caller arena; a few also run under AddressSanitizer and UBSan.
``EDGE_NETWORKS`` are small hand-written networks for what the generator
leaves out (ops writing the caller's output or reading its input directly,
one-pixel images, one weight array as a conv and a depthwise kernel).

Default: 12 int8 + 8 f32 networks, 4 of them again under the sanitizers, and
the edge networks; ``-m slow`` adds 100 int8 + 40 f32 networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl import ir
from nndsl.backend import backend
from nndsl.ops import SIGNATURES
from nndsl.qmath.gru import GruWeights, gru_f32
from nndsl.qmath.lstm import lstm_f32
from nndsl.types import DType
from tests.c_harness import build_program, find_compiler, run_program
from tests.test_c_backend import RandomNetwork, assert_close_f32, assert_exact, random_inputs

Array = npt.NDArray[np.generic]
Real = npt.NDArray[np.float64]

INT8_SEEDS = range(12)
F32_SEEDS = range(8)
SLOW_INT8_SEEDS = range(1000, 1100)
SLOW_F32_SEEDS = range(1000, 1040)
SANITIZED = [("i8", 0), ("i8", 3), ("f32", 0), ("f32", 1)]  # seed parity is the rank: 1-D and 2-D each
INPUTS = 400  # per network; int8 ones include the all -128, all 127 and all zero-point inputs
SAMPLE = 48  # inputs the generator pushes through its float approximation
MAX_CHANNELS = 12


@pytest.fixture(scope="module", autouse=True)
def _needs_compiler() -> None:
    if find_compiler() is None:
        pytest.skip("gcc not found")


# --------------------------------------------------------------------------
# Float helpers of the generator (independent of nndsl's own rules)
# --------------------------------------------------------------------------


def _f32(value: float) -> float:
    return float(np.float32(value))


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int | None = None) -> Real:
    return np.exp(rng.uniform(math.log(low), math.log(high), size=size))


def _q(quant: tuple[float, int]) -> str:
    scale, zero = quant
    if scale == 1 / 128 or scale == 1 / 256:  # the fixed scales of tanh, sigmoid and softmax, as written in models
        return f"i8 @ scale(1/{round(1 / scale)}) zero({zero})"
    return f"i8 @ scale({_f32(scale)!r}) zero({zero})"


def _out_length(length: int, size: int, stride: int, dilation: int, padding: str) -> tuple[int, tuple[int, int]]:
    """TensorFlow's rule: output length and (before, after) pads of one spatial axis."""
    effective = (size - 1) * dilation + 1
    if padding == "same":
        out = -(-length // stride)
        total = max((out - 1) * stride + effective - length, 0)
        return out, (total // 2, total - total // 2)
    return (length - effective) // stride + 1, (0, 0)


def _windows(x: Real, size: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
             pads: tuple[tuple[int, int], ...], fill: float) -> list[tuple[tuple[int, ...], Real]]:
    """Each kernel tap with the input values it sees at every output position: ``(N, *out, C)``."""
    rank = len(size)
    padded = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=fill)
    outs = [(padded.shape[1 + a] - ((size[a] - 1) * dilation[a] + 1)) // stride[a] + 1 for a in range(rank)]
    taps = []
    for tap in np.ndindex(*size):
        index: list[slice] = [slice(None)]
        for a in range(rank):
            start = tap[a] * dilation[a]
            index.append(slice(start, start + (outs[a] - 1) * stride[a] + 1, stride[a]))
        taps.append((tap, padded[tuple(index)]))
    return taps


def _conv_real(x: Real, kernel: Real, stride: tuple[int, ...], dilation: tuple[int, ...],
               pads: tuple[tuple[int, int], ...], depthwise: bool) -> Real:
    rank = x.ndim - 2
    size = kernel.shape[:rank]
    acc: Real | None = None
    for tap, view in _windows(x, size, stride, dilation, pads, 0.0):
        w = kernel[tap]
        term = (view[..., np.newaxis] * w).reshape((*view.shape[:-1], -1)) if depthwise else view @ w
        acc = term if acc is None else acc + term
    assert acc is not None
    return acc


def _pool_real(x: Real, is_max: bool, size: tuple[int, ...], stride: tuple[int, ...],
               pads: tuple[tuple[int, int], ...]) -> Real:
    ones = (1,) * len(size)
    if is_max:
        return np.maximum.reduce([v for _, v in _windows(x, size, stride, ones, pads, -np.inf)])
    total = np.add.reduce([v for _, v in _windows(x, size, stride, ones, pads, 0.0)])
    count = np.add.reduce([v for _, v in _windows(np.ones_like(x), size, stride, ones, pads, 0.0)])
    result: Real = total / count
    return result


def _hard_swish(x: Real) -> Real:
    result: Real = x * np.clip(x + 3, 0, 6) / 6
    return result


def _min_output_scale(in_scale: float, kernel_scales: Real) -> float:
    """The smallest output scale: one int8 step of one input moves an output by at most 4 steps.

    Calibrated scales sit some 25 * sqrt(fan-in) times higher; this only catches a sample that left an
    output (nearly) constant, whose real spread says nothing about the int8 one.
    """
    return in_scale * float(kernel_scales.max()) * 32


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvNetwork(RandomNetwork):
    """A generated network, the shapes of its layers and what the generator put in it."""

    shapes: dict[str, tuple[int, ...]] | None = None
    features: frozenset[str] = frozenset()
    folds: tuple[tuple[str, str], ...] = ()  # (conv or dense, the batch_norm right after it)
    standalone_bns: tuple[tuple[str, str], ...] = ()  # (input, batch_norm)


@dataclass(frozen=True)
class _T:
    """A tensor of the network being generated.

    ``sample`` holds its real values for the generator's sample inputs (int8:
    already rounded onto its quantisation grid); ``foldable`` marks a conv or
    dense without activation that nothing reads yet.
    """

    name: str
    sample: Real
    quant: tuple[float, int] | None
    foldable: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.sample.shape[1:])

    @property
    def rank(self) -> int:
        """Spatial axes: 1 for [W, C], 2 for [H, W, C], 0 for a vector."""
        return len(self.shape) - 1

    @property
    def channels(self) -> int:
        return self.shape[-1]


ACTIVATION_RANGES: dict[str, tuple[float | None, float | None]] = {
    "none": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0),
}


BINARY_OPS = ("mul", "sub", "add", "maximum", "minimum", "squared_difference")


class _Builder:
    """Writes one network line by line, keeping a float approximation of every tensor."""

    def __init__(self, seed: int, dtype: str) -> None:
        self.rng = np.random.default_rng((3_000_017 if dtype == "i8" else 4_000_037) * (seed + 1))
        self.seed = seed
        self.int8 = dtype == "i8"
        self.name = f"conv_{dtype}_{seed}"
        self.lines = [f"# random {dtype} convolutional network, seed {seed}", f"network {self.name}",
                      f'weights "{self.name}.npz"']
        self.weights: dict[str, Array] = {}
        self.features: set[str] = set()
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.folds: list[tuple[str, str]] = []
        self.standalone_bns: list[tuple[str, str]] = []
        self.decks: dict[tuple[str, ...], list[str]] = {}
        self.count = 0

    # -- small choices -------------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return str(options[int(self.rng.integers(len(options)))])

    def deal(self, options: tuple[str, ...]) -> str:
        """The next of ``options`` from a shuffled deck per network: repeats only once all were dealt."""
        deck = self.decks.setdefault(options, [])
        if not deck:
            deck.extend(options[i] for i in self.rng.permutation(len(options)))
        return deck.pop()

    def ints_text(self, values: tuple[int, ...]) -> str:
        """``2`` or ``(2, 2)`` for equal values, ``(2, 1)`` otherwise."""
        if len(set(values)) == 1 and (len(values) == 1 or self.chance(0.6)):
            return str(values[0])
        return "(" + ", ".join(map(str, values)) + ")"

    def emit(self, name: str, expression: str, quant: tuple[float, int] | None, annotate: bool = True,
             shape: tuple[int, ...] | None = None) -> None:
        annotation = f" : {_q(quant)}" if quant is not None and annotate and self.int8 else ""
        self.lines.append(f"{name} = {expression}{annotation}")
        if shape is not None:
            self.shapes[name] = shape

    # -- quantisation ----------------------------------------------------------------------------

    def choose_quant(self, real: Real, min_scale: float = 0.0) -> tuple[float, int]:
        """A scale and zero point spreading ``real`` over the int8 range, times a factor in [0.8, 1.6]
        (below one, both ends saturate a little)."""
        low, high = np.percentile(real, [0.5, 99.5])
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        span = max(high - low, 1e-3)
        zero = round(-128 - low / (span / 255)) + int(self.rng.integers(-6, 7))
        scale = _f32(max(span / 255 * float(_log_uniform(self.rng, 0.8, 1.6)), min_scale, 1e-6))
        return scale, int(np.clip(zero, -128, 127))

    def settle(self, name: str, real: Real, activation: str = "none", quant: tuple[float, int] | None = None,
               min_scale: float = 0.0, foldable: bool = False) -> _T:
        """The tensor ``name`` holding ``real`` after the activation's clamp (int8: rounded to ``quant``)."""
        low, high = ACTIVATION_RANGES[activation]
        if low is not None:
            real = np.maximum(real, low)
        if high is not None:
            real = np.minimum(real, high)
        if not self.int8:
            return _T(name, real.astype(np.float32).astype(np.float64), None, foldable)
        if quant is None:
            quant = self.choose_quant(real, min_scale)
        scale, zero = quant
        q = np.clip(np.round(real / scale) + zero, -128, 127)
        return _T(name, (q - zero) * scale, quant, foldable)

    def input_scale(self, x: _T) -> float:
        assert x.quant is not None
        return x.quant[0]

    # -- the input -------------------------------------------------------------------------------

    def input(self, rank: int) -> _T:
        if rank == 1:
            shape: tuple[int, ...] = (int(self.rng.integers(7, 41)), int(self.rng.integers(1, 5)))
        else:
            shape = (int(self.rng.integers(4, 13)), int(self.rng.integers(4, 13)), int(self.rng.integers(1, 4)))
        self.features.add(f"rank {rank}")
        dims = ", ".join(map(str, shape))
        if self.int8:
            # Zero points near the middle, or -128 (an input after a relu): an input of mostly negative values
            # would leave little for the relus to pass.
            zero = -128 if self.chance(0.2) else int(self.rng.integers(-64, 65))
            quant = (_f32(float(_log_uniform(self.rng, 0.005, 0.1))), zero)
            self.lines.append(f"input x : i8[{dims}] @ scale({quant[0]!r}) zero({quant[1]})")
            q = self.rng.integers(-128, 128, size=(SAMPLE, *shape)).astype(np.float64)
            return _T("x", (q - quant[1]) * quant[0], quant)
        self.lines.append(f"input x : f32[{dims}]")
        return _T("x", self.rng.normal(size=(SAMPLE, *shape)) * 2, None)

    # -- weighted ops ----------------------------------------------------------------------------

    def kernel(self, name: str, shape: tuple[int, ...], fan_in: int, channels: int,
               depthwise: bool = False) -> tuple[Real, Real | None]:
        """Store ``name`` (and its ``.scale``); the real kernel and, in int8, the per-channel kernel scales."""
        std = math.sqrt(2 / fan_in) * float(_log_uniform(self.rng, 0.6, 1.6))
        if not self.int8:
            stored = np.float32 if self.chance(0.8) else np.float64
            data = (self.rng.normal(size=shape) * std).astype(stored)
            self.weights[name] = data
            return data.astype(np.float64), None
        data = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        base = std / 73.0
        if channels > 1 and self.chance(0.6):
            scales = (base * _log_uniform(self.rng, 0.6, 1.6, channels)).astype(np.float32)
            self.weights[f"{name}.scale"] = scales
            self.features.add("per-channel")
        else:
            scales = np.full(channels, base, dtype=np.float32)
            self.weights[f"{name}.scale"] = np.full(() if self.chance(0.5) else 1, base, dtype=np.float32)
            self.features.add("per-tensor")
        self.weights[name] = data
        by_channel = scales.astype(np.float64).reshape(shape[-2:] if depthwise else (channels,))  # [C, M] or [O]
        return data.astype(np.float64) * by_channel, scales.astype(np.float64)

    def rescale_dense_kernel(self, name: str, factor: float) -> tuple[Real, Real | None]:
        """Multiply a stored [inputs, units] kernel by ``factor`` (int8: its scales); as :meth:`kernel` returns."""
        if not self.int8:
            self.weights[name] = (self.weights[name] * factor).astype(np.float32)
            return self.weights[name].astype(np.float64), None
        data = self.weights[name].astype(np.float64)
        self.weights[f"{name}.scale"] = (self.weights[f"{name}.scale"] * factor).astype(np.float32)
        scales = np.broadcast_to(self.weights[f"{name}.scale"].astype(np.float64).reshape(-1), data.shape[-1:])
        return data * scales, scales

    def bias(self, name: str, acc: Real, in_scale: float, kernel_scales: Real | None,
             always: bool = False) -> tuple[str, Real]:
        """Maybe a bias roughly centring each channel: ``(", name" or "", its real value)``."""
        channels = acc.shape[-1]
        if not always and not self.chance(0.85):
            return "", np.zeros(channels)
        flat = acc.reshape(-1, channels)
        # A channel (nearly) constant over the sample keeps a fifth of its mean: centring it on zero exactly
        # would leave f32 outputs that are all cancellation.
        mean = flat.mean(axis=0)
        centre = -mean + self.rng.normal(size=channels) * np.maximum(flat.std(axis=0) * 0.5, np.abs(mean) * 0.2)
        if kernel_scales is None:
            stored = np.float32 if self.chance(0.8) else np.float64
            self.weights[name] = centre.astype(stored)
            return f", {name}", centre.astype(np.float32).astype(np.float64)
        step = in_scale * kernel_scales
        quantised = np.clip(np.round(centre / step), -(2**20), 2**20).astype(np.int32)
        self.weights[name] = quantised
        return f", {name}", quantised * step

    def conv(self, x: _T, *, depthwise: bool, size: tuple[int, ...], stride: tuple[int, ...],
             dilation: tuple[int, ...], padding: str, width: int, activation: str = "none",
             quant: tuple[float, int] | None = None, name: str | None = None, explicit_padding: bool = True) -> _T:
        """A conv (``width`` output channels) or depthwise conv (multiplier ``width``) on ``x``."""
        rank, channels = x.rank, x.channels
        name = name or self.fresh("dw" if depthwise else "conv")
        op = f"{'depthwise_' if depthwise else ''}conv{rank}d"
        out_channels = channels * width if depthwise else width
        shape = (*size, channels, width)
        fan_in = math.prod(size) * (1 if depthwise else channels)
        kernel_real, kernel_scales = self.kernel(f"{name}.kernel", shape, fan_in, out_channels, depthwise)
        pads = []
        out_spatial = []
        for a in range(rank):
            out, pad = _out_length(x.shape[a], size[a], stride[a], dilation[a], padding)
            assert out > 0
            out_spatial.append(out)
            pads.append(pad)
        acc = _conv_real(x.sample, kernel_real, stride, dilation, tuple(pads), depthwise)
        in_scale = self.input_scale(x) if self.int8 else 1.0
        bias_arg, bias_real = self.bias(f"{name}.bias", acc, in_scale, kernel_scales)
        args = f"{x.name}, {name}.kernel{bias_arg}"
        if any(s != 1 for s in stride) or self.chance(0.2):
            args += f", stride={self.ints_text(stride)}"
        if any(d != 1 for d in dilation) or self.chance(0.1):
            args += f", dilation={self.ints_text(dilation)}"
        if padding == "same" or (explicit_padding and self.chance(0.3)):
            args += f", padding={padding}"
        fused = "" if activation == "none" else f" -> {activation}"
        min_scale = 0.0 if kernel_scales is None else _min_output_scale(in_scale, kernel_scales)
        out = self.settle(name, acc + bias_real, activation, quant, min_scale, foldable=activation == "none")
        self.emit(name, f"{op}({args}){fused}", out.quant, shape=(*out_spatial, out_channels))
        self.features.add(op)
        if any(s > 1 for s in stride):
            self.features.add("conv stride > 1")
        if any(d > 1 for d in dilation):
            self.features.add("conv dilation > 1")
        if padding == "same" and any(p != (0, 0) for p in pads):
            self.features.add("conv same padding")
        if depthwise and width > 1:
            self.features.add("depth multiplier 2")
        return out

    def window_params(self, x: _T, max_size: int, strided: bool, dilated: bool
                      ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], str]:
        """Random size, stride, dilation and padding that fit ``x``'s spatial axes."""
        rank = x.rank
        sizes, strides, dilations = [], [], []
        padding = "same" if self.chance(0.5) else "valid"
        for a in range(rank):
            length = x.shape[a]
            size = int(self.rng.integers(1, max_size + 1))
            stride = int(self.rng.choice([1, 1, 2, 3])) if strided and length >= 5 else 1
            dilation = 2 if dilated and size > 1 and self.chance(0.3) else 1
            if (size - 1) * dilation + 1 > length:
                padding = "same"
            sizes.append(size)
            strides.append(stride)
            dilations.append(dilation)
        return tuple(sizes), tuple(strides), tuple(dilations), padding

    def random_conv(self, x: _T, activation: str = "none", same_shape: bool = False, width: int | None = None,
                    depthwise: bool | None = None, quant: tuple[float, int] | None = None) -> _T:
        """A conv or depthwise conv of random window; ``same_shape``: stride 1, same padding."""
        max_size = 5 if x.rank == 1 else 3
        size, stride, dilation, padding = self.window_params(x, max_size, not same_shape, True)
        if same_shape:
            padding = "same"
        if depthwise is None:
            depthwise = self.chance(0.4)
        if depthwise:
            multiplier = width or (2 if x.channels * 2 <= MAX_CHANNELS and self.chance(0.4) else 1)
            return self.conv(x, depthwise=True, size=size, stride=stride, dilation=dilation, padding=padding,
                             width=multiplier, activation=activation, quant=quant)
        out_channels = width or int(self.rng.integers(1, 9))
        return self.conv(x, depthwise=False, size=size, stride=stride, dilation=dilation, padding=padding,
                         width=out_channels, activation=activation, quant=quant)

    def dense(self, x: _T, units: int, activation: str = "none", spread: float | None = None) -> _T:
        """A dense layer; with ``spread``, its kernel scaled so that each output varies over the sample inputs
        with about that standard deviation (logits that neither saturate a softmax nor leave it flat)."""
        name = self.fresh("fc")
        kernel_real, kernel_scales = self.kernel(f"{name}.kernel", (x.channels, units), x.channels, units)
        acc = x.sample @ kernel_real
        if spread is not None:
            factor = min(spread / max(float(acc.std(axis=0).mean()), 1e-9), 10.0)
            kernel_real, kernel_scales = self.rescale_dense_kernel(f"{name}.kernel", factor)
            acc = x.sample @ kernel_real
        in_scale = self.input_scale(x) if self.int8 else 1.0
        bias_arg, bias_real = self.bias(f"{name}.bias", acc, in_scale, kernel_scales, always=spread is not None)
        fused = "" if activation == "none" else f" -> {activation}"
        min_scale = 0.0 if kernel_scales is None else _min_output_scale(in_scale, kernel_scales)
        out = self.settle(name, acc + bias_real, activation, min_scale=min_scale, foldable=activation == "none")
        self.emit(name, f"dense({x.name}, {name}.kernel{bias_arg}){fused}", out.quant, shape=(units,))
        self.features.add("dense")
        return out

    # -- batch norm ------------------------------------------------------------------------------

    def batch_norm(self, x: _T, real_input: Real | None = None) -> _T:
        """``batch_norm`` on ``x``, with statistics near the actual ones of its (real, unrounded) input."""
        name = self.fresh("bn")
        values = x.sample if real_input is None else real_input
        channels = x.channels
        flat = values.reshape(-1, channels)
        epsilon = 1e-3 if self.chance(0.5) else float(_log_uniform(self.rng, 1e-5, 1e-2))
        mean = flat.mean(axis=0) + self.rng.normal(size=channels) * flat.std(axis=0) * 0.3
        gamma = _log_uniform(self.rng, 0.5, 2.0, channels) * np.where(self.rng.random(channels) < 0.2, -1, 1)
        # |gamma / sqrt(variance)| <= 4: a channel the sample left (nearly) constant, normalised to unit
        # spread, would magnify float32 rounding into an ill-conditioned network.
        variance = np.maximum(flat.var(axis=0) * _log_uniform(self.rng, 0.5, 2.0, channels), (gamma / 4) ** 2)
        beta = self.rng.normal(size=channels) * 0.3
        for role, data in (("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", variance)):
            self.weights[f"{name}.{role}"] = data.astype(np.float32)
        stored = {role: self.weights[f"{name}.{role}"].astype(np.float64) for role in ("gamma", "beta", "mean",
                                                                                       "variance")}
        real = (values - stored["mean"]) / np.sqrt(stored["variance"] + epsilon) * stored["gamma"] + stored["beta"]
        attribute = "" if epsilon == 1e-3 and self.chance(0.5) else f", epsilon={epsilon:.6g}"
        # An int8 batch norm becomes a depthwise conv, or folds: either way, another one right after it folds.
        out = self.settle(name, real, min_scale=1e-4 if self.int8 else 0.0, foldable=x.foldable or self.int8)
        self.emit(name, f"batch_norm({x.name}, {name}.gamma, {name}.beta, {name}.mean, {name}.variance{attribute})",
                  out.quant, shape=x.shape)
        return out

    # -- element-wise ----------------------------------------------------------------------------

    def activation(self, x: _T, kind: str | None = None) -> _T:
        """A stand-alone activation or function of ``x``."""
        kind = kind or self.deal(("relu", "relu_rescaled", "relu6", "leaky_relu", "tanh", "sigmoid", "hard_swish"))
        name = self.fresh("act")
        real = x.sample
        keep = x.quant
        if kind == "relu6" and keep is not None and (127 - keep[1]) * keep[0] > 24:
            kind = "relu"  # relu6 keeps the quantisation: on a wide range it leaves a handful of int8 levels
        if kind in ("relu", "relu6"):
            out = self.settle(name, real, kind, quant=keep)
            self.emit(name, f"{kind}({x.name})", out.quant, annotate=self.chance(0.3), shape=x.shape)
        elif kind == "relu_rescaled":
            out = self.settle(name, real, "relu")
            self.emit(name, f"relu({x.name})", out.quant, shape=x.shape)
            kind = "relu"
        elif kind == "leaky_relu":
            alpha = float(_log_uniform(self.rng, 0.01, 0.5))
            written = self.chance(0.7)
            alpha = _f32(float(f"{alpha:.3g}")) if written else _f32(0.3)
            attribute = f", alpha={alpha:.3g}" if written else ""
            rescale = self.chance(0.5)
            out = self.settle(name, np.where(real > 0, real, real * alpha), quant=None if rescale else keep)
            self.emit(name, f"leaky_relu({x.name}{attribute})", out.quant, annotate=rescale, shape=x.shape)
        elif kind in ("tanh", "sigmoid"):
            fixed = (1 / 128, 0) if kind == "tanh" else (1 / 256, -128)
            function = np.tanh(real) if kind == "tanh" else 1 / (1 + np.exp(-real))
            out = self.settle(name, function, quant=fixed if self.int8 else None)
            self.emit(name, f"{kind}({x.name})", out.quant, annotate=self.chance(0.5), shape=x.shape)
        else:  # hard_swish: an int8 output scale above input_scale / 128
            rescale = self.chance(0.6)
            min_scale = self.input_scale(x) / 100 if self.int8 else 0.0
            out = self.settle(name, _hard_swish(real), quant=None if rescale else keep, min_scale=min_scale)
            self.emit(name, f"hard_swish({x.name})", out.quant, annotate=rescale, shape=x.shape)
        self.features.add(kind)
        return out

    def post(self, x: _T) -> _T:
        """What may follow a conv: nothing, a batch norm (folds), an activation."""
        roll = self.rng.random()
        if roll < 0.3 and x.foldable:
            bn = self.batch_norm(x)
            self.folds.append((x.name, bn.name))
            self.features.add("batch_norm folded")
            if self.chance(0.4):
                return self.activation(bn, self.pick(["relu", "relu6"]))
            return bn
        if roll < 0.75:
            return self.activation(x)
        return x

    # -- blocks ----------------------------------------------------------------------------------

    def conv_block(self, x: _T) -> _T:
        activation = self.pick(["none", "none", "relu", "relu6"])
        y = self.random_conv(x, activation)
        if activation != "none":
            self.features.add("fused activation")
        return self.post(y)

    def pool_block(self, x: _T) -> _T:
        is_max = self.deal(("max", "avg")) == "max"
        size, stride, _, padding = self.window_params(x, 3, True, False)
        explicit = self.chance(0.6) or any(s > size[a] for a, s in enumerate(stride))
        if not explicit:
            stride = size
            for a in range(x.rank):  # the default stride is the size: check it still fits
                if _out_length(x.shape[a], size[a], size[a], 1, padding)[0] <= 0:
                    padding = "same"
        pads = []
        out_spatial = []
        for a in range(x.rank):
            out, pad = _out_length(x.shape[a], size[a], stride[a], 1, padding)
            out_spatial.append(out)
            pads.append(pad)
        real = _pool_real(x.sample, is_max, size, stride, tuple(pads))
        activation = self.pick(["none", "none", "none", "relu", "relu6"])
        name = self.fresh("pool")
        out = self.settle(name, real, activation, quant=x.quant)
        op = "max_pool" if is_max else "avg_pool"
        args = f"{x.name}, size={self.ints_text(size)}"
        if explicit:
            args += f", stride={self.ints_text(stride)}"
        if padding == "same" or self.chance(0.3):
            args += f", padding={padding}"
        fused = "" if activation == "none" else f" -> {activation}"
        self.emit(name, f"{op}({args}){fused}", out.quant, annotate=self.chance(0.3),
                  shape=(*out_spatial, x.channels))
        self.features.add(f"{op}{x.rank}d")
        return out

    def residual_block(self, x: _T) -> _T:
        """``add`` of two branches of one shape (stride 1, same padding), each with its own scale."""
        style = self.pick(["identity", "two convs", "conv and activation"])
        if style == "identity":
            a = x
            b = self.random_conv(x, self.pick(["none", "relu"]), same_shape=True, width=x.channels, depthwise=False)
        elif style == "two convs":
            multiplier = 2 if x.channels * 2 <= MAX_CHANNELS and self.chance(0.4) else 1
            a = self.random_conv(x, self.pick(["none", "relu"]), same_shape=True, width=multiplier, depthwise=True)
            b = self.random_conv(x, "none", same_shape=True, width=x.channels * multiplier, depthwise=False)
            if self.chance(0.4):
                b = self.activation(b, self.pick(["tanh", "leaky_relu", "hard_swish", "relu_rescaled"]))
        else:
            a = self.random_conv(x, "none", same_shape=True, width=x.channels, depthwise=False)
            b = self.activation(x, self.pick(["tanh", "sigmoid", "leaky_relu", "relu_rescaled"]))
        if self.chance(0.5):
            a, b = b, a
        activation = self.pick(["none", "none", "relu", "relu6"])
        name = self.fresh("add")
        min_scale = 2 * max(a.quant[0], b.quant[0]) / 2**19 if self.int8 and a.quant and b.quant else 0.0
        out = self.settle(name, a.sample + b.sample, activation, min_scale=min_scale)
        fused = "" if activation == "none" else f" -> {activation}"
        assert a.shape == b.shape
        self.emit(name, f"add({a.name}, {b.name}){fused}", out.quant, shape=a.shape)
        self.features.add("add")
        if a.quant != b.quant:
            self.features.add("add of different scales")
        return out

    def binary_block(self, x: _T) -> _T:
        """A binary op with a per-channel constant or a number (an int8 network's float constant is quantised by
        nndsl), the constant first at times; in int8 then, at times, a requantising ``quantize``."""
        op = BINARY_OPS[self.seed % len(BINARY_OPS)]  # every op among the default seeds of either type
        name = self.fresh(op[:3])
        sign = np.where(self.rng.random(x.channels) < 0.3, -1.0, 1.0)
        values = (self.rng.uniform(0.5, 1.5, x.channels) * sign if op == "mul" else
                  self.rng.normal(0.0, 0.5 * float(np.std(x.sample)) + 0.1, x.channels)).astype(np.float32)
        if self.chance(0.6):
            operand = self.fresh("k")
            self.weights[operand] = values
            constant = values.astype(np.float64)
        else:
            constant = np.float64(float(f"{float(values[0]):.3g}"))
            operand = repr(float(constant))
        first = op in ("sub", "squared_difference") and self.chance(0.3)
        a, b = (constant, x.sample) if first else (x.sample, constant)
        real = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
                "minimum": np.minimum, "squared_difference": lambda p, q: np.square(p - q)}[op](a, b)
        activation = self.pick(["none", "none", "relu"]) if op in ("add", "sub", "mul") else "none"
        keep = op in ("maximum", "minimum")
        out = self.settle(name, real, activation, quant=x.quant if keep else None)
        args = f"{operand}, {x.name}" if first else f"{x.name}, {operand}"
        fused = "" if activation == "none" else f" -> {activation}"
        self.emit(name, f"{op}({args}){fused}", out.quant, annotate=not keep, shape=x.shape)
        self.features.add(op)
        if self.int8 and self.chance(0.5):
            source, name = name, self.fresh("requant")
            out = self.settle(name, out.sample)
            self.emit(name, f"quantize({source})", out.quant, shape=x.shape)
            self.features.add("quantize")
        return out

    def concat_channels(self, x: _T) -> _T:
        """2-3 branches (stride 1, same padding) joined on the channel axis; int8 branches share a quantisation."""
        count = 2 if self.chance(0.7) else 3
        kinds = [self.pick(["conv", "conv", "depthwise", "identity", "max_pool", "relu6"]) for _ in range(count)]
        quant = x.quant if any(k in ("identity", "max_pool", "relu6") for k in kinds) else None
        branches: list[_T] = []
        for kind in kinds:
            crowded = sum(b.channels for b in branches) >= MAX_CHANNELS
            if crowded:
                kind = "conv"  # of one channel (not the identity: that has x's quantisation, maybe not the others')
            if kind == "identity":
                branch = x
            elif kind == "relu6":
                branch = self.activation(x, "relu6")
            elif kind == "max_pool":
                size = tuple(int(self.rng.integers(1, 4)) for _ in range(x.rank))
                name = self.fresh("pool")
                pads = tuple(_out_length(x.shape[a], size[a], 1, 1, "same")[1] for a in range(x.rank))
                branch = self.settle(name, _pool_real(x.sample, True, size, (1,) * x.rank, pads), quant=x.quant)
                self.emit(name, f"max_pool({x.name}, size={self.ints_text(size)}, stride=1, padding=same)",
                          branch.quant, annotate=False, shape=x.shape)
                self.features.add(f"max_pool{x.rank}d")
            else:
                width = (1 if crowded else int(self.rng.integers(1, 5)) if kind == "conv"
                         else 2 if x.channels * 2 <= MAX_CHANNELS // 2 and self.chance(0.4) else 1)
                branch = self.random_conv(x, self.pick(["none", "relu"]), same_shape=True, width=width,
                                          depthwise=kind == "depthwise", quant=quant)
                quant = branch.quant
            branches.append(branch)
        axis = self.pick(["", "-1", str(x.rank)])
        name = self.fresh("cat")
        out = _T(name, np.concatenate([b.sample for b in branches], axis=-1), quant)
        attribute = f", axis={axis}" if axis else ""
        self.emit(name, f"concat({', '.join(b.name for b in branches)}{attribute})", quant,
                  annotate=self.chance(0.3), shape=out.shape)
        self.features.add("concat channels")
        return out

    def concat_spatial(self, x: _T) -> _T:
        """``x`` and 1-2 branches that change one spatial axis only, joined along that axis."""
        axis = int(self.rng.integers(x.rank))
        branches = [x]
        for _ in range(1 if self.chance(0.6) else 2):
            kind = self.pick(["pad", "conv", "pool"])
            length = x.shape[axis]
            if kind == "pad":
                before, after = int(self.rng.integers(0, 3)), int(self.rng.integers(1, 3))
                pads = [(0, 0)] * (x.rank + 1)
                pads[axis] = (before, after)
                branches.append(self.pad(x, tuple(pads)))
                continue
            size = [1] * x.rank
            size[axis] = int(self.rng.integers(1, min(length, 3) + 1))
            if kind == "conv":
                depthwise = self.chance(0.4)
                branch = self.conv(x, depthwise=depthwise, size=tuple(size), stride=(1,) * x.rank,
                                   dilation=(1,) * x.rank, padding="valid", width=1 if depthwise else x.channels,
                                   quant=x.quant)
            else:
                name = self.fresh("pool")
                is_max = self.chance(0.5)
                real = _pool_real(x.sample, is_max, tuple(size), (1,) * x.rank, ((0, 0),) * x.rank)
                branch = self.settle(name, real, quant=x.quant)
                op = "max_pool" if is_max else "avg_pool"
                self.emit(name, f"{op}({x.name}, size={self.ints_text(tuple(size))}, stride=1)", branch.quant,
                          annotate=False, shape=branch.shape)
                self.features.add(f"{op}{x.rank}d")
            branches.append(branch)
        order = list(self.rng.permutation(len(branches)))
        branches = [branches[i] for i in order]
        name = self.fresh("cat")
        written = axis if self.chance(0.6) else axis - (x.rank + 1)
        out = _T(name, np.concatenate([b.sample for b in branches], axis=axis + 1), x.quant)
        self.emit(name, f"concat({', '.join(b.name for b in branches)}, axis={written})", x.quant,
                  annotate=self.chance(0.3), shape=out.shape)
        self.features.add("concat spatial")
        return out

    def pad(self, x: _T, pads: tuple[tuple[int, int], ...] | None = None) -> _T:
        if pads is None:
            pads = tuple((int(self.rng.integers(0, 3)), int(self.rng.integers(0, 3))) for _ in x.shape)
            if x.channels + sum(pads[-1]) > MAX_CHANNELS:
                pads = (*pads[:-1], (0, 0))
        name = self.fresh("pad")
        zero = 0.0  # real zero: the zero point in int8
        out = _T(name, np.pad(x.sample, ((0, 0), *pads), constant_values=zero), x.quant)
        text = ", ".join(f"({a}, {b})" for a, b in pads)
        self.emit(name, f"pad({x.name}, pads=({text}{',' if len(pads) == 1 else ''}))", x.quant,
                  annotate=self.chance(0.3), shape=out.shape)
        self.features.add("pad")
        if sum(pads[-1]):
            self.features.add("pad channels")
        return out

    def standalone_batch_norm(self, x: _T) -> _T:
        """A batch norm after anything; right after a conv without activation it folds all the same."""
        out = self.batch_norm(x)
        if x.foldable:
            self.folds.append((x.name, out.name))
            self.features.add("batch_norm folded")
        else:
            self.standalone_bns.append((x.name, out.name))
            self.features.add("batch_norm standalone")
        return out

    def reshape_block(self, x: _T) -> _T:
        """To the other rank: [H, W, C] -> [H * W, C], or [W, C] -> [a, W / a, C]; or flatten, then regroup."""
        if self.chance(0.5):
            flat = self.fresh("flat")
            self.emit(flat, f"flatten({x.name})", x.quant, annotate=self.chance(0.3), shape=(x.sample[0].size,))
            self.features.add("flatten")
            total = x.sample[0].size
            channels = [c for c in range(1, MAX_CHANNELS + 1) if total % c == 0 and total // c >= 2]
            c = int(self.rng.choice(channels))
            shape: tuple[int, ...] = (total // c, c)
            source = flat
        elif x.rank == 2:
            shape = (x.shape[0] * x.shape[1], x.channels)
            source = x.name
        else:
            factors = [a for a in range(2, x.shape[0]) if x.shape[0] % a == 0]
            if not factors:
                shape = (x.shape[0], x.channels)
            else:
                a = int(self.rng.choice(factors))
                shape = (a, x.shape[0] // a, x.channels)
            source = x.name
        name = self.fresh("rs")
        out = _T(name, x.sample.reshape((SAMPLE, *shape)), x.quant)
        self.emit(name, f"reshape({source}, shape=({', '.join(map(str, shape))}))", x.quant,
                  annotate=self.chance(0.3), shape=shape)
        self.features.add("reshape")
        return out

    def layout_block(self, x: _T) -> _T:
        """Values moved and moved back (a transpose, then its inverse): the tensor comes back as it was, so
        what follows sees the same values whatever the moves were."""
        perm = tuple(int(p) for p in self.rng.permutation(len(x.shape)))
        for axes in (perm, tuple(int(p) for p in np.argsort(perm))):
            moved = _T(self.fresh("tp"), x.sample.transpose((0, *(a + 1 for a in axes))), x.quant)
            self.emit(moved.name, f"transpose({x.name}, perm=({', '.join(map(str, axes))},))", x.quant,
                      annotate=self.chance(0.3), shape=moved.shape)
            x = moved
        self.features.add("transpose")
        return self.slice_round_trip(x)

    def slice_round_trip(self, x: _T) -> _T:
        """Sliced in two along an axis and joined again; reversed by two strided slices (all axes, with masks;
        then explicit negative indices): the tensor comes back as it was."""
        shape = x.shape
        rank = len(shape)
        axes = [a for a, d in enumerate(shape) if d >= 2]
        if axes:
            axis = int(self.rng.choice(axes))
            cut = int(self.rng.integers(1, shape[axis]))
            parts = []
            for begin, size in ((0, cut), (cut, -1)):
                name = self.fresh("sl")
                starts = ", ".join(str(begin if a == axis else 0) for a in range(rank))
                sizes = ", ".join(str(size if a == axis else -1) for a in range(rank))
                self.emit(name, f"slice({x.name}, begin=({starts},), size=({sizes},))", x.quant,
                          annotate=self.chance(0.3))
                parts.append(name)
            joined = self.fresh("cat")
            self.emit(joined, f"concat({', '.join(parts)}, axis={axis})", x.quant, annotate=self.chance(0.3),
                      shape=shape)
            x = _T(joined, x.sample, x.quant)
            self.features.add("slice")
        everything = 2**rank - 1
        zeros = ", ".join("0" for _ in shape)
        minus = ", ".join("-1" for _ in shape)
        name = self.fresh("rev")
        self.emit(name, f"strided_slice({x.name}, begin=({zeros},), end=({zeros},), strides=({minus},), "
                  f"begin_mask={everything}, end_mask={everything})", x.quant, annotate=self.chance(0.3), shape=shape)
        back = self.fresh("rev")
        ends = ", ".join(str(-d - 1) for d in shape)
        self.emit(back, f"strided_slice({name}, begin=({minus},), end=({ends},), strides=({minus},))", x.quant,
                  annotate=self.chance(0.3), shape=shape)
        self.features.add("strided_slice")
        return self.resize_round_trip(_T(back, x.sample, x.quant))

    def resize_round_trip(self, x: _T) -> _T:
        """Resized to twice its height and width (each row and column repeated: the scale 1/2 is exact in
        float32) and back (every other one): the tensor comes back as it was. Other ranks go through an
        [H, W, C] view."""
        shape = x.shape
        image = (1,) * (3 - len(shape)) + shape if len(shape) < 3 else shape
        source = x.name
        if image != shape:
            source = self.fresh("img")
            self.emit(source, f"reshape({x.name}, shape=({', '.join(map(str, image))}))", x.quant,
                      annotate=self.chance(0.3), shape=image)
        big, back = self.fresh("up"), self.fresh("down")
        self.emit(big, f"resize_nearest_neighbor({source}, size=({2 * image[0]}, {2 * image[1]}))", x.quant,
                  annotate=self.chance(0.3))
        self.emit(back, f"resize_nearest_neighbor({big}, size=({image[0]}, {image[1]}))", x.quant,
                  annotate=self.chance(0.3), shape=image)
        self.features.add("resize_nearest_neighbor")
        if image == shape:
            return self.prelu(_T(back, x.sample, x.quant))
        name = self.fresh("rs")
        self.emit(name, f"reshape({back}, shape=({', '.join(map(str, shape))},))", x.quant, annotate=self.chance(0.3),
                  shape=shape)
        return self.prelu(_T(name, x.sample, x.quant))

    def prelu(self, x: _T) -> _T:
        """A PReLU with per-channel slopes (a weight array, negative ones too) or one number."""
        name = self.fresh("pre")
        slopes = self.rng.uniform(-0.6, 1.2, x.channels).astype(np.float32)
        if self.chance(0.6):
            alpha = self.fresh("alpha")
            self.weights[alpha] = slopes
        else:
            slopes = np.full(x.channels, float(f"{float(slopes[0]):.3g}"), np.float32)
            alpha = repr(float(slopes[0]))
        out = self.settle(name, np.where(x.sample >= 0, x.sample, x.sample * slopes.astype(np.float64)))
        self.emit(name, f"prelu({x.name}, {alpha})", out.quant, shape=x.shape)
        self.features.add("prelu")
        return out

    def lstm_block(self, x: _T) -> _T:
        """An LSTM over a [T, F] tensor, every step's output kept ([T, U]); int8: one scale per gate matrix and
        the cell state's power of two from the float run's largest cell."""
        units = int(self.rng.integers(2, 7))
        name = self.fresh("lstm")
        kernels: dict[str, Real] = {}
        for role, rows in (("kernel", x.channels), ("recurrent", units)):
            key = f"{name}.{role}"
            std = float(_log_uniform(self.rng, 0.5, 1.5)) / math.sqrt(rows)
            if role == "kernel":  # gates of order one, whatever the input's range: not all saturated
                std /= max(float(x.sample.std()), 1e-3)
            if self.int8:
                data = self.rng.integers(-127, 128, size=(rows, 4 * units), dtype=np.int8)
                scales = np.repeat((std / 73.0 * _log_uniform(self.rng, 0.7, 1.4, 4)).astype(np.float32), units)
                self.weights[key], self.weights[f"{key}.scale"] = data, scales
                kernels[role] = data.astype(np.float64) * scales.astype(np.float64)
            else:
                kernels[role] = self.rng.normal(size=(rows, 4 * units)) * std
                self.weights[key] = kernels[role].astype(np.float32)
        real_bias = self.rng.normal(size=4 * units) * 0.5
        if self.int8:
            step = self.input_scale(x) * self.weights[f"{name}.kernel.scale"].astype(np.float32).astype(np.float64)
            self.weights[f"{name}.bias"] = np.round(real_bias / step).astype(np.int32)
        else:
            self.weights[f"{name}.bias"] = real_bias.astype(np.float32)
        real, _ = lstm_f32(x.sample, kernels["kernel"], kernels["recurrent"], real_bias)
        # int8: cells within ±16 (2^-11); beyond, they saturate at int16 as TFLM's do.
        attributes = ", return_sequences=true" + (", cell_scale=0.00048828125" if self.int8 else "")
        out = self.settle(name, real.astype(np.float64))
        self.emit(name, f"lstm({x.name}, {name}.kernel, {name}.recurrent, {name}.bias{attributes})", out.quant,
                  shape=out.shape)
        self.features.add("lstm")
        return out

    def gru_block(self, x: _T) -> _T:
        """A float GRU over a [T, F] tensor (Keras's reset_after, or the older form), every step's state kept."""
        units = int(self.rng.integers(2, 7))
        name = self.fresh("gru")
        reset_after = bool(self.rng.integers(2))
        scale = max(float(x.sample.std()), 1e-3)
        kernel = self.rng.normal(size=(x.channels, 3 * units)) / math.sqrt(x.channels) / scale
        recurrent = self.rng.normal(size=(units, 3 * units)) / math.sqrt(units)
        biases = self.rng.normal(size=(2 if reset_after else 1, 3 * units)) * 0.5
        arrays = {"kernel": kernel, "recurrent": recurrent, "bias": biases if reset_after else biases[0]}
        self.weights |= {f"{name}.{role}": a.astype(np.float32) for role, a in arrays.items()}
        weights = GruWeights(kernel, recurrent, biases[0], biases[1] if reset_after else np.zeros(3 * units))
        real, _ = gru_f32(x.sample, np.zeros((len(x.sample), units)), weights, reset_after)
        out = self.settle(name, real.astype(np.float64))
        self.emit(name, f"gru({x.name}, {name}.kernel, {name}.recurrent, {name}.bias, return_sequences=true, "
                  f"reset_after={'true' if reset_after else 'false'})", out.quant, shape=out.shape)
        self.features.add("gru")
        return out

    # -- the head ----------------------------------------------------------------------------------

    def head(self, x: _T) -> None:
        """Global max or average pool, dense, then softmax, tanh/sigmoid or nothing."""
        name = self.fresh("gp")
        # Some heads reduce with reduce_max or mean over the position axes: the same values as the global pools,
        # chosen from a stream of their own (the networks' other draws stay what they were).
        axes = tuple(range(len(x.shape) - 1))
        reduce = bool(np.random.default_rng(7_000_003 * (self.seed + 1) + int(self.int8)).random() < 0.5)
        reduce = reduce and bool(axes)
        axes_text = f"axes=({', '.join(map(str, axes))},)"
        if self.chance(0.5):
            out = _T(name, x.sample.reshape(SAMPLE, -1, x.channels).max(axis=1), x.quant)
            call = f"reduce_max({x.name}, {axes_text})" if reduce else f"global_max_pool({x.name})"
            self.emit(name, call, out.quant, annotate=self.chance(0.3), shape=out.shape)
            self.features.add("reduce_max" if reduce else "global_max_pool")
        else:
            rescale = self.chance(0.5)
            real = x.sample.reshape(SAMPLE, -1, x.channels).mean(axis=1)
            out = self.settle(name, real, quant=None if rescale else x.quant)
            call = f"mean({x.name}, {axes_text})" if reduce else f"global_avg_pool({x.name})"
            self.emit(name, call, out.quant, annotate=rescale, shape=out.shape)
            self.features.add("mean" if reduce else "global_avg_pool")
        units = int(self.rng.integers(2, 11))
        ending = self.rng.random()
        beta = float(_log_uniform(self.rng, 0.3, 3.0)) if self.chance(0.4) else 1.0
        spread = float(_log_uniform(self.rng, 0.7, 3.0)) / (beta if ending < 0.45 else 1.0)
        logits = self.dense(out, units, spread=spread)
        if self.chance(0.15):
            bn = self.batch_norm(logits)  # folds into the dense
            self.folds.append((logits.name, bn.name))
            self.features.add("batch_norm folded into dense")
            logits = bn
        if ending < 0.45:
            attribute = "" if beta == 1.0 else f", beta={beta:.3g}"
            annotation = " : i8 @ scale(1/256) zero(-128)" if self.int8 and self.chance(0.3) else ""
            self.lines.append(f"output probs = softmax({logits.name}{attribute}){annotation}")
            self.shapes["probs"] = (units,)
            self.features.add("softmax")
        elif ending < 0.6:
            last = self.activation(logits, self.pick(["tanh", "sigmoid"]))
            self.lines.append(f"output {last.name}")
        else:
            self.lines.append(f"output {logits.name}")

    def network(self, rank: int) -> ConvNetwork:
        """Input, 5-9 blocks of different kinds (a shuffled bag, so each network mixes many ops), head."""
        x = self.input(rank)
        blocks = {
            "conv": self.conv_block, "pool": self.pool_block, "residual": self.residual_block,
            "concat channels": self.concat_channels, "concat spatial": self.concat_spatial, "pad": self.pad,
            "batch_norm": self.standalone_batch_norm, "activation": self.activation, "reshape": self.reshape_block,
        }
        bag = [*blocks, "conv", "conv", "pool", "activation"]
        order = [bag[i] for i in self.rng.permutation(len(bag))][: int(self.rng.integers(5, 10))]
        for kind in order:
            if x.sample[0].size > 600 and kind in ("pad", "concat spatial", "concat channels"):
                kind = "pool"  # keep the tensors small
            x = blocks[kind](x)
        # A binary op last, from a stream of its own: the other choices stay those the coverage checks expect.
        main, self.rng = self.rng, np.random.default_rng(5_000_011 * (self.seed + 1) + int(self.int8))
        x = self.binary_block(x)
        self.rng = np.random.default_rng(6_000_011 * (self.seed + 1) + int(self.int8))  # the data movements' own
        x = self.layout_block(x)
        if x.rank == 1:  # a sequence [T, F]: an LSTM over it, from a stream of its own too
            self.rng = np.random.default_rng(8_000_009 * (self.seed + 1) + int(self.int8))
            x = self.lstm_block(x)
            if not self.int8:  # a GRU after it (f32 and fixed point only), from a stream of its own
                self.rng = np.random.default_rng(9_000_011 * (self.seed + 1))
                x = self.gru_block(x)
        self.rng = main
        self.head(x)
        return ConvNetwork(self.name, "\n".join(self.lines) + "\n", self.weights, dict(self.shapes),
                           frozenset(self.features), tuple(self.folds), tuple(self.standalone_bns))


def random_conv_network(dtype: str, seed: int) -> ConvNetwork:
    """The seeded random network ``seed`` of ``dtype`` (``"i8"`` or ``"f32"``)."""
    return _Builder(seed, dtype).network(rank=1 + seed % 2)


def _load(network: ConvNetwork, directory: Path) -> nndsl.Model:
    try:
        model = network.write(directory)
    except nndsl.NNError as error:  # a generator bug, not a backend one: show the text
        raise AssertionError(f"generated network does not compile:\n{network.text}\n{error}") from error
    # The checker's shapes agree with the generator's own (TensorFlow's) rule.
    assert network.shapes is not None
    for tensor in model.graph.tensors:
        if tensor.name in network.shapes:
            assert tensor.type.shape == network.shapes[tensor.name], (tensor.name, network.text)
    return model


# --------------------------------------------------------------------------
# f32: the rounding magnitude of these ops
# --------------------------------------------------------------------------


def _abs_const(tensor: ir.Tensor | None) -> ir.Tensor | None:
    if tensor is None or tensor.data is None:
        return tensor
    return replace(tensor, data=np.abs(tensor.data.astype(np.float32)))


# Bounds on |f'(x)| (how an error in x carries through) and on |f(x)| where f is bounded.
_SLOPES = {ir.Function.TANH: 1.0, ir.Function.SIGMOID: 0.25, ir.Function.HARD_SWISH: 1.5}


def rounding_magnitude(graph: ir.Graph, batch: Array) -> npt.NDArray[np.float64]:
    """Per input, the magnitude float32 rounding errors of an f32 conv graph scale with.

    As in ``test_c_backend.rounding_magnitude``: the graph run on ``|x|`` with
    ``|kernel|``, ``|bias|`` and no clamps (convs, dense and batch norms sum
    ``|x_i w_i|``); pools, pads, concats and reshapes move magnitudes; a
    function scales them by a bound on its slope and adds its bound (tanh,
    sigmoid); softmax by ``beta`` times its largest input; an LSTM by its
    steps times its largest gate sum of magnitudes. The largest entry of
    each input's output row.
    """
    run_op = backend("numpy").run_op
    values: dict[str, Array] = {graph.input.name: np.abs(np.asarray(batch, dtype=np.float32))}
    for op in graph.ops:
        inputs = [values[t.name] for t in op.inputs]
        x = inputs[0]
        y: Array
        match op:
            case ir.Dense() | ir.Conv():
                y = run_op(replace(op, kernel=_abs_const(op.kernel), bias=_abs_const(op.bias),
                                   activation=ir.ActivationKind.NONE), *inputs)
            case ir.Pool():
                y = run_op(replace(op, activation=ir.ActivationKind.NONE), *inputs)
            case ir.BatchNorm():
                y = run_op(replace(op, scale=_abs_const(op.scale), offset=_abs_const(op.offset)), *inputs)
            case ir.Add():
                y = inputs[0] + inputs[1]
            case ir.Binary():  # |a| + |b| bounds a sum or difference, max(|a|, |b|) a maximum or minimum
                same = {ir.BinaryOp.SUB: ir.BinaryOp.ADD, ir.BinaryOp.SQUARED_DIFFERENCE: ir.BinaryOp.ADD,
                        ir.BinaryOp.MINIMUM: ir.BinaryOp.MAXIMUM}.get(op.operator, op.operator)
                a, b = (_abs_const(t) or t for t in op.operands)
                y = run_op(replace(op, operator=same, operands=(a, b), activation=ir.ActivationKind.NONE), *inputs)
                y = y * y if op.operator is ir.BinaryOp.SQUARED_DIFFERENCE else y
            case ir.Activation():
                y = x
            case ir.Elementwise():
                slope = _SLOPES.get(op.function, max(1.0, abs(op.alpha)))
                y = x * np.float32(slope) + np.float32(1.0 if op.function in (ir.Function.TANH,
                                                                                ir.Function.SIGMOID) else 0.0)
            case ir.Softmax():
                y = np.broadcast_to(np.float32(op.beta) * x.reshape(len(x), -1).max(axis=1).reshape(
                    (len(x),) + (1,) * (x.ndim - 1)), x.shape)
            case ir.Lstm() | ir.Gru():  # each gate sums |x w| + |b| + |h r| (|h| <= 1); carried over the steps
                assert op.kernel.data is not None and op.recurrent.data is not None
                gates = x @ np.abs(op.kernel.data) + np.abs(op.recurrent.data).sum(axis=0)
                if op.bias is not None and op.bias.data is not None:  # a GRU's: input and recurrent rows
                    gates = gates + np.abs(op.bias.data).reshape(-1, gates.shape[-1]).sum(axis=0)
                bound = gates.reshape(len(x), -1).max(axis=1) * x.shape[1]
                y = np.broadcast_to(bound.reshape((len(x),) + (1,) * len(op.output.type.shape)),
                                    (len(x), *op.output.type.shape))
            case _:  # global pools, concat, pad, reshape
                y = run_op(op, *inputs)
        values[op.output.name] = np.asarray(y, dtype=np.float32).reshape((len(x), *op.output.type.shape))
    out = values[graph.output.name].astype(np.float64)
    magnitude: npt.NDArray[np.float64] = out.reshape(len(out), -1).max(axis=1)
    return magnitude


def assert_matches(got: Array, model: nndsl.Model, inputs: Array, expected: Array, what: str) -> None:
    if expected.dtype == np.float32:
        # The rule of test_c_backend.py: max |C - NumPy| <= 1e-5 * max |NumPy| per output row.
        assert_close_f32(got, expected, what, rounding_magnitude(model.graph, inputs))
    else:
        # Bit-exact: np.array_equal, zero differing bytes.
        assert np.array_equal(got, expected)
        assert_exact(got, expected, what)


def check_network(dtype: str, seed: int, tmp_path: Path, sanitize: bool = False) -> None:
    network = random_conv_network(dtype, seed)
    model = _load(network, tmp_path / "src")
    inputs = random_inputs(model, INPUTS, seed)
    expected = model.run(inputs)
    program = build_program(model, tmp_path / "build", sanitize=sanitize)
    for caller_arena in (False, True):
        got = run_program(program, inputs, caller_arena=caller_arena)
        assert_matches(got, model, inputs, expected, network.text)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", INT8_SEEDS)
def test_random_int8_conv_network_c_equals_numpy(seed: int, tmp_path: Path) -> None:
    check_network("i8", seed, tmp_path)


@pytest.mark.parametrize("seed", F32_SEEDS)
def test_random_f32_conv_network_c_close_to_numpy(seed: int, tmp_path: Path) -> None:
    check_network("f32", seed, tmp_path)


@pytest.mark.parametrize(("dtype", "seed"), SANITIZED)
def test_random_conv_network_sanitizers_clean(dtype: str, seed: int, tmp_path: Path) -> None:
    """AddressSanitizer and UBSan, every report fatal (see tests/c_harness.py), static and caller arenas."""
    check_network(dtype, seed, tmp_path, sanitize=True)


def _ir_features(graph: ir.Graph, network: ConvNetwork) -> set[str]:
    """The op kinds a lowered graph runs, and how its batch norms were compiled."""
    found: set[str] = set()
    producers = {op.output.name: op for op in graph.ops}
    for op in graph.ops:
        match op:
            case ir.Conv() | ir.Pool() | ir.GlobalPool() | ir.Elementwise() | ir.Activation() | ir.Binary():
                found.add(op.kind)
            case ir.Quantize():
                found.add("quantize")
            case ir.Concat():
                found.add("concat" if op.axis == len(op.output.type.shape) - 1 else "concat spatial")
            case ir.Dense() | ir.Add() | ir.Pad() | ir.Softmax() | ir.Reshape() | ir.BatchNorm() | ir.Transpose():
                found.add(type(op).__name__.lower().replace("batchnorm", "batch_norm"))
            case ir.Slice() | ir.Reduce() | ir.Resize() | ir.Lstm() | ir.Gru():
                found.add(op.kind)
    for conv, bn in network.folds:  # the conv's output is gone: the batch norm's (or a later one's) kernel makes it
        assert conv not in producers, f"{bn} did not fold into {conv}"
        assert bn not in producers or isinstance(producers[bn], ir.Conv | ir.Dense)
        found.add("batch_norm folded")
    for source, bn in network.standalone_bns:
        if graph.dtype is DType.F32:
            op = producers[bn]
            assert isinstance(op, ir.BatchNorm) and op.input.name == source, f"f32 {bn} is a {op.kind}"
        else:  # a 1x1 depthwise conv (a relu or batch norm after it may fold into it)
            assert any(isinstance(op, ir.Conv) and op.depthwise and set(op.window.size) == {1}
                       and op.input.name == source and op.kernel.name.startswith("bn") for op in graph.ops), bn
        found.add("batch_norm standalone")
    return found


def test_default_networks_cover_every_op(tmp_path: Path) -> None:
    """The default networks use every op of the language in both ranks, and their int8 values vary: outputs
    differ between inputs, and few tensors have a handful of distinct values or are mostly saturated."""
    source_ops: set[str] = set()
    features: dict[str, set[str]] = {"i8": set(), "f32": set()}
    kinds: dict[str, set[str]] = {"i8": set(), "f32": set()}
    varied_outputs = 0
    narrow_tensors: list[str] = []
    saturated: list[str] = []
    int8_tensors = 0
    for dtype, seeds in (("i8", INT8_SEEDS), ("f32", F32_SEEDS)):
        for seed in seeds:
            network = random_conv_network(dtype, seed)
            model = _load(network, tmp_path / f"{dtype}{seed}")
            source_ops.update(op for op in SIGNATURES if f"= {op}(" in network.text)
            features[dtype] |= network.features
            kinds[dtype] |= _ir_features(model.graph, network)
            if dtype == "i8":
                inputs = random_inputs(model, 200, seed)
                trace = model.trace(inputs)
                outputs = trace[model.graph.output.name]
                varied_outputs += len(np.unique(outputs.reshape(len(outputs), -1), axis=0)) > 20
                quants = {t.name: t.type.quant for t in model.graph.tensors}
                for name, values in trace.items():
                    int8_tensors += 1
                    if len(np.unique(values)) < 12:
                        narrow_tensors.append(f"{network.name}.{name}")
                    # At -128 or 127, not counting a relu's floor at a zero point of -128.
                    zero = quants[name].zero_point  # type: ignore[union-attr]
                    clipped = np.mean(values == 127) + (np.mean(values == -128) if zero > -128 else 0.0)
                    if clipped > 0.3:
                        saturated.append(f"{network.name}.{name}")
    # The float edges of an integer network (its f32 output) are tests/test_float_io.py's.
    unwritten = set(SIGNATURES) - source_ops - {"dequantize"}
    assert not unwritten, f"ops never written: {sorted(unwritten)}"
    ir_kinds = {
        "conv1d", "conv2d", "depthwise_conv1d", "depthwise_conv2d", "max_pool1d", "max_pool2d", "avg_pool1d",
        "avg_pool2d", "global_max_pool", "global_avg_pool", "add", "concat", "concat spatial", "pad", "relu",
        "relu6", "leaky_relu", "tanh", "sigmoid", "hard_swish", "dense", "softmax", "reshape", "batch_norm folded",
        "batch_norm standalone", "transpose", "slice", "strided_slice", "reduce_max", "mean",
        "resize_nearest_neighbor", "prelu", "lstm",
    }
    wanted = {
        "rank 1", "rank 2", "conv stride > 1", "conv dilation > 1", "conv same padding", "depth multiplier 2",
        "concat channels", "concat spatial", "pad channels", "batch_norm folded",
        "batch_norm standalone", "fused activation", "flatten", "reshape", "transpose", "slice",
        "strided_slice",
    }
    for dtype in ("i8", "f32"):
        assert ir_kinds <= kinds[dtype], f"{dtype}: op kinds not run: {sorted(ir_kinds - kinds[dtype])}"
        assert wanted <= features[dtype], f"{dtype}: not generated: {sorted(wanted - features[dtype])}"
    assert {"per-channel", "per-tensor", "add of different scales"} <= features["i8"]
    assert "batch_norm" in kinds["f32"]  # an f32 batch norm that does not fold stays its own op
    assert "gru" in kinds["f32"]  # f32 and fixed point only (the fixed-point GRU: tests/test_gru.py)
    assert "batch_norm" not in kinds["i8"]  # an int8 one becomes a depthwise conv
    assert varied_outputs >= 0.8 * len(INT8_SEEDS), f"only {varied_outputs} int8 networks give varied outputs"
    assert len(narrow_tensors) <= 0.1 * int8_tensors, f"int8 tensors with few distinct values: {narrow_tensors}"
    assert len(saturated) <= 0.1 * int8_tensors, f"int8 tensors over 30% saturated: {saturated}"


# --------------------------------------------------------------------------
# Edges the generator leaves out: ops writing the caller's output, reading the caller's input, 1x1 images
# --------------------------------------------------------------------------


def _edge_weights(rng: np.random.Generator) -> dict[str, Array]:
    def i8(name: str, shape: tuple[int, ...], scale: float) -> dict[str, Array]:
        channels = shape[-1] * (shape[-2] if name.startswith("dw") else 1)
        return {name: rng.integers(-127, 128, size=shape, dtype=np.int8),
                f"{name}.scale": (scale * _log_uniform(rng, 0.7, 1.4, channels)).astype(np.float32)}

    def f32(name: str, shape: tuple[int, ...]) -> dict[str, Array]:
        return {name: (rng.normal(size=shape) / math.sqrt(math.prod(shape[:-1]))).astype(np.float32)}

    weights: dict[str, Array] = {
        **i8("k1", (3, 3, 4), 0.004), "b1": rng.integers(-500, 500, size=4, dtype=np.int32),
        **i8("dw2", (3, 3, 2, 2), 0.01), **i8("k3", (3, 3, 3, 5), 0.004),
        **f32("kf1", (3, 3, 4)), "bf1": rng.normal(size=4).astype(np.float32),
        **f32("dwf2", (3, 3, 2, 2)), **f32("kf3", (3, 3, 3, 5)),
        # [K, C, C]: a conv kernel [K, C, O] and a depthwise one [K, C, M] at once (one scale fits both).
        "shared": rng.integers(-127, 128, size=(3, 4, 4), dtype=np.int8), "shared.scale": np.float32(0.01),
        **f32("sharedf", (3, 4, 4)),
    }
    for role, values in (("gamma", rng.normal(size=3)), ("beta", rng.normal(size=3)),
                         ("mean", rng.normal(size=3)), ("variance", _log_uniform(rng, 0.3, 3.0, 3))):
        weights[f"bn.{role}"] = values.astype(np.float32)
    return weights


I8_IN = "@ scale(0.05) zero(-7)"
EDGE_NETWORKS: dict[str, str] = {
    # A conv, a view of a conv, pools, global pools, pad, concat, add, batch norm writing the caller's output.
    "conv_to_output_i8": f"input x : i8[9, 3] {I8_IN}\n"
                         "output y = conv1d(x, k1, b1, stride=2, padding=same) -> relu6\n"
                         "    : i8 @ scale(0.03) zero(-128)\n",
    "conv_to_output_f32": "input x : f32[9, 3]\noutput y = conv1d(x, kf1, bf1, stride=2, padding=same) -> relu6\n",
    "flattened_depthwise_i8": f"input x : i8[5, 4, 2] {I8_IN}\n"
                              "c = depthwise_conv2d(x, dw2, dilation=2, padding=same) : i8 @ scale(0.04) zero(3)\n"
                              "output y = flatten(c)\n",
    "flattened_depthwise_f32": "input x : f32[5, 4, 2]\nc = depthwise_conv2d(x, dwf2, dilation=2, padding=same)\n"
                               "output y = flatten(c)\n",
    "pad_input_i8": f"input x : i8[3, 4, 2] {I8_IN}\noutput y = pad(x, pads=((1, 0), (0, 2), (1, 1)))\n",
    "pad_input_f32": "input x : f32[3, 4, 2]\noutput y = pad(x, pads=((1, 0), (0, 2), (1, 1)))\n",
    "pad_vector_f32": "input x : f32[5]\noutput y = pad(x, pads=((2, 1),))\n",
    "concat_input_twice_i8": f"input x : i8[3, 4, 2] {I8_IN}\noutput y = concat(x, x, axis=0)\n",
    "concat_input_twice_f32": "input x : f32[3, 4, 2]\noutput y = concat(x, x, x, axis=1)\n",
    "global_avg_pool_i8": f"input x : i8[6, 5, 3] {I8_IN}\noutput y = global_avg_pool(x) : i8 @ scale(0.01) zero(5)\n",
    "global_max_pool_f32": "input x : f32[6, 5, 3]\noutput y = global_max_pool(x)\n",
    "avg_pool_output_i8": f"input x : i8[7, 3] {I8_IN}\noutput y = avg_pool(x, size=3, stride=2, padding=same)\n",
    "max_pool_output_f32": "input x : f32[4, 7, 3]\noutput y = max_pool(x, size=(2, 3), padding=same) -> relu\n",
    "add_same_tensor_i8": f"input x : i8[4, 3] {I8_IN}\noutput y = add(x, x) -> relu : i8 @ scale(0.08) zero(-128)\n",
    "batch_norm_output_i8": f"input x : i8[4, 3] {I8_IN}\n"
                            "output y = batch_norm(x, bn.gamma, bn.beta, bn.mean, bn.variance)\n"
                            "    : i8 @ scale(0.1) zero(0)\n",
    "batch_norm_output_f32": "input x : f32[4, 3]\noutput y = batch_norm(x, bn.gamma, bn.beta, bn.mean, bn.variance)\n",
    # One weight array as the kernel of a conv and of a depthwise conv: each needs its own C layout.
    "shared_kernel_i8": f"input x : i8[8, 4] {I8_IN}\n"
                        "a = conv1d(x, shared, padding=same) : i8 @ scale(0.05) zero(0)\n"
                        "b = depthwise_conv1d(x, shared, padding=same) : i8 @ scale(0.05) zero(0)\n"
                        "output y = concat(a, b)\n",
    "shared_kernel_f32": "input x : f32[8, 4]\na = depthwise_conv1d(x, sharedf)\nb = conv1d(x, sharedf)\n"
                         "output y = concat(a, b)\n",
    # One pixel: every tap of a 3x3 window but the centre is padding.
    "one_pixel_i8": "input x : i8[1, 1, 3] @ scale(0.05) zero(0)\n"
                    "c = conv2d(x, k3, padding=same) : i8 @ scale(0.05) zero(0)\n"
                    "p = max_pool(c, size=2, padding=same)\n"
                    "a = avg_pool(p, size=3, stride=2, padding=same)\n"
                    "output y = global_avg_pool(a)\n",
    "one_pixel_f32": "input x : f32[1, 1, 3]\nc = conv2d(x, kf3, padding=same)\np = max_pool(c, size=2, padding=same)\n"
                     "a = avg_pool(p, size=3, stride=2, padding=same)\noutput y = global_avg_pool(a)\n",
}


@pytest.mark.parametrize("case", sorted(EDGE_NETWORKS))
def test_edge_conv_network_c_matches_numpy(case: str, tmp_path: Path) -> None:
    np.savez(tmp_path / "edge.npz", **_edge_weights(np.random.default_rng(17)))  # type: ignore[arg-type]
    path = tmp_path / f"{case}.nn"
    path.write_text(f'network {case}\nweights "edge.npz"\n{EDGE_NETWORKS[case]}', encoding="utf-8")
    model = nndsl.load(path)
    inputs = random_inputs(model, INPUTS, 7)
    expected = model.run(inputs)
    if expected.dtype == np.int8:  # not a constant output
        assert len(np.unique(expected.reshape(len(expected), -1), axis=0)) > 20
    program = build_program(model, tmp_path / "build")
    for caller_arena in (False, True):
        assert_matches(run_program(program, inputs, caller_arena=caller_arena), model, inputs, expected, case)


# --------------------------------------------------------------------------
# A wider sweep (-m slow)
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_INT8_SEEDS)
def test_many_random_int8_conv_networks_c_equals_numpy(seed: int, tmp_path: Path) -> None:
    check_network("i8", seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_F32_SEEDS)
def test_many_random_f32_conv_networks_c_close_to_numpy(seed: int, tmp_path: Path) -> None:
    check_network("f32", seed, tmp_path)
