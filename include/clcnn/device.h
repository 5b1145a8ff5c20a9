/* OpenCL platforms and devices: enumeration, selection by selector string, capabilities,
 * vendor quirks, and the device handle that owns a context with a compute and a transfer queue. */
#ifndef CLCNN_DEVICE_H
#define CLCNN_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "clcnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, selector token). The implementer of the OpenCL driver, found from the platform and
 * device names first and the PCI vendor id last (POCL reports Intel's 0x8086 on any x86 CPU). */
#define CLCNN_VENDOR_LIST(X)                                                                       \
    X(UNKNOWN, "unknown")                                                                          \
    X(NVIDIA, "nvidia")                                                                            \
    X(AMD, "amd")                                                                                  \
    X(INTEL, "intel")                                                                              \
    X(POCL, "pocl")                                                                                \
    X(APPLE, "apple")                                                                              \
    X(ARM, "arm")                                                                                  \
    X(QUALCOMM, "qualcomm")                                                                        \
    X(XILINX, "xilinx")

/** The vendor of a device's OpenCL implementation. */
typedef enum clcnn_vendor {
#define CLCNN_VENDOR_ENUM_(name, token) CLCNN_VENDOR_##name,
    CLCNN_VENDOR_LIST(CLCNN_VENDOR_ENUM_)
#undef CLCNN_VENDOR_ENUM_
        CLCNN_VENDOR_COUNT
} clcnn_vendor;

/** Kind of device, as CL_DEVICE_TYPE reports it. */
typedef enum clcnn_device_type {
    CLCNN_DEVICE_TYPE_OTHER = 0,
    CLCNN_DEVICE_TYPE_CPU = 1,
    CLCNN_DEVICE_TYPE_GPU = 2,
    CLCNN_DEVICE_TYPE_ACCELERATOR = 3,
} clcnn_device_type;

/* X(NAME, bit, description). Known driver behaviours that ops must work around; found by a
 * probe where one exists, else from the quirk table in src/device.c. */
#define CLCNN_QUIRK_LIST(X)                                                                        \
    X(NO_NONUNIFORM_WORK_GROUPS, 0,                                                                \
      "global sizes must be multiples of the work-group size (OpenCL C < 2.0)")                    \
    X(HALF_WITHOUT_EXTENSION, 1, "half arithmetic works although cl_khr_fp16 is not advertised")   \
    X(LAZY_COMPILE, 2, "final code generation happens at first clCreateKernel/enqueue")            \
    X(LOCAL_MEM_IS_GLOBAL, 3, "local memory is ordinary cached RAM: local tiling buys nothing")    \
    X(NO_COMPILER, 4, "no online compiler: kernels load from offline binaries only")               \
    X(VENDOR_ID_MISLEADING, 5, "PCI vendor id names the chip maker, not the driver")               \
    X(BARRIER_PARTIAL_GROUPS, 6,                                                                   \
      "local memory + barriers in partially active groups depend on POCL_WORK_GROUP_METHOD")

/** Bit values of clcnn_device_info.quirks. */
enum clcnn_quirk {
#define CLCNN_QUIRK_ENUM_(name, bit, desc) CLCNN_QUIRK_##name = 1u << (bit),
    CLCNN_QUIRK_LIST(CLCNN_QUIRK_ENUM_)
#undef CLCNN_QUIRK_ENUM_
};

/** The capability record of one device. A plain value: copy it freely. */
typedef struct clcnn_device_info {
    unsigned index; /**< position in clcnn_device_list()'s order (platforms, then devices) */
    unsigned platform_index; /**< index of the platform in clGetPlatformIDs order */
    char platform_name[128];
    char platform_vendor[128];
    char platform_version[128];
    char name[256];
    char vendor_name[128];      /**< CL_DEVICE_VENDOR as reported */
    char device_version[128];   /**< CL_DEVICE_VERSION */
    char driver_version[128];   /**< CL_DRIVER_VERSION */
    char opencl_c_version[128]; /**< CL_DEVICE_OPENCL_C_VERSION */
    char arch[64];              /**< architecture: "sm_90", "gfx90a", "skylake-avx512", ... */
    clcnn_vendor vendor;
    clcnn_device_type type;
    unsigned vendor_id;
    unsigned opencl_c_major, opencl_c_minor; /**< kernel language version the device compiles */
    unsigned compute_units;
    unsigned max_clock_mhz;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    size_t max_work_group_size;
    unsigned max_work_item_dims;
    size_t max_work_item_sizes[3];
    unsigned pref_vector_width_float;
    unsigned pref_vector_width_half;
    unsigned native_vector_width_float;
    bool fp16;
    bool fp64;
    bool unified_memory;
    bool compiler_available;
    bool available;
    uint32_t quirks; /**< OR of enum clcnn_quirk */
} clcnn_device_info;

/** A device in use: context, compute queue, transfer queue, program cache. Opaque. */
typedef struct clcnn_device clcnn_device;

/**
 * Enumerates every device of every platform.
 * [out] infos: array of *count records, owned by the caller, freed with clcnn_free();
 * [out] count. Both written only on success; a machine with no platform gives NO_DEVICE.
 * Returns OK, NO_DEVICE, OUT_OF_MEMORY, CL_ERROR. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_device_list(clcnn_device_info **infos, size_t *count);

/**
 * Chooses a device without creating anything on it.
 * [in] selector: tokens joined by ':' (see below), or NULL/"" for the CLCNN_DEVICE environment
 * variable, or when that is unset the default (the first GPU, else accelerator, else CPU);
 * [out] info: the chosen device's record, written only on success.
 *
 * Tokens narrow the candidates in order: a type (cpu, gpu, accelerator), a vendor
 * (nvidia, amd, intel, pocl, apple, arm, qualcomm, xilinx; matched against the driver, so POCL
 * on an Intel CPU is "pocl"), a number (the n-th remaining candidate; a lone number is the
 * global index), "default", or any other text as a case-insensitive substring of the device or
 * platform name. "gpu:nvidia:1" is the second NVIDIA GPU.
 * Returns OK, NO_DEVICE (the message lists what exists), INVALID_ARG, CL_ERROR. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_device_select(const char *selector, clcnn_device_info *info);

/**
 * Selects a device as clcnn_device_select() does and creates its context and two in-order,
 * profiling-enabled queues (compute and transfer).
 * [in] selector: as for clcnn_device_select(); [out] device: owned by the caller, released with
 * clcnn_device_release(); written only on success.
 * Returns OK, NO_DEVICE, INVALID_ARG, OUT_OF_MEMORY, CL_ERROR.
 * The handle is not thread-safe: use one per thread, or serialize calls.
 */
CLCNN_API clcnn_status clcnn_device_create(const char *selector, clcnn_device **device);

/**
 * Wraps a context and device the caller already has. [in] context and [in] device_id are
 * retained by the library and released by clcnn_device_release(); the caller keeps its own
 * references. Queues are created by the library on that context.
 * Returns OK, INVALID_ARG, OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_device_create_from_cl(cl_context context, cl_device_id device_id,
                                                   clcnn_device **device);

/** Releases the device, its queues, context and cached programs. NULL is a no-op. */
CLCNN_API void clcnn_device_release(clcnn_device *device);

/** The device's capability record; owned by the handle. Never NULL for a valid handle. */
CLCNN_API const clcnn_device_info *clcnn_device_get_info(const clcnn_device *device);

/** The device's context (borrowed; retain it to keep it past the handle). */
CLCNN_API cl_context clcnn_device_context(const clcnn_device *device);

/** The OpenCL device id (borrowed). */
CLCNN_API cl_device_id clcnn_device_id(const clcnn_device *device);

/** The in-order queue on which kernels run (borrowed). */
CLCNN_API cl_command_queue clcnn_device_compute_queue(const clcnn_device *device);

/** The in-order queue for host<->device copies, so they can overlap compute (borrowed). */
CLCNN_API cl_command_queue clcnn_device_transfer_queue(const clcnn_device *device);

/**
 * Waits until both queues are empty. Returns OK or CL_ERROR.
 *
 * The ops (convolution, pooling, activations, linear, loss, optimizers) are asynchronous, as
 * cuDNN's and PyTorch's: each checks its arguments, enqueues its kernels on the in-order compute
 * queue and returns without waiting for them, so a sequence of ops keeps the device busy while
 * the host goes on. Later ops see earlier results through the queue's order, and
 * clcnn_tensor_download() and clcnn_tensor_upload() wait for everything enqueued before them.
 * Workspaces and tensors may be released right after a call: OpenCL keeps a buffer until the
 * commands using it have run. An error in a kernel's execution (rare: a device fault) is
 * reported by the next call that waits: a blocking copy or this one.
 */
CLCNN_API clcnn_status clcnn_device_finish(clcnn_device *device);

/** Name of a vendor ("nvidia"), "unknown" outside the list. Static string. Thread-safe. */
CLCNN_API const char *clcnn_vendor_name(clcnn_vendor vendor);

/** Name of a device type ("gpu"). Static string. Thread-safe. */
CLCNN_API const char *clcnn_device_type_name(clcnn_device_type type);

/**
 * Name of one quirk bit ("LAZY_COMPILE") and, through [out] description (may be NULL), what it
 * means. Returns NULL for a value that is not exactly one known bit. Static strings.
 */
CLCNN_API const char *clcnn_quirk_name(uint32_t quirk, const char **description);

#ifdef __cplusplus
}
#endif

#endif
