"""Build C under test into file-to-file test programs and run them: a model's generated C, or runtime kernels.

The program reads ``N`` inputs from one binary file (native byte order, the
input's element type, C order), calls ``<name>_run`` (or
``<name>_run_with_arena`` with a heap arena of exactly ``<NAME>_ARENA_SIZE``
bytes) once per input and writes the ``N`` outputs to another binary file.
Batching every input through one process keeps the tests fast: a network is
compiled once and started once.

The test ``main`` is compiled together with the generated code, under the same
strict flags, so it is held to the same warnings as the model.

The runtime kernels (``backends/c/runtime/*.c``) are tested the same way: a
test pastes runtime files and its own ``run_cases`` into one translation unit
with :data:`KERNEL_MAIN` (:func:`build_harness`), feeds it one binary file of
cases and reads the outputs back (:func:`run_harness`). :func:`op_cases_source`
and :func:`run_op_cases` give kernels taking up to 16 int32 arguments a ready
protocol.
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nndsl import Model
from nndsl.backend import backend

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "backends" / "c" / "runtime"
WARNING_FLAGS: tuple[str, ...] = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
STRICT_FLAGS: tuple[str, ...] = (*WARNING_FLAGS, "-O2")
# Added after STRICT_FLAGS (the later -O1 wins over -O2).
SANITIZE_FLAGS: tuple[str, ...] = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1")
LINK_FLAGS: tuple[str, ...] = ("-lm",)
MAIN_FILE = "nndsl_test_main.c"  # a name no generated file takes (model files are <name>.c/.h)
PROGRAM_FILE = "nndsl_test_program"
# The sanitizers' settings for every test program: leak checks need ptrace, which containers may
# deny (and the generated code never allocates); any report is fatal.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

# ${name}: the generated C prefix; ${NAME}: its upper-case macro prefix.
_MAIN_TEMPLATE = string.Template(r"""/* Test driver: argv = input-file output-file count static|arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "${name}.h"

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    char *end;
    long count;
    long k;
    int use_arena;
    int status = 0;
    ${name}_input_t *x;
    ${name}_output_t *y;
    unsigned char *arena = NULL;
    const size_t in_count = (size_t)${NAME}_INPUT_SIZE;
    const size_t out_count = (size_t)${NAME}_OUTPUT_SIZE;
    const size_t arena_bytes = (size_t)${NAME}_ARENA_SIZE;

    if (argc != 5) {
        fprintf(stderr, "usage: %s INPUT OUTPUT COUNT static|arena\n", argv[0]);
        return 2;
    }
    count = strtol(argv[3], &end, 10);
    if (*end != '\0' || count < 0) {
        fprintf(stderr, "bad count '%s'\n", argv[3]);
        return 2;
    }
    use_arena = strcmp(argv[4], "arena") == 0;
    /* Exact-size heap buffers: under AddressSanitizer any access past the
       input, the output or the declared arena size is reported. */
    x = (${name}_input_t *)malloc(sizeof *x * in_count);
    y = (${name}_output_t *)malloc(sizeof *y * out_count);
    if (use_arena) {
        arena = (unsigned char *)malloc(arena_bytes > 0 ? arena_bytes : 1);
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (x == NULL || y == NULL || (use_arena && arena == NULL) || in == NULL || out == NULL) {
        fprintf(stderr, "cannot allocate buffers or open files\n");
        return 3;
    }
    for (k = 0; k < count && status == 0; ++k) {
        int rc;
        if (fread(x, sizeof *x, in_count, in) != in_count) {
            fprintf(stderr, "short input at item %ld\n", k);
            status = 4;
            break;
        }
        /* Garbage in the output (and the caller's arena) before every call:
           the model must write every output and never read stale scratch. */
        memset(y, 0x5A, sizeof *y * out_count);
        if (use_arena) {
            memset(arena, 0xA5, arena_bytes);
            rc = ${name}_run_with_arena(x, y, arena);
        } else {
            rc = ${name}_run(x, y);
        }
        if (rc != 0) {
            fprintf(stderr, "${name}_run returned %d at item %ld\n", rc, k);
            status = 5;
        } else if (fwrite(y, sizeof *y, out_count, out) != out_count) {
            fprintf(stderr, "cannot write output %ld\n", k);
            status = 6;
        }
    }
    if (status == 0 && fgetc(in) != EOF) {
        fprintf(stderr, "input file longer than %ld items\n", count);
        status = 7;
    }
    fclose(in);
    if (fclose(out) != 0 && status == 0) {
        status = 6;
    }
    free(arena);
    free(y);
    free(x);
    return status;
}
""")


class CBuildError(RuntimeError):
    """gcc rejected the generated code or the test driver (the message holds its output)."""


class CRunError(RuntimeError):
    """The test program failed: a non-zero exit or a sanitizer report (the message holds stderr)."""


@dataclass(frozen=True)
class CProgram:
    """A compiled test program for one model, with what is needed to feed it."""

    path: Path
    name: str
    input_dtype: np.dtype[np.generic]
    output_dtype: np.dtype[np.generic]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sanitize: bool


def find_compiler() -> str | None:
    """The gcc on ``PATH`` (or ``$CC`` if set), or None."""
    return shutil.which(os.environ.get("CC", "gcc"))


def c_name(model: Model) -> str:
    """The C prefix of a model: its files are ``<prefix>.c``/``.h``, its entry point ``<prefix>_run``."""
    return str(backend("c").emit.identifier(model.name))  # as Model.build names the files


def driver_source(name: str) -> str:
    """The C ``main`` of the test program for a model whose C prefix is ``name``."""
    return _MAIN_TEMPLATE.substitute(name=name, NAME=name.upper())


def build_program(model: Model, work_dir: str | Path, *, sanitize: bool = False,
                  compiler: str | None = None, timeout: float = 120.0) -> CProgram:
    """Write ``model``'s C and the test driver into ``work_dir`` and compile them with gcc.

    Flags are :data:`STRICT_FLAGS` (plus :data:`SANITIZE_FLAGS` with
    ``sanitize``) and :data:`LINK_FLAGS`. Raises :class:`CBuildError` with the
    compiler's output if it fails or warns.
    """
    model.build(work_dir, depfile=False)
    return compile_program(model, work_dir, sanitize=sanitize, compiler=compiler, timeout=timeout)


def compile_program(model: Model, work_dir: str | Path, *, sanitize: bool = False,
                    compiler: str | None = None, timeout: float = 120.0) -> CProgram:
    """Compile the ``<name>.c``/``.h`` already in ``work_dir`` (as ``model.build`` wrote them,
    or edited since) with the test driver; see :func:`build_program`."""
    cc = compiler or find_compiler()
    if cc is None:
        raise CBuildError("no C compiler: gcc not found on PATH")
    out = Path(work_dir)
    name = c_name(model)
    source = out / f"{name}.c"
    main = out / MAIN_FILE
    main.write_text(driver_source(name), encoding="utf-8")
    program = out / PROGRAM_FILE
    proc = _gcc(cc, [source, main], program, STRICT_FLAGS, sanitize=sanitize, timeout=timeout)
    if proc.returncode != 0 or proc.stderr.strip():
        raise CBuildError(f"{' '.join(proc.args)}\nexit {proc.returncode}\n{proc.stderr[-8000:]}")
    graph = model.graph
    return CProgram(
        path=program,
        name=name,
        input_dtype=np.dtype(graph.input.type.dtype.numpy),
        output_dtype=np.dtype(graph.output.type.dtype.numpy),
        input_shape=graph.input.type.shape,
        output_shape=graph.output.type.shape,
        sanitize=sanitize,
    )


def run_program(program: CProgram, inputs: npt.ArrayLike, *, caller_arena: bool = False,
                timeout: float = 120.0) -> npt.NDArray[np.generic]:
    """Run ``program`` on a batch ``inputs`` of shape ``(N, *input_shape)``; the ``(N, *output_shape)`` outputs.

    With ``caller_arena`` the driver calls ``<name>_run_with_arena`` with a
    fresh heap arena of exactly ``ARENA_SIZE`` bytes, scrambled before each
    call; otherwise ``<name>_run`` with the static arena. Raises
    :class:`CRunError` on a non-zero exit or any sanitizer output.
    """
    batch = np.ascontiguousarray(inputs, dtype=program.input_dtype)
    if batch.shape[1:] != program.input_shape:
        raise ValueError(f"inputs of shape {batch.shape} for a model taking (N, *{program.input_shape})")
    count = batch.shape[0]
    with tempfile.TemporaryDirectory(prefix="nndsl_io_", dir=program.path.parent) as io_dir:
        in_path, out_path = Path(io_dir) / "in.bin", Path(io_dir) / "out.bin"
        in_path.write_bytes(batch.tobytes())
        run_checked([str(program.path), str(in_path), str(out_path), str(count),
                     "arena" if caller_arena else "static"], timeout=timeout)
        flat = np.fromfile(out_path, dtype=program.output_dtype)
    expected = count * int(np.prod(program.output_shape, dtype=np.int64))
    if flat.size != expected:
        raise CRunError(f"{program.path}: {flat.size} output values, expected {expected}")
    return flat.reshape((count, *program.output_shape))


def run_in_c(model: Model, inputs: npt.ArrayLike, *, work_dir: str | Path | None = None, sanitize: bool = False,
             caller_arena: bool = False) -> npt.NDArray[np.generic]:
    """Build ``model`` to C, compile it and run it on ``inputs`` in one call.

    ``work_dir`` keeps the build (default: a temporary directory removed afterwards).
    """
    if work_dir is not None:
        return run_program(build_program(model, work_dir, sanitize=sanitize), inputs, caller_arena=caller_arena)
    with tempfile.TemporaryDirectory(prefix="nndsl_c_") as tmp:
        return run_program(build_program(model, tmp, sanitize=sanitize), inputs, caller_arena=caller_arena)


STATEFUL_MAIN = r"""#include <stdio.h>
#include "NAME.h"

int main(void)
{
    static const CTYPE x[CALLS * UPPER_INPUT_SIZE] = {VALUES};
    OUT_CTYPE y[UPPER_OUTPUT_SIZE];
    int pass, c, k;
    for (pass = 0; pass < 2; ++pass) {
        for (c = 0; c < CALLS; ++c) {
            NAME_run(x + c * UPPER_INPUT_SIZE, y);
            for (k = 0; k < UPPER_OUTPUT_SIZE; ++k) {
                printf("%.9g\n", (double)y[k]);
            }
        }
        NAME_reset();
    }
    return 0;
}
"""


def run_stateful_c(model: Model, calls: npt.NDArray[np.generic], work_dir: Path,
                   compiler: str) -> npt.NDArray[np.float64]:
    """A stateful model's C (strict flags, sanitizers) run on ``calls`` one after another, then reset and run on
    them again: the outputs, shaped ``(2, len(calls), *output shape)``."""
    model.build(work_dir, depfile=False)
    name = c_name(model)
    graph = model.graph
    integer = graph.input.type.dtype.numpy != np.float32
    values = ", ".join(str(int(v)) if integer else f"{float(v)!r}f" for v in np.asarray(calls).reshape(-1))
    main = (STATEFUL_MAIN.replace("UPPER", name.upper()).replace("NAME", name).replace("CALLS", str(len(calls)))
            .replace("VALUES", values).replace("OUT_CTYPE", graph.output.type.dtype.c_type)
            .replace("CTYPE", graph.input.type.dtype.c_type))
    (work_dir / "main.c").write_text(main)
    program = work_dir / "prog"
    subprocess.run([compiler, *STRICT_FLAGS, *SANITIZE_FLAGS, str(work_dir / f"{name}.c"), str(work_dir / "main.c"),
                    "-o", str(program), "-lm"], check=True, capture_output=True)
    run = subprocess.run([str(program)], capture_output=True, text=True, env={**os.environ, **SANITIZER_ENV})
    assert run.returncode == 0 and not run.stderr, run.stderr
    return np.array([float(v) for v in run.stdout.split()]).reshape((2, len(calls), *graph.output.type.shape))


def _gcc(cc: str, sources: Sequence[Path], output: Path, flags: Sequence[str], *, sanitize: bool = False,
         timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Compile ``sources`` with ``flags`` (then :data:`SANITIZE_FLAGS`): to an object file if ``output``
    ends in ``.o``, else to a program linked with :data:`LINK_FLAGS`."""
    link = output.suffix != ".o"
    command = [cc, *flags, *(SANITIZE_FLAGS if sanitize else ()), *(() if link else ("-c",)),
               *map(str, sources), "-o", str(output), *(LINK_FLAGS if link else ())]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def run_checked(command: Sequence[str], *, timeout: float = 300.0) -> None:
    """Run a test program with :data:`SANITIZER_ENV`.

    Raises :class:`CRunError` (holding stderr) on a non-zero exit or any sanitizer report.
    """
    env = {**os.environ, **SANITIZER_ENV}
    proc = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False, env=env)
    report = proc.stderr
    if proc.returncode != 0 or "runtime error" in report or "Sanitizer" in report:
        raise CRunError(f"{' '.join(command)}\nexit {proc.returncode}\n{report[-8000:]}")


# --------------------------------------------------------------------------
# Runtime kernels
# --------------------------------------------------------------------------


def runtime_unit(*parts: str, macros: Sequence[str] = ()) -> str:
    """A translation unit: the standard headers, a ``#define`` per macro, then ``parts`` in order.

    A part ending in ``.c`` is that file of ``backends/c/runtime``; any other part is C text.
    """
    text = "#include <stdint.h>\n#include <string.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
    text += "".join(f"#define {m}\n" for m in macros)
    for part in parts:
        text += ((RUNTIME_DIR / part).read_text(encoding="utf-8") if part.endswith(".c") else part) + "\n"
    return text


def compile_c(text: str, output: Path, *, flags: Sequence[str] = STRICT_FLAGS, sanitize: bool = False,
              compiler: str | None = None) -> subprocess.CompletedProcess[str]:
    """Write ``text`` beside ``output`` (as ``<stem>.c``) and compile it with gcc; the finished process.

    An ``output`` ending in ``.o`` is an object file (``-c``), anything else a
    program. ``flags`` default to :data:`STRICT_FLAGS`; ``sanitize`` adds
    :data:`SANITIZE_FLAGS`.
    """
    cc = compiler or find_compiler()
    if cc is None:
        raise CBuildError("no C compiler: gcc not found on PATH")
    source = output.with_suffix(".c")
    source.write_text(text, encoding="utf-8")
    return _gcc(cc, [source], output, flags, sanitize=sanitize)


def entry_point(parameters: str, *statements: str, returns: str = "void") -> str:
    """C text of an external ``nn_test_entry(parameters)`` running ``statements``.

    What it calls counts as used: the compiler may warn about nothing else.
    """
    body = "".join(f"    {statement}\n" for statement in statements)
    return f"{returns} nn_test_entry({parameters});\n{returns} nn_test_entry({parameters})\n{{\n{body}}}\n"


# What a harness's run_cases may call; pasted before it.
READ_I32 = r"""
static int read_i32(FILE *f, int32_t *value)
{
    return fread(value, sizeof *value, 1, f) == 1;
}
"""

# The harness main: argv = input-file output-file. The input starts with an int32 count;
# the test's run_cases(fin, fout, count) reads the rest and writes the outputs (0 or an exit code).
KERNEL_MAIN = r"""
int main(int argc, char **argv)
{
    FILE *fin;
    FILE *fout;
    int32_t count;
    int status;
    if (argc != 3) {
        return 2;
    }
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (fin == NULL || fout == NULL || !read_i32(fin, &count) || count < 0) {
        return 3;
    }
    status = run_cases(fin, fout, count);
    fclose(fin);
    if (fclose(fout) != 0 && status == 0) {
        status = 7;
    }
    return status;
}
"""


def build_harness(work_dir: Path, runtime_files: Sequence[str], run_cases: str, *, macros: Sequence[str] = (),
                  compiler: str | None = None) -> Path:
    """Compile ``runtime_files``, the C text ``run_cases`` and :data:`KERNEL_MAIN` into ``work_dir/harness``.

    Strict flags and the sanitizers (every report fatal); ``run_cases`` is
    ``static int run_cases(FILE *fin, FILE *fout, int32_t count)`` and may call
    ``read_i32``. Raises :class:`CBuildError` with gcc's output if it fails.
    """
    binary = Path(work_dir) / "harness"
    text = runtime_unit(*runtime_files, READ_I32, run_cases, KERNEL_MAIN, macros=macros)
    proc = compile_c(text, binary, sanitize=True, compiler=compiler)
    if proc.returncode != 0:
        raise CBuildError(f"{' '.join(proc.args)}\nexit {proc.returncode}\n{proc.stderr[-8000:]}")
    return binary


def run_harness(binary: Path, data: bytes, work: Path, *, timeout: float = 300.0) -> bytes:
    """Run a harness on ``data`` (written to ``work/in.bin``); the bytes it wrote. See :func:`run_checked`."""
    in_path, out_path = work / "in.bin", work / "out.bin"
    in_path.write_bytes(data)
    run_checked([str(binary), str(in_path), str(out_path)], timeout=timeout)
    return out_path.read_bytes()


# The op-and-arguments protocol: per case op, p[16], in_count, out_count (int32), then in_count
# elements; out_count elements back. Exact-size heap buffers, so ASan sees any overrun.
_OP_CASES = string.Template(r"""
static int run_cases(FILE *fin, FILE *fout, int32_t cases)
{
    int32_t k;
    for (k = 0; k < cases; ++k) {
        int32_t op;
        int32_t p[16];
        int32_t in_count;
        int32_t out_count;
        int32_t j;
        int status;
        ${element} *in;
        ${element} *out;
        if (!read_i32(fin, &op)) {
            return 4;
        }
        for (j = 0; j < 16; ++j) {
            if (!read_i32(fin, &p[j])) {
                return 4;
            }
        }
        if (!read_i32(fin, &in_count) || !read_i32(fin, &out_count)) {
            return 4;
        }
        in = (${element} *)malloc(sizeof *in * (size_t)in_count);
        out = (${element} *)malloc(sizeof *out * (size_t)out_count);
        if (in == NULL || out == NULL || fread(in, sizeof *in, (size_t)in_count, fin) != (size_t)in_count) {
            return 4;
        }
        memset(out, 0x55, sizeof *out * (size_t)out_count);
        status = call_op(op, p, in, out);
        if (status != 0) {
            return status;
        }
        if (fwrite(out, sizeof *out, (size_t)out_count, fout) != (size_t)out_count) {
            return 6;
        }
        free(out);
        free(in);
    }
    return 0;
}
""")


def op_cases_source(element: str, call_op: str) -> str:
    """``run_cases`` for the op-and-arguments protocol on ``element`` data (``int8_t``, ``int16_t``).

    ``call_op`` is C text defining ``static int call_op(int32_t op, const
    int32_t *p, const T *in, T *out)``: 0 once it has run the op, 5 for an
    unknown op, 4 when out of memory.
    """
    return call_op + _OP_CASES.substitute(element=element)


@dataclass(frozen=True)
class OpCase:
    """One call in the op-and-arguments protocol: op code, up to 16 int32 arguments, input, expected output."""

    op: int
    args: tuple[int, ...]
    data: npt.NDArray[np.generic]
    expected: npt.NDArray[np.generic]


def run_op_cases(binary: Path, cases: Sequence[OpCase], work: Path,
                 dtype: type[np.generic]) -> list[npt.NDArray[np.generic]]:
    """Run every case through a harness built on :func:`op_cases_source`; the outputs, shaped as expected."""
    element = np.dtype(dtype).newbyteorder("<")
    chunks = [np.array([len(cases)], dtype="<i4").tobytes()]
    for case in cases:
        header = np.array([case.op, *case.args, *[0] * (16 - len(case.args))], dtype=np.int64)
        assert header.min() >= -(2**31) and header.max() < 2**31
        sizes = np.array([case.data.size, case.expected.size], dtype="<i4")
        chunks += [header.astype("<i4").tobytes(), sizes.tobytes(), case.data.astype(element).tobytes()]
    flat = np.frombuffer(run_harness(binary, b"".join(chunks), work), dtype=element).astype(dtype)
    offsets = np.cumsum([0, *[case.expected.size for case in cases]])
    assert flat.size == offsets[-1]
    return [flat[offsets[i] : offsets[i + 1]].reshape(case.expected.shape) for i, case in enumerate(cases)]


__all__ = [
    "LINK_FLAGS",
    "SANITIZE_FLAGS",
    "STRICT_FLAGS",
    "WARNING_FLAGS",
    "CBuildError",
    "CProgram",
    "CRunError",
    "OpCase",
    "build_harness",
    "build_program",
    "c_name",
    "compile_c",
    "compile_program",
    "driver_source",
    "entry_point",
    "find_compiler",
    "op_cases_source",
    "run_harness",
    "run_in_c",
    "run_op_cases",
    "run_program",
    "runtime_unit",
]
