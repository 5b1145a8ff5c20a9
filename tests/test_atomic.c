/* Atomic saves under SIGKILL: a child process writes weights, a checkpoint, the tuning database
 * and a kernel cache entry in a loop, and is killed at random moments. Afterwards every file
 * loads, and holds exactly the version the child last finished or the one it was writing, never
 * a mix. Then a new child carries on from there, and so on. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fileio_impl.h"
#include "program_impl.h"
#include "testutil.h"
#include "tune_db_impl.h"

enum { F_WEIGHTS, F_CHECKPOINT, F_TUNE_DB, F_KCACHE, FILES };
static const char *const file_labels[FILES] = {"weights", "checkpoint", "tuning database",
                                               "kernel cache entry"};

/* What the child reports through shared memory: per file, the version it last began writing
 * and the last one whose save returned. */
typedef struct progress {
    _Atomic uint64_t started[FILES];
    _Atomic uint64_t done[FILES];
} progress;

/* Large enough that a write takes a while, so kills land in the middle of some. */
enum { ROWS = 128, COLS = 1024, KCACHE_BYTES = 256 * 1024 };

static const char kcache_key[] = "clcnn-program 1\nclcnn test\nsource atomic.cl 0\noptions \n";

typedef struct files {
    char *dir, *weights, *checkpoint, *kcache;
    clcnn_device *dev; /* a stand-in: the tuning database only needs the cache directory */
} files;

static clcnn_device *fake_device(const char *dir)
{
    clcnn_device *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->cache_dir = strdup(dir);
    assert_non_null(d->cache_dir);
    snprintf(d->info.name, sizeof d->info.name, "atomic test device");
    snprintf(d->info.driver_version, sizeof d->info.driver_version, "1.0");
    pthread_mutex_init(&d->program_lock, NULL);
    return d;
}

static void fake_device_free(clcnn_device *d)
{
    clcnn__tune_db_forget(d);
    pthread_mutex_destroy(&d->program_lock);
    free(d->cache_dir);
    free(d);
}

/* ---- the child: writes version v of every file, for v = first, first + 1, ... ------------- */

static void fill(float *a, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (float)v + (float)(i % 7) * 0.125f;
}

static bool save_version(const files *f, uint64_t v, float *big, float *small, unsigned char *blob,
                         progress *p)
{
    fill(big, ROWS * COLS, v);
    fill(small, 7, v);
    clcnn_named_tensor t[2] = {{"big", 2, {ROWS, COLS, 1, 1}, ROWS * COLS, big},
                               {"small", 1, {7, 1, 1, 1}, 7, small}};
    clcnn_checkpoint_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.epoch = v / 10;
    meta.step = v;
    snprintf(meta.optimizer, sizeof meta.optimizer, "sgd");
    meta.hyper_count = 1;
    snprintf(meta.hyper_names[0], sizeof meta.hyper_names[0], "lr");
    meta.hyper_values[0] = (double)v * 1e-3;
    for (size_t i = 0; i < KCACHE_BYTES; i += 8)
        memcpy(blob + i, &v, 8);
    char solver[32];
    snprintf(solver, sizeof solver, "s%llu", (unsigned long long)v);

    atomic_store(&p->started[F_WEIGHTS], v);
    if (clcnn_weights_save(f->weights, t, 2, NULL) != CLCNN_OK)
        return false;
    atomic_store(&p->done[F_WEIGHTS], v);
    atomic_store(&p->started[F_CHECKPOINT], v);
    if (clcnn_weights_save(f->checkpoint, t, 2, &meta) != CLCNN_OK)
        return false;
    atomic_store(&p->done[F_CHECKPOINT], v);
    atomic_store(&p->started[F_TUNE_DB], v);
    if (clcnn__tune_db_record(f->dev, "conv2d", "n1c1h8w8k1r3s3u1p1d1g1", solver, (double)v,
                              true) != CLCNN_OK)
        return false;
    atomic_store(&p->done[F_TUNE_DB], v);
    atomic_store(&p->started[F_KCACHE], v);
    if (clcnn__kcache_write(f->kcache, kcache_key, blob, KCACHE_BYTES) != CLCNN_OK)
        return false;
    atomic_store(&p->done[F_KCACHE], v);
    return true;
}

static _Noreturn void child(const files *f, uint64_t first, progress *p)
{
    float *big = malloc(ROWS * COLS * sizeof *big), small[7];
    unsigned char *blob = malloc(KCACHE_BYTES);
    if (big == NULL || blob == NULL)
        _exit(3);
    /* Killed long before this; the bound keeps a lost child from running forever. */
    for (uint64_t v = first; v < first + 100000; v++)
        if (!save_version(f, v, big, small, blob, p)) {
            fprintf(stderr, "child: version %llu: %s\n", (unsigned long long)v, clcnn_last_error());
            _exit(2);
        }
    _exit(4);
}

/* ---- the parent: what is on disk ------------------------------------------------------------ */

/* The version a weights or checkpoint file holds, checking every value agrees with it. */
static uint64_t weights_version(const char *path, bool checkpoint)
{
    clcnn_weights w;
    assert_ok(clcnn_weights_load(path, &w));
    assert_int_equal(w.count, 2);
    assert_int_equal(w.meta != NULL, checkpoint);
    const clcnn_named_tensor *big = clcnn_weights_find(&w, "big"),
                             *small = clcnn_weights_find(&w, "small");
    assert_non_null(big);
    assert_non_null(small);
    assert_int_equal(big->count, ROWS * COLS);
    assert_int_equal(small->count, 7);
    uint64_t v = (uint64_t)big->data[0];
    float *want = malloc(ROWS * COLS * sizeof *want);
    assert_non_null(want);
    fill(want, ROWS * COLS, v);
    assert_memory_equal(big->data, want, ROWS * COLS * sizeof *want);
    assert_memory_equal(small->data, want, 7 * sizeof *want);
    free(want);
    if (checkpoint) {
        assert_int_equal(w.meta->step, v);
        assert_int_equal(w.meta->epoch, v / 10);
        assert_true(w.meta->hyper_values[0] == (double)v * 1e-3);
    }
    clcnn_weights_free(&w);
    return v;
}

/* The version in the tuning database, read as a lookup reads it, and the document as a whole. */
static uint64_t tune_db_version(clcnn_device *dev)
{
    clcnn__tune_db_forget(dev);
    char solver[32];
    bool found = false;
    clcnn__tune_db_lookup(dev, "conv2d", "n1c1h8w8k1r3s3u1p1d1g1", solver, sizeof solver, &found);
    assert_true(found);
    assert_int_equal(solver[0], 's');
    uint64_t v = strtoull(solver + 1, NULL, 10);
    char *path = NULL;
    assert_ok(clcnn__tune_db_path(dev, &path));
    void *text = NULL;
    size_t size = 0;
    assert_ok(clcnn__file_read_all(path, 1 << 20, &text, &size));
    const char *why = NULL;
    cJSON *root = clcnn__tune_db_parse(text, size, &why);
    assert_non_null(root);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    assert_int_equal(cJSON_GetArraySize(entries), 1); /* each record replaced the last */
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, 0), "time_us");
    assert_true(cJSON_IsNumber(time) && time->valuedouble == (double)v);
    cJSON_Delete(root);
    free(text);
    free(path);
    return v;
}

static uint64_t kcache_version(const char *path)
{
    unsigned char *bin = NULL;
    size_t size = 0;
    char why[256];
    clcnn__kcache_result r = clcnn__kcache_read(path, kcache_key, &bin, &size, why, sizeof why);
    if (r != CLCNN_KCACHE_HIT)
        print_error("%s: %s\n", path, why);
    assert_int_equal(r, CLCNN_KCACHE_HIT);
    assert_int_equal(size, KCACHE_BYTES);
    uint64_t v;
    memcpy(&v, bin, 8);
    for (size_t i = 0; i < KCACHE_BYTES; i += 8)
        assert_memory_equal(bin + i, &v, 8);
    free(bin);
    return v;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Temporary files a killed writer left behind, counted; anything else new in dir fails. */
static size_t leftovers(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "model.weights") == 0 || strcmp(e->d_name, "run.ckpt") == 0 ||
            strcmp(e->d_name, "atomic-0123.clbin") == 0 || strcmp(e->d_name, "tune") == 0)
            continue;
        assert_non_null(strstr(e->d_name, ".tmp."));
        n++;
    }
    closedir(d);
    return n;
}

static void test_kill_while_saving(void **state)
{
    (void)state;
    files f;
    f.dir = test_tempdir();
    f.weights = test_path(f.dir, "model.weights");
    f.checkpoint = test_path(f.dir, "run.ckpt");
    f.kcache = test_path(f.dir, "atomic-0123.clbin");
    f.dev = fake_device(f.dir);
    char *tune_path = NULL;
    assert_ok(clcnn__tune_db_path(f.dev, &tune_path));
    const char *paths[FILES] = {f.weights, f.checkpoint, tune_path, f.kcache};
    progress *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 0, sizeof *p);
    test_rng rng;
    test_rng_seed(&rng, (uint64_t)time(NULL));
    /* How long one version of all four files takes here (sanitizers and disks differ): kills
     * are spread over about two of them. */
    double per_version;
    {
        files scratch;
        scratch.dir = test_tempdir();
        scratch.weights = test_path(scratch.dir, "w");
        scratch.checkpoint = test_path(scratch.dir, "c");
        scratch.kcache = test_path(scratch.dir, "k");
        scratch.dev = fake_device(scratch.dir);
        progress *q = calloc(1, sizeof *q);
        float *big = malloc(ROWS * COLS * sizeof *big), small[7];
        unsigned char *blob = malloc(KCACHE_BYTES);
        assert_true(q != NULL && big != NULL && blob != NULL);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_true(save_version(&scratch, 1, big, small, blob, q));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        per_version = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        free(big);
        free(blob);
        free(q);
        fake_device_free(scratch.dev);
        test_rmtree(scratch.dir);
        free(scratch.weights);
        free(scratch.checkpoint);
        free(scratch.kcache);
        free(scratch.dir);
    }
    enum { ROUNDS = 40 };
    size_t torn_chances = 0; /* kills that came while a file was being written */
    uint64_t next = 1;
    for (int round = 0; round < ROUNDS; round++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child(&f, next, p);
        /* Anywhere in the first few versions the child writes. */
        double ns = test_rng_uniform(&rng, 0, 4 * per_version);
        struct timespec ts = {(time_t)(ns / 1e9), (long)fmod(ns, 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            print_error("round %d: the child ended by itself (status %d)\n", round, status);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        for (int i = 0; i < FILES; i++) {
            uint64_t started = atomic_load(&p->started[i]), done = atomic_load(&p->done[i]);
            if (started > done)
                torn_chances++;
            if (!exists(paths[i])) {
                /* Only before the first save of the file ever completed. */
                assert_int_equal(done, 0);
                continue;
            }
            uint64_t v = i == F_WEIGHTS      ? weights_version(f.weights, false)
                         : i == F_CHECKPOINT ? weights_version(f.checkpoint, true)
                         : i == F_TUNE_DB    ? tune_db_version(f.dev)
                                             : kcache_version(f.kcache);
            if (!(v == done || (started > done && v == started)))
                print_error("round %d: %s holds version %llu; the child finished %llu and "
                            "was writing %llu\n",
                            round, file_labels[i], (unsigned long long)v, (unsigned long long)done,
                            (unsigned long long)started);
            assert_true(v == done || (started > done && v == started));
            /* What is on disk is complete, whether or not the child lived to say so. */
            atomic_store(&p->done[i], v);
            atomic_store(&p->started[i], v);
        }
        uint64_t last = 0;
        for (int i = 0; i < FILES; i++)
            if (atomic_load(&p->started[i]) > last)
                last = atomic_load(&p->started[i]);
        next = last + 1;
    }
    size_t left = leftovers(f.dir);
    print_message("atomic: %d kills, %zu while a file was being written, %llu versions written "
                  "(%.1f ms each), %zu temporary files left by killed writers\n",
                  ROUNDS, torn_chances, (unsigned long long)(next - 1), per_version / 1e6, left);
    /* The children got work done, and some kills came in the middle of a save. */
    for (int i = 0; i < FILES; i++)
        assert_true(atomic_load(&p->done[i]) > 0);
    assert_true(torn_chances > 0);
    munmap(p, sizeof *p);
    fake_device_free(f.dev);
    free(tune_path);
    test_rmtree(f.dir);
    free(f.weights);
    free(f.checkpoint);
    free(f.kcache);
    free(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_while_saving),
    };
    return cmocka_run_group_tests_name("atomic", tests, NULL, NULL);
}
