/* ADD of equal shapes, int8 and int16 (16x8 scheme), TensorFlow Lite Micro
 * reference kernels: mirror add_s8 and add_s16 (nndsl/qmath/add.py). Needs
 * requant.c and binary.c, whose add element function is the one of both
 * (and of the broadcast ADD): one loop, written once below, instantiated per
 * storage type under NN_USE_ADD_S8 / NN_USE_ADD_S16, so that an unused static
 * function never warns. The arguments after size are the fields of
 * AddS8Params / AddS16Params in order (shifts <= 0, left_shift 20 or 15),
 * then the fused activation's bounds in the storage type. */

#define NN_ADD_LOOP(name, type)                                                                                   \
    static void name(const type *a, const type *b, type *out, int32_t size, int32_t input1_offset,              \
                     int32_t input1_multiplier, int32_t input1_shift, int32_t input2_offset,                      \
                     int32_t input2_multiplier, int32_t input2_shift, int32_t output_offset,                      \
                     int32_t output_multiplier, int32_t output_shift, int32_t left_shift, int32_t act_min,        \
                     int32_t act_max)                                                                             \
    {                                                                                                             \
        int32_t i;                                                                                                \
        for (i = 0; i < size; ++i) {                                                                              \
            out[i] = (type)nn_add_q((int32_t)a[i], (int32_t)b[i], input1_offset, input1_multiplier, input1_shift, \
                                    input2_offset, input2_multiplier, input2_shift, output_offset,                \
                                    output_multiplier, output_shift, left_shift, act_min, act_max);               \
        }                                                                                                         \
    }

#ifdef NN_USE_ADD_S8
NN_ADD_LOOP(nn_add_s8, int8_t)
#endif

#ifdef NN_USE_ADD_S16
NN_ADD_LOOP(nn_add_s16, int16_t)
#endif
