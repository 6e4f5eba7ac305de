"""Rules of the binary element-wise ops: add, sub, mul, maximum, minimum, squared_difference.

An operand is a computed tensor, a weight array or a number written in the
text; shapes broadcast as TensorFlow Lite's (aligned on the right, an axis of
1 repeats). In an integer network a constant is stored in the network's type
with its own scale and zero point (``NAME.scale``, ``NAME.zero_point``), or
given as float and quantised here; ``maximum`` and ``minimum`` compare stored
values, so their operands and output share one quantisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nndsl import ast, ir
from nndsl.diagnostics import Loc
from nndsl.qmath.binary import quantize_constant, quantize_with
from nndsl.qmath.requant import round_half_away_array
from nndsl.qmath.shift import to_fixed_integers
from nndsl.resolve import Array, BoundLayer
from nndsl.rules.base import FLOAT32_MAX, KERNEL_STORAGES, quant_text, shape_text
from nndsl.types import DType, QFormat, Quant, TensorType, format_for

if TYPE_CHECKING:
    from nndsl.check import Checker

MAX_BROADCAST_RANK = 4  # the generated C walks at most four axes, as TFLM's Broadcast*4DSlow kernels


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape ``a`` and ``b`` broadcast to (TFLite's rule, NumPy's), or None when an axis differs."""
    rank = max(len(a), len(b))
    padded_a, padded_b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    shape = []
    for x, y in zip(padded_a, padded_b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        shape.append(max(x, y))
    return tuple(shape)


def check_add(ctx: Checker, layer: BoundLayer, *tensors: ir.Tensor) -> ir.AnyOp:
    """Two computed tensors of one shape: the plain :class:`ir.Add` (also fixed point); otherwise a broadcast one."""
    plain = len(tensors) == 2 and tensors[0].type.shape == tensors[1].type.shape
    if not plain:
        return check_binary(ctx, layer, *tensors)
    activation = ctx.only_activation(layer, allowed=True)
    ctx.attrs(layer)
    out_type = ctx.output_type(layer, tensors[0].type.shape, None)
    return ir.Add(layer.decl.call.loc, tensors, ctx.tensor(layer, out_type), activation)


def check_binary(ctx: Checker, layer: BoundLayer, *tensors: ir.Tensor) -> ir.AnyOp:
    operator = ir.BinaryOp(layer.signature.name)
    loc = layer.decl.call.loc
    activation = ctx.only_activation(layer, allowed=operator.fuses_activation)
    ctx.attrs(layer)
    shared = tensors[0].type.quant if operator.same_quant and not ctx.fixed else None  # fixed point aligns them
    computed = iter(tensors)
    operands: list[ir.Tensor] = []
    for index, arg in enumerate(layer.operands):
        weight = layer.weights.get(f"x{index}")
        if isinstance(arg, ast.Literal):
            operands.append(_literal(ctx, layer, index, arg, shared))
        elif weight is not None:
            operands.append(_constant(ctx, operator, weight, shared))
        else:
            operands.append(next(computed))
    a, b = operands
    shape = broadcast_shape(a.type.shape, b.type.shape)
    if shape is None:
        raise ctx.fail(loc, f"{operator.value} cannot broadcast '{a.name}' {shape_text(a.type.shape)} with "
                       f"'{b.name}' {shape_text(b.type.shape)}: aligned on the right, each axis must be equal or 1")
    if len(shape) > MAX_BROADCAST_RANK:
        raise ctx.fail(loc, f"{operator.value} of '{layer.decl.name}' has {len(shape)} axes ({shape_text(shape)}); "
                       f"broadcasting ops take at most {MAX_BROADCAST_RANK}")
    out_type = ctx.output_type(layer, shape, shared)
    if shared is not None:
        _same_quant(ctx, layer, operator, out_type, (a, b))
    output = ctx.tensor(layer, out_type)
    return ir.Binary(loc, tuple(tensors), output, operator, (a, b), activation)


def _same_quant(ctx: Checker, layer: BoundLayer, operator: ir.BinaryOp, out_type: TensorType,
                operands: tuple[ir.Tensor, ir.Tensor]) -> None:
    """MAXIMUM and MINIMUM compare stored values: a different quantisation would compare different units."""
    for tensor in operands:
        if tensor.type.quant != out_type.quant:
            where = layer.decl.type.loc if layer.decl.type is not None else layer.decl.loc
            raise ctx.fail(where, f"{ctx.integer_name} {operator.value} compares stored values: '{tensor.name}' "
                           f"({quant_text(tensor.type.quant)}) and the output ({quant_text(out_type.quant)}) must "
                           f"share one quantisation, as TensorFlow Lite Micro's kernel assumes")


def _literal(ctx: Checker, layer: BoundLayer, index: int, literal: ast.Literal, shared: Quant | None) -> ir.Tensor:
    """A number in the text as a one-element constant (``LAYER/xN``: no weight array has a '/' in its name)."""
    value = literal.value
    if not abs(value) <= FLOAT32_MAX:
        raise ctx.fail(literal.loc, f"{layer.signature.name} operand {value:g} is outside the range of float32")
    return _from_float(ctx, f"{layer.decl.name}/x{index}", literal.loc, np.array([value], dtype=np.float64), shared)


def fixed_constant_format(values: Array, storage: DType) -> QFormat:
    """The format a float constant of a fixed-point network is stored in: ``storage`` with the most fraction bits
    that hold every value, at most 7 more than its bits (aligning a computed tensor to it stays inside int32)."""
    bits = 8 * storage.size
    largest = float(np.abs(values).max(initial=0.0))
    return QFormat.stored_in(storage, format_for(largest, bits, max_frac=bits + 7).frac_bits)


def _from_float(ctx: Checker, name: str, loc: Loc, data: Array, shared: Quant | None) -> ir.Tensor:
    """A float constant in the network's type: float32, quantised (with ``shared`` when it must be), or in fixed
    point the format of the network's storage with the most fraction bits that holds every value."""
    dtype = ctx.model_dtype
    if dtype is DType.F32:
        return ctx.const(name, TensorType(dtype, data.shape, None), loc, data.astype(np.float32))
    if ctx.fixed:
        fmt = fixed_constant_format(data, dtype)
        low, high = fmt.bounds
        scaled = round_half_away_array(data.astype(np.float64) * 2.0**fmt.frac_bits)
        if scaled.min(initial=0) < low or scaled.max(initial=0) > high:  # even with no fraction bits: it saturates
            worst = float(data.reshape(-1)[np.argmax(np.abs(data))])
            raise ctx.fail(loc, f"constant {worst:g} does not fit the network's {np.dtype(dtype.numpy)} storage in "
                           f"fixed point ({low} to {high}); scale it into range")
        stored = to_fixed_integers(data, fmt.frac_bits, np.dtype(dtype.numpy))
        return ctx.const(name, TensorType(dtype, data.shape, Quant.of_format(fmt)), loc, stored)
    storage = dtype.numpy.type
    if shared is not None:
        stored, quant = quantize_with(data, shared.scale, shared.zero_point, storage), shared
    else:
        stored, scale, zero_point = quantize_constant(data, storage)
        quant = Quant.per_tensor(scale, zero_point)
    return ctx.const(name, TensorType(dtype, data.shape, quant), loc, stored.astype(storage))


def _constant(ctx: Checker, operator: ir.BinaryOp, ref: ast.Ref, shared: Quant | None) -> ir.Tensor:
    """A weight array as an operand: float (quantised here in an integer network), or stored with its quantisation."""
    data = ctx.resolved.weights[ref.name]
    where = f"{operator.value} operand '{ref.name}'"
    dtype = ctx.model_dtype
    if data.ndim > MAX_BROADCAST_RANK:
        raise ctx.fail(ref.loc, f"{where} has {data.ndim} axes; broadcasting ops take at most {MAX_BROADCAST_RANK}")
    if data.dtype.kind == "f":
        with np.errstate(over="ignore"):
            finite = bool(np.all(np.isfinite(data.astype(np.float32))))
        if not finite:
            raise ctx.fail(ref.loc, f"{where} has values that are not finite float32 numbers")
        return _from_float(ctx, ref.name, ref.loc, data.astype(np.float64), shared)
    if ctx.fixed:
        return ctx.fixed_weight(ref, where, data, KERNEL_STORAGES)
    if dtype is DType.F32 or data.dtype != dtype.numpy:
        wanted = "float" if dtype is DType.F32 else f"float, or {np.dtype(dtype.numpy)} with its quantisation,"
        raise ctx.fail(ref.loc, f"{where} is {data.dtype}: an {dtype.value} network takes {wanted} constants")
    quant = _stored_quant(ctx, ref, where, dtype)
    if shared is not None and quant != shared:
        raise ctx.fail(ref.loc, f"{ctx.integer_name} {operator.value} compares stored values: '{ref.name}' "
                       f"({quant_text(quant)}) must have the quantisation of its other operand "
                       f"({quant_text(shared)}); or store it as float and nndsl quantises it so")
    return ctx.const(ref.name, TensorType(dtype, data.shape, quant), ref.loc, data)


def _stored_quant(ctx: Checker, ref: ast.Ref, where: str, dtype: DType) -> Quant:
    """``NAME.scale`` (one positive float32) and ``NAME.zero_point`` (one integer in range, 0 by default)."""
    weights = ctx.resolved.weights
    scale = weights.get(f"{ref.name}.scale")
    if scale is None or scale.size != 1 or scale.dtype.kind != "f":
        raise ctx.fail(ref.loc, f"{where} is {dtype.value}: the .npz needs its scale as '{ref.name}.scale' (one "
                       f"float), and its zero point as '{ref.name}.zero_point' unless it is 0")
    value = float(scale.reshape(-1)[0])
    with np.errstate(over="ignore", under="ignore"):
        stored = float(np.float32(value))
    if not 0.0 < stored < float("inf"):
        raise ctx.fail(ref.loc, f"'{ref.name}.scale' must be a positive float32 (got {value:g})")
    zero = weights.get(f"{ref.name}.zero_point")
    zero_point = 0
    if zero is not None:
        if zero.size != 1 or zero.dtype.kind not in "iu":
            raise ctx.fail(ref.loc, f"'{ref.name}.zero_point' must be one integer")
        zero_point = int(zero.reshape(-1)[0])
    low, high = dtype.bounds
    if not low <= zero_point <= high or (dtype is DType.I16 and zero_point != 0):
        allowed = "0 (i16 tensors are symmetric)" if dtype is DType.I16 else f"in {low}..{high}"
        raise ctx.fail(ref.loc, f"'{ref.name}.zero_point' is {zero_point}; it must be {allowed}")
    return Quant.per_tensor(stored, zero_point)
