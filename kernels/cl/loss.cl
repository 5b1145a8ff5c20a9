/* Softmax, softmax cross-entropy and its gradient, float32, over the rows of a row-major
 * rows x cols matrix. One work-item takes one whole row, walking it as float8 vectors (explicit
 * SIMD for CPU devices) plus a scalar tail, in a fixed order, so results do not depend on the
 * launch. The maximum is subtracted before exp (log-sum-exp), so no finite input overflows. */
#include "common.clh"

/* The row's maximum. */
static float row_max(__global const float *xr, const uint cols)
{
    uint j = 0;
    float m = -INFINITY;
    if (cols >= 8) {
        float8 m8 = vload8(0, xr);
        for (j = 8; j + 8 <= cols; j += 8)
            m8 = fmax(m8, vload8(0, xr + j));
        const float4 m4 = fmax(m8.lo, m8.hi);
        const float2 m2 = fmax(m4.lo, m4.hi);
        m = fmax(m2.lo, m2.hi);
    }
    for (; j < cols; j++)
        m = fmax(m, xr[j]);
    return m;
}

/* sum_j exp(xr[j] - m): eight lane sums, added pairwise, then the tail. */
static float row_sum_exp(__global const float *xr, const uint cols, const float m)
{
    uint j = 0;
    float s = 0.0f;
    if (cols >= 8) {
        float8 s8 = (float8)(0.0f);
        for (; j + 8 <= cols; j += 8)
            s8 += exp(vload8(0, xr + j) - m);
        const float4 s4 = s8.lo + s8.hi;
        const float2 s2 = s4.lo + s4.hi;
        s = s2.lo + s2.hi;
    }
    for (; j < cols; j++)
        s += exp(xr[j] - m);
    return s;
}

/* row_loss[r] = log(sum_j exp(x[r,j] - m)) + m - x[r, labels[r]]. The host has checked every
 * label is in [0, cols). Global size rows, rounded up to the work-group size. */
__kernel void clcnn_softmax_xent_rows(const uint rows, const uint cols, __global const float *x,
                                      __global const int *labels, __global float *row_loss)
{
    const uint r = CLCNN_GID0();
    if (r >= rows)
        return;
    __global const float *xr = x + (size_t)r * cols;
    const float m = row_max(xr, cols);
    const float s = row_sum_exp(xr, cols, m);
    row_loss[r] = (m - xr[labels[r]]) + log(s);
}

/* out[index] = (sum of row_loss[0 .. rows-1] in order) / rows. One work-item. */
__kernel void clcnn_softmax_xent_mean(const uint rows, __global const float *row_loss,
                                      __global float *out, const uint index)
{
    if (get_global_id(0) != 0)
        return;
    float s = 0.0f;
    for (uint r = 0; r < rows; r++)
        s += row_loss[r];
    out[index] = s / (float)rows;
}

/* dx[r,j] = (exp(x[r,j] - m) / s - (j == labels[r])) * inv_n. dx may be x: the row is read in
 * full (max, sum) before its first write, and each element is read before it is written. */
__kernel void clcnn_softmax_xent_bwd(const uint rows, const uint cols, __global const float *x,
                                     __global const int *labels, __global float *dx,
                                     const float inv_n)
{
    const uint r = CLCNN_GID0();
    if (r >= rows)
        return;
    __global const float *xr = x + (size_t)r * cols;
    __global float *dr = dx + (size_t)r * cols;
    const float m = row_max(xr, cols);
    const float s = row_sum_exp(xr, cols, m);
    const int label = labels[r];
    uint j = 0;
    for (; j + 8 <= cols; j += 8) {
        const int8 k = (int8)(0, 1, 2, 3, 4, 5, 6, 7) + (int)j;
        const float8 onehot = select((float8)(0.0f), (float8)(1.0f), k == (int8)(label));
        vstore8((exp(vload8(0, xr + j) - m) / s - onehot) * inv_n, 0, dr + j);
    }
    for (; j < cols; j++)
        dr[j] = (exp(xr[j] - m) / s - ((int)j == label ? 1.0f : 0.0f)) * inv_n;
}

/* y[r,j] = exp(x[r,j] - m) / s; y may be x (as above). Global size rows, rounded up. */
__kernel void clcnn_softmax_fwd(const uint rows, const uint cols, __global const float *x,
                                __global float *y)
{
    const uint r = CLCNN_GID0();
    if (r >= rows)
        return;
    __global const float *xr = x + (size_t)r * cols;
    __global float *yr = y + (size_t)r * cols;
    const float m = row_max(xr, cols);
    const float s = row_sum_exp(xr, cols, m);
    uint j = 0;
    for (; j + 8 <= cols; j += 8)
        vstore8(exp(vload8(0, xr + j) - m) / s, 0, yr + j);
    for (; j < cols; j++)
        yr[j] = exp(xr[j] - m) / s;
}
