/* clcnn summary: a model file's layers with output shapes, parameters, FLOPs, receptive field,
 * and what parameter sharing saves over dense layers. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void describe(const clcnn_layer_desc *l, char *buf, size_t size)
{
    switch (l->kind) {
    case CLCNN_LAYER_CONV:
        snprintf(buf, size, "conv %zux%zu/%zu", l->kernel_h, l->kernel_w, l->conv.stride_h);
        break;
    case CLCNN_LAYER_POOL:
        if (l->pool.global)
            snprintf(buf, size, "global %s", clcnn_pool_kind_name(l->pool.kind));
        else
            snprintf(buf, size, "%s %zux%zu/%zu", clcnn_pool_kind_name(l->pool.kind),
                     l->pool.window_h, l->pool.window_w, l->pool.stride_h);
        break;
    case CLCNN_LAYER_ACT:
        snprintf(buf, size, "%s", clcnn_act_kind_name(l->act.kind));
        break;
    case CLCNN_LAYER_DROPOUT:
        snprintf(buf, size, "dropout %.2g", (double)l->dropout);
        break;
    default:
        snprintf(buf, size, "%s", clcnn_layer_kind_name(l->kind));
        break;
    }
}

static void print_table(const clcnn_model_desc *m, const clcnn_layer_summary *rows,
                        const clcnn_model_totals *t, size_t batch)
{
    printf("%-10s %-16s %-14s %12s %10s %10s %5s %16s %8s\n", "layer", "kind", "output", "params",
           "MFLOPs", "receptive", "jump", "dense params", "saving");
    for (size_t i = 0; i < m->count; i++) {
        const clcnn_layer_desc *l = &m->layers[i];
        const clcnn_layer_summary *r = &rows[i];
        char kind[32], shape[32], rf[32], dense[32] = "", saving[16] = "";
        describe(l, kind, sizeof kind);
        snprintf(shape, sizeof shape, "%zux%zux%zu", r->channels, r->height, r->width);
        snprintf(rf, sizeof rf, "%zux%zu", r->receptive_field_h, r->receptive_field_w);
        if (r->fc_equivalent_params > 0) {
            snprintf(dense, sizeof dense, "%.4g", r->fc_equivalent_params);
            snprintf(saving, sizeof saving, "%.3f%%",
                     100.0 * (1.0 - (double)r->params / r->fc_equivalent_params));
        }
        printf("%-10s %-16s %-14s %12zu %10.1f %10s %5zu %16s %8s%s\n", l->name, kind, shape,
               r->params, r->flops / 1e6, rf, r->jump_h, dense, saving,
               l->frozen ? "  frozen" : "");
    }
    printf("\n%zu parameters (%zu trainable), %.1f MFLOPs per image forward, %.1f MiB of "
           "float32 activations at batch %zu\n",
           t->params, t->trainable_params, t->flops / 1e6,
           (double)t->activation_bytes / (1024.0 * 1024.0), batch);
}

static void print_json(const clcnn_model_desc *m, const clcnn_layer_summary *rows,
                       const clcnn_model_totals *t, size_t batch)
{
    printf("{\"batch\": %zu, \"params\": %zu, \"trainable_params\": %zu, \"flops\": %.0f, "
           "\"activation_bytes\": %zu, \"layers\": [\n",
           batch, t->params, t->trainable_params, t->flops, t->activation_bytes);
    for (size_t i = 0; i < m->count; i++) {
        const clcnn_layer_summary *r = &rows[i];
        printf("  {\"name\": ");
        cli_json_string(stdout, m->layers[i].name);
        printf(", \"kind\": ");
        cli_json_string(stdout, clcnn_layer_kind_name(m->layers[i].kind));
        printf(", \"line\": %u, \"output\": [%zu, %zu, %zu], \"params\": %zu, \"flops\": %.0f, "
               "\"receptive_field\": [%zu, %zu], \"jump\": [%zu, %zu], "
               "\"fc_equivalent_params\": %.0f}%s\n",
               m->layers[i].line, r->channels, r->height, r->width, r->params, r->flops,
               r->receptive_field_h, r->receptive_field_w, r->jump_h, r->jump_w,
               r->fc_equivalent_params, i + 1 < m->count ? "," : "");
    }
    printf("]}\n");
}

int cli_cmd_summary(int argc, char **argv)
{
    const char *path = NULL, *batch_text = "1";
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_option_value(argc, argv, &i, "--batch", &batch_text);
        if (r < 0)
            return cli_usage_error("summary", "option '%s' needs a value", "--batch");
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("summary", "unknown option '%s'", argv[i]);
        else if (path != NULL)
            return cli_usage_error("summary", "unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (path == NULL)
        return cli_usage_error("summary", "missing the model file%s", "");
    size_t batch, unused;
    if (!cli_parse_pair(batch_text, &batch, &unused) || batch == 0 || batch != unused)
        return cli_usage_error("summary", "bad value '%s' for --batch (a positive integer)",
                               batch_text);
    clcnn_model_desc m;
    clcnn_status st = clcnn_model_load(path, &m);
    if (st != CLCNN_OK)
        return cli_fail("summary", st);
    clcnn_layer_summary *rows = NULL;
    clcnn_model_totals t;
    st = clcnn_model_summary(&m, batch, &rows, &t);
    if (st == CLCNN_OK) {
        if (json)
            print_json(&m, rows, &t, batch);
        else
            print_table(&m, rows, &t, batch);
    }
    clcnn_free(rows);
    clcnn_model_desc_free(&m);
    return st == CLCNN_OK ? 0 : cli_fail("summary", st);
}
