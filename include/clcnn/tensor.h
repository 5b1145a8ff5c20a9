/* 4-D NCHW float32 tensors held in a device buffer, with blocking and event-based copies. */
#ifndef CLCNN_TENSOR_H
#define CLCNN_TENSOR_H

#include <stddef.h>

#include "clcnn/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A 4-D shape in NCHW order. Every dimension is at least 1. */
typedef struct clcnn_shape {
    size_t n, c, h, w;
} clcnn_shape;

/** A float32 tensor in a device buffer. Opaque. */
typedef struct clcnn_tensor clcnn_tensor;

/**
 * Writes n*c*h*w to [out] count, refusing a zero dimension or a product that overflows
 * size_t (or whose byte size does). Returns OK or BAD_SHAPE (message names the shape).
 */
CLCNN_API clcnn_status clcnn_shape_count(clcnn_shape shape, size_t *count);

/**
 * Creates an uninitialized tensor of [in] shape on [in] device (borrowed: it must outlive the
 * tensor). [out] tensor: owned by the caller, written only on success.
 * Returns OK, INVALID_ARG, BAD_SHAPE (also when larger than the device's max allocation),
 * OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_tensor_create(clcnn_device *device, clcnn_shape shape,
                                           clcnn_tensor **tensor);

/** Releases the tensor and its buffer. NULL is a no-op. */
CLCNN_API void clcnn_tensor_release(clcnn_tensor *tensor);

/** The tensor's shape. */
CLCNN_API clcnn_shape clcnn_tensor_shape(const clcnn_tensor *tensor);

/** Number of elements (n*c*h*w). */
CLCNN_API size_t clcnn_tensor_count(const clcnn_tensor *tensor);

/**
 * The rank the tensor was loaded with (1 to 4; 4 unless it came from a lower-rank .npy file,
 * which fills the leading dimensions with 1). clcnn_tensor_save_npy() writes this rank.
 */
CLCNN_API int clcnn_tensor_rank(const clcnn_tensor *tensor);

/**
 * The device buffer (borrowed; n*c*h*w floats in NCHW order). A caller that writes it directly
 * (its own kernels, clEnqueueWriteBuffer) must call clcnn_tensor_touch() afterwards, or data the
 * library derived from the old contents (transformed convolution weights) may be reused.
 */
CLCNN_API cl_mem clcnn_tensor_buffer(const clcnn_tensor *tensor);

/**
 * Records that the tensor's contents changed outside the library (see clcnn_tensor_buffer()).
 * Writes made through clcnn calls do this themselves. NULL is a no-op. Thread-safe.
 */
CLCNN_API void clcnn_tensor_touch(clcnn_tensor *tensor);

/** The device the tensor lives on (borrowed). */
CLCNN_API clcnn_device *clcnn_tensor_device(const clcnn_tensor *tensor);

/**
 * Copies [in] count floats from host [in] src into the tensor on the transfer queue and waits.
 * count must equal clcnn_tensor_count(). Returns OK, INVALID_ARG, BAD_SHAPE, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_tensor_upload(clcnn_tensor *tensor, const float *src, size_t count);

/**
 * Copies the tensor into host [out] dst ([in] count floats, equal to clcnn_tensor_count()) on
 * the transfer queue and waits. dst is written only on success.
 * Returns OK, INVALID_ARG, BAD_SHAPE, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_tensor_download(const clcnn_tensor *tensor, float *dst, size_t count);

/**
 * Starts an upload on the transfer queue after [in] wait_count events in [in] wait (may be
 * NULL when 0) and returns at once. src is borrowed until the returned event completes.
 * [out] done: a new event the caller releases with clReleaseEvent (may be NULL).
 * Returns OK, INVALID_ARG, BAD_SHAPE, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_tensor_upload_async(clcnn_tensor *tensor, const float *src,
                                                 size_t count, cl_uint wait_count,
                                                 const cl_event *wait, cl_event *done);

/**
 * Starts a download on the transfer queue after the given events; dst is written when the
 * returned event completes. As clcnn_tensor_upload_async() otherwise.
 */
CLCNN_API clcnn_status clcnn_tensor_download_async(const clcnn_tensor *tensor, float *dst,
                                                   size_t count, cl_uint wait_count,
                                                   const cl_event *wait, cl_event *done);

/**
 * Sets every element to [in] value on the compute queue, asynchronously as the ops (tests poison
 * outputs with NaN this way). Returns OK, INVALID_ARG, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_tensor_fill(clcnn_tensor *tensor, float value);

/**
 * Reads a .npy file (little-endian float32, C order, rank 1 to 4) into a new tensor on
 * [in] device. Lower ranks are right-aligned into NCHW: shape (H, W) becomes (1, 1, H, W).
 * [out] tensor: owned by the caller, written only on success.
 * Returns OK, INVALID_ARG, IO, PARSE, CORRUPT, BAD_SHAPE, UNSUPPORTED, OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_tensor_load_npy(clcnn_device *device, const char *path,
                                             clcnn_tensor **tensor);

/**
 * Writes the tensor to a .npy file at its rank (see clcnn_tensor_rank()); the file is written
 * to a temporary name, synced and renamed, so an existing file is never left half-written.
 * Returns OK, INVALID_ARG, IO, CL_ERROR, OUT_OF_MEMORY.
 */
CLCNN_API clcnn_status clcnn_tensor_save_npy(const clcnn_tensor *tensor, const char *path);

#ifdef __cplusplus
}
#endif

#endif
