"""`nndsl to-fixed`: f32 networks converted to power-of-two fixed point from calibration inputs.

The converted models are checked like any other (range analysis included);
here they must also stay close to the float model they came from, run equal
in C and NumPy (integer equality), and fail with located errors where there
is no fixed-point version.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import nndsl
from nndsl import ir
from nndsl.fixed import FixedOptions, convert
from nndsl.qmath.fixed_functions import QFunction, function_error_bound, softmax_error_bound
from nndsl.qmath.shift import to_fixed_integers
from nndsl.types import QFormat, format_for
from tests.c_harness import run_in_c
from tests.conftest import DATA, EXAMPLES
from tests.test_c_backend import random_f32_network

Array = npt.NDArray[np.generic]


def quantize(model: nndsl.Model, x: npt.NDArray[np.floating]) -> Array:
    fmt = model.graph.input.type.fixed
    assert fmt is not None
    return np.clip(to_fixed_integers(x, fmt.frac_bits, np.dtype(np.int32)), *fmt.bounds).astype(
        model.graph.input.type.dtype.numpy)


def real_output(model: nndsl.Model, q: Array) -> npt.NDArray[np.float64]:
    fmt = model.graph.output.type.fixed
    assert fmt is not None
    return model.run(q).astype(np.float64) * 2.0**-fmt.frac_bits


def relative_error(got: npt.NDArray[np.float64], reference: Array) -> float:
    return float(np.abs(got - reference).max() / max(float(np.abs(reference).max()), 1e-9))


def float_mlp(folder: Path, softmax: bool = False) -> Path:
    """The digits MLP with real weights: the int8 example's kernels x scales, biases x input x kernel scales
    (ending at its logits, or with ``softmax`` at its probabilities, as examples/mlp does)."""
    int8 = np.load(EXAMPLES / "mlp" / "mlp.npz")
    input_scales = {"fc1": 0.003921568859368563, "fc2": 0.025500211864709854, "fc3": 0.09259746223688126}
    arrays = {}
    for layer, in_scale in input_scales.items():
        scale = int8[f"{layer}.kernel.scale"].astype(np.float64)
        arrays[f"{layer}.kernel"] = (int8[f"{layer}.kernel"] * scale).astype(np.float32)
        arrays[f"{layer}.bias"] = (int8[f"{layer}.bias"] * in_scale * scale).astype(np.float32)
    np.savez(folder / "mlp.npz", **arrays)
    path = folder / "mlp.nn"
    text = """network mlp
target efm32 { latency <= 10 ms }
weights "mlp.npz"
input pixels : f32[64]
hidden1 = dense(pixels, fc1.kernel, fc1.bias) -> relu
hidden2 = dense(hidden1, fc2.kernel, fc2.bias) -> relu
output logits = dense(hidden2, fc3.kernel, fc3.bias)
"""
    if softmax:
        text = text.replace("output logits", "logits") + "output probs = softmax(logits)\n"
    path.write_text(text)
    return path


def test_format_for_picks_the_most_fraction_bits_that_hold_the_value() -> None:
    assert format_for(1.0, 8) == QFormat(1, 6)  # q1.6 holds 1.98; q0.7 only 0.99
    assert format_for(0.99, 8, max_frac=7) == QFormat(0, 7)
    assert format_for(6.51, 16, headroom=1, max_frac=15) == QFormat(4, 11)  # 13.02 < 16
    assert format_for(0.001, 8).frac_bits == 16  # small weights: more fraction bits than bits
    assert format_for(0.0, 16, max_frac=15) == QFormat(0, 15)
    assert format_for(1e9, 16) == QFormat(15, 0)  # saturates: the widest format


def test_digits_mlp_keeps_its_accuracy(tmp_path: Path) -> None:
    """q7 pixels; the converter picks q4.11, q6.9 and q7.8 from the calibration digits (largest x 2)."""
    source = float_mlp(tmp_path)
    conversion = convert(source, np.load(DATA / "mlp" / "x_calib.npy"), tmp_path / "mlp_q.nn",
                         FixedOptions(input_format=QFormat(0, 7)))
    assert [f.name for f in conversion.formats.values()] == ["q7", "q4.11", "q6.9", "q7.8"]
    assert not (tmp_path / "mlp_q.nn").exists()  # convert() writes nothing itself
    conversion.write(tmp_path / "mlp_q.nn")
    fixed, floating = nndsl.load(tmp_path / "mlp_q.nn"), nndsl.load(source)
    assert fixed.graph.target is not None and fixed.graph.target.name == "efm32"
    x, labels = np.load(DATA / "mlp" / "x_test.npy"), np.load(DATA / "mlp" / "y_test.npy")
    q = quantize(fixed, x)
    float_accuracy = float(np.mean(floating.run(x).argmax(axis=1) == labels))
    fixed_accuracy = float(np.mean(fixed.run(q).argmax(axis=1) == labels))
    assert fixed_accuracy >= float_accuracy - 0.005
    assert np.array_equal(run_in_c(fixed, q), fixed.run(q))  # integer equality


def test_digits_mlp_with_softmax_keeps_its_accuracy(tmp_path: Path) -> None:
    """The MLP ending in softmax, as examples/mlp does: q15 probabilities after the int16 logits, within 1% of
    the float model's accuracy; C equals NumPy."""
    source = float_mlp(tmp_path, softmax=True)
    conversion = convert(source, np.load(DATA / "mlp" / "x_calib.npy"), tmp_path / "mlp_q.nn",
                         FixedOptions(input_format=QFormat(0, 7)))
    assert [f.name for f in conversion.formats.values()] == ["q7", "q4.11", "q6.9", "q7.8", "q15"]
    assert "output probs = softmax(logits) : q15" in conversion.text
    conversion.write(tmp_path / "mlp_q.nn")
    fixed, floating = nndsl.load(tmp_path / "mlp_q.nn"), nndsl.load(source)
    x, labels = np.load(DATA / "mlp" / "x_test.npy"), np.load(DATA / "mlp" / "y_test.npy")
    q = quantize(fixed, x)
    probabilities = floating.run(x)
    float_accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    fixed_accuracy = float(np.mean(fixed.run(q).argmax(axis=1) == labels))
    assert abs(fixed_accuracy - float_accuracy) <= 0.01
    assert_functions_within_their_bounds(fixed, q)
    assert np.array_equal(run_in_c(fixed, q), fixed.run(q))


def assert_functions_within_their_bounds(model: nndsl.Model, q: Array) -> None:
    """Each tanh, sigmoid and softmax of a converted network is within its documented error bound of the exact
    function of its own (fixed-point) input: the converter's formats lose nothing beyond the output's rounding."""
    trace = model.trace(q)
    for op in model.graph.ops:
        if not isinstance(op, ir.Elementwise | ir.Softmax):
            continue
        fin, fout = op.input.type.fixed, op.output.type.fixed
        assert fin is not None and fout is not None
        x = trace[op.input.name].astype(np.float64) * fin.scale
        if isinstance(op, ir.Softmax):
            z = np.exp(op.beta * (x - x.max(axis=-1, keepdims=True)))
            exact, bound = z / z.sum(axis=-1, keepdims=True), softmax_error_bound(fout.frac_bits, x.shape[-1])
        else:
            exact, bound = QFunction(op.function.value).real(x), function_error_bound(fin.bits)
        low, high = fout.bounds
        error = np.abs(trace[op.output.name] * fout.scale - np.clip(exact, low * fout.scale, high * fout.scale))
        assert error.max() <= bound * fout.scale, (op.output.name, float(error.max() / fout.scale))


FUNCTION_NET = """network smooth
weights "smooth.npz"
input x : f32[6]
a = dense(x, fc1.kernel, fc1.bias)
t = tanh(a)
b = dense(t, fc2.kernel, fc2.bias)
s = sigmoid(b)
r = relu(s)
c = dense(r, fc3.kernel, fc3.bias)
output p = softmax(c, beta=2.0)
"""


@pytest.mark.parametrize("bits, formats, tolerance", [(16, ("q15", "q15", "q15"), 0.003),
                                                      (8, ("q7", "q7", "q7"), 0.15)])
def test_random_network_with_tanh_and_sigmoid(tmp_path: Path, bits: int, formats: tuple[str, ...],
                                              tolerance: float) -> None:
    """tanh, sigmoid and softmax take q15 after int16 tensors, q7 after int8 ones (a relu keeps the sigmoid's);
    the converted net stays within ``tolerance`` of the float one (8-bit activations such as q5.2 dominate that
    error), each function within its bound of its input's exact value, and its C equals its NumPy run."""
    rng = np.random.default_rng(21)
    shapes = {"fc1": (6, 8), "fc2": (8, 5), "fc3": (5, 4)}
    arrays = {}
    for layer, shape in shapes.items():
        arrays[f"{layer}.kernel"] = rng.normal(size=shape).astype(np.float32)
        arrays[f"{layer}.bias"] = (rng.normal(size=shape[1]) * 0.3).astype(np.float32)
    np.savez(tmp_path / "smooth.npz", **arrays)
    source = tmp_path / "smooth.nn"
    source.write_text(FUNCTION_NET)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    options = FixedOptions(activation_bits=bits, weight_bits=bits)
    conversion = convert(source, x[:200], tmp_path / "smooth_q.nn", options)
    assert tuple(conversion.formats[name].name for name in ("t", "s", "p")) == formats
    assert conversion.formats["r"] == conversion.formats["s"]
    conversion.write(tmp_path / "smooth_q.nn")
    fixed, floating = nndsl.load(tmp_path / "smooth_q.nn"), nndsl.load(source)
    q = quantize(fixed, x[200:])
    assert np.abs(real_output(fixed, q) - floating.run(x[200:])).max() < tolerance
    assert_functions_within_their_bounds(fixed, q)
    assert np.array_equal(run_in_c(fixed, q), fixed.run(q))


CONV_NET = """network convnet
weights "convnet.npz"
input x : f32[12, 12, 2]
a = conv2d(x, c1.kernel, c1.bias, padding=same) -> relu
b = depthwise_conv2d(x, dw.kernel, dw.bias, stride=1, padding=same)
joined = concat(a, b)
p = max_pool(joined, size=2)
q = avg_pool(p, size=2, padding=same)
padded = pad(q, pads=((1, 1), (1, 1), (0, 0)))
s = conv2d(padded, c2.kernel, padding=valid)
t = conv2d(padded, c3.kernel, c3.bias, padding=valid)
u = add(s, t) -> relu6
g = global_avg_pool(u)
output y = dense(g, fc.kernel, fc.bias)
"""


def conv_net(folder: Path, rng: np.random.Generator) -> Path:
    shapes = {"c1.kernel": (3, 3, 2, 4), "c1.bias": (4,), "dw.kernel": (3, 3, 2, 1), "dw.bias": (2,),
              "c2.kernel": (3, 3, 6, 5), "c3.kernel": (3, 3, 6, 5), "c3.bias": (5,), "fc.kernel": (5, 3),
              "fc.bias": (3,)}
    arrays = {name: (rng.normal(size=shape) * 0.4).astype(np.float32) for name, shape in shapes.items()}
    np.savez(folder / "convnet.npz", **arrays)
    path = folder / "convnet.nn"
    path.write_text(CONV_NET)
    return path


@pytest.mark.parametrize("weight_bits, tolerance", [(8, 0.15), (16, 0.01)])
def test_conv_network_with_branches(tmp_path: Path, weight_bits: int, tolerance: float) -> None:
    """Concat's inputs share one format; the converted net stays within ``tolerance`` of the float one
    (relative to its largest output) on unseen inputs, and its C equals its NumPy run exactly."""
    rng = np.random.default_rng(3)
    source = conv_net(tmp_path, rng)
    x = rng.normal(size=(260, 12, 12, 2)).astype(np.float32)
    conversion = convert(source, x[:200], tmp_path / "conv_q.nn", FixedOptions(weight_bits=weight_bits))
    formats = conversion.formats
    assert formats["a"] == formats["b"] == formats["joined"] == formats["p"] == formats["padded"]
    assert formats["u"].bits == 16
    conversion.write(tmp_path / "conv_q.nn")
    fixed, floating = nndsl.load(tmp_path / "conv_q.nn"), nndsl.load(source)
    kernel_dtype = np.int8 if weight_bits == 8 else np.int16
    assert all(op.kernel.data.dtype == kernel_dtype for op in fixed.graph.ops
               if isinstance(op, ir.Dense | ir.Conv))
    q = quantize(fixed, x[200:])
    assert relative_error(real_output(fixed, q), floating.run(x[200:])) < tolerance
    assert np.array_equal(run_in_c(fixed, q), fixed.run(q))


@pytest.mark.parametrize("seed", range(12))
def test_random_dense_networks_stay_close_to_float(tmp_path: Path, seed: int) -> None:
    """16-bit activations and weights: within 1% of the largest float output on inputs beyond calibration."""
    network = random_f32_network(seed)
    floating = network.write(tmp_path)
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(300, *floating.graph.input.type.shape)) * 2).astype(np.float32)
    source, output = tmp_path / f"{network.name}.nn", tmp_path / "fixed.nn"
    convert(source, x[:200], output, FixedOptions(weight_bits=16)).write(output)
    fixed = nndsl.load(output)
    q = quantize(fixed, x[200:])
    assert relative_error(real_output(fixed, q), floating.run(x[200:])) < 0.01


def test_feature_scaling_and_binary_ops_convert(tmp_path: Path) -> None:
    """Constants and broadcasting in fixed point: a per-feature standardisation (sub and mul by arrays, as
    Keras Normalization does), numbers, maximum and minimum convert, stay within 2% of the float network, and
    the C equals NumPy exactly."""
    rng = np.random.default_rng(11)
    mean, inv_std = rng.normal(size=6).astype(np.float32) * 3, rng.uniform(0.2, 2.0, size=6).astype(np.float32)
    np.savez(tmp_path / "w.npz", mean=mean, inv_std=inv_std, k=(rng.normal(size=(6, 4)) * 0.5).astype(np.float32))
    (tmp_path / "m.nn").write_text("""network scaled
weights "w.npz"
input x : f32[6]
centred = sub(x, mean)
scaled = mul(centred, inv_std)
clipped = maximum(scaled, -2.5)
h = dense(clipped, k) -> relu
d = minimum(h, 3.0)
output y = mul(d, 0.25)
""")
    x = (rng.normal(size=(300, 6)) * 2 + mean).astype(np.float32)
    conversion = convert(tmp_path / "m.nn", x[:200], tmp_path / "q.nn", FixedOptions(weight_bits=16))
    assert np.array_equal(conversion.weights["mean"], mean)  # float constants: the checker picks their format
    conversion.write(tmp_path / "q.nn")
    fixed, floating = nndsl.load(tmp_path / "q.nn"), nndsl.load(tmp_path / "m.nn")
    assert sum(isinstance(op, ir.Binary) for op in fixed.graph.ops) == 5
    q = quantize(fixed, x[200:])
    assert relative_error(real_output(fixed, q), floating.run(x[200:])) < 0.02
    assert np.array_equal(run_in_c(fixed, q), fixed.run(q))


def test_weights_are_made_coarser_where_a_sum_could_overflow(tmp_path: Path) -> None:
    """256 q15 inputs times int16 weights of 0.9: the finest kernel format would overflow int32 sums."""
    np.savez(tmp_path / "w.npz", k=np.full((256, 2), 0.9, np.float32))
    (tmp_path / "m.nn").write_text('network m\nweights "w.npz"\ninput x : f32[256]\noutput y = dense(x, k)\n')
    x = np.random.default_rng(0).uniform(-0.9, 0.9, size=(50, 256)).astype(np.float32)
    conversion = convert(tmp_path / "m.nn", x, tmp_path / "q.nn", FixedOptions(weight_bits=16))
    kernel_frac = int(conversion.weights["k.frac_bits"])
    assert kernel_frac < format_for(0.9, 16).frac_bits  # 15 would fit 0.9, but not the sum
    worst = 2**15 * 256 * int(np.abs(conversion.weights["k"]).max())
    assert worst < 2**31


@pytest.mark.tensorflow
def test_keras_model_through_a_float_import(tmp_path: Path) -> None:
    """Keras -> f32 .nn (nndsl import) -> to-fixed: the 1-D conv sensor classifier keeps its float accuracy."""
    from nndsl.importers import import_model

    imported = import_model(DATA / "conv1d" / "model.keras", name="conv1d")
    source, _ = imported.write(tmp_path / "conv1d.nn")
    text = source.read_text()
    assert "softmax = softmax(dense_4)" in text
    source.write_text(text.replace("output softmax", "output dense_4").replace("softmax = softmax(dense_4)", "#"))
    conversion = convert(source, np.load(DATA / "conv1d" / "x_calib.npy"), tmp_path / "conv1d_q.nn")
    conversion.write(tmp_path / "conv1d_q.nn")
    fixed, floating = nndsl.load(tmp_path / "conv1d_q.nn"), nndsl.load(source)
    x, labels = np.load(DATA / "conv1d" / "x_test.npy"), np.load(DATA / "conv1d" / "y_test.npy")
    q = quantize(fixed, x)
    float_accuracy = float(np.mean(floating.run(x).argmax(axis=1) == labels))
    assert float(np.mean(fixed.run(q).argmax(axis=1) == labels)) >= float_accuracy - 0.005
    assert np.array_equal(run_in_c(fixed, q), fixed.run(q))


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nndsl", *map(str, args)], capture_output=True, text=True,
                          check=False)


def test_cli_writes_a_model_that_builds(tmp_path: Path) -> None:
    source = float_mlp(tmp_path)
    result = cli("to-fixed", source, "--calibrate", DATA / "mlp" / "x_calib.npy", "-o", tmp_path / "q.nn",
                 "--input-format", "q7", "--activation-bits", "12")
    assert result.returncode == 0, result.stderr
    assert "hidden1          q4.7" in result.stdout and "q.nn: 3 layers in fixed point" in result.stdout
    assert (tmp_path / "q.npz").exists()
    build = cli("build", tmp_path / "q.nn", "-o", tmp_path / "build")
    assert build.returncode == 0, build.stderr
    assert "#define Q_INPUT_FRAC_BITS 7" in (tmp_path / "build" / "q.h").read_text()


@pytest.mark.parametrize("case", ["i8-model", "batch-norm-and-hard-swish", "bad-calibration", "own-model",
                                  "own-weights", "input-format", "overflow"])
def test_cli_errors(tmp_path: Path, case: str) -> None:
    """Each refusal is a compiler-style error, exit 1, no traceback, and nothing is written or replaced."""
    source = float_mlp(tmp_path)
    calibration = DATA / "mlp" / "x_calib.npy"
    output = tmp_path / "out.nn"
    args: list[str | Path] = [source, "--calibrate", calibration, "-o", output]
    expected: str
    if case == "i8-model":
        args[0] = EXAMPLES / "mlp" / "mlp.nn"
        expected = "mlp.nn:13:8: error: to-fixed converts an f32 network; 'pixels' is i8"
    elif case == "batch-norm-and-hard-swish":
        text = source.read_text().replace("output logits = dense(hidden2, fc3.kernel, fc3.bias)",
                                          "bn = batch_norm(hidden2, g, b, m, v)\nlogits = dense(bn, fc3.kernel, "
                                          "fc3.bias)\noutput p = hard_swish(logits)")
        source.write_text(text)
        ones = np.ones(16, np.float32)
        np.savez(tmp_path / "mlp.npz", **dict(np.load(tmp_path / "mlp.npz")), g=ones, b=ones, m=ones, v=ones)
        expected = "mlp.nn:7:6: error: 'batch_norm' has no fixed-point (qM.N) kernel: fold it"
    elif case == "bad-calibration":
        np.save(tmp_path / "bad.npy", np.zeros((3, 10), np.float32))
        args[2] = tmp_path / "bad.npy"
        expected = "mlp.nn: error: calibration inputs must be real numbers shaped [N, 64], got float32 [3, 10]"
    elif case == "own-model":
        args[4] = source
        expected = "error: writing"
    elif case == "own-weights":
        args[4] = tmp_path / "mlp.nn"  # same folder, same stem: would replace mlp.npz
        expected = "would replace the model's own"
    elif case == "input-format":
        args += ["--input-format", "q33"]
        expected = "q33: error: --input-format takes a format such as q7"
    else:
        np.savez(tmp_path / "mlp.npz", **{k: v * 1e6 for k, v in np.load(tmp_path / "mlp.npz").items()})
        args += ["--activation-bits", "16", "--headroom", "0"]
        expected = "the converted network does not pass its checks"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = cli("to-fixed", *args)
    assert result.returncode == 1, result.stdout
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    if case == "batch-norm-and-hard-swish":  # every refusal at once
        assert "mlp.nn:9:12: error: 'hard_swish' has no fixed-point (qM.N) kernel" in result.stderr


def test_names_targets_and_warnings_carry_over(tmp_path: Path) -> None:
    """A file name that is no network name is made one; exact target figures stay exact; range warnings show."""
    source = float_mlp(tmp_path)
    board = "target board { ram = 1234567 B, flash = 1 MiB, clock = 48123456 Hz }"
    source.write_text(source.read_text().replace("target efm32 { latency <= 10 ms }", board))
    result = cli("to-fixed", source, "--calibrate", DATA / "mlp" / "x_calib.npy", "-o", tmp_path / "small-q.nn")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "small-q.nn").read_text()
    assert "network small_q" in text and "ram = 1234567 B" in text and "clock = 48123456 Hz" in text
    assert f"{tmp_path / 'small-q.nn'}:" in result.stderr and "warning: 'hidden1' saturates" in result.stderr
    bad = cli("to-fixed", source, "--calibrate", DATA / "mlp" / "x_calib.npy", "-o", tmp_path / "q.nn",
              "--name", "a b")
    assert bad.returncode == 1 and "error: 'a b' is not a network name" in bad.stderr


def test_concat_with_the_input_takes_the_widest_format(tmp_path: Path) -> None:
    """concat(x, 10 x) must hold the larger branch: the input (|x| <= 0.4) gets its format, not the reverse."""
    np.savez(tmp_path / "w.npz", k=np.full((4, 4), 2.5, np.float32))
    (tmp_path / "m.nn").write_text('network m\nweights "w.npz"\ninput x : f32[4]\nh = dense(x, k)\n'
                                   "output c = concat(x, h)\n")
    x = np.random.default_rng(1).uniform(-0.4, 0.4, size=(100, 4)).astype(np.float32)
    conversion = convert(tmp_path / "m.nn", x, tmp_path / "q.nn")
    assert conversion.formats["x"] == conversion.formats["h"] == conversion.formats["c"]
    assert 2 ** conversion.formats["c"].int_bits > conversion.largest["h"]
    conversion.write(tmp_path / "q.nn")
    fixed, floating = nndsl.load(tmp_path / "q.nn"), nndsl.load(tmp_path / "m.nn")
    q = quantize(fixed, x)
    assert relative_error(real_output(fixed, q), floating.run(x)) < 0.01


@pytest.mark.parametrize("case", ["huge-calibration", "not-utf8"])
def test_unreadable_inputs_are_errors(tmp_path: Path, case: str) -> None:
    source = float_mlp(tmp_path)
    calibration = DATA / "mlp" / "x_calib.npy"
    if case == "huge-calibration":
        calibration = tmp_path / "huge.npy"
        np.save(calibration, np.full((4, 64), 1e300))
        expected = "'pixels' is not finite (inf or nan) on the calibration inputs in float32"
    else:
        source = tmp_path / "mlp.npz"
        expected = "cannot read"
    result = cli("to-fixed", source, "--calibrate", calibration, "-o", tmp_path / "q.nn")
    assert result.returncode == 1 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "q.nn").exists()
