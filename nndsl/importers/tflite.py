"""TensorFlow Lite flatbuffers to `.nn`: every tensor's quantisation and every op's options carried over.

The flatbuffer is read with TensorFlow's own generated schema module (the
maintained parser, not a hand-written reader). Then:

- ops that only compute shapes for a ``RESHAPE`` (``SHAPE``, ``STRIDED_SLICE``,
  ``PACK``... from a dynamic batch dimension) are dropped: nndsl knows every
  shape statically;
- ``SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND`` becomes a dilated conv;
- 2-D ops of height 1 between ``RESHAPE``/``EXPAND_DIMS`` and back (how Keras
  1-D layers arrive) become 1-D ops on the 1-D tensors;
- reshapes are emitted only where a consumer needs the other shape.

Each supported op has one handler (:data:`HANDLERS`); an op or option nndsl
does not support is an error naming the layer, the op and the option.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.cnames import network_name_from
from nndsl.diagnostics import Loc, NNError
from nndsl.importers.tf import tensorflow
from nndsl.importers.writer import ImportedModel, identifier, scale_text, shape_text
from nndsl.qmath.layout import start_for_axis, stop_for_axis, strided_count

Array = npt.NDArray[Any]

# TensorFlow Lite's enums (schema.fbs), by value.
TENSOR_TYPES = {0: "float32", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 10: "float64"}
PADDING = {0: "same", 1: "valid"}
ACTIVATIONS = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}
# Ops that only move data: a reshape needs its data input alone, the shape input is derived.
SHAPE_ONLY_INPUTS = {"RESHAPE": (0,), "SQUEEZE": (0,), "EXPAND_DIMS": (0,)}


@dataclass
class TfTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    data: Array | None

    @property
    def quantized(self) -> bool:
        return bool(self.scales)

    @property
    def per_tensor(self) -> tuple[float, int]:
        return self.scales[0], self.zero_points[0]


@dataclass
class TfOp:
    index: int
    name: str  # e.g. CONV_2D
    inputs: list[int]
    outputs: list[int]
    options: Any


@dataclass
class TfGraph:
    tensors: list[TfTensor]
    ops: list[TfOp]
    inputs: list[int]
    outputs: list[int]


def _schema() -> Any:
    tensorflow()
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def parse_flatbuffer(data: bytes, source: str) -> TfGraph:
    """The first subgraph of a `.tflite` model as plain tensors and ops."""
    if data[4:8] != b"TFL3":
        raise NNError.at(Loc.file(source), "not a TensorFlow Lite flatbuffer (no TFL3 file identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception:  # the generated parser raises whatever a corrupt buffer triggers
        raise NNError.at(Loc.file(source), "a corrupt TensorFlow Lite flatbuffer: its tables do not parse") from None
    if not model.subgraphs:
        raise NNError.at(Loc.file(source), "the model has no subgraph")
    if len(model.subgraphs) > 1:
        raise NNError.at(Loc.file(source), f"the model has {len(model.subgraphs)} subgraphs (control flow such as "
                         "WHILE or IF, e.g. from an LSTM); nndsl takes one")
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    graph = model.subgraphs[0]
    tensors = [_tensor(model, index, t) for index, t in enumerate(graph.tensors)]
    ops = []
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
            name = f"CUSTOM({custom})"
        inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        ops.append(TfOp(index, name, inputs, outputs, op.builtinOptions))
    return TfGraph(tensors, ops, [int(i) for i in graph.inputs], [int(i) for i in graph.outputs])


def _tensor(model: Any, index: int, tensor: Any) -> TfTensor:
    dtype = TENSOR_TYPES.get(tensor.type, f"type{tensor.type}")
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    quant = tensor.quantization
    scales: tuple[float, ...] = ()
    zeros: tuple[int, ...] = ()
    if quant is not None and quant.scale is not None and len(quant.scale):
        scales = tuple(float(s) for s in quant.scale)
        zeros = tuple(int(z) for z in quant.zeroPoint) if quant.zeroPoint is not None else (0,) * len(scales)
    data = None
    buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buffer is not None and buffer.data is not None and len(buffer.data) and dtype in np.sctypeDict:
        data = np.frombuffer(bytes(bytearray(buffer.data)), dtype=np.dtype(dtype)).reshape(shape)
    return TfTensor(index, name, shape, dtype, scales, zeros, data)


# -- graph clean-up ---------------------------------------------------------------------------------


def needed_ops(graph: TfGraph) -> list[TfOp]:
    """The ops the outputs depend on through data inputs; shape-only computations drop out."""
    producer = {out: op for op in graph.ops for out in op.outputs}
    needed: set[int] = set()
    stack = list(graph.outputs)
    while stack:
        tensor = stack.pop()
        op = producer.get(tensor)
        if op is None or op.index in needed:
            continue
        needed.add(op.index)
        positions = SHAPE_ONLY_INPUTS.get(op.name)
        inputs = [op.inputs[p] for p in positions if p < len(op.inputs)] if positions else op.inputs
        stack.extend(i for i in inputs if i >= 0)
    return [op for op in graph.ops if op.index in needed]


def _scope_layer(component: str, marker: str | None = None) -> str | None:
    """The Keras layer of one op path such as ``functional_1/model_1/conv1d_1/convolution/Squeeze``.

    The layer is the scope just before the op (the part holding ``marker``,
    else the last part). TensorFlow makes scope names unique by appending
    ``_N`` to the layer's name (``dense`` -> ``dense_1``, ``dense_1`` ->
    ``dense_1_2``), so one trailing ``_N`` is dropped.
    """
    parts = [p for p in component.split("/") if p]
    at = next((i for i, p in enumerate(parts) if marker and marker in p), len(parts) - 1)
    if at < 1:
        return None
    return re.sub(r"_\d+$", "", parts[at - 1]) or parts[at - 1]


def layer_name(tensor_name: str) -> str:
    """The name of the layer whose output a tensor is: the last op of a fused chain comes first."""
    return _scope_layer(tensor_name.split(";")[0]) or ""


WEIGHTED_PATHS = ("MatMul", "BiasAdd", "convolution", "depthwise", "Conv2D")


def weights_layer_name(tensor_name: str) -> str:
    """The layer that owns an op's weights (the conv in a conv + batch norm + ReLU chain)."""
    for component in tensor_name.split(";"):
        for marker in WEIGHTED_PATHS:
            if marker in component:
                name = _scope_layer(component, marker)
                if name:
                    return name
    return layer_name(tensor_name)


# -- the importer ---------------------------------------------------------------------------------------


@dataclass
class Binding:
    """Where a TensorFlow Lite tensor's values are in the `.nn` program, and in what shape."""

    name: str
    shape: tuple[int, ...]


class Importer:
    def __init__(self, graph: TfGraph, source: str, name: str) -> None:
        self.graph = graph
        self.source = source
        self.out = ImportedModel(network_name_from(name))
        self.bindings: dict[int, Binding] = {}
        self.reshaped: dict[tuple[int, tuple[int, ...]], str] = {}
        self.integer = False
        self.wide = False  # 16x8: int16 activations
        self.consumed: set[int] = set()  # the tensors a kept op or the graph's output reads

    # -- errors and small helpers ---------------------------------------------------------------------

    def error(self, op: TfOp, message: str) -> NNError:
        layer = layer_name(self.tensor(op.outputs[0]).name) if op.outputs else ""
        layer = layer or self.tensor(op.outputs[0]).name if op.outputs else "?"
        return NNError.at(Loc.file(self.source), f"layer '{layer}' (op {op.index}, {op.name}): {message}")

    def tensor(self, index: int) -> TfTensor:
        return self.graph.tensors[index]

    def const_of(self, op: TfOp, position: int) -> Array:
        """The constant input ``position`` of ``op``, which must be there."""
        data = self.const(op, position)
        if data is None:
            raise self.error(op, f"input {position} is missing")
        return data

    def const(self, op: TfOp, position: int) -> Array | None:
        if position >= len(op.inputs) or op.inputs[position] < 0:
            return None
        data = self.tensor(op.inputs[position]).data
        if data is None:
            raise self.error(op, f"input {position} must be a constant")
        return data

    @staticmethod
    def unbatched(tensor: TfTensor) -> tuple[int, ...]:
        return tensor.shape[1:] if tensor.shape and tensor.shape[0] == 1 else tensor.shape

    def type_text(self, tensor: TfTensor, shape: tuple[int, ...] | None = None) -> str:
        base = {"float32": "f32", "int8": "i8", "int16": "i16"}.get(tensor.dtype)
        if base is None:
            raise NNError.at(Loc.file(self.source), f"tensor '{tensor.name}' is {tensor.dtype}: nndsl imports "
                             "float32, int8 and 16x8 (int16 activations) models")
        text = base if shape is None else f"{base}{shape_text(shape)}"
        if base != "f32":
            if not tensor.quantized:
                raise NNError.at(Loc.file(self.source), f"int8 tensor '{tensor.name}' has no quantisation")
            scale, zero = tensor.per_tensor
            text += f" @ scale({scale_text(scale)}) zero({zero})"
        return text

    def activation(self, op: TfOp) -> str:
        value = getattr(op.options, "fusedActivationFunction", 0)
        kind = ACTIVATIONS.get(value, str(value))
        if kind not in (None, "relu", "relu6"):
            raise self.error(op, f"fused activation {kind.upper()} is not supported (nndsl fuses RELU and RELU6)")
        return f" -> {kind}" if kind else ""

    # -- values ------------------------------------------------------------------------------------------

    def value(self, index: int, shape: tuple[int, ...] | None = None) -> str:
        """The `.nn` name holding tensor ``index`` in ``shape`` (its own by default), reshaping if needed."""
        binding = self.bindings[index]
        tensor = self.tensor(index)
        wanted = self.unbatched(tensor) if shape is None else shape
        if binding.shape == wanted:
            return binding.name
        key = (index, wanted)
        if key not in self.reshaped:
            name = self.out.fresh_name(f"{binding.name}_reshaped")
            dims = ", ".join(map(str, wanted))
            call = f"flatten({binding.name})" if len(wanted) == 1 else f"reshape({binding.name}, shape=({dims}))"
            self.emit(name, call, comment=f"{shape_text(binding.shape)} -> {shape_text(wanted)}")
            self.reshaped[key] = name
        return self.reshaped[key]

    def emit(self, name: str, call: str, type_text: str = "", comment: str = "") -> None:
        line = f"{name} = {call}"
        if type_text:
            line += f" : {type_text}"
        if comment:
            line += f"  # {comment}"
        self.out.lines.append(line)

    def define(self, op: TfOp, call: str, *, typed: bool = True, shape: tuple[int, ...] | None = None,
               comment: str | None = None, output_index: int = 0, name: str | None = None) -> None:
        """Emit the layer that computes ``op``'s output (output ``output_index`` of several) and bind it."""
        output = self.tensor(op.outputs[output_index])
        out_shape = self.unbatched(output) if shape is None else shape
        name = self.out.fresh_name(name or layer_name(output.name) or call.split("(")[0])
        type_text = self.type_text(output) if typed and self.integer else ""
        note = f"{op.name} {shape_text(out_shape)}" if comment is None else comment
        self.emit(name, call, type_text, note)
        self.bindings[op.outputs[output_index]] = Binding(name, out_shape)

    def weight(self, layer: str, role: str, data: Array, scales: tuple[float, ...] | None = None) -> str:
        key = f"{layer}.{role}"
        self.out.weights[key] = np.ascontiguousarray(data)
        if scales is not None:
            self.out.weights[f"{key}.scale"] = np.asarray(scales, dtype=np.float32)
        return key

    def kernel_scales(self, op: TfOp, position: int) -> tuple[float, ...] | None:
        tensor = self.tensor(op.inputs[position])
        if tensor.dtype != "int8":
            return None
        if any(z != 0 for z in tensor.zero_points):
            raise self.error(op, "int8 weights with a non-zero zero point are not supported (nndsl's are symmetric)")
        return tensor.scales

    def weights_args(self, op: TfOp, layer: str, kernel: Array) -> str:
        """``layer.kernel[, layer.bias]`` with the arrays stored under those names."""
        kernel_key = self.weight(layer, "kernel", kernel, self.kernel_scales(op, 1))
        bias = self.const(op, 2)
        if bias is None:
            return kernel_key
        wanted = np.int64 if self.wide else np.int32
        if self.integer and bias.dtype != wanted:
            raise self.error(op, f"bias is {bias.dtype}, nndsl takes {np.dtype(wanted)} biases for "
                             f"{'16x8' if self.wide else 'int8'} layers")
        return f"{kernel_key}, {self.weight(layer, 'bias', bias)}"

    def arithmetic(self, source_input: TfTensor) -> str:
        """The input's type, or for a float input that a QUANTIZE turns int8 or int16, that type."""
        for op in self.graph.ops:
            if op.name == "QUANTIZE" and op.inputs[:1] == [source_input.index]:
                return self.tensor(op.outputs[0]).dtype
        return source_input.dtype

    # -- the walk -----------------------------------------------------------------------------------------

    def run(self) -> ImportedModel:
        graph = self.graph
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise NNError.at(Loc.file(self.source), f"the model has {len(graph.inputs)} inputs and "
                             f"{len(graph.outputs)} outputs; nndsl takes one of each")
        source_input = self.tensor(graph.inputs[0])
        arithmetic = self.arithmetic(source_input)
        self.integer = arithmetic in ("int8", "int16")
        self.wide = arithmetic == "int16"
        in_shape = self.unbatched(source_input)
        in_name = self.out.fresh_name(layer_name(source_input.name) or "x")
        self.out.lines.append(f"input {in_name} : {self.type_text(source_input, in_shape)}")
        self.out.lines.append("")
        self.bindings[graph.inputs[0]] = Binding(in_name, in_shape)
        kept = fold_dilations(graph, needed_ops(graph))
        self.consumed = {i for op in kept for i in op.inputs} | set(graph.outputs)
        for op in kept:
            handler = HANDLERS.get(op.name)
            if handler is None:
                supported = ", ".join(supported_ops())
                raise self.error(op, f"op {op.name} is not supported by nndsl (supported: {supported})")
            handler(self, op)
        output = graph.outputs[0]
        result = self.value(output)
        self.out.lines.append("")
        self.out.lines.append(f"output {result}")
        return self.out


# -- handlers -----------------------------------------------------------------------------------------------


def _fully_connected(imp: Importer, op: TfOp) -> None:
    weights = imp.const(op, 1)
    assert weights is not None
    units, features = weights.shape
    source = imp.tensor(op.inputs[0])
    if int(np.prod(source.shape)) != features:
        raise imp.error(op, f"input of {int(np.prod(source.shape))} values for {features} features: batched or "
                        "keep_num_dims fully connected layers are not supported")
    x = imp.value(op.inputs[0], (features,))
    layer = weights_layer_name(imp.tensor(op.outputs[0]).name) or "dense"
    args = imp.weights_args(op, _weight_prefix(imp, layer), weights.T)
    imp.define(op, f"dense({x}, {args}){imp.activation(op)}", shape=(units,))


def _weight_prefix(imp: Importer, layer: str) -> str:
    base = identifier(layer)
    prefix, number = base, 1
    while any(key.startswith(f"{prefix}.") for key in imp.out.weights):
        number += 1
        prefix = f"{base}_{number}"
    return prefix


def _spatial(imp: Importer, op: TfOp, kernel_hw: tuple[int, int], stride_h: int) -> tuple[bool, str]:
    """Whether a 2-D op is a 1-D one in disguise (height 1 everywhere), and its input as the right shape."""
    _, height, width, channels = imp.tensor(op.inputs[0]).shape
    one_d = height == 1 and kernel_hw[0] == 1 and stride_h == 1
    shape = (width, channels) if one_d else (height, width, channels)
    return one_d, imp.value(op.inputs[0], shape)


def _window_attrs(op: TfOp, one_d: bool, stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> str:
    parts = []
    s = stride[1] if one_d else stride
    d = dilation[1] if one_d else dilation
    if s not in (1, (1, 1)):
        parts.append(f"stride={s if isinstance(s, int) else _pair(s)}")
    if d not in (1, (1, 1)):
        parts.append(f"dilation={d if isinstance(d, int) else _pair(d)}")
    padding = PADDING.get(op.options.padding, "valid")
    if padding != "valid":
        parts.append(f"padding={padding}")
    return "".join(f", {p}" for p in parts)


def _pair(values: tuple[int, int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"({values[0]}, {values[1]})"


def _out_shape(imp: Importer, op: TfOp, one_d: bool) -> tuple[int, ...]:
    shape = imp.unbatched(imp.tensor(op.outputs[0]))
    return shape[1:] if one_d else shape


def _conv(imp: Importer, op: TfOp) -> None:
    weights = imp.const(op, 1)
    assert weights is not None
    options = op.options
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    if depthwise:
        channels = imp.tensor(op.inputs[0]).shape[-1]
        kernel = weights.reshape((*weights.shape[1:3], channels, weights.shape[3] // channels))
    else:
        kernel = weights.transpose(1, 2, 3, 0)  # [O, KH, KW, C] -> [KH, KW, C, O]
    stride = (options.strideH, options.strideW)
    dilation = (options.dilationHFactor, options.dilationWFactor)
    one_d, x = _spatial(imp, op, kernel.shape[:2], stride[0])
    if one_d:
        kernel = kernel[0]
    layer = weights_layer_name(imp.tensor(op.outputs[0]).name) or "conv"
    args = imp.weights_args(op, _weight_prefix(imp, layer), kernel)
    kind = ("depthwise_conv" if depthwise else "conv") + ("1d" if one_d else "2d")
    attrs = _window_attrs(op, one_d, stride, dilation)
    imp.define(op, f"{kind}({x}, {args}{attrs}){imp.activation(op)}", shape=_out_shape(imp, op, one_d))


def _pool(imp: Importer, op: TfOp) -> None:
    options = op.options
    size = (options.filterHeight, options.filterWidth)
    stride = (options.strideH, options.strideW)
    one_d, x = _spatial(imp, op, size, stride[0])
    kind = "max_pool" if op.name == "MAX_POOL_2D" else "avg_pool"
    size_text = str(size[1]) if one_d else _pair(size)
    stride_text = ""
    if (stride[1] if one_d else stride) != (size[1] if one_d else size):
        stride_text = f", stride={stride[1] if one_d else _pair(stride)}"
    padding = PADDING.get(options.padding, "valid")
    padding_text = "" if padding == "valid" else f", padding={padding}"
    imp.define(op, f"{kind}({x}, size={size_text}{stride_text}{padding_text}){imp.activation(op)}",
               typed=False, shape=_out_shape(imp, op, one_d))


def _reduce(imp: Importer, op: TfOp) -> None:
    axes = imp.const(op, 1)
    assert axes is not None
    source = imp.tensor(op.inputs[0])
    rank = len(source.shape)
    spatial = sorted({int(a) % rank for a in np.atleast_1d(axes)})
    if spatial != list(range(1, rank - 1)) or rank < 3:
        _reduce_axes(imp, op, spatial)
        return
    kind = "global_avg_pool" if op.name == "MEAN" else "global_max_pool"
    x = imp.value(op.inputs[0])
    channels = source.shape[-1]
    imp.define(op, f"{kind}({x})", typed=op.name == "MEAN", shape=(channels,))


def _reduce_axes(imp: Importer, op: TfOp, axes: list[int]) -> None:
    """MEAN or REDUCE_MAX over other axes than all positions: ``mean``/``reduce_max`` with TFLite's keep_dims."""
    if op.name == "REDUCE_MAX":
        _moves_values(imp, op, op.inputs[:1])
    keep = bool(getattr(op.options, "keepDims", False))
    if _batch_axis(imp, op):
        if 0 in axes:
            raise imp.error(op, f"reducing axes {axes} includes the batch axis: nndsl reduces the others")
        axes = [a - 1 for a in axes]
    if not keep and len(axes) == len(imp.unbatched(imp.tensor(op.inputs[0]))):
        raise imp.error(op, f"reducing every axis ({axes}) to one value without keep_dims is not supported")
    kind = "mean" if op.name == "MEAN" else "reduce_max"
    keep_text = ", keep_dims=true" if keep else ""
    imp.define(op, f"{kind}({imp.value(op.inputs[0])}, axes={_ints_text(axes)}{keep_text})",
               typed=op.name == "MEAN")


def _binary(imp: Importer, op: TfOp) -> None:
    """ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE: computed or constant operands, broadcast."""
    out = imp.tensor(op.outputs[0])
    shape = imp.unbatched(out)
    operands = [imp.tensor(i) for i in op.inputs[:2]]
    size = int(np.prod(shape))
    if all(t.data is None and int(np.prod(t.shape)) == size for t in operands):
        # Keras's Add on a batch of one may squeeze one input ([1, 4] + [4]): as many values each, one shape.
        args = [imp.value(t.index, shape) for t in operands]
    else:
        args = [_operand(imp, op, t, position, len(out.shape)) for position, t in enumerate(operands)]
    imp.define(op, f"{op.name.lower()}({args[0]}, {args[1]}){imp.activation(op)}", shape=shape)


def _operand(imp: Importer, op: TfOp, tensor: TfTensor, position: int, out_rank: int) -> str:
    """One operand of a broadcasting op, without the batch axis (which an operand of the output's rank has)."""
    shape = tensor.shape[1:] if len(tensor.shape) == out_rank and tensor.shape[:1] == (1,) else tensor.shape
    if tensor.data is None:
        return imp.value(tensor.index, shape)
    data = tensor.data.reshape(shape or (1,))
    wanted = ("int16" if imp.wide else "int8") if imp.integer else "float32"
    if tensor.dtype != wanted:
        raise imp.error(op, f"constant operand '{tensor.name}' is {tensor.dtype}; nndsl takes {wanted} constants "
                        f"in {'16x8' if imp.wide else 'int8' if imp.integer else 'float'} models")
    if len(tensor.scales) > 1:
        raise imp.error(op, f"constant operand '{tensor.name}' is quantised per channel; nndsl takes one scale")
    layer = _weight_prefix(imp, layer_name(imp.tensor(op.outputs[0]).name) or op.name.lower())
    key = imp.weight(layer, f"x{position}", data, tensor.scales[:1] if imp.integer else None)
    if imp.integer:
        imp.out.weights[f"{key}.zero_point"] = np.asarray(tensor.zero_points[:1], dtype=np.int32)
    return key


def _concat(imp: Importer, op: TfOp) -> None:
    if imp.activation(op):
        raise imp.error(op, "a fused activation on CONCATENATION is not supported")
    rank = len(imp.tensor(op.outputs[0]).shape)
    axis = op.options.axis % rank
    if axis == 0:
        raise imp.error(op, "concatenating along the batch axis is not supported")
    inputs = ", ".join(imp.value(i) for i in op.inputs)
    axis_text = "" if axis == rank - 1 else f", axis={axis - 1}"
    imp.define(op, f"concat({inputs}{axis_text})", typed=False)


def _pad(imp: Importer, op: TfOp) -> None:
    pads = imp.const(op, 1)
    assert pads is not None
    if op.name == "PADV2":
        value = imp.const(op, 2)
        out = imp.tensor(op.outputs[0])
        zero = out.per_tensor[1] if out.quantized else 0
        if value is not None and np.any(value != zero):
            raise imp.error(op, f"padding with {value.reshape(-1)[0]} is not supported (nndsl pads with real zero)")
    if pads[0].any():
        raise imp.error(op, "padding the batch axis is not supported")
    pairs = ", ".join(f"({int(a)}, {int(b)})" for a, b in pads[1:])
    imp.define(op, f"pad({imp.value(op.inputs[0])}, pads=({pairs},))", typed=False)


def _reshape(imp: Importer, op: TfOp) -> None:
    """No statement: the output shares the input's values; consumers reshape on demand."""
    imp.bindings[op.outputs[0]] = imp.bindings[op.inputs[0]]


def _batch_axis(imp: Importer, op: TfOp) -> bool:
    """Whether ``op``'s input carries TensorFlow Lite's batch axis of one, which the `.nn` shapes leave out."""
    source = imp.tensor(op.inputs[0])
    return len(imp.unbatched(source)) < len(source.shape)


def _moves_values(imp: Importer, op: TfOp, data: list[int]) -> None:
    """A data-movement op copies bytes: its data inputs and its outputs must share one quantisation."""
    tensors = [imp.tensor(i) for i in (*data, *op.outputs)]
    quants = {(t.scales[:1], t.zero_points[:1]) for t in tensors}
    if imp.integer and len(quants) > 1:
        listed = ", ".join(f"'{t.name}' {scale_text(t.per_tensor[0])}/{t.per_tensor[1]}" for t in tensors)
        raise imp.error(op, f"{op.name} copies values, so its inputs and outputs must share one quantisation "
                        f"(scale/zero point: {listed})")


def _transpose(imp: Importer, op: TfOp) -> None:
    """TRANSPOSE with a constant permutation that keeps the batch axis first."""
    _moves_values(imp, op, op.inputs[:1])
    perm = imp.const(op, 1)
    assert perm is not None
    axes = [int(p) for p in perm.reshape(-1)]
    if _batch_axis(imp, op):
        if axes[0] != 0:
            raise imp.error(op, f"permutation {axes} moves the batch axis: nndsl transposes the other axes")
        axes = [a - 1 for a in axes[1:]]
    perm_text = ", ".join(map(str, axes))
    imp.define(op, f"transpose({imp.value(op.inputs[0])}, perm=({perm_text}{',' if len(axes) == 1 else ''}))",
               typed=False)


def _ints_text(values: list[int]) -> str:
    return f"({', '.join(map(str, values))}{',' if len(values) == 1 else ''})"


def _slice(imp: Importer, op: TfOp) -> None:
    """SLICE with constant begin and size; on the batch axis it must take the one batch."""
    _moves_values(imp, op, op.inputs[:1])
    begin, size = ([int(v) for v in imp.const_of(op, position).reshape(-1)] for position in (1, 2))
    if _batch_axis(imp, op):
        if begin[0] != 0 or size[0] not in (1, -1):
            raise imp.error(op, f"begin {begin} and size {size} slice the batch axis: nndsl slices the others")
        begin, size = begin[1:], size[1:]
    imp.define(op, f"slice({imp.value(op.inputs[0])}, begin={_ints_text(begin)}, size={_ints_text(size)})",
               typed=False)


def _strided_slice(imp: Importer, op: TfOp) -> None:
    """STRIDED_SLICE with constant begin, end and strides and TensorFlow's masks (no ellipsis, no new axis)."""
    _moves_values(imp, op, op.inputs[:1])
    options = op.options
    for name, value in (("ellipsis_mask", options.ellipsisMask), ("new_axis_mask", options.newAxisMask)):
        if value:
            raise imp.error(op, f"{name} {value} is not supported (nndsl slices with begin, end and strides "
                            "per axis)")
    if getattr(options, "offset", False):
        raise imp.error(op, "offset=true (end relative to begin) is not supported")
    begin, end, strides = ([int(v) for v in imp.const_of(op, position).reshape(-1)] for position in (1, 2, 3))
    masks = {"begin_mask": options.beginMask, "end_mask": options.endMask,
             "shrink_axis_mask": options.shrinkAxisMask}
    if _batch_axis(imp, op):
        start = start_for_axis(1, begin[0], strides[0], bool(masks["begin_mask"] & 1))
        stop = stop_for_axis(1, end[0], strides[0], bool(masks["end_mask"] & 1), False, start)
        if masks["shrink_axis_mask"] & 1 or start != 0 or strided_count(start, stop, strides[0]) != 1:
            raise imp.error(op, f"begin {begin}, end {end} and strides {strides} slice or drop the batch axis: "
                            "nndsl slices the others")
        begin, end, strides = begin[1:], end[1:], strides[1:]
        masks = {key: value >> 1 for key, value in masks.items()}
    attrs = f"begin={_ints_text(begin)}, end={_ints_text(end)}"
    if any(s != 1 for s in strides):
        attrs += f", strides={_ints_text(strides)}"
    attrs += "".join(f", {key}={value}" for key, value in masks.items() if value)
    imp.define(op, f"strided_slice({imp.value(op.inputs[0])}, {attrs})", typed=False)


def _parts(imp: Importer, op: TfOp, data: int, axis: int, sizes: list[int]) -> None:
    """SPLIT and SPLIT_V: one ``slice`` per output that something reads, named ``<layer>_part<k>``."""
    _moves_values(imp, op, [data])
    source = imp.tensor(data)
    rank = len(source.shape)
    axis %= rank
    batched = len(imp.unbatched(source)) < rank
    if batched and axis == 0:
        raise imp.error(op, "splitting the batch axis is not supported")
    shape = imp.unbatched(source)
    at = axis - 1 if batched else axis
    x = imp.value(data)
    layer = layer_name(imp.tensor(op.outputs[0]).name) or op.name.lower()
    start = 0
    for k, (output, size) in enumerate(zip(op.outputs, sizes, strict=True)):
        if output in imp.consumed:
            begin = [start if a == at else 0 for a in range(len(shape))]
            count = [size if a == at else -1 for a in range(len(shape))]
            imp.define(op, f"slice({x}, begin={_ints_text(begin)}, size={_ints_text(count)})", typed=False,
                       output_index=k, name=f"{layer}_part{k}",
                       comment=f"{op.name} part {k} of {len(sizes)} {shape_text(imp.unbatched(imp.tensor(output)))}")
        start += size


def _split(imp: Importer, op: TfOp) -> None:
    """SPLIT (axis, input) into equal parts."""
    axis = int(imp.const_of(op, 0).reshape(-1)[0])
    source = imp.tensor(op.inputs[1])
    parts = len(op.outputs)
    length = source.shape[axis % len(source.shape)]
    _parts(imp, op, op.inputs[1], axis, [length // parts] * parts)


def _split_v(imp: Importer, op: TfOp) -> None:
    """SPLIT_V (input, sizes, axis): parts of the given sizes, one of them -1 (the rest)."""
    sizes = [int(v) for v in imp.const_of(op, 1).reshape(-1)]
    axis = int(imp.const_of(op, 2).reshape(-1)[0])
    source = imp.tensor(op.inputs[0])
    length = source.shape[axis % len(source.shape)]
    if -1 in sizes:
        sizes[sizes.index(-1)] = length - sum(s for s in sizes if s != -1)
    _parts(imp, op, op.inputs[0], axis, sizes)


def _unpack(imp: Importer, op: TfOp) -> None:
    """UNPACK along an axis: one ``strided_slice`` dropping that axis per output that something reads."""
    _moves_values(imp, op, op.inputs[:1])
    source = imp.tensor(op.inputs[0])
    rank = len(source.shape)
    axis = op.options.axis % rank
    batched = len(imp.unbatched(source)) < rank
    if batched and axis == 0:
        raise imp.error(op, "unpacking the batch axis is not supported")
    at = axis - 1 if batched else axis
    axes = len(imp.unbatched(source))
    x = imp.value(op.inputs[0])
    whole = (2**axes - 1) & ~(1 << at)
    # A time-major [T, 1, F] source (Keras's unrolled LSTM) keeps its batch axis in the parts: [1, F], bound as
    # such so that their readers reshape to the [F] they expect.
    part_shape = tuple(d for a, d in enumerate(imp.unbatched(source)) if a != at)
    layer = layer_name(imp.tensor(op.outputs[0]).name) or "unpack"
    for k, output in enumerate(op.outputs):
        if output in imp.consumed:
            begin = [k if a == at else 0 for a in range(axes)]
            end = [k + 1 if a == at else 0 for a in range(axes)]
            masks = f", begin_mask={whole}, end_mask={whole}" if whole else ""
            imp.define(op, f"strided_slice({x}, begin={_ints_text(begin)}, end={_ints_text(end)}{masks}, "
                       f"shrink_axis_mask={1 << at})", typed=False, output_index=k, name=f"{layer}_part{k}",
                       shape=part_shape,
                       comment=f"UNPACK part {k} of {len(op.outputs)} {shape_text(imp.unbatched(imp.tensor(output)))}")


def _pack(imp: Importer, op: TfOp) -> None:
    """PACK: each input given an axis of one there (a reshape: a view), then one ``concat`` along it."""
    _moves_values(imp, op, op.inputs)
    out = imp.tensor(op.outputs[0])
    rank = len(out.shape)
    axis = op.options.axis % rank
    batched = len(imp.unbatched(out)) < rank
    if batched and axis == 0:
        raise imp.error(op, "packing along the batch axis is not supported")
    at = axis - 1 if batched else axis
    shape = imp.unbatched(out)
    part = (*shape[:at], 1, *shape[at + 1 :])
    inputs = ", ".join(imp.value(i, part) for i in op.inputs)
    axis_text = "" if at == len(shape) - 1 else f", axis={at}"
    imp.define(op, f"concat({inputs}{axis_text})", typed=False)


def _resize(imp: Importer, op: TfOp) -> None:
    """RESIZE_NEAREST_NEIGHBOR of a [1, H, W, C] tensor to a constant size."""
    _moves_values(imp, op, op.inputs[:1])
    height, width = (int(v) for v in imp.const_of(op, 1).reshape(-1))
    flags = "".join(f", {name}=true" for name, value in (("align_corners", op.options.alignCorners),
                                                          ("half_pixel_centers", op.options.halfPixelCenters))
                    if value)
    imp.define(op, f"resize_nearest_neighbor({imp.value(op.inputs[0])}, size=({height}, {width}){flags})",
               typed=False)


def _softmax(imp: Importer, op: TfOp) -> None:
    beta = float(op.options.beta) if op.options is not None else 1.0
    beta_text = "" if beta == 1.0 else f", beta={beta!r}"
    imp.define(op, f"softmax({imp.value(op.inputs[0])}{beta_text})", typed=False)


def _elementwise(function: str, typed: bool) -> Callable[[Importer, TfOp], None]:
    def handle(imp: Importer, op: TfOp) -> None:
        extra = ""
        if function == "leaky_relu":
            extra = f", alpha={float(np.float32(op.options.alpha))!r}"
        x = imp.value(op.inputs[0])
        out, source = imp.tensor(op.outputs[0]), imp.tensor(op.inputs[0])
        needs_type = typed or (imp.integer and out.per_tensor != source.per_tensor)
        imp.define(op, f"{function}({x}{extra})", typed=needs_type)

    return handle


def _quantize(imp: Importer, op: TfOp) -> None:
    """QUANTIZE of the float input or between two tensors of the network's integer type; DEQUANTIZE to float."""
    source, out = imp.tensor(op.inputs[0]), imp.tensor(op.outputs[0])
    integer = ("int16",) if imp.wide else ("int8",)
    if op.name == "QUANTIZE" and source.dtype in ("float32", *integer) and out.dtype in integer:
        imp.define(op, f"quantize({imp.value(op.inputs[0])})")
    elif op.name == "DEQUANTIZE" and source.dtype in integer and out.dtype == "float32":
        imp.define(op, f"dequantize({imp.value(op.inputs[0])})", typed=False)
    else:
        raise imp.error(op, f"{op.name} from {source.dtype} to {out.dtype} is not supported (nndsl quantises a "
                        f"float input to the network's type, requantises within it and dequantises its output)")


Handler = Callable[[Importer, TfOp], None]
HANDLERS: dict[str, Handler] = {}


# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs (lstm_shared.h): the variants nndsl's lstm does not have.
LSTM_VARIANTS = (((9, 10, 11), "peephole connections (cell-to-gate weights)"),
                 ((16, 17), "a projection layer"), ((20, 21, 22, 23), "layer normalisation"))
LSTM_TANH = 4  # ActivationFunctionType.TANH: the cell gate's and the output's activation


def _lstm_gates(imp: Importer, op: TfOp, first: int, units: int) -> tuple[Array, tuple[float, ...] | None]:
    """Four gate matrices ``[U, n]`` (i, f, c, o) as one ``[n, 4U]`` kernel, and its scales per column."""
    matrices = [imp.const(op, first + k) for k in range(4)]
    scales: list[float] = []
    for k, matrix in enumerate(matrices):
        assert matrix is not None
        gate_scales = imp.kernel_scales(op, first + k)
        if gate_scales is not None:
            scales += list(gate_scales) * (units if len(gate_scales) == 1 else 1)
    kernel = np.concatenate([m.T for m in matrices if m is not None], axis=1)
    return kernel, tuple(scales) if scales else None


def _lstm(imp: Importer, op: TfOp) -> None:
    """UNIDIRECTIONAL_SEQUENCE_LSTM, the standard cell on a batch of one: one ``lstm`` keeping every step."""
    present = [i < len(op.inputs) and op.inputs[i] >= 0 for i in range(24)]
    if not present[1]:
        raise imp.error(op, "an LSTM without input gate (CIFG, coupled input and forget gates) is not supported")
    for positions, variant in LSTM_VARIANTS:
        if any(present[i] for i in positions):
            raise imp.error(op, f"an LSTM with {variant} is not supported: nndsl's lstm is the standard cell")
    if op.options.fusedActivationFunction != LSTM_TANH:
        raise imp.error(op, f"activation {ACTIVATIONS.get(op.options.fusedActivationFunction)} is not supported: "
                        "nndsl's lstm uses tanh")
    source = imp.tensor(op.inputs[0])
    time_major = bool(op.options.timeMajor)
    steps, batch, features = source.shape if time_major else (source.shape[1], source.shape[0], source.shape[2])
    if batch != 1:
        raise imp.error(op, f"a batch of {batch} sequences is not supported: nndsl's lstm runs one sequence")
    weights = imp.const(op, 2)
    assert weights is not None
    units = int(weights.shape[0])
    integer = imp.integer
    if integer and imp.tensor(op.inputs[2]).dtype != "int8":
        raise imp.error(op, "a hybrid LSTM (float activations, int8 weights) is not supported")
    layer = _weight_prefix(imp, weights_layer_name(imp.tensor(op.outputs[0]).name) or "lstm")
    kernel, kernel_scales = _lstm_gates(imp, op, 1, units)
    recurrent, recurrent_scales = _lstm_gates(imp, op, 5, units)
    biases = [imp.const(op, 12 + k) for k in range(4)]
    args = [imp.weight(layer, "kernel", kernel, kernel_scales),
            imp.weight(layer, "recurrent_kernel", recurrent, recurrent_scales)]
    if all(b is not None for b in biases):
        args.append(imp.weight(layer, "bias", np.concatenate([b for b in biases if b is not None])))
    attrs = [f"cell_clip={float(np.float32(op.options.cellClip))!r}"] if op.options.cellClip > 0 else []
    if integer:
        hidden, output = imp.tensor(op.inputs[18]), imp.tensor(op.outputs[0])
        if hidden.per_tensor != output.per_tensor:
            raise imp.error(op, f"the hidden state's quantisation {hidden.per_tensor} differs from the output's "
                            f"{output.per_tensor}: TFLM copies the hidden state to the output")
        attrs.insert(0, f"cell_scale={imp.tensor(op.inputs[19]).per_tensor[0]!r}")
    x = imp.value(op.inputs[0], (steps, features))
    imp.define(op, f"lstm({x}, {', '.join(args)}, {', '.join([*attrs, 'return_sequences=true'])})",
               shape=(steps, units))


def _register(names: tuple[str, ...], handler: Handler) -> None:
    for name in names:
        if name in HANDLERS:
            raise AssertionError(f"two handlers for {name}")
        HANDLERS[name] = handler


_register(("FULLY_CONNECTED",), _fully_connected)
_register(("UNIDIRECTIONAL_SEQUENCE_LSTM",), _lstm)
_register(("CONV_2D", "DEPTHWISE_CONV_2D"), _conv)
_register(("MAX_POOL_2D", "AVERAGE_POOL_2D"), _pool)
_register(("MEAN", "REDUCE_MAX"), _reduce)
_register(("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "PRELU"), _binary)
_register(("CONCATENATION",), _concat)
_register(("PAD", "PADV2"), _pad)
_register(("RESHAPE", "SQUEEZE", "EXPAND_DIMS"), _reshape)
_register(("TRANSPOSE",), _transpose)
_register(("SLICE",), _slice)
_register(("STRIDED_SLICE",), _strided_slice)
_register(("SPLIT",), _split)
_register(("SPLIT_V",), _split_v)
_register(("UNPACK",), _unpack)
_register(("PACK",), _pack)
_register(("RESIZE_NEAREST_NEIGHBOR",), _resize)
_register(("SOFTMAX",), _softmax)
_register(("RELU",), _elementwise("relu", typed=False))
_register(("RELU6",), _elementwise("relu6", typed=False))
_register(("LEAKY_RELU",), _elementwise("leaky_relu", typed=False))
_register(("TANH",), _elementwise("tanh", typed=False))
_register(("LOGISTIC",), _elementwise("sigmoid", typed=False))
_register(("HARD_SWISH",), _elementwise("hard_swish", typed=True))
_register(("QUANTIZE", "DEQUANTIZE"), _quantize)
# Ops with a handler only to explain why they are refused (none at present).
REJECTED: frozenset[str] = frozenset()


# -- dilated convolutions ----------------------------------------------------------------------------------


def fold_dilations(graph: TfGraph, ops: list[TfOp]) -> list[TfOp]:
    """``SPACE_TO_BATCH_ND -> CONV -> BATCH_TO_SPACE_ND`` as one dilated conv (same or valid padding)."""
    producer = {out: op for op in ops for out in op.outputs}
    result: list[TfOp] = []
    for op in ops:
        if op.name == "BATCH_TO_SPACE_ND":
            conv = producer.get(op.inputs[0])
            s2b = producer.get(conv.inputs[0]) if conv is not None else None
            if conv is None or s2b is None or s2b.name != "SPACE_TO_BATCH_ND" or conv.name not in (
                "CONV_2D", "DEPTHWISE_CONV_2D"
            ):
                result.append(op)
                continue
            block = graph.tensors[s2b.inputs[1]].data
            assert block is not None
            options = conv.options
            options.dilationHFactor, options.dilationWFactor = int(block[0]), int(block[1])
            source, target = graph.tensors[s2b.inputs[0]], graph.tensors[op.outputs[0]]
            options.padding = 0 if source.shape[1:3] == target.shape[1:3] else 1  # SAME keeps the size (stride 1)
            folded = TfOp(conv.index, conv.name, [s2b.inputs[0], *conv.inputs[1:]], op.outputs, options)
            result = [r for r in result if r.index not in (conv.index, s2b.index)]
            result.append(folded)
            continue
        result.append(op)
    return result


# -- what a file uses ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpUse:
    """One op code of a file: how often it occurs, what nndsl does with it, the layers of its first uses."""

    name: str
    count: int
    status: str  # "supported", "not supported", or what becomes of it ("dropped: ...", "folded: ...")
    layers: tuple[str, ...]

    @property
    def refused(self) -> bool:
        return self.status == "not supported"


def list_ops(data: bytes, source: str) -> list[OpUse]:
    """Every op code the file's graph holds, in order of first use, with what the importer does with it.

    Ops the output does not need through data are dropped (shape computations
    for a reshape); ``SPACE_TO_BATCH_ND``/``BATCH_TO_SPACE_ND`` around a conv
    fold into its dilation; the others are supported when they have a handler.
    """
    graph = parse_flatbuffer(data, source)
    needed = needed_ops(graph)
    kept = {op.index for op in fold_dilations(graph, needed)}
    needed_indices = {op.index for op in needed}
    uses: dict[str, list[tuple[TfOp, str]]] = {}
    for op in graph.ops:
        if op.index not in needed_indices:
            status = "dropped: a shape computation (nndsl knows every shape)"
        elif op.index not in kept:
            status = "folded into a dilated convolution"
        elif op.name in HANDLERS and op.name not in REJECTED:
            status = "supported"
        else:
            status = "not supported"
        uses.setdefault(op.name, []).append((op, status))
    result = []
    for name, ops in uses.items():
        statuses = [status for _, status in ops]
        status = "not supported" if "not supported" in statuses else statuses[0]
        layers = tuple(dict.fromkeys(_op_layer(graph, op) for op, _ in ops))
        result.append(OpUse(name, len(ops), status, layers))
    return result


def _op_layer(graph: TfGraph, op: TfOp) -> str:
    if not op.outputs:
        return "?"
    tensor = graph.tensors[op.outputs[0]]
    return layer_name(tensor.name) or tensor.name


def format_op_list(source: str, uses: list[OpUse], shown_layers: int = 3) -> str:
    """The table ``nndsl import --list-ops`` prints, then a line naming what is not supported."""
    width = max((len(use.name) for use in uses), default=0)
    lines = [f"{source}: {sum(u.count for u in uses)} ops of {len(uses)} kinds"]
    for use in uses:
        layers = ", ".join(use.layers[:shown_layers]) + (", ..." if len(use.layers) > shown_layers else "")
        lines.append(f"  {use.name:<{width}}  {use.count:>4}  {use.status}  (layers: {layers})")
    refused = [use.name for use in uses if use.refused]
    if refused:
        lines.append(f"not supported: {', '.join(refused)} (nndsl imports {', '.join(supported_ops())})")
    else:
        lines.append("every op is supported")
    return "\n".join(lines)


def supported_ops() -> list[str]:
    """The TFLite op codes the importer turns into `.nn` layers."""
    return sorted(set(HANDLERS) - REJECTED)


def import_tflite(data: bytes, source: str, name: str | None = None) -> ImportedModel:
    """`.tflite` bytes to an :class:`ImportedModel`; errors name the source file."""
    graph = parse_flatbuffer(data, source)
    stem = name or os.path.splitext(os.path.basename(source))[0]
    return Importer(graph, source, stem).run()
