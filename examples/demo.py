"""The main job end to end on a bundled example: build C, compile it, run it, compare.

    python examples/demo.py [mlp]

Builds ``examples/<name>/<name>.nn`` to C with nndsl, compiles it with gcc
(strict C99 flags), runs it on the example's test inputs, and checks that the
C outputs, the NumPy backend's outputs and the expected outputs (TensorFlow
Lite Micro's, for the int8 reference model) are equal byte for byte.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

import nndsl

EXAMPLES = Path(__file__).resolve().parent
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("example", nargs="?", default="mlp")
    parser.add_argument("--build-dir", default="build", help="where the C goes (default: build/)")
    args = parser.parse_args()

    folder = EXAMPLES / args.example
    model = nndsl.load(folder / f"{args.example}.nn")
    build = Path(args.build_dir) / args.example
    files = model.build(build)
    print(f"nndsl build: {', '.join(str(f) for f in files)}")

    binary = build / args.example
    command = ["gcc", *CFLAGS, f"-I{build}", str(build / f"{model.name}.c"), str(folder / "main.c"), "-o", str(binary)]
    subprocess.run(command, check=True)
    print(f"gcc: {' '.join(command[1:])}")

    inputs = np.load(folder / "inputs.npy")
    expected = np.load(folder / "expected.npy")
    run = subprocess.run([str(binary)], input=inputs.tobytes(), capture_output=True, check=True)
    c_out = np.frombuffer(run.stdout, dtype=expected.dtype).reshape(expected.shape)
    numpy_out = model.run(inputs)

    c_vs_numpy = int(np.count_nonzero(c_out != numpy_out))
    c_vs_expected = int(np.count_nonzero(c_out != expected))
    print(f"{len(inputs)} inputs: C vs NumPy backend: {c_vs_numpy} differing values; "
          f"C vs expected (TensorFlow Lite Micro): {c_vs_expected} differing values")
    labels_path = folder / "labels.npy"
    if labels_path.exists():
        accuracy = float(np.mean(c_out.argmax(axis=-1) == np.load(labels_path)))
        print(f"accuracy of the C model on the test set: {accuracy:.4f}")
    summary = model.summary()
    print(f"{summary.macs} MACs, {summary.weight_bytes} B weights, {summary.arena_bytes} B arena")
    ok = c_vs_numpy == 0 and c_vs_expected == 0
    print("OK: bit-exact" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
