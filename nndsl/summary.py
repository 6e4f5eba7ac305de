"""What a model costs: parameters, weight bytes, MACs, arena, flash, time.

The numbers ``nndsl summarize`` prints and the device budget is checked
against. Code size is an estimate (bytes of Thumb-2 per op kind, measured
order-of-magnitude figures for nndsl's C at -Os), so flash is weights plus
that estimate; time is MACs x cycles-per-MAC of the target's core / clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nndsl import fast_kernels, ir
from nndsl.diagnostics import DiagnosticSink
from nndsl.ir import assert_never
from nndsl.kernels import AVG_POOL, DEPTHWISE, LIBM, MATMUL, MBQM64, REQUANT, SHIFT, RuntimeCode, Table
from nndsl.target import Target
from nndsl.types import DType

# Estimated code bytes: the entry point and arena, then per op and per runtime helper.
CODE_BYTES_BASE = 128
CODE_BYTES_PER_OP = {
    "dense": 160, "conv": 320, "pool": 200, "global_pool": 96, "add": 48, "concat": 48, "pad": 96,
    "activation": 64, "function": 48, "batch_norm": 64, "softmax": 120, "reshape": 0, "binary": 96,
    "layout": 40, "reduce": 48, "recurrent": 96,
}
@dataclass(frozen=True)
class LayerSummary:
    name: str
    op: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    weight_bytes: int
    macs: int
    arena_bytes: int
    cycles: float
    latency_ms: float | None  # at the target's clock; None without a target


@dataclass(frozen=True)
class TargetSummary:
    name: str
    ram_bytes: int
    flash_bytes: int
    clock_hz: float
    latency_budget_ms: float | None
    cycles_per_mac: float
    fits_ram: bool
    fits_flash: bool
    fits_latency: bool

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_flash and self.fits_latency


@dataclass(frozen=True)
class Summary:
    name: str
    layers: tuple[LayerSummary, ...]
    params: int
    weight_bytes: int
    macs: int
    arena_bytes: int
    code_bytes_estimate: int
    flash_bytes: int
    cycles: float
    latency_ms: float | None
    target: TargetSummary | None
    state_bytes: int = 0  # recurrent state kept between calls (static, outside the arena)

    @property
    def ram_bytes(self) -> int:
        """RAM the model holds: its arena and its state."""
        return self.arena_bytes + self.state_bytes

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        if self.target is not None:
            data["target"]["fits"] = self.target.fits
        return data


def _code_bytes(graph: ir.Graph) -> int:
    """Estimated bytes of code: the entry point, each op's loop, each runtime helper once, and the lookup
    tables the kernels are given (each once)."""
    total = CODE_BYTES_BASE + sum(CODE_BYTES_PER_OP[_op_family(op)] for op in graph.ops)
    helpers: set[RuntimeCode] = set()
    tables: dict[str, int] = {}
    for op in graph.ops:
        helpers.update(_runtime_helpers(op, graph.dtype.is_integer))
        kernel = ir.op_kernel(op)
        for arg in kernel.c_args() if kernel is not None else ():
            if isinstance(arg, Table):
                tables[arg.key] = len(arg.values) * arg.dtype.size
    return total + sum(helper.bytes for helper in helpers) + sum(tables.values())


def _runtime_helpers(op: ir.Op, integer: bool) -> tuple[RuntimeCode, ...]:
    """The helpers an op's C calls: its kernel record's, or those of the loop the template writes inline."""
    kernel = ir.op_kernel(op)
    if kernel is not None:
        return kernel.c.code
    if isinstance(op, ir.Lstm):
        record = op.record
        return record.c.code if record is not None else ()
    if not integer:
        return (LIBM,) if isinstance(op, ir.Softmax | ir.Elementwise) else ()
    match op:
        case ir.Pool() | ir.GlobalPool() if op.pool is ir.PoolKind.AVG:
            return (AVG_POOL,)
        case ir.Activation() if isinstance(op.requant, ir.ShiftRequant):
            return () if op.requant.shift == 0 else (REQUANT, SHIFT)  # a clamp only, or a rounding shift
        case ir.Dense() | ir.Conv() if isinstance(op.requant, ir.ShiftRequant):
            return (REQUANT, SHIFT)
        case ir.Dense() | ir.Conv() if op.output.type.dtype is DType.I16:
            return (REQUANT, MBQM64)
        case ir.Conv() if fast_kernels.depthwise_bias(op) is not None:  # the runtime kernels the emitter picks
            return (REQUANT, MATMUL, DEPTHWISE)
        case ir.Dense() | ir.Conv() if fast_kernels.matrix_bias(op) is not None:
            return (REQUANT, MATMUL)
        case ir.Dense() | ir.Conv() | ir.Activation() | ir.Quantize():
            return (REQUANT,)
    return ()


def _op_family(op: ir.AnyOp) -> str:
    match op:
        case ir.Dense():
            return "dense"
        case ir.Conv():
            return "conv"
        case ir.Pool():
            return "pool"
        case ir.GlobalPool():
            return "global_pool"
        case ir.Add():
            return "add"
        case ir.Binary():
            return "binary"
        case ir.Quantize() | ir.Dequantize():
            return "activation"
        case ir.Concat():
            return "concat"
        case ir.Pad():
            return "pad"
        case ir.Activation():
            return "activation"
        case ir.Elementwise():
            return "function"
        case ir.BatchNorm():
            return "batch_norm"
        case ir.Softmax():
            return "softmax"
        case ir.Reshape():
            return "reshape"
        case ir.Transpose() | ir.Slice() | ir.Resize():
            return "layout"
        case ir.Reduce():
            return "reduce"
        case ir.Gru() | ir.Lstm():
            return "recurrent"
        case _:
            assert_never(op)


def layer_cycles_per_mac(target: Target, graph: ir.Graph, op: ir.Op) -> float:
    """The cycles per MAC of one layer on the target: the core's measured figure for the runtime kernel
    that computes it, else the core's figure for the model's arithmetic (or the target's own figure)."""
    core = target.core
    if target.cycles_per_mac is None and graph.dtype is DType.I8:
        if isinstance(op, ir.Dense | ir.Conv) and fast_kernels.matrix_bias(op) is not None:
            return core.cycles_per_mac_matrix or core.cycles_per_mac_i8
        if isinstance(op, ir.Conv) and fast_kernels.depthwise_bias(op) is not None:
            return core.cycles_per_mac_depthwise or core.cycles_per_mac_i8
    return target.cycles_per_mac_for(graph.dtype)


def summarize(graph: ir.Graph) -> Summary:
    target = graph.target
    layers = []
    for op in graph.ops:
        layer_cycles = op.macs * layer_cycles_per_mac(target, graph, op) if target is not None else 0.0
        owns_bytes = graph.plan.roots[op.output.name] == op.output.name
        in_arena = graph.plan.place(op.output.name)[0] is ir.Storage.ARENA
        arena = op.output.type.nbytes if owns_bytes and in_arena else 0
        layers.append(LayerSummary(
            name=op.output.name,
            op=op.kind,
            shape=op.output.type.shape,
            dtype=op.output.type.type_name,
            params=sum(c.type.size for c in op.consts),
            weight_bytes=ir.op_weight_bytes(op),
            macs=op.macs,
            arena_bytes=arena,
            cycles=layer_cycles,
            latency_ms=None if target is None else layer_cycles / target.clock_hz * 1e3,
        ))
    consts = graph.consts
    weight_bytes = ir.model_weight_bytes(graph)
    code = _code_bytes(graph)
    macs = sum(op.macs for op in graph.ops)
    cycles = sum(layer.cycles for layer in layers)
    latency_ms = None
    target_summary = None
    if target is not None:
        cycles_per_mac = cycles / macs if macs else target.cycles_per_mac_for(graph.dtype)
        latency_ms = cycles / target.clock_hz * 1e3
        budget_ms = None if target.latency_s is None else target.latency_s * 1e3
        target_summary = TargetSummary(
            name=target.name,
            ram_bytes=target.ram_bytes,
            flash_bytes=target.flash_bytes,
            clock_hz=target.clock_hz,
            latency_budget_ms=budget_ms,
            cycles_per_mac=cycles_per_mac,
            fits_ram=graph.plan.arena_size + graph.state_bytes <= target.ram_bytes,
            fits_flash=weight_bytes + code <= target.flash_bytes,
            fits_latency=budget_ms is None or latency_ms <= budget_ms,
        )
    return Summary(
        name=graph.name,
        layers=tuple(layers),
        params=sum(c.type.size for c in consts),
        weight_bytes=weight_bytes,
        macs=macs,
        arena_bytes=graph.plan.arena_size,
        code_bytes_estimate=code,
        flash_bytes=weight_bytes + code,
        cycles=cycles,
        latency_ms=latency_ms,
        target=target_summary,
        state_bytes=graph.state_bytes,
    )


def check_budget(graph: ir.Graph, summary: Summary, sink: DiagnosticSink) -> None:
    """Errors at the ``target`` statement when the model does not fit it."""
    target, fit = graph.target, summary.target
    if target is None or fit is None:
        return
    if not fit.fits_flash:
        sink.error(target.loc, f"model needs {summary.flash_bytes} bytes of flash ({summary.weight_bytes} of "
                   f"weights + about {summary.code_bytes_estimate} of code), target '{target.name}' has "
                   f"{target.flash_bytes}")
    if not fit.fits_ram:
        what = (f"({summary.arena_bytes} for its arena and {summary.state_bytes} of recurrent state)"
                if summary.state_bytes else "for its arena")
        sink.error(target.loc, f"model needs {summary.ram_bytes} bytes of RAM {what}, target '{target.name}' has "
                   f"{target.ram_bytes}")
    if not fit.fits_latency and summary.latency_ms is not None and fit.latency_budget_ms is not None:
        sink.error(target.loc, f"estimated latency {summary.latency_ms:.3g} ms ({summary.macs} MACs x "
                   f"{fit.cycles_per_mac:g} cycles at {target.clock_hz / 1e6:g} MHz) exceeds the budget of "
                   f"{fit.latency_budget_ms:g} ms")


__all__ = ["LayerSummary", "Summary", "TargetSummary", "check_budget", "summarize"]
