"""How the examples' weights were made: the reference int8 .tflite's tensors, re-keyed.

    python examples/from_reference.py mlp|hotword|conv1d

Reads the tensor dump of a reference model (tests/data/<name>/model_int8_graph.json
and model_int8_tensors.npz) and writes examples/<name>/<name>.npz in nndsl's
layouts: Dense kernels [inputs, outputs], conv kernels [K(H), (KW,) C, O],
depthwise kernels [K(H), (KW,) C, M], each int8 with its per-output-channel
scales under NAME.scale, and int32 biases. The layer names below are the
ones the hand-written .nn files use, in the order the weighted ops appear.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
LAYERS = {
    "mlp": ("fc1", "fc2", "fc3"),
    "hotword": ("conv", "fc"),
    "conv1d": ("conv1", "depthwise", "conv2", "fc"),
}


def to_nndsl_layout(op: str, kernel: np.ndarray, one_d: bool) -> np.ndarray:
    """TensorFlow Lite's kernel layout to nndsl's (Keras's)."""
    if op == "FULLY_CONNECTED":  # [O, I] -> [I, O]
        return kernel.T
    if op == "CONV_2D":  # [O, KH, KW, C] -> [KH, KW, C, O]
        kernel = kernel.transpose(1, 2, 3, 0)
    else:  # DEPTHWISE_CONV_2D: [1, KH, KW, C*M] -> [KH, KW, C, M] (multiplier 1 here)
        kernel = kernel.reshape((*kernel.shape[1:3], kernel.shape[3], 1))
    return kernel[0] if one_d else kernel  # 1-D models run as 2-D ops of height 1


def main(name: str) -> None:
    graph = json.loads((DATA / name / "model_int8_graph.json").read_text())
    tensors = np.load(DATA / name / "model_int8_tensors.npz", allow_pickle=False)
    weighted = [op for op in graph["ops"] if op["op"] in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")]
    one_d = len(graph["tensors"][graph["inputs"][0]]["shape"]) == 3
    arrays: dict[str, np.ndarray] = {}
    for layer, op in zip(LAYERS[name], weighted, strict=True):
        _, kernel_index, bias_index = op["inputs"]
        kernel = to_nndsl_layout(op["op"], tensors[f"t{kernel_index}"], one_d and op["op"] != "FULLY_CONNECTED")
        arrays[f"{layer}.kernel"] = np.ascontiguousarray(kernel)
        arrays[f"{layer}.kernel.scale"] = np.asarray(graph["tensors"][kernel_index]["scales"], dtype=np.float32)
        arrays[f"{layer}.bias"] = tensors[f"t{bias_index}"]
        output = graph["tensors"][op["outputs"][0]]
        print(f"{layer}: {op['op']} kernel {list(kernel.shape)} -> scale({output['scales'][0]!r}) "
              f"zero({output['zero_points'][0]})")
    np.savez(HERE / name / f"{name}.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
