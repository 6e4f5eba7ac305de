"""The lowered program as text: each op with its source line, buffers, parameters and kernel.

``nndsl check --ir`` prints it; golden files of the examples pin lowering
without going through C. The dump walks the dataclass fields of each op and
record, so a new op or parameter appears without a change here.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from typing import Any

import numpy as np

from nndsl import fast_kernels, ir

# Longer integer tuples (per-channel multipliers, tables) print their size, ends and a digest.
SHOWN_VALUES = 8


def dump(graph: ir.Graph) -> str:
    plan = graph.plan
    lines = [f"network {graph.name}: {_tensor(graph.input)} -> {_tensor(graph.output)}, "
             f"arena {plan.arena_size} B, {graph.dtype.value}"]
    for index, op in enumerate(graph.ops):
        where = f"{op.loc.path.rsplit('/', 1)[-1]}:{op.loc.line}"
        inputs = ", ".join(t.name for t in op.inputs)
        lines.append(f"{index}: {op.output.name} = {op.kind}({inputs})  # {where}")
        lines.append(f"    out {_tensor(op.output)} in {_place(plan, op.output.name)}")
        for field in dataclasses.fields(op):
            if field.name in ("loc", "inputs", "output"):
                continue
            lines.append(f"    {field.name} {_value(getattr(op, field.name))}")
        runtime = _runtime_kernel(op)
        if runtime is not None:
            lines.append(f"    c {runtime}")
    return "\n".join(lines) + "\n"


def _runtime_kernel(op: ir.Op) -> str | None:
    """The C function an op's record names, or the int8 runtime kernel that serves a dense/conv layer."""
    record = ir.op_kernel(op)
    if record is not None:
        return record.c.function or record.c.macro
    if isinstance(op, ir.Dense | ir.Conv):
        if fast_kernels.matrix_bias(op) is not None:
            return "nn_mat_s8"
        if isinstance(op, ir.Conv) and fast_kernels.depthwise_bias(op) is not None:
            return "nn_depthwise_s8"
    return None


def _tensor(tensor: ir.Tensor) -> str:
    return f"{tensor.name}: {tensor.type}"


def _place(plan: ir.MemoryPlan, name: str) -> str:
    storage, offset = plan.place(name)
    text = storage.value if storage is not ir.Storage.ARENA else f"arena+{offset}"
    return text + (" (in place)" if name in plan.in_place else "")


def _value(value: Any) -> str:
    if isinstance(value, ir.Tensor):
        if value.data is None:
            return _tensor(value)
        digest = hashlib.sha256(np.ascontiguousarray(value.data).tobytes()).hexdigest()[:12]
        return f"{_tensor(value)} sha256:{digest}"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = (f"{f.name}={_value(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__name__}({', '.join(parts)})"
    if isinstance(value, tuple) and len(value) > SHOWN_VALUES:
        digest = hashlib.sha256(repr(value).encode()).hexdigest()[:12]
        return f"({len(value)} values: {_value(value[:3])[1:-1]}, ..., {_value(value[-2:])[1:-1]}; sha256:{digest})"
    if isinstance(value, tuple):
        return "(" + ", ".join(_value(v) for v in value) + ")"
    return repr(value)
