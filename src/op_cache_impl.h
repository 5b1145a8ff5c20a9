/* A small per-device cache of buffers derived from tensors (Winograd-transformed filters,
 * repacked weights), keyed by the source tensor's id and version so a write invalidates it. */
#ifndef CLCNN_OP_CACHE_IMPL_H
#define CLCNN_OP_CACHE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "device_impl.h"

/* Most entries kept per device; the least recently used goes first. */
#define CLCNN_OP_CACHE_ENTRIES 64

typedef struct clcnn__op_cache_key {
    const char *kind;   /* static string naming the derivation, e.g. "winograd4-filter" */
    uint64_t tensor_id; /* clcnn__tensor_id() of the source */
    uint64_t version;   /* clcnn__tensor_version() of the source when derived */
    uint64_t variant;   /* anything else the derivation depends on (flip mode, tiling) */
} clcnn__op_cache_key;

/* The cached buffer for key (borrowed: valid until the next put or the device's release), or
 * NULL. Entries of the same tensor with an older version are dropped on the way. */
cl_mem clcnn__op_cache_get(clcnn_device *device, const clcnn__op_cache_key *key);

/* Stores buffer under key; the cache takes the caller's reference (it releases the buffer on
 * eviction). Returns OK or OUT_OF_MEMORY (then the buffer is released). */
clcnn_status clcnn__op_cache_put(clcnn_device *device, const clcnn__op_cache_key *key,
                                 cl_mem buffer);

/* sizeof(struct clcnn__op_cache_entry), for the device's allocation. */
size_t clcnn__op_cache_entry_size(void);

/* Releases every entry (device release). */
void clcnn__op_cache_clear(clcnn_device *device);

#endif
