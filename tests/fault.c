/* The fault-injection seam (see fault.h): __wrap_ versions of the OpenCL calls the library
 * makes, counting every call and failing the armed one with the error a driver would return. */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include <CL/cl.h>
#include <clblast_c.h>

#include "fault.h"

static const struct {
    const char *name;
    cl_int error;
    clcnn_status status;
} kinds[FAULT_KIND_COUNT] = {
#define FAULT_ROW_(kind, name, error, status) {name, error, CLCNN_STATUS_##status},
    FAULT_KIND_LIST(FAULT_ROW_)
#undef FAULT_ROW_
};

/* Distinct call sites kept per process: far more than the library has. */
#define MAX_SITES 1024

struct site {
    const void *address;
    int kind;
};

static size_t counts[FAULT_KIND_COUNT];
static fault_mask armed_mask;
static size_t armed_k, armed_seen;
static int fired = -1;
static struct site sites[MAX_SITES], all_sites[MAX_SITES];
static size_t site_count, all_site_count;
static long live[FAULT_OBJ_COUNT];

long fault_live(fault_object object)
{
    return live[object];
}

/* Counts a new object when the call that makes it succeeded. */
static void *made(fault_object object, void *handle)
{
    if (handle != NULL)
        live[object]++;
    return handle;
}

static cl_int made_event(cl_int err, const cl_event *event)
{
    if (err == CL_SUCCESS && event != NULL)
        live[FAULT_OBJ_EVENT]++;
    return err;
}

static void note_site(struct site *table, size_t *count, const void *address, int kind)
{
    for (size_t i = 0; i < *count; i++)
        if (table[i].address == address)
            return;
    if (*count < MAX_SITES) {
        table[*count].address = address;
        table[*count].kind = kind;
        (*count)++;
    }
}

/* Counts a call of kind from address; true when this one is to fail. */
static bool hit(fault_kind kind, const void *address)
{
    counts[kind]++;
    note_site(sites, &site_count, address, (int)kind);
    note_site(all_sites, &all_site_count, address, (int)kind);
    if (armed_k == 0 || !(armed_mask & FAULT_BIT(kind)))
        return false;
    if (++armed_seen != armed_k)
        return false;
    fired = (int)kind;
    return true;
}

void fault_reset(void)
{
    memset(counts, 0, sizeof counts);
    site_count = 0;
    armed_mask = 0;
    armed_k = armed_seen = 0;
    fired = -1;
}

void fault_arm(fault_mask mask, size_t k)
{
    armed_mask = mask;
    armed_k = k;
    armed_seen = 0;
    fired = -1;
}

size_t fault_calls(fault_mask mask)
{
    size_t n = 0;
    for (int k = 0; k < FAULT_KIND_COUNT; k++)
        if (mask & FAULT_BIT(k))
            n += counts[k];
    return n;
}

int fault_fired(void)
{
    return fired;
}

size_t fault_sites(fault_mask mask)
{
    size_t n = 0;
    for (size_t i = 0; i < site_count; i++)
        if (mask & FAULT_BIT(sites[i].kind))
            n++;
    return n;
}

size_t fault_sites_total(void)
{
    return all_site_count;
}

void fault_sites_print(FILE *out)
{
    for (size_t i = 0; i < all_site_count; i++) {
        Dl_info info;
        const char *module = "?";
        uintptr_t offset = (uintptr_t)all_sites[i].address;
        if (dladdr(all_sites[i].address, &info) != 0 && info.dli_fname != NULL) {
            module = info.dli_fname;
            offset -= (uintptr_t)info.dli_fbase;
        }
        /* The return address is just past the call: back up one byte into it. */
        fprintf(out, "%s %s+0x%lx\n", kinds[all_sites[i].kind].name, module,
                (unsigned long)(offset - 1));
    }
}

const char *fault_call_name(int kind)
{
    return kind >= 0 && kind < FAULT_KIND_COUNT ? kinds[kind].name : "(none)";
}

int fault_error_code(int kind)
{
    return kind >= 0 && kind < FAULT_KIND_COUNT ? kinds[kind].error : CL_SUCCESS;
}

clcnn_status fault_expected_status(int kind)
{
    return kind >= 0 && kind < FAULT_KIND_COUNT ? kinds[kind].status : CLCNN_OK;
}

#define CALLER __builtin_return_address(0)

/* Creation calls: a failure returns NULL and the error through errcode_ret. */
static void *failed(fault_kind kind, cl_int *errcode_ret)
{
    if (errcode_ret != NULL)
        *errcode_ret = kinds[kind].error;
    return NULL;
}

cl_mem CL_API_CALL __real_clCreateBuffer(cl_context, cl_mem_flags, size_t, void *, cl_int *);
cl_mem CL_API_CALL __wrap_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                         void *host_ptr, cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_BUFFER, CALLER))
        return failed(FAULT_CREATE_BUFFER, errcode_ret);
    return made(FAULT_OBJ_MEM, __real_clCreateBuffer(context, flags, size, host_ptr, errcode_ret));
}

cl_mem CL_API_CALL __real_clCreateSubBuffer(cl_mem, cl_mem_flags, cl_buffer_create_type,
                                            const void *, cl_int *);
cl_mem CL_API_CALL __wrap_clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags,
                                            cl_buffer_create_type type, const void *info,
                                            cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_SUB_BUFFER, CALLER))
        return failed(FAULT_CREATE_SUB_BUFFER, errcode_ret);
    return made(FAULT_OBJ_MEM, __real_clCreateSubBuffer(buffer, flags, type, info, errcode_ret));
}

cl_program CL_API_CALL __real_clCreateProgramWithSource(cl_context, cl_uint, const char **,
                                                        const size_t *, cl_int *);
cl_program CL_API_CALL __wrap_clCreateProgramWithSource(cl_context context, cl_uint count,
                                                        const char **strings, const size_t *lengths,
                                                        cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_PROGRAM_SOURCE, CALLER))
        return failed(FAULT_CREATE_PROGRAM_SOURCE, errcode_ret);
    return made(FAULT_OBJ_PROGRAM,
                __real_clCreateProgramWithSource(context, count, strings, lengths, errcode_ret));
}

cl_program CL_API_CALL __real_clCreateProgramWithBinary(cl_context, cl_uint, const cl_device_id *,
                                                        const size_t *, const unsigned char **,
                                                        cl_int *, cl_int *);
cl_program CL_API_CALL __wrap_clCreateProgramWithBinary(cl_context context, cl_uint num_devices,
                                                        const cl_device_id *devices,
                                                        const size_t *lengths,
                                                        const unsigned char **binaries,
                                                        cl_int *binary_status, cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_PROGRAM_BINARY, CALLER)) {
        for (cl_uint i = 0; binary_status != NULL && i < num_devices; i++)
            binary_status[i] = CL_INVALID_BINARY;
        return failed(FAULT_CREATE_PROGRAM_BINARY, errcode_ret);
    }
    return made(FAULT_OBJ_PROGRAM,
                __real_clCreateProgramWithBinary(context, num_devices, devices, lengths, binaries,
                                                 binary_status, errcode_ret));
}

cl_int CL_API_CALL __real_clBuildProgram(cl_program, cl_uint, const cl_device_id *, const char *,
                                         void(CL_CALLBACK *)(cl_program, void *), void *);
cl_int CL_API_CALL __wrap_clBuildProgram(cl_program program, cl_uint num_devices,
                                         const cl_device_id *devices, const char *options,
                                         void(CL_CALLBACK *notify)(cl_program, void *),
                                         void *user_data)
{
    if (hit(FAULT_BUILD_PROGRAM, CALLER))
        return kinds[FAULT_BUILD_PROGRAM].error;
    return __real_clBuildProgram(program, num_devices, devices, options, notify, user_data);
}

cl_kernel CL_API_CALL __real_clCreateKernel(cl_program, const char *, cl_int *);
cl_kernel CL_API_CALL __wrap_clCreateKernel(cl_program program, const char *name,
                                            cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_KERNEL, CALLER))
        return failed(FAULT_CREATE_KERNEL, errcode_ret);
    return made(FAULT_OBJ_KERNEL, __real_clCreateKernel(program, name, errcode_ret));
}

cl_int CL_API_CALL __real_clSetKernelArg(cl_kernel, cl_uint, size_t, const void *);
cl_int CL_API_CALL __wrap_clSetKernelArg(cl_kernel kernel, cl_uint index, size_t size,
                                         const void *value)
{
    if (hit(FAULT_SET_KERNEL_ARG, CALLER))
        return kinds[FAULT_SET_KERNEL_ARG].error;
    return __real_clSetKernelArg(kernel, index, size, value);
}

cl_int CL_API_CALL __real_clEnqueueNDRangeKernel(cl_command_queue, cl_kernel, cl_uint,
                                                 const size_t *, const size_t *, const size_t *,
                                                 cl_uint, const cl_event *, cl_event *);
cl_int CL_API_CALL __wrap_clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel,
                                                 cl_uint dims, const size_t *offset,
                                                 const size_t *global, const size_t *local,
                                                 cl_uint num_events, const cl_event *wait_list,
                                                 cl_event *event)
{
    if (hit(FAULT_ENQUEUE_KERNEL, CALLER))
        return kinds[FAULT_ENQUEUE_KERNEL].error;
    return made_event(__real_clEnqueueNDRangeKernel(queue, kernel, dims, offset, global, local,
                                                    num_events, wait_list, event),
                      event);
}

cl_int CL_API_CALL __real_clEnqueueWriteBuffer(cl_command_queue, cl_mem, cl_bool, size_t, size_t,
                                               const void *, cl_uint, const cl_event *, cl_event *);
cl_int CL_API_CALL __wrap_clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer,
                                               cl_bool blocking, size_t offset, size_t size,
                                               const void *ptr, cl_uint num_events,
                                               const cl_event *wait_list, cl_event *event)
{
    if (hit(FAULT_ENQUEUE_WRITE, CALLER))
        return kinds[FAULT_ENQUEUE_WRITE].error;
    return made_event(__real_clEnqueueWriteBuffer(queue, buffer, blocking, offset, size, ptr,
                                                  num_events, wait_list, event),
                      event);
}

cl_int CL_API_CALL __real_clEnqueueReadBuffer(cl_command_queue, cl_mem, cl_bool, size_t, size_t,
                                              void *, cl_uint, const cl_event *, cl_event *);
cl_int CL_API_CALL __wrap_clEnqueueReadBuffer(cl_command_queue queue, cl_mem buffer,
                                              cl_bool blocking, size_t offset, size_t size,
                                              void *ptr, cl_uint num_events,
                                              const cl_event *wait_list, cl_event *event)
{
    if (hit(FAULT_ENQUEUE_READ, CALLER))
        return kinds[FAULT_ENQUEUE_READ].error;
    return made_event(__real_clEnqueueReadBuffer(queue, buffer, blocking, offset, size, ptr,
                                                 num_events, wait_list, event),
                      event);
}

cl_int CL_API_CALL __real_clEnqueueCopyBuffer(cl_command_queue, cl_mem, cl_mem, size_t, size_t,
                                              size_t, cl_uint, const cl_event *, cl_event *);
cl_int CL_API_CALL __wrap_clEnqueueCopyBuffer(cl_command_queue queue, cl_mem src, cl_mem dst,
                                              size_t src_offset, size_t dst_offset, size_t size,
                                              cl_uint num_events, const cl_event *wait_list,
                                              cl_event *event)
{
    if (hit(FAULT_ENQUEUE_COPY, CALLER))
        return kinds[FAULT_ENQUEUE_COPY].error;
    return made_event(__real_clEnqueueCopyBuffer(queue, src, dst, src_offset, dst_offset, size,
                                                 num_events, wait_list, event),
                      event);
}

cl_int CL_API_CALL __real_clEnqueueFillBuffer(cl_command_queue, cl_mem, const void *, size_t,
                                              size_t, size_t, cl_uint, const cl_event *,
                                              cl_event *);
cl_int CL_API_CALL __wrap_clEnqueueFillBuffer(cl_command_queue queue, cl_mem buffer,
                                              const void *pattern, size_t pattern_size,
                                              size_t offset, size_t size, cl_uint num_events,
                                              const cl_event *wait_list, cl_event *event)
{
    if (hit(FAULT_ENQUEUE_FILL, CALLER))
        return kinds[FAULT_ENQUEUE_FILL].error;
    return made_event(__real_clEnqueueFillBuffer(queue, buffer, pattern, pattern_size, offset, size,
                                                 num_events, wait_list, event),
                      event);
}

void *CL_API_CALL __real_clEnqueueMapBuffer(cl_command_queue, cl_mem, cl_bool, cl_map_flags, size_t,
                                            size_t, cl_uint, const cl_event *, cl_event *,
                                            cl_int *);
void *CL_API_CALL __wrap_clEnqueueMapBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking,
                                            cl_map_flags flags, size_t offset, size_t size,
                                            cl_uint num_events, const cl_event *wait_list,
                                            cl_event *event, cl_int *errcode_ret)
{
    if (hit(FAULT_ENQUEUE_MAP, CALLER))
        return failed(FAULT_ENQUEUE_MAP, errcode_ret);
    void *p = __real_clEnqueueMapBuffer(queue, buffer, blocking, flags, offset, size, num_events,
                                        wait_list, event, errcode_ret);
    made_event(p != NULL ? CL_SUCCESS : CL_MAP_FAILURE, event);
    return p;
}

cl_int CL_API_CALL __real_clEnqueueMarkerWithWaitList(cl_command_queue, cl_uint, const cl_event *,
                                                      cl_event *);
cl_int CL_API_CALL __wrap_clEnqueueMarkerWithWaitList(cl_command_queue queue, cl_uint num_events,
                                                      const cl_event *wait_list, cl_event *event)
{
    if (hit(FAULT_ENQUEUE_MARKER, CALLER))
        return kinds[FAULT_ENQUEUE_MARKER].error;
    return made_event(__real_clEnqueueMarkerWithWaitList(queue, num_events, wait_list, event),
                      event);
}

/* Waits fail as they do when a command in the queue failed: the real wait has happened, so
 * the commands are done, but the call reports an error. */
cl_int CL_API_CALL __real_clWaitForEvents(cl_uint, const cl_event *);
cl_int CL_API_CALL __wrap_clWaitForEvents(cl_uint num_events, const cl_event *events)
{
    cl_int err = __real_clWaitForEvents(num_events, events);
    if (hit(FAULT_WAIT_FOR_EVENTS, CALLER))
        return kinds[FAULT_WAIT_FOR_EVENTS].error;
    return err;
}

cl_int CL_API_CALL __real_clFinish(cl_command_queue);
cl_int CL_API_CALL __wrap_clFinish(cl_command_queue queue)
{
    cl_int err = __real_clFinish(queue);
    if (hit(FAULT_FINISH, CALLER))
        return kinds[FAULT_FINISH].error;
    return err;
}

/* CLBlast's own OpenCL calls happen inside libclblast.so, out of the wrap's reach: the seam
 * fails the whole routine as CLBlast reports an OpenCL error, with the OpenCL code. */
CLBlastStatusCode __real_CLBlastSgemm(CLBlastLayout, CLBlastTranspose, CLBlastTranspose, size_t,
                                      size_t, size_t, float, cl_mem, size_t, size_t, cl_mem, size_t,
                                      size_t, float, cl_mem, size_t, size_t, cl_command_queue *,
                                      cl_event *);
CLBlastStatusCode __wrap_CLBlastSgemm(CLBlastLayout layout, CLBlastTranspose ta,
                                      CLBlastTranspose tb, size_t m, size_t n, size_t k,
                                      float alpha, cl_mem a, size_t a_off, size_t a_ld, cl_mem b,
                                      size_t b_off, size_t b_ld, float beta, cl_mem c, size_t c_off,
                                      size_t c_ld, cl_command_queue *queue, cl_event *event)
{
    if (hit(FAULT_CLBLAST_SGEMM, CALLER))
        return (CLBlastStatusCode)kinds[FAULT_CLBLAST_SGEMM].error;
    CLBlastStatusCode code = __real_CLBlastSgemm(layout, ta, tb, m, n, k, alpha, a, a_off, a_ld, b,
                                                 b_off, b_ld, beta, c, c_off, c_ld, queue, event);
    made_event(code == CLBlastSuccess ? CL_SUCCESS : CL_INVALID_VALUE, event);
    return code;
}

cl_context CL_API_CALL __real_clCreateContext(
    const cl_context_properties *, cl_uint, const cl_device_id *,
    void(CL_CALLBACK *)(const char *, const void *, size_t, void *), void *, cl_int *);
cl_context CL_API_CALL __wrap_clCreateContext(const cl_context_properties *props,
                                              cl_uint num_devices, const cl_device_id *devices,
                                              void(CL_CALLBACK *notify)(const char *, const void *,
                                                                        size_t, void *),
                                              void *user_data, cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_CONTEXT, CALLER))
        return failed(FAULT_CREATE_CONTEXT, errcode_ret);
    return made(FAULT_OBJ_CONTEXT, __real_clCreateContext(props, num_devices, devices, notify,
                                                          user_data, errcode_ret));
}

cl_command_queue CL_API_CALL __real_clCreateCommandQueue(cl_context, cl_device_id,
                                                         cl_command_queue_properties, cl_int *);
cl_command_queue CL_API_CALL __wrap_clCreateCommandQueue(cl_context context, cl_device_id device,
                                                         cl_command_queue_properties properties,
                                                         cl_int *errcode_ret)
{
    if (hit(FAULT_CREATE_QUEUE, CALLER))
        return failed(FAULT_CREATE_QUEUE, errcode_ret);
    return made(FAULT_OBJ_QUEUE,
                __real_clCreateCommandQueue(context, device, properties, errcode_ret));
}

/* Releases and retains, for the live-object counts. */
#define FAULT_REFCOUNT_(type, object, call)                                                        \
    cl_int CL_API_CALL __real_clRelease##call(type);                                               \
    cl_int CL_API_CALL __wrap_clRelease##call(type handle)                                         \
    {                                                                                              \
        cl_int err = __real_clRelease##call(handle);                                               \
        if (err == CL_SUCCESS)                                                                     \
            live[object]--;                                                                        \
        return err;                                                                                \
    }                                                                                              \
    cl_int CL_API_CALL __real_clRetain##call(type);                                                \
    cl_int CL_API_CALL __wrap_clRetain##call(type handle)                                          \
    {                                                                                              \
        cl_int err = __real_clRetain##call(handle);                                                \
        if (err == CL_SUCCESS)                                                                     \
            live[object]++;                                                                        \
        return err;                                                                                \
    }
FAULT_REFCOUNT_(cl_mem, FAULT_OBJ_MEM, MemObject)
FAULT_REFCOUNT_(cl_program, FAULT_OBJ_PROGRAM, Program)
FAULT_REFCOUNT_(cl_kernel, FAULT_OBJ_KERNEL, Kernel)
FAULT_REFCOUNT_(cl_event, FAULT_OBJ_EVENT, Event)
FAULT_REFCOUNT_(cl_context, FAULT_OBJ_CONTEXT, Context)
FAULT_REFCOUNT_(cl_command_queue, FAULT_OBJ_QUEUE, CommandQueue)
