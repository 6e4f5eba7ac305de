"""Layers that write over their own input: the in-place plan against the plain one.

Same outputs (C on the host, sanitised, and NumPy, exactly), a smaller arena,
and no layer ever writes over bytes that a later layer still reads: checked
on the DS-CNN example and on random chains of convolution, depthwise and
pointwise layers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl import ir
from nndsl.passes import plan_memory
from tests.c_harness import find_compiler, run_in_c
from tests.conftest import EXAMPLES

Array = npt.NDArray[np.generic]


def written_over_while_read(graph: ir.Graph, plan: ir.MemoryPlan) -> list[str]:
    """Every (layer, tensor) where the layer's output bytes overlap a tensor that a later layer reads.

    Reshapes share their source's bytes by design and write nothing; a layer may overwrite its own input
    only when it runs in place (its kernel reads each value before writing over it) and nothing reads that
    input afterwards.
    """
    base = {graph.input.name: graph.input.name}
    for op in graph.ops:
        base[op.output.name] = base[op.input.name] if isinstance(op, ir.Reshape) else op.output.name
    last_read: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        for tensor in op.inputs:
            last_read[base[tensor.name]] = index
    sizes = {t.name: t.type.nbytes for t in graph.tensors}

    def span(name: str) -> tuple[ir.Storage, int, int]:
        storage, offset = plan.place(name)
        return storage, offset, offset + sizes[name]

    problems = []
    for index, op in enumerate(graph.ops):
        if isinstance(op, ir.Reshape):
            continue
        storage, start, end = span(op.output.name)
        own_inputs = {base[t.name] for t in op.inputs} if op.output.name not in plan.in_place else set()
        for name, last in last_read.items():
            if name == op.output.name or (last <= index and name not in own_inputs) or name not in sizes:
                continue
            produced = name == graph.input.name or any(o.output.name == name for o in graph.ops[:index])
            other_storage, other_start, other_end = span(name)
            if produced and other_storage is storage and start < other_end and other_start < end:
                problems.append(f"{op.output.name} over {name}")
    return problems


def test_dscnn_in_place_plan_is_smaller_and_safe() -> None:
    model = nndsl.load(EXAMPLES / "dscnn" / "dscnn.nn")
    graph = model.graph
    plain = plan_memory(graph, in_place=False)
    shared = graph.plan
    assert plain.arena_size == 16000 and shared.arena_size <= 8500
    assert shared.in_place == {"dw1_relu", "pw1_relu", "dw2_relu", "pw2_relu", "dw3_relu", "pw3_relu",
                               "dw4_relu", "pw4_relu"}
    assert written_over_while_read(graph, shared) == []
    assert written_over_while_read(graph, plain) == []


def test_the_checker_sees_an_overlap() -> None:
    """A plan that puts two live tensors at one offset is reported (the check can fail)."""
    graph = nndsl.load(EXAMPLES / "dscnn" / "dscnn.nn").graph
    plain = plan_memory(graph, in_place=False)
    broken = replace(plain, offsets={name: 0 for name in plain.offsets})
    assert written_over_while_read(graph, broken)


CHAIN = """network chain
weights "chain.npz"
input x : i8[{h}, {w}, {c}] @ scale(0.05) zero({zx})
a = conv2d(x, k0, b0, padding=same) -> relu : i8 @ scale(0.08) zero(-128)
d1 = depthwise_conv2d(a, k1, b1, padding=same{stride}) -> relu6 : i8 @ scale(0.07) zero(-128)
p1 = conv2d(d1, k2, b2) : i8 @ scale(0.1) zero({zp})
d2 = depthwise_conv2d(p1, k3, b3, padding=same) : i8 @ scale(0.09) zero(3)
output y = conv2d(d2, k4, b4) -> relu : i8 @ scale(0.2) zero(-128)
"""


def random_chain(rng: np.random.Generator, folder: Path) -> nndsl.Model:
    """conv -> depthwise -> pointwise -> depthwise -> pointwise, random sizes (odd channel counts too)."""
    h, w, c = (int(v) for v in rng.integers(1, 8, size=3))
    mid = int(rng.integers(1, 12))
    narrow = int(rng.integers(1, mid + 1))  # a pointwise layer with no more outputs than inputs
    last = int(rng.integers(1, 6))
    stride = ", stride=2" if rng.integers(0, 4) == 0 else ""  # a strided depthwise cannot run in place

    def weights(shape: tuple[int, ...], units: int) -> dict[str, Array]:
        return {"k": rng.integers(-128, 128, size=shape).astype(np.int8),
                "s": rng.uniform(0.002, 0.02, size=units).astype(np.float32),
                "b": rng.integers(-3000, 3000, size=units).astype(np.int32)}

    layers = [weights((3, 3, c, mid), mid), weights((3, 3, mid, 1), mid), weights((1, 1, mid, narrow), narrow),
              weights((3, 3, narrow, 1), narrow), weights((1, 1, narrow, last), last)]
    arrays: dict[str, Array] = {}
    for index, layer in enumerate(layers):
        arrays |= {f"k{index}": layer["k"], f"k{index}.scale": layer["s"], f"b{index}": layer["b"]}
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "chain.npz", **arrays)  # type: ignore[arg-type]
    text = CHAIN.format(h=h, w=w, c=c, zx=int(rng.integers(-128, 128)), zp=int(rng.integers(-128, 128)),
                        stride=stride)
    (folder / "chain.nn").write_text(text, encoding="utf-8")
    return nndsl.load(folder / "chain.nn")


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_random_chains_in_place_equal_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(4242)
    shared_any = 0
    for case in range(12):
        model = random_chain(rng, tmp_path / str(case))
        graph = model.graph
        plain = plan_memory(graph, in_place=False)
        assert written_over_while_read(graph, graph.plan) == []
        assert graph.plan.arena_size <= plain.arena_size
        shared_any += bool(graph.plan.in_place)
        x = rng.integers(-128, 128, size=(5, *graph.input.type.shape)).astype(np.int8)
        x[0], x[1] = -128, 127
        got = run_in_c(model, x, work_dir=tmp_path / str(case), sanitize=True, caller_arena=True)
        assert np.array_equal(got, np.asarray(model.run(x))), case
    assert shared_any >= 6  # most chains have layers that run in place
