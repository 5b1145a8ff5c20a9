/* 2-D convolution forward: problem validation, the ordered solver registry, the choice behind
 * AUTO, and the public entry points. Each algorithm lives in its own conv2d_<solver>.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv2d_impl.h"
#include "log_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"

/* The registry, in order of preference for the heuristic. */
static const clcnn__conv_solver *const solvers[] = {
    &clcnn__conv_solver_direct,
};
#define SOLVER_COUNT (sizeof solvers / sizeof solvers[0])

clcnn_conv_params clcnn_conv_params_default(void)
{
    clcnn_conv_params p = {0};
    p.stride_h = p.stride_w = 1;
    p.dilation_h = p.dilation_w = 1;
    p.groups = 1;
    p.mode = CLCNN_CONV_CROSS_CORRELATION;
    return p;
}

const char *clcnn_conv_algo_name(clcnn_conv_algo algo)
{
    switch (algo) {
#define ALGO_NAME_(name, token, id)                                                                \
    case CLCNN_CONV_ALGO_##name:                                                                   \
        return token;
        CLCNN_CONV_ALGO_LIST(ALGO_NAME_)
#undef ALGO_NAME_
    default:
        return NULL;
    }
}

clcnn_status clcnn_conv_algo_parse(const char *token, clcnn_conv_algo *algo)
{
    CLCNN_FAIL_IF(token == NULL || algo == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv algo: NULL argument");
#define ALGO_PARSE_(name, tok, id)                                                                 \
    if (strcmp(token, tok) == 0) {                                                                 \
        *algo = CLCNN_CONV_ALGO_##name;                                                            \
        return CLCNN_OK;                                                                           \
    }
    CLCNN_CONV_ALGO_LIST(ALGO_PARSE_)
#undef ALGO_PARSE_
    char known[256] = "";
#define ALGO_LIST_(name, tok, id)                                                                  \
    strncat(known, known[0] ? ", " tok : tok, sizeof known - strlen(known) - 1);
    CLCNN_CONV_ALGO_LIST(ALGO_LIST_)
#undef ALGO_LIST_
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "conv algo: unknown algorithm '%s' (known: %s)",
                     token, known);
}

static const clcnn__conv_solver *find_solver(clcnn_conv_algo algo)
{
    for (size_t i = 0; i < SOLVER_COUNT; i++)
        if (solvers[i]->algo == algo)
            return solvers[i];
    return NULL;
}

double clcnn_conv_algo_tolerance(clcnn_conv_algo algo)
{
    const clcnn__conv_solver *s = find_solver(algo);
    return s != NULL ? s->tolerance : -1.0;
}

/* Output extent along one axis, or 0 when the (dilated) kernel does not fit. */
static size_t out_extent(size_t in, size_t pad, size_t k, size_t stride, size_t dil)
{
    size_t span = dil * (k - 1) + 1;
    size_t padded = in + 2 * pad;
    return padded < span ? 0 : (padded - span) / stride + 1;
}

static clcnn_status make_problem(clcnn_shape x, clcnn_shape w, const clcnn_conv_params *p,
                                 clcnn__conv_problem *pb)
{
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL parameters");
    CLCNN_FAIL_IF(p->stride_h == 0 || p->stride_w == 0 || p->dilation_h == 0 ||
                      p->dilation_w == 0 || p->groups == 0,
                  CLCNN_STATUS_INVALID_ARG,
                  "conv2d: stride %zux%zu, dilation %zux%zu and groups %zu must all be >= 1",
                  p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->groups);
    CLCNN_FAIL_IF(p->mode != CLCNN_CONV_CROSS_CORRELATION && p->mode != CLCNN_CONV_CONVOLUTION,
                  CLCNN_STATUS_INVALID_ARG, "conv2d: unknown mode %d", (int)p->mode);
    size_t count;
    CLCNN_TRY(clcnn_shape_count(x, &count));
    CLCNN_TRY(clcnn_shape_count(w, &count));
    CLCNN_FAIL_IF(x.c % p->groups != 0 || w.n % p->groups != 0, CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: groups %zu must divide the input channels C=%zu and the output "
                  "channels K=%zu",
                  p->groups, x.c, w.n);
    CLCNN_FAIL_IF(w.c != x.c / p->groups, CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: weight (%zu,%zu,%zu,%zu) has %zu input channels; input "
                  "(%zu,%zu,%zu,%zu) with groups %zu needs C/groups = %zu",
                  w.n, w.c, w.h, w.w, w.c, x.n, x.c, x.h, x.w, p->groups, x.c / p->groups);
    /* Keep every extent within what the arithmetic below can hold. */
    const size_t big = (size_t)1 << 30;
    CLCNN_FAIL_IF(p->pad_h >= big || p->pad_w >= big || p->stride_h >= big || p->stride_w >= big ||
                      p->dilation_h >= big || p->dilation_w >= big || x.h >= big || x.w >= big ||
                      w.h >= big || w.w >= big,
                  CLCNN_STATUS_BAD_SHAPE, "conv2d: a size or parameter is 2^30 or more");
    size_t ho = out_extent(x.h, p->pad_h, w.h, p->stride_h, p->dilation_h);
    size_t wo = out_extent(x.w, p->pad_w, w.w, p->stride_w, p->dilation_w);
    CLCNN_FAIL_IF(ho == 0 || wo == 0, CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: empty output: input %zux%zu padded by %zu,%zu is smaller than the "
                  "kernel %zux%zu dilated by %zu,%zu (span %zux%zu)",
                  x.h, x.w, p->pad_h, p->pad_w, w.h, w.w, p->dilation_h, p->dilation_w,
                  p->dilation_h * (w.h - 1) + 1, p->dilation_w * (w.w - 1) + 1);
    pb->x = x;
    pb->w = w;
    pb->y = (clcnn_shape){x.n, w.n, ho, wo};
    pb->p = *p;
    pb->cg = x.c / p->groups;
    pb->kg = w.n / p->groups;
    CLCNN_TRY(clcnn_shape_count(pb->y, &count));
    return CLCNN_OK;
}

clcnn_status clcnn_conv2d_output_shape(clcnn_shape input, clcnn_shape weight,
                                       const clcnn_conv_params *params, clcnn_shape *output)
{
    CLCNN_FAIL_IF(output == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL output shape");
    clcnn__conv_problem pb;
    CLCNN_TRY(make_problem(input, weight, params, &pb));
    *output = pb.y;
    return CLCNN_OK;
}

/* The heuristic behind AUTO: the first applicable solver in registry order. The tuning
 * database will be consulted first once it exists. */
static const clcnn__conv_solver *choose(const clcnn__conv_problem *pb, const clcnn_device *dev)
{
    for (size_t i = 0; i < SOLVER_COUNT; i++) {
        const char *why = NULL;
        if (solvers[i]->applicable(pb, dev, &why))
            return solvers[i];
        CLCNN_TRACE("conv2d", "solver %s not applicable: %s", solvers[i]->name, why);
    }
    return NULL;
}

static clcnn_status resolve(const clcnn__conv_problem *pb, const clcnn_device *dev,
                            clcnn_conv_algo algo, const clcnn__conv_solver **out)
{
    const clcnn__conv_solver *s;
    if (algo == CLCNN_CONV_ALGO_AUTO) {
        s = choose(pb, dev);
        CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_UNSUPPORTED,
                      "conv2d: no solver can run this problem");
    } else {
        s = find_solver(algo);
        CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: unknown algorithm %d",
                      (int)algo);
        const char *why = "";
        CLCNN_FAIL_IF(!s->applicable(pb, dev, &why), CLCNN_STATUS_UNSUPPORTED,
                      "conv2d: solver %s cannot run input (%zu,%zu,%zu,%zu) weight "
                      "(%zu,%zu,%zu,%zu): %s",
                      s->name, pb->x.n, pb->x.c, pb->x.h, pb->x.w, pb->w.n, pb->w.c, pb->w.h,
                      pb->w.w, why);
    }
    *out = s;
    return CLCNN_OK;
}

bool clcnn_conv2d_applicable(const clcnn_device *device, clcnn_shape input, clcnn_shape weight,
                             const clcnn_conv_params *params, clcnn_conv_algo algo,
                             const char **reason)
{
    const char *why = "invalid problem or algorithm";
    clcnn__conv_problem pb;
    const clcnn__conv_solver *s = NULL;
    bool ok = false;
    if (device != NULL && make_problem(input, weight, params, &pb) == CLCNN_OK) {
        if (algo == CLCNN_CONV_ALGO_AUTO)
            ok = true;
        else if ((s = find_solver(algo)) != NULL)
            ok = s->applicable(&pb, device, &why);
    }
    clcnn_clear_error();
    if (!ok && reason != NULL)
        *reason = why;
    return ok;
}

clcnn_status clcnn_conv2d_workspace_size(const clcnn_device *device, clcnn_shape input,
                                         clcnn_shape weight, const clcnn_conv_params *params,
                                         clcnn_conv_algo algo, size_t *bytes)
{
    CLCNN_FAIL_IF(device == NULL || bytes == NULL, CLCNN_STATUS_INVALID_ARG,
                  "conv2d_workspace_size: NULL argument");
    clcnn__conv_problem pb;
    CLCNN_TRY(make_problem(input, weight, params, &pb));
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&pb, device, algo, &s));
    *bytes = s->workspace_size != NULL ? s->workspace_size(&pb, device) : 0;
    return CLCNN_OK;
}

static clcnn_status check_tensor(const clcnn_tensor *t, const clcnn_device *dev, const char *what)
{
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL %s", what);
    CLCNN_FAIL_IF(clcnn_tensor_device(t) != dev, CLCNN_STATUS_INVALID_ARG,
                  "conv2d: %s lives on another device", what);
    return CLCNN_OK;
}

clcnn_status clcnn_conv2d_forward(clcnn_device *device, const clcnn_tensor *x,
                                  const clcnn_tensor *w, const clcnn_tensor *bias,
                                  const clcnn_conv_params *params, clcnn_conv_algo algo,
                                  cl_mem workspace, size_t workspace_bytes, clcnn_tensor *y)
{
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "conv2d: NULL device");
    CLCNN_TRY(check_tensor(x, device, "input"));
    CLCNN_TRY(check_tensor(w, device, "weight"));
    CLCNN_TRY(check_tensor(y, device, "output"));
    clcnn__conv_problem pb;
    CLCNN_TRY(make_problem(clcnn_tensor_shape(x), clcnn_tensor_shape(w), params, &pb));
    clcnn_shape ys = clcnn_tensor_shape(y);
    CLCNN_FAIL_IF(ys.n != pb.y.n || ys.c != pb.y.c || ys.h != pb.y.h || ys.w != pb.y.w,
                  CLCNN_STATUS_BAD_SHAPE,
                  "conv2d: output tensor is (%zu,%zu,%zu,%zu) but input (%zu,%zu,%zu,%zu) and "
                  "weight (%zu,%zu,%zu,%zu) give (%zu,%zu,%zu,%zu)",
                  ys.n, ys.c, ys.h, ys.w, pb.x.n, pb.x.c, pb.x.h, pb.x.w, pb.w.n, pb.w.c, pb.w.h,
                  pb.w.w, pb.y.n, pb.y.c, pb.y.h, pb.y.w);
    if (bias != NULL) {
        CLCNN_TRY(check_tensor(bias, device, "bias"));
        CLCNN_FAIL_IF(clcnn_tensor_count(bias) != pb.w.n, CLCNN_STATUS_BAD_SHAPE,
                      "conv2d: bias has %zu elements, the output has K=%zu channels",
                      clcnn_tensor_count(bias), pb.w.n);
    }
    const clcnn__conv_solver *s = NULL;
    CLCNN_TRY(resolve(&pb, device, algo, &s));
    size_t need = s->workspace_size != NULL ? s->workspace_size(&pb, device) : 0;
    cl_mem own = NULL;
    if (need > 0 && workspace == NULL) {
        cl_int err;
        own = clCreateBuffer(device->context, CL_MEM_READ_WRITE, need, NULL, &err);
        if (err != CL_SUCCESS)
            return CLCNN_CL_ERR(err, "conv2d: solver %s: clCreateBuffer(workspace %zu bytes)",
                                s->name, need);
        workspace = own;
    } else {
        CLCNN_FAIL_IF(need > workspace_bytes, CLCNN_STATUS_INVALID_ARG,
                      "conv2d: solver %s needs %zu bytes of workspace, %zu given", s->name, need,
                      workspace_bytes);
    }
    clcnn__conv_args args = {clcnn_tensor_buffer(x), clcnn_tensor_buffer(w),
                             bias != NULL ? clcnn_tensor_buffer(bias) : NULL,
                             clcnn_tensor_buffer(y)};
    clcnn_status st = s->run(device, &pb, &args, workspace);
    if (st == CLCNN_OK)
        clcnn__tensor_touch(y);
    if (own != NULL)
        clReleaseMemObject(own);
    return st;
}

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

clcnn_status clcnn__launch_wait(clcnn_device *dev, cl_kernel kernel, const char *what,
                                const size_t global[3], const size_t *local)
{
    cl_event done;
    cl_int err =
        clEnqueueNDRangeKernel(dev->compute, kernel, 3, NULL, global, local, 0, NULL, &done);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: clEnqueueNDRangeKernel (global %zux%zux%zu)", what, global[0],
                            global[1], global[2]);
    err = clWaitForEvents(1, &done);
    clReleaseEvent(done);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "%s: kernel execution", what);
    return CLCNN_OK;
}
