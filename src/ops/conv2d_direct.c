/* The direct convolution solver: any stride, padding, dilation, groups and flip mode, one
 * kernel launch, no workspace. Vector width and channel blocking are build options. */
#include <stdio.h>

#include "conv2d_impl.h"
#include "program_impl.h"
#include "status_impl.h"

/* The kernel file's defaults; a device that wants others gets them as -D options (later from
 * the tuning database). Keeping the defaults option-free lets exported binaries match. */
#define DEFAULT_VW 8
#define DEFAULT_KB 8

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
    const int vw = DEFAULT_VW, kb = DEFAULT_KB;
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, "conv2d_direct.cl", NULL, "clcnn_conv2d_direct", &k));
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
    size_t kblocks = (pb->kg + (size_t)kb - 1) / (size_t)kb;
    size_t global[3] = {(pb->y.w + (size_t)vw - 1) / (size_t)vw, pb->y.h,
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
