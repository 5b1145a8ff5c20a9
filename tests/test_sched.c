/* The scheduler: the same bits with 1, 2 or 3 batches in flight and any number of loaders (as
 * the plain forward and training step give them), ordering asserted from event states with a
 * slowed transfer queue, failures in the loader, the compute and the result callback returned
 * cleanly, and a trace that is valid JSON with every lane and one event per batch and stage. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "net_impl.h"
#include "sched_impl.h"
#include "testutil.h"

static const char model_text[] = "input 2x10x10\n"
                                 "conv 4 3x3 pad=1 relu\n"
                                 "maxpool 2x2\n"
                                 "fc 12 relu\n"
                                 "dropout 0.25\n"
                                 "fc 5\n"
                                 "softmax\n";

enum { BATCH = 8, PIXELS = 200, CLASSES = 5, BATCHES = 7, LAST = 5, TOTAL = 6 * BATCH + LAST };

static float all_images[TOTAL * PIXELS];
static int32_t all_labels[TOTAL];

static clcnn_net *make_net(void)
{
    clcnn_model_desc m;
    assert_ok(clcnn_model_parse(model_text, strlen(model_text), "sched.model", &m));
    clcnn_net *net = NULL;
    assert_ok(clcnn_net_create(test_dev, &m, 11, &net));
    clcnn_model_desc_free(&m);
    return net;
}

static size_t batch_count(uint64_t b)
{
    return b + 1 == BATCHES ? LAST : BATCH;
}

/* ---- callbacks --------------------------------------------------------------------------------
 */

typedef struct source {
    uint64_t fail_at; /* UINT64_MAX: never */
    long delay_ms;    /* a slow loader: each batch takes this long to fill */
} source;

static clcnn_status fill(void *user, uint64_t b, float *images, int32_t *labels, size_t *count)
{
    const source *src = user;
    if (b == src->fail_at)
        return CLCNN_STATUS_IO; /* no message of its own: the scheduler gives one */
    if (src->delay_ms > 0) {
        const struct timespec ts = {0, src->delay_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    *count = batch_count(b);
    memcpy(images, all_images + b * BATCH * PIXELS, *count * PIXELS * sizeof *images);
    memcpy(labels, all_labels + b * BATCH, *count * sizeof *labels);
    return CLCNN_OK;
}

typedef struct sink {
    float values[TOTAL * CLASSES];
    float losses[BATCHES];
    uint64_t next;    /* results must come in batch order */
    uint64_t fail_at; /* UINT64_MAX: never */
} sink;

static clcnn_status collect(void *user, const clcnn_sched_result *r)
{
    sink *s = user;
    assert_int_equal(r->batch, s->next);
    s->next++;
    assert_int_equal(r->count, batch_count(r->batch));
    assert_int_equal(r->outputs, CLASSES);
    assert_memory_equal(r->labels, all_labels + r->batch * BATCH, r->count * sizeof *r->labels);
    memcpy(s->values + r->batch * BATCH * CLASSES, r->values,
           r->count * CLASSES * sizeof *r->values);
    s->losses[r->batch] = r->loss;
    if (r->batch == s->fail_at)
        return CLCNN_STATUS_INVALID_ARG;
    return CLCNN_OK;
}

static clcnn_sched_config config(bool training, size_t inflight, size_t loaders, source *src,
                                 sink *out, const clcnn_optim_config *opt)
{
    clcnn_sched_config c = clcnn_sched_config_default();
    c.training = training;
    c.batch = BATCH;
    c.batches = BATCHES;
    c.inflight = inflight;
    c.loaders = loaders;
    c.optimizer = opt;
    c.fill = fill;
    c.fill_user = src;
    c.result = collect;
    c.result_user = out;
    return c;
}

static float *all_params(clcnn_net *net, size_t *total)
{
    size_t n = 0;
    for (size_t i = 0; i < clcnn_net_param_count(net); i++) {
        clcnn_tensor *t;
        assert_ok(clcnn_net_param(net, i, NULL, &t, NULL));
        n += clcnn_tensor_count(t);
    }
    float *host = malloc(n * sizeof *host);
    assert_non_null(host);
    size_t at = 0;
    for (size_t i = 0; i < clcnn_net_param_count(net); i++) {
        clcnn_tensor *t;
        assert_ok(clcnn_net_param(net, i, NULL, &t, NULL));
        assert_ok(clcnn_tensor_download(t, host + at, clcnn_tensor_count(t)));
        at += clcnn_tensor_count(t);
    }
    *total = n;
    return host;
}

/* The net's parameters are the n floats of expect, bit for bit. */
static void assert_params(clcnn_net *net, const float *expect, size_t n)
{
    size_t m;
    float *got = all_params(net, &m);
    assert_int_equal(m, n);
    assert_memory_equal(got, expect, n * sizeof *got);
    free(got);
}

/* ---- the ops do not wait --------------------------------------------------------------------- */

static int event_status(cl_event e)
{
    cl_int s = -1;
    assert_int_equal(clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof s, &s, NULL),
                     CL_SUCCESS);
    return s;
}

/* A whole training step and an inference are enqueued while the compute queue is held shut by a
 * user event: had any op waited for its kernels, the call would never return (the alarm fails
 * the test). Opened, the queue gives the same bits as the plain, waiting calls. */
static void test_ops_enqueue_without_waiting(void **state)
{
    (void)state;
    alarm(120);
    clcnn_optim_config opt = clcnn_optim_config_default(CLCNN_OPTIM_ADAM);
    opt.lr = 0.01f;
    clcnn_net *ref = make_net();
    float loss_ref;
    assert_ok(clcnn_net_train_step(ref, all_images, all_labels, BATCH, &opt, &loss_ref));
    static float probs_ref[BATCH * CLASSES], probs[BATCH * CLASSES];
    assert_ok(clcnn_net_forward(ref, all_images + BATCH * PIXELS, BATCH, probs_ref));
    size_t n;
    float *expect = all_params(ref, &n);
    clcnn_net_release(ref);

    clcnn_net *net = make_net();
    clcnn_tensor *input, *loss, *out;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, 1}, &loss));
    assert_ok(clcnn_tensor_fill(loss, NAN));
    assert_ok(clcnn__net_prepare(net, BATCH, true, &input));
    assert_ok(clcnn_tensor_upload(input, all_images, BATCH * PIXELS));

    cl_int err;
    cl_event gate = clCreateUserEvent(clcnn_device_context(test_dev), &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_command_queue q = clcnn_device_compute_queue(test_dev);
    assert_int_equal(clEnqueueMarkerWithWaitList(q, 1, &gate, NULL), CL_SUCCESS);
    assert_ok(clcnn__net_train(net, all_labels, BATCH, &opt, loss, NULL, NULL));
    assert_int_equal(clcnn_net_steps(net), 1);
    cl_event trained;
    assert_int_equal(clEnqueueMarkerWithWaitList(q, 0, NULL, &trained), CL_SUCCESS);
    assert_true(event_status(trained) > CL_COMPLETE); /* queued or submitted: nothing ran */
    assert_int_equal(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
    assert_int_equal(clWaitForEvents(1, &trained), CL_SUCCESS);
    clReleaseEvent(trained);
    clReleaseEvent(gate);

    float got_loss;
    assert_ok(clcnn_tensor_download(loss, &got_loss, 1));
    assert_memory_equal(&got_loss, &loss_ref, sizeof got_loss);
    assert_params(net, expect, n);
    free(expect);

    /* Inference through the internal path, gated the same way. */
    assert_ok(clcnn__net_prepare(net, BATCH, false, &input));
    assert_ok(clcnn_tensor_upload(input, all_images + BATCH * PIXELS, BATCH * PIXELS));
    gate = clCreateUserEvent(clcnn_device_context(test_dev), &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(clEnqueueMarkerWithWaitList(q, 1, &gate, NULL), CL_SUCCESS);
    assert_ok(clcnn__net_infer(net, &out));
    assert_int_equal(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
    clReleaseEvent(gate);
    assert_ok(clcnn_tensor_download(out, probs, BATCH * CLASSES));
    assert_memory_equal(probs, probs_ref, sizeof probs);
    clcnn_tensor_release(loss);
    clcnn_net_release(net);
    alarm(0);
}

/* ---- identity across settings ------------------------------------------------------------------
 */

static void test_inference_identical(void **state)
{
    (void)state;
    clcnn_net *net = make_net();
    /* The reference: the plain forward, batch by batch. */
    static float expect[TOTAL * CLASSES];
    for (uint64_t b = 0; b < BATCHES; b++)
        assert_ok(clcnn_net_forward(net, all_images + b * BATCH * PIXELS, batch_count(b),
                                    expect + b * BATCH * CLASSES));
    static const size_t settings[][2] = {{1, 1}, {2, 1}, {3, 1}, {2, 3}, {3, 2}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        source src = {UINT64_MAX, 0};
        static sink out;
        memset(&out, 0, sizeof out);
        out.fail_at = UINT64_MAX;
        for (size_t k = 0; k < TOTAL * CLASSES; k++)
            out.values[k] = NAN; /* poison: every value must be handed out */
        clcnn_sched_config c = config(false, settings[i][0], settings[i][1], &src, &out, NULL);
        clcnn_sched_stats stats;
        assert_ok(clcnn_sched_run(net, &c, &stats));
        assert_int_equal(out.next, BATCHES);
        assert_int_equal(stats.batches, BATCHES);
        assert_int_equal(stats.images, TOTAL);
        assert_memory_equal(out.values, expect, sizeof expect);
        assert_true(stats.transfer_seconds > 0 && stats.compute_seconds > 0);
        assert_true(stats.overlap_seconds >= 0 && stats.overlap_seconds <= stats.transfer_seconds);
        assert_true(stats.compute_idle_seconds >= 0 &&
                    stats.compute_idle_seconds + stats.compute_seconds <= stats.seconds);
        for (size_t k = 0; k < TOTAL; k++) {
            double sum = 0;
            for (size_t j = 0; j < CLASSES; j++)
                sum += out.values[k * CLASSES + j];
            assert_true(fabs(sum - 1.0) < 1e-5); /* probabilities */
        }
    }
    clcnn_net_release(net);
}

static void test_training_identical(void **state)
{
    (void)state;
    clcnn_optim_config opt = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    opt.lr = 0.05f;
    opt.momentum = 0.9f;
    /* The reference: the plain training step, batch by batch. */
    clcnn_net *ref = make_net();
    float losses[BATCHES];
    for (uint64_t b = 0; b < BATCHES; b++)
        assert_ok(clcnn_net_train_step(ref, all_images + b * BATCH * PIXELS, all_labels + b * BATCH,
                                       batch_count(b), &opt, &losses[b]));
    size_t n;
    float *expect = all_params(ref, &n);
    clcnn_net_release(ref);

    static const size_t settings[][2] = {{1, 1}, {2, 1}, {3, 2}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        clcnn_net *net = make_net();
        source src = {UINT64_MAX, 0};
        static sink out;
        memset(&out, 0, sizeof out);
        out.fail_at = UINT64_MAX;
        clcnn_sched_config c = config(true, settings[i][0], settings[i][1], &src, &out, &opt);
        assert_ok(clcnn_sched_run(net, &c, NULL));
        assert_int_equal(clcnn_net_steps(net), BATCHES);
        assert_memory_equal(out.losses, losses, sizeof losses);
        assert_params(net, expect, n);
        clcnn_net_release(net);
    }
    free(expect);
}

/* ---- ordering, from event states ---------------------------------------------------------------
 */

typedef struct order_check {
    cl_kernel spin;
    int refills, results, slowed;
    int run_base;    /* results before the current run */
    size_t inflight; /* of the current run */
} order_check;

static void check_refill(void *user, uint64_t batch, cl_event last_upload)
{
    order_check *o = user;
    (void)batch;
    if (last_upload != NULL) {
        assert_int_equal(event_status(last_upload), CL_COMPLETE);
        o->refills++;
    }
}

static void slow_upload(void *user, clcnn_device *dev, uint64_t batch)
{
    order_check *o = user;
    /* Serial means serial: with one in flight, every batch before has been handed out. */
    const uint64_t handed_out = (uint64_t)(o->results - o->run_base);
    if (o->inflight == 1)
        assert_int_equal(handed_out, batch);
    assert_true(batch - handed_out < 2 * o->inflight);
    /* Work in front of the upload on the transfer queue: it completes late. */
    const size_t global = 256;
    assert_int_equal(clEnqueueNDRangeKernel(clcnn_device_transfer_queue(dev), o->spin, 1, NULL,
                                            &global, NULL, 0, NULL, NULL),
                     CL_SUCCESS);
    o->slowed++;
}

static cl_ulong profile(cl_event e, cl_profiling_info which)
{
    cl_ulong t = 0;
    assert_int_equal(clGetEventProfilingInfo(e, which, sizeof t, &t, NULL), CL_SUCCESS);
    return t;
}

static void check_result(void *user, uint64_t batch, cl_event computed, cl_event downloaded)
{
    order_check *o = user;
    (void)batch;
    assert_int_equal(event_status(computed), CL_COMPLETE);
    assert_int_equal(event_status(downloaded), CL_COMPLETE);
    /* The download began only after the batch's compute had ended. */
    assert_true(profile(downloaded, CL_PROFILING_COMMAND_START) >=
                profile(computed, CL_PROFILING_COMMAND_END));
    o->results++;
}

static cl_kernel spin_kernel(void)
{
    static const char *src = "__kernel void spin(__global float *sink) {\n"
                             "    float x = (float)get_global_id(0);\n"
                             "    for (int i = 0; i < 200000; i++) x = x * 0.999999f + 1.0f;\n"
                             "    if (x == -1.0f) sink[0] = x;\n"
                             "}\n";
    cl_int err;
    cl_context ctx = clcnn_device_context(test_dev);
    cl_device_id id = clcnn_device_id(test_dev);
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(clBuildProgram(p, 1, &id, "", NULL, NULL), CL_SUCCESS);
    cl_kernel k = clCreateKernel(p, "spin", &err);
    assert_int_equal(err, CL_SUCCESS);
    clReleaseProgram(p);
    return k;
}

static void test_ordering_with_slow_uploads(void **state)
{
    (void)state;
    clcnn_net *net = make_net();
    order_check o = {spin_kernel(), 0, 0, 0, 0, 0};
    cl_int err;
    cl_mem sink_buf =
        clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE, 4, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(clSetKernelArg(o.spin, 0, sizeof sink_buf, &sink_buf), CL_SUCCESS);
    clcnn__sched_hooks h = {&o, check_refill, slow_upload, NULL, check_result};
    clcnn__sched_set_hooks(&h);
    static const size_t inflight[] = {1, 2, 3};
    for (size_t i = 0; i < 3; i++) {
        source src = {UINT64_MAX, 0};
        static sink out;
        memset(&out, 0, sizeof out);
        out.fail_at = UINT64_MAX;
        clcnn_sched_config c = config(false, inflight[i], 2, &src, &out, NULL);
        o.run_base = o.results;
        o.inflight = inflight[i];
        assert_ok(clcnn_sched_run(net, &c, NULL));
        assert_int_equal(out.next, BATCHES);
    }
    clcnn__sched_set_hooks(NULL);
    /* Every batch was slowed and checked; every staging buffer past its first use was checked
     * before its refill (stagings = inflight + loaders). */
    assert_int_equal(o.slowed, 3 * BATCHES);
    assert_int_equal(o.results, 3 * BATCHES);
    assert_int_equal(o.refills, (BATCHES - 3) + (BATCHES - 4) + (BATCHES - 5));
    clReleaseMemObject(sink_buf);
    clReleaseKernel(o.spin);
    clcnn_net_release(net);
}

/* ---- failures -------------------------------------------------------------------------------- */

static uint64_t compute_fail_at = UINT64_MAX;

static clcnn_status fail_compute(void *user, uint64_t batch)
{
    (void)user;
    if (batch == compute_fail_at) {
        clcnn_clear_error();
        return CLCNN_STATUS_CL_ERROR;
    }
    return CLCNN_OK;
}

static void test_failures_stop_cleanly(void **state)
{
    (void)state;
    clcnn_net *net = make_net();
    clcnn_optim_config opt = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    alarm(120); /* a hang fails the test instead of blocking CI */
    for (int training = 0; training < 2; training++)
        for (size_t inflight = 1; inflight <= 3; inflight++)
            for (uint64_t k = 0; k < BATCHES; k += 3) {
                /* The loader fails at batch k. */
                source src = {k, 0};
                static sink out;
                memset(&out, 0, sizeof out);
                out.fail_at = UINT64_MAX;
                clcnn_sched_config c = config(training, inflight, 2, &src, &out, &opt);
                assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_IO);
                char expect[64];
                snprintf(expect, sizeof expect, "loading batch %" PRIu64, k);
                assert_non_null(strstr(clcnn_last_error(), expect));
                assert_true(out.next <= k); /* nothing of batch k or later was handed out */

                /* The compute fails at batch k. */
                src.fail_at = UINT64_MAX;
                memset(&out, 0, sizeof out);
                out.fail_at = UINT64_MAX;
                compute_fail_at = k;
                clcnn__sched_hooks h = {NULL, NULL, NULL, fail_compute, NULL};
                clcnn__sched_set_hooks(&h);
                assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_CL_ERROR);
                clcnn__sched_set_hooks(NULL);
                assert_true(out.next <= k);

                /* The result callback fails at batch k. */
                memset(&out, 0, sizeof out);
                out.fail_at = k;
                assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_INVALID_ARG);
                assert_non_null(strstr(clcnn_last_error(), "result callback"));
                assert_int_equal(out.next, k + 1);
            }
    /* And the net still runs. */
    source src = {UINT64_MAX, 0};
    static sink out;
    memset(&out, 0, sizeof out);
    out.fail_at = UINT64_MAX;
    clcnn_sched_config c = config(false, 2, 1, &src, &out, NULL);
    assert_ok(clcnn_sched_run(net, &c, NULL));
    assert_int_equal(out.next, BATCHES);
    alarm(0);
    clcnn_net_release(net);
}

static void test_refusals(void **state)
{
    (void)state;
    clcnn_net *net = make_net();
    source src = {UINT64_MAX, 0};
    static sink out;
    clcnn_sched_config c = config(false, 2, 1, &src, &out, NULL);
    c.batch = 0;
    assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_INVALID_ARG);
    c = config(false, 0, 1, &src, &out, NULL);
    assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "in flight"));
    c = config(true, 2, 1, &src, &out, NULL);
    assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "optimizer"));
    c = config(false, 2, 1, &src, &out, NULL);
    c.fill = NULL;
    assert_int_equal(clcnn_sched_run(net, &c, NULL), CLCNN_STATUS_INVALID_ARG);
    assert_int_equal(clcnn_sched_run(NULL, &c, NULL), CLCNN_STATUS_INVALID_ARG);
    clcnn_net_release(net);
}

/* ---- the trace ---------------------------------------------------------------------------------
 */

static int count_named(const cJSON *events, const char *name)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0)
            n++;
    }
    return n;
}

static void test_trace(void **state)
{
    (void)state;
    clcnn_net *net = make_net();
    clcnn_trace *trace = NULL;
    assert_ok(clcnn_trace_create(&trace));
    clcnn_optim_config opt = clcnn_optim_config_default(CLCNN_OPTIM_SGD);
    source src = {UINT64_MAX, 0};
    static sink out;
    memset(&out, 0, sizeof out);
    out.fail_at = UINT64_MAX;
    clcnn_sched_config c = config(true, 2, 2, &src, &out, &opt);
    c.trace = trace;
    c.name = "train";
    assert_ok(clcnn_sched_run(net, &c, NULL));
    memset(&out, 0, sizeof out);
    out.fail_at = UINT64_MAX;
    c = config(false, 3, 1, &src, &out, NULL);
    c.trace = trace;
    c.name = "eval";
    assert_ok(clcnn_sched_run(net, &c, NULL));
    assert_true(clcnn_trace_event_count(trace) > 0);

    char *dir = test_tempdir();
    char *path = test_path(dir, "trace.json");
    assert_ok(clcnn_trace_write(trace, path));
    size_t size;
    char *text = test_read_file(path, &size);
    cJSON *root = cJSON_ParseWithLength(text, size);
    assert_non_null(root);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    assert_true(cJSON_IsArray(events));

    /* The lanes, named. */
    int lanes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        assert_true(cJSON_IsString(ph));
        if (strcmp(ph->valuestring, "M") == 0) {
            const char *lane = cJSON_GetObjectItemCaseSensitive(
                                   cJSON_GetObjectItemCaseSensitive(e, "args"), "name")
                                   ->valuestring;
            /* "loader 1" is there only if the second loader got a batch before the first. */
            lanes += strcmp(lane, "compute queue") == 0 || strcmp(lane, "transfer queue") == 0 ||
                     strcmp(lane, "loader 0") == 0;
            continue;
        }
        assert_string_equal(ph->valuestring, "X");
        assert_true(cJSON_GetObjectItemCaseSensitive(e, "ts")->valuedouble >= 0);
        assert_true(cJSON_GetObjectItemCaseSensitive(e, "dur")->valuedouble >= 0);
    }
    assert_int_equal(lanes, 3);

    /* One event per batch and stage. */
    static const char *const train_stages[] = {
        "load",      "upload",           "input",  "conv1 fwd", "fc2 fwd", "loss loss", "fc2 bwd",
        "conv1 bwd", "optimizer update", "output", "download"};
    static const char *const eval_stages[] = {"load",    "upload",       "input",  "conv1 fwd",
                                              "fc2 fwd", "softmax1 fwd", "output", "download"};
    for (uint64_t b = 0; b < BATCHES; b++) {
        char name[96];
        for (size_t s = 0; s < sizeof train_stages / sizeof *train_stages; s++) {
            snprintf(name, sizeof name, "train b%" PRIu64 " %s", b, train_stages[s]);
            assert_int_equal(count_named(events, name), 1);
        }
        for (size_t s = 0; s < sizeof eval_stages / sizeof *eval_stages; s++) {
            snprintf(name, sizeof name, "eval b%" PRIu64 " %s", b, eval_stages[s]);
            assert_int_equal(count_named(events, name), 1);
        }
    }
    cJSON_Delete(root);
    free(text);
    test_rmtree(dir);
    free(path);
    free(dir);
    clcnn_trace_release(trace);
    clcnn_net_release(net);
}

/* A loader slower than the device: the compute queue waits for every batch, in flight or not,
 * and the statistics say so (the loader takes DELAY ms a batch; the net, well under 1 ms). */
static void test_idle_when_loader_bound(void **state)
{
    (void)state;
    enum { DELAY = 40 };
    clcnn_net *net = make_net();
    for (size_t inflight = 1; inflight <= 2; inflight++) {
        source src = {UINT64_MAX, DELAY};
        static sink out;
        memset(&out, 0, sizeof out);
        out.fail_at = UINT64_MAX;
        clcnn_sched_config c = config(false, inflight, 1, &src, &out, NULL);
        clcnn_sched_stats stats;
        assert_ok(clcnn_sched_run(net, &c, &stats));
        assert_int_equal(out.next, BATCHES);
        /* Batch b + 1 is filled at least DELAY ms after batch b: whatever the compute of b took
         * (under half of it, even under the sanitizers), the queue then waits for the rest. */
        assert_true(stats.compute_idle_seconds >= (BATCHES - 1) * 0.5 * DELAY * 1e-3);
        assert_true(stats.compute_idle_seconds + stats.compute_seconds <= stats.seconds);
    }
    clcnn_net_release(net);
}

int main(void)
{
    test_rng rng;
    test_rng_seed(&rng, 2024);
    test_rng_fill(&rng, all_images, TOTAL * PIXELS, -1.0f, 1.0f);
    for (size_t i = 0; i < TOTAL; i++)
        all_labels[i] = (int32_t)(test_rng_next(&rng) % CLASSES);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_enqueue_without_waiting),
        cmocka_unit_test(test_inference_identical),
        cmocka_unit_test(test_training_identical),
        cmocka_unit_test(test_ordering_with_slow_uploads),
        cmocka_unit_test(test_failures_stop_cleanly),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_idle_when_loader_bound),
    };
    return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
