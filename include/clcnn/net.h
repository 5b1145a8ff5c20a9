/* Sequential networks built from a model description on a device: parameters, forward,
 * backward and the optimizer step, frozen layers, and access to the parameters by name. */
#ifndef CLCNN_NET_H
#define CLCNN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn/model.h"
#include "clcnn/optim.h"
#include "clcnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most parameters a net holds (8 GiB of float32); a model declaring more is refused. */
#define CLCNN_NET_MAX_PARAMS ((size_t)1 << 31)

/** Values per image a layer's output may hold: the kernels index tensors with 32-bit
 *  integers. */
#define CLCNN_NET_MAX_ELEMENTS ((size_t)1 << 31)

/** A network on a device. Opaque; not thread-safe. */
typedef struct clcnn_net clcnn_net;

/**
 * Builds [in] model (copied; the caller keeps its own) on [in] device (borrowed: it must
 * outlive the net): every layer's parameters, initialized as PyTorch's Conv2d and Linear do
 * (weights and biases uniform in +-1/sqrt(fan_in)) from a generator keyed by [in] seed and the
 * parameter's index, so the same seed gives the same bits on every device. Training needs the
 * model to end in softmax (the loss is softmax cross-entropy on the layer before it).
 * [out] net: owned by the caller, released with clcnn_net_release(); written only on success.
 * Returns OK, INVALID_ARG, BAD_SHAPE (a layer that does not fit its input: the message names
 * the layer and its line; more than CLCNN_NET_MAX_PARAMS parameters, or a layer putting out
 * CLCNN_NET_MAX_ELEMENTS values or more per image: refused before anything is allocated, the
 * message names the limit), UNSUPPORTED (a layer kind or setting the net cannot run yet),
 * OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_net_create(clcnn_device *device, const clcnn_model_desc *model,
                                        uint64_t seed, clcnn_net **net);

/** Releases the net and its device memory. NULL is a no-op. */
CLCNN_API void clcnn_net_release(clcnn_net *net);

/** The input shape (C x H x W) per image and the number of outputs per image (classes). */
CLCNN_API void clcnn_net_shape(const clcnn_net *net, size_t *channels, size_t *height,
                               size_t *width, size_t *outputs);

/**
 * Forward pass over [in] n images (n x C x H x W floats, NCHW), writing n x outputs floats to
 * [out] outputs (may be NULL): class probabilities when the model ends in softmax, else the last
 * layer's values. Inference mode: dropout passes values through. Returns OK, INVALID_ARG,
 * OUT_OF_MEMORY, CL_ERROR and the ops' statuses.
 */
CLCNN_API clcnn_status clcnn_net_forward(clcnn_net *net, const float *images, size_t n,
                                         float *outputs);

/**
 * One training step on [in] n images and their [in] labels (n values in [0, outputs)): forward
 * in training mode (dropout active, seeded by the net's seed and the step number), softmax
 * cross-entropy, backward through every layer that has a trainable parameter at or below it, and
 * one update of every trainable parameter with [in] optimizer. [out] loss (may be NULL) gets the
 * batch's mean loss. Frozen parameters are not changed, bit for bit. The same seed, data and
 * settings give the same bits. The ops are enqueued without waits and the call waits once, for
 * the loss, at the end: an error there ("net: the step was applied, ...") comes after the
 * update, as an error part way through the update may leave some parameters stepped. Returns OK,
 * INVALID_ARG (no softmax at the end, a bad label: the message names it), OUT_OF_MEMORY, CL_ERROR
 * and the ops' statuses.
 */
CLCNN_API clcnn_status clcnn_net_train_step(clcnn_net *net, const float *images,
                                            const int32_t *labels, size_t n,
                                            const clcnn_optim_config *optimizer, float *loss);

/** Number of parameter tensors ("conv1.weight", "conv1.bias", ...). */
CLCNN_API size_t clcnn_net_param_count(const clcnn_net *net);

/**
 * The [in] index-th parameter: [out] name (owned by the net), [out] tensor (borrowed, on the
 * net's device; writing it through the library is allowed), [out] frozen. Any out-parameter may
 * be NULL. Returns OK or INVALID_ARG (index out of range).
 */
CLCNN_API clcnn_status clcnn_net_param(const clcnn_net *net, size_t index, const char **name,
                                       clcnn_tensor **tensor, bool *frozen);

/**
 * Freezes or unfreezes the parameters of the layer named [in] layer ("conv1", "fc2", or a
 * name= from the model file). Returns OK or INVALID_ARG (no such layer with parameters: the
 * message lists the layers that have some).
 */
CLCNN_API clcnn_status clcnn_net_set_frozen(clcnn_net *net, const char *layer, bool frozen);

/**
 * Writes every parameter to [in] path in the weights format (clcnn/weights.h), named as
 * clcnn_net_param() names them and shaped as PyTorch shapes them (conv weight K x C/g x R x S,
 * fc weight out x in, biases 1-D); written to a temporary name, synced and renamed.
 * Returns OK, INVALID_ARG, IO, OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_net_save_weights(const clcnn_net *net, const char *path);

/**
 * Loads parameters saved by clcnn_net_save_weights() for the same model. Every tensor is
 * checked first (a missing or extra name, another shape, a checksum: the message names the file,
 * the tensor and why), and only then are the parameters replaced, so a refused file changes
 * nothing. Returns OK, INVALID_ARG, IO, PARSE, CORRUPT, BAD_SHAPE, UNSUPPORTED, OUT_OF_MEMORY,
 * CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_net_load_weights(clcnn_net *net, const char *path);

/**
 * Writes a checkpoint: the parameters, every optimizer state tensor ("conv1.weight.state1"),
 * [in] cfg (the optimizer and its hyper-parameters), [in] epoch (epochs completed), the step
 * count and the net's seed, in the weights format with its checkpoint block; atomically.
 * Training resumed from it with clcnn_net_load_checkpoint() takes the same steps, bit for bit,
 * as training that never stopped. Returns OK, INVALID_ARG (NULL, or cfg is not the optimizer the
 * net was trained with), IO, OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_net_save_checkpoint(const clcnn_net *net, const char *path,
                                                 const clcnn_optim_config *cfg, uint64_t epoch);

/**
 * Restores a checkpoint of the same model: parameters, optimizer state, step count and seed,
 * with [out] cfg and [out] epoch (may be NULL) as saved. Checked entirely before anything is
 * replaced, as clcnn_net_load_weights() is; a plain weights file is refused (CORRUPT).
 * Returns OK, INVALID_ARG, IO, PARSE, CORRUPT, BAD_SHAPE, UNSUPPORTED, OUT_OF_MEMORY, CL_ERROR.
 */
CLCNN_API clcnn_status clcnn_net_load_checkpoint(clcnn_net *net, const char *path,
                                                 clcnn_optim_config *cfg, uint64_t *epoch);

/** Training steps taken so far (the optimizer's step count). */
CLCNN_API uint64_t clcnn_net_steps(const clcnn_net *net);

#ifdef __cplusplus
}
#endif

#endif
