"""How examples/mlp_q was made: the digits MLP in power-of-two fixed point.

    python examples/to_fixed_point.py

Takes the int8 MLP of examples/mlp, turns its weights back into real numbers
(kernel x scale, bias x input scale x kernel scale), and stores them again as
qM.N numbers: each array with the most fraction bits its largest value allows
in its storage (int8 or int16 kernels; int32 biases with the fraction bits of
their layer's accumulator, so they add without a shift). Activation formats
come from the float network's largest activations on the calibration digits
(tests/data/mlp/x_calib.npy), with one bit of headroom. It writes mlp_q.npz,
the test digits as q7 (inputs.npy), and the NumPy backend's outputs for them
(expected.npy: the baseline the C must equal), and prints the accuracies.
`nndsl to-fixed` does the same for any f32 network (int8 or int16 kernels
throughout); this script picks an int16 kernel for the first layer by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import nndsl
from nndsl.fixed import format_for, to_fixed_integers

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data" / "mlp"
LAYERS = ("fc1", "fc2", "fc3")
INT8_SCALES = {"fc1": 0.003921568859368563, "fc2": 0.025500211864709854, "fc3": 0.09259746223688126}  # their inputs
KERNEL_STORAGE = {"fc1": np.int16, "fc2": np.int8, "fc3": np.int8}
INPUT_FRAC_BITS = 7  # q7 pixels: 0 .. 127/128 (a white pixel, 1.0, saturates to 0.992)
ACTIVATION_BITS = 16  # hidden layers and logits: qM.N in int16


def frac_bits_for(largest: float, bits: int) -> int:
    """The most fraction bits (0 to 31) with which a signed ``bits``-bit number still holds ``largest``."""
    return format_for(largest, bits).frac_bits


def to_fixed(values: np.ndarray, frac_bits: int, storage: type[np.signedinteger]) -> np.ndarray:
    """Round half away from zero to ``frac_bits`` fraction bits, saturating to ``storage``."""
    return to_fixed_integers(values, frac_bits, np.dtype(storage))


def real_weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    int8 = np.load(HERE / "mlp" / "mlp.npz")
    weights = {}
    for layer in LAYERS:
        scale = int8[f"{layer}.kernel.scale"].astype(np.float64)
        kernel = int8[f"{layer}.kernel"].astype(np.float64) * scale
        bias = int8[f"{layer}.bias"].astype(np.float64) * INT8_SCALES[layer] * scale
        weights[layer] = (kernel, bias)
    return weights


def main() -> int:
    weights = real_weights()
    calib = np.load(DATA / "x_calib.npy").astype(np.float64)
    arrays: dict[str, np.ndarray] = {}
    formats = []
    in_frac = INPUT_FRAC_BITS
    activation = calib
    for index, layer in enumerate(LAYERS):
        kernel, bias = weights[layer]
        storage = KERNEL_STORAGE[layer]
        kernel_frac = frac_bits_for(float(np.abs(kernel).max()), 8 * np.dtype(storage).itemsize)
        arrays[f"{layer}.kernel"] = to_fixed(kernel, kernel_frac, storage)
        arrays[f"{layer}.kernel.frac_bits"] = np.int32(kernel_frac)
        acc_frac = in_frac + kernel_frac
        arrays[f"{layer}.bias"] = to_fixed(bias, acc_frac, np.int32)
        arrays[f"{layer}.bias.frac_bits"] = np.int32(acc_frac)
        activation = activation @ kernel + bias
        if index < len(LAYERS) - 1:
            activation = np.maximum(activation, 0)
        headroom = 2 * float(np.abs(activation).max())
        out_frac = frac_bits_for(headroom, ACTIVATION_BITS)
        formats.append((layer, ACTIVATION_BITS - 1 - out_frac, out_frac, kernel_frac, storage))
        in_frac = out_frac
    np.savez(HERE / "mlp_q" / "mlp_q.npz", **arrays)
    print("formats (layer, output qM.N, kernel frac bits, kernel storage):")
    for layer, int_bits, frac, kernel_frac, storage in formats:
        print(f"  {layer}: q{int_bits}.{frac}, kernel {np.dtype(storage).name} with {kernel_frac} fraction bits")

    x_test = np.load(DATA / "x_test.npy").astype(np.float64)
    labels = np.load(HERE / "mlp" / "labels.npy")
    inputs = to_fixed(x_test, INPUT_FRAC_BITS, np.int8)
    model = nndsl.load(HERE / "mlp_q" / "mlp_q.nn")
    outputs = model.run(inputs)
    np.save(HERE / "mlp_q" / "inputs.npy", inputs)
    np.save(HERE / "mlp_q" / "expected.npy", outputs)
    np.save(HERE / "mlp_q" / "labels.npy", labels)
    float_logits = x_test
    for layer in LAYERS:
        kernel, bias = weights[layer]
        float_logits = float_logits @ kernel + bias
        float_logits = np.maximum(float_logits, 0) if layer != LAYERS[-1] else float_logits
    print(f"accuracy: float weights {np.mean(float_logits.argmax(-1) == labels):.4f}, "
          f"fixed point {np.mean(outputs.argmax(-1) == labels):.4f} on {len(labels)} test digits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
