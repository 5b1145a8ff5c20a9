/* Networks on the device: parameters named and initialized as PyTorch does, probabilities out
 * of the forward, the loss falling on a learnable problem, bit-identical training for a seed,
 * frozen layers unchanged bit for bit, and refusals. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char small_model[] = "input 1x12x12\n"
                                  "conv 4 3x3 pad=1 relu\n"
                                  "maxpool 2x2\n"
                                  "conv 6 3x3 relu\n"
                                  "fc 16 relu\n"
                                  "dropout 0.25\n"
                                  "fc 3\n"
                                  "softmax\n";

static clcnn_net *make_net(const char *text, uint64_t seed)
{
    clcnn_model_desc m;
    assert_ok(clcnn_model_parse(text, strlen(text), "test.model", &m));
    clcnn_net *net = NULL;
    assert_ok(clcnn_net_create(test_dev, &m, seed, &net));
    clcnn_model_desc_free(&m);
    return net;
}

/* Three classes of 12x12 images: a bright bar (horizontal, vertical, or a diagonal) plus noise. */
enum { BATCH = 24, PIXELS = 144 };

static void make_batch(test_rng *rng, float *images, int32_t *labels)
{
    for (int b = 0; b < BATCH; b++) {
        int cls = b % 3;
        labels[b] = cls;
        int at = (int)(test_rng_next(rng) % 8) + 2;
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 12; x++) {
                bool on = cls == 0 ? y == at : cls == 1 ? x == at : x == y;
                images[b * PIXELS + y * 12 + x] =
                    (on ? 1.0f : 0.0f) + (float)test_rng_uniform(rng, -0.2, 0.2);
            }
    }
}

static float *download_param(clcnn_net *net, size_t i, size_t *count)
{
    clcnn_tensor *t = NULL;
    assert_ok(clcnn_net_param(net, i, NULL, &t, NULL));
    *count = clcnn_tensor_count(t);
    float *host = malloc(*count * sizeof *host);
    assert_ok(clcnn_tensor_download(t, host, *count));
    return host;
}

static void test_parameters_and_init(void **state)
{
    (void)state;
    clcnn_net *a = make_net(small_model, 7), *b = make_net(small_model, 7),
              *c = make_net(small_model, 8);
    assert_int_equal(clcnn_net_param_count(a), 8);
    static const char *const names[8] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                         "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};
    /* fan_in of each parameter: 1*3*3, 1*3*3, 4*3*3, 4*3*3, 6*4*4, 6*4*4, 16, 16 */
    static const size_t fan_in[8] = {9, 9, 36, 36, 96, 96, 16, 16};
    for (size_t i = 0; i < 8; i++) {
        const char *name;
        bool frozen = true;
        assert_ok(clcnn_net_param(a, i, &name, NULL, &frozen));
        assert_string_equal(name, names[i]);
        assert_false(frozen);
        size_t n, n2, n3;
        float *pa = download_param(a, i, &n), *pb = download_param(b, i, &n2),
              *pc = download_param(c, i, &n3);
        assert_memory_equal(pa, pb, n * sizeof *pa); /* same seed, same bits */
        assert_true(memcmp(pa, pc, n * sizeof *pa) != 0);
        double bound = 1.0 / sqrt((double)fan_in[i]), lo = 0, hi = 0;
        for (size_t k = 0; k < n; k++) {
            assert_true(fabs(pa[k]) <= bound);
            lo = pa[k] < lo ? pa[k] : lo;
            hi = pa[k] > hi ? pa[k] : hi;
        }
        if (n >= 16) /* uniform over the whole range */
            assert_true(hi - lo > bound);
        free(pa);
        free(pb);
        free(pc);
    }
    assert_status_msg(clcnn_net_param(a, 8, NULL, NULL, NULL), CLCNN_STATUS_INVALID_ARG,
                      "out of range");
    size_t c_in, h, w, outputs;
    clcnn_net_shape(a, &c_in, &h, &w, &outputs);
    assert_true(c_in == 1 && h == 12 && w == 12 && outputs == 3);
    clcnn_net_release(a);
    clcnn_net_release(b);
    clcnn_net_release(c);
    clcnn_net_release(NULL);
}

static void test_forward_gives_probabilities(void **state)
{
    (void)state;
    clcnn_net *net = make_net(small_model, 1);
    test_rng rng;
    test_rng_seed(&rng, 3);
    float images[BATCH * PIXELS], probs[BATCH * 3];
    int32_t labels[BATCH];
    make_batch(&rng, images, labels);
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++)
        probs[i] = NAN;
    assert_ok(clcnn_net_forward(net, images, BATCH, probs));
    for (int b = 0; b < BATCH; b++) {
        double sum = 0;
        for (int k = 0; k < 3; k++) {
            assert_true(probs[b * 3 + k] > 0 && probs[b * 3 + k] < 1);
            sum += probs[b * 3 + k];
        }
        assert_true(fabs(sum - 1.0) < 1e-5);
    }
    /* A smaller batch (the last of an epoch) works too, and gives the same rows. */
    float first[5 * 3];
    assert_ok(clcnn_net_forward(net, images, 5, first));
    assert_memory_equal(first, probs, sizeof first);
    clcnn_net_release(net);
}

/* Trains for a few dozen steps; returns the first and the last loss and fills weights. */
static void train(clcnn_net *net, int steps, float *first, float *last)
{
    test_rng rng;
    test_rng_seed(&rng, 11);
    float images[BATCH * PIXELS];
    int32_t labels[BATCH];
    clcnn_optim_config cfg = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    cfg.lr = 0.05f;
    cfg.momentum = 0.9f;
    for (int s = 0; s < steps; s++) {
        make_batch(&rng, images, labels);
        float loss = NAN;
        assert_ok(clcnn_net_train_step(net, images, labels, BATCH, &cfg, &loss));
        assert_true(isfinite(loss));
        if (s == 0)
            *first = loss;
        *last = loss;
    }
    assert_int_equal(clcnn_net_steps(net), (uint64_t)steps);
}

static void test_loss_falls_and_is_deterministic(void **state)
{
    (void)state;
    clcnn_net *a = make_net(small_model, 5), *b = make_net(small_model, 5);
    float first, last, first_b, last_b;
    train(a, 60, &first, &last);
    train(b, 60, &first_b, &last_b);
    print_message("loss %.4f -> %.4f over 60 steps\n", (double)first, (double)last);
    assert_true(first > 0.9f); /* about log 3 at the start */
    assert_true(last < 0.25f); /* the bars are easy to tell apart */
    assert_true(first == first_b && last == last_b);
    for (size_t i = 0; i < clcnn_net_param_count(a); i++) {
        size_t n, n2;
        float *pa = download_param(a, i, &n), *pb = download_param(b, i, &n2);
        assert_memory_equal(pa, pb, n * sizeof *pa);
        free(pa);
        free(pb);
    }
    /* The trained net classifies fresh images. */
    test_rng rng;
    test_rng_seed(&rng, 99);
    float images[BATCH * PIXELS], probs[BATCH * 3];
    int32_t labels[BATCH];
    make_batch(&rng, images, labels);
    assert_ok(clcnn_net_forward(a, images, BATCH, probs));
    int right = 0;
    for (int k = 0; k < BATCH; k++) {
        int best = 0;
        for (int c = 1; c < 3; c++)
            if (probs[k * 3 + c] > probs[k * 3 + best])
                best = c;
        right += best == labels[k];
    }
    assert_true(right >= BATCH - 2);
    clcnn_net_release(a);
    clcnn_net_release(b);
}

static void test_frozen_layers_do_not_change(void **state)
{
    (void)state;
    clcnn_net *net = make_net(small_model, 9);
    assert_ok(clcnn_net_set_frozen(net, "conv1", true));
    assert_ok(clcnn_net_set_frozen(net, "fc2", true));
    size_t n[8];
    float *before[8];
    for (size_t i = 0; i < 8; i++)
        before[i] = download_param(net, i, &n[i]);
    float first, last;
    train(net, 10, &first, &last);
    for (size_t i = 0; i < 8; i++) {
        size_t count;
        float *after = download_param(net, i, &count);
        bool frozen_param = i < 2 || i >= 6;
        bool same = memcmp(after, before[i], count * sizeof *after) == 0;
        assert_true(frozen_param ? same : !same);
        free(after);
        free(before[i]);
    }
    assert_status_msg(clcnn_net_set_frozen(net, "pool1", true), CLCNN_STATUS_INVALID_ARG,
                      "layers with parameters: conv1, conv2, fc1, fc2");
    clcnn_net_release(net);

    /* Everything frozen: a step changes nothing and computes no gradients. */
    net = make_net("input 1x12x12\nconv 2 3x3 frozen\nfc 3 frozen\nsoftmax\n", 2);
    float *w0 = download_param(net, 2, &n[0]);
    train(net, 2, &first, &last);
    float *w1 = download_param(net, 2, &n[1]);
    assert_memory_equal(w0, w1, n[0] * sizeof *w0);
    free(w0);
    free(w1);
    clcnn_net_release(net);
}

static void test_weights_round_trip(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *path = test_path(dir, "small.weights"), *other = test_path(dir, "other.weights");
    clcnn_net *a = make_net(small_model, 5);
    float first, last;
    train(a, 5, &first, &last);
    assert_ok(clcnn_net_save_weights(a, path));
    clcnn_net *b = make_net(small_model, 77);
    assert_ok(clcnn_net_load_weights(b, path));
    for (size_t i = 0; i < clcnn_net_param_count(a); i++) {
        size_t n, n2;
        float *pa = download_param(a, i, &n), *pb = download_param(b, i, &n2);
        assert_memory_equal(pa, pb, n * sizeof *pa);
        free(pa);
        free(pb);
    }
    test_rng rng;
    test_rng_seed(&rng, 4);
    float images[BATCH * PIXELS], pa[BATCH * 3], pb[BATCH * 3];
    int32_t labels[BATCH];
    make_batch(&rng, images, labels);
    assert_ok(clcnn_net_forward(a, images, BATCH, pa));
    assert_ok(clcnn_net_forward(b, images, BATCH, pb));
    assert_memory_equal(pa, pb, sizeof pa);

    /* Weights of another model are refused, naming the tensor, and change nothing. */
    clcnn_net *c = make_net("input 1x12x12\nconv 4 3x3 pad=1 relu\nmaxpool 2x2\nconv 6 3x3 "
                            "relu\nfc 20 relu\nfc 3\nsoftmax\n",
                            3);
    assert_ok(clcnn_net_save_weights(c, other));
    size_t n;
    float *before = download_param(b, 4, &n);
    assert_status_msg(clcnn_net_load_weights(b, other), CLCNN_STATUS_BAD_SHAPE, "fc1.weight");
    assert_non_null(strstr(clcnn_last_error(), other));
    float *after = download_param(b, 4, &n);
    assert_memory_equal(before, after, n * sizeof *before);
    free(before);
    free(after);
    /* A file with a tensor the model lacks is refused too. */
    clcnn_net *d = make_net("input 1x12x12\nconv 4 3x3 pad=1 relu\nmaxpool 2x2\nconv 6 3x3 "
                            "relu\nfc 16 relu\ndropout 0.25\nfc 3\nfc 3 name=extra\nsoftmax\n",
                            3);
    assert_ok(clcnn_net_save_weights(d, other));
    assert_status_msg(clcnn_net_load_weights(b, other), CLCNN_STATUS_CORRUPT,
                      "tensor 'extra.weight' is not a parameter of this model");
    assert_status_msg(clcnn_net_load_weights(b, "/nonexistent/x.weights"), CLCNN_STATUS_IO,
                      "/nonexistent/x.weights");
    clcnn_net_release(a);
    clcnn_net_release(b);
    clcnn_net_release(c);
    clcnn_net_release(d);
    test_rmtree(dir);
    free(dir);
    free(path);
    free(other);
}

/* A checkpoint written mid-training and resumed in another net gives the same bits as training
 * that never stopped: parameters, optimizer state, step count (which seeds dropout) and seed. */
static void test_checkpoint_resume_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *ckpt = test_path(dir, "mid.ckpt"), *plain = test_path(dir, "plain.weights");
    const clcnn_optim_kind kinds[2] = {CLCNN_OPTIM_SGD, CLCNN_OPTIM_ADAM};
    for (int k = 0; k < 2; k++) {
        clcnn_optim_config cfg = clcnn_optim_config_default(kinds[k]);
        cfg.lr = kinds[k] == CLCNN_OPTIM_ADAM ? 0.002f : 0.05f;
        cfg.momentum = kinds[k] == CLCNN_OPTIM_ADAM ? 0.0f : 0.9f;
        cfg.weight_decay = 1e-4f;
        test_rng rng;
        float images[BATCH * PIXELS];
        int32_t labels[BATCH];
        /* Uninterrupted: 8 steps. */
        clcnn_net *a = make_net(small_model, 21);
        test_rng_seed(&rng, 5);
        for (int s = 0; s < 8; s++) {
            make_batch(&rng, images, labels);
            assert_ok(clcnn_net_train_step(a, images, labels, BATCH, &cfg, NULL));
        }
        /* Interrupted after 3 steps, resumed in a net built with another seed. */
        clcnn_net *b = make_net(small_model, 21), *c = make_net(small_model, 999);
        test_rng_seed(&rng, 5);
        for (int s = 0; s < 3; s++) {
            make_batch(&rng, images, labels);
            assert_ok(clcnn_net_train_step(b, images, labels, BATCH, &cfg, NULL));
        }
        assert_ok(clcnn_net_save_checkpoint(b, ckpt, &cfg, 0));
        clcnn_optim_config restored;
        uint64_t epoch = 7;
        assert_ok(clcnn_net_load_checkpoint(c, ckpt, &restored, &epoch));
        assert_int_equal(epoch, 0);
        assert_int_equal(clcnn_net_steps(c), 3);
        assert_int_equal(restored.kind, cfg.kind);
        assert_true(restored.lr == cfg.lr && restored.momentum == cfg.momentum &&
                    restored.weight_decay == cfg.weight_decay && restored.beta2 == cfg.beta2);
        for (int s = 3; s < 8; s++) {
            make_batch(&rng, images, labels);
            assert_ok(clcnn_net_train_step(c, images, labels, BATCH, &restored, NULL));
        }
        for (size_t i = 0; i < clcnn_net_param_count(a); i++) {
            size_t n, n2;
            float *pa = download_param(a, i, &n), *pc = download_param(c, i, &n2);
            assert_memory_equal(pa, pc, n * sizeof *pa);
            free(pa);
            free(pc);
        }
        clcnn_net_release(a);
        clcnn_net_release(b);
        clcnn_net_release(c);
    }
    /* A plain weights file is not a checkpoint; a checkpoint loads as weights only if the
     * caller asks for a checkpoint. */
    clcnn_net *d = make_net(small_model, 1);
    assert_ok(clcnn_net_save_weights(d, plain));
    clcnn_optim_config cfg;
    assert_status_msg(clcnn_net_load_checkpoint(d, plain, &cfg, NULL), CLCNN_STATUS_CORRUPT,
                      "not a checkpoint");
    assert_status_msg(clcnn_net_load_weights(d, ckpt), CLCNN_STATUS_CORRUPT,
                      "conv1.weight.state1' is not a parameter");
    clcnn_net_release(d);
    test_rmtree(dir);
    free(dir);
    free(ckpt);
    free(plain);
}

/* The short training run: LeNet on 3,072 Fashion-MNIST images, one pass; the loss falls
 * and accuracy on the first 1,000 test images passes 0.65 (chance is 0.10). */
static void test_short_fashion_mnist_run(void **state)
{
    (void)state;
    const char *models = getenv("CLCNN_MODEL_DIR");
    FILE *probe = fopen(CLCNN_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", "rb");
    if (probe == NULL || models == NULL) {
        print_message("Fashion-MNIST is not installed at " CLCNN_FASHION_MNIST_DIR
                      " (Debian package dataset-fashion-mnist): skipped\n");
        skip();
        return;
    }
    fclose(probe);
    clcnn_dataset train, test;
    assert_ok(clcnn_dataset_load_mnist(CLCNN_FASHION_MNIST_DIR, "train", &train));
    assert_ok(clcnn_dataset_load_mnist(CLCNN_FASHION_MNIST_DIR, "t10k", &test));
    char *path = test_path(models, "lenet.model");
    clcnn_model_desc m;
    assert_ok(clcnn_model_load(path, &m));
    clcnn_net *net = NULL;
    assert_ok(clcnn_net_create(test_dev, &m, 1, &net));
    enum { B = 64, STEPS = 48 };
    float *images = malloc(B * 784 * sizeof *images), *probs = malloc(B * 10 * sizeof *probs);
    int32_t labels[B];
    size_t idx[B];
    clcnn_optim_config cfg = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    cfg.lr = 0.02f;
    cfg.momentum = 0.9f;
    double early = 0, late = 0;
    for (size_t s = 0; s < STEPS; s++) {
        for (size_t k = 0; k < B; k++)
            idx[k] = s * B + k;
        assert_ok(clcnn_dataset_batch(&train, idx, B, NULL, 0, images, labels));
        float loss;
        assert_ok(clcnn_net_train_step(net, images, labels, B, &cfg, &loss));
        if (s < 8)
            early += loss / 8;
        if (s >= STEPS - 8)
            late += loss / 8;
    }
    size_t right = 0;
    for (size_t first = 0; first < 1000; first += B) {
        size_t n = 1000 - first < B ? 1000 - first : B;
        for (size_t k = 0; k < n; k++)
            idx[k] = first + k;
        assert_ok(clcnn_dataset_batch(&test, idx, n, NULL, 0, images, labels));
        assert_ok(clcnn_net_forward(net, images, n, probs));
        for (size_t k = 0; k < n; k++) {
            size_t best = 0;
            for (size_t c = 1; c < 10; c++)
                if (probs[k * 10 + c] > probs[k * 10 + best])
                    best = c;
            right += best == (size_t)labels[k];
        }
    }
    print_message("loss %.3f -> %.3f, test accuracy %.3f on 1000 images\n", early, late,
                  (double)right / 1000.0);
    assert_true(late < 0.75 * early);
    assert_true(right >= 650);
    free(images);
    free(probs);
    free(path);
    clcnn_net_release(net);
    clcnn_model_desc_free(&m);
    clcnn_dataset_free(&train);
    clcnn_dataset_free(&test);
}

/* A layer unfrozen after others have trained starts its optimizer fresh (its own step 1, zero
 * state), as PyTorch counts steps per parameter: its first Adam update equals that of a new net
 * holding the same weights. */
static void test_late_unfrozen_layer_starts_fresh(void **state)
{
    (void)state;
    static const char model[] = "input 1x12x12\nconv 4 3x3 pad=1 relu\nmaxpool 2x2\n"
                                "fc 16 relu\nfc 3\nsoftmax\n";
    char *dir = test_tempdir();
    char *path = test_path(dir, "mid.weights");
    clcnn_optim_config cfg = clcnn_optim_config_default(CLCNN_OPTIM_ADAM);
    cfg.lr = 0.01f;
    test_rng rng;
    test_rng_seed(&rng, 6);
    float images[BATCH * PIXELS];
    int32_t labels[BATCH];
    clcnn_net *a = make_net(model, 3);
    assert_ok(clcnn_net_set_frozen(a, "conv1", true));
    for (int s = 0; s < 3; s++) {
        make_batch(&rng, images, labels);
        assert_ok(clcnn_net_train_step(a, images, labels, BATCH, &cfg, NULL));
    }
    assert_ok(clcnn_net_save_weights(a, path));
    clcnn_net *c = make_net(model, 3);
    assert_ok(clcnn_net_load_weights(c, path));
    const char *others[2] = {"fc1", "fc2"};
    for (int i = 0; i < 2; i++) {
        assert_ok(clcnn_net_set_frozen(a, others[i], true));
        assert_ok(clcnn_net_set_frozen(c, others[i], true));
    }
    assert_ok(clcnn_net_set_frozen(a, "conv1", false));
    make_batch(&rng, images, labels);
    assert_ok(clcnn_net_train_step(a, images, labels, BATCH, &cfg, NULL));
    assert_ok(clcnn_net_train_step(c, images, labels, BATCH, &cfg, NULL));
    for (size_t i = 0; i < 2; i++) { /* conv1.weight, conv1.bias */
        size_t n, n2;
        float *pa = download_param(a, i, &n), *pc = download_param(c, i, &n2);
        assert_memory_equal(pa, pc, n * sizeof *pa);
        free(pa);
        free(pc);
    }
    clcnn_net_release(a);
    clcnn_net_release(c);
    test_rmtree(dir);
    free(dir);
    free(path);
}

static void test_refusals(void **state)
{
    (void)state;
    clcnn_net *net = make_net("input 1x4x4\nfc 3\n", 1);
    float images[2 * 16] = {0};
    int32_t labels[2] = {0, 1};
    clcnn_optim_config cfg = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    assert_status_msg(clcnn_net_train_step(net, images, labels, 2, &cfg, NULL),
                      CLCNN_STATUS_INVALID_ARG, "must end in softmax");
    clcnn_net_release(net);
    net = make_net("input 1x4x4\nfc 3\nsoftmax\n", 1);
    labels[1] = 3;
    assert_status_msg(clcnn_net_train_step(net, images, labels, 2, &cfg, NULL),
                      CLCNN_STATUS_INVALID_ARG, "labels[1] = 3");
    clcnn_net_release(net);
    clcnn_model_desc m;
    const char *bad = "input 1x4x4\nconv 2 5x5 name=big\n";
    assert_ok(clcnn_model_parse(bad, strlen(bad), "bad.model", &m));
    net = (clcnn_net *)0x1;
    assert_status_msg(clcnn_net_create(test_dev, &m, 1, &net), CLCNN_STATUS_BAD_SHAPE,
                      "net: layer big (line 2)");
    assert_ptr_equal(net, (clcnn_net *)0x1);
    clcnn_model_desc_free(&m);
    /* Models past the limits are refused before anything is allocated (a net of 3.8 billion
     * parameters or a 2.1-billion-value activation would otherwise be tried on the device). */
    static const struct {
        const char *text, *message;
    } huge[] = {
        {"input 1x28x28\nfc 1000000\nfc 3000\nfc 10\nsoftmax\n",
         "declares 3785033010 parameters, over the limit of 2147483648"},
        {"input 1x46341x46341\nrelu\n",
         "layer input (line 1) puts out 2147488281 values per image, over the limit of "
         "2147483647"},
    };
    for (size_t i = 0; i < 2; i++) {
        assert_ok(clcnn_model_parse(huge[i].text, strlen(huge[i].text), "huge.model", &m));
        net = (clcnn_net *)0x1;
        assert_status_msg(clcnn_net_create(test_dev, &m, 1, &net), CLCNN_STATUS_BAD_SHAPE,
                          huge[i].message);
        assert_ptr_equal(net, (clcnn_net *)0x1);
        clcnn_model_desc_free(&m);
    }
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameters_and_init),
        cmocka_unit_test(test_forward_gives_probabilities),
        cmocka_unit_test(test_loss_falls_and_is_deterministic),
        cmocka_unit_test(test_frozen_layers_do_not_change),
        cmocka_unit_test(test_weights_round_trip),
        cmocka_unit_test(test_checkpoint_resume_is_bit_identical),
        cmocka_unit_test(test_short_fashion_mnist_run),
        cmocka_unit_test(test_late_unfrozen_layer_starts_fresh),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("net", tests, test_group_setup, test_group_teardown);
}
