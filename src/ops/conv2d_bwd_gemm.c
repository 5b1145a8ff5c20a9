/* The backward gemm solvers, with CLBlast SGEMM over images in chunks. Backward weights:
 * dW[g] = sum over chunks of dY[g] * col(x)[g]^T (im2col, beta accumulation in chunk order).
 * Backward data: col[g] = W[g]^T * dY[g], then col2im as a gather. Both deterministic. */
#include <clblast_c.h>
#include <stdio.h>

#include "conv2d_bwd_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"

/* conv2d_im2col.cl's and conv2d_bwd_gemm.cl's vector widths; the global sizes depend on them. */
#define IM2COL_VW 8
#define BWDG_VW 8

/* Workspace bound, as the forward gemm solver's: a chunk holds as many images as fit in
 * max(WORKSPACE_BOUND, one image), never more than the batch or the largest allocation. */
#define WORKSPACE_BOUND ((size_t)64 << 20)

#define FLAG_FLIP 1

/* Work-group size of every launch here, fixed so that POCL compiles each kernel once rather
 * than once per problem shape; global sizes are rounded up to it (the kernels guard). */
static const size_t local_row[3] = {8, 1, 1};

static size_t round8(size_t n)
{
    return (n + 7) / 8 * 8;
}

typedef struct plan {
    size_t crs, cgrs, howo;
    size_t chunk;
    size_t col; /* floats of the column matrix of one chunk: C*R*S x chunk*Ho*Wo */
    size_t dyw; /* floats of dy in the wide layout for one chunk: K x chunk*Ho*Wo */
} plan;

static bool make_plan(const clcnn__conv_problem *pb, const clcnn_device *dev, plan *out,
                      const char **reason)
{
    plan pl = {0};
    pl.crs = pb->x.c * pb->w.h * pb->w.w;
    pl.cgrs = pb->cg * pb->w.h * pb->w.w;
    pl.howo = pb->y.h * pb->y.w;
    const size_t per_image = (pl.crs + pb->y.c) * pl.howo;
    size_t chunk = clcnn__conv_images_per_chunk(pb, dev, per_image, WORKSPACE_BOUND, reason);
    if (chunk == 0)
        return false;
    pl.chunk = chunk;
    pl.col = chunk * pl.crs * pl.howo;
    /* One image's dy is already wide: it is read in place. */
    pl.dyw = chunk > 1 ? chunk * pb->y.c * pl.howo : 0;
    *out = pl;
    return true;
}

static bool gemm_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                            const char **reason)
{
    plan pl;
    return make_plan(pb, dev, &pl, reason);
}

static size_t gemm_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    plan pl;
    const char *why = NULL;
    return make_plan(pb, dev, &pl, &why) ? (pl.col + pl.dyw) * sizeof(float) : 0;
}

/* One row-major SGEMM C = op(A) * op(B) + beta * C on the compute queue; *last receives its
 * event (the previous one is released). */
static clcnn_status sgemm(clcnn_device *dev, const char *what, bool ta, bool tb, size_t m, size_t n,
                          size_t k, cl_mem a, size_t a_off, size_t a_ld, cl_mem b, size_t b_off,
                          size_t b_ld, float beta, cl_mem c, size_t c_off, size_t c_ld,
                          cl_event *last)
{
    cl_event ev = NULL;
    CLBlastStatusCode code =
        CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                     tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1.0f, a, a_off, a_ld,
                     b, b_off, b_ld, beta, c, c_off, c_ld, &dev->compute, &ev);
    if (code != CLBlastSuccess) {
        /* CLBlast returns OpenCL codes above -1000 and its own below. */
        clcnn_status st = code > -1000 ? clcnn__status_of_cl(code) : CLCNN_STATUS_CL_ERROR;
        return (clcnn__set_error(st, code, __FILE__, __LINE__,
                                 "%s: CLBlastSgemm(M=%zu, N=%zu, K=%zu) -> status %d%s", what, m, n,
                                 k, (int)code,
                                 code > -1000 ? " (an OpenCL error)" : " (CLBlast's own code)"),
                st);
    }
    if (*last != NULL)
        clReleaseEvent(*last);
    *last = ev;
    return CLCNN_OK;
}

/* The kernels of one run, created once. */
typedef struct kernels {
    cl_kernel im2col, to_wide, col2im;
} kernels;

static void kernels_release(kernels *k)
{
    if (k->im2col != NULL)
        clReleaseKernel(k->im2col);
    if (k->to_wide != NULL)
        clReleaseKernel(k->to_wide);
    if (k->col2im != NULL)
        clReleaseKernel(k->col2im);
}

static void conv_ints(const clcnn__conv_problem *pb, size_t n0, cl_int4 *dims0, cl_int4 *dims1,
                      cl_int4 *conv0)
{
    const clcnn_conv_params *p = &pb->p;
    *dims0 = (cl_int4){{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->w.h}};
    *dims1 = (cl_int4){{(cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w, (cl_int)n0}};
    *conv0 =
        (cl_int4){{(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->pad_h, (cl_int)p->pad_w}};
}

/* Where dy of images n0 .. n0+count-1 is in the wide layout: a K x ld matrix at *off in *buf. */
static clcnn_status wide_dy(clcnn_device *dev, const char *what, const clcnn__conv_problem *pb,
                            const plan *pl, cl_mem dy, cl_mem ws, const kernels *ks, size_t n0,
                            size_t count, cl_mem *buf, size_t *off)
{
    if (count == 1) {
        *buf = dy;
        *off = n0 * pb->y.c * pl->howo;
        return CLCNN_OK;
    }
    cl_int4 dims = {{(cl_int)pb->y.c, (cl_int)pl->howo, (cl_int)n0, (cl_int)(count * pl->howo)}};
    cl_int dst_off = (cl_int)pl->col;
    const clcnn__kernel_arg args[] = {{sizeof(cl_mem), &dy},
                                      {sizeof(cl_mem), &ws},
                                      {sizeof dims, &dims},
                                      {sizeof dst_off, &dst_off}};
    CLCNN_TRY(clcnn__set_args(ks->to_wide, what, args, 4));
    const size_t global[3] = {round8((pl->howo + BWDG_VW - 1) / BWDG_VW), pb->y.c, count};
    CLCNN_TRY(clcnn__enqueue(dev, ks->to_wide, what, 3, global, local_row, NULL));
    *buf = ws;
    *off = pl->col;
    return CLCNN_OK;
}

static clcnn_status im2col(clcnn_device *dev, const char *what, const clcnn__conv_problem *pb,
                           const plan *pl, cl_mem x, cl_mem ws, const kernels *ks, size_t n0,
                           size_t count)
{
    cl_int4 dims0, dims1, conv0;
    conv_ints(pb, n0, &dims0, &dims1, &conv0);
    const int flags = pb->p.mode == CLCNN_CONV_CONVOLUTION ? FLAG_FLIP : 0;
    cl_int4 conv1 = {{(cl_int)pb->p.dilation_h, (cl_int)pb->p.dilation_w, flags, 0}};
    cl_int4 layout = {{(cl_int)(count * pl->howo), (cl_int)pl->howo, 0, 0}};
    const clcnn__kernel_arg args[] = {
        {sizeof(cl_mem), &x},     {sizeof(cl_mem), &ws},  {sizeof dims0, &dims0},
        {sizeof dims1, &dims1},   {sizeof conv0, &conv0}, {sizeof conv1, &conv1},
        {sizeof layout, &layout},
    };
    CLCNN_TRY(clcnn__set_args(ks->im2col, what, args, sizeof args / sizeof args[0]));
    const size_t global[3] = {round8((pl->howo + IM2COL_VW - 1) / IM2COL_VW), pl->crs, count};
    return clcnn__enqueue(dev, ks->im2col, what, 3, global, local_row, NULL);
}

/* Releases what the run made; the enqueued work goes on without the host (clcnn__enqueue). */
static clcnn_status finish(clcnn_status st, cl_event last, kernels *ks)
{
    if (last != NULL)
        clReleaseEvent(last);
    kernels_release(ks);
    return st;
}

static clcnn_status weights_chunks(clcnn_device *dev, const char *what,
                                   const clcnn__conv_problem *pb, const plan *pl,
                                   const clcnn__conv_args *args, cl_mem ws, const kernels *ks,
                                   cl_event *last)
{
    const size_t kg = pb->kg;
    for (size_t n0 = 0; n0 < pb->x.n; n0 += pl->chunk) {
        const size_t count = pb->x.n - n0 < pl->chunk ? pb->x.n - n0 : pl->chunk;
        const size_t ld = count * pl->howo;
        CLCNN_TRY(im2col(dev, what, pb, pl, args->x, ws, ks, n0, count));
        cl_mem dyb;
        size_t dyo;
        CLCNN_TRY(wide_dy(dev, what, pb, pl, args->y, ws, ks, n0, count, &dyb, &dyo));
        /* dW[g] (Kg x CgRS) = dY[g] (Kg x ld) * col[g]^T (ld x CgRS) + beta dW[g]. */
        for (size_t g = 0; g < pb->p.groups; g++)
            CLCNN_TRY(sgemm(dev, what, false, true, kg, pl->cgrs, ld, dyb, dyo + g * kg * ld, ld,
                            ws, g * pl->cgrs * ld, ld, n0 == 0 ? 0.0f : 1.0f, args->w,
                            g * kg * pl->cgrs, pl->cgrs, last));
    }
    return CLCNN_OK;
}

static clcnn_status weights_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                                const clcnn__conv_args *args, cl_mem workspace)
{
    static const char what[] = "conv2d_backward_weights: solver gemm";
    plan pl;
    const char *why = "";
    CLCNN_FAIL_IF(!make_plan(pb, dev, &pl, &why), CLCNN_STATUS_UNSUPPORTED, "%s: %s", what, why);
    CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, "%s: no workspace", what);
    kernels ks = {0};
    cl_event last = NULL;
    clcnn_status st =
        clcnn__kernel_create(dev, "conv2d_im2col.cl", NULL, "clcnn_im2col", &ks.im2col);
    if (st == CLCNN_OK)
        st = clcnn__kernel_create(dev, "conv2d_bwd_gemm.cl", NULL, "clcnn_conv2d_bwd_to_wide",
                                  &ks.to_wide);
    if (st == CLCNN_OK)
        st = weights_chunks(dev, what, pb, &pl, args, workspace, &ks, &last);
    return finish(st, last, &ks);
}

static clcnn_status data_chunks(clcnn_device *dev, const char *what, const clcnn__conv_problem *pb,
                                const plan *pl, const clcnn__conv_args *args, cl_mem ws,
                                const kernels *ks, cl_event *last)
{
    const size_t kg = pb->kg;
    const int flags = pb->p.mode == CLCNN_CONV_CONVOLUTION ? FLAG_FLIP : 0;
    for (size_t n0 = 0; n0 < pb->x.n; n0 += pl->chunk) {
        const size_t count = pb->x.n - n0 < pl->chunk ? pb->x.n - n0 : pl->chunk;
        const size_t ld = count * pl->howo;
        cl_mem dyb;
        size_t dyo;
        CLCNN_TRY(wide_dy(dev, what, pb, pl, args->y, ws, ks, n0, count, &dyb, &dyo));
        /* col[g] (CgRS x ld) = W[g]^T (CgRS x Kg) * dY[g] (Kg x ld). */
        for (size_t g = 0; g < pb->p.groups; g++)
            CLCNN_TRY(sgemm(dev, what, true, false, pl->cgrs, ld, kg, args->w, g * kg * pl->cgrs,
                            pl->cgrs, dyb, dyo + g * kg * ld, ld, 0.0f, ws, g * pl->cgrs * ld, ld,
                            last));
        cl_int4 dims0, dims1, conv0;
        conv_ints(pb, n0, &dims0, &dims1, &conv0);
        cl_int4 conv1 = {{(cl_int)pb->p.dilation_h, (cl_int)pb->p.dilation_w, flags, (cl_int)ld}};
        const clcnn__kernel_arg cargs[] = {
            {sizeof(cl_mem), &ws},  {sizeof(cl_mem), &args->x}, {sizeof dims0, &dims0},
            {sizeof dims1, &dims1}, {sizeof conv0, &conv0},     {sizeof conv1, &conv1},
        };
        CLCNN_TRY(clcnn__set_args(ks->col2im, what, cargs, sizeof cargs / sizeof cargs[0]));
        const size_t global[3] = {round8(pb->x.w), pb->x.h, count * pb->x.c};
        CLCNN_TRY(clcnn__enqueue(dev, ks->col2im, what, 3, global, local_row, NULL));
    }
    return CLCNN_OK;
}

static clcnn_status data_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                             const clcnn__conv_args *args, cl_mem workspace)
{
    static const char what[] = "conv2d_backward_data: solver gemm";
    plan pl;
    const char *why = "";
    CLCNN_FAIL_IF(!make_plan(pb, dev, &pl, &why), CLCNN_STATUS_UNSUPPORTED, "%s: %s", what, why);
    CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, "%s: no workspace", what);
    kernels ks = {0};
    cl_event last = NULL;
    clcnn_status st = clcnn__kernel_create(dev, "conv2d_bwd_gemm.cl", NULL,
                                           "clcnn_conv2d_bwd_to_wide", &ks.to_wide);
    if (st == CLCNN_OK)
        st = clcnn__kernel_create(dev, "conv2d_bwd_gemm.cl", NULL, "clcnn_conv2d_col2im",
                                  &ks.col2im);
    if (st == CLCNN_OK)
        st = data_chunks(dev, what, pb, &pl, args, workspace, &ks, &last);
    return finish(st, last, &ks);
}

const clcnn__conv_solver clcnn__conv_bwd_data_gemm = {
    .name = "gemm",
    .algo = CLCNN_CONV_ALGO_GEMM,
    .applicable = gemm_applicable,
    .workspace_size = gemm_workspace,
    .run = data_run,
    /* fp32; CLBlast sums the Kg products in its own tiled order, col2im at most R*S more. */
    .tolerance = 1e-10,
};

const clcnn__conv_solver clcnn__conv_bwd_weights_gemm = {
    .name = "gemm",
    .algo = CLCNN_CONV_ALGO_GEMM,
    .applicable = gemm_applicable,
    .workspace_size = gemm_workspace,
    .run = weights_run,
    /* fp32 sums of N*Ho*Wo products in CLBlast's tiled order plus the chunks' beta adds. */
    .tolerance = 1e-9,
};
