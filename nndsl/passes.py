"""Graph passes between checking and code generation.

- :func:`fuse_activations`: a stand-alone relu/relu6 that keeps its input's
  quantisation becomes the clamp of the dense layer before it (bit-exact:
  the identity requantisation of the activation changes nothing).
- :func:`plan_memory`: arena offsets from tensor lifetimes, so peak RAM is the
  least that the op order allows with first-fit placement.
"""

from __future__ import annotations

from dataclasses import replace

from nndsl import ir

ALIGNMENT = 4  # bytes; every arena tensor starts on a word boundary (int32 and float access)


def _consumers(graph: ir.Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in graph.ops:
        counts[op.input.name] = counts.get(op.input.name, 0) + 1
    return counts


def fuse_activations(graph: ir.Graph) -> ir.Graph:
    """Fold ``y = relu(dense(...))`` into the dense op when nothing else reads the dense output."""
    consumers = _consumers(graph)
    fused: list[ir.Op] = []
    for op in graph.ops:
        previous = fused[-1] if fused else None
        if (
            isinstance(op, ir.Activation)
            and isinstance(previous, ir.Dense)
            and previous.output is op.input
            and previous.activation is ir.ActivationKind.NONE
            and consumers.get(previous.output.name) == 1
            and previous.output is not graph.output
            and previous.output.type.quant == op.output.type.quant
        ):
            fused[-1] = replace(previous, output=op.output, activation=op.activation)
            continue
        fused.append(op)
    return replace(graph, ops=fused)


def plan_memory(graph: ir.Graph) -> ir.MemoryPlan:
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

    birth: dict[str, int] = {}
    death: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        birth.setdefault(roots[op.output.name], index)
        death[roots[op.input.name]] = index
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


def _align(offset: int) -> int:
    return (offset + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
