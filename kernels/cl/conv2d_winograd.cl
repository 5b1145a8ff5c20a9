/* Winograd convolution F(2x2,3x3) and F(4x4,3x3) (Lavin & Gray 2015), NCHW float32, stride 1:
 * filter transform U = G g G^T, input transform V = B^T d B, a batched GEMM over the alpha^2
 * transformed positions, output transform Y = A^T M A. Transforms run on WINO_VW tiles at once,
 * the GEMM on WINO_VP. */
#include "common.clh"

/* Tiles per GEMM work-item: 4, 8, 16, 32 or 64. The vector width WINO_VW is WINO_VP up to 16
 * and 16 above it; a GEMM work-item then holds WINO_NV = WINO_VP / 16 vectors of tiles per
 * output channel, so each channel step loads WINO_NV vectors of V for WINO_KB broadcasts of U.
 * Transform work-items take WINO_VW tiles. */
#ifndef WINO_VP
#define WINO_VP 16
#endif
#if WINO_VP > 16
#define WINO_VW 16
#else
#define WINO_VW WINO_VP
#endif
#define WINO_NV (WINO_VP / WINO_VW)
/* Output channels per GEMM work-item (accumulator vectors held in registers): 1 to 16. */
#ifndef WINO_KB
#define WINO_KB 16
#endif

#define WINO_CAT_(a, b) a##b
#define WINO_CAT(a, b) WINO_CAT_(a, b)
#define floatV WINO_CAT(float, WINO_VW)
#define vloadV WINO_CAT(vload, WINO_VW)
#define vstoreV WINO_CAT(vstore, WINO_VW)

/* Flag bits, as in conv2d_direct.cl. */
#define WINO_FLIP 1
#define WINO_RELU 2
#define WINO_BIAS 4

/* Layouts (host: src/ops/conv2d_winograd.c), alpha = m + 2, Kp = K rounded up to WINO_KB,
 * pc = tiles of the chunk rounded up to WINO_VP, xi = alpha * row + column:
 *   U  [xi][Kp / WINO_KB][C][WINO_KB]   a work-item's filter panel is contiguous
 *   V  [xi][pc / WINO_VP][C][WINO_VP]   a work-item's tile panel is contiguous
 *   M  [xi][Kp][pc]
 * Tile p (0 <= p < N * th * tw) is image p / (th * tw), tile row (p / tw) % th, column p % tw. */

/* Where the WINO_VW tiles of transform work-item pb (tiles pb * WINO_VW on) start in V[0]:
 * part pb % WINO_NV of panel pb / WINO_NV, channel c of C. */
#define WINO_PANEL(pb, C, c)                                                                       \
    (((size_t)((pb) / WINO_NV) * (C) + (c)) * WINO_VP + (size_t)((pb) % WINO_NV) * WINO_VW)

/* ---- 1-D transforms; o[i * os] = T d[j * ds]. Row scalings are powers of two or folded into
 * G, so the rounding matches the unscaled matrices. ---- */

/* F(2,3), points 0, 1, -1 and infinity. B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 -1 0 1]. */
static inline void wino2_bt(floatV *o, int os, const floatV *d, int ds)
{
    o[0] = d[0] - d[2 * ds];
    o[os] = d[ds] + d[2 * ds];
    o[2 * os] = d[2 * ds] - d[ds];
    o[3 * os] = d[3 * ds] - d[ds];
}

/* G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static inline void wino2_g(float *o, int os, const float *g, int gs)
{
    const float h = 0.5f * (g[0] + g[2 * gs]);
    o[0] = g[0];
    o[os] = fma(0.5f, g[gs], h);
    o[2 * os] = fma(-0.5f, g[gs], h);
    o[3 * os] = g[2 * gs];
}

/* A^T = [1 1 1 0; 0 1 -1 1]. */
static inline void wino2_at(floatV *o, int os, const floatV *m, int ms)
{
    o[0] = m[0] + m[ms] + m[2 * ms];
    o[os] = m[ms] - m[2 * ms] + m[3 * ms];
}

/* F(4,3), points 0, 1, -1, 1/2, -2 and infinity: the half-point pair keeps the transform
 * entries smaller than 0, +-1, +-2 and measured ~1.5x lower fp32 error (Barabasz et al. 2020
 * report the same). B^T rows:
 *   [2 -3 -4 3 2 0] [0 -2 1 5 2 0] [0 -2 5 -1 -2 0] [0 2 1 -2 -1 0] [0 1 -2 -1 2 0]
 *   [0 2 -3 -4 3 2] */
static inline void wino4_bt(floatV *o, int os, const floatV *d, int ds)
{
    const floatV d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds],
                 d5 = d[5 * ds];
    o[0] = 2.0f * (d0 + d4) + 3.0f * (d3 - d1) - 4.0f * d2;
    o[os] = d2 + 5.0f * d3 + 2.0f * (d4 - d1);
    o[2 * os] = 5.0f * d2 - d3 - 2.0f * (d1 + d4);
    o[3 * os] = 2.0f * (d1 - d3) + d2 - d4;
    o[4 * os] = d1 - d3 + 2.0f * (d4 - d2);
    o[5 * os] = 2.0f * (d1 + d5) + 3.0f * (d4 - d2) - 4.0f * d3;
}

/* G rows: [1/2 0 0] [1/6 1/6 1/6] [1/6 -1/6 1/6] [16/15 8/15 4/15] [1/30 -1/15 2/15]
 * [0 0 1/2]. */
static inline void wino4_g(float *o, int os, const float *g, int gs)
{
    const float g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    o[0] = 0.5f * g0;
    o[os] = (g0 + g1 + g2) * (1.0f / 6.0f);
    o[2 * os] = (g0 - g1 + g2) * (1.0f / 6.0f);
    o[3 * os] = (4.0f * g0 + 2.0f * g1 + g2) * (4.0f / 15.0f);
    o[4 * os] = (g0 - 2.0f * g1 + 4.0f * g2) * (1.0f / 30.0f);
    o[5 * os] = 0.5f * g2;
}

/* A^T rows: [1 1 1 1 1 0] [0 1 -1 1/2 -2 0] [0 1 1 1/4 4 0] [0 1 -1 1/8 -8 1]. */
static inline void wino4_at(floatV *o, int os, const floatV *m, int ms)
{
    const floatV m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms];
    const floatV sp = m1 + m2, sm = m1 - m2;
    o[0] = m[0] + sp + m3 + m4;
    o[os] = sm + 0.5f * m3 - 2.0f * m4;
    o[2 * os] = sp + 0.25f * m3 + 4.0f * m4;
    o[3 * os] = sm + 0.125f * m3 - 8.0f * m4 + m[5 * ms];
}

/* ---- filter transform ---- */

/* Reads the 3x3 filter of (k, c), flipped for true convolution. */
static inline void wino_load_filter(__global const float *w, int k, int c, int C, int flip,
                                    float *g)
{
    __global const float *src = w + ((size_t)k * C + c) * 9;
#pragma unroll
    for (int i = 0; i < 9; i++)
        g[i] = src[flip ? 8 - i : i];
}

/* Global size (Kp, C). dims = (K, C, Kp, flip). Channels k >= K get zeros, so the GEMM needs no
 * bounds checks. */
__kernel void clcnn_wino2_filter(__global const float *restrict w, __global float *restrict u,
                                 const int4 dims)
{
    const int K = dims.s0, C = dims.s1, Kp = dims.s2;
    const int k = (int)get_global_id(0), c = (int)get_global_id(1);
    float g[9] = {0.0f}, t[12], r[16];
    if (k < K)
        wino_load_filter(w, k, c, C, dims.s3, g);
#pragma unroll
    for (int j = 0; j < 3; j++)
        wino2_g(t + j, 3, g + j, 3); /* t = G g, 4x3 */
#pragma unroll
    for (int i = 0; i < 4; i++)
        wino2_g(r + 4 * i, 1, t + 3 * i, 1); /* r = t G^T, 4x4 */
    const int kbs = Kp / WINO_KB;
#pragma unroll
    for (int xi = 0; xi < 16; xi++)
        u[((size_t)(xi * kbs + k / WINO_KB) * C + c) * WINO_KB + k % WINO_KB] = r[xi];
}

__kernel void clcnn_wino4_filter(__global const float *restrict w, __global float *restrict u,
                                 const int4 dims)
{
    const int K = dims.s0, C = dims.s1, Kp = dims.s2;
    const int k = (int)get_global_id(0), c = (int)get_global_id(1);
    float g[9] = {0.0f}, t[18], r[36];
    if (k < K)
        wino_load_filter(w, k, c, C, dims.s3, g);
#pragma unroll
    for (int j = 0; j < 3; j++)
        wino4_g(t + j, 3, g + j, 3); /* t = G g, 6x3 */
#pragma unroll
    for (int i = 0; i < 6; i++)
        wino4_g(r + 6 * i, 1, t + 3 * i, 1); /* r = t G^T, 6x6 */
    const int kbs = Kp / WINO_KB;
#pragma unroll
    for (int xi = 0; xi < 36; xi++)
        u[((size_t)(xi * kbs + k / WINO_KB) * C + c) * WINO_KB + k % WINO_KB] = r[xi];
}

/* ---- input transform ---- */

/* Gathers the ALPHA x ALPHA input patches of WINO_VW tiles starting at tile p0 of channel c into
 * d[ALPHA * a + b] (lane l = tile p0 + l). Reads outside the image, and tiles p >= P, give 0.
 * geo = (C, H, W, P), tiles = (pad_h, pad_w, th, tw). */
#define WINO_GATHER(ALPHA, MT, d)                                                                  \
    do {                                                                                           \
        const int C_ = geo.s0, H_ = geo.s1, W_ = geo.s2, P_ = geo.s3;                              \
        const int th_ = tiles.s2, tw_ = tiles.s3;                                                  \
        float t_[ALPHA * ALPHA][WINO_VW];                                                          \
        /* Tile coordinates advance lane by lane: no integer division per lane. */                 \
        const int q_ = min(p0, P_ - 1);                                                            \
        int n = q_ / (th_ * tw_), ty = q_ / tw_ % th_, tx = q_ % tw_;                              \
        for (int l = 0; l < WINO_VW; l++) {                                                        \
            const int p = p0 + l;                                                                  \
            const int iy0 = ty * (MT)-tiles.s0, ix0 = tx * (MT)-tiles.s1;                          \
            __global const float *src = x + ((size_t)n * C_ + c) * H_ * W_;                        \
            const bool inside =                                                                    \
                p < P_ && iy0 >= 0 && ix0 >= 0 && iy0 + (ALPHA) <= H_ && ix0 + (ALPHA) <= W_;      \
            if (inside) {                                                                          \
                __global const float *s0 = src + iy0 * W_ + ix0;                                   \
                for (int a = 0; a < (ALPHA); a++)                                                  \
                    for (int b = 0; b < (ALPHA); b++)                                              \
                        t_[(ALPHA)*a + b][l] = s0[a * W_ + b];                                     \
            } else {                                                                               \
                for (int a = 0; a < (ALPHA); a++)                                                  \
                    for (int b = 0; b < (ALPHA); b++) {                                            \
                        const int iy = iy0 + a, ix = ix0 + b;                                      \
                        t_[(ALPHA)*a + b][l] =                                                     \
                            (p < P_ && iy >= 0 && iy < H_ && ix >= 0 && ix < W_)                   \
                                ? src[iy * W_ + ix]                                                \
                                : 0.0f;                                                            \
                    }                                                                              \
            }                                                                                      \
            if (++tx == tw_) {                                                                     \
                tx = 0;                                                                            \
                if (++ty == th_) {                                                                 \
                    ty = 0;                                                                        \
                    n++;                                                                           \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int e = 0; e < (ALPHA) * (ALPHA); e++)                                                \
            (d)[e] = vloadV(0, t_[e]);                                                             \
    } while (0)

/* Global size (pc / WINO_VW, C): one work-item transforms WINO_VW tiles of one channel (a part
 * of a GEMM work-item's panel, see WINO_PANEL). geo = (C, H, W, P), tiles = (pad_h, pad_w, th,
 * tw), chunk = (first tile, pc, V offset in v). */
__kernel void clcnn_wino2_input(__global const float *restrict x, __global float *restrict v,
                                const int4 geo, const int4 tiles, const int4 chunk)
{
    const int pb = (int)get_global_id(0), c = (int)get_global_id(1);
    const int C = geo.s0, pc = chunk.s1;
    const int p0 = chunk.s0 + pb * WINO_VW;
    floatV d[16], t[16], r[16];
    WINO_GATHER(4, 2, d);
#pragma unroll
    for (int j = 0; j < 4; j++)
        wino2_bt(t + j, 4, d + j, 4); /* t = B^T d */
#pragma unroll
    for (int i = 0; i < 4; i++)
        wino2_bt(r + 4 * i, 1, t + 4 * i, 1); /* r = t B */
    const int pbs = pc / WINO_VP;
    __global float *dst = v + chunk.s2 + WINO_PANEL(pb, C, c);
#pragma unroll
    for (int xi = 0; xi < 16; xi++)
        vstoreV(r[xi], 0, dst + (size_t)xi * pbs * C * WINO_VP);
}

__kernel void clcnn_wino4_input(__global const float *restrict x, __global float *restrict v,
                                const int4 geo, const int4 tiles, const int4 chunk)
{
    const int pb = (int)get_global_id(0), c = (int)get_global_id(1);
    const int C = geo.s0, pc = chunk.s1;
    const int p0 = chunk.s0 + pb * WINO_VW;
    floatV d[36], t[36], r[36];
    WINO_GATHER(6, 4, d);
#pragma unroll
    for (int j = 0; j < 6; j++)
        wino4_bt(t + j, 6, d + j, 6);
#pragma unroll
    for (int i = 0; i < 6; i++)
        wino4_bt(r + 6 * i, 1, t + 6 * i, 1);
    const int pbs = pc / WINO_VP;
    __global float *dst = v + chunk.s2 + WINO_PANEL(pb, C, c);
#pragma unroll
    for (int xi = 0; xi < 36; xi++)
        vstoreV(r[xi], 0, dst + (size_t)xi * pbs * C * WINO_VP);
}

/* ---- batched GEMM: M[xi] (Kp x pc) = U[xi] (Kp x C) * V[xi] (C x pc) ---- */

/* Global size (Kp / WINO_KB, pc / WINO_VP, alpha^2). dims = (C, Kp, pc, V offset in ws),
 * m_off = M offset in ws. Each work-item holds a WINO_KB x WINO_VP block of M in registers and
 * streams its two contiguous panels: WINO_NV vectors of V and WINO_KB broadcasts of U per
 * channel. */
__kernel void clcnn_wino_gemm(__global const float *restrict u, __global float *ws, const int4 dims,
                              const int m_off)
{
    const int C = dims.s0, Kp = dims.s1, pc = dims.s2;
    const int kb = (int)get_global_id(0), pb = (int)get_global_id(1), xi = (int)get_global_id(2);
    __global const float *up = u + (size_t)(xi * (Kp / WINO_KB) + kb) * C * WINO_KB;
    __global const float *vp = ws + dims.s3 + (size_t)(xi * (pc / WINO_VP) + pb) * C * WINO_VP;
    floatV acc[WINO_KB][WINO_NV];
#pragma unroll
    for (int i = 0; i < WINO_KB; i++)
#pragma unroll
        for (int j = 0; j < WINO_NV; j++)
            acc[i][j] = (floatV)(0.0f);
    for (int c = 0; c < C; c++) {
        floatV b[WINO_NV];
#pragma unroll
        for (int j = 0; j < WINO_NV; j++)
            b[j] = vloadV(j, vp + c * WINO_VP);
#pragma unroll
        for (int i = 0; i < WINO_KB; i++) {
            const floatV a = (floatV)(up[c * WINO_KB + i]);
#pragma unroll
            for (int j = 0; j < WINO_NV; j++)
                acc[i][j] = fma(a, b[j], acc[i][j]);
        }
    }
    __global float *mp = ws + m_off + ((size_t)xi * Kp + kb * WINO_KB) * pc + pb * WINO_VP;
#pragma unroll
    for (int i = 0; i < WINO_KB; i++)
#pragma unroll
        for (int j = 0; j < WINO_NV; j++)
            vstoreV(acc[i][j], j, mp + (size_t)i * pc);
}

/* ---- output transform ---- */

/* Writes the MT x MT outputs of WINO_VW tiles (o[MT * i + j], lane l = tile p0 + l) of channel
 * k, with bias and ReLU; outputs past Ho, Wo and tiles p >= P are not written.
 * geo = (K, Ho, Wo, P), tiles = (flags, 0, th, tw). */
#define WINO_SCATTER(MT, o)                                                                        \
    do {                                                                                           \
        const int K_ = geo.s0, Ho_ = geo.s1, Wo_ = geo.s2, P_ = geo.s3;                            \
        const int th_ = tiles.s2, tw_ = tiles.s3, flags_ = tiles.s0;                               \
        const float bk_ = (flags_ & WINO_BIAS) ? bias[k] : 0.0f;                                   \
        float t_[(MT) * (MT)][WINO_VW];                                                            \
        for (int e = 0; e < (MT) * (MT); e++) {                                                    \
            floatV val = (o)[e] + bk_;                                                             \
            if (flags_ & WINO_RELU)                                                                \
                val = fmax(val, (floatV)(0.0f));                                                   \
            vstoreV(val, 0, t_[e]);                                                                \
        }                                                                                          \
        int n = p0 / (th_ * tw_), ty = p0 / tw_ % th_, tx = p0 % tw_;                              \
        for (int l = 0; l < WINO_VW && p0 + l < P_; l++) {                                         \
            const int oy0 = ty * (MT), ox0 = tx * (MT);                                            \
            __global float *dst = y + (((size_t)n * K_ + k) * Ho_ + oy0) * Wo_ + ox0;              \
            if (oy0 + (MT) <= Ho_ && ox0 + (MT) <= Wo_) {                                          \
                for (int i = 0; i < (MT); i++)                                                     \
                    for (int j = 0; j < (MT); j++)                                                 \
                        dst[i * Wo_ + j] = t_[(MT)*i + j][l];                                      \
            } else {                                                                               \
                for (int i = 0; i < (MT) && oy0 + i < Ho_; i++)                                    \
                    for (int j = 0; j < (MT) && ox0 + j < Wo_; j++)                                \
                        dst[i * Wo_ + j] = t_[(MT)*i + j][l];                                      \
            }                                                                                      \
            if (++tx == tw_) {                                                                     \
                tx = 0;                                                                            \
                if (++ty == th_) {                                                                 \
                    ty = 0;                                                                        \
                    n++;                                                                           \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Global size (pc / WINO_VW, K). geo = (K, Ho, Wo, P), tiles = (flags, 0, th, tw),
 * chunk = (first tile, pc, M offset in ws, Kp). */
__kernel void clcnn_wino2_output(__global const float *restrict ws,
                                 __global const float *restrict bias, __global float *restrict y,
                                 const int4 geo, const int4 tiles, const int4 chunk)
{
    const int pb = (int)get_global_id(0), k = (int)get_global_id(1);
    const int pc = chunk.s1, Kp = chunk.s3;
    const int p0 = chunk.s0 + pb * WINO_VW;
    __global const float *src = ws + chunk.s2 + (size_t)k * pc + pb * WINO_VW;
    floatV m[16], t[8], o[4];
#pragma unroll
    for (int xi = 0; xi < 16; xi++)
        m[xi] = vloadV(0, src + (size_t)xi * Kp * pc);
#pragma unroll
    for (int j = 0; j < 4; j++)
        wino2_at(t + j, 4, m + j, 4); /* t = A^T m, 2x4 */
#pragma unroll
    for (int i = 0; i < 2; i++)
        wino2_at(o + 2 * i, 1, t + 4 * i, 1); /* o = t A, 2x2 */
    WINO_SCATTER(2, o);
}

__kernel void clcnn_wino4_output(__global const float *restrict ws,
                                 __global const float *restrict bias, __global float *restrict y,
                                 const int4 geo, const int4 tiles, const int4 chunk)
{
    const int pb = (int)get_global_id(0), k = (int)get_global_id(1);
    const int pc = chunk.s1, Kp = chunk.s3;
    const int p0 = chunk.s0 + pb * WINO_VW;
    __global const float *src = ws + chunk.s2 + (size_t)k * pc + pb * WINO_VW;
    floatV m[36], t[24], o[16];
#pragma unroll
    for (int xi = 0; xi < 36; xi++)
        m[xi] = vloadV(0, src + (size_t)xi * Kp * pc);
#pragma unroll
    for (int j = 0; j < 6; j++)
        wino4_at(t + j, 6, m + j, 6); /* t = A^T m, 4x6 */
#pragma unroll
    for (int i = 0; i < 4; i++)
        wino4_at(o + 4 * i, 1, t + 6 * i, 1); /* o = t A, 4x4 */
    WINO_SCATTER(4, o);
}

/* ---- F(4x4,3x3) over split and space-to-depth filters (solver winograd4_split) ----
 * A stride-1 convolution with an R x S filter is the sum of 3x3 convolutions with the filter's
 * 3x3 sub-blocks (zero-padded to multiples of 3), sub-block (a, b) reading the input shifted by
 * (3a, 3b). A stride (sh, sw) convolution is a stride-1 one over the sh * sw phase planes
 * x[c][sh * i + ph][sw * j + pw] with the filter w[k][c][sh * r + ph][sw * s + pw]. Both make
 * virtual channels cv = (((c * sh + ph) * sw + pw) * na + a) * nb + b, na x nb the 3x3 blocks of
 * the ceil(R / sh) x ceil(S / sw) phase filter, and the batched GEMM above sums over all of them:
 * one F(4x4,3x3) problem with Cv = C * sh * sw * na * nb input channels. Nothing is
 * materialised: the input transform reads the phase planes' shifted tiles straight from x. */

/* Splits virtual channel cv into (c, ph, pw, a, b); split = (sh, sw, na, nb). */
static inline int wino4s_channel(int cv, const int4 split, int *ph, int *pw, int *a, int *b)
{
    *b = cv % split.s3;
    cv /= split.s3;
    *a = cv % split.s2;
    cv /= split.s2;
    *pw = cv % split.s1;
    cv /= split.s1;
    *ph = cv % split.s0;
    return cv / split.s0;
}

/* Global size (Kp, Cv). dims = (K, Cv, Kp, flip), kgeo = (R, S, sh, sw). Taps past the filter
 * (the padding up to whole 3x3 blocks) are zero; channels k >= K get zeros. */
__kernel void clcnn_wino4s_filter(__global const float *restrict w, __global float *restrict u,
                                  const int4 dims, const int4 kgeo)
{
    const int K = dims.s0, Cv = dims.s1, Kp = dims.s2, flip = dims.s3;
    const int R = kgeo.s0, S = kgeo.s1, sh = kgeo.s2, sw = kgeo.s3;
    const int na = ((R + sh - 1) / sh + 2) / 3, nb = ((S + sw - 1) / sw + 2) / 3;
    const int C = Cv / (sh * sw * na * nb);
    const int k = (int)get_global_id(0), cv = (int)get_global_id(1);
    int ph, pw, a, b;
    const int c = wino4s_channel(cv, (int4)(sh, sw, na, nb), &ph, &pw, &a, &b);
    float g[9], t[18], r[36];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            const int rr = sh * (3 * a + i) + ph, ss = sw * (3 * b + j) + pw;
            const int ri = flip ? R - 1 - rr : rr, si = flip ? S - 1 - ss : ss;
            g[3 * i + j] =
                (k < K && rr < R && ss < S) ? w[(((size_t)k * C + c) * R + ri) * S + si] : 0.0f;
        }
#pragma unroll
    for (int j = 0; j < 3; j++)
        wino4_g(t + j, 3, g + j, 3);
#pragma unroll
    for (int i = 0; i < 6; i++)
        wino4_g(r + 6 * i, 1, t + 3 * i, 1);
    const int kbs = Kp / WINO_KB;
#pragma unroll
    for (int xi = 0; xi < 36; xi++)
        u[((size_t)(xi * kbs + k / WINO_KB) * Cv + cv) * WINO_KB + k % WINO_KB] = r[xi];
}

/* Global size (pc / WINO_VW, Cv): WINO_GATHER for virtual channel cv, whose tile (ty, tx) is
 * the 6x6 patch of plane c at rows sh * (4 ty + 3 a + i) + ph - pad_h and columns
 * sw * (4 tx + 3 b + j) + pw - pad_w. geo = (Cv, H, W, P), tiles = (pad_h, pad_w, th, tw),
 * chunk = (first tile, pc, V offset in v), split = (sh, sw, na, nb). */
__kernel void clcnn_wino4s_input(__global const float *restrict x, __global float *restrict v,
                                 const int4 geo, const int4 tiles, const int4 chunk,
                                 const int4 split)
{
    const int pb = (int)get_global_id(0), cv = (int)get_global_id(1);
    const int Cv = geo.s0, H = geo.s1, W = geo.s2, P = geo.s3, pc = chunk.s1;
    const int th = tiles.s2, tw = tiles.s3, sh = split.s0, sw = split.s1;
    const int p0 = chunk.s0 + pb * WINO_VW;
    int ph, pw, a, b;
    const int c = wino4s_channel(cv, split, &ph, &pw, &a, &b);
    const int C = Cv / (sh * sw * split.s2 * split.s3);
    const int oy = 3 * a * sh + ph - tiles.s0, ox = 3 * b * sw + pw - tiles.s1;
    float t_[36][WINO_VW];
    const int q = min(p0, P - 1);
    int n = q / (th * tw), ty = q / tw % th, tx = q % tw;
    for (int l = 0; l < WINO_VW; l++) {
        const int iy0 = 4 * sh * ty + oy, ix0 = 4 * sw * tx + ox;
        __global const float *src = x + ((size_t)n * C + c) * H * W;
        const bool inside =
            p0 + l < P && iy0 >= 0 && ix0 >= 0 && iy0 + 5 * sh < H && ix0 + 5 * sw < W;
        if (inside) {
            __global const float *s0 = src + iy0 * W + ix0;
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                    t_[6 * i + j][l] = s0[i * sh * W + j * sw];
        } else {
            /* Borders: load from clamped (always valid) positions and select, so there is no
             * branch per element. Split filters read wide halos, so on small images (LeNet's
             * 14x14) most tiles take this path; per-element branches made it 4-5x slower. */
            int row[6], col[6];
            bool rok[6], cok[6];
            for (int i = 0; i < 6; i++) {
                const int iy = iy0 + i * sh, ix = ix0 + i * sw;
                rok[i] = p0 + l < P && iy >= 0 && iy < H;
                cok[i] = ix >= 0 && ix < W;
                row[i] = clamp(iy, 0, H - 1) * W;
                col[i] = clamp(ix, 0, W - 1);
            }
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    const float val = src[row[i] + col[j]];
                    t_[6 * i + j][l] = (rok[i] && cok[j]) ? val : 0.0f;
                }
        }
        if (++tx == tw) {
            tx = 0;
            if (++ty == th) {
                ty = 0;
                n++;
            }
        }
    }
    floatV d[36], t[36], r[36];
    for (int e = 0; e < 36; e++)
        d[e] = vloadV(0, t_[e]);
#pragma unroll
    for (int j = 0; j < 6; j++)
        wino4_bt(t + j, 6, d + j, 6);
#pragma unroll
    for (int i = 0; i < 6; i++)
        wino4_bt(r + 6 * i, 1, t + 6 * i, 1);
    const int pbs = pc / WINO_VP;
    __global float *dst = v + chunk.s2 + WINO_PANEL(pb, Cv, cv);
#pragma unroll
    for (int xi = 0; xi < 36; xi++)
        vstoreV(r[xi], 0, dst + (size_t)xi * pbs * Cv * WINO_VP);
}
