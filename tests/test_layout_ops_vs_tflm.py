"""The data-movement ops (TRANSPOSE...) against TensorFlow Lite Micro, through the TensorFlow Lite importer.

Each case is a tiny Keras model whose converted flatbuffer holds the op under
test (asserted), after a convolution so that its input quantisation is a
realistic one; it is converted to int8, 16x8 and float and imported:

- int8 and 16x8: NumPy backend == TensorFlow Lite Micro (reference kernels),
  zero differing values, on random inputs over the whole integer range, and
  C == NumPy;
- float: NumPy within 1e-5 of each row's largest value of Keras, C == NumPy.

The default run takes :data:`QUICK`; the larger grid is marked ``slow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nndsl.importers.tf import tensorflow
from tests.test_binary_ops_vs_tflm import Case, check_float, check_integer, keras_case

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def tf() -> Any:
    """TensorFlow (and tflite-micro), imported only for these tests."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    return tensorflow()


def _conv(layers: Any, x: Any, filters: int) -> Any:
    rank = len(x.shape) - 2
    return (layers.Conv1D if rank == 1 else layers.Conv2D)(filters, 1)(x)


def _lambda(function: Any) -> Any:
    """A Keras layer applying ``function(tf, tensor)``."""
    def build(layers: Any, x: Any) -> Any:
        tf = tensorflow()
        return layers.Lambda(lambda t: function(tf, t))(_conv(layers, x, x.shape[-1]))
    return build


def transpose_case(shape: tuple[int, ...], perm: tuple[int, ...]) -> Case:
    """``tf.transpose`` with ``perm`` over the unbatched axes (the batch axis stays first)."""
    name = f"transpose-{''.join(map(str, perm))}-in{'x'.join(map(str, shape))}"
    full = (0, *(p + 1 for p in perm))
    return keras_case(name, "TRANSPOSE", shape, _lambda(lambda tf, t: tf.transpose(t, full)))


def lambda_case(name: str, op: str, shape: tuple[int, ...], function: Any) -> Case:
    """``function(tf, conv(x))`` in a Lambda layer; the flatbuffer holds ``op``."""
    return keras_case(name, op, shape, _lambda(function))


QUICK: list[Case] = [
    keras_case("permute-layer", "TRANSPOSE", (4, 5, 2), lambda layers, x: layers.Permute((2, 1, 3))(
        _conv(layers, x, 3))),
    transpose_case((5, 3), (1, 0)),
    transpose_case((3, 4, 5), (2, 0, 1)),
    lambda_case("slice-sizes", "SLICE", (4, 5, 3), lambda tf, t: tf.slice(t, [0, 1, 0, 1], [-1, 2, -1, 2])),
    lambda_case("strided-shrink", "STRIDED_SLICE", (4, 5, 3), lambda tf, t: t[:, 1:3, ::2, 0]),
    lambda_case("strided-reversed-negative", "STRIDED_SLICE", (5, 6, 2), lambda tf, t: t[:, ::-2, -4:-1]),
    lambda_case("split-swapped", "SPLIT", (6, 4), lambda tf, t: tf.concat(tf.split(t, 2, axis=-1)[::-1], -1)),
    lambda_case("split-v-swapped", "SPLIT_V", (6, 4), lambda tf, t: tf.concat(
        tf.split(t, [1, -1], axis=-1)[::-1], -1)),
    lambda_case("unpack-concat", "UNPACK", (4, 5, 2), lambda tf, t: tf.concat(tf.unstack(t, axis=2)[::-1], -1)),
    lambda_case("pack-two-slices", "PACK", (4, 3), lambda tf, t: tf.stack([t[:, :, 0], t[:, :, 2]], axis=1)),
    keras_case("cropping2d", "STRIDED_SLICE", (5, 6, 2), lambda layers, x: layers.Cropping2D(((1, 0), (1, 2)))(
        _conv(layers, x, 3))),
]

FULL: list[Case] = [
    *QUICK,
    transpose_case((3, 4, 5), (1, 2, 0)),
    transpose_case((3, 4, 5), (0, 2, 1)),
    keras_case("transpose-3102-in2x3x4x2", "TRANSPOSE", (6, 4, 2), lambda layers, x: layers.Lambda(
        lambda t: tensorflow().transpose(t, (0, 4, 2, 1, 3)))(layers.Reshape((2, 3, 4, 2))(_conv(layers, x, 2)))),
    keras_case("permute-layer-1d", "TRANSPOSE", (6, 3), lambda layers, x: layers.Permute((2, 1))(
        _conv(layers, x, 4))),
    lambda_case("slice-all-to-end", "SLICE", (4, 6), lambda tf, t: tf.slice(t, [0, 2, 1], [-1, -1, -1])),
    lambda_case("strided-ellipsis", "STRIDED_SLICE", (4, 5, 3), lambda tf, t: t[..., 1:]),
    lambda_case("strided-steps", "STRIDED_SLICE", (7, 5, 3), lambda tf, t: t[:, 1::3, -1::-2, ::2]),
    lambda_case("strided-shrink-last", "STRIDED_SLICE", (6, 4), lambda tf, t: t[:, 2:, -1]),
    lambda_case("split-three-middle", "SPLIT", (6, 3, 2), lambda tf, t: tf.concat(
        tf.split(t, 3, axis=1)[::-1], 1)),
    lambda_case("split-v-three", "SPLIT_V", (8, 2), lambda tf, t: tf.concat(
        tf.split(t, [3, 1, 4], axis=1)[::-1], 1)),
    lambda_case("unpack-rows", "UNPACK", (3, 4, 2), lambda tf, t: tf.concat(tf.unstack(t, axis=1), -1)),
    lambda_case("pack-last-axis", "PACK", (5, 2), lambda tf, t: tf.stack([t[:, 1:], t[:, :-1]], axis=-1)),
    keras_case("cropping1d", "STRIDED_SLICE", (7, 2), lambda layers, x: layers.Cropping1D((1, 2))(
        _conv(layers, x, 3))),
]
SLOW = [case for case in FULL if case.name not in {c.name for c in QUICK}]


@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.name)
def test_int8_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.parametrize("case", [c for c in QUICK if c.int16], ids=lambda case: case.name)
def test_int16_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=True)


@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.name)
def test_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=lambda case: case.name)
def test_int8_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in SLOW if c.int16], ids=lambda case: case.name)
def test_int16_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=lambda case: case.name)
def test_float_close_to_keras_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


# --------------------------------------------------------------------------
# Reductions over any axes: MEAN (int8 and 16x8) and REDUCE_MAX (int8; TFLM has no int16 kernel)
# --------------------------------------------------------------------------


def reduce_case(op: str, shape: tuple[int, ...], axes: tuple[int, ...], keep: bool) -> Case:
    """``tf.reduce_mean``/``tf.reduce_max`` over unbatched ``axes`` of a conv's output."""
    name = f"{op.lower()}-axes{''.join(map(str, axes))}-keep{int(keep)}-in{'x'.join(map(str, shape))}"
    full = tuple(a + 1 for a in axes)
    if op == "MEAN":
        return lambda_case(name, op, shape, lambda tf, t: tf.reduce_mean(t, axis=full, keepdims=keep))
    return keras_case(name, op, shape, _lambda(lambda tf, t: tf.reduce_max(t, axis=full, keepdims=keep)),
                      int16=False)


REDUCE_QUICK: list[Case] = [
    reduce_case("MEAN", (4, 5, 3), (0,), False),
    reduce_case("MEAN", (4, 5, 3), (0, 2), True),
    reduce_case("MEAN", (6, 3), (1,), True),
    reduce_case("REDUCE_MAX", (4, 5, 3), (2,), False),
    reduce_case("REDUCE_MAX", (4, 5, 3), (0, 1), True),
]
REDUCE_FULL: list[Case] = [
    *REDUCE_QUICK,
    reduce_case("MEAN", (4, 5, 3), (1,), False),
    reduce_case("MEAN", (4, 5, 3), (0, 1), True),  # the positions, kept: TFLM's 4-D special case, if any
    reduce_case("MEAN", (4, 5, 3), (1, 2), False),
    reduce_case("MEAN", (4, 5, 3), (0, 1, 2), True),
    reduce_case("MEAN", (9, 4), (0,), False),
    reduce_case("REDUCE_MAX", (4, 5, 3), (0, 2), False),
    reduce_case("REDUCE_MAX", (6, 3), (1,), True),
    reduce_case("REDUCE_MAX", (4, 5, 3), (0, 1, 2), True),
]
REDUCE_SLOW = [case for case in REDUCE_FULL if case.name not in {c.name for c in REDUCE_QUICK}]


@pytest.mark.parametrize("case", REDUCE_QUICK, ids=lambda case: case.name)
def test_reduce_int8_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.parametrize("case", [c for c in REDUCE_QUICK if c.int16], ids=lambda case: case.name)
def test_reduce_int16_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=True)


@pytest.mark.parametrize("case", REDUCE_QUICK, ids=lambda case: case.name)
def test_reduce_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", REDUCE_SLOW, ids=lambda case: case.name)
def test_reduce_int8_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in REDUCE_SLOW if c.int16], ids=lambda case: case.name)
def test_reduce_int16_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", REDUCE_SLOW, ids=lambda case: case.name)
def test_reduce_float_close_to_keras_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.parametrize("int16", [False, True])
def test_mean_with_equal_quantisations_equals_tflm(tf: Any, int16: bool, tmp_path: Path) -> None:
    """MEAN whose output keeps its input's scale and zero point (rewritten into the flatbuffer, which the
    converter does not write): TFLM takes the same path, and so do the NumPy kernels and the C."""
    import nndsl
    from nndsl.importers.keras import convert
    from nndsl.importers.tflite import import_tflite
    from tests.c_harness import run_in_c
    from tests.test_binary_ops_vs_tflm import calibration, keras_model
    from tests.test_ops_vs_tflm import assert_exact
    from tests.tflite_models import model_graph, patch_model, run_tflm_each, tensor_quantization

    case = reduce_case("MEAN", (4, 5, 3), (0, 2), False)
    flatbuffer = convert(keras_model(tf, case), case.name, calibration=calibration(case), int16=int16,
                         progress=False).tflite
    mean = model_graph(flatbuffer).only("MEAN")
    flatbuffer = patch_model(flatbuffer, quant={mean.outputs[0]: tensor_quantization(flatbuffer)[mean.inputs[0]]})
    nn_path, _ = import_tflite(flatbuffer, "mean.tflite", name="op").write(tmp_path / "op.nn")
    model = nndsl.load(nn_path)
    dtype = np.int16 if int16 else np.int8
    info = np.iinfo(dtype)
    inputs = np.random.default_rng(5).integers(info.min, info.max + 1, size=(60, 4, 5, 3)).astype(dtype)
    ours = model.run(inputs)
    text = nn_path.read_text()
    assert_exact(ours, run_tflm_each(flatbuffer, inputs).reshape(ours.shape), "NumPy backend vs TFLM", text, dtype)
    assert_exact(run_in_c(model, inputs, work_dir=tmp_path / "c"), ours, "C vs NumPy backend", text, dtype)


# --------------------------------------------------------------------------
# RESIZE_NEAREST_NEIGHBOR (int8, 16x8, float)
# --------------------------------------------------------------------------


def resize_case(shape: tuple[int, ...], size: tuple[int, int], align_corners: bool = False,
                half_pixel_centers: bool = False) -> Case:
    name = (f"resize-{'x'.join(map(str, size))}-ac{int(align_corners)}-hp{int(half_pixel_centers)}-in"
            f"{'x'.join(map(str, shape))}")
    return lambda_case(name, "RESIZE_NEAREST_NEIGHBOR", shape, lambda tf, t: tf.compat.v1.image.resize_nearest_neighbor(
        t, size, align_corners=align_corners, half_pixel_centers=half_pixel_centers))


RESIZE_QUICK: list[Case] = [
    resize_case((4, 5, 2), (7, 9), align_corners=True),
    resize_case((4, 5, 2), (7, 3), half_pixel_centers=True),
    resize_case((3, 4, 3), (6, 8)),
]
RESIZE_FULL: list[Case] = [
    *RESIZE_QUICK,
    resize_case((5, 5, 1), (2, 3)),
    resize_case((5, 7, 2), (3, 13), align_corners=True),
    resize_case((4, 4, 2), (1, 9), align_corners=True),
    resize_case((6, 3, 2), (11, 5), half_pixel_centers=True),
    resize_case((2, 3, 2), (16, 16), half_pixel_centers=True),
    resize_case((7, 9, 1), (4, 5)),
]
RESIZE_SLOW = [case for case in RESIZE_FULL if case.name not in {c.name for c in RESIZE_QUICK}]


@pytest.mark.parametrize("case", RESIZE_QUICK, ids=lambda case: case.name)
@pytest.mark.parametrize("int16", [False, True])
def test_resize_equals_tflm(tf: Any, case: Case, int16: bool, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=int16)


@pytest.mark.parametrize("case", RESIZE_QUICK, ids=lambda case: case.name)
def test_resize_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", RESIZE_SLOW, ids=lambda case: case.name)
@pytest.mark.parametrize("int16", [False, True])
def test_resize_equals_tflm_full_grid(tf: Any, case: Case, int16: bool, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=int16)


@pytest.mark.slow
@pytest.mark.parametrize("case", RESIZE_SLOW, ids=lambda case: case.name)
def test_resize_float_close_to_keras_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


# --------------------------------------------------------------------------
# PRELU (int8 and float: TFLM and the converter have no 16x8 PRELU)
# --------------------------------------------------------------------------


def prelu_case(shape: tuple[int, ...], shared_axes: tuple[int, ...] | None, steep: bool = False) -> Case:
    """Keras's PReLU after a conv; its slopes (random_weights: uniform in [-0.5, 1), times 5 when ``steep``)."""
    shared = "".join(map(str, shared_axes or ()))
    name = f"prelu-shared{shared}{'-steep' if steep else ''}-in{'x'.join(map(str, shape))}"

    def build(layers: Any, x: Any) -> Any:
        shared = list(shared_axes) if shared_axes else None
        return layers.PReLU(shared_axes=shared, name="big" if steep else None)(_conv(layers, x, 3))

    return keras_case(name, "PRELU", shape, build, int16=False)


PRELU_QUICK: list[Case] = [
    prelu_case((4, 5, 2), (1, 2)),
    prelu_case((6, 2), None),
]
PRELU_FULL: list[Case] = [
    *PRELU_QUICK,
    prelu_case((4, 5, 2), None),
    prelu_case((4, 5, 2), (1, 2, 3)),
    prelu_case((7, 3), (1,), steep=True),
    prelu_case((3, 3, 4), (2,), steep=True),
]
PRELU_SLOW = [case for case in PRELU_FULL if case.name not in {c.name for c in PRELU_QUICK}]


@pytest.mark.parametrize("case", PRELU_QUICK, ids=lambda case: case.name)
def test_prelu_int8_equals_tflm(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.parametrize("case", PRELU_QUICK, ids=lambda case: case.name)
def test_prelu_float_close_to_keras(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", PRELU_SLOW, ids=lambda case: case.name)
def test_prelu_int8_equals_tflm_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_integer(tf, case, tmp_path, int16=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", PRELU_SLOW, ids=lambda case: case.name)
def test_prelu_float_close_to_keras_full_grid(tf: Any, case: Case, tmp_path: Path) -> None:
    check_float(tf, case, tmp_path)
