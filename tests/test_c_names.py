"""C names: what a network name may be, the symbol prefix, and two models linked into one program.

Every public C name of a model begins with its network name (or ``prefix + name``), so network names that
would give reserved C names are located errors, keywords are fine, and two models, even two with the same
network name, link together and both run, each equal to its NumPy backend.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.cnames import MAX_C_NAME, network_name_from
from tests.c_harness import WARNING_FLAGS, find_compiler
from tests.conftest import EXAMPLES
from tests.test_cli import nndsl as nndsl_cli

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="needs gcc")
F32 = "network {name}\nweights \"w.npz\"\ninput x : f32[6]\noutput y = dense(x, very.long.kernel) -> relu\n"
EXTRA_FLAGS = ("-Wconversion", "-Wshadow", "-Wundef", "-Wstrict-prototypes", "-Wmissing-prototypes")


# -- network names that would make reserved or overlong C names ---------------------------------------------


@pytest.mark.parametrize(("name", "words"), [
    ("_stdint", ("starts with an underscore", "_STDINT_H")),
    ("_String", ("starts with an underscore",)),
    ("a__b", ("double underscore", "C++ reserves")),
    ("net_", ("ends with an underscore", "net__run")),
    ("n" * (MAX_C_NAME + 1), (f"is {MAX_C_NAME + 1} characters long", "63 characters")),
    ("2fast", ("syntax error", "expected a name")),
])
def test_network_names_that_c_cannot_take(tmp_path: Path, name: str, words: tuple[str, ...]) -> None:
    path = tmp_path / "m.nn"
    path.write_text(f"# a comment first\nnetwork {name}\ninput x : f32[4]\noutput y = relu(x)\n")
    with pytest.raises(nndsl.NNError) as raised:
        nndsl.load(path)
    error = raised.value.diagnostics[0]
    assert error.loc is not None and (error.loc.line, error.loc.col) == (2, 9), error.format()
    for word in words:
        assert word in error.message, error.message


@pytest.mark.parametrize(("text", "name"), [
    ("small-q", "small_q"), ("2q", "m_2q"), ("_tmp__", "tmp"), ("a-_-b", "a_b"), ("input", "m_input"),
    ("", "model"), ("x" * 80, "x" * MAX_C_NAME), ("é-net", "é_net"),
])
def test_network_names_made_from_file_names(text: str, name: str) -> None:
    assert network_name_from(text) == name


@pytest.mark.parametrize("prefix", ["1x", "_x", "x-", "a__", "p" * MAX_C_NAME])
def test_prefixes_that_c_cannot_take(tmp_path: Path, prefix: str) -> None:
    model = _f32_model(tmp_path, "net")
    result = nndsl_cli("build", str(model), "-o", str(tmp_path / "out"), "--prefix", prefix)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"nndsl: error: symbol prefix '{prefix}': "), result.stderr
    assert not (tmp_path / "out").exists()


def test_long_weight_names_stay_distinct_within_63_characters(tmp_path: Path) -> None:
    stem = "w" * 70
    source = (f"network n\nweights \"w.npz\"\ninput x : f32[4]\nh = dense(x, {stem}.a)\n"
              f"output y = dense(h, {stem}.b)\n")
    np.savez(tmp_path / "w.npz", **{f"{stem}.a": np.ones((4, 4), np.float32), f"{stem}.b": np.eye(4, 2,
                                                                                             dtype=np.float32)})
    (tmp_path / "m.nn").write_text(source)
    c_source, _ = nndsl.load(tmp_path / "m.nn").c_sources()
    arrays = re.findall(r"static const float (\w+)\[", c_source)
    assert len(arrays) == 2 and all(len(a) <= 63 for a in arrays)
    assert len({a[:63] for a in arrays}) == 2


# -- two models in one program ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linked:
    """A model as built for the program: its folder, its C name, how its inputs are made and checked."""

    model: nndsl.Model
    folder: Path
    c_name: str
    integer: bool


def _mlp_model(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(EXAMPLES / "mlp" / "mlp.npz", directory / "mlp.npz")
    text = (EXAMPLES / "mlp" / "mlp.nn").read_text().replace("network mlp\n", f"network {name}\n")
    (directory / "model.nn").write_text(text)
    return directory / "model.nn"


def _f32_model(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    kernel = np.linspace(-1, 1, 6 * 3, dtype=np.float32).reshape(6, 3)
    np.savez(directory / "w.npz", **{"very.long.kernel": kernel})
    (directory / "model.nn").write_text(F32.format(name=name))
    return directory / "model.nn"


def _built(path: Path, out: Path, prefix: str) -> Linked:
    model = nndsl.load(path)
    result = nndsl_cli("build", str(path), "-o", str(out), "--prefix", prefix, "-q")
    assert result.returncode == 0, result.stderr
    c_name = prefix + model.name
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{c_name}{ext}" for ext in (".c", ".d", ".h"))
    return Linked(model, out, c_name, model.graph.input.type.dtype.is_integer)


def _input_expression(linked: Linked) -> str:
    """C filling the input: -128..127 cycling for int8, k/8 - 1 for float (the NumPy side computes the same)."""
    return "(int8_t)((k * 37) % 256 - 128)" if linked.integer else "(float)k / 8.0f - 1.0f"


def _numpy_input(linked: Linked) -> np.ndarray:
    k = np.arange(linked.model.graph.input.type.size)
    if linked.integer:
        return ((k * 37) % 256 - 128).astype(np.int8)
    return (k.astype(np.float32) / np.float32(8) - np.float32(1)).astype(np.float32)


def _main(models: list[Linked]) -> str:
    """One translation unit that includes every header, runs every model once and writes each output."""
    lines = ["#include <stdio.h>", "#include <stdint.h>"]
    lines += [f'#include "{m.c_name}.h"' for m in models]
    lines += ["", "int main(void)", "{", "    int k;"]
    for index, m in enumerate(models):
        upper = m.c_name.upper()
        lines += [f"    static {m.c_name}_input_t x{index}[{upper}_INPUT_SIZE];",
                  f"    static {m.c_name}_output_t y{index}[{upper}_OUTPUT_SIZE];"]
    for index, m in enumerate(models):
        upper = m.c_name.upper()
        lines += [f"    for (k = 0; k < {upper}_INPUT_SIZE; ++k) {{",
                  f"        x{index}[k] = {_input_expression(m)};", "    }",
                  f"    if ({m.c_name}_run(x{index}, y{index}) != 0) {{", "        return 1;", "    }",
                  f"    fwrite(y{index}, sizeof y{index}[0], {upper}_OUTPUT_SIZE, stdout);"]
    lines += ["    return 0;", "}", ""]
    return "\n".join(lines)


PAIRS = [
    pytest.param(("mlp", "left_"), ("mlp", "right_"), id="same-network-name"),
    pytest.param(("int", ""), ("m_int", ""), id="keyword-and-its-old-spelling"),
    pytest.param(("mlp", ""), ("MLP", "upper_"), id="names-equal-but-for-case"),
    pytest.param(("static", ""), ("class", ""), id="c-and-cpp-keywords"),
]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_two_models_link_into_one_program(tmp_path: Path, first: tuple[str, str], second: tuple[str, str]) -> None:
    one = _built(_mlp_model(tmp_path / "src1", first[0]), tmp_path / "one", first[1])
    two = _built(_f32_model(tmp_path / "src2", second[0]), tmp_path / "two", second[1])
    main = tmp_path / "main.c"
    main.write_text(_main([one, two]))
    program = tmp_path / "program"
    cc = find_compiler()
    assert cc is not None
    command = [cc, *WARNING_FLAGS, *EXTRA_FLAGS, "-O2", "-I", str(one.folder), "-I", str(two.folder), str(main),
               str(one.folder / f"{one.c_name}.c"), str(two.folder / f"{two.c_name}.c"), "-o", str(program), "-lm"]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    assert built.returncode == 0 and not built.stderr, built.stderr
    output = subprocess.run([str(program)], capture_output=True, check=True, timeout=60).stdout
    sizes = [(m, m.model.graph.output.type.size * np.dtype(m.model.graph.output.type.dtype.numpy).itemsize)
             for m in (one, two)]
    assert len(output) == sum(size for _, size in sizes)
    offset = 0
    for linked, size in sizes:
        got = np.frombuffer(output[offset:offset + size], dtype=linked.model.graph.output.type.dtype.numpy)
        expected = linked.model.run(_numpy_input(linked))
        if linked.integer:
            assert np.array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        offset += size
