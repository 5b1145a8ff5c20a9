/* The device handle's layout, shared by the device, program and tensor modules. */
#ifndef CLCNN_DEVICE_IMPL_H
#define CLCNN_DEVICE_IMPL_H

#include <pthread.h>

#include "clcnn/device.h"
#include "clcnn/program.h"

struct clcnn__program_entry;

/* One derived buffer (src/op_cache.c). */
struct clcnn__op_cache_entry;

struct clcnn_device {
    clcnn_device_info info;
    cl_platform_id platform;
    cl_device_id id;
    cl_context context;
    cl_command_queue compute;
    cl_command_queue transfer;

    /* Program layer state (src/program.c). */
    char *cache_dir;  /* NULL when the binary cache is off */
    char *binary_dir; /* CLCNN_BINARY_DIR, NULL when unset */
    char base_options[96];
    pthread_mutex_t program_lock;
    struct clcnn__program_entry *programs;
    size_t program_count;
    size_t program_capacity;
    clcnn_program_stats stats;

    /* Derived buffers (src/op_cache.c), guarded by program_lock. */
    struct clcnn__op_cache_entry *op_cache;
    uint64_t op_cache_clock;

    /* The tuning database as last read (src/tune_db.c, a cJSON tree), guarded by program_lock;
     * tune_db_shipped is the read-only one installed with the library (NULL when absent). */
    void *tune_db;
    void *tune_db_shipped;
    void *tune_db_memo; /* answers of nearest-problem lookups (src/tune_db.c) */
    bool tune_db_loaded;
    /* The CLBlast parameters applied from the tuning database at creation (src/tune_clblast.c),
     * when clblast_tuned. */
    bool clblast_tuned;
    int clblast_params[8];
};

/* Reads the program layer's settings from the environment; called once by device creation. */
clcnn_status clcnn__program_init(clcnn_device *device);

/* Releases every cached program and the program layer's strings. */
void clcnn__program_cleanup(clcnn_device *device);

#endif
