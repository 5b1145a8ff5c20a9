/* Shared helpers of the test programs (see testutil.h). */
#define _POSIX_C_SOURCE 200809L
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

void test_rng_seed(test_rng *rng, uint64_t seed)
{
    rng->state = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    if (rng->state == 0)
        rng->state = 1;
}

uint64_t test_rng_next(test_rng *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545f4914f6cdd1dull;
}

double test_rng_uniform(test_rng *rng, double lo, double hi)
{
    double u = (double)(test_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return lo + (hi - lo) * u;
}

void test_rng_fill(test_rng *rng, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        float v;
        do {
            v = (float)test_rng_uniform(rng, lo, hi);
        } while (v == 0.0f);
        x[i] = v;
    }
}

char *test_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    char *path = malloc(strlen(base) + 32);
    assert_non_null(path);
    sprintf(path, "%s/clcnn-test-XXXXXX", base);
    assert_non_null(mkdtemp(path));
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_rmtree(const char *path)
{
    if (path != NULL)
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *test_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

void test_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (size > 0)
        assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

void *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *size = (size_t)len;
    return buf;
}

int test_have_device(void)
{
    clcnn_device_info info;
    if (clcnn_device_select(NULL, &info) != CLCNN_OK) {
        fprintf(stderr, "no OpenCL device (%s): skipping\n", clcnn_last_error());
        return 0;
    }
    return 1;
}

clcnn_device *test_dev;

int test_group_setup(void **state)
{
    (void)state;
    return clcnn_device_create(NULL, &test_dev) == CLCNN_OK ? 0 : -1;
}

int test_group_teardown(void **state)
{
    (void)state;
    clcnn_device_release(test_dev);
    test_dev = NULL;
    return 0;
}

clcnn_tensor *test_upload(clcnn_shape shape, const float *values)
{
    clcnn_tensor *t = NULL;
    assert_ok(clcnn_tensor_create(test_dev, shape, &t));
    if (values != NULL)
        assert_ok(clcnn_tensor_upload(t, values, clcnn_tensor_count(t)));
    return t;
}

float *test_download(const clcnn_tensor *tensor)
{
    size_t n = clcnn_tensor_count(tensor);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    assert_ok(clcnn_tensor_download(tensor, v, n));
    return v;
}
