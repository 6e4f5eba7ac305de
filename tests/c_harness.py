"""Build a model's generated C into a file-to-file test program and run it.

The program reads ``N`` inputs from one binary file (native byte order, the
input's element type, C order), calls ``<name>_run`` (or
``<name>_run_with_arena`` with a heap arena of exactly ``<NAME>_ARENA_SIZE``
bytes) once per input and writes the ``N`` outputs to another binary file.
Batching every input through one process keeps the tests fast: a network is
compiled once and started once.

The test ``main`` is compiled together with the generated code, under the same
strict flags, so it is held to the same warnings as the model.
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nndsl import Model
from nndsl.backend import backend

STRICT_FLAGS: tuple[str, ...] = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2")
# Added after STRICT_FLAGS (the later -O1 wins over -O2).
SANITIZE_FLAGS: tuple[str, ...] = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1")
LINK_FLAGS: tuple[str, ...] = ("-lm",)
MAIN_FILE = "nndsl_test_main.c"  # a name no generated file takes (model files are <name>.c/.h)
PROGRAM_FILE = "nndsl_test_program"

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
    flags = [*STRICT_FLAGS, *(SANITIZE_FLAGS if sanitize else ())]
    command = [cc, *flags, str(source), str(main), "-o", str(program), *LINK_FLAGS]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0 or proc.stderr.strip():
        raise CBuildError(f"{' '.join(command)}\nexit {proc.returncode}\n{proc.stderr[-8000:]}")
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
    env = dict(os.environ)
    # The generated code never allocates; leak checks need ptrace, which containers may deny.
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    with tempfile.TemporaryDirectory(prefix="nndsl_io_", dir=program.path.parent) as io_dir:
        in_path, out_path = Path(io_dir) / "in.bin", Path(io_dir) / "out.bin"
        in_path.write_bytes(batch.tobytes())
        command = [str(program.path), str(in_path), str(out_path), str(count),
                   "arena" if caller_arena else "static"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        report = proc.stderr
        if proc.returncode != 0 or "runtime error" in report or "Sanitizer" in report:
            raise CRunError(f"{' '.join(command)}\nexit {proc.returncode}\n{report[-8000:]}")
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


__all__ = [
    "LINK_FLAGS",
    "SANITIZE_FLAGS",
    "STRICT_FLAGS",
    "CBuildError",
    "CProgram",
    "CRunError",
    "build_program",
    "c_name",
    "compile_program",
    "driver_source",
    "find_compiler",
    "run_in_c",
    "run_program",
]
