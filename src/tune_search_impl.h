/* Parameter spaces of tunable kernels and the strategies that search them: exhaustive, random,
 * simulated annealing and particle swarm, seeded, deterministic and bounded by evaluations and
 * time. A point is one candidate value per parameter; a cost callback measures it. */
#ifndef CLCNN_TUNE_SEARCH_IMPL_H
#define CLCNN_TUNE_SEARCH_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn/status.h"

#define CLCNN__TUNE_MAX_PARAMS 8
#define CLCNN__TUNE_MAX_VALUES 16
/* Spaces are enumerated: at most this many points (valid or not). */
#define CLCNN__TUNE_MAX_POINTS ((size_t)1 << 20)

/* One tunable: a -D macro name and its candidate values, in increasing order. */
typedef struct clcnn__tune_param {
    const char *name; /* static or owned by the space's owner */
    int values[CLCNN__TUNE_MAX_VALUES];
    size_t count;
} clcnn__tune_param;

/* A space: parameters, the constraint every proposed point satisfies, and the defaults (one
 * point of the space, the values a launch uses without tuning). */
typedef struct clcnn__tune_space {
    size_t nparams;
    clcnn__tune_param params[CLCNN__TUNE_MAX_PARAMS];
    int defaults[CLCNN__TUNE_MAX_PARAMS];
    /* true when the point (one value per parameter) may be run; NULL accepts every point */
    bool (*valid)(const int *values, const void *user);
    const void *user;
} clcnn__tune_space;

/* What one evaluation found. */
typedef enum clcnn__tune_verdict {
    CLCNN__TUNE_MEASURED, /* *cost holds the time (lower is better) */
    CLCNN__TUNE_REJECTED, /* the candidate failed (wrong result, build error): never chosen */
    CLCNN__TUNE_STOP,     /* stop the search now (interrupted, fatal error); not counted */
} clcnn__tune_verdict;

/* Measures one valid point. */
typedef clcnn__tune_verdict (*clcnn__tune_cost_fn)(const int *values, void *user, double *cost);

#define CLCNN__TUNE_STRATEGY_LIST(X)                                                               \
    X(EXHAUSTIVE, "exhaustive")                                                                    \
    X(RANDOM, "random")                                                                            \
    X(ANNEALING, "annealing")                                                                      \
    X(PSO, "pso")

typedef enum clcnn__tune_strategy {
#define CLCNN__TUNE_STRATEGY_ENUM_(name, token) CLCNN__TUNE_##name,
    CLCNN__TUNE_STRATEGY_LIST(CLCNN__TUNE_STRATEGY_ENUM_)
#undef CLCNN__TUNE_STRATEGY_ENUM_
        CLCNN__TUNE_STRATEGY_COUNT
} clcnn__tune_strategy;

/* Bounds and seed of one search. Zero max_evals or budget_s means no bound of that kind; with
 * neither, the search stops once every valid point has been measured. */
typedef struct clcnn__tune_options {
    clcnn__tune_strategy strategy;
    uint64_t seed;
    size_t max_evals;   /* evaluations (measured + rejected) at most */
    double budget_s;    /* no evaluation starts after this many seconds */
    bool start_default; /* annealing starts from the defaults (else a random valid point) */
} clcnn__tune_options;

typedef struct clcnn__tune_result {
    bool found;                       /* a point was measured */
    int best[CLCNN__TUNE_MAX_PARAMS]; /* its values */
    double best_cost;                 /* its cost */
    size_t evals;                     /* measured + rejected */
    size_t rejected;                  /* evaluations that said REJECTED */
    size_t valid_points;              /* points of the space satisfying the constraint */
    bool stopped;                     /* the cost callback said STOP */
    bool exhausted;                   /* every valid point was evaluated */
} clcnn__tune_result;

/* The strategy's token ("annealing") or NULL. */
const char *clcnn__tune_strategy_name(clcnn__tune_strategy s);

/* Parses a token; INVALID_ARG naming the known ones. [out] s written only on success. */
clcnn_status clcnn__tune_strategy_parse(const char *token, clcnn__tune_strategy *s);

/* Index of [in] name in the space's parameters, or -1. */
int clcnn__tune_param_index(const clcnn__tune_space *space, const char *name);

/* Checks the space: 1..MAX_PARAMS parameters, 1..MAX_VALUES values each, at most MAX_POINTS
 * points, defaults among the candidates. INVALID_ARG otherwise. */
clcnn_status clcnn__tune_space_check(const clcnn__tune_space *space);

/* Points of a checked space that satisfy its constraint. */
size_t clcnn__tune_space_count_valid(const clcnn__tune_space *space);

/* Searches the space: cost is called once per distinct valid point at most (never for a point
 * the constraint refuses), until a bound is reached, every valid point is measured, or cost
 * says STOP. The same seed and costs give the same sequence of points. [out] result is always
 * written. Returns OK (also when stopped or bounded), INVALID_ARG (bad space or options),
 * OUT_OF_MEMORY. Thread-safe (no shared state). */
clcnn_status clcnn__tune_search(const clcnn__tune_space *space, const clcnn__tune_options *options,
                                clcnn__tune_cost_fn cost, void *user, clcnn__tune_result *result);

#endif
