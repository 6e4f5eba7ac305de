"""Recurrent layers against TFLM: Keras ``LSTM(unroll=True)`` as the converter writes it.

Unrolled, the converter turns an LSTM into per-step FULLY_CONNECTED, SPLIT,
LOGISTIC, TANH, MUL and ADD over the UNPACKed time steps of a time-major
``[T, 1, F]`` reshape (PACKed back with ``return_sequences``); nndsl imports
each of those ops, so the whole network must equal TFLM byte for byte
(NumPy backend) and C must equal NumPy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_binary_ops_vs_tflm import Case, check_float, check_integer, keras_case

pytestmark = pytest.mark.tensorflow


def unrolled(units: int, steps: int, features: int, *, sequences: bool) -> Case:
    name = f"lstm-unrolled-{units}u-{steps}x{features}{'-seq' if sequences else ''}"
    return keras_case(name, "UNPACK", (steps, features), lambda layers, x: layers.LSTM(
        units, unroll=True, return_sequences=sequences)(x), int16=False)


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
