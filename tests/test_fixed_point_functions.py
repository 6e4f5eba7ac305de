"""Fixed-point (qM.N) tanh, sigmoid and softmax: their documented error bounds, measured against the exact
real functions on every representable input, and the generated C equal to the NumPy backend.

The oracle is the real function in float64 (``math``-exact to far below an output unit), clipped to the
output format's range: an output cannot be closer to a value its format cannot hold. The bounds are
:func:`~nndsl.qmath.fixed_functions.function_error_bound` and
:func:`~nndsl.qmath.fixed_functions.softmax_error_bound` (stated in docs/language.md); a test that
measured more would fail, and one test checks that the bounds are not loose by orders of magnitude.

The C runs whole models (the emitted tables and calls), compiled with ``-Werror -pedantic`` and under
AddressSanitizer and UndefinedBehaviorSanitizer, on every input value of the formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl.qmath.fixed_functions import (
    QFunction,
    function_error_bound,
    function_q,
    function_q_params,
    softmax_error_bound,
    softmax_q,
    softmax_q_params,
)
from nndsl.types import QFormat
from tests.c_harness import run_in_c

Array = npt.NDArray[np.int64]

INPUT_FORMATS = ("q7", "q15", "q3.4", "q4.11", "q7.8", "q15.0", "q0.3", "q2.5", "q1.9", "q6.1", "q0.10")
OUTPUT_FORMATS = ("q7", "q15", "q1.14", "q2.5", "q3.4", "q0.10", "q1.6")
BETAS = (1.0, 0.5, 2.0, 0.05, 12.0)


def fmt(name: str) -> QFormat:
    parsed = QFormat.parse(name)
    assert parsed is not None
    return parsed


def every_value(f: QFormat) -> Array:
    low, high = f.bounds
    return np.arange(low, high + 1, dtype=np.int64)


def error_units(got: Array, exact: npt.NDArray[np.float64], out: QFormat) -> npt.NDArray[np.float64]:
    """``|got - exact|`` in output units, the exact value clipped to what the output format holds."""
    low, high = out.bounds
    clipped = np.clip(exact, low * out.scale, high * out.scale)
    return np.abs(got * out.scale - clipped) / out.scale


def function_errors(function: QFunction, in_name: str, out_name: str) -> tuple[Array, npt.NDArray[np.float64]]:
    i, o = fmt(in_name), fmt(out_name)
    x = every_value(i)
    y = function_q(x, function_q_params(function, i.frac_bits, i.bits, o.frac_bits, o.bounds))
    return y, error_units(y, function.real((x * i.scale).astype(np.float64)), o)


@pytest.mark.parametrize("function", list(QFunction), ids=lambda f: f.value)
@pytest.mark.parametrize("in_name", INPUT_FORMATS)
def test_function_error_is_within_its_bound_on_every_input(function: QFunction, in_name: str) -> None:
    """Every input of the format, to each output format: within the documented bound, and monotonic."""
    bound = function_error_bound(fmt(in_name).bits)
    for out_name in OUTPUT_FORMATS:
        y, errors = function_errors(function, in_name, out_name)
        assert errors.max() <= bound + 1e-9, (in_name, out_name, float(errors.max()))
        assert np.all(np.diff(y) >= 0), "not monotonic: the range analysis relies on it"


def test_function_bounds_are_tight() -> None:
    """The measured worst errors come close to the bounds (so the bounds say something)."""
    narrow = max(function_errors(QFunction.TANH, "q3.4", o)[1].max() for o in OUTPUT_FORMATS)
    wide = max(function_errors(f, i, "q15")[1].max() for f in QFunction for i in ("q4.11", "q7.8"))
    assert 0.45 < narrow <= 0.5 + 1e-9
    assert 0.6 < wide < 1.0


def test_function_hand_values() -> None:
    """tanh(0) = 0, sigmoid(0) = 1/2, the saturated ends, odd and complementary symmetry."""
    i, o = fmt("q4.11"), fmt("q15")
    tanh = function_q_params(QFunction.TANH, i.frac_bits, i.bits, o.frac_bits, o.bounds)
    sigmoid = function_q_params(QFunction.SIGMOID, i.frac_bits, i.bits, o.frac_bits, o.bounds)
    assert function_q([0, -32768, 32767], tanh).tolist() == [0, -32768, 32767]
    assert function_q([0, -32768, 32767], sigmoid).tolist() == [16384, 0, 32767]
    x = np.arange(1, 32768)
    assert np.array_equal(np.minimum(-function_q(-x, tanh), 32767), function_q(x, tanh))  # q15 holds -1, not 1
    assert np.all(np.abs(function_q(-x, sigmoid) + function_q(x, sigmoid) - 32768) <= 1)


def softmax_rows(f: QFormat, rng: np.random.Generator) -> list[Array]:
    """Every difference from a row maximum ([x, max] for each x), with a third value at the minimum, and random
    rows of ten."""
    low, high = f.bounds
    x = every_value(f)
    top, bottom = np.full_like(x, high), np.full_like(x, low)
    return [np.stack([x, top], -1), np.stack([x, top, bottom], -1), rng.integers(low, high + 1, (500, 10))]


@pytest.mark.parametrize("in_name", INPUT_FORMATS)
def test_softmax_error_is_within_its_bound_on_every_difference(in_name: str) -> None:
    rng = np.random.default_rng(7)
    i = fmt(in_name)
    rows = softmax_rows(i, rng)
    for beta in BETAS:
        for out_name in ("q7", "q15", "q1.14", "q3.4"):
            o = fmt(out_name)
            params = softmax_q_params(beta, i.frac_bits, i.bits, o.frac_bits, o.bounds[1])
            for row in rows:
                got = softmax_q(row, params)
                z = beta * (row - row.max(axis=-1, keepdims=True)) * i.scale
                exact = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
                errors = error_units(got, exact, o)
                bound = softmax_error_bound(o.frac_bits, row.shape[-1])
                assert errors.max() <= bound, (in_name, out_name, beta, float(errors.max()), bound)


def test_softmax_of_a_whole_format_in_one_row() -> None:
    """One row of all 65,536 q7.8 values (the int64 sum of 65,536 exponentials, the largest differences)."""
    i, o = fmt("q7.8"), fmt("q15")
    row = every_value(i)[np.newaxis]
    params = softmax_q_params(1.0, i.frac_bits, i.bits, o.frac_bits, o.bounds[1])
    z = (row - row.max()) * i.scale
    errors = error_units(softmax_q(row, params), np.exp(z) / np.exp(z).sum(), o)
    assert errors.max() <= softmax_error_bound(o.frac_bits, row.shape[-1])


def test_softmax_hand_values() -> None:
    """Equal values share 1 evenly; a far larger one takes all of it (clamped to q7's 127/128)."""
    i, o = fmt("q7"), fmt("q7")
    params = softmax_q_params(1.0, i.frac_bits, i.bits, o.frac_bits, o.bounds[1])
    assert softmax_q([[5, 5, 5, 5]], params).tolist() == [[32, 32, 32, 32]]
    wide = fmt("q7.8")
    sharp = softmax_q_params(4.0, wide.frac_bits, wide.bits, o.frac_bits, o.bounds[1])
    assert softmax_q([[32767, -32768, 0]], sharp).tolist() == [[127, 0, 0]]


# -- C == NumPy --------------------------------------------------------------------------------------------


def function_model(function: str, in_name: str, out_name: str) -> nndsl.Model:
    size = 1 << fmt(in_name).bits
    return nndsl.loads(f"network f\ninput x : {in_name}[{size}]\noutput y = {function}(x) : {out_name}\n")


def softmax_model(in_name: str, out_name: str, rows: int, depth: int, beta: float) -> nndsl.Model:
    return nndsl.loads(f"network s\ninput x : {in_name}[{rows}, {depth}]\n"
                       f"output y = softmax(x, beta={beta!r}) : {out_name}\n")


C_FUNCTION_CASES = [("tanh", "q4.11", "q15"), ("sigmoid", "q7", "q7"), ("tanh", "q3.4", "q1.6"),
                    ("sigmoid", "q15", "q2.5")]


@pytest.mark.parametrize("function, in_name, out_name", C_FUNCTION_CASES)
def test_c_function_equals_numpy_on_every_input(function: str, in_name: str, out_name: str,
                                                 compiler: str) -> None:
    """One input holding every value of the format, through the C under the sanitizers."""
    model = function_model(function, in_name, out_name)
    x = every_value(fmt(in_name)).astype(model.graph.input.type.dtype.numpy)[np.newaxis]
    expected = model.run(x)
    got = run_in_c(model, x, sanitize=True)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


@pytest.mark.slow
@pytest.mark.parametrize("function", ["tanh", "sigmoid"])
@pytest.mark.parametrize("in_name", INPUT_FORMATS)
@pytest.mark.parametrize("out_name", ["q7", "q15", "q1.14", "q2.5"])
def test_c_function_grid_equals_numpy(function: str, in_name: str, out_name: str, compiler: str) -> None:
    """The full grid of the test above: every input format to four output formats."""
    test_c_function_equals_numpy_on_every_input(function, in_name, out_name, compiler)


@pytest.mark.slow
@pytest.mark.parametrize("in_name", INPUT_FORMATS)
@pytest.mark.parametrize("out_name", ["q7", "q15", "q1.14"])
def test_c_softmax_grid_equals_numpy(in_name: str, out_name: str, compiler: str) -> None:
    for beta in (1.0, 0.25, 6.0):
        test_c_softmax_equals_numpy_on_every_difference(in_name, out_name, beta, compiler)


@pytest.mark.parametrize("in_name, out_name, beta", [("q4.11", "q7", 1.0), ("q7", "q15", 0.5),
                                                     ("q2.5", "q1.14", 3.0), ("q15", "q3.4", 1.0)])
def test_c_softmax_equals_numpy_on_every_difference(in_name: str, out_name: str, beta: float,
                                                    compiler: str) -> None:
    """Rows [x, max] for every x of the format, and random rows of ten, through the sanitized C."""
    rng = np.random.default_rng(11)
    i = fmt(in_name)
    storage = fmt(in_name).storage.numpy
    pairs = softmax_rows(i, rng)[0].astype(storage)
    model = softmax_model(in_name, out_name, pairs.shape[0], 2, beta)
    assert np.array_equal(run_in_c(model, pairs[np.newaxis], sanitize=True), model.run(pairs[np.newaxis]))
    tens = softmax_model(in_name, out_name, 3, 10, beta)
    low, high = i.bounds
    x = rng.integers(low, high + 1, (200, 3, 10)).astype(storage)
    x[0], x[1] = low, high
    assert np.array_equal(run_in_c(tens, x, sanitize=True), tens.run(x))


def test_fixed_functions_in_one_network_c_equals_numpy(tmp_path: Path, compiler: str) -> None:
    """Chained, in int8 and int16 storage, with the default output formats (q7 from int8, q15 from int16)."""
    model = nndsl.loads("network chain\ninput x : q4.11[6, 10]\na = tanh(x)\nb = sigmoid(a) : q3.4\n"
                        "c = sigmoid(b)\noutput y = softmax(c, beta=4.0)\n")
    assert [op.output.type.type_name for op in model.graph.ops] == ["q15", "q3.4", "q7", "q7"]
    rng = np.random.default_rng(5)
    x = rng.integers(-32768, 32768, (300, 6, 10)).astype(np.int16)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path, sanitize=True), model.run(x))


def test_summary_counts_each_table_once_and_the_kernel_code() -> None:
    """Two tanh layers of one pair of formats share a table; the softmax's exponential table is counted too."""
    one = nndsl.loads("network a\ninput x : q4.11[8]\noutput y = tanh(x) : q15\n")
    two = nndsl.loads("network b\ninput x : q4.11[8]\na = tanh(x) : q15\nb = relu(a)\nc = add(a, b) : q4.11\n"
                      "output y = tanh(c) : q15\n")
    table = len(function_q_params(QFunction.TANH, 11, 16, 15, (-32768, 32767)).table) * 4
    assert one.summary().code_bytes_estimate - nndsl.loads(
        "network c\ninput x : q4.11[8]\noutput y = relu(x)\n").summary().code_bytes_estimate >= table
    per_op = two.summary().code_bytes_estimate - one.summary().code_bytes_estimate
    assert 0 < per_op < table  # the loops of three more layers and an add, not a second table
    soft = nndsl.loads("network s\ninput x : q4.11[8]\noutput y = softmax(x)\n")
    assert soft.summary().code_bytes_estimate > 257 * 4 + 1000
