/* Building the embedded kernel programs for a device: in-memory table, on-disk binary cache,
 * offline binaries, and kernel creation. */
#ifndef CLCNN_PROGRAM_IMPL_H
#define CLCNN_PROGRAM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_impl.h"

/* The program built from the embedded source [in] source_name ("util.cl") with the extra
 * build options [in] options (e.g. "-DTILE_M=8"; NULL or "" for the defaults). The program is
 * owned by the device and lives as long as it. Thread-safe per device.
 * Returns OK, INVALID_ARG (unknown source), BUILD_FAILED, UNSUPPORTED (no compiler and no
 * offline binary), OUT_OF_MEMORY, CL_ERROR. */
clcnn_status clcnn__program_get(clcnn_device *device, const char *source_name, const char *options,
                                cl_program *program);

/* As clcnn__program_get() for a source that is not embedded (tests use it for broken or
 * extra sources). [in] name labels messages and cache files. */
clcnn_status clcnn__program_get_source(clcnn_device *device, const char *name, const char *source,
                                       size_t size, const char *options, cl_program *program);

/* A new kernel object (owned by the caller: clReleaseKernel) for [in] kernel_name in the
 * program clcnn__program_get() returns. */
clcnn_status clcnn__kernel_create(clcnn_device *device, const char *source_name,
                                  const char *options, const char *kernel_name, cl_kernel *kernel);

/* Whether this device has built (or loaded) the program of [in] source_name with exactly the
 * extra options [in] options ("" for none): how tests see which -D options a launch used.
 * Thread-safe. */
bool clcnn__program_built_with(clcnn_device *device, const char *source_name, const char *options);

/* Rounds a 1-D global size up to a multiple of the local size (OpenCL 1.2 needs uniform
 * work-groups). */
size_t clcnn__round_up(size_t global, size_t local);

/* ---- the on-disk entry format (src/kernel_cache.c) ---- */

/* The file name "<stem>-<16 hex of key hash>.clbin" for an entry of source [in] name. */
void clcnn__kcache_file_name(const char *name, uint64_t key_hash, char *buf, size_t size);

typedef enum clcnn__kcache_result {
    CLCNN_KCACHE_HIT,     /* *binary and *size hold the payload */
    CLCNN_KCACHE_MISSING, /* no such file */
    CLCNN_KCACHE_BAD,     /* present but corrupt or for another key: *why says how */
} clcnn__kcache_result;

/* Reads an entry and checks magic, format version, the full key string, length and checksum.
 * The payload is malloc'd. */
clcnn__kcache_result clcnn__kcache_read(const char *path, const char *key, unsigned char **binary,
                                        size_t *size, char *why, size_t why_size);

/* clcnn__kcache_read() of an entry already in memory ([in] p, len bytes): BAD or HIT. */
clcnn__kcache_result clcnn__kcache_parse(const unsigned char *p, size_t len, const char *key,
                                         unsigned char **binary, size_t *size, char *why,
                                         size_t why_size);

/* The bytes of an entry for [in] key and [in] binary: [out] entry (malloc'd) of [out]
 * entry_size bytes. Returns OK, INVALID_ARG (a key over 64 KiB, an empty or 1 GiB binary),
 * OUT_OF_MEMORY. */
clcnn_status clcnn__kcache_encode(const char *key, const unsigned char *binary, size_t size,
                                  unsigned char **entry, size_t *entry_size);

/* Writes an entry atomically (temporary name, fsync, rename). */
clcnn_status clcnn__kcache_write(const char *path, const char *key, const unsigned char *binary,
                                 size_t size);

#endif
