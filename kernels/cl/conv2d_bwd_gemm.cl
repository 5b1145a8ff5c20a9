/* The backward gemm solvers' kernels: dy moved into the wide layout (images side by side, one
 * row per output channel) and col2im as a gather (each dx element sums its own column entries
 * in a fixed order, so no atomics). The im2col itself is conv2d_im2col.cl's. */
#include "common.clh"

/* Elements per work-item of the copy, the vector width: 4, 8 or 16. */
#ifndef BWDG_VW
#define BWDG_VW 8
#endif

#define BWDG_CAT_(a, b) a##b
#define BWDG_CAT(a, b) BWDG_CAT_(a, b)
#define floatV BWDG_CAT(float, BWDG_VW)
#define vloadV BWDG_CAT(vload, BWDG_VW)
#define vstoreV BWDG_CAT(vstore, BWDG_VW)

/* Flag bit: true convolution (im2col's IM2COL_FLIP). */
#define BWDG_FLIP 1

/* dyw[off + k * ld + i * P + j] = dy[((n0 + i) * K + k) * P + j] for images i < count,
 * P = Ho * Wo. dims = (K, P, n0, ld). Global size: (ceil(P / BWDG_VW), K, count). */
__kernel void clcnn_conv2d_bwd_to_wide(__global const float *restrict dy,
                                       __global float *restrict dyw, const int4 dims, const int off)
{
    const int K = dims.s0, P = dims.s1, n0 = dims.s2, ld = dims.s3;
    const int j0 = (int)get_global_id(0) * BWDG_VW;
    const int k = (int)get_global_id(1), i = (int)get_global_id(2);
    if (j0 >= P)
        return;
    __global const float *from = dy + (size_t)((n0 + i) * K + k) * P + j0;
    __global float *to = dyw + off + (size_t)k * ld + i * P + j0;
    if (j0 + BWDG_VW <= P) {
        vstoreV(vloadV(0, from), 0, to);
    } else {
        for (int l = 0; l < P - j0; l++)
            to[l] = from[l];
    }
}

/* dx[n0 + i, c, iy, ix] = sum over the rows q = (c * R + r) * S + s of the column matrix (the
 * weight's own order) and the output positions (oy, ox) whose tap (r', s') lands on (iy, ix)
 * of col[q * ld + i * P + oy * Wo + ox], where (r', s') = (r, s), or (R-1-r, S-1-s) for true
 * convolution, and iy = oy * stride_h - pad_h + r' * dil_h (likewise ix): the adjoint of im2col.
 * Taps sum in (r, s) order. dims0 = (C, H, W, R), dims1 = (S, Ho, Wo, n0),
 * conv0 = (stride_h, stride_w, pad_h, pad_w), conv1 = (dil_h, dil_w, flags, ld).
 * Global size: (W, H, count * C). */
__kernel void clcnn_conv2d_col2im(__global const float *restrict col, __global float *restrict dx,
                                  const int4 dims0, const int4 dims1, const int4 conv0,
                                  const int4 conv1)
{
    const int C = dims0.s0, H = dims0.s1, W = dims0.s2, R = dims0.s3;
    const int S = dims1.s0, Ho = dims1.s1, Wo = dims1.s2, n0 = dims1.s3;
    const int stride_h = conv0.s0, stride_w = conv0.s1, pad_h = conv0.s2, pad_w = conv0.s3;
    const int dil_h = conv1.s0, dil_w = conv1.s1, ld = conv1.s3;
    const bool flip = (conv1.s2 & BWDG_FLIP) != 0;
    const int ix = (int)get_global_id(0), iy = (int)get_global_id(1);
    const int z = (int)get_global_id(2);
    if (ix >= W || iy >= H)
        return;
    const int c = z % C, i = z / C;
    const int P = Ho * Wo;
    float acc = 0.0f;
    for (int r = 0; r < R; r++) {
        const int rr = flip ? R - 1 - r : r;
        const int th = iy + pad_h - rr * dil_h;
        if (th < 0 || th % stride_h != 0 || th / stride_h >= Ho)
            continue;
        const int oy = th / stride_h;
        for (int s = 0; s < S; s++) {
            const int ss = flip ? S - 1 - s : s;
            const int tw = ix + pad_w - ss * dil_w;
            if (tw < 0 || tw % stride_w != 0 || tw / stride_w >= Wo)
                continue;
            const int q = (c * R + r) * S + s;
            acc += col[(size_t)q * ld + i * P + oy * Wo + tw / stride_w];
        }
    }
    dx[((size_t)(n0 + i) * C + c) * H * W + iy * W + ix] = acc;
}
