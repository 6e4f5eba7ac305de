"""Generated C cross-compiled for a Cortex-M4 and run in an emulator equals the NumPy backend, bit for bit.

Every example, in both variants (the default build, which may take the DSP
path on this core, and ``-DNNDSL_PORTABLE``), at ``-O2``. Needs
``arm-none-eabi-gcc`` (apt: gcc-arm-none-eabi, libnewlib-arm-none-eabi) and
the ``unicorn``, ``pyelftools`` and ``capstone`` packages; skipped without them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import nndsl
from tests.conftest import EXAMPLES

pytest.importorskip("unicorn", reason="unicorn (the Cortex-M emulator) is not installed")
pytest.importorskip("elftools", reason="pyelftools is not installed")
pytest.importorskip("capstone", reason="capstone is not installed")
if shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)",
                allow_module_level=True)

from benchmarks.m4 import build, elf, emulator  # after the skips: it imports unicorn

INPUTS_PER_MODEL = 3
MODELS = sorted(p for p in EXAMPLES.glob("*/*.nn") if p.stem == p.parent.name)


@pytest.mark.parametrize("variant", sorted(build.VARIANTS))
@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_emulated_output_equals_numpy(path: Path, variant: str, tmp_path: Path) -> None:
    model = nndsl.load(path)
    made = build.build_model(model, tmp_path, opt="-O2", variant=variant)
    image = elf.load(made.elf)
    inputs = np.load(path.parent / "inputs.npy")[:INPUTS_PER_MODEL]
    expected = np.asarray(model.run(inputs))
    for index, x in enumerate(inputs):
        result = emulator.run(image, x, expected.dtype, entry=f"{model.name}_run")
        assert result.status == 0, (path.stem, variant, index)
        assert np.array_equal(result.output, expected[index].reshape(-1)), (path.stem, variant, index)


def test_profile_counts_every_layer(tmp_path: Path) -> None:
    """The profiled run gives the same output, and the per-layer counts add up to the total."""
    from benchmarks.m4.layers import layer_map

    path = EXAMPLES / "mlp" / "mlp.nn"
    model = nndsl.load(path)
    made = build.build_model(model, tmp_path, opt="-O2")
    x = np.load(path.parent / "inputs.npy")[0]
    expected = np.asarray(model.run(x))
    layers = layer_map(tmp_path / "src" / "mlp.c", "mlp")
    result = emulator.run(elf.load(made.elf), x, expected.dtype, entry="mlp_run", profile=True, layers=layers)
    assert np.array_equal(result.output, expected.reshape(-1))
    assert sum(c.instructions for c in result.layers.values()) == result.total.instructions
    assert sum(c.cycles for c in result.layers.values()) == result.total.cycles
    assert result.total.instructions > model.summary().macs  # at least one instruction per MAC
    assert {label.split()[0] for label in result.layers} >= {"hidden1", "hidden2", "logits", "probs"}
