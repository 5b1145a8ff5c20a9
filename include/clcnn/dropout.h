/* Inverted dropout on float32 tensors, forward and backward, with a counter-based random
 * generator (Philox-4x32-10) so the mask depends only on the seed and the element index. */
#ifndef CLCNN_DROPOUT_H
#define CLCNN_DROPOUT_H

#include <stdint.h>

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Parameters of a dropout. Element i (in NCHW order) is kept when word i % 4 of
 * Philox-4x32-10(counter = (i / 4, 0, 0, 0), key = (seed & 0xffffffff, seed >> 32)) is at least
 * floor(p * 2^32), so the mask depends on seed and i only: not on the launch, the work-group
 * size or the device. Kept elements are scaled by 1 / (1 - p) (inverted dropout: inference
 * skips the op). A training loop passes a new seed per step (e.g. a base seed plus the step).
 */
typedef struct clcnn_dropout_params {
    float p;       /**< the probability of dropping an element, in [0, 1) */
    uint64_t seed; /**< any value */
} clcnn_dropout_params;

/**
 * Dropout forward: [out] y = x * keep / (1 - p) element-wise, with [in] x and the keep mask
 * defined above (a dropped element is 0 even where x is not finite). y has x's shape and may be
 * x (in place). [out] mask (NULL to skip): 1.0 where kept, 0.0 where dropped, shaped as x.
 * [in] params is borrowed for the call. Asynchronous: it enqueues on the compute queue and returns
 * (see clcnn_device_finish); on any error neither is written. Returns OK, INVALID_ARG (NULL,
 * another device, p outside [0, 1), mask aliasing x or y), BAD_SHAPE (shapes differ; the message
 * names them), BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_dropout_forward(clcnn_device *device,
                                             const clcnn_dropout_params *params,
                                             const clcnn_tensor *x, clcnn_tensor *y,
                                             clcnn_tensor *mask);

/**
 * Dropout backward: [out] dx = dy / (1 - p) where kept, 0 where dropped, from [in] dy,
 * with [in] mask from the forward (kept where non-zero), or, when mask is NULL, the mask
 * regenerated from [in] params' seed (the same bits as the forward's, no storage needed). dx has
 * dy's shape and may be dy (in place). Asynchronous: it enqueues on the compute queue and returns
 * (see clcnn_device_finish); on any error dx is not written. Returns OK, INVALID_ARG, BAD_SHAPE,
 * BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_dropout_backward(clcnn_device *device,
                                              const clcnn_dropout_params *params,
                                              const clcnn_tensor *mask, const clcnn_tensor *dy,
                                              clcnn_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
