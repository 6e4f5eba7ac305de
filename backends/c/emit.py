"""Turn a lowered, planned graph into plain view data and lay it out with Jinja2.

The emitter decides names, pointers and constants; the templates in
``templates/`` only arrange text (one macro per op kind in ``ops.c.j2``), and
the integer helpers come from ``runtime/*.c``, which mirror :mod:`nndsl.qmath`.
The output depends only on the graph: the same model gives the same bytes.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.lower import IDENTITY_MULTIPLIER
from nndsl.summary import model_weight_bytes
from nndsl.types import DType

C_KEYWORDS = frozenset({
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool",
    "_Complex", "_Imaginary", "main",
})
VALUES_PER_LINE = 16


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


def identifier(name: str) -> str:
    """A C identifier made from a model name (dots and dashes become underscores)."""
    text = re.sub(r"\W", "_", name)
    return f"m_{text}" if text[0].isdigit() or text in C_KEYWORDS or keyword.iskeyword(text) else text


@dataclass(frozen=True)
class CArray:
    name: str
    c_type: str
    body: str
    length: int
    comment: str


class _Emitter:
    def __init__(self, graph: ir.Graph) -> None:
        self.graph = graph
        self.prefix = identifier(graph.name)
        self.arrays: list[CArray] = []
        self.array_names: dict[str, str] = {}
        self.runtime: set[str] = set()
        self.reserved = _reserved_names(self.prefix)
        source_lines = _read_source_lines(graph.source_path)
        self.source_lines = source_lines

    # -- constants ---------------------------------------------------------------------------------

    def const_array(self, key: str, data: npt.NDArray[np.generic], dtype: DType, comment: str) -> str:
        if key in self.array_names:
            return self.array_names[key]
        base = f"{self.prefix}_{identifier(key)}"
        name = base
        taken = {a.name for a in self.arrays} | self.reserved
        suffix = 1
        while name in taken:
            suffix += 1
            name = f"{base}_{suffix}"
        self.arrays.append(CArray(name, dtype.c_type, c_array_body(data, dtype), int(data.size), comment))
        self.array_names[key] = name
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
        return f"({qualifier}{c_type} *)(arena + {offset})"

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

    def view(self, op: ir.Op) -> dict[str, Any]:
        common = {
            "comment": self.source_line(op),
            "input": self.pointer(op.input, const=True),
            "output": self.pointer(op.output, const=False),
            "size": op.output.type.size,
        }
        match op:
            case ir.Dense():
                return common | self.dense_view(op)
            case ir.Activation():
                return common | self.activation_view(op)
            case ir.Softmax():
                return common | self.softmax_view(op)
            case ir.Reshape():
                return common | {"macro": "reshape"}
        raise AssertionError(f"C backend: unhandled op {type(op).__name__}")

    def dense_view(self, op: ir.Dense) -> dict[str, Any]:
        assert op.kernel.data is not None
        features, units = op.kernel.type.shape
        kernel = self.const_array(op.kernel.name, np.ascontiguousarray(op.kernel.data.T), op.kernel.type.dtype,
                                  f"{op.kernel.name}: [{units}][{features}], transposed from [inputs, outputs]")
        bias = None
        if op.bias is not None and op.bias.data is not None:
            bias = self.const_array(op.bias.name, op.bias.data, op.bias.type.dtype, f"{op.bias.name}: [{units}]")
        view: dict[str, Any] = {
            "rows": op.input.type.size // features, "features": features, "units": units,
            "kernel": kernel, "bias": bias,
        }
        if op.requant is None:
            low, high = op.activation.real_range
            return view | {"macro": "dense_f32", "low": _opt_float(low), "high": _opt_float(high)}
        self.runtime.add("requant")
        return view | {"macro": "dense_s8", "q": op.requant} | self.requant_arrays(op, op.requant)

    def activation_view(self, op: ir.Activation) -> dict[str, Any]:
        if op.requant is None:
            low, high = op.activation.real_range
            return {"macro": "clamp_f32", "low": _opt_float(low), "high": _opt_float(high)}
        requant = op.requant
        identity = (requant.multipliers[0], requant.shifts[0]) == IDENTITY_MULTIPLIER
        unshifted = requant.input_offset == -requant.output_offset
        macro = "clamp_s8" if identity and unshifted else "requant_s8"
        if macro == "requant_s8":  # clamp_s8 calls nothing: an unused static nn_mbqm fails -Werror
            self.runtime.add("requant")
        return {"macro": macro, "q": requant} | self.requant_arrays(op, requant)

    def softmax_view(self, op: ir.Softmax) -> dict[str, Any]:
        depth = op.input.type.shape[-1]
        rows = op.input.type.size // depth
        if op.params is None:
            return {"macro": "softmax_f32", "rows": rows, "depth": depth, "beta": c_float(op.beta)}
        self.runtime.update(("requant", "softmax"))
        return {"macro": "softmax_s8", "rows": rows, "depth": depth, "p": op.params}

    # -- files -----------------------------------------------------------------------------------------

    def render(self) -> CSources:
        graph = self.graph
        ops = [self.view(op) for op in graph.ops]
        env = _environment()
        runtime = [_runtime_source(name) for name in ("requant", "softmax") if name in self.runtime]
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
            "arena_size": graph.plan.arena_size,
            "ops": ops,
            "arrays": self.arrays,
            "runtime": runtime,
            "macs": sum(op.macs for op in graph.ops),
            "weight_bytes": model_weight_bytes(graph),
            "copy_input": graph.plan.output_copies_input,
            "uses_math": graph.dtype is DType.F32 and any(isinstance(op, ir.Softmax) for op in graph.ops),
            "c_float": c_float,
        }
        source = env.get_template("model.c.j2").render(context)
        header = env.get_template("model.h.j2").render(context)
        return CSources(self.prefix, _tidy(source), _tidy(header))


def _opt_float(value: float | None) -> str | None:
    return None if value is None else c_float(value)


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
    for runtime in ("requant", "softmax"):
        names.update(re.findall(r"\b(nn_\w+)\s*\(", _runtime_source(runtime)))
    return frozenset(names)


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


def compile(graph: ir.Graph) -> CSources:
    """C sources for a lowered graph whose memory is planned."""
    return _Emitter(graph).render()
