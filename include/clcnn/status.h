/* Status codes and the thread-local last-error message every fallible call leaves behind. */
#ifndef CLCNN_STATUS_H
#define CLCNN_STATUS_H

#include "clcnn/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, message). The values are pinned forever: never renumber, never reuse. */
#define CLCNN_STATUS_LIST(X)                                                                       \
    X(OK, 0, "success")                                                                            \
    X(INVALID_ARG, 1, "invalid argument")                                                          \
    X(BAD_SHAPE, 2, "bad tensor shape")                                                            \
    X(UNSUPPORTED, 3, "not supported on this device or build")                                     \
    X(NO_DEVICE, 4, "no matching OpenCL device")                                                   \
    X(OUT_OF_MEMORY, 5, "out of memory")                                                           \
    X(BUILD_FAILED, 6, "OpenCL program build failed")                                              \
    X(CL_ERROR, 7, "OpenCL call failed")                                                           \
    X(IO, 8, "input/output error")                                                                 \
    X(PARSE, 9, "parse error")                                                                     \
    X(CORRUPT, 10, "corrupt or mismatched data")                                                   \
    X(INTERNAL, 11, "internal error")

/** Result of every fallible clcnn call. Zero is success; see CLCNN_STATUS_LIST. */
typedef enum clcnn_status {
#define CLCNN_STATUS_ENUM_(name, value, msg) CLCNN_STATUS_##name = value,
    CLCNN_STATUS_LIST(CLCNN_STATUS_ENUM_)
#undef CLCNN_STATUS_ENUM_
        CLCNN_STATUS_COUNT
} clcnn_status;

/** Shorthand for CLCNN_STATUS_OK. */
#define CLCNN_OK CLCNN_STATUS_OK

/**
 * The status's stable name ("BAD_SHAPE"); "UNKNOWN" for a value outside the list.
 * Static string owned by the library. Thread-safe.
 */
CLCNN_API const char *clcnn_status_name(clcnn_status status);

/**
 * A short generic description of the status ("bad tensor shape").
 * Static string owned by the library. Thread-safe.
 */
CLCNN_API const char *clcnn_status_message(clcnn_status status);

/**
 * The message left by the last failing clcnn call on this thread: what failed and where,
 * e.g. "device: clCreateContext -> CL_OUT_OF_HOST_MEMORY [src/device.c:412]".
 * Empty string when no call has failed since the thread started or since clcnn_clear_error().
 * Owned by the library, valid until the next clcnn call on the same thread. Thread-local.
 */
CLCNN_API const char *clcnn_last_error(void);

/**
 * The raw OpenCL error code (cl_int) behind the last failure on this thread, or 0 when the
 * failure did not come from an OpenCL call. Thread-local.
 */
CLCNN_API int clcnn_last_cl_error(void);

/** Clears this thread's last error. Thread-local. */
CLCNN_API void clcnn_clear_error(void);

/**
 * The name of an OpenCL error code ("CL_OUT_OF_RESOURCES" for -5), or "CL_UNKNOWN_ERROR".
 * Static string owned by the library. Thread-safe.
 */
CLCNN_API const char *clcnn_cl_error_name(int cl_error);

#ifdef __cplusplus
}
#endif

#endif
