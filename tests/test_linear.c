/* Fully connected layers: forward and backward (dx, dw, db; overwrite and accumulate) against a
 * float64 reference on random shapes (flattened inputs, vector tails, each weight layout),
 * gradients by central finite differences in double, bit-identical repeated runs, and the
 * refusals of bad shapes and aliasing (outputs left untouched). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linear_impl.h"
#include "testutil.h"

/* A float32 sum of n products is off by at most about n * 2^-24 * sum|terms| in any order
 * (Higham's gamma_n bound, which covers CLBlast's tiling and fma); the tests allow
 * TOL_ULP * (n + 8) * sum|terms|, about twice that. */
#define TOL_ULP 1.2e-7

static float *random_floats(test_rng *rng, size_t n)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    test_rng_fill(rng, v, n, -1.0f, 1.0f);
    return v;
}

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

/* y = x W^T + b (b may be NULL); mag = sum |terms| per output. */
static void ref_forward(size_t n, size_t in, size_t out, const float *x, const float *w,
                        const float *b, double *y, double *mag)
{
    for (size_t r = 0; r < n; r++)
        for (size_t o = 0; o < out; o++) {
            double s = b != NULL ? b[o] : 0.0, m = b != NULL ? fabs(b[o]) : 0.0;
            for (size_t i = 0; i < in; i++) {
                s += (double)x[r * in + i] * w[o * in + i];
                m += fabs((double)x[r * in + i] * w[o * in + i]);
            }
            y[r * out + o] = s;
            if (mag != NULL)
                mag[r * out + o] = m;
        }
}

/* dx = dy W, dw = dy^T x, db = sum_r dy, with magnitudes. */
static void ref_backward(size_t n, size_t in, size_t out, const float *x, const float *w,
                         const float *dy, double *dx, double *dxm, double *dw, double *dwm,
                         double *db, double *dbm)
{
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < in; i++) {
            double s = 0, m = 0;
            for (size_t o = 0; o < out; o++) {
                s += (double)dy[r * out + o] * w[o * in + i];
                m += fabs((double)dy[r * out + o] * w[o * in + i]);
            }
            dx[r * in + i] = s;
            dxm[r * in + i] = m;
        }
    for (size_t o = 0; o < out; o++) {
        for (size_t i = 0; i < in; i++) {
            double s = 0, m = 0;
            for (size_t r = 0; r < n; r++) {
                s += (double)dy[r * out + o] * x[r * in + i];
                m += fabs((double)dy[r * out + o] * x[r * in + i]);
            }
            dw[o * in + i] = s;
            dwm[o * in + i] = m;
        }
        double s = 0, m = 0;
        for (size_t r = 0; r < n; r++) {
            s += dy[r * out + o];
            m += fabs(dy[r * out + o]);
        }
        db[o] = s;
        dbm[o] = m;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The sweep                                                                                  */

typedef struct linear_case {
    const char *name;
    size_t n, c, h, w, out;
    int wlayout; /* 0: (out, in, 1, 1); 1: (1, 1, out, in); 2: (out, C, H, W) */
} linear_case;

static const linear_case cases[] = {
    {"4x16 -> 12", 4, 16, 1, 1, 12, 0},           {"1x1 -> 1", 1, 1, 1, 1, 1, 0},
    {"3x(2x3x5) -> 7", 3, 2, 3, 5, 7, 2},         {"5x37 -> 9", 5, 37, 1, 1, 9, 1},
    {"2x(8x2x2) -> 17", 2, 8, 2, 2, 17, 0},       {"33x20 -> 70", 33, 20, 1, 1, 70, 1},
    {"64x(16x5x5) -> 120", 64, 16, 5, 5, 120, 0}, {"70x300 -> 130", 70, 300, 1, 1, 130, 2},
};

static clcnn_shape weight_shape(const linear_case *lc)
{
    const size_t in = lc->c * lc->h * lc->w;
    if (lc->wlayout == 1)
        return (clcnn_shape){1, 1, lc->out, in};
    if (lc->wlayout == 2)
        return (clcnn_shape){lc->out, lc->c, lc->h, lc->w};
    return (clcnn_shape){lc->out, in, 1, 1};
}

static void run_case(const linear_case *lc, uint64_t seed)
{
    const size_t n = lc->n, in = lc->c * lc->h * lc->w, out = lc->out;
    const clcnn_shape xs = {n, lc->c, lc->h, lc->w}, ws = weight_shape(lc), ys = {n, out, 1, 1},
                      bs = {out, 1, 1, 1};
    test_rng rng;
    test_rng_seed(&rng, seed);
    float *x = random_floats(&rng, n * in), *w = random_floats(&rng, out * in);
    float *b = random_floats(&rng, out), *dy = random_floats(&rng, n * out);
    float *g0w = random_floats(&rng, out * in), *g0b = random_floats(&rng, out);
    double *yr = malloc(n * out * sizeof *yr), *ym = malloc(n * out * sizeof *ym);
    double *dxr = malloc(n * in * sizeof *dxr), *dxm = malloc(n * in * sizeof *dxm);
    double *dwr = malloc(out * in * sizeof *dwr), *dwm = malloc(out * in * sizeof *dwm);
    double *dbr = malloc(out * sizeof *dbr), *dbm = malloc(out * sizeof *dbm);
    assert_true(yr && ym && dxr && dxm && dwr && dwm && dbr && dbm);
    ref_forward(n, in, out, x, w, b, yr, ym);
    ref_backward(n, in, out, x, w, dy, dxr, dxm, dwr, dwm, dbr, dbm);

    clcnn_shape got;
    assert_ok(clcnn_linear_output_shape(xs, ws, &got));
    assert_memory_equal(&got, &ys, sizeof ys);
    clcnn_tensor *tx = test_upload(xs, x), *tw = test_upload(ws, w), *tb = test_upload(bs, b),
                 *tdy = test_upload(ys, dy), *ty = test_upload(ys, NULL),
                 *tdx = test_upload(xs, NULL), *tdw = test_upload(ws, NULL),
                 *tdb = test_upload(bs, NULL);

    /* Forward with and without bias, twice each: same bits. */
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        float *first = NULL;
        if (!with_bias)
            ref_forward(n, in, out, x, w, NULL, yr, ym);
        else
            ref_forward(n, in, out, x, w, b, yr, ym);
        for (int run = 0; run < 2; run++) {
            assert_ok(clcnn_tensor_fill(ty, NAN));
            assert_ok(clcnn_linear_forward(test_dev, tx, tw, with_bias ? tb : NULL, ty));
            float *y = test_download(ty);
            for (size_t i = 0; i < n * out; i++)
                check_close(with_bias ? "forward" : "forward (no bias)", lc->name, i, y[i], yr[i],
                            TOL_ULP * (double)(in + 8) * ym[i]);
            if (run == 0) {
                first = y;
            } else {
                assert_memory_equal(first, y, n * out * sizeof *y);
                free(y);
            }
        }
        free(first);
    }

    /* Backward, overwriting (twice: same bits), then accumulating onto g0. */
    float *first[3] = {NULL, NULL, NULL};
    for (int run = 0; run < 3; run++) {
        const bool acc = run == 2;
        assert_ok(clcnn_tensor_fill(tdx, NAN));
        if (acc) {
            assert_ok(clcnn_tensor_upload(tdw, g0w, out * in));
            assert_ok(clcnn_tensor_upload(tdb, g0b, out));
        } else {
            assert_ok(clcnn_tensor_fill(tdw, NAN));
            assert_ok(clcnn_tensor_fill(tdb, NAN));
        }
        assert_ok(clcnn_linear_backward(test_dev, tx, tw, tdy, acc, tdx, tdw, tdb));
        float *dx = test_download(tdx), *dw = test_download(tdw), *db = test_download(tdb);
        for (size_t i = 0; i < n * in; i++)
            check_close("backward dx", lc->name, i, dx[i], dxr[i],
                        TOL_ULP * (double)(out + 8) * dxm[i]);
        for (size_t i = 0; i < out * in; i++) {
            const double base = acc ? g0w[i] : 0.0;
            check_close(acc ? "backward dw (accumulate)" : "backward dw", lc->name, i, dw[i],
                        base + dwr[i], TOL_ULP * (double)(n + 8) * (fabs(base) + dwm[i]));
        }
        for (size_t i = 0; i < out; i++) {
            const double base = acc ? g0b[i] : 0.0;
            check_close(acc ? "backward db (accumulate)" : "backward db", lc->name, i, db[i],
                        base + dbr[i], TOL_ULP * (double)(n + 8) * (fabs(base) + dbm[i]));
        }
        if (run == 0) {
            first[0] = dx;
            first[1] = dw;
            first[2] = db;
            continue;
        }
        if (run == 1) {
            assert_memory_equal(first[0], dx, n * in * sizeof *dx);
            assert_memory_equal(first[1], dw, out * in * sizeof *dw);
            assert_memory_equal(first[2], db, out * sizeof *db);
        }
        free(dx);
        free(dw);
        free(db);
    }
    /* Only dx, only db: the others stay untouched. */
    assert_ok(clcnn_tensor_fill(tdw, NAN));
    assert_ok(clcnn_tensor_fill(tdx, NAN));
    assert_ok(clcnn_linear_backward(test_dev, tx, tw, tdy, false, NULL, NULL, tdb));
    float *dx = test_download(tdx), *dw = test_download(tdw);
    assert_true(isnan(dx[0]) && isnan(dw[0]));
    free(dx);
    free(dw);
    for (int i = 0; i < 3; i++)
        free(first[i]);

    clcnn_tensor_release(tx);
    clcnn_tensor_release(tw);
    clcnn_tensor_release(tb);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tdx);
    clcnn_tensor_release(tdw);
    clcnn_tensor_release(tdb);
    free(x);
    free(w);
    free(b);
    free(dy);
    free(g0w);
    free(g0b);
    free(yr);
    free(ym);
    free(dxr);
    free(dxm);
    free(dwr);
    free(dwm);
    free(dbr);
    free(dbm);
}

/* Every case through each GEMM: the register-blocked kernel (the default on CPU devices) and
 * CLBlast's (the default elsewhere). */
static void test_sweep(void **state)
{
    (void)state;
    static const clcnn__linear_engine engines[] = {CLCNN__LINEAR_OWN, CLCNN__LINEAR_CLBLAST};
    for (size_t e = 0; e < 2; e++) {
        clcnn__linear_force_engine(engines[e]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_case(&cases[i], 40 + i);
    }
    clcnn__linear_force_engine(CLCNN__LINEAR_AUTO);
}

/* ------------------------------------------------------------------------------------------ */
/* Finite differences                                                                         */

/* L = sum dy * (x W^T + b) in double. */
static double loss_of(size_t n, size_t in, size_t out, const double *x, const double *w,
                      const double *b, const float *dy)
{
    double l = 0;
    for (size_t r = 0; r < n; r++)
        for (size_t o = 0; o < out; o++) {
            double s = b[o];
            for (size_t i = 0; i < in; i++)
                s += x[r * in + i] * w[o * in + i];
            l += dy[r * out + o] * s;
        }
    return l;
}

/* Central differences of L in every x, w and b element against the device's dx, dw, db. */
static void test_finite_differences(void **state)
{
    (void)state;
    const size_t n = 3, c = 2, h = 2, wd = 3, in = c * h * wd, out = 5;
    test_rng rng;
    test_rng_seed(&rng, 77);
    float *x = random_floats(&rng, n * in), *w = random_floats(&rng, out * in);
    float *b = random_floats(&rng, out), *dy = random_floats(&rng, n * out);
    double xd[3 * 12], wdd[5 * 12], bd[5];
    for (size_t i = 0; i < n * in; i++)
        xd[i] = x[i];
    for (size_t i = 0; i < out * in; i++)
        wdd[i] = w[i];
    for (size_t i = 0; i < out; i++)
        bd[i] = b[i];
    const clcnn_shape xs = {n, c, h, wd}, ws = {out, in, 1, 1}, ys = {n, out, 1, 1};
    clcnn_tensor *tx = test_upload(xs, x), *tw = test_upload(ws, w), *tdy = test_upload(ys, dy),
                 *tdx = test_upload(xs, NULL), *tdw = test_upload(ws, NULL),
                 *tdb = test_upload((clcnn_shape){1, out, 1, 1}, NULL);
    assert_ok(clcnn_tensor_fill(tdx, NAN));
    assert_ok(clcnn_tensor_fill(tdw, NAN));
    assert_ok(clcnn_tensor_fill(tdb, NAN));
    assert_ok(clcnn_linear_backward(test_dev, tx, tw, tdy, false, tdx, tdw, tdb));
    float *dx = test_download(tdx), *dw = test_download(tdw), *db = test_download(tdb);
    const double step = 1e-3;
    struct {
        const char *name;
        double *v;
        size_t count;
        const float *grad;
    } params[] = {{"x", xd, n * in, dx}, {"w", wdd, out * in, dw}, {"b", bd, out, db}};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < params[p].count; i++) {
            const double save = params[p].v[i];
            params[p].v[i] = save + step;
            const double lp = loss_of(n, in, out, xd, wdd, bd, dy);
            params[p].v[i] = save - step;
            const double lm = loss_of(n, in, out, xd, wdd, bd, dy);
            params[p].v[i] = save;
            const double fd = (lp - lm) / (2 * step);
            /* L is linear in each element: the difference is exact but for double rounding;
             * the device's float32 gradient sums at most 12 terms of magnitude < 1. */
            check_close("finite difference", params[p].name, i, params[p].grad[i], fd,
                        2e-6 * (1.0 + fabs(fd)));
        }
    free(dx);
    free(dw);
    free(db);
    free(x);
    free(w);
    free(b);
    free(dy);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(tw);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(tdx);
    clcnn_tensor_release(tdw);
    clcnn_tensor_release(tdb);
}

/* ------------------------------------------------------------------------------------------ */
/* Refusals                                                                                   */

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
    const clcnn_shape xs = {4, 3, 2, 2}, ws = {5, 12, 1, 1}, ys = {4, 5, 1, 1};
    clcnn_shape got = {9, 9, 9, 9};
    assert_status_msg(clcnn_linear_output_shape(xs, (clcnn_shape){5, 11, 1, 1}, &got),
                      CLCNN_STATUS_BAD_SHAPE,
                      "weight (5,11,1,1) holds 55 elements, not a multiple of the input "
                      "(4,3,2,2)'s 12 features");
    assert_int_equal(got.n, 9);
    float v[64];
    test_rng rng;
    test_rng_seed(&rng, 3);
    test_rng_fill(&rng, v, 64, -1.0f, 1.0f);
    clcnn_tensor *tx = test_upload(xs, v), *tw = test_upload(ws, v),
                 *tb = test_upload((clcnn_shape){5, 1, 1, 1}, v);
    clcnn_tensor *ty = test_upload(ys, NULL), *ybad = test_upload((clcnn_shape){4, 6, 1, 1}, NULL);
    clcnn_tensor *bbad = test_upload((clcnn_shape){6, 1, 1, 1}, v), *tdx = test_upload(xs, NULL);
    clcnn_tensor *dxbad = test_upload((clcnn_shape){4, 12, 1, 1}, NULL),
                 *tdw = test_upload(ws, NULL);
    clcnn_tensor *dwbad = test_upload((clcnn_shape){1, 1, 5, 12}, NULL);
    clcnn_tensor *wbad = test_upload((clcnn_shape){1, 1, 1, 11}, v);
    clcnn_tensor *tdy = test_upload(ys, v);
    clcnn_tensor *outs[] = {ty, ybad, tdx, dxbad, tdw, dwbad};
    for (size_t i = 0; i < 6; i++)
        assert_ok(clcnn_tensor_fill(outs[i], NAN));

    assert_status_msg(clcnn_linear_forward(test_dev, tx, tw, tb, ybad), CLCNN_STATUS_BAD_SHAPE,
                      "output y is (4,6,1,1) but must be (4,5,1,1)");
    assert_status_msg(clcnn_linear_forward(test_dev, tx, tw, bbad, ty), CLCNN_STATUS_BAD_SHAPE,
                      "bias b is (6,1,1,1) with 6 elements but must hold 5");
    assert_status_msg(clcnn_linear_forward(test_dev, tx, wbad, tb, ty), CLCNN_STATUS_BAD_SHAPE,
                      "not a multiple of the input");
    assert_status_msg(clcnn_linear_forward(test_dev, tx, NULL, tb, ty), CLCNN_STATUS_INVALID_ARG,
                      "NULL weight w");
    assert_status_msg(clcnn_linear_forward(test_dev, tx, tw, tb, (clcnn_tensor *)tb),
                      CLCNN_STATUS_BAD_SHAPE, "output y is (5,1,1,1)");
    assert_all_nan(ty);
    assert_all_nan(ybad);

    assert_status_msg(clcnn_linear_backward(test_dev, tx, tw, ybad, false, tdx, tdw, NULL),
                      CLCNN_STATUS_BAD_SHAPE,
                      "output gradient dy is (4,6,1,1) but must be (4,5,1,1)");
    assert_status_msg(clcnn_linear_backward(test_dev, tx, tw, tdy, false, dxbad, tdw, NULL),
                      CLCNN_STATUS_BAD_SHAPE,
                      "input gradient dx is (4,12,1,1) but must be (4,3,2,2)");
    assert_status_msg(clcnn_linear_backward(test_dev, tx, tw, tdy, false, tdx, dwbad, NULL),
                      CLCNN_STATUS_BAD_SHAPE,
                      "weight gradient dw is (1,1,5,12) but must be (5,12,1,1)");
    assert_status_msg(clcnn_linear_backward(test_dev, tx, tw, tdy, false, tdx, tdw, bbad),
                      CLCNN_STATUS_BAD_SHAPE, "bias gradient db is (6,1,1,1)");
    assert_status_msg(
        clcnn_linear_backward(test_dev, tx, tw, tdy, false, tdx, (clcnn_tensor *)tw, NULL),
        CLCNN_STATUS_INVALID_ARG, "weight gradient dw must not alias");
    assert_status_msg(clcnn_linear_backward(test_dev, tx, tw, NULL, false, tdx, tdw, NULL),
                      CLCNN_STATUS_INVALID_ARG, "NULL output gradient dy");
    assert_int_equal(clcnn_linear_backward(NULL, tx, tw, tdy, false, tdx, tdw, NULL),
                     CLCNN_STATUS_INVALID_ARG);
    for (size_t i = 2; i < 6; i++)
        assert_all_nan(outs[i]);

    clcnn_tensor *all[] = {tx, tw, tb, ty, ybad, bbad, tdx, dxbad, tdw, dwbad, wbad, tdy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clcnn_tensor_release(all[i]);
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
    return cmocka_run_group_tests_name("linear", tests, test_group_setup, test_group_teardown);
}
