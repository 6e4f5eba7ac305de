"""A plain install ships the grammar and the C templates, and never needs TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("nndsl-*.whl")
    return path


def test_wheel_carries_grammar_templates_and_runtime(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "nndsl/grammar/nn.lark",
        "nndsl/backends/c/templates/model.c.j2",
        "nndsl/backends/c/templates/model.h.j2",
        "nndsl/backends/c/templates/ops.c.j2",
        "nndsl/backends/c/runtime/requant.c",
        "nndsl/backends/c/runtime/softmax.c",
        "nndsl/backends/numpy/interpreter.py",
    ):
        assert required in names


def test_installed_command_builds_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    """Install the wheel alone into a folder and run its `nndsl` script from elsewhere."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
        check=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    script = site / "bin" / "nndsl"
    command = [sys.executable, str(script), "build", str(EXAMPLES / "mlp" / "mlp.nn"), "-o", "out"]
    subprocess.run(command, check=True, cwd=work, env=env)
    assert (work / "out" / "mlp.c").stat().st_size > 0
    assert (work / "out" / "mlp.h").read_text().startswith("/* mlp.h")
    where = subprocess.run(
        [sys.executable, "-c", "import nndsl; print(nndsl.__file__)"],
        check=True, cwd=work, env=env, capture_output=True, text=True,
    )
    assert where.stdout.strip().startswith(str(site)), "the test must exercise the installed copy"


def test_build_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys, nndsl\n"
        f"nndsl.load({str(EXAMPLES / 'mlp' / 'mlp.nn')!r}).build({str(tmp_path)!r})\n"
        "from nndsl.cli import main\n"
        f"main(['build', {str(EXAMPLES / 'mlp' / 'mlp.nn')!r}, '-o', {str(tmp_path)!r}, '-q'])\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tflite_micro')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
