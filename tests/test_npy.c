/* Unit tests of the .npy reader and writer: round trips, NumPy's exact header bytes, every
 * refusal with its message, a fuzz loop over damaged files, and atomic saves. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Builds a .npy file: magic, version major.0, a header length of strlen(header) (u16 for 1.0,
 * u32 otherwise), the header text and ndata data bytes. Exactly sized so ASan sees overreads. */
static unsigned char *build_npy(int major, const char *header, const void *data, size_t ndata,
                                size_t *size)
{
    size_t hlen = strlen(header);
    size_t len_size = major == 1 ? 2 : 4;
    size_t total = 8 + len_size + hlen + ndata;
    unsigned char *p = malloc(total);
    assert_non_null(p);
    memcpy(p, "\x93NUMPY", 6);
    p[6] = (unsigned char)major;
    p[7] = 0;
    for (size_t i = 0; i < len_size; i++)
        p[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(p + 8 + len_size, header, hlen);
    if (ndata > 0)
        memcpy(p + 8 + len_size + hlen, data, ndata);
    *size = total;
    return p;
}

/* Little-endian bytes of n floats 1, 2, 3, ... */
static unsigned char *counting_data(size_t n)
{
    unsigned char *d = malloc(n * 4 + 1);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        float f = (float)(i + 1);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        for (int b = 0; b < 4; b++)
            d[4 * i + (size_t)b] = (unsigned char)(bits >> (8 * b));
    }
    return d;
}

/* Fills an array with a recognisable pattern, to check that failures leave it untouched. */
static void fill_sentinel(clcnn_npy_array *a)
{
    memset(a, 0xa5, sizeof *a);
}

static void assert_sentinel(const clcnn_npy_array *a)
{
    clcnn_npy_array s;
    fill_sentinel(&s);
    assert_memory_equal(a, &s, sizeof s);
}

/* Parses bytes and expects a refusal with status and text, a message starting "npy: " and
 * the output left as it was. */
static void expect_refused(const void *bytes, size_t size, clcnn_status status, const char *text)
{
    clcnn_npy_array a;
    fill_sentinel(&a);
    assert_status_msg(clcnn_npy_parse(bytes, size, &a), status, text);
    assert_int_equal(strncmp(clcnn_last_error(), "npy: ", 5), 0);
    assert_sentinel(&a);
}

/* Builds a 1.0 file from a header text and ndata counting bytes, then expect_refused(). */
static void expect_header_refused(const char *header, size_t ndata, clcnn_status status,
                                  const char *text)
{
    size_t size;
    unsigned char *data = counting_data(ndata / 4 + 1);
    unsigned char *p = build_npy(1, header, data, ndata, &size);
    expect_refused(p, size, status, text);
    free(p);
    free(data);
}

/* Parses a built file and checks shape (2, 3) with the counting data. */
static void expect_2x3(const unsigned char *p, size_t size)
{
    clcnn_npy_array a;
    assert_ok(clcnn_npy_parse(p, size, &a));
    assert_int_equal(a.rank, 2);
    assert_int_equal(a.dims[0], 2);
    assert_int_equal(a.dims[1], 3);
    assert_int_equal(a.dims[2], 1);
    assert_int_equal(a.dims[3], 1);
    assert_int_equal(a.count, 6);
    for (size_t i = 0; i < 6; i++)
        assert_true(a.data[i] == (float)(i + 1));
    clcnn_npy_array_free(&a);
}

static void random_shape(test_rng *rng, int rank, size_t *dims)
{
    for (int i = 0; i < rank; i++)
        dims[i] = 1 + (size_t)(test_rng_next(rng) % 7);
}

static void assert_same_array(const clcnn_npy_array *a, int rank, const size_t *dims,
                              const float *data, size_t count)
{
    assert_int_equal(a->rank, rank);
    for (int i = 0; i < CLCNN_NPY_MAX_RANK; i++)
        assert_int_equal(a->dims[i], i < rank ? dims[i] : 1);
    assert_int_equal(a->count, count);
    assert_non_null(a->data);
    /* Bit equality, not float equality: NaN payloads and -0 must survive. */
    assert_memory_equal(a->data, data, count * sizeof(float));
}

static void test_roundtrip_serialize_parse(void **state)
{
    (void)state;
    test_rng rng;
    test_rng_seed(&rng, 1);
    for (int rank = 1; rank <= 4; rank++) {
        for (int trial = 0; trial < 20; trial++) {
            size_t dims[4];
            random_shape(&rng, rank, dims);
            size_t count = 1;
            for (int i = 0; i < rank; i++)
                count *= dims[i];
            float *x = malloc(count * sizeof(float));
            assert_non_null(x);
            test_rng_fill(&rng, x, count, -10.0f, 10.0f);
            void *bytes = NULL;
            size_t size = 0;
            assert_ok(clcnn_npy_serialize(rank, dims, x, &bytes, &size));
            size_t hdr = size - count * 4;
            assert_int_equal(hdr % 64, 0);
            clcnn_npy_array a;
            assert_ok(clcnn_npy_parse(bytes, size, &a));
            assert_same_array(&a, rank, dims, x, count);
            clcnn_npy_array_free(&a);
            clcnn_free(bytes);
            free(x);
        }
    }
}

static void test_roundtrip_save_load(void **state)
{
    (void)state;
    test_rng rng;
    test_rng_seed(&rng, 2);
    char *dir = test_tempdir();
    char *path = test_path(dir, "x.npy");
    for (int rank = 1; rank <= 4; rank++) {
        size_t dims[4];
        random_shape(&rng, rank, dims);
        dims[0] += 10; /* some files bigger than the header */
        size_t count = 1;
        for (int i = 0; i < rank; i++)
            count *= dims[i];
        float *x = malloc(count * sizeof(float));
        assert_non_null(x);
        test_rng_fill(&rng, x, count, -1e6f, 1e6f);
        assert_ok(clcnn_npy_save(path, rank, dims, x));
        clcnn_npy_array a;
        assert_ok(clcnn_npy_load(path, &a));
        assert_same_array(&a, rank, dims, x, count);

        /* The file holds what serialize produces, byte for byte. */
        void *bytes;
        size_t size, fsize;
        assert_ok(clcnn_npy_serialize(rank, dims, x, &bytes, &size));
        void *file = test_read_file(path, &fsize);
        assert_int_equal(fsize, size);
        assert_memory_equal(file, bytes, size);
        free(file);
        clcnn_free(bytes);
        clcnn_npy_array_free(&a);
        free(x);
    }
    free(path);
    test_rmtree(dir);
    free(dir);
}

static void test_special_values_bit_exact(void **state)
{
    (void)state;
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7fa12345u,
        0xffc00001u, 0x00000001u, 0x807fffffu, 0x7f7fffffu, 0x3f800000u, 0xc2f6e979u,
    };
    size_t n = sizeof bits / sizeof bits[0];
    float x[sizeof bits / sizeof bits[0]];
    memcpy(x, bits, sizeof x);
    size_t dims[1] = {n};
    void *bytes;
    size_t size;
    assert_ok(clcnn_npy_serialize(1, dims, x, &bytes, &size));
    /* The data is little-endian whatever the host: 1.0f is 00 00 80 3f. */
    const unsigned char *d = (const unsigned char *)bytes + size - n * 4;
    assert_memory_equal(d + 40, "\x00\x00\x80\x3f", 4);
    assert_memory_equal(d + 20, "\x45\x23\xa1\x7f", 4);
    clcnn_npy_array a;
    assert_ok(clcnn_npy_parse(bytes, size, &a));
    assert_same_array(&a, 1, dims, x, n);
    clcnn_npy_array_free(&a);
    clcnn_free(bytes);
}

/* np.save of np.arange(1, 7, dtype='<f4').reshape(2, 3) writes these bytes: the 59-byte dict
 * plus 20 spaces of growth room, padded with spaces to 127 header bytes, then '\n'. The
 * header length is 128 - 10 = 118 (0x76). */
static void test_golden_header_2x3(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    assert_int_equal(strlen(dict), 59);
    unsigned char want[128 + 24];
    memcpy(want, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(want + 10, dict, 59);
    memset(want + 69, ' ', 127 - 69);
    want[127] = '\n';
    unsigned char *data = counting_data(6);
    memcpy(want + 128, data, 24);

    float x[6] = {1, 2, 3, 4, 5, 6};
    size_t dims[2] = {2, 3};
    void *bytes;
    size_t size;
    assert_ok(clcnn_npy_serialize(2, dims, x, &bytes, &size));
    assert_int_equal(size, sizeof want);
    assert_memory_equal(bytes, want, sizeof want);
    /* 2.0f little-endian. */
    assert_memory_equal((unsigned char *)bytes + 132, "\x00\x00\x00\x40", 4);
    expect_2x3(bytes, size);
    clcnn_free(bytes);
    free(data);
}

/* Every header is NumPy's layout: the dict, spaces, '\n', a total that is a multiple of 64,
 * a rank-1 shape written (N,), and at least 21 - digits(dims[0]) spaces of growth room. */
static void test_header_layout(void **state)
{
    (void)state;
    static const size_t firsts[] = {1, 9, 10, 99, 100, 12345, 100000};
    for (size_t f = 0; f < sizeof firsts / sizeof firsts[0]; f++) {
        for (int rank = 1; rank <= 4; rank++) {
            size_t dims[4] = {firsts[f], 3, 1, 2};
            size_t count = 1;
            for (int i = 0; i < rank; i++)
                count *= dims[i];
            float *x = calloc(count, sizeof(float));
            assert_non_null(x);
            void *bytes;
            size_t size;
            assert_ok(clcnn_npy_serialize(rank, dims, x, &bytes, &size));
            const unsigned char *p = bytes;
            size_t hdr = size - count * 4;
            assert_int_equal(hdr % 64, 0);
            assert_int_equal(p[6], 1);
            assert_int_equal(p[7], 0);
            assert_int_equal((size_t)p[8] | (size_t)p[9] << 8, hdr - 10);
            assert_int_equal(p[hdr - 1], '\n');

            char shape[128];
            int n = snprintf(shape, sizeof shape, "(%zu", dims[0]);
            for (int i = 1; i < rank; i++)
                n += snprintf(shape + n, sizeof shape - (size_t)n, ", %zu", dims[i]);
            snprintf(shape + n, sizeof shape - (size_t)n, rank == 1 ? ",)" : ")");
            char dict[256];
            int dlen = snprintf(dict, sizeof dict,
                                "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
            assert_memory_equal(p + 10, dict, (size_t)dlen);
            char digits[32];
            size_t growth = 21 - (size_t)snprintf(digits, sizeof digits, "%zu", dims[0]);
            assert_true(hdr - 1 - 10 - (size_t)dlen >= growth);
            assert_true(hdr - 1 - 10 - (size_t)dlen < growth + 64 + 1);
            for (size_t i = 10 + (size_t)dlen; i < hdr - 1; i++)
                assert_int_equal(p[i], ' ');
            clcnn_free(bytes);
            free(x);
        }
    }
}

static void test_parse_versions_2_and_3(void **state)
{
    (void)state;
    unsigned char *data = counting_data(6);
    for (int major = 2; major <= 3; major++) {
        size_t size;
        unsigned char *p = build_npy(
            major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n", data,
            24, &size);
        assert_int_equal(p[8], 70);
        assert_int_equal(p[9], 0);
        assert_int_equal(p[10], 0);
        expect_2x3(p, size);
        free(p);
    }
    free(data);
}

static void test_parse_quotes_and_key_order(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}\n",
        "{'shape': (2, 3), 'descr': '<f4', 'fortran_order': False, }\n",
        "{\"fortran_order\": False, 'shape': (2,3,), \"descr\": '<f4'}",
        "{ 'descr' : '<f4' ,\n\t'fortran_order' :False,'shape':( 2 , 3 ) ,}  \t \r\n",
        "  {'descr':'<f4','fortran_order':False,'shape':(2L, 3L)}\n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    };
    unsigned char *data = counting_data(6);
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        size_t size;
        unsigned char *p = build_npy(1, headers[i], data, 24, &size);
        expect_2x3(p, size);
        free(p);
    }
    free(data);
}

static void test_parse_ranks_and_odd_offsets(void **state)
{
    (void)state;
    /* Header lengths that leave the data at offsets that are not multiples of 4. */
    static const struct {
        const char *header;
        int rank;
        size_t dims[4];
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5,)}", 1, {5, 1, 1, 1}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5, )} ", 1, {5, 1, 1, 1}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3)}  ", 3, {1, 2, 3, 1}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3, 2)}\n", 4, {2, 1, 3, 2}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1)}", 4, {1, 1, 1, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t count = 1;
        for (int i = 0; i < cases[c].rank; i++)
            count *= cases[c].dims[i];
        unsigned char *data = counting_data(count);
        size_t size;
        unsigned char *p = build_npy(1, cases[c].header, data, count * 4, &size);
        clcnn_npy_array a;
        assert_ok(clcnn_npy_parse(p, size, &a));
        assert_int_equal(a.rank, cases[c].rank);
        for (int i = 0; i < 4; i++)
            assert_int_equal(a.dims[i], cases[c].dims[i]);
        assert_int_equal(a.count, count);
        for (size_t i = 0; i < count; i++)
            assert_true(a.data[i] == (float)(i + 1));
        clcnn_npy_array_free(&a);
        free(p);
        free(data);
    }
}

static void test_refuse_bad_magic(void **state)
{
    (void)state;
    unsigned char *data = counting_data(6);
    size_t size;
    unsigned char *p = build_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
                                 data, 24, &size);
    p[1] = 'n';
    expect_refused(p, size, CLCNN_STATUS_PARSE, "not a .npy file (bad magic)");
    p[1] = 'N';
    p[0] = 0x92;
    expect_refused(p, size, CLCNN_STATUS_PARSE, "bad magic");
    expect_refused("PK\x03\x04", 4, CLCNN_STATUS_PARSE, "bad magic");
    expect_refused("\x93NUMPZ\x01\x00\x00\x00", 10, CLCNN_STATUS_PARSE, "bad magic");
    free(p);
    free(data);
}

static void test_refuse_empty_and_truncated_prefix(void **state)
{
    (void)state;
    expect_refused("", 0, CLCNN_STATUS_PARSE, "empty file");
    expect_refused(NULL, 0, CLCNN_STATUS_PARSE, "empty file");
    static const unsigned char v1[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0x10, 0};
    static const unsigned char v2[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0x10, 0, 0, 0};
    /* A prefix of the magic is a truncated file, not a foreign one. */
    for (size_t n = 1; n < 8; n++)
        expect_refused(v1, n, CLCNN_STATUS_CORRUPT, "truncated");
    expect_refused(v1, 9, CLCNN_STATUS_CORRUPT, "header length");
    for (size_t n = 8; n < sizeof v2; n++)
        expect_refused(v2, n, CLCNN_STATUS_CORRUPT, "inside the header length");
}

static void test_refuse_version(void **state)
{
    (void)state;
    unsigned char *data = counting_data(6);
    static const struct {
        unsigned char major, minor;
        const char *text;
    } cases[] = {{0, 0, "version 0.0"},
                 {4, 0, "version 4.0"},
                 {1, 1, "version 1.1"},
                 {255, 255, "version 255.255"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t size;
        unsigned char *p = build_npy(
            1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", data, 24, &size);
        p[6] = cases[c].major;
        p[7] = cases[c].minor;
        expect_refused(p, size, CLCNN_STATUS_UNSUPPORTED, cases[c].text);
        free(p);
    }
    free(data);
}

static void test_refuse_dtypes(void **state)
{
    (void)state;
    static const char *const dtypes[] = {"<f8", ">f4", "<i4",  "|u1", "<f2", "float32", "<f", "f4",
                                         "=f4", "|f4", "<f4 ", "",    "<c8", "|b1",     "O"};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        char header[160], text[64];
        snprintf(header, sizeof header,
                 "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3), }\n", dtypes[i]);
        snprintf(text, sizeof text, "dtype '%s' is not supported", dtypes[i]);
        expect_header_refused(header, 24, CLCNN_STATUS_UNSUPPORTED, text);
    }
    /* The message the user sees for a float64 file names both dtypes. */
    expect_header_refused("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", 48,
                          CLCNN_STATUS_UNSUPPORTED,
                          "npy: dtype '<f8' is not supported (clcnn reads little-endian "
                          "float32 '<f4')");
    /* A long dtype string is cut in the message, not overflowed. */
    char header[400], longd[300];
    memset(longd, 'x', sizeof longd - 1);
    longd[sizeof longd - 1] = '\0';
    snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (2,)}",
             longd);
    expect_header_refused(header, 8, CLCNN_STATUS_UNSUPPORTED, "xxx...' is not supported");
    expect_header_refused("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", 8,
                          CLCNN_STATUS_UNSUPPORTED, "structured");
}

static void test_refuse_fortran_order(void **state)
{
    (void)state;
    expect_header_refused("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24,
                          CLCNN_STATUS_UNSUPPORTED, "Fortran order");
}

static void test_refuse_rank(void **state)
{
    (void)state;
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", 4,
                          CLCNN_STATUS_UNSUPPORTED, "shape () has rank 0");
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 3, 1), }",
                          24, CLCNN_STATUS_UNSUPPORTED, "shape (1, 2, 1, 3, 1) has rank 5");
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, "
                          "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}",
                          4, CLCNN_STATUS_UNSUPPORTED, "rank 12; clcnn reads rank 1 to 4");
}

static void test_refuse_zero_and_negative_dims(void **state)
{
    (void)state;
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0, 3), }\n", 0,
                          CLCNN_STATUS_BAD_SHAPE, "shape (2, 0, 3) has a zero dimension");
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }\n", 0,
                          CLCNN_STATUS_BAD_SHAPE, "shape (0,) has a zero dimension");
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }\n", 24,
                          CLCNN_STATUS_BAD_SHAPE, "shape (2, -3) has a negative dimension");
}

static void test_refuse_data_size(void **state)
{
    (void)state;
    const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    expect_header_refused(h, 20, CLCNN_STATUS_CORRUPT, "truncated: 20 data bytes, expected 24");
    expect_header_refused(h, 0, CLCNN_STATUS_CORRUPT, "truncated: 0 data bytes, expected 24");
    expect_header_refused(h, 23, CLCNN_STATUS_CORRUPT, "truncated: 23 data bytes");
    expect_header_refused(h, 25, CLCNN_STATUS_CORRUPT, "25 data bytes, expected 24");
    expect_header_refused(h, 28, CLCNN_STATUS_CORRUPT, "(4 trailing bytes)");
    /* An absurd shape that fits size_t but not the file. */
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000)}",
                          24, CLCNN_STATUS_CORRUPT,
                          "truncated: 24 data bytes, expected 4000000000000");
}

static void test_refuse_header_past_eof(void **state)
{
    (void)state;
    unsigned char *data = counting_data(6);
    size_t size;
    unsigned char *p = build_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
                                 data, 24, &size);
    p[8] = 0xff;
    p[9] = 0xff;
    expect_refused(p, size, CLCNN_STATUS_CORRUPT,
                   "header length 65535 runs past the end of the file");
    free(p);
    /* Version 2.0: a length near 4 GiB must not wrap around. */
    p = build_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", data, 24,
                  &size);
    memset(p + 8, 0xff, 4);
    expect_refused(p, size, CLCNN_STATUS_CORRUPT, "header length 4294967295 runs past the end");
    free(p);
    free(data);
}

static void test_refuse_overflow(void **state)
{
    (void)state;
    expect_header_refused(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n", 24,
        CLCNN_STATUS_CORRUPT, "shape (4294967296, 4294967296, 16) overflows");
    /* count fits size_t on 64-bit hosts but count * 4 does not. */
    expect_header_refused(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }\n", 24,
        CLCNN_STATUS_CORRUPT, "overflows");
    /* A single dimension too big for size_t. */
    expect_header_refused("{'descr': '<f4', 'fortran_order': False, "
                          "'shape': (99999999999999999999999999999999,)}",
                          24, CLCNN_STATUS_CORRUPT, "overflows");
    /* A dimension of hundreds of digits is cut in the message. */
    char header[1200];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    memset(header + n, '9', 900);
    snprintf(header + n + 900, sizeof header - (size_t)n - 900, ", 2)}");
    expect_header_refused(header, 24, CLCNN_STATUS_CORRUPT, "999...");
}

static void test_refuse_keys(void **state)
{
    (void)state;
    expect_header_refused(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1, }\n", 24,
        CLCNN_STATUS_PARSE, "unknown key 'extra'");
    expect_header_refused("{'Descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24,
                          CLCNN_STATUS_PARSE, "unknown key 'Descr'");
    expect_header_refused("{'descr': '<f4', 'fortran_order': False}\n", 24, CLCNN_STATUS_PARSE,
                          "no 'shape' key");
    expect_header_refused("{'descr': '<f4', 'shape': (2, 3)}\n", 24, CLCNN_STATUS_PARSE,
                          "no 'fortran_order' key");
    expect_header_refused("{}\n", 24, CLCNN_STATUS_PARSE, "no 'descr' key");
    expect_header_refused("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                          "'shape': (2, 3)}",
                          24, CLCNN_STATUS_PARSE, "duplicate key 'descr'");
}

static void test_refuse_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        const char *text;
    } cases[] = {
        {"", "expected '{'"},
        {"\n", "expected '{' opening the header dict at byte 11, found the end of the header"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", "a rank-1 shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", "a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", "',' or '}'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}", "',' or '}' after a value"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}", "':' after a key"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}", "a quoted string"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}", "',' or '}' after a value"},
        {"{'descr': '<f4\n', 'fortran_order': False, 'shape': (2, 3)}", "found byte 0x0a"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 3)}", "escapes"},
        {"{'descr': '<f4\xc3\xa9', 'fortran_order': False, 'shape': (2, 3)}", "byte 0xc3"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2, 3)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}}", "only spaces"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\0", "found byte 0x00"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", "only spaces"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3)}", "a dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,)}", "a dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0x10,)}", "after a dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (02, 3)}", "leading zeros"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)},", "only spaces"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),,}", "a quoted string"},
        {"{,}", "a quoted string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (", "a dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ", "a tuple"},
        {"{'descr': '<f4', 'fortran_order': Fal", "True or False"},
        {"{'descr': '<f4", "a printable character or a closing quote"},
        {"{'descr'", "':' after a key"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* Headers with an embedded NUL need their real length. */
        size_t hlen = strlen(cases[c].header);
        if (strstr(cases[c].text, "0x00") != NULL)
            hlen += 1;
        unsigned char *data = counting_data(6);
        size_t size = 10 + hlen + 24;
        unsigned char *p = malloc(size);
        assert_non_null(p);
        memcpy(p, "\x93NUMPY\x01\x00", 8);
        p[8] = (unsigned char)hlen;
        p[9] = (unsigned char)(hlen >> 8);
        memcpy(p + 10, cases[c].header, hlen);
        memcpy(p + 10 + hlen, data, 24);
        expect_refused(p, size, CLCNN_STATUS_PARSE, cases[c].text);
        free(p);
        free(data);
    }
}

static void test_invalid_args(void **state)
{
    (void)state;
    unsigned char *data = counting_data(6);
    size_t size;
    unsigned char *p = build_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
                                 data, 24, &size);
    assert_status_msg(clcnn_npy_parse(p, size, NULL), CLCNN_STATUS_INVALID_ARG, "NULL array");
    expect_refused(NULL, size, CLCNN_STATUS_INVALID_ARG, "NULL bytes");
    clcnn_npy_array a;
    fill_sentinel(&a);
    assert_status_msg(clcnn_npy_load(NULL, &a), CLCNN_STATUS_INVALID_ARG, "NULL path");
    assert_sentinel(&a);
    assert_status_msg(clcnn_npy_load("x.npy", NULL), CLCNN_STATUS_INVALID_ARG, "NULL array");

    float x[6] = {1, 2, 3, 4, 5, 6};
    size_t dims[2] = {2, 3};
    void *out = (void *)&a;
    size_t out_size = 12345;
    assert_status_msg(clcnn_npy_serialize(2, dims, x, NULL, &out_size), CLCNN_STATUS_INVALID_ARG,
                      "NULL output");
    assert_status_msg(clcnn_npy_serialize(2, dims, x, &out, NULL), CLCNN_STATUS_INVALID_ARG,
                      "NULL output");
    assert_status_msg(clcnn_npy_serialize(2, NULL, x, &out, &out_size), CLCNN_STATUS_INVALID_ARG,
                      "NULL dims");
    assert_status_msg(clcnn_npy_serialize(2, dims, NULL, &out, &out_size), CLCNN_STATUS_INVALID_ARG,
                      "npy: NULL data for shape (2, 3)");
    assert_status_msg(clcnn_npy_save(NULL, 2, dims, x), CLCNN_STATUS_INVALID_ARG, "NULL path");
    assert_ptr_equal(out, (void *)&a);
    assert_int_equal(out_size, 12345);
    free(p);
    free(data);
}

static void test_serialize_refusals(void **state)
{
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t dims[5] = {2, 2, 2, 1, 1};
    size_t zero[3] = {2, 0, 4};
    size_t huge[2] = {SIZE_MAX / 2, 3};
    void *out = NULL;
    size_t out_size = 7;
    assert_status_msg(clcnn_npy_serialize(0, dims, x, &out, &out_size), CLCNN_STATUS_BAD_SHAPE,
                      "npy: rank 0 is not supported");
    assert_status_msg(clcnn_npy_serialize(5, dims, x, &out, &out_size), CLCNN_STATUS_BAD_SHAPE,
                      "rank 5");
    assert_status_msg(clcnn_npy_serialize(-1, dims, x, &out, &out_size), CLCNN_STATUS_BAD_SHAPE,
                      "rank -1");
    assert_status_msg(clcnn_npy_serialize(3, zero, x, &out, &out_size), CLCNN_STATUS_BAD_SHAPE,
                      "shape (2, 0, 4) has a zero dimension");
    assert_status_msg(clcnn_npy_serialize(2, huge, x, &out, &out_size), CLCNN_STATUS_BAD_SHAPE,
                      "overflows");
    assert_null(out);
    assert_int_equal(out_size, 7);
}

static void test_load_refusals_name_the_path(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *missing = test_path(dir, "missing.npy");
    char *empty = test_path(dir, "empty.npy");
    char *f8 = test_path(dir, "f8.npy");
    clcnn_npy_array a;

    fill_sentinel(&a);
    assert_status_msg(clcnn_npy_load(missing, &a), CLCNN_STATUS_IO, "missing.npy: cannot open");
    assert_sentinel(&a);

    test_write_file(empty, "", 0);
    assert_status_msg(clcnn_npy_load(empty, &a), CLCNN_STATUS_PARSE, "empty file");
    assert_int_equal(strncmp(clcnn_last_error(), empty, strlen(empty)), 0);
    assert_sentinel(&a);

    size_t size;
    unsigned char *data = counting_data(12);
    unsigned char *p = build_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n",
                                 data, 48, &size);
    test_write_file(f8, p, size);
    assert_status_msg(clcnn_npy_load(f8, &a), CLCNN_STATUS_UNSUPPORTED,
                      "f8.npy: dtype '<f8' is not supported");
    assert_int_equal(strncmp(clcnn_last_error(), f8, strlen(f8)), 0);
    assert_sentinel(&a);

    /* A directory is not a .npy file. */
    assert_status_msg(clcnn_npy_load(dir, &a), CLCNN_STATUS_IO, "not a regular file");
    assert_sentinel(&a);

    free(p);
    free(data);
    free(missing);
    free(empty);
    free(f8);
    test_rmtree(dir);
    free(dir);
}

/* Checks one parse of damaged bytes: it fails with a known status and a "npy: " message, or
 * it succeeds with an array that is consistent with itself and with the input size. Returns
 * whether it was accepted. */
static int check_fuzz_result(const unsigned char *p, size_t size)
{
    clcnn_npy_array a;
    fill_sentinel(&a);
    clcnn_status s = clcnn_npy_parse(p, size, &a);
    if (s != CLCNN_OK) {
        assert_true(s == CLCNN_STATUS_PARSE || s == CLCNN_STATUS_CORRUPT ||
                    s == CLCNN_STATUS_UNSUPPORTED || s == CLCNN_STATUS_BAD_SHAPE);
        assert_int_equal(strncmp(clcnn_last_error(), "npy: ", 5), 0);
        assert_sentinel(&a);
        return 0;
    }
    assert_true(a.rank >= 1 && a.rank <= CLCNN_NPY_MAX_RANK);
    size_t count = 1;
    for (int i = 0; i < CLCNN_NPY_MAX_RANK; i++) {
        assert_true(a.dims[i] >= 1);
        if (i >= a.rank)
            assert_int_equal(a.dims[i], 1);
        count *= a.dims[i];
    }
    assert_int_equal(a.count, count);
    assert_non_null(a.data);
    assert_true(count * 4 < size);
    /* The data is the file's tail, little-endian. */
    const unsigned char *tail = p + size - count * 4;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *q = tail + 4 * i;
        uint32_t want =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        uint32_t got;
        memcpy(&got, &a.data[i], 4);
        assert_int_equal(got, want);
    }
    clcnn_npy_array_free(&a);
    return 1;
}

static void test_fuzz(void **state)
{
    (void)state;
    static const unsigned char interesting[] = {
        '(', ')', ',',  '\'', '"',  '{', '}', ':', ' ', '\n', '0', '1', '5', '9',  '-',
        'L', 0,   0xff, 0x80, 0x7f, 'T', 'F', '<', '>', 'f',  '4', '8', '[', '\\',
    };
    test_rng rng;
    test_rng_seed(&rng, 3);
    float x[24];
    test_rng_fill(&rng, x, 24, -1.0f, 1.0f);
    size_t dims[3] = {2, 3, 4};
    void *b1;
    size_t n1;
    assert_ok(clcnn_npy_serialize(3, dims, x, &b1, &n1));
    size_t n2;
    unsigned char *xle = counting_data(24);
    unsigned char *b2 = build_npy(2,
                                  "{\"shape\": (4, 6), \"fortran_order\": False, "
                                  "\"descr\": \"<f4\"}\n",
                                  xle, 96, &n2);
    const unsigned char *bases[2] = {b1, b2};
    const size_t sizes[2] = {n1, n2};
    size_t variants = 0, accepted = 0;

    /* Every truncation of both files. */
    for (int b = 0; b < 2; b++) {
        for (size_t len = 0; len <= sizes[b]; len++) {
            unsigned char *p = malloc(len > 0 ? len : 1);
            assert_non_null(p);
            memcpy(p, bases[b], len);
            check_fuzz_result(p, len);
            free(p);
            variants++;
        }
    }
    /* Random byte changes, mostly in the header, some with a truncation too. */
    while (variants < 20000) {
        int b = (int)(test_rng_next(&rng) % 2);
        size_t len = sizes[b];
        unsigned char *p = malloc(len);
        assert_non_null(p);
        memcpy(p, bases[b], len);
        int changes = 1 + (int)(test_rng_next(&rng) % 4);
        for (int k = 0; k < changes; k++) {
            size_t hdr = len - sizeof x;
            size_t pos = test_rng_next(&rng) % 10 < 8 ? test_rng_next(&rng) % hdr
                                                      : test_rng_next(&rng) % len;
            uint64_t r = test_rng_next(&rng);
            if (r % 3 == 0)
                p[pos] = (unsigned char)(r >> 8);
            else
                p[pos] = interesting[(r >> 8) % sizeof interesting];
        }
        if (test_rng_next(&rng) % 10 == 0)
            len = (size_t)(test_rng_next(&rng) % (len + 1));
        accepted += (size_t)check_fuzz_result(p, len);
        free(p);
        variants++;
    }
    assert_int_equal(variants, 20000);
    /* Some mutations (in the data, or harmless whitespace) keep the file valid. */
    assert_true(accepted > 0);
    clcnn_free(b1);
    free(b2);
    free(xle);
}

/* Names in dir other than "." and "..", joined with '/' (for a readable failure). */
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
        strncat(names, e->d_name, cap - strlen(names) - 2);
        strcat(names, "/");
    }
    closedir(d);
    return count;
}

static void test_save_failure_keeps_old_file(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *path = test_path(dir, "w.npy");
    float x[6] = {1, 2, 3, 4, 5, 6};
    size_t dims[5] = {2, 3, 1, 1, 1};
    assert_ok(clcnn_npy_save(path, 2, dims, x));
    size_t old_size;
    void *old = test_read_file(path, &old_size);

    size_t zero[2] = {2, 0};
    assert_status_msg(clcnn_npy_save(path, 5, dims, x), CLCNN_STATUS_BAD_SHAPE, "rank 5");
    assert_int_equal(strncmp(clcnn_last_error(), path, strlen(path)), 0);
    assert_status_msg(clcnn_npy_save(path, 2, zero, x), CLCNN_STATUS_BAD_SHAPE,
                      "w.npy: shape (2, 0) has a zero dimension");
    assert_status_msg(clcnn_npy_save(path, 2, dims, NULL), CLCNN_STATUS_INVALID_ARG, "NULL data");

    size_t now_size;
    void *now = test_read_file(path, &now_size);
    assert_int_equal(now_size, old_size);
    assert_memory_equal(now, old, old_size);
    char names[512];
    assert_int_equal(list_dir(dir, names, sizeof names), 1);
    assert_string_equal(names, "w.npy/");

    /* A save into a missing directory is IO and creates nothing. */
    char *bad = test_path(dir, "no/such/dir/y.npy");
    assert_status_msg(clcnn_npy_save(bad, 2, dims, x), CLCNN_STATUS_IO, "y.npy");
    assert_int_equal(list_dir(dir, names, sizeof names), 1);

    free(bad);
    free(now);
    free(old);
    free(path);
    test_rmtree(dir);
    free(dir);
}

static void test_save_replaces_and_leaves_no_temp_files(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *a_path = test_path(dir, "a.npy");
    char *b_path = test_path(dir, "b.npy");
    float x[12], y[4];
    test_rng rng;
    test_rng_seed(&rng, 4);
    test_rng_fill(&rng, x, 12, -1.0f, 1.0f);
    test_rng_fill(&rng, y, 4, -1.0f, 1.0f);
    size_t dx[2] = {3, 4}, dy[1] = {4};
    assert_ok(clcnn_npy_save(a_path, 2, dx, x));
    assert_ok(clcnn_npy_save(b_path, 2, dx, x));
    /* Overwriting a file replaces it whole with the new, smaller one. */
    assert_ok(clcnn_npy_save(a_path, 1, dy, y));
    clcnn_npy_array a;
    assert_ok(clcnn_npy_load(a_path, &a));
    assert_same_array(&a, 1, dy, y, 4);
    clcnn_npy_array_free(&a);
    assert_ok(clcnn_npy_load(b_path, &a));
    assert_same_array(&a, 2, dx, x, 12);
    clcnn_npy_array_free(&a);

    char names[512];
    assert_int_equal(list_dir(dir, names, sizeof names), 2);
    assert_true(strcmp(names, "a.npy/b.npy/") == 0 || strcmp(names, "b.npy/a.npy/") == 0);
    free(a_path);
    free(b_path);
    test_rmtree(dir);
    free(dir);
}

static void test_array_free(void **state)
{
    (void)state;
    clcnn_npy_array_free(NULL);
    clcnn_npy_array empty;
    memset(&empty, 0, sizeof empty);
    clcnn_npy_array_free(&empty);
    float x[3] = {1, 2, 3};
    size_t dims[1] = {3};
    void *bytes;
    size_t size;
    assert_ok(clcnn_npy_serialize(1, dims, x, &bytes, &size));
    clcnn_npy_array a;
    assert_ok(clcnn_npy_parse(bytes, size, &a));
    clcnn_npy_array_free(&a);
    assert_null(a.data);
    assert_int_equal(a.count, 0);
    assert_int_equal(a.rank, 0);
    /* Freeing twice is harmless once zeroed. */
    clcnn_npy_array_free(&a);
    clcnn_free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_serialize_parse),
        cmocka_unit_test(test_roundtrip_save_load),
        cmocka_unit_test(test_special_values_bit_exact),
        cmocka_unit_test(test_golden_header_2x3),
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_parse_versions_2_and_3),
        cmocka_unit_test(test_parse_quotes_and_key_order),
        cmocka_unit_test(test_parse_ranks_and_odd_offsets),
        cmocka_unit_test(test_refuse_bad_magic),
        cmocka_unit_test(test_refuse_empty_and_truncated_prefix),
        cmocka_unit_test(test_refuse_version),
        cmocka_unit_test(test_refuse_dtypes),
        cmocka_unit_test(test_refuse_fortran_order),
        cmocka_unit_test(test_refuse_rank),
        cmocka_unit_test(test_refuse_zero_and_negative_dims),
        cmocka_unit_test(test_refuse_data_size),
        cmocka_unit_test(test_refuse_header_past_eof),
        cmocka_unit_test(test_refuse_overflow),
        cmocka_unit_test(test_refuse_keys),
        cmocka_unit_test(test_refuse_syntax),
        cmocka_unit_test(test_invalid_args),
        cmocka_unit_test(test_serialize_refusals),
        cmocka_unit_test(test_load_refusals_name_the_path),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_save_failure_keeps_old_file),
        cmocka_unit_test(test_save_replaces_and_leaves_no_temp_files),
        cmocka_unit_test(test_array_free),
    };
    return cmocka_run_group_tests_name("npy", tests, NULL, NULL);
}
