/* Find mode and the tuning database: find ranks and verifies every solver and records the
 * winner; AUTO reads the record in a new handle; planted, unknown, unverified and corrupt
 * records; merging with entries other processes wrote; the cache switched off. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "conv2d_impl.h"
#include "pool_impl.h"
#include "program_impl.h"
#include "testutil.h"
#include "tune_clblast_impl.h"
#include "tune_db_impl.h"

static char *cache_dir;

static int setup(void **state)
{
    (void)state;
    cache_dir = test_tempdir();
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rmtree(cache_dir);
    free(cache_dir);
    return 0;
}

typedef struct problem {
    clcnn_device *dev;
    clcnn_tensor *x, *w, *b, *y;
    clcnn_conv_params p;
} problem;

static void problem_make(problem *pb, size_t h)
{
    assert_ok(clcnn_device_create(NULL, &pb->dev));
    pb->p = clcnn_conv_params_default();
    pb->p.pad_h = pb->p.pad_w = 1;
    clcnn_shape xs = {2, 3, h, h}, ws = {4, 3, 3, 3}, ys;
    assert_ok(clcnn_conv2d_output_shape(xs, ws, &pb->p, &ys));
    assert_ok(clcnn_tensor_create(pb->dev, xs, &pb->x));
    assert_ok(clcnn_tensor_create(pb->dev, ws, &pb->w));
    assert_ok(clcnn_tensor_create(pb->dev, (clcnn_shape){1, 4, 1, 1}, &pb->b));
    assert_ok(clcnn_tensor_create(pb->dev, ys, &pb->y));
    test_rng rng;
    test_rng_seed(&rng, h);
    float buf[2 * 3 * 64 * 64];
    assert_true(2 * 3 * h * h <= sizeof buf / sizeof buf[0]);
    test_rng_fill(&rng, buf, 2 * 3 * h * h, -1, 1);
    assert_ok(clcnn_tensor_upload(pb->x, buf, 2 * 3 * h * h));
    test_rng_fill(&rng, buf, 4 * 3 * 3 * 3, -1, 1);
    assert_ok(clcnn_tensor_upload(pb->w, buf, 4 * 3 * 3 * 3));
    test_rng_fill(&rng, buf, 4, -1, 1);
    assert_ok(clcnn_tensor_upload(pb->b, buf, 4));
}

static void problem_free(problem *pb)
{
    clcnn_tensor_release(pb->x);
    clcnn_tensor_release(pb->w);
    clcnn_tensor_release(pb->b);
    clcnn_tensor_release(pb->y);
    clcnn_device_release(pb->dev);
}

static cJSON *read_json(const char *path)
{
    size_t size;
    char *text = test_read_file(path, &size);
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    assert_non_null(root);
    return root;
}

static const cJSON *entry_for(const cJSON *root, const char *problem_key)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "problem");
        if (cJSON_IsString(p) && strcmp(p->valuestring, problem_key) == 0)
            return e;
    }
    return NULL;
}

static char *db_path(clcnn_device *dev)
{
    char *path = NULL;
    assert_ok(clcnn__tune_db_path(dev, &path));
    assert_non_null(path);
    return path;
}

static void test_find_ranks_records_and_auto_uses_it(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 9);
    clcnn_conv_perf perf[8];
    size_t count = 0;
    assert_ok(clcnn_conv2d_find(pb.dev, pb.x, pb.w, pb.b, &pb.p, pb.y, 3, perf, 8, &count));
    assert_true(count >= 1);
    assert_int_equal(perf[0].status, CLCNN_OK);
    assert_true(perf[0].verified);
    assert_true(perf[0].time_ms > 0 && isfinite(perf[0].time_ms));
    bool saw_direct = false;
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && perf[i].status == CLCNN_OK && perf[i].verified && perf[i - 1].verified)
            assert_true(perf[i].time_ms >= perf[i - 1].time_ms);
        if (perf[i].algo == CLCNN_CONV_ALGO_DIRECT) {
            saw_direct = true;
            assert_true(perf[i].verified);
            assert_true(perf[i].nmse == 0.0); /* deterministic against itself */
        }
    }
    assert_true(saw_direct);

    /* y holds the winner's output, which matches the direct solver. */
    size_t n = clcnn_tensor_count(pb.y);
    float *got = malloc(n * sizeof *got), *ref = malloc(n * sizeof *ref);
    assert_ok(clcnn_tensor_download(pb.y, got, n));
    assert_ok(clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_DIRECT, NULL, 0,
                                   pb.y));
    assert_ok(clcnn_tensor_download(pb.y, ref, n));
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(got[i] - ref[i]) <= 1e-3 * (fabs(ref[i]) + 1));
    free(got);
    free(ref);

    /* The file names the device and holds the entry. */
    char *path = db_path(pb.dev);
    assert_non_null(strstr(path, cache_dir));
    assert_non_null(strstr(path, "/tune/"));
    cJSON *root = read_json(path);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "schema")->valueint, 1);
    const cJSON *devj = cJSON_GetObjectItemCaseSensitive(root, "device");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(devj, "name")->valuestring,
                        clcnn_device_get_info(pb.dev)->name);
    const cJSON *e = entry_for(root, "n2c3h9w9k4r3s3u1p1d1g1");
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "solver")->valuestring,
                        clcnn_conv_algo_name(perf[0].algo));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "kernel")->valuestring, "conv2d_fwd");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "verified")));
    cJSON_Delete(root);
    problem_free(&pb);

    /* A new handle (as a new process would) lets AUTO pick the recorded winner. */
    problem again;
    problem_make(&again, 9);
    clcnn_conv_algo algo = CLCNN_CONV_ALGO_AUTO;
    assert_ok(clcnn_conv2d_auto_algo(again.dev, clcnn_tensor_shape(again.x),
                                     clcnn_tensor_shape(again.w), &again.p, &algo));
    assert_int_equal(algo, perf[0].algo);
    problem_free(&again);
    free(path);
}

static void mkdir_parent(const char *path)
{
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* Writes a database with one entry naming solver for the problem of problem_make(pb, 9). */
static void plant(clcnn_device *dev, const char *solver, bool verified, const char *extra)
{
    char *path = db_path(dev);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"schema\": 1, \"device\": {}, \"clcnn\": \"x\", \"entries\": [%s"
             "{\"kernel\": \"conv2d_fwd\", \"dtype\": \"f32\", \"problem\": "
             "\"n2c3h9w9k4r3s3u1p1d1g1\", \"solver\": \"%s\", \"params\": {}, "
             "\"time_us\": 1, \"verified\": %s}]}",
             extra, solver, verified ? "true" : "false");
    mkdir_parent(path);
    test_write_file(path, text, strlen(text));
    free(path);
}

static clcnn_conv_algo auto_of(problem *pb)
{
    clcnn_conv_algo algo = CLCNN_CONV_ALGO_AUTO;
    assert_ok(clcnn_conv2d_auto_algo(pb->dev, clcnn_tensor_shape(pb->x), clcnn_tensor_shape(pb->w),
                                     &pb->p, &algo));
    return algo;
}

/* A solver that can run the problem but is not the heuristic's pick, so a planted record
 * visibly changes AUTO. */
static clcnn_conv_algo other_applicable(problem *pb, clcnn_conv_algo heuristic)
{
    static const clcnn_conv_algo all[] = {
#define ALL_(name, token, id) CLCNN_CONV_ALGO_##name,
        CLCNN_CONV_ALGO_LIST(ALL_)
#undef ALL_
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] != CLCNN_CONV_ALGO_AUTO && all[i] != heuristic &&
            clcnn_conv2d_applicable(pb->dev, clcnn_tensor_shape(pb->x), clcnn_tensor_shape(pb->w),
                                    &pb->p, all[i], NULL))
            return all[i];
    fail_msg("only one solver can run the test problem");
    return heuristic;
}

static void test_planted_records(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 9);
    clcnn_conv_algo heuristic = auto_of(&pb);
    clcnn_conv_algo planted = other_applicable(&pb, heuristic);
    assert_int_not_equal(planted, heuristic);
    clcnn_device_release(pb.dev);

    /* Each case in a fresh handle, which reads the file anew. */
    struct {
        const char *solver;
        bool verified;
        clcnn_conv_algo want;
    } cases[] = {
        {clcnn_conv_algo_name(planted), true, planted},
        {"no-such-solver", true, heuristic},
        {clcnn_conv_algo_name(planted), false, heuristic},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_ok(clcnn_device_create(NULL, &pb.dev));
        plant(pb.dev, cases[i].solver, cases[i].verified, "");
        clcnn_device_release(pb.dev);
        assert_ok(clcnn_device_create(NULL, &pb.dev));
        assert_int_equal(auto_of(&pb), cases[i].want);
        clcnn_device_release(pb.dev);
    }
    pb.dev = NULL;
    clcnn_tensor_release(pb.x);
    clcnn_tensor_release(pb.w);
    clcnn_tensor_release(pb.b);
    clcnn_tensor_release(pb.y);
}

typedef struct warn_capture {
    int warnings;
    char last[512];
} warn_capture;

static void capture(clcnn_log_level level, const char *module, const char *msg, void *user)
{
    warn_capture *c = user;
    if (level == CLCNN_LOG_WARN && strcmp(module, "tune") == 0) {
        c->warnings++;
        snprintf(c->last, sizeof c->last, "%s", msg);
    }
}

static void test_corrupt_database_is_ignored_then_rewritten(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 9);
    clcnn_conv_algo heuristic = auto_of(&pb);
    char *path = db_path(pb.dev);
    problem_free(&pb);
    mkdir_parent(path);
    test_write_file(path, "{\"schema\": 1, \"entries\": [ {broken", 33);

    warn_capture c = {0};
    clcnn_log_set(capture, &c, CLCNN_LOG_WARN);
    problem_make(&pb, 9);
    assert_int_equal(auto_of(&pb), heuristic);
    assert_int_equal(c.warnings, 1);
    assert_non_null(strstr(c.last, "ignoring tuning database"));
    /* find still works and leaves a valid file behind. */
    clcnn_conv_perf perf[8];
    size_t count;
    assert_ok(clcnn_conv2d_find(pb.dev, pb.x, pb.w, pb.b, &pb.p, pb.y, 1, perf, 8, &count));
    clcnn_log_set(NULL, NULL, CLCNN_LOG_WARN);
    cJSON *root = read_json(path);
    assert_non_null(entry_for(root, "n2c3h9w9k4r3s3u1p1d1g1"));
    cJSON_Delete(root);
    problem_free(&pb);
    free(path);
}

static void test_records_merge_with_other_writers(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 9);
    /* Another process wrote an entry for a problem this one never ran. */
    plant(pb.dev, "direct", true,
          "{\"kernel\": \"conv2d_fwd\", \"dtype\": \"f32\", \"problem\": \"other\", "
          "\"solver\": \"direct\", \"params\": {}, \"time_us\": 5, \"verified\": true}, ");
    problem_free(&pb);
    problem_make(&pb, 12);
    clcnn_conv_perf perf[8];
    size_t count;
    assert_ok(clcnn_conv2d_find(pb.dev, pb.x, pb.w, pb.b, &pb.p, pb.y, 1, perf, 8, &count));
    char *path = db_path(pb.dev);
    cJSON *root = read_json(path);
    assert_non_null(entry_for(root, "other"));
    assert_non_null(entry_for(root, "n2c3h9w9k4r3s3u1p1d1g1"));
    assert_non_null(entry_for(root, "n2c3h12w12k4r3s3u1p1d1g1"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "entries")), 3);
    cJSON_Delete(root);
    /* Finding the same problem again replaces its entry rather than adding one. */
    assert_ok(clcnn_conv2d_find(pb.dev, pb.x, pb.w, pb.b, &pb.p, pb.y, 1, perf, 8, &count));
    root = read_json(path);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "entries")), 3);
    cJSON_Delete(root);
    free(path);
    problem_free(&pb);
}

/* Parameters round-trip through the file: a second handle reads what the first wrote, with
 * its complete flag; entries of other kernels and problems are kept; a missing name, a
 * fractional value or an unverified entry finds nothing; a corrupt file is a warning. */
static void test_params_round_trip_and_merge(void **state)
{
    (void)state;
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    const char *names[3] = {"TILE_M", "TILE_N", "VW"};
    const int values[3] = {8, 4, 2};
    clcnn__tune_db_entry e = {.kernel = "k1",
                              .problem = "p1",
                              .solver = "s",
                              .nparams = 3,
                              .names = names,
                              .values = values,
                              .time_us = 3,
                              .default_us = 6,
                              .verified = true,
                              .complete = false};
    assert_ok(clcnn__tune_db_write(dev, &e));
    e.kernel = "k2";
    e.complete = true;
    assert_ok(clcnn__tune_db_write(dev, &e));
    char *path = db_path(dev);
    clcnn_device_release(dev);

    /* Another handle, as another process would. */
    assert_ok(clcnn_device_create(NULL, &dev));
    int got[3] = {0};
    bool found = false, complete = true;
    clcnn__tune_db_lookup_params(dev, "k1", "p1", names, got, 3, &complete, &found);
    assert_true(found);
    assert_false(complete);
    assert_memory_equal(got, values, sizeof values);
    clcnn__tune_db_lookup_params(dev, "k2", "p1", names, got, 3, &complete, &found);
    assert_true(found && complete);
    const char *missing[2] = {"TILE_M", "TILE_K"};
    clcnn__tune_db_lookup_params(dev, "k1", "p1", missing, got, 2, NULL, &found);
    assert_false(found);
    clcnn__tune_db_lookup_params(dev, "k1", "p2", names, got, 3, NULL, &found);
    assert_false(found);
    /* Replacing k1's entry keeps k2's. */
    const int again[3] = {16, 1, 4};
    e.kernel = "k1";
    e.values = again;
    assert_ok(clcnn__tune_db_write(dev, &e));
    clcnn_device_release(dev);
    cJSON *root = read_json(path);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "entries")), 2);
    cJSON_Delete(root);
    assert_ok(clcnn_device_create(NULL, &dev));
    clcnn__tune_db_lookup_params(dev, "k1", "p1", names, got, 3, &complete, &found);
    assert_true(found && complete);
    assert_memory_equal(got, again, sizeof again);
    clcnn_device_release(dev);

    /* A fractional value and an unverified entry are not usable. */
    const char *text = "{\"schema\": 1, \"entries\": ["
                       "{\"kernel\": \"k1\", \"dtype\": \"f32\", \"problem\": \"p1\", "
                       "\"solver\": \"s\", \"params\": {\"TILE_M\": 2.5, \"TILE_N\": 1, "
                       "\"VW\": 1}, \"time_us\": 1, \"verified\": true},"
                       "{\"kernel\": \"k2\", \"dtype\": \"f32\", \"problem\": \"p1\", "
                       "\"solver\": \"s\", \"params\": {\"TILE_M\": 2, \"TILE_N\": 1, "
                       "\"VW\": 1}, \"time_us\": 1, \"verified\": false}]}";
    test_write_file(path, text, strlen(text));
    assert_ok(clcnn_device_create(NULL, &dev));
    clcnn__tune_db_lookup_params(dev, "k1", "p1", names, got, 3, NULL, &found);
    assert_false(found);
    clcnn__tune_db_lookup_params(dev, "k2", "p1", names, got, 3, NULL, &found);
    assert_false(found);
    clcnn_device_release(dev);

    /* A corrupt file: a warning, nothing found, and the next write replaces it whole. */
    test_write_file(path, "{\"schema\": 1, \"entr", 20);
    warn_capture c = {0};
    clcnn_log_set(capture, &c, CLCNN_LOG_WARN);
    assert_ok(clcnn_device_create(NULL, &dev));
    clcnn__tune_db_lookup_params(dev, "k1", "p1", names, got, 3, NULL, &found);
    assert_false(found);
    assert_int_equal(c.warnings, 1);
    assert_ok(clcnn__tune_db_write(dev, &e));
    clcnn_log_set(NULL, NULL, CLCNN_LOG_WARN);
    clcnn_device_release(dev);
    root = read_json(path);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "entries")), 1);
    cJSON_Delete(root);
    free(path);
}

static void test_cache_off_writes_nothing(void **state)
{
    (void)state;
    setenv("CLCNN_CACHE_DIR", "off", 1);
    problem pb;
    problem_make(&pb, 9);
    char *path = (char *)0x1;
    assert_ok(clcnn__tune_db_path(pb.dev, &path));
    assert_null(path);
    clcnn_conv_perf perf[8];
    size_t count = 0;
    assert_ok(clcnn_conv2d_find(pb.dev, pb.x, pb.w, pb.b, &pb.p, pb.y, 1, perf, 1, &count));
    assert_int_equal(count, 1);
    assert_true(perf[0].verified);
    problem_free(&pb);
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
    assert_status_msg(clcnn_conv2d_find(NULL, NULL, NULL, NULL, NULL, NULL, 1, perf, 8, &count),
                      CLCNN_STATUS_INVALID_ARG, "NULL");
}

static const char *const direct_names[5] = {"CONV_VW", "CONV_OYB", "CONV_KB", "CONV_PADDED", "LWS"};

/* Stores direct-solver parameters for the problem of problem_make(pb, h); count < 5 leaves
 * names out. */
static void store_direct(problem *pb, const int *values, size_t count)
{
    clcnn__conv_problem cp;
    assert_ok(clcnn__conv_make_problem(clcnn_tensor_shape(pb->x), clcnn_tensor_shape(pb->w), &pb->p,
                                       &cp));
    char key[256];
    clcnn__conv_problem_key(&cp, key, sizeof key);
    const clcnn__tune_db_entry e = {.kernel = CLCNN__CONV_DIRECT_DB_KERNEL,
                                    .problem = key,
                                    .solver = "direct",
                                    .nparams = count,
                                    .names = direct_names,
                                    .values = values,
                                    .time_us = 10,
                                    .default_us = 20,
                                    .verified = true,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(pb->dev, &e));
}

/* Whether the point satisfies the direct solver's constraint for problem_make(pb, h). */
static bool direct_point_valid(problem *pb, const int *values)
{
    clcnn__conv_problem cp;
    assert_ok(clcnn__conv_make_problem(clcnn_tensor_shape(pb->x), clcnn_tensor_shape(pb->w), &pb->p,
                                       &cp));
    clcnn__conv_direct_tuning tuning;
    clcnn__tune_space space;
    clcnn__conv_direct_space(&cp, pb->dev, &tuning, &space);
    assert_ok(clcnn__tune_space_check(&space));
    assert_true(space.valid(space.defaults, space.user));
    return space.valid(values, space.user);
}

/* Runs the direct solver in a fresh handle (which reads the database anew) and returns the
 * output; [out] pb keeps the handle for inspecting its programs. */
static float *direct_fresh(problem *pb)
{
    problem_make(pb, 12);
    assert_ok(clcnn_conv2d_forward(pb->dev, pb->x, pb->w, pb->b, &pb->p, CLCNN_CONV_ALGO_DIRECT,
                                   NULL, 0, pb->y));
    return test_download(pb->y);
}

static void assert_close(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(a[i] - b[i]) <= 1e-5f * (1 + fabsf(b[i])));
}

static void test_direct_build_uses_stored_parameters(void **state)
{
    (void)state;
    const char *tuned = "-DCONV_VW=4 -DCONV_OYB=1 -DCONV_KB=2 -DCONV_PADDED";
    const int point[5] = {4, 1, 2, 1, 4};
    problem pb;
    float *ref = direct_fresh(&pb);
    size_t n = clcnn_tensor_count(pb.y);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned));
    assert_true(direct_point_valid(&pb, point));
    store_direct(&pb, point, 5);
    problem_free(&pb);

    float *out = direct_fresh(&pb);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned));
    assert_close(out, ref, n);
    /* The padded copy is sized for the stored blocking. */
    size_t ws = 0;
    assert_ok(clcnn_conv2d_workspace_size(pb.dev, clcnn_tensor_shape(pb.x),
                                          clcnn_tensor_shape(pb.w), &pb.p, CLCNN_CONV_ALGO_DIRECT,
                                          &ws));
    /* rows 12 (OYB 1) + 2, columns 12 (VW 4) + 2, over N*C = 6 planes */
    assert_int_equal(ws, 6 * 14 * 14 * sizeof(float));
    free(out);

    /* 16 x 8 x 8 = 1024 accumulators breaks the register constraint: ignored. */
    const int greedy[5] = {16, 8, 8, 1, 0};
    assert_false(direct_point_valid(&pb, greedy));
    store_direct(&pb, greedy, 5);
    problem_free(&pb);
    out = direct_fresh(&pb);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl",
                                           "-DCONV_VW=16 -DCONV_OYB=8 -DCONV_KB=8 -DCONV_PADDED"));
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned));
    assert_close(out, ref, n);
    free(out);

    /* An entry without LWS is not a complete point: ignored. */
    store_direct(&pb, point, 4);
    problem_free(&pb);
    out = direct_fresh(&pb);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned));
    assert_close(out, ref, n);
    free(out);
    problem_free(&pb);
    free(ref);
}

/* The space's constraint against the device's limits: every valid point keeps its
 * accumulators in registers and its work-group within the device's maximum. */
static void test_direct_space_respects_device_limits(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 12);
    clcnn__conv_problem cp;
    assert_ok(
        clcnn__conv_make_problem(clcnn_tensor_shape(pb.x), clcnn_tensor_shape(pb.w), &pb.p, &cp));
    clcnn__conv_direct_tuning tuning;
    clcnn__tune_space space;
    clcnn__conv_direct_space(&cp, pb.dev, &tuning, &space);
    assert_int_equal(space.nparams, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(space.params[i].name, direct_names[i]);
    size_t valid = 0;
    int v[5];
    for (size_t a = 0; a < space.params[0].count; a++)
        for (size_t b = 0; b < space.params[1].count; b++)
            for (size_t c = 0; c < space.params[2].count; c++)
                for (size_t d = 0; d < space.params[3].count; d++)
                    for (size_t e = 0; e < space.params[4].count; e++) {
                        v[0] = space.params[0].values[a];
                        v[1] = space.params[1].values[b];
                        v[2] = space.params[2].values[c];
                        v[3] = space.params[3].values[d];
                        v[4] = space.params[4].values[e];
                        if (!space.valid(v, space.user) || memcmp(v, space.defaults, sizeof v) == 0)
                            continue;
                        valid++;
                        assert_true(v[0] * v[1] * v[2] <= 256);
                        assert_true((size_t)v[4] <=
                                    clcnn_device_get_info(pb.dev)->max_work_group_size);
                        /* 12 output rows, 4 output channels */
                        assert_true(v[1] <= 12 && v[2] <= 4);
                    }
    assert_true(valid > 10);
    /* A device that cannot compile keeps only the defaults. */
    bool had = pb.dev->info.compiler_available;
    pb.dev->info.compiler_available = false;
    const int point[5] = {4, 1, 2, 1, 4};
    assert_false(space.valid(point, space.user));
    pb.dev->info.compiler_available = had;
    assert_true(space.valid(point, space.user));
    problem_free(&pb);
}

/* ---- the shipped database and the nearest problem ------------------------------------------ */

static char *shipped_dir;

static int setup_shipped(void **state)
{
    setup(state);
    size_t n = strlen(cache_dir) + 16;
    shipped_dir = malloc(n);
    snprintf(shipped_dir, n, "%s/shipped", cache_dir);
    setenv("CLCNN_TUNE_SHIPPED", shipped_dir, 1);
    return 0;
}

static int teardown_shipped(void **state)
{
    setenv("CLCNN_TUNE_SHIPPED", "off", 1);
    free(shipped_dir);
    shipped_dir = NULL;
    return teardown(state);
}

/* One database entry of direct parameters (JSON text, no trailing comma). */
static void direct_entry(char *buf, size_t size, const char *key, const int *v)
{
    snprintf(buf, size,
             "{\"kernel\": \"conv2d_direct\", \"dtype\": \"f32\", \"problem\": \"%s\", "
             "\"solver\": \"direct\", \"params\": {\"CONV_VW\": %d, \"CONV_OYB\": %d, "
             "\"CONV_KB\": %d, \"CONV_PADDED\": %d, \"LWS\": %d}, \"time_us\": 10, "
             "\"default_us\": 20, \"verified\": true, \"complete\": true}",
             key, v[0], v[1], v[2], v[3], v[4]);
}

/* Writes a database holding [in] entries (JSON objects joined by commas) at path. */
static void write_db(const char *path, const char *entries)
{
    size_t n = strlen(entries) + 128;
    char *text = malloc(n);
    snprintf(text, n, "{\"schema\": 1, \"device\": {}, \"clcnn\": \"x\", \"entries\": [%s]}",
             entries);
    mkdir_parent(path);
    test_write_file(path, text, strlen(text));
    free(text);
}

static char *shipped_path(clcnn_device *dev)
{
    char *path = NULL;
    assert_ok(clcnn__tune_db_shipped_path(dev, &path));
    assert_non_null(path);
    assert_non_null(strstr(path, shipped_dir));
    return path;
}

/* The key of problem_make(pb, h)'s problem. */
static void key_of(problem *pb, char *key, size_t size)
{
    clcnn__conv_problem cp;
    assert_ok(clcnn__conv_make_problem(clcnn_tensor_shape(pb->x), clcnn_tensor_shape(pb->w), &pb->p,
                                       &cp));
    clcnn__conv_problem_key(&cp, key, size);
}

static const char *const tuned_a = "-DCONV_VW=4 -DCONV_OYB=1 -DCONV_KB=2 -DCONV_PADDED";
static const int point_a[5] = {4, 1, 2, 1, 4};
static const char *const tuned_b = "-DCONV_VW=2 -DCONV_OYB=2 -DCONV_KB=4 -DCONV_PADDED";
static const int point_b[5] = {2, 2, 4, 1, 0};

/* The shipped database alone: its parameters build the direct solver and its solver choice
 * decides AUTO; CLCNN_TUNE_SHIPPED=off hides it. */
static void test_shipped_only(void **state)
{
    (void)state;
    problem pb;
    float *ref = direct_fresh(&pb);
    size_t n = clcnn_tensor_count(pb.y);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_a));
    assert_true(direct_point_valid(&pb, point_a));
    char key[256], entries[2048];
    key_of(&pb, key, sizeof key);
    clcnn_conv_algo heuristic = auto_of(&pb);
    clcnn_conv_algo planted = other_applicable(&pb, heuristic);
    int used = snprintf(entries, sizeof entries,
                        "{\"kernel\": \"conv2d_fwd\", \"dtype\": \"f32\", \"problem\": \"%s\", "
                        "\"solver\": \"%s\", \"params\": {}, \"time_us\": 1, \"verified\": true}, ",
                        key, clcnn_conv_algo_name(planted));
    direct_entry(entries + used, sizeof entries - (size_t)used, key, point_a);
    char *path = shipped_path(pb.dev);
    write_db(path, entries);
    problem_free(&pb);

    float *out = direct_fresh(&pb);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_a));
    assert_int_equal(auto_of(&pb), planted);
    assert_close(out, ref, n);
    free(out);
    /* Nothing was written to the user's database. */
    char *user = db_path(pb.dev);
    FILE *f = fopen(user, "rb");
    assert_null(f);
    free(user);
    problem_free(&pb);

    setenv("CLCNN_TUNE_SHIPPED", "off", 1);
    out = direct_fresh(&pb);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_a));
    assert_int_equal(auto_of(&pb), heuristic);
    free(out);
    problem_free(&pb);
    free(path);
    free(ref);
}

/* Entry by entry: the user's entry for a problem wins over the shipped one, the shipped
 * entries of other problems still count, and a cltune write keeps the shipped ones visible. */
static void test_user_overrides_shipped(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 12);
    char key[256], entries[2048];
    key_of(&pb, key, sizeof key);
    size_t used = 0;
    direct_entry(entries, sizeof entries, key, point_a);
    used = strlen(entries);
    snprintf(entries + used, sizeof entries - used, ", ");
    used += 2;
    direct_entry(entries + used, sizeof entries - used, "n9c9h9w9k9r1s1u1p0d1g1", point_a);
    char *path = shipped_path(pb.dev);
    write_db(path, entries);
    clcnn__tune_db_forget(pb.dev);
    /* Written before this handle looked anything up: the shipped entries still count. */
    store_direct(&pb, point_b, 5);
    int got[5];
    bool found = false, complete = false;
    clcnn__tune_db_lookup_params(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, key, direct_names, got, 5,
                                 &complete, &found);
    assert_true(found && complete);
    assert_memory_equal(got, point_b, sizeof point_b);
    clcnn__tune_db_lookup_params(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, "n9c9h9w9k9r1s1u1p0d1g1",
                                 direct_names, got, 5, NULL, &found);
    assert_true(found);
    assert_memory_equal(got, point_a, sizeof point_a);
    problem_free(&pb);

    /* A fresh handle builds with the user's point, not the shipped one. */
    float *out = direct_fresh(&pb);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_b));
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_a));
    free(out);
    /* The shipped file is never written. */
    cJSON *root = read_json(path);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "entries")), 2);
    cJSON_Delete(root);
    problem_free(&pb);

    /* An unverified user entry does not hide the shipped one. */
    problem_make(&pb, 12);
    const clcnn__tune_db_entry e = {.kernel = CLCNN__CONV_DIRECT_DB_KERNEL,
                                    .problem = key,
                                    .solver = "direct",
                                    .nparams = 5,
                                    .names = direct_names,
                                    .values = point_b,
                                    .time_us = 1,
                                    .verified = false,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(pb.dev, &e));
    clcnn__tune_db_lookup_params(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, key, direct_names, got, 5,
                                 NULL, &found);
    assert_true(found);
    assert_memory_equal(got, point_a, sizeof point_a);
    problem_free(&pb);
    free(path);
}

/* A corrupt shipped file: one warning naming it, the user's entries still used. */
static void test_corrupt_shipped_ignored(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 12);
    char *path = shipped_path(pb.dev);
    mkdir_parent(path);
    test_write_file(path, "{\"schema\": 1, \"entries\": [ {broken", 33);
    store_direct(&pb, point_b, 5);
    problem_free(&pb);

    warn_capture c = {0};
    clcnn_log_set(capture, &c, CLCNN_LOG_WARN);
    float *out = direct_fresh(&pb);
    clcnn_log_set(NULL, NULL, CLCNN_LOG_WARN);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_b));
    assert_int_equal(c.warnings, 1);
    assert_non_null(strstr(c.last, "ignoring tuning database"));
    assert_non_null(strstr(c.last, path));
    free(out);
    problem_free(&pb);
    free(path);
}

/* Lowercase letters and digits, one '-' for each run of anything else, none at the ends: the
 * slug of device and driver names in database file names. */
static void test_slug(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in != '\0' && n + 1 < size; in++) {
        if (isalnum((unsigned char)*in))
            out[n++] = (char)tolower((unsigned char)*in);
        else if (n > 0 && out[n - 1] != '-')
            out[n++] = '-';
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

/* No shipped file for this driver: the same device's file of another driver serves, and a file
 * whose name starts alike but that names another device does not. */
static void test_shipped_other_driver(void **state)
{
    (void)state;
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    const clcnn_device_info *info = clcnn_device_get_info(dev);
    char *exact = shipped_path(dev);
    char driver[64];
    test_slug(info->driver_version, driver, sizeof driver);
    /* exact is ".../<vendor>/<name>-<driver>.json": keep ".../<vendor>/<name>-". */
    size_t keep = strlen(exact) - strlen(driver) - strlen(".json");
    assert_true(keep > 0 && strcmp(exact + keep, driver) > 0);
    char other[4096], decoy[4096], entry[1024], text[4096];
    snprintf(other, sizeof other, "%.*s0-older-driver.json", (int)keep, exact);
    snprintf(decoy, sizeof decoy, "%.*szz-not-this-device.json", (int)keep, exact);
    direct_entry(entry, sizeof entry, "n9c9h9w9k9r1s1u1p0d1g1", point_a);
    snprintf(text, sizeof text,
             "{\"schema\": 1, \"device\": {\"name\": \"%s\"}, \"clcnn\": \"x\", \"entries\": [%s]}",
             info->name, entry);
    mkdir_parent(other);
    test_write_file(other, text, strlen(text));
    direct_entry(entry, sizeof entry, "n9c9h9w9k9r1s1u1p0d1g1", point_b);
    snprintf(text, sizeof text,
             "{\"schema\": 1, \"device\": {\"name\": \"another device\"}, \"clcnn\": \"x\", "
             "\"entries\": [%s]}",
             entry);
    test_write_file(decoy, text, strlen(text));
    char *path = NULL;
    assert_ok(clcnn__tune_db_shipped_path(dev, &path));
    assert_string_equal(path, other);
    free(path);
    clcnn__tune_db_forget(dev);
    int got[5];
    bool found = false;
    clcnn__tune_db_lookup_params(dev, CLCNN__CONV_DIRECT_DB_KERNEL, "n9c9h9w9k9r1s1u1p0d1g1",
                                 direct_names, got, 5, NULL, &found);
    assert_true(found);
    assert_memory_equal(got, point_a, sizeof point_a);
    /* This driver's own file, once there, wins. */
    direct_entry(entry, sizeof entry, "n9c9h9w9k9r1s1u1p0d1g1", point_b);
    write_db(exact, entry);
    assert_ok(clcnn__tune_db_shipped_path(dev, &path));
    assert_string_equal(path, exact);
    free(path);
    clcnn__tune_db_forget(dev);
    clcnn__tune_db_lookup_params(dev, CLCNN__CONV_DIRECT_DB_KERNEL, "n9c9h9w9k9r1s1u1p0d1g1",
                                 direct_names, got, 5, NULL, &found);
    assert_true(found);
    assert_memory_equal(got, point_b, sizeof point_b);
    clcnn_device_release(dev);
    free(exact);
}

/* The nearest stored problem: same filter, stride, dilation and groups required, nearest in
 * the log of the rest; a point that breaks this problem's constraint is passed over. */
static void test_nearest_problem(void **state)
{
    (void)state;
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    char *user = db_path(dev);
    char *path = shipped_path(dev);
    char entries[4096];
    size_t used = 0;
    const char *keys[] = {
        "n2c3h64w64k4r3s3u1p1d1g1", /* far */
        "n2c3h16w16k4r3s3u1p1d1g1", /* nearest to h12 */
        "n2c3h12w12k4r5s5u1p1d1g1", /* another filter */
        "n2c3h12w12k4r3s3u2p1d1g1", /* another stride */
        "n2c3h12w12k4r3s3u1p1d2g1", /* another dilation */
    };
    for (size_t i = 0; i < 5; i++) {
        if (i > 0)
            used += (size_t)snprintf(entries + used, sizeof entries - used, ", ");
        direct_entry(entries + used, sizeof entries - used, keys[i], point_a);
        used = strlen(entries);
    }
    write_db(path, entries);
    /* The user's own entry at h=10 is nearer than h16 (|ln 11/13| < |ln 17/13|). */
    direct_entry(entries, sizeof entries, "n2c3h10w10k4r3s3u1p1d1g1", point_b);
    write_db(user, entries);
    /* The handle read the (then absent) databases when it was created. */
    clcnn__tune_db_forget(dev);
    clcnn__tune_db_match m[8];
    size_t n = clcnn__tune_db_nearest(dev, CLCNN__CONV_DIRECT_DB_KERNEL, "n2c3h12w12k4r3s3u1p1d1g1",
                                      CLCNN__CONV_NEAREST_SAME, direct_names, 5, m, 8);
    assert_int_equal(n, 3);
    assert_string_equal(m[0].problem, "n2c3h10w10k4r3s3u1p1d1g1");
    assert_false(m[0].shipped);
    assert_memory_equal(m[0].values, point_b, sizeof point_b);
    assert_string_equal(m[1].problem, "n2c3h16w16k4r3s3u1p1d1g1");
    assert_true(m[1].shipped);
    assert_string_equal(m[2].problem, "n2c3h64w64k4r3s3u1p1d1g1");
    assert_true(fabs(m[0].distance - 2 * log(13.0 / 11.0)) < 1e-12);
    assert_true(m[0].distance < m[1].distance && m[1].distance < m[2].distance);
    /* at most max; a name no entry has finds none; a key of another form finds none */
    assert_int_equal(clcnn__tune_db_nearest(dev, CLCNN__CONV_DIRECT_DB_KERNEL,
                                            "n2c3h12w12k4r3s3u1p1d1g1", CLCNN__CONV_NEAREST_SAME,
                                            direct_names, 5, m, 1),
                     1);
    const char *other[1] = {"TILE_M"};
    assert_int_equal(clcnn__tune_db_nearest(dev, CLCNN__CONV_DIRECT_DB_KERNEL,
                                            "n2c3h12w12k4r3s3u1p1d1g1", CLCNN__CONV_NEAREST_SAME,
                                            other, 1, m, 8),
                     0);
    assert_int_equal(clcnn__tune_db_nearest(dev, CLCNN__CONV_DIRECT_DB_KERNEL, "h12w12",
                                            CLCNN__CONV_NEAREST_SAME, direct_names, 5, m, 8),
                     0);
    clcnn_device_release(dev);

    /* The direct solver on h=12 (no entry of its own) builds with the h=10 entry's point. */
    problem pb;
    float *out = direct_fresh(&pb);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_b));
    free(out);
    problem_free(&pb);

    /* When the nearest entry's point breaks the constraint here (blocks of 8 output channels
     * where there are 4), the next one is taken. */
    const int bad[5] = {2, 2, 8, 1, 0};
    direct_entry(entries, sizeof entries, "n2c3h10w10k4r3s3u1p1d1g1", bad);
    write_db(user, entries);
    out = direct_fresh(&pb);
    assert_false(direct_point_valid(&pb, bad));
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_b));
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_direct.cl",
                                           "-DCONV_VW=2 -DCONV_OYB=2 -DCONV_KB=8 -DCONV_PADDED"));
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_direct.cl", tuned_a));
    free(out);
    problem_free(&pb);
    free(user);
    free(path);
}

/* AUTO falls back to the solver of the nearest stored problem when it can run this one. */
static void test_auto_nearest_problem(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 12);
    clcnn_conv_algo heuristic = auto_of(&pb);
    clcnn_conv_algo planted = other_applicable(&pb, heuristic);
    /* plant() writes the entry for problem_make(pb, 9)'s problem, and one naming a solver that
     * does not exist for a nearer problem, which is passed over. */
    plant(pb.dev, clcnn_conv_algo_name(planted), true,
          "{\"kernel\": \"conv2d_fwd\", \"dtype\": \"f32\", \"problem\": "
          "\"n2c3h11w11k4r3s3u1p1d1g1\", \"solver\": \"no-such-solver\", \"params\": {}, "
          "\"time_us\": 1, \"verified\": true}, ");
    problem_free(&pb);
    problem_make(&pb, 12);
    assert_int_equal(auto_of(&pb), planted);
    problem_free(&pb);
}

/* Every file of the shipped database, for whatever device it was measured on (most are not this
 * machine's): valid JSON naming its device under its vendor's folder, schema 1, and entries that
 * are verified, complete, no slower than the defaults and name their kernel, problem, solver and
 * parameters. */
static void check_shipped_file(const char *path, const char *vendor)
{
    print_message("checking %s\n", path);
    cJSON *root = read_json(path);
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(root, "device");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(device, "vendor")),
                        vendor);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(device, "name")));
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(device, "driver")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "schema")->valueint, 1);
    const cJSON *e;
    int entries = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        static const char *const names[] = {"kernel", "problem", "solver"};
        for (size_t i = 0; i < 3; i++)
            assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, names[i])));
        assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "params")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "verified")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "complete")));
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "time_us");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "default_us");
        assert_true(cJSON_IsNumber(t) && cJSON_IsNumber(d) && t->valuedouble > 0);
        assert_true(t->valuedouble <= d->valuedouble);
        entries++;
    }
    assert_true(entries > 0);
    cJSON_Delete(root);
}

static void test_repository_files(void **state)
{
    (void)state;
    const char *dir = getenv("CLCNN_TUNE_SOURCE");
    if (dir == NULL) {
        skip();
        return;
    }
    DIR *top = opendir(dir);
    assert_non_null(top);
    int files = 0;
    const struct dirent *v;
    while ((v = readdir(top)) != NULL) {
        char vdir[1024];
        snprintf(vdir, sizeof vdir, "%s/%s", dir, v->d_name);
        DIR *sub = v->d_name[0] == '.' ? NULL : opendir(vdir);
        if (sub == NULL)
            continue;
        const struct dirent *f;
        while ((f = readdir(sub)) != NULL) {
            const size_t len = strlen(f->d_name);
            if (len < 6 || strcmp(f->d_name + len - 5, ".json") != 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", vdir, f->d_name);
            check_shipped_file(path, v->d_name);
            files++;
        }
        closedir(sub);
    }
    closedir(top);
    assert_true(files > 0);
}

/* The database shipped in the repository (tools/tune, CLCNN_TUNE_SOURCE): when it has a file
 * for this device, every entry is verified, no slower than the defaults, and its point
 * satisfies its solver's constraint (the convolution solvers', pooling's) for its own problem. */
static void test_repository_database(void **state)
{
    (void)state;
    const char *dir = getenv("CLCNN_TUNE_SOURCE");
    if (dir == NULL) {
        skip();
        return;
    }
    setenv("CLCNN_TUNE_SHIPPED", dir, 1);
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    char *path = NULL;
    assert_ok(clcnn__tune_db_shipped_path(dev, &path));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        print_message("no shipped database for this device: %s\n", path);
        free(path);
        clcnn_device_release(dev);
        setenv("CLCNN_TUNE_SHIPPED", "off", 1);
        skip();
        return;
    }
    fclose(f);
    cJSON *root = read_json(path);
    const cJSON *e;
    int checked = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        const char *kernel = cJSON_GetObjectItemCaseSensitive(e, "kernel")->valuestring;
        const char *key = cJSON_GetObjectItemCaseSensitive(e, "problem")->valuestring;
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "verified")));
        assert_true(cJSON_GetObjectItemCaseSensitive(e, "time_us")->valuedouble <=
                    cJSON_GetObjectItemCaseSensitive(e, "default_us")->valuedouble);
        if (strcmp(kernel, CLCNN__POOL_DB_KERNEL) == 0) {
            size_t q[8];
            int kind = -1;
            assert_int_equal(sscanf(key, "n%zuc%zuh%zuw%zur%zus%zuu%zup%zum%d", &q[0], &q[1], &q[2],
                                    &q[3], &q[4], &q[5], &q[6], &q[7], &kind),
                             9);
            clcnn_pool_params pp = clcnn_pool_params_default((clcnn_pool_kind)kind);
            pp.window_h = q[4];
            pp.window_w = q[5];
            pp.stride_h = pp.stride_w = q[6];
            pp.pad_h = pp.pad_w = q[7];
            static const char *const pool_names[2] = {"POOL_VW", "LWS"};
            int got[2];
            bool found = false;
            clcnn__tune_db_lookup_params(dev, kernel, key, pool_names, got, 2, NULL, &found);
            assert_true(found);
            clcnn__pool_tuning tuning;
            clcnn__tune_space space;
            assert_ok(clcnn__pool_space(dev, (clcnn_shape){q[0], q[1], q[2], q[3]}, &pp, &tuning,
                                        &space));
            assert_true(space.valid(got, space.user));
            checked++;
            continue;
        }
        /* A convolution solver's entry: the point its space declares, valid for its problem. */
        const clcnn__conv_tunable *t = NULL;
        for (size_t i = 0; clcnn__conv_tunable_at(i) != NULL && t == NULL; i++)
            if (strcmp(clcnn__conv_tunable_at(i)->db_kernel, kernel) == 0)
                t = clcnn__conv_tunable_at(i);
        if (t == NULL)
            continue;
        size_t v[11];
        assert_int_equal(sscanf(key, "n%zuc%zuh%zuw%zuk%zur%zus%zuu%zup%zud%zug%zu", &v[0], &v[1],
                                &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]),
                         11);
        clcnn_conv_params p = clcnn_conv_params_default();
        p.stride_h = p.stride_w = v[7];
        p.pad_h = p.pad_w = v[8];
        p.dilation_h = p.dilation_w = v[9];
        p.groups = v[10];
        clcnn__conv_problem cp;
        assert_ok(clcnn__conv_make_problem((clcnn_shape){v[0], v[1], v[2], v[3]},
                                           (clcnn_shape){v[4], v[1] / v[10], v[5], v[6]}, &p, &cp));
        clcnn__conv_tuning tuning;
        clcnn__tune_space space;
        t->space(&cp, dev, t, &tuning, &space);
        const char *names[CLCNN__TUNE_MAX_PARAMS];
        for (size_t i = 0; i < space.nparams; i++)
            names[i] = space.params[i].name;
        int got[CLCNN__TUNE_MAX_PARAMS];
        bool found = false;
        clcnn__tune_db_lookup_params(dev, kernel, key, names, got, space.nparams, NULL, &found);
        assert_true(found);
        assert_true(space.valid(got, space.user));
        checked++;
    }
    assert_true(checked > 0);
    cJSON_Delete(root);
    free(path);
    clcnn_device_release(dev);
    setenv("CLCNN_TUNE_SHIPPED", "off", 1);
}

/* Winograd parameters from the database: a stored point builds the kernels with its -D options
 * and gives the defaults' bits (the same sums in the same order); a point that breaks the
 * constraint (blocks of 8 output channels where there are 4) is ignored; a problem without an
 * entry takes the nearest one's. */
static void test_winograd_build_uses_stored_parameters(void **state)
{
    (void)state;
    static const char *const names[5] = {"WINO_VP", "WINO_KB", "GEMM_WG", "TRANSFORM_WG", "WS_MIB"};
    const int point[5] = {8, 4, 4, 2, 16}, bad[5] = {8, 8, 4, 2, 16};
    const char *tuned = "-DWINO_VP=8 -DWINO_KB=4";
    problem pb;
    problem_make(&pb, 12);
    assert_ok(clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_WINOGRAD4, NULL,
                                   0, pb.y));
    float *ref = test_download(pb.y);
    size_t n = clcnn_tensor_count(pb.y);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_winograd.cl", tuned));
    clcnn__conv_problem cp;
    assert_ok(
        clcnn__conv_make_problem(clcnn_tensor_shape(pb.x), clcnn_tensor_shape(pb.w), &pb.p, &cp));
    clcnn__conv_tuning tuning;
    clcnn__tune_space space;
    clcnn__conv_tunable_winograd4.space(&cp, pb.dev, &clcnn__conv_tunable_winograd4, &tuning,
                                        &space);
    assert_ok(clcnn__tune_space_check(&space));
    assert_true(space.valid(space.defaults, space.user));
    assert_true(space.valid(point, space.user));
    assert_false(space.valid(bad, space.user));
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(space.params[i].name, names[i]);
    char key[256];
    clcnn__conv_problem_key(&cp, key, sizeof key);
    const int *points[2] = {point, bad};
    for (int round = 0; round < 2; round++) {
        const clcnn__tune_db_entry e = {.kernel = "conv2d_winograd4",
                                        .problem = key,
                                        .solver = "winograd4",
                                        .nparams = 5,
                                        .names = names,
                                        .values = points[round],
                                        .time_us = 1,
                                        .verified = true,
                                        .complete = true};
        assert_ok(clcnn__tune_db_write(pb.dev, &e));
        problem_free(&pb);
        problem_make(&pb, 12);
        assert_ok(clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_WINOGRAD4,
                                       NULL, 0, pb.y));
        float *out = test_download(pb.y);
        assert_int_equal(clcnn__program_built_with(pb.dev, "conv2d_winograd.cl", tuned),
                         round == 0);
        assert_memory_equal(out, ref, n * sizeof *out);
        free(out);
    }
    /* With the good point back under h=12's key, h=9 (no entry of its own) takes it as the
     * nearest problem's. */
    const clcnn__tune_db_entry e = {.kernel = "conv2d_winograd4",
                                    .problem = key,
                                    .solver = "winograd4",
                                    .nparams = 5,
                                    .names = names,
                                    .values = point,
                                    .time_us = 1,
                                    .verified = true,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(pb.dev, &e));
    problem_free(&pb);
    problem_make(&pb, 9);
    assert_ok(clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_WINOGRAD4, NULL,
                                   0, pb.y));
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_winograd.cl", tuned));
    problem_free(&pb);
    free(ref);
}

/* gemm parameters from the database: a stored point builds im2col with its vector width and
 * gives the defaults' result; an invalid one (16 lanes over 4 output pixels) is ignored. */
static void test_gemm_build_uses_stored_parameters(void **state)
{
    (void)state;
    static const char *const names[3] = {"IM2COL_VW", "WS_MIB", "WIDE"};
    const int point[3] = {4, 16, 0};
    problem pb;
    problem_make(&pb, 12);
    assert_ok(
        clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_GEMM, NULL, 0, pb.y));
    float *ref = test_download(pb.y);
    size_t n = clcnn_tensor_count(pb.y);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_im2col.cl", "-DIM2COL_VW=4"));
    clcnn__conv_problem cp;
    assert_ok(
        clcnn__conv_make_problem(clcnn_tensor_shape(pb.x), clcnn_tensor_shape(pb.w), &pb.p, &cp));
    clcnn__conv_tuning tuning;
    clcnn__tune_space space;
    clcnn__conv_tunable_gemm.space(&cp, pb.dev, &clcnn__conv_tunable_gemm, &tuning, &space);
    assert_ok(clcnn__tune_space_check(&space));
    assert_true(space.valid(space.defaults, space.user));
    assert_true(space.valid(point, space.user));
    char key[256];
    clcnn__conv_problem_key(&cp, key, sizeof key);
    const clcnn__tune_db_entry e = {.kernel = "conv2d_gemm",
                                    .problem = key,
                                    .solver = "gemm",
                                    .nparams = 3,
                                    .names = names,
                                    .values = point,
                                    .time_us = 1,
                                    .verified = true,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(pb.dev, &e));
    problem_free(&pb);
    problem_make(&pb, 12);
    /* The per-image layout needs no temporary output: the workspace is the columns alone. */
    size_t ws = 0;
    assert_ok(clcnn_conv2d_workspace_size(pb.dev, clcnn_tensor_shape(pb.x),
                                          clcnn_tensor_shape(pb.w), &pb.p, CLCNN_CONV_ALGO_GEMM,
                                          &ws));
    assert_int_equal(ws, 2 * 27 * 144 * sizeof(float));
    assert_ok(
        clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_GEMM, NULL, 0, pb.y));
    float *out = test_download(pb.y);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_im2col.cl", "-DIM2COL_VW=4"));
    assert_close(out, ref, n);
    free(out);
    problem_free(&pb);

    /* 16 lanes over a 2x2 output break the constraint. */
    problem_make(&pb, 4);
    clcnn_conv_params p = pb.p;
    p.pad_h = p.pad_w = 0;
    assert_ok(
        clcnn__conv_make_problem(clcnn_tensor_shape(pb.x), clcnn_tensor_shape(pb.w), &p, &cp));
    clcnn__conv_tunable_gemm.space(&cp, pb.dev, &clcnn__conv_tunable_gemm, &tuning, &space);
    const int wide16[3] = {16, 16, 1};
    assert_false(space.valid(wide16, space.user));
    problem_free(&pb);
    free(ref);
}

static void store_clblast(clcnn_device *dev, const int *values)
{
    static const char *const names[8] = {"MIN_INDIRECT", "MWG",   "NWG", "KWG",
                                         "MDIMC",        "NDIMC", "VWM", "VWN"};
    const clcnn__tune_db_entry e = {.kernel = CLCNN__CLBLAST_DB_KERNEL,
                                    .problem = CLCNN__CLBLAST_DB_PROBLEM,
                                    .solver = "clblast",
                                    .nparams = 8,
                                    .names = names,
                                    .values = values,
                                    .time_us = 1,
                                    .verified = true,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(dev, &e));
}

/* CLBlast's parameters: the space's constraint; a stored point applied when a device is created
 * (not with CLCNN_TUNE_CLBLAST=off, not when it breaks the constraint), after which the gemm
 * solver still gives the direct solver's result. */
static void test_clblast_parameters_applied_at_creation(void **state)
{
    (void)state;
    const int point[8] = {1, 64, 64, 32, 8, 8, 8, 1};
    const int uneven[8] = {1, 16, 64, 32, 8, 8, 4, 1}; /* 16 % (8 * 4) != 0 */
    const int pinned[8] = {0, 32, 64, 32, 8, 8, 8, 1}; /* CLBlast's own, but not the pinned rest */
    problem pb;
    problem_make(&pb, 12);
    assert_false(pb.dev->clblast_tuned);
    clcnn__tune_space space;
    clcnn__clblast_space(pb.dev, &space);
    assert_ok(clcnn__tune_space_check(&space));
    assert_true(space.valid(space.defaults, space.user));
    assert_int_equal(space.defaults[0], 0);
    assert_true(space.valid(point, space.user));
    assert_false(space.valid(uneven, space.user));
    assert_false(space.valid(pinned, space.user));
    assert_true(clcnn__tune_space_count_valid(&space) > 100);
    assert_ok(clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_DIRECT, NULL, 0,
                                   pb.y));
    float *ref = test_download(pb.y);
    size_t n = clcnn_tensor_count(pb.y);
    store_clblast(pb.dev, point);
    problem_free(&pb);

    setenv("CLCNN_TUNE_CLBLAST", "off", 1);
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    assert_false(dev->clblast_tuned);
    clcnn_device_release(dev);
    unsetenv("CLCNN_TUNE_CLBLAST");

    problem_make(&pb, 12);
    assert_true(pb.dev->clblast_tuned);
    assert_memory_equal(pb.dev->clblast_params, point, sizeof point);
    assert_ok(
        clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_GEMM, NULL, 0, pb.y));
    float *out = test_download(pb.y);
    assert_close(out, ref, n);
    free(out);

    store_clblast(pb.dev, uneven);
    problem_free(&pb);
    warn_capture c = {0};
    clcnn_log_set(capture, &c, CLCNN_LOG_WARN);
    assert_ok(clcnn_device_create(NULL, &dev));
    clcnn_log_set(NULL, NULL, CLCNN_LOG_WARN);
    assert_false(dev->clblast_tuned);
    assert_int_equal(c.warnings, 1);
    assert_non_null(strstr(c.last, "CLBlast"));
    clcnn_device_release(dev);
    free(ref);
}

/* Backward-weights implicit GEMM parameters, keyed by pass: a stored point builds the kernels
 * with its -D options and gives the defaults' dw; the forward's entries do not touch it. */
static void test_igemm_bwd_weights_uses_stored_parameters(void **state)
{
    (void)state;
    static const char *const names[3] = {"IG_MR", "IG_KV", "CHUNK_MIB"};
    const int point[3] = {4, 1, 16};
    const char *tuned = "-DIG_MR=4 -DIG_KV=1";
    problem pb;
    problem_make(&pb, 12);
    /* y serves as dy, w receives dw. */
    test_rng rng;
    test_rng_seed(&rng, 7);
    size_t ny = clcnn_tensor_count(pb.y), nw = clcnn_tensor_count(pb.w);
    float *dy = malloc(ny * sizeof *dy);
    test_rng_fill(&rng, dy, ny, -1, 1);
    assert_ok(clcnn_tensor_upload(pb.y, dy, ny));
    assert_ok(clcnn_conv2d_backward_weights(pb.dev, pb.x, pb.y, &pb.p,
                                            CLCNN_CONV_ALGO_IMPLICIT_GEMM, NULL, 0, pb.w));
    float *ref = test_download(pb.w);
    assert_false(clcnn__program_built_with(pb.dev, "conv2d_bwd_igemm.cl", tuned));
    clcnn__conv_problem cp;
    assert_ok(
        clcnn__conv_make_problem(clcnn_tensor_shape(pb.x), clcnn_tensor_shape(pb.w), &pb.p, &cp));
    const clcnn__conv_tunable *t =
        clcnn__conv_tunable_find("implicit_gemm", CLCNN_CONV_PASS_BWD_WEIGHTS);
    assert_ptr_equal(t, &clcnn__conv_tunable_bwd_weights_igemm);
    assert_null(clcnn__conv_tunable_find("implicit_gemm", CLCNN_CONV_PASS_FWD));
    clcnn__conv_tuning tuning;
    clcnn__tune_space space;
    t->space(&cp, pb.dev, t, &tuning, &space);
    assert_ok(clcnn__tune_space_check(&space));
    assert_true(space.valid(space.defaults, space.user));
    assert_true(space.valid(point, space.user));
    const int wide[3] = {4, 2, 16}; /* 32 channels per work-item where there are 4 */
    assert_false(space.valid(wide, space.user));
    char key[256];
    clcnn__conv_problem_key(&cp, key, sizeof key);
    const clcnn__tune_db_entry e = {.kernel = t->db_kernel,
                                    .problem = key,
                                    .solver = "implicit_gemm",
                                    .nparams = 3,
                                    .names = names,
                                    .values = point,
                                    .time_us = 1,
                                    .verified = true,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(pb.dev, &e));
    clcnn_tensor *x = pb.x, *w = pb.w, *y = pb.y;
    clcnn_tensor_release(pb.b);
    clcnn_device *old = pb.dev;
    /* A fresh handle on the same tensors' data: upload again. */
    float *hx = test_download(x);
    clcnn_tensor_release(x);
    clcnn_tensor_release(w);
    clcnn_tensor_release(y);
    clcnn_device_release(old);
    problem_make(&pb, 12);
    assert_ok(clcnn_tensor_upload(pb.x, hx, clcnn_tensor_count(pb.x)));
    assert_ok(clcnn_tensor_upload(pb.y, dy, ny));
    assert_ok(clcnn_conv2d_backward_weights(pb.dev, pb.x, pb.y, &pb.p,
                                            CLCNN_CONV_ALGO_IMPLICIT_GEMM, NULL, 0, pb.w));
    float *out = test_download(pb.w);
    assert_true(clcnn__program_built_with(pb.dev, "conv2d_bwd_igemm.cl", tuned));
    assert_close(out, ref, nw);
    free(out);
    free(hx);
    free(dy);
    free(ref);
    problem_free(&pb);
}

/* The backward direct solvers' parameters, one entry per pass: a stored point builds each pass's
 * kernel with its -D options and gives the defaults' result; an entry of one pass leaves the
 * other alone. */
static void test_bwd_direct_uses_stored_parameters(void **state)
{
    (void)state;
    static const char *const data_names[3] = {"BWD_VW", "BWD_YB", "BWD_CB"};
    static const char *const weights_names[3] = {"BWD_VW", "BWDW_KB", "BWDW_TB"};
    const int data_point[3] = {4, 1, 2}, weights_point[3] = {4, 2, 1};
    const char *data_opts = "-DBWD_VW=4 -DBWD_YB=1 -DBWD_CB=2";
    const char *weights_opts = "-DBWD_VW=4 -DBWDW_KB=2 -DBWDW_TB=1";
    problem pb;
    problem_make(&pb, 12);
    size_t nx = clcnn_tensor_count(pb.x), ny = clcnn_tensor_count(pb.y);
    size_t nw = clcnn_tensor_count(pb.w);
    float *dy = malloc(ny * sizeof *dy);
    test_rng rng;
    test_rng_seed(&rng, 11);
    test_rng_fill(&rng, dy, ny, -1, 1);
    float *hx = test_download(pb.x), *hw = test_download(pb.w);
    clcnn_tensor *dx = NULL, *dw = NULL;
    float *ref_dx = NULL, *ref_dw = NULL;
    clcnn__conv_problem cp;
    assert_ok(
        clcnn__conv_make_problem(clcnn_tensor_shape(pb.x), clcnn_tensor_shape(pb.w), &pb.p, &cp));
    char key[256];
    clcnn__conv_problem_key(&cp, key, sizeof key);
    for (int round = 0; round < 3; round++) {
        /* 0: defaults; 1: a stored backward-data point; 2: and a backward-weights one. */
        assert_ok(clcnn_tensor_upload(pb.y, dy, ny));
        assert_ok(clcnn_tensor_create(pb.dev, clcnn_tensor_shape(pb.x), &dx));
        assert_ok(clcnn_tensor_create(pb.dev, clcnn_tensor_shape(pb.w), &dw));
        assert_ok(clcnn_conv2d_backward_data(pb.dev, pb.y, pb.w, &pb.p, CLCNN_CONV_ALGO_DIRECT,
                                             NULL, 0, dx));
        assert_ok(clcnn_conv2d_backward_weights(pb.dev, pb.x, pb.y, &pb.p, CLCNN_CONV_ALGO_DIRECT,
                                                NULL, 0, dw));
        float *got_dx = test_download(dx), *got_dw = test_download(dw);
        assert_int_equal(clcnn__program_built_with(pb.dev, "conv2d_bwd_direct.cl", data_opts),
                         round >= 1);
        assert_int_equal(clcnn__program_built_with(pb.dev, "conv2d_bwd_direct.cl", weights_opts),
                         round >= 2);
        if (round == 0) {
            ref_dx = got_dx;
            ref_dw = got_dw;
        } else {
            assert_close(got_dx, ref_dx, nx);
            assert_close(got_dw, ref_dw, nw);
            free(got_dx);
            free(got_dw);
        }
        clcnn_tensor_release(dx);
        clcnn_tensor_release(dw);
        if (round == 2)
            break;
        const clcnn__conv_tunable *t =
            round == 0 ? clcnn__conv_tunable_find("direct", CLCNN_CONV_PASS_BWD_DATA)
                       : clcnn__conv_tunable_find("direct", CLCNN_CONV_PASS_BWD_WEIGHTS);
        assert_non_null(t);
        clcnn__conv_tuning tuning;
        clcnn__tune_space space;
        t->space(&cp, pb.dev, t, &tuning, &space);
        assert_ok(clcnn__tune_space_check(&space));
        const int *point = round == 0 ? data_point : weights_point;
        assert_true(space.valid(point, space.user));
        const clcnn__tune_db_entry e = {.kernel = t->db_kernel,
                                        .problem = key,
                                        .solver = "direct",
                                        .nparams = 3,
                                        .names = round == 0 ? data_names : weights_names,
                                        .values = point,
                                        .time_us = 1,
                                        .verified = true,
                                        .complete = true};
        assert_ok(clcnn__tune_db_write(pb.dev, &e));
        problem_free(&pb);
        problem_make(&pb, 12);
        assert_ok(clcnn_tensor_upload(pb.x, hx, nx));
        assert_ok(clcnn_tensor_upload(pb.w, hw, nw));
    }
    problem_free(&pb);
    free(ref_dx);
    free(ref_dw);
    free(hx);
    free(hw);
    free(dy);
}

/* Pooling forward parameters: a stored point builds the 2x2 stride-2 kernel with its vector
 * width and gives the defaults' bits; a problem without an entry takes the nearest one's; a
 * width on another window breaks the constraint and is ignored. */
static void test_pool_uses_stored_parameters(void **state)
{
    (void)state;
    static const char *const names[2] = {"POOL_VW", "LWS"};
    const int point[2] = {4, 4};
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    const clcnn_shape xs = {2, 3, 16, 16};
    clcnn_pool_params p = clcnn_pool_params_default(CLCNN_POOL_MAX);
    clcnn_tensor *x, *y;
    clcnn_shape ys;
    assert_ok(clcnn_pool_output_shape(xs, &p, &ys));
    assert_ok(clcnn_tensor_create(dev, xs, &x));
    assert_ok(clcnn_tensor_create(dev, ys, &y));
    test_rng rng;
    test_rng_seed(&rng, 5);
    float hx[2 * 3 * 16 * 16];
    test_rng_fill(&rng, hx, 2 * 3 * 16 * 16, -1, 1);
    assert_ok(clcnn_tensor_upload(x, hx, 2 * 3 * 16 * 16));
    assert_ok(clcnn_pool_forward(dev, x, &p, y, NULL));
    float *ref = test_download(y);
    assert_false(clcnn__program_built_with(dev, "pool.cl", "-DPOOL_VW=4"));
    clcnn__pool_tuning tuning;
    clcnn__tune_space space;
    assert_ok(clcnn__pool_space(dev, xs, &p, &tuning, &space));
    assert_ok(clcnn__tune_space_check(&space));
    assert_true(space.valid(space.defaults, space.user));
    assert_true(space.valid(point, space.user));
    char key[160];
    assert_ok(clcnn__pool_key(xs, &p, key, sizeof key));
    assert_string_equal(key, "n2c3h16w16r2s2u2p0m0");
    /* Stored for a bigger batch: the nearest problem's entry serves this one. */
    const clcnn__tune_db_entry e = {.kernel = CLCNN__POOL_DB_KERNEL,
                                    .problem = "n8c3h16w16r2s2u2p0m0",
                                    .solver = "pool",
                                    .nparams = 2,
                                    .names = names,
                                    .values = point,
                                    .time_us = 1,
                                    .verified = true,
                                    .complete = true};
    assert_ok(clcnn__tune_db_write(dev, &e));
    assert_ok(clcnn_tensor_fill(y, NAN));
    assert_ok(clcnn_pool_forward(dev, x, &p, y, NULL));
    float *out = test_download(y);
    assert_true(clcnn__program_built_with(dev, "pool.cl", "-DPOOL_VW=4"));
    assert_memory_equal(out, ref, clcnn_tensor_count(y) * sizeof *out);
    free(out);
    /* A 3x3 window has no vector kernel: the point breaks the constraint there. */
    clcnn_pool_params q = p;
    q.window_h = q.window_w = 3;
    assert_ok(clcnn__pool_space(dev, xs, &q, &tuning, &space));
    assert_false(space.valid(point, space.user));
    const int lws_only[2] = {8, 4};
    assert_true(space.valid(lws_only, space.user));
    clcnn_tensor_release(x);
    clcnn_tensor_release(y);
    clcnn_device_release(dev);
    free(ref);
}

/* A workspace smaller than the run's configuration needs is refused before anything is written
 * (a caller that overstates its size, or a tuning database re-read between the query and the
 * run); the output is left alone. */
static void test_small_workspace_refused(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 12);
    size_t need = 0;
    assert_ok(clcnn_conv2d_workspace_size(pb.dev, clcnn_tensor_shape(pb.x),
                                          clcnn_tensor_shape(pb.w), &pb.p, CLCNN_CONV_ALGO_DIRECT,
                                          &need));
    assert_true(need > 64);
    cl_int err;
    cl_mem small = clCreateBuffer(clcnn_device_context(pb.dev), CL_MEM_READ_WRITE, 64, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_ok(clcnn_tensor_fill(pb.y, 7.0f));
    assert_status_msg(clcnn_conv2d_forward(pb.dev, pb.x, pb.w, pb.b, &pb.p, CLCNN_CONV_ALGO_DIRECT,
                                           small, need, pb.y),
                      CLCNN_STATUS_INVALID_ARG, "workspace has 64 bytes");
    float *out = test_download(pb.y);
    for (size_t i = 0; i < clcnn_tensor_count(pb.y); i++)
        assert_true(out[i] == 7.0f);
    free(out);
    clReleaseMemObject(small);
    problem_free(&pb);
}

/* Nearest-problem answers are remembered per handle until the database changes: the same
 * question gives the same answer, and an entry written through the handle is seen at once. */
static void test_nearest_answers_follow_writes(void **state)
{
    (void)state;
    problem pb;
    problem_make(&pb, 12);
    clcnn__tune_db_match m[8];
    const char *key = "n2c3h12w12k4r3s3u1p1d1g1";
    assert_int_equal(clcnn__tune_db_nearest(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, key,
                                            CLCNN__CONV_NEAREST_SAME, direct_names, 5, m, 8),
                     0);
    store_direct(&pb, point_a, 5); /* for h=12 itself */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(clcnn__tune_db_nearest(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, key,
                                                CLCNN__CONV_NEAREST_SAME, direct_names, 5, m, 8),
                         1);
        assert_string_equal(m[0].problem, key);
        assert_memory_equal(m[0].values, point_a, sizeof point_a);
    }
    /* Fewer names asked for is another question. */
    assert_int_equal(clcnn__tune_db_nearest(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, key,
                                            CLCNN__CONV_NEAREST_SAME, direct_names, 2, m, 8),
                     1);
    assert_int_equal(m[0].values[0], point_a[0]);
    assert_int_equal(m[0].values[1], point_a[1]);
    store_direct(&pb, point_b, 5);
    assert_int_equal(clcnn__tune_db_nearest(pb.dev, CLCNN__CONV_DIRECT_DB_KERNEL, key,
                                            CLCNN__CONV_NEAREST_SAME, direct_names, 5, m, 8),
                     1);
    assert_memory_equal(m[0].values, point_b, sizeof point_b);
    problem_free(&pb);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_find_ranks_records_and_auto_uses_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_database_is_ignored_then_rewritten, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_records_merge_with_other_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_off_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_round_trip_and_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_build_uses_stored_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_space_respects_device_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipped_only, setup_shipped, teardown_shipped),
        cmocka_unit_test_setup_teardown(test_user_overrides_shipped, setup_shipped,
                                        teardown_shipped),
        cmocka_unit_test_setup_teardown(test_corrupt_shipped_ignored, setup_shipped,
                                        teardown_shipped),
        cmocka_unit_test_setup_teardown(test_shipped_other_driver, setup_shipped, teardown_shipped),
        cmocka_unit_test_setup_teardown(test_nearest_problem, setup_shipped, teardown_shipped),
        cmocka_unit_test_setup_teardown(test_auto_nearest_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nearest_answers_follow_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repository_database, setup, teardown),
        cmocka_unit_test(test_repository_files),
        cmocka_unit_test_setup_teardown(test_winograd_build_uses_stored_parameters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gemm_build_uses_stored_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clblast_parameters_applied_at_creation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_igemm_bwd_weights_uses_stored_parameters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bwd_direct_uses_stored_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_uses_stored_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_workspace_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("tune_db", tests, NULL, NULL);
}
