/* Backward weights as an implicit GEMM, and the weight swap of backward data computed as a
 * forward convolution. float32, NCHW.
 *
 * dw[k, c, r, s] = sum over (n, oy, ox) of dy[n, k, oy, ox] * xp[n, c, oy*sh + r'*dh, ox*sw + s'*dw]
 * with xp the zero-padded input and (r', s') = (r, s), or (R-1-r, S-1-s) in convolution mode. As
 * a GEMM, dw^T (CRS x K) = A (CRS x NHW) B (NHW x K): A is read in place from xp (the rows of
 * one work-item differ only by a constant offset), B is dy transposed to (n, oy, ox, k) so that
 * 16 output channels are one vector. Each work-item owns 8 rows (c, r, s) by 16 channels k: per
 * output pixel one float16 load and 8 scalar loads feed 8 fused multiply-adds, in registers.
 * Sums run over n, oy, ox in that order: the result does not depend on the launch. */
#include "common.clh"

#define IG_MR 8

/* xp[plane][py][px] = x[plane][py - top][px - left], zero outside x; py < hp, px < wp. One
 * work-item per (px block of 16, py, plane). */
__kernel void clcnn_conv2d_igemm_pad(__global const float *x, const ulong x_off,
                                     __global float *xp, const int h, const int w, const int hp,
                                     const int wp, const int top, const int left)
{
    x += x_off;
    const int px0 = (int)get_global_id(0) * 16, py = (int)get_global_id(1);
    const size_t plane = get_global_id(2);
    if (py >= hp)
        return;
    const int iy = py - top;
    __global float *out = xp + (plane * (size_t)hp + (size_t)py) * (size_t)wp;
    __global const float *in = x + (plane * (size_t)h + (size_t)max(iy, 0)) * (size_t)w;
    for (int px = px0; px < min(px0 + 16, wp); px++) {
        const int ix = px - left;
        out[px] = iy >= 0 && iy < h && ix >= 0 && ix < w ? in[ix] : 0.0f;
    }
}

/* dyt[n][p][k] = dy[n][k][p] for p < hw (both from their offsets). One work-item per
 * (p, k, n). */
__kernel void clcnn_conv2d_igemm_dyt(__global const float *dy, const ulong dy_off,
                                     __global float *dyt, const ulong dyt_off, const int k,
                                     const int hw)
{
    dy += dy_off;
    dyt += dyt_off;
    const int p = (int)get_global_id(0), kk = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    if (p >= hw || kk >= k)
        return;
    const size_t img = n * (size_t)k * (size_t)hw;
    dyt[img + (size_t)p * (size_t)k + (size_t)kk] = dy[img + (size_t)kk * (size_t)hw + (size_t)p];
}

/* dims: {C, hp, wp, K}, {R, S, Ho, Wo}, {sh, sw, dh, dw}, {images, flip, accumulate, 0}.
 * Global size (ceil(C*R*S / IG_MR), ceil(K / 16)): neighbouring work-items share their block of
 * channels, so the slice of dyt they stream stays in cache while they walk the input. */
__kernel void clcnn_conv2d_bwdw_igemm(__global const float *xp, __global const float *dyt,
                                      const ulong dyt_off, __global float *dw, const int4 g0,
                                      const int4 g1, const int4 g2, const int4 g3)
{
    dyt += dyt_off;
    const int C = g0.s0, hp = g0.s1, wp = g0.s2, K = g0.s3;
    const int R = g1.s0, S = g1.s1, ho = g1.s2, wo = g1.s3;
    const int sh = g2.s0, sw = g2.s1, dh = g2.s2, dwl = g2.s3;
    const int images = g3.s0, flip = g3.s1, accumulate = g3.s2;
    const int crs = C * R * S, rs = R * S;
    const int q0 = (int)get_global_id(0) * IG_MR, k0 = (int)get_global_id(1) * 16;
    if (k0 >= K || q0 >= crs)
        return;
    int base[IG_MR];
    for (int i = 0; i < IG_MR; i++) {
        const int q = min(q0 + i, crs - 1), c = q / rs, r0 = (q % rs) / S, s0 = q % S;
        const int r = flip ? R - 1 - r0 : r0, s = flip ? S - 1 - s0 : s0;
        base[i] = (c * hp + r * dh) * wp + s * dwl;
    }
    const size_t plane = (size_t)C * (size_t)hp * (size_t)wp, pixels = (size_t)ho * (size_t)wo;
    if (K - k0 >= 16) {
        float16 c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f, c4 = 0.0f, c5 = 0.0f, c6 = 0.0f,
                c7 = 0.0f;
        for (int n = 0; n < images; n++) {
            __global const float *xn = xp + (size_t)n * plane;
            __global const float *a0 = xn + base[0], *a1 = xn + base[1], *a2 = xn + base[2],
                                 *a3 = xn + base[3], *a4 = xn + base[4], *a5 = xn + base[5],
                                 *a6 = xn + base[6], *a7 = xn + base[7];
            __global const float *b = dyt + (size_t)n * pixels * (size_t)K + k0;
            for (int oy = 0; oy < ho; oy++) {
                const int row = oy * sh * wp;
                for (int ox = 0; ox < wo; ox++) {
                    const int o = row + ox * sw;
                    const float16 bv = vload16(0, b);
                    b += K;
                    c0 = fma((float16)(a0[o]), bv, c0);
                    c1 = fma((float16)(a1[o]), bv, c1);
                    c2 = fma((float16)(a2[o]), bv, c2);
                    c3 = fma((float16)(a3[o]), bv, c3);
                    c4 = fma((float16)(a4[o]), bv, c4);
                    c5 = fma((float16)(a5[o]), bv, c5);
                    c6 = fma((float16)(a6[o]), bv, c6);
                    c7 = fma((float16)(a7[o]), bv, c7);
                }
            }
        }
        float lanes[IG_MR][16];
        vstore16(c0, 0, lanes[0]);
        vstore16(c1, 0, lanes[1]);
        vstore16(c2, 0, lanes[2]);
        vstore16(c3, 0, lanes[3]);
        vstore16(c4, 0, lanes[4]);
        vstore16(c5, 0, lanes[5]);
        vstore16(c6, 0, lanes[6]);
        vstore16(c7, 0, lanes[7]);
        for (int l = 0; l < 16; l++)
            for (int i = 0; i < IG_MR && q0 + i < crs; i++) {
                __global float *out = dw + (size_t)(k0 + l) * (size_t)crs + (size_t)(q0 + i);
                *out = accumulate ? *out + lanes[i][l] : lanes[i][l];
            }
        return;
    }
    /* The last, partial block of channels: one at a time, summed in the same order. */
    for (int kk = k0; kk < K; kk++)
        for (int i = 0; i < IG_MR && q0 + i < crs; i++) {
            float acc = 0.0f;
            for (int n = 0; n < images; n++) {
                __global const float *a = xp + (size_t)n * plane + base[i];
                __global const float *b = dyt + (size_t)n * pixels * (size_t)K + kk;
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++) {
                        acc = fma(a[oy * sh * wp + ox * sw], *b, acc);
                        b += K;
                    }
            }
            __global float *out = dw + (size_t)kk * (size_t)crs + (size_t)(q0 + i);
            *out = accumulate ? *out + acc : acc;
        }
}

/* ws[c][k][rs] = w[k][c][rs]: the weights of backward data run as a forward convolution (the
 * roles of input and output channels swap; the flip is the mode's). One work-item per
 * (rs, c, k). */
__kernel void clcnn_conv2d_swap_kc(__global const float *w, __global float *ws, const int k,
                                   const int c, const int rs)
{
    const int i = (int)get_global_id(0), cc = (int)get_global_id(1);
    const size_t kk = get_global_id(2);
    if (i >= rs || cc >= c)
        return;
    ws[((size_t)cc * (size_t)k + kk) * (size_t)rs + (size_t)i] =
        w[(kk * (size_t)c + (size_t)cc) * (size_t)rs + (size_t)i];
}
