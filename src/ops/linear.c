/* Fully connected forward and backward: shape checks, the GEMMs on the compute queue (CLBlast's,
 * or on CPU devices the register-blocked kernel of kernels/cl/linear.cl) and the bias kernels. */
#include <clblast_c.h>
#include <stdint.h>
#include <stdio.h>

#include "clcnn/linear.h"
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "linear_impl.h"
#include "tensor_impl.h"

#define LINEAR_SOURCE "linear.cl"
#define LINEAR_VW 8 /* columns per work-item, as in kernels/cl/linear.cl */
#define LINEAR_WG 64
#define GEMM_MR 6  /* rows per work-item of clcnn_gemm_outer */
#define GEMM_NB 64 /* columns per work-item (four float16s) */
/* Below this batch the forward runs dot products (clcnn_linear_fwd_dot): the GEMM kernel's
 * columns are the batch there, and fewer than 16 leave it on its scalar path. */
#define GEMM_SMALL_BATCH 16
#define LINEAR_DOT 4 /* outputs per work-item of clcnn_linear_fwd_dot */

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

static clcnn__linear_engine forced = CLCNN__LINEAR_AUTO;

void clcnn__linear_force_engine(clcnn__linear_engine engine)
{
    forced = engine;
}

/* CLBlast is tuned for GPUs; on POCL's CPU device its untuned kernels ran LeNet's fc1 GEMMs at
 * 3-8 GFLOP/s where clcnn_gemm_outer runs them at 37-122 (same machine, same shapes). */
static bool own_gemm(const clcnn_device *dev)
{
    if (forced != CLCNN__LINEAR_AUTO)
        return forced == CLCNN__LINEAR_OWN;
    return dev->info.type == CLCNN_DEVICE_TYPE_CPU;
}

/* One row-major SGEMM C = A op B... with the given transposes and beta, on the compute queue;
 * *last receives its event (the previous one is released). */
static clcnn_status clblast_sgemm(clcnn_device *dev, const char *op, bool ta, bool tb, size_t m,
                                  size_t n, size_t k, cl_mem a, size_t lda, cl_mem b, size_t ldb,
                                  float beta, cl_mem c, size_t ldc, cl_event *last)
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

/* C (m x n, ldc) = [C +] A' B with A'(i, j) = a[i * sam + j * sak] and B row-major (ldb), by
 * clcnn_gemm_outer. */
static clcnn_status own_sgemm(clcnn_device *dev, const char *op, size_t m, size_t n, size_t k,
                              cl_mem a, size_t sam, size_t sak, cl_mem b, size_t ldb,
                              bool accumulate, cl_mem c, size_t ldc)
{
    const cl_int M = (cl_int)m, N = (cl_int)n, K = (cl_int)k, SAM = (cl_int)sam, SAK = (cl_int)sak,
                 LDB = (cl_int)ldb, LDC = (cl_int)ldc, acc = accumulate ? 1 : 0;
    const clcnn__kernel_arg args[] = {
        {sizeof M, &M},       {sizeof N, &N},     {sizeof K, &K},       {sizeof(cl_mem), &a},
        {sizeof SAM, &SAM},   {sizeof SAK, &SAK}, {sizeof(cl_mem), &b}, {sizeof LDB, &LDB},
        {sizeof(cl_mem), &c}, {sizeof LDC, &LDC}, {sizeof acc, &acc}};
    /* One work-item per work-group: the blocking is explicit, nothing for the device to
     * vectorize across work-items. */
    const size_t global[2] = {(m + GEMM_MR - 1) / GEMM_MR, (n + GEMM_NB - 1) / GEMM_NB};
    const size_t local[2] = {1, 1};
    return clcnn__launch(dev, LINEAR_SOURCE, "clcnn_gemm_outer", op, args,
                         sizeof args / sizeof args[0], 2, global, local);
}

/* out (cols x rows) = in (rows x cols)^T. */
static clcnn_status transpose(clcnn_device *dev, const char *op, size_t rows, size_t cols,
                              cl_mem in, cl_mem out)
{
    const cl_uint r = (cl_uint)rows, c = (cl_uint)cols;
    const clcnn__kernel_arg args[] = {
        {sizeof r, &r}, {sizeof c, &c}, {sizeof(cl_mem), &in}, {sizeof(cl_mem), &out}};
    const size_t global[2] = {clcnn__round_up(cols, 16), clcnn__round_up(rows, 4)};
    const size_t local[2] = {16, 4};
    return clcnn__launch(dev, LINEAR_SOURCE, "clcnn_transpose", op, args, 4, 2, global, local);
}

static clcnn_status scratch(clcnn_device *dev, const char *op, size_t floats, cl_mem *buf)
{
    cl_int err;
    *buf = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, floats * sizeof(float), NULL, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clCreateBuffer (%zu bytes of scratch)", op,
                            floats * sizeof(float));
    return CLCNN_OK;
}

/* y = x W^T by dot products, for batches too small to fill the GEMM kernel's columns. */
static clcnn_status forward_dot(clcnn_device *dev, const char *op, linear_dims d, cl_mem x,
                                cl_mem w, cl_mem y)
{
    const cl_int n = (cl_int)d.n, in = (cl_int)d.in, out = (cl_int)d.out;
    const clcnn__kernel_arg args[] = {{sizeof n, &n},       {sizeof in, &in},
                                      {sizeof out, &out},   {sizeof(cl_mem), &x},
                                      {sizeof(cl_mem), &w}, {sizeof(cl_mem), &y}};
    const size_t global[2] = {(d.out + LINEAR_DOT - 1) / LINEAR_DOT, d.n};
    const size_t local[2] = {1, 1};
    return clcnn__launch(dev, LINEAR_SOURCE, "clcnn_linear_fwd_dot", op, args, 6, 2, global, local);
}

/* y (n x out) = x (n x in) W^T. The own kernel wants B contiguous along its columns: it computes
 * y^T (out x n) = W (out x in) x^T, with x^T and y^T in scratch buffers. */
static clcnn_status forward_gemm(clcnn_device *dev, const char *op, linear_dims d, cl_mem x,
                                 cl_mem w, cl_mem y, cl_event *last)
{
    if (!own_gemm(dev))
        return clblast_sgemm(dev, op, false, true, d.n, d.out, d.in, x, d.in, w, d.in, 0.0f, y,
                             d.out, last);
    if (d.n < GEMM_SMALL_BATCH)
        return forward_dot(dev, op, d, x, w, y);
    cl_mem xt = NULL, yt = NULL;
    clcnn_status st = scratch(dev, op, d.n * d.in, &xt);
    if (st == CLCNN_OK)
        st = scratch(dev, op, d.n * d.out, &yt);
    if (st == CLCNN_OK)
        st = transpose(dev, op, d.n, d.in, x, xt);
    if (st == CLCNN_OK)
        st = own_sgemm(dev, op, d.out, d.n, d.in, w, d.in, 1, xt, d.n, false, yt, d.n);
    if (st == CLCNN_OK)
        st = transpose(dev, op, d.out, d.n, yt, y);
    /* Released while the kernels may still run: OpenCL keeps them until those complete. */
    if (xt != NULL)
        clReleaseMemObject(xt);
    if (yt != NULL)
        clReleaseMemObject(yt);
    return st;
}

/* Enqueues a bias kernel over a rows x cols matrix. */
static clcnn_status bias_kernel(clcnn_device *dev, const char *op, bool forward, size_t rows,
                                size_t cols, cl_mem mat, cl_mem bias, bool accumulate)
{
    const cl_uint r = (cl_uint)rows, c = (cl_uint)cols, acc = accumulate ? 1u : 0u;
    const clcnn__kernel_arg args[] = {{sizeof r, &r},
                                      {sizeof c, &c},
                                      {sizeof(cl_mem), &mat},
                                      {sizeof(cl_mem), &bias},
                                      {sizeof acc, &acc}};
    const size_t global[2] = {clcnn__round_up((cols + LINEAR_VW - 1) / LINEAR_VW, LINEAR_WG),
                              forward ? rows : 1};
    const size_t local[2] = {LINEAR_WG, 1};
    return clcnn__launch(dev, LINEAR_SOURCE,
                         forward ? "clcnn_linear_bias_fwd" : "clcnn_linear_bias_bwd", op, args,
                         forward ? 4 : 5, 2, global, local);
}

/* Releases the last GEMM's event; the enqueued work goes on without the host (clcnn__enqueue). */
static clcnn_status finish(clcnn_status st, cl_event last)
{
    if (last != NULL)
        clReleaseEvent(last);
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
    clcnn_status st = forward_gemm(device, op, d, clcnn_tensor_buffer(x), clcnn_tensor_buffer(w),
                                   clcnn_tensor_buffer(y), &last);
    if (st == CLCNN_OK && b != NULL)
        st = bias_kernel(device, op, true, d.n, d.out, clcnn_tensor_buffer(y),
                         clcnn_tensor_buffer(b), false);
    st = finish(st, last);
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
    const bool own = own_gemm(device);
    cl_mem bx = clcnn_tensor_buffer(x), bw = clcnn_tensor_buffer(w), bdy = clcnn_tensor_buffer(dy);
    if (dx != NULL && own)
        st = own_sgemm(device, op, d.n, d.in, d.out, bdy, d.out, 1, bw, d.in, false,
                       clcnn_tensor_buffer(dx), d.in);
    else if (dx != NULL)
        st = clblast_sgemm(device, op, false, false, d.n, d.in, d.out, bdy, d.out, bw, d.in, 0.0f,
                           clcnn_tensor_buffer(dx), d.in, &last);
    /* dW (out x in) = dy^T (out x n) * x (n x in), plus dW with accumulate. */
    if (st == CLCNN_OK && dw != NULL && own)
        st = own_sgemm(device, op, d.out, d.in, d.n, bdy, 1, d.out, bx, d.in, accumulate,
                       clcnn_tensor_buffer(dw), d.in);
    else if (st == CLCNN_OK && dw != NULL)
        st = clblast_sgemm(device, op, true, false, d.out, d.in, d.n, bdy, d.out, bx, d.in,
                           accumulate ? 1.0f : 0.0f, clcnn_tensor_buffer(dw), d.in, &last);
    if (st == CLCNN_OK && db != NULL)
        st = bias_kernel(device, op, false, d.n, d.out, clcnn_tensor_buffer(dy),
                         clcnn_tensor_buffer(db), accumulate);
    st = finish(st, last);
    if (st == CLCNN_OK) {
        clcnn_tensor_touch(dx);
        clcnn_tensor_touch(dw);
        clcnn_tensor_touch(db);
    }
    return st;
}
