/* int8 AVERAGE_POOL_2D and MEAN (global average pooling), TensorFlow Lite
 * Micro reference kernels: mirror nndsl/qmath/pooling.py. Needs requant.c
 * (MEAN only). Each kernel is compiled only under its NN_USE_<OP>_S8 macro,
 * so that an unused static function never warns. */

#ifdef NN_USE_AVG_POOL_S8

/* avg_pool_s8, one batch item in HWC layout. Only in-bounds taps are summed
 * and counted; the average rounds half away from zero. Every window must
 * overlap the input (always so with pool_padding's padding): TFLM fails on a
 * window without taps, where this writes act-clamped 0 instead of dividing by
 * zero. */
static void nn_avg_pool_s8(const int8_t *in, int8_t *out, int32_t in_h, int32_t in_w, int32_t channels,
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
                acc = acc < act_min ? act_min : acc;
                acc = acc > act_max ? act_max : acc;
                out[(out_y * out_w + out_x) * channels + channel] = (int8_t)acc;
            }
        }
    }
}

#endif /* NN_USE_AVG_POOL_S8 */

#ifdef NN_USE_MEAN_S8

/* mean_s8, one batch item: in is positions x channels (C order), out has
 * channels values. The arguments after channels are MeanS8Params' fields
 * after count (positions is the count); multiplier and shift already hold
 * the 1 / count factor (QuantizedMeanOrSum). The int32 sum wraps through
 * uint32_t, as TFLM's AddTensorValuesWithExpectedOverflow. */
static void nn_mean_s8(const int8_t *in, int8_t *out, int32_t positions, int32_t channels,
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
        out[channel] = (int8_t)(output > 127 ? 127 : output < -128 ? -128 : output);
    }
}

#endif /* NN_USE_MEAN_S8 */
