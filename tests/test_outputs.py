"""Output files behave as a compiler's: folders created, unchanged files left alone, inputs never overwritten."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXAMPLES
from tests.test_cli import nndsl

MLP = EXAMPLES / "mlp" / "mlp.nn"


def test_build_creates_missing_folders(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    result = nndsl("build", str(MLP), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["mlp.c", "mlp.d", "mlp.h"]


def test_build_leaves_unchanged_outputs_untouched(tmp_path: Path) -> None:
    assert nndsl("build", str(MLP), "-o", str(tmp_path)).returncode == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in tmp_path.iterdir()}
    for path in tmp_path.iterdir():  # an old timestamp: a rewrite could not go unnoticed
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = {name: (data, 1_000_000_000, inode) for name, (data, _, inode) in before.items()}
    assert nndsl("build", str(MLP), "-o", str(tmp_path)).returncode == 0
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in tmp_path.iterdir()}
    assert after == before


def test_build_rewrites_an_output_whose_content_changed(tmp_path: Path) -> None:
    assert nndsl("build", str(MLP), "-o", str(tmp_path)).returncode == 0
    header = tmp_path / "mlp.h"
    fresh = header.read_bytes()
    header.write_text("/* edited */\n")
    os.utime(tmp_path / "mlp.c", ns=(1_000_000_000, 1_000_000_000))
    assert nndsl("build", str(MLP), "-o", str(tmp_path)).returncode == 0
    assert header.read_bytes() == fresh
    assert (tmp_path / "mlp.c").stat().st_mtime_ns == 1_000_000_000


def test_build_refuses_to_overwrite_the_model_it_reads(tmp_path: Path) -> None:
    """A model file named like an output (mlp.h holding `network mlp`) must survive the build."""
    shutil.copy(EXAMPLES / "mlp" / "mlp.npz", tmp_path / "mlp.npz")
    text = MLP.read_text()
    (tmp_path / "mlp.h").write_text(text)
    result = nndsl("build", "mlp.h", "-o", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert "mlp.h: error: this output would overwrite one of the model's own files" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "mlp.h").read_text() == text
    assert not (tmp_path / "mlp.c").exists()


def test_depfile_escapes_what_make_would_misread(tmp_path: Path) -> None:
    folder = tmp_path / "a b#c$d"
    folder.mkdir()
    for name in ("mlp.nn", "mlp.npz"):
        shutil.copy(EXAMPLES / "mlp" / name, folder / name)
    out = tmp_path / "out"
    assert nndsl("build", str(folder / "mlp.nn"), "-o", str(out)).returncode == 0
    depfile = (out / "mlp.d").read_text()
    assert "a\\ b\\#c$$d/mlp.nn" in depfile
    assert "a\\ b\\#c$$d/mlp.npz" in depfile
    if shutil.which("make"):  # make itself reads the rule: its prerequisites are the two real files, then nndsl's
        target = str(out / "mlp.c")
        (out / "Makefile").write_text(f"include mlp.d\n{target}:\n\t@echo '$^'\n")
        shown = subprocess.run(["make", "-s", "-B", "-C", str(out), target], capture_output=True, text=True)
        assert shown.stdout.split("mlp.nn ")[0] + "mlp.nn" == f"{folder}/mlp.nn", shown
        assert f"{folder}/mlp.npz /" in shown.stdout


def _previous_build(out: Path) -> dict[str, bytes]:
    """Outputs of an earlier build that differ from what a build of MLP writes."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("mlp.c", "mlp.h", "mlp.d"):
        (out / name).write_text(f"/* the previous {name} */\n")
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_a_failed_replace_restores_every_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header cannot be replaced (as on a full or read-only disk): the .c already replaced is put back."""
    import nndsl as package
    from nndsl import files

    out = tmp_path / "out"
    before = _previous_build(out)
    replace = os.replace

    def fail_on_header(source: str, target: str | Path) -> None:
        if str(target).endswith("mlp.h"):
            raise OSError(28, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(files.os, "replace", fail_on_header)
    with pytest.raises(OSError, match="cannot be replaced") as raised:
        package.load(MLP).build(out)
    assert raised.value.filename == str(out / "mlp.h")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary or backup left either


def test_a_failed_replace_removes_the_new_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nndsl as package
    from nndsl import files

    replace = os.replace

    def fail_on_depfile(source: str, target: str | Path) -> None:
        if str(target).endswith("mlp.d"):
            raise OSError(5, "Input/output error")
        replace(source, target)

    monkeypatch.setattr(files.os, "replace", fail_on_depfile)
    with pytest.raises(OSError, match="cannot be replaced"):
        package.load(MLP).build(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_folder_stops_the_build_before_any_write(tmp_path: Path) -> None:
    before = _previous_build(tmp_path)
    (tmp_path / "mlp.h").unlink()
    (tmp_path / "mlp.h").mkdir()
    result = nndsl("build", str(MLP), "-o", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == f"{tmp_path / 'mlp.h'}: error: is a folder; nndsl would replace it with a file\n"
    assert (tmp_path / "mlp.c").read_bytes() == before["mlp.c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.c", "mlp.d", "mlp.h"]


@pytest.mark.parametrize("below", ["", "sub/dir"])
def test_an_output_folder_that_is_a_file(tmp_path: Path, below: str) -> None:
    (tmp_path / "afile").write_text("text\n")
    out = tmp_path / "afile" / below if below else tmp_path / "afile"
    result = nndsl("build", str(MLP), "-o", str(out))
    assert result.returncode == 1
    where = f" (the outputs go into {out})" if below else ""
    assert result.stderr == f"{tmp_path / 'afile'}: error: is a file, not a folder to write into{where}\n"
    assert (tmp_path / "afile").read_text() == "text\n"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs a folder nobody may write (sysfs)")
def test_an_output_folder_that_cannot_be_written() -> None:
    result = nndsl("build", str(MLP), "-o", "/sys/kernel")
    assert result.returncode == 1
    assert result.stderr.startswith("/sys/kernel: error: cannot write into this folder ("), result.stderr


def test_a_symbolic_link_among_the_outputs_is_replaced_not_written_through(tmp_path: Path) -> None:
    """Nothing is written outside the output folder, even where an output's name points out of it."""
    outside = tmp_path / "outside.c"
    outside.write_text("/* not nndsl's */\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mlp.c").symlink_to(outside)
    assert nndsl("build", str(MLP), "-o", str(out)).returncode == 0
    assert outside.read_text() == "/* not nndsl's */\n"
    assert not (out / "mlp.c").is_symlink() and "mlp_run" in (out / "mlp.c").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "outside.c"]


def test_import_creates_missing_folders(tmp_path: Path) -> None:
    """`nndsl import -o some/new/dir/m.nn` as a compiler would: the folders appear."""
    pytest.importorskip("tensorflow")
    out = tmp_path / "some" / "new" / "dir" / "m.nn"
    result = nndsl("import", str(EXAMPLES.parent / "tests" / "data" / "mlp" / "model_int8.tflite"), "-o", str(out),
                   "-q")
    assert result.returncode == 0, result.stderr
    assert out.exists() and out.with_suffix(".npz").exists()


def test_import_never_replaces_its_source(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    source = tmp_path / "m.tflite"
    shutil.copy(EXAMPLES.parent / "tests" / "data" / "mlp" / "model_int8.tflite", source)
    before = source.read_bytes()
    result = nndsl("import", str(source), "-o", str(source), "-q")
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"{source}: error: this output would replace the file it is made from; choose another " \
                            "output name\n"
    assert source.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


def test_run_output_is_the_file_named(tmp_path: Path) -> None:
    """np.save would append .npy; the user named a file, so that file it is."""
    out = tmp_path / "deeper" / "result.bin"
    result = nndsl("run", str(MLP), "--input", str(EXAMPLES / "mlp" / "inputs.npy"), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.load(out), np.load(EXAMPLES / "mlp" / "expected.npy"))
    assert not out.with_suffix(".bin.npy").exists()


def test_run_output_that_is_a_folder_is_an_error(tmp_path: Path) -> None:
    result = nndsl("run", str(MLP), "--input", str(EXAMPLES / "mlp" / "inputs.npy"), "--output", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == f"{tmp_path}: error: is a folder; --output takes the .npy file to write\n"
    assert list(tmp_path.iterdir()) == []


def test_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`nndsl run ... | head -c 10`: far more output than a pipe holds, and the reader leaves."""
    (tmp_path / "wide.nn").write_text("network wide\ninput x : f32[40000]\noutput y = relu(x)\n")
    np.save(tmp_path / "x.npy", np.linspace(-1, 1, 40000, dtype=np.float32))
    process = subprocess.Popen([sys.executable, "-m", "nndsl", "run", "wide.nn", "--input", "x.npy"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(10)
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait() == 141  # 128 + SIGPIPE, as for any command whose reader went away
    assert error == ""


def test_version_is_the_package_version() -> None:
    import nndsl as package

    result = nndsl("--version")
    assert result.returncode == 0
    assert result.stdout == f"nndsl {package.__version__}\n"
