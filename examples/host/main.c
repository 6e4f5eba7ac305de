/* A host program for any generated model: reads inputs from stdin, INPUT_SIZE
   values each, and writes OUTPUT_SIZE values per input to stdout. On a
   microcontroller you call <name>_run() the same way.

   Build it with the model's name, e.g. for examples/mlp:
     gcc -std=c99 -Wall -Wextra -Werror -pedantic -Ibuild/mlp \
         -DMODEL=mlp -DMODEL_UPPER=MLP -DMODEL_HEADER='"mlp.h"' \
         build/mlp/mlp.c examples/host/main.c -o build/mlp/mlp -lm */
#include <stdio.h>

#include MODEL_HEADER

#define PASTE(a, b) a##b
#define NAME(prefix, suffix) PASTE(prefix, suffix)

int main(void)
{
    static NAME(MODEL, _input_t) input[NAME(MODEL_UPPER, _INPUT_SIZE)];
    static NAME(MODEL, _output_t) output[NAME(MODEL_UPPER, _OUTPUT_SIZE)];
    while (fread(input, sizeof input, 1, stdin) == 1) {
        if (NAME(MODEL, _run)(input, output) != 0) {
            return 1;
        }
        if (fwrite(output, sizeof output, 1, stdout) != 1) {
            return 1;
        }
    }
    return 0;
}
