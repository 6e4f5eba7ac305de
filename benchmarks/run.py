"""Speed and size of the generated C, measured, and nndsl's estimates beside them.

    python benchmarks/run.py [--out benchmarks/results.md]

For each bundled example:
- host: gcc -O2, wall time per inference over many runs (informational: it
  depends on this machine), and instructions per inference counted by
  valgrind's callgrind (repeatable);
- Cortex-M4: arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os, the object's
  text/data/bss sizes (real flash and RAM figures) next to nndsl's
  flash/arena figures (when the cross compiler is installed:
  `apt-get install gcc-arm-none-eabi`, which `make bench` does);
- the NumPy backend's throughput on a batch.
- Cortex-M4, emulated (``benchmarks/m4``): each example cross-compiled with
  the project's start-up code and harness, in the default ("dsp") and
  ``-DNNDSL_PORTABLE`` variants at -O2 and -Os, run in unicorn: instructions
  and estimated cycles per inference, per MAC and per layer, flash (code and
  weights), static RAM, arena and worst-case stack; emlearn, keras2c and
  TensorFlow Lite Micro's arena beside them. Skipped, with the reason printed,
  without arm-none-eabi-gcc or the unicorn/pyelftools/capstone packages.
Results go to Markdown tables (and the same numbers as JSON beside them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import nndsl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"
HOST_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
M4_FLAGS = ["-std=c99", "-Os", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
            "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror", "-pedantic"]

BENCH_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "{name}.h"

int main(int argc, char **argv)
{{
    static {name}_input_t input[{NAME}_INPUT_SIZE];
    static {name}_output_t output[{NAME}_OUTPUT_SIZE];
    long runs = argc > 1 ? atol(argv[1]) : 1;
    long i;
    unsigned checksum = 0;
    clock_t start;
    double seconds;
    size_t k;
    for (k = 0; k < sizeof input / sizeof input[0]; ++k) {{
        input[k] = ({name}_input_t)(k * 37 % 17);
    }}
    start = clock();
    for (i = 0; i < runs; ++i) {{
        input[i % {NAME}_INPUT_SIZE] = ({name}_input_t)(i & 7);
        {name}_run(input, output);
        checksum += (unsigned)output[0];
    }}
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("%.9f %u\n", seconds / (double)runs, checksum);
    return 0;
}}
"""


def examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*/*.nn") if p.stem == p.parent.name)


def host_figures(model: nndsl.Model, work: Path) -> dict[str, float]:
    model.build(work)
    main = work / "bench_main.c"
    main.write_text(BENCH_MAIN.format(name=model.name, NAME=model.name.upper()))
    binary = work / "bench"
    subprocess.run(["gcc", *HOST_FLAGS, f"-I{work}", str(work / f"{model.name}.c"), str(main), "-o", str(binary),
                    "-lm"], check=True)
    timed = subprocess.run([str(binary), "20000"], check=True, capture_output=True, text=True)
    seconds = float(timed.stdout.split()[0])
    figures = {"host_us_per_inference": seconds * 1e6}
    if shutil.which("valgrind"):
        instructions = []
        for runs in (1, 11):
            out = work / f"callgrind.{runs}"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary), str(runs)],
                           check=True, capture_output=True)
            summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
            assert summary is not None
            instructions.append(int(summary[1]))
        figures["host_instructions_per_inference"] = (instructions[1] - instructions[0]) / 10
    return figures


def cortex_m4_sizes(model: nndsl.Model, work: Path) -> dict[str, int]:
    if not shutil.which("arm-none-eabi-gcc"):
        return {}
    obj = work / f"{model.name}.o"
    subprocess.run(["arm-none-eabi-gcc", *M4_FLAGS, "-c", str(work / f"{model.name}.c"), "-o", str(obj)], check=True)
    out = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True, capture_output=True, text=True).stdout
    sections: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            kind = parts[0].split(".")[1]
            sections[kind] = sections.get(kind, 0) + int(parts[1])
    return {"m4_text_bytes": sections.get("text", 0), "m4_rodata_bytes": sections.get("rodata", 0),
            "m4_bss_bytes": sections.get("bss", 0), "m4_data_bytes": sections.get("data", 0)}


def numpy_throughput(model: nndsl.Model) -> float:
    in_type = model.graph.input.type
    rng = np.random.default_rng(0)
    if in_type.dtype.is_integer:
        batch = rng.integers(-128, 128, size=(1000, *in_type.shape)).astype(np.int8)
    else:
        batch = rng.normal(size=(1000, *in_type.shape)).astype(np.float32)
    start = time.perf_counter()
    model.run(batch)
    return 1000 / (time.perf_counter() - start)


def measure(path: Path) -> dict[str, object]:
    model = nndsl.load(path)
    summary = model.summary()
    row: dict[str, object] = {
        "model": model.name,
        "macs": summary.macs,
        "weight_bytes": summary.weight_bytes,
        "arena_bytes": summary.arena_bytes,
        "flash_estimate_bytes": summary.flash_bytes,
        "latency_estimate_ms": summary.latency_ms,
        "target": summary.target.name if summary.target else None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        row.update(host_figures(model, work))
        row.update(cortex_m4_sizes(model, work))
    row["numpy_inferences_per_s"] = numpy_throughput(model)
    return row


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(rows: list[dict[str, object]]) -> str:
    columns = [
        ("model", "model"), ("macs", "MACs"), ("weight_bytes", "weights B"), ("arena_bytes", "arena B"),
        ("flash_estimate_bytes", "flash est. B"), ("m4_text_bytes", "M4 .text B"), ("m4_rodata_bytes", "M4 .rodata B"),
        ("m4_bss_bytes", "M4 .bss B"), ("latency_estimate_ms", "est. ms on target"),
        ("host_instructions_per_inference", "host instr./inference"), ("host_us_per_inference", "host µs/inference"),
        ("numpy_inferences_per_s", "NumPy inferences/s"),
    ]
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_cell(row.get(key)) for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def m4_results() -> dict[str, object] | None:
    """The emulated Cortex-M4 figures, or None (with the reason printed) where this machine cannot make them."""
    from benchmarks.m4 import report

    reason = report.missing()
    if reason is not None:
        print(f"Cortex-M4 emulator benchmark skipped: {reason}")
        return None
    return report.measure_all(examples())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    parser.add_argument("--no-m4", action="store_true", help="skip the emulated Cortex-M4 part")
    args = parser.parse_args()
    rows = [measure(path) for path in examples()]
    m4 = None if args.no_m4 else m4_results()
    out = Path(args.out)
    date = datetime.date.today().isoformat()
    header = (
        f"# Benchmark results\n\nMade by `make bench` (`benchmarks/run.py`) on {date}. Host figures: gcc -O2 on the "
        "machine that ran it; Cortex-M4 sizes: arm-none-eabi-gcc -Os, object file of the generated model alone.\n\n"
    )
    text = header + markdown(rows)
    if m4 is not None:
        from benchmarks.m4 import report

        text += "\n" + report.markdown(m4)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"date": date, "host": rows, "cortex_m4": m4}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
