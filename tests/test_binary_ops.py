"""Binary ops written in `.nn` text: constants from the weights file and numbers, broadcasting, C == NumPy.

The comparisons with TensorFlow Lite Micro are in ``test_binary_ops_vs_tflm.py``;
here the language's own forms: numbers and float constants quantised by nndsl,
stored int8/int16 constants with their scale and zero point, the constant
first (``sub(1.0, x)``), every op of every type in C equal to the NumPy backend,
and the real values they stand for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl import ir
from nndsl.parser import parse
from nndsl.printer import format_program
from nndsl.qmath.binary import quantize_constant
from nndsl.rules.binary import broadcast_shape
from tests.c_harness import run_in_c

OPS = ("add", "sub", "mul", "maximum", "minimum", "squared_difference")
REAL = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
    "squared_difference": lambda x, y: np.square(x - y),
}


def test_broadcast_shape_is_tflites_rule() -> None:
    assert broadcast_shape((4, 3, 5), (5,)) == (4, 3, 5)
    assert broadcast_shape((4, 1, 5), (3, 1)) == (4, 3, 5)
    assert broadcast_shape((1,), (6,)) == (6,)
    assert broadcast_shape((4, 3), (4,)) is None


def test_float_constants_are_quantised_exactly_at_their_ends() -> None:
    stored, scale, zero = quantize_constant([0.5], np.int8)
    assert (int(stored[0]), zero) == (127, -128) and scale == pytest.approx(0.5 / 255)
    stored, scale, zero = quantize_constant([-2.0, 1.0], np.int8)
    assert (int(stored.min()), int(stored.max())) == (-128, 127)
    stored, scale, zero = quantize_constant([-3.0], np.int16)
    assert (int(stored[0]), zero) == (-32767, 0)
    assert quantize_constant([0.0, 0.0], np.int8)[1:] == (1.0, 0)


def write(tmp_path: Path, layers: list[str], input_decl: str, weights: dict[str, np.ndarray]) -> nndsl.Model:
    np.savez(tmp_path / "w.npz", **weights)  # type: ignore[arg-type]
    text = "\n".join(["network b", 'weights "w.npz"', input_decl, *layers]) + "\n"
    (tmp_path / "b.nn").write_text(text)
    return nndsl.load(tmp_path / "b.nn")


@pytest.mark.parametrize("op", OPS)
def test_int8_ops_with_numbers_and_constants(op: str, tmp_path: Path) -> None:
    """Each op with a stored int8 constant [5] broadcast over [4, 3, 5], then with a number (constant first)."""
    rng = np.random.default_rng(len(op))
    quant = "" if op in ("maximum", "minimum") else " : i8 @ scale(0.03) zero(3)"
    second = "" if op in ("maximum", "minimum") else " : i8 @ scale(0.04) zero(-2)"
    constant = rng.integers(-128, 128, 5, dtype=np.int8)
    # The input's quantisation (maximum and minimum need it; the others take any).
    weights = {"c": constant, "c.scale": np.float32([0.02]), "c.zero_point": np.int32([-1])}
    layers = [f"y = {op}(x, c){quant}", f"output z = {op}(0.75, y){second}"]
    model = write(tmp_path, layers, "input x : i8[4, 3, 5] @ scale(0.02) zero(-1)", weights)
    binaries = [o for o in model.graph.ops if isinstance(o, ir.Binary)]
    assert [o.operator.value for o in binaries] == [op, op]
    assert binaries[1].operands[0].data is not None  # the number is the first operand
    x = rng.integers(-128, 128, size=(30, 4, 3, 5), dtype=np.int8)
    ours = model.run(x)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c"), ours)
    # The real values: within a few output steps of the float computation.
    real_x = (x.astype(np.float64) + 1) * 0.02
    real_c = (constant.astype(np.float64) + 1) * 0.02
    out_q = model.graph.output.type.quant
    y_q = model.graph.ops[0].output.type.quant
    assert out_q is not None and y_q is not None
    y = REAL[op](real_x, real_c)
    y = np.clip(y, (-128 - y_q.zero_point) * y_q.scale, (127 - y_q.zero_point) * y_q.scale)
    y = np.round(y / y_q.scale) * y_q.scale
    expected = REAL[op](0.75, y)
    low, high = ((-128 - out_q.zero_point) * out_q.scale, (127 - out_q.zero_point) * out_q.scale)
    got = (ours.astype(np.float64) - out_q.zero_point) * out_q.scale
    step = 3 * out_q.scale + (0.02 if op in ("maximum", "minimum") else 0.0)
    assert np.abs(got - np.clip(expected, low, high)).max() <= step


@pytest.mark.parametrize("op", OPS)
def test_int16_ops_broadcast_two_computed_tensors(op: str, tmp_path: Path) -> None:
    """[3, 1, 4] with [2, 1] (computed, through a reshape) to [3, 2, 4], and a float constant quantised by nndsl."""
    quant = "" if op in ("maximum", "minimum") else " : i16 @ scale(0.0005) zero(0)"
    layers = ["v = reshape(x, shape=(3, 1, 4))", "w = reshape(x, shape=(6, 2))",
              "u = global_max_pool(w)", "t = reshape(u, shape=(2, 1))",
              f"y = {op}(v, t){quant}", f"output z = {op}(y, k){quant}"]
    weights = {"k": np.linspace(-1, 1, 4).astype(np.float32)}
    model = write(tmp_path, layers, "input x : i16[12] @ scale(0.0003) zero(0)", weights)
    assert model.graph.output.type.shape == (3, 2, 4)
    x = np.random.default_rng(7).integers(-32768, 32768, size=(25, 12)).astype(np.int16)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c"), model.run(x))


@pytest.mark.parametrize("op", OPS)
def test_f32_ops_match_numpy_and_c(op: str, tmp_path: Path) -> None:
    layers = [f"y = {op}(x, c)", f"output z = {op}(-0.5, y)"]
    c = np.random.default_rng(3).normal(size=(3, 1)).astype(np.float32)
    model = write(tmp_path, layers, "input x : f32[2, 3, 4]", {"c": c})
    x = np.random.default_rng(4).normal(size=(10, 2, 3, 4)).astype(np.float32)
    expected = REAL[op](np.float32(-0.5), REAL[op](x, c).astype(np.float32)).astype(np.float32)
    assert np.array_equal(model.run(x), expected)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c"), expected)


def test_fused_activation_on_sub_and_mul(tmp_path: Path) -> None:
    layers = ["y = sub(x, 1.0) -> relu6 : i8 @ scale(0.03) zero(-128)",
              "output z = mul(y, c) -> relu : i8 @ scale(0.05) zero(-128)"]
    model = write(tmp_path, layers, "input x : i8[6] @ scale(0.05) zero(0)", {"c": np.float32([1.5])})
    x = np.arange(-128, 128, dtype=np.int8).reshape(-1, 1).repeat(6, axis=1)[::4]
    ours = model.run(x)
    assert ours.min() >= -128 and np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c"), ours)
    y = model.trace(x)["y"]
    assert ((y.astype(np.float64) + 128) * 0.03 <= 6.0 + 0.015).all()  # relu6's clamp


def test_numbers_as_operands_print_and_parse_back() -> None:
    source = "network p\ninput x : f32[4]\ny = sub(1.5, x)\noutput z = mul(y, 2) -> relu\n"
    text = format_program(parse(source, "p.nn"))
    assert "sub(1.5, x)" in text and "mul(y, 2) -> relu" in text
    assert format_program(parse(text, "p.nn")) == text
