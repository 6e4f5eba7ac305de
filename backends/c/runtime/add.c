/* int8 ADD (equal shapes), TensorFlow Lite Micro reference kernel: mirrors
 * nndsl/qmath/add.py. Needs requant.c. Compiled only under NN_USE_ADD_S8, so
 * that an unused static function never warns. The int32 additions cannot
 * overflow for int8 inputs and multipliers below one; they wrap through
 * uint32_t all the same, as the Python wraps. */

#ifdef NN_USE_ADD_S8

/* add_s8 (the fields of AddS8Params in order, shifts <= 0; act_min/act_max
 * the fused activation's int8 bounds) */
static void nn_add_s8(const int8_t *a, const int8_t *b, int8_t *out, int32_t size,
                      int32_t input1_offset, int32_t input1_multiplier, int32_t input1_shift,
                      int32_t input2_offset, int32_t input2_multiplier, int32_t input2_shift,
                      int32_t output_offset, int32_t output_multiplier, int32_t output_shift,
                      int32_t left_shift, int32_t act_min, int32_t act_max)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t input1_val = input1_offset + (int32_t)a[i];
        const int32_t input2_val = input2_offset + (int32_t)b[i];
        const int32_t shifted_input1_val = (int32_t)((uint32_t)input1_val << left_shift);
        const int32_t shifted_input2_val = (int32_t)((uint32_t)input2_val << left_shift);
        const int32_t scaled_input1_val = nn_mbqm(shifted_input1_val, input1_multiplier, input1_shift);
        const int32_t scaled_input2_val = nn_mbqm(shifted_input2_val, input2_multiplier, input2_shift);
        const int32_t raw_sum = (int32_t)((uint32_t)scaled_input1_val + (uint32_t)scaled_input2_val);
        const int32_t raw_output = (int32_t)((uint32_t)nn_mbqm(raw_sum, output_multiplier, output_shift) +
                                             (uint32_t)output_offset);
        out[i] = (int8_t)(raw_output > act_max ? act_max : raw_output < act_min ? act_min : raw_output);
    }
}

#endif /* NN_USE_ADD_S8 */
