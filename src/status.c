/* Library-wide basics: status names, the OpenCL error-name table, the thread-local last-error
 * message, the version string and clcnn_free(). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>

#include "status_impl.h"

#define MESSAGE_MAX 8192

static _Thread_local char last_message[MESSAGE_MAX];
static _Thread_local int last_cl;

const char *clcnn_status_name(clcnn_status status)
{
    switch (status) {
#define NAME_CASE_(name, value, msg)                                                               \
    case CLCNN_STATUS_##name:                                                                      \
        return #name;
        CLCNN_STATUS_LIST(NAME_CASE_)
#undef NAME_CASE_
    default:
        return "UNKNOWN";
    }
}

const char *clcnn_status_message(clcnn_status status)
{
    switch (status) {
#define MSG_CASE_(name, value, msg)                                                                \
    case CLCNN_STATUS_##name:                                                                      \
        return msg;
        CLCNN_STATUS_LIST(MSG_CASE_)
#undef MSG_CASE_
    default:
        return "unknown status";
    }
}

const char *clcnn_last_error(void)
{
    return last_message;
}

int clcnn_last_cl_error(void)
{
    return last_cl;
}

void clcnn_clear_error(void)
{
    last_message[0] = '\0';
    last_cl = 0;
}

/* Only the part after the last "src/" (or the base name) of __FILE__, so messages read
 * "[src/device.c:42]" whatever directory the build ran in. */
static const char *short_file(const char *file)
{
    const char *best = NULL;
    for (const char *p = strstr(file, "src/"); p != NULL; p = strstr(p + 1, "src/"))
        best = p;
    if (best != NULL)
        return best;
    const char *slash = strrchr(file, '/');
    return slash != NULL ? slash + 1 : file;
}

static void vrecord(int cl_error, const char *file, int line, const char *fmt, va_list ap)
{
    char text[MESSAGE_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    /* Leave room for the location tag: a long message loses its tail, never its location. */
    snprintf(last_message, sizeof last_message, "%.*s [%.200s:%d]", MESSAGE_MAX - 256, text,
             short_file(file), line);
    last_cl = cl_error;
}

clcnn_status clcnn__set_error(clcnn_status status, int cl_error, const char *file, int line,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(cl_error, file, line, fmt, ap);
    va_end(ap);
    return status;
}

clcnn_status clcnn__set_cl_error(int cl_error, const char *file, int line, const char *fmt, ...)
{
    char text[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    clcnn__set_error(CLCNN_OK, cl_error, file, line, "%s -> %s", text,
                     clcnn_cl_error_name(cl_error));
    return clcnn__status_of_cl(cl_error);
}

void clcnn__error_prefix(const char *fmt, ...)
{
    char prefix[512];
    char old[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_message, sizeof old);
    snprintf(last_message, sizeof last_message, "%.500s: %.*s", prefix, MESSAGE_MAX - 512, old);
}

/* Every error code of cl.h for OpenCL 1.0 to 3.0 plus the common extension codes. */
#define CL_ERROR_LIST(X)                                                                           \
    X(0, CL_SUCCESS)                                                                               \
    X(-1, CL_DEVICE_NOT_FOUND)                                                                     \
    X(-2, CL_DEVICE_NOT_AVAILABLE)                                                                 \
    X(-3, CL_COMPILER_NOT_AVAILABLE)                                                               \
    X(-4, CL_MEM_OBJECT_ALLOCATION_FAILURE)                                                        \
    X(-5, CL_OUT_OF_RESOURCES)                                                                     \
    X(-6, CL_OUT_OF_HOST_MEMORY)                                                                   \
    X(-7, CL_PROFILING_INFO_NOT_AVAILABLE)                                                         \
    X(-8, CL_MEM_COPY_OVERLAP)                                                                     \
    X(-9, CL_IMAGE_FORMAT_MISMATCH)                                                                \
    X(-10, CL_IMAGE_FORMAT_NOT_SUPPORTED)                                                          \
    X(-11, CL_BUILD_PROGRAM_FAILURE)                                                               \
    X(-12, CL_MAP_FAILURE)                                                                         \
    X(-13, CL_MISALIGNED_SUB_BUFFER_OFFSET)                                                        \
    X(-14, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)                                           \
    X(-15, CL_COMPILE_PROGRAM_FAILURE)                                                             \
    X(-16, CL_LINKER_NOT_AVAILABLE)                                                                \
    X(-17, CL_LINK_PROGRAM_FAILURE)                                                                \
    X(-18, CL_DEVICE_PARTITION_FAILED)                                                             \
    X(-19, CL_KERNEL_ARG_INFO_NOT_AVAILABLE)                                                       \
    X(-30, CL_INVALID_VALUE)                                                                       \
    X(-31, CL_INVALID_DEVICE_TYPE)                                                                 \
    X(-32, CL_INVALID_PLATFORM)                                                                    \
    X(-33, CL_INVALID_DEVICE)                                                                      \
    X(-34, CL_INVALID_CONTEXT)                                                                     \
    X(-35, CL_INVALID_QUEUE_PROPERTIES)                                                            \
    X(-36, CL_INVALID_COMMAND_QUEUE)                                                               \
    X(-37, CL_INVALID_HOST_PTR)                                                                    \
    X(-38, CL_INVALID_MEM_OBJECT)                                                                  \
    X(-39, CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)                                                     \
    X(-40, CL_INVALID_IMAGE_SIZE)                                                                  \
    X(-41, CL_INVALID_SAMPLER)                                                                     \
    X(-42, CL_INVALID_BINARY)                                                                      \
    X(-43, CL_INVALID_BUILD_OPTIONS)                                                               \
    X(-44, CL_INVALID_PROGRAM)                                                                     \
    X(-45, CL_INVALID_PROGRAM_EXECUTABLE)                                                          \
    X(-46, CL_INVALID_KERNEL_NAME)                                                                 \
    X(-47, CL_INVALID_KERNEL_DEFINITION)                                                           \
    X(-48, CL_INVALID_KERNEL)                                                                      \
    X(-49, CL_INVALID_ARG_INDEX)                                                                   \
    X(-50, CL_INVALID_ARG_VALUE)                                                                   \
    X(-51, CL_INVALID_ARG_SIZE)                                                                    \
    X(-52, CL_INVALID_KERNEL_ARGS)                                                                 \
    X(-53, CL_INVALID_WORK_DIMENSION)                                                              \
    X(-54, CL_INVALID_WORK_GROUP_SIZE)                                                             \
    X(-55, CL_INVALID_WORK_ITEM_SIZE)                                                              \
    X(-56, CL_INVALID_GLOBAL_OFFSET)                                                               \
    X(-57, CL_INVALID_EVENT_WAIT_LIST)                                                             \
    X(-58, CL_INVALID_EVENT)                                                                       \
    X(-59, CL_INVALID_OPERATION)                                                                   \
    X(-60, CL_INVALID_GL_OBJECT)                                                                   \
    X(-61, CL_INVALID_BUFFER_SIZE)                                                                 \
    X(-62, CL_INVALID_MIP_LEVEL)                                                                   \
    X(-63, CL_INVALID_GLOBAL_WORK_SIZE)                                                            \
    X(-64, CL_INVALID_PROPERTY)                                                                    \
    X(-65, CL_INVALID_IMAGE_DESCRIPTOR)                                                            \
    X(-66, CL_INVALID_COMPILER_OPTIONS)                                                            \
    X(-67, CL_INVALID_LINKER_OPTIONS)                                                              \
    X(-68, CL_INVALID_DEVICE_PARTITION_COUNT)                                                      \
    X(-69, CL_INVALID_PIPE_SIZE)                                                                   \
    X(-70, CL_INVALID_DEVICE_QUEUE)                                                                \
    X(-71, CL_INVALID_SPEC_ID)                                                                     \
    X(-72, CL_MAX_SIZE_RESTRICTION_EXCEEDED)                                                       \
    X(-1001, CL_PLATFORM_NOT_FOUND_KHR)                                                            \
    X(-1092, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST_KHR)

const char *clcnn_cl_error_name(int cl_error)
{
    switch (cl_error) {
#define CL_CASE_(code, name)                                                                       \
    case code:                                                                                     \
        return #name;
        CL_ERROR_LIST(CL_CASE_)
#undef CL_CASE_
    default:
        return "CL_UNKNOWN_ERROR";
    }
}

const char *clcnn_version(void)
{
    return CLCNN_VERSION_STRING;
}

void clcnn_free(void *ptr)
{
    free(ptr);
}
