/* The GRU layer (Keras GRU semantics) in float32 and in power-of-two fixed
 * point: mirrors nndsl/qmath/gru.py. Weights are laid out per gate unit:
 * kernel [3U][F] and recurrent [3U][U] (rows in the gates' order z, r, h),
 * bias [2][3U] (input, then recurrent biases). The caller owns the state h
 * (units values, read and updated: a static array for a stateful network, a
 * zeroed stack array otherwise) and the work array. Each kernel is compiled
 * only under its NN_USE_GRU_ macro. */

#ifdef NN_USE_GRU_F32

static float nn_gru_sigmoid_f32(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

static float nn_gru_dot_f32(const float *w, const float *v, int32_t n, float sum)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        sum += w[i] * v[i];
    }
    return sum;
}

/* gru_f32: steps x features inputs to steps x units outputs (sequences) or
 * the last units; work holds 4 * units floats. Unit j's new state is written
 * over h[j] once every sum that reads the old h is done (each unit's update
 * reads only its own old value). */
static void nn_gru_f32(const float *in, float *out, float *h, float *work, const float *kernel,
                       const float *recurrent, const float *bias, int32_t steps, int32_t features, int32_t units,
                       int32_t sequences, int32_t reset_after)
{
    float *mh = work;               /* h U + c, per gate unit */
    float *rh = work + 3 * units;   /* r (reset_after) or r * h */
    const float *recurrent_bias = bias + 3 * units;
    const int32_t gates = reset_after ? 3 * units : 2 * units;
    int32_t t, g, j;
    for (t = 0; t < steps; ++t) {
        const float *x = in + t * features;
        for (g = 0; g < gates; ++g) {
            mh[g] = nn_gru_dot_f32(recurrent + g * units, h, units, recurrent_bias[g]);
        }
        for (j = 0; j < units; ++j) {
            const int32_t u = units + j;
            const float r = nn_gru_sigmoid_f32(nn_gru_dot_f32(kernel + u * features, x, features, bias[u]) + mh[u]);
            rh[j] = reset_after ? r : r * h[j];
        }
        for (j = 0; j < units; ++j) {
            const int32_t c = 2 * units + j;
            const float z = nn_gru_sigmoid_f32(nn_gru_dot_f32(kernel + j * features, x, features, bias[j]) + mh[j]);
            const float candidate = reset_after ? rh[j] * mh[c] : nn_gru_dot_f32(recurrent + c * units, rh, units, 0.0f);
            const float hh = tanhf(nn_gru_dot_f32(kernel + c * features, x, features, bias[c]) + candidate);
            h[j] = z * h[j] + (1.0f - z) * hh;
        }
        if (sequences) {
            memcpy(out + t * units, h, sizeof(*h) * (size_t)units);
        }
    }
    if (!sequences) {
        memcpy(out, h, sizeof(*h) * (size_t)units);
    }
}

#endif /* NN_USE_GRU_F32 */

#ifdef NN_USE_GRU_Q

/* one value of an int8 (width 1) or int16 (width 2) array */
static int32_t nn_gru_load(const void *data, int32_t width, int32_t k)
{
    return width == 2 ? (int32_t)((const int16_t *)data)[k] : (int32_t)((const int8_t *)data)[k];
}

static void nn_gru_store(void *data, int32_t width, int32_t k, int32_t value)
{
    if (width == 2) {
        ((int16_t *)data)[k] = (int16_t)value;
    } else {
        ((int8_t *)data)[k] = (int8_t)value;
    }
}

/* x / 2^exponent rounded half away from zero (RoundingDivideByPOT on int64; exponent 0: x) */
static int64_t nn_gru_rdbpot64(int64_t x, int32_t exponent)
{
    const int64_t half = ((int64_t)1 << exponent) >> 1;
    return (x + half - (x < 0 && half > 0 ? 1 : 0)) >> exponent;
}

/* an exact left shift of a signed value (a product: shifting a negative value left is undefined in C) */
static int64_t nn_gru_align(int64_t x, int32_t left)
{
    return x * ((int64_t)1 << left);
}

/* init + sum_i w[row + i] * v[at + i], int8/int16 values of both */
static int64_t nn_gru_dot_q(const void *w, int32_t w_width, int32_t row, const void *v, int32_t v_width, int32_t at,
                            int32_t n, int64_t init)
{
    int64_t sum = init;
    int32_t i;
    for (i = 0; i < n; ++i) {
        sum += (int64_t)nn_gru_load(w, w_width, row + i) * nn_gru_load(v, v_width, at + i);
    }
    return sum;
}

static int64_t nn_gru_dot_q64(const void *w, int32_t w_width, int32_t row, const int64_t *v, int32_t n)
{
    int64_t sum = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        sum += (int64_t)nn_gru_load(w, w_width, row + i) * v[i];
    }
    return sum;
}

/* an aligned pre-activation sum to q4.11, saturated to int16 */
static int32_t nn_gru_gate_input(int64_t total, int32_t gate_shift)
{
    const int64_t v = nn_gru_rdbpot64(total, gate_shift);
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : (int32_t)v);
}

/* gru_q: steps x features qM.N inputs (in_width bytes each) to steps x units
 * outputs (sequences) or the last units, in the state's format (out_width
 * bytes); the state h in that format. work holds 5 * units int64 values. The
 * sigmoid and tanh (q4.11 to Q15) are runtime/fixed_functions.c's
 * nn_function_q with their tables. */
static void nn_gru_q(const void *in, void *out, void *h, int64_t *work, const void *kernel, const void *recurrent,
                     const int64_t *bias, int32_t steps, int32_t features, int32_t units, int32_t sequences,
                     int32_t reset_after, int32_t in_width, int32_t kernel_width, int32_t recurrent_width,
                     int32_t out_width, int32_t left_x, int32_t left_h, int32_t gate_shift, int32_t out_shift,
                     int32_t out_min, int32_t out_max, int32_t s_step, int32_t s_extra, int32_t s_reflect,
                     int32_t s_last, int32_t s_min, int32_t s_max, const int32_t *s_table, int32_t t_step,
                     int32_t t_extra, int32_t t_reflect, int32_t t_last, int32_t t_min, int32_t t_max,
                     const int32_t *t_table)
{
    int64_t *mh = work;               /* h15 U + c, per gate unit */
    int64_t *rh = work + 3 * units;   /* r (reset_after) or r * h15 in Q15 */
    int64_t *h15 = work + 4 * units;  /* the state in Q15, then each unit's new state */
    const int64_t *recurrent_bias = bias + 3 * units;
    const int32_t gates = reset_after ? 3 * units : 2 * units;
    int32_t t, g, j;
    for (t = 0; t < steps; ++t) {
        const int32_t x = t * features;
        for (j = 0; j < units; ++j) {
            h15[j] = nn_gru_align(nn_gru_load(h, out_width, j), out_shift);
        }
        for (g = 0; g < gates; ++g) {
            mh[g] = nn_gru_dot_q64(recurrent, recurrent_width, g * units, h15, units) + recurrent_bias[g];
        }
        for (j = 0; j < units; ++j) {
            const int32_t u = units + j;
            const int64_t sum = nn_gru_align(nn_gru_dot_q(kernel, kernel_width, u * features, in, in_width, x, features,
                                                          bias[u]), left_x) + nn_gru_align(mh[u], left_h);
            const int32_t r = nn_function_q(nn_gru_gate_input(sum, gate_shift), s_step, s_extra, s_reflect, s_last,
                                            s_min, s_max, s_table);
            rh[j] = reset_after ? r : nn_gru_rdbpot64((int64_t)r * h15[j], 15);
        }
        for (j = 0; j < units; ++j) {
            const int32_t c = 2 * units + j;
            const int64_t zx = nn_gru_dot_q(kernel, kernel_width, j * features, in, in_width, x, features, bias[j]);
            const int64_t hx = nn_gru_dot_q(kernel, kernel_width, c * features, in, in_width, x, features, bias[c]);
            const int32_t z = nn_function_q(nn_gru_gate_input(nn_gru_align(zx, left_x) + nn_gru_align(mh[j], left_h),
                                                              gate_shift),
                                            s_step, s_extra, s_reflect, s_last, s_min, s_max, s_table);
            int64_t candidate;
            int32_t hh;
            int64_t next;
            if (reset_after) {
                candidate = nn_gru_align(nn_gru_rdbpot64(rh[j] * mh[c], 15), left_h);
            } else {
                candidate = nn_gru_align(nn_gru_dot_q64(recurrent, recurrent_width, c * units, rh, units), left_h);
            }
            hh = nn_function_q(nn_gru_gate_input(nn_gru_align(hx, left_x) + candidate, gate_shift), t_step, t_extra,
                               t_reflect, t_last, t_min, t_max, t_table);
            next = nn_gru_rdbpot64(hh + nn_gru_rdbpot64((int64_t)z * (h15[j] - hh), 15), out_shift);
            h15[j] = next < out_min ? out_min : (next > out_max ? out_max : next); /* only unit j reads h15[j] */
        }
        for (j = 0; j < units; ++j) {
            nn_gru_store(h, out_width, j, (int32_t)h15[j]);
            if (sequences) {
                nn_gru_store(out, out_width, t * units + j, (int32_t)h15[j]);
            }
        }
    }
    if (!sequences) {
        for (j = 0; j < units; ++j) {
            nn_gru_store(out, out_width, j, nn_gru_load(h, out_width, j));
        }
    }
}

#endif /* NN_USE_GRU_Q */
