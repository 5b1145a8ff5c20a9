/* Helpers shared by the test programs: seeded random numbers, temporary directories, files,
 * and the device fixture that skips (exit 77) when no OpenCL platform exists. */
#ifndef CLCNN_TESTUTIL_H
#define CLCNN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clcnn/clcnn.h"

/* meson's exit code for a skipped test. */
#define TEST_SKIP_CODE 77

/* Asserts a clcnn call succeeded, printing clcnn_last_error() when it did not. */
#define assert_ok(expr)                                                                            \
    do {                                                                                           \
        clcnn_status s_ = (expr);                                                                  \
        if (s_ != CLCNN_OK)                                                                        \
            print_error("%s -> %s: %s\n", #expr, clcnn_status_name(s_), clcnn_last_error());       \
        assert_int_equal(s_, CLCNN_OK);                                                            \
    } while (0)

/* Asserts a status and that clcnn_last_error() contains the given text. */
#define assert_status_msg(expr, status, text)                                                      \
    do {                                                                                           \
        clcnn_status s_ = (expr);                                                                  \
        if (s_ != (status) || strstr(clcnn_last_error(), (text)) == NULL)                          \
            print_error("%s -> %s, message: %s (wanted %s with '%s')\n", #expr,                    \
                        clcnn_status_name(s_), clcnn_last_error(), clcnn_status_name(status),      \
                        (text));                                                                   \
        assert_int_equal(s_, (status));                                                            \
        assert_non_null(strstr(clcnn_last_error(), (text)));                                       \
    } while (0)

/* xorshift64* generator: deterministic for a seed, independent of libc. */
typedef struct test_rng {
    uint64_t state;
} test_rng;

void test_rng_seed(test_rng *rng, uint64_t seed);
uint64_t test_rng_next(test_rng *rng);
/* Uniform in [lo, hi). */
double test_rng_uniform(test_rng *rng, double lo, double hi);
/* Fills with uniform values in [lo, hi) that are never exactly zero. */
void test_rng_fill(test_rng *rng, float *x, size_t n, float lo, float hi);

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its malloc'd path. */
char *test_tempdir(void);
/* Removes a directory tree made by test_tempdir(). */
void test_rmtree(const char *path);
/* Joins dir and name into a malloc'd path. */
char *test_path(const char *dir, const char *name);
/* Writes bytes to a file, asserting success. */
void test_write_file(const char *path, const void *data, size_t size);
/* Reads a whole file into a malloc'd buffer, asserting success. */
void *test_read_file(const char *path, size_t *size);

/* The device of a test program's group: test_group_setup() creates it (selected as
 * clcnn_device_create(NULL) does), test_group_teardown() releases it. */
extern clcnn_device *test_dev;
int test_group_setup(void **state);
int test_group_teardown(void **state);

/* A tensor of [in] shape on test_dev, holding [in] values when not NULL (asserting success). */
clcnn_tensor *test_upload(clcnn_shape shape, const float *values);
/* The tensor's values in a malloc'd array (asserting success). */
float *test_download(const clcnn_tensor *tensor);

/* Returns true when clcnn can see at least one OpenCL device. Device test mains call
 * `if (!test_have_device()) return TEST_SKIP_CODE;` so a machine without OpenCL skips. */
int test_have_device(void);

#endif
