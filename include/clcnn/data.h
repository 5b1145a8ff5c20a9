/* Datasets on the host: IDX files (MNIST, Fashion-MNIST; plain or gzip), CIFAR-10 binary
 * batches, and batches of normalized, optionally augmented float images for training. */
#ifndef CLCNN_DATA_H
#define CLCNN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where Debian's dataset-fashion-mnist package installs the data: clcnn's default dataset. */
#define CLCNN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/** Largest IDX payload clcnn reads (the whole of MNIST is 47 MB). */
#define CLCNN_IDX_MAX_BYTES ((size_t)1 << 30)

/** An unsigned-byte IDX array: rank 1 to 4, dims[0] items. */
typedef struct clcnn_idx {
    int rank;
    size_t dims[4];
    size_t count;  /**< product of dims */
    uint8_t *data; /**< count bytes; owned, freed by clcnn_idx_free() */
} clcnn_idx;

/**
 * Parses IDX bytes, plain or gzip-compressed (detected by the gzip magic): magic 0x0000 0x08
 * (unsigned byte) and rank 1 to 4, big-endian dimensions, then exactly their product of bytes.
 * The declared size is checked against CLCNN_IDX_MAX_BYTES before anything is allocated, and
 * decompression stops there, so a gzip bomb is refused rather than inflated. [out] idx is
 * written only on success. Returns OK, INVALID_ARG, PARSE (bad magic, other element type),
 * CORRUPT (truncated, trailing data, broken gzip), BAD_SHAPE (a zero or absurd dimension),
 * OUT_OF_MEMORY. Thread-safe.
 */
CLCNN_API clcnn_status clcnn_idx_parse(const void *bytes, size_t size, clcnn_idx *idx);

/** Reads and parses an IDX file; messages start with the path. Adds IO. Thread-safe. */
CLCNN_API clcnn_status clcnn_idx_load(const char *path, clcnn_idx *idx);

/** Frees the data and zeroes the array. NULL is a no-op. */
CLCNN_API void clcnn_idx_free(clcnn_idx *idx);

/** A labelled image dataset in memory, as unsigned bytes (NCHW per image). */
typedef struct clcnn_dataset {
    size_t count; /**< images */
    size_t channels, height, width;
    size_t classes;
    uint8_t *images;                /**< count * channels * height * width bytes; owned */
    uint8_t *labels;                /**< count bytes, each < classes; owned */
    float mean[3], std[3];          /**< per-channel normalization of pixel/255 */
    const char *const *class_names; /**< classes static strings */
} clcnn_dataset;

/**
 * Loads an MNIST-format split from [in] dir: "<split>-images-idx3-ubyte[.gz]" and
 * "<split>-labels-idx1-ubyte[.gz]" with [in] split "train" or "t10k". Images must be N x H x W,
 * labels N values below 10 (a count or value that disagrees is CORRUPT, naming both files and
 * numbers). Class names and normalization are Fashion-MNIST's (mean 0.2860, std 0.3530).
 * [out] data written only on success. Returns OK, INVALID_ARG, IO, PARSE, CORRUPT, BAD_SHAPE,
 * OUT_OF_MEMORY.
 */
CLCNN_API clcnn_status clcnn_dataset_load_mnist(const char *dir, const char *split,
                                                clcnn_dataset *data);

/**
 * Loads CIFAR-10 binary batches from [in] dir: data_batch_1.bin .. data_batch_5.bin when
 * [in] train, else test_batch.bin; each record is a label byte then 3x32x32 bytes. A file
 * whose size is not a whole number of records, or a label above 9, is CORRUPT.
 */
CLCNN_API clcnn_status clcnn_dataset_load_cifar10(const char *dir, bool train, clcnn_dataset *data);

/** Frees the dataset's arrays and zeroes it. NULL is a no-op. */
CLCNN_API void clcnn_dataset_free(clcnn_dataset *data);

/** Seeded augmentation applied per image by clcnn_dataset_batch(). Zero means none. */
typedef struct clcnn_augment {
    size_t crop_pad; /**< pad by this many zero pixels, then crop back at a random offset */
    bool hflip;      /**< mirror left-right with probability 1/2 */
} clcnn_augment;

/**
 * Fills a batch: images [in] indices[0..n) of [in] data, normalized ((p/255 - mean) / std) into
 * [out] images (n * C * H * W floats, NCHW) and their labels into [out] labels (n int32, may be
 * NULL). With [in] augment (may be NULL), each image's crop offset and flip come from a
 * counter-based generator keyed by ([in] seed, the image's index), so a batch is the same for
 * the same seed whatever the order or thread that builds it. Returns OK or INVALID_ARG (an index
 * out of range: the message names it). Thread-safe.
 */
CLCNN_API clcnn_status clcnn_dataset_batch(const clcnn_dataset *data, const size_t *indices,
                                           size_t n, const clcnn_augment *augment, uint64_t seed,
                                           float *images, int32_t *labels);

/**
 * Lloyd's k-means: clusters [in] n points of [in] dim floats (row-major) into [in] k centres,
 * [out] centres (k * dim floats, written only on success), starting from k distinct points drawn
 * with [in] seed and running [in] iterations of assign-then-average (a centre that loses all its
 * points keeps its place). Sums run in point order in double, so the same input and seed give
 * the same bits. Returns OK, INVALID_ARG (NULL, k = 0, k > n, dim = 0), OUT_OF_MEMORY.
 * Thread-safe.
 */
CLCNN_API clcnn_status clcnn_kmeans(const float *points, size_t n, size_t dim, size_t k,
                                    size_t iterations, uint64_t seed, float *centres);

/**
 * Samples [in] n patches of [in] ph x [in] pw pixels (all channels) at seeded random images and
 * positions of [in] data, each normalized to zero mean and unit norm (Coates and Ng's
 * preprocessing, which k-means initialization of filters relies on), into [out] patches
 * (n * C * ph * pw floats, C-major like a filter). Returns OK, INVALID_ARG (NULL, an empty
 * dataset, a patch larger than the images).
 */
CLCNN_API clcnn_status clcnn_dataset_patches(const clcnn_dataset *data, size_t n, size_t ph,
                                             size_t pw, uint64_t seed, float *patches);

#ifdef __cplusplus
}
#endif

#endif
