/* The model-file parser: every layer kind and option, canonical formatting that round-trips,
 * strict errors with file:line:col, the shipped model zoo checked against torchvision's
 * parameter counts, and random garbage that never crashes it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static clcnn_status parse(const char *text, clcnn_model_desc *m)
{
    return clcnn_model_parse(text, strlen(text), "t.model", m);
}

static void test_every_kind_and_option(void **state)
{
    (void)state;
    const char *text = "# a comment line\n"
                       "input 3x32x31   # trailing comment\n"
                       "conv 16 3x5 stride=2,1 pad=1,2 dilation=2 groups=1 flip nobias "
                       "leaky-relu alpha=0.2 algo=direct frozen name=stem\n"
                       "\n"
                       "maxpool 3 stride=2 pad=1 ceil\n"
                       "avgpool 2x2 exclude-pad\n"
                       "l2pool 2x3 stride=1\n"
                       "conv 8 1x1 groups=8 elu\n"
                       "globalavgpool\n"
                       "adaptiveavgpool 6x7\n"
                       "fc 10 sigmoid frozen\n"
                       "tanh\n"
                       "relu name=last_act\n"
                       "dropout 0.25\n"
                       "fc 4 nobias\n"
                       "softmax\r\n";
    clcnn_model_desc m;
    assert_ok(parse(text, &m));
    assert_int_equal(m.count, 14);
    const clcnn_layer_desc *l = m.layers;
    assert_int_equal(l[0].kind, CLCNN_LAYER_INPUT);
    assert_int_equal(l[0].line, 2);
    assert_true(l[0].channels == 3 && l[0].height == 32 && l[0].width == 31);
    assert_string_equal(l[0].name, "input");

    assert_int_equal(l[1].kind, CLCNN_LAYER_CONV);
    assert_int_equal(l[1].line, 3);
    assert_string_equal(l[1].name, "stem");
    assert_true(l[1].outputs == 16 && l[1].kernel_h == 3 && l[1].kernel_w == 5);
    assert_true(l[1].conv.stride_h == 2 && l[1].conv.stride_w == 1);
    assert_true(l[1].conv.pad_h == 1 && l[1].conv.pad_w == 2);
    assert_true(l[1].conv.dilation_h == 2 && l[1].conv.dilation_w == 2);
    assert_int_equal(l[1].conv.mode, CLCNN_CONV_CONVOLUTION);
    assert_false(l[1].conv.relu);
    assert_false(l[1].bias);
    assert_true(l[1].has_act);
    assert_int_equal(l[1].act.kind, CLCNN_ACT_LEAKY_RELU);
    assert_true(l[1].act.alpha == 0.2f);
    assert_int_equal(l[1].algo, CLCNN_CONV_ALGO_DIRECT);
    assert_true(l[1].frozen);

    assert_int_equal(l[2].kind, CLCNN_LAYER_POOL);
    assert_int_equal(l[2].pool.kind, CLCNN_POOL_MAX);
    assert_true(l[2].pool.window_h == 3 && l[2].pool.window_w == 3);
    assert_true(l[2].pool.stride_h == 2 && l[2].pool.pad_w == 1 && l[2].pool.ceil_mode);
    assert_string_equal(l[2].name, "pool1");
    assert_int_equal(l[3].pool.kind, CLCNN_POOL_AVG_EXCLUDE_PAD);
    assert_true(l[3].pool.stride_h == 2 && l[3].pool.stride_w == 2); /* stride = window */
    assert_int_equal(l[4].pool.kind, CLCNN_POOL_L2);
    assert_true(l[4].pool.window_w == 3 && l[4].pool.stride_w == 1);
    assert_string_equal(l[5].name, "conv2"); /* the second convolution, though the first is named */
    assert_true(l[5].bias);
    assert_int_equal(l[5].conv.groups, 8);
    assert_int_equal(l[5].act.kind, CLCNN_ACT_ELU);
    assert_true(l[5].act.alpha == 1.0f);
    assert_true(l[6].pool.global);
    assert_int_equal(l[6].pool.kind, CLCNN_POOL_AVG);
    assert_int_equal(l[7].kind, CLCNN_LAYER_ADAPTIVE_AVGPOOL);
    assert_true(l[7].height == 6 && l[7].width == 7);
    assert_string_equal(l[7].name, "pool5");
    assert_int_equal(l[8].kind, CLCNN_LAYER_FC);
    assert_true(l[8].outputs == 10 && l[8].frozen && l[8].bias);
    assert_int_equal(l[8].act.kind, CLCNN_ACT_SIGMOID);
    assert_int_equal(l[9].kind, CLCNN_LAYER_ACT);
    assert_int_equal(l[9].act.kind, CLCNN_ACT_TANH);
    assert_string_equal(l[9].name, "tanh1");
    assert_string_equal(l[10].name, "last_act");
    assert_int_equal(l[11].kind, CLCNN_LAYER_DROPOUT);
    assert_true(l[11].dropout == 0.25f);
    assert_false(l[12].bias);
    assert_string_equal(l[12].name, "fc2");
    assert_int_equal(l[13].kind, CLCNN_LAYER_SOFTMAX);
    assert_int_equal(l[13].line, 16);
    clcnn_model_desc_free(&m);
    assert_null(m.layers);
    clcnn_model_desc_free(NULL);
}

/* Field by field (struct padding is not part of the value); lines differ once formatting has
 * dropped comments and blank lines. */
static void assert_same(const clcnn_model_desc *a, const clcnn_model_desc *b)
{
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const clcnn_layer_desc *x = &a->layers[i], *y = &b->layers[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->name, y->name);
        assert_true(x->channels == y->channels && x->height == y->height && x->width == y->width);
        assert_true(x->outputs == y->outputs && x->kernel_h == y->kernel_h &&
                    x->kernel_w == y->kernel_w);
        const clcnn_conv_params *p = &x->conv, *q = &y->conv;
        assert_true(p->pad_h == q->pad_h && p->pad_w == q->pad_w && p->stride_h == q->stride_h &&
                    p->stride_w == q->stride_w && p->dilation_h == q->dilation_h &&
                    p->dilation_w == q->dilation_w && p->groups == q->groups &&
                    p->mode == q->mode && p->relu == q->relu);
        assert_true(x->bias == y->bias && x->has_act == y->has_act && x->frozen == y->frozen);
        assert_true(x->act.kind == y->act.kind && x->act.alpha == y->act.alpha);
        const clcnn_pool_params *u = &x->pool, *v = &y->pool;
        assert_true(u->kind == v->kind && u->window_h == v->window_h &&
                    u->window_w == v->window_w && u->stride_h == v->stride_h &&
                    u->stride_w == v->stride_w && u->pad_h == v->pad_h && u->pad_w == v->pad_w &&
                    u->ceil_mode == v->ceil_mode && u->global == v->global);
        assert_true(x->dropout == y->dropout && x->algo == y->algo);
    }
}

/* parse -> format -> parse gives the same description, and formatting is a fixed point. */
static void round_trip(const char *text)
{
    clcnn_model_desc a, b;
    assert_ok(parse(text, &a));
    char *f1 = NULL, *f2 = NULL;
    assert_ok(clcnn_model_format(&a, &f1));
    assert_ok(parse(f1, &b));
    assert_same(&a, &b);
    assert_ok(clcnn_model_format(&b, &f2));
    assert_string_equal(f1, f2);
    clcnn_free(f1);
    clcnn_free(f2);
    clcnn_model_desc_free(&a);
    clcnn_model_desc_free(&b);
}

static void test_round_trips(void **state)
{
    (void)state;
    round_trip("input 1x28x28\nconv 32 5x5 pad=2 relu\nmaxpool 2x2 stride=2\nfc 10\nsoftmax\n");
    round_trip("input 3x9x9\nconv 4 3 stride=2,1 pad=0,1 dilation=1,2 groups=1 flip nobias elu "
               "alpha=0.5 algo=winograd4 frozen name=a\nelu alpha=2\nleaky-relu\n"
               "leaky-relu alpha=0.125 name=b\navgpool 3 stride=1 pad=1 ceil exclude-pad\n"
               "l2pool 2x1\nglobalavgpool name=g\nadaptiveavgpool 1x2\ndropout 0.3\nfc 7 tanh\n"
               "sigmoid\nfc 2 nobias frozen\n");
    char *text = NULL;
    clcnn_model_desc m;
    assert_ok(parse("input  1x2x2 \t\nconv  3  1x1   relu\n", &m));
    assert_ok(clcnn_model_format(&m, &text));
    assert_string_equal(text, "input 1x2x2\nconv 3 1x1 relu\n");
    clcnn_free(text);
    clcnn_model_desc_free(&m);
}

typedef struct bad_case {
    const char *text;
    const char *where; /* "t.model:LINE:COL:" */
    const char *what;
} bad_case;

static void test_errors_name_line_and_column(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"input 1x28x28\nconvv 32 5x5\n", "t.model:2:1:", "unknown layer 'convv'"},
        {"input 1x28x28\nconv 32 five\n", "t.model:2:9:", "expected a kernel size like 5x5"},
        {"input 1x28x28\nconv 32\n", "t.model:2:9:", "conv needs 2 values"},
        {"input 1x28x28\nconv 32 5x5 strid=2\n",
         "t.model:2:13:", "unknown option 'strid=2' for conv"},
        {"input 1x28x28\nconv 32 5x5 pad=2 pad=1\n", "t.model:2:19:", "given twice"},
        {"input 1x28x28\nconv 32 5x5 stride=0\n", "t.model:2:20:", "out of range"},
        {"input 1x28x28\nconv 32 5x5 stride=2,\n", "t.model:2:20:", "expected a stride"},
        {"input 1x28x28\nmaxpool 2x2 frozen\n",
         "t.model:2:13:", "unknown option 'frozen' for maxpool"},
        {"input 1x28x28\nmaxpool 2x2 pad=2\n", "t.model:2:1:", "must be smaller than the window"},
        {"input 1x28x28\ndropout 1.0\n", "t.model:2:9:", "out of range"},
        {"input 1x28x28\ndropout x\n", "t.model:2:9:", "expected a dropout probability"},
        {"input 1x28x28\nconv 32 5x5 relu alpha=0.1\n",
         "t.model:2:1:", "alpha= applies to leaky-relu and elu only"},
        {"input 1x28x28\nconv 32 5x5 algo=fastest\n", "t.model:2:18:", "expected an algorithm"},
        {"input 1x28x28\nconv 32 5x5 name=9lives\n", "t.model:2:18:", "expected a name"},
        {"input 1x28\n", "t.model:1:7:", "expected an input shape CxHxW"},
        {"conv 32 5x5\n", "t.model:1:1:", "the first layer must be 'input CxHxW'"},
        {"input 1x8x8\ninput 1x8x8\n", "t.model:2:1:", "'input' may only be the first layer"},
        {"input 1x8x8\nsoftmax\nfc 3\n", "t.model:2:1:", "softmax must be the last layer"},
        {"input 1x8x8\nfc 3 name=x\nfc 3 name=x\n",
         "t.model:3:1:", "layer name 'x' is already used on line 2"},
        {"input 1x8x8\nfc 3 name=fc2\nfc 3\n", "t.model:3:1:", "'fc2' is already used"},
        {"input 1x8x8\nfc 2000000\n", "t.model:2:4:", "out of range"},
        {"input 1x8x8\nfc 99999999999\n", "t.model:2:4:", "expected the output feature count"},
        {"input 1x8x8\nfc 3 stride=2\n", "t.model:2:6:", "unknown option 'stride=2' for fc"},
        {"input 1x8x8\nconv pad=1 3x3\n", "t.model:2:6:", "conv needs 2 values before options"},
        {"input 1x8x8\nfc 3\x01\n", "t.model:2:5:", "unexpected byte 0x01"},
        {"# only comments\n\n", "t.model:", "no layers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clcnn_model_desc m = {7, (clcnn_layer_desc *)0x1};
        clcnn_status st = parse(cases[i].text, &m);
        const char *msg = clcnn_last_error();
        if (st != CLCNN_STATUS_PARSE || strncmp(msg, cases[i].where, strlen(cases[i].where)) != 0 ||
            strstr(msg, cases[i].what) == NULL)
            print_error("case %zu: %s: got %s '%s', wanted '%s ... %s'\n", i, cases[i].text,
                        clcnn_status_name(st), msg, cases[i].where, cases[i].what);
        assert_int_equal(st, CLCNN_STATUS_PARSE);
        assert_true(strncmp(msg, cases[i].where, strlen(cases[i].where)) == 0);
        assert_non_null(strstr(msg, cases[i].what));
        /* The output is untouched on failure. */
        assert_int_equal(m.count, 7);
        assert_ptr_equal(m.layers, (clcnn_layer_desc *)0x1);
    }
    clcnn_model_desc m;
    assert_status_msg(clcnn_model_parse(NULL, 0, "x", &m), CLCNN_STATUS_INVALID_ARG, "NULL");
    assert_status_msg(clcnn_model_load("/nonexistent/x.model", &m), CLCNN_STATUS_IO,
                      "/nonexistent/x.model");
}

/* Parameters of the shipped zoo, by shape inference over the description (a float64-style
 * reference of what `clcnn summary` will report). */
static size_t count_parameters(const clcnn_model_desc *m)
{
    size_t c = 0, h = 0, w = 0, total = 0;
    for (size_t i = 0; i < m->count; i++) {
        const clcnn_layer_desc *l = &m->layers[i];
        switch (l->kind) {
        case CLCNN_LAYER_INPUT:
            c = l->channels;
            h = l->height;
            w = l->width;
            break;
        case CLCNN_LAYER_CONV: {
            clcnn_shape out;
            clcnn_conv_params p = l->conv;
            assert_ok(clcnn_conv2d_output_shape(
                (clcnn_shape){1, c, h, w},
                (clcnn_shape){l->outputs, c / p.groups, l->kernel_h, l->kernel_w}, &p, &out));
            total += l->outputs * (c / p.groups) * l->kernel_h * l->kernel_w +
                     (l->bias ? l->outputs : 0);
            c = out.c;
            h = out.h;
            w = out.w;
            break;
        }
        case CLCNN_LAYER_POOL: {
            clcnn_shape out;
            assert_ok(clcnn_pool_output_shape((clcnn_shape){1, c, h, w}, &l->pool, &out));
            h = out.h;
            w = out.w;
            break;
        }
        case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
            h = l->height;
            w = l->width;
            break;
        case CLCNN_LAYER_FC:
            total += l->outputs * c * h * w + (l->bias ? l->outputs : 0);
            c = l->outputs;
            h = w = 1;
            break;
        default:
            break;
        }
    }
    return total;
}

static void test_model_zoo(void **state)
{
    (void)state;
    const char *dir = getenv("CLCNN_MODEL_DIR");
    assert_non_null(dir);
    static const struct {
        const char *file;
        size_t layers, params;
    } zoo[] = {
        /* LeNet: 1*32*25+32 + 32*64*25+64 + 3136*1024+1024 + 1024*10+10 */
        {"lenet.model", 9, 3274634},
        /* torchvision.models.alexnet() and vgg16(): sum(p.numel() for p in m.parameters()) */
        {"alexnet.model", 16, 61100840},
        {"vgg16.model", 26, 138357544},
    };
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++) {
        char *path = test_path(dir, zoo[i].file);
        clcnn_model_desc m;
        assert_ok(clcnn_model_load(path, &m));
        assert_int_equal(m.count, zoo[i].layers);
        assert_int_equal(count_parameters(&m), zoo[i].params);
        assert_int_equal(m.layers[m.count - 1].kind, CLCNN_LAYER_SOFTMAX);
        clcnn_model_desc_free(&m);
        free(path);
    }
}

static void test_summary(void **state)
{
    (void)state;
    const char *dir = getenv("CLCNN_MODEL_DIR");
    assert_non_null(dir);
    char *path = test_path(dir, "lenet.model");
    clcnn_model_desc m;
    assert_ok(clcnn_model_load(path, &m));
    clcnn_layer_summary *rows = NULL;
    clcnn_model_totals t;
    assert_ok(clcnn_model_summary(&m, 64, &rows, &t));
    /* c, h, w, params, receptive field, jump, per the recurrences rf += (k-1)*jump, jump *= s */
    static const size_t want[9][6] = {
        {1, 28, 28, 0, 1, 1},       {32, 28, 28, 832, 5, 1},   {32, 14, 14, 0, 6, 2},
        {64, 14, 14, 51264, 14, 2}, {64, 7, 7, 0, 16, 4},      {1024, 1, 1, 3212288, 40, 28},
        {1024, 1, 1, 0, 40, 28},    {10, 1, 1, 10250, 40, 28}, {10, 1, 1, 0, 40, 28},
    };
    for (size_t i = 0; i < 9; i++) {
        const clcnn_layer_summary *r = &rows[i];
        assert_true(r->channels == want[i][0] && r->height == want[i][1] && r->width == want[i][2]);
        assert_int_equal(r->params, want[i][3]);
        assert_true(r->receptive_field_h == want[i][4] && r->receptive_field_w == want[i][4]);
        assert_true(r->jump_h == want[i][5] && r->jump_w == want[i][5]);
    }
    /* conv1: 2 * 32 * 28 * 28 * 25 FLOPs plus the fused ReLU's 25088; a dense layer from
     * 1x28x28 to 32x28x28 would need 784 * 25088 weights and 25088 biases. */
    assert_true(rows[1].flops == 2.0 * 32 * 28 * 28 * 25 + 32 * 28 * 28);
    assert_true(rows[1].fc_equivalent_params == 784.0 * 25088 + 25088);
    assert_true(rows[5].fc_equivalent_params == 0.0);
    assert_int_equal(t.params, 3274634);
    assert_int_equal(t.trainable_params, 3274634);
    /* float32 activations at batch 64: 784 + 25088 + 6272 + 12544 + 3136 + 1024 * 2 + 10 * 2 */
    assert_int_equal(t.activation_bytes, (size_t)49892 * 64 * 4);
    clcnn_free(rows);
    clcnn_model_desc_free(&m);
    free(path);

    /* VGG-16: pool5 sees 212x212 input pixels at a jump of 32 (the published figures). */
    path = test_path(dir, "vgg16.model");
    assert_ok(clcnn_model_load(path, &m));
    assert_ok(clcnn_model_summary(&m, 1, &rows, &t));
    assert_int_equal(t.params, 138357544);
    assert_true(rows[18].receptive_field_h == 212 && rows[18].jump_h == 32);
    assert_true(rows[18].channels == 512 && rows[18].height == 7);
    clcnn_free(rows);
    clcnn_model_desc_free(&m);
    free(path);

    /* Frozen layers are not trainable; a layer that does not fit names itself. */
    assert_ok(parse("input 1x8x8\nconv 4 3x3 frozen\nfc 2\n", &m));
    assert_ok(clcnn_model_summary(&m, 1, &rows, &t));
    assert_int_equal(t.params, 4 * 9 + 4 + 4 * 6 * 6 * 2 + 2);
    assert_int_equal(t.trainable_params, 4 * 6 * 6 * 2 + 2);
    clcnn_free(rows);
    clcnn_model_desc_free(&m);
    assert_ok(parse("input 1x4x4\nconv 4 3x3\nconv 4 5x5 name=big\n", &m));
    rows = (clcnn_layer_summary *)0x1;
    assert_status_msg(clcnn_model_summary(&m, 1, &rows, &t), CLCNN_STATUS_BAD_SHAPE,
                      "summary: layer big (line 3)");
    assert_ptr_equal(rows, (clcnn_layer_summary *)0x1);
    clcnn_model_desc_free(&m);
}

/* Random garbage and mutated valid files never crash the parser; whatever parses formats and
 * re-parses to the same description. */
static void test_garbage_never_crashes(void **state)
{
    (void)state;
    static const char base[] = "input 3x32x32\nconv 16 3x3 pad=1 relu name=c\n"
                               "maxpool 2x2 stride=2 ceil\nfc 10 nobias\ndropout 0.5\nsoftmax\n";
    static const char alphabet[] = "inputconvfcmaxpoolrelu 0123456789x=,.#\n\t-_abcz";
    test_rng rng;
    test_rng_seed(&rng, 42);
    char buf[256];
    int parsed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len;
        if (iter % 2 == 0) {
            len = sizeof base - 1;
            memcpy(buf, base, len);
            for (int k = 0; k < 3; k++)
                buf[test_rng_next(&rng) % len] =
                    alphabet[test_rng_next(&rng) % (sizeof alphabet - 1)];
            len = test_rng_next(&rng) % (len + 1);
        } else {
            len = test_rng_next(&rng) % sizeof buf;
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)(test_rng_next(&rng) & 0xff);
        }
        clcnn_model_desc m;
        if (clcnn_model_parse(buf, len, "fuzz", &m) != CLCNN_OK)
            continue;
        parsed++;
        char *text = NULL;
        clcnn_model_desc again;
        assert_ok(clcnn_model_format(&m, &text));
        assert_ok(parse(text, &again));
        assert_same(&m, &again);
        clcnn_free(text);
        clcnn_model_desc_free(&m);
        clcnn_model_desc_free(&again);
    }
    assert_true(parsed > 100); /* the mutations leave many files valid */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_and_option),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_errors_name_line_and_column),
        cmocka_unit_test(test_model_zoo),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_garbage_never_crashes),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
