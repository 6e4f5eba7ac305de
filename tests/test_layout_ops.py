"""The data-movement ops written in `.nn` text: their values, C == NumPy under the sanitizers, their errors,
and how the TensorFlow Lite importer maps TRANSPOSE, SQUEEZE and EXPAND_DIMS (on graphs built here, without
TensorFlow). The comparisons with TensorFlow Lite Micro are in ``test_layout_ops_vs_tflm.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl import ir
from nndsl.diagnostics import NNError
from nndsl.importers.tflite import Importer, TfGraph, TfOp, TfTensor
from nndsl.qmath.layout import simplify, transpose_walk, walk_indices
from nndsl.qmath.resize import nearest_indices
from tests.c_harness import run_in_c

# Each kind of network: its input type with SHAPE where the shape goes, and its storage.
TYPES = {
    "i8": ("i8SHAPE @ scale(0.05) zero(-3)", np.int8),
    "i16": ("i16SHAPE @ scale(0.0004) zero(0)", np.int16),
    "q7": ("q3.4SHAPE", np.int8),
    "f32": ("f32SHAPE", np.float32),
}


def load(tmp_path: Path, text: str) -> nndsl.Model:
    path = tmp_path / "m.nn"
    path.write_text(text)
    return nndsl.load(path)


def inputs_of(dtype: type[np.generic], shape: tuple[int, ...], count: int = 40) -> np.ndarray:
    """Random values over the whole type, with all-lowest and all-highest rows first (q3.4: its 8 bits)."""
    rng = np.random.default_rng(count)
    if dtype == np.float32:
        return rng.normal(size=(count, *shape)).astype(np.float32)
    info = np.iinfo(dtype)
    values = rng.integers(info.min, int(info.max) + 1, size=(count, *shape)).astype(dtype)
    values[0], values[1] = info.min, info.max
    return values


# --------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------


def test_walks_merge_runs_and_drop_single_steps() -> None:
    assert transpose_walk((2, 3, 4), (0, 1, 2)) == simplify(0, (24,), (1,))
    walk = transpose_walk((2, 3, 4), (2, 0, 1))
    assert (walk.counts, walk.strides) == ((4, 6), (1, 4))  # axes 0 and 1 stay adjacent: one loop
    assert simplify(5, (1, 1), (7, 3)).counts == (1,)
    x = np.arange(24).reshape(2, 3, 4)
    assert np.array_equal(walk_indices(walk), x.transpose(2, 0, 1).reshape(-1))


# --------------------------------------------------------------------------
# transpose
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_transpose_moves_values_in_every_type(kind: str, tmp_path: Path) -> None:
    """Two transposes of a [3, 4, 5] tensor (and one of rank 4) equal NumPy's, in the C too, under ASan/UBSan."""
    type_text, dtype = TYPES[kind]
    model = load(tmp_path, f"network t\ninput x : {type_text.replace('SHAPE', '[3, 4, 5]')}\n"
                 "y = transpose(x, perm=(2, 0, 1))\n"
                 "r = reshape(y, shape=(5, 2, 2, 3))\n"
                 "output z = transpose(r, perm=(1, 3, 0, 2))\n")
    assert [op.kind for op in model.graph.ops] == ["transpose", "reshape", "transpose"]
    x = inputs_of(dtype, (3, 4, 5))
    expected = x.transpose(0, 3, 1, 2).reshape(-1, 5, 2, 2, 3).transpose(0, 2, 4, 1, 3)
    ours = model.run(x)
    assert ours.dtype == dtype and np.array_equal(ours, expected)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), ours)


def test_transpose_of_the_input_to_the_output(tmp_path: Path) -> None:
    """A network that is one transpose reads the caller's input and writes the caller's output."""
    model = load(tmp_path, "network t\ninput x : i8[6, 2] @ scale(0.5) zero(1)\noutput y = transpose(x, perm=(1, 0))\n")
    x = inputs_of(np.int8, (6, 2))
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), x.transpose(0, 2, 1))
    assert model.summary().arena_bytes == 0 and model.graph.ops[0].macs == 0


@pytest.mark.parametrize(("layer", "col", "words"), [
    ("y = transpose(x, perm=(1, 0))", 18, "perm has 2 values, expected 3: one per axis of 'x' [3, 4, 5]"),
    ("y = transpose(x, perm=(0, 0, 1))", 18, "perm (0, 0, 1) is not a permutation of the axes 0..2"),
    ("y = transpose(x, perm=(0, 1, 3))", 18, "not a permutation"),
    ("y = transpose(x, perm=(0, 1.5, 2))", 18, "perm must be whole numbers"),
    ("y = transpose(x)", 5, "'transpose' needs 'perm=...'"),
    ("y = transpose(x, perm=(2, 1, 0)) -> relu", 37, "cannot be followed by an activation"),
    ("y = transpose(x, perm=(2, 1, 0)) : i8 @ scale(0.1) zero(0)", 36,
     "transpose keeps its input's quantisation (scale(0.05) zero(-3)), declared scale(0.1) zero(0)"),
    ("y = transpose(x, perm=(2, 1, 0)) : i8[3, 4, 5]", 36, "declared [3, 4, 5], but transpose produces [5, 4, 3]"),
])
def test_transpose_errors_are_located(layer: str, col: int, words: str, tmp_path: Path) -> None:
    with pytest.raises(NNError) as caught:
        load(tmp_path, f"network t\ninput x : i8[3, 4, 5] @ scale(0.05) zero(-3)\n{layer}\noutput y\n")
    first = caught.value.diagnostics[0]
    assert first.loc is not None and (first.loc.line, first.loc.col) == (3, col), first
    assert words in first.message


# --------------------------------------------------------------------------
# The TensorFlow Lite importer, on graphs written here
# --------------------------------------------------------------------------


def _graph(shapes: list[tuple[int, ...]], ops: list[tuple[str, list[int], list[int]]],
           consts: dict[int, np.ndarray]) -> TfGraph:
    """Tensor 0 the int8 input, the last tensor the output; one scale for all; ``consts`` by tensor index."""
    tensors = [TfTensor(i, f"model/layer{i}/op", shape, "int32" if i in consts else "int8",
                        () if i in consts else (0.05,), () if i in consts else (-3,), consts.get(i))
               for i, shape in enumerate(shapes)]
    return TfGraph(tensors, [TfOp(i, name, ins, outs, None) for i, (name, ins, outs) in enumerate(ops)],
                   [0], [len(shapes) - 1])


def test_importer_transposes_without_the_batch_axis(tmp_path: Path) -> None:
    graph = _graph([(1, 3, 4, 2), (4,), (1, 2, 3, 4)], [("TRANSPOSE", [0, 1], [2])],
                   {1: np.array([0, 3, 1, 2], np.int32)})
    imported = Importer(graph, "t.tflite", "t").run()
    assert "layer2 = transpose(layer0, perm=(2, 0, 1))  # TRANSPOSE [2, 3, 4]" in imported.lines
    model = imported.model()
    x = inputs_of(np.int8, (3, 4, 2))
    assert np.array_equal(model.run(x), x.transpose(0, 3, 1, 2))


def test_importer_refuses_a_transpose_of_the_batch_axis() -> None:
    graph = _graph([(1, 3, 4), (3,), (3, 1, 4)], [("TRANSPOSE", [0, 1], [2])], {1: np.array([1, 0, 2], np.int32)})
    with pytest.raises(NNError, match=r"op 0, TRANSPOSE\): permutation \[1, 0, 2\] moves the batch axis"):
        Importer(graph, "t.tflite", "t").run()


@pytest.mark.parametrize("op", ["SQUEEZE", "EXPAND_DIMS", "RESHAPE"])
def test_importer_reshapes_without_a_statement(op: str) -> None:
    """SQUEEZE, EXPAND_DIMS and RESHAPE bind their output to the input's values; a consumer that needs the
    other shape gets one reshape (here the transpose after it)."""
    graph = _graph([(1, 6, 2), (2,), (1, 3, 2, 2), (4,), (1, 2, 3, 2)],
                   [(op, [0, 1], [2]), ("TRANSPOSE", [2, 3], [4])],
                   {1: np.array([3, 2], np.int32), 3: np.array([0, 3, 1, 2], np.int32)})
    imported = Importer(graph, "t.tflite", "t").run()
    statements = [line for line in imported.lines if " = " in line]
    assert len(statements) == 2 and statements[0].startswith("layer0_reshaped = reshape(layer0, shape=(3, 2, 2))")
    model = imported.model()
    assert [o.kind for o in model.graph.ops] == ["reshape", "transpose"]
    assert isinstance(model.graph.ops[0], ir.Reshape)


# --------------------------------------------------------------------------
# slice and strided_slice
# --------------------------------------------------------------------------

SLICES = [  # (layer, what NumPy takes from a [5, 6, 3] batch)
    ("slice(x, begin=(1, 0, 2), size=(3, -1, 1))", lambda v: v[:, 1:4, :, 2:3]),
    ("strided_slice(x, begin=(1, 0, 0), end=(4, 6, 3), strides=(2, 3, 1))", lambda v: v[:, 1:4:2, ::3]),
    ("strided_slice(x, begin=(-1, -2, 0), end=(0, 0, 3), strides=(-1, -2, 1), end_mask=3)",
     lambda v: v[:, ::-1, -2::-2]),
    ("strided_slice(x, begin=(2, -9, 1), end=(3, 99, 0), shrink_axis_mask=5)", lambda v: v[:, 2, :, 1]),
    ("strided_slice(x, begin=(0, 0, 0), end=(0, 0, 0), begin_mask=7, end_mask=7)", lambda v: v),
    ("strided_slice(x, begin=(-3, 4, 0), end=(-1, 2, -1), strides=(1, -1, 1))", lambda v: v[:, -3:-1, 4:2:-1, :-1]),
]


@pytest.mark.parametrize("kind", sorted(TYPES))
@pytest.mark.parametrize(("layer", "expected"), SLICES, ids=[layer for layer, _ in SLICES])
def test_slices_take_numpys_values(kind: str, layer: str, expected: object, tmp_path: Path) -> None:
    """TensorFlow's indexing rules (negative indices, clamping, masks, shrinking) equal NumPy's basic indexing;
    the C takes the same values under ASan/UBSan."""
    type_text, dtype = TYPES[kind]
    model = load(tmp_path, f"network s\ninput x : {type_text.replace('SHAPE', '[5, 6, 3]')}\noutput y = {layer}\n")
    x = inputs_of(dtype, (5, 6, 3))
    ours = model.run(x)
    assert callable(expected) and np.array_equal(ours, expected(x))
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), ours)


@pytest.mark.parametrize(("layer", "at", "words"), [
    ("y = slice(x, begin=(0, 1), size=(1, 1, 1))", "begin=", "slice begin has 2 values, expected 3"),
    ("y = slice(x, begin=(0, 6, 0), size=(1, 1, 1))", "begin=", "slice begin 6 on axis 1 is outside 0..5"),
    ("y = slice(x, begin=(0, -1, 0), size=(1, 1, 1))", "begin=", "slice begin -1 on axis 1 is outside 0..5"),
    ("y = slice(x, begin=(0, 4, 0), size=(1, 3, 1))", "size=",
     "slice size 3 on axis 1 must be -1 (to the end) or 1..2"),
    ("y = slice(x, begin=(0, 4, 0), size=(1, 0, 1))", "size=", "size 0 on axis 1"),
    ("y = strided_slice(x, begin=(0, 0, 0), end=(5, 6, 3), strides=(1, 0, 1))", "strides=", "strides must not be 0"),
    ("y = strided_slice(x, begin=(0, 0, 0), end=(5, 6, 3), ellipsis_mask=1)", "ellipsis_mask=",
     "strided_slice ellipsis_mask is not supported"),
    ("y = strided_slice(x, begin=(0, 0, 0), end=(5, 6, 3), new_axis_mask=2)", "new_axis_mask=",
     "strided_slice new_axis_mask is not supported"),
    ("y = strided_slice(x, begin=(0, 0, 0), end=(5, 6, 3), end_mask=8)", "end_mask=", "end_mask 8 has bits beyond the "
     "input's 3 axes"),
    ("y = strided_slice(x, begin=(0, 7, 0), end=(5, 6, 3), shrink_axis_mask=2)", "begin=",
     "shrinks axis 1 to index 7, outside the 6 values"),
    ("y = strided_slice(x, begin=(3, 0, 0), end=(1, 6, 3))", "strided_slice(", "takes no value on axis 0"),
    ("y = strided_slice(x, begin=(0, 0, 0), end=(5, 6, 3)) : i8 @ scale(0.5) zero(0)", ": ",
     "strided_slice keeps its input's quantisation"),
    ("y = strided_slice(x, begin=(0, 0, 0), end=(5, 6, 3), shrink_axis_mask=1) : i8[5, 6, 3]", ": ",
     "declared [5, 6, 3], but strided_slice produces [6, 3]"),
])
def test_slice_errors_are_located(layer: str, at: str, words: str, tmp_path: Path) -> None:
    """Each error at the attribute it is about (the call, or the declared type after ': ')."""
    col = layer.index(at) + 1 + (2 if at == ": " else 0)
    with pytest.raises(NNError) as caught:
        load(tmp_path, f"network t\ninput x : i8[5, 6, 3] @ scale(0.05) zero(-3)\n{layer}\noutput y\n")
    first = caught.value.diagnostics[0]
    assert first.loc is not None and (first.loc.line, first.loc.col) == (3, col), first
    assert words in first.message, first.message


def test_importer_splits_into_named_slices_of_the_parts_used() -> None:
    """SPLIT's parts become slices named after the layer and the part; a part nothing reads is not written."""
    graph = _graph([(1, 4, 6), (), (1, 4, 2), (1, 4, 2), (1, 4, 2), (1, 4, 4)],
                   [("SPLIT", [1, 0], [2, 3, 4]), ("CONCATENATION", [4, 2], [5])],
                   {1: np.array(-1, np.int32)})
    graph.ops[1].options = type("Options", (), {"axis": 2, "fusedActivationFunction": 0})()
    imported = Importer(graph, "t.tflite", "t").run()
    statements = [line.split("  #")[0] for line in imported.lines if " = " in line]
    assert statements == ["layer2_part0 = slice(layer0, begin=(0, 0), size=(-1, 2))",
                          "layer2_part2 = slice(layer0, begin=(0, 4), size=(-1, 2))",
                          "layer5 = concat(layer2_part2, layer2_part0)"], statements
    x = inputs_of(np.int8, (4, 6))
    assert np.array_equal(imported.model().run(x), np.concatenate([x[..., 4:], x[..., :2]], axis=-1))


def test_importer_unpacks_into_shrinking_slices_and_packs_with_concat() -> None:
    graph = _graph([(1, 3, 2), (1, 2), (1, 2), (1, 2), (1, 2, 3)],
                   [("UNPACK", [0], [1, 2, 3]), ("PACK", [3, 1], [4])], {})
    graph.ops[0].options = type("Options", (), {"axis": 1, "num": 3})()
    graph.ops[1].options = type("Options", (), {"axis": 2, "valuesCount": 2})()
    imported = Importer(graph, "t.tflite", "t").run()
    text = imported.text("t.npz")
    assert "strided_slice(layer0, begin=(2, 0), end=(3, 0), begin_mask=2, end_mask=2, shrink_axis_mask=1)" in text
    assert "layer1_part1" not in text
    x = inputs_of(np.int8, (3, 2))
    assert np.array_equal(imported.model().run(x), np.stack([x[:, 2], x[:, 0]], axis=-1))


@pytest.mark.parametrize(("op", "consts", "options", "words"), [
    ("SLICE", {1: [1, 0, 0], 2: [1, -1, -1]}, None, "slice the batch axis"),
    ("STRIDED_SLICE", {1: [0, 0, 0], 2: [1, 4, 6], 3: [1, 1, 1]},
     {"beginMask": 0, "endMask": 0, "shrinkAxisMask": 0, "ellipsisMask": 1, "newAxisMask": 0},
     "ellipsis_mask 1 is not supported"),
    ("STRIDED_SLICE", {1: [0, 0, 0], 2: [1, 4, 6], 3: [1, 1, 1]},
     {"beginMask": 0, "endMask": 0, "shrinkAxisMask": 0, "ellipsisMask": 0, "newAxisMask": 4},
     "new_axis_mask 4 is not supported"),
    ("STRIDED_SLICE", {1: [0, 0, 0], 2: [1, 4, 6], 3: [1, 1, 1]},
     {"beginMask": 0, "endMask": 0, "shrinkAxisMask": 1, "ellipsisMask": 0, "newAxisMask": 0},
     "slice or drop the batch axis"),
])
def test_importer_refuses_slices_it_cannot_represent(op: str, consts: dict[int, list[int]],
                                                     options: dict[str, int] | None, words: str) -> None:
    graph = _graph([(1, 4, 6), (3,), (3,), (3,), (1, 4, 6)], [(op, [0, *consts], [4])],
                   {i: np.array(v, np.int32) for i, v in consts.items()})
    if options is not None:
        graph.ops[0].options = type("Options", (), options)()
    with pytest.raises(NNError, match=f"op 0, {op}\\): .*{words}"):
        Importer(graph, "t.tflite", "t").run()


def test_importer_refuses_a_data_movement_that_changes_the_quantisation() -> None:
    graph = _graph([(1, 3, 4), (3,), (1, 4, 3)], [("TRANSPOSE", [0, 1], [2])], {1: np.array([0, 2, 1], np.int32)})
    graph.tensors[2].scales = (0.1,)
    with pytest.raises(NNError, match=r"TRANSPOSE copies values, so its inputs and outputs must share one "
                                      r"quantisation"):
        Importer(graph, "t.tflite", "t").run()


# --------------------------------------------------------------------------
# reduce_max and mean over any axes
# --------------------------------------------------------------------------

REDUCTIONS = [  # (axes, keep_dims)
    ((0,), False), ((1,), True), ((2,), False), ((0, 2), True), ((-1, 0), False), ((0, 1, 2), True),
]


# TensorFlow Lite Micro has no int16 REDUCE_MAX (refused: test_int16_reduce_max_is_refused).
@pytest.mark.parametrize(("op", "kind"), [("mean", "i8"), ("mean", "i16"), ("mean", "f32"), ("reduce_max", "i8"),
                                          ("reduce_max", "f32")])
@pytest.mark.parametrize(("axes", "keep"), REDUCTIONS, ids=[f"{a}-{k}" for a, k in REDUCTIONS])
def test_reductions_in_c_equal_numpy(op: str, kind: str, axes: tuple[int, ...], keep: bool, tmp_path: Path) -> None:
    """mean (rescaling in integer networks) and reduce_max over every choice of axes: the NumPy backend is the
    values' max, and close to their mean, and the C gives the same bytes under ASan/UBSan."""
    type_text, dtype = TYPES[kind]
    out_type = {"i8": " : i8 @ scale(0.03) zero(7)", "i16": " : i16 @ scale(0.0003) zero(0)", "f32": ""}[kind]
    axes_text = f"axes=({', '.join(map(str, axes))},){', keep_dims=true' if keep else ''}"
    model = load(tmp_path, f"network r\ninput x : {type_text.replace('SHAPE', '[4, 5, 3]')}\n"
                 f"output y = {op}(x, {axes_text}){out_type if op == 'mean' else ''}\n")
    x = inputs_of(dtype, (4, 5, 3))
    numpy_axes = tuple(a % 3 + 1 for a in axes)
    ours = model.run(x)
    if op == "reduce_max":
        assert np.array_equal(ours, x.max(axis=numpy_axes, keepdims=keep))
    else:
        quant_in, quant_out = model.graph.input.type.quant, model.graph.output.type.quant
        real = x.astype(np.float64)
        if quant_in is not None:
            real = (real - quant_in.zero_point) * quant_in.scale
        expected = real.mean(axis=numpy_axes, keepdims=keep)
        got = ours.astype(np.float64)
        step = 1e-5
        if quant_out is not None:
            got = (got - quant_out.zero_point) * quant_out.scale
            info = np.iinfo(dtype)
            expected = np.clip(expected, (info.min - quant_out.zero_point) * quant_out.scale,
                               (info.max - quant_out.zero_point) * quant_out.scale)
            step = quant_out.scale
        assert np.abs(got - expected).max() <= step
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), ours)


@pytest.mark.parametrize(("layer", "at", "words"), [
    ("y = mean(x, axes=(0, 3))", "axes=", "mean axes (0, 3) are outside the axes -3..2"),
    ("y = mean(x, axes=(1, -2))", "axes=", "mean axes (1, -2) name an axis twice"),
    ("y = mean(x, axes=(0, 1, 2))", "axes=", "leaves no axis: keep them with keep_dims=true"),
    ("y = mean(x, axes=1, keep_dims=yes)", "keep_dims=", "keep_dims must be one of false, true"),
    ("y = mean(x)", "mean(", "'mean' needs 'axes=...'"),
    ("y = reduce_max(x, axes=1) : i8 @ scale(0.5) zero(0)", ": ", "reduce_max keeps its input's quantisation"),
    ("y = reduce_max(x, axes=(1,)) : i8[4, 1, 3]", ": ", "declared [4, 1, 3], but reduce_max produces [4, 3]"),
])
def test_reduce_errors_are_located(layer: str, at: str, words: str, tmp_path: Path) -> None:
    col = layer.index(at) + 1 + (2 if at == ": " else 0)
    with pytest.raises(NNError) as caught:
        load(tmp_path, f"network t\ninput x : i8[4, 5, 3] @ scale(0.05) zero(-3)\n{layer}\noutput y\n")
    first = caught.value.diagnostics[0]
    assert first.loc is not None and (first.loc.line, first.loc.col) == (3, col), first
    assert words in first.message, first.message


def test_int16_reduce_max_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NNError, match=r"3:5: error: reduce_max has no int16 kernel in TensorFlow Lite Micro"):
        load(tmp_path, "network t\ninput x : i16[4, 3] @ scale(0.05) zero(0)\ny = reduce_max(x, axes=0)\noutput y\n")


def test_importer_reduces_other_axes_than_the_positions() -> None:
    """MEAN over the channels (keep_dims) becomes ``mean``; over the positions it stays a global pool."""
    graph = _graph([(1, 4, 3), (1,), (1, 4, 1)], [("MEAN", [0, 1], [2])], {1: np.array([2], np.int32)})
    graph.ops[0].options = type("Options", (), {"keepDims": True})()
    graph.tensors[2].scales, graph.tensors[2].zero_points = (0.02,), (4,)
    imported = Importer(graph, "t.tflite", "t").run()
    assert "mean(layer0, axes=(1,), keep_dims=true) : i8 @ scale(0.019999999552965164) zero(4)" in \
        imported.text("t.npz")
    assert imported.model().graph.output.type.shape == (4, 1)
    graph = _graph([(1, 4, 3), (1,), (4, 3)], [("REDUCE_MAX", [0, 1], [2])], {1: np.array([0], np.int32)})
    graph.ops[0].options = type("Options", (), {"keepDims": False})()
    with pytest.raises(NNError, match=r"REDUCE_MAX\): reducing axes \[0\] includes the batch axis"):
        Importer(graph, "t.tflite", "t").run()


# --------------------------------------------------------------------------
# resize_nearest_neighbor
# --------------------------------------------------------------------------


def test_nearest_indices_are_tflms_arithmetic() -> None:
    """Cases worked by hand from GetNearestNeighbor: floor, round (halves away), the half-pixel offset, the clamps."""
    assert nearest_indices(4, 7, False, False) == (0, 0, 1, 1, 2, 2, 3)  # floor(o * 4/7)
    assert nearest_indices(4, 7, True, False) == (0, 1, 1, 2, 2, 3, 3)  # round(o * 3/6): 0.5 -> 1, 1.5 -> 2
    assert nearest_indices(5, 3, False, True) == (0, 2, 4)  # floor((o + 0.5) * 5/3)
    assert nearest_indices(3, 1, True, False) == (0,)  # one output: the in / out scale
    assert nearest_indices(2, 5, False, True) == (0, 0, 1, 1, 1)  # floor((o + 0.5) * 0.4), clamped to 1


@pytest.mark.parametrize("kind", sorted(TYPES))
@pytest.mark.parametrize("flags", ["", ", align_corners=true", ", half_pixel_centers=true"])
def test_resize_copies_the_chosen_rows_and_columns(kind: str, flags: str, tmp_path: Path) -> None:
    type_text, dtype = TYPES[kind]
    model = load(tmp_path, f"network z\ninput x : {type_text.replace('SHAPE', '[4, 5, 3]')}\n"
                 f"output y = resize_nearest_neighbor(x, size=(7, 3){flags})\n")
    x = inputs_of(dtype, (4, 5, 3))
    align, half = "align" in flags, "half" in flags
    rows, cols = nearest_indices(4, 7, align, half), nearest_indices(5, 3, align, half)
    ours = model.run(x)
    assert ours.shape == (len(x), 7, 3, 3)
    assert np.array_equal(ours, x[:, list(rows)][:, :, list(cols)])
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), ours)


@pytest.mark.parametrize(("layer", "at", "words"), [
    ("y = resize_nearest_neighbor(x, size=(4, 0))", "size=", "size must be whole numbers >= 1"),
    ("y = resize_nearest_neighbor(x, size=(4, 2, 2))", "size=", "size has 3 values, expected 1 or 2"),
    ("y = resize_nearest_neighbor(x, size=4, align_corners=true, half_pixel_centers=true)", "half_pixel_centers=",
     "takes align_corners or half_pixel_centers, not both"),
    ("y = resize_nearest_neighbor(x, size=4, align_corners=1)", "align_corners=",
     "align_corners must be one of false, true"),
    ("y = resize_nearest_neighbor(x, size=4) : i8 @ scale(0.5) zero(0)", ": ",
     "resize_nearest_neighbor keeps its input's quantisation"),
])
def test_resize_errors_are_located(layer: str, at: str, words: str, tmp_path: Path) -> None:
    col = layer.index(at) + 1 + (2 if at == ": " else 0)
    with pytest.raises(NNError) as caught:
        load(tmp_path, f"network t\ninput x : i8[4, 5, 3] @ scale(0.05) zero(-3)\n{layer}\noutput y\n")
    first = caught.value.diagnostics[0]
    assert first.loc is not None and (first.loc.line, first.loc.col) == (3, col), first
    assert words in first.message, first.message


def test_resize_takes_images_only(tmp_path: Path) -> None:
    with pytest.raises(NNError, match=r"3:5: error: resize_nearest_neighbor takes an \[H, W, C\] input, 'x' has "
                                      r"shape \[5, 3\]"):
        load(tmp_path, "network t\ninput x : f32[5, 3]\ny = resize_nearest_neighbor(x, size=2)\noutput y\n")


def test_importer_resizes_with_the_flags() -> None:
    graph = _graph([(1, 3, 4, 2), (2,), (1, 6, 2, 2)], [("RESIZE_NEAREST_NEIGHBOR", [0, 1], [2])],
                   {1: np.array([6, 2], np.int32)})
    graph.ops[0].options = type("Options", (), {"alignCorners": False, "halfPixelCenters": True})()
    imported = Importer(graph, "t.tflite", "t").run()
    assert "resize_nearest_neighbor(layer0, size=(6, 2), half_pixel_centers=true)" in imported.text("t.npz")
    x = inputs_of(np.int8, (3, 4, 2))
    rows, cols = nearest_indices(3, 6, False, True), nearest_indices(4, 2, False, True)
    assert np.array_equal(imported.model().run(x), x[:, list(rows)][:, :, list(cols)])


# --------------------------------------------------------------------------
# prelu
# --------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", ["alpha", "a8", "-0.25"])
def test_int8_prelu_in_c_equals_numpy_and_the_real_values(alpha: str, tmp_path: Path) -> None:
    """Slopes as a float array quantised by nndsl, a stored int8 array (its own scale and zero point) and a
    number; the values stay within an output step of the real PReLU, and the C equals NumPy under the
    sanitizers (every int8 input value)."""
    slopes = np.array([0.5, -0.3, 1.25], np.float32)
    weights = {"alpha": slopes, "a8": np.array([64, -38, 127], np.int8), "a8.scale": np.float32([0.0078125]),
               "a8.zero_point": np.int32([-2])}
    np.savez(tmp_path / "w.npz", **weights)  # type: ignore[arg-type]
    model = load(tmp_path, f'network p\nweights "w.npz"\ninput x : i8[4, 3] @ scale(0.05) zero(-3)\n'
                 f"output y = prelu(x, {alpha}) : i8 @ scale(0.04) zero(10)\n")
    x = np.arange(-128, 128, dtype=np.int8).reshape(-1, 1, 1).repeat(4, axis=1).repeat(3, axis=2)
    ours = model.run(x)
    real_alpha = {"alpha": slopes, "a8": (np.array([64, -38, 127]) + 2) * 0.0078125, "-0.25": -0.25}[alpha]
    real = (x.astype(np.float64) + 3) * 0.05
    expected = np.clip(np.where(real >= 0, real, real * real_alpha), (-128 - 10) * 0.04, (127 - 10) * 0.04)
    assert np.abs((ours.astype(np.float64) - 10) * 0.04 - expected).max() <= 0.04 + 0.05 * 0.02
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), ours)


def test_f32_prelu_broadcasts_its_slopes(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", alpha=np.array([[0.5], [-2.0]], np.float32))
    model = load(tmp_path, 'network p\nweights "w.npz"\ninput x : f32[2, 3]\noutput y = prelu(x, alpha)\n')
    x = np.random.default_rng(3).normal(size=(20, 2, 3)).astype(np.float32)
    expected = np.where(x >= 0, x, x * np.array([[0.5], [-2.0]], np.float32))
    assert np.array_equal(model.run(x), expected)
    assert np.array_equal(run_in_c(model, x, work_dir=tmp_path / "c", sanitize=True), expected)


@pytest.mark.parametrize(("text", "words"), [
    ("input x : i16[4] @ scale(0.05) zero(0)\noutput y = prelu(x, 0.5) : i16 @ scale(0.05) zero(0)\n",
     "4:12: error: prelu has no 16x8 kernel in TensorFlow Lite Micro"),
    ("input x : i8[4] @ scale(0.05) zero(0)\noutput y = prelu(x, 0.5) -> relu : i8 @ scale(0.05) zero(0)\n",
     "4:29: error: 'prelu' cannot be followed by an activation"),
    ("input x : i8[4] @ scale(0.05) zero(0)\noutput y = prelu(x, 0.5)\n",
     "4:8: error: 'y' is computed in i8: declare its type"),
])
def test_prelu_errors_are_located(text: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(NNError, match=re.escape(words)):
        load(tmp_path, f"network p\n\n{text}")
