/* libFuzzer target for the .npy reader: arbitrary bytes must never crash, leak or read out of
 * bounds, and a file that parses must survive serialize -> parse with the same shape and the
 * same bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clcnn_npy_array a;
    if (clcnn_npy_parse(data, size, &a) != CLCNN_OK)
        return 0;
    size_t count = 1;
    for (int i = 0; i < a.rank; i++)
        count *= a.dims[i];
    if (a.rank < 1 || a.rank > CLCNN_NPY_MAX_RANK || count != a.count)
        abort();
    void *bytes = NULL;
    size_t n = 0;
    if (clcnn_npy_serialize(a.rank, a.dims, a.data, &bytes, &n) != CLCNN_OK)
        abort();
    clcnn_npy_array b;
    if (clcnn_npy_parse(bytes, n, &b) != CLCNN_OK)
        abort();
    if (b.rank != a.rank || memcmp(b.dims, a.dims, sizeof a.dims) != 0 || b.count != a.count ||
        memcmp(b.data, a.data, a.count * sizeof(float)) != 0)
        abort();
    /* A file clcnn wrote is the canonical form: writing it again gives the same bytes. */
    void *again = NULL;
    size_t m = 0;
    if (clcnn_npy_serialize(b.rank, b.dims, b.data, &again, &m) != CLCNN_OK || m != n ||
        memcmp(again, bytes, n) != 0)
        abort();
    clcnn_free(again);
    clcnn_free(bytes);
    clcnn_npy_array_free(&b);
    clcnn_npy_array_free(&a);
    return 0;
}
