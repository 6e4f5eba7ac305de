/* Requantisation primitives: mirror nndsl/qmath/requant.py. */

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
