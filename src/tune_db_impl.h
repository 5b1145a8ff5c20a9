/* The per-device tuning database: which solver (and later which parameters) won for a problem.
 * One JSON file per device in the cache directory, read lazily, merged and written atomically. */
#ifndef CLCNN_TUNE_DB_IMPL_H
#define CLCNN_TUNE_DB_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "device_impl.h"

/* The database file of this device (malloc'd), "<cache>/tune/<vendor>/<device-slug>.json", or
 * NULL with OK when the cache directory is off. */
clcnn_status clcnn__tune_db_path(const clcnn_device *device, char **path);

/* The solver recorded for (kernel, problem) as a verified winner, copied into solver (size
 * bytes). *found is false when there is none, when the cache is off, or when the file is
 * unreadable or corrupt (that is logged once as a warning, never an error). */
void clcnn__tune_db_lookup(clcnn_device *device, const char *kernel, const char *problem,
                           char *solver, size_t size, bool *found);

/* Records (kernel, problem) -> solver with its time, replacing an older entry for the same
 * (kernel, problem). Re-reads the file first so entries written by other processes are kept,
 * then writes it to a temporary name, syncs and renames. Returns OK (also when the cache is
 * off: nothing is written), IO, OUT_OF_MEMORY. */
clcnn_status clcnn__tune_db_record(clcnn_device *device, const char *kernel, const char *problem,
                                   const char *solver, double time_us, bool verified);

/* Parses a database held in memory ([in] text, size bytes, not necessarily NUL-terminated):
 * the document (owned by the caller: cJSON_Delete), or NULL with [out] why (a static string)
 * when it is not JSON or not a database of this schema. */
struct cJSON *clcnn__tune_db_parse(const char *text, size_t size, const char **why);

/* Forgets what was read, so the next lookup reads the file again (device release, tests). */
void clcnn__tune_db_forget(clcnn_device *device);

#endif
