/* Element-wise activations forward and backward: parameter and shape checks and the launch of
 * the kind's kernel in kernels/cl/act.cl. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clcnn/act.h"
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

#define ACT_SOURCE "act.cl"
#define ACT_VW 8 /* elements per work-item, as in kernels/cl/act.cl */
#define ACT_WG 64

_Static_assert(CLCNN_ACT_KIND_COUNT == 5, "kernels/cl/act.cl has kernels for five kinds");

clcnn_act_params clcnn_act_params_default(clcnn_act_kind kind)
{
    clcnn_act_params p = {kind, 0.0f};
    switch (kind) {
#define KIND_ALPHA_(name, token, value, dflt)                                                      \
    case CLCNN_ACT_##name:                                                                         \
        p.alpha = dflt;                                                                            \
        break;
        CLCNN_ACT_KIND_LIST(KIND_ALPHA_)
#undef KIND_ALPHA_
    default:
        break;
    }
    return p;
}

const char *clcnn_act_kind_name(clcnn_act_kind kind)
{
    switch (kind) {
#define KIND_NAME_(name, token, value, alpha)                                                      \
    case CLCNN_ACT_##name:                                                                         \
        return token;
        CLCNN_ACT_KIND_LIST(KIND_NAME_)
#undef KIND_NAME_
    default:
        return NULL;
    }
}

clcnn_status clcnn_act_kind_parse(const char *token, clcnn_act_kind *kind)
{
    CLCNN_FAIL_IF(token == NULL || kind == NULL, CLCNN_STATUS_INVALID_ARG,
                  "act kind: NULL argument");
#define KIND_PARSE_(name, tok, value, alpha)                                                       \
    if (strcmp(token, tok) == 0) {                                                                 \
        *kind = CLCNN_ACT_##name;                                                                  \
        return CLCNN_OK;                                                                           \
    }
    CLCNN_ACT_KIND_LIST(KIND_PARSE_)
#undef KIND_PARSE_
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "act kind: unknown kind '%s' (known: %s)", token,
                     "relu, leaky-relu, elu, sigmoid, tanh");
}

/* The kernel name stem of a kind: the token with '-' as '_'. */
static void kernel_name(clcnn_act_kind kind, const char *dir, char *buf, size_t size)
{
    const char *t = clcnn_act_kind_name(kind);
    size_t n = 0;
    n += (size_t)snprintf(buf, size, "clcnn_act_");
    for (; *t != '\0' && n + 1 < size; t++)
        buf[n++] = *t == '-' ? '_' : *t;
    buf[n] = '\0';
    snprintf(buf + n, size - n, "_%s", dir);
}

static clcnn_status check_params(const clcnn_act_params *p, const char *op)
{
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL parameters", op);
    CLCNN_FAIL_IF(clcnn_act_kind_name(p->kind) == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: unknown kind %d", op, (int)p->kind);
    CLCNN_FAIL_IF(!isfinite(p->alpha) || p->alpha < 0.0f, CLCNN_STATUS_INVALID_ARG,
                  "%s: alpha %g must be finite and >= 0", op, (double)p->alpha);
    return CLCNN_OK;
}

/* Launches the kind's kernel over n elements with the buffers, then alpha. */
static clcnn_status launch(clcnn_device *dev, const clcnn_act_params *p, const char *dir,
                           const char *op, const cl_mem *bufs, size_t nbuf, size_t count)
{
    CLCNN_FAIL_IF(count >= (size_t)UINT32_MAX - (size_t)ACT_VW * ACT_WG, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %zu elements; the kernels take fewer than 2^32", op, count);
    char name[64];
    kernel_name(p->kind, dir, name, sizeof name);
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(dev, ACT_SOURCE, NULL, name, &k));
    cl_uint n = (cl_uint)count;
    cl_float alpha = p->alpha;
    clcnn__kernel_arg kargs[5];
    size_t a = 0;
    kargs[a++] = (clcnn__kernel_arg){sizeof n, &n};
    for (size_t i = 0; i < nbuf; i++)
        kargs[a++] = (clcnn__kernel_arg){sizeof(cl_mem), &bufs[i]};
    kargs[a++] = (clcnn__kernel_arg){sizeof alpha, &alpha};
    clcnn_status st = clcnn__set_args(k, op, kargs, a);
    const size_t global[3] = {clcnn__round_up((count + ACT_VW - 1) / ACT_VW, ACT_WG), 1, 1};
    const size_t local[3] = {ACT_WG, 1, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(dev, k, op, 3, global, local, NULL);
    clReleaseKernel(k);
    return st;
}

clcnn_status clcnn_act_forward(clcnn_device *device, const clcnn_act_params *params,
                               const clcnn_tensor *x, clcnn_tensor *y)
{
    static const char op[] = "act_forward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(check_params(params, op));
    CLCNN_TRY(clcnn__check_tensor(x, device, op, "input"));
    CLCNN_TRY(clcnn__check_tensor(y, device, op, "output"));
    CLCNN_TRY(clcnn__check_same_shape(x, y, op, "input", "output"));
    const cl_mem bufs[] = {clcnn_tensor_buffer(x), clcnn_tensor_buffer(y)};
    clcnn_status st = launch(device, params, "fwd", op, bufs, 2, clcnn_tensor_count(x));
    if (st == CLCNN_OK)
        clcnn__tensor_touch(y);
    return st;
}

clcnn_status clcnn_act_backward(clcnn_device *device, const clcnn_act_params *params,
                                const clcnn_tensor *y, const clcnn_tensor *dy, clcnn_tensor *dx)
{
    static const char op[] = "act_backward";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(check_params(params, op));
    CLCNN_TRY(clcnn__check_tensor(y, device, op, "output y"));
    CLCNN_TRY(clcnn__check_tensor(dy, device, op, "output gradient dy"));
    CLCNN_TRY(clcnn__check_tensor(dx, device, op, "input gradient dx"));
    CLCNN_TRY(clcnn__check_same_shape(y, dy, op, "output y", "output gradient dy"));
    CLCNN_TRY(clcnn__check_same_shape(y, dx, op, "output y", "input gradient dx"));
    const cl_mem bufs[] = {clcnn_tensor_buffer(y), clcnn_tensor_buffer(dy),
                           clcnn_tensor_buffer(dx)};
    clcnn_status st = launch(device, params, "bwd", op, bufs, 3, clcnn_tensor_count(y));
    if (st == CLCNN_OK)
        clcnn__tensor_touch(dx);
    return st;
}
