"""Malformed lstm layers: located errors (``path:line:col``), in words; a valid one type-checks and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nndsl

HEADER = ['network t', 'weights "w.npz"']


def _weights(features: int, units: int, *, scale: float = 0.01) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(features * 10 + units)
    return {"k": rng.integers(-127, 128, (features, 4 * units), dtype=np.int8),
            "k.scale": np.full(4 * units, scale, np.float32),
            "r": rng.integers(-127, 128, (units, 4 * units), dtype=np.int8),
            "r.scale": np.full(1, scale, np.float32),
            "b": rng.integers(-100, 100, 4 * units, dtype=np.int32)}


def _load(tmp_path: Path, lines: list[str], arrays: dict[str, np.ndarray]) -> nndsl.Model:
    np.savez(tmp_path / "w.npz", **arrays)  # type: ignore[arg-type]
    path = tmp_path / "t.nn"
    path.write_text("\n".join([*HEADER, *lines]) + "\n")
    return nndsl.load(path)


CASES = [
    ("no cell scale", "input x : i8[5, 3] @ scale(0.02) zero(-1)",
     "y = lstm(x, k, r, b) : i8 @ scale(0.008) zero(0)", "lstm(", ("needs its cell state's scale", "power of two")),
    ("cell scale not a power of two", "input x : i8[5, 3] @ scale(0.02) zero(-1)",
     "y = lstm(x, k, r, b, cell_scale=0.001) : i8 @ scale(0.008) zero(0)", "cell_scale", ("not a power of two",)),
    ("not a sequence", "input x : i8[15] @ scale(0.02) zero(-1)",
     "y = lstm(x, k, r, b, cell_scale=0.00048828125) : i8 @ scale(0.008) zero(0)", "lstm(",
     ("[steps, features]", "[15]")),
    ("kernel of the wrong features", "input x : i8[5, 4] @ scale(0.02) zero(-1)",
     "y = lstm(x, k, r, b, cell_scale=0.00048828125) : i8 @ scale(0.008) zero(0)", "k,",
     ("[features, 4 * units]", "features 4")),
    ("negative clip", "input x : i8[5, 3] @ scale(0.02) zero(-1)",
     "y = lstm(x, k, r, b, cell_scale=0.00048828125, cell_clip=-1) : i8 @ scale(0.008) zero(0)", "cell_clip",
     ("cell_clip must be >= 0",)),
]


@pytest.mark.parametrize(("what", "input_line", "layer", "anchor", "words"), CASES, ids=[c[0] for c in CASES])
def test_lstm_errors_are_located(what: str, input_line: str, layer: str, anchor: str, words: tuple[str, ...],
                                 tmp_path: Path) -> None:
    with pytest.raises(nndsl.NNError) as caught:
        _load(tmp_path, [input_line, layer, "output y"], _weights(3, 2))
    message = str(caught.value).splitlines()[0]
    assert message.startswith(f"{tmp_path / 't.nn'}:4:{layer.index(anchor) + 1}: error: "), message
    for word in words:
        assert word in message, message


def test_int16_lstm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(nndsl.NNError, match=r"lstm is int8 \(TFLM.s 8x8->16 kernel\) or f32"):
        _load(tmp_path, ["input x : i16[5, 3] @ scale(0.001) zero(0)",
                         "y = lstm(x, k, r, b, cell_scale=0.00048828125) : i16 @ scale(0.001) zero(0)", "output y"],
              _weights(3, 2) | {"b": np.zeros(8, np.int64)})


def test_valid_int8_lstm_runs(tmp_path: Path) -> None:
    model = _load(tmp_path, ["input x : i8[5, 3] @ scale(0.02) zero(-1)",
                             "y = lstm(x, k, r, b, cell_scale=0.00048828125) : i8 @ scale(0.008) zero(0)",
                             "output y"], _weights(3, 2))
    out = model.run(np.random.default_rng(0).integers(-128, 128, (4, 5, 3)).astype(np.int8))
    assert out.shape == (4, 2) and out.dtype == np.int8
