"""The vectorised requantisation primitives against plain-integer transcriptions of TFLite's C++."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nndsl.qmath.requant import (
    INT32_MAX,
    INT32_MIN,
    activation_range,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

int32 = st.integers(INT32_MIN, INT32_MAX)


def c_div(a: int, b: int) -> int:
    """C's truncating integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm_reference(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def rdbpot_reference(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@given(int32, int32)
def test_srdhm_matches_reference(a: int, b: int) -> None:
    assert int(saturating_rounding_doubling_high_mul(a, b)) == srdhm_reference(a, b)


@given(int32, st.integers(0, 31))
def test_rdbpot_matches_reference(x: int, exponent: int) -> None:
    assert int(rounding_divide_by_pot(x, exponent)) == rdbpot_reference(x, exponent)


def test_rdbpot_rounds_halves_away_from_zero() -> None:
    assert rounding_divide_by_pot(np.array([5, -5, 6, -6, 7, -7]), 1).tolist() == [3, -3, 3, -3, 4, -4]


@settings(max_examples=300)
@given(st.integers(-(2**20), 2**20), st.floats(1e-6, 0.99))
def test_mbqm_approximates_real_product(x: int, real: float) -> None:
    multiplier, shift = quantize_multiplier(real)
    result = int(multiply_by_quantized_multiplier(x, multiplier, shift))
    assert abs(result - x * real) <= 1.0 + abs(x * real) * 2**-30


@given(st.floats(2**-30, 2**20, allow_nan=False))
def test_quantize_multiplier_is_q31_normalised(real: float) -> None:
    multiplier, shift = quantize_multiplier(real)
    assert 2**30 <= multiplier < 2**31
    assert math.isclose(multiplier * 2.0 ** (shift - 31), real, rel_tol=2**-30)


def test_quantize_multiplier_edges() -> None:
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2**-40) == (0, 0)  # below 2**-31 flushes to zero, as TFLite does
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    # A fraction that rounds up to 2**31 renormalises instead of overflowing.
    assert quantize_multiplier(1.0 - 2**-40) == (1 << 30, 1)


def test_activation_range_relu_and_relu6() -> None:
    assert activation_range(0.0, None, 0.05, -10, -128, 127) == (-10, 127)
    assert activation_range(0.0, 6.0, 0.05, -10, -128, 127) == (-10, 110)
    assert activation_range(0.0, 6.0, 0.01, 0, -128, 127) == (0, 127)  # 6 / 0.01 saturates
    assert activation_range(None, None, 0.5, 3, -128, 127) == (-128, 127)


@settings(max_examples=2000)
@given(st.integers(-(2**30) + 1, 2**30 - 1), st.integers(2**30 + 1, INT32_MAX), st.integers(-31, -1))
def test_mbqm_merged_form_equals_the_two_roundings(x: int, multiplier: int, shift: int) -> None:
    """Where multiply_by_quantized_multiplier takes its one-division form, it equals gemmlowp's two steps."""
    two_steps = rdbpot_reference(srdhm_reference(x, multiplier), -shift)
    assert int(multiply_by_quantized_multiplier(np.array([x]), multiplier, shift)[0]) == two_steps


def test_mbqm_merged_form_on_ties_and_both_paths() -> None:
    """Near rounding ties (x * m close to a multiple of 2^30), for multipliers the merged form takes (above
    2^30) and the ones it leaves to the two steps (exactly 2^30, zero, left shifts)."""
    xs = np.arange(-5000, 5000, dtype=np.int64)
    for multiplier in (2**30 + 1, 3 * 2**29, INT32_MAX, 2**30, 0):
        for shift in (-1, -2, -7, -31, 0, 2):
            got = multiply_by_quantized_multiplier(xs, multiplier, shift)
            left, right = max(shift, 0), max(-shift, 0)
            want = [rdbpot_reference(srdhm_reference(x << left, multiplier), right) for x in xs.tolist()]
            assert got.tolist() == want, (multiplier, shift)
