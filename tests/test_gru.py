"""gru in f32 and fixed point: Keras GRU semantics, C == NumPy under ASan/UBSan, the stateful form (chunked
calls equal one call on the whole sequence, reset restores the fresh behaviour), located errors."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.diagnostics import NNError
from nndsl.qmath.gru import GruWeights, error_bound, gru_f32
from tests.c_harness import c_name, run_in_c, run_stateful_c

STEPS, FEATURES, UNITS = 6, 4, 5


def flag(value: bool) -> str:
    return "true" if value else "false"


def weights(reset_after: bool, seed: int = 0, scale: float = 0.5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    bias_shape = (2, 3 * UNITS) if reset_after else (3 * UNITS,)
    return {"k": (rng.normal(size=(FEATURES, 3 * UNITS)) * scale).astype(np.float32),
            "u": (rng.normal(size=(UNITS, 3 * UNITS)) * scale).astype(np.float32),
            "b": (rng.normal(size=bias_shape) * scale).astype(np.float32)}


def f32_model(tmp_path: Path, reset_after: bool = True, sequences: bool = True, stateful: bool = False,
              steps: int = STEPS, seed: int = 0) -> nndsl.Model:
    np.savez(tmp_path / "w.npz", **weights(reset_after, seed))
    (tmp_path / "m.nn").write_text(
        f'network g\nweights "w.npz"\ninput x : f32[{steps}, {FEATURES}]\n'
        f"output y = gru(x, k, u, b, return_sequences={flag(sequences)}, reset_after={flag(reset_after)}, "
        f"stateful={flag(stateful)})\n")
    return nndsl.load(tmp_path / "m.nn")


def inputs(count: int, steps: int = STEPS, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, steps, FEATURES)).astype(np.float32)


# --------------------------------------------------------------------------
# f32
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("sequences", [True, False])
def test_f32_gru_equals_keras(reset_after: bool, sequences: bool, tmp_path: Path) -> None:
    """The NumPy backend against a seeded Keras GRU with the same weights."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    model = f32_model(tmp_path, reset_after, sequences)
    w = weights(reset_after)
    x_in = keras.Input((STEPS, FEATURES))
    layer = keras.layers.GRU(UNITS, return_sequences=sequences, reset_after=reset_after)
    reference = keras.Model(x_in, layer(x_in))
    layer.set_weights([w["k"], w["u"], w["b"]])
    x = inputs(8)
    assert np.allclose(model.run(x), reference.predict(x, verbose=0), atol=2e-6)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("sequences", [True, False])
def test_f32_gru_c_equals_numpy(reset_after: bool, sequences: bool, tmp_path: Path) -> None:
    model = f32_model(tmp_path, reset_after, sequences)
    x = inputs(6)
    c = run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True, caller_arena=True)
    assert np.allclose(c, model.run(x), atol=1e-6)


def test_summary_counts_gru_macs(tmp_path: Path) -> None:
    model = f32_model(tmp_path)
    assert model.summary().macs == STEPS * 3 * UNITS * (FEATURES + UNITS)
    assert model.summary().state_bytes == 0 and not model.stateful


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("weights_of", "call", "message"), [
    ({"k": (4, 14), "u": (5, 15)}, "gru(x, k, u)", "4:19: error: gru kernel 'k' must be [features, 3 * units]"),
    ({"k": (4, 15), "u": (5, 15), "b": (2, 15)}, "gru(x, k, u, b, reset_after=false)",
     "4:25: error: gru bias 'b' has shape [2, 15], expected [15] (a recurrent bias [2, 3U] needs reset_after"),
    ({"k": (4, 15), "u": (5, 15)}, "gru(x, k, u, stateful=maybe)", "error: gru stateful must be one of false, true"),
    ({"k": (4, 15), "u": (4, 15)}, "gru(x, k, u)", "error: gru recurrent_kernel 'u' has shape [4, 15], expected"),
])
def test_gru_errors_are_located(weights_of: dict[str, tuple[int, ...]], call: str, message: str,
                                tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", **{k: np.zeros(s, np.float32) for k, s in weights_of.items()})
    (tmp_path / "m.nn").write_text(f'network g\nweights "w.npz"\ninput x : f32[6, 4]\noutput y = {call}\n')
    with pytest.raises(NNError) as error:
        nndsl.load(tmp_path / "m.nn")
    assert message in str(error.value)


def test_int8_gru_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", k=np.zeros((4, 15), np.int8), u=np.zeros((5, 15), np.int8))
    (tmp_path / "m.nn").write_text('network g\nweights "w.npz"\ninput x : i8[6, 4] @ scale(0.1) zero(0)\n'
                                   "output y = gru(x, k, u) : i8 @ scale(0.01) zero(0)\n")
    with pytest.raises(NNError, match=r"m.nn:4:12: error: gru has no int8 kernel"):
        nndsl.load(tmp_path / "m.nn")


def test_gru_reads_time_by_features(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", k=np.zeros((4, 15), np.float32), u=np.zeros((5, 15), np.float32))
    (tmp_path / "m.nn").write_text('network g\nweights "w.npz"\ninput x : f32[4]\noutput y = gru(x, k, u)\n')
    with pytest.raises(NNError, match=r"4:16: error: gru reads \[time, features\], but 'x' is \[4\]"):
        nndsl.load(tmp_path / "m.nn")


# --------------------------------------------------------------------------
# The stateful form
# --------------------------------------------------------------------------


def test_stateful_chunks_equal_one_call_on_the_whole_sequence(tmp_path: Path) -> None:
    """k calls on chunks of 3 steps equal one stateless call on the 12 steps; reset starts again."""
    (tmp_path / "whole").mkdir()
    whole = f32_model(tmp_path / "whole", steps=12)
    chunked = f32_model(tmp_path, steps=3, stateful=True)
    assert chunked.stateful
    sequence = inputs(1, steps=12)[0]
    expected = whole.run(sequence)
    parts = [chunked.run(sequence[i : i + 3]) for i in range(0, 12, 3)]
    assert np.allclose(np.concatenate(parts), expected, atol=1e-6)
    assert not np.allclose(chunked.run(sequence[:3]), expected[:3], atol=1e-3)  # continued, not fresh
    chunked.reset()
    batch = chunked.run(sequence.reshape(4, 3, FEATURES))  # a batch: its rows are consecutive calls
    assert np.allclose(batch.reshape(12, UNITS), expected, atol=1e-6)
    chunked.reset()
    assert np.allclose(chunked.run(sequence[:3]), expected[:3], atol=1e-6)
    assert chunked.summary().state_bytes == 4 * UNITS


def test_stateful_c_keeps_its_state_and_resets(tmp_path: Path, compiler: str) -> None:
    """The C of a stateful network: consecutive calls continue the sequence (equal to the NumPy backend's
    stateful calls and to one call on the whole sequence), <name>_reset() starts it again."""
    (tmp_path / "whole").mkdir()
    whole = f32_model(tmp_path / "whole", steps=12)
    model = f32_model(tmp_path, steps=3, stateful=True)
    sequence = inputs(1, steps=12)[0]
    chunks = sequence.reshape(4, 3, FEATURES)
    printed = run_stateful_c(model, chunks, tmp_path / "c", compiler).reshape(2, 12, UNITS)
    name = c_name(model)
    header = (tmp_path / "c" / f"{name}.h").read_text()
    assert f"void {name}_reset(void);" in header and f"#define {name.upper()}_STATE_BYTES {4 * UNITS}" in header
    assert "not re-entrant" in header
    expected = model.run(chunks).reshape(12, UNITS)
    assert np.allclose(printed[0], expected, atol=1e-6) and np.allclose(printed[1], expected, atol=1e-6)
    assert np.allclose(printed[0], whole.run(sequence), atol=1e-6)


def test_stateless_header_has_no_state(tmp_path: Path) -> None:
    _, header = f32_model(tmp_path).c_sources()
    assert "_reset" not in header and "STATE_BYTES" not in header


def test_state_counts_in_the_ram_budget(tmp_path: Path) -> None:
    """20 bytes of state: a RAM budget the arena alone fits, but not with the state, is exceeded."""
    np.savez(tmp_path / "w.npz", **weights(True))
    arena = f32_model(tmp_path, steps=3).summary().arena_bytes
    (tmp_path / "m.nn").write_text(
        f'network g\ntarget cortex_m0 {{ ram = {arena + 10} B }}\nweights "w.npz"\ninput x : f32[3, 4]\n'
        "output y = gru(x, k, u, b, stateful=true)\n")
    model = nndsl.load(tmp_path / "m.nn", budget=False)
    summary = model.summary()
    assert summary.state_bytes == 4 * UNITS and summary.ram_bytes == arena + 4 * UNITS
    assert [e.message for e in model.budget_errors] == [
        f"model needs {arena + 20} bytes of RAM ({arena} for its arena and 20 of recurrent state), target "
        f"'cortex_m0' has {arena + 10}"]


# --------------------------------------------------------------------------
# the f32 reference itself
# --------------------------------------------------------------------------


def test_f32_reference_continues_from_its_state() -> None:
    w = weights(True)
    gw = GruWeights(w["k"], w["u"], w["b"][0], w["b"][1])
    x = inputs(2, steps=8)
    whole, last = gru_f32(x, np.zeros((2, UNITS), np.float32), gw, True)
    first, middle = gru_f32(x[:, :5], np.zeros((2, UNITS), np.float32), gw, True)
    rest, end = gru_f32(x[:, 5:], middle, gw, True)
    assert np.array_equal(np.concatenate([first, rest], axis=1), whole) and np.array_equal(end, last)
    assert error_bound(1, 15) < error_bound(2, 15)


# --------------------------------------------------------------------------
# Fixed point
# --------------------------------------------------------------------------

# storage, input format, output format, kernel fraction bits, bias fraction bits
FIXED = {"q15": (np.int16, "q3.12", "q15", 13, 18), "q7": (np.int8, "q2.5", "q7", 6, 10)}


def fixed_model(tmp_path: Path, kind: str, reset_after: bool = True, sequences: bool = True,
                stateful: bool = False, steps: int = STEPS, seed: int = 0) -> tuple[nndsl.Model, GruWeights]:
    """A fixed-point GRU of random weights, and the same weights as real values (the float GRU's)."""
    storage, in_fmt, out_fmt, kernel_frac, bias_frac = FIXED[kind]
    rng = np.random.default_rng(seed)
    info = np.iinfo(storage)

    def draw(shape: tuple[int, ...], frac: int, dtype: type[np.integer]) -> np.ndarray:
        limit = np.iinfo(dtype)
        return np.clip(np.round(rng.normal(size=shape) * 0.5 * 2**frac), limit.min, limit.max).astype(dtype)

    k = draw((FEATURES, 3 * UNITS), kernel_frac, storage)
    u = draw((UNITS, 3 * UNITS), kernel_frac, storage)
    b = draw((2, 3 * UNITS) if reset_after else (3 * UNITS,), bias_frac, np.int32)
    np.savez(tmp_path / "w.npz", k=k, u=u, b=b, **{"k.frac_bits": np.array(kernel_frac),
                                                    "u.frac_bits": np.array(kernel_frac),
                                                    "b.frac_bits": np.array(bias_frac)})
    (tmp_path / "m.nn").write_text(
        f'network gq\nweights "w.npz"\ninput x : {in_fmt}[{steps}, {FEATURES}]\n'
        f"output y = gru(x, k, u, b, return_sequences={flag(sequences)}, reset_after={flag(reset_after)}, "
        f"stateful={flag(stateful)}) : {out_fmt}\n")
    assert info.bits in (8, 16)
    rows = b.reshape(-1, 3 * UNITS) / 2.0**bias_frac
    real = GruWeights(k / 2.0**kernel_frac, u / 2.0**kernel_frac, rows[0],
                      rows[1] if len(rows) > 1 else np.zeros(3 * UNITS))
    return nndsl.load(tmp_path / "m.nn"), real


def fixed_inputs(model: nndsl.Model, count: int, seed: int = 2) -> np.ndarray:
    low, high = model.graph.input.type.bounds
    values = np.random.default_rng(seed).integers(low, high + 1, size=(count, *model.graph.input.type.shape))
    if count > 1:  # the edges first
        values[0], values[1] = low, high
    return values.astype(model.graph.input.type.dtype.numpy)


@pytest.mark.parametrize("kind", sorted(FIXED))
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("sequences", [True, False])
def test_fixed_gru_c_equals_numpy_and_stays_near_the_float_gru(kind: str, reset_after: bool, sequences: bool,
                                                               tmp_path: Path) -> None:
    """C == NumPy exactly (ASan/UBSan); the error against the float GRU on the same (quantised) weights and
    inputs is within the documented bound, and the output stays within (-1, 1)."""
    model, real = fixed_model(tmp_path, kind, reset_after, sequences)
    x = fixed_inputs(model, 40)
    ours = model.run(x)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), ours)
    in_frac = model.graph.input.type.fixed.frac_bits  # type: ignore[union-attr]
    out_frac = model.graph.output.type.fixed.frac_bits  # type: ignore[union-attr]
    sequence, last = gru_f32((x / 2.0**in_frac).astype(np.float32), np.zeros((len(x), UNITS), np.float32), real,
                             reset_after)
    error = np.abs(ours / 2.0**out_frac - (sequence if sequences else last)).max()
    assert error <= error_bound(STEPS, out_frac)
    assert np.abs(ours.astype(np.int64)).max() <= 2**out_frac


def test_fixed_stateful_chunks_equal_the_whole_sequence(tmp_path: Path) -> None:
    (tmp_path / "whole").mkdir()
    whole, _ = fixed_model(tmp_path / "whole", "q15", steps=12)
    chunked, _ = fixed_model(tmp_path, "q15", steps=3, stateful=True)
    sequence = fixed_inputs(whole, 1)[0]
    expected = whole.run(sequence)
    assert np.array_equal(chunked.run(sequence.reshape(4, 3, FEATURES)).reshape(12, UNITS), expected)
    chunked.reset()
    assert np.array_equal(chunked.run(sequence[:3]), expected[:3])
    assert chunked.summary().state_bytes == 2 * UNITS
    assert np.array_equal(run_in_c(chunked, sequence.reshape(4, 3, FEATURES), work_dir=tmp_path / "c",
                                   sanitize=True).reshape(12, UNITS), expected)


def test_fixed_gru_bias_with_too_many_fraction_bits_is_located(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", k=np.zeros((4, 15), np.int8), u=np.zeros((5, 15), np.int8),
             b=np.zeros(15, np.int32), **{"k.frac_bits": np.array(6), "u.frac_bits": np.array(6),
                                          "b.frac_bits": np.array(12)})
    (tmp_path / "m.nn").write_text('network g\nweights "w.npz"\ninput x : q2.5[6, 4]\n'
                                   "output y = gru(x, k, u, b, reset_after=false)\n")
    with pytest.raises(NNError, match=r"m.nn:4:12: error: fixed-point gru of 'y': the bias has 12 fraction bits, "
                       r"more than the input sum's 11"):
        nndsl.load(tmp_path / "m.nn")


def test_fixed_gru_output_must_be_a_unit_format(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", k=np.zeros((4, 15), np.int8), u=np.zeros((5, 15), np.int8),
             **{"k.frac_bits": np.array(6), "u.frac_bits": np.array(6)})
    (tmp_path / "m.nn").write_text('network g\nweights "w.npz"\ninput x : q2.5[6, 4]\n'
                                   "output y = gru(x, k, u) : q2.5\n")
    with pytest.raises(NNError, match=r"4:27: error: a fixed-point gru's output is its state, within \(-1, 1\)"):
        nndsl.load(tmp_path / "m.nn")


@pytest.mark.parametrize("weight_bits", [8, 16])
def test_to_fixed_converts_a_float_gru(weight_bits: int, tmp_path: Path) -> None:
    """nndsl to-fixed on a float network with a GRU then a dense layer: the fixed-point network's outputs stay
    near the float ones, and its C equals its NumPy backend."""
    from nndsl.fixed import FixedOptions, convert

    w = weights(True)
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "w.npz", **w, d=(rng.normal(size=(UNITS, 3)) * 0.5).astype(np.float32))
    (tmp_path / "m.nn").write_text(
        f'network g\nweights "w.npz"\ninput x : f32[{STEPS}, {FEATURES}]\n'
        "h = gru(x, k, u, b, return_sequences=true)\noutput y = dense(h, d)\n")
    x = inputs(300) * 0.8
    conversion = convert(tmp_path / "m.nn", x[:200], tmp_path / "g_q.nn", FixedOptions(weight_bits=weight_bits))
    conversion.write(tmp_path / "g_q.nn")
    fixed = nndsl.load(tmp_path / "g_q.nn")
    assert fixed.graph.ops[0].output.type.fixed is not None
    real = fixed.run(x[200:], quantize=True, real=True)
    error = np.abs(real - nndsl.load(tmp_path / "m.nn").run(x[200:])).max()
    assert error < (0.05 if weight_bits == 8 else 0.01)
    q = fixed.quantize(x[200:210])
    assert np.array_equal(run_in_c(fixed, q, work_dir=tmp_path / "c", sanitize=True), fixed.run(q))


# --------------------------------------------------------------------------
# The Keras importer
# --------------------------------------------------------------------------


def _keras_gru_model(keras: object, **options: object) -> object:
    layers = keras.layers  # type: ignore[attr-defined]
    x = keras.Input((STEPS, FEATURES))  # type: ignore[attr-defined]
    h = layers.GRU(UNITS, return_sequences=True, **options)(x)
    h = layers.GRU(3, reset_after=False)(h)
    y = layers.Dense(2, activation="softmax")(layers.Dropout(0.2)(h))
    model = keras.Model(x, y)  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    model.set_weights([(rng.normal(size=w.shape) * 0.5).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.tensorflow
def test_keras_gru_model_imports_and_runs_like_keras(tmp_path: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    model = _keras_gru_model(keras)
    path = tmp_path / "g.keras"
    model.save(path)  # type: ignore[attr-defined]
    imported = nndsl.import_model(path)
    assert "gru(" in "\n".join(imported.lines) and "reset_after=false" in "\n".join(imported.lines)
    x = inputs(10)
    ours = imported.model().run(x)
    assert np.allclose(ours, model.predict(x, verbose=0), atol=2e-6)  # type: ignore[attr-defined]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("options", "message"), [
    ({"go_backwards": True}, "layer 'gru' (GRU): go_backwards=True is not supported"),
    ({"activation": "relu"}, "layer 'gru' (GRU): activation='relu' and recurrent_activation='sigmoid' are not "
                             "supported (tanh and sigmoid)"),
])
def test_keras_gru_unsupported_options_are_named(options: dict[str, object], message: str, tmp_path: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    model = _keras_gru_model(keras, name="gru", **options)
    with pytest.raises(NNError, match=re.escape(message)):
        nndsl.import_model(model)
    calibrated = _keras_gru_model(keras)
    with pytest.raises(NNError, match="a model with a GRU imports in float only"):
        nndsl.import_model(calibrated, calibrate=inputs(4))


@pytest.mark.parametrize("compiler_name", ["gcc", "clang", "g++"])
def test_gru_c_compiles_under_the_strict_warnings(compiler_name: str, tmp_path: Path) -> None:
    """Stateful f32 and fixed-point GRUs (both reset forms) under tests/test_strict_c.py's flags."""
    import shutil

    from tests.test_strict_c import COMPILERS, STRICT

    if shutil.which(compiler_name) is None:
        pytest.skip(f"{compiler_name} not installed")
    flags = (compiler_name, *STRICT, "-O2") if compiler_name == "gcc" else COMPILERS[compiler_name]
    for index, (kind, reset_after) in enumerate([("f32", True), ("q7", False), ("q15", True)]):
        folder = tmp_path / str(index)
        folder.mkdir()
        model = (f32_model(folder, reset_after, stateful=True) if kind == "f32"
                 else fixed_model(folder, kind, reset_after, stateful=True)[0])
        model.build(folder / "c", depfile=False)
        source = folder / "c" / f"{c_name(model)}.c"
        run = subprocess.run([*flags, "-c", str(source), "-o", str(folder / "m.o")], capture_output=True, text=True)
        assert run.returncode == 0 and not run.stderr, run.stderr


def test_validate_runs_a_stateful_network_as_one_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """nndsl validate: the C program's calls carry the state from input to input; so do the NumPy backend's
    (from a zero state, whatever the command ran before), and the two agree exactly."""
    from nndsl.cli import main

    model, _ = fixed_model(tmp_path, "q15", stateful=True)
    np.save(tmp_path / "x.npy", fixed_inputs(model, 12))
    assert main(["validate", str(tmp_path / "m.nn"), "--input", str(tmp_path / "x.npy")]) == 0, \
        capsys.readouterr().out
