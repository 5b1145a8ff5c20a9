/* File helpers shared by the npy reader, the binary cache and (later) weights and the tuning
 * database: bounded reads, atomic replace-by-rename writes, mkdir -p, FNV-1a. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio_impl.h"
#include "status_impl.h"

uint64_t clcnn__fnv1a64(uint64_t hash, const void *data, size_t size)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

clcnn_status clcnn__file_read_all(const char *path, size_t max_size, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_size) {
        fclose(f);
        return CLCNN_ERR(CLCNN_STATUS_CORRUPT, "%s: %lld bytes is over the limit of %zu bytes",
                         path, (long long)st.st_size, max_size);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len + 1);
    if (buf == NULL) {
        fclose(f);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path,
                         len + 1);
    }
    size_t got = fread(buf, 1, len, f);
    int read_error = ferror(f);
    fclose(f);
    if (got != len || read_error) {
        free(buf);
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: read %zu of %zu bytes", path, got, len);
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return CLCNN_OK;
}

static void fsync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1;
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        /* Best effort: some file systems refuse fsync on a directory. */
        (void)fsync(fd);
        close(fd);
    }
}

/* Splits path into its directory (".", "/" or the part before the last slash) and base name. */
static bool split_path(const char *path, char *dir, size_t size, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash != NULL ? slash + 1 : path;
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n >= size)
        return false;
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    return true;
}

/* Removes "<base>.tmp.<pid>.<n>" files next to path that a writer killed mid-save left behind:
 * only when that pid is not a live process here and the file is over a minute old (a save takes
 * one write and an fsync), so a live writer's file is never touched. Best effort. */
static void remove_stale_temporaries(const char *path)
{
    char dir[4096];
    const char *base;
    if (!split_path(path, dir, sizeof dir, &base))
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    const size_t blen = strlen(base);
    const time_t now = time(NULL);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(name + blen + 5, &end, 10);
        if (end == name + blen + 5 || *end != '.' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[4200];
        struct stat st;
        int n = snprintf(full, sizeof full, "%s/%s", dir, name);
        if (n < 0 || (size_t)n >= sizeof full || stat(full, &st) != 0 || now - st.st_mtime < 60)
            continue;
        (void)unlink(full);
    }
    closedir(d);
}

clcnn_status clcnn__file_write_atomic(const char *path, const void *data, size_t size)
{
    static atomic_uint counter;
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
                     atomic_fetch_add(&counter, 1u));
    if (n < 0 || (size_t)n >= sizeof tmp)
        return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                         strerror(errno));
    const unsigned char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return CLCNN_ERR(CLCNN_STATUS_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: fsync failed: %s", path, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: close failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: rename from %s failed: %s", path, tmp, strerror(e));
    }
    fsync_parent(path);
    remove_stale_temporaries(path);
    return CLCNN_OK;
}

clcnn_status clcnn__mkdir_p(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf)
        return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "mkdir: bad directory name '%s'", dir);
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return CLCNN_ERR(CLCNN_STATUS_IO, "mkdir %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return CLCNN_ERR(CLCNN_STATUS_IO, "%s: not a directory", dir);
    return CLCNN_OK;
}
