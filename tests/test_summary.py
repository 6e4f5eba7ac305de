"""`nndsl summarize` numbers against hand-computed values, and the device budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nndsl
from nndsl.diagnostics import NNError


def small_model(folder: Path, target: str) -> Path:
    """dense 10 -> 4 (int8, one kernel scale) -> softmax."""
    np.savez(folder / "w.npz", **{"fc.kernel": np.ones((10, 4), np.int8), "fc.kernel.scale": np.float32(0.01),
                                  "fc.bias": np.zeros(4, np.int32)})
    path = folder / "s.nn"
    path.write_text(f"""network s
{target}
weights "w.npz"
input x : i8[10] @ scale(0.02) zero(0)
logits = dense(x, fc.kernel, fc.bias) : i8 @ scale(0.1) zero(0)
output p = softmax(logits)
""")
    return path


def test_summarize_json_matches_hand_computed_values(tmp_path: Path) -> None:
    path = small_model(tmp_path, "target cortex_m0")
    result = subprocess.run([sys.executable, "-m", "nndsl", "summarize", "--json", str(path)], check=True,
                            capture_output=True, text=True)
    data = json.loads(result.stdout)
    # Hand-computed: 10x4 int8 kernel + 4 int32 biases; 40 MACs; only 'logits' (4 bytes) lives in the arena,
    # 'p' is written straight to the caller's output. Cortex-M0 at 48 MHz, 10 cycles per int8 MAC.
    assert data["params"] == 44
    assert data["weight_bytes"] == 40 + 4 * 4
    assert data["macs"] == 40
    assert data["arena_bytes"] == 4
    # Code estimate: entry 128 + dense 160 + softmax 120 + requantisation 160 + matrix kernel 850 + int8 softmax
    # runtime 720 (scale 0.1: 249 differences to exponentiate, a table larger than the code that computes them).
    assert data["code_bytes_estimate"] == 128 + 160 + 120 + 160 + 850 + 720
    assert data["flash_bytes"] == 56 + 2138
    assert data["cycles"] == 400
    assert data["latency_ms"] == pytest.approx(400 / 48e6 * 1e3)
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["logits"]["macs"] == 40 and layers["logits"]["arena_bytes"] == 4
    assert layers["logits"]["latency_ms"] == pytest.approx(400 / 48e6 * 1e3)
    assert layers["p"]["arena_bytes"] == 0
    assert data["target"] == {
        "name": "cortex_m0", "ram_bytes": 32 * 1024, "flash_bytes": 256 * 1024, "clock_hz": 48e6,
        "latency_budget_ms": None, "cycles_per_mac": 10.0, "fits_ram": True, "fits_flash": True,
        "fits_latency": True, "fits": True,
    }


@pytest.mark.parametrize("block, message", [
    ("{ flash = 1 KiB }", "model needs 2194 bytes of flash (56 of weights + about 2138 of code), target 'cortex_m0' "
                          "has 1024"),
    ("{ ram = 2 B }", "model needs 4 bytes of RAM for its arena, target 'cortex_m0' has 2"),
    ("{ latency <= 5 us }", "estimated latency 0.00833 ms (40 MACs x 10 cycles at 48 MHz) exceeds the budget of "
                            "0.005 ms"),
])
def test_budget_errors(tmp_path: Path, block: str, message: str) -> None:
    with pytest.raises(NNError) as raised:
        nndsl.load(small_model(tmp_path, f"target cortex_m0 {block}"))
    (error,) = raised.value.diagnostics
    assert error.loc is not None and error.loc.line == 2
    assert message in error.message


def test_the_examples_fit_their_targets() -> None:
    for name in ("mlp", "hotword", "conv1d"):
        summary = nndsl.load(Path(__file__).parent.parent / "examples" / name / f"{name}.nn").summary()
        assert summary.target is not None and summary.target.fits, name
