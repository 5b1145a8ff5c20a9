/* Logging inside the library: one call per line, filtered by level before formatting. */
#ifndef CLCNN_LOG_IMPL_H
#define CLCNN_LOG_IMPL_H

#include <stdbool.h>

#include "clcnn/log.h"
#include "status_impl.h"

/* True when a line at this level would be delivered (check before expensive formatting). */
bool clcnn__log_enabled(clcnn_log_level level);

void clcnn__log(clcnn_log_level level, const char *module, const char *fmt, ...)
    CLCNN_PRINTF_(3, 4);

#define CLCNN_LOG_(level, module, ...)                                                             \
    do {                                                                                           \
        if (clcnn__log_enabled(level))                                                             \
            clcnn__log((level), (module), __VA_ARGS__);                                            \
    } while (0)
#define CLCNN_WARN(module, ...) CLCNN_LOG_(CLCNN_LOG_WARN, module, __VA_ARGS__)
#define CLCNN_INFO(module, ...) CLCNN_LOG_(CLCNN_LOG_INFO, module, __VA_ARGS__)
#define CLCNN_DEBUG(module, ...) CLCNN_LOG_(CLCNN_LOG_DEBUG, module, __VA_ARGS__)
#define CLCNN_TRACE(module, ...) CLCNN_LOG_(CLCNN_LOG_TRACE, module, __VA_ARGS__)

#endif
