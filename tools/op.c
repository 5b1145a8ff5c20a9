/* clcnn op: runs one operation on .npy files, so any layer can be checked against NumPy or
 * PyTorch. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct conv_options {
    const char *input, *weight, *bias, *output, *device, *algo;
    clcnn_conv_params params;
} conv_options;

static int parse_conv(int argc, char **argv, conv_options *o)
{
    o->params = clcnn_conv_params_default();
    o->algo = "auto";
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r = 0;
        struct {
            const char *name;
            const char **dst;
        } strings[] = {{"--input", &o->input},   {"--weight", &o->weight}, {"--bias", &o->bias},
                       {"--output", &o->output}, {"--device", &o->device}, {"--algo", &o->algo}};
        bool done = false;
        for (size_t k = 0; k < sizeof strings / sizeof strings[0] && !done; k++) {
            r = cli_option_value(argc, argv, &i, strings[k].name, strings[k].dst);
            if (r < 0)
                return cli_usage_error("op conv2d", "option '%s' needs a value", strings[k].name);
            done = r > 0;
        }
        if (done)
            continue;
        clcnn_conv_params *p = &o->params;
        struct {
            const char *name;
            size_t *a, *b;
            size_t min;
        } pairs[] = {{"--stride", &p->stride_h, &p->stride_w, 1},
                     {"--pad", &p->pad_h, &p->pad_w, 0},
                     {"--dilation", &p->dilation_h, &p->dilation_w, 1},
                     {"--groups", &p->groups, NULL, 1}};
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0] && !done; k++) {
            r = cli_option_value(argc, argv, &i, pairs[k].name, &v);
            if (r < 0)
                return cli_usage_error("op conv2d", "option '%s' needs a value", pairs[k].name);
            if (r == 0)
                continue;
            size_t a, b;
            if (!cli_parse_pair(v, &a, &b) || a < pairs[k].min || b < pairs[k].min ||
                (pairs[k].b == NULL && a != b)) {
                fprintf(stderr, "clcnn op conv2d: bad value '%s' for %s (expected %s)\n", v,
                        pairs[k].name, pairs[k].b == NULL ? "a positive integer" : "N or H,W");
                return CLI_EXIT_USAGE;
            }
            *pairs[k].a = a;
            if (pairs[k].b != NULL)
                *pairs[k].b = b;
            done = true;
        }
        if (done)
            continue;
        if (strcmp(argv[i], "--relu") == 0)
            o->params.relu = true;
        else if (strcmp(argv[i], "--flip") == 0)
            o->params.mode = CLCNN_CONV_CONVOLUTION;
        else
            return cli_usage_error("op conv2d", "unknown argument '%s'", argv[i]);
    }
    if (o->input == NULL || o->weight == NULL || o->output == NULL)
        return cli_usage_error("op conv2d", "%s are required", "--input, --weight and --output");
    return 0;
}

static int run_conv(const conv_options *o)
{
    clcnn_conv_algo algo;
    if (clcnn_conv_algo_parse(o->algo, &algo) != CLCNN_OK) {
        fprintf(stderr, "clcnn op conv2d: %s\n", clcnn_last_error());
        return CLI_EXIT_USAGE;
    }
    clcnn_device *dev = NULL;
    clcnn_tensor *x = NULL, *w = NULL, *b = NULL, *y = NULL;
    clcnn_status st = clcnn_device_create(o->device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_tensor_load_npy(dev, o->input, &x);
    if (st == CLCNN_OK)
        st = clcnn_tensor_load_npy(dev, o->weight, &w);
    if (st == CLCNN_OK && o->bias != NULL)
        st = clcnn_tensor_load_npy(dev, o->bias, &b);
    clcnn_shape ys;
    if (st == CLCNN_OK)
        st = clcnn_conv2d_output_shape(clcnn_tensor_shape(x), clcnn_tensor_shape(w), &o->params,
                                       &ys);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, ys, &y);
    if (st == CLCNN_OK)
        st = clcnn_conv2d_forward(dev, x, w, b, &o->params, algo, NULL, 0, y);
    if (st == CLCNN_OK)
        st = clcnn_tensor_save_npy(y, o->output);
    if (st == CLCNN_OK)
        fprintf(stderr, "clcnn op conv2d: wrote %s (%zu,%zu,%zu,%zu)\n", o->output, ys.n, ys.c,
                ys.h, ys.w);
    clcnn_tensor_release(y);
    clcnn_tensor_release(b);
    clcnn_tensor_release(w);
    clcnn_tensor_release(x);
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : cli_fail("op conv2d", st);
}

static void op_help(void)
{
    printf("usage: clcnn op conv2d --input X.npy --weight W.npy [--bias B.npy] [--stride S|SH,SW]\n"
           "                       [--pad P|PH,PW] [--dilation D|DH,DW] [--groups G] [--relu]\n"
           "                       [--flip] [--algo auto|direct] --output Y.npy [--device SEL]\n\n"
           "Runs a 2-D convolution (cross-correlation; --flip for true convolution) on .npy\n"
           "float32 files: X is N x C x H x W, W is K x C/groups x R x S, B has K elements.\n");
}

int cli_cmd_op(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("op", "missing the operation name (%s)", "conv2d");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            op_help();
            return 0;
        }
    }
    if (strcmp(argv[1], "conv2d") == 0) {
        conv_options o = {0};
        int rc = parse_conv(argc - 1, argv + 1, &o);
        return rc != 0 ? rc : run_conv(&o);
    }
    return cli_usage_error("op", "unknown operation '%s' (known: conv2d)", argv[1]);
}
