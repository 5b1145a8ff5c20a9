/* Element-wise activations forward and backward, float32. Each work-item takes ACT_VW elements
 * as one vector (explicit SIMD for CPU devices); the last one also takes the scalar tail. No
 * restrict: y may be x and dx may be dy or y (each element is read before it is written, by
 * the same work-item). */
#include "common.clh"

/* Elements per work-item: fixed at 8 (float8); the host sizes the launch with the same value. */
#define ACT_VW 8

/* Forward and backward of each kind, written once for float and float8 (the builtins are
 * overloaded). v: x; y: the forward's output; g: dy; a: alpha. At x = 0 the gradient is the
 * negative side's, as in PyTorch. */
#define RELU_FWD(v, a) select(v, fabs((v)*0.0f), isless(v, 0.0f))
#define RELU_BWD(y, g, a) select(fabs((g)*0.0f), g, isgreater(y, 0.0f))
#define LEAKY_RELU_FWD(v, a) select(v, (a) * (v), isless(v, 0.0f))
#define LEAKY_RELU_BWD(y, g, a) select((a) * (g), g, isgreater(y, 0.0f))
#define ELU_FWD(v, a) select(v, (a)*expm1(v), isless(v, 0.0f))
#define ELU_BWD(y, g, a) select((g) * ((y) + (a)), g, isgreater(y, 0.0f))
#define SIGMOID_FWD(v, a) (1.0f / (1.0f + exp(-(v))))
#define SIGMOID_BWD(y, g, a) ((g) * (y) * (1.0f - (y)))
#define TANH_FWD(v, a) tanh(v)
#define TANH_BWD(y, g, a) ((g) * (1.0f - (y) * (y)))

/* y = f(x) for i < n. Global size ceil(n / ACT_VW), rounded up to the work-group size. */
#define ACT_FWD_KERNEL(name, F)                                                                    \
    __kernel void clcnn_act_##name##_fwd(const uint n, __global const float *x,                    \
                                         __global float *y, const float alpha)                     \
    {                                                                                              \
        const uint i = CLCNN_GID0() * ACT_VW;                                                      \
        if (i >= n)                                                                                \
            return;                                                                                \
        if (n - i >= ACT_VW) {                                                                     \
            const float8 v = vload8(0, x + i);                                                     \
            vstore8(F(v, alpha), 0, y + i);                                                        \
        } else {                                                                                   \
            for (uint j = i; j < n; j++) {                                                         \
                const float v = x[j];                                                              \
                y[j] = F(v, alpha);                                                                \
            }                                                                                      \
        }                                                                                          \
    }

/* dx = dy * f'(x) from y = f(x), for i < n. Global size as for the forward. */
#define ACT_BWD_KERNEL(name, B)                                                                    \
    __kernel void clcnn_act_##name##_bwd(const uint n, __global const float *y,                    \
                                         __global const float *dy, __global float *dx,             \
                                         const float alpha)                                        \
    {                                                                                              \
        const uint i = CLCNN_GID0() * ACT_VW;                                                      \
        if (i >= n)                                                                                \
            return;                                                                                \
        if (n - i >= ACT_VW) {                                                                     \
            const float8 yv = vload8(0, y + i), g = vload8(0, dy + i);                             \
            vstore8(B(yv, g, alpha), 0, dx + i);                                                   \
        } else {                                                                                   \
            for (uint j = i; j < n; j++) {                                                         \
                const float yv = y[j], g = dy[j];                                                  \
                dx[j] = B(yv, g, alpha);                                                           \
            }                                                                                      \
        }                                                                                          \
    }

ACT_FWD_KERNEL(relu, RELU_FWD)
ACT_BWD_KERNEL(relu, RELU_BWD)
ACT_FWD_KERNEL(leaky_relu, LEAKY_RELU_FWD)
ACT_BWD_KERNEL(leaky_relu, LEAKY_RELU_BWD)
ACT_FWD_KERNEL(elu, ELU_FWD)
ACT_BWD_KERNEL(elu, ELU_BWD)
ACT_FWD_KERNEL(sigmoid, SIGMOID_FWD)
ACT_BWD_KERNEL(sigmoid, SIGMOID_BWD)
ACT_FWD_KERNEL(tanh, TANH_FWD)
ACT_BWD_KERNEL(tanh, TANH_BWD)
