/* The real OpenCL device (POCL in CI): creation, the capability record, queues with profiling,
 * wrapping a caller's context, and selector failures naming what exists. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void test_create_default(void **state)
{
    (void)state;
    clcnn_device *dev = NULL;
    assert_ok(clcnn_device_create(NULL, &dev));
    const clcnn_device_info *info = clcnn_device_get_info(dev);
    assert_non_null(info);
    assert_true(strlen(info->name) > 0);
    assert_true(strlen(info->platform_name) > 0);
    assert_true(strlen(info->driver_version) > 0);
    assert_true(info->compute_units >= 1);
    assert_true(info->max_work_group_size >= 1);
    assert_true(info->global_mem_bytes >= info->max_alloc_bytes);
    assert_true(info->max_alloc_bytes > 0);
    assert_true(info->opencl_c_major >= 1);
    assert_true(info->available);
    assert_true(info->max_work_item_sizes[0] >= 1);

    /* Two distinct queues with profiling on, in one context holding exactly this device. */
    cl_command_queue qc = clcnn_device_compute_queue(dev);
    cl_command_queue qt = clcnn_device_transfer_queue(dev);
    assert_non_null(qc);
    assert_non_null(qt);
    assert_ptr_not_equal(qc, qt);
    cl_command_queue_properties props = 0;
    assert_int_equal(clGetCommandQueueInfo(qc, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL),
                     CL_SUCCESS);
    assert_true(props & CL_QUEUE_PROFILING_ENABLE);
    assert_false(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
    cl_uint ndev = 0;
    assert_int_equal(clGetContextInfo(clcnn_device_context(dev), CL_CONTEXT_NUM_DEVICES,
                                      sizeof ndev, &ndev, NULL),
                     CL_SUCCESS);
    assert_int_equal(ndev, 1);
    cl_device_id qdev = NULL;
    assert_int_equal(clGetCommandQueueInfo(qt, CL_QUEUE_DEVICE, sizeof qdev, &qdev, NULL),
                     CL_SUCCESS);
    assert_ptr_equal(qdev, clcnn_device_id(dev));
    assert_ok(clcnn_device_finish(dev));

    /* clcnn_device_select() names the same device without creating anything. */
    clcnn_device_info picked;
    assert_ok(clcnn_device_select(NULL, &picked));
    assert_string_equal(picked.name, info->name);
    assert_int_equal(picked.index, info->index);
    clcnn_device_release(dev);
    clcnn_device_release(NULL);
}

static void test_list_matches_select_by_index(void **state)
{
    (void)state;
    clcnn_device_info *list = NULL;
    size_t n = 0;
    assert_ok(clcnn_device_list(&list, &n));
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(list[i].index, i);
        char sel[32];
        snprintf(sel, sizeof sel, "%zu", i);
        clcnn_device_info one;
        assert_ok(clcnn_device_select(sel, &one));
        assert_string_equal(one.name, list[i].name);
        assert_string_equal(one.platform_name, list[i].platform_name);
    }
    clcnn_free(list);
}

static void test_pocl_record(void **state)
{
    (void)state;
    clcnn_device_info info;
    if (clcnn_device_select("pocl", &info) != CLCNN_OK) {
        skip();
        return;
    }
    /* POCL compiles OpenCL C 1.2 whatever its platform version says, reports Intel's PCI id,
     * and keeps local memory in ordinary RAM. */
    assert_int_equal(info.vendor, CLCNN_VENDOR_POCL);
    assert_int_equal(info.type, CLCNN_DEVICE_TYPE_CPU);
    assert_int_equal(info.opencl_c_major, 1);
    assert_int_equal(info.opencl_c_minor, 2);
    assert_true(info.quirks & CLCNN_QUIRK_NO_NONUNIFORM_WORK_GROUPS);
    assert_true(info.quirks & CLCNN_QUIRK_LOCAL_MEM_IS_GLOBAL);
    assert_true(info.compiler_available);
    assert_false(info.quirks & CLCNN_QUIRK_NO_COMPILER);
    if (info.vendor_id == 0x8086)
        assert_true(info.quirks & CLCNN_QUIRK_VENDOR_ID_MISLEADING);
    assert_true(strlen(info.arch) > 0);
    assert_null(strchr(info.arch, ' '));
}

static void test_bad_selector_lists_devices(void **state)
{
    (void)state;
    clcnn_device_info first;
    assert_ok(clcnn_device_select("0", &first));
    clcnn_device *dev = (clcnn_device *)0x1;
    assert_status_msg(clcnn_device_create("no-such-device-xyz", &dev), CLCNN_STATUS_NO_DEVICE,
                      "selector 'no-such-device-xyz' matches no device");
    assert_non_null(strstr(clcnn_last_error(), first.name));
    assert_ptr_equal(dev, (clcnn_device *)0x1);

    setenv("CLCNN_DEVICE", "no-such-device-xyz", 1);
    assert_status_msg(clcnn_device_create(NULL, &dev), CLCNN_STATUS_NO_DEVICE,
                      "(from CLCNN_DEVICE)");
    /* An explicit selector overrides the environment. */
    assert_ok(clcnn_device_create("0", &dev));
    clcnn_device_release(dev);
    unsetenv("CLCNN_DEVICE");
    assert_status_msg(clcnn_device_create(NULL, NULL), CLCNN_STATUS_INVALID_ARG, "NULL");
}

static void test_wrap_callers_context(void **state)
{
    (void)state;
    clcnn_device *base;
    assert_ok(clcnn_device_create(NULL, &base));
    cl_device_id id = clcnn_device_id(base);
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &id, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_uint refs_before = 0, refs_during = 0, refs_after = 0;
    clGetContextInfo(ctx, CL_CONTEXT_REFERENCE_COUNT, sizeof refs_before, &refs_before, NULL);
    clcnn_device *wrapped;
    assert_ok(clcnn_device_create_from_cl(ctx, id, &wrapped));
    assert_ptr_equal(clcnn_device_context(wrapped), ctx);
    clGetContextInfo(ctx, CL_CONTEXT_REFERENCE_COUNT, sizeof refs_during, &refs_during, NULL);
    assert_true(refs_during > refs_before);
    assert_string_equal(clcnn_device_get_info(wrapped)->name, clcnn_device_get_info(base)->name);
    /* The wrapped device works: a tensor round trip through it. */
    clcnn_tensor *t;
    float in[5] = {1.5f, -2.0f, 3.25f, 4.0f, -0.125f}, out[5] = {0};
    assert_ok(clcnn_tensor_create(wrapped, (clcnn_shape){1, 1, 1, 5}, &t));
    assert_ok(clcnn_tensor_upload(t, in, 5));
    assert_ok(clcnn_tensor_download(t, out, 5));
    assert_memory_equal(in, out, sizeof in);
    clcnn_tensor_release(t);
    clcnn_device_release(wrapped);
    /* The library's references are gone (the driver may drop its queues' own references a little
     * later: POCL 3.1 releases them asynchronously) and ours still works. */
    assert_int_equal(
        clGetContextInfo(ctx, CL_CONTEXT_REFERENCE_COUNT, sizeof refs_after, &refs_after, NULL),
        CL_SUCCESS);
    assert_true(refs_after >= refs_before && refs_after < refs_during);
    cl_mem probe = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    clReleaseMemObject(probe);
    clReleaseContext(ctx);
    clcnn_device_release(base);
    assert_status_msg(clcnn_device_create_from_cl(NULL, id, &wrapped), CLCNN_STATUS_INVALID_ARG,
                      "NULL argument");
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_NVIDIA), "nvidia");
    assert_string_equal(clcnn_vendor_name((clcnn_vendor)99), "unknown");
    assert_string_equal(clcnn_device_type_name(CLCNN_DEVICE_TYPE_ACCELERATOR), "accelerator");
    const char *desc = NULL;
    assert_string_equal(clcnn_quirk_name(CLCNN_QUIRK_LAZY_COMPILE, &desc), "LAZY_COMPILE");
    assert_non_null(desc);
    assert_null(clcnn_quirk_name(CLCNN_QUIRK_LAZY_COMPILE | CLCNN_QUIRK_NO_COMPILER, NULL));
    assert_string_equal(clcnn_version(), CLCNN_VERSION_STRING);
}

int main(void)
{
    if (!test_have_device())
        return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_default),
        cmocka_unit_test(test_list_matches_select_by_index),
        cmocka_unit_test(test_pocl_record),
        cmocka_unit_test(test_bad_selector_lists_devices),
        cmocka_unit_test(test_wrap_callers_context),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
