/* Datasets: IDX (plain or gzip, through zlib, with the declared size bounding decompression),
 * CIFAR-10 binary batches, and normalized, seeded-augmented batches of float images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "clcnn/data.h"
#include "fileio_impl.h"
#include "status_impl.h"

/* Compressed or plain input files larger than this are not datasets clcnn reads. */
#define MAX_FILE_BYTES ((size_t)512 << 20)
/* No dimension of a dataset is near this; it keeps the product far from overflow. */
#define MAX_DIM ((size_t)1 << 28)

/* ---- reading plain or gzip bytes ------------------------------------------------------------ */

typedef struct reader {
    const unsigned char *bytes;
    size_t size, pos; /* plain input */
    bool gzip;
    bool ended; /* gzip: the stream is complete */
    z_stream zs;
} reader;

static clcnn_status reader_open(reader *r, const void *bytes, size_t size)
{
    memset(r, 0, sizeof *r);
    r->bytes = bytes;
    r->size = size;
    r->gzip = size >= 2 && r->bytes[0] == 0x1f && r->bytes[1] == 0x8b;
    if (!r->gzip)
        return CLCNN_OK;
    r->zs.next_in = (Bytef *)(uintptr_t)bytes;
    r->zs.avail_in = size > UINT32_MAX ? UINT32_MAX : (uInt)size;
    if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK)
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "idx: cannot start gzip decompression");
    return CLCNN_OK;
}

static void reader_close(reader *r)
{
    if (r->gzip)
        inflateEnd(&r->zs);
}

/* Reads up to n bytes into buf; *got says how many (fewer only at the end of the data). */
static clcnn_status reader_read(reader *r, void *buf, size_t n, size_t *got)
{
    if (!r->gzip) {
        size_t left = r->size - r->pos;
        *got = n < left ? n : left;
        memcpy(buf, r->bytes + r->pos, *got);
        r->pos += *got;
        return CLCNN_OK;
    }
    *got = 0;
    unsigned char *out = buf;
    while (*got < n && !r->ended) {
        size_t want = n - *got;
        r->zs.next_out = out + *got;
        r->zs.avail_out = want > UINT32_MAX ? UINT32_MAX : (uInt)want;
        uInt before = r->zs.avail_out;
        int z = inflate(&r->zs, Z_NO_FLUSH);
        *got += before - r->zs.avail_out;
        if (z == Z_STREAM_END) {
            r->ended = true;
            if (r->zs.avail_in != 0)
                return CLCNN_ERR(CLCNN_STATUS_CORRUPT, "idx: %u bytes after the gzip stream",
                                 r->zs.avail_in);
        } else if (z == Z_BUF_ERROR && r->zs.avail_in == 0) {
            return CLCNN_ERR(CLCNN_STATUS_CORRUPT, "idx: the gzip stream is truncated");
        } else if (z != Z_OK) {
            return CLCNN_ERR(CLCNN_STATUS_CORRUPT, "idx: broken gzip data (%s)",
                             r->zs.msg != NULL ? r->zs.msg : zError(z));
        }
    }
    return CLCNN_OK;
}

/* ---- IDX ------------------------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static clcnn_status parse_idx(reader *r, clcnn_idx *out)
{
    unsigned char head[4 + 16];
    size_t got;
    CLCNN_TRY(reader_read(r, head, 4, &got));
    CLCNN_FAIL_IF(got < 4, CLCNN_STATUS_CORRUPT, "idx: truncated: %zu of 4 header bytes", got);
    CLCNN_FAIL_IF(head[0] != 0 || head[1] != 0, CLCNN_STATUS_PARSE,
                  "idx: not an IDX file (magic %02x %02x %02x %02x)", head[0], head[1], head[2],
                  head[3]);
    CLCNN_FAIL_IF(head[2] != 0x08, CLCNN_STATUS_PARSE,
                  "idx: element type 0x%02x is not supported (clcnn reads unsigned bytes, 0x08)",
                  head[2]);
    int rank = head[3];
    CLCNN_FAIL_IF(rank < 1 || rank > 4, CLCNN_STATUS_BAD_SHAPE,
                  "idx: rank %d is not supported (1 to 4)", rank);
    CLCNN_TRY(reader_read(r, head + 4, 4 * (size_t)rank, &got));
    CLCNN_FAIL_IF(got < 4 * (size_t)rank, CLCNN_STATUS_CORRUPT,
                  "idx: truncated: %zu of %d dimension bytes", got, 4 * rank);
    clcnn_idx x = {rank, {1, 1, 1, 1}, 1, NULL};
    for (int i = 0; i < rank; i++) {
        x.dims[i] = be32(head + 4 + 4 * (size_t)i);
        CLCNN_FAIL_IF(x.dims[i] == 0 || x.dims[i] > MAX_DIM, CLCNN_STATUS_BAD_SHAPE,
                      "idx: dimension %d is %zu (expected 1 to %zu)", i, x.dims[i], MAX_DIM);
        CLCNN_FAIL_IF(x.count > CLCNN_IDX_MAX_BYTES / x.dims[i], CLCNN_STATUS_BAD_SHAPE,
                      "idx: the header declares more than %zu bytes of data", CLCNN_IDX_MAX_BYTES);
        x.count *= x.dims[i];
    }
    /* The declared size bounds everything that follows: nothing is inflated past it. A plain
     * file shorter than declared is refused before allocating; a gzip stream's buffer grows
     * with what it actually inflates to, so a tiny hostile file cannot claim a gigabyte. */
    if (!r->gzip)
        CLCNN_FAIL_IF(r->size - r->pos < x.count, CLCNN_STATUS_CORRUPT,
                      "idx: truncated: the header declares %zu data bytes, found %zu", x.count,
                      r->size - r->pos);
    size_t cap = r->gzip && x.count > ((size_t)1 << 20) ? (size_t)1 << 20 : x.count;
    x.data = malloc(cap);
    CLCNN_FAIL_IF(x.data == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "idx: cannot allocate %zu bytes",
                  cap);
    size_t have = 0;
    clcnn_status st = CLCNN_OK;
    while (st == CLCNN_OK && have < x.count) {
        if (have == cap) {
            cap = cap > x.count / 2 ? x.count : 2 * cap;
            uint8_t *grown = realloc(x.data, cap);
            if (grown == NULL) {
                st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "idx: cannot allocate %zu bytes", cap);
                break;
            }
            x.data = grown;
        }
        st = reader_read(r, x.data + have, cap - have, &got);
        have += got;
        if (st == CLCNN_OK && have < cap)
            break; /* the data ended */
    }
    if (st == CLCNN_OK && have < x.count)
        st = CLCNN_ERR(CLCNN_STATUS_CORRUPT,
                       "idx: truncated: the header declares %zu data bytes, found %zu", x.count,
                       have);
    unsigned char extra;
    if (st == CLCNN_OK)
        st = reader_read(r, &extra, 1, &got);
    if (st == CLCNN_OK && got != 0)
        st = CLCNN_ERR(CLCNN_STATUS_CORRUPT,
                       "idx: more data than the header's %zu bytes (trailing bytes)", x.count);
    if (st != CLCNN_OK) {
        free(x.data);
        return st;
    }
    *out = x;
    return CLCNN_OK;
}

clcnn_status clcnn_idx_parse(const void *bytes, size_t size, clcnn_idx *idx)
{
    CLCNN_FAIL_IF(bytes == NULL || idx == NULL, CLCNN_STATUS_INVALID_ARG,
                  "idx_parse: NULL argument");
    reader r;
    CLCNN_TRY(reader_open(&r, bytes, size));
    clcnn_status st = parse_idx(&r, idx);
    reader_close(&r);
    return st;
}

clcnn_status clcnn_idx_load(const char *path, clcnn_idx *idx)
{
    CLCNN_FAIL_IF(path == NULL || idx == NULL, CLCNN_STATUS_INVALID_ARG, "idx_load: NULL argument");
    void *data = NULL;
    size_t size = 0;
    CLCNN_TRY(clcnn__file_read_all(path, MAX_FILE_BYTES, &data, &size));
    clcnn_status st = clcnn_idx_parse(data, size, idx);
    free(data);
    if (st != CLCNN_OK)
        clcnn__error_prefix("%s", path);
    return st;
}

void clcnn_idx_free(clcnn_idx *idx)
{
    if (idx == NULL)
        return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* ---- datasets ------------------------------------------------------------------------------- */

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
static const char *const cifar_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};

/* "<dir>/<name>.gz" if it exists, else "<dir>/<name>". */
static clcnn_status load_idx_named(const char *dir, const char *name, clcnn_idx *idx)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    FILE *f = fopen(path, "rb");
    if (f != NULL)
        fclose(f);
    else
        snprintf(path, sizeof path, "%s/%s", dir, name);
    return clcnn_idx_load(path, idx);
}

clcnn_status clcnn_dataset_load_mnist(const char *dir, const char *split, clcnn_dataset *data)
{
    CLCNN_FAIL_IF(dir == NULL || split == NULL || data == NULL, CLCNN_STATUS_INVALID_ARG,
                  "dataset: NULL argument");
    CLCNN_FAIL_IF(strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0,
                  CLCNN_STATUS_INVALID_ARG, "dataset: split '%s' is neither train nor t10k", split);
    char name[64];
    clcnn_idx images = {0}, labels = {0};
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    CLCNN_TRY(load_idx_named(dir, name, &images));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    clcnn_status st = load_idx_named(dir, name, &labels);
    if (st == CLCNN_OK && images.rank != 3)
        st = CLCNN_ERR(CLCNN_STATUS_CORRUPT, "%s/%s-images: rank %d, expected N x H x W", dir,
                       split, images.rank);
    if (st == CLCNN_OK && labels.rank != 1)
        st = CLCNN_ERR(CLCNN_STATUS_CORRUPT, "%s/%s-labels: rank %d, expected N", dir, split,
                       labels.rank);
    if (st == CLCNN_OK && labels.dims[0] != images.dims[0])
        st = CLCNN_ERR(CLCNN_STATUS_CORRUPT,
                       "%s: %zu labels in %s-labels but %zu images in %s-images", dir,
                       labels.dims[0], split, images.dims[0], split);
    for (size_t i = 0; st == CLCNN_OK && i < labels.count; i++)
        if (labels.data[i] > 9)
            st = CLCNN_ERR(CLCNN_STATUS_CORRUPT, "%s/%s-labels: label %zu is %u (expected 0-9)",
                           dir, split, i, labels.data[i]);
    if (st != CLCNN_OK) {
        clcnn_idx_free(&images);
        clcnn_idx_free(&labels);
        return st;
    }
    bool fashion = strstr(dir, "fashion") != NULL;
    clcnn_dataset d = {images.dims[0],
                       1,
                       images.dims[1],
                       images.dims[2],
                       10,
                       images.data,
                       labels.data,
                       {0},
                       {0},
                       fashion ? fashion_names : digit_names};
    d.mean[0] = fashion ? 0.2860f : 0.1307f;
    d.std[0] = fashion ? 0.3530f : 0.3081f;
    *data = d;
    return CLCNN_OK;
}

clcnn_status clcnn_dataset_load_cifar10(const char *dir, bool train, clcnn_dataset *data)
{
    CLCNN_FAIL_IF(dir == NULL || data == NULL, CLCNN_STATUS_INVALID_ARG, "dataset: NULL argument");
    enum { RECORD = 1 + 3 * 32 * 32 };
    const int files = train ? 5 : 1;
    clcnn_dataset d = {0,
                       3,
                       32,
                       32,
                       10,
                       NULL,
                       NULL,
                       {0.4914f, 0.4822f, 0.4465f},
                       {0.2470f, 0.2435f, 0.2616f},
                       cifar_names};
    clcnn_status st = CLCNN_OK;
    for (int f = 0; f < files && st == CLCNN_OK; f++) {
        char path[4096];
        if (train)
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f + 1);
        else
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        void *bytes = NULL;
        size_t size = 0;
        st = clcnn__file_read_all(path, MAX_FILE_BYTES, &bytes, &size);
        if (st == CLCNN_OK && (size == 0 || size % RECORD != 0))
            st = CLCNN_ERR(CLCNN_STATUS_CORRUPT,
                           "%s: %zu bytes is not a whole number of %d-byte records", path, size,
                           RECORD);
        size_t n = size / RECORD;
        uint8_t *images = NULL, *labels = NULL;
        if (st == CLCNN_OK) {
            images = realloc(d.images, (d.count + n) * (RECORD - 1));
            if (images != NULL)
                d.images = images;
            labels = realloc(d.labels, d.count + n);
            if (labels != NULL)
                d.labels = labels;
            if (images == NULL || labels == NULL)
                st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
        }
        for (size_t i = 0; st == CLCNN_OK && i < n; i++) {
            const uint8_t *rec = (const uint8_t *)bytes + i * RECORD;
            if (rec[0] > 9) {
                st = CLCNN_ERR(CLCNN_STATUS_CORRUPT, "%s: record %zu has label %u (expected 0-9)",
                               path, i, rec[0]);
                break;
            }
            d.labels[d.count + i] = rec[0];
            memcpy(d.images + (d.count + i) * (RECORD - 1), rec + 1, RECORD - 1);
        }
        if (st == CLCNN_OK)
            d.count += n;
        free(bytes);
    }
    if (st != CLCNN_OK) {
        clcnn_dataset_free(&d);
        return st;
    }
    *data = d;
    return CLCNN_OK;
}

void clcnn_dataset_free(clcnn_dataset *data)
{
    if (data == NULL)
        return;
    free(data->images);
    free(data->labels);
    memset(data, 0, sizeof *data);
}

/* SplitMix64: the augmentation of an image depends only on (seed, index). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

clcnn_status clcnn_dataset_batch(const clcnn_dataset *data, const size_t *indices, size_t n,
                                 const clcnn_augment *augment, uint64_t seed, float *images,
                                 int32_t *labels)
{
    CLCNN_FAIL_IF(data == NULL || (n > 0 && (indices == NULL || images == NULL)),
                  CLCNN_STATUS_INVALID_ARG, "dataset_batch: NULL argument");
    for (size_t b = 0; b < n; b++)
        CLCNN_FAIL_IF(indices[b] >= data->count, CLCNN_STATUS_INVALID_ARG,
                      "dataset_batch: index %zu (batch position %zu) is past the %zu images",
                      indices[b], b, data->count);
    const size_t C = data->channels, H = data->height, W = data->width, plane = H * W;
    const size_t pad = augment != NULL ? augment->crop_pad : 0;
    for (size_t b = 0; b < n; b++) {
        size_t i = indices[b];
        uint64_t r = mix(seed ^ mix(i));
        size_t oy = pad, ox = pad;
        if (pad > 0) {
            oy = (size_t)(r % (2 * pad + 1));
            ox = (size_t)((r >> 16) % (2 * pad + 1));
        }
        bool flip = augment != NULL && augment->hflip && ((r >> 40) & 1) != 0;
        const uint8_t *src = data->images + i * C * plane;
        float *dst = images + b * C * plane;
        for (size_t c = 0; c < C; c++) {
            const float scale = 1.0f / (255.0f * data->std[c]);
            const float shift = data->mean[c] / data->std[c];
            for (size_t y = 0; y < H; y++) {
                for (size_t x = 0; x < W; x++) {
                    /* Output (y, x) reads the zero-padded image at (y + oy, x + ox). */
                    size_t sx = flip ? W - 1 - x : x;
                    size_t py = y + oy, px = sx + ox;
                    uint8_t v = 0;
                    if (py >= pad && py - pad < H && px >= pad && px - pad < W)
                        v = src[c * plane + (py - pad) * W + (px - pad)];
                    dst[c * plane + y * W + x] = (float)v * scale - shift;
                }
            }
        }
        if (labels != NULL)
            labels[b] = data->labels[i];
    }
    return CLCNN_OK;
}
