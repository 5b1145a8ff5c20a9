/* Backward solvers built on other kernels (kernels/cl/conv2d_bwd_igemm.cl):
 *
 * - backward weights as an implicit GEMM: the input padded once and dy transposed to
 *   (n, pixel, k) in the workspace, then one register-blocked reduction per block of dw, over
 *   chunks of images that fit the workspace bound;
 * - backward data as a forward convolution: for stride 1 and one group, dx is dy convolved
 *   with the weights' input and output channels swapped, the flip mode toggled and padding
 *   (R-1)*d - pad, so the forward Winograd solvers run it. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conv2d_bwd_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tune_db_impl.h"

#define FILE_CL "conv2d_bwd_igemm.cl"
#define IG_MR 7 /* rows (c, r, s) per work-item, as in the kernel */
#define IG_KV 4 /* float16s of output channels per work-item, as in the kernel */

/* Images per chunk: what fits in this many bytes of workspace (or one image). */
#define CHUNK_BYTES ((size_t)64 << 20)

/* The dyt region starts at a multiple of this many bytes. */
#define REGION_ALIGN 4096

static const size_t local_one[3] = {1, 1, 1};

static size_t chunk_limit = CHUNK_BYTES;

/* One launch configuration, a point of the parameter space (cltune --pass bwd-weights): rows
 * per work-item (IG_MR), float16s of channels per work-item (IG_KV), the chunk bound in MiB. */
typedef struct igemm_config {
    int mr, kv, chunk_mib;
} igemm_config;

/* The defaults: the kernel file's blocking, and chunks of images bounded by 64 MiB of
 * workspace, or by 1 MiB on CPU devices. There every work-item of a launch streams the chunk's
 * whole transposed dy, which then stays in a core's L2 cache (2 MiB here) instead of coming from
 * memory once per work-item: on POCL, LeNet's conv2 at N=64 ran at 154-162 GFLOP/s against
 * 95-106 with one 64 MiB chunk, VGG-16's conv4_2 at N=8 took 212-222 ms against 383-416 and
 * conv5_1 71-73 against 79-84, while conv3_2 (56x56) stayed at 380-441 against 422-426
 * (clcnn bench conv --pass bwd-weights --algo implicit_gemm, alternated twice). */
static igemm_config defaults_for(const clcnn_device *dev)
{
    const int mib = dev->info.type == CLCNN_DEVICE_TYPE_CPU ? 1 : (int)(CHUNK_BYTES >> 20);
    return (igemm_config){IG_MR, IG_KV, mib};
}

void clcnn__conv_igemm_limit_chunk(size_t bytes)
{
    chunk_limit = bytes > 0 ? bytes : CHUNK_BYTES;
}

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* ---- backward weights ------------------------------------------------------------------------ */

typedef struct igemm_plan {
    size_t hp, wp;      /* the padded input plane */
    size_t xp_floats;   /* per image */
    size_t dyt_floats;  /* per image */
    size_t chunk;       /* images per chunk; 0 when the solver cannot run */
    size_t dyt_offset;  /* floats from the workspace's start to the dyt region */
    const char *reason; /* why not, when chunk is 0 */
    size_t mr, kb;      /* rows and output channels per work-item */
    char options[32];   /* the kernels' -D options ("" for the file's defaults) */
} igemm_plan;

static igemm_plan make_plan(const clcnn__conv_problem *pb, const clcnn_device *dev,
                            const igemm_config *c)
{
    const clcnn_conv_params *p = &pb->p;
    igemm_plan pl = {0};
    pl.hp = (pb->y.h - 1) * p->stride_h + (pb->w.h - 1) * p->dilation_h + 1;
    pl.wp = (pb->y.w - 1) * p->stride_w + (pb->w.w - 1) * p->dilation_w + 1;
    pl.xp_floats = pb->x.c * pl.hp * pl.wp;
    pl.dyt_floats = pb->y.c * pb->y.h * pb->y.w;
    pl.reason = "";
    pl.mr = (size_t)c->mr;
    pl.kb = 16 * (size_t)c->kv;
    if (c->mr != IG_MR || c->kv != IG_KV)
        snprintf(pl.options, sizeof pl.options, "-DIG_MR=%d -DIG_KV=%d", c->mr, c->kv);
    /* The tests' bound (clcnn__conv_igemm_limit_chunk) wins over a tuned one. */
    const size_t bound = chunk_limit != CHUNK_BYTES ? chunk_limit : (size_t)c->chunk_mib << 20;
    pl.chunk = clcnn__conv_images_per_chunk(pb, dev, pl.xp_floats + pl.dyt_floats + 1024, bound,
                                            &pl.reason);
    const size_t align = REGION_ALIGN / sizeof(float);
    pl.dyt_offset = ceil_div(pl.chunk * pl.xp_floats, align) * align;
    return pl;
}

static bool igemm_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                             const char **reason)
{
    if (pb->p.groups != 1) {
        *reason = "grouped convolutions are not supported";
        return false;
    }
    const igemm_config d = defaults_for(dev);
    igemm_plan pl = make_plan(pb, dev, &d);
    if (pl.chunk == 0) {
        *reason = pl.reason;
        return false;
    }
    return true;
}

/* ---- the parameter space (cltune --pass bwd-weights) ---------------------------------------- */

enum { P_MR, P_KV, P_CHUNK_MIB, P_COUNT };

static const char *const param_names[P_COUNT] = {"IG_MR", "IG_KV", "CHUNK_MIB"};

static igemm_config config_of(const int *v)
{
    igemm_config c = {v[P_MR], v[P_KV], v[P_CHUNK_MIB]};
    return c;
}

/* Accumulators (floats) of one work-item past which registers spill. */
#define MAX_ACCUMULATORS 512

/* The constraint: the defaults always; otherwise a compiler, accumulators within the registers,
 * blocks not mostly past the rows and channels, and a chunk of at least one image. */
static bool igemm_valid(const int *v, const void *user)
{
    const clcnn__conv_tuning *t = user;
    const clcnn__conv_problem *pb = &t->problem;
    const igemm_config c = config_of(v), d = defaults_for(t->device);
    if (memcmp(&c, &d, sizeof c) == 0)
        return true;
    if (!t->device->info.compiler_available)
        return false;
    if (c.mr * c.kv * 16 > MAX_ACCUMULATORS)
        return false;
    if (c.mr > 1 && (size_t)c.mr / 2 >= pb->x.c * pb->w.h * pb->w.w)
        return false;
    if (c.kv > 1 && (size_t)c.kv * 8 >= pb->y.c)
        return false;
    return make_plan(pb, t->device, &c).chunk > 0;
}

static void igemm_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                        const clcnn__conv_tunable *tunable, clcnn__conv_tuning *tuning,
                        clcnn__tune_space *space)
{
    tuning->problem = *pb;
    tuning->device = dev;
    tuning->tunable = tunable;
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const clcnn__tune_param params[P_COUNT] = {
        /* kernels/cl/conv2d_bwd_igemm.cl: 1 to 8 rows, 1 to 4 float16s */
        {param_names[P_MR], {2, 3, 4, 5, 6, 7, 8}, 7},
        {param_names[P_KV], {1, 2, 4}, 3},
        {param_names[P_CHUNK_MIB], {1, 2, 4, 8, 16, 32, 64, 128}, 8},
    };
    memcpy(space->params, params, sizeof params);
    const igemm_config d = defaults_for(dev);
    space->defaults[P_MR] = d.mr;
    space->defaults[P_KV] = d.kv;
    space->defaults[P_CHUNK_MIB] = d.chunk_mib;
    space->valid = igemm_valid;
    space->user = tuning;
}

/* The database's point for this problem, else the nearest stored problem's, when valid here;
 * else the defaults. */
static igemm_config config_for(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    int v[P_COUNT];
    return clcnn__conv_tuned_point(pb, dev, &clcnn__conv_tunable_bwd_weights_igemm, param_names,
                                   P_COUNT, igemm_valid, v)
               ? config_of(v)
               : defaults_for(dev);
}

static size_t workspace_of(const igemm_plan *pl)
{
    return (pl->dyt_offset + pl->chunk * pl->dyt_floats) * sizeof(float);
}

static size_t igemm_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    const igemm_config c = config_for(pb, dev);
    const igemm_plan pl = make_plan(pb, dev, &c);
    return workspace_of(&pl);
}

/* Enqueues kernel name of this file, built for the plan, over global with args, one work-item
 * per work-group. */
static clcnn_status launch(clcnn_device *dev, const igemm_plan *pl, const char *what,
                           const char *name, const clcnn__kernel_arg *args, size_t nargs,
                           const size_t global[3])
{
    return clcnn__launch_options(dev, FILE_CL, pl->options[0] != '\0' ? pl->options : NULL, name,
                                 what, args, nargs, 3, global, local_one);
}

/* One chunk of images [first, first + count): pad, transpose dy, reduce into dw. */
static clcnn_status igemm_chunk(clcnn_device *dev, const clcnn__conv_problem *pb,
                                const clcnn__conv_args *args, cl_mem ws, const igemm_plan *pl,
                                size_t first, size_t count, const char *what)
{
    const clcnn_conv_params *p = &pb->p;
    const cl_ulong x_off = first * pb->x.c * pb->x.h * pb->x.w;
    const cl_int h = (cl_int)pb->x.h, w = (cl_int)pb->x.w, hp = (cl_int)pl->hp, wp = (cl_int)pl->wp,
                 top = (cl_int)p->pad_h, left = (cl_int)p->pad_w;
    const clcnn__kernel_arg pad_args[] = {{sizeof(cl_mem), &args->x},
                                          {sizeof x_off, &x_off},
                                          {sizeof(cl_mem), &ws},
                                          {sizeof h, &h},
                                          {sizeof w, &w},
                                          {sizeof hp, &hp},
                                          {sizeof wp, &wp},
                                          {sizeof top, &top},
                                          {sizeof left, &left}};
    const size_t pad_global[3] = {pl->hp, count * pb->x.c, 1};
    CLCNN_TRY(launch(dev, pl, what, "clcnn_conv2d_igemm_pad", pad_args, 9, pad_global));

    const cl_ulong dy_off = first * pl->dyt_floats, dyt_off = pl->dyt_offset;
    const cl_int k = (cl_int)pb->y.c, hw = (cl_int)(pb->y.h * pb->y.w);
    const clcnn__kernel_arg dyt_args[] = {
        {sizeof(cl_mem), &args->y}, {sizeof dy_off, &dy_off}, {sizeof(cl_mem), &ws},
        {sizeof dyt_off, &dyt_off}, {sizeof k, &k},           {sizeof hw, &hw}};
    const size_t dyt_global[3] = {pb->y.h * pb->y.w, count, 1};
    CLCNN_TRY(launch(dev, pl, what, "clcnn_conv2d_igemm_dyt", dyt_args, 6, dyt_global));

    cl_int4 g0 = {{(cl_int)pb->x.c, hp, wp, k}};
    cl_int4 g1 = {{(cl_int)pb->w.h, (cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w}};
    cl_int4 g2 = {
        {(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->dilation_h, (cl_int)p->dilation_w}};
    cl_int4 g3 = {{(cl_int)count, p->mode == CLCNN_CONV_CONVOLUTION ? 1 : 0, first > 0 ? 1 : 0, 0}};
    const clcnn__kernel_arg main_args[] = {{sizeof(cl_mem), &ws},      {sizeof(cl_mem), &ws},
                                           {sizeof dyt_off, &dyt_off}, {sizeof(cl_mem), &args->w},
                                           {sizeof g0, &g0},           {sizeof g1, &g1},
                                           {sizeof g2, &g2},           {sizeof g3, &g3}};
    const size_t crs = pb->x.c * pb->w.h * pb->w.w;
    const size_t main_global[3] = {ceil_div(crs, pl->mr), ceil_div(pb->y.c, pl->kb), 1};
    return launch(dev, pl, what, "clcnn_conv2d_bwdw_igemm", main_args, 8, main_global);
}

static clcnn_status igemm_run_config(clcnn_device *dev, const clcnn__conv_problem *pb,
                                     const clcnn__conv_args *args, cl_mem workspace,
                                     const igemm_config *c)
{
    static const char what[] = "conv2d_backward_weights: solver implicit_gemm";
    const igemm_plan pl = make_plan(pb, dev, c);
    CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, "%s: no workspace", what);
    CLCNN_FAIL_IF(pl.chunk == 0, CLCNN_STATUS_UNSUPPORTED, "%s: %s", what, pl.reason);
    CLCNN_TRY(clcnn__check_workspace(workspace, workspace_of(&pl), what));
    /* The pad and transpose of a chunk overwrite the workspace the chunk before read: the
     * in-order queue runs them after its reduction. */
    for (size_t first = 0; first < pb->x.n; first += pl.chunk) {
        size_t count = pb->x.n - first < pl.chunk ? pb->x.n - first : pl.chunk;
        CLCNN_TRY(igemm_chunk(dev, pb, args, workspace, &pl, first, count, what));
    }
    return CLCNN_OK;
}

static clcnn_status igemm_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                              const clcnn__conv_args *args, cl_mem workspace)
{
    const igemm_config c = config_for(pb, dev);
    return igemm_run_config(dev, pb, args, workspace, &c);
}

static size_t igemm_workspace_with(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                   const clcnn__conv_tunable *tunable, const int *values)
{
    (void)tunable;
    const igemm_config c = config_of(values);
    const igemm_plan pl = make_plan(pb, dev, &c);
    return workspace_of(&pl);
}

/* Runs one point of the space; ms is left to cltune, which times the call and a
 * clcnn_device_finish on the host clock (host_clock). */
static clcnn_status igemm_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                   const clcnn__conv_args *args, cl_mem workspace,
                                   const clcnn__conv_tunable *tunable, const int *values,
                                   double *ms)
{
    (void)ms;
    (void)tunable;
    const igemm_config c = config_of(values);
    return igemm_run_config(dev, pb, args, workspace, &c);
}

const clcnn__conv_tunable clcnn__conv_tunable_bwd_weights_igemm = {
    .solver = &clcnn__conv_bwd_weights_igemm,
    .pass = CLCNN_CONV_PASS_BWD_WEIGHTS,
    .db_kernel = "conv2d_bwd_weights_implicit_gemm",
    .space = igemm_space,
    .workspace_with = igemm_workspace_with,
    .run_with = igemm_run_with,
    .host_clock = true,
};

const clcnn__conv_solver clcnn__conv_bwd_weights_igemm = {
    .name = "implicit_gemm",
    .algo = CLCNN_CONV_ALGO_IMPLICIT_GEMM,
    .applicable = igemm_applicable,
    .workspace_size = igemm_workspace,
    .run = igemm_run,
    /* fp32 sums of N*Ho*Wo products in a fixed order, as the direct solver's. */
    .tolerance = 1e-9,
};

/* ---- backward data as a forward convolution ----------------------------------------------------
 */

/* The forward problem that computes dx: dy convolved with the swapped weights. */
static bool rotated_problem(const clcnn__conv_problem *pb, clcnn__conv_problem *out,
                            const char **reason)
{
    const clcnn_conv_params *p = &pb->p;
    if (p->stride_h != 1 || p->stride_w != 1 || p->groups != 1) {
        *reason = "needs stride 1 and one group";
        return false;
    }
    const size_t reach_h = (pb->w.h - 1) * p->dilation_h, reach_w = (pb->w.w - 1) * p->dilation_w;
    if (p->pad_h > reach_h || p->pad_w > reach_w) {
        *reason = "padding wider than the kernel's reach";
        return false;
    }
    clcnn_conv_params q = *p;
    q.pad_h = reach_h - p->pad_h;
    q.pad_w = reach_w - p->pad_w;
    q.relu = false;
    q.mode =
        p->mode == CLCNN_CONV_CONVOLUTION ? CLCNN_CONV_CROSS_CORRELATION : CLCNN_CONV_CONVOLUTION;
    clcnn_shape w = {pb->w.c, pb->w.n, pb->w.h, pb->w.w};
    if (clcnn__conv_make_problem(pb->y, w, &q, out) != CLCNN_OK) {
        clcnn_clear_error();
        *reason = "the rotated problem is not a valid convolution";
        return false;
    }
    if (out->y.n != pb->x.n || out->y.c != pb->x.c || out->y.h != pb->x.h || out->y.w != pb->x.w) {
        *reason = "the rotated problem does not give the input's shape";
        return false;
    }
    return true;
}

clcnn_conv_algo clcnn__conv_bwd_data_rotated_auto(const clcnn__conv_problem *pb,
                                                  const clcnn_device *dev)
{
    clcnn__conv_problem q;
    const char *why;
    clcnn_conv_algo algo = CLCNN_CONV_ALGO_AUTO;
    /* The forward's AUTO reads the tuning database under the device's lock: logically const. */
    if (rotated_problem(pb, &q, &why) &&
        clcnn_conv2d_auto_algo((clcnn_device *)dev, q.x, q.w, &q.p, &algo) != CLCNN_OK) {
        clcnn_clear_error();
        algo = CLCNN_CONV_ALGO_AUTO;
    }
    return algo;
}

static bool rotated_applicable(const clcnn__conv_solver *fwd, const clcnn__conv_problem *pb,
                               const clcnn_device *dev, const char **reason)
{
    clcnn__conv_problem q;
    return rotated_problem(pb, &q, reason) && fwd->applicable(&q, dev, reason);
}

static size_t rotated_workspace(const clcnn__conv_solver *fwd, const clcnn__conv_problem *pb,
                                const clcnn_device *dev)
{
    clcnn__conv_problem q;
    const char *why;
    if (!rotated_problem(pb, &q, &why) || fwd->workspace_size == NULL)
        return 0;
    return fwd->workspace_size(&q, dev);
}

static clcnn_status rotated_run(const clcnn__conv_solver *fwd, const char *what, clcnn_device *dev,
                                const clcnn__conv_problem *pb, const clcnn__conv_args *args,
                                cl_mem workspace)
{
    clcnn__conv_problem q;
    const char *why = "";
    CLCNN_FAIL_IF(!rotated_problem(pb, &q, &why), CLCNN_STATUS_UNSUPPORTED, "%s: %s", what, why);
    const size_t count = pb->w.n * pb->w.c * pb->w.h * pb->w.w;
    cl_int err;
    cl_mem swapped =
        clCreateBuffer(dev->context, CL_MEM_READ_WRITE, count * sizeof(float), NULL, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clCreateBuffer (%zu bytes of swapped weights)", what,
                            count * sizeof(float));
    const cl_int k = (cl_int)pb->w.n, c = (cl_int)pb->w.c, rs = (cl_int)(pb->w.h * pb->w.w);
    const clcnn__kernel_arg swap_args[] = {{sizeof(cl_mem), &args->w},
                                           {sizeof(cl_mem), &swapped},
                                           {sizeof k, &k},
                                           {sizeof c, &c},
                                           {sizeof rs, &rs}};
    const size_t global[3] = {pb->w.h * pb->w.w, pb->w.c, pb->w.n};
    clcnn_status st = clcnn__launch(dev, FILE_CL, "clcnn_conv2d_swap_kc", what, swap_args, 5, 3,
                                    global, local_one);
    if (st == CLCNN_OK) {
        /* The forward solver reads dy as its input and writes dx as its output. */
        const clcnn__conv_args fargs = {args->y, swapped, NULL, args->x, NULL};
        st = fwd->run(dev, &q, &fargs, workspace);
        if (st != CLCNN_OK)
            clcnn__error_prefix("%s", what);
    }
    clReleaseMemObject(swapped);
    return st;
}

/* tol: the forward solver's NMSE bound (conv2d_winograd.c), which the rotated problem keeps. */
#define ROTATED_ROW(solver, token, ALGO, tol)                                                      \
    static bool solver##_bwd_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,    \
                                        const char **reason)                                       \
    {                                                                                              \
        return rotated_applicable(&clcnn__conv_solver_##solver, pb, dev, reason);                  \
    }                                                                                              \
    static size_t solver##_bwd_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)   \
    {                                                                                              \
        return rotated_workspace(&clcnn__conv_solver_##solver, pb, dev);                           \
    }                                                                                              \
    static clcnn_status solver##_bwd_run(clcnn_device *dev, const clcnn__conv_problem *pb,         \
                                         const clcnn__conv_args *args, cl_mem workspace)           \
    {                                                                                              \
        return rotated_run(&clcnn__conv_solver_##solver,                                           \
                           "conv2d_backward_data: solver " token " (rotated forward)", dev, pb,    \
                           args, workspace);                                                       \
    }                                                                                              \
    const clcnn__conv_solver clcnn__conv_bwd_data_##solver = {                                     \
        .name = (token),                                                                           \
        .algo = CLCNN_CONV_ALGO_##ALGO,                                                            \
        .applicable = solver##_bwd_applicable,                                                     \
        .workspace_size = solver##_bwd_workspace,                                                  \
        .run = solver##_bwd_run,                                                                   \
        .tolerance = (tol),                                                                        \
    };

ROTATED_ROW(winograd2, "winograd2", WINOGRAD2, 1e-10)
ROTATED_ROW(winograd4, "winograd4", WINOGRAD4, 1e-9)
ROTATED_ROW(winograd4_split, "winograd4_split", WINOGRAD4_SPLIT, 1e-9)
