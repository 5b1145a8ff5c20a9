/* The sequential network: parameters with PyTorch's default initialization, activations sized
 * for the current batch, forward, softmax cross-entropy, backward and optimizer steps, with
 * frozen layers skipped (and nothing computed below the last trainable layer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/act.h"
#include "clcnn/conv.h"
#include "clcnn/dropout.h"
#include "clcnn/linear.h"
#include "clcnn/loss.h"
#include "clcnn/net.h"
#include "clcnn/pool.h"
#include "clcnn/weights.h"
#include "device_impl.h"
#include "net_impl.h"
#include "status_impl.h"

enum { WEIGHT, BIAS };

typedef struct param {
    char name[CLCNN_LAYER_NAME_MAX + 8];
    clcnn_tensor *value, *grad, *state[2];
    /* Updates this parameter has had: its optimizer step, counted per parameter as PyTorch's
     * optimizers count it, so a layer unfrozen late starts from fresh state at step 1. */
    uint64_t steps;
} param;

typedef struct layer {
    clcnn_layer_desc desc;
    clcnn_shape out;        /* per-image output shape (n = 1) */
    clcnn_conv_params conv; /* CONV: with relu fused when the activation is ReLU */
    clcnn_pool_params pool; /* POOL and ADAPTIVE_AVGPOOL */
    bool separate_act;      /* CONV/FC: an activation applied in place after the op */
    bool frozen;
    int params; /* 0 or 2 (weight, bias) or 1 (weight only) */
    param p[2];
    clcnn_tensor *y, *dy; /* output and its gradient, for the current batch */
    cl_mem indices;       /* MAX pooling's argmax, training only */
    clcnn_tensor *mask;   /* DROPOUT's keep mask, training only */
} layer;

struct clcnn_net {
    clcnn_device *dev;
    size_t count;
    layer *layers;
    uint64_t seed, steps;
    size_t batch; /* what the activations are sized for; 0 = none yet */
    cl_mem workspace;
    size_t workspace_bytes;
    int optimizer_states;        /* -1 until the first step allocates them */
    clcnn__net_observer observe; /* called after each stage of a batch (tracing); may be NULL */
    void *observe_user;
    clcnn_tensor *loss; /* clcnn_net_train_step's mean loss, read after the step; lazily made */
};

/* ---- building ------------------------------------------------------------------------------ */

static clcnn_status layer_shape(const clcnn_layer_desc *d, clcnn_shape in, layer *l)
{
    l->conv = d->conv;
    switch (d->kind) {
    case CLCNN_LAYER_INPUT:
        l->out = (clcnn_shape){1, d->channels, d->height, d->width};
        return CLCNN_OK;
    case CLCNN_LAYER_CONV:
        l->conv.relu = d->has_act && d->act.kind == CLCNN_ACT_RELU;
        l->separate_act = d->has_act && !l->conv.relu;
        return clcnn_conv2d_output_shape(
            in, (clcnn_shape){d->outputs, in.c / d->conv.groups, d->kernel_h, d->kernel_w},
            &l->conv, &l->out);
    case CLCNN_LAYER_POOL:
        l->pool = d->pool;
        return clcnn_pool_output_shape(in, &l->pool, &l->out);
    case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
        /* Equal windows only: PyTorch's adaptive pooling is then an ordinary average pool. */
        CLCNN_FAIL_IF(in.h % d->height != 0 || in.w % d->width != 0, CLCNN_STATUS_UNSUPPORTED,
                      "adaptive pooling from %zux%zu to %zux%zu needs whole windows", in.h, in.w,
                      d->height, d->width);
        l->pool = clcnn_pool_params_default(CLCNN_POOL_AVG);
        l->pool.window_h = l->pool.stride_h = in.h / d->height;
        l->pool.window_w = l->pool.stride_w = in.w / d->width;
        return clcnn_pool_output_shape(in, &l->pool, &l->out);
    case CLCNN_LAYER_FC:
        l->separate_act = d->has_act;
        l->out = (clcnn_shape){1, d->outputs, 1, 1};
        return CLCNN_OK;
    default: /* activation, dropout, softmax keep the shape */
        l->out = in;
        return CLCNN_OK;
    }
}

/* SplitMix64 stream: parameter i of a net with seed s draws from state mix(s, i). */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static clcnn_status make_param(clcnn_net *net, layer *l, int which, clcnn_shape shape,
                               size_t fan_in, uint64_t index)
{
    param *p = &l->p[which];
    snprintf(p->name, sizeof p->name, "%s.%s", l->desc.name, which == WEIGHT ? "weight" : "bias");
    CLCNN_TRY(clcnn_tensor_create(net->dev, shape, &p->value));
    CLCNN_TRY(clcnn_tensor_create(net->dev, shape, &p->grad));
    size_t n = clcnn_tensor_count(p->value);
    float *host = malloc(n * sizeof *host);
    CLCNN_FAIL_IF(host == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "net: out of host memory");
    /* PyTorch's default for Conv2d and Linear: kaiming_uniform_(a=sqrt(5)) for the weight,
     * which is uniform in +-1/sqrt(fan_in), and the same bound for the bias. */
    const double bound = 1.0 / sqrt((double)fan_in);
    uint64_t state = net->seed ^ (index * 0xd1b54a32d192ed03ull);
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next_random(&state) >> 11) * (1.0 / 9007199254740992.0);
        host[i] = (float)((2.0 * u - 1.0) * bound);
    }
    clcnn_status st = clcnn_tensor_upload(p->value, host, n);
    free(host);
    l->params = which + 1;
    return st;
}

static void release_activations(clcnn_net *net)
{
    for (size_t i = 0; i < net->count; i++) {
        layer *l = &net->layers[i];
        clcnn_tensor_release(l->y);
        clcnn_tensor_release(l->dy);
        clcnn_tensor_release(l->mask);
        if (l->indices != NULL)
            clReleaseMemObject(l->indices);
        l->y = l->dy = l->mask = NULL;
        l->indices = NULL;
    }
    if (net->workspace != NULL)
        clReleaseMemObject(net->workspace);
    net->workspace = NULL;
    net->workspace_bytes = 0;
    net->batch = 0;
}

void clcnn_net_release(clcnn_net *net)
{
    if (net == NULL)
        return;
    release_activations(net);
    clcnn_tensor_release(net->loss);
    for (size_t i = 0; i < net->count; i++) {
        for (int k = 0; k < 2; k++) {
            param *p = &net->layers[i].p[k];
            clcnn_tensor_release(p->value);
            clcnn_tensor_release(p->grad);
            clcnn_tensor_release(p->state[0]);
            clcnn_tensor_release(p->state[1]);
        }
    }
    free(net->layers);
    free(net);
}

static clcnn_status build(clcnn_net *net, const clcnn_model_desc *model)
{
    clcnn_shape in = {1, 0, 0, 0};
    uint64_t index = 0;
    for (size_t i = 0; i < model->count; i++) {
        layer *l = &net->layers[i];
        l->desc = model->layers[i];
        l->frozen = l->desc.frozen;
        clcnn_status st = layer_shape(&l->desc, in, l);
        if (st != CLCNN_OK) {
            clcnn__error_prefix("net: layer %s (line %u)", l->desc.name, l->desc.line);
            return st;
        }
        const clcnn_layer_desc *d = &l->desc;
        if (d->kind == CLCNN_LAYER_CONV) {
            size_t cg = in.c / d->conv.groups;
            clcnn_shape ws = {d->outputs, cg, d->kernel_h, d->kernel_w};
            CLCNN_TRY(make_param(net, l, WEIGHT, ws, cg * d->kernel_h * d->kernel_w, index++));
            if (d->bias)
                CLCNN_TRY(make_param(net, l, BIAS, (clcnn_shape){1, d->outputs, 1, 1},
                                     cg * d->kernel_h * d->kernel_w, index++));
        } else if (d->kind == CLCNN_LAYER_FC) {
            size_t fan_in = in.c * in.h * in.w;
            CLCNN_TRY(make_param(net, l, WEIGHT, (clcnn_shape){d->outputs, fan_in, 1, 1}, fan_in,
                                 index++));
            if (d->bias)
                CLCNN_TRY(
                    make_param(net, l, BIAS, (clcnn_shape){1, d->outputs, 1, 1}, fan_in, index++));
        }
        in = l->out;
    }
    return CLCNN_OK;
}

/* Refuses, before anything is allocated, a model whose parameters or largest activation per
 * image are past what the net can hold (the kernels index tensors with 32-bit integers). */
static clcnn_status check_limits(const clcnn_model_desc *model)
{
    clcnn_layer_summary *rows = NULL;
    clcnn_model_totals totals;
    if (clcnn_model_summary(model, 1, &rows, &totals) != CLCNN_OK) {
        /* A layer that does not fit its input: building says which, in the net's words. */
        clcnn_clear_error();
        return CLCNN_OK;
    }
    double largest = 0.0; /* as a double: the product of three sizes may overflow */
    size_t at = 0;
    for (size_t i = 0; i < model->count; i++) {
        double v = (double)rows[i].channels * (double)rows[i].height * (double)rows[i].width;
        if (v > largest) {
            largest = v;
            at = i;
        }
    }
    clcnn_free(rows);
    CLCNN_FAIL_IF(totals.params > CLCNN_NET_MAX_PARAMS, CLCNN_STATUS_BAD_SHAPE,
                  "net_create: the model declares %zu parameters, over the limit of %zu",
                  totals.params, (size_t)CLCNN_NET_MAX_PARAMS);
    CLCNN_FAIL_IF(largest >= (double)CLCNN_NET_MAX_ELEMENTS, CLCNN_STATUS_BAD_SHAPE,
                  "net_create: layer %s (line %u) puts out %.0f values per image, over the limit "
                  "of %zu",
                  model->layers[at].name, model->layers[at].line, largest,
                  (size_t)CLCNN_NET_MAX_ELEMENTS - 1);
    return CLCNN_OK;
}

clcnn_status clcnn_net_create(clcnn_device *device, const clcnn_model_desc *model, uint64_t seed,
                              clcnn_net **net)
{
    CLCNN_FAIL_IF(device == NULL || model == NULL || net == NULL || model->count == 0,
                  CLCNN_STATUS_INVALID_ARG, "net_create: NULL argument or empty model");
    CLCNN_FAIL_IF(model->layers[0].kind != CLCNN_LAYER_INPUT, CLCNN_STATUS_INVALID_ARG,
                  "net_create: the model does not start with an input layer");
    CLCNN_TRY(check_limits(model));
    clcnn_net *n = calloc(1, sizeof *n);
    layer *layers = calloc(model->count, sizeof *layers);
    if (n == NULL || layers == NULL) {
        free(n);
        free(layers);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "net_create: out of host memory");
    }
    n->dev = device;
    n->count = model->count;
    n->layers = layers;
    n->seed = seed;
    n->optimizer_states = -1;
    clcnn_status st = build(n, model);
    if (st != CLCNN_OK) {
        clcnn_net_release(n);
        return st;
    }
    *net = n;
    return CLCNN_OK;
}

/* ---- activations for a batch ----------------------------------------------------------------- */

static clcnn_shape batched(clcnn_shape s, size_t n)
{
    s.n = n;
    return s;
}

/* Largest workspace any convolution needs at this batch size: forward, and for training the
 * backward passes too. */
static clcnn_status workspace_need(const clcnn_net *net, size_t n, bool training, size_t *need)
{
    *need = 0;
    clcnn_shape in = net->layers[0].out;
    for (size_t i = 1; i < net->count; i++) {
        const layer *l = &net->layers[i];
        if (l->desc.kind == CLCNN_LAYER_CONV) {
            clcnn_shape x = batched(in, n), w = clcnn_tensor_shape(l->p[WEIGHT].value);
            const clcnn_conv_pass passes[3] = {CLCNN_CONV_PASS_FWD, CLCNN_CONV_PASS_BWD_DATA,
                                               CLCNN_CONV_PASS_BWD_WEIGHTS};
            for (int k = 0; k < (training ? 3 : 1); k++) {
                size_t bytes = 0;
                CLCNN_TRY(clcnn_conv2d_pass_workspace_size(net->dev, passes[k], x, w, &l->conv,
                                                           CLCNN_CONV_ALGO_AUTO, &bytes));
                if (bytes > *need)
                    *need = bytes;
            }
        }
        in = l->out;
    }
    return CLCNN_OK;
}

static clcnn_status ensure_batch(clcnn_net *net, size_t n, bool training)
{
    if (net->batch == n && (!training || net->layers[net->count - 1].dy != NULL))
        return CLCNN_OK;
    release_activations(net);
    for (size_t i = 0; i < net->count; i++) {
        layer *l = &net->layers[i];
        clcnn_shape s = batched(l->out, n);
        CLCNN_TRY(clcnn_tensor_create(net->dev, s, &l->y));
        if (training && i > 0)
            CLCNN_TRY(clcnn_tensor_create(net->dev, s, &l->dy));
        if (training && l->desc.kind == CLCNN_LAYER_POOL && l->pool.kind == CLCNN_POOL_MAX) {
            cl_int err;
            l->indices = clCreateBuffer(net->dev->context, CL_MEM_READ_WRITE,
                                        clcnn_tensor_count(l->y) * sizeof(cl_int), NULL, &err);
            if (err != CL_SUCCESS)
                return CLCNN_CL_ERR(err, "net: clCreateBuffer (pooling indices of %s)",
                                    l->desc.name);
        }
        /* The backward reads the mask instead of regenerating it: Philox-4x32-10 over LeNet's
         * 64 x 1024 dropout took 1.07 ms on POCL, reading the stored mask 0.035 ms. */
        if (training && l->desc.kind == CLCNN_LAYER_DROPOUT)
            CLCNN_TRY(clcnn_tensor_create(net->dev, s, &l->mask));
    }
    size_t need = 0;
    CLCNN_TRY(workspace_need(net, n, training, &need));
    if (need > 0) {
        cl_int err;
        net->workspace = clCreateBuffer(net->dev->context, CL_MEM_READ_WRITE, need, NULL, &err);
        if (err != CL_SUCCESS)
            return CLCNN_CL_ERR(err, "net: clCreateBuffer (workspace of %zu bytes)", need);
        net->workspace_bytes = need;
    }
    net->batch = n;
    return CLCNN_OK;
}

/* ---- forward and backward -------------------------------------------------------------------- */

static clcnn_tensor *bias_of(const layer *l)
{
    return l->params > 1 ? l->p[BIAS].value : NULL;
}

static clcnn_status copy_tensor(clcnn_net *net, const clcnn_tensor *src, clcnn_tensor *dst)
{
    cl_int err =
        clEnqueueCopyBuffer(net->dev->compute, clcnn_tensor_buffer(src), clcnn_tensor_buffer(dst),
                            0, 0, clcnn_tensor_count(src) * sizeof(float), 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "net: clEnqueueCopyBuffer");
    clcnn_tensor_touch(dst);
    return CLCNN_OK;
}

static clcnn_dropout_params dropout_of(const clcnn_net *net, const layer *l, size_t index)
{
    clcnn_dropout_params p = {l->desc.dropout,
                              net->seed ^ (net->steps * 0x9e3779b97f4a7c15ull) ^ (index << 48)};
    return p;
}

static clcnn_status layer_forward(clcnn_net *net, size_t i, bool training)
{
    layer *l = &net->layers[i];
    clcnn_tensor *x = net->layers[i - 1].y, *y = l->y;
    clcnn_device *dev = net->dev;
    switch (l->desc.kind) {
    case CLCNN_LAYER_CONV:
        CLCNN_TRY(clcnn_conv2d_forward(dev, x, l->p[WEIGHT].value, bias_of(l), &l->conv,
                                       l->desc.algo, net->workspace, net->workspace_bytes, y));
        break;
    case CLCNN_LAYER_FC:
        CLCNN_TRY(clcnn_linear_forward(dev, x, l->p[WEIGHT].value, bias_of(l), y));
        break;
    case CLCNN_LAYER_POOL:
    case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
        return clcnn_pool_forward(dev, x, &l->pool, y, training ? l->indices : NULL);
    case CLCNN_LAYER_ACT:
        return clcnn_act_forward(dev, &l->desc.act, x, y);
    case CLCNN_LAYER_DROPOUT: {
        if (!training)
            return copy_tensor(net, x, y);
        clcnn_dropout_params p = dropout_of(net, l, i);
        return clcnn_dropout_forward(dev, &p, x, y, l->mask);
    }
    case CLCNN_LAYER_SOFTMAX:
        /* Training takes the loss from the logits below instead. */
        return training ? CLCNN_OK : clcnn_softmax_forward(dev, x, y);
    default:
        return CLCNN_ERR(CLCNN_STATUS_INTERNAL, "net: layer %s has no forward", l->desc.name);
    }
    if (l->separate_act)
        CLCNN_TRY(clcnn_act_forward(dev, &l->desc.act, y, y));
    return CLCNN_OK;
}

static void observe(clcnn_net *net, const char *stage, const char *phase)
{
    if (net->observe != NULL)
        net->observe(net->observe_user, stage, phase);
}

/* Forward through every layer from the input already in layer 0's tensor. */
static clcnn_status forward(clcnn_net *net, bool training)
{
    for (size_t i = 1; i < net->count; i++) {
        clcnn_status st = layer_forward(net, i, training);
        if (st != CLCNN_OK) {
            clcnn__error_prefix("net: layer %s (line %u) forward", net->layers[i].desc.name,
                                net->layers[i].desc.line);
            return st;
        }
        observe(net, net->layers[i].desc.name, "fwd");
    }
    return CLCNN_OK;
}

clcnn_status clcnn__net_prepare(clcnn_net *net, size_t n, bool training, clcnn_tensor **input)
{
    CLCNN_TRY(ensure_batch(net, n, training));
    *input = net->layers[0].y;
    return CLCNN_OK;
}

clcnn_device *clcnn__net_device(const clcnn_net *net)
{
    return net->dev;
}

void clcnn__net_set_observer(clcnn_net *net, clcnn__net_observer fn, void *user)
{
    net->observe = fn;
    net->observe_user = user;
}

/* dx of layer i (the dy of layer i-1), or NULL when nothing below needs it. */
static clcnn_tensor *grad_below(clcnn_net *net, size_t i, size_t lowest)
{
    return i - 1 >= lowest && i > 1 ? net->layers[i - 1].dy : NULL;
}

static clcnn_status layer_backward(clcnn_net *net, size_t i, size_t lowest)
{
    layer *l = &net->layers[i];
    clcnn_device *dev = net->dev;
    clcnn_tensor *x = net->layers[i - 1].y, *dx = grad_below(net, i, lowest);
    bool train = !l->frozen && l->params > 0;
    if ((l->desc.kind == CLCNN_LAYER_CONV && l->conv.relu) || l->separate_act) {
        clcnn_act_params act = l->desc.act;
        CLCNN_TRY(clcnn_act_backward(dev, &act, l->y, l->dy, l->dy));
    }
    switch (l->desc.kind) {
    case CLCNN_LAYER_CONV: {
        clcnn_conv_params p = l->conv;
        if (train) {
            CLCNN_TRY(clcnn_conv2d_backward_weights(dev, x, l->dy, &p, CLCNN_CONV_ALGO_AUTO,
                                                    net->workspace, net->workspace_bytes,
                                                    l->p[WEIGHT].grad));
            if (l->params > 1)
                CLCNN_TRY(clcnn_conv2d_backward_bias(dev, l->dy, l->p[BIAS].grad));
        }
        if (dx != NULL)
            CLCNN_TRY(clcnn_conv2d_backward_data(dev, l->dy, l->p[WEIGHT].value, &p,
                                                 CLCNN_CONV_ALGO_AUTO, net->workspace,
                                                 net->workspace_bytes, dx));
        return CLCNN_OK;
    }
    case CLCNN_LAYER_FC:
        if (!train && dx == NULL)
            return CLCNN_OK;
        return clcnn_linear_backward(dev, x, l->p[WEIGHT].value, l->dy, false, dx,
                                     train ? l->p[WEIGHT].grad : NULL,
                                     train && l->params > 1 ? l->p[BIAS].grad : NULL);
    case CLCNN_LAYER_POOL:
    case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
        return dx == NULL ? CLCNN_OK
                          : clcnn_pool_backward(dev, x, l->y, l->dy, l->indices, &l->pool, dx);
    case CLCNN_LAYER_ACT:
        return dx == NULL ? CLCNN_OK : clcnn_act_backward(dev, &l->desc.act, l->y, l->dy, dx);
    case CLCNN_LAYER_DROPOUT: {
        if (dx == NULL)
            return CLCNN_OK;
        clcnn_dropout_params p = dropout_of(net, l, i);
        return clcnn_dropout_backward(dev, &p, l->mask, l->dy, dx);
    }
    default:
        return CLCNN_ERR(CLCNN_STATUS_INTERNAL, "net: layer %s has no backward", l->desc.name);
    }
}

static clcnn_status update(clcnn_net *net, const clcnn_optim_config *cfg)
{
    int states = clcnn_optim_state_count(cfg);
    CLCNN_FAIL_IF(states < 0, CLCNN_STATUS_INVALID_ARG, "net: unknown optimizer");
    if (states != net->optimizer_states) {
        /* A new optimizer (or the first step) starts from fresh state, as PyTorch's does. */
        for (size_t i = 0; i < net->count; i++)
            for (int k = 0; k < net->layers[i].params; k++) {
                param *p = &net->layers[i].p[k];
                p->steps = 0;
                for (int s = 0; s < 2; s++) {
                    clcnn_tensor_release(p->state[s]);
                    p->state[s] = NULL;
                    if (s < states)
                        CLCNN_TRY(clcnn_tensor_create(net->dev, clcnn_tensor_shape(p->value),
                                                      &p->state[s]));
                }
            }
        net->optimizer_states = states;
    }
    /* Counters move only with the updates they count: a step that fails before writing a
     * parameter leaves the net as it was, so calling it again gives the same bits. */
    for (size_t i = 0; i < net->count; i++) {
        layer *l = &net->layers[i];
        if (l->frozen)
            continue;
        for (int k = 0; k < l->params; k++) {
            param *p = &l->p[k];
            clcnn_status st = clcnn_optim_step(net->dev, cfg, p->value, p->grad, p->state[0],
                                               p->state[1], p->steps + 1);
            if (st != CLCNN_OK) {
                clcnn__error_prefix("net: update of %s", p->name);
                return st;
            }
            p->steps++;
        }
    }
    net->steps++;
    return CLCNN_OK;
}

clcnn_status clcnn__net_infer(clcnn_net *net, clcnn_tensor **output)
{
    CLCNN_FAIL_IF(net->batch == 0, CLCNN_STATUS_INVALID_ARG, "net: no input prepared");
    CLCNN_TRY(forward(net, false));
    *output = net->layers[net->count - 1].y;
    return CLCNN_OK;
}

clcnn_status clcnn_net_forward(clcnn_net *net, const float *images, size_t n, float *outputs)
{
    CLCNN_FAIL_IF(net == NULL || images == NULL || n == 0, CLCNN_STATUS_INVALID_ARG,
                  "net_forward: NULL argument or empty batch");
    clcnn_tensor *input, *output;
    CLCNN_TRY(clcnn__net_prepare(net, n, false, &input));
    CLCNN_TRY(clcnn_tensor_upload(input, images, clcnn_tensor_count(input)));
    CLCNN_TRY(clcnn__net_infer(net, &output));
    if (outputs == NULL)
        return clcnn_device_finish(net->dev); /* the ops only enqueued */
    return clcnn_tensor_download(output, outputs, clcnn_tensor_count(output));
}

static clcnn_status check_trainable(const clcnn_net *net, const char *op)
{
    CLCNN_FAIL_IF(net->count < 3 || net->layers[net->count - 1].desc.kind != CLCNN_LAYER_SOFTMAX,
                  CLCNN_STATUS_INVALID_ARG,
                  "%s: the model must end in softmax (the loss is softmax cross-entropy on the "
                  "layer before it)",
                  op);
    return CLCNN_OK;
}

clcnn_status clcnn__net_train(clcnn_net *net, const int32_t *labels, size_t n,
                              const clcnn_optim_config *optimizer, clcnn_tensor *loss,
                              float *loss_host, clcnn_tensor **logits_out)
{
    CLCNN_TRY(check_trainable(net, "net_train_step"));
    CLCNN_FAIL_IF(net->batch != n || net->layers[net->count - 1].dy == NULL,
                  CLCNN_STATUS_INVALID_ARG, "net: no training input of %zu images prepared", n);
    /* Nothing below the lowest trainable layer needs a gradient. */
    size_t lowest = net->count;
    for (size_t i = 1; i < net->count; i++)
        if (!net->layers[i].frozen && net->layers[i].params > 0) {
            lowest = i;
            break;
        }
    CLCNN_TRY(forward(net, true));
    size_t top = net->count - 2; /* the logits */
    layer *logits = &net->layers[top];
    CLCNN_TRY(clcnn_softmax_xent_forward(net->dev, logits->y, labels, n, loss, loss_host));
    if (logits_out != NULL) {
        /* The caller reads the logits; the gradient goes to dy, not over them. */
        *logits_out = logits->y;
    }
    CLCNN_TRY(clcnn_softmax_xent_backward(net->dev, logits->y, labels, n, logits->dy));
    observe(net, "loss", "loss");
    for (size_t i = top; i >= lowest && i >= 1; i--) {
        clcnn_status st = layer_backward(net, i, lowest);
        if (st != CLCNN_OK) {
            clcnn__error_prefix("net: layer %s (line %u) backward", net->layers[i].desc.name,
                                net->layers[i].desc.line);
            return st;
        }
        observe(net, net->layers[i].desc.name, "bwd");
    }
    CLCNN_TRY(update(net, optimizer));
    observe(net, "optimizer", "update");
    return CLCNN_OK;
}

clcnn_status clcnn_net_train_step(clcnn_net *net, const float *images, const int32_t *labels,
                                  size_t n, const clcnn_optim_config *optimizer, float *loss)
{
    CLCNN_FAIL_IF(net == NULL || images == NULL || labels == NULL || optimizer == NULL || n == 0,
                  CLCNN_STATUS_INVALID_ARG, "net_train_step: NULL argument or empty batch");
    CLCNN_TRY(check_trainable(net, "net_train_step"));
    clcnn_tensor *input;
    CLCNN_TRY(clcnn__net_prepare(net, n, true, &input));
    CLCNN_TRY(clcnn_tensor_upload(input, images, clcnn_tensor_count(input)));
    if (net->loss == NULL)
        CLCNN_TRY(clcnn_tensor_create(net->dev, (clcnn_shape){1, 1, 1, 1}, &net->loss));
    /* The loss goes to the device and is read once the whole step is enqueued: the ops do not
     * wait, so the read is the step's one wait. */
    CLCNN_TRY(clcnn__net_train(net, labels, n, optimizer, net->loss, NULL, NULL));
    float mean;
    clcnn_status st = clcnn_tensor_download(net->loss, &mean, 1);
    if (st != CLCNN_OK) {
        clcnn__error_prefix("net: the step was applied, reading its loss");
        return st;
    }
    if (loss != NULL)
        *loss = mean;
    return CLCNN_OK;
}

/* ---- parameters ------------------------------------------------------------------------------ */

void clcnn_net_shape(const clcnn_net *net, size_t *channels, size_t *height, size_t *width,
                     size_t *outputs)
{
    const clcnn_shape in = net->layers[0].out, out = net->layers[net->count - 1].out;
    if (channels != NULL)
        *channels = in.c;
    if (height != NULL)
        *height = in.h;
    if (width != NULL)
        *width = in.w;
    if (outputs != NULL)
        *outputs = out.c * out.h * out.w;
}

size_t clcnn_net_param_count(const clcnn_net *net)
{
    size_t n = 0;
    for (size_t i = 0; i < net->count; i++)
        n += (size_t)net->layers[i].params;
    return n;
}

clcnn_status clcnn_net_param(const clcnn_net *net, size_t index, const char **name,
                             clcnn_tensor **tensor, bool *frozen)
{
    CLCNN_FAIL_IF(net == NULL, CLCNN_STATUS_INVALID_ARG, "net_param: NULL net");
    for (size_t i = 0; i < net->count; i++) {
        const layer *l = &net->layers[i];
        if (index < (size_t)l->params) {
            if (name != NULL)
                *name = l->p[index].name;
            if (tensor != NULL)
                *tensor = l->p[index].value;
            if (frozen != NULL)
                *frozen = l->frozen;
            return CLCNN_OK;
        }
        index -= (size_t)l->params;
    }
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "net_param: index out of range (%zu parameters)",
                     clcnn_net_param_count(net));
}

clcnn_status clcnn_net_set_frozen(clcnn_net *net, const char *name, bool frozen)
{
    CLCNN_FAIL_IF(net == NULL || name == NULL, CLCNN_STATUS_INVALID_ARG,
                  "net_set_frozen: NULL argument");
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < net->count; i++) {
        layer *l = &net->layers[i];
        if (l->params == 0)
            continue;
        if (strcmp(l->desc.name, name) == 0) {
            l->frozen = frozen;
            return CLCNN_OK;
        }
        int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", l->desc.name);
        if (w > 0 && (size_t)w < sizeof known - used)
            used += (size_t)w;
    }
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG,
                     "net: no layer '%s' with parameters (layers with parameters: %s)", name,
                     known);
}

uint64_t clcnn_net_steps(const clcnn_net *net)
{
    return net != NULL ? net->steps : 0;
}

/* ---- weights files --------------------------------------------------------------------------- */

/* PyTorch's shapes: conv weight K x C/g x R x S, fc weight out x in, biases 1-D. */
static void file_shape(const layer *l, int k, clcnn_named_tensor *t)
{
    clcnn_shape s = clcnn_tensor_shape(l->p[k].value);
    snprintf(t->name, sizeof t->name, "%s", l->p[k].name);
    t->dims[0] = t->dims[1] = t->dims[2] = t->dims[3] = 1;
    if (k == BIAS) {
        t->rank = 1;
        t->dims[0] = s.c;
    } else if (l->desc.kind == CLCNN_LAYER_FC) {
        t->rank = 2;
        t->dims[0] = s.n;
        t->dims[1] = s.c;
    } else {
        t->rank = 4;
        t->dims[0] = s.n;
        t->dims[1] = s.c;
        t->dims[2] = s.h;
        t->dims[3] = s.w;
    }
    t->count = s.n * s.c * s.h * s.w;
}

clcnn_status clcnn_net_save_weights(const clcnn_net *net, const char *path)
{
    CLCNN_FAIL_IF(net == NULL || path == NULL, CLCNN_STATUS_INVALID_ARG,
                  "net_save_weights: NULL argument");
    size_t count = clcnn_net_param_count(net), k = 0;
    clcnn_named_tensor *t = calloc(count ? count : 1, sizeof *t);
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "net_save_weights: out of memory");
    clcnn_status st = CLCNN_OK;
    for (size_t i = 0; i < net->count && st == CLCNN_OK; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->params && st == CLCNN_OK; p++, k++) {
            file_shape(l, p, &t[k]);
            t[k].data = malloc(t[k].count * sizeof(float));
            st = t[k].data == NULL
                     ? CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "net_save_weights: out of memory")
                     : clcnn_tensor_download(l->p[p].value, t[k].data, t[k].count);
        }
    }
    if (st == CLCNN_OK)
        st = clcnn_weights_save(path, t, count, NULL);
    for (size_t i = 0; i < count; i++)
        free(t[i].data);
    free(t);
    return st;
}

/* The file name of a parameter's optimizer state s (0 or 1): "conv1.weight.state1"; with s
 * equal to the state count, its step counter: "conv1.weight.steps". */
static void state_name(const param *p, int s, int states, char *buf, size_t size)
{
    if (s == states)
        snprintf(buf, size, "%s.steps", p->name);
    else
        snprintf(buf, size, "%s.state%d", p->name, s + 1);
}

/* Checkpoints store each step counter as one float: exact up to 2^24 updates. */
#define MAX_STORED_STEPS ((uint64_t)1 << 24)

/* Checks every parameter (and, with states > 0, its optimizer state) in w against the net,
 * and refuses names the net does not have; then, and only then, replaces them. */
static clcnn_status load_tensors(clcnn_net *net, const clcnn_weights *w, int states)
{
    const int extra = states > 0 ? 1 : 0; /* the step counter */
    size_t params = clcnn_net_param_count(net), want = params * (size_t)(1 + states + extra);
    const clcnn_named_tensor **found = calloc(want ? want : 1, sizeof *found);
    clcnn_tensor **state = calloc(want ? want : 1, sizeof *state);
    clcnn_status st = found != NULL && state != NULL
                          ? CLCNN_OK
                          : CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < net->count && st == CLCNN_OK; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->params && st == CLCNN_OK; p++) {
            clcnn_named_tensor shape = {0};
            file_shape(l, p, &shape);
            for (int s = -1; s < states + extra && st == CLCNN_OK; s++, k++) {
                char name[CLCNN_WEIGHTS_NAME_MAX + 1];
                const size_t one[1] = {1};
                if (s < 0)
                    snprintf(name, sizeof name, "%s", shape.name);
                else
                    state_name(&l->p[p], s, states, name, sizeof name);
                st = s == states ? clcnn_weights_expect(w, name, 1, one, &found[k])
                                 : clcnn_weights_expect(w, name, shape.rank, shape.dims, &found[k]);
                if (st == CLCNN_OK && s >= 0 && s < states)
                    st =
                        clcnn_tensor_create(net->dev, clcnn_tensor_shape(l->p[p].value), &state[k]);
            }
        }
    }
    for (size_t j = 0; j < w->count && st == CLCNN_OK; j++) {
        bool used = false;
        for (size_t q = 0; q < want && !used; q++)
            used = found[q] == &w->tensors[j];
        if (!used)
            st = CLCNN_ERR(CLCNN_STATUS_CORRUPT, "weights: tensor '%s' is not %s of this model",
                           w->tensors[j].name,
                           states > 0 ? "a parameter or optimizer state" : "a parameter");
    }
    for (size_t q = 0; q < want && st == CLCNN_OK; q++)
        if (state[q] != NULL && found[q] != NULL)
            st = clcnn_tensor_upload(state[q], found[q]->data, found[q]->count);
    k = 0;
    for (size_t i = 0; i < net->count && st == CLCNN_OK; i++) {
        layer *l = &net->layers[i];
        for (int p = 0; p < l->params; p++) {
            if (st == CLCNN_OK && found[k] != NULL)
                st = clcnn_tensor_upload(l->p[p].value, found[k]->data, found[k]->count);
            k++;
            for (int s = 0; s < 2; s++) {
                if (s < states) {
                    clcnn_tensor_release(l->p[p].state[s]);
                    l->p[p].state[s] = state[k];
                    state[k++] = NULL;
                }
            }
            if (extra) {
                l->p[p].steps = found[k] != NULL ? (uint64_t)found[k]->data[0] : 0;
                k++;
            }
        }
    }
    for (size_t q = 0; q < want && state != NULL; q++)
        clcnn_tensor_release(state[q]);
    free(found);
    free(state);
    return st;
}

clcnn_status clcnn_net_load_weights(clcnn_net *net, const char *path)
{
    CLCNN_FAIL_IF(net == NULL || path == NULL, CLCNN_STATUS_INVALID_ARG,
                  "net_load_weights: NULL argument");
    clcnn_weights w;
    CLCNN_TRY(clcnn_weights_load(path, &w));
    clcnn_status st = load_tensors(net, &w, 0);
    if (st != CLCNN_OK)
        clcnn__error_prefix("%s", path);
    clcnn_weights_free(&w);
    return st;
}

/* Hyper-parameters as a checkpoint stores them, by name. */
#define HYPER_LIST(X)                                                                              \
    X("lr", lr)                                                                                    \
    X("weight_decay", weight_decay)                                                                \
    X("momentum", momentum)                                                                        \
    X("dampening", dampening)                                                                      \
    X("beta1", beta1)                                                                              \
    X("beta2", beta2)                                                                              \
    X("eps", eps)

clcnn_status clcnn_net_save_checkpoint(const clcnn_net *net, const char *path,
                                       const clcnn_optim_config *cfg, uint64_t epoch)
{
    CLCNN_FAIL_IF(net == NULL || path == NULL || cfg == NULL, CLCNN_STATUS_INVALID_ARG,
                  "net_save_checkpoint: NULL argument");
    int states = net->optimizer_states < 0 ? 0 : net->optimizer_states;
    CLCNN_FAIL_IF(net->steps > 0 && states != clcnn_optim_state_count(cfg),
                  CLCNN_STATUS_INVALID_ARG,
                  "net_save_checkpoint: the net was trained with another optimizer");
    const int extra = states > 0 ? 1 : 0;
    size_t count = clcnn_net_param_count(net) * (size_t)(1 + states + extra), k = 0;
    clcnn_named_tensor *t = calloc(count ? count : 1, sizeof *t);
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "net_save_checkpoint: out of memory");
    clcnn_status st = CLCNN_OK;
    for (size_t i = 0; i < net->count && st == CLCNN_OK; i++) {
        const layer *l = &net->layers[i];
        for (int p = 0; p < l->params && st == CLCNN_OK; p++) {
            for (int s = -1; s < states + extra && st == CLCNN_OK; s++, k++) {
                file_shape(l, p, &t[k]);
                if (s >= 0)
                    state_name(&l->p[p], s, states, t[k].name, sizeof t[k].name);
                if (s == states) {
                    t[k].rank = 1;
                    t[k].dims[0] = t[k].count = 1;
                }
                t[k].data = malloc(t[k].count * sizeof(float));
                if (t[k].data == NULL)
                    st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "out of memory");
                else if (s == states && l->p[p].steps > MAX_STORED_STEPS)
                    st = CLCNN_ERR(CLCNN_STATUS_UNSUPPORTED,
                                   "net_save_checkpoint: %s has %llu updates; checkpoints store "
                                   "at most 2^24",
                                   l->p[p].name, (unsigned long long)l->p[p].steps);
                else if (s == states)
                    t[k].data[0] = (float)l->p[p].steps;
                else
                    st = clcnn_tensor_download(s < 0 ? l->p[p].value : l->p[p].state[s], t[k].data,
                                               t[k].count);
            }
        }
    }
    clcnn_checkpoint_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.epoch = epoch;
    meta.step = net->steps;
    meta.rng[0] = net->seed;
    snprintf(meta.optimizer, sizeof meta.optimizer, "%s", clcnn_optim_kind_name(cfg->kind));
#define HYPER_SAVE_(key, field)                                                                    \
    snprintf(meta.hyper_names[meta.hyper_count], sizeof meta.hyper_names[0], "%s", key);           \
    meta.hyper_values[meta.hyper_count++] = (double)cfg->field;
    HYPER_LIST(HYPER_SAVE_)
#undef HYPER_SAVE_
    snprintf(meta.hyper_names[meta.hyper_count], sizeof meta.hyper_names[0], "nesterov");
    meta.hyper_values[meta.hyper_count++] = cfg->nesterov ? 1.0 : 0.0;
    if (st == CLCNN_OK)
        st = clcnn_weights_save(path, t, count, &meta);
    for (size_t i = 0; i < count; i++)
        free(t[i].data);
    free(t);
    return st;
}

static double hyper(const clcnn_checkpoint_meta *m, const char *name, bool *missing)
{
    for (size_t i = 0; i < m->hyper_count; i++)
        if (strcmp(m->hyper_names[i], name) == 0)
            return m->hyper_values[i];
    *missing = true;
    return 0.0;
}

clcnn_status clcnn_net_load_checkpoint(clcnn_net *net, const char *path, clcnn_optim_config *cfg,
                                       uint64_t *epoch)
{
    CLCNN_FAIL_IF(net == NULL || path == NULL || cfg == NULL, CLCNN_STATUS_INVALID_ARG,
                  "net_load_checkpoint: NULL argument");
    clcnn_weights w;
    CLCNN_TRY(clcnn_weights_load(path, &w));
    clcnn_status st = CLCNN_OK;
    clcnn_optim_config c;
    memset(&c, 0, sizeof c);
    if (w.meta == NULL)
        st = CLCNN_ERR(CLCNN_STATUS_CORRUPT,
                       "a weights file, not a checkpoint (no optimizer state or step)");
    if (st == CLCNN_OK)
        st = clcnn_optim_kind_parse(w.meta->optimizer, &c.kind);
    bool missing = false;
    if (st == CLCNN_OK) {
#define HYPER_LOAD_(key, field) c.field = (float)hyper(w.meta, key, &missing);
        HYPER_LIST(HYPER_LOAD_)
#undef HYPER_LOAD_
        c.nesterov = hyper(w.meta, "nesterov", &missing) != 0.0;
        if (missing)
            st = CLCNN_ERR(CLCNN_STATUS_CORRUPT, "the checkpoint lacks a hyper-parameter");
    }
    int states = st == CLCNN_OK ? clcnn_optim_state_count(&c) : 0;
    if (st == CLCNN_OK)
        st = load_tensors(net, &w, states);
    if (st == CLCNN_OK) {
        net->steps = w.meta->step;
        net->seed = w.meta->rng[0];
        net->optimizer_states = states;
        *cfg = c;
        if (epoch != NULL)
            *epoch = w.meta->epoch;
    } else {
        clcnn__error_prefix("%s", path);
    }
    clcnn_weights_free(&w);
    return st;
}
