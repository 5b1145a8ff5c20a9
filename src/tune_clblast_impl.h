/* CLBlast's SGEMM kernel parameters as a tunable space (cltune --solver clblast), and the
 * device's stored winner applied through CLBlast's override API when a device is created. */
#ifndef CLCNN_TUNE_CLBLAST_IMPL_H
#define CLCNN_TUNE_CLBLAST_IMPL_H

#include "device_impl.h"
#include "tune_search_impl.h"

/* The database's entry: kernel CLCNN__CLBLAST_DB_KERNEL, problem CLCNN__CLBLAST_DB_PROBLEM (one
 * per device: CLBlast keeps one parameter set per device and kernel, whatever the shapes), params
 * named as the space's parameters. */
#define CLCNN__CLBLAST_DB_KERNEL "clblast_xgemm"
#define CLCNN__CLBLAST_DB_PROBLEM "sgemm"

/* Fills [out] space: MIN_INDIRECT (0: CLBlast's own parameters, the defaults; else Xgemm is
 * overridden and CLBlast's GemmRoutine XGEMM_MIN_INDIRECT_SIZE set to it, 1 meaning Xgemm for
 * every size), then Xgemm's MWG, NWG, KWG, MDIMC, NDIMC, VWM, VWN (MDIMA = MDIMC, NDIMB = NDIMC,
 * KWI 2, no local memory, no strides, GEMMK 0, KREG 1). The constraint reads [in] device, which
 * must outlive the space. */
void clcnn__clblast_space(const clcnn_device *device, clcnn__tune_space *space);

/* Overrides CLBlast's single-precision Xgemm and GemmRoutine parameters for the device with a
 * point of the space (which the caller has checked); a point with MIN_INDIRECT 0 changes nothing.
 * CLBlast keeps the override for the process, per OpenCL device, until the next one; its next
 * SGEMM recompiles. Returns OK, or CL_ERROR naming CLBlast's status. */
clcnn_status clcnn__clblast_override(clcnn_device *device, const int *values);

/* Applies the tuning database's verified point for this device, when there is one that the
 * constraint accepts, unless CLCNN_TUNE_CLBLAST=off, and records it in device->clblast_params
 * (device->clblast_tuned). Never fails: a problem is a warning. Called once by device creation. */
void clcnn__clblast_apply_tuned(clcnn_device *device);

#endif
