/* Requantisation primitives: mirror nndsl/qmath/requant.py. */

/* wrap_int16: the two's-complement conversion of an int to int16_t the C++ relies on */
static inline int32_t nn_wrap_int16(int32_t x)
{
    return (int32_t)(((uint32_t)x + 32768u) & 0xFFFFu) - 32768;
}

/* saturating_rounding_doubling_high_mul */
static inline int32_t nn_srdhm(int32_t a, int32_t b)
{
    int64_t product;
    int64_t nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    product = (int64_t)a * (int64_t)b;
    nudge = product >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((product + nudge) / ((int64_t)1 << 31));
}

/* rounding_divide_by_pot */
static inline int32_t nn_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

#ifdef NN_SINGLE_ROUNDING
/* multiply_by_quantized_multiplier_single (TFLITE_SINGLE_ROUNDING; also its
 * SmallerThanOneExp and GreaterThanOne variants): one rounding of the 64-bit
 * product, shift in [-31, 30]. */
static inline int32_t nn_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    const int64_t result = (int64_t)x * (int64_t)multiplier + round;
    return (int32_t)(result >> total_shift);
}
#else
/* multiply_by_quantized_multiplier */
static inline int32_t nn_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t scaled = (int32_t)((uint32_t)x << left);
    return nn_rdbpot(nn_srdhm(scaled, multiplier), right);
}
#endif

/* multiply_by_quantized_multiplier_int64: TensorFlow Lite's int64-input
 * MultiplyByQuantizedMultiplier, used
 * by the int16-activation FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D
 * kernels with an int64 (or no) bias. The multiplier is reduced to 16 bits,
 * min((m + 2^15) >> 16, 0x7FFF), then (acc * reduced + 2^(14 - shift)) is
 * shifted right by 15 - shift: one rounding, ties toward +infinity.
 *
 * Domain (TFLite's DCHECKs): -2^47 <= acc < 2^47, 0 <= multiplier,
 * -31 <= shift <= 7. There |acc * reduced| < 2^47 * 2^15 = 2^62 and the
 * rounding term is at most 2^45, so no int64 operation overflows, and the
 * shift amounts stay in [8, 46] and [7, 45]. As in TFLite, the right shift of
 * a negative int64 is arithmetic (gcc and clang document it) and the int64
 * result is truncated to int32 without saturation (modulo 2^32 on gcc/clang;
 * the 16x8 kernels clamp afterwards). */
static inline int32_t nn_mbqm64(int64_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    const int64_t result = (acc * (int64_t)reduced + round) >> total_shift;
    return (int32_t)result;
}
