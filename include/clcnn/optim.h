/* Optimizer updates on the device: SGD (with momentum, dampening and Nesterov) and Adam, each
 * with L2 weight decay, with the formulas of PyTorch's torch.optim.SGD and torch.optim.Adam. */
#ifndef CLCNN_OPTIM_H
#define CLCNN_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, token, stable value, state tensors). Values are pinned: never renumber, never reuse. */
#define CLCNN_OPTIM_KIND_LIST(X)                                                                   \
    X(SGD, "sgd", 0, 1)                                                                            \
    X(ADAM, "adam", 1, 2)

/**
 * An optimizer. With g = grad + weight_decay * param (L2 decay, added to the gradient as
 * PyTorch does) and t the step (1 on the first step):
 *  - SGD: with momentum mu != 0, b = g at t = 1, else b = mu * b + (1 - dampening) * g; then
 *    g = g + mu * b with Nesterov, else g = b; finally param -= lr * g. Momentum 0 is plain
 *    SGD and keeps no state.
 *  - ADAM: m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g^2 (m = v = 0
 *    before t = 1); param -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
 *    the order of operations of PyTorch's implementation. Not AdamW: the decay is L2.
 */
typedef enum clcnn_optim_kind {
#define CLCNN_OPTIM_KIND_ENUM_(name, token, value, states) CLCNN_OPTIM_##name = value,
    CLCNN_OPTIM_KIND_LIST(CLCNN_OPTIM_KIND_ENUM_)
#undef CLCNN_OPTIM_KIND_ENUM_
        CLCNN_OPTIM_KIND_COUNT
} clcnn_optim_kind;

/** An optimizer and its hyper-parameters. Start from clcnn_optim_config_default(). */
typedef struct clcnn_optim_config {
    clcnn_optim_kind kind;
    float lr;           /**< learning rate, finite and >= 0 */
    float weight_decay; /**< L2 decay added to the gradient, finite and >= 0 */
    float momentum;     /**< SGD: finite and >= 0 (0: plain SGD) */
    float dampening;    /**< SGD: in [0, 1]; must be 0 with Nesterov */
    bool nesterov;      /**< SGD: Nesterov momentum; needs momentum > 0 */
    float beta1, beta2; /**< ADAM: each in [0, 1) */
    float eps;          /**< ADAM: finite and >= 0 */
} clcnn_optim_config;

/**
 * [in] kind with PyTorch's defaults: lr 1e-3, no weight decay, momentum 0, dampening 0, no
 * Nesterov, betas 0.9 and 0.999, eps 1e-8.
 */
CLCNN_API clcnn_optim_config clcnn_optim_config_default(clcnn_optim_kind kind);

/** The kind's token ("sgd", "adam"), or NULL outside the list. Static string owned by the
 *  library. Thread-safe. */
CLCNN_API const char *clcnn_optim_kind_name(clcnn_optim_kind kind);

/**
 * Parses a token into [out] kind (written only on success). Returns OK, or INVALID_ARG (NULL
 * argument, or an unknown token: the message names it and the known ones). Thread-safe.
 */
CLCNN_API clcnn_status clcnn_optim_kind_parse(const char *token, clcnn_optim_kind *kind);

/**
 * How many state tensors [in] cfg's update reads and writes, each shaped as the parameter:
 * 0 for SGD without momentum, 1 for SGD with momentum (the momentum buffer), 2 for ADAM (the
 * first and second moments), or -1 for a NULL config or an unknown kind. Thread-safe.
 */
CLCNN_API int clcnn_optim_state_count(const clcnn_optim_config *cfg);

/**
 * One update of [in,out] param from [in] grad (same shape) with [in] cfg (borrowed for the
 * call) at [in] step t >= 1. The state lives on the device in tensors the caller creates with
 * param's shape and keeps between steps: [in,out] state1 (SGD's momentum buffer, ADAM's m) and
 * [in,out] state2 (ADAM's v); those clcnn_optim_state_count() does not ask for must be NULL.
 * At step 1 the states' contents are ignored (as PyTorch's lazily created zero state), so they
 * need no initialization. One kernel, float8-vectorized with a scalar tail; each element is
 * updated by one work-item, so repeated runs give the same bits. param, grad and the states must
 * be distinct tensors. Asynchronous: it enqueues on the compute queue and returns (see
 * clcnn_device_finish); on any error nothing is written. Returns OK, INVALID_ARG (NULL, another
 * device, aliasing, a state given or missing, step 0, a hyper-parameter out of range: the message
 * names it), BAD_SHAPE (shapes differ; the message names them), BUILD_FAILED, OUT_OF_MEMORY,
 * CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_optim_step(clcnn_device *device, const clcnn_optim_config *cfg,
                                        clcnn_tensor *param, const clcnn_tensor *grad,
                                        clcnn_tensor *state1, clcnn_tensor *state2, uint64_t step);

#ifdef __cplusplus
}
#endif

#endif
