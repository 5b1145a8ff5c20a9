/* Direct 2-D convolution forward, NCHW float32. Each work-item computes CONV_VW neighbouring
 * output columns (one vector) of CONV_KB output channels (register blocking), so a CPU device
 * gets explicit SIMD and every input vector load feeds CONV_KB fused multiply-adds. */
#include "common.clh"

/* Output columns per work-item, the vector width: 2, 4, 8 or 16. */
#ifndef CONV_VW
#define CONV_VW 8
#endif
/* Output channels per work-item (accumulators held in registers): 1 to 8. */
#ifndef CONV_KB
#define CONV_KB 8
#endif
/* Output rows per work-item: 1 to 16. Each weight load then feeds CONV_OYB vector FMAs. */
#ifndef CONV_OYB
#define CONV_OYB 2
#endif

#define CONV_CAT_(a, b) a##b
#define CONV_CAT(a, b) CONV_CAT_(a, b)
#define floatV CONV_CAT(float, CONV_VW)
#define vloadV CONV_CAT(vload, CONV_VW)
#define vstoreV CONV_CAT(vstore, CONV_VW)

/* CONV_PADDED, when defined: the input is a zero-padded copy (clcnn_conv2d_pad_input) large
 * enough for every tap of every block, passed with pad 0, so the inner loop has no bounds
 * checks. Undefined by default. */

/* Flag bits of conv1.w. */
#define CONV_FLIP 1
#define CONV_RELU 2
#define CONV_BIAS 4

/* dims0 = (C, H, W, K), dims1 = (R, S, Ho, Wo), conv0 = (stride_h, stride_w, pad_h, pad_w),
 * conv1 = (dilation_h, dilation_w, groups, flags). Global size: (ceil(Wo / CONV_VW),
 * ceil(Ho / CONV_OYB),
 * N * groups * ceil(K / groups / CONV_KB)). Weights are K x C/groups x R x S. fma() everywhere,
 * so every vendor rounds the same way. */
__kernel void clcnn_conv2d_direct(__global const float *restrict x,
                                  __global const float *restrict w,
                                  __global const float *restrict bias, __global float *restrict y,
                                  const int4 dims0, const int4 dims1, const int4 conv0,
                                  const int4 conv1)
{
    const int C = dims0.s0, H = dims0.s1, W = dims0.s2, K = dims0.s3;
    const int R = dims1.s0, S = dims1.s1, Ho = dims1.s2, Wo = dims1.s3;
    const int stride_h = conv0.s0, stride_w = conv0.s1, pad_h = conv0.s2, pad_w = conv0.s3;
    const int dil_h = conv1.s0, dil_w = conv1.s1, groups = conv1.s2, flags = conv1.s3;

    const int ox0 = (int)get_global_id(0) * CONV_VW;
    const int oy0 = (int)get_global_id(1) * CONV_OYB;
    const int z = (int)get_global_id(2);
    const int Kg = K / groups, Cg = C / groups;
    const int kblocks = (Kg + CONV_KB - 1) / CONV_KB;
    const int kb = z % kblocks;
    const int g = (z / kblocks) % groups;
    const int n = z / kblocks / groups;
    if (ox0 >= Wo || oy0 >= Ho)
        return;
    const int k0 = g * Kg + kb * CONV_KB;
    const int kcount = min(CONV_KB, Kg - kb * CONV_KB);
    const int RS = R * S;

    /* Channels past the group's end read the last valid one, and rows past Ho compute from
     * zeros; neither is stored. */
    int woff[CONV_KB];
    floatV acc[CONV_OYB][CONV_KB];
#pragma unroll
    for (int kk = 0; kk < CONV_KB; kk++) {
        woff[kk] = (k0 + min(kk, kcount - 1)) * Cg * RS;
#pragma unroll
        for (int j = 0; j < CONV_OYB; j++)
            acc[j][kk] = (floatV)(0.0f);
    }

    const bool flip = (flags & CONV_FLIP) != 0;
    const int ix_base = ox0 * stride_w - pad_w;
    const int iy_base = oy0 * stride_h - pad_h;
    for (int c = 0; c < Cg; c++) {
        __global const float *xc = x + (size_t)(n * C + g * Cg + c) * H * W;
        const int wc = c * RS;
        for (int r = 0; r < R; r++) {
            const int rr = flip ? R - 1 - r : r;
            for (int s = 0; s < S; s++) {
                const int ix0 = ix_base + s * dil_w;
#ifdef CONV_PADDED
                const bool fast = stride_w == 1;
#else
                const bool fast = stride_w == 1 && ix0 >= 0 && ix0 + CONV_VW <= W;
#endif
                floatV v[CONV_OYB];
#pragma unroll
                for (int j = 0; j < CONV_OYB; j++) {
                    const int iy = iy_base + j * stride_h + r * dil_h;
                    __global const float *row = xc + iy * W;
#ifdef CONV_PADDED
                    if (fast) {
                        v[j] = vloadV(0, row + ix0);
                    } else {
                        float t[CONV_VW];
#pragma unroll
                        for (int l = 0; l < CONV_VW; l++)
                            t[l] = row[ix0 + l * stride_w];
                        v[j] = vloadV(0, t);
                    }
#else
                    if (iy < 0 || iy >= H || oy0 + j >= Ho) {
                        v[j] = (floatV)(0.0f);
                    } else if (fast) {
                        v[j] = vloadV(0, row + ix0);
                    } else {
                        float t[CONV_VW];
#pragma unroll
                        for (int l = 0; l < CONV_VW; l++) {
                            const int ix = ix0 + l * stride_w;
                            t[l] = (ix >= 0 && ix < W) ? row[ix] : 0.0f;
                        }
                        v[j] = vloadV(0, t);
                    }
#endif
                }
                const int widx = wc + rr * S + (flip ? S - 1 - s : s);
#pragma unroll
                for (int kk = 0; kk < CONV_KB; kk++) {
                    const floatV wv = (floatV)(w[woff[kk] + widx]);
#pragma unroll
                    for (int j = 0; j < CONV_OYB; j++)
                        acc[j][kk] = fma(wv, v[j], acc[j][kk]);
                }
            }
        }
    }

    for (int j = 0; j < CONV_OYB && oy0 + j < Ho; j++) {
        for (int kk = 0; kk < kcount; kk++) {
            const int k = k0 + kk;
            floatV out = acc[j][kk];
            if (flags & CONV_BIAS)
                out += (floatV)(bias[k]);
            if (flags & CONV_RELU)
                out = fmax(out, (floatV)(0.0f));
            __global float *dst = y + ((size_t)(n * K + k) * Ho + oy0 + j) * Wo + ox0;
            if (ox0 + CONV_VW <= Wo) {
                vstoreV(out, 0, dst);
            } else {
                float t[CONV_VW];
                vstoreV(out, 0, t);
                for (int l = 0; l < Wo - ox0; l++)
                    dst[l] = t[l];
            }
        }
    }
}

/* Copies x (N*C planes of H x W, given as src = (planes, H, W, 0)) into xp (planes of
 * Hp x Wp, dst = (Hp, Wp, pad_h, pad_w)) with the input at (pad_h, pad_w) and zeros around it.
 * Global size: (Wp, Hp, planes). */
__kernel void clcnn_conv2d_pad_input(__global const float *restrict x, __global float *restrict xp,
                                     const int4 src, const int4 dst)
{
    const int px = (int)get_global_id(0), py = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    const int H = src.s1, W = src.s2, Hp = dst.s0, Wp = dst.s1;
    if (px >= Wp || py >= Hp || plane >= src.s0)
        return;
    const int iy = py - dst.s2, ix = px - dst.s3;
    const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
    xp[((size_t)plane * Hp + py) * Wp + px] =
        inside ? x[((size_t)plane * H + iy) * W + ix] : 0.0f;
}
