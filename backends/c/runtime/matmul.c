/* int8 dense and convolution layers as one matrix product: `positions` input
 * vectors of `depth` int8 values (`in_stride` apart) times `units` weight rows,
 * requantised into int8 outputs (`out_stride` apart, one per unit). The bias
 * already holds the input offset times each row's weight sum (folded at build
 * time; the emitter checks that no partial sum can leave int32), so the inner
 * loops multiply the stored values as they are. The result equals the plain
 * loops of ops.c.j2 (and nndsl/qmath) exactly: only the order of the integer
 * additions changes.
 *
 * Two positions by two rows at a time, so each loaded input and weight value
 * serves two products. The rows of a pair are stored interleaved four values
 * at a time (row u's k..k+3, then row u+1's, for each whole group of four;
 * then row u's remaining values, then row u+1's), so one pointer walks both;
 * an odd last row is stored as it is. On a core with the DSP extension (and
 * unless NNDSL_PORTABLE is defined) four values are loaded per word and
 * multiplied two at a time with SMLAD: SXTB16 splits a word into its even and
 * its odd bytes as two int16 pairs, the same split on both sides, so the pairs
 * match. */

#if defined(__ARM_FEATURE_DSP) && !defined(NNDSL_PORTABLE)
#include <arm_acle.h>
#define NN_MAT_DSP 1

/* Four int8 values as one word (any alignment: the Cortex-M4 loads unaligned words). */
static inline int32_t nn_mat_word(const int8_t *p)
{
    int32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* The odd bytes of a word as an int16 pair: SXTB16 with its rotation, one instruction. */
static inline int32_t nn_mat_odd(int32_t word)
{
    int32_t pair;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(pair) : "r"(word));
    return pair;
}
#endif

#ifdef NN_SINGLE_ROUNDING
static inline int32_t nn_mat_scale(int32_t acc, int32_t multiplier, int32_t shift)
{
    return nn_mbqm(acc, multiplier, shift);
}
#else
/* nn_mbqm (double rounding) as one multiply-accumulate and two shifts, for
 * the layers the emitter gives these kernels: every multiplier above 2^30
 * (not 0, not exactly 2^30), every shift a right shift r >= 1, and twice any
 * reachable accumulator inside int32. With p = acc * multiplier, nn_mbqm is
 * round-half-away(round-half-up(p / 2^31) / 2^r), which equals
 *   floor((p + 2^30 + (2^(r-1) - [p < -2^30]) * 2^31) / 2^(31+r))
 * (nested floor divisions merge; the inner result is negative exactly when
 * p < -2^30, which for such a multiplier is acc < 0). Doubling p puts the
 * division by 2^31 at the high word of the 64-bit sum: */
static inline int32_t nn_mat_scale(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t twice = acc * 2;
    const int32_t right = -shift;
    /* the high word of twice * multiplier, rounded (one SMMULR): the terms that are whole multiples of 2^32
     * are added after the shift instead */
    const int32_t high = (int32_t)(((int64_t)twice * multiplier + ((int64_t)1 << 31)) >> 32);
    return (high + ((int32_t)1 << (right - 1)) - (twice < 0)) >> right;
}
#endif

/* The requantisation of one layer: per channel (step 1) or per tensor (step 0). */
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t step;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_mat_requant_t;

/* One output value: requantised, offset and clamped. */
static inline int8_t nn_mat_out(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_offset,
                                int32_t act_min, int32_t act_max)
{
    int32_t value = nn_mat_scale(acc, multiplier, shift) + out_offset;
    value = value < act_min ? act_min : value;
    return (int8_t)(value > act_max ? act_max : value);
}

/* One input vector against one weight row stored as it is: acc + the dot product. */
static inline int32_t nn_mat_dot(const int8_t *a, const int8_t *w, int32_t depth, int32_t acc)
{
    int32_t k = 0;
#ifdef NN_MAT_DSP
    for (; k + 3 < depth; k += 4) {
        const int32_t x = nn_mat_word(a + k);
        const int32_t v = nn_mat_word(w + k);
        acc = __smlad(__sxtb16(x), __sxtb16(v), acc);
        acc = __smlad(nn_mat_odd(x), nn_mat_odd(v), acc);
    }
#endif
    for (; k < depth; ++k) {
        acc += (int32_t)a[k] * (int32_t)w[k];
    }
    return acc;
}

/* The four products of two input values and two weights, added to a 2x2 block. */
static inline void nn_mat_mac(int32_t acc[4], int32_t x0, int32_t x1, int32_t v0, int32_t v1)
{
    acc[0] += x0 * v0;
    acc[1] += x0 * v1;
    acc[2] += x1 * v0;
    acc[3] += x1 * v1;
}

/* Input vectors a0 and a1 against an interleaved pair of rows: the 2x2 block of the product. */
static inline void nn_mat_2x2(const int8_t *a0, const int8_t *a1, const int8_t *pair, int32_t depth,
                              int32_t acc[4])
{
    const int32_t whole = depth & ~3;
    const int8_t *tail = pair + 2 * whole;
    int32_t k;
#ifdef NN_MAT_DSP
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
    for (k = 0; k < whole; k += 4) {
        const int32_t x0 = nn_mat_word(a0 + k), x1 = nn_mat_word(a1 + k);
        const int32_t x0_even = __sxtb16(x0), x0_odd = nn_mat_odd(x0);
        const int32_t x1_even = __sxtb16(x1), x1_odd = nn_mat_odd(x1);
        const int32_t v0 = nn_mat_word(pair + 2 * k), v1 = nn_mat_word(pair + 2 * k + 4);
        const int32_t v0_even = __sxtb16(v0), v0_odd = nn_mat_odd(v0);
        const int32_t v1_even = __sxtb16(v1), v1_odd = nn_mat_odd(v1);
        s00 = __smlad(x0_odd, v0_odd, __smlad(x0_even, v0_even, s00));
        s10 = __smlad(x1_odd, v0_odd, __smlad(x1_even, v0_even, s10));
        s01 = __smlad(x0_odd, v1_odd, __smlad(x0_even, v1_even, s01));
        s11 = __smlad(x1_odd, v1_odd, __smlad(x1_even, v1_even, s11));
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
#else
    for (k = 0; k < whole; k += 4) {  /* written out: the compiler does not unroll at -O2 */
        const int8_t *v = pair + 2 * k;
        nn_mat_mac(acc, a0[k], a1[k], v[0], v[4]);
        nn_mat_mac(acc, a0[k + 1], a1[k + 1], v[1], v[5]);
        nn_mat_mac(acc, a0[k + 2], a1[k + 2], v[2], v[6]);
        nn_mat_mac(acc, a0[k + 3], a1[k + 3], v[3], v[7]);
    }
#endif
    for (k = whole; k < depth; ++k) {
        nn_mat_mac(acc, a0[k], a1[k], tail[k - whole], tail[depth - whole + k - whole]);
    }
}

/* One input vector against an interleaved pair of rows. */
static inline void nn_mat_1x2(const int8_t *a, const int8_t *pair, int32_t depth, int32_t *acc0, int32_t *acc1)
{
    int32_t s0 = *acc0, s1 = *acc1;
    const int32_t whole = depth & ~3;
    const int8_t *tail = pair + 2 * whole;
    int32_t k;
#ifdef NN_MAT_DSP
    for (k = 0; k < whole; k += 4) {
        const int32_t x = nn_mat_word(a + k);
        const int32_t x_even = __sxtb16(x), x_odd = nn_mat_odd(x);
        const int32_t v0 = nn_mat_word(pair + 2 * k), v1 = nn_mat_word(pair + 2 * k + 4);
        s0 = __smlad(x_odd, nn_mat_odd(v0), __smlad(x_even, __sxtb16(v0), s0));
        s1 = __smlad(x_odd, nn_mat_odd(v1), __smlad(x_even, __sxtb16(v1), s1));
    }
#else
    for (k = 0; k < whole; k += 4) {
        const int8_t *v = pair + 2 * k;
        int32_t j;
        for (j = 0; j < 4; ++j) {
            const int32_t x = a[k + j];
            s0 += x * (int32_t)v[j];
            s1 += x * (int32_t)v[4 + j];
        }
    }
#endif
    for (k = whole; k < depth; ++k) {
        const int32_t x = a[k];
        s0 += x * (int32_t)tail[k - whole];
        s1 += x * (int32_t)tail[depth - whole + k - whole];
    }
    *acc0 = s0;
    *acc1 = s1;
}

/* The product, block by block. The layer's constants are read into locals once: an int8 store may alias
 * anything, so fields read through `q` would be loaded again after every output. */
static void nn_mat_s8(const int8_t *in, int32_t positions, int32_t in_stride, const int8_t *weights,
                      int32_t units, int32_t depth, const nn_mat_requant_t *q, int8_t *out, int32_t out_stride)
{
    const int32_t *bias = q->bias, *multiplier = q->multiplier, *shift = q->shift;
    const int32_t step = q->step, out_offset = q->out_offset, act_min = q->act_min, act_max = q->act_max;
    int32_t u;
    for (u = 0; u < units; u += 2) {
        const int32_t pair = u + 1 < units;  /* else an odd last row, stored as it is */
        const int8_t *w = weights + u * depth;
        const int32_t m0 = multiplier[u * step], s0 = shift[u * step];
        const int32_t m1 = multiplier[(u + pair) * step], s1 = shift[(u + pair) * step];
        const int8_t *a = in;
        int8_t *o = out + u;
        int32_t p = 0;
        for (; p + 1 < positions; p += 2) {
            int32_t acc[4];
            if (pair) {
                acc[0] = acc[2] = bias[u];
                acc[1] = acc[3] = bias[u + 1];
                nn_mat_2x2(a, a + in_stride, w, depth, acc);
                o[1] = nn_mat_out(acc[1], m1, s1, out_offset, act_min, act_max);
                o[out_stride + 1] = nn_mat_out(acc[3], m1, s1, out_offset, act_min, act_max);
            } else {
                acc[0] = nn_mat_dot(a, w, depth, bias[u]);
                acc[2] = nn_mat_dot(a + in_stride, w, depth, bias[u]);
            }
            o[0] = nn_mat_out(acc[0], m0, s0, out_offset, act_min, act_max);
            o[out_stride] = nn_mat_out(acc[2], m0, s0, out_offset, act_min, act_max);
            a += 2 * in_stride;
            o += 2 * out_stride;
        }
        if (p < positions) {
            int32_t acc0 = bias[u], acc1 = bias[u + pair];
            if (pair) {
                nn_mat_1x2(a, w, depth, &acc0, &acc1);
                o[1] = nn_mat_out(acc1, m1, s1, out_offset, act_min, act_max);
            } else {
                acc0 = nn_mat_dot(a, w, depth, acc0);
            }
            o[0] = nn_mat_out(acc0, m0, s0, out_offset, act_min, act_max);
        }
    }
}
