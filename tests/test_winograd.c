/* The Winograd solvers F(2x2,3x3) and F(4x4,3x3): element-wise error against a float64 reference
 * on data of realistic scale (He-initialised weights, C = 64 and 256), the transformed-filter
 * cache (reused for the same weights, refreshed for new ones), chunked runs, and the border
 * cases (sizes that are not multiples of the tile, pad 0/1/2, N=3, C=1, K=1, flip, ReLU). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "conv2d_impl.h"

/* Element-wise bounds on max|got - ref| / max|ref| for one layer. Rounding in the transforms
 * grows with the tile: alpha^2 = 16 vs 36 terms per output and the F(4x4) matrices' entries up
 * to 8 (A^T) and 5 (B^T) against 1 for F(2x2). Measured on POCL (AVX-512) with this file's data
 * and seeds: F(2x2) 3.2e-7 to 6.3e-7 (below direct's 8.6e-7 to 1.5e-6: its sums run over C
 * terms, direct's over 9C), F(4x4) 1.4e-6 to 5.1e-6. The bounds leave about 6x of margin. */
#define F2_MAX_REL 4e-6
#define F4_MAX_REL 3e-5
/* The per-element bound test_conv2d.c uses for every solver, relative to sum |x*w| + |bias|. */
#define ELEM_REL 1e-4

typedef struct wcase {
    const char *name;
    size_t n, c, h, w, k, pad;
    bool bias, relu, flip;
} wcase;

typedef struct wprob {
    clcnn_shape xs, ws, ys;
    clcnn_conv_params p;
    bool bias;
    size_t nx, nw, ny;
    float *x, *w, *b;
    double *ref, *mag;
} wprob;

/* Standard normal by Box-Muller. */
static double normal(test_rng *rng)
{
    double u1 = test_rng_uniform(rng, 1e-300, 1.0), u2 = test_rng_uniform(rng, 0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void reference(wprob *pb)
{
    const clcnn_shape xs = pb->xs, ys = pb->ys;
    const bool flip = pb->p.mode == CLCNN_CONV_CONVOLUTION;
    const long pad = (long)pb->p.pad_h;
    for (size_t n = 0; n < ys.n; n++)
        for (size_t k = 0; k < ys.c; k++)
            for (size_t oh = 0; oh < ys.h; oh++)
                for (size_t ow = 0; ow < ys.w; ow++) {
                    double acc = 0.0, mag = 0.0;
                    for (size_t c = 0; c < xs.c; c++)
                        for (long r = 0; r < 3; r++)
                            for (long s = 0; s < 3; s++) {
                                long ih = (long)oh + r - pad, iw = (long)ow + s - pad;
                                if (ih < 0 || iw < 0 || ih >= (long)xs.h || iw >= (long)xs.w)
                                    continue;
                                long rr = flip ? 2 - r : r, ss = flip ? 2 - s : s;
                                double xv =
                                    pb->x[((n * xs.c + c) * xs.h + (size_t)ih) * xs.w + (size_t)iw];
                                double wv = pb->w[(k * xs.c + c) * 9 + (size_t)(rr * 3 + ss)];
                                acc += xv * wv;
                                mag += fabs(xv * wv);
                            }
                    if (pb->bias) {
                        acc += pb->b[k];
                        mag += fabs((double)pb->b[k]);
                    }
                    if (pb->p.relu && acc < 0.0)
                        acc = 0.0;
                    size_t i = ((n * ys.c + k) * ys.h + oh) * ys.w + ow;
                    pb->ref[i] = acc;
                    pb->mag[i] = mag;
                }
}

/* Inputs uniform in [lo, 1) ([0, 1) models post-ReLU activations), weights ~ N(0, 2 / (9 C))
 * (He initialisation), bias uniform in [-0.1, 0.1). */
static void wprob_init(wprob *pb, const wcase *wc, double lo, uint64_t seed)
{
    memset(pb, 0, sizeof *pb);
    pb->xs = (clcnn_shape){wc->n, wc->c, wc->h, wc->w};
    pb->ws = (clcnn_shape){wc->k, wc->c, 3, 3};
    pb->p = clcnn_conv_params_default();
    pb->p.pad_h = pb->p.pad_w = wc->pad;
    pb->p.relu = wc->relu;
    pb->p.mode = wc->flip ? CLCNN_CONV_CONVOLUTION : CLCNN_CONV_CROSS_CORRELATION;
    pb->bias = wc->bias;
    assert_ok(clcnn_conv2d_output_shape(pb->xs, pb->ws, &pb->p, &pb->ys));
    pb->nx = wc->n * wc->c * wc->h * wc->w;
    pb->nw = wc->k * wc->c * 9;
    pb->ny = pb->ys.n * pb->ys.c * pb->ys.h * pb->ys.w;
    pb->x = malloc(pb->nx * sizeof *pb->x);
    pb->w = malloc(pb->nw * sizeof *pb->w);
    pb->b = malloc(wc->k * sizeof *pb->b);
    pb->ref = malloc(pb->ny * sizeof *pb->ref);
    pb->mag = malloc(pb->ny * sizeof *pb->mag);
    assert_true(pb->x && pb->w && pb->b && pb->ref && pb->mag);
    test_rng rng;
    test_rng_seed(&rng, seed);
    test_rng_fill(&rng, pb->x, pb->nx, (float)lo, 1.0f);
    const double sd = sqrt(2.0 / (9.0 * (double)wc->c));
    for (size_t i = 0; i < pb->nw; i++)
        pb->w[i] = (float)(sd * normal(&rng));
    test_rng_fill(&rng, pb->b, wc->k, -0.1f, 0.1f);
    reference(pb);
}

static void wprob_free(wprob *pb)
{
    free(pb->x);
    free(pb->w);
    free(pb->b);
    free(pb->ref);
    free(pb->mag);
}

/* Device tensors of one problem. */
typedef struct wdev {
    clcnn_tensor *x, *w, *b, *y;
} wdev;

static void wdev_init(wdev *d, const wprob *pb)
{
    assert_ok(clcnn_tensor_create(test_dev, pb->xs, &d->x));
    assert_ok(clcnn_tensor_create(test_dev, pb->ws, &d->w));
    assert_ok(clcnn_tensor_create(test_dev, pb->ys, &d->y));
    assert_ok(clcnn_tensor_upload(d->x, pb->x, pb->nx));
    assert_ok(clcnn_tensor_upload(d->w, pb->w, pb->nw));
    d->b = NULL;
    if (pb->bias) {
        assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, pb->ws.n}, &d->b));
        assert_ok(clcnn_tensor_upload(d->b, pb->b, pb->ws.n));
    }
}

static void wdev_free(wdev *d)
{
    clcnn_tensor_release(d->x);
    clcnn_tensor_release(d->w);
    clcnn_tensor_release(d->b);
    clcnn_tensor_release(d->y);
}

/* Poisons y with NaN, runs [algo], downloads into [out]. */
static void forward(const wprob *pb, wdev *d, clcnn_conv_algo algo, float *out)
{
    assert_ok(clcnn_tensor_fill(d->y, NAN));
    assert_ok(clcnn_conv2d_forward(test_dev, d->x, d->w, d->b, &pb->p, algo, NULL, 0, d->y));
    assert_ok(clcnn_tensor_download(d->y, out, pb->ny));
}

typedef struct werr {
    double max_rel; /* max |err| / max |ref| */
    double nmse;
    size_t bad; /* elements outside ELEM_REL * magnitude, or not finite */
} werr;

static werr measure(const wprob *pb, const float *got)
{
    werr e = {0.0, 0.0, 0};
    double max_err = 0.0, max_ref = 0.0, ss_err = 0.0, ss_ref = 0.0;
    for (size_t i = 0; i < pb->ny; i++) {
        double d = (double)got[i] - pb->ref[i];
        if (!isfinite(got[i]) || fabs(d) > ELEM_REL * pb->mag[i]) {
            e.bad++;
            continue;
        }
        max_err = fmax(max_err, fabs(d));
        max_ref = fmax(max_ref, fabs(pb->ref[i]));
        ss_err += d * d;
        ss_ref += pb->ref[i] * pb->ref[i];
    }
    e.max_rel = max_ref > 0.0 ? max_err / max_ref : max_err;
    e.nmse = ss_ref > 0.0 ? ss_err / ss_ref : ss_err;
    return e;
}

static double max_rel_bound(clcnn_conv_algo algo)
{
    return algo == CLCNN_CONV_ALGO_WINOGRAD2 ? F2_MAX_REL : F4_MAX_REL;
}

/* Checks every output against the reference: finite, within the per-element bound, the solver's
 * NMSE tolerance and its max-relative bound. */
static void check(const wprob *pb, const char *name, clcnn_conv_algo algo, const float *got)
{
    werr e = measure(pb, got);
    double tol = clcnn_conv_algo_tolerance(algo);
    if (e.bad > 0 || e.nmse > tol || e.max_rel > max_rel_bound(algo))
        print_error("%s [%s]: %zu bad elements, max rel %.3g (bound %.3g), NMSE %.3g (tol %.3g)\n",
                    name, clcnn_conv_algo_name(algo), e.bad, e.max_rel, max_rel_bound(algo), e.nmse,
                    tol);
    assert_int_equal(e.bad, 0);
    assert_true(e.nmse <= tol);
    assert_true(e.max_rel <= max_rel_bound(algo));
}

static const clcnn_conv_algo wino_algos[] = {CLCNN_CONV_ALGO_WINOGRAD2, CLCNN_CONV_ALGO_WINOGRAD4};
#define N_WINO (sizeof wino_algos / sizeof wino_algos[0])

/* Realistic layers: the measured errors are printed, and must stay within the stated bounds. */
static void test_accuracy(void **state)
{
    (void)state;
    static const wcase cases[] = {
        {"C64 K32 28x28 pad1", 1, 64, 28, 28, 32, 1, true, false, false},
        {"C256 K16 14x14 pad1 relu", 2, 256, 14, 14, 16, 1, true, true, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        for (int act = 0; act < 2; act++) {
            wprob pb;
            wprob_init(&pb, &cases[ci], act ? 0.0 : -1.0, 100 + 2 * ci + (uint64_t)act);
            wdev d;
            wdev_init(&d, &pb);
            float *got = malloc(pb.ny * sizeof *got);
            assert_non_null(got);
            forward(&pb, &d, CLCNN_CONV_ALGO_DIRECT, got);
            werr ed = measure(&pb, got);
            print_message("%-26s x in [%s,1): direct    max rel %.2e  NMSE %.2e\n", cases[ci].name,
                          act ? "0" : "-1", ed.max_rel, ed.nmse);
            for (size_t a = 0; a < N_WINO; a++) {
                forward(&pb, &d, wino_algos[a], got);
                werr e = measure(&pb, got);
                print_message("%-26s x in [%s,1): %-9s max rel %.2e  NMSE %.2e\n", cases[ci].name,
                              act ? "0" : "-1", clcnn_conv_algo_name(wino_algos[a]), e.max_rel,
                              e.nmse);
                check(&pb, cases[ci].name, wino_algos[a], got);
            }
            free(got);
            wdev_free(&d);
            wprob_free(&pb);
        }
    }
}

/* Borders: partial tiles, every padding the solvers accept here, tiny N/C/K, flip and ReLU. */
static void test_edges(void **state)
{
    (void)state;
    static const wcase cases[] = {
        {"3x3 no pad", 1, 3, 3, 3, 2, 0, true, false, false},
        {"5x7 pad0", 1, 2, 5, 7, 3, 0, true, false, false},
        {"7x9 pad1", 1, 3, 7, 9, 4, 1, true, true, false},
        {"11x6 pad2", 1, 2, 11, 6, 5, 2, false, false, false},
        {"N3 13x10 pad1 flip", 3, 4, 13, 10, 9, 1, true, false, true},
        {"C1 K1 9x9 pad1", 1, 1, 9, 9, 1, 1, false, false, false},
        {"C1 K1 N3 6x17 pad2 relu", 3, 1, 6, 17, 1, 2, true, true, false},
        {"1x1 input pad1", 2, 3, 1, 1, 2, 1, true, false, false},
        {"2x19 pad1 flip relu", 1, 5, 2, 19, 17, 1, true, true, true},
        {"K33 C17 15x15 pad0", 1, 17, 15, 15, 33, 0, false, false, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        wprob pb;
        wprob_init(&pb, &cases[ci], -1.0, 200 + ci);
        wdev d;
        wdev_init(&d, &pb);
        float *got = malloc(pb.ny * sizeof *got);
        assert_non_null(got);
        for (size_t a = 0; a < N_WINO; a++) {
            assert_true(
                clcnn_conv2d_applicable(test_dev, pb.xs, pb.ws, &pb.p, wino_algos[a], NULL));
            forward(&pb, &d, wino_algos[a], got);
            check(&pb, cases[ci].name, wino_algos[a], got);
        }
        free(got);
        wdev_free(&d);
        wprob_free(&pb);
    }
}

/* A small workspace bound splits the tiles into many chunks (and a partial last one); the result
 * must not change, bit for bit, since every tile's arithmetic is the same. */
static void test_chunks(void **state)
{
    (void)state;
    const wcase wc = {"chunks N2 C5 K10 30x27 pad1", 2, 5, 30, 27, 10, 1, true, true, false};
    wprob pb;
    wprob_init(&pb, &wc, -1.0, 300);
    wdev d;
    wdev_init(&d, &pb);
    float *whole = malloc(pb.ny * sizeof *whole), *parts = malloc(pb.ny * sizeof *parts);
    assert_true(whole && parts);
    for (size_t a = 0; a < N_WINO; a++) {
        size_t big = 0, small = 0;
        assert_ok(clcnn_conv2d_workspace_size(test_dev, pb.xs, pb.ws, &pb.p, wino_algos[a], &big));
        forward(&pb, &d, wino_algos[a], whole);
        check(&pb, wc.name, wino_algos[a], whole);
        clcnn__conv_winograd_limit_workspace(64 << 10);
        assert_ok(
            clcnn_conv2d_workspace_size(test_dev, pb.xs, pb.ws, &pb.p, wino_algos[a], &small));
        assert_true(small <= 64 << 10);
        assert_true(small < big / 4); /* several chunks */
        forward(&pb, &d, wino_algos[a], parts);
        clcnn__conv_winograd_limit_workspace(0);
        assert_memory_equal(whole, parts, pb.ny * sizeof *whole);
    }
    free(whole);
    free(parts);
    wdev_free(&d);
    wprob_free(&pb);
}

/* Runs [tunable] at the point v (GEMM_WG 4, TRANSFORM_WG 2, 8 MiB) with y poisoned first, into
 * [out]; with [chunked], under a 64 KiB workspace bound. */
static void run_point(const wprob *pb, wdev *d, const clcnn__conv_tunable *tunable, int vp, int kb,
                      bool chunked, float *out)
{
    clcnn__conv_problem cp;
    assert_ok(clcnn__conv_make_problem(pb->xs, pb->ws, &pb->p, &cp));
    clcnn__conv_tuning tuning;
    clcnn__tune_space space;
    tunable->space(&cp, test_dev, tunable, &tuning, &space);
    const int v[5] = {vp, kb, 4, 2, 8};
    assert_true(space.valid(v, space.user));
    clcnn__conv_winograd_limit_workspace(chunked ? 64 << 10 : 0);
    const size_t bytes = tunable->workspace_with(&cp, test_dev, tunable, v);
    cl_int err;
    cl_mem ws =
        clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE, bytes, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    const clcnn__conv_args args = {clcnn_tensor_buffer(d->x), clcnn_tensor_buffer(d->w),
                                   d->b != NULL ? clcnn_tensor_buffer(d->b) : NULL,
                                   clcnn_tensor_buffer(d->y), d->w};
    assert_ok(clcnn_tensor_fill(d->y, NAN));
    assert_ok(tunable->run_with(test_dev, &cp, &args, ws, tunable, v, NULL));
    assert_ok(clcnn_device_finish(test_dev));
    clcnn__conv_winograd_limit_workspace(0);
    clReleaseMemObject(ws);
    assert_ok(clcnn_tensor_download(d->y, out, pb->ny));
}

/* Every tile block of the tuning space, 4 to 64 tiles per GEMM work-item (2 and 4 vectors of 16
 * above 16, whose transforms take 16 tiles each), with the most output channels per work-item it
 * allows: whole, and in chunks of one or a few blocks, on a problem whose tile count is not a
 * multiple of any block (F(4x4): 112 tiles, F(2x2): 420). */
static void test_tile_blocks(void **state)
{
    (void)state;
    const wcase wc = {"blocks N2 C5 K10 30x27 pad1", 2, 5, 30, 27, 10, 1, true, true, false};
    static const int blocks[][2] = {{4, 16}, {8, 16}, {16, 16}, {32, 8}, {64, 4}};
    const clcnn__conv_tunable *tunables[] = {&clcnn__conv_tunable_winograd2,
                                             &clcnn__conv_tunable_winograd4};
    wprob pb;
    wprob_init(&pb, &wc, -1.0, 500);
    wdev d;
    wdev_init(&d, &pb);
    float *got = malloc(pb.ny * sizeof *got);
    assert_non_null(got);
    for (size_t a = 0; a < N_WINO; a++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (int chunked = 0; chunked < 2; chunked++) {
                run_point(&pb, &d, tunables[a], blocks[b][0], blocks[b][1], chunked, got);
                check(&pb, wc.name, wino_algos[a], got);
            }
    free(got);
    wdev_free(&d);
    wprob_free(&pb);
}

/* The transformed filter is computed once per weight version and flip mode; a new upload (a new
 * version) is transformed again and gives the new result, never the stale one. */
static void test_filter_cache(void **state)
{
    (void)state;
    const wcase wc = {"cache C8 K12 12x12 pad1", 1, 8, 12, 12, 12, 1, true, false, false};
    wprob pb, pb2;
    wprob_init(&pb, &wc, -1.0, 400);
    wprob_init(&pb2, &wc, -1.0, 401);
    memcpy(pb2.x, pb.x, pb.nx * sizeof *pb.x); /* same input and bias, new weights */
    memcpy(pb2.b, pb.b, pb.ws.n * sizeof *pb.b);
    reference(&pb2);
    wdev d;
    wdev_init(&d, &pb);
    float *got = malloc(pb.ny * sizeof *got), *first = malloc(pb.ny * sizeof *first);
    assert_true(got && first);
    for (size_t a = 0; a < N_WINO; a++) {
        const clcnn_conv_algo algo = wino_algos[a];
        assert_ok(clcnn_tensor_upload(d.w, pb.w, pb.nw));
        uint64_t t0 = clcnn__conv_winograd_filter_transforms();
        forward(&pb, &d, algo, first);
        check(&pb, wc.name, algo, first);
        assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 1);
        /* Inference: the same weights again, no new transform, the same bits. */
        forward(&pb, &d, algo, got);
        forward(&pb, &d, algo, got);
        assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 1);
        assert_memory_equal(got, first, pb.ny * sizeof *got);

        /* New weights in the same tensor: transformed again, the new result. */
        assert_ok(clcnn_tensor_upload(d.w, pb2.w, pb2.nw));
        forward(&pb2, &d, algo, got);
        assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 2);
        check(&pb2, "cache after new weights", algo, got);

        /* The flipped mode is a different transform of the same weights. */
        wprob flipped = pb2;
        flipped.p.mode = CLCNN_CONV_CONVOLUTION;
        flipped.ref = malloc(pb.ny * sizeof *flipped.ref);
        flipped.mag = malloc(pb.ny * sizeof *flipped.mag);
        assert_true(flipped.ref && flipped.mag);
        reference(&flipped);
        forward(&flipped, &d, algo, got);
        assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 3);
        check(&flipped, "cache flipped", algo, got);
        free(flipped.ref);
        free(flipped.mag);
    }
    /* Each solver's transform is its own entry: winograd2's (last made for an older version) is
     * redone once, and alternating with winograd4 then transforms nothing. */
    uint64_t t1 = clcnn__conv_winograd_filter_transforms();
    forward(&pb2, &d, CLCNN_CONV_ALGO_WINOGRAD2, got);
    forward(&pb2, &d, CLCNN_CONV_ALGO_WINOGRAD4, got);
    check(&pb2, "cache both solvers", CLCNN_CONV_ALGO_WINOGRAD4, got);
    forward(&pb2, &d, CLCNN_CONV_ALGO_WINOGRAD2, got);
    check(&pb2, "cache both solvers", CLCNN_CONV_ALGO_WINOGRAD2, got);
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t1 + 1);
    free(got);
    free(first);
    wdev_free(&d);
    wprob_free(&pb);
    wprob_free(&pb2);
}

/* What the solvers refuse, each with a reason. */
static void test_applicability(void **state)
{
    (void)state;
    const clcnn_shape xs = {1, 4, 10, 10}, w3 = {4, 4, 3, 3};
    for (size_t a = 0; a < N_WINO; a++) {
        const clcnn_conv_algo algo = wino_algos[a];
        const char *why = NULL;
        clcnn_conv_params p = clcnn_conv_params_default();
        assert_true(clcnn_conv2d_applicable(test_dev, xs, w3, &p, algo, &why));
        p.pad_h = 2;
        p.mode = CLCNN_CONV_CONVOLUTION;
        assert_true(clcnn_conv2d_applicable(test_dev, xs, w3, &p, algo, &why));
        p = clcnn_conv_params_default();
        p.stride_w = 2;
        assert_false(clcnn_conv2d_applicable(test_dev, xs, w3, &p, algo, &why));
        assert_non_null(strstr(why, "stride"));
        p = clcnn_conv_params_default();
        p.dilation_h = 2;
        assert_false(clcnn_conv2d_applicable(test_dev, xs, w3, &p, algo, &why));
        assert_non_null(strstr(why, "dilation"));
        p = clcnn_conv_params_default();
        p.groups = 2;
        assert_false(
            clcnn_conv2d_applicable(test_dev, xs, (clcnn_shape){4, 2, 3, 3}, &p, algo, &why));
        assert_non_null(strstr(why, "groups"));
        p = clcnn_conv_params_default();
        assert_false(
            clcnn_conv2d_applicable(test_dev, xs, (clcnn_shape){4, 4, 5, 5}, &p, algo, &why));
        assert_non_null(strstr(why, "3x3"));
        assert_false(
            clcnn_conv2d_applicable(test_dev, xs, (clcnn_shape){4, 4, 3, 1}, &p, algo, &why));
        size_t bytes = 0;
        assert_ok(clcnn_conv2d_workspace_size(test_dev, xs, w3, &p, algo, &bytes));
        assert_true(bytes > 0);
    }
    /* F(4x4) is the looser of the two. */
    assert_true(clcnn_conv_algo_tolerance(CLCNN_CONV_ALGO_WINOGRAD2) <=
                clcnn_conv_algo_tolerance(CLCNN_CONV_ALGO_WINOGRAD4));
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applicability), cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_edges),         cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_filter_cache),  cmocka_unit_test(test_tile_blocks),
    };
    return cmocka_run_group_tests_name("winograd", tests, test_group_setup, test_group_teardown);
}
