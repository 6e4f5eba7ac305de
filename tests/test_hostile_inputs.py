"""Hostile inputs: absurd sizes, broken or malicious weights archives, files that are not files.

Each ends in a located error (or, for a byte order mark, a model) quickly and
without allocating what it asks for. The size limits (``nndsl/types.py``,
``nndsl/parser.py``) are checked in the process with a time bound; the cases
that used to take gigabytes also run in a subprocess whose address space is
capped at ``ADDRESS_SPACE_MB``, so that allocating them would fail the test.
"""

from __future__ import annotations

import io
import os
import re
import resource
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.parser import MAX_NESTING, MAX_SOURCE_CHARS
from nndsl.types import MAX_LAYERS, MAX_OP_WORK, MAX_TENSOR_ELEMENTS, MAX_WEIGHT_ELEMENTS, MAX_WINDOW_TAPS

SECONDS = 2.0  # for any case in this process (each takes milliseconds)
ADDRESS_SPACE_MB = 1024  # the subprocess cases: Python, NumPy and nndsl fit in half of it
Q = "@ scale(0.05) zero(0)"
Arrays = dict[str, np.ndarray]


def load_timed(path: Path) -> nndsl.Model:
    start = time.perf_counter()
    try:
        return nndsl.load(path)
    finally:
        assert time.perf_counter() - start < SECONDS


def first_error(path: Path) -> nndsl.Diagnostic:
    with pytest.raises(nndsl.NNError) as raised:
        load_timed(path)
    return next(d for d in raised.value.diagnostics if d.severity.value == "error")


def assert_error(path: Path, line: int, col: int, *words: str) -> None:
    error = first_error(path)
    assert error.loc is not None, error.format()
    assert (error.loc.line, error.loc.col) == (line, col), error.format()
    for word in words:
        assert word in error.message, f"{word!r} not in {error.message!r}"


def write(directory: Path, source: str, weights: Arrays | None = None) -> Path:
    if weights is not None:
        np.savez(directory / "w.npz", **weights)
    path = directory / "m.nn"
    path.write_text(source, encoding="utf-8")
    return path


# -- sizes: shapes, windows, pads, weights, layers -------------------------------------------------


def _int8_kernel(*shape: int) -> Arrays:
    return {"k": np.ones(shape, np.int8), "k.scale": np.full(1, 0.01, np.float32)}


@dataclass(frozen=True)
class Limit:
    id: str
    source: str
    line: int
    col: int
    words: tuple[str, ...]
    weights: Callable[[], Arrays] = field(default=dict)
    in_subprocess: bool = False  # cases that used to take gigabytes or tens of seconds


LIMITS = [
    Limit("pad-1e9", f"network n\ninput x : i8[4] {Q}\noutput y = pad(x, pads=((1000000000, 0)))\n", 3, 12,
          ("'y' has 1000000004 elements", f"at most {MAX_TENSOR_ELEMENTS} (2^22) elements"), in_subprocess=True),
    Limit("pad-1e9-efm32", f"network n\ntarget efm32\ninput x : i8[4] {Q}\noutput y = pad(x, pads=((1000000000, 0)))\n",
          4, 12, ("'y' has 1000000004 elements",), in_subprocess=True),
    Limit("max-pool-size-1e9", f"network n\ninput x : i8[16, 1] {Q}\n"
          "output y = max_pool(x, size=1000000000, padding=same)\n", 3, 12,
          ("max_pool 'y' has a window of 1000000000 taps", f"at most {MAX_WINDOW_TAPS} (2^12) taps"),
          in_subprocess=True),
    Limit("max-pool-window-reads", f"network n\ninput x : i8[4096, 4] {Q}\n"
          "output y = max_pool(x, size=4096, stride=1, padding=same)\n", 3, 12,
          ("max_pool 'y' needs 67108864 window reads", f"at most {MAX_OP_WORK} (2^23) per layer")),
    Limit("conv-128x128-same", f'network n\nweights "w.npz"\ninput x : i8[128, 128, 1] {Q}\n'
          f"output y = conv2d(x, k, padding=same) : i8 {Q}\n", 4, 12,
          ("conv2d 'y' has a window of 16384 taps (128x128)", f"at most {MAX_WINDOW_TAPS} (2^12) taps"),
          lambda: _int8_kernel(128, 128, 1, 1), in_subprocess=True),
    Limit("conv-64x64-same", f'network n\nweights "w.npz"\ninput x : i8[64, 64, 1] {Q}\n'
          f"output y = conv2d(x, k, padding=same) : i8 {Q}\n", 4, 12,
          ("conv2d 'y' needs 16777216 multiply-accumulates", "4096 kernel taps at each of 4096 outputs"),
          lambda: _int8_kernel(64, 64, 1, 1), in_subprocess=True),
    Limit("input-2e7-efm32", f"network n\ntarget efm32\ninput x : i8[20000000] {Q}\noutput y = relu(x)\n", 3, 11,
          ("input 'x' has 20000000 elements",), in_subprocess=True),
    Limit("input-2^31", f"network n\ninput x : i8[2147483648] {Q}\noutput y = relu(x)\n", 2, 11,
          ("input 'x' has 2147483648 elements",), in_subprocess=True),
    Limit("input-1e11", f"network n\ninput x : i8[100000000000] {Q}\noutput y = relu(x)\n", 2, 11,
          ("input 'x' has 100000000000 elements",)),
    Limit("dimension-1e26", f"network n\ninput x : i8[{10**26}] {Q}\noutput y = relu(x)\n", 2, 11,
          (f"has {10**26} elements",)),
    Limit("product-wraps-int64", f"network n\ninput x : i8[4294967296, 4294967296] {Q}\noutput y = relu(x)\n", 2, 11,
          ("has 18446744073709551616 elements",)),
    Limit("rank-65", f"network n\ninput x : i8[{', '.join(['1'] * 65)}] {Q}\noutput y = relu(x)\n", 2, 11,
          ("input 'x' has 65 axes", "at most 8")),
    Limit("reshape-rank-66", f"network n\ninput x : f32[4]\noutput y = reshape(x, shape=({'1, ' * 65}4))\n", 3, 12,
          ("'y' has 66 axes",)),
    Limit("dilation-1e18", 'network n\nweights "w.npz"\ninput x : f32[8, 1]\n'
          "output y = conv1d(x, k, dilation=1000000000000000000, padding=same)\n", 4, 12,
          ("conv1d 'y' has a dilation of 1000000000000000000", "at most 4194304 (2^22)"),
          lambda: {"k": np.ones((3, 1, 1), np.float32)}),
    Limit("dilation-1e18-float", 'network n\nweights "w.npz"\ninput x : f32[8, 1]\n'
          "output y = conv1d(x, k, dilation=1e18, padding=same)\n", 4, 25, ("dilation must be whole numbers",),
          lambda: {"k": np.ones((3, 1, 1), np.float32)}),
    Limit("stride-1e21", 'network n\nweights "w.npz"\ninput x : f32[8, 1]\n'
          "output y = conv1d(x, k, stride=1000000000000000000000, padding=same)\n", 4, 12,
          ("has a stride of 1000000000000000000000",), lambda: {"k": np.ones((3, 1, 1), np.float32)}),
    Limit("dense-1e6-outputs", f'network n\nweights "w.npz"\ninput x : i8[16] {Q}\noutput y = dense(x, k) : i8 {Q}\n',
          4, 12, ("dense 'y' needs 16000000 multiply-accumulates",), lambda: _int8_kernel(16, 1_000_000),
          in_subprocess=True),
    Limit("int8-tanh-table", f"network n\ninput x : i8[65536] {Q}\noutput y = tanh(x)\n", 3, 12,
          ("tanh 'y' needs 16777216 function evaluations",)),
    Limit("network-elements", f"network n\ninput x : i8[4194304] {Q}\na = relu(x)\nb = relu(a)\noutput y = relu(b)\n",
          4, 5, ("the network's tensors reach 12582912 elements in all at 'b'", "2^23"), in_subprocess=True),
    Limit("number-of-5000-digits", f"network n\ninput x : f32[{'9' * 5000}]\noutput y = relu(x)\n", 2, 15,
          ("a number of 5000 digits",)),
    Limit("nested-parentheses", "network n\ninput x : f32[4]\noutput y = reshape(x, shape="
          + "(" * 490 + "4" + ")" * 490 + ")\n", 3, 28 + MAX_NESTING, (f"nested more than {MAX_NESTING} deep",)),
]


@pytest.mark.parametrize("case", LIMITS, ids=[case.id for case in LIMITS])
def test_limit(tmp_path: Path, case: Limit) -> None:
    assert_error(write(tmp_path, case.source, case.weights()), case.line, case.col, *case.words)


_CAPPED_LOAD = textwrap.dedent("""
    import resource, sys
    limit = int(sys.argv[2]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import nndsl
    try:
        nndsl.load(sys.argv[1])
    except nndsl.NNError as error:
        print(error)
""")


def run_capped(path: Path, *, seconds: float = 30) -> subprocess.CompletedProcess[str]:
    """Load ``path`` in a Python whose address space is capped: allocating gigabytes raises MemoryError there."""
    return subprocess.run([sys.executable, "-c", _CAPPED_LOAD, str(path), str(ADDRESS_SPACE_MB)],
                          capture_output=True, text=True, timeout=seconds, check=False)


CAPPED = [case for case in LIMITS if case.in_subprocess]


@pytest.mark.parametrize("case", CAPPED, ids=[case.id for case in CAPPED])
def test_limit_in_bounded_memory(tmp_path: Path, case: Limit) -> None:
    path = write(tmp_path, case.source, case.weights())
    result = run_capped(path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f"{path}:{case.line}:{case.col}: error: " in result.stdout, result.stdout


def test_cli_run_refuses_absurd_sizes(tmp_path: Path) -> None:
    path = write(tmp_path, LIMITS[0].source)
    np.save(tmp_path / "x.npy", np.zeros(4, np.int8))
    result = subprocess.run([sys.executable, "-m", "nndsl", "run", str(path), "--input", str(tmp_path / "x.npy")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}:3:12: error: 'y' has 1000000004 elements"), result.stderr


def _chain(layers: int) -> str:
    body = "".join(f"l{i} = relu(l{i - 1})\n" for i in range(1, layers))
    return f"network n\ninput x : i8[4] {Q}\nl0 = relu(x)\n{body}output y = relu(l{layers - 1})\n"


def test_long_chain_of_layers_compiles(tmp_path: Path) -> None:
    """500 layers used to end in a RecursionError (ordering the layers was recursive)."""
    model = load_timed(write(tmp_path, _chain(500)))
    assert len(model.graph.ops) >= 1


def test_too_many_layers(tmp_path: Path) -> None:
    assert_error(write(tmp_path, _chain(MAX_LAYERS + 10)), MAX_LAYERS + 3, 1,
                 f"the output depends on {MAX_LAYERS + 11} layers", f"at most {MAX_LAYERS} layers")


def test_source_too_large(tmp_path: Path) -> None:
    path = write(tmp_path, f"network n\ninput x : f32[4]\noutput x\n# {'x' * MAX_SOURCE_CHARS}\n")
    error = first_error(path)
    assert error.loc is not None and error.loc.line == 0, error.format()
    assert f"at most {MAX_SOURCE_CHARS} characters" in error.message


def test_source_too_large_through_loads() -> None:
    with pytest.raises(nndsl.NNError, match="at most"):
        nndsl.loads("network n\n" + " " * MAX_SOURCE_CHARS)


# -- weights archives -----------------------------------------------------------------------------

DENSE = 'network n\nweights "w.npz"\ninput x : f32[4]\noutput y = dense(x, k)\n'  # k: line 4, col 21


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _patch_entries(path: Path, local_offset: int, central_offset: int, value: int) -> None:
    """Overwrite a 16-bit field of every local and central zip header (the flags or the compression method)."""
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        start = raw.find(signature)
        while start >= 0:
            raw[start + offset : start + offset + 2] = struct.pack("<H", value)
            start = raw.find(signature, start + 4)
    path.write_bytes(bytes(raw))


def empty_archive(path: Path) -> None:
    np.savez(path)


def encrypted_member(path: Path) -> None:
    _zip(path, {"k.npy": _npy(np.ones((4, 2), np.float32))})
    _patch_entries(path, 6, 8, 0x1)  # general purpose flag bit 0: encrypted


def unknown_compression(path: Path) -> None:
    _zip(path, {"k.npy": _npy(np.ones((4, 2), np.float32))})
    _patch_entries(path, 8, 10, 99)  # method 99: AES, which zipfile cannot read


def symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


def declares_1e12_elements(path: Path) -> None:
    _zip(path, {"k.npy": _npy_header((10**12,))})


def shorter_than_declared(path: Path) -> None:
    _zip(path, {"k.npy": _npy_header((4, 2)) + bytes(8)})


def complex_array(path: Path) -> None:
    np.savez(path, k=np.ones((4, 2), np.complex64))


def not_npy_member(path: Path) -> None:
    _zip(path, {"k": b"1, 2, 3"})


def empty_array(path: Path) -> None:
    np.savez(path, k=np.ones((4, 0), np.float32))


def device_file(path: Path) -> None:
    path.symlink_to(os.devnull if not Path("/dev/zero").exists() else "/dev/zero")


def fifo(path: Path) -> None:
    os.mkfifo(path)


WEIGHTS_CASES: list[tuple[str, Callable[[Path], None], int, int, tuple[str, ...]]] = [
    ("empty-archive", empty_archive, 4, 21, ("weight 'k' is not in 'w.npz'",)),
    ("encrypted-member", encrypted_member, 2, 1, ("'k' is encrypted",)),
    ("unknown-compression", unknown_compression, 2, 1, ("'k' uses zip compression method 99",)),
    ("symlink-loop", symlink_loop, 2, 1, ("weights file 'w.npz' cannot be read", "symbolic links")),
    ("declares-1e12-elements", declares_1e12_elements, 2, 1,
     ("'k' has 1000000000000 elements", f"at most {MAX_WEIGHT_ELEMENTS} (2^24) elements")),
    ("shorter-than-declared", shorter_than_declared, 2, 1,
     ("'k' declares 32 bytes of float32 (shape [4, 2]), but its zip member holds 8",)),
    ("complex-array", complex_array, 2, 1, ("'k' is an array of complex64",)),
    ("member-not-npy", not_npy_member, 2, 1, ("'k' is not a .npy array",)),
    ("empty-array", empty_array, 2, 1, ("'k' has no elements (shape [4, 0])",)),
    ("device-file", device_file, 2, 1, ("not a regular file (a character device)",)),
    ("fifo", fifo, 2, 1, ("not a regular file (a FIFO)",)),
]


@pytest.mark.parametrize(("make", "line", "col", "words"), [case[1:] for case in WEIGHTS_CASES],
                         ids=[case[0] for case in WEIGHTS_CASES])
def test_hostile_weights(tmp_path: Path, make: Callable[[Path], None], line: int, col: int,
                         words: tuple[str, ...]) -> None:
    make(tmp_path / "w.npz")
    assert_error(write(tmp_path, DENSE), line, col, *words)


def test_weights_in_all(tmp_path: Path) -> None:
    half = MAX_WEIGHT_ELEMENTS // 2 + 16
    weights = {**_int8_kernel(16, half // 16), "k2": np.ones((16, half // 16), np.int8)}
    source = (f'network n\nweights "w.npz"\ninput x : i8[16] {Q}\na = dense(x, k) : i8 {Q}\n'
              f"b = dense(x, k2) : i8 {Q}\noutput y = add(a, b) : i8 {Q}\n")
    assert_error(write(tmp_path, source, weights), 2, 1, "reach 16777249 elements with 'k2'",
                 "elements of weights in all")


def test_unused_members_are_never_read(tmp_path: Path) -> None:
    """Broken, pickled or huge arrays the model does not use do not matter; only ``k`` is read."""
    _zip(tmp_path / "w.npz", {"k.npy": _npy(np.ones((4, 2), np.float32)), "huge.npy": _npy_header((10**12,)),
                              "junk.npy": b"\x93NUMPY garbage"})
    model = load_timed(write(tmp_path, DENSE))
    assert [tensor.name for tensor in model.graph.consts] == ["k"]


def test_unused_gigabyte_member_in_bounded_memory(tmp_path: Path) -> None:
    """A few MB of archive holding a deflated 1 GiB array the model does not use: it is never inflated."""
    with zipfile.ZipFile(tmp_path / "w.npz", "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("k.npy", _npy(np.ones((4, 2), np.float32)))
        with archive.open("unused.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((2**27,), "<f8"))
            chunk = bytes(1 << 24)
            for _ in range(2**30 // len(chunk)):
                member.write(chunk)
    result = run_capped(write(tmp_path, DENSE))
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# -- files that are not regular files, and encodings -----------------------------------------------


def test_model_is_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "m.nn"
    os.mkfifo(path)
    with pytest.raises(nndsl.NNError, match=r"not a regular file \(a FIFO\)"):
        load_timed(path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_model_is_a_device() -> None:
    with pytest.raises(nndsl.NNError, match=r"cannot read '/dev/zero': not a regular file \(a character device\)"):
        load_timed(Path("/dev/zero"))


def test_cli_check_fifo_ends(tmp_path: Path) -> None:
    path = tmp_path / "m.nn"
    os.mkfifo(path)
    result = subprocess.run([sys.executable, "-m", "nndsl", "check", str(path)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.match(r"^nndsl: error: cannot read .*not a regular file \(a FIFO\)", result.stderr), result.stderr


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.nn"
    np.savez(tmp_path / "w.npz", k=np.ones((4, 2), np.float32))
    path.write_bytes(b"\xef\xbb\xbf" + DENSE.encode("utf-8"))
    assert load_timed(path).graph.output.type.shape == (2,)


def test_utf8_bom_keeps_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.nn"
    path.write_bytes(b"\xef\xbb\xbfnetwork n\ninput x : f32[4]\noutput y = relu(x $)\n")
    assert_error(path, 3, 19, "syntax error", "found '$'")


def test_crlf_and_tabs_are_whitespace(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", k=np.ones((4, 2), np.float32))
    path = tmp_path / "m.nn"
    path.write_bytes(DENSE.replace(" ", "\t").replace("\n", "\r\n").encode("utf-8"))
    assert load_timed(path).graph.output.type.shape == (2,)


def test_nul_in_weights_name(tmp_path: Path) -> None:
    assert_error(write(tmp_path, DENSE.replace("w.npz", "w.npz\x00")), 2, 1, "NUL character")


def test_resource_module_is_available() -> None:
    """The capped cases rely on RLIMIT_AS (Linux and macOS)."""
    assert hasattr(resource, "RLIMIT_AS")
