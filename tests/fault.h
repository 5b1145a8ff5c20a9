/* Fault injection for tests: the OpenCL calls (and CLBlastSgemm) the library makes are wrapped
 * with -Wl,--wrap (see fault_link_args in tests/meson.build); an armed counter makes the k-th
 * wrapped call fail with the error a real driver returns for that call. */
#ifndef CLCNN_TEST_FAULT_H
#define CLCNN_TEST_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "clcnn/status.h"

/* X(KIND, call name, error code injected, status the library maps it to). A path may also
 * recover on its own (a cached binary the driver refuses is rebuilt from source); the test that
 * arms a fault says where it expects that. */
#define FAULT_KIND_LIST(X)                                                                         \
    X(CREATE_BUFFER, "clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, OUT_OF_MEMORY)            \
    X(CREATE_SUB_BUFFER, "clCreateSubBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, OUT_OF_MEMORY)     \
    X(CREATE_PROGRAM_SOURCE, "clCreateProgramWithSource", CL_OUT_OF_HOST_MEMORY, OUT_OF_MEMORY)    \
    X(CREATE_PROGRAM_BINARY, "clCreateProgramWithBinary", CL_INVALID_BINARY, CL_ERROR)             \
    X(BUILD_PROGRAM, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, BUILD_FAILED)                     \
    X(CREATE_KERNEL, "clCreateKernel", CL_OUT_OF_RESOURCES, CL_ERROR)                              \
    X(SET_KERNEL_ARG, "clSetKernelArg", CL_OUT_OF_HOST_MEMORY, OUT_OF_MEMORY)                      \
    X(ENQUEUE_KERNEL, "clEnqueueNDRangeKernel", CL_OUT_OF_RESOURCES, CL_ERROR)                     \
    X(ENQUEUE_WRITE, "clEnqueueWriteBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, OUT_OF_MEMORY)      \
    X(ENQUEUE_READ, "clEnqueueReadBuffer", CL_OUT_OF_RESOURCES, CL_ERROR)                          \
    X(ENQUEUE_COPY, "clEnqueueCopyBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, OUT_OF_MEMORY)        \
    X(ENQUEUE_FILL, "clEnqueueFillBuffer", CL_OUT_OF_RESOURCES, CL_ERROR)                          \
    X(ENQUEUE_MAP, "clEnqueueMapBuffer", CL_MAP_FAILURE, CL_ERROR)                                 \
    X(ENQUEUE_MARKER, "clEnqueueMarkerWithWaitList", CL_OUT_OF_HOST_MEMORY, OUT_OF_MEMORY)         \
    X(WAIT_FOR_EVENTS, "clWaitForEvents", CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, CL_ERROR)  \
    X(FINISH, "clFinish", CL_OUT_OF_RESOURCES, CL_ERROR)                                           \
    X(CLBLAST_SGEMM, "CLBlastSgemm", CL_OUT_OF_RESOURCES, CL_ERROR)                                \
    X(CREATE_CONTEXT, "clCreateContext", CL_OUT_OF_HOST_MEMORY, OUT_OF_MEMORY)                     \
    X(CREATE_QUEUE, "clCreateCommandQueue", CL_OUT_OF_RESOURCES, CL_ERROR)

typedef enum fault_kind {
#define FAULT_ENUM_(kind, name, error, status) FAULT_##kind,
    FAULT_KIND_LIST(FAULT_ENUM_)
#undef FAULT_ENUM_
        FAULT_KIND_COUNT
} fault_kind;

/* A set of kinds. */
typedef unsigned fault_mask;
#define FAULT_BIT(kind) (1u << (kind))
#define FAULT_ALL ((1u << FAULT_KIND_COUNT) - 1u)
/* The calls that build programs and kernels (only a device's first use of a kernel makes them). */
#define FAULT_BUILD                                                                                \
    (FAULT_BIT(FAULT_CREATE_PROGRAM_SOURCE) | FAULT_BIT(FAULT_CREATE_PROGRAM_BINARY) |             \
     FAULT_BIT(FAULT_BUILD_PROGRAM) | FAULT_BIT(FAULT_CREATE_KERNEL))

/* Zeroes the counters and the record of call sites, and disarms. */
void fault_reset(void);

/* From now on, the k-th (1-based) call of a kind in mask fails; k == 0 disarms. Counters keep
 * running: call fault_reset() first to count from the next call. */
void fault_arm(fault_mask mask, size_t k);

/* Calls of the kinds in mask since the last fault_reset(). */
size_t fault_calls(fault_mask mask);

/* The kind of the call that was made to fail since arming, or -1 when none was. */
int fault_fired(void);

/* Distinct call sites (return addresses) seen since the last fault_reset(), of kinds in mask. */
size_t fault_sites(fault_mask mask);

/* The same, accumulated over the whole process (never reset): for the final report. */
size_t fault_sites_total(void);

/* Writes one line per call site seen in the process, "<call> <module>+0x<offset>", for
 * `addr2line -e <module> <offset>` to name the source line. */
void fault_sites_print(FILE *out);

/* OpenCL objects made through the wrapped calls and not yet released (created minus released,
 * retains counted as creations): a path that leaks one leaves its count above the steady state.
 * Objects made inside libclblast.so are not seen, except the event CLBlastSgemm returns. */
typedef enum fault_object {
    FAULT_OBJ_MEM,
    FAULT_OBJ_PROGRAM,
    FAULT_OBJ_KERNEL,
    FAULT_OBJ_EVENT,
    FAULT_OBJ_CONTEXT,
    FAULT_OBJ_QUEUE,
    FAULT_OBJ_COUNT
} fault_object;

long fault_live(fault_object object);

/* Name, injected error and expected status of a kind. */
const char *fault_call_name(int kind);
int fault_error_code(int kind);
clcnn_status fault_expected_status(int kind);

#endif
