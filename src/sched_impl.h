/* Test seams of the scheduler: observers called at the points where ordering matters, so a
 * test can assert from event states that no staging buffer is refilled before its upload
 * completed and no result is read before its kernels completed, and can slow a queue down. */
#ifndef CLCNN_SCHED_IMPL_H
#define CLCNN_SCHED_IMPL_H

#include <stdint.h>

#include "clcnn/sched.h"
#include "device_impl.h"

typedef struct clcnn__sched_hooks {
    void *user;
    /* On a loader thread, just before it writes a staging buffer for batch: the upload that
     * last read that buffer (NULL on its first use). */
    void (*before_refill)(void *user, uint64_t batch, cl_event last_upload);
    /* On the running thread, before batch's upload is enqueued (a test may enqueue a slow
     * kernel on a queue here). */
    void (*before_upload)(void *user, clcnn_device *device, uint64_t batch);
    /* Before batch's compute: a status other than OK fails the batch as an op would. */
    clcnn_status (*before_compute)(void *user, uint64_t batch);
    /* Before batch's results are handed out: its compute and its download events. */
    void (*before_result)(void *user, uint64_t batch, cl_event computed, cl_event downloaded);
} clcnn__sched_hooks;

/* Installs hooks for the runs that follow (NULL removes them). Tests only; not thread-safe. */
void clcnn__sched_set_hooks(const clcnn__sched_hooks *hooks);

#endif
