/* 'clcnn bench': times every convolution solver on standard layer shapes against the direct
 * solver (and oneDNN when built with -Donednn=enabled), and measures the cold versus cached
 * cost of a process's first convolution. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#endif
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifdef CLCNN_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#endif

#define MAX_SHAPES 64
#define MAX_ALGOS 32
#define MAX_REPEAT 100000u

/* A failure outside the library (oneDNN, host memory) whose message is already on stderr. */
#define BENCH_REPORTED CLCNN_STATUS_COUNT

/* ---- shapes ---------------------------------------------------------------------------- */

typedef struct conv_shape {
    const char *layer;
    size_t n, c, h, w, k, r, s, stride, pad;
} conv_shape;

/* VGG16's 3x3 layers with C == K, at batch 1 and 8. */
static const conv_shape vgg16_shapes[] = {
    {"conv1_2", 1, 64, 224, 224, 64, 3, 3, 1, 1},   {"conv1_2", 8, 64, 224, 224, 64, 3, 3, 1, 1},
    {"conv2_2", 1, 128, 112, 112, 128, 3, 3, 1, 1}, {"conv2_2", 8, 128, 112, 112, 128, 3, 3, 1, 1},
    {"conv3_2", 1, 256, 56, 56, 256, 3, 3, 1, 1},   {"conv3_2", 8, 256, 56, 56, 256, 3, 3, 1, 1},
    {"conv4_2", 1, 512, 28, 28, 512, 3, 3, 1, 1},   {"conv4_2", 8, 512, 28, 28, 512, 3, 3, 1, 1},
    {"conv5_1", 1, 512, 14, 14, 512, 3, 3, 1, 1},   {"conv5_1", 8, 512, 14, 14, 512, 3, 3, 1, 1},
};

/* torchvision's AlexNet. */
static const conv_shape alexnet_shapes[] = {
    {"conv1", 1, 3, 224, 224, 64, 11, 11, 4, 2}, {"conv2", 1, 64, 27, 27, 192, 5, 5, 1, 2},
    {"conv3", 1, 192, 13, 13, 384, 3, 3, 1, 1},  {"conv4", 1, 384, 13, 13, 256, 3, 3, 1, 1},
    {"conv5", 1, 256, 13, 13, 256, 3, 3, 1, 1},
};

/* The Fashion-MNIST training net. */
static const conv_shape lenet_shapes[] = {
    {"conv1", 64, 1, 28, 28, 32, 5, 5, 1, 2},
    {"conv2", 64, 32, 14, 14, 64, 5, 5, 1, 2},
};

typedef struct shape_set {
    const char *name;
    const conv_shape *shapes;
    size_t count;
} shape_set;

static const shape_set shape_sets[] = {
    {"lenet", lenet_shapes, sizeof lenet_shapes / sizeof lenet_shapes[0]},
    {"alexnet", alexnet_shapes, sizeof alexnet_shapes / sizeof alexnet_shapes[0]},
    {"vgg16", vgg16_shapes, sizeof vgg16_shapes / sizeof vgg16_shapes[0]},
};

static clcnn_shape input_shape(const conv_shape *s)
{
    return (clcnn_shape){s->n, s->c, s->h, s->w};
}

static clcnn_shape weight_shape(const conv_shape *s)
{
    return (clcnn_shape){s->k, s->c, s->r, s->s};
}

static clcnn_conv_params conv_params(const conv_shape *s)
{
    clcnn_conv_params p = clcnn_conv_params_default();
    p.pad_h = p.pad_w = s->pad;
    p.stride_h = p.stride_w = s->stride;
    return p;
}

/* ---- options --------------------------------------------------------------------------- */

typedef enum bench_mode { MODE_CONV, MODE_STARTUP, MODE_STARTUP_CHILD } bench_mode;

typedef struct bench_opts {
    bench_mode mode;
    const char *shapes_spec;
    conv_shape shapes[MAX_SHAPES];
    size_t count;
    bool all_algos;
    clcnn_conv_algo algo;
    clcnn_conv_pass pass;
    unsigned repeat, warmup;
    unsigned min_ms; /* conv: timed runs continue past repeat until they add up to this */
    bool json;
    const char *device;
    char cmdline[1024];
} bench_opts;

static bool parse_size(const char *s, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

static bool parse_count(const char *s, unsigned min, unsigned *out)
{
    size_t v;
    if (!parse_size(s, MAX_REPEAT, &v) || v < min)
        return false;
    *out = (unsigned)v;
    return true;
}

/* One "N,C,H,W,K,R,S,stride,pad" item (a writable copy, cut at ','). */
static bool parse_one_shape(char *item, conv_shape *out)
{
    size_t v[9];
    size_t i = 0;
    for (char *save = NULL, *tok = strtok_r(item, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (i == 9 || !parse_size(tok, 1u << 24, &v[i++]))
            return false;
    }
    if (i != 9)
        return false;
    *out = (conv_shape){"custom", v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    return true;
}

static int parse_custom_shapes(const char *spec, bench_opts *o)
{
    char buf[1024];
    if (strlen(spec) >= sizeof buf)
        return cli_usage_error("bench", "shape list '%.60s...' is too long", spec);
    memcpy(buf, spec, strlen(spec) + 1);
    o->count = 0;
    for (char *save = NULL, *item = strtok_r(buf, ";", &save); item != NULL;
         item = strtok_r(NULL, ";", &save)) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", item);
        if (o->count == MAX_SHAPES)
            return cli_usage_error("bench", "more than 64 shapes in '%s'", spec);
        if (!parse_one_shape(item, &o->shapes[o->count++]))
            return cli_usage_error("bench",
                                   "bad shape '%s' (want N,C,H,W,K,R,S,stride,pad, or lenet, "
                                   "alexnet, vgg16)",
                                   copy);
    }
    return o->count == 0 ? cli_usage_error("bench", "empty shape list '%s'", spec) : 0;
}

/* Fills o->shapes from a set name or a custom list, then checks each shape's arithmetic. */
static int parse_shapes(const char *spec, bench_opts *o)
{
    o->shapes_spec = spec;
    o->count = 0;
    for (size_t i = 0; i < sizeof shape_sets / sizeof shape_sets[0]; i++) {
        if (strcmp(spec, shape_sets[i].name) == 0) {
            memcpy(o->shapes, shape_sets[i].shapes, shape_sets[i].count * sizeof(conv_shape));
            o->count = shape_sets[i].count;
        }
    }
    int rc = o->count > 0 ? 0 : parse_custom_shapes(spec, o);
    for (size_t i = 0; rc == 0 && i < o->count; i++) {
        clcnn_conv_params p = conv_params(&o->shapes[i]);
        clcnn_shape y;
        if (clcnn_conv2d_output_shape(input_shape(&o->shapes[i]), weight_shape(&o->shapes[i]), &p,
                                      &y) != CLCNN_OK)
            rc = cli_usage_error("bench", "bad shape: %s", clcnn_last_error());
    }
    return rc;
}

static int parse_algo(const char *name, bench_opts *o)
{
    o->all_algos = strcmp(name, "all") == 0;
    if (o->all_algos)
        return 0;
    if (clcnn_conv_algo_parse(name, &o->algo) != CLCNN_OK)
        return cli_usage_error("bench", "%s", clcnn_last_error());
    return 0;
}

static int parse_pass(const char *name, bench_opts *o)
{
    static const clcnn_conv_pass list[] = {CLCNN_CONV_PASS_FWD, CLCNN_CONV_PASS_BWD_DATA,
                                           CLCNN_CONV_PASS_BWD_WEIGHTS};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (strcmp(name, clcnn_conv_pass_name(list[i])) == 0) {
            o->pass = list[i];
            return 0;
        }
    }
    return cli_usage_error("bench", "bad --pass '%s' (want fwd, bwd-data or bwd-weights)", name);
}

/* Handles one "--opt VALUE" option. Returns 0 when argv[*i] was consumed, -1 when it is not a
 * value option, else the exit status of a usage error. */
static int parse_value_option(int argc, char **argv, int *i, bench_opts *o)
{
    static const char *const names[] = {"--shapes", "--algo", "--repeat",  "--warmup",
                                        "--device", "--pass", "--min-time"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *v;
        int r = cli_option_value(argc, argv, i, names[k], &v);
        if (r == 0)
            continue;
        if (r < 0)
            return cli_usage_error("bench", "option '%s' needs a value", names[k]);
        switch (k) {
        case 0:
            return parse_shapes(v, o);
        case 1:
            return parse_algo(v, o);
        case 2:
            return parse_count(v, 1, &o->repeat)
                       ? 0
                       : cli_usage_error("bench", "bad --repeat '%s' (want 1 to 100000)", v);
        case 3:
            return parse_count(v, 0, &o->warmup)
                       ? 0
                       : cli_usage_error("bench", "bad --warmup '%s' (want 0 to 100000)", v);
        case 4:
            o->device = v;
            return 0;
        case 5:
            return parse_pass(v, o);
        default:
            return parse_count(v, 0, &o->min_ms)
                       ? 0
                       : cli_usage_error("bench", "bad --min-time '%s' (want 0 to 100000 ms)", v);
        }
    }
    return -1;
}

static void join_cmdline(int argc, char **argv, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "clcnn");
    for (int i = 0; i < argc && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, " %s", argv[i]);
}

static int parse_mode(const char *arg, bench_opts *o)
{
    if (strcmp(arg, "conv") == 0)
        o->mode = MODE_CONV;
    else if (strcmp(arg, "startup") == 0)
        o->mode = MODE_STARTUP;
    else if (strcmp(arg, "startup-child") == 0) /* hidden: run by 'startup' in a fresh process */
        o->mode = MODE_STARTUP_CHILD;
    else if (arg[0] == '-')
        return cli_usage_error("bench", "expected 'conv' or 'startup' before '%s'", arg);
    else
        return cli_usage_error("bench", "unknown benchmark '%s' (want conv or startup)", arg);
    return 0;
}

static int parse_options(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.all_algos = true, .repeat = 5, .warmup = 1, .min_ms = 200};
    join_cmdline(argc, argv, o->cmdline, sizeof o->cmdline);
    if (argc < 2)
        return cli_usage_error("bench", "missing the benchmark (conv or startup)%s", "");
    int rc = parse_mode(argv[1], o);
    bool repeat_given = false;
    for (int i = 2; rc == 0 && i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
            continue;
        }
        repeat_given |= strncmp(argv[i], "--repeat", 8) == 0;
        rc = parse_value_option(argc, argv, &i, o);
        if (rc < 0)
            rc = cli_usage_error("bench", "unknown argument '%s'", argv[i]);
    }
    if (rc == 0 && o->count == 0)
        rc = parse_shapes("lenet", o);
    if (o->mode != MODE_CONV && o->all_algos) {
        o->all_algos = false;
        o->algo = CLCNN_CONV_ALGO_AUTO;
    }
    if (o->mode == MODE_STARTUP && !repeat_given)
        o->repeat = 3;
    return rc;
}

/* ---- helpers --------------------------------------------------------------------------- */

/* 1 after a failure: the library's is described here, the benchmark's own already was. */
static int exit_status(clcnn_status st)
{
    return st == BENCH_REPORTED ? 1 : cli_fail("bench", st);
}

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

/* Sorts the samples; returns the median, and the minimum through [out] min. */
static double median_of(double *v, size_t n, double *min)
{
    qsort(v, n, sizeof v[0], compare_double);
    *min = v[0];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Uniform in +-[0.1, 1): random but never zero, so a skipped term always shows. */
static float random_nonzero(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    float u = (float)(*state >> 40) / (float)(1u << 24);
    return (*state & 1u) ? 0.1f + 0.9f * u : -0.1f - 0.9f * u;
}

static void fill_random(float *v, size_t n, uint64_t seed)
{
    uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++)
        v[i] = random_nonzero(&state);
}

/* max |a - b| / max |ref|; NaN when a holds a NaN. */
static double max_rel_error(const float *a, const float *ref, size_t n)
{
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= max_diff))
            max_diff = d;
        if (fabs((double)ref[i]) > max_ref)
            max_ref = fabs((double)ref[i]);
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

/* ---- other processes ------------------------------------------------------------------- */

/* Busy time of all CPUs since boot, from Linux's /proc/stat (user, nice, system, irq, softirq,
 * steal); -1 elsewhere. */
static double system_busy_ms(void)
{
    unsigned long long v[8];
    FILE *f = fopen("/proc/stat", "r");
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                       &v[4], &v[5], &v[6], &v[7])
              : 0;
    if (f != NULL)
        fclose(f);
    if (n != 8)
        return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

bench_cpu_probe bench_cpu_probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (bench_cpu_probe){now_ms(), (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6,
                             system_busy_ms()};
}

double bench_other_cores(const bench_cpu_probe *start)
{
    bench_cpu_probe end = bench_cpu_probe_now();
    if (start->busy_ms < 0 || end.busy_ms < 0 || end.wall_ms <= start->wall_ms)
        return NAN;
    double others = (end.busy_ms - start->busy_ms) - (end.self_ms - start->self_ms);
    return fmax(others, 0) / (end.wall_ms - start->wall_ms);
}

/* ---- one problem: host data and device tensors ---------------------------------------- */

typedef struct problem {
    const conv_shape *shape;
    clcnn_shape xs, ws, ys;
    clcnn_conv_params params;
    size_t nx, nw, ny;
    double flops;
    float *hx, *hw, *hb, *ref, *out;
    bool have_ref;
    clcnn_tensor *x, *w, *b, *y;
    /* Backward passes: y holds dy (random, as hy), g receives dx or dw (nout elements). */
    clcnn_conv_pass pass;
    float *hy;
    clcnn_tensor *g;
    size_t nout;
} problem;

static void problem_free(problem *p)
{
    clcnn_tensor_release(p->x);
    clcnn_tensor_release(p->w);
    clcnn_tensor_release(p->b);
    clcnn_tensor_release(p->y);
    clcnn_tensor_release(p->g);
    free(p->hy);
    free(p->hx);
    free(p->hw);
    free(p->hb);
    free(p->ref);
    free(p->out);
}

static clcnn_status problem_upload(problem *p, clcnn_device *dev)
{
    clcnn_status st = clcnn_tensor_create(dev, p->xs, &p->x);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, p->ws, &p->w);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, (clcnn_shape){1, p->shape->k, 1, 1}, &p->b);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, p->ys, &p->y);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(p->x, p->hx, p->nx);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(p->w, p->hw, p->nw);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(p->b, p->hb, p->shape->k);
    if (st == CLCNN_OK && p->pass != CLCNN_CONV_PASS_FWD) {
        st = clcnn_tensor_create(dev, p->pass == CLCNN_CONV_PASS_BWD_DATA ? p->xs : p->ws, &p->g);
        if (st == CLCNN_OK)
            st = clcnn_tensor_upload(p->y, p->hy, p->ny);
    }
    return st;
}

/* Sets up host data (random, seeded by the shape's index) and, with dev, the device tensors. */
static clcnn_status problem_init(problem *p, const conv_shape *s, size_t seed, clcnn_device *dev,
                                 clcnn_conv_pass pass)
{
    *p = (problem){.shape = s,
                   .xs = input_shape(s),
                   .ws = weight_shape(s),
                   .params = conv_params(s),
                   .pass = pass};
    clcnn_status st = clcnn_conv2d_output_shape(p->xs, p->ws, &p->params, &p->ys);
    if (st != CLCNN_OK)
        return st;
    p->nx = s->n * s->c * s->h * s->w;
    p->nw = s->k * s->c * s->r * s->s;
    p->ny = p->ys.n * p->ys.c * p->ys.h * p->ys.w;
    /* groups divides C (checked by clcnn_conv2d_output_shape above). */
    p->flops =
        2.0 * (double)p->ny * ((double)s->c / (double)p->params.groups) * (double)(s->r * s->s);
    if (p->nx == 0 || p->nw == 0 || p->ny == 0 || s->k == 0)
        return CLCNN_STATUS_BAD_SHAPE;
    p->hx = malloc(p->nx * sizeof(float));
    p->hw = malloc(p->nw * sizeof(float));
    p->hb = malloc(s->k * sizeof(float));
    /* Every pass counts the forward's FLOPs; the output is y, dx or dw. */
    p->nout = pass == CLCNN_CONV_PASS_FWD        ? p->ny
              : pass == CLCNN_CONV_PASS_BWD_DATA ? p->nx
                                                 : p->nw;
    p->ref = malloc(p->nout * sizeof(float));
    p->out = malloc(p->nout * sizeof(float));
    p->hy = pass != CLCNN_CONV_PASS_FWD ? malloc(p->ny * sizeof(float)) : NULL;
    if (!p->hx || !p->hw || !p->hb || !p->ref || !p->out ||
        (pass != CLCNN_CONV_PASS_FWD && !p->hy)) {
        fprintf(stderr, "clcnn bench: out of host memory for %zu+%zu floats\n", p->nx, 2 * p->ny);
        return BENCH_REPORTED;
    }
    fill_random(p->hx, p->nx, 3 * seed + 1);
    fill_random(p->hw, p->nw, 3 * seed + 2);
    fill_random(p->hb, s->k, 3 * seed + 3);
    if (p->hy != NULL)
        fill_random(p->hy, p->ny, 3 * seed + 4);
    return dev != NULL ? problem_upload(p, dev) : CLCNN_OK;
}

/* ---- results --------------------------------------------------------------------------- */

typedef struct bench_row {
    const conv_shape *shape;
    char algo[64];
    const char *skipped; /* why the solver did not run, or NULL */
    double median_ms, min_ms, gflops;
    double rel_err;   /* vs the direct solver; NaN when there is no reference (or a NaN) */
    bool reference;   /* this row's output is the reference */
    double vs_onednn; /* NaN: no oneDNN row; on the oneDNN row, the best clcnn solver's ratio */
    bool onednn;
    double others; /* cores other processes used while the shape ran (NaN: unknown) */
} bench_row;

typedef struct bench_ctx {
    const bench_opts *o;
    clcnn_device *dev;
    double *times; /* MAX_REPEAT entries */
    size_t ntimes; /* timed runs of the last measurement */
    bench_row *rows;
    size_t nrows;
#ifdef CLCNN_HAVE_ONEDNN
    dnnl_engine_t engine;
    dnnl_stream_t stream;
#endif
} bench_ctx;

static bench_row *new_row(bench_ctx *c, const problem *p, const char *algo)
{
    bench_row *r = &c->rows[c->nrows++];
    *r = (bench_row){.shape = p->shape, .rel_err = NAN, .vs_onednn = NAN};
    snprintf(r->algo, sizeof r->algo, "%s", algo);
    return r;
}

static void finish_row(bench_row *r, const bench_ctx *c, const problem *p)
{
    r->median_ms = median_of(c->times, c->ntimes, &r->min_ms);
    r->gflops = p->flops / (r->median_ms * 1e6);
    if (p->have_ref)
        r->rel_err = max_rel_error(p->out, p->ref, p->nout);
}

/* ---- clcnn solvers --------------------------------------------------------------------- */

static clcnn_status make_workspace(bench_ctx *c, const problem *p, clcnn_conv_algo algo, cl_mem *ws,
                                   size_t *bytes)
{
    *ws = NULL;
    clcnn_status st =
        clcnn_conv2d_pass_workspace_size(c->dev, p->pass, p->xs, p->ws, &p->params, algo, bytes);
    if (st != CLCNN_OK || *bytes == 0)
        return st;
    cl_int err;
    *ws = clCreateBuffer(clcnn_device_context(c->dev), CL_MEM_READ_WRITE, *bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clcnn bench: clCreateBuffer(workspace, %zu bytes) -> %d\n", *bytes, err);
        return BENCH_REPORTED;
    }
    return CLCNN_OK;
}

/* Whether to time another run after [done] timed runs that took [total_ms]: at least --repeat,
 * and until they add up to --min-time (a run of a millisecond is at the mercy of whatever else
 * the machine does in that millisecond). */
static bool more_runs(const bench_ctx *c, size_t done, double total_ms)
{
    return done < c->o->repeat || (total_ms < c->o->min_ms && done < MAX_REPEAT);
}

/* warmup runs of one solver, then timed ones (more_runs); the times go to c->times, the output
 * to p->out. */
static clcnn_status time_solver(bench_ctx *c, problem *p, clcnn_conv_algo algo, size_t runs,
                                size_t warmup)
{
    cl_mem ws;
    size_t ws_bytes;
    clcnn_status st = make_workspace(c, p, algo, &ws, &ws_bytes);
    clcnn_tensor *out = p->pass == CLCNN_CONV_PASS_FWD ? p->y : p->g;
    if (st == CLCNN_OK) /* poison: an output element the solver forgets shows as NaN */
        st = clcnn_tensor_fill(out, NAN);
    double total = 0;
    c->ntimes = 0;
    /* runs == 1: the reference's single run; else as many as more_runs() asks for. */
    for (size_t i = 0; st == CLCNN_OK &&
                       (i < warmup || (runs == 1 ? c->ntimes < 1 : more_runs(c, c->ntimes, total)));
         i++) {
        double t0 = now_ms();
        if (p->pass == CLCNN_CONV_PASS_BWD_DATA)
            st = clcnn_conv2d_backward_data(c->dev, p->y, p->w, &p->params, algo, ws, ws_bytes,
                                            p->g);
        else if (p->pass == CLCNN_CONV_PASS_BWD_WEIGHTS)
            st = clcnn_conv2d_backward_weights(c->dev, p->x, p->y, &p->params, algo, ws, ws_bytes,
                                               p->g);
        else
            st = clcnn_conv2d_forward(c->dev, p->x, p->w, p->b, &p->params, algo, ws, ws_bytes,
                                      p->y);
        if (st == CLCNN_OK)
            st = clcnn_device_finish(c->dev); /* the ops return before they run */
        if (i >= warmup) {
            c->times[c->ntimes] = now_ms() - t0;
            total += c->times[c->ntimes++];
        }
    }
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(out, p->out, p->nout);
    if (ws != NULL)
        clReleaseMemObject(ws);
    return st;
}

/* The direct solver's output, when --algo names another solver. */
static clcnn_status compute_reference(bench_ctx *c, problem *p)
{
    clcnn_status st = time_solver(c, p, CLCNN_CONV_ALGO_DIRECT, 1, 0);
    if (st == CLCNN_OK) {
        memcpy(p->ref, p->out, p->nout * sizeof(float));
        p->have_ref = true;
    }
    return st;
}

static clcnn_status bench_solver(bench_ctx *c, problem *p, clcnn_conv_algo algo)
{
    bench_row *r = new_row(c, p, clcnn_conv_algo_name(algo));
    if (!clcnn_conv2d_pass_applicable(c->dev, p->pass, p->xs, p->ws, &p->params, algo,
                                      &r->skipped)) {
        if (r->skipped == NULL)
            r->skipped = "not applicable";
        return CLCNN_OK;
    }
    clcnn_status st = time_solver(c, p, algo, c->o->repeat, c->o->warmup);
    if (st != CLCNN_OK)
        return st;
    finish_row(r, c, p);
    if (algo == CLCNN_CONV_ALGO_DIRECT && !p->have_ref) {
        memcpy(p->ref, p->out, p->nout * sizeof(float));
        p->have_ref = r->reference = true;
    }
    return CLCNN_OK;
}

#define ALGO_VALUE_(name, token, id) CLCNN_CONV_ALGO_##name,
static const clcnn_conv_algo all_algos[] = {CLCNN_CONV_ALGO_LIST(ALGO_VALUE_)};
#undef ALGO_VALUE_

/* The solvers to time, direct first so that its output is the reference for the others. */
static size_t algo_list(const bench_opts *o, clcnn_conv_algo *out)
{
    if (!o->all_algos) {
        out[0] = o->algo;
        return 1;
    }
    size_t n = 0;
    out[n++] = CLCNN_CONV_ALGO_DIRECT;
    for (size_t i = 0; i < sizeof all_algos / sizeof all_algos[0] && n < MAX_ALGOS; i++)
        if (all_algos[i] != CLCNN_CONV_ALGO_AUTO && all_algos[i] != CLCNN_CONV_ALGO_DIRECT)
            out[n++] = all_algos[i];
    return n;
}

/* ---- oneDNN ---------------------------------------------------------------------------- */

#ifdef CLCNN_HAVE_ONEDNN

#define DNNL_TRY(call)                                                                             \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "clcnn bench: oneDNN: %s -> %s [%s:%d]\n", #call, dnnl_status2str(s_), \
                    __FILE__, __LINE__);                                                           \
            return s_;                                                                             \
        }                                                                                          \
    } while (0)

/* The objects of one oneDNN convolution; NULL members are not made yet. */
typedef struct onednn_conv {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t conv;
    dnnl_memory_t user_src, user_wei, user_dst, bias; /* plain nchw/oihw/x, on host arrays */
    dnnl_memory_t src, wei, dst;                      /* the layouts the primitive chose */
} onednn_conv;

static void onednn_conv_free(onednn_conv *d)
{
    dnnl_memory_t mems[] = {d->user_src, d->user_wei, d->user_dst, d->bias};
    dnnl_memory_t own[] = {d->src, d->wei, d->dst};
    for (size_t i = 0; i < 3; i++)
        if (own[i] != NULL && own[i] != mems[i])
            dnnl_memory_destroy(own[i]);
    for (size_t i = 0; i < 4; i++)
        dnnl_memory_destroy(mems[i]);
    dnnl_primitive_destroy(d->conv);
    dnnl_primitive_desc_destroy(d->pd);
}

static dnnl_status_t onednn_open(bench_ctx *c)
{
    DNNL_TRY(dnnl_engine_create(&c->engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags));
    return dnnl_success;
}

static void onednn_close(bench_ctx *c)
{
    if (c->stream != NULL)
        dnnl_stream_destroy(c->stream);
    if (c->engine != NULL)
        dnnl_engine_destroy(c->engine);
}

/* Forward-inference direct convolution with oneDNN's choice of layouts (format_tag any).
 * One group only: the benchmark's shapes have no groups (grouped weights would be goihw). */
static dnnl_status_t onednn_make_pd(bench_ctx *c, const problem *p, onednn_conv *d)
{
    const clcnn_conv_params *q = &p->params;
    dnnl_dims_t src = {(dnnl_dim_t)p->xs.n, (dnnl_dim_t)p->xs.c, (dnnl_dim_t)p->xs.h,
                       (dnnl_dim_t)p->xs.w};
    dnnl_dims_t wei = {(dnnl_dim_t)p->ws.n, (dnnl_dim_t)p->ws.c, (dnnl_dim_t)p->ws.h,
                       (dnnl_dim_t)p->ws.w};
    dnnl_dims_t dst = {(dnnl_dim_t)p->ys.n, (dnnl_dim_t)p->ys.c, (dnnl_dim_t)p->ys.h,
                       (dnnl_dim_t)p->ys.w};
    dnnl_dims_t bias = {(dnnl_dim_t)p->ys.c};
    dnnl_dims_t strides = {(dnnl_dim_t)q->stride_h, (dnnl_dim_t)q->stride_w};
    dnnl_dims_t dilates = {(dnnl_dim_t)q->dilation_h - 1, (dnnl_dim_t)q->dilation_w - 1};
    dnnl_dims_t pad = {(dnnl_dim_t)q->pad_h, (dnnl_dim_t)q->pad_w};
    dnnl_memory_desc_t src_md, wei_md, dst_md, bias_md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_md, 4, wei, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias, dnnl_f32, dnnl_x));
    dnnl_convolution_desc_t desc;
    DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(
        &desc, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wei_md, &bias_md, &dst_md,
        strides, dilates, pad, pad));
    DNNL_TRY(dnnl_primitive_desc_create(&d->pd, &desc, NULL, c->engine, NULL));
    DNNL_TRY(dnnl_primitive_create(&d->conv, d->pd));
    return dnnl_success;
}

/* Backward data or weights with the forward-training primitive descriptor as the hint, as
 * oneDNN requires; format_tag any throughout. */
static dnnl_status_t onednn_make_bwd_pd(bench_ctx *c, const problem *p, onednn_conv *d)
{
    const clcnn_conv_params *q = &p->params;
    dnnl_dims_t src = {(dnnl_dim_t)p->xs.n, (dnnl_dim_t)p->xs.c, (dnnl_dim_t)p->xs.h,
                       (dnnl_dim_t)p->xs.w};
    dnnl_dims_t wei = {(dnnl_dim_t)p->ws.n, (dnnl_dim_t)p->ws.c, (dnnl_dim_t)p->ws.h,
                       (dnnl_dim_t)p->ws.w};
    dnnl_dims_t dst = {(dnnl_dim_t)p->ys.n, (dnnl_dim_t)p->ys.c, (dnnl_dim_t)p->ys.h,
                       (dnnl_dim_t)p->ys.w};
    dnnl_dims_t strides = {(dnnl_dim_t)q->stride_h, (dnnl_dim_t)q->stride_w};
    dnnl_dims_t dilates = {(dnnl_dim_t)q->dilation_h - 1, (dnnl_dim_t)q->dilation_w - 1};
    dnnl_dims_t pad = {(dnnl_dim_t)q->pad_h, (dnnl_dim_t)q->pad_w};
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_md, 4, wei, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t fwd, bwd;
    DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&fwd, dnnl_forward_training,
                                                        dnnl_convolution_direct, &src_md, &wei_md,
                                                        NULL, &dst_md, strides, dilates, pad, pad));
    dnnl_primitive_desc_t hint;
    DNNL_TRY(dnnl_primitive_desc_create(&hint, &fwd, NULL, c->engine, NULL));
    dnnl_status_t st =
        p->pass == CLCNN_CONV_PASS_BWD_DATA
            ? dnnl_dilated_convolution_backward_data_desc_init(&bwd, dnnl_convolution_direct,
                                                               &src_md, &wei_md, &dst_md, strides,
                                                               dilates, pad, pad)
            : dnnl_dilated_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct,
                                                                  &src_md, &wei_md, NULL, &dst_md,
                                                                  strides, dilates, pad, pad);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&d->pd, &bwd, NULL, c->engine, hint);
    dnnl_primitive_desc_destroy(hint);
    DNNL_TRY(st);
    DNNL_TRY(dnnl_primitive_create(&d->conv, d->pd));
    return dnnl_success;
}

static dnnl_status_t onednn_plain_memory(bench_ctx *c, const clcnn_shape *s, int ndims,
                                         dnnl_format_tag_t tag, float *data, dnnl_memory_t *mem)
{
    dnnl_dims_t dims = {(dnnl_dim_t)s->n, (dnnl_dim_t)s->c, (dnnl_dim_t)s->h, (dnnl_dim_t)s->w};
    dnnl_memory_desc_t md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    DNNL_TRY(dnnl_memory_create(mem, &md, c->engine, data));
    return dnnl_success;
}

static dnnl_status_t onednn_reorder(bench_ctx *c, dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_memory_desc_t *from_md, *to_md;
    DNNL_TRY(dnnl_memory_get_memory_desc(from, &from_md));
    DNNL_TRY(dnnl_memory_get_memory_desc(to, &to_md));
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from_md, c->engine, to_md, c->engine, NULL));
    dnnl_primitive_t reorder;
    dnnl_status_t st = dnnl_primitive_create(&reorder, pd);
    dnnl_primitive_desc_destroy(pd);
    DNNL_TRY(st);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    st = dnnl_primitive_execute(reorder, c->stream, 2, args);
    if (st == dnnl_success)
        st = dnnl_stream_wait(c->stream);
    dnnl_primitive_destroy(reorder);
    DNNL_TRY(st);
    return dnnl_success;
}

/* The memory of layout [in] want for [in] user: user itself when the layouts match, else a new
 * one; with copy_in, the user's data is reordered into it. */
static dnnl_status_t onednn_layout(bench_ctx *c, dnnl_memory_t user, const dnnl_memory_desc_t *want,
                                   bool copy_in, dnnl_memory_t *out)
{
    const dnnl_memory_desc_t *have;
    DNNL_TRY(dnnl_memory_get_memory_desc(user, &have));
    if (dnnl_memory_desc_equal(have, want)) {
        *out = user;
        return dnnl_success;
    }
    DNNL_TRY(dnnl_memory_create(out, want, c->engine, DNNL_MEMORY_ALLOCATE));
    return copy_in ? onednn_reorder(c, user, *out) : dnnl_success;
}

/* Backward: src/wei/dst hold x (or dx), w (or dw) and dy; the output is reordered into p->out. */
static dnnl_status_t onednn_prepare_bwd(bench_ctx *c, problem *p, onednn_conv *d)
{
    const bool data = p->pass == CLCNN_CONV_PASS_BWD_DATA;
    DNNL_TRY(onednn_make_bwd_pd(c, p, d));
    DNNL_TRY(onednn_plain_memory(c, &p->xs, 4, dnnl_nchw, data ? p->out : p->hx, &d->user_src));
    DNNL_TRY(onednn_plain_memory(c, &p->ws, 4, dnnl_oihw, data ? p->hw : p->out, &d->user_wei));
    DNNL_TRY(onednn_plain_memory(c, &p->ys, 4, dnnl_nchw, p->hy, &d->user_dst));
    DNNL_TRY(onednn_layout(
        c, d->user_src,
        dnnl_primitive_desc_query_md(d->pd, data ? dnnl_query_diff_src_md : dnnl_query_src_md, 0),
        !data, &d->src));
    DNNL_TRY(onednn_layout(c, d->user_wei,
                           dnnl_primitive_desc_query_md(
                               d->pd, data ? dnnl_query_weights_md : dnnl_query_diff_weights_md, 0),
                           data, &d->wei));
    DNNL_TRY(onednn_layout(c, d->user_dst,
                           dnnl_primitive_desc_query_md(d->pd, dnnl_query_diff_dst_md, 0), true,
                           &d->dst));
    return dnnl_success;
}

static dnnl_status_t onednn_time_bwd(bench_ctx *c, const problem *p, onednn_conv *d)
{
    const bool data = p->pass == CLCNN_CONV_PASS_BWD_DATA;
    dnnl_exec_arg_t args[] = {{data ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC, d->src},
                              {data ? DNNL_ARG_WEIGHTS : DNNL_ARG_DIFF_WEIGHTS, d->wei},
                              {DNNL_ARG_DIFF_DST, d->dst}};
    size_t warmup = c->o->warmup;
    double total = 0;
    c->ntimes = 0;
    for (size_t i = 0; i < warmup || more_runs(c, c->ntimes, total); i++) {
        double t0 = now_ms();
        DNNL_TRY(dnnl_primitive_execute(d->conv, c->stream, 3, args));
        DNNL_TRY(dnnl_stream_wait(c->stream));
        if (i >= warmup) {
            c->times[c->ntimes] = now_ms() - t0;
            total += c->times[c->ntimes++];
        }
    }
    if (data)
        return d->src == d->user_src ? dnnl_success : onednn_reorder(c, d->src, d->user_src);
    return d->wei == d->user_wei ? dnnl_success : onednn_reorder(c, d->wei, d->user_wei);
}

static dnnl_status_t onednn_prepare(bench_ctx *c, problem *p, onednn_conv *d)
{
    clcnn_shape bias = {p->shape->k, 1, 1, 1};
    DNNL_TRY(onednn_make_pd(c, p, d));
    DNNL_TRY(onednn_plain_memory(c, &p->xs, 4, dnnl_nchw, p->hx, &d->user_src));
    DNNL_TRY(onednn_plain_memory(c, &p->ws, 4, dnnl_oihw, p->hw, &d->user_wei));
    DNNL_TRY(onednn_plain_memory(c, &p->ys, 4, dnnl_nchw, p->out, &d->user_dst));
    DNNL_TRY(onednn_plain_memory(c, &bias, 1, dnnl_x, p->hb, &d->bias));
    DNNL_TRY(onednn_layout(
        c, d->user_src, dnnl_primitive_desc_query_md(d->pd, dnnl_query_src_md, 0), true, &d->src));
    DNNL_TRY(onednn_layout(c, d->user_wei,
                           dnnl_primitive_desc_query_md(d->pd, dnnl_query_weights_md, 0), true,
                           &d->wei));
    DNNL_TRY(onednn_layout(
        c, d->user_dst, dnnl_primitive_desc_query_md(d->pd, dnnl_query_dst_md, 0), false, &d->dst));
    return dnnl_success;
}

/* Times only the convolution primitive, then reorders its output back into p->out. */
static dnnl_status_t onednn_time(bench_ctx *c, onednn_conv *d)
{
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, d->src},
                              {DNNL_ARG_WEIGHTS, d->wei},
                              {DNNL_ARG_BIAS, d->bias},
                              {DNNL_ARG_DST, d->dst}};
    size_t warmup = c->o->warmup;
    double total = 0;
    c->ntimes = 0;
    for (size_t i = 0; i < warmup || more_runs(c, c->ntimes, total); i++) {
        double t0 = now_ms();
        DNNL_TRY(dnnl_primitive_execute(d->conv, c->stream, 4, args));
        DNNL_TRY(dnnl_stream_wait(c->stream));
        if (i >= warmup) {
            c->times[c->ntimes] = now_ms() - t0;
            total += c->times[c->ntimes++];
        }
    }
    return d->dst == d->user_dst ? dnnl_success : onednn_reorder(c, d->dst, d->user_dst);
}

static clcnn_status bench_onednn(bench_ctx *c, problem *p)
{
    if (c->engine == NULL && onednn_open(c) != dnnl_success)
        return BENCH_REPORTED;
    onednn_conv d = {0};
    const bool fwd = p->pass == CLCNN_CONV_PASS_FWD;
    dnnl_status_t st = fwd ? onednn_prepare(c, p, &d) : onednn_prepare_bwd(c, p, &d);
    if (st == dnnl_success)
        st = fwd ? onednn_time(c, &d) : onednn_time_bwd(c, p, &d);
    if (st == dnnl_success) {
        const char *impl = "?";
        dnnl_primitive_desc_query(d.pd, dnnl_query_impl_info_str, 0, &impl);
        char name[64];
        snprintf(name, sizeof name, "onednn:%s", impl);
        bench_row *r = new_row(c, p, name);
        r->onednn = true;
        finish_row(r, c, p);
    }
    onednn_conv_free(&d);
    return st == dnnl_success ? CLCNN_OK : BENCH_REPORTED;
}

static void onednn_describe(FILE *f, bool json)
{
    const dnnl_version_t *v = dnnl_version();
    if (json)
        fprintf(f, "\"%d.%d.%d\"", v->major, v->minor, v->patch);
    else
        fprintf(f, "# compared with oneDNN %d.%d.%d (cpu engine, %s threads)\n", v->major, v->minor,
                v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "its own");
}

#else

static clcnn_status bench_onednn(bench_ctx *c, problem *p)
{
    (void)c;
    (void)p;
    return CLCNN_OK;
}

static void onednn_describe(FILE *f, bool json)
{
    if (json)
        fprintf(f, "null");
    else
        fprintf(f, "# oneDNN comparison not built (meson configure -Donednn=enabled)\n");
}

#endif

/* ---- conv: one shape ------------------------------------------------------------------- */

/* Fills the "vs oneDNN" column of the shape's rows starting at first. */
static void compare_with_onednn(bench_ctx *c, size_t first)
{
    bench_row *ref = NULL;
    for (size_t i = first; i < c->nrows; i++)
        if (c->rows[i].onednn)
            ref = &c->rows[i];
    if (ref == NULL)
        return;
    double best = 0;
    for (size_t i = first; i < c->nrows; i++) {
        bench_row *r = &c->rows[i];
        if (r == ref || r->skipped != NULL)
            continue;
        r->vs_onednn = r->gflops / ref->gflops;
        best = r->vs_onednn > best ? r->vs_onednn : best;
    }
    ref->vs_onednn = best;
}

static void print_progress(const bench_ctx *c, size_t index, size_t first, double t0)
{
    double others = c->rows[first].others;
    const conv_shape *s = c->rows[first].shape;
    fprintf(stderr, "[%zu/%zu] %s n%zu c%zu %zux%zu k%zu %zux%zu/%zu p%zu:", index + 1, c->o->count,
            s->layer, s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad);
    for (size_t i = first; i < c->nrows; i++)
        if (c->rows[i].skipped == NULL)
            fprintf(stderr, " %s %.2f ms (%.1f GFLOP/s);", c->rows[i].algo, c->rows[i].median_ms,
                    c->rows[i].gflops);
    fprintf(stderr, " %.1f s", (now_ms() - t0) / 1e3);
    if (!isnan(others))
        fprintf(stderr, "; other processes used %.2f cores", others);
    fputc('\n', stderr);
}

static void print_row(const bench_row *r, bool first_of_shape)
{
    const conv_shape *s = r->shape;
    char dims[96] = "", err[32] = "-", vs[32] = "";
    if (first_of_shape)
        snprintf(dims, sizeof dims, "%-8s %3zu %4zu %4zu %4zu %4zu %2zux%-2zu %2zu %2zu", s->layer,
                 s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad);
    if (r->skipped != NULL) {
        printf("%-44s  %-26s  skipped: %s\n", dims, r->algo, r->skipped);
        return;
    }
    if (!r->reference)
        snprintf(err, sizeof err, "%.2e", r->rel_err);
    if (!isnan(r->vs_onednn))
        snprintf(vs, sizeof vs, r->onednn ? "best %.2fx" : "%.2fx", r->vs_onednn);
    printf("%-44s  %-26s %10.3f %10.3f %9.1f %11s%s%s\n", dims, r->algo, r->median_ms, r->min_ms,
           r->gflops, err, *vs ? "  " : "", vs);
}

static clcnn_status bench_shape(bench_ctx *c, size_t index)
{
    bench_cpu_probe probe = bench_cpu_probe_now();
    double t0 = now_ms();
    problem p;
    size_t first = c->nrows;
    clcnn_conv_algo algos[MAX_ALGOS];
    size_t n = algo_list(c->o, algos);
    clcnn_status st = problem_init(&p, &c->o->shapes[index], index, c->dev, c->o->pass);
    if (st == CLCNN_OK && algos[0] != CLCNN_CONV_ALGO_DIRECT)
        st = compute_reference(c, &p);
    for (size_t i = 0; st == CLCNN_OK && i < n; i++)
        st = bench_solver(c, &p, algos[i]);
    if (st == CLCNN_OK)
        st = bench_onednn(c, &p);
    problem_free(&p);
    if (st != CLCNN_OK)
        return st;
    compare_with_onednn(c, first);
    double others = bench_other_cores(&probe);
    for (size_t i = first; i < c->nrows; i++)
        c->rows[i].others = others;
    print_progress(c, index, first, t0);
    for (size_t i = first; !c->o->json && i < c->nrows; i++)
        print_row(&c->rows[i], i == first);
    if (!c->o->json && others > BENCH_OTHERS_WARN_CORES)
        printf("# warning: other processes used %.2f cores while this shape ran\n", others);
    fflush(stdout);
    return CLCNN_OK;
}

/* ---- conv: report ---------------------------------------------------------------------- */

void bench_print_load(FILE *f)
{
    double load[3];
    if (getloadavg(load, 3) == 3)
        fprintf(f, "# load average (1, 5, 15 min): %.2f %.2f %.2f on %ld CPUs\n", load[0], load[1],
                load[2], sysconf(_SC_NPROCESSORS_ONLN));
}

static void print_header(const bench_ctx *c)
{
    const clcnn_device_info *d = clcnn_device_get_info(c->dev);
    printf("# clcnn bench conv on [%u] %s (%s, driver %s)\n", d->index, d->name, d->platform_name,
           d->driver_version);
    static const char *const fns[] = {"clcnn_conv2d_forward", "clcnn_conv2d_backward_data",
                                      "clcnn_conv2d_backward_weights"};
    printf("# pass %s; per solver: %u warm-up run(s), then timed runs until at least %u and at "
           "least %u ms of them; wall clock around %s + clcnn_device_finish\n",
           clcnn_conv_pass_name(c->o->pass), c->o->warmup, c->o->repeat, c->o->min_ms,
           fns[c->o->pass]);
    if (c->o->pass != CLCNN_CONV_PASS_FWD)
        printf("# GFLOP/s counts the forward's 2*N*K*C/groups*R*S*Ho*Wo for every pass\n");
    printf("# command: %s\n", c->o->cmdline);
    bench_print_load(stdout);
    onednn_describe(stdout, false);
    printf("%-8s %3s %4s %4s %4s %4s %5s %2s %2s  %-26s %10s %10s %9s %11s  %s\n", "layer", "N",
           "C", "H", "W", "K", "RxS", "st", "pd", "algo", "median ms", "min ms", "GFLOP/s",
           "max rel err", "vs oneDNN");
}

/* Geometric mean over shapes of (best clcnn solver / oneDNN). */
static void print_summary(const bench_ctx *c)
{
    double log_sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < c->nrows; i++) {
        if (c->rows[i].onednn && c->rows[i].vs_onednn > 0) {
            log_sum += log(c->rows[i].vs_onednn);
            n++;
        }
    }
    if (n > 0)
        printf("# best clcnn solver / oneDNN, geometric mean over %zu shapes: %.3fx\n", n,
               exp(log_sum / (double)n));
}

static void json_number(const char *key, double v)
{
    if (isfinite(v))
        printf(", \"%s\": %.6g", key, v);
    else
        printf(", \"%s\": null", key);
}

static void print_json_row(const bench_row *r, bool last)
{
    const conv_shape *s = r->shape;
    printf("    {\"layer\": \"%s\", \"n\": %zu, \"c\": %zu, \"h\": %zu, \"w\": %zu, \"k\": %zu, "
           "\"r\": %zu, \"s\": %zu, \"stride\": %zu, \"pad\": %zu, \"algo\": ",
           s->layer, s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad);
    cli_json_string(stdout, r->algo);
    printf(", \"onednn\": %s, \"reference\": %s, \"skipped\": ", r->onednn ? "true" : "false",
           r->reference ? "true" : "false");
    if (r->skipped != NULL)
        cli_json_string(stdout, r->skipped);
    else
        printf("null");
    if (r->skipped == NULL) {
        json_number("median_ms", r->median_ms);
        json_number("min_ms", r->min_ms);
        json_number("gflops", r->gflops);
        json_number("max_rel_err", r->rel_err);
        json_number(r->onednn ? "best_vs_onednn" : "vs_onednn", r->vs_onednn);
    }
    json_number("other_cores", r->others);
    printf("}%s\n", last ? "" : ",");
}

static void print_json(const bench_ctx *c)
{
    const clcnn_device_info *d = clcnn_device_get_info(c->dev);
    printf("{\n  \"device\": ");
    cli_json_string(stdout, d->name);
    printf(",\n  \"platform\": ");
    cli_json_string(stdout, d->platform_name);
    printf(",\n  \"command\": ");
    cli_json_string(stdout, c->o->cmdline);
    printf(",\n  \"shapes\": ");
    cli_json_string(stdout, c->o->shapes_spec);
    printf(",\n  \"repeat\": %u,\n  \"min_time_ms\": %u,\n  \"warmup\": %u,\n  \"onednn\": ",
           c->o->repeat, c->o->min_ms, c->o->warmup);
    onednn_describe(stdout, true);
    printf(",\n  \"rows\": [\n");
    for (size_t i = 0; i < c->nrows; i++)
        print_json_row(&c->rows[i], i + 1 == c->nrows);
    printf("  ]\n}\n");
}

static int bench_conv(const bench_opts *o)
{
    bench_ctx c = {.o = o};
    clcnn_status st = clcnn_device_create(o->device, &c.dev);
    if (st != CLCNN_OK)
        return cli_fail("bench", st);
    c.times = malloc(MAX_REPEAT * sizeof(double));
    c.rows = calloc(o->count * (MAX_ALGOS + 1), sizeof(bench_row));
    if (c.times == NULL || c.rows == NULL) {
        fprintf(stderr, "clcnn bench: out of host memory\n");
        st = BENCH_REPORTED;
    }
    if (st == CLCNN_OK && !o->json)
        print_header(&c);
    for (size_t i = 0; st == CLCNN_OK && i < o->count; i++)
        st = bench_shape(&c, i);
    if (st == CLCNN_OK && o->json)
        print_json(&c);
    else if (st == CLCNN_OK)
        print_summary(&c);
#ifdef CLCNN_HAVE_ONEDNN
    onednn_close(&c);
#endif
    free(c.times);
    free(c.rows);
    clcnn_device_release(c.dev);
    return st == CLCNN_OK ? 0 : exit_status(st);
}

/* ---- startup: the child ---------------------------------------------------------------- */

/* Computes the first shape once and prints, on stdout, the CLOCK_MONOTONIC time (ms) when the
 * result was ready, the program layer's counters, and the device name. */
static int startup_child(const bench_opts *o)
{
    clcnn_device *dev;
    clcnn_status st = clcnn_device_create(o->device, &dev);
    if (st != CLCNN_OK)
        return cli_fail("bench", st);
    problem p;
    st = problem_init(&p, &o->shapes[0], 0, dev, CLCNN_CONV_PASS_FWD);
    if (st == CLCNN_OK)
        st = clcnn_conv2d_forward(dev, p.x, p.w, p.b, &p.params, o->algo, NULL, 0, p.y);
    double done = now_ms();
    clcnn_program_stats s;
    if (st == CLCNN_OK)
        st = clcnn_program_stats_get(dev, &s);
    if (st == CLCNN_OK)
        printf("%.3f %llu %llu %.3f %.3f\n%s\n", done, (unsigned long long)s.source_builds,
               (unsigned long long)s.cache_hits, s.source_build_ms, s.cache_load_ms,
               clcnn_device_get_info(dev)->name);
    problem_free(&p);
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : exit_status(st);
}

/* ---- startup: the parent --------------------------------------------------------------- */

typedef struct startup_sample {
    double first_ms, exit_ms, build_ms, load_ms;
    unsigned long long builds, hits;
} startup_sample;

typedef struct child_env {
    const char *clcnn_cache, *pocl_cache;
} child_env;

static void exec_child(const bench_opts *o, const child_env *env, int out_fd)
{
    dup2(out_fd, STDOUT_FILENO);
    setenv("CLCNN_CACHE_DIR", env->clcnn_cache, 1);
    setenv("POCL_CACHE_DIR", env->pocl_cache, 1);
    const char *algo = clcnn_conv_algo_name(o->algo);
    char *argv[12] = {"clcnn",  "bench",     "startup-child", "--shapes", (char *)o->shapes_spec,
                      "--algo", (char *)algo};
    if (o->device != NULL) {
        argv[7] = "--device";
        argv[8] = (char *)o->device;
    }
    execv("/proc/self/exe", argv);
    fprintf(stderr, "clcnn bench: exec /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

/* Reads the child's report; returns false when it is not the expected two lines. */
static bool read_report(int fd, startup_sample *s, char *device, size_t device_size)
{
    char buf[1024];
    size_t len = 0;
    ssize_t n;
    while (len + 1 < sizeof buf && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl == NULL || sscanf(buf, "%lf %llu %llu %lf %lf", &s->first_ms, &s->builds, &s->hits,
                             &s->build_ms, &s->load_ms) != 5)
        return false;
    snprintf(device, device_size, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
    return true;
}

/* Runs one child; start to first result and start to exit are measured from just before fork. */
static bool run_child(const bench_opts *o, const child_env *env, startup_sample *s, char *device,
                      size_t device_size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fflush(stdout);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        exec_child(o, env, fds[1]);
    }
    close(fds[1]);
    bool ok = pid > 0 && read_report(fds[0], s, device, device_size);
    close(fds[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    s->exit_ms = now_ms() - t0;
    s->first_ms -= t0;
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool make_dir(const char *base, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", base, name);
    return mkdir(out, 0700) == 0;
}

enum { RUN_COLD, RUN_WARM, RUN_CLCNN_ONLY, RUN_KINDS };

static const char *const run_kind_names[RUN_KINDS] = {
    "cold: both caches empty",
    "cached: clcnn and POCL caches warm",
    "clcnn cache warm, POCL cache empty",
};

/* One round in a fresh temporary directory: cold, then warm, then clcnn's cache only. */
static bool startup_round(const bench_opts *o, startup_sample out[RUN_KINDS], char *device,
                          size_t device_size)
{
    const char *tmp = getenv("TMPDIR");
    char base[512], clcnn_dir[600], pocl_dir[600], pocl_fresh[600];
    snprintf(base, sizeof base, "%s/clcnn-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "clcnn bench: mkdtemp %s: %s\n", base, strerror(errno));
        return false;
    }
    bool ok = make_dir(base, "clcnn", clcnn_dir, sizeof clcnn_dir) &&
              make_dir(base, "pocl", pocl_dir, sizeof pocl_dir) &&
              make_dir(base, "pocl-empty", pocl_fresh, sizeof pocl_fresh);
    child_env envs[RUN_KINDS] = {
        {clcnn_dir, pocl_dir}, {clcnn_dir, pocl_dir}, {clcnn_dir, pocl_fresh}};
    for (int k = 0; ok && k < RUN_KINDS; k++) {
        ok = run_child(o, &envs[k], &out[k], device, device_size);
        if (!ok)
            fprintf(stderr, "clcnn bench: the startup child (%s) failed\n", run_kind_names[k]);
    }
    nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ok;
}

typedef struct startup_stats {
    double first_med, first_min, exit_med;
    startup_sample last;
} startup_stats;

/* Medians over the rounds of one kind of run; [in] scratch holds 2 * rounds doubles. */
static void summarize(const startup_sample *samples, size_t stride, unsigned rounds,
                      double *scratch, startup_stats *st)
{
    double *first = scratch, *exit_ms = scratch + rounds, unused;
    for (unsigned r = 0; r < rounds; r++) {
        first[r] = samples[r * stride].first_ms;
        exit_ms[r] = samples[r * stride].exit_ms;
    }
    st->first_med = median_of(first, rounds, &st->first_min);
    st->exit_med = median_of(exit_ms, rounds, &unused);
    st->last = samples[(rounds - 1) * stride];
}

static void print_startup_text(const bench_opts *o, const char *device,
                               const startup_stats st[RUN_KINDS], double ratio)
{
    const conv_shape *s = &o->shapes[0];
    printf("# clcnn bench startup on %s: %s n%zu c%zu %zux%zu k%zu %zux%zu/%zu p%zu, algo %s, "
           "%u rounds\n# command: %s\n",
           device, s->layer, s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad,
           clcnn_conv_algo_name(o->algo), o->repeat, o->cmdline);
    bench_print_load(stdout);
    printf("%-36s %14s %10s %14s %9s %7s %11s %8s\n", "run", "first result", "(min)",
           "process exit", "compiled", "cached", "compile ms", "load ms");
    for (int k = 0; k < RUN_KINDS; k++)
        printf("%-36s %11.1f ms %7.1f ms %11.1f ms %9llu %7llu %11.1f %8.1f\n", run_kind_names[k],
               st[k].first_med, st[k].first_min, st[k].exit_med, st[k].last.builds, st[k].last.hits,
               st[k].last.build_ms, st[k].last.load_ms);
    printf("cached start is %.1fx faster than cold (target >= 10x: %s)\n", ratio,
           ratio >= 10 ? "met" : "NOT MET");
}

static void print_startup_json(const bench_opts *o, const char *device,
                               const startup_stats st[RUN_KINDS], double ratio)
{
    static const char *const keys[RUN_KINDS] = {"cold", "cached", "clcnn_cache_only"};
    printf("{\n  \"device\": ");
    cli_json_string(stdout, device);
    printf(",\n  \"command\": ");
    cli_json_string(stdout, o->cmdline);
    printf(",\n  \"shape\": \"%s\", \"algo\": \"%s\", \"rounds\": %u,\n", o->shapes[0].layer,
           clcnn_conv_algo_name(o->algo), o->repeat);
    for (int k = 0; k < RUN_KINDS; k++)
        printf("  \"%s\": {\"first_result_ms\": %.3f, \"first_result_min_ms\": %.3f, "
               "\"exit_ms\": %.3f, \"compiled\": %llu, \"cached\": %llu, \"compile_ms\": %.3f, "
               "\"load_ms\": %.3f},\n",
               keys[k], st[k].first_med, st[k].first_min, st[k].exit_med, st[k].last.builds,
               st[k].last.hits, st[k].last.build_ms, st[k].last.load_ms);
    printf("  \"cold_over_cached\": %.3f\n}\n", ratio);
}

static int bench_startup(const bench_opts *o)
{
    startup_sample *samples = calloc((size_t)o->repeat * RUN_KINDS, sizeof *samples);
    double *scratch = calloc(2 * (size_t)o->repeat, sizeof *scratch);
    char device[256] = "?";
    bool ok = samples != NULL && scratch != NULL;
    for (unsigned r = 0; ok && r < o->repeat; r++) {
        ok = startup_round(o, &samples[(size_t)r * RUN_KINDS], device, sizeof device);
        const startup_sample *s = &samples[(size_t)r * RUN_KINDS];
        if (ok)
            fprintf(stderr, "[%u/%u] cold %.1f ms, cached %.1f ms, clcnn cache only %.1f ms\n",
                    r + 1, o->repeat, s[RUN_COLD].first_ms, s[RUN_WARM].first_ms,
                    s[RUN_CLCNN_ONLY].first_ms);
    }
    startup_stats st[RUN_KINDS];
    for (int k = 0; ok && k < RUN_KINDS; k++)
        summarize(samples + k, RUN_KINDS, o->repeat, scratch, &st[k]);
    if (ok) {
        double ratio = st[RUN_COLD].first_med / st[RUN_WARM].first_med;
        if (o->json)
            print_startup_json(o, device, st, ratio);
        else
            print_startup_text(o, device, st, ratio);
    }
    free(samples);
    free(scratch);
    return ok ? 0 : 1;
}

/* ---- entry ----------------------------------------------------------------------------- */

/* Prints the help of 'bench conv', 'bench startup' or 'bench' when an argument asks for it. */
static bool print_help_if_asked(int argc, char **argv)
{
    bool asked = false;
    for (int i = 1; i < argc; i++)
        asked |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (!asked)
        return false;
    if (argc > 1 && strcmp(argv[1], "conv") == 0)
        printf("usage: clcnn bench " BENCH_CONV_USAGE "\n\n" BENCH_CONV_HELP "\n");
    else if (argc > 1 && strcmp(argv[1], "startup") == 0)
        printf("usage: clcnn bench " BENCH_STARTUP_USAGE "\n\n" BENCH_STARTUP_HELP "\n");
    else
        printf("usage: clcnn bench " BENCH_USAGE "\n\n" BENCH_SUMMARY "\n");
    return true;
}

int cli_cmd_bench(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "pool") == 0)
        return cli_bench_pool(argc, argv);
    if (argc > 1 && strcmp(argv[1], "train") == 0)
        return cli_bench_train(argc, argv);
    if (argc > 1 && strcmp(argv[1], "pipeline") == 0)
        return cli_bench_pipeline(argc, argv);
    if (print_help_if_asked(argc, argv))
        return 0;
    bench_opts *o = malloc(sizeof *o);
    if (o == NULL)
        return 1;
    int rc = parse_options(argc, argv, o);
    if (rc == 0 && o->mode == MODE_CONV)
        rc = bench_conv(o);
    else if (rc == 0 && o->mode == MODE_STARTUP)
        rc = bench_startup(o);
    else if (rc == 0)
        rc = startup_child(o);
    free(o);
    return rc;
}
