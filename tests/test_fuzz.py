"""Fuzzing: random `.nn` programs and weights, and mutations of the examples, never end in a traceback.

Two sources of cases:

- a grammar-aware generator (Hypothesis strategies) of small networks in every
  arithmetic (f32, i8, i16, fixed point) over the ops of docs/language.md, with
  random attributes and ``.npz`` weights, mostly well-formed, some broken on
  purpose (a wrong shape, dtype, key or attribute);
- a mutator of the example models (``examples/*/*.nn``): tokens deleted,
  duplicated, swapped; numbers replaced by huge, negative, zero or non-finite
  values; unicode, very long lines and names, deep parentheses, binary
  garbage, CRLF, a UTF-8 byte order mark, tabs.

Every case must end in a model (which then runs on a random input and
generates C) or an :class:`nndsl.NNError` with at least one error, within
``CASE_SECONDS`` of CPU time and without the process growing beyond ``MAX_RSS_MB``.

The default run tries ``DEFAULT_CASES`` cases, derandomised; the long run is
``NNDSL_FUZZ_CASES=20000 .venv/bin/pytest tests/test_fuzz.py -m slow``.
"""

from __future__ import annotations

import os
import random
import re
import resource
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from tests.conftest import EXAMPLES

CASE_SECONDS = 1.0  # of CPU time: wall time also counts whatever else the machine is doing
CASE_WALL_SECONDS = 10.0  # a case blocked on I/O (a FIFO) would not use the CPU
MAX_RSS_MB = 1500
DEFAULT_CASES = 100  # per test: generated programs, and mutations of the examples
LONG_CASES = int(os.environ.get("NNDSL_FUZZ_CASES", "2000"))

Arrays = dict[str, np.ndarray]


# -- running one case -----------------------------------------------------------------------------


def _rss_mb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // (1 << 20) if sys.platform == "darwin" else peak // 1024


def random_input(model: nndsl.Model, rng: np.random.Generator) -> np.ndarray:
    """An input of the model's shape and dtype, within its type's range (a qM.N format's, for fixed point)."""
    in_type = model.graph.input.type
    if not in_type.dtype.is_integer:
        return rng.standard_normal(in_type.shape).astype(np.float32)
    low, high = in_type.bounds
    return rng.integers(low, high + 1, in_type.shape).astype(in_type.dtype.numpy)


def exercise(compile_case: Callable[[], nndsl.Model], seed: int = 0) -> str:
    """Compile; on success run a random input and generate C. Returns "ok" or "error"; anything else fails."""
    start, start_cpu = time.perf_counter(), time.process_time()
    outcome = "ok"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # float overflow of random f32 weights is no bug
            model = compile_case()
            output = model.run(random_input(model, np.random.default_rng(seed)))
            assert output.shape == model.graph.output.type.shape
            source, header = model.c_sources()
            assert source and header
    except nndsl.NNError as error:
        outcome = "error"
        assert any(d.severity.value == "error" for d in error.diagnostics), "an NNError without errors"
        for diagnostic in error.diagnostics:
            text = diagnostic.format()
            assert re.match(r"^(\S.*?(:\d+:\d+)?|nndsl): (error|warning|note): ", text), text
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
    assert cpu < CASE_SECONDS, f"the case took {cpu:.2f} s of CPU time"
    assert wall < CASE_WALL_SECONDS, f"the case took {wall:.2f} s"
    assert _rss_mb() < MAX_RSS_MB, f"the process grew to {_rss_mb()} MB"
    return outcome


# -- the program generator ------------------------------------------------------------------------

# Values an attribute gets once in a while instead of a sensible one.
ODD_VALUES: tuple[str, ...] = (
    "0", "-1", "1000000000", "1e18", "1000000000000000000000", "1.5", "-0", "1e999", "-1e999", "nan", "inf",
    "same", "valid", '"text"', "(1, 2, 3)", "((1, 1))", "((0, 0), (0, 0), (0, 0), (0, 0))", "()", "x",
)
FAMILIES = ("f32", "i8", "i16", "fixed")


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    format: str = "q7"  # fixed point: the tensor's qM.N format


@dataclass
class Program:
    """A network under construction: its statements, its weights and its tensors so far."""

    family: str
    draw: st.DrawFn
    lines: list[str] = field(default_factory=list)
    weights: Arrays = field(default_factory=dict)
    tensors: list[Tensor] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def odd(self) -> bool:
        """Whether to break something here (about one choice in twelve)."""
        return self.draw(st.integers(0, 11)) == 0

    def value(self, sensible: str) -> str:
        return self.draw(st.sampled_from(ODD_VALUES)) if self.odd() else sensible

    def quant(self, zero_allowed: bool = True) -> str:
        scale = self.draw(st.sampled_from(["0.05", "1/256", "0.0039", "0.5", "2"]))
        zero = self.draw(st.integers(-128, 127)) if self.family == "i8" and zero_allowed else 0
        return f"@ scale({scale}) zero({zero})"

    def element(self) -> str:
        return {"f32": "f32", "i8": "i8", "i16": "i16"}.get(self.family, "q7")

    def annotation(self, required: bool, name: str) -> str:
        """The layer's ``: TYPE``: needed by weighted ops and add in integer networks."""
        if self.family == "f32":
            return " : f32" if self.draw(st.booleans()) else ""
        if self.family == "fixed":
            fmt = self.draw(st.sampled_from(["q7", "q15", "q3.4", "q4.11", "q7.8"]))
            if required or self.odd():
                self.set_format(name, fmt)
                return f" : {fmt}"
            return ""
        if required or self.odd():
            return f" : {self.family} {self.quant()}"
        return ""

    def set_format(self, name: str, fmt: str) -> None:
        for tensor in self.tensors:
            if tensor.name == name:
                tensor.format = fmt

    def kernel(self, key: str, shape: tuple[int, ...], channels: int) -> None:
        """A kernel and its companions in the network's arithmetic; sometimes of a wrong shape or dtype."""
        if self.odd():
            shape = tuple(max(1, d + self.draw(st.integers(-1, 1))) for d in shape)
        if self.family == "f32":
            self.weights[key] = self.rng.standard_normal(shape).astype(np.float32)
        elif self.family == "fixed":
            storage = self.draw(st.sampled_from([np.int8, np.int16]))
            self.weights[key] = self.rng.integers(-100, 100, shape).astype(storage)
            self.weights[f"{key}.frac_bits"] = np.array(self.draw(st.integers(0, 12)), np.int32)
        else:
            self.weights[key] = self.rng.integers(-127, 128, shape).astype(np.int8)
            count = channels if self.draw(st.booleans()) else 1
            self.weights[f"{key}.scale"] = np.full(count, self.draw(st.sampled_from([1e-4, 0.002, 0.02])),
                                                   np.float32)
        if self.odd():
            self.weights[key] = self.weights[key].astype(self.draw(st.sampled_from([np.float64, np.int32, np.uint8])))

    def bias(self, key: str, channels: int) -> None:
        dtype = {"f32": np.float32, "i8": np.int32, "i16": np.int64, "fixed": np.int32}[self.family]
        self.weights[key] = self.rng.integers(-300, 300, channels).astype(dtype)
        if self.family == "fixed":
            self.weights[f"{key}.frac_bits"] = np.array(self.draw(st.integers(0, 14)), np.int32)
        if self.odd():
            del self.weights[key]


def _windowed(p: Program, x: Tensor, name: str, op: str, rank: int) -> tuple[str, tuple[int, ...], bool]:
    """A convolution or pool over ``x`` (rank spatial axes): its call, output shape (a guess) and needs-type."""
    channels = x.shape[-1]
    padding = p.draw(st.sampled_from(["same", "valid"]))
    stride = p.draw(st.integers(1, 3))
    attrs = f"stride={p.value(str(stride))}, padding={p.value(padding)}"
    if op.endswith("pool"):
        size = p.draw(st.integers(1, 3))
        call = f"{op}({x.name}, size={p.value(str(size))}, {attrs})"
        return call, x.shape, False
    dilation = p.draw(st.integers(1, 2))
    window = tuple(p.draw(st.integers(1, 3)) for _ in range(rank))
    depthwise = op.startswith("depthwise")
    out = p.draw(st.integers(1, 4))
    p.kernel(f"{name}.kernel", (*window, channels, out), channels * out if depthwise else out)
    bias = ""
    if p.draw(st.booleans()):
        p.bias(f"{name}.bias", channels * out if depthwise else out)
        bias = f", {name}.bias"
    call = f"{op}({x.name}, {name}.kernel{bias}, {attrs}, dilation={p.value(str(dilation))})"
    return call, (*x.shape[:-1], channels * out if depthwise else out), True


def _layer(p: Program, name: str) -> tuple[str, tuple[int, ...], bool]:
    """One random layer on the tensors so far: its call, its output shape (a guess) and whether it needs a type."""
    x = p.draw(st.sampled_from(p.tensors))
    rank = len(x.shape)
    choices = ["relu", "relu6", "leaky_relu", "tanh", "sigmoid", "hard_swish", "softmax", "flatten", "reshape",
               "pad", "dense", "add", "concat", "batch_norm"]
    if rank == 2:
        choices += ["conv1d", "depthwise_conv1d", "max_pool", "avg_pool", "global_max_pool", "global_avg_pool"]
    if rank == 3:
        choices += ["conv2d", "depthwise_conv2d", "max_pool", "avg_pool", "global_max_pool", "global_avg_pool"]
    op = p.draw(st.sampled_from(choices))
    size = int(np.prod(x.shape))
    if op in ("conv1d", "depthwise_conv1d", "conv2d", "depthwise_conv2d", "max_pool", "avg_pool"):
        return _windowed(p, x, name, op, rank - 1)
    if op == "dense":
        units = p.draw(st.integers(1, 8))
        p.kernel(f"{name}.kernel", (x.shape[-1], units), units)
        p.bias(f"{name}.bias", units)
        return f"dense({x.name}, {name}.kernel, {name}.bias)", (*x.shape[:-1], units), True
    if op == "add":
        other = p.draw(st.sampled_from(p.tensors))
        return f"add({x.name}, {other.name})", x.shape, True
    if op == "concat":
        other = p.draw(st.sampled_from(p.tensors))
        return f"concat({x.name}, {other.name}, axis={p.value('-1')})", x.shape, False
    if op == "pad":
        pairs = ", ".join(f"({p.draw(st.integers(0, 2))}, {p.draw(st.integers(0, 2))})" for _ in x.shape)
        return f"pad({x.name}, pads={p.value(f'({pairs},)')})", x.shape, False
    if op == "reshape":
        shape = p.draw(st.sampled_from([f"({size},)", f"(1, {size})", f"({size}, 1)"]))
        return f"reshape({x.name}, shape={p.value(shape)})", (size,), False
    if op == "flatten":
        return f"flatten({x.name})", (size,), False
    if op == "batch_norm":
        for role in ("gamma", "beta", "mean", "variance"):
            p.weights[f"{name}.{role}"] = np.abs(p.rng.standard_normal(x.shape[-1])).astype(np.float32) + 0.1
        refs = ", ".join(f"{name}.{role}" for role in ("gamma", "beta", "mean", "variance"))
        return f"batch_norm({x.name}, {refs})", x.shape, True
    if op.startswith("global"):
        return f"{op}({x.name})", (x.shape[-1],), False
    attrs = f", alpha={p.value('0.2')}" if op == "leaky_relu" else ""
    return f"{op}({x.name}{attrs})", x.shape, False


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, Arrays]:
    """A random network: its `.nn` text and its weights."""
    family = draw(st.sampled_from(FAMILIES))
    p = Program(family, draw, rng=np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    p.lines.append("network fuzz")
    target = draw(st.sampled_from(["", "target efm32", "target cortex_m0 { accumulator = i16 }",
                                   "target efm32 { rounding = single, latency <= 10 ms }"]))
    p.lines.append(target)
    p.lines.append('weights "w.npz"')
    shape = tuple(draw(st.lists(st.integers(1, 10), min_size=1, max_size=3)))
    quant = f" {p.quant(zero_allowed=True)}" if family in ("i8", "i16") else ""
    p.lines.append(f"input x : {p.element()}[{', '.join(map(str, shape))}]{quant}")
    p.tensors.append(Tensor("x", shape))
    count = draw(st.integers(1, 6))
    for index in range(count):
        name = f"l{index}"
        call, out_shape, typed = _layer(p, name)
        activation = " -> relu" if draw(st.integers(0, 5)) == 0 else ""
        p.tensors.append(Tensor(name, out_shape))
        prefix = "output " if index == count - 1 else ""
        p.lines.append(f"{prefix}{name} = {call}{activation}{p.annotation(typed, name)}")
    return "\n".join(p.lines) + "\n", p.weights


def _compile_program(tmp: Path, text: str, weights: Arrays) -> nndsl.Model:
    np.savez(tmp / "w.npz", **weights)
    return nndsl.loads(text, str(tmp / "fuzz.nn"))


# -- the mutator ----------------------------------------------------------------------------------

EXAMPLE_MODELS = sorted(EXAMPLES.glob("*/*.nn"))
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_.]*|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\S")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
ODD_NUMBERS = ("0", "-1", "-128", "1000000000", "2147483648", "4294967296", "9223372036854775808",
               "100000000000000000000000000", "1e18", "1e308", "1e999", "-1e999", "nan", "inf", "0.0", "1e-320",
               "9" * 5000)
UNICODE = ("é", "中", "\U0001f600", "\u202e", "\u00a0", "\x00", "\ufeff", "ß", "\u0301", "\x7f", "\u2028")


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _mutate_tokens(tokens: list[str], rnd: random.Random) -> None:
    """One token-level mutation in place."""
    kind = rnd.choice(["delete", "duplicate", "swap", "number", "number", "unicode", "long-name", "nest"])
    if not tokens:
        tokens.append(rnd.choice(UNICODE))
        return
    i, j = rnd.randrange(len(tokens)), rnd.randrange(len(tokens))
    if kind == "delete":
        del tokens[i]
    elif kind == "duplicate":
        tokens.insert(i, tokens[i] * rnd.choice([1, 2, 50]))
    elif kind == "swap":
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif kind == "number":
        numbers = [k for k, token in enumerate(tokens) if NUMBER.fullmatch(token)]
        tokens[rnd.choice(numbers) if numbers else i] = rnd.choice(ODD_NUMBERS)
    elif kind == "unicode":
        tokens.insert(i, rnd.choice(UNICODE))
    elif kind == "long-name":
        tokens[i] = rnd.choice(["x", "a_", "fc1."]) * rnd.choice([100, 10000, 60000])
    else:
        depth = rnd.choice([3, 40, 500, 5000])
        tokens.insert(i, "(" * depth + rnd.choice(["1", "x", ""]) + ")" * rnd.choice([depth, depth - 1]))


def _mutate_text(text: str, rnd: random.Random) -> str:
    """One whole-text mutation: line endings, a byte order mark, tabs, a long line, garbage."""
    kind = rnd.choice(["crlf", "bom", "tabs", "long-line", "garbage", "truncate", "cr"])
    if kind == "crlf":
        return text.replace("\n", "\r\n")
    if kind == "cr":
        return text.replace("\n", "\r")
    if kind == "bom":
        return "\ufeff" + text
    if kind == "tabs":
        return text.replace(" ", "\t")
    if kind == "long-line":
        return text + "# " + "x" * 200_000 + "\n" + "y = relu(" + "x, " * 20_000 + "x)\n"
    if kind == "garbage":
        at = rnd.randrange(len(text) + 1)
        garbage = bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 16, 512]))).decode("latin-1")
        return text[:at] + garbage + text[at:]
    return text[: rnd.randrange(len(text) + 1)]


@st.composite
def mutants(draw: st.DrawFn) -> tuple[Path, str]:
    """An example model with one to four mutations, and the model it came from."""
    path = draw(st.sampled_from(EXAMPLE_MODELS))
    rnd = draw(st.randoms(use_true_random=False))
    text = path.read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 4))):
        if rnd.random() < 0.75:
            tokens = _tokens(text)
            _mutate_tokens(tokens, rnd)
            text = "".join(tokens)
        else:
            text = _mutate_text(text, rnd)
    return path, text


def _compile_mutant(tmp: Path, origin: Path, text: str, through_file: bool) -> nndsl.Model:
    """Through ``loads`` next to the example's weights, or written (as UTF-8 bytes) and read with ``load``."""
    if not through_file:
        return nndsl.loads(text, str(origin))
    weights = tmp / "weights"
    weights.mkdir(exist_ok=True)
    for npz in origin.parent.glob("*.npz"):
        link = weights / npz.name
        if not link.exists():
            link.symlink_to(npz)
    model = weights / "mutant.nn"
    model.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    return nndsl.load(model)


# -- the tests ------------------------------------------------------------------------------------

FUZZ_SETTINGS = {
    "deadline": None,  # each case asserts its own time, after a warm-up
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                              HealthCheck.function_scoped_fixture],
}


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """Build the parser and import the backends once, so that the first case is timed like the others."""
    nndsl.load(EXAMPLES / "mlp" / "mlp.nn").c_sources()


def _program_case(tmp_path: Path, case: tuple[str, Arrays], outcomes: list[str]) -> None:
    text, weights = case
    outcomes.append(exercise(lambda: _compile_program(tmp_path, text, weights)))


def _mutant_case(tmp_path: Path, case: tuple[Path, str], through_file: bool, outcomes: list[str]) -> None:
    origin, text = case
    outcomes.append(exercise(lambda: _compile_mutant(tmp_path, origin, text, through_file)))


def _report(name: str, outcomes: list[str]) -> None:
    print(f"\n{name}: {len(outcomes)} cases, {outcomes.count('ok')} compiled and ran, "
          f"{outcomes.count('error')} located errors, 0 failures")


def test_fuzz_programs(tmp_path: Path) -> None:
    outcomes: list[str] = []

    @settings(max_examples=DEFAULT_CASES, derandomize=True, **FUZZ_SETTINGS)
    @given(programs())
    def run(case: tuple[str, Arrays]) -> None:
        _program_case(tmp_path, case, outcomes)

    run()
    assert "ok" in outcomes and "error" in outcomes, "the generator should make both valid and broken models"
    _report("programs", outcomes)


def test_fuzz_mutants(tmp_path: Path) -> None:
    outcomes: list[str] = []

    @settings(max_examples=DEFAULT_CASES, derandomize=True, **FUZZ_SETTINGS)
    @given(mutants(), st.booleans())
    def run(case: tuple[Path, str], through_file: bool) -> None:
        _mutant_case(tmp_path, case, through_file, outcomes)

    run()
    _report("mutants", outcomes)


@pytest.mark.slow
def test_fuzz_programs_long(tmp_path: Path) -> None:
    outcomes: list[str] = []

    @settings(max_examples=LONG_CASES, **FUZZ_SETTINGS)
    @given(programs())
    def run(case: tuple[str, Arrays]) -> None:
        _program_case(tmp_path, case, outcomes)

    run()
    _report("programs (long)", outcomes)


@pytest.mark.slow
def test_fuzz_mutants_long(tmp_path: Path) -> None:
    outcomes: list[str] = []

    @settings(max_examples=LONG_CASES, **FUZZ_SETTINGS)
    @given(mutants(), st.booleans())
    def run(case: tuple[Path, str], through_file: bool) -> None:
        _mutant_case(tmp_path, case, through_file, outcomes)

    run()
    _report("mutants (long)", outcomes)
