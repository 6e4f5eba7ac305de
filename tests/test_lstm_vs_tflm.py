"""Recurrent layers against TFLM: Keras ``LSTM(unroll=True)`` as the converter writes it, and the fused
UNIDIRECTIONAL_SEQUENCE_LSTM's integer arithmetic (``nndsl.qmath.lstm``).

Unrolled, the converter turns an LSTM into per-step FULLY_CONNECTED, SPLIT,
LOGISTIC, TANH, MUL and ADD over the UNPACKed time steps of a time-major
``[T, 1, F]`` reshape (PACKed back with ``return_sequences``); nndsl imports
each of those ops, so the whole network must equal TFLM byte for byte
(NumPy backend) and C must equal NumPy.

The fused op: ``tests/lstm_models.py`` writes its int8 flatbuffer (8x8->16,
int16 cell state); ``qmath.lstm.lstm_s8`` must equal TFLM's output byte for
byte on random int8 sequences, every sequence from the reset state. The float
kernel ``qmath.lstm.lstm_f32`` is checked against Keras's ``LSTM``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.importers.tflite import import_tflite
from nndsl.qmath.lstm import lstm_f32, lstm_s8, lstm_s8_params
from tests.c_harness import run_in_c
from tests.lstm_models import LstmSpec, float_flatbuffer, quantize, run_tflm_sequences
from tests.test_binary_ops_vs_tflm import Case, check_float, check_integer, keras_case
from tests.test_ops_vs_tflm import unrolled_lstm

pytestmark = pytest.mark.tensorflow


def unrolled(units: int, steps: int, features: int, *, sequences: bool) -> Case:
    name = f"lstm-unrolled-{units}u-{steps}x{features}{'-seq' if sequences else ''}"
    return keras_case(name, "UNPACK", (steps, features), lambda layers, x: unrolled_lstm(
        layers, units, return_sequences=sequences)(x), int16=False)


UNROLLED = [unrolled(4, 5, 3, sequences=False), unrolled(3, 4, 2, sequences=True)]


@pytest.fixture(scope="module")
def tf() -> Any:
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from nndsl.importers.tf import tensorflow

    return tensorflow()


@pytest.mark.parametrize("case", UNROLLED, ids=lambda case: case.name)
def test_unrolled_lstm_int8_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.parametrize("case", UNROLLED[:1], ids=lambda case: case.name)
def test_unrolled_lstm_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


# (steps, features, units, seed, cell_clip, weight_gain): clipped cells, saturating gates, one unit, long runs.
FUSED_QUICK = [LstmSpec(5, 3, 4, 1), LstmSpec(7, 6, 8, 2, cell_clip=0.5), LstmSpec(4, 2, 3, 3, weight_gain=3.0),
               LstmSpec(6, 4, 1, 4)]
FUSED_FULL = [LstmSpec(steps, features, units, seed, clip, gain)
              for seed, (steps, features, units) in enumerate([(1, 1, 1), (3, 5, 2), (10, 8, 16), (16, 3, 5)], 10)
              for clip in (0.0, 0.25, 3.0) for gain in (0.5, 1.0, 4.0)]


def check_fused(spec: LstmSpec) -> None:
    q = quantize(spec)
    inputs = np.random.default_rng(spec.seed + 2).integers(-128, 128, (24, spec.steps, spec.features)).astype(np.int8)
    params = lstm_s8_params(spec.units, q.input_quant, q.output_quant, q.kernel_scales, q.recurrent_scales,
                            q.cell_scale, spec.cell_clip)
    ours, state = lstm_s8(inputs, q.kernel, q.recurrent, q.bias, params)
    reference = run_tflm_sequences(q.flatbuffer, inputs)
    assert ours.dtype == reference.dtype == np.int8 and ours.shape == reference.shape
    assert np.count_nonzero(ours != reference) == 0, f"{spec}: {np.count_nonzero(ours != reference)} differ"
    assert np.array_equal(state.hidden, ours[:, -1])


@pytest.mark.parametrize("spec", FUSED_QUICK, ids=repr)
def test_fused_lstm_int8_equals_tflm(tf: Any, spec: LstmSpec) -> None:
    check_fused(spec)


@pytest.mark.slow
@pytest.mark.parametrize("spec", FUSED_FULL, ids=repr)
def test_fused_lstm_int8_equals_tflm_full_grid(tf: Any, spec: LstmSpec) -> None:
    check_fused(spec)


def test_cell_clip_changes_the_result(tf: Any) -> None:
    """The clipped case of the grid clips: without the clip the same integers differ from TFLM's."""
    spec = FUSED_QUICK[1]
    q = quantize(spec)
    inputs = np.random.default_rng(spec.seed + 2).integers(-128, 128, (24, spec.steps, spec.features)).astype(np.int8)
    params = lstm_s8_params(spec.units, q.input_quant, q.output_quant, q.kernel_scales, q.recurrent_scales,
                            q.cell_scale)
    ours, _ = lstm_s8(inputs, q.kernel, q.recurrent, q.bias, params)
    assert np.count_nonzero(ours != run_tflm_sequences(q.flatbuffer, inputs)) > 0


def test_float_lstm_close_to_keras(tf: Any) -> None:
    spec = LstmSpec(6, 3, 5, 7)
    keras = tf.keras
    inputs = keras.Input((spec.steps, spec.features))
    model = keras.Model(inputs, keras.layers.LSTM(spec.units, return_sequences=True)(inputs))
    model.layers[-1].set_weights([spec.kernel, spec.recurrent, spec.bias])
    data = spec.calibration(16)
    expected = np.asarray(model.predict(data, verbose=0))
    ours, _ = lstm_f32(data, spec.kernel, spec.recurrent, spec.bias)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def lstm_network(spec: LstmSpec, directory: Path, *, sequences: bool) -> tuple[nndsl.Model, bytes]:
    """The quantised spec as a `.nn` network of one ``lstm`` layer, and its TFLM flatbuffer."""
    q = quantize(spec)
    np.savez(directory / "w.npz", **{"l.kernel": q.kernel, "l.kernel.scale": q.kernel_scales,
                                    "l.recurrent": q.recurrent, "l.recurrent.scale": q.recurrent_scales,
                                    "l.bias": q.bias})
    (s_in, z_in), (s_out, z_out) = q.input_quant, q.output_quant
    clip = f", cell_clip={spec.cell_clip!r}" if spec.cell_clip else ""
    (directory / "m.nn").write_text(
        f'network m\nweights "w.npz"\ninput x : i8[{spec.steps}, {spec.features}] @ scale({s_in!r}) zero({z_in})\n'
        f"y = lstm(x, l.kernel, l.recurrent, l.bias, cell_scale={q.cell_scale!r}{clip}, "
        f"return_sequences={'true' if sequences else 'false'}) : i8 @ scale({s_out!r}) zero({z_out})\noutput y\n")
    return nndsl.load(directory / "m.nn"), q.flatbuffer


@pytest.mark.parametrize("spec", FUSED_QUICK[:3], ids=repr)
def test_lstm_layer_numpy_and_c_equal_tflm(tf: Any, spec: LstmSpec, tmp_path: Path) -> None:
    """The `.nn` lstm: the NumPy backend equals TFLM byte for byte, C (ASan/UBSan) equals NumPy."""
    sequences = spec.seed % 2 == 1
    model, flatbuffer = lstm_network(spec, tmp_path, sequences=sequences)
    inputs = np.random.default_rng(spec.seed + 3).integers(-128, 128, (16, spec.steps, spec.features)).astype(np.int8)
    ours = model.run(inputs)
    reference = run_tflm_sequences(flatbuffer, inputs)
    reference = reference if sequences else reference[:, -1]
    assert np.array_equal(ours, reference) and ours.dtype == np.int8
    assert np.array_equal(run_in_c(model, inputs, work_dir=tmp_path / "c", sanitize=True), ours)


def imported_lstm(flatbuffer: bytes, directory: Path) -> tuple[nndsl.Model, str]:
    path, _ = import_tflite(flatbuffer, "lstm.tflite", name="op").write(directory / "op.nn")
    return nndsl.load(path), path.read_text()


@pytest.mark.parametrize("spec", FUSED_QUICK[:3], ids=repr)
def test_imported_int8_lstm_equals_tflm(tf: Any, spec: LstmSpec, tmp_path: Path) -> None:
    """UNIDIRECTIONAL_SEQUENCE_LSTM imported: NumPy backend == TFLM byte for byte, C == NumPy."""
    flatbuffer = quantize(spec).flatbuffer
    model, text = imported_lstm(flatbuffer, tmp_path)
    assert "= lstm(" in text
    inputs = np.random.default_rng(spec.seed + 4).integers(-128, 128, (16, spec.steps, spec.features)).astype(np.int8)
    ours = model.run(inputs)
    assert np.array_equal(ours, run_tflm_sequences(flatbuffer, inputs)), text
    assert np.array_equal(run_in_c(model, inputs, work_dir=tmp_path / "c"), ours)


@pytest.mark.parametrize("time_major", [False, True])
def test_imported_float_lstm_close_to_tflm(tf: Any, time_major: bool, tmp_path: Path) -> None:
    spec = LstmSpec(6, 3, 5, 8, cell_clip=0.75)
    flatbuffer = float_flatbuffer(spec, time_major=time_major)
    model, _ = imported_lstm(flatbuffer, tmp_path)
    inputs = spec.calibration(16)
    fed = inputs[:, :, np.newaxis] if time_major else inputs  # a time-major model's input is [T, 1, F]
    ours = model.run(fed)
    expected = run_tflm_sequences(flatbuffer, inputs, time_major=time_major)
    np.testing.assert_allclose(ours.reshape(expected.shape), expected, atol=1e-5)
    np.testing.assert_allclose(run_in_c(model, fed, work_dir=tmp_path / "c"), ours, atol=1e-5)


def test_unsupported_lstm_variants_are_located_errors(tf: Any, tmp_path: Path) -> None:
    """A peephole LSTM (cell-to-gate weights) is refused naming the layer and the op, not a traceback."""
    from tests.tflite_models import edit_model

    def add_peephole(parsed: Any) -> None:
        op = parsed.subgraphs[0].operators[0]
        op.inputs[9] = op.inputs[12]  # any tensor in the peephole slot

    flatbuffer = edit_model(quantize(LstmSpec(3, 2, 2, 9)).flatbuffer, add_peephole)
    with pytest.raises(nndsl.NNError) as caught:
        import_tflite(flatbuffer, "peep.tflite", name="op")
    message = str(caught.value)
    assert "peep.tflite" in message and "UNIDIRECTIONAL_SEQUENCE_LSTM" in message and "peephole" in message
