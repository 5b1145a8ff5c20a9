/* Model summaries: shape inference over a parsed model, with each layer's parameters, forward
 * FLOPs, receptive field and jump, and what parameter sharing saves over a dense layer. */
#include <stdlib.h>
#include <string.h>

#include "clcnn/model.h"
#include "status_impl.h"

typedef struct flow {
    size_t c, h, w;
    size_t rf_h, rf_w, jump_h, jump_w;
} flow;

/* A window of k (dilated extent) at stride s widens the field by (k-1) input jumps. */
static void widen(flow *f, size_t kh, size_t kw, size_t sh, size_t sw)
{
    f->rf_h += (kh - 1) * f->jump_h;
    f->rf_w += (kw - 1) * f->jump_w;
    f->jump_h *= sh;
    f->jump_w *= sw;
}

static clcnn_status conv_layer(const clcnn_layer_desc *l, flow *f, clcnn_layer_summary *row)
{
    clcnn_conv_params p = l->conv;
    clcnn_shape out;
    CLCNN_TRY(clcnn_conv2d_output_shape(
        (clcnn_shape){1, f->c, f->h, f->w},
        (clcnn_shape){l->outputs, f->c / p.groups, l->kernel_h, l->kernel_w}, &p, &out));
    size_t weights = l->outputs * (f->c / p.groups) * l->kernel_h * l->kernel_w;
    row->params = weights + (l->bias ? l->outputs : 0);
    double outputs = (double)out.c * (double)out.h * (double)out.w;
    size_t taps = (f->c / p.groups) * l->kernel_h * l->kernel_w; /* multiply-adds per output */
    row->flops = 2.0 * outputs * (double)taps;
    double in = (double)f->c * (double)f->h * (double)f->w;
    row->fc_equivalent_params = in * outputs + (l->bias ? outputs : 0.0);
    widen(f, p.dilation_h * (l->kernel_h - 1) + 1, p.dilation_w * (l->kernel_w - 1) + 1, p.stride_h,
          p.stride_w);
    f->c = out.c;
    f->h = out.h;
    f->w = out.w;
    return CLCNN_OK;
}

static clcnn_status pool_layer(const clcnn_layer_desc *l, flow *f, clcnn_layer_summary *row)
{
    clcnn_shape out;
    CLCNN_TRY(clcnn_pool_output_shape((clcnn_shape){1, f->c, f->h, f->w}, &l->pool, &out));
    size_t wh = l->pool.global ? f->h : l->pool.window_h;
    size_t ww = l->pool.global ? f->w : l->pool.window_w;
    row->flops = (double)out.c * (double)out.h * (double)out.w * (double)(wh * ww);
    widen(f, wh, ww, l->pool.global ? f->h : l->pool.stride_h,
          l->pool.global ? f->w : l->pool.stride_w);
    f->h = out.h;
    f->w = out.w;
    return CLCNN_OK;
}

/* PyTorch's adaptive pooling: with I in and O out, windows of about I/O at stride floor(I/O). */
static clcnn_status adaptive_layer(const clcnn_layer_desc *l, flow *f, clcnn_layer_summary *row)
{
    CLCNN_FAIL_IF(l->height > f->h || l->width > f->w, CLCNN_STATUS_BAD_SHAPE,
                  "summary: layer %s (line %u): adaptive pooling to %zux%zu from a smaller "
                  "%zux%zu input",
                  l->name, l->line, l->height, l->width, f->h, f->w);
    size_t sh = f->h / l->height, sw = f->w / l->width;
    size_t kh = f->h - (l->height - 1) * sh, kw = f->w - (l->width - 1) * sw;
    row->flops = (double)f->c * (double)(l->height * l->width) * (double)(kh * kw);
    widen(f, kh, kw, sh, sw);
    f->h = l->height;
    f->w = l->width;
    return CLCNN_OK;
}

static void fc_layer(const clcnn_layer_desc *l, flow *f, clcnn_layer_summary *row)
{
    size_t in = f->c * f->h * f->w;
    row->params = in * l->outputs + (l->bias ? l->outputs : 0);
    row->flops = 2.0 * (double)in * (double)l->outputs;
    widen(f, f->h, f->w, f->h, f->w); /* every output sees the whole input */
    f->c = l->outputs;
    f->h = f->w = 1;
}

clcnn_status clcnn_model_summary(const clcnn_model_desc *model, size_t batch,
                                 clcnn_layer_summary **rows, clcnn_model_totals *totals)
{
    CLCNN_FAIL_IF(model == NULL || rows == NULL || model->count == 0 || batch == 0,
                  CLCNN_STATUS_INVALID_ARG, "summary: NULL argument, empty model or zero batch");
    CLCNN_FAIL_IF(model->layers[0].kind != CLCNN_LAYER_INPUT, CLCNN_STATUS_INVALID_ARG,
                  "summary: the first layer is not an input");
    clcnn_layer_summary *r = calloc(model->count, sizeof *r);
    CLCNN_FAIL_IF(r == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "summary: out of memory");
    flow f = {0, 0, 0, 1, 1, 1, 1};
    clcnn_model_totals t = {0, 0, 0.0, 0};
    double activations = 0;
    clcnn_status st = CLCNN_OK;
    for (size_t i = 0; i < model->count && st == CLCNN_OK; i++) {
        const clcnn_layer_desc *l = &model->layers[i];
        clcnn_layer_summary *row = &r[i];
        double elements = (double)f.c * (double)f.h * (double)f.w;
        switch (l->kind) {
        case CLCNN_LAYER_INPUT:
            f.c = l->channels;
            f.h = l->height;
            f.w = l->width;
            break;
        case CLCNN_LAYER_CONV:
            st = conv_layer(l, &f, row);
            break;
        case CLCNN_LAYER_POOL:
            st = pool_layer(l, &f, row);
            break;
        case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
            st = adaptive_layer(l, &f, row);
            break;
        case CLCNN_LAYER_FC:
            fc_layer(l, &f, row);
            break;
        case CLCNN_LAYER_SOFTMAX:
            row->flops = 3.0 * elements; /* exp, sum, divide */
            break;
        default: /* activation and dropout: one operation per element */
            row->flops = elements;
            break;
        }
        if (st != CLCNN_OK) {
            clcnn__error_prefix("summary: layer %s (line %u)", l->name, l->line);
            break;
        }
        if (l->has_act && l->kind != CLCNN_LAYER_ACT)
            row->flops += (double)f.c * (double)f.h * (double)f.w;
        row->channels = f.c;
        row->height = f.h;
        row->width = f.w;
        row->receptive_field_h = f.rf_h;
        row->receptive_field_w = f.rf_w;
        row->jump_h = f.jump_h;
        row->jump_w = f.jump_w;
        t.params += row->params;
        t.trainable_params += l->frozen ? 0 : row->params;
        t.flops += row->flops;
        activations += (double)f.c * (double)f.h * (double)f.w;
    }
    if (st != CLCNN_OK) {
        free(r);
        return st;
    }
    t.activation_bytes = (size_t)(activations * (double)batch * sizeof(float));
    *rows = r;
    if (totals != NULL)
        *totals = t;
    return CLCNN_OK;
}
