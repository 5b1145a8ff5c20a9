/* clcnn op linear, linear-bwd, softmax, softmax-xent, softmax-xent-bwd: the classifier ops on
 * .npy files (dispatched from tools/op.c). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct fc_options {
    const char *name; /* the operation */
    const char *input, *weight, *bias, *labels, *grad_output, *output, *grad_weight, *grad_bias,
        *device;
} fc_options;

static const char *const fc_ops[] = {"linear", "linear-bwd", "softmax", "softmax-xent",
                                     "softmax-xent-bwd"};

bool cli_op_fc_known(const char *name)
{
    for (size_t i = 0; i < sizeof fc_ops / sizeof fc_ops[0]; i++)
        if (strcmp(name, fc_ops[i]) == 0)
            return true;
    return false;
}

void cli_op_fc_help(const char *name)
{
    if (strncmp(name, "linear", 6) == 0) {
        printf("usage: clcnn op linear --input X.npy --weight W.npy [--bias B.npy] --output Y.npy\n"
               "                       [--device SEL]\n"
               "       clcnn op linear-bwd --input X.npy --weight W.npy --grad-output DY.npy\n"
               "                           --output DX.npy [--grad-weight DW.npy]\n"
               "                           [--grad-bias DB.npy] [--device SEL]\n\n"
               "Fully connected layer (PyTorch's nn.Linear) on .npy float32 files, the first\n"
               "dimension being the batch: X is (N, ...) (flattened to N x in), W holds out x in\n"
               "(e.g. shape (out, in)), B has out elements; Y = X W^T + B is (N, out).\n"
               "linear-bwd takes DY = dL/dY (N, out) and writes DX = DY W (shaped as X) and,\n"
               "when asked, DW = DY^T X (shaped as W) and DB = the sum of DY over N (out,).\n");
        return;
    }
    printf("usage: clcnn op softmax --input X.npy --output Y.npy [--device SEL]\n"
           "       clcnn op softmax-xent --input LOGITS.npy --labels L.npy --output LOSS.npy\n"
           "                             [--device SEL]\n"
           "       clcnn op softmax-xent-bwd --input LOGITS.npy --labels L.npy\n"
           "                                 --output DLOGITS.npy [--device SEL]\n\n"
           "Softmax over each row of an (N, K) .npy float32 file ((N, ...) flattened to rows).\n"
           "softmax-xent writes the mean cross-entropy over the batch, shape (1,), for L: N\n"
           "class indices in [0, K) stored as float32 (NumPy: labels.astype(np.float32)).\n"
           "softmax-xent-bwd writes its gradient (softmax(LOGITS) - onehot(L)) / N.\n");
}

static int parse_fc(int argc, char **argv, fc_options *o, const char *cmd)
{
    const bool lin = strncmp(o->name, "linear", 6) == 0;
    const bool bwd = strcmp(o->name, "linear-bwd") == 0;
    const bool xent = strncmp(o->name, "softmax-xent", 12) == 0;
    for (int i = 1; i < argc; i++) {
        struct {
            const char *name;
            const char **dst;
        } strings[] = {{"--input", &o->input},
                       {"--output", &o->output},
                       {"--device", &o->device},
                       {"--weight", lin ? &o->weight : NULL},
                       {"--bias", lin && !bwd ? &o->bias : NULL},
                       {"--grad-output", bwd ? &o->grad_output : NULL},
                       {"--grad-weight", bwd ? &o->grad_weight : NULL},
                       {"--grad-bias", bwd ? &o->grad_bias : NULL},
                       {"--labels", xent ? &o->labels : NULL}};
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
    const char *need = NULL;
    if (o->input == NULL || o->output == NULL)
        need = "--input and --output";
    else if (lin && o->weight == NULL)
        need = "--weight";
    else if (bwd && o->grad_output == NULL)
        need = "--grad-output";
    else if (xent && o->labels == NULL)
        need = "--labels";
    if (need != NULL)
        return cli_usage_error(cmd, "%s are required", need);
    return 0;
}

/* Reads float32 class indices from a .npy file into a malloc'd int32 array. */
static clcnn_status load_labels(const char *path, int32_t **labels, size_t *count)
{
    clcnn_npy_array a;
    clcnn_status st = clcnn_npy_load(path, &a);
    if (st != CLCNN_OK)
        return st;
    int32_t *l = malloc(a.count * sizeof *l);
    if (l == NULL) {
        clcnn_npy_array_free(&a);
        fprintf(stderr, "clcnn op: out of memory for %zu labels\n", a.count);
        return CLCNN_STATUS_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < a.count; i++) {
        const float v = a.data[i];
        if (!(v == floorf(v) && fabsf(v) < 2147483648.0f)) {
            fprintf(stderr, "clcnn op: %s: label %zu is %g, not an integer class index\n", path, i,
                    (double)v);
            free(l);
            clcnn_npy_array_free(&a);
            return CLCNN_STATUS_INVALID_ARG;
        }
        l[i] = (int32_t)v;
    }
    *labels = l;
    *count = a.count;
    clcnn_npy_array_free(&a);
    return CLCNN_OK;
}

/* Loads a .npy file with its dimensions aligned left: the first is N (the rows), so a NumPy
 * matrix (N, K) becomes N x K x 1 x 1, not the right-aligned 1 x 1 x N x K of
 * clcnn_tensor_load_npy(). *rank receives the file's rank. */
static clcnn_status load_rows(clcnn_device *dev, const char *path, clcnn_tensor **t, int *rank)
{
    clcnn_npy_array a;
    clcnn_status st = clcnn_npy_load(path, &a);
    if (st != CLCNN_OK)
        return st;
    size_t d[4] = {1, 1, 1, 1};
    for (int i = 0; i < a.rank; i++)
        d[i] = a.dims[i];
    const int file_rank = a.rank;
    clcnn_tensor *out = NULL;
    st = clcnn_tensor_create(dev, (clcnn_shape){d[0], d[1], d[2], d[3]}, &out);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(out, a.data, a.count);
    clcnn_npy_array_free(&a);
    if (st != CLCNN_OK) {
        clcnn_tensor_release(out);
        return st;
    }
    *t = out;
    if (rank != NULL)
        *rank = file_rank;
    return CLCNN_OK;
}

/* Writes the tensor with its first rank dimensions (the others are 1). */
static clcnn_status save(const clcnn_tensor *t, int rank, const char *path, const char *cmd)
{
    const clcnn_shape s = clcnn_tensor_shape(t);
    const size_t dims[4] = {s.n, s.c, s.h, s.w}, count = clcnn_tensor_count(t);
    float *v = malloc(count * sizeof *v);
    if (v == NULL) {
        fprintf(stderr, "clcnn %s: out of memory for %zu floats\n", cmd, count);
        return CLCNN_STATUS_OUT_OF_MEMORY;
    }
    clcnn_status st = clcnn_tensor_download(t, v, count);
    if (st == CLCNN_OK)
        st = clcnn_npy_save(path, rank, dims, v);
    free(v);
    if (st == CLCNN_OK)
        fprintf(stderr, "clcnn %s: wrote %s (%zu rank-%d)\n", cmd, path, count, rank);
    return st;
}

static int run_fc(const fc_options *o, const char *cmd)
{
    clcnn_device *dev = NULL;
    clcnn_tensor *x = NULL, *w = NULL, *b = NULL, *dy = NULL, *y = NULL, *dw = NULL, *db = NULL;
    int32_t *labels = NULL;
    size_t nlabels = 0;
    int xrank = 4, wrank = 4, yrank = 4;
    bool labels_bad = false;
    clcnn_status st = clcnn_device_create(o->device, &dev);
    if (st == CLCNN_OK)
        st = load_rows(dev, o->input, &x, &xrank);
    if (st == CLCNN_OK && o->weight != NULL)
        st = load_rows(dev, o->weight, &w, &wrank);
    if (st == CLCNN_OK && o->bias != NULL)
        st = load_rows(dev, o->bias, &b, NULL);
    if (st == CLCNN_OK && o->grad_output != NULL)
        st = load_rows(dev, o->grad_output, &dy, NULL);
    yrank = xrank;
    if (st == CLCNN_OK && o->labels != NULL) {
        st = load_labels(o->labels, &labels, &nlabels);
        labels_bad = st != CLCNN_OK;
    }
    if (strcmp(o->name, "linear") == 0) {
        clcnn_shape ys;
        if (st == CLCNN_OK)
            st = clcnn_linear_output_shape(clcnn_tensor_shape(x), clcnn_tensor_shape(w), &ys);
        if (st == CLCNN_OK)
            st = clcnn_tensor_create(dev, ys, &y);
        if (st == CLCNN_OK)
            st = clcnn_linear_forward(dev, x, w, b, y);
        yrank = 2;
    } else if (strcmp(o->name, "linear-bwd") == 0) {
        if (st == CLCNN_OK)
            st = clcnn_tensor_create(dev, clcnn_tensor_shape(x), &y);
        if (st == CLCNN_OK && o->grad_weight != NULL)
            st = clcnn_tensor_create(dev, clcnn_tensor_shape(w), &dw);
        if (st == CLCNN_OK && o->grad_bias != NULL) {
            clcnn_shape ys;
            st = clcnn_linear_output_shape(clcnn_tensor_shape(x), clcnn_tensor_shape(w), &ys);
            if (st == CLCNN_OK)
                st = clcnn_tensor_create(dev, (clcnn_shape){ys.c, 1, 1, 1}, &db);
        }
        if (st == CLCNN_OK)
            st = clcnn_linear_backward(dev, x, w, dy, false, y, dw, db);
        if (st == CLCNN_OK && dw != NULL)
            st = save(dw, wrank, o->grad_weight, cmd);
        if (st == CLCNN_OK && db != NULL)
            st = save(db, 1, o->grad_bias, cmd);
    } else if (strcmp(o->name, "softmax") == 0) {
        if (st == CLCNN_OK)
            st = clcnn_tensor_create(dev, clcnn_tensor_shape(x), &y);
        if (st == CLCNN_OK)
            st = clcnn_softmax_forward(dev, x, y);
    } else if (strcmp(o->name, "softmax-xent-bwd") == 0) {
        if (st == CLCNN_OK)
            st = clcnn_tensor_create(dev, clcnn_tensor_shape(x), &y);
        if (st == CLCNN_OK)
            st = clcnn_softmax_xent_backward(dev, x, labels, nlabels, y);
    } else {
        float loss = 0.0f;
        const size_t dims[1] = {1};
        if (st == CLCNN_OK)
            st = clcnn_softmax_xent_forward(dev, x, labels, nlabels, NULL, &loss);
        if (st == CLCNN_OK)
            st = clcnn_npy_save(o->output, 1, dims, &loss);
        if (st == CLCNN_OK)
            fprintf(stderr, "clcnn %s: wrote %s (1,): loss %.9g\n", cmd, o->output, (double)loss);
    }
    if (st == CLCNN_OK && y != NULL)
        st = save(y, yrank, o->output, cmd);
    clcnn_tensor_release(db);
    clcnn_tensor_release(dw);
    clcnn_tensor_release(y);
    clcnn_tensor_release(dy);
    clcnn_tensor_release(b);
    clcnn_tensor_release(w);
    clcnn_tensor_release(x);
    clcnn_device_release(dev);
    free(labels);
    if (labels_bad && st == CLCNN_STATUS_INVALID_ARG)
        return 1; /* load_labels printed the reason */
    return st == CLCNN_OK ? 0 : cli_fail(cmd, st);
}

int cli_op_fc(int argc, char **argv)
{
    char cmd[40];
    snprintf(cmd, sizeof cmd, "op %s", argv[0]);
    fc_options o = {.name = argv[0]};
    int rc = parse_fc(argc, argv, &o, cmd);
    return rc != 0 ? rc : run_fc(&o, cmd);
}
