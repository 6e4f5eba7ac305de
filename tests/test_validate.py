"""`nndsl validate`: the C built on the host against NumPy, TensorFlow Lite Micro and Keras; the trace hook.

The corrupted-kernel tests edit one weight of the generated C and expect
validation to fail, naming the layer that weight belongs to and its line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.cli import main
from tests.conftest import DATA, EXAMPLES

MLP = EXAMPLES / "mlp" / "mlp.nn"
CONV1D = EXAMPLES / "conv1d" / "conv1d.nn"


@pytest.fixture(autouse=True)
def _needs_compiler(compiler: str) -> None:
    """Every test here compiles C on the host."""


def validate(*args: str | Path) -> int:
    return main(["validate", *map(str, args)])


def corrupt_weight(source: Path, array: str) -> None:
    """Change the first value of a weight array in generated C (``static const T <array>[n] = {``)."""
    text = source.read_text()
    match = re.search(rf"static const \w+ {re.escape(array)}\[\d+\](?: \w+)? = \{{\s*(-?\d+)", text)
    assert match is not None, f"no array {array} in {source}"
    value = int(match.group(1))
    start, end = match.span(1)
    source.write_text(text[:start] + str(-value if value else 77) + text[end:])


def test_mlp_equals_numpy_and_tflm_with_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tflite_micro")
    code = validate(MLP, "--input", EXAMPLES / "mlp" / "inputs.npy", "--reference", DATA / "mlp" / "model_int8.tflite",
                    "--labels", EXAMPLES / "mlp" / "labels.npy")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "C vs NumPy backend: 0 differing values" in out.out
    assert "C vs TensorFlow Lite Micro: 0 differing values" in out.out
    assert "accuracy of the C: 0.9711 (TensorFlow Lite Micro: 0.9711)" in out.out
    assert out.out.rstrip().endswith("OK") and out.err == ""


def test_corrupted_dense_kernel_is_found_and_its_layer_named(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    nndsl.load(MLP).build(tmp_path)
    corrupt_weight(tmp_path / "mlp.c", "mlp_fc2_kernel")
    code = validate(MLP, "--input", EXAMPLES / "mlp" / "inputs.npy", "--sources", tmp_path)
    out = capsys.readouterr()
    assert code == 1
    assert re.search(r"mlp\.nn:16:\d+: first differing layer: 'hidden2' \(dense\)", out.out), out.out
    assert re.search(r"hidden1 .* 0 differ", out.out)
    assert "mlp.nn: error: validation failed: the C differs from the NumPy backend" in out.err
    assert "Traceback" not in out.err


def test_corrupted_conv_kernel_in_a_later_layer_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = nndsl.load(CONV1D)
    model.build(tmp_path)
    source = (tmp_path / "conv1d.c").read_text()
    kernels = re.findall(r"static const int8_t (conv1d_\w*kernel\w*)\[", source)
    assert len(kernels) >= 2, kernels
    corrupt_weight(tmp_path / "conv1d.c", kernels[1])
    x = np.load(EXAMPLES / "conv1d" / "inputs.npy")[:50]
    np.save(tmp_path / "x.npy", x)
    code = validate(CONV1D, "--input", tmp_path / "x.npy", "--sources", tmp_path)
    out = capsys.readouterr().out
    assert code == 1
    first = re.search(r"first differing layer: '(\w+)'", out)
    assert first is not None, out
    differing = [op.output.name for op in model.graph.ops if op.consts and any(
        t.name.replace(".", "_") in kernels[1] for t in op.consts)]
    assert first.group(1) in differing, (first.group(1), differing, kernels[1])


def test_float_input_is_quantised_as_tflite_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = nndsl.load(MLP)
    real = np.load(DATA / "mlp" / "x_test.npy")
    assert np.array_equal(model.quantize(real), np.load(DATA / "mlp" / "x_test_int8.npy"))
    np.save(tmp_path / "x.npy", real[:40])
    assert validate(MLP, "--input", tmp_path / "x.npy") == 0
    assert "40 inputs" in capsys.readouterr().out


def test_min_accuracy_fails_ci(capsys: pytest.CaptureFixture[str]) -> None:
    code = validate(MLP, "--input", EXAMPLES / "mlp" / "inputs.npy", "--labels", EXAMPLES / "mlp" / "labels.npy",
                    "--min-accuracy", "0.99")
    assert code == 1
    assert "accuracy 0.9711 is below --min-accuracy 0.99" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (("--input", "missing.npy"), "missing.npy: error: "),
    (("--input", "{x_bad}"), "x_bad.npy: error: input has shape [3, 5]"),
    (("--input", "{x}", "--labels", "{x_bad}"), "x_bad.npy: error: expected 2 integer class labels"),
    (("--input", "{x}", "--reference", "{x}"), "x.npy: error: the reference must be a .tflite"),
    (("--input", "{x}", "--sources", "{empty}"), "mlp.c: error: no generated .c file of network mlp"),
    (("--input", "{x}", "--cc", "no-such-cc"), "nndsl: error: no host C compiler found (no-such-cc)"),
])
def test_user_errors_are_located(args: tuple[str, ...], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.load(EXAMPLES / "mlp" / "inputs.npy")[:2])
    np.save(tmp_path / "x_bad.npy", np.zeros((3, 5), dtype=np.float32))
    (tmp_path / "empty").mkdir()
    names = {"x": tmp_path / "x.npy", "x_bad": tmp_path / "x_bad.npy", "empty": tmp_path / "empty"}
    code = validate(MLP, *(arg.format(**names) for arg in args))
    err = capsys.readouterr().err
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err


def test_validate_without_a_framework_reference_does_not_import_tensorflow(tmp_path: Path) -> None:
    script = ("import sys, json\nfrom nndsl.cli import main\n"
              f"code = main(['validate', {str(MLP)!r}, '--input', {str(EXAMPLES / 'mlp' / 'inputs.npy')!r}])\n"
              "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in "
              "('tensorflow', 'keras', 'tflite_micro'))]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == [0, []]


def test_trace_hook_changes_no_code_when_undefined(tmp_path: Path, compiler: str) -> None:
    """The generated C and the same C without its trace lines compile to the same machine code."""
    nndsl.load(CONV1D).build(tmp_path)
    source = (tmp_path / "conv1d.c").read_text()
    assert source.count("CONV1D_TRACE(") == len(nndsl.load(CONV1D).graph.ops) + 1
    stripped = re.sub(r"\n#ifndef CONV1D_TRACE\n.*?#endif\n", "\n", source, flags=re.DOTALL)
    stripped = re.sub(r"\n *CONV1D_TRACE\(.*\);", "", stripped)
    (tmp_path / "stripped.c").write_text(stripped)
    texts = []
    for name in ("conv1d.c", "stripped.c"):
        obj = tmp_path / f"{name}.o"
        subprocess.run([compiler, "-std=c99", "-O2", "-c", str(tmp_path / name), "-o", str(obj)], check=True)
        section = tmp_path / f"{name}.text"
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.text", str(obj), str(section)], check=True)
        texts.append(section.read_bytes())
    assert texts[0] == texts[1] and texts[0]


@pytest.mark.tensorflow
def test_float_network_against_keras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An f32 import of a Keras model is within the default tolerance of Keras; the int8 one reports its error."""
    pytest.importorskip("tensorflow")
    assert main(["import", str(DATA / "mlp" / "model.keras"), "-o", str(tmp_path / "mlp_f.nn"), "-q"]) == 0
    x = np.load(DATA / "mlp" / "x_test.npy")[:100]
    np.save(tmp_path / "x.npy", x)
    keras = DATA / "mlp" / "model.keras"
    assert validate(tmp_path / "mlp_f.nn", "--input", tmp_path / "x.npy", "--reference", keras) == 0
    out = capsys.readouterr().out
    assert "C vs Keras (real values): max |error|" in out and ", 0 beyond 0.0001" in out
    assert validate(MLP, "--input", tmp_path / "x.npy", "--reference", keras) == 0
    assert "same top-1 class on" in capsys.readouterr().out
    assert validate(MLP, "--input", tmp_path / "x.npy", "--reference", keras, "--tolerance", "1e-6") == 1
