"""What a user installs is what works: the built wheel, alone in a fresh virtual environment.

The development `.venv` holds an editable install whose import hook serves any
module from the source tree, so nothing here runs with it: each test builds the
wheel, makes its own virtual environment (no system site-packages, no editable
install), installs the wheel with its declared dependencies from the package
index, and runs the installed `nndsl` from a folder unrelated to the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, EXAMPLES, ROOT
from tests.test_to_fixed import float_mlp

# Top-level folders of the repository that install inside the nndsl package.
INSTALLED_INSIDE_NNDSL = ("grammar", "backends")
DATA_SUFFIXES = (".lark", ".j2", ".c", ".h", ".cmake", ".mk")


def source_files() -> dict[str, Path]:
    """Every file the installed package must carry, by its path inside the wheel."""
    files: dict[str, Path] = {}
    roots = {"nndsl": ROOT / "nndsl", **{f"nndsl/{folder}": ROOT / folder for folder in INSTALLED_INSIDE_NNDSL}}
    for prefix, root in roots.items():
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and (
                    path.suffix == ".py" or path.suffix in DATA_SUFFIXES):
                files[f"{prefix}/{path.relative_to(root).as_posix()}"] = path
    return files


def installed_modules() -> list[str]:
    """Every module of the source tree, by the name it has once installed (``__main__`` runs the CLI: left out)."""
    names = []
    for inside in source_files():
        if inside.endswith(".py") and not inside.endswith("__main__.py"):
            module = inside.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            names.append(module)
    return sorted(names)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, built from the repository as `python -m build` builds them for a release."""
    tree = tmp_path_factory.mktemp("tree")  # a copy: builds write into their tree, and tests run in parallel
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    for folder in ("nndsl", *INSTALLED_INSIDE_NNDSL):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel built from the unpacked sdist: a file the sdist lacks is missing from both.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
                   check=True, capture_output=True, cwd=out)
    return out


def wheel_of(dist: Path) -> Path:
    (path,) = dist.glob("nndsl-*.whl")
    return path


def fresh_environment(folder: Path, requirement: str) -> Path:
    """A new virtual environment holding only ``requirement`` and what it declares; its ``bin`` folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    bin_dir = folder / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", requirement], check=True,
                   capture_output=True)
    return bin_dir


def run(bin_dir: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command of the fresh environment with only its own ``bin`` on the path and no PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin:/bin"
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def test_wheel_and_sdist_carry_every_module_and_data_file(dist: Path) -> None:
    expected = set(source_files())
    wheel = set(zipfile.ZipFile(wheel_of(dist)).namelist())
    assert expected - wheel == set()
    (sdist,) = dist.glob("nndsl-*.tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for inside, path in source_files().items():
        assert path.relative_to(ROOT).as_posix() in in_sdist, inside
    assert "setup.py" in in_sdist and "pyproject.toml" in in_sdist


def test_installed_wheel_works_from_an_unrelated_folder(dist: Path, tmp_path: Path) -> None:
    """Every command a user runs first, with the installed copy and nothing else."""
    import nndsl

    bin_dir = fresh_environment(tmp_path / "venv", str(wheel_of(dist)))
    work = tmp_path / "elsewhere"
    work.mkdir()
    python, command = bin_dir / "python", bin_dir / "nndsl"

    where = run(bin_dir, python, "-c", "import nndsl; print(nndsl.__file__)", cwd=work).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), "the test must exercise the installed copy"
    imported = run(bin_dir, python, "-c",
                   "import importlib, json, sys\n"
                   f"for name in {installed_modules()!r}: importlib.import_module(name)\n"
                   "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
                   "('tensorflow', 'keras', 'tflite_micro'))))", cwd=work)
    assert json.loads(imported.stdout) == [], "importing nndsl must not import TensorFlow"

    assert run(bin_dir, command, "--version", cwd=work).stdout == f"nndsl {nndsl.__version__}\n"
    mlp = EXAMPLES / "mlp" / "mlp.nn"
    run(bin_dir, command, "build", mlp, "-o", "out", cwd=work)
    assert (work / "out" / "mlp.h").read_text().startswith("/* mlp.h")
    run(bin_dir, command, "run", mlp, "--input", EXAMPLES / "mlp" / "inputs.npy", "--output", "y.npy", cwd=work)
    assert np.array_equal(np.load(work / "y.npy"), np.load(EXAMPLES / "mlp" / "expected.npy"))
    ranges = run(bin_dir, command, "check", "--ranges", EXAMPLES / "hotword" / "hotword.nn", cwd=work).stdout
    assert "features" in ranges and "ok (" in ranges
    summary = json.loads(run(bin_dir, command, "summarize", "--json", EXAMPLES / "conv1d" / "conv1d.nn",
                             cwd=work).stdout)
    assert summary["macs"] == nndsl.load(EXAMPLES / "conv1d" / "conv1d.nn").summary().macs
    source = float_mlp(work)
    run(bin_dir, command, "to-fixed", source, "--calibrate", DATA / "mlp" / "x_calib.npy", "-o", "q/mlp_q.nn",
        cwd=work)
    run(bin_dir, command, "build", "q/mlp_q.nn", "-o", "q_out", cwd=work)
    assert (work / "q_out" / "mlp_q.c").exists()
    validated = run(bin_dir, command, "validate", mlp, "--input", EXAMPLES / "mlp" / "inputs.npy", cwd=work).stdout
    assert "C vs NumPy backend: 0 differing values" in validated
    for option, helper in (("--cmake-dir", "nndsl.cmake"), ("--make-dir", "nndsl.mk")):
        folder = Path(run(bin_dir, command, option, cwd=work).stdout.strip())
        assert folder.is_relative_to(tmp_path / "venv") and (folder / helper).is_file()
    assert "dist-info" in (work / "out" / "mlp.d").read_text()  # the depfile names the installed version


@pytest.mark.tensorflow
def test_installed_wheel_imports_with_the_tensorflow_extra(dist: Path, tmp_path: Path) -> None:
    """`pip install 'nndsl[tensorflow]'`: `nndsl import` of a .tflite and of a .keras file."""
    bin_dir = fresh_environment(tmp_path / "venv", f"{wheel_of(dist)}[tensorflow]")
    work = tmp_path / "elsewhere"
    work.mkdir()
    command = bin_dir / "nndsl"
    run(bin_dir, command, "import", DATA / "mlp" / "model_int8.tflite", "-o", "a/mlp.nn", "-q", cwd=work)
    run(bin_dir, command, "import", DATA / "mlp" / "model.keras", "-o", "b/mlp_f.nn", "-q", cwd=work)
    for path in (work / "a" / "mlp.nn", work / "b" / "mlp_f.nn"):
        run(bin_dir, command, "build", path, "-o", path.parent / "c", cwd=work)


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
