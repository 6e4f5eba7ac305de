/* REDUCE_MAX and MEAN over any axes, TensorFlow Lite Micro reference
 * kernels: mirror nndsl/qmath/reduce.py. An outer walk visits the outputs
 * (the kept axes), an inner walk the values each reduces (the reduced axes);
 * each walk is `loops` loops of counts[k] steps of strides[k] input values.
 * Compiled only under NN_USE_REDUCE (a program keeps only the kernels it
 * calls: one guard for the file keeps the configurations few). */

#ifdef NN_USE_REDUCE

#define NN_REDUCE_MAX_LOOPS 8 /* a tensor's axes (nndsl.types.MAX_RANK) */

/* One step of a walk: `*at` moves to the next value; 0 once the walk is over
 * (then `index` and `*at` are back at its start). */
static int nn_walk_step(int32_t *index, int32_t loops, const int32_t *counts, const int32_t *strides, int32_t *at)
{
    int32_t axis;
    for (axis = loops - 1; axis >= 0; --axis) {
        *at += strides[axis];
        if (++index[axis] < counts[axis]) {
            return 1;
        }
        *at -= strides[axis] * counts[axis];
        index[axis] = 0;
    }
    return 0;
}

/* A stored int8 or int16 value (`width` bytes) of `in`. */
static int32_t nn_load_q(const void *in, int32_t width, int32_t at)
{
    return width == 1 ? (int32_t)((const int8_t *)in)[at] : (int32_t)((const int16_t *)in)[at];
}

/* reduce_max: the largest value of each output's values; `width` 1 (int8)
 * or 4 (float). */
static void nn_reduce_max(const void *in, void *out, int32_t width, int32_t outer_loops, const int32_t *outer_counts,
                          const int32_t *outer_strides, int32_t inner_loops, const int32_t *inner_counts,
                          const int32_t *inner_strides)
{
    int32_t outer_index[NN_REDUCE_MAX_LOOPS] = {0};
    int32_t inner_index[NN_REDUCE_MAX_LOOPS] = {0};
    int32_t base = 0;
    int32_t o = 0;
    do {
        int32_t at = base;
        if (width == 4) {
            const float *values = (const float *)in;
            float best = values[at];
            while (nn_walk_step(inner_index, inner_loops, inner_counts, inner_strides, &at)) {
                best = values[at] > best ? values[at] : best;
            }
            ((float *)out)[o] = best;
        } else {
            int32_t best = nn_load_q(in, width, at);
            while (nn_walk_step(inner_index, inner_loops, inner_counts, inner_strides, &at)) {
                const int32_t value = nn_load_q(in, width, at);
                best = value > best ? value : best;
            }
            if (width == 1) {
                ((int8_t *)out)[o] = (int8_t)best;
            } else {
                ((int16_t *)out)[o] = (int16_t)best;
            }
        }
        ++o;
    } while (nn_walk_step(outer_index, outer_loops, outer_counts, outer_strides, &base));
}

/* The ReduceMean record: mean_s8 / mean_s16 of each output's `count` values
 * (`width` 1 or 2 bytes). The arguments after the walks are MeanS8Params'
 * fields after count, then the storage type's clamp; multiplier and shift
 * already hold the 1 / count factor (QuantizedMeanOrSum). The int32 sum
 * wraps through uint32_t, as TFLM's AddTensorValuesWithExpectedOverflow. */
static void nn_reduce_mean_q(const void *in, void *out, int32_t width, int32_t outer_loops,
                             const int32_t *outer_counts, const int32_t *outer_strides, int32_t inner_loops,
                             const int32_t *inner_counts, const int32_t *inner_strides, int32_t input_zero_point,
                             int32_t output_zero_point, int32_t multiplier, int32_t shift, int32_t low, int32_t high)
{
    int32_t outer_index[NN_REDUCE_MAX_LOOPS] = {0};
    int32_t inner_index[NN_REDUCE_MAX_LOOPS] = {0};
    int32_t count = 1;
    int32_t base = 0;
    int32_t o = 0;
    int32_t k;
    for (k = 0; k < inner_loops; ++k) {
        count *= inner_counts[k];
    }
    do {
        int32_t at = base;
        uint32_t sum = 0;
        int32_t shifted;
        int32_t output;
        do {
            const int32_t value = nn_load_q(in, width, at);
            sum += (uint32_t)value; /* one cast: gcc's -Wsign-conversion misreads a cast of a cast */
        } while (nn_walk_step(inner_index, inner_loops, inner_counts, inner_strides, &at));
        shifted = (int32_t)(sum - (uint32_t)input_zero_point * (uint32_t)count);
        output = (int32_t)((uint32_t)nn_mbqm(shifted, multiplier, shift) + (uint32_t)output_zero_point);
        output = output > high ? high : output < low ? low : output;
        if (width == 1) {
            ((int8_t *)out)[o] = (int8_t)output;
        } else {
            ((int16_t *)out)[o] = (int16_t)output;
        }
        ++o;
    } while (nn_walk_step(outer_index, outer_loops, outer_counts, outer_strides, &base));
}

/* mean_f32: each output's values added in walk order, divided by their count. */
static void nn_reduce_mean_f32(const float *in, float *out, int32_t outer_loops, const int32_t *outer_counts,
                               const int32_t *outer_strides, int32_t inner_loops, const int32_t *inner_counts,
                               const int32_t *inner_strides)
{
    int32_t outer_index[NN_REDUCE_MAX_LOOPS] = {0};
    int32_t inner_index[NN_REDUCE_MAX_LOOPS] = {0};
    int32_t count = 1;
    int32_t base = 0;
    int32_t o = 0;
    int32_t k;
    for (k = 0; k < inner_loops; ++k) {
        count *= inner_counts[k];
    }
    do {
        int32_t at = base;
        float sum = 0.0f;
        do {
            sum += in[at];
        } while (nn_walk_step(inner_index, inner_loops, inner_counts, inner_strides, &at));
        out[o++] = sum / (float)count;
    } while (nn_walk_step(outer_index, outer_loops, outer_counts, outer_strides, &base));
}

#endif /* NN_USE_REDUCE */
