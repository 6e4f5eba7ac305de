"""Shared paths and fixtures for the tests: everything they read is inside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def tflite() -> Any:
    """TensorFlow, imported only for the tests that take it (skipped where it is missing)."""
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def compiler() -> str:
    """The C compiler the kernel harnesses use (gcc, or ``$CC``); skipped where there is none."""
    from tests.c_harness import find_compiler

    found = find_compiler()
    if found is None:
        pytest.skip("gcc not found")
    return found


FRESH_PROCESS = "NNDSL_TEST_IN_FRESH_PROCESS"


def rerun_in_fresh_process(request: pytest.FixtureRequest) -> bool:
    """Run the calling test again, alone, in a new Python process, and fail with its output if it fails there;
    False inside that process (the test then does its work).

    For tests whose reference TensorFlow makes: its int8 converter's output for a Keras LSTM depends on what
    the process converted before (an unrolled LSTM came out partly float after other recurrent models).
    """
    if os.environ.get(FRESH_PROCESS) == "1":
        return False
    command = [sys.executable, "-m", "pytest", request.node.nodeid, "-q", "-p", "no:cacheprovider", "-p",
               "no:xdist"]
    run = subprocess.run(command, cwd=request.config.rootpath, capture_output=True, text=True, timeout=900,
                         env={**os.environ, FRESH_PROCESS: "1"}, check=False)
    assert run.returncode == 0, f"{request.node.nodeid} failed in a fresh process:\n{run.stdout[-6000:]}"
    return True
