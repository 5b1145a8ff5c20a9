/* Inverted dropout, float32, with Philox-4x32-10 (Salmon et al., "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011): element i is kept when word i % 4 of philox((i / 4, 0, 0, 0), key)
 * is at least the threshold. Each work-item takes chunks of DROPOUT_VW elements (two Philox
 * blocks, one float8) at gid, gid + global size, ..., so any launch gives the same mask; the last
 * chunk may be a scalar tail. */
#include "common.clh"

/* Elements per chunk: fixed at 8 (two Philox blocks, one float8). */
#define DROPOUT_VW 8

/* One Philox-4x32-10 round on words c0..c3 with key words k0, k1. Each of the two products is
 * taken whole, 64 bits, and split: POCL 3.1 built mul_hi for uint from 16-bit halves. A 64-bit
 * product is one multiply on a CPU and mul.wide on NVIDIA's GPUs. */
#define PHILOX_ROUND(c0, c1, c2, c3, k0, k1)                                                       \
    do {                                                                                           \
        const ulong p0_ = (ulong)0xD2511F53u * (c0), p1_ = (ulong)0xCD9E8D57u * (c2);              \
        (c0) = (uint)(p1_ >> 32) ^ (c1) ^ (k0);                                                    \
        (c2) = (uint)(p0_ >> 32) ^ (c3) ^ (k1);                                                    \
        (c1) = (uint)p1_;                                                                          \
        (c3) = (uint)p0_;                                                                          \
    } while (0)

/* Philox-4x32-10 of two counter blocks a and b under one key: ten rounds, the key bumped by the
 * Weyl constants between rounds. The rounds are unrolled over scalar words and the two blocks
 * interleaved, so their dependency chains overlap: with one uint4 block per call POCL 3.1 kept
 * the words in one vector register, moving lanes in and out every round, and ran the two calls
 * one after the other (the forward of 64 x 1024 elements took 1.0-1.1 ms on 2 cores). */
static uint8 philox4x32_10_x2(uint4 a, uint4 b, uint2 k)
{
    uint a0 = a.x, a1 = a.y, a2 = a.z, a3 = a.w, b0 = b.x, b1 = b.y, b2 = b.z, b3 = b.w;
    uint k0 = k.x, k1 = k.y;
#pragma unroll
    for (int r = 0; r < 10; r++) {
        PHILOX_ROUND(a0, a1, a2, a3, k0, k1);
        PHILOX_ROUND(b0, b1, b2, b3, k0, k1);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint8)(a0, a1, a2, a3, b0, b1, b2, b3);
}

/* y = keep ? x * scale : 0 and, with write_mask, mask = keep ? 1 : 0, for i < n. y may be x. */
__kernel void clcnn_dropout_fwd(const uint n, __global const float *x, __global float *y,
                                __global float *mask, const uint2 key, const uint threshold,
                                const float scale, const uint write_mask)
{
    const uint stride = (uint)get_global_size(0);
    for (uint c = CLCNN_GID0(); c < (n + DROPOUT_VW - 1) / DROPOUT_VW; c += stride) {
        const uint i = c * DROPOUT_VW;
        const uint8 r = philox4x32_10_x2((uint4)(2 * c, 0, 0, 0), (uint4)(2 * c + 1, 0, 0, 0), key);
        const int8 keep = r >= (uint8)(threshold);
        if (n - i >= DROPOUT_VW) {
            vstore8(select((float8)(0.0f), vload8(0, x + i) * scale, keep), 0, y + i);
            if (write_mask)
                vstore8(select((float8)(0.0f), (float8)(1.0f), keep), 0, mask + i);
        } else {
            const uint rs[8] = {r.s0, r.s1, r.s2, r.s3, r.s4, r.s5, r.s6, r.s7};
            for (uint j = 0; j < n - i; j++) {
                const bool k = rs[j] >= threshold;
                y[i + j] = k ? x[i + j] * scale : 0.0f;
                if (write_mask)
                    mask[i + j] = k ? 1.0f : 0.0f;
            }
        }
    }
}

/* dx = mask != 0 ? dy * scale : 0 for i < n: the same bits as the forward run on dy with the
 * same mask. dx may be dy. Global size ceil(n / DROPOUT_VW), rounded up to the work-group
 * size. */
__kernel void clcnn_dropout_bwd_mask(const uint n, __global const float *dy,
                                     __global const float *mask, __global float *dx,
                                     const float scale)
{
    const uint i = CLCNN_GID0() * DROPOUT_VW;
    if (i >= n)
        return;
    if (n - i >= DROPOUT_VW) {
        const int8 keep = isnotequal(vload8(0, mask + i), (float8)(0.0f));
        vstore8(select((float8)(0.0f), vload8(0, dy + i) * scale, keep), 0, dx + i);
    } else {
        for (uint j = i; j < n; j++)
            dx[j] = mask[j] != 0.0f ? dy[j] * scale : 0.0f;
    }
}
