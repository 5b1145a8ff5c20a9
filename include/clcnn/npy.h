/* NumPy .npy files of float32 arrays, rank 1 to 4, so any tensor can be compared with
 * NumPy or PyTorch. Host memory only; clcnn/tensor.h moves them to and from a device. */
#ifndef CLCNN_NPY_H
#define CLCNN_NPY_H

#include <stddef.h>

#include "clcnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest rank clcnn reads or writes. */
#define CLCNN_NPY_MAX_RANK 4

/** A host float32 array as read from a .npy file. */
typedef struct clcnn_npy_array {
    int rank;                        /**< 1..CLCNN_NPY_MAX_RANK */
    size_t dims[CLCNN_NPY_MAX_RANK]; /**< dims[0..rank-1], each >= 1; the rest are 1 (0 once
                                          freed) */
    size_t count;                    /**< product of dims */
    float *data;                     /**< count floats, C order; owned, freed by
                                          clcnn_npy_array_free() */
} clcnn_npy_array;

/**
 * Parses the bytes of a .npy file: format versions 1.0, 2.0 and 3.0, dtype '<f4' (little-endian
 * float32) only, fortran_order False, rank 1 to 4, no zero dimension, and exactly count*4 data
 * bytes. Anything else is refused with a message naming what was found: PARSE for a header
 * that is not a .npy header, UNSUPPORTED for a valid file clcnn does not read (another dtype,
 * Fortran order, rank 0 or above 4), BAD_SHAPE for a zero dimension, CORRUPT for sizes that
 * overflow or do not match the data. [in] bytes/[in] size are borrowed; [out] array is written
 * only on success.
 * Returns OK, INVALID_ARG, PARSE, CORRUPT, UNSUPPORTED, BAD_SHAPE, OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_npy_parse(const void *bytes, size_t size, clcnn_npy_array *array);

/**
 * Reads and parses a .npy file as clcnn_npy_parse() does; messages start with the path.
 * Returns those statuses, IO when it cannot be read, CORRUPT for a file over 16 GiB.
 * Thread-safe.
 */
CLCNN_API clcnn_status clcnn_npy_load(const char *path, clcnn_npy_array *array);

/**
 * Serializes [in] rank dims [in] dims of [in] data as a version 1.0 .npy file into a new buffer
 * [out] bytes (freed with clcnn_free()) of [out] size bytes, both written only on success.
 * Returns OK, INVALID_ARG, BAD_SHAPE, OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_npy_serialize(int rank, const size_t *dims, const float *data,
                                           void **bytes, size_t *size);

/**
 * Writes a .npy file: to a temporary name in the same directory, synced, then renamed over
 * [in] path, so readers see the old file or the new one, never a part.
 * Returns OK, INVALID_ARG, BAD_SHAPE, IO, OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_npy_save(const char *path, int rank, const size_t *dims,
                                      const float *data);

/** Frees the array's data and zeroes it. NULL or an empty array is a no-op. */
CLCNN_API void clcnn_npy_array_free(clcnn_npy_array *array);

#ifdef __cplusplus
}
#endif

#endif
