/* Dropout forward and backward: parameter and shape checks, the threshold and scale (computed
 * once on the host) and the launches of kernels/cl/dropout.cl. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "dropout_impl.h"
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

#define DROPOUT_SOURCE "dropout.cl"
#define DROPOUT_VW 8 /* elements per chunk, as in kernels/cl/dropout.cl */
#define DROPOUT_WG 64

static clcnn_status check_params(const clcnn_dropout_params *p, const char *op)
{
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL parameters", op);
    CLCNN_FAIL_IF(!(p->p >= 0.0f && p->p < 1.0f), CLCNN_STATUS_INVALID_ARG,
                  "%s: p %g must be in [0, 1)", op, (double)p->p);
    return CLCNN_OK;
}

static clcnn_status check_count(size_t count, const char *op)
{
    CLCNN_FAIL_IF(count >= (size_t)UINT32_MAX - (size_t)DROPOUT_VW * DROPOUT_WG,
                  CLCNN_STATUS_BAD_SHAPE, "%s: %zu elements; the kernels take fewer than 2^32", op,
                  count);
    return CLCNN_OK;
}

/* The 1 / (1 - p) scale, as float. */
static cl_float scale_of(const clcnn_dropout_params *p)
{
    return (cl_float)(1.0 / (1.0 - (double)p->p));
}

/* Runs the forward kernel over x into y (and mask) with the given launch shape; the checks are
 * the caller's. */
static clcnn_status run_forward(clcnn_device *dev, const char *op, const clcnn_dropout_params *p,
                                const clcnn_tensor *x, clcnn_tensor *y, clcnn_tensor *mask,
                                size_t global, size_t local)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, DROPOUT_SOURCE, NULL, "clcnn_dropout_fwd", &k));
    const cl_uint n = (cl_uint)clcnn_tensor_count(x);
    const cl_mem xb = clcnn_tensor_buffer(x), yb = clcnn_tensor_buffer(y);
    /* A kernel argument cannot be a NULL buffer on every implementation: pass y, unwritten. */
    const cl_mem mb = mask != NULL ? clcnn_tensor_buffer(mask) : yb;
    const cl_uint2 key = {{(cl_uint)(p->seed & 0xffffffffu), (cl_uint)(p->seed >> 32)}};
    /* floor(p * 2^32) < 2^32 since p < 1. */
    const cl_uint threshold = (cl_uint)floor((double)p->p * 4294967296.0);
    const cl_float scale = scale_of(p);
    const cl_uint write_mask = mask != NULL ? 1u : 0u;
    const clcnn__kernel_arg args[] = {{sizeof n, &n},         {sizeof(cl_mem), &xb},
                                      {sizeof(cl_mem), &yb},  {sizeof(cl_mem), &mb},
                                      {sizeof key, &key},     {sizeof threshold, &threshold},
                                      {sizeof scale, &scale}, {sizeof write_mask, &write_mask}};
    clcnn_status st = clcnn__set_args(k, op, args, sizeof args / sizeof args[0]);
    const size_t g[3] = {global, 1, 1}, l[3] = {local, 1, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, op, 3, g, l, NULL);
    clReleaseKernel(k);
    if (st == CLCNN_OK) {
        clcnn__tensor_touch(y);
        clcnn_tensor_touch(mask);
    }
    return st;
}

static clcnn_status check_forward(clcnn_device *dev, const char *op, const clcnn_dropout_params *p,
                                  const clcnn_tensor *x, const clcnn_tensor *y,
                                  const clcnn_tensor *mask)
{
    CLCNN_FAIL_IF(dev == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(check_params(p, op));
    CLCNN_TRY(clcnn__check_tensor(x, dev, op, "input"));
    CLCNN_TRY(clcnn__check_tensor(y, dev, op, "output"));
    CLCNN_TRY(clcnn__check_same_shape(x, y, op, "input", "output"));
    if (mask != NULL) {
        CLCNN_TRY(clcnn__check_tensor(mask, dev, op, "mask"));
        CLCNN_TRY(clcnn__check_same_shape(x, mask, op, "input", "mask"));
        CLCNN_FAIL_IF(clcnn_tensor_buffer(mask) == clcnn_tensor_buffer(x) ||
                          clcnn_tensor_buffer(mask) == clcnn_tensor_buffer(y),
                      CLCNN_STATUS_INVALID_ARG, "%s: the mask must not alias the input or output",
                      op);
    }
    return check_count(clcnn_tensor_count(x), op);
}

clcnn_status clcnn__dropout_forward_shaped(clcnn_device *device, const clcnn_dropout_params *params,
                                           const clcnn_tensor *x, clcnn_tensor *y,
                                           clcnn_tensor *mask, size_t global, size_t local)
{
    static const char op[] = "dropout_forward";
    CLCNN_TRY(check_forward(device, op, params, x, y, mask));
    CLCNN_FAIL_IF(global == 0 || local == 0 || global % local != 0, CLCNN_STATUS_INVALID_ARG,
                  "%s: global size %zu is not a positive multiple of the local size %zu", op,
                  global, local);
    return run_forward(device, op, params, x, y, mask, global, local);
}

clcnn_status clcnn_dropout_forward(clcnn_device *device, const clcnn_dropout_params *params,
                                   const clcnn_tensor *x, clcnn_tensor *y, clcnn_tensor *mask)
{
    static const char op[] = "dropout_forward";
    CLCNN_TRY(check_forward(device, op, params, x, y, mask));
    const size_t chunks = (clcnn_tensor_count(x) + DROPOUT_VW - 1) / DROPOUT_VW;
    return run_forward(device, op, params, x, y, mask, clcnn__round_up(chunks, DROPOUT_WG),
                       DROPOUT_WG);
}

clcnn_status clcnn_dropout_backward(clcnn_device *device, const clcnn_dropout_params *params,
                                    const clcnn_tensor *mask, const clcnn_tensor *dy,
                                    clcnn_tensor *dx)
{
    static const char op[] = "dropout_backward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(check_params(params, op));
    CLCNN_TRY(clcnn__check_tensor(dy, device, op, "output gradient dy"));
    CLCNN_TRY(clcnn__check_tensor(dx, device, op, "input gradient dx"));
    CLCNN_TRY(clcnn__check_same_shape(dy, dx, op, "output gradient dy", "input gradient dx"));
    const size_t count = clcnn_tensor_count(dy);
    CLCNN_TRY(check_count(count, op));
    const size_t chunks = (count + DROPOUT_VW - 1) / DROPOUT_VW;
    const size_t global = clcnn__round_up(chunks, DROPOUT_WG);
    /* Without a mask the forward kernel on dy regenerates it: the same bits. */
    if (mask == NULL)
        return run_forward(device, op, params, dy, dx, NULL, global, DROPOUT_WG);
    CLCNN_TRY(clcnn__check_tensor(mask, device, op, "mask"));
    CLCNN_TRY(clcnn__check_same_shape(dy, mask, op, "output gradient dy", "mask"));
    CLCNN_FAIL_IF(clcnn_tensor_buffer(mask) == clcnn_tensor_buffer(dx), CLCNN_STATUS_INVALID_ARG,
                  "%s: the mask must not alias the input gradient", op);
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(device, DROPOUT_SOURCE, NULL, "clcnn_dropout_bwd_mask", &k));
    const cl_uint n = (cl_uint)count;
    const cl_mem dyb = clcnn_tensor_buffer(dy), mb = clcnn_tensor_buffer(mask),
                 dxb = clcnn_tensor_buffer(dx);
    const cl_float scale = scale_of(params);
    const clcnn__kernel_arg args[] = {{sizeof n, &n},
                                      {sizeof(cl_mem), &dyb},
                                      {sizeof(cl_mem), &mb},
                                      {sizeof(cl_mem), &dxb},
                                      {sizeof scale, &scale}};
    clcnn_status st = clcnn__set_args(k, op, args, 5);
    const size_t g[3] = {global, 1, 1}, l[3] = {DROPOUT_WG, 1, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(device, k, op, 3, g, l, NULL);
    clReleaseKernel(k);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(dx);
    return st;
}
