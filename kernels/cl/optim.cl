/* Optimizer updates, float32, one kernel per update rule: SGD, SGD with momentum (and
 * Nesterov), Adam, each with L2 weight decay added to the gradient. The formulas and their
 * order of operations follow PyTorch's torch.optim (see include/clcnn/optim.h). Each work-item
 * updates OPTIM_VW consecutive elements as one float8 (explicit SIMD for CPU devices); the last
 * one also takes the scalar tail. p, g and the states are distinct buffers. */
#include "common.clh"

/* Elements per work-item: fixed at 8 (float8); the host sizes the launch with the same value. */
#define OPTIM_VW 8

/* Each rule written once for float and float8 (the operators and builtins are overloaded).
 * wd: weight decay; lr: learning rate. */
#define SGD_UPDATE(p, g, lr, wd) ((p) - (lr) * ((g) + (wd) * (p)))

/* T: float or float8; b: momentum buffer; first: t == 1 (b = d); nesterov: d + mu * b, else b. */
#define MOMENTUM_UPDATE(T, p, g, b, lr, wd, mu, damp, first, nesterov)                             \
    do {                                                                                           \
        const T d_ = (g) + (wd) * (p);                                                             \
        (b) = (first) ? d_ : (mu) * (b) + (1.0f - (damp)) * d_;                                    \
        (p) = (p) - (lr) * ((nesterov) ? d_ + (mu) * (b) : (b));                                   \
    } while (0)

/* T: float or float8; m, v: moments (zero before the first step); step_size =
 * lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t). */
#define ADAM_UPDATE(T, p, g, m, v, wd, b1, b2, eps, step_size, bc2_sqrt, first)                    \
    do {                                                                                           \
        const T d_ = (g) + (wd) * (p);                                                             \
        (m) = (first) ? (1.0f - (b1)) * d_ : (b1) * (m) + (1.0f - (b1)) * d_;                      \
        (v) = (first) ? (1.0f - (b2)) * d_ * d_ : (b2) * (v) + (1.0f - (b2)) * d_ * d_;            \
        (p) = (p) - (step_size) * ((m) / (sqrt(v) / (bc2_sqrt) + (eps)));                          \
    } while (0)

/* p -= lr * (g + wd * p) for i < n. Global size ceil(n / OPTIM_VW), rounded up. */
__kernel void clcnn_optim_sgd(const uint n, __global float *p, __global const float *g,
                              const float lr, const float wd)
{
    const uint i = CLCNN_GID0() * OPTIM_VW;
    if (i >= n)
        return;
    if (n - i >= OPTIM_VW) {
        vstore8(SGD_UPDATE(vload8(0, p + i), vload8(0, g + i), lr, wd), 0, p + i);
    } else {
        for (uint j = i; j < n; j++)
            p[j] = SGD_UPDATE(p[j], g[j], lr, wd);
    }
}

/* SGD with momentum buffer b; hyper = (lr, wd, momentum, dampening), flags bit 0: first step,
 * bit 1: Nesterov. */
__kernel void clcnn_optim_sgd_momentum(const uint n, __global float *p, __global const float *g,
                                       __global float *b, const float4 hyper, const uint flags)
{
    const uint i = CLCNN_GID0() * OPTIM_VW;
    if (i >= n)
        return;
    const bool first = (flags & 1u) != 0, nesterov = (flags & 2u) != 0;
    if (n - i >= OPTIM_VW) {
        float8 pv = vload8(0, p + i), bv = first ? (float8)(0.0f) : vload8(0, b + i);
        MOMENTUM_UPDATE(float8, pv, vload8(0, g + i), bv, hyper.s0, hyper.s1, hyper.s2, hyper.s3,
                        first, nesterov);
        vstore8(pv, 0, p + i);
        vstore8(bv, 0, b + i);
    } else {
        for (uint j = i; j < n; j++) {
            float pv = p[j], bv = first ? 0.0f : b[j];
            MOMENTUM_UPDATE(float, pv, g[j], bv, hyper.s0, hyper.s1, hyper.s2, hyper.s3, first,
                            nesterov);
            p[j] = pv;
            b[j] = bv;
        }
    }
}

/* Adam with moments m and v; hyper = (wd, beta1, beta2, eps), corr = (step_size, bc2_sqrt),
 * first: the first step. */
__kernel void clcnn_optim_adam(const uint n, __global float *p, __global const float *g,
                               __global float *m, __global float *v, const float4 hyper,
                               const float2 corr, const uint first)
{
    const uint i = CLCNN_GID0() * OPTIM_VW;
    if (i >= n)
        return;
    if (n - i >= OPTIM_VW) {
        float8 pv = vload8(0, p + i);
        float8 mv = first ? (float8)(0.0f) : vload8(0, m + i);
        float8 vv = first ? (float8)(0.0f) : vload8(0, v + i);
        ADAM_UPDATE(float8, pv, vload8(0, g + i), mv, vv, hyper.s0, hyper.s1, hyper.s2, hyper.s3,
                    corr.s0, corr.s1, first);
        vstore8(pv, 0, p + i);
        vstore8(mv, 0, m + i);
        vstore8(vv, 0, v + i);
    } else {
        for (uint j = i; j < n; j++) {
            float pv = p[j], mv = first ? 0.0f : m[j], vv = first ? 0.0f : v[j];
            ADAM_UPDATE(float, pv, g[j], mv, vv, hyper.s0, hyper.s1, hyper.s2, hyper.s3, corr.s0,
                        corr.s1, first);
            p[j] = pv;
            m[j] = mv;
            v[j] = vv;
        }
    }
}
