"""Malformed `.nn` models: every error is reported at the right place, in words, without a traceback.

Each case is a small int8 model (``BASE``) with one thing broken. The check is
the exact ``line:col`` of the first diagnostic and the words and numbers its
message must contain; a subset also runs through ``python -m nndsl`` to check
the ``path:line:col: error: `` form, the exit status and the absence of a
Python traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.summary import Summary
from nndsl.target import CYCLES_M4_MATRIX

# Line numbers below refer to this text; columns are 1-based.
BASE = """\
network tiny
target efm32
weights "w.npz"
input x : i8[64] @ scale(1/256) zero(-128)
h = dense(x, fc1.kernel, fc1.bias) -> relu : i8 @ scale(0.05) zero(-128)
logits = dense(h, fc2.kernel, fc2.bias) : i8 @ scale(0.1) zero(0)
output probs = softmax(logits)
"""
# Columns in BASE:
#   line 4: x 7, ':' 9, i8 11, '@' 18
#   line 5: h 1, dense 5, fc1.kernel 14, fc1.bias 26, '->' 36, relu 39, ':' 44, i8 46, '@' 49
#   line 6: logits 1, dense 10, h 16, fc2.kernel 19, fc2.bias 31, ':' 41, i8 43, '@' 46
#   line 7: output 1, probs 8, softmax 16, logits 24, ')' 30

Writer = Callable[[Path], None]


def _good_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "fc1.kernel": rng.integers(-127, 128, (64, 32), dtype=np.int8),
        "fc1.kernel.scale": np.full(32, 0.004, np.float32),
        "fc1.bias": rng.integers(-500, 500, 32, dtype=np.int32),
        "fc2.kernel": rng.integers(-127, 128, (32, 10), dtype=np.int8),
        "fc2.kernel.scale": np.full(10, 0.01, np.float32),
        "fc2.bias": rng.integers(-500, 500, 10, dtype=np.int32),
    }


def savez(changes: dict[str, np.ndarray | None] | None = None) -> Writer:
    """Writes the good weights with ``changes`` applied (None removes an array)."""

    def write(path: Path) -> None:
        arrays = _good_weights()
        for key, value in (changes or {}).items():
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        np.savez(path, **arrays)

    return write


def no_file(path: Path) -> None:
    """Writes no weights file."""


def text_file(path: Path) -> None:
    path.write_text("fc1.kernel = [1, 2, 3]\n", encoding="utf-8")


def npy_file(path: Path) -> None:
    with path.open("wb") as stream:  # np.save on a file object keeps the name: a .npy in "w.npz"
        np.save(stream, _good_weights()["fc1.kernel"])


class _CreatesFileWhenUnpickled:
    """Unpickling this calls ``open(path, "w")``: a visible side effect if nndsl ever unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


UNPICKLED_MARKER = "unpickled.txt"


def object_array(path: Path) -> None:
    arrays: dict[str, np.ndarray] = _good_weights()
    arrays["fc1.kernel"] = np.array([_CreatesFileWhenUnpickled(path.parent / UNPICKLED_MARKER)], dtype=object)
    np.savez(path, allow_pickle=True, **arrays)


def edit(*replacements: tuple[str, str], source: str = BASE) -> str:
    """``source`` with each ``(old, new)`` applied; every ``old`` must occur exactly once."""
    for old, new in replacements:
        assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times"
        source = source.replace(old, new)
    return source


def line(number: int, text: str, source: str = BASE) -> str:
    """``source`` with line ``number`` replaced (``text`` may hold several lines, or none)."""
    lines = source.splitlines()
    lines[number - 1 : number] = text.splitlines()
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    line: int
    col: int
    words: tuple[str, ...]
    weights: Writer = field(default_factory=savez)
    nth: int = 0  # which error (in report order) is the one described


CASES = [
    # -- syntax ---------------------------------------------------------------------------------
    Case("missing-network", line(1, ""), 1, 1, ("syntax error", "expected 'network'", "found 'target'")),
    Case("network-without-name", line(1, "network"), 2, 1,
         ("syntax error", "'network' needs the network's name", "keyword 'target'")),
    Case("unclosed-paren", edit(("fc1.bias) ->", "fc1.bias ->")), 5, 35,
         ("syntax error", "expected ')'", "found '->'")),
    Case("unclosed-paren-at-eof", line(7, "output probs = softmax(logits"), 7, 30,
         ("syntax error", "expected ')'", "found the end of the file")),
    Case("bad-character", edit(("fc2.bias) :", "fc2.bias) $ :")), 6, 41, ("syntax error", "found '$'")),
    Case("unterminated-string", line(3, 'weights "w.npz'), 3, 9, ("syntax error", "unterminated string")),
    Case("missing-type-after-colon-input", line(4, "input x :"), 4, 9,
         ("syntax error", "expected a type after ':'", "f32[64]")),
    Case("missing-type-after-colon-layer", line(5, "h = dense(x, fc1.kernel, fc1.bias) -> relu :"), 5, 44,
         ("syntax error", "expected a type after ':'")),
    Case("missing-type-before-output", line(6, "logits = dense(h, fc2.kernel, fc2.bias) :"), 7, 1,
         ("syntax error", "expected a type after ':'", "keyword 'output'")),
    Case("missing-zero-point", edit(("scale(0.1) zero(0)", "scale(0.1)")), 7, 1,
         ("syntax error", "expected 'zero'", "found 'output'")),
    Case("trailing-garbage", BASE + "the end\n", 8, 5, ("syntax error", "expected '='", "found 'end'")),
    Case("trailing-word-at-eof", BASE + "end\n", 8, 4, ("syntax error", "expected '='", "end of the file")),
    Case("stray-brace", BASE + "}\n", 8, 1, ("syntax error", "found '}'")),
    Case("keyword-as-tensor-name", edit(("h = dense", "input = dense")), 5, 1,
         ("syntax error", "'input' is a keyword", "cannot name a tensor")),
    Case("network-as-tensor-name", BASE + "network = relu(logits)\n", 8, 1,
         ("syntax error", "'network' is a keyword", "cannot name a tensor")),
    Case("dash-in-target-name", line(2, "target cortex-m0"), 2, 8,
         ("syntax error", "cannot contain '-'", "'cortex_m0'")),
    Case("scale-divides-by-zero", edit(("scale(1/256)", "scale(1/0)")), 4, 18, ("scale divides by zero",)),
    # -- names and structure --------------------------------------------------------------------
    Case("unknown-op", edit(("logits = dense", "logits = dens")), 6, 10,
         ("unknown operator 'dens'", "did you mean 'dense'?")),
    Case("unknown-tensor", edit(("softmax(logits)", "softmax(logit)")), 7, 24,
         ("unknown tensor 'logit'", "did you mean 'logits'?")),
    Case("arity-dense", edit(("dense(h, fc2.kernel, fc2.bias)", "dense(h)")), 6, 10,
         ("'dense' takes 2 to 3 arguments, got 1", "dense(x, kernel, [bias])")),
    Case("arity-softmax", edit(("softmax(logits)", "softmax(logits, h)")), 7, 16,
         ("'softmax' takes 1 argument, got 2",)),
    Case("tensor-where-weight-expected", edit(("fc2.kernel", "h")), 6, 19,
         ("'h' is a tensor", "weight array is expected")),
    Case("duplicate-name", BASE + "h = relu(x)\n", 8, 1, ("'h' is already defined (line 5)",)),
    Case("cycle", line(5, "a = relu(b)\nb = relu(a)", line(6, "", line(7, "output probs = softmax(a)"))), 5, 1,
         ("cycle: a -> b -> a",)),
    Case("two-inputs", BASE + "input unused : i8[8] @ scale(1/256) zero(0)\n", 8, 7,
         ("exactly one input", "'x' on line 4")),
    Case("no-input", line(4, "# no input"), 1, 1, ("no input", "input NAME"), nth=1),
    Case("no-output", edit(("output probs", "probs")), 1, 1, ("no output", "output NAME")),
    Case("two-outputs", edit(("logits = dense", "output logits = dense")), 7, 8,
         ("exactly one output", "'logits' is already one")),
    Case("two-outputs-by-name", BASE + "output h\n", 8, 8, ("exactly one output", "'probs' is already one")),
    # -- target ---------------------------------------------------------------------------------
    Case("unknown-target-field", line(2, "target efm32 { speed = 3 MHz }"), 2, 16,
         ("unknown target field 'speed'", "ram, flash, clock, latency")),
    Case("wrong-unit", line(2, "target efm32 { ram = 40 MHz }"), 2, 22, ("'ram' takes", "KiB", "not 'MHz'")),
    Case("missing-unit", line(2, "target efm32 { latency <= 10 }"), 2, 16, ("'latency' takes", "ms", "not 'no unit'")),
    Case("latency-with-equals", line(2, "target efm32 { latency = 10 ms }"), 2, 16, ("'latency <= ...'",)),
    Case("unknown-target", line(2, "target efm23"), 2, 1, ("unknown target 'efm23'", "did you mean 'efm32'?")),
    Case("two-targets", edit(("target efm32\n", "target efm32\ntarget cortex_m0\n")), 3, 1,
         ("one target", "first at line 2")),
    # -- types and quantisation -----------------------------------------------------------------
    Case("scale-zero", edit(("scale(1/256)", "scale(0)")), 4, 18, ("scale must be a positive number", "got 0")),
    Case("scale-negative", edit(("scale(0.1)", "scale(-1)")), 6, 46, ("scale must be a positive number", "got -1")),
    Case("scale-beyond-float32", edit(("scale(0.1)", "scale(1e40)")), 6, 46, ("1e+40", "float32")),
    Case("zero-point-outside-i8", edit(("zero(-128)\nh", "zero(200)\nh")), 4, 18,
         ("zero point 200", "outside i8", "-128..127")),
    Case("unknown-dtype", edit(("i8[64]", "i9[64]")), 4, 11, ("unknown tensor type 'i9'", "f32, i8, i16")),
    Case("input-without-shape", edit(("i8[64]", "i8")), 4, 11, ("input 'x' needs a shape",)),
    Case("i8-layer-without-type", edit((" -> relu : i8 @ scale(0.05) zero(-128)", " -> relu")), 5, 1,
         ("'h' is computed in i8", "declare its type")),
    Case("mixed-precision", edit(("relu : i8 @ scale(0.05) zero(-128)", "relu : f32")), 5, 46,
         ("'h' is declared f32", "computes in i8")),
    Case("declared-shape-mismatch", edit(("relu : i8 @", "relu : i8[31] @")), 5, 46,
         ("declared [31]", "dense produces [32]")),
    # -- ops ------------------------------------------------------------------------------------
    Case("dense-width-mismatch", edit(("i8[64]", "i8[30]")), 5, 14,
         ("'fc1.kernel' is 64x32", "'x' has 30 features", "[30]")),
    Case("reshape-incompatible", line(6, "r = reshape(h, shape=(5, 7))", edit(("softmax(logits)", "softmax(r)"))),
         6, 16, ("cannot reshape [32] (32 values) to [5, 7] (35 values)",)),
    Case("reshape-without-shape", line(6, "r = reshape(h)", edit(("softmax(logits)", "softmax(r)"))), 6, 5,
         ("'reshape' needs 'shape=...'",)),
    Case("softmax-int8-wrong-scale", edit(("softmax(logits)", "softmax(logits) : i8 @ scale(0.1) zero(-128)")), 7, 34,
         ("int8 softmax output must be i8 @ scale(1/256) zero(-128)", "declared scale(0.1) zero(-128)")),
    Case("activation-after-softmax", edit(("softmax(logits)", "softmax(logits) -> relu")), 7, 35,
         ("'softmax' cannot be followed by an activation",)),
    Case("softmax-beta-zero", edit(("softmax(logits)", "softmax(logits, beta=0)")), 7, 32,
         ("beta must be a positive number", "got 0")),
    Case("unknown-attribute", edit(("softmax(logits)", "softmax(logits, axis=1)")), 7, 32,
         ("'softmax' has no attribute 'axis'", "beta")),
    Case("unknown-activation", edit(("-> relu", "-> tanh")), 5, 39, ("unknown activation 'tanh'", "relu, relu6")),
    # -- weights --------------------------------------------------------------------------------
    Case("weight-missing", BASE, 6, 31, ("weight 'fc2.bias' is not in 'w.npz'",), savez({"fc2.bias": None})),
    Case("weight-misspelt", edit(("fc2.bias", "fc2.bais")), 6, 31,
         ("weight 'fc2.bais' is not in 'w.npz'", "did you mean 'fc2.bias'?")),
    Case("bias-wrong-shape", BASE, 6, 31, ("'fc2.bias' has shape [11], expected [10]",),
         savez({"fc2.bias": np.zeros(11, np.int32)})),
    Case("kernel-not-2d", BASE, 6, 19, ("'fc2.kernel' must be 2-D", "[32, 10, 1]"),
         savez({"fc2.kernel": np.zeros((32, 10, 1), np.int8)})),
    Case("float-kernel-in-int8-network", BASE, 6, 19, ("'fc2.kernel' is float32, expected int8",),
         savez({"fc2.kernel": np.zeros((32, 10), np.float32)})),
    Case("int8-bias", BASE, 5, 26, ("'fc1.bias' is int8, expected int32",), savez({"fc1.bias": np.zeros(32, np.int8)})),
    Case("kernel-without-scale", BASE, 5, 14, ("'fc1.kernel.scale'", "one value, or 32"),
         savez({"fc1.kernel.scale": None})),
    Case("kernel-scale-zero", BASE, 5, 14, ("'fc1.kernel.scale' must be positive", "smallest is 0"),
         savez({"fc1.kernel.scale": np.zeros(32, np.float32)})),
    Case("kernel-scale-count", BASE, 6, 19, ("'fc2.kernel.scale' has 3 values, expected 1 or 10",),
         savez({"fc2.kernel.scale": np.ones(3, np.float32)})),
    Case("kernel-zero-point", BASE, 6, 19, ("'fc2.kernel.zero_point' must be 0",),
         savez({"fc2.kernel.zero_point": np.ones(10, np.int32)})),
    Case("weights-file-missing", BASE, 3, 1, ("weights file 'w.npz' not found",), no_file),
    Case("weights-file-not-npz", BASE, 3, 1, ("weights file 'w.npz' is not an .npz archive", "numpy.savez"),
         text_file),
    Case("weights-file-is-npy", BASE, 3, 1, ("single .npy array", "not an .npz archive"), npy_file),
    Case("weights-object-array", BASE, 3, 1, ("'fc1.kernel' as an object array", "unpickling"), object_array),
    Case("weights-without-weights-file", line(3, ""), 4, 14, ("weight 'fc1.kernel' used", "declares no 'weights")),
]


def write_model(directory: Path, case: Case) -> Path:
    case.weights(directory / "w.npz")
    path = directory / "model.nn"
    path.write_text(case.source, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[nndsl.Diagnostic]:
    with pytest.raises(nndsl.NNError) as raised:
        nndsl.load(path)
    errors = [d for d in raised.value.diagnostics if d.severity.value == "error"]
    assert errors, "an NNError without errors"
    return errors


def test_base_model_is_valid(tmp_path: Path) -> None:
    """Every case breaks exactly one thing of a model that compiles."""
    model = nndsl.load(write_model(tmp_path, Case("base", BASE, 0, 0, ())))
    assert model.summary().macs == 64 * 32 + 32 * 10


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_diagnostic(tmp_path: Path, case: Case) -> None:
    path = write_model(tmp_path, case)
    errors = errors_of(path)
    error = errors[case.nth]
    assert error.loc is not None, error.format()
    assert (error.loc.path, error.loc.line, error.loc.col) == (str(path), case.line, case.col), error.format()
    for word in case.words:
        assert word in error.message, f"{word!r} not in {error.message!r}"
    assert not (tmp_path / UNPICKLED_MARKER).exists(), "a weights file was unpickled"


# -- the device budget: the numbers come from the model's own summary -----------------------------


def _base_summary(tmp_path: Path) -> Summary:
    return nndsl.load(write_model(tmp_path, Case("base", BASE, 0, 0, ()))).summary()


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("target efm32 { flash = 1 KiB }", lambda s: (f"needs {s.flash_bytes} bytes of flash",
                                                      f"{s.weight_bytes} of weights", "'efm32' has 1024")),
        ("target efm32 { ram = 16 B }", lambda s: (f"needs {s.arena_bytes} bytes of RAM", "'efm32' has 16")),
        # The base network's layers all run on the matrix kernel: the Cortex-M4's measured figure for it.
        ("target efm32 { latency <= 1 us }", lambda s: (f"({s.macs} MACs x {CYCLES_M4_MATRIX:g} cycles at 40 MHz)",
                                                        "exceeds the budget of 0.001 ms")),
        ("target slow { ram = 1 KiB, flash = 64 KiB, clock = 1 kHz, latency <= 1 s }",
         lambda s: (f"{s.macs} MACs", "at 0.001 MHz", "budget of 1000 ms")),
    ],
    ids=["flash", "ram", "latency", "custom-target-latency"],
)
def test_budget(tmp_path: Path, target: str, words: Callable[[Summary], tuple[str, ...]]) -> None:
    (tmp_path / "ok").mkdir()
    expected = words(_base_summary(tmp_path / "ok"))
    path = write_model(tmp_path, Case("budget", line(2, target), 0, 0, ()))
    errors = errors_of(path)
    assert [(e.loc.line, e.loc.col) if e.loc else None for e in errors] == [(2, 1)]
    for word in expected:
        assert word in errors[0].message, f"{word!r} not in {errors[0].message!r}"


def test_all_budget_errors_at_once(tmp_path: Path) -> None:
    path = write_model(tmp_path, Case("budget", line(2, "target efm32 { ram = 16 B, flash = 1 KiB, latency <= 1 us }"),
                                      0, 0, ()))
    messages = [e.message for e in errors_of(path)]
    assert len(messages) == 3
    assert "flash" in messages[0] and "RAM" in messages[1] and "latency" in messages[2]


# -- the command line -----------------------------------------------------------------------------


def nndsl_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nndsl", *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=cwd, check=False,
    )


CLI_CASES = [
    case for case in CASES
    if case.id in {
        "unclosed-paren", "missing-type-after-colon-input", "unknown-op", "cycle", "wrong-unit",
        "dense-width-mismatch", "softmax-int8-wrong-scale", "int8-bias", "weights-file-missing",
        "weights-object-array",
    }
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_cli_check(tmp_path: Path, case: Case) -> None:
    path = write_model(tmp_path, case)
    result = nndsl_cli("check", path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.match(rf"^{re.escape(str(path))}:{case.line}:{case.col}: error: ", result.stderr), result.stderr
    first = result.stderr.splitlines()[0]
    for word in case.words:
        assert word in first
    assert result.stdout == ""


def test_cli_syntax_error_shows_the_line(tmp_path: Path) -> None:
    path = write_model(tmp_path, next(c for c in CASES if c.id == "unclosed-paren"))
    lines = nndsl_cli("check", path).stderr.splitlines()
    assert lines[1] == "h = dense(x, fc1.kernel, fc1.bias -> relu : i8 @ scale(0.05) zero(-128)"
    assert lines[2] == " " * 34 + "^"


def test_cli_check_ok(tmp_path: Path) -> None:
    path = write_model(tmp_path, Case("base", BASE, 0, 0, ()))
    result = nndsl_cli("check", path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_cli_missing_model(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.nn"
    result = nndsl_cli("check", missing)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.match(r"^\S+: error: ", result.stderr)
    assert str(missing) in result.stderr and "No such file" in result.stderr


def test_cli_model_is_a_directory(tmp_path: Path) -> None:
    result = nndsl_cli("check", tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "error:" in result.stderr


def _npy_writer(array: np.ndarray, allow_pickle: bool = False) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        np.save(path, array, allow_pickle=allow_pickle)

    return write


@pytest.mark.parametrize(
    ("writer", "words"),
    [
        (_npy_writer(np.zeros(64, np.float32)), ("input is float32", "the model takes int8", "quantise")),
        (_npy_writer(np.zeros(64, np.int32)), ("input is int32", "the model takes int8")),
        (_npy_writer(np.zeros(30, np.int8)), ("input has shape [30]", "[64] or [N, 64]")),
        (_npy_writer(np.zeros((2, 8, 8), np.int8)), ("input has shape [2, 8, 8]",)),
        (_npy_writer(np.array([{"a": 1}], dtype=object), allow_pickle=True), ("object array",)),
        (lambda path: path.write_text("0 1 2\n", encoding="utf-8"), ("not a .npy array file", "numpy.save")),
        (lambda path: None, ("cannot read the input", "No such file")),
    ],
    ids=["float32", "int32", "shape", "rank", "object-array", "text-file", "missing"],
)
def test_cli_run_bad_input(tmp_path: Path, writer: Callable[[Path], None], words: tuple[str, ...]) -> None:
    model = write_model(tmp_path, Case("base", BASE, 0, 0, ()))
    npy = tmp_path / "x.npy"
    writer(npy)
    result = nndsl_cli("run", model, "--input", npy)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{npy}: error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_cli_run_good_input(tmp_path: Path) -> None:
    model = write_model(tmp_path, Case("base", BASE, 0, 0, ()))
    npy = tmp_path / "x.npy"
    np.save(npy, np.full(64, -128, np.int8))
    result = nndsl_cli("run", model, "--input", npy)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "breakage",
    [
        lambda model: model.write_text(edit(("logits = dense", "logits = dens")), encoding="utf-8"),
        lambda model: savez({"fc2.bias": np.zeros(10, np.int8)})(model.parent / "w.npz"),
        lambda model: model.write_text(line(2, "target efm32 { ram = 16 B }"), encoding="utf-8"),
    ],
    ids=["unknown-op", "bad-weights", "over-budget"],
)
def test_cli_failed_build_keeps_earlier_files(tmp_path: Path, breakage: Callable[[Path], None]) -> None:
    model = write_model(tmp_path, Case("base", BASE, 0, 0, ()))
    out = tmp_path / "build"
    first = nndsl_cli("build", model, "-o", out)
    assert first.returncode == 0, first.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert set(before) == {"tiny.c", "tiny.h", "tiny.d"}

    breakage(model)
    second = nndsl_cli("build", model, "-o", out)
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    assert re.match(r"^\S+:\d+:\d+: error: ", second.stderr), second.stderr
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert after == before  # same names (no temporaries left) and the same bytes
