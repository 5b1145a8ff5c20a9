/* The gemm solver: im2col into a device workspace, then CLBlast SGEMM with the weights, then an
 * epilogue kernel for bias and ReLU (kernels/cl/conv2d_im2col.cl). Any stride, padding, dilation,
 * groups and flip mode; the workspace is bounded (see WORKSPACE_BOUND). */
#include <clblast_c.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conv2d_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tune_db_impl.h"

/* The kernel file's vector width (IM2COL_VW's default); the global sizes depend on it. */
#define IM2COL_VW 8

/* Workspace bound. Images are processed in chunks: the workspace holds the columns of as many
 * images as fit in max(WORKSPACE_BOUND, one image's columns), never more than the batch and never
 * above the device's largest allocation. One image's columns are C*R*S * Ho*Wo floats (plus
 * K * Ho*Wo in the wide layout below); the solver is not applicable when that alone exceeds the
 * largest allocation. */
#define WORKSPACE_BOUND ((size_t)64 << 20)

/* The wide layout puts a chunk's images side by side in one column matrix, C*R*S x (chunk*Ho*Wo),
 * so each group is one GEMM of Kg x (chunk*Ho*Wo) x Cg*R*S into a temporary K x (chunk*Ho*Wo)
 * matrix that the epilogue moves back to NCHW. It pays when per-image GEMMs are small: CLBlast
 * spends a fixed cost per call (several kernel launches) that a small N cannot amortize. At or
 * above this many output pixels per image the GEMMs go straight into y, image by image. */
#define WIDE_MAX_PIXELS 4096

/* One launch configuration, a point of the solver's parameter space (cltune): the kernels'
 * vector width (IM2COL_VW), the workspace bound in MiB, and the layout (1: wide, 0: per image;
 * -1 in the defaults: by WIDE_MAX_PIXELS). */
typedef struct gemm_config {
    int vw, ws_mib, wide;
} gemm_config;

static const gemm_config gemm_defaults = {IM2COL_VW, (int)(WORKSPACE_BOUND >> 20), -1};

/* Flag bits of the kernels (IM2COL_FLIP, IM2COL_RELU, IM2COL_BIAS). */
#define FLAG_FLIP 1
#define FLAG_RELU 2
#define FLAG_BIAS 4

#define WHAT "conv2d: solver gemm"

typedef struct gemm_plan {
    size_t crs;       /* rows of the column matrix: C * R * S */
    size_t cgrs;      /* rows per group: C/groups * R * S */
    size_t howo;      /* output pixels per image */
    bool wide;        /* the wide layout (see WIDE_MAX_PIXELS) */
    size_t chunk;     /* images per chunk */
    size_t col;       /* floats of the column matrix for one chunk */
    size_t tmp;       /* floats of the temporary output for one chunk (wide layout only) */
    size_t vw;        /* the kernels' vector width */
    char options[24]; /* the kernels' -D options ("" for the file's defaults) */
} gemm_plan;

/* Sizes the chunks; false with a reason when one image does not fit. */
static bool make_plan(const clcnn__conv_problem *pb, const clcnn_device *dev, const gemm_config *c,
                      gemm_plan *plan, const char **reason)
{
    gemm_plan pl = {0};
    pl.crs = pb->x.c * pb->w.h * pb->w.w;
    pl.cgrs = pb->cg * pb->w.h * pb->w.w;
    pl.howo = pb->y.h * pb->y.w;
    pl.wide = c->wide < 0 ? pb->y.n > 1 && pl.howo < WIDE_MAX_PIXELS : c->wide != 0;
    pl.vw = (size_t)c->vw;
    if (c->vw != IM2COL_VW)
        snprintf(pl.options, sizeof pl.options, "-DIM2COL_VW=%d", c->vw);
    const size_t per_image = pl.crs * pl.howo + (pl.wide ? pb->y.c * pl.howo : 0);
    size_t chunk =
        clcnn__conv_images_per_chunk(pb, dev, per_image, (size_t)c->ws_mib << 20, reason);
    if (chunk == 0)
        return false;
    pl.chunk = chunk;
    pl.col = chunk * pl.crs * pl.howo;
    pl.tmp = pl.wide ? chunk * pb->y.c * pl.howo : 0;
    *plan = pl;
    return true;
}

static bool gemm_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                            const char **reason)
{
    gemm_plan pl;
    return make_plan(pb, dev, &gemm_defaults, &pl, reason);
}

/* ---- the parameter space (cltune) ---------------------------------------------------------- */

enum { P_VW, P_WS_MIB, P_WIDE, P_COUNT };

static const char *const param_names[P_COUNT] = {"IM2COL_VW", "WS_MIB", "WIDE"};

static gemm_config config_of(const int *v)
{
    gemm_config c = {v[P_VW], v[P_WS_MIB], v[P_WIDE]};
    return c;
}

/* The constraint: the defaults always; otherwise a compiler, a vector not mostly past the
 * output pixels, and one image's columns within the device's allocations. */
static bool gemm_valid(const int *v, const void *user)
{
    const clcnn__conv_tuning *t = user;
    const gemm_config c = config_of(v);
    if (memcmp(&c, &gemm_defaults, sizeof c) == 0)
        return true;
    if (!t->device->info.compiler_available && c.vw != IM2COL_VW)
        return false;
    if (c.vw > 2 && (size_t)c.vw / 2 >= t->problem.y.h * t->problem.y.w)
        return false;
    gemm_plan pl;
    const char *why;
    return make_plan(&t->problem, t->device, &c, &pl, &why);
}

static void gemm_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                       const clcnn__conv_tunable *tunable, clcnn__conv_tuning *tuning,
                       clcnn__tune_space *space)
{
    tuning->problem = *pb;
    tuning->device = dev;
    tuning->tunable = tunable;
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const clcnn__tune_param params[P_COUNT] = {
        /* kernels/cl/conv2d_im2col.cl: 2, 4, 8 or 16 lanes */
        {param_names[P_VW], {2, 4, 8, 16}, 4},
        {param_names[P_WS_MIB], {16, 32, 64, 128, 256}, 5},
        {param_names[P_WIDE], {-1, 0, 1}, 3},
    };
    memcpy(space->params, params, sizeof params);
    space->defaults[P_VW] = gemm_defaults.vw;
    space->defaults[P_WS_MIB] = gemm_defaults.ws_mib;
    space->defaults[P_WIDE] = gemm_defaults.wide;
    space->valid = gemm_valid;
    space->user = tuning;
}

/* The database's point for this problem, else the nearest stored problem's, when valid here;
 * else the defaults. */
static gemm_config config_for(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    int v[P_COUNT];
    return clcnn__conv_tuned_point(pb, dev, &clcnn__conv_tunable_gemm, param_names, P_COUNT,
                                   gemm_valid, v)
               ? config_of(v)
               : gemm_defaults;
}

static size_t workspace_of(const clcnn__conv_problem *pb, const clcnn_device *dev,
                           const gemm_config *c)
{
    gemm_plan pl;
    const char *why = NULL;
    if (!make_plan(pb, dev, c, &pl, &why))
        return 0;
    return (pl.col + pl.tmp) * sizeof(float);
}

static size_t gemm_workspace_size(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    const gemm_config c = config_for(pb, dev);
    return workspace_of(pb, dev, &c);
}

/* One row-major SGEMM C = A * B (alpha 1, beta 0) on the compute queue. *last receives its
 * event (the previous one is released). */
static clcnn_status sgemm(clcnn_device *dev, size_t m, size_t n, size_t k, cl_mem a, size_t a_off,
                          size_t a_ld, cl_mem b, size_t b_off, size_t b_ld, cl_mem c, size_t c_off,
                          size_t c_ld, cl_event *last)
{
    cl_event ev = NULL;
    CLBlastStatusCode code =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1.0f,
                     a, a_off, a_ld, b, b_off, b_ld, 0.0f, c, c_off, c_ld, &dev->compute, &ev);
    if (code != CLBlastSuccess) {
        /* CLBlast returns OpenCL codes above -1000 and its own below. */
        clcnn_status st = code > -1000 ? clcnn__status_of_cl(code) : CLCNN_STATUS_CL_ERROR;
        return (clcnn__set_error(st, code, __FILE__, __LINE__,
                                 WHAT ": CLBlastSgemm(M=%zu, N=%zu, K=%zu) -> status %d%s", m, n, k,
                                 (int)code,
                                 code > -1000 ? " (an OpenCL error)" : " (CLBlast's own code)"),
                st);
    }
    if (*last != NULL)
        clReleaseEvent(*last);
    *last = ev;
    return CLCNN_OK;
}

/* Enqueues everything for images n0 .. n0 + count - 1. */
static clcnn_status run_chunk(clcnn_device *dev, const clcnn__conv_problem *pb, const gemm_plan *pl,
                              const clcnn__conv_args *args, cl_mem ws, cl_kernel im2col,
                              cl_kernel epilogue, size_t n0, size_t count, int flags,
                              cl_event *last)
{
    const clcnn_conv_params *p = &pb->p;
    const size_t kg = pb->kg, howo = pl->howo;
    /* Wide: rows of count*howo with images side by side; else image blocks of crs rows. */
    const size_t ld = pl->wide ? count * howo : howo;
    const size_t img_stride = pl->wide ? howo : pl->crs * howo;
    cl_int4 dims0 = {{(cl_int)pb->x.c, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)pb->w.h}};
    cl_int4 dims1 = {{(cl_int)pb->w.w, (cl_int)pb->y.h, (cl_int)pb->y.w, (cl_int)n0}};
    cl_int4 conv0 = {
        {(cl_int)p->stride_h, (cl_int)p->stride_w, (cl_int)p->pad_h, (cl_int)p->pad_w}};
    cl_int4 conv1 = {{(cl_int)p->dilation_h, (cl_int)p->dilation_w, flags, 0}};
    cl_int4 layout = {{(cl_int)ld, (cl_int)img_stride, 0, 0}};
    const clcnn__kernel_arg iargs[] = {
        {sizeof(cl_mem), &args->x}, {sizeof(cl_mem), &ws},  {sizeof dims0, &dims0},
        {sizeof dims1, &dims1},     {sizeof conv0, &conv0}, {sizeof conv1, &conv1},
        {sizeof layout, &layout},
    };
    CLCNN_TRY(clcnn__set_args(im2col, WHAT ": im2col", iargs, sizeof iargs / sizeof iargs[0]));
    const size_t vblocks = (howo + pl->vw - 1) / pl->vw;
    const size_t iglobal[3] = {vblocks, pl->crs, count};
    CLCNN_TRY(clcnn__enqueue(dev, im2col, WHAT ": im2col", 3, iglobal, NULL, NULL));

    if (pl->wide) {
        /* Group g: tmp[g*Kg.., :] = W[g] (Kg x CgRS) * col[g*CgRS.., :]; then the epilogue. */
        for (size_t g = 0; g < p->groups; g++)
            CLCNN_TRY(sgemm(dev, kg, ld, pl->cgrs, args->w, g * kg * pl->cgrs, pl->cgrs, ws,
                            g * pl->cgrs * ld, ld, ws, pl->col + g * kg * ld, ld, last));
        cl_int4 edims = {{(cl_int)pb->y.c, (cl_int)howo, (cl_int)n0, flags}};
        cl_int4 elayout = {{(cl_int)ld, (cl_int)howo, (cl_int)pl->col, 0}};
        const clcnn__kernel_arg eargs[] = {
            {sizeof(cl_mem), &ws},      {sizeof(cl_mem), args->bias != NULL ? &args->bias : NULL},
            {sizeof(cl_mem), &args->y}, {sizeof edims, &edims},
            {sizeof elayout, &elayout},
        };
        CLCNN_TRY(
            clcnn__set_args(epilogue, WHAT ": epilogue", eargs, sizeof eargs / sizeof eargs[0]));
        const size_t eglobal[3] = {vblocks, pb->y.c, count};
        CLCNN_TRY(clcnn__enqueue(dev, epilogue, WHAT ": epilogue", 3, eglobal, NULL, NULL));
        return CLCNN_OK;
    }
    /* Image i, group g: y[n0+i, g*Kg.., :] = W[g] * col[i][g*CgRS.., :], straight into y. */
    for (size_t i = 0; i < count; i++)
        for (size_t g = 0; g < p->groups; g++)
            CLCNN_TRY(sgemm(dev, kg, howo, pl->cgrs, args->w, g * kg * pl->cgrs, pl->cgrs, ws,
                            i * img_stride + g * pl->cgrs * howo, howo, args->y,
                            ((n0 + i) * pb->y.c + g * kg) * howo, howo, last));
    return CLCNN_OK;
}

static clcnn_status run_all(clcnn_device *dev, const clcnn__conv_problem *pb, const gemm_plan *pl,
                            const clcnn__conv_args *args, cl_mem ws, cl_kernel im2col,
                            cl_kernel epilogue, cl_event *last)
{
    const int flags = (pb->p.mode == CLCNN_CONV_CONVOLUTION ? FLAG_FLIP : 0) |
                      (pb->p.relu ? FLAG_RELU : 0) | (args->bias != NULL ? FLAG_BIAS : 0);
    for (size_t n0 = 0; n0 < pb->x.n; n0 += pl->chunk) {
        size_t count = pb->x.n - n0 < pl->chunk ? pb->x.n - n0 : pl->chunk;
        CLCNN_TRY(run_chunk(dev, pb, pl, args, ws, im2col, epilogue, n0, count, flags, last));
    }
    if (!pl->wide && (flags & (FLAG_RELU | FLAG_BIAS)) != 0) {
        /* Bias and ReLU in place over the whole output, once. */
        const size_t howo = pl->howo;
        cl_int4 edims = {{(cl_int)pb->y.c, (cl_int)howo, 0, flags}};
        cl_int4 elayout = {{(cl_int)howo, (cl_int)(pb->y.c * howo), 0, 0}};
        const clcnn__kernel_arg eargs[] = {
            {sizeof(cl_mem), &args->y}, {sizeof(cl_mem), args->bias != NULL ? &args->bias : NULL},
            {sizeof(cl_mem), &args->y}, {sizeof edims, &edims},
            {sizeof elayout, &elayout},
        };
        CLCNN_TRY(
            clcnn__set_args(epilogue, WHAT ": epilogue", eargs, sizeof eargs / sizeof eargs[0]));
        const size_t eglobal[3] = {(howo + pl->vw - 1) / pl->vw, pb->y.c, pb->y.n};
        CLCNN_TRY(clcnn__enqueue(dev, epilogue, WHAT ": epilogue", 3, eglobal, NULL, NULL));
    }
    return CLCNN_OK;
}

static clcnn_status run_config(clcnn_device *dev, const clcnn__conv_problem *pb,
                               const clcnn__conv_args *args, cl_mem workspace, const gemm_config *c)
{
    gemm_plan pl;
    const char *why = "";
    CLCNN_FAIL_IF(!make_plan(pb, dev, c, &pl, &why), CLCNN_STATUS_UNSUPPORTED, WHAT ": %s", why);
    const char *options = pl.options[0] != '\0' ? pl.options : NULL;
    CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, WHAT ": no workspace");
    CLCNN_TRY(clcnn__check_workspace(workspace, (pl.col + pl.tmp) * sizeof(float), WHAT));
    CLCNN_TRACE("conv2d", "solver gemm: %s layout, %zu images per chunk, workspace %zu bytes",
                pl.wide ? "wide" : "per-image", pl.chunk, (pl.col + pl.tmp) * sizeof(float));
    cl_kernel im2col = NULL, epilogue = NULL;
    CLCNN_TRY(clcnn__kernel_create(dev, "conv2d_im2col.cl", options, "clcnn_im2col", &im2col));
    clcnn_status st =
        clcnn__kernel_create(dev, "conv2d_im2col.cl", options, "clcnn_im2col_epilogue", &epilogue);
    cl_event last = NULL;
    if (st == CLCNN_OK)
        st = run_all(dev, pb, &pl, args, workspace, im2col, epilogue, &last);
    if (last != NULL)
        clReleaseEvent(last);
    clReleaseKernel(im2col);
    if (epilogue != NULL)
        clReleaseKernel(epilogue);
    return st;
}

static clcnn_status gemm_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                             const clcnn__conv_args *args, cl_mem workspace)
{
    const gemm_config c = config_for(pb, dev);
    return run_config(dev, pb, args, workspace, &c);
}

static size_t gemm_workspace_with(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                  const clcnn__conv_tunable *tunable, const int *values)
{
    (void)tunable;
    const gemm_config c = config_of(values);
    return workspace_of(pb, dev, &c);
}

/* Runs one point of the space; ms is left to cltune, which times the call and a
 * clcnn_device_finish on the host clock (host_clock). */
static clcnn_status gemm_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                  const clcnn__conv_args *args, cl_mem workspace,
                                  const clcnn__conv_tunable *tunable, const int *values, double *ms)
{
    (void)ms;
    (void)tunable;
    const gemm_config c = config_of(values);
    return run_config(dev, pb, args, workspace, &c);
}

const clcnn__conv_tunable clcnn__conv_tunable_gemm = {
    .solver = &clcnn__conv_solver_gemm,
    .db_kernel = "conv2d_gemm",
    .space = gemm_space,
    .workspace_with = gemm_workspace_with,
    .run_with = gemm_run_with,
    .host_clock = true,
};

const clcnn__conv_solver clcnn__conv_solver_gemm = {
    .name = "gemm",
    .algo = CLCNN_CONV_ALGO_GEMM,
    .applicable = gemm_applicable,
    .workspace_size = gemm_workspace_size,
    .run = gemm_run,
    /* fp32 throughout; CLBlast sums the C*R*S products in its own (tiled) order. */
    .tolerance = 1e-10,
};
