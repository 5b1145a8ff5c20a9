/* Bias kernels of the fully connected layer (the GEMMs are CLBlast's), float32, row-major
 * rows x cols matrices. Each work-item takes LINEAR_VW consecutive columns as one float8
 * (explicit SIMD for CPU devices) or, at the end of a row, the scalar tail. */
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
