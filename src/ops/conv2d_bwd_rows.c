/* Backward weights of the row-vector solver (kernels/cl/conv2d_bwd_rows.cl): the input padded
 * into the workspace, partial sums per chunk of images computed along output rows, then summed
 * in chunk order. For short reductions over (c, r, s), where the batch is the parallelism. */
#include <stdio.h>

#include "conv2d_bwd_impl.h"
#include "program_impl.h"
#include "status_impl.h"

#define FILE_CL "conv2d_bwd_rows.cl"

/* The widest filter the kernel unrolls (BWR_S). */
#define MAX_S 11

/* Largest workspace (padded input and partial sums) the solver uses. */
#define MAX_WORKSPACE_BYTES ((size_t)512 << 20)

/* Work-items the reduction aims for at least. */
#define MIN_ITEMS 256

/* The partial sums start at a multiple of this many floats. */
#define REGION_ALIGN 1024

typedef struct bwr_plan {
    int v, kb;
    bool window; /* clcnn_conv2d_bwdw_rows_window: one pass over dy, one channel per work-item */
    size_t hp, wp, kblocks, chunks, per;
    size_t xp_floats, part_offset, part_floats;
} bwr_plan;

/* 0 for b == 0 (validated problems never have an empty extent). */
static size_t ceil_div(size_t a, size_t b)
{
    return b == 0 ? 0 : (a + b - 1) / b;
}

static bwr_plan make_plan(const clcnn__conv_problem *pb)
{
    const clcnn_conv_params *p = &pb->p;
    bwr_plan pl = {0};
    pl.v = pb->y.w >= 16 ? 16 : pb->y.w >= 8 ? 8 : 4;
    /* The window variant keeps R*S sums and R rows of dy in registers (at most 30 vectors); it
     * pays where a dy vector feeds enough taps (LeNet conv1, 5x5: kernel alone 0.42-0.45 ms
     * against 0.49-0.67 at best, same runs). */
    const size_t rs = pb->w.h * pb->w.w;
    pl.window = p->stride_h == 1 && p->dilation_h == 1 && rs >= 16 && rs + pb->w.h <= 30;
    pl.kb = pl.window ? 1 : pb->w.w <= 7 ? 4 : 2;
    if ((size_t)pl.kb > pb->y.c)
        pl.kb = (int)pb->y.c;
    pl.hp = (pb->y.h - 1) * p->stride_h + (pb->w.h - 1) * p->dilation_h + 1;
    pl.wp = pb->y.w + (pb->w.w - 1) * p->dilation_w;
    pl.kblocks = ceil_div(pb->y.c, (size_t)pl.kb);
    const size_t base = pl.kblocks * pb->x.c;
    pl.chunks = base == 0 || base >= MIN_ITEMS ? 1 : ceil_div(MIN_ITEMS, base);
    if (pl.chunks > pb->x.n)
        pl.chunks = pb->x.n;
    if (pl.chunks == 0)
        pl.chunks = 1;
    pl.per = ceil_div(pb->x.n, pl.chunks);
    pl.chunks = ceil_div(pb->x.n, pl.per);
    pl.xp_floats = pb->x.n * pb->x.c * pl.hp * pl.wp;
    pl.part_offset = ceil_div(pl.xp_floats, REGION_ALIGN) * REGION_ALIGN;
    pl.part_floats = pl.chunks > 1 ? pl.chunks * pb->w.n * pb->w.c * pb->w.h * pb->w.w : 0;
    return pl;
}

static bool bwr_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                           const char **reason)
{
    const clcnn_conv_params *p = &pb->p;
    if (p->groups != 1) {
        *reason = "grouped convolutions are not supported";
        return false;
    }
    if (p->stride_w != 1) {
        *reason = "needs stride 1 along the width";
        return false;
    }
    if (pb->w.w > MAX_S) {
        *reason = "the filter is wider than 11";
        return false;
    }
    if (pb->y.w < 4) {
        *reason = "fewer than 4 output columns";
        return false;
    }
    bwr_plan pl = make_plan(pb);
    const size_t limit = (size_t)1 << 31; /* the kernel indexes with int */
    const size_t total = pl.part_offset + pl.part_floats;
    if (pb->x.n * pb->x.c * pb->x.h * pb->x.w >= limit ||
        pb->y.n * pb->y.c * pb->y.h * pb->y.w >= limit || total >= limit) {
        *reason = "a tensor or the workspace has 2^31 elements or more";
        return false;
    }
    if (total * sizeof(float) > MAX_WORKSPACE_BYTES ||
        total * sizeof(float) > (size_t)dev->info.max_alloc_bytes) {
        *reason = "the padded input and partial sums are too large";
        return false;
    }
    return true;
}

static size_t bwr_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    (void)dev;
    bwr_plan pl = make_plan(pb);
    return (pl.part_offset + pl.part_floats) * sizeof(float);
}

static clcnn_status bwr_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                            const clcnn__conv_args *args, cl_mem workspace)
{
    static const char what[] = "conv2d_backward_weights: solver direct_rows";
    const char *why = "";
    CLCNN_FAIL_IF(!bwr_applicable(pb, dev, &why), CLCNN_STATUS_UNSUPPORTED, "%s: %s", what, why);
    const clcnn_conv_params *p = &pb->p;
    bwr_plan pl = make_plan(pb);
    char options[128];
    snprintf(options, sizeof options, "-DBWR_V=%d -DBWR_KB=%d -DBWR_S=%zu -DBWR_DW=%zu -DBWR_R=%zu",
             pl.v, pl.kb, pb->w.w, p->dilation_w, pl.window ? pb->w.h : (size_t)5);
    cl_kernel pad = NULL, reduce = NULL, sum = NULL;
    cl_mem part = NULL;
    clcnn_status st = clcnn__kernel_create(dev, FILE_CL, options, "clcnn_conv2d_rows_pad", &pad);
    if (st == CLCNN_OK)
        st = clcnn__kernel_create(
            dev, FILE_CL, options,
            pl.window ? "clcnn_conv2d_bwdw_rows_window" : "clcnn_conv2d_bwdw_rows", &reduce);
    if (st == CLCNN_OK && pl.chunks > 1)
        st = clcnn__kernel_create(dev, FILE_CL, options, "clcnn_conv2d_bwdw_rows_sum", &sum);
    if (st == CLCNN_OK && pl.chunks > 1) {
        cl_buffer_region region = {pl.part_offset * sizeof(float), pl.part_floats * sizeof(float)};
        cl_int err;
        part = clCreateSubBuffer(workspace, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                 &region, &err);
        if (err != CL_SUCCESS)
            st = CLCNN_CL_ERR(err, "%s: clCreateSubBuffer (partial sums)", what);
    }
    const size_t planes = pb->x.n * pb->x.c;
    const cl_int4 src = {{(cl_int)planes, (cl_int)pb->x.h, (cl_int)pb->x.w, 0}};
    const cl_int4 dst = {{(cl_int)pl.hp, (cl_int)pl.wp, (cl_int)p->pad_h, (cl_int)p->pad_w}};
    const clcnn__kernel_arg pargs[] = {{sizeof(cl_mem), &args->x},
                                       {sizeof(cl_mem), &workspace},
                                       {sizeof src, &src},
                                       {sizeof dst, &dst}};
    if (st == CLCNN_OK)
        st = clcnn__set_args(pad, what, pargs, 4);
    if (st == CLCNN_OK) {
        const size_t local[1] = {8};
        const size_t global[1] = {clcnn__round_up(planes, local[0])};
        st = clcnn__enqueue(dev, pad, what, 1, global, local, NULL);
    }
    const cl_mem target = pl.chunks > 1 ? part : args->w;
    const cl_int4 g0 = {{(cl_int)pb->x.c, (cl_int)pl.hp, (cl_int)pl.wp, (cl_int)pb->y.c}};
    const cl_int4 g1 = {
        {(cl_int)pb->y.h, (cl_int)pb->y.w, (cl_int)p->stride_h, (cl_int)p->dilation_h}};
    const cl_int4 g2 = {{(cl_int)p->dilation_w, (cl_int)pl.per, (cl_int)pb->x.n,
                         p->mode == CLCNN_CONV_CONVOLUTION ? 1 : 0}};
    const cl_int4 g3 = {{(cl_int)pb->w.h, (cl_int)pl.kblocks, (cl_int)pl.chunks, 0}};
    const clcnn__kernel_arg margs[] = {
        {sizeof(cl_mem), &workspace},
        {sizeof(cl_mem), &args->y},
        {sizeof(cl_mem), &target},
        {sizeof g0, &g0},
        {sizeof g1, &g1},
        {sizeof g2, &g2},
        {sizeof g3, &g3},
    };
    if (st == CLCNN_OK)
        st = clcnn__set_args(reduce, what, margs, sizeof margs / sizeof margs[0]);
    if (st == CLCNN_OK) {
        const size_t global[3] = {pl.kblocks, pb->x.c, pl.chunks};
        const size_t local[3] = {1, 1, 1};
        st = clcnn__enqueue(dev, reduce, what, 3, global, local, NULL);
    }
    if (st == CLCNN_OK && pl.chunks > 1) {
        const cl_int count = (cl_int)(pb->w.n * pb->w.c * pb->w.h * pb->w.w);
        const cl_int chunks = (cl_int)pl.chunks;
        const clcnn__kernel_arg sargs[] = {{sizeof(cl_mem), &part},
                                           {sizeof(cl_mem), &args->w},
                                           {sizeof count, &count},
                                           {sizeof chunks, &chunks}};
        st = clcnn__set_args(sum, what, sargs, 4);
        if (st == CLCNN_OK) {
            const size_t local[3] = {64, 1, 1};
            const size_t global[3] = {clcnn__round_up((size_t)count, 64), 1, 1};
            st = clcnn__enqueue(dev, sum, what, 3, global, local, NULL);
        }
    }
    if (part != NULL)
        clReleaseMemObject(part);
    if (pad != NULL)
        clReleaseKernel(pad);
    if (reduce != NULL)
        clReleaseKernel(reduce);
    if (sum != NULL)
        clReleaseKernel(sum);
    return st;
}

const clcnn__conv_solver clcnn__conv_bwd_weights_rows = {
    .name = "direct_rows",
    .algo = CLCNN_CONV_ALGO_DIRECT_ROWS,
    .applicable = bwr_applicable,
    .workspace_size = bwr_workspace,
    .run = bwr_run,
    /* fp32 sums of N*Ho*Wo terms: along rows in vectors, lanes in a tree, chunks in order. */
    .tolerance = 1e-9,
};
