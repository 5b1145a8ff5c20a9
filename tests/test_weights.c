/* Unit tests of the weights and checkpoint format: bit-exact round trips, the exact layout,
 * every refusal with its message, truncation at every length, every single-byte change,
 * the shape check networks use, and atomic saves (including a SIGKILL loop). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "testutil.h"

/* ---- a byte builder for hand-made files ---- */

typedef struct buf {
    unsigned char p[4096];
    size_t n;
} buf;

static void b_uint(buf *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b->p[b->n++] = (unsigned char)(v >> (8 * i));
}

static void b_bytes(buf *b, const void *src, size_t n)
{
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void b_crc_since(buf *b, size_t start)
{
    b_uint(b, crc32(0L, b->p + start, (uInt)(b->n - start)), 4);
}

static void b_header(buf *b, uint32_t version, uint32_t flags, uint32_t count)
{
    b->n = 0;
    b_bytes(b, "CLCNNWTS", 8);
    b_uint(b, version, 4);
    b_uint(b, flags, 4);
    b_uint(b, count, 4);
}

/* A record whose payload is 1.5, 2.5, ... and whose CRC is right. */
static void b_record(buf *b, const char *name, size_t name_len, int rank, const uint64_t *dims)
{
    size_t start = b->n;
    b_uint(b, name_len, 2);
    b_bytes(b, name, name_len);
    b_uint(b, (uint64_t)rank, 1);
    uint64_t count = 1;
    for (int i = 0; i < rank; i++) {
        b_uint(b, dims[i], 8);
        count *= dims[i];
    }
    for (uint64_t i = 0; i < count; i++) {
        float f = 1.5f + (float)i;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        b_uint(b, bits, 4);
    }
    b_crc_since(b, start);
}

/* ---- fixtures ---- */

static void fill_sentinel(clcnn_weights *w)
{
    memset(w, 0xa5, sizeof *w);
}

static void assert_sentinel(const clcnn_weights *w)
{
    clcnn_weights s;
    fill_sentinel(&s);
    assert_memory_equal(w, &s, sizeof s);
}

/* Parses an exactly sized copy (so ASan sees overreads) and expects a refusal with status
 * and text, a message starting "weights: " and the output untouched. */
static void expect_refused(const void *bytes, size_t size, clcnn_status status, const char *text)
{
    void *copy = malloc(size > 0 ? size : 1);
    assert_non_null(copy);
    if (size > 0)
        memcpy(copy, bytes, size);
    clcnn_weights w;
    fill_sentinel(&w);
    assert_status_msg(clcnn_weights_parse(copy, size, &w), status, text);
    assert_int_equal(strncmp(clcnn_last_error(), "weights: ", 9), 0);
    assert_sentinel(&w);
    free(copy);
}

/* A model-like set of tensors with random non-zero values. */
typedef struct tensor_set {
    clcnn_named_tensor t[6];
    size_t count;
    clcnn_checkpoint_meta meta;
} tensor_set;

static void make_tensor(clcnn_named_tensor *t, test_rng *rng, const char *name, int rank, size_t d0,
                        size_t d1, size_t d2, size_t d3)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = rank;
    size_t d[4] = {d0, d1, d2, d3};
    t->count = 1;
    for (int i = 0; i < 4; i++) {
        t->dims[i] = i < rank ? d[i] : 1;
        if (i < rank)
            t->count *= d[i];
    }
    t->data = malloc(t->count * sizeof(float));
    assert_non_null(t->data);
    test_rng_fill(rng, t->data, t->count, -2.0f, 2.0f);
}

static void make_set(tensor_set *s, uint64_t seed)
{
    test_rng rng;
    test_rng_seed(&rng, seed);
    memset(s, 0, sizeof *s);
    make_tensor(&s->t[0], &rng, "conv1.weight", 4, 8, 1, 5, 5);
    make_tensor(&s->t[1], &rng, "conv1.bias", 1, 8, 0, 0, 0);
    make_tensor(&s->t[2], &rng, "fc1.weight", 2, 10, 72, 0, 0);
    make_tensor(&s->t[3], &rng, "fc1.bias", 1, 10, 0, 0, 0);
    make_tensor(&s->t[4], &rng, "conv1.weight.momentum", 4, 8, 1, 5, 5);
    make_tensor(&s->t[5], &rng, "odd.rank3", 3, 3, 7, 2, 0);
    s->count = 6;
    clcnn_checkpoint_meta *m = &s->meta;
    m->epoch = 3;
    m->step = 2812;
    m->rng[0] = 0x0123456789abcdefull;
    m->rng[1] = 0xfedcba9876543210ull;
    m->rng[2] = 1;
    m->rng[3] = UINT64_MAX;
    snprintf(m->optimizer, sizeof m->optimizer, "sgd");
    m->hyper_count = 4;
    snprintf(m->hyper_names[0], sizeof m->hyper_names[0], "lr");
    m->hyper_values[0] = 0.01;
    snprintf(m->hyper_names[1], sizeof m->hyper_names[1], "momentum");
    m->hyper_values[1] = 0.9;
    snprintf(m->hyper_names[2], sizeof m->hyper_names[2], "weight_decay");
    m->hyper_values[2] = -0.0;
    snprintf(m->hyper_names[3], sizeof m->hyper_names[3], "tiny");
    m->hyper_values[3] = 4.9e-324;
}

static void free_set(tensor_set *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->t[i].data);
}

static void assert_same_tensors(const clcnn_weights *w, const clcnn_named_tensor *t, size_t n)
{
    assert_int_equal(w->count, n);
    for (size_t i = 0; i < n; i++) {
        const clcnn_named_tensor *a = &w->tensors[i];
        assert_string_equal(a->name, t[i].name);
        assert_int_equal(a->rank, t[i].rank);
        for (int d = 0; d < 4; d++)
            assert_int_equal(a->dims[d], d < t[i].rank ? t[i].dims[d] : 1);
        assert_int_equal(a->count, t[i].count);
        assert_memory_equal(a->data, t[i].data, t[i].count * sizeof(float));
    }
}

static void assert_same_meta(const clcnn_checkpoint_meta *a, const clcnn_checkpoint_meta *b)
{
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->step, b->step);
    assert_memory_equal(a->rng, b->rng, sizeof a->rng);
    assert_string_equal(a->optimizer, b->optimizer);
    assert_int_equal(a->hyper_count, b->hyper_count);
    for (size_t i = 0; i < a->hyper_count; i++) {
        assert_string_equal(a->hyper_names[i], b->hyper_names[i]);
        assert_memory_equal(&a->hyper_values[i], &b->hyper_values[i], sizeof(double));
    }
}

/* ---- round trips ---- */

static void test_roundtrip_weights(void **state)
{
    (void)state;
    tensor_set s;
    make_set(&s, 1);
    void *bytes;
    size_t size;
    assert_ok(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size));
    clcnn_weights w;
    assert_ok(clcnn_weights_parse(bytes, size, &w));
    assert_null(w.meta);
    assert_same_tensors(&w, s.t, s.count);
    /* What parses serializes back to the same bytes. */
    void *again;
    size_t again_size;
    assert_ok(clcnn_weights_serialize(w.tensors, w.count, w.meta, &again, &again_size));
    assert_int_equal(again_size, size);
    assert_memory_equal(again, bytes, size);
    clcnn_free(again);
    clcnn_weights_free(&w);
    clcnn_free(bytes);
    free_set(&s);
}

static void test_roundtrip_checkpoint(void **state)
{
    (void)state;
    tensor_set s;
    make_set(&s, 2);
    /* Special values go through bit for bit. */
    uint32_t nan_bits = 0x7fc01234u;
    memcpy(&s.t[1].data[0], &nan_bits, 4);
    s.t[1].data[1] = -0.0f;
    s.t[1].data[2] = INFINITY;
    s.t[1].data[3] = 1e-45f;
    char *dir = test_tempdir();
    char *path = test_path(dir, "ckpt.weights");
    assert_ok(clcnn_weights_save(path, s.t, s.count, &s.meta));
    clcnn_weights w;
    assert_ok(clcnn_weights_load(path, &w));
    assert_non_null(w.meta);
    assert_same_meta(w.meta, &s.meta);
    assert_same_tensors(&w, s.t, s.count);

    size_t file_size;
    void *file = test_read_file(path, &file_size);
    void *again;
    size_t again_size;
    assert_ok(clcnn_weights_serialize(w.tensors, w.count, w.meta, &again, &again_size));
    assert_int_equal(again_size, file_size);
    assert_memory_equal(again, file, file_size);
    clcnn_free(again);
    free(file);

    /* An empty checkpoint (no tensors, no hyper-parameters, no optimizer name) is valid. */
    clcnn_checkpoint_meta empty;
    memset(&empty, 0, sizeof empty);
    empty.epoch = 7;
    assert_ok(clcnn_weights_save(path, NULL, 0, &empty));
    clcnn_weights e;
    assert_ok(clcnn_weights_load(path, &e));
    assert_int_equal(e.count, 0);
    assert_null(e.tensors);
    assert_non_null(e.meta);
    assert_same_meta(e.meta, &empty);
    clcnn_weights_free(&e);

    clcnn_weights_free(&w);
    free(path);
    test_rmtree(dir);
    free(dir);
    free_set(&s);
}

/* The layout in weights.h, byte by byte, for one tensor "w" of shape (2,) = {1, -2}. */
static void test_golden_layout(void **state)
{
    (void)state;
    float x[2] = {1.0f, -2.0f};
    clcnn_named_tensor t;
    memset(&t, 0, sizeof t);
    strcpy(t.name, "w");
    t.rank = 1;
    t.dims[0] = 2;
    t.count = 2;
    t.data = x;
    void *bytes;
    size_t size;
    assert_ok(clcnn_weights_serialize(&t, 1, NULL, &bytes, &size));
    static const unsigned char want_head[] = {
        'C', 'L', 'C',  'N',  'N', 'W', 'T', 'S',  1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* header */
        1,   0,   'w',                                                                 /* name */
        1,                                                                             /* rank */
        2,   0,   0,    0,    0,   0,   0,   0,                                        /* dims */
        0,   0,   0x80, 0x3f, 0,   0,   0,   0xc0,                                     /* data */
    };
    assert_int_equal(size, sizeof want_head + 4 + 4);
    assert_memory_equal(bytes, want_head, sizeof want_head);
    const unsigned char *p = bytes;
    uint32_t record_crc = (uint32_t)crc32(0L, p + 20, (uInt)(sizeof want_head - 20));
    uint32_t file_crc = (uint32_t)crc32(0L, p, (uInt)(sizeof want_head + 4));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(p[sizeof want_head + (size_t)i], (record_crc >> (8 * i)) & 0xff);
        assert_int_equal(p[sizeof want_head + 4 + (size_t)i], (file_crc >> (8 * i)) & 0xff);
    }
    /* The hand-built equivalent parses to the same tensor. */
    buf b;
    b_header(&b, 1, 0, 1);
    uint64_t dims[1] = {3};
    b_record(&b, "abc", 3, 1, dims);
    b_crc_since(&b, 0);
    clcnn_weights w;
    assert_ok(clcnn_weights_parse(b.p, b.n, &w));
    assert_int_equal(w.count, 1);
    assert_string_equal(w.tensors[0].name, "abc");
    assert_true(w.tensors[0].data[0] == 1.5f && w.tensors[0].data[2] == 3.5f);
    clcnn_weights_free(&w);
    clcnn_free(bytes);
}

/* ---- refusals of files ---- */

static void test_refuse_header(void **state)
{
    (void)state;
    buf b;
    b_header(&b, 1, 0, 0);
    b_crc_since(&b, 0);
    clcnn_weights w;
    assert_ok(clcnn_weights_parse(b.p, b.n, &w));
    assert_int_equal(w.count, 0);
    clcnn_weights_free(&w);

    expect_refused(b.p, 0, CLCNN_STATUS_CORRUPT, "truncated at byte 0: magic needs 8 bytes");
    expect_refused("CLCNNWTX\1\0\0\0\0\0\0\0\0\0\0\0", 20, CLCNN_STATUS_PARSE,
                   "not a clcnn weights file: magic 'CLCNNWTX' at byte 0, expected 'CLCNNWTS'");
    expect_refused("\x93NUMPY\1\0", 8, CLCNN_STATUS_PARSE, "magic '\\x93NUMPY\\x01\\x00'");
    b_header(&b, 2, 0, 0);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_UNSUPPORTED,
                   "format version 2 at byte 8 is not supported (this clcnn reads version 1)");
    b_header(&b, 1, 6, 0);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_UNSUPPORTED, "unknown flags 0x00000006 at byte 12");
    b_header(&b, 1, 0, 65537);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "65537 tensors at byte 16, over the limit of 65536");
    /* A count the file cannot hold is refused before the array is allocated. */
    b_header(&b, 1, 0, 65536);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "truncated: 65536 tensors at byte 16 need at least 1310720 bytes, 4 left");
    /* The file checksum, and bytes past it. */
    b_header(&b, 1, 0, 0);
    b_crc_since(&b, 0);
    b.p[b.n - 1] ^= 0x40;
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT, "file checksum mismatch (stored 0x");
    b.p[b.n - 1] ^= 0x40;
    b.p[b.n++] = 0;
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "1 unexpected bytes after the file checksum at byte 20");
}

static void test_refuse_tensor_checksum(void **state)
{
    (void)state;
    tensor_set s;
    make_set(&s, 3);
    void *bytes;
    size_t size;
    assert_ok(clcnn_weights_serialize(s.t, s.count, &s.meta, &bytes, &size));
    unsigned char *p = bytes;
    /* Find fc1.weight's record and flip a byte in the middle of its payload. */
    const unsigned char *name = memmem(p, size,
                                       "\x0a\x00"
                                       "fc1.weight",
                                       12);
    assert_non_null(name);
    size_t record = (size_t)(name - p);
    size_t payload = record + 12 + 1 + 16;
    p[payload + 100] ^= 0x01;
    char want[128];
    snprintf(want, sizeof want, "weights: tensor 'fc1.weight': checksum mismatch (bytes %zu to ",
             record);
    expect_refused(p, size, CLCNN_STATUS_CORRUPT, want);
    p[payload + 100] ^= 0x01;

    /* The stored CRC itself. */
    size_t crc_at = payload + sizeof(float) * 720;
    p[crc_at] ^= 0x80;
    expect_refused(p, size, CLCNN_STATUS_CORRUPT, "tensor 'fc1.weight': checksum mismatch");
    p[crc_at] ^= 0x80;

    /* The checkpoint meta has its own checksum: change the epoch. */
    p[20] ^= 0x02;
    expect_refused(p, size, CLCNN_STATUS_CORRUPT,
                   "weights: checkpoint meta: checksum mismatch (bytes 20 to ");
    p[20] ^= 0x02;

    clcnn_weights w;
    assert_ok(clcnn_weights_parse(p, size, &w));
    clcnn_weights_free(&w);
    clcnn_free(bytes);
    free_set(&s);
}

static void test_refuse_names(void **state)
{
    (void)state;
    buf b;
    uint64_t dims[1] = {2};
    b_header(&b, 1, 0, 2);
    b_record(&b, "fc1.weight", 10, 1, dims);
    b_record(&b, "fc1.weight", 10, 1, dims);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "weights: tensor 'fc1.weight' at byte 53 duplicates tensor #0 at byte 20");

    char long_name[80];
    memset(long_name, 'n', sizeof long_name);
    b_header(&b, 1, 0, 1);
    b_record(&b, long_name, 64, 1, dims);
    b_crc_since(&b, 0);
    char want[160];
    snprintf(want, sizeof want,
             "tensor #0 name '%.63s...' at byte 20 is 64 bytes, over the "
             "limit of 63",
             long_name);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT, want);
    /* 63 bytes is fine. */
    b_header(&b, 1, 0, 1);
    b_record(&b, long_name, 63, 1, dims);
    b_crc_since(&b, 0);
    clcnn_weights w;
    assert_ok(clcnn_weights_parse(b.p, b.n, &w));
    assert_int_equal(strlen(w.tensors[0].name), 63);
    clcnn_weights_free(&w);

    b_header(&b, 1, 0, 1);
    b_record(&b, "bad\x01name", 8, 1, dims);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "tensor #0 name 'bad\\x01name' has byte 0x01 at byte 25 (names are "
                   "printable ASCII without spaces)");
    b_header(&b, 1, 0, 1);
    b_record(&b, "a b", 3, 1, dims);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT, "name 'a\\x20b' has byte 0x20 at byte 23");
    b_header(&b, 1, 0, 1);
    b_record(&b, "", 0, 1, dims);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT, "tensor #0 name at byte 20 is empty");
}

static void test_refuse_shapes(void **state)
{
    (void)state;
    buf b;
    uint64_t dims[5] = {2, 2, 2, 2, 2};
    b_header(&b, 1, 0, 1);
    b_record(&b, "r0", 2, 0, dims);
    b_uint(&b, 0, 8); /* room for the smallest record, so the rank is what is refused */
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_BAD_SHAPE,
                   "weights: tensor 'r0': rank 0 at byte 24 is not supported (1 to 4)");
    b_header(&b, 1, 0, 1);
    b_record(&b, "r5", 2, 5, dims);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_BAD_SHAPE, "tensor 'r5': rank 5 at byte 24");

    uint64_t zero[2] = {3, 0};
    b_header(&b, 1, 0, 1);
    b_record(&b, "z", 1, 2, zero);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_BAD_SHAPE,
                   "tensor 'z': shape 3x0 at byte 24 has a zero dimension");

    /* Absurd dimensions: written by hand (no payload), refused on the header alone, before
     * the payload is looked for or anything is allocated. */
    const uint64_t absurd[3][4] = {
        {(uint64_t)1 << 31, 2, 1, 1},                 /* 2^32 + ... just over: 2^32 is the limit */
        {(uint64_t)1 << 40, (uint64_t)1 << 40, 1, 1}, /* the product overflows 64 bits */
        {UINT64_MAX, 1, 1, 1},
    };
    const char *shapes[3] = {"2147483648x2x1x3", "1099511627776x1099511627776",
                             "18446744073709551615"};
    const int ranks[3] = {4, 2, 1};
    for (int k = 0; k < 3; k++) {
        uint64_t d[4];
        memcpy(d, absurd[k], sizeof d);
        if (k == 0)
            d[3] = 3;
        b_header(&b, 1, 0, 1);
        b_uint(&b, 4, 2);
        b_bytes(&b, "huge", 4);
        b_uint(&b, (uint64_t)ranks[k], 1);
        for (int i = 0; i < ranks[k]; i++)
            b_uint(&b, d[i], 8);
        b_uint(&b, 0, 8);
        char want[256];
        snprintf(want, sizeof want,
                 "tensor 'huge': absurd shape %s at byte 27: over the limit of 4294967296 "
                 "elements per tensor, refused before any allocation",
                 shapes[k]);
        expect_refused(b.p, b.n, CLCNN_STATUS_BAD_SHAPE, want);
    }
    /* Exactly at the limit the shape is accepted, and the missing payload is a truncation. */
    b_header(&b, 1, 0, 1);
    b_uint(&b, 4, 2);
    b_bytes(&b, "huge", 4);
    b_uint(&b, 2, 1);
    b_uint(&b, (uint64_t)1 << 16, 8);
    b_uint(&b, (uint64_t)1 << 16, 8);
    b_uint(&b, 0, 8);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "truncated at byte 43: tensor 'huge' payload needs 17179869184 bytes, 8 left");
}

static void test_refuse_meta(void **state)
{
    (void)state;
    buf b;
    b_header(&b, 1, 1, 0);
    size_t start = b.n;
    for (int i = 0; i < 6; i++)
        b_uint(&b, (uint64_t)i, 8);
    b_uint(&b, 4, 2);
    b_bytes(&b, "adam", 4);
    b_uint(&b, 2, 2);
    b_uint(&b, 2, 2);
    b_bytes(&b, "lr", 2);
    b_uint(&b, 0, 8);
    b_uint(&b, 2, 2);
    b_bytes(&b, "lr", 2);
    b_uint(&b, 0, 8);
    b_crc_since(&b, start);
    b_crc_since(&b, 0);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "checkpoint meta: hyper-parameter 'lr' at byte 88 appears twice");

    b_header(&b, 1, 1, 0);
    for (int i = 0; i < 6; i++)
        b_uint(&b, 0, 8);
    b_uint(&b, 0, 2);
    b_uint(&b, 17, 2);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "checkpoint meta: 17 hyper-parameters at byte 70, over the limit of 16");

    b_header(&b, 1, 1, 0);
    for (int i = 0; i < 6; i++)
        b_uint(&b, 0, 8);
    b_uint(&b, 32, 2);
    b_bytes(&b, "abcdefghijklmnopqrstuvwxyz012345", 32);
    expect_refused(b.p, b.n, CLCNN_STATUS_CORRUPT,
                   "checkpoint meta optimizer name 'abcdefghijklmnopqrstuvwxyz012345' at byte "
                   "68 is 32 bytes, over the limit of 31");
}

/* A small checkpoint cut at every length is refused as truncated, never crashes, never
 * leaks; and every single-byte change anywhere is refused (CRC-32 catches them all). */
static void test_truncated_and_flipped_everywhere(void **state)
{
    (void)state;
    test_rng rng;
    test_rng_seed(&rng, 9);
    clcnn_named_tensor t[2];
    make_tensor(&t[0], &rng, "a.weight", 2, 3, 2, 0, 0);
    make_tensor(&t[1], &rng, "b", 1, 5, 0, 0, 0);
    clcnn_checkpoint_meta meta;
    memset(&meta, 0, sizeof meta);
    strcpy(meta.optimizer, "adam");
    meta.hyper_count = 2;
    strcpy(meta.hyper_names[0], "lr");
    strcpy(meta.hyper_names[1], "beta1");
    meta.hyper_values[0] = 1e-3;
    meta.hyper_values[1] = 0.9;
    void *bytes;
    size_t size;
    assert_ok(clcnn_weights_serialize(t, 2, &meta, &bytes, &size));
    for (size_t len = 0; len < size; len++)
        expect_refused(bytes, len, CLCNN_STATUS_CORRUPT, "truncated");

    unsigned char *p = bytes;
    static const unsigned char masks[] = {0x01, 0x80, 0xff, 0x5a};
    size_t refused = 0;
    for (size_t i = 0; i < size; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            p[i] ^= masks[m];
            clcnn_weights w;
            fill_sentinel(&w);
            clcnn_status st = clcnn_weights_parse(p, size, &w);
            if (st == CLCNN_OK)
                print_error("byte %zu ^ 0x%02x was accepted\n", i, masks[m]);
            assert_int_not_equal(st, CLCNN_OK);
            assert_sentinel(&w);
            refused++;
            p[i] ^= masks[m];
        }
    }
    assert_int_equal(refused, 4 * size);
    clcnn_free(bytes);
    free(t[0].data);
    free(t[1].data);
}

/* ---- refusals of what is written ---- */

static void test_serialize_refusals(void **state)
{
    (void)state;
    tensor_set s;
    make_set(&s, 4);
    void *bytes = (void *)&s;
    size_t size = 12345;
    clcnn_named_tensor saved = s.t[2];

    s.t[2].data = NULL;
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "weights: tensor 'fc1.weight': NULL data");
    s.t[2] = saved;
    strcpy(s.t[2].name, "conv1.bias");
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "tensor 'conv1.bias' appears twice (#1 and #2)");
    strcpy(s.t[2].name, "fc1 weight");
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG,
                      "tensor #2: name 'fc1\\x20weight' has a byte that is not printable");
    s.t[2].name[0] = '\0';
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "tensor #2: name '' is empty");
    memset(s.t[2].name, 'x', sizeof s.t[2].name);
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "is not NUL-terminated within its field");
    s.t[2] = saved;
    s.t[2].rank = 5;
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_BAD_SHAPE, "tensor 'fc1.weight': rank 5 is not supported");
    s.t[2] = saved;
    s.t[2].dims[1] = 0;
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_BAD_SHAPE, "tensor 'fc1.weight': shape 10x0 has a zero");
    s.t[2] = saved;
    s.t[2].count = 719;
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_BAD_SHAPE,
                      "tensor 'fc1.weight': count 719 does not match shape 10x72 (720 elements)");
    s.t[2] = saved;
    s.t[2].dims[0] = (size_t)1 << 31;
    s.t[2].dims[1] = 3;
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size),
                      CLCNN_STATUS_BAD_SHAPE,
                      "shape 2147483648x3 is over the limit of 4294967296 elements per tensor");
    s.t[2] = saved;

    s.meta.hyper_count = 17;
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, &s.meta, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "17 hyper-parameters, over the limit of 16");
    s.meta.hyper_count = 4;
    strcpy(s.meta.hyper_names[3], "lr");
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, &s.meta, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "hyper-parameter 'lr' appears twice (#0 and #3)");
    strcpy(s.meta.optimizer, "s g d");
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, &s.meta, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "optimizer name has a byte that is not printable");
    assert_status_msg(clcnn_weights_serialize(NULL, 1, NULL, &bytes, &size),
                      CLCNN_STATUS_INVALID_ARG, "NULL tensors with count 1");
    assert_status_msg(clcnn_weights_serialize(s.t, s.count, NULL, NULL, &size),
                      CLCNN_STATUS_INVALID_ARG, "NULL output pointer");
    /* Outputs untouched. */
    assert_ptr_equal(bytes, (void *)&s);
    assert_int_equal(size, 12345);
    free_set(&s);
}

/* ---- expect / find ---- */

static void test_find_and_expect(void **state)
{
    (void)state;
    tensor_set s;
    make_set(&s, 5);
    void *bytes;
    size_t size;
    assert_ok(clcnn_weights_serialize(s.t, s.count, NULL, &bytes, &size));
    clcnn_weights w;
    assert_ok(clcnn_weights_parse(bytes, size, &w));

    assert_ptr_equal(clcnn_weights_find(&w, "fc1.bias"), &w.tensors[3]);
    assert_null(clcnn_weights_find(&w, "fc1"));
    assert_null(clcnn_weights_find(NULL, "fc1.bias"));
    assert_null(clcnn_weights_find(&w, NULL));

    const clcnn_named_tensor *t = NULL;
    size_t fc1[2] = {10, 72};
    assert_ok(clcnn_weights_expect(&w, "fc1.weight", 2, fc1, &t));
    assert_ptr_equal(t, &w.tensors[2]);
    assert_ok(clcnn_weights_expect(&w, "fc1.weight", 2, fc1, NULL));

    const clcnn_named_tensor *untouched = (const clcnn_named_tensor *)&s;
    t = untouched;
    size_t wrong[2] = {1024, 3136};
    assert_status_msg(clcnn_weights_expect(&w, "fc1.weight", 2, wrong, &t), CLCNN_STATUS_BAD_SHAPE,
                      "weights: tensor 'fc1.weight': expected shape 1024x3136, found 10x72");
    size_t conv[4] = {8, 1, 5, 5};
    assert_status_msg(clcnn_weights_expect(&w, "fc1.weight", 4, conv, &t), CLCNN_STATUS_BAD_SHAPE,
                      "expected shape 8x1x5x5, found 10x72");
    assert_status_msg(clcnn_weights_expect(&w, "fc2.weight", 2, fc1, &t), CLCNN_STATUS_CORRUPT,
                      "weights: no tensor 'fc2.weight' (expected shape 10x72); the file has 6 "
                      "tensors: 'conv1.weight', 'conv1.bias', 'fc1.weight', 'fc1.bias', ...");
    assert_status_msg(clcnn_weights_expect(&w, "fc1.weight", 0, fc1, &t), CLCNN_STATUS_INVALID_ARG,
                      "rank 0");
    assert_ptr_equal(t, untouched);

    clcnn_weights empty;
    memset(&empty, 0, sizeof empty);
    assert_status_msg(clcnn_weights_expect(&empty, "x", 1, fc1, &t), CLCNN_STATUS_CORRUPT,
                      "no tensor 'x' (expected shape 10); the file has 0 tensors");

    clcnn_weights_free(&w);
    assert_null(w.tensors);
    assert_int_equal(w.count, 0);
    clcnn_weights_free(&w);
    clcnn_weights_free(NULL);
    clcnn_free(bytes);
    free_set(&s);
}

/* ---- files ---- */

/* Names in dir other than "." and "..", joined with '/'. */
static size_t list_dir(const char *dir, char *names, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t count = 0;
    names[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        count++;
        size_t used = strlen(names);
        snprintf(names + used, cap - used, "%s/", e->d_name);
    }
    closedir(d);
    return count;
}

static void test_load_refusals_name_the_path(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *path = test_path(dir, "model.weights");
    clcnn_weights w;
    fill_sentinel(&w);
    assert_status_msg(clcnn_weights_load(path, &w), CLCNN_STATUS_IO, "model.weights");
    buf b;
    b_header(&b, 1, 0, 1);
    uint64_t dims[1] = {4};
    b_record(&b, "fc1.weight", 10, 1, dims);
    b_crc_since(&b, 0);
    b.p[45] ^= 1; /* a payload byte */
    test_write_file(path, b.p, b.n);
    assert_status_msg(clcnn_weights_load(path, &w), CLCNN_STATUS_CORRUPT,
                      "tensor 'fc1.weight': checksum mismatch");
    assert_int_equal(strncmp(clcnn_last_error(), path, strlen(path)), 0);
    assert_sentinel(&w);
    free(path);
    test_rmtree(dir);
    free(dir);
}

static void test_save_failure_keeps_old_file(void **state)
{
    (void)state;
    tensor_set s;
    make_set(&s, 6);
    char *dir = test_tempdir();
    char *path = test_path(dir, "net.weights");
    assert_ok(clcnn_weights_save(path, s.t, s.count, &s.meta));
    size_t old_size;
    void *old = test_read_file(path, &old_size);

    float *data = s.t[3].data;
    s.t[3].data = NULL;
    assert_status_msg(clcnn_weights_save(path, s.t, s.count, NULL), CLCNN_STATUS_INVALID_ARG,
                      "net.weights: tensor 'fc1.bias': NULL data");
    assert_int_equal(strncmp(clcnn_last_error(), path, strlen(path)), 0);
    s.t[3].data = data;
    s.t[0].rank = 0;
    assert_status_msg(clcnn_weights_save(path, s.t, s.count, NULL), CLCNN_STATUS_BAD_SHAPE,
                      "tensor 'conv1.weight': rank 0");
    s.t[0].rank = 4;

    size_t now_size;
    void *now = test_read_file(path, &now_size);
    assert_int_equal(now_size, old_size);
    assert_memory_equal(now, old, old_size);
    char names[512];
    assert_int_equal(list_dir(dir, names, sizeof names), 1);
    assert_string_equal(names, "net.weights/");

    /* A save into a missing directory is IO and creates nothing. */
    char *bad = test_path(dir, "no/such/dir/x.weights");
    assert_status_msg(clcnn_weights_save(bad, s.t, s.count, NULL), CLCNN_STATUS_IO, "x.weights");
    assert_int_equal(list_dir(dir, names, sizeof names), 1);

    /* A good save replaces the file whole and leaves no temporary file. */
    assert_ok(clcnn_weights_save(path, s.t, 2, NULL));
    clcnn_weights w;
    assert_ok(clcnn_weights_load(path, &w));
    assert_same_tensors(&w, s.t, 2);
    assert_null(w.meta);
    clcnn_weights_free(&w);
    assert_int_equal(list_dir(dir, names, sizeof names), 1);

    free(bad);
    free(now);
    free(old);
    free(path);
    test_rmtree(dir);
    free(dir);
    free_set(&s);
}

/* issue 8 item 4: a child saves two alternating checkpoints in a loop and is SIGKILLed at
 * random moments; after every kill the file loads and is one of the two complete versions. */
static void test_sigkill_during_saves(void **state)
{
    (void)state;
    tensor_set a, b;
    make_set(&a, 10);
    make_set(&b, 11);
    /* Make the versions differ in size too, and big enough that a write takes a while. */
    free(b.t[2].data);
    test_rng rng;
    test_rng_seed(&rng, 12);
    make_tensor(&b.t[2], &rng, "fc1.weight", 2, 512, 512, 0, 0);
    b.meta.epoch = 4;
    char *dir = test_tempdir();
    char *path = test_path(dir, "ckpt.weights");
    assert_ok(clcnn_weights_save(path, a.t, a.count, &a.meta));

    int seen[2] = {0, 0};
    for (int kill_no = 0; kill_no < 20; kill_no++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (unsigned i = 0;; i++) {
                const tensor_set *v = (i + (unsigned)kill_no) % 2 ? &b : &a;
                if (clcnn_weights_save(path, v->t, v->count, &v->meta) != CLCNN_OK)
                    _exit(3);
            }
        }
        struct timespec ts = {0, (long)(test_rng_next(&rng) % 20000000u)};
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int wstatus = 0;
        assert_int_equal(waitpid(pid, &wstatus, 0), pid);
        assert_true(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);

        clcnn_weights w;
        assert_ok(clcnn_weights_load(path, &w));
        assert_non_null(w.meta);
        const tensor_set *v = w.meta->epoch == a.meta.epoch ? &a : &b;
        assert_same_meta(w.meta, &v->meta);
        assert_same_tensors(&w, v->t, v->count);
        seen[v == &b]++;
        clcnn_weights_free(&w);
    }
    /* A kill between creating the temporary file and renaming it leaves that file behind
     * (nothing cleans them up yet); counting them shows kills landed mid-save. */
    char names[8192];
    size_t entries = list_dir(dir, names, sizeof names);
    print_message("sigkill: 20 kills, file held version A %d times and B %d times; %zu "
                  "temporary files left by kills mid-save\n",
                  seen[0], seen[1], entries - 1);
    free(path);
    test_rmtree(dir);
    free(dir);
    free_set(&a);
    free_set(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_weights),
        cmocka_unit_test(test_roundtrip_checkpoint),
        cmocka_unit_test(test_golden_layout),
        cmocka_unit_test(test_refuse_header),
        cmocka_unit_test(test_refuse_tensor_checksum),
        cmocka_unit_test(test_refuse_names),
        cmocka_unit_test(test_refuse_shapes),
        cmocka_unit_test(test_refuse_meta),
        cmocka_unit_test(test_truncated_and_flipped_everywhere),
        cmocka_unit_test(test_serialize_refusals),
        cmocka_unit_test(test_find_and_expect),
        cmocka_unit_test(test_load_refusals_name_the_path),
        cmocka_unit_test(test_save_failure_keeps_old_file),
        cmocka_unit_test(test_sigkill_during_saves),
    };
    return cmocka_run_group_tests_name("weights", tests, NULL, NULL);
}
