/* Backward weights for short reductions over (c, r, s) (a first layer: C = 1), float32, NCHW,
 * stride 1 along the width:
 *   dw[k, c, r', s'] = sum over (n, oy, ox) of dy[n, k, oy, ox] * xp[n, c, oy*sh + r*dh, ox + s*dw]
 * with xp the zero-padded input and (r', s') = (r, s), or turned by 180 degrees in convolution
 * mode. The batch is split into chunks: each work-item owns BWR_KB output channels of one input
 * channel c over one chunk, and for each filter row r holds BWR_KB x BWR_S vectors of BWR_V
 * partial sums along an output row, so one vector load of dy and one of xp per tap feed every
 * fused multiply-add (the batch, not the 25 rows of a 5x5 filter, is the parallel dimension).
 * The lanes are summed in a fixed tree, the chunks by a second kernel in chunk order: results
 * do not depend on the launch. */
#include "common.clh"

/* Lanes of one vector along an output row: 4, 8 or 16, at most the output width. */
#ifndef BWR_V
#define BWR_V 16
#endif
/* Output channels per work-item: 1 to 8 (BWR_KB * BWR_S accumulators, keep <= 28). */
#ifndef BWR_KB
#define BWR_KB 4
#endif
/* Filter width: 1 to 11 (the taps of a row are unrolled). */
#ifndef BWR_S
#define BWR_S 5
#endif
/* Dilation along the width (>= 1), a constant so the taps' offsets fold into the loads. */
#ifndef BWR_DW
#define BWR_DW 1
#endif

#define BWR_CAT_(a, b) a##b
#define BWR_CAT(a, b) BWR_CAT_(a, b)
#define floatV BWR_CAT(float, BWR_V)
#define intV BWR_CAT(int, BWR_V)
#define vloadV BWR_CAT(vload, BWR_V)

/* The lanes of v summed pairwise, halves first: a fixed order. */
static float bwr_sum(floatV v)
{
#if BWR_V == 16
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
#elif BWR_V == 8
    const float4 b = v.lo + v.hi;
#else
    const float4 b = v;
#endif
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* One vector of a row: dy at columns col.. of the BWR_KB channel planes from dyr (with masked
 * a literal 1, the lanes outside keep zeroed: another vector owns them) times xp at col + s*dw
 * for every s, into acc. */
#define BWR_STEP(col, masked)                                                                      \
    do {                                                                                           \
        floatV d_[BWR_KB];                                                                         \
        _Pragma("unroll") for (int kk_ = 0; kk_ < BWR_KB; kk_++) {                                 \
            d_[kk_] = vloadV(0, dyr + kk_ * plane + (col));                                        \
            if (masked)                                                                            \
                d_[kk_] = select((floatV)(0.0f), d_[kk_], keep);                                   \
        }                                                                                          \
        _Pragma("unroll") for (int s_ = 0; s_ < BWR_S; s_++) {                                     \
            const floatV xv_ = vloadV(0, xr + (col) + s_ * BWR_DW);                                \
            _Pragma("unroll") for (int kk_ = 0; kk_ < BWR_KB; kk_++)                               \
                acc[kk_][s_] = fma(d_[kk_], xv_, acc[kk_][s_]);                                    \
        }                                                                                          \
    } while (0)

/* xp: N x C planes of hp x wp (padded); dy: N x K x Ho x Wo; out: chunk-major partial sums
 * (chunks x K x C x R x S; with one chunk, dw itself).
 * g0 = (C, hp, wp, K), g1 = (Ho, Wo, stride_h, dil_h), g2 = (-, images per chunk, N, flip),
 * g3 = (R, channel blocks, chunks, 0). Global size (channel blocks, C, chunks), local (1, 1, 1). */
__kernel void clcnn_conv2d_bwdw_rows(__global const float *restrict xp,
                                     __global const float *restrict dy,
                                     __global float *restrict out, const int4 g0, const int4 g1,
                                     const int4 g2, const int4 g3)
{
    const int C = g0.s0, hp = g0.s1, wp = g0.s2, K = g0.s3;
    const int Ho = g1.s0, Wo = g1.s1, sh = g1.s2, dh = g1.s3;
    const int per = g2.s1, N = g2.s2, flip = g2.s3;
    const int R = g3.s0, kblocks = g3.s1, chunks = g3.s2;
    const int kb = (int)get_global_id(0), c = (int)get_global_id(1), ch = (int)get_global_id(2);
    if (kb >= kblocks || c >= C || ch >= chunks)
        return;
    const int kown = kb * BWR_KB, k0 = min(kown, K - BWR_KB);
    const int n0 = ch * per, n1 = min(N, n0 + per);
    const int nfull = Wo / BWR_V, tail = Wo - nfull * BWR_V;
#if BWR_V == 16
    const intV lane = (intV)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#elif BWR_V == 8
    const intV lane = (intV)(0, 1, 2, 3, 4, 5, 6, 7);
#else
    const intV lane = (intV)(0, 1, 2, 3);
#endif
    /* The last vector of a row starts at Wo - BWR_V; its lanes below BWR_V - tail were summed by
     * the vector before. */
    const intV keep = lane >= (intV)(BWR_V - tail);
    const int RS = R * BWR_S;
    const int plane = Ho * Wo;
    __global float *o = out + (size_t)ch * K * C * RS;

    for (int r = 0; r < R; r++) {
        floatV acc[BWR_KB][BWR_S];
        for (int kk = 0; kk < BWR_KB; kk++)
            for (int s = 0; s < BWR_S; s++)
                acc[kk][s] = (floatV)(0.0f);
        for (int n = n0; n < n1; n++) {
            /* Row pointers advance by a row; the channels' planes are constant offsets (computed
             * per row they took 64-bit vector multiplies on the loads' critical path). */
            __global const float *xr = xp + ((size_t)n * C + c) * hp * wp + r * dh * wp;
            __global const float *dyr = dy + ((size_t)n * K + k0) * plane;
            for (int oy = 0; oy < Ho; oy++) {
                for (int i = 0; i < nfull; i++)
                    BWR_STEP(i * BWR_V, 0);
                if (tail > 0)
                    BWR_STEP(Wo - BWR_V, 1);
                xr += sh * wp;
                dyr += Wo;
            }
        }
        for (int kk = 0; kk < BWR_KB; kk++) {
            const int k = k0 + kk;
            if (k < kown)
                continue;
            for (int s = 0; s < BWR_S; s++) {
                const int t = flip ? RS - 1 - (r * BWR_S + s) : r * BWR_S + s;
                o[((size_t)k * C + c) * RS + t] = bwr_sum(acc[kk][s]);
            }
        }
    }
}

/* Filter height of the window variant below: 1 to 5 (BWR_R * BWR_S + BWR_R accumulators and
 * dy rows in registers, at most 30). */
#ifndef BWR_R
#define BWR_R 5
#endif

/* The same sums for stride and dilation 1 along the height, one output channel per work-item
 * (BWR_KB must be 1), in a single pass over dy: input row iy meets dy rows iy - r for every
 * filter row r, so a window of the last BWR_R dy rows stays in registers and each input row's
 * BWR_S shifted vectors feed all BWR_R * BWR_S taps. One dy load and BWR_S input loads per
 * BWR_R * BWR_S fused multiply-adds, and dy streams from memory while the sums run (the variant
 * above reads it once per filter row, the first pass waiting on memory). Arguments and global
 * size as clcnn_conv2d_bwdw_rows. */
__kernel void clcnn_conv2d_bwdw_rows_window(__global const float *restrict xp,
                                            __global const float *restrict dy,
                                            __global float *restrict out, const int4 g0,
                                            const int4 g1, const int4 g2, const int4 g3)
{
    const int C = g0.s0, hp = g0.s1, wp = g0.s2, K = g0.s3;
    const int Ho = g1.s0, Wo = g1.s1;
    const int per = g2.s1, N = g2.s2, flip = g2.s3;
    const int kblocks = g3.s1, chunks = g3.s2;
    const int k = (int)get_global_id(0), c = (int)get_global_id(1), ch = (int)get_global_id(2);
    if (k >= kblocks || k >= K || c >= C || ch >= chunks)
        return;
    const int n0 = ch * per, n1 = min(N, n0 + per);
    const int nvec = (Wo + BWR_V - 1) / BWR_V, tail = Wo - (nvec - 1) * BWR_V;
#if BWR_V == 16
    const intV lane = (intV)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#elif BWR_V == 8
    const intV lane = (intV)(0, 1, 2, 3, 4, 5, 6, 7);
#else
    const intV lane = (intV)(0, 1, 2, 3);
#endif
    /* The last vector of a row starts at Wo - BWR_V; its lanes below BWR_V - tail belong to the
     * vector before. */
    const intV keep = lane >= (intV)(BWR_V - tail);
    const int RS = BWR_R * BWR_S;

    floatV acc[BWR_R][BWR_S];
#pragma unroll
    for (int r = 0; r < BWR_R; r++)
#pragma unroll
        for (int s = 0; s < BWR_S; s++)
            acc[r][s] = (floatV)(0.0f);
    for (int n = n0; n < n1; n++) {
        __global const float *xn = xp + ((size_t)n * C + c) * hp * wp;
        __global const float *dyn = dy + ((size_t)n * K + k) * Ho * Wo;
        for (int i = 0; i < nvec; i++) {
            const bool last = i == nvec - 1;
            const int col = last ? Wo - BWR_V : i * BWR_V;
            /* d[r]: dy row iy - r at col (zero outside the map). */
            floatV d[BWR_R];
#pragma unroll
            for (int r = 0; r < BWR_R; r++)
                d[r] = (floatV)(0.0f);
            __global const float *xr = xn + col;
            __global const float *dr = dyn + col;
            for (int iy = 0; iy < Ho + BWR_R - 1; iy++) {
#pragma unroll
                for (int r = BWR_R - 1; r > 0; r--)
                    d[r] = d[r - 1];
                d[0] = (floatV)(0.0f);
                if (iy < Ho) {
                    d[0] = vloadV(0, dr);
                    if (last)
                        d[0] = select((floatV)(0.0f), d[0], keep);
                    dr += Wo;
                }
#pragma unroll
                for (int s = 0; s < BWR_S; s++) {
                    const floatV xv = vloadV(0, xr + s * BWR_DW);
#pragma unroll
                    for (int r = 0; r < BWR_R; r++)
                        acc[r][s] = fma(d[r], xv, acc[r][s]);
                }
                xr += wp;
            }
        }
    }
    __global float *o = out + (size_t)ch * K * C * RS + ((size_t)k * C + c) * RS;
#pragma unroll
    for (int r = 0; r < BWR_R; r++)
#pragma unroll
        for (int s = 0; s < BWR_S; s++) {
            const int t = flip ? RS - 1 - (r * BWR_S + s) : r * BWR_S + s;
            o[t] = bwr_sum(acc[r][s]);
        }
}

/* dw[i] = the sum over chunks of part[chunk][i], in chunk order; i < count. 1-D, rounded up. */
__kernel void clcnn_conv2d_bwdw_rows_sum(__global const float *restrict part,
                                         __global float *restrict dw, const int count,
                                         const int chunks)
{
    const int i = (int)get_global_id(0);
    if (i >= count)
        return;
    float acc = part[i];
    for (int ch = 1; ch < chunks; ch++)
        acc += part[(size_t)ch * count + i];
    dw[i] = acc;
}

#include "conv2d_rows_pad.clh"
