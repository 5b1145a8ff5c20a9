/* Weights and checkpoint files: named float32 tensors with shapes and a CRC-32 each, plus the
 * training state a checkpoint adds (epoch, step, RNG, optimizer and its hyper-parameters).
 * Host memory only; the network moves tensors to and from a device. */
#ifndef CLCNN_WEIGHTS_H
#define CLCNN_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "clcnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * File format, version 1. Every integer is little-endian and written byte by byte, so files
 * move between hosts of any byte order; a string is a u16 length and that many bytes, no NUL.
 *
 *   magic     8 bytes  "CLCNNWTS"
 *   version   u32      CLCNN_WEIGHTS_VERSION (1)
 *   flags     u32      CLCNN_WEIGHTS_FLAG_CHECKPOINT or 0; any other bit is refused
 *   count     u32      number of tensor records, at most CLCNN_WEIGHTS_MAX_TENSORS
 *   meta      (only with CLCNN_WEIGHTS_FLAG_CHECKPOINT)
 *     epoch   u64
 *     step    u64
 *     rng     u64[4]
 *     optimizer       string, 0 to 31 printable bytes
 *     hyper_count     u16, at most CLCNN_CHECKPOINT_MAX_HYPER
 *     hyper_count x { name string (1 to 31 printable bytes, unique), value: u64 holding the
 *                     IEEE-754 binary64 bits }
 *     crc     u32      CRC-32 of the meta bytes from epoch up to this field
 *   count x tensor record
 *     name    string, 1 to 63 printable bytes (0x21..0x7e, no spaces), unique in the file
 *     rank    u8       1 to 4
 *     dims    u64[rank], each >= 1, product at most CLCNN_WEIGHTS_MAX_ELEMENTS
 *     payload product(dims) float32, C order, as IEEE-754 binary32 bits
 *     crc     u32      CRC-32 of the record from the name length up to this field
 *   file_crc  u32      CRC-32 of every byte before it
 *
 * CRC-32 is zlib's crc32() (the gzip/PNG polynomial). Optimizer state is stored as more
 * tensors named after their parameter ("conv1.weight.momentum"). The writer emits exactly
 * this layout, so a file that parses serializes back to the same bytes.
 */

/** The magic bytes that open every weights or checkpoint file (8 bytes, no NUL). */
#define CLCNN_WEIGHTS_MAGIC "CLCNNWTS"
/** The format version written, and the only one read. */
#define CLCNN_WEIGHTS_VERSION 1u
/** Flag bit: the file is a checkpoint and carries a clcnn_checkpoint_meta block. */
#define CLCNN_WEIGHTS_FLAG_CHECKPOINT 1u
/** Longest tensor name in bytes, without the NUL. */
#define CLCNN_WEIGHTS_NAME_MAX 63
/** Largest tensor rank. */
#define CLCNN_WEIGHTS_MAX_RANK 4
/** Most tensors in one file. */
#define CLCNN_WEIGHTS_MAX_TENSORS 65536u
/** Most elements in one tensor (2^32 floats, 16 GiB); larger dimensions are refused as absurd
 *  before anything is allocated. */
#define CLCNN_WEIGHTS_MAX_ELEMENTS ((uint64_t)1 << 32)
/** Longest optimizer or hyper-parameter name in bytes, without the NUL. */
#define CLCNN_CHECKPOINT_NAME_MAX 31
/** Most hyper-parameters in a checkpoint. */
#define CLCNN_CHECKPOINT_MAX_HYPER 16

/** A named host float32 tensor: a parameter or a piece of optimizer state. */
typedef struct clcnn_named_tensor {
    char name[CLCNN_WEIGHTS_NAME_MAX + 1]; /**< NUL-terminated, 1..63 printable bytes */
    int rank;                              /**< 1..CLCNN_WEIGHTS_MAX_RANK */
    size_t dims[CLCNN_WEIGHTS_MAX_RANK];   /**< dims[0..rank-1] >= 1; the rest are 1 when read */
    size_t count;                          /**< product of dims[0..rank-1] */
    float *data; /**< count floats, C order; borrowed when saving, owned by the clcnn_weights
                      that parse/load filled */
} clcnn_named_tensor;

/** The training state a checkpoint carries besides its tensors. */
typedef struct clcnn_checkpoint_meta {
    uint64_t epoch;                                /**< epochs completed */
    uint64_t step;                                 /**< optimizer steps taken */
    uint64_t rng[4];                               /**< the training RNG's state */
    char optimizer[CLCNN_CHECKPOINT_NAME_MAX + 1]; /**< e.g. "sgd", "adam"; may be empty */
    size_t hyper_count;                            /**< 0..CLCNN_CHECKPOINT_MAX_HYPER */
    char hyper_names[CLCNN_CHECKPOINT_MAX_HYPER][CLCNN_CHECKPOINT_NAME_MAX + 1]; /**< "lr" */
    double hyper_values[CLCNN_CHECKPOINT_MAX_HYPER]; /**< stored bit for bit */
} clcnn_checkpoint_meta;

/** A parsed weights or checkpoint file. Zero-initialize it or let parse/load fill it. */
typedef struct clcnn_weights {
    size_t count;                /**< tensors in file order */
    clcnn_named_tensor *tensors; /**< count tensors, each data owned; freed by
                                      clcnn_weights_free() */
    clcnn_checkpoint_meta *meta; /**< owned; NULL for a plain weights file */
} clcnn_weights;

/**
 * Serializes [in] count tensors [in] tensors (borrowed) and, for a checkpoint, [in] meta
 * (borrowed; NULL writes a plain weights file) in the format above into a new buffer
 * [out] bytes (freed with clcnn_free()) of [out] size bytes, both written only on success.
 * Each tensor needs a valid unique name, rank 1..4, dims >= 1 whose product equals its count
 * and is at most CLCNN_WEIGHTS_MAX_ELEMENTS, and non-NULL data; messages name the tensor.
 * Returns OK, INVALID_ARG (NULL pointer, bad or duplicate name, bad meta), BAD_SHAPE,
 * OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_weights_serialize(const clcnn_named_tensor *tensors, size_t count,
                                               const clcnn_checkpoint_meta *meta, void **bytes,
                                               size_t *size);

/**
 * Writes what clcnn_weights_serialize() produces to a temporary name beside [in] path, fsyncs
 * it and renames it over path, so a crash at any moment leaves the previous complete file or
 * the new one, never a part. On failure path is untouched and no temporary file remains.
 * Messages start with the path. Returns the serialize statuses and IO. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_weights_save(const char *path, const clcnn_named_tensor *tensors,
                                          size_t count, const clcnn_checkpoint_meta *meta);

/**
 * Parses a weights or checkpoint file held in [in] bytes of [in] size (borrowed) into
 * [out] w, which is written only on success (free it with clcnn_weights_free()). Each
 * refusal names what and where, with the byte offset and the tensor's name when known:
 * PARSE for a wrong magic; UNSUPPORTED for another version or unknown flags; CORRUPT for a
 * truncated file, a per-tensor, meta or file checksum mismatch ("tensor 'fc1.weight':
 * checksum mismatch"), a bad or duplicate name, trailing bytes or too many tensors; BAD_SHAPE
 * for rank 0 or above 4, a zero dimension, or dimensions whose product overflows or exceeds
 * CLCNN_WEIGHTS_MAX_ELEMENTS (refused before any allocation); INVALID_ARG, OUT_OF_MEMORY.
 * Tensor checksums are checked as records are read, the file checksum last, so a damaged
 * payload is reported against its tensor. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_weights_parse(const void *bytes, size_t size, clcnn_weights *w);

/**
 * Reads [in] path and parses it as clcnn_weights_parse() does into [out] w (written only on
 * success); messages start with the path. Adds IO when it cannot be read. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_weights_load(const char *path, clcnn_weights *w);

/**
 * The tensor named [in] name in [in] w, or NULL when there is none (or either is NULL).
 * Borrowed from w, valid until clcnn_weights_free(). Sets no error. Thread-safe.
 */
CLCNN_API const clcnn_named_tensor *clcnn_weights_find(const clcnn_weights *w, const char *name);

/**
 * Looks up [in] name in [in] w and checks that it has [in] rank and [in] dims; [out] out (may
 * be NULL) receives the borrowed tensor, written only on success. This is how a network
 * refuses weights that do not match its model. Returns OK; CORRUPT when the tensor is missing
 * ("weights: no tensor 'fc1.weight' ..."); BAD_SHAPE when its shape differs, naming the tensor,
 * the expected and the found shape ("tensor 'fc1.weight': expected shape 1024x3136, found
 * 512x3136"); INVALID_ARG. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_weights_expect(const clcnn_weights *w, const char *name, int rank,
                                            const size_t *dims, const clcnn_named_tensor **out);

/** Frees every tensor's data, the array and the meta, and zeroes w. NULL is a no-op. */
CLCNN_API void clcnn_weights_free(clcnn_weights *w);

#ifdef __cplusplus
}
#endif

#endif
