/* cltune's searches beyond one convolution solver per shape: CLBlast's SGEMM parameters over all
 * the shapes at once (one entry per device), and the pooling forward. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cltune.h"
#include "pool_impl.h"
#include "status_impl.h"
#include "tune_clblast_impl.h"
#include "tune_db_impl.h"

/* ---- --solver clblast ---------------------------------------------------------------------- */

/* One search over CLBlast's SGEMM parameters for the gemm solver on every shape at once (CLBlast
 * keeps one parameter set per device): a candidate's cost is the sum over the shapes of the gemm
 * solver's median time, each shape's output checked against CLBlast's own parameters' output. */
typedef struct clblast_tuner {
    const opts *o;
    clcnn_device *dev;
    tuner *shapes; /* the gemm solver's defaults on each shape, with its reference */
    size_t count;
    clcnn__tune_space space;
    double default_ms, deadline;
    candidate *results;
    size_t nresults, cap, evals, rejected;
} clblast_tuner;

static void clblast_point(const clblast_tuner *c, const int *v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->space.nparams && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s=%d", i ? " " : "", c->space.params[i].name,
                         v[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static clcnn_status clblast_save(clblast_tuner *c, bool complete)
{
    return cltune_save_best(c->dev, &c->space, CLCNN__CLBLAST_DB_KERNEL, CLCNN__CLBLAST_DB_PROBLEM,
                            "clblast", c->results, c->nresults, NULL, 0, c->default_ms, complete);
}

static clcnn__tune_verdict clblast_cost(const int *v, void *user, double *cost_ms)
{
    clblast_tuner *c = user;
    if (memcmp(v, c->space.defaults, c->space.nparams * sizeof *v) == 0) {
        /* CLBlast's own parameters cannot be restored once overridden: measured first. */
        *cost_ms = c->default_ms;
        return CLCNN__TUNE_MEASURED;
    }
    if (cltune_interrupted || (c->deadline > 0 && cltune_now_s() > c->deadline))
        return CLCNN__TUNE_STOP;
    char point[200];
    clblast_point(c, v, point, sizeof point);
    double total = 0;
    outcome out = clcnn__clblast_override(c->dev, v) == CLCNN_OK ? OUT_OK : OUT_FAILED;
    for (size_t i = 0; out == OUT_OK && i < c->count; i++) {
        double ms = 0, err = 0;
        out = cltune_measure(&c->shapes[i], c->shapes[i].space.defaults, &ms, &err);
        if (out == OUT_WRONG)
            fprintf(stderr, "\ncltune:   %s: max relative error %.3g > %.0e\n", c->shapes[i].key,
                    err, MAX_REL_ERR);
        total += ms;
    }
    if (out == OUT_STOP)
        return CLCNN__TUNE_STOP;
    c->evals++;
    if (out != OUT_OK) {
        if (clcnn_last_error()[0] != '\0')
            fprintf(stderr, "\ncltune: %s\n", clcnn_last_error());
        clcnn_clear_error();
        c->rejected++;
        fprintf(stderr, "\ncltune: rejected %s: %s\n", point,
                out == OUT_WRONG ? "wrong result" : "failed to build or run");
        return CLCNN__TUNE_REJECTED;
    }
    if (c->nresults == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        candidate *grown = realloc(c->results, cap * sizeof *grown);
        if (grown == NULL)
            return CLCNN__TUNE_STOP;
        c->results = grown;
        c->cap = cap;
    }
    memcpy(c->results[c->nresults].values, v, c->space.nparams * sizeof *v);
    c->results[c->nresults++].ms = total;
    if (clblast_save(c, false) != CLCNN_OK) {
        fprintf(stderr, "\ncltune: cannot save progress: %s\n", clcnn_last_error());
        clcnn_clear_error();
    }
    fprintf(stderr, "\r[clblast] %zu evals, %zu rejected, last %.3f ms (defaults %.3f ms)   ",
            c->evals, c->rejected, total, c->default_ms);
    fflush(stderr);
    *cost_ms = total;
    return CLCNN__TUNE_MEASURED;
}

/* The shapes' references and times with CLBlast's own parameters (the device was created
 * without the stored ones); shapes the gemm solver cannot run are left out. */
static clcnn_status clblast_references(clblast_tuner *c, const shape *shapes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        tuner *t = &c->shapes[c->count];
        *t = (tuner){.o = c->o, .dev = c->dev, .shape_index = i, .shape_count = count};
        clcnn_status st = cltune_make_tensors(t, &shapes[i]);
        const char *why = "";
        if (st == CLCNN_OK && !c->o->tunable->solver->applicable(&t->pb, c->dev, &why)) {
            printf("# %s (%s): solver gemm cannot run it (%s), skipped\n", t->key, shapes[i].label,
                   why);
            cltune_free_tensors(t);
            continue;
        }
        c->count++;
        double ms = 0, err = 0;
        if (st == CLCNN_OK && cltune_measure(t, t->space.defaults, &ms, &err) != OUT_OK)
            st = CLCNN_ERR(CLCNN_STATUS_INTERNAL,
                           "cltune: the gemm solver with CLBlast's own parameters failed on %s",
                           t->key);
        CLCNN_TRY(st);
        t->ref = t->out;
        t->out = malloc(t->count * sizeof *t->out);
        CLCNN_FAIL_IF(t->out == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "cltune: out of host memory");
        for (size_t k = 0; k < t->count; k++)
            t->ref_max = fabs(t->ref[k]) > t->ref_max ? fabs(t->ref[k]) : t->ref_max;
        t->default_ms = ms;
        c->default_ms += ms;
        printf("# %s (%s): %.3f ms with CLBlast's own parameters\n", t->key, shapes[i].label, ms);
    }
    return CLCNN_OK;
}

static void clblast_report(clblast_tuner *c, const clcnn__tune_result *r)
{
    qsort(c->results, c->nresults, sizeof c->results[0], cltune_compare_candidate);
    printf("# CLBlast SGEMM over %zu shape(s): %zu evaluated of %zu valid points (%s), %zu "
           "rejected; times are sums of the gemm solver's medians\n",
           c->count, r->evals, r->valid_points, clcnn__tune_strategy_name(c->o->strategy),
           r->rejected);
    char point[200];
    printf("%-4s %-70s %10s %8s\n", "rank", "parameters", "total ms", "speedup");
    clblast_point(c, c->space.defaults, point, sizeof point);
    printf("%-4s %-70s %10.3f %7.2fx\n", "def", point, c->default_ms, 1.0);
    for (size_t i = 0; i < c->nresults && i < TOP_ROWS; i++) {
        clblast_point(c, c->results[i].values, point, sizeof point);
        printf("%-4zu %-70s %10.3f %7.2fx\n", i + 1, point, c->results[i].ms,
               c->default_ms / c->results[i].ms);
    }
    fflush(stdout);
}

clcnn_status cltune_clblast(clcnn_device *dev, const opts *o, const shape *shapes, size_t count,
                            double end)
{
    clblast_tuner c = {.o = o, .dev = dev, .deadline = end};
    clcnn__clblast_space(dev, &c.space);
    if (o->resume) {
        int v[CLCNN__TUNE_MAX_PARAMS];
        const char *names[CLCNN__TUNE_MAX_PARAMS];
        for (size_t i = 0; i < c.space.nparams; i++)
            names[i] = c.space.params[i].name;
        bool complete = false, found = false;
        clcnn__tune_db_lookup_params(dev, CLCNN__CLBLAST_DB_KERNEL, CLCNN__CLBLAST_DB_PROBLEM,
                                     names, v, c.space.nparams, &complete, &found);
        if (found && complete) {
            printf("# CLBlast parameters: already in the tuning database, skipped (--resume)\n");
            return CLCNN_OK;
        }
    }
    c.shapes = calloc(count > 0 ? count : 1, sizeof *c.shapes);
    CLCNN_FAIL_IF(c.shapes == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "cltune: out of memory");
    clcnn_status st = clblast_references(&c, shapes, count);
    clcnn__tune_result r = {0};
    if (st == CLCNN_OK && c.count > 0) {
        clcnn__tune_options to = {.strategy = o->strategy,
                                  .seed = o->seed,
                                  .max_evals = o->evals,
                                  .budget_s = end > 0 ? end - cltune_now_s() : 0,
                                  .start_default = true};
        if (end > 0 && !(to.budget_s > 0))
            to.budget_s = 1e-9;
        st = clcnn__tune_search(&c.space, &to, clblast_cost, &c, &r);
        fprintf(stderr, "\n");
    }
    if (st == CLCNN_OK && c.count > 0) {
        clblast_report(&c, &r);
        st = clblast_save(&c, !cltune_interrupted);
    }
    for (size_t i = 0; i < c.count; i++)
        cltune_free_tensors(&c.shapes[i]);
    free(c.shapes);
    free(c.results);
    return st;
}

/* ---- --solver pool -------------------------------------------------------------------------- */

/* One pooling forward problem to tune. */

/* "N,C,H,W,R,S,stride,pad": max pooling with an R x S window. */
bool cltune_parse_pool_shape(const char *spec, pool_shape *out)
{
    size_t v[8];
    const char *p = spec;
    for (int i = 0; i < 8; i++) {
        char *end;
        if (*p < '0' || *p > '9')
            return false;
        unsigned long long x = strtoull(p, &end, 10);
        if (x > (1ull << 30) || (i < 7 && *end != ',') || (i == 7 && *end != '\0'))
            return false;
        v[i] = (size_t)x;
        p = end + 1;
    }
    out->x = (clcnn_shape){v[0], v[1], v[2], v[3]};
    out->p = clcnn_pool_params_default(CLCNN_POOL_MAX);
    out->p.window_h = v[4];
    out->p.window_w = v[5];
    out->p.stride_h = out->p.stride_w = v[6];
    out->p.pad_h = out->p.pad_w = v[7];
    snprintf(out->label, sizeof out->label, "shape");
    return true;
}

/* The pooling layers of a model at [in] batch images (duplicates kept out). */
clcnn_status cltune_model_pool_shapes(const char *path, size_t batch, pool_shape *out,
                                      size_t *count)
{
    clcnn_model_desc model;
    CLCNN_TRY(clcnn_model_load(path, &model));
    clcnn_layer_summary *rows = NULL;
    clcnn_status st = clcnn_model_summary(&model, batch, &rows, NULL);
    *count = 0;
    for (size_t i = 1; st == CLCNN_OK && i < model.count && *count < MAX_SHAPES; i++) {
        const clcnn_layer_desc *l = &model.layers[i];
        if (l->kind != CLCNN_LAYER_POOL)
            continue;
        pool_shape s = {.p = l->pool};
        s.x = (clcnn_shape){batch, rows[i - 1].channels, rows[i - 1].height, rows[i - 1].width};
        snprintf(s.label, sizeof s.label, "%s", l->name);
        char a[160], b[160];
        st = clcnn__pool_key(s.x, &s.p, a, sizeof a);
        bool seen = false;
        for (size_t j = 0; st == CLCNN_OK && j < *count && !seen; j++)
            seen =
                clcnn__pool_key(out[j].x, &out[j].p, b, sizeof b) == CLCNN_OK && strcmp(a, b) == 0;
        if (st == CLCNN_OK && !seen)
            out[(*count)++] = s;
    }
    clcnn_free(rows);
    clcnn_model_desc_free(&model);
    return st;
}

typedef struct pool_tuner {
    const opts *o;
    clcnn_device *dev;
    const pool_shape *s;
    char key[160];
    clcnn__pool_tuning tuning;
    clcnn__tune_space space;
    clcnn_tensor *x, *y;
    float *ref, *out;
    size_t count;
    double default_ms, deadline;
    const int *best;
    double best_ms;
    int best_values[CLCNN__TUNE_MAX_PARAMS];
    size_t evals, rejected;
} pool_tuner;

/* One run of point v, timed on the host clock around the call and a finish (the op returns
 * before its kernel runs). */
static clcnn_status pool_time(pool_tuner *t, const int *v, double *ms)
{
    const double t0 = cltune_now_s();
    CLCNN_TRY(clcnn__pool_forward_with(t->dev, t->x, &t->s->p, t->y, v));
    CLCNN_TRY(clcnn_device_finish(t->dev));
    *ms = (cltune_now_s() - t0) * 1e3;
    return CLCNN_OK;
}

/* Runs a point once (building it), checks it against the defaults' bits (pooling sums in one
 * order whatever the point), then the median of --repeat timed runs. */
static outcome pool_measure(pool_tuner *t, const int *v, double *median_ms)
{
    double times[64] = {0};
    clcnn_status st = clcnn_tensor_fill(t->y, NAN);
    if (st == CLCNN_OK)
        st = clcnn__pool_forward_with(t->dev, t->x, &t->s->p, t->y, v);
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(t->y, t->out, t->count);
    if (st != CLCNN_OK) {
        fprintf(stderr, "\ncltune: candidate failed: %s\n", clcnn_last_error());
        clcnn_clear_error();
        return OUT_FAILED;
    }
    if (t->ref != NULL && memcmp(t->ref, t->out, t->count * sizeof *t->out) != 0)
        return OUT_WRONG;
    unsigned n = 0;
    while (n < t->o->repeat) {
        if (cltune_interrupted || (t->deadline > 0 && cltune_now_s() > t->deadline))
            return OUT_STOP;
        if (pool_time(t, v, &times[n]) != CLCNN_OK) {
            clcnn_clear_error();
            return OUT_FAILED;
        }
        n++;
    }
    qsort(times, n, sizeof times[0], cltune_compare_double);
    *median_ms = times[n / 2];
    return OUT_OK;
}

static clcnn_status pool_save(pool_tuner *t, bool complete)
{
    return cltune_save_best(t->dev, &t->space, CLCNN__POOL_DB_KERNEL, t->key, "pool", NULL, 0,
                            t->best, t->best_ms, t->default_ms, complete);
}

static clcnn__tune_verdict pool_cost(const int *v, void *user, double *cost_ms)
{
    pool_tuner *t = user;
    if (cltune_interrupted || (t->deadline > 0 && cltune_now_s() > t->deadline))
        return CLCNN__TUNE_STOP;
    double ms = 0;
    outcome out = pool_measure(t, v, &ms);
    if (out == OUT_STOP)
        return CLCNN__TUNE_STOP;
    t->evals++;
    if (out != OUT_OK) {
        t->rejected++;
        fprintf(stderr, "\ncltune: rejected POOL_VW=%d LWS=%d: %s\n", v[0], v[1],
                out == OUT_WRONG ? "wrong result" : "failed to build or run");
        return CLCNN__TUNE_REJECTED;
    }
    if (ms < t->best_ms) {
        memcpy(t->best_values, v, t->space.nparams * sizeof *v);
        t->best = t->best_values;
        t->best_ms = ms;
        if (pool_save(t, false) != CLCNN_OK) {
            fprintf(stderr, "\ncltune: cannot save progress: %s\n", clcnn_last_error());
            clcnn_clear_error();
        }
    }
    fprintf(stderr, "\r[pool] %zu evals, %zu rejected, best %.3f ms (%.2fx)   ", t->evals,
            t->rejected, t->best_ms, t->default_ms / t->best_ms);
    fflush(stderr);
    *cost_ms = ms;
    return CLCNN__TUNE_MEASURED;
}

/* Re-times the defaults and the best point in turn, --repeat rounds, so that neither keeps a
 * time from a cold start or a burst of load elsewhere (the defaults run first of all, into
 * freshly allocated buffers); the best is kept only if it still beats the defaults. */
static void pool_confirm(pool_tuner *t)
{
    if (t->best == t->space.defaults)
        return;
    double d[64], b[64];
    unsigned n = 0;
    while (n < t->o->repeat && !cltune_interrupted) {
        if (pool_time(t, t->space.defaults, &d[n]) != CLCNN_OK ||
            pool_time(t, t->best, &b[n]) != CLCNN_OK) {
            clcnn_clear_error();
            return;
        }
        n++;
    }
    if (n == 0)
        return;
    qsort(d, n, sizeof d[0], cltune_compare_double);
    qsort(b, n, sizeof b[0], cltune_compare_double);
    t->default_ms = d[n / 2];
    t->best_ms = b[n / 2];
    if (!(t->best_ms < t->default_ms)) {
        t->best = t->space.defaults;
        t->best_ms = t->default_ms;
    }
}

/* Tunes one pooling forward problem. */
clcnn_status cltune_pool(clcnn_device *dev, const opts *o, const pool_shape *s, double deadline)
{
    pool_tuner t = {.o = o, .dev = dev, .s = s, .deadline = deadline};
    CLCNN_TRY(clcnn__pool_key(s->x, &s->p, t.key, sizeof t.key));
    CLCNN_TRY(clcnn__pool_space(dev, s->x, &s->p, &t.tuning, &t.space));
    if (o->resume) {
        int v[CLCNN__TUNE_MAX_PARAMS];
        bool complete = false, found = false;
        const char *names[CLCNN__TUNE_MAX_PARAMS];
        for (size_t i = 0; i < t.space.nparams; i++)
            names[i] = t.space.params[i].name;
        clcnn__tune_db_lookup_params(dev, CLCNN__POOL_DB_KERNEL, t.key, names, v, t.space.nparams,
                                     &complete, &found);
        if (found && complete) {
            printf("# %s (%s): already in the tuning database, skipped (--resume)\n", t.key,
                   s->label);
            return CLCNN_OK;
        }
    }
    printf("# %s (%s)\n", t.key, s->label);
    t.count = t.tuning.y.n * t.tuning.y.c * t.tuning.y.h * t.tuning.y.w;
    clcnn_status st = clcnn_tensor_create(dev, s->x, &t.x);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, t.tuning.y, &t.y);
    size_t nx = s->x.n * s->x.c * s->x.h * s->x.w;
    float *host = st == CLCNN_OK ? malloc(nx * sizeof *host) : NULL;
    t.out = malloc(t.count * sizeof *t.out);
    if (st == CLCNN_OK && (host == NULL || t.out == NULL))
        st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "cltune: out of host memory for %s", t.key);
    uint64_t state = 0x9E3779B97F4A7C15ull ^ o->seed;
    for (size_t i = 0; st == CLCNN_OK && i < nx; i++) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        host[i] = (float)((double)((state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0);
    }
    if (st == CLCNN_OK)
        st = clcnn_tensor_upload(t.x, host, nx);
    free(host);
    /* The defaults' output is the reference. */
    if (st == CLCNN_OK && pool_measure(&t, t.space.defaults, &t.default_ms) != OUT_OK)
        st = CLCNN_ERR(CLCNN_STATUS_INTERNAL, "cltune: the default configuration of %s failed",
                       t.key);
    if (st == CLCNN_OK) {
        t.ref = t.out;
        t.out = malloc(t.count * sizeof *t.out);
        if (t.out == NULL)
            st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "cltune: out of host memory");
        t.best = t.space.defaults;
        t.best_ms = t.default_ms;
    }
    clcnn__tune_result r = {0};
    if (st == CLCNN_OK) {
        clcnn__tune_options to = {.strategy = o->strategy,
                                  .seed = o->seed,
                                  .max_evals = o->evals,
                                  .budget_s = deadline > 0 ? deadline - cltune_now_s() : 0,
                                  .start_default = true};
        if (deadline > 0 && !(to.budget_s > 0))
            to.budget_s = 1e-9;
        st = clcnn__tune_search(&t.space, &to, pool_cost, &t, &r);
        fprintf(stderr, "\n");
    }
    if (st == CLCNN_OK) {
        pool_confirm(&t);
        printf("# %s: %zu evaluated of %zu valid points (%s), %zu rejected; the defaults and the "
               "best re-timed in turn, %u rounds\n",
               t.key, r.evals, r.valid_points, clcnn__tune_strategy_name(o->strategy), r.rejected,
               o->repeat);
        printf("def  POOL_VW=%d LWS=%d %10.3f ms\n", t.space.defaults[0], t.space.defaults[1],
               t.default_ms);
        printf("best POOL_VW=%d LWS=%d %10.3f ms %7.2fx\n", t.best[0], t.best[1], t.best_ms,
               t.default_ms / t.best_ms);
        st = pool_save(&t, !cltune_interrupted);
    }
    clcnn_tensor_release(t.x);
    clcnn_tensor_release(t.y);
    free(t.ref);
    free(t.out);
    return st;
}
