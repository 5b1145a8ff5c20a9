/* libFuzzer target for the IDX reader (plain and gzip): arbitrary bytes must never crash, leak,
 * read out of bounds or inflate past the declared size, and what parses must be consistent. */
#include <stdint.h>
#include <stdlib.h>

#include "clcnn/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clcnn_idx x;
    if (clcnn_idx_parse(data, size, &x) != CLCNN_OK)
        return 0;
    size_t count = 1;
    for (int i = 0; i < x.rank; i++)
        count *= x.dims[i];
    if (x.rank < 1 || x.rank > 4 || count != x.count || x.count > CLCNN_IDX_MAX_BYTES)
        abort();
    /* A plain file is header plus payload, nothing else. */
    if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b) &&
        size != 4 + 4 * (size_t)x.rank + x.count)
        abort();
    clcnn_idx_free(&x);
    return 0;
}
