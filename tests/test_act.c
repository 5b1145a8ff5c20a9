/* Activations: every kind forward and backward against a float64 reference on sizes around the
 * vector width (the scalar tail), gradients by central finite differences in double, in-place
 * runs equal to out-of-place ones bit for bit, and the refusals (outputs left untouched). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* OpenCL's full profile allows exp, expm1 and tanh a few ulp (3 to 5) and divisions 2.5 ulp:
 * forward outputs may be off by FWD_REL relative (~16 ulp of float32). The backward works
 * from the device's float y, whose rounding (~1e-7 relative) 1 - y or y + alpha can turn into
 * an absolute error of a few 1e-7 times |dy| (1 + alpha): BWD_ABS covers that. */
#define FWD_REL 1e-6
#define BWD_ABS 1e-6

static double ref_f(clcnn_act_kind k, double a, double x)
{
    switch (k) {
    case CLCNN_ACT_RELU:
        return x > 0 ? x : 0;
    case CLCNN_ACT_LEAKY_RELU:
        return x > 0 ? x : a * x;
    case CLCNN_ACT_ELU:
        return x > 0 ? x : a * expm1(x);
    case CLCNN_ACT_SIGMOID:
        return 1 / (1 + exp(-x));
    case CLCNN_ACT_TANH:
        return tanh(x);
    default:
        fail();
        return 0;
    }
}

/* d f / d x, the negative side's at 0. */
static double ref_df(clcnn_act_kind k, double a, double x)
{
    double s;
    switch (k) {
    case CLCNN_ACT_RELU:
        return x > 0 ? 1 : 0;
    case CLCNN_ACT_LEAKY_RELU:
        return x > 0 ? 1 : a;
    case CLCNN_ACT_ELU:
        return x > 0 ? 1 : a * exp(x);
    case CLCNN_ACT_SIGMOID:
        s = 1 / (1 + exp(-x));
        return s * (1 - s);
    case CLCNN_ACT_TANH:
        s = tanh(x);
        return 1 - s * s;
    default:
        fail();
        return 0;
    }
}

/* Random values in [-4, 4) at least 0.01 from 0, so finite differences never cross a kink. */
static void fill_away_from_zero(test_rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v;
        do {
            v = (float)test_rng_uniform(rng, -4.0, 4.0);
        } while (fabsf(v) < 0.01f);
        x[i] = v;
    }
}

static const float alphas[] = {0.01f, 0.3f, 1.5f};

/* One kind on one shape: forward out of place and in place, backward out of place and in
 * place, each against the reference; in-place results equal out-of-place ones bit for bit;
 * the backward's gradient also against central differences of the float64 forward. */
static void check_kind(clcnn_shape s, clcnn_act_params p, uint64_t seed)
{
    const char *kn = clcnn_act_kind_name(p.kind);
    size_t n = s.n * s.c * s.h * s.w;
    float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
    assert_true(x && dy);
    test_rng rng;
    test_rng_seed(&rng, seed);
    fill_away_from_zero(&rng, x, n);
    test_rng_fill(&rng, dy, n, -1.0f, 1.0f);
    clcnn_tensor *tx = test_upload(s, x), *ty = test_upload(s, NULL), *tdy = test_upload(s, dy),
                 *tdx = test_upload(s, NULL);
    assert_ok(clcnn_tensor_fill(ty, NAN));
    assert_ok(clcnn_act_forward(test_dev, &p, tx, ty));
    float *y = test_download(ty);
    for (size_t i = 0; i < n; i++) {
        double ref = ref_f(p.kind, p.alpha, x[i]);
        double bound = FWD_REL * fabs(ref);
        if (!(fabs(y[i] - ref) <= bound))
            print_error("%s alpha %g n=%zu x[%zu] = %.9g: y %.9g, reference %.9g\n", kn,
                        (double)p.alpha, n, i, (double)x[i], (double)y[i], ref);
        assert_true(fabs(y[i] - ref) <= bound);
    }
    assert_ok(clcnn_tensor_fill(tdx, NAN));
    assert_ok(clcnn_act_backward(test_dev, &p, ty, tdy, tdx));
    float *dx = test_download(tdx);
    const double h = 1e-4;
    for (size_t i = 0; i < n; i++) {
        double ref = dy[i] * ref_df(p.kind, p.alpha, x[i]);
        double bound = BWD_ABS * fabs(dy[i]) * (1 + p.alpha) + FWD_REL * fabs(ref);
        if (!(fabs(dx[i] - ref) <= bound))
            print_error("%s alpha %g n=%zu x[%zu] = %.9g: dx %.9g, reference %.9g\n", kn,
                        (double)p.alpha, n, i, (double)x[i], (double)dx[i], ref);
        assert_true(fabs(dx[i] - ref) <= bound);
        double fd =
            dy[i] * (ref_f(p.kind, p.alpha, x[i] + h) - ref_f(p.kind, p.alpha, x[i] - h)) / (2 * h);
        /* O(h^2) truncation (|f'''| <= 1 here) on top of the bound above. */
        assert_true(fabs(dx[i] - fd) <= bound + 1e-7);
    }
    /* In place: y = act(y) from a copy of x, dx = dy in the dy tensor. */
    clcnn_tensor *inplace = test_upload(s, x);
    assert_ok(clcnn_act_forward(test_dev, &p, inplace, inplace));
    float *y2 = test_download(inplace);
    assert_memory_equal(y, y2, n * sizeof *y);
    assert_ok(clcnn_act_backward(test_dev, &p, ty, tdy, tdy));
    float *dx2 = test_download(tdy);
    assert_memory_equal(dx, dx2, n * sizeof *dx);
    /* And dx in y's tensor (y is read before it is overwritten). */
    assert_ok(clcnn_tensor_upload(tdy, dy, n));
    assert_ok(clcnn_act_backward(test_dev, &p, inplace, tdy, inplace));
    float *dx3 = test_download(inplace);
    assert_memory_equal(dx, dx3, n * sizeof *dx);
    free(x);
    free(dy);
    free(y);
    free(y2);
    free(dx);
    free(dx2);
    free(dx3);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(tdx);
    clcnn_tensor_release(inplace);
}

static void test_sweep(void **state)
{
    (void)state;
    static const clcnn_shape shapes[] = {
        {1, 1, 1, 1},  {1, 1, 1, 7},    {1, 1, 1, 8},  {1, 1, 1, 9},    {1, 1, 3, 21},
        {1, 1, 8, 64}, {1, 1, 1, 4099}, {3, 5, 7, 11}, {2, 64, 17, 19},
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int k = 0; k < CLCNN_ACT_KIND_COUNT; k++) {
            clcnn_act_params p = clcnn_act_params_default((clcnn_act_kind)k);
            check_kind(shapes[si], p, 10 * si + (size_t)k);
            if (k == CLCNN_ACT_LEAKY_RELU || k == CLCNN_ACT_ELU)
                for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
                    p.alpha = alphas[a];
                    check_kind(shapes[si], p, 1000 + 10 * si + a);
                }
        }
}

static void test_names_and_defaults(void **state)
{
    (void)state;
    assert_true(clcnn_act_params_default(CLCNN_ACT_LEAKY_RELU).alpha == 0.01f);
    assert_true(clcnn_act_params_default(CLCNN_ACT_ELU).alpha == 1.0f);
    assert_int_equal(clcnn_act_params_default(CLCNN_ACT_TANH).kind, CLCNN_ACT_TANH);
    for (int k = 0; k < CLCNN_ACT_KIND_COUNT; k++) {
        clcnn_act_kind parsed;
        const char *name = clcnn_act_kind_name((clcnn_act_kind)k);
        assert_non_null(name);
        assert_ok(clcnn_act_kind_parse(name, &parsed));
        assert_int_equal(parsed, k);
    }
    assert_string_equal(clcnn_act_kind_name(CLCNN_ACT_LEAKY_RELU), "leaky-relu");
    assert_null(clcnn_act_kind_name(CLCNN_ACT_KIND_COUNT));
    clcnn_act_kind kind = CLCNN_ACT_TANH;
    assert_status_msg(clcnn_act_kind_parse("gelu", &kind), CLCNN_STATUS_INVALID_ARG, "'gelu'");
    assert_int_equal(kind, CLCNN_ACT_TANH);
}

static void test_refusals(void **state)
{
    (void)state;
    const clcnn_shape s = {2, 3, 4, 5}, t = {2, 3, 5, 4};
    float x[120];
    test_rng rng;
    test_rng_seed(&rng, 3);
    test_rng_fill(&rng, x, 120, -1.0f, 1.0f);
    clcnn_tensor *tx = test_upload(s, x), *ty = test_upload(s, NULL), *tw = test_upload(t, NULL);
    assert_ok(clcnn_tensor_fill(ty, NAN));
    assert_ok(clcnn_tensor_fill(tw, NAN));
    clcnn_act_params p = clcnn_act_params_default(CLCNN_ACT_RELU);
    assert_status_msg(clcnn_act_forward(test_dev, &p, tx, tw), CLCNN_STATUS_BAD_SHAPE,
                      "input (2,3,4,5) and output (2,3,5,4) must have one shape");
    assert_status_msg(clcnn_act_backward(test_dev, &p, tx, tw, ty), CLCNN_STATUS_BAD_SHAPE,
                      "output y (2,3,4,5) and output gradient dy (2,3,5,4)");
    assert_status_msg(clcnn_act_backward(test_dev, &p, tx, tx, tw), CLCNN_STATUS_BAD_SHAPE,
                      "input gradient dx (2,3,5,4)");
    clcnn_act_params bad = clcnn_act_params_default(CLCNN_ACT_LEAKY_RELU);
    bad.alpha = -0.5f;
    assert_status_msg(clcnn_act_forward(test_dev, &bad, tx, ty), CLCNN_STATUS_INVALID_ARG,
                      "alpha -0.5 must be finite and >= 0");
    bad.alpha = NAN;
    assert_int_equal(clcnn_act_backward(test_dev, &bad, tx, tx, ty), CLCNN_STATUS_INVALID_ARG);
    bad.kind = (clcnn_act_kind)17;
    bad.alpha = 0;
    assert_status_msg(clcnn_act_forward(test_dev, &bad, tx, ty), CLCNN_STATUS_INVALID_ARG,
                      "unknown kind 17");
    assert_int_equal(clcnn_act_forward(NULL, &p, tx, ty), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_act_forward(test_dev, NULL, tx, ty), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_act_forward(test_dev, &p, NULL, ty), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_act_backward(test_dev, &p, tx, NULL, ty), CLCNN_STATUS_INVALID_ARG);
    clcnn_tensor *untouched[] = {ty, tw};
    for (size_t i = 0; i < 2; i++) {
        float *v = test_download(untouched[i]);
        for (size_t j = 0; j < clcnn_tensor_count(untouched[i]); j++)
            assert_true(isnan(v[j]));
        free(v);
    }
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tw);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests_name("act", tests, test_group_setup, test_group_teardown);
}
