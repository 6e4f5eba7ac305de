"""int8 softmax: NumPy against TensorFlow Lite Micro, C against NumPy, bit for bit.

Every comparison is ``np.array_equal`` on the int8 outputs: zero differing
bytes, not a tolerance.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.qmath.fixedpoint import (
    count_leading_zeros,
    exp_on_interval_between_negative_one_quarter_and_0_excl,
    exp_on_negative_values,
    get_reciprocal,
    one_over_one_plus_x_for_x_in_0_1,
    rescale,
    rounding_half_sum,
    saturating_rounding_multiply_by_pot,
    select_using_mask,
)
from nndsl.qmath.requant import (
    multiply_by_quantized_multiplier,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)
from nndsl.qmath.softmax import (
    MAX_SAFE_DEPTH,
    SoftmaxS8Params,
    softmax_s8,
    softmax_s8_exp_table,
    softmax_s8_params,
)
from tests.c_harness import build_harness, run_harness
from tests.tflite_models import convert_keras, model_quantization, run_tflm


def edge_rows(depth: int) -> np.ndarray:
    """Rows that stress the kernel: ties, extremes, the widest spreads."""
    rows = [np.full(depth, v) for v in (-128, -1, 0, 127)]  # all equal
    one_hot = np.full(depth, -128)
    one_hot[depth // 2] = 127  # one 127, the rest -128
    rows.append(one_hot)
    rows.append(np.where(np.arange(depth) % 2 == 0, 127, -128))  # biggest spread, many maxima
    rows.append(np.resize(np.arange(-128, 128), depth))  # ramp
    rows.append(np.resize(np.arange(127, -129, -1), depth))
    near_max = np.full(depth, 126)
    near_max[0] = 127  # every other entry one step below the maximum
    rows.append(near_max)
    one_low = np.full(depth, 127)
    one_low[-1] = -128
    rows.append(one_low)
    return np.stack(rows).astype(np.int8)


def random_rows(rng: np.random.Generator, depth: int, count: int) -> np.ndarray:
    """Uniform rows plus rows with small spreads, where every term matters."""
    kind = rng.integers(3, size=count)
    spread = np.where(kind == 0, 255, rng.integers(1, np.where(kind == 1, 40, 256)))
    top = rng.integers(-128 + spread, 128)
    offsets = np.floor(rng.random((count, depth)) * (spread[:, None] + 1)).astype(np.int64)
    rows: np.ndarray = (top[:, None] - offsets).astype(np.int8)
    return rows


def tie_distance(rows: np.ndarray, params: SoftmaxS8Params) -> np.ndarray:
    """Per row, how near any output is to a rounding tie, in output steps (0 = exact tie).

    Only picks inputs: rows near a tie expose any deviation in the fixed-point
    internals, which the 8-bit output rounds away everywhere else.
    """
    values = rows.astype(np.int64)
    diff = values - values.max(axis=1, keepdims=True)
    in_range = diff >= params.diff_min
    scaled = multiply_by_quantized_multiplier(diff, params.multiplier, params.left_shift)
    exp_in_0 = exp_on_negative_values(scaled, 5)
    sums = wrap_int32(np.where(in_range, rescale(exp_in_0, 0, 12), 0).sum(axis=1, keepdims=True))
    shifted_scale, num_bits_over_unit = get_reciprocal(sums, 12)
    exponent = num_bits_over_unit + 23
    product = saturating_rounding_doubling_high_mul(shifted_scale, exp_in_0)
    fraction = (product & ((np.int64(1) << exponent) - 1)) / np.exp2(exponent.astype(np.float64))
    distance: np.ndarray = np.where(in_range, np.abs(fraction - 0.5), 1.0).min(axis=1)
    return distance


def near_tie_rows(rng: np.random.Generator, params: SoftmaxS8Params, depth: int, keep: int) -> np.ndarray:
    """The ``keep`` rows nearest a rounding tie among many random candidates."""
    candidates = random_rows(rng, depth, max(4000, 400_000 // depth))
    order = np.argsort(tie_distance(candidates, params), kind="stable")
    selected: np.ndarray = candidates[order[:keep]]
    return selected


# --------------------------------------------------------------------------
# NumPy against TensorFlow Lite Micro
# --------------------------------------------------------------------------


def convert_softmax_model(tf: Any, depth: int, low: float, high: float, seed: int) -> bytes:
    """``Input((depth,)) -> Softmax`` converted to a full-int8 TFLite model."""
    inputs = tf.keras.Input((depth,))
    model = tf.keras.Model(inputs, tf.keras.layers.Softmax()(inputs))
    return convert_keras(tf, model, [(depth,)], [(low, high)], seed, samples=32)


# (depth, representative-data range): input scales from ~0.002 to ~39; from 32 on the
# real multiplier is capped at 2**31 - 1 (left shift 31, diff_min 0).
TFLM_CASES = [
    (1, -1.0, 1.0),
    (2, -1.0, 1.0),
    (3, -8.0, 8.0),
    (10, -0.3, 0.3),
    (10, -2.0, 30.0),
    (10, -2500.0, 2500.0),
    (5, -5000.0, 5000.0),
    (37, -4.0, 4.0),
    (37, -120.0, 60.0),
    (100, -12.0, 12.0),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("depth", "low", "high"), TFLM_CASES)
def test_numpy_matches_tflite_micro(tflite: Any, depth: int, low: float, high: float) -> None:
    model = convert_softmax_model(tflite, depth, low, high, seed=depth)
    input_scale, _, output_scale, output_zero_point = model_quantization(model)
    assert (output_scale, output_zero_point) == (1.0 / 256.0, -128)
    params = softmax_s8_params(input_scale)

    rng = np.random.default_rng(1000 + depth)
    parts = [edge_rows(depth), random_rows(rng, depth, 300)]
    if depth > 1:
        parts.append(near_tie_rows(rng, params, depth, 200))
    batch = np.concatenate(parts)
    expected = run_tflm(model, batch[:, None], arena_size=64 * 1024).reshape(len(batch), -1)
    got = softmax_s8(batch, params)
    assert got.dtype == np.int8
    # Bit-exact: zero differing bytes.
    if not np.array_equal(got, expected):
        bad = np.flatnonzero((got != expected).any(axis=1))
        pytest.fail(
            f"scale {input_scale!r} {params}: {bad.size} rows differ, first input "
            f"{batch[bad[0]].tolist()} tflm {expected[bad[0]].tolist()} numpy {got[bad[0]].tolist()}"
        )
    if depth > 1:
        assert len(np.unique(expected)) > 3, "outputs too uniform to test anything"


_ABORT_SCRIPT = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
rows = np.load(sys.argv[2])
it = runtime.Interpreter.from_bytes(model, arena_size=256 * 1024)
for row in rows:
    it.set_input(row.reshape(1, -1), 0)
    it.invoke()
    sys.stdout.write(" ".join(str(v) for v in np.asarray(it.get_output(0)).reshape(-1)) + "\\n")
    sys.stdout.flush()
"""


@pytest.mark.tensorflow
def test_numpy_raises_exactly_where_tflite_micro_aborts(tflite: Any, tmp_path: Path) -> None:
    """Depth 512: a row just under a 2**28 sum of exponentials runs, a row of ties aborts."""
    depth = MAX_SAFE_DEPTH + 1
    model = convert_softmax_model(tflite, depth, -3.0, 3.0, seed=7)
    input_scale = model_quantization(model)[0]
    params = softmax_s8_params(input_scale)
    below = np.full(depth, 40, dtype=np.int8)
    below[3] = 39
    ties = np.full(depth, 40, dtype=np.int8)
    (tmp_path / "model.tflite").write_bytes(model)
    np.save(tmp_path / "rows.npy", np.stack([below, ties]))
    proc = subprocess.run(
        [sys.executable, "-c", _ABORT_SCRIPT, str(tmp_path / "model.tflite"), str(tmp_path / "rows.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGABRT, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, "the row below the limit must run, the row of ties must abort"
    expected_below = np.array([int(v) for v in lines[0].split()], dtype=np.int8)
    assert np.array_equal(softmax_s8(below, params), expected_below)
    with pytest.raises(ValueError, match="TFLM aborts"):
        softmax_s8(ties, params)


# --------------------------------------------------------------------------
# C against NumPy
# --------------------------------------------------------------------------

RUN_CASES = r"""
static int8_t in_buf[1 << 20];
static int8_t out_buf[1 << 20];
static int32_t exp_table[256];

/* One row of int32 results per (a, b) pair: see fixed_point_columns in the test. */
static int run_fixed(FILE *in, FILE *out, int32_t count)
{
    static const int32_t exp_integer_bits[5] = {0, 2, 5, 6, 10};
    static const int32_t pot_exponents[7] = {-31, -12, -1, 1, 2, 12, 30};
    int32_t i;
    int32_t j;
    for (i = 0; i < count; ++i) {
        int32_t a, b, bits;
        int32_t r[20];
        int32_t k = 0;
        if (!read_i32(in, &a) || !read_i32(in, &b)) {
            return 4;
        }
        for (j = 0; j < 5; ++j) {
            r[k++] = nn_exp_on_negative_values(a, exp_integer_bits[j]);
        }
        r[k++] = nn_exp_on_interval_between_negative_one_quarter_and_0_excl(b);
        r[k++] = nn_one_over_one_plus_x_for_x_in_0_1(a);
        r[k++] = nn_get_reciprocal(a, 12, &bits);
        r[k++] = bits;
        r[k++] = nn_rounding_half_sum(a, b);
        for (j = 0; j < 7; ++j) {
            r[k++] = nn_saturating_rounding_multiply_by_pot(a, pot_exponents[j]);
        }
        r[k++] = nn_count_leading_zeros((uint32_t)a);
        r[k++] = nn_select_using_mask(b, a, ~a);
        if (fwrite(r, sizeof r[0], (size_t)k, out) != (size_t)k) {
            return 6;
        }
    }
    return 0;
}

/* Per case an op code: 0 (softmax) then rows, depth, multiplier, left_shift, diff_min (int32) and
 * rows x depth int8 values -> as many int8 outputs; 2 (its table form) then rows, depth, diff_min,
 * a length n, n int32 exponentials and the values; 1 (the fixed-point primitives) then a count
 * and that many (a, b) int32 pairs -> run_fixed's rows. */
static int run_cases(FILE *in, FILE *out, int32_t cases)
{
    int32_t k;
    for (k = 0; k < cases; ++k) {
        int32_t op, rows, depth, multiplier, left_shift, diff_min;
        size_t count;
        if (!read_i32(in, &op)) {
            return 4;
        }
        if (op == 1) {
            int32_t pairs;
            int status;
            if (!read_i32(in, &pairs)) {
                return 4;
            }
            status = run_fixed(in, out, pairs);
            if (status != 0) {
                return status;
            }
            continue;
        }
        if (op == 2) {  /* the table form: diff_min, then a length and that many exponentials */
            int32_t entries;
            if (!read_i32(in, &rows) || !read_i32(in, &depth) || !read_i32(in, &diff_min)
                || !read_i32(in, &entries) || entries < 1 || entries > 256
                || fread(exp_table, sizeof exp_table[0], (size_t)entries, in) != (size_t)entries) {
                return 4;
            }
        } else if (op != 0 || !read_i32(in, &rows) || !read_i32(in, &depth) || !read_i32(in, &multiplier)
                   || !read_i32(in, &left_shift) || !read_i32(in, &diff_min)) {
            return 4;
        }
        count = (size_t)rows * (size_t)depth;
        if (count > sizeof in_buf || fread(in_buf, 1, count, in) != count) {
            return 5;
        }
        memset(out_buf, 0x55, count);
        if (op == 2) {
            nn_softmax_table_s8(in_buf, out_buf, rows, depth, diff_min, exp_table);
        } else {
            nn_softmax_s8(in_buf, out_buf, rows, depth, multiplier, left_shift, diff_min);
        }
        if (fwrite(out_buf, 1, count, out) != count) {
            return 6;
        }
    }
    return 0;
}
"""
SOFTMAX_OP, FIXED_OP, TABLE_OP = 0, 1, 2


@pytest.fixture(scope="module")
def c_softmax(compiler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C runtime's softmax, compiled with sanitisers into a file-to-file harness."""
    return build_harness(tmp_path_factory.mktemp("softmax_c"), ["requant.c", "fixedpoint.c", "softmax.c"], RUN_CASES,
                         macros=["NN_USE_SOFTMAX_S8", "NN_USE_SOFTMAX_TABLE_S8"], compiler=compiler)


Case = tuple[np.ndarray, SoftmaxS8Params]


def run_c(binary: Path, cases: list[Case], work: Path, table: bool = False) -> list[np.ndarray]:
    """The C softmax on each case: nn_softmax_s8, or with ``table`` nn_softmax_table_s8 given the case's
    exponential table."""
    chunks = [np.array([len(cases)], dtype="<i4").tobytes()]
    for rows, p in cases:
        header = [SOFTMAX_OP, rows.shape[0], rows.shape[1], p.multiplier, p.left_shift, p.diff_min]
        if table:
            exps = softmax_s8_exp_table(p)
            header = [TABLE_OP, rows.shape[0], rows.shape[1], p.diff_min, len(exps), *exps]
        chunks.append(np.array(header, dtype="<i4").tobytes())
        chunks.append(np.ascontiguousarray(rows, dtype=np.int8).tobytes())
    flat = np.frombuffer(run_harness(binary, b"".join(chunks), work), dtype=np.int8)
    outputs, offset = [], 0
    for rows, _ in cases:
        outputs.append(flat[offset : offset + rows.size].reshape(rows.shape))
        offset += rows.size
    assert offset == flat.size
    return outputs


@pytest.mark.parametrize("table", [False, True], ids=["computed", "table"])
def test_c_matches_numpy(c_softmax: Path, tmp_path: Path, table: bool) -> None:
    rng = np.random.default_rng(20240611)
    cases: list[Case] = []
    # Random scales in [1e-3, 1] (as float32, like a model's), beta 1.
    for _ in range(300):
        scale = float(np.float32(math.exp(rng.uniform(math.log(1e-3), math.log(1.0)))))
        depth = int(rng.choice([1, 2, 3, 5, 10, 16, 37, 64, 100, 255, 256, 511]))
        count = int(rng.integers(1, 8))
        cases.append((random_rows(rng, depth, count), softmax_s8_params(scale)))
    # Scales outside that range too: tiny multipliers, and the cap at 2**31 - 1 (left shift 31).
    for scale in (2e-8, 1e-5, 2.0, 10.0, 31.9, 32.0, 1000.0):
        for depth in (1, 7, 100, 511):
            rows = np.concatenate([edge_rows(depth), random_rows(rng, depth, 5)])
            cases.append((rows, softmax_s8_params(float(np.float32(scale)))))
    # Rows next to a rounding tie, where a deviation anywhere inside shows.
    for scale in (0.004, 0.03, 0.2, 0.9):
        for depth in (2, 10, 37):
            p = softmax_s8_params(float(np.float32(scale)))
            cases.append((near_tie_rows(rng, p, depth, 60), p))
    assert sum(rows.shape[0] for rows, _ in cases) >= 1000
    assert len({p for _, p in cases}) > 250

    got = run_c(c_softmax, cases, tmp_path, table)
    # Bit-exact: zero differing bytes in every case.
    differing = [
        (index, p)
        for index, ((rows, p), c_out) in enumerate(zip(cases, got, strict=True))
        if not np.array_equal(c_out, softmax_s8(rows, p))
    ]
    assert differing == []


def test_c_row_of_ties_past_the_safe_depth(c_softmax: Path, tmp_path: Path) -> None:
    """Where NumPy raises (TFLM aborts) the C kernel, which cannot, writes -128; other rows are unaffected."""
    params = softmax_s8_params(float(np.float32(0.05)))
    depth = MAX_SAFE_DEPTH + 1
    ties = np.full((1, depth), 3, dtype=np.int8)
    with pytest.raises(ValueError, match="TFLM aborts"):
        softmax_s8(ties, params)
    rows = np.stack([np.resize(np.arange(-128, 128), depth).astype(np.int8), ties[0]])
    c_out = run_c(c_softmax, [(rows, params)], tmp_path)[0]
    assert np.array_equal(c_out[0], softmax_s8(rows[:1], params)[0])
    assert np.all(c_out[1] == -128)


def fixed_point_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The NumPy side of the harness's fixed-point op, column for column."""
    columns = [exp_on_negative_values(a, bits) for bits in (0, 2, 5, 6, 10)]
    columns.append(exp_on_interval_between_negative_one_quarter_and_0_excl(b))
    columns.append(one_over_one_plus_x_for_x_in_0_1(a))
    columns.extend(get_reciprocal(a, 12))
    columns.append(rounding_half_sum(a, b))
    columns.extend(saturating_rounding_multiply_by_pot(a, e) for e in (-31, -12, -1, 1, 2, 12, 30))
    columns.append(count_leading_zeros(a))
    columns.append(select_using_mask(b, a, ~a))
    return np.stack(columns, axis=1)


def test_c_fixed_point_primitives_match_numpy(c_softmax: Path, tmp_path: Path) -> None:
    """Each C primitive on raw int32 values, including out-of-domain ones where both wrap."""
    rng = np.random.default_rng(99)
    special = np.array([0, 1, -1, 2**31 - 1, -(2**31), 2**30, -(2**30), 2**26, -(2**26), 2**19, 2**28])
    a = np.concatenate([special, -np.arange(0, 5000), rng.integers(-(2**31), 2**31, 30000)])
    a = np.concatenate([a, -np.abs(rng.integers(0, 2**31, 20000))])
    b = np.concatenate([np.resize(special, a.size // 2), rng.integers(-(2**29), 0, a.size - a.size // 2)])
    data = np.concatenate([[1, FIXED_OP, a.size], np.stack([a, b], axis=1).reshape(-1)]).astype("<i4")
    expected = fixed_point_columns(a.astype(np.int64), b.astype(np.int64))
    got = np.frombuffer(run_harness(c_softmax, data.tobytes(), tmp_path), dtype="<i4").reshape(expected.shape)
    bad_columns = sorted({int(c) for c in np.nonzero(got != expected)[1]})
    assert bad_columns == [], f"columns differing: {bad_columns}"


# --------------------------------------------------------------------------
# Parameters, worked out by hand
# --------------------------------------------------------------------------


def test_softmax_s8_params_by_hand() -> None:
    # 1.0 * 2**26 = 0.5 * 2**27; radius floor(31 * 2**26 / 2**27) = 15.
    assert softmax_s8_params(1.0) == SoftmaxS8Params(multiplier=2**30, left_shift=27, diff_min=-15)
    # 32 * 2**26 = 2**31 is capped at 2**31 - 1 = (1 - 2**-31) * 2**31; radius floor(31/32) = 0.
    assert softmax_s8_params(32.0) == SoftmaxS8Params(multiplier=2**31 - 1, left_shift=31, diff_min=0)
    # float32(0.1) * 2**26 = 6710886.5 = 0.80000001192... * 2**23 (the double 0.1 would give
    # 0.79999999... and multiplier 1717986918); radius floor(31 * 2**26 / 2**23) = 248.
    assert softmax_s8_params(0.1) == SoftmaxS8Params(multiplier=1717986944, left_shift=23, diff_min=-248)
    assert softmax_s8_params(0.1) == softmax_s8_params(float(np.float32(0.1)))
    # beta * scale * 2**26 <= 1: TFLM's QuantizeMultiplierGreaterThanOne check fails.
    with pytest.raises(ValueError):
        softmax_s8_params(1e-9)


# --------------------------------------------------------------------------
# The fixed-point pieces against floating point
# --------------------------------------------------------------------------


def test_exp_on_negative_values_approximates_exp() -> None:
    raw = np.concatenate([np.arange(-5000, 1), np.random.default_rng(3).integers(-(2**31), 0, 20000)])
    got = exp_on_negative_values(raw, 5) / 2.0**31
    # The Taylor expansion around -1/8 is off by up to ~2.3e-7 just below 0.
    assert np.max(np.abs(got - np.exp(raw / 2.0**26))) < 3e-7
    assert exp_on_negative_values(np.array([0]), 5)[0] == 2**31 - 1


def test_one_over_one_plus_x_and_reciprocal() -> None:
    raw = np.random.default_rng(4).integers(0, 2**31, 20000)
    got = one_over_one_plus_x_for_x_in_0_1(raw) / 2.0**31
    assert np.max(np.abs(got - 1.0 / (1.0 + raw / 2.0**31))) < 1e-8
    sums = np.random.default_rng(5).integers(1, 2**31, 20000)
    scale, bits = get_reciprocal(sums, 12)
    approx = scale / 2.0 ** (31 + bits)
    assert np.max(np.abs(approx * (sums / 2.0**19) - 1.0)) < 1e-8


def test_count_leading_zeros() -> None:
    values = [0, 1, 2, 3, 2**19, 2**31 - 1, 2**31, 2**32 - 1, -1, -(2**31)]
    expected = [32 - (v & 0xFFFFFFFF).bit_length() for v in values]
    assert count_leading_zeros(np.array(values)).tolist() == expected
