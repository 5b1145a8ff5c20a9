/* Device enumeration, classification and selection (src/device.c) on simulated machines: the
 * OpenCL queries device.c makes are wrapped (-Wl,--wrap) and answered from the tables below as
 * a real driver answers them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>
#include <CL/cl_ext.h>

#include "testutil.h"

#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif

/* ---- the simulated hardware ------------------------------------------------------------ */

typedef struct fake_device {
    const char *name, *vendor, *version, *driver, *c_version, *extensions;
    cl_device_type type;
    cl_uint vendor_id, compute_units, clock_mhz;
    cl_ulong global_mem, local_mem; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE is global_mem / 4 */
    cl_device_local_mem_type local_type;
    size_t max_wg, wi_sizes[3];
    cl_uint pref_float, pref_half, native_float;
    cl_device_fp_config double_config;
    cl_uint cc_major, cc_minor; /* 0: no cl_nv_device_attribute_query, queries fail */
    cl_bool compiler, unified;
} fake_device;

typedef struct fake_platform {
    const char *name, *vendor, *version;
    cl_int error;                  /* non-zero: clGetDeviceIDs fails with it */
    const fake_device *devices[4]; /* NULL-terminated */
} fake_platform;

typedef struct fake_machine {
    const char *label;
    const fake_platform *platforms[4]; /* NULL-terminated, in clGetPlatformIDs order */
} fake_machine;

#define GIB (1024ull * 1024 * 1024)
#define FP_FULL                                                                                    \
    (CL_FP_FMA | CL_FP_ROUND_TO_NEAREST | CL_FP_ROUND_TO_ZERO | CL_FP_ROUND_TO_INF |               \
     CL_FP_INF_NAN | CL_FP_DENORM)
#define KHR_BASE                                                                                   \
    "cl_khr_byte_addressable_store cl_khr_global_int32_base_atomics "                              \
    "cl_khr_global_int32_extended_atomics cl_khr_local_int32_base_atomics "                        \
    "cl_khr_local_int32_extended_atomics cl_khr_int64_base_atomics cl_khr_icd "
#define DIGITS10 "0123456789"
#define DIGITS100                                                                                  \
    DIGITS10 DIGITS10 DIGITS10 DIGITS10 DIGITS10 DIGITS10 DIGITS10 DIGITS10 DIGITS10 DIGITS10

/* clang-format off */
static const fake_device dev_amd = {
    "gfx1030", "Advanced Micro Devices, Inc.", "OpenCL 2.0 AMD-APP (3590.0)", "3590.0 (HSAIL,LC)",
    "OpenCL C 2.0 ",
    KHR_BASE "cl_khr_fp64 cl_khr_3d_image_writes cl_khr_fp16 cl_khr_gl_sharing "
    "cl_amd_device_attribute_query cl_amd_media_ops cl_amd_media_ops2 cl_khr_image2d_from_buffer "
    "cl_khr_subgroups cl_amd_copy_buffer_p2p",
    CL_DEVICE_TYPE_GPU, 0x1002, 36, 2575, 16 * GIB, 65536, CL_LOCAL, 256, {1024, 1024, 1024},
    1, 1, 1, FP_FULL, 0, 0, CL_TRUE, CL_FALSE};
static const fake_device dev_intel_gpu = {
    "Intel(R) UHD Graphics 770", "Intel(R) Corporation", "OpenCL 3.0 NEO ", "23.17.26241.33",
    "OpenCL C 3.0 ",
    KHR_BASE "cl_khr_3d_image_writes cl_khr_fp16 cl_khr_fp64 cl_khr_subgroups cl_intel_subgroups "
    "cl_intel_required_subgroup_size cl_khr_int64_extended_atomics",
    CL_DEVICE_TYPE_GPU, 0x8086, 32, 1450, 25 * GIB, 65536, CL_LOCAL, 512, {512, 512, 512},
    1, 8, 1, FP_FULL, 0, 0, CL_TRUE, CL_TRUE};
static const fake_device dev_intel_cpu = {
    "12th Gen Intel(R) Core(TM) i7-12700", "Intel(R) Corporation", "OpenCL 3.0 (Build 0)",
    "2023.16.7.0.21_160000", "OpenCL C 3.0 ",
    KHR_BASE "cl_khr_3d_image_writes cl_khr_fp64 cl_intel_subgroups cl_khr_spir",
    CL_DEVICE_TYPE_CPU, 0x8086, 20, 0, 31 * GIB, 32768, CL_GLOBAL, 8192, {8192, 8192, 8192},
    1, 0, 8, FP_FULL, 0, 0, CL_TRUE, CL_TRUE};
static const fake_device dev_h100 = {
    "NVIDIA H100 80GB HBM3", "NVIDIA Corporation", "OpenCL 3.0 CUDA", "535.104.05",
    "OpenCL C 1.2 ",
    KHR_BASE "cl_khr_fp64 cl_khr_3d_image_writes cl_khr_gl_sharing cl_nv_compiler_options "
    "cl_nv_device_attribute_query cl_nv_pragma_unroll cl_nv_copy_opts cl_nv_create_buffer "
    "cl_khr_int64_extended_atomics cl_khr_device_uuid",
    CL_DEVICE_TYPE_GPU, 0x10de, 132, 1980, 79 * GIB, 49152, CL_LOCAL, 1024, {1024, 1024, 64},
    1, 0, 1, FP_FULL, 9, 0, CL_TRUE, CL_FALSE};
static const fake_device dev_a100 = {
    "NVIDIA A100-SXM4-80GB", "NVIDIA Corporation", "OpenCL 3.0 CUDA", "535.104.05",
    "OpenCL C 1.2 ",
    KHR_BASE "cl_khr_fp64 cl_nv_compiler_options cl_nv_device_attribute_query cl_nv_pragma_unroll",
    CL_DEVICE_TYPE_GPU, 0x10de, 108, 1410, 79 * GIB, 49152, CL_LOCAL, 1024, {1024, 1024, 64},
    1, 0, 1, FP_FULL, 8, 0, CL_TRUE, CL_FALSE};
static const fake_device dev_pocl = {
    "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", "GenuineIntel",
    "OpenCL 3.0 PoCL HSTR: pthread-x86_64-pc-linux-gnu-skylake-avx512", "3.1+debian",
    "OpenCL C 1.2 PoCL",
    KHR_BASE "cl_khr_3d_image_writes cl_khr_fp64 cl_khr_spir cl_khr_subgroups",
    CL_DEVICE_TYPE_CPU, 0x8086, 8, 2000, 12 * GIB, 4194304, CL_GLOBAL, 4096, {4096, 4096, 4096},
    16, 0, 16, FP_FULL, 0, 0, CL_TRUE, CL_TRUE};
static const fake_device dev_pocl5 = {
    "cpu-znver3-AMD EPYC 7763 64-Core Processor", "AuthenticAMD",
    "OpenCL 3.0 PoCL HSTR: cpu-x86_64-pc-linux-gnu-znver3", "5.0", "OpenCL C 1.2 PoCL",
    KHR_BASE "cl_khr_fp16 cl_khr_fp64 cl_khr_subgroups cl_khr_spirv_no_integer_wrap_decoration",
    CL_DEVICE_TYPE_CPU, 0x1022, 128, 3529, 250 * GIB, 524288, CL_GLOBAL, 4096, {4096, 4096, 4096},
    8, 0, 8, FP_FULL, 0, 0, CL_TRUE, CL_TRUE};
static const fake_device dev_fpga = {
    "pac_a10 : Intel PAC Platform (pac_ee00000)", "Intel(R) Corporation",
    "OpenCL 1.0 Intel(R) FPGA SDK for OpenCL(TM), Version 20.3", "20.3", "OpenCL C 1.0 ",
    "cl_khr_byte_addressable_store cl_khr_icd cl_khr_global_int32_base_atomics "
    "cl_intel_fpga_host_pipe cles_khr_int64",
    CL_DEVICE_TYPE_ACCELERATOR, 0x1172, 1, 240, 8 * GIB, 16384, CL_LOCAL, 2147483647,
    {2147483647, 2147483647, 2147483647}, 1, 0, 1, 0, 0, 0, CL_FALSE, CL_FALSE};
/* Longer than every buffer in clcnn_device_info, to exercise truncation; fp64 only through
 * CL_DEVICE_DOUBLE_FP_CONFIG (cl_amd_fp64 is not cl_khr_fp64). */
static const fake_device dev_long = {
    "Acme Matrix Engine rev " DIGITS100 DIGITS100 DIGITS100, "Acme Silicon", "OpenCL 1.1 Acme",
    "1.0", "OpenCL C 1.1 ", "cl_khr_icd cl_amd_fp64",
    CL_DEVICE_TYPE_CUSTOM, 0x1d0f, 4, 500, 1 * GIB, 32768, CL_LOCAL, 64, {64, 64, 1},
    4, 8, 4, FP_FULL, 0, 0, CL_TRUE, CL_FALSE};

static const fake_platform plat_amd = {"AMD Accelerated Parallel Processing",
    "Advanced Micro Devices, Inc.", "OpenCL 2.1 AMD-APP (3590.0)", 0, {&dev_amd}};
static const fake_platform plat_intel_gpu = {"Intel(R) OpenCL HD Graphics",
    "Intel(R) Corporation", "OpenCL 3.0 ", 0, {&dev_intel_gpu}};
static const fake_platform plat_intel_cpu = {"Intel(R) OpenCL", "Intel(R) Corporation",
    "OpenCL 3.0 LINUX", 0, {&dev_intel_cpu}};
static const fake_platform plat_nvidia = {"NVIDIA CUDA", "NVIDIA Corporation",
    "OpenCL 3.0 CUDA 12.2.138", 0, {&dev_h100}};
static const fake_platform plat_nvidia2 = {"NVIDIA CUDA", "NVIDIA Corporation",
    "OpenCL 3.0 CUDA 12.2.138", 0, {&dev_h100, &dev_a100}};
static const fake_platform plat_pocl = {"Portable Computing Language", "The pocl project",
    "OpenCL 3.0 PoCL 3.1+debian  Linux, None+Asserts, RELOC, LLVM 15.0.6, SLEEF, DISTRO, "
    "POCL_DEBUG", 0, {&dev_pocl}};
static const fake_platform plat_pocl5 = {"Portable Computing Language", "The pocl project",
    "OpenCL 3.0 PoCL 5.0  Linux, Release, RELOC, SPIR-V, LLVM 17.0.6, SLEEF, POCL_DEBUG", 0,
    {&dev_pocl5}};
static const fake_platform plat_fpga = {"Intel(R) FPGA SDK for OpenCL(TM)",
    "Intel(R) Corporation", "OpenCL 1.0 Intel(R) FPGA SDK for OpenCL(TM), Version 20.3", 0,
    {&dev_fpga}};
static const fake_platform plat_clover = {"Clover", "Mesa", "OpenCL 1.1 Mesa 22.3.6", 0, {NULL}};
static const fake_platform plat_broken = {"rusticl", "Mesa/X.org", "OpenCL 3.0 ",
    CL_OUT_OF_HOST_MEMORY, {&dev_amd}};
static const fake_platform plat_acme = {"Acme OpenCL", "Acme", "OpenCL 1.1 Acme", 0, {&dev_long}};

static const fake_machine m_none = {"no platform", {NULL}};
static const fake_machine m_amd = {"AMD GPU", {&plat_amd}};
static const fake_machine m_intel = {"Intel GPU + CPU", {&plat_intel_gpu, &plat_intel_cpu}};
static const fake_machine m_nvidia = {"NVIDIA", {&plat_nvidia}};
static const fake_machine m_nvidia2 = {"two NVIDIA GPUs", {&plat_nvidia2}};
static const fake_machine m_pocl = {"POCL CPU", {&plat_pocl}};
static const fake_machine m_pocl5 = {"POCL 5 CPU", {&plat_pocl5}};
static const fake_machine m_fpga = {"FPGA", {&plat_fpga}};
static const fake_machine m_mixed = {"NVIDIA + POCL + FPGA",
                                     {&plat_nvidia, &plat_pocl, &plat_fpga}};
static const fake_machine m_pocl_fpga = {"POCL + FPGA", {&plat_pocl, &plat_fpga}};
static const fake_machine m_pocl_intel = {"POCL + Intel",
                                          {&plat_pocl, &plat_intel_gpu, &plat_intel_cpu}};
static const fake_machine m_empty = {"platform without devices", {&plat_clover}};
static const fake_machine m_empty_pocl = {"empty platform + POCL", {&plat_clover, &plat_pocl}};
static const fake_machine m_broken_pocl = {"broken platform + POCL", {&plat_broken, &plat_pocl}};
static const fake_machine m_acme = {"unknown vendor", {&plat_acme}};
/* clang-format on */

/* The machine the fakes serve, and a device that reports CL_DEVICE_AVAILABLE = CL_FALSE. */
static const fake_machine *machine;
static const fake_device *offline;

static void use(const fake_machine *m)
{
    machine = m;
    offline = NULL;
    clcnn_clear_error();
}

/* ---- the wrapped OpenCL entry points ---------------------------------------------------- */

/* Handles are the addresses of the table slots, so the same device on two platforms differs. */
static cl_device_id device_handle(const fake_platform *p, size_t d)
{
    return (cl_device_id)(uintptr_t)&p->devices[d];
}

static const fake_platform *find_platform(cl_platform_id id)
{
    for (size_t p = 0; machine != NULL && machine->platforms[p] != NULL; p++)
        if ((cl_platform_id)(uintptr_t)machine->platforms[p] == id)
            return machine->platforms[p];
    return NULL;
}

static const fake_device *find_device(cl_device_id id, const fake_platform **platform)
{
    for (size_t p = 0; machine != NULL && machine->platforms[p] != NULL; p++)
        for (size_t d = 0; machine->platforms[p]->devices[d] != NULL; d++)
            if (device_handle(machine->platforms[p], d) == id) {
                *platform = machine->platforms[p];
                return machine->platforms[p]->devices[d];
            }
    return NULL;
}

/* Copies a value out as a driver does: value NULL means the parameter is not supported. */
static cl_int answer(const void *value, size_t size, size_t param_value_size, void *param_value,
                     size_t *param_value_size_ret)
{
    if (value == NULL)
        return CL_INVALID_VALUE;
    if (param_value != NULL) {
        if (param_value_size < size)
            return CL_INVALID_VALUE;
        memcpy(param_value, value, size);
    }
    if (param_value_size_ret != NULL)
        *param_value_size_ret = size;
    return CL_SUCCESS;
}

cl_int CL_API_CALL __wrap_clGetPlatformIDs(cl_uint num_entries, cl_platform_id *platforms,
                                           cl_uint *num_platforms)
{
    if ((num_entries == 0 && platforms != NULL) || (platforms == NULL && num_platforms == NULL))
        return CL_INVALID_VALUE;
    cl_uint n = 0;
    while (machine != NULL && machine->platforms[n] != NULL)
        n++;
    if (num_platforms != NULL)
        *num_platforms = n;
    if (n == 0)
        return CL_PLATFORM_NOT_FOUND_KHR;
    for (cl_uint i = 0; platforms != NULL && i < n && i < num_entries; i++)
        platforms[i] = (cl_platform_id)(uintptr_t)machine->platforms[i];
    return CL_SUCCESS;
}

cl_int CL_API_CALL __wrap_clGetDeviceIDs(cl_platform_id platform, cl_device_type device_type,
                                         cl_uint num_entries, cl_device_id *devices,
                                         cl_uint *num_devices)
{
    const fake_platform *p = find_platform(platform);
    if (p == NULL)
        return CL_INVALID_PLATFORM;
    if ((num_entries == 0 && devices != NULL) || (devices == NULL && num_devices == NULL))
        return CL_INVALID_VALUE;
    if (p->error != CL_SUCCESS)
        return p->error;
    cl_uint n = 0;
    for (size_t d = 0; p->devices[d] != NULL; d++) {
        bool match =
            device_type == CL_DEVICE_TYPE_ALL ||
            (device_type == CL_DEVICE_TYPE_DEFAULT ? d == 0 : (p->devices[d]->type & device_type));
        if (!match)
            continue;
        if (devices != NULL && n < num_entries)
            devices[n] = device_handle(p, d);
        n++;
    }
    if (num_devices != NULL)
        *num_devices = n;
    return n == 0 ? CL_DEVICE_NOT_FOUND : CL_SUCCESS;
}

cl_int CL_API_CALL __wrap_clGetPlatformInfo(cl_platform_id platform, cl_platform_info param,
                                            size_t param_value_size, void *param_value,
                                            size_t *param_value_size_ret)
{
    const fake_platform *p = find_platform(platform);
    if (p == NULL)
        return CL_INVALID_PLATFORM;
    const char *s = param == CL_PLATFORM_NAME         ? p->name
                    : param == CL_PLATFORM_VENDOR     ? p->vendor
                    : param == CL_PLATFORM_VERSION    ? p->version
                    : param == CL_PLATFORM_PROFILE    ? "FULL_PROFILE"
                    : param == CL_PLATFORM_EXTENSIONS ? "cl_khr_icd"
                                                      : NULL;
    return answer(s, s != NULL ? strlen(s) + 1 : 0, param_value_size, param_value,
                  param_value_size_ret);
}

/* Device parameters read straight from a fake_device field. */
enum field_kind { F_STR, F_UINT, F_ULONG, F_SIZE };
#define FIELD_(param, kind, member)                                                                \
    {                                                                                              \
        param, kind, offsetof(fake_device, member)                                                 \
    }
static const struct device_field {
    cl_device_info param;
    enum field_kind kind;
    size_t offset;
} device_fields[] = {
    FIELD_(CL_DEVICE_NAME, F_STR, name),
    FIELD_(CL_DEVICE_VENDOR, F_STR, vendor),
    FIELD_(CL_DEVICE_VERSION, F_STR, version),
    FIELD_(CL_DRIVER_VERSION, F_STR, driver),
    FIELD_(CL_DEVICE_OPENCL_C_VERSION, F_STR, c_version),
    FIELD_(CL_DEVICE_EXTENSIONS, F_STR, extensions),
    FIELD_(CL_DEVICE_TYPE, F_ULONG, type),
    FIELD_(CL_DEVICE_VENDOR_ID, F_UINT, vendor_id),
    FIELD_(CL_DEVICE_MAX_COMPUTE_UNITS, F_UINT, compute_units),
    FIELD_(CL_DEVICE_MAX_CLOCK_FREQUENCY, F_UINT, clock_mhz),
    FIELD_(CL_DEVICE_GLOBAL_MEM_SIZE, F_ULONG, global_mem),
    FIELD_(CL_DEVICE_LOCAL_MEM_SIZE, F_ULONG, local_mem),
    FIELD_(CL_DEVICE_LOCAL_MEM_TYPE, F_UINT, local_type),
    FIELD_(CL_DEVICE_MAX_WORK_GROUP_SIZE, F_SIZE, max_wg),
    FIELD_(CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, F_UINT, pref_float),
    FIELD_(CL_DEVICE_PREFERRED_VECTOR_WIDTH_HALF, F_UINT, pref_half),
    FIELD_(CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, F_UINT, native_float),
    FIELD_(CL_DEVICE_DOUBLE_FP_CONFIG, F_ULONG, double_config),
    FIELD_(CL_DEVICE_HOST_UNIFIED_MEMORY, F_UINT, unified),
    FIELD_(CL_DEVICE_COMPILER_AVAILABLE, F_UINT, compiler),
};
#undef FIELD_
_Static_assert(sizeof(cl_device_type) == sizeof(cl_ulong) &&
                   sizeof(cl_device_fp_config) == sizeof(cl_ulong) &&
                   sizeof(cl_device_local_mem_type) == sizeof(cl_uint) &&
                   sizeof(cl_bool) == sizeof(cl_uint),
               "field kinds match the OpenCL types");

cl_int CL_API_CALL __wrap_clGetDeviceInfo(cl_device_id device, cl_device_info param,
                                          size_t param_value_size, void *param_value,
                                          size_t *param_value_size_ret)
{
    const fake_platform *p = NULL;
    const fake_device *d = find_device(device, &p);
    if (d == NULL)
        return CL_INVALID_DEVICE;
    static const size_t kind_size[] = {0, sizeof(cl_uint), sizeof(cl_ulong), sizeof(size_t)};
    for (size_t i = 0; i < sizeof device_fields / sizeof device_fields[0]; i++) {
        if (device_fields[i].param != param)
            continue;
        const char *field = (const char *)d + device_fields[i].offset;
        if (device_fields[i].kind == F_STR) {
            const char *s = *(const char *const *)(const void *)field;
            return answer(s, strlen(s) + 1, param_value_size, param_value, param_value_size_ret);
        }
        return answer(field, kind_size[device_fields[i].kind], param_value_size, param_value,
                      param_value_size_ret);
    }
    cl_uint u = 0;
    cl_ulong alloc = d->global_mem / 4;
    cl_platform_id pid = (cl_platform_id)(uintptr_t)p;
    switch (param) {
    case CL_DEVICE_PLATFORM:
        return answer(&pid, sizeof pid, param_value_size, param_value, param_value_size_ret);
    case CL_DEVICE_MAX_MEM_ALLOC_SIZE:
        return answer(&alloc, sizeof alloc, param_value_size, param_value, param_value_size_ret);
    case CL_DEVICE_MAX_WORK_ITEM_SIZES:
        return answer(d->wi_sizes, sizeof d->wi_sizes, param_value_size, param_value,
                      param_value_size_ret);
    case CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS:
        u = 3;
        break;
    case CL_DEVICE_AVAILABLE:
        u = d == offline ? CL_FALSE : CL_TRUE;
        break;
    case CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV:
    case CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV:
        /* Only drivers with cl_nv_device_attribute_query know these. */
        if (d->cc_major == 0)
            return CL_INVALID_VALUE;
        u = param == CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV ? d->cc_major : d->cc_minor;
        break;
    default:
        return CL_INVALID_VALUE;
    }
    return answer(&u, sizeof u, param_value_size, param_value, param_value_size_ret);
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* The index-th device of m in platform order, and its platform's index. */
static const fake_device *nth_device(const fake_machine *m, unsigned index, unsigned *platform)
{
    unsigned seen = 0;
    for (unsigned p = 0; m->platforms[p] != NULL; p++)
        for (size_t d = 0; m->platforms[p]->devices[d] != NULL; d++)
            if (seen++ == index) {
                *platform = p;
                return m->platforms[p]->devices[d];
            }
    fail_msg("machine '%s' has no device %u", m->label, index);
    return NULL;
}

/* got must be want truncated to a buffer of size bytes. */
static void expect_str(const char *got, const char *want, size_t size)
{
    size_t n = strlen(want) < size - 1 ? strlen(want) : size - 1;
    if (strlen(got) != n || memcmp(got, want, n) != 0)
        print_error("got '%s', wanted '%.*s'\n", got, (int)n, want);
    assert_int_equal(strlen(got), n);
    assert_memory_equal(got, want, n);
}

static clcnn_device_info *list_of(const fake_machine *m, size_t *count)
{
    use(m);
    clcnn_device_info *infos = NULL;
    assert_ok(clcnn_device_list(&infos, count));
    assert_non_null(infos);
    return infos;
}

/* ---- names ------------------------------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_NVIDIA), "nvidia");
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_AMD), "amd");
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_INTEL), "intel");
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_POCL), "pocl");
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_XILINX), "xilinx");
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_UNKNOWN), "unknown");
    assert_string_equal(clcnn_vendor_name(CLCNN_VENDOR_COUNT), "unknown");
    assert_string_equal(clcnn_vendor_name((clcnn_vendor)-1), "unknown");
    assert_string_equal(clcnn_device_type_name(CLCNN_DEVICE_TYPE_CPU), "cpu");
    assert_string_equal(clcnn_device_type_name(CLCNN_DEVICE_TYPE_GPU), "gpu");
    assert_string_equal(clcnn_device_type_name(CLCNN_DEVICE_TYPE_ACCELERATOR), "accelerator");
    assert_string_equal(clcnn_device_type_name(CLCNN_DEVICE_TYPE_OTHER), "other");

    static const struct {
        uint32_t bit;
        const char *name, *desc;
    } quirks[] = {
#define QUIRK_ROW_(name, bit, desc) {CLCNN_QUIRK_##name, #name, desc},
        CLCNN_QUIRK_LIST(QUIRK_ROW_)
#undef QUIRK_ROW_
    };
    uint32_t all = 0;
    for (size_t i = 0; i < sizeof quirks / sizeof quirks[0]; i++) {
        const char *desc = NULL;
        assert_string_equal(clcnn_quirk_name(quirks[i].bit, &desc), quirks[i].name);
        assert_string_equal(desc, quirks[i].desc);
        assert_string_equal(clcnn_quirk_name(quirks[i].bit, NULL), quirks[i].name);
        all |= quirks[i].bit;
    }
    assert_int_equal(all, 0x7f);
    assert_null(clcnn_quirk_name(0, NULL));
    assert_null(clcnn_quirk_name(CLCNN_QUIRK_LAZY_COMPILE | CLCNN_QUIRK_NO_COMPILER, NULL));
    assert_null(clcnn_quirk_name(1u << 7, NULL));
}

/* ---- classification --------------------------------------------------------------------- */

typedef struct expect {
    const fake_machine *machine;
    unsigned index;
    clcnn_vendor vendor;
    clcnn_device_type type;
    const char *arch;
    unsigned c_major, c_minor;
    bool fp16, fp64;
    uint32_t quirks;
    uint32_t unchecked; /* quirk bits this row leaves open */
} expect;

#define Q(name) CLCNN_QUIRK_##name
#define NVIDIA_QUIRKS (Q(NO_NONUNIFORM_WORK_GROUPS) | Q(HALF_WITHOUT_EXTENSION) | Q(LAZY_COMPILE))
#define POCL_QUIRKS                                                                                \
    (Q(NO_NONUNIFORM_WORK_GROUPS) | Q(LOCAL_MEM_IS_GLOBAL) | Q(VENDOR_ID_MISLEADING))
#define FPGA_QUIRKS (Q(NO_NONUNIFORM_WORK_GROUPS) | Q(NO_COMPILER))
#define FPGA_NAME "pac_a10 : Intel PAC Platform (pac_ee00000)"
/* clang-format off */
/* machine, index, vendor, type, arch, OpenCL C major.minor, fp16, fp64, quirks, unchecked */
static expect amd_gfx1030 = {&m_amd, 0, CLCNN_VENDOR_AMD, CLCNN_DEVICE_TYPE_GPU, "gfx1030", 2, 0,
                             true, true, 0, 0};
static expect intel_gpu = {&m_intel, 0, CLCNN_VENDOR_INTEL, CLCNN_DEVICE_TYPE_GPU,
                           "Intel(R) UHD Graphics 770", 3, 0, true, true, 0, 0};
static expect intel_cpu = {&m_intel, 1, CLCNN_VENDOR_INTEL, CLCNN_DEVICE_TYPE_CPU,
                           "12th Gen Intel(R) Core(TM) i7-12700", 3, 0, false, true,
                           Q(LOCAL_MEM_IS_GLOBAL), 0};
static expect nvidia_h100 = {&m_nvidia, 0, CLCNN_VENDOR_NVIDIA, CLCNN_DEVICE_TYPE_GPU, "sm_90", 1,
                             2, false, true, NVIDIA_QUIRKS, 0};
static expect nvidia_a100 = {&m_nvidia2, 1, CLCNN_VENDOR_NVIDIA, CLCNN_DEVICE_TYPE_GPU, "sm_80", 1,
                             2, false, true, NVIDIA_QUIRKS, 0};
/* POCL on a Xeon reports Intel's 0x8086; POCL 3.1 (< 4.0) has the barrier quirk, 5.0 not. */
static expect pocl31 = {&m_pocl, 0, CLCNN_VENDOR_POCL, CLCNN_DEVICE_TYPE_CPU, "skylake-avx512", 1,
                        2, false, true, POCL_QUIRKS | Q(BARRIER_PARTIAL_GROUPS), 0};
static expect pocl50 = {&m_pocl5, 0, CLCNN_VENDOR_POCL, CLCNN_DEVICE_TYPE_CPU, "znver3", 1, 2,
                        true, true, POCL_QUIRKS, 0};
/* 0x1172 (Altera) is not in device.c's PCI table; whether that counts as misleading is open. */
static expect fpga = {&m_fpga, 0, CLCNN_VENDOR_INTEL, CLCNN_DEVICE_TYPE_ACCELERATOR, FPGA_NAME, 1,
                      0, false, false, FPGA_QUIRKS, Q(VENDOR_ID_MISLEADING)};
static expect mixed_fpga = {&m_mixed, 2, CLCNN_VENDOR_INTEL, CLCNN_DEVICE_TYPE_ACCELERATOR,
                            FPGA_NAME, 1, 0, false, false, FPGA_QUIRKS, Q(VENDOR_ID_MISLEADING)};
static expect acme = {&m_acme, 0, CLCNN_VENDOR_UNKNOWN, CLCNN_DEVICE_TYPE_OTHER,
                      "Acme Matrix Engine rev " DIGITS10 DIGITS10 DIGITS10 DIGITS10, 1, 1, false,
                      true, Q(NO_NONUNIFORM_WORK_GROUPS), 0};
/* clang-format on */
#undef Q

/* Every raw field must be what the fake driver reports; derived fields as the row says. */
static void test_classify(void **state)
{
    const expect *e = *state;
    size_t n = 0;
    clcnn_device_info *all = list_of(e->machine, &n);
    assert_true(e->index < n);
    const clcnn_device_info *info = &all[e->index];
    unsigned pi = 0;
    const fake_device *d = nth_device(e->machine, e->index, &pi);
    const fake_platform *p = e->machine->platforms[pi];

    assert_int_equal(info->index, e->index);
    assert_int_equal(info->platform_index, pi);
    expect_str(info->platform_name, p->name, sizeof info->platform_name);
    expect_str(info->platform_vendor, p->vendor, sizeof info->platform_vendor);
    expect_str(info->platform_version, p->version, sizeof info->platform_version);
    expect_str(info->name, d->name, sizeof info->name);
    expect_str(info->vendor_name, d->vendor, sizeof info->vendor_name);
    expect_str(info->device_version, d->version, sizeof info->device_version);
    expect_str(info->driver_version, d->driver, sizeof info->driver_version);
    expect_str(info->opencl_c_version, d->c_version, sizeof info->opencl_c_version);
    assert_int_equal(info->vendor_id, d->vendor_id);
    assert_int_equal(info->compute_units, d->compute_units);
    assert_int_equal(info->max_clock_mhz, d->clock_mhz);
    assert_int_equal(info->global_mem_bytes, d->global_mem);
    assert_int_equal(info->max_alloc_bytes, d->global_mem / 4);
    assert_int_equal(info->local_mem_bytes, d->local_mem);
    assert_int_equal(info->max_work_group_size, d->max_wg);
    assert_int_equal(info->max_work_item_dims, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(info->max_work_item_sizes[i], d->wi_sizes[i]);
    assert_int_equal(info->pref_vector_width_float, d->pref_float);
    assert_int_equal(info->pref_vector_width_half, d->pref_half);
    assert_int_equal(info->native_vector_width_float, d->native_float);
    assert_int_equal(info->unified_memory, d->unified == CL_TRUE);
    assert_int_equal(info->compiler_available, d->compiler == CL_TRUE);
    assert_true(info->available);

    if (info->vendor != e->vendor || (info->quirks & ~e->unchecked) != e->quirks)
        print_error("%s: vendor %s, quirks 0x%x (wanted %s, 0x%x)\n", info->name,
                    clcnn_vendor_name(info->vendor), (unsigned)info->quirks,
                    clcnn_vendor_name(e->vendor), (unsigned)e->quirks);
    assert_int_equal(info->vendor, e->vendor);
    assert_int_equal(info->type, e->type);
    assert_string_equal(info->arch, e->arch);
    assert_int_equal(info->opencl_c_major, e->c_major);
    assert_int_equal(info->opencl_c_minor, e->c_minor);
    assert_int_equal(info->fp16, e->fp16);
    assert_int_equal(info->fp64, e->fp64);
    assert_int_equal(info->quirks & ~e->unchecked, e->quirks);
    clcnn_free(all);
}

/* ---- enumeration ------------------------------------------------------------------------ */

static void test_list_order(void **state)
{
    (void)state;
    static const struct {
        const fake_machine *m;
        size_t count;
        const char *names[3];
        unsigned platform[3];
    } rows[] = {
        {&m_mixed, 3, {"NVIDIA H100 80GB HBM3", "pthread-skylake", "pac_a10"}, {0, 1, 2}},
        {&m_pocl_intel, 3, {"pthread-skylake", "Intel(R) UHD", "12th Gen"}, {0, 1, 2}},
        {&m_nvidia2, 2, {"NVIDIA H100", "NVIDIA A100"}, {0, 0}},
        {&m_empty_pocl, 1, {"pthread-skylake"}, {1}},
        {&m_broken_pocl, 1, {"pthread-skylake"}, {1}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        size_t n = 0;
        clcnn_device_info *infos = list_of(rows[r].m, &n);
        assert_int_equal(n, rows[r].count);
        for (size_t i = 0; i < n; i++) {
            if (strncmp(infos[i].name, rows[r].names[i], strlen(rows[r].names[i])) != 0)
                print_error("%s [%zu]: '%s'\n", rows[r].m->label, i, infos[i].name);
            assert_int_equal(infos[i].index, i);
            assert_int_equal(infos[i].platform_index, rows[r].platform[i]);
            assert_int_equal(strncmp(infos[i].name, rows[r].names[i], strlen(rows[r].names[i])), 0);
        }
        clcnn_free(infos);
    }
    /* The list ignores CLCNN_DEVICE: it is not a selection. */
    setenv("CLCNN_DEVICE", "amd", 1);
    size_t n = 0;
    clcnn_device_info *infos = list_of(&m_mixed, &n);
    unsetenv("CLCNN_DEVICE");
    assert_int_equal(n, 3);
    clcnn_free(infos);
}

/* ---- selection -------------------------------------------------------------------------- */

static void test_select(void **state)
{
    (void)state;
    static const struct {
        const fake_machine *m;
        const char *selector;
        const char *name;
        unsigned index;
    } rows[] = {
        {&m_mixed, NULL, "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "default", "NVIDIA H100 80GB HBM3", 0},
        {&m_pocl_fpga, NULL, "pac_a10 : Intel PAC Platform (pac_ee00000)", 1},
        {&m_pocl, NULL, "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0},
        {&m_pocl_intel, NULL, "Intel(R) UHD Graphics 770", 1},
        {&m_empty_pocl, NULL, "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0},
        {&m_broken_pocl, NULL, "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0},
        {&m_mixed, "cpu", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 1},
        {&m_mixed, "gpu", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "accelerator", "pac_a10 : Intel PAC Platform (pac_ee00000)", 2},
        {&m_mixed, "fpga", "pac_a10 : Intel PAC Platform (pac_ee00000)", 2},
        {&m_mixed, "nvidia", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "pocl", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 1},
        /* POCL's 0x8086 does not make it Intel: the Intel driver here is the FPGA SDK. */
        {&m_mixed, "intel", "pac_a10 : Intel PAC Platform (pac_ee00000)", 2},
        {&m_amd, "amd", "gfx1030", 0},
        {&m_pocl_intel, "intel", "Intel(R) UHD Graphics 770", 1},
        {&m_pocl_intel, "intel:cpu", "12th Gen Intel(R) Core(TM) i7-12700", 2},
        {&m_pocl_intel, "cpu", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0},
        {&m_pocl_intel, "cpu:1", "12th Gen Intel(R) Core(TM) i7-12700", 2},
        {&m_pocl_intel, "pocl", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0},
        {&m_intel, "gpu:intel:0", "Intel(R) UHD Graphics 770", 0},
        {&m_nvidia2, "gpu:nvidia:1", "NVIDIA A100-SXM4-80GB", 1},
        {&m_nvidia2, "gpu:nvidia:0", "NVIDIA H100 80GB HBM3", 0},
        {&m_nvidia2, "nvidia:1", "NVIDIA A100-SXM4-80GB", 1},
        {&m_nvidia2, "1", "NVIDIA A100-SXM4-80GB", 1},
        {&m_mixed, "2", "pac_a10 : Intel PAC Platform (pac_ee00000)", 2},
        {&m_mixed, "0", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "H100", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "xeon", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 1},
        {&m_mixed, "portable computing", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 1},
        {&m_mixed, "cuda", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "nvidia:h100", "NVIDIA H100 80GB HBM3", 0},
        {&m_pocl, "cpu:pocl:xeon:0", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 0},
        {&m_mixed, "GPU:NVIDIA", "NVIDIA H100 80GB HBM3", 0},
        {&m_mixed, "CPU", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 1},
        {&m_mixed, "Accelerator", "pac_a10 : Intel PAC Platform (pac_ee00000)", 2},
        {&m_mixed, "POCL", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", 1},
        {&m_mixed, "DEFAULT", "NVIDIA H100 80GB HBM3", 0},
    };
    unsetenv("CLCNN_DEVICE");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        use(rows[r].m);
        clcnn_device_info info;
        memset(&info, 0, sizeof info);
        clcnn_status st = clcnn_device_select(rows[r].selector, &info);
        if (st != CLCNN_OK || strcmp(info.name, rows[r].name) != 0 || info.index != rows[r].index)
            print_error("%s, selector '%s': %s, [%u] '%s' (wanted [%u] '%s') %s\n",
                        rows[r].m->label, rows[r].selector ? rows[r].selector : "(null)",
                        clcnn_status_name(st), info.index, info.name, rows[r].index, rows[r].name,
                        clcnn_last_error());
        assert_int_equal(st, CLCNN_OK);
        assert_string_equal(info.name, rows[r].name);
        assert_int_equal(info.index, rows[r].index);
    }
}

/* An unavailable device loses to an available one but can still be named. */
static void test_select_skips_unavailable(void **state)
{
    (void)state;
    clcnn_device_info info;
    use(&m_nvidia2);
    offline = &dev_h100;
    assert_ok(clcnn_device_select(NULL, &info));
    assert_string_equal(info.name, "NVIDIA A100-SXM4-80GB");
    assert_true(info.available);
    assert_ok(clcnn_device_select("h100", &info));
    assert_string_equal(info.name, "NVIDIA H100 80GB HBM3");
    assert_false(info.available);
}

static void test_select_env(void **state)
{
    (void)state;
    clcnn_device_info info;
    use(&m_mixed);
    setenv("CLCNN_DEVICE", "cpu", 1);
    assert_ok(clcnn_device_select(NULL, &info));
    assert_string_equal(info.name, "pthread-skylake-avx512-Intel(R) Xeon(R) Processor");
    assert_ok(clcnn_device_select("", &info));
    assert_int_equal(info.index, 1);
    /* An explicit selector wins over the environment. */
    assert_ok(clcnn_device_select("accelerator", &info));
    assert_int_equal(info.index, 2);
    setenv("CLCNN_DEVICE", "GPU:NVIDIA:0", 1);
    assert_ok(clcnn_device_select(NULL, &info));
    assert_int_equal(info.index, 0);
    setenv("CLCNN_DEVICE", "", 1);
    assert_ok(clcnn_device_select(NULL, &info));
    assert_int_equal(info.index, 0);

    setenv("CLCNN_DEVICE", "amd", 1);
    memset(&info, 0x5a, sizeof info);
    clcnn_device_info before = info;
    assert_status_msg(clcnn_device_select(NULL, &info), CLCNN_STATUS_NO_DEVICE, "CLCNN_DEVICE");
    assert_non_null(strstr(clcnn_last_error(), "'amd'"));
    assert_non_null(strstr(clcnn_last_error(), "NVIDIA H100 80GB HBM3"));
    assert_memory_equal(&info, &before, sizeof info);
    /* A failing explicit selector does not blame the environment. */
    assert_status_msg(clcnn_device_select("xilinx", &info), CLCNN_STATUS_NO_DEVICE, "'xilinx'");
    assert_null(strstr(clcnn_last_error(), "CLCNN_DEVICE"));
    unsetenv("CLCNN_DEVICE");
}

/* ---- failures --------------------------------------------------------------------------- */

static void test_select_no_match(void **state)
{
    (void)state;
    static const struct {
        const fake_machine *m;
        const char *selector;
        const char *texts[3]; /* all must be in the message */
    } rows[] = {
        {&m_pocl,
         "amd",
         {"'amd'", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", "Portable Computing"}},
        {&m_mixed, "gpu:7", {"'gpu:7'", "'7'", "[2] accelerator intel 'pac_a10"}},
        {&m_mixed, "9", {"'9'", "NVIDIA H100 80GB HBM3", "[1] cpu pocl"}},
        {&m_mixed, "gpu:cpu", {"'gpu:cpu'", "after 'cpu'", "pthread-skylake"}},
        {&m_mixed, "tpu", {"'tpu'", "matches no device", "NVIDIA CUDA"}},
        {&m_nvidia, "pocl", {"'pocl'", "[0] gpu nvidia 'NVIDIA H100 80GB HBM3'", "NVIDIA CUDA"}},
        {&m_nvidia2, "gpu:nvidia:2", {"'gpu:nvidia:2'", "NVIDIA A100-SXM4-80GB", "[1] gpu"}},
        {&m_amd, "AMD:CPU", {"'AMD:CPU'", "gfx1030", "AMD Accelerated Parallel Processing"}},
    };
    unsetenv("CLCNN_DEVICE");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        use(rows[r].m);
        clcnn_device_info info, before;
        memset(&info, 0xa5, sizeof info);
        memcpy(&before, &info, sizeof info);
        assert_status_msg(clcnn_device_select(rows[r].selector, &info), CLCNN_STATUS_NO_DEVICE,
                          rows[r].texts[0]);
        for (int t = 1; t < 3; t++) {
            if (strstr(clcnn_last_error(), rows[r].texts[t]) == NULL)
                print_error("'%s' not in: %s\n", rows[r].texts[t], clcnn_last_error());
            assert_non_null(strstr(clcnn_last_error(), rows[r].texts[t]));
        }
        assert_null(strstr(clcnn_last_error(), "CLCNN_DEVICE"));
        assert_memory_equal(&info, &before, sizeof info);
    }
}

/* No platform at all, or platforms without devices: NO_DEVICE, and outputs left alone. */
static void test_nothing_to_select(void **state)
{
    (void)state;
    static const struct {
        const fake_machine *m;
        const char *list_text, *select_text;
    } rows[] = {
        {&m_none, "no OpenCL platform is installed", "ICD"},
        {&m_empty, "1 OpenCL platform(s) found but no device", "no device on any"},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        clcnn_device_info sentinel;
        clcnn_device_info *infos = &sentinel;
        size_t n = 12345;
        use(rows[r].m);
        assert_status_msg(clcnn_device_list(&infos, &n), CLCNN_STATUS_NO_DEVICE, rows[r].list_text);
        assert_ptr_equal(infos, &sentinel);
        assert_int_equal(n, 12345);
        clcnn_device_info info, before;
        memset(&info, 0xa5, sizeof info);
        memcpy(&before, &info, sizeof info);
        assert_status_msg(clcnn_device_select(NULL, &info), CLCNN_STATUS_NO_DEVICE,
                          rows[r].select_text);
        assert_status_msg(clcnn_device_select("gpu:nvidia:1", &info), CLCNN_STATUS_NO_DEVICE,
                          rows[r].list_text);
        assert_memory_equal(&info, &before, sizeof info);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    use(&m_mixed);
    clcnn_device_info *infos = NULL;
    size_t n = 0;
    clcnn_device_info info, before;
    assert_status_msg(clcnn_device_list(NULL, &n), CLCNN_STATUS_INVALID_ARG, "NULL");
    assert_status_msg(clcnn_device_list(&infos, NULL), CLCNN_STATUS_INVALID_ARG, "NULL");
    assert_null(infos);
    assert_status_msg(clcnn_device_select("gpu", NULL), CLCNN_STATUS_INVALID_ARG, "NULL");
    assert_status_msg(clcnn_device_select(NULL, NULL), CLCNN_STATUS_INVALID_ARG, "NULL");

    memset(&info, 0xa5, sizeof info);
    memcpy(&before, &info, sizeof info);
    char selector[300];
    memset(selector, 'x', sizeof selector - 1);
    selector[sizeof selector - 1] = '\0';
    assert_status_msg(clcnn_device_select(selector, &info), CLCNN_STATUS_INVALID_ARG, "too long");
    assert_status_msg(clcnn_device_select("gpu:gpu:gpu:gpu:gpu:gpu:gpu:gpu:gpu:gpu:gpu:gpu:gpu:"
                                          "gpu:gpu:gpu:gpu",
                                          &info),
                      CLCNN_STATUS_INVALID_ARG, "over 16 tokens");
    assert_memory_equal(&info, &before, sizeof info);
}

#define CLASSIFY(row)                                                                              \
    {                                                                                              \
        "classify_" #row, test_classify, NULL, NULL, &row                                          \
    }

int main(void)
{
    /* The tests set CLCNN_DEVICE themselves; one inherited from the shell would skew them. */
    unsetenv("CLCNN_DEVICE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        CLASSIFY(amd_gfx1030),
        CLASSIFY(intel_gpu),
        CLASSIFY(intel_cpu),
        CLASSIFY(nvidia_h100),
        CLASSIFY(nvidia_a100),
        CLASSIFY(pocl31),
        CLASSIFY(pocl50),
        CLASSIFY(fpga),
        CLASSIFY(mixed_fpga),
        CLASSIFY(acme),
        cmocka_unit_test(test_list_order),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_skips_unavailable),
        cmocka_unit_test(test_select_env),
        cmocka_unit_test(test_select_no_match),
        cmocka_unit_test(test_nothing_to_select),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("device_select", tests, NULL, NULL);
}
