"""The MLPerf Tiny architectures, Keras -> TensorFlow Lite -> `nndsl import`, bit for bit like TensorFlow Lite Micro.

Each network of ``tests/mlperf_models.py`` (DS-CNN, MobileNetV1 0.25,
ResNet-8, the anomaly-detection autoencoder) is seeded, converted to full
int8 twice (int8 input and output, and the converter's default float32 ones,
which put QUANTIZE and DEQUANTIZE at the edges) and imported from the
flatbuffer. The NumPy backend and gcc's build of the generated C must equal
TensorFlow Lite Micro's outputs byte for byte on seeded inputs: typical
ones, uniformly random ones and saturating ones.

Each model is built once and converted twice per session. The full-size DS-CNN, MobileNetV1
and ResNet-8 are marked slow; the autoencoder and a reduced DS-CNN run by
default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl.importers.tflite import import_tflite
from nndsl.qmath.quantize import affine_quantize
from tests.c_harness import run_in_c
from tests.conftest import ROOT
from tests.mlperf_models import ARCHITECTURES, Architecture, convert, samples, seeded_model
from tests.tflite_models import assert_bit_exact, model_graph, model_quantization, run_tflm_each

pytestmark = pytest.mark.tensorflow

# TensorFlow Lite op -> the op it becomes in nndsl (ops computing only a shape are absent).
IMPORTED_AS = {
    "CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "FULLY_CONNECTED": "dense", "ADD": "add",
    "AVERAGE_POOL_2D": "avg_pool2d", "SOFTMAX": "softmax", "QUANTIZE": "quantize", "DEQUANTIZE": "dequantize",
}
SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"}
# Each network with int8 input and output, then with float ones; the full-size CNNs are slow.
CASES = [
    pytest.param((name, float_io), id=f"{name}-{'float' if float_io else 'int8'}-io",
                 marks=() if name in ("autoencoder", "dscnn_small") else pytest.mark.slow)
    for name in ("autoencoder", "dscnn_small", "dscnn", "mobilenet_v1", "resnet8")
    for float_io in (False, True)
]
SEED = 2024
CALIBRATION = 32
# (parameters, MACs) of each import, as docs/importing.md's table states them.
SIZES = {
    "autoencoder": (265_864, 264_192),
    "dscnn_small": (1_724, 180_192),
    "dscnn": (22_604, 2_656_768),
    "mobilenet_v1": (210_850, 7_489_664),
    "resnet8": (77_706, 12_501_632),
}


@dataclass(frozen=True)
class Converted:
    """One architecture as a flatbuffer, its import, seeded inputs and TensorFlow Lite Micro's outputs for them."""

    arch: Architecture
    float_io: bool
    flatbuffer: bytes
    model: nndsl.Model
    inputs: np.ndarray
    reference: np.ndarray
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.arch.name} ({'float' if self.float_io else 'int8'} I/O)"


def seeded_inputs(arch: Architecture, flatbuffer: bytes, float_io: bool) -> np.ndarray:
    """Typical inputs, then uniform random ones over the input's range, then both saturating extremes."""
    shape = arch.input_shape
    typical = samples(shape, 12, SEED + 1)
    rng = np.random.default_rng(SEED + 2)
    if float_io:
        wide = rng.normal(0.0, 30.0, (6, *shape)).astype(np.float32)  # mostly saturates the input's int8 range
        extremes = np.stack([np.full(shape, 1e3, np.float32), np.full(shape, -1e3, np.float32)])
        return np.concatenate([typical, wide, extremes])
    scale, zero_point, _, _ = model_quantization(flatbuffer)
    uniform = rng.integers(-128, 128, (6, *shape), dtype=np.int8)
    extremes = np.stack([np.full(shape, 127, np.int8), np.full(shape, -128, np.int8)])
    return np.concatenate([affine_quantize(typical, scale, zero_point, np.int8), uniform, extremes])


@dataclass(frozen=True)
class Seeded:
    """One architecture built in Keras with its seeded weights, and the calibration inputs that set them."""

    arch: Architecture
    keras_model: Any
    calibration: np.ndarray


def convert_and_import(tf: Any, seeded: Seeded, float_io: bool, folder: Path) -> Converted:
    arch = seeded.arch
    flatbuffer = convert(tf, seeded.keras_model, seeded.calibration, float_io=float_io)
    network = f"{arch.name}_{'float' if float_io else 'int8'}"
    nn_path, _ = import_tflite(flatbuffer, f"{network}.tflite", name=network).write(folder / f"{network}.nn")
    inputs = seeded_inputs(arch, flatbuffer, float_io)
    reference = run_tflm_each(flatbuffer, inputs, arena_size=1 << 20)
    return Converted(arch, float_io, flatbuffer, nndsl.load(nn_path), inputs, reference, folder)


@pytest.fixture(scope="module")
def tf() -> Any:
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def built(tf: Any) -> Callable[[str], Seeded]:
    """Each network built once (both of its conversions start from it), on first use."""
    cache: dict[str, Seeded] = {}

    def build(name: str) -> Seeded:
        if name not in cache:
            arch = ARCHITECTURES[name]
            calibration = samples(arch.input_shape, CALIBRATION, SEED)
            cache[name] = Seeded(arch, seeded_model(tf.keras, arch, SEED, calibration), calibration)
        return cache[name]

    return build


@pytest.fixture(scope="module", params=CASES)
def converted(request: pytest.FixtureRequest, tf: Any, built: Callable[[str], Seeded],
              tmp_path_factory: pytest.TempPathFactory) -> Converted:
    name, float_io = request.param
    folder = tmp_path_factory.mktemp(f"{name}_{int(float_io)}")
    return convert_and_import(tf, built(name), float_io, folder)


def test_every_op_is_imported(converted: Converted) -> None:
    """The `.nn` computes what the flatbuffer does, op for op (nothing dropped, merged or added but reshapes)."""
    expected = [IMPORTED_AS[op] for op in model_graph(converted.flatbuffer).names if op not in SHAPE_OPS]
    assert [op.kind for op in converted.model.graph.ops if op.kind != "reshape"] == expected
    graph = converted.model.graph
    assert graph.dtype.value == "i8"
    assert graph.input.type.dtype.value == ("f32" if converted.float_io else "i8")
    assert graph.output.type.dtype.value == ("f32" if converted.float_io else "i8")
    summary = converted.model.summary()
    assert (summary.params, summary.macs) == SIZES[converted.arch.name]


def test_docs_table_states_the_sizes() -> None:
    table = (ROOT / "docs" / "importing.md").read_text().split("## Tested architectures")[1].split("\n## ")[0]
    for name, (params, macs) in SIZES.items():
        if name != "dscnn_small":
            assert f"| {params:,} | {macs:,} |" in table, name


def test_numpy_backend_equals_tflm(converted: Converted) -> None:
    outputs = converted.model.run(converted.inputs).reshape(converted.reference.shape)
    assert_bit_exact(outputs, converted.reference, converted.reference.dtype.type, f"{converted.label}, NumPy")
    # The outputs depend on the input: the comparison is not one of constants.
    assert len(np.unique(outputs.reshape(len(outputs), -1), axis=0)) > len(outputs) // 2


def test_compiled_c_equals_tflm(converted: Converted) -> None:
    outputs = run_in_c(converted.model, converted.inputs, work_dir=converted.folder / "c")
    reference = converted.reference.reshape(outputs.shape)
    assert_bit_exact(outputs, reference, reference.dtype.type, f"{converted.label}, C")


def test_sanitized_c_with_caller_arena_equals_tflm(converted: Converted) -> None:
    """Under AddressSanitizer and UBSan, from a scrambled arena of exactly the declared size."""
    outputs = run_in_c(converted.model, converted.inputs[:4], sanitize=True, caller_arena=True,
                       work_dir=converted.folder / "asan")
    reference = converted.reference[:4].reshape(outputs.shape)
    assert_bit_exact(outputs, reference, reference.dtype.type, f"{converted.label}, sanitized C")
