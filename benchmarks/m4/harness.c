/* One inference on the input the emulator wrote, then a stop the emulator waits for.

   Build with the model's names, as examples/host/main.c:
     -DMODEL=mlp -DMODEL_UPPER=MLP -DMODEL_HEADER='"mlp.h"'
   nndsl_input lives in .noinit, which the reset handler leaves alone: the
   emulator writes it before reset. nndsl_output and nndsl_status are read back
   at nndsl_done. */
#include MODEL_HEADER

#define PASTE(a, b) a##b
#define NAME(prefix, suffix) PASTE(prefix, suffix)

__attribute__((section(".noinit"), aligned(8)))
NAME(MODEL, _input_t) nndsl_input[NAME(MODEL_UPPER, _INPUT_SIZE)];
__attribute__((aligned(8)))
NAME(MODEL, _output_t) nndsl_output[NAME(MODEL_UPPER, _OUTPUT_SIZE)];
volatile int nndsl_status = -1;

int main(void);
void nndsl_done(void);

/* The emulator stops when execution reaches here; on a board a debugger would. */
__attribute__((noinline)) void nndsl_done(void)
{
    for (;;) {
        __asm volatile("bkpt #0");
    }
}

int main(void)
{
    nndsl_status = NAME(MODEL, _run)(nndsl_input, nndsl_output);
    nndsl_done();
    return 0;
}
