/* Weights and checkpoint files (format in include/clcnn/weights.h): a writer that validates
 * what it writes, a reader that is safe on arbitrary bytes and checks every CRC-32 before it
 * allocates, lookup by name and the shape check a network uses to refuse mismatched weights. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "clcnn/weights.h"
#include "fileio_impl.h"
#include "status_impl.h"

_Static_assert(sizeof(float) == 4, "clcnn needs a 32-bit float");
_Static_assert(sizeof(double) == 8, "clcnn needs a 64-bit double");

#define MAGIC_LEN 8
#define HEADER_LEN 20 /* magic, version, flags, count */
#define CRC_LEN 4
#define META_FIXED_LEN 48 /* epoch, step, rng[4] */
/* The smallest tensor record: a 1-byte name, rank 1, one dimension, one float, its CRC. Used
 * to refuse a tensor count the file cannot hold before the array for it is allocated. */
#define MIN_RECORD_LEN (2 + 1 + 1 + 8 + 4 + CRC_LEN)
/* Big enough for any escaped name ("\xNN" per byte) plus "...". */
#define NAME_TEXT_MAX (4 * CLCNN_WEIGHTS_NAME_MAX + 8)
/* "D0xD1xD2xD3" with 20-digit dimensions. */
#define SHAPE_TEXT_MAX 96
/* The largest file clcnn_weights_load() reads: 64 GiB, or all of a 32-bit address space. */
#define MAX_FILE_BYTES ((uint64_t)64 << 30)

/* zlib's crc32() takes a uInt length, so feed big payloads in pieces. */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    uLong c = crc;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        c = crc32(c, p, (uInt)chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static uint32_t crc_of(const unsigned char *p, size_t n)
{
    return crc_update((uint32_t)crc32(0L, Z_NULL, 0), p, n);
}

/* Names are printable ASCII without spaces, so messages and model files quote them plainly. */
static int is_name_byte(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f;
}

/* Writes the first CLCNN_WEIGHTS_NAME_MAX bytes of a name for a message, other bytes as
 * \xNN, with "..." when it is longer. out holds NAME_TEXT_MAX bytes. */
static void escape_name(char *out, const unsigned char *p, size_t len)
{
    size_t n = 0;
    size_t shown = len > CLCNN_WEIGHTS_NAME_MAX ? CLCNN_WEIGHTS_NAME_MAX : len;
    for (size_t i = 0; i < shown; i++) {
        if (is_name_byte(p[i]) && p[i] != '\\')
            out[n++] = (char)p[i];
        else
            n += (size_t)snprintf(out + n, NAME_TEXT_MAX - n, "\\x%02x", p[i]);
    }
    if (len > shown) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* "2x3x5x5" into out (SHAPE_TEXT_MAX bytes). */
static void format_shape(char *out, int rank, const size_t *dims)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < rank; i++) {
        int w = snprintf(out + n, SHAPE_TEXT_MAX - n, i == 0 ? "%zu" : "x%zu", dims[i]);
        if (w > 0)
            n += (size_t)w;
    }
}

/* The product of dims, saturated at UINT64_MAX, so a huge or overflowing shape compares as
 * "over the limit" without wrapping. */
static uint64_t element_count(int rank, const uint64_t *dims)
{
    uint64_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] != 0 && count > UINT64_MAX / dims[i])
            return UINT64_MAX;
        count *= dims[i];
    }
    return count;
}

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* ---- writing ---- */

typedef struct writer {
    unsigned char *p;
    size_t pos;
} writer;

static void put_bytes(writer *w, const void *src, size_t n)
{
    memcpy(w->p + w->pos, src, n);
    w->pos += n;
}

static void put_uint(writer *w, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        w->p[w->pos++] = (unsigned char)(v >> (8 * i));
}

static void put_string(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_uint(w, n, 2);
    put_bytes(w, s, n);
}

static void put_floats(writer *w, const float *src, size_t count)
{
    if (host_is_little_endian()) {
        put_bytes(w, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        put_uint(w, bits, 4);
    }
}

static void put_crc_since(writer *w, size_t start)
{
    put_uint(w, crc_of(w->p + start, w->pos - start), 4);
}

/* Checks a NUL-terminated name held in a cap-byte field: 1 (or 0 when empty_ok) to cap - 1
 * printable bytes. Returns its length, or -1 with *why set. */
static long check_name_field(const char *field, size_t cap, int empty_ok, const char **why)
{
    const char *end = memchr(field, '\0', cap);
    if (end == NULL) {
        *why = "is not NUL-terminated within its field";
        return -1;
    }
    size_t len = (size_t)(end - field);
    if (len == 0 && !empty_ok) {
        *why = "is empty";
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_name_byte((unsigned char)field[i])) {
            *why = "has a byte that is not printable ASCII (or is a space)";
            return -1;
        }
    }
    return (long)len;
}

static int compare_names(const void *a, const void *b)
{
    const clcnn_named_tensor *const *x = a;
    const clcnn_named_tensor *const *y = b;
    int c = strcmp((*x)->name, (*y)->name);
    if (c != 0)
        return c;
    return *x < *y ? -1 : *x > *y;
}

/* Finds two tensors with the same name, in O(n log n); sets *first < *second (indices) and
 * returns 1, or returns 0. -1 when the index cannot be allocated. */
static int find_duplicate(const clcnn_named_tensor *tensors, size_t count, size_t *first,
                          size_t *second)
{
    if (count < 2)
        return 0;
    const clcnn_named_tensor **sorted = malloc(count * sizeof *sorted);
    if (sorted == NULL)
        return -1;
    for (size_t i = 0; i < count; i++)
        sorted[i] = &tensors[i];
    qsort(sorted, count, sizeof *sorted, compare_names);
    int found = 0;
    for (size_t i = 1; i < count && !found; i++) {
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
            *first = (size_t)(sorted[i - 1] - tensors);
            *second = (size_t)(sorted[i] - tensors);
            found = 1;
        }
    }
    free(sorted);
    return found;
}

/* Validates the meta and returns its encoded size. */
static clcnn_status check_meta(const char *label, const clcnn_checkpoint_meta *meta, uint64_t *size)
{
    const char *why = NULL;
    long len = check_name_field(meta->optimizer, sizeof meta->optimizer, 1, &why);
    CLCNN_FAIL_IF(len < 0, CLCNN_STATUS_INVALID_ARG, "%s: checkpoint meta: optimizer name %s",
                  label, why);
    CLCNN_FAIL_IF(meta->hyper_count > CLCNN_CHECKPOINT_MAX_HYPER, CLCNN_STATUS_INVALID_ARG,
                  "%s: checkpoint meta: %zu hyper-parameters, over the limit of %d", label,
                  meta->hyper_count, CLCNN_CHECKPOINT_MAX_HYPER);
    uint64_t total = META_FIXED_LEN + 2 + (uint64_t)len + 2 + CRC_LEN;
    for (size_t i = 0; i < meta->hyper_count; i++) {
        long n = check_name_field(meta->hyper_names[i], sizeof meta->hyper_names[i], 0, &why);
        CLCNN_FAIL_IF(n < 0, CLCNN_STATUS_INVALID_ARG,
                      "%s: checkpoint meta: hyper-parameter #%zu's name %s", label, i, why);
        for (size_t j = 0; j < i; j++)
            CLCNN_FAIL_IF(strcmp(meta->hyper_names[i], meta->hyper_names[j]) == 0,
                          CLCNN_STATUS_INVALID_ARG,
                          "%s: checkpoint meta: hyper-parameter '%s' appears twice (#%zu and "
                          "#%zu)",
                          label, meta->hyper_names[i], j, i);
        total += 2 + (uint64_t)n + 8;
    }
    *size = total;
    return CLCNN_OK;
}

/* Validates one tensor and returns its record's encoded size. */
static clcnn_status check_tensor(const char *label, size_t index, const clcnn_named_tensor *t,
                                 uint64_t *size)
{
    const char *why = NULL;
    long len = check_name_field(t->name, sizeof t->name, 0, &why);
    if (len < 0) {
        char text[NAME_TEXT_MAX];
        const char *end = memchr(t->name, '\0', sizeof t->name);
        escape_name(text, (const unsigned char *)t->name,
                    end != NULL ? (size_t)(end - t->name) : sizeof t->name);
        return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG,
                         "%s: tensor #%zu: name '%s' %s (names are 1 to %d printable ASCII "
                         "bytes without spaces)",
                         label, index, text, why, CLCNN_WEIGHTS_NAME_MAX);
    }
    CLCNN_FAIL_IF(t->rank < 1 || t->rank > CLCNN_WEIGHTS_MAX_RANK, CLCNN_STATUS_BAD_SHAPE,
                  "%s: tensor '%s': rank %d is not supported (1 to %d)", label, t->name, t->rank,
                  CLCNN_WEIGHTS_MAX_RANK);
    char shape[SHAPE_TEXT_MAX];
    format_shape(shape, t->rank, t->dims);
    uint64_t dims[CLCNN_WEIGHTS_MAX_RANK];
    for (int i = 0; i < t->rank; i++) {
        CLCNN_FAIL_IF(t->dims[i] == 0, CLCNN_STATUS_BAD_SHAPE,
                      "%s: tensor '%s': shape %s has a zero dimension", label, t->name, shape);
        dims[i] = t->dims[i];
    }
    uint64_t count = element_count(t->rank, dims);
    CLCNN_FAIL_IF(count > CLCNN_WEIGHTS_MAX_ELEMENTS, CLCNN_STATUS_BAD_SHAPE,
                  "%s: tensor '%s': shape %s is over the limit of %llu elements per tensor", label,
                  t->name, shape, (unsigned long long)CLCNN_WEIGHTS_MAX_ELEMENTS);
    CLCNN_FAIL_IF(count != t->count, CLCNN_STATUS_BAD_SHAPE,
                  "%s: tensor '%s': count %zu does not match shape %s (%llu elements)", label,
                  t->name, t->count, shape, (unsigned long long)count);
    CLCNN_FAIL_IF(t->data == NULL, CLCNN_STATUS_INVALID_ARG, "%s: tensor '%s': NULL data", label,
                  t->name);
    *size = 2 + (uint64_t)len + 1 + 8 * (uint64_t)t->rank + 4 * count + CRC_LEN;
    return CLCNN_OK;
}

static clcnn_status serialize(const char *label, const clcnn_named_tensor *tensors, size_t count,
                              const clcnn_checkpoint_meta *meta, void **bytes, size_t *size)
{
    CLCNN_FAIL_IF(bytes == NULL || size == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: serialize: NULL output pointer", label);
    CLCNN_FAIL_IF(tensors == NULL && count > 0, CLCNN_STATUS_INVALID_ARG,
                  "%s: NULL tensors with count %zu", label, count);
    CLCNN_FAIL_IF(count > CLCNN_WEIGHTS_MAX_TENSORS, CLCNN_STATUS_INVALID_ARG,
                  "%s: %zu tensors, over the limit of %u", label, count, CLCNN_WEIGHTS_MAX_TENSORS);
    uint64_t total = HEADER_LEN + CRC_LEN;
    if (meta != NULL) {
        uint64_t meta_size;
        CLCNN_TRY(check_meta(label, meta, &meta_size));
        total += meta_size;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t record;
        CLCNN_TRY(check_tensor(label, i, &tensors[i], &record));
        total += record;
    }
    size_t first = 0, second = 0;
    int dup = find_duplicate(tensors, count, &first, &second);
    CLCNN_FAIL_IF(dup < 0, CLCNN_STATUS_OUT_OF_MEMORY, "%s: cannot allocate a name index", label);
    CLCNN_FAIL_IF(dup > 0, CLCNN_STATUS_INVALID_ARG,
                  "%s: tensor '%s' appears twice (#%zu and #%zu)", label, tensors[first].name,
                  first, second);
    CLCNN_FAIL_IF(total > SIZE_MAX, CLCNN_STATUS_OUT_OF_MEMORY,
                  "%s: %llu bytes do not fit in memory", label, (unsigned long long)total);

    writer w = {malloc((size_t)total), 0};
    CLCNN_FAIL_IF(w.p == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %llu bytes", label,
                  (unsigned long long)total);
    put_bytes(&w, CLCNN_WEIGHTS_MAGIC, MAGIC_LEN);
    put_uint(&w, CLCNN_WEIGHTS_VERSION, 4);
    put_uint(&w, meta != NULL ? CLCNN_WEIGHTS_FLAG_CHECKPOINT : 0, 4);
    put_uint(&w, count, 4);
    if (meta != NULL) {
        size_t start = w.pos;
        put_uint(&w, meta->epoch, 8);
        put_uint(&w, meta->step, 8);
        for (int i = 0; i < 4; i++)
            put_uint(&w, meta->rng[i], 8);
        put_string(&w, meta->optimizer);
        put_uint(&w, meta->hyper_count, 2);
        for (size_t i = 0; i < meta->hyper_count; i++) {
            uint64_t bits;
            memcpy(&bits, &meta->hyper_values[i], sizeof bits);
            put_string(&w, meta->hyper_names[i]);
            put_uint(&w, bits, 8);
        }
        put_crc_since(&w, start);
    }
    for (size_t i = 0; i < count; i++) {
        const clcnn_named_tensor *t = &tensors[i];
        size_t start = w.pos;
        put_string(&w, t->name);
        put_uint(&w, (uint64_t)t->rank, 1);
        for (int d = 0; d < t->rank; d++)
            put_uint(&w, t->dims[d], 8);
        put_floats(&w, t->data, t->count);
        put_crc_since(&w, start);
    }
    put_crc_since(&w, 0);
    *bytes = w.p;
    *size = w.pos;
    return CLCNN_OK;
}

clcnn_status clcnn_weights_serialize(const clcnn_named_tensor *tensors, size_t count,
                                     const clcnn_checkpoint_meta *meta, void **bytes, size_t *size)
{
    return serialize("weights", tensors, count, meta, bytes, size);
}

clcnn_status clcnn_weights_save(const char *path, const clcnn_named_tensor *tensors, size_t count,
                                const clcnn_checkpoint_meta *meta)
{
    CLCNN_FAIL_IF(path == NULL, CLCNN_STATUS_INVALID_ARG, "weights: save: NULL path");
    void *bytes;
    size_t size;
    CLCNN_TRY(serialize(path, tensors, count, meta, &bytes, &size));
    clcnn_status status = clcnn__file_write_atomic(path, bytes, size);
    free(bytes);
    return status;
}

/* ---- reading ---- */

typedef struct reader {
    const char *label;
    const unsigned char *p;
    size_t size;
    size_t pos;
} reader;

/* Refuses unless n more bytes are there; ctx and what say which field ("tensor 'a'",
 * "payload"). */
static clcnn_status need(const reader *r, uint64_t n, const char *ctx, const char *what)
{
    size_t left = r->size - r->pos;
    CLCNN_FAIL_IF(n > left, CLCNN_STATUS_CORRUPT,
                  "%s: truncated at byte %zu: %s%s%s needs %llu bytes, %zu left", r->label, r->pos,
                  ctx, *ctx != '\0' ? " " : "", what, (unsigned long long)n, left);
    return CLCNN_OK;
}

static uint64_t get_uint(reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)bytes;
    return v;
}

/* Reads a string into out (cap bytes with its NUL): at most cap - 1 name bytes, at least one
 * unless empty_ok. ctx names the owner in messages. */
static clcnn_status get_name(reader *r, const char *ctx, const char *what, char *out, size_t cap,
                             int empty_ok)
{
    CLCNN_TRY(need(r, 2, ctx, what));
    size_t at = r->pos;
    size_t len = (size_t)get_uint(r, 2);
    CLCNN_FAIL_IF(len == 0 && !empty_ok, CLCNN_STATUS_CORRUPT, "%s: %s %s at byte %zu is empty",
                  r->label, ctx, what, at);
    CLCNN_TRY(need(r, len, ctx, what));
    const unsigned char *s = r->p + r->pos;
    char text[NAME_TEXT_MAX];
    escape_name(text, s, len);
    CLCNN_FAIL_IF(len > cap - 1, CLCNN_STATUS_CORRUPT,
                  "%s: %s %s '%s' at byte %zu is %zu bytes, over the limit of %zu", r->label, ctx,
                  what, text, at, len, cap - 1);
    for (size_t i = 0; i < len; i++)
        CLCNN_FAIL_IF(!is_name_byte(s[i]), CLCNN_STATUS_CORRUPT,
                      "%s: %s %s '%s' has byte 0x%02x at byte %zu (names are printable ASCII "
                      "without spaces)",
                      r->label, ctx, what, text, s[i], r->pos + i);
    memcpy(out, s, len);
    out[len] = '\0';
    r->pos += len;
    return CLCNN_OK;
}

/* Reads a u32 CRC and compares it with the CRC of the bytes from start up to it. */
static clcnn_status check_crc(reader *r, size_t start, const char *ctx)
{
    CLCNN_TRY(need(r, CRC_LEN, ctx, "checksum"));
    uint32_t computed = crc_of(r->p + start, r->pos - start);
    size_t at = r->pos;
    uint32_t stored = (uint32_t)get_uint(r, 4);
    CLCNN_FAIL_IF(stored != computed, CLCNN_STATUS_CORRUPT,
                  "%s: %s: checksum mismatch (bytes %zu to %zu, stored 0x%08x at byte %zu, "
                  "computed 0x%08x)",
                  r->label, ctx, start, at, stored, at, computed);
    return CLCNN_OK;
}

static clcnn_status parse_meta(reader *r, clcnn_checkpoint_meta *m)
{
    const char *ctx = "checkpoint meta";
    size_t start = r->pos;
    CLCNN_TRY(need(r, META_FIXED_LEN, ctx, "epoch, step and RNG state"));
    m->epoch = get_uint(r, 8);
    m->step = get_uint(r, 8);
    for (int i = 0; i < 4; i++)
        m->rng[i] = get_uint(r, 8);
    CLCNN_TRY(get_name(r, ctx, "optimizer name", m->optimizer, sizeof m->optimizer, 1));
    CLCNN_TRY(need(r, 2, ctx, "hyper-parameter count"));
    size_t at = r->pos;
    m->hyper_count = (size_t)get_uint(r, 2);
    CLCNN_FAIL_IF(m->hyper_count > CLCNN_CHECKPOINT_MAX_HYPER, CLCNN_STATUS_CORRUPT,
                  "%s: %s: %zu hyper-parameters at byte %zu, over the limit of %d", r->label, ctx,
                  m->hyper_count, at, CLCNN_CHECKPOINT_MAX_HYPER);
    for (size_t i = 0; i < m->hyper_count; i++) {
        at = r->pos;
        CLCNN_TRY(get_name(r, ctx, "hyper-parameter name", m->hyper_names[i],
                           sizeof m->hyper_names[i], 0));
        for (size_t j = 0; j < i; j++)
            CLCNN_FAIL_IF(strcmp(m->hyper_names[i], m->hyper_names[j]) == 0, CLCNN_STATUS_CORRUPT,
                          "%s: %s: hyper-parameter '%s' at byte %zu appears twice", r->label, ctx,
                          m->hyper_names[i], at);
        CLCNN_TRY(need(r, 8, ctx, "hyper-parameter value"));
        uint64_t bits = get_uint(r, 8);
        memcpy(&m->hyper_values[i], &bits, sizeof bits);
    }
    return check_crc(r, start, ctx);
}

/* Reads one tensor record into t; t->data is allocated only once the record's CRC is good. */
static clcnn_status parse_tensor(reader *r, size_t index, clcnn_named_tensor *t)
{
    char ctx[NAME_TEXT_MAX + 16];
    size_t start = r->pos;
    snprintf(ctx, sizeof ctx, "tensor #%zu", index);
    CLCNN_TRY(get_name(r, ctx, "name", t->name, sizeof t->name, 0));
    snprintf(ctx, sizeof ctx, "tensor '%s'", t->name);
    CLCNN_TRY(need(r, 1, ctx, "rank"));
    size_t at = r->pos;
    int rank = (int)get_uint(r, 1);
    CLCNN_FAIL_IF(rank < 1 || rank > CLCNN_WEIGHTS_MAX_RANK, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s: rank %d at byte %zu is not supported (1 to %d)", r->label, ctx, rank, at,
                  CLCNN_WEIGHTS_MAX_RANK);
    CLCNN_TRY(need(r, 8 * (uint64_t)rank, ctx, "dimensions"));
    at = r->pos;
    uint64_t dims[CLCNN_WEIGHTS_MAX_RANK];
    char shape[SHAPE_TEXT_MAX];
    size_t n = 0;
    for (int i = 0; i < rank; i++) {
        dims[i] = get_uint(r, 8);
        n += (size_t)snprintf(shape + n, sizeof shape - n, i == 0 ? "%llu" : "x%llu",
                              (unsigned long long)dims[i]);
    }
    for (int i = 0; i < rank; i++)
        CLCNN_FAIL_IF(dims[i] == 0, CLCNN_STATUS_BAD_SHAPE,
                      "%s: %s: shape %s at byte %zu has a zero dimension", r->label, ctx, shape,
                      at);
    uint64_t count = element_count(rank, dims);
    CLCNN_FAIL_IF(count > CLCNN_WEIGHTS_MAX_ELEMENTS || count > SIZE_MAX / sizeof(float),
                  CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s: absurd shape %s at byte %zu: over the limit of %llu elements per "
                  "tensor, refused before any allocation",
                  r->label, ctx, shape, at, (unsigned long long)CLCNN_WEIGHTS_MAX_ELEMENTS);
    CLCNN_TRY(need(r, 4 * count, ctx, "payload"));
    const unsigned char *payload = r->p + r->pos;
    r->pos += (size_t)(4 * count);
    CLCNN_TRY(check_crc(r, start, ctx));

    float *data = malloc((size_t)count * sizeof(float));
    CLCNN_FAIL_IF(data == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "%s: %s: cannot allocate %llu bytes",
                  r->label, ctx, (unsigned long long)(count * sizeof(float)));
    if (host_is_little_endian()) {
        memcpy(data, payload, (size_t)count * sizeof(float));
    } else {
        for (size_t i = 0; i < (size_t)count; i++) {
            const unsigned char *b = payload + 4 * i;
            uint32_t bits =
                (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            memcpy(&data[i], &bits, sizeof bits);
        }
    }
    t->rank = rank;
    for (int i = 0; i < CLCNN_WEIGHTS_MAX_RANK; i++)
        t->dims[i] = i < rank ? (size_t)dims[i] : 1;
    t->count = (size_t)count;
    t->data = data;
    return CLCNN_OK;
}

/* Everything after the header: meta, records, checksum. Fills out; on failure the caller
 * frees what it holds. offsets[i] is where record i starts, for messages. */
static clcnn_status parse_body(reader *r, uint32_t flags, clcnn_weights *out, size_t *offsets)
{
    if (flags & CLCNN_WEIGHTS_FLAG_CHECKPOINT) {
        out->meta = calloc(1, sizeof *out->meta);
        CLCNN_FAIL_IF(out->meta == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                      "%s: cannot allocate the checkpoint meta", r->label);
        CLCNN_TRY(parse_meta(r, out->meta));
    }
    size_t count = out->count;
    out->count = 0;
    for (size_t i = 0; i < count; i++) {
        offsets[i] = r->pos;
        CLCNN_TRY(parse_tensor(r, i, &out->tensors[i]));
        out->count = i + 1;
    }
    CLCNN_TRY(need(r, CRC_LEN, "", "file checksum"));
    CLCNN_FAIL_IF(r->size - r->pos > CRC_LEN, CLCNN_STATUS_CORRUPT,
                  "%s: %zu unexpected bytes after the file checksum at byte %zu", r->label,
                  r->size - r->pos - CRC_LEN, r->pos);
    uint32_t computed = crc_of(r->p, r->pos);
    size_t at = r->pos;
    uint32_t stored = (uint32_t)get_uint(r, 4);
    CLCNN_FAIL_IF(stored != computed, CLCNN_STATUS_CORRUPT,
                  "%s: file checksum mismatch (stored 0x%08x at byte %zu, computed 0x%08x)",
                  r->label, stored, at, computed);
    size_t first = 0, second = 0;
    int dup = find_duplicate(out->tensors, out->count, &first, &second);
    CLCNN_FAIL_IF(dup < 0, CLCNN_STATUS_OUT_OF_MEMORY, "%s: cannot allocate a name index",
                  r->label);
    CLCNN_FAIL_IF(dup > 0, CLCNN_STATUS_CORRUPT,
                  "%s: tensor '%s' at byte %zu duplicates tensor #%zu at byte %zu", r->label,
                  out->tensors[second].name, offsets[second], first, offsets[first]);
    return CLCNN_OK;
}

static clcnn_status parse(const char *label, const unsigned char *p, size_t size, clcnn_weights *w)
{
    reader r = {label, p, size, 0};
    CLCNN_TRY(need(&r, MAGIC_LEN, "", "magic"));
    if (memcmp(p, CLCNN_WEIGHTS_MAGIC, MAGIC_LEN) != 0) {
        char text[NAME_TEXT_MAX];
        escape_name(text, p, MAGIC_LEN);
        return CLCNN_ERR(CLCNN_STATUS_PARSE,
                         "%s: not a clcnn weights file: magic '%s' at byte 0, expected '%s'", label,
                         text, CLCNN_WEIGHTS_MAGIC);
    }
    r.pos = MAGIC_LEN;
    CLCNN_TRY(need(&r, HEADER_LEN - MAGIC_LEN, "", "header"));
    uint32_t version = (uint32_t)get_uint(&r, 4);
    CLCNN_FAIL_IF(version != CLCNN_WEIGHTS_VERSION, CLCNN_STATUS_UNSUPPORTED,
                  "%s: format version %u at byte 8 is not supported (this clcnn reads version "
                  "%u)",
                  label, version, CLCNN_WEIGHTS_VERSION);
    uint32_t flags = (uint32_t)get_uint(&r, 4);
    CLCNN_FAIL_IF(flags & ~CLCNN_WEIGHTS_FLAG_CHECKPOINT, CLCNN_STATUS_UNSUPPORTED,
                  "%s: unknown flags 0x%08x at byte 12 (known: 0x%x checkpoint)", label, flags,
                  CLCNN_WEIGHTS_FLAG_CHECKPOINT);
    uint32_t count = (uint32_t)get_uint(&r, 4);
    CLCNN_FAIL_IF(count > CLCNN_WEIGHTS_MAX_TENSORS, CLCNN_STATUS_CORRUPT,
                  "%s: %u tensors at byte 16, over the limit of %u", label, count,
                  CLCNN_WEIGHTS_MAX_TENSORS);
    /* Each record takes at least MIN_RECORD_LEN bytes: refuse a count the file cannot hold
     * before allocating the array for it. */
    CLCNN_FAIL_IF((uint64_t)count * MIN_RECORD_LEN > size - r.pos, CLCNN_STATUS_CORRUPT,
                  "%s: truncated: %u tensors at byte 16 need at least %llu bytes, %zu left", label,
                  count, (unsigned long long)count * MIN_RECORD_LEN, size - r.pos);

    clcnn_weights out = {count, NULL, NULL};
    size_t *offsets = NULL;
    if (count > 0) {
        out.tensors = calloc(count, sizeof *out.tensors);
        offsets = malloc(count * sizeof *offsets);
        if (out.tensors == NULL || offsets == NULL) {
            free(out.tensors);
            free(offsets);
            return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %u tensors", label,
                             count);
        }
    }
    clcnn_status status = parse_body(&r, flags, &out, offsets);
    free(offsets);
    if (status != CLCNN_OK) {
        clcnn_weights_free(&out);
        return status;
    }
    *w = out;
    return CLCNN_OK;
}

clcnn_status clcnn_weights_parse(const void *bytes, size_t size, clcnn_weights *w)
{
    CLCNN_FAIL_IF(w == NULL, CLCNN_STATUS_INVALID_ARG, "weights: parse: NULL output");
    CLCNN_FAIL_IF(bytes == NULL && size > 0, CLCNN_STATUS_INVALID_ARG,
                  "weights: parse: NULL bytes with size %zu", size);
    return parse("weights", bytes, size, w);
}

clcnn_status clcnn_weights_load(const char *path, clcnn_weights *w)
{
    CLCNN_FAIL_IF(path == NULL, CLCNN_STATUS_INVALID_ARG, "weights: load: NULL path");
    CLCNN_FAIL_IF(w == NULL, CLCNN_STATUS_INVALID_ARG, "%s: load: NULL output", path);
    const size_t limit = MAX_FILE_BYTES > SIZE_MAX ? SIZE_MAX : (size_t)MAX_FILE_BYTES;
    void *buf;
    size_t size;
    CLCNN_TRY(clcnn__file_read_all(path, limit, &buf, &size));
    clcnn_status status = parse(path, buf, size, w);
    free(buf);
    return status;
}

/* ---- lookup ---- */

const clcnn_named_tensor *clcnn_weights_find(const clcnn_weights *w, const char *name)
{
    if (w == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return &w->tensors[i];
    return NULL;
}

clcnn_status clcnn_weights_expect(const clcnn_weights *w, const char *name, int rank,
                                  const size_t *dims, const clcnn_named_tensor **out)
{
    CLCNN_FAIL_IF(w == NULL || name == NULL, CLCNN_STATUS_INVALID_ARG,
                  "weights: expect: NULL weights or name");
    CLCNN_FAIL_IF(rank < 1 || rank > CLCNN_WEIGHTS_MAX_RANK || dims == NULL,
                  CLCNN_STATUS_INVALID_ARG,
                  "weights: expect: tensor '%s': rank %d (1 to %d) or NULL dims", name, rank,
                  CLCNN_WEIGHTS_MAX_RANK);
    char want[SHAPE_TEXT_MAX];
    format_shape(want, rank, dims);
    const clcnn_named_tensor *t = clcnn_weights_find(w, name);
    if (t == NULL) {
        /* List the first few names so a renamed layer is easy to spot. */
        char names[256];
        size_t n = 0;
        names[0] = '\0';
        for (size_t i = 0; i < w->count && i < 4; i++) {
            int len = snprintf(names + n, sizeof names - n, "%s'%s'", i == 0 ? "" : ", ",
                               w->tensors[i].name);
            if (len > 0 && (size_t)len < sizeof names - n)
                n += (size_t)len;
        }
        return CLCNN_ERR(CLCNN_STATUS_CORRUPT,
                         "weights: no tensor '%s' (expected shape %s); the file has %zu "
                         "tensors%s%s%s",
                         name, want, w->count, w->count > 0 ? ": " : "", names,
                         w->count > 4 ? ", ..." : "");
    }
    int same = t->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = t->dims[i] == dims[i];
    if (!same) {
        char found[SHAPE_TEXT_MAX];
        format_shape(found, t->rank, t->dims);
        return CLCNN_ERR(CLCNN_STATUS_BAD_SHAPE,
                         "weights: tensor '%s': expected shape %s, found %s", name, want, found);
    }
    if (out != NULL)
        *out = t;
    return CLCNN_OK;
}

void clcnn_weights_free(clcnn_weights *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->count; i++)
        free(w->tensors[i].data);
    free(w->tensors);
    free(w->meta);
    memset(w, 0, sizeof *w);
}
