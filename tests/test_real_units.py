"""Debugging in real units: float input quantised, real outputs, the trace's figures, the dump's files,
and summarize's table and errors over budget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.cli import main
from nndsl.layers import layer_stats, saturated_share
from tests.conftest import DATA, EXAMPLES

MLP = EXAMPLES / "mlp" / "mlp.nn"
HOTWORD = EXAMPLES / "hotword" / "hotword.nn"


def real_values(model: nndsl.Model, name: str, values: np.ndarray) -> np.ndarray:
    """scale * (q - zero_point), computed here from the tensor's type."""
    (tensor,) = [t for t in model.graph.tensors if t.name == name]
    quant = tensor.type.quant
    assert quant is not None
    return (values.astype(np.float64) - quant.zero_point) * quant.scale


def test_run_and_trace_take_real_input_and_give_real_values() -> None:
    model = nndsl.load(MLP)
    real, quantised = np.load(DATA / "mlp" / "x_test.npy")[:50], np.load(DATA / "mlp" / "x_test_int8.npy")[:50]
    assert np.array_equal(model.run(real, quantize=True), model.run(quantised))
    out = model.run(quantised)
    assert np.array_equal(model.run(quantised, real=True), real_values(model, "probs", out))
    trace = model.trace(quantised[0])
    assert list(trace) == ["pixels", "hidden1", "hidden2", "logits", "probs"]  # by name, input first, in order
    real_trace = model.trace(real[0], quantize=True, real=True)
    for name, values in trace.items():
        assert np.array_equal(real_trace[name], real_values(model, name, values)), name


def test_quantize_rounds_half_away_and_clamps() -> None:
    model = nndsl.load(MLP)
    quant = model.graph.input.type.quant
    assert quant is not None
    halves = (np.array([0.5, 1.5, -0.5, 1000.0, -1000.0]) * quant.scale).astype(np.float64)
    expected = np.clip(np.array([1, 2, -1, 10**6, -(10**6)]) + quant.zero_point, -128, 127)
    assert np.array_equal(model.quantize(np.broadcast_to(halves, (13, 5)).reshape(-1)[:64]),
                          np.resize(expected, 64).astype(np.int8))
    with pytest.raises(nndsl.InputError, match="NaN"):
        model.quantize(np.full(64, np.nan))


def test_cli_run_quantize_real_output(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.load(DATA / "mlp" / "x_test.npy")[:20])
    assert main(["run", str(MLP), "--input", str(tmp_path / "x.npy"), "--quantize", "--real",
                 "--output", str(tmp_path / "y.npy")]) == 0
    model = nndsl.load(MLP)
    expected = real_values(model, "probs", model.run(np.load(DATA / "mlp" / "x_test_int8.npy")[:20]))
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)


def test_float_input_without_quantize_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.load(DATA / "mlp" / "x_test.npy")[:2])
    assert main(["run", str(MLP), "--input", str(tmp_path / "x.npy")]) == 1
    assert "x.npy: error: input is float32, the model takes int8" in (err := capsys.readouterr().err)
    assert "--quantize" in err


def test_trace_prints_real_figures_and_saturation(capsys: pytest.CaptureFixture[str]) -> None:
    x = np.load(EXAMPLES / "hotword" / "inputs.npy")
    assert main(["run", str(HOTWORD), "--input", str(EXAMPLES / "hotword" / "inputs.npy"), "--trace"]) == 0
    printed = capsys.readouterr().out
    model = nndsl.load(HOTWORD)
    trace = model.trace(x)
    for name, values in trace.items():
        real = real_values(model, name, values)
        row = re.search(rf"^{name} +(\w+) +\w+ +\[[\d,]+\] +(\S+) +(\S+) +(\S+) +(\S+)%$", printed, re.MULTILINE)
        assert row is not None, (name, printed)
        assert [float(v) for v in row.groups()[1:4]] == pytest.approx([real.min(), real.max(), real.mean()],
                                                                       rel=1e-4, abs=1e-9)
    logits = trace["logits"]  # zero point 18: both limits are clipping
    share = float(np.mean((logits == -128) | (logits == 127)))
    assert share > 0
    stats = {s.name: s for s in layer_stats(model, trace)}
    assert stats["logits"].saturated == share
    assert stats["features"].saturated == float(np.mean(trace["features"] == 127))  # its floor -128 is real 0
    assert f"{share:.2%}" in printed


def test_saturated_share_ignores_a_limit_at_real_zero() -> None:
    model = nndsl.load(MLP)
    (hidden,) = [t for t in model.graph.tensors if t.name == "hidden1"]  # relu: zero point -128
    values = np.array([-128, -128, 0, 127], dtype=np.int8)
    assert saturated_share(hidden.type, values) == 0.25


def test_dump_writes_every_layer_integer_and_real(tmp_path: Path) -> None:
    x = np.load(EXAMPLES / "mlp" / "inputs.npy")[:3]
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(MLP), "--input", str(tmp_path / "x.npy"), "--dump", str(tmp_path / "layers")]) == 0
    model = nndsl.load(MLP)
    trace = model.trace(x)
    assert sorted(p.name for p in (tmp_path / "layers").iterdir()) == sorted(
        [f"{n}.npy" for n in trace] + [f"{n}.real.npy" for n in trace])
    for name, values in trace.items():
        assert np.array_equal(np.load(tmp_path / "layers" / f"{name}.npy"), values)
        assert np.array_equal(np.load(tmp_path / "layers" / f"{name}.real.npy"), real_values(model, name, values))


@pytest.fixture
def over_budget(tmp_path: Path) -> Path:
    text = (EXAMPLES / "mlp" / "mlp.nn").read_text()
    text = re.sub(r"target \w+( \{[^}]*\})?", "target efm32 { latency <= 1 us }", text, count=1)
    assert "latency <= 1 us" in text
    for name in ("mlp.npz",):
        (tmp_path / name).write_bytes((EXAMPLES / "mlp" / name).read_bytes())
    (tmp_path / "mlp.nn").write_text(text)
    return tmp_path / "mlp.nn"


def test_summarize_over_budget_prints_the_table_then_the_errors(over_budget: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", str(over_budget)]) == 1
    out = capsys.readouterr()
    assert "hidden1" in out.out and "DOES NOT FIT" in out.out and out.out.splitlines()[-1].startswith("target")
    assert re.search(r"mlp\.nn:\d+:\d+: error: estimated latency .* exceeds the budget of 0.001 ms", out.err)
    assert main(["summarize", "--json", str(over_budget)]) == 1
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["macs"] == 2720 and len(data["errors"]) == 1 and "exceeds the budget" in data["errors"][0]
    assert "exceeds the budget" in out.err
    with pytest.raises(nndsl.NNError, match="exceeds the budget"):  # every other command still refuses it
        nndsl.load(over_budget)


def test_summarize_within_budget_has_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", "--json", str(MLP)]) == 0
    assert json.loads(capsys.readouterr().out)["errors"] == []
