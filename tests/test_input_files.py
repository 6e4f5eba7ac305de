"""Files the command line reads besides the model: arrays (``--input``, ``--calibrate``) and imported models.

Only regular files are read, and a ``.npy`` header is checked against the file's size and the limits before
any data is: each case ends in its located error quickly, in a process whose address space is capped.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.test_hostile_inputs import ADDRESS_SPACE_MB, DENSE, _npy_header, write


def _cap_address_space() -> None:
    limit = ADDRESS_SPACE_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def cli_capped(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``nndsl ARGS`` in a process whose address space is capped, so that reading gigabytes would fail."""
    return subprocess.run([sys.executable, "-m", "nndsl", *map(str, args)], capture_output=True, text=True,
                          timeout=30, check=False, preexec_fn=_cap_address_space)


def _dense_model(directory: Path) -> Path:
    return write(directory, DENSE, {"k": np.ones((4, 2), np.float32)})


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _huge_header(path: Path) -> Path:
    path.write_bytes(_npy_header((2**25,)))  # 128 MiB declared, none present
    return path


def _too_many(path: Path) -> Path:
    path.write_bytes(_npy_header((2**20, 2**20)))
    return path


ARRAY_FILES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("fifo", _fifo, "cannot read the input (not a regular file (a FIFO))"),
    ("device", lambda _: Path("/dev/zero"), "cannot read the input (not a regular file (a character device))"),
    ("folder", lambda path: path.parent, "cannot read the input (is a directory)"),
    ("truncated", _huge_header, "declares 134217728 bytes of float32 (shape [33554432]), but the file holds 0 after"),
    ("too-many-elements", _too_many, "declares 1099511627776 elements (shape [1048576, 1048576]); nndsl reads .npy "
                                     "files of at most 67108864 (2^26) elements"),
    ("bytes-array", lambda path: (np.save(path, np.array([b"ab"])), path)[1], "holds an array of |S2"),
]


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in ARRAY_FILES], ids=[case[0] for case in ARRAY_FILES])
def test_run_input_is_read_only_from_a_sound_npy_file(tmp_path: Path, make: Callable[[Path], Path],
                                                      message: str) -> None:
    model, npy = _dense_model(tmp_path), make(tmp_path / "x.npy")
    result = cli_capped("run", model, "--input", npy)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{npy}: error: {message}"), result.stderr


def test_to_fixed_calibration_from_a_fifo(tmp_path: Path) -> None:
    model, npy = _dense_model(tmp_path), _fifo(tmp_path / "x.npy")
    result = cli_capped("to-fixed", model, "--calibrate", npy, "-o", tmp_path / "q.nn")
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"{npy}: error: cannot read the input (not a regular file (a FIFO))\n"


@pytest.mark.parametrize("suffix", [".tflite", ".keras"])
def test_import_from_a_fifo(tmp_path: Path, suffix: str) -> None:
    source = _fifo(tmp_path / f"m{suffix}")
    result = cli_capped("import", source, "-o", tmp_path / "out.nn")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{source}: error: "), result.stderr
    assert "not a regular file" in result.stderr, result.stderr


def test_import_tflite_over_the_size_limit(tmp_path: Path) -> None:
    from nndsl.importers.files import MAX_FLATBUFFER_BYTES

    source = tmp_path / "m.tflite"
    with source.open("wb") as stream:  # sparse: no disk used
        stream.truncate(MAX_FLATBUFFER_BYTES + 1)
    result = cli_capped("import", source, "-o", tmp_path / "out.nn")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"{source}: error: the model is over 256 MiB"), result.stderr
