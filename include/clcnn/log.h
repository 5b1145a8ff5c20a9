/* Log levels and the callback through which the library reports what it does. */
#ifndef CLCNN_LOG_H
#define CLCNN_LOG_H

#include "clcnn/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLCNN_LOG_LEVEL_LIST(X)                                                                    \
    X(ERROR, 0, "error")                                                                           \
    X(WARN, 1, "warn")                                                                             \
    X(INFO, 2, "info")                                                                             \
    X(DEBUG, 3, "debug")                                                                           \
    X(TRACE, 4, "trace")

/** Severity of a log line; a sink receives lines at or below its level. */
typedef enum clcnn_log_level {
#define CLCNN_LOG_ENUM_(name, value, str) CLCNN_LOG_##name = value,
    CLCNN_LOG_LEVEL_LIST(CLCNN_LOG_ENUM_)
#undef CLCNN_LOG_ENUM_
        CLCNN_LOG_LEVEL_COUNT
} clcnn_log_level;

/**
 * A log sink. [in] level of the line; [in] module ("device", "program", ...); [in] message
 * without a trailing newline, borrowed for the call only; [in] user pointer given to
 * clcnn_log_set(). May be called from any thread that calls into the library.
 */
typedef void (*clcnn_log_fn)(clcnn_log_level level, const char *module, const char *message,
                             void *user);

/**
 * Replaces the log sink. [in] fn: the sink, or NULL for the default sink (stderr, lines
 * prefixed "clcnn:<module>:"); [in] user: passed to fn, borrowed; [in] level: the most
 * verbose level delivered. The default is WARN, or the level named by the CLCNN_LOG
 * environment variable (error|warn|info|debug|trace) when set.
 * Call it before other threads use the library; not synchronized with concurrent logging.
 */
CLCNN_API void clcnn_log_set(clcnn_log_fn fn, void *user, clcnn_log_level level);

/** The most verbose level currently delivered. Thread-safe. */
CLCNN_API clcnn_log_level clcnn_log_get_level(void);

/** The level's name ("debug"), or "unknown". Static string. Thread-safe. */
CLCNN_API const char *clcnn_log_level_name(clcnn_log_level level);

#ifdef __cplusplus
}
#endif

#endif
