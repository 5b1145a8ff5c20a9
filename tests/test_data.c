/* Datasets: IDX files plain and gzip (written here with zlib), MNIST-format splits, CIFAR-10
 * records, refusals of truncated, inconsistent and hostile files, normalization and seeded
 * augmentation, and the real Fashion-MNIST when Debian's package is installed. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "testutil.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_tempdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rmtree(dir);
    free(dir);
    return 0;
}

/* An IDX file's bytes: header for rank dims, then payload bytes (may differ from the declared
 * size to make broken files). */
static unsigned char *idx_bytes(int rank, const uint32_t *dims, const uint8_t *payload,
                                size_t payload_size, size_t *size)
{
    *size = 4 + 4 * (size_t)rank + payload_size;
    unsigned char *b = malloc(*size);
    assert_non_null(b);
    b[0] = b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (payload_size > 0)
        memcpy(b + 4 + 4 * rank, payload, payload_size);
    return b;
}

static unsigned char *gzip_bytes(const unsigned char *in, size_t n, size_t *size)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *size = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void write_idx(const char *name, bool gz, int rank, const uint32_t *dims,
                      const uint8_t *payload, size_t payload_size)
{
    size_t size, zsize;
    unsigned char *b = idx_bytes(rank, dims, payload, payload_size, &size);
    char *path = test_path(dir, name);
    if (gz) {
        unsigned char *z = gzip_bytes(b, size, &zsize);
        test_write_file(path, z, zsize);
        free(z);
    } else {
        test_write_file(path, b, size);
    }
    free(path);
    free(b);
}

static void test_idx_plain_and_gzip(void **state)
{
    (void)state;
    uint8_t payload[2 * 3 * 4];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    uint32_t dims[3] = {2, 3, 4};
    for (int gz = 0; gz < 2; gz++) {
        size_t size;
        unsigned char *b = idx_bytes(3, dims, payload, sizeof payload, &size);
        unsigned char *in = b;
        if (gz)
            in = gzip_bytes(b, size, &size);
        clcnn_idx x;
        assert_ok(clcnn_idx_parse(in, size, &x));
        assert_int_equal(x.rank, 3);
        assert_true(x.dims[0] == 2 && x.dims[1] == 3 && x.dims[2] == 4 && x.dims[3] == 1);
        assert_int_equal(x.count, sizeof payload);
        assert_memory_equal(x.data, payload, sizeof payload);
        clcnn_idx_free(&x);
        assert_null(x.data);
        if (gz)
            free(in);
        free(b);
    }
    clcnn_idx_free(NULL);
}

typedef struct idx_bad {
    const char *what;
    clcnn_status status;
    const char *message;
} idx_bad;

/* Each broken form, plain and gzip, refused with its status and message; output untouched. */
static void expect_bad(const unsigned char *b, size_t size, clcnn_status status, const char *msg)
{
    for (int gz = 0; gz < 2; gz++) {
        size_t n = size;
        const unsigned char *in = b;
        unsigned char *z = NULL;
        if (gz)
            in = z = gzip_bytes(b, size, &n);
        clcnn_idx x = {7, {0}, 0, (uint8_t *)0x1};
        assert_status_msg(clcnn_idx_parse(in, n, &x), status, msg);
        assert_int_equal(x.rank, 7);
        assert_ptr_equal(x.data, (uint8_t *)0x1);
        free(z);
    }
}

static void test_idx_refusals(void **state)
{
    (void)state;
    uint8_t payload[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint32_t dims[2] = {3, 4};
    size_t size;
    unsigned char *b = idx_bytes(2, dims, payload, 12, &size);
    expect_bad(b, size - 1, CLCNN_STATUS_CORRUPT, "truncated: the header declares 12 data bytes");
    expect_bad(b, 6, CLCNN_STATUS_CORRUPT, "truncated");
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, b, size);
    longer[size] = 99;
    expect_bad(longer, size + 1, CLCNN_STATUS_CORRUPT, "trailing bytes");
    free(longer);
    b[0] = 0x42;
    expect_bad(b, size, CLCNN_STATUS_PARSE, "not an IDX file");
    b[0] = 0;
    b[2] = 0x0d; /* float */
    expect_bad(b, size, CLCNN_STATUS_PARSE, "element type 0x0d");
    b[2] = 0x08;
    b[3] = 5;
    expect_bad(b, size, CLCNN_STATUS_BAD_SHAPE, "rank 5");
    b[3] = 2;
    b[7] = 0; /* dims[0] = 0 */
    expect_bad(b, size, CLCNN_STATUS_BAD_SHAPE, "dimension 0 is 0");
    free(b);
    /* A header that declares gigabytes is refused before any allocation or inflation. */
    uint32_t huge[3] = {60000000, 28, 28};
    b = idx_bytes(3, huge, payload, 12, &size);
    expect_bad(b, size, CLCNN_STATUS_BAD_SHAPE, "more than 1073741824 bytes");
    free(b);
    /* A gzip bomb: 64 MiB of zeros behind a header that declares 16 bytes. */
    size_t bomb_size = (size_t)64 << 20;
    unsigned char *bomb = calloc(1, bomb_size);
    uint32_t small[1] = {16};
    unsigned char *hb = idx_bytes(1, small, NULL, 0, &size);
    memcpy(bomb, hb, size);
    size_t zsize;
    unsigned char *z = gzip_bytes(bomb, bomb_size, &zsize);
    clcnn_idx x;
    assert_status_msg(clcnn_idx_parse(z, zsize, &x), CLCNN_STATUS_CORRUPT, "trailing bytes");
    /* Broken compressed data and a cut stream. */
    z[zsize / 2] ^= 0xff;
    assert_int_equal(clcnn_idx_parse(z, zsize, &x), CLCNN_STATUS_CORRUPT);
    z[zsize / 2] ^= 0xff;
    assert_status_msg(clcnn_idx_parse(z, 20, &x), CLCNN_STATUS_CORRUPT, "gzip");
    free(z);
    free(hb);
    free(bomb);
    assert_status_msg(clcnn_idx_parse(NULL, 0, &x), CLCNN_STATUS_INVALID_ARG, "NULL");
}

static void write_split(const char *split, uint32_t n, uint32_t h, uint32_t w, uint32_t nlabels,
                        uint8_t bad_label)
{
    char name[64];
    uint32_t idims[3] = {n, h, w}, ldims[1] = {nlabels};
    uint8_t *pix = malloc((size_t)n * h * w), *lab = malloc(nlabels);
    for (size_t i = 0; i < (size_t)n * h * w; i++)
        pix[i] = (uint8_t)(i % 251);
    for (uint32_t i = 0; i < nlabels; i++)
        lab[i] = (uint8_t)(i % 10);
    if (bad_label)
        lab[nlabels - 1] = bad_label;
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", split);
    write_idx(name, true, 3, idims, pix, (size_t)n * h * w);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    write_idx(name, false, 1, ldims, lab, nlabels);
    free(pix);
    free(lab);
}

static void test_mnist_split(void **state)
{
    (void)state;
    write_split("train", 5, 4, 3, 5, 0);
    clcnn_dataset d;
    assert_ok(clcnn_dataset_load_mnist(dir, "train", &d));
    assert_true(d.count == 5 && d.channels == 1 && d.height == 4 && d.width == 3);
    assert_int_equal(d.classes, 10);
    assert_int_equal(d.images[13], 13);
    assert_int_equal(d.labels[4], 4);
    assert_true(d.mean[0] == 0.1307f); /* not a "fashion" directory: MNIST digits */
    assert_string_equal(d.class_names[7], "7");

    /* Normalization without augmentation is (p/255 - mean) / std, image by image. */
    size_t idx[2] = {3, 0};
    float img[2 * 12];
    int32_t lab[2];
    assert_ok(clcnn_dataset_batch(&d, idx, 2, NULL, 1, img, lab));
    for (size_t b = 0; b < 2; b++)
        for (size_t p = 0; p < 12; p++) {
            double want = ((double)d.images[idx[b] * 12 + p] / 255.0 - 0.1307) / 0.3081;
            assert_true(fabs(img[b * 12 + p] - want) < 1e-5);
        }
    assert_true(lab[0] == 3 && lab[1] == 0);
    size_t out_of_range = 5;
    assert_status_msg(clcnn_dataset_batch(&d, &out_of_range, 1, NULL, 1, img, lab),
                      CLCNN_STATUS_INVALID_ARG, "index 5");
    clcnn_dataset_free(&d);
    assert_null(d.images);

    write_split("t10k", 4, 2, 2, 3, 0);
    assert_status_msg(clcnn_dataset_load_mnist(dir, "t10k", &d), CLCNN_STATUS_CORRUPT,
                      "3 labels in t10k-labels but 4 images");
    write_split("t10k", 3, 2, 2, 3, 10);
    assert_status_msg(clcnn_dataset_load_mnist(dir, "t10k", &d), CLCNN_STATUS_CORRUPT,
                      "label 2 is 10");
    assert_status_msg(clcnn_dataset_load_mnist(dir, "valid", &d), CLCNN_STATUS_INVALID_ARG,
                      "split 'valid'");
    assert_status_msg(clcnn_dataset_load_mnist("/nonexistent", "train", &d), CLCNN_STATUS_IO,
                      "/nonexistent/train-images-idx3-ubyte");
}

static void test_augmentation_is_seeded(void **state)
{
    (void)state;
    enum { H = 6, W = 5 };
    uint8_t pix[2 * H * W], lab[2] = {1, 2};
    for (size_t i = 0; i < sizeof pix; i++)
        pix[i] = (uint8_t)(10 + i);
    clcnn_dataset d = {2, 1, H, W, 10, pix, lab, {0.0f}, {1.0f / 255.0f}, NULL};
    /* With mean 0 and std 1/255 the batch holds the raw pixel values. */
    size_t idx[2] = {0, 1};
    float plain[2 * H * W], a[2 * H * W], b[2 * H * W], flipped[2 * H * W];
    assert_ok(clcnn_dataset_batch(&d, idx, 2, NULL, 7, plain, NULL));
    for (size_t i = 0; i < sizeof pix; i++)
        assert_true(plain[i] == pix[i]);
    clcnn_augment none = {0, false};
    assert_ok(clcnn_dataset_batch(&d, idx, 2, &none, 7, a, NULL));
    assert_memory_equal(a, plain, sizeof a);

    /* Flip only: each image is either itself or its mirror, chosen by (seed, index). */
    clcnn_augment flip = {0, true};
    int mirrored = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        assert_ok(clcnn_dataset_batch(&d, idx, 2, &flip, seed, flipped, NULL));
        for (size_t k = 0; k < 2; k++) {
            bool same = memcmp(flipped + k * H * W, plain + k * H * W, H * W * sizeof(float)) == 0;
            bool mirror = true;
            for (size_t y = 0; y < H; y++)
                for (size_t x = 0; x < W; x++)
                    mirror = mirror && flipped[k * H * W + y * W + x] ==
                                           plain[k * H * W + y * W + (W - 1 - x)];
            assert_true(same || mirror);
            mirrored += mirror;
        }
    }
    assert_true(mirrored > 4 && mirrored < 28);

    /* Crop with padding: a shifted copy with zeros coming in; same seed same batch, in any
     * order of the indices. */
    clcnn_augment crop = {2, true};
    assert_ok(clcnn_dataset_batch(&d, idx, 2, &crop, 99, a, NULL));
    size_t rev[2] = {1, 0};
    assert_ok(clcnn_dataset_batch(&d, rev, 2, &crop, 99, b, NULL));
    assert_memory_equal(a, b + H * W, H * W * sizeof(float));
    assert_memory_equal(a + H * W, b, H * W * sizeof(float));
    bool differs = false;
    for (uint64_t seed = 0; seed < 8 && !differs; seed++) {
        assert_ok(clcnn_dataset_batch(&d, idx, 2, &crop, seed, b, NULL));
        differs = memcmp(a, b, sizeof a) != 0;
    }
    assert_true(differs);
    for (size_t i = 0; i < 2 * H * W; i++) {
        bool zero = a[i] == 0.0f;
        bool from_image = false;
        for (size_t j = 0; j < sizeof pix && !from_image; j++)
            from_image = a[i] == pix[j];
        assert_true(zero || from_image);
    }
}

static void test_cifar10(void **state)
{
    (void)state;
    enum { RECORD = 3073 };
    unsigned char *rec = malloc(3 * RECORD);
    for (size_t r = 0; r < 3; r++) {
        rec[r * RECORD] = (unsigned char)(r + 4);
        for (size_t i = 1; i < RECORD; i++)
            rec[r * RECORD + i] = (unsigned char)((i + r) % 256);
    }
    char *path = test_path(dir, "test_batch.bin");
    test_write_file(path, rec, 3 * RECORD);
    clcnn_dataset d;
    assert_ok(clcnn_dataset_load_cifar10(dir, false, &d));
    assert_true(d.count == 3 && d.channels == 3 && d.height == 32 && d.width == 32);
    assert_int_equal(d.labels[2], 6);
    assert_int_equal(d.images[RECORD - 1 + 5], (unsigned char)((6 + 1) % 256));
    assert_string_equal(d.class_names[d.labels[0]], "deer");
    clcnn_dataset_free(&d);
    test_write_file(path, rec, 3 * RECORD - 1);
    assert_status_msg(clcnn_dataset_load_cifar10(dir, false, &d), CLCNN_STATUS_CORRUPT,
                      "not a whole number of 3073-byte records");
    rec[RECORD] = 10;
    test_write_file(path, rec, 3 * RECORD);
    assert_status_msg(clcnn_dataset_load_cifar10(dir, false, &d), CLCNN_STATUS_CORRUPT,
                      "record 1 has label 10");
    assert_status_msg(clcnn_dataset_load_cifar10(dir, true, &d), CLCNN_STATUS_IO,
                      "data_batch_1.bin");
    free(path);
    free(rec);
}

/* k-means: the centres it returns are the means of the points nearest them (a fixed point of
 * Lloyd's iteration), well-separated clusters are found, and a seed gives the same bits. */
static void test_kmeans(void **state)
{
    (void)state;
    enum { N = 300, DIM = 4, K = 3 };
    static float points[N * DIM];
    test_rng rng;
    test_rng_seed(&rng, 8);
    const float centre[K][DIM] = {{5, 0, 0, 1}, {-5, 2, 0, 0}, {0, -6, 3, 0}};
    for (size_t p = 0; p < N; p++)
        for (size_t t = 0; t < DIM; t++)
            points[p * DIM + t] = centre[p % K][t] + (float)test_rng_uniform(&rng, -0.5, 0.5);
    float c[K * DIM], again[K * DIM];
    assert_ok(clcnn_kmeans(points, N, DIM, K, 20, 3, c));
    assert_ok(clcnn_kmeans(points, N, DIM, K, 20, 3, again));
    assert_memory_equal(c, again, sizeof c);
    double sums[K][DIM] = {{0}};
    size_t counts[K] = {0};
    for (size_t p = 0; p < N; p++) {
        size_t best = 0;
        double best_d = 1e30;
        for (size_t j = 0; j < K; j++) {
            double d = 0;
            for (size_t t = 0; t < DIM; t++)
                d += pow((double)points[p * DIM + t] - c[j * DIM + t], 2);
            if (d < best_d) {
                best = j;
                best_d = d;
            }
        }
        counts[best]++;
        for (size_t t = 0; t < DIM; t++)
            sums[best][t] += points[p * DIM + t];
    }
    for (size_t j = 0; j < K; j++) {
        assert_int_equal(counts[j], N / K); /* each true cluster, whole */
        for (size_t t = 0; t < DIM; t++)
            assert_true(fabs(c[j * DIM + t] - sums[j][t] / (double)counts[j]) < 1e-6);
    }
    assert_status_msg(clcnn_kmeans(points, 2, DIM, 3, 1, 1, c), CLCNN_STATUS_INVALID_ARG,
                      "3 centres of 2 points");

    /* Patches: zero mean, unit norm, the same for a seed. */
    uint8_t pix[2 * 6 * 6], lab[2] = {0, 1};
    for (size_t i = 0; i < sizeof pix; i++)
        pix[i] = (uint8_t)((i * 37) % 251);
    clcnn_dataset d = {2, 1, 6, 6, 10, pix, lab, {0.5f}, {0.5f}, NULL};
    float pa[20 * 9], pb[20 * 9];
    assert_ok(clcnn_dataset_patches(&d, 20, 3, 3, 4, pa));
    assert_ok(clcnn_dataset_patches(&d, 20, 3, 3, 4, pb));
    assert_memory_equal(pa, pb, sizeof pa);
    for (size_t i = 0; i < 20; i++) {
        double mean = 0, norm = 0;
        for (size_t t = 0; t < 9; t++) {
            mean += pa[i * 9 + t];
            norm += (double)pa[i * 9 + t] * pa[i * 9 + t];
        }
        assert_true(fabs(mean) < 1e-5 && fabs(norm - 1.0) < 1e-5);
    }
    assert_status_msg(clcnn_dataset_patches(&d, 1, 7, 3, 4, pa), CLCNN_STATUS_INVALID_ARG,
                      "patch 7x3");
}

static void test_real_fashion_mnist(void **state)
{
    (void)state;
    FILE *probe = fopen(CLCNN_FASHION_MNIST_DIR "/t10k-labels-idx1-ubyte.gz", "rb");
    if (probe == NULL) {
        print_message("Fashion-MNIST is not installed at " CLCNN_FASHION_MNIST_DIR
                      " (Debian package dataset-fashion-mnist): skipped\n");
        skip();
        return;
    }
    fclose(probe);
    clcnn_dataset d;
    assert_ok(clcnn_dataset_load_mnist(CLCNN_FASHION_MNIST_DIR, "t10k", &d));
    assert_true(d.count == 10000 && d.height == 28 && d.width == 28 && d.channels == 1);
    size_t per_class[10] = {0};
    for (size_t i = 0; i < d.count; i++)
        per_class[d.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(per_class[c], 1000); /* the test split is balanced */
    assert_int_equal(d.labels[0], 9);         /* the first test image is an ankle boot */
    assert_string_equal(d.class_names[9], "Ankle boot");
    assert_true(d.mean[0] == 0.2860f);
    clcnn_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_plain_and_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mnist_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_augmentation_is_seeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kmeans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_fashion_mnist, setup, teardown),
    };
    return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
