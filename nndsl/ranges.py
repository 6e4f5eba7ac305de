"""Fixed-point range analysis: what every integer op can reach, proven by interval arithmetic.

Each tensor gets an interval per element, starting from the input type's
whole range. A dense or convolution layer's accumulator interval sums, per
output element, the extreme products of each weight with its input's
interval (a padded tap contributes exactly zero), so the bound is sound and,
for a layer fed directly by the input, attained: the input that takes each
value's end matching its weight's sign reaches it. Ops that are monotonic in
their inputs (requantisation, pools, add, mean...) are bounded by running the
NumPy backend's own kernels on the interval ends; other element-wise functions
by evaluating them on every value in range. Softmax is bounded by its type, a
fixed-point one by [0, 1] (fixed-point tanh and sigmoid are monotonic).

Then:
- an accumulator (or partial sum) outside its width is an error;
- a requantised value the output format clips, where no activation meant it
  to be clipped, is a warning that says how much real range is lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.backend import backend
from nndsl.diagnostics import DiagnosticSink, WarningFlag
from nndsl.ir import assert_never
from nndsl.kernels import AddQ, BinaryQ, GruQ, SoftmaxQ
from nndsl.qmath.requant import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_int64
from nndsl.qmath.shift import aligned_sum, binary_q_raw, shift_round
from nndsl.types import DType
from nndsl.windows import output_hw, window_taps

Array = npt.NDArray[Any]
ACCUMULATOR_BITS = 32
# 16x8 kernels accumulate in int64, but their requantisation takes |acc| < 2**47 only.
WIDE_ACCUMULATOR_BITS = 48


@dataclass(frozen=True)
class Interval:
    """Per-element bounds (arrays of the tensor's shape)."""

    lo: Array
    hi: Array

    @property
    def bounds(self) -> tuple[int, int]:
        return int(self.lo.min()), int(self.hi.max())


@dataclass(frozen=True)
class OpRange:
    """What the analysis found for one op."""

    op: ir.Op
    accumulator: Interval | None  # dense and conv: the int32 sum, bias included
    partial: tuple[int, int] | None  # the widest any partial sum of the products can get (bias comes last)
    before_clamp: Interval | None  # the requantised value before the output clamp
    output: Interval


@dataclass(frozen=True)
class RangeReport:
    ops: tuple[OpRange, ...]
    accumulator_bits: int

    def for_output(self, name: str) -> OpRange:
        return next(r for r in self.ops if r.op.output.name == name)


def _full(tensor: ir.Tensor) -> Interval:
    return _constant(tensor, *tensor.type.bounds)


def _constant(tensor: ir.Tensor, low: int, high: int) -> Interval:
    shape = tensor.type.shape
    return Interval(np.full(shape, low, dtype=np.int64), np.full(shape, high, dtype=np.int64))


def _unbounded(tensor: ir.Tensor) -> Interval:
    """A float tensor of an integer network (its input before the quantize): no integer bounds to track."""
    zeros = np.zeros(tensor.type.shape, dtype=np.int64)
    return Interval(zeros, zeros)


def _products(lo: Array, hi: Array, weights: Array) -> tuple[Array, Array]:
    """Elementwise extreme products of inputs in [lo, hi] with weights (broadcast)."""
    a, b = lo * weights, hi * weights
    return np.minimum(a, b), np.maximum(a, b)


def _dense_terms(op: ir.Dense, x: Interval, offset: int) -> tuple[Array, Array]:
    assert op.kernel.data is not None
    kernel = op.kernel.data.astype(np.int64)
    return _products((x.lo + offset)[..., :, np.newaxis], (x.hi + offset)[..., :, np.newaxis], kernel)


def _conv_terms(op: ir.Conv, x: Interval, offset: int) -> list[tuple[Array, Array, Array, Array]]:
    """Per kernel tap, at every output position ([1, OH, OW, O]): the extreme sums of its products, and
    the sums of their negative and positive extremes (the C adds products one input channel at a time, so
    a partial sum can pass through any subset of a tap's channels)."""
    assert op.kernel.data is not None
    kernel = op.kernel.data.astype(np.int64)
    kernel = kernel.reshape((1, *kernel.shape)) if op.window.rank == 1 else kernel
    out_hw = output_hw(op, op.window)
    lo_taps = window_taps((x.lo + offset)[np.newaxis], op.window, out_hw, 0)
    hi_taps = window_taps((x.hi + offset)[np.newaxis], op.window, out_hw, 0)
    terms = []
    for ((ky, kx), lo), (_, hi) in zip(lo_taps, hi_taps, strict=True):
        t_lo, t_hi = _products(lo[..., :, np.newaxis], hi[..., :, np.newaxis], kernel[ky, kx])
        if op.depthwise:  # [.., C, M] -> [.., C * M]: one product per output
            t_lo, t_hi = t_lo.reshape((*t_lo.shape[:-2], -1)), t_hi.reshape((*t_hi.shape[:-2], -1))
            terms.append((t_lo, t_hi, np.minimum(t_lo, 0), np.maximum(t_hi, 0)))
        else:  # sum over input channels
            terms.append((t_lo.sum(axis=-2), t_hi.sum(axis=-2), np.minimum(t_lo, 0).sum(axis=-2),
                          np.maximum(t_hi, 0).sum(axis=-2)))
    return terms


def _weighted(op: ir.Dense | ir.Conv, x: Interval) -> OpRange:
    assert op.requant is not None
    offset = op.requant.input_offset
    if isinstance(op, ir.Dense):
        t_lo, t_hi = _dense_terms(op, x, offset)
        acc_lo, acc_hi = t_lo.sum(axis=-2), t_hi.sum(axis=-2)
        partial = (int(np.minimum(t_lo, 0).sum(axis=-2).min()), int(np.maximum(t_hi, 0).sum(axis=-2).max()))
    else:
        terms = _conv_terms(op, x, offset)
        acc_lo = np.sum([t[0] for t in terms], axis=0)[0]
        acc_hi = np.sum([t[1] for t in terms], axis=0)[0]
        partial_lo = np.sum([t[2] for t in terms], axis=0)
        partial_hi = np.sum([t[3] for t in terms], axis=0)
        partial = (int(np.min(partial_lo)), int(np.max(partial_hi)))
        acc_lo, acc_hi = acc_lo.reshape(op.output.type.shape), acc_hi.reshape(op.output.type.shape)
    if op.bias is not None and op.bias.data is not None:
        bias = op.bias.data.astype(np.int64)
        acc_lo, acc_hi = acc_lo + bias, acc_hi + bias
    accumulator = Interval(acc_lo, acc_hi)
    requant = op.requant
    if isinstance(requant, ir.ShiftRequant):
        return _output_stage(op, accumulator, partial, requant)
    multipliers = np.asarray(requant.multipliers, dtype=np.int64)
    shifts = np.asarray(requant.shifts, dtype=np.int64)
    multiply: Callable[[Array, Array, Array], Array] = functools.partial(
        multiply_by_quantized_multiplier, rounding=requant.rounding
    )
    limit = 2**31 - 1
    if op.output.type.dtype is DType.I16:  # int64 accumulators, TFLite's 48-bit-input multiply
        limit, multiply = 2**47 - 1, multiply_by_quantized_multiplier_int64
    before = Interval(
        multiply(np.clip(acc_lo, -limit, limit), multipliers, shifts) + requant.output_offset,
        multiply(np.clip(acc_hi, -limit, limit), multipliers, shifts) + requant.output_offset,
    )
    output = Interval(np.clip(before.lo, requant.act_min, requant.act_max),
                      np.clip(before.hi, requant.act_min, requant.act_max))
    return OpRange(op, accumulator, partial, before, output)


def _output_stage(op: ir.Op, accumulator: Interval, partial: tuple[int, int] | None,
                  requant: ir.ShiftRequant) -> OpRange:
    """A fixed-point op's int32 value, shifted (monotonic), then clamped."""
    limit = 2**31 - 1  # an overflowing accumulator is reported; the shift is shown on the saturated value
    before = Interval(shift_round(np.clip(accumulator.lo, -limit - 1, limit), requant.shift),
                      shift_round(np.clip(accumulator.hi, -limit - 1, limit), requant.shift))
    output = Interval(np.clip(before.lo, requant.act_min, requant.act_max),
                      np.clip(before.hi, requant.act_min, requant.act_max))
    return OpRange(op, accumulator, partial, before, output)


def _fixed_add(op: ir.Add, add: AddQ, a: Interval, b: Interval) -> OpRange:
    """The aligned int32 sum of a fixed-point add is its accumulator (sums are monotonic in both inputs)."""
    total = Interval(aligned_sum(a.lo, b.lo, add.params), aligned_sum(a.hi, b.hi, add.params))
    stage = ir.ShiftRequant(add.params.shift, add.act_min, add.act_max)
    return _output_stage(op, total, total.bounds, stage)


def _fixed_binary(op: ir.Binary, kernel: BinaryQ, inputs: list[Interval]) -> OpRange:
    """A fixed-point binary op's int32 value before its shift is its accumulator: its extremes lie at the corners
    of the two operands' intervals (each op is monotonic or bilinear in them), except a squared difference's
    least value, 0 where the difference can change sign."""
    a, b = _operand_intervals(op, inputs)
    corners = [binary_q_raw(x, y, kernel.params) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    lo, hi = np.minimum.reduce(corners), np.maximum.reduce(corners)
    if kernel.params.op == "squared_difference":
        difference = Interval(binary_q_raw(a.lo, b.hi, replace(kernel.params, op="sub")),
                              binary_q_raw(a.hi, b.lo, replace(kernel.params, op="sub")))
        lo = np.where((difference.lo <= 0) & (difference.hi >= 0), 0, lo)
    raw = Interval(lo, hi)
    return _output_stage(op, raw, raw.bounds, ir.ShiftRequant(kernel.params.shift, kernel.act_min, kernel.act_max))


def _operand_intervals(op: ir.Binary, inputs: list[Interval]) -> tuple[Interval, Interval]:
    """Both operands' intervals broadcast to the output's shape (a constant's are its values)."""
    shape = op.output.type.shape
    computed = iter(inputs)
    intervals = []
    for tensor in op.operands:
        given = next(computed) if tensor.data is None else Interval(tensor.data.astype(np.int64),
                                                                     tensor.data.astype(np.int64))
        intervals.append(Interval(np.broadcast_to(given.lo, shape), np.broadcast_to(given.hi, shape)))
    return intervals[0], intervals[1]


def _run(op: ir.Op, *values: Array) -> Array:
    result: Array = backend("numpy").run_op(op, *(v[np.newaxis] for v in values))[0]
    return result.astype(np.int64)


def _monotonic(op: ir.Op, inputs: list[Interval]) -> OpRange:
    """Ops non-decreasing in every input: the output's ends are the kernel run on the inputs' ends."""
    lo = _run(op, *(i.lo.astype(op.input.type.dtype.numpy) for i in inputs))
    hi = _run(op, *(i.hi.astype(op.input.type.dtype.numpy) for i in inputs))
    return OpRange(op, None, None, None, Interval(lo, hi))


def _elementwise(op: ir.Op, x: Interval) -> OpRange:
    """Any element-wise function: its extremes over every integer in each element's interval."""
    low, high = op.input.type.dtype.bounds
    values = np.arange(low, high + 1)
    shape = op.input.type.shape
    rows = -(-values.size // op.input.type.size)
    batch = np.resize(values, rows * op.input.type.size).reshape((rows, *shape)).astype(op.input.type.dtype.numpy)
    table = backend("numpy").run_op(op, batch).reshape(-1)[: values.size].astype(np.int64)
    inside = (values >= x.lo.reshape(-1, 1)) & (values <= x.hi.reshape(-1, 1))
    lo = np.where(inside, table, np.iinfo(np.int64).max).min(axis=1).reshape(x.lo.shape)
    hi = np.where(inside, table, np.iinfo(np.int64).min).max(axis=1).reshape(x.lo.shape)
    return OpRange(op, None, None, None, Interval(lo, hi))


def _op_range(op: ir.AnyOp, inputs: list[Interval]) -> OpRange:
    match op:
        case ir.Dense() | ir.Conv():
            return _weighted(op, inputs[0])
        case ir.Elementwise() if op.input.type.dtype is DType.I16:
            # 16x8 tanh, sigmoid and leaky_relu (slope >= 0) are monotonic; a table of 65,536 would be large
            monotonic = op.function is not ir.Function.LEAKY_RELU or op.alpha >= 0
            return _monotonic(op, inputs) if monotonic else OpRange(op, None, None, None, _full(op.output))
        case ir.Elementwise():
            return _elementwise(op, inputs[0])
        case ir.Softmax(impl=SoftmaxQ() as softmax):  # probabilities: 0 to 1, or the format's largest value
            top = min(1 << softmax.params.out_frac, softmax.params.out_max)
            return OpRange(op, None, None, None, _constant(op.output, 0, top))
        case ir.Binary(impl=BinaryQ() as binary):
            return _fixed_binary(op, binary, inputs)
        case ir.Softmax() | ir.Binary() | ir.Lstm():  # TFLM's parameters keep the int32 steps in range
            # (an LSTM's saturate at int16 between its steps)
            return OpRange(op, None, None, None, _full(op.output))
        case ir.Quantize() if op.input.type.dtype is DType.F32:  # a float input: any stored value
            return OpRange(op, None, None, None, _full(op.output))
        case ir.Dequantize():  # the float output: no integer range
            return OpRange(op, None, None, None, inputs[0])
        case ir.Add(impl=AddQ() as add):
            return _fixed_add(op, add, inputs[0], inputs[1])
        case ir.Activation() if isinstance(op.requant, ir.ShiftRequant):
            return replace(_output_stage(op, inputs[0], None, op.requant), accumulator=None)  # a shift, no sum
        case ir.Activation() | ir.Pool() | ir.GlobalPool() | ir.Add() | ir.Concat() | ir.Pad() | ir.Reshape() | \
                ir.Quantize() | ir.Transpose() | ir.Slice() | ir.Reduce() | \
                ir.Resize():
            return _monotonic(op, inputs)
        case ir.Gru(impl=GruQ() as gru):  # the state is within (-1, 1) by construction (nndsl.qmath.gru)
            return OpRange(op, None, None, None, _constant(op.output, gru.params.out_min, gru.params.out_max))
        case ir.Gru():  # not lowered (its error is reported): any stored value
            return OpRange(op, None, None, None, _full(op.output))
        case ir.BatchNorm():
            raise AssertionError("an integer network has no batch_norm left: folded, or a depthwise convolution")
        case _:
            assert_never(op)


def analyse(graph: ir.Graph) -> RangeReport | None:
    """Intervals of every op of an integer graph; None for a float one."""
    if not graph.dtype.is_integer:
        return None
    bits = graph.target.accumulator_bits if graph.target is not None else ACCUMULATOR_BITS
    if graph.dtype is DType.I16 and not graph.fixed and bits == ACCUMULATOR_BITS:
        bits = WIDE_ACCUMULATOR_BITS
    intervals = {graph.input.name: _full(graph.input) if graph.input.type.dtype.is_integer else _unbounded(graph.input)}
    ranges = []
    for op in graph.ops:
        result = _op_range(op, [intervals[t.name] for t in op.inputs])
        intervals[op.output.name] = result.output
        ranges.append(result)
    return RangeReport(tuple(ranges), bits)


def _real(tensor: ir.Tensor, q: int) -> float:
    quant = tensor.type.quant
    assert quant is not None
    return (q - quant.zero_point) * quant.scale


@dataclass(frozen=True)
class Observed:
    """Every layer's integer output on real inputs (a calibration set): does a clipped range occur in use?"""

    values: Mapping[str, Array]  # by tensor name, a leading batch axis
    inputs: int


def report_diagnostics(report: RangeReport, sink: DiagnosticSink, warnings: bool,
                       observed: Observed | None = None) -> None:
    """Accumulator overflow errors (always) and output clipping warnings (on request).

    A clipping warning is a worst-case bound; with ``observed`` it also says whether those inputs reach it.
    """
    low_limit, high_limit = -(2 ** (report.accumulator_bits - 1)), 2 ** (report.accumulator_bits - 1) - 1
    for result in report.ops:
        op = result.op
        if result.accumulator is not None and result.partial is not None:
            lo, hi = result.accumulator.bounds
            partial_lo, partial_hi = result.partial
            limits = f"beyond i{report.accumulator_bits} [{low_limit}, {high_limit}]"
            if lo < low_limit or hi > high_limit:
                sink.error(op.loc, f"the accumulator of '{op.output.name}' can reach [{lo}, {hi}], {limits}")
            elif partial_lo < low_limit or partial_hi > high_limit:
                sink.error(op.loc, f"a partial sum of '{op.output.name}' (before its bias) can reach "
                           f"[{partial_lo}, {partial_hi}], {limits}")
        if warnings and result.before_clamp is not None:
            _clipping_warning(result, sink, observed)


def _clipping_warning(result: OpRange, sink: DiagnosticSink, observed: Observed | None) -> None:
    op = result.op
    assert result.before_clamp is not None
    activation = getattr(op, "activation", ir.ActivationKind.NONE)
    qmin, qmax = op.output.type.bounds
    quant = op.output.type.quant
    assert quant is not None
    act_low, act_high = activation.real_range
    reach_lo, reach_hi = result.before_clamp.bounds
    format_lo, format_hi = _real(op.output, qmin), _real(op.output, qmax)
    wanted_hi = _real(op.output, reach_hi) if act_high is None else min(act_high, _real(op.output, reach_hi))
    wanted_lo = _real(op.output, reach_lo) if act_low is None else max(act_low, _real(op.output, reach_lo))
    above, below = max(0.0, wanted_hi - format_hi), max(0.0, format_lo - wanted_lo)
    if above <= quant.scale / 2 and below <= quant.scale / 2:
        return
    sides = []
    if above > quant.scale / 2:
        sides.append(f"reaches {wanted_hi:.4g}, its format holds up to {format_hi:.4g}")
    if below > quant.scale / 2:
        sides.append(f"reaches {wanted_lo:.4g}, its format holds down to {format_lo:.4g}")
    lost = _clipped_share(wanted_lo, wanted_hi, format_lo, format_hi)
    high, low = above > quant.scale / 2, below > quant.scale / 2
    sink.warning(op.loc, f"'{op.output.name}' saturates: it {' and '.join(sides)} "
                 f"({lost:.0%} of its reachable range is clipped; "
                 f"{_format_text(op.output)}); {_evidence(op, observed, high, low)}", WarningFlag.SATURATION)


def _evidence(op: ir.Op, observed: Observed | None, high: bool, low: bool) -> str:
    """Whether real inputs reach the clipped side(s), or that the bound is the worst case over all inputs."""
    if observed is None:
        return "the worst case over all inputs its type allows; calibration inputs would show whether real ones do"
    qmin, qmax = op.output.type.bounds
    values = np.asarray(observed.values[op.output.name])
    clipped = np.zeros(values.shape, dtype=bool)
    if high:
        clipped |= values == qmax
    if low:
        clipped |= values == qmin
    inputs = f"{observed.inputs} calibration input{'s' * (observed.inputs != 1)}"
    if not clipped.any():
        return f"the worst case: the {inputs} never reach the clipping limit"
    reaching = int(clipped.reshape(len(values), -1).any(axis=1).sum())
    return f"the {inputs} reach it: {clipped.mean():.2%} of its values are at the clipping limit, in {reaching} of them"


def _clipped_share(wanted_lo: float, wanted_hi: float, format_lo: float, format_hi: float) -> float:
    """The share of the reachable real interval that lies outside the format (1 for a point outside it)."""
    if wanted_hi <= wanted_lo:
        return 0.0 if format_lo <= wanted_lo <= format_hi else 1.0
    inside = max(0.0, min(wanted_hi, format_hi) - max(wanted_lo, format_lo))
    return 1.0 - inside / (wanted_hi - wanted_lo)


def _format_text(tensor: ir.Tensor) -> str:
    quant = tensor.type.quant
    assert quant is not None
    if quant.fixed is not None:
        return quant.fixed.name
    return f"{tensor.type.dtype.value} @ scale({quant.scale:.4g}) zero({quant.zero_point})"


def format_report(report: RangeReport | None) -> str:
    """The interval table of ``nndsl check --ranges``."""
    if report is None:
        return "ranges: a float network has no fixed-point ranges to check"
    width = max([16, *(len(r.op.output.name) for r in report.ops)])
    header = f"{'layer':<{width}} {'op':<18} {'accumulator':>27} {'before clamp':>22} {'output (real)':>24}"
    lines = [header, "-" * len(header)]
    for result in report.ops:
        op = result.op
        acc = "" if result.accumulator is None else "[{}, {}]".format(*result.accumulator.bounds)
        before = "" if result.before_clamp is None else "[{}, {}]".format(*result.before_clamp.bounds)
        lo, hi = result.output.bounds
        output = f"[{_real(op.output, lo):.4g}, {_real(op.output, hi):.4g}]" if op.output.type.quant else ""
        lines.append(f"{op.output.name:<{width}} {op.kind:<18} {acc:>27} {before:>22} {output:>24}")
    lines.append(f"accumulators: i{report.accumulator_bits}")
    return "\n".join(lines)


__all__ = ["Interval", "Observed", "OpRange", "RangeReport", "analyse", "format_report", "report_diagnostics"]
