"""The Cortex-M4 part of a benchmark run: measure everything, then render it as Markdown tables."""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = Path(__file__).resolve().parents[2] / "tests" / "data"
TOOLS = ("unicorn", "capstone", "pyelftools", "emlearn", "keras2c", "tflite-micro", "tensorflow")


def missing() -> str | None:
    """Why the M4 part cannot run here, or None when it can."""
    from benchmarks.m4 import build

    if not build.available():
        return "arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    for module in ("unicorn", "elftools", "capstone"):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"Python package {module!r} not installed (pip install unicorn pyelftools capstone)"
    return None


def versions() -> dict[str, str]:
    """The compiler's and each tool's version, as the results name them."""
    from benchmarks.m4 import build

    found = {"arm-none-eabi-gcc": build.compiler_version().removeprefix("arm-none-eabi-gcc ")}
    for tool in TOOLS:
        try:
            found[tool] = importlib.metadata.version(tool)
        except importlib.metadata.PackageNotFoundError:
            found[tool] = "not installed"
    return found


def alternatives(name: str, macs: int, work: Path) -> list[dict[str, Any]]:
    """emlearn, keras2c and TFLM's arena on the reference Keras/TFLite model of example ``name``, if there is one."""
    from benchmarks.m4 import alternatives as alt

    folder = REFERENCE / name
    if not (folder / "model.keras").exists():
        return []
    x = np.load(folder / "x_test.npy")[0]
    keras_out = np.load(folder / "keras_out.npy")[0]
    found = [alt.emlearn_figures(folder / "model.keras", x, keras_out, macs, work / "emlearn"),
             alt.keras2c_figures(folder / "model.keras", work / "keras2c")]
    try:
        arena = alt.tflm_arena((folder / "model_int8.tflite").read_bytes(), np.load(folder / "x_test_int8.npy")[0])
        found.append({"tool": "tflite-micro", "status": "ok", **arena})
    except Exception as error:  # the arena is optional information
        found.append({"tool": "tflite-micro", "status": "cannot", "reason": str(error)})
    return found


def measure_all(paths: list[Path]) -> dict[str, Any]:
    """Every example's M4 figures and the alternatives beside them."""
    from benchmarks.m4 import measure

    examples, others = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            print(f"[m4] {path.stem}", flush=True)
            row = measure.example(path, Path(tmp) / path.stem)
            examples.append(row)
            others[row["model"]] = alternatives(row["model"], row["macs"], Path(tmp) / f"{path.stem}-alt")
    return {"versions": versions(), "examples": examples, "alternatives": others}


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _configurations(results: dict[str, Any]) -> list[str]:
    header = ["model", "variant", "opt", "instructions", "instr./MAC", "est. cycles", "cycles/MAC", "flash code B",
              "flash weights B", "static RAM B", "arena B", "stack B (static / measured)"]
    rows = [[ex["model"], c["variant"], c["opt"], _fmt(c["instructions"]), _fmt(c["instructions_per_mac"]),
             _fmt(c["cycles"]), _fmt(c["cycles_per_mac"]), _fmt(c["flash_code"]), _fmt(c["flash_weights"]),
             _fmt(c["static_ram"]), _fmt(c["arena_bytes"]), f"{c['stack_bytes']} / {c['stack_measured_bytes']}"]
            for ex in results["examples"] for c in ex["configurations"]]
    return _table(header, rows)


def _layers(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for ex in results["examples"]:
        config = next(c for c in ex["configurations"] if c["variant"] == "dsp" and c["opt"] == "-O2")
        total = config["cycles"] or 1
        rows = [[layer["layer"], _fmt(layer["instructions"]), _fmt(layer["cycles"]),
                 f"{100 * layer['cycles'] / total:.1f}%"] for layer in config["layers"]]
        lines += [f"\n`{ex['model']}` (dsp, -O2):\n", *_table(["layer", "instructions", "est. cycles", "share"], rows)]
    return lines


def _alternatives(results: dict[str, Any]) -> list[str]:
    header = ["model", "tool", "opt", "instr./MAC", "cycles/MAC", "flash code B", "flash weights B", "static RAM B",
              "stack B", "note"]
    rows: list[list[str]] = []
    for ex in results["examples"]:
        for c in ex["configurations"]:
            if c["variant"] == "dsp":
                rows.append([ex["model"], "nndsl", c["opt"], _fmt(c["instructions_per_mac"]),
                             _fmt(c["cycles_per_mac"]), _fmt(c["flash_code"]), _fmt(c["flash_weights"]),
                             _fmt(c["static_ram"]), _fmt(c["stack_bytes"]), f"arena {c['arena_bytes']:,} B"])
        for alt in results["alternatives"].get(ex["model"], []):
            rows += _alternative_rows(ex["model"], alt)
    return _table(header, rows)


def _alternative_rows(model: str, alt: dict[str, Any]) -> list[list[str]]:
    if alt["status"] != "ok":
        return [[model, alt["tool"], "", "", "", "", "", "", "", f"cannot: {alt['reason']}"]]
    if alt["tool"] == "tflite-micro":
        note = (f"arena {_fmt(alt['tflm_arena_total_bytes'])} B (tensors {_fmt(alt['tflm_arena_head_bytes'])} + "
                f"interpreter {_fmt(alt['tflm_arena_tail_bytes'])}, 64-bit host build)")
        return [[model, "tflite-micro (int8)", "", "", "", "", "", "", "", note]]
    return [[model, f"{alt['tool']} ({alt['arithmetic']})", c["opt"], _fmt(c["instructions_per_mac"]),
             _fmt(c["cycles_per_mac"]), _fmt(c["flash_code"]), _fmt(c["flash_weights"]), _fmt(c["static_ram"]),
             _fmt(c["stack_bytes"]), f"max error vs Keras {c['max_abs_error_vs_keras']:.1e}"]
            for c in alt["configurations"]]


def markdown(results: dict[str, Any]) -> str:
    """The M4 section of results.md."""
    lines = ["## Cortex-M4 (emulated)", "", "Tools: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
             "", "Each image: `benchmarks/m4` start-up code and harness, `-mcpu=cortex-m4 -mthumb -mfloat-abi=hard "
             "-mfpu=fpv4-sp-d16 -ffunction-sections -fdata-sections -Wl,--gc-sections`, run in unicorn on the "
             "example's first input (output checked equal to the NumPy backend's). Instructions are counted inside "
             "`<name>_run`; cycles are the Cortex-M4 TRM's per-instruction figures at zero wait states "
             "(`benchmarks/m4/cycles.py` lists the assumptions), an estimate, not a measurement on silicon. Flash "
             "code excludes the weights and the harness; static RAM is .data + .bss less the harness's buffers "
             "(it holds the static arena); stack: static = deepest call chain from `<name>_run` in gcc's "
             "`-fcallgraph-info=su`, measured = painted-stack high-water mark in the emulator.", "",
             *_configurations(results), "", "### Per layer", *_layers(results), "",
             "### Alternatives on the same compiler and emulator", "", *_alternatives(results), ""]
    return "\n".join(lines)
