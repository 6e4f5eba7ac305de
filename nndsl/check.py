"""Type and shape checking: a resolved program becomes a typed IR graph.

Every layer gets an output type (dtype, shape, quantisation) from its op's
rule, its inputs and the declared annotation; every mismatch is reported at
the user's text with the numbers involved. Integer parameters are added later
by :mod:`nndsl.lower`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nndsl import ast, ir
from nndsl.diagnostics import DiagnosticSink, Loc, did_you_mean
from nndsl.ops import FIXED_POINT_OPS, SIGNATURES
from nndsl.resolve import Array, BoundLayer, ResolvedProgram
from nndsl.rules import RULES
from nndsl.rules.base import KERNEL_STORAGES, Attrs, CheckFailed, quant_text, shape_text
from nndsl.types import (
    ACTIVATION_DTYPES,
    MAX_ACTIVATION_BITS,
    MAX_NETWORK_ELEMENTS,
    MAX_NETWORK_WORK,
    MAX_OP_WORK,
    MAX_RANK,
    MAX_TENSOR_ELEMENTS,
    MAX_WEIGHT_FRAC_BITS,
    MAX_WINDOW_TAPS,
    DType,
    QFormat,
    Quant,
    TensorType,
    as_float32,
    element_count,
    power_text,
)

BIAS_STORAGES = (DType.I8, DType.I16, DType.I32)
INT8_TABLE = 256  # the range check of an int8 function evaluates it on every int8 value, for every element


def _window_costs(op: ir.Conv | ir.Pool) -> list[tuple[int, str]]:
    """What a window op costs the checks: its taps at every output, and its padded input."""
    rank = op.window.rank
    shape = op.input.type.shape
    padded = element_count(tuple(n + before + after for n, (before, after) in zip(shape, op.window.pads,
                                                                                   strict=False)))
    padded *= element_count(shape[rank:])
    taps, outputs = element_count(op.window.size), op.output.type.size
    if isinstance(op, ir.Conv):
        reads = (op.macs, f"multiply-accumulates ({taps} kernel taps at each of {outputs} outputs)")
    else:
        reads = (taps * outputs, f"window reads ({taps} taps at each of {outputs} outputs)")
    return [reads, (padded, "elements in its padded input")]


def _op_costs(op: ir.Op, integer: bool) -> list[tuple[int, str]]:
    """The amounts of work an op asks of the range analysis and the NumPy backend, each with its name."""
    match op:
        case ir.Dense():
            return [(op.macs, "multiply-accumulates")]
        case ir.Conv() | ir.Pool():
            return _window_costs(op)
        case ir.Elementwise() if integer and op.input.type.dtype is DType.I8:
            count = op.input.type.size
            return [(count * INT8_TABLE, f"function evaluations for its range check ({INT8_TABLE} int8 values at "
                     f"each of {count} elements)")]
    return [(op.output.type.size, "output elements")]


@dataclass
class Checker:
    """Types a resolved program op by op; the per-op rules (:mod:`nndsl.rules`) call its helpers."""

    resolved: ResolvedProgram
    sink: DiagnosticSink

    def __post_init__(self) -> None:
        self.tensors: dict[str, ir.Tensor] = {}
        self.consts: dict[str, ir.Tensor] = {}
        self.model_dtype = DType.F32
        self.fixed = False  # a power-of-two fixed-point network: every tensor has its own qM.N format
        self.network_elements = 0  # the activation elements and the work of the layers so far (see types.py)
        self.network_work = 0

    # -- diagnostics ---------------------------------------------------------------------------

    def fail(self, loc: Loc, message: str) -> CheckFailed:
        self.sink.error(loc, message)
        return CheckFailed(message)

    # -- types ----------------------------------------------------------------------------------

    def quant_of(self, spec: ast.QuantSpec, dtype: DType) -> Quant:
        if not math.isfinite(spec.scale) or spec.scale <= 0:
            raise self.fail(spec.loc, f"scale must be a positive number (got {spec.scale:g})")
        with np.errstate(over="ignore", under="ignore"):
            stored = as_float32(spec.scale)  # scales are stored as float32
        if not 0.0 < stored < math.inf:
            raise self.fail(spec.loc, f"scale {spec.scale:g} is outside the range of float32")
        low, high = dtype.bounds
        if not low <= spec.zero_point <= high:
            raise self.fail(
                spec.loc, f"zero point {spec.zero_point} is outside {dtype.value} (range {low}..{high})"
            )
        if dtype is DType.I16 and spec.zero_point != 0:
            raise self.fail(spec.loc, f"i16 tensors are symmetric (TensorFlow Lite's 16x8 scheme): zero point "
                            f"must be 0, got {spec.zero_point}")
        return Quant.per_tensor(spec.scale, spec.zero_point)

    def dtype_of(self, expr: ast.TypeExpr) -> DType:
        dtype = DType.from_name(expr.dtype)
        if dtype not in ACTIVATION_DTYPES:
            names = ", ".join(d.value for d in ACTIVATION_DTYPES)
            raise self.fail(expr.loc, f"unknown tensor type '{expr.dtype}' (expected one of: {names}, or a "
                            f"fixed-point format q7, q15, qM.N)")
        assert dtype is not None
        return dtype

    def format_of(self, expr: ast.TypeExpr) -> QFormat | None:
        """The qM.N format a type names (None for f32, i8, i16); a scale or a width beyond 16 bits is an error."""
        fmt = QFormat.parse(expr.dtype)
        if fmt is None:
            return None
        if not 2 <= fmt.bits <= MAX_ACTIVATION_BITS:
            raise self.fail(expr.loc, f"{expr.dtype} has {fmt.bits} bit{'s' * (fmt.bits != 1)} (M + N + 1): "
                            f"fixed-point tensors have 2 to "
                            f"{MAX_ACTIVATION_BITS}, e.g. q7, q15 or q3.4")
        if expr.quant is not None:
            raise self.fail(expr.quant.loc, f"{fmt.name} has the fixed scale 2^-{fmt.frac_bits} and zero point 0: "
                            f"write it without '@ scale(...) zero(...)'")
        return fmt

    def input_type(self, decl: ast.InputDecl) -> TensorType:
        expr = decl.type
        fmt = self.format_of(expr)
        dtype = fmt.storage if fmt is not None else self.dtype_of(expr)
        if expr.shape is None:
            raise self.fail(expr.loc, f"input '{decl.name}' needs a shape, e.g. {expr.dtype}[64]")
        if any(d <= 0 for d in expr.shape):
            raise self.fail(expr.loc, f"input shape {shape_text(expr.shape)} has an empty dimension")
        self.shape_within_limits(expr.loc, f"input '{decl.name}'", expr.shape)
        quant = Quant.of_format(fmt) if fmt is not None else self.required_quant(expr, dtype, decl.name)
        return TensorType(dtype, expr.shape, quant)

    def required_quant(self, expr: ast.TypeExpr, dtype: DType, name: str) -> Quant | None:
        if dtype is DType.F32:
            if expr.quant is not None:
                raise self.fail(expr.quant.loc, "f32 tensors take no scale or zero point")
            return None
        if expr.quant is None:
            raise self.fail(expr.loc, f"'{name}' is {dtype.value}: give its scale and zero point, "
                            f"e.g. {dtype.value} @ scale(0.05) zero(0)")
        return self.quant_of(expr.quant, dtype)

    def output_type(self, layer: BoundLayer, shape: tuple[int, ...], default_quant: Quant | None) -> TensorType:
        """The layer's type: its annotation checked against the op's shape, or the default."""
        decl = layer.decl
        expr = decl.type
        if expr is None:
            if self.model_dtype.is_integer and default_quant is None:
                example = "q7" if self.fixed else f"{self.model_dtype.value} @ scale(0.05) zero(0)"
                raise self.fail(decl.loc, f"'{decl.name}' is computed in {self.arithmetic}: declare its type, "
                                f"e.g. ': {example}'")
            dtype = default_quant.fixed.storage if default_quant and default_quant.fixed else self.model_dtype
            return TensorType(dtype, shape, default_quant)
        fmt = self.format_of(expr)
        dtype = fmt.storage if fmt is not None else self.dtype_of(expr)
        if (fmt is not None) != self.fixed or (fmt is None and dtype is not self.model_dtype):
            raise self.fail(expr.loc, f"'{decl.name}' is declared {expr.dtype}, but the network computes in "
                            f"{self.arithmetic} (affine, float and fixed-point tensors do not mix)")
        if expr.shape is not None and expr.shape != shape:
            raise self.fail(expr.loc, f"'{decl.name}' is declared {shape_text(expr.shape)}, but "
                            f"{decl.call.op} produces {shape_text(shape)}")
        if fmt is not None:
            return TensorType(dtype, shape, Quant.of_format(fmt))
        if dtype is DType.F32:
            return TensorType(dtype, shape, self.required_quant(expr, dtype, decl.name))
        quant = default_quant if expr.quant is None else self.quant_of(expr.quant, dtype)
        if quant is None:
            quant = self.required_quant(expr, dtype, decl.name)
        return TensorType(dtype, shape, quant)

    def shape_within_limits(self, loc: Loc, what: str, shape: tuple[int, ...]) -> None:
        """No tensor beyond MAX_RANK axes or MAX_TENSOR_ELEMENTS elements reaches the analyses that hold it."""
        if len(shape) > MAX_RANK:
            raise self.fail(loc, f"{what} has {len(shape)} axes; nndsl takes tensors of at most {MAX_RANK}")
        count = element_count(shape)
        if count > MAX_TENSOR_ELEMENTS:
            raise self.fail(loc, f"{what} has {count} elements (shape {shape_text(shape)}); nndsl takes tensors "
                            f"of at most {power_text(MAX_TENSOR_ELEMENTS)} elements")

    def window_within_limits(self, loc: Loc, op: str, name: str, window: ir.Window) -> None:
        """A window's taps are visited one by one; strides and dilations must fit the generated C's int32."""
        taps = element_count(window.size)
        if taps > MAX_WINDOW_TAPS:
            raise self.fail(loc, f"{op} '{name}' has a window of {taps} taps ({'x'.join(map(str, window.size))}); "
                            f"nndsl takes windows of at most {power_text(MAX_WINDOW_TAPS)} taps")
        for what, values in (("stride", window.stride), ("dilation", window.dilation)):
            if max(values) > MAX_TENSOR_ELEMENTS:
                raise self.fail(loc, f"{op} '{name}' has a {what} of {max(values)}; nndsl takes strides and "
                                f"dilations of at most {power_text(MAX_TENSOR_ELEMENTS)}")

    def within_limits(self, layer: BoundLayer, op: ir.Op) -> None:
        """An op too large to check or run is an error before any array of its size exists."""
        loc, name = layer.decl.call.loc, layer.decl.name
        self.shape_within_limits(loc, f"'{name}'", op.output.type.shape)
        if isinstance(op, ir.Conv | ir.Pool):
            self.window_within_limits(loc, layer.decl.call.op, name, op.window)
        costs = _op_costs(op, self.model_dtype.is_integer)
        for amount, what in costs:
            if amount > MAX_OP_WORK:
                raise self.fail(loc, f"{layer.decl.call.op} '{name}' needs {amount} {what}; nndsl takes at most "
                                f"{power_text(MAX_OP_WORK)} per layer")
        self.network_elements += op.output.type.size
        self.network_work += max(amount for amount, _ in costs)
        if self.network_elements > MAX_NETWORK_ELEMENTS:
            raise self.fail(loc, f"the network's tensors reach {self.network_elements} elements in all at '{name}'; "
                            f"nndsl takes at most {power_text(MAX_NETWORK_ELEMENTS)} per network")
        if self.network_work > MAX_NETWORK_WORK:
            raise self.fail(loc, f"the network's layers reach {self.network_work} multiply-accumulates, window "
                            f"reads or elements in all at '{name}'; nndsl takes at most "
                            f"{power_text(MAX_NETWORK_WORK)} per network")

    # -- weights --------------------------------------------------------------------------------

    def weight(self, layer: BoundLayer, role: str, shape: tuple[int, ...], dtype: DType,
               channels: int | None = None, channels_text: str = "") -> ir.Tensor | None:
        """A weight array of the layer, checked for shape and dtype; int8 arrays get their scales.

        ``channels_text`` says how the output channels are counted when that is not obvious (depthwise).
        """
        ref = layer.weights.get(role)
        if ref is None:
            return None
        data = self.resolved.weights[ref.name]
        where = f"{layer.decl.call.op} {role} '{ref.name}'"
        if data.shape != shape:
            raise self.fail(ref.loc, f"{where} has shape {shape_text(data.shape)}, expected {shape_text(shape)}")
        if self.fixed and dtype is not DType.F32:
            storages = BIAS_STORAGES if role == "bias" else KERNEL_STORAGES
            return self.fixed_weight(ref, where, data, storages)
        if dtype is DType.F32:
            if data.dtype.kind != "f":
                network = ("in an f32 network" if self.model_dtype is DType.F32
                           else f"(its parameters are float even in an {self.model_dtype.value} network)")
                raise self.fail(ref.loc, f"{where} is {data.dtype}, expected a float array {network}")
            with np.errstate(over="ignore"):
                data = data.astype(np.float32)
            if not np.all(np.isfinite(data)):
                raise self.fail(ref.loc, f"{where} has values that are not finite float32 numbers (inf, nan or "
                                f"beyond ±{np.finfo(np.float32).max:.3g})")
        elif data.dtype != dtype.numpy:
            raise self.fail(ref.loc, f"{where} is {data.dtype}, expected {np.dtype(dtype.numpy)}")
        quant = None
        if dtype is DType.I8:
            assert channels is not None, "int8 weights need their output-channel count"
            quant = self.weight_quant(ref, where, channels, len(shape) - 1, channels_text)
        return self.const(ref.name, TensorType(dtype, shape, quant), ref.loc, data)

    def weight_quant(self, ref: ast.Ref, where: str, channels: int, axis: int, channels_text: str = "") -> Quant:
        """``NAME.scale`` (one, or one per output channel) and optional ``NAME.zero_point`` (zeros)."""
        weights = self.resolved.weights
        scale = weights.get(f"{ref.name}.scale")
        if scale is None:
            raise self.fail(ref.loc, f"{where} is int8: the .npz needs its scale as '{ref.name}.scale' "
                            f"(one value, or {channels} for per-channel scales)")
        scales = np.asarray(scale, dtype=np.float64).reshape(-1)
        if scales.size not in (1, channels):
            counted = f" (one per output channel: {channels_text})" if channels_text else ""
            raise self.fail(ref.loc, f"'{ref.name}.scale' has {scales.size} values, expected 1 or {channels}{counted}")
        if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise self.fail(ref.loc, f"'{ref.name}.scale' must be positive (smallest is {scales.min():g})")
        with np.errstate(over="ignore", under="ignore"):
            as_f32 = scales.astype(np.float32)
        if np.any(as_f32 == 0) or not np.all(np.isfinite(as_f32)):
            raise self.fail(ref.loc, f"'{ref.name}.scale' is outside the range of float32 "
                            f"({scales.min():g} to {scales.max():g})")
        zero = weights.get(f"{ref.name}.zero_point")
        if zero is not None and np.any(np.asarray(zero) != 0):
            raise self.fail(ref.loc, f"'{ref.name}.zero_point' must be 0: int8 weights are symmetric")
        values = tuple(as_float32(s) for s in scales)
        return Quant(values, (0,) * len(values), None if len(values) == 1 else axis)

    def fixed_weight(self, ref: ast.Ref, where: str, data: Array, storages: tuple[DType, ...]) -> ir.Tensor:
        """A qM.N weight: an int8/int16(/int32 for biases) array and its ``NAME.frac_bits`` (its N)."""
        storage = next((d for d in storages if data.dtype == d.numpy), None)
        names = " or ".join([", ".join(str(d.numpy) for d in storages[:-1]), str(storages[-1].numpy)])
        if storage is None:
            raise self.fail(ref.loc, f"{where} is {data.dtype}, expected {names} in a fixed-point network (with its "
                            f"fraction bits as '{ref.name}.frac_bits')")
        frac = self.resolved.weights.get(f"{ref.name}.frac_bits")
        if frac is None:
            raise self.fail(ref.loc, f"{where} is fixed point: the .npz needs its fraction bits as "
                            f"'{ref.name}.frac_bits' (e.g. 7 for q7 weights)")
        frac_bits = frac.reshape(-1)
        whole = frac_bits.size == 1 and frac_bits.dtype.kind in "iu"
        if not whole or not 0 <= int(frac_bits[0]) <= MAX_WEIGHT_FRAC_BITS:
            shown = frac_bits.tolist() if frac_bits.size <= 4 else f"{frac_bits.size} values"
            raise self.fail(ref.loc, f"'{ref.name}.frac_bits' must be one integer (an integer array of one value) "
                            f"from 0 to {MAX_WEIGHT_FRAC_BITS}, got {frac_bits.dtype} {shown}")
        fmt = QFormat.stored_in(storage, int(frac_bits[0]))
        return self.const(ref.name, TensorType(storage, data.shape, Quant.of_format(fmt)), ref.loc, data)

    def const(self, name: str, type_: TensorType, loc: Loc, data: Array) -> ir.Tensor:
        existing = self.consts.get(name)
        if existing is not None:
            return existing
        tensor = ir.Tensor(name, type_, loc, data)
        self.consts[name] = tensor
        return tensor

    # -- ops --------------------------------------------------------------------------------------

    def only_activation(self, layer: BoundLayer, allowed: bool) -> ir.ActivationKind:
        activations = layer.decl.call.activations
        if not activations:
            return ir.ActivationKind.NONE
        first = activations[0]
        if not allowed:
            raise self.fail(first.loc, f"'{layer.decl.call.op}' cannot be followed by an activation; "
                            f"write it as its own layer, e.g. y = {first.name}(x)")
        if len(activations) > 1:
            raise self.fail(activations[1].loc, "one fused activation per layer")
        kind = ir.ActivationKind.from_name(first.name)
        if kind is None:
            known = ", ".join(k.value for k in ir.ActivationKind if k is not ir.ActivationKind.NONE)
            op = SIGNATURES.get(first.name)
            hint = f"; write it as its own layer, e.g. y = {first.name}(x)" if op and op.min_args == 1 else \
                did_you_mean(first.name, [k.value for k in ir.ActivationKind if k is not ir.ActivationKind.NONE])
            raise self.fail(first.loc, f"unknown activation '{first.name}' (fusable: {known}){hint}")
        return kind

    def attrs(self, layer: BoundLayer) -> Attrs:
        """The layer's keyword attributes: unknown, repeated and missing required ones are errors."""
        signature = layer.signature
        known = {a.name: a for a in signature.attrs}
        given: dict[str, ast.KeywordArg] = {}
        for kwarg in layer.decl.call.kwargs:
            if kwarg.name not in known:
                names = ", ".join(known) or "none"
                hint = did_you_mean(kwarg.name, known)
                raise self.fail(kwarg.loc, f"'{signature.name}' has no attribute '{kwarg.name}'{hint} "
                                f"(attributes: {names})")
            if kwarg.name in given:
                raise self.fail(kwarg.loc, f"attribute '{kwarg.name}' given twice")
            given[kwarg.name] = kwarg
        for attr in signature.attrs:
            if attr.required and attr.name not in given:
                raise self.fail(layer.decl.call.loc, f"'{signature.name}' needs '{attr.name}=...' "
                                f"(usage: {signature.usage})")
        return Attrs(signature.name, given, self.fail)

    def same_quant(self, layer: BoundLayer, out_type: TensorType, x: ir.Tensor, what: str) -> None:
        """Ops that move int8 bytes without rescaling keep their input's quantisation."""
        if out_type.quant != x.type.quant:
            loc = layer.decl.type.loc if layer.decl.type is not None else layer.decl.loc
            raise self.fail(loc, f"{what} keeps its input's quantisation ({quant_text(x.type.quant)}), "
                            f"declared {quant_text(out_type.quant)}")

    def fixed_quant(self, layer: BoundLayer, out_type: TensorType, required: Quant | None, what: str) -> None:
        """Integer kernels whose output quantisation TFLM fixes (softmax, tanh, sigmoid)."""
        if required is not None and out_type.quant != required:
            loc = layer.decl.type.loc if layer.decl.type is not None else layer.decl.loc
            raise self.fail(loc, f"{self.integer_name} {what} output must be {self.model_dtype.value} @ "
                            f"{quant_text(required)}, "
                            f"declared {quant_text(out_type.quant)}")

    @property
    def integer_name(self) -> str:
        """How messages name the network's arithmetic: int8, int16 (or f32)."""
        if self.fixed:
            return "fixed-point"
        return {DType.I8: "int8", DType.I16: "int16"}.get(self.model_dtype, self.model_dtype.value)

    @property
    def arithmetic(self) -> str:
        """The network's arithmetic as types name it: f32, i8, i16 or fixed point (qM.N)."""
        return "fixed point (qM.N)" if self.fixed else self.model_dtype.value

    @property
    def bias_dtype(self) -> DType:
        """Biases are int32 in integer networks (scale: input scale x kernel scale), else f32."""
        return self.model_dtype.bias

    def tensor(self, layer: BoundLayer, type_: TensorType) -> ir.Tensor:
        """The layer's output tensor."""
        return ir.Tensor(layer.decl.name, type_, layer.decl.loc)

    # -- float edges --------------------------------------------------------------------------------

    def arithmetic_of(self, input_type: TensorType) -> DType:
        """The input's type, or for an f32 input that a ``quantize`` layer declares i8 or i16, that type."""
        if input_type.dtype is not DType.F32:
            return input_type.dtype
        name = self.resolved.input.name
        for layer in self.resolved.layers:
            expr = layer.decl.type
            if layer.signature.name == "quantize" and layer.tensors[0].name == name and expr is not None:
                dtype = DType.from_name(expr.dtype)
                if dtype in (DType.I8, DType.I16):
                    return dtype
        return DType.F32

    def float_edge_ok(self, layer: BoundLayer, sources: list[ir.Tensor | None]) -> bool:
        """In an integer network only ``quantize`` reads the f32 input and nothing reads a ``dequantize``."""
        if not self.model_dtype.is_integer or layer.signature.name == "quantize":
            return True
        for ref, source in zip(layer.tensors, sources, strict=True):
            if source is not None and source.type.dtype is DType.F32:
                self.sink.error(ref.loc, f"'{layer.decl.call.op}' reads '{ref.name}', an f32 tensor of an "
                                f"{self.model_dtype.value} network: quantize it first (a float output comes "
                                f"last, from dequantize)")
                return False
        return True

    # -- driver -----------------------------------------------------------------------------------

    def run(self) -> ir.Graph | None:
        resolved = self.resolved
        try:
            input_type = self.input_type(resolved.input)
        except CheckFailed:
            return None
        self.model_dtype = self.arithmetic_of(input_type)
        self.fixed = input_type.fixed is not None
        self.network_elements = input_type.size
        graph_input = ir.Tensor(resolved.input.name, input_type, resolved.input.loc)
        self.tensors[graph_input.name] = graph_input
        ops: list[ir.AnyOp] = []
        for layer in resolved.layers:
            sources = [self.tensors.get(ref.name) for ref in layer.tensors]
            if any(s is None for s in sources):
                continue  # an input of this layer already failed
            rule = RULES[layer.signature.name]
            if not self.float_edge_ok(layer, sources):
                continue
            if self.fixed and layer.signature.name not in FIXED_POINT_OPS:
                self.sink.error(layer.decl.call.loc, f"'{layer.signature.name}' has no fixed-point (qM.N) kernel; "
                                f"fixed-point networks use: {', '.join(sorted(FIXED_POINT_OPS))}")
                continue
            try:
                op = rule(self, layer, *sources)
                self.within_limits(layer, op)
            except CheckFailed:
                continue
            ops.append(op)
            self.tensors[op.output.name] = op.output
        if self.sink.errors:
            return None
        output = self.tensors[resolved.output]
        return ir.Graph(resolved.program.name, resolved.path, graph_input, output, ops, resolved.target)


def check(resolved: ResolvedProgram, sink: DiagnosticSink) -> ir.Graph | None:
    """The typed graph of a resolved program; None (with errors in ``sink``) when it is ill-typed."""
    return Checker(resolved, sink).run()
