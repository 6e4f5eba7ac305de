"""Other ways to put the same networks on a Cortex-M4, measured with the same compiler and emulator.

- emlearn (PyPI): Keras Sequential models of Dense layers to float C
  (``eml_net.h``); it is linked with the same start-up code and harness behind
  a three-line adapter with nndsl's entry point, so every figure is comparable;
- keras2c (PyPI): attempted, recorded with the reason when it cannot convert;
- TensorFlow Lite Micro: not cross-compiled here (it is a C++ library with its
  own build); its arena for the same int8 ``.tflite`` is read from the
  ``tflite_micro`` package's recording allocator (a 64-bit host build: its
  persistent structures hold 8-byte pointers, so the tail is an upper bound of
  a 32-bit target's).

Generated files go to the caller's temporary folder; nothing is kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.m4 import build, elf, emulator, sizes

NO_K2C_LIBRARY = "the keras2c wheel ships no k2c C library (include/*.c) to compile the generated code with"
ADAPTER_HEADER = """#include <stdint.h>
typedef float {name}_input_t;
typedef float {name}_output_t;
#define {NAME}_INPUT_SIZE {inputs}
#define {NAME}_OUTPUT_SIZE {outputs}
int {name}_run(const float *input, float *output);
"""
ADAPTER_SOURCE = """#include "{net}.h"
#include "{name}.h"
int {name}_run(const float *input, float *output)
{{
    return (int)eml_net_predict_proba(&{net}, input, {inputs}, output, {outputs});
}}
"""


def _failure(tool: str, error: BaseException) -> dict[str, Any]:
    message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return {"tool": tool, "status": "cannot", "reason": f"{type(error).__name__}: {message}"}


def emlearn_figures(keras_path: Path, x: np.ndarray, expected: np.ndarray, macs: int, work: Path) -> dict[str, Any]:
    """Convert with emlearn, build at -O2 and -Os, run ``x``; ``expected`` is Keras's float output for it."""
    try:
        import emlearn  # type: ignore[import-untyped]
        import keras  # type: ignore[import-untyped]

        work.mkdir(parents=True, exist_ok=True)
        with contextlib.chdir(work):  # emlearn compiles in ./tmp
            converted = emlearn.convert(keras.models.load_model(keras_path), method="loadable")
            code = converted.save(name="emnet", inference=["loadable"])
    except Exception as error:  # any failure of the tool is a finding, not a crash of the benchmark
        return _failure("emlearn", error)
    (work / "emnet.h").write_text(code)
    fields = {"name": "emlearn_net", "NAME": "EMLEARN_NET", "net": "emnet", "inputs": x.size,
              "outputs": expected.size}
    (work / "emlearn_net.h").write_text(ADAPTER_HEADER.format(**fields))
    (work / "emlearn_net.c").write_text(ADAPTER_SOURCE.format(**fields))
    rows = [_emlearn_configuration(work, x, expected, macs, opt) for opt in build.OPT_LEVELS]
    return {"tool": "emlearn", "status": "ok", "arithmetic": "float32", "configurations": rows}


def _emlearn_configuration(work: Path, x: np.ndarray, expected: np.ndarray, macs: int, opt: str) -> dict[str, Any]:
    made = build.link([work / "emlearn_net.c"], [work, Path(_emlearn_include())],
                      build.harness_defines("emlearn_net", "emlearn_net.h"), work / opt, opt=opt, variant="dsp",
                      libs=["-lm"])
    image = elf.load(made.elf)
    result = emulator.run(image, x.astype(np.float32), np.float32, entry="emlearn_net_run", profile=True)
    size = sizes.sizes(image, "emnet")
    return {
        "opt": opt, "instructions": result.total.instructions, "instructions_per_mac": result.total.instructions / macs,
        "cycles": result.total.cycles, "cycles_per_mac": result.total.cycles / macs, **asdict(size),
        "stack_bytes": sizes.worst_stack(sizes.read_call_graph(made.stack_files), "emlearn_net_run"),
        "stack_measured_bytes": result.stack_bytes, "status_code": result.status,
        "max_abs_error_vs_keras": float(np.max(np.abs(result.output - expected.reshape(-1)))),
        "warnings": made.warnings.strip(),
    }


def _emlearn_include() -> str:
    import emlearn

    return str(emlearn.includedir)


def keras2c_figures(keras_path: Path, work: Path) -> dict[str, Any]:
    """Try keras2c's converter; a failure is recorded with its reason."""
    try:
        from keras2c import k2c  # type: ignore[import-untyped]

        k2c(str(keras_path), str(work / "k2c_net"), malloc=False, num_tests=0, verbose=False)
    except Exception as error:
        failed = _failure("keras2c", error)
        failed["reason"] += f"; besides, {NO_K2C_LIBRARY}"
        return failed
    return {"tool": "keras2c", "status": "cannot", "reason": f"converted, but {NO_K2C_LIBRARY}"}


@contextlib.contextmanager
def _stderr_to(path: Path) -> Any:
    """Redirect file descriptor 2 (the C++ allocator prints there, below Python's sys.stderr)."""
    saved = os.dup(2)
    with path.open("wb") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def tflm_arena(tflite: bytes, x: np.ndarray) -> dict[str, Any]:
    """TensorFlow Lite Micro's arena for one inference: total, head (tensors), tail (persistent structures)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=1 << 20)
    interpreter.set_input(x.reshape(interpreter.get_input_details(0)["shape"]), 0)
    interpreter.invoke()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "allocations.txt"
        with _stderr_to(log):
            interpreter.print_allocations()
        text = log.read_text(errors="replace")
    found = {key: re.search(rf"Arena allocation {key} (\d+) bytes", text) for key in ("total", "head", "tail")}
    return {f"tflm_arena_{key}_bytes": int(m[1]) if m else None for key, m in found.items()}
