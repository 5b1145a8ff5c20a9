/* Datasets: IDX (plain or gzip, through zlib, with the declared size bounding decompression),
 * CIFAR-10 binary batches, and normalized, seeded-augmented batches of float images. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "clcnn/data.h"
#include "data_impl.h"
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

clcnn_status clcnn__cifar10_append(const void *bytes, size_t size, const char *name,
                                   clcnn_dataset *d)
{
    enum { RECORD = 1 + 3 * 32 * 32 };
    size_t n = size / RECORD;
    CLCNN_FAIL_IF(n == 0 || size % RECORD != 0, CLCNN_STATUS_CORRUPT,
                  "%s: %zu bytes is not a whole number of %d-byte records", name, size, RECORD);
    size_t total = d->count + n;
    CLCNN_FAIL_IF(total < n || total > SIZE_MAX / RECORD, CLCNN_STATUS_OUT_OF_MEMORY,
                  "%s: %zu records in all is too many", name, total);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = (const uint8_t *)bytes + i * RECORD;
        CLCNN_FAIL_IF(rec[0] > 9, CLCNN_STATUS_CORRUPT,
                      "%s: record %zu has label %u (expected 0-9)", name, i, rec[0]);
    }
    uint8_t *images = realloc(d->images, total * (RECORD - 1));
    if (images != NULL)
        d->images = images;
    uint8_t *labels = realloc(d->labels, total);
    if (labels != NULL)
        d->labels = labels;
    CLCNN_FAIL_IF(images == NULL || labels == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "%s: out of memory",
                  name);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = (const uint8_t *)bytes + i * RECORD;
        d->labels[d->count + i] = rec[0];
        memcpy(d->images + (d->count + i) * (RECORD - 1), rec + 1, RECORD - 1);
    }
    d->count += n;
    return CLCNN_OK;
}

clcnn_status clcnn_dataset_load_cifar10(const char *dir, bool train, clcnn_dataset *data)
{
    CLCNN_FAIL_IF(dir == NULL || data == NULL, CLCNN_STATUS_INVALID_ARG, "dataset: NULL argument");
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
        if (st == CLCNN_OK)
            st = clcnn__cifar10_append(bytes, size, path, &d);
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

/* ---- k-means and patches -------------------------------------------------------------------- */

clcnn_status clcnn_kmeans(const float *points, size_t n, size_t dim, size_t k, size_t iterations,
                          uint64_t seed, float *centres)
{
    CLCNN_FAIL_IF(points == NULL || centres == NULL || k == 0 || k > n || dim == 0,
                  CLCNN_STATUS_INVALID_ARG, "kmeans: %zu centres of %zu points of dimension %zu", k,
                  n, dim);
    double *sums = calloc(k * dim, sizeof *sums);
    size_t *counts = calloc(k, sizeof *counts), *pick = malloc(n * sizeof *pick);
    float *c = malloc(k * dim * sizeof *c);
    if (sums == NULL || counts == NULL || pick == NULL || c == NULL) {
        free(sums);
        free(counts);
        free(pick);
        free(c);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "kmeans: out of memory");
    }
    /* Start from k distinct points: a seeded partial Fisher-Yates shuffle. */
    for (size_t i = 0; i < n; i++)
        pick[i] = i;
    uint64_t state = seed;
    for (size_t i = 0; i < k && i < n; i++) {
        size_t j = i + (size_t)(mix(state++ ^ seed) % (n - i));
        size_t t = pick[i];
        pick[i] = pick[j];
        pick[j] = t;
        memcpy(c + i * dim, points + pick[i] * dim, dim * sizeof *c);
    }
    for (size_t it = 0; it < iterations; it++) {
        memset(sums, 0, k * dim * sizeof *sums);
        memset(counts, 0, k * sizeof *counts);
        for (size_t p = 0; p < n; p++) {
            const float *x = points + p * dim;
            size_t best = 0;
            double best_d = 0;
            for (size_t j = 0; j < k; j++) {
                double d = 0;
                for (size_t t = 0; t < dim; t++) {
                    double e = (double)x[t] - (double)c[j * dim + t];
                    d += e * e;
                }
                if (j == 0 || d < best_d) {
                    best = j;
                    best_d = d;
                }
            }
            counts[best]++;
            for (size_t t = 0; t < dim; t++)
                sums[best * dim + t] += x[t];
        }
        for (size_t j = 0; j < k; j++)
            if (counts[j] > 0)
                for (size_t t = 0; t < dim; t++)
                    c[j * dim + t] = (float)(sums[j * dim + t] / (double)counts[j]);
    }
    memcpy(centres, c, k * dim * sizeof *c);
    free(sums);
    free(counts);
    free(pick);
    free(c);
    return CLCNN_OK;
}

clcnn_status clcnn_dataset_patches(const clcnn_dataset *data, size_t n, size_t ph, size_t pw,
                                   uint64_t seed, float *patches)
{
    CLCNN_FAIL_IF(data == NULL || patches == NULL || data->count == 0 || ph == 0 || pw == 0 ||
                      ph > data->height || pw > data->width,
                  CLCNN_STATUS_INVALID_ARG, "dataset_patches: bad arguments (patch %zux%zu)", ph,
                  pw);
    const size_t C = data->channels, H = data->height, W = data->width, dim = C * ph * pw;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = mix(seed ^ mix(i + 1));
        size_t img = (size_t)(r % data->count);
        size_t y0 = (size_t)((r >> 20) % (H - ph + 1)), x0 = (size_t)((r >> 40) % (W - pw + 1));
        float *out = patches + i * dim;
        double mean = 0, norm = 0;
        for (size_t c = 0; c < C; c++)
            for (size_t y = 0; y < ph; y++)
                for (size_t x = 0; x < pw; x++) {
                    float v =
                        (float)data->images[((img * C + c) * H + y0 + y) * W + x0 + x] / 255.0f;
                    out[(c * ph + y) * pw + x] = v;
                    mean += v;
                }
        mean /= (double)dim;
        for (size_t t = 0; t < dim; t++) {
            out[t] = (float)(out[t] - mean);
            norm += (double)out[t] * out[t];
        }
        /* A flat patch stays zero rather than blowing up. */
        double scale = norm > 1e-12 ? 1.0 / sqrt(norm) : 0.0;
        for (size_t t = 0; t < dim; t++)
            out[t] = (float)(out[t] * scale);
    }
    return CLCNN_OK;
}
