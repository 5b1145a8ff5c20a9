/* NCHW float32 tensors in device buffers: creation with overflow-checked shapes, copies on the
 * transfer queue ordered after the compute queue, fills, and .npy load/save. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/npy.h"
#include "clcnn/tensor.h"
#include "device_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

struct clcnn_tensor {
    uint64_t id;
    atomic_uint_fast64_t version;
    clcnn_device *device;
    clcnn_shape shape;
    size_t count;
    int rank;
    cl_mem buffer;
};

clcnn_status clcnn_shape_count(clcnn_shape s, size_t *count)
{
    CLCNN_FAIL_IF(count == NULL, CLCNN_STATUS_INVALID_ARG, "shape_count: NULL output");
    size_t dims[4] = {s.n, s.c, s.h, s.w};
    size_t total = 1;
    for (int i = 0; i < 4; i++) {
        CLCNN_FAIL_IF(dims[i] == 0, CLCNN_STATUS_BAD_SHAPE,
                      "shape (%zu,%zu,%zu,%zu): dimension %d is zero", s.n, s.c, s.h, s.w, i);
        CLCNN_FAIL_IF(total > SIZE_MAX / sizeof(float) / dims[i], CLCNN_STATUS_BAD_SHAPE,
                      "shape (%zu,%zu,%zu,%zu): element count overflows", s.n, s.c, s.h, s.w);
        total *= dims[i];
    }
    *count = total;
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_create(clcnn_device *device, clcnn_shape shape, clcnn_tensor **tensor)
{
    CLCNN_FAIL_IF(device == NULL || tensor == NULL, CLCNN_STATUS_INVALID_ARG,
                  "tensor_create: NULL argument");
    size_t count = 0;
    CLCNN_TRY(clcnn_shape_count(shape, &count));
    size_t bytes = count * sizeof(float);
    CLCNN_FAIL_IF(device->info.max_alloc_bytes != 0 && bytes > device->info.max_alloc_bytes,
                  CLCNN_STATUS_BAD_SHAPE,
                  "tensor_create: shape (%zu,%zu,%zu,%zu) needs %zu bytes, over the device's "
                  "largest allocation of %llu bytes",
                  shape.n, shape.c, shape.h, shape.w, bytes,
                  (unsigned long long)device->info.max_alloc_bytes);
    clcnn_tensor *t = calloc(1, sizeof *t);
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "tensor_create: out of host memory");
    cl_int err;
    t->buffer = clCreateBuffer(device->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        free(t);
        return CLCNN_CL_ERR(err, "tensor_create: clCreateBuffer(%zu bytes) for (%zu,%zu,%zu,%zu)",
                            bytes, shape.n, shape.c, shape.h, shape.w);
    }
    static atomic_uint_fast64_t next_id = 1;
    t->id = atomic_fetch_add(&next_id, 1);
    atomic_init(&t->version, 1);
    t->device = device;
    t->shape = shape;
    t->count = count;
    t->rank = 4;
    *tensor = t;
    return CLCNN_OK;
}

void clcnn_tensor_release(clcnn_tensor *tensor)
{
    if (tensor == NULL)
        return;
    clReleaseMemObject(tensor->buffer);
    free(tensor);
}

uint64_t clcnn__tensor_id(const clcnn_tensor *tensor)
{
    return tensor->id;
}

uint64_t clcnn__tensor_version(const clcnn_tensor *tensor)
{
    return atomic_load(&((clcnn_tensor *)tensor)->version);
}

void clcnn__tensor_touch(clcnn_tensor *tensor)
{
    atomic_fetch_add(&tensor->version, 1);
}

void clcnn_tensor_touch(clcnn_tensor *tensor)
{
    if (tensor != NULL)
        clcnn__tensor_touch(tensor);
}

clcnn_shape clcnn_tensor_shape(const clcnn_tensor *tensor)
{
    return tensor->shape;
}

size_t clcnn_tensor_count(const clcnn_tensor *tensor)
{
    return tensor->count;
}

int clcnn_tensor_rank(const clcnn_tensor *tensor)
{
    return tensor->rank;
}

cl_mem clcnn_tensor_buffer(const clcnn_tensor *tensor)
{
    return tensor->buffer;
}

clcnn_device *clcnn_tensor_device(const clcnn_tensor *tensor)
{
    return tensor->device;
}

static clcnn_status check_copy(const clcnn_tensor *t, const void *host, size_t count,
                               cl_uint wait_count, const cl_event *wait, const char *what)
{
    CLCNN_FAIL_IF(t == NULL || host == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL argument", what);
    CLCNN_FAIL_IF(wait_count > 0 && wait == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: %u wait events but no list", what, wait_count);
    CLCNN_FAIL_IF(count != t->count, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %zu floats given for a tensor of shape (%zu,%zu,%zu,%zu) = %zu floats", what,
                  count, t->shape.n, t->shape.c, t->shape.h, t->shape.w, t->count);
    return CLCNN_OK;
}

/* A marker on the compute queue: blocking copies run on the transfer queue, so they must wait
 * for kernels already enqueued that read or write the buffer. */
static clcnn_status compute_marker(const clcnn_tensor *t, cl_event *marker, const char *what)
{
    cl_int err = clEnqueueMarkerWithWaitList(t->device->compute, 0, NULL, marker);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clEnqueueMarkerWithWaitList", what);
    return CLCNN_OK;
}

static clcnn_status copy(clcnn_tensor *t, float *dst, const float *src, size_t count, bool blocking,
                         cl_uint wait_count, const cl_event *wait, cl_event *done)
{
    const char *what = dst != NULL ? "tensor_download" : "tensor_upload";
    CLCNN_TRY(check_copy(t, dst != NULL ? (const void *)dst : (const void *)src, count, wait_count,
                         wait, what));
    cl_event marker = NULL;
    if (blocking) {
        CLCNN_TRY(compute_marker(t, &marker, what));
        wait_count = 1;
        wait = &marker;
    }
    cl_int err;
    size_t bytes = count * sizeof(float);
    if (dst != NULL)
        err = clEnqueueReadBuffer(t->device->transfer, t->buffer, blocking ? CL_TRUE : CL_FALSE, 0,
                                  bytes, dst, wait_count, wait, done);
    else
        err = clEnqueueWriteBuffer(t->device->transfer, t->buffer, blocking ? CL_TRUE : CL_FALSE, 0,
                                   bytes, src, wait_count, wait, done);
    if (marker != NULL)
        clReleaseEvent(marker);
    if (dst == NULL)
        clcnn__tensor_touch(t);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: %s of %zu bytes", what,
                            dst != NULL ? "clEnqueueReadBuffer" : "clEnqueueWriteBuffer", bytes);
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_upload(clcnn_tensor *tensor, const float *src, size_t count)
{
    return copy(tensor, NULL, src, count, true, 0, NULL, NULL);
}

clcnn_status clcnn_tensor_download(const clcnn_tensor *tensor, float *dst, size_t count)
{
    CLCNN_FAIL_IF(tensor == NULL || dst == NULL, CLCNN_STATUS_INVALID_ARG,
                  "tensor_download: NULL argument");
    /* Read into a scratch buffer so dst is untouched if the copy fails half-way. */
    float *tmp = malloc(tensor->count * sizeof(float));
    CLCNN_FAIL_IF(tmp == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "tensor_download: out of host memory");
    clcnn_status st = copy((clcnn_tensor *)tensor, tmp, NULL, count, true, 0, NULL, NULL);
    if (st == CLCNN_OK)
        memcpy(dst, tmp, count * sizeof(float));
    free(tmp);
    return st;
}

clcnn_status clcnn_tensor_upload_async(clcnn_tensor *tensor, const float *src, size_t count,
                                       cl_uint wait_count, const cl_event *wait, cl_event *done)
{
    return copy(tensor, NULL, src, count, false, wait_count, wait, done);
}

clcnn_status clcnn_tensor_download_async(const clcnn_tensor *tensor, float *dst, size_t count,
                                         cl_uint wait_count, const cl_event *wait, cl_event *done)
{
    CLCNN_FAIL_IF(dst == NULL, CLCNN_STATUS_INVALID_ARG, "tensor_download_async: NULL destination");
    return copy((clcnn_tensor *)tensor, dst, NULL, count, false, wait_count, wait, done);
}

clcnn_status clcnn_tensor_fill(clcnn_tensor *tensor, float value)
{
    CLCNN_FAIL_IF(tensor == NULL, CLCNN_STATUS_INVALID_ARG, "tensor_fill: NULL tensor");
    clcnn__tensor_touch(tensor);
    cl_int err = clEnqueueFillBuffer(tensor->device->compute, tensor->buffer, &value, sizeof value,
                                     0, tensor->count * sizeof(float), 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "tensor_fill: clEnqueueFillBuffer");
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_load_npy(clcnn_device *device, const char *path, clcnn_tensor **tensor)
{
    CLCNN_FAIL_IF(device == NULL || path == NULL || tensor == NULL, CLCNN_STATUS_INVALID_ARG,
                  "tensor_load_npy: NULL argument");
    clcnn_npy_array a;
    CLCNN_TRY(clcnn_npy_load(path, &a));
    size_t dims[4] = {1, 1, 1, 1};
    for (int i = 0; i < a.rank; i++)
        dims[4 - a.rank + i] = a.dims[i];
    clcnn_shape shape = {dims[0], dims[1], dims[2], dims[3]};
    int rank = a.rank;
    clcnn_tensor *t = NULL;
    clcnn_status st = clcnn_tensor_create(device, shape, &t);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(t, a.data, a.count);
    clcnn_npy_array_free(&a);
    if (st != CLCNN_OK) {
        clcnn__error_prefix("%s", path);
        clcnn_tensor_release(t);
        return st;
    }
    t->rank = rank;
    *tensor = t;
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_save_npy(const clcnn_tensor *tensor, const char *path)
{
    CLCNN_FAIL_IF(tensor == NULL || path == NULL, CLCNN_STATUS_INVALID_ARG,
                  "tensor_save_npy: NULL argument");
    float *host = malloc(tensor->count * sizeof(float));
    CLCNN_FAIL_IF(host == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                  "tensor_save_npy: cannot allocate %zu floats", tensor->count);
    clcnn_status st = clcnn_tensor_download(tensor, host, tensor->count);
    if (st == CLCNN_OK) {
        const clcnn_shape *s = &tensor->shape;
        size_t all[4] = {s->n, s->c, s->h, s->w};
        st = clcnn_npy_save(path, tensor->rank, all + (4 - tensor->rank), host);
    }
    free(host);
    return st;
}
