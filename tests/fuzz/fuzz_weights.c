/* libFuzzer target for the weights/checkpoint reader: arbitrary bytes must never crash, leak or
 * read out of bounds, and a file that parses is canonical: serializing what was parsed gives
 * back exactly the input bytes, which parse again to the same tensors and meta. Each input is
 * also tried with its CRCs recomputed, so mutations reach the checks behind the checksums. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "clcnn/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_consistent(const clcnn_weights *w)
{
    for (size_t i = 0; i < w->count; i++) {
        const clcnn_named_tensor *t = &w->tensors[i];
        size_t count = 1;
        for (int d = 0; d < t->rank; d++)
            count *= t->dims[d];
        if (t->rank < 1 || t->rank > CLCNN_WEIGHTS_MAX_RANK || count != t->count ||
            (uint64_t)count > CLCNN_WEIGHTS_MAX_ELEMENTS || t->data == NULL ||
            strlen(t->name) == 0 || clcnn_weights_find(w, t->name) != t)
            abort();
    }
}

static void check_input(const uint8_t *data, size_t size)
{
    clcnn_weights w;
    if (clcnn_weights_parse(data, size, &w) != CLCNN_OK)
        return;
    check_consistent(&w);
    void *bytes = NULL;
    size_t n = 0;
    if (clcnn_weights_serialize(w.tensors, w.count, w.meta, &bytes, &n) != CLCNN_OK)
        abort();
    /* The format has one encoding for each content, so the writer reproduces the input. */
    if (n != size || memcmp(bytes, data, size) != 0)
        abort();
    clcnn_weights again;
    if (clcnn_weights_parse(bytes, n, &again) != CLCNN_OK || again.count != w.count ||
        (again.meta == NULL) != (w.meta == NULL) ||
        (w.meta != NULL && memcmp(again.meta, w.meta, sizeof *w.meta) != 0))
        abort();
    for (size_t i = 0; i < w.count; i++) {
        const clcnn_named_tensor *a = &w.tensors[i], *b = &again.tensors[i];
        if (strcmp(a->name, b->name) != 0 || a->rank != b->rank ||
            memcmp(a->dims, b->dims, sizeof a->dims) != 0 || a->count != b->count ||
            memcmp(a->data, b->data, a->count * sizeof(float)) != 0)
            abort();
    }
    clcnn_weights_free(&again);
    clcnn_free(bytes);
    clcnn_weights_free(&w);
}

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_crc(uint8_t *p, size_t start, size_t at)
{
    uint32_t crc = (uint32_t)crc32(0L, p + start, (uInt)(at - start));
    for (int i = 0; i < 4; i++)
        p[at + (size_t)i] = (uint8_t)(crc >> (8 * i));
}

/* Walks the layout as far as it is consistent and rewrites each CRC it reaches to match. */
static void fix_crcs(uint8_t *p, size_t size)
{
    if (size < 20)
        return;
    size_t pos = 20;
    if (le(p + 12, 4) & CLCNN_WEIGHTS_FLAG_CHECKPOINT) {
        size_t start = pos;
        if (size - pos < 50)
            return;
        pos += 48;
        pos += 2 + (size_t)le(p + pos, 2);
        if (pos > size || size - pos < 2)
            return;
        uint64_t hyper = le(p + pos, 2);
        pos += 2;
        for (uint64_t i = 0; i < hyper && i < CLCNN_CHECKPOINT_MAX_HYPER; i++) {
            if (size - pos < 2)
                return;
            pos += 2 + (size_t)le(p + pos, 2) + 8;
            if (pos > size)
                return;
        }
        if (size - pos < 4)
            return;
        put_crc(p, start, pos);
        pos += 4;
    }
    uint64_t count = le(p + 16, 4);
    for (uint64_t t = 0; t < count && t < CLCNN_WEIGHTS_MAX_TENSORS; t++) {
        size_t start = pos;
        if (size - pos < 2)
            return;
        pos += 2 + (size_t)le(p + pos, 2);
        if (pos >= size)
            return;
        int rank = p[pos++];
        if (rank < 1 || rank > CLCNN_WEIGHTS_MAX_RANK || size - pos < 8 * (size_t)rank)
            return;
        uint64_t elements = 1;
        for (int d = 0; d < rank; d++, pos += 8) {
            uint64_t dim = le(p + pos, 8);
            if (dim == 0 || dim > CLCNN_WEIGHTS_MAX_ELEMENTS)
                return;
            elements *= dim;
            if (elements > CLCNN_WEIGHTS_MAX_ELEMENTS)
                return;
        }
        if ((size - pos) / 4 < elements + 1)
            return;
        pos += 4 * (size_t)elements;
        put_crc(p, start, pos);
        pos += 4;
    }
    if (size - pos >= 4)
        put_crc(p, 0, pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_input(data, size);
    uint8_t *fixed = malloc(size > 0 ? size : 1);
    if (fixed == NULL)
        return 0;
    if (size > 0)
        memcpy(fixed, data, size);
    fix_crcs(fixed, size);
    check_input(fixed, size);
    free(fixed);
    return 0;
}
