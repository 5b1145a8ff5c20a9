/* 2-D convolution backward (data, weights, bias): every solver of each pass against float64
 * references written here on a sweep weighted toward strided and padded shapes, central finite
 * differences of L = sum(dy * y) in double, bit-identical repeat runs, and the refusals
 * (BAD_SHAPE naming the shapes, outputs left untouched). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv2d_bwd_impl.h"
#include "testutil.h"

#define ALGO_ELEM_(name, token, id) CLCNN_CONV_ALGO_##name,
static const clcnn_conv_algo algos[] = {CLCNN_CONV_ALGO_LIST(ALGO_ELEM_)};
#undef ALGO_ELEM_
#define N_ALGOS (sizeof algos / sizeof algos[0])

/* Per-element bound: |got - ref| <= (terms + 8) * 2^-23 * sum|terms|. A float32 sum of n terms
 * in any order (fused multiply-adds, lane splits, GEMM tiles) is within about n * 2^-24 of the
 * sum of magnitudes (Higham, recursive summation); the factor 2 and the 8 cover the lane sums
 * and the chunk adds. */
#define ELEM_UNIT (1.0 / 8388608.0)
/* Winograd's transforms round more than a plain sum: the Winograd rows of backward data (the
 * forward solvers on the rotated problem) get the forward tests' per-element bound,
 * |got - ref| <= 1e-4 * sum|terms| (test_conv2d.c, test_winograd.c). */
#define WINOGRAD_ELEM_REL 1e-4

enum { F_FLIP = 1, F_RELU = 2 };

typedef struct bwd_case {
    const char *name;
    size_t n, c, h, w;
    size_t k, r, s;
    size_t pad_h, pad_w;
    size_t stride_h, stride_w;
    size_t dil_h, dil_w;
    size_t groups;
    unsigned flags;
} bwd_case;

typedef struct problem {
    const char *name;
    clcnn_shape xs, ws, ys;
    clcnn_conv_params p;
    size_t nx, nw, ny;
    float *x, *w, *dy;
    double *dx, *dw, *db;             /* references */
    double *dx_mag, *dw_mag, *db_mag; /* sums of |terms| */
    size_t dx_terms, dw_terms, db_terms;
} problem;

static clcnn_conv_params case_params(const bwd_case *cc)
{
    clcnn_conv_params p = clcnn_conv_params_default();
    p.pad_h = cc->pad_h;
    p.pad_w = cc->pad_w;
    p.stride_h = cc->stride_h;
    p.stride_w = cc->stride_w;
    p.dilation_h = cc->dil_h;
    p.dilation_w = cc->dil_w;
    p.groups = cc->groups;
    p.mode = (cc->flags & F_FLIP) ? CLCNN_CONV_CONVOLUTION : CLCNN_CONV_CROSS_CORRELATION;
    p.relu = (cc->flags & F_RELU) != 0;
    return p;
}

/* Calls f(ctx, x index, w index, y index) for every product of the forward convolution, in the
 * forward's definition: y[n,k,oh,ow] += x[n, g*Cg+c, oh*u - p + r*d, ...] * w[k, c, r', s']. */
typedef void (*tap_fn)(void *ctx, size_t xi, size_t wi, size_t yi);

static void for_each_tap(const problem *pb, tap_fn f, void *ctx)
{
    const clcnn_shape xs = pb->xs, ws = pb->ws, ys = pb->ys;
    const clcnn_conv_params *p = &pb->p;
    const size_t cg = xs.c / p->groups, kg = ws.n / p->groups;
    for (size_t n = 0; n < ys.n; n++)
        for (size_t k = 0; k < ys.c; k++)
            for (size_t oh = 0; oh < ys.h; oh++)
                for (size_t ow = 0; ow < ys.w; ow++) {
                    const size_t g = k / kg;
                    const size_t yi = ((n * ys.c + k) * ys.h + oh) * ys.w + ow;
                    for (size_t c = 0; c < cg; c++)
                        for (size_t r = 0; r < ws.h; r++)
                            for (size_t s = 0; s < ws.w; s++) {
                                long ih =
                                    (long)(oh * p->stride_h + r * p->dilation_h) - (long)p->pad_h;
                                long iw =
                                    (long)(ow * p->stride_w + s * p->dilation_w) - (long)p->pad_w;
                                if (ih < 0 || iw < 0 || ih >= (long)xs.h || iw >= (long)xs.w)
                                    continue;
                                size_t rr = r, ss = s;
                                if (p->mode == CLCNN_CONV_CONVOLUTION) {
                                    rr = ws.h - 1 - r;
                                    ss = ws.w - 1 - s;
                                }
                                size_t xi = ((n * xs.c + g * cg + c) * xs.h + (size_t)ih) * xs.w +
                                            (size_t)iw;
                                size_t wi = ((k * cg + c) * ws.h + rr) * ws.w + ss;
                                f(ctx, xi, wi, yi);
                            }
                }
}

typedef struct ref_acc {
    problem *pb;
    size_t *xcount, *wcount;
} ref_acc;

static void ref_tap(void *ctx, size_t xi, size_t wi, size_t yi)
{
    ref_acc *a = ctx;
    problem *pb = a->pb;
    const double dy = pb->dy[yi], x = pb->x[xi], w = pb->w[wi];
    pb->dx[xi] += dy * w;
    pb->dx_mag[xi] += fabs(dy * w);
    pb->dw[wi] += dy * x;
    pb->dw_mag[wi] += fabs(dy * x);
    a->xcount[xi]++;
    a->wcount[wi]++;
}

static size_t max_of(const size_t *v, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* The float64 references of all three gradients. */
static void reference_bwd(problem *pb)
{
    memset(pb->dx, 0, pb->nx * sizeof *pb->dx);
    memset(pb->dx_mag, 0, pb->nx * sizeof *pb->dx_mag);
    memset(pb->dw, 0, pb->nw * sizeof *pb->dw);
    memset(pb->dw_mag, 0, pb->nw * sizeof *pb->dw_mag);
    size_t *xc = calloc(pb->nx, sizeof *xc), *wc = calloc(pb->nw, sizeof *wc);
    assert_true(xc && wc);
    ref_acc a = {pb, xc, wc};
    for_each_tap(pb, ref_tap, &a);
    pb->dx_terms = max_of(xc, pb->nx);
    pb->dw_terms = max_of(wc, pb->nw);
    free(xc);
    free(wc);
    const clcnn_shape ys = pb->ys;
    for (size_t k = 0; k < ys.c; k++) {
        double sum = 0, mag = 0;
        for (size_t n = 0; n < ys.n; n++)
            for (size_t i = 0; i < ys.h * ys.w; i++) {
                double v = pb->dy[(n * ys.c + k) * ys.h * ys.w + i];
                sum += v;
                mag += fabs(v);
            }
        pb->db[k] = sum;
        pb->db_mag[k] = mag;
    }
    pb->db_terms = ys.n * ys.h * ys.w;
}

static void problem_init(problem *pb, const bwd_case *cc, uint64_t seed)
{
    memset(pb, 0, sizeof *pb);
    pb->name = cc->name;
    pb->xs = (clcnn_shape){cc->n, cc->c, cc->h, cc->w};
    pb->ws = (clcnn_shape){cc->k, cc->c / cc->groups, cc->r, cc->s};
    pb->p = case_params(cc);
    assert_ok(clcnn_conv2d_output_shape(pb->xs, pb->ws, &pb->p, &pb->ys));
    pb->nx = pb->xs.n * pb->xs.c * pb->xs.h * pb->xs.w;
    pb->nw = pb->ws.n * pb->ws.c * pb->ws.h * pb->ws.w;
    pb->ny = pb->ys.n * pb->ys.c * pb->ys.h * pb->ys.w;
    /* Shapes are never empty here (clcnn_conv2d_output_shape checked them); + 1 keeps the
     * analyzer from seeing a zero-byte allocation. */
    pb->x = malloc((pb->nx + 1) * sizeof *pb->x);
    pb->w = malloc((pb->nw + 1) * sizeof *pb->w);
    pb->dy = malloc((pb->ny + 1) * sizeof *pb->dy);
    pb->dx = malloc((pb->nx + 1) * sizeof *pb->dx);
    pb->dx_mag = malloc((pb->nx + 1) * sizeof *pb->dx_mag);
    pb->dw = malloc((pb->nw + 1) * sizeof *pb->dw);
    pb->dw_mag = malloc((pb->nw + 1) * sizeof *pb->dw_mag);
    pb->db = malloc((pb->ys.c + 1) * sizeof *pb->db);
    pb->db_mag = malloc((pb->ys.c + 1) * sizeof *pb->db_mag);
    assert_true(pb->x && pb->w && pb->dy && pb->dx && pb->dx_mag && pb->dw && pb->dw_mag &&
                pb->db && pb->db_mag);
    test_rng rng;
    test_rng_seed(&rng, seed);
    test_rng_fill(&rng, pb->x, pb->nx, -1.0f, 1.0f);
    test_rng_fill(&rng, pb->w, pb->nw, -1.0f, 1.0f);
    test_rng_fill(&rng, pb->dy, pb->ny, -1.0f, 1.0f);
    reference_bwd(pb);
}

static void problem_free(problem *pb)
{
    free(pb->x);
    free(pb->w);
    free(pb->dy);
    free(pb->dx);
    free(pb->dx_mag);
    free(pb->dw);
    free(pb->dw_mag);
    free(pb->db);
    free(pb->db_mag);
}

/* ------------------------------------------------------------------------------------------ */
/* Running a pass                                                                             */

static clcnn_tensor *tensor_from(clcnn_shape s, const float *data, size_t n)
{
    clcnn_tensor *t;
    assert_ok(clcnn_tensor_create(test_dev, s, &t));
    assert_ok(clcnn_tensor_upload(t, data, n));
    return t;
}

static void expect_unchanged(const clcnn_tensor *t, const float *want, size_t n)
{
    float *back = malloc(n * sizeof *back);
    assert_non_null(back);
    assert_ok(clcnn_tensor_download(t, back, n));
    assert_memory_equal(back, want, n * sizeof *back);
    free(back);
}

/* Runs [pass] with [algo] on pb (params [p]) into host [out], the output poisoned with NaN
 * first; checks that the inputs are not modified. */
static void run_pass(const problem *pb, clcnn_conv_pass pass, clcnn_conv_algo algo,
                     const clcnn_conv_params *p, float *out)
{
    clcnn_tensor *x = tensor_from(pb->xs, pb->x, pb->nx);
    clcnn_tensor *w = tensor_from(pb->ws, pb->w, pb->nw);
    clcnn_tensor *dy = tensor_from(pb->ys, pb->dy, pb->ny);
    clcnn_tensor *o = pass == CLCNN_CONV_PASS_BWD_DATA ? x : w;
    const size_t n = pass == CLCNN_CONV_PASS_BWD_DATA ? pb->nx : pb->nw;
    assert_ok(clcnn_tensor_fill(o, NAN));
    clcnn_status s = pass == CLCNN_CONV_PASS_BWD_DATA
                         ? clcnn_conv2d_backward_data(test_dev, dy, w, p, algo, NULL, 0, x)
                         : clcnn_conv2d_backward_weights(test_dev, x, dy, p, algo, NULL, 0, w);
    if (s != CLCNN_OK)
        print_error("%s: %s with %s -> %s: %s\n", pb->name, clcnn_conv_pass_name(pass),
                    clcnn_conv_algo_name(algo), clcnn_status_name(s), clcnn_last_error());
    assert_int_equal(s, CLCNN_OK);
    assert_ok(clcnn_tensor_download(o, out, n));
    expect_unchanged(dy, pb->dy, pb->ny);
    if (pass == CLCNN_CONV_PASS_BWD_DATA)
        expect_unchanged(w, pb->w, pb->nw);
    else
        expect_unchanged(x, pb->x, pb->nx);
    clcnn_tensor_release(x);
    clcnn_tensor_release(w);
    clcnn_tensor_release(dy);
}

static void run_bias(const problem *pb, float *out)
{
    clcnn_tensor *dy = tensor_from(pb->ys, pb->dy, pb->ny), *db;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, pb->ys.c}, &db));
    assert_ok(clcnn_tensor_fill(db, NAN));
    assert_ok(clcnn_conv2d_backward_bias(test_dev, dy, db));
    assert_ok(clcnn_tensor_download(db, out, pb->ys.c));
    expect_unchanged(dy, pb->dy, pb->ny);
    clcnn_tensor_release(dy);
    clcnn_tensor_release(db);
}

/* Checks [got] (n floats) against [ref]: all finite (the NaN poison catches unwritten
 * elements), each within the element bound, NMSE within [tol]. */
static void check_grad(const char *name, const char *what, const char *algo, const float *got,
                       const double *ref, const double *mag, size_t terms, size_t n, double tol,
                       double elem_floor)
{
    double err_ss = 0, ref_ss = 0;
    size_t bad = 0;
    const double unit = fmax(((double)terms + 8.0) * ELEM_UNIT, elem_floor);
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - ref[i];
        if (!isfinite(got[i]) || fabs(e) > unit * mag[i]) {
            if (bad++ < 5)
                print_error("%s [%s %s]: element %zu = %.9g, expected %.9g (bound %.3g)\n", name,
                            what, algo, i, (double)got[i], ref[i], unit * mag[i]);
            continue;
        }
        err_ss += e * e;
        ref_ss += ref[i] * ref[i];
    }
    double nmse = ref_ss > 0 ? err_ss / ref_ss : (err_ss > 0 ? INFINITY : 0);
    if (nmse > tol)
        print_error("%s [%s %s]: NMSE %.3g > tolerance %.3g\n", name, what, algo, nmse, tol);
    assert_int_equal(bad, 0);
    assert_true(nmse <= tol);
}

static bool is_solver(clcnn_conv_algo algo)
{
    return (int)algo >= 0;
}

/* The NMSE bound of [algo] for [pass]; AUTO gets the loosest of the pass's solvers. */
static double pass_tolerance(clcnn_conv_pass pass, clcnn_conv_algo algo)
{
    if (is_solver(algo))
        return clcnn_conv_pass_tolerance(pass, algo);
    double tol = 0;
    for (size_t i = 0; i < N_ALGOS; i++)
        if (clcnn_conv_pass_tolerance(pass, algos[i]) > tol)
            tol = clcnn_conv_pass_tolerance(pass, algos[i]);
    return tol;
}

/* Whether to run algo for pass on pb; direct and AUTO must take every problem. */
static bool check_applicable(const problem *pb, clcnn_conv_pass pass, clcnn_conv_algo algo)
{
    const char *reason = NULL;
    bool ok = clcnn_conv2d_pass_applicable(test_dev, pass, pb->xs, pb->ws, &pb->p, algo, &reason);
    if (algo == CLCNN_CONV_ALGO_DIRECT || algo == CLCNN_CONV_ALGO_AUTO) {
        if (!ok)
            print_error("%s: %s %s not applicable: %s\n", pb->name, clcnn_conv_pass_name(pass),
                        clcnn_conv_algo_name(algo), reason ? reason : "?");
        assert_true(ok);
    }
    if (!ok) {
        assert_non_null(reason);
        assert_true(clcnn_conv_pass_tolerance(pass, algo) < 0 || is_solver(algo));
    } else if (is_solver(algo)) {
        size_t bytes = (size_t)-1;
        assert_ok(
            clcnn_conv2d_pass_workspace_size(test_dev, pass, pb->xs, pb->ws, &pb->p, algo, &bytes));
        assert_true(bytes != (size_t)-1);
        assert_true(clcnn_conv_pass_tolerance(pass, algo) > 0);
    }
    return ok;
}

/* Every applicable algorithm of both passes, twice each (bit-identical), plus the bias. */
static void check_problem(const problem *pb)
{
    const size_t most = pb->nx > pb->nw ? pb->nx : pb->nw;
    float *a = malloc(most * sizeof *a), *b = malloc(most * sizeof *b);
    assert_true(a && b);
    static const clcnn_conv_pass passes[] = {CLCNN_CONV_PASS_BWD_DATA, CLCNN_CONV_PASS_BWD_WEIGHTS};
    for (size_t pi = 0; pi < 2; pi++) {
        const clcnn_conv_pass pass = passes[pi];
        const bool data = pass == CLCNN_CONV_PASS_BWD_DATA;
        for (size_t ai = 0; ai < N_ALGOS; ai++) {
            if (!check_applicable(pb, pass, algos[ai]))
                continue;
            const char *an = clcnn_conv_algo_name(algos[ai]);
            clcnn_conv_algo used = algos[ai];
            if (used == CLCNN_CONV_ALGO_AUTO)
                assert_ok(
                    clcnn_conv2d_pass_auto_algo(test_dev, pass, pb->xs, pb->ws, &pb->p, &used));
            const bool winograd = used == CLCNN_CONV_ALGO_WINOGRAD2 ||
                                  used == CLCNN_CONV_ALGO_WINOGRAD4 ||
                                  used == CLCNN_CONV_ALGO_WINOGRAD4_SPLIT;
            run_pass(pb, pass, algos[ai], &pb->p, a);
            check_grad(pb->name, clcnn_conv_pass_name(pass), an, a, data ? pb->dx : pb->dw,
                       data ? pb->dx_mag : pb->dw_mag, data ? pb->dx_terms : pb->dw_terms,
                       data ? pb->nx : pb->nw, pass_tolerance(pass, algos[ai]),
                       winograd ? WINOGRAD_ELEM_REL : 0.0);
            run_pass(pb, pass, algos[ai], &pb->p, b);
            if (memcmp(a, b, (data ? pb->nx : pb->nw) * sizeof *a) != 0)
                print_error("%s [%s %s]: two runs differ\n", pb->name, clcnn_conv_pass_name(pass),
                            an);
            assert_memory_equal(a, b, (data ? pb->nx : pb->nw) * sizeof *a);
        }
    }
    run_bias(pb, a);
    check_grad(pb->name, "bias", "-", a, pb->db, pb->db_mag, pb->db_terms, pb->ys.c, 1e-10, 0.0);
    run_bias(pb, b);
    assert_memory_equal(a, b, pb->ys.c * sizeof *a);
    free(a);
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* The sweep: strided and padded cases first and most                                         */

/* name, N C H W, K R S, pad h w, stride h w, dilation h w, groups, flags */
static const bwd_case sweep_cases[] = {
    {"3x3 stride2 pad1 8x8", 1, 5, 8, 8, 12, 3, 3, 1, 1, 2, 2, 1, 1, 1, 0},
    {"3x3 stride2 pad1 odd 9x11", 2, 3, 9, 11, 4, 3, 3, 1, 1, 2, 2, 1, 1, 1, 0},
    {"3x3 stride2 pad0 W41", 1, 3, 6, 41, 5, 3, 3, 0, 0, 2, 2, 1, 1, 1, 0},
    {"3x3 stride3 pad2", 2, 3, 13, 14, 4, 3, 3, 2, 2, 3, 3, 1, 1, 1, 0},
    {"3x3 stride3 pad0 (uncovered columns)", 1, 2, 11, 13, 3, 2, 2, 0, 0, 3, 3, 1, 1, 1, 0},
    {"1x1 stride2 (gaps)", 2, 4, 9, 10, 5, 1, 1, 0, 0, 2, 2, 1, 1, 1, 0},
    {"1x1 stride3", 2, 4, 10, 11, 5, 1, 1, 0, 0, 3, 3, 1, 1, 1, 0},
    {"4x4 stride2 pad1", 1, 3, 10, 12, 4, 4, 4, 1, 1, 2, 2, 1, 1, 1, 0},
    {"5x5 stride2 pad2", 2, 2, 11, 13, 3, 5, 5, 2, 2, 2, 2, 1, 1, 1, 0},
    {"7x7 stride2 pad3", 1, 3, 23, 23, 8, 7, 7, 3, 3, 2, 2, 1, 1, 1, 0},
    {"11x11 stride4 pad2", 1, 3, 35, 35, 6, 11, 11, 2, 2, 4, 4, 1, 1, 1, 0},
    {"3x3 stride(2,1) pad(1,0)", 1, 3, 12, 13, 4, 3, 3, 1, 0, 2, 1, 1, 1, 1, 0},
    {"3x3 stride(1,3) pad(0,2)", 2, 2, 9, 17, 3, 3, 3, 0, 2, 1, 3, 1, 1, 1, 0},
    {"3x5 pad(0,2)", 1, 3, 9, 10, 4, 3, 5, 0, 2, 1, 1, 1, 1, 1, 0},
    {"5x3 pad(2,0) stride(3,2)", 1, 3, 14, 9, 4, 5, 3, 2, 0, 3, 2, 1, 1, 1, 0},
    {"3x3 pad1 W13", 1, 3, 13, 13, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"3x3 pad2 (larger than half)", 1, 2, 7, 9, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},
    {"3x3 pad0 N3", 3, 4, 11, 17, 5, 3, 3, 0, 0, 1, 1, 1, 1, 1, 0},
    {"3x3 N2 C16 W31", 2, 16, 9, 31, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"5x5 pad2 9x31 K7", 1, 2, 9, 31, 7, 5, 5, 2, 2, 1, 1, 1, 1, 1, 0},
    {"1x1", 1, 3, 8, 8, 4, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0},
    {"1x1 C20 K9", 1, 20, 7, 7, 9, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0},
    {"1x1 pad2 (zero borders)", 1, 2, 4, 4, 3, 1, 1, 2, 2, 1, 1, 1, 1, 1, 0},
    {"dilation2 pad2", 1, 3, 13, 13, 4, 3, 3, 2, 2, 1, 1, 2, 2, 1, 0},
    {"dilation(2,1) pad(0,1)", 1, 2, 11, 9, 3, 3, 3, 0, 1, 1, 1, 2, 1, 1, 0},
    {"dilation3 stride2", 1, 2, 17, 19, 5, 3, 3, 1, 2, 2, 2, 3, 3, 1, 0},
    {"dilation2 stride3 pad1", 2, 2, 16, 15, 3, 3, 2, 1, 1, 3, 3, 2, 2, 1, 0},
    {"groups2", 1, 4, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0},
    {"groups2 N3 stride2 flip", 3, 6, 10, 11, 10, 3, 3, 1, 1, 2, 2, 1, 1, 2, F_FLIP},
    {"groups3 K9 flip", 1, 6, 7, 13, 9, 3, 3, 1, 1, 1, 1, 1, 1, 3, F_FLIP},
    {"depthwise 3x3", 1, 8, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, 0},
    {"depthwise 5x5 stride2 N2", 2, 6, 13, 13, 6, 5, 5, 2, 2, 2, 2, 1, 1, 6, 0},
    {"depthwise multiplier2", 1, 4, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0},
    {"C10 groups1 (channel block tail)", 1, 10, 6, 9, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"Wo=1", 1, 3, 5, 5, 4, 3, 5, 0, 0, 1, 1, 1, 1, 1, 0},
    {"Ho=Wo=1 full window", 2, 3, 5, 5, 4, 5, 5, 0, 0, 1, 1, 1, 1, 1, 0},
    {"Ho=Wo=1 stride3", 1, 2, 4, 4, 3, 3, 3, 0, 0, 3, 3, 1, 1, 1, 0},
    {"W=1 input", 1, 3, 9, 1, 4, 3, 1, 1, 0, 1, 1, 1, 1, 1, 0},
    {"H=1 stride2", 2, 2, 1, 19, 3, 1, 3, 0, 1, 1, 2, 1, 1, 1, 0},
    {"flip 3x3", 1, 3, 8, 13, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_FLIP},
    {"flip 3x5 stride(1,2) dil(1,2)", 1, 2, 9, 17, 4, 3, 5, 1, 2, 1, 2, 1, 2, 1, F_FLIP},
    {"flip 2x4 stride2 pad(1,2)", 1, 3, 9, 12, 4, 2, 4, 1, 2, 2, 2, 1, 1, 1, F_FLIP},
    {"1x7", 1, 3, 6, 15, 5, 1, 7, 0, 3, 1, 1, 1, 1, 1, 0},
    {"7x1 flip", 1, 3, 15, 6, 5, 7, 1, 3, 0, 1, 1, 1, 1, 1, F_FLIP},
    {"relu ignored", 2, 4, 8, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_RELU},
    {"tall 37x21 K5", 2, 3, 37, 21, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"LeNet conv2 N2", 2, 6, 14, 14, 8, 5, 5, 2, 2, 1, 1, 1, 1, 1, 0},
    /* Past 16 output channels: implicit_gemm's vector blocks and a partial one. */
    {"3x3 K37 stride2 flip", 2, 5, 11, 12, 37, 3, 3, 1, 1, 2, 2, 1, 1, 1, F_FLIP},
    {"3x3 K20 dilation(1,2) pad(1,2)", 1, 3, 9, 14, 20, 3, 3, 1, 2, 1, 1, 1, 2, 1, 0},
    {"3x3 K70 stride(2,1) flip", 1, 4, 7, 9, 70, 3, 3, 1, 1, 2, 1, 1, 1, 1, F_FLIP},
    {"2x2 K130 N2", 2, 3, 5, 6, 130, 2, 2, 0, 1, 1, 1, 1, 1, 1, 0},
    /* Stride 1: the rotated Winograd rows of backward data, with the mode toggled. */
    {"3x3 pad1 flip K20", 2, 4, 10, 9, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_FLIP},
    {"5x5 pad2 flip K32", 2, 6, 9, 10, 32, 5, 5, 2, 2, 1, 1, 1, 1, 1, F_FLIP},
    {"5x5 pad1 K16", 1, 3, 12, 11, 16, 5, 5, 1, 1, 1, 1, 1, 1, 1, 0},
    /* direct_rows: a first layer with one input channel over more images than the reduction's
     * chunks (several images per chunk, the last chunk short), K not a multiple of its block,
     * rows that need the tail vector; two column blocks; a row narrower than a vector. */
    {"rows C1 K13 5x5 pad2 N69 29x30", 69, 1, 29, 30, 13, 5, 5, 2, 2, 1, 1, 1, 1, 1, 0},
    {"rows C1 K6 5x5 pad2 N9 flip", 9, 1, 12, 21, 6, 5, 5, 2, 2, 1, 1, 1, 1, 1, F_FLIP},
    {"rows W45 C3 K9 3x3 pad1 stride(2,1)", 2, 3, 11, 45, 9, 3, 3, 1, 1, 2, 1, 1, 1, 1, 0},
    {"rows W6 K5 3x3 pad1 dil(2,2) flip", 3, 4, 9, 8, 5, 3, 3, 1, 1, 1, 1, 2, 2, 1, F_FLIP},
    /* C*R*S past 512: backward data packs the weights first; 60 channels end in a shifted
     * block. */
    {"rows packed C60 K10 3x3 pad1", 2, 60, 7, 17, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"rows packed C60 K11 3x3 pad1 flip", 1, 60, 9, 14, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_FLIP},
    /* 5x5 backward weights outside the one-pass window variant (stride 2 along the height). */
    {"rows 5x5 stride(2,1) pad2 N5", 5, 2, 13, 20, 6, 5, 5, 2, 2, 2, 1, 1, 1, 1, 0},
};

static void test_sweep(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof sweep_cases / sizeof sweep_cases[0]; ci++) {
        problem pb;
        problem_init(&pb, &sweep_cases[ci], 5000 + ci);
        check_problem(&pb);
        problem_free(&pb);
    }
}

/* implicit_gemm over chunks of one image each (the later ones accumulate) gives what one chunk
 * of every image gives, within the same bounds. */
static void test_igemm_chunks(void **state)
{
    (void)state;
    static const bwd_case cc = {"chunks", 3, 5, 9, 8, 80, 3, 3, 1, 1, 1, 2, 1, 1, 1, 0};
    problem pb;
    problem_init(&pb, &cc, 91);
    float *a = malloc(pb.nw * sizeof *a);
    assert_non_null(a);
    for (int limited = 0; limited < 2; limited++) {
        clcnn__conv_igemm_limit_chunk(limited ? 1 : 0);
        run_pass(&pb, CLCNN_CONV_PASS_BWD_WEIGHTS, CLCNN_CONV_ALGO_IMPLICIT_GEMM, &pb.p, a);
        check_grad(pb.name, limited ? "bwd-weights, 3 chunks" : "bwd-weights, 1 chunk",
                   "implicit_gemm", a, pb.dw, pb.dw_mag, pb.dw_terms, pb.nw,
                   pass_tolerance(CLCNN_CONV_PASS_BWD_WEIGHTS, CLCNN_CONV_ALGO_IMPLICIT_GEMM), 0.0);
    }
    clcnn__conv_igemm_limit_chunk(0);
    free(a);
    problem_free(&pb);
}

/* Find mode for both backward passes: every solver ranked, the fastest verified first, its result
 * left in the output, and AUTO picking it afterwards (through the tuning database). */
static void test_backward_find(void **state)
{
    (void)state;
    /* A shape no other test uses, so the recorded winners change nothing elsewhere. */
    static const bwd_case cc = {"find", 2, 7, 9, 11, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0};
    problem pb;
    problem_init(&pb, &cc, 4242);
    clcnn_tensor *x = tensor_from(pb.xs, pb.x, pb.nx), *w = tensor_from(pb.ws, pb.w, pb.nw),
                 *dy = tensor_from(pb.ys, pb.dy, pb.ny), *out_x = NULL, *out_w = NULL;
    assert_ok(clcnn_tensor_create(test_dev, pb.xs, &out_x));
    assert_ok(clcnn_tensor_create(test_dev, pb.ws, &out_w));
    static const clcnn_conv_pass passes[] = {CLCNN_CONV_PASS_BWD_DATA, CLCNN_CONV_PASS_BWD_WEIGHTS};
    for (size_t i = 0; i < 2; i++) {
        const bool data = passes[i] == CLCNN_CONV_PASS_BWD_DATA;
        clcnn_conv_perf perf[8];
        size_t count = 0;
        assert_ok(clcnn_conv2d_backward_find(test_dev, passes[i], data ? NULL : x, data ? w : NULL,
                                             dy, &pb.p, data ? out_x : out_w, 2, perf, 8, &count));
        assert_int_equal(count, data ? 6 : 4);
        assert_int_equal(perf[0].status, CLCNN_OK);
        assert_true(perf[0].verified && isfinite(perf[0].time_ms) && perf[0].time_ms > 0);
        for (size_t k = 1; k < count; k++)
            if (perf[k].status == CLCNN_OK && perf[k].verified)
                assert_true(perf[k].time_ms >= perf[0].time_ms);
        /* The winner's output is in out, within its bounds. */
        float *got = test_download(data ? out_x : out_w);
        const clcnn_conv_algo best = perf[0].algo;
        const bool winograd = best == CLCNN_CONV_ALGO_WINOGRAD2 ||
                              best == CLCNN_CONV_ALGO_WINOGRAD4 ||
                              best == CLCNN_CONV_ALGO_WINOGRAD4_SPLIT;
        check_grad(pb.name, clcnn_conv_pass_name(passes[i]), clcnn_conv_algo_name(best), got,
                   data ? pb.dx : pb.dw, data ? pb.dx_mag : pb.dw_mag,
                   data ? pb.dx_terms : pb.dw_terms, data ? pb.nx : pb.nw,
                   clcnn_conv_pass_tolerance(passes[i], best), winograd ? WINOGRAD_ELEM_REL : 0.0);
        free(got);
        clcnn_conv_algo chosen = CLCNN_CONV_ALGO_AUTO;
        assert_ok(clcnn_conv2d_pass_auto_algo(test_dev, passes[i], pb.xs, pb.ws, &pb.p, &chosen));
        assert_int_equal(chosen, best);
    }
    size_t count = 0;
    assert_int_equal(clcnn_conv2d_backward_find(test_dev, CLCNN_CONV_PASS_FWD, x, w, dy, &pb.p,
                                                out_x, 1, NULL, 0, &count),
                     CLCNN_STATUS_INVALID_ARG);
    clcnn_tensor *all[] = {x, w, dy, out_x, out_w};
    for (size_t i = 0; i < 5; i++)
        clcnn_tensor_release(all[i]);
    problem_free(&pb);
}

/* params->relu changes nothing in the backward passes. */
static void test_relu_ignored(void **state)
{
    (void)state;
    static const bwd_case cc = {"relu", 1, 3, 7, 8, 4, 3, 3, 1, 1, 2, 1, 1, 1, 1, 0};
    problem pb;
    problem_init(&pb, &cc, 77);
    clcnn_conv_params relu = pb.p;
    relu.relu = true;
    const size_t most = pb.nx > pb.nw ? pb.nx : pb.nw;
    float *a = malloc(most * sizeof *a), *b = malloc(most * sizeof *b);
    assert_true(a && b);
    run_pass(&pb, CLCNN_CONV_PASS_BWD_DATA, CLCNN_CONV_ALGO_AUTO, &pb.p, a);
    run_pass(&pb, CLCNN_CONV_PASS_BWD_DATA, CLCNN_CONV_ALGO_AUTO, &relu, b);
    assert_memory_equal(a, b, pb.nx * sizeof *a);
    run_pass(&pb, CLCNN_CONV_PASS_BWD_WEIGHTS, CLCNN_CONV_ALGO_AUTO, &pb.p, a);
    run_pass(&pb, CLCNN_CONV_PASS_BWD_WEIGHTS, CLCNN_CONV_ALGO_AUTO, &relu, b);
    assert_memory_equal(a, b, pb.nw * sizeof *a);
    free(a);
    free(b);
    problem_free(&pb);
}

/* ------------------------------------------------------------------------------------------ */
/* Central finite differences of L(x, w, b) = sum(dy * (conv(x, w) + b)) in double            */

typedef struct loss_ctx {
    const problem *pb;
    const double *x, *w;
    double sum;
} loss_ctx;

static void loss_tap(void *ctx, size_t xi, size_t wi, size_t yi)
{
    loss_ctx *l = ctx;
    l->sum += (double)l->pb->dy[yi] * l->x[xi] * l->w[wi];
}

static double loss(const problem *pb, const double *x, const double *w, const double *b)
{
    loss_ctx l = {pb, x, w, 0.0};
    for_each_tap(pb, loss_tap, &l);
    const size_t plane = pb->ys.h * pb->ys.w;
    for (size_t n = 0, i = 0; n < pb->ys.n; n++)
        for (size_t k = 0; k < pb->ys.c; k++)
            for (size_t j = 0; j < plane; j++, i++)
                l.sum += (double)pb->dy[i] * b[k];
    return l.sum;
}

/* |device - finite difference| <= 1e-5 * (sum|terms| + 1e-3) per element; h = 2^-10 (L is
 * bilinear, so the central difference is exact up to double rounding). */
static void check_fd(const char *name, const char *what, const float *got, double *v, size_t n,
                     const problem *pb, double *x, double *w, double *b, const double *mag)
{
    const double h = 1.0 / 1024.0;
    for (size_t i = 0; i < n; i++) {
        const double keep = v[i];
        v[i] = keep + h;
        const double up = loss(pb, x, w, b);
        v[i] = keep - h;
        const double down = loss(pb, x, w, b);
        v[i] = keep;
        const double fd = (up - down) / (2 * h);
        const double bound = 1e-5 * (mag[i] + 1e-3);
        if (!(fabs((double)got[i] - fd) <= bound))
            print_error("%s [%s]: element %zu: device %.9g, finite difference %.9g\n", name, what,
                        i, (double)got[i], fd);
        assert_true(fabs((double)got[i] - fd) <= bound);
    }
}

static void test_finite_differences(void **state)
{
    (void)state;
    static const bwd_case cases[] = {
        {"fd 3x3 stride2 pad1", 2, 3, 7, 8, 4, 3, 3, 1, 1, 2, 2, 1, 1, 1, 0},
        {"fd 3x2 stride(1,3) dil(2,1) flip", 1, 2, 9, 10, 3, 3, 2, 1, 2, 1, 3, 2, 1, 1, F_FLIP},
        {"fd groups2 stride3 pad2", 1, 4, 8, 7, 4, 3, 3, 2, 2, 3, 3, 1, 1, 2, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        problem pb;
        problem_init(&pb, &cases[ci], 9000 + ci);
        double *x = malloc(pb.nx * sizeof *x), *w = malloc(pb.nw * sizeof *w);
        double *b = calloc(pb.ys.c + 1, sizeof *b);
        const size_t most = pb.nx > pb.nw ? pb.nx : pb.nw;
        float *got = malloc((most > pb.ys.c ? most : pb.ys.c) * sizeof *got);
        assert_true(x && w && b && got);
        for (size_t i = 0; i < pb.nx; i++)
            x[i] = pb.x[i];
        for (size_t i = 0; i < pb.nw; i++)
            w[i] = pb.w[i];
        for (size_t ai = 0; ai < N_ALGOS; ai++) {
            const char *an = clcnn_conv_algo_name(algos[ai]);
            if (check_applicable(&pb, CLCNN_CONV_PASS_BWD_DATA, algos[ai])) {
                run_pass(&pb, CLCNN_CONV_PASS_BWD_DATA, algos[ai], &pb.p, got);
                check_fd(pb.name, an, got, x, pb.nx, &pb, x, w, b, pb.dx_mag);
            }
            if (check_applicable(&pb, CLCNN_CONV_PASS_BWD_WEIGHTS, algos[ai])) {
                run_pass(&pb, CLCNN_CONV_PASS_BWD_WEIGHTS, algos[ai], &pb.p, got);
                check_fd(pb.name, an, got, w, pb.nw, &pb, x, w, b, pb.dw_mag);
            }
        }
        run_bias(&pb, got);
        check_fd(pb.name, "bias", got, b, pb.ys.c, &pb, x, w, b, pb.db_mag);
        free(x);
        free(w);
        free(b);
        free(got);
        problem_free(&pb);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Workspace, AUTO and refusals                                                               */

/* A caller-supplied workspace of exactly the queried size gives the same bits as none. */
static void test_caller_workspace(void **state)
{
    (void)state;
    static const bwd_case cc = {"ws", 2, 6, 11, 13, 8, 3, 3, 1, 1, 2, 1, 1, 1, 1, 0};
    problem pb;
    problem_init(&pb, &cc, 4242);
    clcnn_tensor *x = tensor_from(pb.xs, pb.x, pb.nx), *w = tensor_from(pb.ws, pb.w, pb.nw);
    clcnn_tensor *dy = tensor_from(pb.ys, pb.dy, pb.ny);
    const size_t most = pb.nx > pb.nw ? pb.nx : pb.nw;
    float *a = malloc(most * sizeof *a), *b = malloc(most * sizeof *b);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        problem_free(&pb);
        fail_msg("out of host memory");
        return;
    }
    static const clcnn_conv_algo list[] = {CLCNN_CONV_ALGO_DIRECT, CLCNN_CONV_ALGO_GEMM};
    for (size_t i = 0; i < 2; i++) {
        for (int pass = CLCNN_CONV_PASS_BWD_DATA; pass <= CLCNN_CONV_PASS_BWD_WEIGHTS; pass++) {
            size_t bytes = 0;
            assert_ok(clcnn_conv2d_pass_workspace_size(test_dev, (clcnn_conv_pass)pass, pb.xs,
                                                       pb.ws, &pb.p, list[i], &bytes));
            clcnn_tensor *ws = NULL;
            if (bytes > 0)
                assert_ok(clcnn_tensor_create(
                    test_dev, (clcnn_shape){1, 1, 1, (bytes + sizeof(float) - 1) / sizeof(float)},
                    &ws));
            cl_mem wsb = ws != NULL ? clcnn_tensor_buffer(ws) : NULL;
            const bool data = pass == CLCNN_CONV_PASS_BWD_DATA;
            clcnn_tensor *o = data ? x : w;
            const size_t n = data ? pb.nx : pb.nw;
            if (bytes > 0) {
                /* Too small a workspace is refused and the output left alone. */
                assert_ok(clcnn_tensor_fill(o, 7.0f));
                clcnn_status s = data ? clcnn_conv2d_backward_data(test_dev, dy, w, &pb.p, list[i],
                                                                   wsb, bytes - 1, x)
                                      : clcnn_conv2d_backward_weights(test_dev, x, dy, &pb.p,
                                                                      list[i], wsb, bytes - 1, w);
                assert_int_equal(s, CLCNN_STATUS_INVALID_ARG);
                assert_non_null(strstr(clcnn_last_error(), "workspace"));
                assert_ok(clcnn_tensor_download(o, a, n));
                for (size_t j = 0; j < n; j++)
                    assert_true(a[j] == 7.0f);
            }
            assert_ok(
                data ? clcnn_conv2d_backward_data(test_dev, dy, w, &pb.p, list[i], wsb, bytes, x)
                     : clcnn_conv2d_backward_weights(test_dev, x, dy, &pb.p, list[i], wsb, bytes,
                                                     w));
            assert_ok(clcnn_tensor_download(o, a, n));
            assert_ok(
                data ? clcnn_conv2d_backward_data(test_dev, dy, w, &pb.p, list[i], NULL, 0, x)
                     : clcnn_conv2d_backward_weights(test_dev, x, dy, &pb.p, list[i], NULL, 0, w));
            assert_ok(clcnn_tensor_download(o, b, n));
            assert_memory_equal(a, b, n * sizeof *a);
            /* Restore the inputs the other pass reads. */
            assert_ok(clcnn_tensor_upload(x, pb.x, pb.nx));
            assert_ok(clcnn_tensor_upload(w, pb.w, pb.nw));
            clcnn_tensor_release(ws);
        }
    }
    clcnn_conv_algo chosen = CLCNN_CONV_ALGO_AUTO;
    assert_ok(clcnn_conv2d_pass_auto_algo(test_dev, CLCNN_CONV_PASS_BWD_DATA, pb.xs, pb.ws, &pb.p,
                                          &chosen));
    assert_true(is_solver(chosen));
    chosen = CLCNN_CONV_ALGO_AUTO;
    assert_ok(clcnn_conv2d_pass_auto_algo(test_dev, CLCNN_CONV_PASS_BWD_WEIGHTS, pb.xs, pb.ws,
                                          &pb.p, &chosen));
    assert_true(is_solver(chosen));
    free(a);
    free(b);
    clcnn_tensor_release(x);
    clcnn_tensor_release(w);
    clcnn_tensor_release(dy);
    problem_free(&pb);
}

/* AUTO on a GPU device takes im2col + CLBlast's SGEMM for every pass (measured on an NVIDIA
 * H100), where a CPU device takes other solvers for the same problem. The test's POCL device is
 * told it is a GPU; a 2x3 filter keeps the tuning database's nearest-problem fallback out of it. */
static void test_auto_on_gpu_devices(void **state)
{
    (void)state;
    const clcnn_shape xs = {3, 12, 17, 19}, ws = {10, 12, 2, 3};
    clcnn_conv_params p = clcnn_conv_params_default();
    static const clcnn_conv_pass passes[] = {CLCNN_CONV_PASS_FWD, CLCNN_CONV_PASS_BWD_DATA,
                                             CLCNN_CONV_PASS_BWD_WEIGHTS};
    clcnn_conv_algo cpu[3], gpu[3];
    clcnn_status st[6];
    const clcnn_device_type type = test_dev->info.type;
    for (size_t i = 0; i < 3; i++) {
        cpu[i] = gpu[i] = CLCNN_CONV_ALGO_AUTO;
        test_dev->info.type = CLCNN_DEVICE_TYPE_CPU;
        st[2 * i] = clcnn_conv2d_pass_auto_algo(test_dev, passes[i], xs, ws, &p, &cpu[i]);
        test_dev->info.type = CLCNN_DEVICE_TYPE_GPU;
        st[2 * i + 1] = clcnn_conv2d_pass_auto_algo(test_dev, passes[i], xs, ws, &p, &gpu[i]);
    }
    test_dev->info.type = type;
    for (size_t i = 0; i < 3; i++) {
        assert_ok(st[2 * i]);
        assert_ok(st[2 * i + 1]);
        assert_int_equal(gpu[i], CLCNN_CONV_ALGO_GEMM);
        assert_int_not_equal(cpu[i], CLCNN_CONV_ALGO_GEMM);
    }
}

static void expect_filled(const clcnn_tensor *t, float v)
{
    size_t n = clcnn_tensor_count(t);
    float *back = malloc(n * sizeof *back);
    assert_non_null(back);
    assert_ok(clcnn_tensor_download(t, back, n));
    for (size_t i = 0; i < n; i++)
        assert_true(back[i] == v);
    free(back);
}

static void test_refusals(void **state)
{
    (void)state;
    clcnn_conv_params p = clcnn_conv_params_default();
    p.pad_h = p.pad_w = 1;
    p.stride_h = p.stride_w = 2;
    /* x 1x3x7x7, w 4x3x3x3 -> y 1x4x4x4. */
    clcnn_tensor *x, *w, *dy, *bad_dy, *bad_w, *db, *bad_db;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 3, 7, 7}, &x));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){4, 3, 3, 3}, &w));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 4, 4, 4}, &dy));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 4, 5, 4}, &bad_dy));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){4, 2, 3, 3}, &bad_w));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, 4}, &db));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, 5}, &bad_db));
    assert_ok(clcnn_tensor_fill(dy, 0.5f));
    assert_ok(clcnn_tensor_fill(bad_dy, 0.5f));
    assert_ok(clcnn_tensor_fill(w, 0.25f));
    clcnn_tensor *outs[] = {x, bad_w, db, bad_db};
    for (size_t i = 0; i < 4; i++)
        assert_ok(clcnn_tensor_fill(outs[i], 3.0f));

    assert_status_msg(
        clcnn_conv2d_backward_data(test_dev, bad_dy, w, &p, CLCNN_CONV_ALGO_AUTO, NULL, 0, x),
        CLCNN_STATUS_BAD_SHAPE, "dy is (1,4,5,4)");
    assert_non_null(strstr(clcnn_last_error(), "need (1,4,4,4)"));
    expect_filled(x, 3.0f);
    assert_status_msg(
        clcnn_conv2d_backward_data(test_dev, dy, bad_w, &p, CLCNN_CONV_ALGO_DIRECT, NULL, 0, x),
        CLCNN_STATUS_BAD_SHAPE, "(4,2,3,3)");
    expect_filled(x, 3.0f);
    assert_ok(clcnn_tensor_fill(x, 1.0f));
    assert_ok(clcnn_tensor_fill(w, 3.0f));
    assert_status_msg(
        clcnn_conv2d_backward_weights(test_dev, x, bad_dy, &p, CLCNN_CONV_ALGO_GEMM, NULL, 0, w),
        CLCNN_STATUS_BAD_SHAPE, "dy is (1,4,5,4)");
    expect_filled(w, 3.0f);
    assert_status_msg(
        clcnn_conv2d_backward_weights(test_dev, x, dy, &p, CLCNN_CONV_ALGO_DIRECT, NULL, 0, bad_w),
        CLCNN_STATUS_BAD_SHAPE, "(4,2,3,3)");
    expect_filled(bad_w, 3.0f);
    assert_status_msg(clcnn_conv2d_backward_bias(test_dev, dy, bad_db), CLCNN_STATUS_BAD_SHAPE,
                      "db has 5 elements");
    expect_filled(bad_db, 3.0f);
    /* A forward-only algorithm has no backward solver. */
    assert_status_msg(
        clcnn_conv2d_backward_weights(test_dev, x, dy, &p, CLCNN_CONV_ALGO_WINOGRAD2, NULL, 0, w),
        CLCNN_STATUS_INVALID_ARG, "no solver for this pass");
    expect_filled(w, 3.0f);
    const char *reason = NULL;
    assert_false(clcnn_conv2d_pass_applicable(test_dev, CLCNN_CONV_PASS_BWD_WEIGHTS,
                                              (clcnn_shape){1, 3, 7, 7}, (clcnn_shape){4, 3, 3, 3},
                                              &p, CLCNN_CONV_ALGO_WINOGRAD2, &reason));
    assert_non_null(reason);
    assert_false(clcnn_conv2d_pass_applicable(test_dev, (clcnn_conv_pass)7,
                                              (clcnn_shape){1, 3, 7, 7}, (clcnn_shape){4, 3, 3, 3},
                                              &p, CLCNN_CONV_ALGO_AUTO, NULL));
    /* NULLs. */
    assert_int_equal(
        clcnn_conv2d_backward_data(test_dev, NULL, w, &p, CLCNN_CONV_ALGO_AUTO, NULL, 0, x),
        CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(
        clcnn_conv2d_backward_weights(test_dev, x, dy, NULL, CLCNN_CONV_ALGO_AUTO, NULL, 0, w),
        CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_conv2d_backward_bias(NULL, dy, db), CLCNN_STATUS_INVALID_ARG);
    assert_string_equal(clcnn_conv_pass_name(CLCNN_CONV_PASS_BWD_DATA), "bwd-data");
    assert_null(clcnn_conv_pass_name((clcnn_conv_pass)9));
    assert_true(clcnn_conv_pass_tolerance(CLCNN_CONV_PASS_BWD_DATA, CLCNN_CONV_ALGO_AUTO) < 0);
    for (size_t i = 0; i < 4; i++)
        clcnn_tensor_release(outs[i]);
    clcnn_tensor_release(w);
    clcnn_tensor_release(dy);
    clcnn_tensor_release(bad_dy);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),         cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_igemm_chunks),     cmocka_unit_test(test_backward_find),
        cmocka_unit_test(test_relu_ignored),     cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_caller_workspace), cmocka_unit_test(test_auto_on_gpu_devices),
    };
    return cmocka_run_group_tests_name("conv2d_bwd", tests, test_group_setup, test_group_teardown);
}
