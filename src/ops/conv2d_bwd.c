/* 2-D convolution backward: the backward-data and backward-weights registries, validation of the
 * gradients' shapes, the choice behind AUTO, the entry points and the bias gradient. Each
 * algorithm lives in its own conv2d_bwd_<solver>.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv2d_bwd_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"
#include "tune_db_impl.h"

/* The registries. AUTO's heuristic is heuristic() below; without one the first applicable row
 * wins: direct, which ran 1.4-9x faster than gemm on the VGG-16 3x3 shapes at N=1 on POCL's
 * CPU device. The Winograd rows of backward data run the forward solvers on the rotated
 * problem (stride 1, one group). */
static const clcnn__conv_solver *const data_solvers[] = {
    &clcnn__conv_bwd_data_direct,    &clcnn__conv_bwd_data_gemm,
    &clcnn__conv_bwd_data_winograd4, &clcnn__conv_bwd_data_winograd4_split,
    &clcnn__conv_bwd_data_winograd2, &clcnn__conv_bwd_data_rows,
};

static const clcnn__conv_solver *const weights_solvers[] = {
    &clcnn__conv_bwd_weights_direct,
    &clcnn__conv_bwd_weights_gemm,
    &clcnn__conv_bwd_weights_igemm,
    &clcnn__conv_bwd_weights_rows,
};

typedef struct pass_info {
    const char *fn; /* entry point, the messages' prefix */
    const char *db; /* the tuning database's kernel name */
    const clcnn__conv_solver *const *solvers;
    size_t count;
} pass_info;

static const pass_info passes[] = {
    [CLCNN_CONV_PASS_BWD_DATA] = {"conv2d_backward_data", "conv2d_bwd_data", data_solvers,
                                  sizeof data_solvers / sizeof data_solvers[0]},
    [CLCNN_CONV_PASS_BWD_WEIGHTS] = {"conv2d_backward_weights", "conv2d_bwd_weights",
                                     weights_solvers,
                                     sizeof weights_solvers / sizeof weights_solvers[0]},
};

const char *clcnn_conv_pass_name(clcnn_conv_pass pass)
{
    switch (pass) {
    case CLCNN_CONV_PASS_FWD:
        return "fwd";
    case CLCNN_CONV_PASS_BWD_DATA:
        return "bwd-data";
    case CLCNN_CONV_PASS_BWD_WEIGHTS:
        return "bwd-weights";
    default:
        return NULL;
    }
}

static bool is_backward(clcnn_conv_pass pass)
{
    return pass == CLCNN_CONV_PASS_BWD_DATA || pass == CLCNN_CONV_PASS_BWD_WEIGHTS;
}

static const clcnn__conv_solver *find_solver(const pass_info *pi, clcnn_conv_algo algo)
{
    for (size_t i = 0; i < pi->count; i++)
        if (pi->solvers[i]->algo == algo)
            return pi->solvers[i];
    return NULL;
}

double clcnn_conv_pass_tolerance(clcnn_conv_pass pass, clcnn_conv_algo algo)
{
    if (pass == CLCNN_CONV_PASS_FWD)
        return clcnn_conv_algo_tolerance(algo);
    if (!is_backward(pass))
        return -1.0;
    const clcnn__conv_solver *s = find_solver(&passes[pass], algo);
    return s != NULL ? s->tolerance : -1.0;
}

/* AUTO's choice where it is not simply the first applicable row, or NULL.
 * GPU devices: gemm, below.
 * Backward data: the forward's own AUTO on the rotated problem, so a Winograd solver runs it
 * where the forward heuristic (or the tuning database) prefers one for that forward problem and
 * the maps are large enough (N*H*W >= 2048) to pay for the filter transform.
 * Backward weights: the implicit GEMM where rows are long enough (C*R*S >= 64) and maps at most
 * 56x56; on POCL's CPU device it ran 1.5-3x faster than direct there (LeNet's conv2 at N=64,
 * VGG-16's conv4_2 at N=8 and conv5_1 at N=1; clcnn bench conv --pass bwd-weights), while direct
 * stayed ahead on the 112x112 and 224x224 maps and on LeNet's conv1 (C*R*S = 25). */
static const clcnn__conv_solver *heuristic(const pass_info *pi, const clcnn__conv_problem *pb,
                                           const clcnn_device *dev)
{
    const char *why = NULL;
    /* GPU devices: im2col + CLBlast's SGEMM for both passes, wherever its workspace fits. On an
     * NVIDIA H100 (NVIDIA's OpenCL, clcnn bench conv --pass ...) it ran fastest on every VGG-16
     * and LeNet shape but one: backward data 0.07-6.9 ms against direct's 1.1-52.5 and the
     * rotated Winograd's 0.98-23.7; backward weights 0.11-23.6 ms against direct's 2.5-93
     * (LeNet conv1, C*R*S = 25: direct_rows 1.2 ms, gemm 2.6, direct 3.6). */
    if (dev->info.type == CLCNN_DEVICE_TYPE_GPU) {
        const clcnn__conv_solver *gemm = pi->solvers == weights_solvers
                                             ? &clcnn__conv_bwd_weights_gemm
                                             : &clcnn__conv_bwd_data_gemm;
        if (gemm->applicable(pb, dev, &why))
            return gemm;
    }
    if (pi->solvers == weights_solvers) {
        /* Measured on CPU devices only: it launches one work-item per work-group. */
        const bool cpu = dev->info.type == CLCNN_DEVICE_TYPE_CPU;
        const bool small =
            cpu && pb->y.h * pb->y.w <= (size_t)56 * 56 && pb->x.c * pb->w.h * pb->w.w >= 64;
        if (small && clcnn__conv_bwd_weights_igemm.applicable(pb, dev, &why))
            return &clcnn__conv_bwd_weights_igemm;
        /* Shorter rows (c, r, s): direct_rows splits the batch instead (LeNet conv1, C*R*S = 25:
         * 1.5 ms against implicit_gemm's 3.5 and direct's 4.1, same run). */
        const bool short_rows = cpu && pb->x.c * pb->w.h * pb->w.w < 64;
        return short_rows && clcnn__conv_bwd_weights_rows.applicable(pb, dev, &why)
                   ? &clcnn__conv_bwd_weights_rows
                   : NULL;
    }
    /* The rotated Winograd rows transform the swapped filters on every call (the weights change
     * every training step, so there is nothing to cache): on small maps that transform costs
     * more than it saves. VGG-16 conv5_1 (14x14, N=1): winograd4 46 ms against direct's 13;
     * conv3_2 (56x56): 14 against 57. There, and where the rotated problem would take the split
     * 5x5 Winograd, CPU devices take direct_rows: conv5_1 10.9 ms against direct's 22.4, conv4_2
     * (28x28) 84 against winograd2's 129, LeNet conv2 (N=64) 10.8 against winograd4_split's 40.9
     * (clcnn bench conv --pass bwd-data, same runs, a loaded machine). */
    const bool rows = dev->info.type == CLCNN_DEVICE_TYPE_CPU &&
                      clcnn__conv_bwd_data_rows.applicable(pb, dev, &why);
    if (pb->x.n * pb->x.h * pb->x.w < 2048)
        return rows ? &clcnn__conv_bwd_data_rows : NULL;
    const clcnn__conv_solver *rotated = NULL;
    switch (clcnn__conv_bwd_data_rotated_auto(pb, dev)) {
    case CLCNN_CONV_ALGO_WINOGRAD2:
        rotated = &clcnn__conv_bwd_data_winograd2;
        break;
    case CLCNN_CONV_ALGO_WINOGRAD4:
        rotated = &clcnn__conv_bwd_data_winograd4;
        break;
    case CLCNN_CONV_ALGO_WINOGRAD4_SPLIT:
        rotated = rows ? &clcnn__conv_bwd_data_rows : &clcnn__conv_bwd_data_winograd4_split;
        break;
    case CLCNN_CONV_ALGO_DIRECT_ROWS:
        rotated = &clcnn__conv_bwd_data_rows;
        break;
    default:
        return NULL;
    }
    return rotated->applicable(pb, dev, &why) ? rotated : NULL;
}

/* AUTO: the tuning database's verified winner when it can run the problem, else the first
 * applicable solver in registry order. */
static const clcnn__conv_solver *choose(const pass_info *pi, const clcnn__conv_problem *pb,
                                        const clcnn_device *dev)
{
    char key[256], name[64];
    bool found = false;
    clcnn__conv_problem_key(pb, key, sizeof key);
    /* The database is read lazily under the device's lock: logically const. */
    clcnn__tune_db_lookup((clcnn_device *)dev, pi->db, key, name, sizeof name, &found);
    if (found) {
        for (size_t i = 0; i < pi->count; i++) {
            const char *why = NULL;
            if (strcmp(pi->solvers[i]->name, name) == 0 &&
                pi->solvers[i]->applicable(pb, dev, &why)) {
                CLCNN_DEBUG("conv2d", "%s auto %s -> %s (tuning database)", pi->fn, key, name);
                return pi->solvers[i];
            }
        }
        CLCNN_DEBUG("conv2d", "%s: tuning database names %s for %s, which cannot run it", pi->fn,
                    name, key);
    }
    const clcnn__conv_solver *h = heuristic(pi, pb, dev);
    if (h != NULL)
        return h;
    for (size_t i = 0; i < pi->count; i++) {
        const char *why = NULL;
        if (pi->solvers[i]->applicable(pb, dev, &why))
            return pi->solvers[i];
        CLCNN_TRACE("conv2d", "%s: solver %s not applicable: %s", pi->fn, pi->solvers[i]->name,
                    why);
    }
    return NULL;
}

static clcnn_status resolve(const pass_info *pi, const clcnn__conv_problem *pb,
                            const clcnn_device *dev, clcnn_conv_algo algo,
                            const clcnn__conv_solver **out)
{
    const clcnn__conv_solver *s;
    if (algo == CLCNN_CONV_ALGO_AUTO) {
        s = choose(pi, pb, dev);
        CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_UNSUPPORTED, "%s: no solver can run this problem",
                      pi->fn);
    } else {
        s = find_solver(pi, algo);
        CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_INVALID_ARG,
                      "%s: algorithm %s (%d) has no solver for this pass", pi->fn,
                      clcnn_conv_algo_name(algo) ? clcnn_conv_algo_name(algo) : "?", (int)algo);
        const char *why = "";
        CLCNN_FAIL_IF(!s->applicable(pb, dev, &why), CLCNN_STATUS_UNSUPPORTED,
                      "%s: solver %s cannot run input (%zu,%zu,%zu,%zu) weight "
                      "(%zu,%zu,%zu,%zu): %s",
                      pi->fn, s->name, pb->x.n, pb->x.c, pb->x.h, pb->x.w, pb->w.n, pb->w.c,
                      pb->w.h, pb->w.w, why);
    }
    *out = s;
    return CLCNN_OK;
}

bool clcnn_conv2d_pass_applicable(const clcnn_device *device, clcnn_conv_pass pass,
                                  clcnn_shape input, clcnn_shape weight,
                                  const clcnn_conv_params *params, clcnn_conv_algo algo,
                                  const char **reason)
{
    if (pass == CLCNN_CONV_PASS_FWD)
        return clcnn_conv2d_applicable(device, input, weight, params, algo, reason);
    const char *why = "invalid problem, pass or algorithm";
    clcnn__conv_problem pb;
    const clcnn__conv_solver *s = NULL;
    bool ok = false;
    if (device != NULL && is_backward(pass) &&
        clcnn__conv_make_problem(input, weight, params, &pb) == CLCNN_OK) {
        if (algo == CLCNN_CONV_ALGO_AUTO)
            ok = true;
        else if ((s = find_solver(&passes[pass], algo)) != NULL)
            ok = s->applicable(&pb, device, &why);
        else
            why = "the algorithm has no solver for this pass";
    }
    clcnn_clear_error();
    if (!ok && reason != NULL)
        *reason = why;
    return ok;
}

clcnn_status clcnn_conv2d_pass_workspace_size(const clcnn_device *device, clcnn_conv_pass pass,
                                              clcnn_shape input, clcnn_shape weight,
                                              const clcnn_conv_params *params, clcnn_conv_algo algo,
                                              size_t *bytes)
{
    if (pass == CLCNN_CONV_PASS_FWD)
        return clcnn_conv2d_workspace_size(device, input, weight, params, algo, bytes);
    CLCNN_FAIL_IF(!is_backward(pass), CLCNN_STATUS_INVALID_ARG,
                  "conv2d_pass_workspace_size: unknown pass %d", (int)pass);
    CLCNN_FAIL_IF(device == NULL || bytes == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv2d_pass_workspace_size: NULL argument");
    clcnn__conv_problem pb;
    CLCNN_TRY(clcnn__conv_make_problem(input, weight, params, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&passes[pass], &pb, device, algo, &s));
    *bytes = s->workspace_size != NULL ? s->workspace_size(&pb, device) : 0;
    return CLCNN_OK;
}

clcnn_status clcnn_conv2d_pass_auto_algo(clcnn_device *device, clcnn_conv_pass pass,
                                         clcnn_shape input, clcnn_shape weight,
                                         const clcnn_conv_params *params, clcnn_conv_algo *algo)
{
    if (pass == CLCNN_CONV_PASS_FWD)
        return clcnn_conv2d_auto_algo(device, input, weight, params, algo);
    CLCNN_FAIL_IF(!is_backward(pass), CLCNN_STATUS_INVALID_ARG,
                  "conv2d_pass_auto_algo: unknown pass %d", (int)pass);
    CLCNN_FAIL_IF(device == NULL || algo == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv2d_pass_auto_algo: NULL argument");
    clcnn__conv_problem pb;
    CLCNN_TRY(clcnn__conv_make_problem(input, weight, params, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&passes[pass], &pb, device, CLCNN_CONV_ALGO_AUTO, &s));
    *algo = s->algo;
    return CLCNN_OK;
}

static bool same_shape(clcnn_shape a, clcnn_shape b)
{
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

/* Checks that tensor [t] named [what] has shape [want]; [x] and [w] describe the problem. */
static clcnn_status check_shape(const char *fn, const clcnn_tensor *t, const char *what,
                                clcnn_shape want, const clcnn__conv_problem *pb)
{
    clcnn_shape s = clcnn_tensor_shape(t);
    CLCNN_FAIL_IF(!same_shape(s, want), CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s is (%zu,%zu,%zu,%zu) but input (%zu,%zu,%zu,%zu) and weight "
                  "(%zu,%zu,%zu,%zu) need (%zu,%zu,%zu,%zu)",
                  fn, what, s.n, s.c, s.h, s.w, pb->x.n, pb->x.c, pb->x.h, pb->x.w, pb->w.n,
                  pb->w.c, pb->w.h, pb->w.w, want.n, want.c, want.h, want.w);
    return CLCNN_OK;
}

/* Runs one solver, allocating its workspace when the caller gave none. */
static clcnn_status run_solver(clcnn_device *device, const pass_info *pi,
                               const clcnn__conv_problem *pb, const clcnn__conv_solver *s,
                               const clcnn__conv_args *args, clcnn_tensor *out, cl_mem workspace,
                               size_t workspace_bytes)
{
    size_t need = s->workspace_size != NULL ? s->workspace_size(pb, device) : 0;
    cl_mem own = NULL;
    if (need > 0 && workspace == NULL) {
        cl_int err;
        own = clCreateBuffer(device->context, CL_MEM_READ_WRITE, need, NULL, &err);
        if (err != CL_SUCCESS)
            return CLCNN_CL_ERR(err, "%s: solver %s: clCreateBuffer(workspace %zu bytes)", pi->fn,
                                s->name, need);
        workspace = own;
    } else {
        CLCNN_FAIL_IF(need > workspace_bytes, CLCNN_STATUS_INVALID_ARG,
                      "%s: solver %s needs %zu bytes of workspace, %zu given", pi->fn, s->name,
                      need, workspace_bytes);
    }
    clcnn_status st = s->run(device, pb, args, workspace);
    if (own != NULL)
        clReleaseMemObject(own);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(out);
    return st;
}

clcnn_status clcnn_conv2d_backward_data(clcnn_device *device, const clcnn_tensor *dy,
                                        const clcnn_tensor *w, const clcnn_conv_params *params,
                                        clcnn_conv_algo algo, cl_mem workspace,
                                        size_t workspace_bytes, clcnn_tensor *dx)
{
    const pass_info *pi = &passes[CLCNN_CONV_PASS_BWD_DATA];
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", pi->fn);
    CLCNN_TRY(clcnn__check_tensor(dy, device, pi->fn, "output gradient dy"));
    CLCNN_TRY(clcnn__check_tensor(w, device, pi->fn, "weight"));
    CLCNN_TRY(clcnn__check_tensor(dx, device, pi->fn, "input gradient dx"));
    clcnn__conv_problem pb;
    CLCNN_TRY(clcnn__conv_make_problem(clcnn_tensor_shape(dx), clcnn_tensor_shape(w), params, &pb));
    CLCNN_TRY(check_shape(pi->fn, dy, "output gradient dy", pb.y, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(pi, &pb, device, algo, &s));
    const clcnn__conv_args args = {clcnn_tensor_buffer(dx), clcnn_tensor_buffer(w), NULL,
                                   clcnn_tensor_buffer(dy), w};
    return run_solver(device, pi, &pb, s, &args, dx, workspace, workspace_bytes);
}

clcnn_status clcnn_conv2d_backward_weights(clcnn_device *device, const clcnn_tensor *x,
                                           const clcnn_tensor *dy, const clcnn_conv_params *params,
                                           clcnn_conv_algo algo, cl_mem workspace,
                                           size_t workspace_bytes, clcnn_tensor *dw)
{
    const pass_info *pi = &passes[CLCNN_CONV_PASS_BWD_WEIGHTS];
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", pi->fn);
    CLCNN_TRY(clcnn__check_tensor(x, device, pi->fn, "input"));
    CLCNN_TRY(clcnn__check_tensor(dy, device, pi->fn, "output gradient dy"));
    CLCNN_TRY(clcnn__check_tensor(dw, device, pi->fn, "weight gradient dw"));
    clcnn__conv_problem pb;
    CLCNN_TRY(clcnn__conv_make_problem(clcnn_tensor_shape(x), clcnn_tensor_shape(dw), params, &pb));
    CLCNN_TRY(check_shape(pi->fn, dy, "output gradient dy", pb.y, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(pi, &pb, device, algo, &s));
    const clcnn__conv_args args = {clcnn_tensor_buffer(x), clcnn_tensor_buffer(dw), NULL,
                                   clcnn_tensor_buffer(dy), NULL};
    return run_solver(device, pi, &pb, s, &args, dw, workspace, workspace_bytes);
}

clcnn_status clcnn_conv2d_backward_bias(clcnn_device *device, const clcnn_tensor *dy,
                                        clcnn_tensor *db)
{
    static const char fn[] = "conv2d_backward_bias";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", fn);
    CLCNN_TRY(clcnn__check_tensor(dy, device, fn, "output gradient dy"));
    CLCNN_TRY(clcnn__check_tensor(db, device, fn, "bias gradient db"));
    const clcnn_shape s = clcnn_tensor_shape(dy);
    CLCNN_FAIL_IF(clcnn_tensor_count(db) != s.c, CLCNN_STATUS_BAD_SHAPE,
                  "%s: db has %zu elements, dy (%zu,%zu,%zu,%zu) has K=%zu channels", fn,
                  clcnn_tensor_count(db), s.n, s.c, s.h, s.w, s.c);
    CLCNN_FAIL_IF(clcnn_tensor_count(dy) >= ((size_t)1 << 31), CLCNN_STATUS_UNSUPPORTED,
                  "%s: dy has 2^31 elements or more", fn);
    cl_kernel k;
    CLCNN_TRY(
        clcnn__kernel_create(device, "conv2d_bwd_direct.cl", NULL, "clcnn_conv2d_bwd_bias", &k));
    cl_mem dyb = clcnn_tensor_buffer(dy), dbb = clcnn_tensor_buffer(db);
    cl_int4 dims = {{(cl_int)s.n, (cl_int)s.c, (cl_int)(s.h * s.w), 0}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &dyb}, {sizeof(cl_mem), &dbb}, {sizeof dims, &dims}};
    clcnn_status st = clcnn__set_args(k, fn, kargs, 3);
    /* One work-item per group, as the direct solvers (a fixed local size compiles once). */
    const size_t global[3] = {s.c, 1, 1}, local[3] = {1, 1, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(device, k, fn, 3, global, local, NULL);
    clReleaseKernel(k);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(db);
    return st;
}

/* ---- find mode --------------------------------------------------------------------------------
 */

/* One backward problem under find: its pass, buffers and output. */
typedef struct find_ctx {
    clcnn_device *dev;
    const pass_info *pi;
    const clcnn__conv_problem *pb;
    clcnn__conv_args args;
    clcnn_tensor *out;
} find_ctx;

static clcnn_status find_trial_run(void *ctx, const clcnn__conv_solver *s)
{
    const find_ctx *f = ctx;
    return run_solver(f->dev, f->pi, f->pb, s, &f->args, f->out, NULL, 0);
}

/* Checks the tensors of a backward find and builds its problem. */
static clcnn_status find_prepare(clcnn_device *device, clcnn_conv_pass pass, const clcnn_tensor *x,
                                 const clcnn_tensor *w, const clcnn_tensor *dy,
                                 const clcnn_conv_params *params, clcnn_tensor *out,
                                 clcnn__conv_problem *pb)
{
    static const char fn[] = "conv2d_backward_find";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", fn);
    CLCNN_FAIL_IF(!is_backward(pass), CLCNN_STATUS_INVALID_ARG,
                  "%s: pass %d is not a backward pass", fn, (int)pass);
    const bool data = pass == CLCNN_CONV_PASS_BWD_DATA;
    CLCNN_TRY(clcnn__check_tensor(dy, device, fn, "output gradient dy"));
    CLCNN_TRY(clcnn__check_tensor(data ? w : x, device, fn, data ? "weight" : "input"));
    CLCNN_TRY(clcnn__check_tensor(out, device, fn, data ? "input gradient" : "weight gradient"));
    clcnn_shape xs = data ? clcnn_tensor_shape(out) : clcnn_tensor_shape(x);
    clcnn_shape ws = data ? clcnn_tensor_shape(w) : clcnn_tensor_shape(out);
    CLCNN_TRY(clcnn__conv_make_problem(xs, ws, params, pb));
    return check_shape(fn, dy, "output gradient dy", pb->y, pb);
}

clcnn_status clcnn_conv2d_backward_find(clcnn_device *device, clcnn_conv_pass pass,
                                        const clcnn_tensor *x, const clcnn_tensor *w,
                                        const clcnn_tensor *dy, const clcnn_conv_params *params,
                                        clcnn_tensor *out, int repeat, clcnn_conv_perf *perf,
                                        size_t capacity, size_t *count)
{
    CLCNN_FAIL_IF(count == NULL || (perf == NULL && capacity > 0), CLCNN_STATUS_INVALID_ARG,
                  "conv2d_backward_find: NULL output");
    clcnn__conv_problem pb;
    CLCNN_TRY(find_prepare(device, pass, x, w, dy, params, out, &pb));
    const pass_info *pi = &passes[pass];
    const bool data = pass == CLCNN_CONV_PASS_BWD_DATA;
    find_ctx f = {device, pi, &pb, {0}, out};
    const size_t floats = clcnn_tensor_count(out);
    if (data)
        f.args = (clcnn__conv_args){clcnn_tensor_buffer(out), clcnn_tensor_buffer(w), NULL,
                                    clcnn_tensor_buffer(dy), w};
    else
        f.args = (clcnn__conv_args){clcnn_tensor_buffer(x), clcnn_tensor_buffer(out), NULL,
                                    clcnn_tensor_buffer(dy), NULL};
    float *ref = malloc(floats * sizeof *ref), *got = malloc(floats * sizeof *got);
    clcnn_status st = ref != NULL && got != NULL
                          ? CLCNN_OK
                          : CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY,
                                      "%s find: cannot allocate %zu floats", pi->fn, 2 * floats);
    /* The direct solver is the reference the others are checked against. */
    const clcnn__conv_solver *direct = find_solver(pi, CLCNN_CONV_ALGO_DIRECT);
    if (st == CLCNN_OK)
        st = run_solver(device, pi, &pb, direct, &f.args, out, NULL, 0);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(out, ref, floats);
    clcnn_conv_perf rows[8];
    memset(rows, 0, sizeof rows);
    const size_t n = pi->count < 8 ? pi->count : 8;
    const clcnn__conv_trial trial = {device, &pb, find_trial_run, &f, out, floats};
    for (size_t i = 0; i < n && st == CLCNN_OK; i++)
        clcnn__conv_measure(&trial, pi->solvers[i], repeat, ref, got, &rows[i]);
    free(ref);
    free(got);
    if (st != CLCNN_OK)
        return st;
    clcnn_clear_error();
    clcnn__conv_sort_perf(rows, n);
    if (rows[0].status == CLCNN_OK && rows[0].verified) {
        const clcnn__conv_solver *best = find_solver(pi, rows[0].algo);
        char key[256];
        clcnn__conv_problem_key(&pb, key, sizeof key);
        st = clcnn__tune_db_record(device, pi->db, key, best->name, rows[0].time_ms * 1e3, true);
        if (st == CLCNN_OK)
            st = run_solver(device, pi, &pb, best, &f.args, out, NULL, 0);
    }
    if (st != CLCNN_OK)
        return st;
    size_t k = capacity < n ? capacity : n;
    if (k > 0)
        memcpy(perf, rows, k * sizeof rows[0]);
    *count = k;
    return CLCNN_OK;
}
