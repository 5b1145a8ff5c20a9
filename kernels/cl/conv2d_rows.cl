/* Row-vector convolution, NCHW float32, stride 1 along the width: forward, and backward data
 * run as a forward convolution of dy with the weights' roles swapped (no weight copy: the
 * weights are read through two strides). Each work-item owns ROWS_KB output channels by
 * ROWS_OYB output rows by ROWS_NV vectors of ROWS_V columns, all in registers; per filter tap
 * ROWS_OYB * ROWS_NV unaligned vector loads of the padded input and ROWS_KB scalar weight loads
 * feed ROWS_KB * ROWS_OYB * ROWS_NV fused multiply-adds. Ends that do not fill a block are
 * computed by a block shifted back to end at the edge; stores skip what another block owns.
 * Every sum runs over (c, r, s) in that order: results do not depend on the launch. */
#include "common.clh"

/* Lanes of one vector (output columns): 4, 8 or 16. Narrower outputs compute the lanes past
 * their width from the padded copy and do not store them. */
#ifndef ROWS_V
#define ROWS_V 16
#endif
/* Vectors per output row segment: 1 to 4. */
#ifndef ROWS_NV
#define ROWS_NV 1
#endif
/* Output rows per block: 1 to 8. */
#ifndef ROWS_OYB
#define ROWS_OYB 4
#endif
/* Output channels per block: 1 to 8 (ROWS_KB * ROWS_OYB * ROWS_NV accumulators, keep <= 28). */
#ifndef ROWS_KB
#define ROWS_KB 4
#endif
/* Filter height and width: 1 to 11 each (the taps are unrolled). */
#ifndef ROWS_R
#define ROWS_R 3
#endif
#ifndef ROWS_S
#define ROWS_S 3
#endif
/* 1: true convolution (the filter read flipped); 0: cross-correlation. */
#ifndef ROWS_FLIP
#define ROWS_FLIP 0
#endif
/* The geometry as constants, so every load's offset folds into its address (as runtime values
 * they took a register or a stack slot each and the loads ran at about half the FMA rate):
 * the padded row length (>= 1), the stride along the height, the dilations (>= 1), and the
 * weights' distance between neighbouring output channels. */
#ifndef ROWS_WP
#define ROWS_WP 18
#endif
#ifndef ROWS_SH
#define ROWS_SH 1
#endif
#ifndef ROWS_DH
#define ROWS_DH 1
#endif
#ifndef ROWS_DW
#define ROWS_DW 1
#endif
#ifndef ROWS_WKS
#define ROWS_WKS (ROWS_R * ROWS_S)
#endif
/* 1: w is the packed copy clcnn_conv2d_rows_pack makes, each channel block's weights in the
 * order the work-item reads them (ROWS_WKS must then be ROWS_R * ROWS_S); 0: w as given. */
#ifndef ROWS_PACKED
#define ROWS_PACKED 0
#endif

#define ROWS_CAT_(a, b) a##b
#define ROWS_CAT(a, b) ROWS_CAT_(a, b)
#define floatV ROWS_CAT(float, ROWS_V)
#define vloadV ROWS_CAT(vload, ROWS_V)
#define vstoreV ROWS_CAT(vstore, ROWS_V)
#define ROWS_P (ROWS_OYB * ROWS_NV)
#define ROWS_RS (ROWS_R * ROWS_S)

/* Flag bits of g3.s3. */
#define ROWS_RELU 1
#define ROWS_BIAS 2

/* xp: N x C planes of hp x ROWS_WP, the input already padded (every tap of every block inside).
 * g0 = (C, hp, -, K), g1 = (Ho, Wo, -, -), g2 = (-, -, weight stride per input channel, row
 * blocks per work-item), g3 = (row blocks, column blocks, channel blocks, flags). The weight of
 * (output k, input c, tap t) is w[k * ROWS_WKS + c * g2.s2 + t]. Global size (channel blocks,
 * ceil(row blocks / g2.s3), N * column blocks), local (1, 1, 1). */
__kernel void clcnn_conv2d_rows(__global const float *restrict xp, __global const float *restrict w,
                                __global const float *restrict bias, __global float *restrict y,
                                const int4 g0, const int4 g1, const int4 g2, const int4 g3)
{
    const int C = g0.s0, hp = g0.s1, K = g0.s3;
    const int Ho = g1.s0, Wo = g1.s1;
    const int wcs = g2.s2, per_item = g2.s3;
    const int rblocks = g3.s0, cblocks = g3.s1, kblocks = g3.s2, flags = g3.s3;
    const int kb = (int)get_global_id(0);
    const int rg = (int)get_global_id(1);
    const int z = (int)get_global_id(2);
    const int n = z / cblocks, cb = z % cblocks;
    if (kb >= kblocks || rg * per_item >= rblocks)
        return;

    /* The channel block, shifted back to end at K; channels below kown belong to the block
     * before it. */
    const int kown = kb * ROWS_KB;
    const int k0 = min(kown, K - ROWS_KB);
    /* Column vectors: nominal starts and where they are computed. */
    int col[ROWS_NV], cown[ROWS_NV];
#pragma unroll
    for (int i = 0; i < ROWS_NV; i++) {
        cown[i] = (cb * ROWS_NV + i) * ROWS_V;
        col[i] = min(cown[i], max(Wo - ROWS_V, 0));
    }
    __global const float *xn = xp + (size_t)n * C * hp * ROWS_WP;
    const int rb_end = min(rblocks, (rg + 1) * per_item);
    for (int rb = rg * per_item; rb < rb_end; rb++) {
        const int oyown = rb * ROWS_OYB;
        const int oy0 = min(oyown, Ho - ROWS_OYB);
        floatV acc[ROWS_KB][ROWS_P];
#pragma unroll
        for (int kk = 0; kk < ROWS_KB; kk++)
#pragma unroll
            for (int p = 0; p < ROWS_P; p++)
                acc[kk][p] = (floatV)(0.0f);

        for (int c = 0; c < C; c++) {
            __global const float *xc = xn + (size_t)c * hp * ROWS_WP + oy0 * ROWS_SH * ROWS_WP;
#if ROWS_PACKED
            __global const float *wc = w + ((size_t)kb * C + c) * (ROWS_KB * ROWS_RS);
#else
            __global const float *wc = w + (size_t)k0 * ROWS_WKS + (size_t)c * wcs;
#endif
#pragma unroll
            for (int r = 0; r < ROWS_R; r++) {
#pragma unroll
                for (int s = 0; s < ROWS_S; s++) {
                    floatV v[ROWS_P];
#pragma unroll
                    for (int j = 0; j < ROWS_OYB; j++)
#pragma unroll
                        for (int i = 0; i < ROWS_NV; i++)
                            v[j * ROWS_NV + i] =
                                vloadV(0, xc + (j * ROWS_SH + r * ROWS_DH) * ROWS_WP + col[i] +
                                              s * ROWS_DW);
#if ROWS_FLIP
                    const int t = ROWS_RS - 1 - (r * ROWS_S + s);
#else
                    const int t = r * ROWS_S + s;
#endif
#pragma unroll
                    for (int kk = 0; kk < ROWS_KB; kk++) {
                        const floatV wv = (floatV)(wc[kk * ROWS_WKS + t]);
#pragma unroll
                        for (int p = 0; p < ROWS_P; p++)
                            acc[kk][p] = fma(wv, v[p], acc[kk][p]);
                    }
                }
            }
        }

#pragma unroll
        for (int kk = 0; kk < ROWS_KB; kk++) {
            const int k = k0 + kk;
            if (k < kown)
                continue;
            const floatV b = (flags & ROWS_BIAS) ? (floatV)(bias[k]) : (floatV)(0.0f);
#pragma unroll
            for (int j = 0; j < ROWS_OYB; j++) {
                if (oy0 + j < oyown)
                    continue;
                __global float *yr = y + (((size_t)n * K + k) * Ho + oy0 + j) * Wo;
#pragma unroll
                for (int i = 0; i < ROWS_NV; i++) {
                    floatV out = acc[kk][j * ROWS_NV + i] + b;
                    if (flags & ROWS_RELU)
                        out = fmax(out, (floatV)(0.0f));
                    /* A vector shifted back over lanes of this block's own vectors stores
                     * them again with the same values; over another block's, it skips them. */
                    if (col[i] + ROWS_V <= Wo && col[i] >= cb * ROWS_NV * ROWS_V) {
                        vstoreV(out, 0, yr + col[i]);
                    } else if (cown[i] < Wo) {
                        float t[ROWS_V];
                        vstoreV(out, 0, t);
                        for (int l = cown[i] - col[i]; l < min(ROWS_V, Wo - col[i]); l++)
                            yr[col[i] + l] = t[l];
                    }
                }
            }
        }
    }
}

/* The weights of every channel block (shifted back to end at K, as above) in reading order:
 * wp[kb][c][kk][t] = w[(k0 + kk) * wks + c * wcs + t] for t < R*S. A weight stream that jumps
 * by wcs floats per input channel (by C*R*S in backward data) defeats the hardware prefetchers,
 * which follow strides of at most 2 KB; the copy makes it one sequential stream (VGG-16 conv5_1
 * backward data at N=1: about 1.5x the kernel's speed, for a copy of the weights).
 * g = (C, K, wks, wcs). Global size (C rounded up, channel blocks). */
__kernel void clcnn_conv2d_rows_pack(__global const float *restrict w, __global float *restrict wp,
                                     const int4 g)
{
    const int c = (int)get_global_id(0), kb = (int)get_global_id(1);
    const int C = g.s0, K = g.s1, wks = g.s2, wcs = g.s3;
    if (c >= C)
        return;
    const int k0 = min(kb * ROWS_KB, K - ROWS_KB);
    __global float *out = wp + ((size_t)kb * C + c) * (ROWS_KB * ROWS_RS);
    for (int kk = 0; kk < ROWS_KB; kk++) {
        __global const float *in = w + (size_t)(k0 + kk) * wks + (size_t)c * wcs;
        for (int t = 0; t < ROWS_RS; t++)
            out[kk * ROWS_RS + t] = in[t];
    }
}

#include "conv2d_rows_pad.clh"
