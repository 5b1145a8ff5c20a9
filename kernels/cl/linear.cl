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
 * row-major (ldb). Each work-item owns GEMM_MR rows by 16 consecutive columns: per k it loads
 * one float16 of B and GEMM_MR scalars of A, GEMM_MR fused multiply-adds, so the block lives in
 * registers (explicit SIMD, which is what POCL's CPU device vectorizes best). Sums run over k
 * in order: the result does not depend on the launch. Global size (ceil(N / 16),
 * ceil(M / GEMM_MR)); a partial last column block takes a scalar path. */
#define GEMM_MR 8

#define GEMM_ROW(r) __global const float *a##r = A + (size_t)min(m0 + r, M - 1) * sam
#define GEMM_FMA(r) c##r = fma((float16)(a##r[o]), bv, c##r)
#define GEMM_STORE(r)                                                                              \
    if (m0 + r < M) {                                                                              \
        __global float *cr = C + (size_t)(m0 + r) * ldc + n0;                                     \
        vstore16(accumulate ? vload16(0, cr) + c##r : c##r, 0, cr);                                \
    }

__kernel void clcnn_gemm_outer(const int M, const int N, const int K, __global const float *A,
                               const int sam, const int sak, __global const float *B,
                               const int ldb, __global float *C, const int ldc,
                               const int accumulate)
{
    const int n0 = (int)get_global_id(0) * 16, m0 = (int)get_global_id(1) * GEMM_MR;
    if (n0 >= N || m0 >= M)
        return;
    if (N - n0 < 16) {
        /* The last, partial column block: one column at a time. */
        for (int m = m0; m < min(m0 + GEMM_MR, M); m++)
            for (int n = n0; n < N; n++) {
                float acc = 0.0f;
                for (int k = 0; k < K; k++)
                    acc = fma(A[(size_t)m * sam + (size_t)k * sak], B[(size_t)k * ldb + n], acc);
                __global float *c = C + (size_t)m * ldc + n;
                *c = accumulate ? *c + acc : acc;
            }
        return;
    }
    GEMM_ROW(0);
    GEMM_ROW(1);
    GEMM_ROW(2);
    GEMM_ROW(3);
    GEMM_ROW(4);
    GEMM_ROW(5);
    GEMM_ROW(6);
    GEMM_ROW(7);
    float16 c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f, c4 = 0.0f, c5 = 0.0f, c6 = 0.0f, c7 = 0.0f;
    __global const float *b = B + n0;
    for (int k = 0; k < K; k++) {
        const float16 bv = vload16(0, b + (size_t)k * ldb);
        const size_t o = (size_t)k * sak;
        GEMM_FMA(0);
        GEMM_FMA(1);
        GEMM_FMA(2);
        GEMM_FMA(3);
        GEMM_FMA(4);
        GEMM_FMA(5);
        GEMM_FMA(6);
        GEMM_FMA(7);
    }
    GEMM_STORE(0)
    GEMM_STORE(1)
    GEMM_STORE(2)
    GEMM_STORE(3)
    GEMM_STORE(4)
    GEMM_STORE(5)
    GEMM_STORE(6)
    GEMM_STORE(7)
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
