/* The direct convolution solver: any stride, padding, dilation, groups and flip mode, one
 * kernel launch, no workspace. Vector width and channel blocking are build options. */
#include <stdio.h>

#include "conv2d_impl.h"
#include "program_impl.h"
#include "status_impl.h"

/* The register blocking of one launch: CONV_VW output columns (one vector) by CONV_OYB rows by
 * CONV_KB channels per work-item. */
typedef struct direct_config {
    int vw, oyb, kb;
} direct_config;

/* The kernel file's defaults. A launch that wants others passes -D options; keeping the
 * defaults option-free lets exported offline binaries match. */
static const direct_config kernel_defaults = {8, 2, 8};

/* Blocking for this problem: taller blocks feed more FMAs per weight load, which paid on POCL's
 * CPU device for the VGG-16 shapes; small outputs keep the defaults so rows are not wasted.
 * The tuning database will take over this choice (issue: cltune). A device without a compiler
 * only has the exported default binary. */
static direct_config choose_config(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    if (!dev->info.compiler_available || dev->info.type != CLCNN_DEVICE_TYPE_CPU)
        return kernel_defaults;
    if (pb->y.h >= 32)
        return (direct_config){8, 8, 2};
    if (pb->y.h >= 12)
        return (direct_config){8, 4, 4};
    return kernel_defaults;
}

static void config_options(direct_config c, char *buf, size_t size)
{
    buf[0] = '\0';
    if (c.vw == kernel_defaults.vw && c.oyb == kernel_defaults.oyb && c.kb == kernel_defaults.kb)
        return;
    snprintf(buf, size, "-DCONV_VW=%d -DCONV_OYB=%d -DCONV_KB=%d", c.vw, c.oyb, c.kb);
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
    (void)workspace;
    const direct_config cfg = choose_config(pb, dev);
    char options[96];
    config_options(cfg, options, sizeof options);
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, "conv2d_direct.cl", options, "clcnn_conv2d_direct", &k));
    const clcnn_conv_params *p = &pb->p;
    int flags = (p->mode == CLCNN_CONV_CONVOLUTION ? 1 : 0) | (p->relu ? 2 : 0) |
                (args->bias != NULL ? 4 : 0);
    cl_int4 dims0 = {{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->y.c}};
    cl_int4 dims1 = {{(cl_int)pb->w.h, (cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w}};
    cl_int4 conv0 = {
        {(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->pad_h, (cl_int)p->pad_w}};
    cl_int4 conv1 = {{(cl_int)p->dilation_h, (cl_int)p->dilation_w, (cl_int)p->groups, flags}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &args->x},
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
    .workspace_size = NULL,
    .run = direct_run,
    /* fp32 accumulation over at most C*R*S terms in a fixed order. */
    .tolerance = 1e-10,
};
