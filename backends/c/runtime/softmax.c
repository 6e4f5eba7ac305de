/* int8 and int16 SOFTMAX, TensorFlow Lite Micro reference kernels: mirror
 * nndsl/qmath/softmax.py. Needs requant.c and fixedpoint.c (the gemmlowp
 * arithmetic of the int8 kernels, count_leading_zeros of the int16 one). Each
 * kernel is compiled only under its NN_USE_ macro (the int8 one's helpers
 * under either int8 macro), so that an unused static function never warns.
 *
 * The int16 softmax's tables are the caller's (the code generator emits the
 * 513-entry tables of SoftmaxS16Params as static const arrays). Right shifts
 * of negative int32 values are arithmetic, as everywhere in this runtime
 * (requant.c's rounding_divide_by_pot). */

#if defined(NN_USE_SOFTMAX_S8) || defined(NN_USE_SOFTMAX_TABLE_S8)

/* The largest value of a row. */
static int32_t nn_softmax_max_s8(const int8_t *row, int32_t depth)
{
    int32_t max_in_row = -128;
    int32_t c;
    for (c = 0; c < depth; ++c) {
        max_in_row = row[c] > max_in_row ? row[c] : max_in_row;
    }
    return max_in_row;
}

/* The reciprocal of a row's sum of exponentials (Q12.19) and its output shift; 0 where TFLM's check on
 * the shift would abort (a sum >= 2**28, only possible for depth > 511). */
static int32_t nn_softmax_scale_s8(uint32_t sum_of_exps, int32_t *shifted_scale, int32_t *exponent)
{
    int32_t num_bits_over_unit;
    *shifted_scale = nn_get_reciprocal((int32_t)sum_of_exps, 12, &num_bits_over_unit);
    *exponent = num_bits_over_unit + 31 - 8;
    return *exponent >= 0 && *exponent <= 31;
}

/* One output: its value's exponential times the reciprocal of the row's sum, from -128. */
static int8_t nn_softmax_out_s8(int32_t exp_in_0, int32_t shifted_scale, int32_t exponent)
{
    const int32_t shifted_output = nn_rdbpot(nn_fixed_mul(shifted_scale, exp_in_0), exponent) + (-128);
    return (int8_t)(shifted_output > 127 ? 127 : shifted_output < -128 ? -128 : shifted_output);
}

#endif

#ifdef NN_USE_SOFTMAX_S8

/* The exponential of a difference from the row maximum (MultiplyByQuantizedMultiplierGreaterThanOne to
 * Q5.26, then exp_on_negative_values). */
static int32_t nn_softmax_exp_s8(int32_t input_diff, int32_t multiplier, int32_t left_shift)
{
    return nn_exp_on_negative_values(nn_mbqm(input_diff, multiplier, left_shift), 5);
}

/* softmax_s8: rows x depth int8 values, softmax over each row of depth.
 * Where softmax_s8 raises (TFLM's TFLITE_CHECK aborts) the row is all -128. */
static void nn_softmax_s8(const int8_t *input, int8_t *output, int32_t rows, int32_t depth,
                          int32_t multiplier, int32_t left_shift, int32_t diff_min)
{
    int32_t i, c, shifted_scale, exponent;
    for (i = 0; i < rows; ++i) {
        const int8_t *in_row = input + (int64_t)i * depth;
        int8_t *out_row = output + (int64_t)i * depth;
        const int32_t max_in_row = nn_softmax_max_s8(in_row, depth);
        uint32_t sum_of_exps = 0;
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            if (input_diff >= diff_min) {
                sum_of_exps += (uint32_t)nn_rescale(nn_softmax_exp_s8(input_diff, multiplier, left_shift), 0, 12);
            }
        }
        if (!nn_softmax_scale_s8(sum_of_exps, &shifted_scale, &exponent)) {
            memset(out_row, -128, (size_t)depth);
            continue;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            out_row[c] = input_diff < diff_min ? (int8_t)-128
                : nn_softmax_out_s8(nn_softmax_exp_s8(input_diff, multiplier, left_shift), shifted_scale, exponent);
        }
    }
}

#endif /* NN_USE_SOFTMAX_S8 */

#ifdef NN_USE_SOFTMAX_TABLE_S8

/* softmax_s8 with the exponentials looked up: exp_table[k] is nn_softmax_exp_s8 of the difference -k, for
 * k up to -diff_min (softmax_s8_exp_table, made at build time where it is smaller than the code above). */
static void nn_softmax_table_s8(const int8_t *input, int8_t *output, int32_t rows, int32_t depth,
                                int32_t diff_min, const int32_t *exp_table)
{
    int32_t i, c, shifted_scale, exponent;
    for (i = 0; i < rows; ++i) {
        const int8_t *in_row = input + (int64_t)i * depth;
        int8_t *out_row = output + (int64_t)i * depth;
        const int32_t max_in_row = nn_softmax_max_s8(in_row, depth);
        uint32_t sum_of_exps = 0;
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            if (input_diff >= diff_min) {
                sum_of_exps += (uint32_t)nn_rescale(exp_table[-input_diff], 0, 12);
            }
        }
        if (!nn_softmax_scale_s8(sum_of_exps, &shifted_scale, &exponent)) {
            memset(out_row, -128, (size_t)depth);
            continue;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            out_row[c] = input_diff < diff_min ? (int8_t)-128
                : nn_softmax_out_s8(exp_table[-input_diff], shifted_scale, exponent);
        }
    }
}

#endif /* NN_USE_SOFTMAX_TABLE_S8 */

#ifdef NN_USE_SOFTMAX_S16

/* lut_lookup: 513-entry int16 table, 9 index bits and 7 interpolation bits */
static int16_t nn_lut_lookup(int32_t value, const int16_t *lut)
{
    /* 256 + (value >> 7), computed on the non-negative value + 32768 */
    const int32_t index = (value + 32768) >> 7;
    const int32_t offset = value & 0x7f;
    const int32_t base = lut[index];
    const int32_t slope = (int32_t)lut[index + 1] - base;
    const int32_t delta = (slope * offset + 64) >> 7;
    /* the C++ narrows base + delta to int16_t */
    return (int16_t)nn_wrap_int16(base + delta);
}

/* softmax_s16: rows x depth int16 values, softmax over each row of depth.
 * Output scale 1/32768, zero point 0, values in [0, 32767]. The exponentials
 * are kept in the output row between the two passes, as TFLM does. Where
 * softmax_s16 raises (a sum of exponentials outside [2, 2**31), which the
 * standard tables reach only for depth > 65548) the row is all 0. */
static void nn_softmax_s16(const int16_t *input, int16_t *output, int32_t rows, int32_t depth,
                           int32_t input_multiplier, int32_t input_left_shift, const int16_t *exp_lut,
                           const int16_t *one_over_one_plus_x_lut)
{
    int32_t i;
    int32_t c;
    for (i = 0; i < rows; ++i) {
        const int16_t *in_row = input + (int64_t)i * depth;
        int16_t *out_row = output + (int64_t)i * depth;
        int32_t max_in_row = -32768;
        int64_t sum_of_exps = 0;
        int32_t headroom_plus_one;
        int32_t shifted_sum;
        int32_t sym_shifted_sum;
        int32_t reciprocal_scale;
        int32_t right_shift;
        int64_t rounding;
        for (c = 0; c < depth; ++c) {
            max_in_row = in_row[c] > max_in_row ? in_row[c] : max_in_row;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            /* the rescale cannot overflow for left shifts <= 15 (softmax_s16_params) */
            const int32_t scaled_diff = nn_mbqm(input_diff, input_multiplier, input_left_shift);
            /* + 32767, clamped to int16 (without overflowing for a positive scaled_diff) */
            const int32_t sym_scaled_diff = scaled_diff > 0 ? 32767 : scaled_diff + 32767;
            const int32_t clamped = sym_scaled_diff < -32768 ? -32768 : sym_scaled_diff;
            out_row[c] = nn_lut_lookup(clamped, exp_lut);
            sum_of_exps += out_row[c];
        }
        if (sum_of_exps < 2 || sum_of_exps > INT32_MAX) {
            for (c = 0; c < depth; ++c) {
                out_row[c] = 0;
            }
            continue;
        }
        headroom_plus_one = nn_count_leading_zeros((uint32_t)sum_of_exps);
        shifted_sum = (int32_t)(((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        /* x = sum - 1 for 1 / (1 + x): [2**16, 2**17] onto the table's [-32768, 32767] */
        sym_shifted_sum = shifted_sum - ((1 << 15) + (1 << 16));
        sym_shifted_sum = sym_shifted_sum > 32767 ? 32767 : sym_shifted_sum < -32768 ? -32768 : sym_shifted_sum;
        reciprocal_scale = nn_lut_lookup(sym_shifted_sum, one_over_one_plus_x_lut);
        right_shift = 31 - headroom_plus_one;
        rounding = (int64_t)1 << (right_shift - 1);
        for (c = 0; c < depth; ++c) {
            const int64_t result = ((int64_t)out_row[c] * reciprocal_scale + rounding) >> right_shift;
            out_row[c] = (int16_t)(result > 32767 ? 32767 : result < 0 ? 0 : result);
        }
    }
}

#endif /* NN_USE_SOFTMAX_S16 */
