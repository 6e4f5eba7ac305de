"""How mlp.nn's weights were made: the reference int8 .tflite's tensors, re-keyed.

Reads the tensor dump of the reference model (tests/data/mlp/model_int8_graph.json
and model_int8_tensors.npz) and writes mlp.npz: each Dense kernel transposed
to nndsl's [inputs, outputs] layout with its per-output-channel scales, and its
int32 bias. Run from the repository root: python examples/mlp/from_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
REFERENCE = HERE.parent.parent / "tests" / "data" / "mlp"
LAYERS = ("fc1", "fc2", "fc3")


def main() -> None:
    graph = json.loads((REFERENCE / "model_int8_graph.json").read_text())
    tensors = np.load(REFERENCE / "model_int8_tensors.npz", allow_pickle=False)
    dense_ops = [op for op in graph["ops"] if op["op"] == "FULLY_CONNECTED"]
    arrays: dict[str, np.ndarray] = {}
    for name, op in zip(LAYERS, dense_ops, strict=True):
        _, kernel_index, bias_index = op["inputs"]
        kernel_info = graph["tensors"][kernel_index]
        arrays[f"{name}.kernel"] = np.ascontiguousarray(tensors[f"t{kernel_index}"].T)
        arrays[f"{name}.kernel.scale"] = np.asarray(kernel_info["scales"], dtype=np.float32)
        arrays[f"{name}.bias"] = tensors[f"t{bias_index}"]
        output = graph["tensors"][op["outputs"][0]]
        print(f"{name}: output scale {output['scales'][0]!r} zero {output['zero_points'][0]}")
    np.savez(HERE / "mlp.npz", **arrays)


if __name__ == "__main__":
    main()
