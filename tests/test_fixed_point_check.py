"""Power-of-two fixed point (q7, q15, qM.N): located errors, formats, summaries and the range proofs.

The error cases are small models (``net``: line 3 is the input, the layers
follow from line 4) with weights written by NumPy; each checks the exact
``line:col`` of the first error (the column of ``anchor`` on that line) and
the words and numbers of its message, a subset through ``python -m nndsl``.
The range tests check the analysis of the int32 sums against hand-computed
intervals, against an adversarial input that attains them, and (with
hypothesis) against every accumulator the NumPy backend computes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl import ir
from nndsl.qmath.shift import add_q_params, checked_shift
from nndsl.types import DType, QFormat
from tests.test_diagnostics import errors_of
from tests.test_op_diagnostics import Case, assert_case_error
from tests.test_ranges import accumulators, op_range

Arrays = dict[str, np.ndarray]

Q7_VEC = "input x : q7[4]"
Q7_1D = "input x : q7[8, 2]"
Q7_2D = "input x : q7[5, 5, 2]"
I16_TARGET = "target dsp { ram = 8 KiB, flash = 64 KiB, clock = 16 MHz, accumulator = i16 }"


def net(input_decl: str, *layers: str, target: str = "") -> str:
    """A network with ``input_decl`` on line 3 and ``layers`` from line 4 on (a target, if any, last)."""
    return "\n".join(["network t", 'weights "w.npz"', input_decl, *layers, target]) + "\n"


def fixed(name: str, values: np.ndarray, frac_bits: int | np.ndarray | None) -> Arrays:
    """A weight array and its ``NAME.frac_bits`` (left out when None)."""
    arrays: Arrays = {name: values}
    if frac_bits is not None:
        arrays[f"{name}.frac_bits"] = np.asarray(frac_bits)
    return arrays


def dense_weights(kernel: np.ndarray | None = None, bias: np.ndarray | None = None, kernel_frac: Any = 7,
                  bias_frac: Any = 14) -> Arrays:
    """``k`` (default: int8 4x2, q7 weights) and ``b`` (default: int32 with 14 fraction bits, q7 x q7's)."""
    k = np.array([[1, 2], [3, -4], [5, 6], [-7, 8]], np.int8) if kernel is None else kernel
    b = np.array([100, -200], np.int32) if bias is None else bias
    return {**fixed("k", k, kernel_frac), **fixed("b", b, bias_frac)}


def savez(path: Path, arrays: Arrays) -> None:
    np.savez(path, **cast("dict[str, Any]", arrays))  # (NumPy's stubs take ** for its own keywords)


def write(folder: Path, source: str, arrays: Arrays | None = None, name: str = "model.nn") -> Path:
    savez(folder / "w.npz", arrays or {})
    path = folder / name
    path.write_text(source, encoding="utf-8")
    return path


def nndsl_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nndsl", *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


# -- errors ---------------------------------------------------------------------------------------------------


DENSE = "output y = dense(x, k, b) : q7"
UNSUPPORTED = {
    "leaky_relu": ("y = leaky_relu(x, alpha=0.1) : q7", {}),
    "hard_swish": ("y = hard_swish(x) : q7", {}),
    "batch_norm": ("y = batch_norm(x, bn.g, bn.b, bn.m, bn.v)",
                   {f"bn.{p}": np.ones(2, np.float32) for p in "gbmv"}),
}
FIXED_OPS_LIST = ("add, avg_pool, concat, conv1d, conv2d, dense, depthwise_conv1d, depthwise_conv2d, flatten, "
                  "global_avg_pool, global_max_pool, gru, max_pool, maximum, minimum, mul, pad, relu, relu6, "
                  "reshape, resize_nearest_neighbor, sigmoid, slice, softmax, squared_difference, strided_slice, "
                  "sub, tanh, transpose")
CONV1D = fixed("k", np.ones((3, 2, 4), np.int8), 7)

CASES = [
    # -- formats ------------------------------------------------------------------------------------------
    Case("input-wider-than-16-bits", net("input x : q9.9[4]", "output y = relu(x)"), 3, "q9.9",
         ("q9.9 has 19 bits (M + N + 1)", "fixed-point tensors have 2 to 16", "q7, q15 or q3.4")),
    Case("layer-wider-than-16-bits", net(Q7_VEC, "output y = relu(x) : q1.15"), 4, "q1.15",
         ("q1.15 has 17 bits", "2 to 16")),
    Case("one-bit-format", net("input x : q0.0[4]", "output y = relu(x)"), 3, "q0.0",
         ("q0.0 has 1 bit (M + N + 1)", "2 to 16")),
    Case("q7-with-scale", net("input x : q7[4] @ scale(0.1) zero(0)", "output y = relu(x)"), 3, "@",
         ("q7 has the fixed scale 2^-7 and zero point 0", "without '@ scale(...) zero(...)'")),
    Case("qmn-layer-with-scale", net(Q7_VEC, "output y = relu(x) : q3.4 @ scale(0.0625) zero(0)"), 4, "@",
         ("q3.4 has the fixed scale 2^-4 and zero point 0",)),
    Case("unknown-q8", net("input x : q8[4]", "output y = relu(x)"), 3, "q8",
         ("unknown tensor type 'q8'", "f32, i8, i16", "fixed-point format q7, q15, qM.N")),
    Case("unknown-q7x", net(Q7_VEC, "output y = relu(x) : q7x"), 4, "q7x",
         ("unknown tensor type 'q7x'", "q7, q15, qM.N")),
    # -- arithmetics do not mix ---------------------------------------------------------------------------
    Case("i8-layer-in-q7-network", net(Q7_VEC, "output y = relu(x) : i8 @ scale(0.1) zero(0)"), 4, "i8",
         ("'y' is declared i8", "the network computes in fixed point (qM.N)", "do not mix")),
    Case("f32-layer-in-q7-network", net(Q7_VEC, "output y = relu(x) : f32"), 4, "f32",
         ("'y' is declared f32", "computes in fixed point (qM.N)")),
    Case("q7-layer-in-i8-network", net("input x : i8[4] @ scale(0.1) zero(0)", "output y = relu(x) : q7"), 4,
         "q7", ("'y' is declared q7", "the network computes in i8", "do not mix")),
    Case("q15-layer-in-i16-network", net("input x : i16[4] @ scale(0.001) zero(0)", "output y = relu(x) : q15"),
         4, "q15", ("'y' is declared q15", "computes in i16")),
    Case("q3.4-layer-in-f32-network", net("input x : f32[4]", "output y = relu(x) : q3.4"), 4, "q3.4",
         ("'y' is declared q3.4", "computes in f32")),
    # -- output formats -----------------------------------------------------------------------------------
    Case("dense-without-format", net(Q7_VEC, "output y = dense(x, k, b)"), 4, "y",
         ("'y' is computed in fixed point (qM.N)", "declare its type", "': q7'"), dense_weights()),
    Case("conv1d-without-format", net(Q7_1D, "output y = conv1d(x, k)"), 4, "y",
         ("'y' is computed in fixed point (qM.N)", "declare its type"), CONV1D),
    Case("conv2d-without-format", net(Q7_2D, "output y = conv2d(x, k)"), 4, "y",
         ("'y' is computed in fixed point (qM.N)", "declare its type"), fixed("k", np.ones((3, 3, 2, 4), np.int8), 7)),
    Case("depthwise-without-format", net(Q7_2D, "output y = depthwise_conv2d(x, k)"), 4, "y",
         ("'y' is computed in fixed point (qM.N)",), fixed("k", np.ones((3, 3, 2, 1), np.int8), 7)),
    Case("add-without-format", net(Q7_VEC, "r = relu(x) : q3.4", "output y = add(x, r)"), 5, "y",
         ("'y' is computed in fixed point (qM.N)", "declare its type")),
    Case("max-pool-other-format", net(Q7_1D, "output y = max_pool(x, size=2) : q3.4"), 4, "q3.4",
         ("max_pool keeps its input's quantisation (q7), declared q3.4",)),
    Case("avg-pool-other-format", net(Q7_2D, "output y = avg_pool(x, size=2) : q15"), 4, "q15",
         ("avg_pool keeps its input's quantisation (q7), declared q15",)),
    Case("global-avg-pool-other-format", net(Q7_1D, "output y = global_avg_pool(x) : q2.5"), 4, "q2.5",
         ("global_avg_pool keeps its input's quantisation (q7), declared q2.5",)),
    Case("concat-of-two-formats", net(Q7_VEC, "r = relu(x) : q3.4", "output y = concat(x, r) : q7"), 5, "r)",
         ("fixed-point concat copies bytes", "'r' has q3.4", "'x' has q7")),
    # -- ops without a shift-only kernel ------------------------------------------------------------------
    *(Case(f"{op}-in-fixed-network", net(Q7_1D, layer, "output z = relu(y)"), 4, op,
           (f"'{op}' has no fixed-point (qM.N) kernel", f"fixed-point networks use: {FIXED_OPS_LIST}"), weights)
      for op, (layer, weights) in UNSUPPORTED.items()),
    # -- weights ------------------------------------------------------------------------------------------
    Case("kernel-float32", net(Q7_VEC, DENSE), 4, "k,",
         ("dense kernel 'k' is float32", "expected int8 or int16 in a fixed-point network", "'k.frac_bits'"),
         dense_weights(kernel=np.ones((4, 2), np.float32))),
    Case("kernel-int32", net(Q7_VEC, DENSE), 4, "k,", ("dense kernel 'k' is int32", "expected int8 or int16"),
         dense_weights(kernel=np.ones((4, 2), np.int32))),
    Case("conv-kernel-float32", net(Q7_1D, "output y = conv1d(x, k) : q7"), 4, "k)",
         ("conv1d kernel 'k' is float32", "expected int8 or int16"), fixed("k", np.ones((3, 2, 4), np.float32), 7)),
    Case("bias-float32", net(Q7_VEC, DENSE), 4, "b)", ("dense bias 'b' is float32", "int8, int16 or int32"),
         dense_weights(bias=np.ones(2, np.float32))),
    Case("bias-int64", net(Q7_VEC, DENSE), 4, "b)", ("dense bias 'b' is int64", "int32"),
         dense_weights(bias=np.ones(2, np.int64))),
    Case("kernel-without-frac-bits", net(Q7_VEC, DENSE), 4, "k,",
         ("dense kernel 'k' is fixed point", "needs its fraction bits as 'k.frac_bits'", "7 for q7"),
         dense_weights(kernel_frac=None)),
    Case("bias-without-frac-bits", net(Q7_VEC, DENSE), 4, "b)", ("needs its fraction bits as 'b.frac_bits'",),
         dense_weights(bias_frac=None)),
    Case("frac-bits-fractional", net(Q7_VEC, DENSE), 4, "k,",
         ("'k.frac_bits' must be one integer (an integer array of one value) from 0 to 31",
                                                          "got float64 [7.5]"), dense_weights(kernel_frac=7.5)),
    Case("frac-bits-32", net(Q7_VEC, DENSE), 4, "k,", ("'k.frac_bits' must be one integer",
                                                       "got int64 [32]"), dense_weights(kernel_frac=32)),
    Case("frac-bits-negative", net(Q7_VEC, DENSE), 4, "b)", ("'b.frac_bits' must be one integer", "got int64 [-1]"),
         dense_weights(bias_frac=-1)),
    Case("frac-bits-two-values", net(Q7_VEC, DENSE), 4, "k,", ("'k.frac_bits' must be one integer",
                                                               "got int64 [7, 7]"),
         dense_weights(kernel_frac=np.array([7, 7]))),
    Case("frac-bits-per-channel", net(Q7_VEC, DENSE), 4, "k,", ("'k.frac_bits'", "got int64 6 values"),
         dense_weights(kernel_frac=np.arange(6))),
    # -- shifts and the aligned bias ----------------------------------------------------------------------
    Case("bias-more-frac-bits-than-accumulator", net(Q7_VEC, DENSE), 4, "b)",
         ("bias 'b' has 15 fraction bits, more than the accumulator's 14 (input 7 + kernel 7)",
          "store it with at most 14"), dense_weights(bias_frac=15)),
    Case("bias-beyond-int32-once-aligned", net(Q7_VEC, DENSE), 4, "b)",
         ("bias 'b' does not fit the int32 accumulator", "aligned by 14 bits the bias reaches 2147483648",
          "beyond int32"), dense_weights(bias=np.array([2**17, 0], np.int32), bias_frac=0)),
    Case("negative-bias-beyond-int32-once-aligned", net(Q7_VEC, DENSE), 4, "b)",
         ("aligned by 10 bits the bias reaches -2147485696",),
         dense_weights(bias=np.array([5, -(2**21) - 2], np.int32), bias_frac=4)),
    Case("output-shift-beyond-31", net("input x : q15[4]", DENSE), 4, "dense",
         ("fixed-point dense of 'y' cannot go from q15 to q7", "its int32 sum has 46 fraction bits",
          "a shift of 39 bits is beyond -31..31", "fraction bits are closer"),
         dense_weights(kernel=np.ones((4, 2), np.int16), kernel_frac=31, bias_frac=0)),
    Case("conv-output-shift-beyond-31", net("input x : q15[8, 2]", "output y = conv1d(x, k) : q3.4"), 4, "conv1d",
         ("fixed-point conv1d of 'y' cannot go from q15 to q3.4", "a shift of 40 bits is beyond -31..31"),
         fixed("k", np.ones((3, 2, 4), np.int16), 29)),
]


def write_case(folder: Path, case: Case) -> Path:
    return write(folder, case.source, case.weights)


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_diagnostic(tmp_path: Path, case: Case) -> None:
    assert_case_error(write_case(tmp_path, case), case)


def test_misspelt_format_is_a_located_syntax_error(tmp_path: Path) -> None:
    """``q3.4x`` is neither a format nor a name: the parser stops on that line."""
    (error,) = errors_of(write(tmp_path, net("input x : q3.4x[4]", "output y = relu(x)")))
    assert error.loc is not None and error.loc.line == 3
    assert "syntax error" in error.message


CLI_CASES = [case for case in CASES if case.id in {
    "input-wider-than-16-bits", "q7-with-scale", "unknown-q8", "i8-layer-in-q7-network", "q7-layer-in-i8-network",
    "dense-without-format", "hard_swish-in-fixed-network", "kernel-float32", "kernel-without-frac-bits",
    "frac-bits-two-values", "bias-more-frac-bits-than-accumulator", "bias-beyond-int32-once-aligned",
    "output-shift-beyond-31",
}]


def test_cli_cases_exist() -> None:
    assert len(CLI_CASES) == 13


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_cli_check(tmp_path: Path, case: Case) -> None:
    path = write_case(tmp_path, case)
    result = nndsl_cli("check", path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert re.match(rf"^{re.escape(str(path))}:{case.line}:{case.col}: error: ", result.stderr), result.stderr
    first = result.stderr.splitlines()[0]
    for word in case.words:
        assert word in first, f"{word!r} not in {first!r}"
    assert result.stdout == ""


def test_cli_build_of_a_bad_fixed_model_writes_nothing(tmp_path: Path) -> None:
    path = write_case(tmp_path, next(c for c in CASES if c.id == "output-shift-beyond-31"))
    result = nndsl_cli("build", path, "-o", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: fixed-point dense of 'y' cannot go from q15 to q7" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("kernel_frac", "output", "shift"), [(31, "q7", 31), (0, "q15", -8)],
                         ids=["right-31", "left-8"])
def test_output_shift_at_the_limits_is_accepted(tmp_path: Path, kernel_frac: int, output: str, shift: int) -> None:
    """A shift of exactly 31 bits (right) is allowed; a left shift (more output fraction bits) too."""
    weights = dense_weights(bias=np.zeros(2, np.int8), kernel_frac=kernel_frac, bias_frac=0)
    model = nndsl.load(write(tmp_path, net(Q7_VEC, f"output y = dense(x, k, b) : {output}"), weights))
    (op,) = model.graph.ops
    assert isinstance(op, ir.Dense) and isinstance(op.requant, ir.ShiftRequant)
    assert op.requant.shift == shift


def test_bias_at_the_int32_limit_once_aligned_is_accepted(tmp_path: Path) -> None:
    """``(2^17 - 1) << 14`` still fits int32 (with a zero kernel the accumulator is the bias itself)."""
    weights = dense_weights(kernel=np.zeros((4, 2), np.int8), bias=np.array([2**17 - 1, -(2**17)], np.int32),
                            bias_frac=0)
    model = nndsl.load(write(tmp_path, net(Q7_VEC, DENSE), weights))
    bounds = op_range(model, "y").accumulator
    assert (bounds.lo.tolist(), bounds.hi.tolist()) == ([2**31 - 2**14, -(2**31)], [2**31 - 2**14, -(2**31)])


def test_add_alignment_limit_is_unreachable_from_the_language() -> None:
    """Activations have 0 to 15 fraction bits, so add aligns by at most 15; the 30-bit limit guards qmath."""
    assert add_q_params(0, 15, 15).left_a == 15
    assert add_q_params(15, 0, 0).left_b == 15
    with pytest.raises(ValueError, match="aligning the inputs needs a left shift of 31 bits, more than 30"):
        add_q_params(0, 31, 0)
    with pytest.raises(ValueError, match=re.escape("a shift of 32 bits is beyond -31..31")):
        checked_shift(32)


# -- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "int_bits", "frac_bits", "storage", "bounds", "name"), [
    ("q7", 0, 7, DType.I8, (-128, 127), "q7"),
    ("q15", 0, 15, DType.I16, (-32768, 32767), "q15"),
    ("q3.4", 3, 4, DType.I8, (-128, 127), "q3.4"),
    ("q0.15", 0, 15, DType.I16, (-32768, 32767), "q15"),
    ("q2.3", 2, 3, DType.I8, (-32, 31), "q2.3"),
    ("q0.1", 0, 1, DType.I8, (-2, 1), "q0.1"),
    ("q4.11", 4, 11, DType.I16, (-32768, 32767), "q4.11"),
    ("q5.5", 5, 5, DType.I16, (-1024, 1023), "q5.5"),  # 11 bits in int16
    ("q15.0", 15, 0, DType.I16, (-32768, 32767), "q15.0"),
])
def test_formats_parse(tmp_path: Path, text: str, int_bits: int, frac_bits: int, storage: DType,
                       bounds: tuple[int, int], name: str) -> None:
    model = nndsl.load(write(tmp_path, net(f"input x : {text}[3]", f"output y = relu(x) : {text}")))
    for tensor in (model.graph.input, model.graph.output):
        assert tensor.type.fixed == QFormat(int_bits, frac_bits)
        assert tensor.type.dtype is storage
        assert tensor.type.bounds == bounds
        assert tensor.type.quant is not None and tensor.type.quant.scale == 2.0**-frac_bits
        assert tensor.type.quant.zero_point == 0
    assert str(model.graph.input.type) == f"{name}[3]"
    assert model.graph.fixed


def test_narrow_format_clamps_to_its_own_range(tmp_path: Path) -> None:
    """q3.4 -> q2.3 (6 bits, [-32, 31]) through an identity kernel: a rounding shift by 1, then the clamp."""
    weights = fixed("k", np.eye(4, dtype=np.int8), 0)
    model = nndsl.load(write(tmp_path, net("input x : q3.4[4]", "output y = dense(x, k) : q2.3"), weights))
    x = np.array([127, -128, 21, -21], np.int8)
    assert model.run(x).tolist() == [31, -32, 11, -11]  # 63.5 -> 31 (clamped), 10.5 -> 11 (half away from 0)
    relu6 = nndsl.load(write(tmp_path, net("input x : q3.4[4]", "output y = relu6(x) : q2.3")))
    assert relu6.run(x).tolist() == [31, 0, 11, 0]  # relu6 at 6 * 2^3 = 48 is beyond q2.3: the format clamps


def summary_model(folder: Path) -> Path:
    """conv1d (int16 kernel, int8 bias) -> relu : q15, max_pool, flatten, dense (int8 kernel, int16 bias) : q3.12."""
    rng = np.random.default_rng(3)
    arrays = {
        **fixed("c.kernel", rng.integers(-300, 300, (3, 2, 4)).astype(np.int16), 15),
        **fixed("c.bias", np.array([1, -2, 3, -4], np.int8), 7),
        **fixed("d.kernel", rng.integers(-100, 100, (16, 3)).astype(np.int8), 7),
        **fixed("d.bias", np.array([10, 20, 30], np.int16), 12),
    }
    source = net(Q7_1D, "c = conv1d(x, c.kernel, c.bias, padding=same) -> relu : q15", "p = max_pool(c, size=2)",
                 "f = flatten(p)", "output y = dense(f, d.kernel, d.bias) : q3.12")
    return write(folder, source, arrays, "s.nn")


def test_summarize_json_of_a_fixed_point_model(tmp_path: Path) -> None:
    result = nndsl_cli("summarize", "--json", summary_model(tmp_path))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert {name: layer["dtype"] for name, layer in layers.items()} == {"c": "q15", "p": "q15", "f": "q15",
                                                                        "y": "q3.12"}
    # Biases are stored aligned to their int32 accumulator: 4 bytes each, whatever their .npz width.
    assert layers["c"]["weight_bytes"] == 3 * 2 * 4 * 2 + 4 * 4
    assert layers["y"]["weight_bytes"] == 16 * 3 * 1 + 3 * 4
    assert data["weight_bytes"] == 64 + 60
    assert data["params"] == 24 + 4 + 48 + 3
    assert layers["c"]["macs"] == 8 * 4 * 3 * 2 and layers["y"]["macs"] == 16 * 3
    assert data["macs"] == 192 + 48
    # c: int16 [8, 4] = 64 bytes, p: int16 [4, 4] = 32, f shares p's bytes, y goes to the caller's output.
    assert layers["c"]["arena_bytes"] == 64 and layers["p"]["arena_bytes"] == 32
    assert layers["f"]["arena_bytes"] == 0 and layers["y"]["arena_bytes"] == 0
    # Code: entry 128 + conv 320 + pool 200 + reshape 0 + dense 160, helpers requant 160 + shift 48.
    assert data["code_bytes_estimate"] == 128 + 320 + 200 + 160 + 160 + 48
    assert data["flash_bytes"] == 124 + 1016


def test_aligned_bias_values(tmp_path: Path) -> None:
    """The lowered bias is the .npz bias shifted left to the accumulator's fraction bits, as int32."""
    model = nndsl.load(summary_model(tmp_path))
    conv, _, _, dense = model.graph.ops
    assert isinstance(conv, ir.Conv) and isinstance(dense, ir.Dense)
    assert conv.bias is not None and conv.bias.data is not None
    assert conv.bias.data.dtype == np.int32 and conv.bias.data.tolist() == [1 << 15, -2 << 15, 3 << 15, -4 << 15]
    assert dense.bias is not None and dense.bias.data is not None
    assert dense.bias.data.tolist() == [10 << 10, 20 << 10, 30 << 10]  # 15 + 7 - 12 = 10
    assert isinstance(dense.requant, ir.ShiftRequant) and dense.requant.shift == 15 + 7 - 12


def test_c_header_has_the_frac_bits(tmp_path: Path) -> None:
    result = nndsl_cli("build", summary_model(tmp_path), "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    header = (tmp_path / "out" / "t.h").read_text()
    assert "#define T_INPUT_FRAC_BITS 7\n" in header
    assert "#define T_OUTPUT_FRAC_BITS 12\n" in header
    assert "#define T_INPUT_MIN (-128)\n" in header and "#define T_INPUT_MAX (127)\n" in header
    assert "typedef int8_t t_input_t;" in header and "typedef int16_t t_output_t;" in header


# -- range analysis ------------------------------------------------------------------------------------------


def q15_dense(folder: Path, weight: int, target: str = "") -> Path:
    """q15[64] x an int16 kernel of q15 weights (all ``weight``), to q15."""
    weights = fixed("k", np.full((64, 1), weight, np.int16), 15)
    return write(folder, net("input x : q15[64]", "output y = dense(x, k) : q15", target=target), weights)


def test_q15_long_dot_product_overflows_i32(tmp_path: Path) -> None:
    path = q15_dense(tmp_path, 32767)
    (error,) = errors_of(path)
    assert error.loc is not None and (error.loc.line, error.loc.col) == (4, 12)
    lo, hi = 64 * -32768 * 32767, 64 * 32767 * 32767
    message = f"the accumulator of 'y' can reach [{lo}, {hi}], beyond i32 [-2147483648, 2147483647]"
    assert message in error.message
    result = nndsl_cli("check", path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}:4:12: error: {message}"), result.stderr


def test_q15_same_length_with_smaller_weights_passes(tmp_path: Path) -> None:
    model = nndsl.load(q15_dense(tmp_path, 1000))
    assert op_range(model, "y").accumulator.bounds == (64 * -32768 * 1000, 64 * 32767 * 1000)


def test_partial_sum_of_a_fixed_layer_is_checked(tmp_path: Path) -> None:
    """After a relu the products reach beyond 2^31 before a negative bias brings the sum back: still an error."""
    weights = {**fixed("k", np.full((64, 1), 1040, np.int16), 15), **fixed("b", np.array([-(2**29)], np.int32), 30)}
    source = net("input x : q15[64]", "r = relu(x)", "output y = dense(r, k, b) : q15")
    (error,) = errors_of(write(tmp_path, source, weights))
    assert error.loc is not None and (error.loc.line, error.loc.col) == (5, 12)
    assert f"a partial sum of 'y' (before its bias) can reach [0, {64 * 32767 * 1040}]" in error.message


def test_i16_accumulator_target_refuses_a_q7_model_that_passes_in_i32(tmp_path: Path) -> None:
    weights = fixed("k", np.full((16, 1), 127, np.int8), 7)
    source = "input x : q7[16]", "output y = dense(x, k) : q7"
    passes = nndsl.load(write(tmp_path, net(*source), weights))
    assert op_range(passes, "y").accumulator.bounds == (-128 * 127 * 16, 127 * 127 * 16)
    (error,) = errors_of(write(tmp_path, net(*source, target=I16_TARGET), weights))
    assert error.loc is not None and (error.loc.line, error.loc.col) == (4, 12)
    assert "the accumulator of 'y' can reach [-260096, 258064], beyond i16 [-32768, 32767]" in error.message


def test_add_of_two_formats_overflowing_the_accumulator(tmp_path: Path) -> None:
    """q3.12 + q15: x aligned by 3 bits, [-262144, 262136] + relu's [0, 32767]; beyond i16, fine in i32.

    (With int32 sums no add of <= 16-bit formats can overflow: |sum| <= 2^30 + 2^15.)
    """
    layers = "input x : q3.12[4]", "r = relu(x) : q15", "output y = add(x, r) : q3.12"
    passes = nndsl.load(write(tmp_path, net(*layers)))
    assert op_range(passes, "y").accumulator.bounds == (-262144, 262136 + 32767)
    (error,) = errors_of(write(tmp_path, net(*layers, target=I16_TARGET)))
    assert error.loc is not None and (error.loc.line, error.loc.col) == (5, 12)
    assert "the accumulator of 'y' can reach [-262144, 294903], beyond i16 [-32768, 32767]" in error.message


@pytest.mark.parametrize("seed", range(4))
def test_first_layer_bound_is_attained(seed: int, tmp_path: Path) -> None:
    """On a narrow q2.3 input ([-32, 31]), the input at each end matching its weight's sign reaches the bound."""
    rng = np.random.default_rng(seed)
    features = int(rng.integers(2, 40))
    kernel = rng.integers(-32768, 32768, size=(features, 5)).astype(np.int16)
    bias = rng.integers(-(2**20), 2**20, size=5).astype(np.int32)
    weights = {**fixed("k", kernel, 12), **fixed("b", bias, 13)}
    model = nndsl.load(write(tmp_path, net(f"input x : q2.3[{features}]", "output y = dense(x, k, b) : q7.8"),
                             weights))
    bounds = op_range(model, "y").accumulator
    aligned = bias.astype(np.int64) << 2
    positive = kernel.astype(np.int64) > 0
    assert np.array_equal(bounds.hi, (np.where(positive, 31, -32) * kernel).sum(axis=0) + aligned)
    for channel in range(5):
        high = np.where(positive[:, channel], 31, -32).astype(np.int8)
        low = np.where(positive[:, channel], -32, 31).astype(np.int8)
        seen = accumulators(model, np.stack([high, low]))["y"]
        assert seen[0, channel] == bounds.hi[channel]
        assert seen[1, channel] == bounds.lo[channel]


def test_conv_bound_is_attained_next_to_the_padding(tmp_path: Path) -> None:
    """Output (0, 0) of a same-padded 3x3 conv: only the 2x2 in-bounds taps count, exactly."""
    rng = np.random.default_rng(11)
    kernel = rng.integers(-3000, 3000, size=(3, 3, 2, 4)).astype(np.int16)  # 18 taps x 2^15 x 3000 < 2^31
    weights = fixed("k", kernel, 15)
    model = nndsl.load(write(tmp_path, net("input x : q15[5, 5, 2]", "output y = conv2d(x, k, padding=same) : q15"),
                             weights))
    bounds = op_range(model, "y").accumulator
    for channel in range(4):
        taps = kernel[1:, 1:, :, channel]  # output (0, 0) sees input rows/cols 0..1 through taps 1..2
        x = np.zeros((2, 5, 5, 2), np.int16)
        x[0, :2, :2] = np.where(taps > 0, 32767, -32768)
        x[1, :2, :2] = np.where(taps > 0, -32768, 32767)
        seen = accumulators(model, x)["y"]
        assert seen[0, 0, 0, channel] == bounds.hi[0, 0, channel]
        assert seen[1, 0, 0, channel] == bounds.lo[0, 0, channel]


def test_int16_average_over_more_than_65535_positions_is_a_located_error(tmp_path: Path) -> None:
    """A q15 global_avg_pool over 70,000 positions: TFLM's int16 average has an int32 sum of at most 65535 taps."""
    (error,) = errors_of(write(tmp_path, net("input x : q15[70000, 1]", "output y = global_avg_pool(x)")))
    assert error.loc is not None and error.loc.line == 4


def test_fixed_layer_saturation_is_a_warning(tmp_path: Path) -> None:
    """Weights of 4.0 on two q7 inputs reach [-8, 7.94]; q2.5 holds [-4, 3.97]: half the range is clipped."""
    weights = fixed("k", np.full((2, 1), 64, np.int8), 4)
    path = write(tmp_path, net("input x : q7[2]", "output y = dense(x, k) : q2.5"), weights)
    model = nndsl.load(path)
    assert model.warnings == ()  # clipping is reported by `check`, not on every load
    (warning,) = model.compiled.range_warnings()
    assert warning.loc is not None and (warning.loc.line, warning.loc.col) == (4, 12)
    assert ("'y' saturates: it reaches 7.938, its format holds up to 3.969 and reaches -8, its format holds down "
            "to -4 (50% of its reachable range is clipped; q2.5)") in warning.message
    result = nndsl_cli("check", path)
    assert result.returncode == 0, result.stderr
    assert f"{path}:4:12: warning: 'y' saturates" in result.stderr and "q2.5)" in result.stderr
    assert "Traceback" not in result.stderr
    wide = nndsl.load(write(tmp_path, net("input x : q7[2]", "output y = dense(x, k) : q4.3"), weights))
    assert wide.compiled.range_warnings() == []


def test_relu6_beyond_a_fixed_format_is_a_warning(tmp_path: Path) -> None:
    """relu6 wants up to 6; q1.6 holds 1.98."""
    weights = fixed("k", np.full((2, 1), 64, np.int8), 4)
    model = nndsl.load(write(tmp_path, net("input x : q7[2]", "output y = dense(x, k) -> relu6 : q1.6"), weights))
    (warning,) = model.compiled.range_warnings()
    assert "'y' saturates: it reaches 6, its format holds up to 1.984" in warning.message
    assert "q1.6" in warning.message


@pytest.mark.parametrize("spread", [0, 1], ids=["constant", "narrow"])
def test_clipped_share_when_everything_is_clipped(tmp_path: Path, spread: int) -> None:
    """A bias of 10 with (almost) no weights: every value reachable lies above q7's 0.99, 100% is clipped."""
    weights = dense_weights(kernel=np.full((4, 2), spread, np.int8), bias=np.array([10, 10], np.int8), kernel_frac=0,
                            bias_frac=0)
    model = nndsl.load(write(tmp_path, net(Q7_VEC, DENSE), weights))
    messages = [w.message for w in model.compiled.range_warnings()]
    assert messages and all("(100% of its reachable range is clipped" in m for m in messages), messages


def random_format(rng: np.random.Generator) -> QFormat:
    bits = int(rng.integers(2, 17))
    frac = int(rng.integers(0, bits))
    return QFormat(bits - 1 - frac, frac)


def weighted_layer(rng: np.random.Generator, arrays: Arrays, name: str, kind: str, shape: tuple[int, ...],
                   fmt: QFormat) -> tuple[str, tuple[int, ...]]:
    """Random int8/int16 weights and a bias that keep every int32 sum below 2^30 + 2^29 (so the model loads)."""
    channels = shape[-1]
    rank = {"dense": 0, "conv1d": 1, "depthwise_conv1d": 1, "conv2d": 2, "depthwise_conv2d": 2}[kind]
    window = tuple(int(rng.integers(1, 4)) for _ in range(rank))
    outputs = int(rng.integers(1, 5))
    depthwise = kind.startswith("depthwise")
    kernel_shape = (channels, outputs) if rank == 0 else (*window, channels, outputs)
    taps = int(np.prod(window)) * (1 if depthwise else channels)
    storage = DType.I8 if rng.integers(2) else DType.I16
    limit = max(1, min(storage.bounds[1], 2**30 // (2 ** (fmt.bits - 1) * taps)))
    frac_w = int(rng.integers(0, 16))
    arrays.update(fixed(f"{name}.k", rng.integers(-limit, limit + 1, kernel_shape).astype(storage.numpy), frac_w))
    out_channels = channels * outputs if depthwise else outputs
    frac_acc = fmt.frac_bits + frac_w
    frac_b = int(rng.integers(0, frac_acc + 1))
    bias_storage = (DType.I8, DType.I16, DType.I32)[int(rng.integers(3))]
    top = 2 ** int(rng.integers(0, 31))  # any magnitude, up to what int32 holds once aligned
    bias_limit = min(bias_storage.bounds[1], 2**29 >> (frac_acc - frac_b), top)
    bias = rng.integers(-bias_limit, bias_limit + 1, out_channels).astype(bias_storage.numpy)
    arrays.update(fixed(f"{name}.b", bias, frac_b))
    padding = ", padding=same" if rank and rng.integers(2) else ""
    call = f"{kind}(%s, {name}.k, {name}.b{padding})"
    if rank == 0:
        return call, (out_channels,)
    spatial = shape[:-1] if padding else tuple(d - k + 1 for d, k in zip(shape[:-1], window, strict=True))
    return call, (*spatial, out_channels)


def random_fixed_network(rng: np.random.Generator, folder: Path) -> Path:
    """A dense or conv first layer, maybe a relu and an add of two formats, then flatten and a dense output."""
    arrays: Arrays = {}
    kind = str(rng.choice(["dense", "conv1d", "conv2d", "depthwise_conv1d", "depthwise_conv2d"]))
    rank = {"dense": 0, "conv1d": 1, "depthwise_conv1d": 1, "conv2d": 2, "depthwise_conv2d": 2}[kind]
    shape = (*(int(rng.integers(3, 7)) for _ in range(rank)), int(rng.integers(1, 5)))
    fmt = random_format(rng)
    lines = ["network p", 'weights "w.npz"', f"input x : {fmt.name}[{', '.join(map(str, shape))}]"]
    call, shape = weighted_layer(rng, arrays, "l0", kind, shape, fmt)
    fmt = random_format(rng)
    act = str(rng.choice(["", " -> relu", " -> relu6"]))
    lines.append(f"h = {call % 'x'}{act} : {fmt.name}")
    previous = "h"
    if rng.integers(2):
        other, total = random_format(rng), random_format(rng)
        lines += [f"r = relu(h) : {other.name}", f"s = add(h, r) : {total.name}"]
        previous, fmt = "s", total
    lines.append(f"f = flatten({previous})")
    call, _ = weighted_layer(rng, arrays, "out", "dense", (int(np.prod(shape)),), fmt)
    lines.append(f"output y = {call % 'f'} : {random_format(rng).name}")
    return write(folder, "\n".join(lines) + "\n", arrays, "p.nn")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_observed_accumulators_lie_inside_the_bounds(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = nndsl.load(random_fixed_network(rng, tmp_path))
    in_type = model.graph.input.type
    low, high = in_type.bounds
    inputs = rng.integers(low, high + 1, size=(48, *in_type.shape)).astype(in_type.dtype.numpy)
    inputs[0], inputs[1] = low, high
    seen = accumulators(model, inputs)
    assert set(seen) == {"h", "y"}
    for name, acc in seen.items():
        bounds = op_range(model, name).accumulator
        assert np.all(acc >= bounds.lo) and np.all(acc <= bounds.hi), name
    trace = model.trace(inputs)
    assert model.compiled.ranges is not None
    for result in model.compiled.ranges.ops:
        values = trace[result.op.output.name].astype(np.int64)
        assert np.all(values >= result.output.lo) and np.all(values <= result.output.hi), result.op.output.name
        out_low, out_high = result.op.output.type.bounds
        assert np.all(values >= out_low) and np.all(values <= out_high), result.op.output.name


# -- the interval table ------------------------------------------------------------------------------------------


def test_check_ranges_prints_real_valued_intervals(tmp_path: Path) -> None:
    """q7 x q7 weights (14 fraction bits), bias 2^-10 units aligned by 4, to q3.12 (>> 2), then q2.5 (>> 7)."""
    weights = dense_weights(bias=np.array([100, -200], np.int16), bias_frac=10)
    path = write(tmp_path, net(Q7_VEC, "h = dense(x, k, b) -> relu : q3.12", "output y = relu(h) : q2.5"), weights)
    result = nndsl_cli("check", "--ranges", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["layer", "op", "accumulator", "before", "clamp", "output", "(real)"]
    rows = {line.split()[0]: line for line in lines[2:] if line.split()}
    # Column 0 of k is (1, 3, 5, -7): at most 127 * 9 + 128 * 7 = 2039, + 100 << 4; column 1 at least
    # -128 * 16 - 127 * 4 = -2556, - 200 << 4. Rounded >> 2: 909.75 -> 910, -1439; relu: [0, 910] / 2^12.
    assert rows["h"].split()[1] == "dense"
    assert "[-5756, 3639]" in rows["h"] and "[-1439, 910]" in rows["h"] and "[0, 0.2222]" in rows["h"]
    # 910 >> 7 = 7.1 -> 7: 7 / 2^5 = 0.2188.
    assert "[0, 7]" in rows["y"] and "[0, 0.2188]" in rows["y"]
    assert lines[-2] == "accumulators: i32"
    assert lines[-1].endswith("ok (2 layers, 8 MACs)")


def test_inputs_outside_a_narrow_format_are_refused(tmp_path: Path) -> None:
    """q2.3 lives in int8 but holds [-32, 31]: the range proof assumes that, so 127 is an input error, not a run."""
    model = nndsl.load(write(tmp_path, net("input x : q2.3[2]", "output y = relu(x)")))
    assert model.run(np.array([-32, 31], np.int8)).tolist() == [0, 31]
    with pytest.raises(nndsl.InputError, match=r"input values must lie in q2.3's range \[-32, 31\], got -5..127"):
        model.run(np.array([127, -5], np.int8))
    with pytest.raises(nndsl.InputError, match=r"quantise it first: q = round\(x \* 2\^3\)"):
        model.run(np.array([1, 2], np.int16))


def test_conv_partial_sums_within_a_tap_are_checked(tmp_path: Path) -> None:
    """Three channels of +30000 * 30000 then three of -: each tap's total is 0, but the C adds one channel at a
    time, so a partial sum reaches 2.7e9. The bound must count every product, not each tap's sum."""
    k1 = np.zeros((1, 6, 1), np.int16)
    k1[0, :3, 0], k1[0, 3:, 0] = 30000, -30000
    arrays = {**fixed("k0", np.ones((1, 4, 6), np.int8), 0), **fixed("b0", np.full(6, 30000 << 7, np.int32), 7),
              **fixed("k1", k1, 0)}
    path = write(tmp_path, net("input x : q7[1, 4]", "h = conv1d(x, k0, b0) -> relu : q15.0",
                               "output y = conv1d(h, k1) : q15.0"), arrays)
    (error,) = errors_of(path)
    assert error.loc is not None and error.loc.line == 5
    assert "a partial sum of 'y' (before its bias) can reach [" in error.message and "beyond i32" in error.message
