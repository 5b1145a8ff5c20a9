/* The direct convolution solver: any stride, padding, dilation, groups and flip mode. Vector
 * width, blocking and padding are build options; its parameter space (cltune) lives here too,
 * and a launch takes the tuning database's parameters for its problem when there are some. */
#include <stdio.h>
#include <string.h>

#include "conv2d_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tune_db_impl.h"

/* The register blocking of one launch: CONV_VW output columns (one vector) by CONV_OYB rows by
 * CONV_KB channels per work-item; padded: the input is first copied into the workspace with
 * its zero border (CONV_PADDED), which takes every bounds check out of the inner loop; lws: the
 * work-group's first extent (0: the driver chooses). */
typedef struct direct_config {
    int vw, oyb, kb;
    bool padded;
    int lws;
} direct_config;

/* The kernel file's defaults. A launch that wants others passes -D options; keeping the
 * defaults option-free lets exported offline binaries match. */
static const direct_config kernel_defaults = {8, 2, 8, false, 0};

/* Largest padded copy of the input the solver makes before it falls back to bounds checks. */
#define MAX_PADDED_BYTES ((size_t)512 << 20)

/* Accumulators (floats) a work-item may hold: past this, registers spill on every device
 * measured (the 16-wide default for short reductions sits at the limit). */
#define MAX_ACCUMULATORS 256

/* Extents of the padded input: every row and column any work-item's block reads, blocks at
 * the edges included (they compute unused lanes from zeros). */
static void padded_extent(const clcnn__conv_problem *pb, direct_config c, size_t *hp, size_t *wp)
{
    const clcnn_conv_params *p = &pb->p;
    size_t rows = (pb->y.h + (size_t)c.oyb - 1) / (size_t)c.oyb * (size_t)c.oyb;
    size_t cols = (pb->y.w + (size_t)c.vw - 1) / (size_t)c.vw * (size_t)c.vw;
    *hp = (rows - 1) * p->stride_h + (pb->w.h - 1) * p->dilation_h + 1;
    *wp = (cols - 1) * p->stride_w + (pb->w.w - 1) * p->dilation_w + 1;
}

static size_t padded_bytes(const clcnn__conv_problem *pb, direct_config c)
{
    size_t hp, wp;
    padded_extent(pb, c, &hp, &wp);
    return pb->x.n * pb->x.c * hp * wp * sizeof(float);
}

static bool padded_fits(const clcnn__conv_problem *pb, const clcnn_device *dev, direct_config c)
{
    size_t bytes = padded_bytes(pb, c);
    return bytes <= MAX_PADDED_BYTES && bytes <= dev->info.max_alloc_bytes &&
           bytes / sizeof(float) < ((size_t)1 << 31);
}

/* Blocking for this problem without tuning: taller blocks feed more FMAs per weight load,
 * which paid on POCL's CPU device for the VGG-16 shapes; small outputs keep the defaults so rows
 * are not wasted. A device without a compiler only has the exported default binary. */
static direct_config choose_config(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    if (!dev->info.compiler_available)
        return kernel_defaults;
    direct_config c = kernel_defaults;
    c.padded = true;
    /* A short reduction per output (a first layer: LeNet's conv1 has 1x5x5) leaves the work-item
     * bound by its fixed costs, which a 16-wide vector halves: 62 -> 90 GFLOP/s on LeNet conv1
     * (clcnn bench conv, same run). Long reductions keep 8 lanes for register room. */
    if (pb->cg * pb->w.h * pb->w.w <= 64 && pb->y.w >= 16)
        c.vw = 16;
    if (!padded_fits(pb, dev, c))
        c.padded = false;
    return c;
}

/* ---- the parameter space (cltune) ---------------------------------------------------------- */

enum { P_VW, P_OYB, P_KB, P_PADDED, P_LWS, P_COUNT };

static const char *const param_names[P_COUNT] = {"CONV_VW", "CONV_OYB", "CONV_KB", "CONV_PADDED",
                                                 "LWS"};

static direct_config config_of(const int *v)
{
    direct_config c = {v[P_VW], v[P_OYB], v[P_KB], v[P_PADDED] != 0, v[P_LWS]};
    return c;
}

static void values_of(direct_config c, int *v)
{
    v[P_VW] = c.vw;
    v[P_OYB] = c.oyb;
    v[P_KB] = c.kb;
    v[P_PADDED] = c.padded ? 1 : 0;
    v[P_LWS] = c.lws;
}

static bool same_config(direct_config a, direct_config b)
{
    return a.vw == b.vw && a.oyb == b.oyb && a.kb == b.kb && a.padded == b.padded && a.lws == b.lws;
}

/* The constraint: the defaults always; otherwise a compiler, accumulators that fit in
 * registers, blocks and work-groups that are not mostly outside the output, a padded copy within
 * the allocation limits, and a work-group within the device's limits. */
static bool direct_valid(const int *v, const void *user)
{
    const clcnn__conv_direct_tuning *t = user;
    const clcnn__conv_problem *pb = &t->problem;
    const clcnn_device *dev = t->device;
    direct_config c = config_of(v);
    if (same_config(c, choose_config(pb, dev)))
        return true;
    if (!dev->info.compiler_available)
        return false;
    if (c.vw * c.oyb * c.kb > MAX_ACCUMULATORS)
        return false;
    if (c.oyb > 1 && (size_t)c.oyb > pb->y.h)
        return false;
    if (c.vw > 2 && (size_t)c.vw / 2 >= pb->y.w)
        return false;
    if (c.kb > 1 && (size_t)c.kb / 2 >= pb->kg)
        return false;
    if (c.padded && !padded_fits(pb, dev, c))
        return false;
    if (c.lws > 0) {
        size_t columns = (pb->y.w + (size_t)c.vw - 1) / (size_t)c.vw;
        if ((size_t)c.lws > dev->info.max_work_group_size ||
            (size_t)c.lws > dev->info.max_work_item_sizes[0] || (size_t)c.lws > 2 * columns)
            return false;
    }
    return true;
}

void clcnn__conv_direct_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                              clcnn__conv_direct_tuning *tuning, clcnn__tune_space *space)
{
    tuning->problem = *pb;
    tuning->device = dev;
    tuning->tunable = &clcnn__conv_tunable_direct;
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const clcnn__tune_param params[P_COUNT] = {
        /* kernels/cl/conv2d_direct.cl: 2, 4, 8 or 16 lanes */
        {param_names[P_VW], {2, 4, 8, 16}, 4},
        /* 1 to 16 rows; 7 divides every VGG-16 output height */
        {param_names[P_OYB], {1, 2, 4, 7, 8}, 5},
        /* 1 to 8 channels */
        {param_names[P_KB], {1, 2, 4, 8}, 4},
        {param_names[P_PADDED], {0, 1}, 2},
        {param_names[P_LWS], {0, 4, 16, 64}, 4},
    };
    memcpy(space->params, params, sizeof params);
    values_of(choose_config(pb, dev), space->defaults);
    space->valid = direct_valid;
    space->user = tuning;
}

/* The tuned configuration for this problem when the database holds a valid one (its own, else
 * the nearest stored problem's), else the heuristic's. */
static direct_config config_for(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    int v[P_COUNT];
    return clcnn__conv_tuned_point(pb, dev, &clcnn__conv_tunable_direct, param_names, P_COUNT,
                                   direct_valid, v)
               ? config_of(v)
               : choose_config(pb, dev);
}

static void config_options(direct_config c, char *buf, size_t size)
{
    buf[0] = '\0';
    if (c.vw == kernel_defaults.vw && c.oyb == kernel_defaults.oyb && c.kb == kernel_defaults.kb &&
        c.padded == kernel_defaults.padded)
        return;
    snprintf(buf, size, "-DCONV_VW=%d -DCONV_OYB=%d -DCONV_KB=%d%s", c.vw, c.oyb, c.kb,
             c.padded ? " -DCONV_PADDED" : "");
}

void clcnn__conv_direct_options(const int *values, char *buf, size_t size)
{
    config_options(config_of(values), buf, size);
}

static size_t workspace_of(const clcnn__conv_problem *pb, direct_config c)
{
    return c.padded ? padded_bytes(pb, c) : 0;
}

static size_t direct_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    return workspace_of(pb, config_for(pb, dev));
}

size_t clcnn__conv_direct_workspace_with(const clcnn__conv_problem *pb, const int *values)
{
    return workspace_of(pb, config_of(values));
}

/* Enqueues; when ms is not NULL (the tuner), also waits and adds the kernel's device time
 * (profiling events) to *ms. */
static clcnn_status launch_timed(clcnn_device *dev, cl_kernel k, const char *what,
                                 const size_t global[3], const size_t *local, double *ms)
{
    if (ms == NULL)
        return clcnn__enqueue(dev, k, what, 3, global, local, NULL);
    cl_event done;
    CLCNN_TRY(clcnn__enqueue(dev, k, what, 3, global, local, &done));
    cl_int err = clWaitForEvents(1, &done);
    if (err != CL_SUCCESS) {
        clReleaseEvent(done);
        return CLCNN_CL_ERR(err, "%s: clWaitForEvents (kernel execution)", what);
    }
    cl_ulong t0 = 0, t1 = 0;
    err = clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    clReleaseEvent(done);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clGetEventProfilingInfo", what);
    *ms += (double)(t1 - t0) * 1e-6;
    return CLCNN_OK;
}

/* Copies the input into the workspace with its zero border. */
static clcnn_status pad_input(clcnn_device *dev, const clcnn__conv_problem *pb, const char *options,
                              cl_mem x, cl_mem xp, size_t hp, size_t wp, double *ms)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, "conv2d_direct.cl", options, "clcnn_conv2d_pad_input", &k));
    size_t planes = pb->x.n * pb->x.c;
    cl_int4 src = {{(cl_int)planes, (cl_int)pb->x.h, (cl_int)pb->x.w, 0}};
    cl_int4 dst = {{(cl_int)hp, (cl_int)wp, (cl_int)pb->p.pad_h, (cl_int)pb->p.pad_w}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &x}, {sizeof(cl_mem), &xp}, {sizeof src, &src}, {sizeof dst, &dst}};
    clcnn_status st = clcnn__set_args(k, "conv2d: solver direct: pad", kargs, 4);
    if (st == CLCNN_OK) {
        const size_t global[3] = {wp, hp, planes};
        st = launch_timed(dev, k, "conv2d: solver direct: pad", global, NULL, ms);
    }
    clReleaseKernel(k);
    return st;
}

static bool direct_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                              const char **reason)
{
    (void)dev;
    /* The kernel indexes with int. */
    const size_t limit = (size_t)1 << 31;
    if (pb->x.n * pb->x.c * pb->x.h * pb->x.w >= limit ||
        pb->y.n * pb->y.c * pb->y.h * pb->y.w >= limit ||
        pb->w.n * pb->w.c * pb->w.h * pb->w.w >= limit) {
        *reason = "a tensor has 2^31 elements or more";
        return false;
    }
    return true;
}

static clcnn_status run_config(clcnn_device *dev, const clcnn__conv_problem *pb,
                               const clcnn__conv_args *args, cl_mem workspace, direct_config cfg,
                               double *ms)
{
    char options[96];
    config_options(cfg, options, sizeof options);
    CLCNN_TRY(clcnn__check_workspace(workspace, workspace_of(pb, cfg), "conv2d: solver direct"));
    const clcnn_conv_params *p = &pb->p;
    cl_mem input = args->x;
    cl_int4 dims0 = {{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->y.c}};
    cl_int4 conv0 = {
        {(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->pad_h, (cl_int)p->pad_w}};
    if (cfg.padded) {
        size_t hp, wp;
        padded_extent(pb, cfg, &hp, &wp);
        CLCNN_TRY(pad_input(dev, pb, options, args->x, workspace, hp, wp, ms));
        input = workspace;
        dims0.s[1] = (cl_int)hp;
        dims0.s[2] = (cl_int)wp;
        conv0.s[2] = conv0.s[3] = 0;
    }
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, "conv2d_direct.cl", options, "clcnn_conv2d_direct", &k));
    int flags = (p->mode == CLCNN_CONV_CONVOLUTION ? 1 : 0) | (p->relu ? 2 : 0) |
                (args->bias != NULL ? 4 : 0);
    cl_int4 dims1 = {{(cl_int)pb->w.h, (cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w}};
    cl_int4 conv1 = {{(cl_int)p->dilation_h, (cl_int)p->dilation_w, (cl_int)p->groups, flags}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &input},
        {sizeof(cl_mem), &args->w},
        {sizeof(cl_mem), args->bias != NULL ? &args->bias : NULL},
        {sizeof(cl_mem), &args->y},
        {sizeof dims0, &dims0},
        {sizeof dims1, &dims1},
        {sizeof conv0, &conv0},
        {sizeof conv1, &conv1},
    };
    clcnn_status st =
        clcnn__set_args(k, "conv2d: solver direct", kargs, sizeof kargs / sizeof kargs[0]);
    if (st != CLCNN_OK) {
        clReleaseKernel(k);
        return st;
    }
    size_t kblocks = (pb->kg + (size_t)cfg.kb - 1) / (size_t)cfg.kb;
    size_t global[3] = {(pb->y.w + (size_t)cfg.vw - 1) / (size_t)cfg.vw,
                        (pb->y.h + (size_t)cfg.oyb - 1) / (size_t)cfg.oyb,
                        pb->y.n * pb->p.groups * kblocks};
    /* Work-items past the output return at once, so the global size may be rounded up. */
    size_t local[3] = {(size_t)cfg.lws, 1, 1};
    if (cfg.lws > 0)
        global[0] = clcnn__round_up(global[0], local[0]);
    st = launch_timed(dev, k, "conv2d: solver direct", global, cfg.lws > 0 ? local : NULL, ms);
    clReleaseKernel(k);
    return st;
}

static clcnn_status direct_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                               const clcnn__conv_args *args, cl_mem workspace)
{
    return run_config(dev, pb, args, workspace, config_for(pb, dev), NULL);
}

clcnn_status clcnn__conv_direct_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                         const clcnn__conv_args *args, cl_mem workspace,
                                         const int *values, double *device_ms)
{
    if (device_ms != NULL)
        *device_ms = 0;
    return run_config(dev, pb, args, workspace, config_of(values), device_ms);
}

const clcnn__conv_solver clcnn__conv_solver_direct = {
    .name = "direct",
    .algo = CLCNN_CONV_ALGO_DIRECT,
    .applicable = direct_applicable,
    .workspace_size = direct_workspace,
    .run = direct_run,
    /* fp32 accumulation over at most C*R*S terms in a fixed order. */
    .tolerance = 1e-10,
};

static void direct_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                         const clcnn__conv_tunable *tunable, clcnn__conv_tuning *tuning,
                         clcnn__tune_space *space)
{
    (void)tunable;
    clcnn__conv_direct_space(pb, dev, tuning, space);
}

static size_t direct_workspace_with(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                    const clcnn__conv_tunable *tunable, const int *values)
{
    (void)dev;
    (void)tunable;
    return clcnn__conv_direct_workspace_with(pb, values);
}

/* The time is the kernels' own, from profiling events. */
static clcnn_status direct_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                    const clcnn__conv_args *args, cl_mem workspace,
                                    const clcnn__conv_tunable *tunable, const int *values,
                                    double *ms)
{
    (void)tunable;
    return clcnn__conv_direct_run_with(dev, pb, args, workspace, values, ms);
}

const clcnn__conv_tunable clcnn__conv_tunable_direct = {
    .solver = &clcnn__conv_solver_direct,
    .db_kernel = CLCNN__CONV_DIRECT_DB_KERNEL,
    .space = direct_space,
    .workspace_with = direct_workspace_with,
    .run_with = direct_run_with,
};
