"""A requantisation multiplier below 2^-31: TFLM's zero multiplier, bit-exact, with a warning naming the channels.

TensorFlow Lite Micro's ``QuantizeMultiplier`` flushes such a multiplier to
``(0, 0)``, so the channel's outputs are the output zero point (clamped by the
fused activation). The models here are converted int8 models whose scales are
then edited so that some channels' multipliers fall below 2^-31, as in a
person detector whose dead channels have tiny weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.diagnostics import Severity, WarningFlag
from nndsl.importers.tflite import import_tflite
from nndsl.qmath.requant import quantize_multiplier
from tests.c_harness import run_in_c
from tests.tflite_models import convert_keras, edit_model, run_tflm_each

TINY = 1e-9  # a kernel scale times this gives a multiplier far below 2^-31


def test_quantize_multiplier_flushes_below_two_to_minus_31() -> None:
    assert quantize_multiplier(2.0**-31) == (1 << 30, -30)
    assert quantize_multiplier(2.0**-32) == (1 << 30, -31)  # frexp's shift -31 is still kept
    assert quantize_multiplier(2.0**-33) == (0, 0)
    assert quantize_multiplier(1e-12) == (0, 0)


def shrink_channel_scales(model: bytes, op_name: str, channels: tuple[int, ...]) -> bytes:
    """The model with the filter scales of ``channels`` of its one ``op_name`` multiplied by :data:`TINY`."""
    from tensorflow.lite.tools import flatbuffer_utils

    def edit(parsed: Any) -> None:
        graph = parsed.subgraphs[0]
        (op,) = [o for o in graph.operators if flatbuffer_utils.opcode_to_name(parsed, o.opcodeIndex) == op_name]
        for index in [i for i in op.inputs[1:] if i >= 0]:  # the filter and the bias (input x filter scale)
            quantization = graph.tensors[index].quantization
            scales = np.array(quantization.scale, dtype=np.float32)
            for channel in channels:
                scales[channel if scales.size > 1 else 0] *= np.float32(TINY)
            quantization.scale = scales

    return edit_model(model, edit)


def keras_models(tf: Any) -> dict[str, tuple[Any, tuple[int, ...], str]]:
    """Name -> (model, input shape, the op whose channels shrink)."""
    keras = tf.keras
    tf.keras.utils.set_random_seed(12)
    conv_input = keras.Input((6, 5, 2))
    conv = keras.Model(conv_input, keras.layers.Conv2D(5, 3, padding="same", activation="relu")(conv_input))
    dense_input = keras.Input((7,))
    dense = keras.Model(dense_input, keras.layers.Dense(3)(dense_input))
    return {"conv": (conv, (6, 5, 2), "CONV_2D"), "dense": (dense, (7,), "FULLY_CONNECTED")}


@pytest.mark.tensorflow
@pytest.mark.parametrize(("name", "channels"), [("conv", (1, 3)), ("dense", (0, 2))])
def test_zero_multiplier_runs_like_tflm(tflite: Any, name: str, channels: tuple[int, ...], tmp_path: Path) -> None:
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    keras_model, shape, op_name = keras_models(tflite)[name]
    flatbuffer = convert_keras(tflite, keras_model, [shape], [(-1.0, 1.0)], seed=5)
    flatbuffer = shrink_channel_scales(flatbuffer, op_name, channels)
    nn_path, _ = import_tflite(flatbuffer, f"{name}.tflite").write(tmp_path / f"{name}.nn")
    model = nndsl.load(nn_path)

    (warning,) = [d for d in model.warnings if "2^-31" in d.message]
    assert warning.severity is Severity.WARNING and warning.flag is WarningFlag.ZERO_MULTIPLIER
    assert warning.format().endswith("[-Wzero-multiplier]")
    assert warning.loc is not None and warning.loc.line > 0  # at the layer in the .nn text
    if name == "conv":
        assert "(channels 1, 3: 2 of 5)" in warning.message
    assert "becomes zero" in warning.message

    rng = np.random.default_rng(3)
    inputs = rng.integers(-128, 128, size=(40, *shape), dtype=np.int8)
    ours = model.run(inputs)
    reference = run_tflm_each(flatbuffer, inputs).reshape(ours.shape)
    assert np.array_equal(ours, reference), f"{np.count_nonzero(ours != reference)} values differ from TFLM"
    assert np.array_equal(run_in_c(model, inputs, work_dir=tmp_path / "c"), ours)
    # The flushed channels hold one value: the output zero point, clamped (relu's lower bound is the zero point).
    for channel in channels:
        assert np.unique(ours[..., channel]).size == 1


def test_zero_multiplier_is_a_warning_in_nn_text(tmp_path: Path) -> None:
    """A hand-written int8 dense layer whose output scale dwarfs its inputs': a warning, and zero-point outputs."""
    np.savez(tmp_path / "w.npz", **{"fc.kernel": np.array([[1, -2], [3, 4]], dtype=np.int8),
                                    "fc.kernel.scale": np.array([1e-3, 1e-3], dtype=np.float32)})
    source = ("network tiny\nweights \"w.npz\"\ninput x : i8[2] @ scale(0.01) zero(0)\n"
              "output y = dense(x, fc.kernel) : i8 @ scale(1e6) zero(-7)\n")
    (tmp_path / "tiny.nn").write_text(source)
    model = nndsl.load(tmp_path / "tiny.nn")
    (warning,) = model.warnings
    assert warning.format().startswith(f"{tmp_path / 'tiny.nn'}:4:12: warning: requantisation multiplier 1e-11")
    assert "(channels 0, 1: 2 of 2)" in warning.message
    x = np.array([[127, -128], [5, 9]], dtype=np.int8)
    assert np.array_equal(model.run(x), np.full((2, 2), -7, dtype=np.int8))
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c"), model.run(x))
