/* The model-file parser and formatter: text in, clcnn_model_desc out, strictly, with
 * "file:line:col: expected ..." errors; and the description back to canonical text. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/model.h"
#include "fileio_impl.h"
#include "status_impl.h"

/* Limits that keep a hostile file from describing absurd layers. */
#define MAX_LAYERS 4096
#define MAX_TOKENS 32
#define MAX_DIM ((size_t)1 << 20)
#define MAX_FILE ((size_t)1 << 20)

const char *clcnn_layer_kind_name(clcnn_layer_kind kind)
{
    switch (kind) {
#define KIND_NAME_(name, desc)                                                                     \
    case CLCNN_LAYER_##name:                                                                       \
        return desc;
        CLCNN_LAYER_KIND_LIST(KIND_NAME_)
#undef KIND_NAME_
    default:
        return "unknown";
    }
}

/* ---- keywords ------------------------------------------------------------------------- */

enum { GLOBAL_POOL = -1 };

typedef struct keyword {
    const char *token;
    clcnn_layer_kind kind;
    int sub;         /* POOL: the pool kind or GLOBAL_POOL; ACT: the act kind */
    int positionals; /* values after the keyword */
    unsigned options;
} keyword;

/* Options (key=value) and flags (bare words). */
enum {
    OPT_STRIDE = 1u << 0,
    OPT_PAD = 1u << 1,
    OPT_DILATION = 1u << 2,
    OPT_GROUPS = 1u << 3,
    OPT_ALGO = 1u << 4,
    OPT_ALPHA = 1u << 5,
    OPT_NAME = 1u << 6,
    FLAG_FLIP = 1u << 7,
    FLAG_NOBIAS = 1u << 8,
    FLAG_FROZEN = 1u << 9,
    FLAG_CEIL = 1u << 10,
    FLAG_EXCLUDE_PAD = 1u << 11,
    FLAG_ACT = 1u << 12, /* relu, leaky-relu, ... fused */
};

static const struct {
    unsigned bit;
    const char *word;
} option_words[] = {
    {OPT_STRIDE, "stride="},
    {OPT_PAD, "pad="},
    {OPT_DILATION, "dilation="},
    {OPT_GROUPS, "groups="},
    {OPT_ALGO, "algo="},
    {OPT_ALPHA, "alpha="},
    {OPT_NAME, "name="},
    {FLAG_FLIP, "flip"},
    {FLAG_NOBIAS, "nobias"},
    {FLAG_FROZEN, "frozen"},
    {FLAG_CEIL, "ceil"},
    {FLAG_EXCLUDE_PAD, "exclude-pad"},
    {FLAG_ACT, "relu|leaky-relu|elu|sigmoid|tanh"},
};

#define CONV_OPTIONS                                                                               \
    (OPT_STRIDE | OPT_PAD | OPT_DILATION | OPT_GROUPS | OPT_ALGO | OPT_ALPHA | OPT_NAME |          \
     FLAG_FLIP | FLAG_NOBIAS | FLAG_FROZEN | FLAG_ACT)
#define POOL_OPTIONS (OPT_STRIDE | OPT_PAD | OPT_NAME | FLAG_CEIL)

static const keyword keywords[] = {
    {"input", CLCNN_LAYER_INPUT, 0, 1, 0},
    {"conv", CLCNN_LAYER_CONV, 0, 2, CONV_OPTIONS},
    {"maxpool", CLCNN_LAYER_POOL, CLCNN_POOL_MAX, 1, POOL_OPTIONS},
    {"avgpool", CLCNN_LAYER_POOL, CLCNN_POOL_AVG, 1, POOL_OPTIONS | FLAG_EXCLUDE_PAD},
    {"l2pool", CLCNN_LAYER_POOL, CLCNN_POOL_L2, 1, POOL_OPTIONS},
    {"globalavgpool", CLCNN_LAYER_POOL, GLOBAL_POOL, 0, OPT_NAME},
    {"adaptiveavgpool", CLCNN_LAYER_ADAPTIVE_AVGPOOL, 0, 1, OPT_NAME},
    {"fc", CLCNN_LAYER_FC, 0, 1, OPT_ALPHA | OPT_NAME | FLAG_NOBIAS | FLAG_FROZEN | FLAG_ACT},
    {"dropout", CLCNN_LAYER_DROPOUT, 0, 1, OPT_NAME},
    {"softmax", CLCNN_LAYER_SOFTMAX, 0, 0, OPT_NAME},
#define ACT_KEYWORD_(name, token, value, alpha)                                                    \
    {token, CLCNN_LAYER_ACT, CLCNN_ACT_##name, 0, OPT_ALPHA | OPT_NAME},
    CLCNN_ACT_KIND_LIST(ACT_KEYWORD_)
#undef ACT_KEYWORD_
};
#define KEYWORD_COUNT (sizeof keywords / sizeof keywords[0])

/* ---- tokens and errors ------------------------------------------------------------------ */

typedef struct token {
    const char *text;
    size_t len;
    unsigned col;
} token;

typedef struct parser {
    const char *source;
    unsigned line;
} parser;

static clcnn_status syntax(const parser *ps, unsigned col, const char *fmt, ...)
    CLCNN_PRINTF_(3, 4);

static clcnn_status syntax(const parser *ps, unsigned col, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return CLCNN_ERR(CLCNN_STATUS_PARSE, "%s:%u:%u: %s", ps->source, ps->line, col, what);
}

static bool token_is(const token *t, const char *word)
{
    return t->text != NULL && strlen(word) == t->len && memcmp(t->text, word, t->len) == 0;
}

/* The token for a message: at most 40 characters. */
#define TOK(t) (int)((t)->len > 40 ? 40 : (t)->len), (t)->text

/* ---- values ----------------------------------------------------------------------------- */

static bool parse_size_n(const char *s, size_t len, size_t *out)
{
    if (len == 0 || len > 9)
        return false;
    size_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Up to n sizes joined by sep ("5x5", "1x28x28", "2,1"); one value fills all when allow_one. */
static bool parse_sizes(const char *s, size_t len, char sep, int n, bool allow_one, size_t *out)
{
    int count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != sep)
            continue;
        if (count == n || !parse_size_n(s + start, i - start, &out[count]))
            return false;
        count++;
        start = i + 1;
    }
    if (count == 1 && allow_one) {
        for (int k = 1; k < n; k++)
            out[k] = out[0];
        return true;
    }
    return count == n;
}

static clcnn_status value_sizes(const parser *ps, const token *t, size_t skip, char sep, int n,
                                bool allow_one, size_t min, const char *expected, size_t *out)
{
    if (!parse_sizes(t->text + skip, t->len - skip, sep, n, allow_one, out))
        return syntax(ps, t->col + (unsigned)skip, "expected %s, found '%.*s'", expected,
                      (int)(t->len - skip), t->text + skip);
    for (int i = 0; i < n; i++)
        if (out[i] < min || out[i] > MAX_DIM)
            return syntax(ps, t->col + (unsigned)skip, "%s: %zu is out of range (%zu to %zu)",
                          expected, out[i], min, MAX_DIM);
    return CLCNN_OK;
}

static clcnn_status value_float(const parser *ps, const token *t, size_t skip, float lo, float hi,
                                bool hi_open, const char *expected, float *out)
{
    char buf[64];
    size_t len = t->len - skip;
    char *end = NULL;
    float v = NAN;
    if (len > 0 && len < sizeof buf) {
        memcpy(buf, t->text + skip, len);
        buf[len] = '\0';
        v = strtof(buf, &end);
    }
    if (end == NULL || *end != '\0' || !isfinite(v) || end == buf)
        return syntax(ps, t->col + (unsigned)skip, "expected %s, found '%.*s'", expected, (int)len,
                      t->text + skip);
    if (v < lo || v > hi || (hi_open && v >= hi))
        return syntax(ps, t->col + (unsigned)skip, "%s: %g is out of range [%g, %g%s", expected,
                      (double)v, (double)lo, (double)hi, hi_open ? ")" : "]");
    *out = v;
    return CLCNN_OK;
}

/* ---- one line --------------------------------------------------------------------------- */

static const keyword *find_keyword(const token *t)
{
    for (size_t i = 0; i < KEYWORD_COUNT; i++)
        if (token_is(t, keywords[i].token))
            return &keywords[i];
    return NULL;
}

static bool act_of(const token *t, clcnn_act_kind *kind)
{
#define ACT_MATCH_(name, tok, value, alpha)                                                        \
    if (token_is(t, tok)) {                                                                        \
        *kind = CLCNN_ACT_##name;                                                                  \
        return true;                                                                               \
    }
    CLCNN_ACT_KIND_LIST(ACT_MATCH_)
#undef ACT_MATCH_
    return false;
}

static void list_options(unsigned allowed, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof option_words / sizeof option_words[0]; i++) {
        if (!(allowed & option_words[i].bit))
            continue;
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", option_words[i].word);
        if (w < 0 || (size_t)w >= size - used)
            return;
        used += (size_t)w;
    }
}

static clcnn_status positionals(const parser *ps, const keyword *kw, const token *tok,
                                clcnn_layer_desc *l)
{
    size_t v[3];
    switch (kw->kind) {
    case CLCNN_LAYER_INPUT:
        CLCNN_TRY(value_sizes(ps, &tok[1], 0, 'x', 3, false, 1, "an input shape CxHxW", v));
        l->channels = v[0];
        l->height = v[1];
        l->width = v[2];
        break;
    case CLCNN_LAYER_CONV:
        CLCNN_TRY(value_sizes(ps, &tok[1], 0, ',', 1, false, 1, "the output channel count", v));
        l->outputs = v[0];
        CLCNN_TRY(value_sizes(ps, &tok[2], 0, 'x', 2, true, 1, "a kernel size like 5x5", v));
        l->kernel_h = v[0];
        l->kernel_w = v[1];
        break;
    case CLCNN_LAYER_POOL:
        if (kw->sub == GLOBAL_POOL)
            break;
        CLCNN_TRY(value_sizes(ps, &tok[1], 0, 'x', 2, true, 1, "a window size like 2x2", v));
        l->pool.window_h = l->pool.stride_h = v[0];
        l->pool.window_w = l->pool.stride_w = v[1];
        break;
    case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
        CLCNN_TRY(value_sizes(ps, &tok[1], 0, 'x', 2, true, 1, "an output size like 6x6", v));
        l->height = v[0];
        l->width = v[1];
        break;
    case CLCNN_LAYER_FC:
        CLCNN_TRY(value_sizes(ps, &tok[1], 0, ',', 1, false, 1, "the output feature count", v));
        l->outputs = v[0];
        break;
    case CLCNN_LAYER_DROPOUT:
        CLCNN_TRY(
            value_float(ps, &tok[1], 0, 0.0f, 1.0f, true, "a dropout probability", &l->dropout));
        break;
    default:
        break;
    }
    return CLCNN_OK;
}

static bool valid_name(const token *t, size_t skip)
{
    size_t len = t->len - skip;
    if (len == 0 || len > CLCNN_LAYER_NAME_MAX ||
        !(isalpha((unsigned char)t->text[skip]) || t->text[skip] == '_'))
        return false;
    for (size_t i = skip; i < t->len; i++)
        if (!isalnum((unsigned char)t->text[i]) && t->text[i] != '_' && t->text[i] != '-')
            return false;
    return true;
}

/* One key=value or flag token. *seen guards against repeats. */
static clcnn_status option(const parser *ps, const keyword *kw, const token *t, unsigned *seen,
                           clcnn_layer_desc *l, bool *alpha_given)
{
    unsigned bit = 0;
    size_t skip = 0;
    for (size_t i = 0; i < sizeof option_words / sizeof option_words[0]; i++) {
        const char *w = option_words[i].word;
        size_t n = strlen(w);
        bool keyed = w[n - 1] == '=';
        if ((keyed && t->text != NULL && t->len >= n && memcmp(t->text, w, n) == 0) ||
            (!keyed && token_is(t, w))) {
            bit = option_words[i].bit;
            skip = keyed ? n : 0;
            break;
        }
    }
    clcnn_act_kind act = CLCNN_ACT_RELU;
    if (bit == 0 && act_of(t, &act))
        bit = FLAG_ACT;
    if (bit == 0 || !(kw->options & bit)) {
        char known[256];
        list_options(kw->options, known, sizeof known);
        return syntax(ps, t->col, "unknown option '%.*s' for %s (expected %s)", TOK(t), kw->token,
                      known[0] ? known : "no options");
    }
    if (*seen & bit)
        return syntax(ps, t->col, "option '%.*s' given twice", TOK(t));
    *seen |= bit;
    size_t v[2];
    switch (bit) {
    case OPT_STRIDE:
        CLCNN_TRY(value_sizes(ps, t, skip, ',', 2, true, 1, "a stride like 2 or 2,1", v));
        if (kw->kind == CLCNN_LAYER_CONV) {
            l->conv.stride_h = v[0];
            l->conv.stride_w = v[1];
        } else {
            l->pool.stride_h = v[0];
            l->pool.stride_w = v[1];
        }
        break;
    case OPT_PAD:
        CLCNN_TRY(value_sizes(ps, t, skip, ',', 2, true, 0, "a padding like 1 or 1,0", v));
        if (kw->kind == CLCNN_LAYER_CONV) {
            l->conv.pad_h = v[0];
            l->conv.pad_w = v[1];
        } else {
            l->pool.pad_h = v[0];
            l->pool.pad_w = v[1];
        }
        break;
    case OPT_DILATION:
        CLCNN_TRY(value_sizes(ps, t, skip, ',', 2, true, 1, "a dilation like 2 or 2,1", v));
        l->conv.dilation_h = v[0];
        l->conv.dilation_w = v[1];
        break;
    case OPT_GROUPS:
        CLCNN_TRY(value_sizes(ps, t, skip, ',', 1, false, 1, "a group count", v));
        l->conv.groups = v[0];
        break;
    case OPT_ALGO: {
        char name[32] = "";
        size_t len = t->len - skip;
        if (len > 0 && len < sizeof name) {
            memcpy(name, t->text + skip, len);
            name[len] = '\0';
        }
        if (name[0] == '\0' || clcnn_conv_algo_parse(name, &l->algo) != CLCNN_OK)
            return syntax(ps, t->col + (unsigned)skip,
                          "expected an algorithm (auto, direct, gemm, winograd2, winograd4, "
                          "winograd4_split), found '%.*s'",
                          (int)(len > 40 ? 40 : len), t->text + skip);
        break;
    }
    case OPT_ALPHA:
        CLCNN_TRY(value_float(ps, t, skip, 0.0f, 1e6f, false, "an alpha >= 0", &l->act.alpha));
        *alpha_given = true;
        break;
    case OPT_NAME:
        if (!valid_name(t, skip))
            return syntax(ps, t->col + (unsigned)skip,
                          "expected a name of letters, digits, '_' and '-' starting with a letter "
                          "(at most %d characters), found '%.*s'",
                          CLCNN_LAYER_NAME_MAX, (int)(t->len - skip > 40 ? 40 : t->len - skip),
                          t->text + skip);
        memcpy(l->name, t->text + skip, t->len - skip);
        l->name[t->len - skip] = '\0';
        break;
    case FLAG_FLIP:
        l->conv.mode = CLCNN_CONV_CONVOLUTION;
        break;
    case FLAG_NOBIAS:
        l->bias = false;
        break;
    case FLAG_FROZEN:
        l->frozen = true;
        break;
    case FLAG_CEIL:
        l->pool.ceil_mode = true;
        break;
    case FLAG_EXCLUDE_PAD:
        l->pool.kind = CLCNN_POOL_AVG_EXCLUDE_PAD;
        break;
    case FLAG_ACT:
        l->has_act = true;
        l->act = clcnn_act_params_default(act);
        break;
    default:
        break;
    }
    return CLCNN_OK;
}

/* Default names count per family: conv1, pool1, fc1, relu1, dropout1, softmax1, input. */
typedef struct name_counters {
    unsigned conv, pool, fc, act[CLCNN_ACT_KIND_COUNT], dropout, softmax;
} name_counters;

static void default_name(const clcnn_layer_desc *l, name_counters *c, char *buf, size_t size)
{
    switch (l->kind) {
    case CLCNN_LAYER_INPUT:
        snprintf(buf, size, "input");
        break;
    case CLCNN_LAYER_CONV:
        snprintf(buf, size, "conv%u", ++c->conv);
        break;
    case CLCNN_LAYER_POOL:
    case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
        snprintf(buf, size, "pool%u", ++c->pool);
        break;
    case CLCNN_LAYER_FC:
        snprintf(buf, size, "fc%u", ++c->fc);
        break;
    case CLCNN_LAYER_ACT:
        snprintf(buf, size, "%s%u", clcnn_act_kind_name(l->act.kind), ++c->act[l->act.kind]);
        break;
    case CLCNN_LAYER_DROPOUT:
        snprintf(buf, size, "dropout%u", ++c->dropout);
        break;
    default:
        snprintf(buf, size, "softmax%u", ++c->softmax);
        break;
    }
}

static clcnn_status parse_line(const parser *ps, token *tok, int ntok, clcnn_layer_desc *l,
                               const keyword **kw_out)
{
    const keyword *kw = find_keyword(&tok[0]);
    if (kw == NULL)
        return syntax(ps, tok[0].col,
                      "unknown layer '%.*s' (expected input, conv, maxpool, avgpool, l2pool, "
                      "globalavgpool, adaptiveavgpool, fc, relu, leaky-relu, elu, sigmoid, tanh, "
                      "dropout or softmax)",
                      TOK(&tok[0]));
    memset(l, 0, sizeof *l);
    l->kind = kw->kind;
    l->line = ps->line;
    l->conv = clcnn_conv_params_default();
    l->bias = kw->kind == CLCNN_LAYER_CONV || kw->kind == CLCNN_LAYER_FC;
    l->algo = CLCNN_CONV_ALGO_AUTO;
    if (kw->kind == CLCNN_LAYER_POOL) {
        l->pool = clcnn_pool_params_default(kw->sub == GLOBAL_POOL ? CLCNN_POOL_AVG
                                                                   : (clcnn_pool_kind)kw->sub);
        l->pool.global = kw->sub == GLOBAL_POOL;
    }
    if (kw->kind == CLCNN_LAYER_ACT) {
        l->has_act = true;
        l->act = clcnn_act_params_default((clcnn_act_kind)kw->sub);
    }
    if (ntok - 1 < kw->positionals) {
        const token *last = &tok[ntok - 1];
        return syntax(ps, last->col + (unsigned)last->len + 1, "%s needs %d value%s after it",
                      kw->token, kw->positionals, kw->positionals == 1 ? "" : "s");
    }
    for (int i = 1; i <= kw->positionals; i++)
        if (memchr(tok[i].text, '=', tok[i].len) != NULL)
            return syntax(ps, tok[i].col, "%s needs %d value%s before options such as '%.*s'",
                          kw->token, kw->positionals, kw->positionals == 1 ? "" : "s",
                          TOK(&tok[i]));
    CLCNN_TRY(positionals(ps, kw, tok, l));
    unsigned seen = 0;
    bool alpha_given = false;
    for (int i = 1 + kw->positionals; i < ntok; i++)
        CLCNN_TRY(option(ps, kw, &tok[i], &seen, l, &alpha_given));
    if (alpha_given &&
        (!l->has_act || (l->act.kind != CLCNN_ACT_LEAKY_RELU && l->act.kind != CLCNN_ACT_ELU)))
        return syntax(ps, tok[0].col, "alpha= applies to leaky-relu and elu only");
    if (kw->kind == CLCNN_LAYER_POOL && !l->pool.global &&
        (l->pool.pad_h >= l->pool.window_h || l->pool.pad_w >= l->pool.window_w))
        return syntax(ps, tok[0].col, "padding %zu,%zu must be smaller than the window %zux%zu",
                      l->pool.pad_h, l->pool.pad_w, l->pool.window_h, l->pool.window_w);
    *kw_out = kw;
    return CLCNN_OK;
}

/* Splits a line (comment removed) into tokens; returns the count, or -1 when over the limit. */
static int tokenize(const char *line, size_t len, token *tok)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (n == MAX_TOKENS)
            return -1;
        tok[n].text = line + start;
        tok[n].len = i - start;
        tok[n].col = (unsigned)(start + 1);
        n++;
    }
    return n;
}

static clcnn_status check_model(const parser *ps, const clcnn_model_desc *m)
{
    if (m->count == 0)
        return CLCNN_ERR(CLCNN_STATUS_PARSE, "%s: no layers (expected 'input CxHxW' first)",
                         ps->source);
    for (size_t i = 0; i < m->count; i++) {
        const clcnn_layer_desc *l = &m->layers[i];
        parser at = {ps->source, l->line};
        if ((i == 0) != (l->kind == CLCNN_LAYER_INPUT))
            return syntax(&at, 1,
                          i == 0 ? "the first layer must be 'input CxHxW'"
                                 : "'input' may only be the first layer");
        if (l->kind == CLCNN_LAYER_SOFTMAX && i + 1 != m->count)
            return syntax(&at, 1, "softmax must be the last layer");
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->layers[j].name, l->name) == 0)
                return syntax(&at, 1, "layer name '%s' is already used on line %u", l->name,
                              m->layers[j].line);
    }
    return CLCNN_OK;
}

clcnn_status clcnn_model_parse(const char *text, size_t size, const char *source,
                               clcnn_model_desc *model)
{
    CLCNN_FAIL_IF(text == NULL || model == NULL, CLCNN_STATUS_INVALID_ARG,
                  "model_parse: NULL argument");
    parser ps = {source != NULL ? source : "<model>", 0};
    clcnn_model_desc m = {0, NULL};
    size_t cap = 0;
    name_counters names;
    memset(&names, 0, sizeof names);
    clcnn_status st = CLCNN_OK;
    size_t pos = 0;
    while (pos < size && st == CLCNN_OK) {
        const char *line = text + pos;
        size_t len = 0;
        while (pos + len < size && line[len] != '\n')
            len++;
        pos += len + 1;
        ps.line++;
        size_t content = len;
        for (size_t i = 0; i < len; i++) {
            if (line[i] == '#') {
                content = i;
                break;
            }
            if (line[i] == '\0' || (line[i] == '\r' && i + 1 != len) ||
                (!isprint((unsigned char)line[i]) && line[i] != '\t' && line[i] != '\r')) {
                st = syntax(&ps, (unsigned)i + 1, "unexpected byte 0x%02x", (unsigned char)line[i]);
                break;
            }
        }
        if (st != CLCNN_OK)
            break;
        if (content > 0 && line[content - 1] == '\r')
            content--;
        token tok[MAX_TOKENS] = {{NULL, 0, 0}};
        int ntok = tokenize(line, content, tok);
        if (ntok < 0) {
            st = syntax(&ps, 1, "more than %d tokens on one line", MAX_TOKENS);
            break;
        }
        if (ntok == 0)
            continue;
        if (m.count == MAX_LAYERS) {
            st = syntax(&ps, 1, "more than %d layers", MAX_LAYERS);
            break;
        }
        if (m.count == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            clcnn_layer_desc *grown = realloc(m.layers, ncap * sizeof *grown);
            if (grown == NULL) {
                st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "model_parse: out of memory");
                break;
            }
            m.layers = grown;
            cap = ncap;
        }
        clcnn_layer_desc *l = &m.layers[m.count];
        const keyword *kw = NULL;
        st = parse_line(&ps, tok, ntok, l, &kw);
        if (st != CLCNN_OK)
            break;
        /* Default names number a family's layers in order, whether or not a layer is named:
         * conv2 is always the second convolution. */
        char name[CLCNN_LAYER_NAME_MAX + 1] = "";
        default_name(l, &names, name, sizeof name);
        if (l->name[0] == '\0')
            memcpy(l->name, name, sizeof name);
        m.count++;
    }
    if (st == CLCNN_OK)
        st = check_model(&ps, &m);
    if (st != CLCNN_OK) {
        free(m.layers);
        return st;
    }
    *model = m;
    return CLCNN_OK;
}

clcnn_status clcnn_model_load(const char *path, clcnn_model_desc *model)
{
    CLCNN_FAIL_IF(path == NULL || model == NULL, CLCNN_STATUS_INVALID_ARG,
                  "model_load: NULL argument");
    void *data = NULL;
    size_t size = 0;
    CLCNN_TRY(clcnn__file_read_all(path, MAX_FILE, &data, &size));
    clcnn_status st = clcnn_model_parse(data, size, path, model);
    free(data);
    return st;
}

void clcnn_model_desc_free(clcnn_model_desc *model)
{
    if (model == NULL)
        return;
    free(model->layers);
    model->layers = NULL;
    model->count = 0;
}

/* ---- formatting ------------------------------------------------------------------------- */

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) CLCNN_PRINTF_(2, 3);

static void put(text_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void put_pair(text_buf *b, const char *key, size_t h, size_t w, size_t dflt)
{
    if (h == dflt && w == dflt)
        return;
    if (h == w)
        put(b, " %s=%zu", key, h);
    else
        put(b, " %s=%zu,%zu", key, h, w);
}

static void put_act(text_buf *b, const clcnn_layer_desc *l, bool keyword)
{
    if (!l->has_act)
        return;
    if (!keyword)
        put(b, " %s", clcnn_act_kind_name(l->act.kind));
    if (l->act.alpha != clcnn_act_params_default(l->act.kind).alpha)
        put(b, " alpha=%.9g", (double)l->act.alpha);
}

static void format_layer(text_buf *b, const clcnn_layer_desc *l)
{
    const clcnn_conv_params *c = &l->conv;
    const clcnn_pool_params *p = &l->pool;
    switch (l->kind) {
    case CLCNN_LAYER_INPUT:
        put(b, "input %zux%zux%zu", l->channels, l->height, l->width);
        break;
    case CLCNN_LAYER_CONV:
        put(b, "conv %zu %zux%zu", l->outputs, l->kernel_h, l->kernel_w);
        put_pair(b, "stride", c->stride_h, c->stride_w, 1);
        put_pair(b, "pad", c->pad_h, c->pad_w, 0);
        put_pair(b, "dilation", c->dilation_h, c->dilation_w, 1);
        if (c->groups != 1)
            put(b, " groups=%zu", c->groups);
        if (c->mode == CLCNN_CONV_CONVOLUTION)
            put(b, " flip");
        if (!l->bias)
            put(b, " nobias");
        put_act(b, l, false);
        if (l->algo != CLCNN_CONV_ALGO_AUTO)
            put(b, " algo=%s", clcnn_conv_algo_name(l->algo));
        if (l->frozen)
            put(b, " frozen");
        break;
    case CLCNN_LAYER_POOL:
        if (p->global) {
            put(b, "globalavgpool");
            break;
        }
        put(b, "%s %zux%zu",
            p->kind == CLCNN_POOL_MAX  ? "maxpool"
            : p->kind == CLCNN_POOL_L2 ? "l2pool"
                                       : "avgpool",
            p->window_h, p->window_w);
        if (p->stride_h != p->window_h || p->stride_w != p->window_w)
            put(b, p->stride_h == p->stride_w ? " stride=%zu" : " stride=%zu,%zu", p->stride_h,
                p->stride_w);
        put_pair(b, "pad", p->pad_h, p->pad_w, 0);
        if (p->ceil_mode)
            put(b, " ceil");
        if (p->kind == CLCNN_POOL_AVG_EXCLUDE_PAD)
            put(b, " exclude-pad");
        break;
    case CLCNN_LAYER_ADAPTIVE_AVGPOOL:
        put(b, "adaptiveavgpool %zux%zu", l->height, l->width);
        break;
    case CLCNN_LAYER_FC:
        put(b, "fc %zu", l->outputs);
        if (!l->bias)
            put(b, " nobias");
        put_act(b, l, false);
        if (l->frozen)
            put(b, " frozen");
        break;
    case CLCNN_LAYER_ACT:
        put(b, "%s", clcnn_act_kind_name(l->act.kind));
        put_act(b, l, true);
        break;
    case CLCNN_LAYER_DROPOUT:
        put(b, "dropout %.9g", (double)l->dropout);
        break;
    default:
        put(b, "softmax");
        break;
    }
}

clcnn_status clcnn_model_format(const clcnn_model_desc *model, char **text)
{
    CLCNN_FAIL_IF(model == NULL || text == NULL || (model->count > 0 && model->layers == NULL),
                  CLCNN_STATUS_INVALID_ARG, "model_format: NULL argument");
    text_buf b = {NULL, 0, 0, false};
    name_counters names;
    memset(&names, 0, sizeof names);
    for (size_t i = 0; i < model->count; i++) {
        const clcnn_layer_desc *l = &model->layers[i];
        format_layer(&b, l);
        char name[CLCNN_LAYER_NAME_MAX + 1];
        default_name(l, &names, name, sizeof name);
        if (strcmp(name, l->name) != 0)
            put(&b, " name=%s", l->name);
        put(&b, "\n");
    }
    if (b.len == 0)
        put(&b, "%s", "");
    if (b.failed) {
        free(b.data);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "model_format: out of memory");
    }
    *text = b.data;
    return CLCNN_OK;
}
