/* int8 TANH, LOGISTIC, HARD_SWISH and LEAKY_RELU, TensorFlow Lite Micro
 * reference kernels: mirror nndsl/qmath/activations.py (and, for the gemmlowp
 * exp and reciprocal pieces, nndsl/qmath/fixedpoint.py). Needs requant.c only;
 * the helpers are prefixed nn_act_ so that softmax.c may share the unit.
 * Each kernel is compiled only under its NN_USE_<OP>_S8 macro, so that an
 * unused static function never warns. int32 additions that gemmlowp leaves to
 * C++ (undefined on overflow) wrap through uint32_t, as Python wraps; int16
 * narrowings go through nn_act_wrap_i16, the two's-complement conversion the
 * C++ relies on. */

#if defined(NN_USE_TANH_S8) || defined(NN_USE_LOGISTIC_S8)

/* fixed_add */
static int32_t nn_act_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* fixed_sub */
static int32_t nn_act_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* select_using_mask */
static int32_t nn_act_select(int32_t if_mask, int32_t then_val, int32_t else_val)
{
    return (if_mask & then_val) ^ (~if_mask & else_val);
}

/* rounding_half_sum */
static int32_t nn_act_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t total = (int64_t)a + (int64_t)b;
    return (int32_t)((total + (total >= 0 ? 1 : -1)) / 2);
}

/* rescale (saturating_rounding_multiply_by_pot of src - dst) */
static int32_t nn_act_rescale(int32_t x, int32_t src_integer_bits, int32_t dst_integer_bits)
{
    const int32_t exponent = src_integer_bits - dst_integer_bits;
    if (exponent > 0) {
        const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    if (exponent < 0) {
        return nn_rdbpot(x, -exponent);
    }
    return x;
}

/* exp_on_interval_between_negative_one_quarter_and_0_excl */
static int32_t nn_act_exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = nn_act_add(a, (int32_t)1 << 28);
    const int32_t x2 = nn_srdhm(x, x);
    const int32_t x3 = nn_srdhm(x2, x);
    const int32_t x4 = nn_srdhm(x2, x2);
    const int32_t x4_over_4 = nn_rdbpot(x4, 2);
    const int32_t poly = nn_rdbpot(nn_act_add(nn_srdhm(nn_act_add(x4_over_4, x3), one_third), x2), 1);
    return nn_act_add(exp_minus_one_eighth, nn_srdhm(exp_minus_one_eighth, nn_act_add(x, poly)));
}

/* exp_on_negative_values, integer_bits in [1, 5] (no clamp below -32) */
static int32_t nn_act_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t shifter_multipliers[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = nn_act_sub(a & (one_quarter - 1), one_quarter);
    const int32_t remainder = nn_act_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t result = nn_act_exp_quarter(nn_act_rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0));
    int32_t k;
    /* Barrel shifter: exponent k - 2 of exp(-2**(k - 2)), for k - 2 < integer_bits. */
    for (k = 0; k < 7 && k - 2 < integer_bits; ++k) {
        if ((remainder & ((int32_t)1 << (fractional_bits + k - 2))) != 0) {
            result = nn_srdhm(result, shifter_multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* Newton-Raphson steps shared by the two reciprocals below: Q2.29 1 / half_denominator. */
static int32_t nn_act_newton_reciprocal(int32_t half_denominator)
{
    int32_t x = nn_act_add(1515870810, nn_srdhm(half_denominator, -1010580540));
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t residual = nn_act_sub((int32_t)1 << 29, nn_srdhm(half_denominator, x));
        x = nn_act_add(x, nn_act_rescale(nn_srdhm(x, residual), 4, 2));
    }
    return x;
}

#endif /* NN_USE_TANH_S8 || NN_USE_LOGISTIC_S8 */

#ifdef NN_USE_TANH_S8

/* one_minus_x_over_one_plus_x_for_x_in_0_1 */
static int32_t nn_act_one_minus_x_over_one_plus_x(int32_t a)
{
    const int32_t x = nn_act_newton_reciprocal(nn_act_rounding_half_sum(a, INT32_MAX));
    return nn_act_rescale(nn_act_sub(x, (int32_t)1 << 29), 2, 0);
}

/* fixed_tanh */
static int32_t nn_act_fixed_tanh(int32_t a, int32_t integer_bits)
{
    const int32_t negative = a < 0 ? -1 : 0;
    const int32_t non_positive = nn_act_select(negative, a, nn_act_sub(0, a));
    const int32_t t = nn_act_one_minus_x_over_one_plus_x(
        nn_act_exp_on_negative_values(non_positive, integer_bits + 1));
    if (a == 0) {
        return 0;
    }
    return nn_act_select(negative, nn_act_sub(0, t), t);
}

/* tanh_s8: output scale 1/128, zero point 0. */
static void nn_tanh_s8(const int8_t *in, int8_t *out, int32_t size, int32_t input_zero_point,
                       int32_t input_range_radius, int32_t input_multiplier, int32_t input_left_shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input = (int32_t)in[i] - input_zero_point;
        if (input <= -input_range_radius) {
            out[i] = (int8_t)-128;
        } else if (input >= input_range_radius) {
            out[i] = (int8_t)127;
        } else {
            const int32_t input_in_q4 = nn_mbqm(input, input_multiplier, input_left_shift);
            const int32_t output = nn_rdbpot(nn_act_fixed_tanh(input_in_q4, 4), 31 - 7);
            out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
        }
    }
}

#endif /* NN_USE_TANH_S8 */

#ifdef NN_USE_LOGISTIC_S8

/* one_over_one_plus_x_for_x_in_0_1 */
static int32_t nn_act_one_over_one_plus_x(int32_t a)
{
    /* ExactMulByPot<-1>: Q2.29 read as Q1.30, then rescaled to Q0.31. */
    return nn_act_rescale(nn_act_newton_reciprocal(nn_act_rounding_half_sum(a, INT32_MAX)), 1, 0);
}

/* fixed_logistic */
static int32_t nn_act_fixed_logistic(int32_t a, int32_t integer_bits)
{
    const int32_t positive = a > 0 ? -1 : 0;
    const int32_t magnitude = nn_act_select(positive, a, nn_act_sub(0, a));
    const int32_t if_positive = nn_act_one_over_one_plus_x(
        nn_act_exp_on_negative_values(nn_act_sub(0, magnitude), integer_bits));
    const int32_t if_negative = nn_act_sub(INT32_MAX, if_positive);
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    return nn_act_select(positive, if_positive, if_negative);
}

/* logistic_s8: output scale 1/256, zero point -128. */
static void nn_logistic_s8(const int8_t *in, int8_t *out, int32_t size, int32_t input_zero_point,
                           int32_t input_range_radius, int32_t input_multiplier, int32_t input_left_shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input = (int32_t)in[i] - input_zero_point;
        if (input <= -input_range_radius) {
            out[i] = (int8_t)-128;
        } else if (input >= input_range_radius) {
            out[i] = (int8_t)127;
        } else {
            const int32_t input_in_q4 = nn_mbqm(input, input_multiplier, input_left_shift);
            const int32_t output = nn_rdbpot(nn_act_fixed_logistic(input_in_q4, 4), 31 - 8) - 128;
            out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
        }
    }
}

#endif /* NN_USE_LOGISTIC_S8 */

#ifdef NN_USE_HARD_SWISH_S8

/* wrap_int16 */
static int32_t nn_act_wrap_i16(int32_t x)
{
    return (int32_t)(((uint32_t)x + 32768u) & 0xFFFFu) - 32768;
}

/* saturating_rounding_doubling_high_mul_i16 */
static int32_t nn_act_srdhm_i16(int32_t a, int32_t b)
{
    const int32_t product = a * b;
    const int32_t nudge = product >= 0 ? (1 << 14) : (1 - (1 << 14));
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return nn_act_wrap_i16((product + nudge) / (1 << 15));
}

/* saturating_doubling_high_mul_i16 */
static int32_t nn_act_sdhm_i16(int32_t a, int32_t b)
{
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return nn_act_wrap_i16((a * b) / (1 << 15));
}

/* rounding_divide_by_pot_i16 (exponent in [0, 31]; the mask narrowed to int16) */
static int32_t nn_act_rdbpot_i16(int32_t x, int32_t exponent)
{
    const int32_t mask = nn_act_wrap_i16((int32_t)(((int64_t)1 << exponent) - 1));
    const int32_t remainder = x & mask;
    const int32_t threshold = nn_act_wrap_i16((mask >> 1) + (x < 0 ? 1 : 0));
    return nn_act_wrap_i16((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* saturating_left_shift_i16 (amount in [0, 30]) */
static int32_t nn_act_saturating_left_shift_i16(int32_t x, int32_t amount)
{
    const int64_t shifted = (int64_t)x * ((int64_t)1 << amount);
    return shifted > 32767 ? 32767 : shifted < -32768 ? -32768 : (int32_t)shifted;
}

/* hard_swish_s8 (the multipliers are the int16 Q15 values) */
static void nn_hard_swish_s8(const int8_t *in, int8_t *out, int32_t size, int32_t input_zero_point,
                             int32_t output_zero_point, int32_t reluish_multiplier,
                             int32_t reluish_exponent, int32_t output_multiplier, int32_t output_exponent)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input_value = nn_act_wrap_i16((int32_t)in[i] - input_zero_point);
        const int32_t hires = nn_act_wrap_i16(input_value * (1 << 7));
        const int32_t preshift_output_scale = nn_act_srdhm_i16(hires, output_multiplier);
        int32_t reluish = hires;
        int32_t output;
        if (reluish_exponent > 0) {
            reluish = nn_act_saturating_left_shift_i16(reluish, reluish_exponent - 1);
        }
        reluish = nn_act_srdhm_i16(reluish, reluish_multiplier);
        if (reluish_exponent > 0) {
            reluish = nn_act_saturating_left_shift_i16(reluish, 1);
        }
        if (reluish_exponent < 0) {
            reluish = nn_act_rdbpot_i16(reluish, -reluish_exponent);
        }
        reluish = (reluish + (1 << 15)) >> 1;
        output = nn_act_rdbpot_i16(nn_act_sdhm_i16(reluish, preshift_output_scale), -output_exponent);
        output = nn_act_wrap_i16(output + output_zero_point);
        out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
    }
}

#endif /* NN_USE_HARD_SWISH_S8 */

#ifdef NN_USE_LEAKY_RELU_S8

/* leaky_relu_s8 (shifts at most 30) */
static void nn_leaky_relu_s8(const int8_t *in, int8_t *out, int32_t size, int32_t input_zero_point,
                             int32_t output_zero_point, int32_t multiplier_identity, int32_t shift_identity,
                             int32_t multiplier_alpha, int32_t shift_alpha)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input = (int32_t)in[i] - input_zero_point;
        const int32_t scaled = input >= 0 ? nn_mbqm(input, multiplier_identity, shift_identity)
                                          : nn_mbqm(input, multiplier_alpha, shift_alpha);
        const int32_t output = (int32_t)((uint32_t)output_zero_point + (uint32_t)scaled);
        out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
    }
}

#endif /* NN_USE_LEAKY_RELU_S8 */
