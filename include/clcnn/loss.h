/* Classification losses on float32 tensors: softmax cross-entropy (mean over the batch) with its
 * gradient, and plain softmax for inference. */
#ifndef CLCNN_LOSS_H
#define CLCNN_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Softmax cross-entropy forward, averaged over the batch: for [in] logits N x C x H x W, read as
 * N rows of K = C*H*W class scores, and [in] labels (host array of [in] label_count = N int32
 * class indices in [0, K), borrowed for the call; they are checked on the host and uploaded per
 * call, which suits a training loop that draws labels per batch),
 *   loss = (1/N) sum_n (log sum_k exp(x[n,k] - m_n) + m_n - x[n, labels[n]]),  m_n = max_k x[n,k]
 * (log-sum-exp: no overflow for any finite logits). Writes the loss to [out] loss (a device
 * tensor of one element, any shape; NULL to skip) and/or [out] loss_host (NULL to skip; at least
 * one must be given). Each row is one work-item and the mean is summed in batch order, so
 * repeated runs give the same bits. Asynchronous: it enqueues on the compute queue and returns (see
 * clcnn_device_finish), except that a loss_host read waits for the loss; on any error neither is
 * written. Returns OK, INVALID_ARG (NULL, another device, no output, a label count other than N, a
 * label out of range: the message names its index and value), BAD_SHAPE (a loss tensor of more than
 * one element, K or N of 2^31 or more), BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for
 * one device.
 */
CLCNN_API clcnn_status clcnn_softmax_xent_forward(clcnn_device *device, const clcnn_tensor *logits,
                                                  const int32_t *labels, size_t label_count,
                                                  clcnn_tensor *loss, float *loss_host);

/**
 * Softmax cross-entropy backward: [out] dlogits = (softmax(logits) - onehot(labels)) / N, the
 * gradient of clcnn_softmax_xent_forward()'s mean loss, from [in] logits and [in] labels as
 * there. dlogits has the logits' shape and may be logits itself (in place: each row is read
 * before it is written, by one work-item). Asynchronous: it enqueues on the compute queue and
 * returns (see clcnn_device_finish); on any error it is not written. Returns OK, INVALID_ARG (as
 * the forward), BAD_SHAPE (shapes differ; the message names both), BUILD_FAILED, OUT_OF_MEMORY,
 * CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_softmax_xent_backward(clcnn_device *device, const clcnn_tensor *logits,
                                                   const int32_t *labels, size_t label_count,
                                                   clcnn_tensor *dlogits);

/**
 * Softmax over each row of [in] x (N x C x H x W read as N rows of C*H*W, as above):
 * [out] y[n,k] = exp(x[n,k] - m_n) / sum_j exp(x[n,j] - m_n). y has x's shape and may be x
 * (in place). Asynchronous: it enqueues on the compute queue and returns (see clcnn_device_finish);
 * on any error y is not written. Returns OK, INVALID_ARG (NULL, another device), BAD_SHAPE (shapes
 * differ), BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_softmax_forward(clcnn_device *device, const clcnn_tensor *x,
                                             clcnn_tensor *y);

#ifdef __cplusplus
}
#endif

#endif
