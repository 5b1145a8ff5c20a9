/* The scheduler: runs a net over a stream of batches with several batches in flight. Loader
 * threads fill pinned staging buffers ahead of the device; uploads and downloads go on the
 * device's transfer queue and compute on its compute queue, joined by OpenCL events, so batch
 * i+1 travels to the device while batch i computes and batch i-1's results travel back. A trace
 * of what ran where can be written in the Chrome trace-event format. */
#ifndef CLCNN_SCHED_H
#define CLCNN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn/net.h"
#include "clcnn/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Events collected from one or more runs (clcnn_sched_run()). Opaque; not thread-safe. */
typedef struct clcnn_trace clcnn_trace;

/** Creates an empty trace. [out] trace: owned by the caller. Returns OK or OUT_OF_MEMORY. */
CLCNN_API clcnn_status clcnn_trace_create(clcnn_trace **trace);

/** Releases the trace. NULL is a no-op. */
CLCNN_API void clcnn_trace_release(clcnn_trace *trace);

/** Events recorded so far. */
CLCNN_API size_t clcnn_trace_event_count(const clcnn_trace *trace);

/**
 * Writes the trace to [in] path as Chrome trace-event JSON (loads in chrome://tracing and
 * Perfetto): one "complete" event per stage, with one lane (thread) per loader thread, one for
 * the transfer queue and one for the compute queue, each event named by batch and stage
 * ("b12 upload", "b12 conv1 fwd"). Device times come from OpenCL profiling timestamps aligned
 * to the host clock; times are microseconds from the trace's creation. Written to a temporary
 * name, synced and renamed. Returns OK, INVALID_ARG, IO, OUT_OF_MEMORY.
 */
CLCNN_API clcnn_status clcnn_trace_write(const clcnn_trace *trace, const char *path);

/**
 * Fills batch [in] batch on a loader thread: up to the configured batch size of images
 * (count x C x H x W floats, NCHW) into [out] images and, when training, their class indices
 * into [out] labels; [out] count gets the number of images (1 to the batch size). Called
 * concurrently for different batches when there are several loader threads, so it must be
 * thread-safe. A status other than OK stops the run, which returns it (with the message the
 * callback left through the library, or a generic one).
 */
typedef clcnn_status (*clcnn_sched_fill_fn)(void *user, uint64_t batch, float *images,
                                            int32_t *labels, size_t *count);

/** One batch's results as clcnn_sched_run() hands them back. */
typedef struct clcnn_sched_result {
    uint64_t batch;
    size_t count;          /**< images in the batch */
    size_t outputs;        /**< values per image */
    const float *values;   /**< count x outputs: probabilities (inference: the net's output)
                                or the logits below the softmax (training) */
    const int32_t *labels; /**< count labels as filled (training; also filled in inference) */
    float loss;            /**< training: the batch's mean loss; inference: 0 */
} clcnn_sched_result;

/**
 * Receives a batch's results on the thread that called clcnn_sched_run(), in batch order. The
 * pointers are valid during the call only. A status other than OK stops the run.
 */
typedef clcnn_status (*clcnn_sched_result_fn)(void *user, const clcnn_sched_result *result);

/** What clcnn_sched_run() runs. */
typedef struct clcnn_sched_config {
    bool training;    /**< a training step per batch (else inference) */
    size_t batch;     /**< images per batch, at most (> 0) */
    uint64_t batches; /**< batches 0 .. batches-1 (> 0) */
    size_t inflight;  /**< batches on the device at once: 1 is serial (default 2) */
    size_t loaders;   /**< loader threads (default 1) */
    const clcnn_optim_config *optimizer; /**< training only */
    clcnn_sched_fill_fn fill;            /**< required */
    void *fill_user;
    clcnn_sched_result_fn result; /**< may be NULL */
    void *result_user;
    clcnn_trace *trace; /**< events are appended when not NULL */
    const char *name;   /**< prefix of the trace's event names ("epoch 2"); may be NULL */
} clcnn_sched_config;

/** inflight 2, loaders 1, everything else zero or NULL. */
CLCNN_API clcnn_sched_config clcnn_sched_config_default(void);

/** What a run measured. Device times from OpenCL profiling, host times from the host clock. */
typedef struct clcnn_sched_stats {
    uint64_t batches, images;
    double seconds;          /**< wall time of the run */
    double compute_seconds;  /**< compute queue busy with the batches */
    double transfer_seconds; /**< uploads and downloads, summed */
    double overlap_seconds;  /**< the part of transfer_seconds during which compute ran */
    /** compute queue idle between one batch's compute and the next's: what more batches in
     *  flight can hide (a device waiting for its data or for the host) */
    double compute_idle_seconds;
    double load_seconds; /**< loader threads busy, summed */
} clcnn_sched_stats;

/**
 * Runs [in] net over config->batches batches. For each batch: a loader thread fills a pinned
 * staging buffer (a staging buffer is refilled only after its upload has completed), the
 * transfer queue uploads it, the compute queue runs inference or a training step, and the
 * transfer queue brings back the outputs (and the loss), which go to config->result in batch
 * order. With inflight k the host waits only when it must reuse one of the k device slots; with
 * inflight 1 it waits for each batch's results before uploading the next (serial).
 * Results do not depend on k or on the number of loaders: the compute queue runs the batches in
 * order, so inference outputs and trained weights are the same bits for any setting.
 * On the first failure anywhere (loader, allocation, transfer, kernel, callback) the run stops,
 * waits for what was enqueued, releases every buffer, event and thread, and returns that
 * failure with its message. [out] stats (may be NULL) is written on success.
 * Returns OK, INVALID_ARG (NULL net or fill, batch or batches 0, training without optimizer),
 * OUT_OF_MEMORY, CL_ERROR, or what a callback or op returned. Not thread-safe for one net.
 */
CLCNN_API clcnn_status clcnn_sched_run(clcnn_net *net, const clcnn_sched_config *config,
                                       clcnn_sched_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
