/* Element functions of the int8 and int16 binary ops with broadcasting (ADD
 * with a constant or a broadcast operand, SUB, MUL, SQUARED_DIFFERENCE,
 * MAXIMUM, MINIMUM, int8 PRELU), TensorFlow Lite Micro reference kernels: mirror
 * nndsl/qmath/add.py and nndsl/qmath/binary.py. The generated code walks the
 * broadcast and calls one of these per output value with the two stored
 * values widened to int32; each returns the output value, already clamped.
 * Needs requant.c. Each is compiled only under its NN_USE_<OP>_Q macro, so
 * that an unused static function never warns. int32 arithmetic wraps through
 * uint32_t, as the Python wraps. */

#if defined(NN_USE_BROADCAST_ADD_Q) || defined(NN_USE_ADD_S8) || defined(NN_USE_ADD_S16) || defined(NN_USE_SUB_Q) || \
    defined(NN_USE_SQUARED_DIFFERENCE_Q)

/* _aligned: a centred input shifted left, then scaled onto the shared scale (shift <= 0) */
static inline int32_t nn_aligned(int32_t x, int32_t offset, int32_t multiplier, int32_t shift, int32_t left_shift)
{
    return nn_mbqm((int32_t)((uint32_t)(x + offset) << left_shift), multiplier, shift);
}

/* the clamp of an output value */
static inline int32_t nn_clamp_q(int32_t value, int32_t low, int32_t high)
{
    return value > high ? high : value < low ? low : value;
}

#endif

#if defined(NN_USE_BROADCAST_ADD_Q) || defined(NN_USE_ADD_S8) || defined(NN_USE_ADD_S16)

/* add_s8 / add_s16 on one pair of values (the fields of AddS8Params in order); also the element of
 * add.c's equal-shape loops */
static inline int32_t nn_add_q(int32_t x, int32_t y,
                               int32_t input1_offset, int32_t input1_multiplier, int32_t input1_shift,
                               int32_t input2_offset, int32_t input2_multiplier, int32_t input2_shift,
                               int32_t output_offset, int32_t output_multiplier, int32_t output_shift,
                               int32_t left_shift, int32_t act_min, int32_t act_max)
{
    const int32_t raw = (int32_t)((uint32_t)nn_aligned(x, input1_offset, input1_multiplier, input1_shift, left_shift) +
                                  (uint32_t)nn_aligned(y, input2_offset, input2_multiplier, input2_shift, left_shift));
    return nn_clamp_q((int32_t)((uint32_t)nn_mbqm(raw, output_multiplier, output_shift) + (uint32_t)output_offset),
                      act_min, act_max);
}

#endif /* NN_USE_BROADCAST_ADD_Q || NN_USE_ADD_S8 || NN_USE_ADD_S16 */

#ifdef NN_USE_SUB_Q

/* sub (the fields of AlignedParams in order) */
static inline int32_t nn_sub_q(int32_t x, int32_t y,
                               int32_t input1_offset, int32_t input1_multiplier, int32_t input1_shift,
                               int32_t input2_offset, int32_t input2_multiplier, int32_t input2_shift,
                               int32_t output_offset, int32_t output_multiplier, int32_t output_shift,
                               int32_t left_shift, int32_t act_min, int32_t act_max)
{
    const int32_t raw = (int32_t)((uint32_t)nn_aligned(x, input1_offset, input1_multiplier, input1_shift, left_shift) -
                                  (uint32_t)nn_aligned(y, input2_offset, input2_multiplier, input2_shift, left_shift));
    return nn_clamp_q((int32_t)((uint32_t)nn_mbqm(raw, output_multiplier, output_shift) + (uint32_t)output_offset),
                      act_min, act_max);
}

#endif /* NN_USE_SUB_Q */

#ifdef NN_USE_SQUARED_DIFFERENCE_Q

/* squared_difference (the fields of AlignedParams in order; the clamp is the storage type's range) */
static inline int32_t nn_squared_difference_q(int32_t x, int32_t y,
                                              int32_t input1_offset, int32_t input1_multiplier, int32_t input1_shift,
                                              int32_t input2_offset, int32_t input2_multiplier, int32_t input2_shift,
                                              int32_t output_offset, int32_t output_multiplier, int32_t output_shift,
                                              int32_t left_shift, int32_t act_min, int32_t act_max)
{
    const int32_t diff = (int32_t)((uint32_t)nn_aligned(x, input1_offset, input1_multiplier, input1_shift, left_shift) -
                                   (uint32_t)nn_aligned(y, input2_offset, input2_multiplier, input2_shift, left_shift));
    const int32_t squared = (int32_t)((uint32_t)diff * (uint32_t)diff);
    return nn_clamp_q((int32_t)((uint32_t)nn_mbqm(squared, output_multiplier, output_shift) + (uint32_t)output_offset),
                      act_min, act_max);
}

#endif /* NN_USE_SQUARED_DIFFERENCE_Q */

#ifdef NN_USE_MUL_Q

/* mul (the fields of MulParams in order) */
static inline int32_t nn_mul_q(int32_t x, int32_t y, int32_t input1_offset, int32_t input2_offset,
                               int32_t output_offset, int32_t output_multiplier, int32_t output_shift,
                               int32_t act_min, int32_t act_max)
{
    const int32_t product = (int32_t)((uint32_t)(x + input1_offset) * (uint32_t)(y + input2_offset));
    const int32_t value = (int32_t)((uint32_t)nn_mbqm(product, output_multiplier, output_shift) +
                                    (uint32_t)output_offset);
    return value > act_max ? act_max : value < act_min ? act_min : value;
}

#endif /* NN_USE_MUL_Q */

#ifdef NN_USE_PRELU_Q

/* prelu (the fields of PreluParams in order, then the storage type's range) */
static inline int32_t nn_prelu_q(int32_t x, int32_t alpha, int32_t input_offset, int32_t alpha_offset,
                                 int32_t output_offset, int32_t output_multiplier_1, int32_t output_shift_1,
                                 int32_t output_multiplier_2, int32_t output_shift_2, int32_t low, int32_t high)
{
    const int32_t centred = x + input_offset;
    const int32_t scaled = centred >= 0
        ? nn_mbqm(centred, output_multiplier_1, output_shift_1)
        : nn_mbqm(centred * (alpha + alpha_offset), output_multiplier_2, output_shift_2);
    const int32_t value = (int32_t)((uint32_t)scaled + (uint32_t)output_offset);
    return value > high ? high : value < low ? low : value;
}

#endif /* NN_USE_PRELU_Q */

#ifdef NN_USE_MAXIMUM_Q

/* maximum */
static inline int32_t nn_maximum_q(int32_t x, int32_t y)
{
    return x > y ? x : y;
}

#endif /* NN_USE_MAXIMUM_Q */

#ifdef NN_USE_MINIMUM_Q

/* minimum */
static inline int32_t nn_minimum_q(int32_t x, int32_t y)
{
    return x < y ? x : y;
}

#endif /* NN_USE_MINIMUM_Q */

#ifdef NN_USE_BINARY_SHIFT_Q

/* binary_q (nndsl/qmath/shift.py) of two qM.N values: `op` is the index in
 * BINARY_Q_OPS (add, sub, mul, maximum, minimum, squared_difference), then
 * the fields of BinaryQParams and the clamp. Needs shift.c. The range
 * analysis proves the int32 value before the shift cannot overflow. */
static inline int32_t nn_binary_shift_q(int32_t x, int32_t y, int32_t op, int32_t left_a, int32_t left_b,
                                        int32_t shift, int32_t low, int32_t high)
{
    const int32_t a = (int32_t)((uint32_t)x << left_a);
    const int32_t b = (int32_t)((uint32_t)y << left_b);
    int32_t raw;
    switch (op) {
    case 0:
        raw = a + b;
        break;
    case 1:
        raw = a - b;
        break;
    case 2:
        raw = a * b;
        break;
    case 3:
        raw = a > b ? a : b;
        break;
    case 4:
        raw = a < b ? a : b;
        break;
    default:
        raw = (a - b) * (a - b);
        break;
    }
    raw = nn_shift_round(raw, shift);
    return raw > high ? high : raw < low ? low : raw;
}

#endif /* NN_USE_BINARY_SHIFT_Q */
