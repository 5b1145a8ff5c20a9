/* The winograd4_split solver (F(4x4,3x3) over filters cut into 3x3 blocks and stride phases):
 * element-wise error against a float64 reference on LeNet- and AlexNet-like layers, borders,
 * strides, flip, bias and ReLU, chunked runs, the cached split filter, and what it refuses. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "conv2d_impl.h"

#define SPLIT CLCNN_CONV_ALGO_WINOGRAD4_SPLIT

/* Element-wise bound on max|got - ref| / max|ref| for one layer. The error is winograd4's
 * (F(4x4) transforms with entries up to 8 and 5, bounded at 3e-5 in test_winograd.c) summed over
 * C * sh * sw * na * nb virtual channels instead of C: 4C for 5x5, 16C for 11x11 stride 4. Measured
 * on POCL (AVX-512) with this file's data and seeds: 7.1e-7 to 4.3e-6 (direct: 3.1e-7 to 1.6e-6);
 * the bound leaves about 7x of margin. */
#define SPLIT_MAX_REL 3e-5
/* The per-element bound test_conv2d.c uses for every solver, relative to sum |x*w| + |bias|. */
#define ELEM_REL 1e-4

typedef struct scase {
    const char *name;
    size_t n, c, h, w, k, r, s;
    size_t stride_h, stride_w, pad_h, pad_w;
    bool bias, relu, flip;
} scase;

typedef struct sprob {
    clcnn_shape xs, ws, ys;
    clcnn_conv_params p;
    bool bias;
    size_t nx, nw, ny;
    float *x, *w, *b;
    double *ref, *mag;
} sprob;

/* Standard normal by Box-Muller. */
static double normal(test_rng *rng)
{
    double u1 = test_rng_uniform(rng, 1e-300, 1.0), u2 = test_rng_uniform(rng, 0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void reference(sprob *pb)
{
    const clcnn_shape xs = pb->xs, ws = pb->ws, ys = pb->ys;
    const clcnn_conv_params *p = &pb->p;
    const bool flip = p->mode == CLCNN_CONV_CONVOLUTION;
    const long R = (long)ws.h, S = (long)ws.w;
    for (size_t n = 0; n < ys.n; n++)
        for (size_t k = 0; k < ys.c; k++)
            for (size_t oh = 0; oh < ys.h; oh++)
                for (size_t ow = 0; ow < ys.w; ow++) {
                    double acc = 0.0, mag = 0.0;
                    for (size_t c = 0; c < xs.c; c++)
                        for (long r = 0; r < R; r++)
                            for (long s = 0; s < S; s++) {
                                long ih = (long)(oh * p->stride_h) + r - (long)p->pad_h;
                                long iw = (long)(ow * p->stride_w) + s - (long)p->pad_w;
                                if (ih < 0 || iw < 0 || ih >= (long)xs.h || iw >= (long)xs.w)
                                    continue;
                                long rr = flip ? R - 1 - r : r, ss = flip ? S - 1 - s : s;
                                double xv =
                                    pb->x[((n * xs.c + c) * xs.h + (size_t)ih) * xs.w + (size_t)iw];
                                double wv =
                                    pb->w[((k * xs.c + c) * (size_t)R + (size_t)rr) * (size_t)S +
                                          (size_t)ss];
                                acc += xv * wv;
                                mag += fabs(xv * wv);
                            }
                    if (pb->bias) {
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

/* Inputs uniform in [lo, 1) ([0, 1) models post-ReLU activations), weights ~ N(0, 2 / (C R S))
 * (He initialisation), bias uniform in [-0.1, 0.1). */
static void sprob_init(sprob *pb, const scase *sc, double lo, uint64_t seed)
{
    memset(pb, 0, sizeof *pb);
    pb->xs = (clcnn_shape){sc->n, sc->c, sc->h, sc->w};
    pb->ws = (clcnn_shape){sc->k, sc->c, sc->r, sc->s};
    pb->p = clcnn_conv_params_default();
    pb->p.stride_h = sc->stride_h;
    pb->p.stride_w = sc->stride_w;
    pb->p.pad_h = sc->pad_h;
    pb->p.pad_w = sc->pad_w;
    pb->p.relu = sc->relu;
    pb->p.mode = sc->flip ? CLCNN_CONV_CONVOLUTION : CLCNN_CONV_CROSS_CORRELATION;
    pb->bias = sc->bias;
    assert_ok(clcnn_conv2d_output_shape(pb->xs, pb->ws, &pb->p, &pb->ys));
    pb->nx = sc->n * sc->c * sc->h * sc->w;
    pb->nw = sc->k * sc->c * sc->r * sc->s;
    pb->ny = pb->ys.n * pb->ys.c * pb->ys.h * pb->ys.w;
    pb->x = malloc(pb->nx * sizeof *pb->x);
    pb->w = malloc(pb->nw * sizeof *pb->w);
    pb->b = malloc(sc->k * sizeof *pb->b);
    pb->ref = malloc(pb->ny * sizeof *pb->ref);
    pb->mag = malloc(pb->ny * sizeof *pb->mag);
    assert_true(pb->x && pb->w && pb->b && pb->ref && pb->mag);
    test_rng rng;
    test_rng_seed(&rng, seed);
    test_rng_fill(&rng, pb->x, pb->nx, (float)lo, 1.0f);
    const double sd = sqrt(2.0 / (double)(sc->c * sc->r * sc->s));
    for (size_t i = 0; i < pb->nw; i++)
        pb->w[i] = (float)(sd * normal(&rng));
    test_rng_fill(&rng, pb->b, sc->k, -0.1f, 0.1f);
    reference(pb);
}

static void sprob_free(sprob *pb)
{
    free(pb->x);
    free(pb->w);
    free(pb->b);
    free(pb->ref);
    free(pb->mag);
}

/* Device tensors of one problem. */
typedef struct sdev {
    clcnn_tensor *x, *w, *b, *y;
} sdev;

static void sdev_init(sdev *d, const sprob *pb)
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

static void sdev_free(sdev *d)
{
    clcnn_tensor_release(d->x);
    clcnn_tensor_release(d->w);
    clcnn_tensor_release(d->b);
    clcnn_tensor_release(d->y);
}

/* One case's problem, its device tensors and a host buffer for the output. */
typedef struct sfix {
    sprob pb;
    sdev d;
    float *got;
} sfix;

static void sfix_init(sfix *f, const scase *sc, double lo, uint64_t seed)
{
    sprob_init(&f->pb, sc, lo, seed);
    sdev_init(&f->d, &f->pb);
    f->got = malloc(f->pb.ny * sizeof *f->got);
    assert_non_null(f->got);
}

static void sfix_free(sfix *f)
{
    free(f->got);
    sdev_free(&f->d);
    sprob_free(&f->pb);
}

/* Poisons y with NaN, runs [algo] with parameters [p], downloads into [out]. */
static void forward_with(const sprob *pb, sdev *d, const clcnn_conv_params *p, clcnn_conv_algo algo,
                         float *out)
{
    assert_ok(clcnn_tensor_fill(d->y, NAN));
    assert_ok(clcnn_conv2d_forward(test_dev, d->x, d->w, d->b, p, algo, NULL, 0, d->y));
    assert_ok(clcnn_tensor_download(d->y, out, pb->ny));
}

static void forward(const sprob *pb, sdev *d, clcnn_conv_algo algo, float *out)
{
    forward_with(pb, d, &pb->p, algo, out);
}

typedef struct serr {
    double max_rel; /* max |err| / max |ref| */
    double nmse;
    size_t bad; /* elements outside ELEM_REL * magnitude, or not finite */
} serr;

static serr measure(const sprob *pb, const float *got)
{
    serr e = {0.0, 0.0, 0};
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

/* Every output finite, within the per-element bound, the solver's NMSE tolerance and the
 * max-relative bound. */
static void check(const sprob *pb, const char *name, const float *got)
{
    serr e = measure(pb, got);
    double tol = clcnn_conv_algo_tolerance(SPLIT);
    if (e.bad > 0 || e.nmse > tol || e.max_rel > SPLIT_MAX_REL)
        print_error("%s: %zu bad elements, max rel %.3g (bound %.3g), NMSE %.3g (tol %.3g)\n", name,
                    e.bad, e.max_rel, SPLIT_MAX_REL, e.nmse, tol);
    assert_int_equal(e.bad, 0);
    assert_true(e.nmse <= tol);
    assert_true(e.max_rel <= SPLIT_MAX_REL);
}

/* LeNet and AlexNet layers at smaller N (AlexNet conv1 on a 67x67 crop): the measured errors are
 * printed beside direct's and must stay within the stated bounds. */
static void test_accuracy(void **state)
{
    (void)state;
    static const scase cases[] = {
        {"lenet conv1 C2 N8", 8, 2, 28, 28, 32, 5, 5, 1, 1, 2, 2, true, false, false},
        {"lenet conv2 N4", 4, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2, true, true, false},
        {"alexnet conv1 67x67", 1, 3, 67, 67, 16, 11, 11, 4, 4, 2, 2, true, true, false},
        {"alexnet conv2 K48", 1, 64, 27, 27, 48, 5, 5, 1, 1, 2, 2, true, false, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        for (int act = 0; act < 2; act++) {
            sfix f;
            sfix_init(&f, &cases[ci], act ? 0.0 : -1.0, 500 + 2 * ci + (uint64_t)act);
            forward(&f.pb, &f.d, CLCNN_CONV_ALGO_DIRECT, f.got);
            serr ed = measure(&f.pb, f.got);
            forward(&f.pb, &f.d, SPLIT, f.got);
            serr e = measure(&f.pb, f.got);
            print_message("%-20s x in [%s,1): direct max rel %.2e NMSE %.2e; winograd4_split max "
                          "rel %.2e NMSE %.2e\n",
                          cases[ci].name, act ? "0" : "-1", ed.max_rel, ed.nmse, e.max_rel, e.nmse);
            check(&f.pb, cases[ci].name, f.got);
            sfix_free(&f);
        }
    }
}

/* Borders and the less common shapes: partial tiles, pad 0 and 2, odd sizes, N=3, C=1, K=1,
 * flip, bias and ReLU, unequal strides and pads, filters of 3, 6, 7 and 11 taps. */
static void test_edges(void **state)
{
    (void)state;
    static const scase cases[] = {
        {"5x5 pad0 odd 13x9", 1, 2, 13, 9, 3, 5, 5, 1, 1, 0, 0, true, false, false},
        {"5x5 pad2 N3 11x7 flip", 3, 4, 11, 7, 5, 5, 5, 1, 1, 2, 2, true, false, true},
        {"5x5 C2 K1 pad2 relu", 1, 2, 9, 10, 1, 5, 5, 1, 1, 2, 2, true, true, false},
        {"5x5 C2 K1 N3 pad0", 3, 2, 17, 6, 1, 5, 5, 1, 1, 0, 0, false, false, false},
        {"7x7 C1 K1 pad1 (9 blocks)", 1, 1, 13, 14, 1, 7, 7, 1, 1, 1, 1, true, false, false},
        {"5x5 on 5x5 pad0 (one output)", 2, 3, 5, 5, 4, 5, 5, 1, 1, 0, 0, true, true, false},
        {"5x5 on 3x3 pad2", 1, 2, 3, 3, 3, 5, 5, 1, 1, 2, 2, true, false, false},
        {"5x5 K33 C17 pad(1,2)", 1, 17, 15, 12, 33, 5, 5, 1, 1, 1, 2, false, false, false},
        {"3x5 pad(0,2) flip relu", 2, 4, 9, 10, 4, 3, 5, 1, 1, 0, 2, true, true, true},
        {"7x7 pad3", 1, 3, 19, 21, 6, 7, 7, 1, 1, 3, 3, true, false, false},
        {"6x6 pad0", 1, 2, 12, 11, 5, 6, 6, 1, 1, 0, 0, true, false, false},
        {"5x5 stride2 pad2", 2, 3, 23, 18, 7, 5, 5, 2, 2, 2, 2, true, true, false},
        {"5x5 stride(2,1) flip", 1, 3, 16, 13, 4, 5, 5, 2, 1, 1, 2, false, false, true},
        {"11x11 stride4 pad0 odd", 1, 3, 47, 39, 8, 11, 11, 4, 4, 0, 0, true, false, false},
        {"11x11 stride4 pad2 N3 flip relu", 3, 2, 35, 37, 5, 11, 11, 4, 4, 2, 2, true, true, true},
        {"11x11 stride4 C1 K1", 1, 1, 31, 31, 1, 11, 11, 4, 4, 2, 2, true, false, false},
        {"11x11 stride(4,1) pad(2,5)", 1, 2, 30, 16, 3, 11, 11, 4, 1, 2, 5, true, false, false},
        {"3x3 stride1 pad1 (one block)", 1, 8, 10, 9, 5, 3, 3, 1, 1, 1, 1, true, true, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        sfix f;
        sfix_init(&f, &cases[ci], -1.0, 600 + ci);
        const char *why = NULL;
        if (!clcnn_conv2d_applicable(test_dev, f.pb.xs, f.pb.ws, &f.pb.p, SPLIT, &why))
            print_error("%s: not applicable: %s\n", cases[ci].name, why);
        assert_true(clcnn_conv2d_applicable(test_dev, f.pb.xs, f.pb.ws, &f.pb.p, SPLIT, NULL));
        forward(&f.pb, &f.d, SPLIT, f.got);
        check(&f.pb, cases[ci].name, f.got);
        sfix_free(&f);
    }
}

/* A small workspace bound splits the tiles into many chunks; the result must not change, bit for
 * bit, since every tile's arithmetic is the same. */
static void test_chunks(void **state)
{
    (void)state;
    static const scase cases[] = {
        {"chunks 5x5 N3 C5 K10 22x19", 3, 5, 22, 19, 10, 5, 5, 1, 1, 2, 2, true, true, false},
        {"chunks 11x11/4 N2 C3 K6 99x97", 2, 3, 99, 97, 6, 11, 11, 4, 4, 2, 2, true, false, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        sprob pb;
        sprob_init(&pb, &cases[ci], -1.0, 700 + ci);
        sdev d;
        sdev_init(&d, &pb);
        float *whole = malloc(pb.ny * sizeof *whole), *parts = malloc(pb.ny * sizeof *parts);
        assert_true(whole && parts);
        size_t big = 0, small = 0;
        assert_ok(clcnn_conv2d_workspace_size(test_dev, pb.xs, pb.ws, &pb.p, SPLIT, &big));
        forward(&pb, &d, SPLIT, whole);
        check(&pb, cases[ci].name, whole);
        clcnn__conv_winograd_limit_workspace(160 << 10);
        assert_ok(clcnn_conv2d_workspace_size(test_dev, pb.xs, pb.ws, &pb.p, SPLIT, &small));
        forward(&pb, &d, SPLIT, parts);
        clcnn__conv_winograd_limit_workspace(0);
        assert_true(small <= 160 << 10);
        assert_true(small < big / 3); /* several chunks */
        assert_memory_equal(whole, parts, pb.ny * sizeof *whole);
        free(whole);
        free(parts);
        sdev_free(&d);
        sprob_free(&pb);
    }
}

/* Every tile block of the tuning space, 4 to 64 tiles per GEMM work-item (2 and 4 vectors of 16
 * above 16), with the most output channels per work-item it allows, whole and under a 160 KiB
 * workspace bound (chunks of one or a few blocks), at GEMM_WG 4, TRANSFORM_WG 2, 8 MiB; tile
 * counts (90 and 72) that no block divides. */
static void test_tile_blocks(void **state)
{
    (void)state;
    static const scase cases[] = {
        {"blocks 5x5 N3 C5 K10 22x19", 3, 5, 22, 19, 10, 5, 5, 1, 1, 2, 2, true, true, false},
        {"blocks 11x11/4 N2 C3 K12 99x97", 2, 3, 99, 97, 12, 11, 11, 4, 4, 2, 2, true, false, true},
    };
    static const int blocks[][2] = {{4, 16}, {8, 16}, {16, 16}, {32, 8}, {64, 4}};
    const clcnn__conv_tunable *t = &clcnn__conv_tunable_winograd4_split;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        sfix f;
        sfix_init(&f, &cases[ci], -1.0, 800 + ci);
        clcnn__conv_problem cp;
        assert_ok(clcnn__conv_make_problem(f.pb.xs, f.pb.ws, &f.pb.p, &cp));
        const clcnn__conv_args args = {clcnn_tensor_buffer(f.d.x), clcnn_tensor_buffer(f.d.w),
                                       clcnn_tensor_buffer(f.d.b), clcnn_tensor_buffer(f.d.y),
                                       f.d.w};
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (int chunked = 0; chunked < 2; chunked++) {
                clcnn__conv_tuning tuning;
                clcnn__tune_space space;
                t->space(&cp, test_dev, t, &tuning, &space);
                const int v[5] = {blocks[b][0], blocks[b][1], 4, 2, 8};
                assert_true(space.valid(v, space.user));
                clcnn__conv_winograd_limit_workspace(chunked ? 160 << 10 : 0);
                cl_int err;
                cl_mem ws = clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE,
                                           t->workspace_with(&cp, test_dev, t, v), NULL, &err);
                assert_int_equal(err, CL_SUCCESS);
                assert_ok(clcnn_tensor_fill(f.d.y, NAN));
                assert_ok(t->run_with(test_dev, &cp, &args, ws, t, v, NULL));
                assert_ok(clcnn_device_finish(test_dev));
                clcnn__conv_winograd_limit_workspace(0);
                clReleaseMemObject(ws);
                assert_ok(clcnn_tensor_download(f.d.y, f.got, f.pb.ny));
                check(&f.pb, cases[ci].name, f.got);
            }
        sfix_free(&f);
    }
}

/* The split filter is made once per weight version, flip mode and stride; a new upload is split
 * and transformed again and gives the new result, never the stale one. */
static void test_filter_cache(void **state)
{
    (void)state;
    const scase sc = {
        "cache 5x5 C6 K9 12x13", 1, 6, 12, 13, 9, 5, 5, 1, 1, 2, 2, true, false, false};
    sprob pb, pb2;
    sprob_init(&pb, &sc, -1.0, 800);
    sprob_init(&pb2, &sc, -1.0, 801);
    memcpy(pb2.x, pb.x, pb.nx * sizeof *pb.x); /* same input and bias, new weights */
    memcpy(pb2.b, pb.b, pb.ws.n * sizeof *pb.b);
    reference(&pb2);
    sdev d;
    sdev_init(&d, &pb);
    float *got = malloc(pb.ny * sizeof *got), *first = malloc(pb.ny * sizeof *first);
    assert_true(got && first);

    uint64_t t0 = clcnn__conv_winograd_filter_transforms();
    forward(&pb, &d, SPLIT, first);
    check(&pb, sc.name, first);
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 1);
    /* Inference: the same weights again, no new transform, the same bits. */
    forward(&pb, &d, SPLIT, got);
    forward(&pb, &d, SPLIT, got);
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 1);
    assert_memory_equal(got, first, pb.ny * sizeof *got);

    /* New weights in the same tensor: transformed again, the new result. */
    assert_ok(clcnn_tensor_upload(d.w, pb2.w, pb2.nw));
    forward(&pb2, &d, SPLIT, got);
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 2);
    check(&pb2, "cache after new weights", got);

    /* The flipped mode is a different split of the same weights. */
    sprob flipped = pb2;
    flipped.p.mode = CLCNN_CONV_CONVOLUTION;
    flipped.ref = malloc(pb.ny * sizeof *flipped.ref);
    flipped.mag = malloc(pb.ny * sizeof *flipped.mag);
    assert_true(flipped.ref && flipped.mag);
    reference(&flipped);
    forward(&flipped, &d, SPLIT, got);
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 3);
    check(&flipped, "cache flipped", got);

    /* So is another stride (different phase planes): its own entry, and the stride-1 one stays. */
    sprob strided = pb2;
    strided.p.stride_h = strided.p.stride_w = 2;
    assert_ok(clcnn_conv2d_output_shape(strided.xs, strided.ws, &strided.p, &strided.ys));
    strided.ny = strided.ys.n * strided.ys.c * strided.ys.h * strided.ys.w;
    /* Fewer outputs than at stride 1, at least one (the early return also tells the analyzer). */
    assert_true(strided.ny > 0 && strided.ny <= pb.ny);
    if (strided.ny == 0)
        return;
    strided.ref = malloc(strided.ny * sizeof *strided.ref);
    strided.mag = malloc(strided.ny * sizeof *strided.mag);
    assert_true(strided.ref && strided.mag);
    reference(&strided);
    clcnn_tensor *ys2 = NULL;
    assert_ok(clcnn_tensor_create(test_dev, strided.ys, &ys2));
    assert_ok(clcnn_conv2d_forward(test_dev, d.x, d.w, d.b, &strided.p, SPLIT, NULL, 0, ys2));
    assert_ok(clcnn_tensor_download(ys2, got, strided.ny));
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 4);
    check(&strided, "cache stride 2", got);
    forward(&pb2, &d, SPLIT, got);
    check(&pb2, "cache stride 1 again", got);
    assert_int_equal(clcnn__conv_winograd_filter_transforms(), t0 + 4);

    clcnn_tensor_release(ys2);
    free(strided.ref);
    free(strided.mag);
    free(flipped.ref);
    free(flipped.mag);
    free(got);
    free(first);
    sdev_free(&d);
    sprob_free(&pb);
    sprob_free(&pb2);
}

/* What the solver takes and refuses, each refusal with a reason; the workspace stays bounded. */
static void test_applicability(void **state)
{
    (void)state;
    const clcnn_shape xs = {1, 8, 40, 40};
    const char *why = NULL;
    clcnn_conv_params p = clcnn_conv_params_default();
    static const size_t taken[][3] = {{5, 5, 1}, {3, 3, 1}, {7, 7, 1},  {3, 5, 1},
                                      {6, 6, 1}, {5, 5, 2}, {11, 11, 4}};
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        p.stride_h = p.stride_w = taken[i][2];
        const clcnn_shape ws = {4, 8, taken[i][0], taken[i][1]};
        assert_true(clcnn_conv2d_applicable(test_dev, xs, ws, &p, SPLIT, &why));
        size_t bytes = 0;
        assert_ok(clcnn_conv2d_workspace_size(test_dev, xs, ws, &p, SPLIT, &bytes));
        assert_true(bytes > 0);
    }
    static const size_t refused[][3] = {{1, 1, 1}, {2, 2, 1}, {4, 4, 1}, {3, 3, 2}, {7, 7, 2}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        p.stride_h = p.stride_w = refused[i][2];
        const clcnn_shape ws = {4, 8, refused[i][0], refused[i][1]};
        assert_false(clcnn_conv2d_applicable(test_dev, xs, ws, &p, SPLIT, &why));
        assert_non_null(strstr(why, "multiplies"));
    }
    const clcnn_shape w5 = {4, 8, 5, 5};
    p = clcnn_conv_params_default();
    /* LeNet's conv1 (C = 1, 5x5: 4 virtual channels) stays with direct. */
    assert_false(clcnn_conv2d_applicable(test_dev, (clcnn_shape){64, 1, 28, 28},
                                         (clcnn_shape){32, 1, 5, 5}, &p, SPLIT, &why));
    assert_non_null(strstr(why, "virtual channels"));
    p.dilation_w = 2;
    assert_false(clcnn_conv2d_applicable(test_dev, xs, w5, &p, SPLIT, &why));
    assert_non_null(strstr(why, "dilation"));
    p = clcnn_conv_params_default();
    p.groups = 2;
    assert_false(clcnn_conv2d_applicable(test_dev, xs, (clcnn_shape){4, 4, 5, 5}, &p, SPLIT, &why));
    assert_non_null(strstr(why, "groups"));
    p = clcnn_conv_params_default();
    p.stride_h = 9;
    assert_false(clcnn_conv2d_applicable(test_dev, (clcnn_shape){1, 4, 80, 80},
                                         (clcnn_shape){4, 4, 40, 40}, &p, SPLIT, &why));
    assert_non_null(strstr(why, "stride"));
    size_t bytes = 0;

    /* LeNet's conv2 at batch 256 and AlexNet's conv2 at batch 64: chunks keep the workspace at
     * the 32 MiB bound whatever the batch. */
    p = clcnn_conv_params_default();
    p.pad_h = p.pad_w = 2;
    assert_ok(clcnn_conv2d_workspace_size(test_dev, (clcnn_shape){256, 32, 14, 14},
                                          (clcnn_shape){64, 32, 5, 5}, &p, SPLIT, &bytes));
    assert_true(bytes <= (size_t)32 << 20);
    assert_ok(clcnn_conv2d_workspace_size(test_dev, (clcnn_shape){64, 64, 27, 27},
                                          (clcnn_shape){192, 64, 5, 5}, &p, SPLIT, &bytes));
    assert_true(bytes <= (size_t)32 << 20);
    /* AUTO (no tuning database entry for these shapes): 3x3 stride 1 stays with winograd4, the
     * 5x5 and 11x11 stride 4 layers come here (on CPU devices the 5x5 only past 16x16 outputs:
     * direct_rows takes smaller ones), 1x1 goes to direct_rows on CPU devices and to direct
     * elsewhere. */
    const bool cpu = clcnn_device_get_info(test_dev)->type == CLCNN_DEVICE_TYPE_CPU;
    clcnn_conv_algo algo = CLCNN_CONV_ALGO_AUTO;
    assert_ok(clcnn_conv2d_auto_algo(test_dev, (clcnn_shape){3, 32, 27, 27},
                                     (clcnn_shape){64, 32, 5, 5}, &p, &algo));
    assert_int_equal(algo, SPLIT);
    assert_ok(clcnn_conv2d_auto_algo(test_dev, (clcnn_shape){3, 32, 14, 14},
                                     (clcnn_shape){64, 32, 5, 5}, &p, &algo));
    assert_int_equal(algo, cpu ? CLCNN_CONV_ALGO_DIRECT_ROWS : SPLIT);
    p.stride_h = p.stride_w = 4;
    assert_ok(clcnn_conv2d_auto_algo(test_dev, (clcnn_shape){1, 3, 67, 67},
                                     (clcnn_shape){16, 3, 11, 11}, &p, &algo));
    assert_int_equal(algo, SPLIT);
    p = clcnn_conv_params_default();
    p.pad_h = p.pad_w = 1;
    assert_ok(clcnn_conv2d_auto_algo(test_dev, (clcnn_shape){3, 32, 14, 14},
                                     (clcnn_shape){64, 32, 3, 3}, &p, &algo));
    assert_int_equal(algo, CLCNN_CONV_ALGO_WINOGRAD4);
    assert_ok(clcnn_conv2d_auto_algo(test_dev, (clcnn_shape){3, 32, 14, 14},
                                     (clcnn_shape){64, 32, 1, 1}, &p, &algo));
    assert_int_equal(algo, cpu ? CLCNN_CONV_ALGO_DIRECT_ROWS : CLCNN_CONV_ALGO_DIRECT);
    /* The split solver is no looser than it needs: winograd4's bound, the same transforms. */
    assert_true(clcnn_conv_algo_tolerance(SPLIT) >=
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
    return cmocka_run_group_tests_name("winograd_split", tests, test_group_setup,
                                       test_group_teardown);
}
