/* The Winograd solvers F(2x2,3x3) and F(4x4,3x3) (3x3 filters, stride 1), and F(4x4,3x3) over
 * larger or strided filters split into 3x3 blocks and phase planes; no dilation, one group.
 * Transformed filters are cached per weight version; tiles run in chunks of bounded workspace. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conv2d_impl.h"
#include "log_impl.h"
#include "op_cache_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"
#include "tune_db_impl.h"

/* The kernel file's defaults (WINO_VP tiles per GEMM work-item, WINO_KB output channels per GEMM
 * work-item); kept option-free so exported binaries match. Layouts depend on both. A 16x16
 * block (16 float16 accumulators of AVX-512's 32 registers) measured 5-10% faster GEMM than
 * 8x16 on POCL 3.1. Tuned on the same machine, VGG-16's layers take 32x8 and 64x4 blocks instead
 * (1.5x over the defaults, BENCHMARKS.md); the defaults stay what an untuned device runs. */
#define DEFAULT_VP 16
#define DEFAULT_KB 16

/* Most work-items per work-group along axis 0: the transforms' and the GEMM's. */
#define TRANSFORM_WG 4
#define GEMM_WG 8

/* Most workspace bytes one call uses (also capped by the device's largest allocation); larger
 * problems run in several chunks of tiles. Smaller chunks keep V and M nearer the caches: on
 * VGG-16 conv1_2 with N=8 (POCL, 2 cores) F(4x4) took 104-123 ms with 32 MiB (14 chunks) and
 * 145-173 ms with 256 MiB (2 chunks). */
#define WORKSPACE_MAX ((size_t)32 << 20)

/* One launch configuration, a point of the solver's parameter space (cltune): tiles per GEMM
 * work-item (WINO_VP), output channels per GEMM work-item (WINO_KB), the most work-items per
 * work-group of the GEMM and of the transforms, and the workspace bound in MiB. */
typedef struct wino_config {
    int vp, kb, gemm_wg, transform_wg, ws_mib;
} wino_config;

static const wino_config wino_defaults = {DEFAULT_VP, DEFAULT_KB, GEMM_WG, TRANSFORM_WG,
                                          (int)(WORKSPACE_MAX >> 20)};

/* Test hooks, process-wide: the filter transforms run so far (proves the cache is used) and a
 * smaller workspace bound (0: WORKSPACE_MAX) so small problems exercise the chunking. */
static atomic_uint_fast64_t filter_transforms;
static atomic_size_t workspace_limit;

uint64_t clcnn__conv_winograd_filter_transforms(void)
{
    return (uint64_t)atomic_load(&filter_transforms);
}

void clcnn__conv_winograd_limit_workspace(size_t bytes)
{
    atomic_store(&workspace_limit, bytes);
}

/* The sizes of one problem under one tile size. */
typedef struct wino_geom {
    size_t m;      /* output tile side: 2 or 4 */
    size_t a2;     /* (m + 2)^2 transformed positions */
    bool split;    /* winograd4_split: the filter is cut into phase planes and 3x3 blocks */
    size_t sh, sw; /* phase planes per axis (the stride; 1 unless split) */
    size_t na, nb; /* 3x3 blocks of the ceil(R / sh) x ceil(S / sw) phase filter (1 unless split) */
    size_t cr;     /* the GEMM's reduction length: C * sh * sw * na * nb virtual channels */
    size_t th, tw; /* tiles per image along H, W */
    size_t tiles;  /* N * th * tw */
    size_t kp;     /* K rounded up to cfg.kb */
    size_t pc;     /* tiles per chunk, a multiple of cfg.vp */
    size_t ws;     /* workspace bytes: V and M of one chunk */
    wino_config cfg;
    char options[48]; /* the -D options of cfg ("" for the kernel file's defaults) */
} wino_geom;

static size_t round_up(size_t v, size_t to)
{
    return (v + to - 1) / to * to;
}

static size_t workspace_bound(const clcnn_device *dev, const wino_config *c)
{
    size_t bound = atomic_load(&workspace_limit);
    if (bound == 0)
        bound = (size_t)c->ws_mib << 20;
    if (dev->info.max_alloc_bytes != 0 && dev->info.max_alloc_bytes < bound)
        bound = (size_t)dev->info.max_alloc_bytes;
    return bound;
}

/* 3x3 blocks covering a filter of [k] taps at stride [s] (ceil(ceil(k / s) / 3)). */
static size_t split_blocks(size_t k, size_t s)
{
    return ((k + s - 1) / s + 2) / 3;
}

static void make_geom(const clcnn__conv_problem *pb, const clcnn_device *dev, size_t m, bool split,
                      const wino_config *c, wino_geom *g)
{
    const size_t vp = (size_t)c->vp;
    g->cfg = *c;
    g->options[0] = '\0';
    if (c->vp != DEFAULT_VP || c->kb != DEFAULT_KB)
        snprintf(g->options, sizeof g->options, "-DWINO_VP=%d -DWINO_KB=%d", c->vp, c->kb);
    g->m = m;
    g->a2 = (m + 2) * (m + 2);
    g->split = split;
    g->sh = split ? pb->p.stride_h : 1;
    g->sw = split ? pb->p.stride_w : 1;
    g->na = split ? split_blocks(pb->w.h, g->sh) : 1;
    g->nb = split ? split_blocks(pb->w.w, g->sw) : 1;
    g->cr = pb->x.c * g->sh * g->sw * g->na * g->nb;
    g->th = (pb->y.h + m - 1) / m;
    g->tw = (pb->y.w + m - 1) / m;
    g->tiles = pb->x.n * g->th * g->tw;
    g->kp = round_up(pb->y.c, (size_t)c->kb);
    const size_t per_tile = g->a2 * (g->cr + g->kp) * sizeof(float);
    size_t fit = workspace_bound(dev, c) / per_tile / vp * vp;
    if (fit < vp)
        fit = vp;
    g->pc = round_up(g->tiles, vp);
    if (g->pc > fit)
        g->pc = fit;
    g->ws = g->pc * per_tile;
}

/* The checks every Winograd solver shares once the filter and stride suit it: sizes the int
 * indexing and the device's allocations can hold. */
static bool wino_fits(const clcnn__conv_problem *pb, const clcnn_device *dev, size_t m, bool split,
                      const wino_config *c, const char **reason)
{
    const size_t limit = (size_t)1 << 31;
    /* First, so that the virtual channel count below cannot overflow. */
    if (pb->w.n * pb->w.c * pb->w.h * pb->w.w >= limit) {
        *reason = "a tensor or transformed buffer has 2^31 elements or more";
        return false;
    }
    wino_geom g;
    make_geom(pb, dev, m, split, c, &g);
    /* The kernels index with int; the filter transform must fit one allocation. */
    const size_t u_elems = g.a2 * g.cr * g.kp;
    if (pb->x.n * pb->x.c * pb->x.h * pb->x.w >= limit ||
        pb->y.n * pb->y.c * pb->y.h * pb->y.w >= limit || u_elems >= limit ||
        g.tiles + (size_t)c->vp >= limit || g.ws / sizeof(float) >= limit) {
        *reason = "a tensor or transformed buffer has 2^31 elements or more";
        return false;
    }
    const size_t max_alloc = (size_t)dev->info.max_alloc_bytes;
    if (max_alloc != 0 && (u_elems * sizeof(float) > max_alloc || g.ws > max_alloc)) {
        *reason = "the transformed filter or one chunk's workspace exceeds the device's "
                  "largest allocation";
        return false;
    }
    return true;
}

static bool wino_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev, size_t m,
                            const char **reason)
{
    const clcnn_conv_params *p = &pb->p;
    if (pb->w.h != 3 || pb->w.w != 3) {
        *reason = "the filter is not 3x3";
        return false;
    }
    if (p->stride_h != 1 || p->stride_w != 1) {
        *reason = "stride is not 1";
        return false;
    }
    if (p->dilation_h != 1 || p->dilation_w != 1) {
        *reason = "dilation is not 1";
        return false;
    }
    if (p->groups != 1) {
        *reason = "groups is not 1";
        return false;
    }
    return wino_fits(pb, dev, m, false, &wino_defaults, reason);
}

/* winograd4_split: any R x S filter and stride up to SPLIT_MAX_STRIDE on each axis, provided
 * F(4x4,3x3) over the split filter needs at most half the multiplies of the direct sum: per
 * output and input channel it does 36/16 * sh * sw * na * nb of them, direct does R * S. That
 * admits 5x5 (2.25 * 4 = 9 vs 25), 11x11 stride 4 (2.25 * 16 = 36 vs 121), 5x5 stride 2,
 * 6x6 and up, 7x7, 3x5 and 3x3 itself (winograd4 comes first for that), and refuses 1x1, 2x2,
 * 4x4, 3x3 stride 2 and 7x7 stride 2, where direct does the same work without transforms. */
#define SPLIT_MAX_STRIDE 8
#define SPLIT_MIN_CHANNELS 8

static bool wino4_split_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                   const char **reason)
{
    const clcnn_conv_params *p = &pb->p;
    if (p->dilation_h != 1 || p->dilation_w != 1) {
        *reason = "dilation is not 1";
        return false;
    }
    if (p->groups != 1) {
        *reason = "groups is not 1";
        return false;
    }
    if (p->stride_h > SPLIT_MAX_STRIDE || p->stride_w > SPLIT_MAX_STRIDE) {
        *reason = "stride above 8 (more than 64 phase planes per channel)";
        return false;
    }
    const size_t blocks = p->stride_h * p->stride_w * split_blocks(pb->w.h, p->stride_h) *
                          split_blocks(pb->w.w, p->stride_w);
    if (9 * blocks > 2 * pb->w.h * pb->w.w) {
        *reason = "the split filter would need more than half the direct multiplies (1x1, 2x2, "
                  "4x4, 3x3 stride 2, 7x7 stride 2 and the like)";
        return false;
    }
    /* With a reduction this short the GEMM is a fraction of the time and writing and reading M
     * (36 values per 16 outputs) costs more than direct's sum: LeNet conv1 (C = 1, 5x5, 4
     * virtual channels, N = 64) took 1.67-1.70 ms min against direct's 1.37-1.38. */
    if (pb->x.c * blocks < SPLIT_MIN_CHANNELS) {
        *reason = "fewer than 8 virtual channels (C * phase planes * 3x3 blocks): too short a "
                  "reduction for the transforms to pay";
        return false;
    }
    return wino_fits(pb, dev, 4, true, &wino_defaults, reason);
}

static bool wino2_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                             const char **reason)
{
    return wino_applicable(pb, dev, 2, reason);
}

static bool wino4_applicable(const clcnn__conv_problem *pb, const clcnn_device *dev,
                             const char **reason)
{
    return wino_applicable(pb, dev, 4, reason);
}

/* ---- the parameter space (cltune) ---------------------------------------------------------- */

enum { P_VP, P_KB, P_GEMM_WG, P_TRANSFORM_WG, P_WS_MIB, P_COUNT };

static const char *const param_names[P_COUNT] = {"WINO_VP", "WINO_KB", "GEMM_WG", "TRANSFORM_WG",
                                                 "WS_MIB"};

static wino_config config_of(const int *v)
{
    wino_config c = {v[P_VP], v[P_KB], v[P_GEMM_WG], v[P_TRANSFORM_WG], v[P_WS_MIB]};
    return c;
}

static void values_of(const wino_config *c, int *v)
{
    v[P_VP] = c->vp;
    v[P_KB] = c->kb;
    v[P_GEMM_WG] = c->gemm_wg;
    v[P_TRANSFORM_WG] = c->transform_wg;
    v[P_WS_MIB] = c->ws_mib;
}

/* Accumulators (floats) of one GEMM work-item past which registers spill (as the direct
 * solver's bound). */
#define MAX_ACCUMULATORS 256

/* Which variant a tuning's problem is for: the tile size and whether the filter is split. */
static void variant_of(const clcnn__conv_tunable *t, size_t *m, bool *split)
{
    *split = t == &clcnn__conv_tunable_winograd4_split;
    *m = t == &clcnn__conv_tunable_winograd2 ? 2 : 4;
}

/* The constraint: the defaults always; otherwise a compiler, accumulators that fit in registers,
 * blocks not mostly outside the output channels and tiles, work-groups within the device's
 * limits, and buffers within its allocations and int indexing. */
static bool wino_valid(const int *v, const void *user)
{
    const clcnn__conv_tuning *t = user;
    const clcnn__conv_problem *pb = &t->problem;
    const clcnn_device *dev = t->device;
    const wino_config c = config_of(v);
    if (memcmp(&c, &wino_defaults, sizeof c) == 0)
        return true;
    if (!dev->info.compiler_available)
        return false;
    if (c.vp * c.kb > MAX_ACCUMULATORS)
        return false;
    if (c.kb > 1 && (size_t)c.kb / 2 >= pb->y.c)
        return false;
    size_t m;
    bool split;
    variant_of(t->tunable, &m, &split);
    const size_t tiles = pb->x.n * ((pb->y.h + m - 1) / m) * ((pb->y.w + m - 1) / m);
    if (c.vp > 4 && (size_t)c.vp / 2 >= tiles)
        return false;
    const size_t wg = (size_t)(c.gemm_wg > c.transform_wg ? c.gemm_wg : c.transform_wg);
    if (wg > dev->info.max_work_group_size || wg > dev->info.max_work_item_sizes[0])
        return false;
    const char *why;
    return wino_fits(pb, dev, m, split, &c, &why);
}

static void wino_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                       const clcnn__conv_tunable *tunable, clcnn__conv_tuning *tuning,
                       clcnn__tune_space *space)
{
    tuning->problem = *pb;
    tuning->device = dev;
    tuning->tunable = tunable;
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const clcnn__tune_param params[P_COUNT] = {
        /* kernels/cl/conv2d_winograd.cl: 4, 8 or 16 tiles per vector, or 2 or 4 vectors of 16
         * per GEMM work-item */
        {param_names[P_VP], {4, 8, 16, 32, 64}, 5},
        /* 1 to 16 output channels per GEMM work-item */
        {param_names[P_KB], {2, 4, 8, 16}, 4},
        {param_names[P_GEMM_WG], {1, 2, 4, 8, 16}, 5},
        /* the transforms hold about 9 KiB of private arrays per work-item: small groups only */
        {param_names[P_TRANSFORM_WG], {1, 2, 4}, 3},
        {param_names[P_WS_MIB], {8, 16, 32, 64, 128}, 5},
    };
    memcpy(space->params, params, sizeof params);
    values_of(&wino_defaults, space->defaults);
    space->valid = wino_valid;
    space->user = tuning;
}

/* The tuned configuration for this problem: the database's entry for it, else the nearest
 * stored problem's, when valid here; else the defaults. */
static wino_config config_for(const clcnn__conv_problem *pb, const clcnn_device *dev,
                              const clcnn__conv_tunable *tunable)
{
    int v[P_COUNT];
    return clcnn__conv_tuned_point(pb, dev, tunable, param_names, P_COUNT, wino_valid, v)
               ? config_of(v)
               : wino_defaults;
}

static size_t wino_workspace_of(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                const clcnn__conv_tunable *t, const wino_config *c)
{
    size_t m;
    bool split;
    variant_of(t, &m, &split);
    wino_geom g;
    make_geom(pb, dev, m, split, c, &g);
    return g.ws;
}

static size_t wino2_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    const wino_config c = config_for(pb, dev, &clcnn__conv_tunable_winograd2);
    return wino_workspace_of(pb, dev, &clcnn__conv_tunable_winograd2, &c);
}

static size_t wino4_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    const wino_config c = config_for(pb, dev, &clcnn__conv_tunable_winograd4);
    return wino_workspace_of(pb, dev, &clcnn__conv_tunable_winograd4, &c);
}

static size_t wino4_split_workspace(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    const wino_config c = config_for(pb, dev, &clcnn__conv_tunable_winograd4_split);
    return wino_workspace_of(pb, dev, &clcnn__conv_tunable_winograd4_split, &c);
}

/* The kernels of one call; NULL members are not created yet. */
typedef struct wino_kernels {
    cl_kernel filter, input, gemm, output;
} wino_kernels;

static void release_kernels(wino_kernels *k)
{
    if (k->filter != NULL)
        clReleaseKernel(k->filter);
    if (k->input != NULL)
        clReleaseKernel(k->input);
    if (k->gemm != NULL)
        clReleaseKernel(k->gemm);
    if (k->output != NULL)
        clReleaseKernel(k->output);
}

static clcnn_status create_kernel(clcnn_device *dev, const wino_geom *g, const char *name,
                                  cl_kernel *k)
{
    return clcnn__kernel_create(dev, "conv2d_winograd.cl", g->options[0] ? g->options : NULL, name,
                                k);
}

/* The largest power of two up to [most] that divides [n]: a work-group size along one axis
 * (OpenCL 1.2 needs the global size to be a multiple of it). */
static size_t local_size(size_t n, size_t most)
{
    size_t l = 1;
    while (l * 2 <= most && n % (l * 2) == 0)
        l *= 2;
    return l;
}

/* Transforms the filter into a new buffer [out] u (owned by the caller) and waits for it, so a
 * buffer that reaches the cache is complete. */
static clcnn_status transform_filter(clcnn_device *dev, const clcnn__conv_problem *pb,
                                     const clcnn__conv_args *args, const wino_geom *g,
                                     const char *what, wino_kernels *ks, cl_mem *u)
{
    const char *name = g->split    ? "clcnn_wino4s_filter"
                       : g->m == 2 ? "clcnn_wino2_filter"
                                   : "clcnn_wino4_filter";
    CLCNN_TRY(create_kernel(dev, g, name, &ks->filter));
    const size_t bytes = g->a2 * g->cr * g->kp * sizeof(float);
    cl_int err;
    cl_mem buf = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clCreateBuffer(transformed filter %zu bytes)", what, bytes);
    cl_int4 dims = {{(cl_int)pb->y.c, (cl_int)g->cr, (cl_int)g->kp,
                     pb->p.mode == CLCNN_CONV_CONVOLUTION ? 1 : 0}};
    cl_int4 kgeo = {{(cl_int)pb->w.h, (cl_int)pb->w.w, (cl_int)g->sh, (cl_int)g->sw}};
    const clcnn__kernel_arg kargs[] = {
        {sizeof(cl_mem), &args->w},
        {sizeof(cl_mem), &buf},
        {sizeof dims, &dims},
        {sizeof kgeo, &kgeo}, /* split only */
    };
    const size_t global[3] = {g->kp, g->cr, 1};
    clcnn_status st = clcnn__set_args(ks->filter, what, kargs,
                                      sizeof kargs / sizeof kargs[0] - (g->split ? 0 : 1));
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, ks->filter, what, 3, global, NULL, NULL);
    if (st != CLCNN_OK) {
        clReleaseMemObject(buf);
        return st;
    }
    atomic_fetch_add(&filter_transforms, 1);
    *u = buf;
    return CLCNN_OK;
}

/* Enqueues the chunks: input transform, batched GEMM, output transform. */
static clcnn_status run_chunks(clcnn_device *dev, const clcnn__conv_problem *pb,
                               const clcnn__conv_args *args, const wino_geom *g, cl_mem u,
                               cl_mem workspace, const char *what, wino_kernels *ks)
{
    const char *in_name = g->split    ? "clcnn_wino4s_input"
                          : g->m == 2 ? "clcnn_wino2_input"
                                      : "clcnn_wino4_input";
    const char *out_name = g->m == 2 ? "clcnn_wino2_output" : "clcnn_wino4_output";
    CLCNN_TRY(create_kernel(dev, g, in_name, &ks->input));
    CLCNN_TRY(create_kernel(dev, g, "clcnn_wino_gemm", &ks->gemm));
    CLCNN_TRY(create_kernel(dev, g, out_name, &ks->output));
    const size_t vp = (size_t)g->cfg.vp, kb = (size_t)g->cfg.kb;
    /* The transforms take vectors of vw tiles (kernels/cl/conv2d_winograd.cl's WINO_VW). */
    const size_t vw = vp > 16 ? 16 : vp;

    const clcnn_conv_params *p = &pb->p;
    const int flags = (p->relu ? 2 : 0) | (args->bias != NULL ? 4 : 0);
    const cl_int m_off = (cl_int)(g->a2 * g->cr * g->pc);
    const cl_int4 in_geo = {{(cl_int)g->cr, (cl_int)pb->x.h, (cl_int)pb->x.w, (cl_int)g->tiles}};
    const cl_int4 split = {{(cl_int)g->sh, (cl_int)g->sw, (cl_int)g->na, (cl_int)g->nb}};
    const cl_int4 in_tiles = {{(cl_int)p->pad_h, (cl_int)p->pad_w, (cl_int)g->th, (cl_int)g->tw}};
    const cl_int4 out_geo = {{(cl_int)pb->y.c, (cl_int)pb->y.h, (cl_int)pb->y.w, (cl_int)g->tiles}};
    const cl_int4 out_tiles = {{flags, 0, (cl_int)g->th, (cl_int)g->tw}};
    clcnn_status st = CLCNN_OK;
    for (size_t begin = 0; begin < g->tiles && st == CLCNN_OK; begin += g->pc) {
        size_t pc = round_up(g->tiles - begin, vp);
        if (pc > g->pc)
            pc = g->pc;
        const cl_int4 in_chunk = {{(cl_int)begin, (cl_int)pc, 0, 0}};
        const cl_int4 gemm_dims = {{(cl_int)g->cr, (cl_int)g->kp, (cl_int)pc, 0}};
        const cl_int4 out_chunk = {{(cl_int)begin, (cl_int)pc, m_off, (cl_int)g->kp}};
        const clcnn__kernel_arg in_args[] = {
            {sizeof(cl_mem), &args->x},   {sizeof(cl_mem), &workspace}, {sizeof in_geo, &in_geo},
            {sizeof in_tiles, &in_tiles}, {sizeof in_chunk, &in_chunk}, {sizeof split, &split},
        };
        const clcnn__kernel_arg gemm_args[] = {
            {sizeof(cl_mem), &u},
            {sizeof(cl_mem), &workspace},
            {sizeof gemm_dims, &gemm_dims},
            {sizeof m_off, &m_off},
        };
        const clcnn__kernel_arg out_args[] = {
            {sizeof(cl_mem), &workspace},
            {sizeof(cl_mem), args->bias != NULL ? &args->bias : NULL},
            {sizeof(cl_mem), &args->y},
            {sizeof out_geo, &out_geo},
            {sizeof out_tiles, &out_tiles},
            {sizeof out_chunk, &out_chunk},
        };
        const size_t in_global[2] = {pc / vw, g->cr};
        const size_t gemm_global[3] = {g->kp / kb, pc / vp, g->a2};
        const size_t out_global[2] = {pc / vw, pb->y.c};
        /* Work-groups are kept small and explicit: POCL's CPU device otherwise picks thousands of
         * work-items per group, and with the transforms' large private arrays (about 9 KiB per
         * work-item) that overflowed a worker thread's stack (POCL 3.1, segfault in
         * clcnn_wino4_input at 113x32). The in-order queue orders the three steps. */
        const size_t in_local[2] = {local_size(in_global[0], (size_t)g->cfg.transform_wg), 1};
        const size_t gemm_local[3] = {local_size(gemm_global[0], (size_t)g->cfg.gemm_wg), 1, 1};
        const size_t out_local[2] = {local_size(out_global[0], (size_t)g->cfg.transform_wg), 1};
        st = clcnn__set_args(ks->input, what, in_args,
                             sizeof in_args / sizeof in_args[0] - (g->split ? 0 : 1));
        if (st == CLCNN_OK)
            st = clcnn__enqueue(dev, ks->input, what, 2, in_global, in_local, NULL);
        if (st == CLCNN_OK)
            st = clcnn__set_args(ks->gemm, what, gemm_args, sizeof gemm_args / sizeof gemm_args[0]);
        if (st == CLCNN_OK)
            st = clcnn__enqueue(dev, ks->gemm, what, 3, gemm_global, gemm_local, NULL);
        if (st == CLCNN_OK)
            st = clcnn__set_args(ks->output, what, out_args, sizeof out_args / sizeof out_args[0]);
        if (st == CLCNN_OK)
            st = clcnn__enqueue(dev, ks->output, what, 2, out_global, out_local, NULL);
    }
    return st;
}

static clcnn_status wino_run_config(clcnn_device *dev, const clcnn__conv_problem *pb,
                                    const clcnn__conv_args *args, cl_mem workspace,
                                    const clcnn__conv_tunable *tunable, const wino_config *c)
{
    size_t m;
    bool split;
    variant_of(tunable, &m, &split);
    const char *what = split    ? "conv2d: solver winograd4_split"
                       : m == 2 ? "conv2d: solver winograd2"
                                : "conv2d: solver winograd4";
    wino_geom g;
    make_geom(pb, dev, m, split, c, &g);
    CLCNN_FAIL_IF(workspace == NULL, CLCNN_STATUS_INVALID_ARG, "%s: no workspace", what);
    CLCNN_TRY(clcnn__check_workspace(workspace, g.ws, what));
    wino_kernels ks = {0};
    cl_mem u = NULL, own = NULL;
    /* The split layout also depends on the stride (the weights alone do not say it); both are at
     * most SPLIT_MAX_STRIDE, so four bits each. */
    clcnn__op_cache_key key = {
        .kind = split    ? "winograd4-split-filter"
                : m == 2 ? "winograd2-filter"
                         : "winograd4-filter",
        .variant = (pb->p.mode == CLCNN_CONV_CONVOLUTION ? 1u : 0u) | (uint64_t)c->kb << 1 |
                   (uint64_t)g.sh << 16 | (uint64_t)g.sw << 20,
    };
    /* Without the weight's handle there is no version to key on: transform every call. */
    if (args->w_tensor != NULL) {
        key.tensor_id = clcnn__tensor_id(args->w_tensor);
        key.version = clcnn__tensor_version(args->w_tensor);
        u = clcnn__op_cache_get(dev, &key);
    }
    clcnn_status st = CLCNN_OK;
    if (u == NULL) {
        st = transform_filter(dev, pb, args, &g, what, &ks, &own);
        if (st == CLCNN_OK && args->w_tensor != NULL) {
            /* The cache takes the reference; u stays valid until the next put. */
            st = clcnn__op_cache_put(dev, &key, own);
            u = own;
            own = NULL;
        } else {
            u = own;
        }
    }
    if (st == CLCNN_OK)
        st = run_chunks(dev, pb, args, &g, u, workspace, what, &ks);
    if (own != NULL)
        clReleaseMemObject(own);
    release_kernels(&ks);
    return st;
}

static clcnn_status wino_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                             const clcnn__conv_args *args, cl_mem workspace,
                             const clcnn__conv_tunable *tunable)
{
    const wino_config c = config_for(pb, dev, tunable);
    return wino_run_config(dev, pb, args, workspace, tunable, &c);
}

static clcnn_status wino2_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                              const clcnn__conv_args *args, cl_mem workspace)
{
    return wino_run(dev, pb, args, workspace, &clcnn__conv_tunable_winograd2);
}

static clcnn_status wino4_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                              const clcnn__conv_args *args, cl_mem workspace)
{
    return wino_run(dev, pb, args, workspace, &clcnn__conv_tunable_winograd4);
}

static clcnn_status wino4_split_run(clcnn_device *dev, const clcnn__conv_problem *pb,
                                    const clcnn__conv_args *args, cl_mem workspace)
{
    return wino_run(dev, pb, args, workspace, &clcnn__conv_tunable_winograd4_split);
}

const clcnn__conv_solver clcnn__conv_solver_winograd2 = {
    .name = "winograd2",
    .algo = CLCNN_CONV_ALGO_WINOGRAD2,
    .applicable = wino2_applicable,
    .workspace_size = wino2_workspace,
    .run = wino2_run,
    /* Measured NMSE 4e-14 to 2.3e-13 on He-scaled layers with C = 64 and 256 (direct: up to
     * 7e-13): sums over C terms, transforms with entries of magnitude 1. Direct's bound fits. */
    .tolerance = 1e-10,
};

const clcnn__conv_solver clcnn__conv_solver_winograd4 = {
    .name = "winograd4",
    .algo = CLCNN_CONV_ALGO_WINOGRAD4,
    .applicable = wino4_applicable,
    .workspace_size = wino4_workspace,
    .run = wino4_run,
    /* Measured NMSE 3.8e-13 to 3.9e-12 on the same layers (tests/test_winograd.c): the larger
     * transform entries (up to 8) amplify rounding; 1e-9 is about 15x that in RMS error. */
    .tolerance = 1e-9,
};

const clcnn__conv_solver clcnn__conv_solver_winograd4_split = {
    .name = "winograd4_split",
    .algo = CLCNN_CONV_ALGO_WINOGRAD4_SPLIT,
    .applicable = wino4_split_applicable,
    .workspace_size = wino4_split_workspace,
    .run = wino4_split_run,
    /* winograd4's transforms over a longer reduction (C * sh * sw * na * nb: 4C for 5x5, 16C
     * for 11x11 stride 4). Measured NMSE 8.7e-14 to 3.4e-12 on LeNet and AlexNet layers with
     * He-scaled weights (tests/test_winograd_split.c; direct: 1.5e-14 to 4.8e-13), the range
     * winograd4 shows on its 3x3 layers, so its bound fits with the same ~300x of margin. */
    .tolerance = 1e-9,
};

/* ---- cltune's entry points ------------------------------------------------------------------ */

static size_t wino_workspace_with(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                  const clcnn__conv_tunable *t, const int *values)
{
    const wino_config c = config_of(values);
    return wino_workspace_of(pb, dev, t, &c);
}

/* Runs one point of the space; ms is left to cltune, which times the call and a
 * clcnn_device_finish on the host clock (host_clock). */
static clcnn_status wino_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                  const clcnn__conv_args *args, cl_mem workspace,
                                  const clcnn__conv_tunable *t, const int *values, double *ms)
{
    (void)ms;
    const wino_config c = config_of(values);
    return wino_run_config(dev, pb, args, workspace, t, &c);
}

#define WINO_TUNABLE(var, row)                                                                     \
    const clcnn__conv_tunable clcnn__conv_tunable_##var = {                                        \
        .solver = &clcnn__conv_solver_##row,                                                       \
        .db_kernel = "conv2d_" #row,                                                               \
        .space = wino_space,                                                                       \
        .workspace_with = wino_workspace_with,                                                     \
        .run_with = wino_run_with,                                                                 \
        .host_clock = true,                                                                        \
    };

WINO_TUNABLE(winograd2, winograd2)
WINO_TUNABLE(winograd4, winograd4)
WINO_TUNABLE(winograd4_split, winograd4_split)
