/* Pooling's parameter space (cltune --solver pool): the forward kernels' vector width and
 * work-group width, read from the tuning database when a forward runs. */
#ifndef CLCNN_POOL_IMPL_H
#define CLCNN_POOL_IMPL_H

#include "clcnn/pool.h"
#include "device_impl.h"
#include "tune_search_impl.h"

/* The database's kernel name; the problem key is clcnn__pool_key()'s and the params are the
 * space's names (POOL_VW, LWS). */
#define CLCNN__POOL_DB_KERNEL "pool_fwd"

/* The fields a stored problem must share to stand in for another (nearest-problem fallback):
 * window, stride and kind. */
#define CLCNN__POOL_NEAREST_SAME "rsum"

/* What the space's constraint reads: the problem and the device (borrowed). */
typedef struct clcnn__pool_tuning {
    clcnn_shape x, y;
    clcnn_pool_params params;
    const clcnn_device *device;
} clcnn__pool_tuning;

/* The database key of a forward problem, "n1c64h112w112r2s2u2p0m0" ("AxB" where the two
 * dimensions differ; m is the kind). Returns what validation returns (INVALID_ARG, BAD_SHAPE). */
clcnn_status clcnn__pool_key(clcnn_shape x, const clcnn_pool_params *params, char *buf,
                             size_t size);

/* Fills [out] space with the forward's parameters for the problem: POOL_VW (outputs per
 * work-item of the 2x2 stride-2 kernel; other windows keep 8) and LWS (work-group width, 0: the
 * driver's). Its defaults are what an untuned forward uses; the constraint reads [out] tuning,
 * which must outlive the space. INVALID_ARG, BAD_SHAPE for an invalid problem. */
clcnn_status clcnn__pool_space(const clcnn_device *device, clcnn_shape x,
                               const clcnn_pool_params *params, clcnn__pool_tuning *tuning,
                               clcnn__tune_space *space);

/* clcnn_pool_forward with an explicit point of the space (checked by the caller) and no
 * indices; asynchronous as the op. */
clcnn_status clcnn__pool_forward_with(clcnn_device *device, const clcnn_tensor *x,
                                      const clcnn_pool_params *params, clcnn_tensor *y,
                                      const int *values);

#endif
