/* 2-D convolution forward: problem validation, the ordered solver registry, the choice behind
 * AUTO, and the public entry points. Each algorithm lives in its own conv2d_<solver>.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv2d_impl.h"
#include "log_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"
#include "tune_db_impl.h"

/* The registry, in order of preference for AUTO's heuristic (BENCHMARKS.md has the numbers):
 * F(4x4,3x3) Winograd wherever it applies (3x3, stride 1, no dilation or groups: 1.5-11x the
 * direct solver on VGG-16's layers), then F(4x4,3x3) over split and strided filters (5x5,
 * 11x11 stride 4, ...: median ms against direct on POCL, 2 cores, LeNet N=64 conv2 6.98 vs 14.89,
 * AlexNet conv1 0.70 vs 2.52 and conv2 1.65 vs 5.78; it leaves C=1 5x5 to direct_rows), then
 * direct_rows on CPU devices (stride 1 along the width, one group: 1.4-4x direct on the LeNet,
 * AlexNet and VGG-16 shapes, same runs), then direct for everything else; F(2x2,3x3) and gemm
 * are only chosen by find mode or by name, except that GPU devices take gemm first (choose()). */
static const clcnn__conv_solver *const solvers[] = {
    &clcnn__conv_solver_winograd4, &clcnn__conv_solver_winograd4_split, &clcnn__conv_solver_rows,
    &clcnn__conv_solver_direct,    &clcnn__conv_solver_winograd2,       &clcnn__conv_solver_gemm,
};
#define SOLVER_COUNT (sizeof solvers / sizeof solvers[0])

clcnn_conv_params clcnn_conv_params_default(void)
{
    clcnn_conv_params p = {0};
    p.stride_h = p.stride_w = 1;
    p.dilation_h = p.dilation_w = 1;
    p.groups = 1;
    p.mode = CLCNN_CONV_CROSS_CORRELATION;
    return p;
}

const char *clcnn_conv_algo_name(clcnn_conv_algo algo)
{
    switch (algo) {
#define ALGO_NAME_(name, token, id)                                                                \
    case CLCNN_CONV_ALGO_##name:                                                                   \
        return token;
        CLCNN_CONV_ALGO_LIST(ALGO_NAME_)
#undef ALGO_NAME_
    default:
        return NULL;
    }
}

clcnn_status clcnn_conv_algo_parse(const char *token, clcnn_conv_algo *algo)
{
    CLCNN_FAIL_IF(token == NULL || algo == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv algo: NULL argument");
#define ALGO_PARSE_(name, tok, id)                                                                 \
    if (strcmp(token, tok) == 0) {                                                                 \
        *algo = CLCNN_CONV_ALGO_##name;                                                            \
        return CLCNN_OK;                                                                           \
    }
    CLCNN_CONV_ALGO_LIST(ALGO_PARSE_)
#undef ALGO_PARSE_
    static const char *const tokens[] = {
#define ALGO_TOKEN_(name, tok, id) tok,
        CLCNN_CONV_ALGO_LIST(ALGO_TOKEN_)
#undef ALGO_TOKEN_
    };
    char known[256] = "";
    for (size_t i = 0, used = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", tokens[i]);
        if (w < 0 || (size_t)w >= sizeof known - used)
            break;
        used += (size_t)w;
    }
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "conv algo: unknown algorithm '%s' (known: %s)",
                     token, known);
}

static const clcnn__conv_solver *find_solver(clcnn_conv_algo algo)
{
    for (size_t i = 0; i < SOLVER_COUNT; i++)
        if (solvers[i]->algo == algo)
            return solvers[i];
    return NULL;
}

double clcnn_conv_algo_tolerance(clcnn_conv_algo algo)
{
    const clcnn__conv_solver *s = find_solver(algo);
    return s != NULL ? s->tolerance : -1.0;
}

/* Output extent along one axis, or 0 when the (dilated) kernel does not fit. */
static size_t out_extent(size_t in, size_t pad, size_t k, size_t stride, size_t dil)
{
    size_t span = dil * (k - 1) + 1;
    size_t padded = in + 2 * pad;
    return padded < span ? 0 : (padded - span) / stride + 1;
}

static clcnn_status make_problem(clcnn_shape x, clcnn_shape w, const clcnn_conv_params *p,
                                 clcnn__conv_problem *pb)
{
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL parameters");
    CLCNN_FAIL_IF(p->stride_h == 0 || p->stride_w == 0 || p->dilation_h == 0 ||
                      p->dilation_w == 0 || p->groups == 0,
                  CLCNN_STATUS_INVALID_ARG,
                  "conv2d: stride %zux%zu, dilation %zux%zu and groups %zu must all be >= 1",
                  p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->groups);
    CLCNN_FAIL_IF(p->mode != CLCNN_CONV_CROSS_CORRELATION && p->mode != CLCNN_CONV_CONVOLUTION,
                  CLCNN_STATUS_INVALID_ARG, "conv2d: unknown mode %d", (int)p->mode);
    size_t count;
    CLCNN_TRY(clcnn_shape_count(x, &count));
    CLCNN_TRY(clcnn_shape_count(w, &count));
    CLCNN_FAIL_IF(x.c % p->groups != 0 || w.n % p->groups != 0, CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: groups %zu must divide the input channels C=%zu and the output "
                  "channels K=%zu",
                  p->groups, x.c, w.n);
    CLCNN_FAIL_IF(w.c != x.c / p->groups, CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: weight (%zu,%zu,%zu,%zu) has %zu input channels; input "
                  "(%zu,%zu,%zu,%zu) with groups %zu needs C/groups = %zu",
                  w.n, w.c, w.h, w.w, w.c, x.n, x.c, x.h, x.w, p->groups, x.c / p->groups);
    /* Keep every extent within what the arithmetic below can hold. */
    const size_t big = (size_t)1 << 30;
    CLCNN_FAIL_IF(p->pad_h >= big || p->pad_w >= big || p->stride_h >= big || p->stride_w >= big ||
                      p->dilation_h >= big || p->dilation_w >= big || x.h >= big || x.w >= big ||
                      w.h >= big || w.w >= big,
                  CLCNN_STATUS_BAD_SHAPE, "conv2d: a size or parameter is 2^30 or more");
    size_t ho = out_extent(x.h, p->pad_h, w.h, p->stride_h, p->dilation_h);
    size_t wo = out_extent(x.w, p->pad_w, w.w, p->stride_w, p->dilation_w);
    CLCNN_FAIL_IF(ho == 0 || wo == 0, CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: empty output: input %zux%zu padded by %zu,%zu is smaller than the "
                  "kernel %zux%zu dilated by %zu,%zu (span %zux%zu)",
                  x.h, x.w, p->pad_h, p->pad_w, w.h, w.w, p->dilation_h, p->dilation_w,
                  p->dilation_h * (w.h - 1) + 1, p->dilation_w * (w.w - 1) + 1);
    pb->x = x;
    pb->w = w;
    pb->y = (clcnn_shape){x.n, w.n, ho, wo};
    pb->p = *p;
    pb->cg = x.c / p->groups;
    pb->kg = w.n / p->groups;
    CLCNN_TRY(clcnn_shape_count(pb->y, &count));
    return CLCNN_OK;
}

clcnn_status clcnn_conv2d_output_shape(clcnn_shape input, clcnn_shape weight,
                                       const clcnn_conv_params *params, clcnn_shape *output)
{
    CLCNN_FAIL_IF(output == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL output shape");
    clcnn__conv_problem pb;
    CLCNN_TRY(make_problem(input, weight, params, &pb));
    *output = pb.y;
    return CLCNN_OK;
}

/* The tuning database's key of a problem: "n1c64h56w56k64r3s3u1p1d1g1", with "AxB" where the
 * two dimensions differ ("u2x1"). Mode, bias and ReLU do not change which solver is fastest. */
static void problem_key(const clcnn__conv_problem *pb, char *buf, size_t size)
{
    const clcnn_conv_params *p = &pb->p;
    const size_t pairs[3][2] = {
        {p->stride_h, p->stride_w}, {p->pad_h, p->pad_w}, {p->dilation_h, p->dilation_w}};
    const char tags[3] = {'u', 'p', 'd'};
    int n = snprintf(buf, size, "n%zuc%zuh%zuw%zuk%zur%zus%zu", pb->x.n, pb->x.c, pb->x.h, pb->x.w,
                     pb->w.n, pb->w.h, pb->w.w);
    for (int i = 0; i < 3 && n > 0 && (size_t)n < size; i++) {
        if (pairs[i][0] == pairs[i][1])
            n += snprintf(buf + n, size - (size_t)n, "%c%zu", tags[i], pairs[i][0]);
        else
            n +=
                snprintf(buf + n, size - (size_t)n, "%c%zux%zu", tags[i], pairs[i][0], pairs[i][1]);
    }
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "g%zu", p->groups);
}

clcnn_status clcnn__conv_make_problem(clcnn_shape x, clcnn_shape w, const clcnn_conv_params *p,
                                      clcnn__conv_problem *pb)
{
    return make_problem(x, w, p, pb);
}

void clcnn__conv_problem_key(const clcnn__conv_problem *pb, char *buf, size_t size)
{
    problem_key(pb, buf, size);
}

#define DB_KERNEL "conv2d_fwd"

/* The solvers cltune can tune, in the order its usage lists them. */
static const clcnn__conv_tunable *const tunables[] = {
    &clcnn__conv_tunable_direct,
    &clcnn__conv_tunable_winograd4,
    &clcnn__conv_tunable_winograd2,
    &clcnn__conv_tunable_winograd4_split,
    &clcnn__conv_tunable_gemm,
    &clcnn__conv_tunable_bwd_weights_igemm,
    &clcnn__conv_tunable_bwd_data_direct,
    &clcnn__conv_tunable_bwd_weights_direct,
};

bool clcnn__conv_tuned_point(const clcnn__conv_problem *pb, const clcnn_device *dev,
                             const clcnn__conv_tunable *tunable, const char *const *names,
                             size_t count, bool (*valid)(const int *values, const void *user),
                             int *values)
{
    if (!dev->info.compiler_available)
        return false;
    char key[256];
    clcnn__conv_problem_key(pb, key, sizeof key);
    const clcnn__conv_tuning t = {*pb, dev, tunable};
    clcnn__tune_db_match near[8];
    /* The database is read lazily under the device's lock: logically const. */
    size_t n = clcnn__tune_db_nearest((clcnn_device *)dev, tunable->db_kernel, key,
                                      CLCNN__CONV_NEAREST_SAME, names, count, near, 8);
    for (size_t i = 0; i < n; i++) {
        if (!valid(near[i].values, &t))
            continue;
        if (strcmp(near[i].problem, key) != 0)
            CLCNN_DEBUG("conv2d", "%s: %s uses the tuning database entry of %s", tunable->db_kernel,
                        key, near[i].problem);
        memcpy(values, near[i].values, count * sizeof *values);
        return true;
    }
    return false;
}

const clcnn__conv_tunable *clcnn__conv_tunable_find(const char *name, clcnn_conv_pass pass)
{
    for (size_t i = 0; i < sizeof tunables / sizeof tunables[0]; i++)
        if (tunables[i]->pass == pass && strcmp(tunables[i]->solver->name, name) == 0)
            return tunables[i];
    return NULL;
}

const clcnn__conv_tunable *clcnn__conv_tunable_at(size_t i)
{
    return i < sizeof tunables / sizeof tunables[0] ? tunables[i] : NULL;
}

static const clcnn__conv_solver *find_solver_by_name(const char *name)
{
    for (size_t i = 0; i < SOLVER_COUNT; i++)
        if (strcmp(solvers[i]->name, name) == 0)
            return solvers[i];
    return NULL;
}

/* AUTO: the tuning database's verified winner when it can run the problem, else the first
 * applicable solver in registry order. */
static const clcnn__conv_solver *choose(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    char key[256], name[64];
    bool found = false;
    problem_key(pb, key, sizeof key);
    /* The database is read lazily under the device's lock: logically const. */
    clcnn__tune_db_lookup((clcnn_device *)dev, DB_KERNEL, key, name, sizeof name, &found);
    if (found) {
        const clcnn__conv_solver *s = find_solver_by_name(name);
        const char *why = "unknown solver";
        if (s != NULL && s->applicable(pb, dev, &why)) {
            CLCNN_DEBUG("conv2d", "auto %s -> %s (tuning database)", key, s->name);
            return s;
        }
        CLCNN_DEBUG("conv2d", "tuning database names %s for %s, which cannot run it (%s)", name,
                    key, why);
    }
    /* Else the winner of the nearest stored problem with the same filter, stride, dilation and
     * groups, when it can run this one. */
    clcnn__tune_db_match near[8];
    size_t n = clcnn__tune_db_nearest((clcnn_device *)dev, DB_KERNEL, key, CLCNN__CONV_NEAREST_SAME,
                                      NULL, 0, near, 8);
    for (size_t i = 0; i < n; i++) {
        const clcnn__conv_solver *s = find_solver_by_name(near[i].solver);
        const char *why = NULL;
        if (strcmp(near[i].problem, key) != 0 && s != NULL && s->applicable(pb, dev, &why)) {
            CLCNN_DEBUG("conv2d", "auto %s -> %s (tuning database, nearest: %s)", key, s->name,
                        near[i].problem);
            return s;
        }
    }
    /* GPU devices: im2col + CLBlast's SGEMM wherever its workspace fits. Measured on one, an
     * NVIDIA H100 through NVIDIA's OpenCL (clcnn bench conv, BENCHMARKS.md): gemm ran fastest
     * on 8 of the 10 VGG-16 shapes (0.21-3.0 ms, against winograd4's 0.69-23.4 and direct's
     * 0.34-11.5) and on both LeNet layers (0.08 and 0.16 ms against direct's 0.31 and 1.14);
     * direct beat it on conv1_2 alone (0.34 against 0.41 ms at N=1, 2.4 against 3.0 at N=8).
     * The registry order below was measured on CPU devices. */
    const char *gemm_why = NULL;
    if (dev->info.type == CLCNN_DEVICE_TYPE_GPU &&
        clcnn__conv_solver_gemm.applicable(pb, dev, &gemm_why))
        return &clcnn__conv_solver_gemm;
    const bool cpu = dev->info.type == CLCNN_DEVICE_TYPE_CPU;
    for (size_t i = 0; i < SOLVER_COUNT; i++) {
        const char *why = NULL;
        /* One work-item per work-group: measured on CPU devices only. */
        if (solvers[i] == &clcnn__conv_solver_rows && !cpu)
            continue;
        /* On small maps direct_rows beats the split Winograd, whose 4x4 tiles fit them badly:
         * LeNet conv2 (14x14, N=64) 8.8-22.4 ms against 14.1-63.3 in nine runs of clcnn bench
         * conv; AlexNet conv2 (27x27, N=1) stays split (6.2 against 9.2). */
        if (solvers[i] == &clcnn__conv_solver_winograd4_split && cpu &&
            pb->y.h * pb->y.w <= (size_t)16 * 16 &&
            clcnn__conv_solver_rows.applicable(pb, dev, &why))
            return &clcnn__conv_solver_rows;
        if (solvers[i]->applicable(pb, dev, &why))
            return solvers[i];
        CLCNN_TRACE("conv2d", "solver %s not applicable: %s", solvers[i]->name, why);
    }
    return NULL;
}

static clcnn_status resolve(const clcnn__conv_problem *pb, const clcnn_device *dev,
                            clcnn_conv_algo algo, const clcnn__conv_solver **out)
{
    const clcnn__conv_solver *s;
    if (algo == CLCNN_CONV_ALGO_AUTO) {
        s = choose(pb, dev);
        CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_UNSUPPORTED,
                      "conv2d: no solver can run this problem");
    } else {
        s = find_solver(algo);
        CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: unknown algorithm %d",
                      (int)algo);
        const char *why = "";
        CLCNN_FAIL_IF(!s->applicable(pb, dev, &why), CLCNN_STATUS_UNSUPPORTED,
                      "conv2d: solver %s cannot run input (%zu,%zu,%zu,%zu) weight "
                      "(%zu,%zu,%zu,%zu): %s",
                      s->name, pb->x.n, pb->x.c, pb->x.h, pb->x.w, pb->w.n, pb->w.c, pb->w.h,
                      pb->w.w, why);
    }
    *out = s;
    return CLCNN_OK;
}

bool clcnn_conv2d_applicable(const clcnn_device *device, clcnn_shape input, clcnn_shape weight,
                             const clcnn_conv_params *params, clcnn_conv_algo algo,
                             const char **reason)
{
    const char *why = "invalid problem or algorithm";
    clcnn__conv_problem pb;
    const clcnn__conv_solver *s = NULL;
    bool ok = false;
    if (device != NULL && make_problem(input, weight, params, &pb) == CLCNN_OK) {
        if (algo == CLCNN_CONV_ALGO_AUTO)
            ok = true;
        else if ((s = find_solver(algo)) != NULL)
            ok = s->applicable(&pb, device, &why);
    }
    clcnn_clear_error();
    if (!ok && reason != NULL)
        *reason = why;
    return ok;
}

clcnn_status clcnn_conv2d_workspace_size(const clcnn_device *device, clcnn_shape input,
                                         clcnn_shape weight, const clcnn_conv_params *params,
                                         clcnn_conv_algo algo, size_t *bytes)
{
    CLCNN_FAIL_IF(device == NULL || bytes == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv2d_workspace_size: NULL argument");
    clcnn__conv_problem pb;
    CLCNN_TRY(make_problem(input, weight, params, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&pb, device, algo, &s));
    *bytes = s->workspace_size != NULL ? s->workspace_size(&pb, device) : 0;
    return CLCNN_OK;
}

/* Checks the tensors of a call against each other and builds the problem. */
static clcnn_status prepare(const clcnn_device *device, const clcnn_tensor *x,
                            const clcnn_tensor *w, const clcnn_tensor *bias,
                            const clcnn_conv_params *params, const clcnn_tensor *y,
                            clcnn__conv_problem *pb)
{
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL device");
    CLCNN_TRY(clcnn__check_tensor(x, device, "conv2d", "input"));
    CLCNN_TRY(clcnn__check_tensor(w, device, "conv2d", "weight"));
    CLCNN_TRY(clcnn__check_tensor(y, device, "conv2d", "output"));
    CLCNN_TRY(make_problem(clcnn_tensor_shape(x), clcnn_tensor_shape(w), params, pb));
    clcnn_shape ys = clcnn_tensor_shape(y);
    CLCNN_FAIL_IF(ys.n != pb->y.n || ys.c != pb->y.c || ys.h != pb->y.h || ys.w != pb->y.w,
                  CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: output tensor is (%zu,%zu,%zu,%zu) but input (%zu,%zu,%zu,%zu) and "
                  "weight (%zu,%zu,%zu,%zu) give (%zu,%zu,%zu,%zu)",
                  ys.n, ys.c, ys.h, ys.w, pb->x.n, pb->x.c, pb->x.h, pb->x.w, pb->w.n, pb->w.c,
                  pb->w.h, pb->w.w, pb->y.n, pb->y.c, pb->y.h, pb->y.w);
    if (bias != NULL) {
        CLCNN_TRY(clcnn__check_tensor(bias, device, "conv2d", "bias"));
        CLCNN_FAIL_IF(clcnn_tensor_count(bias) != pb->w.n, CLCNN_STATUS_BAD_SHAPE,
                      "conv2d: bias has %zu elements, the output has K=%zu channels",
                      clcnn_tensor_count(bias), pb->w.n);
    }
    return CLCNN_OK;
}

/* Runs one solver, allocating its workspace when the caller gave none. */
static clcnn_status run_solver(clcnn_device *device, const clcnn__conv_problem *pb,
                               const clcnn__conv_solver *s, const clcnn_tensor *x,
                               const clcnn_tensor *w, const clcnn_tensor *bias, clcnn_tensor *y,
                               cl_mem workspace, size_t workspace_bytes)
{
    size_t need = s->workspace_size != NULL ? s->workspace_size(pb, device) : 0;
    cl_mem own = NULL;
    if (need > 0 && workspace == NULL) {
        cl_int err;
        own = clCreateBuffer(device->context, CL_MEM_READ_WRITE, need, NULL, &err);
        if (err != CL_SUCCESS)
            return CLCNN_CL_ERR(err, "conv2d: solver %s: clCreateBuffer(workspace %zu bytes)",
                                s->name, need);
        workspace = own;
    } else {
        CLCNN_FAIL_IF(need > workspace_bytes, CLCNN_STATUS_INVALID_ARG,
                      "conv2d: solver %s needs %zu bytes of workspace, %zu given", s->name, need,
                      workspace_bytes);
    }
    clcnn__conv_args args = {clcnn_tensor_buffer(x), clcnn_tensor_buffer(w),
                             bias != NULL ? clcnn_tensor_buffer(bias) : NULL,
                             clcnn_tensor_buffer(y), w};
    clcnn_status st = s->run(device, pb, &args, workspace);
    if (own != NULL)
        clReleaseMemObject(own);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(y);
    return st;
}

clcnn_status clcnn_conv2d_forward(clcnn_device *device, const clcnn_tensor *x,
                                  const clcnn_tensor *w, const clcnn_tensor *bias,
                                  const clcnn_conv_params *params, clcnn_conv_algo algo,
                                  cl_mem workspace, size_t workspace_bytes, clcnn_tensor *y)
{
    clcnn__conv_problem pb;
    CLCNN_TRY(prepare(device, x, w, bias, params, y, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&pb, device, algo, &s));
    return run_solver(device, &pb, s, x, w, bias, y, workspace, workspace_bytes);
}

clcnn_status clcnn_conv2d_auto_algo(clcnn_device *device, clcnn_shape input, clcnn_shape weight,
                                    const clcnn_conv_params *params, clcnn_conv_algo *algo)
{
    CLCNN_FAIL_IF(device == NULL || algo == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv2d_auto_algo: NULL argument");
    clcnn__conv_problem pb;
    CLCNN_TRY(make_problem(input, weight, params, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&pb, device, CLCNN_CONV_ALGO_AUTO, &s));
    *algo = s->algo;
    return CLCNN_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fastest verified first, then unverified, then those that failed. */
static int rank_of(const clcnn_conv_perf *p)
{
    return p->status != CLCNN_OK ? 2 : p->verified ? 0 : 1;
}

static int compare_perf(const void *a, const void *b)
{
    const clcnn_conv_perf *x = a, *y = b;
    if (rank_of(x) != rank_of(y))
        return rank_of(x) - rank_of(y);
    return compare_double(&x->time_ms, &y->time_ms);
}

void clcnn__conv_sort_perf(clcnn_conv_perf *rows, size_t n)
{
    qsort(rows, n, sizeof rows[0], compare_perf);
}

void clcnn__conv_measure(const clcnn__conv_trial *t, const clcnn__conv_solver *s, int repeat,
                         const float *ref, float *got, clcnn_conv_perf *perf)
{
    const char *why = NULL;
    perf->algo = s->algo;
    perf->time_ms = INFINITY;
    perf->nmse = INFINITY;
    if (!s->applicable(t->pb, t->device, &why)) {
        perf->status = CLCNN_STATUS_UNSUPPORTED;
        return;
    }
    perf->workspace_bytes = s->workspace_size != NULL ? s->workspace_size(t->pb, t->device) : 0;
    perf->status = clcnn_tensor_fill(t->out, NAN);
    if (perf->status == CLCNN_OK)
        perf->status = t->run(t->ctx, s);
    if (perf->status == CLCNN_OK)
        perf->status = clcnn_tensor_download(t->out, got, t->count);
    if (perf->status != CLCNN_OK) {
        CLCNN_DEBUG("conv2d", "find: solver %s failed: %s", s->name, clcnn_last_error());
        return;
    }
    double err = 0, norm = 0;
    for (size_t i = 0; i < t->count; i++) {
        double d = (double)got[i] - (double)ref[i];
        err += d * d;
        norm += (double)ref[i] * ref[i];
    }
    perf->nmse = norm > 0 ? err / norm : err;
    perf->verified = perf->nmse <= s->tolerance || (norm == 0 && err == 0);
    double times[64];
    int want = repeat < 1 ? 1 : repeat > 64 ? 64 : repeat, n = 0;
    while (n < want && perf->status == CLCNN_OK) {
        double t0 = now_ms();
        perf->status = t->run(t->ctx, s);
        if (perf->status == CLCNN_OK)
            perf->status = clcnn_device_finish(t->device); /* the ops return before they run */
        times[n++] = now_ms() - t0;
    }
    if (perf->status != CLCNN_OK)
        return;
    qsort(times, (size_t)n, sizeof times[0], compare_double);
    perf->time_ms = times[n / 2];
}

/* The forward's trial: one solver on the find call's tensors. */
typedef struct fwd_trial {
    clcnn_device *device;
    const clcnn__conv_problem *pb;
    const clcnn_tensor *x, *w, *bias;
    clcnn_tensor *y;
} fwd_trial;

static clcnn_status fwd_trial_run(void *ctx, const clcnn__conv_solver *s)
{
    const fwd_trial *f = ctx;
    return run_solver(f->device, f->pb, s, f->x, f->w, f->bias, f->y, NULL, 0);
}

clcnn_status clcnn_conv2d_find(clcnn_device *device, const clcnn_tensor *x, const clcnn_tensor *w,
                               const clcnn_tensor *bias, const clcnn_conv_params *params,
                               clcnn_tensor *y, int repeat, clcnn_conv_perf *perf, size_t capacity,
                               size_t *count)
{
    CLCNN_FAIL_IF(count == NULL || (perf == NULL && capacity > 0), CLCNN_STATUS_INVALID_ARG,
                  "conv2d_find: NULL output");
    clcnn__conv_problem pb;
    CLCNN_TRY(prepare(device, x, w, bias, params, y, &pb));
    size_t n = clcnn_tensor_count(y);
    float *ref = malloc(n * sizeof *ref), *out = malloc(n * sizeof *out);
    clcnn_status st = ref != NULL && out != NULL
                          ? CLCNN_OK
                          : CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY,
                                      "conv2d_find: cannot allocate %zu floats", 2 * n);
    /* The direct solver is the reference every other output is checked against. */
    if (st == CLCNN_OK)
        st = run_solver(device, &pb, &clcnn__conv_solver_direct, x, w, bias, y, NULL, 0);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(y, ref, n);
    clcnn_conv_perf rows[SOLVER_COUNT];
    memset(rows, 0, sizeof rows);
    fwd_trial f = {device, &pb, x, w, bias, y};
    const clcnn__conv_trial trial = {device, &pb, fwd_trial_run, &f, y, n};
    for (size_t i = 0; i < SOLVER_COUNT && st == CLCNN_OK; i++)
        clcnn__conv_measure(&trial, solvers[i], repeat, ref, out, &rows[i]);
    free(ref);
    free(out);
    if (st != CLCNN_OK)
        return st;
    clcnn_clear_error();
    clcnn__conv_sort_perf(rows, SOLVER_COUNT);
    if (rows[0].status == CLCNN_OK && rows[0].verified) {
        const clcnn__conv_solver *best = find_solver(rows[0].algo);
        char key[256];
        problem_key(&pb, key, sizeof key);
        st = clcnn__tune_db_record(device, DB_KERNEL, key, best->name, rows[0].time_ms * 1e3, true);
        if (st == CLCNN_OK)
            st = run_solver(device, &pb, best, x, w, bias, y, NULL, 0);
    }
    if (st != CLCNN_OK)
        return st;
    size_t k = capacity < SOLVER_COUNT ? capacity : SOLVER_COUNT;
    if (k > 0)
        memcpy(perf, rows, k * sizeof rows[0]);
    *count = k;
    return CLCNN_OK;
}

size_t clcnn__conv_images_per_chunk(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                    size_t per_image, size_t bound_bytes, const char **reason)
{
    const size_t limit = (size_t)1 << 31; /* the kernels and CLBlast index with int */
    if (pb->x.n * pb->x.c * pb->x.h * pb->x.w >= limit ||
        pb->y.n * pb->y.c * pb->y.h * pb->y.w >= limit ||
        pb->w.n * pb->w.c * pb->w.h * pb->w.w >= limit || per_image >= limit) {
        *reason = "a tensor or one image's column matrix has 2^31 elements or more";
        return 0;
    }
    const size_t max_alloc = (size_t)dev->info.max_alloc_bytes;
    if (per_image * sizeof(float) > max_alloc) {
        *reason = "one image's column matrix exceeds the device's largest allocation";
        return 0;
    }
    size_t bound =
        bound_bytes > per_image * sizeof(float) ? bound_bytes : per_image * sizeof(float);
    if (bound > max_alloc)
        bound = max_alloc;
    size_t chunk = bound / (per_image * sizeof(float));
    if (chunk * per_image >= limit)
        chunk = (limit - 1) / per_image;
    return chunk > pb->x.n ? pb->x.n : chunk;
}
