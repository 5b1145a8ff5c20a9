/* Fully connected forward and backward: shape checks, the CLBlast SGEMMs on the compute queue
 * and the bias kernels of kernels/cl/linear.cl. */
#include <clblast_c.h>
#include <stdint.h>
#include <stdio.h>

#include "clcnn/linear.h"
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

#define LINEAR_SOURCE "linear.cl"
#define LINEAR_VW 8 /* columns per work-item, as in kernels/cl/linear.cl */
#define LINEAR_WG 64

/* The matrix view of a problem: x is n x in, w is out x in, y is n x out. */
typedef struct linear_dims {
    size_t n, in, out;
} linear_dims;

static clcnn_status shape_dims(clcnn_shape x, clcnn_shape w, const char *op, linear_dims *d)
{
    size_t nx, nw;
    CLCNN_TRY(clcnn_shape_count(x, &nx));
    CLCNN_TRY(clcnn_shape_count(w, &nw));
    const size_t in = x.c * x.h * x.w;
    CLCNN_FAIL_IF(nw % in != 0, CLCNN_STATUS_BAD_SHAPE,
                  "%s: weight (%zu,%zu,%zu,%zu) holds %zu elements, not a multiple of the input "
                  "(%zu,%zu,%zu,%zu)'s %zu features",
                  op, w.n, w.c, w.h, w.w, nw, x.n, x.c, x.h, x.w, in);
    /* CLBlast and the kernels index with 32-bit integers. */
    CLCNN_FAIL_IF(nx >= ((size_t)1 << 31) || nw >= ((size_t)1 << 31) ||
                      x.n * (nw / in) >= ((size_t)1 << 31),
                  CLCNN_STATUS_BAD_SHAPE, "%s: a matrix has 2^31 elements or more", op);
    *d = (linear_dims){x.n, in, nw / in};
    return CLCNN_OK;
}

clcnn_status clcnn_linear_output_shape(clcnn_shape input, clcnn_shape weight, clcnn_shape *output)
{
    CLCNN_FAIL_IF(output == NULL, CLCNN_STATUS_INVALID_ARG, "linear: NULL output shape");
    linear_dims d;
    CLCNN_TRY(shape_dims(input, weight, "linear", &d));
    *output = (clcnn_shape){d.n, d.out, 1, 1};
    return CLCNN_OK;
}

/* t must be (n, c, 1, 1); what names it in the message. */
static clcnn_status check_shape(const clcnn_tensor *t, clcnn_shape want, const char *op,
                                const char *what)
{
    clcnn_shape s = clcnn_tensor_shape(t);
    CLCNN_FAIL_IF(s.n != want.n || s.c != want.c || s.h != want.h || s.w != want.w,
                  CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s is (%zu,%zu,%zu,%zu) but must be (%zu,%zu,%zu,%zu)", op, what, s.n, s.c,
                  s.h, s.w, want.n, want.c, want.h, want.w);
    return CLCNN_OK;
}

static clcnn_status check_count(const clcnn_tensor *t, size_t want, const char *op,
                                const char *what)
{
    clcnn_shape s = clcnn_tensor_shape(t);
    CLCNN_FAIL_IF(clcnn_tensor_count(t) != want, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s is (%zu,%zu,%zu,%zu) with %zu elements but must hold %zu", op, what, s.n,
                  s.c, s.h, s.w, clcnn_tensor_count(t), want);
    return CLCNN_OK;
}

/* Refuses an output buffer that is also one of the n other buffers (NULLs skipped). */
static clcnn_status check_no_alias(const clcnn_tensor *out, const clcnn_tensor *const *others,
                                   size_t n, const char *op, const char *what)
{
    if (out == NULL)
        return CLCNN_OK;
    for (size_t i = 0; i < n; i++)
        CLCNN_FAIL_IF(others[i] != NULL &&
                          clcnn_tensor_buffer(others[i]) == clcnn_tensor_buffer(out),
                      CLCNN_STATUS_INVALID_ARG, "%s: %s must not alias another argument", op, what);
    return CLCNN_OK;
}

/* One row-major SGEMM C = A op B... with the given transposes and beta, on the compute queue;
 * *last receives its event (the previous one is released). */
static clcnn_status sgemm(clcnn_device *dev, const char *op, bool ta, bool tb, size_t m, size_t n,
                          size_t k, cl_mem a, size_t lda, cl_mem b, size_t ldb, float beta,
                          cl_mem c, size_t ldc, cl_event *last)
{
    cl_event ev = NULL;
    CLBlastStatusCode code =
        CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                     tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1.0f, a, 0, lda, b, 0,
                     ldb, beta, c, 0, ldc, &dev->compute, &ev);
    if (code != CLBlastSuccess) {
        /* CLBlast returns OpenCL codes above -1000 and its own below. */
        clcnn_status st = code > -1000 ? clcnn__status_of_cl(code) : CLCNN_STATUS_CL_ERROR;
        return (clcnn__set_error(st, code, __FILE__, __LINE__,
                                 "%s: CLBlastSgemm(M=%zu, N=%zu, K=%zu) -> status %d%s", op, m, n,
                                 k, (int)code,
                                 code > -1000 ? " (an OpenCL error)" : " (CLBlast's own code)"),
                st);
    }
    if (*last != NULL)
        clReleaseEvent(*last);
    *last = ev;
    return CLCNN_OK;
}

/* Enqueues a bias kernel over a rows x cols matrix. */
static clcnn_status bias_kernel(clcnn_device *dev, const char *op, bool forward, size_t rows,
                                size_t cols, cl_mem mat, cl_mem bias, bool accumulate)
{
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(
        dev, LINEAR_SOURCE, NULL, forward ? "clcnn_linear_bias_fwd" : "clcnn_linear_bias_bwd", &k));
    const cl_uint r = (cl_uint)rows, c = (cl_uint)cols, acc = accumulate ? 1u : 0u;
    const clcnn__kernel_arg args[] = {{sizeof r, &r},
                                      {sizeof c, &c},
                                      {sizeof(cl_mem), &mat},
                                      {sizeof(cl_mem), &bias},
                                      {sizeof acc, &acc}};
    clcnn_status st = clcnn__set_args(k, op, args, forward ? 4 : 5);
    const size_t global[2] = {clcnn__round_up((cols + LINEAR_VW - 1) / LINEAR_VW, LINEAR_WG),
                              forward ? rows : 1};
    const size_t local[2] = {LINEAR_WG, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, op, 2, global, local, NULL);
    clReleaseKernel(k);
    return st;
}

/* Waits for the last GEMM and finishes the in-order queue (covering the kernels after it), so
 * the call returns with its outputs written; folds a wait error into st. */
static clcnn_status finish(clcnn_device *dev, const char *op, clcnn_status st, cl_event last)
{
    cl_int err = last != NULL ? clWaitForEvents(1, &last) : CL_SUCCESS;
    const char *call = "clWaitForEvents";
    cl_int finish_err = clFinish(dev->compute);
    if (err == CL_SUCCESS) {
        err = finish_err;
        call = "clFinish";
    }
    if (last != NULL)
        clReleaseEvent(last);
    if (st == CLCNN_OK && err != CL_SUCCESS)
        st = CLCNN_CL_ERR(err, "%s: %s (execution)", op, call);
    return st;
}

clcnn_status clcnn_linear_forward(clcnn_device *device, const clcnn_tensor *x,
                                  const clcnn_tensor *w, const clcnn_tensor *b, clcnn_tensor *y)
{
    static const char op[] = "linear_forward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(clcnn__check_tensor(x, device, op, "input x"));
    CLCNN_TRY(clcnn__check_tensor(w, device, op, "weight w"));
    CLCNN_TRY(clcnn__check_tensor(y, device, op, "output y"));
    if (b != NULL)
        CLCNN_TRY(clcnn__check_tensor(b, device, op, "bias b"));
    linear_dims d;
    CLCNN_TRY(shape_dims(clcnn_tensor_shape(x), clcnn_tensor_shape(w), op, &d));
    CLCNN_TRY(check_shape(y, (clcnn_shape){d.n, d.out, 1, 1}, op, "output y"));
    if (b != NULL)
        CLCNN_TRY(check_count(b, d.out, op, "bias b"));
    const clcnn_tensor *inputs[] = {x, w, b};
    CLCNN_TRY(check_no_alias(y, inputs, 3, op, "output y"));

    cl_event last = NULL;
    /* y (n x out) = x (n x in) * W^T (W is out x in). */
    clcnn_status st =
        sgemm(device, op, false, true, d.n, d.out, d.in, clcnn_tensor_buffer(x), d.in,
              clcnn_tensor_buffer(w), d.in, 0.0f, clcnn_tensor_buffer(y), d.out, &last);
    if (st == CLCNN_OK && b != NULL)
        st = bias_kernel(device, op, true, d.n, d.out, clcnn_tensor_buffer(y),
                         clcnn_tensor_buffer(b), false);
    st = finish(device, op, st, last);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(y);
    return st;
}

clcnn_status clcnn_linear_backward(clcnn_device *device, const clcnn_tensor *x,
                                   const clcnn_tensor *w, const clcnn_tensor *dy, bool accumulate,
                                   clcnn_tensor *dx, clcnn_tensor *dw, clcnn_tensor *db)
{
    static const char op[] = "linear_backward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(clcnn__check_tensor(x, device, op, "input x"));
    CLCNN_TRY(clcnn__check_tensor(w, device, op, "weight w"));
    CLCNN_TRY(clcnn__check_tensor(dy, device, op, "output gradient dy"));
    if (dx != NULL)
        CLCNN_TRY(clcnn__check_tensor(dx, device, op, "input gradient dx"));
    if (dw != NULL)
        CLCNN_TRY(clcnn__check_tensor(dw, device, op, "weight gradient dw"));
    if (db != NULL)
        CLCNN_TRY(clcnn__check_tensor(db, device, op, "bias gradient db"));
    linear_dims d;
    CLCNN_TRY(shape_dims(clcnn_tensor_shape(x), clcnn_tensor_shape(w), op, &d));
    CLCNN_TRY(check_shape(dy, (clcnn_shape){d.n, d.out, 1, 1}, op, "output gradient dy"));
    if (dx != NULL)
        CLCNN_TRY(check_shape(dx, clcnn_tensor_shape(x), op, "input gradient dx"));
    if (dw != NULL)
        CLCNN_TRY(check_shape(dw, clcnn_tensor_shape(w), op, "weight gradient dw"));
    if (db != NULL)
        CLCNN_TRY(check_count(db, d.out, op, "bias gradient db"));
    const clcnn_tensor *others[] = {x, w, dy, dx, dw, db};
    CLCNN_TRY(check_no_alias(dx, others, 3, op, "input gradient dx"));
    CLCNN_TRY(check_no_alias(dw, others, 4, op, "weight gradient dw"));
    CLCNN_TRY(check_no_alias(db, others, 5, op, "bias gradient db"));

    cl_event last = NULL;
    clcnn_status st = CLCNN_OK;
    /* dx (n x in) = dy (n x out) * W (out x in). */
    if (dx != NULL)
        st = sgemm(device, op, false, false, d.n, d.in, d.out, clcnn_tensor_buffer(dy), d.out,
                   clcnn_tensor_buffer(w), d.in, 0.0f, clcnn_tensor_buffer(dx), d.in, &last);
    /* dW (out x in) = dy^T (out x n) * x (n x in), plus dW with accumulate. */
    if (st == CLCNN_OK && dw != NULL)
        st = sgemm(device, op, true, false, d.out, d.in, d.n, clcnn_tensor_buffer(dy), d.out,
                   clcnn_tensor_buffer(x), d.in, accumulate ? 1.0f : 0.0f, clcnn_tensor_buffer(dw),
                   d.in, &last);
    if (st == CLCNN_OK && db != NULL)
        st = bias_kernel(device, op, false, d.n, d.out, clcnn_tensor_buffer(dy),
                         clcnn_tensor_buffer(db), accumulate);
    st = finish(device, op, st, last);
    if (st == CLCNN_OK) {
        clcnn_tensor_touch(dx);
        clcnn_tensor_touch(dw);
        clcnn_tensor_touch(db);
    }
    return st;
}
