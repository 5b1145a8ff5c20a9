/* 2-D pooling forward and backward, NCHW float32. The generic kernels take one output (forward)
 * or one input gradient element (backward) per work-item; the 2x2 stride-2 kernels take POOL_VW
 * outputs of a row per work-item as vectors (2 * POOL_VW inputs per row of the pair), which CPU
 * devices need for SIMD. */
#include "common.clh"

/* Pooling kinds (clcnn_pool_kind). */
#define POOL_MAX 0
#define POOL_AVG 1
#define POOL_AVG_EXCLUDE_PAD 2
#define POOL_L2 3

/* Flag bits of misc.w: the indices buffer is given. */
#define POOL_INDICES 1

/* Outputs of one row per work-item of the 2x2 stride-2 kernels (a vector): 2, 4 or 8. */
#ifndef POOL_VW
#define POOL_VW 8
#endif
#if POOL_VW == 8
#define POOL_VW2 16
#define POOL_RAMP (int8)(0, 2, 4, 6, 8, 10, 12, 14)
#elif POOL_VW == 4
#define POOL_VW2 8
#define POOL_RAMP (int4)(0, 2, 4, 6)
#elif POOL_VW == 2
#define POOL_VW2 4
#define POOL_RAMP (int2)(0, 2)
#else
#error "POOL_VW must be 2, 4 or 8"
#endif
#define POOL_CAT_(a, b) a##b
#define POOL_CAT(a, b) POOL_CAT_(a, b)
#define floatP POOL_CAT(float, POOL_VW)
#define intP POOL_CAT(int, POOL_VW)
#define vloadP POOL_CAT(vload, POOL_VW)
#define vloadP2 POOL_CAT(vload, POOL_VW2)
#define vstoreP POOL_CAT(vstore, POOL_VW)
#define vstoreP2 POOL_CAT(vstore, POOL_VW2)

/* Argument layout shared by every kernel: dims = (H, W, Ho, Wo), win = (R, S, stride_h,
 * stride_w), misc = (pad_h, pad_w, kind, flags); the global size's third dimension is N*C. */

/* Divisor of the average window at (oy, ox); the window starts at (h0, w0). AVG counts the
 * padding but not what lies past it (ceil mode), AVG_EXCLUDE_PAD only the input. */
static float pool_divisor(int4 dims, int4 win, int4 misc, int h0, int w0)
{
    const int H = dims.s0, W = dims.s1, R = win.s0, S = win.s1;
    if (misc.s2 == POOL_AVG)
        return (float)((min(h0 + R, H + misc.s0) - h0) * (min(w0 + S, W + misc.s1) - w0));
    return (float)((min(h0 + R, H) - max(h0, 0)) * (min(w0 + S, W) - max(w0, 0)));
}

/* One output of plane xp at (oy, ox); for MAX, *arg gets the chosen position ih * W + iw:
 * the first maximum in row-major window order, or the last NaN. Every window holds at least
 * one input element (the host refuses pad >= window). Sums run in row-major window order with
 * fma for L2, the order the vector kernels use, so both paths give the same bits. */
static float pool_one(__global const float *xp, int4 dims, int4 win, int4 misc, int oy, int ox,
                      int *arg)
{
    const int H = dims.s0, W = dims.s1;
    const int h0 = oy * win.s2 - misc.s0, w0 = ox * win.s3 - misc.s1;
    const int hs = max(h0, 0), he = min(h0 + win.s0, H);
    const int ws = max(w0, 0), we = min(w0 + win.s1, W);
    const int kind = misc.s2;
    if (kind == POOL_MAX) {
        float best = -INFINITY;
        int idx = -1;
        for (int h = hs; h < he; h++)
            for (int w = ws; w < we; w++) {
                const float v = xp[h * W + w];
                if (idx < 0 || v > best || isnan(v)) {
                    best = v;
                    idx = h * W + w;
                }
            }
        *arg = idx;
        return best;
    }
    float acc = 0.0f;
    for (int h = hs; h < he; h++)
        for (int w = ws; w < we; w++) {
            const float v = xp[h * W + w];
            acc = kind == POOL_L2 ? fma(v, v, acc) : acc + v;
        }
    *arg = -1;
    if (kind == POOL_L2)
        return sqrt(acc);
    return acc / pool_divisor(dims, win, misc, h0, w0);
}

/* Forward, any window. Global size (Wo, Ho, N*C). */
__kernel void clcnn_pool_fwd(__global const float *restrict x, __global float *restrict y,
                             __global int *restrict indices, const int4 dims, const int4 win,
                             const int4 misc)
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const size_t plane = get_global_id(2);
    const int H = dims.s0, W = dims.s1, Ho = dims.s2, Wo = dims.s3;
    if (ox >= Wo || oy >= Ho)
        return;
    int arg;
    const float v = pool_one(x + plane * (size_t)H * W, dims, win, misc, oy, ox, &arg);
    const size_t o = (plane * Ho + oy) * Wo + ox;
    y[o] = v;
    if (misc.s3 & POOL_INDICES)
        indices[o] = arg;
}

/* The gradient of one input element (ih, iw) of a plane: the sum, in row-major output order,
 * of what each window covering it passes back. */
static float pool_grad_one(__global const float *xp, __global const float *yp,
                           __global const float *dyp, __global const int *ip, int4 dims, int4 win,
                           int4 misc, int ih, int iw)
{
    const int W = dims.s1, Ho = dims.s2, Wo = dims.s3;
    const int R = win.s0, S = win.s1, sh = win.s2, sw = win.s3, ph = misc.s0, pw = misc.s1;
    const int kind = misc.s2;
    const int ylo = ih + ph < R ? 0 : (ih + ph - R) / sh + 1, yhi = min((ih + ph) / sh, Ho - 1);
    const int xlo = iw + pw < S ? 0 : (iw + pw - S) / sw + 1, xhi = min((iw + pw) / sw, Wo - 1);
    const int pos = ih * W + iw;
    const float xv = kind == POOL_L2 ? xp[pos] : 0.0f;
    float acc = 0.0f;
    for (int oy = ylo; oy <= yhi; oy++)
        for (int ox = xlo; ox <= xhi; ox++) {
            const int o = oy * Wo + ox;
            const float g = dyp[o];
            if (kind == POOL_MAX) {
                int arg;
                if (misc.s3 & POOL_INDICES)
                    arg = ip[o];
                else
                    (void)pool_one(xp, dims, win, misc, oy, ox, &arg);
                if (arg == pos)
                    acc += g;
            } else if (kind == POOL_L2) {
                const float yv = yp[o];
                if (yv > 0.0f)
                    acc += g * xv / yv;
            } else {
                acc += g / pool_divisor(dims, win, misc, oy * sh - ph, ox * sw - pw);
            }
        }
    return acc;
}

/* Backward, any window: one dx element per work-item, no atomics. Global size (W, H, N*C). */
__kernel void clcnn_pool_bwd(__global const float *restrict x, __global const float *restrict y,
                             __global const float *restrict dy, __global const int *restrict indices,
                             __global float *restrict dx, const int4 dims, const int4 win,
                             const int4 misc)
{
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1);
    const size_t plane = get_global_id(2);
    const int H = dims.s0, W = dims.s1, Ho = dims.s2, Wo = dims.s3;
    if (iw >= W || ih >= H)
        return;
    const size_t in_plane = plane * (size_t)H * W, out_plane = plane * (size_t)Ho * Wo;
    const int kind = misc.s2;
    const bool need_x = kind == POOL_L2 || (kind == POOL_MAX && !(misc.s3 & POOL_INDICES));
    dx[in_plane + (size_t)ih * W + iw] =
        pool_grad_one(need_x ? x + in_plane : x, kind == POOL_L2 ? y + out_plane : y,
                      dy + out_plane, (misc.s3 & POOL_INDICES) ? indices + out_plane : indices,
                      dims, win, misc, ih, iw);
}

/* ---- 2x2 windows, stride 2, no padding -------------------------------------------------- */

/* The element-wise argmax of four candidates in window order (0,0), (0,1), (1,0), (1,1), with
 * pool_one's rule: a later candidate wins when greater or NaN; over POOL_VW lanes. */
static floatP max4p(floatP v0, floatP v1, floatP v2, floatP v3, intP *arg)
{
    floatP best = v0;
    intP a = (intP)(0);
    intP t = isgreater(v1, best) | isnan(v1);
    best = select(best, v1, t);
    a = select(a, (intP)(1), t);
    t = isgreater(v2, best) | isnan(v2);
    best = select(best, v2, t);
    a = select(a, (intP)(2), t);
    t = isgreater(v3, best) | isnan(v3);
    best = select(best, v3, t);
    a = select(a, (intP)(3), t);
    *arg = a;
    return best;
}

/* Forward, 2x2 stride 2: POOL_VW outputs of one row per work-item from two loads of 2 * POOL_VW.
 * Work-items at the right or bottom edge (odd sizes, ceil mode, Wo not a multiple of POOL_VW)
 * fall back to pool_one. Global size (ceil(Wo / POOL_VW), Ho, N*C). */
__kernel void clcnn_pool_fwd_2x2s2(__global const float *restrict x, __global float *restrict y,
                                   __global int *restrict indices, const int4 dims,
                                   const int4 win, const int4 misc)
{
    const int bx = (int)get_global_id(0), oy = (int)get_global_id(1);
    const size_t plane = get_global_id(2);
    const int H = dims.s0, W = dims.s1, Ho = dims.s2, Wo = dims.s3;
    const int ox0 = bx * POOL_VW;
    if (ox0 >= Wo || oy >= Ho)
        return;
    __global const float *xp = x + plane * (size_t)H * W;
    const size_t o = (plane * Ho + oy) * Wo + ox0;
    const int kind = misc.s2;
    if (2 * oy + 1 >= H || 2 * ox0 + POOL_VW2 > W) {
        for (int l = 0; l < POOL_VW && ox0 + l < Wo; l++) {
            int arg;
            y[o + l] = pool_one(xp, dims, win, misc, oy, ox0 + l, &arg);
            if (misc.s3 & POOL_INDICES)
                indices[o + l] = arg;
        }
        return;
    }
    const int base = 2 * oy * W + 2 * ox0;
    const POOL_CAT(float, POOL_VW2) r0 = vloadP2(0, xp + base), r1 = vloadP2(0, xp + base + W);
    const floatP v0 = r0.even, v1 = r0.odd, v2 = r1.even, v3 = r1.odd;
    floatP out;
    if (kind == POOL_MAX) {
        intP a;
        out = max4p(v0, v1, v2, v3, &a);
        if (misc.s3 & POOL_INDICES) {
            const intP pos = (intP)(base) + POOL_RAMP + (a & 1) + (a >> 1) * (intP)(W);
            vstoreP(pos, 0, indices + o);
        }
    } else if (kind == POOL_L2) {
        floatP acc = v0 * v0;
        acc = fma(v1, v1, acc);
        acc = fma(v2, v2, acc);
        acc = fma(v3, v3, acc);
        out = sqrt(acc);
    } else {
        out = (((v0 + v1) + v2) + v3) / 4.0f;
    }
    vstoreP(out, 0, y + o);
}

/* (a0, b0, a1, b1, ...): the even and odd columns merged back into one row. */
static POOL_CAT(float, POOL_VW2) interleave(floatP a, floatP b)
{
#if POOL_VW == 8
    return (float16)(a.s0, b.s0, a.s1, b.s1, a.s2, b.s2, a.s3, b.s3, a.s4, b.s4, a.s5, b.s5, a.s6,
                     b.s6, a.s7, b.s7);
#elif POOL_VW == 4
    return (float8)(a.s0, b.s0, a.s1, b.s1, a.s2, b.s2, a.s3, b.s3);
#else
    return (float4)(a.s0, b.s0, a.s1, b.s1);
#endif
}

/* Backward, 2x2 stride 2: one work-item writes a 2 x (2 * POOL_VW) block of dx (the POOL_VW
 * windows over it do not overlap, so each dx element has one contribution, as in pool_grad_one).
 * Blocks at the edges fall back to pool_grad_one. Global size (ceil(W / (2 * POOL_VW)),
 * ceil(H / 2), N*C). */
__kernel void clcnn_pool_bwd_2x2s2(__global const float *restrict x,
                                   __global const float *restrict y,
                                   __global const float *restrict dy,
                                   __global const int *restrict indices,
                                   __global float *restrict dx, const int4 dims, const int4 win,
                                   const int4 misc)
{
    const int bx = (int)get_global_id(0), by = (int)get_global_id(1);
    const size_t plane = get_global_id(2);
    const int H = dims.s0, W = dims.s1, Ho = dims.s2, Wo = dims.s3;
    const int ih0 = 2 * by, iw0 = POOL_VW2 * bx;
    if (ih0 >= H || iw0 >= W)
        return;
    const size_t in_plane = plane * (size_t)H * W, out_plane = plane * (size_t)Ho * Wo;
    const int kind = misc.s2;
    const bool have_idx = (misc.s3 & POOL_INDICES) != 0;
    __global const float *xp = x + (kind == POOL_L2 || (kind == POOL_MAX && !have_idx) ? in_plane : 0);
    __global const float *yp = y + (kind == POOL_L2 ? out_plane : 0);
    __global const int *ip = indices + (have_idx ? out_plane : 0);
    __global const float *dyp = dy + out_plane;
    __global float *dxp = dx + in_plane;
    if (ih0 + 1 >= H || iw0 + POOL_VW2 > W) {
        for (int h = ih0; h < min(ih0 + 2, H); h++)
            for (int w = iw0; w < min(iw0 + POOL_VW2, W); w++)
                dxp[h * W + w] = pool_grad_one(xp, yp, dyp, ip, dims, win, misc, h, w);
        return;
    }
    const int o = by * Wo + POOL_VW * bx;
    const int base = ih0 * W + iw0;
    const floatP g = vloadP(0, dyp + o);
    const floatP zero = (floatP)(0.0f);
    floatP d0, d1, d2, d3;
    if (kind == POOL_MAX) {
        intP a;
        if (have_idx) {
            const intP idx = vloadP(0, ip + o);
            const intP p00 = (intP)(base) + POOL_RAMP;
            a = select(select(select((intP)(-1), (intP)(3), idx == p00 + (intP)(W + 1)), (intP)(2),
                              idx == p00 + (intP)(W)),
                       (intP)(1), idx == p00 + (intP)(1));
            a = select(a, (intP)(0), idx == p00);
        } else {
            const POOL_CAT(float, POOL_VW2) r0 = vloadP2(0, xp + base),
                                            r1 = vloadP2(0, xp + base + W);
            (void)max4p(r0.even, r0.odd, r1.even, r1.odd, &a);
        }
        d0 = select(zero, g, a == (intP)(0));
        d1 = select(zero, g, a == (intP)(1));
        d2 = select(zero, g, a == (intP)(2));
        d3 = select(zero, g, a == (intP)(3));
    } else if (kind == POOL_L2) {
        const POOL_CAT(float, POOL_VW2) r0 = vloadP2(0, xp + base), r1 = vloadP2(0, xp + base + W);
        const floatP yv = vloadP(0, yp + o);
        const intP pos = isgreater(yv, zero);
        d0 = select(zero, g * r0.even / yv, pos);
        d1 = select(zero, g * r0.odd / yv, pos);
        d2 = select(zero, g * r1.even / yv, pos);
        d3 = select(zero, g * r1.odd / yv, pos);
    } else {
        d0 = d1 = d2 = d3 = g / 4.0f;
    }
    vstoreP2(interleave(d0, d1), 0, dxp + base);
    vstoreP2(interleave(d2, d3), 0, dxp + base + W);
}
