/* clcnn op: runs one operation on .npy files, so any layer can be checked against NumPy or
 * PyTorch. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct conv_options {
    const char *input, *weight, *bias, *output, *device, *algo, *grad_output;
    clcnn_conv_pass pass; /* conv2d, conv2d-bwd-data, conv2d-bwd-weights */
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
        } strings[] = {{"--input", &o->input},
                       {"--weight", &o->weight},
                       {"--bias", &o->bias},
                       {"--output", &o->output},
                       {"--device", &o->device},
                       {"--algo", &o->algo},
                       {"--grad-output", &o->grad_output}};
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
    if ((o->pass != CLCNN_CONV_PASS_FWD) != (o->grad_output != NULL))
        return cli_usage_error("op conv2d", "%s",
                               o->pass != CLCNN_CONV_PASS_FWD
                                   ? "the backward passes need --grad-output DY.npy"
                                   : "--grad-output is for conv2d-bwd-data and conv2d-bwd-weights");
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
    clcnn_shape ys = {0, 0, 0, 0};
    if (st == CLCNN_OK)
        st = clcnn_conv2d_output_shape(clcnn_tensor_shape(x), clcnn_tensor_shape(w), &o->params,
                                       &ys);
    /* The forward writes y; backward data reads dy and writes dx (x's shape; x's values are
     * not used), backward weights reads x and dy and writes dw (w's shape). */
    clcnn_tensor *dy = NULL, *out = NULL;
    if (st == CLCNN_OK && o->pass != CLCNN_CONV_PASS_FWD)
        st = clcnn_tensor_load_npy(dev, o->grad_output, &dy);
    clcnn_shape out_shape = o->pass == CLCNN_CONV_PASS_FWD        ? ys
                            : o->pass == CLCNN_CONV_PASS_BWD_DATA ? clcnn_tensor_shape(x)
                                                                  : clcnn_tensor_shape(w);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, out_shape, &out);
    if (st == CLCNN_OK && o->pass == CLCNN_CONV_PASS_FWD)
        st = clcnn_conv2d_forward(dev, x, w, b, &o->params, algo, NULL, 0, out);
    else if (st == CLCNN_OK && o->pass == CLCNN_CONV_PASS_BWD_DATA)
        st = clcnn_conv2d_backward_data(dev, dy, w, &o->params, algo, NULL, 0, out);
    else if (st == CLCNN_OK)
        st = clcnn_conv2d_backward_weights(dev, x, dy, &o->params, algo, NULL, 0, out);
    if (st == CLCNN_OK)
        st = clcnn_tensor_save_npy(out, o->output);
    if (st == CLCNN_OK)
        fprintf(stderr, "clcnn op conv2d: wrote %s (%zu,%zu,%zu,%zu)\n", o->output, out_shape.n,
                out_shape.c, out_shape.h, out_shape.w);
    clcnn_tensor_release(out);
    clcnn_tensor_release(dy);
    clcnn_tensor_release(y);
    clcnn_tensor_release(b);
    clcnn_tensor_release(w);
    clcnn_tensor_release(x);
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : cli_fail("op conv2d", st);
}

/* ---- pool, pool-bwd ------------------------------------------------------------------- */

typedef struct pool_options {
    const char *name; /* "pool" or "pool-bwd" */
    const char *input, *grad_output, *output, *device;
    clcnn_pool_params params;
} pool_options;

static int parse_pool(int argc, char **argv, pool_options *o)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "op %s", o->name);
    const bool bwd = strcmp(o->name, "pool-bwd") == 0;
    o->params = clcnn_pool_params_default(CLCNN_POOL_MAX);
    bool stride_given = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r = 0;
        struct {
            const char *name;
            const char **dst;
        } strings[] = {{"--input", &o->input},
                       {"--output", &o->output},
                       {"--device", &o->device},
                       {"--grad-output", bwd ? &o->grad_output : NULL}};
        bool done = false;
        for (size_t k = 0; k < sizeof strings / sizeof strings[0] && !done; k++) {
            if (strings[k].dst == NULL)
                continue;
            r = cli_option_value(argc, argv, &i, strings[k].name, strings[k].dst);
            if (r < 0)
                return cli_usage_error(cmd, "option '%s' needs a value", strings[k].name);
            done = r > 0;
        }
        if (done)
            continue;
        clcnn_pool_params *p = &o->params;
        struct {
            const char *name;
            size_t *a, *b;
            size_t min;
        } pairs[] = {{"--window", &p->window_h, &p->window_w, 1},
                     {"--stride", &p->stride_h, &p->stride_w, 1},
                     {"--pad", &p->pad_h, &p->pad_w, 0}};
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0] && !done; k++) {
            r = cli_option_value(argc, argv, &i, pairs[k].name, &v);
            if (r < 0)
                return cli_usage_error(cmd, "option '%s' needs a value", pairs[k].name);
            if (r == 0)
                continue;
            size_t a, b;
            if (!cli_parse_pair(v, &a, &b) || a < pairs[k].min || b < pairs[k].min) {
                fprintf(stderr, "clcnn %s: bad value '%s' for %s (expected N or H,W)\n", cmd, v,
                        pairs[k].name);
                return CLI_EXIT_USAGE;
            }
            *pairs[k].a = a;
            *pairs[k].b = b;
            stride_given |= k == 1;
            done = true;
        }
        if (done)
            continue;
        if ((r = cli_option_value(argc, argv, &i, "--kind", &v)) != 0) {
            if (r < 0)
                return cli_usage_error(cmd, "option '%s' needs a value", "--kind");
            if (clcnn_pool_kind_parse(v, &p->kind) != CLCNN_OK) {
                fprintf(stderr, "clcnn %s: %s\n", cmd, clcnn_last_error());
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--ceil") == 0) {
            p->ceil_mode = true;
        } else if (strcmp(argv[i], "--global") == 0) {
            p->global = true;
        } else {
            return cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
        }
    }
    /* As in PyTorch, the stride defaults to the window. */
    if (!stride_given) {
        o->params.stride_h = o->params.window_h;
        o->params.stride_w = o->params.window_w;
    }
    if (o->input == NULL || o->output == NULL || (bwd && o->grad_output == NULL))
        return cli_usage_error(cmd, "%s are required",
                               bwd ? "--input, --grad-output and --output"
                                   : "--input and --output");
    return 0;
}

/* pool: y = pool(x). pool-bwd: dx from x and dy, running the forward first for y. */
static int run_pool(const pool_options *o)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "op %s", o->name);
    const bool bwd = o->grad_output != NULL;
    clcnn_device *dev = NULL;
    clcnn_tensor *x = NULL, *y = NULL, *dy = NULL, *dx = NULL;
    clcnn_status st = clcnn_device_create(o->device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_tensor_load_npy(dev, o->input, &x);
    if (st == CLCNN_OK && bwd)
        st = clcnn_tensor_load_npy(dev, o->grad_output, &dy);
    clcnn_shape ys = {0, 0, 0, 0};
    if (st == CLCNN_OK)
        st = clcnn_pool_output_shape(clcnn_tensor_shape(x), &o->params, &ys);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, ys, &y);
    if (st == CLCNN_OK)
        st = clcnn_pool_forward(dev, x, &o->params, y, NULL);
    if (st == CLCNN_OK && bwd)
        st = clcnn_tensor_create(dev, clcnn_tensor_shape(x), &dx);
    if (st == CLCNN_OK && bwd)
        st = clcnn_pool_backward(dev, x, y, dy, NULL, &o->params, dx);
    const clcnn_tensor *out = bwd ? dx : y;
    if (st == CLCNN_OK)
        st = clcnn_tensor_save_npy(out, o->output);
    if (st == CLCNN_OK) {
        clcnn_shape s = clcnn_tensor_shape(out);
        fprintf(stderr, "clcnn %s: wrote %s (%zu,%zu,%zu,%zu)\n", cmd, o->output, s.n, s.c, s.h,
                s.w);
    }
    clcnn_tensor_release(dx);
    clcnn_tensor_release(dy);
    clcnn_tensor_release(y);
    clcnn_tensor_release(x);
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : cli_fail(cmd, st);
}

/* ---- act, act-bwd --------------------------------------------------------------------- */

typedef struct act_options {
    const char *name; /* "act" or "act-bwd" */
    const char *input, *grad_output, *output, *device;
    clcnn_act_params params;
} act_options;

static int parse_act(int argc, char **argv, act_options *o)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "op %s", o->name);
    const bool bwd = strcmp(o->name, "act-bwd") == 0;
    const char *kind = NULL, *alpha = NULL;
    for (int i = 1; i < argc; i++) {
        struct {
            const char *name;
            const char **dst;
        } strings[] = {{"--input", &o->input},   {"--output", &o->output},
                       {"--device", &o->device}, {"--act", &kind},
                       {"--alpha", &alpha},      {"--grad-output", bwd ? &o->grad_output : NULL}};
        bool done = false;
        for (size_t k = 0; k < sizeof strings / sizeof strings[0] && !done; k++) {
            if (strings[k].dst == NULL)
                continue;
            int r = cli_option_value(argc, argv, &i, strings[k].name, strings[k].dst);
            if (r < 0)
                return cli_usage_error(cmd, "option '%s' needs a value", strings[k].name);
            done = r > 0;
        }
        if (!done)
            return cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
    }
    if (kind == NULL || o->input == NULL || o->output == NULL || (bwd && o->grad_output == NULL))
        return cli_usage_error(cmd, "%s are required",
                               bwd ? "--act, --input, --grad-output and --output"
                                   : "--act, --input and --output");
    clcnn_act_kind k;
    if (clcnn_act_kind_parse(kind, &k) != CLCNN_OK) {
        fprintf(stderr, "clcnn %s: %s\n", cmd, clcnn_last_error());
        return CLI_EXIT_USAGE;
    }
    o->params = clcnn_act_params_default(k);
    if (alpha != NULL) {
        char *end;
        float a = strtof(alpha, &end);
        if (end == alpha || *end != '\0' || !(a >= 0.0f) || a > 1e30f) {
            fprintf(stderr, "clcnn %s: bad value '%s' for --alpha (expected a number >= 0)\n", cmd,
                    alpha);
            return CLI_EXIT_USAGE;
        }
        o->params.alpha = a;
    }
    return 0;
}

/* act: y = act(x). act-bwd: dx from x and dy, running the forward first for y. */
static int run_act(const act_options *o)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "op %s", o->name);
    const bool bwd = o->grad_output != NULL;
    clcnn_device *dev = NULL;
    clcnn_tensor *x = NULL, *dy = NULL;
    clcnn_status st = clcnn_device_create(o->device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_tensor_load_npy(dev, o->input, &x);
    if (st == CLCNN_OK && bwd)
        st = clcnn_tensor_load_npy(dev, o->grad_output, &dy);
    /* In place: x becomes y, and dy becomes dx. */
    if (st == CLCNN_OK)
        st = clcnn_act_forward(dev, &o->params, x, x);
    if (st == CLCNN_OK && bwd)
        st = clcnn_act_backward(dev, &o->params, x, dy, dy);
    const clcnn_tensor *out = bwd ? dy : x;
    if (st == CLCNN_OK)
        st = clcnn_tensor_save_npy(out, o->output);
    if (st == CLCNN_OK) {
        clcnn_shape s = clcnn_tensor_shape(out);
        fprintf(stderr, "clcnn %s: wrote %s (%zu,%zu,%zu,%zu)\n", cmd, o->output, s.n, s.c, s.h,
                s.w);
    }
    clcnn_tensor_release(dy);
    clcnn_tensor_release(x);
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : cli_fail(cmd, st);
}

/* ---- dispatch ------------------------------------------------------------------------- */

static void op_help(const char *name)
{
    if (name != NULL && strncmp(name, "pool", 4) == 0) {
        printf("usage: clcnn op pool --input X.npy [--kind max|avg|avg-exclude-pad|l2]\n"
               "                     [--window R|R,S] [--stride S|SH,SW] [--pad P|PH,PW] [--ceil]\n"
               "                     [--global] --output Y.npy [--device SEL]\n"
               "       clcnn op pool-bwd --input X.npy --grad-output DY.npy [pool options]\n"
               "                         --output DX.npy [--device SEL]\n\n"
               "2-D pooling of an N x C x H x W .npy float32 file. --kind: max (default), avg\n"
               "(padding counted), avg-exclude-pad, l2 (square root of the sum of squares).\n"
               "--window defaults to 2,2, --stride to the window, --pad to 0; --ceil rounds the\n"
               "output size up (PyTorch's ceil_mode); --global pools each whole plane.\n"
               "pool-bwd runs the forward on X, then writes dL/dX given DY = dL/dY (shaped as\n"
               "the forward's output); max ties go to the first maximum in row-major order.\n");
        return;
    }
    if (name != NULL && cli_op_fc_known(name)) {
        cli_op_fc_help(name);
        return;
    }
    if (name != NULL && strncmp(name, "act", 3) == 0) {
        printf("usage: clcnn op act --act relu|leaky-relu|elu|sigmoid|tanh [--alpha A]\n"
               "                    --input X.npy --output Y.npy [--device SEL]\n"
               "       clcnn op act-bwd --act KIND [--alpha A] --input X.npy --grad-output DY.npy\n"
               "                        --output DX.npy [--device SEL]\n\n"
               "Element-wise activation of a .npy float32 file. --alpha: leaky-relu's negative\n"
               "slope (default 0.01), elu's alpha (default 1); >= 0. act-bwd runs the forward on\n"
               "X, then writes dL/dX = DY * act'(X), computed from Y (so it matches a forward\n"
               "run in place); at X = 0 the negative side's derivative is used.\n");
        return;
    }
    if (name == NULL || strcmp(name, "conv2d") != 0)
        printf("operations: conv2d, conv2d-bwd-data, conv2d-bwd-weights, pool, pool-bwd, act,\n"
               "act-bwd, linear, linear-bwd, softmax, softmax-xent, softmax-xent-bwd\n"
               "('clcnn op NAME --help')\n\n");
    printf("usage: clcnn op conv2d --input X.npy --weight W.npy [--bias B.npy] [--stride S|SH,SW]\n"
           "                       [--pad P|PH,PW] [--dilation D|DH,DW] [--groups G] [--relu]\n"
           "                       [--flip] [--algo auto|direct] --output Y.npy [--device SEL]\n\n"
           "       clcnn op conv2d-bwd-data --input X.npy --weight W.npy --grad-output DY.npy\n"
           "                       [conv options] --output DX.npy\n"
           "       clcnn op conv2d-bwd-weights --input X.npy --weight W.npy --grad-output DY.npy\n"
           "                       [conv options] --output DW.npy\n\n"
           "Runs a 2-D convolution (cross-correlation; --flip for true convolution) on .npy\n"
           "float32 files: X is N x C x H x W, W is K x C/groups x R x S, B has K elements.\n"
           "The backward passes take DY = dL/dY (the forward output's shape) and write dL/dX\n"
           "(X's shape; X's values are not read) or dL/dW (W's shape; W's values are not read).\n"
           "--relu is ignored by them: apply 'clcnn op act-bwd' first.\n");
}

int cli_cmd_op(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("op", "missing the operation name (%s)",
                               "conv2d, conv2d-bwd-data, conv2d-bwd-weights, pool, pool-bwd, "
                               "act, act-bwd, linear, linear-bwd, softmax, softmax-xent, "
                               "softmax-xent-bwd");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            op_help(i > 1 ? argv[1] : NULL);
            return 0;
        }
    }
    if (strcmp(argv[1], "conv2d") == 0 || strcmp(argv[1], "conv2d-bwd-data") == 0 ||
        strcmp(argv[1], "conv2d-bwd-weights") == 0) {
        conv_options o = {0};
        o.pass = strcmp(argv[1], "conv2d") == 0            ? CLCNN_CONV_PASS_FWD
                 : strcmp(argv[1], "conv2d-bwd-data") == 0 ? CLCNN_CONV_PASS_BWD_DATA
                                                           : CLCNN_CONV_PASS_BWD_WEIGHTS;
        int rc = parse_conv(argc - 1, argv + 1, &o);
        return rc != 0 ? rc : run_conv(&o);
    }
    if (strcmp(argv[1], "pool") == 0 || strcmp(argv[1], "pool-bwd") == 0) {
        pool_options o = {.name = argv[1]};
        int rc = parse_pool(argc - 1, argv + 1, &o);
        return rc != 0 ? rc : run_pool(&o);
    }
    if (cli_op_fc_known(argv[1]))
        return cli_op_fc(argc - 1, argv + 1);
    if (strcmp(argv[1], "act") == 0 || strcmp(argv[1], "act-bwd") == 0) {
        act_options o = {.name = argv[1]};
        int rc = parse_act(argc - 1, argv + 1, &o);
        return rc != 0 ? rc : run_act(&o);
    }
    return cli_usage_error("op",
                           "unknown operation '%s' (known: conv2d, pool, pool-bwd, act, "
                           "act-bwd, linear, linear-bwd, softmax, softmax-xent, "
                           "softmax-xent-bwd)",
                           argv[1]);
}
