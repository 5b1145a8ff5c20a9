/* Search strategies over a tuning parameter space: the space is enumerated once (points that
 * break the constraint are never proposed), costs are remembered so no point is measured twice,
 * and every random choice comes from one seeded generator. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status_impl.h"
#include "tune_search_impl.h"

const char *clcnn__tune_strategy_name(clcnn__tune_strategy s)
{
    switch (s) {
#define STRATEGY_NAME_(name, token)                                                                \
    case CLCNN__TUNE_##name:                                                                       \
        return token;
        CLCNN__TUNE_STRATEGY_LIST(STRATEGY_NAME_)
#undef STRATEGY_NAME_
    default:
        return NULL;
    }
}

clcnn_status clcnn__tune_strategy_parse(const char *token, clcnn__tune_strategy *s)
{
    CLCNN_FAIL_IF(token == NULL || s == NULL, CLCNN_STATUS_INVALID_ARG, "tune: NULL argument");
    for (int i = 0; i < CLCNN__TUNE_STRATEGY_COUNT; i++) {
        if (strcmp(token, clcnn__tune_strategy_name((clcnn__tune_strategy)i)) == 0) {
            *s = (clcnn__tune_strategy)i;
            return CLCNN_OK;
        }
    }
    return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG,
                     "tune: unknown strategy '%s' (known: exhaustive, random, annealing, pso)",
                     token);
}

int clcnn__tune_param_index(const clcnn__tune_space *space, const char *name)
{
    for (size_t i = 0; i < space->nparams; i++)
        if (strcmp(space->params[i].name, name) == 0)
            return (int)i;
    return -1;
}

clcnn_status clcnn__tune_space_check(const clcnn__tune_space *space)
{
    CLCNN_FAIL_IF(space == NULL, CLCNN_STATUS_INVALID_ARG, "tune: NULL space");
    CLCNN_FAIL_IF(space->nparams == 0 || space->nparams > CLCNN__TUNE_MAX_PARAMS,
                  CLCNN_STATUS_INVALID_ARG, "tune: a space has 1 to %d parameters, not %zu",
                  CLCNN__TUNE_MAX_PARAMS, space->nparams);
    size_t total = 1;
    for (size_t i = 0; i < space->nparams; i++) {
        const clcnn__tune_param *p = &space->params[i];
        CLCNN_FAIL_IF(p->count == 0 || p->count > CLCNN__TUNE_MAX_VALUES, CLCNN_STATUS_INVALID_ARG,
                      "tune: parameter %s has %zu candidate values (1 to %d)",
                      p->name ? p->name : "?", p->count, CLCNN__TUNE_MAX_VALUES);
        bool has_default = false;
        for (size_t j = 0; j < p->count; j++)
            has_default = has_default || p->values[j] == space->defaults[i];
        CLCNN_FAIL_IF(!has_default, CLCNN_STATUS_INVALID_ARG,
                      "tune: the default %s=%d is not one of its candidate values",
                      p->name ? p->name : "?", space->defaults[i]);
        total *= p->count;
        CLCNN_FAIL_IF(total > CLCNN__TUNE_MAX_POINTS, CLCNN_STATUS_INVALID_ARG,
                      "tune: the space has more than %zu points", CLCNN__TUNE_MAX_POINTS);
    }
    return CLCNN_OK;
}

size_t clcnn__tune_space_count_valid(const clcnn__tune_space *space)
{
    size_t total = 1, n = 0;
    for (size_t d = 0; d < space->nparams; d++)
        total *= space->params[d].count;
    int values[CLCNN__TUNE_MAX_PARAMS] = {0};
    for (size_t code = 0; code < total; code++) {
        size_t rest = code;
        for (size_t d = space->nparams; d-- > 0;) {
            values[d] = space->params[d].values[rest % space->params[d].count];
            rest /= space->params[d].count;
        }
        n += space->valid == NULL || space->valid(values, space->user);
    }
    return n;
}

/* ---- state of one search ---------------------------------------------------------------- */

enum { UNSEEN = 0, MEASURED = 1, REJECTED = 2 };

typedef enum eval_outcome {
    EVAL_NEW,    /* measured or rejected just now */
    EVAL_CACHED, /* known already: no evaluation spent */
    EVAL_END,    /* a bound was reached or the callback said STOP */
} eval_outcome;

typedef struct search {
    const clcnn__tune_space *space;
    const clcnn__tune_options *opt;
    clcnn__tune_cost_fn cost_fn;
    void *user;
    clcnn__tune_result *res;
    size_t total;  /* points, valid or not */
    size_t nvalid; /* valid points */
    size_t *valid; /* their codes (mixed radix over the parameters' indices), ascending */
    int32_t *slot; /* code -> index in valid, or -1 */
    unsigned char *state;
    double *cost;
    size_t unseen; /* valid points not evaluated yet */
    double start_s;
    uint64_t rng;
} search;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*, seeded through splitmix64 so that seed 0 works. */
static uint64_t rng_next(search *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void rng_seed(search *s, uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    s->rng = z != 0 ? z : 1;
}

/* Uniform in [0, 1). */
static double rng_uniform(search *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [0, n), n > 0. */
static size_t rng_below(search *s, size_t n)
{
    return (size_t)(rng_uniform(s) * (double)n) % n;
}

static void decode(const search *s, size_t code, int *idx)
{
    for (size_t d = s->space->nparams; d-- > 0;) {
        idx[d] = (int)(code % s->space->params[d].count);
        code /= s->space->params[d].count;
    }
}

static size_t encode(const search *s, const int *idx)
{
    size_t code = 0;
    for (size_t d = 0; d < s->space->nparams; d++)
        code = code * s->space->params[d].count + (size_t)idx[d];
    return code;
}

static void values_of(const search *s, const int *idx, int *values)
{
    for (size_t d = 0; d < s->space->nparams; d++)
        values[d] = s->space->params[d].values[idx[d]];
}

static bool bounded(const search *s)
{
    if (s->opt->max_evals > 0 && s->res->evals >= s->opt->max_evals)
        return true;
    return s->opt->budget_s > 0 && now_s() - s->start_s >= s->opt->budget_s;
}

/* Evaluates valid point vi unless it is known already. */
static eval_outcome evaluate(search *s, size_t vi)
{
    if (s->state[vi] != UNSEEN)
        return EVAL_CACHED;
    if (s->res->stopped || bounded(s))
        return EVAL_END;
    int idx[CLCNN__TUNE_MAX_PARAMS] = {0}, values[CLCNN__TUNE_MAX_PARAMS] = {0};
    decode(s, s->valid[vi], idx);
    values_of(s, idx, values);
    double c = INFINITY;
    clcnn__tune_verdict v = s->cost_fn(values, s->user, &c);
    if (v == CLCNN__TUNE_STOP) {
        s->res->stopped = true;
        return EVAL_END;
    }
    s->res->evals++;
    s->unseen--;
    if (v == CLCNN__TUNE_REJECTED || isnan(c)) {
        s->state[vi] = REJECTED;
        s->res->rejected++;
        return EVAL_NEW;
    }
    s->state[vi] = MEASURED;
    s->cost[vi] = c;
    if (!s->res->found || c < s->res->best_cost) {
        s->res->found = true;
        s->res->best_cost = c;
        memcpy(s->res->best, values, sizeof values);
    }
    return EVAL_NEW;
}

/* A uniformly chosen valid point not evaluated yet; nvalid when there is none. */
static size_t random_unseen(search *s)
{
    if (s->unseen == 0)
        return s->nvalid;
    size_t k = rng_below(s, s->unseen);
    for (size_t vi = 0; vi < s->nvalid; vi++)
        if (s->state[vi] == UNSEEN && k-- == 0)
            return vi;
    return s->nvalid;
}

/* ---- strategies --------------------------------------------------------------------------- */

static void run_exhaustive(search *s)
{
    for (size_t vi = 0; vi < s->nvalid; vi++)
        if (evaluate(s, vi) == EVAL_END)
            return;
}

/* Random sampling without replacement: the valid points in a seeded random order. */
static clcnn_status run_random(search *s)
{
    size_t *order = calloc(s->nvalid, sizeof *order);
    CLCNN_FAIL_IF(order == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "tune: out of memory");
    for (size_t i = 0; i < s->nvalid; i++)
        order[i] = i;
    for (size_t i = s->nvalid; i > 1; i--) {
        size_t j = rng_below(s, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < s->nvalid; i++)
        if (evaluate(s, order[i]) == EVAL_END)
            break;
    free(order);
    return CLCNN_OK;
}

/* A valid neighbour of point vi: one parameter moved one step (or, one time in five, to any of
 * its values). nvalid when none was found in a few tries. */
static size_t neighbour(search *s, size_t vi)
{
    int idx[CLCNN__TUNE_MAX_PARAMS] = {0};
    for (int attempt = 0; attempt < 32; attempt++) {
        decode(s, s->valid[vi], idx);
        size_t d = rng_below(s, s->space->nparams);
        int count = (int)s->space->params[d].count;
        if (count < 2)
            continue;
        int to;
        if (rng_uniform(s) < 0.2) {
            to = (int)rng_below(s, (size_t)count - 1);
            if (to >= idx[d])
                to++;
        } else {
            to = idx[d] + (rng_uniform(s) < 0.5 ? -1 : 1);
            if (to < 0 || to >= count)
                continue;
        }
        idx[d] = to;
        int32_t v = s->slot[encode(s, idx)];
        if (v >= 0)
            return (size_t)v;
    }
    return s->nvalid;
}

/* A measured starting point: the defaults when asked and valid, else random unseen points
 * until one measures. nvalid when the search ended first. */
static size_t measured_start(search *s, bool use_default)
{
    size_t vi = s->nvalid;
    if (use_default) {
        int idx[CLCNN__TUNE_MAX_PARAMS] = {0};
        for (size_t d = 0; d < s->space->nparams; d++)
            for (size_t j = 0; j < s->space->params[d].count; j++)
                if (s->space->params[d].values[j] == s->space->defaults[d])
                    idx[d] = (int)j;
        int32_t v = s->slot[encode(s, idx)];
        vi = v >= 0 ? (size_t)v : s->nvalid;
    }
    for (;;) {
        if (vi < s->nvalid) {
            if (evaluate(s, vi) == EVAL_END)
                return s->nvalid;
            if (s->state[vi] == MEASURED)
                return vi;
        }
        vi = random_unseen(s);
        if (vi == s->nvalid)
            return s->nvalid;
    }
}

/* Simulated annealing on relative cost: a move that is x times slower is taken with
 * probability exp(-(x - 1) / T), T falling geometrically from 0.3 to 0.003 over the planned
 * evaluations. A walk that finds nothing new for a while restarts at a random unseen point. */
static void run_annealing(search *s)
{
    const double t0 = 0.3, t1 = 0.003;
    size_t plan =
        s->opt->max_evals > 0 && s->opt->max_evals < s->nvalid ? s->opt->max_evals : s->nvalid;
    size_t cur = measured_start(s, s->opt->start_default);
    int idle = 0;
    while (cur < s->nvalid && s->unseen > 0) {
        size_t next = neighbour(s, cur);
        eval_outcome o = next < s->nvalid ? evaluate(s, next) : EVAL_CACHED;
        if (o == EVAL_END)
            return;
        idle = o == EVAL_NEW ? 0 : idle + 1;
        if (idle > 64) {
            cur = measured_start(s, false);
            idle = 0;
            continue;
        }
        if (next >= s->nvalid || s->state[next] != MEASURED)
            continue;
        double frac = plan > 1 ? (double)s->res->evals / (double)(plan - 1) : 1.0;
        double temp = t0 * pow(t1 / t0, frac > 1 ? 1 : frac);
        double ratio = s->cost[next] / s->cost[cur];
        if (ratio <= 1 || rng_uniform(s) < exp(-(ratio - 1) / temp))
            cur = next;
    }
}

/* The valid point nearest (squared index distance, then lowest code) to position pos. */
static size_t nearest_valid(const search *s, const double *pos)
{
    size_t best = 0;
    double best_d = INFINITY;
    int idx[CLCNN__TUNE_MAX_PARAMS] = {0};
    for (size_t vi = 0; vi < s->nvalid; vi++) {
        decode(s, s->valid[vi], idx);
        double dist = 0;
        for (size_t d = 0; d < s->space->nparams; d++)
            dist += (pos[d] - idx[d]) * (pos[d] - idx[d]);
        if (dist < best_d) {
            best_d = dist;
            best = vi;
        }
    }
    return best;
}

#define PSO_PARTICLES 8

typedef struct particle {
    double x[CLCNN__TUNE_MAX_PARAMS], v[CLCNN__TUNE_MAX_PARAMS];
    size_t at, best; /* valid indices: the current point, the best measured (nvalid: none) */
} particle;

static void particle_place(search *s, particle *p, size_t vi)
{
    int idx[CLCNN__TUNE_MAX_PARAMS] = {0};
    decode(s, s->valid[vi], idx);
    for (size_t d = 0; d < s->space->nparams; d++) {
        p->x[d] = idx[d];
        double span = (double)s->space->params[d].count / 4;
        p->v[d] = (2 * rng_uniform(s) - 1) * span;
    }
    p->at = vi;
}

static bool better(const search *s, size_t a, size_t b)
{
    return s->state[a] == MEASURED && (b >= s->nvalid || s->cost[a] < s->cost[b]);
}

/* Particle swarm over the parameters' index space (inertia 0.7, both pulls 1.5); a position is
 * rounded to the nearest valid point. A swarm that finds nothing new for three rounds sends
 * its worst particle to a random unseen point. */
static void run_pso(search *s)
{
    particle swarm[PSO_PARTICLES];
    memset(swarm, 0, sizeof swarm);
    /* The caller has checked that there is a valid point. */
    size_t n = PSO_PARTICLES;
    if (s->nvalid < n)
        n = s->nvalid;
    size_t gbest = s->nvalid;
    for (size_t i = 0; i < n; i++) {
        size_t vi = random_unseen(s);
        if (vi == s->nvalid)
            vi = rng_below(s, s->nvalid);
        particle_place(s, &swarm[i], vi);
        swarm[i].best = s->nvalid;
        if (evaluate(s, vi) == EVAL_END)
            return;
        if (better(s, vi, swarm[i].best))
            swarm[i].best = vi;
        if (better(s, vi, gbest))
            gbest = vi;
    }
    int idle = 0;
    while (s->unseen > 0) {
        bool fresh = false;
        for (size_t i = 0; i < n; i++) {
            particle *p = &swarm[i];
            int pb[CLCNN__TUNE_MAX_PARAMS] = {0}, gb[CLCNN__TUNE_MAX_PARAMS] = {0};
            decode(s, s->valid[p->best < s->nvalid ? p->best : p->at], pb);
            decode(s, s->valid[gbest < s->nvalid ? gbest : p->at], gb);
            for (size_t d = 0; d < s->space->nparams; d++) {
                double hi = (double)s->space->params[d].count - 1;
                double v = 0.7 * p->v[d] + 1.5 * rng_uniform(s) * (pb[d] - p->x[d]) +
                           1.5 * rng_uniform(s) * (gb[d] - p->x[d]);
                double vmax = hi / 2 > 1 ? hi / 2 : 1;
                p->v[d] = v > vmax ? vmax : v < -vmax ? -vmax : v;
                double x = p->x[d] + p->v[d];
                p->x[d] = x < 0 ? 0 : x > hi ? hi : x;
            }
            double rounded[CLCNN__TUNE_MAX_PARAMS] = {0};
            for (size_t d = 0; d < s->space->nparams; d++)
                rounded[d] = floor(p->x[d] + 0.5);
            p->at = nearest_valid(s, rounded);
            eval_outcome o = evaluate(s, p->at);
            if (o == EVAL_END)
                return;
            fresh = fresh || o == EVAL_NEW;
            if (better(s, p->at, p->best))
                p->best = p->at;
            if (better(s, p->at, gbest))
                gbest = p->at;
        }
        idle = fresh ? 0 : idle + 1;
        if (idle >= 3) {
            size_t worst = 0;
            for (size_t i = 1; i < n; i++)
                if (swarm[i].best >= s->nvalid ||
                    (swarm[worst].best < s->nvalid &&
                     s->cost[swarm[i].best] > s->cost[swarm[worst].best]))
                    worst = i;
            size_t vi = random_unseen(s);
            if (vi == s->nvalid)
                return;
            particle_place(s, &swarm[worst], vi);
            swarm[worst].best = s->nvalid;
            if (evaluate(s, vi) == EVAL_END)
                return;
            if (better(s, vi, swarm[worst].best))
                swarm[worst].best = vi;
            if (better(s, vi, gbest))
                gbest = vi;
            idle = 0;
        }
    }
}

/* ---- entry point -------------------------------------------------------------------------- */

static clcnn_status enumerate(search *s)
{
    const clcnn__tune_space *sp = s->space;
    s->total = 1;
    for (size_t d = 0; d < sp->nparams; d++)
        s->total *= sp->params[d].count;
    s->valid = malloc(s->total * sizeof *s->valid);
    s->slot = malloc(s->total * sizeof *s->slot);
    CLCNN_FAIL_IF(s->valid == NULL || s->slot == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                  "tune: cannot enumerate %zu points", s->total);
    int idx[CLCNN__TUNE_MAX_PARAMS] = {0}, values[CLCNN__TUNE_MAX_PARAMS] = {0};
    for (size_t code = 0; code < s->total; code++) {
        decode(s, code, idx);
        values_of(s, idx, values);
        s->slot[code] = -1;
        if (sp->valid == NULL || sp->valid(values, sp->user)) {
            s->slot[code] = (int32_t)s->nvalid;
            s->valid[s->nvalid++] = code;
        }
    }
    s->state = calloc(s->nvalid + 1, 1);
    s->cost = calloc(s->nvalid + 1, sizeof *s->cost);
    CLCNN_FAIL_IF(s->state == NULL || s->cost == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                  "tune: cannot enumerate %zu points", s->total);
    s->unseen = s->nvalid;
    return CLCNN_OK;
}

clcnn_status clcnn__tune_search(const clcnn__tune_space *space, const clcnn__tune_options *options,
                                clcnn__tune_cost_fn cost, void *user, clcnn__tune_result *result)
{
    CLCNN_FAIL_IF(options == NULL || cost == NULL || result == NULL, CLCNN_STATUS_INVALID_ARG,
                  "tune: NULL argument");
    memset(result, 0, sizeof *result);
    result->best_cost = INFINITY;
    CLCNN_TRY(clcnn__tune_space_check(space));
    CLCNN_FAIL_IF(clcnn__tune_strategy_name(options->strategy) == NULL, CLCNN_STATUS_INVALID_ARG,
                  "tune: unknown strategy %d", (int)options->strategy);
    search s = {.space = space, .opt = options, .cost_fn = cost, .user = user, .res = result};
    rng_seed(&s, options->seed);
    s.start_s = now_s();
    clcnn_status st = enumerate(&s);
    result->valid_points = s.nvalid;
    if (st == CLCNN_OK && s.nvalid > 0) {
        switch (options->strategy) {
        case CLCNN__TUNE_EXHAUSTIVE:
            run_exhaustive(&s);
            break;
        case CLCNN__TUNE_RANDOM:
            st = run_random(&s);
            break;
        case CLCNN__TUNE_ANNEALING:
            run_annealing(&s);
            break;
        default:
            run_pso(&s);
            break;
        }
    }
    result->exhausted = s.unseen == 0;
    free(s.valid);
    free(s.slot);
    free(s.state);
    free(s.cost);
    return st;
}
