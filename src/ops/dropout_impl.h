/* Dropout's launch with an explicit launch shape, so tests can show the mask does not depend
 * on it. */
#ifndef CLCNN_DROPOUT_IMPL_H
#define CLCNN_DROPOUT_IMPL_H

#include "clcnn/dropout.h"

/* As clcnn_dropout_forward(), over a 1-D launch of global work-items in groups of local
 * (global a multiple of local); each work-item walks the 8-element chunks gid, gid + global,
 * and so on. */
clcnn_status clcnn__dropout_forward_shaped(clcnn_device *device, const clcnn_dropout_params *params,
                                           const clcnn_tensor *x, clcnn_tensor *y,
                                           clcnn_tensor *mask, size_t global, size_t local);

#endif
