/* Fault injection (tests/fault.h): every OpenCL call (and CLBlastSgemm) that device creation,
 * conv2d forward (each solver; Winograd also with a cached filter), conv2d backward and a
 * training step make is made to fail in turn, with the error a driver returns. Each failure
 * must give the mapped status with a message naming the call, leave no OpenCL object behind, and
 * leave the device able to run the same operation to the same bits; a failed training call
 * retried on the same net must succeed too. Program builds are swept on fresh devices, with the
 * binary cache off and warm. CLCNN_FAULT_SITES=1 lists the call sites reached. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conv2d_bwd_impl.h"
#include "device_impl.h"
#include "fault.h"
#include "op_cache_impl.h"
#include "testutil.h"

/* ---- the sweep ---------------------------------------------------------------------------- */

/* One operation under test. make() prepares a context on a device (host data only); run() does
 * the operation from start to end (creating and releasing every object it needs, so that the
 * live counts between runs are steady) and keeps its result, the first good one
 * separately; same() says whether the last result equals that first one; expect() makes a
 * fresh context compare with another's first result; destroy() releases the context. */
typedef struct fault_case {
    const char *label;
    const void *arg;
    void *(*make)(clcnn_device *dev, const void *arg);
    clcnn_status (*run)(void *ctx);
    bool (*same)(void *ctx);
    void (*expect)(void *ctx, const void *good);
    void (*destroy)(void *ctx);
} fault_case;

static size_t total_injections, total_recovered;

/* The device's derived-buffer cache holds buffers across calls by design; empty it before
 * counting live objects so that only leaks remain. */
static void snapshot(clcnn_device *dev, long out[FAULT_OBJ_COUNT])
{
    if (dev != NULL)
        clcnn__op_cache_clear(dev);
    for (int i = 0; i < FAULT_OBJ_COUNT; i++)
        out[i] = fault_live((fault_object)i);
}

static void assert_same_live(const char *label, size_t k, const long want[FAULT_OBJ_COUNT],
                             const long got[FAULT_OBJ_COUNT])
{
    static const char *const names[FAULT_OBJ_COUNT] = {"mem",   "program", "kernel",
                                                       "event", "context", "queue"};
    for (int i = 0; i < FAULT_OBJ_COUNT; i++)
        if (want[i] != got[i]) {
            print_error("%s: after the failure of call %zu: %ld %s objects live, %ld before\n",
                        label, k, got[i], names[i], want[i]);
            fail();
        }
}

/* Runs the operation with the k-th call armed (the caller armed it) and checks the failure: the
 * status the call maps to (OK when the kind is in recover, with the right result), a message
 * naming the call, and a device that still runs the operation to the same result. */
static void check_failure(const fault_case *fc, void *ctx, size_t k, fault_mask recover)
{
    clcnn_clear_error();
    clcnn_status st = fc->run(ctx);
    int kind = fault_fired();
    fault_arm(0, 0);
    if (kind < 0) {
        print_error("%s: call %zu was never reached (status %s)\n", fc->label, k,
                    clcnn_status_name(st));
        fail();
    }
    total_injections++;
    if (recover & FAULT_BIT(kind)) {
        if (st != CLCNN_OK)
            print_error("%s: %s failing (call %zu) should be recovered from, got %s: %s\n",
                        fc->label, fault_call_name(kind), k, clcnn_status_name(st),
                        clcnn_last_error());
        assert_int_equal(st, CLCNN_OK);
        assert_true(fc->same(ctx));
        total_recovered++;
    } else {
        clcnn_status want = fault_expected_status(kind);
        if (st != want || strstr(clcnn_last_error(), fault_call_name(kind)) == NULL)
            print_error("%s: %s failing with %d (call %zu): got %s '%s', wanted %s naming %s\n",
                        fc->label, fault_call_name(kind), fault_error_code(kind), k,
                        clcnn_status_name(st), clcnn_last_error(), clcnn_status_name(want),
                        fault_call_name(kind));
        assert_int_equal(st, want);
        assert_non_null(strstr(clcnn_last_error(), fault_call_name(kind)));
    }
    /* The device is usable: the same operation runs again to the same bits. */
    st = fc->run(ctx);
    if (st != CLCNN_OK)
        print_error("%s: after %s failed (call %zu), the retry failed: %s\n", fc->label,
                    fault_call_name(kind), k, clcnn_last_error());
    assert_int_equal(st, CLCNN_OK);
    if (!fc->same(ctx))
        print_error("%s: after %s failed (call %zu), the retry gave another result\n", fc->label,
                    fault_call_name(kind), k);
    assert_true(fc->same(ctx));
}

/* On a device that has built everything the operation needs: counts the calls of a good run,
 * then fails each in turn. The first good result is checked by check_first. */
static void sweep_warm(const fault_case *fc, void (*check_first)(const void *ctx))
{
    void *ctx = fc->make(test_dev, fc->arg);
    assert_ok(fc->run(ctx)); /* builds and caches, so the counts below are steady */
    check_first(ctx);
    long steady[FAULT_OBJ_COUNT], now[FAULT_OBJ_COUNT];
    snapshot(test_dev, steady);
    fault_reset();
    assert_ok(fc->run(ctx));
    assert_true(fc->same(ctx));
    size_t n = fault_calls(FAULT_ALL);
    size_t sites = fault_sites(FAULT_ALL);
    assert_true(n > 0);
    for (size_t k = 1; k <= n; k++) {
        fault_reset();
        fault_arm(FAULT_ALL, k);
        check_failure(fc, ctx, k, 0);
        snapshot(test_dev, now);
        assert_same_live(fc->label, k, steady, now);
    }
    print_message("%s: %zu calls from %zu sites, each failed in turn\n", fc->label, n, sites);
    fc->destroy(ctx);
}

/* Every build-time call (program from source or binary, build, kernel) of a first run on a new
 * device fails in turn. cache_dir "off": everything compiles from source and a failure is the
 * call's status; a warm cache directory: programs load from binaries, and a binary the driver
 * refuses is rebuilt from source (recovered). After each, the device is released and no object
 * made through the wrapped calls is left. */
static void sweep_build(const fault_case *fc, const char *cache_dir)
{
    bool cached = strcmp(cache_dir, "off") != 0;
    fault_mask recover =
        cached ? FAULT_BIT(FAULT_CREATE_PROGRAM_BINARY) | FAULT_BIT(FAULT_BUILD_PROGRAM) : 0;
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
    long before[FAULT_OBJ_COUNT], after[FAULT_OBJ_COUNT];
    snapshot(NULL, before);
    /* k == 0 counts the calls of a good run (after one that fills the cache, when there is
     * one); its context is kept as the good result the others compare with. */
    void *good = NULL;
    size_t n = 0;
    for (size_t k = 0; k == 0 || k <= n; k++) {
        clcnn_device *dev = NULL;
        assert_ok(clcnn_device_create(NULL, &dev));
        void *ctx = fc->make(dev, fc->arg);
        if (k == 0) {
            if (cached)
                assert_ok(fc->run(ctx));
            clcnn_device_release(dev);
            fc->destroy(ctx);
            assert_ok(clcnn_device_create(NULL, &dev));
            ctx = fc->make(dev, fc->arg);
            fault_reset();
            assert_ok(fc->run(ctx));
            n = fault_calls(FAULT_BUILD);
            print_message("%s, new device, cache %s: %zu build calls from %zu sites, each failed "
                          "in turn\n",
                          fc->label, cached ? "warm" : "off", n, fault_sites(FAULT_BUILD));
            assert_true(n > 0);
        } else {
            fc->expect(ctx, good);
            fault_reset();
            fault_arm(FAULT_BUILD, k);
            check_failure(fc, ctx, k, recover);
        }
        clcnn_device_release(dev);
        if (k == 0) {
            /* Its device is gone, its result stays. */
            good = ctx;
            continue;
        }
        fc->destroy(ctx);
        snapshot(NULL, after);
        assert_same_live(fc->label, k, before, after);
    }
    fc->destroy(good);
}

static void with_cache_dirs(const fault_case *fc)
{
    char *dir = test_tempdir();
    const char *saved = getenv("CLCNN_CACHE_DIR");
    char *keep = saved != NULL ? strdup(saved) : NULL;
    sweep_build(fc, "off");
    sweep_build(fc, dir);
    if (keep != NULL)
        setenv("CLCNN_CACHE_DIR", keep, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(keep);
    test_rmtree(dir);
    free(dir);
}

/* ---- conv2d forward ------------------------------------------------------------------------ */

enum { CN = 2, CC = 3, CH = 8, CW = 8, CK = 4 };

typedef struct conv_ctx {
    clcnn_device *dev;
    clcnn_conv_algo algo;
    float x[CN * CC * CH * CW], wv[CK * CC * 9], bias[CK];
    float y[CN * CK * CH * CW], first[CN * CK * CH * CW];
    bool have_first;
    /* Kept across runs and uploaded once (conv_make_kept), so that the filter a Winograd run
     * derives from it is cached and reused by the next run: a failure must not leave a
     * half-made one there. NULL: each run makes and uploads its own. */
    clcnn_tensor *kept_w;
} conv_ctx;

static clcnn_status conv_run(void *p)
{
    conv_ctx *c = p;
    clcnn_conv_params prm = clcnn_conv_params_default();
    prm.pad_h = prm.pad_w = 1;
    prm.relu = true;
    clcnn_tensor *x = NULL, *w = c->kept_w, *b = NULL, *y = NULL;
    clcnn_status st = CLCNN_OK;
    if (c->kept_w == NULL)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CK, CC, 3, 3}, &w);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CN, CC, CH, CW}, &x);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){1, CK, 1, 1}, &b);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CN, CK, CH, CW}, &y);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(x, c->x, CN * CC * CH * CW);
    if (st == CLCNN_OK && c->kept_w == NULL)
        st = clcnn_tensor_upload(w, c->wv, CK * CC * 9);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(b, c->bias, CK);
    if (st == CLCNN_OK) /* so that a forward that writes nothing cannot pass */
        st = clcnn_tensor_fill(y, NAN);
    if (st == CLCNN_OK)
        st = clcnn_conv2d_forward(c->dev, x, w, b, &prm, c->algo, NULL, 0, y);
    if (st == CLCNN_OK)
        st = clcnn_device_finish(c->dev);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(y, c->y, CN * CK * CH * CW);
    clcnn_tensor_release(x);
    if (c->kept_w == NULL)
        clcnn_tensor_release(w);
    clcnn_tensor_release(b);
    clcnn_tensor_release(y);
    if (st == CLCNN_OK && !c->have_first) {
        memcpy(c->first, c->y, sizeof c->y);
        c->have_first = true;
    }
    return st;
}

static bool conv_same(void *p)
{
    const conv_ctx *c = p;
    return memcmp(c->y, c->first, sizeof c->y) == 0;
}

static void *conv_make(clcnn_device *dev, const void *arg)
{
    conv_ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->dev = dev;
    c->algo = *(const clcnn_conv_algo *)arg;
    test_rng rng;
    test_rng_seed(&rng, 11);
    test_rng_fill(&rng, c->x, CN * CC * CH * CW, -1, 1);
    test_rng_fill(&rng, c->wv, CK * CC * 9, -0.5f, 0.5f);
    test_rng_fill(&rng, c->bias, CK, -0.1f, 0.1f);
    return c;
}

static void *conv_make_kept(clcnn_device *dev, const void *arg)
{
    conv_ctx *c = conv_make(dev, arg);
    assert_ok(clcnn_tensor_create(dev, (clcnn_shape){CK, CC, 3, 3}, &c->kept_w));
    assert_ok(clcnn_tensor_upload(c->kept_w, c->wv, CK * CC * 9));
    return c;
}

static void conv_destroy_kept(void *p)
{
    conv_ctx *c = p;
    clcnn_tensor_release(c->kept_w);
    free(c);
}

static void conv_expect(void *p, const void *good)
{
    conv_ctx *c = p;
    const conv_ctx *g = good;
    memcpy(c->first, g->first, sizeof c->first);
    c->have_first = true;
}

static void conv_destroy(void *p)
{
    free(p);
}

/* The first result is right: NMSE within the solver's tolerance of a float64 reference. */
static void conv_check_first(const void *p)
{
    const conv_ctx *c = p;
    double err = 0, norm = 0;
    for (int n = 0; n < CN; n++)
        for (int k = 0; k < CK; k++)
            for (int i = 0; i < CH; i++)
                for (int j = 0; j < CW; j++) {
                    double s = c->bias[k];
                    for (int ch = 0; ch < CC; ch++)
                        for (int r = 0; r < 3; r++)
                            for (int q = 0; q < 3; q++) {
                                int yy = i + r - 1, xx = j + q - 1;
                                if (yy >= 0 && yy < CH && xx >= 0 && xx < CW)
                                    s += (double)c->x[((n * CC + ch) * CH + yy) * CW + xx] *
                                         (double)c->wv[((k * CC + ch) * 3 + r) * 3 + q];
                            }
                    double ref = s > 0 ? s : 0;
                    double d = c->first[((n * CK + k) * CH + i) * CW + j] - ref;
                    err += d * d;
                    norm += ref * ref;
                }
    assert_true(c->have_first);
    assert_true(err / norm <= clcnn_conv_algo_tolerance(c->algo));
}

static const clcnn_conv_algo conv_algos[] = {CLCNN_CONV_ALGO_DIRECT, CLCNN_CONV_ALGO_GEMM,
                                             CLCNN_CONV_ALGO_WINOGRAD2, CLCNN_CONV_ALGO_WINOGRAD4,
                                             CLCNN_CONV_ALGO_DIRECT_ROWS};

static fault_case conv_case(size_t a, char *label, size_t size)
{
    snprintf(label, size, "conv2d forward %s", clcnn_conv_algo_name(conv_algos[a]));
    return (fault_case){label,     &conv_algos[a], conv_make,   conv_run,
                        conv_same, conv_expect,    conv_destroy};
}

static void test_conv_forward_every_call(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof conv_algos / sizeof conv_algos[0]; a++) {
        char label[64];
        fault_case fc = conv_case(a, label, sizeof label);
        sweep_warm(&fc, conv_check_first);
    }
}

/* Winograd with weights that stay put: between runs the transformed filter is dropped (the live
 * counts empty the cache), so each failing run makes it again and the retry may reuse it. */
static void test_conv_cached_filter_every_call(void **state)
{
    (void)state;
    for (size_t a = 2; a < sizeof conv_algos / sizeof conv_algos[0]; a++) {
        if (conv_algos[a] == CLCNN_CONV_ALGO_DIRECT_ROWS)
            continue; /* derives nothing from the weights */
        char label[64];
        snprintf(label, sizeof label, "conv2d forward %s, weights kept",
                 clcnn_conv_algo_name(conv_algos[a]));
        fault_case fc = {label,     &conv_algos[a], conv_make_kept,   conv_run,
                         conv_same, conv_expect,    conv_destroy_kept};
        sweep_warm(&fc, conv_check_first);
    }
}

static void test_conv_build_every_call(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof conv_algos / sizeof conv_algos[0]; a++) {
        char label[64];
        fault_case fc = conv_case(a, label, sizeof label);
        with_cache_dirs(&fc);
    }
}

/* ---- conv2d backward: data, weights and bias ---------------------------------------------------
 */

typedef struct bwd_ctx {
    clcnn_device *dev;
    clcnn_conv_algo algo;
    float x[CN * CC * CH * CW], wv[CK * CC * 9], dy[CN * CK * CH * CW];
    float out[CN * CC * CH * CW + CK * CC * 9 + CK]; /* dx, dw, db */
    float first[CN * CC * CH * CW + CK * CC * 9 + CK];
    bool have_first;
} bwd_ctx;

enum { BWD_DX = 0, BWD_DW = CN * CC * CH * CW, BWD_DB = BWD_DW + CK * CC * 9 };

static clcnn_status bwd_run(void *p)
{
    bwd_ctx *c = p;
    clcnn_conv_params prm = clcnn_conv_params_default();
    prm.pad_h = prm.pad_w = 1;
    clcnn_tensor *x = NULL, *w = NULL, *dy = NULL, *dx = NULL, *dw = NULL, *db = NULL;
    clcnn_status st = clcnn_tensor_create(c->dev, (clcnn_shape){CN, CC, CH, CW}, &x);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CK, CC, 3, 3}, &w);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CN, CK, CH, CW}, &dy);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CN, CC, CH, CW}, &dx);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){CK, CC, 3, 3}, &dw);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(c->dev, (clcnn_shape){1, CK, 1, 1}, &db);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(x, c->x, CN * CC * CH * CW);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(w, c->wv, CK * CC * 9);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(dy, c->dy, CN * CK * CH * CW);
    if (st == CLCNN_OK)
        st = clcnn_conv2d_backward_data(c->dev, dy, w, &prm, c->algo, NULL, 0, dx);
    if (st == CLCNN_OK)
        st = clcnn_conv2d_backward_weights(c->dev, x, dy, &prm, c->algo, NULL, 0, dw);
    if (st == CLCNN_OK)
        st = clcnn_conv2d_backward_bias(c->dev, dy, db);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(dx, c->out + BWD_DX, CN * CC * CH * CW);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(dw, c->out + BWD_DW, CK * CC * 9);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(db, c->out + BWD_DB, CK);
    clcnn_tensor *all[] = {x, w, dy, dx, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clcnn_tensor_release(all[i]);
    if (st == CLCNN_OK && !c->have_first) {
        memcpy(c->first, c->out, sizeof c->out);
        c->have_first = true;
    }
    return st;
}

static bool bwd_same(void *p)
{
    const bwd_ctx *c = p;
    return memcmp(c->out, c->first, sizeof c->out) == 0;
}

static void *bwd_make(clcnn_device *dev, const void *arg)
{
    bwd_ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->dev = dev;
    c->algo = *(const clcnn_conv_algo *)arg;
    test_rng rng;
    test_rng_seed(&rng, 12);
    test_rng_fill(&rng, c->x, CN * CC * CH * CW, -1, 1);
    test_rng_fill(&rng, c->wv, CK * CC * 9, -0.5f, 0.5f);
    test_rng_fill(&rng, c->dy, CN * CK * CH * CW, -1, 1);
    return c;
}

static void bwd_expect(void *p, const void *good)
{
    bwd_ctx *c = p;
    memcpy(c->first, ((const bwd_ctx *)good)->first, sizeof c->first);
    c->have_first = true;
}

static double nmse(const float *got, const double *ref, size_t n)
{
    double err = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        err += (got[i] - ref[i]) * (got[i] - ref[i]);
        norm += ref[i] * ref[i];
    }
    return err / norm;
}

/* dx, dw and db of the first run within the solver's tolerances of a float64 reference. */
static void bwd_check_first(const void *p)
{
    const bwd_ctx *c = p;
    static double ref[BWD_DB + CK];
    memset(ref, 0, sizeof ref);
    for (int n = 0; n < CN; n++)
        for (int k = 0; k < CK; k++)
            for (int i = 0; i < CH; i++)
                for (int j = 0; j < CW; j++) {
                    double g = c->dy[((n * CK + k) * CH + i) * CW + j];
                    ref[BWD_DB + k] += g;
                    for (int ch = 0; ch < CC; ch++)
                        for (int r = 0; r < 3; r++)
                            for (int q = 0; q < 3; q++) {
                                int yy = i + r - 1, xx = j + q - 1;
                                if (yy < 0 || yy >= CH || xx < 0 || xx >= CW)
                                    continue;
                                size_t xi = (size_t)((n * CC + ch) * CH + yy) * CW + (size_t)xx;
                                size_t wi = (size_t)((k * CC + ch) * 3 + r) * 3 + (size_t)q;
                                ref[BWD_DX + xi] += g * c->wv[wi];
                                ref[BWD_DW + wi] += g * c->x[xi];
                            }
                }
    assert_true(c->have_first);
    assert_true(nmse(c->first + BWD_DX, ref + BWD_DX, BWD_DW) <=
                clcnn_conv_pass_tolerance(CLCNN_CONV_PASS_BWD_DATA, c->algo));
    assert_true(nmse(c->first + BWD_DW, ref + BWD_DW, CK * CC * 9) <=
                clcnn_conv_pass_tolerance(CLCNN_CONV_PASS_BWD_WEIGHTS, c->algo));
    assert_true(nmse(c->first + BWD_DB, ref + BWD_DB, CK) <= 1e-10);
}

static const clcnn_conv_algo bwd_algos[] = {CLCNN_CONV_ALGO_DIRECT, CLCNN_CONV_ALGO_GEMM,
                                            CLCNN_CONV_ALGO_DIRECT_ROWS};

static fault_case bwd_case(size_t a, char *label, size_t size)
{
    snprintf(label, size, "conv2d backward %s", clcnn_conv_algo_name(bwd_algos[a]));
    return (fault_case){label, &bwd_algos[a], bwd_make, bwd_run, bwd_same, bwd_expect, free};
}

static void test_conv_backward_every_call(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof bwd_algos / sizeof bwd_algos[0]; a++) {
        char label[64];
        fault_case fc = bwd_case(a, label, sizeof label);
        sweep_warm(&fc, bwd_check_first);
    }
}

/* direct_rows with its weights packed first (which only large problems do by themselves): the
 * sub-buffer and the packing kernel fail in turn too. */
static void test_conv_rows_packed_every_call(void **state)
{
    (void)state;
    clcnn__conv_rows_force_pack(true);
    for (size_t a = 0; a < sizeof bwd_algos / sizeof bwd_algos[0]; a++) {
        if (bwd_algos[a] != CLCNN_CONV_ALGO_DIRECT_ROWS)
            continue;
        fault_case fc = {"conv2d backward direct_rows, weights packed",
                         &bwd_algos[a],
                         bwd_make,
                         bwd_run,
                         bwd_same,
                         bwd_expect,
                         free};
        sweep_warm(&fc, bwd_check_first);
    }
    for (size_t a = 0; a < sizeof conv_algos / sizeof conv_algos[0]; a++) {
        if (conv_algos[a] != CLCNN_CONV_ALGO_DIRECT_ROWS)
            continue;
        fault_case fc = {"conv2d forward direct_rows, weights packed",
                         &conv_algos[a],
                         conv_make,
                         conv_run,
                         conv_same,
                         conv_expect,
                         conv_destroy};
        sweep_warm(&fc, conv_check_first);
    }
    clcnn__conv_rows_force_pack(false);
}

/* ---- a training step ------------------------------------------------------------------------ */

enum { TB = 4, TPIX = 144 };

typedef struct train_spec {
    const char *text;
    clcnn_optim_kind optim;
} train_spec;

typedef struct train_ctx {
    clcnn_device *dev;
    clcnn_model_desc model;
    clcnn_optim_config optim;
    float images[TB * TPIX];
    int32_t labels[TB];
    float loss, first_loss;
    float probs[TB * 3], first_probs[TB * 3]; /* the inference forward after the step */
    float *params, *first_params;             /* every parameter after the step, concatenated */
    size_t param_floats;
    bool have_first;
    /* train_retry_run(): the first failure, before the call was retried on the same net */
    clcnn_status noted;
    char noted_msg[512];
} train_ctx;

static clcnn_status read_back(train_ctx *t, clcnn_net *net, clcnn_status st);

/* Builds the net, runs one step, an inference forward, and reads the loss, the probabilities
 * and every parameter back; releases the net. */
static clcnn_status train_run(void *p)
{
    train_ctx *t = p;
    clcnn_net *net = NULL;
    clcnn_status st = clcnn_net_create(t->dev, &t->model, 5, &net);
    if (st == CLCNN_OK)
        st = clcnn_net_train_step(net, t->images, t->labels, TB, &t->optim, &t->loss);
    return read_back(t, net, st);
}

/* After a good training run: an inference forward, the probabilities and every parameter read
 * back; releases the net and keeps the first good result. */
static clcnn_status read_back(train_ctx *t, clcnn_net *net, clcnn_status st)
{
    if (st == CLCNN_OK)
        st = clcnn_net_forward(net, t->images, TB, t->probs);
    size_t at = 0;
    for (size_t i = 0; st == CLCNN_OK && i < clcnn_net_param_count(net); i++) {
        clcnn_tensor *w = NULL;
        st = clcnn_net_param(net, i, NULL, &w, NULL);
        size_t n = st == CLCNN_OK ? clcnn_tensor_count(w) : 0;
        if (st == CLCNN_OK && at + n > t->param_floats) {
            float *grown = realloc(t->params, (at + n) * sizeof *grown);
            assert_non_null(grown);
            t->params = grown;
            t->param_floats = at + n;
        }
        if (st == CLCNN_OK)
            st = clcnn_tensor_download(w, t->params + at, n);
        at += n;
    }
    clcnn_net_release(net);
    if (st == CLCNN_OK && !t->have_first) {
        t->first_params = malloc(t->param_floats * sizeof(float));
        assert_non_null(t->first_params);
        memcpy(t->first_params, t->params, t->param_floats * sizeof(float));
        t->first_loss = t->loss;
        memcpy(t->first_probs, t->probs, sizeof t->probs);
        t->have_first = true;
    }
    return st;
}

/* Remembers the first failure of a retried call. */
static void note(train_ctx *t, clcnn_status st)
{
    if (t->noted == CLCNN_OK) {
        t->noted = st;
        snprintf(t->noted_msg, sizeof t->noted_msg, "%s", clcnn_last_error());
    }
}

/* As train_run() with two steps, but each call that fails is made again on the same net, as a
 * caller that retries after an error does: the net must be as usable as the device. */
static clcnn_status train_retry_run(void *p)
{
    train_ctx *t = p;
    t->noted = CLCNN_OK;
    t->noted_msg[0] = '\0';
    clcnn_net *net = NULL;
    clcnn_status st = clcnn_net_create(t->dev, &t->model, 5, &net);
    if (st != CLCNN_OK) {
        note(t, st);
        st = clcnn_net_create(t->dev, &t->model, 5, &net);
    }
    for (int step = 0; step < 2 && st == CLCNN_OK; step++) {
        st = clcnn_net_train_step(net, t->images, t->labels, TB, &t->optim, &t->loss);
        if (st != CLCNN_OK) {
            note(t, st);
            st = clcnn_net_train_step(net, t->images, t->labels, TB, &t->optim, &t->loss);
        }
    }
    if (st == CLCNN_OK) {
        st = clcnn_net_forward(net, t->images, TB, t->probs);
        if (st != CLCNN_OK) {
            note(t, st);
            st = clcnn_net_forward(net, t->images, TB, t->probs);
        }
    }
    size_t at = 0;
    for (size_t i = 0; st == CLCNN_OK && i < clcnn_net_param_count(net); i++) {
        clcnn_tensor *w = NULL;
        st = clcnn_net_param(net, i, NULL, &w, NULL);
        size_t n = st == CLCNN_OK ? clcnn_tensor_count(w) : 0;
        if (st == CLCNN_OK && at + n > t->param_floats) {
            float *grown = realloc(t->params, (at + n) * sizeof *grown);
            assert_non_null(grown);
            t->params = grown;
            t->param_floats = at + n;
        }
        if (st == CLCNN_OK) {
            st = clcnn_tensor_download(w, t->params + at, n);
            if (st != CLCNN_OK) {
                note(t, st);
                st = clcnn_tensor_download(w, t->params + at, n);
            }
        }
        at += n;
    }
    clcnn_net_release(net);
    if (st == CLCNN_OK && !t->have_first) {
        t->first_params = malloc(t->param_floats * sizeof(float));
        assert_non_null(t->first_params);
        memcpy(t->first_params, t->params, t->param_floats * sizeof(float));
        t->first_loss = t->loss;
        memcpy(t->first_probs, t->probs, sizeof t->probs);
        t->have_first = true;
    }
    return st;
}

static bool train_same(void *p)
{
    const train_ctx *t = p;
    return memcmp(&t->loss, &t->first_loss, sizeof t->loss) == 0 &&
           memcmp(t->probs, t->first_probs, sizeof t->probs) == 0 &&
           memcmp(t->params, t->first_params, t->param_floats * sizeof(float)) == 0;
}

static void *train_make(clcnn_device *dev, const void *arg)
{
    const train_spec *spec = arg;
    train_ctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->dev = dev;
    assert_ok(clcnn_model_parse(spec->text, strlen(spec->text), "fault.model", &t->model));
    t->optim = clcnn_optim_config_default(spec->optim);
    t->optim.lr = 0.05f;
    t->optim.momentum = spec->optim == CLCNN_OPTIM_SGD ? 0.9f : 0.0f;
    test_rng rng;
    test_rng_seed(&rng, 3);
    test_rng_fill(&rng, t->images, TB * TPIX, 0, 1);
    for (int b = 0; b < TB; b++)
        t->labels[b] = b % 3;
    return t;
}

static void train_expect(void *p, const void *good)
{
    train_ctx *t = p;
    const train_ctx *g = good;
    t->first_params = malloc(g->param_floats * sizeof(float));
    assert_non_null(t->first_params);
    memcpy(t->first_params, g->first_params, g->param_floats * sizeof(float));
    t->params = calloc(g->param_floats, sizeof(float));
    assert_non_null(t->params);
    t->param_floats = g->param_floats;
    t->first_loss = g->first_loss;
    memcpy(t->first_probs, g->first_probs, sizeof t->first_probs);
    t->have_first = true;
}

static void train_destroy(void *p)
{
    train_ctx *t = p;
    clcnn_model_desc_free(&t->model);
    free(t->params);
    free(t->first_params);
    free(t);
}

/* The step learned something: a finite positive loss near ln(3) and parameters that moved. */
static void train_check_first(const void *p)
{
    const train_ctx *t = p;
    assert_true(t->have_first);
    assert_true(isfinite(t->first_loss) && t->first_loss > 0.5f && t->first_loss < 2.5f);
    for (size_t i = 0; i < t->param_floats; i++)
        assert_true(isfinite(t->first_params[i]));
    for (int b = 0; b < TB; b++)
        assert_float_equal(t->first_probs[3 * b] + t->first_probs[3 * b + 1] +
                               t->first_probs[3 * b + 2],
                           1.0, 1e-5);
}

static const train_spec train_specs[] = {
    {"input 1x12x12\nconv 4 3x3 pad=1 relu\nmaxpool 2x2\nconv 6 3x3 relu\nfc 16 relu\n"
     "dropout 0.25\nfc 3\nsoftmax\n",
     CLCNN_OPTIM_SGD},
    {"input 1x12x12\nconv 4 3x3 pad=1 relu algo=gemm\navgpool 2x2\nconv 6 3x3 algo=winograd4\n"
     "leaky-relu alpha=0.125\nfc 3\nsoftmax\n",
     CLCNN_OPTIM_ADAM},
};
static const char *const train_labels[] = {"train step (auto solvers, SGD momentum)",
                                           "train step (gemm and winograd4, Adam)"};

static fault_case train_case(size_t i)
{
    return (fault_case){train_labels[i], &train_specs[i], train_make,   train_run,
                        train_same,      train_expect,    train_destroy};
}

static void test_train_step_every_call(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof train_specs / sizeof train_specs[0]; i++) {
        fault_case fc = train_case(i);
        sweep_warm(&fc, train_check_first);
    }
}

/* Every call of two training steps on one net fails in turn, and the failed call is retried on
 * the same net: the retry succeeds, and unless the failure came after the optimizer had written
 * a parameter, the net ends exactly where a net that never failed ends. */
static void test_train_retry_every_call(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof train_specs / sizeof train_specs[0]; i++) {
        train_ctx *t = train_make(test_dev, &train_specs[i]);
        assert_ok(train_retry_run(t));
        train_check_first(t);
        long steady[FAULT_OBJ_COUNT], now[FAULT_OBJ_COUNT];
        snapshot(test_dev, steady);
        fault_reset();
        assert_ok(train_retry_run(t));
        assert_true(train_same(t));
        size_t n = fault_calls(FAULT_ALL), differ = 0;
        for (size_t k = 1; k <= n; k++) {
            fault_reset();
            fault_arm(FAULT_ALL, k);
            clcnn_status st = train_retry_run(t);
            int kind = fault_fired();
            fault_arm(0, 0);
            assert_true(kind >= 0);
            total_injections++;
            if (st != CLCNN_OK)
                print_error("%s, retried: call %zu (%s): the retry failed: %s\n", train_labels[i],
                            k, fault_call_name(kind), clcnn_last_error());
            assert_int_equal(st, CLCNN_OK);
            if (t->noted != fault_expected_status(kind) ||
                strstr(t->noted_msg, fault_call_name(kind)) == NULL)
                print_error("%s, retried: call %zu: %s failing gave %s '%s'\n", train_labels[i], k,
                            fault_call_name(kind), clcnn_status_name(t->noted), t->noted_msg);
            assert_int_equal(t->noted, fault_expected_status(kind));
            assert_non_null(strstr(t->noted_msg, fault_call_name(kind)));
            /* Exact unless the failure came after the update wrote a parameter (the ops do not
             * wait, so the loss read at the end of the step also comes after it): the optimizer
             * steps each parameter in place, and undoing that would need a copy of them all
             * (PyTorch's optimizers leave the same partial step on an exception). */
            bool in_update = strstr(t->noted_msg, "net: update of ") != NULL ||
                             strstr(t->noted_msg, "net: the step was applied") != NULL;
            bool nothing_written =
                !in_update || (strstr(t->noted_msg, "net: update of conv1.weight:") != NULL &&
                               (kind == FAULT_CREATE_KERNEL || kind == FAULT_SET_KERNEL_ARG ||
                                kind == FAULT_ENQUEUE_KERNEL));
            if (!train_same(t)) {
                if (nothing_written)
                    print_error("%s, retried: call %zu: after '%s' the net ended elsewhere\n",
                                train_labels[i], k, t->noted_msg);
                assert_false(nothing_written);
                for (size_t j = 0; j < t->param_floats; j++)
                    assert_true(isfinite(t->params[j]));
                differ++;
            }
            snapshot(test_dev, now);
            assert_same_live(train_labels[i], k, steady, now);
        }
        print_message("%s, each failed call retried on the same net: %zu calls; %zu ended "
                      "elsewhere, each after a partial optimizer update\n",
                      train_labels[i], n, differ);
        train_destroy(t);
    }
}

/* ---- a pipelined run ------------------------------------------------------------------------ */

enum { SCHED_BATCHES = 3 };

static clcnn_status sched_fill(void *user, uint64_t batch, float *images, int32_t *labels,
                               size_t *count)
{
    const train_ctx *t = user;
    (void)batch;
    memcpy(images, t->images, sizeof t->images);
    memcpy(labels, t->labels, sizeof t->labels);
    *count = TB;
    return CLCNN_OK;
}

static clcnn_status sched_sum(void *user, const clcnn_sched_result *r)
{
    train_ctx *t = user;
    t->loss += r->loss;
    return CLCNN_OK;
}

/* Builds the net and trains SCHED_BATCHES batches through the scheduler (two in flight, two
 * loader threads: their calls interleave with the running thread's), then as train_run(). */
static clcnn_status sched_run(void *p)
{
    train_ctx *t = p;
    clcnn_net *net = NULL;
    clcnn_status st = clcnn_net_create(t->dev, &t->model, 5, &net);
    t->loss = 0.0f;
    if (st == CLCNN_OK) {
        clcnn_sched_config c = clcnn_sched_config_default();
        c.training = true;
        c.batch = TB;
        c.batches = SCHED_BATCHES;
        c.inflight = 2;
        c.loaders = 2;
        c.optimizer = &t->optim;
        c.fill = sched_fill;
        c.fill_user = t;
        c.result = sched_sum;
        c.result_user = t;
        st = clcnn_sched_run(net, &c, NULL);
        t->loss /= SCHED_BATCHES; /* the mean, as one step's */
    }
    return read_back(t, net, st);
}

/* Every OpenCL call of a pipelined training run fails in turn (alarm() turns a hang into a
 * failure): the run returns the call's status naming it, nothing is left behind, and the next
 * run gives the same bits. */
static void test_sched_every_call(void **state)
{
    (void)state;
    alarm(900);
    fault_case fc = {"pipelined training (2 in flight, 2 loaders)",
                     &train_specs[0],
                     train_make,
                     sched_run,
                     train_same,
                     train_expect,
                     train_destroy};
    sweep_warm(&fc, train_check_first);
    alarm(0);
}

static void test_train_build_every_call(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof train_specs / sizeof train_specs[0]; i++) {
        fault_case fc = train_case(i);
        with_cache_dirs(&fc);
    }
}

/* ---- device creation ------------------------------------------------------------------------- */

static void test_device_create_every_call(void **state)
{
    (void)state;
    long before[FAULT_OBJ_COUNT], after[FAULT_OBJ_COUNT];
    snapshot(NULL, before);
    fault_reset();
    clcnn_device *dev = NULL;
    assert_ok(clcnn_device_create(NULL, &dev));
    clcnn_device_release(dev);
    size_t n = fault_calls(FAULT_ALL & ~FAULT_BIT(FAULT_FINISH)); /* release's finish: not create */
    assert_true(n >= 3);                                          /* a context and two queues */
    for (size_t k = 1; k <= n; k++) {
        fault_reset();
        fault_arm(FAULT_ALL & ~FAULT_BIT(FAULT_FINISH), k);
        dev = NULL;
        clcnn_status st = clcnn_device_create(NULL, &dev);
        int kind = fault_fired();
        fault_arm(0, 0);
        assert_true(kind >= 0);
        if (st != fault_expected_status(kind) ||
            strstr(clcnn_last_error(), fault_call_name(kind)) == NULL)
            print_error("device_create: %s failing: got %s '%s'\n", fault_call_name(kind),
                        clcnn_status_name(st), clcnn_last_error());
        assert_int_equal(st, fault_expected_status(kind));
        assert_non_null(strstr(clcnn_last_error(), fault_call_name(kind)));
        assert_null(dev); /* out-parameters are written only on success */
        total_injections++;
        snapshot(NULL, after);
        assert_same_live("device_create", k, before, after);
        assert_ok(clcnn_device_create(NULL, &dev));
        clcnn_device_release(dev);
    }
    print_message("device_create: %zu calls, each failed in turn\n", n);
    /* Release cannot report, but a failing finish in it must not stop it releasing. */
    for (size_t k = 1; k <= 2; k++) {
        assert_ok(clcnn_device_create(NULL, &dev));
        fault_reset();
        fault_arm(FAULT_BIT(FAULT_FINISH), k);
        clcnn_device_release(dev);
        assert_int_equal(fault_fired(), FAULT_FINISH);
        fault_arm(0, 0);
        total_injections++;
        snapshot(NULL, after);
        assert_same_live("device_release", k, before, after);
    }
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_create_every_call),
        cmocka_unit_test(test_conv_forward_every_call),
        cmocka_unit_test(test_conv_cached_filter_every_call),
        cmocka_unit_test(test_conv_build_every_call),
        cmocka_unit_test(test_conv_backward_every_call),
        cmocka_unit_test(test_conv_rows_packed_every_call),
        cmocka_unit_test(test_train_step_every_call),
        cmocka_unit_test(test_train_retry_every_call),
        cmocka_unit_test(test_train_build_every_call),
        cmocka_unit_test(test_sched_every_call),
    };
    int failed = cmocka_run_group_tests_name("fault", tests, test_group_setup, test_group_teardown);
    print_message("fault: %zu injections (%zu recovered by the library) at %zu distinct call "
                  "sites\n",
                  total_injections, total_recovered, fault_sites_total());
    if (getenv("CLCNN_FAULT_SITES") != NULL)
        fault_sites_print(stdout);
    return failed;
}
