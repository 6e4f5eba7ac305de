/* gemmlowp's fixed-point arithmetic, one copy for the int8 TANH and LOGISTIC
 * (activations.c) and the int8 SOFTMAX (softmax.c): mirrors
 * nndsl/qmath/fixedpoint.py. Needs requant.c. Each group
 * is compiled only under the NN_USE_ macros of the kernels that call all of
 * it, so that an unused static function never warns. Fixed-point additions
 * wrap through uint32_t where Python wraps to int32 (gemmlowp's int32
 * overflow is undefined behaviour in C++). */

#if defined(NN_USE_TANH_S8) || defined(NN_USE_LOGISTIC_S8) || defined(NN_USE_SOFTMAX_S8) || \
    defined(NN_USE_SOFTMAX_TABLE_S8)

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

/* The Newton-Raphson steps of one_over_one_plus_x_for_x_in_0_1 (and of
 * activations.py's one_minus_x_over_one_plus_x_for_x_in_0_1): Q2.29
 * 1 / half_denominator. */
static int32_t nn_newton_reciprocal(int32_t half_denominator)
{
    int32_t x = nn_fixed_add(1515870810, nn_fixed_mul(half_denominator, -1010580540));
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = nn_fixed_mul(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x =
            nn_fixed_sub((int32_t)1 << 29, half_denominator_times_x);
        x = nn_fixed_add(x, nn_rescale(nn_fixed_mul(x, one_minus_half_denominator_times_x), 4, 2));
    }
    return x;
}

#endif

#if defined(NN_USE_TANH_S8) || defined(NN_USE_LOGISTIC_S8) || defined(NN_USE_SOFTMAX_S8)

/* mask_if_non_zero */
static int32_t nn_mask_if_non_zero(int32_t a)
{
    return a != 0 ? -1 : 0;
}

/* mask_if_zero */
static int32_t nn_mask_if_zero(int32_t a)
{
    return a == 0 ? -1 : 0;
}

/* exp_on_interval_between_negative_one_quarter_and_0_excl */
static int32_t nn_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* EXP_CONSTANT_TERM */
    const int32_t constant_1_over_3 = 715827883;  /* EXP_CONSTANT_1_OVER_3 */
    const int32_t x = nn_fixed_add(a, (int32_t)1 << 28);
    const int32_t x2 = nn_fixed_mul(x, x);
    const int32_t x3 = nn_fixed_mul(x2, x);
    const int32_t x4 = nn_fixed_mul(x2, x2);
    const int32_t x4_over_4 = nn_saturating_rounding_multiply_by_pot(x4, -2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 = nn_saturating_rounding_multiply_by_pot(
        nn_fixed_add(nn_fixed_mul(nn_fixed_add(x4_over_4, x3), constant_1_over_3), x2), -1);
    const int32_t sum_of_terms = nn_fixed_add(x, x4_over_24_plus_x3_over_6_plus_x2_over_2);
    return nn_fixed_add(constant_term, nn_fixed_mul(constant_term, sum_of_terms));
}

/* exp_on_negative_values (integer_bits in [0, 28]) */
static int32_t nn_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    /* EXP_BARREL_SHIFTER */
    static const int32_t barrel_exponents[7] = {-2, -1, 0, 1, 2, 3, 4};
    static const int32_t barrel_multipliers[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = nn_fixed_sub(a & mask, one_quarter);
    int32_t result = nn_exp_on_interval_between_negative_one_quarter_and_0_excl(
        nn_rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0));
    const int32_t remainder = nn_fixed_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t k;
    for (k = 0; k < 7; ++k) {
        if (integer_bits > barrel_exponents[k]) {
            const int32_t shift_amount = fractional_bits + barrel_exponents[k];
            result = nn_select_using_mask(
                nn_mask_if_non_zero(remainder & ((int32_t)1 << shift_amount)),
                nn_fixed_mul(result, barrel_multipliers[k]), result);
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        result = nn_select_using_mask(nn_mask_if_less_than(a, clamp), 0, result);
    }
    return nn_select_using_mask(nn_mask_if_zero(a), INT32_MAX, result);
}

#endif

#if defined(NN_USE_LOGISTIC_S8) || defined(NN_USE_SOFTMAX_S8) || defined(NN_USE_SOFTMAX_TABLE_S8)

/* one_over_one_plus_x_for_x_in_0_1 */
static int32_t nn_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    /* ExactMulByPot<-1> turns Q2.29 into Q1.30 without touching the raw value. */
    return nn_rescale(nn_newton_reciprocal(nn_rounding_half_sum(a, INT32_MAX)), 1, 0);
}

#endif

#if defined(NN_USE_SOFTMAX_S8) || defined(NN_USE_SOFTMAX_TABLE_S8) || defined(NN_USE_SOFTMAX_S16)

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

#endif

#if defined(NN_USE_SOFTMAX_S8) || defined(NN_USE_SOFTMAX_TABLE_S8)

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

#endif
