"""The command line itself: help, run's output file, paths relative to the .nn file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXAMPLES

COMMANDS = ("build", "run", "check", "summarize", "import", "compare")


def nndsl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nndsl", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = nndsl(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: nndsl {command}")


def test_run_writes_the_output_in_the_output_type(tmp_path: Path) -> None:
    inputs = np.load(EXAMPLES / "mlp" / "inputs.npy")
    np.save(tmp_path / "x.npy", inputs)
    result = nndsl("run", str(EXAMPLES / "mlp" / "mlp.nn"), "--input", str(tmp_path / "x.npy"), "--output",
                   str(tmp_path / "y.npy"))
    assert result.returncode == 0, result.stderr
    outputs = np.load(tmp_path / "y.npy")
    assert outputs.dtype == np.int8
    assert np.array_equal(outputs, np.load(EXAMPLES / "mlp" / "expected.npy"))


def test_run_prints_one_result(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.load(EXAMPLES / "mlp" / "inputs.npy")[0])
    result = nndsl("run", str(EXAMPLES / "mlp" / "mlp.nn"), "--input", str(tmp_path / "x.npy"))
    assert result.returncode == 0, result.stderr
    printed = np.array(result.stdout.strip("[]\n").split(), dtype=np.int64)
    assert np.array_equal(printed, np.load(EXAMPLES / "mlp" / "expected.npy")[0])


def test_weights_are_found_beside_the_nn_file_from_any_folder(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    for name in ("mlp.nn", "mlp.npz"):
        shutil.copy(EXAMPLES / "mlp" / name, model_dir / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = nndsl("check", "../models/mlp.nn", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "ok (4 layers" in result.stdout
