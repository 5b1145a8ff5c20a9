/* 2-D pooling on NCHW float32 tensors: max (with argmax indices), average with and without the
 * padding counted, L2-norm and global pooling, forward and backward. */
#ifndef CLCNN_POOL_H
#define CLCNN_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, token, stable value). Values are pinned: never renumber, never reuse. */
#define CLCNN_POOL_KIND_LIST(X)                                                                    \
    X(MAX, "max", 0)                                                                               \
    X(AVG, "avg", 1)                                                                               \
    X(AVG_EXCLUDE_PAD, "avg-exclude-pad", 2)                                                       \
    X(L2, "l2", 3)

/**
 * What a pooling window computes. MAX: the largest element (padding is -inf, never selected);
 * AVG: the mean with padding positions counted as zeros (count_include_pad = true; positions
 * past the padding that ceil_mode adds are not counted, as in PyTorch); AVG_EXCLUDE_PAD: the
 * mean of the elements inside the input only (count_include_pad = false); L2: the square root
 * of the sum of squares of the elements inside the input.
 */
typedef enum clcnn_pool_kind {
#define CLCNN_POOL_KIND_ENUM_(name, token, value) CLCNN_POOL_##name = value,
    CLCNN_POOL_KIND_LIST(CLCNN_POOL_KIND_ENUM_)
#undef CLCNN_POOL_KIND_ENUM_
        CLCNN_POOL_KIND_COUNT
} clcnn_pool_kind;

/** Parameters of a 2-D pooling. Start from clcnn_pool_params_default(). */
typedef struct clcnn_pool_params {
    clcnn_pool_kind kind;
    size_t window_h, window_w; /**< >= 1 */
    size_t stride_h, stride_w; /**< >= 1 */
    size_t pad_h, pad_w;       /**< implicit padding on each side, < the window along its axis */
    /** Output extent ceil((H + 2*pad_h - window_h) / stride_h) + 1 instead of floor, less one
     *  when the last window would start in the bottom padding (PyTorch's ceil_mode). */
    bool ceil_mode;
    /** Global pooling: the window is the whole H x W plane, stride 1, no padding; window,
     *  stride, pad and ceil_mode are ignored. Global average pooling is kind AVG with this. */
    bool global;
} clcnn_pool_params;

/** Kind [in] kind, a 2x2 window, stride 2, no padding, floor mode, not global. */
CLCNN_API clcnn_pool_params clcnn_pool_params_default(clcnn_pool_kind kind);

/** The kind's token ("max", "avg", "avg-exclude-pad", "l2"), or NULL outside the list. Static
 *  string owned by the library. Thread-safe. */
CLCNN_API const char *clcnn_pool_kind_name(clcnn_pool_kind kind);

/**
 * Parses a token into [out] kind (written only on success). Returns OK, or INVALID_ARG (NULL
 * argument, or an unknown token: the message names it and the known ones). Thread-safe.
 */
CLCNN_API clcnn_status clcnn_pool_kind_parse(const char *token, clcnn_pool_kind *kind);

/**
 * Checks [in] params against [in] input (N x C x H x W) and writes the output shape
 * N x C x Ho x Wo to [out] output (only on success), with
 * Ho = floor((H + 2*pad_h - window_h) / stride_h) + 1 (ceil with ceil_mode, see above).
 * Returns OK, INVALID_ARG (NULL, an unknown kind, a zero window or stride), BAD_SHAPE (a pad
 * not smaller than the window, a window larger than the padded input; the message names the
 * numbers). Thread-safe.
 */
CLCNN_API clcnn_status clcnn_pool_output_shape(clcnn_shape input, const clcnn_pool_params *params,
                                               clcnn_shape *output);

/**
 * Pooling forward: [out] y = pool([in] x) with [in] params (borrowed for the call). y must have
 * the shape clcnn_pool_output_shape() gives. [out] indices (may be NULL; only for MAX): a
 * buffer of at least N*C*Ho*Wo int32 (cl_int) receiving, for each output, the position of the
 * chosen input inside its plane, ih * W + iw (PyTorch's return_indices convention). Ties go to
 * the first maximum in row-major window order; a NaN in the window is chosen (the last one).
 * All on [in] device. Asynchronous: it enqueues on the compute queue and returns (see
 * clcnn_device_finish). On any error neither y nor indices is written. Returns OK, INVALID_ARG
 * (NULL, another device, indices with a kind other than MAX or too small), BAD_SHAPE, BUILD_FAILED,
 * OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_pool_forward(clcnn_device *device, const clcnn_tensor *x,
                                          const clcnn_pool_params *params, clcnn_tensor *y,
                                          cl_mem indices);

/**
 * Pooling backward: [out] dx = the gradient of the loss with respect to the input, from
 * [in] dy (the gradient with respect to the output, shaped as y). dx has the input's shape.
 * What each kind reads:
 *  - MAX: [in] indices from clcnn_pool_forward() on the same input and parameters when not
 *    NULL; otherwise [in] x, to recompute the argmax with the same tie rule as the forward;
 *  - AVG, AVG_EXCLUDE_PAD: dy only (x, y and indices may be NULL);
 *  - L2: [in] x and [in] y, the forward's output (dx = dy * x / y, 0 where y is 0).
 * A tensor the kind does not read may be NULL; one that is given must have the right shape.
 * Each dx element is computed by one work-item summing the windows that cover it in a fixed
 * order (no atomics), so repeated runs give the same bits. dx must not alias x, y or dy.
 * Asynchronous: it enqueues on the compute queue and returns (see clcnn_device_finish); on any
 * error dx is not written. Returns OK, INVALID_ARG (NULL where needed, another device, indices with
 * another kind), BAD_SHAPE (shapes that do not match each other; the message names them),
 * BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_pool_backward(clcnn_device *device, const clcnn_tensor *x,
                                           const clcnn_tensor *y, const clcnn_tensor *dy,
                                           cl_mem indices, const clcnn_pool_params *params,
                                           clcnn_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
