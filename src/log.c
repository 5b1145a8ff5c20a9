/* The log sink: stderr at WARN by default, CLCNN_LOG overrides the level, a callback replaces
 * the sink. Lines are "clcnn:<module>: <message>". */
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_impl.h"

static clcnn_log_fn sink_fn;
static void *sink_user;
/* -1 until the environment has been read. */
static atomic_int sink_level = -1;

static const char *const level_names[] = {
#define LEVEL_NAME_(name, value, str) str,
    CLCNN_LOG_LEVEL_LIST(LEVEL_NAME_)
#undef LEVEL_NAME_
};
_Static_assert(sizeof level_names / sizeof level_names[0] == CLCNN_LOG_LEVEL_COUNT,
               "one name per log level");

const char *clcnn_log_level_name(clcnn_log_level level)
{
    if ((int)level < 0 || level >= CLCNN_LOG_LEVEL_COUNT)
        return "unknown";
    return level_names[level];
}

static int level_from_env(void)
{
    const char *env = getenv("CLCNN_LOG");
    if (env == NULL || env[0] == '\0')
        return CLCNN_LOG_WARN;
    for (int i = 0; i < CLCNN_LOG_LEVEL_COUNT; i++) {
        const char *name = level_names[i];
        size_t k = 0;
        while (name[k] != '\0' && tolower((unsigned char)env[k]) == name[k])
            k++;
        if (name[k] == '\0' && env[k] == '\0')
            return i;
    }
    fprintf(stderr,
            "clcnn:log: CLCNN_LOG=%s is not one of error|warn|info|debug|trace; "
            "using warn\n",
            env);
    return CLCNN_LOG_WARN;
}

clcnn_log_level clcnn_log_get_level(void)
{
    int level = atomic_load(&sink_level);
    if (level < 0) {
        int expected = -1;
        level = level_from_env();
        if (!atomic_compare_exchange_strong(&sink_level, &expected, level))
            level = expected;
    }
    return (clcnn_log_level)level;
}

void clcnn_log_set(clcnn_log_fn fn, void *user, clcnn_log_level level)
{
    sink_fn = fn;
    sink_user = user;
    if ((int)level < 0)
        level = CLCNN_LOG_ERROR;
    if (level >= CLCNN_LOG_LEVEL_COUNT)
        level = CLCNN_LOG_TRACE;
    atomic_store(&sink_level, (int)level);
}

bool clcnn__log_enabled(clcnn_log_level level)
{
    return (int)level <= (int)clcnn_log_get_level();
}

void clcnn__log(clcnn_log_level level, const char *module, const char *fmt, ...)
{
    if (!clcnn__log_enabled(level))
        return;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (sink_fn != NULL) {
        sink_fn(level, module, text, sink_user);
        return;
    }
    fprintf(stderr, "clcnn:%s: %s%s\n", module,
            level == CLCNN_LOG_ERROR  ? "error: "
            : level == CLCNN_LOG_WARN ? "warning: "
                                      : "",
            text);
}
