"""Random power-of-two fixed-point (q7, q15, qM.N) networks and inputs for the backend tests.

:func:`random_fixed_network` writes a ``.nn`` text and its ``.npz`` arrays
(a :class:`~tests.test_c_backend.RandomNetwork`): an input of a random format
(q7, q15, q3.4, q2.3...), vector, ``[W, C]`` or ``[H, W, C]``, then layers
drawn from every op a fixed-point network may use, each weighted or adding
layer with its own output format (int8- or int16-stored, narrow ones such as
q2.3 included), int8 or int16 kernels and int8/int16/int32 biases with their
own ``frac_bits``.

The generator thinks in integers: it pushes a sample of inputs through an
approximation of the integer network, picks each weighted layer's output
shift from the size of its accumulators (sometimes 0, sometimes too small so
that the output saturates, left shifts where the accumulator is narrower than
the output) and only then the fraction bits that give that shift. Kernel
magnitudes are bounded so that the range analysis can prove every int32
accumulator safe: a network it generates must load (a failure is a generator
bug, never skipped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

import nndsl
from nndsl import ir
from nndsl.qmath.fixed_functions import QFunction, function_q, function_q_params, softmax_q, softmax_q_params
from nndsl.qmath.gru import GruWeights, gru_f32, input_sum_frac, recurrent_sum_frac
from nndsl.qmath.shift import binary_q, binary_q_params, binary_q_raw, binary_q_raw_frac, to_fixed_integers
from nndsl.rules.binary import fixed_constant_format
from nndsl.rules.window import output_length
from nndsl.types import DType, QFormat, format_for
from nndsl.windows import window_taps
from tests.test_c_backend import RandomNetwork

Array = npt.NDArray[Any]
T = TypeVar("T")

SAMPLE = 48  # random inputs the generator pushes through its integer approximation (plus 3 edge inputs)
INPUT_FORMATS = ("q7", "q7", "q7", "q7", "q15", "q3.4", "q2.5", "q1.6", "q2.3", "q5.10", "q4.11", "q0.3", "q6.1")
ACTIVATION_BITS = (8, 8, 8, 16, 16, 16, 6, 5, 10, 12)
KERNEL_STORAGES = (DType.I8, DType.I8, DType.I16)
BIAS_STORAGES = (DType.I8, DType.I16, DType.I32, DType.I32)
ACCUMULATOR_LIMIT = 2**31 - 1
LAYOUTS = ("sequence", "image", "vector")
ATTEMPTS = 20
# How a conv stage ends, cycling with the seeds that have one (so that eight consecutive seeds see each).
ENDINGS = ("global_max", "global_avg", "flatten", "rows")
# The function a network ends with, cycling with the seed (each twice in eight seeds).
FUNCTIONS = ("tanh", "sigmoid", "softmax", None)
# The binary op before it, and its second operand, cycling likewise (add with a constant is a broadcast add).
BINARY_OPS = ("sub", "mul", "maximum", "minimum", "squared_difference", "add")
BINARY_OPERANDS = ("array", "literal", "computed")
FUNCTION_OUTPUTS = (None, "q7", "q15", "q1.14", "q2.5", "q0.4")  # None: the default, q7 or q15 by storage


def round_half_away(values: Array) -> Array:
    """Round to the nearest integer, halves away from zero (on float64 arrays of integers / 2^k)."""
    rounded: Array = np.sign(values) * np.floor(np.abs(values) + 0.5)
    return rounded


@dataclass
class _Tensor:
    """A tensor of the network being generated: its name, format and sample of integer values (float64)."""

    name: str
    fmt: QFormat
    values: Array  # (SAMPLE + 3, *shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.values.shape[1:])


@dataclass(frozen=True)
class _Window:
    """A conv's or pool's window over 1 or 2 spatial axes."""

    size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str

    def geometry(self, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """Output spatial shape and pads."""
        results = [output_length(n, k, s, d, self.padding)
                   for n, k, s, d in zip(spatial, self.size, self.stride, self.dilation, strict=True)]
        return tuple(r[0] for r in results), tuple(r[1] for r in results)

    def taps(self, values: Array, fill: float) -> tuple[list[tuple[tuple[int, int], Array]], tuple[int, int]]:
        """Per tap, the values it sees at every output position ([S, OH, OW, C]); and (OH, OW)."""
        out, pads = self.geometry(tuple(values.shape[1:-1]))
        window = ir.Window(self.size, self.stride, self.dilation, pads)
        out_hw = (1, out[0]) if len(self.size) == 1 else (out[0], out[1])
        return window_taps(values, window, out_hw, fill), out_hw

    def attrs(self, conv: bool) -> str:
        """The keyword arguments of the op (defaults sometimes written, sometimes left out)."""
        def value(v: tuple[int, ...]) -> str:
            return str(v[0]) if len(set(v)) == 1 else f"({', '.join(map(str, v))})"

        parts = [] if conv else [f"size={value(self.size)}"]
        default_stride = (1,) * len(self.size) if conv else self.size
        if self.stride != default_stride:
            parts.append(f"stride={value(self.stride)}")
        if conv and self.dilation != (1,) * len(self.size):
            parts.append(f"dilation={value(self.dilation)}")
        if self.padding == "same":
            parts.append("padding=same")
        return "".join(f", {p}" for p in parts)


class _Builder:
    """Writes one network line by line, tracking each tensor's format and integer sample."""

    def __init__(self, seed: int, attempt: int = 0) -> None:
        self.rng = np.random.default_rng([3_000_017 * (seed + 1), attempt])
        self.name = f"rand_q_{seed}"
        self.lines = [f"# random fixed-point network, seed {seed}", f"network {self.name}",
                      f'weights "{self.name}.npz"']
        self.weights: dict[str, Array] = {}
        self.count = 0

    # -- randomness ---------------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return int(self.rng.integers(low, high + 1))

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    # -- formats ------------------------------------------------------------------------------------

    def peak(self, values: Array) -> float:
        """The magnitude a new format must hold: the largest on the uniform inputs of the sample (so that the
        all-min and all-max inputs may saturate it), or (one time in four) a quantile, so that more saturates."""
        flat = np.abs(values[:SAMPLE]).reshape(-1)
        if flat.size == 0:
            return 0.0
        level = float(self.rng.uniform(0.4, 0.9)) if self.chance(0.25) else 1.0
        return float(np.quantile(flat, level))

    def format_for(self, real: Array, bits: int | None = None) -> QFormat:
        """A format holding the real values ``real`` (up to :meth:`peak`), of a random width."""
        peak = self.peak(real)
        int_bits = math.floor(math.log2(peak)) + 1 if peak > 0 else 0
        int_bits = max(0, int_bits)
        if bits is None:
            bits = self.pick(ACTIVATION_BITS)
            if int_bits > bits - 1:
                bits = min(16, int_bits + 1 + self.integer(0, 4))
        int_bits = min(int_bits, bits - 1)
        return QFormat(int_bits, bits - 1 - int_bits)

    @staticmethod
    def store(values: Array, fmt: QFormat, activation: str) -> Array:
        """Integer values clamped to ``fmt`` and a fused activation."""
        low, high = fmt.bounds
        if activation in ("relu", "relu6"):
            low = max(low, 0)
        if activation == "relu6":
            high = min(high, 6 << fmt.frac_bits)
        clipped: Array = np.clip(values, low, high)
        return clipped

    def activation(self, p: float = 0.5) -> str:
        if not self.chance(p):
            return "none"
        return self.pick(("relu", "relu6"))

    @staticmethod
    def arrow(activation: str) -> str:
        return "" if activation == "none" else f" -> {activation}"

    def frac_bits(self, value: int) -> Array:
        """A ``NAME.frac_bits`` array: one whole number, stored in various integer dtypes and shapes."""
        dtype = self.pick((np.int64, np.int32, np.uint8))
        shape: tuple[int, ...] = self.pick(((), (1,)))
        return np.full(shape, value, dtype=dtype)

    # -- layers ---------------------------------------------------------------------------------------

    def input(self, shape: tuple[int, ...], name: str = "x") -> _Tensor:
        fmt = QFormat.parse(self.pick(INPUT_FORMATS))
        assert fmt is not None
        self.storage = fmt.storage  # the network's: float constants are stored in it
        low, high = fmt.bounds
        self.lines.append(f"input {name} : {fmt.name}[{', '.join(map(str, shape))}]")
        uniform = self.rng.integers(low, high + 1, size=(SAMPLE, *shape)).astype(np.float64)
        edges = np.stack([np.full(shape, v, dtype=np.float64) for v in (low, high, 0)])
        return _Tensor(name, fmt, np.concatenate([uniform, edges]))

    def weighted(self, x: _Tensor, op: str, kernel_shape: tuple[int, ...], channels: int,
                 contract: Callable[[Array, Array], Array], abs_sums: Callable[[Array], Array], attrs: str = "",
                 fmt: QFormat | None = None, activation: str = "none", prefix: str = "fc") -> _Tensor:
        """A dense or conv layer: kernel, bias, output shift and format chosen from its integer accumulators.

        ``contract(values, kernel)`` gives the sums (no bias) of a sample, ``abs_sums(|kernel|)`` per output
        channel the sum of the kernel magnitudes one output sees (the accumulator bound is that times the
        largest input magnitude). With ``fmt`` the output format is given (branches that are concatenated).
        """
        name = self.fresh(prefix)
        in_fmt = x.fmt
        storage = self.pick(KERNEL_STORAGES)
        top = storage.bounds[1]
        real = self.rng.normal(size=kernel_shape)
        largest_input = 2 ** (in_fmt.bits - 1)
        # The kernel may use its whole storage, unless that could let an accumulator pass 2^30.
        amplitude = min(top / np.abs(real).max(), 2**30 / (largest_input * abs_sums(np.abs(real)).max()))
        amplitude *= float(self.rng.uniform(0.3, 1.0))
        kernel = np.clip(round_half_away(real * amplitude), -top, top).astype(storage.numpy)
        if not kernel.any():
            kernel.reshape(-1)[0] = 1
        if self.chance(0.3):  # the storage's minimum (-128, -32768) in place of the largest weight, if it is safe
            planted = kernel.copy()
            planted.reshape(-1)[int(np.argmax(np.abs(kernel)))] = -top - 1
            if abs_sums(np.abs(planted.astype(np.float64))).max() * largest_input <= 2**30:
                kernel = planted
        acc = contract(x.values, kernel.astype(np.float64))
        bias_acc = None
        if self.chance(0.8):  # in accumulator units, before its storage and frac_bits are chosen
            # Roughly centring each channel (as a trained bias would), so that relus do not silence it.
            per_channel = acc.reshape((-1, channels))
            spread = per_channel.std(axis=0) * float(self.rng.uniform(0.2, 1.0)) + 1.0
            centre = -per_channel.mean(axis=0) if self.chance(0.7) else 0.0
            bias_acc = np.clip(centre + self.rng.normal(size=channels) * spread, -(2**29), 2**29)
            acc = acc + bias_acc
        post = np.maximum(acc, 0) if activation != "none" else acc

        # The output shift: the accumulator's peak onto the output's integer range.
        bits = fmt.bits if fmt is not None else self.pick(ACTIVATION_BITS)
        peak = max(self.peak(post), 1.0)
        shift = math.ceil(math.log2(peak / (2 ** (bits - 1) - 1))) if bits > 1 else 0
        if fmt is None and -6 <= shift <= 2 and self.chance(0.3):  # at worst 4x saturated or 1/64 of its range
            shift = 0
        shift = max(-31, min(31, shift))
        frac_in = in_fmt.frac_bits
        if fmt is not None:
            frac_out = fmt.frac_bits
        else:
            low, high = max(0, frac_in - shift), min(bits - 1, 31 + frac_in - shift)
            if low > high:  # the shift is too far left for any format of this width: make it less so
                shift = frac_in - (bits - 1)
                low = high = bits - 1
            if activation == "relu6" and max(low, bits - 4) <= high:
                low = max(low, bits - 4)  # at most 3 integer bits: relu6's 6 near the top of the format
            frac_out = high if self.chance(0.45) else self.integer(low, high)  # high: q7, q15 when possible
            fmt = QFormat(bits - 1 - frac_out, frac_out)
        frac_kernel = max(0, min(31, frac_out + shift - frac_in, 31 + frac_out - frac_in))
        shift = frac_in + frac_kernel - frac_out
        assert -31 <= shift <= 31

        args = f"{x.name}, {name}.kernel"
        self.weights[f"{name}.kernel"] = kernel
        self.weights[f"{name}.kernel.frac_bits"] = self.frac_bits(frac_kernel)
        aligned = np.zeros(channels)
        if bias_acc is not None:
            bias_storage = self.pick(BIAS_STORAGES)
            bias_top = bias_storage.bounds[1]
            frac_acc = frac_in + frac_kernel
            largest = float(np.abs(bias_acc).max())
            drop = math.ceil(math.log2(largest / bias_top)) if largest > bias_top else 0
            drop += self.integer(0, 2)  # bias fraction bits below the accumulator's, sometimes none
            drop = max(frac_acc - 31, min(drop, frac_acc))
            bias = np.clip(round_half_away(bias_acc / 2.0**drop), -bias_top - 1, bias_top).astype(bias_storage.numpy)
            self.weights[f"{name}.bias"] = bias
            self.weights[f"{name}.bias.frac_bits"] = self.frac_bits(frac_acc - drop)
            aligned = bias.astype(np.float64) * 2.0**drop
            args += f", {name}.bias"
        worst = abs_sums(np.abs(kernel.astype(np.float64))).max() * largest_input + np.abs(aligned).max()
        assert worst <= ACCUMULATOR_LIMIT, f"generator bug: {name}'s accumulator can reach {worst}"

        total = contract(x.values, kernel.astype(np.float64)) + aligned
        values = self.store(round_half_away(total / 2.0**shift), fmt, activation)
        self.lines.append(f"{name} = {op}({args}{attrs}){self.arrow(activation)} : {fmt.name}")
        return _Tensor(name, fmt, values)

    def dense(self, x: _Tensor, units: int, fmt: QFormat | None = None, activation: str | None = None) -> _Tensor:
        features = x.shape[-1]

        def contract(values: Array, kernel: Array) -> Array:
            result: Array = values @ kernel
            return result

        def abs_sums(kernel: Array) -> Array:
            sums: Array = kernel.sum(axis=0)
            return sums

        act = self.activation() if activation is None else activation
        return self.weighted(x, "dense", (features, units), units, contract, abs_sums, fmt=fmt, activation=act)

    def window(self, spatial: tuple[int, ...], conv: bool, keep_shape: bool = False) -> _Window:
        """A random window that fits ``spatial`` (``keep_shape``: stride 1, padding same)."""
        size, stride, dilation = [], [], []
        for n in spatial:
            if conv:
                k = self.integer(1, min(3, n))
                d = 2 if k > 1 and (k - 1) * 2 + 1 <= n and self.chance(0.25) else 1
                s = 2 if d == 1 and n >= 4 and not keep_shape and self.chance(0.3) else 1
            else:
                k = self.integer(2, 3) if n >= 3 else min(2, n)
                d = 1
                s = k if self.chance(0.7) else max(1, k - 1)
            size.append(k)
            stride.append(s)
            dilation.append(d)
        padding = "same" if keep_shape or self.chance(0.5) else "valid"
        return _Window(tuple(size), tuple(stride), tuple(dilation), padding)

    def conv(self, x: _Tensor, depthwise: bool, out_channels: int | None = None, fmt: QFormat | None = None,
             keep_shape: bool = False, activation: str | None = None) -> _Tensor:
        rank = len(x.shape) - 1
        channels = x.shape[-1]
        window = self.window(x.shape[:-1], conv=True, keep_shape=keep_shape)
        if depthwise:
            multiplier = out_channels // channels if out_channels is not None else self.integer(1, 2)
            kernel_shape = (*window.size, channels, multiplier)
            outputs = channels * multiplier
        else:
            outputs = out_channels if out_channels is not None else self.integer(1, 5)
            kernel_shape = (*window.size, channels, outputs)

        def contract(values: Array, kernel: Array) -> Array:
            kernel_2d = kernel.reshape((1, *kernel.shape)) if rank == 1 else kernel
            taps, out_hw = window.taps(values, 0.0)
            acc = np.zeros((len(values), *out_hw, outputs))
            for (ky, kx), view in taps:
                if depthwise:
                    acc += (view[..., :, np.newaxis] * kernel_2d[ky, kx]).reshape(acc.shape)
                else:
                    acc += view @ kernel_2d[ky, kx]
            shaped: Array = acc.reshape((len(values), *window.geometry(x.shape[:-1])[0], outputs))
            return shaped

        def abs_sums(kernel: Array) -> Array:
            per_tap = kernel.reshape((-1, *kernel.shape[-2:]))
            sums: Array = per_tap.sum(axis=0).reshape(-1) if depthwise else per_tap.sum(axis=(0, 1))
            return sums

        op = f"{'depthwise_' if depthwise else ''}conv{rank}d"
        act = self.activation() if activation is None else activation
        return self.weighted(x, op, kernel_shape, outputs, contract, abs_sums, window.attrs(conv=True), fmt, act,
                             prefix="dw" if depthwise else "c")

    def pool(self, x: _Tensor, kind: str, window: _Window | None = None) -> _Tensor:
        window = window or self.window(x.shape[:-1], conv=False)
        name = self.fresh("p")
        activation = self.activation(0.3)
        taps, _ = window.taps(x.values, -np.inf if kind == "max" else 0.0)
        views = [view for _, view in taps]
        if kind == "max":
            result = np.maximum.reduce(views)
        else:
            ones, _ = window.taps(np.ones_like(x.values), 0.0)
            result = round_half_away(np.add.reduce(views) / np.add.reduce([v for _, v in ones]))
        shape = (len(x.values), *window.geometry(x.shape[:-1])[0], x.shape[-1])
        values = self.store(result.reshape(shape), x.fmt, activation)
        annotation = f" : {x.fmt.name}" if self.chance(0.3) else ""
        self.lines.append(f"{name} = {kind}_pool({x.name}{window.attrs(conv=False)}){self.arrow(activation)}"
                          f"{annotation}")
        return _Tensor(name, x.fmt, values)

    def global_pool(self, x: _Tensor, kind: str) -> _Tensor:
        name = self.fresh("g")
        positions = x.values.reshape((len(x.values), -1, x.shape[-1]))
        values = positions.max(axis=1) if kind == "max" else round_half_away(positions.mean(axis=1))
        self.lines.append(f"{name} = global_{kind}_pool({x.name})")
        return _Tensor(name, x.fmt, values)

    def pad(self, x: _Tensor) -> _Tensor:
        name = self.fresh("pad")
        pads = [(self.integer(0, 2), self.integer(0, 2)) for _ in x.shape[:-1]]
        if len(x.shape) == 1:  # a vector: pad its only axis
            pads.append((self.integer(0, 2), self.integer(1, 2)))
        else:
            pads.append((0, 1) if self.chance(0.2) else (0, 0))
        values = np.pad(x.values, ((0, 0), *pads))
        text = ", ".join(f"({a}, {b})" for a, b in pads)
        self.lines.append(f"{name} = pad({x.name}, pads=({text}))")
        return _Tensor(name, x.fmt, values)

    def relu(self, x: _Tensor, kind: str, new_format: bool) -> _Tensor:
        """A stand-alone relu or relu6: in a new format (a shift and a clamp), or in the input's (a clamp)."""
        name = self.fresh("r")
        real = np.maximum(x.values, 0) * 2.0**-x.fmt.frac_bits
        if kind == "relu6":
            real = np.minimum(real, 6.0)
        # Often the other width: into 16 bits mostly a left shift, into 8 bits a right one.
        bits = (16 if x.fmt.bits <= 8 else 8) if self.chance(0.5) else None
        fmt = self.format_for(real, bits) if new_format else x.fmt
        scaled = round_half_away(x.values * 2.0 ** (fmt.frac_bits - x.fmt.frac_bits))
        values = self.store(scaled, fmt, kind)
        annotation = f" : {fmt.name}" if new_format or self.chance(0.3) else ""
        self.lines.append(f"{name} = {kind}({x.name}){annotation}")
        return _Tensor(name, fmt, values)

    def add(self, a: _Tensor, b: _Tensor) -> _Tensor:
        name = self.fresh("s")
        frac = max(a.fmt.frac_bits, b.fmt.frac_bits)
        total = a.values * 2.0 ** (frac - a.fmt.frac_bits) + b.values * 2.0 ** (frac - b.fmt.frac_bits)
        activation = self.activation()
        real = total * 2.0**-frac
        if activation != "none":
            real = np.clip(real, 0, 6 if activation == "relu6" else None)
        fmt = self.format_for(real)
        values = self.store(round_half_away(total * 2.0 ** (fmt.frac_bits - frac)), fmt, activation)
        self.lines.append(f"{name} = add({a.name}, {b.name}){self.arrow(activation)} : {fmt.name}")
        return _Tensor(name, fmt, values)

    def concat(self, parts: list[_Tensor], axis: int) -> _Tensor:
        name = self.fresh("cat")
        values = np.concatenate([p.values for p in parts], axis=axis + 1 if axis >= 0 else axis)
        written = "" if axis == -1 and self.chance(0.5) else f", axis={axis}"
        self.lines.append(f"{name} = concat({', '.join(p.name for p in parts)}{written})")
        return _Tensor(name, parts[0].fmt, values)

    def reshape(self, x: _Tensor, shape: tuple[int, ...]) -> _Tensor:
        name = self.fresh("v")
        if len(shape) == 1 and self.chance(0.7):
            self.lines.append(f"{name} = flatten({x.name})")
        else:
            dims = str(shape[0]) if len(shape) == 1 else f"({', '.join(map(str, shape))})"
            self.lines.append(f"{name} = reshape({x.name}, shape={dims})")
        return _Tensor(name, x.fmt, x.values.reshape((len(x.values), *shape)))

    def round_trip(self, x: _Tensor, seed: int) -> _Tensor:
        """Values moved and moved back (a transpose and its inverse; two slices joined again; two reversals),
        from a stream of their own: the tensor comes back as it was, so every other draw stays what it was."""
        perm = tuple(int(p) for p in np.random.default_rng([6_000_011, seed]).permutation(len(x.shape)))
        for axes in (perm, tuple(int(p) for p in np.argsort(perm))):
            name = self.fresh("tp")
            self.lines.append(f"{name} = transpose({x.name}, perm=({', '.join(map(str, axes))},))")
            x = _Tensor(name, x.fmt, x.values.transpose((0, *(a + 1 for a in axes))))
        rank = len(x.shape)
        axis = int(np.argmax(x.shape))  # the longest axis, cut in two and joined again
        cut = max(1, x.shape[axis] // 2)
        parts = []
        for begin, size in ((0, cut), (cut, -1)):
            parts.append(self.fresh("sl"))
            starts = ", ".join(str(begin if a == axis else 0) for a in range(rank))
            sizes = ", ".join(str(size if a == axis else -1) for a in range(rank))
            self.lines.append(f"{parts[-1]} = slice({x.name}, begin=({starts},), size=({sizes},))")
        joined = self.fresh("cat")
        self.lines.append(f"{joined} = concat({', '.join(parts)}, axis={axis})")
        reversed_name, back = self.fresh("rev"), self.fresh("rev")
        minus = ", ".join("-1" for _ in range(rank))
        everything = 2**rank - 1
        zeros = ", ".join("0" for _ in range(rank))
        self.lines.append(f"{reversed_name} = strided_slice({joined}, begin=({zeros},), end=({zeros},), "
                          f"strides=({minus},), begin_mask={everything}, end_mask={everything})")
        ends = ", ".join(str(-d - 1) for d in x.shape)
        self.lines.append(f"{back} = strided_slice({reversed_name}, begin=({minus},), end=({ends},), "
                          f"strides=({minus},))")
        return self.resize_round_trip(_Tensor(back, x.fmt, x.values))

    def resize_round_trip(self, x: _Tensor) -> _Tensor:
        """To twice the height and width and back (a [W, C] tensor through an [1, W, C] view): unchanged."""
        shape = x.shape
        image = shape if len(shape) == 3 else (1, *shape)
        source = x.name
        if image != shape:
            source = self.fresh("img")
            self.lines.append(f"{source} = reshape({x.name}, shape=({', '.join(map(str, image))}))")
        big, back = self.fresh("up"), self.fresh("down")
        self.lines.append(f"{big} = resize_nearest_neighbor({source}, size=({2 * image[0]}, {2 * image[1]}))")
        self.lines.append(f"{back} = resize_nearest_neighbor({big}, size=({image[0]}, {image[1]}))")
        if image == shape:
            return _Tensor(back, x.fmt, x.values)
        name = self.fresh("v")
        self.lines.append(f"{name} = reshape({back}, shape=({', '.join(map(str, shape))}))")
        return _Tensor(name, x.fmt, x.values)

    # -- blocks ----------------------------------------------------------------------------------------

    def spatial_block(self, x: _Tensor) -> _Tensor:
        """One block of a conv stage ([W, C] or [H, W, C] in, same rank out)."""
        small = min(x.shape[:-1]) < 3
        kinds = ["conv", "depthwise", "depthwise", "residual", "branches", "concat", "relu"]
        if not small:
            kinds += ["pool", "pad"]
        kind = self.pick(kinds)
        channels = x.shape[-1]
        if kind == "conv":
            return self.conv(x, depthwise=False)
        if kind == "depthwise":
            return self.conv(x, depthwise=True)
        if kind == "pool":
            return self.pool(x, self.pick(("max", "avg")))
        if kind == "pad":
            return self.conv(self.pad(x), depthwise=self.chance(0.5))
        if kind == "residual":  # the input plus a same-shape conv of it, two formats
            branch = self.conv(x, depthwise=self.chance(0.4), out_channels=channels, keep_shape=True)
            return self.add(x, branch) if self.chance(0.5) else self.add(branch, x)
        if kind == "branches":  # two convs of the input in their own formats, added
            out = channels * self.integer(1, 2)
            a = self.conv(x, depthwise=True, out_channels=out, keep_shape=True)
            b = self.conv(x, depthwise=False, out_channels=out, keep_shape=True)
            return self.add(a, b)
        if kind == "concat":
            style = self.pick(("pools", "convs", "relu"))
            if style == "pools" and not small:
                window = self.window(x.shape[:-1], conv=False)
                parts = [self.pool(x, "max", window), self.pool(x, "avg", window)]
                return self.concat(parts, self.pick((-1, 0, *((1, -2) if len(x.shape) == 3 else ()))))
            if style == "convs":
                first = self.conv(x, depthwise=False, keep_shape=True)
                second = self.conv(x, depthwise=self.chance(0.5), keep_shape=True, fmt=first.fmt,
                                   out_channels=channels if self.chance(0.5) else None)
                return self.concat([first, second], -1)
            return self.concat([x, self.relu(x, self.pick(("relu", "relu6")), new_format=False)], -1)
        return self.relu(x, self.pick(("relu", "relu6")), new_format=self.chance(0.8))

    def function(self, x: _Tensor, name: str) -> _Tensor:
        """tanh, sigmoid or softmax (over the last axis, a random beta), computed as the kernels compute them."""
        out_name = self.pick(FUNCTION_OUTPUTS)
        fmt = QFormat.parse(out_name) if out_name is not None else QFormat(0, 15 if x.fmt.bits > 8 else 7)
        assert fmt is not None
        tensor = self.fresh("f")
        annotation = f" : {out_name}" if out_name is not None else ""
        if name == "softmax":
            beta = self.pick((1.0, 0.5, 2.0, 8.0))
            params = softmax_q_params(beta, x.fmt.frac_bits, x.fmt.bits, fmt.frac_bits, fmt.bounds[1])
            values = softmax_q(x.values.astype(np.int64), params).astype(np.float64)
            self.lines.append(f"{tensor} = softmax({x.name}, beta={beta!r}){annotation}")
        else:
            table = function_q_params(QFunction(name), x.fmt.frac_bits, x.fmt.bits, fmt.frac_bits, fmt.bounds)
            values = function_q(x.values.astype(np.int64), table).astype(np.float64)
            self.lines.append(f"{tensor} = {name}({x.name}){annotation}")
        return _Tensor(tensor, fmt, values)

    def binary(self, x: _Tensor, op: str, operand: str, seed: int) -> _Tensor:
        """``op(x, y)`` with ``y`` a constant array broadcast along the last axis (int8/int16 with its
        ``frac_bits``), a number in the text, or a computed tensor (a relu of ``x`` in a format of its own);
        computed as :mod:`nndsl.qmath.shift` computes it. A squared difference whose int32 square could
        overflow for some input of the formats takes a number instead, or failing that becomes a subtraction."""
        rng = np.random.default_rng([7_000_003, seed])  # its own stream: the other draws stay what they were
        name = self.fresh("bin")
        y = self.operand(x, operand, f"{name}.y", rng)
        if op == "squared_difference" and self.may_overflow(op, x, y):
            y = self.operand(x, "literal", f"{name}.y", rng)
            op = "sub" if self.may_overflow(op, x, y) else op
        frac_x, frac_y = x.fmt.frac_bits, y.fmt.frac_bits
        raw_frac = binary_q_raw_frac(op, frac_x, frac_y)
        a, b = x.values.astype(np.int64), y.values.astype(np.int64)
        raw = binary_q_raw(a, b, binary_q_params(op, frac_x, frac_y, raw_frac))
        fmt = self.format_for(raw * 2.0**-raw_frac)
        values = binary_q(a, b, binary_q_params(op, frac_x, frac_y, fmt.frac_bits), *fmt.bounds)
        self.lines.append(f"{name} = {op}({x.name}, {y.name}) : {fmt.name}")
        return _Tensor(name, fmt, values.astype(np.float64))

    def operand(self, x: _Tensor, kind: str, array_name: str, rng: np.random.Generator) -> _Tensor:
        """The second operand of :meth:`binary` (a number's name is its text)."""
        if kind == "array":
            storage = self.pick((DType.I8, DType.I16))
            bits = 8 * storage.size
            fmt = QFormat.stored_in(storage, int(rng.integers(bits - 4, bits + 3)))
            stored = rng.integers(fmt.bounds[0], fmt.bounds[1] + 1, size=(x.shape[-1],)).astype(storage.numpy)
            self.weights[array_name] = stored
            self.weights[f"{array_name}.frac_bits"] = self.frac_bits(fmt.frac_bits)
            return _Tensor(array_name, fmt, np.broadcast_to(stored.astype(np.float64), x.values.shape))
        if kind == "literal":
            number = np.array([rng.choice((0.5, -0.75, 1.25, 0.1, -3.0, 0.015625))])
            fmt = fixed_constant_format(number, self.storage)
            stored = to_fixed_integers(number, fmt.frac_bits, np.dtype(self.storage.numpy)).astype(np.float64)
            return _Tensor(repr(float(number[0])), fmt, np.broadcast_to(stored, x.values.shape))
        return self.relu(x, "relu", new_format=True)

    @staticmethod
    def may_overflow(op: str, x: _Tensor, y: _Tensor) -> bool:
        """Whether ``op``'s int32 value can leave int32 for some values of the operands (a number: its own)."""
        frac_x, frac_y = x.fmt.frac_bits, y.fmt.frac_bits
        params = binary_q_params(op, frac_x, frac_y, binary_q_raw_frac(op, frac_x, frac_y))
        ends_y = np.unique(y.values) if y.name[0] in "-0123456789" else np.array(y.fmt.bounds)
        ends = binary_q_raw(np.array(x.fmt.bounds)[:, None], ends_y.astype(np.int64)[None, :], params)
        return bool(np.abs(ends).max() > ACCUMULATOR_LIMIT)

    def gru(self, x: _Tensor, seed: int) -> _Tensor:
        """A GRU over a ``[W, C]`` tensor (every step's state, q7 or q15 out), int8 kernels and an int32 bias at
        the sums' fraction bits. Its sample is the float GRU's on the real values, a close approximation."""
        rng = np.random.default_rng([9_000_011, seed])  # its own stream: the other draws stay what they were
        name = self.fresh("gru")
        steps, features = x.shape
        units = int(rng.integers(2, 5))
        reset_after = bool(rng.integers(2))
        real_x = x.values * 2.0**-x.fmt.frac_bits
        spread = max(float(np.abs(real_x).max()), 2.0**-x.fmt.frac_bits)
        real_k = rng.normal(size=(features, 3 * units)) / math.sqrt(features) / spread
        real_u = rng.normal(size=(units, 3 * units)) / math.sqrt(units)
        k_frac = min(format_for(float(np.abs(real_k).max()), 8).frac_bits, 12)
        u_frac = format_for(float(np.abs(real_u).max()), 8).frac_bits
        k = to_fixed_integers(real_k, k_frac, np.dtype(np.int8))
        u = to_fixed_integers(real_u, u_frac, np.dtype(np.int8))
        b_frac = min(input_sum_frac(x.fmt.frac_bits, k_frac), recurrent_sum_frac(u_frac))
        real_b = rng.normal(size=(2 if reset_after else 1, 3 * units)) * 0.5
        b = to_fixed_integers(real_b, b_frac, np.dtype(np.int32))
        for role, array, frac in (("k", k, k_frac), ("u", u, u_frac), ("b", b if reset_after else b[0], b_frac)):
            self.weights[f"{name}.{role}"] = array
            self.weights[f"{name}.{role}.frac_bits"] = np.array(frac, dtype=np.int32)
        fmt = QFormat(0, 15 if rng.integers(2) else 7)
        biases = b.astype(np.float64) * 2.0**-b_frac
        weights = GruWeights(k * 2.0**-k_frac, u * 2.0**-u_frac, biases[0],
                             biases[1] if reset_after else np.zeros(3 * units))
        real, _ = gru_f32(real_x, np.zeros((len(real_x), units)), weights, reset_after)
        self.lines.append(f"{name} = gru({x.name}, {name}.k, {name}.u, {name}.b, return_sequences=true, "
                          f"reset_after={'true' if reset_after else 'false'}) : {fmt.name}")
        values = np.clip(round_half_away(real.astype(np.float64) * 2.0**fmt.frac_bits), *fmt.bounds)
        return _Tensor(name, fmt, values.reshape((len(values), steps, units)))

    def dense_block(self, x: _Tensor) -> _Tensor:
        """One block of a dense stage (any rank: dense works over the last axis)."""
        kind = self.pick(("dense", "dense", "add", "concat", "relu", "relu", "pad"))
        units = self.integer(2, 12)
        if kind == "dense":
            return self.dense(x, units)
        if kind == "pad":
            return self.dense(self.pad(x), units)
        if kind == "add":
            return self.add(self.dense(x, units), self.dense(x, units))
        if kind == "concat":
            first = self.dense(x, units)
            return self.concat([first, self.dense(x, self.integer(1, 6), fmt=first.fmt)], -1)
        return self.relu(x, self.pick(("relu", "relu6")), new_format=True)


def random_fixed_network(seed: int) -> RandomNetwork:
    """A valid fixed-point network of mixed formats: a conv stage on ``[W, C]`` or ``[H, W, C]`` inputs
    (or a reshaped vector), then global pooling or a flatten and a dense stage; vector inputs may go straight
    to dense layers. The layout cycles with the seed (``[W, C]``, ``[H, W, C]``, vector), and so does the
    end of a conv stage (:data:`ENDINGS`), so that a few consecutive seeds see each.

    A draw whose outputs hardly vary over the generator's sample (relus silencing a layer, a global max pool
    stuck at a clamp) is redrawn, up to :data:`ATTEMPTS` times, so that the tests compare informative outputs.
    """
    network = None
    for attempt in range(ATTEMPTS):
        network, output = _draw(seed, attempt)
        rows = output[:SAMPLE].reshape(SAMPLE, -1)
        if len(np.unique(rows, axis=0)) >= SAMPLE // 2:
            break
    assert network is not None
    return network


def _draw(seed: int, attempt: int) -> tuple[RandomNetwork, Array]:
    """One random network and the generator's approximation of its outputs on the sample."""
    b = _Builder(seed, attempt)
    layout = LAYOUTS[seed % len(LAYOUTS)]
    if layout == "sequence":
        x = b.input((b.integer(6, 14), b.integer(1, 4)))
    elif layout == "image":
        x = b.input((b.integer(4, 8), b.integer(4, 8), b.integer(1, 3)))
    else:
        width, channels = b.integer(3, 8), b.integer(1, 3)
        x = b.input((width * channels,))
        if b.chance(0.7):
            x = b.reshape(x, (width, channels))
    if b.chance(0.3):  # an activation straight on the input: never fused
        x = b.relu(x, b.pick(("relu", "relu6")), new_format=b.chance(0.5))
    if len(x.shape) > 1:
        for _ in range(b.integer(2, 4)):
            x = b.spatial_block(x)
        if len(x.shape) == 2:  # a sequence [W, C]: a GRU over it
            x = b.gru(x, seed)
        x = b.round_trip(x, seed)
        ending = ENDINGS[(2 * (seed // 3) + seed % 3) % len(ENDINGS)]  # the next one at each conv-stage seed
        if ending.startswith("global"):
            x = b.global_pool(x, ending.removeprefix("global_"))
        else:
            if ending == "rows":  # a dense layer over every position first
                x = b.dense(x, b.integer(1, 4))
            x = b.reshape(x, (int(np.prod(x.shape)),))
            if b.chance(0.15):  # the output is a view of the last op's output
                b.lines.append(f"output {x.name}")
                return RandomNetwork(b.name, "\n".join(b.lines) + "\n", b.weights), x.values
    for _ in range(b.integer(1, 3)):
        x = b.dense_block(x)
    x = b.binary(x, BINARY_OPS[seed % len(BINARY_OPS)], BINARY_OPERANDS[(seed + 1) % len(BINARY_OPERANDS)], seed)
    function = FUNCTIONS[seed % len(FUNCTIONS)]
    if function is not None:
        x = b.function(x, function)
    b.lines.append(f"output {x.name}")
    return RandomNetwork(b.name, "\n".join(b.lines) + "\n", b.weights), x.values


def random_fixed_inputs(model: nndsl.Model, count: int, seed: int) -> Array:
    """``count`` inputs of the model's input format: all-min, all-max and all-zero first, then half uniform
    over the whole format and half uniform over a random power-of-two fraction of it (small values too)."""
    rng = np.random.default_rng(seed)
    in_type = model.graph.input.type
    low, high = in_type.bounds
    dtype = in_type.dtype.numpy
    edges = np.stack([np.full(in_type.shape, v, dtype=dtype) for v in (low, high, 0)])
    rest = count - len(edges)
    whole = rng.integers(low, high + 1, size=(rest // 2, *in_type.shape))
    # Each narrow input: uniform in [-L, L - 1] for L = 2^(bits - 1) / 2^k, k random per input.
    limits = (high + 1) >> rng.integers(0, int(math.log2(high + 1)) + 1, size=rest - rest // 2)
    limits = limits.reshape((-1, *[1] * len(in_type.shape)))
    unit = rng.random(size=(rest - rest // 2, *in_type.shape))
    narrow = np.floor(unit * 2 * limits).astype(np.int64) - limits
    return np.concatenate([edges, whole.astype(dtype), narrow.astype(dtype)])[:count]


__all__ = ["random_fixed_inputs", "random_fixed_network", "round_half_away"]
