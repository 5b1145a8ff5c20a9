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

#ifndef IG_MR
#define IG_MR 7
#endif

/* xp[plane][py][px] = x[plane][py - top][px - left], zero outside x; py < hp, px < wp. One
 * work-item per (py, plane) row. */
__kernel void clcnn_conv2d_igemm_pad(__global const float *x, const ulong x_off,
                                     __global float *xp, const int h, const int w, const int hp,
                                     const int wp, const int top, const int left)
{
    x += x_off;
    const int py = (int)get_global_id(0);
    const size_t plane = get_global_id(1);
    if (py >= hp)
        return;
    const int iy = py - top;
    __global float *out = xp + (plane * (size_t)hp + (size_t)py) * (size_t)wp;
    if (iy < 0 || iy >= h) {
        for (int px = 0; px < wp; px++)
            out[px] = 0.0f;
        return;
    }
    __global const float *in = x + (plane * (size_t)h + (size_t)iy) * (size_t)w;
    for (int px = 0; px < wp; px++) {
        const int ix = px - left;
        out[px] = ix >= 0 && ix < w ? in[ix] : 0.0f;
    }
}

/* dyt[n][p][k] = dy[n][k][p] for p < hw (both from their offsets). One work-item per (p, n):
 * it writes one row of k channels. */
__kernel void clcnn_conv2d_igemm_dyt(__global const float *dy, const ulong dy_off,
                                     __global float *dyt, const ulong dyt_off, const int k,
                                     const int hw)
{
    dy += dy_off;
    dyt += dyt_off;
    const int p = (int)get_global_id(0);
    const size_t n = get_global_id(1);
    if (p >= hw)
        return;
    const size_t img = n * (size_t)k * (size_t)hw;
    __global float *out = dyt + img + (size_t)p * (size_t)k;
    for (int kk = 0; kk < k; kk++)
        out[kk] = dy[img + (size_t)kk * (size_t)hw + (size_t)p];
}

/* dims: {C, hp, wp, K}, {R, S, Ho, Wo}, {sh, sw, dh, dw}, {images, flip, accumulate, 0}.
 * Each work-item owns IG_MR rows (c, r, s) by IG_KV * 16 channels: per output pixel IG_KV
 * vector loads of dyt and IG_MR scalar loads of xp feed IG_MR * IG_KV fused multiply-adds, all
 * in registers (on LeNet's conv2 at N=64, kernel alone, quiet machine: 7 x 4 171 GFLOP/s,
 * 6 x 4 166, 8 x 2 140, 4 x 4 125; 8 x 1 was about half of 6 x 4: the loads of dyt limit). Global size (ceil(C*R*S / IG_MR), ceil(K / (16 * IG_KV))):
 * neighbouring work-items share their channels, so the slice of dyt they stream stays in cache
 * while they walk the input. A block of fewer channels takes one vector at a time, and the
 * last few channels one at a time; every sum runs over n, oy, ox in that order. */
#ifndef IG_KV
#define IG_KV 4
#endif

/* out = accumulate ? out + v : v for one row's 16 channels from k. */
#define IG_STORE(v, i, k)                                                                          \
    do {                                                                                           \
        float lanes_[16];                                                                          \
        vstore16((v), 0, lanes_);                                                                  \
        for (int l_ = 0; l_ < 16; l_++) {                                                          \
            __global float *o_ = dw + (size_t)((k) + l_) * (size_t)crs + (size_t)(q0 + (i));      \
            *o_ = accumulate ? *o_ + lanes_[l_] : lanes_[l_];                                      \
        }                                                                                          \
    } while (0)

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
    const int q0 = (int)get_global_id(0) * IG_MR, k0 = (int)get_global_id(1) * 16 * IG_KV;
    if (k0 >= K || q0 >= crs)
        return;
    int base[IG_MR];
    for (int i = 0; i < IG_MR; i++) {
        const int q = min(q0 + i, crs - 1), c = q / rs, r0 = (q % rs) / S, s0 = q % S;
        const int r = flip ? R - 1 - r0 : r0, s = flip ? S - 1 - s0 : s0;
        base[i] = (c * hp + r * dh) * wp + s * dwl;
    }
    const int rows = min(IG_MR, crs - q0);
    const size_t plane = (size_t)C * (size_t)hp * (size_t)wp, pixels = (size_t)ho * (size_t)wo;
    if (K - k0 >= 16 * IG_KV) {
        float16 acc[IG_MR][IG_KV];
#pragma unroll
        for (int i = 0; i < IG_MR; i++)
#pragma unroll
            for (int j = 0; j < IG_KV; j++)
                acc[i][j] = 0.0f;
        for (int n = 0; n < images; n++) {
            __global const float *xn = xp + (size_t)n * plane;
            __global const float *b = dyt + (size_t)n * pixels * (size_t)K + k0;
            for (int oy = 0; oy < ho; oy++) {
                const int row = oy * sh * wp;
                for (int ox = 0; ox < wo; ox++) {
                    const int o = row + ox * sw;
                    float16 bv[IG_KV];
#pragma unroll
                    for (int j = 0; j < IG_KV; j++)
                        bv[j] = vload16(j, b);
                    b += K;
#pragma unroll
                    for (int i = 0; i < IG_MR; i++) {
                        const float16 a = (float16)(xn[base[i] + o]);
#pragma unroll
                        for (int j = 0; j < IG_KV; j++)
                            acc[i][j] = fma(a, bv[j], acc[i][j]);
                    }
                }
            }
        }
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < IG_KV; j++)
                IG_STORE(acc[i][j], i, k0 + 16 * j);
        return;
    }
    /* A partial block: whole vectors of 16 channels one at a time... */
    int k = k0;
    for (; K - k >= 16; k += 16) {
        float16 acc[IG_MR];
#pragma unroll
        for (int i = 0; i < IG_MR; i++)
            acc[i] = 0.0f;
        for (int n = 0; n < images; n++) {
            __global const float *xn = xp + (size_t)n * plane;
            __global const float *b = dyt + (size_t)n * pixels * (size_t)K + k;
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    const int o = oy * sh * wp + ox * sw;
                    const float16 bv = vload16(0, b);
                    b += K;
#pragma unroll
                    for (int i = 0; i < IG_MR; i++)
                        acc[i] = fma((float16)(xn[base[i] + o]), bv, acc[i]);
                }
        }
        for (int i = 0; i < rows; i++)
            IG_STORE(acc[i], i, k);
    }
    /* ...then the last few channels one at a time, summed in the same order. */
    for (; k < K; k++)
        for (int i = 0; i < rows; i++) {
            float acc = 0.0f;
            for (int n = 0; n < images; n++) {
                __global const float *a = xp + (size_t)n * plane + base[i];
                __global const float *b = dyt + (size_t)n * pixels * (size_t)K + k;
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++) {
                        acc = fma(a[oy * sh * wp + ox * sw], *b, acc);
                        b += K;
                    }
            }
            __global float *out = dw + (size_t)k * (size_t)crs + (size_t)(q0 + i);
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
