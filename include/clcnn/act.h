/* Element-wise activations on float32 tensors, forward and backward: ReLU, leaky ReLU, ELU,
 * sigmoid, tanh. */
#ifndef CLCNN_ACT_H
#define CLCNN_ACT_H

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, token, stable value, default alpha). Values are pinned: never renumber, never reuse. */
#define CLCNN_ACT_KIND_LIST(X)                                                                     \
    X(RELU, "relu", 0, 0.0f)                                                                       \
    X(LEAKY_RELU, "leaky-relu", 1, 0.01f)                                                          \
    X(ELU, "elu", 2, 1.0f)                                                                         \
    X(SIGMOID, "sigmoid", 3, 0.0f)                                                                 \
    X(TANH, "tanh", 4, 0.0f)

/**
 * An activation function. RELU: max(0, x). LEAKY_RELU: x > 0 ? x : alpha * x. ELU:
 * x > 0 ? x : alpha * (exp(x) - 1). SIGMOID: 1 / (1 + exp(-x)). TANH: tanh(x).
 */
typedef enum clcnn_act_kind {
#define CLCNN_ACT_KIND_ENUM_(name, token, value, alpha) CLCNN_ACT_##name = value,
    CLCNN_ACT_KIND_LIST(CLCNN_ACT_KIND_ENUM_)
#undef CLCNN_ACT_KIND_ENUM_
        CLCNN_ACT_KIND_COUNT
} clcnn_act_kind;

/** An activation and its parameter. Start from clcnn_act_params_default(). */
typedef struct clcnn_act_params {
    clcnn_act_kind kind;
    /** LEAKY_RELU's negative slope, ELU's alpha; >= 0 and finite (the backward reads the sign
     *  of x from y); unused by the other kinds. */
    float alpha;
} clcnn_act_params;

/** [in] kind with its usual alpha: 0.01 for LEAKY_RELU (PyTorch's), 1 for ELU, else 0. */
CLCNN_API clcnn_act_params clcnn_act_params_default(clcnn_act_kind kind);

/** The kind's token ("relu", "leaky-relu", "elu", "sigmoid", "tanh"), or NULL outside the
 *  list. Static string owned by the library. Thread-safe. */
CLCNN_API const char *clcnn_act_kind_name(clcnn_act_kind kind);

/**
 * Parses a token into [out] kind (written only on success). Returns OK, or INVALID_ARG (NULL
 * argument, or an unknown token: the message names it and the known ones). Thread-safe.
 */
CLCNN_API clcnn_status clcnn_act_kind_parse(const char *token, clcnn_act_kind *kind);

/**
 * [out] y = act([in] x) element-wise with [in] params (borrowed for the call), on [in] device.
 * x and y have the same shape; y may be x (in place). Runs on the compute queue and returns
 * when y is written; on any error y is not written. Returns OK, INVALID_ARG (NULL, another
 * device, an unknown kind, a negative or non-finite alpha), BAD_SHAPE (shapes differ; the
 * message names both), BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_act_forward(clcnn_device *device, const clcnn_act_params *params,
                                         const clcnn_tensor *x, clcnn_tensor *y);

/**
 * [out] dx = dy * act'(x), computed from [in] y, the forward's output, and [in] dy, all of one
 * shape, so the forward may run in place: RELU dy * (y > 0); LEAKY_RELU y > 0 ? dy : alpha * dy;
 * ELU y > 0 ? dy : dy * (y + alpha); SIGMOID dy * y * (1 - y); TANH dy * (1 - y * y). At x = 0
 * the gradient is that of the negative side, as in PyTorch. dx may be dy or y (in place).
 * Asynchronous: it enqueues on the compute queue and returns (see clcnn_device_finish); on any
 * error dx is not written. Returns OK, INVALID_ARG, BAD_SHAPE, BUILD_FAILED, OUT_OF_MEMORY,
 * CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_act_backward(clcnn_device *device, const clcnn_act_params *params,
                                          const clcnn_tensor *y, const clcnn_tensor *dy,
                                          clcnn_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
