/* The direct convolution solver: any stride, padding, dilation, groups and flip mode, one
 * kernel launch, no workspace. Vector width and channel blocking are build options. */
#include <stdio.h>

#include "conv2d_impl.h"
#include "program_impl.h"
#include "status_impl.h"

/* The register blocking of one launch: CONV_VW output columns (one vector) by CONV_OYB rows by
 * CONV_KB channels per work-item; padded: the input is first copied into the workspace with
 * its zero border (CONV_PADDED), which takes every bounds check out of the inner loop. */
typedef struct direct_config {
    int vw, oyb, kb;
    bool padded;
} direct_config;

/* The kernel file's defaults. A launch that wants others passes -D options; keeping the
 * defaults option-free lets exported offline binaries match. */
static const direct_config kernel_defaults = {8, 2, 8, false};

/* Largest padded copy of the input the solver makes before it falls back to bounds checks. */
#define MAX_PADDED_BYTES ((size_t)512 << 20)

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

/* Blocking for this problem: taller blocks feed more FMAs per weight load, which paid on POCL's
 * CPU device for the VGG-16 shapes; small outputs keep the defaults so rows are not wasted.
 * The tuning database will take over this choice (issue: cltune). A device without a compiler
 * only has the exported default binary. */
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
    size_t bytes = padded_bytes(pb, c);
    if (bytes > MAX_PADDED_BYTES || bytes > dev->info.max_alloc_bytes ||
        bytes / sizeof(float) >= ((size_t)1 << 31))
        c.padded = false;
    return c;
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

static size_t direct_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    direct_config c = choose_config(pb, dev);
    return c.padded ? padded_bytes(pb, c) : 0;
}

/* Copies the input into the workspace with its zero border. */
static clcnn_status pad_input(clcnn_device *dev, const clcnn__conv_problem *pb, const char *options,
                              cl_mem x, cl_mem xp, size_t hp, size_t wp)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, "conv2d_direct.cl", options, "clcnn_conv2d_pad_input", &k));
    size_t planes = pb->x.n * pb->x.c;
    cl_int4 src = {{(cl_int)planes, (cl_int)pb->x.h, (cl_int)pb->x.w, 0}};
    cl_int4 dst = {{(cl_int)hp, (cl_int)wp, (cl_int)pb->p.pad_h, (cl_int)pb->p.pad_w}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &x}, {sizeof(cl_mem), &xp}, {sizeof src, &src}, {sizeof dst, &dst}};
    clcnn_status st = clcnn__set_args(k, "conv2d: solver direct: pad", kargs, 4);
    size_t global[3] = {wp, hp, planes};
    if (st == CLCNN_OK)
        st = clcnn__launch_wait(dev, k, "conv2d: solver direct: pad", global, NULL);
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

static clcnn_status direct_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                               const clcnn__conv_args *args, cl_mem workspace)
{
    const direct_config cfg = choose_config(pb, dev);
    char options[96];
    config_options(cfg, options, sizeof options);
    const clcnn_conv_params *p = &pb->p;
    cl_mem input = args->x;
    cl_int4 dims0 = {{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->y.c}};
    cl_int4 conv0 = {
        {(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->pad_h, (cl_int)p->pad_w}};
    if (cfg.padded) {
        size_t hp, wp;
        padded_extent(pb, cfg, &hp, &wp);
        CLCNN_TRY(pad_input(dev, pb, options, args->x, workspace, hp, wp));
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
    st = clcnn__launch_wait(dev, k, "conv2d: solver direct", global, NULL);
    clReleaseKernel(k);
    return st;
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
