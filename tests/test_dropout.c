/* Dropout: the host Philox-4x32-10 against Random123's known answers, the device mask and output
 * against it bit for bit (sizes with and without a tail, in place), the kept fraction on a large
 * tensor, the same mask for different launch shapes, backward from the mask and regenerated from
 * the seed, the gradient by central finite differences, and the refusals. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dropout_impl.h"
#include "testutil.h"

static clcnn_tensor *upload(clcnn_shape s, const float *v)
{
    clcnn_tensor *t = NULL;
    assert_ok(clcnn_tensor_create(test_dev, s, &t));
    if (v != NULL)
        assert_ok(clcnn_tensor_upload(t, v, clcnn_tensor_count(t)));
    else
        assert_ok(clcnn_tensor_fill(t, NAN));
    return t;
}

/* Whether two float arrays hold the same bits (NaN payloads and signed zeros included). */
static bool same_bits(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u, v;
        memcpy(&u, &a[i], sizeof u);
        memcpy(&v, &b[i], sizeof v);
        if (u != v)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The reference generator                                                                    */

static void philox(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = (uint32_t)p1;
        c[2] = n2;
        c[3] = (uint32_t)p0;
    }
}

/* The documented mask: element i kept when word i % 4 of philox((i/4, 0, 0, 0), seed) is at
 * least floor(p * 2^32). */
static bool ref_keep(uint64_t seed, float p, size_t i)
{
    uint32_t c[4] = {(uint32_t)(i / 4), 0, 0, 0};
    philox(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    return c[i % 4] >= (uint32_t)floor((double)p * 4294967296.0);
}

static void test_philox_known_answers(void **state)
{
    (void)state;
    /* Random123's kat_vectors for philox4x32 with 10 rounds. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t c[4] = {kat[k][0], kat[k][1], kat[k][2], kat[k][3]};
        philox(c, kat[k][4], kat[k][5]);
        for (int j = 0; j < 4; j++)
            assert_int_equal(c[j], kat[k][6 + j]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Forward and backward against the reference                                                 */

static void run_case(size_t count, float p, uint64_t seed)
{
    const clcnn_shape s = {1, count, 1, 1};
    const clcnn_dropout_params dp = {p, seed};
    const float scale = (float)(1.0 / (1.0 - (double)p));
    test_rng rng;
    test_rng_seed(&rng, seed ^ count);
    float *x = malloc(count * sizeof *x), *dy = malloc(count * sizeof *dy);
    assert_true(x && dy);
    test_rng_fill(&rng, x, count, -2.0f, 2.0f);
    test_rng_fill(&rng, dy, count, -2.0f, 2.0f);
    clcnn_tensor *tx = upload(s, x), *ty = upload(s, NULL), *tm = upload(s, NULL),
                 *tdy = upload(s, dy), *tdx = upload(s, NULL);
    assert_ok(clcnn_dropout_forward(test_dev, &dp, tx, ty, tm));
    float *y = test_download(ty), *m = test_download(tm);
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        const bool k = ref_keep(seed, p, i);
        kept += k;
        const float want = k ? x[i] * scale : 0.0f;
        if (m[i] != (k ? 1.0f : 0.0f) || !same_bits(&y[i], &want, 1))
            print_error("count %zu p %g element %zu: mask %g y %.9g, want %d %.9g\n", count,
                        (double)p, i, (double)m[i], (double)y[i], k, (double)want);
        assert_true(m[i] == (k ? 1.0f : 0.0f));
        assert_memory_equal(&y[i], &want, sizeof want);
    }
    if (count >= ((size_t)1 << 20)) {
        /* Binomial: five standard deviations. */
        const double frac = (double)kept / (double)count;
        const double sd = sqrt((double)p * (1 - (double)p) / (double)count);
        if (!(fabs(frac - (1 - (double)p)) <= 5 * sd))
            print_error("kept %.6f of %zu, want %.6f +- %.6f\n", frac, count, 1 - (double)p,
                        5 * sd);
        assert_true(fabs(frac - (1 - (double)p)) <= 5 * sd);
    }
    /* Backward from the mask and regenerated: both dy * scale where kept, 0 elsewhere. */
    for (int with_mask = 0; with_mask < 2; with_mask++) {
        assert_ok(clcnn_tensor_fill(tdx, NAN));
        assert_ok(clcnn_dropout_backward(test_dev, &dp, with_mask ? tm : NULL, tdy, tdx));
        float *dx = test_download(tdx);
        for (size_t i = 0; i < count; i++) {
            const float want = ref_keep(seed, p, i) ? dy[i] * scale : 0.0f;
            assert_memory_equal(&dx[i], &want, sizeof want);
        }
        free(dx);
    }
    /* In place: y = x and dx = dy give the same bits. */
    assert_ok(clcnn_dropout_forward(test_dev, &dp, tx, tx, NULL));
    float *yi = test_download(tx);
    assert_memory_equal(yi, y, count * sizeof *y);
    free(yi);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tm);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(tdx);
    free(x);
    free(dy);
    free(y);
    free(m);
}

static void test_against_reference(void **state)
{
    (void)state;
    run_case(13, 0.5f, 1);
    run_case(8, 0.25f, 0xfedcba9876543210ull);
    run_case(1003, 0.1f, 42);
    run_case((size_t)1 << 20, 0.3f, 0x123456789abcdefull);
    run_case(333, 0.0f, 7);
}

/* The mask does not depend on the launch: one work-item, odd groups, the default. */
static void test_launch_shapes(void **state)
{
    (void)state;
    const size_t count = 100003;
    const clcnn_shape s = {1, 1, 1, count};
    const clcnn_dropout_params dp = {0.5f, 99};
    float *x = malloc(count * sizeof *x);
    assert_non_null(x);
    test_rng rng;
    test_rng_seed(&rng, 4);
    test_rng_fill(&rng, x, count, -1.0f, 1.0f);
    clcnn_tensor *tx = upload(s, x), *ty = upload(s, NULL), *tm = upload(s, NULL);
    assert_ok(clcnn_dropout_forward(test_dev, &dp, tx, ty, tm));
    float *m0 = test_download(tm), *y0 = test_download(ty);
    static const size_t shapes[][2] = {{1, 1}, {96, 32}, {7, 7}, {4096, 256}, {65536, 64}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        assert_ok(clcnn_tensor_fill(tm, NAN));
        assert_ok(clcnn_tensor_fill(ty, NAN));
        assert_ok(
            clcnn__dropout_forward_shaped(test_dev, &dp, tx, ty, tm, shapes[k][0], shapes[k][1]));
        float *m = test_download(tm), *y = test_download(ty);
        if (!same_bits(m, m0, count))
            print_error("launch %zu/%zu gives another mask\n", shapes[k][0], shapes[k][1]);
        assert_memory_equal(m, m0, count * sizeof *m);
        assert_memory_equal(y, y0, count * sizeof *y);
        free(m);
        free(y);
    }
    /* Another seed, another mask. */
    const clcnn_dropout_params other = {0.5f, 100};
    assert_ok(clcnn_dropout_forward(test_dev, &other, tx, ty, tm));
    float *m1 = test_download(tm);
    assert_false(same_bits(m1, m0, count));
    free(m1);
    assert_status_msg(clcnn__dropout_forward_shaped(test_dev, &dp, tx, ty, tm, 10, 4),
                      CLCNN_STATUS_INVALID_ARG, "global size 10 is not a positive multiple");
    free(m0);
    free(y0);
    free(x);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tm);
}

/* L(x) = sum dy * dropout(x) in double (the mask from the reference) by central differences
 * against the device's dx. */
static void test_finite_differences(void **state)
{
    (void)state;
    const size_t count = 21;
    const clcnn_dropout_params dp = {0.4f, 5};
    float x[21], dy[21];
    test_rng rng;
    test_rng_seed(&rng, 12);
    test_rng_fill(&rng, x, count, -1.0f, 1.0f);
    test_rng_fill(&rng, dy, count, -1.0f, 1.0f);
    clcnn_tensor *tdy = upload((clcnn_shape){1, count, 1, 1}, dy),
                 *tdx = upload((clcnn_shape){1, count, 1, 1}, NULL);
    assert_ok(clcnn_dropout_backward(test_dev, &dp, NULL, tdy, tdx));
    float *dx = test_download(tdx);
    const double scale = 1.0 / (1.0 - 0.4f), h = 1e-3;
    for (size_t i = 0; i < count; i++) {
        double lp = 0, lm = 0;
        for (size_t j = 0; j < count; j++) {
            const double keep = ref_keep(dp.seed, dp.p, j) ? scale : 0.0;
            const double xv = x[j];
            lp += dy[j] * keep * (j == i ? xv + h : xv);
            lm += dy[j] * keep * (j == i ? xv - h : xv);
        }
        const double fd = (lp - lm) / (2 * h);
        /* Linear in x: exact but for double rounding; the device rounds dy * scale once. */
        if (!(fabs(dx[i] - fd) <= 1e-6 * (1 + fabs(fd))))
            print_error("fd element %zu: device %.9g, finite difference %.9g\n", i, (double)dx[i],
                        fd);
        assert_true(fabs(dx[i] - fd) <= 1e-6 * (1 + fabs(fd)));
    }
    free(dx);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(tdx);
}

static void test_refusals(void **state)
{
    (void)state;
    float v[12];
    test_rng rng;
    test_rng_seed(&rng, 2);
    test_rng_fill(&rng, v, 12, -1.0f, 1.0f);
    clcnn_tensor *tx = upload((clcnn_shape){3, 4, 1, 1}, v),
                 *ty = upload((clcnn_shape){3, 4, 1, 1}, NULL),
                 *tm = upload((clcnn_shape){3, 4, 1, 1}, NULL),
                 *bad = upload((clcnn_shape){4, 3, 1, 1}, NULL);
    clcnn_dropout_params dp = {1.0f, 0};
    assert_status_msg(clcnn_dropout_forward(test_dev, &dp, tx, ty, tm), CLCNN_STATUS_INVALID_ARG,
                      "p 1 must be in [0, 1)");
    dp.p = NAN;
    assert_status_msg(clcnn_dropout_forward(test_dev, &dp, tx, ty, tm), CLCNN_STATUS_INVALID_ARG,
                      "must be in [0, 1)");
    dp.p = 0.5f;
    assert_status_msg(clcnn_dropout_forward(test_dev, &dp, tx, bad, tm), CLCNN_STATUS_BAD_SHAPE,
                      "input (3,4,1,1) and output (4,3,1,1) must have one shape");
    assert_status_msg(clcnn_dropout_forward(test_dev, &dp, tx, ty, bad), CLCNN_STATUS_BAD_SHAPE,
                      "input (3,4,1,1) and mask (4,3,1,1)");
    assert_status_msg(clcnn_dropout_forward(test_dev, &dp, tx, ty, ty), CLCNN_STATUS_INVALID_ARG,
                      "mask must not alias");
    assert_status_msg(clcnn_dropout_backward(test_dev, &dp, bad, tx, ty), CLCNN_STATUS_BAD_SHAPE,
                      "output gradient dy (3,4,1,1) and mask (4,3,1,1)");
    assert_status_msg(clcnn_dropout_backward(test_dev, &dp, NULL, tx, bad), CLCNN_STATUS_BAD_SHAPE,
                      "input gradient dx (4,3,1,1)");
    assert_int_equal(clcnn_dropout_forward(test_dev, NULL, tx, ty, NULL), CLCNN_STATUS_INVALID_ARG);
    clcnn_tensor *outs[] = {ty, tm, bad};
    for (size_t k = 0; k < 3; k++) {
        float *o = test_download(outs[k]);
        for (size_t i = 0; i < 12; i++)
            assert_true(isnan(o[i]));
        free(o);
    }
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tm);
    clcnn_tensor_release(bad);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_launch_shapes),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("dropout", tests, test_group_setup, test_group_teardown);
}
