/* Kernels of the fully connected layer, float32, row-major matrices: the bias kernels, and for
 * CPU devices a register-blocked GEMM and a transpose (GPUs use CLBlast's GEMM). In the bias
 * kernels each work-item takes LINEAR_VW consecutive columns as one float8 (explicit SIMD for
 * CPU devices) or, at the end of a row, the scalar tail. */
#include "common.clh"

/* Columns per work-item: fixed at 8 (float8); the host sizes the launch with the same value. */
#define LINEAR_VW 8

/* y[r, c] += b[c]. Global size (ceil(cols / LINEAR_VW) rounded up to the work-group, rows). */
__kernel void clcnn_linear_bias_fwd(const uint rows, const uint cols, __global float *y,
                                    __global const float *b)
{
    const uint c = CLCNN_GID0() * LINEAR_VW, r = (uint)get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    __global float *yr = y + (size_t)r * cols;
    if (cols - c >= LINEAR_VW) {
        vstore8(vload8(0, yr + c) + vload8(0, b + c), 0, yr + c);
    } else {
        for (uint j = c; j < cols; j++)
            yr[j] += b[j];
    }
}

/* db[c] = (accumulate ? db[c] : 0) + sum over r = 0, 1, ... of dy[r, c], in that order, so the
 * result does not depend on the launch. Global size ceil(cols / LINEAR_VW), rounded up. */
__kernel void clcnn_linear_bias_bwd(const uint rows, const uint cols, __global const float *dy,
                                    __global float *db, const uint accumulate)
{
    const uint c = CLCNN_GID0() * LINEAR_VW;
    if (c >= cols)
        return;
    if (cols - c >= LINEAR_VW) {
        float8 acc = (float8)(0.0f);
        for (uint r = 0; r < rows; r++)
            acc += vload8(0, dy + (size_t)r * cols + c);
        if (accumulate)
            acc = vload8(0, db + c) + acc;
        vstore8(acc, 0, db + c);
    } else {
        for (uint j = c; j < cols; j++) {
            float acc = 0.0f;
            for (uint r = 0; r < rows; r++)
                acc += dy[(size_t)r * cols + j];
            db[j] = accumulate ? db[j] + acc : acc;
        }
    }
}

/* Outer-product GEMM: C[m, n] = (accumulate ? C[m, n] : 0) + sum_k A(m, k) * B[k, n] for
 * m < M, n < N, with A(m, k) = A[m * sam + k * sak] (so A or its transpose, any layout) and B
 * row-major (ldb). Each work-item owns GEMM_MR rows by GEMM_KV * 16 consecutive columns: per k
 * it loads GEMM_KV float16s of B and GEMM_MR scalars of A for GEMM_MR * GEMM_KV fused
 * multiply-adds, so the block lives in registers (explicit SIMD, which is what POCL's CPU device
 * vectorizes best; 6 x 4 ran LeNet's fc1 GEMMs 1.4-5x faster than 8 x 1). Sums run over k in
 * order: the result does not depend on the launch. Global size
 * (ceil(M / GEMM_MR), ceil(N / (16 * GEMM_KV))): the row blocks are the first dimension, so the
 * work-items that read the same K x 64 panel of B run one after another and find it in cache (on
 * POCL, LeNet's fc1 backward data, where B's rows lie 12.5 KiB apart, ran 2.2x faster than with
 * the column blocks first). A partial last column block takes whole vectors one at a time, then
 * single columns, with the same order of sums. */
#ifndef GEMM_MR
#define GEMM_MR 6
#endif
#ifndef GEMM_KV
#define GEMM_KV 4
#endif

#define GEMM_PUT(v, i, n)                                                                          \
    do {                                                                                           \
        __global float *c_ = C + (size_t)(m0 + (i)) * ldc + (n);                                   \
        vstore16(accumulate ? vload16(0, c_) + (v) : (v), 0, c_);                                  \
    } while (0)

__kernel void clcnn_gemm_outer(const int M, const int N, const int K, __global const float *A,
                               const int sam, const int sak, __global const float *B,
                               const int ldb, __global float *C, const int ldc,
                               const int accumulate)
{
    const int n0 = (int)get_global_id(1) * 16 * GEMM_KV, m0 = (int)get_global_id(0) * GEMM_MR;
    if (n0 >= N || m0 >= M)
        return;
    __global const float *a[GEMM_MR];
#pragma unroll
    for (int i = 0; i < GEMM_MR; i++)
        a[i] = A + (size_t)min(m0 + i, M - 1) * sam;
    const int rows = min(GEMM_MR, M - m0);
    if (N - n0 >= 16 * GEMM_KV) {
        float16 acc[GEMM_MR][GEMM_KV];
#pragma unroll
        for (int i = 0; i < GEMM_MR; i++)
#pragma unroll
            for (int j = 0; j < GEMM_KV; j++)
                acc[i][j] = 0.0f;
        __global const float *b = B + n0;
        for (int k = 0; k < K; k++) {
            float16 bv[GEMM_KV];
#pragma unroll
            for (int j = 0; j < GEMM_KV; j++)
                bv[j] = vload16(j, b);
            b += ldb;
            const size_t o = (size_t)k * sak;
#pragma unroll
            for (int i = 0; i < GEMM_MR; i++) {
                const float16 av = (float16)(a[i][o]);
#pragma unroll
                for (int j = 0; j < GEMM_KV; j++)
                    acc[i][j] = fma(av, bv[j], acc[i][j]);
            }
        }
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < GEMM_KV; j++)
                GEMM_PUT(acc[i][j], i, n0 + 16 * j);
        return;
    }
    int n = n0;
    for (; N - n >= 16; n += 16) {
        float16 acc[GEMM_MR];
#pragma unroll
        for (int i = 0; i < GEMM_MR; i++)
            acc[i] = 0.0f;
        for (int k = 0; k < K; k++) {
            const float16 bv = vload16(0, B + (size_t)k * ldb + n);
            const size_t o = (size_t)k * sak;
#pragma unroll
            for (int i = 0; i < GEMM_MR; i++)
                acc[i] = fma((float16)(a[i][o]), bv, acc[i]);
        }
        for (int i = 0; i < rows; i++)
            GEMM_PUT(acc[i], i, n);
    }
    for (; n < N; n++)
        for (int i = 0; i < rows; i++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++)
                acc = fma(a[i][(size_t)k * sak], B[(size_t)k * ldb + n], acc);
            __global float *c = C + (size_t)(m0 + i) * ldc + n;
            *c = accumulate ? *c + acc : acc;
        }
}

/* y[n, o] = sum_i x[n, i] * w[o, i] for small batches (the outer-product kernel wants 16 or more
 * columns): each work-item takes LINEAR_DOT outputs o of one row n and runs their dot products
 * over i 16 lanes at a time, then adds the lanes in a fixed order and the scalar tail, so the
 * result does not depend on the launch. Global size (ceil(out / LINEAR_DOT), n). */
#define LINEAR_DOT 4

__kernel void clcnn_linear_fwd_dot(const int n, const int in, const int out,
                                   __global const float *x, __global const float *w,
                                   __global float *y)
{
    const int o0 = (int)get_global_id(0) * LINEAR_DOT, r = (int)get_global_id(1);
    if (o0 >= out || r >= n)
        return;
    __global const float *xr = x + (size_t)r * in;
    __global const float *wr[LINEAR_DOT];
    for (int j = 0; j < LINEAR_DOT; j++)
        wr[j] = w + (size_t)min(o0 + j, out - 1) * in;
    float16 acc[LINEAR_DOT];
    for (int j = 0; j < LINEAR_DOT; j++)
        acc[j] = 0.0f;
    int i = 0;
    for (; in - i >= 16; i += 16) {
        const float16 xv = vload16(0, xr + i);
        for (int j = 0; j < LINEAR_DOT; j++)
            acc[j] = fma(xv, vload16(0, wr[j] + i), acc[j]);
    }
    for (int j = 0; j < LINEAR_DOT && o0 + j < out; j++) {
        float lanes[16];
        vstore16(acc[j], 0, lanes);
        float sum = 0.0f;
        for (int l = 0; l < 16; l++)
            sum += lanes[l];
        for (int t = i; t < in; t++)
            sum = fma(xr[t], wr[j][t], sum);
        y[(size_t)r * out + o0 + j] = sum;
    }
}

/* out (cols x rows) = in (rows x cols) transposed. Global size (cols, rows) rounded up to the
 * work-group; each work-item moves one element. */
__kernel void clcnn_transpose(const uint rows, const uint cols, __global const float *in,
                              __global float *out)
{
    const uint c = (uint)get_global_id(0), r = (uint)get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
}
