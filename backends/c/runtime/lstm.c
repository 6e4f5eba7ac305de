/* TensorFlow Lite Micro's integer 8x8->16 UNIDIRECTIONAL_SEQUENCE_LSTM:
 * mirrors nndsl/qmath/lstm.py (lstm_s8, lstm_s8_step). Needs requant.c and
 * activations.c compiled with NN_USE_TANH_S16 and NN_USE_LOGISTIC_S16 (the
 * gate activations are TFLM's int16 kernels).
 * Compiled only under NN_USE_LSTM_S8; the float kernel (lstm_f32, <math.h>)
 * under NN_USE_LSTM_F32.
 *
 * The state is the caller's: hidden (int8 [units]) and cell (int16 [units])
 * are read at the first step and hold the final state on return, so a caller
 * starting every call from zero resets them first (the reset function below), and one
 * keeping state between calls simply does not. gates (int16 [4 * units]) is
 * scratch. int32 sums wrap through uint32_t, as the Python wraps. */

#ifdef NN_USE_LSTM_S8

/* the multipliers and shifts of LstmS8Params, one per gate column (4 * units) */
typedef struct {
    const int32_t *input_multipliers;
    const int32_t *input_shifts;
    const int32_t *recurrent_multipliers;
    const int32_t *recurrent_shifts;
} nn_lstm_columns;

/* the scalar fields of LstmS8Params, with cell_tanh's multiplier and shift */
typedef struct {
    int32_t input_offset;
    int32_t hidden_offset;
    int32_t cell_tanh_multiplier;
    int32_t cell_tanh_shift;
    int32_t cell_clip;
    int32_t forget_multiplier;
    int32_t forget_shift;
    int32_t update_multiplier;
    int32_t update_shift;
    int32_t hidden_multiplier;
    int32_t hidden_shift;
    int32_t output_zero_point;
} nn_lstm_params;

static int32_t nn_lstm_sat16(int32_t x)
{
    return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

/* zero_state_s8: h at the output zero point (real 0), c at 0 (TFLM's variable tensor reset) */
static void nn_lstm_s8_reset(int8_t *hidden, int16_t *cell, int32_t units, int32_t output_zero_point)
{
    int32_t u;
    for (u = 0; u < units; ++u) {
        hidden[u] = (int8_t)output_zero_point;
        cell[u] = 0;
    }
}

/* _fc16: one gate column of TFLM's int8 -> int16 FullyConnected (output zero point 0) */
static int32_t nn_lstm_fc16(const int8_t *x, int32_t offset, int32_t size, const int8_t *weights, int32_t stride,
                            int32_t bias, int32_t multiplier, int32_t shift)
{
    uint32_t acc = (uint32_t)bias;
    int32_t k;
    for (k = 0; k < size; ++k) {
        acc += (uint32_t)(((int32_t)x[k] + offset) * (int32_t)weights[k * stride]);
    }
    return nn_lstm_sat16(nn_mbqm((int32_t)acc, multiplier, shift));
}

/* _mul: MulElementwise of two symmetric int16 values, offset and clamped */
static int32_t nn_lstm_mul(int32_t a, int32_t b, int32_t multiplier, int32_t shift, int32_t offset, int32_t low,
                           int32_t high)
{
    const int32_t value = (int32_t)((uint32_t)nn_mbqm(a * b, multiplier, shift) + (uint32_t)offset);
    return value > high ? high : value < low ? low : value;
}

/* lstm_s8_step: the four gates from x and the old h, then c, then h */
static void nn_lstm_s8_step(const int8_t *x, int32_t features, int32_t units, const int8_t *kernel,
                            const int8_t *recurrent, const int32_t *bias, const nn_lstm_columns *columns,
                            const nn_lstm_params *p, int8_t *hidden, int16_t *cell, int16_t *gates)
{
    const int32_t width = 4 * units;
    int32_t j;
    int32_t u;
    for (j = 0; j < width; ++j) {
        const int32_t from_input = nn_lstm_fc16(x, p->input_offset, features, kernel + j, width,
                                                bias != NULL ? bias[j] : 0, columns->input_multipliers[j],
                                                columns->input_shifts[j]);
        const int32_t from_hidden = nn_lstm_fc16(hidden, p->hidden_offset, units, recurrent + j, width, 0,
                                                 columns->recurrent_multipliers[j], columns->recurrent_shifts[j]);
        gates[j] = (int16_t)nn_lstm_sat16(from_input + from_hidden);
    }
    nn_logistic_s16(gates, gates, 2 * units, 0, 0);              /* input, forget */
    nn_tanh_s16(gates + 2 * units, gates + 2 * units, units, 0, 0); /* cell: Q3.12 */
    nn_logistic_s16(gates + 3 * units, gates + 3 * units, units, 0, 0); /* output */
    for (u = 0; u < units; ++u) {
        const int32_t kept = nn_lstm_mul(gates[units + u], cell[u], p->forget_multiplier, p->forget_shift, 0,
                                         -32768, 32767);
        const int32_t added = nn_lstm_mul(gates[u], gates[2 * units + u], p->update_multiplier, p->update_shift,
                                          0, -32768, 32767);
        int32_t c = nn_lstm_sat16(kept + added);
        int16_t c16;
        int16_t squashed;
        if (p->cell_clip > 0) {
            c = c > p->cell_clip ? p->cell_clip : c < -p->cell_clip ? -p->cell_clip : c;
        }
        c16 = (int16_t)c;
        cell[u] = c16;
        nn_tanh_s16(&c16, &squashed, 1, p->cell_tanh_multiplier, p->cell_tanh_shift);
        hidden[u] = (int8_t)nn_lstm_mul(squashed, gates[3 * units + u], p->hidden_multiplier, p->hidden_shift,
                                        p->output_zero_point, -128, 127);
    }
}

/* lstm_s8: x [steps, features] -> out [steps, units] (every step's h) or [units] (the last) */
static void nn_lstm_s8(const int8_t *x, int8_t *out, int32_t steps, int32_t features, int32_t units,
                       const int8_t *kernel, const int8_t *recurrent, const int32_t *bias,
                       const nn_lstm_columns *columns, const nn_lstm_params *p, int return_sequences,
                       int8_t *hidden, int16_t *cell, int16_t *gates)
{
    int32_t t;
    for (t = 0; t < steps; ++t) {
        nn_lstm_s8_step(x + t * features, features, units, kernel, recurrent, bias, columns, p, hidden, cell, gates);
        if (return_sequences) {
            memcpy(out + t * units, hidden, (size_t)units);
        }
    }
    if (!return_sequences) {
        memcpy(out, hidden, (size_t)units);
    }
}

#endif /* NN_USE_LSTM_S8 */

#ifdef NN_USE_LSTM_F32

/* lstm_f32: the same steps in float: FC(x) + b + FC(h), sigmoid, tanh, the cell clipped when cell_clip > 0.
 * hidden and cell [units] are the caller's state (zero them to start from TFLM's reset); gates [4 * units]. */
static void nn_lstm_f32(const float *x, float *out, int32_t steps, int32_t features, int32_t units,
                        const float *kernel, const float *recurrent, const float *bias, float cell_clip,
                        int return_sequences, float *hidden, float *cell, float *gates)
{
    const int32_t width = 4 * units;
    int32_t t;
    for (t = 0; t < steps; ++t) {
        const float *xt = x + t * features;
        int32_t j;
        int32_t u;
        for (j = 0; j < width; ++j) {
            float from_input = 0.0f;
            float from_hidden = 0.0f;
            int32_t k;
            for (k = 0; k < features; ++k) {
                from_input += xt[k] * kernel[k * width + j];
            }
            for (k = 0; k < units; ++k) {
                from_hidden += hidden[k] * recurrent[k * width + j];
            }
            gates[j] = (from_input + (bias != NULL ? bias[j] : 0.0f)) + from_hidden;
        }
        for (u = 0; u < units; ++u) {
            const float i = 1.0f / (1.0f + expf(-gates[u]));
            const float f = 1.0f / (1.0f + expf(-gates[units + u]));
            const float o = 1.0f / (1.0f + expf(-gates[3 * units + u]));
            float c = f * cell[u] + i * tanhf(gates[2 * units + u]);
            if (cell_clip > 0.0f) {
                c = c > cell_clip ? cell_clip : c < -cell_clip ? -cell_clip : c;
            }
            cell[u] = c;
            hidden[u] = tanhf(c) * o;
        }
        if (return_sequences) {
            memcpy(out + t * units, hidden, sizeof *out * (size_t)units);
        }
    }
    if (!return_sequences) {
        memcpy(out, hidden, sizeof *out * (size_t)units);
    }
}

#endif /* NN_USE_LSTM_F32 */
