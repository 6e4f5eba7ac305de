/* int16 (16x8 scheme) ADD, AVERAGE_POOL_2D, MEAN and LEAKY_RELU, TensorFlow
 * Lite Micro reference kernels: mirror add_s16 (nndsl/qmath/add.py),
 * avg_pool_s16 and mean_s16 (pooling.py), leaky_relu_s16 (activations.py). Needs requant.c (pasted before, after <stdint.h>
 * and <string.h>); no includes of its own. Each kernel is compiled only under
 * its NN_USE_<OP>_S16 macro, so that an unused static function never warns.
 * MAX_POOL_2D needs no int16 kernel of its own (a maximum and a clamp).
 * int32 additions that TFLM leaves to C++ (undefined on overflow) wrap
 * through uint32_t, as the Python wraps. */

#if defined(NN_USE_ADD_S16) || defined(NN_USE_AVG_POOL_S16) || defined(NN_USE_MEAN_S16) || \
    defined(NN_USE_LEAKY_RELU_S16)

/* _clamp_int16 */
static int16_t nn_s16_clamp(int32_t value, int32_t low, int32_t high)
{
    return (int16_t)(value > high ? high : value < low ? low : value);
}

#endif

#ifdef NN_USE_ADD_S16

/* add_s16 (the fields of AddS16Params in order: shifts <= 0, left_shift 15;
 * act_min/act_max the fused activation's int16 bounds) */
static void nn_add_s16(const int16_t *a, const int16_t *b, int16_t *out, int32_t size,
                       int32_t input1_offset, int32_t input1_multiplier, int32_t input1_shift,
                       int32_t input2_offset, int32_t input2_multiplier, int32_t input2_shift,
                       int32_t output_offset, int32_t output_multiplier, int32_t output_shift,
                       int32_t left_shift, int32_t act_min, int32_t act_max)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input1_val = input1_offset + (int32_t)a[i];
        const int32_t input2_val = input2_offset + (int32_t)b[i];
        const int32_t shifted_input1_val = (int32_t)((uint32_t)input1_val << left_shift);
        const int32_t shifted_input2_val = (int32_t)((uint32_t)input2_val << left_shift);
        const int32_t scaled_input1_val = nn_mbqm(shifted_input1_val, input1_multiplier, input1_shift);
        const int32_t scaled_input2_val = nn_mbqm(shifted_input2_val, input2_multiplier, input2_shift);
        const int32_t raw_sum = (int32_t)((uint32_t)scaled_input1_val + (uint32_t)scaled_input2_val);
        const int32_t raw_output = (int32_t)((uint32_t)nn_mbqm(raw_sum, output_multiplier, output_shift) +
                                             (uint32_t)output_offset);
        out[i] = nn_s16_clamp(raw_output, act_min, act_max);
    }
}

#endif /* NN_USE_ADD_S16 */

#ifdef NN_USE_AVG_POOL_S16

/* avg_pool_s16, one batch item in HWC layout; the arguments of
 * nn_avg_pool_s8. Only in-bounds taps are summed and counted; the average
 * rounds half away from zero. filter_h * filter_w must be at most 65535 (the
 * int32 sum cannot overflow) and every window must overlap the input: TFLM
 * fails on a window without taps, where this writes act-clamped 0 instead of
 * dividing by zero. */
static void nn_avg_pool_s16(const int16_t *in, int16_t *out, int32_t in_h, int32_t in_w, int32_t channels,
                            int32_t out_h, int32_t out_w, int32_t filter_h, int32_t filter_w,
                            int32_t stride_h, int32_t stride_w, int32_t pad_top, int32_t pad_left,
                            int32_t act_min, int32_t act_max)
{
    int32_t out_y;
    for (out_y = 0; out_y < out_h; ++out_y) {
        const int32_t in_y_origin = out_y * stride_h - pad_top;
        const int32_t filter_y_start = in_y_origin < 0 ? -in_y_origin : 0;
        const int32_t filter_y_end = filter_h < in_h - in_y_origin ? filter_h : in_h - in_y_origin;
        int32_t out_x;
        for (out_x = 0; out_x < out_w; ++out_x) {
            const int32_t in_x_origin = out_x * stride_w - pad_left;
            const int32_t filter_x_start = in_x_origin < 0 ? -in_x_origin : 0;
            const int32_t filter_x_end = filter_w < in_w - in_x_origin ? filter_w : in_w - in_x_origin;
            int32_t channel;
            for (channel = 0; channel < channels; ++channel) {
                int32_t acc = 0;
                int32_t count = 0;
                int32_t filter_y;
                for (filter_y = filter_y_start; filter_y < filter_y_end; ++filter_y) {
                    const int32_t row = (in_y_origin + filter_y) * in_w;
                    int32_t filter_x;
                    for (filter_x = filter_x_start; filter_x < filter_x_end; ++filter_x) {
                        acc += (int32_t)in[(row + in_x_origin + filter_x) * channels + channel];
                        ++count;
                    }
                }
                if (count > 0) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                out[(out_y * out_w + out_x) * channels + channel] = nn_s16_clamp(acc, act_min, act_max);
            }
        }
    }
}

#endif /* NN_USE_AVG_POOL_S16 */

#ifdef NN_USE_MEAN_S16

/* mean_s16, one batch item: in is positions x channels (C order), out has
 * channels values. The arguments after channels are MeanS16Params' fields
 * after count (positions is the count); multiplier and shift already hold
 * the 1 / count factor. The int32 sum wraps through uint32_t. */
static void nn_mean_s16(const int16_t *in, int16_t *out, int32_t positions, int32_t channels,
                        int32_t input_zero_point, int32_t output_zero_point, int32_t multiplier, int32_t shift)
{
    int32_t channel;
    for (channel = 0; channel < channels; ++channel) {
        uint32_t sum = 0;
        int32_t position;
        int32_t shifted;
        int32_t output;
        for (position = 0; position < positions; ++position) {
            const int32_t value = in[position * channels + channel];
            sum += (uint32_t)value; /* one cast: gcc's -Wsign-conversion misreads a cast of a cast */
        }
        shifted = (int32_t)(sum - (uint32_t)input_zero_point * (uint32_t)positions);
        output = (int32_t)((uint32_t)nn_mbqm(shifted, multiplier, shift) + (uint32_t)output_zero_point);
        out[channel] = nn_s16_clamp(output, -32768, 32767);
    }
}

#endif /* NN_USE_MEAN_S16 */

#ifdef NN_USE_LEAKY_RELU_S16

/* leaky_relu_s16 (the fields of LeakyReluS16Params in order; shifts at most
 * 30) */
static void nn_leaky_relu_s16(const int16_t *in, int16_t *out, int32_t size, int32_t input_zero_point,
                              int32_t output_zero_point, int32_t multiplier_identity, int32_t shift_identity,
                              int32_t multiplier_alpha, int32_t shift_alpha)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input = (int32_t)in[i] - input_zero_point;
        const int32_t scaled = input >= 0 ? nn_mbqm(input, multiplier_identity, shift_identity)
                                          : nn_mbqm(input, multiplier_alpha, shift_alpha);
        const int32_t output = (int32_t)((uint32_t)output_zero_point + (uint32_t)scaled);
        out[i] = nn_s16_clamp(output, -32768, 32767);
    }
}

#endif /* NN_USE_LEAKY_RELU_S16 */
