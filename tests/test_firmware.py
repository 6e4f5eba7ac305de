"""examples/firmware: two models in one Cortex-M4 image, built with CMake and with make, run in the emulator.

Each build system configures and builds a copy of the example (and of the
models and start-up code it uses), the image runs on real-valued inputs that
the firmware quantises with the headers' macros, and its outputs must equal the
NumPy backend's. Touching a model's ``.nn`` or ``.npz`` must regenerate that
model's C and nothing else; a build with nothing changed must regenerate none.
Needs cmake, make, arm-none-eabi-gcc (with newlib) and unicorn; skipped without.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import nndsl
from tests.conftest import EXAMPLES, ROOT

pytest.importorskip("unicorn", reason="unicorn (the Cortex-M emulator) is not installed")
pytest.importorskip("elftools", reason="pyelftools is not installed")
if any(shutil.which(tool) is None for tool in ("arm-none-eabi-gcc", "cmake", "make")):
    pytest.skip("arm-none-eabi-gcc, cmake or make not found (`make tools` installs them)", allow_module_level=True)

from benchmarks.m4 import elf, emulator  # after the skips: it imports unicorn

NNDSL = Path(sys.executable).parent / "nndsl"
MODELS = ("mlp", "conv1d")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the example uses, at the same relative paths: examples/ and benchmarks/m4."""
    shutil.copytree(EXAMPLES / "firmware", tmp_path / "examples" / "firmware")
    for name in MODELS:
        (tmp_path / "examples" / name).mkdir(parents=True)
        for suffix in (".nn", ".npz"):
            shutil.copy(EXAMPLES / name / f"{name}{suffix}", tmp_path / "examples" / name / f"{name}{suffix}")
    (tmp_path / "benchmarks" / "m4").mkdir(parents=True)
    for name in ("startup.c", "m4.ld"):
        shutil.copy(ROOT / "benchmarks" / "m4" / name, tmp_path / "benchmarks" / "m4" / name)
    return tmp_path


def run(*command: str | Path, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{NNDSL.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def check_image(image_path: Path) -> None:
    """Real inputs, quantised by the firmware, give the NumPy backend's outputs of both models."""
    models = [nndsl.load(EXAMPLES / name / f"{name}.nn") for name in MODELS]
    inputs = [np.load(EXAMPLES / name / "inputs.npy")[:2] for name in MODELS]
    image = elf.load(image_path)
    for k in range(2):
        real = [m.dequantize(x[k], m.graph.input.name).astype(np.float32) for m, x in zip(models, inputs, strict=True)]
        assert all(np.array_equal(m.quantize(r), x[k]) for m, r, x in zip(models, real, inputs, strict=True))
        result = emulator.run(image, np.concatenate([r.ravel() for r in real]), np.int8, entry="main")
        expected = np.concatenate([m.run(x[k]).ravel() for m, x in zip(models, inputs, strict=True)])
        assert result.status == 0
        assert np.array_equal(result.output, expected)


def later(path: Path) -> None:
    """Mark a file changed, as an editor saving it would: modified now, after everything built so far."""
    time.sleep(0.05)
    os.utime(path)


def check_rebuilds(build: Callable[[], str], generated: dict[str, Path], tree: Path) -> None:
    """Nothing regenerated when nothing changed; the touched model's C alone after its .nn or .npz changed.

    ``generated`` maps each model to its generated ``.c`` file.
    """
    assert ".nn" not in build()
    for suffix in (".nn", ".npz"):
        before = {name: path.stat().st_mtime_ns for name, path in generated.items()}
        later(tree / "examples" / "mlp" / f"mlp{suffix}")
        output = build()
        assert "mlp.nn" in output and "conv1d.nn" not in output, output
        assert generated["mlp"].stat().st_mtime_ns > before["mlp"]
        assert generated["conv1d"].stat().st_mtime_ns == before["conv1d"]
        assert ".nn" not in build()


def test_cmake_project_builds_regenerates_and_runs(tree: Path) -> None:
    source, build_dir = tree / "examples" / "firmware", tree / "build"
    run("cmake", "-S", source, "-B", build_dir, f"-DCMAKE_TOOLCHAIN_FILE={source / 'arm-none-eabi.cmake'}",
        f"-DNNDSL_EXECUTABLE={NNDSL}", cwd=tree)
    output = run("cmake", "--build", build_dir, cwd=tree)
    assert "nndsl: generating mlp.c" in output and "nndsl: generating conv1d.c" in output
    check_image(build_dir / "firmware.elf")
    generated = {name: build_dir / "nndsl" / f"{name}_model" / f"{name}.c" for name in MODELS}
    check_rebuilds(lambda: run("cmake", "--build", build_dir, cwd=tree), generated, tree)
    (build_dir / "nndsl" / "mlp_model" / "mlp.c").unlink()  # a lost output is made again
    assert "mlp.nn" in run("cmake", "--build", build_dir, cwd=tree)
    check_image(build_dir / "firmware.elf")


def test_make_project_builds_regenerates_and_runs(tree: Path) -> None:
    source, build_dir = tree / "examples" / "firmware", tree / "out"
    output = run("make", "-C", source, f"BUILD={build_dir}", f"NNDSL={NNDSL}", cwd=tree)
    assert "mlp.nn" in output and "conv1d.nn" in output
    check_image(build_dir / "firmware.elf")
    check_rebuilds(lambda: run("make", "-C", source, f"BUILD={build_dir}", f"NNDSL={NNDSL}", cwd=tree),
                   {name: build_dir / "models" / f"{name}.c" for name in MODELS}, tree)
    check_image(build_dir / "firmware.elf")


def test_depfile_names_the_nndsl_that_generated_the_files(tmp_path: Path) -> None:
    """The depfile lists the .nn, its weights and a file of this nndsl installation, with an empty rule for it."""
    from nndsl.buildsys import version_file

    nndsl.load(EXAMPLES / "mlp" / "mlp.nn").build(tmp_path)
    rules = (tmp_path / "mlp.d").read_text().split("\n\n")
    assert str(version_file()) in rules[0] and rules[1] == f"{version_file()}:\n"
    assert str(EXAMPLES / "mlp" / "mlp.npz") in rules[0]


def test_cmake_and_make_dirs_hold_the_helpers() -> None:
    cmake_dir = run(NNDSL, "--cmake-dir", cwd=ROOT).strip()
    make_dir = run(NNDSL, "--make-dir", cwd=ROOT).strip()
    assert "function(nndsl_add_model" in (Path(cmake_dir) / "nndsl.cmake").read_text()
    assert (Path(cmake_dir) / "nndslConfig.cmake").is_file()
    assert "define nndsl_model" in (Path(make_dir) / "nndsl.mk").read_text()
