/* AVERAGE_POOL_2D and MEAN (global average pooling), int8 and int16 (16x8
 * scheme), TensorFlow Lite Micro reference kernels: mirror nndsl/qmath/pooling.py
 * (_avg_pool, _mean). Needs requant.c (MEAN only). Each op has one int32
 * element function and one loop, written once below and instantiated per
 * storage type under NN_USE_<OP>_S8 / _S16, so that an unused static function
 * never warns. */

#if defined(NN_USE_AVG_POOL_S8) || defined(NN_USE_AVG_POOL_S16)

/* One output of _avg_pool: the sum of a window's count in-bounds taps divided
 * by count, rounding half away from zero, clamped to [act_min, act_max]. A
 * window without taps (TFLM fails on it; never so with TFLite's padding)
 * gives act-clamped 0 instead of a division by zero. int16 windows must have
 * at most 65535 taps, so that the int32 sum cannot overflow. */
static int32_t nn_avg_pool_average(int32_t acc, int32_t count, int32_t act_min, int32_t act_max)
{
    if (count > 0) {
        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    }
    acc = acc < act_min ? act_min : acc;
    return acc > act_max ? act_max : acc;
}

/* avg_pool_s8 / avg_pool_s16, one batch item in HWC layout: each output
 * averages the in-bounds taps of its window (padding is never counted). */
#define NN_AVG_POOL_LOOP(name, type)                                                                              \
    static void name(const type *in, type *out, int32_t in_h, int32_t in_w, int32_t channels, int32_t out_h,     \
                     int32_t out_w, int32_t filter_h, int32_t filter_w, int32_t stride_h, int32_t stride_w,       \
                     int32_t pad_top, int32_t pad_left, int32_t act_min, int32_t act_max)                         \
    {                                                                                                             \
        int32_t out_y;                                                                                            \
        for (out_y = 0; out_y < out_h; ++out_y) {                                                                 \
            const int32_t in_y_origin = out_y * stride_h - pad_top;                                               \
            const int32_t filter_y_start = in_y_origin < 0 ? -in_y_origin : 0;                                    \
            const int32_t filter_y_end = filter_h < in_h - in_y_origin ? filter_h : in_h - in_y_origin;           \
            int32_t out_x;                                                                                        \
            for (out_x = 0; out_x < out_w; ++out_x) {                                                             \
                const int32_t in_x_origin = out_x * stride_w - pad_left;                                          \
                const int32_t filter_x_start = in_x_origin < 0 ? -in_x_origin : 0;                                \
                const int32_t filter_x_end = filter_w < in_w - in_x_origin ? filter_w : in_w - in_x_origin;       \
                int32_t channel;                                                                                  \
                for (channel = 0; channel < channels; ++channel) {                                                \
                    int32_t acc = 0;                                                                              \
                    int32_t count = 0;                                                                            \
                    int32_t filter_y;                                                                             \
                    for (filter_y = filter_y_start; filter_y < filter_y_end; ++filter_y) {                        \
                        const int32_t row = (in_y_origin + filter_y) * in_w;                                      \
                        int32_t filter_x;                                                                         \
                        for (filter_x = filter_x_start; filter_x < filter_x_end; ++filter_x) {                    \
                            acc += (int32_t)in[(row + in_x_origin + filter_x) * channels + channel];              \
                            ++count;                                                                              \
                        }                                                                                         \
                    }                                                                                             \
                    out[(out_y * out_w + out_x) * channels + channel] =                                           \
                        (type)nn_avg_pool_average(acc, count, act_min, act_max);                                  \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }

#endif

#ifdef NN_USE_AVG_POOL_S8
NN_AVG_POOL_LOOP(nn_avg_pool_s8, int8_t)
#endif

#ifdef NN_USE_AVG_POOL_S16
NN_AVG_POOL_LOOP(nn_avg_pool_s16, int16_t)
#endif

#if defined(NN_USE_MEAN_S8) || defined(NN_USE_MEAN_S16)

/* One output of _mean before the clamp: the wrapped int32 sum of positions
 * values, minus input_zero_point * positions, through MultiplyByQuantizedMultiplier
 * (multiplier and shift already hold the 1 / count factor), plus the output
 * zero point. The int32 arithmetic wraps through uint32_t, as TFLM's
 * AddTensorValuesWithExpectedOverflow. */
static int32_t nn_mean_element(uint32_t sum, int32_t positions, int32_t input_zero_point, int32_t output_zero_point,
                               int32_t multiplier, int32_t shift)
{
    const int32_t shifted = (int32_t)(sum - (uint32_t)input_zero_point * (uint32_t)positions);
    return (int32_t)((uint32_t)nn_mbqm(shifted, multiplier, shift) + (uint32_t)output_zero_point);
}

/* mean_s8 / mean_s16, one batch item: in is positions x channels (C order),
 * out has channels values. The arguments after channels are MeanS8Params' /
 * MeanS16Params' fields after count (positions is the count); low and high
 * are the storage type's bounds. */
#define NN_MEAN_LOOP(name, type, low, high)                                                                       \
    static void name(const type *in, type *out, int32_t positions, int32_t channels, int32_t input_zero_point,   \
                     int32_t output_zero_point, int32_t multiplier, int32_t shift)                                \
    {                                                                                                             \
        int32_t channel;                                                                                          \
        for (channel = 0; channel < channels; ++channel) {                                                        \
            uint32_t sum = 0;                                                                                     \
            int32_t position;                                                                                     \
            int32_t output;                                                                                       \
            for (position = 0; position < positions; ++position) {                                                \
                const int32_t value = in[position * channels + channel];                                          \
                sum += (uint32_t)value; /* one cast: gcc's -Wsign-conversion misreads a cast of a cast */         \
            }                                                                                                     \
            output = nn_mean_element(sum, positions, input_zero_point, output_zero_point, multiplier, shift);     \
            out[channel] = (type)(output > (high) ? (high) : output < (low) ? (low) : output);                    \
        }                                                                                                         \
    }

#endif

#ifdef NN_USE_MEAN_S8
NN_MEAN_LOOP(nn_mean_s8, int8_t, -128, 127)
#endif

#ifdef NN_USE_MEAN_S16
NN_MEAN_LOOP(nn_mean_s16, int16_t, -32768, 32767)
#endif
