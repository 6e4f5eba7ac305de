/* RESIZE_NEAREST_NEIGHBOR, TensorFlow Lite Micro reference kernel: mirrors
 * nndsl/qmath/resize.py. The input row and column of every output row and
 * column were chosen at build time (GetNearestNeighbor's float arithmetic);
 * here each output pixel's channels are copied from its input pixel.
 * Compiled only under its NN_USE_ macro. */

#ifdef NN_USE_RESIZE_NEAREST

/* resize_nearest: out [out_h][out_w][channels] from in [.][in_w][channels],
 * values of `width` bytes. */
static void nn_resize_nearest(const void *in, void *out, int32_t width, int32_t out_h, int32_t out_w, int32_t in_w,
                              int32_t channels, const int32_t *rows, const int32_t *cols)
{
    const unsigned char *src = (const unsigned char *)in;
    unsigned char *dst = (unsigned char *)out;
    const size_t pixel = (size_t)channels * (size_t)width;
    int32_t y, x;
    for (y = 0; y < out_h; ++y) {
        for (x = 0; x < out_w; ++x) {
            memcpy(dst, src + ((size_t)rows[y] * (size_t)in_w + (size_t)cols[x]) * pixel, pixel);
            dst += pixel;
        }
    }
}

#endif /* NN_USE_RESIZE_NEAREST */
