"""Diagnostics that help: -W options, saturation warnings with calibration evidence, layout and spelling hints,
an example in every --help, and TensorFlow kept quiet."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.cli import build_parser, main
from nndsl.clidoc import _subcommands
from nndsl.diagnostics import Diagnostic, Severity, WarningFlag, WarningPolicy
from tests.conftest import DATA, EXAMPLES

MLP = EXAMPLES / "mlp" / "mlp.nn"
CALIBRATION = DATA / "mlp" / "x_calib.npy"


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -- -W options --------------------------------------------------------------------------------------------------


def _warning(flag: WarningFlag) -> Diagnostic:
    return Diagnostic(Severity.WARNING, "m", None, flag=flag)


@pytest.mark.parametrize(("options", "saturation", "unused"), [
    ([], "warning", "warning"),
    (["no-saturation"], None, "warning"),
    (["error"], "error", "error"),
    (["error=saturation"], "error", "warning"),
    (["error", "no-error=unused"], "error", "warning"),
    (["no-saturation", "saturation"], "warning", "warning"),
    (["error=saturation", "no-saturation"], None, "warning"),
    (["error", "no-error"], "warning", "warning"),
])
def test_warning_options_read_as_gcc_reads_them(options: list[str], saturation: str | None,
                                                 unused: str | None) -> None:
    shown = WarningPolicy.parse(options).apply([_warning(WarningFlag.SATURATION), _warning(WarningFlag.UNUSED)])
    by_flag = {d.flag: d.severity.value for d in shown}
    assert by_flag.get(WarningFlag.SATURATION) == saturation and by_flag.get(WarningFlag.UNUSED) == unused


def test_a_warning_names_its_option() -> None:
    assert _warning(WarningFlag.SATURATION).format() == "nndsl: warning: m [-Wsaturation]"
    error = WarningPolicy.parse(["error"]).apply([_warning(WarningFlag.UNUSED)])[0]
    assert error.format() == "nndsl: error: m [-Werror=unused]"


def test_check_warns_of_a_worst_case_bound(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "check", MLP)
    assert code == 0 and "ok" in out
    assert f"{MLP}:15:11: warning: 'hidden1' saturates" in err
    assert "the worst case over all inputs its type allows" in err and err.count("[-Wsaturation]") == 3


def test_check_with_calibration_data_says_how_often_it_is_reached(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "check", MLP, "--calibrate", CALIBRATION)
    assert code == 0
    assert re.search(r"'hidden1' saturates: .* the 200 calibration inputs reach it: 0\.02% of its values are at the "
                     r"clipping limit, in 1 of them \[-Wsaturation\]", err), err


def test_calibration_data_that_never_reaches_the_limit() -> None:
    model = nndsl.load(MLP)
    quiet = np.zeros((5, 64), np.float32)  # all-zero pixels stay far from every limit
    warnings = model.range_warnings(quiet)
    assert warnings and all("the 5 calibration inputs never reach the clipping limit" in w.message for w in warnings)
    assert model.range_warnings(model.quantize(quiet)) == warnings  # quantised inputs say the same


def test_werror_fails_check_and_wno_silences_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "check", MLP, "-Werror=saturation")
    assert code == 1 and out == ""
    assert "error: 'hidden1' saturates" in err and "[-Werror=saturation]" in err
    code, out, err = cli(capsys, "check", MLP, "-Wno-saturation")
    assert (code, err) == (0, "") and "ok" in out


def _unused_model(folder: Path) -> Path:
    path = folder / "u.nn"
    path.write_text("network u\ninput x : f32[4]\nspare = relu(x)\noutput y = relu(x)\n")
    return path


def test_werror_stops_build_before_it_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _unused_model(tmp_path)
    code, _, err = cli(capsys, "build", model, "-o", tmp_path / "out", "-Werror")
    assert code == 1 and f"{model}:3:1: error: 'spare' is computed but never used" in err and "[-Werror=unused]" in err
    assert not (tmp_path / "out").exists()
    code, _, err = cli(capsys, "build", model, "-o", tmp_path / "out", "-q")
    assert code == 0 and "warning: 'spare'" in err and "[-Wunused]" in err


def test_summarize_takes_warning_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _unused_model(tmp_path)
    code, out, err = cli(capsys, "summarize", model, "-Wno-unused")
    assert (code, err) == (0, "") and "network u" in out
    code, out, err = cli(capsys, "summarize", model, "-Werror=unused")
    assert code == 1 and "error: 'spare'" in err and out == ""


def test_run_takes_warning_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _unused_model(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    code, out, err = cli(capsys, "run", model, "--input", tmp_path / "x.npy", "-Wno-unused")
    assert (code, err) == (0, "") and out
    code, out, err = cli(capsys, "run", model, "--input", tmp_path / "x.npy", "-Werror")
    assert code == 1 and "error: 'spare'" in err and out == ""


def test_an_unknown_warning_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(MLP), "-Wno-saturaton"])
    assert exit_.value.code == 2
    assert "unknown warning option '-Wno-saturaton'; did you mean '-Wno-saturation'?" in capsys.readouterr().err


# -- hints -------------------------------------------------------------------------------------------------------


def test_a_pytorch_conv_kernel_gets_a_transpose_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "w.npz", k=np.ones((8, 1, 3, 3), np.float32))
    path = tmp_path / "c.nn"
    path.write_text('network c\nweights "w.npz"\ninput x : f32[8, 8, 1]\noutput y = conv2d(x, k)\n')
    code, _, err = cli(capsys, "check", path)
    assert code == 1 and "Traceback" not in err
    assert f"{path}:4:22: error: conv2d kernel 'k' [8, 1, 3, 3] takes 3 input channels, but 'x' has 1" in err
    assert "transposed it would fit: numpy.transpose(kernel, (2, 3, 1, 0)) is [3, 3, 1, 8]" in err


@pytest.mark.parametrize(("op", "shape", "kernel", "hint"), [
    ("dense", (1352,), (10, 1352), "kernel.T is [1352, 10]"),
    ("depthwise_conv1d", (16, 4), (4, 1, 3), "numpy.transpose(kernel, (2, 0, 1)) is [3, 4, 1]"),
    ("depthwise_conv2d", (8, 8, 4), (4, 1, 3, 3), "numpy.transpose(kernel, (2, 3, 0, 1)) is [3, 3, 4, 1]"),
])
def test_transposed_layouts_are_named(op: str, shape: tuple[int, ...], kernel: tuple[int, ...], hint: str) -> None:
    net = nndsl.Network("t")
    net.layer(op, net.input("x", "f32", shape), kernel=np.ones(kernel, np.float32), output=True)
    with pytest.raises(nndsl.NNError, match=re.escape(hint)):
        net.model()


def test_no_hint_when_no_transpose_fits() -> None:
    net = nndsl.Network("t")
    net.dense(net.input("x", "f32", (5,)), kernel=np.ones((3, 4), np.float32), output=True)
    with pytest.raises(nndsl.NNError) as caught:
        net.model()
    assert "transposed" not in str(caught.value)


@pytest.mark.parametrize(("layer", "message"), [
    ("conv1d(x, k, strides=2)", "'conv1d' has no attribute 'strides'; did you mean 'stride'? (attributes: stride"),
    ("conv1d(x, k, paddding=same)", "did you mean 'padding'?"),
    ("conv1d(x, k) -> rleu", "unknown activation 'rleu' (fusable: relu, relu6); did you mean 'relu'?"),
    ("conv1dd(x, k)", "unknown operator 'conv1dd'; did you mean 'conv1d'?"),
])
def test_misspelt_names_get_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str], layer: str,
                                         message: str) -> None:
    np.savez(tmp_path / "w.npz", k=np.ones((3, 2, 4), np.float32))
    path = tmp_path / "m.nn"
    path.write_text(f'network m\nweights "w.npz"\ninput x : f32[16, 2]\noutput y = {layer}\n')
    code, _, err = cli(capsys, "check", path)
    assert code == 1 and f"{path}:4:" in err and message in err, err


# -- help and import output ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", *sorted(_subcommands(build_parser()))])
def test_every_help_shows_an_example_that_parses(name: str) -> None:
    command = _subcommands(build_parser())[name] if name else build_parser()
    assert command.epilog and command.epilog.startswith("example: nndsl ") and command.epilog in " ".join(
        command.format_help().split()), f"nndsl {name} --help has no example"
    words = shlex.split(command.epilog.removeprefix("example: "))
    assert not name or words[1] == name
    build_parser().parse_args(words[1:])  # the example uses only options that exist


# What TensorFlow, absl, XLA, oneDNN and CUDA print when left alone.
TENSORFLOW_NOISE = re.compile(r"absl|oneDNN|onednn|cuda|cuDNN|TF_ENABLE|tensorflow/|^[IWE]\d{4} |XLA|"
                              r"To enable the following instructions|Could not find TensorRT", re.MULTILINE)


@pytest.mark.tensorflow
def test_import_prints_nothing_of_tensorflow(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "nndsl", "import", str(DATA / "mlp" / "model.keras"), "--calibrate",
                             str(CALIBRATION), "-o", str(tmp_path / "m.nn")], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and TENSORFLOW_NOISE.search(result.stdout) is None, result.stdout + result.stderr
    assert result.stdout.startswith(f"{tmp_path / 'm.nn'}: 4 layers")
