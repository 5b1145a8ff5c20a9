/* 2-D convolution forward: every solver in CLCNN_CONV_ALGO_LIST against a float64 reference on a
 * table of awkward shapes, properties from the theory (translation equivariance, convolution as
 * cross-correlation with the flipped kernel, "same" padding), determinism, the output-shape
 * formula, and the error paths (BAD_SHAPE / INVALID_ARG with the output left untouched). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Every algorithm the header lists, AUTO included: a solver added to CLCNN_CONV_ALGO_LIST is
 * tested here with no change to this file (append to this array for one that is not listed). */
#define ALGO_ELEM_(name, token, id) CLCNN_CONV_ALGO_##name,
static const clcnn_conv_algo algos[] = {CLCNN_CONV_ALGO_LIST(ALGO_ELEM_)};
#undef ALGO_ELEM_
#define N_ALGOS (sizeof algos / sizeof algos[0])

/* Per-element bound: |got - ref| <= ELEM_REL * (sum over taps of |x*w| + |bias|). A float32 sum
 * of n terms is off by at most about n * 2^-24 * sum|terms| whatever the order (Higham, recursive
 * summation), so 1e-4 holds for up to ~1600 taps; the cases below stay under 400. */
#define ELEM_REL 1e-4

/* ------------------------------------------------------------------------------------------ */
/* Problems and the float64 reference                                                         */

enum { F_BIAS = 1, F_RELU = 2, F_FLIP = 4 };

typedef struct conv_case {
    const char *name;
    size_t n, c, h, w;   /* input */
    size_t k, r, s;      /* weight K x C/groups x R x S */
    size_t pad_h, pad_w; /* padding */
    size_t stride_h, stride_w;
    size_t dil_h, dil_w;
    size_t groups;
    unsigned flags; /* F_BIAS | F_RELU | F_FLIP */
} conv_case;

typedef struct problem {
    char name[160];
    clcnn_shape xs, ws, ys;
    clcnn_conv_params p;
    bool has_bias;
    size_t nx, nw, ny;
    float *x, *w, *b;
    double *ref, *mag; /* reference output and sum of |terms| per element */
} problem;

static clcnn_conv_params case_params(const conv_case *cc)
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

/* The output extent computed independently of the library. */
static size_t out_extent(size_t in, size_t pad, size_t k, size_t stride, size_t dil)
{
    size_t padded = in + 2 * pad, eff = dil * (k - 1) + 1;
    assert_true(padded >= eff);
    return (padded - eff) / stride + 1;
}

static void reference_conv(problem *pb)
{
    const clcnn_shape xs = pb->xs, ws = pb->ws, ys = pb->ys;
    const clcnn_conv_params *p = &pb->p;
    const size_t cg = xs.c / p->groups, kg = ws.n / p->groups;
    assert_int_equal(ws.c, cg);
    for (size_t n = 0; n < ys.n; n++)
        for (size_t k = 0; k < ys.c; k++)
            for (size_t oh = 0; oh < ys.h; oh++)
                for (size_t ow = 0; ow < ys.w; ow++) {
                    const size_t g = k / kg;
                    double acc = 0.0, mag = 0.0;
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
                                double xv =
                                    pb->x[((n * xs.c + g * cg + c) * xs.h + (size_t)ih) * xs.w +
                                          (size_t)iw];
                                double wv = pb->w[((k * cg + c) * ws.h + rr) * ws.w + ss];
                                acc += xv * wv;
                                mag += fabs(xv * wv);
                            }
                    if (pb->has_bias) {
                        acc += pb->b[k];
                        mag += fabs((double)pb->b[k]);
                    }
                    if (p->relu && acc < 0.0)
                        acc = 0.0;
                    size_t i = ((n * ys.c + k) * ys.h + oh) * ys.w + ow;
                    pb->ref[i] = acc;
                    pb->mag[i] = mag;
                }
}

/* Builds the problem with random data in [-1, 1) (never zero), checks the library's output shape
 * against the formula, and computes the reference. */
static void problem_init_shapes(problem *pb, const char *name, clcnn_shape xs, clcnn_shape ws,
                                clcnn_conv_params p, bool has_bias, uint64_t seed)
{
    memset(pb, 0, sizeof *pb);
    snprintf(pb->name, sizeof pb->name, "%s", name);
    pb->xs = xs;
    pb->ws = ws;
    pb->p = p;
    pb->has_bias = has_bias;
    clcnn_shape ys = {0, 0, 0, 0};
    assert_ok(clcnn_conv2d_output_shape(xs, ws, &p, &ys));
    assert_int_equal(ys.n, xs.n);
    assert_int_equal(ys.c, ws.n);
    assert_int_equal(ys.h, out_extent(xs.h, p.pad_h, ws.h, p.stride_h, p.dilation_h));
    assert_int_equal(ys.w, out_extent(xs.w, p.pad_w, ws.w, p.stride_w, p.dilation_w));
    pb->ys = ys;
    pb->nx = xs.n * xs.c * xs.h * xs.w;
    pb->nw = ws.n * ws.c * ws.h * ws.w;
    pb->ny = ys.n * ys.c * ys.h * ys.w;
    pb->x = malloc(pb->nx * sizeof *pb->x);
    pb->w = malloc(pb->nw * sizeof *pb->w);
    pb->b = malloc(ws.n * sizeof *pb->b);
    pb->ref = malloc(pb->ny * sizeof *pb->ref);
    pb->mag = malloc(pb->ny * sizeof *pb->mag);
    assert_true(pb->x && pb->w && pb->b && pb->ref && pb->mag);
    test_rng rng;
    test_rng_seed(&rng, seed);
    test_rng_fill(&rng, pb->x, pb->nx, -1.0f, 1.0f);
    test_rng_fill(&rng, pb->w, pb->nw, -1.0f, 1.0f);
    test_rng_fill(&rng, pb->b, ws.n, -1.0f, 1.0f);
    reference_conv(pb);
}

static void problem_init(problem *pb, const conv_case *cc, uint64_t seed)
{
    clcnn_shape xs = {cc->n, cc->c, cc->h, cc->w};
    clcnn_shape ws = {cc->k, cc->c / cc->groups, cc->r, cc->s};
    problem_init_shapes(pb, cc->name, xs, ws, case_params(cc), (cc->flags & F_BIAS) != 0, seed);
}

static void problem_free(problem *pb)
{
    free(pb->x);
    free(pb->w);
    free(pb->b);
    free(pb->ref);
    free(pb->mag);
}

static bool is_solver(clcnn_conv_algo algo)
{
    return (int)algo >= 0;
}

/* The NMSE bound for an algorithm; AUTO may pick any solver, so it gets the loosest one's. */
static double algo_tolerance(clcnn_conv_algo algo)
{
    if (is_solver(algo))
        return clcnn_conv_algo_tolerance(algo);
    double tol = 0.0;
    for (size_t i = 0; i < N_ALGOS; i++)
        if (is_solver(algos[i]) && clcnn_conv_algo_tolerance(algos[i]) > tol)
            tol = clcnn_conv_algo_tolerance(algos[i]);
    return tol;
}

/* Whether to run [algo] on the problem. DIRECT (and AUTO) must take every valid problem. */
static bool check_applicable(const problem *pb, clcnn_conv_algo algo)
{
    const char *reason = NULL;
    bool ok = clcnn_conv2d_applicable(test_dev, pb->xs, pb->ws, &pb->p, algo, &reason);
    if (algo == CLCNN_CONV_ALGO_DIRECT || algo == CLCNN_CONV_ALGO_AUTO) {
        if (!ok)
            print_error("%s: %s not applicable: %s\n", pb->name, clcnn_conv_algo_name(algo),
                        reason ? reason : "(no reason)");
        assert_true(ok);
    }
    if (!ok)
        assert_non_null(reason);
    /* The reason pointer is optional. */
    assert_true(clcnn_conv2d_applicable(test_dev, pb->xs, pb->ws, &pb->p, algo, NULL) == ok);
    return ok;
}

/* Runs the problem on the device into host [out] (pb->ny floats), poisoning y with NaN first,
 * with [w_host] in place of pb->w and [mode] in place of pb->p.mode when given. Checks that x, w
 * and bias are not modified. */
static void run_device_with(const problem *pb, const float *w_host, const clcnn_conv_params *p,
                            clcnn_conv_algo algo, float *out)
{
    clcnn_tensor *x, *w, *b = NULL, *y;
    assert_ok(clcnn_tensor_create(test_dev, pb->xs, &x));
    assert_ok(clcnn_tensor_create(test_dev, pb->ws, &w));
    assert_ok(clcnn_tensor_create(test_dev, pb->ys, &y));
    assert_ok(clcnn_tensor_upload(x, pb->x, pb->nx));
    assert_ok(clcnn_tensor_upload(w, w_host, pb->nw));
    if (pb->has_bias) {
        assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, pb->ws.n}, &b));
        assert_ok(clcnn_tensor_upload(b, pb->b, pb->ws.n));
    }
    assert_ok(clcnn_tensor_fill(y, NAN));
    clcnn_status s = clcnn_conv2d_forward(test_dev, x, w, b, p, algo, NULL, 0, y);
    if (s != CLCNN_OK)
        print_error("%s: forward with %s -> %s: %s\n", pb->name, clcnn_conv_algo_name(algo),
                    clcnn_status_name(s), clcnn_last_error());
    assert_int_equal(s, CLCNN_OK);
    assert_ok(clcnn_tensor_download(y, out, pb->ny));

    /* Inputs are read-only. */
    size_t most = pb->nx > pb->nw ? pb->nx : pb->nw;
    float *back = malloc(most * sizeof *back);
    assert_non_null(back);
    assert_ok(clcnn_tensor_download(x, back, pb->nx));
    assert_memory_equal(back, pb->x, pb->nx * sizeof *back);
    assert_ok(clcnn_tensor_download(w, back, pb->nw));
    assert_memory_equal(back, w_host, pb->nw * sizeof *back);
    if (b != NULL) {
        assert_ok(clcnn_tensor_download(b, back, pb->ws.n));
        assert_memory_equal(back, pb->b, pb->ws.n * sizeof *back);
    }
    free(back);
    clcnn_tensor_release(x);
    clcnn_tensor_release(w);
    clcnn_tensor_release(b);
    clcnn_tensor_release(y);
}

static void run_device(const problem *pb, clcnn_conv_algo algo, float *out)
{
    run_device_with(pb, pb->w, &pb->p, algo, out);
}

static void describe_index(const problem *pb, size_t i, char *buf, size_t size)
{
    const clcnn_shape ys = pb->ys;
    size_t ow = i % ys.w, oh = i / ys.w % ys.h, k = i / (ys.w * ys.h) % ys.c,
           n = i / (ys.w * ys.h * ys.c);
    snprintf(buf, size, "y[n=%zu,k=%zu,h=%zu,w=%zu]", n, k, oh, ow);
}

/* Checks [got] against the reference: no NaN/Inf (the NaN poison catches unwritten elements),
 * every element within ELEM_REL * magnitude, and the NMSE within [nmse_tol]. */
static void check_result(const problem *pb, const char *algo_name, const float *got,
                         double nmse_tol)
{
    double err_ss = 0.0, ref_ss = 0.0;
    size_t bad = 0, nonfinite = 0;
    char where[96];
    for (size_t i = 0; i < pb->ny; i++) {
        if (!isfinite(got[i])) {
            if (nonfinite++ < 5) {
                describe_index(pb, i, where, sizeof where);
                print_error("%s [%s]: %s = %g (not written?), expected %.9g\n", pb->name, algo_name,
                            where, (double)got[i], pb->ref[i]);
            }
            continue;
        }
        double e = (double)got[i] - pb->ref[i];
        err_ss += e * e;
        ref_ss += pb->ref[i] * pb->ref[i];
        if (fabs(e) > ELEM_REL * pb->mag[i]) {
            if (bad++ < 5) {
                describe_index(pb, i, where, sizeof where);
                print_error("%s [%s]: %s = %.9g, expected %.9g (|err| %.3g > bound %.3g)\n",
                            pb->name, algo_name, where, (double)got[i], pb->ref[i], fabs(e),
                            ELEM_REL * pb->mag[i]);
            }
        }
    }
    if (nonfinite > 0)
        print_error("%s [%s]: %zu of %zu outputs not finite\n", pb->name, algo_name, nonfinite,
                    pb->ny);
    if (bad > 0)
        print_error("%s [%s]: %zu of %zu outputs outside the element bound\n", pb->name, algo_name,
                    bad, pb->ny);
    double nmse = ref_ss > 0.0 ? err_ss / ref_ss : (err_ss > 0.0 ? INFINITY : 0.0);
    if (nmse > nmse_tol)
        print_error("%s [%s]: NMSE %.3g > tolerance %.3g\n", pb->name, algo_name, nmse, nmse_tol);
    assert_int_equal(nonfinite, 0);
    assert_int_equal(bad, 0);
    assert_true(nmse <= nmse_tol);
}

/* ------------------------------------------------------------------------------------------ */
/* The sweep                                                                                  */

/* name, N C H W, K R S, pad h w, stride h w, dilation h w, groups, flags */
static const conv_case sweep_cases[] = {
    {"1x1", 1, 3, 8, 8, 4, 1, 1, 0, 0, 1, 1, 1, 1, 1, F_BIAS},
    {"1x1 C64 K33", 1, 64, 7, 7, 33, 1, 1, 0, 0, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
    {"3x3 pad1 W13", 1, 3, 13, 13, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_BIAS},
    {"3x3 N3 11x17 K5 relu", 3, 4, 11, 17, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
    {"3x3 N2 C16 W31", 2, 16, 9, 31, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_BIAS},
    {"3x3 stride2 pad1 W41", 1, 3, 6, 41, 5, 3, 3, 1, 1, 2, 2, 1, 1, 1, F_BIAS},
    {"3x3 stride2 pad1 8x8", 1, 5, 8, 8, 12, 3, 3, 1, 1, 2, 2, 1, 1, 1, F_BIAS | F_RELU},
    {"5x5 pad2 9x31 K7", 1, 2, 9, 31, 7, 5, 5, 2, 2, 1, 1, 1, 1, 1, F_BIAS},
    {"7x7 stride2 pad3", 1, 3, 23, 23, 8, 7, 7, 3, 3, 2, 2, 1, 1, 1, F_BIAS | F_RELU},
    {"11x11 stride4 pad2 (alexnet conv1)", 1, 3, 35, 35, 6, 11, 11, 2, 2, 4, 4, 1, 1, 1,
     F_BIAS | F_RELU},
    {"C1 K1 3x3", 1, 1, 7, 9, 1, 3, 3, 0, 0, 1, 1, 1, 1, 1, 0},
    {"N3 C1 K1 5x5 pad1", 3, 1, 6, 13, 1, 5, 5, 1, 1, 1, 1, 1, 1, 1, F_BIAS},
    {"5x5 on 3x3 pad2", 1, 2, 3, 3, 3, 5, 5, 2, 2, 1, 1, 1, 1, 1, F_BIAS},
    {"5x5 on 4x4 pad1", 2, 2, 4, 4, 5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 0},
    {"1x1 stride3", 2, 4, 10, 11, 5, 1, 1, 0, 0, 3, 3, 1, 1, 1, F_BIAS},
    {"1x1 pad2 (bias-only borders)", 1, 2, 4, 4, 3, 1, 1, 2, 2, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
    {"1x1 pad1 no bias (zero borders)", 1, 2, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
    {"3x3 stride(2,1)", 1, 3, 12, 13, 4, 3, 3, 1, 1, 2, 1, 1, 1, 1, F_BIAS},
    {"3x5 pad(0,2)", 1, 3, 9, 10, 4, 3, 5, 0, 2, 1, 1, 1, 1, 1, F_BIAS},
    {"3x3 dilation2 pad2", 1, 3, 13, 13, 4, 3, 3, 2, 2, 1, 1, 2, 2, 1, F_BIAS},
    {"3x3 dilation(2,1)", 1, 2, 11, 9, 3, 3, 3, 0, 1, 1, 1, 2, 1, 1, F_BIAS | F_RELU},
    {"3x3 dilation3 stride2", 1, 2, 17, 19, 5, 3, 3, 1, 2, 2, 2, 3, 3, 1, F_BIAS},
    {"groups2", 1, 4, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, F_BIAS},
    {"groups2 N3 stride2 relu flip", 3, 6, 10, 11, 10, 3, 3, 1, 1, 2, 2, 1, 1, 2,
     F_BIAS | F_RELU | F_FLIP},
    {"groups3 K9 flip", 1, 6, 7, 13, 9, 3, 3, 1, 1, 1, 1, 1, 1, 3, F_FLIP},
    {"depthwise 3x3", 1, 8, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, F_BIAS},
    {"depthwise 5x5 stride2 N2", 2, 6, 13, 13, 6, 5, 5, 2, 2, 2, 2, 1, 1, 6, F_BIAS | F_RELU},
    {"depthwise multiplier2", 1, 4, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0},
    {"K7 N3 W17", 3, 3, 7, 17, 7, 3, 3, 0, 0, 1, 1, 1, 1, 1, F_BIAS},
    {"Wo=1", 1, 3, 5, 5, 4, 3, 5, 0, 0, 1, 1, 1, 1, 1, F_BIAS},
    {"Ho=Wo=1 full window", 2, 3, 5, 5, 4, 5, 5, 0, 0, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
    {"W=1 input", 1, 3, 9, 1, 4, 3, 1, 1, 0, 1, 1, 1, 1, 1, F_BIAS},
    {"flip 3x3 no bias", 1, 3, 8, 13, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_FLIP},
    {"flip 3x5 stride(1,2) dil(1,2)", 1, 2, 9, 17, 4, 3, 5, 1, 2, 1, 2, 1, 2, 1, F_BIAS | F_FLIP},
    {"1x7", 1, 3, 6, 15, 5, 1, 7, 0, 3, 1, 1, 1, 1, 1, F_BIAS},
    {"7x1 flip relu", 1, 3, 15, 6, 5, 7, 1, 3, 0, 1, 1, 1, 1, 1, F_RELU | F_FLIP},
    {"relu no bias", 2, 4, 8, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_RELU},
    /* Tall outputs, where the direct solver blocks more rows per work-item. */
    {"tall 37x21 K5", 2, 3, 37, 21, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
    {"tall 70x9 stride2 groups2 flip", 1, 4, 70, 9, 6, 5, 3, 2, 1, 2, 1, 1, 1, 2, F_BIAS | F_FLIP},
    {"14x14 K7 dilation2", 1, 3, 18, 14, 7, 3, 3, 0, 1, 1, 1, 2, 1, 1, F_BIAS},
    /* direct_rows: blocks of channels, rows and column vectors shifted back at the ends (K not a
     * multiple of the block, Ho odd, one or two column blocks that overlap), a row narrower
     * than a vector, and a first layer with one input channel. */
    {"rows C1 K13 5x5 pad2 N3 29x30", 3, 1, 29, 30, 13, 5, 5, 2, 2, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
    {"rows W45 K9 stride(2,1) flip", 2, 3, 11, 45, 9, 3, 3, 1, 1, 2, 1, 1, 1, 1, F_BIAS | F_FLIP},
    {"rows W6 K3 3x3 pad1 dil(1,2)", 1, 4, 7, 8, 3, 3, 3, 1, 1, 1, 1, 1, 2, 1, F_BIAS},
};

static void test_sweep(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof sweep_cases / sizeof sweep_cases[0]; ci++) {
        const conv_case *cc = &sweep_cases[ci];
        /* Each case stays under the taps the element bound is sized for. */
        assert_true(cc->c / cc->groups * cc->r * cc->s <= 1600);
        problem pb;
        problem_init(&pb, cc, 1000 + ci);
        float *got = malloc(pb.ny * sizeof *got);
        assert_non_null(got);
        for (size_t a = 0; a < N_ALGOS; a++) {
            if (!check_applicable(&pb, algos[a]))
                continue;
            if (is_solver(algos[a])) {
                size_t bytes = (size_t)-1;
                assert_ok(
                    clcnn_conv2d_workspace_size(test_dev, pb.xs, pb.ws, &pb.p, algos[a], &bytes));
                assert_true(bytes != (size_t)-1);
            }
            run_device(&pb, algos[a], got);
            check_result(&pb, clcnn_conv_algo_name(algos[a]), got, algo_tolerance(algos[a]));
        }
        free(got);
        problem_free(&pb);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Properties, checked on the device results                                                  */

/* Shifting the input by one stride along H or W shifts the output by one position. x' holds
 * x moved by the stride (fresh random values fill the far edge); output positions whose window
 * lies inside the unpadded, unfilled part of x' must match y one step further along. */
static void check_translation(const conv_case *cc, bool along_h, uint64_t seed)
{
    problem pb, shifted;
    problem_init(&pb, cc, seed);
    problem_init(&shifted, cc, seed + 1); /* same shapes; x is overwritten below */
    memcpy(shifted.w, pb.w, pb.nw * sizeof *pb.w);
    memcpy(shifted.b, pb.b, pb.ws.n * sizeof *pb.b);
    const clcnn_shape xs = pb.xs;
    const size_t dh = along_h ? pb.p.stride_h : 0, dw = along_h ? 0 : pb.p.stride_w;
    for (size_t n = 0; n < xs.n; n++)
        for (size_t c = 0; c < xs.c; c++)
            for (size_t h = 0; h + dh < xs.h; h++)
                for (size_t w = 0; w + dw < xs.w; w++)
                    shifted.x[((n * xs.c + c) * xs.h + h) * xs.w + w] =
                        pb.x[((n * xs.c + c) * xs.h + h + dh) * xs.w + w + dw];
    reference_conv(&shifted);

    float *y = malloc(pb.ny * sizeof *y), *ys = malloc(pb.ny * sizeof *ys);
    assert_true(y && ys);
    const clcnn_shape os = pb.ys;
    const size_t ah = along_h ? 1 : 0, aw = along_h ? 0 : 1;
    const long eff_h = (long)(pb.p.dilation_h * (pb.ws.h - 1)),
               eff_w = (long)(pb.p.dilation_w * (pb.ws.w - 1));
    for (size_t a = 0; a < N_ALGOS; a++) {
        if (!check_applicable(&pb, algos[a]))
            continue;
        const char *an = clcnn_conv_algo_name(algos[a]);
        run_device(&pb, algos[a], y);
        run_device(&shifted, algos[a], ys);
        check_result(&pb, an, y, algo_tolerance(algos[a]));
        check_result(&shifted, an, ys, algo_tolerance(algos[a]));
        size_t compared = 0;
        for (size_t n = 0; n < os.n; n++)
            for (size_t k = 0; k < os.c; k++)
                for (size_t oh = 0; oh + ah < os.h; oh++)
                    for (size_t ow = 0; ow + aw < os.w; ow++) {
                        long h0 = (long)(oh * pb.p.stride_h) - (long)pb.p.pad_h;
                        long w0 = (long)(ow * pb.p.stride_w) - (long)pb.p.pad_w;
                        if (h0 < 0 || w0 < 0 || h0 + eff_h > (long)(xs.h - 1 - dh) ||
                            w0 + eff_w > (long)(xs.w - 1 - dw))
                            continue;
                        size_t i = ((n * os.c + k) * os.h + oh) * os.w + ow;
                        size_t j = ((n * os.c + k) * os.h + oh + ah) * os.w + ow + aw;
                        double bound = 2.0 * ELEM_REL * pb.mag[j];
                        if (!(fabs((double)ys[i] - (double)y[j]) <= bound))
                            print_error("%s [%s] shift along %s: y'[%zu,%zu,%zu,%zu] = %.9g but "
                                        "y[%zu,%zu,%zu,%zu] = %.9g\n",
                                        cc->name, an, along_h ? "H" : "W", n, k, oh, ow,
                                        (double)ys[i], n, k, oh + ah, ow + aw, (double)y[j]);
                        assert_true(fabs((double)ys[i] - (double)y[j]) <= bound);
                        compared++;
                    }
        assert_true(compared > 0);
    }
    free(y);
    free(ys);
    problem_free(&pb);
    problem_free(&shifted);
}

static void test_translation_equivariance(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {"shift 3x3 stride1", 2, 3, 9, 20, 4, 3, 3, 0, 0, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
        {"shift 3x3 stride(2,3)", 1, 3, 13, 23, 5, 3, 3, 0, 0, 2, 3, 1, 1, 1, F_BIAS},
        {"shift 3x3 dil(1,2) stride2", 1, 2, 11, 21, 3, 3, 3, 0, 0, 2, 2, 1, 2, 1, F_BIAS},
        {"shift 5x5 pad2 groups2", 1, 4, 12, 19, 6, 5, 5, 2, 2, 1, 1, 1, 1, 2, F_BIAS},
        {"shift 3x3 stride2 pad1 flip", 1, 3, 14, 17, 4, 3, 3, 1, 1, 2, 2, 1, 1, 1, F_FLIP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_translation(&cases[i], false, 2000 + 2 * i);
        check_translation(&cases[i], true, 2100 + 2 * i);
    }
}

/* True convolution with w equals cross-correlation with w flipped in R and S. */
static void test_convolution_is_flipped_correlation(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {"flip 3x3", 1, 3, 10, 13, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_BIAS | F_FLIP},
        {"flip 5x3 stride2 dil(1,2)", 2, 2, 13, 17, 5, 5, 3, 2, 1, 2, 2, 1, 2, 1, F_FLIP},
        {"flip 3x3 groups2 relu", 1, 4, 9, 11, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2,
         F_BIAS | F_RELU | F_FLIP},
        {"flip 2x4 depthwise", 1, 3, 7, 9, 3, 2, 4, 0, 1, 1, 1, 1, 1, 3, F_BIAS | F_FLIP},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        problem pb;
        problem_init(&pb, &cases[ci], 3000 + ci);
        assert_int_equal(pb.p.mode, CLCNN_CONV_CONVOLUTION);
        const clcnn_shape ws = pb.ws;
        float *wf = malloc(pb.nw * sizeof *wf);
        float *yc = malloc(pb.ny * sizeof *yc), *yx = malloc(pb.ny * sizeof *yx);
        assert_true(wf && yc && yx);
        for (size_t o = 0; o < ws.n * ws.c; o++)
            for (size_t r = 0; r < ws.h; r++)
                for (size_t s = 0; s < ws.w; s++)
                    wf[(o * ws.h + r) * ws.w + s] =
                        pb.w[(o * ws.h + ws.h - 1 - r) * ws.w + ws.w - 1 - s];
        clcnn_conv_params xcorr = pb.p;
        xcorr.mode = CLCNN_CONV_CROSS_CORRELATION;
        for (size_t a = 0; a < N_ALGOS; a++) {
            if (!check_applicable(&pb, algos[a]))
                continue;
            const char *an = clcnn_conv_algo_name(algos[a]);
            run_device_with(&pb, pb.w, &pb.p, algos[a], yc);
            run_device_with(&pb, wf, &xcorr, algos[a], yx);
            check_result(&pb, an, yc, algo_tolerance(algos[a]));
            check_result(&pb, an, yx, algo_tolerance(algos[a]));
            for (size_t i = 0; i < pb.ny; i++) {
                double bound = 2.0 * ELEM_REL * pb.mag[i];
                if (!(fabs((double)yc[i] - (double)yx[i]) <= bound))
                    print_error("%s [%s]: convolution y[%zu] = %.9g, flipped correlation %.9g\n",
                                pb.name, an, i, (double)yc[i], (double)yx[i]);
                assert_true(fabs((double)yc[i] - (double)yx[i]) <= bound);
            }
        }
        free(wf);
        free(yc);
        free(yx);
        problem_free(&pb);
    }
}

/* Stride 1 with pad = dilation * (R-1)/2 keeps H and W. */
static void test_same_padding_keeps_size(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {"same 3x3", 2, 3, 11, 13, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, F_BIAS},
        {"same 5x5", 1, 2, 9, 17, 3, 5, 5, 2, 2, 1, 1, 1, 1, 1, F_BIAS | F_RELU},
        {"same 7x3", 1, 3, 10, 7, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, F_FLIP},
        {"same 3x3 dilation2", 1, 3, 12, 12, 4, 3, 3, 2, 2, 1, 1, 2, 2, 1, F_BIAS},
        {"same 1x1", 1, 5, 6, 6, 7, 1, 1, 0, 0, 1, 1, 1, 1, 1, F_BIAS},
        {"same 3x3 depthwise", 1, 4, 8, 31, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, F_BIAS},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const conv_case *cc = &cases[ci];
        problem pb;
        problem_init(&pb, cc, 4000 + ci);
        assert_int_equal(pb.ys.h, cc->h);
        assert_int_equal(pb.ys.w, cc->w);
        float *got = malloc(pb.ny * sizeof *got);
        assert_non_null(got);
        for (size_t a = 0; a < N_ALGOS; a++) {
            if (!check_applicable(&pb, algos[a]))
                continue;
            run_device(&pb, algos[a], got);
            check_result(&pb, clcnn_conv_algo_name(algos[a]), got, algo_tolerance(algos[a]));
        }
        free(got);
        problem_free(&pb);
    }
}

/* Two runs of one problem give the same bits. */
static void test_deterministic(void **state)
{
    (void)state;
    static const conv_case cc = {"determinism",  2, 8, 15, 15, 12, 3, 3, 1, 1, 1, 1, 1, 1, 2,
                                 F_BIAS | F_RELU};
    problem pb;
    problem_init(&pb, &cc, 5000);
    float *a1 = malloc(pb.ny * sizeof *a1), *a2 = malloc(pb.ny * sizeof *a2);
    assert_true(a1 && a2);
    for (size_t a = 0; a < N_ALGOS; a++) {
        if (!check_applicable(&pb, algos[a]))
            continue;
        run_device(&pb, algos[a], a1);
        run_device(&pb, algos[a], a2);
        check_result(&pb, clcnn_conv_algo_name(algos[a]), a1, algo_tolerance(algos[a]));
        assert_memory_equal(a1, a2, pb.ny * sizeof *a1);
    }
    free(a1);
    free(a2);
    problem_free(&pb);
}

/* ------------------------------------------------------------------------------------------ */
/* Output shape                                                                               */

static clcnn_conv_params params_of(size_t pad_h, size_t pad_w, size_t stride_h, size_t stride_w,
                                   size_t dil_h, size_t dil_w, size_t groups)
{
    clcnn_conv_params p = clcnn_conv_params_default();
    p.pad_h = pad_h;
    p.pad_w = pad_w;
    p.stride_h = stride_h;
    p.stride_w = stride_w;
    p.dilation_h = dil_h;
    p.dilation_w = dil_w;
    p.groups = groups;
    return p;
}

static void expect_shape(clcnn_shape in, clcnn_shape wt, clcnn_conv_params p, clcnn_shape want)
{
    clcnn_shape out = {0, 0, 0, 0};
    assert_ok(clcnn_conv2d_output_shape(in, wt, &p, &out));
    if (out.n != want.n || out.c != want.c || out.h != want.h || out.w != want.w)
        print_error("output shape (%zu,%zu,%zu,%zu), wanted (%zu,%zu,%zu,%zu)\n", out.n, out.c,
                    out.h, out.w, want.n, want.c, want.h, want.w);
    assert_memory_equal(&out, &want, sizeof out);
}

static void test_output_shape_formula(void **state)
{
    (void)state;
    /* H=7, R=3, pad 1, stride 2: (7 + 2 - 2 - 1) / 2 + 1 = 4. */
    expect_shape((clcnn_shape){1, 3, 7, 7}, (clcnn_shape){8, 3, 3, 3},
                 params_of(1, 1, 2, 2, 1, 1, 1), (clcnn_shape){1, 8, 4, 4});
    /* Dilation 2 makes a 3x3 kernel span 5: 7 - 5 + 1 = 3. */
    expect_shape((clcnn_shape){2, 3, 7, 7}, (clcnn_shape){4, 3, 3, 3},
                 params_of(0, 0, 1, 1, 2, 2, 1), (clcnn_shape){2, 4, 3, 3});
    /* Floor: (8 - 3) / 2 + 1 = 3. */
    expect_shape((clcnn_shape){1, 1, 8, 8}, (clcnn_shape){1, 1, 3, 3},
                 params_of(0, 0, 2, 2, 1, 1, 1), (clcnn_shape){1, 1, 3, 3});
    /* AlexNet conv1: 224, 11x11, stride 4, pad 2 -> 55. */
    expect_shape((clcnn_shape){1, 3, 224, 224}, (clcnn_shape){64, 3, 11, 11},
                 params_of(2, 2, 4, 4, 1, 1, 1), (clcnn_shape){1, 64, 55, 55});
    /* Per-dimension parameters: H 5, 1 tall, pad 0, stride 1; W 9, 3 wide, pad 1, stride 2 -> 5. */
    expect_shape((clcnn_shape){3, 2, 5, 9}, (clcnn_shape){5, 2, 1, 3},
                 params_of(0, 1, 1, 2, 1, 1, 1), (clcnn_shape){3, 5, 5, 5});
    /* Dilation (2,1): H 11, span 5 -> 7; W 9, span 3, pad 1 -> 9. */
    expect_shape((clcnn_shape){1, 2, 11, 9}, (clcnn_shape){3, 2, 3, 3},
                 params_of(0, 1, 1, 1, 2, 1, 1), (clcnn_shape){1, 3, 7, 9});
    /* A kernel larger than the input fits once padded: 3 + 4 - 5 + 1 = 3. */
    expect_shape((clcnn_shape){1, 2, 3, 3}, (clcnn_shape){3, 2, 5, 5},
                 params_of(2, 2, 1, 1, 1, 1, 1), (clcnn_shape){1, 3, 3, 3});
    /* Exactly the padded input: one output. */
    expect_shape((clcnn_shape){1, 1, 3, 3}, (clcnn_shape){1, 1, 5, 5},
                 params_of(1, 1, 1, 1, 1, 1, 1), (clcnn_shape){1, 1, 1, 1});
    /* Stride larger than the kernel: (10 - 1) / 3 + 1 = 4. */
    expect_shape((clcnn_shape){1, 4, 10, 11}, (clcnn_shape){5, 4, 1, 1},
                 params_of(0, 0, 3, 3, 1, 1, 1), (clcnn_shape){1, 5, 4, 4});
    /* Groups: weight channels are C / groups; depthwise and depthwise with a multiplier. */
    expect_shape((clcnn_shape){1, 4, 9, 9}, (clcnn_shape){6, 2, 3, 3},
                 params_of(1, 1, 1, 1, 1, 1, 2), (clcnn_shape){1, 6, 9, 9});
    expect_shape((clcnn_shape){1, 8, 6, 6}, (clcnn_shape){8, 1, 3, 3},
                 params_of(1, 1, 1, 1, 1, 1, 8), (clcnn_shape){1, 8, 6, 6});
    expect_shape((clcnn_shape){1, 4, 6, 6}, (clcnn_shape){8, 1, 3, 3},
                 params_of(0, 0, 1, 1, 1, 1, 4), (clcnn_shape){1, 8, 4, 4});
}

/* Asserts [expr] fails with [status] and leaves *out alone. */
#define expect_shape_refused(in, wt, p, status)                                                    \
    do {                                                                                           \
        clcnn_conv_params p_ = (p);                                                                \
        clcnn_shape out_ = {91, 92, 93, 94};                                                       \
        clcnn_status s_ = clcnn_conv2d_output_shape((in), (wt), &p_, &out_);                       \
        if (s_ != (status))                                                                        \
            print_error("output_shape -> %s (%s), wanted %s\n", clcnn_status_name(s_),             \
                        clcnn_last_error(), clcnn_status_name(status));                            \
        assert_int_equal(s_, (status));                                                            \
        assert_true(out_.n == 91 && out_.c == 92 && out_.h == 93 && out_.w == 94);                 \
    } while (0)

/* Asserts the last error mentions each of the given numbers (as decimal text). */
static void expect_msg_numbers(const size_t *nums, size_t count)
{
    const char *msg = clcnn_last_error();
    for (size_t i = 0; i < count; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%zu", nums[i]);
        if (strstr(msg, buf) == NULL)
            print_error("message '%s' does not mention %s\n", msg, buf);
        assert_non_null(strstr(msg, buf));
    }
}

static void test_output_shape_refusals(void **state)
{
    (void)state;
    clcnn_conv_params d = clcnn_conv_params_default();

    /* Kernel larger than the padded input: H 13 + 2 < 17. */
    expect_shape_refused(((clcnn_shape){1, 1, 13, 29}), ((clcnn_shape){1, 1, 17, 3}),
                         params_of(1, 1, 1, 1, 1, 1, 1), CLCNN_STATUS_BAD_SHAPE);
    expect_msg_numbers((const size_t[]){17}, 1);
    /* Dilation makes a 3-wide kernel span 2*(3-1)+1 = 5 > 4 (W). */
    expect_shape_refused(((clcnn_shape){1, 1, 8, 4}), ((clcnn_shape){1, 1, 1, 3}),
                         params_of(0, 0, 1, 1, 1, 2, 1), CLCNN_STATUS_BAD_SHAPE);
    assert_true(clcnn_last_error()[0] != '\0');
    /* Weight channels do not match C / groups. */
    expect_shape_refused(((clcnn_shape){1, 12, 8, 8}), ((clcnn_shape){4, 7, 3, 3}), d,
                         CLCNN_STATUS_BAD_SHAPE);
    expect_msg_numbers((const size_t[]){12, 7}, 2);
    expect_shape_refused(((clcnn_shape){1, 12, 8, 8}), ((clcnn_shape){4, 12, 3, 3}),
                         params_of(0, 0, 1, 1, 1, 1, 2), CLCNN_STATUS_BAD_SHAPE);
    expect_msg_numbers((const size_t[]){12}, 1);
    /* Groups that do not divide C (12 / 5) or K (14 / 4). */
    expect_shape_refused(((clcnn_shape){1, 12, 8, 8}), ((clcnn_shape){10, 2, 3, 3}),
                         params_of(0, 0, 1, 1, 1, 1, 5), CLCNN_STATUS_BAD_SHAPE);
    expect_msg_numbers((const size_t[]){12}, 1);
    expect_shape_refused(((clcnn_shape){1, 8, 8, 8}), ((clcnn_shape){14, 2, 3, 3}),
                         params_of(0, 0, 1, 1, 1, 1, 4), CLCNN_STATUS_BAD_SHAPE);
    expect_msg_numbers((const size_t[]){14}, 1);
    /* Zero stride, dilation, groups; in each dimension. */
    clcnn_shape in = {1, 4, 8, 8}, wt = {4, 4, 3, 3};
    expect_shape_refused(in, wt, params_of(0, 0, 0, 1, 1, 1, 1), CLCNN_STATUS_INVALID_ARG);
    expect_shape_refused(in, wt, params_of(0, 0, 1, 0, 1, 1, 1), CLCNN_STATUS_INVALID_ARG);
    expect_shape_refused(in, wt, params_of(0, 0, 1, 1, 0, 1, 1), CLCNN_STATUS_INVALID_ARG);
    expect_shape_refused(in, wt, params_of(0, 0, 1, 1, 1, 0, 1), CLCNN_STATUS_INVALID_ARG);
    expect_shape_refused(in, wt, params_of(0, 0, 1, 1, 1, 1, 0), CLCNN_STATUS_INVALID_ARG);
    /* NULL params or output. */
    clcnn_shape out = {91, 92, 93, 94};
    assert_int_equal(clcnn_conv2d_output_shape(in, wt, NULL, &out), CLCNN_STATUS_INVALID_ARG);
    assert_true(out.n == 91 && out.c == 92 && out.h == 93 && out.w == 94);
    assert_int_equal(clcnn_conv2d_output_shape(in, wt, &d, NULL), CLCNN_STATUS_INVALID_ARG);
}

/* ------------------------------------------------------------------------------------------ */
/* Forward refusals, algorithm names, defaults, workspace                                     */

typedef struct fwd_fixture {
    clcnn_tensor *x, *w, *bias, *y;
    float pattern[1 * 4 * 8 * 8];
} fwd_fixture;

/* x (1,3,8,8), w (4,3,3,3), bias (1,1,1,4); with pad 1 y is (1,4,8,8), holding a pattern. */
static void fwd_setup(fwd_fixture *f)
{
    test_rng rng;
    test_rng_seed(&rng, 6000);
    float xh[3 * 64], wh[4 * 27], bh[4];
    test_rng_fill(&rng, xh, 3 * 64, -1.0f, 1.0f);
    test_rng_fill(&rng, wh, 4 * 27, -1.0f, 1.0f);
    test_rng_fill(&rng, bh, 4, -1.0f, 1.0f);
    for (size_t i = 0; i < 4 * 64; i++)
        f->pattern[i] = 1000.0f + (float)i;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 3, 8, 8}, &f->x));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){4, 3, 3, 3}, &f->w));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, 4}, &f->bias));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 4, 8, 8}, &f->y));
    assert_ok(clcnn_tensor_upload(f->x, xh, 3 * 64));
    assert_ok(clcnn_tensor_upload(f->w, wh, 4 * 27));
    assert_ok(clcnn_tensor_upload(f->bias, bh, 4));
    assert_ok(clcnn_tensor_upload(f->y, f->pattern, 4 * 64));
}

static void fwd_teardown(fwd_fixture *f)
{
    clcnn_tensor_release(f->x);
    clcnn_tensor_release(f->w);
    clcnn_tensor_release(f->bias);
    clcnn_tensor_release(f->y);
}

/* Asserts tensor [t] still holds [pattern] (a refused call must not write y). */
static void expect_untouched(const clcnn_tensor *t, const float *pattern)
{
    size_t n = clcnn_tensor_count(t);
    float *got = malloc(n * sizeof *got);
    assert_non_null(got);
    assert_ok(clcnn_tensor_download(t, got, n));
    assert_memory_equal(got, pattern, n * sizeof *got);
    free(got);
}

#define expect_forward_refused(call, status)                                                       \
    do {                                                                                           \
        clcnn_status s_ = (call);                                                                  \
        if (s_ != (status))                                                                        \
            print_error("%s -> %s (%s), wanted %s\n", #call, clcnn_status_name(s_),                \
                        clcnn_last_error(), clcnn_status_name(status));                            \
        assert_int_equal(s_, (status));                                                            \
        assert_true(clcnn_last_error()[0] != '\0');                                                \
    } while (0)

static void test_forward_refuses_bad_output(void **state)
{
    (void)state;
    fwd_fixture f;
    fwd_setup(&f);
    clcnn_conv_params p = params_of(1, 1, 1, 1, 1, 1, 1);
    static const clcnn_shape wrong[] = {
        {1, 4, 7, 8}, {1, 4, 8, 9}, {1, 5, 8, 8}, {2, 4, 8, 8}, {1, 1, 16, 16}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        clcnn_tensor *y;
        size_t n = wrong[i].n * wrong[i].c * wrong[i].h * wrong[i].w;
        float *pat = malloc(n * sizeof *pat);
        assert_non_null(pat);
        for (size_t j = 0; j < n; j++)
            pat[j] = -7.0f - (float)j;
        assert_ok(clcnn_tensor_create(test_dev, wrong[i], &y));
        assert_ok(clcnn_tensor_upload(y, pat, n));
        for (size_t a = 0; a < N_ALGOS; a++) {
            expect_forward_refused(
                clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &p, algos[a], NULL, 0, y),
                CLCNN_STATUS_BAD_SHAPE);
            /* The message names the shape given or the one expected. */
            char given[64];
            snprintf(given, sizeof given, "(%zu,%zu,%zu,%zu)", wrong[i].n, wrong[i].c, wrong[i].h,
                     wrong[i].w);
            const char *msg = clcnn_last_error();
            if (strstr(msg, given) == NULL && strstr(msg, "(1,4,8,8)") == NULL)
                print_error("message '%s' names neither %s nor (1,4,8,8)\n", msg, given);
            assert_true(strstr(msg, given) != NULL || strstr(msg, "(1,4,8,8)") != NULL);
            expect_untouched(y, pat);
        }
        clcnn_tensor_release(y);
        free(pat);
    }
    expect_untouched(f.y, f.pattern);
    fwd_teardown(&f);
}

static void test_forward_refuses_bad_inputs(void **state)
{
    (void)state;
    fwd_fixture f;
    fwd_setup(&f);
    clcnn_conv_params p = params_of(1, 1, 1, 1, 1, 1, 1);
    const clcnn_conv_algo algo = CLCNN_CONV_ALGO_DIRECT;

    /* Bias with the wrong count (5 for K = 4), and with 3. */
    clcnn_tensor *b5, *b3;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, 5}, &b5));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){3, 1, 1, 1}, &b3));
    assert_ok(clcnn_tensor_fill(b5, 1.0f));
    assert_ok(clcnn_tensor_fill(b3, 1.0f));
    for (size_t a = 0; a < N_ALGOS; a++) {
        expect_forward_refused(
            clcnn_conv2d_forward(test_dev, f.x, f.w, b5, &p, algos[a], NULL, 0, f.y),
            CLCNN_STATUS_BAD_SHAPE);
        expect_msg_numbers((const size_t[]){5}, 1);
        expect_forward_refused(
            clcnn_conv2d_forward(test_dev, f.x, f.w, b3, &p, algos[a], NULL, 0, f.y),
            CLCNN_STATUS_BAD_SHAPE);
        expect_untouched(f.y, f.pattern);
    }
    clcnn_tensor_release(b5);
    clcnn_tensor_release(b3);

    /* Weight channels that do not match x. */
    clcnn_tensor *w2;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){4, 2, 3, 3}, &w2));
    assert_ok(clcnn_tensor_fill(w2, 0.5f));
    expect_forward_refused(clcnn_conv2d_forward(test_dev, f.x, w2, f.bias, &p, algo, NULL, 0, f.y),
                           CLCNN_STATUS_BAD_SHAPE);
    clcnn_tensor_release(w2);
    /* Kernel larger than the padded input. */
    clcnn_tensor *wbig;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){4, 3, 11, 11}, &wbig));
    assert_ok(clcnn_tensor_fill(wbig, 0.5f));
    expect_forward_refused(
        clcnn_conv2d_forward(test_dev, f.x, wbig, f.bias, &p, algo, NULL, 0, f.y),
        CLCNN_STATUS_BAD_SHAPE);
    clcnn_tensor_release(wbig);
    expect_untouched(f.y, f.pattern);

    /* NULL arguments and bad parameters. */
    expect_forward_refused(
        clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, NULL, algo, NULL, 0, f.y),
        CLCNN_STATUS_INVALID_ARG);
    expect_forward_refused(clcnn_conv2d_forward(NULL, f.x, f.w, f.bias, &p, algo, NULL, 0, f.y),
                           CLCNN_STATUS_INVALID_ARG);
    expect_forward_refused(
        clcnn_conv2d_forward(test_dev, NULL, f.w, f.bias, &p, algo, NULL, 0, f.y),
        CLCNN_STATUS_INVALID_ARG);
    expect_forward_refused(
        clcnn_conv2d_forward(test_dev, f.x, NULL, f.bias, &p, algo, NULL, 0, f.y),
        CLCNN_STATUS_INVALID_ARG);
    expect_forward_refused(
        clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &p, algo, NULL, 0, NULL),
        CLCNN_STATUS_INVALID_ARG);
    clcnn_conv_params z = p;
    z.stride_w = 0;
    expect_forward_refused(clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &z, algo, NULL, 0, f.y),
                           CLCNN_STATUS_INVALID_ARG);
    z = p;
    z.dilation_h = 0;
    expect_forward_refused(clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &z, algo, NULL, 0, f.y),
                           CLCNN_STATUS_INVALID_ARG);
    z = p;
    z.groups = 0;
    expect_forward_refused(clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &z, algo, NULL, 0, f.y),
                           CLCNN_STATUS_INVALID_ARG);
    /* An algorithm outside the list is refused (whatever the status) without writing y. */
    clcnn_status s =
        clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &p, (clcnn_conv_algo)999, NULL, 0, f.y);
    assert_int_not_equal(s, CLCNN_OK);
    expect_untouched(f.y, f.pattern);
    /* A tensor from another device object is refused without writing y. */
    clcnn_device *other;
    assert_ok(clcnn_device_create(NULL, &other));
    clcnn_tensor *xo;
    assert_ok(clcnn_tensor_create(other, (clcnn_shape){1, 3, 8, 8}, &xo));
    assert_ok(clcnn_tensor_fill(xo, 1.0f));
    assert_int_not_equal(clcnn_conv2d_forward(test_dev, xo, f.w, f.bias, &p, algo, NULL, 0, f.y),
                         CLCNN_OK);
    expect_untouched(f.y, f.pattern);
    clcnn_tensor_release(xo);
    clcnn_device_release(other);

    const char *reason = NULL;
    assert_false(clcnn_conv2d_applicable(test_dev, clcnn_tensor_shape(f.x), clcnn_tensor_shape(f.w),
                                         &p, (clcnn_conv_algo)999, &reason));
    assert_non_null(reason);
    fwd_teardown(&f);
}

/* The bias may come in any shape with K elements; the result does not depend on it. */
static void test_bias_any_shape(void **state)
{
    (void)state;
    fwd_fixture f;
    fwd_setup(&f);
    clcnn_conv_params p = params_of(1, 1, 1, 1, 1, 1, 1);
    float bh[4], want[256], got[256];
    assert_ok(clcnn_tensor_download(f.bias, bh, 4));
    assert_ok(clcnn_tensor_fill(f.y, NAN));
    assert_ok(
        clcnn_conv2d_forward(test_dev, f.x, f.w, f.bias, &p, CLCNN_CONV_ALGO_DIRECT, NULL, 0, f.y));
    assert_ok(clcnn_tensor_download(f.y, want, 256));
    static const clcnn_shape shapes[] = {{4, 1, 1, 1}, {1, 4, 1, 1}, {1, 1, 2, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        clcnn_tensor *b;
        assert_ok(clcnn_tensor_create(test_dev, shapes[i], &b));
        assert_ok(clcnn_tensor_upload(b, bh, 4));
        assert_ok(clcnn_tensor_fill(f.y, NAN));
        assert_ok(
            clcnn_conv2d_forward(test_dev, f.x, f.w, b, &p, CLCNN_CONV_ALGO_DIRECT, NULL, 0, f.y));
        assert_ok(clcnn_tensor_download(f.y, got, 256));
        assert_memory_equal(got, want, sizeof want);
        clcnn_tensor_release(b);
    }
    fwd_teardown(&f);
}

static void test_algo_names_and_parse(void **state)
{
    (void)state;
    assert_string_equal(clcnn_conv_algo_name(CLCNN_CONV_ALGO_DIRECT), "direct");
    assert_string_equal(clcnn_conv_algo_name(CLCNN_CONV_ALGO_AUTO), "auto");
    assert_null(clcnn_conv_algo_name((clcnn_conv_algo)999));
    assert_null(clcnn_conv_algo_name((clcnn_conv_algo)-2));
    assert_int_equal(CLCNN_CONV_ALGO_DIRECT, 0);
    assert_int_equal(CLCNN_CONV_ALGO_AUTO, -1);

    clcnn_conv_algo algo = (clcnn_conv_algo)42;
    assert_ok(clcnn_conv_algo_parse("direct", &algo));
    assert_int_equal(algo, CLCNN_CONV_ALGO_DIRECT);
    assert_ok(clcnn_conv_algo_parse("auto", &algo));
    assert_int_equal(algo, CLCNN_CONV_ALGO_AUTO);
    /* Every listed algorithm round-trips through its name. */
    for (size_t a = 0; a < N_ALGOS; a++) {
        const char *name = clcnn_conv_algo_name(algos[a]);
        assert_non_null(name);
        algo = (clcnn_conv_algo)42;
        assert_ok(clcnn_conv_algo_parse(name, &algo));
        assert_int_equal(algo, algos[a]);
    }
    algo = (clcnn_conv_algo)42;
    assert_status_msg(clcnn_conv_algo_parse("winograd-ish", &algo), CLCNN_STATUS_INVALID_ARG,
                      "winograd-ish");
    assert_non_null(strstr(clcnn_last_error(), "direct")); /* names the known ones */
    assert_int_equal(algo, 42);
    assert_status_msg(clcnn_conv_algo_parse("", &algo), CLCNN_STATUS_INVALID_ARG, "direct");
    assert_status_msg(clcnn_conv_algo_parse("Direct ", &algo), CLCNN_STATUS_INVALID_ARG, "Direct ");
    assert_int_equal(algo, 42);
    assert_int_equal(clcnn_conv_algo_parse(NULL, &algo), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_conv_algo_parse("direct", NULL), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(algo, 42);
}

static void test_params_default_and_tolerance(void **state)
{
    (void)state;
    clcnn_conv_params p = clcnn_conv_params_default();
    assert_int_equal(p.pad_h, 0);
    assert_int_equal(p.pad_w, 0);
    assert_int_equal(p.stride_h, 1);
    assert_int_equal(p.stride_w, 1);
    assert_int_equal(p.dilation_h, 1);
    assert_int_equal(p.dilation_w, 1);
    assert_int_equal(p.groups, 1);
    assert_int_equal(p.mode, CLCNN_CONV_CROSS_CORRELATION);
    assert_false(p.relu);

    /* Solvers have a small positive NMSE bound; AUTO, unknown values and the algorithms of the
     * backward passes only (implicit_gemm) have -1. */
    for (size_t a = 0; a < N_ALGOS; a++) {
        double tol = clcnn_conv_algo_tolerance(algos[a]);
        if (algos[a] == CLCNN_CONV_ALGO_IMPLICIT_GEMM) {
            assert_true(tol == -1.0);
            assert_true(clcnn_conv_pass_tolerance(CLCNN_CONV_PASS_BWD_WEIGHTS, algos[a]) > 0.0);
        } else if (is_solver(algos[a])) {
            assert_true(tol > 0.0 && tol < 1e-2);
        } else {
            assert_true(tol == -1.0);
        }
    }
    assert_true(clcnn_conv_algo_tolerance(CLCNN_CONV_ALGO_DIRECT) <= 1e-8);
    assert_true(clcnn_conv_algo_tolerance((clcnn_conv_algo)999) == -1.0);
}

static void test_workspace(void **state)
{
    (void)state;
    const clcnn_shape xs = {2, 4, 11, 13}, ws = {6, 2, 3, 3};
    const clcnn_conv_params p = params_of(1, 1, 2, 1, 1, 1, 2);
    for (size_t a = 0; a < N_ALGOS; a++) {
        if (!is_solver(algos[a]) || !clcnn_conv2d_applicable(test_dev, xs, ws, &p, algos[a], NULL))
            continue;
        size_t bytes = (size_t)-1;
        assert_ok(clcnn_conv2d_workspace_size(test_dev, xs, ws, &p, algos[a], &bytes));
        assert_true(bytes != (size_t)-1);

        /* NULL workspace lets the call allocate its own; a caller's buffer of the reported size
         * gives the same bits. */
        problem pb;
        problem_init_shapes(&pb, "workspace", xs, ws, p, true, 7000);
        float *y1 = malloc(pb.ny * sizeof *y1), *y2 = malloc(pb.ny * sizeof *y2);
        assert_true(y1 && y2);
        run_device(&pb, algos[a], y1);
        check_result(&pb, clcnn_conv_algo_name(algos[a]), y1, algo_tolerance(algos[a]));
        if (bytes > 0) {
            cl_int err = CL_SUCCESS;
            cl_mem buf = clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE, bytes,
                                        NULL, &err);
            assert_int_equal(err, CL_SUCCESS);
            clcnn_tensor *x, *w, *b, *y;
            assert_ok(clcnn_tensor_create(test_dev, xs, &x));
            assert_ok(clcnn_tensor_create(test_dev, ws, &w));
            assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){ws.n, 1, 1, 1}, &b));
            assert_ok(clcnn_tensor_create(test_dev, pb.ys, &y));
            assert_ok(clcnn_tensor_upload(x, pb.x, pb.nx));
            assert_ok(clcnn_tensor_upload(w, pb.w, pb.nw));
            assert_ok(clcnn_tensor_upload(b, pb.b, ws.n));
            assert_ok(clcnn_tensor_fill(y, NAN));
            assert_ok(clcnn_conv2d_forward(test_dev, x, w, b, &p, algos[a], buf, bytes, y));
            assert_ok(clcnn_tensor_download(y, y2, pb.ny));
            assert_memory_equal(y1, y2, pb.ny * sizeof *y1);
            clcnn_tensor_release(x);
            clcnn_tensor_release(w);
            clcnn_tensor_release(b);
            clcnn_tensor_release(y);
            clReleaseMemObject(buf);
        }
        free(y1);
        free(y2);
        problem_free(&pb);
    }
    /* Refusals as for the output shape. */
    size_t bytes = 0;
    clcnn_conv_params z = p;
    z.stride_h = 0;
    assert_int_equal(
        clcnn_conv2d_workspace_size(test_dev, xs, ws, &z, CLCNN_CONV_ALGO_DIRECT, &bytes),
        CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(
        clcnn_conv2d_workspace_size(test_dev, xs, ws, NULL, CLCNN_CONV_ALGO_DIRECT, &bytes),
        CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(
        clcnn_conv2d_workspace_size(test_dev, xs, ws, &p, CLCNN_CONV_ALGO_DIRECT, NULL),
        CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_conv2d_workspace_size(test_dev, xs, (clcnn_shape){6, 3, 3, 3}, &p,
                                                 CLCNN_CONV_ALGO_DIRECT, &bytes),
                     CLCNN_STATUS_BAD_SHAPE);
    assert_int_equal(clcnn_conv2d_workspace_size(test_dev, xs, (clcnn_shape){6, 2, 15, 3}, &p,
                                                 CLCNN_CONV_ALGO_DIRECT, &bytes),
                     CLCNN_STATUS_BAD_SHAPE);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_default_and_tolerance),
        cmocka_unit_test(test_algo_names_and_parse),
        cmocka_unit_test(test_output_shape_formula),
        cmocka_unit_test(test_output_shape_refusals),
        cmocka_unit_test(test_forward_refuses_bad_output),
        cmocka_unit_test(test_forward_refuses_bad_inputs),
        cmocka_unit_test(test_bias_any_shape),
        cmocka_unit_test(test_workspace),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_translation_equivariance),
        cmocka_unit_test(test_convolution_is_flipped_correlation),
        cmocka_unit_test(test_same_padding_keeps_size),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests_name("conv2d", tests, test_group_setup, test_group_teardown);
}
