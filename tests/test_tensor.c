/* Tensors on the real device: shapes, exact round trips, poisoning fills, blocking copies that
 * wait for the compute queue, event-based copies, and .npy load/save through the device. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "op_cache_impl.h"
#include "program_impl.h"
#include "tensor_impl.h"

static void test_shape_count(void **state)
{
    (void)state;
    size_t count = 0;
    assert_ok(clcnn_shape_count((clcnn_shape){2, 3, 5, 7}, &count));
    assert_int_equal(count, 210);
    count = 42;
    assert_status_msg(clcnn_shape_count((clcnn_shape){2, 0, 5, 7}, &count), CLCNN_STATUS_BAD_SHAPE,
                      "shape (2,0,5,7): dimension 1 is zero");
    assert_int_equal(count, 42);
    assert_status_msg(clcnn_shape_count((clcnn_shape){SIZE_MAX / 2, 4, 1, 1}, &count),
                      CLCNN_STATUS_BAD_SHAPE, "overflows");
    assert_status_msg(clcnn_shape_count((clcnn_shape){1u << 22, 1u << 22, 1u << 22, 1}, &count),
                      CLCNN_STATUS_BAD_SHAPE, "overflows");
    assert_int_equal(count, 42);
}

static void test_create_refuses_bad_shapes(void **state)
{
    (void)state;
    clcnn_tensor *t = (clcnn_tensor *)0x1;
    assert_status_msg(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 0, 4}, &t),
                      CLCNN_STATUS_BAD_SHAPE, "(1,1,0,4)");
    const clcnn_device_info *info = clcnn_device_get_info(test_dev);
    size_t too_many = (size_t)(info->max_alloc_bytes / sizeof(float)) + 1;
    assert_status_msg(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, too_many}, &t),
                      CLCNN_STATUS_BAD_SHAPE, "largest allocation");
    assert_ptr_equal(t, (clcnn_tensor *)0x1);
    assert_status_msg(clcnn_tensor_create(NULL, (clcnn_shape){1, 1, 1, 1}, &t),
                      CLCNN_STATUS_INVALID_ARG, "NULL");
    clcnn_tensor_release(NULL);
}

static void test_round_trip_exact(void **state)
{
    (void)state;
    clcnn_shape shape = {2, 3, 17, 19};
    clcnn_tensor *t;
    assert_ok(clcnn_tensor_create(test_dev, shape, &t));
    size_t n = clcnn_tensor_count(t);
    assert_int_equal(n, 2 * 3 * 17 * 19);
    assert_int_equal(clcnn_tensor_rank(t), 4);
    assert_ptr_equal(clcnn_tensor_device(t), test_dev);
    clcnn_shape got = clcnn_tensor_shape(t);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.c, 3);
    assert_int_equal(got.h, 17);
    assert_int_equal(got.w, 19);
    float *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    test_rng rng;
    test_rng_seed(&rng, 7);
    test_rng_fill(&rng, in, n, -1e3f, 1e3f);
    assert_ok(clcnn_tensor_fill(t, NAN));
    assert_ok(clcnn_tensor_download(t, out, n));
    for (size_t i = 0; i < n; i++)
        assert_true(isnan(out[i]));
    assert_ok(clcnn_tensor_upload(t, in, n));
    assert_ok(clcnn_tensor_download(t, out, n));
    assert_memory_equal(in, out, n * sizeof *in);

    /* A wrong count is refused and the destination is left alone. */
    float sentinel[4] = {1, 2, 3, 4};
    assert_status_msg(clcnn_tensor_download(t, sentinel, 4), CLCNN_STATUS_BAD_SHAPE,
                      "4 floats given for a tensor of shape (2,3,17,19)");
    assert_true(sentinel[0] == 1 && sentinel[3] == 4);
    assert_status_msg(clcnn_tensor_upload(t, in, n + 1), CLCNN_STATUS_BAD_SHAPE, "(2,3,17,19)");
    assert_ok(clcnn_tensor_download(t, out, n));
    assert_memory_equal(in, out, n * sizeof *in);
    clcnn_tensor_release(t);
    free(in);
    free(out);
}

static void test_async_copies_chain_by_events(void **state)
{
    (void)state;
    const size_t n = 4096;
    clcnn_tensor *t;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 64, 64}, &t));
    float *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    test_rng rng;
    test_rng_seed(&rng, 11);
    test_rng_fill(&rng, in, n, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++)
        out[i] = NAN;
    cl_event up, down;
    assert_ok(clcnn_tensor_upload_async(t, in, n, 0, NULL, &up));
    assert_ok(clcnn_tensor_download_async(t, out, n, 1, &up, &down));
    assert_int_equal(clWaitForEvents(1, &down), CL_SUCCESS);
    cl_int status = 0;
    clGetEventInfo(up, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
    assert_int_equal(status, CL_COMPLETE);
    assert_memory_equal(in, out, n * sizeof *in);
    /* Profiling is on: the download has start and end times. */
    cl_ulong start = 0, end = 0;
    assert_int_equal(
        clGetEventProfilingInfo(down, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL),
        CL_SUCCESS);
    assert_int_equal(
        clGetEventProfilingInfo(down, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL),
        CL_SUCCESS);
    assert_true(end >= start);
    clReleaseEvent(up);
    clReleaseEvent(down);
    assert_status_msg(clcnn_tensor_upload_async(t, in, n, 2, NULL, NULL), CLCNN_STATUS_INVALID_ARG,
                      "2 wait events but no list");
    clcnn_tensor_release(t);
    free(in);
    free(out);
}

/* A kernel enqueued on the compute queue without waiting must be complete before a blocking
 * download on the transfer queue reads its output. */
static void test_blocking_download_waits_for_compute(void **state)
{
    (void)state;
    const size_t n = 1 << 20;
    clcnn_tensor *x, *y;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, n}, &x));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 1, n}, &y));
    float *hx = malloc(n * sizeof *hx), *hy = malloc(n * sizeof *hy);
    test_rng rng;
    test_rng_seed(&rng, 3);
    test_rng_fill(&rng, hx, n, -1.0f, 1.0f);
    test_rng_fill(&rng, hy, n, -1.0f, 1.0f);
    assert_ok(clcnn_tensor_upload(x, hx, n));
    assert_ok(clcnn_tensor_upload(y, hy, n));
    cl_kernel k;
    assert_ok(clcnn__kernel_create(test_dev, "util.cl", NULL, "clcnn_axpby", &k));
    cl_uint un = (cl_uint)n;
    float alpha = 3.0f, beta = 0.5f;
    cl_mem bx = clcnn_tensor_buffer(x), by = clcnn_tensor_buffer(y);
    clSetKernelArg(k, 0, sizeof un, &un);
    clSetKernelArg(k, 1, sizeof alpha, &alpha);
    clSetKernelArg(k, 2, sizeof bx, &bx);
    clSetKernelArg(k, 3, sizeof beta, &beta);
    clSetKernelArg(k, 4, sizeof by, &by);
    size_t local = 64, global = clcnn__round_up(n, local);
    /* Several passes so the compute queue is busy when the download is issued. */
    for (int pass = 0; pass < 8; pass++)
        assert_int_equal(clEnqueueNDRangeKernel(clcnn_device_compute_queue(test_dev), k, 1, NULL,
                                                &global, &local, 0, NULL, NULL),
                         CL_SUCCESS);
    float *out = malloc(n * sizeof *out);
    assert_ok(clcnn_tensor_download(y, out, n));
    for (size_t i = 0; i < n; i += 997) {
        double ref = hy[i];
        for (int pass = 0; pass < 8; pass++)
            ref = (double)(float)(alpha * (double)hx[i] + beta * ref);
        assert_true(fabs(out[i] - ref) <= 1e-5 * (fabs(ref) + 1.0));
    }
    clReleaseKernel(k);
    clcnn_tensor_release(x);
    clcnn_tensor_release(y);
    free(hx);
    free(hy);
    free(out);
}

static void test_npy_through_device(void **state)
{
    (void)state;
    char *dir = test_tempdir();
    char *p2 = test_path(dir, "m.npy"), *p2b = test_path(dir, "m2.npy");
    char *p4 = test_path(dir, "t.npy");
    size_t dims[2] = {5, 6};
    float data[30];
    test_rng rng;
    test_rng_seed(&rng, 5);
    test_rng_fill(&rng, data, 30, -4.0f, 4.0f);
    assert_ok(clcnn_npy_save(p2, 2, dims, data));

    clcnn_tensor *t;
    assert_ok(clcnn_tensor_load_npy(test_dev, p2, &t));
    clcnn_shape s = clcnn_tensor_shape(t);
    assert_true(s.n == 1 && s.c == 1 && s.h == 5 && s.w == 6);
    assert_int_equal(clcnn_tensor_rank(t), 2);
    float back[30];
    assert_ok(clcnn_tensor_download(t, back, 30));
    assert_memory_equal(back, data, sizeof data);
    /* Saved again at its own rank, the file is byte for byte the same. */
    assert_ok(clcnn_tensor_save_npy(t, p2b));
    size_t a_size, b_size;
    void *a = test_read_file(p2, &a_size), *b = test_read_file(p2b, &b_size);
    assert_int_equal(a_size, b_size);
    assert_memory_equal(a, b, a_size);
    free(a);
    free(b);
    clcnn_tensor_release(t);

    clcnn_tensor *t4;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){2, 1, 3, 5}, &t4));
    assert_ok(clcnn_tensor_upload(t4, data, 30));
    assert_ok(clcnn_tensor_save_npy(t4, p4));
    clcnn_npy_array arr;
    assert_ok(clcnn_npy_load(p4, &arr));
    assert_int_equal(arr.rank, 4);
    assert_true(arr.dims[0] == 2 && arr.dims[1] == 1 && arr.dims[2] == 3 && arr.dims[3] == 5);
    assert_memory_equal(arr.data, data, sizeof data);
    clcnn_npy_array_free(&arr);
    clcnn_tensor_release(t4);

    /* A bad file is refused with its path in the message and no tensor is made. */
    test_write_file(p4, "not an npy file at all", 22);
    clcnn_tensor *bad = (clcnn_tensor *)0x1;
    assert_status_msg(clcnn_tensor_load_npy(test_dev, p4, &bad), CLCNN_STATUS_PARSE, p4);
    assert_ptr_equal(bad, (clcnn_tensor *)0x1);
    test_rmtree(dir);
    free(p2);
    free(p2b);
    free(p4);
    free(dir);
}

static void test_versions_and_op_cache(void **state)
{
    (void)state;
    clcnn_tensor *a, *b;
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 2, 2}, &a));
    assert_ok(clcnn_tensor_create(test_dev, (clcnn_shape){1, 1, 2, 2}, &b));
    assert_true(clcnn__tensor_id(a) != clcnn__tensor_id(b));
    uint64_t v0 = clcnn__tensor_version(a);
    float four[4] = {1, 2, 3, 4};
    assert_ok(clcnn_tensor_upload(a, four, 4));
    uint64_t v1 = clcnn__tensor_version(a);
    assert_true(v1 > v0);
    assert_ok(clcnn_tensor_fill(a, 1.0f));
    uint64_t v2 = clcnn__tensor_version(a);
    assert_true(v2 > v1);
    assert_ok(clcnn_tensor_download(a, four, 4));
    assert_int_equal(clcnn__tensor_version(a), v2); /* reads do not bump */
    clcnn_tensor_touch(a);
    assert_true(clcnn__tensor_version(a) > v2);
    clcnn_tensor_touch(NULL);

    /* Derived buffers: found under the same version, gone after a write. */
    cl_int err;
    cl_mem buf = clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE, 64, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    clcnn__op_cache_key key = {"test-kind", clcnn__tensor_id(a), clcnn__tensor_version(a), 7};
    assert_null(clcnn__op_cache_get(test_dev, &key));
    assert_ok(clcnn__op_cache_put(test_dev, &key, buf));
    assert_ptr_equal(clcnn__op_cache_get(test_dev, &key), buf);
    clcnn__op_cache_key other_variant = key;
    other_variant.variant = 8;
    assert_null(clcnn__op_cache_get(test_dev, &other_variant));
    clcnn__op_cache_key other_tensor = key;
    other_tensor.tensor_id = clcnn__tensor_id(b);
    assert_null(clcnn__op_cache_get(test_dev, &other_tensor));
    clcnn_tensor_touch(a);
    clcnn__op_cache_key newer = key;
    newer.version = clcnn__tensor_version(a);
    assert_null(clcnn__op_cache_get(test_dev, &newer));
    assert_null(clcnn__op_cache_get(test_dev, &key)); /* the stale entry was dropped */

    /* More entries than slots: the least recently used go, the rest stay. */
    cl_mem kept = NULL;
    for (uint64_t i = 0; i < CLCNN_OP_CACHE_ENTRIES + 5; i++) {
        cl_mem m =
            clCreateBuffer(clcnn_device_context(test_dev), CL_MEM_READ_WRITE, 16, NULL, &err);
        assert_int_equal(err, CL_SUCCESS);
        clcnn__op_cache_key k = {"evict", 1000000 + i, 1, 0};
        assert_ok(clcnn__op_cache_put(test_dev, &k, m));
        if (i == 0)
            kept = m;
        clcnn__op_cache_key first = {"evict", 1000000, 1, 0};
        /* Keep touching the first so it is never the least recently used. */
        assert_ptr_equal(clcnn__op_cache_get(test_dev, &first), kept);
    }
    clcnn__op_cache_key gone = {"evict", 1000001, 1, 0};
    assert_null(clcnn__op_cache_get(test_dev, &gone));
    clcnn__op_cache_key last = {"evict", 1000000 + CLCNN_OP_CACHE_ENTRIES + 4, 1, 0};
    assert_non_null(clcnn__op_cache_get(test_dev, &last));
    clcnn_tensor_release(a);
    clcnn_tensor_release(b);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_count),
        cmocka_unit_test(test_create_refuses_bad_shapes),
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_async_copies_chain_by_events),
        cmocka_unit_test(test_blocking_download_waits_for_compute),
        cmocka_unit_test(test_npy_through_device),
        cmocka_unit_test(test_versions_and_op_cache),
    };
    return cmocka_run_group_tests_name("tensor", tests, test_group_setup, test_group_teardown);
}
