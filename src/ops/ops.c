/* Helpers every op family shares: kernel arguments and launches on the compute queue. */
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"

clcnn_status clcnn__set_args(cl_kernel kernel, const char *what, const clcnn__kernel_arg *args,
                             size_t count)
{
    for (size_t i = 0; i < count; i++) {
        cl_int err = clSetKernelArg(kernel, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS)
            return CLCNN_CL_ERR(err, "%s: clSetKernelArg(%zu)", what, i);
    }
    return CLCNN_OK;
}

clcnn_status clcnn__enqueue(clcnn_device *dev, cl_kernel kernel, const char *what, cl_uint dims,
                            const size_t *global, const size_t *local, cl_event *done)
{
    cl_int err =
        clEnqueueNDRangeKernel(dev->compute, kernel, dims, NULL, global, local, 0, NULL, done);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clEnqueueNDRangeKernel (global %zux%zux%zu)", what, global[0],
                            dims > 1 ? global[1] : 1, dims > 2 ? global[2] : 1);
    return CLCNN_OK;
}

clcnn_status clcnn__launch(clcnn_device *dev, const char *source, const char *name,
                           const char *what, const clcnn__kernel_arg *args, size_t nargs,
                           cl_uint dims, const size_t *global, const size_t *local)
{
    return clcnn__launch_options(dev, source, NULL, name, what, args, nargs, dims, global, local);
}

clcnn_status clcnn__launch_options(clcnn_device *dev, const char *source, const char *options,
                                   const char *name, const char *what,
                                   const clcnn__kernel_arg *args, size_t nargs, cl_uint dims,
                                   const size_t *global, const size_t *local)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, source, options, name, &k));
    clcnn_status st = clcnn__set_args(k, what, args, nargs);
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, what, dims, global, local, NULL);
    clReleaseKernel(k);
    return st;
}

clcnn_status clcnn__check_workspace(cl_mem workspace, size_t need, const char *what)
{
    if (need == 0)
        return CLCNN_OK;
    size_t have = 0;
    cl_int err = workspace != NULL
                     ? clGetMemObjectInfo(workspace, CL_MEM_SIZE, sizeof have, &have, NULL)
                     : CL_SUCCESS;
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clGetMemObjectInfo(workspace, CL_MEM_SIZE)", what);
    CLCNN_FAIL_IF(have < need, CLCNN_STATUS_INVALID_ARG,
                  "%s: the workspace has %zu bytes but this run needs %zu (was it sized before "
                  "the tuning database changed?)",
                  what, have, need);
    return CLCNN_OK;
}

clcnn_status clcnn__check_tensor(const clcnn_tensor *t, const clcnn_device *dev, const char *op,
                                 const char *what)
{
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL %s", op, what);
    CLCNN_FAIL_IF(clcnn_tensor_device(t) != dev, CLCNN_STATUS_INVALID_ARG,
                  "%s: %s lives on another device", op, what);
    return CLCNN_OK;
}

clcnn_status clcnn__check_same_shape(const clcnn_tensor *a, const clcnn_tensor *b, const char *op,
                                     const char *what_a, const char *what_b)
{
    clcnn_shape s = clcnn_tensor_shape(a), t = clcnn_tensor_shape(b);
    CLCNN_FAIL_IF(s.n != t.n || s.c != t.c || s.h != t.h || s.w != t.w, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s (%zu,%zu,%zu,%zu) and %s (%zu,%zu,%zu,%zu) must have one shape", op,
                  what_a, s.n, s.c, s.h, s.w, what_b, t.n, t.c, t.h, t.w);
    return CLCNN_OK;
}
