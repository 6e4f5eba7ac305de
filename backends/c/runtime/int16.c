/* 16x8 requantisation: mirrors multiply_by_quantized_multiplier_int64
 * (nndsl/qmath/requant.py).
 *
 * nn_mbqm64: TensorFlow Lite's int64-input MultiplyByQuantizedMultiplier, used
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
