/* libFuzzer target for the CIFAR-10 binary reader: arbitrary bytes must never crash, leak or
 * read out of bounds; what parses is a whole number of records with labels 0-9, writing the
 * records back gives exactly the input bytes, and appending the same batch again (as the reader
 * does with data_batch_1..5) doubles the dataset with an identical second half. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { IMAGE = 3 * 32 * 32, RECORD = 1 + IMAGE };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clcnn_dataset d;
    memset(&d, 0, sizeof d);
    if (clcnn__cifar10_append(data, size, "fuzz", &d) != CLCNN_OK) {
        /* A refused batch changes nothing. */
        if (d.count != 0)
            abort();
        clcnn_dataset_free(&d);
        return 0;
    }
    if (size % RECORD != 0 || d.count != size / RECORD)
        abort();
    /* The records written back are the input. */
    for (size_t i = 0; i < d.count; i++) {
        const uint8_t *rec = data + i * RECORD;
        if (d.labels[i] > 9 || d.labels[i] != rec[0] ||
            memcmp(d.images + i * IMAGE, rec + 1, IMAGE) != 0)
            abort();
    }
    size_t n = d.count;
    if (clcnn__cifar10_append(data, size, "fuzz", &d) != CLCNN_OK || d.count != 2 * n ||
        memcmp(d.labels, d.labels + n, n) != 0 ||
        memcmp(d.images, d.images + n * IMAGE, n * IMAGE) != 0)
        abort();
    clcnn_dataset_free(&d);
    return 0;
}
