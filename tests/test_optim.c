/* Optimizer updates: SGD (plain, weight decay, momentum with dampening, Nesterov) and Adam
 * (with and without weight decay) over several steps against a float64 reference of each step,
 * states ignored at step 1, bit-identical repeated runs, Adam's first step as lr * sign(g), and
 * the refusals (shapes, missing or extra states, aliasing, bad hyper-parameters). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Unit roundoff of float32 (2^-24, rounded up). Each step is compared with a float64 step from
 * the device's own float32 values before it, so only that step's roundings count: a few per
 * quantity (an fma may merge two), sqrt and division within 3 ulp. Each bound is K * u times
 * the sum of the magnitudes of the terms (see ref_step). */
#define TOL_U 6e-8

static void download_into(const clcnn_tensor *t, float *v)
{
    assert_ok(clcnn_tensor_download(t, v, clcnn_tensor_count(t)));
}

static void check_close(const char *what, const char *name, int step, size_t i, double got,
                        double ref, double bound)
{
    if (!(fabs(got - ref) <= bound))
        print_error("%s %s step %d element %zu: got %.9g, reference %.9g (bound %.3g)\n", what,
                    name, step, i, got, ref, bound);
    assert_true(fabs(got - ref) <= bound);
}

/* One element's step in float64 from float32 p, g, s1, s2 (PyTorch's formulas); writes the new
 * values and their error bounds. */
typedef struct ref_out {
    double p, s1, s2;
    double bp, b1, b2;
} ref_out;

static ref_out ref_step(const clcnn_optim_config *c, uint64_t t, double p, double g, double s1,
                        double s2)
{
    ref_out r = {p, s1, s2, 0, 0, 0};
    const double lr = c->lr, wd = c->weight_decay, u = TOL_U;
    const double d = g + wd * p, md = fabs(g) + wd * fabs(p);
    if (c->kind == CLCNN_OPTIM_SGD && c->momentum == 0.0f) {
        r.p = p - lr * d;
        r.bp = 6 * u * (fabs(p) + lr * md);
    } else if (c->kind == CLCNN_OPTIM_SGD) {
        const double mu = c->momentum, damp = c->dampening;
        r.s1 = t == 1 ? d : mu * s1 + (1 - damp) * d;
        const double mb = t == 1 ? md : mu * fabs(s1) + (1 - damp) * md;
        const double step = c->nesterov ? d + mu * r.s1 : r.s1;
        const double ms = c->nesterov ? md + mu * mb : mb;
        r.p = p - lr * step;
        r.b1 = 8 * u * mb;
        r.bp = 8 * u * (fabs(p) + lr * ms);
    } else {
        const double b1 = c->beta1, b2 = c->beta2;
        const double m0 = t == 1 ? 0 : s1, v0 = t == 1 ? 0 : s2;
        r.s1 = b1 * m0 + (1 - b1) * d;
        r.s2 = b2 * v0 + (1 - b2) * d * d;
        const double mm = b1 * fabs(m0) + (1 - b1) * md;
        const double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
        const double ss = lr / bc1, denom = sqrt(r.s2) / sqrt(bc2) + c->eps;
        r.p = p - ss * (r.s1 / denom);
        r.b1 = 8 * u * mm;
        r.b2 = 8 * u * r.s2;
        /* m's absolute error, then the ratio's relative error (v, sqrt, the corrections). */
        r.bp = 6 * u * fabs(p) + ss * (8 * u * mm + 24 * u * fabs(r.s1)) / denom;
    }
    return r;
}

typedef struct optim_case {
    const char *name;
    clcnn_optim_config cfg;
} optim_case;

static optim_case make_case(const char *name, clcnn_optim_kind kind, float lr, float wd, float mu,
                            float damp, bool nesterov)
{
    optim_case oc = {name, clcnn_optim_config_default(kind)};
    oc.cfg.lr = lr;
    oc.cfg.weight_decay = wd;
    oc.cfg.momentum = mu;
    oc.cfg.dampening = damp;
    oc.cfg.nesterov = nesterov;
    return oc;
}

/* Runs `steps` steps on count elements, comparing every step; returns the final parameter
 * (malloc'd) for the bit-identity check. */
static float *run_case(const optim_case *oc, size_t count, int steps, uint64_t seed)
{
    const clcnn_optim_config *c = &oc->cfg;
    const int states = clcnn_optim_state_count(c);
    const clcnn_shape s = {1, count, 1, 1};
    test_rng rng;
    test_rng_seed(&rng, seed);
    float *p = malloc(count * sizeof *p), *g = malloc(count * sizeof *g);
    float *s1 = calloc(count, sizeof *s1), *s2 = calloc(count, sizeof *s2);
    float *p1 = malloc(count * sizeof *p1), *n1 = malloc(count * sizeof *n1),
          *n2 = malloc(count * sizeof *n2);
    assert_true(p && g && s1 && s2 && p1 && n1 && n2);
    test_rng_fill(&rng, p, count, -1.0f, 1.0f);
    clcnn_tensor *tp = test_upload(s, p), *tg = test_upload(s, NULL);
    clcnn_tensor *ts1 = states >= 1 ? test_upload(s, NULL) : NULL;
    clcnn_tensor *ts2 = states >= 2 ? test_upload(s, NULL) : NULL;
    /* Step 1 must ignore the states. */
    if (ts1 != NULL)
        assert_ok(clcnn_tensor_fill(ts1, NAN));
    if (ts2 != NULL)
        assert_ok(clcnn_tensor_fill(ts2, NAN));
    for (int t = 1; t <= steps; t++) {
        test_rng_fill(&rng, g, count, -1.0f, 1.0f);
        assert_ok(clcnn_tensor_upload(tg, g, count));
        download_into(tp, p);
        if (ts1 != NULL)
            download_into(ts1, s1);
        if (ts2 != NULL)
            download_into(ts2, s2);
        assert_ok(clcnn_optim_step(test_dev, c, tp, tg, ts1, ts2, (uint64_t)t));
        download_into(tp, p1);
        if (ts1 != NULL)
            download_into(ts1, n1);
        if (ts2 != NULL)
            download_into(ts2, n2);
        for (size_t i = 0; i < count; i++) {
            ref_out r = ref_step(c, (uint64_t)t, p[i], g[i], states >= 1 ? s1[i] : 0,
                                 states >= 2 ? s2[i] : 0);
            check_close("param", oc->name, t, i, p1[i], r.p, r.bp);
            if (ts1 != NULL)
                check_close("state1", oc->name, t, i, n1[i], r.s1, r.b1);
            if (ts2 != NULL)
                check_close("state2", oc->name, t, i, n2[i], r.s2, r.b2);
        }
    }
    clcnn_tensor_release(tp);
    clcnn_tensor_release(tg);
    clcnn_tensor_release(ts1);
    clcnn_tensor_release(ts2);
    free(p);
    free(g);
    free(s1);
    free(s2);
    free(n1);
    free(n2);
    return p1;
}

static void test_against_reference(void **state)
{
    (void)state;
    const optim_case cases[] = {
        make_case("sgd", CLCNN_OPTIM_SGD, 0.1f, 0.0f, 0.0f, 0.0f, false),
        make_case("sgd wd", CLCNN_OPTIM_SGD, 0.05f, 0.01f, 0.0f, 0.0f, false),
        make_case("momentum", CLCNN_OPTIM_SGD, 0.1f, 0.0f, 0.9f, 0.0f, false),
        make_case("momentum dampening wd", CLCNN_OPTIM_SGD, 0.1f, 0.02f, 0.8f, 0.25f, false),
        make_case("nesterov wd", CLCNN_OPTIM_SGD, 0.1f, 0.01f, 0.9f, 0.0f, true),
        make_case("adam", CLCNN_OPTIM_ADAM, 0.01f, 0.0f, 0.0f, 0.0f, false),
        make_case("adam wd", CLCNN_OPTIM_ADAM, 0.003f, 0.05f, 0.0f, 0.0f, false),
    };
    /* 1035 elements: vectors and a tail; 5: the tail only; 4096: vectors only. */
    const size_t counts[] = {1035, 5, 4096};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t k = 0; k < 3; k++) {
            float *a = run_case(&cases[i], counts[k], 5, 300 + i);
            float *b = run_case(&cases[i], counts[k], 5, 300 + i);
            if (memcmp(a, b, counts[k] * sizeof *a) != 0)
                print_error("%s: two runs differ\n", cases[i].name);
            assert_memory_equal(a, b, counts[k] * sizeof *a);
            free(a);
            free(b);
        }
}

/* Adam's first step moves each parameter by lr * g / (|g| + eps): lr * sign(g) here. */
static void test_adam_first_step(void **state)
{
    (void)state;
    const float p[10] = {1, -1, 0.5f, 2, 3, -4, 0.25f, 7, 8, -9};
    const float g[10] = {0.3f, -2, 1e-2f, 5, -0.7f, 0.01f, -1, 1, 2, -3};
    clcnn_optim_config c = clcnn_optim_config_default(CLCNN_OPTIM_ADAM);
    c.lr = 0.1f;
    const clcnn_shape s = {10, 1, 1, 1};
    clcnn_tensor *tp = test_upload(s, p), *tg = test_upload(s, g), *tm = test_upload(s, NULL),
                 *tv = test_upload(s, NULL);
    assert_ok(clcnn_optim_step(test_dev, &c, tp, tg, tm, tv, 1));
    float out[10];
    download_into(tp, out);
    for (size_t i = 0; i < 10; i++)
        check_close("adam first step", "sign", 1, i, out[i], p[i] - (g[i] > 0 ? 0.1 : -0.1), 1e-6);
    clcnn_tensor_release(tp);
    clcnn_tensor_release(tg);
    clcnn_tensor_release(tm);
    clcnn_tensor_release(tv);
}

static void test_names_and_defaults(void **state)
{
    (void)state;
    clcnn_optim_config c = clcnn_optim_config_default(CLCNN_OPTIM_ADAM);
    assert_true(c.lr == 1e-3f && c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f);
    assert_true(c.weight_decay == 0.0f && c.momentum == 0.0f && !c.nesterov);
    assert_int_equal(clcnn_optim_state_count(&c), 2);
    c = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    assert_int_equal(clcnn_optim_state_count(&c), 0);
    c.momentum = 0.9f;
    assert_int_equal(clcnn_optim_state_count(&c), 1);
    assert_int_equal(clcnn_optim_state_count(NULL), -1);
    for (int k = 0; k < CLCNN_OPTIM_KIND_COUNT; k++) {
        clcnn_optim_kind parsed;
        assert_ok(clcnn_optim_kind_parse(clcnn_optim_kind_name((clcnn_optim_kind)k), &parsed));
        assert_int_equal(parsed, k);
    }
    clcnn_optim_kind kind = CLCNN_OPTIM_SGD;
    assert_status_msg(clcnn_optim_kind_parse("rmsprop", &kind), CLCNN_STATUS_INVALID_ARG,
                      "unknown kind 'rmsprop' (known: sgd, adam)");
    assert_int_equal(kind, CLCNN_OPTIM_SGD);
    assert_null(clcnn_optim_kind_name(CLCNN_OPTIM_KIND_COUNT));
}

static void test_refusals(void **state)
{
    (void)state;
    float v[12];
    test_rng rng;
    test_rng_seed(&rng, 8);
    test_rng_fill(&rng, v, 12, -1.0f, 1.0f);
    const clcnn_shape s = {3, 4, 1, 1};
    clcnn_tensor *tp = test_upload(s, v), *tg = test_upload(s, v), *ts1 = test_upload(s, v),
                 *ts2 = test_upload(s, v);
    clcnn_tensor *gbad = test_upload((clcnn_shape){4, 3, 1, 1}, v);
    clcnn_optim_config sgd = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    clcnn_optim_config mom = sgd, adam = clcnn_optim_config_default(CLCNN_OPTIM_ADAM);
    mom.momentum = 0.9f;
    assert_status_msg(clcnn_optim_step(test_dev, &sgd, tp, gbad, NULL, NULL, 1),
                      CLCNN_STATUS_BAD_SHAPE,
                      "gradient is (4,3,1,1) but the parameter is (3,4,1,1)");
    assert_status_msg(clcnn_optim_step(test_dev, &mom, tp, tg, NULL, NULL, 1),
                      CLCNN_STATUS_INVALID_ARG, "needs 1 state tensor; state1 is NULL");
    assert_status_msg(clcnn_optim_step(test_dev, &sgd, tp, tg, ts1, NULL, 1),
                      CLCNN_STATUS_INVALID_ARG, "sgd takes 0 state tensors; state1 must be NULL");
    assert_status_msg(clcnn_optim_step(test_dev, &adam, tp, tg, ts1, NULL, 1),
                      CLCNN_STATUS_INVALID_ARG, "needs 2 state tensors; state2 is NULL");
    assert_status_msg(clcnn_optim_step(test_dev, &adam, tp, tg, ts1, gbad, 1),
                      CLCNN_STATUS_BAD_SHAPE, "state2 is (4,3,1,1)");
    assert_status_msg(clcnn_optim_step(test_dev, &adam, tp, tg, ts1, ts1, 1),
                      CLCNN_STATUS_INVALID_ARG, "must be distinct");
    assert_status_msg(clcnn_optim_step(test_dev, &sgd, tp, tp, NULL, NULL, 1),
                      CLCNN_STATUS_INVALID_ARG, "must be distinct");
    assert_status_msg(clcnn_optim_step(test_dev, &sgd, tp, tg, NULL, NULL, 0),
                      CLCNN_STATUS_INVALID_ARG, "step 0");
    clcnn_optim_config bad = sgd;
    bad.lr = -1.0f;
    assert_status_msg(clcnn_optim_step(test_dev, &bad, tp, tg, NULL, NULL, 1),
                      CLCNN_STATUS_INVALID_ARG, "lr -1 must be in [0, inf)");
    bad = mom;
    bad.nesterov = true;
    bad.dampening = 0.1f;
    assert_status_msg(clcnn_optim_step(test_dev, &bad, tp, tg, ts1, NULL, 1),
                      CLCNN_STATUS_INVALID_ARG, "Nesterov needs momentum > 0 and dampening 0");
    bad = adam;
    bad.beta2 = 1.0f;
    assert_status_msg(clcnn_optim_step(test_dev, &bad, tp, tg, ts1, ts2, 1),
                      CLCNN_STATUS_INVALID_ARG, "beta2 1 must be in [0, 1)");
    bad = adam;
    bad.weight_decay = NAN;
    assert_status_msg(clcnn_optim_step(test_dev, &bad, tp, tg, ts1, ts2, 1),
                      CLCNN_STATUS_INVALID_ARG, "weight_decay nan");
    assert_int_equal(clcnn_optim_step(test_dev, NULL, tp, tg, NULL, NULL, 1),
                     CLCNN_STATUS_INVALID_ARG);
    /* Nothing was written. */
    float out[12];
    download_into(tp, out);
    assert_memory_equal(out, v, sizeof v);
    download_into(ts1, out);
    assert_memory_equal(out, v, sizeof v);
    clcnn_tensor_release(tp);
    clcnn_tensor_release(tg);
    clcnn_tensor_release(ts1);
    clcnn_tensor_release(ts2);
    clcnn_tensor_release(gbad);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_adam_first_step),
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("optim", tests, test_group_setup, test_group_teardown);
}
