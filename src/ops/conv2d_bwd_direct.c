/* The direct backward solvers (kernels/cl/conv2d_bwd_direct.cl): backward data as a gather over
 * the covering taps, backward weights as a fixed-order reduction per block of dw. Any stride,
 * padding, dilation, groups and flip mode; a zero-padded copy in the workspace when it fits. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conv2d_bwd_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tune_db_impl.h"

#define FILE_CL "conv2d_bwd_direct.cl"

/* The kernel file's defaults (BWD_VW, BWD_YB, BWD_CB, BWDW_KB, BWDW_TB); untuned launches use
 * them unchanged, so one program build serves every problem. */
#define VW 8
#define YB 2
#define CB 8
#define WKB 4
#define WTB 4

/* One launch configuration, a point of a parameter space (cltune --pass bwd-data|bwd-weights):
 * the vector width, then backward data's rows and channels per work-item (BWD_YB, BWD_CB) or
 * backward weights' channels and taps per work-item (BWDW_KB, BWDW_TB). */
typedef struct bwd_config {
    int vw, b1, b2;
} bwd_config;

static const bwd_config data_defaults = {VW, YB, CB}, weights_defaults = {VW, WKB, WTB};

/* The -D options of a configuration ("" for the kernel file's defaults). */
static void config_options(const bwd_config *c, bool data, char *buf, size_t size)
{
    buf[0] = '\0';
    if (data && (c->vw != VW || c->b1 != YB || c->b2 != CB))
        snprintf(buf, size, "-DBWD_VW=%d -DBWD_YB=%d -DBWD_CB=%d", c->vw, c->b1, c->b2);
    if (!data && (c->vw != VW || c->b1 != WKB || c->b2 != WTB))
        snprintf(buf, size, "-DBWD_VW=%d -DBWDW_KB=%d -DBWDW_TB=%d", c->vw, c->b1, c->b2);
}

static const bwd_config *config_for(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                    const clcnn__conv_tunable *t, bwd_config *out);

/* Fixed work-group sizes: POCL compiles a kernel once per local size, so letting it pick one per
 * global size recompiles for every new problem shape (seconds per shape on its CPU device). The
 * heavy kernels run one work-item per group, which costs about a microsecond per work-item
 * against tens of microseconds of work (the copies take a plane per work-item). */
static const size_t local_one[3] = {1, 1, 1};

/* Largest padded copy a solver makes before it reads with bounds checks instead. */
#define MAX_PADDED_BYTES ((size_t)512 << 20)

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

static bool fits_int(const clcnn__conv_problem *pb, const char **reason)
{
    const size_t limit = (size_t)1 << 31; /* the kernels index with int */
    if (pb->x.n * pb->x.c * pb->x.h * pb->x.w >= limit ||
        pb->y.n * pb->y.c * pb->y.h * pb->y.w >= limit ||
        pb->w.n * pb->w.c * pb->w.h * pb->w.w >= limit) {
        *reason = "a tensor has 2^31 elements or more";
        return false;
    }
    return true;
}

static bool direct_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                              const char **reason)
{
    (void)dev;
    return fits_int(pb, reason);
}

/* Whether a padded copy of [elems] floats may go in the workspace. */
static bool padded_ok(size_t elems, const clcnn_device *dev)
{
    size_t bytes = elems * sizeof(float);
    return bytes <= MAX_PADDED_BYTES && bytes <= (size_t)dev->info.max_alloc_bytes &&
           elems < ((size_t)1 << 31);
}

/* Copies planes of h x w into planes of hp x wp at (top, left), zeros around. */
static clcnn_status pad_planes(clcnn_device *dev, const char *what, const char *options, cl_mem src,
                               cl_mem dst, size_t planes, size_t h, size_t w, size_t hp, size_t wp,
                               size_t top, size_t left)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, FILE_CL, options, "clcnn_conv2d_bwd_pad", &k));
    cl_int4 from = {{(cl_int)planes, (cl_int)h, (cl_int)w, 0}};
    cl_int4 to = {{(cl_int)hp, (cl_int)wp, (cl_int)top, (cl_int)left}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &src}, {sizeof(cl_mem), &dst}, {sizeof from, &from}, {sizeof to, &to}};
    clcnn_status st = clcnn__set_args(k, what, kargs, 4);
    const size_t global[3] = {planes, 1, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, what, 3, global, local_one, NULL);
    clReleaseKernel(k);
    return st;
}

/* ---- backward data ------------------------------------------------------------------------ */

/* The launch of backward data: blocks per phase and dy's (possibly padded) plane layout. */
typedef struct data_plan {
    size_t nyb, nvb, cblocks;
    size_t hd, wd, top, left; /* dy's planes: hd x wd with dy at (top, left) */
    bool padded;
} data_plan;

/* Along one axis: the range of dy indices the kernel reads for input extent [in] with
 * [blocks] * [per] elements per phase, as a padding (lo) and an extent (the padded length). */
static void data_axis(size_t in, size_t out, size_t k, size_t pad, size_t stride, size_t dil,
                      size_t per, size_t *blocks, size_t *lo, size_t *len)
{
    *blocks = ceil_div(ceil_div(in, stride), per);
    long long min_o = 0, max_o = (long long)out - 1;
    for (size_t r = 0; r < k; r++) {
        long long off = (long long)(r * dil) - (long long)pad, st = (long long)stride;
        long long ph = ((off % st) + st) % st;
        long long o = (ph - off) / st; /* exact: ph - off is a multiple of the stride */
        if (o < min_o)
            min_o = o;
        if (o + (long long)(*blocks * per) - 1 > max_o)
            max_o = o + (long long)(*blocks * per) - 1;
    }
    *lo = (size_t)(-min_o);
    *len = (size_t)(max_o - min_o + 1);
}

static data_plan make_data_plan(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                const bwd_config *c)
{
    const clcnn_conv_params *p = &pb->p;
    data_plan pl = {0};
    data_axis(pb->x.h, pb->y.h, pb->w.h, p->pad_h, p->stride_h, p->dilation_h, (size_t)c->b1,
              &pl.nyb, &pl.top, &pl.hd);
    data_axis(pb->x.w, pb->y.w, pb->w.w, p->pad_w, p->stride_w, p->dilation_w, (size_t)c->vw,
              &pl.nvb, &pl.left, &pl.wd);
    pl.cblocks = ceil_div(pb->cg, (size_t)c->b2);
    pl.padded = padded_ok(pb->y.n * pb->y.c * pl.hd * pl.wd, dev);
    if (!pl.padded) {
        pl.hd = pb->y.h;
        pl.wd = pb->y.w;
        pl.top = pl.left = 0;
    }
    return pl;
}

static size_t data_workspace_of(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                const bwd_config *c)
{
    data_plan pl = make_data_plan(pb, dev, c);
    return pl.padded ? pb->y.n * pb->y.c * pl.hd * pl.wd * sizeof(float) : 0;
}

static size_t data_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    bwd_config c;
    return data_workspace_of(pb, dev,
                             config_for(pb, dev, &clcnn__conv_tunable_bwd_data_direct, &c));
}

static clcnn_status data_run_config(clcnn_device *dev, const clcnn__conv_problem *pb,
                                    const clcnn__conv_args *args, cl_mem workspace,
                                    const bwd_config *c)
{
    static const char what[] = "conv2d_backward_data: solver direct";
    const data_plan pl = make_data_plan(pb, dev, c);
    const clcnn_conv_params *p = &pb->p;
    char options[64];
    config_options(c, true, options, sizeof options);
    const char *opts = options[0] != '\0' ? options : NULL;
    CLCNN_TRY(clcnn__check_workspace(workspace, data_workspace_of(pb, dev, c), what));
    cl_mem dy = args->y;
    if (pl.padded) {
        CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, "%s: no workspace", what);
        CLCNN_TRY(pad_planes(dev, what, opts, args->y, workspace, pb->y.n * pb->y.c, pb->y.h,
                             pb->y.w, pl.hd, pl.wd, pl.top, pl.left));
        dy = workspace;
    }
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, FILE_CL, opts, "clcnn_conv2d_bwd_data_direct", &k));
    cl_int4 dims0 = {{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->y.c}};
    cl_int4 dims1 = {{(cl_int)pb->w.h, (cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w}};
    cl_int4 conv0 = {
        {(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->pad_h, (cl_int)p->pad_w}};
    cl_int4 conv1 = {{(cl_int)p->dilation_h, (cl_int)p->dilation_w, (cl_int)p->groups,
                      p->mode == CLCNN_CONV_CONVOLUTION ? 1 : 0}};
    cl_int4 dyl = {{(cl_int)pl.hd, (cl_int)pl.wd, (cl_int)pl.top, (cl_int)pl.left}};
    cl_int4 blocks = {{(cl_int)pl.nyb, (cl_int)pl.nvb, (cl_int)pl.cblocks, pl.padded ? 1 : 0}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &dy},  {sizeof(cl_mem), &args->w}, {sizeof(cl_mem), &args->x},
        {sizeof dims0, &dims0}, {sizeof dims1, &dims1},     {sizeof conv0, &conv0},
        {sizeof conv1, &conv1}, {sizeof dyl, &dyl},         {sizeof blocks, &blocks},
    };
    clcnn_status st = clcnn__set_args(k, what, kargs, sizeof kargs / sizeof kargs[0]);
    const size_t global[3] = {p->stride_w * pl.nvb, p->stride_h * pl.nyb,
                              pb->x.n * p->groups * pl.cblocks};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, what, 3, global, local_one, NULL);
    clReleaseKernel(k);
    return st;
}

static clcnn_status data_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                             const clcnn__conv_args *args, cl_mem workspace)
{
    bwd_config c;
    return data_run_config(dev, pb, args, workspace,
                           config_for(pb, dev, &clcnn__conv_tunable_bwd_data_direct, &c));
}

const clcnn__conv_solver clcnn__conv_bwd_data_direct = {
    .name = "direct",
    .algo = CLCNN_CONV_ALGO_DIRECT,
    .applicable = direct_applicable,
    .workspace_size = data_workspace,
    .run = data_run,
    /* fp32 fused multiply-adds over at most Kg*R*S terms in a fixed order, like the forward. */
    .tolerance = 1e-10,
};

/* ---- backward weights --------------------------------------------------------------------- */

/* Extents of x's padded copy: every row and column any tap of any lane reads. */
static void weights_extent(const clcnn__conv_problem *pb, size_t vw, size_t *hp, size_t *wp)
{
    const clcnn_conv_params *p = &pb->p;
    *hp = (pb->y.h - 1) * p->stride_h + (pb->w.h - 1) * p->dilation_h + 1;
    *wp = (ceil_div(pb->y.w, vw) * vw - 1) * p->stride_w + (pb->w.w - 1) * p->dilation_w + 1;
}

/* Floats of x's padded copy, rounded up to 4 KiB so that dy's copy after it can be a sub-buffer
 * (whose origin must meet CL_DEVICE_MEM_BASE_ADDR_ALIGN), then dy's copy with rows rounded up to
 * VW (0 when Wo is a multiple of VW: dy is read in place). */
static size_t weights_x_floats(const clcnn__conv_problem *pb, size_t vw)
{
    size_t hp, wp;
    weights_extent(pb, vw, &hp, &wp);
    return ceil_div(pb->x.n * pb->x.c * hp * wp, 1024) * 1024;
}

static size_t weights_dy_floats(const clcnn__conv_problem *pb, size_t vw)
{
    return pb->y.w % vw == 0 ? 0 : pb->y.n * pb->y.c * pb->y.h * ceil_div(pb->y.w, vw) * vw;
}

static bool weights_padded(const clcnn__conv_problem *pb, const clcnn_device *dev, size_t vw)
{
    return padded_ok(weights_x_floats(pb, vw) + weights_dy_floats(pb, vw), dev);
}

static size_t weights_workspace_of(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                   const bwd_config *c)
{
    const size_t vw = (size_t)c->vw;
    return weights_padded(pb, dev, vw)
               ? (weights_x_floats(pb, vw) + weights_dy_floats(pb, vw)) * sizeof(float)
               : 0;
}

static size_t weights_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    bwd_config c;
    return weights_workspace_of(pb, dev,
                                config_for(pb, dev, &clcnn__conv_tunable_bwd_weights_direct, &c));
}

static clcnn_status weights_run_config(clcnn_device *dev, const clcnn__conv_problem *pb,
                                       const clcnn__conv_args *args, cl_mem workspace,
                                       const bwd_config *c)
{
    static const char what[] = "conv2d_backward_weights: solver direct";
    const clcnn_conv_params *p = &pb->p;
    const size_t vw = (size_t)c->vw;
    const bool padded = weights_padded(pb, dev, vw);
    CLCNN_TRY(clcnn__check_workspace(workspace, weights_workspace_of(pb, dev, c), what));
    char options[64];
    config_options(c, false, options, sizeof options);
    const char *opts = options[0] != '\0' ? options : NULL;
    cl_mem x = args->x, dy = args->y, dy_copy = NULL;
    cl_int wd = (cl_int)pb->y.w;
    cl_int4 xl = {{(cl_int)pb->x.h, (cl_int)pb->x.w, -(cl_int)p->pad_h, -(cl_int)p->pad_w}};
    if (padded) {
        size_t hp, wp;
        weights_extent(pb, vw, &hp, &wp);
        CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, "%s: no workspace", what);
        CLCNN_TRY(pad_planes(dev, what, opts, args->x, workspace, pb->x.n * pb->x.c, pb->x.h,
                             pb->x.w, hp, wp, p->pad_h, p->pad_w));
        x = workspace;
        xl = (cl_int4){{(cl_int)hp, (cl_int)wp, 0, 0}};
        if (weights_dy_floats(pb, vw) > 0) {
            /* dy goes after x's copy, in a sub-buffer (the kernel takes no offset). */
            cl_buffer_region region = {weights_x_floats(pb, vw) * sizeof(float),
                                       weights_dy_floats(pb, vw) * sizeof(float)};
            cl_int err;
            dy_copy = clCreateSubBuffer(workspace, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                        &region, &err);
            if (err != CL_SUCCESS)
                return CLCNN_CL_ERR(err, "%s: clCreateSubBuffer(dy copy, %zu bytes at %zu)", what,
                                    region.size, region.origin);
            wd = (cl_int)(ceil_div(pb->y.w, vw) * vw);
            clcnn_status st = pad_planes(dev, what, opts, args->y, dy_copy, pb->y.n * pb->y.c,
                                         pb->y.h, pb->y.w, pb->y.h, (size_t)wd, 0, 0);
            if (st != CLCNN_OK) {
                clReleaseMemObject(dy_copy);
                return st;
            }
            dy = dy_copy;
        }
    }
    cl_kernel k;
    clcnn_status st =
        clcnn__kernel_create(dev, FILE_CL, opts, "clcnn_conv2d_bwd_weights_direct", &k);
    if (st != CLCNN_OK) {
        if (dy_copy != NULL)
            clReleaseMemObject(dy_copy);
        return st;
    }
    cl_int4 dims0 = {{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->y.c}};
    cl_int4 dims1 = {{(cl_int)pb->w.h, (cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w}};
    cl_int4 conv0 = {{(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)pb->x.n, padded ? 1 : 0}};
    cl_int4 conv1 = {{(cl_int)p->dilation_h, (cl_int)p->dilation_w, (cl_int)p->groups,
                      p->mode == CLCNN_CONV_CONVOLUTION ? 1 : 0}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &x},   {sizeof(cl_mem), &dy},  {sizeof(cl_mem), &args->w},
        {sizeof dims0, &dims0}, {sizeof dims1, &dims1}, {sizeof conv0, &conv0},
        {sizeof conv1, &conv1}, {sizeof xl, &xl},       {sizeof wd, &wd},
    };
    st = clcnn__set_args(k, what, kargs, sizeof kargs / sizeof kargs[0]);
    const size_t global[3] = {ceil_div(pb->cg * pb->w.h * pb->w.w, (size_t)c->b2),
                              ceil_div(pb->kg, (size_t)c->b1), p->groups};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, what, 3, global, local_one, NULL);
    clReleaseKernel(k);
    if (dy_copy != NULL)
        clReleaseMemObject(dy_copy);
    return st;
}

static clcnn_status weights_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                                const clcnn__conv_args *args, cl_mem workspace)
{
    bwd_config c;
    return weights_run_config(dev, pb, args, workspace,
                              config_for(pb, dev, &clcnn__conv_tunable_bwd_weights_direct, &c));
}

const clcnn__conv_solver clcnn__conv_bwd_weights_direct = {
    .name = "direct",
    .algo = CLCNN_CONV_ALGO_DIRECT,
    .applicable = direct_applicable,
    .workspace_size = weights_workspace,
    .run = weights_run,
    /* fp32 sums of N*Ho*Wo products, split over VW lanes: the NMSE of a float32 sum of n terms
     * grows about as n * 2^-48 / VW; 1e-9 leaves room for n up to ~10^6. */
    .tolerance = 1e-9,
};

/* ---- the parameter spaces (cltune --pass bwd-data|bwd-weights) ----------------------------- */

enum { P_VW, P_B1, P_B2, P_COUNT };

static const char *const data_names[P_COUNT] = {"BWD_VW", "BWD_YB", "BWD_CB"};
static const char *const weights_names[P_COUNT] = {"BWD_VW", "BWDW_KB", "BWDW_TB"};

/* Accumulators (floats) of one work-item past which registers spill. */
#define MAX_ACCUMULATORS 256

static bool is_data(const clcnn__conv_tunable *t)
{
    return t == &clcnn__conv_tunable_bwd_data_direct;
}

/* The constraint: the defaults always; otherwise a compiler, accumulators within the registers,
 * and blocks not mostly past the extents they cover. */
static bool bwd_valid(const int *v, const void *user)
{
    const clcnn__conv_tuning *t = user;
    const clcnn__conv_problem *pb = &t->problem;
    const bool data = is_data(t->tunable);
    const bwd_config c = {v[P_VW], v[P_B1], v[P_B2]};
    const bwd_config *d = data ? &data_defaults : &weights_defaults;
    if (memcmp(&c, d, sizeof c) == 0)
        return true;
    if (!t->device->info.compiler_available)
        return false;
    if (c.vw * c.b1 * c.b2 > MAX_ACCUMULATORS)
        return false;
    /* Data: lanes over input columns, rows of one stride phase, input channels per group.
     * Weights: lanes over output columns, output channels and taps per group. */
    const size_t lanes = data ? pb->x.w : pb->y.w;
    const size_t b1_extent = data ? ceil_div(pb->x.h, pb->p.stride_h) : pb->kg;
    const size_t b2_extent = data ? pb->cg : pb->cg * pb->w.h * pb->w.w;
    if (c.vw > 4 && (size_t)c.vw / 2 >= lanes)
        return false;
    if (c.b1 > 1 && (size_t)c.b1 / 2 >= b1_extent)
        return false;
    return !(c.b2 > 1 && (size_t)c.b2 / 2 >= b2_extent);
}

static void bwd_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                      const clcnn__conv_tunable *tunable, clcnn__conv_tuning *tuning,
                      clcnn__tune_space *space)
{
    tuning->problem = *pb;
    tuning->device = dev;
    tuning->tunable = tunable;
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const bool data = is_data(tunable);
    const char *const *names = data ? data_names : weights_names;
    /* kernels/cl/conv2d_bwd_direct.cl: 4, 8 or 16 lanes; 1 to 8 of each block */
    const clcnn__tune_param params[P_COUNT] = {
        {names[P_VW], {4, 8, 16}, 3},
        {names[P_B1], {1, 2, 4, 8}, 4},
        {names[P_B2], {1, 2, 4, 8}, 4},
    };
    memcpy(space->params, params, sizeof params);
    const bwd_config *d = data ? &data_defaults : &weights_defaults;
    space->defaults[P_VW] = d->vw;
    space->defaults[P_B1] = d->b1;
    space->defaults[P_B2] = d->b2;
    space->valid = bwd_valid;
    space->user = tuning;
}

/* The database's point for this problem and pass, else the nearest stored problem's, when valid
 * here; else the defaults. Returns out. */
static const bwd_config *config_for(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                    const clcnn__conv_tunable *t, bwd_config *out)
{
    const bool data = is_data(t);
    int v[P_COUNT];
    if (clcnn__conv_tuned_point(pb, dev, t, data ? data_names : weights_names, P_COUNT, bwd_valid,
                                v))
        *out = (bwd_config){v[P_VW], v[P_B1], v[P_B2]};
    else
        *out = data ? data_defaults : weights_defaults;
    return out;
}

static size_t bwd_workspace_with(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                 const clcnn__conv_tunable *tunable, const int *values)
{
    const bwd_config c = {values[P_VW], values[P_B1], values[P_B2]};
    return is_data(tunable) ? data_workspace_of(pb, dev, &c) : weights_workspace_of(pb, dev, &c);
}

/* Runs one point of the space; ms is left to cltune, which times the call and a
 * clcnn_device_finish on the host clock (host_clock). */
static clcnn_status bwd_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                 const clcnn__conv_args *args, cl_mem workspace,
                                 const clcnn__conv_tunable *tunable, const int *values, double *ms)
{
    (void)ms;
    const bwd_config c = {values[P_VW], values[P_B1], values[P_B2]};
    return is_data(tunable) ? data_run_config(dev, pb, args, workspace, &c)
                            : weights_run_config(dev, pb, args, workspace, &c);
}

const clcnn__conv_tunable clcnn__conv_tunable_bwd_data_direct = {
    .solver = &clcnn__conv_bwd_data_direct,
    .pass = CLCNN_CONV_PASS_BWD_DATA,
    .db_kernel = "conv2d_bwd_data_direct",
    .space = bwd_space,
    .workspace_with = bwd_workspace_with,
    .run_with = bwd_run_with,
    .host_clock = true,
};

const clcnn__conv_tunable clcnn__conv_tunable_bwd_weights_direct = {
    .solver = &clcnn__conv_bwd_weights_direct,
    .pass = CLCNN_CONV_PASS_BWD_WEIGHTS,
    .db_kernel = "conv2d_bwd_weights_direct",
    .space = bwd_space,
    .workspace_with = bwd_workspace_with,
    .run_with = bwd_run_with,
    .host_clock = true,
};
