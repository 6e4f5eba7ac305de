"""Turn a lowered, planned graph into plain view data and lay it out with Jinja2.

The emitter decides names, pointers and constants; the templates in
``templates/`` only arrange text (one macro per op kind in ``ops.c.j2``), and
the integer helpers come from ``runtime/*.c``, which mirror :mod:`nndsl.qmath`.
The output depends only on the graph: the same model gives the same bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt

from nndsl import fast_kernels, ir
from nndsl.cnames import identifier
from nndsl.ir import assert_never
from nndsl.kernels import CArg, Kernel, LstmF32, Table, table_array
from nndsl.qmath.requant import IDENTITY_MULTIPLIER, Rounding
from nndsl.types import DType

from .recurrent import gru_view, state_arrays, state_name

VALUES_PER_LINE = 16
# The C runtime, in the order the files are pasted (each may use the ones before it).
RUNTIME_FILES = (
    "requant", "fixedpoint", "matmul", "depthwise", "shift", "softmax", "activations", "binary", "add", "pooling",
    "quantize", "fixed_functions", "layout", "reduce", "resize", "gru", "lstm",
)
# What a runtime file calls in another: nn_rdbpot (requant.c); the DSP helpers and nn_mat_out (matmul.c).
RUNTIME_NEEDS = {"shift": "requant", "matmul": "requant", "depthwise": "matmul"}


@dataclass(frozen=True)
class CSources:
    """The generated files: ``{name}.c`` and ``{name}.h``."""

    name: str
    source: str
    header: str


def c_float(value: float) -> str:
    """A C float literal that reads back as exactly the same float32."""
    if not np.isfinite(np.float32(value)):  # 'inff'/'nanf' would be C that does not compile
        raise ValueError(f"{value!r} is not a finite float32: C has no literal for it")
    text = f"{float(np.float32(value)):.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text + "f"


def c_array_body(data: npt.NDArray[np.generic], dtype: DType) -> str:
    flat = data.reshape(-1)
    items = [c_float(float(v)) for v in flat] if dtype is DType.F32 else [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + VALUES_PER_LINE]) for i in range(0, len(items), VALUES_PER_LINE)]
    return ",\n    ".join(lines) if lines else "0"


MAX_ARRAY_NAME = 63  # the initial characters of an identifier that C99 compilers must tell apart


@dataclass(frozen=True)
class CArray:
    name: str
    c_type: str
    body: str
    length: int
    comment: str


class _Emitter:
    def __init__(self, graph: ir.Graph, prefix: str = "") -> None:
        self.graph = graph
        self.prefix = prefix + identifier(graph.name)
        self.arrays: list[CArray] = []
        self.array_names: dict[str, list[tuple[npt.NDArray[np.generic], DType, str]]] = {}
        self.runtime: set[str] = set()
        self.defines: set[str] = set()
        if graph.rounding is Rounding.SINGLE and graph.dtype is not DType.F32 and not graph.fixed:  # nn_mbqm
            self.defines.add("NN_SINGLE_ROUNDING")
        self.uses_math = False
        self.reserved = _reserved_names(self.prefix) | {state_name(self.prefix, s) for s in graph.states}
        source_lines = _read_source_lines(graph.source_path)
        self.source_lines = source_lines

    # -- constants ---------------------------------------------------------------------------------

    def const_array(self, key: str, data: npt.NDArray[np.generic], dtype: DType, comment: str) -> str:
        """The C array of ``data``, named after ``key``; emitted once per key and content.

        One key may stand for different data: a weight that is the kernel of a conv and of a depthwise conv
        (two layouts), or a user weight and a folded kernel of the same name.
        """
        flat = data.reshape(-1)
        for cached, cached_dtype, name in self.array_names.get(key, []):
            if cached_dtype is dtype and np.array_equal(cached, flat):
                return name
        base = f"{self.prefix}_{identifier(key)}"[: MAX_ARRAY_NAME - 7].rstrip("_")  # room for a suffix
        name = base
        taken = {a.name for a in self.arrays} | self.reserved
        suffix = 1
        while name in taken:
            suffix += 1
            name = f"{base}_{suffix}"
        self.arrays.append(CArray(name, dtype.c_type, c_array_body(data, dtype), int(data.size), comment))
        self.array_names.setdefault(key, []).append((flat, dtype, name))
        return name

    # -- pointers ----------------------------------------------------------------------------------

    def pointer(self, tensor: ir.Tensor, const: bool) -> str:
        storage, offset = self.graph.plan.place(tensor.name)
        c_type = tensor.type.dtype.c_type
        qualifier = "const " if const else ""
        if storage is ir.Storage.INPUT:
            return "input"
        if storage is ir.Storage.OUTPUT:
            return "output"
        # Through void *: the plan aligns every offset for its type (-Wcast-align cannot know it).
        return f"({qualifier}{c_type} *)({qualifier}void *)(arena + {offset})"

    # -- ops -----------------------------------------------------------------------------------------

    def source_line(self, op: ir.Op) -> str:
        line = op.output.loc.line
        if 0 < line <= len(self.source_lines):
            text = self.source_lines[line - 1].strip().replace("*/", "* /").replace("/*", "/ *")
            return f"{op.output.loc.path.rsplit('/', 1)[-1]}:{line}: {text}"
        return op.output.name

    def requant_arrays(self, op: ir.Op, requant: ir.Requant) -> dict[str, Any]:
        if not requant.per_channel:
            return {"multiplier": requant.multipliers[0], "shift": requant.shifts[0], "per_channel": False}
        key = op.output.name  # '/' keeps these keys apart from weight names (a weight may be 'h.shift')
        multipliers = self.const_array(f"{key}/multiplier", np.array(requant.multipliers, dtype=np.int32),
                                       DType.I32, f"{key}: per-channel requantisation multipliers")
        shifts = self.const_array(f"{key}/shift", np.array(requant.shifts, dtype=np.int32),
                                  DType.I32, f"{key}: per-channel shifts")
        return {"multiplier": multipliers, "shift": shifts, "per_channel": True}

    def requant_tables(self, op: ir.Op, requant: ir.Requant) -> dict[str, Any]:
        """The multipliers and shifts as arrays (one entry, step 0, per tensor) for the runtime kernels."""
        key = op.output.name
        multipliers = self.const_array(f"{key}/multiplier", np.array(requant.multipliers, dtype=np.int32),
                                       DType.I32, f"{key}: requantisation multipliers")
        shifts = self.const_array(f"{key}/shift", np.array(requant.shifts, dtype=np.int32),
                                  DType.I32, f"{key}: shifts")
        return {"multiplier": multipliers, "shift": shifts, "step": int(requant.per_channel)}

    def view(self, op: ir.AnyOp) -> dict[str, Any]:
        common = {
            "comment": self.source_line(op),
            "input": self.pointer(op.input, const=True),
            "output": self.pointer(op.output, const=False),
            "size": op.output.type.size,
            "ctype": op.output.type.dtype.c_type,
            "in_ctype": op.input.type.dtype.c_type,
            "type_min": op.output.type.dtype.bounds[0] if op.output.type.dtype.is_integer else None,
            "trace_name": _c_string(op.output.name),  # the layer's name for the <NAME>_TRACE hook
            "trace_data": self.pointer(op.output, const=True),
        }
        match op:
            case ir.Dense():
                return common | self.dense_view(op)
            case ir.Conv():
                return common | self.conv_view(op)
            case ir.Pool():
                return common | self.pool_view(op)
            case ir.GlobalPool():
                return common | self.global_pool_view(op)
            case ir.Add():
                return common | self.add_view(op)
            case ir.Concat():
                return common | self.concat_view(op)
            case ir.Pad():
                return common | self.pad_view(op)
            case ir.Activation():
                return common | self.activation_view(op)
            case ir.Elementwise():
                return common | self.elementwise_view(op)
            case ir.BatchNorm():
                return common | self.batch_norm_view(op)
            case ir.Softmax():
                return common | self.softmax_view(op)
            case ir.Reshape():
                return common | {"macro": "reshape"}
            case ir.Transpose() | ir.Slice() | ir.Resize():
                return common | self.kernel_call(op.impl)
            case ir.Reduce():
                kernel = op.kernel
                assert kernel is not None  # lowering binds an integer mean's
                return common | self.kernel_call(kernel)
            case ir.Binary():
                return common | self.binary_view(op)
            case ir.Dequantize():
                assert op.impl is not None  # lowering always binds its kernel
                return common | self.kernel_call(op.impl)
            case ir.Quantize() if op.impl is not None:
                return common | self.kernel_call(op.impl)
            case ir.Quantize():
                assert op.requant is not None
                self.runtime.add("requant")
                return common | {"macro": "requant_q", "q": op.requant} | self.requant_arrays(op, op.requant)
            case ir.Gru():
                return common | gru_view(self, op)
            case ir.Lstm():
                return common | self.lstm_view(op)
            case _:
                assert_never(op)

    def use(self, runtime: str, define: str | None = None) -> None:
        """Include a runtime file, and what it calls (and enable one of its guarded kernels)."""
        while True:
            self.runtime.add(runtime)
            if runtime not in RUNTIME_NEEDS:
                break
            runtime = RUNTIME_NEEDS[runtime]
        if define is not None:
            self.defines.add(define)

    def bias_array(self, bias: ir.Tensor | None, channels: int) -> str | None:
        if bias is None or bias.data is None:
            return None
        return self.const_array(bias.name, bias.data, bias.type.dtype, f"{bias.name}: [{channels}]")

    def requant_view(self, op: ir.Dense | ir.Conv, requant: ir.Requant | ir.ShiftRequant | None,
                     activation: ir.ActivationKind,
                     integer_macro: str, float_macro: str) -> dict[str, Any]:
        """The output stage of a weighted op: requantisation in int8, a shift in fixed point, a clamp in f32."""
        if requant is None:
            low, high = activation.real_range
            return {"macro": float_macro, "low": _opt_float(low), "high": _opt_float(high)}
        types = {"w_ctype": op.kernel.type.dtype.c_type}
        if isinstance(requant, ir.ShiftRequant):
            self.use("shift")
            return {"macro": integer_macro, "q": requant, "acc_type": "int32_t", "shift_stage": True} | types
        self.use("requant")
        wide = op.output.type.dtype is DType.I16
        stage = {"acc_type": "int64_t" if wide else "int32_t", "mbqm": "nn_mbqm64" if wide else "nn_mbqm",
                 "shift_stage": False}
        return {"macro": integer_macro, "q": requant} | stage | types | self.requant_arrays(op, requant)

    def conv_view(self, op: ir.Conv) -> dict[str, Any]:
        assert op.kernel.data is not None
        window = op.window.as_2d()
        in_shape, out_shape = op.input.type.shape, op.output.type.shape
        size = window.size
        channels, out_channels = in_shape[-1], out_shape[-1]
        kernel = op.kernel.data.reshape((size[0], size[1], channels, -1))
        view = _window_view(window, in_shape, out_shape) | {
            "channels": channels, "out_channels": out_channels, "d_h": window.dilation[0], "d_w": window.dilation[1],
            "depthwise": op.depthwise,
        }
        if op.depthwise:  # [KH][KW][C * M], TensorFlow Lite's depthwise layout
            data = kernel.reshape((size[0], size[1], out_channels))
            layout = f"[{size[0]}][{size[1]}][{out_channels}]"
            depthwise = self.depthwise_view(op, data, layout) if channels == out_channels else None
            if depthwise is not None:
                return view | depthwise
        else:  # [O][KH][KW][C]: each output channel's weights contiguous
            data = np.ascontiguousarray(kernel.transpose(3, 0, 1, 2))
            layout = f"[{out_channels}][{size[0]}][{size[1]}][{channels}]"
            matrix = self.matrix_view(op)
            if matrix is not None:
                in_place = op.output.name in self.graph.plan.in_place
                return view | matrix | conv_matrix_layout(op, view, in_place)
        kernel_name = self.const_array(op.kernel.name, data, op.kernel.type.dtype, f"{op.kernel.name}: {layout}")
        output_stage = self.requant_view(op, op.requant, op.activation, "conv_q", "conv_f32")
        return view | output_stage | {"kernel": kernel_name, "depth_multiplier": out_channels // channels,
                                      "bias": self.bias_array(op.bias, out_channels)}

    def depthwise_view(self, op: ir.Conv, data: npt.NDArray[np.generic], layout: str) -> dict[str, Any] | None:
        """The int8 depthwise kernel (``runtime/depthwise.c``), or None where it does not serve the layer."""
        bias = fast_kernels.depthwise_bias(op)
        requant = fast_kernels.int8_requant(op)
        if bias is None or requant is None:
            return None
        self.use("depthwise")
        channels = op.output.type.shape[-1]
        return {
            "macro": "depthwise_s8", "q": requant, "in_place": op.output.name in self.graph.plan.in_place,
            "kernel": self.const_array(op.kernel.name, data, DType.I8, f"{op.kernel.name}: {layout}"),
            "q_bias": self.const_array(op.bias.name if op.bias is not None else f"{op.output.name}/bias", bias,
                                       DType.I32, f"bias of {op.output.name}: [{channels}]"),
        } | self.requant_tables(op, requant)

    def matrix_view(self, op: ir.Dense | ir.Conv) -> dict[str, Any] | None:
        """The int8 matrix kernel (``runtime/matmul.c``) for a dense or convolution layer, or None where it
        does not serve the layer (:func:`nndsl.fast_kernels.matrix_bias`)."""
        folded = fast_kernels.matrix_bias(op)
        requant = fast_kernels.int8_requant(op)
        if folded is None or requant is None:
            return None
        weights = fast_kernels.unit_rows(op)
        key = op.output.name  # '/' keeps these keys apart from weight names
        units, depth = weights.shape
        self.use("matmul")
        kernel = self.const_array(op.kernel.name, interleave_row_pairs(weights), DType.I8,
                                  f"{op.kernel.name}: [{units}][{depth}], pairs of rows interleaved by fours")
        return {
            "q": requant, "kernel": kernel, "units": units, "depth": depth,
            "q_bias": self.const_array(f"{key}/folded_bias", folded, DType.I32,
                                       f"{key}: bias + input offset x weight row sums [{units}]"),
        } | self.requant_tables(op, requant)

    def pool_view(self, op: ir.Pool) -> dict[str, Any]:
        in_shape, out_shape = op.input.type.shape, op.output.type.shape
        view = _window_view(op.window.as_2d(), in_shape, out_shape) | {
            "channels": in_shape[-1], "is_max": op.pool is ir.PoolKind.MAX,
        }
        if op.act_range is not None:
            view |= {"act_min": op.act_range[0], "act_max": op.act_range[1]}
            if op.pool is ir.PoolKind.AVG:
                return self.average_pool(op, view)
            return view | {"macro": "max_pool_q"}
        low, high = op.activation.real_range
        return view | {"macro": "pool_f32", "low": _opt_float(low), "high": _opt_float(high)}

    def average_pool(self, op: ir.Op, view: dict[str, Any]) -> dict[str, Any]:
        """An integer average pool: the int8 or int16 runtime kernel, by the output's storage."""
        if op.output.type.dtype is DType.I16:
            self.use("pooling", "NN_USE_AVG_POOL_S16")
            return view | {"macro": "avg_pool_q", "function": "nn_avg_pool_s16"}
        self.use("pooling", "NN_USE_AVG_POOL_S8")
        return view | {"macro": "avg_pool_q", "function": "nn_avg_pool_s8"}

    def global_pool_view(self, op: ir.GlobalPool) -> dict[str, Any]:
        channels = op.input.type.shape[-1]
        positions = op.input.type.size // channels
        view = {"positions": positions, "channels": channels, "is_max": op.pool is ir.PoolKind.MAX}
        if op.act_range is not None:  # the fixed-point mean: an average pool whose window is the whole input
            whole = ir.Window2D((1, positions), (1, 1), (1, 1), ((0, 0), (0, 0)))
            return self.average_pool(op, _window_view(whole, (1, positions, channels), (1, 1, channels)) | {
                "channels": channels, "act_min": op.act_range[0], "act_max": op.act_range[1]})
        if op.impl is not None:
            return view | self.kernel_call(op.impl)
        return view | {"macro": "global_pool"}

    def add_view(self, op: ir.Add) -> dict[str, Any]:
        view = {"other": self.pointer(op.inputs[1], const=True), "other_ctype": op.inputs[1].type.dtype.c_type}
        if op.impl is not None:
            return view | self.kernel_call(op.impl)
        low, high = op.activation.real_range
        return view | {"macro": "add_f32", "low": _opt_float(low), "high": _opt_float(high)}

    def concat_view(self, op: ir.Concat) -> dict[str, Any]:
        outer = math.prod(op.output.type.shape[: op.axis])
        parts = [(self.pointer(t, const=True), math.prod(t.type.shape[op.axis :])) for t in op.inputs]
        return {"macro": "concat", "outer": outer, "parts": parts}

    def pad_view(self, op: ir.Pad) -> dict[str, Any]:
        in_shape, out_shape = op.input.type.shape, op.output.type.shape
        quant = op.output.type.quant
        value = str(quant.zero_point) if quant is not None else "0.0f"
        rows = math.prod(in_shape[:-1])
        out_strides = [math.prod(out_shape[i + 1 :]) for i in range(len(out_shape))]
        row_dims = list(in_shape[:-1])
        before = [p[0] for p in op.pads]
        # The output offset of input row r: sum over axes of (index + before) * stride.
        axes = [{"dim": d, "inner": math.prod(row_dims[i + 1 :]), "stride": out_strides[i], "before": before[i]}
                for i, d in enumerate(row_dims)]
        return {"macro": "pad", "value": value, "rows": rows, "row_length": in_shape[-1], "axes": axes,
                "last_before": before[-1], "last_stride": out_strides[-1]}

    def elementwise_view(self, op: ir.Elementwise) -> dict[str, Any]:
        if op.impl is not None:
            return self.kernel_call(op.impl)
        self.uses_math = True
        return {"macro": "function_f32", "function": op.function.value, "alpha": c_float(op.alpha)}

    def batch_norm_view(self, op: ir.BatchNorm) -> dict[str, Any]:
        assert op.scale.data is not None and op.offset.data is not None
        channels = op.input.type.shape[-1]
        scale = self.const_array(op.scale.name, op.scale.data, DType.F32, f"{op.scale.name}: [{channels}]")
        offset = self.const_array(op.offset.name, op.offset.data, DType.F32, f"{op.offset.name}: [{channels}]")
        return {"macro": "batch_norm_f32", "channels": channels, "scale": scale, "offset": offset}

    def dense_view(self, op: ir.Dense) -> dict[str, Any]:
        assert op.kernel.data is not None
        features, units = op.kernel.type.shape
        weights = np.ascontiguousarray(op.kernel.data.T)
        rows = op.input.type.size // features
        matrix = self.matrix_view(op)
        if matrix is not None:
            return matrix | {"macro": "matrix_s8", "positions": rows, "in_stride": features}
        kernel = self.const_array(op.kernel.name, weights, op.kernel.type.dtype,
                                  f"{op.kernel.name}: [{units}][{features}], transposed from [inputs, outputs]")
        view = {"rows": rows, "features": features, "units": units, "kernel": kernel,
                "bias": self.bias_array(op.bias, units)}
        return view | self.requant_view(op, op.requant, op.activation, "dense_q", "dense_f32")

    def activation_view(self, op: ir.Activation) -> dict[str, Any]:
        if op.requant is None:
            low, high = op.activation.real_range
            return {"macro": "clamp_f32", "low": _opt_float(low), "high": _opt_float(high)}
        requant = op.requant
        if isinstance(requant, ir.ShiftRequant):
            if requant.shift == 0:
                return {"macro": "clamp_q", "q": requant}
            self.use("shift")
            return {"macro": "shift_q", "q": requant}
        identity = (requant.multipliers[0], requant.shifts[0]) == IDENTITY_MULTIPLIER
        unshifted = requant.input_offset == -requant.output_offset
        macro = "clamp_q" if identity and unshifted else "requant_q"
        if macro == "requant_q":  # clamp_q calls nothing: an unused static nn_mbqm fails -Werror
            self.runtime.add("requant")
        return {"macro": macro, "q": requant} | self.requant_arrays(op, requant)

    def softmax_view(self, op: ir.Softmax) -> dict[str, Any]:
        depth = op.input.type.shape[-1]
        rows = op.input.type.size // depth
        if op.impl is None:
            self.uses_math = True
            return {"macro": "softmax_f32", "rows": rows, "depth": depth, "beta": c_float(op.beta)}
        return {"rows": rows, "depth": depth} | self.kernel_call(op.impl)

    def binary_view(self, op: ir.Binary) -> dict[str, Any]:
        """A binary op's broadcast walk: each operand's pointer (constants as arrays), the loops and the indexes."""
        shape = op.output.type.shape
        view: dict[str, Any] = {}
        strides = []
        for name, tensor in zip("ab", op.operands, strict=True):
            if tensor.data is not None:
                dims = "x".join(map(str, tensor.type.shape))
                view[name] = self.const_array(tensor.name, tensor.data, tensor.type.dtype,
                                              f"{tensor.name}: [{dims}], a constant operand of '{op.output.name}'")
            else:
                view[name] = self.pointer(tensor, const=True)
            view[f"{name}_ctype"] = tensor.type.dtype.c_type
            strides.append(_broadcast_strides(tensor.type.shape, shape))
        loops = _broadcast_loops(shape, strides[0], strides[1])
        view |= {"loops": [{"var": f"i{d}", "count": count} for d, (count, _, _) in enumerate(loops)],
                 "a_index": _index_text([sa for _, sa, _ in loops]), "b_index": _index_text([sb for _, _, sb in loops])}
        if op.impl is not None:
            return view | self.kernel_call(op.impl)
        low, high = op.activation.real_range
        return view | {"macro": "binary_f32", "expr": F32_BINARY[op.operator], "low": _opt_float(low),
                       "high": _opt_float(high)}

    def lstm_view(self, op: ir.Lstm) -> dict[str, Any]:
        """The weights as const arrays; an int8 layer's columns' multipliers and shifts too, and its scalars."""
        record = op.record
        assert record is not None and op.kernel.data is not None and op.recurrent.data is not None
        self.use("lstm", record.c.guard)
        steps, features = op.input.type.shape
        units = op.units
        view: dict[str, Any] = {
            "macro": "lstm", "function": record.c.function, "steps": steps, "features": features, "units": units,
            "kernel": self.const_array(op.kernel.name, op.kernel.data, op.kernel.type.dtype,
                                       f"{op.kernel.name}: [{features}][{4 * units}], gates i, f, c, o"),
            "recurrent": self.const_array(op.recurrent.name, op.recurrent.data, op.recurrent.type.dtype,
                                          f"{op.recurrent.name}: [{units}][{4 * units}]"),
            "bias": self.bias_array(op.bias, 4 * units) or "NULL",
            "return_sequences": int(op.return_sequences),
            "state": [state_name(self.prefix, s) for s in op.states] if ir.op_states(op) else None,
        }
        if isinstance(record, LstmF32):
            self.uses_math = True
            return view | {"integer": False, "cell_clip": c_float(record.cell_clip)}
        self.use("activations", "NN_USE_TANH_S16")
        self.use("activations", "NN_USE_LOGISTIC_S16")
        self.use("requant")
        p = record.params
        name = op.output.name
        columns = [self.const_array(f"{name}.{role}", np.array(values, dtype=np.int32), DType.I32,
                                    f"{name}: the {role} of each gate column")
                   for role, values in (("input_multipliers", p.input_multipliers), ("input_shifts", p.input_shifts),
                                        ("recurrent_multipliers", p.recurrent_multipliers),
                                        ("recurrent_shifts", p.recurrent_shifts))]
        tanh = p.cell_tanh
        scalars = (p.input_offset, p.hidden_offset, tanh.input_multiplier, tanh.input_left_shift, p.cell_clip,
                   p.forget_multiplier, p.forget_shift, p.update_multiplier, p.update_shift, p.hidden_multiplier,
                   p.hidden_shift, p.output_zero_point)
        return view | {"integer": True, "columns": columns, "params": [str(v) for v in scalars],
                       "zero_point": p.output_zero_point}

    def kernel_call(self, kernel: Kernel) -> dict[str, Any]:
        """A kernel record's call: its runtime files and guard included, its arguments as C text.

        Lookup tables among the arguments become const arrays of the program.
        """
        c = kernel.c
        for runtime in c.runtime:
            self.use(runtime, c.guard)
        args = [self.c_arg(arg) for arg in kernel.c_args()]
        return {"macro": c.macro, "function": c.function, "args": args}

    def c_arg(self, arg: CArg) -> str:
        if isinstance(arg, Table):
            return self.const_array(arg.key, table_array(arg), arg.dtype, arg.comment)
        if isinstance(arg, float):
            return c_float(arg)
        return str(int(arg))

    # -- files -----------------------------------------------------------------------------------------

    def render(self) -> CSources:
        graph = self.graph
        ops = [self.view(op) for op in graph.ops]
        env = _environment()
        single = "NN_SINGLE_ROUNDING" in self.defines
        runtime = [_drop_unused_kernels(_select_rounding(_runtime_source(name), single), self.defines)
                   for name in RUNTIME_FILES if name in self.runtime]
        in_type, out_type = graph.input.type, graph.output.type
        context = {
            "name": self.prefix,
            "NAME": self.prefix.upper(),
            "source": graph.source_path.rsplit("/", 1)[-1],
            "in_ctype": in_type.dtype.c_type,
            "out_ctype": out_type.dtype.c_type,
            "input": in_type,
            "output": out_type,
            "input_quant": in_type.quant,
            "output_quant": out_type.quant,
            "input_format": in_type.fixed,
            "output_format": out_type.fixed,
            "arena_size": graph.plan.arena_size,
            "ops": ops,
            "arrays": self.arrays,
            "runtime": runtime,
            "macs": sum(op.macs for op in graph.ops),
            "weight_bytes": ir.model_weight_bytes(graph),
            "copy_input": graph.plan.output_copies_input,
            "uses_math": self.uses_math,
            "defines": sorted(self.defines),
            "c_float": c_float,
            "states": state_arrays(self.prefix, graph),
            "state_bytes": graph.state_bytes,
        }
        source = _drop_unused_functions(env.get_template("model.c.j2").render(context))
        header = env.get_template("model.h.j2").render(context)
        return CSources(self.prefix, _tidy(source), _tidy(header))


def conv_matrix_layout(op: ir.Conv, view: dict[str, Any], in_place: bool) -> dict[str, Any]:
    """How a convolution feeds the matrix kernel.

    A 1x1 window over every position reads the input as it is. Otherwise each position's taps are gathered
    on the stack, a batch of positions at a time, except where a window one row high lies wholly inside
    the input with its taps adjacent: there consecutive windows are runs of the input itself, ``stride``
    pixels apart, so the interior of each output row is read in place. A layer writing over its input
    gathers every position (it reads each before writing over it).
    """
    window, channels = op.window.as_2d(), view["channels"]
    if fast_kernels.is_pointwise(op) and not in_place:
        return {"macro": "matrix_s8", "positions": view["out_h"] * view["out_w"], "in_stride": channels}
    depth = window.size[0] * window.size[1] * channels
    layout = {"macro": "conv_matrix_s8", "row_taps": window.size[1] * channels,
              "batch": min(fast_kernels.GATHER_BYTES // depth, view["out_h"] * view["out_w"])}
    stride, pad, span = window.stride[1], window.pads[1][0], window.dilation[1] * (window.size[1] - 1) + 1
    inside = [ox for ox in range(view["out_w"]) if ox * stride - pad >= 0 and ox * stride - pad + span <= view["in_w"]]
    if window.size[0] == 1 and window.dilation[1] == 1 and inside and not in_place:
        layout |= {"run_start": inside[0], "run": len(inside), "run_stride": stride * channels}
    return layout


def interleave_row_pairs(weights: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """``[units][depth]`` weights in the matrix kernel's order: each pair of rows interleaved four values at a
    time (then the first row's remaining values, then the second's); an odd last row as it is."""
    units, depth = weights.shape
    whole = depth - depth % 4
    parts = []
    for u in range(0, units - 1, 2):
        pair = weights[u : u + 2]
        groups = pair[:, :whole].reshape(2, -1, 4).transpose(1, 0, 2)  # [group][row][4]
        parts += [groups.reshape(-1), pair[0, whole:], pair[1, whole:]]
    if units % 2:
        parts.append(weights[-1])
    return np.concatenate(parts) if parts else weights.reshape(-1)


def _window_view(window: ir.Window2D, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> dict[str, Any]:
    """Loop bounds of a windowed op in 2-D form (a 1-D op has height 1)."""
    (in_h, in_w), (out_h, out_w) = window.spatial(in_shape), window.spatial(out_shape)
    return {
        "in_h": in_h, "in_w": in_w, "out_h": out_h, "out_w": out_w, "k_h": window.size[0], "k_w": window.size[1],
        "s_h": window.stride[0], "s_w": window.stride[1], "pad_top": window.pads[0][0],
        "pad_left": window.pads[1][0],
    }


# The f32 binary ops as C expressions of the two operand values x and y.
F32_BINARY = {
    ir.BinaryOp.ADD: "x + y",
    ir.BinaryOp.SUB: "x - y",
    ir.BinaryOp.MUL: "x * y",
    ir.BinaryOp.MAXIMUM: "x > y ? x : y",
    ir.BinaryOp.MINIMUM: "x < y ? x : y",
    ir.BinaryOp.SQUARED_DIFFERENCE: "(x - y) * (x - y)",
    ir.BinaryOp.PRELU: "x >= 0.0f ? x : x * y",
}


def _broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, ...]:
    """An operand's element strides along the output's axes: 0 where it repeats (an axis of 1, or a missing one)."""
    padded = (1,) * (len(out) - len(shape)) + shape
    strides = [math.prod(padded[i + 1 :]) for i in range(len(padded))]
    return tuple(0 if n == 1 and m != 1 else stride for n, m, stride in zip(padded, out, strides, strict=True))


def _broadcast_loops(shape: tuple[int, ...], a: tuple[int, ...],
                     b: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """``(count, a stride, b stride)`` per loop, outermost first: axes of 1 dropped, and an axis merged into the
    one before it where both operands step through the two as through one (no broadcast: a single loop)."""
    loops: list[tuple[int, int, int]] = []
    for count, sa, sb in zip(shape, a, b, strict=True):
        if count == 1:
            continue
        if loops and loops[-1][1] == sa * count and loops[-1][2] == sb * count:
            outer = loops.pop()
            loops.append((outer[0] * count, sa, sb))
        else:
            loops.append((count, sa, sb))
    return loops


def _index_text(strides: list[int]) -> str:
    """The C index of an operand's value in the loops ``i0, i1, ...``: ``i0 * 12 + i2``."""
    terms = [f"i{d}" if stride == 1 else f"i{d} * {stride}" for d, stride in enumerate(strides) if stride]
    return " + ".join(terms) or "0"


def _c_string(text: str) -> str:
    """A C string literal of ``text`` (tensor names are identifiers; quotes and backslashes escaped anyway)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _opt_float(value: float | None) -> str | None:
    return None if value is None else c_float(value)


# A runtime function: the comment right before it, then ``static ... nn_name(`` at a line's start, to the
# first line that is only ``}`` (the runtime's layout). The comment pattern cannot run past its own ``*/``.
_RUNTIME_FUNCTION = re.compile(r"(?:/\*[^*]*\*+(?:[^/*][^*]*\*+)*/\n)?^static [^\n(]*\b(nn_\w+)\(.*?^\}\n",
                               re.MULTILINE | re.DOTALL)


def _drop_unused_functions(source: str) -> str:
    """``source`` without the runtime functions nothing calls (``-Wunused-function`` would reject them).

    A runtime file is pasted whole, but a model may call only part of it (a fixed-point model only
    ``nn_rdbpot`` of ``requant.c``; single rounding none of its double-rounding helpers). A function is kept
    when the model's own code calls it, or a kept function does. The arithmetic is unchanged.
    """
    functions = {match[1]: match[0] for match in _RUNTIME_FUNCTION.finditer(source)}
    rest = _RUNTIME_FUNCTION.sub("", source)
    kept: set[str] = set()
    pending = [name for name in functions if re.search(rf"\b{name}\b", rest)]
    while pending:
        name = pending.pop()
        if name not in kept:
            kept.add(name)
            pending.extend(other for other in functions if re.search(rf"\b{other}\(", functions[name]))
    for name, text in functions.items():
        if name not in kept:
            source = source.replace(text, "", 1)
    return source


def _tidy(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def _read_source_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _reserved_names(prefix: str) -> frozenset[str]:
    """C names the templates and the runtime define, which no weight array may take.

    ``<prefix>_run``, ``<PREFIX>_INPUT_SIZE``... from the templates, the runtime's
    ``nn_*`` functions, the run function's parameter and the <stdint.h> types.
    """
    package = resources.files("nndsl.backends.c")
    names = {"arena_memory", "int8_t", "int32_t", "int64_t", "uint32_t", "uint64_t", "size_t"}
    for template in ("model.c.j2", "model.h.j2"):
        text = package.joinpath("templates", template).read_text(encoding="utf-8")
        for case, suffix in re.findall(r"\{\{ (name|NAME) \}\}_(\w+)", text):
            names.add(f"{prefix if case == 'name' else prefix.upper()}_{suffix}")
    for runtime in RUNTIME_FILES:
        # every nn_ name, also the kernels a runtime macro defines per type (NN_ADD_LOOP(nn_add_s8, int8_t))
        names.update(re.findall(r"\b(nn_\w+)", _runtime_source(runtime)))
    return frozenset(names)


_ROUNDING_BLOCK = re.compile(r"#ifdef NN_SINGLE_ROUNDING\n(.*?)#else\n(.*?)#endif\n", re.DOTALL)


def _select_rounding(source: str, single: bool) -> str:
    """A runtime file with only the rounding scheme's side of each ``#ifdef NN_SINGLE_ROUNDING`` block.

    The generated file carries one scheme's code (and defines
    ``NN_SINGLE_ROUNDING`` for the single one), so that the default output
    stays the double-rounding runtime text alone.
    """
    return _ROUNDING_BLOCK.sub(lambda match: match.group(1 if single else 2), source)


# A kernel guard of the runtime: ``#ifdef NN_USE_X`` or ``#if defined(NN_USE_X) || defined(NN_USE_Y)...``.
_GUARD = re.compile(r"#ifdef (NN_USE_\w+)|#if ((?:defined\(NN_USE_\w+\)(?: \|\| )?)+)")
_GUARD_NAME = re.compile(r"NN_USE_\w+")


def _drop_unused_kernels(source: str, defines: set[str]) -> str:
    """``source`` without the kernel guards' blocks that ``defines`` leaves out, and without those guards.

    The compiler would skip the blocks anyway; removing them first lets :func:`_drop_unused_functions` see
    that a helper named only inside a skipped block (a per-type loop macro's element function, say) is unused.
    Other conditionals (``NN_MAT_DSP``...) stay as they are.
    """
    out: list[str] = []
    stack: list[bool | None] = []  # per open conditional: whether its kernel guard holds (None: not a guard)
    lines = iter(source.splitlines(keepends=True))
    for line in lines:
        while line.rstrip("\n").endswith("\\") and line.startswith("#if"):
            line = line.rstrip("\n")[:-1].rstrip() + " " + next(lines).strip() + "\n"
        guard = _GUARD.fullmatch(line.strip())
        if guard is not None:
            stack.append(any(name in defines for name in _GUARD_NAME.findall(line)))
            continue
        if line.startswith("#if"):
            stack.append(None)
        elif line.startswith("#endif"):
            if stack.pop() is not None:
                continue
        elif line.startswith("#else") and stack and stack[-1] is not None:
            raise ValueError("a runtime kernel guard has an #else")
        if all(state is not False for state in stack):
            out.append(line)
    return "".join(out)


def _runtime_source(name: str) -> str:
    return resources.files("nndsl.backends.c").joinpath("runtime", f"{name}.c").read_text(encoding="utf-8")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("nndsl.backends.c", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def compile(graph: ir.Graph, prefix: str = "") -> CSources:
    """C sources for a lowered graph whose memory is planned; every public C name starts with ``prefix``."""
    return _Emitter(graph, prefix).render()
