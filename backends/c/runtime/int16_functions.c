/* int16 SOFTMAX, TANH and LOGISTIC (TensorFlow Lite's 16x8 scheme), TensorFlow
 * Lite Micro reference kernels: mirror softmax_s16 (nndsl/qmath/softmax.py), tanh_s16 and logistic_s16
 * (activations.py). Needs
 * requant.c (nn_mbqm) only; the helpers are prefixed nn_s16_ so that the int8
 * runtime files may share the unit. Each kernel is compiled only under its
 * NN_USE_<OP>_S16 macro, so that no unused static function or table warns.
 *
 * The softmax tables are the caller's (the code generator emits the 513-entry
 * tables of SoftmaxS16Params as static const arrays); the sigmoid table of
 * TANH and LOGISTIC is TFLite's fixed sigmoid_table_uint16, kept here.
 * Right shifts of negative int32 values are arithmetic, as everywhere in this
 * runtime (requant.c's nn_rdbpot). */

#ifdef NN_USE_SOFTMAX_S16

/* lut_lookup: 513-entry int16 table, 9 index bits and 7 interpolation bits */
static int16_t nn_s16_lut_lookup(int32_t value, const int16_t *lut)
{
    /* 256 + (value >> 7), computed on the non-negative value + 32768 */
    const int32_t index = (value + 32768) >> 7;
    const int32_t offset = value & 0x7f;
    const int32_t base = lut[index];
    const int32_t slope = (int32_t)lut[index + 1] - base;
    const int32_t delta = (slope * offset + 64) >> 7;
    /* wrap_int16: the C++ narrows base + delta to int16_t */
    return (int16_t)((int32_t)(((uint32_t)(base + delta) + 32768u) & 0xFFFFu) - 32768);
}

/* count_leading_zeros of a non-zero value */
static int32_t nn_s16_clz(uint32_t x)
{
    int32_t zeros = 0;
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++zeros;
    }
    return zeros;
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
            out_row[c] = nn_s16_lut_lookup(clamped, exp_lut);
            sum_of_exps += out_row[c];
        }
        if (sum_of_exps < 2 || sum_of_exps > INT32_MAX) {
            for (c = 0; c < depth; ++c) {
                out_row[c] = 0;
            }
            continue;
        }
        headroom_plus_one = nn_s16_clz((uint32_t)sum_of_exps);
        shifted_sum = (int32_t)(((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        /* x = sum - 1 for 1 / (1 + x): [2**16, 2**17] onto the table's [-32768, 32767] */
        sym_shifted_sum = shifted_sum - ((1 << 15) + (1 << 16));
        sym_shifted_sum = sym_shifted_sum > 32767 ? 32767 : sym_shifted_sum < -32768 ? -32768 : sym_shifted_sum;
        reciprocal_scale = nn_s16_lut_lookup(sym_shifted_sum, one_over_one_plus_x_lut);
        right_shift = 31 - headroom_plus_one;
        rounding = (int64_t)1 << (right_shift - 1);
        for (c = 0; c < depth; ++c) {
            const int64_t result = ((int64_t)out_row[c] * reciprocal_scale + rounding) >> right_shift;
            out_row[c] = (int16_t)(result > 32767 ? 32767 : result < 0 ? 0 : result);
        }
    }
}

#endif /* NN_USE_SOFTMAX_S16 */

#if defined(NN_USE_TANH_S16) || defined(NN_USE_LOGISTIC_S16)

/* SIGMOID_TABLE_UINT16: TFLite's sigmoid_table_uint16, sigmoid(i / 24) in Q0.16 */
static const uint16_t nn_s16_sigmoid_table[256] = {
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
static int32_t nn_s16_sigmoid_input(int16_t x, int32_t input_multiplier, int32_t input_left_shift)
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
static uint32_t nn_s16_interpolate_sigmoid(uint32_t magnitude, int32_t fraction_bits, int *saturated)
{
    const uint32_t index = magnitude >> fraction_bits;
    uint32_t low;
    uint32_t high;
    if (index >= 255) {
        *saturated = 1;
        return 0;
    }
    *saturated = 0;
    low = nn_s16_sigmoid_table[index];
    high = nn_s16_sigmoid_table[index + 1];
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
        const int32_t input_data = nn_s16_sigmoid_input(in[i], input_multiplier, input_left_shift);
        const uint32_t magnitude = input_data < 0 ? 0u - (uint32_t)input_data : (uint32_t)input_data;
        int saturated;
        const uint32_t interpolated = nn_s16_interpolate_sigmoid(magnitude, 8, &saturated);
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
        const int32_t input_data = nn_s16_sigmoid_input(in[i], input_multiplier, input_left_shift);
        const uint32_t magnitude = input_data < 0 ? 0u - (uint32_t)input_data : (uint32_t)input_data;
        int saturated;
        const uint32_t interpolated = nn_s16_interpolate_sigmoid(magnitude, 9, &saturated);
        uint32_t result = saturated ? (uint32_t)0x7FFF << 10 : interpolated;
        result = input_data >= 0 ? result + (1u << 9) : (1u << (16 + 9)) - result + (1u << 9) - 1u;
        out[i] = (int16_t)(result >> 10);
    }
}

#endif /* NN_USE_LOGISTIC_S16 */
