/* A host program for the generated mlp.c: reads int8 inputs from stdin,
   MLP_INPUT_SIZE bytes each, and writes MLP_OUTPUT_SIZE int8 outputs per
   input to stdout. On a microcontroller you call mlp_run() the same way. */
#include <stdio.h>

#include "mlp.h"

int main(void)
{
    mlp_input_t input[MLP_INPUT_SIZE];
    mlp_output_t output[MLP_OUTPUT_SIZE];
    while (fread(input, sizeof input, 1, stdin) == 1) {
        if (mlp_run(input, output) != 0) {
            return 1;
        }
        if (fwrite(output, sizeof output, 1, stdout) != 1) {
            return 1;
        }
    }
    return 0;
}
