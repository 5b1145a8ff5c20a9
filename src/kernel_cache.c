/* The binary cache entry format: magic, version, the full key string, payload length and an
 * FNV-1a checksum. A bad entry is reported as such and rebuilt by the caller, never trusted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio_impl.h"
#include "program_impl.h"
#include "status_impl.h"

/* Layout, little-endian: "CLCNNBIN" | u32 version | u32 key length | u64 payload length |
 * u64 fnv1a64(key || payload) | key bytes | payload bytes. */
static const char magic[8] = {'C', 'L', 'C', 'N', 'N', 'B', 'I', 'N'};
#define FORMAT_VERSION 1u
#define HEADER_SIZE 32u
/* A program binary beyond this is not something clcnn wrote. */
#define MAX_ENTRY_SIZE ((size_t)1 << 30)
#define MAX_KEY_SIZE 65536u

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void clcnn__kcache_file_name(const char *name, uint64_t key_hash, char *buf, size_t size)
{
    size_t stem = strcspn(name, ".");
    if (stem > 64)
        stem = 64;
    snprintf(buf, size, "%.*s-%016llx.clbin", (int)stem, name, (unsigned long long)key_hash);
}

clcnn__kcache_result clcnn__kcache_parse(const unsigned char *p, size_t len, const char *key,
                                         unsigned char **binary, size_t *size, char *why,
                                         size_t why_size)
{
    size_t key_len = strlen(key);
    if (len < HEADER_SIZE || memcmp(p, magic, sizeof magic) != 0) {
        snprintf(why, why_size, "bad magic or short header (%zu bytes)", len);
    } else if (get_u32(p + 8) != FORMAT_VERSION) {
        snprintf(why, why_size, "format version %u, expected %u", get_u32(p + 8), FORMAT_VERSION);
    } else if (get_u32(p + 12) != key_len || key_len > MAX_KEY_SIZE ||
               len - HEADER_SIZE < key_len ||
               get_u64(p + 16) != (uint64_t)(len - HEADER_SIZE - key_len)) {
        snprintf(why, why_size, "lengths do not match the file (truncated or for another key)");
    } else if (memcmp(p + HEADER_SIZE, key, key_len) != 0) {
        snprintf(why, why_size, "key differs (hash collision or stale entry)");
    } else {
        size_t payload = len - HEADER_SIZE - key_len;
        uint64_t sum = clcnn__fnv1a64(CLCNN_FNV1A64_INIT, p + HEADER_SIZE, key_len + payload);
        if (sum != get_u64(p + 24)) {
            snprintf(why, why_size, "checksum mismatch");
        } else if (payload == 0) {
            snprintf(why, why_size, "empty binary");
        } else {
            unsigned char *out = malloc(payload);
            if (out == NULL) {
                snprintf(why, why_size, "cannot allocate %zu bytes", payload);
            } else {
                memcpy(out, p + HEADER_SIZE + key_len, payload);
                *binary = out;
                *size = payload;
                return CLCNN_KCACHE_HIT;
            }
        }
    }
    return CLCNN_KCACHE_BAD;
}

clcnn__kcache_result clcnn__kcache_read(const char *path, const char *key, unsigned char **binary,
                                        size_t *size, char *why, size_t why_size)
{
    FILE *probe = fopen(path, "rb");
    if (probe == NULL) {
        snprintf(why, why_size, "%s", strerror(errno));
        return CLCNN_KCACHE_MISSING;
    }
    fclose(probe);
    void *data;
    size_t len;
    if (clcnn__file_read_all(path, MAX_ENTRY_SIZE, &data, &len) != CLCNN_OK) {
        snprintf(why, why_size, "%s", clcnn_last_error());
        clcnn_clear_error();
        return CLCNN_KCACHE_BAD;
    }
    clcnn__kcache_result result = clcnn__kcache_parse(data, len, key, binary, size, why, why_size);
    free(data);
    return result;
}

clcnn_status clcnn__kcache_encode(const char *key, const unsigned char *binary, size_t size,
                                  unsigned char **entry, size_t *entry_size)
{
    size_t key_len = strlen(key);
    CLCNN_FAIL_IF(key_len > MAX_KEY_SIZE || size == 0 || size > MAX_ENTRY_SIZE,
                  CLCNN_STATUS_INVALID_ARG, "kernel cache: bad entry (key %zu, binary %zu bytes)",
                  key_len, size);
    size_t total = HEADER_SIZE + key_len + size;
    unsigned char *buf = malloc(total);
    CLCNN_FAIL_IF(buf == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                  "kernel cache: cannot allocate %zu bytes", total);
    memcpy(buf, magic, sizeof magic);
    put_u32(buf + 8, FORMAT_VERSION);
    put_u32(buf + 12, (uint32_t)key_len);
    put_u64(buf + 16, size);
    memcpy(buf + HEADER_SIZE, key, key_len);
    memcpy(buf + HEADER_SIZE + key_len, binary, size);
    put_u64(buf + 24, clcnn__fnv1a64(CLCNN_FNV1A64_INIT, buf + HEADER_SIZE, key_len + size));
    *entry = buf;
    *entry_size = total;
    return CLCNN_OK;
}

clcnn_status clcnn__kcache_write(const char *path, const char *key, const unsigned char *binary,
                                 size_t size)
{
    unsigned char *buf = NULL;
    size_t total = 0;
    clcnn_status st = clcnn__kcache_encode(key, binary, size, &buf, &total);
    if (st != CLCNN_OK) {
        clcnn__error_prefix("%s", path);
        return st;
    }
    st = clcnn__file_write_atomic(path, buf, total);
    free(buf);
    return st;
}
