"""The main job end to end on a bundled example: build C, compile it, run it, compare.

    python examples/demo.py [mlp|hotword|conv1d|mlp_q ...]   (default: all four)

Builds ``examples/<name>/<name>.nn`` to C with nndsl, compiles it with gcc
(strict C99 flags) and the host program ``examples/host/main.c``, runs it on
the example's test inputs, and checks that the
C outputs, the NumPy backend's outputs and the expected outputs (TensorFlow
Lite Micro's for the int8 reference models; for the fixed-point mlp_q, which
no TensorFlow runtime computes, the NumPy backend's outputs saved when the
example was made) are equal byte for byte.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

import nndsl

EXAMPLES = Path(__file__).resolve().parent
EXAMPLE_NAMES = ("mlp", "hotword", "conv1d", "mlp_q")
# Where each example's expected.npy comes from.
EXPECTED_FROM = {"mlp_q": "the NumPy backend, saved by examples/to_fixed_point.py"}
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]


def demo(example: str, build_dir: Path) -> bool:
    folder = EXAMPLES / example
    model = nndsl.load(folder / f"{example}.nn")
    build = build_dir / example
    files = model.build(build)
    print(f"[{example}] nndsl build: {', '.join(str(f) for f in files)}")

    binary = build / example
    name = model.name
    command = [
        "gcc", *CFLAGS, f"-I{build}", f"-DMODEL={name}", f"-DMODEL_UPPER={name.upper()}",
        f'-DMODEL_HEADER="{name}.h"', str(build / f"{name}.c"), str(EXAMPLES / "host" / "main.c"),
        "-o", str(binary), "-lm",
    ]
    subprocess.run(command, check=True)
    print(f"[{example}] gcc: {' '.join(command[1:])}")

    inputs = np.load(folder / "inputs.npy")
    expected = np.load(folder / "expected.npy")
    run = subprocess.run([str(binary)], input=inputs.tobytes(), capture_output=True, check=True)
    c_out = np.frombuffer(run.stdout, dtype=expected.dtype).reshape(expected.shape)
    numpy_out = model.run(inputs)

    c_vs_numpy = int(np.count_nonzero(c_out != numpy_out))
    c_vs_expected = int(np.count_nonzero(c_out != expected))
    source = EXPECTED_FROM.get(example, "TensorFlow Lite Micro")
    print(f"[{example}] {len(inputs)} inputs: C vs NumPy backend: {c_vs_numpy} differing values; "
          f"C vs expected ({source}): {c_vs_expected} differing values")
    labels_path = folder / "labels.npy"
    if labels_path.exists():
        accuracy = float(np.mean(c_out.argmax(axis=-1) == np.load(labels_path)))
        print(f"[{example}] accuracy of the C model on the test set: {accuracy:.4f}")
    summary = model.summary()
    print(f"[{example}] {summary.macs} MACs, {summary.weight_bytes} B weights, {summary.arena_bytes} B arena")
    ok = c_vs_numpy == 0 and c_vs_expected == 0
    print(f"[{example}] " + ("OK: bit-exact" if ok else "MISMATCH"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("examples", nargs="*", default=list(EXAMPLE_NAMES))
    parser.add_argument("--build-dir", default="build", help="where the C goes (default: build/)")
    args = parser.parse_args()
    results = [demo(example, Path(args.build_dir)) for example in args.examples]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
