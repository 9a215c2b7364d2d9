/* What every libFuzzer target here shares: libFuzzer's entry point, and
 * CHECK, an invariant that aborts with its file, line and text (libFuzzer
 * then keeps the input as a crash: tests/fuzz/run copies it into
 * regressions/). */
#ifndef NIO_FUZZ_H
#define NIO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                     \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
