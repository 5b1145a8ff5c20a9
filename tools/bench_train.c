/* clcnn bench train: training and inference images/s of a model on random batches, beside
 * PyTorch training the same network on the CPU (tools/bench/lenet_torch.py) in the same run. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double number_after(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    return p != NULL ? strtod(p + strlen(key), NULL) : 0.0;
}

/* Runs the PyTorch peer with OpenBLAS; fills line with its JSON, or returns false. The peer
 * knows the zoo's lenet and vgg16. */
static bool run_peer(const char *model, bool infer_only, size_t batch, size_t batches, char *line,
                     size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread "
             "/usr/bin/python3 %s/tools/bench/lenet_torch.py --model %s%s --batch %zu "
             "--batches %zu 2>/dev/null",
             CLCNN_SOURCE_DIR, model, infer_only ? " --infer-only" : "", batch, batches);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return false;
    bool ok = fgets(line, (int)size, p) != NULL && strstr(line, "train_images_per_s") != NULL;
    return pclose(p) == 0 && ok;
}

int cli_bench_train(int argc, char **argv)
{
    const char *model_path = CLCNN_SOURCE_DIR "/tools/models/lenet.model", *batch_text = "64",
               *batches_text = "20", *device = NULL;
    bool peer = true, infer_only = false;
    for (int i = 2; i < argc; i++) {
        int r = cli_option_value(argc, argv, &i, "--model", &model_path);
        if (r == 0)
            r = cli_option_value(argc, argv, &i, "--batch", &batch_text);
        if (r == 0)
            r = cli_option_value(argc, argv, &i, "--batches", &batches_text);
        if (r == 0)
            r = cli_option_value(argc, argv, &i, "--device", &device);
        if (r < 0)
            return cli_usage_error("bench train", "option '%s' needs a value", argv[i]);
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--no-peer") == 0)
            peer = false;
        else if (strcmp(argv[i], "--infer-only") == 0)
            infer_only = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: clcnn bench " BENCH_TRAIN_USAGE "\n\n" BENCH_TRAIN_HELP "\n");
            return 0;
        } else
            return cli_usage_error("bench train", "unknown argument '%s'", argv[i]);
    }
    size_t batch, batches, unused;
    if (!cli_parse_pair(batch_text, &batch, &unused) || batch == 0 || batch != unused)
        return cli_usage_error("bench train", "bad value '%s' for --batch", batch_text);
    if (!cli_parse_pair(batches_text, &batches, &unused) || batches == 0 || batches != unused)
        return cli_usage_error("bench train", "bad value '%s' for --batches", batches_text);
    clcnn_model_desc model;
    clcnn_status st = clcnn_model_load(model_path, &model);
    if (st != CLCNN_OK)
        return cli_fail("bench train", st);
    clcnn_device *dev = NULL;
    clcnn_net *net = NULL;
    st = clcnn_device_create(device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_net_create(dev, &model, 1, &net);
    size_t c = 0, h = 0, w = 0, classes = 1;
    if (st == CLCNN_OK)
        clcnn_net_shape(net, &c, &h, &w, &classes);
    size_t pixels = c * h * w;
    float *images = malloc(batch * (pixels ? pixels : 1) * sizeof *images);
    float *probs = malloc(batch * classes * sizeof *probs);
    int32_t *labels = malloc(batch * sizeof *labels);
    if (st == CLCNN_OK && (images == NULL || probs == NULL || labels == NULL))
        st = CLCNN_STATUS_OUT_OF_MEMORY;
    uint64_t r = 12345;
    for (size_t i = 0; st == CLCNN_OK && i < batch * pixels; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        images[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    for (size_t i = 0; st == CLCNN_OK && i < batch; i++)
        labels[i] = (int32_t)(i % classes);
    clcnn_optim_config cfg = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    cfg.lr = 0.01f;
    cfg.momentum = 0.9f;
    double train_rate = 0, infer_rate = 0;
    for (int pass = infer_only ? 1 : 0; pass < 2 && st == CLCNN_OK; pass++) {
        for (size_t k = 0; k < 3 && st == CLCNN_OK; k++) /* warm-up: compiles, allocates */
            st = pass == 0 ? clcnn_net_train_step(net, images, labels, batch, &cfg, NULL)
                           : clcnn_net_forward(net, images, batch, probs);
        double t0 = seconds();
        for (size_t k = 0; k < batches && st == CLCNN_OK; k++)
            st = pass == 0 ? clcnn_net_train_step(net, images, labels, batch, &cfg, NULL)
                           : clcnn_net_forward(net, images, batch, probs);
        double rate = (double)(batch * batches) / (seconds() - t0);
        if (pass == 0)
            train_rate = rate;
        else
            infer_rate = rate;
    }
    if (st == CLCNN_OK) {
        printf("# clcnn bench train on '%s': %s, batch %zu, %zu timed batches after 3 warm-up\n",
               clcnn_device_get_info(dev)->name, model_path, batch, batches);
        printf("%-28s %14s %14s\n", "implementation", "train img/s", "infer img/s");
        printf("%-28s %14.1f %14.1f\n", "clcnn", train_rate, infer_rate);
        char line[1024];
        const char *peer_model = strstr(model_path, "vgg16") != NULL   ? "vgg16"
                                 : strstr(model_path, "lenet") != NULL ? "lenet"
                                                                       : NULL;
        if (peer && peer_model == NULL)
            printf("# no PyTorch peer for this model (the peer knows lenet and vgg16)\n");
        else if (peer && run_peer(peer_model, infer_only, batch, batches, line, sizeof line)) {
            double pt = number_after(line, "\"train_images_per_s\": ");
            double pi = number_after(line, "\"infer_images_per_s\": ");
            printf("%-28s %14.1f %14.1f\n", "pytorch (cpu, openblas)", pt, pi);
            if (infer_only)
                printf("clcnn / pytorch: inference %.2fx (%.1f vs %.1f ms per batch)\n",
                       infer_rate / pi, 1e3 * (double)batch / infer_rate, 1e3 * (double)batch / pi);
            else
                printf("clcnn / pytorch: training %.2fx, inference %.2fx\n", train_rate / pt,
                       infer_rate / pi);
        } else if (peer) {
            printf("# the PyTorch peer did not run (it needs Debian's python3-torch at "
                   "/usr/bin/python3)\n");
        }
    }
    free(images);
    free(probs);
    free(labels);
    clcnn_net_release(net);
    clcnn_device_release(dev);
    clcnn_model_desc_free(&model);
    return st == CLCNN_OK ? 0 : cli_fail("bench train", st);
}
