"""Shared paths and fixtures for the tests: everything they read is inside the repository."""

from __future__ import annotations

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

