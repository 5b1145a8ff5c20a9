/* The row-vector solver (kernels/cl/conv2d_rows.cl), forward and backward data: a padded copy
 * of the input in the workspace, then register blocks of output channels by rows by column
 * vectors, for any stride along the height, stride 1 along the width, one group. */
#include <stdio.h>

#include "conv2d_bwd_impl.h"
#include "program_impl.h"
#include "status_impl.h"

#define FILE_CL "conv2d_rows.cl"

/* The largest filter side the kernel unrolls (ROWS_R, ROWS_S). */
#define MAX_TAPS 11

/* Largest padded copy the solver makes. */
#define MAX_PADDED_BYTES ((size_t)512 << 20)

/* Work-items a launch aims for at least, so both of a CPU's cores (and a GPU's many) get work. */
#define MIN_ITEMS 256

/* Weights whose stream jumps by more than this many bytes per input channel are packed first
 * (clcnn_conv2d_rows_pack in the kernel file: CPUs' stride prefetchers stop at 2 KB). */
#define PACK_STRIDE_BYTES 2048

/* The packed weights start at a multiple of this many bytes of the workspace. */
#define REGION_ALIGN 4096

static bool force_pack;

void clcnn__conv_rows_force_pack(bool on)
{
    force_pack = on;
}

/* One problem as the kernel sees it: input planes (cin of h x w per image) convolved into kout
 * planes of ho x wo, the weight of (output k, input c, tap) at k * wks + c * wcs + tap. */
typedef struct rows_geom {
    size_t n, cin, h, w, kout, ho, wo;
    size_t r, s, sh, dh, dw, pad_h, pad_w;
    size_t wks, wcs;
    bool flip, relu;
} rows_geom;

/* The launch: vector width, vectors per row, rows and channels per block, the padded plane and
 * the grid. */
typedef struct rows_plan {
    int v, nv, oyb, kb;
    size_t hp, wp;
    size_t rblocks, cblocks, kblocks, per_item, rgroups;
    bool packed;          /* the weights are packed into the workspace first */
    size_t packed_offset; /* bytes: where they go, after the padded input */
    size_t packed_floats;
} rows_plan;

/* 0 for b == 0 (validated problems never have an empty extent). */
static size_t ceil_div(size_t a, size_t b)
{
    return b == 0 ? 0 : (a + b - 1) / b;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static rows_plan make_plan(const rows_geom *g)
{
    rows_plan pl = {0};
    pl.v = g->wo >= 12 ? 16 : g->wo >= 6 ? 8 : 4;
    size_t width = g->wo > (size_t)pl.v ? g->wo : (size_t)pl.v; /* columns computed */
    pl.nv = (int)min_size(ceil_div(width, (size_t)pl.v), 2);
    /* 16 accumulators: 8 channels by 2 rows of one vector, or by 1 row of two. */
    pl.oyb = (int)min_size(pl.nv == 1 ? 2 : 1, g->ho);
    pl.kb = (int)min_size(8, g->kout);
    pl.hp = (g->ho - 1) * g->sh + (g->r - 1) * g->dh + 1;
    pl.wp = width + (g->s - 1) * g->dw;
    pl.rblocks = ceil_div(g->ho, (size_t)pl.oyb);
    pl.cblocks = ceil_div(g->wo, (size_t)pl.v * (size_t)pl.nv);
    pl.kblocks = ceil_div(g->kout, (size_t)pl.kb);
    size_t base = pl.kblocks * g->n * pl.cblocks;
    pl.rgroups = base >= MIN_ITEMS ? 1 : min_size(pl.rblocks, ceil_div(MIN_ITEMS, base));
    pl.per_item = ceil_div(pl.rblocks, pl.rgroups);
    pl.rgroups = ceil_div(pl.rblocks, pl.per_item);
    pl.packed = force_pack || g->wcs * sizeof(float) > PACK_STRIDE_BYTES;
    pl.packed_offset =
        ceil_div(g->n * g->cin * pl.hp * pl.wp * sizeof(float), REGION_ALIGN) * REGION_ALIGN;
    pl.packed_floats = pl.packed ? pl.kblocks * g->cin * (size_t)pl.kb * g->r * g->s : 0;
    return pl;
}

static bool geom_applicable(const rows_geom *g, const clcnn_device *dev, const char **reason)
{
    if (g->r > MAX_TAPS || g->s > MAX_TAPS) {
        *reason = "the filter is larger than 11x11";
        return false;
    }
    if (g->wo < 4) {
        *reason = "fewer than 4 output columns";
        return false;
    }
    const size_t limit = (size_t)1 << 31; /* the kernel indexes with int */
    rows_plan pl = make_plan(g);
    size_t padded = pl.packed_offset / sizeof(float) + pl.packed_floats;
    if (g->n * g->cin * g->h * g->w >= limit || g->n * g->kout * g->ho * g->wo >= limit ||
        g->kout * g->wks >= limit || g->cin * g->wcs >= limit || padded >= limit) {
        *reason = "a tensor has 2^31 elements or more";
        return false;
    }
    if (padded * sizeof(float) > MAX_PADDED_BYTES ||
        padded * sizeof(float) > (size_t)dev->info.max_alloc_bytes) {
        *reason = "the padded copy of the input is too large";
        return false;
    }
    return true;
}

static size_t geom_workspace(const rows_geom *g)
{
    rows_plan pl = make_plan(g);
    return pl.packed ? pl.packed_offset + pl.packed_floats * sizeof(float)
                     : g->n * g->cin * pl.hp * pl.wp * sizeof(float);
}

/* Enqueues the packing of the weights into [out] (a region of the workspace). */
static clcnn_status pack_weights(clcnn_device *dev, const rows_geom *g, const rows_plan *pl,
                                 const char *options, cl_mem w, cl_mem out, const char *what)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, FILE_CL, options, "clcnn_conv2d_rows_pack", &k));
    const cl_int4 dims = {{(cl_int)g->cin, (cl_int)g->kout, (cl_int)g->wks, (cl_int)g->wcs}};
    const clcnn__kernel_arg args[] = {
        {sizeof(cl_mem), &w}, {sizeof(cl_mem), &out}, {sizeof dims, &dims}};
    clcnn_status st = clcnn__set_args(k, what, args, 3);
    if (st == CLCNN_OK) {
        const size_t local[2] = {8, 1};
        const size_t global[2] = {clcnn__round_up(g->cin, local[0]), pl->kblocks};
        st = clcnn__enqueue(dev, k, what, 2, global, local, NULL);
    }
    clReleaseKernel(k);
    return st;
}

static clcnn_status geom_run(clcnn_device *dev, const rows_geom *g, cl_mem x, cl_mem w, cl_mem bias,
                             cl_mem y, cl_mem xp, const char *what)
{
    rows_plan pl = make_plan(g);
    char options[256];
    snprintf(options, sizeof options,
             "-DROWS_V=%d -DROWS_NV=%d -DROWS_OYB=%d -DROWS_KB=%d -DROWS_R=%zu -DROWS_S=%zu "
             "-DROWS_FLIP=%d -DROWS_WP=%zu -DROWS_SH=%zu -DROWS_DH=%zu -DROWS_DW=%zu "
             "-DROWS_WKS=%zu -DROWS_PACKED=%d",
             pl.v, pl.nv, pl.oyb, pl.kb, g->r, g->s, g->flip ? 1 : 0, pl.wp, g->sh, g->dh, g->dw,
             pl.packed ? g->r * g->s : g->wks, pl.packed ? 1 : 0);
    cl_kernel pad = NULL, conv = NULL;
    cl_mem packed = NULL;
    clcnn_status st = CLCNN_OK;
    if (pl.packed) {
        cl_buffer_region region = {pl.packed_offset, pl.packed_floats * sizeof(float)};
        cl_int err;
        packed =
            clCreateSubBuffer(xp, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
        if (err != CL_SUCCESS)
            st = CLCNN_CL_ERR(err, "%s: clCreateSubBuffer (packed weights)", what);
        if (st == CLCNN_OK)
            st = pack_weights(dev, g, &pl, options, w, packed, what);
    }
    if (st == CLCNN_OK)
        st = clcnn__kernel_create(dev, FILE_CL, options, "clcnn_conv2d_rows_pad", &pad);
    if (st == CLCNN_OK)
        st = clcnn__kernel_create(dev, FILE_CL, options, "clcnn_conv2d_rows", &conv);
    const size_t planes = g->n * g->cin;
    const cl_int4 src = {{(cl_int)planes, (cl_int)g->h, (cl_int)g->w, 0}};
    const cl_int4 dst = {{(cl_int)pl.hp, (cl_int)pl.wp, (cl_int)g->pad_h, (cl_int)g->pad_w}};
    const clcnn__kernel_arg pargs[] = {
        {sizeof(cl_mem), &x}, {sizeof(cl_mem), &xp}, {sizeof src, &src}, {sizeof dst, &dst}};
    if (st == CLCNN_OK)
        st = clcnn__set_args(pad, what, pargs, 4);
    if (st == CLCNN_OK) {
        const size_t local[1] = {8};
        const size_t global[1] = {clcnn__round_up(planes, local[0])};
        st = clcnn__enqueue(dev, pad, what, 1, global, local, NULL);
    }
    const int flags = (g->relu ? 1 : 0) | (bias != NULL ? 2 : 0);
    const cl_int4 g0 = {{(cl_int)g->cin, (cl_int)pl.hp, (cl_int)pl.wp, (cl_int)g->kout}};
    const cl_int4 g1 = {{(cl_int)g->ho, (cl_int)g->wo, (cl_int)g->sh, (cl_int)g->dh}};
    const cl_int4 g2 = {{(cl_int)g->dw, (cl_int)g->wks, (cl_int)g->wcs, (cl_int)pl.per_item}};
    const cl_int4 g3 = {{(cl_int)pl.rblocks, (cl_int)pl.cblocks, (cl_int)pl.kblocks, flags}};
    const cl_mem wr = pl.packed ? packed : w;
    const clcnn__kernel_arg cargs[] = {
        {sizeof(cl_mem), &xp}, {sizeof(cl_mem), &wr}, {sizeof(cl_mem), bias != NULL ? &bias : NULL},
        {sizeof(cl_mem), &y},  {sizeof g0, &g0},      {sizeof g1, &g1},
        {sizeof g2, &g2},      {sizeof g3, &g3},
    };
    if (st == CLCNN_OK)
        st = clcnn__set_args(conv, what, cargs, sizeof cargs / sizeof cargs[0]);
    if (st == CLCNN_OK) {
        const size_t global[3] = {pl.kblocks, pl.rgroups, g->n * pl.cblocks};
        const size_t local[3] = {1, 1, 1};
        st = clcnn__enqueue(dev, conv, what, 3, global, local, NULL);
    }
    if (packed != NULL)
        clReleaseMemObject(packed);
    if (pad != NULL)
        clReleaseKernel(pad);
    if (conv != NULL)
        clReleaseKernel(conv);
    return st;
}

/* ---- forward ------------------------------------------------------------------------------- */

static bool fwd_geom(const clcnn__conv_problem *pb, rows_geom *g, const char **reason)
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
    *g = (rows_geom){pb->x.n,
                     pb->x.c,
                     pb->x.h,
                     pb->x.w,
                     pb->y.c,
                     pb->y.h,
                     pb->y.w,
                     pb->w.h,
                     pb->w.w,
                     p->stride_h,
                     p->dilation_h,
                     p->dilation_w,
                     p->pad_h,
                     p->pad_w,
                     pb->x.c * pb->w.h * pb->w.w,
                     pb->w.h * pb->w.w,
                     p->mode == CLCNN_CONV_CONVOLUTION,
                     p->relu};
    return true;
}

static bool fwd_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                           const char **reason)
{
    rows_geom g;
    return fwd_geom(pb, &g, reason) && geom_applicable(&g, dev, reason);
}

static size_t fwd_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    (void)dev;
    rows_geom g;
    const char *why;
    return fwd_geom(pb, &g, &why) ? geom_workspace(&g) : 0;
}

static clcnn_status fwd_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                            const clcnn__conv_args *args, cl_mem workspace)
{
    rows_geom g;
    const char *why = "";
    CLCNN_FAIL_IF(!fwd_geom(pb, &g, &why), CLCNN_STATUS_UNSUPPORTED,
                  "conv2d: solver direct_rows: %s", why);
    return geom_run(dev, &g, args->x, args->w, args->bias, args->y, workspace,
                    "conv2d: solver direct_rows");
}

const clcnn__conv_solver clcnn__conv_solver_rows = {
    .name = "direct_rows",
    .algo = CLCNN_CONV_ALGO_DIRECT_ROWS,
    .applicable = fwd_applicable,
    .workspace_size = fwd_workspace,
    .run = fwd_run,
    /* fp32 accumulation over C*R*S terms in a fixed order, as direct. */
    .tolerance = 1e-10,
};

/* ---- backward data: dy convolved with the weights' channels swapped and the filter turned ---- */

static bool data_geom(const clcnn__conv_problem *pb, rows_geom *g, const char **reason)
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
    /* dx[c][y][x] = sum over (k, r, s) of dy[k][y + pad - r*d][x + pad - s*d] * w[k][c][r][s]:
     * a cross-correlation of dy padded by reach - pad with the filter turned by 180 degrees. */
    *g = (rows_geom){pb->y.n,
                     pb->y.c,
                     pb->y.h,
                     pb->y.w,
                     pb->x.c,
                     pb->x.h,
                     pb->x.w,
                     pb->w.h,
                     pb->w.w,
                     1,
                     p->dilation_h,
                     p->dilation_w,
                     reach_h - p->pad_h,
                     reach_w - p->pad_w,
                     pb->w.h * pb->w.w,
                     pb->x.c * pb->w.h * pb->w.w,
                     p->mode != CLCNN_CONV_CONVOLUTION,
                     false};
    return true;
}

static bool data_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                            const char **reason)
{
    rows_geom g;
    return data_geom(pb, &g, reason) && geom_applicable(&g, dev, reason);
}

static size_t data_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    (void)dev;
    rows_geom g;
    const char *why;
    return data_geom(pb, &g, &why) ? geom_workspace(&g) : 0;
}

static clcnn_status data_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                             const clcnn__conv_args *args, cl_mem workspace)
{
    rows_geom g;
    const char *why = "";
    CLCNN_FAIL_IF(!data_geom(pb, &g, &why), CLCNN_STATUS_UNSUPPORTED,
                  "conv2d_backward_data: solver direct_rows: %s", why);
    return geom_run(dev, &g, args->y, args->w, NULL, args->x, workspace,
                    "conv2d_backward_data: solver direct_rows");
}

const clcnn__conv_solver clcnn__conv_bwd_data_rows = {
    .name = "direct_rows",
    .algo = CLCNN_CONV_ALGO_DIRECT_ROWS,
    .applicable = data_applicable,
    .workspace_size = data_workspace,
    .run = data_run,
    /* fp32 accumulation over K*R*S terms in a fixed order. */
    .tolerance = 1e-10,
};
