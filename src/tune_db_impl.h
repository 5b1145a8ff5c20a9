/* The per-device tuning database: which solver (and later which parameters) won for a problem.
 * One JSON file per device in the cache directory, read lazily, merged and written atomically. */
#ifndef CLCNN_TUNE_DB_IMPL_H
#define CLCNN_TUNE_DB_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "device_impl.h"

/* The database file of this device (malloc'd), "<cache>/tune/<vendor>/<device-slug>.json", or
 * NULL with OK when the cache directory is off. */
clcnn_status clcnn__tune_db_path(const clcnn_device *device, char **path);

/* The database shipped with the library for this device (malloc'd),
 * "<dir>/<vendor>/<device-slug>-<driver-slug>.json" where dir is $CLCNN_TUNE_SHIPPED, else the
 * directory it was installed to; when that file is absent, the same device's file of another
 * driver (its "device" "name" equal to this device's; the last in name order) if there is one.
 * NULL with OK when dir is "off" or empty. The file may not exist. */
clcnn_status clcnn__tune_db_shipped_path(const clcnn_device *device, char **path);

/* Lookups read two databases: the user's (the cache directory's, which cltune and find mode
 * write) and the shipped one (read-only). For each (kernel, problem) a verified entry of the
 * user's wins over the shipped one's. */

/* The solver recorded for (kernel, problem) as a verified winner, copied into solver (size
 * bytes). *found is false when there is none, when the cache is off, or when the file is
 * unreadable or corrupt (that is logged once as a warning, never an error). */
void clcnn__tune_db_lookup(clcnn_device *device, const char *kernel, const char *problem,
                           char *solver, size_t size, bool *found);

/* Records (kernel, problem) -> solver with its time, replacing an older entry for the same
 * (kernel, problem). Re-reads the file first so entries written by other processes are kept,
 * then writes it to a temporary name, syncs and renames. Returns OK (also when the cache is
 * off: nothing is written), IO, OUT_OF_MEMORY. */
clcnn_status clcnn__tune_db_record(clcnn_device *device, const char *kernel, const char *problem,
                                   const char *solver, double time_us, bool verified);

/* Parses a database held in memory ([in] text, size bytes, not necessarily NUL-terminated):
 * the document (owned by the caller: cJSON_Delete), or NULL with [out] why (a static string)
 * when it is not JSON or not a database of this schema. */
struct cJSON *clcnn__tune_db_parse(const char *text, size_t size, const char **why);

/* One entry with the kernel parameters a tuner found ("params": {"CONV_VW": 8, ...}). */
typedef struct clcnn__tune_db_entry {
    const char *kernel, *problem, *solver;
    size_t nparams;
    const char *const *names; /* nparams names (borrowed) */
    const int *values;        /* nparams values (borrowed) */
    double time_us;           /* the entry's time */
    double default_us;        /* the defaults' time on the same problem; 0: not measured */
    bool verified;
    bool complete; /* false while a search is still running (cltune --resume goes on) */
} clcnn__tune_db_entry;

/* As clcnn__tune_db_record() for an entry with parameters: merged into the file on disk (same
 * (kernel, problem) replaced, everything else kept) and written atomically. */
clcnn_status clcnn__tune_db_write(clcnn_device *device, const clcnn__tune_db_entry *entry);

/* The parameters stored for (kernel, problem) by a verified entry: [out] values[i] gets the
 * integer named names[i]. *found is false when there is no such entry, when one of the names is
 * missing or not an integer, when the cache is off, or when the file is unreadable or corrupt
 * (a warning, never an error). [out] complete (may be NULL) says whether the search that wrote
 * it ran to its end (entries without the field count as complete). Thread-safe. */
void clcnn__tune_db_lookup_params(clcnn_device *device, const char *kernel, const char *problem,
                                  const char *const *names, int *values, size_t count,
                                  bool *complete, bool *found);

/* Most parameters an entry's lookup reads. */
#define CLCNN__TUNE_DB_MAX_PARAMS 16

/* A stored entry near a problem (clcnn__tune_db_nearest). */
typedef struct clcnn__tune_db_match {
    char problem[128], solver[64];
    int values[CLCNN__TUNE_DB_MAX_PARAMS]; /* the names asked for, in their order */
    double distance;
    bool complete;
    bool shipped; /* from the shipped database */
} clcnn__tune_db_match;

/* The verified entries of kernel nearest to [in] problem, nearest first, at most max into [out]
 * out; returns how many. Problem keys are fields of a letter and a number ("n1c64...g1", where
 * "u2x1" is two numbers); an entry is comparable when it has the same fields, equal in every
 * letter of [in] same ("rsudg"), and integers for every one of names[0..count). The distance is
 * the sum over fields of |ln((a+1)/(b+1))| (of a pair, the mean of its two); ties go to the user's
 * entries, then key order. The exact problem, when stored, comes first (distance 0). The caller
 * rechecks that the values suit its problem. Thread-safe. */
size_t clcnn__tune_db_nearest(clcnn_device *device, const char *kernel, const char *problem,
                              const char *same, const char *const *names, size_t count,
                              clcnn__tune_db_match *out, size_t max);

/* Forgets what was read, so the next lookup reads the file again (device release, tests). */
void clcnn__tune_db_forget(clcnn_device *device);

#endif
