/* Small element-wise and reduction kernels used across the library and by the device tests. */
#include "common.clh"

/* y[i] = alpha * x[i] + beta * y[i] for i < n. */
__kernel void clcnn_axpby(const uint n, const float alpha, __global const float *restrict x,
                          const float beta, __global float *restrict y)
{
    const uint i = CLCNN_GID0();
    if (i >= n)
        return;
    y[i] = alpha * x[i] + beta * y[i];
}

/* Sums x[0..n) per work-group into partial[group] with a tree reduction in local memory.
 * The last group is usually only partly filled: every work-item still reaches every barrier
 * and inactive ones contribute 0. The reduction order depends only on CLCNN_WG, so the result
 * is the same bits on every run. Needs the local size to equal CLCNN_WG (a power of two). */
__kernel __attribute__((reqd_work_group_size(CLCNN_WG, 1, 1))) void
clcnn_reduce_sum(const uint n, __global const float *restrict x, __global float *restrict partial)
{
    __local float scratch[CLCNN_WG];
    const uint lid = (uint)get_local_id(0);
    const uint i = CLCNN_GID0();
    scratch[lid] = i < n ? x[i] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint stride = CLCNN_WG / 2; stride > 0; stride /= 2) {
        if (lid < stride)
            scratch[lid] += scratch[lid + stride];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        partial[get_group_id(0)] = scratch[0];
}
