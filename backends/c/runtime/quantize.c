/* QUANTIZE from float and DEQUANTIZE to float, TensorFlow Lite Micro
 * reference kernels (AffineQuantize, Dequantize): mirror
 * nndsl/qmath/quantize.py, without libm. Each is compiled only under its
 * NN_USE_ macro. */

#ifdef NN_USE_QUANTIZE_F32

/* affine_quantize of one value: round(v / scale) halves away from zero (C's
 * roundf, computed exactly: the truncation of a float and its remainder are
 * exact), plus the zero point, clamped to [low, high]; NaN becomes the zero
 * point, quotients beyond the range saturate. */
static int32_t nn_quantize_f32(float v, float scale, int32_t zero_point, int32_t low, int32_t high)
{
    const float q = v / scale;
    float rounded;
    if (q != q) {
        return zero_point;
    }
    if (q >= (float)(high - zero_point)) {
        return high;
    }
    if (q <= (float)(low - zero_point)) {
        return low;
    }
    rounded = (float)(int32_t)q;
    if (q - rounded >= 0.5f) {
        rounded += 1.0f;
    } else if (q - rounded <= -0.5f) {
        rounded -= 1.0f;
    }
    {
        const int32_t value = (int32_t)rounded + zero_point;
        return value > high ? high : value < low ? low : value;
    }
}

#endif /* NN_USE_QUANTIZE_F32 */

#ifdef NN_USE_DEQUANTIZE

/* dequantize of one value */
static float nn_dequantize(int32_t q, float scale, int32_t zero_point)
{
    return scale * (float)(q - zero_point);
}

#endif /* NN_USE_DEQUANTIZE */
