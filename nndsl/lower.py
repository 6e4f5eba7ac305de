"""Lowering: give every int8 op the integer parameters of its kernel.

This is where real-valued scales become TensorFlow Lite Micro's fixed-point
multipliers, shifts, offsets and clamps, computed exactly as its kernels'
``Prepare`` steps do, so that both backends only run integer arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from nndsl import ir
from nndsl import kernels as k
from nndsl.diagnostics import DiagnosticSink, Loc, WarningFlag
from nndsl.ir import assert_never
from nndsl.qmath.activations import (
    hard_swish_s8_params,
    leaky_relu_s8_params,
    leaky_relu_s16_params,
    logistic_s8_params,
    logistic_s16_params,
    tanh_s8_params,
    tanh_s16_params,
)
from nndsl.qmath.add import AddS8Params, AddS16Params, add_s8_params, add_s16_params
from nndsl.qmath.binary import mul_params, prelu_params, squared_difference_params, sub_params
from nndsl.qmath.fixed_functions import QFunction
from nndsl.qmath.lstm import lstm_s8_params
from nndsl.qmath.pooling import AVG_POOL_S16_MAX_TAPS, mean_s8_params, mean_s16_params
from nndsl.qmath.reduce import reduce_walks
from nndsl.qmath.requant import IDENTITY_MULTIPLIER, Rounding, activation_range, quantize_multiplier
from nndsl.qmath.shift import add_q_params, align_bias, binary_q_params, checked_shift
from nndsl.qmath.softmax import softmax_s8_params, softmax_s16_params
from nndsl.recurrent import lower_gru_q
from nndsl.types import DType, QFormat, Quant, TensorType

# mbqm(x, 2**30, 1) == x for every int32 x: the requantisation of an unchanged scale.


def _multipliers(op: ir.Op, real: list[float], sink: DiagnosticSink,
                 rounding: Rounding = Rounding.DOUBLE) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Quantised multipliers of an op's output stage; one diagnostic for all channels of each kind.

    A multiplier below 2^-31 becomes TFLM's zero multiplier (``QuantizeMultiplier``
    flushes it to ``(0, 0)``): those channels output the zero point, clamped, as
    TFLM runs them, so it is a warning naming the channels. A multiplier of 2^31
    or more is an error under either rounding: double rounding's left shift would
    overflow, single rounding's ``QuantizeMultiplier`` would silently saturate it
    to ``(2^31 - 1, 30)``.
    """
    pairs = [quantize_multiplier(value, rounding) for value in real]
    too_small = [c for c, (multiplier, _) in enumerate(pairs) if multiplier == 0]
    too_large = [value for value in real if quantize_multiplier(value)[1] > 30]
    channels = "" if len(real) == 1 else " (channels: {count} of {total})"
    if too_small:
        where = "" if len(real) == 1 else f" (channels {_channel_list(too_small)}: {len(too_small)} of {len(real)})"
        smallest = min(real[c] for c in too_small)
        sink.warning(op.loc, f"requantisation multiplier {smallest:.3g} of '{op.output.name}' is below 2^-31 and "
                     f"becomes zero, as in TensorFlow Lite Micro{where}: those outputs are always the output zero "
                     f"point (its output scale is too large for its inputs)", WarningFlag.ZERO_MULTIPLIER)
    if too_large:
        where = channels.format(count=len(too_large), total=len(real))
        sink.error(op.loc, f"requantisation multiplier {max(too_large):.3g} of '{op.output.name}' is 2^31 or more "
                   f"and cannot be represented{where}: its output scale is too small")
    return tuple(m for m, _ in pairs), tuple(s for _, s in pairs)


def _channel_list(channels: list[int], shown: int = 8) -> str:
    """``0, 3, 5`` (the first ``shown``, then ``...``): which channels a diagnostic is about."""
    text = ", ".join(str(c) for c in channels[:shown])
    return text + ", ..." if len(channels) > shown else text


def _integer_name(op: ir.Op) -> str:
    return "int16" if op.output.type.dtype is DType.I16 else "int8"


def _quant(tensor: ir.Tensor) -> Quant:
    assert tensor.type.quant is not None, f"{tensor.name} is not quantised"
    return tensor.type.quant


def _dense_scales(op: ir.Dense | ir.Conv) -> list[float]:
    """``input_scale * kernel_scale[c] / output_scale`` as TFLM computes it.

    Convolutions and per-channel dense layers widen the float32 scales to
    double before multiplying (``PopulateConvolutionQuantizationParams``); a
    per-tensor int8 dense layer multiplies input and kernel scale in float32
    first (``GetQuantizedConvolutionMultipler``); 16x8 layers always use doubles.
    """
    in_scale, out_scale = _quant(op.input).scale, _quant(op.output).scale
    kernel = _quant(op.kernel)
    if isinstance(op, ir.Dense) and kernel.axis is None and op.input.type.dtype is DType.I8:
        product = float(np.float32(in_scale) * np.float32(kernel.scale))
        return [product / out_scale]
    channels = op.output.type.shape[-1]
    scales = kernel.scales if kernel.axis is not None else kernel.scales * channels
    return [in_scale * s / out_scale for s in scales]


def _output_clamp(tensor: ir.Tensor, activation: ir.ActivationKind) -> tuple[int, int]:
    quant = _quant(tensor)
    low, high = activation.real_range
    qmin, qmax = tensor.type.bounds
    return activation_range(low, high, quant.scale, quant.zero_point, qmin, qmax)


def _weighted_requant(op: ir.Dense | ir.Conv, sink: DiagnosticSink, rounding: Rounding) -> ir.Requant:
    multipliers, shifts = _multipliers(op, _dense_scales(op), sink, rounding)
    act_min, act_max = _output_clamp(op.output, op.activation)
    return ir.Requant(-_quant(op.input).zero_point, _quant(op.output).zero_point, multipliers, shifts,
                      act_min, act_max, rounding)


def _function_limit(op: ir.Elementwise, in_scale: float, out_scale: float) -> str | None:
    """The scale rule of the function's TFLM kernel that these scales break, in words (None: see the error)."""
    if op.function in (ir.Function.TANH, ir.Function.SIGMOID) and not 2.0**-28 <= in_scale < 2.0**35:
        return "its input scale must be from 2^-28 to 2^35"
    if op.function is ir.Function.HARD_SWISH and in_scale / 128 >= out_scale:
        return f"its output scale must be larger than input scale / 128 = {in_scale / 128:g}"
    if op.function is ir.Function.LEAKY_RELU and max(1.0, abs(op.alpha)) * in_scale / out_scale >= 2.0**30:
        return "input scale / output scale (times alpha) must stay below 2^30"
    return None


def _function_kernel(op: ir.Elementwise, sink: DiagnosticSink, rounding: Rounding) -> k.FunctionKernel | None:
    in_q, out_q = _quant(op.input), _quant(op.output)
    args = (in_q.scale, in_q.zero_point, out_q.scale, out_q.zero_point)
    if op.input.type.dtype is DType.I16:
        return _function_kernel_s16(op, args, sink)
    try:
        match op.function:
            case ir.Function.TANH:
                return k.TanhS8(tanh_s8_params(*args), rounding)
            case ir.Function.SIGMOID:
                return k.LogisticS8(logistic_s8_params(*args), rounding)
            case ir.Function.HARD_SWISH:
                return k.HardSwishS8(hard_swish_s8_params(*args, rounding=rounding))
            case ir.Function.LEAKY_RELU:
                return k.LeakyReluS8(leaky_relu_s8_params(*args, op.alpha), rounding)
            case _:
                assert_never(op.function)
    except ValueError as error:
        rule = _function_limit(op, in_q.scale, out_q.scale) or str(error)
        sink.error(op.loc, f"int8 {op.function.value} of '{op.output.name}' cannot be computed at input scale "
                   f"{in_q.scale:g} and output scale {out_q.scale:g}: TensorFlow Lite Micro's kernel rejects them "
                   f"({rule})")
        return None


def _function_kernel_s16(op: ir.Elementwise, args: tuple[float, int, float, int],
                         sink: DiagnosticSink) -> k.FunctionKernel | None:
    try:
        match op.function:
            case ir.Function.TANH:
                return k.TanhS16(tanh_s16_params(*args))
            case ir.Function.SIGMOID:
                return k.LogisticS16(logistic_s16_params(*args))
            case ir.Function.LEAKY_RELU:
                return k.LeakyReluS16(leaky_relu_s16_params(*args, op.alpha))
            case ir.Function.HARD_SWISH:
                sink.error(op.loc, f"{op.function.value} has no 16x8 kernel in TensorFlow Lite Micro")
                return None
            case _:
                assert_never(op.function)
    except ValueError as error:
        sink.error(op.loc, f"i16 {op.function.value} of '{op.output.name}' cannot be computed at input scale "
                   f"{args[0]:g} and output scale {args[2]:g}: {error}")
        return None


def _softmax_kernel(op: ir.Softmax, sink: DiagnosticSink, rounding: Rounding) -> k.SoftmaxKernel | None:
    in_scale = _quant(op.input).scale
    if op.input.type.dtype is DType.I16:
        try:
            return k.SoftmaxS16(softmax_s16_params(in_scale, op.beta))
        except ValueError as error:
            sink.error(op.loc, f"int16 softmax of '{op.output.name}' cannot be computed at beta {op.beta:g} and "
                       f"input scale {in_scale:g}: TensorFlow Lite Micro's kernel rejects it ({error})")
            return None
    try:
        return k.softmax_s8_kernel(softmax_s8_params(in_scale, op.beta, rounding), rounding)
    except ValueError:
        sink.error(op.loc, f"int8 softmax of '{op.output.name}' cannot be computed: beta x input scale = "
                   f"{op.beta:g} x {in_scale:g} must be larger than 2^-26 (TensorFlow Lite Micro's softmax "
                   f"kernel rejects it)")
        return None


def _binary_kernel(op: ir.Binary, sink: DiagnosticSink, rounding: Rounding) -> k.BinaryKernel | None:
    """The kernel of an int8 or int16 binary op, its parameters as the TFLM kernel's ``Prepare`` makes them."""
    a, b = (_quant(t) for t in op.operands)
    out = _quant(op.output)
    storage = op.output.type.dtype
    scales, zero_points = (a.scale, b.scale, out.scale), (a.zero_point, b.zero_point, out.zero_point)
    numpy_storage = storage.numpy.type
    clamp = _output_clamp(op.output, op.activation)
    try:
        match op.operator:
            case ir.BinaryOp.ADD:
                params: AddS8Params | AddS16Params
                if storage is DType.I16:
                    params = add_s16_params(a.scale, a.zero_point, b.scale, b.zero_point, out.scale, out.zero_point)
                else:
                    params = add_s8_params(a.scale, a.zero_point, b.scale, b.zero_point, out.scale, out.zero_point,
                                           rounding)
                return k.BroadcastAdd(params, *clamp, rounding)
            case ir.BinaryOp.SUB:
                return k.Sub(sub_params(scales, zero_points, numpy_storage, rounding), *clamp, storage, rounding)
            case ir.BinaryOp.MUL:
                return k.Mul(mul_params(scales, zero_points, numpy_storage, rounding), *clamp, storage, rounding)
            case ir.BinaryOp.SQUARED_DIFFERENCE:
                params_sd = squared_difference_params(scales, zero_points, numpy_storage, rounding)
                return k.SquaredDifference(params_sd, storage, rounding)
            case ir.BinaryOp.MAXIMUM:
                return k.Maximum(storage)
            case ir.BinaryOp.MINIMUM:
                return k.Minimum(storage)
            case ir.BinaryOp.PRELU if storage is DType.I16:
                sink.error(op.loc, "prelu has no 16x8 kernel in TensorFlow Lite Micro (int8 and f32 only)")
                return None
            case ir.BinaryOp.PRELU:
                return k.Prelu(prelu_params(scales, zero_points, numpy_storage, rounding), storage, rounding)
            case _:
                assert_never(op.operator)
    except ValueError as error:
        sink.error(op.loc, f"{_integer_name(op)} {op.kind} of '{op.output.name}' cannot be computed at input scales "
                   f"{a.scale:g} and {b.scale:g} and output scale {out.scale:g}: TensorFlow Lite Micro's kernel "
                   f"rejects them ({error})")
        return None


def _format(tensor: ir.Tensor) -> QFormat:
    fmt = tensor.type.fixed
    assert fmt is not None, f"{tensor.name} is not fixed point"
    return fmt


class _ShiftOutOfRange(Exception):
    """A fixed-point op whose shifts or bias cannot be represented (reported at ``loc``, else at the op)."""

    def __init__(self, message: str, loc: Loc | None = None) -> None:
        super().__init__(message)
        self.loc = loc


def _shift_error(op: ir.Op, what: str, error: ValueError) -> _ShiftOutOfRange:
    """The error of a shift out of range; it says which formats to move closer together."""
    formats = " and ".join(_format(t).name for t in op.inputs)
    return _ShiftOutOfRange(f"fixed-point {op.kind} of '{op.output.name}' cannot go from {formats} to "
                            f"{_format(op.output).name}: {what} ({error}); choose formats whose fraction bits "
                            f"are closer")


def _fixed_weighted(op: ir.Dense | ir.Conv) -> ir.Dense | ir.Conv:
    """A q-format dense or conv: bias aligned to the accumulator's ``N_x + N_w`` fraction bits, one output shift."""
    frac_acc = _format(op.input).frac_bits + _format(op.kernel).frac_bits
    try:
        shift = checked_shift(frac_acc - _format(op.output).frac_bits)
    except ValueError as error:
        raise _shift_error(op, f"its int32 sum has {frac_acc} fraction bits", error) from None
    bias = op.bias
    if bias is not None and bias.data is not None:
        frac_bias = _format(bias).frac_bits
        if frac_bias > frac_acc:
            raise _ShiftOutOfRange(f"bias '{bias.name}' has {frac_bias} fraction bits, more than the accumulator's "
                                   f"{frac_acc} (input {_format(op.input).frac_bits} + kernel "
                                   f"{_format(op.kernel).frac_bits}): store it with at most {frac_acc}", bias.loc)
        try:
            aligned = align_bias(bias.data, frac_acc - frac_bias)
        except ValueError as error:
            message = f"bias '{bias.name}' does not fit the int32 accumulator: {error}"
            raise _ShiftOutOfRange(message, bias.loc) from None
        accumulator = QFormat.stored_in(DType.I32, frac_acc)
        bias = ir.Tensor(bias.name, TensorType(DType.I32, bias.type.shape, Quant.of_format(accumulator)), bias.loc,
                         aligned.astype(np.int32))
    act_min, act_max = _output_clamp(op.output, op.activation)
    return replace(op, bias=bias, requant=ir.ShiftRequant(shift, act_min, act_max))


def _average_fits(op: ir.Pool | ir.GlobalPool, sink: DiagnosticSink) -> bool:
    """An int16 average's int32 sum holds at most 65535 taps (TensorFlow Lite Micro's limit, and overflow's)."""
    if op.pool is not ir.PoolKind.AVG or op.output.type.dtype is not DType.I16:
        return True
    channels = op.input.type.shape[-1]
    taps = math.prod(op.window.size) if isinstance(op, ir.Pool) else op.input.type.size // channels
    if taps <= AVG_POOL_S16_MAX_TAPS:
        return True
    sink.error(op.loc, f"{op.kind} of '{op.output.name}' averages {taps} int16 values: at most "
               f"{AVG_POOL_S16_MAX_TAPS} fit its int32 sum (TensorFlow Lite Micro's int16 average pool has the "
               f"same limit)")
    return False


def lower_fixed_op(op: ir.AnyOp, sink: DiagnosticSink) -> ir.AnyOp:
    """``op`` of a fixed-point network with its shifts and clamps (:mod:`nndsl.qmath.shift`)."""
    try:
        match op:
            case ir.Dense() | ir.Conv():
                return _fixed_weighted(op)
            case ir.Activation():
                try:
                    shift = checked_shift(_format(op.input).frac_bits - _format(op.output).frac_bits)
                except ValueError as error:
                    raise _shift_error(op, "its shift", error) from None
                return replace(op, requant=ir.ShiftRequant(shift, *_output_clamp(op.output, op.activation)))
            case ir.Add():
                a, b, out = (_format(t).frac_bits for t in (*op.inputs, op.output))
                try:
                    params = add_q_params(a, b, out)
                except ValueError as error:
                    raise _shift_error(op, "its shifts", error) from None
                return replace(op, impl=k.AddQ(params, *_output_clamp(op.output, op.activation)))
            case ir.Binary() if op.operator is not ir.BinaryOp.PRELU:  # the checker refuses a fixed-point prelu
                a, b, out = (_format(t).frac_bits for t in (*op.operands, op.output))
                try:
                    binary = binary_q_params(op.operator.value, a, b, out)
                except ValueError as error:
                    raise _shift_error(op, "its shifts", error) from None
                return replace(op, impl=k.BinaryQ(binary, *_output_clamp(op.output, op.activation)))
            case ir.Pool():
                _average_fits(op, sink)
                return replace(op, act_range=_output_clamp(op.output, op.activation))
            case ir.GlobalPool() if op.pool is ir.PoolKind.AVG:
                _average_fits(op, sink)
                return replace(op, act_range=_output_clamp(op.output, ir.ActivationKind.NONE))
            case ir.GlobalPool() | ir.Reshape() | ir.Concat() | ir.Pad() | ir.Transpose() | ir.Slice() | ir.Resize():
                return op
            case ir.Elementwise():  # tanh, sigmoid: tables made here (nndsl.qmath.fixed_functions)
                kernel = k.function_q_kernel(QFunction(op.function.value), _format(op.input), _format(op.output))
                return replace(op, impl=kernel)
            case ir.Softmax():
                return replace(op, impl=k.softmax_q_kernel(op.beta, _format(op.input), _format(op.output)))
            case ir.Gru():
                try:
                    return lower_gru_q(op)
                except ValueError as error:
                    raise _ShiftOutOfRange(f"fixed-point gru of '{op.output.name}': {error}") from None
    except _ShiftOutOfRange as error:
        sink.error(error.loc or op.loc, str(error))
        return op
    raise AssertionError(f"lower_fixed_op: {type(op).__name__} has no fixed-point kernel (the checker refuses it)")


def lower_op(op: ir.AnyOp, sink: DiagnosticSink, rounding: Rounding = Rounding.DOUBLE) -> ir.AnyOp:
    """``op`` with its kernel's integer parameters, for the int8 kernels' ``rounding`` scheme."""
    if isinstance(op, ir.Quantize) and op.input.type.dtype is DType.F32:  # a float input's quantisation
        out_q = _quant(op.output)
        return replace(op, impl=k.AffineQuantize(out_q.scale, out_q.zero_point, op.output.type.dtype))
    if op.input.type.dtype is DType.F32:
        return op
    if op.input.type.fixed is not None:
        return lower_fixed_op(op, sink)
    match op:
        case ir.Dense() | ir.Conv():
            return replace(op, requant=_weighted_requant(op, sink, rounding))
        case ir.Activation():
            in_q, out_q = _quant(op.input), _quant(op.output)
            multipliers: tuple[int, ...]
            shifts: tuple[int, ...]
            if op.activation is ir.ActivationKind.RELU6:  # TFLM's Relu6 clamps without rescaling
                multipliers, shifts = (IDENTITY_MULTIPLIER[0],), (IDENTITY_MULTIPLIER[1],)
            else:
                multipliers, shifts = _multipliers(op, [in_q.scale / out_q.scale], sink, rounding)
            act_min, act_max = _output_clamp(op.output, op.activation)
            requant = ir.Requant(-in_q.zero_point, out_q.zero_point, multipliers, shifts, act_min, act_max,
                                 rounding)
            return replace(op, requant=requant)
        case ir.Pool():
            _average_fits(op, sink)
            return replace(op, act_range=_output_clamp(op.output, op.activation))
        case ir.Add():
            a, b, out = _quant(op.inputs[0]), _quant(op.inputs[1]), _quant(op.output)
            wide = op.output.type.dtype is DType.I16
            clamp = _output_clamp(op.output, op.activation)
            add: k.AddKernel
            try:
                if wide:
                    add = k.AddS16(add_s16_params(a.scale, a.zero_point, b.scale, b.zero_point, out.scale,
                                                  out.zero_point), *clamp)
                else:
                    add = k.AddS8(add_s8_params(a.scale, a.zero_point, b.scale, b.zero_point, out.scale,
                                                out.zero_point, rounding), *clamp, rounding)
            except ValueError:
                bits = 15 if wide else 20  # the kernel's left shift
                limit = 2 * max(a.scale, b.scale) / 2**bits
                sink.error(op.loc, f"{'int16' if wide else 'int8'} add of '{op.output.name}' cannot be computed: "
                           f"its output scale {out.scale:g} must be larger than 2 x the larger input scale / "
                           f"2^{bits} = {limit:g} (TensorFlow Lite Micro's add kernel rejects it)")
                return op
            return replace(op, impl=add)
        case ir.GlobalPool():
            if op.pool is ir.PoolKind.MAX:
                return op
            in_q, out_q = _quant(op.input), _quant(op.output)
            count = op.input.type.size // op.input.type.shape[-1]
            mean: k.MeanKernel
            try:
                if op.output.type.dtype is DType.I16:
                    mean = k.MeanS16(mean_s16_params(in_q.scale, in_q.zero_point, out_q.scale, out_q.zero_point,
                                                     count))
                else:
                    mean = k.MeanS8(mean_s8_params(in_q.scale, in_q.zero_point, out_q.scale, out_q.zero_point,
                                                   count, rounding), rounding)
            except ValueError:
                sink.error(op.loc, f"{_integer_name(op)} global_avg_pool of '{op.output.name}' cannot be computed: "
                           f"its output scale {out_q.scale:g} is too small for its input scale {in_q.scale:g} "
                           "(the mean's multiplier would need a shift of more than 30 bits in TensorFlow Lite Micro's "
                           "kernel)")
                return op
            return replace(op, impl=mean)
        case ir.Elementwise():
            return replace(op, impl=_function_kernel(op, sink, rounding))
        case ir.Softmax():
            return replace(op, impl=_softmax_kernel(op, sink, rounding))
        case ir.Binary():
            return replace(op, impl=_binary_kernel(op, sink, rounding))
        case ir.Quantize():  # TFLM's Requantize: QuantizeMultiplier(scale_in / scale_out), the storage's clamp
            in_q, out_q = _quant(op.input), _quant(op.output)
            multipliers, shifts = _multipliers(op, [in_q.scale / out_q.scale], sink, rounding)
            return replace(op, requant=ir.Requant(-in_q.zero_point, out_q.zero_point, multipliers, shifts,
                                                  *op.output.type.dtype.bounds, rounding))
        case ir.Dequantize():
            in_q = _quant(op.input)
            return replace(op, impl=k.Dequantize(in_q.scale, in_q.zero_point))
        case ir.Reduce():
            return replace(op, impl=reduce_mean_kernel(op, sink, rounding)) if op.reducer is ir.PoolKind.AVG else op
        case ir.Reshape() | ir.Concat() | ir.Pad() | ir.BatchNorm() | ir.Transpose() | ir.Slice() | ir.Resize():
            return op
        case ir.Gru():  # f32 or fixed point only: the checker refuses an int8 or 16x8 one
            return op
        case ir.Lstm():
            return replace(op, impl=lstm_kernel(op, sink, rounding))
        case _:
            assert_never(op)


def lstm_kernel(op: ir.Lstm, sink: DiagnosticSink, rounding: Rounding) -> k.LstmS8 | None:
    """An int8 LSTM's parameters: TFLM's Prepare on the input, output (hidden), weight and cell scales."""
    in_q, out_q = _quant(op.input), _quant(op.output)
    assert op.cell_scale is not None  # the rule requires it of an int8 layer
    try:
        params = lstm_s8_params(op.units, (in_q.scale, in_q.zero_point), (out_q.scale, out_q.zero_point),
                                _quant(op.kernel).scales, _quant(op.recurrent).scales, op.cell_scale,
                                op.cell_clip, rounding)
    except ValueError as error:
        sink.error(op.loc, f"int8 lstm '{op.output.name}' cannot be computed: {error}")
        return None
    return k.LstmS8(params, op.return_sequences)


def reduce_mean_kernel(op: ir.Reduce, sink: DiagnosticSink, rounding: Rounding) -> k.ReduceMean | None:
    """An integer mean over any axes: TFLM's MEAN parameters for its count of values per output."""
    in_q, out_q = _quant(op.input), _quant(op.output)
    outer, inner = reduce_walks(op.input.type.shape, op.axes)
    args = (in_q.scale, in_q.zero_point, out_q.scale, out_q.zero_point, inner.size)
    try:
        params = mean_s16_params(*args) if op.output.type.dtype is DType.I16 else mean_s8_params(*args, rounding)
    except ValueError:
        sink.error(op.loc, f"{_integer_name(op)} mean of '{op.output.name}' cannot be computed: its output scale "
                   f"{out_q.scale:g} is too small for its input scale {in_q.scale:g} (the mean's multiplier would "
                   "need a shift of more than 30 bits in TensorFlow Lite Micro's kernel)")
        return None
    return k.ReduceMean(params, outer, inner, rounding)


def lower(graph: ir.Graph, sink: DiagnosticSink) -> ir.Graph:
    """The graph with integer parameters on every int8 op (errors in ``sink``).

    ``rounding = single`` is refused for 16x8 networks: this project's int16
    kernels implement the double-rounding build only, and several of TFLite's
    would differ under ``TFLITE_SINGLE_ROUNDING`` (ADD's and MEAN's int32
    multiplies, the int16 activations' rescale, QuantizeMultiplier's clamp).
    Fixed-point networks only shift, so the rounding scheme does not touch them.
    """
    rounding = graph.rounding
    if rounding is Rounding.SINGLE and not graph.fixed:
        wide = [op for op in graph.ops if DType.I16 in (op.input.type.dtype, op.output.type.dtype)]
        if wide:
            assert graph.target is not None
            loc = graph.target.loc if graph.target.loc is not None else wide[0].loc
            sink.error(loc, f"'rounding = single' is not supported for i16 (16x8) networks: '{wide[0].output.name}' "
                       "is int16, and TensorFlow Lite Micro's int16 kernels round differently under single "
                       "rounding; nndsl implements them in double rounding only")
            return graph
    return replace(graph, ops=[lower_op(op, sink, rounding) for op in graph.ops])
