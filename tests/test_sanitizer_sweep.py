"""Sanitizers over the op space: random models of every op in every arithmetic, inputs at the extremes.

Each network's C is built with ``-fsanitize=address,undefined -fno-sanitize-recover=all`` (any report is
fatal) and run, with the static arena and with a scrambled caller arena, on the all-minimum, all-maximum,
alternating (minimum, maximum, ...) and zero inputs and on random ones; its outputs must equal the NumPy
backend's (bit for bit for integer arithmetic, the f32 rule of ``test_c_backend`` for float). The
extremes are the input type's range: int8 and int16 limits, a ``qM.N`` input's format range, and large
floats (±64) for f32.

Default: two or three networks of each kind (15 sanitized builds); ``-m slow`` sweeps 20 seeds of each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl.types import DType
from tests.c_harness import build_program, find_compiler, run_program
from tests.fixed_point_models import random_fixed_network
from tests.random_i16 import random_i16_network
from tests.test_c_backend import RandomNetwork, random_f32_network, random_int8_network
from tests.test_c_ops import assert_matches, random_conv_network

Array = npt.NDArray[np.generic]
RANDOM_INPUTS = 60
FLOAT_EXTREME = 64.0  # f32 inputs: far beyond the unit-scale values the generators' weights expect

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="needs gcc")

KINDS: dict[str, Callable[[int], RandomNetwork]] = {
    "f32-dense": random_f32_network,
    "f32-conv": lambda seed: random_conv_network("f32", seed),
    "i8-dense": random_int8_network,
    "i8-conv": lambda seed: random_conv_network("i8", seed),
    "i16": random_i16_network,
    "fixed": random_fixed_network,
}
DEFAULT = [(kind, seed) for kind in KINDS for seed in ((0, 1, 2) if kind in ("i8-conv", "i16", "fixed") else (0, 1))]
SLOW = [(kind, seed) for kind in KINDS for seed in range(100, 120)]


def extreme_inputs(model: nndsl.Model, count: int, seed: int) -> Array:
    """All minimum, all maximum, alternating both ways, all zero, then ``count`` uniform over the range."""
    in_type = model.graph.input.type
    shape, dtype = in_type.shape, np.dtype(in_type.dtype.numpy)
    if in_type.dtype is DType.F32:
        low, high = -FLOAT_EXTREME, FLOAT_EXTREME
    else:
        low, high = in_type.bounds
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, low, high)
    edges = [np.full(shape, low), np.full(shape, high), alternating, low + high - alternating, np.zeros(shape)]
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(low, high, size=(count, *shape)) if dtype.kind == "f" else \
        rng.integers(low, high + 1, size=(count, *shape))
    return np.concatenate([np.stack(edges), uniform]).astype(dtype)


def check_sanitized(kind: str, seed: int, tmp_path: Path) -> None:
    network = KINDS[kind](seed)
    try:
        model = network.write(tmp_path / "src")
    except nndsl.NNError as error:  # a generator bug, not a backend one
        raise AssertionError(f"generated network does not compile:\n{network.text}\n{error}") from error
    inputs = extreme_inputs(model, RANDOM_INPUTS, seed)
    expected = model.run(inputs)
    program = build_program(model, tmp_path / "build", sanitize=True)
    for caller_arena in (False, True):
        got = run_program(program, inputs, caller_arena=caller_arena)
        assert_matches(got, model, inputs, expected, network.text)


@pytest.mark.parametrize(("kind", "seed"), DEFAULT, ids=[f"{kind}-{seed}" for kind, seed in DEFAULT])
def test_sanitized_c_equals_numpy_at_the_extremes(kind: str, seed: int, tmp_path: Path) -> None:
    check_sanitized(kind, seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "seed"), SLOW, ids=[f"{kind}-{seed}" for kind, seed in SLOW])
def test_sanitizer_sweep(kind: str, seed: int, tmp_path: Path) -> None:
    check_sanitized(kind, seed, tmp_path)


def test_extreme_inputs_reach_both_ends() -> None:
    model = nndsl.loads("network n\ninput x : q2.3[2, 3]\noutput y = relu(x)\n")
    inputs = extreme_inputs(model, 4, 0)
    assert inputs.dtype == np.int8 and (inputs[0] == -32).all() and (inputs[1] == 31).all()
    assert inputs[2].tolist() == [[-32, 31, -32], [31, -32, 31]] and (inputs[3] == -1 - inputs[2] + 0).all()
