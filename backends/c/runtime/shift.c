/* Power-of-two fixed point (q7, q15, qM.N): mirrors nndsl/qmath/shift.py.
 * Needs requant.c (nn_rdbpot). */

/* shift_round: x * 2^-shift. A right shift (shift > 0) rounds half away from
 * zero; a left shift is exact, computed in 64 bits and saturated to int32. */
static inline int32_t nn_shift_round(int32_t x, int32_t shift)
{
    int64_t wide;
    if (shift > 0) {
        return nn_rdbpot(x, shift);
    }
    wide = (int64_t)x * ((int64_t)1 << -shift);
    return wide > INT32_MAX ? INT32_MAX : (wide < INT32_MIN ? INT32_MIN : (int32_t)wide);
}
