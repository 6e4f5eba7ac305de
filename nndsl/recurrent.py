"""Lowering of the recurrent layers' fixed-point form: a GRU's shifts, aligned biases and tables.

Kept apart from :mod:`nndsl.lower` (which calls :func:`lower_gru_q`) so that
the recurrent family's lowering reads in one place.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nndsl import ir
from nndsl.kernels import GruQ
from nndsl.qmath.gru import GruWeights, gru_q_params, input_sum_frac, recurrent_sum_frac
from nndsl.types import QFormat


def _format(tensor: ir.Tensor) -> QFormat:
    fmt = tensor.type.fixed
    assert fmt is not None, f"{tensor.name} is not fixed point"
    return fmt


def _aligned(values: np.ndarray, bias_frac: int, sum_frac: int, what: str) -> tuple[int, ...]:
    """A bias moved to its sum's fraction bits by an exact left shift."""
    left = sum_frac - bias_frac
    if left < 0:
        raise ValueError(f"the bias has {bias_frac} fraction bits, more than the {what} sum's {sum_frac}: "
                         f"give it at most {sum_frac}")
    return tuple(int(v) << left for v in values.reshape(-1))


def lower_gru_q(op: ir.Gru) -> ir.Gru:
    """``op`` with its fixed-point record; ``ValueError`` (its message for the user) when a bias has too many
    fraction bits or a sum could overflow."""
    x_fmt, k_fmt, u_fmt, out_fmt = (_format(t) for t in (op.input, op.kernel, op.recurrent, op.output))
    weights = op.weights()
    bias_frac = _format(op.bias).frac_bits if op.bias is not None else 0
    fx, fh = input_sum_frac(x_fmt.frac_bits, k_fmt.frac_bits), recurrent_sum_frac(u_fmt.frac_bits)
    bias = _aligned(weights.bias, bias_frac, fx, "input")
    recurrent_bias = _aligned(weights.recurrent_bias, bias_frac, fh, "recurrent")
    aligned = GruWeights(weights.kernel, weights.recurrent, np.asarray(bias, dtype=np.int64),
                         np.asarray(recurrent_bias, dtype=np.int64))
    params = gru_q_params(aligned, x_fmt.frac_bits, -x_fmt.bounds[0], k_fmt.frac_bits, u_fmt.frac_bits,
                          out_fmt.frac_bits, out_fmt.bounds)
    widths = (op.input.type.dtype.size, op.kernel.type.dtype.size, op.recurrent.type.dtype.size,
              op.output.type.dtype.size)
    record = GruQ(op.steps, op.features, op.units, op.return_sequences, op.reset_after, params, bias,
                  recurrent_bias, widths)
    return replace(op, impl=record)
