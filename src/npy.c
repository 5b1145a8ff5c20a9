/* NumPy .npy files: a strict header parser (format 1.0 to 3.0, little-endian float32, rank 1
 * to 4) that is safe on arbitrary bytes, and a writer whose bytes match what NumPy writes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/npy.h"
#include "fileio_impl.h"
#include "status_impl.h"

_Static_assert(sizeof(float) == 4, "clcnn needs a 32-bit float");

/* "\x93NUMPY", then the major and minor version bytes. */
#define MAGIC_LEN 6
#define VERSION_LEN 2
/* NumPy pads the header so the data starts on a multiple of this (numpy.lib.format). */
#define ARRAY_ALIGN 64
/* NumPy leaves room for the first axis to grow to this many digits (numpy.lib.format). */
#define GROWTH_AXIS_MAX_DIGITS 21
/* Room for a shape string: four 20-digit dimensions and separators, or an elided one. */
#define SHAPE_TEXT_MAX 128
/* Longest descr or key kept for messages; longer ones are shown cut with "...". */
#define STRING_MAX 40

static const unsigned char npy_magic[MAGIC_LEN] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* What the header says, once checked: the data starts at data_offset and holds count floats. */
typedef struct npy_layout {
    int rank;
    size_t dims[CLCNN_NPY_MAX_RANK];
    size_t count;
    size_t data_offset;
} npy_layout;

/* A read position inside the header dict. base is the dict's offset in the file, so messages
 * give file offsets that match a hex dump. */
typedef struct cursor {
    const char *label;
    const unsigned char *p;
    size_t len;
    size_t pos;
    size_t base;
} cursor;

/* A quoted Python string as read: the first STRING_MAX - 1 bytes and the full length. */
typedef struct py_string {
    char text[STRING_MAX];
    size_t len;
} py_string;

/* The shape tuple as read. Dimensions past CLCNN_NPY_MAX_RANK are checked but not kept. */
typedef struct py_shape {
    size_t rank;
    size_t dims[CLCNN_NPY_MAX_RANK];
    int zero;     /* some dimension is 0 */
    int negative; /* some dimension has a minus sign */
    int overflow; /* some dimension does not fit size_t */
    size_t begin; /* the tuple's span in the dict, for messages */
    size_t end;
} py_shape;

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static uint32_t load_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes count little-endian floats from src into dst. dst == src is allowed (in place). */
static void decode_f32le(float *dst, const unsigned char *src, size_t count)
{
    if (host_is_little_endian()) {
        if ((const void *)dst != (const void *)src)
            memcpy(dst, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits = load_u32le(src + 4 * i);
        memcpy(&dst[i], &bits, sizeof bits);
    }
}

/* Encodes count floats as little-endian bytes. */
static void encode_f32le(unsigned char *dst, const float *src, size_t count)
{
    if (host_is_little_endian()) {
        memcpy(dst, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        dst[4 * i] = (unsigned char)bits;
        dst[4 * i + 1] = (unsigned char)(bits >> 8);
        dst[4 * i + 2] = (unsigned char)(bits >> 16);
        dst[4 * i + 3] = (unsigned char)(bits >> 24);
    }
}

/* Writes "(D0, D1)" or "(D0,)" into buf (at least SHAPE_TEXT_MAX bytes); returns its length. */
static size_t format_shape(char *buf, int rank, const size_t *dims)
{
    size_t n = 0;
    buf[n++] = '(';
    for (int i = 0; i < rank; i++) {
        int w = snprintf(buf + n, SHAPE_TEXT_MAX - n, i == 0 ? "%zu" : ", %zu", dims[i]);
        if (w > 0)
            n += (size_t)w;
    }
    n += (size_t)snprintf(buf + n, SHAPE_TEXT_MAX - n, rank == 1 ? ",)" : ")");
    return n;
}

static int is_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

/* Copies the shape tuple as written in the header, whitespace normalised to "(2, 3)", cut
 * with "..." when longer than the buffer. Only digits, signs, 'L', ',', '(' and ')' reach it. */
static void shape_text(const cursor *c, const py_shape *shape, char *buf)
{
    const size_t keep = SHAPE_TEXT_MAX - 4; /* room for "..." and the NUL */
    size_t n = 0;
    int cut = 0;
    for (size_t i = shape->begin; i < shape->end; i++) {
        unsigned char ch = c->p[i];
        if (is_space(ch))
            continue;
        /* A space after a comma unless the tuple closes: "(2, 3)" but "(5,)". */
        int space = 0;
        if (ch == ',') {
            size_t j = i + 1;
            while (j < shape->end && is_space(c->p[j]))
                j++;
            space = j < shape->end && c->p[j] != ')';
        }
        if (n + 1 + (size_t)space > keep) {
            cut = 1;
            break;
        }
        buf[n++] = (char)ch;
        if (space)
            buf[n++] = ' ';
    }
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

static clcnn_status syntax_error(const cursor *c, const char *expected)
{
    char found[24];
    if (c->pos >= c->len) {
        snprintf(found, sizeof found, "the end of the header");
    } else {
        unsigned char ch = c->p[c->pos];
        if (ch >= 0x20 && ch < 0x7f)
            snprintf(found, sizeof found, "'%c'", ch);
        else
            snprintf(found, sizeof found, "byte 0x%02x", ch);
    }
    return CLCNN_ERR(CLCNN_STATUS_PARSE, "%s: header: expected %s at byte %zu, found %s", c->label,
                     expected, c->base + c->pos, found);
}

/* Python's whitespace inside brackets: implicit line joining allows newlines too. */
static void skip_ws(cursor *c)
{
    while (c->pos < c->len && is_space(c->p[c->pos]))
        c->pos++;
}

static int peek(const cursor *c)
{
    return c->pos < c->len ? c->p[c->pos] : -1;
}

static int is_ident_char(int ch)
{
    return ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z');
}

/* A quoted string in single or double quotes. Escapes and non-ASCII text are refused: no key
 * or dtype clcnn reads needs them, and refusing them keeps messages printable. */
static clcnn_status parse_string(cursor *c, py_string *out)
{
    int quote = peek(c);
    if (quote != '\'' && quote != '"')
        return syntax_error(c, "a quoted string");
    c->pos++;
    size_t n = 0;
    for (;;) {
        int ch = peek(c);
        if (ch == quote)
            break;
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            return syntax_error(c, "a printable character or a closing quote (escapes and "
                                   "non-ASCII text are not accepted)");
        if (n < STRING_MAX - 1)
            out->text[n] = (char)ch;
        n++;
        c->pos++;
    }
    c->pos++;
    out->text[n < STRING_MAX - 1 ? n : STRING_MAX - 1] = '\0';
    out->len = n;
    return CLCNN_OK;
}

static int string_is(const py_string *s, const char *text)
{
    return s->len == strlen(text) && strcmp(s->text, text) == 0;
}

static const char *string_cut(const py_string *s)
{
    return s->len >= STRING_MAX ? "..." : "";
}

static clcnn_status parse_bool(cursor *c, int *value)
{
    static const char *const names[2] = {"False", "True"};
    for (int v = 0; v < 2; v++) {
        size_t n = strlen(names[v]);
        if (c->len - c->pos >= n && memcmp(c->p + c->pos, names[v], n) == 0 &&
            (c->pos + n == c->len || !is_ident_char(c->p[c->pos + n]))) {
            c->pos += n;
            *value = v;
            return CLCNN_OK;
        }
    }
    return syntax_error(c, "True or False for 'fortran_order'");
}

/* One dimension: an optional '-', decimal digits (no leading zeros, as in Python 3), and an
 * optional 'L' that Python 2 wrote after long integers. */
static clcnn_status parse_dim(cursor *c, py_shape *shape)
{
    int negative = 0;
    if (peek(c) == '-') {
        negative = 1;
        c->pos++;
        skip_ws(c);
    }
    int ch = peek(c);
    if (ch < '0' || ch > '9')
        return syntax_error(c, "a dimension (a decimal integer)");
    if (ch == '0' && c->pos + 1 < c->len && c->p[c->pos + 1] >= '0' && c->p[c->pos + 1] <= '9')
        return syntax_error(c, "a dimension without leading zeros");
    size_t value = 0;
    int overflow = 0;
    while ((ch = peek(c)) >= '0' && ch <= '9') {
        size_t digit = (size_t)(ch - '0');
        if (value > (SIZE_MAX - digit) / 10)
            overflow = 1;
        else
            value = value * 10 + digit;
        c->pos++;
    }
    if (peek(c) == 'L')
        c->pos++;
    if (is_ident_char(peek(c)))
        return syntax_error(c, "',' or ')' after a dimension");
    if (negative)
        shape->negative = 1;
    else if (overflow)
        shape->overflow = 1;
    else if (value == 0)
        shape->zero = 1;
    if (shape->rank < CLCNN_NPY_MAX_RANK)
        shape->dims[shape->rank] = value;
    shape->rank++;
    return CLCNN_OK;
}

/* A tuple: "()", "(5,)", "(2, 3)", "(2, 3,)". "(5)" is an int in Python, not a tuple. */
static clcnn_status parse_shape(cursor *c, py_shape *shape)
{
    shape->begin = c->pos;
    if (peek(c) != '(')
        return syntax_error(c, "a tuple such as (2, 3) for 'shape'");
    c->pos++;
    skip_ws(c);
    if (peek(c) != ')') {
        for (;;) {
            CLCNN_TRY(parse_dim(c, shape));
            skip_ws(c);
            if (peek(c) == ')') {
                if (shape->rank == 1)
                    return syntax_error(c, "',' (a rank-1 shape is written (N,))");
                break;
            }
            if (peek(c) != ',')
                return syntax_error(c, "',' or ')' in 'shape'");
            c->pos++;
            skip_ws(c);
            if (peek(c) == ')')
                break;
        }
    }
    c->pos++;
    shape->end = c->pos;
    return CLCNN_OK;
}

/* Parses the header dict, checks it against what clcnn reads and fills the layout. hdr is
 * the header text of hlen bytes at offset base; size is the whole file's size. */
static clcnn_status parse_dict(const char *label, const unsigned char *hdr, size_t hlen,
                               size_t base, size_t size, npy_layout *layout)
{
    cursor cur = {label, hdr, hlen, 0, base};
    cursor *c = &cur;
    py_string descr = {{0}, 0};
    py_shape shape;
    memset(&shape, 0, sizeof shape);
    int fortran = 0;
    int have_descr = 0, have_fortran = 0, have_shape = 0;

    skip_ws(c);
    if (peek(c) != '{')
        return syntax_error(c, "'{' opening the header dict");
    c->pos++;
    skip_ws(c);
    while (peek(c) != '}') {
        py_string key;
        size_t key_pos = c->pos;
        CLCNN_TRY(parse_string(c, &key));
        int *seen = string_is(&key, "descr")           ? &have_descr
                    : string_is(&key, "fortran_order") ? &have_fortran
                    : string_is(&key, "shape")         ? &have_shape
                                                       : NULL;
        if (seen == NULL)
            return CLCNN_ERR(CLCNN_STATUS_PARSE,
                             "%s: header: unknown key '%s%s' at byte %zu (expected 'descr', "
                             "'fortran_order' and 'shape')",
                             label, key.text, string_cut(&key), base + key_pos);
        if (*seen)
            return CLCNN_ERR(CLCNN_STATUS_PARSE, "%s: header: duplicate key '%s' at byte %zu",
                             label, key.text, base + key_pos);
        *seen = 1;
        skip_ws(c);
        if (peek(c) != ':')
            return syntax_error(c, "':' after a key");
        c->pos++;
        skip_ws(c);
        if (seen == &have_descr) {
            if (peek(c) == '[')
                return CLCNN_ERR(CLCNN_STATUS_UNSUPPORTED,
                                 "%s: structured dtypes (a list 'descr') are not supported "
                                 "(clcnn reads little-endian float32 '<f4')",
                                 label);
            CLCNN_TRY(parse_string(c, &descr));
        } else if (seen == &have_fortran) {
            CLCNN_TRY(parse_bool(c, &fortran));
        } else {
            CLCNN_TRY(parse_shape(c, &shape));
        }
        skip_ws(c);
        if (peek(c) == ',') {
            c->pos++;
            skip_ws(c);
        } else if (peek(c) != '}') {
            return syntax_error(c, "',' or '}' after a value");
        }
    }
    c->pos++;
    skip_ws(c);
    if (c->pos != c->len)
        return syntax_error(c, "only spaces and a newline after the header dict");

    const char *missing = !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape";
    CLCNN_FAIL_IF(!(have_descr && have_fortran && have_shape), CLCNN_STATUS_PARSE,
                  "%s: header has no '%s' key", label, missing);
    CLCNN_FAIL_IF(!string_is(&descr, "<f4"), CLCNN_STATUS_UNSUPPORTED,
                  "%s: dtype '%s%s' is not supported (clcnn reads little-endian float32 '<f4')",
                  label, descr.text, string_cut(&descr));
    CLCNN_FAIL_IF(fortran, CLCNN_STATUS_UNSUPPORTED,
                  "%s: Fortran order (fortran_order True) is not supported; save a C-order "
                  "array (numpy.ascontiguousarray)",
                  label);

    char text[SHAPE_TEXT_MAX];
    shape_text(c, &shape, text);
    CLCNN_FAIL_IF(shape.rank == 0 || shape.rank > CLCNN_NPY_MAX_RANK, CLCNN_STATUS_UNSUPPORTED,
                  "%s: shape %s has rank %zu; clcnn reads rank 1 to %d", label, text, shape.rank,
                  CLCNN_NPY_MAX_RANK);
    CLCNN_FAIL_IF(shape.negative, CLCNN_STATUS_BAD_SHAPE, "%s: shape %s has a negative dimension",
                  label, text);
    CLCNN_FAIL_IF(shape.zero, CLCNN_STATUS_BAD_SHAPE,
                  "%s: shape %s has a zero dimension (empty arrays are not supported)", label,
                  text);

    size_t count = 1;
    int overflow = shape.overflow;
    for (size_t i = 0; i < shape.rank && !overflow; i++) {
        if (count > SIZE_MAX / shape.dims[i])
            overflow = 1;
        else
            count *= shape.dims[i];
    }
    CLCNN_FAIL_IF(overflow || count > SIZE_MAX / sizeof(float), CLCNN_STATUS_CORRUPT,
                  "%s: shape %s overflows: its byte size does not fit size_t", label, text);

    size_t want = count * sizeof(float);
    size_t have = size - (base + hlen);
    CLCNN_FAIL_IF(have < want, CLCNN_STATUS_CORRUPT,
                  "%s: truncated: %zu data bytes, expected %zu for shape %s", label, have, want,
                  text);
    CLCNN_FAIL_IF(have > want, CLCNN_STATUS_CORRUPT,
                  "%s: %zu data bytes, expected %zu for shape %s (%zu trailing bytes)", label, have,
                  want, text, have - want);

    layout->rank = (int)shape.rank;
    for (int i = 0; i < CLCNN_NPY_MAX_RANK; i++)
        layout->dims[i] = i < layout->rank ? shape.dims[i] : 1;
    layout->count = count;
    layout->data_offset = base + hlen;
    return CLCNN_OK;
}

/* Checks magic, version and header length, then the header dict. label starts messages. */
static clcnn_status parse_layout(const char *label, const unsigned char *p, size_t size,
                                 npy_layout *layout)
{
    CLCNN_FAIL_IF(size == 0, CLCNN_STATUS_PARSE, "%s: empty file, not a .npy file (bad magic)",
                  label);
    size_t n = size < MAGIC_LEN ? size : MAGIC_LEN;
    CLCNN_FAIL_IF(memcmp(p, npy_magic, n) != 0, CLCNN_STATUS_PARSE,
                  "%s: not a .npy file (bad magic)", label);
    CLCNN_FAIL_IF(size < MAGIC_LEN + VERSION_LEN, CLCNN_STATUS_CORRUPT,
                  "%s: truncated: %zu bytes end inside the magic and version", label, size);

    unsigned major = p[MAGIC_LEN], minor = p[MAGIC_LEN + 1];
    CLCNN_FAIL_IF(major < 1 || major > 3 || minor != 0, CLCNN_STATUS_UNSUPPORTED,
                  "%s: .npy format version %u.%u is not supported (clcnn reads 1.0, 2.0, 3.0)",
                  label, major, minor);
    /* 1.0 has a u16 header length, 2.0 and 3.0 a u32 one; 3.0 only allows UTF-8 in the
     * header, which the ASCII-only dict parser refuses anyway. */
    size_t len_size = major == 1 ? 2 : 4;
    size_t base = MAGIC_LEN + VERSION_LEN + len_size;
    CLCNN_FAIL_IF(size < base, CLCNN_STATUS_CORRUPT,
                  "%s: truncated: %zu bytes end inside the header length", label, size);
    const unsigned char *lp = p + MAGIC_LEN + VERSION_LEN;
    size_t hlen = major == 1 ? (size_t)lp[0] | (size_t)lp[1] << 8 : (size_t)load_u32le(lp);
    CLCNN_FAIL_IF(hlen > size - base, CLCNN_STATUS_CORRUPT,
                  "%s: header length %zu runs past the end of the file (%zu bytes)", label, hlen,
                  size);
    return parse_dict(label, p + base, hlen, base, size, layout);
}

clcnn_status clcnn_npy_parse(const void *bytes, size_t size, clcnn_npy_array *array)
{
    CLCNN_FAIL_IF(array == NULL, CLCNN_STATUS_INVALID_ARG, "npy: parse: NULL array");
    CLCNN_FAIL_IF(bytes == NULL && size > 0, CLCNN_STATUS_INVALID_ARG,
                  "npy: parse: NULL bytes with size %zu", size);
    npy_layout layout;
    CLCNN_TRY(parse_layout("npy", bytes, size, &layout));
    float *data = malloc(layout.count * sizeof(float));
    CLCNN_FAIL_IF(data == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "npy: cannot allocate %zu bytes",
                  layout.count * sizeof(float));
    decode_f32le(data, (const unsigned char *)bytes + layout.data_offset, layout.count);
    array->rank = layout.rank;
    memcpy(array->dims, layout.dims, sizeof array->dims);
    array->count = layout.count;
    array->data = data;
    return CLCNN_OK;
}

clcnn_status clcnn_npy_load(const char *path, clcnn_npy_array *array)
{
    CLCNN_FAIL_IF(path == NULL, CLCNN_STATUS_INVALID_ARG, "npy: load: NULL path");
    CLCNN_FAIL_IF(array == NULL, CLCNN_STATUS_INVALID_ARG, "%s: load: NULL array", path);
    /* 16 GiB, or all of a 32-bit address space. */
    const uint64_t limit64 = (uint64_t)16 << 30;
    const size_t limit = limit64 > SIZE_MAX ? SIZE_MAX : (size_t)limit64;
    void *buf;
    size_t size;
    CLCNN_TRY(clcnn__file_read_all(path, limit, &buf, &size));
    npy_layout layout;
    clcnn_status status = parse_layout(path, buf, size, &layout);
    if (status != CLCNN_OK) {
        free(buf);
        return status;
    }
    /* Reuse the file buffer for the data so a big file needs its size in memory once, not
     * twice: move the data to the front, decode in place, give back the rest. */
    unsigned char *bytes = buf;
    size_t nbytes = layout.count * sizeof(float);
    memmove(bytes, bytes + layout.data_offset, nbytes);
    decode_f32le(buf, bytes, layout.count);
    void *shrunk = realloc(buf, nbytes);
    if (shrunk != NULL)
        buf = shrunk;
    array->rank = layout.rank;
    memcpy(array->dims, layout.dims, sizeof array->dims);
    array->count = layout.count;
    array->data = buf;
    return CLCNN_OK;
}

/* Serialize with messages that start with label ("npy" or the path being saved). */
static clcnn_status serialize(const char *label, int rank, const size_t *dims, const float *data,
                              void **bytes, size_t *size)
{
    CLCNN_FAIL_IF(bytes == NULL || size == NULL, CLCNN_STATUS_INVALID_ARG,
                  "%s: serialize: NULL output pointer", label);
    CLCNN_FAIL_IF(rank < 1 || rank > CLCNN_NPY_MAX_RANK, CLCNN_STATUS_BAD_SHAPE,
                  "%s: rank %d is not supported (clcnn writes rank 1 to %d)", label, rank,
                  CLCNN_NPY_MAX_RANK);
    CLCNN_FAIL_IF(dims == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL dims", label);
    char shape[SHAPE_TEXT_MAX];
    format_shape(shape, rank, dims);
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        CLCNN_FAIL_IF(dims[i] == 0, CLCNN_STATUS_BAD_SHAPE, "%s: shape %s has a zero dimension",
                      label, shape);
        CLCNN_FAIL_IF(count > SIZE_MAX / sizeof(float) / dims[i], CLCNN_STATUS_BAD_SHAPE,
                      "%s: shape %s overflows: its byte size does not fit size_t", label, shape);
        count *= dims[i];
    }
    CLCNN_FAIL_IF(data == NULL, CLCNN_STATUS_INVALID_ARG, "%s: NULL data for shape %s", label,
                  shape);

    /* NumPy's _write_array_header: sorted keys, "'key': repr(value), ", room for axis 0 to
     * grow to GROWTH_AXIS_MAX_DIGITS digits, then _wrap_header pads with spaces and a newline
     * to a multiple of ARRAY_ALIGN, adding a full ARRAY_ALIGN when already aligned. */
    char dict[256];
    char dim0[24];
    int dict_len = snprintf(dict, sizeof dict,
                            "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': %s, }",
                            shape);
    int dim0_len = snprintf(dim0, sizeof dim0, "%zu", dims[0]);
    if (dict_len < 0 || (size_t)dict_len >= sizeof dict || dim0_len < 0)
        return CLCNN_ERR(CLCNN_STATUS_INTERNAL, "%s: header for shape %s does not fit", label,
                         shape);
    size_t text_len = (size_t)dict_len + (size_t)(GROWTH_AXIS_MAX_DIGITS - dim0_len);
    size_t prefix = MAGIC_LEN + VERSION_LEN + 2;
    size_t hlen = text_len + 1;
    hlen += ARRAY_ALIGN - (prefix + hlen) % ARRAY_ALIGN;
    size_t nbytes = count * sizeof(float);
    CLCNN_FAIL_IF(nbytes > SIZE_MAX - prefix - hlen, CLCNN_STATUS_BAD_SHAPE,
                  "%s: shape %s overflows: the file size does not fit size_t", label, shape);
    size_t total = prefix + hlen + nbytes;
    unsigned char *out = malloc(total);
    CLCNN_FAIL_IF(out == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", label,
                  total);

    memcpy(out, npy_magic, MAGIC_LEN);
    out[MAGIC_LEN] = 1;
    out[MAGIC_LEN + 1] = 0;
    out[MAGIC_LEN + 2] = (unsigned char)(hlen & 0xff);
    out[MAGIC_LEN + 3] = (unsigned char)(hlen >> 8);
    memcpy(out + prefix, dict, (size_t)dict_len);
    memset(out + prefix + dict_len, ' ', hlen - 1 - (size_t)dict_len);
    out[prefix + hlen - 1] = '\n';
    encode_f32le(out + prefix + hlen, data, count);
    *bytes = out;
    *size = total;
    return CLCNN_OK;
}

clcnn_status clcnn_npy_serialize(int rank, const size_t *dims, const float *data, void **bytes,
                                 size_t *size)
{
    return serialize("npy", rank, dims, data, bytes, size);
}

clcnn_status clcnn_npy_save(const char *path, int rank, const size_t *dims, const float *data)
{
    CLCNN_FAIL_IF(path == NULL, CLCNN_STATUS_INVALID_ARG, "npy: save: NULL path");
    void *bytes;
    size_t size;
    CLCNN_TRY(serialize(path, rank, dims, data, &bytes, &size));
    clcnn_status status = clcnn__file_write_atomic(path, bytes, size);
    free(bytes);
    return status;
}

void clcnn_npy_array_free(clcnn_npy_array *array)
{
    if (array == NULL)
        return;
    free(array->data);
    memset(array, 0, sizeof *array);
}
