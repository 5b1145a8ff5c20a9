/* Programs from the embedded .cl sources: an in-memory table per device, then offline binaries
 * (CLCNN_BINARY_DIR), then the on-disk binary cache, then the compiler. Build failures carry the
 * file, the options and the build log. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clcnn_kernels.h"
#include "fileio_impl.h"
#include "log_impl.h"
#include "program_impl.h"
#include "status_impl.h"

/* How much of a build log goes into the error message; the whole log goes to DEBUG. */
#define LOG_IN_MESSAGE 4096

struct clcnn__program_entry {
    char *name;
    uint64_t source_hash;
    char *options; /* the caller's options, not the full command line */
    cl_program program;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

size_t clcnn__round_up(size_t global, size_t local)
{
    if (local == 0)
        return global;
    return (global + local - 1) / local * local;
}

clcnn_status clcnn__program_init(clcnn_device *d)
{
    const char *env = getenv("CLCNN_CACHE_DIR");
    char *dir = NULL;
    if (env != NULL && env[0] != '\0') {
        if (strcmp(env, "off") != 0)
            dir = dup_str(env);
    } else if ((env = getenv("XDG_CACHE_HOME")) != NULL && env[0] == '/') {
        dir = join_path(env, "clcnn");
    } else if ((env = getenv("HOME")) != NULL && env[0] == '/') {
        dir = join_path(env, ".cache/clcnn");
    }
    d->cache_dir = dir;
    const char *bin = getenv("CLCNN_BINARY_DIR");
    if (bin != NULL && bin[0] != '\0') {
        d->binary_dir = dup_str(bin);
        CLCNN_FAIL_IF(d->binary_dir == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                      "program: cannot allocate binary directory name");
    }
    /* The kernel language comes from the device's OpenCL C version, never the platform's:
     * POCL's platform says 3.0 while its CPU device compiles C 1.2 only. */
    const clcnn_device_info *info = &d->info;
    if (info->opencl_c_major > 1 || info->opencl_c_minor >= 2)
        snprintf(d->base_options, sizeof d->base_options, "-cl-std=CL1.2");
    else if (info->opencl_c_minor == 1)
        snprintf(d->base_options, sizeof d->base_options, "-cl-std=CL1.1");
    else
        d->base_options[0] = '\0';
    static _Atomic int cache_dir_logged;
    if (!cache_dir_logged++)
        CLCNN_INFO("program", "binary cache: %s", d->cache_dir ? d->cache_dir : "off");
    return CLCNN_OK;
}

void clcnn__program_cleanup(clcnn_device *d)
{
    for (size_t i = 0; i < d->program_count; i++) {
        clReleaseProgram(d->programs[i].program);
        free(d->programs[i].name);
        free(d->programs[i].options);
    }
    free(d->programs);
    d->programs = NULL;
    d->program_count = d->program_capacity = 0;
    free(d->cache_dir);
    free(d->binary_dir);
    d->cache_dir = d->binary_dir = NULL;
}

/* Everything a binary depends on. Stored whole in each cache entry and compared on load, so a
 * hash collision can never hand back the wrong binary. */
static char *make_key(const clcnn_device *d, const char *name, uint64_t source_hash,
                      const char *full_options)
{
    const clcnn_device_info *i = &d->info;
    const char *fmt = "clcnn-program 1\nclcnn %s\nplatform %s | %s\ndevice %s | %s | %s | %s\n"
                      "source %s %016llx\noptions %s\n";
    int n = snprintf(NULL, 0, fmt, CLCNN_VERSION_STRING, i->platform_name, i->platform_version,
                     i->name, i->vendor_name, i->device_version, i->driver_version, name,
                     (unsigned long long)source_hash, full_options);
    if (n < 0)
        return NULL;
    char *key = malloc((size_t)n + 1);
    if (key != NULL)
        snprintf(key, (size_t)n + 1, fmt, CLCNN_VERSION_STRING, i->platform_name,
                 i->platform_version, i->name, i->vendor_name, i->device_version, i->driver_version,
                 name, (unsigned long long)source_hash, full_options);
    return key;
}

static char *build_log(const clcnn_device *d, cl_program program)
{
    size_t len = 0;
    if (clGetProgramBuildInfo(program, d->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) != CL_SUCCESS)
        return NULL;
    char *log = malloc(len + 1);
    if (log == NULL)
        return NULL;
    if (clGetProgramBuildInfo(program, d->id, CL_PROGRAM_BUILD_LOG, len, log, NULL) != CL_SUCCESS) {
        free(log);
        return NULL;
    }
    log[len] = '\0';
    return log;
}

/* Compiles from source; on failure the message has the file, options and log head. */
static clcnn_status build_from_source(clcnn_device *d, const char *name, const char *source,
                                      size_t size, const char *full_options, cl_program *out)
{
    cl_int err;
    const char *strings[] = {source};
    cl_program prog = clCreateProgramWithSource(d->context, 1, strings, &size, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "program %s: clCreateProgramWithSource", name);
    err = clBuildProgram(prog, 1, &d->id, full_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char *log = build_log(d, prog);
        clReleaseProgram(prog);
        const char *text = log != NULL ? log : "(no build log)";
        CLCNN_DEBUG("program", "build log of %s (options '%s'):\n%s", name, full_options, text);
        clcnn_status st = CLCNN_STATUS_CL_ERROR;
        if (err == CL_BUILD_PROGRAM_FAILURE || err == CL_COMPILE_PROGRAM_FAILURE ||
            err == CL_INVALID_BUILD_OPTIONS)
            st = CLCNN_STATUS_BUILD_FAILED;
        clcnn__set_error(st, err, __FILE__, __LINE__,
                         "program %s: clBuildProgram -> %s on '%s' with options '%s'; build log:\n"
                         "%.*s%s",
                         name, clcnn_cl_error_name(err), d->info.name, full_options, LOG_IN_MESSAGE,
                         text, strlen(text) > LOG_IN_MESSAGE ? "\n[log truncated]" : "");
        free(log);
        return st;
    }
    *out = prog;
    return CLCNN_OK;
}

static clcnn_status program_binary(const clcnn_device *d, const char *name, cl_program prog,
                                   unsigned char **binary, size_t *size)
{
    size_t len = 0;
    cl_int err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "program %s: clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)", name);
    CLCNN_FAIL_IF(len == 0, CLCNN_STATUS_UNSUPPORTED,
                  "program %s: device '%s' returns an empty program binary", name, d->info.name);
    unsigned char *buf = malloc(len);
    CLCNN_FAIL_IF(buf == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "program %s: cannot allocate %zu bytes",
                  name, len);
    unsigned char *ptrs[] = {buf};
    err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL);
    if (err != CL_SUCCESS) {
        free(buf);
        return CLCNN_CL_ERR(err, "program %s: clGetProgramInfo(CL_PROGRAM_BINARIES)", name);
    }
    *binary = buf;
    *size = len;
    return CLCNN_OK;
}

/* Loads a cache-format entry at path as a built program. Returns MISSING/BAD/HIT as the entry
 * reader does; a binary the driver refuses counts as BAD. */
static clcnn__kcache_result load_entry(clcnn_device *d, const char *path, const char *key,
                                       const char *full_options, cl_program *out, char *why,
                                       size_t why_size)
{
    unsigned char *bin = NULL;
    size_t size = 0;
    clcnn__kcache_result r = clcnn__kcache_read(path, key, &bin, &size, why, why_size);
    if (r != CLCNN_KCACHE_HIT)
        return r;
    const unsigned char *bins[] = {bin};
    cl_int bin_status = CL_SUCCESS, err;
    cl_program prog =
        clCreateProgramWithBinary(d->context, 1, &d->id, &size, bins, &bin_status, &err);
    free(bin);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
        snprintf(why, why_size, "clCreateProgramWithBinary -> %s / %s", clcnn_cl_error_name(err),
                 clcnn_cl_error_name(bin_status));
        if (prog != NULL)
            clReleaseProgram(prog);
        return CLCNN_KCACHE_BAD;
    }
    err = clBuildProgram(prog, 1, &d->id, full_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        snprintf(why, why_size, "clBuildProgram of the binary -> %s", clcnn_cl_error_name(err));
        clReleaseProgram(prog);
        return CLCNN_KCACHE_BAD;
    }
    *out = prog;
    return CLCNN_KCACHE_HIT;
}

static clcnn_status table_add(clcnn_device *d, const char *name, uint64_t hash, const char *options,
                              cl_program prog)
{
    if (d->program_count == d->program_capacity) {
        size_t cap = d->program_capacity ? 2 * d->program_capacity : 8;
        struct clcnn__program_entry *grown = realloc(d->programs, cap * sizeof *grown);
        CLCNN_FAIL_IF(grown == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                      "program: cannot grow the program table");
        d->programs = grown;
        d->program_capacity = cap;
    }
    struct clcnn__program_entry *e = &d->programs[d->program_count];
    e->name = dup_str(name);
    e->options = dup_str(options);
    if (e->name == NULL || e->options == NULL) {
        free(e->name);
        free(e->options);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "program: cannot allocate table entry");
    }
    e->source_hash = hash;
    e->program = prog;
    d->program_count++;
    d->stats.programs++;
    return CLCNN_OK;
}

/* Offline binaries, then the cache, then the compiler; writes the cache after a build. */
static clcnn_status obtain(clcnn_device *d, const char *name, const char *source, size_t size,
                           const char *full_options, const char *key, cl_program *out)
{
    char file[160];
    char why[512];
    clcnn__kcache_file_name(name, clcnn__fnv1a64(CLCNN_FNV1A64_INIT, key, strlen(key)), file,
                            sizeof file);
    if (d->binary_dir != NULL) {
        char *path = join_path(d->binary_dir, file);
        CLCNN_FAIL_IF(path == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "program: out of memory");
        double t0 = now_ms();
        clcnn__kcache_result r = load_entry(d, path, key, full_options, out, why, sizeof why);
        if (r == CLCNN_KCACHE_HIT) {
            d->stats.offline_loads++;
            d->stats.cache_load_ms += now_ms() - t0;
            CLCNN_DEBUG("program", "%s: offline binary %s", name, path);
            free(path);
            return CLCNN_OK;
        }
        if (!d->info.compiler_available) {
            clcnn_status st = CLCNN_ERR(
                CLCNN_STATUS_UNSUPPORTED,
                "program %s: no usable offline binary at %s (%s) for options '%s', and device "
                "'%s' has no compiler; export one with `clcnn export-binaries DIR` on a machine "
                "that can build it",
                name, path, why, full_options, d->info.name);
            free(path);
            return st;
        }
        CLCNN_INFO("program", "%s: no offline binary at %s (%s); compiling from source", name, path,
                   why);
        free(path);
    } else if (!d->info.compiler_available) {
        return CLCNN_ERR(CLCNN_STATUS_UNSUPPORTED,
                         "program %s: device '%s' has no compiler and CLCNN_BINARY_DIR is not set",
                         name, d->info.name);
    }

    char *cache_path = NULL;
    if (d->cache_dir != NULL) {
        cache_path = join_path(d->cache_dir, file);
        CLCNN_FAIL_IF(cache_path == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "program: out of memory");
        double t0 = now_ms();
        clcnn__kcache_result r = load_entry(d, cache_path, key, full_options, out, why, sizeof why);
        if (r == CLCNN_KCACHE_HIT) {
            d->stats.cache_hits++;
            d->stats.cache_load_ms += now_ms() - t0;
            CLCNN_DEBUG("program", "%s: cache hit %s", name, cache_path);
            free(cache_path);
            return CLCNN_OK;
        }
        if (r == CLCNN_KCACHE_MISSING) {
            d->stats.cache_misses++;
            CLCNN_DEBUG("program", "%s: cache miss %s", name, cache_path);
        } else {
            d->stats.cache_rejected++;
            CLCNN_DEBUG("program", "%s: cache entry %s rejected (%s); rebuilding", name, cache_path,
                        why);
        }
    }

    double t0 = now_ms();
    clcnn_status st = build_from_source(d, name, source, size, full_options, out);
    if (st != CLCNN_OK) {
        free(cache_path);
        return st;
    }
    d->stats.source_builds++;
    d->stats.source_build_ms += now_ms() - t0;
    CLCNN_DEBUG("program", "%s: compiled in %.1f ms (options '%s')", name, now_ms() - t0,
                full_options);
    if (cache_path != NULL) {
        unsigned char *bin = NULL;
        size_t bin_size = 0;
        /* A cache that cannot be written slows the next start but breaks nothing. */
        if (clcnn__mkdir_p(d->cache_dir) == CLCNN_OK &&
            program_binary(d, name, *out, &bin, &bin_size) == CLCNN_OK &&
            clcnn__kcache_write(cache_path, key, bin, bin_size) == CLCNN_OK) {
            d->stats.cache_writes++;
        } else {
            CLCNN_DEBUG("program", "%s: cache not written: %s", name, clcnn_last_error());
            clcnn_clear_error();
        }
        free(bin);
        free(cache_path);
    }
    return CLCNN_OK;
}

static clcnn_status full_options_of(const clcnn_device *d, const char *options, char **out)
{
    size_t n = strlen(d->base_options) + strlen(options) + 2;
    char *s = malloc(n);
    CLCNN_FAIL_IF(s == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "program: out of memory");
    snprintf(s, n, "%s%s%s", d->base_options, d->base_options[0] && options[0] ? " " : "", options);
    *out = s;
    return CLCNN_OK;
}

/* As clcnn__program_get_source() with the source's FNV-1a 64 hash already known: the embedded
 * sources carry theirs, so a launch does not hash a kernel file each time. */
static clcnn_status get_hashed(clcnn_device *d, const char *name, const char *source, size_t size,
                               uint64_t hash, const char *options, cl_program *program)
{
    if (options == NULL)
        options = "";
    pthread_mutex_lock(&d->program_lock);
    for (size_t i = 0; i < d->program_count; i++) {
        const struct clcnn__program_entry *e = &d->programs[i];
        if (e->source_hash == hash && strcmp(e->name, name) == 0 &&
            strcmp(e->options, options) == 0) {
            d->stats.memory_hits++;
            *program = e->program;
            pthread_mutex_unlock(&d->program_lock);
            return CLCNN_OK;
        }
    }
    char *full = NULL;
    char *key = NULL;
    cl_program prog = NULL;
    clcnn_status st = full_options_of(d, options, &full);
    if (st == CLCNN_OK) {
        key = make_key(d, name, hash, full);
        if (key == NULL)
            st = CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "program: out of memory");
    }
    if (st == CLCNN_OK)
        st = obtain(d, name, source, size, full, key, &prog);
    if (st == CLCNN_OK) {
        st = table_add(d, name, hash, options, prog);
        if (st != CLCNN_OK)
            clReleaseProgram(prog);
    }
    if (st == CLCNN_OK)
        *program = prog;
    pthread_mutex_unlock(&d->program_lock);
    free(full);
    free(key);
    return st;
}

clcnn_status clcnn__program_get_source(clcnn_device *d, const char *name, const char *source,
                                       size_t size, const char *options, cl_program *program)
{
    CLCNN_FAIL_IF(d == NULL || name == NULL || source == NULL || program == NULL,
                  CLCNN_STATUS_INVALID_ARG, "program: NULL argument");
    return get_hashed(d, name, source, size, clcnn__fnv1a64(CLCNN_FNV1A64_INIT, source, size),
                      options, program);
}

bool clcnn__program_built_with(clcnn_device *d, const char *source_name, const char *options)
{
    bool found = false;
    pthread_mutex_lock(&d->program_lock);
    for (size_t i = 0; i < d->program_count && !found; i++)
        found = strcmp(d->programs[i].name, source_name) == 0 &&
                strcmp(d->programs[i].options, options) == 0;
    pthread_mutex_unlock(&d->program_lock);
    return found;
}

static const clcnn__kernel_source *find_source(const char *name)
{
    for (size_t i = 0; i < clcnn__kernel_source_count; i++)
        if (strcmp(clcnn__kernel_sources[i].name, name) == 0)
            return &clcnn__kernel_sources[i];
    return NULL;
}

clcnn_status clcnn__program_get(clcnn_device *d, const char *source_name, const char *options,
                                cl_program *program)
{
    CLCNN_FAIL_IF(source_name == NULL, CLCNN_STATUS_INVALID_ARG, "program: NULL source name");
    const clcnn__kernel_source *src = find_source(source_name);
    CLCNN_FAIL_IF(src == NULL, CLCNN_STATUS_INVALID_ARG,
                  "program: no embedded kernel source named '%s'", source_name);
    CLCNN_FAIL_IF(d == NULL || program == NULL, CLCNN_STATUS_INVALID_ARG, "program: NULL argument");
    return get_hashed(d, src->name, (const char *)src->bytes, src->size, src->hash, options,
                      program);
}

clcnn_status clcnn__kernel_create(clcnn_device *d, const char *source_name, const char *options,
                                  const char *kernel_name, cl_kernel *kernel)
{
    CLCNN_FAIL_IF(kernel_name == NULL || kernel == NULL, CLCNN_STATUS_INVALID_ARG,
                  "program: NULL kernel name or output");
    cl_program prog = NULL;
    CLCNN_TRY(clcnn__program_get(d, source_name, options, &prog));
    cl_int err;
    cl_kernel k = clCreateKernel(prog, kernel_name, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "program %s: clCreateKernel(%s)", source_name, kernel_name);
    *kernel = k;
    return CLCNN_OK;
}

clcnn_status clcnn_program_stats_get(const clcnn_device *device, clcnn_program_stats *stats)
{
    CLCNN_FAIL_IF(device == NULL || stats == NULL, CLCNN_STATUS_INVALID_ARG,
                  "program_stats_get: NULL argument");
    clcnn_device *d = (clcnn_device *)device;
    pthread_mutex_lock(&d->program_lock);
    *stats = d->stats;
    pthread_mutex_unlock(&d->program_lock);
    return CLCNN_OK;
}

const char *clcnn_program_cache_dir(const clcnn_device *device)
{
    return device != NULL ? device->cache_dir : NULL;
}

size_t clcnn_program_source_count(void)
{
    return clcnn__kernel_source_count;
}

const char *clcnn_program_source_name(size_t index)
{
    return index < clcnn__kernel_source_count ? clcnn__kernel_sources[index].name : NULL;
}

clcnn_status clcnn_program_build_all(clcnn_device *d)
{
    CLCNN_FAIL_IF(d == NULL, CLCNN_STATUS_INVALID_ARG, "program_build_all: NULL device");
    for (size_t i = 0; i < clcnn__kernel_source_count; i++) {
        cl_program prog;
        CLCNN_TRY(clcnn__program_get(d, clcnn__kernel_sources[i].name, "", &prog));
    }
    return CLCNN_OK;
}

clcnn_status clcnn_program_export_binaries(clcnn_device *d, const char *dir, size_t *written)
{
    CLCNN_FAIL_IF(d == NULL || dir == NULL || dir[0] == '\0', CLCNN_STATUS_INVALID_ARG,
                  "export_binaries: NULL device or empty directory");
    CLCNN_TRY(clcnn__mkdir_p(dir));
    size_t count = 0;
    for (size_t i = 0; i < clcnn__kernel_source_count; i++) {
        const clcnn__kernel_source *src = &clcnn__kernel_sources[i];
        cl_program prog = NULL;
        CLCNN_TRY(clcnn__program_get(d, src->name, "", &prog));
        char *full = NULL;
        CLCNN_TRY(full_options_of(d, "", &full));
        char *key = make_key(d, src->name, src->hash, full);
        free(full);
        CLCNN_FAIL_IF(key == NULL, CLCNN_STATUS_OUT_OF_MEMORY, "export_binaries: out of memory");
        char file[160];
        clcnn__kcache_file_name(src->name, clcnn__fnv1a64(CLCNN_FNV1A64_INIT, key, strlen(key)),
                                file, sizeof file);
        char *path = join_path(dir, file);
        unsigned char *bin = NULL;
        size_t size = 0;
        clcnn_status st = path != NULL ? program_binary(d, src->name, prog, &bin, &size)
                                       : CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "out of memory");
        if (st == CLCNN_OK)
            st = clcnn__kcache_write(path, key, bin, size);
        free(bin);
        free(path);
        free(key);
        if (st != CLCNN_OK) {
            clcnn__error_prefix("export_binaries %s", src->name);
            return st;
        }
        count++;
    }
    if (written != NULL)
        *written = count;
    return CLCNN_OK;
}
