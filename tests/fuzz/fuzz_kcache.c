/* libFuzzer target for a kernel binary cache entry: arbitrary bytes must never crash, leak or
 * read out of bounds; an entry the reader accepts for a key (the key it carries, when its header
 * says where that is, else a fixed one) encodes back to exactly the input bytes, and a
 * rejection always says why. Each input is also tried with its payload length and checksum
 * recomputed, so mutations get past them to the checks behind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fileio_impl.h"
#include "program_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { HEADER = 32 };

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The key the entry names, NUL-terminated (malloc'd), or a fixed key when it names none. */
static char *key_of(const uint8_t *data, size_t size)
{
    const char *fixed = "clcnn-program 1\nclcnn 0.1.0\n";
    size_t n = strlen(fixed);
    const void *from = fixed;
    if (size >= HEADER) {
        uint64_t len = le(data + 12, 4);
        if (len <= size - HEADER && memchr(data + HEADER, 0, (size_t)len) == NULL) {
            n = (size_t)len;
            from = data + HEADER;
        }
    }
    char *key = malloc(n + 1);
    if (key == NULL)
        abort();
    memcpy(key, from, n);
    key[n] = '\0';
    return key;
}

static void check_input(const uint8_t *data, size_t size)
{
    char *key = key_of(data, size);
    unsigned char *bin = NULL;
    size_t n = 0;
    char why[256] = "";
    clcnn__kcache_result r = clcnn__kcache_parse(data, size, key, &bin, &n, why, sizeof why);
    if (r == CLCNN_KCACHE_HIT) {
        unsigned char *entry = NULL;
        size_t entry_size = 0;
        if (n == 0 || clcnn__kcache_encode(key, bin, n, &entry, &entry_size) != CLCNN_OK ||
            entry_size != size || memcmp(entry, data, size) != 0)
            abort();
        free(entry);
        free(bin);
    } else if (r != CLCNN_KCACHE_BAD || why[0] == '\0' || bin != NULL) {
        abort();
    }
    free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_input(data, size);
    if (size < HEADER)
        return 0;
    uint8_t *fixed = malloc(size);
    if (fixed == NULL)
        return 0;
    memcpy(fixed, data, size);
    uint64_t key_len = le(fixed + 12, 4);
    if (key_len <= size - HEADER)
        put_le(fixed + 16, size - HEADER - key_len);
    put_le(fixed + 24, clcnn__fnv1a64(CLCNN_FNV1A64_INIT, fixed + HEADER, size - HEADER));
    check_input(fixed, size);
    free(fixed);
    return 0;
}
