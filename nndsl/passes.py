"""Graph passes between checking and code generation.

- :func:`fuse_activations`: a stand-alone relu/relu6 that keeps its input's
  quantisation becomes the clamp of the dense, conv, add or pool before it (bit-exact:
  the identity requantisation of the activation changes nothing).
- :func:`fold_batch_norms`: batch norm into the conv or dense before it
  (:mod:`nndsl.fold` holds the arithmetic).
- :func:`plan_memory`: arena offsets from tensor lifetimes, so peak RAM is the
  least that the op order allows with first-fit placement, and less where
  layers write over their own input (pointwise and depthwise convolutions
  whose kernels allow it, :mod:`nndsl.fast_kernels`).
"""

from __future__ import annotations

from dataclasses import replace

from nndsl import fast_kernels, ir
from nndsl.diagnostics import DiagnosticSink
from nndsl.fold import batch_norm_as_depthwise, fold_into
from nndsl.types import DType

ALIGNMENT = 4  # bytes; every arena tensor starts on a word boundary (int32 and float access)


FusableOp = ir.Dense | ir.Conv | ir.Add | ir.Pool


def _consumers(graph: ir.Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in graph.ops:
        for tensor in op.inputs:
            counts[tensor.name] = counts.get(tensor.name, 0) + 1
    return counts


def _producer_to_fold(graph: ir.Graph, ops: list[ir.AnyOp], op: ir.Op, consumers: dict[str, int]) -> ir.AnyOp | None:
    """The op just before ``op`` when ``op`` only post-processes its otherwise unused output."""
    previous = ops[-1] if ops else None
    if (
        previous is None
        or previous.output is not op.input
        or consumers.get(previous.output.name) != 1
        or previous.output is graph.output
    ):
        return None
    return previous


def fuse_activations(graph: ir.Graph) -> ir.Graph:
    """Fold ``y = relu(conv(...))`` (dense, add, pools too) into the op before it.

    Only when nothing else reads the op's output and the activation keeps the
    quantisation, so the activation's requantisation is the identity.
    """
    consumers = _consumers(graph)
    fused: list[ir.AnyOp] = []
    for op in graph.ops:
        previous = _producer_to_fold(graph, fused, op, consumers)
        if (
            isinstance(op, ir.Activation)
            and isinstance(previous, FusableOp)
            and previous.activation is ir.ActivationKind.NONE
            and previous.output.type.quant == op.output.type.quant
        ):
            fused[-1] = replace(previous, output=op.output, activation=op.activation)
            continue
        fused.append(op)
    return replace(graph, ops=fused)


def fold_batch_norms(graph: ir.Graph, sink: DiagnosticSink) -> ir.Graph:
    """Fold each batch_norm into the dense or conv before it; int8 ones that cannot fold become depthwise convs."""
    consumers = _consumers(graph)
    folded: list[ir.AnyOp] = []
    for op in graph.ops:
        if not isinstance(op, ir.BatchNorm):
            folded.append(op)
            continue
        previous = _producer_to_fold(graph, folded, op, consumers)
        if isinstance(previous, ir.Dense | ir.Conv) and previous.activation is ir.ActivationKind.NONE:
            replacement = fold_into(previous, op)
            if replacement is not None:
                folded[-1] = replacement
                continue
        folded.append(op if graph.dtype is DType.F32 else batch_norm_as_depthwise(op, sink))
    return replace(graph, ops=folded)


def plan_memory(graph: ir.Graph, in_place: bool = True) -> ir.MemoryPlan:
    """Arena offsets from tensor lifetimes; with ``in_place``, layers whose kernels allow it share their
    input's bytes (tests compare the two plans)."""
    plan = ir.MemoryPlan()
    roots = plan.roots
    roots[graph.input.name] = graph.input.name
    for op in graph.ops:
        roots[op.output.name] = roots[op.input.name] if isinstance(op, ir.Reshape) else op.output.name
    output_root = roots[graph.output.name]
    plan.output_copies_input = output_root == graph.input.name
    plan.storage[graph.input.name] = ir.Storage.INPUT
    if not plan.output_copies_input:
        plan.storage[output_root] = ir.Storage.OUTPUT
    if in_place:
        _share_in_place(graph, plan, output_root)

    birth: dict[str, int] = {}
    death: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        birth.setdefault(roots[op.output.name], index)
        for tensor in op.inputs:
            death[roots[tensor.name]] = index
    sizes = {t.name: t.type.nbytes for t in graph.tensors if roots[t.name] == t.name}
    arena_roots = [name for name in sizes if name not in plan.storage]

    placed: list[tuple[int, int, str]] = []  # (offset, end, name)
    for name in sorted(arena_roots, key=lambda n: (-sizes[n], birth[n])):
        live = death.get(name, birth[name])
        overlapping = sorted(
            (start, end) for start, end, other in placed
            if not (death.get(other, birth[other]) < birth[name] or live < birth[other])
        )
        offset = 0
        for start, end in overlapping:
            if offset + sizes[name] <= start:
                break
            offset = max(offset, _align(end))
        placed.append((offset, offset + sizes[name], name))
        plan.offsets[name] = offset
        plan.storage[name] = ir.Storage.ARENA
    plan.arena_size = max((end for _, end, _ in placed), default=0)
    return plan


def _share_in_place(graph: ir.Graph, plan: ir.MemoryPlan, output_root: str) -> None:
    """Let an op whose kernel may write over its input (:func:`fast_kernels.runs_in_place`) share its input's
    bytes when nothing reads the input afterwards and both live in the arena: its output's root becomes its
    input's. Below the op-order minimum: a chain of such layers needs one buffer, not two."""
    last_read: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        for tensor in op.inputs:
            last_read[plan.roots[tensor.name]] = index
    aliased: dict[str, str] = {}
    for index, op in enumerate(graph.ops):
        source = plan.roots[op.input.name]
        own = plan.roots[op.output.name]
        arena = source != graph.input.name and own == op.output.name and own != output_root
        if arena and last_read[source] == index and fast_kernels.runs_in_place(op):
            aliased[own] = aliased.get(source, source)
            plan.in_place.add(op.output.name)
    for name, root in plan.roots.items():
        plan.roots[name] = aliased.get(root, root)


def _align(offset: int) -> int:
    return (offset + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
