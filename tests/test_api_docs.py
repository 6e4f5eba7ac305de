"""docs/api.md documents the whole public surface, and its Python examples run."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

import nndsl
from nndsl.importers import ImportedModel
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "api.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_public_name_has_a_section() -> None:
    text = PAGE.read_text()
    missing = [name for name in nndsl.__all__ if f"### `nndsl.{name}`" not in text]
    assert not missing, f"docs/api.md has no section for {missing}"


@pytest.mark.parametrize("cls", [nndsl.Model, nndsl.Network, ImportedModel], ids=lambda c: c.__name__)
def test_every_public_member_is_documented(cls: type) -> None:
    text = PAGE.read_text()
    members = [name for name, _ in inspect.getmembers(cls) if not name.startswith("_")]
    fields = getattr(cls, "__dataclass_fields__", {})
    missing = [name for name in [*members, *fields] if not name.startswith("_") and f".{name}" not in text]
    assert not missing, f"docs/api.md does not mention {cls.__name__}.{missing}"


@pytest.mark.tensorflow
def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorflow")
    for folder in ("examples", "tests"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(PYTHON_BLOCK.findall(PAGE.read_text())):
        exec(compile(block, f"docs/api.md block {number + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "features = conv2d(spectrogram, features.kernel, features.bias, stride=2, padding=same) -> relu" in printed
    assert "bad.nn:3:12: error: unknown operator 'rleu'; did you mean 'relu'?" in printed
    assert (tmp_path / "build" / "api" / "kws.npz").is_file() and os.path.isfile(tmp_path / "build/api/mlp.c")
