/* Model files: a plain-text description of a sequential network, one layer a line, parsed
 * strictly into a description that the network builder uses. No device is needed to parse. */
#ifndef CLCNN_MODEL_H
#define CLCNN_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "clcnn/act.h"
#include "clcnn/conv.h"
#include "clcnn/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, description). The kinds of layer a model file describes. */
#define CLCNN_LAYER_KIND_LIST(X)                                                                   \
    X(INPUT, "input")                                                                              \
    X(CONV, "convolution")                                                                         \
    X(POOL, "pooling")                                                                             \
    X(ADAPTIVE_AVGPOOL, "adaptive average pooling")                                                \
    X(FC, "fully connected")                                                                       \
    X(ACT, "activation")                                                                           \
    X(DROPOUT, "dropout")                                                                          \
    X(SOFTMAX, "softmax")

/** Kind of a layer. */
typedef enum clcnn_layer_kind {
#define CLCNN_LAYER_KIND_ENUM_(name, desc) CLCNN_LAYER_##name,
    CLCNN_LAYER_KIND_LIST(CLCNN_LAYER_KIND_ENUM_)
#undef CLCNN_LAYER_KIND_ENUM_
        CLCNN_LAYER_KIND_COUNT
} clcnn_layer_kind;

/** Longest layer name, without the NUL. */
#define CLCNN_LAYER_NAME_MAX 31

/** One layer as written in a model file. Fields a kind does not use are zero. */
typedef struct clcnn_layer_desc {
    clcnn_layer_kind kind;
    char name[CLCNN_LAYER_NAME_MAX + 1]; /**< name= or the default: conv1, pool2, fc1, ... */
    unsigned line;                       /**< 1-based line in the model file */
    /** INPUT: C x H x W; ADAPTIVE_AVGPOOL: the output height and width (channels 0). */
    size_t channels, height, width;
    size_t outputs;            /**< CONV: output channels K; FC: output features */
    size_t kernel_h, kernel_w; /**< CONV */
    clcnn_conv_params conv;    /**< CONV: stride, pad, dilation, groups, mode (relu is false:
                                    the activation is in act) */
    bool bias;                 /**< CONV, FC: has a bias (default true; "nobias") */
    bool has_act;              /**< CONV, FC: an activation follows, fused; ACT: always */
    clcnn_act_params act;      /**< the activation when has_act */
    clcnn_pool_params pool;    /**< POOL */
    float dropout;             /**< DROPOUT: probability of zeroing, in [0, 1) */
    clcnn_conv_algo algo;      /**< CONV: algo= hint, AUTO by default */
    bool frozen;               /**< CONV, FC: weights are not trained ("frozen") */
} clcnn_layer_desc;

/** A parsed model: its layers in order. Owns its arrays; free with clcnn_model_desc_free(). */
typedef struct clcnn_model_desc {
    size_t count;
    clcnn_layer_desc *layers;
} clcnn_model_desc;

/**
 * Parses a model file's text. One layer a line; '#' starts a comment; tokens are separated by
 * spaces or tabs. The first layer is `input CxHxW`; then, in any order:
 *
 *     conv K RxS [stride=S|SH,SW] [pad=P|PH,PW] [dilation=D|DH,DW] [groups=G] [flip] [nobias]
 *          [relu|leaky-relu|elu|sigmoid|tanh] [alpha=A] [algo=NAME] [frozen] [name=ID]
 *     maxpool|avgpool|l2pool RxS [stride=..] [pad=..] [ceil] [exclude-pad (avgpool)] [name=ID]
 *     globalavgpool [name=ID]          adaptiveavgpool HxW [name=ID]
 *     fc N [nobias] [relu|...] [alpha=A] [frozen] [name=ID]
 *     relu|leaky-relu|elu|sigmoid|tanh [alpha=A] [name=ID]
 *     dropout P [name=ID]
 *     softmax [name=ID]                (last layer only)
 *
 * A size written once ("5") means square ("5x5"); a pooling stride defaults to its window.
 * Parsing is strict: an unknown layer or option, a repeated option, a missing or bad value is a
 * PARSE error whose message starts "source:line:col:" and says what was expected.
 * [in] text of [in] size bytes (need not be NUL-terminated); [in] source names it in messages;
 * [out] model is written only on success.
 * Returns OK, INVALID_ARG, PARSE, OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_model_parse(const char *text, size_t size, const char *source,
                                         clcnn_model_desc *model);

/** Reads and parses a model file (at most 1 MiB). Returns those statuses and IO. */
CLCNN_API clcnn_status clcnn_model_load(const char *path, clcnn_model_desc *model);

/**
 * Writes the model back as model-file text in canonical form (defaults left out, one space
 * between tokens, default names omitted), which parses to the same description.
 * [out] text: NUL-terminated, owned by the caller, freed with clcnn_free(); written only on
 * success. Returns OK, INVALID_ARG, OUT_OF_MEMORY.
 */
CLCNN_API clcnn_status clcnn_model_format(const clcnn_model_desc *model, char **text);

/** Frees the layers and zeroes the description. NULL is a no-op. */
CLCNN_API void clcnn_model_desc_free(clcnn_model_desc *model);

/** One layer of a model summary: what flows out of it and what it costs, for one image. */
typedef struct clcnn_layer_summary {
    size_t channels, height, width;              /**< output shape (N excluded) */
    size_t params;                               /**< weights and biases */
    double flops;                                /**< forward floating-point operations per image (a
                                                      multiply-add counts 2) */
    size_t receptive_field_h, receptive_field_w; /**< input pixels one output sees */
    size_t jump_h, jump_w; /**< input pixels between neighbouring outputs (the product of the
                                strides so far) */
    /** CONV: parameters a fully connected layer mapping the same input to the same output
     *  would need (weights and biases); 0 for other kinds. */
    double fc_equivalent_params;
} clcnn_layer_summary;

/** Totals of a model summary. */
typedef struct clcnn_model_totals {
    size_t params;
    size_t trainable_params; /**< not frozen */
    double flops;            /**< per image */
    size_t activation_bytes; /**< float32 input and every layer's output, at the batch size */
} clcnn_model_totals;

/**
 * Infers every layer's output shape from the input and computes a row per layer and the totals
 * at [in] batch images (>= 1). [out] rows: model->count rows, owned by the caller, freed with
 * clcnn_free(); [out] totals (may be NULL). Written only on success.
 * Returns OK, INVALID_ARG, BAD_SHAPE (a layer that does not fit its input: the message names
 * the layer, its line and the numbers), OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_model_summary(const clcnn_model_desc *model, size_t batch,
                                           clcnn_layer_summary **rows, clcnn_model_totals *totals);

/** What a layer kind is ("convolution"), or "unknown". Static string. Thread-safe. */
CLCNN_API const char *clcnn_layer_kind_name(clcnn_layer_kind kind);

#ifdef __cplusplus
}
#endif

#endif
