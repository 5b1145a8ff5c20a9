/* Error reporting inside the library: set the thread-local message at the failure site. */
#ifndef CLCNN_STATUS_IMPL_H
#define CLCNN_STATUS_IMPL_H

#include "clcnn/status.h"

#if defined(__GNUC__)
#define CLCNN_PRINTF_(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define CLCNN_PRINTF_(fmt_index, first_arg)
#endif

/* Records status, cl_error and a formatted message tagged with [file:line]; returns status. */
clcnn_status clcnn__set_error(clcnn_status status, int cl_error, const char *file, int line,
                              const char *fmt, ...) CLCNN_PRINTF_(5, 6);

/* Maps an OpenCL error to a status (allocation failures -> OUT_OF_MEMORY, else CL_ERROR),
 * records "<what>: <call> -> CL_NAME" and returns the status. */
clcnn_status clcnn__set_cl_error(int cl_error, const char *file, int line, const char *fmt, ...)
    CLCNN_PRINTF_(4, 5);

/* Prefixes the current message with "<prefix>: " (context added by a caller). */
void clcnn__error_prefix(const char *fmt, ...) CLCNN_PRINTF_(1, 2);

/* The status OpenCL error err maps to; -4 and -6 are CL_MEM_OBJECT_ALLOCATION_FAILURE and
 * CL_OUT_OF_HOST_MEMORY. Inline so static analysis sees every error path return non-OK. */
static inline clcnn_status clcnn__status_of_cl(int err)
{
    return err == -4 || err == -6 ? CLCNN_STATUS_OUT_OF_MEMORY : CLCNN_STATUS_CL_ERROR;
}

/* Both evaluate to the status itself (not the call's result) for the same reason. */
#define CLCNN_ERR(status, ...)                                                                     \
    (clcnn__set_error((status), 0, __FILE__, __LINE__, __VA_ARGS__), (status))
#define CLCNN_CL_ERR(err, ...)                                                                     \
    (clcnn__set_cl_error((err), __FILE__, __LINE__, __VA_ARGS__), clcnn__status_of_cl(err))

#define CLCNN_FAIL_IF(cond, status, ...)                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            return CLCNN_ERR(status, __VA_ARGS__);                                                 \
    } while (0)

#define CLCNN_TRY(expr)                                                                            \
    do {                                                                                           \
        clcnn_status try_status_ = (expr);                                                         \
        if (try_status_ != CLCNN_OK)                                                               \
            return try_status_;                                                                    \
    } while (0)

#endif
