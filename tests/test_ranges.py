"""The range analysis: sound on every input, exact for the first layer, overflow is an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl import ir
from nndsl.backend import backend
from nndsl.diagnostics import NNError
from tests.conftest import EXAMPLES


def dense_model(folder: Path, kernel: np.ndarray, bias: np.ndarray, *, target: str = "",
                relu6_scale: float | None = None, in_zero: int = -3) -> Path:
    """One int8 dense layer on a vector input (and optionally a relu6 with a chosen output scale)."""
    np.savez(folder / "w.npz", **{"fc.kernel": kernel.astype(np.int8), "fc.kernel.scale": np.float32(0.01),
                                  "fc.bias": bias.astype(np.int32)})
    activation = " -> relu6" if relu6_scale is not None else ""
    scale = relu6_scale if relu6_scale is not None else 0.5
    source = f"""network r
{target}
weights "w.npz"
input x : i8[{kernel.shape[0]}] @ scale(0.02) zero({in_zero})
output y = dense(x, fc.kernel, fc.bias){activation} : i8 @ scale({scale}) zero(-128)
"""
    path = folder / "r.nn"
    path.write_text(source)
    return path


def accumulators(model: nndsl.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    seen: dict[str, np.ndarray] = {}

    def observe(op: ir.Op, acc: Any) -> None:
        seen[op.output.name] = np.asarray(acc)

    backend("numpy").run(model.graph, x, observe=observe)
    return seen


def op_range(model: nndsl.Model, name: str) -> Any:
    assert model.compiled.ranges is not None
    return model.compiled.ranges.for_output(name)


# -- overflow -------------------------------------------------------------------------------------------------


def test_long_dot_product_overflows_i32(tmp_path: Path) -> None:
    # 70,000 inputs of (127 + 128) x 127 each: 2.27e9, beyond 2**31 - 1.
    kernel = np.full((70000, 1), 127)
    with pytest.raises(NNError) as raised:
        nndsl.load(dense_model(tmp_path, kernel, np.zeros(1), in_zero=-128))
    (error,) = raised.value.diagnostics
    assert (error.loc.line, error.loc.col) == (5, 12)  # type: ignore[union-attr]
    assert "the accumulator of 'y' can reach [0, 2266950000], beyond i32 [-2147483648, 2147483647]" in error.message


def test_same_length_with_smaller_weights_passes(tmp_path: Path) -> None:
    kernel = np.full((70000, 1), 100)
    model = nndsl.load(dense_model(tmp_path, kernel, np.zeros(1), in_zero=-128))
    assert op_range(model, "y").accumulator.bounds == (0, 70000 * 255 * 100)


def test_bias_near_the_limit_overflows(tmp_path: Path) -> None:
    kernel = np.full((4, 1), 10)
    with pytest.raises(NNError, match=r"can reach \[2147473647, 2147483847\]"):
        nndsl.load(dense_model(tmp_path, kernel, np.array([2**31 - 10001]), in_zero=-128))


def test_i16_accumulator_target(tmp_path: Path) -> None:
    target = "target dsp { ram = 8 KiB, flash = 64 KiB, clock = 16 MHz, accumulator = i16 }"
    with pytest.raises(NNError, match=r"the accumulator of 'y' can reach \[0, 1036320\], beyond i16 \[-32768, 32767\]"):
        nndsl.load(dense_model(tmp_path, np.full((32, 1), 127), np.zeros(1), target=target, in_zero=-128))
    small = nndsl.load(dense_model(tmp_path, np.full((32, 1), 4), np.zeros(1), target=target, in_zero=-128))
    assert op_range(small, "y").accumulator.bounds == (0, 32 * 255 * 4)


def test_partial_sums_are_checked_too(tmp_path: Path) -> None:
    """A sum whose end fits can overflow on the way (the C adds the terms first, the bias last)."""
    kernel = np.full((70000, 1), 127)
    with pytest.raises(NNError, match=r"a partial sum of 'y' \(before its bias\) can reach \[0, 2266950000\]"):
        nndsl.load(dense_model(tmp_path, kernel, np.array([-(2**31) + 1]), in_zero=-128))


# -- exactness and soundness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_first_layer_bound_is_attained(seed: int, tmp_path: Path) -> None:
    """The input at each value's end matching its weight's sign reaches the accumulator's bound exactly."""
    rng = np.random.default_rng(seed)
    kernel = rng.integers(-127, 128, size=(int(rng.integers(2, 50)), 6))
    bias = rng.integers(-5000, 5000, size=6)
    model = nndsl.load(dense_model(tmp_path, kernel, bias, in_zero=int(rng.integers(-128, 128))))
    bounds = op_range(model, "y").accumulator
    channel = int(rng.integers(6))
    high = np.where(kernel[:, channel] > 0, 127, -128).astype(np.int8)
    low = np.where(kernel[:, channel] > 0, -128, 127).astype(np.int8)
    seen = accumulators(model, np.stack([high, low]))["y"]
    assert seen[0, channel] == bounds.hi[channel]
    assert seen[1, channel] == bounds.lo[channel]


def test_conv_bound_is_attained(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    kernel = rng.integers(-127, 128, size=(3, 3, 2, 4))
    np.savez(tmp_path / "w.npz", **{"c.kernel": kernel.astype(np.int8), "c.kernel.scale": np.float32(0.01)})
    (tmp_path / "c.nn").write_text("""network c
weights "w.npz"
input x : i8[5, 5, 2] @ scale(0.02) zero(7)
output y = conv2d(x, c.kernel) : i8 @ scale(0.5) zero(0)
""")
    model = nndsl.load(tmp_path / "c.nn")
    bounds = op_range(model, "y").accumulator
    x = np.where(kernel[..., 1] > 0, 127, -128).astype(np.int8)  # channel 1 at output position (0, 0)
    window = np.full((5, 5, 2), 0, dtype=np.int8)
    window[:3, :3, :] = x
    seen = accumulators(model, window[np.newaxis])["y"]
    assert seen[0, 0, 0, 1] == bounds.hi[0, 0, 1]


def random_network(rng: np.random.Generator, folder: Path) -> Path:
    """Dense or conv first, then a mix of layers: each with random weights and scales."""
    arrays: dict[str, np.ndarray] = {}
    lines = ["network p", 'weights "w.npz"']
    two_d = bool(rng.integers(2))
    shape = (int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(1, 4))) if two_d else (
        int(rng.integers(4, 20)), int(rng.integers(1, 4)))
    lines.append(f"input x : i8[{', '.join(map(str, shape))}] @ scale(0.05) zero({int(rng.integers(-128, 128))})")
    channels = shape[-1]
    previous = "x"
    for index in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 6))
        name = f"l{index}"
        kind = "conv2d" if two_d else "conv1d"
        kernel_shape = (2, 2, channels, out) if two_d else (3, channels, out)
        arrays[f"{name}.kernel"] = rng.integers(-127, 128, size=kernel_shape).astype(np.int8)
        arrays[f"{name}.kernel.scale"] = rng.uniform(0.001, 0.02, size=out).astype(np.float32)
        arrays[f"{name}.bias"] = rng.integers(-3000, 3000, size=out).astype(np.int32)
        act = str(rng.choice(["", " -> relu", " -> relu6"]))
        lines.append(f"{name} = {kind}({previous}, {name}.kernel, {name}.bias, padding=same){act} "
                     f": i8 @ scale({rng.uniform(0.05, 1):.4f}) zero({int(rng.integers(-128, 128))})")
        previous, channels = name, out
    lines.append(f"f = flatten({previous})")
    size = int(np.prod(shape[:-1])) * channels
    arrays["d.kernel"] = rng.integers(-127, 128, size=(size, 3)).astype(np.int8)
    arrays["d.kernel.scale"] = np.float32(0.01)
    lines.append(f"output y = dense(f, d.kernel) : i8 @ scale({rng.uniform(0.1, 2):.4f}) zero(0)")
    np.savez(folder / "w.npz", **arrays)
    (folder / "p.nn").write_text("\n".join(lines) + "\n")
    return folder / "p.nn"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_observed_accumulators_lie_inside_the_bounds(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = nndsl.load(random_network(rng, tmp_path))
    inputs = rng.integers(-128, 128, size=(64, *model.graph.input.type.shape), dtype=np.int8)
    for name, acc in accumulators(model, inputs).items():
        bounds = op_range(model, name).accumulator
        assert np.all(acc >= bounds.lo) and np.all(acc <= bounds.hi), name
    # Every output lies inside its interval, too.
    trace = model.trace(inputs)
    assert model.compiled.ranges is not None
    for result in model.compiled.ranges.ops:
        values = trace[result.op.output.name]
        assert np.all(values >= result.output.lo) and np.all(values <= result.output.hi)


# -- warnings and the table -------------------------------------------------------------------------------------


def test_relu6_beyond_the_format_is_a_warning(tmp_path: Path) -> None:
    # Output scale 1/32 with zero -128 holds up to 7.97: relu6 fits. Scale 1/64 holds 3.98: it does not.
    kernel = np.full((8, 1), 100)
    fits = nndsl.load(dense_model(tmp_path, kernel, np.zeros(1), relu6_scale=1 / 32))
    assert fits.compiled.range_warnings() == []
    clipped = nndsl.load(dense_model(tmp_path, kernel, np.zeros(1), relu6_scale=1 / 64))
    (warning,) = clipped.compiled.range_warnings()
    assert "'y' saturates: it reaches 6, its format holds up to 3.984" in warning.message
    assert "34% of its reachable range is clipped" in warning.message


def test_check_ranges_prints_the_interval_table() -> None:
    result = subprocess.run([sys.executable, "-m", "nndsl", "check", "--ranges", str(EXAMPLES / "mlp" / "mlp.nn")],
                            check=True, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["layer", "op", "accumulator"]
    assert any(line.startswith("hidden1 ") and "[-630383, 446670]" in line for line in lines)
    assert "warning: 'hidden1' saturates" in result.stderr
