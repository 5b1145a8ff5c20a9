/* Fully connected layers on float32 tensors, forward and backward, as CLBlast GEMMs plus small
 * bias kernels (kernels/cl/linear.cl). */
#ifndef CLCNN_LINEAR_H
#define CLCNN_LINEAR_H

#include <stdbool.h>

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The output shape of a fully connected layer: [in] input N x C x H x W is read as the matrix
 * N x in with in = C*H*W; [in] weight, of any shape holding out*in elements, is read as the
 * row-major out x in matrix of PyTorch's nn.Linear (so (out, in, 1, 1), (1, 1, out, in) and
 * (out, C, H, W) all work). Writes (N, out, 1, 1) to [out] output, only on success. Returns OK
 * or BAD_SHAPE (the weight's element count is not a multiple of in; the message names both
 * shapes). Thread-safe.
 */
CLCNN_API clcnn_status clcnn_linear_output_shape(clcnn_shape input, clcnn_shape weight,
                                                 clcnn_shape *output);

/**
 * Fully connected forward: [out] y = x W^T + b, with [in] x (N x in), [in] w (out x in, see
 * clcnn_linear_output_shape()) and [in] b (out elements, any shape; NULL for no bias). y must
 * have the shape clcnn_linear_output_shape() gives and must not alias x, w or b. One CLBlast
 * SGEMM (a fixed reduction order, so repeated runs give the same bits) then a kernel adding the
 * bias. All tensors are borrowed and on [in] device. Asynchronous: it enqueues on the compute queue
 * and returns (see clcnn_device_finish); on any error y is not written. Returns OK, INVALID_ARG
 * (NULL, another device, aliasing), BAD_SHAPE (the message names the shapes), BUILD_FAILED,
 * OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_linear_forward(clcnn_device *device, const clcnn_tensor *x,
                                            const clcnn_tensor *w, const clcnn_tensor *b,
                                            clcnn_tensor *y);

/**
 * Fully connected backward from [in] dy = dL/dy (shaped as the forward's y), [in] x and [in] w
 * (as in the forward):
 *  - [out] dx = dy W (shaped as x; NULL to skip), always overwritten;
 *  - [in,out] dw = dy^T x summed over the batch (shaped as w; NULL to skip);
 *  - [in,out] db = the sum of dy over the batch (out elements, any shape; NULL to skip).
 * With [in] accumulate false dw and db are overwritten; with true the batch's gradients are
 * added to what they hold (GEMM beta = 1), for gradient accumulation over several batches.
 * dx, dw and db must not alias each other or an input. dx and dw are CLBlast SGEMMs; db is
 * summed by one work-item per output feature in batch order; no atomics, so repeated runs give
 * the same bits. Asynchronous: it enqueues on the compute queue and returns (see
 * clcnn_device_finish); on an argument or shape error none is written (an OpenCL failure part way
 * may leave them partly written). Returns OK, INVALID_ARG (NULL dy, x or w, another device,
 * aliasing), BAD_SHAPE (the message names the shapes), BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not
 * thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_linear_backward(clcnn_device *device, const clcnn_tensor *x,
                                             const clcnn_tensor *w, const clcnn_tensor *dy,
                                             bool accumulate, clcnn_tensor *dx, clcnn_tensor *dw,
                                             clcnn_tensor *db);

#ifdef __cplusplus
}
#endif

#endif
