/* int8 softmax, TensorFlow Lite Micro reference kernel: mirrors
 * nndsl/qmath/fixedpoint.py and nndsl/qmath/softmax.py. Needs requant.c.
 * The exponentials come from a table made at build time (they depend only on
 * the difference from the row maximum); the reciprocal of their sum is
 * computed here.
 * Fixed-point additions wrap through uint32_t where Python wraps to int32
 * (gemmlowp's int32 overflow is undefined behaviour in C++). */

/* fixed_add */
static int32_t nn_fixed_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* fixed_sub */
static int32_t nn_fixed_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* fixed_mul */
static int32_t nn_fixed_mul(int32_t a, int32_t b)
{
    return nn_srdhm(a, b);
}

/* mask_if_greater_than */
static int32_t nn_mask_if_greater_than(int32_t a, int32_t b)
{
    return a > b ? -1 : 0;
}

/* mask_if_less_than */
static int32_t nn_mask_if_less_than(int32_t a, int32_t b)
{
    return a < b ? -1 : 0;
}

/* select_using_mask */
static int32_t nn_select_using_mask(int32_t if_mask, int32_t then_val, int32_t else_val)
{
    return (if_mask & then_val) ^ (~if_mask & else_val);
}

/* rounding_half_sum */
static int32_t nn_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* saturating_rounding_multiply_by_pot */
static int32_t nn_saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
        const int32_t positive_mask = nn_mask_if_greater_than(x, threshold);
        const int32_t negative_mask = nn_mask_if_less_than(x, -threshold);
        int32_t result = (int32_t)((uint32_t)x << exponent);
        result = nn_select_using_mask(positive_mask, INT32_MAX, result);
        return nn_select_using_mask(negative_mask, INT32_MIN, result);
    }
    if (exponent < 0) {
        return nn_rdbpot(x, -exponent);
    }
    return x;
}

/* rescale */
static int32_t nn_rescale(int32_t x, int32_t src_integer_bits, int32_t dst_integer_bits)
{
    return nn_saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits);
}

/* one_over_one_plus_x_for_x_in_0_1 */
static int32_t nn_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = nn_rounding_half_sum(a, INT32_MAX);
    int32_t x = nn_fixed_add(1515870810, nn_fixed_mul(half_denominator, -1010580540));
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = nn_fixed_mul(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x =
            nn_fixed_sub((int32_t)1 << 29, half_denominator_times_x);
        x = nn_fixed_add(x, nn_rescale(nn_fixed_mul(x, one_minus_half_denominator_times_x), 4, 2));
    }
    /* ExactMulByPot<-1> turns Q2.29 into Q1.30 without touching the raw value. */
    return nn_rescale(x, 1, 0);
}

/* count_leading_zeros */
static int32_t nn_count_leading_zeros(uint32_t x)
{
    static const int32_t steps[5] = {16, 8, 4, 2, 1};
    uint32_t value = x;
    int32_t bit_length = 0;
    int32_t k;
    for (k = 0; k < 5; ++k) {
        const uint32_t high = value >> steps[k];
        if (high != 0) {
            bit_length += steps[k];
            value = high;
        }
    }
    bit_length += value != 0 ? 1 : 0;
    return 32 - bit_length;
}

/* get_reciprocal */
static int32_t nn_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    const uint32_t x_unsigned = (uint32_t)x;
    const int32_t headroom_plus_one = nn_count_leading_zeros(x_unsigned);
    /* 64-bit shift: a zero x has headroom 32, undefined for a 32-bit shift. */
    const uint32_t shifted = (uint32_t)((uint64_t)x_unsigned << headroom_plus_one);
    const int32_t shifted_sum_minus_one = (int32_t)(shifted - ((uint32_t)1 << 31));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return nn_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

/* softmax_s8: rows x depth int8 values, softmax over each row of depth.
 * exp_table[k] is the exponential of the difference -k from the row maximum
 * (softmax_s8_exp_table: the fixed-point exponential of the rescaled
 * difference, made at build time), for k up to -diff_min.
 * Where softmax_s8 raises (TFLM's TFLITE_CHECK aborts: a sum of
 * exponentials >= 2**28, only possible for depth > 511) the row is all -128. */
static void nn_softmax_s8(const int8_t *input, int8_t *output, int32_t rows, int32_t depth, int32_t diff_min,
                          const int32_t *exp_table)
{
    int32_t i;
    int32_t c;
    for (i = 0; i < rows; ++i) {
        const int8_t *in_row = input + (int64_t)i * depth;
        int8_t *out_row = output + (int64_t)i * depth;
        int32_t max_in_row = -128;
        uint32_t sum_of_exps = 0;
        int32_t num_bits_over_unit;
        int32_t shifted_scale;
        int32_t exponent;
        for (c = 0; c < depth; ++c) {
            max_in_row = in_row[c] > max_in_row ? in_row[c] : max_in_row;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            if (input_diff >= diff_min) {
                sum_of_exps += (uint32_t)nn_rescale(exp_table[-input_diff], 0, 12);
            }
        }
        shifted_scale = nn_get_reciprocal((int32_t)sum_of_exps, 12, &num_bits_over_unit);
        exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            memset(out_row, -128, (size_t)depth);
            continue;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t input_diff = (int32_t)in_row[c] - max_in_row;
            if (input_diff >= diff_min) {
                const int32_t unsat_output = nn_rdbpot(nn_fixed_mul(shifted_scale, exp_table[-input_diff]), exponent);
                const int32_t shifted_output = unsat_output + (-128);
                out_row[c] = (int8_t)(shifted_output > 127 ? 127
                                      : shifted_output < -128 ? -128 : shifted_output);
            } else {
                out_row[c] = (int8_t)-128;
            }
        }
    }
}
