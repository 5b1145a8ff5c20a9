/* Softmax cross-entropy forward and backward and plain softmax: label checks on the host, the
 * per-call label upload and the launches of kernels/cl/loss.cl. */
#include <stdint.h>
#include <stdio.h>

#include "clcnn/loss.h"
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

#define LOSS_SOURCE "loss.cl"
#define LOSS_WG 64

/* rows x cols: the matrix view of an N x C x H x W tensor. */
typedef struct rows_cols {
    size_t rows, cols;
} rows_cols;

static clcnn_status matrix_of(const clcnn_tensor *t, const char *op, rows_cols *rc)
{
    clcnn_shape s = clcnn_tensor_shape(t);
    const size_t cols = s.c * s.h * s.w;
    CLCNN_FAIL_IF(s.n >= ((size_t)1 << 31) || cols >= ((size_t)1 << 31), CLCNN_STATUS_BAD_SHAPE,
                  "%s: (%zu,%zu,%zu,%zu) has 2^31 rows or classes or more", op, s.n, s.c, s.h, s.w);
    *rc = (rows_cols){s.n, cols};
    return CLCNN_OK;
}

/* Checks the labels on the host: one per row, each in [0, cols). */
static clcnn_status check_labels(const int32_t *labels, size_t count, rows_cols rc, const char *op)
{
    CLCNN_FAIL_IF(labels == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL labels", op);
    CLCNN_FAIL_IF(count != rc.rows, CLCNN_STATUS_INVALID_ARG,
                  "%s: %zu labels for a batch of %zu rows", op, count, rc.rows);
    for (size_t i = 0; i < count; i++)
        CLCNN_FAIL_IF(labels[i] < 0 || (size_t)labels[i] >= rc.cols, CLCNN_STATUS_INVALID_ARG,
                      "%s: labels[%zu] = %d is outside the classes [0, %zu)", op, i, (int)labels[i],
                      rc.cols);
    return CLCNN_OK;
}

/* A new device buffer of size bytes, initialized from host (may be NULL). */
static clcnn_status new_buffer(clcnn_device *dev, const char *op, size_t size, const void *host,
                               cl_mem *buf)
{
    cl_int err;
    /* CL_MEM_COPY_HOST_PTR only reads host. */
    *buf =
        clCreateBuffer(dev->context, CL_MEM_READ_WRITE | (host != NULL ? CL_MEM_COPY_HOST_PTR : 0),
                       size, (void *)(uintptr_t)host, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clCreateBuffer(%zu bytes)", op, size);
    return CLCNN_OK;
}

/* Enqueues kernel [name] over global x 1 x 1 (local LOSS_WG unless global is 1). */
static clcnn_status launch(clcnn_device *dev, const char *op, const char *name,
                           const clcnn__kernel_arg *args, size_t nargs, size_t global)
{
    const size_t g[1] = {global == 1 ? 1 : clcnn__round_up(global, LOSS_WG)};
    const size_t l[1] = {global == 1 ? 1 : LOSS_WG};
    return clcnn__launch(dev, LOSS_SOURCE, name, op, args, nargs, 1, g, l);
}

clcnn_status clcnn_softmax_xent_forward(clcnn_device *device, const clcnn_tensor *logits,
                                        const int32_t *labels, size_t label_count,
                                        clcnn_tensor *loss, float *loss_host)
{
    static const char op[] = "softmax_xent_forward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(clcnn__check_tensor(logits, device, op, "logits"));
    CLCNN_FAIL_IF(loss == NULL && loss_host == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: no output (loss and loss_host are both NULL)", op);
    if (loss != NULL) {
        CLCNN_TRY(clcnn__check_tensor(loss, device, op, "loss"));
        clcnn_shape s = clcnn_tensor_shape(loss);
        CLCNN_FAIL_IF(clcnn_tensor_count(loss) != 1, CLCNN_STATUS_BAD_SHAPE,
                      "%s: loss is (%zu,%zu,%zu,%zu) but must hold one element", op, s.n, s.c, s.h,
                      s.w);
        CLCNN_FAIL_IF(clcnn_tensor_buffer(loss) == clcnn_tensor_buffer(logits),
                      CLCNN_STATUS_INVALID_ARG, "%s: loss must not alias the logits", op);
    }
    rows_cols rc;
    CLCNN_TRY(matrix_of(logits, op, &rc));
    CLCNN_TRY(check_labels(labels, label_count, rc, op));

    cl_mem lab = NULL, tmp = NULL;
    CLCNN_TRY(new_buffer(device, op, rc.rows * sizeof(cl_int), labels, &lab));
    /* Per-row losses, then the mean at index rows when there is no loss tensor. */
    clcnn_status st = new_buffer(device, op, (rc.rows + 1) * sizeof(cl_float), NULL, &tmp);
    const cl_uint rows = (cl_uint)rc.rows, cols = (cl_uint)rc.cols;
    const cl_mem x = clcnn_tensor_buffer(logits);
    const cl_mem out = loss != NULL ? clcnn_tensor_buffer(loss) : tmp;
    const cl_uint index = loss != NULL ? 0 : rows;
    if (st == CLCNN_OK) {
        const clcnn__kernel_arg a[] = {{sizeof rows, &rows},
                                       {sizeof cols, &cols},
                                       {sizeof(cl_mem), &x},
                                       {sizeof(cl_mem), &lab},
                                       {sizeof(cl_mem), &tmp}};
        st = launch(device, op, "clcnn_softmax_xent_rows", a, 5, rc.rows);
    }
    if (st == CLCNN_OK) {
        const clcnn__kernel_arg a[] = {{sizeof rows, &rows},
                                       {sizeof(cl_mem), &tmp},
                                       {sizeof(cl_mem), &out},
                                       {sizeof index, &index}};
        st = launch(device, op, "clcnn_softmax_xent_mean", a, 4, 1);
    }
    float value = 0.0f;
    if (st == CLCNN_OK && loss_host != NULL) {
        cl_int err = clEnqueueReadBuffer(device->compute, out, CL_TRUE, index * sizeof(cl_float),
                                         sizeof value, &value, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            st = CLCNN_CL_ERR(err, "%s: clEnqueueReadBuffer (the loss)", op);
    }
    clReleaseMemObject(lab);
    if (tmp != NULL)
        clReleaseMemObject(tmp);
    if (st == CLCNN_OK) {
        if (loss_host != NULL)
            *loss_host = value;
        clcnn_tensor_touch(loss);
    }
    return st;
}

clcnn_status clcnn_softmax_xent_backward(clcnn_device *device, const clcnn_tensor *logits,
                                         const int32_t *labels, size_t label_count,
                                         clcnn_tensor *dlogits)
{
    static const char op[] = "softmax_xent_backward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(clcnn__check_tensor(logits, device, op, "logits"));
    CLCNN_TRY(clcnn__check_tensor(dlogits, device, op, "logits gradient"));
    CLCNN_TRY(clcnn__check_same_shape(logits, dlogits, op, "logits", "logits gradient"));
    rows_cols rc;
    CLCNN_TRY(matrix_of(logits, op, &rc));
    CLCNN_TRY(check_labels(labels, label_count, rc, op));

    cl_mem lab = NULL;
    CLCNN_TRY(new_buffer(device, op, rc.rows * sizeof(cl_int), labels, &lab));
    const cl_uint rows = (cl_uint)rc.rows, cols = (cl_uint)rc.cols;
    const cl_float inv_n = (cl_float)(1.0 / (double)rc.rows);
    const cl_mem x = clcnn_tensor_buffer(logits), dx = clcnn_tensor_buffer(dlogits);
    const clcnn__kernel_arg a[] = {{sizeof rows, &rows},  {sizeof cols, &cols},
                                   {sizeof(cl_mem), &x},  {sizeof(cl_mem), &lab},
                                   {sizeof(cl_mem), &dx}, {sizeof inv_n, &inv_n}};
    clcnn_status st = launch(device, op, "clcnn_softmax_xent_bwd", a, 6, rc.rows);
    clReleaseMemObject(lab);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(dlogits);
    return st;
}

clcnn_status clcnn_softmax_forward(clcnn_device *device, const clcnn_tensor *x, clcnn_tensor *y)
{
    static const char op[] = "softmax_forward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(clcnn__check_tensor(x, device, op, "input"));
    CLCNN_TRY(clcnn__check_tensor(y, device, op, "output"));
    CLCNN_TRY(clcnn__check_same_shape(x, y, op, "input", "output"));
    rows_cols rc;
    CLCNN_TRY(matrix_of(x, op, &rc));
    const cl_uint rows = (cl_uint)rc.rows, cols = (cl_uint)rc.cols;
    const cl_mem xb = clcnn_tensor_buffer(x), yb = clcnn_tensor_buffer(y);
    const clcnn__kernel_arg a[] = {
        {sizeof rows, &rows}, {sizeof cols, &cols}, {sizeof(cl_mem), &xb}, {sizeof(cl_mem), &yb}};
    clcnn_status st = launch(device, op, "clcnn_softmax_fwd", a, 4, rc.rows);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(y);
    return st;
}
