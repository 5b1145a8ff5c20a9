/* 'clcnn bench pool': max pooling 2x2 stride 2 forward and backward timed against oneDNN's
 * pooling in the same run (when built with -Donednn=enabled), with the memory traffic reached. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifdef CLCNN_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#endif

#define MAX_SHAPES 16
#define CMD "bench pool"

typedef struct pool_bench_opts {
    clcnn_shape shapes[MAX_SHAPES];
    size_t nshapes;
    unsigned repeat, warmup;
    const char *device;
    char cmdline[512];
} pool_bench_opts;

/* One timed line of the table. */
typedef struct pool_row {
    const char *impl, *pass;
    double med_ms, min_ms, bytes;
} pool_row;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Parses "N,C,H,W[;N,C,H,W...]" (',' or ';' between shapes). */
static bool parse_shapes(const char *spec, pool_bench_opts *o)
{
    enum { MAX_VALUES = 4 * MAX_SHAPES };
    size_t v[MAX_VALUES], n = 0;
    const char *s = spec;
    while (*s != '\0') {
        char *end;
        if (*s < '0' || *s > '9' || n == MAX_VALUES)
            return false;
        unsigned long long x = strtoull(s, &end, 10);
        if (x == 0 || x > (1ull << 20))
            return false;
        v[n++] = (size_t)x;
        s = end;
        if (*s == ',' || *s == ';')
            s++;
        else if (*s != '\0')
            return false;
    }
    if (n == 0 || n % 4 != 0)
        return false;
    o->nshapes = n / 4;
    for (size_t i = 0; i < o->nshapes; i++)
        o->shapes[i] = (clcnn_shape){v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]};
    return true;
}

static int parse_options(int argc, char **argv, pool_bench_opts *o)
{
    *o = (pool_bench_opts){.nshapes = 1, .repeat = 10, .warmup = 1};
    o->shapes[0] = (clcnn_shape){8, 64, 224, 224};
    size_t used = 0;
    for (int i = 0; i < argc; i++) {
        int w = snprintf(o->cmdline + used, sizeof o->cmdline - used, "%s%s", i ? " " : "clcnn ",
                         argv[i]);
        if (w < 0 || (size_t)w >= sizeof o->cmdline - used)
            break;
        used += (size_t)w;
    }
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = cli_option_value(argc, argv, &i, "--shapes", &v)) != 0) {
            if (r < 0 || !parse_shapes(v, o))
                return cli_usage_error(CMD, "--shapes needs N,C,H,W[;N,C,H,W...], got '%s'",
                                       v != NULL ? v : "");
        } else if ((r = cli_option_value(argc, argv, &i, "--repeat", &v)) != 0) {
            char *end = NULL;
            unsigned long n = r > 0 ? strtoul(v, &end, 10) : 0;
            if (r < 0 || *end != '\0' || n < 1 || n > 10000)
                return cli_usage_error(CMD, "--repeat needs a count from 1 to 10000, got '%s'",
                                       v != NULL ? v : "");
            o->repeat = (unsigned)n;
        } else if ((r = cli_option_value(argc, argv, &i, "--warmup", &v)) != 0) {
            char *end = NULL;
            unsigned long n = r > 0 ? strtoul(v, &end, 10) : 0;
            if (r < 0 || *end != '\0' || n > 100)
                return cli_usage_error(CMD, "--warmup needs a count from 0 to 100, got '%s'",
                                       v != NULL ? v : "");
            o->warmup = (unsigned)n;
        } else if ((r = cli_option_value(argc, argv, &i, "--device", &o->device)) != 0) {
            if (r < 0)
                return cli_usage_error(CMD, "option '%s' needs a value", "--device");
        } else {
            return cli_usage_error(CMD, "unknown argument '%s'", argv[i]);
        }
    }
    return 0;
}

/* Times fn(arg) [warmup] + [repeat] times; false when a run fails. */
static bool time_runs(const pool_bench_opts *o, bool (*fn)(void *), void *arg, pool_row *row)
{
    double *t = malloc(o->repeat * sizeof *t);
    if (t == NULL)
        return false;
    for (unsigned i = 0; i < o->warmup; i++)
        if (!fn(arg)) {
            free(t);
            return false;
        }
    for (unsigned i = 0; i < o->repeat; i++) {
        double t0 = now_ms();
        if (!fn(arg)) {
            free(t);
            return false;
        }
        t[i] = now_ms() - t0;
    }
    qsort(t, o->repeat, sizeof *t, compare_double);
    row->min_ms = t[0];
    row->med_ms =
        o->repeat % 2 ? t[o->repeat / 2] : 0.5 * (t[o->repeat / 2 - 1] + t[o->repeat / 2]);
    free(t);
    return true;
}

/* ---- clcnn ----------------------------------------------------------------------------- */

typedef struct clcnn_job {
    clcnn_device *dev;
    clcnn_tensor *x, *y, *dy, *dx;
    cl_mem ind;
    clcnn_pool_params p;
    bool with_indices, backward;
    clcnn_status st;
} clcnn_job;

static bool clcnn_run(void *arg)
{
    clcnn_job *j = arg;
    cl_mem ind = j->with_indices ? j->ind : NULL;
    j->st = j->backward ? clcnn_pool_backward(j->dev, ind != NULL ? NULL : j->x, NULL, j->dy, ind,
                                              &j->p, j->dx)
                        : clcnn_pool_forward(j->dev, j->x, &j->p, j->y, ind);
    if (j->st == CLCNN_OK)
        j->st = clcnn_device_finish(j->dev); /* the op returns before it runs */
    return j->st == CLCNN_OK;
}

/* Host check of the device results: max is exact, and so is routing dy to the argmax. */
static bool check_results(const clcnn_shape xs, const float *x, const float *dy, const float *y,
                          const float *dx)
{
    const size_t H = xs.h, W = xs.w, Ho = H / 2, Wo = W / 2;
    for (size_t p = 0; p < xs.n * xs.c; p++)
        for (size_t oy = 0; oy < Ho; oy++)
            for (size_t ox = 0; ox < Wo; ox++) {
                size_t best = (p * H + 2 * oy) * W + 2 * ox;
                for (size_t r = 0; r < 2; r++)
                    for (size_t s = 0; s < 2; s++) {
                        size_t i = (p * H + 2 * oy + r) * W + 2 * ox + s;
                        if (x[i] > x[best])
                            best = i;
                    }
                size_t o = (p * Ho + oy) * Wo + ox;
                if (y[o] != x[best] || dx[best] != dy[o])
                    return false;
            }
    return true;
}

/* ---- oneDNN ---------------------------------------------------------------------------- */

#ifdef CLCNN_HAVE_ONEDNN
#define DNNL_TRY(call)                                                                             \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "clcnn bench pool: oneDNN: %s -> %s\n", #call, dnnl_status2str(s_));   \
            return s_;                                                                             \
        }                                                                                          \
    } while (0)

typedef struct dnnl_job {
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[4];
    int nargs;
} dnnl_job;

static bool dnnl_run(void *arg)
{
    dnnl_job *j = arg;
    return dnnl_primitive_execute(j->prim, j->stream, j->nargs, j->args) == dnnl_success &&
           dnnl_stream_wait(j->stream) == dnnl_success;
}

/* oneDNN's max pooling 2x2/2 on shape s in memory format tag (pooling takes its source layout
 * from the caller, so "any" is refused: the alternative to nchw is nChw16c, the blocked layout
 * oneDNN's own convolutions hand it): inference forward, training forward (with its workspace)
 * and backward. */
static dnnl_status_t onednn_pool(const pool_bench_opts *o, clcnn_shape s, dnnl_format_tag_t tag,
                                 pool_row rows[3], char *fmt, size_t fmt_size)
{
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    DNNL_TRY(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    dnnl_dims_t src = {(dnnl_dim_t)s.n, (dnnl_dim_t)s.c, (dnnl_dim_t)s.h, (dnnl_dim_t)s.w};
    dnnl_dims_t dst = {(dnnl_dim_t)s.n, (dnnl_dim_t)s.c, (dnnl_dim_t)(s.h / 2),
                       (dnnl_dim_t)(s.w / 2)};
    dnnl_dims_t strides = {2, 2}, kernel = {2, 2}, pad = {0, 0};
    dnnl_memory_desc_t src_md, dst_md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src, dnnl_f32, tag));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst, dnnl_f32, tag));
    dnnl_status_t st = dnnl_success;
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    dnnl_primitive_t prim[3] = {NULL, NULL, NULL};
    dnnl_memory_t mem[5] = {NULL, NULL, NULL, NULL, NULL}; /* src dst ws diff_dst diff_src */
    const dnnl_prop_kind_t props[2] = {dnnl_forward_inference, dnnl_forward_training};
    for (int k = 0; k < 2 && st == dnnl_success; k++) {
        dnnl_pooling_desc_t d;
        st = dnnl_pooling_forward_desc_init(&d, props[k], dnnl_pooling_max, &src_md, &dst_md,
                                            strides, kernel, pad, pad);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&pd[k], &d, NULL, eng, NULL);
    }
    if (st == dnnl_success) {
        dnnl_pooling_desc_t d;
        st = dnnl_pooling_backward_desc_init(&d, dnnl_pooling_max, &src_md, &dst_md, strides,
                                             kernel, pad, pad);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&pd[2], &d, NULL, eng, pd[1]);
    }
    const dnnl_query_t q[5] = {dnnl_query_src_md, dnnl_query_dst_md, dnnl_query_workspace_md,
                               dnnl_query_diff_dst_md, dnnl_query_diff_src_md};
    const int from[5] = {1, 1, 1, 2, 2};
    double bytes[5] = {0};
    for (int i = 0; i < 5 && st == dnnl_success; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd[from[i]], q[i], 0);
        bytes[i] = md != NULL ? (double)dnnl_memory_desc_get_size(md) : 0;
        if (md != NULL)
            st = dnnl_memory_create(&mem[i], md, eng, DNNL_MEMORY_ALLOCATE);
    }
    if (st == dnnl_success) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd[1], dnnl_query_src_md, 0);
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd[0], dnnl_query_impl_info_str, 0, &impl);
        snprintf(fmt, fmt_size, "%s, %s", impl != NULL ? impl : "?",
                 md->format_kind == dnnl_blocked && md->format_desc.blocking.inner_nblks > 0
                     ? "blocked layout"
                     : "plain layout");
    }
    /* Fill the inputs with random values. */
    for (int i = 0; i < 5 && st == dnnl_success; i++) {
        if (mem[i] == NULL || (i != 0 && i != 3))
            continue;
        void *h = NULL;
        st = dnnl_memory_get_data_handle(mem[i], &h);
        uint64_t state = 0x9e3779b97f4a7c15ull + (uint64_t)i;
        for (size_t e = 0; st == dnnl_success && e < (size_t)(bytes[i] / sizeof(float)); e++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            ((float *)h)[e] = (float)((state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
        }
    }
    for (int k = 0; k < 3 && st == dnnl_success; k++)
        st = dnnl_primitive_create(&prim[k], pd[k]);
    dnnl_job jobs[3] = {
        {stream, prim[0], {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_DST, mem[1]}}, 2},
        {stream,
         prim[1],
         {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_DST, mem[1]}, {DNNL_ARG_WORKSPACE, mem[2]}},
         3},
        {stream,
         prim[2],
         {{DNNL_ARG_DIFF_DST, mem[3]}, {DNNL_ARG_WORKSPACE, mem[2]}, {DNNL_ARG_DIFF_SRC, mem[4]}},
         3},
    };
    const double traffic[3] = {bytes[0] + bytes[1], bytes[0] + bytes[1] + bytes[2],
                               bytes[3] + bytes[2] + bytes[4]};
    for (int k = 0; k < 3 && st == dnnl_success; k++) {
        rows[k].bytes = traffic[k];
        if (!time_runs(o, dnnl_run, &jobs[k], &rows[k]))
            st = dnnl_runtime_error;
    }
    for (int i = 0; i < 3; i++) {
        dnnl_primitive_destroy(prim[i]);
        dnnl_primitive_desc_destroy(pd[i]);
    }
    for (int i = 0; i < 5; i++)
        dnnl_memory_destroy(mem[i]);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(eng);
    return st;
}
#endif

/* ---- the run --------------------------------------------------------------------------- */

static void print_row(clcnn_shape s, const pool_row *r, double vs)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zux%zu", s.n, s.c, s.h, s.w);
    printf("%-16s %-44s %-10s %10.3f %10.3f %8.2f", shape, r->impl, r->pass, r->med_ms, r->min_ms,
           r->bytes / (r->med_ms * 1e6));
    if (!isnan(vs))
        printf(" %9.2fx", vs);
    printf("\n");
}

static clcnn_status bench_shape(const pool_bench_opts *o, clcnn_device *dev, clcnn_shape xs,
                                bool *all_met)
{
    clcnn_shape ys = {xs.n, xs.c, xs.h / 2, xs.w / 2};
    size_t nx = xs.n * xs.c * xs.h * xs.w, ny = ys.n * ys.c * ys.h * ys.w;
    clcnn_job j = {.dev = dev, .p = clcnn_pool_params_default(CLCNN_POOL_MAX)};
    float *hx = calloc(nx, sizeof *hx), *hdy = calloc(ny, sizeof *hdy);
    float *hy = malloc(ny * sizeof *hy), *hdx = malloc(nx * sizeof *hdx);
    clcnn_status st = hx && hdy && hy && hdx ? CLCNN_OK : CLCNN_STATUS_OUT_OF_MEMORY;
    uint64_t state = 12345;
    for (size_t i = 0; st == CLCNN_OK && i < nx; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        float v = (float)((state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
        hx[i] = v;
        if (i < ny)
            hdy[i] = v * 0.5f + 0.25f;
    }
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, xs, &j.x);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, ys, &j.y);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, ys, &j.dy);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, xs, &j.dx);
    if (st == CLCNN_OK) {
        cl_int err;
        j.ind = clCreateBuffer(clcnn_device_context(dev), CL_MEM_READ_WRITE, ny * sizeof(cl_int),
                               NULL, &err);
        st = err == CL_SUCCESS ? CLCNN_OK : CLCNN_STATUS_OUT_OF_MEMORY;
    }
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(j.x, hx, nx);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(j.dy, hdy, ny);
    const double fx = (double)nx * 4, fy = (double)ny * 4, fi = (double)ny * 4;
    pool_row rows[4] = {
        {"clcnn", "fwd", 0, 0, fx + fy},
        {"clcnn (+indices)", "fwd-train", 0, 0, fx + fy + fi},
        {"clcnn (from indices)", "bwd", 0, 0, fy + fi + fx},
        {"clcnn (recompute argmax from x)", "bwd", 0, 0, fy + fx + fx},
    };
    for (int k = 0; k < 4 && st == CLCNN_OK; k++) {
        j.with_indices = k == 1 || k == 2;
        j.backward = k >= 2;
        if (!time_runs(o, clcnn_run, &j, &rows[k]))
            st = j.st;
        if (st == CLCNN_OK && k == 1)
            st = clcnn_tensor_download(j.y, hy, ny);
        if (st == CLCNN_OK && k >= 2) {
            st = clcnn_tensor_download(j.dx, hdx, nx);
            if (st == CLCNN_OK && !check_results(xs, hx, hdy, hy, hdx)) {
                fprintf(stderr, "clcnn bench pool: %s %s gave a wrong result\n", rows[k].impl,
                        rows[k].pass);
                st = CLCNN_STATUS_INTERNAL;
            }
        }
    }
    double ref[3] = {NAN, NAN, NAN}; /* oneDNN's best fwd, fwd-train, bwd ms */
#ifdef CLCNN_HAVE_ONEDNN
    pool_row dn[2][3];
    char fmt[2][160] = {"", ""};
    const dnnl_format_tag_t tags[2] = {dnnl_nchw, dnnl_nChw16c};
    const char *names[2][3] = {{"oneDNN nchw", "oneDNN nchw (+workspace)", "oneDNN nchw"},
                               {"oneDNN nChw16c", "oneDNN nChw16c (+workspace)", "oneDNN nChw16c"}};
    const char *passes[3] = {"fwd", "fwd-train", "bwd"};
    bool ok[2] = {false, false};
    for (int t = 0; t < 2 && st == CLCNN_OK && (xs.h % 2 == 0 && xs.w % 2 == 0); t++) {
        dnnl_status_t ds = onednn_pool(o, xs, tags[t], dn[t], fmt[t], sizeof fmt[t]);
        ok[t] = ds == dnnl_success;
        if (!ok[t])
            printf("#   oneDNN %s: failed (%s)\n", t == 0 ? "nchw" : "nChw16c",
                   dnnl_status2str(ds));
        for (int k = 0; ok[t] && k < 3; k++) {
            dn[t][k].impl = names[t][k];
            dn[t][k].pass = passes[k];
            if (isnan(ref[k]) || dn[t][k].med_ms < ref[k])
                ref[k] = dn[t][k].med_ms;
        }
    }
#endif
    if (st == CLCNN_OK) {
        const int pair[4] = {0, 1, 2, 2};
        for (int k = 0; k < 4; k++) {
            double vs = ref[pair[k]] / rows[k].med_ms;
            print_row(xs, &rows[k], vs);
            if (!isnan(vs) && vs < 1.0 && k != 3)
                *all_met = false;
        }
#ifdef CLCNN_HAVE_ONEDNN
        for (int t = 0; t < 2; t++) {
            if (!ok[t])
                continue;
            for (int k = 0; k < 3; k++)
                print_row(xs, &dn[t][k], NAN);
            printf("#   oneDNN %s: %s\n", t == 0 ? "nchw" : "nChw16c", fmt[t]);
        }
#endif
    }
    clReleaseMemObject(j.ind);
    clcnn_tensor_release(j.x);
    clcnn_tensor_release(j.y);
    clcnn_tensor_release(j.dy);
    clcnn_tensor_release(j.dx);
    free(hx);
    free(hdy);
    free(hy);
    free(hdx);
    return st;
}

int cli_bench_pool(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: clcnn bench " BENCH_POOL_USAGE "\n\n" BENCH_POOL_HELP "\n");
            return 0;
        }
    pool_bench_opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < o.nshapes; i++)
        if (o.shapes[i].h < 2 || o.shapes[i].w < 2)
            return cli_usage_error(CMD, "%s", "every shape needs H and W >= 2");
    clcnn_device *dev = NULL;
    clcnn_status st = clcnn_device_create(o.device, &dev);
    if (st != CLCNN_OK)
        return cli_fail(CMD, st);
    const clcnn_device_info *d = clcnn_device_get_info(dev);
    printf("# clcnn bench pool on [%u] %s (%s, driver %s): max 2x2 stride 2\n", d->index, d->name,
           d->platform_name, d->driver_version);
    printf("# %u warm-up run(s), then %u timed; wall clock around each call and a "
           "clcnn_device_finish\n",
           o.warmup, o.repeat);
    printf("# GB/s = (bytes read + bytes written) / median time\n# command: %s\n", o.cmdline);
#ifndef CLCNN_HAVE_ONEDNN
    printf("# oneDNN: not built in (meson -Donednn=enabled)\n");
#endif
    printf("%-16s %-44s %-10s %10s %10s %8s %10s\n", "shape", "impl", "pass", "median ms", "min ms",
           "GB/s", "vs oneDNN");
    bool all_met = true;
    for (size_t i = 0; i < o.nshapes && st == CLCNN_OK; i++)
        st = bench_shape(&o, dev, o.shapes[i], &all_met);
    clcnn_device_release(dev);
    if (st != CLCNN_OK)
        return cli_fail(CMD, st);
#ifdef CLCNN_HAVE_ONEDNN
    printf("target >= 1.0x oneDNN (its faster layout) for fwd, fwd-train and bwd: %s\n",
           all_met ? "met" : "NOT MET");
#endif
    return 0;
}
