/* Export macro, version numbers and the OpenCL target version shared by every public header. */
#ifndef CLCNN_API_H
#define CLCNN_API_H

/* The host side targets OpenCL 1.2 so one build runs on every vendor's ICD; newer calls are
 * reached only behind a capability check in src/device.c. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif

#if defined(_WIN32) && defined(CLCNN_BUILDING)
#define CLCNN_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CLCNN_API __attribute__((visibility("default")))
#else
#define CLCNN_API
#endif

#define CLCNN_VERSION_MAJOR 0
#define CLCNN_VERSION_MINOR 1
#define CLCNN_VERSION_PATCH 0
#define CLCNN_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Returns the library's version as "MAJOR.MINOR.PATCH".
 * The string is static and owned by the library. Thread-safe.
 */
CLCNN_API const char *clcnn_version(void);

/**
 * Frees memory that the library allocated and handed to the caller (for example the array
 * from clcnn_npy_load()). NULL is a no-op. Thread-safe.
 */
CLCNN_API void clcnn_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif
