"""The documentation does what it says: its command lines run, and the CLI reference matches the parser.

Every ``sh`` block of a guide runs, line by line and in order, in a scratch
folder that sees the repository's ``examples``, ``tests`` and ``benchmarks``
(so the guides' paths work and nothing is written into the repository). A
``c`` block whose first line is ``/* path */`` is written to that path first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nndsl.clidoc import reference
from tests.conftest import ROOT

DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_cli_reference_is_in_step_with_the_parser() -> None:
    assert (DOCS / "cli.md").read_text() == reference(), "regenerate: python -m nndsl.clidoc > docs/cli.md"


def steps(page: Path) -> list[tuple[str, str]]:
    """The page's ``sh`` command lines and ``c`` files, in order: ("sh", line) or ("c", text)."""
    found: list[tuple[str, str]] = []
    for language, body in BLOCK.findall(page.read_text()):
        if language == "sh":
            found += [("sh", line) for line in body.splitlines() if line.strip() and not line.startswith("#")]
        elif language == "c" and re.match(r"/\* [\w./-]+ \*/\n", body):
            found.append(("c", body))
    return found


def run_page(page: Path, work: Path) -> None:
    for folder in ("examples", "tests", "benchmarks"):
        (work / folder).symlink_to(ROOT / folder)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for kind, text in steps(page):
        if kind == "c":
            match = re.match(r"/\* ([\w./-]+) \*/\n", text)
            assert match is not None
            (work / match.group(1)).parent.mkdir(parents=True, exist_ok=True)
            (work / match.group(1)).write_text(text)
            continue
        done = subprocess.run(text, shell=True, cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{page.name}: {text}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.tensorflow
def test_getting_started_runs(tmp_path: Path, compiler: str) -> None:
    pytest.importorskip("tensorflow")
    run_page(DOCS / "getting-started.md", tmp_path)
    assert (tmp_path / "build" / "digits" / "layers" / "softmax.real.npy").is_file()


def test_firmware_guide_runs(tmp_path: Path, compiler: str) -> None:
    if any(shutil.which(tool) is None for tool in ("arm-none-eabi-gcc", "cmake", "make")):
        pytest.skip("arm-none-eabi-gcc, cmake or make not found (`make tools` installs them)")
    run_page(DOCS / "firmware.md", tmp_path)
    assert (tmp_path / "build" / "firmware" / "firmware.elf").is_file()
    assert (tmp_path / "build" / "firmware-make" / "firmware.elf").is_file()
