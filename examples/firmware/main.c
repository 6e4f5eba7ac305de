/* A bare-metal Cortex-M4 program running two nndsl models, mlp (digits) and
   conv1d (accelerometer gestures), in one image.

   The inputs arrive as real numbers (float), as a sensor driver would give
   them, and are quantised with the macros of each model's header:
   q = round(x / INPUT_SCALE) + INPUT_ZERO_POINT, clamped to int8, exactly as
   TensorFlow Lite (and `nndsl run --quantize`) quantises them.

   The start-up code and linker script are benchmarks/m4's. The tests run the
   image in a Cortex-M4 emulator: it writes nndsl_input before reset, stops at
   nndsl_done and reads nndsl_output and nndsl_status. On a board, the inputs
   would come from sensors and the outputs go wherever the application needs. */
#include <stdint.h>

#include "conv1d.h"
#include "mlp.h"

/* One real value to int8 with a model's input macros (round half away from zero). */
#define NNDSL_QUANTIZE(MODEL, x) quantize_s8((x), MODEL##_INPUT_SCALE, MODEL##_INPUT_ZERO_POINT)

static int8_t quantize_s8(float x, float scale, int32_t zero_point)
{
    float scaled = x / scale;
    int32_t q = (int32_t)(scaled >= 0.0f ? scaled + 0.5f : scaled - 0.5f) + zero_point;
    return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
}

/* The mlp's input, then conv1d's, as real values. .noinit: the start-up code leaves it alone. */
__attribute__((section(".noinit"), aligned(8)))
float nndsl_input[MLP_INPUT_SIZE + CONV1D_INPUT_SIZE];
/* The mlp's output, then conv1d's, quantised as the models give them. */
__attribute__((aligned(8)))
int8_t nndsl_output[MLP_OUTPUT_SIZE + CONV1D_OUTPUT_SIZE];
volatile int nndsl_status = -1;

int main(void);
void nndsl_done(void);

/* The end of the program: the emulator stops here, on a board a debugger would. */
__attribute__((noinline)) void nndsl_done(void)
{
    for (;;) {
        __asm volatile("bkpt #0");
    }
}

int main(void)
{
    static mlp_input_t digits[MLP_INPUT_SIZE];
    static conv1d_input_t motion[CONV1D_INPUT_SIZE];
    int i;
    for (i = 0; i < MLP_INPUT_SIZE; ++i) {
        digits[i] = NNDSL_QUANTIZE(MLP, nndsl_input[i]);
    }
    for (i = 0; i < CONV1D_INPUT_SIZE; ++i) {
        motion[i] = NNDSL_QUANTIZE(CONV1D, nndsl_input[MLP_INPUT_SIZE + i]);
    }
    nndsl_status = mlp_run(digits, nndsl_output) | conv1d_run(motion, nndsl_output + MLP_OUTPUT_SIZE);
    nndsl_done();
    return 0;
}
