/* Whole-file reads with a size limit, atomic writes (temp name, fsync, rename), directory
 * creation and the FNV-1a hash used for cache keys and checksums. */
#ifndef CLCNN_FILEIO_IMPL_H
#define CLCNN_FILEIO_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "clcnn/status.h"

/* Reads the whole file into a malloc'd buffer (NUL-terminated past *size, for text use).
 * Files larger than max_size are refused with CORRUPT. IO when it cannot be opened or read. */
clcnn_status clcnn__file_read_all(const char *path, size_t max_size, void **data, size_t *size);

/* Writes data to "<path>.tmp.<pid>.<n>", fsyncs it, renames it over path and fsyncs the
 * directory. On any failure the temporary file is removed and path is untouched. After a
 * success, temporary files of path that killed writers left (their pid gone, over a minute
 * old) are removed. */
clcnn_status clcnn__file_write_atomic(const char *path, const void *data, size_t size);

/* Creates dir and its missing parents (mode 0755). Existing directories are fine. */
clcnn_status clcnn__mkdir_p(const char *dir);

#define CLCNN_FNV1A64_INIT 0xcbf29ce484222325ull

/* FNV-1a 64-bit over size bytes, continuing from hash (start with CLCNN_FNV1A64_INIT). */
uint64_t clcnn__fnv1a64(uint64_t hash, const void *data, size_t size);

#endif
