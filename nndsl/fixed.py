"""Converting an f32 network to power-of-two fixed point (``nndsl to-fixed``).

The float model runs on calibration inputs; each tensor a layer computes
(dense, convolutions, add) gets the qM.N format of ``activation_bits`` bits
with the most fraction bits that still hold its largest calibrated value times
``2^headroom``; tanh, sigmoid and softmax give q7 after an int8-stored input
and q15 after an int16 one; the other layers keep their input's format. Each
kernel gets the most fraction bits its largest weight allows in ``weight_bits`` bits,
fewer if that is what keeps every int32 sum provably in range (the sum of a
channel's absolute weights times the largest input its format holds), and
fewer if the output shift would exceed 31 bits. Biases become int32 at their
accumulator's fraction bits. The result is the same ``.nn`` program with
fixed-point types, and a new ``.npz``; it is checked (range analysis
included) before anything is written.
"""

from __future__ import annotations

import dataclasses
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ast, ir
from nndsl.backend import backend
from nndsl.check import check
from nndsl.cnames import c_name_problem, network_name_from
from nndsl.diagnostics import Diagnostic, DiagnosticSink, Loc, NNError
from nndsl.files import write_files
from nndsl.ops import FIXED_POINT_OPS
from nndsl.parser import KEYWORDS, parse
from nndsl.pipeline import compile_source, read_source
from nndsl.qmath.shift import MAX_SHIFT, to_fixed_integers
from nndsl.ranges import ACCUMULATOR_BITS
from nndsl.resolve import resolve
from nndsl.rules.elementwise import unit_format
from nndsl.types import MAX_WEIGHT_FRAC_BITS, DType, QFormat, format_for

Array = npt.NDArray[Any]
COMPUTED = (ir.Dense, ir.Conv, ir.Add, ir.Binary)  # the ops whose output format is calibrated
# tanh, sigmoid, softmax and gru (its state): q7 or q15 out; the other ops keep their input's
FUNCTIONS = (ir.Elementwise, ir.Softmax, ir.Gru)


@dataclass(frozen=True)
class FixedOptions:
    activation_bits: int = 16  # every computed tensor: 8 (int8) up to 16 (int16)
    weight_bits: int = 8  # kernels: 8 (int8) or 16 (int16)
    headroom: int = 1  # bits above the largest calibrated value
    input_format: QFormat | None = None  # default: from the calibration inputs, activation_bits wide
    # (and, where a concat joins the input with computed tensors, as wide as the widest of them)


@dataclass
class Conversion:
    """The fixed-point program: its text, weights, and each layer's chosen format."""

    text: str
    weights: dict[str, Array]
    formats: dict[str, QFormat] = field(default_factory=dict)
    largest: dict[str, float] = field(default_factory=dict)  # calibrated max |value| per tensor
    warnings: list[Diagnostic] = field(default_factory=list)  # the converted model's range warnings
    has_weights: bool = True  # the program names a weights file

    def write(self, nn_path: Path) -> list[Path]:
        """The ``.nn`` file and, when the program has weights, its ``.npz`` beside it (all or nothing)."""
        files: dict[Path, str | bytes] = {nn_path: self.text}
        if self.has_weights:
            files[nn_path.with_suffix(".npz")] = _npz_bytes(self.weights)
        write_files(files)
        return list(files)


def convert(path: Path, calibration: Array, output: Path, options: FixedOptions = FixedOptions(),
            name: str | None = None) -> Conversion:
    """The fixed-point version of the f32 network at ``path``, to be written as ``output`` (and its ``.npz``).

    ``NNError`` when the network has none, or when writing it would replace the model or its weights.
    """
    network_name = name or network_name_from(output.stem)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", network_name) or network_name in KEYWORDS:
        raise NNError.at(Loc.file(str(output)), f"'{network_name}' is not a network name (letters, digits and "
                         f"underscores, not starting with a digit, not a keyword)")
    if (problem := c_name_problem(network_name)) is not None:
        raise NNError.at(Loc.file(str(output)), f"the network name '{network_name}' {problem}")
    source = read_source(path)
    program = parse(source, str(path))
    sink = DiagnosticSink()
    resolved = resolve(program, str(path), sink)
    sink.raise_if_errors()
    assert resolved is not None
    graph = check(resolved, sink)
    sink.raise_if_errors()
    assert graph is not None
    _convertible(graph, resolved.layers, sink)
    sink.raise_if_errors()
    if not 0 <= options.headroom <= 8 or not 8 <= options.activation_bits <= 16 or options.weight_bits not in (8, 16):
        raise NNError.at(Loc.file(str(path)), "to-fixed takes 8 to 16 activation bits, 8 or 16 weight bits and a "
                         "headroom of 0 to 8 bits")
    weights = output.with_suffix(".npz")
    for written, existing in ((output, path), (weights, resolved.weights_path)):
        if existing is not None and written.resolve() == existing.resolve():
            raise NNError.at(Loc.file(str(output)), f"writing {written} would replace the model's own {existing}")
    trace = _calibrate(graph, calibration, path)
    converter = _Converter(graph, options, trace)
    declared = {name: converter.formats[name] for name in converter.declared}
    text = _program_text(program, network_name, weights.name, declared, str(path))
    has_weights = any(isinstance(s, ast.WeightsDecl) for s in program.statements)
    conversion = Conversion(text, converter.weights, converter.formats, converter.largest, has_weights=has_weights)
    conversion.warnings = _check_result(conversion, output)
    return conversion


def _convertible(graph: ir.Graph, layers: tuple[Any, ...], sink: DiagnosticSink) -> None:
    if graph.dtype is not DType.F32:
        sink.error(graph.input.loc, f"to-fixed converts an f32 network; '{graph.input.name}' is "
                   f"{graph.input.type.type_name}")
        return
    for layer in layers:
        op = layer.signature.name
        if op in FIXED_POINT_OPS:
            continue
        hint = {"batch_norm": ": fold it into the weights of the layer before it first"}.get(op, "")
        sink.error(layer.decl.call.loc, f"'{op}' has no fixed-point (qM.N) kernel{hint}")


def _calibrate(graph: ir.Graph, calibration: Array, path: Path) -> dict[str, Array]:
    shape = graph.input.type.shape
    data = np.asarray(calibration)
    if data.dtype.kind != "f" or data.shape[1:] != shape or not len(data):
        raise NNError.at(Loc.file(str(path)), f"calibration inputs must be real numbers shaped [N, "
                         f"{', '.join(map(str, shape))}], got {data.dtype} {list(data.shape)}")
    if not np.all(np.isfinite(data)):
        raise NNError.at(Loc.file(str(path)), "calibration inputs must be finite numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        values: dict[str, Array] = backend("numpy").run(graph, data.astype(np.float32), trace=True)
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            loc = graph.input.loc if name == graph.input.name else next(o.loc for o in graph.ops
                                                                          if o.output.name == name)
            raise NNError.at(loc, f"'{name}' is not finite (inf or nan) on the calibration inputs in float32: "
                             f"no fixed-point format holds it")
    return values


class _Converter:
    """Formats and integer weights, layer by layer in execution order."""

    def __init__(self, graph: ir.Graph, options: FixedOptions, trace: dict[str, Array]) -> None:
        self.options = options
        self.largest = {name: float(np.abs(v).max(initial=0.0)) for name, v in trace.items()}
        self.accumulator_bits = graph.target.accumulator_bits if graph.target is not None else ACCUMULATOR_BITS
        self.formats = self.shared_formats(graph)
        self.weights: dict[str, Array] = {}
        self.bias_frac: dict[str, int] = {}
        for op in graph.ops:
            if isinstance(op, ir.Dense | ir.Conv):
                self.quantize_weights(op)
            elif isinstance(op, ir.Gru):
                self.quantize_gru(op)
            elif isinstance(op, ir.Binary):  # float constants stay float: the checker stores them in a format
                self.weights |= {t.name: t.data for t in op.operands if t.data is not None and "/" not in t.name}

    def calibrated(self, name: str) -> QFormat:
        bits = self.options.activation_bits
        return format_for(self.largest[name], bits, self.options.headroom, max_frac=bits - 1)

    def shared_formats(self, graph: ir.Graph) -> dict[str, QFormat]:
        """One format per group of tensors that must share it: an op that moves values keeps its input's,
        concat's inputs and output are one. The group takes the widest (fewest fraction bits) format its
        sources (the input, computed tensors) were calibrated to, or the input's if ``--input-format`` set it."""
        parent: dict[str, str] = {t.name: t.name for t in graph.tensors}

        def root(name: str) -> str:
            while parent[name] != name:
                name = parent[name]
            return name

        for op in graph.ops:
            if not isinstance(op, COMPUTED + FUNCTIONS):
                for source in op.inputs:
                    parent[root(source.name)] = root(op.output.name)
        in_name = graph.input.name
        wanted = {in_name: self.options.input_format or self.calibrated(in_name)}
        wanted |= {op.output.name: self.calibrated(op.output.name)
                   for op in graph.ops if isinstance(op, COMPUTED)}
        group: dict[str, QFormat] = {}
        for name, fmt in wanted.items():
            current = group.get(root(name))
            if self.options.input_format is not None and root(name) == root(in_name):
                group[root(name)] = self.options.input_format
            elif current is None or fmt.frac_bits < current.frac_bits:
                group[root(name)] = fmt
        for op in graph.ops:  # in order: a function's input format is known before its output's is chosen
            if isinstance(op, FUNCTIONS):
                unit = unit_format(group[root(op.input.name)].storage)
                wanted[op.output.name] = unit
                current = group.get(root(op.output.name))
                group[root(op.output.name)] = unit if current is None or unit.frac_bits < current.frac_bits \
                    else current
        self.declared = list(wanted)  # the tensors whose format the .nn text states
        return {t.name: group[root(t.name)] for t in graph.tensors}

    def quantize_weights(self, op: ir.Dense | ir.Conv) -> None:
        assert op.kernel.data is not None
        kernel = op.kernel.data.astype(np.float64)
        in_fmt, out_fmt = self.formats[op.input.name], self.formats[op.output.name]
        storage = np.dtype(np.int8 if self.options.weight_bits <= 8 else np.int16)
        frac = format_for(float(np.abs(kernel).max(initial=0.0)), 8 * storage.itemsize).frac_bits
        frac = max(0, min(frac, MAX_SHIFT + out_fmt.frac_bits - in_fmt.frac_bits))
        limit = 2.0 ** (self.accumulator_bits - 1)
        while frac > 0 and self.worst_sum(op, to_fixed_integers(kernel, frac, storage), in_fmt, frac) >= limit:
            frac -= 1
        self.weights[op.kernel.name] = to_fixed_integers(kernel, frac, storage)
        self.weights[f"{op.kernel.name}.frac_bits"] = np.array(frac, dtype=np.int32)
        if op.bias is not None and op.bias.data is not None:
            bias_frac = min(in_fmt.frac_bits + frac, self.bias_frac.get(op.bias.name, MAX_WEIGHT_FRAC_BITS))
            self.bias_frac[op.bias.name] = bias_frac
            self.weights[op.bias.name] = to_fixed_integers(op.bias.data, bias_frac, np.dtype(np.int32))
            self.weights[f"{op.bias.name}.frac_bits"] = np.array(bias_frac, dtype=np.int32)

    def quantize_gru(self, op: ir.Gru) -> None:
        """A GRU's kernels with the most fraction bits their storage holds; its bias with as many as both its
        sums have (input + kernel, 15 + recurrent kernel: it is aligned to them) and int32 holds."""
        storage = np.dtype(np.int8 if self.options.weight_bits <= 8 else np.int16)
        fracs = []
        for weight in (op.kernel, op.recurrent):
            assert weight.data is not None
            values = weight.data.astype(np.float64)
            frac = format_for(float(np.abs(values).max(initial=0.0)), 8 * storage.itemsize).frac_bits
            self.weights[weight.name] = to_fixed_integers(values, frac, storage)
            self.weights[f"{weight.name}.frac_bits"] = np.array(frac, dtype=np.int32)
            fracs.append(frac)
        if op.bias is not None and op.bias.data is not None:
            in_fmt = self.formats[op.input.name]
            largest = float(np.abs(op.bias.data.astype(np.float64)).max(initial=0.0))
            bias_frac = min(in_fmt.frac_bits + fracs[0], 15 + fracs[1], MAX_WEIGHT_FRAC_BITS,
                            format_for(largest, 32).frac_bits)
            self.weights[op.bias.name] = to_fixed_integers(op.bias.data, bias_frac, np.dtype(np.int32))
            self.weights[f"{op.bias.name}.frac_bits"] = np.array(bias_frac, dtype=np.int32)

    def worst_sum(self, op: ir.Dense | ir.Conv, kernel: Array, in_fmt: QFormat, frac: int) -> float:
        """A bound on any int32 sum of the layer: absolute weights of a channel times the largest input, plus bias."""
        magnitude = np.abs(kernel.astype(np.float64))
        per_channel = magnitude.reshape(-1, magnitude.shape[-1]).sum(axis=0)  # dense, conv: [.., C, O]
        if isinstance(op, ir.Conv) and op.depthwise:  # [.., C, M]: each output channel sees one input channel
            per_channel = magnitude.reshape(-1, magnitude.shape[-2] * magnitude.shape[-1]).sum(axis=0)
        bias = 0.0
        if op.bias is not None and op.bias.data is not None:
            bias = float(np.abs(op.bias.data.astype(np.float64)).max(initial=0.0)) * 2.0 ** (in_fmt.frac_bits + frac)
        return float(per_channel.max(initial=0.0)) * 2.0 ** (in_fmt.bits - 1) + bias + 1


def _program_text(program: ast.Program, name: str, weights_file: str, formats: dict[str, QFormat],
                  source: str) -> str:
    """The program again with fixed-point types: ``formats`` holds the input's and each computed layer's."""
    lines = [f"# {name}: {program.name} ({Path(source).name}) in power-of-two fixed point, converted by",
             "# `nndsl to-fixed` from calibration inputs. Edit freely.", f"network {name}", ""]
    for statement in program.statements:
        lines.extend(_statement_lines(statement, weights_file, formats))
    return "\n".join(lines) + "\n"


def _statement_lines(statement: ast.Statement, weights_file: str, formats: dict[str, QFormat]) -> Iterator[str]:
    match statement:
        case ast.TargetDecl():
            fields = [f"    {f.name} {f.relation} {f.word if f.word is not None else _quantity(f.quantity)}"
                      for f in statement.fields]
            yield f"target {statement.name} {{" if fields else f"target {statement.name}"
            if fields:
                yield from fields
                yield "}"
            yield ""
        case ast.WeightsDecl():
            yield f'weights "{weights_file}"'
            yield ""
        case ast.InputDecl():
            shape = ", ".join(map(str, statement.type.shape or ()))
            yield f"input {statement.name} : {formats[statement.name].name}[{shape}]"
        case ast.LayerDecl():
            yield _layer_line(statement, formats)
        case ast.OutputDecl():
            yield f"output {statement.name}"


def _layer_line(layer: ast.LayerDecl, formats: dict[str, QFormat]) -> str:
    call = layer.call
    args = [arg.name if isinstance(arg, ast.Ref) else _value(arg.value) for arg in call.args]
    args += [f"{k.name}={_value(k.value)}" for k in call.kwargs]
    text = f"{layer.name} = {call.op}({', '.join(args)})" + "".join(f" -> {a.name}" for a in call.activations)
    if layer.name in formats:  # a layer that keeps its input's format states none
        text += f" : {formats[layer.name].name}"
    return f"output {text}" if layer.is_output else text


def _value(value: ast.Value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value) if isinstance(value, float) else str(value)


def _quantity(quantity: ast.Quantity) -> str:
    number = str(int(quantity.value)) if float(quantity.value).is_integer() else repr(quantity.value)
    return f"{number} {quantity.unit}" if quantity.unit else number


def _npz_bytes(weights: dict[str, Array]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **weights)  # type: ignore[arg-type]
    return buffer.getvalue()


def _check_result(conversion: Conversion, nn_path: Path) -> list[Diagnostic]:
    """Compile the converted text against its weights (in a scratch folder) before anything is written;
    its range warnings, located in ``nn_path``."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / nn_path.with_suffix(".npz").name).write_bytes(_npz_bytes(conversion.weights))
        text_path = folder / nn_path.name
        text_path.write_text(conversion.text, encoding="utf-8")
        try:
            compiled = compile_source(conversion.text, str(text_path))
        except NNError as error:
            messages = "; ".join(d.message for d in error.diagnostics)
            overflow = any("accumulator" in d.message or "partial sum" in d.message for d in error.diagnostics)
            hint = "; try fewer --activation-bits or more --headroom" if overflow else ""
            raise NNError.at(Loc.file(str(nn_path)), f"the converted network does not pass its checks "
                             f"({messages}){hint}") from None
        return [_moved(d, str(text_path), str(nn_path)) for d in compiled.range_warnings()]


def _moved(diagnostic: Diagnostic, scratch: str, path: str) -> Diagnostic:
    loc = diagnostic.loc
    if loc is None or loc.path != scratch:
        return diagnostic
    return dataclasses.replace(diagnostic, loc=dataclasses.replace(loc, path=path))


__all__ = ["Conversion", "FixedOptions", "convert"]
