"""The generated C under every warning firmware teams turn on, as C++, for Cortex-M4, and under cppcheck.

Models: the examples, and random models of every op in every arithmetic (f32, int8 with both rounding
schemes, 16x8, power-of-two fixed point). Each compiler builds all of them in one run, with ``-Werror``:
any warning fails. Integer models are also inspected: no floating point and no libm in the C or in the
Cortex-M4 object, no division helpers, and no division or remainder (but by a literal) in an innermost loop.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import nndsl
from nndsl.types import MAX_NETWORK_ELEMENTS, MAX_OP_WORK, MAX_TENSOR_ELEMENTS, MAX_WEIGHT_ELEMENTS
from tests.conftest import EXAMPLES
from tests.fixed_point_models import random_fixed_network
from tests.random_i16 import random_i16_network
from tests.test_c_backend import RandomNetwork, random_f32_network, random_int8_network
from tests.test_c_ops import random_conv_network

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Wsign-conversion", "-Wshadow", "-Wcast-align",
          "-Wundef", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Werror", "-pedantic")
COMPILERS: dict[str, tuple[str, ...]] = {
    "gcc": ("gcc", *STRICT, "-O2"),
    "clang": ("clang", *STRICT, "-O2"),
    "g++": ("g++", "-Wall", "-Wextra", "-Werror", "-x", "c++", "-O2"),
    "arm-none-eabi-gcc": ("arm-none-eabi-gcc", *STRICT, "-mcpu=cortex-m4", "-mthumb", "-Os"),
}
CPPCHECK = ("cppcheck", "--quiet", "--std=c99", "--enable=warning,performance,portability", "--error-exitcode=1")
EXAMPLE_NAMES = ("mlp", "hotword", "conv1d", "mlp_q", "dscnn")
# Symbols an integer model's Cortex-M4 object may need from outside: the C library's block copies.
ALLOWED_UNDEFINED = {"memcpy", "memset", "memmove", "__aeabi_memcpy", "__aeabi_memset", "__aeabi_memclr"}
FLOAT_OR_DIVISION = re.compile(r"^__aeabi_(?:[fd]\w+|[ui]?l?div\w*|[ui]?divmod\w*)$|^__\w*div\w*$")
RUNTIME_DIVISION = re.compile(r"[^/*]/(?!\s*\d+\b)[^/*=]|%(?!\s*\d+\b)")  # not by a literal
LIBM = {"sqrtf", "expf", "logf", "tanhf", "floorf", "roundf", "exp", "log", "tanh", "floor", "round", "sqrt"}


@dataclass(frozen=True)
class Built:
    name: str
    source: Path
    integer: bool


def _single_rounding(network: RandomNetwork) -> RandomNetwork:
    weights = f'weights "{network.name}.npz"'
    return replace(network, text=network.text.replace(weights, f"target efm32 {{ rounding = single }}\n{weights}"))


RANDOM: dict[str, Callable[[], RandomNetwork]] = {
    "int8-dense": lambda: random_int8_network(3),
    "f32-dense": lambda: random_f32_network(3),
    "int8-conv-1d": lambda: random_conv_network("i8", 0),
    "int8-conv-2d": lambda: random_conv_network("i8", 1),
    "f32-conv-1d": lambda: random_conv_network("f32", 2),
    "f32-conv-2d": lambda: random_conv_network("f32", 3),
    "int8-conv-single-rounding": lambda: _single_rounding(random_conv_network("i8", 5)),
    "int8-dense-single-rounding": lambda: _single_rounding(random_int8_network(4)),
    "i16-1d": lambda: random_i16_network(0),
    "i16-2d": lambda: random_i16_network(1),
    "fixed-a": lambda: random_fixed_network(0),
    "fixed-b": lambda: random_fixed_network(1),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[Built]:
    """Every model's C, each in its own folder."""
    root = tmp_path_factory.mktemp("strict")
    models: list[tuple[str, nndsl.Model]] = [(n, nndsl.load(EXAMPLES / n / f"{n}.nn")) for n in EXAMPLE_NAMES]
    models += [(label, make().write(root / "src" / label)) for label, make in RANDOM.items()]
    result = []
    for label, model in models:
        out = root / "c" / label
        model.build(out, depfile=False)
        result.append(Built(label, out / f"{model.name}.c", model.graph.input.type.dtype.is_integer))
    return result


def _tool(command: str) -> None:
    if shutil.which(command) is None:
        pytest.skip(f"{command} is not installed (make tools installs it)")


@pytest.mark.parametrize("compiler", COMPILERS)
def test_no_warning_under_strict_flags(compiler: str, built: list[Built], tmp_path: Path) -> None:
    command = COMPILERS[compiler]
    _tool(command[0])
    result = subprocess.run([*command, "-c", *(str(b.source) for b in built)], cwd=tmp_path, capture_output=True,
                            text=True, check=False, timeout=600)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr[-6000:]
    assert len(list(tmp_path.glob("*.o"))) == len(built)


def test_cppcheck_reports_nothing(built: list[Built]) -> None:
    _tool("cppcheck")
    result = subprocess.run([*CPPCHECK, *(str(b.source) for b in built)], capture_output=True, text=True,
                            check=False, timeout=600)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr[-6000:]


def _code(source: Path) -> str:
    """The C text without comments and string literals."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", source.read_text(encoding="utf-8"), flags=re.DOTALL)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def _innermost_loops(code: str) -> list[str]:
    """The bodies of the ``for`` loops that hold no other loop (the generated C braces every loop)."""
    bodies = []
    for match in re.finditer(r"\bfor\s*\(", code):
        start = code.index("{", match.end())
        depth, end = 0, start
        for end in range(start, len(code)):
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            if depth == 0:
                break
        body = code[start:end + 1]
        if not re.search(r"\b(for|while)\b", body):
            bodies.append(body)
    return bodies


def test_integer_models_have_no_float_and_no_inner_division(built: list[Built]) -> None:
    integer = [b for b in built if b.integer]
    assert len(integer) >= 9
    for model in integer:
        code = _code(model.source)
        assert not re.search(r"\b(float|double)\b|<math\.h>|\d\.\d*f?\b", code), model.name
        for body in _innermost_loops(code):
            # By a literal (a depthwise conv's channel / multiplier, a concat's row % rows) compilers shift
            # or multiply instead.
            assert not RUNTIME_DIVISION.search(body), f"{model.name}: a division in an inner loop:\n{body}"


def test_integer_objects_need_no_float_libm_or_division_helpers(built: list[Built], tmp_path: Path) -> None:
    _tool("arm-none-eabi-gcc")
    integer = [b for b in built if b.integer]
    subprocess.run([*COMPILERS["arm-none-eabi-gcc"], "-c", *(str(b.source) for b in integer)], cwd=tmp_path,
                   check=True, capture_output=True, timeout=600)
    for model in integer:
        listing = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / f"{model.source.stem}.o")],
                                 capture_output=True, text=True, check=True).stdout
        undefined = {line.split()[-1] for line in listing.splitlines() if line.strip()}
        assert not {s for s in undefined if FLOAT_OR_DIVISION.match(s)}, (model.name, undefined)
        assert not undefined & LIBM and undefined <= ALLOWED_UNDEFINED, (model.name, undefined)


def test_the_limits_keep_every_index_within_int32() -> None:
    """The C indexes with ``int32_t``: every index is below a tensor's or the weights' element count, or an
    op's padded input (``MAX_OP_WORK`` counts it), each far below 2^31 (``f32[50000, 50000, 1]`` is refused)."""
    assert max(MAX_TENSOR_ELEMENTS, MAX_NETWORK_ELEMENTS, MAX_WEIGHT_ELEMENTS, MAX_OP_WORK) * 8 < 2**31


def test_the_largest_float_tensor_compiles_with_int32_indices(tmp_path: Path) -> None:
    """The largest f32 tensor the limits allow, through a pool: every integer literal fits int32."""
    _tool("gcc")
    height, width = 2048, MAX_TENSOR_ELEMENTS // 2048
    text = f"network big\ninput x : f32[{height}, {width}, 1]\noutput y = max_pool(x, size=2)\n"
    (tmp_path / "big.nn").write_text(text)
    model = nndsl.load(tmp_path / "big.nn")
    model.build(tmp_path, depfile=False)
    code = _code(tmp_path / "big.c")
    assert max(int(n) for n in re.findall(r"\b\d+\b", code)) < 2**31
    result = subprocess.run([*COMPILERS["gcc"], "-c", "big.c"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and not result.stderr, result.stderr
