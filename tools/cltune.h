/* cltune's shared pieces: the options, the per-shape tuner of convolution solvers and its
 * measurement (tools/cltune.c), used by the CLBlast and pooling searches (tools/cltune_more.c). */
#ifndef CLCNN_TOOLS_CLTUNE_H
#define CLCNN_TOOLS_CLTUNE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "clcnn/clcnn.h"
#include "conv2d_impl.h"
#include "tune_search_impl.h"

/* Largest max |out - ref| / max |ref| a candidate may show: the direct solver's variants sum
 * each output in the same order, so anything past rounding noise is a wrong kernel. */
#define MAX_REL_ERR 1e-5
#define MAX_SHAPES 64
#define TOP_ROWS 5

typedef struct opts {
    const clcnn__conv_tunable *tunable;
    const char *solver, *shape_spec, *model, *device, *pass;
    size_t batch;
    clcnn__tune_strategy strategy;
    double budget_s;
    size_t evals;
    uint64_t seed;
    unsigned repeat;
    bool resume, show;
    bool clblast; /* --solver clblast: CLBlast's SGEMM parameters, through the gemm solver */
    bool pool;    /* --solver pool: the pooling forward */
} opts;

typedef struct shape {
    clcnn_shape x, w;
    clcnn_conv_params p;
    char label[40];
} shape;

typedef struct candidate {
    int values[CLCNN__TUNE_MAX_PARAMS];
    double ms;
} candidate;

typedef struct tuner {
    const opts *o;
    clcnn_device *dev;
    clcnn__conv_problem pb;
    char key[256];
    clcnn__conv_direct_tuning tuning;
    clcnn__tune_space space;
    clcnn_tensor *x, *w, *b, *y;
    clcnn_tensor *target; /* what the pass writes: y, x (dx) or w (dw) */
    cl_mem ws;
    size_t ws_bytes;
    float *ref, *out;
    size_t count;
    double ref_max;
    double flops;
    double default_ms;
    double deadline; /* absolute now_s(); 0: none */
    candidate *results;
    size_t nresults, cap;
    size_t evals, rejected, planned;
    double started;
    size_t shape_index, shape_count;
    int corrupt[CLCNN__TUNE_MAX_PARAMS]; /* CLTUNE_TEST_CORRUPT: a planted wrong variant */
    bool corrupt_on;
} tuner;

typedef enum outcome { OUT_OK, OUT_WRONG, OUT_FAILED, OUT_STOP } outcome;

/* Set by SIGINT and SIGTERM: searches stop and keep what they found. */
extern volatile sig_atomic_t cltune_interrupted;

/* CLOCK_MONOTONIC in seconds. */
double cltune_now_s(void);

/* qsort comparators: doubles, candidates by time. */
int cltune_compare_double(const void *a, const void *b);
int cltune_compare_candidate(const void *a, const void *b);

/* Creates the tensors and the space of one shape for t->o->tunable, filled with a fixed
 * pseudo-random sequence. */
clcnn_status cltune_make_tensors(tuner *t, const shape *s);

/* Releases what cltune_make_tensors() and the search made. */
void cltune_free_tensors(tuner *t);

/* Runs a candidate once (building it), checks its output against t->ref (when set), then times
 * --repeat runs: [out] median_ms, [out] rel_err. */
outcome cltune_measure(tuner *t, const int *v, double *median_ms, double *rel_err);

/* Writes the verified entry (kernel, problem) -> solver of [in] space's parameters to the
 * device's tuning database: the fastest of the n [in] results, or the defaults when none beat
 * [in] default_ms (best, when not NULL, is a point already chosen, with best_ms). */
clcnn_status cltune_save_best(clcnn_device *dev, const clcnn__tune_space *space, const char *kernel,
                              const char *problem, const char *solver, const candidate *results,
                              size_t n, const int *best, double best_ms, double default_ms,
                              bool complete);

/* ---- tools/cltune_more.c ---- */

/* --solver clblast: one search of CLBlast's SGEMM parameters over all the shapes (end: absolute
 * cltune_now_s() bound, 0 none). */
clcnn_status cltune_clblast(clcnn_device *dev, const opts *o, const shape *shapes, size_t count,
                            double end);

typedef struct pool_shape {
    clcnn_shape x;
    clcnn_pool_params p;
    char label[40];
} pool_shape;

/* "N,C,H,W,R,S,stride,pad": max pooling. */
bool cltune_parse_pool_shape(const char *spec, pool_shape *out);

/* The distinct pooling layers of a model at [in] batch images. */
clcnn_status cltune_model_pool_shapes(const char *path, size_t batch, pool_shape *out,
                                      size_t *count);

/* --solver pool: tunes one pooling forward (deadline: absolute, 0 none). */
clcnn_status cltune_pool(clcnn_device *dev, const opts *o, const pool_shape *s, double deadline);

#endif
