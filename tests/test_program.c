/* The program layer on a real device: embedded sources build and run with the right values,
 * the binary cache hits, corrupt entries are rebuilt, offline binaries load, build failures
 * carry the log, concurrent processes share a cache, and the local-memory + barrier regression
 * for POCL's partly active work-groups. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "program_impl.h"

extern char **environ;

static char *cache_dir;

static int setup(void **state)
{
    (void)state;
    cache_dir = test_tempdir();
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
    unsetenv("CLCNN_BINARY_DIR");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rmtree(cache_dir);
    free(cache_dir);
    cache_dir = NULL;
    return 0;
}

static clcnn_program_stats stats_of(clcnn_device *dev)
{
    clcnn_program_stats s;
    assert_ok(clcnn_program_stats_get(dev, &s));
    return s;
}

/* Runs y = alpha*x + beta*y on the device and checks it against a float64 reference. */
static void check_axpby(clcnn_device *dev, size_t n)
{
    test_rng rng;
    test_rng_seed(&rng, n);
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *out = malloc(n * sizeof *out);
    assert_true(x && y && out);
    test_rng_fill(&rng, x, n, -2.0f, 2.0f);
    test_rng_fill(&rng, y, n, -2.0f, 2.0f);
    const float alpha = 1.75f, beta = -0.5f;
    clcnn_tensor *tx, *ty;
    clcnn_shape shape = {1, 1, 1, n};
    assert_ok(clcnn_tensor_create(dev, shape, &tx));
    assert_ok(clcnn_tensor_create(dev, shape, &ty));
    assert_ok(clcnn_tensor_upload(tx, x, n));
    assert_ok(clcnn_tensor_upload(ty, y, n));
    cl_kernel k;
    assert_ok(clcnn__kernel_create(dev, "util.cl", NULL, "clcnn_axpby", &k));
    cl_uint un = (cl_uint)n;
    cl_mem bx = clcnn_tensor_buffer(tx), by = clcnn_tensor_buffer(ty);
    assert_int_equal(clSetKernelArg(k, 0, sizeof un, &un), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 1, sizeof alpha, &alpha), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 2, sizeof bx, &bx), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 3, sizeof beta, &beta), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 4, sizeof by, &by), CL_SUCCESS);
    size_t local = 64, global = clcnn__round_up(n, local);
    assert_int_equal(clEnqueueNDRangeKernel(clcnn_device_compute_queue(dev), k, 1, NULL, &global,
                                            &local, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_ok(clcnn_tensor_download(ty, out, n));
    for (size_t i = 0; i < n; i++) {
        double ref = (double)alpha * x[i] + (double)beta * y[i];
        assert_true(fabs(out[i] - ref) <= 1e-6 * (fabs(ref) + 1.0));
    }
    clReleaseKernel(k);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(ty);
    free(x);
    free(y);
    free(out);
}

/* The one cache entry file in dir (asserts there is exactly one). */
static char *only_entry(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *found = NULL;
    int count = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        count++;
        assert_non_null(strstr(e->d_name, ".clbin"));
        free(found);
        found = test_path(dir, e->d_name);
    }
    closedir(d);
    assert_int_equal(count, 1);
    return found;
}

static void test_build_run_and_cache_hit(void **state)
{
    (void)state;
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    assert_string_equal(clcnn_program_cache_dir(dev), cache_dir);
    check_axpby(dev, 1000);
    clcnn_program_stats s = stats_of(dev);
    assert_int_equal(s.source_builds, 1);
    assert_int_equal(s.cache_misses, 1);
    assert_int_equal(s.cache_writes, 1);
    assert_int_equal(s.cache_hits, 0);
    /* Same handle, same program: served from memory. */
    cl_program p1, p2;
    assert_ok(clcnn__program_get(dev, "util.cl", NULL, &p1));
    assert_ok(clcnn__program_get(dev, "util.cl", "", &p2));
    assert_ptr_equal(p1, p2);
    assert_int_equal(stats_of(dev).memory_hits, 2);
    assert_int_equal(stats_of(dev).programs, 1);
    clcnn_device_release(dev);

    /* A new handle finds the binary on disk and does not compile. */
    assert_ok(clcnn_device_create(NULL, &dev));
    check_axpby(dev, 77);
    s = stats_of(dev);
    assert_int_equal(s.cache_hits, 1);
    assert_int_equal(s.source_builds, 0);
    assert_int_equal(s.cache_writes, 0);
    /* Other build options are another program and another entry. */
    cl_program p3;
    assert_ok(clcnn__program_get(dev, "util.cl", "-DCLCNN_WG=32", &p3));
    s = stats_of(dev);
    assert_int_equal(s.source_builds, 1);
    assert_int_equal(s.programs, 2);
    clcnn_device_release(dev);
}

static void corrupt_and_rebuild(void (*damage)(const char *path))
{
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    cl_program p;
    assert_ok(clcnn__program_get(dev, "util.cl", NULL, &p));
    clcnn_device_release(dev);
    char *entry = only_entry(cache_dir);
    damage(entry);

    assert_ok(clcnn_device_create(NULL, &dev));
    check_axpby(dev, 333);
    clcnn_program_stats s = stats_of(dev);
    assert_int_equal(s.cache_rejected, 1);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.source_builds, 1);
    assert_int_equal(s.cache_writes, 1);
    clcnn_device_release(dev);

    /* The rewritten entry is good again. */
    assert_ok(clcnn_device_create(NULL, &dev));
    assert_ok(clcnn__program_get(dev, "util.cl", NULL, &p));
    assert_int_equal(stats_of(dev).cache_hits, 1);
    clcnn_device_release(dev);
    free(only_entry(cache_dir));
    free(entry);
}

static void flip_payload_byte(const char *path)
{
    size_t size;
    unsigned char *data = test_read_file(path, &size);
    assert_true(size > 100);
    data[size - 10] ^= 0x5a;
    test_write_file(path, data, size);
    free(data);
}

static void truncate_half(const char *path)
{
    size_t size;
    unsigned char *data = test_read_file(path, &size);
    test_write_file(path, data, size / 2);
    free(data);
}

static void replace_with_garbage(const char *path)
{
    test_write_file(path, "CLCNNBIN garbage that is not an entry", 36);
}

static void test_corrupt_entry_is_rebuilt(void **state)
{
    (void)state;
    corrupt_and_rebuild(flip_payload_byte);
}

static void test_truncated_entry_is_rebuilt(void **state)
{
    (void)state;
    corrupt_and_rebuild(truncate_half);
}

static void test_garbage_entry_is_rebuilt(void **state)
{
    (void)state;
    corrupt_and_rebuild(replace_with_garbage);
}

static void test_cache_off(void **state)
{
    (void)state;
    setenv("CLCNN_CACHE_DIR", "off", 1);
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    assert_null(clcnn_program_cache_dir(dev));
    check_axpby(dev, 10);
    clcnn_program_stats s = stats_of(dev);
    assert_int_equal(s.source_builds, 1);
    assert_int_equal(s.cache_writes + s.cache_misses + s.cache_hits, 0);
    clcnn_device_release(dev);
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
}

static void test_offline_binaries(void **state)
{
    (void)state;
    char *bin_dir = test_path(cache_dir, "offline");
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    size_t written = 0;
    assert_ok(clcnn_program_export_binaries(dev, bin_dir, &written));
    assert_int_equal(written, clcnn_program_source_count());
    clcnn_device_release(dev);

    setenv("CLCNN_BINARY_DIR", bin_dir, 1);
    setenv("CLCNN_CACHE_DIR", "off", 1);
    assert_ok(clcnn_device_create(NULL, &dev));
    check_axpby(dev, 500);
    clcnn_program_stats s = stats_of(dev);
    assert_int_equal(s.offline_loads, 1);
    assert_int_equal(s.source_builds, 0);
    /* A variant that was not exported falls back to the compiler on a device that has one. */
    cl_program p;
    assert_ok(clcnn__program_get(dev, "util.cl", "-DCLCNN_WG=16", &p));
    s = stats_of(dev);
    assert_int_equal(s.offline_loads, 1);
    assert_int_equal(s.source_builds, 1);
    clcnn_device_release(dev);

    /* A device without a compiler (an FPGA) loads what was exported and names what is not. */
    assert_ok(clcnn_device_create(NULL, &dev));
    dev->info.compiler_available = false;
    assert_ok(clcnn__program_get(dev, "util.cl", NULL, &p));
    assert_int_equal(stats_of(dev).offline_loads, 1);
    cl_program before = (cl_program)0x2;
    p = before;
    assert_status_msg(clcnn__program_get(dev, "util.cl", "-DCLCNN_WG=8", &p),
                      CLCNN_STATUS_UNSUPPORTED, "program util.cl: no usable offline binary");
    assert_non_null(strstr(clcnn_last_error(), "has no compiler"));
    assert_ptr_equal(p, before);
    clcnn_device_release(dev);
    unsetenv("CLCNN_BINARY_DIR");
    assert_ok(clcnn_device_create(NULL, &dev));
    dev->info.compiler_available = false;
    assert_status_msg(clcnn__program_get(dev, "util.cl", NULL, &p), CLCNN_STATUS_UNSUPPORTED,
                      "CLCNN_BINARY_DIR is not set");
    clcnn_device_release(dev);
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
    free(bin_dir);
}

static void test_build_failure_carries_log(void **state)
{
    (void)state;
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    const char *src = "__kernel void broken(__global float *x)\n"
                      "{\n"
                      "    x[0] = undeclared_thing;\n"
                      "}\n";
    cl_program p = (cl_program)0x1;
    assert_status_msg(clcnn__program_get_source(dev, "broken.cl", src, strlen(src), "-DFOO=3", &p),
                      CLCNN_STATUS_BUILD_FAILED,
                      "program broken.cl: clBuildProgram -> CL_BUILD_PROGRAM_FAILURE");
    assert_ptr_equal(p, (cl_program)0x1);
    assert_non_null(strstr(clcnn_last_error(), "undeclared_thing"));
    assert_non_null(strstr(clcnn_last_error(), "-DFOO=3"));
    assert_int_equal(clcnn_last_cl_error(), CL_BUILD_PROGRAM_FAILURE);
    /* Nothing was cached for a failed build, and the device still works. */
    check_axpby(dev, 5);
    assert_status_msg(clcnn__program_get(dev, "nosuch.cl", NULL, &p), CLCNN_STATUS_INVALID_ARG,
                      "no embedded kernel source named 'nosuch.cl'");
    cl_kernel k;
    assert_status_msg(clcnn__kernel_create(dev, "util.cl", NULL, "no_such_kernel", &k),
                      CLCNN_STATUS_CL_ERROR, "clCreateKernel(no_such_kernel)");
    clcnn_device_release(dev);
}

/* Sums per group with local memory and barriers; n is chosen so the last group is partial. */
static void reduce_partial(clcnn_device *dev, size_t n, float *partials, size_t *groups)
{
    test_rng rng;
    test_rng_seed(&rng, 1000 + n);
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    test_rng_fill(&rng, x, n, -1.0f, 1.0f);
    cl_kernel k;
    assert_ok(clcnn__kernel_create(dev, "util.cl", NULL, "clcnn_reduce_sum", &k));
    size_t wg[3];
    assert_int_equal(clGetKernelWorkGroupInfo(k, clcnn_device_id(dev),
                                              CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof wg, wg,
                                              NULL),
                     CL_SUCCESS);
    size_t local = wg[0];
    assert_int_equal(local, 64);
    size_t global = clcnn__round_up(n, local);
    *groups = global / local;
    clcnn_tensor *tx, *tp;
    assert_ok(clcnn_tensor_create(dev, (clcnn_shape){1, 1, 1, n}, &tx));
    assert_ok(clcnn_tensor_create(dev, (clcnn_shape){1, 1, 1, *groups}, &tp));
    assert_ok(clcnn_tensor_upload(tx, x, n));
    assert_ok(clcnn_tensor_fill(tp, NAN));
    cl_uint un = (cl_uint)n;
    cl_mem bx = clcnn_tensor_buffer(tx), bp = clcnn_tensor_buffer(tp);
    assert_int_equal(clSetKernelArg(k, 0, sizeof un, &un), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 1, sizeof bx, &bx), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 2, sizeof bp, &bp), CL_SUCCESS);
    assert_int_equal(clEnqueueNDRangeKernel(clcnn_device_compute_queue(dev), k, 1, NULL, &global,
                                            &local, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_ok(clcnn_tensor_download(tp, partials, *groups));
    for (size_t g = 0; g < *groups; g++) {
        double ref = 0;
        for (size_t i = g * local; i < n && i < (g + 1) * local; i++)
            ref += x[i];
        if (!(fabs(partials[g] - ref) <= 1e-5 * 64))
            print_error("n=%zu group %zu: got %.9g want %.9g\n", n, g, partials[g], ref);
        assert_true(fabs(partials[g] - ref) <= 1e-5 * 64);
    }
    clReleaseKernel(k);
    clcnn_tensor_release(tx);
    clcnn_tensor_release(tp);
    free(x);
}

static void test_local_memory_barrier_partial_groups(void **state)
{
    (void)state;
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    const size_t sizes[] = {1, 63, 64, 65, 1000, 64 * 37 + 5};
    float a[64], b[64];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t groups, groups2;
        reduce_partial(dev, sizes[i], a, &groups);
        /* Bit-identical on a second run: the reduction order is fixed. */
        reduce_partial(dev, sizes[i], b, &groups2);
        assert_int_equal(groups, groups2);
        assert_memory_equal(a, b, groups * sizeof(float));
    }
    clcnn_device_release(dev);
}

/* Several processes start at once on an empty cache directory: each must succeed, and the
 * entry left behind must be whole. */
static void test_concurrent_processes_share_cache(void **state)
{
    (void)state;
    enum { PROCS = 4 };
    pid_t pids[PROCS];
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    for (int i = 0; i < PROCS; i++) {
        char *argv[] = {self, "--child-build", NULL};
        assert_int_equal(posix_spawn(&pids[i], self, NULL, NULL, argv, environ), 0);
    }
    for (int i = 0; i < PROCS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    char *entry = only_entry(cache_dir);
    free(entry);
    clcnn_device *dev;
    assert_ok(clcnn_device_create(NULL, &dev));
    check_axpby(dev, 99);
    assert_int_equal(stats_of(dev).cache_hits, 1);
    clcnn_device_release(dev);
}

static int child_build(void)
{
    clcnn_device *dev;
    cl_program p;
    if (clcnn_device_create(NULL, &dev) != CLCNN_OK ||
        clcnn__program_get(dev, "util.cl", NULL, &p) != CLCNN_OK) {
        fprintf(stderr, "child: %s\n", clcnn_last_error());
        return 1;
    }
    clcnn_device_release(dev);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-build") == 0)
        return child_build();
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_run_and_cache_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_entry_is_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_entry_is_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_entry_is_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_binaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_failure_carries_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_memory_barrier_partial_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes_share_cache, setup, teardown),
    };
    return cmocka_run_group_tests_name("program", tests, NULL, NULL);
}
