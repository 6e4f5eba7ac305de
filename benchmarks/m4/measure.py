"""The Cortex-M4 figures of one example: every variant and optimisation level, checked against NumPy.

Each configuration is cross-compiled, run once in the emulator with a
profile (instructions and estimated cycles, per layer) on the example's first
input, and its output compared with the NumPy backend's: a figure is only
reported for code that computed the right answer.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

import nndsl
from benchmarks.m4 import build, elf, emulator, sizes
from benchmarks.m4.layers import layer_map


def _per_mac(value: int, macs: int) -> float | None:
    return value / macs if macs else None


def configuration(model: nndsl.Model, x: np.ndarray, expected: np.ndarray, work: Path, *, opt: str,
                  variant: str) -> dict[str, Any]:
    """Build, run and size ``model`` for one (``opt``, ``variant``); raises if the output differs from NumPy's."""
    made = build.build_model(model, work, opt=opt, variant=variant)
    image = elf.load(made.elf)
    source = work / "src"
    layers = layer_map(source / f"{model.name}.c", model.name)
    result = emulator.run(image, x, expected.dtype, entry=f"{model.name}_run", profile=True, layers=layers)
    if result.status != 0 or not np.array_equal(result.output, expected.reshape(-1)):
        raise AssertionError(f"{model.name} {variant} {opt}: emulated output differs from the NumPy backend's")
    macs = model.summary().macs
    graph = sizes.read_call_graph(made.stack_files)
    return {
        "variant": variant, "opt": opt,
        "instructions": result.total.instructions, "instructions_per_mac": _per_mac(result.total.instructions, macs),
        "cycles": result.total.cycles, "cycles_per_mac": _per_mac(result.total.cycles, macs),
        **asdict(sizes.sizes(image, model.name)),
        "arena_bytes": sizes.arena_bytes(source / f"{model.name}.h", model.name),
        "stack_bytes": sizes.worst_stack(graph, f"{model.name}_run"),
        "stack_measured_bytes": result.stack_bytes,
        "layers": [{"layer": label, "instructions": c.instructions, "cycles": c.cycles}
                   for label, c in result.layers.items()],
        "warnings": made.warnings.strip(),
    }


def example(path: Path, work: Path) -> dict[str, Any]:
    """Every configuration of the example at ``path`` (``examples/<name>/<name>.nn``)."""
    model = nndsl.load(path)
    x = np.load(path.parent / "inputs.npy")[0]
    expected = np.asarray(model.run(x))
    rows = [configuration(model, x, expected, work / f"{variant}{opt}", opt=opt, variant=variant)
            for variant in build.VARIANTS for opt in build.OPT_LEVELS]
    return {"model": model.name, "macs": model.summary().macs, "configurations": rows}
