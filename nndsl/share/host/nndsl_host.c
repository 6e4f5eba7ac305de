/* The host program of `nndsl validate`: runs a generated model on every input
   of a binary file and writes the outputs to another, so that the compiled C
   can be compared with the NumPy backend and a reference.

   Build it with the model's C prefix, its upper-case macro prefix and header:
     cc -std=c99 -DNNDSL_MODEL=mlp -DNNDSL_MODEL_UPPER=MLP -DNNDSL_MODEL_HEADER='"mlp.h"' \
        mlp.c nndsl_host.c -o host -lm
   Run: host INPUT OUTPUT [TRACE]. INPUT holds whole inputs back to back
   (native byte order, C order); OUTPUT gets one output per input. With TRACE,
   and the model compiled with <NAME>_TRACE defined as a call of nndsl_trace,
   every layer's values are appended to TRACE as they are computed: per layer
   an int32 index, an int32 name length, an int32 byte count, the name, the bytes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include NNDSL_MODEL_HEADER

#define NNDSL_PASTE(a, b) a##b
#define NNDSL_NAME(prefix, suffix) NNDSL_PASTE(prefix, suffix)

void nndsl_trace(int layer, const char *name, const void *data, size_t element_size, size_t count);

static FILE *nndsl_trace_file = NULL;

/* One layer's record; a no-op unless the program was given a trace file. */
void nndsl_trace(int layer, const char *name, const void *data, size_t element_size, size_t count)
{
    int32_t header[3];
    if (nndsl_trace_file == NULL) {
        return;
    }
    header[0] = (int32_t)layer;
    header[1] = (int32_t)strlen(name);
    header[2] = (int32_t)(element_size * count);
    fwrite(header, sizeof header, 1, nndsl_trace_file);
    fwrite(name, 1, strlen(name), nndsl_trace_file);
    fwrite(data, element_size, count, nndsl_trace_file);
}

int main(int argc, char **argv)
{
    static NNDSL_NAME(NNDSL_MODEL, _input_t) input[NNDSL_NAME(NNDSL_MODEL_UPPER, _INPUT_SIZE)];
    static NNDSL_NAME(NNDSL_MODEL, _output_t) output[NNDSL_NAME(NNDSL_MODEL_UPPER, _OUTPUT_SIZE)];
    FILE *in;
    FILE *out;
    size_t got;
    int status = 0;
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s INPUT OUTPUT [TRACE]\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (argc == 4) {
        nndsl_trace_file = fopen(argv[3], "wb");
    }
    if (in == NULL || out == NULL || (argc == 4 && nndsl_trace_file == NULL)) {
        fprintf(stderr, "cannot open the input, output or trace file\n");
        return 3;
    }
    while ((got = fread(input, 1, sizeof input, in)) == sizeof input) {
        int rc = NNDSL_NAME(NNDSL_MODEL, _run)(input, output);
        if (rc != 0) {
            fprintf(stderr, "the model returned %d\n", rc);
            status = 4;
            break;
        }
        if (fwrite(output, sizeof output, 1, out) != 1) {
            status = 5;
            break;
        }
    }
    if (status == 0 && got != 0) {
        fprintf(stderr, "the input file ends in a partial input\n");
        status = 6;
    }
    fclose(in);
    if (fclose(out) != 0 && status == 0) {
        status = 5;
    }
    if (nndsl_trace_file != NULL && fclose(nndsl_trace_file) != 0 && status == 0) {
        status = 5;
    }
    return status;
}
