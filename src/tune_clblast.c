/* CLBlast's SGEMM parameters as a tunable space and the device's stored winner applied through
 * CLBlastOverrideParameters: CLBlast ships no tuning for POCL's CPU device, where its defaults
 * ran 4-7 GFLOP/s against 24-27 GFLOP/s with 64x64 tiles and 8-wide vectors along M. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_impl.h"
#include "status_impl.h"
#include "tune_clblast_impl.h"
#include "tune_db_impl.h"

enum { P_MIN_INDIRECT, P_MWG, P_NWG, P_KWG, P_MDIMC, P_NDIMC, P_VWM, P_VWN, P_COUNT };

static const char *const param_names[P_COUNT] = {"MIN_INDIRECT", "MWG",   "NWG", "KWG",
                                                 "MDIMC",        "NDIMC", "VWM", "VWN"};

/* The point that stands for CLBlast's own parameters: MIN_INDIRECT 0, the rest pinned to these
 * (a good start on POCL's CPU device: 64x64 tiles, 8x8 threads, 8 lanes along M). */
static const int defaults[P_COUNT] = {0, 64, 64, 32, 8, 8, 8, 1};

/* Accumulators of one work-item (MWG/MDIMC x NWG/NDIMC) past which registers spill. */
#define MAX_ACCUMULATORS 256

/* CLBlast's constraints for Xgemm with MDIMA = MDIMC, NDIMB = NDIMC and KWI 2 (its tuner's):
 * whole vectors per thread, KWG a multiple of KWI and of both thread dimensions; plus a
 * work-group within the device's limit and accumulators within the registers. */
static bool clblast_valid(const int *v, const void *user)
{
    const clcnn_device *dev = user;
    if (v[P_MIN_INDIRECT] == 0)
        return memcmp(v, defaults, sizeof defaults) == 0;
    const int mwg = v[P_MWG], nwg = v[P_NWG], kwg = v[P_KWG];
    const int mdimc = v[P_MDIMC], ndimc = v[P_NDIMC], vwm = v[P_VWM], vwn = v[P_VWN];
    if (mwg % (mdimc * vwm) != 0 || nwg % (ndimc * vwn) != 0)
        return false;
    if (kwg % 2 != 0 || kwg % mdimc != 0 || kwg % ndimc != 0)
        return false;
    if ((size_t)mdimc * (size_t)ndimc > dev->info.max_work_group_size)
        return false;
    return (mwg / mdimc) * (nwg / ndimc) <= MAX_ACCUMULATORS;
}

void clcnn__clblast_space(const clcnn_device *device, clcnn__tune_space *space)
{
    memset(space, 0, sizeof *space);
    space->nparams = P_COUNT;
    const clcnn__tune_param params[P_COUNT] = {
        {param_names[P_MIN_INDIRECT], {0, 1, 256, 1024}, 4},
        {param_names[P_MWG], {16, 32, 64, 128}, 4},
        {param_names[P_NWG], {16, 32, 64, 128}, 4},
        {param_names[P_KWG], {16, 32}, 2},
        {param_names[P_MDIMC], {4, 8, 16}, 3},
        {param_names[P_NDIMC], {4, 8, 16}, 3},
        {param_names[P_VWM], {1, 2, 4, 8}, 4},
        {param_names[P_VWN], {1, 2, 4, 8}, 4},
    };
    memcpy(space->params, params, sizeof params);
    memcpy(space->defaults, defaults, sizeof defaults);
    space->valid = clblast_valid;
    space->user = device;
}

static clcnn_status clblast_error(CLBlastStatusCode code, const char *call)
{
    /* CLBlast returns OpenCL codes above -1000 and its own below. */
    return (clcnn__set_error(CLCNN_STATUS_CL_ERROR, code, __FILE__, __LINE__,
                             "clblast: %s -> status %d%s", call, (int)code,
                             code > -1000 ? " (an OpenCL error)" : " (CLBlast's own code)"),
            CLCNN_STATUS_CL_ERROR);
}

clcnn_status clcnn__clblast_override(clcnn_device *device, const int *v)
{
    if (v[P_MIN_INDIRECT] == 0)
        return CLCNN_OK;
    /* Every Xgemm parameter CLBlast 1.5 knows, in any order: it refuses an incomplete set. */
    const char *names[] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                           "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
    const size_t values[] = {0,
                             1,
                             (size_t)v[P_KWG],
                             2,
                             (size_t)v[P_MDIMC],
                             (size_t)v[P_MDIMC],
                             (size_t)v[P_MWG],
                             (size_t)v[P_NDIMC],
                             (size_t)v[P_NDIMC],
                             (size_t)v[P_NWG],
                             0,
                             0,
                             0,
                             0,
                             (size_t)v[P_VWM],
                             (size_t)v[P_VWN]};
    _Static_assert(sizeof names / sizeof names[0] == sizeof values / sizeof values[0],
                   "one value per Xgemm parameter");
    CLBlastStatusCode code = CLBlastOverrideParameters(
        device->id, "Xgemm", CLBlastPrecisionSingle, sizeof names / sizeof names[0], names, values);
    if (code != CLBlastSuccess)
        return clblast_error(code, "CLBlastOverrideParameters(Xgemm)");
    const char *routine[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    const size_t min_indirect[] = {(size_t)v[P_MIN_INDIRECT]};
    code = CLBlastOverrideParameters(device->id, "GemmRoutine", CLBlastPrecisionSingle, 1, routine,
                                     min_indirect);
    if (code != CLBlastSuccess)
        return clblast_error(code, "CLBlastOverrideParameters(GemmRoutine)");
    return CLCNN_OK;
}

void clcnn__clblast_apply_tuned(clcnn_device *device)
{
    const char *env = getenv("CLCNN_TUNE_CLBLAST");
    if (env != NULL && strcmp(env, "off") == 0)
        return;
    int v[P_COUNT];
    bool found = false;
    clcnn__tune_db_lookup_params(device, CLCNN__CLBLAST_DB_KERNEL, CLCNN__CLBLAST_DB_PROBLEM,
                                 param_names, v, P_COUNT, NULL, &found);
    if (!found || v[P_MIN_INDIRECT] == 0)
        return;
    if (!clblast_valid(v, device)) {
        CLCNN_WARN("tune",
                   "ignoring the tuning database's CLBlast parameters for %s: they break "
                   "a constraint",
                   device->info.name);
        return;
    }
    if (clcnn__clblast_override(device, v) != CLCNN_OK) {
        CLCNN_WARN("tune", "cannot apply the tuned CLBlast parameters: %s", clcnn_last_error());
        clcnn_clear_error();
        return;
    }
    _Static_assert(sizeof device->clblast_params == sizeof v, "room for every parameter");
    memcpy(device->clblast_params, v, sizeof v);
    device->clblast_tuned = true;
    CLCNN_DEBUG("tune",
                "CLBlast Xgemm for %s: MWG=%d NWG=%d KWG=%d MDIMC=%d NDIMC=%d VWM=%d VWN=%d, "
                "Xgemm from size %d (tuning database)",
                device->info.name, v[P_MWG], v[P_NWG], v[P_KWG], v[P_MDIMC], v[P_NDIMC], v[P_VWM],
                v[P_VWN], v[P_MIN_INDIRECT]);
}
