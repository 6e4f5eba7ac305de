"""Golden dumps of the lowered examples (``nndsl check --ir``): lowering pinned without going through C.

After an intended change to lowering, regenerate them with
``NNDSL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_irdump.py`` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nndsl
from nndsl.irdump import dump
from tests.conftest import DATA, EXAMPLES

GOLDEN = DATA / "ir"
MODELS = sorted(p for p in EXAMPLES.glob("*/*.nn") if p.stem == p.parent.name)


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_lowering_matches_its_golden_dump(path: Path) -> None:
    text = dump(nndsl.load(path).graph)
    golden = GOLDEN / f"{path.stem}.txt"
    if os.environ.get("NNDSL_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_check_ir_prints_the_dump() -> None:
    path = EXAMPLES / "mlp" / "mlp.nn"
    done = subprocess.run([sys.executable, "-m", "nndsl", "check", "--ir", "-q", str(path)], capture_output=True,
                          text=True, check=True)
    assert done.stdout == (GOLDEN / "mlp.txt").read_text(encoding="utf-8")
    assert "hidden1 = dense(pixels)  # mlp.nn:15" in done.stdout and "c nn_mat_s8" in done.stdout
