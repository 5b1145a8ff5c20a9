/* Softmax cross-entropy and softmax: forward loss (device scalar and host float), the gradient
 * (also in place) and plain softmax against a float64 reference on random shapes (vector tails,
 * flattened logits, large logits that overflow a naive exp), gradients by central finite
 * differences in double, bit-identical repeated runs, and the refusals (labels out of range,
 * mismatched shapes; outputs left untouched). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Unit roundoff of float32 (2^-24, rounded up). OpenCL's exp and log are within 3 ulp. A row of
 * K classes sums K exponentials whose arguments x - m carry an absolute error up to u times the
 * row's range R = max - min, so a probability is within about (K + 16) * u * (1 + R) relative;
 * the loss (a mean of N rows) adds N * u. The tests allow those bounds. */
#define TOL_U 1.2e-7

static void check_close(const char *what, const char *name, size_t i, double got, double ref,
                        double bound)
{
    if (!(fabs(got - ref) <= bound))
        print_error("%s %s element %zu: got %.9g, reference %.9g (bound %.3g)\n", what, name, i,
                    got, ref, bound);
    assert_true(fabs(got - ref) <= bound);
}

/* ------------------------------------------------------------------------------------------ */
/* The float64 reference                                                                      */

/* Softmax of each row into p (may be NULL); returns the mean cross-entropy. */
static double ref_xent(size_t n, size_t k, const double *x, const int32_t *labels, double *p)
{
    double total = 0;
    for (size_t r = 0; r < n; r++) {
        const double *xr = x + r * k;
        double m = xr[0], s = 0;
        for (size_t j = 1; j < k; j++)
            m = xr[j] > m ? xr[j] : m;
        for (size_t j = 0; j < k; j++)
            s += exp(xr[j] - m);
        if (p != NULL)
            for (size_t j = 0; j < k; j++)
                p[r * k + j] = exp(xr[j] - m) / s;
        total += log(s) + m - xr[labels[r]];
    }
    return total / (double)n;
}

/* ------------------------------------------------------------------------------------------ */
/* The sweep                                                                                  */

typedef struct loss_case {
    const char *name;
    size_t n, c, h, w;
    float scale;  /* logits uniform in [-scale, scale) */
    float offset; /* added to every other row: tests the log-sum-exp */
} loss_case;

static const loss_case cases[] = {
    {"4x5", 4, 5, 1, 1, 3.0f, 0.0f},
    {"3x10", 3, 10, 1, 1, 2.0f, 0.0f},
    {"7x17", 7, 17, 1, 1, 4.0f, 0.0f},
    {"2x(3x2x2)", 2, 3, 2, 2, 1.0f, 0.0f},
    {"1 class", 3, 1, 1, 1, 1.0f, 0.0f},
    {"64x1000", 64, 1000, 1, 1, 5.0f, 0.0f},
    {"large logits", 5, 9, 1, 1, 40.0f, 1000.0f},
};

static void run_case(const loss_case *lc, uint64_t seed)
{
    const size_t n = lc->n, k = lc->c * lc->h * lc->w, cnt = n * k;
    const clcnn_shape xs = {n, lc->c, lc->h, lc->w};
    test_rng rng;
    test_rng_seed(&rng, seed);
    /* Never taken (every case has rows and classes); it tells the analyzer so. */
    if (n == 0 || k == 0 || cnt == 0) {
        fail();
        return;
    }
    /* calloc: the static analyzer cannot see that the fills below cover every element. */
    float *x = calloc(cnt, sizeof *x);
    double *xd = calloc(cnt, sizeof *xd), *p = calloc(cnt, sizeof *p);
    int32_t *labels = calloc(n, sizeof *labels);
    assert_true(x && xd && p && labels);
    test_rng_fill(&rng, x, cnt, -lc->scale, lc->scale);
    for (size_t i = 0; i < cnt; i++) {
        if ((i / k) % 2 == 1)
            x[i] += lc->offset;
        xd[i] = x[i];
    }
    /* The widest row's range (see TOL_U). */
    double xmax = 0;
    for (size_t r = 0; r < n; r++) {
        double lo = xd[r * k], hi = xd[r * k];
        for (size_t j = 1; j < k; j++) {
            lo = xd[r * k + j] < lo ? xd[r * k + j] : lo;
            hi = xd[r * k + j] > hi ? xd[r * k + j] : hi;
        }
        xmax = hi - lo > xmax ? hi - lo : xmax;
    }
    for (size_t r = 0; r < n; r++)
        labels[r] = (int32_t)(test_rng_next(&rng) % k);
    const double loss_ref = ref_xent(n, k, xd, labels, p);

    clcnn_tensor *tx = test_upload(xs, x), *tl = test_upload((clcnn_shape){1, 1, 1, 1}, NULL),
                 *tg = test_upload(xs, NULL), *tp = test_upload(xs, NULL);
    /* Forward: host only, device only, both; all the same bits. */
    float host[3] = {NAN, NAN, NAN}, dev_loss = NAN;
    assert_ok(clcnn_softmax_xent_forward(test_dev, tx, labels, n, NULL, &host[0]));
    assert_ok(clcnn_tensor_fill(tl, NAN));
    assert_ok(clcnn_softmax_xent_forward(test_dev, tx, labels, n, tl, NULL));
    assert_ok(clcnn_tensor_download(tl, &dev_loss, 1));
    assert_ok(clcnn_tensor_fill(tl, NAN));
    assert_ok(clcnn_softmax_xent_forward(test_dev, tx, labels, n, tl, &host[1]));
    assert_ok(clcnn_softmax_xent_forward(test_dev, tx, labels, n, NULL, &host[2]));
    check_close("loss", lc->name, 0, host[0], loss_ref,
                TOL_U * (double)(k + n + 16) * (1.0 + xmax));
    assert_memory_equal(&host[0], &host[1], sizeof(float));
    assert_memory_equal(&host[0], &host[2], sizeof(float));
    assert_memory_equal(&host[0], &dev_loss, sizeof(float));

    /* Backward twice (same bits), then in place; softmax. */
    float *first = NULL;
    for (int run = 0; run < 3; run++) {
        clcnn_tensor *out = run == 2 ? tx : tg;
        if (run < 2)
            assert_ok(clcnn_tensor_fill(tg, NAN));
        assert_ok(clcnn_softmax_xent_backward(test_dev, tx, labels, n, out));
        float *g = test_download(out);
        for (size_t i = 0; i < cnt; i++) {
            const double oh = (int32_t)(i % k) == labels[i / k] ? 1.0 : 0.0;
            const double ref = (p[i] - oh) / (double)n;
            check_close(run == 2 ? "gradient (in place)" : "gradient", lc->name, i, g[i], ref,
                        TOL_U * ((double)(k + 16) * (1.0 + xmax) * p[i] + 2 * fabs(p[i] - oh)) /
                            (double)n);
        }
        if (run == 0) {
            first = g;
        } else {
            assert_memory_equal(first, g, cnt * sizeof *g);
            free(g);
        }
    }
    free(first);
    assert_ok(clcnn_tensor_upload(tx, x, cnt));
    for (int in_place = 0; in_place < 2; in_place++) {
        clcnn_tensor *out = in_place ? tx : tp;
        assert_ok(clcnn_tensor_fill(tp, NAN));
        assert_ok(clcnn_softmax_forward(test_dev, tx, out));
        float *y = test_download(out);
        for (size_t i = 0; i < cnt; i++)
            check_close(in_place ? "softmax (in place)" : "softmax", lc->name, i, y[i], p[i],
                        TOL_U * (double)(k + 16) * (1.0 + xmax) * p[i]);
        free(y);
    }
    clcnn_tensor_release(tx);
    clcnn_tensor_release(tl);
    clcnn_tensor_release(tg);
    clcnn_tensor_release(tp);
    free(x);
    free(xd);
    free(p);
    free(labels);
}

static void test_sweep(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], 60 + i);
}

/* Central differences of the float64 loss in every logit against the device's gradient. */
static void test_finite_differences(void **state)
{
    (void)state;
    const size_t n = 4, k = 11, cnt = n * k;
    test_rng rng;
    test_rng_seed(&rng, 90);
    float x[44];
    double xd[44];
    int32_t labels[4] = {3, 0, 10, 7};
    test_rng_fill(&rng, x, cnt, -2.0f, 2.0f);
    for (size_t i = 0; i < cnt; i++)
        xd[i] = x[i];
    clcnn_tensor *tx = test_upload((clcnn_shape){n, k, 1, 1}, x),
                 *tg = test_upload((clcnn_shape){n, k, 1, 1}, NULL);
    assert_ok(clcnn_tensor_fill(tg, NAN));
    assert_ok(clcnn_softmax_xent_backward(test_dev, tx, labels, n, tg));
    float *g = test_download(tg);
    const double h = 1e-4;
    for (size_t i = 0; i < cnt; i++) {
        const double save = xd[i];
        xd[i] = save + h;
        const double lp = ref_xent(n, k, xd, labels, NULL);
        xd[i] = save - h;
        const double lm = ref_xent(n, k, xd, labels, NULL);
        xd[i] = save;
        const double fd = (lp - lm) / (2 * h);
        /* Truncation O(h^2) ~ 1e-9, double rounding ~ 1e-12; the device is within ~1e-7. */
        check_close("finite difference", "4x11", i, g[i], fd, 1e-6);
    }
    free(g);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(tg);
}

static void assert_all_nan(const clcnn_tensor *t)
{
    float *v = test_download(t);
    for (size_t i = 0; i < clcnn_tensor_count(t); i++)
        assert_true(isnan(v[i]));
    free(v);
}

static void test_refusals(void **state)
{
    (void)state;
    float x[20];
    test_rng rng;
    test_rng_seed(&rng, 5);
    test_rng_fill(&rng, x, 20, -1.0f, 1.0f);
    clcnn_tensor *tx = test_upload((clcnn_shape){4, 5, 1, 1}, x),
                 *tl = test_upload((clcnn_shape){1, 1, 1, 1}, NULL),
                 *tl2 = test_upload((clcnn_shape){2, 1, 1, 1}, NULL),
                 *tg = test_upload((clcnn_shape){4, 5, 1, 1}, NULL),
                 *gbad = test_upload((clcnn_shape){4, 1, 5, 1}, NULL);
    clcnn_tensor *outs[] = {tl, tl2, tg, gbad};
    for (size_t i = 0; i < 4; i++)
        assert_ok(clcnn_tensor_fill(outs[i], NAN));
    const int32_t good[4] = {0, 4, 2, 1}, high[4] = {0, 4, 5, 1}, neg[4] = {0, -1, 2, 1};
    float host = 42.0f;
    assert_status_msg(clcnn_softmax_xent_forward(test_dev, tx, high, 4, tl, &host),
                      CLCNN_STATUS_INVALID_ARG, "labels[2] = 5 is outside the classes [0, 5)");
    assert_status_msg(clcnn_softmax_xent_forward(test_dev, tx, neg, 4, tl, &host),
                      CLCNN_STATUS_INVALID_ARG, "labels[1] = -1 is outside the classes [0, 5)");
    assert_status_msg(clcnn_softmax_xent_forward(test_dev, tx, good, 3, tl, &host),
                      CLCNN_STATUS_INVALID_ARG, "3 labels for a batch of 4 rows");
    assert_status_msg(clcnn_softmax_xent_forward(test_dev, tx, good, 4, tl2, &host),
                      CLCNN_STATUS_BAD_SHAPE, "loss is (2,1,1,1) but must hold one element");
    assert_status_msg(clcnn_softmax_xent_forward(test_dev, tx, good, 4, NULL, NULL),
                      CLCNN_STATUS_INVALID_ARG, "no output");
    assert_status_msg(clcnn_softmax_xent_forward(test_dev, tx, NULL, 4, tl, &host),
                      CLCNN_STATUS_INVALID_ARG, "NULL labels");
    assert_true(host == 42.0f);
    assert_status_msg(clcnn_softmax_xent_backward(test_dev, tx, high, 4, tg),
                      CLCNN_STATUS_INVALID_ARG, "labels[2] = 5 is outside");
    assert_status_msg(clcnn_softmax_xent_backward(test_dev, tx, good, 4, gbad),
                      CLCNN_STATUS_BAD_SHAPE,
                      "logits (4,5,1,1) and logits gradient (4,1,5,1) must have one shape");
    assert_status_msg(clcnn_softmax_forward(test_dev, tx, gbad), CLCNN_STATUS_BAD_SHAPE,
                      "input (4,5,1,1) and output (4,1,5,1) must have one shape");
    assert_int_equal(clcnn_softmax_forward(test_dev, NULL, tg), CLCNN_STATUS_INVALID_ARG);
    for (size_t i = 0; i < 4; i++)
        assert_all_nan(outs[i]);
    clcnn_tensor_release(tx);
    for (size_t i = 0; i < 4; i++)
        clcnn_tensor_release(outs[i]);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("loss", tests, test_group_setup, test_group_teardown);
}
