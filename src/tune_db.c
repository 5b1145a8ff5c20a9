/* The tuning database file: JSON through cJSON, {"schema": 1, "device": {...}, "clcnn": "...",
 * "entries": [{kernel, dtype, problem, solver, params, time_us, verified}]}. A file that cannot
 * be read is ignored with a warning; writes merge with what is on disk and replace atomically. */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fileio_impl.h"
#include "log_impl.h"
#include "status_impl.h"
#include "tune_db_impl.h"

#define SCHEMA 1
/* Where the database shipped with the library is installed (meson defines it). */
#ifndef CLCNN_TUNE_SHIPPED_DIR
#define CLCNN_TUNE_SHIPPED_DIR ""
#endif
/* A database beyond this is not one clcnn wrote. */
#define MAX_DB_BYTES ((size_t)64 << 20)

static void slug(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool dash = false;
    for (; *in != '\0' && n + 1 < size; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c)) {
            out[n++] = (char)tolower(c);
            dash = false;
        } else if (!dash && n > 0) {
            out[n++] = '-';
            dash = true;
        }
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

/* "<dir>/<vendor>/<device-slug>-<driver-slug>.json" (malloc'd), or NULL when out of memory. */
static char *file_in(const clcnn_device *d, const char *dir)
{
    char name[200], driver[64];
    slug(d->info.name, name, sizeof name);
    slug(d->info.driver_version, driver, sizeof driver);
    const char *vendor = clcnn_vendor_name(d->info.vendor);
    size_t n = strlen(dir) + strlen(vendor) + strlen(name) + strlen(driver) + 32;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s/%s-%s.json", dir, vendor, name, driver);
    return p;
}

clcnn_status clcnn__tune_db_path(const clcnn_device *d, char **path)
{
    *path = NULL;
    if (d->cache_dir == NULL)
        return CLCNN_OK;
    size_t n = strlen(d->cache_dir) + 8;
    char *dir = malloc(n);
    CLCNN_FAIL_IF(dir == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "tune db: out of memory");
    snprintf(dir, n, "%s/tune", d->cache_dir);
    char *p = file_in(d, dir);
    free(dir);
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "tune db: out of memory");
    *path = p;
    return CLCNN_OK;
}

static cJSON *read_db(const char *path);

/* Another driver's shipped file for this device: "<dir>/<vendor>/<device-slug>-*.json" whose
 * "device" "name" is this device's name, the last in name order (usually the newest driver);
 * NULL when there is none. The device's parameters outlive a driver update more often than
 * not, and every point is checked against the constraint again before it is used. */
static char *other_driver_file(const clcnn_device *d, const char *dir)
{
    char name[200];
    slug(d->info.name, name, sizeof name);
    const char *vendor = clcnn_vendor_name(d->info.vendor);
    size_t n = strlen(dir) + strlen(vendor) + 2;
    char *vdir = malloc(n);
    if (vdir == NULL)
        return NULL;
    snprintf(vdir, n, "%s/%s", dir, vendor);
    DIR *dd = opendir(vdir);
    char *best = NULL;
    const size_t prefix = strlen(name);
    const struct dirent *e;
    while (dd != NULL && (e = readdir(dd)) != NULL) {
        const char *f = e->d_name;
        const size_t len = strlen(f);
        if (len <= prefix + 6 || strncmp(f, name, prefix) != 0 || f[prefix] != '-' ||
            strcmp(f + len - 5, ".json") != 0)
            continue;
        size_t m = strlen(vdir) + len + 2;
        char *p = malloc(m);
        if (p == NULL)
            break;
        snprintf(p, m, "%s/%s", vdir, f);
        cJSON *root = read_db(p);
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(dev, "name");
        const bool same = cJSON_IsString(nm) && strcmp(nm->valuestring, d->info.name) == 0;
        cJSON_Delete(root);
        if (same && (best == NULL || strcmp(p, best) > 0)) {
            free(best);
            best = p;
        } else {
            free(p);
        }
    }
    if (dd != NULL)
        closedir(dd);
    free(vdir);
    return best;
}

clcnn_status clcnn__tune_db_shipped_path(const clcnn_device *d, char **path)
{
    *path = NULL;
    const char *dir = getenv("CLCNN_TUNE_SHIPPED");
    if (dir == NULL)
        dir = CLCNN_TUNE_SHIPPED_DIR;
    if (*dir == '\0' || strcmp(dir, "off") == 0)
        return CLCNN_OK;
    char *p = file_in(d, dir);
    CLCNN_FAIL_IF(p == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "tune db: out of memory");
    FILE *probe = fopen(p, "rb");
    if (probe != NULL) {
        fclose(probe);
    } else {
        char *other = other_driver_file(d, dir);
        if (other != NULL) {
            CLCNN_DEBUG("tune", "no shipped tuning database for %s driver %s; using %s",
                        d->info.name, d->info.driver_version, other);
            free(p);
            p = other;
        }
    }
    *path = p;
    return CLCNN_OK;
}

/* The entries array of a parsed database, or NULL when the document is not one of ours. */
static cJSON *entries_of(cJSON *root, const char **why)
{
    if (!cJSON_IsObject(root)) {
        *why = "not a JSON object";
        return NULL;
    }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (!cJSON_IsNumber(schema) || schema->valuedouble != SCHEMA) {
        *why = "missing or unknown \"schema\"";
        return NULL;
    }
    cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    if (!cJSON_IsArray(entries)) {
        *why = "\"entries\" is not an array";
        return NULL;
    }
    return entries;
}

cJSON *clcnn__tune_db_parse(const char *text, size_t size, const char **why)
{
    cJSON *root = cJSON_ParseWithLength(text, size);
    *why = "not valid JSON";
    if (root == NULL || entries_of(root, why) == NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Reads the file: NULL when absent; NULL and a warning when unreadable or corrupt. */
static cJSON *read_db(const char *path)
{
    FILE *probe = fopen(path, "rb");
    if (probe == NULL)
        return NULL;
    fclose(probe);
    void *data = NULL;
    size_t size = 0;
    if (clcnn__file_read_all(path, MAX_DB_BYTES, &data, &size) != CLCNN_OK) {
        CLCNN_WARN("tune", "ignoring tuning database %s: %s", path, clcnn_last_error());
        clcnn_clear_error();
        return NULL;
    }
    const char *why = NULL;
    cJSON *root = clcnn__tune_db_parse(data, size, &why);
    free(data);
    if (root == NULL)
        CLCNN_WARN("tune", "ignoring tuning database %s: %s", path, why);
    return root;
}

static bool str_field_is(const cJSON *obj, const char *field, const char *value)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, field);
    return cJSON_IsString(f) && strcmp(f->valuestring, value) == 0;
}

static cJSON *find_entry(cJSON *entries, const char *kernel, const char *problem)
{
    cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        if (cJSON_IsObject(e) && str_field_is(e, "kernel", kernel) &&
            str_field_is(e, "problem", problem) && str_field_is(e, "dtype", "f32"))
            return e;
    }
    return NULL;
}

static void memo_clear(clcnn_device *d);

void clcnn__tune_db_forget(clcnn_device *d)
{
    memo_clear(d);
    cJSON_Delete(d->tune_db);
    cJSON_Delete(d->tune_db_shipped);
    d->tune_db = NULL;
    d->tune_db_shipped = NULL;
    d->tune_db_loaded = false;
}

static void load_shipped_locked(clcnn_device *d)
{
    char *path = NULL;
    if (clcnn__tune_db_shipped_path(d, &path) == CLCNN_OK && path != NULL)
        d->tune_db_shipped = read_db(path);
    free(path);
    clcnn_clear_error();
}

/* Reads the user's and the shipped database on first use. Call with program_lock held. */
static void load_locked(clcnn_device *d)
{
    if (d->tune_db_loaded)
        return;
    char *path = NULL;
    if (clcnn__tune_db_path(d, &path) == CLCNN_OK && path != NULL)
        d->tune_db = read_db(path);
    free(path);
    load_shipped_locked(d);
    d->tune_db_loaded = true;
}

static bool usable(const cJSON *e)
{
    return e != NULL && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "verified"));
}

/* The verified entry for (kernel, problem): the user's when it has one, else the shipped
 * database's, else NULL; [out] shipped (may be NULL) says which. Call with program_lock held. */
static const cJSON *lookup_locked(clcnn_device *d, const char *kernel, const char *problem,
                                  bool *shipped)
{
    load_locked(d);
    const char *why;
    cJSON *mine = d->tune_db != NULL ? entries_of(d->tune_db, &why) : NULL;
    const cJSON *e = mine != NULL ? find_entry(mine, kernel, problem) : NULL;
    if (shipped != NULL)
        *shipped = false;
    if (usable(e))
        return e;
    cJSON *theirs = d->tune_db_shipped != NULL ? entries_of(d->tune_db_shipped, &why) : NULL;
    e = theirs != NULL ? find_entry(theirs, kernel, problem) : NULL;
    if (shipped != NULL)
        *shipped = true;
    return usable(e) ? e : NULL;
}

void clcnn__tune_db_lookup(clcnn_device *d, const char *kernel, const char *problem, char *solver,
                           size_t size, bool *found)
{
    *found = false;
    pthread_mutex_lock(&d->program_lock);
    const cJSON *e = lookup_locked(d, kernel, problem, NULL);
    if (e != NULL) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "solver");
        if (cJSON_IsString(s) && strlen(s->valuestring) < size) {
            snprintf(solver, size, "%s", s->valuestring);
            *found = true;
        }
    }
    pthread_mutex_unlock(&d->program_lock);
}

/* Copies the integers named names[0..count) of the entry's params into [out] values (written
 * only when every one is there). */
static bool params_of(const cJSON *e, const char *const *names, int *values, size_t count)
{
    const cJSON *params = e != NULL ? cJSON_GetObjectItemCaseSensitive(e, "params") : NULL;
    bool ok = cJSON_IsObject(params) && count <= CLCNN__TUNE_DB_MAX_PARAMS;
    int got[CLCNN__TUNE_DB_MAX_PARAMS];
    for (size_t i = 0; ok && i < count; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, names[i]);
        ok = cJSON_IsNumber(v) && v->valuedouble == (double)v->valueint;
        if (ok)
            got[i] = v->valueint;
    }
    if (ok && count > 0)
        memcpy(values, got, count * sizeof *values);
    return ok;
}

void clcnn__tune_db_lookup_params(clcnn_device *d, const char *kernel, const char *problem,
                                  const char *const *names, int *values, size_t count,
                                  bool *complete, bool *found)
{
    *found = false;
    pthread_mutex_lock(&d->program_lock);
    const cJSON *e = lookup_locked(d, kernel, problem, NULL);
    if (params_of(e, names, values, count)) {
        if (complete != NULL)
            *complete = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "complete"));
        *found = true;
    }
    pthread_mutex_unlock(&d->program_lock);
}

/* ---- the nearest stored problem ------------------------------------------------------------- */

/* Splits a problem key into its fields: a lowercase letter, then one number or two joined by
 * 'x' ("u2x1" is u = {2, 1}). Returns the number of fields, 0 when the key is not of that form. */
#define MAX_FIELDS 16
typedef struct key_field {
    char tag;
    unsigned long v[2];
} key_field;

static size_t parse_key(const char *key, key_field *f)
{
    size_t n = 0;
    while (*key != '\0') {
        if (n == MAX_FIELDS || *key < 'a' || *key > 'z' || key[1] < '0' || key[1] > '9')
            return 0;
        f[n].tag = *key;
        char *end;
        f[n].v[0] = f[n].v[1] = strtoul(key + 1, &end, 10);
        if (*end == 'x') {
            if (end[1] < '0' || end[1] > '9')
                return 0;
            f[n].v[1] = strtoul(end + 1, &end, 10);
        }
        key = end;
        n++;
    }
    return n;
}

/* Distance of two keys: the sum over fields of |ln((a+1)/(b+1))| (the mean of the two for a
 * pair); negative when they differ in their fields or in a field named in same. */
static double key_distance(const key_field *a, size_t na, const key_field *b, size_t nb,
                           const char *same)
{
    if (na == 0 || na != nb)
        return -1;
    double dist = 0;
    for (size_t i = 0; i < na; i++) {
        if (a[i].tag != b[i].tag)
            return -1;
        for (int k = 0; k < 2; k++) {
            if (a[i].v[k] == b[i].v[k])
                continue;
            if (strchr(same, a[i].tag) != NULL)
                return -1;
            dist += 0.5 * fabs(log(((double)a[i].v[k] + 1) / ((double)b[i].v[k] + 1)));
        }
    }
    return dist;
}

static int compare_match(const void *pa, const void *pb)
{
    const clcnn__tune_db_match *a = pa, *b = pb;
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    if (a->shipped != b->shipped)
        return a->shipped ? 1 : -1;
    return strcmp(a->problem, b->problem);
}

/* Adds the comparable entries of one database to out (grown as needed); entries of the shipped
 * database whose problem the user's also holds are left out (the user's wins). */
static bool collect(const cJSON *entries, const cJSON *mine, bool shipped, const char *kernel,
                    const key_field *want, size_t nwant, const char *same, const char *const *names,
                    size_t count, clcnn__tune_db_match **out, size_t *n, size_t *cap)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(e, "problem");
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(e, "solver");
        if (!cJSON_IsObject(e) || !usable(e) || !str_field_is(e, "kernel", kernel) ||
            !str_field_is(e, "dtype", "f32") || !cJSON_IsString(pr) || !cJSON_IsString(so) ||
            strlen(pr->valuestring) >= sizeof(*out)->problem ||
            strlen(so->valuestring) >= sizeof(*out)->solver)
            continue;
        if (shipped && mine != NULL && usable(find_entry((cJSON *)mine, kernel, pr->valuestring)))
            continue;
        key_field got[MAX_FIELDS];
        size_t ngot = parse_key(pr->valuestring, got);
        double dist = key_distance(want, nwant, got, ngot, same);
        clcnn__tune_db_match m = {.distance = dist, .shipped = shipped};
        if (dist < 0 || !params_of(e, names, m.values, count))
            continue;
        snprintf(m.problem, sizeof m.problem, "%s", pr->valuestring);
        snprintf(m.solver, sizeof m.solver, "%s", so->valuestring);
        m.complete = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "complete"));
        if (*n == *cap) {
            size_t grown = *cap ? 2 * *cap : 16;
            clcnn__tune_db_match *p = realloc(*out, grown * sizeof *p);
            if (p == NULL)
                return false;
            *out = p;
            *cap = grown;
        }
        (*out)[(*n)++] = m;
    }
    return true;
}

/* Answers of clcnn__tune_db_nearest() kept per device until the databases are read again: the
 * solvers ask on every launch, and walking the entries costs about 0.6 us each (11 us for the
 * 18 shipped ones) against a pipelined launch's 4-7 us. */
#define MEMO_SLOTS 32
#define MEMO_MATCHES 8

typedef struct memo_slot {
    bool used;
    char kernel[48], problem[128], same[16];
    uint64_t names; /* FNV-1a of the names asked for */
    size_t count, n;
    clcnn__tune_db_match m[MEMO_MATCHES];
} memo_slot;

typedef struct tune_memo {
    memo_slot slot[MEMO_SLOTS];
    size_t next; /* the slot the next answer replaces */
} tune_memo;

static uint64_t names_hash(const char *const *names, size_t count)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < count; i++)
        for (const char *c = names[i];; c++) {
            h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
            if (*c == '\0')
                break;
        }
    return h;
}

/* The slot holding this question's answer, or NULL. Call with program_lock held. */
static memo_slot *memo_find(clcnn_device *d, const char *kernel, const char *problem,
                            const char *same, uint64_t names, size_t count)
{
    tune_memo *memo = d->tune_db_memo;
    for (size_t i = 0; memo != NULL && i < MEMO_SLOTS; i++) {
        memo_slot *sl = &memo->slot[i];
        if (sl->used && sl->names == names && sl->count == count &&
            strcmp(sl->kernel, kernel) == 0 && strcmp(sl->problem, problem) == 0 &&
            strcmp(sl->same, same) == 0)
            return sl;
    }
    return NULL;
}

/* Keeps an answer (the first MEMO_MATCHES matches, all that were asked for when max <= that).
 * Call with program_lock held. */
static void memo_keep(clcnn_device *d, const char *kernel, const char *problem, const char *same,
                      uint64_t names, size_t count, const clcnn__tune_db_match *m, size_t n)
{
    if (strlen(kernel) >= sizeof((memo_slot *)0)->kernel ||
        strlen(problem) >= sizeof((memo_slot *)0)->problem ||
        strlen(same) >= sizeof((memo_slot *)0)->same)
        return;
    if (d->tune_db_memo == NULL)
        d->tune_db_memo = calloc(1, sizeof(tune_memo));
    tune_memo *memo = d->tune_db_memo;
    if (memo == NULL)
        return;
    memo_slot *sl = &memo->slot[memo->next];
    memo->next = (memo->next + 1) % MEMO_SLOTS;
    sl->used = true;
    snprintf(sl->kernel, sizeof sl->kernel, "%s", kernel);
    snprintf(sl->problem, sizeof sl->problem, "%s", problem);
    snprintf(sl->same, sizeof sl->same, "%s", same);
    sl->names = names;
    sl->count = count;
    sl->n = n < MEMO_MATCHES ? n : MEMO_MATCHES;
    if (sl->n > 0)
        memcpy(sl->m, m, sl->n * sizeof *m);
}

static void memo_clear(clcnn_device *d)
{
    free(d->tune_db_memo);
    d->tune_db_memo = NULL;
}

size_t clcnn__tune_db_nearest(clcnn_device *d, const char *kernel, const char *problem,
                              const char *same, const char *const *names, size_t count,
                              clcnn__tune_db_match *out, size_t max)
{
    key_field want[MAX_FIELDS];
    size_t nwant = parse_key(problem, want);
    if (nwant == 0 || max == 0 || count > CLCNN__TUNE_DB_MAX_PARAMS)
        return 0;
    const uint64_t hash = names_hash(names, count);
    clcnn__tune_db_match *all = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&d->program_lock);
    load_locked(d);
    const memo_slot *known =
        max <= MEMO_MATCHES ? memo_find(d, kernel, problem, same, hash, count) : NULL;
    if (known != NULL) {
        size_t keep = known->n < max ? known->n : max;
        if (keep > 0)
            memcpy(out, known->m, keep * sizeof *out);
        pthread_mutex_unlock(&d->program_lock);
        return keep;
    }
    const char *why;
    const cJSON *mine = d->tune_db != NULL ? entries_of(d->tune_db, &why) : NULL;
    const cJSON *theirs = d->tune_db_shipped != NULL ? entries_of(d->tune_db_shipped, &why) : NULL;
    bool ok = true;
    if (mine != NULL)
        ok = collect(mine, NULL, false, kernel, want, nwant, same, names, count, &all, &n, &cap);
    if (ok && theirs != NULL)
        ok = collect(theirs, mine, true, kernel, want, nwant, same, names, count, &all, &n, &cap);
    if (!ok)
        n = 0;
    if (n > 0)
        qsort(all, n, sizeof *all, compare_match);
    if (ok)
        memo_keep(d, kernel, problem, same, hash, count, all, n);
    pthread_mutex_unlock(&d->program_lock);
    size_t keep = n < max ? n : max;
    if (keep > 0)
        memcpy(out, all, keep * sizeof *out);
    free(all);
    return keep;
}

static cJSON *new_db(const clcnn_device *d)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *dev = cJSON_AddObjectToObject(root, "device");
    cJSON_AddStringToObject(dev, "vendor", clcnn_vendor_name(d->info.vendor));
    cJSON_AddStringToObject(dev, "name", d->info.name);
    cJSON_AddStringToObject(dev, "arch", d->info.arch);
    cJSON_AddStringToObject(dev, "driver", d->info.driver_version);
    cJSON_AddNumberToObject(root, "schema", SCHEMA);
    cJSON_AddStringToObject(root, "clcnn", CLCNN_VERSION_STRING);
    cJSON_AddArrayToObject(root, "entries");
    return root;
}

static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 0;
    char *dir = malloc(n + 2);
    if (dir != NULL) {
        memcpy(dir, path, n);
        dir[n] = '\0';
        if (n == 0)
            memcpy(dir, ".", 2);
    }
    return dir;
}

clcnn_status clcnn__tune_db_write(clcnn_device *d, const clcnn__tune_db_entry *entry)
{
    char *path = NULL;
    CLCNN_TRY(clcnn__tune_db_path(d, &path));
    if (path == NULL)
        return CLCNN_OK;
    pthread_mutex_lock(&d->program_lock);
    /* The shipped database is read before the user's tree below stands for the loaded one. */
    if (!d->tune_db_loaded)
        load_shipped_locked(d);
    cJSON *root = read_db(path);
    if (root == NULL)
        root = new_db(d);
    const char *why;
    cJSON *entries = entries_of(root, &why);
    cJSON *old = find_entry(entries, entry->kernel, entry->problem);
    if (old != NULL)
        cJSON_DetachItemViaPointer(entries, old);
    cJSON_Delete(old);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kernel", entry->kernel);
    cJSON_AddStringToObject(e, "dtype", "f32");
    cJSON_AddStringToObject(e, "problem", entry->problem);
    cJSON_AddStringToObject(e, "solver", entry->solver);
    cJSON *params = cJSON_AddObjectToObject(e, "params");
    for (size_t i = 0; params != NULL && i < entry->nparams; i++)
        cJSON_AddNumberToObject(params, entry->names[i], entry->values[i]);
    cJSON_AddNumberToObject(e, "time_us", entry->time_us);
    if (entry->default_us > 0)
        cJSON_AddNumberToObject(e, "default_us", entry->default_us);
    cJSON_AddBoolToObject(e, "verified", entry->verified);
    cJSON_AddBoolToObject(e, "complete", entry->complete);
    cJSON_AddItemToArray(entries, e);
    char *text = cJSON_Print(root);
    char *dir = directory_of(path);
    clcnn_status st = CLCNN_OK;
    if (text == NULL || dir == NULL)
        st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "tune db: cannot serialize %s", path);
    if (st == CLCNN_OK)
        st = clcnn__mkdir_p(dir);
    if (st == CLCNN_OK)
        st = clcnn__file_write_atomic(path, text, strlen(text));
    /* The next lookup sees what is on disk now, other processes' entries included. */
    memo_clear(d);
    cJSON_Delete(d->tune_db);
    d->tune_db = root;
    d->tune_db_loaded = true;
    pthread_mutex_unlock(&d->program_lock);
    if (st == CLCNN_OK)
        CLCNN_DEBUG("tune", "%s %s -> %s (%.1f us) in %s", entry->kernel, entry->problem,
                    entry->solver, entry->time_us, path);
    free(text);
    free(dir);
    free(path);
    return st;
}

clcnn_status clcnn__tune_db_record(clcnn_device *d, const char *kernel, const char *problem,
                                   const char *solver, double time_us, bool verified)
{
    const clcnn__tune_db_entry e = {.kernel = kernel,
                                    .problem = problem,
                                    .solver = solver,
                                    .time_us = time_us,
                                    .verified = verified,
                                    .complete = true};
    return clcnn__tune_db_write(d, &e);
}
