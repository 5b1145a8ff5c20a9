/* Direct convolution backward, NCHW float32: the input gradient as a gather over the taps whose
 * forward window covers each input element, the weight gradient with each work-item owning a
 * block of dw, and the bias gradient. No atomics: every sum runs in a fixed order. */
#include "common.clh"

/* Elements per vector (input columns in backward data, output columns in backward weights):
 * 4, 8 or 16. */
#ifndef BWD_VW
#define BWD_VW 8
#endif
/* Backward data: input channels per work-item (accumulators held in registers), 1 to 8. */
#ifndef BWD_CB
#define BWD_CB 8
#endif
/* Backward data: input rows of one stride phase per work-item, 1 to 8. */
#ifndef BWD_YB
#define BWD_YB 2
#endif
/* Backward weights: output channels per work-item, 1 to 8. */
#ifndef BWDW_KB
#define BWDW_KB 4
#endif
/* Backward weights: taps (c, r, s) of dw per work-item, 1 to 8. */
#ifndef BWDW_TB
#define BWDW_TB 4
#endif

#define BWD_CAT_(a, b) a##b
#define BWD_CAT(a, b) BWD_CAT_(a, b)
#define floatV BWD_CAT(float, BWD_VW)
#define vloadV BWD_CAT(vload, BWD_VW)
#define vstoreV BWD_CAT(vstore, BWD_VW)

/* Flag bit of conv1.w: true convolution (the kernel is used flipped). */
#define BWD_FLIP 1

/* Lanes ox0 .. ox0 + BWD_VW - 1 of row oy of one dy plane (Hd x Wd with its valid part at
 * (top, left), Ho x Wo in size). A padded plane (padded != 0) holds every row and column any
 * work-item reads, zeros around dy, so the load needs no checks. */
static inline floatV bwd_load_dy(__global const float *plane, int oy, int ox0, int Wd, int top,
                                 int left, int Ho, int Wo, int padded)
{
    if (padded)
        return vloadV(0, plane + (oy + top) * Wd + ox0 + left);
    float t[BWD_VW];
#pragma unroll
    for (int l = 0; l < BWD_VW; l++) {
        const int ox = ox0 + l;
        t[l] = (oy >= 0 && oy < Ho && ox >= 0 && ox < Wo) ? plane[oy * Wd + ox] : 0.0f;
    }
    return vloadV(0, t);
}

/* dx[n, c, iy, ix] = sum over k of its group and taps (r, s) with
 * iy = oy * stride_h - pad_h + r * dil_h, ix = ox * stride_w - pad_w + s * dil_w for some
 * 0 <= oy < Ho, 0 <= ox < Wo of dy[n, k, oy, ox] * w[k, c, r', s'], (r', s') = (r, s), or
 * (R-1-r, S-1-s) for true convolution. A tap contributes to iy only when
 * (iy + pad_h - r * dil_h) is a multiple of stride_h, so each work-item takes input columns of
 * one phase modulo stride_w (ix = pw + stride_w * (vb * BWD_VW + l), lane l), whose dy columns
 * are then consecutive: one vector load per tap; likewise BWD_YB rows of one phase modulo
 * stride_h, and BWD_CB input channels that share each dy load.
 * dims0 = (C, H, W, K), dims1 = (R, S, Ho, Wo), conv0 = (stride_h, stride_w, pad_h, pad_w),
 * conv1 = (dil_h, dil_w, groups, flags), dyl = (Hd, Wd, top, left): the layout of dy's planes,
 * blocks = (row blocks per phase, vectors per phase, channel blocks per group, padded).
 * Global size: (stride_w * blocks.y, stride_h * blocks.x, N * groups * blocks.z). */
__kernel void clcnn_conv2d_bwd_data_direct(__global const float *restrict dy,
                                           __global const float *restrict w,
                                           __global float *restrict dx, const int4 dims0,
                                           const int4 dims1, const int4 conv0, const int4 conv1,
                                           const int4 dyl, const int4 blocks)
{
    const int C = dims0.s0, H = dims0.s1, W = dims0.s2, K = dims0.s3;
    const int R = dims1.s0, S = dims1.s1, Ho = dims1.s2, Wo = dims1.s3;
    const int stride_h = conv0.s0, stride_w = conv0.s1, pad_h = conv0.s2, pad_w = conv0.s3;
    const int dil_h = conv1.s0, dil_w = conv1.s1, groups = conv1.s2;
    const bool flip = (conv1.s3 & BWD_FLIP) != 0;
    const int Hd = dyl.s0, Wd = dyl.s1, top = dyl.s2, left = dyl.s3;
    const int nyb = blocks.s0, nvb = blocks.s1, cblocks = blocks.s2, padded = blocks.s3;

    const int g0 = (int)get_global_id(0), g1 = (int)get_global_id(1);
    const int z = (int)get_global_id(2);
    const int pw = g0 / nvb, vb = g0 % nvb;
    const int ph = g1 / nyb, yb = g1 % nyb;
    const int cb = z % cblocks;
    const int g = (z / cblocks) % groups;
    const int n = z / cblocks / groups;
    const int ix0 = pw + stride_w * vb * BWD_VW;
    const int iy0 = ph + stride_h * yb * BWD_YB;
    if (ix0 >= W || iy0 >= H)
        return;
    const int Kg = K / groups, Cg = C / groups;
    const int RS = R * S;
    const int ccount = min(BWD_CB, Cg - cb * BWD_CB);

    /* Channels past the group's end read the last valid one and are not stored. */
    int woff[BWD_CB];
    floatV acc[BWD_YB][BWD_CB];
#pragma unroll
    for (int cc = 0; cc < BWD_CB; cc++) {
        woff[cc] = (cb * BWD_CB + min(cc, ccount - 1)) * RS;
#pragma unroll
        for (int j = 0; j < BWD_YB; j++)
            acc[j][cc] = (floatV)(0.0f);
    }

    /* Taps outermost: the divisibility tests run once per tap, not once per channel. */
    __global const float *dyn = dy + (size_t)(n * K + g * Kg) * Hd * Wd;
    __global const float *wg = w + (size_t)g * Kg * Cg * RS;
    for (int r = 0; r < R; r++) {
        const int th = ph + pad_h - r * dil_h;
        if (th % stride_h != 0)
            continue;
        const int oy0 = th / stride_h + yb * BWD_YB;
        const int rr = flip ? R - 1 - r : r;
        for (int s = 0; s < S; s++) {
            const int tw = pw + pad_w - s * dil_w;
            if (tw % stride_w != 0)
                continue;
            const int ox0 = tw / stride_w + vb * BWD_VW;
            const int widx = rr * S + (flip ? S - 1 - s : s);
            for (int kk = 0; kk < Kg; kk++) {
                __global const float *plane = dyn + (size_t)kk * Hd * Wd;
                __global const float *wk = wg + (size_t)kk * Cg * RS;
                floatV v[BWD_YB];
#pragma unroll
                for (int j = 0; j < BWD_YB; j++)
                    v[j] = bwd_load_dy(plane, oy0 + j, ox0, Wd, top, left, Ho, Wo, padded);
#pragma unroll
                for (int cc = 0; cc < BWD_CB; cc++) {
                    const floatV wv = (floatV)(wk[woff[cc] + widx]);
#pragma unroll
                    for (int j = 0; j < BWD_YB; j++)
                        acc[j][cc] = fma(wv, v[j], acc[j][cc]);
                }
            }
        }
    }

    for (int j = 0; j < BWD_YB; j++) {
        const int iy = iy0 + j * stride_h;
        if (iy >= H)
            break;
        for (int cc = 0; cc < ccount; cc++) {
            const int c = g * Cg + cb * BWD_CB + cc;
            __global float *dst = dx + ((size_t)(n * C + c) * H + iy) * W;
            if (stride_w == 1 && ix0 + BWD_VW <= W) {
                vstoreV(acc[j][cc], 0, dst + ix0);
            } else {
                float t[BWD_VW];
                vstoreV(acc[j][cc], 0, t);
                for (int l = 0; l < BWD_VW && ix0 + l * stride_w < W; l++)
                    dst[ix0 + l * stride_w] = t[l];
            }
        }
    }
}

/* Sum of the lanes of v in a fixed order (pairwise). */
static inline float bwd_hsum(floatV v)
{
#if BWD_VW == 16
    const float8 a = v.lo + v.hi;
#elif BWD_VW == 8
    const float8 a = v;
#else
    const float8 a = (float8)(v, (float4)(0.0f));
#endif
    const float4 b = a.lo + a.hi;
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* dw[k, c, r', s'] = sum over n, oy, ox of dy[n, k, oy, ox] *
 * x[n, g * Cg + c, oy * stride_h - pad_h + r * dil_h, ox * stride_w - pad_w + s * dil_w], with
 * (r', s') as in backward data. A work-item owns BWDW_KB output channels by BWDW_TB taps
 * q = (c * R + r') * S + s' of one group and reduces over n, oy, then vectors of BWD_VW output
 * columns, in that order, into BWDW_KB * BWDW_TB vector accumulators (each dy load feeds
 * BWDW_TB fused multiply-adds, each x load BWDW_KB), summing the lanes at the end.
 * x is a padded copy (padded != 0: every tap of every lane inside, zeros around) or x itself,
 * read with bounds checks. dy's rows are Wd apart: Wo, or Wo rounded up to BWD_VW in a copy
 * with zeros past Wo (no tail loads then).
 * dims0 = (C, H, W, K), dims1 = (R, S, Ho, Wo), conv0 = (stride_h, stride_w, N, padded),
 * conv1 = (dil_h, dil_w, groups, flags), xl = (Hx, Wx, top, left): x's planes and where tap
 * (0, 0) of output (0, 0) lies in them ((0, 0) in a padded copy, (-pad_h, -pad_w) in x).
 * Global size: (ceil(Cg * R * S / BWDW_TB), ceil(Kg / BWDW_KB), groups). */
__kernel void clcnn_conv2d_bwd_weights_direct(__global const float *restrict x,
                                              __global const float *restrict dy,
                                              __global float *restrict dw, const int4 dims0,
                                              const int4 dims1, const int4 conv0, const int4 conv1,
                                              const int4 xl, const int Wd)
{
    const int C = dims0.s0, H = dims0.s1, W = dims0.s2, K = dims0.s3;
    const int R = dims1.s0, S = dims1.s1, Ho = dims1.s2, Wo = dims1.s3;
    const int stride_h = conv0.s0, stride_w = conv0.s1, N = conv0.s2, padded = conv0.s3;
    const int dil_h = conv1.s0, dil_w = conv1.s1, groups = conv1.s2;
    const bool flip = (conv1.s3 & BWD_FLIP) != 0;
    const int Hx = xl.s0, Wx = xl.s1, top = xl.s2, left = xl.s3;

    const int tb = (int)get_global_id(0), kb = (int)get_global_id(1);
    const int g = (int)get_global_id(2);
    const int Kg = K / groups, Cg = C / groups;
    const int RS = R * S, CgRS = Cg * RS;
    const int q0 = tb * BWDW_TB, k0 = kb * BWDW_KB;
    if (q0 >= CgRS || k0 >= Kg)
        return;
    const int tcount = min(BWDW_TB, CgRS - q0), kcount = min(BWDW_KB, Kg - k0);

    /* Per tap: the offset of its (oy, ox) = (0, 0) element within image 0, and its row and
     * column offsets for the bounds checks of the unpadded layout. Taps and channels past the
     * end repeat the last valid one and are not stored. */
    int xoff[BWDW_TB], ty[BWDW_TB], tx[BWDW_TB];
#pragma unroll
    for (int t = 0; t < BWDW_TB; t++) {
        const int q = q0 + min(t, tcount - 1);
        const int c = q / RS, rq = q / S % R, sq = q % S;
        const int r = flip ? R - 1 - rq : rq, s = flip ? S - 1 - sq : sq;
        ty[t] = top + r * dil_h;
        tx[t] = left + s * dil_w;
        xoff[t] = (g * Cg + c) * Hx * Wx + ty[t] * Wx + tx[t];
    }
    int doff[BWDW_KB];
    floatV acc[BWDW_KB][BWDW_TB];
#pragma unroll
    for (int kk = 0; kk < BWDW_KB; kk++) {
        doff[kk] = (g * Kg + k0 + min(kk, kcount - 1)) * Ho * Wd;
#pragma unroll
        for (int t = 0; t < BWDW_TB; t++)
            acc[kk][t] = (floatV)(0.0f);
    }

    for (int n = 0; n < N; n++) {
        __global const float *xn = x + (size_t)n * C * Hx * Wx;
        __global const float *dyn = dy + (size_t)n * K * Ho * Wd;
        for (int oy = 0; oy < Ho; oy++) {
            const int yoff = oy * stride_h * Wx;
            for (int ox0 = 0; ox0 < Wo; ox0 += BWD_VW) {
                floatV d[BWDW_KB];
                if (ox0 + BWD_VW <= Wd) {
#pragma unroll
                    for (int kk = 0; kk < BWDW_KB; kk++)
                        d[kk] = vloadV(0, dyn + doff[kk] + oy * Wd + ox0);
                } else {
#pragma unroll
                    for (int kk = 0; kk < BWDW_KB; kk++) {
                        float t[BWD_VW];
#pragma unroll
                        for (int l = 0; l < BWD_VW; l++)
                            t[l] = ox0 + l < Wo ? dyn[doff[kk] + oy * Wd + ox0 + l] : 0.0f;
                        d[kk] = vloadV(0, t);
                    }
                }
                floatV v[BWDW_TB];
#pragma unroll
                for (int t = 0; t < BWDW_TB; t++) {
                    __global const float *p = xn + xoff[t] + yoff + ox0 * stride_w;
                    if (padded && stride_w == 1) {
                        v[t] = vloadV(0, p);
                    } else {
                        float u[BWD_VW];
                        const int iy = oy * stride_h + ty[t];
#pragma unroll
                        for (int l = 0; l < BWD_VW; l++) {
                            const int ix = (ox0 + l) * stride_w + tx[t];
                            u[l] = padded || (iy >= 0 && iy < Hx && ix >= 0 && ix < Wx)
                                       ? p[l * stride_w]
                                       : 0.0f;
                        }
                        v[t] = vloadV(0, u);
                    }
                }
#pragma unroll
                for (int kk = 0; kk < BWDW_KB; kk++)
#pragma unroll
                    for (int t = 0; t < BWDW_TB; t++)
                        acc[kk][t] = fma(d[kk], v[t], acc[kk][t]);
            }
        }
    }

    for (int kk = 0; kk < kcount; kk++)
        for (int t = 0; t < tcount; t++)
            dw[(size_t)(g * Kg + k0 + kk) * CgRS + q0 + t] = bwd_hsum(acc[kk][t]);
    (void)H;
    (void)W;
}

/* db[k] = sum over n and the Ho * Wo plane of dy[n, k]: vectors of BWD_VW in order, then the
 * lanes. dims = (N, K, Ho * Wo, 0). Global size: (K, 1, 1). */
__kernel void clcnn_conv2d_bwd_bias(__global const float *restrict dy, __global float *restrict db,
                                    const int4 dims)
{
    const int N = dims.s0, K = dims.s1, P = dims.s2;
    const int k = (int)get_global_id(0);
    if (k >= K)
        return;
    floatV acc = (floatV)(0.0f);
    for (int n = 0; n < N; n++) {
        __global const float *p = dy + (size_t)(n * K + k) * P;
        int i = 0;
        for (; i + BWD_VW <= P; i += BWD_VW)
            acc += vloadV(0, p + i);
        if (i < P) {
            float t[BWD_VW];
#pragma unroll
            for (int l = 0; l < BWD_VW; l++)
                t[l] = i + l < P ? p[i + l] : 0.0f;
            acc += vloadV(0, t);
        }
    }
    db[k] = bwd_hsum(acc);
}

/* Copies planes of H x W (src = (planes, H, W, 0)) into planes of Hp x Wp (dst = (Hp, Wp, top,
 * left)) at (top, left), zeros around; what falls outside is dropped (the copy
 * clcnn_conv2d_pad_input makes, one work-item per plane so that a copy of many small planes is
 * not thousands of tiny work-groups). Global size: (planes, 1, 1). */
__kernel void clcnn_conv2d_bwd_pad(__global const float *restrict src, __global float *restrict dst,
                                   const int4 from, const int4 to)
{
    const int plane = (int)get_global_id(0);
    const int H = from.s1, W = from.s2, Hp = to.s0, Wp = to.s1, top = to.s2, left = to.s3;
    if (plane >= from.s0)
        return;
    __global const float *in = src + (size_t)plane * H * W;
    __global float *out = dst + (size_t)plane * Hp * Wp;
    for (int py = 0; py < Hp; py++) {
        const int iy = py - top;
        __global float *row = out + py * Wp;
        if (iy < 0 || iy >= H) {
            for (int px = 0; px < Wp; px++)
                row[px] = 0.0f;
            continue;
        }
        __global const float *from_row = in + iy * W;
        for (int px = 0; px < Wp; px++) {
            const int ix = px - left;
            row[px] = ix >= 0 && ix < W ? from_row[ix] : 0.0f;
        }
    }
}
