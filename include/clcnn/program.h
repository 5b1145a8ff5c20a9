/* The kernel programs embedded in the library: where their binaries are cached, what the cache
 * did, and exporting binaries for devices that cannot compile (the FPGA flow). */
#ifndef CLCNN_PROGRAM_H
#define CLCNN_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "clcnn/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Counters of what the program layer did on one device since it was created. */
typedef struct clcnn_program_stats {
    uint64_t programs;       /**< distinct (source, options) programs made ready */
    uint64_t memory_hits;    /**< requests served by a program already built in this handle */
    uint64_t source_builds;  /**< programs compiled from source */
    uint64_t cache_hits;     /**< programs loaded from the on-disk binary cache */
    uint64_t cache_misses;   /**< lookups that found no cache entry */
    uint64_t cache_rejected; /**< entries found but corrupt or mismatched, then rebuilt */
    uint64_t cache_writes;   /**< entries written */
    uint64_t offline_loads;  /**< programs loaded from CLCNN_BINARY_DIR */
    double source_build_ms;  /**< wall time spent compiling from source */
    double cache_load_ms;    /**< wall time spent loading cached or offline binaries */
} clcnn_program_stats;

/**
 * Copies the device's program counters into [out] stats.
 * Returns OK or INVALID_ARG.
 */
CLCNN_API clcnn_status clcnn_program_stats_get(const clcnn_device *device,
                                               clcnn_program_stats *stats);

/**
 * The binary cache directory the device uses: $CLCNN_CACHE_DIR, else $XDG_CACHE_HOME/clcnn,
 * else $HOME/.cache/clcnn; NULL when the cache is off (CLCNN_CACHE_DIR=off, or no home).
 * Read once when the device is created. Owned by the handle.
 */
CLCNN_API const char *clcnn_program_cache_dir(const clcnn_device *device);

/** Number of OpenCL source files embedded in the library. Thread-safe. */
CLCNN_API size_t clcnn_program_source_count(void);

/** Name of the i-th embedded source ("util.cl"), or NULL past the end. Static string. */
CLCNN_API const char *clcnn_program_source_name(size_t index);

/**
 * Makes every embedded program ready on the device with its default options (from memory, the
 * binary cache, offline binaries or the compiler, in that order), so later calls start fast;
 * clcnn_program_stats_get() then says where each came from.
 * Returns OK, BUILD_FAILED, UNSUPPORTED, OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_program_build_all(clcnn_device *device);

/**
 * Builds every embedded program for the device with its default options and writes each
 * binary into [in] dir, in the format and under the file names that CLCNN_BINARY_DIR is read
 * with, so a device without a compiler can later load them. The directory is created if
 * needed; each file is written to a temporary name, synced and renamed.
 * [out] written: number of files written (may be NULL).
 * Returns OK, INVALID_ARG, IO, BUILD_FAILED, UNSUPPORTED, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_program_export_binaries(clcnn_device *device, const char *dir,
                                                     size_t *written);

#ifdef __cplusplus
}
#endif

#endif
