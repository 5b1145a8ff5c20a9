/* 2-D pooling forward and backward: parameter and shape validation, the choice between the
 * generic kernels and the vectorized 2x2 stride-2 ones, and the public entry points. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clcnn/pool.h"
#include "log_impl.h"
#include "ops_impl.h"
#include "pool_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"
#include "tune_db_impl.h"

#define POOL_SOURCE "pool.cl"
#define POOL_INDICES_FLAG 1 /* misc.w bit in kernels/cl/pool.cl */

_Static_assert(CLCNN_POOL_KIND_COUNT == 4, "kernels/cl/pool.cl knows four pooling kinds");

/* A validated problem: the input and output shapes and the effective window. */
typedef struct pool_problem {
    clcnn_shape x, y;
    size_t r, s, sh, sw, ph, pw;
    clcnn_pool_kind kind;
} pool_problem;

clcnn_pool_params clcnn_pool_params_default(clcnn_pool_kind kind)
{
    clcnn_pool_params p = {0};
    p.kind = kind;
    p.window_h = p.window_w = 2;
    p.stride_h = p.stride_w = 2;
    return p;
}

const char *clcnn_pool_kind_name(clcnn_pool_kind kind)
{
    switch (kind) {
#define KIND_NAME_(name, token, value)                                                             \
    case CLCNN_POOL_##name:                                                                        \
        return token;
        CLCNN_POOL_KIND_LIST(KIND_NAME_)
#undef KIND_NAME_
    default:
        return NULL;
    }
}

clcnn_status clcnn_pool_kind_parse(const char *token, clcnn_pool_kind *kind)
{
    CLCNN_FAIL_IF(token == NULL || kind == NULL, CLCNN_STATUS_INVALID_ARG,
                  "pool kind: NULL argument");
#define KIND_PARSE_(name, tok, value)                                                              \
    if (strcmp(token, tok) == 0) {                                                                 \
        *kind = CLCNN_POOL_##name;                                                                 \
        return CLCNN_OK;                                                                           \
    }
    CLCNN_POOL_KIND_LIST(KIND_PARSE_)
#undef KIND_PARSE_
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "pool kind: unknown kind '%s' (known: %s)", token,
                     "max, avg, avg-exclude-pad, l2");
}

/* Output extent along one axis (the caller has checked in + 2 * pad >= k and pad < k). */
static size_t out_extent(size_t in, size_t pad, size_t k, size_t stride, bool ceil_mode)
{
    size_t span = in + 2 * pad - k;
    size_t n = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* PyTorch: the last window must start inside the input or the left padding. */
    if (ceil_mode && (n - 1) * stride >= in + pad)
        n--;
    return n;
}

static clcnn_status make_problem(clcnn_shape x, const clcnn_pool_params *p, pool_problem *pb)
{
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_INVALID_ARG, "pool: NULL parameters");
    CLCNN_FAIL_IF(clcnn_pool_kind_name(p->kind) == NULL, CLCNN_STATUS_INVALID_ARG,
                  "pool: unknown kind %d", (int)p->kind);
    size_t count;
    CLCNN_TRY(clcnn_shape_count(x, &count));
    pool_problem q = {.x = x, .kind = p->kind};
    if (p->global) {
        q.r = x.h;
        q.s = x.w;
        q.sh = q.sw = 1;
    } else {
        q.r = p->window_h;
        q.s = p->window_w;
        q.sh = p->stride_h;
        q.sw = p->stride_w;
        q.ph = p->pad_h;
        q.pw = p->pad_w;
    }
    CLCNN_FAIL_IF(q.r == 0 || q.s == 0 || q.sh == 0 || q.sw == 0, CLCNN_STATUS_INVALID_ARG,
                  "pool: window %zux%zu and stride %zux%zu must be >= 1", q.r, q.s, q.sh, q.sw);
    /* The kernels index a plane with int. */
    const size_t big = (size_t)1 << 30;
    CLCNN_FAIL_IF(q.r >= big || q.s >= big || q.sh >= big || q.sw >= big || q.ph >= big ||
                      q.pw >= big || x.h * x.w >= ((size_t)1 << 31) || x.n * x.c >= big,
                  CLCNN_STATUS_BAD_SHAPE,
                  "pool: input (%zu,%zu,%zu,%zu): a plane of 2^31 elements, 2^30 planes, or a "
                  "window, stride or pad of 2^30 or more",
                  x.n, x.c, x.h, x.w);
    /* A window wholly inside the padding would have nothing to pool. */
    CLCNN_FAIL_IF(q.ph >= q.r || q.pw >= q.s, CLCNN_STATUS_BAD_SHAPE,
                  "pool: padding %zux%zu must be smaller than the window %zux%zu", q.ph, q.pw, q.r,
                  q.s);
    CLCNN_FAIL_IF(x.h + 2 * q.ph < q.r || x.w + 2 * q.pw < q.s, CLCNN_STATUS_BAD_SHAPE,
                  "pool: empty output: input %zux%zu padded by %zu,%zu is smaller than the window "
                  "%zux%zu",
                  x.h, x.w, q.ph, q.pw, q.r, q.s);
    bool ceil_mode = p->ceil_mode && !p->global;
    q.y = (clcnn_shape){x.n, x.c, out_extent(x.h, q.ph, q.r, q.sh, ceil_mode),
                        out_extent(x.w, q.pw, q.s, q.sw, ceil_mode)};
    *pb = q;
    return CLCNN_OK;
}

clcnn_status clcnn_pool_output_shape(clcnn_shape input, const clcnn_pool_params *params,
                                     clcnn_shape *output)
{
    CLCNN_FAIL_IF(output == NULL, CLCNN_STATUS_INVALID_ARG, "pool: NULL output shape");
    pool_problem pb;
    CLCNN_TRY(make_problem(input, params, &pb));
    *output = pb.y;
    return CLCNN_OK;
}

static bool same_shape(clcnn_shape a, clcnn_shape b)
{
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

/* Checks that [in] t exists, lives on dev and has shape want; what names it in messages. */
static clcnn_status check_tensor(const clcnn_tensor *t, const clcnn_device *dev, clcnn_shape want,
                                 const char *op, const char *what)
{
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL %s", op, what);
    CLCNN_FAIL_IF(clcnn_tensor_device(t) != dev, CLCNN_STATUS_INVALID_ARG,
                  "%s: %s lives on another device", op, what);
    clcnn_shape s = clcnn_tensor_shape(t);
    CLCNN_FAIL_IF(!same_shape(s, want), CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s is (%zu,%zu,%zu,%zu) but must be (%zu,%zu,%zu,%zu)", op, what, s.n, s.c,
                  s.h, s.w, want.n, want.c, want.h, want.w);
    return CLCNN_OK;
}

/* Checks an indices buffer: only for MAX, at least one cl_int per output. */
static clcnn_status check_indices(cl_mem indices, const pool_problem *pb, const char *op)
{
    if (indices == NULL)
        return CLCNN_OK;
    CLCNN_FAIL_IF(pb->kind != CLCNN_POOL_MAX, CLCNN_STATUS_INVALID_ARG,
                  "%s: indices are only for max pooling, not %s", op,
                  clcnn_pool_kind_name(pb->kind));
    size_t bytes = 0;
    cl_int err = clGetMemObjectInfo(indices, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clGetMemObjectInfo(indices)", op);
    size_t need = pb->y.n * pb->y.c * pb->y.h * pb->y.w * sizeof(cl_int);
    CLCNN_FAIL_IF(bytes < need, CLCNN_STATUS_INVALID_ARG,
                  "%s: indices buffer has %zu bytes, output (%zu,%zu,%zu,%zu) needs %zu", op, bytes,
                  pb->y.n, pb->y.c, pb->y.h, pb->y.w, need);
    return CLCNN_OK;
}

/* 2x2 windows, stride 2, no padding: the vectorized kernels. */
static bool is_2x2s2(const pool_problem *pb)
{
    return pb->r == 2 && pb->s == 2 && pb->sh == 2 && pb->sw == 2 && pb->ph == 0 && pb->pw == 0;
}

/* ---- the forward's parameter space (cltune --solver pool) ---------------------------------- */

/* POOL_VW, the 2x2 stride-2 kernels' outputs of a row per work-item (the kernel file's default
 * KERNEL_VW), and the forward kernels' work-group width (0: the driver's choice). */
typedef struct pool_config {
    int vw, lws;
} pool_config;

#define KERNEL_VW 8

enum { P_VW, P_LWS, P_COUNT };

static const char *const param_names[P_COUNT] = {"POOL_VW", "LWS"};

static void key_of(const pool_problem *pb, char *buf, size_t size)
{
    const size_t pairs[2][2] = {{pb->sh, pb->sw}, {pb->ph, pb->pw}};
    const char tags[2] = {'u', 'p'};
    int n = snprintf(buf, size, "n%zuc%zuh%zuw%zur%zus%zu", pb->x.n, pb->x.c, pb->x.h, pb->x.w,
                     pb->r, pb->s);
    for (int i = 0; i < 2 && n > 0 && (size_t)n < size; i++) {
        if (pairs[i][0] == pairs[i][1])
            n += snprintf(buf + n, size - (size_t)n, "%c%zu", tags[i], pairs[i][0]);
        else
            n +=
                snprintf(buf + n, size - (size_t)n, "%c%zux%zu", tags[i], pairs[i][0], pairs[i][1]);
    }
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "m%d", (int)pb->kind);
}

static bool is_2x2s2(const pool_problem *pb);

/* The 2x2 stride-2 kernels' width for a problem: of 8, 4 and 2 outputs per work-item, the one
 * that leaves the fewest of a row's outputs to the scalar fallback at the right edge (the larger
 * on a tie), so that narrow maps are not mostly fallback: a 28x28 input (14 outputs a row) takes
 * 2 (8 would vectorize 8 of them), 56x56 takes 4 and 224x224 8. cltune's exhaustive search on
 * POCL's CPU device chose these widths on all seven LeNet and VGG-16 shapes it tuned, 2.2-4.0x
 * faster than 8 on the narrow ones (tools/tune/pocl). Only the kernel file's width on devices
 * that load prebuilt binaries. */
static int default_vw(const pool_problem *pb, const clcnn_device *dev)
{
    if (!is_2x2s2(pb) || !dev->info.compiler_available)
        return KERNEL_VW;
    static const int widths[] = {8, 4, 2};
    const size_t full = pb->x.w / 2; /* outputs whose two columns are both in the row */
    int best = KERNEL_VW;
    size_t covered = 0;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        const size_t c = full / (size_t)widths[i] * (size_t)widths[i];
        if (c > covered) {
            covered = c;
            best = widths[i];
        }
    }
    return best;
}

static pool_config defaults_for(const pool_problem *pb, const clcnn_device *dev)
{
    return (pool_config){default_vw(pb, dev), 0};
}

/* The build options for width vw: NULL for the kernel file's own, else "-DPOOL_VW=vw" in buf. */
static const char *width_options(int vw, char *buf, size_t size)
{
    if (vw == KERNEL_VW)
        return NULL;
    snprintf(buf, size, "-DPOOL_VW=%d", vw);
    return buf;
}

/* Work-items along axis 0 of the forward. */
static size_t forward_columns(const pool_problem *pb, const pool_config *c)
{
    return is_2x2s2(pb) ? (pb->y.w + (size_t)c->vw - 1) / (size_t)c->vw : pb->y.w;
}

/* The constraint: the defaults always; otherwise a compiler for another width, which only the
 * 2x2 stride-2 kernel has, and a work-group within the device's limits and not mostly past the
 * columns. */
static bool config_valid(const pool_problem *pb, const clcnn_device *dev, const pool_config *c)
{
    if (c->vw == default_vw(pb, dev) && c->lws == 0)
        return true;
    if (c->vw != KERNEL_VW && (!is_2x2s2(pb) || !dev->info.compiler_available))
        return false;
    if (c->lws > 0 && ((size_t)c->lws > dev->info.max_work_group_size ||
                       (size_t)c->lws > dev->info.max_work_item_sizes[0] ||
                       (size_t)c->lws > 2 * forward_columns(pb, c)))
        return false;
    return true;
}

static bool pool_valid(const int *v, const void *user)
{
    const clcnn__pool_tuning *t = user;
    pool_problem pb;
    if (make_problem(t->x, &t->params, &pb) != CLCNN_OK) {
        clcnn_clear_error();
        return false;
    }
    const pool_config c = {v[P_VW], v[P_LWS]};
    return config_valid(&pb, t->device, &c);
}

clcnn_status clcnn__pool_key(clcnn_shape x, const clcnn_pool_params *params, char *buf, size_t size)
{
    pool_problem pb;
    CLCNN_TRY(make_problem(x, params, &pb));
    key_of(&pb, buf, size);
    return CLCNN_OK;
}

clcnn_status clcnn__pool_space(const clcnn_device *device, clcnn_shape x,
                               const clcnn_pool_params *params, clcnn__pool_tuning *tuning,
                               clcnn__tune_space *space)
{
    pool_problem pb;
    CLCNN_TRY(make_problem(x, params, &pb));
    tuning->x = x;
    tuning->y = pb.y;
    tuning->params = *params;
    tuning->device = device;
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const clcnn__tune_param p[P_COUNT] = {
        /* kernels/cl/pool.cl: 2, 4 or 8 outputs */
        {param_names[P_VW], {2, 4, 8}, 3},
        {param_names[P_LWS], {0, 4, 16, 64}, 4},
    };
    memcpy(space->params, p, sizeof p);
    const pool_config d = defaults_for(&pb, device);
    space->defaults[P_VW] = d.vw;
    space->defaults[P_LWS] = d.lws;
    space->valid = pool_valid;
    space->user = tuning;
    return CLCNN_OK;
}

/* The database's point for this problem, else the nearest stored problem's with the same
 * window, stride and kind, when valid here; else the defaults. */
static pool_config config_for(const pool_problem *pb, const clcnn_device *dev)
{
    char key[160];
    key_of(pb, key, sizeof key);
    clcnn__tune_db_match near[8];
    /* The database is read lazily under the device's lock: logically const. */
    size_t n = clcnn__tune_db_nearest((clcnn_device *)dev, CLCNN__POOL_DB_KERNEL, key,
                                      CLCNN__POOL_NEAREST_SAME, param_names, P_COUNT, near, 8);
    for (size_t i = 0; i < n; i++) {
        const pool_config c = {near[i].values[P_VW], near[i].values[P_LWS]};
        if (config_valid(pb, dev, &c)) {
            if (strcmp(near[i].problem, key) != 0)
                CLCNN_DEBUG("pool", "%s uses the tuning database entry of %s", key,
                            near[i].problem);
            return c;
        }
    }
    return defaults_for(pb, dev);
}

/* Creates [in] name (built with [in] options, may be NULL), sets the common arguments after
 * [in] buffers and launches it with work-groups of lws along axis 0 (0: the driver's). */
static clcnn_status launch(clcnn_device *dev, const pool_problem *pb, const char *name,
                           const char *what, const cl_mem *buffers, size_t nbuf, bool indices,
                           const size_t global_in[3], const char *options, size_t lws)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, POOL_SOURCE, options, name, &k));
    cl_int4 dims = {{(cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->y.h, (cl_int)pb->y.w}};
    cl_int4 win = {{(cl_int)pb->r, (cl_int)pb->s, (cl_int)pb->sh, (cl_int)pb->sw}};
    cl_int4 misc = {
        {(cl_int)pb->ph, (cl_int)pb->pw, (cl_int)pb->kind, indices ? POOL_INDICES_FLAG : 0}};
    clcnn__kernel_arg kargs[8];
    size_t n = 0;
    for (size_t i = 0; i < nbuf; i++)
        kargs[n++] = (clcnn__kernel_arg){sizeof(cl_mem), buffers[i] != NULL ? &buffers[i] : NULL};
    kargs[n++] = (clcnn__kernel_arg){sizeof dims, &dims};
    kargs[n++] = (clcnn__kernel_arg){sizeof win, &win};
    kargs[n++] = (clcnn__kernel_arg){sizeof misc, &misc};
    clcnn_status st = clcnn__set_args(k, what, kargs, n);
    /* Work-items past the output return at once, so the global size may be rounded up. */
    size_t global[3] = {global_in[0], global_in[1], global_in[2]};
    const size_t local[3] = {lws, 1, 1};
    if (lws > 0)
        global[0] = (global[0] + lws - 1) / lws * lws;
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, what, 3, global, lws > 0 ? local : NULL, NULL);
    clReleaseKernel(k);
    return st;
}

static clcnn_status forward(clcnn_device *device, const clcnn_tensor *x,
                            const clcnn_pool_params *params, clcnn_tensor *y, cl_mem indices,
                            const pool_config *tuned)
{
    CLCNN_FAIL_IF(device == NULL || x == NULL, CLCNN_STATUS_INVALID_ARG,
                  "pool_forward: NULL device or input");
    CLCNN_FAIL_IF(clcnn_tensor_device(x) != device, CLCNN_STATUS_INVALID_ARG,
                  "pool_forward: input lives on another device");
    pool_problem pb;
    CLCNN_TRY(make_problem(clcnn_tensor_shape(x), params, &pb));
    CLCNN_TRY(check_tensor(y, device, pb.y, "pool_forward", "output"));
    CLCNN_FAIL_IF(x == y, CLCNN_STATUS_INVALID_ARG, "pool_forward: output aliases the input");
    CLCNN_TRY(check_indices(indices, &pb, "pool_forward"));
    const cl_mem bufs[] = {clcnn_tensor_buffer(x), clcnn_tensor_buffer(y), indices};
    const size_t planes = pb.x.n * pb.x.c;
    const pool_config c = tuned != NULL ? *tuned : config_for(&pb, device);
    char options[24];
    const char *opts = width_options(c.vw, options, sizeof options);
    const size_t global[3] = {forward_columns(&pb, &c), pb.y.h, planes};
    clcnn_status st;
    if (is_2x2s2(&pb))
        st = launch(device, &pb, "clcnn_pool_fwd_2x2s2", "pool_forward (2x2 stride 2)", bufs, 3,
                    indices != NULL, global, opts, (size_t)c.lws);
    else
        st = launch(device, &pb, "clcnn_pool_fwd", "pool_forward", bufs, 3, indices != NULL, global,
                    opts, (size_t)c.lws);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(y);
    return st;
}

clcnn_status clcnn_pool_forward(clcnn_device *device, const clcnn_tensor *x,
                                const clcnn_pool_params *params, clcnn_tensor *y, cl_mem indices)
{
    return forward(device, x, params, y, indices, NULL);
}

clcnn_status clcnn__pool_forward_with(clcnn_device *device, const clcnn_tensor *x,
                                      const clcnn_pool_params *params, clcnn_tensor *y,
                                      const int *values)
{
    const pool_config c = {values[P_VW], values[P_LWS]};
    return forward(device, x, params, y, NULL, &c);
}

clcnn_status clcnn_pool_backward(clcnn_device *device, const clcnn_tensor *x, const clcnn_tensor *y,
                                 const clcnn_tensor *dy, cl_mem indices,
                                 const clcnn_pool_params *params, clcnn_tensor *dx)
{
    static const char op[] = "pool_backward";
    CLCNN_FAIL_IF(device == NULL || dx == NULL, CLCNN_STATUS_INVALID_ARG,
                  "pool_backward: NULL device or input gradient");
    CLCNN_FAIL_IF(clcnn_tensor_device(dx) != device, CLCNN_STATUS_INVALID_ARG,
                  "pool_backward: input gradient lives on another device");
    pool_problem pb;
    CLCNN_TRY(make_problem(clcnn_tensor_shape(dx), params, &pb));
    CLCNN_TRY(check_tensor(dy, device, pb.y, op, "output gradient dy"));
    CLCNN_TRY(check_indices(indices, &pb, op));
    const bool need_x = pb.kind == CLCNN_POOL_L2 || (pb.kind == CLCNN_POOL_MAX && indices == NULL);
    const bool need_y = pb.kind == CLCNN_POOL_L2;
    if (need_x || x != NULL)
        CLCNN_TRY(check_tensor(x, device, pb.x, op, "input x"));
    if (need_y || y != NULL)
        CLCNN_TRY(check_tensor(y, device, pb.y, op, "output y"));
    CLCNN_FAIL_IF(dx == x || dx == y || dx == dy, CLCNN_STATUS_INVALID_ARG,
                  "%s: the input gradient aliases another argument", op);
    const cl_mem bufs[] = {need_x ? clcnn_tensor_buffer(x) : NULL,
                           need_y ? clcnn_tensor_buffer(y) : NULL, clcnn_tensor_buffer(dy), indices,
                           clcnn_tensor_buffer(dx)};
    const size_t planes = pb.x.n * pb.x.c;
    clcnn_status st;
    if (is_2x2s2(&pb)) {
        const int vw = default_vw(&pb, device);
        char options[24];
        const size_t cols = 2 * (size_t)vw;
        const size_t global[3] = {(pb.x.w + cols - 1) / cols, (pb.x.h + 1) / 2, planes};
        st = launch(device, &pb, "clcnn_pool_bwd_2x2s2", "pool_backward (2x2 stride 2)", bufs, 5,
                    indices != NULL, global, width_options(vw, options, sizeof options), 0);
    } else {
        const size_t global[3] = {pb.x.w, pb.x.h, planes};
        st = launch(device, &pb, "clcnn_pool_bwd", op, bufs, 5, indices != NULL, global, NULL, 0);
    }
    if (st == CLCNN_OK)
        clcnn__tensor_touch(dx);
    return st;
}
