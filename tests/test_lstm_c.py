"""``backends/c/runtime/lstm.c`` against ``nndsl.qmath.lstm.lstm_s8``: equal bytes, under ASan and UBSan.

The cases are the TFLM grid's models (``tests/lstm_models.py``, quantised
without TensorFlow) on random int8 sequences, with and without every step's
output, and with a state carried from one call to the next to show that
``hidden`` and ``cell`` are the caller's buffers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nndsl.qmath.lstm import LstmS8Params, LstmState, lstm_s8, lstm_s8_params, zero_state_s8
from tests.c_harness import build_harness, find_compiler, run_harness
from tests.lstm_models import LstmSpec, quantize

SPECS = [LstmSpec(5, 3, 4, 1), LstmSpec(7, 6, 8, 2, cell_clip=0.5), LstmSpec(4, 2, 3, 3, weight_gain=3.0),
         LstmSpec(6, 4, 1, 4), LstmSpec(3, 5, 2, 5, cell_clip=0.25, weight_gain=4.0)]
SEQUENCES = 12

# Per case: steps, features, units, sequences, return_sequences, carry (the state kept across the sequences),
# has_bias, the 12 scalar parameters, then kernel, recurrent, bias and the four column arrays, then the inputs
# (all int32). Back: each sequence's outputs, then the final hidden and cell state (int32).
# run_cases: each case in turn (run_case reads one and writes its outputs), stopping at the first failure.
EACH_CASE = r"""
static int run_cases(FILE *fin, FILE *fout, int32_t count)
{
    int32_t k;
    for (k = 0; k < count; ++k) {
        const int status = run_case(fin, fout);
        if (status != 0) {
            return status;
        }
    }
    return 0;
}
"""
RUN_CASES = r"""
static int read_all(FILE *f, int32_t *values, int32_t count)
{
    return fread(values, sizeof *values, (size_t)count, f) == (size_t)count;
}

static int run_case(FILE *fin, FILE *fout)
{
    int32_t head[7];
    int32_t s[12];
    int32_t *raw;
    int32_t steps, features, units, width, sequences, n, k, total, out_size;
    int8_t *kernel, *recurrent, *x, *out, *hidden;
    int32_t *bias, *columns_data;
    int16_t *cell, *gates;
    nn_lstm_columns columns;
    nn_lstm_params p;
    if (!read_all(fin, head, 7) || !read_all(fin, s, 12)) {
        return 4;
    }
    steps = head[0]; features = head[1]; units = head[2]; sequences = head[3];
    width = 4 * units;
    total = features * width + units * width + width + 4 * width + sequences * steps * features;
    raw = (int32_t *)malloc(sizeof *raw * (size_t)total);
    kernel = (int8_t *)malloc((size_t)(features * width));
    recurrent = (int8_t *)malloc((size_t)(units * width));
    bias = (int32_t *)malloc(sizeof *bias * (size_t)width);
    columns_data = (int32_t *)malloc(sizeof *columns_data * (size_t)(4 * width));
    x = (int8_t *)malloc((size_t)(sequences * steps * features));
    out_size = head[4] ? steps * units : units;
    out = (int8_t *)malloc((size_t)out_size);
    hidden = (int8_t *)malloc((size_t)units);
    cell = (int16_t *)malloc(sizeof *cell * (size_t)units);
    gates = (int16_t *)malloc(sizeof *gates * (size_t)width);
    if (raw == NULL || kernel == NULL || recurrent == NULL || bias == NULL || columns_data == NULL || x == NULL ||
        out == NULL || hidden == NULL || cell == NULL || gates == NULL || !read_all(fin, raw, total)) {
        return 4;
    }
    n = 0;
    for (k = 0; k < features * width; ++k) kernel[k] = (int8_t)raw[n++];
    for (k = 0; k < units * width; ++k) recurrent[k] = (int8_t)raw[n++];
    for (k = 0; k < width; ++k) bias[k] = raw[n++];
    for (k = 0; k < 4 * width; ++k) columns_data[k] = raw[n++];
    for (k = 0; k < sequences * steps * features; ++k) x[k] = (int8_t)raw[n++];
    columns.input_multipliers = columns_data;
    columns.input_shifts = columns_data + width;
    columns.recurrent_multipliers = columns_data + 2 * width;
    columns.recurrent_shifts = columns_data + 3 * width;
    p.input_offset = s[0]; p.hidden_offset = s[1]; p.cell_tanh_multiplier = s[2]; p.cell_tanh_shift = s[3];
    p.cell_clip = s[4]; p.forget_multiplier = s[5]; p.forget_shift = s[6]; p.update_multiplier = s[7];
    p.update_shift = s[8]; p.hidden_multiplier = s[9]; p.hidden_shift = s[10]; p.output_zero_point = s[11];
    nn_lstm_s8_reset(hidden, cell, units, p.output_zero_point);
    for (k = 0; k < sequences; ++k) {
        int32_t j;
        if (!head[5]) {
            nn_lstm_s8_reset(hidden, cell, units, p.output_zero_point);
        }
        memset(gates, 0x55, sizeof *gates * (size_t)width);
        nn_lstm_s8(x + k * steps * features, out, steps, features, units, kernel, recurrent,
                   head[6] ? bias : NULL, &columns, &p, head[4], hidden, cell, gates);
        for (j = 0; j < out_size; ++j) {
            const int32_t value = out[j];
            if (fwrite(&value, sizeof value, 1, fout) != 1) return 6;
        }
    }
    for (k = 0; k < units; ++k) {
        const int32_t h = hidden[k], c = cell[k];
        if (fwrite(&h, sizeof h, 1, fout) != 1 || fwrite(&c, sizeof c, 1, fout) != 1) return 6;
    }
    free(gates); free(cell); free(hidden); free(out); free(x); free(columns_data); free(bias); free(recurrent);
    free(kernel); free(raw);
    return 0;
}
"""


def _scalars(p: LstmS8Params) -> list[int]:
    tanh = p.cell_tanh
    return [p.input_offset, p.hidden_offset, tanh.input_multiplier, tanh.input_left_shift, p.cell_clip,
            p.forget_multiplier, p.forget_shift, p.update_multiplier, p.update_shift, p.hidden_multiplier,
            p.hidden_shift, p.output_zero_point]


def _case(spec: LstmSpec, *, sequences: bool, carry: bool, bias: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """The case's int32 words, and the outputs qmath gives (each sequence's, then the final h and c interleaved)."""
    q = quantize(spec, flatbuffer=False)
    p = lstm_s8_params(spec.units, q.input_quant, q.output_quant, q.kernel_scales, q.recurrent_scales,
                       q.cell_scale, spec.cell_clip)
    rng = np.random.default_rng(spec.seed + 5)
    x = rng.integers(-128, 128, (SEQUENCES, spec.steps, spec.features)).astype(np.int8)
    b = q.bias if bias else None
    state: LstmState = zero_state_s8((), spec.units, p.output_zero_point)
    outputs = []
    for sequence in x:
        ys, final = lstm_s8(sequence, q.kernel, q.recurrent, b, p, state if carry else None)
        state = final
        outputs.append(ys.ravel() if sequences else ys[-1])
    tail = np.stack([state.hidden.astype(np.int32), state.cell.astype(np.int32)], axis=1).ravel()
    head = [spec.steps, spec.features, spec.units, SEQUENCES, int(sequences), int(carry), int(bias), *_scalars(p)]
    words = [np.asarray(head), q.kernel.ravel(), q.recurrent.ravel(), q.bias, np.asarray(p.input_multipliers),
             np.asarray(p.input_shifts), np.asarray(p.recurrent_multipliers), np.asarray(p.recurrent_shifts),
             x.ravel()]
    return words, np.concatenate([*outputs, tail]).astype(np.int32)


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_lstm_c_equals_numpy(tmp_path: Path) -> None:
    cases = [_case(spec, sequences=k % 2 == 0, carry=k == 1, bias=k != 3) for k, spec in enumerate(SPECS)]
    binary = build_harness(tmp_path, ["requant.c", "activations.c", "lstm.c"], RUN_CASES + EACH_CASE,
                           macros=("NN_USE_TANH_S16", "NN_USE_LOGISTIC_S16", "NN_USE_LSTM_S8"))
    data = np.int32(len(cases)).tobytes() + b"".join(
        np.concatenate([w.astype(np.int32).ravel() for w in words]).tobytes() for words, _ in cases)
    got = np.frombuffer(run_harness(binary, data, tmp_path), dtype=np.int32)
    expected = np.concatenate([e for _, e in cases])
    assert got.shape == expected.shape
    assert np.count_nonzero(got != expected) == 0, f"{np.count_nonzero(got != expected)} of {got.size} differ"
    assert len(np.unique(expected)) > 50  # the outputs vary: the comparison can fail


# Per case: steps, features, units, sequences, return_sequences (int32), cell_clip, then kernel, recurrent, bias
# and the inputs (float32). Back: each sequence's outputs (float32), every sequence from the zero state.
RUN_CASES_F32 = r"""
static int run_case(FILE *fin, FILE *fout)
{
    int32_t head[5];
    float clip;
    int32_t steps, features, units, width, sequences, total, out_size, k;
    float *raw, *out, *hidden, *cell, *gates;
    for (k = 0; k < 5; ++k) {
        if (!read_i32(fin, &head[k])) return 4;
    }
    steps = head[0]; features = head[1]; units = head[2]; sequences = head[3];
    width = 4 * units;
    out_size = head[4] ? steps * units : units;
    total = features * width + units * width + width + sequences * steps * features;
    raw = (float *)malloc(sizeof *raw * (size_t)total);
    out = (float *)malloc(sizeof *out * (size_t)out_size);
    hidden = (float *)malloc(sizeof *hidden * (size_t)units);
    cell = (float *)malloc(sizeof *cell * (size_t)units);
    gates = (float *)malloc(sizeof *gates * (size_t)width);
    if (raw == NULL || out == NULL || hidden == NULL || cell == NULL || gates == NULL ||
        fread(&clip, sizeof clip, 1, fin) != 1 || fread(raw, sizeof *raw, (size_t)total, fin) != (size_t)total) {
        return 4;
    }
    for (k = 0; k < sequences; ++k) {
        const float *kernel = raw;
        const float *recurrent = kernel + features * width;
        const float *bias = recurrent + units * width;
        const float *x = bias + width + k * steps * features;
        memset(hidden, 0, sizeof *hidden * (size_t)units);
        memset(cell, 0, sizeof *cell * (size_t)units);
        nn_lstm_f32(x, out, steps, features, units, kernel, recurrent, bias, clip, head[4], hidden, cell, gates);
        if (fwrite(out, sizeof *out, (size_t)out_size, fout) != (size_t)out_size) return 6;
    }
    free(gates); free(cell); free(hidden); free(out); free(raw);
    return 0;
}
"""


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_lstm_f32_c_close_to_numpy(tmp_path: Path) -> None:
    from nndsl.qmath.lstm import lstm_f32

    data, expected = [np.int32(len(SPECS)).tobytes()], []
    for k, spec in enumerate(SPECS):
        sequences = k % 2 == 0
        x = spec.calibration(SEQUENCES)
        ys, _ = lstm_f32(x, spec.kernel, spec.recurrent, spec.bias, spec.cell_clip)
        expected.append((ys if sequences else ys[:, -1]).ravel())
        head = np.array([spec.steps, spec.features, spec.units, SEQUENCES, int(sequences)], dtype=np.int32)
        floats = [np.float32(spec.cell_clip).reshape(1), spec.kernel.ravel(), spec.recurrent.ravel(), spec.bias,
                  x.ravel()]
        data.append(head.tobytes() + np.concatenate(floats).astype(np.float32).tobytes())
    binary = build_harness(tmp_path, ["#include <math.h>", "lstm.c"], RUN_CASES_F32 + EACH_CASE,
                           macros=("NN_USE_LSTM_F32",))
    got = np.frombuffer(run_harness(binary, b"".join(data), tmp_path), dtype=np.float32)
    want = np.concatenate(expected)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.ptp(want) > 0.5  # the outputs vary: the comparison can fail
