/* Convolution backward solvers: the rows of the backward-data and backward-weights registries.
 * They share the forward's row type and problem; clcnn__conv_args then carries the gradients. */
#ifndef CLCNN_CONV2D_BWD_IMPL_H
#define CLCNN_CONV2D_BWD_IMPL_H

#include "conv2d_impl.h"

/* In a backward row's run(), args->y is dy (read). Backward data writes args->x (dx) and reads
 * args->w (w_tensor is w's handle, for caching data derived from it). Backward weights writes
 * args->w (dw, w_tensor NULL) and reads args->x. args->bias is NULL. */
extern const clcnn__conv_solver clcnn__conv_bwd_data_direct;
extern const clcnn__conv_solver clcnn__conv_bwd_data_gemm;
extern const clcnn__conv_solver clcnn__conv_bwd_weights_direct;
extern const clcnn__conv_solver clcnn__conv_bwd_weights_gemm;

#endif
