/* Power-of-two fixed point (q7, q15, qM.N) tanh, sigmoid and softmax: mirror
 * nndsl/qmath/fixed_functions.py. Needs requant.c (nn_rdbpot). The tables are
 * the caller's (the code generator emits them, made at build time, as static
 * const arrays). Each kernel is compiled only under its NN_USE_<OP>_Q macro.
 * Right shifts of negative int32 values are arithmetic, as everywhere in this
 * runtime (requant.c's nn_rdbpot). */

#ifdef NN_USE_FUNCTION_Q

/* function_q: tanh or sigmoid of one qM.N value. table[i] is the function at
 * |x| = i << step_shift (with extra_bits more fraction bits than the output),
 * non-decreasing, table[last] its value beyond; f(-x) = reflect - f(x). */
static int32_t nn_function_q(int32_t x, int32_t step_shift, int32_t extra_bits, int32_t reflect, int32_t last,
                             int32_t act_min, int32_t act_max, const int32_t *table)
{
    const int32_t magnitude = x < 0 ? -x : x;
    int32_t value;
    int32_t result;
    if (magnitude >= (last << step_shift)) {
        value = table[last];
    } else {
        const int32_t index = magnitude >> step_shift;
        const int32_t fraction = magnitude & ((1 << step_shift) - 1);
        value = table[index] + nn_rdbpot((table[index + 1] - table[index]) * fraction, step_shift);
    }
    if (x < 0) {
        value = reflect - value;
    }
    result = nn_rdbpot(value, extra_bits);
    return result < act_min ? act_min : (result > act_max ? act_max : result);
}

#endif /* NN_USE_FUNCTION_Q */

#ifdef NN_USE_SOFTMAX_Q

/* softmax_exponentials: exp(-beta * diff * 2^-N_in) in Q30 for diff >= 0:
 * u = diff * multiplier (log2 units, 40 fraction bits), 2^-frac(u) from the
 * 257-entry table (interpolated on 16 more bits), shifted right by floor(u). */
static int32_t nn_fq_softmax_exp(int32_t diff, int64_t multiplier, int32_t diff_max, const int32_t *exp2_table)
{
    int64_t u;
    int32_t shift;
    int32_t index;
    int64_t between;
    int64_t drop;
    int32_t value;
    if (diff > diff_max) {
        return 0;
    }
    u = (int64_t)diff * multiplier;
    shift = (int32_t)(u >> 40);
    index = (int32_t)((u >> 32) & 255);
    between = (u >> 16) & 0xFFFF;
    drop = (int64_t)exp2_table[index] - exp2_table[index + 1];
    value = exp2_table[index] - (int32_t)((drop * between + 32768) >> 16);
    return (value + ((1 << shift) >> 1)) >> shift;
}

/* one value of an int8 (wide == 0) or int16 tensor */
static int32_t nn_fq_load(const void *data, int32_t wide, int32_t k)
{
    return wide ? (int32_t)((const int16_t *)data)[k] : (int32_t)((const int8_t *)data)[k];
}

/* softmax_q: rows x depth qM.N values (int8 or int16, in_wide), softmax over
 * each row, to qM.N values (out_wide) with out_frac fraction bits:
 * round(e * 2^out_frac / sum), at most out_max. */
static void nn_softmax_q(const void *input, void *output, int32_t rows, int32_t depth, int32_t in_wide,
                         int32_t out_wide, int64_t multiplier, int32_t diff_max, int32_t out_frac, int32_t out_max,
                         const int32_t *exp2_table)
{
    int32_t i;
    int32_t k;
    for (i = 0; i < rows; ++i) {
        const int32_t base = i * depth;
        int32_t max = nn_fq_load(input, in_wide, base);
        int64_t total = 0;
        for (k = 1; k < depth; ++k) {
            const int32_t value = nn_fq_load(input, in_wide, base + k);
            max = value > max ? value : max;
        }
        for (k = 0; k < depth; ++k) {
            total += nn_fq_softmax_exp(max - nn_fq_load(input, in_wide, base + k), multiplier, diff_max, exp2_table);
        }
        for (k = 0; k < depth; ++k) {
            const int64_t e = nn_fq_softmax_exp(max - nn_fq_load(input, in_wide, base + k), multiplier, diff_max,
                                                exp2_table);
            int64_t quotient = (e * ((int64_t)2 << out_frac) + total) / (2 * total);
            quotient = quotient > out_max ? out_max : quotient;
            if (out_wide) {
                ((int16_t *)output)[base + k] = (int16_t)quotient;
            } else {
                ((int8_t *)output)[base + k] = (int8_t)quotient;
            }
        }
    }
}

#endif /* NN_USE_SOFTMAX_Q */
