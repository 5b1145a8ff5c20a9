/* Optimizer updates: hyper-parameter and state checks, the bias corrections (on the host, in
 * double, as PyTorch computes them) and the launch of the rule's kernel in kernels/cl/optim.cl. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clcnn/optim.h"
#include "ops_impl.h"
#include "program_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

#define OPTIM_SOURCE "optim.cl"
#define OPTIM_VW 8 /* elements per work-item, as in kernels/cl/optim.cl */
#define OPTIM_WG 64

_Static_assert(CLCNN_OPTIM_KIND_COUNT == 2, "kernels/cl/optim.cl has rules for two kinds");

clcnn_optim_config clcnn_optim_config_default(clcnn_optim_kind kind)
{
    clcnn_optim_config c = {0};
    c.kind = kind;
    c.lr = 1e-3f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    return c;
}

const char *clcnn_optim_kind_name(clcnn_optim_kind kind)
{
    switch (kind) {
#define KIND_NAME_(name, token, value, states)                                                     \
    case CLCNN_OPTIM_##name:                                                                       \
        return token;
        CLCNN_OPTIM_KIND_LIST(KIND_NAME_)
#undef KIND_NAME_
    default:
        return NULL;
    }
}

clcnn_status clcnn_optim_kind_parse(const char *token, clcnn_optim_kind *kind)
{
    CLCNN_FAIL_IF(token == NULL || kind == NULL, CLCNN_STATUS_INVALID_ARG,
                  "optim kind: NULL argument");
#define KIND_PARSE_(name, tok, value, states)                                                      \
    if (strcmp(token, tok) == 0) {                                                                 \
        *kind = CLCNN_OPTIM_##name;                                                                \
        return CLCNN_OK;                                                                           \
    }
    CLCNN_OPTIM_KIND_LIST(KIND_PARSE_)
#undef KIND_PARSE_
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "optim kind: unknown kind '%s' (known: %s)", token,
                     "sgd, adam");
}

int clcnn_optim_state_count(const clcnn_optim_config *cfg)
{
    if (cfg == NULL)
        return -1;
    switch (cfg->kind) {
    case CLCNN_OPTIM_SGD:
        return cfg->momentum != 0.0f ? 1 : 0;
    case CLCNN_OPTIM_ADAM:
        return 2;
    default:
        return -1;
    }
}

/* lo <= v (< hi, or <= hi with closed) and finite; the message names the field. */
static clcnn_status check_range(float v, double lo, double hi, bool closed, const char *op,
                                const char *what)
{
    const bool ok = isfinite(v) && (double)v >= lo && (closed ? (double)v <= hi : (double)v < hi);
    CLCNN_FAIL_IF(!ok, CLCNN_STATUS_INVALID_ARG, "%s: %s %g must be in [%g, %g%s", op, what,
                  (double)v, lo, hi, closed ? "]" : ")");
    return CLCNN_OK;
}

static clcnn_status check_config(const clcnn_optim_config *c, const char *op)
{
    CLCNN_FAIL_IF(c == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL config", op);
    CLCNN_FAIL_IF(clcnn_optim_kind_name(c->kind) == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: unknown kind %d", op, (int)c->kind);
    CLCNN_TRY(check_range(c->lr, 0.0, INFINITY, false, op, "lr"));
    CLCNN_TRY(check_range(c->weight_decay, 0.0, INFINITY, false, op, "weight_decay"));
    if (c->kind == CLCNN_OPTIM_SGD) {
        CLCNN_TRY(check_range(c->momentum, 0.0, INFINITY, false, op, "momentum"));
        CLCNN_TRY(check_range(c->dampening, 0.0, 1.0, true, op, "dampening"));
        CLCNN_FAIL_IF(c->nesterov && (c->momentum <= 0.0f || c->dampening != 0.0f),
                      CLCNN_STATUS_INVALID_ARG,
                      "%s: Nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)",
                      op, (double)c->momentum, (double)c->dampening);
    } else {
        CLCNN_TRY(check_range(c->beta1, 0.0, 1.0, false, op, "beta1"));
        CLCNN_TRY(check_range(c->beta2, 0.0, 1.0, false, op, "beta2"));
        CLCNN_TRY(check_range(c->eps, 0.0, INFINITY, false, op, "eps"));
    }
    return CLCNN_OK;
}

/* t must exist on dev and have param's shape. */
static clcnn_status check_like(const clcnn_tensor *t, const clcnn_tensor *param,
                               const clcnn_device *dev, const char *op, const char *what)
{
    CLCNN_FAIL_IF(clcnn_tensor_device(t) != dev, CLCNN_STATUS_INVALID_ARG,
                  "%s: %s lives on another device", op, what);
    clcnn_shape s = clcnn_tensor_shape(param), u = clcnn_tensor_shape(t);
    CLCNN_FAIL_IF(s.n != u.n || s.c != u.c || s.h != u.h || s.w != u.w, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %s is (%zu,%zu,%zu,%zu) but the parameter is (%zu,%zu,%zu,%zu)", op, what,
                  u.n, u.c, u.h, u.w, s.n, s.c, s.h, s.w);
    return CLCNN_OK;
}

clcnn_status clcnn_optim_step(clcnn_device *device, const clcnn_optim_config *cfg,
                              clcnn_tensor *param, const clcnn_tensor *grad, clcnn_tensor *state1,
                              clcnn_tensor *state2, uint64_t step)
{
    static const char op[] = "optim_step";
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL device", op);
    CLCNN_TRY(check_config(cfg, op));
    CLCNN_FAIL_IF(param == NULL || grad == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: NULL parameter or gradient", op);
    CLCNN_FAIL_IF(step == 0, CLCNN_STATUS_INVALID_ARG, "%s: step 0 (the first step is 1)", op);
    CLCNN_TRY(check_like(param, param, device, op, "parameter"));
    CLCNN_TRY(check_like(grad, param, device, op, "gradient"));
    const int states = clcnn_optim_state_count(cfg);
    clcnn_tensor *st_t[2] = {state1, state2};
    const char *st_name[2] = {"state1", "state2"};
    for (int i = 0; i < 2; i++) {
        CLCNN_FAIL_IF(i < states && st_t[i] == NULL, CLCNN_STATUS_INVALID_ARG,
                      "%s: %s %s needs %d state tensor%s; %s is NULL", op,
                      clcnn_optim_kind_name(cfg->kind),
                      cfg->momentum != 0.0f ? "with momentum" : "", states, states == 1 ? "" : "s",
                      st_name[i]);
        CLCNN_FAIL_IF(i >= states && st_t[i] != NULL, CLCNN_STATUS_INVALID_ARG,
                      "%s: %s takes %d state tensor%s; %s must be NULL", op,
                      clcnn_optim_kind_name(cfg->kind), states, states == 1 ? "" : "s", st_name[i]);
        if (st_t[i] != NULL)
            CLCNN_TRY(check_like(st_t[i], param, device, op, st_name[i]));
    }
    const cl_mem bufs[4] = {clcnn_tensor_buffer(param), clcnn_tensor_buffer(grad),
                            state1 != NULL ? clcnn_tensor_buffer(state1) : NULL,
                            state2 != NULL ? clcnn_tensor_buffer(state2) : NULL};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CLCNN_FAIL_IF(bufs[i] != NULL && bufs[i] == bufs[j], CLCNN_STATUS_INVALID_ARG,
                          "%s: the parameter, gradient and states must be distinct tensors", op);
    const size_t count = clcnn_tensor_count(param);
    CLCNN_FAIL_IF(count >= (size_t)UINT32_MAX - (size_t)OPTIM_VW * OPTIM_WG, CLCNN_STATUS_BAD_SHAPE,
                  "%s: %zu elements; the kernels take fewer than 2^32", op, count);

    const cl_uint n = (cl_uint)count, first = step == 1 ? 1u : 0u;
    const cl_float lr = cfg->lr, wd = cfg->weight_decay;
    cl_float4 hyper;
    cl_float2 corr;
    cl_uint flags = 0;
    clcnn__kernel_arg args[8];
    size_t nargs = 0;
    const char *name;
    args[nargs++] = (clcnn__kernel_arg){sizeof n, &n};
    args[nargs++] = (clcnn__kernel_arg){sizeof(cl_mem), &bufs[0]};
    args[nargs++] = (clcnn__kernel_arg){sizeof(cl_mem), &bufs[1]};
    if (cfg->kind == CLCNN_OPTIM_ADAM) {
        name = "clcnn_optim_adam";
        /* PyTorch: step_size = lr / (1 - beta1^t), denominator sqrt(v) / sqrt(1 - beta2^t)
         * + eps, both corrections in double. */
        const double t = (double)step;
        const double bc1 = 1.0 - pow((double)cfg->beta1, t);
        const double bc2 = 1.0 - pow((double)cfg->beta2, t);
        hyper = (cl_float4){{wd, cfg->beta1, cfg->beta2, cfg->eps}};
        corr = (cl_float2){{(cl_float)((double)cfg->lr / bc1), (cl_float)sqrt(bc2)}};
        args[nargs++] = (clcnn__kernel_arg){sizeof(cl_mem), &bufs[2]};
        args[nargs++] = (clcnn__kernel_arg){sizeof(cl_mem), &bufs[3]};
        args[nargs++] = (clcnn__kernel_arg){sizeof hyper, &hyper};
        args[nargs++] = (clcnn__kernel_arg){sizeof corr, &corr};
        args[nargs++] = (clcnn__kernel_arg){sizeof first, &first};
    } else if (states == 1) {
        name = "clcnn_optim_sgd_momentum";
        hyper = (cl_float4){{lr, wd, cfg->momentum, cfg->dampening}};
        flags = first | (cfg->nesterov ? 2u : 0u);
        args[nargs++] = (clcnn__kernel_arg){sizeof(cl_mem), &bufs[2]};
        args[nargs++] = (clcnn__kernel_arg){sizeof hyper, &hyper};
        args[nargs++] = (clcnn__kernel_arg){sizeof flags, &flags};
    } else {
        name = "clcnn_optim_sgd";
        args[nargs++] = (clcnn__kernel_arg){sizeof lr, &lr};
        args[nargs++] = (clcnn__kernel_arg){sizeof wd, &wd};
    }
    cl_kernel k;
    CLCNN_TRY(clcnn__kernel_create(device, OPTIM_SOURCE, NULL, name, &k));
    clcnn_status st = clcnn__set_args(k, op, args, nargs);
    const size_t global[3] = {clcnn__round_up((count + OPTIM_VW - 1) / OPTIM_VW, OPTIM_WG), 1, 1};
    const size_t local[3] = {OPTIM_WG, 1, 1};
    if (st == CLCNN_OK)
        st = clcnn__enqueue(device, k, op, 3, global, local, NULL);
    clReleaseKernel(k);
    if (st == CLCNN_OK) {
        clcnn__tensor_touch(param);
        clcnn_tensor_touch(state1);
        clcnn_tensor_touch(state2);
    }
    return st;
}
