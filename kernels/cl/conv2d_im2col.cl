/* The gemm solver's kernels: im2col (NCHW input to a column matrix that a GEMM with the weights
 * turns into the output) and the epilogue (bias, ReLU, and the move from the column layout back
 * to NCHW). Both are memory-bound; each work-item moves one explicit vector of IM2COL_VW. */
#include "common.clh"

/* Column-matrix elements per work-item, the vector width: 2, 4, 8 or 16. */
#ifndef IM2COL_VW
#define IM2COL_VW 8
#endif

#define IM2COL_CAT_(a, b) a##b
#define IM2COL_CAT(a, b) IM2COL_CAT_(a, b)
#define floatV IM2COL_CAT(float, IM2COL_VW)
#define vloadV IM2COL_CAT(vload, IM2COL_VW)
#define vstoreV IM2COL_CAT(vstore, IM2COL_VW)

/* Flag bits. */
#define IM2COL_FLIP 1
#define IM2COL_RELU 2
#define IM2COL_BIAS 4

/* Stores the first n lanes of v at dst (n <= IM2COL_VW). */
static inline void im2col_store(floatV v, __global float *dst, int n)
{
    if (n >= IM2COL_VW) {
        vstoreV(v, 0, dst);
    } else {
        float t[IM2COL_VW];
        vstoreV(v, 0, t);
        for (int l = 0; l < n; l++)
            dst[l] = t[l];
    }
}

/* Column matrix of images n0 .. n0 + count - 1. Row q = (c * R + r) * S + s holds, at column
 * j = oh * Wo + ow, the input tap x[n, c, oh * stride_h - pad_h + r' * dil_h,
 * ow * stride_w - pad_w + s' * dil_w] (zero outside the image), where (r', s') = (r, s) for
 * cross-correlation and (R-1-r, S-1-s) for true convolution, so the weights are used unflipped.
 * Element (image i, row q, column j) goes to col[col_off + q * ld + i * img_stride + j].
 * dims0 = (C, H, W, R), dims1 = (S, Ho, Wo, n0), conv0 = (stride_h, stride_w, pad_h, pad_w),
 * conv1 = (dil_h, dil_w, flags, 0), layout = (ld, img_stride, col_off, 0).
 * Global size: (ceil(Ho * Wo / IM2COL_VW), C * R * S, count). */
__kernel void clcnn_im2col(__global const float *restrict x, __global float *restrict col,
                           const int4 dims0, const int4 dims1, const int4 conv0, const int4 conv1,
                           const int4 layout)
{
    const int C = dims0.s0, H = dims0.s1, W = dims0.s2, R = dims0.s3;
    const int S = dims1.s0, Ho = dims1.s1, Wo = dims1.s2, n0 = dims1.s3;
    const int stride_h = conv0.s0, stride_w = conv0.s1, pad_h = conv0.s2, pad_w = conv0.s3;
    const int dil_h = conv1.s0, dil_w = conv1.s1, flags = conv1.s2;
    const int ld = layout.s0, img_stride = layout.s1, col_off = layout.s2;

    const int HoWo = Ho * Wo;
    const int j0 = (int)get_global_id(0) * IM2COL_VW;
    const int q = (int)get_global_id(1);
    const int i = (int)get_global_id(2);
    if (j0 >= HoWo)
        return;
    const int c = q / (R * S);
    int r = q / S % R, s = q % S;
    if (flags & IM2COL_FLIP) {
        r = R - 1 - r;
        s = S - 1 - s;
    }
    __global const float *xc = x + (size_t)((n0 + i) * C + c) * H * W;
    const int dy = r * dil_h - pad_h, dx = s * dil_w - pad_w;

    floatV v;
    const int oh0 = j0 / Wo, ow0 = j0 % Wo;
    const int iy0 = oh0 * stride_h + dy, ix0 = ow0 * stride_w + dx;
    if (ow0 + IM2COL_VW <= Wo && stride_w == 1 && iy0 >= 0 && iy0 < H && ix0 >= 0 &&
        ix0 + IM2COL_VW <= W) {
        /* The whole vector lies on one input row: one vector load. */
        v = vloadV(0, xc + iy0 * W + ix0);
    } else {
        float t[IM2COL_VW];
#pragma unroll
        for (int l = 0; l < IM2COL_VW; l++) {
            const int j = min(j0 + l, HoWo - 1);
            const int iy = j / Wo * stride_h + dy, ix = j % Wo * stride_w + dx;
            t[l] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix] : 0.0f;
        }
        v = vloadV(0, t);
    }
    im2col_store(v, col + col_off + q * ld + i * img_stride + j0, HoWo - j0);
}

/* y[n0 + i, k, j] = act(src[src_off + k * k_stride + i * img_stride + j] + bias[k]) for images
 * i < count, where act is ReLU when flags has IM2COL_RELU and bias is added when it has
 * IM2COL_BIAS. src may be y itself (in place), so neither pointer is restrict.
 * dims = (K, Ho * Wo, n0, flags), layout = (k_stride, img_stride, src_off, 0).
 * Global size: (ceil(Ho * Wo / IM2COL_VW), K, count). */
__kernel void clcnn_im2col_epilogue(__global const float *src, __global const float *bias,
                                    __global float *y, const int4 dims, const int4 layout)
{
    const int K = dims.s0, HoWo = dims.s1, n0 = dims.s2, flags = dims.s3;
    const int k_stride = layout.s0, img_stride = layout.s1, src_off = layout.s2;
    const int j0 = (int)get_global_id(0) * IM2COL_VW;
    const int k = (int)get_global_id(1);
    const int i = (int)get_global_id(2);
    if (j0 >= HoWo)
        return;
    const int n = HoWo - j0;
    __global const float *from = src + src_off + k * k_stride + i * img_stride + j0;
    floatV v;
    if (n >= IM2COL_VW) {
        v = vloadV(0, from);
    } else {
        float t[IM2COL_VW];
#pragma unroll
        for (int l = 0; l < IM2COL_VW; l++)
            t[l] = l < n ? from[l] : 0.0f;
        v = vloadV(0, t);
    }
    if (flags & IM2COL_BIAS)
        v += (floatV)(bias[k]);
    if (flags & IM2COL_RELU)
        v = fmax(v, (floatV)(0.0f));
    im2col_store(v, y + (size_t)((n0 + i) * K + k) * HoWo + j0, n);
}
