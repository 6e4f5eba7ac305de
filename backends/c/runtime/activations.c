/* TANH, LOGISTIC, HARD_SWISH and LEAKY_RELU, int8 and int16 (16x8 scheme),
 * TensorFlow Lite Micro reference kernels: mirror nndsl/qmath/activations.py.
 * Needs requant.c, and fixedpoint.c for the int8 TANH and LOGISTIC (gemmlowp's
 * exp and reciprocal). Each kernel is compiled only under its NN_USE_<OP>_S8
 * or _S16 macro, so that an unused static function never warns. int32
 * additions that gemmlowp leaves to C++ (undefined on overflow) wrap through
 * uint32_t, as Python wraps; int16 narrowings go through requant.c's wrap_int16,
 * the two's-complement conversion the C++ relies on. */

#ifdef NN_USE_TANH_S8

/* one_minus_x_over_one_plus_x_for_x_in_0_1 */
static int32_t nn_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t x = nn_newton_reciprocal(nn_rounding_half_sum(a, INT32_MAX));
    return nn_rescale(nn_fixed_sub(x, (int32_t)1 << 29), 2, 0);
}

/* fixed_tanh */
static int32_t nn_fixed_tanh(int32_t a, int32_t integer_bits)
{
    const int32_t negative = a < 0 ? -1 : 0;
    const int32_t non_positive = nn_select_using_mask(negative, a, nn_fixed_sub(0, a));
    const int32_t t = nn_one_minus_x_over_one_plus_x_for_x_in_0_1(
        nn_exp_on_negative_values(non_positive, integer_bits + 1));
    if (a == 0) {
        return 0;
    }
    return nn_select_using_mask(negative, nn_fixed_sub(0, t), t);
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
            const int32_t output = nn_rdbpot(nn_fixed_tanh(input_in_q4, 4), 31 - 7);
            out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
        }
    }
}

#endif /* NN_USE_TANH_S8 */

#ifdef NN_USE_LOGISTIC_S8

/* fixed_logistic */
static int32_t nn_fixed_logistic(int32_t a, int32_t integer_bits)
{
    const int32_t positive = a > 0 ? -1 : 0;
    const int32_t magnitude = nn_select_using_mask(positive, a, nn_fixed_sub(0, a));
    const int32_t if_positive = nn_one_over_one_plus_x_for_x_in_0_1(
        nn_exp_on_negative_values(nn_fixed_sub(0, magnitude), integer_bits));
    const int32_t if_negative = nn_fixed_sub(INT32_MAX, if_positive);
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    return nn_select_using_mask(positive, if_positive, if_negative);
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
            const int32_t output = nn_rdbpot(nn_fixed_logistic(input_in_q4, 4), 31 - 8) - 128;
            out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
        }
    }
}

#endif /* NN_USE_LOGISTIC_S8 */

#ifdef NN_USE_HARD_SWISH_S8

/* saturating_rounding_doubling_high_mul_i16 */
static int32_t nn_srdhm_i16(int32_t a, int32_t b)
{
    const int32_t product = a * b;
    const int32_t nudge = product >= 0 ? (1 << 14) : (1 - (1 << 14));
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return nn_wrap_int16((product + nudge) / (1 << 15));
}

/* saturating_doubling_high_mul_i16 */
static int32_t nn_sdhm_i16(int32_t a, int32_t b)
{
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return nn_wrap_int16((a * b) / (1 << 15));
}

/* rounding_divide_by_pot_i16 (exponent in [0, 31]; the mask narrowed to int16) */
static int32_t nn_rdbpot_i16(int32_t x, int32_t exponent)
{
    const int32_t mask = nn_wrap_int16((int32_t)(((int64_t)1 << exponent) - 1));
    const int32_t remainder = x & mask;
    const int32_t threshold = nn_wrap_int16((mask >> 1) + (x < 0 ? 1 : 0));
    return nn_wrap_int16((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* saturating_left_shift_i16 (amount in [0, 30]) */
static int32_t nn_saturating_left_shift_i16(int32_t x, int32_t amount)
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
        const int32_t input_value = nn_wrap_int16((int32_t)in[i] - input_zero_point);
        const int32_t hires = nn_wrap_int16(input_value * (1 << 7));
        const int32_t preshift_output_scale = nn_srdhm_i16(hires, output_multiplier);
        int32_t reluish = hires;
        int32_t output;
        if (reluish_exponent > 0) {
            reluish = nn_saturating_left_shift_i16(reluish, reluish_exponent - 1);
        }
        reluish = nn_srdhm_i16(reluish, reluish_multiplier);
        if (reluish_exponent > 0) {
            reluish = nn_saturating_left_shift_i16(reluish, 1);
        }
        if (reluish_exponent < 0) {
            reluish = nn_rdbpot_i16(reluish, -reluish_exponent);
        }
        reluish = (reluish + (1 << 15)) >> 1;
        output = nn_rdbpot_i16(nn_sdhm_i16(reluish, preshift_output_scale), -output_exponent);
        output = nn_wrap_int16(output + output_zero_point);
        out[i] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
    }
}

#endif /* NN_USE_HARD_SWISH_S8 */

#if defined(NN_USE_LEAKY_RELU_S8) || defined(NN_USE_LEAKY_RELU_S16)

/* One output of _leaky_relu before the clamp: a value at or above the input
 * zero point rescaled by the identity multiplier, one below by the alpha
 * multiplier (shifts at most 30), plus the output zero point. */
static int32_t nn_leaky_relu_element(int32_t value, int32_t input_zero_point, int32_t output_zero_point,
                                     int32_t multiplier_identity, int32_t shift_identity, int32_t multiplier_alpha,
                                     int32_t shift_alpha)
{
    const int32_t input = value - input_zero_point;
    const int32_t scaled = input >= 0 ? nn_mbqm(input, multiplier_identity, shift_identity)
                                      : nn_mbqm(input, multiplier_alpha, shift_alpha);
    return (int32_t)((uint32_t)output_zero_point + (uint32_t)scaled);
}

/* leaky_relu_s8 / leaky_relu_s16 (the fields of LeakyReluS8Params /
 * LeakyReluS16Params in order); low and high are the storage type's bounds. */
#define NN_LEAKY_RELU_LOOP(name, type, low, high)                                                                 \
    static void name(const type *in, type *out, int32_t size, int32_t input_zero_point, int32_t output_zero_point, \
                     int32_t multiplier_identity, int32_t shift_identity, int32_t multiplier_alpha,               \
                     int32_t shift_alpha)                                                                         \
    {                                                                                                             \
        int32_t i;                                                                                                \
        for (i = 0; i < size; ++i) {                                                                              \
            const int32_t output = nn_leaky_relu_element((int32_t)in[i], input_zero_point, output_zero_point,     \
                                                         multiplier_identity, shift_identity, multiplier_alpha,   \
                                                         shift_alpha);                                            \
            out[i] = (type)(output > (high) ? (high) : output < (low) ? (low) : output);                          \
        }                                                                                                         \
    }

#endif

#ifdef NN_USE_LEAKY_RELU_S8
NN_LEAKY_RELU_LOOP(nn_leaky_relu_s8, int8_t, -128, 127)
#endif

#ifdef NN_USE_LEAKY_RELU_S16
NN_LEAKY_RELU_LOOP(nn_leaky_relu_s16, int16_t, -32768, 32767)
#endif

#if defined(NN_USE_TANH_S16) || defined(NN_USE_LOGISTIC_S16)

/* SIGMOID_TABLE_UINT16: TFLite's sigmoid_table_uint16, sigmoid(i / 24) in Q0.16 */
static const uint16_t nn_sigmoid_table_uint16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535};

/* _sigmoid_table_input: (x * multiplier + round) >> shift; multiplier 0 means 3 << shift, no shift.
 * With the multipliers (<= 65535) and shifts ([0, 31]) of the params functions
 * the int32 arithmetic cannot overflow. */
static int32_t nn_sigmoid_table_input(int16_t x, int32_t input_multiplier, int32_t input_left_shift)
{
    int32_t multiplier = input_multiplier;
    int32_t shift = input_left_shift;
    int32_t rounding;
    if (multiplier == 0) {
        multiplier = 3 << shift;
        shift = 0;
    }
    rounding = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    return ((int32_t)x * multiplier + rounding) >> shift;
}

/* _interpolate_sigmoid: the table at magnitude, fraction_bits below the index;
 * *saturated when the index is 255 or more */
static uint32_t nn_interpolate_sigmoid(uint32_t magnitude, int32_t fraction_bits, int *saturated)
{
    const uint32_t index = magnitude >> fraction_bits;
    uint32_t low;
    uint32_t high;
    if (index >= 255) {
        *saturated = 1;
        return 0;
    }
    *saturated = 0;
    low = nn_sigmoid_table_uint16[index];
    high = nn_sigmoid_table_uint16[index + 1];
    return (low << fraction_bits) + (magnitude & ((1u << fraction_bits) - 1u)) * (high - low);
}

#endif /* NN_USE_TANH_S16 || NN_USE_LOGISTIC_S16 */

#ifdef NN_USE_TANH_S16

/* tanh_s16: output scale 2**-15, zero point 0, values in [-32767, 32767]. */
static void nn_tanh_s16(const int16_t *in, int16_t *out, int32_t size, int32_t input_multiplier,
                        int32_t input_left_shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input_data = nn_sigmoid_table_input(in[i], input_multiplier, input_left_shift);
        const uint32_t magnitude = input_data < 0 ? 0u - (uint32_t)input_data : (uint32_t)input_data;
        int saturated;
        const uint32_t interpolated = nn_interpolate_sigmoid(magnitude, 8, &saturated);
        int32_t result = saturated ? (int32_t)(0xFFFF << 8) : (int32_t)interpolated;
        result = input_data >= 0 ? result - (1 << (14 + 9)) + (1 << (9 - 2))
                                 : -result + (1 << (14 + 9)) + (1 << (9 - 2)) - 1;
        out[i] = (int16_t)(result >> (9 - 1));
    }
}

#endif /* NN_USE_TANH_S16 */

#ifdef NN_USE_LOGISTIC_S16

/* logistic_s16: output scale 2**-15, zero point 0, values in [1, 32767]. */
static void nn_logistic_s16(const int16_t *in, int16_t *out, int32_t size, int32_t input_multiplier,
                            int32_t input_left_shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input_data = nn_sigmoid_table_input(in[i], input_multiplier, input_left_shift);
        const uint32_t magnitude = input_data < 0 ? 0u - (uint32_t)input_data : (uint32_t)input_data;
        int saturated;
        const uint32_t interpolated = nn_interpolate_sigmoid(magnitude, 9, &saturated);
        uint32_t result = saturated ? (uint32_t)0x7FFF << 10 : interpolated;
        result = input_data >= 0 ? result + (1u << 9) : (1u << (16 + 9)) - result + (1u << 9) - 1u;
        out[i] = (int16_t)(result >> 10);
    }
}

#endif /* NN_USE_LOGISTIC_S16 */
