"""Evaluation speed on the host: nndsl's NumPy backend against TensorFlow Lite Micro's Python interpreter.

    python benchmarks/numpy_speed.py [--inputs 10000] [--repeats 3] [--out benchmarks/numpy_speed.md]

For each example with a reference int8 ``.tflite`` (``tests/data/<name>``), the
same 10,000 int8 inputs (the test inputs repeated) run through ``Model.run`` as
one batch and through tflite-micro one ``invoke()`` at a time, as
``nndsl validate`` runs it. Both run on one thread (BLAS is limited to one, as
tflite-micro uses one), alternately, and each side's best of ``--repeats`` wall
times counts (other work on a shared machine only ever adds time); the outputs
must be equal. The figures depend on the machine: the ratio is what to read.
Results go to Markdown and to JSON beside it. The Cortex-M4 benchmark
(``benchmarks/run.py``) is separate and unaffected.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read when NumPy loads
    os.environ.setdefault(_threads, "1")

import numpy as np  # noqa: E402

import nndsl  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "examples"
TFLM_ARENA_BYTES = 1 << 20


@dataclass(frozen=True)
class Speed:
    model: str
    inputs: int
    numpy_s: float
    tflm_s: float

    @property
    def ratio(self) -> float:
        """How many times faster than tflite-micro the NumPy backend is (at least 1 is the goal)."""
        return self.tflm_s / self.numpy_s


def test_inputs(name: str, model: nndsl.Model, count: int) -> np.ndarray:
    """``count`` int8 inputs: the example's test inputs, repeated."""
    x = np.load(DATA / name / "x_test_int8.npy").reshape((-1, *model.graph.input.type.shape))
    return np.resize(x, (count, *x.shape[1:]))


def best_times(actions: list[Callable[[], Any]], repeats: int) -> list[tuple[float, Any]]:
    """Each action's shortest wall time over ``repeats`` rounds (the actions alternate), and its last result."""
    best: list[tuple[float, Any]] = [(float("inf"), None)] * len(actions)
    for _ in range(repeats):
        for index, action in enumerate(actions):
            start = time.perf_counter()
            result = action()
            best[index] = (min(best[index][0], time.perf_counter() - start), result)
    return best


def tflm_runner(name: str, model: nndsl.Model, x: np.ndarray) -> Callable[[], np.ndarray]:
    """Every input through tflite-micro's interpreter, one ``invoke()`` each."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes((DATA / name / "model_int8.tflite").read_bytes(),
                                                 arena_size=TFLM_ARENA_BYTES)
    shape = model.graph.output.type.shape

    def run() -> np.ndarray:
        outputs = []
        for row in x:
            interpreter.set_input(row[np.newaxis], 0)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_output(0)).reshape(shape))
        return np.stack(outputs)

    return run


def measure(name: str, count: int, repeats: int) -> Speed:
    model = nndsl.load(EXAMPLES / name / f"{name}.nn")
    x = test_inputs(name, model, count)
    (numpy_s, ours), (tflm_s, theirs) = best_times([lambda: model.run(x), tflm_runner(name, model, x)], repeats)
    if not np.array_equal(ours, theirs):
        raise SystemExit(f"{name}: the NumPy backend and tflite-micro disagree")
    return Speed(name, count, numpy_s, tflm_s)


def markdown(speeds: list[Speed], repeats: int) -> str:
    lines = [
        "# NumPy backend vs TensorFlow Lite Micro (host)",
        "",
        f"Made by `benchmarks/numpy_speed.py` on {datetime.date.today()} ({platform.processor() or platform.machine()},"
        f" Python {platform.python_version()}, NumPy {np.__version__}). {speeds[0].inputs:,} int8 inputs per model: "
        "`Model.run` on the whole batch against tflite-micro's Python interpreter one `invoke()` per input, both on "
        f"one thread; best of {repeats} alternating runs each; outputs equal.",
        "",
        "| model | NumPy s | tflite-micro s | NumPy inferences/s | tflite-micro inferences/s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for s in speeds:
        lines.append(f"| {s.model} | {s.numpy_s:.3f} | {s.tflm_s:.3f} | {s.inputs / s.numpy_s:,.0f} | "
                     f"{s.inputs / s.tflm_s:,.0f} | {s.ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "numpy_speed.md")
    parser.add_argument("models", nargs="*", default=sorted(p.name for p in DATA.iterdir()
                                                            if (p / "model_int8.tflite").exists()))
    args = parser.parse_args()
    speeds = [measure(name, args.inputs, args.repeats) for name in args.models]
    args.out.write_text(markdown(speeds, args.repeats))
    data = [asdict(s) | {"ratio": s.ratio} for s in speeds]
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    print(markdown(speeds, args.repeats), end="")


if __name__ == "__main__":
    main()
