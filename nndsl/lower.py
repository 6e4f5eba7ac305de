"""Lowering: give every int8 op the integer parameters of its kernel.

This is where real-valued scales become TensorFlow Lite Micro's fixed-point
multipliers, shifts, offsets and clamps, computed exactly as its kernels'
``Prepare`` steps do, so that both backends only run integer arithmetic.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nndsl import ir
from nndsl.diagnostics import DiagnosticSink
from nndsl.qmath.requant import activation_range, quantize_multiplier
from nndsl.qmath.softmax import softmax_s8_params
from nndsl.types import DType, Quant

# mbqm(x, 2**30, 1) == x for every int32 x: the requantisation of an unchanged scale.
IDENTITY_MULTIPLIER = (1 << 30, 1)


def _multipliers(op: ir.Op, real: list[float], sink: DiagnosticSink) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Quantised multipliers of an op's output stage; one error for all unrepresentable channels."""
    pairs = [quantize_multiplier(value) for value in real]
    too_small = [value for value, (multiplier, _) in zip(real, pairs, strict=True) if multiplier == 0]
    too_large = [value for value, (_, shift) in zip(real, pairs, strict=True) if shift > 30]
    channels = "" if len(real) == 1 else " (channels: {count} of {total})"
    if too_small:
        where = channels.format(count=len(too_small), total=len(real))
        sink.error(op.loc, f"requantisation multiplier {min(too_small):.3g} of '{op.output.name}' is below 2^-31 "
                   f"and rounds to zero{where}: its output scale is too large for its inputs")
    if too_large:
        where = channels.format(count=len(too_large), total=len(real))
        sink.error(op.loc, f"requantisation multiplier {max(too_large):.3g} of '{op.output.name}' is 2^31 or more "
                   f"and cannot be represented{where}: its output scale is too small")
    return tuple(m for m, _ in pairs), tuple(s for _, s in pairs)


def _quant(tensor: ir.Tensor) -> Quant:
    assert tensor.type.quant is not None, f"{tensor.name} is not quantised"
    return tensor.type.quant


def _dense_scales(op: ir.Dense) -> list[float]:
    """``input_scale * kernel_scale[c] / output_scale`` as TFLM computes it.

    Per channel the float32 scales are widened to double before multiplying;
    per tensor (``GetQuantizedConvolutionMultipler``) the input and kernel
    scales are multiplied in float32 first.
    """
    in_scale, out_scale = _quant(op.input).scale, _quant(op.output).scale
    kernel = _quant(op.kernel)
    if kernel.axis is None:
        product = float(np.float32(in_scale) * np.float32(kernel.scale))
        return [product / out_scale]
    return [in_scale * s / out_scale for s in kernel.scales]


def _output_clamp(tensor: ir.Tensor, activation: ir.ActivationKind) -> tuple[int, int]:
    quant = _quant(tensor)
    low, high = activation.real_range
    qmin, qmax = tensor.type.dtype.bounds
    return activation_range(low, high, quant.scale, quant.zero_point, qmin, qmax)


def lower_op(op: ir.Op, sink: DiagnosticSink) -> ir.Op:
    if op.input.type.dtype is DType.F32:
        return op
    match op:
        case ir.Dense():
            multipliers, shifts = _multipliers(op, _dense_scales(op), sink)
            act_min, act_max = _output_clamp(op.output, op.activation)
            requant = ir.Requant(-_quant(op.input).zero_point, _quant(op.output).zero_point,
                                 multipliers, shifts, act_min, act_max)
            return replace(op, requant=requant)
        case ir.Activation():
            in_q, out_q = _quant(op.input), _quant(op.output)
            if op.activation is ir.ActivationKind.RELU6:  # TFLM's Relu6 clamps without rescaling
                multipliers, shifts = (IDENTITY_MULTIPLIER[0],), (IDENTITY_MULTIPLIER[1],)
            else:
                multipliers, shifts = _multipliers(op, [in_q.scale / out_q.scale], sink)
            act_min, act_max = _output_clamp(op.output, op.activation)
            requant = ir.Requant(-in_q.zero_point, out_q.zero_point, multipliers, shifts, act_min, act_max)
            return replace(op, requant=requant)
        case ir.Softmax():
            return replace(op, params=softmax_s8_params(_quant(op.input).scale, op.beta))
        case ir.Reshape():
            return op
    raise AssertionError(f"lower_op: unhandled op {type(op).__name__}")


def lower(graph: ir.Graph, sink: DiagnosticSink) -> ir.Graph:
    """The graph with integer parameters on every int8 op (errors in ``sink``)."""
    return replace(graph, ops=[lower_op(op, sink) for op in graph.ops])
