/* 2-D pooling: every kind forward and backward against a float64 reference on a sweep of
 * shapes (the 2x2 stride-2 vector path and the generic one, edges, ceil mode, global), argmax
 * indices and their tie rule, gradients by central finite differences in double, bit-identical
 * backward runs, the output-shape formula and the refusals (outputs left untouched). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_impl.h"
#include "testutil.h"

/* Bounds: a float32 sum of n terms is off by at most (n - 1) * 2^-24 * sum|terms| (Higham);
 * a division, a sqrt or a product adds one rounding each. Per element the tests allow
 * TOL_ULP * (terms + 8) * magnitude, about twice that bound; max pooling forward is exact. */
#define TOL_ULP 1.2e-7

/* ------------------------------------------------------------------------------------------ */
/* The float64 reference                                                                      */

typedef struct pool_case {
    const char *name;
    size_t n, c, h, w;
    size_t r, s, sh, sw, ph, pw;
    bool ceil_mode, global;
} pool_case;

static clcnn_pool_params case_params(const pool_case *pc, clcnn_pool_kind kind)
{
    clcnn_pool_params p = clcnn_pool_params_default(kind);
    p.window_h = pc->r;
    p.window_w = pc->s;
    p.stride_h = pc->sh;
    p.stride_w = pc->sw;
    p.pad_h = pc->ph;
    p.pad_w = pc->pw;
    p.ceil_mode = pc->ceil_mode;
    p.global = pc->global;
    return p;
}

/* The window after global is resolved. */
typedef struct win {
    long r, s, sh, sw, ph, pw;
} win;

static win effective(const pool_case *pc)
{
    if (pc->global)
        return (win){(long)pc->h, (long)pc->w, 1, 1, 0, 0};
    return (win){(long)pc->r, (long)pc->s, (long)pc->sh, (long)pc->sw, (long)pc->ph, (long)pc->pw};
}

/* PyTorch's formula, written independently of the library. */
static size_t ref_extent(long in, long k, long stride, long pad, bool ceil_mode)
{
    long num = in + 2 * pad - k;
    long n = (ceil_mode ? (num + stride - 1) / stride : num / stride) + 1;
    if (ceil_mode && (n - 1) * stride >= in + pad)
        n--;
    return (size_t)n;
}

static clcnn_shape ref_out_shape(const pool_case *pc)
{
    win q = effective(pc);
    bool cm = pc->ceil_mode && !pc->global;
    return (clcnn_shape){pc->n, pc->c, ref_extent((long)pc->h, q.r, q.sh, q.ph, cm),
                         ref_extent((long)pc->w, q.s, q.sw, q.pw, cm)};
}

/* One output of the reference: value, argmax (ih * W + iw) and the magnitude the bound uses. */
static double ref_one(const double *xp, long H, long W, win q, clcnn_pool_kind kind, long oy,
                      long ox, long *arg, double *mag)
{
    long h0 = oy * q.sh - q.ph, w0 = ox * q.sw - q.pw;
    double best = -INFINITY, sum = 0, asum = 0;
    long idx = -1, cnt = 0;
    for (long h = h0; h < h0 + q.r; h++)
        for (long w = w0; w < w0 + q.s; w++) {
            if (h < 0 || w < 0 || h >= H || w >= W)
                continue;
            double v = xp[h * W + w];
            if (idx < 0 || v > best) {
                best = v;
                idx = h * W + w;
            }
            sum += kind == CLCNN_POOL_L2 ? v * v : v;
            asum += kind == CLCNN_POOL_L2 ? v * v : fabs(v);
            cnt++;
        }
    *arg = idx;
    if (kind == CLCNN_POOL_MAX) {
        *mag = 0;
        return best;
    }
    if (kind == CLCNN_POOL_L2) {
        *mag = sqrt(asum);
        return sqrt(sum);
    }
    double div = (double)cnt;
    if (kind == CLCNN_POOL_AVG) {
        long he = h0 + q.r < H + q.ph ? h0 + q.r : H + q.ph;
        long we = w0 + q.s < W + q.pw ? w0 + q.s : W + q.pw;
        div = (double)((he - h0) * (we - w0));
    }
    *mag = asum / div;
    return sum / div;
}

/* Forward over all planes: y, argmax and magnitudes (each may be NULL). */
static void ref_forward(const pool_case *pc, clcnn_pool_kind kind, const double *x, double *y,
                        long *arg, double *mag)
{
    clcnn_shape ys = ref_out_shape(pc);
    win q = effective(pc);
    for (size_t p = 0; p < pc->n * pc->c; p++)
        for (size_t oy = 0; oy < ys.h; oy++)
            for (size_t ox = 0; ox < ys.w; ox++) {
                long a;
                double m;
                size_t o = (p * ys.h + oy) * ys.w + ox;
                double v = ref_one(x + p * pc->h * pc->w, (long)pc->h, (long)pc->w, q, kind,
                                   (long)oy, (long)ox, &a, &m);
                if (y)
                    y[o] = v;
                if (arg)
                    arg[o] = a;
                if (mag)
                    mag[o] = m;
            }
}

/* The analytic gradient: scatters each output's dy over its window (the reference may use
 * scatter; the library gathers). mag gets sum |contributions| per input element. */
static void ref_backward(const pool_case *pc, clcnn_pool_kind kind, const double *x,
                         const double *dy, double *dx, double *mag)
{
    clcnn_shape ys = ref_out_shape(pc);
    win q = effective(pc);
    const long H = (long)pc->h, W = (long)pc->w;
    size_t nx = pc->n * pc->c * pc->h * pc->w;
    memset(dx, 0, nx * sizeof *dx);
    memset(mag, 0, nx * sizeof *mag);
    for (size_t p = 0; p < pc->n * pc->c; p++) {
        const double *xp = x + p * pc->h * pc->w;
        double *dxp = dx + p * pc->h * pc->w, *mp = mag + p * pc->h * pc->w;
        for (long oy = 0; oy < (long)ys.h; oy++)
            for (long ox = 0; ox < (long)ys.w; ox++) {
                long a = 0;
                double m = 0;
                double yv = ref_one(xp, H, W, q, kind, oy, ox, &a, &m);
                double g = dy[(p * ys.h + (size_t)oy) * ys.w + (size_t)ox];
                if (kind == CLCNN_POOL_MAX) {
                    dxp[a] += g;
                    mp[a] += fabs(g);
                    continue;
                }
                long h0 = oy * q.sh - q.ph, w0 = ox * q.sw - q.pw;
                double div = 0;
                if (kind != CLCNN_POOL_L2) {
                    /* The forward's divisor: the elements inside the input, or for AVG the
                     * window clipped to the padded input. */
                    double cnt = 0;
                    for (long h = h0; h < h0 + q.r; h++)
                        for (long w = w0; w < w0 + q.s; w++)
                            if (h >= 0 && w >= 0 && h < H && w < W)
                                cnt++;
                    div = cnt;
                    if (kind == CLCNN_POOL_AVG) {
                        long he = h0 + q.r < H + q.ph ? h0 + q.r : H + q.ph;
                        long we = w0 + q.s < W + q.pw ? w0 + q.s : W + q.pw;
                        div = (double)((he - h0) * (we - w0));
                    }
                }
                for (long h = h0; h < h0 + q.r; h++)
                    for (long w = w0; w < w0 + q.s; w++) {
                        if (h < 0 || w < 0 || h >= H || w >= W)
                            continue;
                        double c =
                            kind == CLCNN_POOL_L2 ? (yv > 0 ? g * xp[h * W + w] / yv : 0) : g / div;
                        dxp[h * W + w] += c;
                        mp[h * W + w] += fabs(c);
                    }
            }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Device helpers                                                                             */

static cl_mem new_indices(size_t count)
{
    cl_int err;
    cl_mem m = clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE,
                              count * sizeof(cl_int), NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

/* Fills an indices buffer with a value no window produces. */
static void poison_indices(cl_mem m, size_t count)
{
    cl_int bad = -7;
    cl_command_queue q = clcnn_device_compute_queue(test_dev);
    assert_int_equal(
        clEnqueueFillBuffer(q, m, &bad, sizeof bad, 0, count * sizeof bad, 0, NULL, NULL),
        CL_SUCCESS);
    assert_int_equal(clFinish(q), CL_SUCCESS);
}

static cl_int *read_indices(cl_mem m, size_t count)
{
    cl_int *v = malloc(count * sizeof *v);
    assert_non_null(v);
    assert_int_equal(clEnqueueReadBuffer(clcnn_device_compute_queue(test_dev), m, CL_TRUE, 0,
                                         count * sizeof *v, v, 0, NULL, NULL),
                     CL_SUCCESS);
    return v;
}

static void check_close(const char *what, const char *name, const char *kind, size_t i, double got,
                        double ref, double bound)
{
    if (!(fabs(got - ref) <= bound))
        print_error("%s %s [%s] element %zu: got %.9g, reference %.9g (bound %.3g)\n", what, name,
                    kind, i, got, ref, bound);
    assert_true(fabs(got - ref) <= bound);
}

/* ------------------------------------------------------------------------------------------ */
/* The sweep                                                                                  */

static const pool_case sweep_cases[] = {
    /* name                         n  c   h   w  r  s sh sw ph pw ceil  global */
    {"2x2 s2 64x64", 1, 2, 64, 64, 2, 2, 2, 2, 0, 0, false, false},
    {"2x2 s2 odd 37x45", 3, 2, 37, 45, 2, 2, 2, 2, 0, 0, false, false},
    {"2x2 s2 odd ceil 37x45", 1, 3, 37, 45, 2, 2, 2, 2, 0, 0, true, false},
    {"2x2 s2 C=1 16x33", 1, 1, 16, 33, 2, 2, 2, 2, 0, 0, false, false},
    /* the vector widths the 2x2 stride-2 kernels take by default: 2 (LeNet's maps), 4 */
    {"2x2 s2 28x28", 2, 3, 28, 28, 2, 2, 2, 2, 0, 0, false, false},
    {"2x2 s2 14x14", 1, 4, 14, 14, 2, 2, 2, 2, 0, 0, false, false},
    {"2x2 s2 10x24", 2, 2, 10, 24, 2, 2, 2, 2, 0, 0, false, false},
    {"3x3 s2 pad1 17x19", 2, 3, 17, 19, 3, 3, 2, 2, 1, 1, false, false},
    {"3x3 s2 pad1 ceil 18x20", 1, 2, 18, 20, 3, 3, 2, 2, 1, 1, true, false},
    {"3x3 s1 11x13", 1, 3, 11, 13, 3, 3, 1, 1, 0, 0, false, false},
    {"3x3 s1 pad1 9x10", 3, 1, 9, 10, 3, 3, 1, 1, 1, 1, false, false},
    {"asym 3x2 s(2,1) pad(1,0)", 2, 2, 13, 15, 3, 2, 2, 1, 1, 0, false, false},
    {"asym 2x4 s(1,3) pad(0,2)", 1, 3, 10, 21, 2, 4, 1, 3, 0, 2, false, false},
    {"overlap 5x5 s2 pad2", 1, 2, 15, 14, 5, 5, 2, 2, 2, 2, false, false},
    {"4x3 s3 ceil", 2, 2, 14, 17, 4, 3, 3, 3, 1, 1, true, false},
    {"1x1 s1", 1, 2, 5, 7, 1, 1, 1, 1, 0, 0, false, false},
    {"window = input", 1, 2, 6, 5, 6, 5, 1, 1, 0, 0, false, false},
    {"global 7x9", 3, 4, 7, 9, 0, 0, 0, 0, 0, 0, false, true},
    {"global 1x1", 2, 3, 1, 1, 0, 0, 0, 0, 0, 0, false, true},
};

/* Runs every kind of one case: forward (max also with indices), backward (max with indices
 * and by recomputing), each twice for bit-identity, against the reference. */
static void run_case(const pool_case *pc, uint64_t seed)
{
    const clcnn_shape xs = {pc->n, pc->c, pc->h, pc->w};
    const clcnn_shape ys = ref_out_shape(pc);
    const size_t nx = xs.n * xs.c * xs.h * xs.w, ny = ys.n * ys.c * ys.h * ys.w;
    win q = effective(pc);
    float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
    /* calloc: the static analyzer cannot see that the fills below cover every element. */
    double *xd = calloc(nx, sizeof *xd), *dyd = calloc(ny, sizeof *dyd);
    double *yr = malloc(ny * sizeof *yr), *ymag = malloc(ny * sizeof *ymag);
    double *dxr = malloc(nx * sizeof *dxr), *dxmag = malloc(nx * sizeof *dxmag);
    long *arg = malloc(ny * sizeof *arg);
    assert_true(x && dy && xd && dyd && yr && ymag && dxr && dxmag && arg);
    test_rng rng;
    test_rng_seed(&rng, seed);
    test_rng_fill(&rng, x, nx, -1.0f, 1.0f);
    test_rng_fill(&rng, dy, ny, -1.0f, 1.0f);
    for (size_t i = 0; i < nx; i++)
        xd[i] = x[i];
    for (size_t i = 0; i < ny; i++)
        dyd[i] = dy[i];
    clcnn_tensor *tx = test_upload(xs, x), *tdy = test_upload(ys, dy), *ty = test_upload(ys, NULL),
                 *tdx = test_upload(xs, NULL);
    cl_mem ind = new_indices(ny);

    for (int k = 0; k < CLCNN_POOL_KIND_COUNT; k++) {
        const clcnn_pool_kind kind = (clcnn_pool_kind)k;
        const char *kn = clcnn_pool_kind_name(kind);
        clcnn_pool_params p = case_params(pc, kind);
        clcnn_shape got_shape;
        assert_ok(clcnn_pool_output_shape(xs, &p, &got_shape));
        assert_memory_equal(&got_shape, &ys, sizeof ys);
        ref_forward(pc, kind, xd, yr, arg, ymag);
        ref_backward(pc, kind, xd, dyd, dxr, dxmag);

        /* Forward: max twice (without and with indices), the others once. */
        for (int with_ind = 0; with_ind <= (kind == CLCNN_POOL_MAX); with_ind++) {
            assert_ok(clcnn_tensor_fill(ty, NAN));
            poison_indices(ind, ny);
            assert_ok(clcnn_pool_forward(test_dev, tx, &p, ty, with_ind ? ind : NULL));
            float *y = test_download(ty);
            for (size_t i = 0; i < ny; i++) {
                double bound =
                    kind == CLCNN_POOL_MAX ? 0.0 : TOL_ULP * (double)(q.r * q.s + 8) * ymag[i];
                check_close("forward", pc->name, kn, i, y[i], yr[i], bound);
            }
            if (with_ind) {
                cl_int *iv = read_indices(ind, ny);
                for (size_t i = 0; i < ny; i++) {
                    if (iv[i] != arg[i])
                        print_error("%s [max] index %zu: got %d, reference %ld\n", pc->name, i,
                                    iv[i], arg[i]);
                    assert_int_equal(iv[i], arg[i]);
                }
                free(iv);
            }
            free(y);
        }
        /* ty holds this kind's forward output (with indices for max). */
        const int variants = kind == CLCNN_POOL_MAX ? 2 : 1;
        for (int v = 0; v < variants; v++) {
            cl_mem use_ind = kind == CLCNN_POOL_MAX && v == 0 ? ind : NULL;
            float *first = NULL;
            for (int run = 0; run < 2; run++) {
                assert_ok(clcnn_tensor_fill(tdx, NAN));
                assert_ok(clcnn_pool_backward(test_dev, tx, ty, tdy, use_ind, &p, tdx));
                float *dx = test_download(tdx);
                if (run == 0) {
                    for (size_t i = 0; i < nx; i++) {
                        double bound = TOL_ULP * (double)(q.r * q.s + 8) * dxmag[i];
                        check_close(use_ind ? "backward (indices)" : "backward", pc->name, kn, i,
                                    dx[i], dxr[i], bound);
                    }
                    first = dx;
                } else {
                    if (memcmp(first, dx, nx * sizeof *dx) != 0)
                        print_error("%s [%s]: two backward runs differ\n", pc->name, kn);
                    assert_memory_equal(first, dx, nx * sizeof *dx);
                    free(dx);
                }
            }
            free(first);
        }
    }
    clReleaseMemObject(ind);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(tdx);
    free(x);
    free(dy);
    free(xd);
    free(dyd);
    free(yr);
    free(ymag);
    free(dxr);
    free(dxmag);
    free(arg);
}

static void test_sweep(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sweep_cases / sizeof sweep_cases[0]; i++)
        run_case(&sweep_cases[i], 100 + i);
}

/* ------------------------------------------------------------------------------------------ */
/* Finite differences                                                                         */

/* Gradient of L(x) = sum_o dy_o * pool(x)_o by central differences on the float64 forward,
 * against the device's backward. Inputs are a shuffled grid (all distinct, 2/n apart) so no
 * max window changes its argmax within +-h. */
static void check_fd(const pool_case *pc, clcnn_pool_kind kind, uint64_t seed)
{
    const clcnn_shape xs = {pc->n, pc->c, pc->h, pc->w};
    const clcnn_shape ys = ref_out_shape(pc);
    const size_t nx = xs.n * xs.c * xs.h * xs.w, ny = ys.n * ys.c * ys.h * ys.w;
    float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
    double *xd = malloc(nx * sizeof *xd), *yp = malloc(ny * sizeof *yp);
    double *ym = malloc(ny * sizeof *ym);
    size_t *perm = malloc(nx * sizeof *perm);
    assert_true(x && dy && xd && yp && ym && perm);
    test_rng rng;
    test_rng_seed(&rng, seed);
    for (size_t i = 0; i < nx; i++)
        perm[i] = i;
    for (size_t i = nx; i > 1; i--) {
        size_t j = (size_t)(test_rng_next(&rng) % i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < nx; i++) {
        /* (k + 0.5) / nx in (0, 1), negated for half: never zero, all distinct. */
        double v = ((double)perm[i] + 0.5) / (double)nx;
        x[i] = (float)((i % 2) ? -v : v);
        xd[i] = x[i];
    }
    test_rng_fill(&rng, dy, ny, -1.0f, 1.0f);
    const double h = 0.25 / (double)nx; /* an eighth of the grid spacing */

    clcnn_pool_params p = case_params(pc, kind);
    clcnn_tensor *tx = test_upload(xs, x), *tdy = test_upload(ys, dy), *ty = test_upload(ys, NULL),
                 *tdx = test_upload(xs, NULL);
    assert_ok(clcnn_pool_forward(test_dev, tx, &p, ty, NULL));
    assert_ok(clcnn_tensor_fill(tdx, NAN));
    assert_ok(clcnn_pool_backward(test_dev, tx, ty, tdy, NULL, &p, tdx));
    float *dx = test_download(tdx);
    for (size_t i = 0; i < nx; i++) {
        double save = xd[i], lp = 0, lm = 0;
        xd[i] = save + h;
        ref_forward(pc, kind, xd, yp, NULL, NULL);
        for (size_t o = 0; o < ny; o++)
            lp += dy[o] * yp[o];
        xd[i] = save - h;
        ref_forward(pc, kind, xd, ym, NULL, NULL);
        for (size_t o = 0; o < ny; o++)
            lm += dy[o] * ym[o];
        xd[i] = save;
        double fd = (lp - lm) / (2 * h);
        /* Central differences are exact for the piecewise-linear kinds and O(h^2) for L2; the
         * device's float32 gradient is within ~1e-6 relative. */
        double bound = 2e-5 * (1.0 + fabs(fd));
        if (!(fabs(dx[i] - fd) <= bound))
            print_error("fd %s [%s] x[%zu]: device %.9g, finite difference %.9g\n", pc->name,
                        clcnn_pool_kind_name(kind), i, (double)dx[i], fd);
        assert_true(fabs(dx[i] - fd) <= bound);
    }
    free(dx);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tdy);
    clcnn_tensor_release(tdx);
    free(x);
    free(dy);
    free(xd);
    free(yp);
    free(ym);
    free(perm);
}

static void test_finite_differences(void **state)
{
    (void)state;
    static const pool_case cases[] = {
        {"fd 2x2 s2", 1, 2, 6, 18, 2, 2, 2, 2, 0, 0, false, false},
        {"fd 3x3 s2 pad1", 2, 1, 7, 6, 3, 3, 2, 2, 1, 1, false, false},
        {"fd 3x3 s1 overlap", 1, 2, 5, 6, 3, 3, 1, 1, 0, 0, false, false},
        {"fd asym 3x2 s(1,2) pad(1,1) ceil", 1, 1, 7, 8, 3, 2, 1, 2, 1, 1, true, false},
        {"fd global", 2, 2, 4, 5, 0, 0, 0, 0, 0, 0, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int k = 0; k < CLCNN_POOL_KIND_COUNT; k++)
            check_fd(&cases[i], (clcnn_pool_kind)k, 500 + 10 * i + (size_t)k);
}

/* ------------------------------------------------------------------------------------------ */
/* Ties, padding, shapes and refusals                                                         */

/* Equal values: the index is the first maximum in row-major window order, and the backward
 * (from indices or recomputed) sends the gradient there, on the vector and generic paths. */
static void test_max_ties(void **state)
{
    (void)state;
    static const pool_case cases[] = {
        {"ties 2x2 s2", 1, 2, 4, 32, 2, 2, 2, 2, 0, 0, false, false},
        {"ties 3x3 s1 pad1", 1, 2, 5, 7, 3, 3, 1, 1, 1, 1, false, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const pool_case *pc = &cases[ci];
        const clcnn_shape xs = {pc->n, pc->c, pc->h, pc->w}, ys = ref_out_shape(pc);
        const size_t nx = pc->n * pc->c * pc->h * pc->w, ny = ys.n * ys.c * ys.h * ys.w;
        float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
        double *xd = malloc(nx * sizeof *xd), *dyd = malloc(ny * sizeof *dyd);
        double *dxr = malloc(nx * sizeof *dxr), *mag = malloc(nx * sizeof *mag);
        long *arg = malloc(ny * sizeof *arg);
        assert_true(x && dy && xd && dyd && dxr && mag && arg);
        test_rng rng;
        test_rng_seed(&rng, 700 + ci);
        static const float levels[] = {-0.5f, 0.25f, 0.75f};
        for (size_t i = 0; i < nx; i++) {
            x[i] = levels[test_rng_next(&rng) % 3];
            xd[i] = x[i];
        }
        test_rng_fill(&rng, dy, ny, -1.0f, 1.0f);
        for (size_t i = 0; i < ny; i++)
            dyd[i] = dy[i];
        clcnn_pool_params p = case_params(pc, CLCNN_POOL_MAX);
        ref_forward(pc, CLCNN_POOL_MAX, xd, NULL, arg, NULL);
        ref_backward(pc, CLCNN_POOL_MAX, xd, dyd, dxr, mag);
        clcnn_tensor *tx = test_upload(xs, x), *tdy = test_upload(ys, dy),
                     *ty = test_upload(ys, NULL), *tdx = test_upload(xs, NULL);
        cl_mem ind = new_indices(ny);
        poison_indices(ind, ny);
        assert_ok(clcnn_pool_forward(test_dev, tx, &p, ty, ind));
        cl_int *iv = read_indices(ind, ny);
        for (size_t i = 0; i < ny; i++)
            assert_int_equal(iv[i], arg[i]);
        for (int v = 0; v < 2; v++) {
            assert_ok(clcnn_tensor_fill(tdx, NAN));
            assert_ok(
                clcnn_pool_backward(test_dev, v ? tx : NULL, NULL, tdy, v ? NULL : ind, &p, tdx));
            float *dx = test_download(tdx);
            for (size_t i = 0; i < nx; i++)
                check_close("ties backward", pc->name, v ? "recomputed" : "indices", i, dx[i],
                            dxr[i], TOL_ULP * 16 * mag[i]);
            free(dx);
        }
        free(iv);
        clReleaseMemObject(ind);
        clcnn_tensor_release(tx);
        clcnn_tensor_release(ty);
        clcnn_tensor_release(tdy);
        clcnn_tensor_release(tdx);
        free(x);
        free(dy);
        free(xd);
        free(dyd);
        free(dxr);
        free(mag);
        free(arg);
    }
}

/* Padding is -inf for max: an all-negative input never pools to 0. */
static void test_max_padding_never_selected(void **state)
{
    (void)state;
    const clcnn_shape xs = {1, 1, 5, 6};
    float x[30];
    for (int i = 0; i < 30; i++)
        x[i] = -1.0f - (float)i;
    clcnn_pool_params p = clcnn_pool_params_default(CLCNN_POOL_MAX);
    p.window_h = p.window_w = 3;
    p.pad_h = p.pad_w = 1;
    p.stride_h = p.stride_w = 2;
    clcnn_shape ys;
    assert_ok(clcnn_pool_output_shape(xs, &p, &ys));
    clcnn_tensor *tx = test_upload(xs, x), *ty = test_upload(ys, NULL);
    assert_ok(clcnn_pool_forward(test_dev, tx, &p, ty, NULL));
    float *y = test_download(ty);
    for (size_t i = 0; i < clcnn_tensor_count(ty); i++)
        assert_true(y[i] <= -1.0f);
    assert_true(y[0] == -1.0f);
    free(y);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
}

static void test_names_and_defaults(void **state)
{
    (void)state;
    clcnn_pool_params p = clcnn_pool_params_default(CLCNN_POOL_L2);
    assert_int_equal(p.kind, CLCNN_POOL_L2);
    assert_int_equal(p.window_h, 2);
    assert_int_equal(p.window_w, 2);
    assert_int_equal(p.stride_h, 2);
    assert_int_equal(p.stride_w, 2);
    assert_int_equal(p.pad_h + p.pad_w, 0);
    assert_false(p.ceil_mode);
    assert_false(p.global);
    for (int k = 0; k < CLCNN_POOL_KIND_COUNT; k++) {
        clcnn_pool_kind parsed;
        const char *name = clcnn_pool_kind_name((clcnn_pool_kind)k);
        assert_non_null(name);
        assert_ok(clcnn_pool_kind_parse(name, &parsed));
        assert_int_equal(parsed, k);
    }
    assert_string_equal(clcnn_pool_kind_name(CLCNN_POOL_AVG_EXCLUDE_PAD), "avg-exclude-pad");
    assert_null(clcnn_pool_kind_name(CLCNN_POOL_KIND_COUNT));
    clcnn_pool_kind kind = CLCNN_POOL_AVG;
    assert_status_msg(clcnn_pool_kind_parse("mean", &kind), CLCNN_STATUS_INVALID_ARG, "'mean'");
    assert_int_equal(kind, CLCNN_POOL_AVG);
    assert_int_equal(clcnn_pool_kind_parse(NULL, &kind), CLCNN_STATUS_INVALID_ARG);
}

/* The 2x2 stride-2 kernels' default width (the tuning space's default point): the one of 8, 4
 * and 2 outputs per work-item that leaves the fewest of a row's outputs to the scalar edge path,
 * the larger on a tie (8 where no vector fits); 8 for other windows. */
static void test_default_vector_width(void **state)
{
    (void)state;
    static const struct {
        size_t w;
        int vw;
    } cases[] = {{224, 8}, {112, 8}, {56, 4}, {28, 2}, {14, 2},
                 {24, 4},  {45, 2},  {18, 8}, {33, 8}, {3, 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clcnn_pool_params p = clcnn_pool_params_default(CLCNN_POOL_MAX);
        clcnn__pool_tuning tuning;
        clcnn__tune_space space;
        assert_ok(
            clcnn__pool_space(test_dev, (clcnn_shape){2, 3, 6, cases[i].w}, &p, &tuning, &space));
        if (space.defaults[0] != cases[i].vw)
            print_error("width %zu: default POOL_VW %d, expected %d\n", cases[i].w,
                        space.defaults[0], cases[i].vw);
        assert_int_equal(space.defaults[0], cases[i].vw);
        assert_int_equal(space.defaults[1], 0);
        assert_true(space.valid(space.defaults, space.user));
    }
    clcnn_pool_params p3 = clcnn_pool_params_default(CLCNN_POOL_MAX);
    p3.window_h = p3.window_w = 3;
    clcnn__pool_tuning tuning;
    clcnn__tune_space space;
    assert_ok(clcnn__pool_space(test_dev, (clcnn_shape){2, 3, 28, 28}, &p3, &tuning, &space));
    assert_int_equal(space.defaults[0], 8);
}

static void test_output_shape_formula(void **state)
{
    (void)state;
    static const struct {
        size_t h, r, sh, ph;
        bool ceil_mode;
        size_t want;
    } rows[] = {
        {224, 2, 2, 0, false, 112}, {5, 2, 2, 0, false, 2}, {5, 2, 2, 0, true, 3},
        {6, 3, 2, 1, true, 4},      {5, 2, 2, 1, true, 3}, /* last window would start in padding */
        {7, 3, 2, 1, false, 4},     {7, 3, 1, 0, false, 5}, {3, 3, 3, 0, true, 1},
        {8, 4, 3, 1, true, 3},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        clcnn_pool_params p = clcnn_pool_params_default(CLCNN_POOL_MAX);
        p.window_h = rows[i].r;
        p.stride_h = rows[i].sh;
        p.pad_h = rows[i].ph;
        p.window_w = p.stride_w = 1;
        p.ceil_mode = rows[i].ceil_mode;
        clcnn_shape ys = {0, 0, 0, 0};
        assert_ok(clcnn_pool_output_shape((clcnn_shape){2, 3, rows[i].h, 4}, &p, &ys));
        if (ys.h != rows[i].want)
            print_error("row %zu: Ho %zu, want %zu\n", i, ys.h, rows[i].want);
        assert_int_equal(ys.h, rows[i].want);
        assert_int_equal(ys.w, 4);
        assert_int_equal(ys.n, 2);
        assert_int_equal(ys.c, 3);
    }
    clcnn_pool_params g = clcnn_pool_params_default(CLCNN_POOL_AVG);
    g.global = true;
    g.window_h = 0; /* ignored */
    clcnn_shape ys;
    assert_ok(clcnn_pool_output_shape((clcnn_shape){2, 5, 7, 9}, &g, &ys));
    assert_int_equal(ys.h, 1);
    assert_int_equal(ys.w, 1);
    assert_int_equal(ys.c, 5);
}

static void test_refusals(void **state)
{
    (void)state;
    const clcnn_shape xs = {2, 3, 8, 9};
    clcnn_pool_params p = clcnn_pool_params_default(CLCNN_POOL_MAX);
    clcnn_shape ys = {9, 9, 9, 9};
    clcnn_pool_params bad = p;
    bad.pad_h = 2;
    assert_status_msg(clcnn_pool_output_shape(xs, &bad, &ys), CLCNN_STATUS_BAD_SHAPE,
                      "padding 2x0 must be smaller than the window 2x2");
    bad = p;
    bad.window_h = bad.window_w = 10;
    assert_status_msg(clcnn_pool_output_shape(xs, &bad, &ys), CLCNN_STATUS_BAD_SHAPE,
                      "input 8x9 padded by 0,0 is smaller than the window 10x10");
    bad = p;
    bad.stride_w = 0;
    assert_status_msg(clcnn_pool_output_shape(xs, &bad, &ys), CLCNN_STATUS_INVALID_ARG,
                      "stride 2x0");
    bad = p;
    bad.kind = (clcnn_pool_kind)9;
    assert_status_msg(clcnn_pool_output_shape(xs, &bad, &ys), CLCNN_STATUS_INVALID_ARG,
                      "unknown kind 9");
    assert_int_equal(clcnn_pool_output_shape(xs, NULL, &ys), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(ys.n, 9); /* never written on failure */

    /* Wrong output / gradient shapes: refused, outputs untouched (still NaN). */
    float x[2 * 3 * 8 * 9];
    test_rng rng;
    test_rng_seed(&rng, 9);
    test_rng_fill(&rng, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
    clcnn_tensor *tx = test_upload(xs, x), *ywrong = test_upload((clcnn_shape){2, 3, 4, 5}, NULL);
    clcnn_tensor *ty = test_upload((clcnn_shape){2, 3, 4, 4}, NULL), *tdx = test_upload(xs, NULL);
    clcnn_tensor *dxwrong = test_upload((clcnn_shape){2, 3, 8, 8}, NULL);
    assert_ok(clcnn_tensor_fill(ywrong, NAN));
    assert_ok(clcnn_tensor_fill(ty, NAN));
    assert_ok(clcnn_tensor_fill(tdx, NAN));
    assert_status_msg(clcnn_pool_forward(test_dev, tx, &p, ywrong, NULL), CLCNN_STATUS_BAD_SHAPE,
                      "output is (2,3,4,5) but must be (2,3,4,4)");
    bad = p;
    bad.pad_w = 3;
    assert_status_msg(clcnn_pool_forward(test_dev, tx, &bad, ty, NULL), CLCNN_STATUS_BAD_SHAPE,
                      "padding 0x3");
    /* Backward: dy of the wrong shape, x missing for recomputing max, y missing for L2. */
    assert_status_msg(clcnn_pool_backward(test_dev, tx, NULL, ywrong, NULL, &p, tdx),
                      CLCNN_STATUS_BAD_SHAPE, "output gradient dy is (2,3,4,5) but must be");
    assert_status_msg(clcnn_pool_backward(test_dev, NULL, NULL, ty, NULL, &p, tdx),
                      CLCNN_STATUS_INVALID_ARG, "NULL input x");
    assert_status_msg(clcnn_pool_backward(test_dev, dxwrong, NULL, ty, NULL, &p, tdx),
                      CLCNN_STATUS_BAD_SHAPE, "input x is (2,3,8,8) but must be (2,3,8,9)");
    clcnn_pool_params l2 = clcnn_pool_params_default(CLCNN_POOL_L2);
    assert_status_msg(clcnn_pool_backward(test_dev, tx, NULL, ty, NULL, &l2, tdx),
                      CLCNN_STATUS_INVALID_ARG, "NULL output y");
    assert_status_msg(clcnn_pool_backward(test_dev, tx, ywrong, ty, NULL, &l2, tdx),
                      CLCNN_STATUS_BAD_SHAPE, "output y is (2,3,4,5)");
    /* dx of a shape whose output does not match dy. */
    assert_status_msg(
        clcnn_pool_backward(
            test_dev, NULL, NULL, ty, NULL,
            &(clcnn_pool_params){
                .kind = CLCNN_POOL_AVG, .window_h = 2, .window_w = 2, .stride_h = 1, .stride_w = 1},
            tdx),
        CLCNN_STATUS_BAD_SHAPE, "output gradient dy is (2,3,4,4) but must be (2,3,7,8)");
    /* Indices: only for max, and large enough. */
    cl_mem small = new_indices(10), ind = new_indices((size_t)2 * 3 * 4 * 4);
    clcnn_pool_params avg = clcnn_pool_params_default(CLCNN_POOL_AVG);
    assert_status_msg(clcnn_pool_forward(test_dev, tx, &avg, ty, ind), CLCNN_STATUS_INVALID_ARG,
                      "indices are only for max pooling, not avg");
    assert_status_msg(clcnn_pool_forward(test_dev, tx, &p, ty, small), CLCNN_STATUS_INVALID_ARG,
                      "indices buffer has 40 bytes, output (2,3,4,4) needs 384");
    assert_status_msg(clcnn_pool_backward(test_dev, NULL, NULL, ty, small, &p, tdx),
                      CLCNN_STATUS_INVALID_ARG, "indices buffer has 40 bytes");
    assert_status_msg(clcnn_pool_forward(test_dev, tx, &p, tx, NULL), CLCNN_STATUS_BAD_SHAPE,
                      "output is (2,3,8,9)");
    assert_status_msg(clcnn_pool_backward(test_dev, tx, NULL, ty, NULL, &p, tx),
                      CLCNN_STATUS_INVALID_ARG, "aliases");
    assert_int_equal(clcnn_pool_forward(NULL, tx, &p, ty, NULL), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_pool_forward(test_dev, tx, NULL, ty, NULL), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_pool_forward(test_dev, tx, &p, NULL, NULL), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_pool_backward(test_dev, tx, NULL, NULL, NULL, &p, tdx),
                     CLCNN_STATUS_INVALID_ARG);
    /* Nothing was written. */
    clcnn_tensor *untouched[] = {ywrong, ty, tdx};
    for (size_t t = 0; t < 3; t++) {
        float *v = test_download(untouched[t]);
        for (size_t i = 0; i < clcnn_tensor_count(untouched[t]); i++)
            assert_true(isnan(v[i]));
        free(v);
    }
    clReleaseMemObject(small);
    clReleaseMemObject(ind);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ywrong);
    clcnn_tensor_release(ty);
    clcnn_tensor_release(tdx);
    clcnn_tensor_release(dxwrong);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_default_vector_width),
        cmocka_unit_test(test_output_shape_formula),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_max_ties),
        cmocka_unit_test(test_max_padding_never_selected),
    };
    return cmocka_run_group_tests_name("pool", tests, test_group_setup, test_group_teardown);
}
