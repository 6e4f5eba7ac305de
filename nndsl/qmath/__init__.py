"""The integer semantics of every op, written once.

This package is the executable specification that both backends follow: the
NumPy backend calls these functions directly, and the C runtime in
``backends/c/runtime/`` mirrors them line for line (each C function names the
Python function it implements). The arithmetic is TensorFlow Lite Micro's
reference int8 arithmetic with its default double rounding, so that results
equal TensorFlow Lite Micro's byte for byte.
"""

from nndsl.qmath.requant import (
    INT32_MAX,
    INT32_MIN,
    Rounding,
    activation_range,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single,
    quantize_multiplier,
    quantize_multiplier_greater_than_one,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "Rounding",
    "activation_range",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_single",
    "quantize_multiplier",
    "quantize_multiplier_greater_than_one",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
]
