/* Status names and messages, the OpenCL error-name table, the thread-local last error, the
 * log sink, and the file helpers (atomic write, bounded read, FNV-1a). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "fileio_impl.h"
#include "log_impl.h"
#include "status_impl.h"

static void test_status_names_pinned(void **state)
{
    (void)state;
    /* The numeric values are part of the ABI: these must never change. */
    assert_int_equal(CLCNN_STATUS_OK, 0);
    assert_int_equal(CLCNN_STATUS_INVALID_ARG, 1);
    assert_int_equal(CLCNN_STATUS_BAD_SHAPE, 2);
    assert_int_equal(CLCNN_STATUS_UNSUPPORTED, 3);
    assert_int_equal(CLCNN_STATUS_NO_DEVICE, 4);
    assert_int_equal(CLCNN_STATUS_OUT_OF_MEMORY, 5);
    assert_int_equal(CLCNN_STATUS_BUILD_FAILED, 6);
    assert_int_equal(CLCNN_STATUS_CL_ERROR, 7);
    assert_int_equal(CLCNN_STATUS_IO, 8);
    assert_int_equal(CLCNN_STATUS_PARSE, 9);
    assert_int_equal(CLCNN_STATUS_CORRUPT, 10);
    assert_int_equal(CLCNN_STATUS_INTERNAL, 11);
    assert_string_equal(clcnn_status_name(CLCNN_STATUS_BAD_SHAPE), "BAD_SHAPE");
    assert_string_equal(clcnn_status_name(CLCNN_STATUS_OK), "OK");
    assert_string_equal(clcnn_status_name((clcnn_status)999), "UNKNOWN");
    assert_string_equal(clcnn_status_message(CLCNN_STATUS_NO_DEVICE), "no matching OpenCL device");
    for (int s = 0; s < CLCNN_STATUS_COUNT; s++) {
        assert_string_not_equal(clcnn_status_name((clcnn_status)s), "UNKNOWN");
        assert_string_not_equal(clcnn_status_message((clcnn_status)s), "unknown status");
    }
}

static void test_cl_error_names(void **state)
{
    (void)state;
    assert_string_equal(clcnn_cl_error_name(-5), "CL_OUT_OF_RESOURCES");
    assert_string_equal(clcnn_cl_error_name(-4), "CL_MEM_OBJECT_ALLOCATION_FAILURE");
    assert_string_equal(clcnn_cl_error_name(-11), "CL_BUILD_PROGRAM_FAILURE");
    assert_string_equal(clcnn_cl_error_name(-54), "CL_INVALID_WORK_GROUP_SIZE");
    assert_string_equal(clcnn_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    assert_string_equal(clcnn_cl_error_name(0), "CL_SUCCESS");
    assert_string_equal(clcnn_cl_error_name(-12345), "CL_UNKNOWN_ERROR");
    /* Every code from -1 to -19 and -30 to -72 has a name. */
    for (int e = -1; e >= -72; e--) {
        if (e < -19 && e > -30)
            continue;
        assert_string_not_equal(clcnn_cl_error_name(e), "CL_UNKNOWN_ERROR");
    }
}

static void test_error_message_has_location(void **state)
{
    (void)state;
    clcnn_clear_error();
    assert_string_equal(clcnn_last_error(), "");
    int line = __LINE__ + 1;
    clcnn_status st = CLCNN_ERR(CLCNN_STATUS_BAD_SHAPE, "conv2d: shape %dx%d", 3, 4);
    assert_int_equal(st, CLCNN_STATUS_BAD_SHAPE);
    char want[128];
    snprintf(want, sizeof want, "conv2d: shape 3x4 [test_status.c:%d]", line);
    assert_string_equal(clcnn_last_error(), want);
    assert_int_equal(clcnn_last_cl_error(), 0);

    st = CLCNN_CL_ERR(-5, "conv2d: clEnqueueNDRangeKernel");
    assert_int_equal(st, CLCNN_STATUS_CL_ERROR);
    assert_non_null(strstr(clcnn_last_error(), "clEnqueueNDRangeKernel -> CL_OUT_OF_RESOURCES"));
    assert_int_equal(clcnn_last_cl_error(), -5);
    assert_int_equal(CLCNN_CL_ERR(-4, "alloc"), CLCNN_STATUS_OUT_OF_MEMORY);
    assert_int_equal(CLCNN_CL_ERR(-6, "alloc"), CLCNN_STATUS_OUT_OF_MEMORY);

    clcnn__error_prefix("layer %d", 7);
    assert_true(strncmp(clcnn_last_error(), "layer 7: alloc -> CL_OUT_OF_HOST_MEMORY", 39) == 0);
    clcnn_clear_error();
    assert_string_equal(clcnn_last_error(), "");
    assert_int_equal(clcnn_last_cl_error(), 0);
}

static void test_long_message_keeps_location(void **state)
{
    (void)state;
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    (void)CLCNN_ERR(CLCNN_STATUS_IO, "%s", big);
    const char *m = clcnn_last_error();
    assert_true(strlen(m) < 8192);
    assert_non_null(strstr(m, "[test_status.c:"));
}

static void *thread_body(void *arg)
{
    (void)arg;
    clcnn_clear_error();
    (void)CLCNN_ERR(CLCNN_STATUS_PARSE, "from the other thread");
    return NULL;
}

static void test_last_error_is_thread_local(void **state)
{
    (void)state;
    (void)CLCNN_ERR(CLCNN_STATUS_IO, "main thread");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_body, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(strstr(clcnn_last_error(), "main thread"));
}

typedef struct log_capture {
    int count;
    clcnn_log_level level;
    char module[32];
    char text[256];
} log_capture;

static void capture(clcnn_log_level level, const char *module, const char *msg, void *user)
{
    log_capture *c = user;
    c->count++;
    c->level = level;
    snprintf(c->module, sizeof c->module, "%s", module);
    snprintf(c->text, sizeof c->text, "%s", msg);
}

static void test_log_sink_and_levels(void **state)
{
    (void)state;
    log_capture c = {0};
    clcnn_log_set(capture, &c, CLCNN_LOG_INFO);
    assert_int_equal(clcnn_log_get_level(), CLCNN_LOG_INFO);
    CLCNN_DEBUG("test", "dropped %d", 1);
    assert_int_equal(c.count, 0);
    CLCNN_INFO("test", "kept %d", 2);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.level, CLCNN_LOG_INFO);
    assert_string_equal(c.module, "test");
    assert_string_equal(c.text, "kept 2");
    CLCNN_WARN("device", "warned");
    assert_int_equal(c.count, 2);
    assert_int_equal(c.level, CLCNN_LOG_WARN);
    assert_string_equal(clcnn_log_level_name(CLCNN_LOG_TRACE), "trace");
    assert_string_equal(clcnn_log_level_name((clcnn_log_level)42), "unknown");
    clcnn_log_set(NULL, NULL, CLCNN_LOG_WARN);
}

static void test_fnv1a64_known_values(void **state)
{
    (void)state;
    /* Published FNV-1a 64 test vectors. */
    assert_true(clcnn__fnv1a64(CLCNN_FNV1A64_INIT, "", 0) == 0xcbf29ce484222325ull);
    assert_true(clcnn__fnv1a64(CLCNN_FNV1A64_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(clcnn__fnv1a64(CLCNN_FNV1A64_INIT, "foobar", 6) == 0x85944171f73967e8ull);
    uint64_t h = clcnn__fnv1a64(CLCNN_FNV1A64_INIT, "foo", 3);
    assert_true(clcnn__fnv1a64(h, "bar", 3) == 0x85944171f73967e8ull);
}

static void test_atomic_write_and_bounded_read(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *sub = test_path(dir, "a/b/c");
    assert_ok(clcnn__mkdir_p(sub));
    assert_ok(clcnn__mkdir_p(sub));
    char *file = test_path(sub, "f.bin");
    assert_ok(clcnn__file_write_atomic(file, "hello", 5));
    assert_ok(clcnn__file_write_atomic(file, "replaced!", 9));
    void *data;
    size_t size;
    assert_ok(clcnn__file_read_all(file, 100, &data, &size));
    assert_int_equal(size, 9);
    assert_memory_equal(data, "replaced!", 9);
    assert_int_equal(((char *)data)[9], '\0');
    free(data);
    assert_status_msg(clcnn__file_read_all(file, 8, &data, &size), CLCNN_STATUS_CORRUPT,
                      "over the limit");
    char *missing = test_path(dir, "missing");
    assert_status_msg(clcnn__file_read_all(missing, 8, &data, &size), CLCNN_STATUS_IO, "missing");
    /* A write into a directory that does not exist fails and leaves nothing behind. */
    char *bad = test_path(dir, "nope/f.bin");
    assert_int_equal(clcnn__file_write_atomic(bad, "x", 1), CLCNN_STATUS_IO);
    /* A killed writer's temporary file (its pid gone, over a minute old) goes with the next
     * save; a fresh one, or one of a live process, stays. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    char stale[4200], fresh[4200], live[4200];
    snprintf(stale, sizeof stale, "%s.tmp.%ld.7", file, (long)child);
    snprintf(fresh, sizeof fresh, "%s.tmp.%ld.8", file, (long)child);
    snprintf(live, sizeof live, "%s.tmp.%ld.9", file, (long)getppid());
    const struct timespec old_times[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    for (int i = 0; i < 3; i++) {
        const char *t = i == 0 ? stale : i == 1 ? fresh : live;
        test_write_file(t, "half", 4);
        if (i != 1)
            assert_int_equal(utimensat(AT_FDCWD, t, old_times, 0), 0);
    }
    assert_ok(clcnn__file_write_atomic(file, "replaced!", 9));
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(fresh, F_OK), 0);
    assert_int_equal(access(live, F_OK), 0);
    unlink(fresh);
    unlink(live);
    /* No temporary files are left next to the target. */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q tmp", sub);
    assert_int_not_equal(system(cmd), 0);
    test_rmtree(dir);
    free(bad);
    free(missing);
    free(file);
    free(sub);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names_pinned),
        cmocka_unit_test(test_cl_error_names),
        cmocka_unit_test(test_error_message_has_location),
        cmocka_unit_test(test_long_message_keeps_location),
        cmocka_unit_test(test_last_error_is_thread_local),
        cmocka_unit_test(test_log_sink_and_levels),
        cmocka_unit_test(test_fnv1a64_known_values),
        cmocka_unit_test(test_atomic_write_and_bounded_read),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
