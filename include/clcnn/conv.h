/* 2-D convolution on NCHW float32 tensors, forward and backward, with its algorithms as named
 * solvers. */
#ifndef CLCNN_CONV_H
#define CLCNN_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Cross-correlation (what DNN libraries call convolution) or true convolution (kernel flipped). */
typedef enum clcnn_conv_mode {
    CLCNN_CONV_CROSS_CORRELATION = 0,
    CLCNN_CONV_CONVOLUTION = 1,
} clcnn_conv_mode;

/** Parameters of a 2-D convolution. Start from clcnn_conv_params_default(). */
typedef struct clcnn_conv_params {
    size_t pad_h, pad_w;           /**< zero padding on each side (top/bottom, left/right) */
    size_t stride_h, stride_w;     /**< >= 1 */
    size_t dilation_h, dilation_w; /**< >= 1 */
    size_t groups;                 /**< >= 1, divides C and K; groups == C is depthwise */
    clcnn_conv_mode mode;
    bool relu; /**< apply max(0, .) after the bias */
} clcnn_conv_params;

/* X(NAME, token, stable id). Ids are never reused; AUTO is not a solver. */
#define CLCNN_CONV_ALGO_LIST(X)                                                                    \
    X(AUTO, "auto", -1)                                                                            \
    X(DIRECT, "direct", 0)                                                                         \
    X(GEMM, "gemm", 1)                                                                             \
    X(WINOGRAD2, "winograd2", 2)                                                                   \
    X(WINOGRAD4, "winograd4", 3)                                                                   \
    X(WINOGRAD4_SPLIT, "winograd4_split", 4)                                                       \
    X(IMPLICIT_GEMM, "implicit_gemm", 5)                                                           \
    X(DIRECT_ROWS, "direct_rows", 6)

/** A convolution algorithm: a solver, or AUTO to let the library choose. */
typedef enum clcnn_conv_algo {
#define CLCNN_CONV_ALGO_ENUM_(name, token, id) CLCNN_CONV_ALGO_##name = id,
    CLCNN_CONV_ALGO_LIST(CLCNN_CONV_ALGO_ENUM_)
#undef CLCNN_CONV_ALGO_ENUM_
} clcnn_conv_algo;

/** Stride 1, dilation 1, no padding, one group, cross-correlation, no ReLU. */
CLCNN_API clcnn_conv_params clcnn_conv_params_default(void);

/** The algorithm's token ("direct"), or NULL for a value outside the list. Static string. */
CLCNN_API const char *clcnn_conv_algo_name(clcnn_conv_algo algo);

/**
 * Parses a token ("auto", "direct", ...) into [out] algo (written only on success).
 * Returns OK or INVALID_ARG naming the token and the known ones.
 */
CLCNN_API clcnn_status clcnn_conv_algo_parse(const char *token, clcnn_conv_algo *algo);

/**
 * Checks a problem and computes the output shape: input N x C x H x W, weight
 * K x (C/groups) x R x S, output N x K x Ho x Wo with
 * Ho = (H + 2*pad_h - dilation_h*(R-1) - 1) / stride_h + 1 (floor), likewise Wo.
 * [out] output: written only on success.
 * Returns OK, INVALID_ARG (NULL, zero stride/dilation/groups), BAD_SHAPE (channels that do
 * not match, groups that do not divide C and K, an empty output); the message names the numbers.
 */
CLCNN_API clcnn_status clcnn_conv2d_output_shape(clcnn_shape input, clcnn_shape weight,
                                                 const clcnn_conv_params *params,
                                                 clcnn_shape *output);

/**
 * Whether [in] algo can run this problem on this device; when it cannot, [out] reason (may be
 * NULL) points at a static string saying why. AUTO is applicable to every valid problem; an
 * invalid problem is applicable to nothing. A question, not a failure: it clears this thread's
 * last error.
 */
CLCNN_API bool clcnn_conv2d_applicable(const clcnn_device *device, clcnn_shape input,
                                       clcnn_shape weight, const clcnn_conv_params *params,
                                       clcnn_conv_algo algo, const char **reason);

/**
 * Bytes of device workspace [in] algo needs for this problem ([out] bytes; 0 for none).
 * Returns OK, INVALID_ARG, BAD_SHAPE, UNSUPPORTED (not applicable).
 */
CLCNN_API clcnn_status clcnn_conv2d_workspace_size(const clcnn_device *device, clcnn_shape input,
                                                   clcnn_shape weight,
                                                   const clcnn_conv_params *params,
                                                   clcnn_conv_algo algo, size_t *bytes);

/**
 * y = conv(x, w) + bias, then ReLU if params->relu, with [in] algo (AUTO chooses).
 * [in] x, [in] w, [in] bias (NULL for none; K elements in any shape), [out] y of the shape
 * clcnn_conv2d_output_shape() gives; all on [in] device. [in] workspace: a buffer of at least
 * clcnn_conv2d_workspace_size() bytes, or NULL to let the call allocate one for itself.
 * Asynchronous: it enqueues on the compute queue and returns (see clcnn_device_finish).
 * On any error y is not written. Returns OK, INVALID_ARG, BAD_SHAPE, UNSUPPORTED,
 * BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_conv2d_forward(clcnn_device *device, const clcnn_tensor *x,
                                            const clcnn_tensor *w, const clcnn_tensor *bias,
                                            const clcnn_conv_params *params, clcnn_conv_algo algo,
                                            cl_mem workspace, size_t workspace_bytes,
                                            clcnn_tensor *y);

/** One solver's result from clcnn_conv2d_find(). */
typedef struct clcnn_conv_perf {
    clcnn_conv_algo algo;
    clcnn_status status;    /**< OK, or why it could not run (UNSUPPORTED, OUT_OF_MEMORY, ...) */
    bool verified;          /**< its output matched the direct solver within its tolerance */
    double time_ms;         /**< median of the timed runs */
    size_t workspace_bytes; /**< what it needed */
    double nmse;            /**< against the direct solver's output */
} clcnn_conv_perf;

/**
 * Find mode, as cuDNN's and MIOpen's: runs every applicable solver on this problem (a warm-up
 * run, then [in] repeat timed runs, 1 to 64), checks each output against the direct solver's,
 * and writes the results to [out] perf (up to [in] capacity rows; [out] count gets how many),
 * fastest verified first, then unverified, then those that could not run. The fastest verified
 * solver is recorded in the device's tuning database (a JSON file under the binary cache
 * directory) so that CLCNN_CONV_ALGO_AUTO picks it for this problem from then on, in this and
 * later processes. x, w, bias and y as for clcnn_conv2d_forward(); y is used as scratch and
 * holds the winner's output on return. The workspace is allocated per solver.
 * Returns OK, INVALID_ARG, BAD_SHAPE, IO (the database could not be written), or the direct
 * solver's error. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_conv2d_find(clcnn_device *device, const clcnn_tensor *x,
                                         const clcnn_tensor *w, const clcnn_tensor *bias,
                                         const clcnn_conv_params *params, clcnn_tensor *y,
                                         int repeat, clcnn_conv_perf *perf, size_t capacity,
                                         size_t *count);

/**
 * The solver AUTO would run for this problem on this device: the tuning database's choice if
 * it holds one that is applicable, else the heuristic. [out] algo written only on success.
 * Returns OK, INVALID_ARG, BAD_SHAPE, UNSUPPORTED.
 */
CLCNN_API clcnn_status clcnn_conv2d_auto_algo(clcnn_device *device, clcnn_shape input,
                                              clcnn_shape weight, const clcnn_conv_params *params,
                                              clcnn_conv_algo *algo);

/**
 * Largest NMSE (sum of squared error over sum of squared reference) the algorithm's output may
 * have against a float64 reference; shared by the tests and autotuning. -1 for AUTO or unknown.
 */
CLCNN_API double clcnn_conv_algo_tolerance(clcnn_conv_algo algo);

/* ---- backward ---------------------------------------------------------------------------- */

/** Which computation of a convolution layer a query or solver is about. */
typedef enum clcnn_conv_pass {
    CLCNN_CONV_PASS_FWD = 0,         /**< y from x and w */
    CLCNN_CONV_PASS_BWD_DATA = 1,    /**< dx from dy and w */
    CLCNN_CONV_PASS_BWD_WEIGHTS = 2, /**< dw from x and dy */
} clcnn_conv_pass;

/** The pass's token ("fwd", "bwd-data", "bwd-weights"), or NULL outside the list. Static. */
CLCNN_API const char *clcnn_conv_pass_name(clcnn_conv_pass pass);

/**
 * clcnn_conv2d_applicable() for any [in] pass; the problem is always described by the forward's
 * input and weight shapes and parameters (as cuDNN's and MIOpen's descriptors are). FWD is
 * clcnn_conv2d_applicable(). Clears this thread's last error.
 */
CLCNN_API bool clcnn_conv2d_pass_applicable(const clcnn_device *device, clcnn_conv_pass pass,
                                            clcnn_shape input, clcnn_shape weight,
                                            const clcnn_conv_params *params, clcnn_conv_algo algo,
                                            const char **reason);

/**
 * clcnn_conv2d_workspace_size() for any [in] pass ([out] bytes, written only on success).
 * Returns OK, INVALID_ARG, BAD_SHAPE, UNSUPPORTED (not applicable).
 */
CLCNN_API clcnn_status clcnn_conv2d_pass_workspace_size(const clcnn_device *device,
                                                        clcnn_conv_pass pass, clcnn_shape input,
                                                        clcnn_shape weight,
                                                        const clcnn_conv_params *params,
                                                        clcnn_conv_algo algo, size_t *bytes);

/**
 * The algorithm's NMSE bound (see clcnn_conv_algo_tolerance()) for [in] pass; -1 for AUTO or an
 * algorithm that has no solver for that pass.
 */
CLCNN_API double clcnn_conv_pass_tolerance(clcnn_conv_pass pass, clcnn_conv_algo algo);

/**
 * The solver AUTO would run for [in] pass (clcnn_conv2d_auto_algo() for FWD): the tuning
 * database's choice (kernels "conv2d_bwd_data" / "conv2d_bwd_weights") when applicable, else
 * the heuristic. [out] algo written only on success. Returns OK, INVALID_ARG, BAD_SHAPE,
 * UNSUPPORTED.
 */
CLCNN_API clcnn_status clcnn_conv2d_pass_auto_algo(clcnn_device *device, clcnn_conv_pass pass,
                                                   clcnn_shape input, clcnn_shape weight,
                                                   const clcnn_conv_params *params,
                                                   clcnn_conv_algo *algo);

/**
 * Backward data: [out] dx = dL/dx, of the forward input's shape, from [in] dy = dL/dy (the
 * shape clcnn_conv2d_output_shape() gives) and [in] w, for every parameter the forward takes
 * (stride, padding, dilation, groups, mode). params->relu is ignored: the fused ReLU's backward
 * is clcnn_act_backward() with the forward's output y, which the caller applies to dy first.
 * [in] algo (AUTO chooses), [in] workspace of clcnn_conv2d_pass_workspace_size(BWD_DATA) bytes
 * or NULL to let the call allocate one. dx is overwritten (not accumulated into). Every solver
 * sums in a fixed order without atomics: the same inputs give the same bits on every run.
 * All tensors are borrowed and on [in] device. Asynchronous (see clcnn_device_finish); on any error
 * dx is not written. Returns OK, INVALID_ARG, BAD_SHAPE (the message names the shapes),
 * UNSUPPORTED, BUILD_FAILED, OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_conv2d_backward_data(clcnn_device *device, const clcnn_tensor *dy,
                                                  const clcnn_tensor *w,
                                                  const clcnn_conv_params *params,
                                                  clcnn_conv_algo algo, cl_mem workspace,
                                                  size_t workspace_bytes, clcnn_tensor *dx);

/**
 * Backward weights: [out] dw = dL/dw, of the weight's shape K x C/groups x R x S, summed over
 * the batch, from [in] x (the forward's input) and [in] dy = dL/dy. dw is overwritten, not
 * accumulated into. params->relu is ignored (see clcnn_conv2d_backward_data()). Other
 * arguments, determinism, statuses and thread-safety as for clcnn_conv2d_backward_data().
 */
CLCNN_API clcnn_status clcnn_conv2d_backward_weights(clcnn_device *device, const clcnn_tensor *x,
                                                     const clcnn_tensor *dy,
                                                     const clcnn_conv_params *params,
                                                     clcnn_conv_algo algo, cl_mem workspace,
                                                     size_t workspace_bytes, clcnn_tensor *dw);

/**
 * Find mode for a backward pass, as clcnn_conv2d_find() is for the forward: runs every
 * applicable solver of [in] pass (BWD_DATA or BWD_WEIGHTS) on this problem (a warm-up run, then
 * [in] repeat timed runs, 1 to 64), checks each output against the pass's direct solver, and
 * writes the results to [out] perf (up to [in] capacity rows; [out] count gets how many),
 * fastest verified first. The fastest verified solver is recorded in the device's tuning
 * database (kernel "conv2d_bwd_data" or "conv2d_bwd_weights"), where AUTO finds it.
 * BWD_DATA reads [in] dy and [in] w and writes [out] out (x's shape; x itself may be NULL);
 * BWD_WEIGHTS reads [in] x and [in] dy and writes [out] out (w's shape; w may be NULL). out is
 * used as scratch and holds the winner's result on return. The workspace is allocated per
 * solver. Returns OK, INVALID_ARG, BAD_SHAPE, IO (the database could not be written), or the
 * direct solver's error. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_conv2d_backward_find(
    clcnn_device *device, clcnn_conv_pass pass, const clcnn_tensor *x, const clcnn_tensor *w,
    const clcnn_tensor *dy, const clcnn_conv_params *params, clcnn_tensor *out, int repeat,
    clcnn_conv_perf *perf, size_t capacity, size_t *count);

/**
 * Backward bias: [out] db[k] = the sum of [in] dy (N x K x Ho x Wo) over N, Ho and Wo, in a
 * fixed order; db has K elements in any shape and is overwritten. Both borrowed, on [in]
 * device. On any error db is not written. Returns OK, INVALID_ARG, BAD_SHAPE, BUILD_FAILED,
 * OUT_OF_MEMORY, CL_ERROR. Not thread-safe for one device.
 */
CLCNN_API clcnn_status clcnn_conv2d_backward_bias(clcnn_device *device, const clcnn_tensor *dy,
                                                  clcnn_tensor *db);

#ifdef __cplusplus
}
#endif

#endif
