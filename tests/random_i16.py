"""Random 16x8 (``i16``) networks of every op that has a 16x8 kernel, for the C sweeps.

The int8 and f32 generators (``test_c_backend``, ``test_c_ops``) and the fixed-point one
(``fixed_point_models``) calibrate their scales on a float sample; this one picks each output scale from the
expected spread of its accumulator (inputs spread over about a quarter of the int16 range), which keeps most
outputs off the clamps without a float model. Every network is a chain with side branches: convolutions
(1-D or 2-D, depthwise, strides, dilation, same/valid), pools, ``add`` of a branch, ``concat``, ``pad``,
``relu``, ``relu6``, ``leaky_relu``, ``tanh``, ``sigmoid``, a global pool or ``flatten``, ``dense`` and
maybe ``softmax``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tests.test_c_backend import RandomNetwork

Array = npt.NDArray[np.generic]
SPREAD = 8000.0  # the int16 steps a typical value spans: about a quarter of the range


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    scale: float


@dataclass
class _Builder:
    seed: int
    rng: np.random.Generator = field(init=False)
    lines: list[str] = field(default_factory=list)
    weights: dict[str, Array] = field(default_factory=dict)
    count: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(5_000_011 * (self.seed + 1))

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def q(self, scale: float) -> str:
        return f"i16 @ scale({float(np.float32(scale))!r}) zero(0)"

    def weighted(self, name: str, shape: tuple[int, ...], channels: int, fan_in: int, x: _Tensor) -> float:
        """Store an int8 kernel (per-tensor or per-channel scales) and an int64 bias; the output scale."""
        self.weights[f"{name}.kernel"] = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        base = float(np.exp(self.rng.uniform(math.log(1e-3), math.log(1e-1))))
        scales = (base * np.exp(self.rng.uniform(-0.4, 0.4, size=channels))).astype(np.float32)
        self.weights[f"{name}.kernel.scale"] = scales if channels > 1 and self.rng.random() < 0.6 else \
            np.full(1, base, np.float32)
        self.weights[f"{name}.bias"] = self.rng.integers(-(2**20), 2**20, size=channels).astype(np.int64)
        spread = math.sqrt(fan_in) * x.scale * SPREAD * base * 73
        return spread / SPREAD * float(np.exp(self.rng.uniform(-0.7, 0.7)))

    def conv(self, x: _Tensor, depthwise: bool) -> _Tensor:
        rank = len(x.shape) - 1
        size = tuple(int(self.rng.integers(1, 4)) for _ in range(rank))
        stride = tuple(int(self.rng.integers(1, 3)) for _ in range(rank))
        dilation = 2 if self.rng.random() < 0.2 and all(s == 1 for s in stride) else 1
        padding = "same" if self.rng.random() < 0.5 else "valid"
        spatial = []
        for a in range(rank):
            extent = (size[a] - 1) * dilation + 1
            if padding == "valid" and x.shape[a] < extent:
                padding = "same"
        for a in range(rank):
            extent = (size[a] - 1) * dilation + 1
            spatial.append(-(-x.shape[a] // stride[a]) if padding == "same" else (x.shape[a] - extent) // stride[a] + 1)
        channels = x.shape[-1]
        width = int(self.rng.integers(1, 3)) if depthwise else int(self.rng.integers(1, 9))
        out_channels = channels * width if depthwise else width
        name = self.fresh("dw" if depthwise else "conv")
        fan_in = math.prod(size) * (1 if depthwise else channels)
        scale = self.weighted(name, (*size, channels, width), out_channels, fan_in, x)
        op = f"{'depthwise_' if depthwise else ''}conv{rank}d"
        stride_text = ", ".join(map(str, stride))
        args = f"{x.name}, {name}.kernel, {name}.bias, stride=({stride_text}{',' if rank == 1 else ''})"
        args += f", dilation={dilation}, padding={padding}"
        fused = str(self.rng.choice(["", " -> relu", " -> relu6"])) if scale > 2e-4 else ""
        self.lines.append(f"{name} = {op}({args}){fused} : {self.q(scale)}")
        return _Tensor(name, (*spatial, out_channels), scale)

    def pool(self, x: _Tensor) -> _Tensor:
        rank = len(x.shape) - 1
        op = str(self.rng.choice(["max_pool", "avg_pool"]))
        size = min(2, *x.shape[:-1])
        name = self.fresh("pool")
        padding = str(self.rng.choice(["same", "valid"]))
        self.lines.append(f"{name} = {op}({x.name}, size={size}, padding={padding})")
        spatial = [(-(-d // size) if padding == "same" else (d - size) // size + 1) for d in x.shape[:rank]]
        return _Tensor(name, (*spatial, x.shape[-1]), x.scale)

    def activation(self, x: _Tensor) -> _Tensor:
        kind = str(self.rng.choice(["relu", "relu6", "leaky_relu", "tanh", "sigmoid"]))
        name = self.fresh(kind)
        if kind == "relu":
            scale = x.scale * float(np.exp(self.rng.uniform(-0.5, 0.5)))
            self.lines.append(f"{name} = relu({x.name}) : {self.q(scale)}")
            return _Tensor(name, x.shape, scale)
        if kind == "relu6" and x.scale > 2e-4:
            self.lines.append(f"{name} = relu6({x.name})")
            return _Tensor(name, x.shape, x.scale)
        if kind == "leaky_relu":
            self.lines.append(f"{name} = leaky_relu({x.name}, alpha={float(self.rng.uniform(0.05, 0.5)):.3g})")
            return _Tensor(name, x.shape, x.scale)
        kind = "tanh" if kind == "relu6" else kind
        self.lines.append(f"{name} = {kind}({x.name})")
        return _Tensor(name, x.shape, 1 / 32768)

    def add(self, x: _Tensor) -> _Tensor:
        branch = self.fresh("branch")
        channels = x.shape[-1]
        scale = self.weighted(branch, (*([1] * (len(x.shape) - 1)), channels, channels), channels, channels, x)
        conv = f"conv{len(x.shape) - 1}d"
        self.lines.append(f"{branch} = {conv}({x.name}, {branch}.kernel, {branch}.bias) : {self.q(scale)}")
        name = self.fresh("add")
        out = max(x.scale, scale) * float(np.exp(self.rng.uniform(0.3, 1.0)))
        fused = " -> relu" if self.rng.random() < 0.3 else ""
        self.lines.append(f"{name} = add({x.name}, {branch}){fused} : {self.q(out)}")
        return _Tensor(name, x.shape, out)

    def concat(self, x: _Tensor) -> _Tensor:
        other = self.fresh("leaky")
        self.lines.append(f"{other} = leaky_relu({x.name}, alpha=0.25)")
        name = self.fresh("cat")
        self.lines.append(f"{name} = concat({x.name}, {other})")
        return _Tensor(name, (*x.shape[:-1], 2 * x.shape[-1]), x.scale)

    def pad(self, x: _Tensor) -> _Tensor:
        pads = [(int(self.rng.integers(0, 3)), int(self.rng.integers(0, 3))) for _ in x.shape[:-1]] + [(0, 0)]
        name = self.fresh("pad")
        text = ", ".join(f"({a}, {b})" for a, b in pads)
        self.lines.append(f"{name} = pad({x.name}, pads=({text}))")
        return _Tensor(name, tuple(d + a + b for d, (a, b) in zip(x.shape, pads, strict=True)), x.scale)

    def head(self, x: _Tensor) -> None:
        if self.rng.random() < 0.5:
            flat = self.fresh("flat")
            self.lines.append(f"{flat} = flatten({x.name})")
            x = _Tensor(flat, (math.prod(x.shape),), x.scale)
        else:
            op = str(self.rng.choice(["global_max_pool", "global_avg_pool"]))
            pooled = self.fresh("global")
            self.lines.append(f"{pooled} = {op}({x.name})")
            x = _Tensor(pooled, (x.shape[-1],), x.scale)
        units = int(self.rng.integers(2, 11))
        scale = self.weighted("fc", (x.shape[0], units), units, x.shape[0], x)
        self.lines.append(f"logits = dense({x.name}, fc.kernel, fc.bias) : {self.q(scale)}")
        softmax = self.rng.random() < 0.5 and scale < 1.0  # TFLM's int16 softmax takes input scales below ~2
        self.lines.append("output probs = softmax(logits)" if softmax else "output logits")

    def network(self) -> RandomNetwork:
        name = f"rand_i16_{self.seed}"
        rank = 1 + self.seed % 2
        shape = (int(self.rng.integers(6, 25)), int(self.rng.integers(1, 4))) if rank == 1 else \
            (int(self.rng.integers(4, 11)), int(self.rng.integers(4, 11)), int(self.rng.integers(1, 4)))
        scale = float(np.exp(self.rng.uniform(math.log(1e-4), math.log(1e-2))))
        self.lines += [f"# random i16 network, seed {self.seed}", f"network {name}", f'weights "{name}.npz"',
                       f"input x : i16[{', '.join(map(str, shape))}] {self.q(scale)[4:]}"]
        x = _Tensor("x", shape, scale)
        steps = ["conv", "depthwise", "pool", "activation", "add", "concat", "pad"]
        for step in [steps[i] for i in self.rng.permutation(len(steps))][: int(self.rng.integers(4, 8))]:
            if x.shape[-1] > 16 and step == "concat":
                step = "conv"
            x = {"conv": lambda t: self.conv(t, False), "depthwise": lambda t: self.conv(t, True),
                 "pool": self.pool, "activation": self.activation, "add": self.add, "concat": self.concat,
                 "pad": self.pad}[step](x)
        self.head(x)
        return RandomNetwork(name, "\n".join(self.lines) + "\n", self.weights)


def random_i16_network(seed: int) -> RandomNetwork:
    """The seeded random 16x8 network ``seed`` (odd seeds 2-D, even seeds 1-D)."""
    return _Builder(seed).network()
