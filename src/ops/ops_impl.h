/* What every op family shares: setting kernel arguments and launching on the compute queue,
 * with messages that name the op and the OpenCL error. */
#ifndef CLCNN_OPS_IMPL_H
#define CLCNN_OPS_IMPL_H

#include <stddef.h>

#include "clcnn/tensor.h"
#include "device_impl.h"

/* One kernel argument: size and pointer to the value (NULL for a NULL buffer). */
typedef struct clcnn__kernel_arg {
    size_t size;
    const void *value;
} clcnn__kernel_arg;

/* Refuses a NULL tensor or one on another device: "<op>: NULL <what>". */
clcnn_status clcnn__check_tensor(const clcnn_tensor *t, const clcnn_device *dev, const char *op,
                                 const char *what);

/* Refuses two tensors of different shapes, naming both. */
clcnn_status clcnn__check_same_shape(const clcnn_tensor *a, const clcnn_tensor *b, const char *op,
                                     const char *what_a, const char *what_b);

/* Sets arguments 0..count-1; on failure names the argument index and the OpenCL error. */
clcnn_status clcnn__set_args(cl_kernel kernel, const char *what, const clcnn__kernel_arg *args,
                             size_t count);

/* Enqueues a dims-D kernel on the compute queue without waiting. Ops do not wait either: the
 * queue is in order, buffers released after an enqueue live until the commands that use them
 * have run, and the copies of clcnn_tensor_download/upload wait for the compute queue. local
 * may be NULL; done may be NULL. */
clcnn_status clcnn__enqueue(clcnn_device *dev, cl_kernel kernel, const char *what, cl_uint dims,
                            const size_t *global, const size_t *local, cl_event *done);

/* Creates kernel [name] of program [source] (default build options), sets [args] and enqueues it
 * over dims-D global/local on the compute queue without waiting; messages name [what]. */
clcnn_status clcnn__launch(clcnn_device *dev, const char *source, const char *name,
                           const char *what, const clcnn__kernel_arg *args, size_t nargs,
                           cl_uint dims, const size_t *global, const size_t *local);

/* As clcnn__launch(), with the program built with [in] options (NULL: the defaults). */
clcnn_status clcnn__launch_options(clcnn_device *dev, const char *source, const char *options,
                                   const char *name, const char *what,
                                   const clcnn__kernel_arg *args, size_t nargs, cl_uint dims,
                                   const size_t *global, const size_t *local);

/* Checks that [in] workspace holds [need] bytes: a solver whose tuned configuration changed
 * between the caller's workspace query and the run (the tuning database was re-read after
 * another process wrote it) must not write past the buffer. INVALID_ARG naming [what]. */
clcnn_status clcnn__check_workspace(cl_mem workspace, size_t need, const char *what);

#endif
