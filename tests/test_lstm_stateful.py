"""The stateful lstm: calls on consecutive chunks of a sequence equal one call on the whole sequence.

An int8 LSTM's hidden state starts at its output zero point (TFLM's reset
state), not at 0: the state's initial value, at startup and after
``<name>_reset()``. Checked exactly in int8 (NumPy and C under ASan/UBSan) and
within float rounding in f32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nndsl
from tests.c_harness import run_stateful_c
from tests.lstm_models import LstmSpec, quantize

SPEC = LstmSpec(12, 3, 4, seed=5, cell_clip=0.5)
CHUNK = 3
CHUNKS = SPEC.steps // CHUNK


def int8_network(directory: Path, steps: int, stateful: bool) -> nndsl.Model:
    """The spec quantised as one int8 ``lstm`` layer over ``steps`` steps (every step's ``h`` out)."""
    directory.mkdir(parents=True, exist_ok=True)
    q = quantize(SPEC, flatbuffer=False)
    np.savez(directory / "w.npz", **{"l.kernel": q.kernel, "l.kernel.scale": q.kernel_scales,
                                    "l.recurrent": q.recurrent, "l.recurrent.scale": q.recurrent_scales,
                                    "l.bias": q.bias})
    (s_in, z_in), (s_out, z_out) = q.input_quant, q.output_quant
    assert z_out != 0, "the test wants a hidden state whose initial value is not 0"
    (directory / "m.nn").write_text(
        f'network m\nweights "w.npz"\ninput x : i8[{steps}, {SPEC.features}] @ scale({s_in!r}) zero({z_in})\n'
        f"output y = lstm(x, l.kernel, l.recurrent, l.bias, cell_scale={q.cell_scale!r}, "
        f"cell_clip={SPEC.cell_clip!r}, return_sequences=true, stateful={'true' if stateful else 'false'}) "
        f": i8 @ scale({s_out!r}) zero({z_out})\n")
    return nndsl.load(directory / "m.nn")


def f32_network(directory: Path, steps: int, stateful: bool) -> nndsl.Model:
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "w.npz", k=SPEC.kernel, u=SPEC.recurrent, b=SPEC.bias)
    (directory / "m.nn").write_text(
        f'network m\nweights "w.npz"\ninput x : f32[{steps}, {SPEC.features}]\n'
        f"output y = lstm(x, k, u, b, return_sequences=true, stateful={'true' if stateful else 'false'})\n")
    return nndsl.load(directory / "m.nn")


def sequence(integer: bool) -> np.ndarray:
    rng = np.random.default_rng(9)
    if integer:
        return rng.integers(-128, 128, (SPEC.steps, SPEC.features)).astype(np.int8)
    return rng.normal(0.2, 1.0, (SPEC.steps, SPEC.features)).astype(np.float32)


@pytest.mark.parametrize("integer", [True, False], ids=["i8", "f32"])
def test_numpy_chunks_equal_the_whole_sequence(integer: bool, tmp_path: Path) -> None:
    build = int8_network if integer else f32_network
    whole = build(tmp_path / "whole", SPEC.steps, stateful=False)
    chunked = build(tmp_path / "chunked", CHUNK, stateful=True)
    assert chunked.stateful and not whole.stateful
    x = sequence(integer)
    expected = whole.run(x)
    parts = np.concatenate([chunked.run(x[i : i + CHUNK]) for i in range(0, SPEC.steps, CHUNK)])
    if integer:
        assert np.array_equal(parts, expected)
        assert not np.array_equal(chunked.run(x[:CHUNK]), expected[:CHUNK])  # continued, not fresh
    else:
        np.testing.assert_allclose(parts, expected, atol=1e-6)
    chunked.reset()
    batch = chunked.run(x.reshape(CHUNKS, CHUNK, SPEC.features))  # a batch: its rows are consecutive calls
    np.testing.assert_allclose(batch.reshape(expected.shape).astype(np.float64), expected.astype(np.float64),
                               atol=0 if integer else 1e-6)
    state = chunked.summary().state_bytes
    assert state == (SPEC.units * 3 if integer else SPEC.units * 8)  # h int8 + c int16, or two float arrays


@pytest.mark.parametrize("integer", [True, False], ids=["i8", "f32"])
def test_c_keeps_its_state_and_resets(integer: bool, tmp_path: Path, compiler: str) -> None:
    """Consecutive C calls continue the sequence (equal to one call on all of it), <name>_reset() starts
    again; under the strict flags and the sanitizers."""
    build = int8_network if integer else f32_network
    whole = build(tmp_path / "whole", SPEC.steps, stateful=False)
    model = build(tmp_path / "chunked", CHUNK, stateful=True)
    x = sequence(integer)
    printed = run_stateful_c(model, x.reshape(CHUNKS, CHUNK, SPEC.features), tmp_path / "c", compiler)
    expected = whole.run(x).astype(np.float64)
    for again in printed:
        np.testing.assert_allclose(again.reshape(expected.shape), expected, atol=0 if integer else 1e-6)
