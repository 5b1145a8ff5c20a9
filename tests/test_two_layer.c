/* A tiny network, fc(16->12) -> relu -> fc(12->5) -> softmax cross-entropy on a batch of 4:
 * two training iterations (forward, backward, SGD with momentum and weight decay) on the device
 * against the same iterations in float64 written here, and bit-identical repeated runs. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 4
#define IN 16
#define HID 12
#define OUT 5
#define ITERS 2

/* Tolerance: every value is a sum of at most 16 float32 terms of magnitude below ~4, each
 * rounded a handful of times, and the float64 reference is never resynchronized, so errors
 * carry from the forward into the gradients and from step 1 into step 2. The first-order bound
 * is about (16 + 16) * 2^-24 * 4 * (1 + |ref|) ~ 1e-5 (1 + |ref|); the test allows twice that. */
#define TOL 2e-5

/* The parameters in float64 (reference) or as the float32 start values. */
typedef struct params {
    double w1[HID * IN], b1[HID], w2[OUT * HID], b2[OUT];
} params;

static const double LR = 0.1, MOMENTUM = 0.9, WD = 1e-3;

/* One reference iteration: forward, loss, gradients, SGD with momentum (PyTorch's rule, t = it +
 * 1). Returns the loss; fills grads (before the step). */
static double ref_iteration(params *p, params *vel, params *grads, const double *x,
                            const int32_t *labels, int it)
{
    double h[N * HID], a[N * HID], z[N * OUT], dz[N * OUT], da[N * HID];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < HID; o++) {
            double s = p->b1[o];
            for (int i = 0; i < IN; i++)
                s += x[n * IN + i] * p->w1[o * IN + i];
            h[n * HID + o] = s;
            /* A pre-activation this close to the kink would make float32 and float64 disagree
             * on its side; the seed avoids it. */
            assert_true(fabs(s) > 1e-3);
            a[n * HID + o] = s > 0 ? s : 0;
        }
    double loss = 0;
    for (int n = 0; n < N; n++) {
        double m = -INFINITY, sum = 0;
        for (int o = 0; o < OUT; o++) {
            double s = p->b2[o];
            for (int i = 0; i < HID; i++)
                s += a[n * HID + i] * p->w2[o * HID + i];
            z[n * OUT + o] = s;
            m = s > m ? s : m;
        }
        for (int o = 0; o < OUT; o++)
            sum += exp(z[n * OUT + o] - m);
        loss += log(sum) + m - z[n * OUT + labels[n]];
        for (int o = 0; o < OUT; o++)
            dz[n * OUT + o] = (exp(z[n * OUT + o] - m) / sum - (o == labels[n] ? 1 : 0)) / N;
    }
    memset(grads, 0, sizeof *grads);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            grads->b2[o] += dz[n * OUT + o];
            for (int i = 0; i < HID; i++)
                grads->w2[o * HID + i] += dz[n * OUT + o] * a[n * HID + i];
        }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HID; i++) {
            double s = 0;
            for (int o = 0; o < OUT; o++)
                s += dz[n * OUT + o] * p->w2[o * HID + i];
            da[n * HID + i] = h[n * HID + i] > 0 ? s : 0;
        }
    for (int n = 0; n < N; n++)
        for (int o = 0; o < HID; o++) {
            grads->b1[o] += da[n * HID + o];
            for (int i = 0; i < IN; i++)
                grads->w1[o * IN + i] += da[n * HID + o] * x[n * IN + i];
        }
    double *pv = (double *)p, *vv = (double *)vel, *gv = (double *)grads;
    for (size_t i = 0; i < sizeof(params) / sizeof(double); i++) {
        const double d = gv[i] + WD * pv[i];
        vv[i] = it == 0 ? d : MOMENTUM * vv[i] + d;
        pv[i] -= LR * vv[i];
    }
    return loss / N;
}

static void check_close(const char *what, int it, size_t i, double got, double ref)
{
    const double bound = TOL * (1.0 + fabs(ref));
    if (!(fabs(got - ref) <= bound))
        print_error("%s iteration %d element %zu: got %.9g, reference %.9g (bound %.3g)\n", what,
                    it, i, got, ref, bound);
    assert_true(fabs(got - ref) <= bound);
}

static clcnn_tensor *make(clcnn_shape s, const float *v)
{
    clcnn_tensor *t = NULL;
    assert_ok(clcnn_tensor_create(test_dev, s, &t));
    if (v != NULL)
        assert_ok(clcnn_tensor_upload(t, v, clcnn_tensor_count(t)));
    else
        assert_ok(clcnn_tensor_fill(t, NAN));
    return t;
}

static void compare(const char *what, int it, const clcnn_tensor *t, const double *ref)
{
    const size_t n = clcnn_tensor_count(t);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    assert_ok(clcnn_tensor_download(t, v, n));
    for (size_t i = 0; i < n; i++)
        check_close(what, it, i, v[i], ref[i]);
    free(v);
}

/* Runs ITERS iterations on the device (and, with check, the reference beside it); returns the
 * final first-layer weights (malloc'd). */
static float *run(bool check)
{
    test_rng rng;
    test_rng_seed(&rng, 2024);
    float x[N * IN], w1[HID * IN], b1[HID], w2[OUT * HID], b2[OUT];
    test_rng_fill(&rng, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
    test_rng_fill(&rng, w1, sizeof w1 / sizeof w1[0], -0.5f, 0.5f);
    test_rng_fill(&rng, b1, HID, -0.2f, 0.2f);
    test_rng_fill(&rng, w2, sizeof w2 / sizeof w2[0], -0.5f, 0.5f);
    test_rng_fill(&rng, b2, OUT, -0.2f, 0.2f);
    const int32_t labels[N] = {3, 0, 4, 1};
    static params ref, vel, grads;
    double xd[N * IN];
    for (int i = 0; i < N * IN; i++)
        xd[i] = x[i];
    for (int i = 0; i < HID * IN; i++)
        ref.w1[i] = w1[i];
    for (int i = 0; i < HID; i++)
        ref.b1[i] = b1[i];
    for (int i = 0; i < OUT * HID; i++)
        ref.w2[i] = w2[i];
    for (int i = 0; i < OUT; i++)
        ref.b2[i] = b2[i];

    const clcnn_shape xs = {N, IN, 1, 1}, w1s = {HID, IN, 1, 1}, b1s = {HID, 1, 1, 1},
                      hs = {N, HID, 1, 1}, w2s = {OUT, HID, 1, 1}, b2s = {OUT, 1, 1, 1},
                      zs = {N, OUT, 1, 1};
    clcnn_tensor *tx = make(xs, x), *tw1 = make(w1s, w1), *tb1 = make(b1s, b1),
                 *tw2 = make(w2s, w2), *tb2 = make(b2s, b2);
    clcnn_tensor *th = make(hs, NULL), *tz = make(zs, NULL), *tdz = make(zs, NULL),
                 *tda = make(hs, NULL), *tdh = make(hs, NULL);
    clcnn_tensor *gw1 = make(w1s, NULL), *gb1 = make(b1s, NULL), *gw2 = make(w2s, NULL),
                 *gb2 = make(b2s, NULL);
    /* Momentum buffers: contents ignored at step 1, so NaN is fine. */
    clcnn_tensor *vw1 = make(w1s, NULL), *vb1 = make(b1s, NULL), *vw2 = make(w2s, NULL),
                 *vb2 = make(b2s, NULL);
    clcnn_optim_config sgd = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    sgd.lr = (float)LR;
    sgd.momentum = (float)MOMENTUM;
    sgd.weight_decay = (float)WD;
    const clcnn_act_params relu = clcnn_act_params_default(CLCNN_ACT_RELU);

    for (int it = 0; it < ITERS; it++) {
        float loss = NAN;
        /* Forward: h = relu(x W1^T + b1) in place, z = h W2^T + b2. */
        assert_ok(clcnn_linear_forward(test_dev, tx, tw1, tb1, th));
        assert_ok(clcnn_act_forward(test_dev, &relu, th, th));
        assert_ok(clcnn_linear_forward(test_dev, th, tw2, tb2, tz));
        assert_ok(clcnn_softmax_xent_forward(test_dev, tz, labels, N, NULL, &loss));
        /* Backward. */
        assert_ok(clcnn_softmax_xent_backward(test_dev, tz, labels, N, tdz));
        assert_ok(clcnn_linear_backward(test_dev, th, tw2, tdz, false, tda, gw2, gb2));
        assert_ok(clcnn_act_backward(test_dev, &relu, th, tda, tdh));
        assert_ok(clcnn_linear_backward(test_dev, tx, tw1, tdh, false, NULL, gw1, gb1));
        if (check) {
            const double loss_ref = ref_iteration(&ref, &vel, &grads, xd, labels, it);
            check_close("loss", it, 0, loss, loss_ref);
            compare("grad w1", it, gw1, grads.w1);
            compare("grad b1", it, gb1, grads.b1);
            compare("grad w2", it, gw2, grads.w2);
            compare("grad b2", it, gb2, grads.b2);
        }
        /* The step. */
        clcnn_tensor *ps[] = {tw1, tb1, tw2, tb2}, *gs[] = {gw1, gb1, gw2, gb2},
                     *vs[] = {vw1, vb1, vw2, vb2};
        for (int k = 0; k < 4; k++)
            assert_ok(
                clcnn_optim_step(test_dev, &sgd, ps[k], gs[k], vs[k], NULL, (uint64_t)it + 1));
        if (check) {
            compare("w1", it, tw1, ref.w1);
            compare("b1", it, tb1, ref.b1);
            compare("w2", it, tw2, ref.w2);
            compare("b2", it, tb2, ref.b2);
            compare("velocity w1", it, vw1, vel.w1);
            compare("velocity b2", it, vb2, vel.b2);
        }
    }
    float *out = malloc(sizeof w1 + sizeof w2 + sizeof b1 + sizeof b2);
    assert_non_null(out);
    const size_t nw1 = sizeof w1 / sizeof w1[0], nw2 = sizeof w2 / sizeof w2[0];
    assert_ok(clcnn_tensor_download(tw1, out, nw1));
    assert_ok(clcnn_tensor_download(tb1, out + nw1, HID));
    assert_ok(clcnn_tensor_download(tw2, out + nw1 + HID, nw2));
    assert_ok(clcnn_tensor_download(tb2, out + nw1 + HID + nw2, OUT));
    clcnn_tensor *all[] = {tx,  tw1, tb1, tw2, tb2, th,  tz,  tdz, tda,
                           tdh, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clcnn_tensor_release(all[i]);
    return out;
}

static void test_two_iterations(void **state)
{
    (void)state;
    float *a = run(true);
    float *b = run(false);
    const size_t count = (size_t)HID * IN + HID + (size_t)OUT * HID + OUT;
    assert_memory_equal(a, b, count * sizeof *a);
    free(a);
    free(b);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_iterations),
    };
    return cmocka_run_group_tests_name("two_layer", tests, test_group_setup, test_group_teardown);
}
