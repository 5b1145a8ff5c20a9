/* Device enumeration, the capability record, vendor and quirk detection, selector strings, and
 * the device handle (context plus compute and transfer queues). All vendor knowledge lives here;
 * OpenCL calls go straight to the cl* symbols so tests can wrap them with -Wl,--wrap. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl_ext.h>

#include "device_impl.h"
#include "log_impl.h"
#include "op_cache_impl.h"
#include "tune_clblast_impl.h"
#include "tune_db_impl.h"
#include "status_impl.h"

#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif

/* Upper bounds on what one machine reports; more is treated as a broken driver. */
#define MAX_PLATFORMS 32
#define MAX_DEVICES_PER_PLATFORM 64

/* ---- names ---------------------------------------------------------------------------- */

static const char *const vendor_tokens[] = {
#define VENDOR_TOKEN_(name, token) token,
    CLCNN_VENDOR_LIST(VENDOR_TOKEN_)
#undef VENDOR_TOKEN_
};
_Static_assert(sizeof vendor_tokens / sizeof vendor_tokens[0] == CLCNN_VENDOR_COUNT,
               "one selector token per vendor");

const char *clcnn_vendor_name(clcnn_vendor vendor)
{
    if ((int)vendor < 0 || vendor >= CLCNN_VENDOR_COUNT)
        return "unknown";
    return vendor_tokens[vendor];
}

const char *clcnn_device_type_name(clcnn_device_type type)
{
    switch (type) {
    case CLCNN_DEVICE_TYPE_CPU:
        return "cpu";
    case CLCNN_DEVICE_TYPE_GPU:
        return "gpu";
    case CLCNN_DEVICE_TYPE_ACCELERATOR:
        return "accelerator";
    default:
        return "other";
    }
}

const char *clcnn_quirk_name(uint32_t quirk, const char **description)
{
#define QUIRK_CASE_(name, bit, desc)                                                               \
    if (quirk == CLCNN_QUIRK_##name) {                                                             \
        if (description != NULL)                                                                   \
            *description = desc;                                                                   \
        return #name;                                                                              \
    }
    CLCNN_QUIRK_LIST(QUIRK_CASE_)
#undef QUIRK_CASE_
    return NULL;
}

/* ---- capability queries ---------------------------------------------------------------- */

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (; *hay != '\0'; hay++) {
        size_t i = 0;
        while (i < n && hay[i] != '\0' &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* Strings are truncated to the buffer; a failed query leaves "". Sizes count the NUL. */
static void device_str(cl_device_id dev, cl_device_info param, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t len = 0;
    if (clGetDeviceInfo(dev, param, 0, NULL, &len) != CL_SUCCESS || len == 0)
        return;
    char *tmp = malloc(len + 1);
    if (tmp == NULL)
        return;
    if (clGetDeviceInfo(dev, param, len, tmp, NULL) == CL_SUCCESS) {
        tmp[len] = '\0';
        snprintf(buf, size, "%s", tmp);
    }
    free(tmp);
}

static void platform_str(cl_platform_id p, cl_platform_info param, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t len = 0;
    if (clGetPlatformInfo(p, param, 0, NULL, &len) != CL_SUCCESS || len == 0)
        return;
    char *tmp = malloc(len + 1);
    if (tmp == NULL)
        return;
    if (clGetPlatformInfo(p, param, len, tmp, NULL) == CL_SUCCESS) {
        tmp[len] = '\0';
        snprintf(buf, size, "%s", tmp);
    }
    free(tmp);
}

/* Extension strings can be several KB; returns a malloc'd copy ("" on failure). */
static char *device_extensions(cl_device_id dev)
{
    size_t len = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS)
        len = 0;
    char *ext = malloc(len + 1);
    if (ext == NULL)
        return NULL;
    if (len > 0 && clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, len, ext, NULL) != CL_SUCCESS)
        len = 0;
    ext[len] = '\0';
    return ext;
}

static bool has_extension(const char *extensions, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(extensions, name); p != NULL; p = strstr(p + 1, name)) {
        bool start = p == extensions || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ' ';
        if (start && end)
            return true;
    }
    return false;
}

static cl_uint device_uint(cl_device_id dev, cl_device_info param)
{
    cl_uint v = 0;
    if (clGetDeviceInfo(dev, param, sizeof v, &v, NULL) != CL_SUCCESS)
        return 0;
    return v;
}

static cl_ulong device_ulong(cl_device_id dev, cl_device_info param)
{
    cl_ulong v = 0;
    if (clGetDeviceInfo(dev, param, sizeof v, &v, NULL) != CL_SUCCESS)
        return 0;
    return v;
}

static size_t device_size(cl_device_id dev, cl_device_info param)
{
    size_t v = 0;
    if (clGetDeviceInfo(dev, param, sizeof v, &v, NULL) != CL_SUCCESS)
        return 0;
    return v;
}

/* Vendor of the driver from the names, falling back on the PCI vendor id. */
static clcnn_vendor classify_vendor(const clcnn_device_info *info)
{
    static const struct {
        const char *needle;
        clcnn_vendor vendor;
    } by_name[] = {
        {"Portable Computing Language", CLCNN_VENDOR_POCL},
        {"pocl", CLCNN_VENDOR_POCL},
        {"NVIDIA", CLCNN_VENDOR_NVIDIA},
        {"Advanced Micro Devices", CLCNN_VENDOR_AMD},
        {"AMD", CLCNN_VENDOR_AMD},
        {"Intel", CLCNN_VENDOR_INTEL},
        {"Apple", CLCNN_VENDOR_APPLE},
        {"Qualcomm", CLCNN_VENDOR_QUALCOMM},
        {"Xilinx", CLCNN_VENDOR_XILINX},
        {"ARM", CLCNN_VENDOR_ARM},
    };
    /* The platform identifies the driver; the device vendor string may name the chip. */
    const char *fields[] = {info->platform_name, info->platform_vendor, info->vendor_name};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (size_t i = 0; i < sizeof by_name / sizeof by_name[0]; i++)
            if (contains_nocase(fields[f], by_name[i].needle))
                return by_name[i].vendor;
    switch (info->vendor_id) {
    case 0x10de:
        return CLCNN_VENDOR_NVIDIA;
    case 0x1002:
    case 0x1022:
        return CLCNN_VENDOR_AMD;
    case 0x8086:
        return CLCNN_VENDOR_INTEL;
    case 0x13b5:
        return CLCNN_VENDOR_ARM;
    case 0x5143:
        return CLCNN_VENDOR_QUALCOMM;
    default:
        return CLCNN_VENDOR_UNKNOWN;
    }
}

static clcnn_vendor vendor_of_pci_id(unsigned id)
{
    clcnn_device_info probe;
    memset(&probe, 0, sizeof probe);
    probe.vendor_id = id;
    return classify_vendor(&probe);
}

/* Architecture names as CLBlast derives them: the compute capability on NVIDIA, the gfx name
 * on AMD (its device name), the LLVM CPU name from POCL's "HSTR:" device version, else the
 * device name. */
static void derive_arch(cl_device_id dev, const char *extensions, clcnn_device_info *info)
{
    info->arch[0] = '\0';
    if (info->vendor == CLCNN_VENDOR_NVIDIA &&
        has_extension(extensions, "cl_nv_device_attribute_query")) {
        cl_uint major = device_uint(dev, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV);
        cl_uint minor = device_uint(dev, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV);
        if (major > 0) {
            snprintf(info->arch, sizeof info->arch, "sm_%u%u", major, minor);
            return;
        }
    }
    if (info->vendor == CLCNN_VENDOR_POCL) {
        const char *hstr = strstr(info->device_version, "HSTR:");
        const char *gnu = hstr != NULL ? strstr(hstr, "-gnu-") : NULL;
        if (gnu != NULL) {
            snprintf(info->arch, sizeof info->arch, "%s", gnu + 5);
            return;
        }
    }
    snprintf(info->arch, sizeof info->arch, "%.*s", (int)sizeof info->arch - 1, info->name);
}

/* "OpenCL C 1.2 PoCL" -> 1, 2. Devices of OpenCL 1.0 lack the query: assume C 1.0. */
static void parse_c_version(clcnn_device_info *info)
{
    unsigned major = 1, minor = 0;
    if (sscanf(info->opencl_c_version, "OpenCL C %u.%u", &major, &minor) != 2) {
        major = 1;
        minor = 0;
    }
    info->opencl_c_major = major;
    info->opencl_c_minor = minor;
}

/* Leading numeric components of a driver version: "535.104.05" -> 535,104,5; "3.1+debian"
 * -> 3,1,0. */
static void parse_driver_version(const char *s, unsigned v[3])
{
    v[0] = v[1] = v[2] = 0;
    while (*s != '\0' && !isdigit((unsigned char)*s))
        s++;
    for (int i = 0; i < 3 && isdigit((unsigned char)*s); i++) {
        char *end;
        unsigned long x = strtoul(s, &end, 10);
        v[i] = x > 0xffffffu ? 0xffffffu : (unsigned)x;
        if (*end != '.')
            break;
        s = end + 1;
    }
}

static int compare_version(const unsigned a[3], const unsigned b[3])
{
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Quirks that cannot be probed, as data. Driver bounds are [min, max) over the driver's
 * version; NULL means unbounded. */
static const struct quirk_rule {
    clcnn_vendor vendor;
    const char *driver_min;
    const char *driver_max;
    uint32_t flags;
} quirk_rules[] = {
    /* NVIDIA's OpenCL executes half arithmetic but does not list cl_khr_fp16, and defers part
     * of code generation until the first clCreateKernel/launch, so build times understate the
     * first call. */
    {CLCNN_VENDOR_NVIDIA, NULL, NULL,
     CLCNN_QUIRK_HALF_WITHOUT_EXTENSION | CLCNN_QUIRK_LAZY_COMPILE},
    /* POCL before 4.0: results of local memory + barriers in partly active work-groups depend
     * on POCL_WORK_GROUP_METHOD; CI pins it and tests/test_program.c keeps a regression. */
    {CLCNN_VENDOR_POCL, NULL, "4.0", CLCNN_QUIRK_BARRIER_PARTIAL_GROUPS},
};

static uint32_t table_quirks(const clcnn_device_info *info)
{
    unsigned have[3];
    parse_driver_version(info->driver_version, have);
    uint32_t flags = 0;
    for (size_t i = 0; i < sizeof quirk_rules / sizeof quirk_rules[0]; i++) {
        const struct quirk_rule *r = &quirk_rules[i];
        if (r->vendor != info->vendor)
            continue;
        unsigned bound[3];
        if (r->driver_min != NULL) {
            parse_driver_version(r->driver_min, bound);
            if (compare_version(have, bound) < 0)
                continue;
        }
        if (r->driver_max != NULL) {
            parse_driver_version(r->driver_max, bound);
            if (compare_version(have, bound) >= 0)
                continue;
        }
        flags |= r->flags;
    }
    return flags;
}

static clcnn_status fill_info(cl_platform_id platform, unsigned platform_index, cl_device_id dev,
                              unsigned index, clcnn_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->index = index;
    info->platform_index = platform_index;
    platform_str(platform, CL_PLATFORM_NAME, info->platform_name, sizeof info->platform_name);
    platform_str(platform, CL_PLATFORM_VENDOR, info->platform_vendor, sizeof info->platform_vendor);
    platform_str(platform, CL_PLATFORM_VERSION, info->platform_version,
                 sizeof info->platform_version);
    device_str(dev, CL_DEVICE_NAME, info->name, sizeof info->name);
    device_str(dev, CL_DEVICE_VENDOR, info->vendor_name, sizeof info->vendor_name);
    device_str(dev, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
    device_str(dev, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    device_str(dev, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
               sizeof info->opencl_c_version);
    parse_c_version(info);

    cl_device_type type = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS)
        type = 0;
    info->type = (type & CL_DEVICE_TYPE_GPU)           ? CLCNN_DEVICE_TYPE_GPU
                 : (type & CL_DEVICE_TYPE_ACCELERATOR) ? CLCNN_DEVICE_TYPE_ACCELERATOR
                 : (type & CL_DEVICE_TYPE_CPU)         ? CLCNN_DEVICE_TYPE_CPU
                                                       : CLCNN_DEVICE_TYPE_OTHER;
    info->vendor_id = device_uint(dev, CL_DEVICE_VENDOR_ID);
    info->compute_units = device_uint(dev, CL_DEVICE_MAX_COMPUTE_UNITS);
    info->max_clock_mhz = device_uint(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY);
    info->global_mem_bytes = device_ulong(dev, CL_DEVICE_GLOBAL_MEM_SIZE);
    info->max_alloc_bytes = device_ulong(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    info->local_mem_bytes = device_ulong(dev, CL_DEVICE_LOCAL_MEM_SIZE);
    info->max_work_group_size = device_size(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE);
    info->max_work_item_dims = device_uint(dev, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS);
    size_t sizes[8] = {0};
    if (info->max_work_item_dims > 0 && info->max_work_item_dims <= 8 &&
        clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_SIZES,
                        info->max_work_item_dims * sizeof(size_t), sizes, NULL) == CL_SUCCESS)
        memcpy(info->max_work_item_sizes, sizes, sizeof info->max_work_item_sizes);
    info->pref_vector_width_float = device_uint(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT);
    info->pref_vector_width_half = device_uint(dev, CL_DEVICE_PREFERRED_VECTOR_WIDTH_HALF);
    info->native_vector_width_float = device_uint(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT);
    info->unified_memory = device_uint(dev, CL_DEVICE_HOST_UNIFIED_MEMORY) != 0;
    info->compiler_available = device_uint(dev, CL_DEVICE_COMPILER_AVAILABLE) != 0;
    info->available = device_uint(dev, CL_DEVICE_AVAILABLE) != 0;

    char *extensions = device_extensions(dev);
    if (extensions == NULL)
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "device: cannot allocate extension list");
    info->fp16 = has_extension(extensions, "cl_khr_fp16");
    info->fp64 = has_extension(extensions, "cl_khr_fp64") ||
                 device_ulong(dev, CL_DEVICE_DOUBLE_FP_CONFIG) != 0;
    info->vendor = classify_vendor(info);
    derive_arch(dev, extensions, info);
    free(extensions);

    /* Probed quirks first, then the table. */
    uint32_t q = 0;
    if (info->opencl_c_major < 2)
        q |= CLCNN_QUIRK_NO_NONUNIFORM_WORK_GROUPS;
    cl_device_local_mem_type local_type = CL_LOCAL;
    if (clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_TYPE, sizeof local_type, &local_type, NULL) ==
            CL_SUCCESS &&
        local_type == CL_GLOBAL)
        q |= CLCNN_QUIRK_LOCAL_MEM_IS_GLOBAL;
    if (info->type == CLCNN_DEVICE_TYPE_CPU)
        q |= CLCNN_QUIRK_LOCAL_MEM_IS_GLOBAL;
    if (!info->compiler_available)
        q |= CLCNN_QUIRK_NO_COMPILER;
    clcnn_vendor by_id = vendor_of_pci_id(info->vendor_id);
    if (info->vendor_id != 0 && by_id != CLCNN_VENDOR_UNKNOWN && by_id != info->vendor)
        q |= CLCNN_QUIRK_VENDOR_ID_MISLEADING;
    info->quirks = q | table_quirks(info);
    return CLCNN_OK;
}

/* ---- enumeration ----------------------------------------------------------------------- */

typedef struct device_entry {
    cl_platform_id platform;
    cl_device_id id;
    clcnn_device_info info;
} device_entry;

static clcnn_status enumerate(device_entry **out, size_t *out_count)
{
    cl_uint nplat = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &nplat);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && nplat == 0))
        return CLCNN_ERR(CLCNN_STATUS_NO_DEVICE,
                         "device: no OpenCL platform is installed (the ICD loader found none; "
                         "check /etc/OpenCL/vendors or OCL_ICD_VENDORS)");
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device: clGetPlatformIDs");
    if (nplat > MAX_PLATFORMS)
        nplat = MAX_PLATFORMS;
    cl_platform_id platforms[MAX_PLATFORMS];
    err = clGetPlatformIDs(nplat, platforms, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device: clGetPlatformIDs");

    device_entry *list = NULL;
    size_t count = 0;
    for (cl_uint p = 0; p < nplat; p++) {
        cl_uint ndev = 0;
        err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev);
        if (err == CL_DEVICE_NOT_FOUND || (err == CL_SUCCESS && ndev == 0))
            continue;
        if (err != CL_SUCCESS) {
            /* One broken platform must not hide the others. */
            CLCNN_WARN("device", "platform %u: clGetDeviceIDs -> %s; skipping it", p,
                       clcnn_cl_error_name(err));
            continue;
        }
        if (ndev > MAX_DEVICES_PER_PLATFORM)
            ndev = MAX_DEVICES_PER_PLATFORM;
        cl_device_id ids[MAX_DEVICES_PER_PLATFORM];
        err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, ndev, ids, NULL);
        if (err != CL_SUCCESS) {
            CLCNN_WARN("device", "platform %u: clGetDeviceIDs -> %s; skipping it", p,
                       clcnn_cl_error_name(err));
            continue;
        }
        device_entry *grown = realloc(list, (count + ndev) * sizeof *list);
        if (grown == NULL) {
            free(list);
            return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "device: cannot allocate device list");
        }
        list = grown;
        for (cl_uint d = 0; d < ndev; d++) {
            device_entry *e = &list[count];
            e->platform = platforms[p];
            e->id = ids[d];
            clcnn_status st = fill_info(platforms[p], p, ids[d], (unsigned)count, &e->info);
            if (st != CLCNN_OK) {
                free(list);
                return st;
            }
            count++;
        }
    }
    if (count == 0) {
        free(list);
        return CLCNN_ERR(CLCNN_STATUS_NO_DEVICE,
                         "device: %u OpenCL platform(s) found but no device on any of them", nplat);
    }
    *out = list;
    *out_count = count;
    return CLCNN_OK;
}

clcnn_status clcnn_device_list(clcnn_device_info **infos, size_t *count)
{
    CLCNN_FAIL_IF(infos == NULL || count == NULL, CLCNN_STATUS_INVALID_ARG,
                  "device_list: NULL output");
    device_entry *list = NULL;
    size_t n = 0;
    CLCNN_TRY(enumerate(&list, &n));
    clcnn_device_info *out = malloc(n * sizeof *out);
    if (out == NULL) {
        free(list);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "device_list: cannot allocate %zu records", n);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = list[i].info;
    free(list);
    *infos = out;
    *count = n;
    return CLCNN_OK;
}

/* ---- selection ------------------------------------------------------------------------- */

static int type_rank(clcnn_device_type t)
{
    switch (t) {
    case CLCNN_DEVICE_TYPE_GPU:
        return 0;
    case CLCNN_DEVICE_TYPE_ACCELERATOR:
        return 1;
    case CLCNN_DEVICE_TYPE_CPU:
        return 2;
    default:
        return 3;
    }
}

static bool parse_type_token(const char *t, clcnn_device_type *type)
{
    if (strcmp(t, "cpu") == 0)
        *type = CLCNN_DEVICE_TYPE_CPU;
    else if (strcmp(t, "gpu") == 0)
        *type = CLCNN_DEVICE_TYPE_GPU;
    else if (strcmp(t, "accelerator") == 0 || strcmp(t, "accel") == 0 || strcmp(t, "fpga") == 0)
        *type = CLCNN_DEVICE_TYPE_ACCELERATOR;
    else
        return false;
    return true;
}

static bool parse_vendor_token(const char *t, clcnn_vendor *vendor)
{
    for (int v = 1; v < CLCNN_VENDOR_COUNT; v++) {
        if (strcmp(t, vendor_tokens[v]) == 0) {
            *vendor = (clcnn_vendor)v;
            return true;
        }
    }
    return false;
}

static bool all_digits(const char *t)
{
    if (*t == '\0')
        return false;
    for (; *t != '\0'; t++)
        if (!isdigit((unsigned char)*t))
            return false;
    return true;
}

/* Appends "[i] type vendor 'name' (platform)" for every device, for error messages. */
static void describe_devices(const device_entry *list, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < size; i++) {
        int w = snprintf(buf + used, size - used, "%s[%zu] %s %s '%s' (%s)", i ? "; " : "", i,
                         clcnn_device_type_name(list[i].info.type),
                         clcnn_vendor_name(list[i].info.vendor), list[i].info.name,
                         list[i].info.platform_name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Filters candidates (a mask over list) token by token; on success sets *chosen. */
static clcnn_status select_from(const device_entry *list, size_t n, const char *selector,
                                const char *origin, size_t *chosen)
{
    char listing[2048];
    if (strlen(selector) >= 256) {
        return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "device: selector%s is too long (%zu chars)",
                         origin, strlen(selector));
    }
    bool cand[MAX_PLATFORMS * MAX_DEVICES_PER_PLATFORM];
    for (size_t i = 0; i < n; i++)
        cand[i] = true;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", selector);
    for (char *p = copy; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);

    char *tokens[16];
    int ntokens = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save)) {
        if (ntokens == 16)
            return CLCNN_ERR(CLCNN_STATUS_INVALID_ARG, "device: selector '%s'%s has over 16 tokens",
                             selector, origin);
        tokens[ntokens++] = tok;
    }
    for (int k = 0; k < ntokens; k++) {
        const char *tok = tokens[k];
        clcnn_device_type type;
        clcnn_vendor vendor;
        if (strcmp(tok, "default") == 0 || strcmp(tok, "auto") == 0) {
            continue;
        } else if (parse_type_token(tok, &type)) {
            for (size_t i = 0; i < n; i++)
                cand[i] = cand[i] && list[i].info.type == type;
        } else if (parse_vendor_token(tok, &vendor)) {
            for (size_t i = 0; i < n; i++)
                cand[i] = cand[i] && list[i].info.vendor == vendor;
        } else if (all_digits(tok)) {
            unsigned long want = strtoul(tok, NULL, 10);
            /* A lone number is the global index; after other tokens it counts candidates. */
            bool global = ntokens == 1;
            size_t seen = 0;
            for (size_t i = 0; i < n; i++) {
                bool keep = global ? i == want : (cand[i] && seen++ == want);
                cand[i] = cand[i] && keep;
            }
        } else {
            for (size_t i = 0; i < n; i++)
                cand[i] = cand[i] && (contains_nocase(list[i].info.name, tok) ||
                                      contains_nocase(list[i].info.platform_name, tok));
        }
        bool any = false;
        for (size_t i = 0; i < n; i++)
            any = any || cand[i];
        if (!any) {
            describe_devices(list, n, listing, sizeof listing);
            return CLCNN_ERR(CLCNN_STATUS_NO_DEVICE,
                             "device: selector '%s'%s matches no device (nothing left after "
                             "'%s'); devices: %s",
                             selector, origin, tok, listing);
        }
    }
    /* Among what is left: available devices first, then GPU, accelerator, CPU, then order. */
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
        if (!cand[i])
            continue;
        if (best == n)
            best = i;
        else if (list[i].info.available != list[best].info.available)
            best = list[i].info.available ? i : best;
        else if (type_rank(list[i].info.type) < type_rank(list[best].info.type))
            best = i;
    }
    *chosen = best;
    return CLCNN_OK;
}

static clcnn_status select_entry(const char *selector, device_entry **list_out, size_t *chosen)
{
    const char *origin = "";
    if (selector == NULL || selector[0] == '\0') {
        const char *env = getenv("CLCNN_DEVICE");
        if (env != NULL && env[0] != '\0') {
            selector = env;
            origin = " (from CLCNN_DEVICE)";
        } else {
            selector = "default";
        }
    }
    device_entry *list = NULL;
    size_t n = 0;
    CLCNN_TRY(enumerate(&list, &n));
    clcnn_status st = select_from(list, n, selector, origin, chosen);
    if (st != CLCNN_OK) {
        free(list);
        return st;
    }
    *list_out = list;
    return CLCNN_OK;
}

clcnn_status clcnn_device_select(const char *selector, clcnn_device_info *info)
{
    CLCNN_FAIL_IF(info == NULL, CLCNN_STATUS_INVALID_ARG, "device_select: NULL output");
    device_entry *list = NULL;
    size_t chosen = 0;
    CLCNN_TRY(select_entry(selector, &list, &chosen));
    *info = list[chosen].info;
    free(list);
    return CLCNN_OK;
}

/* ---- the handle ------------------------------------------------------------------------ */

static clcnn_status finish_create(clcnn_device *d)
{
    cl_int err;
    d->compute = clCreateCommandQueue(d->context, d->id, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device '%s': clCreateCommandQueue (compute)", d->info.name);
    d->transfer = clCreateCommandQueue(d->context, d->id, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device '%s': clCreateCommandQueue (transfer)", d->info.name);
    CLCNN_TRY(clcnn__program_init(d));
    if (d->info.quirks & CLCNN_QUIRK_BARRIER_PARTIAL_GROUPS) {
        const char *method = getenv("POCL_WORK_GROUP_METHOD");
        CLCNN_DEBUG("device", "POCL %s with POCL_WORK_GROUP_METHOD=%s", d->info.driver_version,
                    method != NULL ? method : "(default)");
    }
    /* CLBlast's tuned parameters, when the tuning database holds some for this device. */
    clcnn__clblast_apply_tuned(d);
    CLCNN_INFO("device", "using [%u] %s '%s' (%s, driver %s)", d->info.index,
               clcnn_device_type_name(d->info.type), d->info.name, d->info.platform_name,
               d->info.driver_version);
    return CLCNN_OK;
}

static clcnn_device *device_alloc(void)
{
    clcnn_device *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->op_cache = calloc(CLCNN_OP_CACHE_ENTRIES, clcnn__op_cache_entry_size());
    if (d->op_cache == NULL || pthread_mutex_init(&d->program_lock, NULL) != 0) {
        free(d->op_cache);
        free(d);
        return NULL;
    }
    return d;
}

clcnn_status clcnn_device_create(const char *selector, clcnn_device **device)
{
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "device_create: NULL output");
    device_entry *list = NULL;
    size_t chosen = 0;
    CLCNN_TRY(select_entry(selector, &list, &chosen));
    clcnn_device *d = device_alloc();
    if (d == NULL) {
        free(list);
        return CLCNN_ERR(CLCNN_STATUS_OUT_OF_MEMORY, "device_create: cannot allocate handle");
    }
    d->info = list[chosen].info;
    d->platform = list[chosen].platform;
    d->id = list[chosen].id;
    free(list);

    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform, 0};
    cl_int err;
    d->context = clCreateContext(props, 1, &d->id, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        clcnn_status st = CLCNN_CL_ERR(err, "device '%s': clCreateContext", d->info.name);
        clcnn_device_release(d);
        return st;
    }
    clcnn_status st = finish_create(d);
    if (st != CLCNN_OK) {
        clcnn_device_release(d);
        return st;
    }
    *device = d;
    return CLCNN_OK;
}

clcnn_status clcnn_device_create_from_cl(cl_context context, cl_device_id device_id,
                                         clcnn_device **device)
{
    CLCNN_FAIL_IF(context == NULL || device_id == NULL || device == NULL, CLCNN_STATUS_INVALID_ARG,
                  "device_create_from_cl: NULL argument");
    cl_platform_id platform = NULL;
    cl_int err = clGetDeviceInfo(device_id, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device_create_from_cl: clGetDeviceInfo(CL_DEVICE_PLATFORM)");
    clcnn_device *d = device_alloc();
    CLCNN_FAIL_IF(d == NULL, CLCNN_STATUS_OUT_OF_MEMORY,
                  "device_create_from_cl: cannot allocate handle");
    /* The index is unknown for a foreign device: report the platform's first slot. */
    clcnn_status st = fill_info(platform, 0, device_id, 0, &d->info);
    if (st != CLCNN_OK) {
        clcnn_device_release(d);
        return st;
    }
    err = clRetainContext(context);
    if (err != CL_SUCCESS) {
        clcnn_device_release(d);
        return CLCNN_CL_ERR(err, "device_create_from_cl: clRetainContext");
    }
    d->context = context;
    d->platform = platform;
    d->id = device_id;
    st = finish_create(d);
    if (st != CLCNN_OK) {
        clcnn_device_release(d);
        return st;
    }
    *device = d;
    return CLCNN_OK;
}

void clcnn_device_release(clcnn_device *device)
{
    if (device == NULL)
        return;
    if (device->compute != NULL)
        clFinish(device->compute);
    if (device->transfer != NULL)
        clFinish(device->transfer);
    clcnn__program_cleanup(device);
    clcnn__op_cache_clear(device);
    free(device->op_cache);
    clcnn__tune_db_forget(device);
    if (device->compute != NULL)
        clReleaseCommandQueue(device->compute);
    if (device->transfer != NULL)
        clReleaseCommandQueue(device->transfer);
    if (device->context != NULL)
        clReleaseContext(device->context);
    pthread_mutex_destroy(&device->program_lock);
    free(device);
}

const clcnn_device_info *clcnn_device_get_info(const clcnn_device *device)
{
    return device != NULL ? &device->info : NULL;
}

cl_context clcnn_device_context(const clcnn_device *device)
{
    return device != NULL ? device->context : NULL;
}

cl_device_id clcnn_device_id(const clcnn_device *device)
{
    return device != NULL ? device->id : NULL;
}

cl_command_queue clcnn_device_compute_queue(const clcnn_device *device)
{
    return device != NULL ? device->compute : NULL;
}

cl_command_queue clcnn_device_transfer_queue(const clcnn_device *device)
{
    return device != NULL ? device->transfer : NULL;
}

clcnn_status clcnn_device_finish(clcnn_device *device)
{
    CLCNN_FAIL_IF(device == NULL, CLCNN_STATUS_INVALID_ARG, "device_finish: NULL device");
    cl_int err = clFinish(device->compute);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device '%s': clFinish (compute)", device->info.name);
    err = clFinish(device->transfer);
    if (err != CL_SUCCESS)
        return CLCNN_CL_ERR(err, "device '%s': clFinish (transfer)", device->info.name);
    return CLCNN_OK;
}
