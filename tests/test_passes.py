"""Activation fusion and the arena plan."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

import nndsl
from nndsl import ir


def write_weights(folder: Path, widths: list[int]) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        arrays[f"l{index}.kernel"] = rng.normal(size=(fan_in, fan_out)).astype(np.float32)
        arrays[f"l{index}.bias"] = rng.normal(size=fan_out).astype(np.float32)
    np.savez(folder / "w.npz", **arrays)


def test_standalone_relu_fuses_into_dense(tmp_path: Path) -> None:
    write_weights(tmp_path, [4, 3])
    source = """network f
weights "w.npz"
input x : f32[4]
h = dense(x, l0.kernel, l0.bias)
output y = relu(h)
"""
    (tmp_path / "f.nn").write_text(source)
    model = nndsl.load(tmp_path / "f.nn")
    (op,) = model.graph.ops
    assert isinstance(op, ir.Dense)
    assert op.activation is ir.ActivationKind.RELU
    assert op.output.name == "y"


def test_arena_reuses_dead_tensors(tmp_path: Path) -> None:
    """A chain of 5 layers needs only two live buffers at a time."""
    widths = [8, 100, 100, 100, 100, 4]
    write_weights(tmp_path, widths)
    lines = ["network chain", 'weights "w.npz"', "input x : f32[8]"]
    previous = "x"
    for index in range(len(widths) - 1):
        name = f"h{index}"
        prefix = "output " if index == len(widths) - 2 else ""
        lines.append(f"{prefix}{name} = dense({previous}, l{index}.kernel, l{index}.bias) -> relu")
        previous = name
    (tmp_path / "chain.nn").write_text("\n".join(lines) + "\n")
    model = nndsl.load(tmp_path / "chain.nn")
    plan = model.graph.plan
    assert plan.arena_size == 2 * 100 * 4
    assert plan.place("x")[0] is ir.Storage.INPUT
    assert plan.place("h4")[0] is ir.Storage.OUTPUT
    offsets = [plan.place(f"h{i}")[1] for i in range(4)]
    assert offsets[0] != offsets[1] and offsets[1] != offsets[2] and offsets[0] == offsets[2]


def test_views_share_their_source_bytes(tmp_path: Path) -> None:
    write_weights(tmp_path, [6, 4])
    source = """network v
weights "w.npz"
input x : f32[2, 3]
flat = flatten(x)
h = dense(flat, l0.kernel, l0.bias)
output y = reshape(h, shape=(2, 2))
"""
    (tmp_path / "v.nn").write_text(source)
    model = nndsl.load(tmp_path / "v.nn")
    plan = model.graph.plan
    assert plan.roots["flat"] == "x"
    assert plan.place("h") == plan.place("y") == (ir.Storage.OUTPUT, 0)
    assert plan.arena_size == 0
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert model.run(x).shape == (2, 2)
