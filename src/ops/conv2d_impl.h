/* Convolution solvers: the problem description and the row every algorithm provides. */
#ifndef CLCNN_CONV2D_IMPL_H
#define CLCNN_CONV2D_IMPL_H

#include "clcnn/conv.h"
#include "device_impl.h"
#include "ops_impl.h"
#include "tune_search_impl.h"

/* A validated problem: shapes, parameters and the derived per-group sizes. */
typedef struct clcnn__conv_problem {
    clcnn_shape x, w, y;
    clcnn_conv_params p;
    size_t cg; /* input channels per group */
    size_t kg; /* output channels per group */
} clcnn__conv_problem;

/* The buffers of one call. bias may be NULL. w_tensor is the weight's handle (borrowed), for
 * caching data derived from it; NULL when the caller has none. */
typedef struct clcnn__conv_args {
    cl_mem x, w, bias, y;
    const clcnn_tensor *w_tensor;
} clcnn__conv_args;

/* One algorithm. name and id are stable forever (the tuning database's keys); a removed
 * solver's id is never reused. */
typedef struct clcnn__conv_solver {
    const char *name;
    clcnn_conv_algo algo;
    /* false with a static reason when the solver cannot run this problem on this device */
    bool (*applicable)(const clcnn__conv_problem *pb, const clcnn_device *dev, const char **reason);
    /* device bytes of workspace; NULL means none */
    size_t (*workspace_size)(const clcnn__conv_problem *pb, const clcnn_device *dev);
    clcnn_status (*run)(clcnn_device *dev, const clcnn__conv_problem *pb,
                        const clcnn__conv_args *args, cl_mem workspace);
    /* max NMSE against the float64 reference */
    double tolerance;
} clcnn__conv_solver;

extern const clcnn__conv_solver clcnn__conv_solver_direct;
extern const clcnn__conv_solver clcnn__conv_solver_gemm;
extern const clcnn__conv_solver clcnn__conv_solver_winograd2;
extern const clcnn__conv_solver clcnn__conv_solver_winograd4;
extern const clcnn__conv_solver clcnn__conv_solver_winograd4_split;
extern const clcnn__conv_solver clcnn__conv_solver_rows;

/* conv2d.c's validation of a problem (messages prefixed "conv2d:"), shared by the backward
 * passes; [out] pb written only on success. */
clcnn_status clcnn__conv_make_problem(clcnn_shape x, clcnn_shape w, const clcnn_conv_params *p,
                                      clcnn__conv_problem *pb);

/* The tuning database's key of a problem ("n1c64h56w56k64r3s3u1p1d1g1"). */
void clcnn__conv_problem_key(const clcnn__conv_problem *pb, char *buf, size_t size);

/* The fields of a problem key an entry of another problem must share to stand in for it (the
 * nearest-problem fallback): filter size, stride, dilation and groups. */
#define CLCNN__CONV_NEAREST_SAME "rsudg"

/* ---- the direct solver's parameter space (src/ops/conv2d_direct.c) ---- */

/* The tuning database's kernel name for the direct solver's parameters; the entry's problem is
 * clcnn__conv_problem_key() and its params are the space's names (CONV_VW, CONV_OYB, CONV_KB,
 * CONV_PADDED, LWS). */
#define CLCNN__CONV_DIRECT_DB_KERNEL "conv2d_direct"

/* What a tunable solver's space constraint reads: a copy of the problem, the device and the
 * tunable row (borrowed). */
typedef struct clcnn__conv_tuning {
    clcnn__conv_problem problem;
    const clcnn_device *device;
    const struct clcnn__conv_tunable *tunable;
} clcnn__conv_tuning;
typedef clcnn__conv_tuning clcnn__conv_direct_tuning;

/* A solver cltune can tune: its parameter space for a problem (the defaults are what a launch
 * uses without tuning; the constraint reads [out] tuning, which must outlive the space), the
 * workspace a point needs, and a run with an explicit point (checked by the caller against the
 * constraint); a run that is not host_clock puts its kernels' time in [out] ms (may be NULL). The
 * database's entries are (db_kernel, clcnn__conv_problem_key(), params named as the space's
 * parameters). */
typedef struct clcnn__conv_tunable {
    const clcnn__conv_solver *solver;
    /* the pass the solver computes: its run reads and writes clcnn__conv_args as that pass's
     * solvers do (backward weights: x, dy in y, dw in w; backward data: dy in y, w, dx in x) */
    clcnn_conv_pass pass;
    const char *db_kernel;
    void (*space)(const clcnn__conv_problem *pb, const clcnn_device *dev,
                  const struct clcnn__conv_tunable *tunable, clcnn__conv_tuning *tuning,
                  clcnn__tune_space *space);
    size_t (*workspace_with)(const clcnn__conv_problem *pb, const clcnn_device *dev,
                             const struct clcnn__conv_tunable *tunable, const int *values);
    clcnn_status (*run_with)(clcnn_device *dev, const clcnn__conv_problem *pb,
                             const clcnn__conv_args *args, cl_mem workspace,
                             const struct clcnn__conv_tunable *tunable, const int *values,
                             double *ms);
    /* run_with leaves *ms alone: the caller times it on the host clock, around the call and a
     * clcnn_device_finish (a first run's time includes the build) */
    bool host_clock;
} clcnn__conv_tunable;

extern const clcnn__conv_tunable clcnn__conv_tunable_direct;
extern const clcnn__conv_tunable clcnn__conv_tunable_winograd2;
extern const clcnn__conv_tunable clcnn__conv_tunable_winograd4;
extern const clcnn__conv_tunable clcnn__conv_tunable_winograd4_split;
extern const clcnn__conv_tunable clcnn__conv_tunable_gemm;
extern const clcnn__conv_tunable clcnn__conv_tunable_bwd_weights_igemm;
extern const clcnn__conv_tunable clcnn__conv_tunable_bwd_data_direct;
extern const clcnn__conv_tunable clcnn__conv_tunable_bwd_weights_direct;

/* The point of [in] tunable's space that the tuning database holds for [in] pb, else the nearest
 * stored problem's (same filter, stride, dilation and groups), the first that [in] valid accepts
 * for pb: copied into [out] values (the count parameters of [in] names). False when there is
 * none, or when the device loads prebuilt binaries (built with the defaults): the caller keeps
 * its defaults. */
bool clcnn__conv_tuned_point(const clcnn__conv_problem *pb, const clcnn_device *dev,
                             const clcnn__conv_tunable *tunable, const char *const *names,
                             size_t count, bool (*valid)(const int *values, const void *user),
                             int *values);

/* The tunable row of the solver named [in] name for [in] pass, or NULL. */
const clcnn__conv_tunable *clcnn__conv_tunable_find(const char *name, clcnn_conv_pass pass);

/* The i-th tunable solver (of any pass), NULL past the last. */
const clcnn__conv_tunable *clcnn__conv_tunable_at(size_t i);

/* Fills [out] space with the direct solver's parameters for this problem on this device; its
 * defaults are what a launch uses without tuning, and its constraint reads [out] tuning, which
 * must outlive the space. */
void clcnn__conv_direct_space(const clcnn__conv_problem *pb, const clcnn_device *dev,
                              clcnn__conv_direct_tuning *tuning, clcnn__tune_space *space);

/* The -D options of a point of the space ("" for the kernel file's defaults). */
void clcnn__conv_direct_options(const int *values, char *buf, size_t size);

/* Workspace bytes a point of the space needs. */
size_t clcnn__conv_direct_workspace_with(const clcnn__conv_problem *pb, const int *values);

/* Runs the direct solver with an explicit point of the space (which the caller has checked with
 * the space's constraint) instead of the database's or the heuristic's; [out] device_ms (may be
 * NULL) gets the kernels' time from profiling events. */
clcnn_status clcnn__conv_direct_run_with(clcnn_device *dev, const clcnn__conv_problem *pb,
                                         const clcnn__conv_args *args, cl_mem workspace,
                                         const int *values, double *device_ms);

/* Filter transforms the Winograd solvers have run in this process (tests use it to see
 * that transformed filters are cached). Thread-safe. */
uint64_t clcnn__conv_winograd_filter_transforms(void);

/* Tests only: caps the Winograd workspace at [in] bytes (0 restores the default) so that small
 * problems run in several chunks. Affects later workspace_size and run calls. */
void clcnn__conv_winograd_limit_workspace(size_t bytes);

/* Images per chunk for a solver that needs per_image floats of workspace for each image: as many
 * as fit in max(bound_bytes, one image), never above the device's largest allocation, the batch
 * or int indexing. 0, with *reason set, when a tensor or one image is past those limits. */
size_t clcnn__conv_images_per_chunk(const clcnn__conv_problem *pb, const clcnn_device *dev,
                                    size_t per_image, size_t bound_bytes, const char **reason);

/* One solver's trial in find mode: run(ctx, solver) runs it once into out (count floats). */
typedef struct clcnn__conv_trial {
    clcnn_device *device;
    const clcnn__conv_problem *pb;
    clcnn_status (*run)(void *ctx, const clcnn__conv_solver *solver);
    void *ctx;
    clcnn_tensor *out;
    size_t count;
} clcnn__conv_trial;

/* Find mode's measurement of one solver, for every pass: UNSUPPORTED when it does not apply;
 * else a run into out (poisoned first) checked against ref (NMSE within the solver's
 * tolerance: verified), then repeat timed runs (1 to 64) whose median is perf->time_ms. got is
 * count floats of scratch. */
void clcnn__conv_measure(const clcnn__conv_trial *trial, const clcnn__conv_solver *solver,
                         int repeat, const float *ref, float *got, clcnn_conv_perf *perf);

/* Sorts find mode's rows: fastest verified first, then unverified, then those that failed. */
void clcnn__conv_sort_perf(clcnn_conv_perf *rows, size_t n);

#endif
