/* clcnn train: trains a model file's network on Fashion-MNIST (or another MNIST-format copy)
 * with seeded shuffling and augmentation, reporting per-epoch loss and test accuracy. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

typedef struct train_options {
    const char *model, *data, *device, *log, *freeze, *out, *checkpoint, *resume, *init, *trace;
    bool greedy;
    size_t inflight, loaders;
    clcnn_trace *tracer; /* when --trace */
    size_t checkpoint_every;
    size_t epochs, batch, limit;
    uint64_t seed;
    clcnn_optim_config optim;
    clcnn_augment augment;
} train_options;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fisher-Yates with a generator keyed by (seed, epoch): the same order on every run. */
static void shuffle(size_t *order, size_t n, uint64_t seed, size_t epoch)
{
    uint64_t state = seed ^ (0xa0761d6478bd642full * (epoch + 1));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix(&state) % i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_count(const char *s, size_t *out)
{
    size_t a, b;
    if (!cli_parse_pair(s, &a, &b) || a != b)
        return false;
    *out = a;
    return true;
}

static int parse_options(int argc, char **argv, train_options *o)
{
    const char *epochs = "3", *batch = "64", *optimizer = "momentum", *lr = "0.01",
               *momentum = "0.9", *decay = "0", *seed = "1", *limit = "0", *crop = "0",
               *every = "0", *inflight = "2", *loaders = "1";
    struct {
        const char *name;
        const char **dst;
    } opts[] = {{"--model", &o->model},
                {"--data", &o->data},
                {"--device", &o->device},
                {"--log", &o->log},
                {"--freeze", &o->freeze},
                {"--epochs", &epochs},
                {"--batch", &batch},
                {"--optimizer", &optimizer},
                {"--lr", &lr},
                {"--momentum", &momentum},
                {"--weight-decay", &decay},
                {"--seed", &seed},
                {"--limit", &limit},
                {"--crop", &crop},
                {"--out", &o->out},
                {"--checkpoint", &o->checkpoint},
                {"--checkpoint-every", &every},
                {"--resume", &o->resume},
                {"--init", &o->init},
                {"--inflight", &inflight},
                {"--loaders", &loaders},
                {"--trace", &o->trace}};
    for (int i = 1; i < argc; i++) {
        int r = 0;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && r == 0; k++) {
            r = cli_option_value(argc, argv, &i, opts[k].name, opts[k].dst);
            if (r < 0)
                return cli_usage_error("train", "option '%s' needs a value", opts[k].name);
        }
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--flip") == 0)
            o->augment.hflip = true;
        else if (strcmp(argv[i], "--greedy") == 0)
            o->greedy = true;
        else
            return cli_usage_error("train", "unknown argument '%s'", argv[i]);
    }
    if (o->model == NULL)
        return cli_usage_error("train", "missing %s", "--model FILE");
    if (o->greedy && o->resume != NULL)
        return cli_usage_error("train", "%s", "--greedy and --resume do not go together");
    if (o->data == NULL)
        o->data = CLCNN_FASHION_MNIST_DIR;
    size_t seed_value = 0;
    if (!parse_count(epochs, &o->epochs) || o->epochs == 0)
        return cli_usage_error("train", "bad value '%s' for --epochs", epochs);
    if (!parse_count(batch, &o->batch) || o->batch == 0)
        return cli_usage_error("train", "bad value '%s' for --batch", batch);
    if (!parse_count(limit, &o->limit))
        return cli_usage_error("train", "bad value '%s' for --limit", limit);
    if (!parse_count(crop, &o->augment.crop_pad))
        return cli_usage_error("train", "bad value '%s' for --crop", crop);
    if (!parse_count(every, &o->checkpoint_every))
        return cli_usage_error("train", "bad value '%s' for --checkpoint-every", every);
    if (!parse_count(inflight, &o->inflight) || o->inflight == 0 || o->inflight > 16)
        return cli_usage_error("train", "bad value '%s' for --inflight (1 to 16)", inflight);
    if (!parse_count(loaders, &o->loaders) || o->loaders == 0 || o->loaders > 64)
        return cli_usage_error("train", "bad value '%s' for --loaders (1 to 64)", loaders);
    if (!parse_count(seed, &seed_value))
        return cli_usage_error("train", "bad value '%s' for --seed", seed);
    o->seed = seed_value;
    bool sgd = strcmp(optimizer, "sgd") == 0, mom = strcmp(optimizer, "momentum") == 0,
         nesterov = strcmp(optimizer, "nesterov") == 0, adam = strcmp(optimizer, "adam") == 0;
    if (!sgd && !mom && !nesterov && !adam)
        return cli_usage_error("train", "unknown optimizer '%s' (sgd, momentum, nesterov, adam)",
                               optimizer);
    o->optim = clcnn_optim_config_default(adam ? CLCNN_OPTIM_ADAM : CLCNN_OPTIM_SGD);
    if (!parse_float(lr, &o->optim.lr))
        return cli_usage_error("train", "bad value '%s' for --lr", lr);
    if (!parse_float(decay, &o->optim.weight_decay))
        return cli_usage_error("train", "bad value '%s' for --weight-decay", decay);
    if (mom || nesterov) {
        if (!parse_float(momentum, &o->optim.momentum) || o->optim.momentum == 0)
            return cli_usage_error("train", "bad value '%s' for --momentum", momentum);
        o->optim.nesterov = nesterov;
    }
    return 0;
}

/* Batches of a dataset for the scheduler: images order[first + b * batch ...] (or first + ...
 * in dataset order when order is NULL), up to end. */
typedef struct feed {
    const clcnn_dataset *data;
    const size_t *order;
    size_t first, end, batch;
    const clcnn_augment *augment;
    uint64_t seed;
} feed;

static clcnn_status feed_fill(void *user, uint64_t b, float *images, int32_t *labels, size_t *count)
{
    const feed *f = user;
    size_t first = f->first + (size_t)b * f->batch;
    size_t n = f->end - first < f->batch ? f->end - first : f->batch;
    size_t idx[1024];
    const size_t *indices = f->order != NULL ? f->order + first : idx;
    if (f->order == NULL) {
        if (n > sizeof idx / sizeof idx[0])
            return CLCNN_STATUS_INVALID_ARG;
        for (size_t k = 0; k < n; k++)
            idx[k] = first + k;
    }
    *count = n;
    return clcnn_dataset_batch(f->data, indices, n, f->augment, f->seed, images, labels);
}

static uint64_t feed_batches(const feed *f)
{
    return (f->end - f->first + f->batch - 1) / f->batch;
}

typedef struct tally {
    size_t classes, right;
    size_t *confusion; /* may be NULL */
} tally;

static clcnn_status tally_result(void *user, const clcnn_sched_result *r)
{
    tally *t = user;
    for (size_t k = 0; k < r->count; k++) {
        const float *p = r->values + k * r->outputs;
        size_t best = 0;
        for (size_t c = 1; c < r->outputs; c++)
            if (p[c] > p[best])
                best = c;
        t->right += best == (size_t)r->labels[k];
        if (t->confusion != NULL)
            t->confusion[(size_t)r->labels[k] * t->classes + best]++;
    }
    return CLCNN_OK;
}

/* Test accuracy, and the confusion matrix when confusion is not NULL (classes x classes,
 * rows the true class), through the scheduler. */
static clcnn_status evaluate(clcnn_net *net, const clcnn_dataset *test, size_t batch,
                             const clcnn_sched_config *base, const char *name, double *accuracy,
                             size_t *confusion)
{
    *accuracy = 0.0;
    if (test->count == 0)
        return CLCNN_OK;
    feed f = {test, NULL, 0, test->count, batch > 1024 ? 1024 : batch, NULL, 0};
    tally t = {test->classes, 0, confusion};
    clcnn_sched_config c = *base;
    c.training = false;
    c.batch = f.batch;
    c.batches = feed_batches(&f);
    c.fill = feed_fill;
    c.fill_user = &f;
    c.result = tally_result;
    c.result_user = &t;
    c.name = name;
    clcnn_status st = clcnn_sched_run(net, &c, NULL);
    *accuracy = (double)t.right / (double)test->count;
    return st;
}

static clcnn_status apply_freeze(clcnn_net *net, const char *list)
{
    if (list == NULL)
        return CLCNN_OK;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    clcnn_status st = CLCNN_OK;
    for (char *name = strtok_r(buf, ",", &save); name != NULL && st == CLCNN_OK;
         name = strtok_r(NULL, ",", &save))
        st = clcnn_net_set_frozen(net, name, true);
    return st;
}

static void progress(bool tty, size_t epoch, size_t done, size_t total, double loss, double rate,
                     double started)
{
    double left = rate > 0 ? (double)(total - done) / rate : 0;
    if (tty)
        fprintf(stderr, "\repoch %zu: %zu/%zu images, loss %.4f, %.0f images/s, ETA %.0f s   ",
                epoch, done, total, loss, rate, left);
    else
        fprintf(stderr, "epoch %zu: %zu/%zu images, loss %.4f, %.0f images/s (%.0f s)\n", epoch,
                done, total, loss, rate, now_s() - started);
}

/* --init kmeans: the first convolution's filters become k-means centres of normalized image
 * patches (Coates and Ng, 2011); --init FILE: start from pre-trained weights. */
static clcnn_status initialize(const train_options *o, clcnn_net *net, const clcnn_dataset *train)
{
    if (o->init == NULL)
        return CLCNN_OK;
    if (strcmp(o->init, "kmeans") != 0)
        return clcnn_net_load_weights(net, o->init);
    clcnn_tensor *w = NULL;
    for (size_t i = 0; i < clcnn_net_param_count(net) && w == NULL; i++) {
        const char *name;
        clcnn_tensor *t;
        if (clcnn_net_param(net, i, &name, &t, NULL) == CLCNN_OK &&
            strstr(name, ".weight") != NULL && clcnn_tensor_shape(t).h > 1)
            w = t;
    }
    if (w == NULL) {
        fprintf(stderr, "clcnn train: --init kmeans needs a convolution\n");
        return CLCNN_STATUS_INVALID_ARG;
    }
    clcnn_shape s = clcnn_tensor_shape(w);
    size_t dim = s.c * s.h * s.w, n = 100 * s.n;
    float *patches = malloc(n * dim * sizeof *patches),
          *centres = malloc(s.n * dim * sizeof *centres);
    clcnn_status st = patches && centres ? CLCNN_OK : CLCNN_STATUS_OUT_OF_MEMORY;
    if (st == CLCNN_OK)
        st = clcnn_dataset_patches(train, n, s.h, s.w, o->seed, patches);
    if (st == CLCNN_OK)
        st = clcnn_kmeans(patches, n, dim, s.n, 10, o->seed, centres);
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(w, centres, s.n * dim);
    if (st == CLCNN_OK)
        fprintf(stderr, "initialized %zu filters of %zux%zux%zu by k-means over %zu patches\n", s.n,
                s.c, s.h, s.w, n);
    free(patches);
    free(centres);
    return st;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Where Ctrl-C and --checkpoint-every write: --checkpoint, else "interrupted.ckpt". */
static const char *checkpoint_path(const train_options *o)
{
    return o->checkpoint != NULL ? o->checkpoint : "interrupted.ckpt";
}

/* Losses and progress of an epoch's training batches, as they come back. */
typedef struct epoch_progress {
    size_t epoch, done, total, start, steps;
    double sum, started, last_report;
    bool tty;
} epoch_progress;

static clcnn_status on_trained(void *user, const clcnn_sched_result *r)
{
    epoch_progress *p = user;
    p->sum += r->loss;
    p->steps++;
    p->done += r->count;
    double t = now_s();
    if (t - p->last_report > (p->tty ? 0.5 : 30.0) || p->done >= p->total) {
        progress(p->tty, p->epoch, p->done, p->total, p->sum / (double)p->steps,
                 (double)(p->done - p->start) / (t - p->started), p->started);
        p->last_report = t;
    }
    /* Ctrl-C: stop after this batch (the net may be a few steps further: the checkpoint
     * records where it is). */
    return interrupted ? CLCNN_STATUS_IO : CLCNN_OK;
}

static clcnn_sched_config sched_base(const train_options *o)
{
    clcnn_sched_config c = clcnn_sched_config_default();
    c.inflight = o->inflight;
    c.loaders = o->loaders;
    c.trace = o->tracer;
    return c;
}

/* Steps [first, end) of the epoch's order through the scheduler, in runs that end where a
 * --checkpoint-every checkpoint is due. */
static clcnn_status train_range(const train_options *o, clcnn_net *net, feed *f, epoch_progress *p,
                                const char *name)
{
    clcnn_status st = CLCNN_OK;
    while (st == CLCNN_OK && f->first < f->end) {
        uint64_t batches = feed_batches(f);
        bool checkpoint = o->checkpoint_every > 0 && o->checkpoint != NULL;
        if (checkpoint) {
            uint64_t due = o->checkpoint_every - clcnn_net_steps(net) % o->checkpoint_every;
            batches = due < batches ? due : batches;
        }
        clcnn_sched_config c = sched_base(o);
        c.training = true;
        c.batch = f->batch;
        c.batches = batches;
        c.optimizer = &o->optim;
        c.fill = feed_fill;
        c.fill_user = f;
        c.result = on_trained;
        c.result_user = p;
        c.name = name;
        st = clcnn_sched_run(net, &c, NULL);
        if (st != CLCNN_OK)
            break;
        f->first += (size_t)batches * f->batch;
        if (f->first > f->end)
            f->first = f->end;
        if (checkpoint && clcnn_net_steps(net) % o->checkpoint_every == 0)
            st = clcnn_net_save_checkpoint(net, o->checkpoint, &o->optim, p->epoch - 1);
    }
    return st;
}

static clcnn_status run_epochs(const train_options *o, clcnn_net *net, const clcnn_dataset *train,
                               const clcnn_dataset *test, FILE *log, uint64_t done_steps)
{
    if (train->count == 0 || test->count == 0 || o->batch == 0)
        return CLCNN_STATUS_INVALID_ARG;
    size_t n = o->limit > 0 && o->limit < train->count ? o->limit : train->count;
    size_t *order = malloc(train->count * sizeof *order);
    clcnn_status st = order != NULL ? CLCNN_OK : CLCNN_STATUS_OUT_OF_MEMORY;
    bool tty = isatty(fileno(stderr));
    /* A resumed run continues at the batch its checkpoint had reached: the order of every
     * epoch, the augmentation and dropout follow from the seed and the step alone. */
    const size_t per_epoch = (n + o->batch - 1) / o->batch;
    size_t epoch0 = (size_t)(done_steps / per_epoch) + 1, skip = (size_t)(done_steps % per_epoch);
    for (size_t epoch = epoch0; st == CLCNN_OK && epoch <= o->epochs; epoch++) {
        shuffle(order, train->count, o->seed, epoch);
        size_t start = epoch == epoch0 ? skip * o->batch : 0;
        double started = now_s();
        epoch_progress p = {epoch, start, n, start, 0, 0.0, started, started, tty};
        feed f = {train, order, start, n, o->batch, &o->augment, o->seed * 1000003u + epoch};
        char name[32];
        snprintf(name, sizeof name, "epoch %zu", epoch);
        st = train_range(o, net, &f, &p, name);
        if (st != CLCNN_OK && interrupted) {
            st = clcnn_net_save_checkpoint(net, checkpoint_path(o), &o->optim, epoch - 1);
            if (st == CLCNN_OK)
                fprintf(stderr,
                        "\ninterrupted: checkpoint written to %s (resume with --resume %s)\n",
                        checkpoint_path(o), checkpoint_path(o));
            free(order);
            return st == CLCNN_OK ? CLCNN_STATUS_IO : st;
        }
        if (st != CLCNN_OK)
            break;
        double seconds = now_s() - started, accuracy = 0;
        double mean = p.steps ? p.sum / (double)p.steps : 0.0;
        clcnn_sched_config base = sched_base(o);
        snprintf(name, sizeof name, "eval %zu", epoch);
        st = evaluate(net, test, o->batch, &base, name, &accuracy, NULL);
        if (tty)
            fprintf(stderr, "\n");
        printf("epoch %zu: train loss %.4f, test accuracy %.4f, %.0f images/s training\n", epoch,
               mean, accuracy, (double)(n - start) / seconds);
        fflush(stdout);
        if (log != NULL)
            fprintf(log, "%zu,%.6f,%.6f,%.1f\n", epoch, mean, accuracy, (double)n / seconds);
        /* After every epoch, so an interrupted run keeps the last finished one. */
        if (st == CLCNN_OK && o->out != NULL)
            st = clcnn_net_save_weights(net, o->out);
        if (st == CLCNN_OK && o->checkpoint != NULL)
            st = clcnn_net_save_checkpoint(net, o->checkpoint, &o->optim, epoch);
    }
    free(order);
    return st;
}

/* The layer a parameter belongs to: "conv1" of "conv1.weight". */
static void layer_of(const char *param, char *buf, size_t size)
{
    const char *dot = strrchr(param, '.');
    snprintf(buf, size, "%.*s", (int)(dot != NULL ? dot - param : (long)strlen(param)), param);
}

/* Greedy layer-wise training: the layers with parameters train one at a time, bottom up, for
 * --epochs each, with every other layer frozen. */
static clcnn_status train_greedy(const train_options *o, clcnn_net *net, const clcnn_dataset *train,
                                 const clcnn_dataset *test, FILE *log)
{
    clcnn_status st = CLCNN_OK;
    char previous[64] = "";
    for (size_t i = 0; st == CLCNN_OK && i < clcnn_net_param_count(net); i++) {
        const char *name;
        char layer[64], other[64];
        st = clcnn_net_param(net, i, &name, NULL, NULL);
        layer_of(name, layer, sizeof layer);
        if (st != CLCNN_OK || strcmp(layer, previous) == 0)
            continue;
        snprintf(previous, sizeof previous, "%s", layer);
        for (size_t j = 0; st == CLCNN_OK && j < clcnn_net_param_count(net); j++) {
            const char *p;
            st = clcnn_net_param(net, j, &p, NULL, NULL);
            layer_of(p, other, sizeof other);
            if (st == CLCNN_OK)
                st = clcnn_net_set_frozen(net, other, strcmp(other, layer) != 0);
        }
        if (st == CLCNN_OK) {
            printf("greedy stage: training %s only\n", layer);
            st = run_epochs(o, net, train, test, log, 0);
        }
    }
    return st;
}

int cli_cmd_train(int argc, char **argv)
{
    train_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc;
    clcnn_model_desc model;
    clcnn_status st = clcnn_model_load(o.model, &model);
    if (st != CLCNN_OK)
        return cli_fail("train", st);
    clcnn_dataset train = {0}, test = {0};
    clcnn_device *dev = NULL;
    clcnn_net *net = NULL;
    FILE *log = NULL;
    bool reported = false; /* a message is already out */
    st = clcnn_dataset_load_mnist(o.data, "train", &train);
    if (st == CLCNN_OK)
        st = clcnn_dataset_load_mnist(o.data, "t10k", &test);
    if (st == CLCNN_OK)
        st = clcnn_device_create(o.device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_net_create(dev, &model, o.seed, &net);
    uint64_t done_steps = 0;
    if (st == CLCNN_OK && o.resume != NULL) {
        st = clcnn_net_load_checkpoint(net, o.resume, &o.optim, NULL);
        done_steps = clcnn_net_steps(net);
        if (st == CLCNN_OK)
            fprintf(stderr,
                    "resuming from %s after %llu steps (the optimizer and its settings "
                    "come from the checkpoint)\n",
                    o.resume, (unsigned long long)done_steps);
    }
    if (st == CLCNN_OK)
        st = apply_freeze(net, o.freeze);
    if (st == CLCNN_OK && o.trace != NULL)
        st = clcnn_trace_create(&o.tracer);
    if (st == CLCNN_OK && o.log != NULL) {
        log = fopen(o.log, "w");
        if (log == NULL) {
            fprintf(stderr, "clcnn train: cannot write %s\n", o.log);
            st = CLCNN_STATUS_IO;
        } else {
            fprintf(log, "epoch,train_loss,test_accuracy,images_per_s\n");
        }
    }
    if (st == CLCNN_OK) {
        size_t c, h, w, outputs;
        clcnn_net_shape(net, &c, &h, &w, &outputs);
        if (c != train.channels || h != train.height || w != train.width ||
            outputs != train.classes) {
            fprintf(stderr,
                    "clcnn train: the model takes %zux%zux%zu images into %zu classes; the data "
                    "in %s has %zux%zux%zu images in %zu classes\n",
                    c, h, w, outputs, o.data, train.channels, train.height, train.width,
                    train.classes);
            st = CLCNN_STATUS_BAD_SHAPE;
            reported = true;
        }
    }
    if (st == CLCNN_OK) {
        fprintf(stderr, "training %s on %s (%zu images, %zu test) on '%s'\n", o.model, o.data,
                train.count, test.count, clcnn_device_get_info(dev)->name);
        signal(SIGINT, on_interrupt);
        if (o.resume == NULL)
            st = initialize(&o, net, &train);
        if (st == CLCNN_OK && o.greedy)
            st = train_greedy(&o, net, &train, &test, log);
        else if (st == CLCNN_OK)
            st = run_epochs(&o, net, &train, &test, log, done_steps);
        signal(SIGINT, SIG_DFL);
    }
    if (o.tracer != NULL) {
        /* Also after a failure or Ctrl-C: the trace shows how far it got. */
        clcnn_status ts = clcnn_trace_write(o.tracer, o.trace);
        if (ts == CLCNN_OK)
            fprintf(stderr, "trace of %zu events written to %s\n",
                    clcnn_trace_event_count(o.tracer), o.trace);
        else if (st == CLCNN_OK)
            st = ts;
        clcnn_trace_release(o.tracer);
    }
    if (log != NULL)
        fclose(log);
    clcnn_net_release(net);
    clcnn_device_release(dev);
    clcnn_dataset_free(&train);
    clcnn_dataset_free(&test);
    clcnn_model_desc_free(&model);
    if (interrupted)
        return 130;
    if (reported || (st == CLCNN_STATUS_IO && log == NULL && o.log))
        return 1;
    return st == CLCNN_OK ? 0 : cli_fail("train", st);
}

static void print_confusion(const clcnn_dataset *test, const size_t *confusion)
{
    size_t k = test->classes;
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
    for (size_t c = 0; c < k; c++)
        printf(" %5zu", c);
    printf("\n");
    for (size_t r = 0; r < k; r++) {
        printf("%zu %-10.10s", r, test->class_names != NULL ? test->class_names[r] : "");
        for (size_t c = 0; c < k; c++)
            printf(" %5zu", confusion[r * k + c]);
        printf("\n");
    }
}

int cli_cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *weights = NULL, *data = CLCNN_FASHION_MNIST_DIR, *device = NULL;
    struct {
        const char *name;
        const char **dst;
    } opts[] = {{"--model", &model_path},
                {"--weights", &weights},
                {"--data", &data},
                {"--device", &device}};
    for (int i = 1; i < argc; i++) {
        int r = 0;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && r == 0; k++) {
            r = cli_option_value(argc, argv, &i, opts[k].name, opts[k].dst);
            if (r < 0)
                return cli_usage_error("eval", "option '%s' needs a value", opts[k].name);
        }
        if (r == 0)
            return cli_usage_error("eval", "unknown argument '%s'", argv[i]);
    }
    if (model_path == NULL || weights == NULL)
        return cli_usage_error("eval", "%s are required", "--model and --weights");
    clcnn_model_desc model;
    clcnn_status st = clcnn_model_load(model_path, &model);
    if (st != CLCNN_OK)
        return cli_fail("eval", st);
    clcnn_dataset test = {0};
    clcnn_device *dev = NULL;
    clcnn_net *net = NULL;
    size_t *confusion = NULL;
    double accuracy = 0;
    st = clcnn_dataset_load_mnist(data, "t10k", &test);
    if (st == CLCNN_OK)
        st = clcnn_device_create(device, &dev);
    if (st == CLCNN_OK)
        st = clcnn_net_create(dev, &model, 0, &net);
    if (st == CLCNN_OK)
        st = clcnn_net_load_weights(net, weights);
    if (st == CLCNN_OK) {
        confusion = calloc(test.classes * test.classes, sizeof *confusion);
        clcnn_sched_config base = clcnn_sched_config_default();
        st = confusion != NULL ? evaluate(net, &test, 100, &base, "eval", &accuracy, confusion)
                               : CLCNN_STATUS_OUT_OF_MEMORY;
    }
    if (st == CLCNN_OK) {
        printf("test accuracy %.4f (%zu images of %s)\n", accuracy, test.count, data);
        print_confusion(&test, confusion);
    }
    free(confusion);
    clcnn_net_release(net);
    clcnn_device_release(dev);
    clcnn_dataset_free(&test);
    clcnn_model_desc_free(&model);
    return st == CLCNN_OK ? 0 : cli_fail("eval", st);
}
