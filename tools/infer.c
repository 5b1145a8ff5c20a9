/* clcnn infer: classifies images (.npy or binary PGM) with trained weights and prints the top
 * classes with their names and probabilities. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reads a binary PGM (P5, maxval <= 255) as bytes; false with a message on stderr. */
static bool read_pgm(const char *path, size_t *h, size_t *w, unsigned char **pixels)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "clcnn infer: %s: cannot open\n", path);
        return false;
    }
    unsigned long v[3] = {0, 0, 0};
    char magic[3] = {0};
    bool ok = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && magic[1] == '5';
    for (int i = 0; ok && i < 3; i++) {
        int c = fgetc(f);
        while (c == '#' || isspace(c)) {
            if (c == '#')
                while (c != '\n' && c != EOF)
                    c = fgetc(f);
            c = fgetc(f);
        }
        ok = c != EOF && isdigit(c) && ungetc(c, f) != EOF && fscanf(f, "%lu", &v[i]) == 1;
    }
    ok = ok && isspace(fgetc(f)) && v[0] > 0 && v[1] > 0 && v[0] <= 4096 && v[1] <= 4096 &&
         v[2] > 0 && v[2] <= 255;
    if (!ok) {
        fprintf(stderr, "clcnn infer: %s: not a binary PGM (P5, maxval at most 255)\n", path);
        fclose(f);
        return false;
    }
    *w = v[0];
    *h = v[1];
    *pixels = malloc(*h * *w);
    ok = *pixels != NULL && fread(*pixels, 1, *h * *w, f) == *h * *w;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "clcnn infer: %s: truncated: expected %zux%zu pixels\n", path, *w, *h);
        free(*pixels);
    }
    return ok;
}

/* One image as normalized floats for a C x H x W input; false with a message on stderr. */
static bool load_image(const char *path, const clcnn_dataset *data, size_t c, size_t h, size_t w,
                       float *out)
{
    size_t n = c * h * w, ih = 0, iw = 0;
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".npy") == 0) {
        clcnn_npy_array a;
        if (clcnn_npy_load(path, &a) != CLCNN_OK) {
            fprintf(stderr, "clcnn infer: %s\n", clcnn_last_error());
            return false;
        }
        bool fits = a.count == n;
        for (size_t i = 0; fits && i < n; i++)
            out[i] = (a.data[i] / 255.0f - data->mean[i / (h * w)]) / data->std[i / (h * w)];
        if (!fits)
            fprintf(stderr, "clcnn infer: %s holds %zu values; the model takes %zux%zux%zu\n", path,
                    a.count, c, h, w);
        clcnn_npy_array_free(&a);
        return fits;
    }
    unsigned char *px = NULL;
    if (!read_pgm(path, &ih, &iw, &px))
        return false;
    bool fits = c == 1 && ih == h && iw == w;
    for (size_t i = 0; fits && i < n; i++)
        out[i] = ((float)px[i] / 255.0f - data->mean[0]) / data->std[0];
    if (!fits)
        fprintf(stderr, "clcnn infer: %s is %zux%zu grey; the model takes %zux%zux%zu\n", path, iw,
                ih, c, h, w);
    free(px);
    return fits;
}

/* The images on the command line, batch by batch, for the scheduler. */
typedef struct infer_job {
    char **paths;
    size_t count, batch, c, h, w, top;
    const clcnn_dataset *data;
} infer_job;

static clcnn_status infer_fill(void *user, uint64_t b, float *images, int32_t *labels,
                               size_t *count)
{
    const infer_job *job = user;
    size_t first = (size_t)b * job->batch, pixels = job->c * job->h * job->w;
    size_t n = job->count - first < job->batch ? job->count - first : job->batch;
    for (size_t k = 0; k < n; k++) {
        if (!load_image(job->paths[first + k], job->data, job->c, job->h, job->w,
                        images + k * pixels))
            return CLCNN_STATUS_IO; /* load_image said why */
        labels[k] = 0;
    }
    *count = n;
    return CLCNN_OK;
}

static clcnn_status infer_print(void *user, const clcnn_sched_result *r)
{
    const infer_job *job = user;
    for (size_t k = 0; k < r->count; k++) {
        const float *p = r->values + k * r->outputs;
        bool *used = calloc(r->outputs, sizeof *used);
        if (used == NULL)
            return CLCNN_STATUS_OUT_OF_MEMORY;
        printf("%s:", job->paths[(size_t)r->batch * job->batch + k]);
        for (size_t t = 0; t < job->top && t < r->outputs; t++) {
            size_t best = r->outputs;
            for (size_t j = 0; j < r->outputs; j++)
                if (!used[j] && (best == r->outputs || p[j] > p[best]))
                    best = j;
            used[best] = true;
            const char *name = job->data->class_names != NULL && best < job->data->classes
                                   ? job->data->class_names[best]
                                   : "?";
            printf("  %s %.3f", name, (double)p[best]);
        }
        printf("\n");
        free(used);
    }
    return CLCNN_OK;
}

int cli_cmd_infer(int argc, char **argv)
{
    const char *model_path = NULL, *weights = NULL, *data_dir = CLCNN_FASHION_MNIST_DIR,
               *device = NULL, *top_text = "3", *batch_text = "8", *inflight_text = "2",
               *trace_path = NULL;
    int first_image = argc;
    for (int i = 1; i < argc; i++) {
        const char *names[] = {"--model", "--weights", "--data",     "--device",
                               "--top",   "--batch",   "--inflight", "--trace"};
        const char **dst[] = {&model_path, &weights,    &data_dir,      &device,
                              &top_text,   &batch_text, &inflight_text, &trace_path};
        int r = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0] && r == 0; k++)
            r = cli_option_value(argc, argv, &i, names[k], dst[k]);
        if (r < 0)
            return cli_usage_error("infer", "option '%s' needs a value", argv[i]);
        if (r > 0)
            continue;
        if (argv[i][0] == '-')
            return cli_usage_error("infer", "unknown option '%s'", argv[i]);
        first_image = i;
        break;
    }
    size_t top, batch, inflight, unused;
    if (model_path == NULL || weights == NULL || first_image == argc)
        return cli_usage_error("infer", "%s are required", "--model, --weights and an image");
    if (!cli_parse_pair(top_text, &top, &unused) || top == 0 || top != unused)
        return cli_usage_error("infer", "bad value '%s' for --top", top_text);
    if (!cli_parse_pair(batch_text, &batch, &unused) || batch == 0 || batch != unused)
        return cli_usage_error("infer", "bad value '%s' for --batch", batch_text);
    if (!cli_parse_pair(inflight_text, &inflight, &unused) || inflight == 0 || inflight > 16 ||
        inflight != unused)
        return cli_usage_error("infer", "bad value '%s' for --inflight (1 to 16)", inflight_text);
    clcnn_model_desc model;
    clcnn_dataset data = {0};
    clcnn_device *dev = NULL;
    clcnn_net *net = NULL;
    clcnn_trace *trace = NULL;
    clcnn_status st = clcnn_model_load(model_path, &model);
    if (st != CLCNN_OK)
        return cli_fail("infer", st);
    /* The test split names the classes and gives the training normalization. */
    st = clcnn_dataset_load_mnist(data_dir, "t10k", &data);
    if (st == CLCNN_OK)
        st = clcnn_device_create(device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_net_create(dev, &model, 0, &net);
    if (st == CLCNN_OK)
        st = clcnn_net_load_weights(net, weights);
    if (st == CLCNN_OK && trace_path != NULL)
        st = clcnn_trace_create(&trace);
    int rc = st == CLCNN_OK ? 0 : cli_fail("infer", st);
    if (rc == 0) {
        infer_job job = {
            argv + first_image, (size_t)(argc - first_image), batch, 0, 0, 0, top, &data};
        size_t classes;
        clcnn_net_shape(net, &job.c, &job.h, &job.w, &classes);
        clcnn_sched_config c = clcnn_sched_config_default();
        c.batch = batch;
        c.batches = (job.count + batch - 1) / batch;
        c.inflight = inflight;
        c.fill = infer_fill;
        c.fill_user = &job;
        c.result = infer_print;
        c.result_user = &job;
        c.trace = trace;
        c.name = "infer";
        st = clcnn_sched_run(net, &c, NULL);
        /* A file that does not load was reported by load_image. */
        rc = st == CLCNN_OK ? 0 : st == CLCNN_STATUS_IO ? 1 : cli_fail("infer", st);
    }
    if (trace != NULL) {
        st = clcnn_trace_write(trace, trace_path);
        if (st != CLCNN_OK && rc == 0)
            rc = cli_fail("infer", st);
        clcnn_trace_release(trace);
    }
    clcnn_net_release(net);
    clcnn_device_release(dev);
    clcnn_dataset_free(&data);
    clcnn_model_desc_free(&model);
    return rc;
}
