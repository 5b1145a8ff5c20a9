/* The scheduler: loader threads fill pinned staging buffers, the transfer queue uploads them
 * into per-slot device buffers, the compute queue copies a slot into the net's input and runs
 * the batch, then copies its outputs into the slot, and the transfer queue reads them back into
 * pinned host memory. Only OpenCL events join the queues; the running thread waits when it must
 * reuse a slot (to hand out the results that were in it) and for the loaders.
 *
 * Spans timed by the device (uploads, downloads, the stages of a batch's compute) are kept with
 * their events until the batch's results are handed out, when every one of them has completed;
 * they are then read, moved to the host clock and added to the statistics and the trace. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clcnn/sched.h"
#include "device_impl.h"
#include "fileio_impl.h"
#include "net_impl.h"
#include "sched_impl.h"
#include "status_impl.h"

static const clcnn__sched_hooks *hooks;

void clcnn__sched_set_hooks(const clcnn__sched_hooks *h)
{
    hooks = h;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Grows *items (of size bytes each) to hold need, doubling. */
static bool grow(void **items, size_t *capacity, size_t need, size_t size)
{
    if (need <= *capacity)
        return true;
    size_t cap = *capacity ? *capacity * 2 : 64;
    while (cap < need)
        cap *= 2;
    void *p = realloc(*items, cap * size);
    if (p == NULL)
        return false;
    *items = p;
    *capacity = cap;
    return true;
}

/* ---- the trace ------------------------------------------------------------------------------- */

enum { LANE_COMPUTE = 1, LANE_TRANSFER = 2, LANE_LOADER = 10 };

#define NAME_MAX_ 96

typedef struct trace_event {
    char name[NAME_MAX_];
    int lane;
    uint64_t start_ns, end_ns; /* host clock */
} trace_event;

struct clcnn_trace {
    uint64_t origin_ns;
    trace_event *events;
    size_t count, capacity;
    size_t loaders; /* loader lanes used */
};

clcnn_status clcnn_trace_create(clcnn_trace **trace)
{
    CLCNN_FAIL_IF(trace == NULL, CLCNN_STATUS_INVALID_ARG, "trace_create: NULL trace");
    clcnn_trace *t = calloc(1, sizeof *t);
    CLCNN_FAIL_IF(t == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "trace_create: out of memory");
    t->origin_ns = now_ns();
    *trace = t;
    return CLCNN_OK;
}

void clcnn_trace_release(clcnn_trace *trace)
{
    if (trace == NULL)
        return;
    free(trace->events);
    free(trace);
}

size_t clcnn_trace_event_count(const clcnn_trace *trace)
{
    return trace != NULL ? trace->count : 0;
}

static bool trace_add(clcnn_trace *t, const char *name, int lane, uint64_t start, uint64_t end)
{
    if (!grow((void **)&t->events, &t->capacity, t->count + 1, sizeof *t->events))
        return false;
    trace_event *e = &t->events[t->count++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->lane = lane;
    e->start_ns = start;
    e->end_ns = end > start ? end : start;
    if (lane >= LANE_LOADER && (size_t)(lane - LANE_LOADER) + 1 > t->loaders)
        t->loaders = (size_t)(lane - LANE_LOADER) + 1;
    return true;
}

static double trace_us(const clcnn_trace *t, uint64_t ns)
{
    return ns > t->origin_ns ? (double)(ns - t->origin_ns) / 1000.0 : 0.0;
}

static bool add_lane_name(cJSON *list, int lane, const char *name)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *args = cJSON_CreateObject();
    if (m == NULL || args == NULL || !cJSON_AddItemToArray(list, m)) {
        cJSON_Delete(m);
        cJSON_Delete(args);
        return false;
    }
    return cJSON_AddStringToObject(m, "name", "thread_name") &&
           cJSON_AddStringToObject(m, "ph", "M") && cJSON_AddNumberToObject(m, "pid", 1) &&
           cJSON_AddNumberToObject(m, "tid", lane) && cJSON_AddItemToObject(m, "args", args) &&
           cJSON_AddStringToObject(args, "name", name);
}

static cJSON *trace_json(const clcnn_trace *t)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "traceEvents");
    bool ok = list != NULL && cJSON_AddStringToObject(root, "displayTimeUnit", "ms") &&
              add_lane_name(list, LANE_COMPUTE, "compute queue") &&
              add_lane_name(list, LANE_TRANSFER, "transfer queue");
    for (size_t i = 0; ok && i < t->loaders; i++) {
        char name[32];
        snprintf(name, sizeof name, "loader %zu", i);
        ok = add_lane_name(list, LANE_LOADER + (int)i, name);
    }
    for (size_t i = 0; ok && i < t->count; i++) {
        const trace_event *e = &t->events[i];
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL && cJSON_AddItemToArray(list, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        const char *cat = e->lane == LANE_COMPUTE    ? "compute"
                          : e->lane == LANE_TRANSFER ? "transfer"
                                                     : "load";
        ok = cJSON_AddStringToObject(o, "name", e->name) &&
             cJSON_AddStringToObject(o, "cat", cat) && cJSON_AddStringToObject(o, "ph", "X") &&
             cJSON_AddNumberToObject(o, "ts", trace_us(t, e->start_ns)) &&
             cJSON_AddNumberToObject(o, "dur", (double)(e->end_ns - e->start_ns) / 1000.0) &&
             cJSON_AddNumberToObject(o, "pid", 1) && cJSON_AddNumberToObject(o, "tid", e->lane);
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

clcnn_status clcnn_trace_write(const clcnn_trace *trace, const char *path)
{
    CLCNN_FAIL_IF(trace == NULL || path == NULL, CLCNN_STATUS_INVALID_ARG,
                  "trace_write: NULL argument");
    cJSON *root = trace_json(trace);
    char *text = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    CLCNN_FAIL_IF(text == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "trace_write: %s: out of memory", path);
    clcnn_status st = clcnn__file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

/* ---- one run ----------------------------------------------------------------------------------
 */

#define NO_BATCH UINT64_MAX

/* A pinned host buffer that the loaders fill and an upload reads. */
typedef struct staging {
    cl_mem buffer;
    float *images; /* mapped */
    int32_t *labels;
    uint64_t allowed; /* the batch that may be filled into it next */
    uint64_t filled;  /* the batch whose data it holds, NO_BATCH before the first */
    size_t count;
    clcnn_status status;
    char message[256];
    cl_event upload; /* the last upload that read it, until a loader takes it over */
} staging;

/* One batch on the device: its input, its outputs on the device and in pinned host memory. */
typedef struct slot {
    cl_mem input, output, host_buffer;
    float *host; /* mapped host_buffer */
    size_t in_count;
    int32_t *in_labels;
    cl_event uploaded, consumed; /* the upload into input; the copy out of it into the net */
    /* The batch whose results are in output / host, until they are handed out. */
    uint64_t out_batch;
    size_t out_count;
    int32_t *out_labels;
    cl_event computed, downloaded;
} slot;

/* A span timed by the device: [from's start or end, to's end]. */
typedef struct pending {
    uint64_t batch;
    int lane;
    bool from_start;
    cl_event from, to;
    char name[NAME_MAX_];
} pending;

typedef struct interval {
    uint64_t start, end;
} interval;

typedef struct loader_span {
    uint64_t batch, start, end;
    size_t loader;
} loader_span;

typedef struct run {
    clcnn_net *net;
    clcnn_device *dev;
    const clcnn_sched_config *cfg;
    size_t pixels, outputs, slots, stagings;
    staging *stg;
    slot *slot;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t next_load; /* guarded by lock, as the staging states and loads */
    bool stop;
    loader_span *loads;
    size_t load_count, load_capacity;

    pending *pend;
    size_t pend_count, pend_capacity;
    interval *compute, *transfer;
    size_t compute_count, transfer_count, compute_capacity, transfer_capacity;
    int64_t offset_ns; /* host clock = device clock + offset */

    clcnn_tensor *loss;
    uint64_t images;       /* handed out so far */
    uint64_t running;      /* the batch being computed, for the observer */
    cl_event last_marker;  /* end of the last stage of that batch */
    clcnn_status observed; /* first failure inside the observer */
} run;

typedef struct loader_arg {
    run *r;
    size_t index;
} loader_arg;

static void stage_name(const run *r, char *buf, size_t size, uint64_t batch, const char *what)
{
    const char *prefix = r->cfg->name;
    snprintf(buf, size, "%s%sb%" PRIu64 " %s", prefix ? prefix : "", prefix ? " " : "", batch,
             what);
}

/* Keeps a device-timed span; retains its events. */
static clcnn_status add_pending(run *r, uint64_t batch, int lane, const char *what, cl_event from,
                                bool from_start, cl_event to)
{
    CLCNN_FAIL_IF(!grow((void **)&r->pend, &r->pend_capacity, r->pend_count + 1, sizeof *r->pend),
                  CLCNN_STATUS_OUT_OF_MEMORY, "sched: out of memory");
    pending *p = &r->pend[r->pend_count++];
    p->batch = batch;
    p->lane = lane;
    p->from_start = from_start;
    p->from = from;
    p->to = to;
    clRetainEvent(from);
    clRetainEvent(to);
    stage_name(r, p->name, sizeof p->name, batch, what);
    return CLCNN_OK;
}

static void release_event(cl_event *e)
{
    if (*e != NULL)
        clReleaseEvent(*e);
    *e = NULL;
}

static bool event_time(cl_event e, cl_profiling_info which, const run *r, uint64_t *host)
{
    cl_ulong t = 0;
    if (clGetEventProfilingInfo(e, which, sizeof t, &t, NULL) != CL_SUCCESS)
        return false;
    *host = (uint64_t)((int64_t)t + r->offset_ns);
    return true;
}

/* Reads the spans of batch (all complete), records them and drops them. */
static void resolve(run *r, uint64_t batch)
{
    interval span = {UINT64_MAX, 0};
    size_t kept = 0;
    for (size_t i = 0; i < r->pend_count; i++) {
        pending *p = &r->pend[i];
        if (p->batch != batch) {
            r->pend[kept++] = *p;
            continue;
        }
        uint64_t s, e;
        if (event_time(p->from,
                       p->from_start ? CL_PROFILING_COMMAND_START : CL_PROFILING_COMMAND_END, r,
                       &s) &&
            event_time(p->to, CL_PROFILING_COMMAND_END, r, &e) && e >= s) {
            if (r->cfg->trace != NULL)
                trace_add(r->cfg->trace, p->name, p->lane, s, e);
            if (p->lane == LANE_TRANSFER && grow((void **)&r->transfer, &r->transfer_capacity,
                                                 r->transfer_count + 1, sizeof *r->transfer))
                r->transfer[r->transfer_count++] = (interval){s, e};
            if (p->lane == LANE_COMPUTE) {
                span.start = s < span.start ? s : span.start;
                span.end = e > span.end ? e : span.end;
            }
        }
        clReleaseEvent(p->from);
        clReleaseEvent(p->to);
    }
    r->pend_count = kept;
    if (span.end > 0 &&
        grow((void **)&r->compute, &r->compute_capacity, r->compute_count + 1, sizeof *r->compute))
        r->compute[r->compute_count++] = span;
}

/* ---- loaders --------------------------------------------------------------------------------- */

static void *loader_main(void *arg)
{
    run *r = ((loader_arg *)arg)->r;
    const size_t index = ((loader_arg *)arg)->index;
    const clcnn_sched_config *cfg = r->cfg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop && r->next_load < cfg->batches) {
        uint64_t b = r->next_load++;
        staging *s = &r->stg[b % r->stagings];
        while (!r->stop && s->allowed != b)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stop)
            break;
        cl_event up = s->upload;
        s->upload = NULL;
        pthread_mutex_unlock(&r->lock);

        clcnn_status st = CLCNN_OK;
        char message[sizeof s->message] = "";
        if (up != NULL) {
            /* The buffer is refilled only once the upload that read it has completed. */
            cl_int err = clWaitForEvents(1, &up);
            if (err != CL_SUCCESS) {
                st = clcnn__status_of_cl(err);
                snprintf(message, sizeof message,
                         "clWaitForEvents on the upload of batch %" PRIu64 " -> %s",
                         b - r->stagings, clcnn_cl_error_name(err));
            }
        }
        if (hooks != NULL && hooks->before_refill != NULL)
            hooks->before_refill(hooks->user, b, up);
        release_event(&up);
        uint64_t t0 = now_ns();
        size_t count = 0;
        if (st == CLCNN_OK) {
            clcnn_clear_error();
            st = cfg->fill(cfg->fill_user, b, s->images, s->labels, &count);
            if (st != CLCNN_OK)
                snprintf(message, sizeof message, "%s",
                         clcnn_last_error()[0] != '\0' ? clcnn_last_error()
                                                       : clcnn_status_message(st));
            else if (count == 0 || count > cfg->batch) {
                st = CLCNN_STATUS_INVALID_ARG;
                snprintf(message, sizeof message,
                         "the fill callback gave %zu images (1 to %zu expected)", count,
                         cfg->batch);
            }
        }
        uint64_t t1 = now_ns();

        pthread_mutex_lock(&r->lock);
        s->filled = b;
        s->count = count;
        s->status = st;
        memcpy(s->message, message, sizeof message);
        if (grow((void **)&r->loads, &r->load_capacity, r->load_count + 1, sizeof *r->loads))
            r->loads[r->load_count++] = (loader_span){b, t0, t1, index};
        pthread_cond_broadcast(&r->cond);
        if (st != CLCNN_OK)
            break; /* the running thread reports it when it reaches batch b */
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Waits until batch u is in its staging buffer. */
static clcnn_status wait_loaded(run *r, uint64_t u, staging **out)
{
    staging *s = &r->stg[u % r->stagings];
    pthread_mutex_lock(&r->lock);
    while (s->filled != u)
        pthread_cond_wait(&r->cond, &r->lock);
    clcnn_status st = s->status;
    char message[sizeof s->message];
    memcpy(message, s->message, sizeof message);
    pthread_mutex_unlock(&r->lock);
    CLCNN_FAIL_IF(st != CLCNN_OK, st, "sched: loading batch %" PRIu64 ": %s", u, message);
    *out = s;
    return CLCNN_OK;
}

/* ---- the device side ------------------------------------------------------------------------- */

static clcnn_status upload(run *r, uint64_t u)
{
    staging *s;
    CLCNN_TRY(wait_loaded(r, u, &s));
    slot *d = &r->slot[u % r->slots];
    if (hooks != NULL && hooks->before_upload != NULL)
        hooks->before_upload(hooks->user, r->dev, u);
    d->in_count = s->count;
    memcpy(d->in_labels, s->labels, s->count * sizeof *s->labels);
    /* The input buffer is free once the net has copied the batch before out of it. */
    cl_event up;
    cl_int err = clEnqueueWriteBuffer(
        r->dev->transfer, d->input, CL_FALSE, 0, s->count * r->pixels * sizeof(float), s->images,
        d->consumed != NULL ? 1 : 0, d->consumed != NULL ? &d->consumed : NULL, &up);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clEnqueueWriteBuffer (upload)", u);
    release_event(&d->consumed);
    clcnn_status st = add_pending(r, u, LANE_TRANSFER, "upload", up, true, up);
    clRetainEvent(up);
    d->uploaded = up;
    pthread_mutex_lock(&r->lock);
    s->upload = up; /* the loader that refills s waits for it, then releases it */
    s->allowed = u + r->stagings;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return st;
}

static void on_stage(void *user, const char *stage, const char *phase)
{
    run *r = user;
    if (r->observed != CLCNN_OK)
        return;
    cl_event m;
    cl_int err = clEnqueueMarkerWithWaitList(r->dev->compute, 0, NULL, &m);
    if (err != CL_SUCCESS) {
        r->observed = CLCNN_CL_ERR(err, "sched: clEnqueueMarkerWithWaitList");
        return;
    }
    char what[NAME_MAX_];
    snprintf(what, sizeof what, "%s %s", stage, phase);
    r->observed = add_pending(r, r->running, LANE_COMPUTE, what, r->last_marker, false, m);
    release_event(&r->last_marker);
    r->last_marker = m;
}

/* Hands out the results of the batch in slot d, once downloaded. */
static clcnn_status deliver(run *r, slot *d)
{
    const uint64_t b = d->out_batch;
    cl_int err = clWaitForEvents(1, &d->downloaded);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clWaitForEvents (compute and download)",
                            b);
    if (hooks != NULL && hooks->before_result != NULL)
        hooks->before_result(hooks->user, b, d->computed, d->downloaded);
    resolve(r, b);
    release_event(&d->computed);
    release_event(&d->downloaded);
    d->out_batch = NO_BATCH;
    r->images += d->out_count;
    if (r->cfg->result == NULL)
        return CLCNN_OK;
    clcnn_sched_result res = {
        b,       d->out_count,  r->outputs,
        d->host, d->out_labels, r->cfg->training ? d->host[d->out_count * r->outputs] : 0.0f};
    clcnn_clear_error();
    clcnn_status st = r->cfg->result(r->cfg->result_user, &res);
    if (st != CLCNN_OK && clcnn_last_error()[0] == '\0')
        return CLCNN_ERR(st, "sched: batch %" PRIu64 ": the result callback failed", b);
    return st;
}

/* Runs the net on the slot's batch and queues its outputs for download; first hands out the
 * results of the batch that used the slot before. */
static clcnn_status compute(run *r, uint64_t c)
{
    slot *d = &r->slot[c % r->slots];
    const bool training = r->cfg->training;
    if (hooks != NULL && hooks->before_compute != NULL)
        CLCNN_TRY(hooks->before_compute(hooks->user, c));
    clcnn_tensor *input, *out;
    CLCNN_TRY(clcnn__net_prepare(r->net, d->in_count, training, &input));
    cl_event copied;
    cl_int err =
        clEnqueueCopyBuffer(r->dev->compute, d->input, clcnn_tensor_buffer(input), 0, 0,
                            d->in_count * r->pixels * sizeof(float), 1, &d->uploaded, &copied);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clEnqueueCopyBuffer (input)", c);
    clcnn_tensor_touch(input);
    release_event(&d->uploaded);
    d->consumed = copied;
    CLCNN_TRY(add_pending(r, c, LANE_COMPUTE, "input", copied, true, copied));
    r->running = c;
    release_event(&r->last_marker);
    clRetainEvent(copied);
    r->last_marker = copied;
    r->observed = CLCNN_OK;

    clcnn_status st = training ? clcnn__net_train(r->net, d->in_labels, d->in_count,
                                                  r->cfg->optimizer, r->loss, NULL, &out)
                               : clcnn__net_infer(r->net, &out);
    if (st == CLCNN_OK)
        st = r->observed;
    if (st != CLCNN_OK) {
        clcnn__error_prefix("sched: batch %" PRIu64, c);
        return st;
    }

    /* The slot's device outputs are free once the download of the batch before completed. */
    const size_t values = d->in_count * r->outputs;
    cl_command_queue q = r->dev->compute;
    err = clEnqueueCopyBuffer(q, clcnn_tensor_buffer(out), d->output, 0, 0, values * sizeof(float),
                              d->downloaded != NULL ? 1 : 0,
                              d->downloaded != NULL ? &d->downloaded : NULL, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clEnqueueCopyBuffer (outputs)", c);
    if (training) {
        err = clEnqueueCopyBuffer(q, clcnn_tensor_buffer(r->loss), d->output, 0,
                                  values * sizeof(float), sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clEnqueueCopyBuffer (loss)", c);
    }
    cl_event done = NULL;
    err = clEnqueueMarkerWithWaitList(q, 0, NULL, &done);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clEnqueueMarkerWithWaitList", c);
    st = add_pending(r, c, LANE_COMPUTE, "output", r->last_marker, false, done);
    release_event(&r->last_marker);

    if (st == CLCNN_OK && d->out_batch != NO_BATCH)
        st = deliver(r, d);
    if (st != CLCNN_OK) {
        clReleaseEvent(done);
        return st;
    }
    d->out_batch = c;
    d->out_count = d->in_count;
    memcpy(d->out_labels, d->in_labels, d->in_count * sizeof *d->in_labels);
    d->computed = done;
    err = clEnqueueReadBuffer(r->dev->transfer, d->output, CL_FALSE, 0,
                              (values + (training ? 1 : 0)) * sizeof(float), d->host, 1, &done,
                              &d->downloaded);
    if (err != CL_SUCCESS) {
        d->out_batch = NO_BATCH;
        return CLCNN_CL_ERR(err, "sched: batch %" PRIu64 ": clEnqueueReadBuffer (download)", c);
    }
    return add_pending(r, c, LANE_TRANSFER, "download", d->downloaded, true, d->downloaded);
}

/* ---- set-up and tear-down ----------------------------------------------------------------------
 */

static clcnn_status pinned(run *r, size_t bytes, cl_mem *buffer, void **mapped)
{
    cl_int err;
    *buffer = clCreateBuffer(r->dev->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes,
                             NULL, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: clCreateBuffer (%zu pinned bytes)", bytes);
    *mapped = clEnqueueMapBuffer(r->dev->transfer, *buffer, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                 bytes, 0, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: clEnqueueMapBuffer (%zu bytes)", bytes);
    return CLCNN_OK;
}

static clcnn_status device_buffer(run *r, size_t bytes, cl_mem *buffer)
{
    cl_int err;
    *buffer = clCreateBuffer(r->dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: clCreateBuffer (%zu bytes)", bytes);
    return CLCNN_OK;
}

static clcnn_status allocate(run *r)
{
    const size_t batch = r->cfg->batch;
    r->stg = calloc(r->stagings, sizeof *r->stg);
    r->slot = calloc(r->slots, sizeof *r->slot);
    CLCNN_FAIL_IF(r->stg == NULL || r->slot == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                  "sched: out of memory");
    for (size_t i = 0; i < r->stagings; i++) {
        staging *s = &r->stg[i];
        s->allowed = i;
        s->filled = NO_BATCH;
        s->labels = calloc(batch, sizeof *s->labels);
        CLCNN_FAIL_IF(s->labels == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "sched: out of memory");
        void *p = NULL;
        CLCNN_TRY(pinned(r, batch * r->pixels * sizeof(float), &s->buffer, &p));
        s->images = p;
    }
    for (size_t i = 0; i < r->slots; i++) {
        slot *d = &r->slot[i];
        d->out_batch = NO_BATCH;
        d->in_labels = calloc(batch, sizeof *d->in_labels);
        d->out_labels = calloc(batch, sizeof *d->out_labels);
        CLCNN_FAIL_IF(d->in_labels == NULL || d->out_labels == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                      "sched: out of memory");
        const size_t out_bytes = (batch * r->outputs + 1) * sizeof(float);
        CLCNN_TRY(device_buffer(r, batch * r->pixels * sizeof(float), &d->input));
        CLCNN_TRY(device_buffer(r, out_bytes, &d->output));
        void *p = NULL;
        CLCNN_TRY(pinned(r, out_bytes, &d->host_buffer, &p));
        d->host = p;
    }
    if (r->cfg->training)
        CLCNN_TRY(clcnn_tensor_create(r->dev, (clcnn_shape){1, 1, 1, 1}, &r->loss));
    return CLCNN_OK;
}

/* Folds a failed clFinish into *first (the first failure of the tear-down). */
static void finish_queue(cl_command_queue q, const char *which, clcnn_status *first)
{
    cl_int err = clFinish(q);
    if (err != CL_SUCCESS && *first == CLCNN_OK)
        *first = CLCNN_CL_ERR(err, "sched: clFinish (%s queue)", which);
}

static void unmap_release(run *r, cl_mem buffer, void *mapped, clcnn_status *first)
{
    if (buffer == NULL)
        return;
    if (mapped != NULL)
        clEnqueueUnmapMemObject(r->dev->transfer, buffer, mapped, 0, NULL, NULL);
    finish_queue(r->dev->transfer, "transfer", first);
    clReleaseMemObject(buffer);
}

/* Releases everything. Returns [in] first, the run's status, or when that is OK, a queue that
 * failed to finish (the buffers still go; the run's own message is never replaced). */
static clcnn_status release_run(run *r, clcnn_status first)
{
    /* Everything enqueued completes before the buffers it uses go. */
    finish_queue(r->dev->transfer, "transfer", &first);
    finish_queue(r->dev->compute, "compute", &first);
    for (size_t i = 0; r->stg != NULL && i < r->stagings; i++) {
        staging *s = &r->stg[i];
        release_event(&s->upload);
        unmap_release(r, s->buffer, s->images, &first);
        free(s->labels);
    }
    for (size_t i = 0; r->slot != NULL && i < r->slots; i++) {
        slot *d = &r->slot[i];
        release_event(&d->uploaded);
        release_event(&d->consumed);
        release_event(&d->computed);
        release_event(&d->downloaded);
        if (d->input != NULL)
            clReleaseMemObject(d->input);
        if (d->output != NULL)
            clReleaseMemObject(d->output);
        unmap_release(r, d->host_buffer, d->host, &first);
        free(d->in_labels);
        free(d->out_labels);
    }
    for (size_t i = 0; i < r->pend_count; i++) {
        clReleaseEvent(r->pend[i].from);
        clReleaseEvent(r->pend[i].to);
    }
    release_event(&r->last_marker);
    clcnn_tensor_release(r->loss);
    free(r->stg);
    free(r->slot);
    free(r->pend);
    free(r->loads);
    free(r->compute);
    free(r->transfer);
    return first;
}

/* host clock - device clock, from a marker's end read right after it completed. */
static clcnn_status calibrate(run *r)
{
    cl_event m;
    cl_int err = clEnqueueMarkerWithWaitList(r->dev->compute, 0, NULL, &m);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: clEnqueueMarkerWithWaitList");
    err = clWaitForEvents(1, &m);
    uint64_t host = now_ns();
    cl_ulong end = 0;
    if (err != CL_SUCCESS) {
        clReleaseEvent(m);
        return CLCNN_CL_ERR(err, "sched: clWaitForEvents (reading the device clock)");
    }
    err = clGetEventProfilingInfo(m, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    clReleaseEvent(m);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "sched: clGetEventProfilingInfo (reading the device clock)");
    r->offset_ns = (int64_t)host - (int64_t)end;
    return CLCNN_OK;
}

/* Transfer time during which compute ran (compute spans are in batch order and disjoint). */
static double overlap_seconds(const run *r)
{
    uint64_t total = 0;
    for (size_t i = 0; i < r->transfer_count; i++)
        for (size_t j = 0; j < r->compute_count; j++) {
            uint64_t s = r->transfer[i].start > r->compute[j].start ? r->transfer[i].start
                                                                    : r->compute[j].start;
            uint64_t e =
                r->transfer[i].end < r->compute[j].end ? r->transfer[i].end : r->compute[j].end;
            total += e > s ? e - s : 0;
        }
    return (double)total * 1e-9;
}

static void fill_stats(const run *r, uint64_t started, clcnn_sched_stats *stats)
{
    *stats = (clcnn_sched_stats){0};
    stats->batches = r->cfg->batches;
    for (size_t i = 0; i < r->load_count; i++)
        stats->load_seconds += (double)(r->loads[i].end - r->loads[i].start) * 1e-9;
    for (size_t i = 0; i < r->compute_count; i++)
        stats->compute_seconds += (double)(r->compute[i].end - r->compute[i].start) * 1e-9;
    for (size_t i = 0; i < r->transfer_count; i++)
        stats->transfer_seconds += (double)(r->transfer[i].end - r->transfer[i].start) * 1e-9;
    stats->overlap_seconds = overlap_seconds(r);
    for (size_t i = 1; i < r->compute_count; i++)
        if (r->compute[i].start > r->compute[i - 1].end)
            stats->compute_idle_seconds +=
                (double)(r->compute[i].start - r->compute[i - 1].end) * 1e-9;
    stats->seconds = (double)(now_ns() - started) * 1e-9;
}

clcnn_sched_config clcnn_sched_config_default(void)
{
    clcnn_sched_config c = {0};
    c.inflight = 2;
    c.loaders = 1;
    return c;
}

static clcnn_status check_config(const clcnn_net *net, const clcnn_sched_config *cfg)
{
    CLCNN_FAIL_IF(net == NULL || cfg == NULL || cfg->fill == NULL, CLCNN_STATUS_INVALID_ARG,
                  "sched_run: NULL net, config or fill callback");
    CLCNN_FAIL_IF(cfg->batch == 0 || cfg->batches == 0, CLCNN_STATUS_INVALID_ARG,
                  "sched_run: batch size %zu and batch count %" PRIu64 " must both be positive",
                  cfg->batch, cfg->batches);
    CLCNN_FAIL_IF(cfg->inflight == 0 || cfg->inflight > 16, CLCNN_STATUS_INVALID_ARG,
                  "sched_run: %zu batches in flight (1 to 16)", cfg->inflight);
    CLCNN_FAIL_IF(cfg->loaders == 0 || cfg->loaders > 64, CLCNN_STATUS_INVALID_ARG,
                  "sched_run: %zu loader threads (1 to 64)", cfg->loaders);
    CLCNN_FAIL_IF(cfg->training && cfg->optimizer == NULL, CLCNN_STATUS_INVALID_ARG,
                  "sched_run: training needs an optimizer");
    return CLCNN_OK;
}

/* The batches, in order: uploads run up to inflight - 1 batches ahead of compute. */
static clcnn_status pipeline(run *r)
{
    const uint64_t batches = r->cfg->batches;
    CLCNN_FAIL_IF(r->slots == 0 || r->stagings == 0, CLCNN_STATUS_INTERNAL, "sched: no slots");
    uint64_t uploaded = 0;
    for (uint64_t c = 0; c < batches; c++) {
        while (uploaded < batches && uploaded < c + r->slots)
            CLCNN_TRY(upload(r, uploaded++));
        CLCNN_TRY(compute(r, c));
        /* One in flight is serial: the batch is handed out before the next one is uploaded (the
         * ops do not wait, so compute() alone would leave it running behind the host). */
        if (r->slots == 1)
            CLCNN_TRY(deliver(r, &r->slot[0]));
    }
    for (uint64_t c = batches > r->slots ? batches - r->slots : 0; c < batches; c++) {
        slot *d = &r->slot[c % r->slots];
        if (d->out_batch == c)
            CLCNN_TRY(deliver(r, d));
    }
    return CLCNN_OK;
}

clcnn_status clcnn_sched_run(clcnn_net *net, const clcnn_sched_config *config,
                             clcnn_sched_stats *stats)
{
    CLCNN_TRY(check_config(net, config));
    const uint64_t started = now_ns();
    run r = {0};
    r.net = net;
    r.cfg = config;
    r.dev = clcnn__net_device(net);
    size_t c, h, w;
    clcnn_net_shape(net, &c, &h, &w, &r.outputs);
    r.pixels = c * h * w;
    r.slots = config->inflight;
    r.stagings = config->inflight + config->loaders;
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);

    clcnn_status st = calibrate(&r);
    if (st == CLCNN_OK)
        st = allocate(&r);
    pthread_t *threads = calloc(config->loaders, sizeof *threads);
    loader_arg *args = calloc(config->loaders, sizeof *args);
    size_t started_threads = 0;
    if (st == CLCNN_OK && (threads == NULL || args == NULL))
        st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "sched: out of memory");
    for (size_t i = 0; st == CLCNN_OK && i < config->loaders; i++) {
        args[i] = (loader_arg){&r, i};
        int e = pthread_create(&threads[i], NULL, loader_main, &args[i]);
        if (e != 0)
            st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "sched: cannot start loader thread %zu (%s)",
                           i, strerror(e));
        else
            started_threads++;
    }
    if (st == CLCNN_OK && config->trace != NULL)
        clcnn__net_set_observer(net, on_stage, &r);
    if (st == CLCNN_OK)
        st = pipeline(&r);
    clcnn__net_set_observer(net, NULL, NULL);

    pthread_mutex_lock(&r.lock);
    r.stop = true;
    pthread_cond_broadcast(&r.cond);
    pthread_mutex_unlock(&r.lock);
    for (size_t i = 0; i < started_threads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    free(args);

    if (config->trace != NULL)
        for (size_t i = 0; i < r.load_count; i++) {
            char name[NAME_MAX_];
            stage_name(&r, name, sizeof name, r.loads[i].batch, "load");
            trace_add(config->trace, name, LANE_LOADER + (int)r.loads[i].loader, r.loads[i].start,
                      r.loads[i].end);
        }
    if (st == CLCNN_OK && stats != NULL) {
        fill_stats(&r, started, stats);
        stats->images = r.images;
    }
    st = release_run(&r, st);
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
    return st;
}
