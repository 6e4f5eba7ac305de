/* The data-movement ops (TRANSPOSE, SLICE, STRIDED_SLICE), TensorFlow Lite
 * Micro reference kernels: values copied, never changed. Mirrors
 * nndsl/qmath/layout.py: each op is one strided walk over its input. Compiled
 * only under its NN_USE_ macro. */

#ifdef NN_USE_GATHER

#define NN_GATHER_MAX_LOOPS 8 /* a tensor's axes (nndsl.types.MAX_RANK) */

/* gather: out, in order, holds in[offset + i0 * strides[0] + ... + ik *
 * strides[k]] for every 0 <= i < counts (k = loops - 1), values of `width`
 * bytes (1, 2 or 4). The innermost loop is one memcpy where its values are
 * adjacent; the others advance an odometer. */
static void nn_gather(const void *in, void *out, int32_t width, int32_t loops, const int32_t *counts,
                      const int32_t *strides, int32_t offset)
{
    const unsigned char *src = (const unsigned char *)in;
    unsigned char *dst = (unsigned char *)out;
    const int32_t last = loops - 1;
    const int32_t run = counts[last];
    const int32_t step = strides[last];
    int32_t index[NN_GATHER_MAX_LOOPS];
    int32_t at = offset;
    int32_t axis, k;
    for (axis = 0; axis < last; ++axis) {
        index[axis] = 0;
    }
    for (;;) {
        if (step == 1) {
            memcpy(dst, src + (size_t)at * (size_t)width, (size_t)run * (size_t)width);
            dst += (size_t)run * (size_t)width;
        } else {
            int32_t p = at;
            for (k = 0; k < run; ++k) {
                memcpy(dst, src + (size_t)p * (size_t)width, (size_t)width);
                dst += width;
                p += step;
            }
        }
        for (axis = last - 1; axis >= 0; --axis) {
            at += strides[axis];
            if (++index[axis] < counts[axis]) {
                break;
            }
            at -= strides[axis] * counts[axis];
            index[axis] = 0;
        }
        if (axis < 0) {
            return;
        }
    }
}

#endif /* NN_USE_GATHER */
