/* cltune: searches a solver's parameter space for convolution shapes, verifies every candidate
 * against the defaults' output, times it and stores the winner in the device's tuning database,
 * which the library reads when it builds the solver's programs; also --show and main. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clcnn/clcnn.h"
#include "cli.h"
#include "cltune.h"
#include "conv2d_impl.h"
#include "fileio_impl.h"
#include "status_impl.h"
#include "tensor_impl.h"
#include "tune_db_impl.h"
#include "tune_search_impl.h"

#define EXIT_USAGE 2
/* A warm-up run this many times slower than the defaults ends a candidate's timing. */
#define SLOW_FACTOR 3.0

static const char usage_text[] =
    "usage: cltune --solver direct|winograd4|winograd2|winograd4_split|gemm|clblast\n"
    "              (--shape N,C,H,W,K,R,S,stride,pad | --model FILE [--batch N])\n"
    "              [--pass fwd|bwd-data|bwd-weights] [--strategy exhaustive|random|annealing|pso]\n"
    "              [--budget SECONDS[s] | --evals N] [--seed S] [--repeat N] [--resume]\n"
    "              [--device SEL]\n"
    "       cltune --solver pool (--shape N,C,H,W,R,S,stride,pad | --model FILE [--batch N])\n"
    "              [--strategy ...] [--budget ... | --evals N] [--seed S] [--repeat N] [--resume]\n"
    "       cltune --show [--device SEL]\n"
    "\n"
    "Searches the solver's parameter space for each convolution shape (with --model, each\n"
    "distinct conv layer of the model at --batch images, default 1; shapes the solver cannot\n"
    "run are skipped). Every candidate is built, run, checked against the default\n"
    "configuration's output (max relative error 1e-5; a wrong candidate is counted and never\n"
    "chosen) and timed: direct with OpenCL profiling events, the others (several kernels per\n"
    "call) on the host clock around the call and a clcnn_device_finish; the median of --repeat\n"
    "runs (default 5) after one warm-up (a warm-up 3x slower than the defaults ends the\n"
    "candidate's timing). The best candidate, or the defaults when nothing beat them, is\n"
    "written to the device's tuning database as soon as it is found; at the end the defaults\n"
    "and the best 5 are re-timed in turn (--repeat rounds) against load that came and went, and\n"
    "the winner of that is stored. The library then builds the solver with it.\n"
    "--solver pool tunes max/avg/L2 pooling forwards (outputs per work-item of the 2x2\n"
    "stride-2 kernel, work-group width; every candidate must give the defaults' bits); a --shape\n"
    "is max pooling.\n"
    "--solver clblast tunes CLBlast's SGEMM kernel (Xgemm tiles, threads, vector widths, and\n"
    "the size from which CLBlast uses it) for the gemm solver on all the shapes at once: one\n"
    "entry per device, applied through CLBlast's override API when a device is created\n"
    "(CLCNN_TUNE_CLBLAST=off skips that). CLBlast's own parameters are timed first and cannot\n"
    "be restored once overridden, so nothing is re-timed at the end; each candidate's first\n"
    "run builds CLBlast's kernels (20-30 s on POCL).\n"
    "  --budget   wall-clock bound of the whole run (of what is left, each shape gets half an\n"
    "             even share plus half in proportion to its FLOPs);\n"
    "             no candidate starts or keeps timing past it\n"
    "  --evals    candidates measured per shape at most (default: the whole space unless\n"
    "             --budget is given)\n"
    "  --strategy default annealing; --seed default 1 (same seed, same candidates)\n"
    "  --resume   skip shapes the database already holds a finished search for\n"
    "  --show     list what the databases hold for the device: the user's (written by cltune,\n"
    "             in the cache directory) and the shipped one (read-only); a user entry\n"
    "             overrides the shipped one for the same problem\n";

volatile sig_atomic_t cltune_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    cltune_interrupted = 1;
}

double cltune_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "cltune: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'cltune --help')\n");
    return EXIT_USAGE;
}

static int fail(clcnn_status st)
{
    fprintf(stderr, "cltune: %s: %s\n", clcnn_status_name(st), clcnn_last_error());
    return 1;
}

/* ---- options ------------------------------------------------------------------------------ */

static bool parse_size(const char *s, size_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > (1ull << 30))
        return false;
    *out = (size_t)v;
    return true;
}

static bool parse_shape(const char *spec, shape *out)
{
    size_t v[9];
    const char *p = spec;
    for (int i = 0; i < 9; i++) {
        char *end;
        if (*p < '0' || *p > '9')
            return false;
        unsigned long long x = strtoull(p, &end, 10);
        if (x > (1ull << 30) || (i < 9 - 1 && *end != ',') || (i == 9 - 1 && *end != '\0'))
            return false;
        v[i] = (size_t)x;
        p = end + 1;
    }
    out->x = (clcnn_shape){v[0], v[1], v[2], v[3]};
    out->w = (clcnn_shape){v[4], v[1], v[5], v[6]};
    out->p = clcnn_conv_params_default();
    out->p.stride_h = out->p.stride_w = v[7];
    out->p.pad_h = out->p.pad_w = v[8];
    snprintf(out->label, sizeof out->label, "shape");
    return true;
}

/* Takes "--opt VALUE" or "--opt=VALUE": 1 matched, 0 another argument, -1 missing value. */
static int parse_value(opts *o, const char *name, const char *v)
{
    if (strcmp(name, "--solver") == 0) {
        o->solver = v;
    } else if (strcmp(name, "--shape") == 0) {
        o->shape_spec = v;
    } else if (strcmp(name, "--model") == 0) {
        o->model = v;
    } else if (strcmp(name, "--device") == 0) {
        o->device = v;
    } else if (strcmp(name, "--pass") == 0) {
        o->pass = v;
    } else if (strcmp(name, "--batch") == 0) {
        if (!parse_size(v, &o->batch) || o->batch == 0)
            return usage_error("--batch wants a positive integer, not '%s'", v);
    } else if (strcmp(name, "--strategy") == 0) {
        if (clcnn__tune_strategy_parse(v, &o->strategy) != CLCNN_OK)
            return usage_error("unknown strategy '%s' (exhaustive, random, annealing, pso)", v);
    } else if (strcmp(name, "--budget") == 0) {
        char *end;
        o->budget_s = strtod(v, &end);
        if (end == v || (*end != '\0' && strcmp(end, "s") != 0) || !(o->budget_s > 0))
            return usage_error("--budget wants seconds, such as 120s, not '%s'", v);
    } else if (strcmp(name, "--evals") == 0) {
        if (!parse_size(v, &o->evals) || o->evals == 0)
            return usage_error("--evals wants a positive integer, not '%s'", v);
    } else if (strcmp(name, "--seed") == 0) {
        size_t seed;
        if (!parse_size(v, &seed))
            return usage_error("--seed wants a non-negative integer, not '%s'", v);
        o->seed = seed;
    } else if (strcmp(name, "--repeat") == 0) {
        size_t r;
        if (!parse_size(v, &r) || r == 0 || r > 64)
            return usage_error("--repeat wants 1 to 64, not '%s'", v);
        o->repeat = (unsigned)r;
    }
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const char *const valued[] = {"--solver", "--shape", "--model",    "--device",
                                         "--pass",   "--batch", "--strategy", "--budget",
                                         "--evals",  "--seed",  "--repeat"};
    *o = (opts){.batch = 1, .strategy = CLCNN__TUNE_ANNEALING, .seed = 1, .repeat = 5};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (strcmp(argv[i], "--resume") == 0) {
            o->resume = true;
            continue;
        }
        if (strcmp(argv[i], "--show") == 0) {
            o->show = true;
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0] && !matched; k++) {
            const char *v = NULL;
            int m = cli_option_value(argc, argv, &i, valued[k], &v);
            if (m < 0)
                return usage_error("%s needs a value", valued[k]);
            if (m > 0) {
                matched = true;
                int rc = parse_value(o, valued[k], v);
                if (rc != 0)
                    return rc;
            }
        }
        if (!matched)
            return usage_error("unknown argument '%s'", argv[i]);
    }
    if (o->show)
        return 0;
    char tunable[160] = "";
    for (size_t i = 0, used = 0; clcnn__conv_tunable_at(i) != NULL && used < sizeof tunable; i++) {
        int w = snprintf(tunable + used, sizeof tunable - used, "%s%s", i ? ", " : "",
                         clcnn__conv_tunable_at(i)->solver->name);
        used += w > 0 ? (size_t)w : 0;
    }
    if (o->solver != NULL && strcmp(o->solver, "pool") == 0) {
        o->pool = true;
        if (o->pass != NULL && strcmp(o->pass, "fwd") != 0)
            return usage_error("pass '%s' is not tunable for pooling (fwd only)", o->pass);
        if ((o->shape_spec == NULL) == (o->model == NULL))
            return usage_error("%s", "give one of --shape and --model");
        return 0;
    }
    if (o->solver != NULL && strcmp(o->solver, "clblast") == 0) {
        o->clblast = true;
        o->solver = "gemm";
    }
    if (o->solver == NULL) {
        fprintf(stderr, "cltune: --solver is required (%s) (see 'cltune --help')\n", tunable);
        return EXIT_USAGE;
    }
    clcnn_conv_pass pass = CLCNN_CONV_PASS_FWD;
    if (o->pass != NULL && strcmp(o->pass, "bwd-data") == 0)
        pass = CLCNN_CONV_PASS_BWD_DATA;
    else if (o->pass != NULL && strcmp(o->pass, "bwd-weights") == 0)
        pass = CLCNN_CONV_PASS_BWD_WEIGHTS;
    else if (o->pass != NULL && strcmp(o->pass, "fwd") != 0)
        return usage_error("unknown pass '%s' (fwd, bwd-data, bwd-weights)", o->pass);
    if (o->clblast && pass != CLCNN_CONV_PASS_FWD)
        return usage_error("%s",
                           "--solver clblast tunes through the forward gemm solver: no --pass");
    o->tunable = clcnn__conv_tunable_find(o->solver, pass);
    if (o->tunable == NULL) {
        /* The tunable solvers of the pass asked for. */
        char list[160] = "";
        for (size_t i = 0, used = 0; clcnn__conv_tunable_at(i) != NULL && used < sizeof list; i++) {
            if (clcnn__conv_tunable_at(i)->pass != pass)
                continue;
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                             clcnn__conv_tunable_at(i)->solver->name);
            used += w > 0 ? (size_t)w : 0;
        }
        fprintf(stderr,
                "cltune: solver '%s' is not tunable yet for --pass %s (tunable: %s%s) (see "
                "'cltune --help')\n",
                o->solver, clcnn_conv_pass_name(pass), list,
                pass == CLCNN_CONV_PASS_FWD ? ", clblast" : "");
        return EXIT_USAGE;
    }
    if ((o->shape_spec == NULL) == (o->model == NULL))
        return usage_error("%s", "give one of --shape and --model");
    return 0;
}

/* ---- shapes ------------------------------------------------------------------------------- */

/* The distinct convolutions of a model at [in] batch images. */
static clcnn_status model_shapes(const char *path, size_t batch, shape *out, size_t *count)
{
    clcnn_model_desc model;
    CLCNN_TRY(clcnn_model_load(path, &model));
    clcnn_layer_summary *rows = NULL;
    clcnn_status st = clcnn_model_summary(&model, batch, &rows, NULL);
    *count = 0;
    for (size_t i = 1; st == CLCNN_OK && i < model.count; i++) {
        const clcnn_layer_desc *l = &model.layers[i];
        if (l->kind != CLCNN_LAYER_CONV)
            continue;
        shape s;
        s.x = (clcnn_shape){batch, rows[i - 1].channels, rows[i - 1].height, rows[i - 1].width};
        s.w = (clcnn_shape){l->outputs, s.x.c / l->conv.groups, l->kernel_h, l->kernel_w};
        s.p = l->conv;
        s.p.relu = false;
        snprintf(s.label, sizeof s.label, "%s", l->name);
        clcnn__conv_problem a, b;
        bool seen = false;
        st = clcnn__conv_make_problem(s.x, s.w, &s.p, &a);
        for (size_t j = 0; st == CLCNN_OK && j < *count && !seen; j++) {
            char ka[256], kb[256];
            clcnn__conv_make_problem(out[j].x, out[j].w, &out[j].p, &b);
            clcnn__conv_problem_key(&a, ka, sizeof ka);
            clcnn__conv_problem_key(&b, kb, sizeof kb);
            seen = strcmp(ka, kb) == 0;
        }
        if (st == CLCNN_OK && !seen && *count < MAX_SHAPES)
            out[(*count)++] = s;
    }
    clcnn_free(rows);
    clcnn_model_desc_free(&model);
    return st;
}

/* Forward FLOPs of a shape (a multiply-add counts 2); 0 for an invalid one. */
static double shape_flops(const shape *s)
{
    clcnn__conv_problem pb;
    if (clcnn__conv_make_problem(s->x, s->w, &s->p, &pb) != CLCNN_OK) {
        clcnn_clear_error();
        return 0;
    }
    return 2.0 * (double)(pb.y.n * pb.y.c * pb.y.h * pb.y.w) * (double)(pb.cg * pb.w.h * pb.w.w);
}

/* ---- one shape ---------------------------------------------------------------------------- */

static clcnn_status ensure_workspace(tuner *t, size_t need)
{
    if (need <= t->ws_bytes)
        return CLCNN_OK;
    if (t->ws != NULL)
        clReleaseMemObject(t->ws);
    t->ws = NULL;
    t->ws_bytes = 0;
    cl_int err;
    t->ws = clCreateBuffer(clcnn_device_context(t->dev), CL_MEM_READ_WRITE, need, NULL, &err);
    if (err != CL_SUCCESS) {
        t->ws = NULL;
        return CLCNN_CL_ERR(err, "cltune: clCreateBuffer(workspace %zu bytes)", need);
    }
    t->ws_bytes = need;
    return CLCNN_OK;
}

static clcnn_status run_once(tuner *t, const int *v, double *ms)
{
    const clcnn__conv_tunable *tun = t->o->tunable;
    CLCNN_TRY(ensure_workspace(t, tun->workspace_with(&t->pb, t->dev, tun, v)));
    clcnn__conv_args args = {clcnn_tensor_buffer(t->x), clcnn_tensor_buffer(t->w),
                             clcnn_tensor_buffer(t->b), clcnn_tensor_buffer(t->y), t->w};
    /* The backward passes write x (dx) or w (dw), read y as dy, and have no bias. */
    if (tun->pass != CLCNN_CONV_PASS_FWD) {
        args.bias = NULL;
        args.w_tensor = NULL;
    }
    if (!tun->host_clock)
        return tun->run_with(t->dev, &t->pb, &args, t->ws, tun, v, ms);
    /* The ops return before their kernels run: the time is the call's and the finish's. */
    const double t0 = cltune_now_s();
    CLCNN_TRY(tun->run_with(t->dev, &t->pb, &args, t->ws, tun, v, NULL));
    CLCNN_TRY(clcnn_device_finish(t->dev));
    *ms = (cltune_now_s() - t0) * 1e3;
    return CLCNN_OK;
}

int cltune_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs a candidate once (building it), checks its output against the reference (when
 * t->ref holds one), then times repeat runs: [out] median_ms. */
outcome cltune_measure(tuner *t, const int *v, double *median_ms, double *rel_err)
{
    double ms;
    *rel_err = 0;
    clcnn_status st = clcnn_tensor_fill(t->target, NAN);
    if (st == CLCNN_OK)
        st = run_once(t, v, &ms);
    if (st == CLCNN_OK && t->corrupt_on && memcmp(v, t->corrupt, t->space.nparams * sizeof *v) == 0)
        st = clcnn_tensor_fill(t->target, 0.5f); /* what a kernel with a wrong index would leave */
    if (st == CLCNN_OK)
        st = clcnn_tensor_download(t->target, t->out, t->count);
    if (st != CLCNN_OK) {
        if (clcnn_last_error()[0] != '\0')
            fprintf(stderr, "\ncltune: candidate failed: %s\n", clcnn_last_error());
        clcnn_clear_error();
        return OUT_FAILED;
    }
    if (t->ref != NULL) {
        double worst = 0;
        for (size_t i = 0; i < t->count; i++) {
            double d = fabs((double)t->out[i] - (double)t->ref[i]);
            if (!(d <= worst)) /* NaN counts as the worst */
                worst = isnan(d) ? INFINITY : d;
        }
        *rel_err = worst / (t->ref_max > 0 ? t->ref_max : 1);
        if (!(*rel_err <= MAX_REL_ERR))
            return OUT_WRONG;
    }
    /* On the host clock the first run's time includes building the candidate: the warm-up is
     * a second run. */
    if (t->o->tunable->host_clock && run_once(t, v, &ms) != CLCNN_OK) {
        clcnn_clear_error();
        return OUT_FAILED;
    }
    /* A candidate whose warm-up run already took three times the defaults' median cannot win:
     * its warm-up time stands for it, and the budget goes to the next one. */
    if (t->default_ms > 0 && ms > SLOW_FACTOR * t->default_ms) {
        *median_ms = ms;
        return OUT_OK;
    }
    double times[64] = {0};
    unsigned n = 0;
    while (n < t->o->repeat) {
        if (cltune_interrupted || (t->deadline > 0 && cltune_now_s() > t->deadline))
            return OUT_STOP;
        if (run_once(t, v, &times[n]) != CLCNN_OK) {
            clcnn_clear_error();
            return OUT_FAILED;
        }
        n++;
    }
    qsort(times, n, sizeof times[0], cltune_compare_double);
    *median_ms = times[n / 2];
    return OUT_OK;
}

static void format_point(const tuner *t, const int *v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < t->space.nparams && used < size; i++) {
        const char *name = t->space.params[i].name;
        if (strncmp(name, "CONV_", 5) == 0 || strncmp(name, "WINO_", 5) == 0)
            name += 5;
        int w = snprintf(buf + used, size - used, "%s%s=%d", i ? " " : "", name, v[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void progress(const tuner *t)
{
    double best = INFINITY;
    for (size_t i = 0; i < t->nresults; i++)
        best = t->results[i].ms < best ? t->results[i].ms : best;
    double frac = t->planned > 0 ? (double)t->evals / (double)t->planned : 0;
    if (t->deadline > 0) {
        double tf = (cltune_now_s() - t->started) / (t->deadline - t->started);
        frac = tf > frac ? tf : frac;
    }
    frac = frac > 1 ? 1 : frac;
    char bar[31];
    int filled = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%zu/%zu] [%s] %zu evals, %zu rejected, best %.3f ms (%.2fx)   ",
            t->shape_index + 1, t->shape_count, bar, t->evals, t->rejected, best,
            t->default_ms / best);
    fflush(stderr);
}

clcnn_status cltune_save_best(clcnn_device *dev, const clcnn__tune_space *space, const char *kernel,
                              const char *problem, const char *solver, const candidate *results,
                              size_t n, const int *best, double best_ms, double default_ms,
                              bool complete)
{
    const int *v = best != NULL ? best : space->defaults;
    double ms = best != NULL ? best_ms : default_ms;
    for (size_t i = 0; i < n; i++) {
        if (results[i].ms < ms) {
            ms = results[i].ms;
            v = results[i].values;
        }
    }
    const char *names[CLCNN__TUNE_MAX_PARAMS];
    for (size_t i = 0; i < space->nparams; i++)
        names[i] = space->params[i].name;
    const clcnn__tune_db_entry e = {.kernel = kernel,
                                    .problem = problem,
                                    .solver = solver,
                                    .nparams = space->nparams,
                                    .names = names,
                                    .values = v,
                                    .time_us = ms * 1e3,
                                    .default_us = default_ms * 1e3,
                                    .verified = true,
                                    .complete = complete};
    return clcnn__tune_db_write(dev, &e);
}

/* Stores the best candidate so far (or the defaults when nothing beat them). */
static clcnn_status save(tuner *t, bool complete)
{
    return cltune_save_best(t->dev, &t->space, t->o->tunable->db_kernel, t->key,
                            t->o->tunable->solver->name, t->results, t->nresults, NULL, 0,
                            t->default_ms, complete);
}

static clcnn__tune_verdict cost(const int *v, void *user, double *c)
{
    tuner *t = user;
    if (cltune_interrupted || (t->deadline > 0 && cltune_now_s() > t->deadline))
        return CLCNN__TUNE_STOP;
    double ms = INFINITY, err = 0;
    outcome o = cltune_measure(t, v, &ms, &err);
    if (o == OUT_STOP)
        return CLCNN__TUNE_STOP;
    t->evals++;
    if (o != OUT_OK) {
        t->rejected++;
        char point[160];
        format_point(t, v, point, sizeof point);
        fprintf(stderr, "\ncltune: rejected %s: %s\n", point,
                o == OUT_WRONG ? "wrong result" : "failed to build or run");
        if (o == OUT_WRONG)
            fprintf(stderr, "cltune:   max relative error %.3g > %.0e\n", err, MAX_REL_ERR);
        progress(t);
        return CLCNN__TUNE_REJECTED;
    }
    double best = t->default_ms;
    for (size_t i = 0; i < t->nresults; i++)
        best = t->results[i].ms < best ? t->results[i].ms : best;
    if (t->nresults == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        candidate *grown = realloc(t->results, cap * sizeof *grown);
        if (grown == NULL)
            return CLCNN__TUNE_STOP;
        t->results = grown;
        t->cap = cap;
    }
    memcpy(t->results[t->nresults].values, v, t->space.nparams * sizeof *v);
    t->results[t->nresults++].ms = ms;
    /* Progress is saved as it goes: an cltune_interrupted run keeps its best so far. */
    if (ms < best && save(t, false) != CLCNN_OK) {
        fprintf(stderr, "\ncltune: cannot save progress: %s\n", clcnn_last_error());
        clcnn_clear_error();
    }
    progress(t);
    *c = ms;
    return CLCNN__TUNE_MEASURED;
}

int cltune_compare_candidate(const void *a, const void *b)
{
    return cltune_compare_double(&((const candidate *)a)->ms, &((const candidate *)b)->ms);
}

/* Re-times the defaults and the best few candidates, one run of each in turn for --repeat
 * rounds, so that load which came and went during the search (other processes on a shared CPU)
 * does not choose the winner: each gets the median of its rounds. Stops at the deadline; the
 * search's times stand when not one round finished. Returns whether the times were replaced. */
static bool confirm(tuner *t)
{
    qsort(t->results, t->nresults, sizeof t->results[0], cltune_compare_candidate);
    if (t->nresults == 0)
        return false;
    size_t k = TOP_ROWS;
    if (t->nresults < k)
        k = t->nresults;
    double times[TOP_ROWS + 1][64];
    unsigned rounds = 0;
    for (unsigned r = 0; r < t->o->repeat; r++) {
        bool complete = true;
        for (size_t i = 0; i <= k && complete; i++) {
            const int *v = i == 0 ? t->space.defaults : t->results[i - 1].values;
            complete = !cltune_interrupted && !(t->deadline > 0 && cltune_now_s() > t->deadline) &&
                       run_once(t, v, &times[i][r]) == CLCNN_OK;
        }
        if (!complete)
            break;
        rounds++;
    }
    clcnn_clear_error();
    if (rounds == 0)
        return false;
    for (size_t i = 0; i <= k; i++) {
        qsort(times[i], rounds, sizeof times[i][0], cltune_compare_double);
        if (i == 0)
            t->default_ms = times[0][rounds / 2];
        else
            t->results[i - 1].ms = times[i][rounds / 2];
    }
    /* Only the re-timed candidates keep a place in the ranking. */
    t->nresults = k;
    qsort(t->results, t->nresults, sizeof t->results[0], cltune_compare_candidate);
    return true;
}

static void report(tuner *t, const clcnn__tune_result *r, bool confirmed)
{
    qsort(t->results, t->nresults, sizeof t->results[0], cltune_compare_candidate);
    printf("# %s: %zu evaluated of %zu valid points (%s, %s), %zu rejected by verification or "
           "build\n",
           t->key, r->evals, r->valid_points, clcnn__tune_strategy_name(t->o->strategy),
           r->exhausted ? "the whole space" : "stopped at its bound", r->rejected);
    char point[160];
    if (confirmed)
        printf("# times: the defaults and the best %zu re-timed in turn, %u rounds\n", t->nresults,
               t->o->repeat);
    printf("%-4s %-52s %10s %9s %8s\n", "rank", "parameters", "median ms", "GFLOP/s", "speedup");
    format_point(t, t->space.defaults, point, sizeof point);
    printf("%-4s %-52s %10.3f %9.1f %7.2fx\n", "def", point, t->default_ms,
           t->flops / t->default_ms * 1e-6, 1.0);
    for (size_t i = 0; i < t->nresults && i < TOP_ROWS; i++) {
        format_point(t, t->results[i].values, point, sizeof point);
        printf("%-4zu %-52s %10.3f %9.1f %7.2fx\n", i + 1, point, t->results[i].ms,
               t->flops / t->results[i].ms * 1e-6, t->default_ms / t->results[i].ms);
    }
    fflush(stdout);
}

clcnn_status cltune_make_tensors(tuner *t, const shape *s)
{
    CLCNN_TRY(clcnn__conv_make_problem(s->x, s->w, &s->p, &t->pb));
    clcnn__conv_problem_key(&t->pb, t->key, sizeof t->key);
    t->o->tunable->space(&t->pb, t->dev, t->o->tunable, &t->tuning, &t->space);
    const size_t ny = t->pb.y.n * t->pb.y.c * t->pb.y.h * t->pb.y.w;
    /* Every pass does the forward's multiply-adds. */
    t->flops = 2.0 * (double)ny * (double)(t->pb.cg * t->pb.w.h * t->pb.w.w);
    CLCNN_TRY(clcnn_tensor_create(t->dev, t->pb.x, &t->x));
    CLCNN_TRY(clcnn_tensor_create(t->dev, t->pb.w, &t->w));
    CLCNN_TRY(clcnn_tensor_create(t->dev, (clcnn_shape){1, t->pb.w.n, 1, 1}, &t->b));
    CLCNN_TRY(clcnn_tensor_create(t->dev, t->pb.y, &t->y));
    const clcnn_conv_pass pass = t->o->tunable->pass;
    t->target = pass == CLCNN_CONV_PASS_BWD_DATA      ? t->x
                : pass == CLCNN_CONV_PASS_BWD_WEIGHTS ? t->w
                                                      : t->y;
    t->count = clcnn_tensor_count(t->target);
    size_t nx = clcnn_tensor_count(t->x), nw = clcnn_tensor_count(t->w);
    size_t most = nx > nw ? nx : nw;
    most = most > ny ? most : ny;
    float *host = malloc(most * sizeof *host);
    t->out = malloc(t->count * sizeof *t->out);
    if (host == NULL || t->out == NULL) {
        free(host);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "cltune: out of host memory for %s", t->key);
    }
    /* A fixed xorshift sequence: the same data for every candidate and every run. */
    uint64_t state = 0x9E3779B97F4A7C15ull ^ t->o->seed;
    size_t sizes[4] = {nx, nw, t->pb.w.n, ny};
    clcnn_tensor *dst[4] = {t->x, t->w, t->b, t->y};
    clcnn_status st = CLCNN_OK;
    /* y is dy for the backward passes; the forward overwrites it. */
    for (int k = 0; k < 4 && st == CLCNN_OK; k++) {
        for (size_t i = 0; i < sizes[k]; i++) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            host[i] =
                (float)((double)((state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 * 2.0 -
                        1.0);
        }
        st = clcnn_tensor_upload(dst[k], host, sizes[k]);
    }
    free(host);
    return st;
}

void cltune_free_tensors(tuner *t)
{
    clcnn_tensor_release(t->x);
    clcnn_tensor_release(t->w);
    clcnn_tensor_release(t->b);
    clcnn_tensor_release(t->y);
    if (t->ws != NULL)
        clReleaseMemObject(t->ws);
    free(t->ref);
    free(t->out);
    free(t->results);
}

static void read_corrupt_hook(tuner *t)
{
    const char *hook = getenv("CLTUNE_TEST_CORRUPT");
    if (hook == NULL || *hook == '\0')
        return;
    const char *p = hook;
    for (size_t i = 0; i < t->space.nparams; i++) {
        char *end;
        t->corrupt[i] = (int)strtol(p, &end, 10);
        if (end == p)
            return;
        p = *end == ',' ? end + 1 : end;
    }
    t->corrupt_on = true;
}

/* Tunes one shape; [in,out] *stopped when the run was cltune_interrupted or out of budget. */
static clcnn_status tune_shape(clcnn_device *dev, const opts *o, const shape *s, size_t index,
                               size_t count, double deadline, bool *stopped)
{
    tuner t = {.o = o, .dev = dev, .shape_index = index, .shape_count = count};
    t.deadline = deadline;
    t.started = cltune_now_s();
    clcnn_status st = cltune_make_tensors(&t, s);
    const char *why = "";
    if (st == CLCNN_OK && !o->tunable->solver->applicable(&t.pb, dev, &why)) {
        printf("# %s (%s): solver %s cannot run it (%s), skipped\n", t.key, s->label,
               o->tunable->solver->name, why);
        cltune_free_tensors(&t);
        return CLCNN_OK;
    }
    if (st == CLCNN_OK && o->resume) {
        int v[CLCNN__TUNE_MAX_PARAMS];
        const char *names[CLCNN__TUNE_MAX_PARAMS];
        for (size_t i = 0; i < t.space.nparams; i++)
            names[i] = t.space.params[i].name;
        bool complete = false, found = false;
        clcnn__tune_db_lookup_params(dev, o->tunable->db_kernel, t.key, names, v, t.space.nparams,
                                     &complete, &found);
        if (found && complete) {
            printf("# %s (%s): already in the tuning database, skipped (--resume)\n", t.key,
                   s->label);
            cltune_free_tensors(&t);
            return CLCNN_OK;
        }
    }
    read_corrupt_hook(&t);
    printf("# %s (%s)\n", t.key, s->label);
    double ms = 0, err = 0;
    /* The defaults' output is the reference every candidate is checked against. */
    outcome d = OUT_FAILED;
    if (st == CLCNN_OK)
        d = cltune_measure(&t, t.space.defaults, &ms, &err);
    if (st == CLCNN_OK && d != OUT_OK) {
        if (d == OUT_STOP) {
            *stopped = true;
            cltune_free_tensors(&t);
            return CLCNN_OK;
        }
        st = CLCNN_ERR(CLCNN_STATUS_INTERNAL, "cltune: the default configuration of %s failed",
                       t.key);
    }
    if (st == CLCNN_OK) {
        float *swap = t.out;
        t.out = malloc(t.count * sizeof *t.out);
        t.ref = swap;
        if (t.out == NULL)
            st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "cltune: out of host memory");
        for (size_t i = 0; st == CLCNN_OK && i < t.count; i++)
            t.ref_max = fabs(t.ref[i]) > t.ref_max ? fabs(t.ref[i]) : t.ref_max;
        t.default_ms = ms;
    }
    /* The shape is in the database from here on, marked unfinished until the search ends. */
    if (st == CLCNN_OK)
        st = save(&t, false);
    clcnn__tune_result r = {0};
    if (st == CLCNN_OK) {
        clcnn__tune_options to = {.strategy = o->strategy,
                                  .seed = o->seed,
                                  .max_evals = o->evals,
                                  .budget_s = deadline > 0 ? deadline - cltune_now_s() : 0,
                                  .start_default = true};
        if (deadline > 0 && !(to.budget_s > 0))
            to.budget_s = 1e-9;
        t.planned = clcnn__tune_space_count_valid(&t.space);
        if (o->evals > 0 && o->evals < t.planned)
            t.planned = o->evals;
        /* The search gets 85% of the shape's time; re-timing the best few gets the rest. */
        if (deadline > 0) {
            t.deadline = t.started + 0.85 * (deadline - t.started);
            to.budget_s = t.deadline - cltune_now_s() > 0 ? t.deadline - cltune_now_s() : 1e-9;
        }
        st = clcnn__tune_search(&t.space, &to, cost, &t, &r);
        fprintf(stderr, "\n");
        t.deadline = deadline;
    }
    if (st == CLCNN_OK) {
        report(&t, &r, !cltune_interrupted && confirm(&t));
        *stopped = r.stopped;
        /* A search cut short by Ctrl-C is left for --resume; one that met its bounds is done. */
        st = save(&t, !cltune_interrupted);
    }
    cltune_free_tensors(&t);
    return st;
}

/* ---- --show ------------------------------------------------------------------------------- */

/* A database file for --show: NULL when absent (*absent) or corrupt (a warning on stderr). */
static cJSON *show_load(const char *path, bool *absent)
{
    *absent = false;
    FILE *probe = fopen(path, "rb");
    if (probe == NULL) {
        *absent = true;
        return NULL;
    }
    fclose(probe);
    void *data = NULL;
    size_t size = 0;
    cJSON *root = NULL;
    const char *why = "unreadable";
    if (clcnn__file_read_all(path, (size_t)64 << 20, &data, &size) == CLCNN_OK)
        root = clcnn__tune_db_parse(data, size, &why);
    free(data);
    clcnn_clear_error();
    if (root == NULL)
        fprintf(stderr, "cltune: warning: ignoring corrupt tuning database %s (%s)\n", path, why);
    return root;
}

static bool holds_verified(const cJSON *root, const cJSON *kernel, const cJSON *problem)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kernel");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(e, "problem");
        if (cJSON_IsString(k) && cJSON_IsString(pr) &&
            strcmp(k->valuestring, kernel->valuestring) == 0 &&
            strcmp(pr->valuestring, problem->valuestring) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "verified")))
            return true;
    }
    return false;
}

/* One row per entry of root; from says which database; an entry of the shipped one that the
 * user's (mine, may be NULL) also holds is marked overridden. */
static void show_entries(const cJSON *root, const char *from, const cJSON *mine)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kernel");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(e, "problem");
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(e, "solver");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "time_us");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "default_us");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(e, "params");
        if (!cJSON_IsString(k) || !cJSON_IsString(pr) || !cJSON_IsString(so))
            continue;
        char ptext[256] = "-";
        size_t used = 0;
        const cJSON *p;
        cJSON_ArrayForEach(p, params)
        {
            if (!cJSON_IsNumber(p) || p->string == NULL || used >= sizeof ptext)
                continue;
            int w = snprintf(ptext + used, sizeof ptext - used, "%s%s=%d", used ? " " : "",
                             p->string, p->valueint);
            if (w > 0)
                used += (size_t)w;
        }
        char speed[16] = "-";
        if (cJSON_IsNumber(t) && cJSON_IsNumber(d) && t->valuedouble > 0)
            snprintf(speed, sizeof speed, "%.2fx", d->valuedouble / t->valuedouble);
        const char *state =
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "verified"))   ? "unverified"
            : cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "complete")) ? "partial"
                                                                             : "done";
        const char *origin = mine != NULL && holds_verified(mine, k, pr) ? "overridden" : from;
        printf("%-14s %-32s %-16s %-56s %10.1f %8s %-10s %s\n", k->valuestring, pr->valuestring,
               so->valuestring, ptext, cJSON_IsNumber(t) ? t->valuedouble : NAN, speed, state,
               origin);
    }
}

/* Lists the user's database (the cache directory's, which cltune writes) and the shipped one
 * (read-only, beneath it): the "from" column says where each entry is; a shipped entry the
 * user's also holds is "overridden". */
static int show(clcnn_device *dev)
{
    char *path = NULL, *shipped = NULL;
    clcnn_status st = clcnn__tune_db_path(dev, &path);
    if (st == CLCNN_OK)
        st = clcnn__tune_db_shipped_path(dev, &shipped);
    if (st != CLCNN_OK) {
        free(path);
        return fail(st);
    }
    const char *name = clcnn_device_get_info(dev)->name;
    bool absent = true, shipped_absent = true;
    cJSON *mine = NULL, *theirs = NULL;
    if (path == NULL) {
        printf("# the cache directory is off (CLCNN_CACHE_DIR=off): no user tuning database\n");
    } else {
        mine = show_load(path, &absent);
        printf("# tuning database of %s (user): %s%s\n", name, path,
               absent ? " (no file yet)" : "");
    }
    if (shipped == NULL) {
        printf("# shipped tuning database: off (CLCNN_TUNE_SHIPPED)\n");
    } else {
        theirs = show_load(shipped, &shipped_absent);
        printf("# shipped tuning database: %s%s\n", shipped,
               shipped_absent ? " (none for this device)" : "");
    }
    if (mine != NULL || theirs != NULL) {
        printf("%-14s %-32s %-16s %-56s %10s %8s %-10s %s\n", "kernel", "problem", "solver",
               "params", "time us", "speedup", "state", "from");
        if (mine != NULL)
            show_entries(mine, "user", NULL);
        if (theirs != NULL)
            show_entries(theirs, "shipped", mine);
    }
    cJSON_Delete(mine);
    cJSON_Delete(theirs);
    free(path);
    free(shipped);
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    static shape shapes[MAX_SHAPES];
    static pool_shape pools[MAX_SHAPES];
    size_t count = 0;
    if (!o.show && o.pool && o.shape_spec != NULL) {
        if (!cltune_parse_pool_shape(o.shape_spec, &pools[0]))
            return usage_error("--shape wants N,C,H,W,R,S,stride,pad for pooling, not '%s'",
                               o.shape_spec);
        count = 1;
    } else if (!o.show && o.shape_spec != NULL) {
        if (!parse_shape(o.shape_spec, &shapes[0]))
            return usage_error("--shape wants N,C,H,W,K,R,S,stride,pad, not '%s'", o.shape_spec);
        count = 1;
    }
    /* Tuning CLBlast starts from its own parameters, not the ones stored. */
    if (o.clblast)
        setenv("CLCNN_TUNE_CLBLAST", "off", 1);
    clcnn_device *dev = NULL;
    clcnn_status st = clcnn_device_create(o.device, &dev);
    if (st != CLCNN_OK)
        return fail(st);
    if (o.show) {
        rc = show(dev);
        clcnn_device_release(dev);
        return rc;
    }
    if (o.model != NULL)
        st = o.pool ? cltune_model_pool_shapes(o.model, o.batch, pools, &count)
                    : model_shapes(o.model, o.batch, shapes, &count);
    const clcnn_device_info *info = clcnn_device_get_info(dev);
    if (st == CLCNN_OK)
        printf("# cltune --solver %s --pass %s on %s (%s, driver %s): %zu shape(s), strategy %s, "
               "seed %llu, %s\n",
               o.clblast ? "clblast" : o.solver,
               o.pool ? "fwd" : clcnn_conv_pass_name(o.tunable->pass), info->name,
               info->platform_name, info->driver_version, count,
               clcnn__tune_strategy_name(o.strategy), (unsigned long long)o.seed,
               o.budget_s > 0 ? "time budget" : "evaluation bound");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double end = o.budget_s > 0 ? cltune_now_s() + o.budget_s : 0;
    bool stopped = false;
    if (st == CLCNN_OK && o.clblast) {
        st = cltune_clblast(dev, &o, shapes, count, end);
        count = 0;
    }
    for (size_t i = 0; st == CLCNN_OK && o.pool && i < count && !cltune_interrupted; i++) {
        /* An even share of what is left. */
        double deadline =
            end > 0 ? cltune_now_s() + (end - cltune_now_s()) / (double)(count - i) : 0;
        if (end > 0 && end - cltune_now_s() <= 0)
            break;
        st = cltune_pool(dev, &o, &pools[i], deadline);
    }
    if (o.pool)
        count = 0;
    for (size_t i = 0; st == CLCNN_OK && i < count && !cltune_interrupted; i++) {
        double deadline = 0;
        if (end > 0) {
            double left = end - cltune_now_s();
            if (left <= 0)
                break;
            /* Half of what is left is shared evenly by the shapes still to do, half by their
             * FLOPs: a candidate's build costs about the same everywhere, its runs do not. */
            double rest = 0;
            for (size_t j = i; j < count; j++)
                rest += shape_flops(&shapes[j]);
            double share = 0.5 / (double)(count - i);
            share += rest > 0 ? 0.5 * shape_flops(&shapes[i]) / rest : 0.5 / (double)(count - i);
            deadline = cltune_now_s() + left * share;
        }
        st = tune_shape(dev, &o, &shapes[i], i, count, deadline, &stopped);
    }
    if (st != CLCNN_OK)
        rc = fail(st);
    else if (cltune_interrupted)
        fprintf(stderr, "cltune: cltune_interrupted; what was found is saved, --resume goes on\n");
    clcnn_device_release(dev);
    return rc != 0 ? rc : cltune_interrupted ? 130 : 0;
}
