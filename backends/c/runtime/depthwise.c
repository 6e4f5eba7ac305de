/* int8 depthwise convolution with one output channel per input channel: four
 * channels at a time, their sums held in registers over every tap of the
 * window inside the input (taps in the padding add nothing, as in the plain
 * loops of ops.c.j2 and nndsl/qmath), then requantised. On a core with the DSP
 * extension (unless NNDSL_PORTABLE is defined) a tap's four input values are
 * loaded as one word and widened with the input offset added by SXTAB16, and
 * the weights by SXTB16; SMLABB/SMLATT multiply the matching halves. The
 * integer sums are the plain loops' exactly.
 *
 * Channel groups are independent, so a layer whose output has its input's
 * shape may write over its input (the memory planner decides): given a
 * scratch buffer, each group's input channels are copied there first, and
 * the group's outputs overwrite only those channels. */

/* The geometry of a windowed layer ([H][W][C] input and output, TFLM's padding). */
typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w;
    int32_t k_h, k_w, s_h, s_w, d_h, d_w, pad_top, pad_left;
} nn_window_t;

/* The first tap index and the end of the taps of one output row (or column) that fall inside the input. */
static inline void nn_tap_range(int32_t start, int32_t dilation, int32_t size, int32_t taps, int32_t *lo,
                                int32_t *hi)
{
    int32_t end;
    if (dilation == 1) {  /* no division: the common case */
        *lo = start < 0 ? -start : 0;
        end = size - start;
    } else {
        *lo = start < 0 ? (-start + dilation - 1) / dilation : 0;
        end = start >= size ? 0 : (size - start + dilation - 1) / dilation;
    }
    *hi = end < taps ? end : taps;
}

#ifdef NN_MAT_DSP
/* The odd bytes of a word as an int16 pair, plus the pair `offset`: SXTAB16 with its rotation. */
static inline int32_t nn_dw_odd_plus(int32_t offset, int32_t word)
{
    int32_t pair;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(pair) : "r"(offset), "r"(word));
    return pair;
}
#endif

/* Four channels of one output position: acc[j] += sum over the taps of (input + offset) * weight. The
 * input's pixels are `pixel` bytes apart, the weights' taps g->channels. */
static inline void nn_dw_4(const int8_t *in, int32_t pixel, const int8_t *weights, const nn_window_t *g, int32_t y0,
                           int32_t x0, int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi,
                           int32_t input_offset, int32_t acc[4])
{
    const int32_t channels = g->channels;
    int32_t ky, kx;
#ifdef NN_MAT_DSP
    const int32_t offsets = (int32_t)(((uint32_t)input_offset << 16) | ((uint32_t)input_offset & 0xFFFFu));
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    for (ky = ky_lo; ky < ky_hi; ++ky) {
        const int8_t *px = in + ((y0 + ky * g->d_h) * g->in_w + x0 + kx_lo * g->d_w) * pixel;
        const int8_t *pw = weights + (ky * g->k_w + kx_lo) * channels;
        for (kx = kx_lo; kx < kx_hi; ++kx) {
            const int32_t x = nn_mat_word(px), w = nn_mat_word(pw);
            const int32_t x_even = __sxtab16(offsets, x), x_odd = nn_dw_odd_plus(offsets, x);
            const int32_t w_even = __sxtb16(w), w_odd = nn_mat_odd(w);
            s0 = __smlabb(x_even, w_even, s0);
            s2 = __smlatt(x_even, w_even, s2);
            s1 = __smlabb(x_odd, w_odd, s1);
            s3 = __smlatt(x_odd, w_odd, s3);
            px += g->d_w * pixel;
            pw += channels;
        }
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
#else
    for (ky = ky_lo; ky < ky_hi; ++ky) {
        const int8_t *px = in + ((y0 + ky * g->d_h) * g->in_w + x0 + kx_lo * g->d_w) * pixel;
        const int8_t *pw = weights + (ky * g->k_w + kx_lo) * channels;
        for (kx = kx_lo; kx < kx_hi; ++kx) {
            acc[0] += ((int32_t)px[0] + input_offset) * (int32_t)pw[0];
            acc[1] += ((int32_t)px[1] + input_offset) * (int32_t)pw[1];
            acc[2] += ((int32_t)px[2] + input_offset) * (int32_t)pw[2];
            acc[3] += ((int32_t)px[3] + input_offset) * (int32_t)pw[3];
            px += g->d_w * pixel;
            pw += channels;
        }
    }
#endif
}

/* One channel of one output position (the channels left over after the groups of four). */
static inline int32_t nn_dw_1(const int8_t *in, int32_t pixel, const int8_t *weights, const nn_window_t *g,
                              int32_t y0, int32_t x0, int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi,
                              int32_t input_offset, int32_t acc)
{
    int32_t ky, kx;
    for (ky = ky_lo; ky < ky_hi; ++ky) {
        const int8_t *px = in + ((y0 + ky * g->d_h) * g->in_w + x0 + kx_lo * g->d_w) * pixel;
        const int8_t *pw = weights + (ky * g->k_w + kx_lo) * g->channels;
        for (kx = kx_lo; kx < kx_hi; ++kx) {
            acc += ((int32_t)*px + input_offset) * (int32_t)*pw;
            px += g->d_w * pixel;
            pw += g->channels;
        }
    }
    return acc;
}

/* The window of output position (oy, ox): its corner in the input and its taps inside the input. */
typedef struct {
    int32_t y0, x0, ky_lo, ky_hi, kx_lo, kx_hi;
} nn_taps_t;

static inline nn_taps_t nn_taps(const nn_window_t *g, int32_t oy, int32_t ox)
{
    nn_taps_t t;
    t.y0 = oy * g->s_h - g->pad_top;
    t.x0 = ox * g->s_w - g->pad_left;
    nn_tap_range(t.y0, g->d_h, g->in_h, g->k_h, &t.ky_lo, &t.ky_hi);
    nn_tap_range(t.x0, g->d_w, g->in_w, g->k_w, &t.kx_lo, &t.kx_hi);
    return t;
}

/* The input of channels [c, c + width) from `in` (pixels g->channels apart) to `scratch` (width apart). */
static void nn_dw_copy_group(const int8_t *in, const nn_window_t *g, int32_t c, int32_t width, int8_t *scratch)
{
    const int32_t pixels = g->in_h * g->in_w;
    int32_t i;
    for (i = 0; i < pixels; ++i) {
        if (width == 4) {
            memcpy(scratch + i * 4, in + i * g->channels + c, 4);
        } else {
            scratch[i] = in[i * g->channels + c];
        }
    }
}

/* weights: [k_h][k_w][channels] (TensorFlow Lite's layout with a depth multiplier of 1); q->bias is the
 * layer's own bias (no offset folded in). Channel groups outside, positions inside: a group's constants
 * stay loaded over the whole output. `scratch` (4 * in_h * in_w bytes) is given when `out` is `in`. */
static void nn_depthwise_s8(const int8_t *in, const nn_window_t *window, const int8_t *weights,
                            int32_t input_offset, const nn_mat_requant_t *q, int8_t *out, int8_t *scratch)
{
    const nn_window_t geometry = *window;  /* a local copy: int8 stores cannot alias it, so it stays loaded */
    const nn_window_t *g = &geometry;
    const int32_t channels = g->channels, groups = channels & ~3;
    const int32_t step = q->step, out_offset = q->out_offset, act_min = q->act_min, act_max = q->act_max;
    int32_t c, oy, ox;
    for (c = 0; c < groups; c += 4) {
        const int32_t m0 = q->multiplier[c * step], m1 = q->multiplier[(c + 1) * step];
        const int32_t m2 = q->multiplier[(c + 2) * step], m3 = q->multiplier[(c + 3) * step];
        const int32_t s0 = q->shift[c * step], s1 = q->shift[(c + 1) * step];
        const int32_t s2 = q->shift[(c + 2) * step], s3 = q->shift[(c + 3) * step];
        const int8_t *source = in + c;
        int32_t pixel = channels;
        int8_t *o = out + c;
        if (scratch != NULL) {
            nn_dw_copy_group(in, g, c, 4, scratch);
            source = scratch;
            pixel = 4;
        }
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                const nn_taps_t t = nn_taps(g, oy, ox);
                int32_t acc[4];
                acc[0] = q->bias[c];
                acc[1] = q->bias[c + 1];
                acc[2] = q->bias[c + 2];
                acc[3] = q->bias[c + 3];
                nn_dw_4(source, pixel, weights + c, g, t.y0, t.x0, t.ky_lo, t.ky_hi, t.kx_lo, t.kx_hi,
                        input_offset, acc);
                o[0] = nn_mat_out(acc[0], m0, s0, out_offset, act_min, act_max);
                o[1] = nn_mat_out(acc[1], m1, s1, out_offset, act_min, act_max);
                o[2] = nn_mat_out(acc[2], m2, s2, out_offset, act_min, act_max);
                o[3] = nn_mat_out(acc[3], m3, s3, out_offset, act_min, act_max);
                o += channels;
            }
        }
    }
    for (c = groups; c < channels; ++c) {
        const int32_t m = q->multiplier[c * step], s = q->shift[c * step];
        const int8_t *source = in + c;
        int32_t pixel = channels;
        int8_t *o = out + c;
        if (scratch != NULL) {
            nn_dw_copy_group(in, g, c, 1, scratch);
            source = scratch;
            pixel = 1;
        }
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                const nn_taps_t t = nn_taps(g, oy, ox);
                const int32_t acc = nn_dw_1(source, pixel, weights + c, g, t.y0, t.x0, t.ky_lo, t.ky_hi, t.kx_lo,
                                            t.kx_hi, input_offset, q->bias[c]);
                *o = nn_mat_out(acc, m, s, out_offset, act_min, act_max);
                o += channels;
            }
        }
    }
}
