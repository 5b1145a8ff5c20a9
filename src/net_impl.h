/* What the scheduler needs of a net beyond the public API: the input tensor to upload into,
 * forward and training passes that start from it and leave their results on the device, and
 * an observer called after each stage so a trace can name what ran. */
#ifndef CLCNN_NET_IMPL_H
#define CLCNN_NET_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn/net.h"

/* Called on the thread that runs the net after each stage has been enqueued and has finished:
 * stage is a layer name ("conv1"), "loss" or "optimizer"; phase is "fwd", "loss", "bwd" or
 * "update". */
typedef void (*clcnn__net_observer)(void *user, const char *stage, const char *phase);

/* The device the net lives on. */
clcnn_device *clcnn__net_device(const clcnn_net *net);

/* Sets (or with NULL clears) the observer. */
void clcnn__net_set_observer(clcnn_net *net, clcnn__net_observer fn, void *user);

/* Sizes the activations for a batch of n (training or not) and gives the input tensor
 * (n x C x H x W, owned by the net) that the next clcnn__net_infer() or clcnn__net_train()
 * reads. */
clcnn_status clcnn__net_prepare(clcnn_net *net, size_t n, bool training, clcnn_tensor **input);

/* Inference forward from the prepared input; [out] output is the last layer's tensor (owned by
 * the net, valid until the next pass). */
clcnn_status clcnn__net_infer(clcnn_net *net, clcnn_tensor **output);

/* One training step from the prepared input, as clcnn_net_train_step(): the mean loss goes to
 * the device tensor loss and/or loss_host (one may be NULL); [out] logits (may be NULL) is the
 * layer below the softmax (owned by the net, valid until the next pass). */
clcnn_status clcnn__net_train(clcnn_net *net, const int32_t *labels, size_t n,
                              const clcnn_optim_config *optimizer, clcnn_tensor *loss,
                              float *loss_host, clcnn_tensor **logits);

#endif
